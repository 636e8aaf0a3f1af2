"""Numbers averaged over direction sets, and how much of their spread is direction and seed."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from unetscape.analysis.tables import direction_set_columns, direction_table
from unetscape.analysis.variance import direction_and_seed, one_way_components
from unetscape.landscape.direction_sets import direction_set_seeds, read_direction_sets, write_direction_sets
from unetscape.measures.surface_metrics import surface_metrics
from unetscape.seeding import derive_seed


def test_the_anova_estimator_by_hand():
    # three runs, three sets each: run means 2, 5, 8; within sums of squares 2, 2, 2
    groups = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    parts = one_way_components(groups)
    assert parts["ms_within"] == pytest.approx(6 / 6)  # 6 / (N - R)
    assert parts["ms_between"] == pytest.approx(3 * ((2 - 5) ** 2 + 0 + 3**2) / 2)  # 27
    assert parts["n0"] == pytest.approx(3)
    assert parts["var_between"] == pytest.approx((27 - 1) / 3)
    # unbalanced: n0 = (N - sum K_r^2 / N) / (R - 1)
    parts = one_way_components([[1.0, 3.0], [2.0, 2.0, 5.0, 7.0]])
    assert parts["n0"] == pytest.approx((6 - (4 + 16) / 6) / 1)
    within = ((1 - 2) ** 2 + (3 - 2) ** 2 + sum((v - 4) ** 2 for v in (2, 2, 5, 7))) / (6 - 2)
    assert parts["ms_within"] == pytest.approx(within)
    # seeds that agree better than directions: a negative raw estimate, truncated at 0
    parts = one_way_components([[0.0, 4.0], [1.0, 3.0], [0.5, 3.5]])
    assert parts["var_between_raw"] < 0 and parts["var_between"] == 0.0
    # non-finite values are left out, a run with none is dropped
    assert one_way_components([[1.0, np.nan, 3.0], [np.nan], [2.0, 4.0]])["runs"] == 2


def test_the_anova_estimator_equals_the_reml_fit_of_a_mixed_model():
    """Balanced data with a positive estimate: the method-of-moments and REML estimates agree."""
    statsmodels = pytest.importorskip("statsmodels.formula.api")
    rng = np.random.default_rng(3)
    runs, sets = 6, 8
    seed_effects = rng.normal(0, 0.7, runs)
    values = seed_effects[:, None] + rng.normal(0, 0.4, (runs, sets)) + 3.0
    parts = one_way_components(values)
    frame = pd.DataFrame({"y": values.ravel(), "run": np.repeat(np.arange(runs), sets)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = statsmodels.mixedlm("y ~ 1", frame, groups=frame["run"]).fit(reml=True)
    assert parts["var_between"] > 0
    # to the tolerance of the REML optimiser
    assert parts["var_between"] == pytest.approx(float(fit.cov_re.iloc[0, 0]), rel=1e-3)
    assert parts["var_within"] == pytest.approx(float(fit.scale), rel=1e-3)


def test_direction_and_seed_summarise_a_condition():
    groups = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    summary = direction_and_seed(groups, sets=3)
    assert summary["sd_direction"] == pytest.approx(1.0)
    assert summary["sd_seed"] == pytest.approx(math.sqrt(26 / 3))
    assert summary["se_directions"] == pytest.approx(1 / math.sqrt(3))
    assert summary["direction_share"] == pytest.approx(1 / (1 + 26 / 3))
    assert summary["se_over_sd_seed"] == pytest.approx((1 / math.sqrt(3)) / math.sqrt(26 / 3))


def test_direction_set_seeds_start_with_the_planes_own():
    seeds = direction_set_seeds(123, 4)
    assert seeds[0] == 123 and seeds[1:] == [derive_seed(123, f"direction_set{k}") for k in range(1, 4)]
    assert len(set(seeds)) == 4
    with pytest.raises(ValueError, match="direction_sets.count"):
        direction_set_seeds(123, 0)


def bowl(x, y, ripple):
    return x[None, :] ** 2 + 2 * y[:, None] ** 2 + ripple * np.sin(9 * x[None, :]) * np.cos(7 * y[:, None])


def test_the_averaged_numbers_are_the_mean_over_sets_of_each_sets_metric(tmp_path):
    x = y = np.linspace(-1, 1, 9)
    line_x = np.linspace(-1, 1, 11)
    ripples = [0.0, 0.05, 0.2]
    surfaces = np.stack([bowl(x, y, r) for r in ripples])  # meshgrid order (ny, nx)
    lines = np.stack([line_x**2 + r * np.sin(9 * line_x) for r in ripples])
    path = tmp_path / "sets.h5"
    write_direction_sets(path, [1, 2, 3], x, y, surfaces, line_x, lines, {"what": "test"})
    assert read_direction_sets(path)["train_loss"].shape == (3, 9, 9)
    columns, per_set = direction_set_columns(path, [0.5], [0.05], 0.05)
    # each set's roughness computed independently, on the x-first array the metric functions take
    expected = [surface_metrics({"xcoordinates": x, "ycoordinates": y, "train_loss": s})["roughness"]
                for s in surfaces]
    assert per_set["roughness"] == pytest.approx(expected)
    assert columns["roughness"] == pytest.approx(np.mean(expected))
    assert columns["roughness_se"] == pytest.approx(np.std(expected, ddof=1) / math.sqrt(3))
    assert columns["direction_sets"] == 3 and "line_roughness" in columns and "basins" in columns
    # a smooth bowl is one basin; the averaged count is a mean of integers
    assert per_set["basins"][0] == 1


def test_the_direction_table_splits_each_condition():
    table = pd.DataFrame({"run": ["a/0", "a/1", "b/0", "b/1", "b/2"], "arch": ["a", "a", "b", "b", "b"],
                          "outcome": ["finished", "finished", "finished", "finished", "diverged"]})
    per_set = {"a/0": {"roughness": [1, 2, 3]}, "a/1": {"roughness": [4, 5, 6]},
               "b/0": {"roughness": [1, 1.1]}, "b/1": {"roughness": [1, 1.1]}, "b/2": {"roughness": [9, 9]}}
    out = direction_table(table, per_set, by=("arch",))
    a = out[out["arch"] == "a"].iloc[0]
    assert a["runs"] == 2 and a["sets"] == 3 and a["sd_direction"] == pytest.approx(1.0)
    b = out[out["arch"] == "b"].iloc[0]  # the diverged run is left out
    assert b["runs"] == 2 and b["sd_seed"] == 0.0 and b["criterion"] == "not met"
