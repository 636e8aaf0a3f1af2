"""The generalisation study on hand-made runs: which measure predicts held-out Dice, and how often
a measure is called predictive when none is."""

import gc
import itertools
import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from unetscape.analysis.generalisation import (
    all_runs_table,
    generalisation,
    generalisation_rst,
)
from unetscape.analysis.rank_correlation import within_condition_tau

SETTINGS = {"level": 0.95, "bootstrap": 500, "seed": 0, "alpha": 0.05}
ARCHS = ("simple", "improved", "simple_add", "improved_add")


def runs(per_condition=4, seed=0):
    """Runs of 4 architectures x 2 optimisers; within each condition a sharper minimum (higher
    relative_lambda_max) goes with worse held-out Dice; relative_trace is unrelated noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for arch, optimizer in itertools.product(ARCHS, ("sgd", "sgd_momentum")):
        heldout = rng.uniform(0.8, 0.95, per_condition)
        for k in range(per_condition):
            rows.append({
                "run": f"{arch}/{optimizer}/noise0/seed{k}", "arch": arch, "optimizer": optimizer, "noise": 0.0,
                "seed": k, "norm": "batch" if "improved" in arch else "none",
                "skip": "add" if arch.endswith("add") else "concat", "outcome": "finished",
                "final_heldout_dice": heldout[k], "gap_loss": 0.1 - heldout[k] / 10 + rng.normal(0, 1e-4),
                "relative_lambda_max": 100 * (1 - heldout[k]),
                "relative_trace": rng.normal(),
            })
    return pd.DataFrame(rows)


def test_a_predictive_measure_ranks_first_and_an_unrelated_one_does_not_predict():
    data = runs()
    table = generalisation(data, SETTINGS)
    heldout = table[table["target"] == "final_heldout_dice"].set_index("measure")
    assert heldout.loc["relative_lambda_max", "tau"] == pytest.approx(-1.0)
    assert heldout.loc["relative_lambda_max", "rank"] == 1
    assert heldout.loc["relative_lambda_max", "verdict"] == "predicts it: sharper minima go with worse generalisation"
    assert heldout.loc["relative_trace", "verdict"] == "does not predict it here"
    assert heldout.loc["relative_lambda_max", "conditions"] == 8
    # the pooled tau stays as a column, from SciPy over all runs
    expected = scipy.stats.kendalltau(data["relative_trace"], data["final_heldout_dice"])
    assert heldout.loc["relative_trace", "tau_pooled"] == pytest.approx(expected.statistic)
    # the within-condition tau: concordant minus discordant pairs within conditions over all
    # their pairs (no ties here), by a loop over the pairs
    score = pairs = 0
    for _, g in data.groupby(["arch", "optimizer"]):
        m, t = g["relative_trace"].to_numpy(), g["final_heldout_dice"].to_numpy()
        for i, j in itertools.combinations(range(len(g)), 2):
            score += np.sign(m[i] - m[j]) * np.sign(t[i] - t[j])
            pairs += 1
    assert heldout.loc["relative_trace", "tau"] == pytest.approx(score / pairs)
    # Holm over every measure x target pair
    p = table["p_value"].to_numpy()
    order = np.argsort(p)
    assert table["p_holm"].iloc[order[0]] == pytest.approx(min(1.0, len(p) * p[order[0]]))
    gap = table[table["target"] == "gap_loss"].set_index("measure")
    assert gap.loc["relative_lambda_max", "tau"] > 0.9  # sharper, larger gap
    assert set(table["measure"]) == {"relative_lambda_max", "relative_trace"}  # absent measures are left out


def test_pooled_and_within_condition_tau_can_disagree_in_sign():
    # Simpson's paradox: within each architecture the measure falls as held-out Dice rises, but
    # the architecture with the larger measure also has the better held-out Dice.
    rows = []
    for arch, offset in (("simple", 0.0), ("improved", 10.0)):
        for k in range(5):
            rows.append({"arch": arch, "optimizer": "sgd", "noise": 0.0, "seed": k, "norm": "none", "skip": "concat",
                         "outcome": "finished", "run": f"{arch}/sgd/noise0/seed{k}",
                         "relative_lambda_max": offset + 5 - k, "final_heldout_dice": 0.5 + offset / 20 + k / 100,
                         "gap_loss": 0.0 + k / 1000})
    data = pd.DataFrame(rows)
    table = generalisation(data, SETTINGS).set_index("target")
    row = table.loc["final_heldout_dice"]
    assert row["tau_pooled"] > 0.1 and row["tau"] == pytest.approx(-1.0)


def test_within_condition_permutation_p_value_matches_exhaustive_enumeration():
    # conditions of 3 and 4 runs: the 3! x 4! shuffles of the target within conditions, all of them
    rng = np.random.default_rng(4)
    measure, target = rng.normal(size=7), rng.normal(size=7)
    codes = np.array([0, 0, 0, 1, 1, 1, 1])

    def statistic(t):
        # pairs within conditions: concordant minus discordant over their number (no ties)
        pairs = [(i, j) for i, j in itertools.combinations(range(7), 2) if codes[i] == codes[j]]
        return sum(np.sign(measure[i] - measure[j]) * np.sign(t[i] - t[j]) for i, j in pairs) / len(pairs)

    observed = statistic(target)
    null = [statistic(np.concatenate([target[:3][list(p)], target[3:][list(q)]]))
            for p in itertools.permutations(range(3)) for q in itertools.permutations(range(4))]
    exact = np.mean(np.abs(null) >= abs(observed) - 1e-12)
    result = within_condition_tau(measure, target, codes, n_perm=20000, n_boot=10, seed=1)
    assert result["tau"] == pytest.approx(observed)
    assert result["p_value"] == pytest.approx(exact, abs=0.01)


def null_table(seed=1):
    """Runs of 8 conditions x 5 seeds; six measures, two of which differ between architectures
    (as real measures do), none related to held-out Dice within a condition."""
    rng = np.random.default_rng(seed)
    base = runs(per_condition=5, seed=seed)
    for k, name in enumerate(MEASURES):
        shift = base["arch"].map({a: i for i, a in enumerate(ARCHS)}).to_numpy() * (k % 3)
        base[name] = shift + rng.normal(size=len(base))
    return base


MEASURES = ["roughness", "relative_lambda_max", "relative_trace", "average_sharpness", "worst_case_sharpness",
            "distance_from_init"]
# 6 measures x 2 targets: Holm's smallest threshold is alpha / 12 = 0.0042; a permutation
# p-value is at least 1 / (1 + shuffles), so 399 shuffles (0.0025) can reach it.
SHUFFLES = 399


def test_holms_thresholds_are_reachable_with_these_shuffles():
    assert 1 / (1 + SHUFFLES) < SETTINGS["alpha"] / (len(MEASURES) * 2)


def test_a_target_that_is_a_monotone_function_of_a_measure_is_called_predictive():
    # positive control: held-out Dice falls with one measure, the gap rises with it
    table = null_table(seed=2)
    table["final_heldout_dice"] = 1 / (1 + np.exp(table["worst_case_sharpness"]))
    table["gap_loss"] = np.exp(table["worst_case_sharpness"]) / 100
    result = generalisation(table, {**SETTINGS, "bootstrap": SHUFFLES}, measures=MEASURES)
    rows = result[result["measure"] == "worst_case_sharpness"].set_index("target")
    assert rows.loc["final_heldout_dice", "tau"] == pytest.approx(-1.0)
    assert rows.loc["gap_loss", "tau"] == pytest.approx(1.0)
    assert rows.loc["final_heldout_dice", "p_holm"] < SETTINGS["alpha"]
    assert rows.loc["final_heldout_dice", "verdict"] == "predicts it: sharper minima go with worse generalisation"
    assert rows.loc["gap_loss", "verdict"] == "predicts it: sharper minima go with worse generalisation"


def test_permuted_heldout_dice_is_called_predictive_in_at_most_alpha_of_permutations():
    # A fixed table in which measures differ between conditions (as architectures do), and
    # held-out Dice and the gap shuffled at random across runs: no measure can predict them.
    rng = np.random.default_rng(0)
    base = null_table()
    permutations, hits = 100, 0
    # statsmodels' Holm runs a full garbage collection on every call: freezing what is alive
    # now keeps each of those from walking every object the test run has made
    gc.freeze()
    try:
        for _ in range(permutations):
            table = base.copy()
            table["final_heldout_dice"] = rng.permutation(base["final_heldout_dice"].to_numpy())
            table["gap_loss"] = rng.permutation(base["gap_loss"].to_numpy())
            result = generalisation(table, {**SETTINGS, "bootstrap": SHUFFLES, "seed": int(rng.integers(1 << 30))},
                                    measures=MEASURES)
            hits += bool(result["verdict"].str.startswith("predicts").any())
    finally:
        gc.unfreeze()
    alpha = SETTINGS["alpha"]
    # family-wise error at most alpha, plus two binomial standard errors of 100 permutations
    assert hits / permutations <= alpha + 2 * math.sqrt(alpha * (1 - alpha) / permutations)


def test_unfinished_runs_are_left_out_and_runs_shared_by_studies_count_once():
    data = runs()
    data.loc[0, "outcome"] = "diverged"
    data.loc[0, "relative_lambda_max"] = 1e9  # would break the perfect ranking if it counted
    table = generalisation(all_runs_table([data, data.iloc[:5]]), SETTINGS)
    row = table[(table["measure"] == "relative_lambda_max") & (table["target"] == "final_heldout_dice")].iloc[0]
    assert row["n"] == len(data) - 1 and row["tau"] == pytest.approx(-1.0)
    assert (table["runs_total"] == len(data)).all()
    text = generalisation_rst(table, "results/tables/generalisation.csv", 0.95)
    assert "``relative_lambda_max``" in text and "Predictive here, after the adjustment" in text
    assert "Against held-out Dice" in text and "Against the generalisation gap" in text
