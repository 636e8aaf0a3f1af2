"""Student-t quantiles, confidence intervals and per-condition tables."""

import math

import numpy as np
import pandas as pd
import pytest

from unetscape.statistics import condition_table, mean_ci, t_quantile


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
            "diverged": [False, False, False, False, False, True],
            "roughness": [1.0, 2.0, 3.0, 2.0, 4.0, np.nan],
            "sharpness": [0.5, 0.5, 0.5, 1.0, 3.0, np.nan],
        }
    )


def test_condition_table_by_hand():
    table = condition_table(runs_table(), ["roughness", "sharpness"])
    assert list(table.columns[:4]) == ["arch", "optimizer", "noise", "n"]  # no skip column: skipped
    assert list(table["optimizer"]) == ["momentum", "sgd"]
    momentum, sgd = table.iloc[0], table.iloc[1]

    assert sgd["n"] == 3 and sgd["roughness_n"] == 3
    assert sgd["roughness_mean"] == pytest.approx(2.0)
    assert sgd["roughness_std"] == pytest.approx(1.0)
    assert sgd["roughness_ci_low"] == pytest.approx(2.0 - 4.3027 / math.sqrt(3), abs=1e-4)
    assert sgd["roughness_ci_high"] == pytest.approx(2.0 + 4.3027 / math.sqrt(3), abs=1e-4)
    assert sgd["sharpness_std"] == 0.0 and sgd["sharpness_ci_low"] == sgd["sharpness_ci_high"] == 0.5
    assert sgd["diverged_rate"] == 0.0

    assert momentum["n"] == 3 and momentum["roughness_n"] == 2  # the diverged run has no value
    assert momentum["roughness_mean"] == pytest.approx(3.0)
    assert momentum["roughness_std"] == pytest.approx(math.sqrt(2))
    # half-width t_{0.975,1} * sqrt(2) / sqrt(2)
    assert momentum["roughness_ci_low"] == pytest.approx(3.0 - 12.7062, abs=1e-4)
    assert momentum["roughness_ci_high"] == pytest.approx(3.0 + 12.7062, abs=1e-4)
    assert momentum["sharpness_mean"] == pytest.approx(2.0)
    assert momentum["diverged_rate"] == pytest.approx(1 / 3)


def test_condition_table_after_csv_round_trip_and_errors(tmp_path):
    path = tmp_path / "runs.csv"
    runs_table().to_csv(path, index=False)
    runs = pd.read_csv(path)
    runs["diverged"] = runs["diverged"].astype(str)  # flags as text, as some writers leave them
    table = condition_table(runs, ["roughness"], by=("optimizer",))
    assert list(table["diverged_rate"]) == pytest.approx([1 / 3, 0.0])
    everything = condition_table(runs, ["roughness"], by=("skip",))  # no by column left: one row
    assert len(everything) == 1 and everything.loc[0, "n"] == 6
    assert everything.loc[0, "roughness_mean"] == pytest.approx(12.0 / 5)
    with pytest.raises(ValueError, match="dice_gap"):
        condition_table(runs, ["dice_gap"])
