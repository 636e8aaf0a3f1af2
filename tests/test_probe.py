"""The probe curve (oscillation read without the mini-batches' spread), training subsets, and the
run ids that name a study's departures from the config's defaults."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from test_training import blob_data, settings

from unetscape.models.checkpoints import read_checkpoint
from unetscape.run_ids import format_number, parse_recipe, parse_run_id, recipe
from unetscape.training.stability import history_probe_stability, probe_stability
from unetscape.training.train import train, training_subset
from unetscape.workflow.config import all_runs, study_runs, train_settings


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train_run(tmp_path, name, images=None, masks=None, **overrides):
    if images is None:
        images, masks = blob_data()
    out = tmp_path / name
    result = train(images, masks, settings(**overrides), out / "checkpoints", out / "history.csv",
                   run_id=name, log=lambda _: None, outcome_path=out / "outcome.json")
    return result, pd.read_csv(out / "history.csv"), json.loads((out / "outcome.json").read_text()), out


def test_a_frozen_model_has_probe_volatility_zero_and_batch_volatility_above_zero(tmp_path):
    """lr 0: the weights never move, so the probe curve is flat; the mini-batch losses still
    jump from batch to batch, because the images differ (what step_volatility measured). (Without
    batch norm: its running statistics would move the eval-mode model even at lr 0.)"""
    images, masks = blob_data(n=24)
    _, history, outcome, _ = train_run(tmp_path, "frozen", images, masks, lr=0.0, momentum=0.0, noise=0.0,
                                       arch={"depth": 1, "base_width": 4, "norm": "none"},
                                       epochs=3, batch_size=2, probe_every=2, probe_images=8)
    probes = history[history["kind"] == "probe"]
    assert len(probes) == 1 + 3 * 12 // 2  # step 0, then every 2nd of 36 steps
    assert probes["loss"].nunique() == 1
    numbers = outcome["stability"]["probe"]
    assert numbers["probe_volatility"] == 0.0
    assert numbers["probe_largest_rise"] == 0.0 and numbers["probe_rises"] == 0
    assert outcome["stability"]["step_volatility"] > 0.01


def test_probing_leaves_the_training_trajectory_exactly_as_it_is(tmp_path):
    _, often, _, out_a = train_run(tmp_path, "often", epochs=2, probe_every=1)
    _, rarely, _, out_b = train_run(tmp_path, "rarely", epochs=2, probe_every=1000)
    for kind in ("step", "epoch"):
        a, b = often[often["kind"] == kind], rarely[rarely["kind"] == kind]
        np.testing.assert_array_equal(a["loss"].to_numpy(), b["loss"].to_numpy())
    a = read_checkpoint(out_a / "checkpoints/epoch_002.pt")["state_dict"]
    b = read_checkpoint(out_b / "checkpoints/epoch_002.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # running statistics included
    assert (often["kind"] == "probe").sum() == 1 + 2 * 3 and (rarely["kind"] == "probe").sum() == 1


def test_the_probe_set_is_a_seeded_choice_of_the_runs_training_images(tmp_path):
    images, masks = blob_data(n=30)
    _, _, first, _ = train_run(tmp_path, "a", images, masks, epochs=1, probe_images=5)
    _, _, again, _ = train_run(tmp_path, "b", images, masks, epochs=1, probe_images=5)
    _, _, other, _ = train_run(tmp_path, "c", images, masks, epochs=1, probe_images=5, probe_seed=9)
    assert first["probe"]["indices"] == again["probe"]["indices"] != other["probe"]["indices"]
    assert len(set(first["probe"]["indices"])) == 5 and set(first["probe"]["indices"]) <= set(range(30))
    # a run on a training subset probes images of its own subset, never others
    _, _, sub, _ = train_run(tmp_path, "d", images, masks, epochs=1, probe_images=5, train_size=12, subset_seed=4)
    assert set(sub["probe"]["indices"]) <= set(sub["train_indices"])
    assert sub["train_indices"] == training_subset(30, 12, 4).tolist() and sub["training"]["train_size"] == 12


def test_probe_numbers_by_hand():
    steps = [0, 10, 20, 30, 40, 50]
    losses = [0.8, 0.6, 0.7, 0.5, 0.52, 0.4]
    numbers = probe_stability(steps, losses, tolerance=0.02, steps_per_epoch=20)
    # rises: +0.1 (0.125 x P0 > 0.02 x P0) and +0.02 (exactly 0.025 x P0 > 0.016): two
    assert numbers["probe_rises"] == 2
    assert numbers["probe_largest_rise"] == pytest.approx(0.1 / 0.8)
    assert numbers["probe_final_above_best"] == 0.0
    later = np.log([0.7, 0.5, 0.52, 0.4])  # the evaluations from step 20 (one epoch) on
    assert numbers["probe_volatility"] == pytest.approx(float(np.median(np.abs(np.diff(later)))))
    # a common horizon of 30 steps reads only the first four evaluations
    short = probe_stability(steps, losses, tolerance=0.02, steps_per_epoch=20, horizon=30)
    assert short["probe_rises"] == 1 and short["probes"] == 4 and short["horizon"] == 30
    assert short["probe_final_above_best"] == pytest.approx((0.5 - 0.5) / 0.8)
    # a non-finite loss within the horizon: no numbers (the outcome says the run diverged)
    assert math.isnan(probe_stability(steps, [0.8, math.nan, 1, 1, 1, 1], 0.02, 20)["probe_largest_rise"])
    history = pd.DataFrame({"kind": ["probe"] * 6 + ["step"], "step": steps + [5], "loss": losses + [9.0]})
    assert history_probe_stability(history, 0.02, 20, horizon=30) == short


def test_training_subsets_are_nested_seeded_and_checked():
    small, large = training_subset(100, 10, 7), training_subset(100, 40, 7)
    assert set(small) <= set(large) and len(set(large)) == 40 and list(large) == sorted(large)
    assert not np.array_equal(training_subset(100, 10, 8), small)
    np.testing.assert_array_equal(training_subset(5, None, 7), np.arange(5))
    with pytest.raises(ValueError, match="train_size 101"):
        training_subset(100, 101, 7)


def test_run_ids_name_only_the_departures_from_the_config():
    assert recipe("sgd") == "sgd" and recipe("sgd_momentum", lr=0.3, epochs=3) == "sgd_momentum-lr0.3-e3"
    text = recipe("sgd", lr=1e-5, batch_size=16, train_size=100, epochs=4)
    assert text == "sgd-lr1e-05-bs16-n100-e4"
    assert parse_recipe(text) == {"optimizer": "sgd", "lr": 1e-5, "batch_size": 16, "train_size": 100, "epochs": 4,
                                  "steps": None}
    assert parse_recipe("sgd-n32-s2000")["steps"] == 2000 and recipe("sgd", train_size=32, steps=2000) == "sgd-n32-s2000"
    assert parse_run_id("simple/sgd_momentum-lr1/noise0.1/seed2") == {
        "arch": "simple", "recipe": "sgd_momentum-lr1", "optimizer": "sgd_momentum", "lr": 1.0, "batch_size": None,
        "train_size": None, "epochs": None, "steps": None, "noise": 0.1, "seed": 2}
    assert format_number(-0.0) == "0" and format_number(1.0) == "1"
    for bad in ("sgd-lr", "sgd-bs1-lr0.1", "-lr0.1", "sgd lr"):
        with pytest.raises(ValueError):
            parse_recipe(bad)


def test_a_study_of_learning_rates_subsets_and_budgets_gives_distinct_runs_with_their_settings():
    config = {
        "data": {"seed": 0, "source": "synthetic"},
        "model": {"depth": 1, "base_width": 2},
        "archs": {"simple": {"preset": "simple"}},
        "optimizers": {"sgd": {"lr": 0.01, "momentum": 0.0}, "sgd_momentum": {"lr": 0.01, "momentum": 0.9}},
        "training": {"epochs": 40, "batch_size": 4, "save_every": 1, "eval_batch_size": 8,
                     "plateau": {"window": 3, "tolerance": 0.02}, "stop_on_plateau": True, "collapse_margin": 0.02,
                     "cpu_convolutions": "native"},
        "studies": {
            "seeds": {"archs": ["simple"], "optimizers": ["sgd"], "noise": [0], "seeds": [0]},
            "sweep": {"archs": ["simple"], "optimizers": ["sgd", "sgd_momentum"], "noise": [0], "seeds": [0],
                      "lr": [0.01, 0.3], "epochs": 3},
            "sizes": {"archs": ["simple"], "optimizers": ["sgd"], "noise": [0], "seeds": [0],
                      "batch_size": [4, 16], "train_size": [32]},
        },
    }
    sweep = {run.id for run in study_runs(config, "sweep")}
    assert sweep == {"simple/sgd-e3/noise0/seed0", "simple/sgd-lr0.3-e3/noise0/seed0",
                     "simple/sgd_momentum-e3/noise0/seed0", "simple/sgd_momentum-lr0.3-e3/noise0/seed0"}
    sizes = {run.id for run in study_runs(config, "sizes")}
    assert sizes == {"simple/sgd-n32/noise0/seed0", "simple/sgd-bs16-n32/noise0/seed0"}
    assert len(all_runs(config)) == 1 + 4 + 2
    runs = {run.id: run for run in all_runs(config)}
    fast = train_settings(config, runs["simple/sgd_momentum-lr0.3-e3/noise0/seed0"])
    assert (fast["lr"], fast["momentum"], fast["epochs"], fast["stop_on_plateau"]) == (0.3, 0.9, 3, False)
    default = train_settings(config, runs["simple/sgd/noise0/seed0"])
    assert (default["lr"], default["epochs"], default["stop_on_plateau"]) == (0.01, 40, True)
    assert "train_size" not in default
    subset = train_settings(config, runs["simple/sgd-bs16-n32/noise0/seed0"])
    assert (subset["batch_size"], subset["train_size"]) == (16, 32)
    other = train_settings(config, runs["simple/sgd-n32/noise0/seed0"])
    assert other["subset_seed"] == subset["subset_seed"]  # every run of a size trains on the same images


def test_a_budget_of_steps_trains_whole_epochs_and_evaluates_about_twenty_of_them(tmp_path):
    """`steps`: the whole epochs that hold the budget (so every training-set size gets the same
    budget), the last epoch always evaluated and saved, the others every k-th."""
    images, masks = blob_data(n=12)
    # 12 images of batch 5 -> 3 steps per epoch; 100 steps -> 34 epochs, evaluated every 2nd
    _, history, outcome, out = train_run(tmp_path, "budget", images, masks, steps=100, epochs=1, batch_size=5,
                                         stop_on_plateau=False, probe_every=10)
    epochs = sorted(history.loc[history["kind"] == "epoch", "epoch"])
    assert outcome["max_epochs"] == 34 and outcome["training"]["steps_budget"] == 100
    assert epochs == [0] + list(range(2, 35, 2))  # 17 evaluations after epoch 0, at most MAX_EVALUATIONS
    assert history.loc[history["kind"] == "step", "step"].max() == 34 * 3  # at least 100 steps, whole epochs
    saved = sorted(int(p.stem.split("_")[1]) for p in (out / "checkpoints").glob("*.pt"))
    assert saved == epochs
    # the same budget on a larger set trains fewer, longer epochs
    _, bigger, outcome, _ = train_run(tmp_path, "bigger", *blob_data(n=30), steps=100, epochs=1, batch_size=5,
                                      stop_on_plateau=False)
    assert outcome["max_epochs"] == 17 and bigger.loc[bigger["kind"] == "step", "step"].max() == 102
