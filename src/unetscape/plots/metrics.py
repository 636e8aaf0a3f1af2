"""Figures of the numbers: landscape metrics per condition with intervals over seeds, and the
batch-norm scale symmetry."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd

from unetscape.landscape.surface_io import read_attrs
from unetscape.training.outcome_words import no_finished_run

from .no_data import say_why
from .style import REPORT_WIDTH, plt, save_figure

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
# Training-stability numbers: their means are over every run with a value, not finished runs only.
ALL_RUNS = ("loss_rises", "largest_rise", "final_above_best", "step_volatility", "probe_rises", "probe_largest_rise",
            "probe_volatility", "probe_final_above_best", "eos_lambda_ratio_final", "eos_batch_ratio_final")


def _varies(conditions: pd.DataFrame, factor: str) -> bool:
    return factor in conditions and conditions[factor].nunique(dropna=False) > 1


def _x_factor(conditions: pd.DataFrame) -> str:
    """What a study varies besides the architecture: the x axis of its metric panels."""
    for factor in ("train_size", "lr", "noise", "skip", "optimizer"):
        if _varies(conditions, factor):
            return factor
    return "arch"


def roles(conditions: pd.DataFrame) -> tuple[str, str, str | None]:
    """(x, colour, marker): the factors a study's metric panels put on the x axis, tell apart by
    colour and, where one more varies (the architecture of a learning-rate sweep), by marker, so
    no two conditions share a point."""
    x = _x_factor(conditions)
    if x == "skip":
        colour = "norm"
    else:
        colour = next((f for f in ("lr", "optimizer", "arch") if f != x and _varies(conditions, f)), "arch")
    marker = "arch" if colour not in ("arch", "norm") and x != "arch" and _varies(conditions, "arch") else None
    return x, colour, marker


def level_words(factor: str, value, named: bool = True) -> str:
    """A factor's level in a legend ('lr 0.1', '32 images', 'sgd'), or on its own axis
    (`named=False`: '0.1', '32')."""
    if isinstance(value, float) and np.isnan(value):
        return "as configured"
    text = f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)
    return {"lr": f"lr {text}", "train_size": f"{text} images"}.get(factor, text) if named else text


FACTOR_WORDS = {"train_size": "training images", "lr": "learning rate", "noise": "input noise", "skip": "skips",
                "optimizer": "optimiser", "arch": "architecture", "norm": "normalisation"}
MARKS = ["o", "s", "^", "D", "v", "P"]


def _key(value):
    return "nan" if isinstance(value, float) and np.isnan(value) else value


def plot_study_metrics(study: dict, runs_csv, conditions_csv, *out_paths, level: float = 0.95) -> None:
    """One panel per headline metric: condition means over finished runs (the stability numbers:
    over every run) with bootstrap intervals (open markers: too few runs for an interval) and
    each run as a faint dot; runs that did not finish as grey crosses in the landscape panels.
    A study without landscapes (a learning-rate sweep) shows its training's stability numbers."""
    all_runs = pd.read_csv(runs_csv)
    finished = all_runs["outcome"] == "finished" if "outcome" in all_runs.columns else pd.Series(True, all_runs.index)
    runs, others = all_runs[finished], all_runs[~finished]
    conditions = pd.read_csv(conditions_csv)
    x_factor, series_factor, marker_factor = roles(conditions)
    levels = sorted(dict.fromkeys(_key(v) for v in conditions[x_factor]), key=lambda v: (isinstance(v, str), v)) \
        if x_factor in ("train_size", "lr", "noise") else list(dict.fromkeys(_key(v) for v in conditions[x_factor]))
    positions = {level: k for k, level in enumerate(levels)}
    series = list(dict.fromkeys(_key(v) for v in conditions[series_factor]))
    colours = dict(zip(series, plt.cm.tab10.colors))
    kinds = list(dict.fromkeys(conditions[marker_factor])) if marker_factor else [None]
    marks = dict(zip(kinds, MARKS))
    groups = [(s, k) for s in series for k in kinds]
    offset = {g: (j - (len(groups) - 1) / 2) * min(0.12, 0.5 / len(groups)) for j, g in enumerate(groups)}

    def chosen(frame: pd.DataFrame, s, k) -> pd.DataFrame:
        keep = frame[series_factor].map(_key) == s
        if marker_factor:
            keep &= frame[marker_factor] == k
        return frame[keep]

    def xs_of(frame: pd.DataFrame, group) -> np.ndarray:
        return np.array([positions[_key(v)] + offset[group] for v in frame[x_factor]], dtype=float)

    panels = [(m, label) for m, label in PANELS if f"{m}_mean" in conditions]
    if not any(m != "probe_largest_rise" for m, _ in panels):  # no landscapes: the training's numbers
        panels = [(m, label) for m, label in STABILITY_PANELS if f"{m}_mean" in conditions]
    n_cols = 3 if len(panels) == 3 else min(len(panels), 2)
    n_rows = -(-len(panels) // n_cols)
    fig, grid = plt.subplots(n_rows, n_cols, figsize=(3.6 * n_cols + 1.8, 3.0 * n_rows + 0.7), squeeze=False,
                             layout="constrained")
    axes = list(grid.ravel())
    for ax in axes[len(panels):]:
        ax.axis("off")
    crossed = False
    for ax, (metric, label) in zip(axes, panels):
        for group in groups:
            s, k = group
            rows = chosen(conditions, s, k)
            if rows.empty:
                continue
            xs = xs_of(rows, group)
            mean = rows[f"{metric}_mean"].to_numpy(float)
            low = rows[f"{metric}_ci_low"].to_numpy(float)
            high = rows[f"{metric}_ci_high"].to_numpy(float)
            has_ci = np.isfinite(low) & np.isfinite(high)
            err = np.vstack([np.where(has_ci, mean - low, 0), np.where(has_ci, high - mean, 0)])
            ax.errorbar(xs[has_ci], mean[has_ci], yerr=err[:, has_ci], fmt=marks[k], color=colours[s], capsize=3,
                        ms=5)
            ax.plot(xs[~has_ci], mean[~has_ci], marks[k], mfc="none", color=colours[s], ms=5)
            if x_factor in ("noise", "lr", "train_size"):
                order = np.argsort(xs)
                ax.plot(xs[order], mean[order], "-", color=colours[s], lw=1, alpha=0.7)
            in_mean = all_runs if metric in ALL_RUNS else runs
            dots = chosen(in_mean, s, k)
            ax.plot(xs_of(dots, group), dots[metric], ".", color=colours[s], alpha=0.35)
            if metric in ALL_RUNS:
                continue
            rest = chosen(others, s, k)
            if len(rest) and rest[metric].notna().any():
                ax.plot(xs_of(rest, group), rest[metric], "x", color="grey", ms=5)
                crossed = True
        if not np.isfinite(pd.to_numeric(all_runs[metric], errors="coerce")).any():
            if runs.empty:  # e.g. every run diverged before a landscape could be measured
                ax.set_title(label, fontsize=9)
                say_why(ax, no_finished_run(all_runs.get("outcome", [])), color="crimson")
                continue
            ax.text(0.5, 0.5, "no run with a value", ha="center", va="center", transform=ax.transAxes,
                    color="grey")
        elif metric not in ALL_RUNS and runs[metric].notna().sum() == 0:
            ax.text(0.5, 0.92, "no finished run", ha="center", va="top", transform=ax.transAxes, color="crimson",
                    fontsize=8)
        ax.set_xticks(range(len(levels)), [level_words(x_factor, v, named=False) for v in levels])
        ax.set_xlabel(FACTOR_WORDS.get(x_factor, x_factor), fontsize=9)
        ax.tick_params(labelsize=8)
        ax.set_title(label, fontsize=9)
    handles = [plt.Line2D([], [], marker="o", ls="", color=colours[s], label=level_words(series_factor, s))
               for s in series]
    if marker_factor:
        handles += [plt.Line2D([], [], marker=marks[k], ls="", color="grey", label=str(k)) for k in kinds]
    handles.append(plt.Line2D([], [], marker=".", ls="", color="grey", alpha=0.5, label="one run"))
    handles.append(plt.Line2D([], [], marker="o", ls="", mfc="none", color="grey", label="mean, too few runs for an interval"))
    if crossed:
        handles.append(plt.Line2D([], [], marker="x", color="grey", ls="",
                                  label="run not finished (not in the mean)"))
    title = FACTOR_WORDS.get(series_factor, series_factor) + (
        f" (colour), {FACTOR_WORDS.get(marker_factor, marker_factor)} (marker)" if marker_factor else "")
    fig.legend(handles=handles, title=title, fontsize=8, title_fontsize=8, loc="outside right center",
               frameon=False)
    over = ("every run" if all(m in ALL_RUNS for m, _ in panels) else
            "finished runs (the probe's rise: every run)" if any(m in ALL_RUNS for m, _ in panels) else "finished runs")
    fig.suptitle(f"{study['title']}:\nmean per condition over {over}, {100 * level:g}% bootstrap interval over seeds",
                 fontsize=10)
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
    fig = plt.figure(figsize=(min(REPORT_WIDTH, 3.2 * len(norms) + 2.4), 3.3 * len(runs) + 0.7), layout="constrained")
    # a row per run, under a heading of its own that says what its curves are expected to do
    rows = np.atleast_1d(fig.subfigures(len(runs), 1))
    colours = plt.cm.viridis(np.linspace(0, 0.85, len(factors)))
    outcomes = attrs.get("outcomes") or ["finished"] * len(runs)
    checkpoints = attrs.get("checkpoints") or [""] * len(runs)
    drawn = []
    for r, (run, row) in enumerate(zip(runs, rows)):
        norm_of_run = norms_of.get(run)
        if norm_of_run == "batch":
            role = "batch norm: rescaling keeps the function, so only the raw direction's curves may move"
        elif norm_of_run is not None:
            role = "CONTROL, no batch norm: rescaling changes the function, so its curves are expected to move"
        else:
            role = ""
        row.suptitle(run + (f"\n{role}" if role else ""), fontsize=9, x=0.01, ha="left",
                     fontweight="bold", color="crimson" if role.startswith("CONTROL") else "black")
        axes = row.subplots(1, len(norms), squeeze=False)[0]
        for n, (ax, norm) in enumerate(zip(axes, norms)):
            ax.set_title(titles.get(norm, norm), fontsize=9)
            if not np.isfinite(loss[r, n]).any():  # e.g. a run that diverged before any trained checkpoint
                weights = "no trained weights" if checkpoints[r] is None else "no finite Dice loss on these curves"
                say_why(ax, f"no curve: {weights} (run {outcomes[r]})", color="crimson")
                continue
            for f, factor in enumerate(factors):
                ax.plot(x, loss[r, n, f], "-", color=colours[f], lw=2.2 if factor == 1 else 1.3,
                        label=f"conv weights x{factor:g}" + (" (trained)" if factor == 1 else ""))
            ax.set_xlabel("step along the direction", fontsize=9)
            ax.set_ylabel("Dice loss", fontsize=9)
            ax.tick_params(labelsize=8)
            drawn.append(ax)
    if drawn:
        handles, _ = drawn[0].get_legend_handles_labels()
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize=9)
    fig.suptitle("Scale invariance: rescaling the convolutions in front of batch norm moves the raw-direction\n"
                 "curves but not the filter-normalised ones", fontsize=10)
    save_figure(fig, *out_paths)
