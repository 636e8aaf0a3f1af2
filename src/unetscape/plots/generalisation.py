"""Figures of the generalisation study: each measure against held-out numbers over the runs,
and every measure ranked by how well it predicts held-out Dice.

The rank correlations shown are the ones the table holds (`table_pages.tau_column_names`): the
pooled tau, and the within-condition (granulated) tau where the table has it, so that a measure
that only tells architectures apart shows as such.
"""

from __future__ import annotations

import re
import textwrap

import numpy as np
import pandas as pd

from unetscape.analysis.generalisation import MEASURES, TARGETS
from unetscape.training.outcome_words import no_finished_run

from .no_data import say_why
from .page_html import cell, display_columns
from .page_sections import factor_words
from .style import REPORT_WIDTH, plt, save_figure
from .table_pages import TAU_WORDS, tau_column_names

MEANS = {"sharper": "larger = sharper minimum", "flatter": "larger = flatter minimum",
         "larger": "a size of the weights"}
# The marker of each secondary rank correlation (the headline, the within-condition tau, is a
# circle with its interval), so the caption can name them whatever order the table has.
TAU_MARKERS = {"tau_pooled": "D", "Psi": "s"}
OTHER_MARKERS = ["v", "P", "X"]
# What tells a measure figure's runs apart, first that varies: colour, then marker.
COLOUR_FACTORS = ("train_size", "arch", "noise")
MARKER_FACTORS = ("lr", "optimizer", "batch_size")
MARKS = ["o", "^", "s", "D", "v"]


def measure_words(measure: str, width: int | None = None) -> str:
    """A measure's label in words, e.g. 'largest eigenvalue of the scale-normalised Hessian
    (larger = sharper minimum)', wrapped to `width` characters if given; the config keys some
    descriptions cite (", rho = flatness.average_rho") are left out of a label."""
    if measure not in MEASURES:
        return measure
    text, kind, _invariant = MEASURES[measure]
    text = re.sub(r",? \w+ = [a-z_]+\.[a-z_.]+", "", text)
    label = f"{text} ({MEANS.get(kind, kind)})"
    return textwrap.fill(label, width) if width else label


def tau_summary(row: pd.Series, table: pd.DataFrame) -> str:
    """Every tau of one table row, e.g. 'pooled tau 0.52 [0.31, 0.70]; within-condition tau (Psi) 0.08'."""
    shown = display_columns(table, tau_column_names(table))
    return "; ".join(f"{TAU_WORDS.get(name, name)} {cell(row, sources)[0]}" for name, sources in shown)


def plot_measure(runs: pd.DataFrame, table: pd.DataFrame, measure: str, *out_paths) -> None:
    """One measure against held-out Dice and against the gap, every finished run a point,
    coloured by what the ranking compares runs within (the training-set size, else the
    architecture), shaped by the other factor that varies (learning rate or optimiser), hollow
    when trained with input noise; each panel's title gives every tau of the table."""
    finished = runs[runs["outcome"] == "finished"]
    varies = [f for f in COLOUR_FACTORS + MARKER_FACTORS if f in finished and finished[f].nunique(dropna=False) > 1]
    colour_by = next((f for f in COLOUR_FACTORS if f in varies), "arch")
    marker_by = next((f for f in MARKER_FACTORS if f in varies), "optimizer")
    colour_levels = list(dict.fromkeys(finished[colour_by])) if colour_by in finished else []
    marker_levels = list(dict.fromkeys(finished[marker_by])) if marker_by in finished else []
    colours = dict(zip(map(str, colour_levels), plt.cm.tab10.colors))
    marks = dict(zip(map(str, marker_levels), MARKS))
    fig, axes = plt.subplots(1, len(TARGETS), figsize=(REPORT_WIDTH, 3.9), squeeze=False, layout="constrained")
    for ax, (target, label) in zip(axes[0], TARGETS.items()):
        if finished.empty:  # every run of every study failed: nothing to rank
            ax.set_title(label if len(label) < 40 else target, fontsize=9)
            say_why(ax, no_finished_run(runs["outcome"]), color="crimson")
            continue
        for _, run in finished.iterrows():
            noisy = run.get("noise", 0) > 0
            colour = colours[str(run[colour_by])]
            ax.plot(run[measure], run[target], marks.get(str(run[marker_by]), "o"), color=colour, ms=6,
                    mfc="none" if noisy else colour, alpha=0.85)
        row = table[(table["measure"] == measure) & (table["target"] == target)]
        if len(row):
            r = row.iloc[0]
            ax.set_title(textwrap.fill(f"{tau_summary(r, table)}, n={int(r['n'])}", 48), fontsize=8)
        ax.set_xlabel(measure_words(measure, 45), fontsize=8)
        ax.set_ylabel(textwrap.fill(label, 30), fontsize=8)
        ax.tick_params(labelsize=8)
    handles = [plt.Line2D([], [], marker="o", ls="", color=colours[str(v)], label=factor_words(colour_by, v))
               for v in colour_levels]
    handles += [plt.Line2D([], [], marker=marks[str(v)], ls="", color="grey", label=factor_words(marker_by, v))
                for v in marker_levels]
    if "noise" in finished and (finished["noise"] > 0).any():
        handles.append(plt.Line2D([], [], marker="o", ls="", color="grey", mfc="none", label="trained with input noise"))
    if not finished.empty:
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), frameon=False,
                   fontsize=8)
    fig.suptitle(f"{measure}: every finished run", fontsize=10)
    save_figure(fig, *out_paths)


