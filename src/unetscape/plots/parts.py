"""Figure: where in the network the curvature lives, per condition of a study."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .no_data import say_why
from .style import MAX_WIDTH, plt, save_figure

PART = re.compile(r"^part_(?P<part>.+)_(?P<number>lambda_max|trace)$")


def _order(part: str) -> tuple:
    """encoder1.. , bottleneck, decoder1.., head, then any other part (in name order)."""
    match = re.match(r"^(encoder|decoder)(\d+)$", part)
    if match:
        return (0 if match.group(1) == "encoder" else 2, int(match.group(2)), part)
    return ({"bottleneck": 1, "head": 3}.get(part, 4), 0, part)


def plot_parts(title: str, runs_csv, *out_paths) -> None:
    """Left: the top eigenvalue of the scale-normalised Hessian restricted to each part
    (block-diagonal), right: that restriction's trace (Hutchinson); per condition the mean over
    its finished runs (line) and each run (dots), both on log scales (a trace estimate at or
    below 0, possible with few Rademacher samples, is not drawn; the tables keep it)."""
    runs = pd.read_csv(runs_csv)
    runs = runs[runs["outcome"] == "finished"] if "outcome" in runs else runs
    parts = sorted({m.group("part") for c in runs.columns if (m := PART.match(c))}, key=_order)
    fig, axes = plt.subplots(1, 2, figsize=(min(MAX_WIDTH, 10.0), 3.9), squeeze=False)
    if not parts or runs.empty:
        for ax in axes[0]:
            say_why(ax, "no curvature per part: not measured for this study's runs (curvature.parts), or no "
                        "finished run")
        fig.suptitle(title, fontsize=10)
        save_figure(fig, *out_paths)
        return
    keys = [f for f in ("arch", "optimizer", "lr", "noise") if f in runs and runs[f].nunique() > 1] or ["arch"]
    x = np.arange(len(parts))
    colours = plt.cm.tab10.colors
    for k, (key, group) in enumerate(runs.groupby(keys, sort=True)):
        label = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in (key if isinstance(key, tuple) else (key,)))
        colour = colours[k % len(colours)]
        offset = (k - 0.5 * (runs.groupby(keys).ngroups - 1)) * 0.06
        for ax, number in zip(axes[0], ("lambda_max", "trace")):
            values = np.array([[row.get(f"part_{p}_{number}", np.nan) for p in parts] for _, row in group.iterrows()],
                              dtype=float)
            if number == "lambda_max":  # an unconverged solve is left out, as in every statistic
                converged = np.array([[bool(row.get(f"part_{p}_lanczos_converged", True)) for p in parts]
                                      for _, row in group.iterrows()])
                values = np.where(converged, values, np.nan)
            values = np.where(values > 0, values, np.nan)  # a log axis holds positive values only
            with np.errstate(all="ignore"):
                mean = np.nanmean(values, axis=0)
            ax.plot(x + offset, mean, "-", color=colour, lw=1.4, label=label)
            for row in values:
                ax.plot(x + offset, row, ".", color=colour, alpha=0.5, ms=4)
    for ax, name in zip(axes[0], ("top eigenvalue of the part's scale-normalised Hessian",
                                  "trace of the part's scale-normalised Hessian")):
        ax.set_xticks(x, parts, rotation=30, ha="right", fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_yscale("log")
    axes[0, 1].set_yscale("log")
    axes[0, 1].legend(fontsize=7, frameon=False, title=", ".join(keys), title_fontsize=7, loc="upper right")
    fig.suptitle(f"{title}: curvature per part of the network (each part's weights alone, the others fixed)",
                 fontsize=9)
    fig.tight_layout()
    save_figure(fig, *out_paths)
