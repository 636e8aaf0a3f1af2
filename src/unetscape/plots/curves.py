"""Figure: are the seeds' minima connected? The loss along the trained Bezier curve and along the
straight line between consecutive seeds of each condition."""

from __future__ import annotations

import math
from typing import Sequence

import h5py
import numpy as np

from unetscape.landscape.surface_io import read_attrs

from .no_data import say_why
from .style import MAX_COLUMNS, MAX_WIDTH, plt, save_figure


def _read(path) -> dict:
    with h5py.File(path, "r") as f:
        return {"t": f["t"][()], "curve": f["train_loss"][()], "line": f["line_train_loss"][()],
                "attrs": read_attrs(f)}


def plot_curves(title: str, pairs: Sequence[Sequence[str]], *out_paths) -> None:
    """One panel per condition: for each pair of consecutive seeds, the Dice loss along the
    straight line (dashed) and along the trained curve (solid), both with batch-norm statistics
    re-estimated at every t; the legend gives each path's barrier (highest loss minus the mean
    of its ends)."""
    conditions: dict[str, list] = {}
    for run_a, run_b, path in pairs:
        condition = run_a.rsplit("/seed", 1)[0]
        seeds = f"seeds {run_a.rsplit('seed', 1)[1]}-{run_b.rsplit('seed', 1)[1]}"
        conditions.setdefault(condition, []).append((seeds, _read(path)))
    if not conditions:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.set_title(title, fontsize=9)
        say_why(ax, "no curves: the study has no pair of consecutive seeds")
        save_figure(fig, *out_paths)
        return
    n_cols = min(len(conditions), MAX_COLUMNS - 1, 4)
    n_rows = math.ceil(len(conditions) / n_cols)
    # each panel's legend goes under it (the paths fill the panel: a legend inside hides them)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(min(MAX_WIDTH, 3.0 * n_cols + 0.6), 3.9 * n_rows + 0.7),
                             squeeze=False, sharey=True)
    for ax in axes.flat[len(conditions):]:
        ax.axis("off")
    colours = plt.cm.tab10.colors
    for ax, (condition, found) in zip(axes.flat, conditions.items()):
        ax.set_title(condition, fontsize=8)
        drawn = False
        for k, (seeds, data) in enumerate(found):
            if not np.isfinite(data["curve"]).any():
                continue
            colour = colours[k % len(colours)]
            ax.plot(data["t"], data["line"], "--", color=colour, lw=1.0)
            ax.plot(data["t"], data["curve"], "-", color=colour, lw=1.6,
                    label=f"{seeds}: line {data['attrs'].get('barrier_line', math.nan):.3f}, "
                          f"curve {data['attrs'].get('barrier_curve', math.nan):.3f}")
            drawn = True
        if not drawn:
            why = found[0][1]["attrs"].get("unavailable", "no finite loss on any path")
            say_why(ax, f"no paths: {why}", color="crimson")
            continue
        ax.set_xlabel("t (0: seed a, 1: seed b)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, frameon=False, title="barrier", title_fontsize=7, loc="upper center",
                  bbox_to_anchor=(0.5, -0.2), handlelength=1.6)
    for row in axes:
        row[0].set_ylabel("Dice loss", fontsize=8)
    fig.suptitle(f"{title}: loss along the straight line (dashed) and the trained Bezier curve (solid) between "
                 "consecutive seeds", fontsize=9)
    fig.tight_layout()
    save_figure(fig, *out_paths)
