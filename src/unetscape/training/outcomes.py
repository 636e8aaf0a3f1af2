"""How a training run ended: finished, diverged, collapsed or not converged.

Every run gets exactly one outcome, decided from its own training:

    diverged       a loss or weight became NaN or infinite; training stopped there
    not_converged  training used all its epochs and the epoch loss was still falling by more
                   than the plateau tolerance (`plateau_reached`)
    collapsed      the loss stopped falling at a model no better than a constant prediction:
                   its final hard Dice on the training set is no more than `collapse_margin`
                   above the best constant mask's (`best_constant_dice`)
    finished       none of the above: a trained model at a plateau of its training loss

They are checked in that order, so a run that diverged is never also called collapsed. Only
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

OUTCOMES = ("finished", "diverged", "collapsed", "not_converged")
# What the landscape jobs measure for each outcome, and how files and figures label it.
CHECKPOINT_ROLES = {
    "finished": "trained",
    "not_converged": "final weights, not converged",
    "collapsed": "final weights, collapsed",
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
    reached a plateau when fall <= tolerance * L_0. Taking the best loss of each stretch, not
    the last, keeps the epoch-to-epoch noise of SGD from counting as progress or as a stall;
    measuring against the initial loss makes the rule independent of the loss's scale and
    also stops a run that never learns.
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


def plateau_reached(losses: Sequence[float], plateau: Plateau) -> bool:
    """Whether the epoch losses L_0..L_e (L_0: the initial weights) end on a plateau."""
    fall, initial = plateau_fall(losses, plateau.window)
    return math.isfinite(fall) and fall <= plateau.tolerance * initial


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
    masks is out of reach; the search runs over the H·W + 1 masks made of the k pixels most
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
) -> tuple[str, str]:
    """(outcome, reason) of a run from its epoch losses (L_0 first), its final hard Dice on the
    training set, whether it diverged and whether training stopped because of a plateau."""
    if diverged:
        return "diverged", "a loss or weight became non-finite"
    if not (stopped_on_plateau or plateau_reached(epoch_losses, plateau)):
        fall, initial = plateau_fall(epoch_losses, plateau.window)
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
        return None if isinstance(v, float) and not math.isfinite(v) else v

    clean = {k: ({kk: safe(vv) for kk, vv in v.items()} if isinstance(v, dict) else safe(v))
             for k, v in summary.items()}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(clean, indent=2) + "\n")


def read_outcome(path: str | os.PathLike) -> dict:
    with open(path) as f:
        summary = json.load(f)
    if summary.get("outcome") not in CHECKPOINT_ROLES:
        raise ValueError(f"{path} is not an outcome file (no valid 'outcome')")
    return summary
