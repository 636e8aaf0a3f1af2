"""The findings: tests, equivalence, power and verdicts, on hand-made runs and hand-worked numbers."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import scipy.optimize
import scipy.special
import scipy.stats

from unetscape.analysis import dose_response, seeds_needed
from unetscape.analysis.claims import CLAIMS, DEFAULT_MARGINS, parse_claims
from unetscape.analysis.findings import (
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
from unetscape.analysis.glossary import GLOSSARY

MARGINS = dict(DEFAULT_MARGINS)
SETTINGS = {"level": 0.95, "bootstrap": 200, "seed": 0, "min_runs": 3, "alpha": 0.05, "power": 0.8,
            "equivalence": MARGINS, "simulations": 40}


def seeds_table(effect=0.0, n=6, sd=0.1, seed=0, convex_effect=0.0, rise_effect=0.0, volatility_effect=0.0):
    """Runs of the seeds study: batch norm lowers roughness by `effect`, relative non-convexity by
    `convex_effect`, the probe's largest rise by `rise_effect` and its volatility by
    `volatility_effect`."""
    rng = np.random.default_rng(seed)
    rows = []
    for optimizer in ("sgd", "sgd_momentum"):
        for norm, arch in (("none", "simple"), ("batch", "improved")):
            bn = norm == "batch"
            for s in range(n):
                rows.append({"run": f"{arch}/{optimizer}/noise0/seed{s}", "arch": arch, "optimizer": optimizer,
                             "noise": 0.0, "seed": s, "norm": norm, "skip": "concat", "outcome": "finished",
                             "roughness": 4.0 - effect * bn + rng.normal(0, sd),
                             "relative_nonconvexity": 0.3 - convex_effect * bn + rng.normal(0, 0.01),
                             "probe_largest_rise": 0.1 - rise_effect * bn + rng.normal(0, 0.005),
                             "probe_volatility": 0.2 - volatility_effect * bn + rng.normal(0, 0.005),
                             "relative_lambda_max": 5.0 + rng.normal(0, 0.1)})
    return pd.DataFrame(rows)


def rows_of(findings, claim, metric=None, role=None):
    rows = findings[findings["claim"] == claim]
    if metric is not None:
        rows = rows[rows["metric"] == metric]
    return rows if role is None else rows[rows["role"] == role]


def groups(table, stratum, column="optimizer", factor="norm", levels=("none", "batch"), measure="roughness"):
    part = table[table[column] == stratum.split("=")[1]]
    return [part.loc[part[factor] == level, measure].to_numpy() for level in levels]


def welch_by_hand(a, b, level):
    """Welch's difference, standard error, degrees of freedom and interval, by the formulas."""
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    diff = b.mean() - a.mean()
    half = scipy.stats.t.ppf(0.5 + level / 2, dof) * se
    return diff, se, dof, (diff - half, diff + half)


# --- tests of means, Holm's families, intervals -------------------------------------------------


def test_a_known_effect_is_found_with_welch_holm_and_a_bonferroni_interval():
    table = seeds_table(effect=1.5)  # beyond the margin (1)
    findings = findings_table({"seeds": (table, "results/tables/landscape_seeds.csv")}, SETTINGS)
    rough = rows_of(findings, "batchnorm", "roughness", "primary")
    assert len(rough) == 2  # one comparison per optimiser
    m = 6  # 3 parts x 2 optimisers: the claim's primary comparisons
    for _, row in rough.iterrows():
        a, b = groups(table, row["within"])
        expected = scipy.stats.ttest_ind(b, a, equal_var=False)
        assert row["p_value"] == pytest.approx(expected.pvalue)
        assert row["statistic"] == pytest.approx(expected.statistic)
        diff, _, _, (low, high) = welch_by_hand(a, b, 1 - 0.05 / m)
        assert row["effect"] == pytest.approx(diff)
        assert row["ci_level"] == pytest.approx(1 - 0.05 / m)
        assert (row["effect_ci_low"], row["effect_ci_high"]) == pytest.approx((low, high))
        assert row["effect_ci_high"] < 0  # excludes 0: p < alpha / m, so Holm's p < alpha
        assert row["decision"] == "different" and row["verdict"] == "supports"
        assert math.isnan(row["seeds_needed"])  # decided: no plan needed
        assert row["source"] == "results/tables/landscape_seeds.csv"
    assert (rough["part_verdict"] == "supported").all()


def test_holm_by_hand_over_the_primary_comparisons_only():
    # Four p-values: Holm multiplies the k-th smallest by (m - k + 1) and keeps them monotone.
    assert holm([0.01, 0.04, 0.03, math.nan]) == pytest.approx([0.03, 0.06, 0.06, math.nan], nan_ok=True)
    assert holm([0.001, 0.2, 0.012, 0.04]) == pytest.approx([0.004, 0.2, 0.036, 0.08])
    table = seeds_table(effect=0.5, convex_effect=0.05, rise_effect=0.05, volatility_effect=0.1)
    findings = findings_table({"seeds": (table, "t.csv")}, SETTINGS)
    claim = rows_of(findings, "batchnorm")
    primary = claim[claim["role"] == "primary"]
    p = primary["p_value"].to_numpy()
    assert len(p) == 6 and np.isfinite(p).all()  # the secondary probe volatility is not in the family
    order = np.argsort(p)
    running = 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (6 - rank) * p[k]))
        assert primary["p_holm"].iloc[k] == pytest.approx(running)
    assert np.allclose(primary["alpha_family"], 0.05 / 6)
    # the secondary measures are a family of their own: the probe's volatility and the share of
    # failed runs, 2 comparisons each
    secondary = claim[(claim["role"] == "secondary") & claim["p_value"].notna()]
    assert set(secondary["metric"]) == {"probe_volatility", "failed"}
    assert np.allclose(secondary["alpha_family"], 0.05 / 4)


