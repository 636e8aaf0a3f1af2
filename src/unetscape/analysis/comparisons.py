"""One comparison of two groups of runs (or a trend over levels), by the kind of its measure.

Each function returns the numbers of one row of the findings table, with two callables the
findings call once the claim's family is known: `_interval(level)`, the effect's interval at
that level (the findings pass the Bonferroni level 1 - alpha / m), and `_seeds(alpha)`, the runs
(per group, per level, or per learning rate) that would decide it at that level
(`seeds_needed`).

    means          Welch's t-test of mean(b) - mean(a) (SciPy `ttest_ind`, equal_var=False);
                   TOST: two one-sided Welch tests against +-delta (statsmodels `ttost_ind`);
                   interval: Welch's (statsmodels `CompareMeans.tconfint_diff`, usevar
                   "unequal"), which excludes 0 exactly when Welch's p < 1 - level
    rate           share of failed runs, b - a: Fisher's exact test (SciPy `fisher_exact`); TOST
                   for two independent proportions (statsmodels `tost_proportions_2indep`,
                   Agresti-Caffo, its p-value); Newcombe's interval (statsmodels
                   `confint_proportions_2indep`); `p_smallest`: the smallest p Fisher's test
                   can give at these group sizes
    trend          OLS of the measure on the level (statsmodels `OLS`): the slope's t-test; the
                   effect is the change the line predicts over the levels' range, slope x
                   (highest - lowest level), in the measure's units, so +-delta applies to it;
                   TOST on that change with the slope's t (n - 2 degrees of freedom); interval:
                   the slope's t interval times the range
    dose_response  logistic regression of failed on log10(lr) and the factor
                   (`dose_response.dose_response_test`); effect: the factor's log odds ratio;
                   interval: profile likelihood; no equivalence test
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import scipy.stats
from statsmodels.regression.linear_model import OLS
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    tost_proportions_2indep,
)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttost_ind

from . import dose_response, seeds_needed

NO_INTERVAL = (math.nan, math.nan)


def finite(values) -> np.ndarray:
    values = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    return values[np.isfinite(values)]


def hedges_g(a: np.ndarray, b: np.ndarray) -> float:
    """(mean b - mean a) / pooled sd, with the small-sample correction 1 - 3 / (4 (n_a + n_b) - 9)."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return math.nan
    pooled = math.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    if not pooled > 0:
        return math.nan
    return (b.mean() - a.mean()) / pooled * (1 - 3 / (4 * (na + nb) - 9))


def welch_tost(a: np.ndarray, b: np.ndarray, margin: float) -> float:
    """p-value of two one-sided Welch tests that mean(b) - mean(a) lies within (-margin, margin)
    (statsmodels `ttost_ind`); NaN where it is undefined (a group of fewer than two, no spread,
    no positive margin)."""
    if len(a) < 2 or len(b) < 2 or not margin > 0 or not (a.var(ddof=1) > 0 or b.var(ddof=1) > 0):
        return math.nan
    p_value, _, _ = ttost_ind(b, a, -margin, margin, usevar="unequal")
    return float(p_value)


def welch_interval(a: np.ndarray, b: np.ndarray, level: float) -> tuple[float, float]:
    """Welch's interval of mean(b) - mean(a) at `level` (statsmodels `tconfint_diff`)."""
    if len(a) < 2 or len(b) < 2 or not (a.var(ddof=1) > 0 or b.var(ddof=1) > 0):
        return NO_INTERVAL
    low, high = CompareMeans(DescrStatsW(b), DescrStatsW(a)).tconfint_diff(alpha=1 - level, usevar="unequal")
    return float(low), float(high)


def means(a, b, margin: float, power: float) -> dict:
    a, b = finite(a), finite(b)
    out = {"test": "Welch t-test", "n_a": len(a), "n_b": len(b), "mean_a": a.mean() if len(a) else math.nan,
           "mean_b": b.mean() if len(b) else math.nan, "effect_is": "mean b - mean a"}
    out["effect"] = out["mean_b"] - out["mean_a"]
    out["standardised_effect"] = g = hedges_g(a, b)
    spread = min(len(a), len(b)) >= 2 and (a.var(ddof=1) > 0 or b.var(ddof=1) > 0)
    if spread:
        result = scipy.stats.ttest_ind(b, a, equal_var=False)
        out["statistic"], out["p_value"] = float(result.statistic), float(result.pvalue)
    else:
        out["statistic"] = out["p_value"] = math.nan
    out["equivalence_margin"] = margin
    out["p_equivalence"] = welch_tost(a, b, margin)
    variances = (a.var(ddof=1), b.var(ddof=1)) if min(len(a), len(b)) >= 2 else (math.nan, math.nan)
    out["_interval"] = lambda level: welch_interval(a, b, level)
    out["_seeds"] = lambda alpha: seeds_needed.seeds_to_decide_means(out["effect"], g, *variances, margin, alpha,
                                                                      power)
    return out


