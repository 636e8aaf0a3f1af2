"""The generalisation study on hand-made runs: which measure predicts held-out Dice."""

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from unetscape.analysis.generalisation import all_runs_table, generalisation, generalisation_rst

SETTINGS = {"level": 0.95, "bootstrap": 500, "seed": 0, "alpha": 0.05}


def runs(n=24, seed=0):
    rng = np.random.default_rng(seed)
    heldout = rng.uniform(0.8, 0.95, n)
    rows = []
    for k in range(n):
        rows.append({
            "run": f"simple/sgd/noise0/seed{k}", "arch": "simple", "optimizer": "sgd" if k % 2 else "sgd_momentum",
            "noise": [0.0, 0.1, 0.2][k % 3], "seed": k, "norm": "none", "skip": "concat", "outcome": "finished",
            "final_heldout_dice": heldout[k], "gap_loss": 0.1 - heldout[k] / 10 + rng.normal(0, 1e-4),
            "top_eigenvalue": 100 * (1 - heldout[k]),  # sharper goes with worse held-out Dice
            "trace": rng.normal(size=1)[0],  # unrelated
        })
    return pd.DataFrame(rows)


def test_a_predictive_measure_ranks_first_and_an_unrelated_one_does_not_predict():
    table = generalisation(runs(), SETTINGS)
    heldout = table[table["target"] == "final_heldout_dice"].set_index("measure")
    assert heldout.loc["top_eigenvalue", "tau"] == pytest.approx(-1.0)
    assert heldout.loc["top_eigenvalue", "rank"] == 1
    assert heldout.loc["top_eigenvalue", "verdict"] == "predicts it: sharper minima go with worse generalisation"
    assert heldout.loc["trace", "verdict"] == "does not predict it here"
    data = runs()
    expected = scipy.stats.kendalltau(data["trace"], data["final_heldout_dice"])
    assert heldout.loc["trace", "tau"] == pytest.approx(expected.statistic)
    gap = table[table["target"] == "gap_loss"].set_index("measure")
    assert gap.loc["top_eigenvalue", "tau"] > 0.9  # sharper, larger gap
    assert set(table["measure"]) == {"top_eigenvalue", "trace"}  # measures not in the table are left out


def test_unfinished_runs_are_left_out_and_runs_shared_by_studies_count_once():
    data = runs()
    data.loc[0, "outcome"] = "diverged"
    data.loc[0, "top_eigenvalue"] = 1e9  # would break the perfect ranking if it counted
    table = generalisation(all_runs_table([data, data.iloc[:5]]), SETTINGS)
    row = table[(table["measure"] == "top_eigenvalue") & (table["target"] == "final_heldout_dice")].iloc[0]
    assert row["n"] == len(data) - 1 and row["tau"] == pytest.approx(-1.0)
    assert (table["runs_total"] == len(data)).all()
    text = generalisation_rst(table, "results/tables/generalisation.csv", 0.95)
    assert "``top_eigenvalue``" in text and "predict held-out Dice here" in text
