"""How a run ended: the plateau rule, the best constant mask, and outcomes of real tiny runs."""

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from test_training import blob_data

from unetscape.training.outcomes import (
    Plateau,
    best_constant_mask,
    classify,
    dice_of_mask,
    plateau_reached,
    prediction_variation,
)
from unetscape.training.stability import stability_numbers
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


def test_a_spike_or_a_rise_at_the_end_is_no_plateau():
    default = Plateau(window=3, tolerance=0.02)
    # a spike on the last epoch: the best of the last 3 is no better than before, but the run
    # ends 0.5 above its best
    assert not plateau_reached([0.70, 0.20, 0.10, 0.10, 0.10, 0.60], default)
    # steadily rising after its best
    assert not plateau_reached([0.7, 0.1, 0.2, 0.3, 0.4], default)
    # within the tolerance of the best (0.02 x 0.7 = 0.014) is still a plateau
    assert plateau_reached([0.70, 0.20, 0.10, 0.10, 0.10, 0.11], default)


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
        ([0.70, 0.20, 0.10, 0.10, 0.10, 0.60], 0.9, False, False, "unstable"),  # a spike at the end
        ([0.7, 0.1, 0.2, 0.3, 0.4], 0.9, False, False, "unstable"),  # rising after its best
        ([0.7, 0.28, 0.55, 0.28, 0.31], 0.9, False, False, "unstable"),  # oscillating, ends 0.03 above
        ([0.7, 0.1, 0.2, 0.3, 0.4], 0.9, True, False, "diverged"),  # divergence comes first
    ],
)
def test_classify_on_hand_made_histories(losses, dice, diverged, on_plateau, expected):
    plateau = RULE if expected != "unstable" else Plateau(window=3, tolerance=0.02)
    outcome, reason = classify(losses, dice, diverged, on_plateau, constant_dice=0.4, plateau=plateau,
                               collapse_margin=0.02)
    assert outcome == expected and reason


def test_collapse_is_decided_by_the_variation_of_the_predicted_masks():
    rng = np.random.default_rng(0)
    masks = (rng.random((20, 8, 8)) < 0.3).astype(np.uint8)
    same = np.repeat(masks[:1], 20, axis=0)  # one mask for every image, whatever its shape
    assert prediction_variation(same, masks) == 0.0
    assert prediction_variation(masks, masks) == pytest.approx(1.0)
    # by hand: pixel variances of the prediction over those of the masks
    noisy = masks.copy()
    noisy[:10] = 0
    expected = noisy.astype(float).var(axis=0).sum() / masks.astype(float).var(axis=0).sum()
    assert prediction_variation(noisy, masks) == pytest.approx(expected)
    assert math.isnan(prediction_variation(same, same))  # true masks that do not vary: undefined
    flat = [0.7, 0.3, 0.3, 0.3, 0.3]
    outcome, reason = classify(flat, 0.9, False, True, constant_dice=0.4, plateau=RULE, collapse_margin=0.02,
                               variation=0.03, collapse_variation=0.1)
    assert outcome == "collapsed" and "same mask" in reason
    assert classify(flat, 0.9, False, True, constant_dice=0.4, plateau=RULE, collapse_margin=0.02,
                    variation=0.8, collapse_variation=0.1)[0] == "finished"
    # a constant predictor is collapsed even while its loss still falls (a short budget, say);
    # a run still falling that tells images apart, with a Dice below the constant mask's, is
    # still learning: not converged
    falling = [0.7, 0.66, 0.64, 0.62]
    assert classify(falling, 0.3, False, False, constant_dice=0.4, plateau=RULE, collapse_margin=0.02,
                    variation=0.0, collapse_variation=0.1)[0] == "collapsed"
    assert classify(falling, 0.3, False, False, constant_dice=0.4, plateau=RULE, collapse_margin=0.02,
                    variation=0.5, collapse_variation=0.1)[0] == "not_converged"


@pytest.mark.parametrize(
    "epochs,steps,rises,largest,above,volatility",
    [
        # smooth: never rises; step losses halve every step -> |log ratio| = log 2
        ([0.8, 0.4, 0.2, 0.1], [0.4, 0.2, 0.1, 0.05], 0, 0.0, 0.0, math.log(2)),
        # one spike at epoch 3 of 0.3 = 0.375 x L0, ending 0.3 above the best (0.1)
        ([0.8, 0.3, 0.1, 0.4, 0.4], [0.1, 0.1, 0.4, 0.4], 1, 0.375, 0.375, 0.0),
        # oscillating: rises of 0.2 at epochs 2 and 4 (> 0.02 x 0.8); steps alternate x2 and /2
        ([0.8, 0.2, 0.4, 0.2, 0.4], [0.2, 0.4, 0.2, 0.4, 0.2], 2, 0.25, 0.25, math.log(2)),
    ],
)
def test_stability_numbers_of_hand_made_histories(epochs, steps, rises, largest, above, volatility):
    numbers = stability_numbers(epochs, steps, tolerance=0.02)
    assert numbers["loss_rises"] == rises
    assert numbers["largest_rise"] == pytest.approx(largest)
    assert numbers["final_above_best"] == pytest.approx(above)
    assert numbers["step_volatility"] == pytest.approx(volatility)
    assert len(numbers["rise_epochs"]) == rises
    # a small rise below the tolerance counts in the largest rise, not as a rise
    small = stability_numbers([0.8, 0.4, 0.41, 0.3], [0.5, 0.5], tolerance=0.02)
    assert small["loss_rises"] == 0 and small["largest_rise"] == pytest.approx(0.01 / 0.8)
    assert math.isnan(stability_numbers([0.8, float("nan")], [0.1, 0.2], 0.02)["largest_rise"])


