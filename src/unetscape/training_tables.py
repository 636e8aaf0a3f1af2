"""Per-study summaries of training histories."""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd

from .atomic import atomic_path

RUN_ID = re.compile(r"^(?P<arch>[^/]+)/(?P<optimizer>[^/]+)/noise(?P<noise>[^/]+)/seed(?P<seed>\d+)$")


def parse_run_id(run_id: str) -> dict:
    match = RUN_ID.match(run_id)
    if not match:
        raise ValueError(f"{run_id!r} is not a run id of the form arch/optimizer/noiseN/seedN")
    parts = match.groupdict()
    return {**parts, "noise": float(parts["noise"]), "seed": int(parts["seed"])}


def read_history(path: str | os.PathLike) -> pd.DataFrame:
    history = pd.read_csv(path)
    missing = {"kind", "step", "epoch", "loss", "dice", "iou", "diverged"} - set(history.columns)
    if missing:
        raise ValueError(f"history {path} lacks columns {sorted(missing)}")
    history["diverged"] = history["diverged"].astype(str).str.lower() == "true"
    return history


def summarize_history(history: pd.DataFrame) -> dict:
    """Final and best whole-set loss, Dice and IoU over the evaluated epochs of one run."""
    epochs = history[history["kind"] == "epoch"]
    trained = epochs[epochs["epoch"] > 0]
    finite = trained[np.isfinite(trained["loss"])]
    if finite.empty:  # diverged during the first epoch: only the initial weights were evaluated
        finite = epochs[np.isfinite(epochs["loss"])]
    final = finite.iloc[-1]
    return {
        "epochs_run": int(trained["epoch"].max()) if not trained.empty else 0,
        "diverged": bool(history["diverged"].any()),
        "final_loss": final["loss"],
        "best_loss": finite["loss"].min(),
        "final_dice": final["dice"],
        "best_dice": finite["dice"].max(),
        "final_iou": final["iou"],
        "best_iou": finite["iou"].max(),
        "steps": int(history["step"].max()),
    }


def summarize_histories(run_ids: list[str], paths: list[str | os.PathLike]) -> pd.DataFrame:
    if len(run_ids) != len(paths):
        raise ValueError(f"{len(run_ids)} run ids but {len(paths)} history files")
    rows = []
    for run_id, path in zip(run_ids, paths):
        rows.append({"run": run_id, **parse_run_id(run_id), **summarize_history(read_history(path))})
    return pd.DataFrame(rows)


def write_table(table: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
