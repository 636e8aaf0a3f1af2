"""Statistics across seeds: intervals that stay in each metric's domain, per-condition tables.

A condition is one setting of the studied factors (architecture, optimiser, noise level, skip
variant); its runs differ only in the seed. Landscape numbers describe trained models, so a
condition's metrics are computed over its `finished` runs only (the training's stability
numbers over every run that has them: an unstable run is what they are about); the outcomes are
counted (`n_finished`, `n_diverged`, `n_unstable`, `n_collapsed`, `n_not_converged`) and the
finished and diverged rates get intervals.

Intervals:

    mean of a metric     bootstrap percentile interval over the condition's runs (resampling
                         runs with replacement, `n_boot` seeded resamples): the interval of a
                         mean of values that are all >= 0, or all in [0, 1], stays there, since
                         every resampled mean does (a t-interval of 3 seeds spanned roughly
                         -300..500 for an eigenvalue that is positive). With fewer than
                         `min_runs` runs there is no interval: it is NaN and the `note` column
                         says "too few runs".
    rate of an outcome   Wilson score interval for a binomial proportion: always in [0, 1], and
                         informative also for 0 of n or n of n.

A percentile bootstrap over 3-5 seeds is narrow where the seeds happen to agree (its coverage
is below the nominal level for so few runs); the findings table therefore tests differences
with Welch's t-test rather than reading overlap of these intervals.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
import scipy.stats

from unetscape.training.outcomes import OUTCOMES

CONDITION = ("arch", "optimizer", "noise", "skip")
TOO_FEW = "too few runs"


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


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be between 0 and 1, got {level!r}")


def _numbers(values) -> np.ndarray:
    values = pd.to_numeric(pd.Series(np.ravel(np.asarray(values, dtype=object))), errors="coerce")
    values = values.to_numpy(dtype=np.float64)
    return values[np.isfinite(values)]


# ---------------------------------------------------------------------------------------------
# mean with an interval


class MeanCI(NamedTuple):
    mean: float
    std: float
    low: float
    high: float
    n: int


def mean_ci(values, level: float = 0.95) -> MeanCI:
    """(mean, std, low, high, n) of the finite values: std with ddof = 1, Student-t interval.

    low, high = mean -+ t_{(1 + level) / 2, n - 1} * std / sqrt(n). Symmetric, so it can leave
    a metric's domain; the tables use `bootstrap_mean_ci`. With n = 1 std and the interval are
    NaN; with n = 0 everything is NaN.
    """
    _check_level(level)
    values = _numbers(values)
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


def bootstrap_mean_ci(
    values, level: float = 0.95, n_boot: int = 2000, seed: int = 0, min_runs: int = 3
) -> MeanCI:
    """(mean, std, low, high, n) of the finite values with a bootstrap percentile interval.

    The interval is the (1 - level)/2 and (1 + level)/2 quantiles of the means of `n_boot`
    resamples (with replacement, of the same size) drawn with `seed`; with fewer than
    `min_runs` values it is NaN (`TOO_FEW`). Every resampled mean lies between the smallest
    and the largest value, so the interval does too.
    """
    _check_level(level)
    if n_boot < 1 or min_runs < 1:
        raise ValueError(f"need n_boot >= 1 and min_runs >= 1, got {n_boot!r} and {min_runs!r}")
    values = _numbers(values)
    n = int(values.size)
    nan = float("nan")
    if n == 0:
        return MeanCI(nan, nan, nan, nan, 0)
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if n > 1 else nan
    if n < min_runs:
        return MeanCI(mean, std, nan, nan, n)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    low, high = np.quantile(means, [0.5 * (1 - level), 0.5 * (1 + level)])
    # Rounding in the quantile can step a hair outside the data's range.
    return MeanCI(mean, std, float(max(low, values.min())), float(min(high, values.max())), n)


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion successes / n, inside [0, 1].

    (p + z²/2n -+ z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), z the normal (1+level)/2 quantile.
    (NaN, NaN) for n = 0.
    """
    _check_level(level)
    if n == 0:
        return float("nan"), float("nan")
    if not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    z = float(scipy.stats.norm.ppf(0.5 * (1 + level)))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # The interval always contains p; at 0 of n and n of n its end is p exactly (not p minus
    # a rounding error).
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


