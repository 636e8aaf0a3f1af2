"""Figures of the generalisation study: each measure against held-out numbers over the runs,
and every measure ranked by how well it predicts held-out Dice.

The rank correlations shown are the ones the table holds (`report_pages.tau_column_names`): the
pooled tau, and the within-condition (granulated) tau where the table has it, so that a measure
that only tells architectures apart shows as such.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from unetscape.analysis.generalisation import MEASURES, TARGETS
from unetscape.training.outcome_words import no_finished_run

from .no_data import say_why
from .report_pages import TAU_WORDS, cell, display_columns, tau_column_names
from .style import plt, save_figure

MARKERS = {"sgd": "o", "sgd_momentum": "^"}
MEANS = {"sharper": "larger = sharper minimum", "flatter": "larger = flatter minimum",
         "larger": "a size of the weights"}


def measure_words(measure: str) -> str:
    """A measure's axis label in words, e.g. 'largest Hessian eigenvalue (larger = sharper minimum)'."""
    if measure not in MEASURES:
        return measure
    text, kind, _invariant = MEASURES[measure]
    return f"{text} ({MEANS.get(kind, kind)})"


def tau_summary(row: pd.Series, table: pd.DataFrame) -> str:
    """Every tau of one table row, e.g. 'pooled tau 0.52 [0.31, 0.70]; within-condition tau (Psi) 0.08'."""
    shown = display_columns(table, tau_column_names(table))
    return "; ".join(f"{TAU_WORDS.get(name, name)} {cell(row, sources)[0]}" for name, sources in shown)


def plot_measure(runs: pd.DataFrame, table: pd.DataFrame, measure: str, *out_paths) -> None:
    """One measure against held-out Dice and against the gap, every finished run a point,
    coloured by architecture, shaped by optimiser, hollow when trained with input noise; each
    panel's title gives the pooled and the within-condition tau."""
    finished = runs[runs["outcome"] == "finished"]
    archs = sorted(finished["arch"].unique())
    colours = dict(zip(archs, plt.cm.tab10.colors))
    fig, axes = plt.subplots(1, len(TARGETS), figsize=(4.3 * len(TARGETS) + 1.8, 3.9), squeeze=False,
                             layout="constrained")
    for ax, (target, label) in zip(axes[0], TARGETS.items()):
        if finished.empty:  # every run of every study failed: nothing to rank
            ax.set_title(label if len(label) < 40 else target, fontsize=9)
            say_why(ax, no_finished_run(runs["outcome"]), color="crimson")
            continue
        for _, run in finished.iterrows():
            noisy = run["noise"] > 0
            ax.plot(run[measure], run[target], MARKERS.get(run["optimizer"], "s"), color=colours[run["arch"]], ms=6,
                    mfc="none" if noisy else colours[run["arch"]], alpha=0.85)
        row = table[(table["measure"] == measure) & (table["target"] == target)]
        if len(row):
            r = row.iloc[0]
            ax.set_title(textwrap.fill(f"{tau_summary(r, table)}, n={int(r['n'])}", 50), fontsize=8)
        ax.set_xlabel(textwrap.fill(measure_words(measure), 45), fontsize=8)
        ax.set_ylabel(textwrap.fill(label, 30), fontsize=8)
        ax.tick_params(labelsize=7)
    handles = [plt.Line2D([], [], marker="o", ls="", color=colours[a], label=a) for a in archs]
    handles += [plt.Line2D([], [], marker=m, ls="", color="grey", label=o) for o, m in MARKERS.items()]
    handles.append(plt.Line2D([], [], marker="o", ls="", color="grey", mfc="none", label="trained with input noise"))
    if not finished.empty:
        fig.legend(handles=handles, loc="outside right center", frameon=False, fontsize=7)
    fig.suptitle(f"{measure}: finished runs, coloured by architecture", fontsize=10)
    save_figure(fig, *out_paths)


def plot_ranking(table: pd.DataFrame, *out_paths, level: float = 0.95, outcomes=None) -> None:
    """Each tau of every measure with held-out Dice and with the gap: the first (the
    within-condition tau) with its bootstrap interval (bars), the others as markers; ranked as
    the table ranks them. The legend is below the panels. A target with no tau at all says why:
    `outcomes` (of every run) when no run finished."""
    heldout = table[table["target"] == "final_heldout_dice"].sort_values("rank", ascending=False)
    order = list(heldout["measure"])
    names = tau_column_names(table)
    shown = display_columns(table, names)
    headline, others = (shown[0], shown[1:]) if shown else (("tau", ["tau"]), [])
    fig, axes = plt.subplots(1, len(TARGETS), figsize=(10.5, 0.3 * len(order) + 2.2), sharey=True,
                             squeeze=False, layout="constrained")
    marks = ["D", "s", "v", "P"]
    for ax, (target, label) in zip(axes[0], TARGETS.items()):
        rows = table[table["target"] == target].set_index("measure").reindex(order)
        y = np.arange(len(order))
        tau = rows[headline[1][0]].to_numpy(float)
        if not np.isfinite(tau).any():
            finished = int(rows["runs_finished"].max()) if "runs_finished" in rows and len(rows) else 0
            why = (no_finished_run(outcomes) if outcomes is not None and finished == 0
                   else f"too few finished runs with a value ({finished})")
            ax.set_title(f"Kendall tau with {label}", fontsize=9)
            say_why(ax, f"no measure ranked: {why}", color="crimson")
            continue
        if len(headline[1]) == 3:
            err = np.vstack([tau - rows[headline[1][1]].to_numpy(float), rows[headline[1][2]].to_numpy(float) - tau])
        else:
            err = np.zeros((2, len(order)))
        significant = rows["verdict"].astype(str).str.startswith("predicts").to_numpy()
        words = TAU_WORDS.get(headline[0], headline[0])
        ax.errorbar(tau[significant], y[significant], xerr=err[:, significant], fmt="o", color="tab:blue", capsize=3,
                    label=f"{words}: predicts it (Holm-adjusted p < alpha)")
        ax.errorbar(tau[~significant], y[~significant], xerr=err[:, ~significant], fmt="o", color="grey", capsize=3,
                    mfc="none", label=f"{words}: does not predict it here")
        for (name, sources), mark in zip(others, marks):
            ax.plot(rows[sources[0]].to_numpy(float), y, mark, color="darkorange", ms=4,
                    label=TAU_WORDS.get(name, name))
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlim(-1.05, 1.05)
        ax.set_xlabel(textwrap.fill(f"Kendall tau with the {label}", 45), fontsize=8)
        ax.set_yticks(y, [measure_words(m) for m in order], fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
    handles, labels = next(((h, lab) for ax in axes[0] for h, lab in [ax.get_legend_handles_labels()] if h), ([], []))
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=3, frameon=False, fontsize=7)
    n = int(heldout["n"].max()) if len(heldout) else 0
    fig.suptitle(f"Which measures predict generalisation? {n} finished runs, {100 * level:g}% bootstrap intervals",
                 fontsize=10)
    save_figure(fig, *out_paths)
