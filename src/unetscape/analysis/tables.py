"""Per-run numbers of a study, and their statistics over seeds.

One row per run, every value read from a file the workflow wrote:

- factors: arch (with its norm, skip, init), optimizer, the recipe's lr, momentum, batch size,
  training-subset size and epoch budget (as the run trained, from outcome.json), noise, seed;
- training: outcome, final and held-out numbers (`training.tables.summarize_history`);
- stability: the probe curve's numbers over the study's common horizon (`probe_*`: the ones
  the findings read), and the older numbers of the epoch and mini-batch losses (`loss_rises`,
  `largest_rise`, `final_above_best`, `step_volatility`: kept for reference; the mini-batch
  volatility measures batch composition as much as the optimiser);
- edge of stability (`eos_*`): lambda_max and the batch sharpness against the optimiser's
  thresholds (`measures.edge_of_stability`);
- for a study with landscapes: every number made from random directions averaged over the run's
  direction sets (`roughness`, `total_variation`, minima, sharpness, basin widths, `basins`,
  `total_persistence`, `line_*`), with its standard error over directions (`*_se`) and the value
  of the figures' own plane (`*_first`, on its finer grid); the first plane's other numbers
  (loss range, `minimum_offset`, ...); the eigenvector plane's (`eigen_*`); the PCA plane's
  topology (`pca_*`); curvature in three parametrisations (`raw_*`, `folded_*`, `relative_*`, each
  with `*_lanczos_converged`; raw curvature is never compared); curvature per part
  (`part_{name}_*`) where it was measured; the flatness measures.
"""

from __future__ import annotations

import json
import math
import os
from typing import Sequence

import numpy as np
import pandas as pd

from unetscape.atomic import atomic_path
from unetscape.landscape.direction_sets import read_direction_sets, set_surfaces
from unetscape.landscape.surface_io import read_surface, surface_array
from unetscape.measures.surface_metrics import surface_metrics
from unetscape.measures.topology import persistence_metrics
from unetscape.models.spec import arch_factors
from unetscape.training.outcomes import read_outcome
from unetscape.training.stability import PROBE_NUMBERS, history_probe_stability
from unetscape.training.tables import parse_run_id, read_history, summarize_history

from .statistics import condition_table
from .variance import direction_and_seed

# Metrics summarised over seeds (the headline numbers of the study figures): invariant ones.
HEADLINE = ["roughness", "total_variation", "strict_local_minima", "basins", "relative_lambda_max", "relative_trace",
            "relative_nonconvexity", "probe_rises", "probe_largest_rise", "probe_volatility", "eos_lambda_ratio_final",
            "eos_batch_ratio_final", "final_loss", "final_dice"]
# The curvature numbers of hessian.json, per parametrisation (measures/curvature.py).
CURVATURE = ("lambda_max", "lambda_min", "nonconvexity", "trace", "trace_se")
# The training's older stability numbers (training/stability.py), from outcome.json.
STABILITY = ("loss_rises", "largest_rise", "final_above_best", "step_volatility")
# Numbers over every run that has them (an unstable run is what they are about), not only
# finished ones.
ALL_RUNS = STABILITY + PROBE_NUMBERS + ("eos_lambda_ratio_final", "eos_batch_ratio_final", "eos_lambda_ratio_max",
                                        "eos_batch_ratio_max", "eos_lambda_at_edge", "eos_batch_at_edge")
# A condition: runs that share these differ only in their seed.
CONDITION = ("arch", "optimizer", "lr", "batch_size", "train_size", "epochs_budget", "noise", "norm", "skip")
# Numbers made from random directions: averaged over a run's direction sets.
SET_METRICS = ("roughness", "total_variation", "strict_local_minima", "strict_local_minima_4", "basins",
               "total_persistence")
SET_PREFIXES = ("sharpness_r", "basin_width_h")
LINE_METRICS = ("roughness", "total_variation", "strict_local_minima")
TOPOLOGY = ("basins", "total_persistence", "max_persistence")
EOS = {"final_lambda_ratio": "eos_lambda_ratio_final", "final_batch_ratio": "eos_batch_ratio_final",
       "max_lambda_ratio": "eos_lambda_ratio_max", "max_batch_ratio": "eos_batch_ratio_max",
       "fraction_lambda_at_edge": "eos_lambda_at_edge", "fraction_batch_at_edge": "eos_batch_at_edge",
       "final_lambda_converged": "eos_lambda_converged"}

