"""Figures of the numbers: landscape metrics per condition with intervals over seeds, and the
batch-norm scale symmetry."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd

from unetscape.landscape.surface_io import read_attrs
from unetscape.training.outcome_words import no_finished_run

from .no_data import say_why
from .style import plt, save_figure

PANELS = [
    ("roughness", "roughness (relative Laplacian), mean over directions"),
    ("relative_lambda_max", "top eigenvalue, scale-normalised Hessian"),
    ("relative_nonconvexity", "|lambda_min / lambda_max|, scale-normalised"),
    ("probe_largest_rise", "largest probe-loss rise / initial probe loss"),
]
# A study without landscapes (a learning-rate sweep) is drawn by its training's numbers.
STABILITY_PANELS = [
    ("probe_largest_rise", "largest probe-loss rise / initial probe loss"),
    ("probe_volatility", "probe-loss volatility (median |d log|)"),
    ("eos_lambda_ratio_final", "final lambda_max / full-batch edge"),
    ("eos_batch_ratio_final", "final batch sharpness / small-batch edge"),
]
RATES = ("diverged_rate", "finished_rate")
# Training-stability numbers: their means are over every run with a value, not finished runs only.
ALL_RUNS = ("loss_rises", "largest_rise", "final_above_best", "step_volatility", "probe_rises", "probe_largest_rise",
            "probe_volatility", "probe_final_above_best", "eos_lambda_ratio_final", "eos_batch_ratio_final")


def _x_factor(conditions: pd.DataFrame) -> str:
    """What a study varies besides the architecture: the x axis of its metric panels."""
    for factor in ("lr", "noise", "skip", "optimizer"):
        if factor in conditions and conditions[factor].nunique() > 1:
            return factor
    return "arch"


def plot_study_metrics(study: dict, runs_csv, conditions_csv, *out_paths, level: float = 0.95) -> None:
    """One panel per headline metric: condition means over finished runs with bootstrap
    intervals (open markers: too few runs for an interval), every finished run as a dot, and
    the divergence rate of every condition with its Wilson interval."""
    all_runs = pd.read_csv(runs_csv)
    finished = all_runs["outcome"] == "finished" if "outcome" in all_runs.columns else pd.Series(True, all_runs.index)
    runs, others = all_runs[finished], all_runs[~finished]
    conditions = pd.read_csv(conditions_csv)
    x_factor = _x_factor(conditions)
    series_factor = "norm" if x_factor == "skip" else "optimizer" if x_factor == "lr" else "arch"
    levels = list(dict.fromkeys(conditions[x_factor].tolist()))
    positions = {level: k for k, level in enumerate(levels)}
    series = list(dict.fromkeys(conditions[series_factor].tolist()))
    colours = dict(zip(series, plt.cm.tab10.colors))
    offset = {s: (k - (len(series) - 1) / 2) * 0.12 for k, s in enumerate(series)}

    panels = [(m, label) for m, label in PANELS if f"{m}_mean" in conditions]
    if not any(m != "probe_largest_rise" for m, _ in panels):  # no landscapes: the training's numbers
        panels = [(m, label) for m, label in STABILITY_PANELS if f"{m}_mean" in conditions]
    note = ""
    # A rate that is 0 in every condition holds no information: said in the title instead.
    for rate in RATES:
        count = f"n_{rate.removesuffix('_rate')}"
        if (rate, dict(PANELS).get(rate)) in panels and count in conditions and (conditions[count] == 0).all():
            panels.remove((rate, dict(PANELS)[rate]))
            note = f"no run diverged (0 of {int(conditions['n'].sum())})"
    n_cols = 3 if len(panels) == 3 else min(len(panels), 2)
    n_rows = -(-len(panels) // n_cols)
    fig, grid = plt.subplots(n_rows, n_cols, figsize=(3.9 * n_cols + 1.6, 3.1 * n_rows + 0.5), squeeze=False,
                             layout="constrained")
    axes = [list(grid.ravel())]
    for ax in axes[0][len(panels):]:
        ax.axis("off")
    for ax, (metric, label) in zip(axes[0], panels):
        for s in series:
            rows = conditions[conditions[series_factor] == s]
            xs = np.array([positions[v] + offset[s] for v in rows[x_factor]])
            if metric in RATES:
                rate = rows[metric].to_numpy(float)
                err = np.vstack([rate - rows[f"{metric}_ci_low"].to_numpy(float),
                                 rows[f"{metric}_ci_high"].to_numpy(float) - rate])
                ax.errorbar(xs, rate, yerr=err, fmt="o", color=colours[s], capsize=3, label=str(s))
                for x, k, n in zip(xs, rows[f"n_{metric.removesuffix('_rate')}"], rows["n"]):
                    ax.annotate(f"{k}/{n}", (x, 1.02), xycoords=("data", "axes fraction"), fontsize=6,
                                ha="center", color=colours[s])
                ax.set_ylim(-0.05, 1.05)
                continue
            mean = rows[f"{metric}_mean"].to_numpy(float)
            low = rows[f"{metric}_ci_low"].to_numpy(float)
            high = rows[f"{metric}_ci_high"].to_numpy(float)
            has_ci = np.isfinite(low) & np.isfinite(high)
            err = np.vstack([np.where(has_ci, mean - low, 0), np.where(has_ci, high - mean, 0)])
            ax.errorbar(xs[has_ci], mean[has_ci], yerr=err[:, has_ci], fmt="o", color=colours[s], capsize=3,
                        label=str(s))
            ax.plot(xs[~has_ci], mean[~has_ci], "o", mfc="none", color=colours[s])
            if x_factor == "noise":
                ax.plot(xs, mean, "-", color=colours[s], lw=1)
            in_mean = all_runs if metric in ALL_RUNS else runs
            dots = in_mean[in_mean[series_factor] == s]
            ax.plot([positions[v] + offset[s] for v in dots[x_factor]], dots[metric], ".", color=colours[s],
                    alpha=0.35)
            if metric in ALL_RUNS:
                continue
            rest = others[others[series_factor] == s]
            ax.plot([positions[v] + offset[s] for v in rest[x_factor]], rest[metric], "x", color="grey", ms=5)
        if metric not in RATES and not np.isfinite(pd.to_numeric(all_runs[metric], errors="coerce")).any():
            if runs.empty:  # e.g. every run diverged before a landscape could be measured
                ax.set_title(label, fontsize=10, pad=12)
                say_why(ax, no_finished_run(all_runs.get("outcome", [])), color="crimson")
                continue
            ax.text(0.5, 0.5, "no run with a value", ha="center", va="center", transform=ax.transAxes,
                    color="grey")
        elif metric not in RATES and metric not in ALL_RUNS and runs[metric].notna().sum() == 0:
            ax.text(0.5, 0.92, "no finished run", ha="center", va="top", transform=ax.transAxes, color="crimson",
                    fontsize=8)
        ax.set_xticks(range(len(levels)), [f"{v:g}" if isinstance(v, float) else str(v) for v in levels])
        ax.set_xlabel(x_factor, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_title(label, fontsize=9, pad=12)  # room for the rate panel's k/n labels
    handles, _ = axes[0][0].get_legend_handles_labels()
    if len(others):
        handles.append(plt.Line2D([], [], marker="x", color="grey", ls="",
                                  label="run not finished (not in the landscape means)"))
    # Beside the panels: inside the first one it hid intervals.
    fig.legend(handles=handles, title=series_factor, fontsize=7, loc="outside right center", frameon=False)
    fig.suptitle(f"{study['title']}: mean over finished runs (stability numbers: over all runs) with {100 * level:g}% "
                 f"bootstrap interval\n(open: too few runs for one), runs as dots"
                 + ("; divergence rate with Wilson interval" if any(m in RATES for m, _ in panels) else "")
                 + (f"; {note}" if note else ""), fontsize=10)
    save_figure(fig, *out_paths)


def plot_scale_invariance(path, *out_paths, norms_of: dict[str, str] | None = None) -> None:
    """Rows: runs; columns: raw and filter-normalised direction; one curve per rescaling factor.

    `norms_of`: run -> its architecture's normalisation ("batch" or "none"); a run without batch
    norm is labelled as the control, whose curves are expected to change with the factor.
    """
    with h5py.File(path, "r") as f:
        x, loss = f["xcoordinates"][()], f["train_loss"][()]
        attrs = read_attrs(f)
    runs, norms, factors = attrs["runs"], attrs["norms"], attrs["factors"]
    norms_of = norms_of or {}
    titles = {"none": "raw Gaussian direction", "filter": "filter-normalised direction"}
    fig, axes = plt.subplots(len(runs), len(norms), figsize=(4.2 * len(norms) + 2.2, 2.9 * len(runs) + 0.6),
                             squeeze=False, layout="constrained")
    colours = plt.cm.viridis(np.linspace(0, 0.85, len(factors)))
    outcomes = attrs.get("outcomes") or ["finished"] * len(runs)
    checkpoints = attrs.get("checkpoints") or [""] * len(runs)
    drawn = []
    for r, run in enumerate(runs):
        norm_of_run = norms_of.get(run)
        if norm_of_run == "batch":
            role = "batch norm: rescaling keeps the function, so only the raw direction's curves may move"
        elif norm_of_run is not None:
            role = "CONTROL, no batch norm: rescaling changes the function, its curves are expected to move"
        else:
            role = ""
        for n, norm in enumerate(norms):
            ax = axes[r][n]
            ax.set_title(f"{run}\n{titles.get(norm, norm)}", fontsize=9)
            if not np.isfinite(loss[r, n]).any():  # e.g. a run that diverged before any trained checkpoint
                weights = "no trained weights" if checkpoints[r] is None else "no finite Dice loss on these curves"
                say_why(ax, f"no curve: {weights} (run {outcomes[r]})", color="crimson")
                continue
            for f, factor in enumerate(factors):
                ax.plot(x, loss[r, n, f], "-", color=colours[f], lw=2.2 if factor == 1 else 1.3,
                        label=f"conv weights x{factor:g}" + (" (trained)" if factor == 1 else ""))
            ax.set_title(f"{run}\n{titles.get(norm, norm)}", fontsize=8)
            ax.set_xlabel("step along the direction", fontsize=8)
            ax.set_ylabel("Dice loss", fontsize=8)
            ax.tick_params(labelsize=7)
            drawn.append(ax)
        if role:
            axes[r][0].annotate(role, (0, 1), xycoords="axes fraction", xytext=(0, 26), textcoords="offset points",
                                fontsize=8, fontweight="bold", color="crimson" if norm_of_run != "batch" else "black",
                                annotation_clip=False)
    if drawn:
        handles, _ = drawn[0].get_legend_handles_labels()
        fig.legend(handles=handles, loc="outside right center", frameon=False, fontsize=8)
    fig.suptitle("Scale invariance: rescaling the convs in front of batch norm changes raw-direction plots\n"
                 "but not filter-normalised ones", fontsize=10)
    save_figure(fig, *out_paths)
