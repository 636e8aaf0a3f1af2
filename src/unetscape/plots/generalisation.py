"""Figures of the generalisation study: each measure against held-out numbers over the runs,
and every measure ranked by how well it predicts held-out Dice."""

from __future__ import annotations

import numpy as np
import pandas as pd

from unetscape.analysis.generalisation import MEASURES, TARGETS
from unetscape.training.outcome_words import no_finished_run

from .no_data import say_why
from .style import plt, save_figure

MARKERS = {"sgd": "o", "sgd_momentum": "^"}


def plot_measure(runs: pd.DataFrame, table: pd.DataFrame, measure: str, *out_paths) -> None:
    """One measure against held-out Dice and against the gap, every finished run a point,
    coloured by architecture, shaped by optimiser, hollow when trained with input noise."""
    finished = runs[runs["outcome"] == "finished"]
    archs = sorted(finished["arch"].unique())
    colours = dict(zip(archs, plt.cm.tab10.colors))
    fig, axes = plt.subplots(1, len(TARGETS), figsize=(5.0 * len(TARGETS), 4.0), squeeze=False, layout="constrained")
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
            ax.set_title(f"tau {r['tau']:.2f} [{r['tau_low']:.2f}, {r['tau_high']:.2f}], n={int(r['n'])}", fontsize=9)
        ax.set_xlabel(f"{measure} (larger = {MEASURES[measure][1]})")
        ax.set_ylabel(label if len(label) < 40 else target)
    handles = [plt.Line2D([], [], marker="o", ls="", color=colours[a], label=a) for a in archs]
    handles += [plt.Line2D([], [], marker=m, ls="", color="grey", label=o) for o, m in MARKERS.items()]
    handles.append(plt.Line2D([], [], marker="o", ls="", color="grey", mfc="none", label="trained with input noise"))
    if not finished.empty:
        fig.legend(handles=handles, loc="outside right center", frameon=False, fontsize=7)
    fig.suptitle(f"{MEASURES[measure][0]}: finished runs", fontsize=10)
    save_figure(fig, *out_paths)


def plot_ranking(table: pd.DataFrame, *out_paths, level: float = 0.95, outcomes=None) -> None:
    """Kendall's tau of every measure with held-out Dice and with the gap, with bootstrap
    intervals (bars) and the granulated Psi (diamond), ranked by |tau| with held-out Dice.
    A target with no tau at all says why: `outcomes` (of every run) when no run finished."""
    heldout = table[table["target"] == "final_heldout_dice"].sort_values("rank", ascending=False)
    order = list(heldout["measure"])
    fig, axes = plt.subplots(1, len(TARGETS), figsize=(5.2 * len(TARGETS), 0.42 * len(order) + 1.6), sharey=True,
                             squeeze=False, layout="constrained")
    for ax, (target, label) in zip(axes[0], TARGETS.items()):
        rows = table[table["target"] == target].set_index("measure").reindex(order)
        y = np.arange(len(order))
        tau = rows["tau"].to_numpy(float)
        if not np.isfinite(tau).any():
            finished = int(rows["runs_finished"].max()) if "runs_finished" in rows and len(rows) else 0
            why = (no_finished_run(outcomes) if outcomes is not None and finished == 0
                   else f"too few finished runs with a value ({finished})")
            ax.set_title(f"Kendall tau with {label}", fontsize=9)
            say_why(ax, f"no measure ranked: {why}", color="crimson")
            continue
        err = np.vstack([tau - rows["tau_low"].to_numpy(float), rows["tau_high"].to_numpy(float) - tau])
        significant = rows["verdict"].astype(str).str.startswith("predicts").to_numpy()
        ax.errorbar(tau[significant], y[significant], xerr=err[:, significant], fmt="o", color="tab:blue", capsize=3,
                    label="predicts it (interval excludes 0)")
        ax.errorbar(tau[~significant], y[~significant], xerr=err[:, ~significant], fmt="o", color="grey", capsize=3,
                    mfc="none", label="does not predict it here")
        ax.plot(rows["Psi"].to_numpy(float), y, "D", color="darkorange", ms=4, label="granulated tau (Psi)")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlim(-1.05, 1.05)
        ax.set_xlabel(f"Kendall tau with {label}")
        ax.set_yticks(y, [f"{m} ({MEASURES[m][1]})" for m in order], fontsize=8)
    if axes[0][0].get_legend_handles_labels()[0]:
        axes[0][0].legend(fontsize=7, loc="lower left")
    n = int(heldout["n"].max()) if len(heldout) else 0
    fig.suptitle(f"Which measures predict generalisation? {n} finished runs, {100 * level:g}% bootstrap intervals",
                 fontsize=10)
    save_figure(fig, *out_paths)