# The plain tiny U-Net at lr 0.1 with momentum blows up to an all-background model in epoch 5
# (an unstable run); with batch norm it learns the blobs.
LEARNS = {"depth": 1, "base_width": 4, "norm": "batch"}


def tiny(tmp_path, name, **overrides):
    images, masks = blob_data(n=16, size=16)
    base = dict(arch={"depth": 1, "base_width": 4, "norm": "none"}, lr=0.1, momentum=0.9, seed=1, epochs=8,
                batch_size=4, save_every=1, eval_batch_size=16, plateau={"window": 3, "tolerance": 0.02})
    out = tmp_path / name
    result = train(images, masks, TrainSettings(**{**base, **overrides}), out / "checkpoints", out / "history.csv",
                   run_id=name, log=lambda _: None, heldout_images=images[:4], heldout_masks=masks[:4],
                   outcome_path=out / "outcome.json")
    return result, pd.read_csv(out / "history.csv"), json.loads((out / "outcome.json").read_text())


def test_a_real_run_that_blows_up_and_stays_there_is_unstable(tmp_path):
    result, history, outcome = tiny(tmp_path, "blowup", epochs=12)
    epochs = history[history["kind"] == "epoch"]["loss"].to_numpy()
    assert result.outcome == "unstable" and not outcome["stopped_on_plateau"]  # a rise is no plateau
    assert epochs[-1] - epochs.min() > 0.02 * epochs[0]
    assert outcome["stability"]["loss_rises"] >= 1 and outcome["stability"]["largest_rise"] > 0.1
    assert outcome["checkpoint_role"] == "final weights, unstable (above its best loss)"


def test_a_real_diverged_run(tmp_path):
    result, history, outcome = tiny(tmp_path, "boom", lr=1e30)
    assert result.outcome == outcome["outcome"] == "diverged"
    assert (history["outcome"] == "diverged").all()
    # it diverged in its first epoch: nothing trained to measure, never epoch 0
    assert outcome["landscape_checkpoint"] is None


def test_a_model_whose_output_is_its_bias_is_collapsed_and_a_trained_one_is_not(tmp_path):
    # Zero every weight: the U-Net's output is its head's bias, the same mask for every image.

    from unetscape.models.unet import build_model
    from unetscape.training.evaluation import images_to_tensor, predicted_masks

    images, masks = blob_data(n=16, size=16)
    torch.manual_seed(0)
    model = build_model({"depth": 1, "base_width": 4, "norm": "none"}).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.zero_()
        model.head.bias.fill_(0.3)  # predicts lesion everywhere
    x = images_to_tensor(images)
    assert prediction_variation(predicted_masks(model, x), masks) == 0.0
    # a real run that learned: its masks vary like the true ones
    result, history, outcome = tiny(tmp_path, "learn", epochs=40, arch=LEARNS)
    assert result.outcome == "finished" and outcome["prediction_variation"] > 0.5
    assert outcome["collapse_variation"] == 0.1
    assert set(outcome["stability"]) >= {"loss_rises", "largest_rise", "final_above_best", "step_volatility"}


def test_a_real_collapsed_run(tmp_path):
    # With lr 1e-9 the weights barely move from an initialisation that predicts background
    # everywhere: no better than a constant mask, and flat, so training stops at the plateau.
    result, history, outcome = tiny(tmp_path, "stuck", lr=1e-9, momentum=0.0, epochs=6)
    assert result.outcome == "collapsed"
    assert outcome["final_dice"] <= outcome["constant_dice"] + outcome["collapse_margin"]
    assert outcome["landscape_checkpoint"] not in (None, "epoch_000.pt")
    assert outcome["checkpoint_role"] == "final weights, collapsed"


def test_a_run_stops_at_its_plateau_and_saves_the_last_epoch(tmp_path):
    result, history, outcome = tiny(tmp_path, "learn", epochs=40, save_every=7, arch=LEARNS)
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
