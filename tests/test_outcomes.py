"""How a run ended: the plateau rule, the best constant mask, and outcomes of real tiny runs."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch
from test_training import blob_data

from unetscape.training.outcomes import Plateau, best_constant_mask, classify, dice_of_mask, plateau_reached
from unetscape.training.train import TrainSettings, train

RULE = Plateau(window=3, tolerance=0.05)


def test_plateau_rule_on_hand_made_histories():
    falling = [0.7, 0.5, 0.4, 0.3, 0.2, 0.1]  # the last 3 epochs gain 0.3 > 0.05 * 0.7
    assert not plateau_reached(falling, RULE)
    flat = [0.7, 0.3, 0.2, 0.15, 0.149, 0.1495, 0.1491]  # last 3 gain 0.001 <= 0.05 * 0.7
    assert plateau_reached(flat, RULE)
    # noise without progress: the best of the last 3 epochs is no better than before them
    noisy = [0.7, 0.2, 0.1, 0.15, 0.12, 0.11]
    assert plateau_reached(noisy, RULE)
    assert not plateau_reached([0.7, 0.6, 0.5], RULE)  # fewer than window + 1 epochs
    assert not plateau_reached([0.7, 0.2, float("nan"), 0.2, 0.2], RULE)


def test_best_constant_mask_matches_a_brute_force_search():
    rng = np.random.default_rng(0)
    masks = np.zeros((7, 3, 3), dtype=np.uint8)
    for k in range(7):  # random blobs, one image empty
        if k:
            masks[k] = rng.random((3, 3)) < rng.uniform(0.2, 0.8)
    mask, dice = best_constant_mask(masks)
    assert dice == pytest.approx(dice_of_mask(mask, masks))
    # every one of the 2^9 constant masks
    best = max(dice_of_mask(np.array(bits).reshape(3, 3), masks) for bits in itertools.product([0, 1], repeat=9))
    assert dice == pytest.approx(best, abs=0.02)  # the frequency-ordered search is near the optimum
    assert dice >= dice_of_mask(np.ones((3, 3)), masks) and dice >= dice_of_mask(np.zeros((3, 3)), masks)


def test_dice_of_mask_follows_the_hard_dice_convention():
    masks = np.zeros((2, 2, 2), dtype=np.uint8)
    masks[1, 0, 0] = 1
    # image 0: both empty -> 1; image 1: prediction empty, mask not -> 0
    assert dice_of_mask(np.zeros((2, 2)), masks) == pytest.approx(0.5)
    # all ones: image 0 -> 0, image 1 -> 2 * 1 / (1 + 4)
    assert dice_of_mask(np.ones((2, 2)), masks) == pytest.approx(0.2)


@pytest.mark.parametrize(
    "losses,dice,diverged,on_plateau,expected",
    [
        ([0.7, 0.5], 0.9, True, False, "diverged"),
        ([0.7, 0.69, 0.69, 0.69, 0.69], 0.41, False, True, "collapsed"),  # Dice at the constant's
        ([0.7, 0.5, 0.4, 0.3, 0.2], 0.9, False, False, "not_converged"),
        ([0.7, 0.6, 0.5, 0.4, 0.3], 0.3, False, False, "not_converged"),  # below the constant, still learning
        ([0.7, 0.2, 0.1, 0.1, 0.1], 0.9, False, True, "finished"),  # stopped on a plateau: trusted
        ([0.7, 0.2, 0.1, 0.1, 0.1, 0.1], 0.9, False, False, "finished"),  # plateau on the last epoch
    ],
)
def test_classify_on_hand_made_histories(losses, dice, diverged, on_plateau, expected):
    outcome, reason = classify(losses, dice, diverged, on_plateau, constant_dice=0.4, plateau=RULE,
                               collapse_margin=0.02)
    assert outcome == expected and reason


def tiny(tmp_path, name, **overrides):
    images, masks = blob_data(n=16, size=16)
    base = dict(arch={"depth": 1, "base_width": 4, "norm": "none"}, lr=0.1, momentum=0.9, seed=1, epochs=8,
                batch_size=4, save_every=1, eval_batch_size=16, plateau={"window": 3, "tolerance": 0.02})
    out = tmp_path / name
    result = train(images, masks, TrainSettings(**{**base, **overrides}), out / "checkpoints", out / "history.csv",
                   run_id=name, log=lambda _: None, heldout_images=images[:4], heldout_masks=masks[:4],
                   outcome_path=out / "outcome.json")
    return result, pd.read_csv(out / "history.csv"), json.loads((out / "outcome.json").read_text())


def test_a_real_diverged_run(tmp_path):
    result, history, outcome = tiny(tmp_path, "boom", lr=1e30)
    assert result.outcome == outcome["outcome"] == "diverged"
    assert (history["outcome"] == "diverged").all()
    # it diverged in its first epoch: nothing trained to measure, never epoch 0
    assert outcome["landscape_checkpoint"] is None


def test_a_real_collapsed_run(tmp_path):
    # With lr 1e-9 the weights barely move from an initialisation that predicts background
    # everywhere: no better than a constant mask, and flat, so training stops at the plateau.
    result, history, outcome = tiny(tmp_path, "stuck", lr=1e-9, momentum=0.0, epochs=6)
    assert result.outcome == "collapsed"
    assert outcome["final_dice"] <= outcome["constant_dice"] + outcome["collapse_margin"]
    assert outcome["landscape_checkpoint"] not in (None, "epoch_000.pt")
    assert outcome["checkpoint_role"] == "final weights, collapsed"


def test_a_run_stops_at_its_plateau_and_saves_the_last_epoch(tmp_path):
    result, history, outcome = tiny(tmp_path, "learn", epochs=40, save_every=7)
    epochs = history[history["kind"] == "epoch"]
    assert outcome["stopped_on_plateau"] and result.epochs_run < 40
    assert plateau_reached(epochs["loss"].tolist(), Plateau(3, 0.02))
    assert not plateau_reached(epochs["loss"].tolist()[:-1], Plateau(3, 0.02))  # not one epoch earlier
    assert outcome["landscape_checkpoint"] == f"epoch_{result.epochs_run:03d}.pt"
    assert (tmp_path / "learn/checkpoints" / outcome["landscape_checkpoint"]).is_file()
    # held-out metrics every epoch, and the gap is computable
    assert np.isfinite(epochs["heldout_loss"]).all() and np.isfinite(epochs["heldout_dice"]).all()


def test_a_run_that_diverges_late_is_measured_at_its_last_finite_checkpoint(tmp_path, monkeypatch):
    import unetscape.training.train as training

    calls = {"n": 0}
    real = training.training_loss("dice")

    def blows_up_at_step_10(logits, masks):  # 4 steps per epoch: in epoch 3
        calls["n"] += 1
        loss = real(logits, masks)
        return loss * float("nan") if calls["n"] >= 10 else loss

    monkeypatch.setattr(training, "training_loss", lambda name: blows_up_at_step_10)
    result, history, outcome = tiny(tmp_path, "late", epochs=8, plateau={"window": 5, "tolerance": 0.0})
    assert result.outcome == "diverged" and result.epochs_run == 2
    assert outcome["landscape_checkpoint"] == "epoch_002.pt"
    assert outcome["checkpoint_role"] == "last finite weights before divergence"
    assert history[history["kind"] == "step"]["diverged"].iloc[-1]
