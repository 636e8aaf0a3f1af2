"""Figures of training stability: each run's sharpness against its optimiser's edge of stability
(the classic edge-of-stability plot), and a learning-rate sweep's failures and ratios."""

from __future__ import annotations

import json
import math
from typing import Sequence

import numpy as np
import pandas as pd

from unetscape.analysis.statistics import wilson_interval

from .no_data import say_why
from .style import MAX_WIDTH, plt, save_figure

RATIOS = (
    ("lambda_ratio", "lambda_max / full-batch edge",
     "lambda_max of the training loss (evaluation images) over 2/lr, or 2(1+beta)/lr with momentum"),
    ("batch_ratio", "batch sharpness / small-batch edge",
     "g'H_B g/|g|^2 of the run's mini-batches over 2/lr, or 2(1-beta)/lr with momentum"),
)
FAILED = ("unstable", "diverged", "collapsed")


def _condition_label(run: pd.Series, varied: Sequence[str]) -> str:
    words = []
    for factor in varied:
        value = run[factor]
        words.append(f"lr {value:g}" if factor == "lr" else f"{factor} {value:g}" if isinstance(value, float)
                     else str(value))
    return ", ".join(words) or str(run["arch"])


def _varied(runs: pd.DataFrame, factors: Sequence[str]) -> list[str]:
    return [f for f in factors if f in runs and runs[f].nunique() > 1]


def plot_sharpness(title: str, runs_csv, eos_paths: Sequence[str], *out_paths) -> None:
    """Per optimiser (columns) and ratio (rows): every run's ratio of sharpness to its edge at the
    checkpoints measured, one colour per condition (its seeds thin lines of that colour), the edge
    at 1 and the band within 10% of it (ratio >= 0.9). Log scale: ratios span decades."""
    runs = pd.read_csv(runs_csv)
    records = {}
    for path in eos_paths:
        with open(path) as f:
            record = json.load(f)
        records[record.get("run") or str(path)] = record
    optimizers = list(dict.fromkeys(runs["optimizer"]))
    varied = _varied(runs, ("arch", "lr", "batch_size", "train_size", "noise"))
    labels = {run["run"]: _condition_label(run, varied) for _, run in runs.iterrows()}
    conditions = list(dict.fromkeys(labels.values()))
    colours = dict(zip(conditions, plt.cm.viridis(np.linspace(0, 0.9, len(conditions))) if len(conditions) > 10
                       else plt.cm.tab10.colors))
    width = min(MAX_WIDTH, 3.6 * len(optimizers) + 2.6)
    fig, axes = plt.subplots(2, len(optimizers), figsize=(width, 5.6), squeeze=False, sharex="col")
    drawn = {c: False for c in conditions}
    for col, optimizer in enumerate(optimizers):
        chosen = runs[runs["optimizer"] == optimizer]
        for row, (key, name, _) in enumerate(RATIOS):
            ax = axes[row, col]
            values = []
            for _, run in chosen.iterrows():
                record = _record_of(records, eos_paths, run["run"])
                rows = (record or {}).get("rows") or []
                epochs = [r["epoch"] for r in rows]
                # A log axis has no place for a ratio <= 0 (the batch loss curving down along its
                # gradient): the line breaks there, and the tables keep the value.
                ratio = [math.nan if r.get(key) is None or not r[key] > 0 else r[key] for r in rows]
                if not any(math.isfinite(v) for v in ratio):
                    continue
                label = labels[run["run"]]
                ax.plot(epochs, ratio, color=colours[label], lw=1.0, alpha=0.8, marker="o", ms=2.5,
                        label=None if drawn[label] else label)
                drawn[label] = True
                values += [v for v in ratio if math.isfinite(v) and v > 0]
            if not values:
                say_why(ax, "no finite ratio: no run of this optimiser was measured")
                continue
            ax.set_yscale("log")
            ax.axhspan(0.9, 1.1, color="crimson", alpha=0.12, lw=0)
            ax.axhline(1.0, color="crimson", lw=1.2, ls="--")
            low, high = min(values + [0.5]), max(values + [1.5])
            ax.set_ylim(low / 1.5, high * 1.5)
            ax.text(0.02, 0.97, "edge (ratio 1)", transform=ax.transAxes, va="top", fontsize=7, color="crimson")
            if col == 0:
                ax.set_ylabel(name, fontsize=8)
            if row == 0:
                momentum = chosen["momentum"].iloc[0] if "momentum" in chosen and len(chosen) else 0.0
                ax.set_title(f"{optimizer} (momentum {momentum:g})", fontsize=9)
            if row == 1:
                ax.set_xlabel("epoch")
    handles, names = [], []
    for ax in axes.flat:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            if name not in names:
                handles.append(handle)
                names.append(name)
    if handles:
        fig.legend(handles, names, loc="lower center", ncol=min(len(names), 4), fontsize=7, frameon=False,
                   bbox_to_anchor=(0.5, -0.02 - 0.03 * math.ceil(len(names) / 4)))
    fig.suptitle(f"{title}: sharpness against the optimiser's edge of stability", fontsize=10)
    fig.tight_layout()
    save_figure(fig, *out_paths)