def plot_ranking(table: pd.DataFrame, *out_paths, level: float = 0.95, outcomes=None) -> None:
    """Each tau of every measure with held-out Dice and with the gap: the headline (the
    within-condition tau) as a circle with its bootstrap interval, filled where the measure
    predicts the target, the others as markers (`TAU_MARKERS`); ranked as the table ranks them,
    the first at the top. The legend is below the panels. A target with no tau at all says why:
    `outcomes` (of every run) when no run finished."""
    heldout = table[table["target"] == "final_heldout_dice"].sort_values("rank", ascending=False)
    order = list(heldout["measure"])
    names = tau_column_names(table)
    shown = display_columns(table, names)
    headline, others = (shown[0], shown[1:]) if shown else (("tau", ["tau"]), [])
    labels = [measure_words(m, 34) for m in order]
    lines = max([label.count("\n") + 1 for label in labels] + [1])
    fig, axes = plt.subplots(1, len(TARGETS), figsize=(REPORT_WIDTH, 0.17 * lines * len(order) + 2.4), sharey=True,
                             squeeze=False, layout="constrained")
    spare = iter(OTHER_MARKERS)
    marks = {name: TAU_MARKERS.get(name) or next(spare, "o") for name, _ in others}
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
                    label=f"{words} with its interval: predicts it (Holm-adjusted p < alpha)")
        ax.errorbar(tau[~significant], y[~significant], xerr=err[:, ~significant], fmt="o", color="grey", capsize=3,
                    mfc="none", label=f"{words} with its interval: does not predict it here")
        for name, sources in others:
            ax.plot(rows[sources[0]].to_numpy(float), y, marks[name], color="darkorange", ms=4.5,
                    label=TAU_WORDS.get(name, name))
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlim(-1.05, 1.05)
        ax.set_xticks([-1, -0.5, 0, 0.5, 1])
        ax.set_xlabel(textwrap.fill(f"Kendall tau with the {label}", 34), fontsize=9)
        ax.set_yticks(y, labels, fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
    handles, legend = next(((h, lab) for ax in axes[0] for h, lab in [ax.get_legend_handles_labels()] if h), ([], []))
    if handles:
        fig.legend(handles, legend, loc="outside lower center", ncol=2, frameon=False, fontsize=8)
    n = int(heldout["n"].max()) if len(heldout) else 0
    fig.suptitle(f"Which measures predict generalisation? {n} finished runs, {100 * level:g}% bootstrap intervals;\n"
                 f"ranked by the within-condition tau with held-out Dice, strongest at the top", fontsize=10)
    save_figure(fig, *out_paths)