# ---------------------------------------------------------------------------------------------
# per-condition table


def _as_bool(column: pd.Series) -> pd.Series:
    """Divergence flags as booleans, also when a CSV round trip turned them into strings."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column.fillna(False).astype(bool)
    return column.astype(str).str.strip().str.lower().isin(("true", "1", "yes"))


def _outcomes(runs: pd.DataFrame) -> pd.Series:
    if "outcome" in runs.columns:
        return runs["outcome"].astype(str)
    if "diverged" in runs.columns:
        return _as_bool(runs["diverged"]).map({True: "diverged", False: "finished"})
    return pd.Series("finished", index=runs.index)


def condition_table(
    runs: pd.DataFrame,
    metrics: Sequence[str],
    by: Sequence[str] = CONDITION,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    min_runs: int = 3,
    all_runs_metrics: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per condition: the `by` columns, run counts by outcome, then per metric its
    `bootstrap_mean_ci` over the condition's finished runs (over all its runs with a value for
    the metrics in `all_runs_metrics`).

    Columns: the `by` columns that `runs` has (with none, all runs form one condition), `n`
    (runs), `n_finished`, `n_diverged`, `n_collapsed`, `n_not_converged`, `finished_rate` and
    `diverged_rate` each with `_ci_low`/`_ci_high` (Wilson), then for each metric
    `{metric}_mean`, `_std`, `_ci_low`, `_ci_high`, `_n` (finished runs with a value), and
    `note` ("too few runs" when some metric has fewer than `min_runs` values). The outcome of a
    run is its `outcome` column (or, for older tables, `diverged`). Rows are sorted by the `by`
    columns.
    """
    missing = [m for m in metrics if m not in runs.columns]
    if missing:
        raise ValueError(f"metrics {missing} are not columns of the runs table ({list(runs.columns)})")
    runs = runs.assign(_outcome=_outcomes(runs))
    unknown = set(runs["_outcome"]) - set(OUTCOMES)
    if unknown:
        raise ValueError(f"unknown outcomes {sorted(unknown)} (expected {OUTCOMES})")
    keys = [column for column in by if column in runs.columns]
    groups = runs.groupby(keys, sort=True, dropna=False) if keys else [((), runs)]

    rows = []
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key))
        n = len(group)
        row["n"] = n
        for outcome in OUTCOMES:
            row[f"n_{outcome}"] = int((group["_outcome"] == outcome).sum())
        for name, count in (("finished", row["n_finished"]), ("diverged", row["n_diverged"])):
            row[f"{name}_rate"] = count / n if n else float("nan")
            row[f"{name}_rate_ci_low"], row[f"{name}_rate_ci_high"] = wilson_interval(count, n, level)
        finished = group[group["_outcome"] == "finished"]
        too_few = False
        for metric in metrics:
            # The same seed for every interval: none depends on which other metrics or conditions exist.
            runs_used = group if metric in all_runs_metrics else finished
            stats = bootstrap_mean_ci(runs_used[metric], level, n_boot, seed, min_runs)
            row[f"{metric}_mean"] = stats.mean
            row[f"{metric}_std"] = stats.std
            row[f"{metric}_ci_low"] = stats.low
            row[f"{metric}_ci_high"] = stats.high
            row[f"{metric}_n"] = stats.n
            too_few |= stats.n < min_runs
        row["note"] = f"{TOO_FEW} (fewer than {min_runs} runs with a value)" if too_few else ""
        rows.append(row)
    columns = (
        keys
        + ["n"]
        + [f"n_{o}" for o in OUTCOMES]
        + [f"{r}_rate{s}" for r in ("finished", "diverged") for s in ("", "_ci_low", "_ci_high")]
        + [f"{m}_{s}" for m in metrics for s in ("mean", "std", "ci_low", "ci_high", "n")]
        + ["note"]
    )
    return pd.DataFrame(rows, columns=columns)