def rates(failed_a, failed_b, margin: float, power: float) -> dict:
    failed_a, failed_b = np.asarray(failed_a, dtype=bool), np.asarray(failed_b, dtype=bool)
    ka, kb, na, nb = int(failed_a.sum()), int(failed_b.sum()), failed_a.size, failed_b.size
    out = {"test": "Fisher exact test", "n_a": na, "n_b": nb, "mean_a": ka / na if na else math.nan,
           "mean_b": kb / nb if nb else math.nan, "effect_is": "share failed b - share failed a",
           "standardised_effect": math.nan, "equivalence_margin": margin,
           "p_smallest": seeds_needed.smallest_p(na, nb)}
    out["effect"] = out["mean_b"] - out["mean_a"]
    if na and nb:
        result = scipy.stats.fisher_exact([[kb, nb - kb], [ka, na - ka]])
        out["statistic"], out["p_value"] = float(result.statistic), float(result.pvalue)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            # statsmodels also computes ratios and odds ratios, undefined at 0 of n: not used here
            warnings.simplefilter("ignore", RuntimeWarning)
            tost = tost_proportions_2indep(kb, nb, ka, na, -margin, margin, method="agresti-caffo", compare="diff")
        out["p_equivalence"] = float(tost.pvalue) if margin > 0 else math.nan
    else:
        out["statistic"] = out["p_value"] = out["p_equivalence"] = math.nan

    def interval(level):
        if not (na and nb):
            return NO_INTERVAL
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = confint_proportions_2indep(kb, nb, ka, na, method="newcomb", compare="diff", alpha=1 - level)
        return float(low), float(high)

    out["_interval"] = interval
    out["_seeds"] = lambda alpha: seeds_needed.seeds_to_decide_rates(out["mean_a"], out["mean_b"], margin, alpha,
                                                                     power)
    return out


def trend(levels, values, margin: float, power: float) -> dict:
    levels = pd.to_numeric(pd.Series(levels), errors="coerce").to_numpy(dtype=np.float64)
    values = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    keep = np.isfinite(levels) & np.isfinite(values)
    levels, values = levels[keep], values[keep]
    distinct = np.unique(levels)
    low_level, high_level = (distinct[0], distinct[-1]) if distinct.size else (math.nan, math.nan)
    at_low, at_high = values[levels == low_level], values[levels == high_level]
    width = float(high_level - low_level) if distinct.size else math.nan
    out = {"test": "OLS slope t-test (trend over all levels)", "n_a": at_low.size, "n_b": at_high.size,
           "mean_a": at_low.mean() if at_low.size else math.nan, "mean_b": at_high.mean() if at_high.size else math.nan,
           "effect_is": "slope x (highest - lowest level)", "standardised_effect": math.nan,
           "equivalence_margin": margin, "statistic": math.nan, "p_value": math.nan, "p_equivalence": math.nan,
           "effect": math.nan}
    fitted = None
    if distinct.size >= 2 and levels.size >= 3:
        fitted = OLS(values, np.column_stack([np.ones_like(levels), levels])).fit()
    if fitted is None or not fitted.scale > 0:
        out["_interval"] = lambda level: NO_INTERVAL
        out["_seeds"] = lambda alpha: (math.nan, math.nan)
        return out
    slope, se, df = float(fitted.params[1]), float(fitted.bse[1]), float(fitted.df_resid)
    out["effect"] = slope * width
    out["statistic"], out["p_value"] = float(fitted.tvalues[1]), float(fitted.pvalues[1])
    if margin > 0:
        change, error = slope * width, se * width
        out["p_equivalence"] = float(max(scipy.stats.t.sf((change + margin) / error, df),
                                         scipy.stats.t.cdf((change - margin) / error, df)))

    def interval(level):
        low, high = fitted.conf_int(alpha=1 - level)[1]
        return float(low * width), float(high * width)

    sigma = math.sqrt(float(fitted.scale))
    out["_interval"] = interval
    out["_seeds"] = lambda alpha: seeds_needed.seeds_to_decide_trend(slope, sigma, distinct, margin, alpha, power)
    return out


def dose(lr, in_b, failed, power: float, seed: int, simulations: int) -> dict:
    in_b = np.asarray(in_b, dtype=bool)
    failed = np.asarray(failed, dtype=bool)
    na, nb = int((~in_b).sum()), int(in_b.sum())
    out = {"test": "logistic regression, likelihood ratio", "n_a": na, "n_b": nb,
           "mean_a": failed[~in_b].mean() if na else math.nan, "mean_b": failed[in_b].mean() if nb else math.nan,
           "effect_is": "log odds ratio of failing, b vs a, at the same lr", "standardised_effect": math.nan,
           "equivalence_margin": math.nan, "p_equivalence": math.nan, "statistic": math.nan, "p_value": math.nan,
           "effect": math.nan, "_interval": lambda level: NO_INTERVAL, "_seeds": lambda alpha: (math.nan, math.nan)}
    if not (na and nb):
        return out
    if np.unique(np.asarray(lr, dtype=np.float64)).size < 2:
        out["note"] = "a single learning rate: failure cannot be related to it"
        return out
    cells = dose_response.cells_of(lr, in_b, failed)
    result = dose_response.dose_response_test(cells)
    beta = result["beta"]
    out.update(test=f"logistic regression, {result['method']} test", effect=float(beta[2]),
               statistic=result["statistic"], p_value=result["p_value"], separated=result["separated"],
               critical_lr_a=dose_response.critical_lr(beta, 0, cells),
               critical_lr_b=dose_response.critical_lr(beta, 1, cells),
               half_failed_lr_a=dose_response.half_failed_lr(cells, 0),
               half_failed_lr_b=dose_response.half_failed_lr(cells, 1))
    out["_interval"] = lambda level: dose_response.profile_interval(cells, result["method"], float(beta[2]),
                                                                    result["log_likelihood"], level)
    out["_seeds"] = lambda alpha: (dose_response.seeds_per_lr(cells, beta, alpha, power, simulations, seed), math.nan)
    return out
