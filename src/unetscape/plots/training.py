"""The poster's training-loss panels: one panel per architecture, one line per run."""

from __future__ import annotations

import os

import numpy as np
from matplotlib.ticker import MaxNLocator

from ..training_tables import parse_run_id, read_history
from .style import arch_label, plt, save_figure

SEED_STYLES = ["-", "--", ":", "-."]


def _condition(run: dict, varying: list[str]) -> str:
    parts = []
    if "optimizer" in varying:
        parts.append(run["optimizer"])
    if "noise" in varying:
        parts.append(f"noise {run['noise']:g}")
    return ", ".join(parts) or run["optimizer"]


def plot_training_study(study: dict, history_paths: list[str | os.PathLike], *out_paths) -> None:
    """Whole-training-set Dice loss per epoch for every run of a study; diverged runs marked.

    `study` holds `title`, `runs` (run ids, same order as `history_paths`) and `archs`
    (name -> resolved architecture dict), as the workflow passes them.
    """
    runs = [parse_run_id(r) for r in study["runs"]]
    varying = [k for k in ("optimizer", "noise") if len({r[k] for r in runs}) > 1]
    conditions = list(dict.fromkeys(_condition(r, varying) for r in runs))
    colours = {c: plt.cm.viridis(v) for c, v in zip(conditions, np.linspace(0, 0.85, len(conditions)))}
    seeds = sorted({r["seed"] for r in runs})
    archs = list(study["archs"])

    fig, axes = plt.subplots(1, len(archs), figsize=(4.6 * len(archs), 3.6), squeeze=False)
    any_diverged = False
    for ax, arch in zip(axes[0], archs):
        diverged_here = False
        for run, path in zip(runs, history_paths):
            if run["arch"] != arch:
                continue
            history = read_history(path)
            epochs = history[history["kind"] == "epoch"]
            condition = _condition(run, varying)
            style = SEED_STYLES[seeds.index(run["seed"]) % len(SEED_STYLES)]
            ax.plot(epochs["epoch"], epochs["loss"], style, color=colours[condition], lw=1.4)
            if history["diverged"].any():
                diverged_here = True
                finite = epochs[np.isfinite(epochs["loss"])]
                ax.plot(finite["epoch"].iloc[-1], finite["loss"].iloc[-1], "x", color="crimson", ms=9, mew=2)
        ax.set_title(arch_label(arch, study["archs"][arch]))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("Dice loss (training set)")
        any_diverged = any_diverged or diverged_here

    handles = [plt.Line2D([], [], color=colours[c], lw=2, label=c) for c in conditions]
    if len(seeds) > 1:
        handles += [
            plt.Line2D([], [], color="grey", ls=SEED_STYLES[i % len(SEED_STYLES)], label=f"seed {s}")
            for i, s in enumerate(seeds)
        ]
    if any_diverged:
        handles.append(plt.Line2D([], [], color="crimson", marker="x", ls="", mew=2, label="diverged (last finite)"))
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle(study["title"])
    fig.tight_layout()
    save_figure(fig, *out_paths)
