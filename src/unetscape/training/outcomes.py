"""How a training run ended: finished, diverged, unstable, collapsed or not converged.

Every run gets exactly one outcome, decided from its own training:

    diverged       a loss or weight became NaN or infinite; training stopped there
    unstable       the run ends well above its best loss: its last epoch loss is more than the
                   plateau tolerance x the initial loss above its lowest epoch loss (a spike or
                   a rise at the end; `training.stability` has the numbers)
    collapsed      the final model predicts (nearly) the same mask for every image: the
                   variation of its predicted masks across the training images is at most
                   `collapse_variation` x that of the true masks (`prediction_variation`),
                   whether or not its loss still falls; or the loss stopped falling (below) at a
                   final hard Dice on the training set no more than `collapse_margin` above the
                   best constant mask's found by `best_constant_mask` (a lower bound of the best
                   constant mask's Dice)
    not_converged  training used all its epochs and the epoch loss was still falling by more
                   than the plateau tolerance (`plateau_reached`), at a model that tells images
                   apart
    finished       none of the above: a trained model at a plateau of its training loss

They are checked in that order (the Dice test of `collapsed` after `not_converged`: a run still
learning has not stopped at a constant mask), so a run that diverged is never also called collapsed. Only
`finished` runs are trained models in the sense of Li et al.; the landscape jobs, tables and
figures label every other outcome as what it is.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from unetscape.atomic import atomic_path

OUTCOMES = ("finished", "diverged", "unstable", "collapsed", "not_converged")
# What the landscape jobs measure for each outcome, and how files and figures label it.
CHECKPOINT_ROLES = {
    "finished": "trained",
    "not_converged": "final weights, not converged",
    "collapsed": "final weights, collapsed",
    "unstable": "final weights, unstable (above its best loss)",
    "diverged": "last finite weights before divergence",
    # Not an outcome of training: a model trained elsewhere (config `external`), measured alone.
    "external": "model trained elsewhere",
}


@dataclass(frozen=True)
class Plateau:
    """The plateau rule: at epoch e >= window, with L_0..L_e the whole-set epoch losses
    (L_0: the initial weights),

        fall = min(L_0..L_{e-window}) - min(L_{e-window+1}..L_e)

    is what the last `window` epochs gained on the best loss before them; the loss has
    reached a plateau when fall <= tolerance * L_0 and the last epoch is itself within
    tolerance * L_0 of the best loss so far (L_e - min(L_0..L_e) <= tolerance * L_0). Taking
    the best loss of each stretch, not the last, keeps the epoch-to-epoch noise of SGD from
    counting as progress or as a stall; requiring the last epoch near the best keeps a spike
    or a rise at the end from passing for a plateau; measuring against the initial loss makes
    the rule independent of the loss's scale and also stops a run that never learns.
    """

    window: int = 5
    tolerance: float = 0.02

    def __post_init__(self):
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"training.plateau.window must be an integer >= 1, got {self.window!r}")
        if not (isinstance(self.tolerance, (int, float)) and 0 <= self.tolerance < 1):
            raise ValueError(f"training.plateau.tolerance must be in [0, 1), got {self.tolerance!r}")


def plateau_fall(losses: Sequence[float], window: int) -> tuple[float, float]:
    """(fall, L_0) of the plateau rule for the epoch losses so far (NaN, NaN if too few)."""
    losses = np.asarray(losses, dtype=np.float64)
    if len(losses) <= window or not np.isfinite(losses).all():
        return math.nan, math.nan
    before = losses[: len(losses) - window].min()
    recent = losses[len(losses) - window :].min()
    return float(before - recent), float(losses[0])


def above_best(losses: Sequence[float]) -> float:
    """L_e - min(L_0..L_e): how far the last epoch lies above the best (NaN if not finite)."""
    losses = np.asarray(losses, dtype=np.float64)
    if len(losses) == 0 or not np.isfinite(losses).all():
        return math.nan
    return float(losses[-1] - losses.min())


def plateau_reached(losses: Sequence[float], plateau: Plateau) -> bool:
    """Whether the epoch losses L_0..L_e (L_0: the initial weights) end on a plateau."""
    fall, initial = plateau_fall(losses, plateau.window)
    if not math.isfinite(fall):
        return False
    return fall <= plateau.tolerance * initial and above_best(losses) <= plateau.tolerance * initial


def ends_above_best(losses: Sequence[float], plateau: Plateau) -> bool:
    """Whether the last epoch loss lies more than the tolerance x L_0 above the best one."""
    losses = np.asarray(losses, dtype=np.float64)
    return len(losses) > 1 and np.isfinite(losses).all() and above_best(losses) > plateau.tolerance * losses[0]


def prediction_variation(predicted: np.ndarray, masks: np.ndarray) -> float:
    """How much the predicted masks vary across images, relative to the true masks:

        sum_j Var_i(P_ij) / sum_j Var_i(G_ij)

    over pixels j and images i, with P the predicted and G the true binary masks. 0 means the
    same mask for every image (a constant prediction, whatever its shape); a model that
    predicts the true masks scores 1. Relative to the data's own variation, so it does not
    depend on the image size or the lesions' area. NaN if the true masks do not vary.
    """
    p = np.asarray(predicted, dtype=np.float64).reshape(len(predicted), -1)
    g = np.asarray(masks, dtype=np.float64).reshape(len(masks), -1)
    if p.shape != g.shape:
        raise ValueError(f"predicted masks {p.shape} and masks {g.shape} differ in shape")
    spread = g.var(axis=0).sum()
    return float(p.var(axis=0).sum() / spread) if spread > 0 else math.nan


def dice_of_mask(mask: np.ndarray, masks: np.ndarray) -> float:
    """Mean per-image hard Dice of predicting `mask` (H×W, {0,1}) for every image of `masks`.

    Same convention as `losses.hard_dice_per_image`: 1 for an image whose mask and prediction
    are both empty.
    """
    pred = np.asarray(mask, dtype=bool).reshape(-1)
    gt = np.asarray(masks, dtype=bool).reshape(len(masks), -1)
    inter = (gt & pred).sum(1)
    denom = gt.sum(1) + pred.sum()
    dice = np.where(denom > 0, 2 * inter / np.maximum(denom, 1), 1.0)
    return float(dice.mean())


def best_constant_mask(masks: np.ndarray) -> tuple[np.ndarray, float]:
    """The constant prediction with the highest mean hard Dice, and that Dice.

    A model that ignores its input predicts one mask M for every image. Searching all 2^(H·W)
    masks is out of reach, so the result is a lower bound of the best constant mask's Dice
    (on small exhaustive cases it fell short by up to 0.05); the search runs over the H·W + 1 masks made of the k pixels most
    often inside a lesion (k = 0..H·W, ties broken by pixel order), which contains the empty
    mask, the full mask and every threshold of the per-pixel lesion frequency. For each k the
    intersections are cumulative sums, so the whole search is one pass.
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3 or len(masks) == 0:
        raise ValueError(f"masks must be N×H×W with N >= 1, got shape {masks.shape}")
    n, h, w = masks.shape
    flat = masks.reshape(n, -1)
    order = np.argsort(-flat.mean(0), kind="stable")
    # inter[i, k] = |G_i ∩ top-k pixels|, k = 0..P
    inter = np.concatenate([np.zeros((n, 1)), np.cumsum(flat[:, order], axis=1)], axis=1)
    k = np.arange(flat.shape[1] + 1)
    g = flat.sum(1, keepdims=True)
    denom = g + k[None, :]
    dice = np.where(denom > 0, 2 * inter / np.maximum(denom, 1), 1.0).mean(0)
    best = int(np.argmax(dice))
    mask = np.zeros(flat.shape[1], dtype=np.uint8)
    mask[order[:best]] = 1
    return mask.reshape(h, w), float(dice[best])


