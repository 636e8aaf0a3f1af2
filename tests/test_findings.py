"""The findings: tests, equivalence, power and verdicts, on hand-made runs and hand-worked numbers."""

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from unetscape.analysis.findings import (
    CLAIMS,
    claim_verdict,
    claims_table,
    findings_rst,
    findings_table,
    hedges_g,
    holm,
    part_verdict,
    seeds_for_power,
    welch_df,
    welch_tost,
)

SETTINGS = {"level": 0.95, "bootstrap": 2000, "seed": 0, "min_runs": 3, "alpha": 0.05, "power": 0.8,
            "equivalence": {"relative": 0.25, "absolute": {"unstable_rate": 0.25, "largest_rise": 0.02}}}


def seeds_table(effect: float, n: int = 6, noise_sd: float = 0.1, seed: int = 0, convex_effect: float = 0.0,
                stable_effect: float = 0.0) -> pd.DataFrame:
    """Runs of the seeds study: batch norm lowers roughness by `effect`, relative non-convexity
    by `convex_effect` and the stability numbers by `stable_effect` (x their level)."""
    rng = np.random.default_rng(seed)
    rows = []
    for optimizer in ("sgd", "sgd_momentum"):
        for norm, arch in (("none", "simple"), ("batch", "improved")):
            bn = norm == "batch"
            for s in range(n):
                rows.append({"arch": arch, "optimizer": optimizer, "noise": 0.0, "seed": s, "norm": norm,
                             "skip": "concat", "outcome": "finished",
                             "roughness": 2.0 - (effect if bn else 0.0) + rng.normal(0, noise_sd),
                             "relative_nonconvexity": 0.3 - (convex_effect if bn else 0.0) + rng.normal(0, 0.01),
                             "largest_rise": 0.1 * (1 - (stable_effect if bn else 0)) + rng.normal(0, 0.005),
                             "step_volatility": 0.2 * (1 - (stable_effect if bn else 0)) + rng.normal(0, 0.005),
                             "relative_lambda_max": 5.0})
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
        assert row["decision"] == "different" and row["verdict"] == "supports"
        assert math.isnan(row["seeds_needed"])  # decided: no plan needed
        assert row["source"] == "results/tables/landscape_seeds.csv"
    assert (rough["part_verdict"] == "supported").all()
    # the other parts are not shown by these runs: the claim is only partly supported
    assert rows_of(findings, "batchnorm")["claim_verdict"].iloc[0] == "partly supported"


def test_holm_within_a_claim_by_hand():
    # Four p-values: Holm multiplies the k-th smallest by (m - k + 1) and keeps them monotone.
    assert holm([0.01, 0.04, 0.03, math.nan]) == pytest.approx([0.03, 0.06, 0.06, math.nan], nan_ok=True)
    assert holm([0.001, 0.2, 0.012, 0.04]) == pytest.approx([0.004, 0.2, 0.036, 0.08])
    table = seeds_table(effect=0.5, convex_effect=0.05, stable_effect=0.5)
    findings = findings_table({"seeds": (table, "t.csv")}, SETTINGS)
    claim = rows_of(findings, "batchnorm")
    p = claim["p_value"].to_numpy()
    m = int(np.isfinite(p).sum())
    assert m == 10  # 2 optimisers x (roughness, non-convexity, 2 stability numbers, rate)
    # by hand: the smallest p times m, the largest adjusted value no smaller than the others
    order = np.argsort(p)
    running = 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[k]))
        assert claim["p_holm"].iloc[k] == pytest.approx(running)
    assert np.allclose(claim["alpha_family"], 0.05 / m)


def test_claim_and_part_rules_on_hand_made_parts():
    # all parts supported; one of two; one contradicted; all without effect
    assert claim_verdict(["supported", "supported"]) == "supported"
    assert claim_verdict(["supported", "inconclusive at this n"]) == "partly supported"
    assert claim_verdict(["partly supported", "no effect"]) == "partly supported"
    assert claim_verdict(["supported", "contradicted"]) == "contradicted"
    assert claim_verdict(["no effect", "no effect"]) == "no effect"
    assert claim_verdict(["no effect", "inconclusive at this n"]) == "inconclusive at this n"
    # a part: supported needs a supporting comparison in every stratum
    def row(stratum, verdict):
        return {"_stratum": stratum, "verdict": verdict}
    assert part_verdict([row("sgd", "supports"), row("momentum", "supports")]) == "supported"
    assert part_verdict([row("sgd", "supports"), row("momentum", "inconclusive")]) == "partly supported"
    assert part_verdict([row("sgd", "supports"), row("momentum", "contradicts")]) == "contradicted"
    assert part_verdict([row("sgd", "equivalent"), row("momentum", "equivalent")]) == "no effect"
    assert part_verdict([row("sgd", "equivalent"), row("momentum", "inconclusive")]) == "inconclusive at this n"
    assert part_verdict([]) == "not tested"


