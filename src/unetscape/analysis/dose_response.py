"""Does one optimiser fail at smaller learning rates than another? A learning-rate sweep, tested.

The data: runs of two groups (factor levels a and b, e.g. sgd and sgd_momentum) at several
learning rates, each run failed or not (outcome unstable, diverged or collapsed). The model,
with x = log10(lr) and g = 1 for group b, 0 for group a:

    logit P(failed) = beta_0 + beta_1 x + beta_2 g

beta_2 is the log odds ratio of failing, b against a, at the same learning rate; "b fails more"
claims beta_2 > 0. The test is the likelihood-ratio test of beta_2 = 0: LR = 2 (l_full - l_0),
l the maximised log-likelihood of the full model and of the one without g, against chi^2 with
1 degree of freedom (statsmodels GLM Binomial fits both).

Separation. With a few seeds per learning rate, the data are often separated: some line in
(x, g) puts every failed run on one side and every other run on the other (e.g. every momentum
run fails from lr 0.3 on and none below). Then the maximum likelihood estimates do not exist
(they run off to infinity), and the LR statistic, a supremum, is dominated by that limit, for
which the chi^2 approximation was never derived. Where the data are separated the test is
instead Firth's penalised likelihood ratio test (Firth 1993; Heinze and Schemper 2002):

    l*(beta) = l(beta) + 1/2 log det I(beta),   I(beta) = X' diag(m p (1 - p)) X

maximised by Newton's method (`fit_logistic`), whose estimates are always finite;
PLR = 2 (l*(full) - l*(beta_2 = 0)), the restricted fit keeping the full model's penalty, against
chi^2(1). Heinze and Schemper found its p-values and profile intervals close to nominal in
small and separated samples. Separation is decided exactly (`separated`), not from a fit that
failed to converge.

The interval of beta_2 is the profile (penalised, where separated) likelihood interval, the
set of beta_2 whose LR against the fit stays below the chi^2(1) quantile: it excludes 0 exactly
when the test's p-value is below 1 - level.

Critical learning rate of a group: where the fit crosses 50% failure, 10^(-(beta_0 + beta_2 g) /
beta_1) (NaN when failure does not rise with lr, beta_1 <= 0, or the crossing lies outside the
sweep), and, read from the runs alone, the smallest lr at which at least half of the group's
runs failed.

Seeds: power by simulation from the fitted model (`seeds_per_lr`): at n seeds per learning
rate and group, failures are drawn from the fitted probabilities (numpy default_rng(seed)), the
same test is run, and power is the share of draws with p < alpha. There is no equivalence test
for this kind: a margin for a log odds ratio would need a scale nobody has agreed on.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.special
import scipy.stats
from statsmodels.genmod import families
from statsmodels.genmod.generalized_linear_model import GLM

FAILED_OUTCOMES = ("unstable", "diverged", "collapsed")
# Cap of the seeds per learning rate the simulation looks for.
MAX_SEEDS_PER_LR = 64
SIMULATIONS = 200


@dataclass(frozen=True)
class Cells:
    """Runs grouped by (learning rate, group): lr, x = log10(lr), g in {0, 1}, runs and failures."""

    lr: np.ndarray
    x: np.ndarray
    g: np.ndarray
    runs: np.ndarray
    failures: np.ndarray

    def design(self) -> np.ndarray:
        return np.column_stack([np.ones_like(self.x), self.x, self.g])


def cells_of(lr, in_b, failed) -> Cells:
    """Aggregate runs (their lr, whether they are of group b, whether they failed) into cells."""
    lr = np.asarray(lr, dtype=np.float64)
    in_b = np.asarray(in_b, dtype=bool)
    failed = np.asarray(failed, dtype=bool)
    if not (np.isfinite(lr).all() and (lr > 0).all()):
        raise ValueError("every run of a learning-rate sweep needs a positive learning rate (column lr)")
    keys = sorted(set(zip(lr.tolist(), in_b.astype(int).tolist())))
    lrs = np.array([k[0] for k in keys])
    g = np.array([k[1] for k in keys], dtype=np.float64)
    members = [(lr == value) & (in_b == bool(group)) for value, group in keys]
    runs = np.array([m.sum() for m in members], dtype=np.float64)
    failures = np.array([(m & failed).sum() for m in members], dtype=np.float64)
    return Cells(lrs, np.log10(lrs), g, runs, failures)


def separated(cells: Cells) -> bool:
    """Whether some beta != 0 has x_i' beta >= 0 for every failed run and <= 0 for every other
    (complete or quasi-complete separation: the maximum likelihood estimate does not exist).

    For the design (1, x, g) this is exact and needs no optimiser: with beta_1 = 0 the predictor
    is constant within each group, so a group whose runs all failed, or all did not, separates;
    with beta_1 > 0 each group has its own threshold in x (beta_0 and beta_2 set the two), so
    the data separate when in each group no failed run has a smaller x than a run that did not
    (a tie sits on the threshold); beta_1 < 0 likewise, mirrored.
    """
    success = cells.runs - cells.failures
    rising = falling = True
    for group in (0.0, 1.0):
        mine = cells.g == group
        if not mine.any():
            return True  # one group only: g is a constant column
        fail_x = cells.x[mine & (cells.failures > 0)]
        ok_x = cells.x[mine & (success > 0)]
        if fail_x.size == 0 or ok_x.size == 0:
            return True
        rising &= bool(ok_x.max() <= fail_x.min())
        falling &= bool(fail_x.max() <= ok_x.min())
    return rising or falling


def log_likelihood(beta: np.ndarray, cells: Cells, firth: bool = False) -> float:
    """sum over cells of k eta - m log(1 + e^eta) (binomial coefficients left out: they cancel in
    every ratio), plus 1/2 log det I(beta) with Firth's penalty."""
    X = cells.design()
    eta = X @ beta
    value = float(np.sum(cells.failures * eta - cells.runs * np.logaddexp(0.0, eta)))
    if firth:
        p = scipy.special.expit(eta)
        information = X.T @ (X * (cells.runs * p * (1 - p))[:, None])
        sign, logdet = np.linalg.slogdet(information)
        value += 0.5 * logdet if sign > 0 else -math.inf
    return value