def test_an_interval_that_excludes_zero_always_goes_with_a_difference():
    for seed, effect in itertools.product(range(3), (0.0, 0.15, 0.3)):
        table = seeds_table(effect=effect, n=4, sd=0.15, seed=seed, convex_effect=effect / 10)
        findings = findings_table({"seeds": (table, "t.csv")}, SETTINGS)
        primary = findings[(findings["role"] == "primary") & findings["effect_ci_low"].notna()]
        excludes = (primary["effect_ci_low"] > 0) | (primary["effect_ci_high"] < 0)
        assert primary.loc[excludes, "decision"].isin(["different", "negligible"]).all()


# --- issue: one primary measure per part ---------------------------------------------------------


def test_one_primary_measure_decides_a_part_and_the_secondary_ones_do_not():
    # the probe's volatility halves with batch norm (secondary); its largest rise, the primary
    # measure, does not move: the part stays undecided whatever the volatility shows
    table = seeds_table(effect=0.5, volatility_effect=0.1, n=6)
    findings = findings_table({"seeds": (table, "t.csv")}, SETTINGS)
    volatility = rows_of(findings, "batchnorm", "probe_volatility")
    assert set(volatility["decision"]) == {"different"} and set(volatility["role"]) == {"secondary"}
    stable = rows_of(findings, "batchnorm", "probe_largest_rise", "primary")
    assert not (stable["verdict"] == "supports").any()
    assert set(rows_of(findings, "batchnorm").query("part == 'more_stable'")["part_verdict"]) != {"supported"}
    claims = claims_table(findings)
    more_stable = claims[claims["part"] == "more_stable"]
    assert set(more_stable["metric"]) == {"probe_largest_rise"} and len(more_stable) == 2  # one row per stratum
    # a secondary measure missing from the table is skipped, and the findings say so
    missing = rows_of(findings, "batchnorm", "probe_rises")
    assert missing["verdict"].iloc[0] == "not in the runs table of study 'seeds' (no column 'probe_rises')"


# --- issue: a part never tested keeps a claim from "supported" ----------------------------------


def test_a_claim_with_a_part_never_tested_is_not_supported():
    table = seeds_table(effect=1.0, convex_effect=0.1, n=6).drop(columns="probe_largest_rise")
    findings = findings_table({"seeds": (table, "t.csv")}, SETTINGS)
    claim = rows_of(findings, "batchnorm")
    parts = claim.drop_duplicates("part").set_index("part")["part_verdict"]
    assert parts["smoother"] == "supported" and parts["more_convex"] == "supported"
    assert parts["more_stable"] == "not tested"
    assert set(claim["claim_verdict"]) == {"partly supported"}
    assert set(claim["claim_summary"]) == {
        "partly supported: smoother -- supported; more convex -- supported; more stable -- not tested"}
    assert claim_verdict(["supported", "supported", "not tested"]) == "partly supported"
    assert claim_verdict(["supported", "supported"]) == "supported"


def test_claim_and_part_rules_on_hand_made_parts():
    assert claim_verdict(["supported", "inconclusive at this n"]) == "partly supported"
    assert claim_verdict(["partly supported", "no effect"]) == "partly supported"
    assert claim_verdict(["supported", "contradicted"]) == "contradicted"
    assert claim_verdict(["no effect", "no effect"]) == "no effect"
    assert claim_verdict(["no effect", "not tested"]) == "inconclusive at this n"
    assert claim_verdict(["not tested", "not tested"]) == "not tested"

    def row(verdict):
        return {"verdict": verdict}

    assert part_verdict([row("supports"), row("supports")]) == "supported"
    assert part_verdict([row("supports"), row("inconclusive")]) == "partly supported"
    assert part_verdict([row("supports"), row("contradicts")]) == "contradicted"
    assert part_verdict([row("equivalent"), row("negligible")]) == "no effect"
    assert part_verdict([row("supports"), row("negligible")]) == "partly supported"
    assert part_verdict([row("equivalent"), row("inconclusive")]) == "inconclusive at this n"
    assert part_verdict([row("too few runs")] * 2) == "too few runs"
    assert part_verdict([]) == "not tested"


# --- issue: a precise small effect is negligible, not support -----------------------------------


def test_a_significant_difference_within_the_margin_is_negligible_and_not_support():
    # roughness 0.05 lower with batch norm, spread 0.01, 10 runs per group: clearly different,
    # and clearly within +-1 (the margin)
    table = seeds_table(effect=0.05, n=10, sd=0.01, seed=2)
    findings = findings_table({"seeds": (table, "t.csv")}, SETTINGS)
    rough = rows_of(findings, "batchnorm", "roughness", "primary")
    assert (rough["p_holm"] < 0.05).all() and (rough["p_equivalence_holm"] < 0.05).all()
    assert set(rough["decision"]) == {"negligible"} and set(rough["verdict"]) == {"negligible"}
    assert set(rough["part_verdict"]) == {"no effect"}
    assert rows_of(findings, "batchnorm")["claim_verdict"].iloc[0] != "supported"


# --- issue: fixed margins ------------------------------------------------------------------------


