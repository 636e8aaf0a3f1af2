"""Per-run landscape numbers of a study, and their statistics over seeds.

One row per run: the run's factors (arch, optimizer, noise, seed, plus the arch's norm and
skip), its training outcome and stability numbers, the metrics of its random-plane surface and
1-D line, and its curvature (Hessian) at the measured weights in three parametrisations:
`raw_*` (the weights as trained; not invariant to rescaling, never compared), `folded_*`
(batch norm folded into its convolution) and `relative_*` (the scale-normalised Hessian,
invariant to batch-norm and ReLU rescaling). Every value is read from a file the workflow wrote.
"""

from __future__ import annotations

import json
import math
import os

import pandas as pd

from unetscape.atomic import atomic_path
from unetscape.landscape.surface_io import read_surface
from unetscape.measures.surface_metrics import surface_metrics
from unetscape.training.outcomes import read_outcome
from unetscape.models.spec import arch_factors
from unetscape.training.tables import parse_run_id, read_history, summarize_history

from .statistics import condition_table

# Metrics summarised over seeds (the headline numbers of the study figures): invariant ones.
HEADLINE = ["roughness", "total_variation", "strict_local_minima", "relative_lambda_max", "relative_trace",
            "relative_nonconvexity", "loss_rises", "largest_rise", "step_volatility", "final_loss", "final_dice"]
# The curvature numbers of hessian.json, per parametrisation (measures/curvature.py).
CURVATURE = ("lambda_max", "lambda_min", "nonconvexity", "trace", "trace_se")
# The training's stability numbers (training/stability.py) and collapse statistic, from outcome.json.
STABILITY = ("loss_rises", "largest_rise", "final_above_best", "step_volatility")
CONDITION = ("arch", "optimizer", "noise", "norm", "skip")


FLATNESS = ("average_sharpness", "average_sharpness_se", "worst_case_sharpness", "pac_bayes_sigma",
            "pac_bayes_flatness", "pac_bayes_mag_sigma", "pac_bayes_mag_flatness", "frobenius_sq_sum",
            "log_prod_frobenius", "distance_from_init")


def _number(value) -> float:
    return math.nan if value is None else value


def curvature_columns(hessian: dict) -> dict:
    """raw_*, folded_* and relative_* columns of a hessian.json (NaN where it has no numbers:
    a model whose loss is not finite, or a file written before a parametrisation existed)."""
    columns = {}
    parts = {"raw": hessian, "folded": hessian.get("folded") or {}, "relative": hessian.get("relative") or {}}
    for name, part in parts.items():
        eigenvalues = part.get("top_eigenvalues") or []
        columns[f"{name}_top_eigenvalues"] = " ".join(f"{v:.6g}" for v in eigenvalues)
        columns.update({f"{name}_{key}": _number(part.get(key)) for key in CURVATURE})
    return columns


def run_row(run_id: str, arch: dict, surface_path, line_path, hessian_path, history_path,
            radii, rises, flatness_path=None, outcome_path=None) -> dict:
    factors = arch_factors(arch)
    row = {"run": run_id, **parse_run_id(run_id), "norm": factors["norm"], "skip": factors["skip"]}
    training = summarize_history(read_history(history_path))
    row.update(init=factors["init"], outcome=training["outcome"], diverged=training["diverged"],
               final_loss=training["final_loss"], final_dice=training["final_dice"],
               **{k: v for k, v in training.items() if k.startswith(("final_heldout", "gap_"))})
    row.update(surface_metrics(read_surface(surface_path), radii, rises))
    line = surface_metrics(read_surface(line_path), radii, rises)
    row.update({f"line_{k}": v for k, v in line.items() if k in ("roughness", "total_variation", "strict_local_minima")})
    with open(hessian_path) as f:
        hessian = json.load(f)
    row.update(curvature_columns(hessian))
    if outcome_path is not None:
        outcome = read_outcome(outcome_path)
        stability = outcome.get("stability") or {}
        row.update({key: _number(stability.get(key)) for key in STABILITY})
        row["prediction_variation"] = _number(outcome.get("prediction_variation"))
    if flatness_path is not None:
        with open(flatness_path) as f:
            flatness = json.load(f)
        row.update({key: math.nan if flatness.get(key) is None else flatness[key] for key in FLATNESS})
    return row


def landscape_table(runs: list[str], archs: dict, surfaces, lines, hessians, histories, radii, rises,
                    flatness=None, outcomes=None) -> pd.DataFrame:
    flatness = flatness if flatness is not None else [None] * len(runs)
    outcomes = outcomes if outcomes is not None else [None] * len(runs)
    rows = []
    for run_id, surface, line, hessian, history, flat, outcome in zip(
        runs, surfaces, lines, hessians, histories, flatness, outcomes, strict=True
    ):
        arch = archs[parse_run_id(run_id)["arch"]]
        rows.append(run_row(run_id, arch, surface, line, hessian, history, radii, rises, flat, outcome))
    return pd.DataFrame(rows)


def conditions(table: pd.DataFrame, settings: dict) -> pd.DataFrame:
    """Per-condition statistics (`statistics.condition_table`) with the config's `metrics`
    settings: level, bootstrap, seed, min_runs."""
    metrics = [m for m in HEADLINE if m in table.columns]
    metrics += [c for c in table.columns if c.startswith("sharpness_r") or (c.startswith("basin") and c.endswith("_mean"))]
    metrics += [c for c in table.columns if c.startswith(("final_heldout", "gap_")) or c in FLATNESS]
    metrics += [c for c in table.columns if c in ("final_above_best", "prediction_variation")]
    return condition_table(table, metrics, by=CONDITION, level=settings["level"], n_boot=settings["bootstrap"],
                           seed=settings["seed"], min_runs=settings["min_runs"], all_runs_metrics=STABILITY)


def write_csv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