FLATNESS = ("average_sharpness", "average_sharpness_se", "worst_case_sharpness", "pac_bayes_sigma",
            "pac_bayes_flatness", "pac_bayes_mag_sigma", "pac_bayes_mag_flatness", "frobenius_sq_sum",
            "log_prod_frobenius", "distance_from_init")


def _number(value) -> float:
    return math.nan if value is None else value


def curvature_columns(hessian: dict) -> dict:
    """raw_*, folded_* and relative_* columns of a hessian.json, with each solve's
    `*_lanczos_converged` (NaN where it has no numbers: a model whose loss is not finite, or a
    file written before a parametrisation existed), and the per-part numbers where measured."""
    columns = {}
    parts = {"raw": hessian, "folded": hessian.get("folded") or {}, "relative": hessian.get("relative") or {}}
    for name, part in parts.items():
        eigenvalues = part.get("top_eigenvalues") or []
        columns[f"{name}_top_eigenvalues"] = " ".join(f"{v:.6g}" for v in eigenvalues)
        columns.update({f"{name}_{key}": _number(part.get(key)) for key in CURVATURE})
        converged = part.get("lanczos_converged")
        columns[f"{name}_lanczos_converged"] = math.nan if converged is None else bool(converged)
    measured = (hessian.get("parts") or {}).get("measured")
    for part, numbers in ((hessian.get("parts") or {}).get("parts") or {}).items() if measured else ():
        for key in ("lambda_max", "trace", "trace_share"):
            columns[f"part_{part}_{key}"] = _number(numbers.get(key))
        columns[f"part_{part}_lanczos_converged"] = bool(numbers.get("lanczos_converged"))
    return columns


def plane_metrics(surface: dict, radii, rises, threshold: float) -> dict:
    """surface_metrics and the topology numbers (`measures.topology`) of one surface dict."""
    metrics = surface_metrics(surface, radii, rises)
    loss = surface_array(surface, "train_loss", order="xy")
    topology = persistence_metrics(loss, threshold)
    metrics.update({key: topology[key] for key in TOPOLOGY})
    return metrics


def _averaged(name: str) -> bool:
    return name in SET_METRICS or (name.startswith(SET_PREFIXES) and not name.startswith("basin_width_h")) or (
        name.startswith("basin_width_h") and name.endswith("_mean"))


def direction_set_columns(sets_path, radii, rises, threshold: float) -> tuple[dict, dict]:
    """The mean over a run's direction sets of every number made from random directions and
    its standard error over directions (`*_se`); and each set's values (for the variance table)."""
    sets = set_surfaces(read_direction_sets(sets_path))
    per_set: dict[str, list[float]] = {}
    for one in sets:
        plane = plane_metrics(one["plane"], radii, rises, threshold)
        for key, value in plane.items():
            if _averaged(key):
                per_set.setdefault(key, []).append(float(value))
        line = surface_metrics(one["line"], radii, rises)
        for key in LINE_METRICS:
            per_set.setdefault(f"line_{key}", []).append(float(line[key]))
    columns = {"direction_sets": len(sets)}
    for key, values in per_set.items():
        finite = np.asarray(values)[np.isfinite(values)]
        columns[key] = float(finite.mean()) if len(finite) else math.nan
        columns[f"{key}_se"] = float(finite.std(ddof=1) / math.sqrt(len(finite))) if len(finite) > 1 else math.nan
    return columns, per_set


def eos_columns(path) -> dict:
    with open(path) as f:
        record = json.load(f)
    summary = record.get("summary") or {}
    columns = {column: _number(summary.get(key)) for key, column in EOS.items()}
    thresholds = record.get("thresholds") or {}
    columns["eos_threshold_full_batch"] = _number(thresholds.get("full_batch"))
    columns["eos_threshold_batch"] = _number(thresholds.get("batch"))
    rows = record.get("rows") or []
    columns["eos_lambda_max_final"] = _number(rows[-1].get("lambda_max")) if rows else math.nan
    columns["eos_batch_sharpness_final"] = _number(rows[-1].get("batch_sharpness")) if rows else math.nan
    return columns