def test_margins_are_fixed_numbers_from_the_settings_not_the_sample():
    margins = {**MARGINS, "roughness": 0.3}
    settings = {**SETTINGS, "equivalence": margins}
    low = seeds_table(effect=0.0, n=8, seed=4)
    high = low.assign(roughness=low["roughness"] + 10.0)  # a larger reference mean: the same margin
    for table in (low, high):
        rough = rows_of(findings_table({"seeds": (table, "t.csv")}, settings), "batchnorm", "roughness", "primary")
        assert (rough["equivalence_margin"] == 0.3).all()
        for _, row in rough.iterrows():
            a, b = groups(table, row["within"])
            diff, se, dof, _ = welch_by_hand(a, b, 0.95)
            # TOST by hand: the larger of the two one-sided Welch p-values against +-0.3
            expected = max(scipy.stats.t.sf((diff + 0.3) / se, dof), scipy.stats.t.cdf((diff - 0.3) / se, dof))
            assert row["p_equivalence"] == pytest.approx(expected, rel=1e-9)
    without = {k: v for k, v in MARGINS.items() if k != "roughness"}
    with pytest.raises(ValueError, match=r"metrics\.equivalence\.roughness: missing.*claims\.batchnorm\.smoother"):
        findings_table({"seeds": (low, "t.csv")}, {**SETTINGS, "equivalence": without})
    with pytest.raises(ValueError, match=r"metrics\.equivalence: give each measure an absolute margin"):
        findings_table({"seeds": (low, "t.csv")}, {**SETTINGS, "equivalence": {"relative": 0.25}})
    with pytest.raises(ValueError, match=r"metrics\.equivalence\.roughness: must be a positive number"):
        findings_table({"seeds": (low, "t.csv")}, {**SETTINGS, "equivalence": {**MARGINS, "roughness": -1}})


def test_tost_against_a_hand_worked_example_and_scipy_one_sided_tests():
    a = np.array([10.0, 11.0, 9.0, 10.5, 9.5])
    b = np.array([10.2, 10.8, 9.9, 10.1, 10.4])
    margin = 1.0
    diff, se, dof, _ = welch_by_hand(a, b, 0.95)
    p_lower = scipy.stats.t.sf((diff + margin) / se, dof)
    p_upper = scipy.stats.t.cdf((diff - margin) / se, dof)
    assert welch_tost(a, b, margin) == pytest.approx(max(p_lower, p_upper), rel=1e-9)
    lower = scipy.stats.ttest_ind(b + margin, a, equal_var=False, alternative="greater").pvalue
    upper = scipy.stats.ttest_ind(b - margin, a, equal_var=False, alternative="less").pvalue
    assert welch_tost(a, b, margin) == pytest.approx(max(lower, upper), rel=1e-9)
    assert welch_tost(a, b, 0.1) > 0.05 > welch_tost(a, b, 2.0)  # a narrow margin cannot be shown
    assert math.isnan(welch_tost(a[:1], b, margin)) and math.isnan(welch_tost(a, b, 0.0))


# --- issue: rates --------------------------------------------------------------------------------


def failing_table(failed_none, failed_batch, n):
    """The seeds study where `failed_*` of each optimiser's n runs without / with batch norm failed."""
    table = seeds_table(n=n, seed=6)
    for norm, count in (("none", failed_none), ("batch", failed_batch)):
        for optimizer in ("sgd", "sgd_momentum"):
            failing = (table["norm"] == norm) & (table["optimizer"] == optimizer) & (table["seed"] < count)
            table.loc[failing, "outcome"] = "unstable"
    return table


def agresti_caffo_tost(k_a, n_a, k_b, n_b, margin):
    """By hand: one failure and one success added to each group, then two one-sided z-tests."""
    pa, pb = (k_a + 1) / (n_a + 2), (k_b + 1) / (n_b + 2)
    se = math.sqrt(pa * (1 - pa) / (n_a + 2) + pb * (1 - pb) / (n_b + 2))
    d = pb - pa
    return max(scipy.stats.norm.sf((d + margin) / se), scipy.stats.norm.cdf((d - margin) / se))


@pytest.mark.parametrize("failed_none", [0, 5])
def test_rate_equivalence_reads_the_p_value_not_the_z_statistic(failed_none):
    # 0 of 5 against 0 of 5: p = 0.091 (the statistic is 1.34); all 5 plain runs unstable against
    # none with batch norm: p = 0.99, nowhere near "equivalent" (the statistic is negative)
    findings = findings_table({"seeds": (failing_table(failed_none, 0, 5), "t.csv")}, SETTINGS)
    rate = rows_of(findings, "batchnorm", "failed").iloc[0]
    expected = agresti_caffo_tost(failed_none, 5, 0, 5, 0.25)
    assert rate["p_equivalence"] == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(0.0907 if failed_none == 0 else 0.9935, abs=1e-4)
    assert 0 <= rate["p_equivalence_holm"] <= 1 and rate["decision"] != "equivalent"
    assert rate["p_value"] == pytest.approx(scipy.stats.fisher_exact([[0, 5], [failed_none, 5 - failed_none]]).pvalue)


def test_every_outcomes_fisher_and_tost_p_values_match_scipy_and_statsmodels():
    from statsmodels.stats.proportion import tost_proportions_2indep

    for n_a, n_b in ((3, 3), (5, 4)):
        fisher = seeds_needed.fisher_p_values(n_a, n_b)
        tost = seeds_needed.tost_rate_p_values(n_a, n_b, 0.25)
        for k_a, k_b in itertools.product(range(n_a + 1), range(n_b + 1)):
            expected = scipy.stats.fisher_exact([[k_b, n_b - k_b], [k_a, n_a - k_a]]).pvalue
            assert fisher[k_a, k_b] == pytest.approx(expected, rel=1e-9)
            with np.errstate(all="ignore"):
                reference = tost_proportions_2indep(k_b, n_b, k_a, n_a, -0.25, 0.25, method="agresti-caffo",
                                                    compare="diff").pvalue
            assert tost[k_a, k_b] == pytest.approx(reference, rel=1e-9)
    # the smallest p Fisher's test can give: 2 / C(10, 5) at 5 + 5, 2 / C(6, 3) at 3 + 3
    assert seeds_needed.smallest_p(5, 5) == pytest.approx(2 / 252)
    assert seeds_needed.smallest_p(3, 3) == pytest.approx(2 / 20)