def test_wrong_sign_contradicts_and_an_absent_effect_is_equivalent_with_enough_runs():
    wrong = findings_table({"seeds": (seeds_table(effect=-0.5), "t.csv")}, SETTINGS)
    assert set(rows_of(wrong, "batchnorm", "roughness")["verdict"]) == {"contradicts"}
    assert rows_of(wrong, "batchnorm")["claim_verdict"].iloc[0] == "contradicted"
    # no effect at all, 30 runs per group with little spread: equivalent within +-25% of the mean
    none = findings_table({"seeds": (seeds_table(effect=0.0, n=30, seed=3), "t.csv")}, SETTINGS)
    rough = rows_of(none, "batchnorm", "roughness")
    assert set(rough["decision"]) == {"equivalent"}
    assert np.allclose(rough["equivalence_margin"], 0.25 * rough["mean_a"])  # +-25% of the reference mean
    assert (rough["part_verdict"] == "no effect").all()


def test_an_undecided_comparison_says_how_many_seeds_would_decide_it():
    table = seeds_table(effect=0.05, n=3, noise_sd=0.6, seed=1)
    findings = findings_table({"seeds": (table, "t.csv")}, SETTINGS)
    rough = rows_of(findings, "batchnorm", "roughness")
    assert set(rough["decision"]) == {"inconclusive"}
    for _, row in rough.iterrows():
        g = row["standardised_effect"]
        optimizer = row["within"].split("=")[1]
        a, b = (table.loc[(table["optimizer"] == optimizer) & (table["norm"] == norm), "roughness"]
                for norm in ("none", "batch"))
        expected = seeds_for_power(g, row["alpha_family"], 0.8, (a.var(ddof=1), b.var(ddof=1)))
        assert row["seeds_needed"] == expected and row["seeds_needed"] > 3
        # Welch's degrees of freedom are at most the pooled test's: never fewer seeds than it says
        assert row["seeds_needed"] >= seeds_for_power(g, row["alpha_family"], 0.8)
        assert row["seeds_needed_margin"] >= 2
    claims = claims_table(findings)
    smooth = claims[(claims["claim"] == "batchnorm") & (claims["part"] == "smoother")].iloc[0]
    assert smooth["part_verdict"] == "inconclusive at this n"
    assert smooth["seeds_needed"] == rough["seeds_needed"].min()


def test_tost_against_a_hand_worked_example_and_scipy_one_sided_tests():
    a = np.array([10.0, 11.0, 9.0, 10.5, 9.5])
    b = np.array([10.2, 10.8, 9.9, 10.1, 10.4])
    margin = 1.0
    # by hand: Welch standard error and degrees of freedom, then the two one-sided t statistics
    va, vb = a.var(ddof=1) / 5, b.var(ddof=1) / 5
    se = math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / 4 + vb**2 / 4)
    diff = b.mean() - a.mean()
    p_lower = scipy.stats.t.sf((diff + margin) / se, dof)
    p_upper = scipy.stats.t.cdf((diff - margin) / se, dof)
    assert welch_tost(a, b, margin) == pytest.approx(max(p_lower, p_upper), rel=1e-9)
    # the same as SciPy's one-sided Welch tests of b + margin > a and b - margin < a
    lower = scipy.stats.ttest_ind(b + margin, a, equal_var=False, alternative="greater").pvalue
    upper = scipy.stats.ttest_ind(b - margin, a, equal_var=False, alternative="less").pvalue
    assert welch_tost(a, b, margin) == pytest.approx(max(lower, upper), rel=1e-9)
    assert welch_tost(a, b, 0.1) > 0.05 > welch_tost(a, b, 2.0)  # a narrow margin cannot be shown
    assert math.isnan(welch_tost(a[:1], b, margin)) and math.isnan(welch_tost(a, b, 0.0))