def fit_logistic(cells: Cells, firth: bool = False, fixed: dict | None = None, max_iter: int = 200
                 ) -> tuple[np.ndarray, float]:
    """(beta, maximised log-likelihood, penalised with `firth`) of the logistic model, by Newton's
    method with step halving; `fixed` {index: value} holds coefficients at given values (the
    restricted fits of the tests and the profile intervals). The penalty is always that of the
    full design. With firth=False the data must not be separated (the maximum does not exist).

    Newton's step uses the expected information of the free coefficients; the score of the
    penalised likelihood is X'(k - m p + h (1/2 - p)), h the diagonal of the hat matrix
    W^1/2 X I^-1 X' W^1/2 (Firth 1993). Steps are capped at 5 per coefficient (as logistf does).
    """
    X = cells.design()
    fixed = fixed or {}
    free = np.array([j for j in range(X.shape[1]) if j not in fixed])
    beta = np.zeros(X.shape[1])
    for j, value in fixed.items():
        beta[j] = value
    current = log_likelihood(beta, cells, firth)
    for _ in range(max_iter):
        p = scipy.special.expit(X @ beta)
        weight = cells.runs * p * (1 - p)
        information = X.T @ (X * weight[:, None])
        residual = cells.failures - cells.runs * p
        if firth:
            hat = weight * np.einsum("ij,jk,ik->i", X, np.linalg.pinv(information), X)
            residual = residual + hat * (0.5 - p)
        score = X[:, free].T @ residual
        step = np.linalg.lstsq(information[np.ix_(free, free)], score, rcond=None)[0]
        largest = np.abs(step).max() if step.size else 0.0
        if largest > 5:
            step *= 5 / largest
        for _ in range(60):
            trial = beta.copy()
            trial[free] += step
            value = log_likelihood(trial, cells, firth)
            if value >= current - 1e-12:
                break
            step /= 2
        else:
            break  # no step along Newton's direction gains: at the maximum, to rounding
        beta, current = trial, value
        if np.abs(step).max(initial=0.0) < 1e-10:
            break
    return beta, current


def _glm(cells: Cells, columns: list[int], offset: np.ndarray | None = None):
    """statsmodels GLM Binomial on the cells' (failures, others) counts."""
    endog = np.column_stack([cells.failures, cells.runs - cells.failures])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GLM(endog, cells.design()[:, columns], family=families.Binomial(), offset=offset).fit()


def _fits(cells: Cells, method: str) -> tuple[np.ndarray, float, float]:
    """(beta of the full model, its log-likelihood, that of the fit with beta_2 = 0)."""
    if method == "likelihood ratio":
        full, reduced = _glm(cells, [0, 1, 2]), _glm(cells, [0, 1])
        binomial = _log_binomials(cells)  # statsmodels' llf includes them; the ratio does not
        return np.asarray(full.params), float(full.llf) - binomial, float(reduced.llf) - binomial
    beta, full = fit_logistic(cells, firth=True)
    _, reduced = fit_logistic(cells, firth=True, fixed={2: 0.0})
    return beta, full, reduced


def _log_binomials(cells: Cells) -> float:
    k, m = cells.failures, cells.runs
    return float(np.sum(scipy.special.gammaln(m + 1) - scipy.special.gammaln(k + 1) - scipy.special.gammaln(m - k + 1)))


def _profile(cells: Cells, method: str, value: float) -> float:
    """Largest log-likelihood (penalised where separated) with beta_2 held at `value`."""
    if method == "likelihood ratio":
        return float(_glm(cells, [0, 1], offset=value * cells.g).llf) - _log_binomials(cells)
    return fit_logistic(cells, firth=True, fixed={2: value})[1]


