"""What the runs say about the poster's claims: a verdict per part of each claim, each from tests.

The poster drew four conclusions from pictures of landscapes. Each is a conjunction of parts;
each part becomes comparisons between groups of runs that differ in one factor, read from the
per-run tables (`results/tables/landscape_{study}.csv`), on measures that do not move under the
networks' rescaling symmetries (filter-normalised surface metrics, the scale-normalised
Hessian, the training's stability numbers; never raw curvature):

    batchnorm  "Batch norm gives normal behaviour", within the `seeds` study, per optimiser:
               smoother (lower roughness), more convex (lower relative |lambda_min/lambda_max|),
               more stable training (smaller largest rise, lower step volatility, fewer
               unstable or diverged runs)
    momentum   "Momentum makes SGD less stable", within the `momentum` study, per architecture:
               less stable training (larger rises, higher volatility, more unstable or diverged
               runs), sharper minima (higher relative lambda_max), rougher minima
    noise      "More input noise gives rougher landscapes", within the `noise` study, per
               architecture: roughness rises with the noise level
    skips      "Skip connections change the landscape", within the `skips` study, per
               normalisation, concatenated or added skips against none: roughness, curvature
               (relative lambda_max) and training stability differ, in either direction

Each comparison ends in one of:

    supports / contradicts   different: the difference test's Holm-adjusted p < alpha, with
                             (or against) the claimed sign ("different" claims: either sign)
    equivalent               no effect: the equivalence test's Holm-adjusted p < alpha, i.e. the
                             difference lies within +-delta, the smallest effect of interest
    inconclusive             neither, at this number of runs: `seeds_needed` says how many runs
                             per group would detect the observed effect with the configured
                             power, `seeds_needed_margin` how many would detect an effect of delta
    too few runs             a group has fewer than `min_runs` runs with a value

Tests. Means: Welch's t-test (two-sided); equivalence by two one-sided Welch tests (TOST,
statsmodels `ttost_ind`) against +-delta; power from the noncentral t of Welch's test at equal
group sizes (statsmodels `TTestIndPower` with the Welch-Satterthwaite degrees of freedom that
the observed variances give at that n: with very unequal spreads Welch's test has far fewer
than 2n - 2) and the standardised effect (Hedges' g, or delta over the pooled standard
deviation). Rates of unstable or diverged runs: Fisher's exact test, TOST for two
independent proportions (statsmodels `tost_proportions_2indep`, Agresti-Caffo), a Newcombe
interval of the difference, power from Cohen's h (statsmodels
`NormalIndPower`). Trends: Kendall's tau-b over every run and level; its equivalence test and
power are those of the two extreme levels' means. `delta` per metric: `absolute` margins where
configured, otherwise `relative` x |mean of the reference group| (the group without the
factor: no batch norm, no momentum, the lowest noise level, no skips).

Families. The difference tests' p-values within a claim are Holm-adjusted together, and so are
its equivalence tests' (each a family); Holm controls the family-wise error rate, the chance of
any false "different" (or "equivalent") verdict in the claim, at alpha. The power calculation
uses alpha / m for a family of m tests (the strictest of Holm's thresholds), so the seeds it
asks for are enough whatever the other tests show.

Parts and claims. A part is
    supported           every stratum (e.g. each optimiser) has a supporting comparison, none contradicts
    partly supported    some comparison supports, none contradicts, not in every stratum
    contradicted        some comparison contradicts (significant against the claimed sign)
    no effect           every comparison is equivalent within +-delta
    inconclusive at this n   otherwise
and a claim is contradicted when any part is, supported when every part is, partly supported
when some part is (partly) supported and none is contradicted, "no effect" when every part is,
and inconclusive at this n otherwise (`PART_RULE`, `CLAIM_RULE`, stated on the front page).

Landscape metrics are compared over `finished` runs only (a diverged or unstable run has no
trained minimum to speak of); stability numbers over every run that has them, and the rate of
unstable or diverged runs over every run.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_effectsize,
    tost_proportions_2indep,
)
from statsmodels.stats.weightstats import ttost_ind

from unetscape.atomic import atomic_path
from unetscape.training.outcome_words import no_finished_run


@dataclass(frozen=True)
class Comparison:
    metric: str  # column of the runs table, or "unstable_rate": the rate of unstable or diverged runs
    factor: str  # the column whose two levels are compared (or, for a trend, ordered)
    a: object | None  # level of the reference group (None for a trend)
    b: object | None  # level of the other group
    within: tuple[str, ...]  # separate comparisons (strata) for each value of these columns
    direction: str  # "greater": b > a claimed, "less": b < a, "different": either
    kind: str = "means"  # "means" (Welch), "rate" (Fisher), "trend" (Kendall)
    runs: str = "finished"  # "finished": landscape numbers; "all": every run with a value


@dataclass(frozen=True)
class Part:
    key: str
    text: str
    comparisons: tuple[Comparison, ...]


@dataclass(frozen=True)
class Claim:
    key: str
    text: str
    study: str
    parts: tuple[Part, ...]


def _stability(factor, a, b, within, direction) -> tuple[Comparison, ...]:
    return (
        Comparison("largest_rise", factor, a, b, within, direction, runs="all"),
        Comparison("step_volatility", factor, a, b, within, direction, runs="all"),
        Comparison("unstable_rate", factor, a, b, within, direction, "rate", runs="all"),
    )


CLAIMS = (
    Claim(
        "batchnorm",
        "Batch norm gives normal behaviour",
        "seeds",
        (
            Part("smoother", "smoother landscapes (lower roughness)",
                 (Comparison("roughness", "norm", "none", "batch", ("optimizer",), "less"),)),
            Part("more_convex", "more convex minima (lower non-convexity of the scale-normalised Hessian)",
                 (Comparison("relative_nonconvexity", "norm", "none", "batch", ("optimizer",), "less"),)),
            Part("more_stable", "more stable training (smaller rises, less volatile, fewer unstable runs)",
                 _stability("norm", "none", "batch", ("optimizer",), "less")),
        ),
    ),
    Claim(
        "momentum",
        "Momentum makes SGD less stable",
        "momentum",
        (
            Part("less_stable", "less stable training (larger rises, more volatile, more unstable runs)",
                 _stability("optimizer", "sgd", "sgd_momentum", ("arch",), "greater")),
            Part("sharper", "sharper minima (higher relative lambda_max)",
                 (Comparison("relative_lambda_max", "optimizer", "sgd", "sgd_momentum", ("arch",), "greater"),)),
            Part("rougher", "rougher minima (higher roughness)",
                 (Comparison("roughness", "optimizer", "sgd", "sgd_momentum", ("arch",), "greater"),)),
        ),
    ),
    Claim(
        "noise",
        "More input noise gives rougher landscapes",
        "noise",
        (Part("rougher", "roughness rises with the noise level",
              (Comparison("roughness", "noise", None, None, ("arch",), "greater", "trend"),)),),
    ),
    Claim(
        "skips",
        "Skip connections change the landscape",
        "skips",
        (
            Part("roughness", "they change its roughness",
                 tuple(Comparison("roughness", "skip", "none", s, ("norm",), "different") for s in ("concat", "add"))),
            Part("curvature", "they change the curvature of the minimum (relative lambda_max)",
                 tuple(Comparison("relative_lambda_max", "skip", "none", s, ("norm",), "different")
                       for s in ("concat", "add"))),
            Part("stability", "they change the stability of training",
                 tuple(c for s in ("concat", "add") for c in _stability("skip", "none", s, ("norm",), "different"))),
        ),
    ),
)

# Smallest effects of interest (+-delta) and power, unless the config says otherwise
# (`metrics.equivalence`, `metrics.power`).
DEFAULT_EQUIVALENCE = {
    "relative": 0.25,
    # in the metric's own units where a relative margin means little: a count-like or rate
    # metric whose reference mean can be 0
    "absolute": {"unstable_rate": 0.25, "largest_rise": 0.02},
}
DEFAULT_POWER = 0.8
# Cap of the seeds the power calculation reports (an effect near 0 needs "infinitely" many).
MAX_SEEDS = 10_000

PART_RULE = (
    "A part is supported when every stratum has a comparison that supports it and none contradicts it; "
    "partly supported when some comparison supports it and none contradicts it; contradicted when a "
    "comparison is significant against it; no effect when every comparison is equivalent within "
    "+-delta; inconclusive at this n otherwise."
)
CLAIM_RULE = (
    "A claim is contradicted when any of its parts is; supported only when every part is; partly "
    "supported when some part is (partly) supported and none is contradicted; no effect when every "
    "part shows no effect; inconclusive at this n otherwise."
)

COLUMNS = [
    "claim", "claim_text", "claim_verdict", "part", "part_text", "part_verdict", "study", "metric", "runs",
    "test", "within", "group_a", "group_b", "n_a", "n_b", "mean_a", "mean_b", "effect", "effect_ci_low",
    "effect_ci_high", "standardised_effect", "statistic", "p_value", "p_holm", "claimed", "equivalence_margin",
    "p_equivalence", "p_equivalence_holm", "decision", "verdict", "power", "alpha_family", "seeds_needed",
    "seeds_needed_margin", "source",
]
CLAIM_COLUMNS = [
    "claim", "claim_text", "claim_verdict", "part", "part_text", "part_verdict", "comparisons", "supports",
    "contradicts", "equivalent", "inconclusive", "too_few", "metric", "within", "group_a", "group_b", "n_a", "n_b",
    "mean_a", "mean_b", "effect", "effect_ci_low", "effect_ci_high", "p_holm", "decision", "seeds_needed",
    "seeds_needed_margin",
]


def _finite(values) -> np.ndarray:
    values = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    return values[np.isfinite(values)]


def hedges_g(a: np.ndarray, b: np.ndarray) -> float:
    """(mean b - mean a) / pooled sd, with the small-sample correction 1 - 3 / (4 (n_a + n_b) - 9)."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return math.nan
    pooled = _pooled_sd(a, b)
    if not pooled > 0:
        return math.nan
    return (b.mean() - a.mean()) / pooled * (1 - 3 / (4 * (na + nb) - 9))