def test_power_against_the_textbook_value_and_a_simulation():
    # Cohen (1988): d = 0.8 at alpha 0.05 (two-sided) and 80% power needs 26 per group
    assert seeds_for_power(0.8, 0.05, 0.8) == 26
    assert seeds_for_power(0.5, 0.05, 0.8) == 64
    assert seeds_for_power(0.0, 0.05, 0.8) == math.inf
    # a simulation of Welch's test at that n: power close to 0.8
    rng = np.random.default_rng(0)
    hits = sum(
        scipy.stats.ttest_ind(rng.normal(0.8, 1, 26), rng.normal(0, 1, 26), equal_var=False).pvalue < 0.05
        for _ in range(2000)
    )
    assert 0.76 < hits / 2000 < 0.84
    # fewer seeds at a stricter alpha is impossible
    assert seeds_for_power(0.8, 0.005, 0.8) > 26


def test_power_of_welchs_test_follows_its_degrees_of_freedom():
    # hand-worked: n = 3, variances 1 and 4: 2 * 25 / 17 = 2.94 degrees of freedom, not 4
    assert welch_df(3, 1.0, 4.0) == pytest.approx(50 / 17)
    assert welch_df(3, 2.0, 2.0) == 4 and welch_df(3, 0.0, 2.0) == 2
    # equal spreads: Welch's degrees of freedom are the pooled test's, and so is the plan
    assert seeds_for_power(0.8, 0.05, 0.8, (1.0, 1.0)) == 26
    # spreads 0.005 and 0.013 (ratio of variances 7.5) and a huge effect at a strict alpha: the
    # pooled test's 2n - 2 degrees of freedom say 3 runs suffice, Welch's about 2.5 say more
    sd_a, sd_b, alpha = 0.0047, 0.013, 0.0025
    g = 0.08 / math.sqrt((sd_a**2 + sd_b**2) / 2) * (1 - 3 / (4 * 6 - 9))  # Hedges' g of 3 + 3 runs
    assert seeds_for_power(g, alpha, 0.8) == 3
    n = seeds_for_power(g, alpha, 0.8, (sd_a**2, sd_b**2))
    assert n > 3
    # a simulation of Welch's test agrees: below 80% power at 3 runs, at least 80% at n
    rng = np.random.default_rng(1)

    def simulated_power(k, trials=4000):
        a = rng.normal(0.21, sd_a, (trials, k))
        b = rng.normal(0.29, sd_b, (trials, k))
        return (scipy.stats.ttest_ind(b, a, axis=1, equal_var=False).pvalue < alpha).mean()

    assert simulated_power(3) < 0.75
    assert simulated_power(int(n)) > 0.78


def test_unfinished_runs_are_left_out_of_landscape_numbers_and_too_few_runs_are_said():
    table = seeds_table(effect=0.5, n=3)
    table.loc[(table["norm"] == "batch") & (table["seed"] == 0), "outcome"] = "not_converged"
    table.loc[(table["norm"] == "batch") & (table["seed"] == 0), "roughness"] = 100.0  # must not count
    findings = findings_table({"seeds": (table, "t.csv")}, SETTINGS)
    rough = rows_of(findings, "batchnorm", "roughness")
    assert (rough["n_b"] == 2).all() and (rough["mean_b"] < 2).all()
    assert set(rough["verdict"]) == {"too few runs"}
    # stability numbers count every run, the unfinished one too
    volatility = rows_of(findings, "batchnorm", "step_volatility")
    assert (volatility["n_b"] == 3).all()


def momentum_table(unstable_with_momentum: int, n: int = 8) -> pd.DataFrame:
    rows = []
    for s in range(n):
        for optimizer, unstable in (("sgd", False), ("sgd_momentum", s < unstable_with_momentum)):
            rows.append({"arch": "simple", "optimizer": optimizer, "noise": 0.0, "seed": s, "norm": "none",
                         "skip": "concat", "outcome": ("diverged" if s == 0 else "unstable") if unstable else "finished",
                         "roughness": 1.0 + 0.1 * s, "relative_lambda_max": 3.0 + 0.01 * s,
                         "largest_rise": 0.01 * s, "step_volatility": 0.1 + 0.001 * s})
    return pd.DataFrame(rows)