def profile_interval(cells: Cells, method: str, beta2: float, top: float, level: float) -> tuple[float, float]:
    """The beta_2 whose likelihood ratio against the fit stays below chi^2_1(level): roots of
    2 (top - profile(b)) = q found by bracketing outwards from the estimate and Brent's method;
    an infinite bound where the profile never falls that far (within |beta_2| <= 50)."""
    quantile = scipy.stats.chi2.ppf(level, 1)

    def excess(b):
        return 2 * (top - _profile(cells, method, b)) - quantile

    bounds = []
    for direction in (-1.0, 1.0):
        step, inner = 0.5, beta2
        outer = beta2 + direction * step
        while excess(outer) < 0:
            if abs(outer - beta2) > 50:
                outer = math.inf * direction
                break
            inner, step = outer, step * 2
            outer = beta2 + direction * step
        if math.isinf(outer):
            bounds.append(outer)
        else:
            bounds.append(scipy.optimize.brentq(excess, min(inner, outer), max(inner, outer), xtol=1e-8))
    return bounds[0], bounds[1]


def dose_response_test(cells: Cells) -> dict:
    """The test of beta_2 = 0 (see the module docstring) on the cells of one stratum.

    Returns {"method" ("likelihood ratio" or "Firth penalised likelihood ratio"), "separated",
    "beta" (beta_0, beta_1, beta_2), "statistic" (LR or PLR), "p_value", "log_likelihood"
    (of the fit, penalised where separated)}.
    """
    is_separated = separated(cells)
    method = "Firth penalised likelihood ratio" if is_separated else "likelihood ratio"
    beta, full, reduced = _fits(cells, method)
    statistic = max(0.0, 2 * (full - reduced))
    return {"method": method, "separated": is_separated, "beta": beta, "statistic": statistic,
            "p_value": float(scipy.stats.chi2.sf(statistic, 1)), "log_likelihood": full}


def _fast_p_value(cells: Cells) -> float:
    """`dose_response_test`'s p-value with the Newton fits in place of statsmodels' (the same
    maxima): what the simulations run."""
    firth = separated(cells)
    _, full = fit_logistic(cells, firth=firth)
    _, reduced = fit_logistic(cells, firth=firth, fixed={2: 0.0})
    return float(scipy.stats.chi2.sf(max(0.0, 2 * (full - reduced)), 1))


def critical_lr(beta: np.ndarray, group: int, cells: Cells) -> float:
    """The lr at which the fit gives 50% failure in the group: 10^(-(beta_0 + beta_2 g) / beta_1);
    NaN where failure does not rise with the learning rate (beta_1 <= 0) or the fit crosses 50%
    outside the swept learning rates (an extrapolation nothing measured)."""
    if not beta[1] > 0:
        return math.nan
    x = -(beta[0] + beta[2] * group) / beta[1]
    return float(10**x) if cells.x.min() <= x <= cells.x.max() else math.nan


def half_failed_lr(cells: Cells, group: int) -> float:
    """The smallest lr at which at least half of the group's runs failed (NaN if at none)."""
    mine = (cells.g == group) & (cells.runs > 0) & (cells.failures >= cells.runs / 2)
    return float(cells.lr[mine].min()) if mine.any() else math.nan


def power_at(cells: Cells, beta: np.ndarray, seeds: int, alpha: float, simulations: int, seed: int) -> float:
    """Share of `simulations` sweeps, `seeds` runs per (lr, group) cell with failures drawn from
    the fitted probabilities expit(X beta), whose test gives p < alpha."""
    rng = np.random.default_rng(seed)
    p = scipy.special.expit(cells.design() @ beta)
    runs = np.full(cells.x.size, float(seeds))
    draws = rng.binomial(seeds, p, size=(simulations, p.size)).astype(float)
    hits = sum(_fast_p_value(Cells(cells.lr, cells.x, cells.g, runs, draw)) < alpha for draw in draws)
    return hits / simulations


def seeds_per_lr(cells: Cells, beta: np.ndarray, alpha: float, power: float, simulations: int = SIMULATIONS,
                 seed: int = 0, cap: int = MAX_SEEDS_PER_LR) -> float:
    """The fewest seeds per (learning rate, group) at which the simulated power (`power_at`, the
    same seed at every n, so the draws at different n share their random numbers) reaches
    `power`: doubling from 2, then bisection, which takes power to grow with n (a simulated
    power is only nearly monotone). inf if `cap` seeds do not reach it."""
    def enough(n: int) -> bool:
        return power_at(cells, beta, n, alpha, simulations, seed) >= power

    low, high = 1, 2
    while not enough(high):
        if high >= cap:
            return math.inf
        low, high = high, min(2 * high, cap)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return float(high)
