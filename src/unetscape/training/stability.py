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
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

STABILITY_NUMBERS = ("loss_rises", "largest_rise", "final_above_best", "step_volatility")


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
