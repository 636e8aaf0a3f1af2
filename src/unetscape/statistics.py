"""Statistics across seeds: Student-t quantiles, mean with confidence interval, per-condition tables.

A condition is one setting of the studied factors (architecture, optimiser, noise level, skip
variant); its runs differ only in the seed. For every metric a condition gets the mean over its
runs, the sample standard deviation and the two-sided Student-t confidence interval of the mean,

    mean +- t_{(1 + level) / 2, n - 1} * std / sqrt(n),    std with ddof = 1,

computed from the runs whose value is not NaN (a run that diverged has no landscape numbers,
and its absence is counted by `diverged_rate` instead).

The t quantile comes from scipy.stats.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
import scipy.stats

CONDITION = ("arch", "optimizer", "noise", "skip")


def t_quantile(p: float, dof: float) -> float:
    """The p-quantile of Student's t with `dof` > 0 degrees of freedom (math.inf: the normal).

    E.g. t_quantile(0.975, 4) = 2.7764.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile needs 0 < p < 1, got {p!r}")
    if not dof > 0:
        raise ValueError(f"t_quantile needs dof > 0, got {dof!r}")
    if math.isinf(dof):
        return float(scipy.stats.norm.ppf(p))
    return float(scipy.stats.t.ppf(p, dof))


# ---------------------------------------------------------------------------------------------
# mean and confidence interval


class MeanCI(NamedTuple):
    mean: float
    std: float
    low: float
    high: float
    n: int


def mean_ci(values, level: float = 0.95) -> MeanCI:
    """(mean, std, low, high, n) of the non-NaN values: std with ddof = 1, Student-t interval.

    low, high = mean -+ t_{(1 + level) / 2, n - 1} * std / sqrt(n). With n = 1 std and the
    interval are NaN (one seed says nothing about the spread); with n = 0 everything is NaN.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be between 0 and 1, got {level!r}")
    values = pd.to_numeric(pd.Series(np.ravel(np.asarray(values, dtype=object))), errors="coerce")
    values = values.to_numpy(dtype=np.float64)
    values = values[~np.isnan(values)]
    n = int(values.size)
    nan = float("nan")
    if n == 0:
        return MeanCI(nan, nan, nan, nan, 0)
    mean = float(values.mean())
    if n == 1:
        return MeanCI(mean, nan, nan, nan, 1)
    std = float(values.std(ddof=1))
    half = t_quantile(0.5 * (1.0 + level), n - 1) * std / math.sqrt(n)
    return MeanCI(mean, std, mean - half, mean + half, n)


# ---------------------------------------------------------------------------------------------
# per-condition table


def _as_bool(column: pd.Series) -> pd.Series:
    """Divergence flags as booleans, also when a CSV round trip turned them into strings."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column.fillna(False).astype(bool)
    return column.astype(str).str.strip().str.lower().isin(("true", "1", "yes"))


def condition_table(
    runs: pd.DataFrame,
    metrics: Sequence[str],
    by: Sequence[str] = CONDITION,
    level: float = 0.95,
) -> pd.DataFrame:
    """One row per condition: the `by` columns, `n` (runs), then per metric its mean_ci.

    Columns: the `by` columns that `runs` has (the others are skipped; with none, all runs
    form one condition), `n`, and for each metric `{metric}_mean`, `{metric}_std`,
    `{metric}_ci_low`, `{metric}_ci_high`, `{metric}_n` (the runs with a value), then
    `diverged_rate` (fraction of the condition's runs that diverged) if `runs` has a
    `diverged` column. Rows are sorted by the `by` columns.
    """
    missing = [m for m in metrics if m not in runs.columns]
    if missing:
        raise ValueError(f"metrics {missing} are not columns of the runs table ({list(runs.columns)})")
    keys = [column for column in by if column in runs.columns]
    groups = runs.groupby(keys, sort=True, dropna=False) if keys else [((), runs)]

    rows = []
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key))
        row["n"] = len(group)
        for metric in metrics:
            stats = mean_ci(group[metric], level)
            row[f"{metric}_mean"] = stats.mean
            row[f"{metric}_std"] = stats.std
            row[f"{metric}_ci_low"] = stats.low
            row[f"{metric}_ci_high"] = stats.high
            row[f"{metric}_n"] = stats.n
        if "diverged" in group.columns:
            row["diverged_rate"] = float(_as_bool(group["diverged"]).mean())
        rows.append(row)
    columns = keys + ["n"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std", "ci_low", "ci_high", "n")]
    if "diverged" in runs.columns:
        columns.append("diverged_rate")
    return pd.DataFrame(rows, columns=columns)
