"""The poster's training-loss panels: one panel per architecture, one line per run."""

from __future__ import annotations

import os
import textwrap

import numpy as np
from matplotlib.ticker import MaxNLocator

from unetscape.training.tables import parse_run_id, read_history

from .style import REPORT_WIDTH, arch_label, plt, save_figure, seed_style

# What may tell a study's conditions apart besides the architecture (and the seed), in the
# order a condition's label names them.
CONDITION_FACTORS = ("optimizer", "noise", "lr", "train_size", "batch_size")


def varying_factors(runs: list[dict]) -> list[str]:
    """The factors of `CONDITION_FACTORS` whose value differs between these runs."""
    return [k for k in CONDITION_FACTORS if len({r.get(k) for r in runs}) > 1]


def condition_label(run: dict, varying: list[str]) -> str:
    """What tells a run's condition apart within a study besides its architecture and seed,
    e.g. 'sgd_momentum, lr 0.1' (a learning rate of None: the optimiser's configured one)."""
    words = {"optimizer": lambda v: str(v), "noise": lambda v: f"noise {v:g}",
             "lr": lambda v: "default lr" if v is None else f"lr {v:g}",
             "train_size": lambda v: "all images" if v is None else f"{v} images",
             "batch_size": lambda v: "default batch" if v is None else f"batch {v}"}
    parts = [words[k](run.get(k)) for k in CONDITION_FACTORS if k in varying]
    return ", ".join(parts) or run["optimizer"]


def panel_title(text: str, width: int = 30) -> str:
    """A panel title on two lines when it is long (side by side, long titles ran together)."""
    if len(text) <= width or " (" not in text:
        return text
    head, _, rest = text.partition(" (")
    return f"{head}\n({rest}" if len(head) <= width else textwrap.fill(text, width)


# The best constant mask's hard Dice: a wide faint band, unlike any seed's line style.
CONSTANT_LINE = dict(color="black", lw=3, alpha=0.25, ls="-")


def condition_colours(conditions: list[str]) -> dict[str, tuple]:
    """A distinct colour per condition of a figure; never grey, which the legend's seed line
    styles, the constant mask and the failure marks use."""
    palette = [c for k, c in enumerate(plt.cm.tab10.colors) if k != 7]
    if len(conditions) > len(palette):
        palette = [c for k, c in enumerate(plt.cm.tab20.colors) if k not in (14, 15)]
    return {c: palette[k % len(palette)] for k, c in enumerate(conditions)}


OUTCOME_MARKS = {  # how a run that did not finish is marked at its last evaluated epoch
    "diverged": dict(marker="x", color="crimson", ms=9, mew=2, label="diverged (last finite epoch)"),
    "unstable": dict(marker="D", color="purple", ms=6, mfc="none", mew=1.5, label="unstable (ends above its best)"),
    "collapsed": dict(marker="s", color="dimgrey", ms=6, mfc="none", mew=1.5, label="collapsed (constant prediction)"),
    "not_converged": dict(marker="o", color="black", ms=6, mfc="none", mew=1.2, label="not converged (still falling)"),
}


RISE_MARK = dict(marker="^", color="crimson", ms=4, label="epoch loss rose > plateau tolerance")


