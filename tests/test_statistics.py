"""Student-t quantiles, bootstrap and Wilson intervals, and per-condition tables."""

import math

import numpy as np
import pandas as pd
import pytest

from unetscape.analysis.statistics import (
    bootstrap_mean_ci,
    condition_table,
    mean_ci,
    t_quantile,
    wilson_interval,
)


@pytest.mark.parametrize(
    "dof, expected", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (10, 2.2281), (30, 2.0423)]
)
def test_t_quantile_matches_tables(dof, expected):
    assert round(t_quantile(0.975, dof), 4) == expected
    assert round(t_quantile(0.025, dof), 4) == -expected


def test_t_quantile_matches_closed_forms():
    for p in (0.6, 0.9, 0.995):
        assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-10)
        assert t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-10)
    assert t_quantile(0.95, 5) == pytest.approx(2.0150, abs=1e-4)
    assert t_quantile(0.975, math.inf) == pytest.approx(1.959964, abs=1e-6)
    assert t_quantile(0.5, 3) == 0.0
    with pytest.raises(ValueError):
        t_quantile(1.0, 3)
    with pytest.raises(ValueError):
        t_quantile(0.9, 0)


def test_mean_ci_by_hand():
    mean, std, low, high, n = mean_ci([1, 2, np.nan, 3, 4])
    half = 3.1824 * 1.2910 / 2
    assert (mean, n) == (2.5, 4)
    assert std == pytest.approx(1.2910, abs=1e-4)
    assert low == pytest.approx(2.5 - half, abs=1e-3)
    assert high == pytest.approx(2.5 + half, abs=1e-3)
    mean, std, low, high, n = mean_ci([1, 2, 3, 4], level=0.5)
    assert high - mean < half / 3  # a lower level gives a narrower interval


def test_mean_ci_with_one_or_no_value():
    mean, std, low, high, n = mean_ci([np.nan, 7.0])
    assert (mean, n) == (7.0, 1)
    assert math.isnan(std) and math.isnan(low) and math.isnan(high)
    assert mean_ci([np.nan]).n == 0 and math.isnan(mean_ci([]).mean)


def runs_table():
    """Two conditions x three seeds; seed 2 of the momentum runs diverged (no landscape)."""
    return pd.DataFrame(
        {
            "arch": ["unet"] * 6,
            "optimizer": ["sgd"] * 3 + ["momentum"] * 3,
            "noise": [0.0] * 6,
            "seed": [0, 1, 2] * 2,
            "outcome": ["finished"] * 5 + ["diverged"],
            "roughness": [1.0, 2.0, 3.0, 2.0, 4.0, np.nan],
            "sharpness": [0.5, 0.5, 0.5, 1.0, 3.0, np.nan],
        }
    )