def test_a_rate_that_cannot_reach_alpha_at_this_n_is_secondary_and_the_plan_says_what_it_needs():
    claims = parse_claims({"batchnorm": {"more_stable": {"measure": "failed", "direction": "less"}}})
    # 4 runs per group: Fisher's smallest p is 2 / C(8, 4) = 0.029, above alpha / m = 0.05 / 6
    # whatever happens (2 of 4 plain runs fail here, none with batch norm)
    findings = findings_table({"seeds": (failing_table(2, 0, 4), "t.csv")}, SETTINGS, claims)
    rate = rows_of(findings, "batchnorm", "failed")
    assert len(rate) == 2 and np.allclose(rate["p_smallest"], 2 / 70)
    assert set(rate["role"]) == {"secondary"} and set(rate["decision"]) == {"cannot reach alpha at this n"}
    assert set(rate["part_verdict"]) == {"inconclusive at this n"}
    # the family is the other 4 primary comparisons
    others = rows_of(findings, "batchnorm", role="primary")
    assert len(others) == 4 and np.allclose(others["alpha_family"], 0.05 / 4)
    # runs that would decide it, at the family's threshold: exact power by a slow enumeration
    row = rate.iloc[0]
    n = int(row["seeds_needed"])
    assert n == row["seeds_needed_difference"]  # 0.5 against 0: beyond the margin, only a difference decides

    def fisher_power(n):
        chances = 0.0
        for k_a, k_b in itertools.product(range(n + 1), repeat=2):
            p = scipy.stats.fisher_exact([[k_b, n - k_b], [k_a, n - k_a]]).pvalue
            if p < row["alpha_family"]:
                chances += scipy.stats.binom.pmf(k_a, n, 0.5) * scipy.stats.binom.pmf(k_b, n, 0.0)
        return chances

    assert fisher_power(n) >= 0.8 and fisher_power(n - 1) < 0.8
    assert set(rate["part_seeds_needed"]) == {n}
    # 5 runs per group: 2 / C(10, 5) = 0.0079 < 0.05 / 6: the rate can decide, and stays primary
    findings = findings_table({"seeds": (failing_table(3, 0, 5), "t.csv")}, SETTINGS, claims)
    rate = rows_of(findings, "batchnorm", "failed")
    assert set(rate["role"]) == {"primary"} and np.allclose(rate["p_smallest"], 2 / 252)
    assert np.allclose(rate["alpha_family"], 0.05 / 6)
    assert np.allclose(rate["p_value"], scipy.stats.fisher_exact([[0, 5], [3, 2]]).pvalue)


def test_exact_rate_power_against_a_slow_loop():
    for n, (pa, pb), margin in ((4, (0.1, 0.7), None), (6, (0.2, 0.25), 0.3)):
        slow = 0.0
        for k_a, k_b in itertools.product(range(n + 1), repeat=2):
            if margin is None:
                p = scipy.stats.fisher_exact([[k_b, n - k_b], [k_a, n - k_a]]).pvalue
            else:
                p = agresti_caffo_tost(k_a, n, k_b, n, margin)
            slow += (p < 0.05) * scipy.stats.binom.pmf(k_a, n, pa) * scipy.stats.binom.pmf(k_b, n, pb)
        assert seeds_needed.rate_power(pa, pb, n, 0.05, margin) == pytest.approx(slow, rel=1e-9)


# --- issue: unconverged curvature ----------------------------------------------------------------


def momentum_table(n=5, converged=True):
    rng = np.random.default_rng(8)
    rows = []
    for arch in ("simple", "improved"):
        for optimizer in ("sgd", "sgd_momentum"):
            for s in range(n):
                rows.append({"arch": arch, "optimizer": optimizer, "noise": 0.0, "seed": s, "norm": "none",
                             "skip": "concat", "outcome": "finished", "roughness": 4.0 + rng.normal(0, 0.3),
                             "relative_lambda_max": 2.0 + (optimizer == "sgd_momentum") + rng.normal(0, 0.2),
                             "relative_trace": 10.0 + rng.normal(0, 1.0), "probe_largest_rise": 0.05,
                             "relative_lanczos_converged": True})
    table = pd.DataFrame(rows)
    if not converged:
        stuck = table["seed"] == 0
        table.loc[stuck, "relative_lambda_max"] = 1e6  # would swamp every mean if it counted
        table.loc[stuck, "relative_trace"] = -1e6
        table["relative_lanczos_converged"] = np.where(stuck, "False", "True")  # as a CSV gives it back
    return table


def test_unconverged_curvature_is_left_out_of_every_statistic_and_counted():
    table = momentum_table(converged=False)
    findings = findings_table({"momentum": (table, "m.csv")}, SETTINGS)
    sharper = rows_of(findings, "momentum", "relative_lambda_max")
    assert (sharper["n_unconverged"] == 2).all() and (sharper["n_a"] == 4).all() and (sharper["n_b"] == 4).all()
    for _, row in sharper.iterrows():
        part = table[(table["arch"] == row["within"].split("=")[1]) & (table["seed"] > 0)]
        a, b = (part.loc[part["optimizer"] == o, "relative_lambda_max"].to_numpy() for o in ("sgd", "sgd_momentum"))
        assert row["mean_b"] == pytest.approx(b.mean())
        assert row["p_value"] == pytest.approx(scipy.stats.ttest_ind(b, a, equal_var=False).pvalue)
    assert (rows_of(findings, "momentum", "relative_trace")["n_unconverged"] == 2).all()  # its prefix's flag
    assert (rows_of(findings, "momentum", "roughness", "primary")["n_unconverged"] == 0).all()
    # a table from before the flag: every value counts
    old = momentum_table().drop(columns="relative_lanczos_converged")
    sharper = rows_of(findings_table({"momentum": (old, "m.csv")}, SETTINGS), "momentum", "relative_lambda_max")
    assert (sharper["n_a"] == 5).all() and (sharper["n_unconverged"] == 0).all()