def plot_training_study(study: dict, history_paths: list[str | os.PathLike], *out_paths,
                        outcome_paths: list[str | os.PathLike] | None = None) -> None:
    """Whole-training-set Dice loss (top) and hard Dice (bottom) per epoch for every run of a
    study, one column per architecture; runs that did not finish are marked at their last
    epoch, and the hard Dice of the best constant mask is drawn as a reference line.

    `study` holds `title`, `runs` (run ids, same order as `history_paths`) and `archs`
    (name -> resolved architecture dict), as the workflow passes them.
    """
    from unetscape.training.outcomes import read_outcome

    runs = [parse_run_id(r) for r in study["runs"]]
    histories = [read_history(p) for p in history_paths]
    for run, history in zip(runs, histories):  # the learning rate it trained with, where the id leaves it out
        if run["lr"] is None and "lr" in history and history["lr"].notna().any():
            run["lr"] = float(history["lr"].dropna().iloc[0])
    outcomes = [read_outcome(p) for p in outcome_paths] if outcome_paths else [None] * len(runs)
    varying = varying_factors(runs)
    conditions = list(dict.fromkeys(condition_label(r, varying) for r in runs))
    colours = condition_colours(conditions)
    seeds = sorted({r["seed"] for r in runs})
    archs = list(study["archs"])

    # at most 3 architectures side by side, each a loss panel over a hard-Dice panel
    n_cols = min(len(archs), 3)
    n_blocks = -(-len(archs) // n_cols)
    # the legend goes below the panels when three columns leave no room beside them
    below = n_cols == 3
    width = min(REPORT_WIDTH, 2.9 * n_cols + (0 if below else 2.6))
    fig, axes = plt.subplots(2 * n_blocks, n_cols, figsize=(width, 4.4 * n_blocks + 0.6 + 0.9 * below),
                             squeeze=False, layout="constrained")
    for k in range(len(archs), n_blocks * n_cols):
        axes[2 * (k // n_cols)][k % n_cols].axis("off")
        axes[2 * (k // n_cols) + 1][k % n_cols].axis("off")
    marked: dict[str, dict] = {}
    constants = [o["constant_dice"] for o in outcomes if o is not None]
    for k, arch in enumerate(archs):
        loss_ax, dice_ax = axes[2 * (k // n_cols)][k % n_cols], axes[2 * (k // n_cols) + 1][k % n_cols]
        loss_ax.sharex(dice_ax)
        loss_ax.tick_params(labelbottom=False)
        for run, history, outcome in zip(runs, histories, outcomes):
            if run["arch"] != arch:
                continue
            epochs = history[history["kind"] == "epoch"]
            finite = epochs[np.isfinite(epochs["loss"])]
            condition = condition_label(run, varying)
            style = seed_style(seeds.index(run["seed"]))
            loss_ax.plot(finite["epoch"], finite["loss"], color=colours[condition], lw=1.2, **style)
            dice_ax.plot(finite["epoch"], finite["dice"], color=colours[condition], lw=1.2, **style)
            rises = (outcome or {}).get("stability", {}).get("rise_epochs") or []
            risen = finite[finite["epoch"].isin(rises)]
            if len(risen):
                loss_ax.plot(risen["epoch"], risen["loss"], "^", color="crimson", ms=5, ls="", zorder=5)
                marked["rise"] = RISE_MARK
            result = str(history["outcome"].iloc[-1])
            if result in OUTCOME_MARKS and not finite.empty:
                mark = OUTCOME_MARKS[result]
                marked[result] = mark
                style_kw = {k: v for k, v in mark.items() if k != "label"}
                loss_ax.plot(finite["epoch"].iloc[-1], finite["loss"].iloc[-1], ls="", **style_kw)
                dice_ax.plot(finite["epoch"].iloc[-1], finite["dice"].iloc[-1], ls="", **style_kw)
        loss_ax.set_title(panel_title(arch_label(arch, study["archs"][arch])), fontsize=9)
        if dice_ax.get_xlim()[1] < 1:  # only epoch 0 drawn: keep integer epochs on the axis
            dice_ax.set_xlim(-0.5, 1.5)
        loss_ax.set_ylabel("Dice loss (training set)", fontsize=8)
        dice_ax.set_ylabel("hard Dice (training set)", fontsize=8)
        dice_ax.set_xlabel("epoch", fontsize=8)
        loss_ax.tick_params(labelsize=8)
        dice_ax.tick_params(labelsize=8)
        dice_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if constants:
            dice_ax.axhline(max(constants), **CONSTANT_LINE)
            dice_ax.set_ylim(min(0.0, dice_ax.get_ylim()[0]), 1.0)

    handles = [plt.Line2D([], [], color=colours[c], lw=2, label=c) for c in conditions]
    if len(seeds) > 1:
        handles += [plt.Line2D([], [], color="grey", label=f"seed {s}", **seed_style(i)) for i, s in enumerate(seeds)]
    if constants:
        handles.append(plt.Line2D([], [], **CONSTANT_LINE, label=f"best constant mask (Dice {max(constants):.3f})"))
    for mark in marked.values():
        handles.append(plt.Line2D([], [], ls="", **mark))
    if below:
        fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False, fontsize=8)
    else:
        fig.legend(handles=handles, loc="outside right center", frameon=False, fontsize=8)
    fig.suptitle(study["title"], fontsize=10)
    save_figure(fig, *out_paths)
