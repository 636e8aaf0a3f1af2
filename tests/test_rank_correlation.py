"""Kendall's tau, its bootstrap interval and the granulated tau against slow loops and scipy."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from unetscape.analysis.rank_correlation import (
    bootstrap_tau,
    generalisation_table,
    granulated_tau,
    kendall_tau,
    stratified_tau,
    tau_b_rows,
    within_condition_tau,
)


def slow_tau_b(a, b):
    """tau-b by the definition: a loop over the pairs i < j. None where undefined."""
    a, b = [float(v) for v in a], [float(v) for v in b]
    n = len(a)
    score = ties_a = ties_b = 0
    for i in range(n):
        for j in range(i + 1, n):
            da, db = a[i] - a[j], b[i] - b[j]
            sign_a = (da > 0) - (da < 0)
            sign_b = (db > 0) - (db < 0)
            score += sign_a * sign_b  # +1 concordant, -1 discordant, 0 tied
            ties_a += da == 0
            ties_b += db == 0
    pairs = n * (n - 1) // 2
    denominator = math.sqrt((pairs - ties_a) * (pairs - ties_b))
    return score / denominator if denominator > 0 else None


def slow_quantile(values, q):
    """Linear interpolation between order statistics (numpy's default method), by hand."""
    values = sorted(values)
    h = (len(values) - 1) * q
    low = math.floor(h)
    high = min(low + 1, len(values) - 1)
    return values[low] + (h - low) * (values[high] - values[low])


def tied_data(n=15, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 5, n).astype(float)  # many ties
    b = a + rng.integers(-2, 3, n)  # correlated, with ties of its own
    return a, b


def test_kendall_tau_matches_scipy_and_the_definition():
    for seed in range(5):
        a, b = tied_data(seed=seed)
        tau, p = kendall_tau(a, b)
        reference = scipy.stats.kendalltau(a, b)
        assert tau == pytest.approx(reference.statistic, abs=1e-12)
        assert p == pytest.approx(reference.pvalue, rel=1e-12)
        assert tau == pytest.approx(slow_tau_b(list(a), list(b)), abs=1e-12)
    assert kendall_tau([1, 2, 3], [3, 2, 1])[0] == pytest.approx(-1.0)


def test_kendall_tau_undefined_cases_are_nan():
    assert all(math.isnan(v) for v in kendall_tau([1.0], [2.0]))
    assert all(math.isnan(v) for v in kendall_tau([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="NaN"):
        kendall_tau([1.0, math.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="one value per run"):
        kendall_tau([1.0, 2.0], [1.0])


def test_tau_b_rows_matches_the_definition_on_resamples():
    a, b = tied_data(n=9, seed=3)
    index = np.random.default_rng(0).integers(0, 9, size=(40, 9))
    fast = tau_b_rows(a[index], b[index], chunk=7)  # several chunks, one short
    for row, value in zip(index, fast):
        slow = slow_tau_b(list(a[row]), list(b[row]))
        if slow is None:
            assert math.isnan(value)
        else:
            assert value == pytest.approx(slow, abs=1e-12)
            assert value == pytest.approx(scipy.stats.kendalltau(a[row], b[row]).statistic, abs=1e-12)


@pytest.mark.parametrize("n", [4, 12])
def test_bootstrap_interval_matches_a_slow_loop(n):
    a, b = tied_data(n=n, seed=1)
    n_boot, level, seed = 300, 0.9, 11
    result = bootstrap_tau(a, b, n_boot=n_boot, level=level, seed=seed)
    index = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    taus = [slow_tau_b([a[i] for i in row], [b[i] for i in row]) for row in index]
    taus = [t for t in taus if t is not None]
    assert result["valid"] == len(taus)
    if n == 4:
        assert result["valid"] < n_boot  # some resamples of 4 runs are constant: left out, counted
    else:
        assert result["valid"] == n_boot
    assert result["low"] == pytest.approx(slow_quantile(taus, 0.05), abs=1e-12)
    assert result["high"] == pytest.approx(slow_quantile(taus, 0.95), abs=1e-12)
    assert result["low"] <= result["high"]


def test_bootstrap_is_seeded():
    a, b = tied_data(n=10, seed=2)
    assert bootstrap_tau(a, b, 200, seed=1) == bootstrap_tau(a, b, 200, seed=1)
    assert bootstrap_tau(a, b, 200, seed=1)["low"] != bootstrap_tau(a, b, 200, seed=2)["low"] or \
        bootstrap_tau(a, b, 200, seed=1)["high"] != bootstrap_tau(a, b, 200, seed=2)["high"]
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_tau(a, b, 0)
    one = bootstrap_tau([1.0], [2.0], 10)
    assert math.isnan(one["low"]) and one["valid"] == 0


# ---------------------------------------------------------------------------------------------
# granulated tau


def noise_tracking_table(constant_in_seed=False):
    """4 noise levels x 2 seeds. The target grows with noise and (a little) with the seed; the
    measure tracks the noise level, and with the seed it goes up at noise 0 and 2, down at 1 and 3."""
    rows = []
    for noise, seed in itertools.product(range(4), range(2)):
        sign = 1 if noise % 2 == 0 else -1
        measure = 10 * noise + (0 if constant_in_seed else sign * seed)
        rows.append({"noise": noise, "seed": seed, "measure": measure, "gap": noise + 0.1 * seed})
    return pd.DataFrame(rows)


def test_granulated_tau_on_a_table_with_a_known_answer():
    result = granulated_tau(noise_tracking_table(), ["noise", "seed"], "measure", "gap")
    assert result["psi"]["noise"] == 1.0  # within each seed, the measure ranks the noise levels
    assert result["psi"]["seed"] == 0.0  # within each noise level: +1, -1, +1, -1
    assert result["groups"] == {"noise": 2, "seed": 4}
    assert result["Psi"] == 0.5 and result["Psi_factors"] == 2


def test_granulated_tau_undefined_factor_and_lone_runs():
    table = noise_tracking_table(constant_in_seed=True)
    result = granulated_tau(table, ["noise", "seed"], "measure", "gap")
    assert result["psi"]["noise"] == 1.0
    assert math.isnan(result["psi"]["seed"])  # the measure ties within every noise level
    assert result["groups"]["seed"] == 0 and result["undefined"]["seed"] == 4
    assert result["Psi"] == 1.0 and result["Psi_factors"] == 1
    # A run alone in its groups (noise 9, seed 5) has no pair in either factor: nothing changes.
    extra = pd.concat([noise_tracking_table(), pd.DataFrame([{"noise": 9, "seed": 5, "measure": -100.0, "gap": 50.0}])])
    assert granulated_tau(extra, ["noise", "seed"], "measure", "gap") == granulated_tau(
        noise_tracking_table(), ["noise", "seed"], "measure", "gap")


def test_granulated_tau_skips_groups_where_the_factor_does_not_vary():
    # Two replicate runs at noise 7, both seed 0: a pair, but the seed does not change within
    # it, so it says nothing about the seed. (Across noise levels they rank correctly.)
    replicates = pd.DataFrame([{"noise": 7, "seed": 0, "measure": 70.0, "gap": 7.0},
                               {"noise": 7, "seed": 0, "measure": 71.0, "gap": 7.05}])
    table = pd.concat([noise_tracking_table(), replicates], ignore_index=True)
    result = granulated_tau(table, ["noise", "seed"], "measure", "gap")
    assert result["psi"]["seed"] == 0.0 and result["groups"]["seed"] == 4
    assert result["psi"]["noise"] == 1.0


def slow_granulated(records, factors, measure, target):
    """psi per factor by explicit loops over the other factors' value combinations."""
    psi = {}
    for factor in factors:
        others = [f for f in factors if f != factor]
        combos = sorted({tuple(r[o] for o in others) for r in records})
        taus = []
        for combo in combos:
            group = [r for r in records if tuple(r[o] for o in others) == combo]
            if len({r[factor] for r in group}) < 2:
                continue
            tau = slow_tau_b([r[measure] for r in group], [r[target] for r in group])
            if tau is not None:
                taus.append(tau)
        psi[factor] = sum(taus) / len(taus) if taus else None
    return psi


def test_granulated_tau_matches_a_slow_loop_on_three_factors():
    rng = np.random.default_rng(4)
    records = []
    for arch, optimizer, noise, seed in itertools.product(["a", "b"], ["sgd", "mom"], [0.0, 0.1, 0.2], range(3)):
        if rng.random() < 0.2:
            continue  # an unbalanced grid: some groups lose runs, some become lone runs
        records.append({"arch": arch, "optimizer": optimizer, "noise": noise, "seed": seed,
                        "measure": float(rng.integers(0, 4)), "gap": float(rng.integers(0, 5))})
    table = pd.DataFrame(records).sample(frac=1.0, random_state=0)  # row order must not matter
    table.index = np.arange(len(table))[::-1] * 3  # nor the index
    factors = ["arch", "optimizer", "noise", "seed"]
    result = granulated_tau(table, factors, "measure", "gap")
    slow = slow_granulated(records, factors, "measure", "gap")
    for factor in factors:
        if slow[factor] is None:
            assert math.isnan(result["psi"][factor])
        else:
            assert result["psi"][factor] == pytest.approx(slow[factor], abs=1e-12)
    defined = [v for v in slow.values() if v is not None]
    assert result["Psi"] == pytest.approx(sum(defined) / len(defined), abs=1e-12)


def test_granulated_tau_refuses_bad_tables():
    table = noise_tracking_table()
    with pytest.raises(ValueError, match="not columns"):
        granulated_tau(table, ["noise", "optimizer"], "measure", "gap")
    with pytest.raises(ValueError, match="NaN"):
        granulated_tau(table.assign(measure=np.nan), ["noise", "seed"], "measure", "gap")
    with pytest.raises(ValueError, match="missing values"):
        granulated_tau(table.assign(seed=[0, 1, None, 1, 0, 1, 0, 1]), ["noise", "seed"], "measure", "gap")


# ---------------------------------------------------------------------------------------------
# the table


def test_generalisation_table_leaves_out_and_counts_missing_runs():
    table = noise_tracking_table()
    table["test_dice"] = 1.0 - table["gap"] / 10
    table["sharpness"] = table["measure"].astype(float)
    table.loc[3, "sharpness"] = np.nan  # e.g. a diverged run
    result = generalisation_table(table, ["sharpness", "measure"], ["gap", "test_dice"], ["noise", "seed"],
                                  n_boot=200, seed=0)
    assert list(result[["measure", "target"]].itertuples(index=False, name=None)) == [
        ("sharpness", "gap"), ("sharpness", "test_dice"), ("measure", "gap"), ("measure", "test_dice")]
    assert list(result.columns) == ["measure", "target", "n", "n_left_out", "tau", "p_value", "tau_low", "tau_high",
                                    "boot_valid", "psi_noise", "groups_noise", "psi_seed", "groups_seed", "Psi",
                                    "Psi_factors"]
    first = result.iloc[0]
    assert (first["n"], first["n_left_out"]) == (7, 1)
    clean = table.drop(index=3)
    assert first["tau"] == pytest.approx(scipy.stats.kendalltau(clean["sharpness"], clean["gap"]).statistic)
    assert first["groups_seed"] == 3  # the group of noise 1 lost a run and has no pair left
    full = result.iloc[2]
    assert (full["n"], full["n_left_out"]) == (8, 0)
    assert full["psi_noise"] == 1.0 and full["psi_seed"] == 0.0 and full["Psi"] == 0.5
    # test_dice falls as the gap grows: the same ranks, the opposite sign.
    assert result.iloc[3]["tau"] == pytest.approx(-full["tau"]) and result.iloc[3]["psi_noise"] == -1.0
    assert full["tau_low"] <= full["tau"] <= full["tau_high"] and full["boot_valid"] == 200


def test_generalisation_table_errors_name_the_column():
    table = noise_tracking_table()
    with pytest.raises(ValueError, match=r"measures \['flat'\]"):
        generalisation_table(table, ["flat"], ["gap"], ["noise"])
    with pytest.raises(ValueError, match=r"targets \['test_dice'\]"):
        generalisation_table(table, ["measure"], ["test_dice"], ["noise"])
    with pytest.raises(ValueError, match="'measure' of the runs table is not numeric"):
        generalisation_table(table.assign(measure="x"), ["measure"], ["gap"], ["noise"])


# ---------------------------------------------------------------------------------------------
# the stratified (within-condition) tau


def slow_stratified(a, b, codes):
    """sum over conditions of (C - D) / sum of tau-b's denominators, by loops over the pairs."""
    score = denominator = 0.0
    a, b = [float(v) for v in a], [float(v) for v in b]
    for code in sorted(set(codes)):
        rows = [k for k, c in enumerate(codes) if c == code]
        pairs = ties_a = ties_b = 0
        for x in range(len(rows)):
            for y in range(x + 1, len(rows)):
                i, j = rows[x], rows[y]
                sa = (a[i] > a[j]) - (a[i] < a[j])
                sb = (b[i] > b[j]) - (b[i] < b[j])
                score += sa * sb
                pairs += 1
                ties_a += sa == 0
                ties_b += sb == 0
        denominator += math.sqrt((pairs - ties_a) * (pairs - ties_b))
    return score / denominator if denominator > 0 else math.nan


def test_stratified_tau_weighs_conditions_by_their_pairs_by_hand():
    # condition 0: 3 runs in order, 3 concordant pairs; condition 1: 5 runs, targets 5 4 1 3 2
    # against measures 1..5: only the pairs (3,4) and (3,5) are concordant, 8 are discordant.
    # By hand: (3 + 2 - 8) / (3 + 10) = -3/13, where a plain mean of the two taus, 1 and -0.6,
    # would say 0.2: the 3-run condition would outweigh the 5-run one.
    measure = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    target = np.array([1.0, 2.0, 3.0, 5.0, 4.0, 1.0, 3.0, 2.0])
    codes = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    assert scipy.stats.kendalltau(measure[3:], target[3:]).statistic == pytest.approx(-0.6)
    result = stratified_tau(measure, target, codes)
    assert result["tau"] == pytest.approx(-3 / 13)
    assert result["conditions"] == 2 and result["pairs"] == 13
    # with one condition it is that condition's tau-b
    assert stratified_tau(measure[3:], target[3:], codes[3:])["tau"] == pytest.approx(-0.6)


def test_stratified_tau_with_ties_matches_a_slow_loop_and_a_weighted_mean_of_scipys_taus():
    rng = np.random.default_rng(7)
    codes = np.repeat([0, 1, 2, 3], [3, 5, 4, 1])  # a lone run adds no pair
    a = rng.integers(0, 3, codes.size).astype(float)  # ties in both
    b = rng.integers(0, 4, codes.size).astype(float)
    result = stratified_tau(a, b, codes)
    assert result["tau"] == pytest.approx(slow_stratified(a, b, codes), abs=1e-12)
    # the same number as the conditions' tau-b (SciPy) weighted by their denominators
    taus, weights = [], []
    for code in (0, 1, 2):
        x, y = a[codes == code], b[codes == code]
        if len(set(x)) > 1 and len(set(y)) > 1:
            taus.append(scipy.stats.kendalltau(x, y).statistic)
            n0 = len(x) * (len(x) - 1) / 2
            n1 = sum(math.comb(int(c), 2) for c in np.unique(x, return_counts=True)[1])
            n2 = sum(math.comb(int(c), 2) for c in np.unique(y, return_counts=True)[1])
            weights.append(math.sqrt((n0 - n1) * (n0 - n2)))
    assert result["tau"] == pytest.approx(np.average(taus, weights=weights), abs=1e-12)
    assert math.isnan(stratified_tau([1.0, 2.0], [3.0, 4.0], [0, 1])["tau"])  # no condition with a pair


def test_within_condition_bootstrap_matches_resampling_by_a_slow_loop():
    rng = np.random.default_rng(3)
    codes = np.repeat([0, 1], [3, 5])
    a, b = rng.integers(0, 4, 8).astype(float), rng.normal(size=8)
    n_perm, n_boot, seed = 50, 200, 5
    result = within_condition_tau(a, b, codes, n_perm=n_perm, n_boot=n_boot, level=0.9, seed=seed)
    # replay the generator: the shuffles first (one draw per condition), then the resamples
    replay = np.random.default_rng(seed)
    for g in (np.arange(3), np.arange(3, 8)):
        replay.permuted(np.broadcast_to(b[g], (n_perm, len(g))).copy(), axis=1)
    draws = [g[replay.integers(0, len(g), size=(n_boot, len(g)))] for g in (np.arange(3), np.arange(3, 8))]
    taus = [slow_stratified(a[rows], b[rows], codes[rows])
            for rows in (np.concatenate([d[k] for d in draws]) for k in range(n_boot))]
    taus = [t for t in taus if not math.isnan(t)]
    assert 0 < len(taus) <= n_boot
    assert result["low"] == pytest.approx(slow_quantile(taus, 0.05), abs=1e-12)
    assert result["high"] == pytest.approx(slow_quantile(taus, 0.95), abs=1e-12)