def exact_bootstrap_quantiles(values, level):
    """Quantiles of the exact bootstrap distribution of the mean: every one of the n^n
    equally likely resamples, enumerated."""
    import itertools

    means = sorted(np.mean(pick) for pick in itertools.product(values, repeat=len(values)))
    return np.quantile(means, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")


def test_bootstrap_interval_approaches_the_exact_bootstrap_distribution():
    values = [1.0, 2.0, 7.0, 3.0]
    stats = bootstrap_mean_ci(values, level=0.9, n_boot=40000, seed=1, min_runs=3)
    low, high = exact_bootstrap_quantiles(values, 0.9)
    assert stats.mean == pytest.approx(3.25) and stats.n == 4
    assert stats.std == pytest.approx(np.std(values, ddof=1))
    assert stats.low == pytest.approx(low, abs=0.25) and stats.high == pytest.approx(high, abs=0.25)
    again = bootstrap_mean_ci(values, level=0.9, n_boot=40000, seed=1, min_runs=3)
    assert again == stats  # seeded


@pytest.mark.parametrize("values", [[0.001, 0.002, 500.0], [0.0, 0.0, 1.0, 1.0, 0.98], [3.0, 3.0, 3.0]])
def test_bootstrap_interval_stays_in_the_domain(values):
    stats = bootstrap_mean_ci(values, n_boot=5000, seed=0)
    # the same resamples, drawn here: their quantiles lie in the domain before any rounding guard
    data = np.asarray(values)
    means = data[np.random.default_rng(0).integers(0, len(data), size=(5000, len(data)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    assert min(values) - 1e-12 <= low and high <= max(values) + 1e-12
    assert stats.low == pytest.approx(low, abs=1e-12) and stats.high == pytest.approx(high, abs=1e-12)
    assert min(values) <= stats.low <= stats.mean <= stats.high <= max(values)
    # the t-interval of the same values leaves it (e.g. below 0 for a positive metric)
    t = mean_ci(values)
    if np.std(values) > 0:
        assert t.low < min(values) or t.high > max(values)


def test_too_few_runs_give_no_interval():
    stats = bootstrap_mean_ci([1.0, 2.0], min_runs=3)
    assert stats.mean == 1.5 and stats.n == 2 and math.isnan(stats.low) and math.isnan(stats.high)


@pytest.mark.parametrize("k,n", [(0, 10), (5, 10), (10, 10), (1, 3), (81, 263)])
def test_wilson_interval_solves_its_defining_inequality(k, n):
    from scipy.optimize import brentq
    from scipy.stats import norm

    z = norm.ppf(0.975)
    phat = k / n
    # the interval is {p : |phat - p| <= z sqrt(p (1 - p) / n)}; its ends are the roots
    f = lambda p: (phat - p) ** 2 - z * z * p * (1 - p) / n  # noqa: E731
    low_expected = 0.0 if k == 0 else brentq(f, 1e-12, phat - 1e-12)
    high_expected = 1.0 if k == n else brentq(f, phat + 1e-12, 1 - 1e-12)
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(low_expected, abs=1e-9) and high == pytest.approx(high_expected, abs=1e-9)
    assert 0.0 <= low <= phat <= high <= 1.0


def test_condition_table_counts_outcomes_and_uses_finished_runs_only():
    runs = runs_table()
    runs.loc[4, "outcome"] = "not_converged"  # a momentum run whose landscape must not count
    table = condition_table(runs, ["roughness", "sharpness"], n_boot=4000, seed=0, min_runs=2)
    assert list(table["optimizer"]) == ["momentum", "sgd"]
    momentum, sgd = table.iloc[0], table.iloc[1]
    assert (sgd["n"], sgd["n_finished"], sgd["n_diverged"]) == (3, 3, 0)
    assert sgd["roughness_mean"] == pytest.approx(2.0) and sgd["roughness_std"] == pytest.approx(1.0)
    low, high = exact_bootstrap_quantiles([1.0, 2.0, 3.0], 0.95)
    assert sgd["roughness_ci_low"] == pytest.approx(low, abs=0.34)
    assert sgd["roughness_ci_high"] == pytest.approx(high, abs=0.34)
    assert sgd["sharpness_ci_low"] == sgd["sharpness_ci_high"] == 0.5
    assert sgd["diverged_rate"] == 0.0 and sgd["note"] == ""
    assert (momentum["n"], momentum["n_finished"], momentum["n_diverged"], momentum["n_not_converged"]) == (3, 1, 1, 1)
    assert momentum["roughness_n"] == 1 and momentum["roughness_mean"] == pytest.approx(2.0)
    assert math.isnan(momentum["roughness_ci_low"]) and "too few runs" in momentum["note"]
    assert momentum["diverged_rate"] == pytest.approx(1 / 3)
    assert (momentum["diverged_rate_ci_low"], momentum["diverged_rate_ci_high"]) == pytest.approx(wilson_interval(1, 3))


def test_condition_table_after_csv_round_trip_and_errors(tmp_path):
    path = tmp_path / "runs.csv"
    table = runs_table().drop(columns="outcome").assign(diverged=[False] * 5 + [True])
    table.to_csv(path, index=False)
    runs = pd.read_csv(path)
    runs["diverged"] = runs["diverged"].astype(str)  # flags as text, as some writers leave them
    table = condition_table(runs, ["roughness"], by=("optimizer",))
    assert list(table["diverged_rate"]) == pytest.approx([1 / 3, 0.0])
    everything = condition_table(runs, ["roughness"], by=("skip",))  # no by column left: one row
    assert len(everything) == 1 and everything.loc[0, "n"] == 6
    assert everything.loc[0, "roughness_mean"] == pytest.approx(12.0 / 5)
    with pytest.raises(ValueError, match="dice_gap"):
        condition_table(runs, ["dice_gap"])
    with pytest.raises(ValueError, match="outcome"):
        condition_table(runs.assign(outcome="exploded"), ["roughness"])
