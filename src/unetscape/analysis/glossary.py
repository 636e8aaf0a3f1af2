"""What each measure a report page names is: one line per measure, with its formula.

The formulas are those of the code that computes the numbers: measures/surface_metrics.py
(roughness, total variation), measures/curvature.py with measures/hessian.py and
measures/lanczos.py (the scale-normalised Hessian), training/stability.py (rises and
volatility, of the whole-set epoch losses; the probe numbers are the same on a fixed probe set)
and training/outcomes.py (what counts as failed). Notation: L the Dice loss; on a random plane
R = max L - min L and ell = half the grid's width; H the Hessian of the training loss at the
final weights w; lr the learning rate, beta the momentum.
"""

from __future__ import annotations

import fnmatch
from typing import Iterable

GLOSSARY = {
    "roughness": (
        "mean over the run's random filter-normalised planes of ell^2 / R x mean |d2L/dx2 + d2L/dy2| over the "
        "grid's interior points (three-point differences): 2 for a bowl, more for every ripple"
    ),
    "roughness_first": "roughness of the first random plane alone (the number a single picture gives)",
    "roughness_se": "standard error of the mean roughness over the run's random planes",
    "total_variation": (
        "ell / R x (mean |dL/dx| + mean |dL/dy|) over adjacent grid points of the random plane: 1 for a bowl"
    ),
    "relative_lambda_max": (
        "largest eigenvalue of the scale-normalised Hessian diag(|w|) H diag(|w|) (Lanczos; a value whose "
        "Lanczos did not converge is left out), unchanged by rescalings that leave the network's function alone"
    ),
    "relative_nonconvexity": (
        "|min(lambda_min, 0) / lambda_max| of the scale-normalised Hessian (Li et al.'s ratio): 0 when no "
        "eigenvalue is negative"
    ),
    "relative_trace": "trace of the scale-normalised Hessian, Hutchinson's estimate with Rademacher vectors",
    "relative_lambda_min": "smallest eigenvalue of the scale-normalised Hessian (Lanczos)",
    "probe_largest_rise": (
        "max(0, max_t (P_t - P_(t-1))) / P_0, P_t the loss of a fixed probe set of training images evaluated "
        "every k steps: the largest rise of the probe loss, as a fraction of its initial value"
    ),
    "probe_volatility": (
        "median over consecutive probe evaluations of |log P_t - log P_(t-1)|: how much the probe loss jumps"
    ),
    "probe_rises": "number of probe evaluations t with P_t - P_(t-1) > tolerance x P_0 (the plateau rule's tolerance)",
    "eos_lambda_ratio_final": (
        "lambda_max(H) x lr / 2 at the end of training, x 1 / (1 + beta) with momentum: 1 is gradient descent's "
        "edge of stability (2 / lr; 2 (1 + beta) / lr with heavy-ball momentum)"
    ),
    "eos_batch_ratio_final": (
        "batch sharpness g'H_B g / |g|^2 of a mini-batch (g its gradient, H_B its Hessian) x lr / 2 at the end of "
        "training, x 1 / (1 - beta) with momentum: 1 is small-batch SGD's edge (2 / lr; 2 (1 - beta) / lr)"
    ),
    "failed": (
        "1 if the run's outcome is unstable (ends well above its best loss), diverged (a non-finite loss) or "
        "collapsed (the same mask for every image), else 0; over runs, the share that failed"
    ),
    "largest_rise": "max(0, max_e (L_e - L_(e-1))) / L_0 over the whole-set epoch losses L_e",
    "step_volatility": "median over consecutive training steps of |log l_(s+1) - log l_s| (mini-batch losses)",
    "loss_rises": "number of epochs e with L_e - L_(e-1) > tolerance x L_0",
    "final_heldout_dice": "hard Dice of the final weights on the held-out images",
    "gap_loss": "held-out minus training Dice loss of the final weights (the generalisation gap)",
    "basins": (
        "mean over the run's random planes of the number of basins: 0-dimensional sublevel-set persistence "
        "classes of the surface (GUDHI cubical complex) whose persistence exceeds metrics.topology.threshold x its "
        "loss range, the deepest included: 1 for a single bowl"
    ),
    "total_persistence": (
        "mean over the run's random planes of the summed persistence (merge height - floor) of every basin that "
        "merges, over the surface's loss range: 0 for a single bowl"
    ),
    "curve_barrier_next": (
        "loss barrier of a trained quadratic Bezier curve (Garipov et al. 2018) from this run to the next seed of "
        "its condition: the highest loss on the curve minus the mean of its two ends"
    ),
    "line_barrier_next": (
        "the same barrier along the straight line between the two seeds' weights (batch-norm statistics "
        "re-estimated at every t)"
    ),
    "part_*_lambda_max": (
        "largest eigenvalue of the scale-normalised Hessian restricted to one part of the network (an encoder "
        "level, the bottleneck, a decoder level or the head), every other weight fixed"
    ),
    "eos_lambda_ratio_max": "the largest eos_lambda_ratio over the checkpoints measured",
    "eos_batch_ratio_max": "the largest eos_batch_ratio over the checkpoints measured",
}


def _entry(measure: str) -> str | None:
    """The glossary line of a measure, a pattern's (e.g. part_*_lambda_max) for its columns."""
    if measure in GLOSSARY:
        return GLOSSARY[measure]
    for name, line in GLOSSARY.items():
        if "*" in name and fnmatch.fnmatchcase(measure, name):
            return line
    return None


def describe(measure: str) -> str:
    """The measure's line, or a plain statement that there is none."""
    return _entry(measure) or "a column of the runs table (no formula on record)"


def glossary_lines(measures: Iterable[str]) -> list[str]:
    """reStructuredText lines: a bullet per distinct measure, in the order first named (the
    formulas' bars escaped, which reStructuredText would read as substitutions)."""
    return [f"- ``{m}``: {describe(m).replace('|', chr(92) + '|')}" for m in dict.fromkeys(measures)]
