"""Per-study summaries of training histories."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from unetscape import run_ids
from unetscape.atomic import atomic_path
from unetscape.models.spec import arch_factors

from .outcomes import read_outcome
from .stability import STABILITY_NUMBERS

def parse_run_id(run_id: str) -> dict:
    """{arch, optimizer, noise, seed} of a run id and its recipe's departures from the
    config's defaults (`run_ids.parse_run_id`: lr, batch_size, train_size, epochs; None where
    the run trains as the config says)."""
    parts = run_ids.parse_run_id(run_id)
    return {key: parts[key] for key in ("arch", "optimizer", "noise", "seed", "recipe", "lr", "batch_size",
                                         "train_size", "epochs", "steps")}


def read_history(path: str | os.PathLike) -> pd.DataFrame:
    history = pd.read_csv(path)
    missing = {"kind", "step", "epoch", "loss", "dice", "iou", "diverged"} - set(history.columns)
    if missing:
        raise ValueError(f"history {path} lacks columns {sorted(missing)}")
    history["diverged"] = history["diverged"].astype(str).str.lower() == "true"
    if "outcome" not in history.columns:  # written before outcomes existed
        history["outcome"] = "diverged" if history["diverged"].any() else "finished"
    return history


def summarize_history(history: pd.DataFrame) -> dict:
    """Final and best whole-set loss, Dice and IoU over the evaluated epochs of one run."""
    epochs = history[history["kind"] == "epoch"]
    trained = epochs[epochs["epoch"] > 0]
    finite = trained[np.isfinite(trained["loss"])]
    if finite.empty:  # diverged during the first epoch: only the initial weights were evaluated
        finite = epochs[np.isfinite(epochs["loss"])]
    final = finite.iloc[-1]
    held = {}
    if "heldout_loss" in epochs.columns:
        held = {
            "final_heldout_loss": final["heldout_loss"],
            "final_heldout_dice": final["heldout_dice"],
            "final_heldout_iou": final["heldout_iou"],
            # generalisation gaps: held-out minus training loss, training minus held-out Dice
            "gap_loss": final["heldout_loss"] - final["loss"],
            "gap_dice": final["dice"] - final["heldout_dice"],
        }
    return {
        "outcome": str(history["outcome"].iloc[-1]),
        "epochs_run": int(trained["epoch"].max()) if not trained.empty else 0,
        "diverged": bool(history["diverged"].any()),
        "final_loss": final["loss"],
        "best_loss": finite["loss"].min(),
        "final_dice": final["dice"],
        "best_dice": finite["dice"].max(),
        "final_iou": final["iou"],
        "best_iou": finite["iou"].max(),
        **held,
        "steps": int(history["step"].max()),
    }


OUTCOME_FIELDS = ("reason", "stopped_on_plateau", "max_epochs", "constant_dice", "heldout_constant_dice",
                  "prediction_variation", "landscape_checkpoint", "final_heldout_loss_se", "final_heldout_dice_se")


def summarize_histories(
    run_ids: list[str],
    paths: list[str | os.PathLike],
    outcome_paths: list[str | os.PathLike] | None = None,
    archs: dict | None = None,
) -> pd.DataFrame:
    """One row per run: its factors (with the arch's norm, skip and init when `archs` is
    given), the summary of its history, and the details of its outcome file."""
    if len(run_ids) != len(paths) or (outcome_paths is not None and len(outcome_paths) != len(paths)):
        raise ValueError(f"{len(run_ids)} run ids for {len(paths)} history files and "
                         f"{len(outcome_paths or paths)} outcome files")
    rows = []
    for k, (run_id, path) in enumerate(zip(run_ids, paths)):
        row = {"run": run_id, **parse_run_id(run_id)}
        if archs is not None:
            row.update(arch_factors(archs[row["arch"]]))
        row.update(summarize_history(read_history(path)))
        if outcome_paths is not None:
            outcome = read_outcome(outcome_paths[k])
            if outcome["outcome"] != row["outcome"]:
                raise ValueError(f"{outcome_paths[k]} says {outcome['outcome']}, {path} says {row['outcome']}")
            row.update({key: outcome.get(key) for key in OUTCOME_FIELDS})
            stability = outcome.get("stability") or {}
            row.update({key: stability.get(key) for key in STABILITY_NUMBERS})
            row["rise_epochs"] = " ".join(str(e) for e in stability.get("rise_epochs", []))
        rows.append(row)
    return pd.DataFrame(rows)


def write_table(table: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
