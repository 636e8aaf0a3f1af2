"""Does a measure predict generalisation? Kendall rank correlations across runs.

For one measure (e.g. a sharpness) and one target (e.g. the generalisation gap) over the runs:

    kendall_tau        Kendall's tau-b (ties handled) and its two-sided p-value
    bootstrap_tau      a percentile interval for tau-b, resampling runs with replacement
    granulated_tau     Jiang et al. 2020's granulated tau: psi per factor and their mean Psi
    generalisation_table   all of them for every (measure, target) pair of a runs table

tau-b = (C - D) / sqrt((n0 - n1) (n0 - n2)) over the n0 = n (n - 1) / 2 pairs of runs, C and D
the concordant and discordant pairs, n1 and n2 the pairs tied in the measure and in the target
(Kendall 1945). It is undefined (NaN) with fewer than two runs or when either variable is
constant. A positive tau means a larger measure goes with a larger target: a sharpness that
predicts a larger gap has tau > 0 against `gap_loss` and tau < 0 against `test_dice`.

Every random draw comes from `numpy.random.default_rng(seed)`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.stats


def _pair(measure, target) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(measure, dtype=np.float64).ravel()
    b = np.asarray(target, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"measure and target need one value per run each, got {a.size} and {b.size}")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("measure and target must not hold NaN: leave those runs out first")
    return a, b


def kendall_tau(measure, target) -> tuple[float, float]:
    """(tau-b, two-sided p-value) of the runs' measure against their target.

    Both from scipy.stats.kendalltau (variant "b", method "auto": the exact null distribution
    for small samples without ties, otherwise the normal approximation with the tie-corrected
    variance). NaN, NaN with fewer than two runs or a constant variable.
    """
    a, b = _pair(measure, target)
    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return math.nan, math.nan
    result = scipy.stats.kendalltau(a, b, variant="b")
    return float(result.statistic), float(result.pvalue)


def tau_b_rows(a: np.ndarray, b: np.ndarray, chunk: int = 256) -> np.ndarray:
    """tau-b of every row of a against the same row of b, (rows, n) -> (rows,), NaN where undefined.

    Pairwise signs over all ordered pairs (i, j), halved: the O(n^2) definition, vectorised
    over rows (the bootstrap resamples) in chunks of `chunk` rows to bound memory.
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    if a.shape != b.shape:
        raise ValueError(f"row shapes differ: {a.shape} and {b.shape}")
    rows, n = a.shape
    out = np.full(rows, np.nan)
    pairs = n * (n - 1) / 2
    for start in range(0, rows, chunk):
        sa = np.sign(a[start : start + chunk, :, None] - a[start : start + chunk, None, :])
        sb = np.sign(b[start : start + chunk, :, None] - b[start : start + chunk, None, :])
        score = (sa * sb).sum(axis=(1, 2)) / 2  # C - D
        # Tied pairs; the diagonal (i, i) ties n times in both and is not a pair.
        ties_a = ((sa == 0).sum(axis=(1, 2)) - n) / 2
        ties_b = ((sb == 0).sum(axis=(1, 2)) - n) / 2
        denominator = np.sqrt((pairs - ties_a) * (pairs - ties_b))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + chunk] = np.where(denominator > 0, score / denominator, np.nan)
    return out


