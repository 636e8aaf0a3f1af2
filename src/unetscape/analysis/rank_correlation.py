"""Does a measure predict generalisation? Kendall rank correlations across runs.

For one measure (e.g. a sharpness) and one target (e.g. the generalisation gap) over the runs:

    kendall_tau        Kendall's tau-b (ties handled) and its two-sided p-value
    bootstrap_tau      a percentile interval for tau-b, resampling runs with replacement
    granulated_tau     Jiang et al. 2020's granulated tau: psi per factor and their mean Psi
    stratified_tau     tau within strata (conditions), pooled over their pairs
    within_condition_tau   the stratified tau with a permutation p-value and a bootstrap interval
    generalisation_table   all of them for every (measure, target) pair of a runs table

tau-b = (C - D) / sqrt((n0 - n1) (n0 - n2)) over the n0 = n (n - 1) / 2 pairs of runs, C and D
the concordant and discordant pairs, n1 and n2 the pairs tied in the measure and in the target
(Kendall 1945). It is undefined (NaN) with fewer than two runs or when either variable is
constant. A positive tau means a larger measure goes with a larger target: a sharpness that
predicts a larger gap has tau > 0 against `gap_loss` and tau < 0 against `test_dice`.

Every random draw comes from `numpy.random.default_rng(seed)`.
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=256)
def _pair_index(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The n (n - 1) / 2 pairs i < j of n runs, as two (read-only, shared) index arrays."""
    first, second = np.triu_indices(n, k=1)
    first.flags.writeable = second.flags.writeable = False
    return first, second


