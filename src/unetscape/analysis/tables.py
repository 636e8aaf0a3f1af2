"""Per-run landscape numbers of a study, and their statistics over seeds.

One row per run: the run's factors (arch, optimizer, noise, seed, plus the arch's norm and
skip), its training outcome, the metrics of its random-plane surface and 1-D line, and its
curvature (Hessian) at the final weights. Every value is read from a file the workflow wrote.
"""

from __future__ import annotations

import json
import math
import os

import pandas as pd

from unetscape.atomic import atomic_path
from unetscape.landscape.surface_io import read_surface
from unetscape.measures.surface_metrics import surface_metrics
from unetscape.models.spec import arch_factors
from unetscape.training.tables import parse_run_id, read_history, summarize_history

from .statistics import condition_table

# Metrics summarised over seeds (the headline numbers of the study figures).
HEADLINE = ["roughness", "total_variation", "strict_local_minima", "top_eigenvalue", "trace", "nonconvexity",
            "final_loss", "final_dice"]
CONDITION = ("arch", "optimizer", "noise", "norm", "skip")


FLATNESS = ("average_sharpness", "average_sharpness_se", "worst_case_sharpness", "pac_bayes_sigma",
            "pac_bayes_flatness", "pac_bayes_mag_sigma", "pac_bayes_mag_flatness", "frobenius_sq_sum",
            "log_prod_frobenius", "distance_from_init")


def run_row(run_id: str, arch: dict, surface_path, line_path, hessian_path, history_path,
            radii, rises, flatness_path=None) -> dict:
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
    eigenvalues = hessian["top_eigenvalues"] or []  # null for a model whose loss is not finite

    def number(key):
        return math.nan if hessian.get(key) is None else hessian[key]

    row.update(
        top_eigenvalue=eigenvalues[0] if eigenvalues else math.nan,
        top_eigenvalues=" ".join(f"{v:.6g}" for v in eigenvalues),
        lambda_min=number("lambda_min"),
        nonconvexity=number("nonconvexity"),
        trace=number("trace"),
        trace_se=number("trace_se"),
    )
    if flatness_path is not None:
        with open(flatness_path) as f:
            flatness = json.load(f)
        row.update({key: math.nan if flatness.get(key) is None else flatness[key] for key in FLATNESS})
    return row


def landscape_table(runs: list[str], archs: dict, surfaces, lines, hessians, histories, radii, rises,
                    flatness=None) -> pd.DataFrame:
    flatness = flatness if flatness is not None else [None] * len(runs)
    rows = []
    for run_id, surface, line, hessian, history, flat in zip(runs, surfaces, lines, hessians, histories, flatness,
                                                              strict=True):
        arch = archs[parse_run_id(run_id)["arch"]]
        rows.append(run_row(run_id, arch, surface, line, hessian, history, radii, rises, flat))
    return pd.DataFrame(rows)


def conditions(table: pd.DataFrame, settings: dict) -> pd.DataFrame:
    """Per-condition statistics (`statistics.condition_table`) with the config's `metrics`
    settings: level, bootstrap, seed, min_runs."""
    metrics = [m for m in HEADLINE if m in table.columns]
    metrics += [c for c in table.columns if c.startswith("sharpness_r") or (c.startswith("basin") and c.endswith("_mean"))]
    metrics += [c for c in table.columns if c.startswith(("final_heldout", "gap_")) or c in FLATNESS]
    return condition_table(table, metrics, by=CONDITION, level=settings["level"], n_boot=settings["bootstrap"],
                           seed=settings["seed"], min_runs=settings["min_runs"])


def write_csv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