def bootstrap_tau(measure, target, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """Bootstrap percentile interval of tau-b over runs.

    Resample b (of `n_boot`) takes the runs at row b of `rng.integers(0, n, (n_boot, n))`,
    rng = numpy.random.default_rng(seed): n runs drawn with replacement, each keeping its
    measure and target together. tau-b of each resample (a run drawn twice is a pair tied in
    both variables); the interval is the (1 - level) / 2 and (1 + level) / 2 quantiles of the
    resamples' tau (numpy's linear interpolation). A resample where a variable is constant has
    no tau and is left out of the quantiles; "valid" counts the resamples used.

    Returns {"low", "high", "valid", "n_boot", "level", "seed"}; low and high are NaN with
    fewer than two runs or no valid resample.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level!r}")
    a, b = _pair(measure, target)
    result = {"low": math.nan, "high": math.nan, "valid": 0, "n_boot": n_boot, "level": float(level), "seed": seed}
    n = a.size
    if n < 2:
        return result
    index = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    taus = tau_b_rows(a[index], b[index])
    taus = taus[~np.isnan(taus)]
    result["valid"] = int(taus.size)
    if taus.size:
        low, high = np.quantile(taus, [(1 - level) / 2, (1 + level) / 2])
        result.update(low=float(low), high=float(high))
    return result


def _check_columns(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what} {missing} are not columns of the runs table (columns: {list(table.columns)})")


def _numeric(table: pd.DataFrame, column: str) -> pd.Series:
    try:
        return pd.to_numeric(table[column], errors="raise").astype(np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"column {column!r} of the runs table is not numeric: {err}") from None


def granulated_tau(table: pd.DataFrame, factors: Sequence[str], measure: str, target: str) -> dict:
    """Granulated Kendall's tau of Jiang et al. 2020 ("Fantastic generalization measures").

    For factor i, the runs are grouped by the values of every OTHER factor; within each group
    only factor i varies. A group with at least two distinct values of factor i gets the tau-b
    of measure against target over its runs; psi_i is the mean of those taus, and
    Psi = mean over factors of psi_i. So psi_i says whether the measure ranks runs correctly
    when only factor i changes. Groups with fewer than two distinct values of factor i are
    skipped (a lone run has no pair); so are groups where the measure or the target is
    constant (tau-b undefined), counted separately.

    `table` holds the runs to use (rows whose measure or target is NaN are refused; leave them
    out first). Returns {"psi": {factor: psi or NaN}, "groups": {factor: groups averaged},
    "undefined": {factor: groups skipped for ties}, "Psi": mean of the defined psi (NaN if
    none), "Psi_factors": how many psi it averages}.
    """
    factors = list(factors)
    if not factors or len(set(factors)) != len(factors):
        raise ValueError(f"factors must be distinct column names, got {factors!r}")
    _check_columns(table, factors + [measure, target], "columns")
    table = table.reset_index(drop=True)  # group rows by position, whatever the caller's index
    values = pd.DataFrame({"m": _numeric(table, measure), "t": _numeric(table, target)})
    if values.isna().any().any():
        raise ValueError(f"{measure!r} or {target!r} holds NaN: leave those runs out first")
    for factor in factors:
        if table[factor].isna().any():
            raise ValueError(f"factor column {factor!r} has missing values")
    psi, groups, undefined = {}, {}, {}
    m, t = values["m"].to_numpy(), values["t"].to_numpy()
    for factor in factors:
        others = [f for f in factors if f != factor]
        codes = table.groupby(others, sort=True).ngroup().to_numpy() if others else np.zeros(len(table), int)
        levels = table[factor].to_numpy()
        taus, ties = [], 0
        for code in np.unique(codes):
            rows = np.flatnonzero(codes == code)
            if len(set(levels[rows].tolist())) < 2:
                continue
            tau = float(tau_b_rows(m[rows][None, :], t[rows][None, :])[0])  # = kendall_tau's, without SciPy's overhead
            if math.isnan(tau):
                ties += 1
            else:
                taus.append(tau)
        psi[factor] = float(np.mean(taus)) if taus else math.nan
        groups[factor], undefined[factor] = len(taus), ties
    defined = [v for v in psi.values() if not math.isnan(v)]
    return {
        "psi": psi,
        "groups": groups,
        "undefined": undefined,
        "Psi": float(np.mean(defined)) if defined else math.nan,
        "Psi_factors": len(defined),
    }


def generalisation_table(
    runs: pd.DataFrame,
    measures: Sequence[str],
    targets: Sequence[str],
    factors: Sequence[str],
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (measure, target): how well the measure ranks the runs by the target.

    `runs` has one row per run with the factor columns (e.g. arch, optimizer, noise, seed,
    skip), the measure columns and the target columns (e.g. gap_loss, test_dice). For each pair
    the runs whose measure or target is NaN are left out: `n` counts the runs used,
    `n_left_out` those left out. Columns: measure, target, n, n_left_out, tau, p_value
    (`kendall_tau`), tau_low, tau_high, boot_valid (`bootstrap_tau` with `n_boot`, `level` and
    the same `seed` for every pair), then psi_{factor}, groups_{factor} for each factor, Psi
    and Psi_factors (`granulated_tau`). Factors must vary independently of each other (e.g.
    norm and skip, not an arch name that fixes both), or their psi has no groups.
    """
    measures, targets, factors = list(measures), list(targets), list(factors)
    if not measures or not targets:
        raise ValueError("need at least one measure and one target")
    _check_columns(runs, factors, "factors")
    _check_columns(runs, measures, "measures")
    _check_columns(runs, targets, "targets")
    rows = []
    for measure in measures:
        m = _numeric(runs, measure)
        for target in targets:
            t = _numeric(runs, target)
            keep = m.notna() & t.notna()
            used = runs[keep]
            tau, p_value = kendall_tau(m[keep], t[keep])
            interval = bootstrap_tau(m[keep], t[keep], n_boot=n_boot, level=level, seed=seed)
            granulated = granulated_tau(used, factors, measure, target)
            row = {
                "measure": measure,
                "target": target,
                "n": int(keep.sum()),
                "n_left_out": int((~keep).sum()),
                "tau": tau,
                "p_value": p_value,
                "tau_low": interval["low"],
                "tau_high": interval["high"],
                "boot_valid": interval["valid"],
            }
            for factor in factors:
                row[f"psi_{factor}"] = granulated["psi"][factor]
                row[f"groups_{factor}"] = granulated["groups"][factor]
            row["Psi"] = granulated["Psi"]
            row["Psi_factors"] = granulated["Psi_factors"]
            rows.append(row)
    columns = ["measure", "target", "n", "n_left_out", "tau", "p_value", "tau_low", "tau_high", "boot_valid"]
    columns += [f"{kind}_{factor}" for factor in factors for kind in ("psi", "groups")] + ["Psi", "Psi_factors"]
    return pd.DataFrame(rows, columns=columns)


def _condition_codes(table: pd.DataFrame, condition: Sequence[str]) -> np.ndarray:
    condition = list(condition)
    _check_columns(table, condition, "condition columns")
    if not condition:
        return np.zeros(len(table), dtype=int)
    return table.reset_index(drop=True).groupby(condition, sort=True, dropna=False).ngroup().to_numpy()


def _within_taus(measure: np.ndarray, targets: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Mean over conditions of tau-b within each condition, for every row of `targets`
    (rows, n): conditions with fewer than two runs, or where tau-b is undefined, are skipped;
    NaN where no condition has a tau."""
    rows = targets.shape[0]
    taus = []
    for code in np.unique(codes):
        members = np.flatnonzero(codes == code)
        if len(members) < 2:
            continue
        m = np.broadcast_to(measure[members], (rows, len(members)))
        taus.append(tau_b_rows(m, targets[:, members]))
    if not taus:
        return np.full(rows, np.nan)
    stacked = np.vstack(taus)
    counts = np.isfinite(stacked).sum(0)
    with np.errstate(invalid="ignore"):
        return np.where(counts > 0, np.nansum(stacked, 0) / np.maximum(counts, 1), np.nan)


def within_condition_tau(
    measure,
    target,
    codes,
    n_perm: int = 2000,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Kendall's tau-b between measure and target among runs of the same condition only.

    `codes` gives each run's condition (runs that differ only in their seed share one). The
    statistic is the mean, over conditions with at least two runs and a defined tau-b, of the
    tau-b within the condition: a difference between conditions (say, architectures that differ
    in both the measure and held-out Dice) cannot make it large, as it can the pooled tau.

    p-value: a two-sided permutation test that shuffles the target among the runs of each
    condition (`n_perm` seeded shuffles; p = (1 + #{|tau*| >= |tau|}) / (1 + n_perm)). It
    assumes that, without an association, the runs of a condition are exchangeable: their seeds
    are its only difference. Interval: a percentile bootstrap resampling runs within each
    condition (`n_boot` resamples). Both from numpy.random.default_rng(seed).

    Returns {"tau", "p_value", "low", "high", "conditions" (with a tau), "n_perm", "n_boot"}.
    """
    a, b = _pair(measure, target)
    codes = np.asarray(codes)
    if codes.shape != a.shape:
        raise ValueError(f"need one condition per run, got {codes.size} for {a.size} runs")
    observed = float(_within_taus(a, b[None, :], codes)[0])
    groups = [np.flatnonzero(codes == code) for code in np.unique(codes)]
    conditions = sum(
        1 for g in groups if len(g) >= 2 and np.isfinite(tau_b_rows(a[g][None, :], b[g][None, :])[0])
    )
    result = {"tau": observed, "p_value": math.nan, "low": math.nan, "high": math.nan, "conditions": conditions,
              "n_perm": n_perm, "n_boot": n_boot}
    if math.isnan(observed):
        return result
    rng = np.random.default_rng(seed)
    shuffled = np.broadcast_to(b, (n_perm, b.size)).copy()
    for g in groups:
        shuffled[:, g] = rng.permuted(shuffled[:, g], axis=1)
    null = _within_taus(a, shuffled, codes)
    null = null[np.isfinite(null)]
    result["p_value"] = float((1 + np.sum(np.abs(null) >= abs(observed) - 1e-12)) / (1 + null.size))
    # resampled runs keep their condition: each resample's tau is a within-condition one too
    taus = [tau_b_rows(a[idx], b[idx]) for g in groups if len(g) >= 2
            for idx in [g[rng.integers(0, len(g), size=(n_boot, len(g)))]]]
    boot = np.array([])
    if taus:
        stacked = np.vstack(taus)
        counts = np.isfinite(stacked).sum(0)
        with np.errstate(invalid="ignore"):
            boot = np.where(counts > 0, np.nansum(stacked, 0) / np.maximum(counts, 1), np.nan)
        boot = boot[np.isfinite(boot)]
    if boot.size:
        low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
        result.update(low=float(low), high=float(high))
    return result