def _record_of(records: dict, paths: Sequence[str], run_id: str) -> dict | None:
    if run_id in records:
        return records[run_id]
    for path, record in zip(paths, records.values()):
        if f"/{run_id}/" in str(path):
            return record
    return None


def plot_learning_rate_sweep(title: str, runs_csv, *out_paths, poster_lr: float = 0.01, level: float = 0.95) -> None:
    """Per architecture (columns): the fraction of runs that failed (unstable, diverged or
    collapsed) against the learning rate, per optimiser, with Wilson intervals (top), and each
    run's final sharpness ratios against the learning rate (bottom); the poster's learning rate
    marked."""
    runs = pd.read_csv(runs_csv)
    archs = list(dict.fromkeys(runs["arch"]))
    optimizers = list(dict.fromkeys(runs["optimizer"]))
    colours = dict(zip(optimizers, plt.cm.tab10.colors))
    fig, axes = plt.subplots(2, len(archs), figsize=(min(MAX_WIDTH, 3.8 * len(archs) + 1.5), 5.8), squeeze=False,
                             sharex=True)
    for col, arch in enumerate(archs):
        top, bottom = axes[0, col], axes[1, col]
        for k, optimizer in enumerate(optimizers):
            chosen = runs[(runs["arch"] == arch) & (runs["optimizer"] == optimizer)]
            lrs = sorted(chosen["lr"].unique())
            rates, lows, highs = [], [], []
            for lr in lrs:
                outcomes = chosen[chosen["lr"] == lr]["outcome"]
                failed = int(outcomes.isin(FAILED).sum())
                low, high = wilson_interval(failed, len(outcomes), level)
                rates.append(failed / len(outcomes))
                lows.append(rates[-1] - low)
                highs.append(high - rates[-1])
            shift = 1 + 0.04 * (k - (len(optimizers) - 1) / 2)  # side by side on the log axis
            top.errorbar(np.asarray(lrs) * shift, rates, yerr=[lows, highs], color=colours[optimizer], marker="o",
                         ms=4, capsize=2, lw=1.2, label=optimizer)
            for key, marker, name in (("eos_lambda_ratio_final", "o", "lambda_max"),
                                      ("eos_batch_ratio_final", "^", "batch sharpness")):
                values = chosen[key].to_numpy(dtype=float) if key in chosen else np.full(len(chosen), np.nan)
                keep = np.isfinite(values) & (values > 0)
                bottom.scatter(chosen["lr"].to_numpy()[keep] * shift, values[keep], color=colours[optimizer],
                               marker=marker, s=14, alpha=0.75,
                               label=f"{optimizer}: {name}" if col == 0 else None)
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.axvline(poster_lr, color="grey", lw=1, ls=":")
        top.set_ylim(-0.05, 1.05)
        top.set_title(arch, fontsize=9)
        top.text(poster_lr, 1.0, " poster's lr", fontsize=7, color="grey", va="top")
        bottom.set_yscale("log")
        bottom.axhline(1.0, color="crimson", lw=1.2, ls="--")
        bottom.set_xlabel("learning rate")
        if col == 0:
            top.set_ylabel("failed (unstable, diverged, collapsed)", fontsize=8)
            bottom.set_ylabel("final ratio to the edge", fontsize=8)
    top_handles, top_names = axes[0, 0].get_legend_handles_labels()
    bottom_handles, bottom_names = axes[1, 0].get_legend_handles_labels()
    fig.legend(top_handles + bottom_handles, top_names + bottom_names, loc="lower center", ncol=3, fontsize=7,
               frameon=False, bbox_to_anchor=(0.5, -0.08))
    fig.suptitle(f"{title}: failed runs and sharpness against the learning rate", fontsize=10)
    fig.tight_layout()
    save_figure(fig, *out_paths)