def test_rate_of_unstable_or_diverged_runs_uses_fisher_exact_and_a_trend_uses_kendall():
    momentum = momentum_table(6)
    noise_rows = []
    for noise in (0.0, 0.1, 0.2):
        for s in range(3):
            noise_rows.append({"arch": "simple", "optimizer": "sgd_momentum", "noise": noise, "seed": s,
                               "norm": "none", "skip": "concat", "outcome": "finished",
                               "roughness": 1.0 + 10 * noise + 0.01 * s})
    noise = pd.DataFrame(noise_rows)
    findings = findings_table({"momentum": (momentum, "m.csv"), "noise": (noise, "n.csv")}, SETTINGS)
    rate = rows_of(findings, "momentum", "unstable_rate").iloc[0]
    # 6 of 8 with momentum (one diverged, five unstable) against 0 of 8
    assert rate["p_value"] == pytest.approx(scipy.stats.fisher_exact([[6, 2], [0, 8]]).pvalue)
    assert rate["mean_a"] == 0 and rate["mean_b"] == pytest.approx(0.75)
    assert -1 <= rate["effect_ci_low"] < 0.75 < rate["effect_ci_high"] <= 1
    trend = rows_of(findings, "noise", "roughness").iloc[0]
    expected = scipy.stats.kendalltau(noise["noise"], noise["roughness"])
    assert trend["statistic"] == pytest.approx(expected.statistic) and trend["p_value"] == pytest.approx(expected.pvalue)
    assert trend["verdict"] == "supports" and trend["part_verdict"] == "supported"
    # studies not in the config are reported, not dropped
    assert set(findings[findings["claim"].isin(["batchnorm", "skips"])]["claim_verdict"]) == {"not tested"}


def test_rates_with_few_runs_are_too_few_and_not_guessed():
    momentum = momentum_table(2, n=2)
    findings = findings_table({"momentum": (momentum, "m.csv")}, SETTINGS)
    rate = rows_of(findings, "momentum", "unstable_rate").iloc[0]
    assert rate["n_a"] == rate["n_b"] == 2
    assert rate["p_value"] == pytest.approx(scipy.stats.fisher_exact([[2, 0], [0, 2]]).pvalue)
    assert rate["verdict"] == "too few runs" and rate["seeds_needed"] >= 2


def skips_table(shift: float, n: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = []
    for norm in ("none", "batch"):
        for skip in ("concat", "add", "none"):
            for s in range(n):
                rows.append({"arch": f"{norm}_{skip}", "optimizer": "sgd_momentum", "noise": 0.0, "seed": s,
                             "norm": norm, "skip": skip, "outcome": "finished",
                             "roughness": 1.0 + (shift if skip == "none" else 0.0) + rng.normal(0, 0.02),
                             "relative_lambda_max": 2.0 + rng.normal(0, 0.5),
                             "largest_rise": abs(rng.normal(0, 0.01)), "step_volatility": 0.1 + rng.normal(0, 0.01)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("shift", [0.5, -0.5])
def test_two_sided_skips_comparisons_support_a_change_in_either_direction(shift):
    findings = findings_table({"skips": (skips_table(shift), "s.csv")}, SETTINGS)
    rough = rows_of(findings, "skips", "roughness")
    assert len(rough) == 4  # (concat, add) x (none, batch)
    assert set(rough["claimed"]) == {"b != a"}
    assert set(rough["verdict"]) == {"supports"}  # concat/add differ from none, whichever way
    assert (np.sign(rough["effect"]) == -np.sign(shift)).all()
    assert (rough["part_verdict"] == "supported").all()


def test_front_page_text_states_the_rule_each_claim_its_parts_and_a_plan():
    findings = findings_table({"seeds": (seeds_table(effect=0.5), "results/tables/landscape_seeds.csv")}, SETTINGS)
    claims = claims_table(findings)
    text = findings_rst(findings, claims, "results/tables/findings.csv", "results/tables/claims.csv", SETTINGS)
    for claim in CLAIMS:
        assert claim.text in text
    for part in CLAIMS[0].parts:
        assert part.text in text
    assert "*partly supported*" in text and "*not tested*" in text and "results/tables/claims.csv" in text
    assert "supported only when every part is" in text  # the rule
    assert "seeds per condition" in text  # the plan for the undecided parts


def test_hedges_g_by_hand():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([3.0, 4.0, 5.0])
    # pooled sd 1, difference 2, correction 1 - 3 / (4 * 6 - 9)
    assert hedges_g(a, b) == pytest.approx(2 * (1 - 3 / 15))