def tau_b_rows(a: np.ndarray, b: np.ndarray, chunk: int = 256) -> np.ndarray:
    """tau-b of every row of a against the same row of b, (rows, n) -> (rows,), NaN where undefined.

    Signs over the pairs i < j: the O(n^2) definition, vectorised over rows (the bootstrap
    resamples) in chunks of `chunk` rows to bound memory.
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    if a.shape != b.shape:
        raise ValueError(f"row shapes differ: {a.shape} and {b.shape}")
    rows, n = a.shape
    out = np.full(rows, np.nan)
    first, second = _pair_index(n)
    pairs = first.size
    for start in range(0, rows, chunk):
        sa = np.sign(a[start : start + chunk, first] - a[start : start + chunk, second])
        sb = np.sign(b[start : start + chunk, first] - b[start : start + chunk, second])
        score = (sa * sb).sum(axis=1)  # C - D
        ties_a = (sa == 0).sum(axis=1)
        ties_b = (sb == 0).sum(axis=1)
        denominator = np.sqrt((pairs - ties_a) * (pairs - ties_b))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + chunk] = np.where(denominator > 0, score / denominator, np.nan)
    return out


def _resampled_parts(a: np.ndarray, b: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """C - D and tau-b's denominator of every resample (row of `index`, runs drawn from a and
    b), from how often each run is drawn, w (rows, n), and the n x n pairwise signs s_a, s_b:

        C - D = 1/2 sum_{i,j} w_i w_j s_a(i, j) s_b(i, j)
        pairs tied in a = (sum_{i,j} w_i w_j [a_i = a_j] - n) / 2   (a run drawn twice ties with itself)

    the same numbers as `tau_b_rows(a[index], b[index])` without forming the resamples' pairs.
    """
    rows, n = index.shape
    flat = (np.arange(rows)[:, None] * a.size + index).ravel()
    weights = np.bincount(flat, minlength=rows * a.size).reshape(rows, a.size).astype(np.float64)
    sign_a = np.sign(a[:, None] - a[None, :])
    sign_b = np.sign(b[:, None] - b[None, :])

    def quadratic(matrix):
        return ((weights @ matrix) * weights).sum(axis=1)

    score = quadratic(sign_a * sign_b) / 2
    pairs = n * (n - 1) / 2
    ties_a = (quadratic((sign_a == 0).astype(np.float64)) - n) / 2
    ties_b = (quadratic((sign_b == 0).astype(np.float64)) - n) / 2
    return score, np.sqrt(np.maximum(pairs - ties_a, 0) * np.maximum(pairs - ties_b, 0))


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
    score, denominator = _resampled_parts(a, b, index)
    taus = _ratio(score[:, None], denominator[:, None])
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
    return _granulated(values["m"].to_numpy(), values["t"].to_numpy(), factors, _factor_codes(table, factors))


def _factor_codes(table: pd.DataFrame, factors: Sequence[str]) -> dict:
    """For each factor: (integer code of its level, integer code of the group of the OTHER
    factors' values) per run, computed once for every measure and target of a table."""
    table = table.reset_index(drop=True)
    codes = {}
    for factor in factors:
        others = [f for f in factors if f != factor]
        group = table.groupby(others, sort=True).ngroup().to_numpy() if others else np.zeros(len(table), int)
        codes[factor] = (pd.factorize(table[factor])[0], group)
    return codes


def _granulated(m: np.ndarray, t: np.ndarray, factors: Sequence[str], codes: dict) -> dict:
    """`granulated_tau` of the runs' measure m and target t from `_factor_codes`: every group's
    tau-b at once from its pairs' signs (`_stratified_parts`)."""
    psi, groups, undefined = {}, {}, {}
    for factor in factors:
        levels, group = codes[factor]
        names, group = np.unique(group, return_inverse=True)
        # groups where the factor takes at least two values; the others are not compared
        distinct = np.bincount(np.unique(np.stack([group, levels]), axis=1)[0], minlength=names.size)
        first, second, owners = _condition_pairs(group)
        score, denominator = _stratified_parts(np.sign(m[first] - m[second])[None, :],
                                               np.sign(t[first] - t[second])[None, :], owners, names.size)
        varied = distinct >= 2
        defined = varied & (denominator[0] > 0)
        taus = score[0][defined] / denominator[0][defined]
        psi[factor] = float(np.mean(taus)) if taus.size else math.nan
        groups[factor], undefined[factor] = int(taus.size), int((varied & ~defined).sum())
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
    if not factors or len(set(factors)) != len(factors):
        raise ValueError(f"factors must be distinct column names, got {factors!r}")
    _check_columns(runs, factors, "factors")
    _check_columns(runs, measures, "measures")
    _check_columns(runs, targets, "targets")
    runs = runs.reset_index(drop=True)
    codes = _factor_codes(runs, factors)
    missing = {factor: runs[factor].isna().to_numpy() for factor in factors}
    rows = []
    for measure in measures:
        m = _numeric(runs, measure)
        for target in targets:
            t = _numeric(runs, target)
            keep = (m.notna() & t.notna()).to_numpy()
            tau, p_value = kendall_tau(m[keep], t[keep])
            interval = bootstrap_tau(m[keep], t[keep], n_boot=n_boot, level=level, seed=seed)
            for factor in factors:
                if missing[factor][keep].any():
                    raise ValueError(f"factor column {factor!r} has missing values")
            used = {f: (levels[keep], group[keep]) for f, (levels, group) in codes.items()}
            granulated = _granulated(m[keep].to_numpy(), t[keep].to_numpy(), factors, used)
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


def _condition_pairs(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs i < j of runs of the same condition: (first, second, condition of the pair),
    the condition numbered 0.. in the order of np.unique(codes)."""
    firsts, seconds, owners = [], [], []
    for k, code in enumerate(np.unique(codes)):
        members = np.flatnonzero(codes == code)
        first, second = _pair_index(len(members))
        firsts.append(members[first])
        seconds.append(members[second])
        owners.append(np.full(first.size, k))
    if not firsts:
        empty = np.zeros(0, dtype=int)
        return empty, empty, empty
    return np.concatenate(firsts), np.concatenate(seconds), np.concatenate(owners)


def _stratified_parts(sa: np.ndarray, sb: np.ndarray, owners: np.ndarray, conditions: int):
    """Per row and condition, from the pairs' signs sa, sb (rows, pairs): C - D, and tau-b's
    denominator sqrt((n0 - n1)(n0 - n2)) (n0 pairs, n1 and n2 of them tied in the measure and
    in the target). Both (rows, conditions)."""
    onehot = np.zeros((owners.size, conditions))
    onehot[np.arange(owners.size), owners] = 1.0
    score = (sa * sb) @ onehot
    pairs = onehot.sum(0)
    ties_a = (sa == 0) @ onehot
    ties_b = (sb == 0) @ onehot
    return score, np.sqrt((pairs - ties_a) * (pairs - ties_b))


def _ratio(score: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """sum over conditions of score / sum of denominator, per row; NaN where the latter is 0."""
    total = denominator.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, score.sum(axis=-1) / np.where(total > 0, total, 1.0), np.nan)


def stratified_tau(measure, target, codes) -> dict:
    """Kendall's tau-b among runs of the same condition, pooled over the conditions' pairs.

        tau_s = sum_c (C_c - D_c) / sum_c sqrt((n0_c - n1_c)(n0_c - n2_c))

    over the conditions c (`codes`: one per run), with C_c, D_c the concordant and discordant
    pairs of runs within condition c, n0_c = m_c (m_c - 1) / 2 its pairs and n1_c, n2_c those
    tied in the measure and in the target. Equivalently, the mean of the conditions' tau-b
    weighted by their denominators d_c: tau_s = sum_c d_c tau_c / sum_c d_c, and without ties
    d_c = n0_c, so a condition weighs by its number of pairs: 5 runs (10 pairs) count 10/3 as
    much as 3 runs (3 pairs), as they would in one tau over all those pairs (a plain mean of
    the conditions' taus gives a 3-run condition's tau, which takes only 7 values, the weight of
    a 5-run one). A condition with fewer than two runs, or with a constant measure or target,
    has d_c = 0 and adds nothing; NaN when no condition has a pair. With one condition it is
    that condition's tau-b.

    Returns {"tau", "conditions" (with d_c > 0), "pairs" (sum of n0_c over them)}.
    """
    a, b = _pair(measure, target)
    codes = np.asarray(codes)
    if codes.shape != a.shape:
        raise ValueError(f"need one condition per run, got {codes.size} for {a.size} runs")
    first, second, owners = _condition_pairs(codes)
    conditions = np.unique(codes).size
    sa, sb = np.sign(a[first] - a[second])[None, :], np.sign(b[first] - b[second])[None, :]
    score, denominator = _stratified_parts(sa, sb, owners, conditions)
    counted = denominator[0] > 0
    pairs = np.bincount(owners, minlength=conditions)
    return {"tau": float(_ratio(score, denominator)[0]), "conditions": int(counted.sum()),
            "pairs": int(pairs[counted].sum())}


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
    statistic is `stratified_tau`: every within-condition pair of runs counts once, whatever
    the size of its condition, and a difference between conditions (say, architectures that
    differ in both the measure and held-out Dice) cannot make it large, as it can the pooled tau.

    p-value: a two-sided permutation test that shuffles the target among the runs of each
    condition (`n_perm` seeded shuffles; p = (1 + #{|tau*| >= |tau|}) / (1 + n_perm)), all
    shuffles at once: the pairs' signs of every shuffle in one array. It assumes that, without
    an association, the runs of a condition are exchangeable: their seeds are its only
    difference. The smallest p it can give is 1 / (1 + n_perm): a family of m tests adjusted
    by Holm needs n_perm >= m / alpha for any of them to reach alpha. Interval: a percentile
    bootstrap resampling runs within each condition (`n_boot` resamples). Both from
    numpy.random.default_rng(seed).

    Returns {"tau", "p_value", "low", "high", "conditions" (with a tau), "pairs", "n_perm", "n_boot"}.
    """
    a, b = _pair(measure, target)
    codes = np.asarray(codes)
    if codes.shape != a.shape:
        raise ValueError(f"need one condition per run, got {codes.size} for {a.size} runs")
    for name, value in (("n_perm", n_perm), ("n_boot", n_boot)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    observed = stratified_tau(a, b, codes)
    result = {"tau": observed["tau"], "p_value": math.nan, "low": math.nan, "high": math.nan,
              "conditions": observed["conditions"], "pairs": observed["pairs"], "n_perm": n_perm, "n_boot": n_boot}
    if math.isnan(observed["tau"]):
        return result
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(codes == code) for code in np.unique(codes)]
    first, second, owners = _condition_pairs(codes)
    shuffled = np.broadcast_to(b, (n_perm, b.size)).copy()
    for g in groups:
        shuffled[:, g] = rng.permuted(shuffled[:, g], axis=1)
    sa = np.sign(a[first] - a[second])[None, :]
    null = np.empty(n_perm)
    chunk = max(1, 4_000_000 // max(first.size, 1))
    for start in range(0, n_perm, chunk):
        rows = shuffled[start : start + chunk]
        sb = np.sign(rows[:, first] - rows[:, second])
        null[start : start + chunk] = _ratio(*_stratified_parts(np.broadcast_to(sa, sb.shape), sb, owners,
                                                                 len(groups)))
    null = null[np.isfinite(null)]
    result["p_value"] = float((1 + np.sum(np.abs(null) >= abs(observed["tau"]) - 1e-12)) / (1 + null.size))
    # resampled runs keep their condition: each resample's tau is a within-condition one too
    score, denominator = np.zeros(n_boot), np.zeros(n_boot)
    for g in groups:
        if len(g) < 2:
            continue
        s, d = _resampled_parts(a[g], b[g], rng.integers(0, len(g), size=(n_boot, len(g))))
        score += s
        denominator += d
    boot = _ratio(score[:, None], denominator[:, None])
    boot = boot[np.isfinite(boot)]
    if boot.size:
        low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
        result.update(low=float(low), high=float(high))
    return result