# --- issue: the seeds a part needs ---------------------------------------------------------------


def slow_welch_seeds(g, var_a, var_b, alpha, power=0.8):
    """The smallest n whose power (SciPy's noncentral t with Welch's degrees of freedom at n,
    noncentrality g sqrt(n / 2)) reaches `power`: a loop from n = 2."""
    for n in range(2, 10_000):
        dof = (n - 1) * (var_a + var_b) ** 2 / (var_a**2 + var_b**2)
        critical = scipy.stats.t.ppf(1 - alpha / 2, dof)
        ncp = abs(g) * math.sqrt(n / 2)
        if scipy.stats.nct.sf(critical, dof, ncp) + scipy.stats.nct.cdf(-critical, dof, ncp) >= power:
            return n
    return math.inf


def test_a_part_needs_the_runs_that_decide_every_stratum_not_the_luckiest_one():
    table = seeds_table(effect=0.3, n=3, sd=0.5, seed=11)
    # a larger effect with sgd_momentum than with sgd: its stratum needs fewer runs
    table.loc[(table["optimizer"] == "sgd_momentum") & (table["norm"] == "batch"), "roughness"] -= 0.6
    findings = findings_table({"seeds": (table, "t.csv")}, SETTINGS)
    rough = rows_of(findings, "batchnorm", "roughness", "primary")
    assert set(rough["decision"]) == {"inconclusive"}
    needed = []
    for _, row in rough.iterrows():
        a, b = groups(table, row["within"])
        expected = slow_welch_seeds(hedges_g(a, b), a.var(ddof=1), b.var(ddof=1), row["alpha_family"])
        assert row["seeds_needed_difference"] == expected
        assert row["seeds_needed"] == min(row["seeds_needed_difference"], row["seeds_needed_equivalence"])
        needed.append(row["seeds_needed"])
    assert len(set(needed)) == 2  # the strata differ
    assert (rough["part_seeds_needed"] == max(needed)).all()
    claims = claims_table(findings)
    smooth = claims[claims["part"] == "smoother"]
    assert sorted(smooth["seeds_needed"]) == sorted(needed)  # each row: its own comparison's runs


def test_tost_power_against_simulated_welch_tosts():
    # true difference 0.1, sd 0.3 and 0.5, margin 0.5, alpha 0.01: the integral and 2000
    # simulated TOSTs (statsmodels) at n = 8 (power about 0.09) and n = 20 (about 0.7)
    from statsmodels.stats.weightstats import ttost_ind

    effect, sd_a, sd_b, margin, alpha = 0.1, 0.3, 0.5, 0.5, 0.01
    rng = np.random.default_rng(3)

    def simulated(n, trials=2000):
        hits = 0
        for _ in range(trials):
            a, b = rng.normal(0, sd_a, n), rng.normal(effect, sd_b, n)
            hits += ttost_ind(b, a, -margin, margin, usevar="unequal")[0] < alpha
        return hits / trials

    for n in (8, 20):
        se = math.sqrt((sd_a**2 + sd_b**2) / n)
        approx = seeds_needed.tost_power(effect, se, welch_df(n, sd_a**2, sd_b**2), margin, alpha)
        assert approx == pytest.approx(simulated(n), abs=0.04)


def test_power_against_the_textbook_value_and_welchs_degrees_of_freedom():
    # Cohen (1988): d = 0.8 at alpha 0.05 (two-sided) and 80% power needs 26 per group
    assert seeds_for_power(0.8, 0.05, 0.8) == 26
    assert seeds_for_power(0.5, 0.05, 0.8) == 64
    assert seeds_for_power(0.0, 0.05, 0.8) == math.inf
    assert seeds_for_power(0.8, 0.005, 0.8) > 26
    # hand-worked: n = 3, variances 1 and 4: 2 * 25 / 17 = 2.94 degrees of freedom, not 4
    assert welch_df(3, 1.0, 4.0) == pytest.approx(50 / 17)
    assert welch_df(3, 2.0, 2.0) == 4 and welch_df(3, 0.0, 2.0) == 2
    assert seeds_for_power(0.8, 0.05, 0.8, (1.0, 1.0)) == 26
    assert seeds_for_power(1.2, 0.0025, 0.8, (0.01, 0.1)) == slow_welch_seeds(1.2, 0.01, 0.1, 0.0025)


def test_hedges_g_by_hand():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([3.0, 4.0, 5.0])
    # pooled sd 1, difference 2, correction 1 - 3 / (4 * 6 - 9)
    assert hedges_g(a, b) == pytest.approx(2 * (1 - 3 / 15))


# --- issue: the noise trend, one test for the verdict and the seeds -----------------------------


