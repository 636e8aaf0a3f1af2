"""How stable a run's training was, as numbers.

The soft Dice loss is bounded (it lies in [0, 1)), so the "divergent behaviour" a U-Net can
show under SGD appears as rises and oscillation of the loss, not as NaN. With L_0..L_E the
whole-set epoch losses (L_0: the initial weights; eval mode, clean images) and l_1..l_S the
per-batch training losses of the SGD steps:

    loss_rises      the number of epochs e >= 1 with L_e - L_{e-1} > tolerance * L_0
                    (`tolerance` is the plateau rule's, so a rise counts exactly when it is
                    larger than what the plateau rule calls progress)
    largest_rise    max(0, max_e (L_e - L_{e-1})) / L_0: the largest epoch-to-epoch rise, as a
                    fraction of the initial loss (0 for a loss that never rose)
    final_above_best  (L_E - min_e L_e) / L_0: how far the run ends above its best epoch
    step_volatility median over consecutive steps after the first epoch of |log l_{s+1} - log l_s|:
                    a scale-free measure of how much the training loss jumps from step to step
                    (differencing removes the downward trend; the median keeps a few outlying
                    batches from dominating)

All four are scale-free (fractions of L_0, or differences of logarithms), so they compare
across losses and architectures. NaN where the history is too short to define them or holds
non-finite losses (a diverged run: its outcome says so).

The step losses are losses of changing mini-batches: their spread is mostly the images', not
the optimiser's (a frozen model scores a step volatility well above 0), and the epoch numbers
are a maximum over however many epochs a run trained. The numbers the findings use come from
the *probe curve* instead: P_0..P_K, a fixed seeded set of training images evaluated (eval
mode, clean images) at step 0 and after every k-th SGD step, read up to a common horizon H
(the same number of steps for every run a comparison holds):

    probe_rises         the probe evaluations k with P_k - P_{k-1} > tolerance * P_0
    probe_largest_rise  max(0, max_k (P_k - P_{k-1})) / P_0
    probe_volatility    median over consecutive probe evaluations after the first epoch of
                        |log P_k - log P_{k-1}|: 0 for a model that does not move
    probe_final_above_best  (P_last - min_k P_k) / P_0 within the horizon
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

STABILITY_NUMBERS = ("loss_rises", "largest_rise", "final_above_best", "step_volatility")
PROBE_NUMBERS = ("probe_rises", "probe_largest_rise", "probe_volatility", "probe_final_above_best")


def epoch_rises(epoch_losses: Sequence[float]) -> np.ndarray:
    """L_e - L_{e-1} for e = 1..E."""
    losses = np.asarray(epoch_losses, dtype=np.float64)
    return np.diff(losses)


def rise_epochs(epoch_losses: Sequence[float], tolerance: float) -> list[int]:
    """The epochs e >= 1 whose loss rose by more than `tolerance` x the initial loss."""
    losses = np.asarray(epoch_losses, dtype=np.float64)
    if len(losses) < 2 or not np.isfinite(losses).all():
        return []
    return [int(e) + 1 for e in np.flatnonzero(np.diff(losses) > tolerance * losses[0])]


def step_volatility(step_losses: Sequence[float]) -> float:
    """Median |log l_{s+1} - log l_s| over consecutive steps (NaN with fewer than two)."""
    losses = np.asarray(step_losses, dtype=np.float64)
    if len(losses) < 2 or not np.isfinite(losses).all() or (losses <= 0).any():
        return math.nan
    return float(np.median(np.abs(np.diff(np.log(losses)))))


def stability_numbers(epoch_losses: Sequence[float], later_step_losses: Sequence[float], tolerance: float) -> dict:
    """The stability numbers of a run (see the module docstring).

    `epoch_losses` are L_0..L_E; `later_step_losses` the per-step training losses after the
    first epoch, in order.
    """
    losses = np.asarray(epoch_losses, dtype=np.float64)
    usable = len(losses) >= 2 and np.isfinite(losses).all() and losses[0] > 0
    if usable:
        initial = losses[0]
        rises = np.diff(losses)
        numbers = {
            "loss_rises": len(rise_epochs(losses, tolerance)),
            "largest_rise": float(max(0.0, rises.max()) / initial),
            "final_above_best": float((losses[-1] - losses.min()) / initial),
        }
    else:
        numbers = {"loss_rises": math.nan, "largest_rise": math.nan, "final_above_best": math.nan}
    numbers["step_volatility"] = step_volatility(later_step_losses)
    numbers["rise_epochs"] = rise_epochs(losses, tolerance) if usable else []
    numbers["tolerance"] = float(tolerance)
    return numbers


def history_stability(history, tolerance: float) -> dict:
    """`stability_numbers` of a run's history table (rows of kind `epoch` and `step`)."""
    epochs = history[history["kind"] == "epoch"].sort_values("epoch")
    steps = history[(history["kind"] == "step") & (history["epoch"] >= 2)].sort_values("step")
    return stability_numbers(epochs["loss"].to_numpy(), steps["loss"].to_numpy(), tolerance)


def probe_stability(steps: Sequence[int], losses: Sequence[float], tolerance: float, steps_per_epoch: int,
                    horizon: int | None = None) -> dict:
    """The probe curve's stability numbers (see the module docstring) over the evaluations at
    steps <= `horizon` (None: all of them).

    A curve that holds a non-finite loss within the horizon (a diverged run) gets NaN numbers;
    its outcome says what happened. `horizon` and the probe evaluations used are recorded.
    """
    steps = np.asarray(steps, dtype=np.int64)
    losses = np.asarray(losses, dtype=np.float64)
    if steps.shape != losses.shape:
        raise ValueError(f"{len(steps)} probe steps for {len(losses)} probe losses")
    order = np.argsort(steps, kind="stable")
    steps, losses = steps[order], losses[order]
    if horizon is not None:
        keep = steps <= horizon
        steps, losses = steps[keep], losses[keep]
    numbers = dict.fromkeys(PROBE_NUMBERS, math.nan)
    numbers.update(horizon=None if horizon is None else int(horizon), probes=int(len(steps)),
                   last_step=int(steps[-1]) if len(steps) else 0, tolerance=float(tolerance))
    if len(losses) < 2 or not np.isfinite(losses).all() or not losses[0] > 0:
        return numbers
    initial, rises = losses[0], np.diff(losses)
    numbers["probe_rises"] = int((rises > tolerance * initial).sum())
    numbers["probe_largest_rise"] = float(max(0.0, rises.max()) / initial)
    numbers["probe_final_above_best"] = float((losses[-1] - losses.min()) / initial)
    later = losses[steps >= steps_per_epoch]
    if len(later) >= 2 and (later > 0).all():
        numbers["probe_volatility"] = float(np.median(np.abs(np.diff(np.log(later)))))
    return numbers


def history_probe_stability(history, tolerance: float, steps_per_epoch: int, horizon: int | None = None) -> dict:
    """`probe_stability` of a run's history table (its rows of kind `probe`)."""
    probes = history[history["kind"] == "probe"]
    return probe_stability(probes["step"].to_numpy(), probes["loss"].to_numpy(), tolerance, steps_per_epoch, horizon)