def run_row(run_id: str, arch: dict, files: dict, radii, rises, threshold: float) -> tuple[dict, dict]:
    """One run's row, and its per-direction-set values (empty without landscapes). `files`:
    history, outcome, eos, and optionally surface, line, sets, hessian, flatness, eigen, pca."""
    factors = arch_factors(arch)
    parsed = parse_run_id(run_id)
    row = {"run": run_id, **{k: parsed[k] for k in ("arch", "optimizer", "recipe", "noise", "seed")},
           "norm": factors["norm"], "skip": factors["skip"], "init": factors["init"]}
    outcome = read_outcome(files["outcome"])
    training = outcome.get("training") or {}
    row.update(lr=_number(training.get("lr")), momentum=_number(training.get("momentum")),
               batch_size=_number(training.get("batch_size")), train_size=_number(training.get("train_size")),
               epochs_budget=_number(training.get("max_epochs")))
    summary = summarize_history(read_history(files["history"]))
    row.update(outcome=summary["outcome"], diverged=summary["diverged"], epochs_run=summary["epochs_run"],
               steps=summary["steps"], final_loss=summary["final_loss"], final_dice=summary["final_dice"],
               **{k: v for k, v in summary.items() if k.startswith(("final_heldout", "gap_"))})
    stability = outcome.get("stability") or {}
    row.update({key: _number(stability.get(key)) for key in STABILITY})
    row["prediction_variation"] = _number(outcome.get("prediction_variation"))
    # standard errors over held-out images of the final held-out numbers (and so of the gap)
    row["final_heldout_loss_se"] = _number(outcome.get("final_heldout_loss_se"))
    row["final_heldout_dice_se"] = _number(outcome.get("final_heldout_dice_se"))
    row.update(eos_columns(files["eos"]))
    per_set: dict = {}
    if files.get("surface") is not None:
        first = plane_metrics(read_surface(files["surface"]), radii, rises, threshold)
        row.update({key: value for key, value in first.items() if not _averaged(key)})
        row.update({f"{key}_first": value for key, value in first.items() if _averaged(key)})
        line = surface_metrics(read_surface(files["line"]), radii, rises)
        row.update({f"line_{key}_first": line[key] for key in LINE_METRICS})
        averaged, per_set = direction_set_columns(files["sets"], radii, rises, threshold)
        row.update(averaged)
        with open(files["hessian"]) as f:
            row.update(curvature_columns(json.load(f)))
        eigen = plane_metrics(read_surface(files["eigen"]), radii, rises, threshold)
        row.update({f"eigen_{key}": eigen[key] for key in ("roughness", "total_variation", "loss_range") + TOPOLOGY})
        # The PCA plane is fitted to the path, so the trained model need not be a grid point:
        # only its topology, which needs none.
        pca = persistence_metrics(surface_array(read_surface(files["pca"]), "train_loss", order="xy"), threshold)
        row.update({f"pca_{key}": pca[key] for key in TOPOLOGY})
        with open(files["flatness"]) as f:
            flatness = json.load(f)
        row.update({key: _number(flatness.get(key)) for key in FLATNESS})
    return row, per_set


def curve_columns(path) -> dict:
    """The barriers of a mode-connecting curve file (`jobs.curves`): the loss barrier of the
    trained curve and of the straight line, and the curve's hard-Dice barrier."""
    import h5py

    from unetscape.landscape.surface_io import read_attrs

    with h5py.File(path, "r") as f:
        attrs = read_attrs(f)
    return {"curve_barrier_next": _number(attrs.get("barrier_curve")),
            "line_barrier_next": _number(attrs.get("barrier_line")),
            "curve_dice_barrier_next": _number(attrs.get("dice_barrier_curve"))}


def landscape_table(runs: Sequence[str], archs: dict, files: dict, radii, rises, threshold: float,
                    tolerance: float, curve_pairs: Sequence = ()) -> tuple[pd.DataFrame, dict]:
    """The study's runs table (one `run_row` each, then the probe numbers over the common
    horizon, `with_probe_horizon`) and each run's per-direction-set values.

    `files`: lists aligned with `runs` under histories, outcomes, eos, and (a study with
    landscapes) surfaces, lines, sets, hessians, flatness, eigen, pca; a missing or empty list
    means the study has no such files."""
    keys = {"history": "histories", "outcome": "outcomes", "eos": "eos", "surface": "surfaces", "line": "lines",
            "sets": "sets", "hessian": "hessians", "flatness": "flatness", "eigen": "eigen", "pca": "pca"}
    columns = {one: list(files.get(many) or [None] * len(runs)) for one, many in keys.items()}
    for one, values in columns.items():
        if len(values) != len(runs):
            raise ValueError(f"{len(values)} {keys[one]} files for {len(runs)} runs")
    rows, sets = [], {}
    for k, run_id in enumerate(runs):
        arch = archs[parse_run_id(run_id)["arch"]]
        row, per_set = run_row(run_id, arch, {one: values[k] for one, values in columns.items()}, radii, rises,
                               threshold)
        rows.append(row)
        sets[run_id] = per_set
    # The barriers to the next seed of the run's condition, on the row of the first of the two.
    by_run = {run_a: curve_columns(path) for run_a, _, path in curve_pairs}
    for row in rows:
        row.update(by_run.get(row["run"], {}))
    table = pd.DataFrame(rows)
    histories = {run_id: read_history(path) for run_id, path in zip(runs, columns["history"])}
    return with_probe_horizon(table, histories, tolerance), sets