def noise_table(slope=2.0, sd=0.3, seeds=3, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for arch in ("simple", "improved"):
        for noise in (0.0, 0.1, 0.2):
            for s in range(seeds):
                rows.append({"arch": arch, "optimizer": "sgd_momentum", "noise": noise, "seed": s, "norm": "none",
                             "skip": "concat", "outcome": "finished", "roughness": 4.0 + slope * noise
                             + rng.normal(0, sd)})
    return pd.DataFrame(rows)


def test_the_noise_trend_takes_its_verdict_and_its_seeds_from_one_ols_slope():
    margin = 0.3
    settings = {**SETTINGS, "equivalence": {**MARGINS, "roughness": margin}}
    table = noise_table(slope=2.0, sd=0.5, seed=2)
    findings = findings_table({"noise": (table, "n.csv")}, settings)
    trend = rows_of(findings, "noise", "roughness", "primary")
    assert len(trend) == 2 and set(trend["claimed"]) == {"rises with noise"}
    for _, row in trend.iterrows():
        part = table[table["arch"] == row["within"].split("=")[1]]
        x, y = part["noise"].to_numpy(), part["roughness"].to_numpy()
        # by hand: least squares slope, its standard error and t on n - 2 degrees of freedom
        sxx = np.sum((x - x.mean()) ** 2)
        slope = np.sum((x - x.mean()) * (y - y.mean())) / sxx
        residual = y - y.mean() - slope * (x - x.mean())
        sigma = math.sqrt(np.sum(residual**2) / (len(x) - 2))
        se = sigma / math.sqrt(sxx)
        t = slope / se
        assert row["statistic"] == pytest.approx(t)
        assert row["p_value"] == pytest.approx(2 * scipy.stats.t.sf(abs(t), len(x) - 2))
        assert row["effect"] == pytest.approx(slope * 0.2)  # the change over the levels' range
        half = scipy.stats.t.ppf(1 - row["alpha_family"] / 2, len(x) - 2) * se * 0.2
        assert (row["effect_ci_low"], row["effect_ci_high"]) == pytest.approx((slope * 0.2 - half, slope * 0.2 + half))
        p_tost = max(scipy.stats.t.sf((slope * 0.2 + margin) / (se * 0.2), len(x) - 2),
                     scipy.stats.t.cdf((slope * 0.2 - margin) / (se * 0.2), len(x) - 2))
        assert row["p_equivalence"] == pytest.approx(p_tost)
        if row["decision"] == "inconclusive":
            # runs per level for the same t-test: noncentral t, k n - 2 degrees of freedom
            alpha = row["alpha_family"]
            for n in range(2, 1000):
                df = 3 * n - 2
                ncp = abs(slope) / (sigma / math.sqrt(n * np.sum((np.array([0, 0.1, 0.2]) - 0.1) ** 2)))
                crit = scipy.stats.t.ppf(1 - alpha / 2, df)
                if scipy.stats.nct.sf(crit, df, ncp) + scipy.stats.nct.cdf(-crit, df, ncp) >= 0.8:
                    break
            assert row["seeds_needed_difference"] == n
    assert "inconclusive" in set(trend["decision"])  # the plan above was checked at least once
    # a clear rise is found and supports the claim
    clear = rows_of(findings_table({"noise": (noise_table(slope=10.0, sd=0.1), "n.csv")}, settings), "noise",
                    "roughness", "primary")
    assert set(clear["verdict"]) == {"supports"} and set(clear["part_verdict"]) == {"supported"}


# --- dose response --------------------------------------------------------------------------------


def sweep(momentum_from=0.3, sgd_from=1.0, lrs=(0.01, 0.03, 0.1, 0.3, 1.0), seeds=3, archs=("simple",)):
    """A learning-rate sweep: every run fails at or above its optimiser's threshold, none below."""
    rows = []
    for arch, optimizer, lr, s in itertools.product(archs, ("sgd", "sgd_momentum"), lrs, range(seeds)):
        threshold = momentum_from if optimizer == "sgd_momentum" else sgd_from
        rows.append({"arch": arch, "optimizer": optimizer, "lr": lr, "seed": s, "noise": 0.0, "norm": "none",
                     "skip": "concat", "outcome": "diverged" if lr >= threshold else "finished"})
    return pd.DataFrame(rows)


def ungrouped(table):
    x = np.log10(table["lr"].to_numpy())
    g = (table["optimizer"] == "sgd_momentum").to_numpy(dtype=float)
    y = table["outcome"].isin(["unstable", "diverged", "collapsed"]).to_numpy(dtype=float)
    return np.column_stack([np.ones_like(x), x, g]), y


def loglik(beta, X, y, firth=False):
    """The log-likelihood of individual runs, by its definition (and Firth's penalty)."""
    p = scipy.special.expit(X @ beta)
    p = np.clip(p, 1e-300, 1 - 1e-16)
    value = np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))
    if firth:
        value += 0.5 * np.linalg.slogdet(X.T @ (X * (p * (1 - p))[:, None]))[1]
    return value


def maximise(X, y, firth=False, fixed_beta2=None):
    """Maximum (and argmax) of the log-likelihood by scipy.optimize, beta_2 free or fixed."""
    def negative(free):
        beta = free if fixed_beta2 is None else np.append(free, fixed_beta2)
        return -loglik(beta, X, y, firth)

    start = np.zeros(3 if fixed_beta2 is None else 2)
    result = scipy.optimize.minimize(negative, start, method="Nelder-Mead",
                                     options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 40000, "maxfev": 40000})
    result = scipy.optimize.minimize(negative, result.x, method="BFGS", options={"gtol": 1e-10})
    return -result.fun, result.x


def test_separation_is_decided_exactly_as_a_linear_programme_would():
    # separated: some beta != 0 with x'beta >= 0 for every failed run and <= 0 for the others;
    # the linear programme maximises the sum of those margins in the box |beta| <= 1
    rng = np.random.default_rng(5)
    for _ in range(60):
        x = np.log10(rng.choice([0.01, 0.03, 0.1, 0.3, 1.0], size=8))
        g = rng.integers(0, 2, 8).astype(float)
        y = (rng.random(8) < 0.5).astype(float)
        X = np.column_stack([np.ones(8), x, g])
        sign = 2 * y - 1
        programme = scipy.optimize.linprog(-(sign @ X), A_ub=-(sign[:, None] * X), b_ub=np.zeros(8),
                                           bounds=[(-1, 1)] * 3, method="highs")
        expected = -programme.fun > 1e-9 or len(set(g)) < 2
        cells = dose_response.cells_of(10**x, g == 1, y == 1)
        assert dose_response.separated(cells) == expected


