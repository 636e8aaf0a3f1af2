"""Figure: how much of a number made from random directions is the direction and how much the
seed, per condition of a study (the table `directions_{study}.csv`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .no_data import say_why
from .style import MAX_WIDTH, plt, save_figure

METRICS = (
    ("roughness", "roughness"),
    ("total_variation", "total variation"),
    ("sharpness_r0.5", "sharpness, radius 0.5"),
    ("basins", "basins"),
)
CONDITION = ("arch", "optimizer", "lr", "batch_size", "train_size", "noise")


def _label(row: pd.Series, varied: list[str]) -> str:
    parts = []
    for factor in varied:
        value = row[factor]
        parts.append(f"{factor} {value:g}" if isinstance(value, (float, np.floating)) else str(value))
    return ", ".join(parts)


def plot_directions(title: str, directions_csv, *out_paths) -> None:
    """Per metric, per condition: the standard deviation between directions within a run, the
    standard deviation between seeds beyond it, and the standard error over directions of a
    run's average (what the tables' averaged numbers carry); a condition whose averaged number
    measures its seeds more than its directions has that error at most half the seed's SD."""
    table = pd.read_csv(directions_csv)
    metrics = [(m, name) for m, name in METRICS if "metric" in table and (table["metric"] == m).any()]
    if not metrics:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.set_title(title, fontsize=9)
        say_why(ax, "no numbers made from random directions: the study has no landscapes or no finished run")
        save_figure(fig, *out_paths)
        return
    varied = [f for f in CONDITION if f in table and table[f].nunique() > 1] or ["arch"]
    labels = list(dict.fromkeys(_label(row, varied) for _, row in table.iterrows()))
    height = 0.9 + 0.32 * len(labels) * 1.0
    fig, axes = plt.subplots(1, len(metrics), figsize=(min(MAX_WIDTH, 2.6 * len(metrics) + 2.4), max(2.6, height)),
                             sharey=True, squeeze=False)
    bars = (("sd_direction", "direction (within a run)", "tab:orange"),
            ("sd_seed", "seed (between runs)", "tab:blue"),
            ("se_directions", "standard error of the average", "tab:grey"))
    y = np.arange(len(labels))
    for ax, (metric, name) in zip(axes[0], metrics):
        rows = table[table["metric"] == metric].copy()
        rows["label"] = [_label(row, varied) for _, row in rows.iterrows()]
        rows = rows.set_index("label").reindex(labels)
        for k, (column, legend, colour) in enumerate(bars):
            ax.barh(y + (k - 1) * 0.26, rows[column].to_numpy(dtype=float), height=0.24, color=colour,
                    label=legend)
        for j, (_, row) in enumerate(rows.iterrows()):
            if row.get("criterion") == "not met":
                ax.text(0, j, "×", color="crimson", fontsize=9, va="center", ha="right")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("standard deviation", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_yticks(y, labels, fontsize=7)
    axes[0, 0].invert_yaxis()
    sets = int(table["sets"].max()) if "sets" in table else 0
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize=7, frameon=False, bbox_to_anchor=(0.5, -0.06))
    fig.suptitle(f"{title}: spread between directions and between seeds ({sets} direction sets per run)\n"
                 "× : the averaged number's error over directions is more than half the seeds' spread", fontsize=9)
    fig.tight_layout()
    save_figure(fig, *out_paths)