def best_constant_dice(masks: np.ndarray) -> float:
    """Mean hard Dice of the best constant prediction (see `best_constant_mask`)."""
    return best_constant_mask(masks)[1]


def classify(
    epoch_losses: Sequence[float],
    final_dice: float,
    diverged: bool,
    stopped_on_plateau: bool,
    constant_dice: float,
    plateau: Plateau,
    collapse_margin: float,
    variation: float = math.nan,
    collapse_variation: float = 0.0,
) -> tuple[str, str]:
    """(outcome, reason) of a run from its epoch losses (L_0 first), its final hard Dice on the
    training set, whether it diverged, whether training stopped because of a plateau, and the
    variation of its final predicted masks (`prediction_variation`; NaN: not measured)."""
    if diverged:
        return "diverged", "a loss or weight became non-finite"
    losses = np.asarray(epoch_losses, dtype=np.float64)
    if ends_above_best(losses, plateau):
        best = int(np.argmin(losses))
        return "unstable", (
            f"the final loss {losses[-1]:.4f} lies {above_best(losses):.4f} above the best, {losses[best]:.4f} "
            f"at epoch {best}: more than {plateau.tolerance:g} x the initial loss {losses[0]:.4f}"
        )
    # A model that predicts the same mask for every image has collapsed whether or not its loss
    # still falls (its soft probabilities can sharpen without telling images apart): at a large
    # learning rate a few steps can kill every ReLU of the plain U-Net in the first epochs.
    if math.isfinite(variation) and variation <= collapse_variation:
        return "collapsed", (
            f"the final model predicts nearly the same mask for every image: its masks vary {variation:.3f} x as "
            f"much as the true ones (at most {collapse_variation:g})"
        )
    if not (stopped_on_plateau or plateau_reached(losses, plateau)):
        fall, initial = plateau_fall(losses, plateau.window)
        if math.isfinite(fall):
            detail = (
                f"the best loss of the last {plateau.window} epochs is {fall:.4f} below the best before them, "
                f"more than {plateau.tolerance:g} x the initial loss {initial:.4f}"
            )
        else:
            detail = f"fewer than {plateau.window + 1} evaluated epochs"
        return "not_converged", f"all epochs used and the loss is still falling: {detail}"
    if not final_dice > constant_dice + collapse_margin:
        return "collapsed", (
            f"the loss stopped falling at a final hard Dice of {final_dice:.4f}, not more than "
            f"{collapse_margin:g} above the best constant mask's {constant_dice:.4f}"
        )
    return "finished", "the training loss reached a plateau"


def write_outcome(summary: dict, path: str | os.PathLike) -> None:
    """The outcome as strict JSON (NaN written as null)."""
    def safe(v):
        if isinstance(v, dict):
            return {k: safe(item) for k, item in v.items()}
        if isinstance(v, (list, tuple)):
            return [safe(item) for item in v]
        return None if isinstance(v, float) and not math.isfinite(v) else v

    clean = safe(summary)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(clean, indent=2) + "\n")


def read_outcome(path: str | os.PathLike) -> dict:
    with open(path) as f:
        summary = json.load(f)
    if summary.get("outcome") not in CHECKPOINT_ROLES:
        raise ValueError(f"{path} is not an outcome file (no valid 'outcome')")
    return summary