def test_likelihood_ratio_without_separation_matches_scipy_optimize():
    table = sweep()
    # overlap: a momentum run at 0.1 fails, one at 0.3 does not; an sgd run at 0.3 fails, one at 1.0 does not
    for optimizer, lr, seed, outcome in (("sgd_momentum", 0.1, 0, "unstable"), ("sgd_momentum", 0.3, 0, "finished"),
                                         ("sgd", 0.3, 1, "collapsed"), ("sgd", 1.0, 1, "finished")):
        run = (table["optimizer"] == optimizer) & (table["lr"] == lr) & (table["seed"] == seed)
        table.loc[run, "outcome"] = outcome
    X, y = ungrouped(table)
    cells = dose_response.cells_of(table["lr"], table["optimizer"] == "sgd_momentum",
                                   table["outcome"].isin(["unstable", "diverged", "collapsed"]))
    result = dose_response.dose_response_test(cells)
    assert not result["separated"] and result["method"] == "likelihood ratio"
    full, beta = maximise(X, y)
    reduced, _ = maximise(X, y, fixed_beta2=0.0)
    assert result["statistic"] == pytest.approx(2 * (full - reduced), rel=1e-6)
    assert result["p_value"] == pytest.approx(scipy.stats.chi2.sf(2 * (full - reduced), 1), rel=1e-5)
    assert result["beta"] == pytest.approx(beta, rel=1e-4)
    # the Newton fits the simulations use give the same maxima
    assert dose_response.fit_logistic(cells)[0] == pytest.approx(beta, rel=1e-4)


def test_under_separation_the_test_is_firths_penalised_ratio_checked_with_scipy_optimize():
    table = sweep()  # every momentum run fails from 0.3 on, every sgd run from 1.0 on: separated
    X, y = ungrouped(table)
    findings = findings_table({"stability": (table, "st.csv")}, {**SETTINGS, "simulations": 30})
    row = rows_of(findings, "momentum", "failed", "primary").iloc[0]
    assert row["test"] == "logistic regression, Firth penalised likelihood ratio test"
    full, beta = maximise(X, y, firth=True)
    reduced, _ = maximise(X, y, firth=True, fixed_beta2=0.0)
    assert row["statistic"] == pytest.approx(2 * (full - reduced), rel=1e-5)
    assert row["p_value"] == pytest.approx(scipy.stats.chi2.sf(2 * (full - reduced), 1), rel=1e-4)
    assert row["effect"] == pytest.approx(beta[2], rel=1e-4) and row["effect"] > 0
    assert row["claimed"] == "b > a" and math.isnan(row["p_equivalence"])  # no equivalence test for this kind
    # critical learning rates: where the fit crosses 50%, and where half of the runs failed
    assert row["critical_lr_a"] == pytest.approx(10 ** (-beta[0] / beta[1]), rel=1e-4)
    assert row["critical_lr_b"] == pytest.approx(10 ** (-(beta[0] + beta[2]) / beta[1]), rel=1e-4)
    assert row["half_failed_lr_a"] == 1.0 and row["half_failed_lr_b"] == 0.3
    # the interval's bounds: where the penalised likelihood ratio reaches chi^2_1 at the level
    quantile = scipy.stats.chi2.ppf(row["ci_level"], 1)
    for bound in (row["effect_ci_low"], row["effect_ci_high"]):
        assert 2 * (full - maximise(X, y, firth=True, fixed_beta2=bound)[0]) == pytest.approx(quantile, abs=1e-4)
    # where the sweep is separated only through the factor, lr still explains failure
    assert row["n_a"] == row["n_b"] == 15


def test_the_seeds_per_learning_rate_are_the_first_with_enough_simulated_power():
    table = sweep()
    cells = dose_response.cells_of(table["lr"], table["optimizer"] == "sgd_momentum", table["outcome"] == "diverged")
    beta, _ = dose_response.fit_logistic(cells, firth=True)
    n = dose_response.seeds_per_lr(cells, beta, 0.0125, 0.8, simulations=40, seed=3)
    assert 2 < n < dose_response.MAX_SEEDS_PER_LR
    assert dose_response.power_at(cells, beta, int(n), 0.0125, 40, 3) >= 0.8
    assert dose_response.power_at(cells, beta, int(n) - 1, 0.0125, 40, 3) < 0.8
    # seeded: the same numbers again
    assert dose_response.seeds_per_lr(cells, beta, 0.0125, 0.8, simulations=40, seed=3) == n


def test_the_momentum_claim_reads_the_sweep_and_its_other_measures_from_the_momentum_study():
    findings = findings_table({"stability": (sweep(archs=("simple", "improved")), "st.csv"),
                               "momentum": (momentum_table(), "m.csv")}, SETTINGS)
    less_stable = rows_of(findings, "momentum").query("part == 'less_stable'")
    primary = less_stable[less_stable["role"] == "primary"]
    assert set(primary["kind"]) == {"dose_response"} and set(primary["study"]) == {"stability"}
    assert len(primary) == 2 and set(primary["source"]) == {"st.csv"}  # one per architecture
    secondary = less_stable[less_stable["role"] == "secondary"]
    assert set(secondary["study"]) == {"momentum"} and "probe_largest_rise" in set(secondary["metric"])
    # without the sweep the part is not tested, and the claim cannot be supported
    alone = findings_table({"momentum": (momentum_table(), "m.csv")}, SETTINGS)
    part = rows_of(alone, "momentum").query("part == 'less_stable' and role == 'primary'")
    assert part["verdict"].iloc[0] == "study 'stability' is not in the config"
    assert part["part_verdict"].iloc[0] == "not tested"
    assert rows_of(alone, "momentum")["claim_verdict"].iloc[0] != "supported"


