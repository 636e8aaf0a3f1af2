"""The findings table: tests, effect sizes and verdicts on hand-made runs."""

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from unetscape.analysis.findings import CLAIMS, claim_verdict, findings_rst, findings_table, hedges_g, holm

SETTINGS = {"level": 0.95, "bootstrap": 2000, "seed": 0, "min_runs": 3, "alpha": 0.05}


def seeds_table(effect: float, n: int = 6, noise_sd: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """Runs of the seeds study; batch norm lowers roughness by `effect`."""
    rng = np.random.default_rng(seed)
    rows = []
    for optimizer in ("sgd", "sgd_momentum"):
        for norm, arch in (("none", "simple"), ("batch", "improved")):
            for s in range(n):
                rows.append({"arch": arch, "optimizer": optimizer, "noise": 0.0, "seed": s, "norm": norm,
                             "skip": "concat", "outcome": "finished",
                             "roughness": 2.0 - (effect if norm == "batch" else 0.0) + rng.normal(0, noise_sd),
                             "nonconvexity": 0.1 + rng.normal(0, 0.01), "top_eigenvalue": 5.0})
    return pd.DataFrame(rows)


def rows_of(findings, claim, metric=None):
    rows = findings[findings["claim"] == claim]
    return rows if metric is None else rows[rows["metric"] == metric]


def test_a_known_effect_is_found_with_welch_and_holm():
    table = seeds_table(effect=0.5)
    findings = findings_table({"seeds": (table, "results/tables/landscape_seeds.csv")}, SETTINGS)
    rough = rows_of(findings, "batchnorm", "roughness")
    assert len(rough) == 2  # one comparison per optimiser
    for _, row in rough.iterrows():
        part = table[table["optimizer"] == row["within"].split("=")[1]]
        a = part[part["norm"] == "none"]["roughness"].to_numpy()
        b = part[part["norm"] == "batch"]["roughness"].to_numpy()
        expected = scipy.stats.ttest_ind(b, a, equal_var=False)
        assert row["p_value"] == pytest.approx(expected.pvalue) and row["statistic"] == pytest.approx(expected.statistic)
        assert row["effect"] == pytest.approx(b.mean() - a.mean())
        assert row["effect_ci_low"] < row["effect"] < row["effect_ci_high"] < 0
        assert row["verdict"] == "supports"
        assert row["source"] == "results/tables/landscape_seeds.csv"
    assert (rows_of(findings, "batchnorm")["claim_verdict"] == "supported").all()
    # Holm over the claim's four comparisons
    claim = rows_of(findings, "batchnorm")
    assert claim["p_holm"].tolist() == pytest.approx(holm(claim["p_value"].tolist()))


def test_no_effect_is_inconclusive_and_the_wrong_sign_contradicts():
    none = findings_table({"seeds": (seeds_table(effect=0.0, seed=3), "t.csv")}, SETTINGS)
    assert set(rows_of(none, "batchnorm", "roughness")["verdict"]) == {"inconclusive"}
    assert rows_of(none, "batchnorm")["claim_verdict"].iloc[0] == "inconclusive at this n"
    wrong = findings_table({"seeds": (seeds_table(effect=-0.5), "t.csv")}, SETTINGS)
    assert set(rows_of(wrong, "batchnorm", "roughness")["verdict"]) == {"contradicts"}
    assert rows_of(wrong, "batchnorm")["claim_verdict"].iloc[0] == "contradicted"


def test_unfinished_runs_are_left_out_and_too_few_runs_are_said():
    table = seeds_table(effect=0.5, n=3)
    table.loc[(table["norm"] == "batch") & (table["seed"] == 0), "outcome"] = "not_converged"
    table.loc[(table["norm"] == "batch") & (table["seed"] == 0), "roughness"] = 100.0  # must not count
    findings = findings_table({"seeds": (table, "t.csv")}, SETTINGS)
    rough = rows_of(findings, "batchnorm", "roughness")
    assert (rough["n_b"] == 2).all() and (rough["mean_b"] < 2).all()
    assert set(rough["verdict"]) == {"too few runs"}


def test_divergence_rate_uses_fisher_exact_and_a_trend_uses_kendall():
    rows = []
    for s in range(8):
        for optimizer, diverged in (("sgd", False), ("sgd_momentum", s < 6)):
            rows.append({"arch": "simple", "optimizer": optimizer, "noise": 0.0, "seed": s, "norm": "none",
                         "skip": "concat", "outcome": "diverged" if diverged else "finished",
                         "roughness": 1.0 + 0.1 * s, "top_eigenvalue": 3.0 + 0.01 * s})
    momentum = pd.DataFrame(rows)
    noise_rows = []
    for noise in (0.0, 0.1, 0.2):
        for s in range(3):
            noise_rows.append({"arch": "simple", "optimizer": "sgd_momentum", "noise": noise, "seed": s,
                               "norm": "none", "skip": "concat", "outcome": "finished",
                               "roughness": 1.0 + 10 * noise + 0.01 * s})
    noise = pd.DataFrame(noise_rows)
    findings = findings_table({"momentum": (momentum, "m.csv"), "noise": (noise, "n.csv")}, SETTINGS)
    rate = rows_of(findings, "momentum", "diverged_rate").iloc[0]
    assert rate["p_value"] == pytest.approx(scipy.stats.fisher_exact([[6, 2], [0, 8]]).pvalue)
    assert rate["mean_a"] == 0 and rate["mean_b"] == pytest.approx(0.75) and rate["verdict"] == "supports"
    trend = rows_of(findings, "noise", "roughness").iloc[0]
    expected = scipy.stats.kendalltau(noise["noise"], noise["roughness"])
    assert trend["statistic"] == pytest.approx(expected.statistic) and trend["p_value"] == pytest.approx(expected.pvalue)
    assert trend["verdict"] == "supports"
    # studies not in the config are reported, not dropped
    assert set(findings[findings["claim"].isin(["batchnorm", "skips"])]["claim_verdict"]) == {"not tested"}


def test_holm_and_hedges_by_hand():
    assert holm([0.01, 0.04, 0.03, math.nan]) == pytest.approx([0.03, 0.06, 0.06, math.nan], nan_ok=True)
    a, b = np.array([1.0, 2.0, 3.0]), np.array([3.0, 4.0, 5.0])
    # pooled sd 1, difference 2, correction 1 - 3 / (4 * 6 - 9)
    assert hedges_g(a, b) == pytest.approx(2 * (1 - 3 / 15))
    assert claim_verdict(["supports", "inconclusive"]) == "supported"
    assert claim_verdict(["supports", "contradicts"]) == "inconclusive at this n"


def test_front_page_text_states_each_claim_and_its_verdict():
    findings = findings_table({"seeds": (seeds_table(effect=0.5), "results/tables/landscape_seeds.csv")}, SETTINGS)
    text = findings_rst(findings, "results/tables/findings.csv")
    for claim in CLAIMS:
        assert claim.text in text
    assert "*supported*" in text and "*not tested*" in text and "results/tables/findings.csv" in text
