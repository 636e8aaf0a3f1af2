"""The basins of a loss surface: 0-dimensional sublevel-set persistence.

Flood the surface from below. At height t the sublevel set {L <= t} is a union of connected
pieces; each piece is a basin that was *born* at the height of its lowest point and *dies* at
the height where it first touches a deeper basin, into which it merges (the elder rule: of two
basins that meet, the younger one, born higher, ends). The deepest basin never merges; its
death is infinity. A basin's persistence, death - birth, is how deep it is measured from the
lowest pass out of it, so a wiggle of the surface gives a short-lived basin and a real second
valley a long-lived one (Edelsbrunner, Letscher & Zomorodian 2002, "Topological persistence and
simplification"; Edelsbrunner & Harer 2010, "Computational Topology", ch. VII). Horoi et al.
2022 ("Exploring the geometry and topology of neural network loss landscapes") read loss
landscapes this way.

Computed with GUDHI's cubical complexes (Wagner, Chen & Vucini 2012): the grid values are the
filtration values of the complex's vertices and every edge and square enters at the largest
value of its vertices (a lower-star filtration), so two grid points are joined by the edge
between them, i.e. only along the axes: a basin is a set of grid points connected through
horizontal and vertical neighbours (4-connectivity). Two points that touch only diagonally
are joined through the lower of the two points beside them, at its height. The loss is
`loss[i, j] = L(x[i], y[j])` as in `surface_metrics` (a curve `loss[i] = L(x[i])` works too);
persistence does not depend on the coordinates, nor on which axis comes first.

Missing values. Every non-finite grid value (NaN: a point not evaluated or whose network
diverged; also +-inf) is taken as height +inf: it is in no sublevel set below infinity, so it
never starts a basin, and basins never merge through it. A basin that missing points cut off
from every deeper one therefore never merges either (death inf, like the deepest one), and
one whose lowest point is missing starts at its lowest finite point.

Pairs with death == birth are left out: they come from ties on flat stretches (a point born and
merged at the same height), have no depth, and which of the tied points is "born" depends on an
arbitrary order.

Scaling. As for roughness, the numbers are relative to the surface's loss range R = max - min
over the finite values, so they do not change when the loss is replaced by a * L + b (a > 0).
"""

from __future__ import annotations

from numbers import Real

import gudhi
import numpy as np

from unetscape.measures.surface_metrics import loss_range


def _heights(loss) -> np.ndarray:
    """The grid values as float64 heights, every non-finite value replaced by +inf."""
    loss = np.asarray(loss, dtype=np.float64)
    if loss.ndim not in (1, 2):
        raise ValueError(
            f"a surface must be a 2-D array loss[i, j] = L(x[i], y[j]) (or a curve, 1-D), got shape {loss.shape}"
        )
    return np.where(np.isfinite(loss), loss, np.inf)


def check_threshold(threshold) -> float:
    """`threshold` as a float, or a ValueError naming the setting: a number with 0 <= t < 1."""
    if isinstance(threshold, bool) or not isinstance(threshold, Real) or not 0.0 <= float(threshold) < 1.0:
        raise ValueError(
            f"topology.threshold must be a number with 0 <= threshold < 1 (a fraction of the loss "
            f"range), got {threshold!r}"
        )
    return float(threshold)


def sublevel_persistence(loss) -> np.ndarray:
    """The (birth, death) pairs of the surface's basins, shape (k, 2).

    birth = the height of a basin's lowest point, death = the height at which it merges with a
    deeper basin (inf if it never does: the deepest basin, and any that missing points cut
    off). Sorted by persistence death - birth, largest first: the classes that never merge come
    first (deepest first), then the others, ties broken by the lower birth. Basins are
    4-connected and non-finite values are +inf heights (module docstring). A surface with no
    finite value has no basin: an empty (0, 2) array.
    """
    heights = _heights(loss)
    if not np.isfinite(heights).any():
        return np.empty((0, 2))
    complex_ = gudhi.CubicalComplex(vertices=heights)
    # min_persistence=0 keeps only pairs with death > birth (see the module docstring).
    complex_.compute_persistence(homology_coeff_field=2, min_persistence=0.0)
    pairs = np.asarray(complex_.persistence_intervals_in_dimension(0), dtype=np.float64).reshape(-1, 2)
    # Classes born at +inf are pieces made only of missing points: not basins.
    pairs = pairs[np.isfinite(pairs[:, 0]) & (pairs[:, 1] > pairs[:, 0])]
    persistence = pairs[:, 1] - pairs[:, 0]  # inf for the classes that never merge
    order = np.lexsort((pairs[:, 1], pairs[:, 0], -persistence))
    return pairs[order]


def _undefined(threshold: float) -> dict:
    nan = float("nan")
    return {
        "basins": nan, "total_persistence": nan, "max_persistence": nan, "merge_heights": [], "threshold": threshold,
    }


def persistence_metrics(loss, threshold: float) -> dict:
    """How many basins the surface has, and how deep the ones besides the deepest are.

    With R the loss range (max - min over the finite values) and p = death - birth per class
    of `sublevel_persistence`:

        basins             #{classes with p > threshold * R}; the deepest basin (p = inf) always
                           counts, so a single bowl has 1 basin, and so does every basin that
                           missing points cut off (they never merge either)
        total_persistence  sum of the finite p / R over all classes (0 for one bowl)
        max_persistence    the largest finite p / R (0 if there is none)
        merge_heights      the deaths of the counted basins that merge, ascending (loss values)
        threshold          as given

    total_persistence and max_persistence are dimensionless, like roughness. Fewer than two
    finite values, or a flat surface (R = 0), leave nothing to measure against: the numbers
    are NaN and merge_heights is empty, not an error, so tables over many runs keep their rows.
    """
    threshold = check_threshold(threshold)
    heights = _heights(loss)
    span = loss_range(heights)
    if np.isfinite(heights).sum() < 2 or not span > 0:
        return _undefined(threshold)
    pairs = sublevel_persistence(heights)
    persistence = pairs[:, 1] - pairs[:, 0]
    merges = np.isfinite(persistence)
    counted = ~merges | (persistence > threshold * span)
    finite = persistence[merges]
    return {
        "basins": int(counted.sum()),
        "total_persistence": float(finite.sum() / span),
        "max_persistence": float(finite.max() / span) if finite.size else 0.0,
        "merge_heights": sorted(float(d) for d in pairs[counted & merges, 1]),
        "threshold": threshold,
    }