# --- claims from the config, the other claims, the words -------------------------------------------


def test_the_default_claims_are_the_documented_config_block():
    block = {
        "batchnorm": {"smoother": {"measure": "roughness", "direction": "less"},
                      "more_convex": {"measure": "relative_nonconvexity", "direction": "less"},
                      "more_stable": {"measure": "probe_largest_rise", "direction": "less"}},
        "momentum": {"less_stable": {"measure": "failed", "direction": "greater", "study": "stability",
                                     "kind": "dose_response"},
                     "sharper": {"measure": "relative_lambda_max", "direction": "greater"},
                     "rougher": {"measure": "roughness", "direction": "greater"}},
        "noise": {"rougher": {"measure": "roughness", "direction": "greater"}},
        "skips": {"roughness": {"measure": "roughness", "direction": "different"},
                  "curvature": {"measure": "relative_lambda_max", "direction": "different"},
                  "stability": {"measure": "probe_largest_rise", "direction": "different"}},
    }
    assert parse_claims(block) == CLAIMS == parse_claims(None)
    # every measure a claim names has a line in the glossary
    for claim in CLAIMS:
        for part in claim.parts:
            for measure in (part.primary, *part.secondary):
                assert measure.name in GLOSSARY, measure.name


@pytest.mark.parametrize("section, where", [
    ({"batchnorm": {"smoother": {"measure": "roughness"}}}, "claims.batchnorm.smoother.direction"),
    ({"batchnorm": {"smoother": {"measure": "roughness", "direction": "up"}}}, "claims.batchnorm.smoother.direction"),
    ({"batchnorm": {"smoother": {"measure": "roughness", "direction": "less", "colour": 1}}},
     "claims.batchnorm.smoother.colour"),
    ({"batchnorm": {"smoother": {"measure": "roughness", "direction": "less", "kind": "trend"}}},
     "claims.batchnorm.smoother.kind"),
    ({"momentum": {"sharper": {"measure": "relative_lambda_max", "direction": "greater", "kind": "dose_response"}}},
     "claims.momentum.sharper.kind"),
    ({"momentum": {"sharper": {"measure": "", "direction": "greater"}}}, "claims.momentum.sharper.measure"),
    ({"momentum": {"sharper": {"measure": "failed", "direction": "greater", "study": 3}}},
     "claims.momentum.sharper.study"),
    ({"momentum": {"sharpest": {"measure": "roughness", "direction": "greater"}}}, "claims.momentum.sharpest"),
    ({"poster": {}}, "claims.poster"),
])
def test_claims_config_errors_name_the_key(section, where):
    with pytest.raises(ValueError, match=f"^{where.replace('.', '[.]')}:"):
        parse_claims(section)


def test_unfinished_runs_are_left_out_of_landscape_numbers_and_too_few_runs_are_said():
    table = seeds_table(effect=0.5, n=3)
    table.loc[(table["norm"] == "batch") & (table["seed"] == 0), "outcome"] = "not_converged"
    table.loc[(table["norm"] == "batch") & (table["seed"] == 0), "roughness"] = 100.0  # must not count
    findings = findings_table({"seeds": (table, "t.csv")}, SETTINGS)
    rough = rows_of(findings, "batchnorm", "roughness", "primary")
    assert (rough["n_b"] == 2).all() and (rough["mean_b"] < 4).all()
    assert set(rough["verdict"]) == {"too few runs"}
    # the training's numbers count every run, the unfinished one too
    assert (rows_of(findings, "batchnorm", "probe_largest_rise")["n_b"] == 3).all()


def skips_table(shift: float, n: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = []
    for norm in ("none", "batch"):
        for skip in ("concat", "add", "none"):
            for s in range(n):
                rows.append({"arch": f"{norm}_{skip}", "optimizer": "sgd_momentum", "noise": 0.0, "seed": s,
                             "norm": norm, "skip": skip, "outcome": "finished",
                             "roughness": 4.0 + (shift if skip == "none" else 0.0) + rng.normal(0, 0.05),
                             "relative_lambda_max": 2.0 + rng.normal(0, 0.5),
                             "probe_largest_rise": abs(rng.normal(0, 0.01))})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("shift", [1.5, -1.5])
def test_two_sided_skips_comparisons_support_a_change_in_either_direction(shift):
    findings = findings_table({"skips": (skips_table(shift), "s.csv")}, SETTINGS)
    rough = rows_of(findings, "skips", "roughness", "primary")
    assert len(rough) == 4  # (concat, add) x (none, batch)
    assert set(rough["claimed"]) == {"b != a"}
    assert set(rough["verdict"]) == {"supports"}  # concat/add differ from none, whichever way
    assert (np.sign(rough["effect"]) == -np.sign(shift)).all()
    assert (rough["part_verdict"] == "supported").all()


def test_front_page_text_states_the_rules_each_claim_its_parts_and_the_margins():
    table = seeds_table(effect=1.5)
    table["probe_largest_rise"] = np.random.default_rng(1).normal(0.1, 0.05, len(table))  # undecided
    findings = findings_table({"seeds": (table, "results/tables/landscape_seeds.csv")}, SETTINGS)
    claims = claims_table(findings)
    text = findings_rst(findings, claims, "results/tables/findings.csv", "results/tables/claims.csv", SETTINGS)
    for claim in CLAIMS:
        assert claim.text in text
    for part in CLAIMS[0].parts:
        assert part.text in text
    assert "partly supported: smoother -- supported" in text and "results/tables/claims.csv" in text
    assert "supported only when every part was tested and is supported" in text  # the claim rule
    margin = f"roughness ±{DEFAULT_MARGINS['roughness']:g}"
    assert "negligible" in text and margin in text  # the part rule and the margins
    assert "runs to decide it" in text  # the plan for the undecided comparisons
