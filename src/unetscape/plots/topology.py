"""The persistence diagram of a loss surface's basins, drawn into a panel the caller made."""

from __future__ import annotations

import math

import numpy as np

from unetscape.measures.topology import check_threshold
from unetscape.plots.no_data import say_why

# Colours of the classes that count as basins and of those too shallow to count.
BASIN_COLOUR = "tab:blue"
SHALLOW_COLOUR = "0.55"


def draw_persistence_diagram(ax, pairs, threshold: float, loss_range: float) -> dict:
    """Draw the (birth, death) pairs of `measures.topology.sublevel_persistence` on `ax`.

    Birth on x, death on y, both in loss units and on the same scale. Every class lies on or
    above the diagonal death = birth; its height above it is its persistence. The band
    birth <= death <= birth + threshold * loss_range is shaded: classes inside it are too
    shallow to count as basins (drawn hollow, grey), those above it count (filled). Classes
    that never merge (death inf) are drawn at the top edge as upward triangles, labelled
    "never merges". Sized for a panel of about 2.5 x 2.5 inches.

    Returns the artists by name ("diagonal", "band", "basins", "shallow", "never"; those not
    drawn are absent). With no pairs the panel says so instead.
    """
    threshold = check_threshold(threshold)
    pairs = np.asarray(pairs, dtype=np.float64)
    if pairs.size == 0:
        say_why(ax, "no finite loss values: no basins to draw")
        return {}
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(f"pairs must have shape (k, 2), got {pairs.shape}")
    if not np.isfinite(pairs[:, 0]).all() or (pairs[:, 1] < pairs[:, 0]).any():
        raise ValueError("pairs must be (birth, death) rows with a finite birth and death >= birth")
    band = threshold * loss_range if math.isfinite(loss_range) else float("nan")

    never = ~np.isfinite(pairs[:, 1])
    merging = pairs[~never]
    low = float(pairs[:, 0].min())
    high = float(max(pairs[:, 0].max(), merging[:, 1].max() if merging.size else -np.inf))
    span = max(high - low, loss_range if math.isfinite(loss_range) else 0.0, 1e-12)
    pad = 0.06 * span
    top = high + 2 * pad  # the edge on which the classes that never merge sit
    lo = low - pad

    drawn: dict = {}
    edge = np.array([lo, top])
    (drawn["diagonal"],) = ax.plot(edge, edge, color="black", lw=0.8, zorder=1)
    if math.isfinite(band) and band > 0:
        drawn["band"] = ax.fill_between(
            edge, edge, edge + band, color="0.85", lw=0, zorder=0, label=f"death − birth ≤ {threshold:g} × range"
        )
    # Without a range (NaN) nothing can be called too shallow.
    shallow = merging[:, 1] - merging[:, 0] <= band if math.isfinite(band) else np.zeros(len(merging), dtype=bool)
    style = {"s": 16, "zorder": 3, "clip_on": False}
    if (~shallow).any():
        drawn["basins"] = ax.scatter(*merging[~shallow].T, color=BASIN_COLOUR, label="basin", **style)
    if shallow.any():
        drawn["shallow"] = ax.scatter(
            *merging[shallow].T, facecolor="none", edgecolor=SHALLOW_COLOUR, label="too shallow", **style
        )
    if never.any():
        ax.axhline(top, color="0.4", lw=0.6, ls=":", zorder=1)
        ax.text(lo, top, "∞ ", ha="right", va="center", fontsize=8, clip_on=False)  # read as a y value
        drawn["never"] = ax.scatter(
            pairs[never, 0], np.full(int(never.sum()), top), marker="^", color=BASIN_COLOUR,
            edgecolor="black", linewidth=0.5, label="never merges", **{**style, "s": 30, "zorder": 4},
        )

    ax.set_xlim(lo, top)
    ax.set_ylim(lo, top)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("birth: basin floor (loss)", fontsize=8)
    ax.set_ylabel("death: merge height (loss)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.locator_params(nbins=4)
    # Below the diagonal nothing is ever drawn: the legend's place.
    ax.legend(loc="lower right", fontsize=6.5, handlelength=1.2, borderpad=0.3, labelspacing=0.25, framealpha=0.75)
    return drawn