def _pooled_sd(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return math.nan
    return math.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))


def bootstrap_difference(a: np.ndarray, b: np.ndarray, level: float, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile interval of mean(b) - mean(a), resampling each group with replacement."""
    if len(a) == 0 or len(b) == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    diffs = b[rng.integers(0, len(b), (n_boot, len(b)))].mean(1) - a[rng.integers(0, len(a), (n_boot, len(a)))].mean(1)
    low, high = np.quantile(diffs, [0.5 * (1 - level), 0.5 * (1 + level)])
    return float(low), float(high)


def welch_tost(a: np.ndarray, b: np.ndarray, margin: float) -> float:
    """p-value of two one-sided Welch tests that mean(b) - mean(a) lies within (-margin, margin)
    (statsmodels `ttost_ind`); NaN where it is undefined (a group of fewer than two, no spread,
    no positive margin)."""
    if len(a) < 2 or len(b) < 2 or not margin > 0 or not (a.var(ddof=1) > 0 or b.var(ddof=1) > 0):
        return math.nan
    p_value, _, _ = ttost_ind(b, a, -margin, margin, usevar="unequal")
    return float(p_value)


def _runs_per_group(analysis, effect_size: float, alpha: float, power: float, df=None) -> float:
    """The smallest whole n per group (>= 2) at which `analysis` (a statsmodels power class)
    reaches `power`: doubling, then bisection on its power function (power grows with n;
    statsmodels' own root finder fails for large effects at strict alphas). `df(n)`: the test's
    degrees of freedom at n per group (None: the class's own). Where the noncentral t's power is
    not computable (NaN, at large n), the normal approximation's is used, which is accurate
    there. MAX_SEEDS if not even that many do."""
    def enough(n: int) -> bool:
        extra = {} if df is None else {"df": df(n)}
        value = float(analysis.power(effect_size=effect_size, nobs1=n, alpha=alpha, ratio=1.0, **extra))
        if math.isnan(value):
            value = float(NormalIndPower().power(effect_size=effect_size, nobs1=n, alpha=alpha, ratio=1.0))
        return value >= power

    low = 2
    if enough(low):
        return float(low)
    high = 4
    while not enough(high):
        if high >= MAX_SEEDS:
            return float(MAX_SEEDS)
        low, high = high, min(2 * high, MAX_SEEDS)
    while high - low > 1:  # enough(high) and not enough(low)
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return float(high)


def welch_df(n: int, var_a: float, var_b: float) -> float:
    """Welch-Satterthwaite degrees of freedom of two groups of n runs with variances var_a and
    var_b: (n - 1)(var_a + var_b)^2 / (var_a^2 + var_b^2), from 2n - 2 (equal spreads) down to
    n - 1 (one group without spread)."""
    return (n - 1) * (var_a + var_b) ** 2 / (var_a**2 + var_b**2)


def seeds_for_power(effect_size: float, alpha: float, power: float, variances: tuple | None = None) -> float:
    """Runs per group for a two-sample t-test to detect a standardised effect `effect_size`
    with `power` at two-sided level `alpha` (noncentral t, statsmodels `TTestIndPower`), rounded
    up; inf for an effect of 0, NaN where undefined, capped at MAX_SEEDS. `variances` (var_a,
    var_b): Welch's test, whose degrees of freedom at n follow from them (`welch_df`); None: the
    pooled-variance test (2n - 2)."""
    if not math.isfinite(effect_size):
        return math.nan
    if abs(effect_size) < 1e-12:
        return math.inf
    df = None
    if variances is not None and all(math.isfinite(v) for v in variances) and sum(variances) > 0:
        df = lambda n: welch_df(n, *variances)  # noqa: E731
    return _runs_per_group(TTestIndPower(), abs(effect_size), alpha, power, df)


def seeds_for_rates(p_a: float, p_b: float, alpha: float, power: float) -> float:
    """Runs per group for a two-proportion test to detect rates p_a vs p_b (Cohen's h, normal
    approximation: statsmodels `NormalIndPower`), rounded up; inf for equal rates."""
    if not (math.isfinite(p_a) and math.isfinite(p_b)):
        return math.nan
    p_a, p_b = min(max(p_a, 0.0), 1.0), min(max(p_b, 0.0), 1.0)
    h = float(proportion_effectsize(p_b, p_a))
    if abs(h) < 1e-12:
        return math.inf
    return _runs_per_group(NormalIndPower(), abs(h), alpha, power)


def equivalence_margin(metric: str, reference_mean: float, equivalence: dict) -> float:
    """+-delta of a metric: its absolute margin if configured, else relative x |reference mean|."""
    absolute = equivalence.get("absolute") or {}
    if metric in absolute:
        return float(absolute[metric])
    return float(equivalence["relative"]) * abs(reference_mean) if math.isfinite(reference_mean) else math.nan


def _means(a, b, metric: str, settings: dict) -> dict:
    a, b = _finite(a), _finite(b)
    out = {"n_a": len(a), "n_b": len(b), "mean_a": a.mean() if len(a) else math.nan,
           "mean_b": b.mean() if len(b) else math.nan, "test": "Welch t-test"}
    out["effect"] = out["mean_b"] - out["mean_a"]
    out["effect_ci_low"], out["effect_ci_high"] = bootstrap_difference(
        a, b, settings["level"], settings["bootstrap"], settings["seed"]
    )
    out["standardised_effect"] = hedges_g(a, b)
    if min(len(a), len(b)) >= 2 and (a.var(ddof=1) > 0 or b.var(ddof=1) > 0):
        result = scipy.stats.ttest_ind(b, a, equal_var=False)
        out["statistic"], out["p_value"] = float(result.statistic), float(result.pvalue)
    else:
        out["statistic"] = out["p_value"] = math.nan
    out["equivalence_margin"] = margin = equivalence_margin(metric, out["mean_a"], settings["equivalence"])
    out["p_equivalence"] = welch_tost(a, b, margin)
    pooled = _pooled_sd(a, b)
    spreads = (a.var(ddof=1), b.var(ddof=1)) if min(len(a), len(b)) >= 2 else None
    out["_power"] = lambda alpha: (
        seeds_for_power(out["standardised_effect"], alpha, settings["power"], spreads),
        seeds_for_power(margin / pooled if pooled > 0 else math.nan, alpha, settings["power"], spreads),
    )
    return out


def _rates(a: pd.Series, b: pd.Series, metric: str, settings: dict) -> dict:
    ka, kb, na, nb = int(a.sum()), int(b.sum()), len(a), len(b)
    out = {"n_a": na, "n_b": nb, "mean_a": ka / na if na else math.nan, "mean_b": kb / nb if nb else math.nan,
           "test": "Fisher exact test", "standardised_effect": math.nan}
    out["effect"] = out["mean_b"] - out["mean_a"]
    out["equivalence_margin"] = margin = equivalence_margin(metric, out["mean_a"], settings["equivalence"])
    if na and nb:
        result = scipy.stats.fisher_exact([[kb, nb - kb], [ka, na - ka]])
        out["statistic"], out["p_value"] = float(result.statistic), float(result.pvalue)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            # statsmodels also computes ratios and odds ratios, undefined at 0 of n: not used here
            warnings.simplefilter("ignore", RuntimeWarning)
            # Newcombe's hybrid score interval of the difference, which stays within [-1, 1]
            low, high = confint_proportions_2indep(kb, nb, ka, na, method="newcomb", compare="diff",
                                                   alpha=1 - settings["level"])
            # Agresti-Caffo's adjusted Wald statistics, defined also for 0 of n (statsmodels' default)
            p_eq = tost_proportions_2indep(kb, nb, ka, na, -margin, margin, method="agresti-caffo",
                                           compare="diff")[0]
        out["effect_ci_low"], out["effect_ci_high"] = float(low), float(high)
        out["p_equivalence"] = float(p_eq) if margin > 0 else math.nan
    else:
        out["statistic"] = out["p_value"] = out["p_equivalence"] = math.nan
        out["effect_ci_low"] = out["effect_ci_high"] = math.nan
    pa, pb = out["mean_a"], out["mean_b"]
    out["_power"] = lambda alpha: (
        seeds_for_rates(pa, pb, alpha, settings["power"]),
        seeds_for_rates(pa, min(1.0, pa + margin) if pa + margin <= 1 else pa - margin, alpha, settings["power"]),
    )
    return out


def _trend(levels: pd.Series, values: pd.Series, metric: str, settings: dict) -> dict:
    keep = np.isfinite(pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64))
    levels, values = levels[keep].astype(float), values[keep].astype(float)
    lo, hi = (levels.min(), levels.max()) if len(levels) else (math.nan, math.nan)
    # equivalence, interval and power from the two extreme levels (a trend test has no delta)
    out = _means(values[levels == lo], values[levels == hi], metric, settings)
    out["test"] = "Kendall tau-b (trend over all levels)"
    if levels.nunique() >= 2 and values.nunique() >= 2:
        result = scipy.stats.kendalltau(levels, values)
        out["statistic"], out["p_value"] = float(result.statistic), float(result.pvalue)
    else:
        out["statistic"] = out["p_value"] = math.nan
    return out


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (statsmodels `multipletests`); NaN
    stays NaN and is not counted in the family."""
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(len(p), np.nan)
    finite = np.isfinite(p)
    if finite.any():
        adjusted[finite] = multipletests(p[finite], method="holm")[1]
    return adjusted.tolist()


def _groups(cmp: Comparison, group: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs a comparison uses: finished ones for landscape numbers, every run otherwise."""
    runs = group if cmp.runs == "all" else group[group["outcome"] == "finished"]
    return runs[runs[cmp.factor] == cmp.a], runs[runs[cmp.factor] == cmp.b]


def _comparisons(claim: Claim, table: pd.DataFrame, settings: dict, source: str) -> list[dict]:
    rows = []
    for part in claim.parts:
        for cmp in part.comparisons:
            if cmp.kind != "rate" and cmp.metric not in table.columns or cmp.factor not in table.columns:
                continue
            within = [c for c in cmp.within if c in table.columns]
            strata = table.groupby(within, sort=True) if within else [((), table)]
            for key, group in strata:
                key = key if isinstance(key, tuple) else (key,)
                label = ", ".join(f"{c}={v}" for c, v in zip(within, key))
                if cmp.kind == "trend":
                    runs = group if cmp.runs == "all" else group[group["outcome"] == "finished"]
                    result = _trend(runs[cmp.factor], runs[cmp.metric], cmp.metric, settings)
                    levels = sorted(runs[cmp.factor].unique())
                    names = (f"{cmp.factor}={levels[0]:g}", f"{cmp.factor}={levels[-1]:g}") if levels else ("", "")
                elif cmp.kind == "rate":
                    a, b = _groups(cmp, group)
                    failed = ("unstable", "diverged")
                    result = _rates(a["outcome"].isin(failed), b["outcome"].isin(failed), cmp.metric, settings)
                    names = (f"{cmp.factor}={cmp.a}", f"{cmp.factor}={cmp.b}")
                else:
                    a, b = _groups(cmp, group)
                    result = _means(a[cmp.metric], b[cmp.metric], cmp.metric, settings)
                    names = (f"{cmp.factor}={cmp.a}", f"{cmp.factor}={cmp.b}")
                if result["n_a"] == 0 and result["n_b"] == 0:
                    continue
                claimed = {"greater": "b > a", "less": "b < a", "different": "b != a"}[cmp.direction]
                if cmp.kind == "trend":
                    claimed = "rises with " + cmp.factor
                rows.append({"claim": claim.key, "claim_text": claim.text, "part": part.key, "part_text": part.text,
                             "study": claim.study, "metric": cmp.metric, "runs": cmp.runs, "within": label,
                             "group_a": names[0], "group_b": names[1], **result, "claimed": claimed,
                             "_direction": cmp.direction, "_kind": cmp.kind, "_stratum": label, "source": source})
    return rows


def _sign_ok(effect: float, direction: str) -> bool | None:
    """True if the effect has the claimed sign, False if the opposite, None for 'different'."""
    if direction == "different":
        return None
    return effect > 0 if direction == "greater" else effect < 0


def decide(row: dict, settings: dict) -> tuple[str, str]:
    """(decision, verdict) of one comparison from its adjusted p-values (see the module docstring)."""
    if min(row["n_a"], row["n_b"]) < settings["min_runs"]:
        return "too few runs", "too few runs"
    alpha = settings["alpha"]
    if math.isfinite(row["p_holm"]) and row["p_holm"] < alpha:
        sign = row["statistic"] if row["_kind"] == "trend" else row["effect"]
        ok = _sign_ok(sign, row["_direction"])
        return "different", "supports" if ok in (True, None) else "contradicts"
    if math.isfinite(row["p_equivalence_holm"]) and row["p_equivalence_holm"] < alpha:
        return "equivalent", "equivalent"
    return "inconclusive", "inconclusive"


def part_verdict(rows: Sequence[dict]) -> str:
    """A part's verdict from its comparisons' verdicts and strata (`PART_RULE`)."""
    verdicts = [r["verdict"] for r in rows]
    if not verdicts:
        return "not tested"
    if "contradicts" in verdicts:
        return "contradicted"
    if "supports" in verdicts:
        strata = {r["_stratum"] for r in rows}
        supported = {r["_stratum"] for r in rows if r["verdict"] == "supports"}
        return "supported" if supported == strata else "partly supported"
    if all(v == "equivalent" for v in verdicts):
        return "no effect"
    if all(v == "too few runs" for v in verdicts):
        return "too few runs"
    return "inconclusive at this n"


def claim_verdict(parts: Sequence[str]) -> str:
    """A claim's verdict from its parts' verdicts (`CLAIM_RULE`)."""
    if not parts:
        return "not tested"
    if "contradicted" in parts:
        return "contradicted"
    if all(p == "supported" for p in parts):
        return "supported"
    if any(p in ("supported", "partly supported") for p in parts):
        return "partly supported"
    if all(p == "no effect" for p in parts):
        return "no effect"
    return "inconclusive at this n"


def findings_table(tables: dict, settings: dict, claims: Sequence[Claim] = CLAIMS) -> pd.DataFrame:
    """One row per comparison of every claim whose study is in `tables` (study -> (runs table,
    source path)); `settings`: level, bootstrap, seed, min_runs, alpha, and optionally power and
    equivalence (defaults `DEFAULT_POWER`, `DEFAULT_EQUIVALENCE`). A claim whose study is not
    configured gets one row saying so."""
    settings = {"power": DEFAULT_POWER, "equivalence": DEFAULT_EQUIVALENCE, **settings}
    out = []
    for claim in claims:
        if claim.study not in tables:
            out.append({"claim": claim.key, "claim_text": claim.text, "claim_verdict": "not tested",
                        "study": claim.study, "verdict": f"study {claim.study!r} is not in the config"})
            continue
        table, source = tables[claim.study]
        rows = _comparisons(claim, table, settings, str(source))
        m = sum(math.isfinite(r["p_value"]) for r in rows)
        family_alpha = settings["alpha"] / max(m, 1)
        for row, p, p_eq in zip(rows, holm([r["p_value"] for r in rows]), holm([r["p_equivalence"] for r in rows])):
            row["p_holm"], row["p_equivalence_holm"] = p, p_eq
            row["decision"], row["verdict"] = decide(row, settings)
            row["power"], row["alpha_family"] = settings["power"], family_alpha
            needed, needed_margin = row.pop("_power")(family_alpha)
            undecided = row["decision"] in ("inconclusive", "too few runs")
            row["seeds_needed"] = needed if undecided else math.nan
            row["seeds_needed_margin"] = needed_margin if undecided else math.nan
        parts = {}
        for part in claim.parts:
            parts[part.key] = part_verdict([r for r in rows if r["part"] == part.key])
        verdict = claim_verdict([v for v in parts.values() if v != "not tested"])
        for row in rows:
            row["part_verdict"] = parts[row["part"]]
            row["claim_verdict"] = verdict
        # a part no group had a run for: one row that says why (when it is that none finished)
        outcomes = table["outcome"] if "outcome" in table.columns else []
        why = "" if "finished" in set(outcomes) else f" ({no_finished_run(outcomes)})"
        for part in claim.parts:
            if parts[part.key] == "not tested":
                rows.append({"claim": claim.key, "claim_text": claim.text, "claim_verdict": verdict,
                             "part": part.key, "part_text": part.text, "part_verdict": "not tested",
                             "study": claim.study, "verdict": f"no runs to compare{why}", "source": str(source)})
        out.extend(rows)
    frame = pd.DataFrame(out)
    return frame.reindex(columns=COLUMNS)


def claims_table(findings: pd.DataFrame, claims: Sequence[Claim] = CLAIMS) -> pd.DataFrame:
    """One row per part of each claim: its verdict, how its comparisons ended, and its headline
    comparison (the one with the smallest adjusted p-value) with the effect, interval and n;
    `seeds_needed` is the fewest runs per group that would decide one of its undecided
    comparisons (observed effect), `seeds_needed_margin` the same for an effect of delta. A part
    without any comparison (its study not configured, or no run to compare) is listed as not
    tested."""
    rows = []
    for claim in claims:
        of_claim = findings[findings["claim"] == claim.key]
        verdict = of_claim["claim_verdict"].iloc[0] if len(of_claim) else "not tested"
        for part in claim.parts:
            group = of_claim[of_claim["part"] == part.key]
            row = {"claim": claim.key, "claim_text": claim.text, "claim_verdict": verdict, "part": part.key,
                   "part_text": part.text,
                   "part_verdict": group["part_verdict"].iloc[0] if len(group) else "not tested"}
            row["comparisons"] = int(group["metric"].notna().sum())
            for name, kind in (("supports", "supports"), ("contradicts", "contradicts"), ("equivalent", "equivalent"),
                               ("inconclusive", "inconclusive"), ("too_few", "too few runs")):
                row[name] = int((group["verdict"] == kind).sum())
            group = group[group["metric"].notna()]
            if len(group):
                head = group.iloc[int(np.argmin(group["p_holm"].fillna(2.0).to_numpy()))]
                row.update({k: head[k] for k in ("metric", "within", "group_a", "group_b", "n_a", "n_b", "mean_a",
                                                 "mean_b", "effect", "effect_ci_low", "effect_ci_high", "p_holm",
                                                 "decision")})
                row["seeds_needed"] = group["seeds_needed"].min()
                row["seeds_needed_margin"] = group["seeds_needed_margin"].min()
            rows.append(row)
    return pd.DataFrame(rows).reindex(columns=CLAIM_COLUMNS)


def _number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    if isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1):
        return str(int(value))
    return f"{value:.{digits}g}"


def _seeds(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value) or value >= MAX_SEEDS:
        return f"more than {MAX_SEEDS:,}"
    return str(int(value))


def findings_rst(findings: pd.DataFrame, claims: pd.DataFrame, table_path: str, claims_path: str,
                 settings: dict) -> str:
    """The front page's verdicts as reStructuredText: the rule, then each claim with its parts."""
    alpha = settings["alpha"]
    lines = ["What the data say about the poster's claims", "-" * 44, "",
             f"Each claim is split into parts; each part is decided by tests over the runs (alpha = {alpha:g}, "
             "Holm-adjusted within each claim: the chance of any false verdict in a claim is at most alpha). "
             "A comparison is *different*, *equivalent* (within the smallest effect of interest, "
             "two one-sided tests) or *inconclusive at this n*. " + PART_RULE + " " + CLAIM_RULE, "",
             f"Details: ``{claims_path}`` (one row per part) and ``{table_path}`` (one row per comparison). "
             "Landscape numbers count finished runs only; stability numbers every run.", ""]
    for claim_key, claim in claims.groupby("claim", sort=False):
        first = claim.iloc[0]
        lines += [f"**{first['claim_text']}** — *{first['claim_verdict']}*", ""]
        note = findings[findings["claim"] == claim_key]["verdict"]
        if first["claim_verdict"] == "not tested" and len(note):
            lines += [f"- {note.iloc[0]}", ""]
            continue
        for _, row in claim.iterrows():
            text = f"- {row['part_text']}: **{row['part_verdict']}**"
            if row["part_verdict"] == "not tested":
                why = findings[(findings["claim"] == claim_key) & (findings["part"] == row["part"])]["verdict"]
                text += f" ({why.iloc[0] if len(why) else 'no runs to compare'})"
            if isinstance(row.get("metric"), str):
                text += (
                    f" ({row['metric']}, {row['within'] or 'all runs'}: {row['group_a']} {_number(row['mean_a'])} "
                    f"vs {row['group_b']} {_number(row['mean_b'])}, difference {_number(row['effect'])} "
                    f"[{_number(row['effect_ci_low'])}, {_number(row['effect_ci_high'])}], "
                    f"n = {_number(row['n_a'])} + {_number(row['n_b'])}, Holm p = {_number(row['p_holm'])})"
                )
            if row["part_verdict"] in ("inconclusive at this n", "too few runs"):
                if math.isnan(row["seeds_needed"]) and math.isnan(row["seeds_needed_margin"]):
                    text += "; the seeds needed cannot be estimated from fewer than two runs per group"
                else:
                    text += (f"; to decide it: {_seeds(row['seeds_needed'])} seeds per condition for the observed "
                             f"effect, {_seeds(row['seeds_needed_margin'])} for the smallest effect of interest")
            lines.append(text)
        lines.append("")
    return "\n".join(lines) + "\n"


def write_findings(findings: pd.DataFrame, csv_path: str | os.PathLike, rst_path: str | os.PathLike,
                   claims_path: str | os.PathLike, settings: dict) -> None:
    claims = claims_table(findings)
    with atomic_path(csv_path) as tmp:
        findings.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(claims_path) as tmp:
        claims.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(rst_path) as tmp:
        tmp.write_text(findings_rst(findings, claims, str(csv_path), str(claims_path), settings))
