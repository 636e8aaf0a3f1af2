"""How many runs would decide a comparison: power of each test the findings use, at a given n.

A comparison is decided when its difference test or its equivalence test (TOST) passes; the
runs it needs are the fewest n per group (per level, for a trend) at which one of the two
reaches the configured power, taking the observed effect and spread as the truth, at a level
alpha' (the findings pass alpha / m for a family of m tests: Holm's strictest threshold, so the
n is enough whatever the other tests show). The runs a part needs are the most any stratum of
its primary measure needs: a part is decided only when every stratum is.

    means   Welch's t-test: the noncentral t (statsmodels `TTestIndPower`) of the standardised
            effect, with the Welch-Satterthwaite degrees of freedom the observed variances give
            at n (`welch_df`); TOST: two one-sided Welch tests, power
                P(-delta + t_c se < d < delta - t_c se)
                  = F((delta - e) / se - t_c) + F((delta + e) / se - t_c) - 1
            with se = sqrt((var_a + var_b) / n), t_c the 1 - alpha' quantile and F the central t
            of Welch's degrees of freedom (the standard error taken as known, the usual
            approximation; checked against simulated TOSTs in the tests)
    trend   the OLS slope's t-test with n runs at each of the k levels: se = sigma / sqrt(n S),
            S = sum over levels of (level - mean level)^2, k n - 2 degrees of freedom, noncentral
            t; its TOST as above on the slope against +-delta / (highest - lowest level)
    rate    exact: the sum over every outcome (k_a, k_b) of two binomials of n of the chance of
            that outcome where Fisher's test (or the Agresti-Caffo TOST) gives p < alpha'
            (`fisher_p_values`, `tost_rate_p_values` give every outcome's p at once)

MAX_SEEDS caps every search ("more than" that many); a power function that never reaches the
target (an effect of 0 for a difference test) gives inf.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import scipy.integrate
import scipy.stats
from statsmodels.stats.power import NormalIndPower, TTestIndPower

MAX_SEEDS = 10_000
# Rates: exact power sums over (n + 1)^2 outcomes; beyond this many runs per group the plan says "more than".
MAX_RATE_SEEDS = 400


def smallest_n(enough: Callable[[int], bool], low: int = 2, cap: int = MAX_SEEDS) -> float:
    """The smallest whole n >= low with enough(n), for a condition that holds from some n on:
    doubling, then bisection. inf if not even `cap` is enough."""
    if enough(low):
        return float(low)
    high = max(2 * low, low + 1)
    while not enough(high):
        if high >= cap:
            return math.inf
        low, high = high, min(2 * high, cap)
    while high - low > 1:  # enough(high) and not enough(low)
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return float(high)


def welch_df(n: int, var_a: float, var_b: float) -> float:
    """Welch-Satterthwaite degrees of freedom of two groups of n runs with variances var_a and
    var_b: (n - 1)(var_a + var_b)^2 / (var_a^2 + var_b^2), from 2n - 2 (equal spreads) down to
    n - 1 (one group without spread)."""
    return (n - 1) * (var_a + var_b) ** 2 / (var_a**2 + var_b**2)


def welch_power(effect_size: float, n: int, alpha: float, variances: tuple | None = None) -> float:
    """Power of the two-sided two-sample t-test at n per group for a standardised effect
    (statsmodels `TTestIndPower`), with Welch's degrees of freedom where `variances` are given;
    the normal approximation where the noncentral t is not computable (large n)."""
    extra = {}
    if variances is not None and all(math.isfinite(v) for v in variances) and sum(variances) > 0:
        extra["df"] = welch_df(n, *variances)
    value = float(TTestIndPower().power(effect_size=abs(effect_size), nobs1=n, alpha=alpha, ratio=1.0, **extra))
    if math.isnan(value):
        value = float(NormalIndPower().power(effect_size=abs(effect_size), nobs1=n, alpha=alpha, ratio=1.0))
    return value


def seeds_for_power(effect_size: float, alpha: float, power: float, variances: tuple | None = None) -> float:
    """Runs per group for the two-sample t-test to detect a standardised effect `effect_size`
    with `power` at two-sided level `alpha`; `variances` (var_a, var_b): Welch's test (its
    degrees of freedom at n from them), None: the pooled test (2n - 2). inf for an effect of 0
    or beyond MAX_SEEDS, NaN where undefined."""
    if not math.isfinite(effect_size):
        return math.nan
    if abs(effect_size) < 1e-12:
        return math.inf
    return smallest_n(lambda n: welch_power(effect_size, n, alpha, variances) >= power)


def tost_power(effect: float, se: float, df: float, margin: float, alpha: float) -> float:
    """Power of two one-sided t-tests at level alpha that an effect lies within +-margin, for a
    true effect `effect` whose estimate d ~ N(effect, se^2) comes with an estimated standard
    error s, s^2 ~ se^2 chi^2_df / df independent of d (exact for the pooled t-test, Owen 1965;
    Welch's test with its Satterthwaite degrees of freedom):

        power = E_u [ Phi((margin - effect) / se - t_c u) - Phi((-margin - effect) / se + t_c u) ]^+,

    u = s / se, t_c the 1 - alpha quantile of t_df, by quadrature over u; positive only for
    u < margin / (t_c se). NaN where undefined."""
    if not (se > 0 and margin > 0 and df > 0):
        return math.nan
    critical = scipy.stats.t.ppf(1 - alpha, df)
    top = margin / (critical * se)

    def integrand(u):
        inside = (scipy.stats.norm.cdf((margin - effect) / se - critical * u)
                  - scipy.stats.norm.cdf((-margin - effect) / se + critical * u))
        return max(0.0, inside) * 2 * u * df * scipy.stats.chi2.pdf(df * u * u, df)

    value, _ = scipy.integrate.quad(integrand, 0.0, top, limit=200)
    return min(1.0, max(0.0, float(value)))


def seeds_to_decide_means(effect: float, standardised: float, var_a: float, var_b: float, margin: float,
                          alpha: float, power: float) -> tuple[float, float]:
    """(runs per group for Welch's test to find the observed effect, runs per group for the TOST
    to show it within +-margin), each with `power` at level alpha; NaN where undefined."""
    if not (math.isfinite(var_a) and math.isfinite(var_b)) or var_a + var_b <= 0:
        return math.nan, math.nan
    difference = seeds_for_power(standardised, alpha, power, (var_a, var_b))
    if not (math.isfinite(margin) and margin > 0):
        return difference, math.nan

    def equivalent(n: int) -> bool:
        return tost_power(effect, math.sqrt((var_a + var_b) / n), welch_df(n, var_a, var_b), margin, alpha) >= power

    return difference, (math.inf if abs(effect) >= margin else smallest_n(equivalent))


def slope_power(slope: float, sigma: float, levels: np.ndarray, n: int, alpha: float) -> float:
    """Power of the two-sided t-test of an OLS slope with n runs at each of `levels`: noncentral t
    with k n - 2 degrees of freedom and noncentrality slope / (sigma / sqrt(n S))."""
    levels = np.asarray(levels, dtype=np.float64)
    spread = float(np.sum((levels - levels.mean()) ** 2))
    df = n * levels.size - 2
    if not (sigma > 0 and spread > 0 and df > 0):
        return math.nan
    noncentrality = abs(slope) / (sigma / math.sqrt(n * spread))
    critical = scipy.stats.t.ppf(1 - alpha / 2, df)
    return float(scipy.stats.nct.sf(critical, df, noncentrality) + scipy.stats.nct.cdf(-critical, df, noncentrality))


def seeds_to_decide_trend(slope: float, sigma: float, levels, margin: float, alpha: float,
                          power: float) -> tuple[float, float]:
    """(runs per level for the slope's t-test to find the observed slope, runs per level for its
    TOST to show the change over the levels' range within +-margin)."""
    levels = np.asarray(levels, dtype=np.float64)
    spread = float(np.sum((levels - levels.mean()) ** 2))
    if not (math.isfinite(slope) and sigma > 0 and spread > 0 and levels.size >= 2):
        return math.nan, math.nan
    difference = math.inf if abs(slope) < 1e-15 else smallest_n(
        lambda n: slope_power(slope, sigma, levels, n, alpha) >= power, low=max(2, math.ceil(3 / levels.size)))
    width = float(levels.max() - levels.min())
    if not (math.isfinite(margin) and margin > 0) or abs(slope) * width >= margin:
        return difference, (math.nan if not (math.isfinite(margin) and margin > 0) else math.inf)

    def equivalent(n: int) -> bool:
        se = sigma / math.sqrt(n * spread)
        return tost_power(slope, se, n * levels.size - 2, margin / width, alpha) >= power

    return difference, smallest_n(equivalent, low=max(2, math.ceil(3 / levels.size)))


# --- rates --------------------------------------------------------------------------------------


def fisher_p_values(n_a: int, n_b: int) -> np.ndarray:
    """Fisher's exact two-sided p-value of every outcome: p[k_a, k_b] for k_a of n_a failures
    against k_b of n_b, at once. Given k = k_a + k_b, k_a is hypergeometric; the two-sided p sums
    the probabilities of the k_a no more likely than the observed (relative tolerance 1e-7 for
    ties, as SciPy's `fisher_exact` does)."""
    p = np.ones((n_a + 1, n_b + 1))
    for total in range(n_a + n_b + 1):
        k_a = np.arange(max(0, total - n_b), min(n_a, total) + 1)
        pmf = scipy.stats.hypergeom.pmf(k_a, n_a + n_b, n_a, total)
        at_most = pmf[None, :] <= pmf[:, None] * (1 + 1e-7)
        p[k_a, total - k_a] = np.minimum(1.0, (at_most * pmf[None, :]).sum(axis=1))
    return p


def tost_rate_p_values(n_a: int, n_b: int, margin: float) -> np.ndarray:
    """The Agresti-Caffo TOST p-value that rate b - rate a lies within +-margin (statsmodels
    `tost_proportions_2indep`, method agresti-caffo), of every outcome p[k_a, k_b] at once: one
    failure and one success added to each group, p~ = (k + 1) / (n + 2), d = p~_b - p~_a,
    se^2 = p~_a (1 - p~_a) / (n_a + 2) + p~_b (1 - p~_b) / (n_b + 2), and
    p = max(1 - Phi((d + margin) / se), Phi((d - margin) / se))."""
    pa = (np.arange(n_a + 1)[:, None] + 1) / (n_a + 2)
    pb = (np.arange(n_b + 1)[None, :] + 1) / (n_b + 2)
    se = np.sqrt(pa * (1 - pa) / (n_a + 2) + pb * (1 - pb) / (n_b + 2))
    d = pb - pa
    return np.maximum(scipy.stats.norm.sf((d + margin) / se), scipy.stats.norm.cdf((d - margin) / se))


def smallest_p(n_a: int, n_b: int) -> float:
    """The smallest p-value Fisher's exact test can give at these group sizes (over every
    outcome): what decides whether a rate can be significant at all."""
    if n_a < 1 or n_b < 1:
        return math.nan
    return float(fisher_p_values(n_a, n_b).min())


def rate_power(p_a: float, p_b: float, n: int, alpha: float, margin: float | None = None) -> float:
    """Exact power at n runs per group, true rates p_a and p_b: of Fisher's test (margin None) or
    of the Agresti-Caffo TOST against +-margin, at level alpha."""
    chance_a = scipy.stats.binom.pmf(np.arange(n + 1), n, p_a)
    chance_b = scipy.stats.binom.pmf(np.arange(n + 1), n, p_b)
    p = fisher_p_values(n, n) if margin is None else tost_rate_p_values(n, n, margin)
    return float(chance_a @ (p < alpha) @ chance_b)


def seeds_to_decide_rates(p_a: float, p_b: float, margin: float, alpha: float, power: float) -> tuple[float, float]:
    """(runs per group for Fisher's test to find rates p_a against p_b, runs per group for the
    TOST to show them within +-margin), by exact power (`rate_power`), capped at MAX_RATE_SEEDS.
    Fisher's power is not monotone in n (a sawtooth of a few percent): the search takes the first
    n of its doubling and bisection that reaches `power`."""
    if not (math.isfinite(p_a) and math.isfinite(p_b)):
        return math.nan, math.nan
    difference = math.inf if p_a == p_b else smallest_n(
        lambda n: rate_power(p_a, p_b, n, alpha) >= power, cap=MAX_RATE_SEEDS)
    if not (math.isfinite(margin) and margin > 0):
        return difference, math.nan
    equivalent = math.inf if abs(p_b - p_a) >= margin else smallest_n(
        lambda n: rate_power(p_a, p_b, n, alpha, margin) >= power, cap=MAX_RATE_SEEDS)
    return difference, equivalent