def common_horizon(table: pd.DataFrame, histories: dict) -> int | None:
    """The probe horizon of a study: the last probe step every run reached, over the runs whose
    probe curve stayed finite (a diverged run stops early; its outcome says so). None when no
    run has a finite probe curve."""
    last = []
    for run_id, history in histories.items():
        probes = history[history["kind"] == "probe"]
        if len(probes) and np.isfinite(probes["loss"].to_numpy()).all():
            last.append(int(probes["step"].max()))
    return min(last) if last else None


def with_probe_horizon(table: pd.DataFrame, histories: dict, tolerance: float) -> pd.DataFrame:
    """The probe curve's stability numbers (`training.stability.probe_stability`) of every run
    over the study's common horizon, so every run of a comparison is read over the same steps."""
    horizon = common_horizon(table, histories)
    table = table.copy()
    table["probe_horizon"] = math.nan if horizon is None else horizon
    for index, row in table.iterrows():
        history = histories[row["run"]]
        steps_per_epoch = math.ceil(row["train_size"] / row["batch_size"]) if row["batch_size"] > 0 else 1
        numbers = history_probe_stability(history, tolerance, steps_per_epoch, horizon)
        for key in PROBE_NUMBERS:
            table.loc[index, key] = numbers[key]
    return table


def direction_table(table: pd.DataFrame, per_set: dict, by: Sequence[str] = CONDITION) -> pd.DataFrame:
    """Per condition and per number made from random directions: its spread between
    directions within a run and between seeds (`variance.direction_and_seed`, over the
    condition's finished runs), and a row `all conditions` pooling the conditions' variance
    components (weighted by their runs)."""
    finished = table[table["outcome"] == "finished"] if "outcome" in table.columns else table
    keys = [column for column in by if column in table.columns]
    metrics = sorted({metric for values in per_set.values() for metric in values})
    rows = []
    for key, group in finished.groupby(keys, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        for metric in metrics:
            groups = [per_set[run].get(metric, []) for run in group["run"] if per_set.get(run)]
            if not groups:
                continue
            sets = int(max(len(g) for g in groups))
            rows.append({**dict(zip(keys, key)), "metric": metric, **direction_and_seed(groups, sets)})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=[*keys, "metric", "runs", "sets", "sd_direction", "sd_seed", "direction_share",
                                     "se_directions", "se_over_sd_seed", "criterion"])
    frame["criterion"] = np.where(frame["se_over_sd_seed"] <= 0.5, "met", "not met")
    return frame


def conditions(table: pd.DataFrame, settings: dict) -> pd.DataFrame:
    """Per-condition statistics (`statistics.condition_table`) with the config's `metrics`
    settings: level, bootstrap, seed, min_runs."""
    metrics = [m for m in HEADLINE if m in table.columns]
    metrics += [c for c in table.columns if c.startswith("sharpness_r") and not c.endswith(("_se", "_first"))]
    metrics += [c for c in table.columns if c.startswith("basin_width") and c.endswith("_mean")]
    metrics += [c for c in table.columns if c.startswith(("final_heldout", "gap_")) or c in FLATNESS]
    metrics += [c for c in table.columns if c.startswith("part_") and c.endswith(("_lambda_max", "_trace"))]
    metrics += [c for c in table.columns if c.endswith("_barrier_next")]
    metrics += [c for c in table.columns if c in STABILITY + ("prediction_variation", "probe_final_above_best")
                and c not in metrics]
    return condition_table(table, metrics, by=CONDITION, level=settings["level"], n_boot=settings["bootstrap"],
                           seed=settings["seed"], min_runs=settings["min_runs"], all_runs_metrics=ALL_RUNS)


def write_csv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
