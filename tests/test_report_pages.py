"""The report's pages: every table on a page that fits the report's frame, the front page's
fragments, every caption as valid reStructuredText, 3-D pages under the limit."""

import json
import math
import re
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from unetscape.plots import front_page, page_html, table_pages, surface_viewer

REPORT = Path(__file__).resolve().parents[1] / "report"


class Tables(HTMLParser):
    """The cells of every table in a page, as text: tables[t][row][column]."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def tables_of(html: str):
    parser = Tables()
    parser.feed(html)
    return parser.tables


def table_with(tables, header: str):
    """The first table whose header row holds `header`."""
    return next(t for t in tables if header in t[0])


# --- the study's pages ---------------------------------------------------------------------


def conditions_frame() -> pd.DataFrame:
    frame = pd.DataFrame({
        "arch": ["simple", "improved"], "optimizer": ["sgd", "sgd"], "noise": [0.0, 0.0],
        "n": [5, 5], "n_finished": [4, 2], "n_diverged": [0, 1], "n_unstable": [1, 2],
        "final_heldout_dice_mean": [0.81234, np.nan], "final_heldout_dice_ci_low": [0.8, np.nan],
        "final_heldout_dice_ci_high": [0.83, np.nan], "final_heldout_dice_std": [0.01, np.nan],
        "final_heldout_dice_n": [4, 0],
        "note": ["", "too few runs"],
    })
    # many measures: more than one table's worth, each with its statistics
    for k, measure in enumerate(["roughness", "total_variation", "sharpness_r0.5", "basins", "relative_lambda_max",
                                 "relative_trace", "probe_largest_rise", "step_volatility", "zz_new_measure"]):
        frame[f"{measure}_mean"] = [1.0 + k, 2.0 + k]
        frame[f"{measure}_std"] = [0.1, 0.2]
        frame[f"{measure}_ci_low"] = [0.5 + k, 1.5 + k]
        frame[f"{measure}_ci_high"] = [1.5 + k, 2.5 + k]
        frame[f"{measure}_n"] = [4, 2]
    return frame


def test_conditions_page_shows_every_measure_once_in_tables_that_fit(tmp_path):
    csv = tmp_path / "conditions_x.csv"
    frame = conditions_frame()
    frame.to_csv(csv, index=False)
    out = tmp_path / "conditions.html"
    table_pages.conditions_page("Seeds: conditions", csv, out, 0.95)
    html = out.read_text()
    tables = tables_of(html)
    outcomes = tables[0]
    assert outcomes[0][:2] == ["condition", "runs"]  # the optimiser does not vary: not in the name
    assert "unstable" in outcomes[0]  # an outcome the page was not written for still shows
    assert outcomes[1][0] == "simple" and outcomes[1][outcomes[0].index("unstable")] == "1"
    assert outcomes[2][-1] == "too few runs"
    heldout = table_with(tables, "held-out hard Dice")
    column = heldout[0].index("held-out hard Dice")
    assert heldout[1][column] == "0.812[0.8, 0.83]sd 0.01, n 4"  # value, interval, spread and count under it
    assert heldout[2][column] == "–n 0"  # no value: none of its runs had one
    # every measure of the CSV is a column of exactly one table, each table a few columns wide
    headers = [h for t in tables[1:] for h in t[0][1:]]
    measures = [c.removesuffix("_mean") for c in frame.columns if c.endswith("_mean")]
    assert sorted(headers) == sorted(page_html.column_words(m) for m in measures)
    assert all(len(t[0]) <= page_html.MAX_COLUMNS + 1 for t in tables[1:])
    assert all(t[1][0] == "simple" and t[2][0] == "improved" for t in tables)  # every table names its rows
    assert "zz new measure" in headers  # a measure the page does not know keeps its name
    # the glossary names the measures it has a formula for
    assert "<code>roughness</code>" in html and "ell^2 / R" in html


def test_runs_page_shows_every_column_with_its_standard_error(tmp_path):
    runs = pd.DataFrame({
        "run": ["simple/sgd/noise0/seed0", "simple/sgd/noise0/seed1", "improved/sgd/noise0/seed0"],
        "arch": ["simple", "simple", "improved"], "optimizer": "sgd", "noise": 0.0, "seed": [0, 1, 0],
        "outcome": ["finished", "finished", "diverged"], "roughness": [3.1, 3.3, np.nan],
        "roughness_se": [0.11, 0.13, np.nan], "final_heldout_dice": [0.8, 0.82, 0.1],
        "part_head_lambda_max": [1.0, 2.0, np.nan], "raw_lambda_max": [10.0, 20.0, np.nan],
        "empty": [np.nan] * 3,
    })
    runs.to_csv(tmp_path / "runs.csv", index=False)
    table_pages.runs_page("Seeds: runs", tmp_path / "runs.csv", tmp_path / "runs.html")
    tables = tables_of((tmp_path / "runs.html").read_text())
    assert all(t[0][:2] == ["run", "outcome"] for t in tables)
    assert [row[0] for row in tables[0][1:]] == ["simple, seed 0", "simple, seed 1", "improved, seed 0"]
    rough = table_with(tables, "roughness")
    assert rough[1][rough[0].index("roughness")] == "3.1± 0.11"
    assert rough[3][rough[0].index("roughness")] == "–" and rough[3][1] == "diverged"
    headers = {h for t in tables for h in t[0]}
    assert {"held-out hard Dice", "head: top eigenvalue", "raw lambda max"} <= headers
    assert "empty" not in headers and "SE of roughness" not in headers  # no column without a value; se under its value


def test_directions_page_has_a_table_per_measure(tmp_path):
    rows = [{"arch": a, "optimizer": "sgd", "noise": 0, "metric": m, "runs": 5, "sets": 16, "sd_direction": 0.5,
             "sd_seed": 0.2, "direction_share": 0.8, "se_directions": 0.12, "se_over_sd_seed": 0.6,
             "criterion": "not met"} for m in ("roughness", "basins") for a in ("simple", "improved")]
    pd.DataFrame(rows).to_csv(tmp_path / "d.csv", index=False)
    table_pages.directions_page("d", tmp_path / "d.csv", tmp_path / "d.html")
    html = (tmp_path / "d.html").read_text()
    rough, basins = tables_of(html)
    assert [r[0] for r in rough[1:]] == [r[0] for r in basins[1:]] == ["simple", "improved"]
    assert rough[0][1:] == [table_pages.DIRECTION_COLUMNS[c] for c in table_pages.DIRECTION_COLUMNS]
    assert rough[1][-1] == "not met"
    # a study without landscapes has an empty table: the page says so
    pd.DataFrame(columns=["arch", "metric"]).to_csv(tmp_path / "e.csv", index=False)
    table_pages.directions_page("e", tmp_path / "e.csv", tmp_path / "e.html")
    assert "no landscapes" in (tmp_path / "e.html").read_text()


def test_column_words():
    words = page_html.column_words
    assert words("final_heldout_dice") == "held-out hard Dice"
    assert words("sharpness_r0.5") == "largest rise within radius 0.5"
    assert words("basin_width_h0.05_mean") == "basin width (rise 0.05)"
    assert words("part_decoder2_trace_share") == "decoder2: share of the trace"
    assert words("roughness_first") == "roughness, first plane only"
    assert words("n_not_converged") == "not converged"


# --- the findings and the claims ---------------------------------------------------------------


def findings_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "claim": ["bn", "bn", "mom"], "claim_text": ["Batch norm", "Batch norm", "Momentum"],
        "claim_verdict": ["partly supported", "partly supported", "inconclusive at this n"],
        "part": ["smoother", "convex", "sharper"], "part_text": ["smoother", "more convex", "sharper minima"],
        "part_verdict": ["supported", "inconclusive at this n", "inconclusive at this n"],
        "role": ["primary", "primary", "primary"],
        "metric": ["roughness", "relative_nonconvexity", "relative_lambda_max"], "within": ["", "", "arch=simple"],
        "group_a": ["norm=none"] * 2 + ["optimizer=sgd"], "group_b": ["norm=batch"] * 2 + ["optimizer=sgd_momentum"],
        "n_a": [5, 6, 7], "n_b": [5, 6, 8], "n_unconverged": [0, 1, 0], "mean_a": [1.0, 0.3, 2.0],
        "mean_b": [0.9, 0.1, 2.3], "effect": [-0.1, -0.2, 0.3], "effect_ci_low": [-0.15, -0.3, 0.1],
        "effect_ci_high": [-0.05, -0.1, 0.7], "ci_level": [0.99, 0.99, 0.975], "p_value": [0.001, 0.1, 0.03],
        "p_holm": [0.01, 0.2, 0.06], "test": "Welch t-test",
        "verdict": ["supports", "inconclusive", "inconclusive"],
        "decision": ["different", "inconclusive", "inconclusive"], "seeds_needed": [None, 12, 30], "kind": "means",
        "source": "x.csv",
    })


def test_findings_page_is_a_table_per_part_with_every_cell_from_its_row(tmp_path):
    csv = tmp_path / "findings.csv"
    findings_frame().to_csv(csv, index=False)
    out = tmp_path / "findings.html"
    table_pages.findings_page(csv, out)
    html = out.read_text()
    smoother, convex, sharper = tables_of(html)
    assert len(smoother) == len(convex) == len(sharper) == 2  # header + the part's comparison
    header = smoother[0]
    assert header == table_pages.FINDINGS_HEADERS
    assert smoother[1][header.index("effect [interval at the claim's level]")] == "-0.1[-0.15, -0.05]at 99%"
    assert convex[1][header.index("runs (a + b)")] == "6 + 61 left out (Lanczos)"
    # each row's cells are its own comparison's: its groups, stratum, means and the runs it needs
    row = [c.replace("\u200b", "") for c in sharper[1]]
    assert row[0].startswith("relative_lambda_max") and "in arch=simple" in row[1]
    assert row[2] == "7 + 8" and row[3] == "2 / 2.3" and "30 runs per group" in row[-1]
    # an interval that excludes 0 beside an undecided comparison says why
    assert "the interval excludes 0, but Welch t-test's Holm-adjusted p (0.06) is not below alpha" in row[-1]
    assert "Batch norm — the claim as a whole: partly supported" in html
    assert "smoother — this part: supported" in html and "supported only when every part was tested" in html


def comparison(claim, part, verdict, decision, needed=math.nan, part_needed=math.nan, n=5, kind="means",
               metric="roughness", within="arch=simple", **extra):
    return {"claim": claim, "claim_text": claim.title(), "claim_verdict": "partly supported",
            "claim_summary": f"partly supported: {part} -- {verdict}", "part": part, "part_text": part,
            "part_verdict": verdict, "part_seeds_needed": part_needed, "metric": metric, "kind": kind,
            "study": "seeds", "within": within, "group_a": "norm=none", "group_b": "norm=batch", "n_a": n, "n_b": n,
            "n_unconverged": 0, "effect": -0.5, "effect_ci_low": -0.9, "effect_ci_high": 0.1, "ci_level": 0.99,
            "p_holm": 0.2, "equivalence_margin": 1.0, "decision": decision, "seeds_needed": needed,
            "test": "Welch t-test", **extra}


def claims_tables():
    """A claims table from the findings of runs where batch norm halves the roughness."""
    from unetscape.analysis.findings import claims_table, findings_table

    rng = np.random.default_rng(0)
    rows = [{"arch": a, "optimizer": o, "noise": 0.0, "seed": s, "norm": n, "skip": "concat", "outcome": "finished",
             "roughness": 4.0 - (2.0 if n == "batch" else 0) + rng.normal(0, 0.1),
             "relative_nonconvexity": 0.3 + rng.normal(0, 0.05), "probe_largest_rise": rng.uniform(0, 0.05),
             "relative_lambda_max": 2.0, "relative_lanczos_converged": s > 0}
            for o in ("sgd", "sgd_momentum") for a, n in (("simple", "none"), ("improved", "batch")) for s in range(5)]
    findings = findings_table({"seeds": (pd.DataFrame(rows), "t.csv")},
                              {"level": 0.95, "bootstrap": 500, "seed": 0, "min_runs": 3, "alpha": 0.05})
    return claims_table(findings)


def test_front_page_claims_table_has_a_row_per_part_and_stratum_then_the_claim_in_words():
    claims = claims_tables()
    text = front_page.claims_rst(claims)
    assert ":header-rows: 1" in text
    # batch norm: 3 parts x 2 optimisers; momentum, noise: one row per part (not tested), skips
    # 3: then a row per claim with its verdict in words; and a header row
    assert sum(line.startswith("   * -") for line in text.splitlines()) == 1 + 6 + 3 + 1 + 3 + 4
    lines = text.splitlines()
    claim_row = lines.index("   * - **Claim: Batch norm gives normal behaviour**")
    assert lines[claim_row + 1] == "     - **whole claim: partly supported**"
    assert lines[claim_row + 2].startswith("     - smoother: supported; more convex: ")
    first_part = next(k for k, line in enumerate(lines) if line.startswith("   * - smoother"))
    assert lines[first_part + 1] == "     - **part: supported**"  # the part's verdict first, the claim's after
    assert first_part < claim_row
    smooth = next(line for line in lines if line.startswith("     - roughness")).replace("\u200b", "")
    assert re.search(r"roughness \(optimizer=sgd, norm=batch vs norm=none\): -\d\.\d+ \[-\d\.\d+, -\d\.\d+\]",
                     smooth), smooth
    assert "A claim is contradicted when any of its parts is" in text and "negligible" in text
    assert "Bonferroni level 1 - alpha/m" in text and "99.2%" in text  # m = 6 here
    margin = claims.loc[claims["metric"] == "roughness", "equivalence_margin"].dropna().iloc[0]
    assert f"roughness ±{margin:g}" in text  # the margins the findings used
    # the non-convexity of the first run of each group was not converged: 4 values left out
    assert "did not converge: 4." in text
    # the glossary of the measures the table names, at the end
    glossary = text[text.index("**The measures named here:**"):]
    assert "- ``roughness``: mean over the run's random filter-normalised planes" in glossary
    assert "- ``relative_nonconvexity``:" in glossary and "- ``probe_largest_rise``:" in glossary
    assert "``relative_lambda_max``" not in glossary  # not named: its part was not tested


def test_claims_html_rows_hold_their_own_comparison_only():
    claims = pd.DataFrame([
        comparison("batch norm", "smoother", "partly supported", "different", n=5, within="optimizer=sgd",
                   effect=-0.7, effect_ci_low=-1.2, effect_ci_high=-0.2, p_holm=0.01),
        comparison("batch norm", "smoother", "partly supported", "inconclusive", 23, 23, n=6,
                   within="optimizer=sgd_momentum", effect=-0.6, effect_ci_low=-1.1, effect_ci_high=-0.1,
                   p_holm=0.07),
        comparison("batch norm", "convex", "inconclusive at this n", "inconclusive", 15, 15, n=7,
                   metric="relative_nonconvexity", p_holm=0.3),
    ])
    html = front_page.claims_html(claims)
    (table,) = [t for t in tables_of(html) if t[0] == front_page.CLAIMS_HEADERS]
    rows = [[c.replace("\u200b", "") for c in row] for row in table[1:]]
    # the part's cells span its comparisons: the second comparison's row starts at its effect
    assert rows[0][:2] == ["smoother", "part: partly supported"] and len(rows[1]) == 5
    assert rows[0][2].startswith("roughness (optimizer=sgd, ") and rows[0][3:5] == ["5 + 5", "0.01"]
    assert rows[0][5:] == ["different", "–"]
    assert rows[1][0].startswith("roughness (optimizer=sgd_momentum, ") and rows[1][1:3] == ["6 + 6", "0.07"]
    assert rows[1][3:] == ["inconclusive", "23 runs per group"]
    # its interval excludes 0 though the test does not decide: said in its own cell
    assert "the interval excludes 0, but Welch t-test's Holm-adjusted p (0.07) is not below alpha" in rows[1][0]
    assert "excludes 0" not in rows[0][2] and "excludes 0" not in rows[2][2]  # decided; interval holds 0
    assert rows[2][:2] == ["convex", "part: inconclusive at this n"] and rows[2][3:5] == ["7 + 7", "0.3"]
    assert rows[3][:2] == ["Claim: Batch Norm", "whole claim: partly supported"]  # the claim's verdict last
    assert "The measures named here" in html and "<code>relative_nonconvexity</code>" in html


def test_front_page_plan_says_what_these_runs_decide_and_what_each_part_needs():
    claims = pd.DataFrame([
        comparison("batch norm", "smoother", "supported", "different"),
        comparison("batch norm", "more convex", "inconclusive at this n", "inconclusive", 35, 35),
        comparison("batch norm", "more convex", "inconclusive at this n", "equivalent", math.nan, 35,
                   within="arch=improved"),
        comparison("momentum", "less stable", "inconclusive at this n", "inconclusive", 9, 12, kind="dose_response",
                   metric="failed", n=15, critical_lr_a=0.55, critical_lr_b=math.nan, half_failed_lr_b=0.3),
        comparison("momentum", "less stable", "inconclusive at this n", "inconclusive", 12, 12, kind="dose_response",
                   metric="failed", n=15, within="arch=improved"),
        comparison("momentum", "rougher", "inconclusive at this n", "inconclusive", math.inf, math.inf, n=3),
        {**comparison("noise", "rougher", "not tested", math.nan), "test": math.nan, "metric": "roughness",
         "n_a": math.nan, "n_b": math.nan, "note": "study 'noise' is not in the config"},
    ])
    text = front_page.claims_rst(claims)
    plan = text[text.index("**Plan.**"):]
    assert plan.startswith("**Plan.** With 3–5 runs per group these runs decide 1 of 4 parts: "
                           "Batch Norm: smoother (supported).")
    # one line per undecided part, the runs its own rule needs (every stratum), fewest first
    items = [line for line in plan.splitlines() if line.startswith("- ")][:3]
    assert items == ["- 12 seeds per learning rate and group: Momentum: less stable (failed, study seeds)",
                     "- 35 runs per group: Batch Norm: more convex (roughness, study seeds)",
                     "- more than 10,000 runs per group: Momentum: rougher (roughness, study seeds)"]
    assert "Noise:" not in plan  # a part without runs is no part to plan
    # the table's runs column: this comparison's own, where it is undecided
    rows = [line for line in text.splitlines() if line.startswith("     - ")]
    assert "     - 35 runs per group" in rows and "     - 9 seeds per learning rate and group" in rows
    assert rows[rows.index("     - **part: supported**") + 5] == "     - –"  # decided: nothing to plan
    assert "     - study 'noise' is not in the config" in rows
    # a sweep's learning rates at 50% failure: from the fit, or where half the runs failed
    sweep = next(r for r in rows if r.startswith("     - failed (arch=\u200bsimple")).replace("\u200b", "")
    assert "; lr at 50% failure: norm=none 0.55, norm=batch 0.3 (half its runs failed)" in sweep


# --- generalisation ------------------------------------------------------------------------------


def generalisation_table(can_rank=True, within_over_se=1.6, verdict="does not predict it here"):
    rows = []
    for rank, measure in enumerate(["roughness", "trace", "basins", "norm"], 1):
        for target in ("final_heldout_dice", "gap_loss"):
            rows.append({"measure": measure, "measure_is": "sharper", "target": target, "n": 12,
                         "tau": -0.9 / rank, "tau_low": -1.0, "tau_high": 0.1, "tau_pooled": 0.6, "Psi": 0.05,
                         "p_value": 0.01, "p_holm": 0.07 * rank, "verdict": verdict if rank == 1 else
                         "does not predict it here", "rank": rank, "runs_total": 14, "runs_finished": 12,
                         "within": "train_size", "gap_min": 0.0069, "gap_max": 0.135, "gap_sd": 0.0512,
                         "heldout_se": 0.0035, "spread_over_se": 14.6, "can_rank": can_rank,
                         "within_over_se": within_over_se})
    return pd.DataFrame(rows)


def test_generalisation_line_reads_the_runs_the_gap_and_the_verdicts_from_the_table():
    text = table_pages.generalisation_line(generalisation_table())
    assert "the generalisation study (12 finished of 14 runs, compared within each training-set size)" in text
    assert "spans 0.0069 to 0.135 (standard deviation 0.0512)" in text and "0.0035 of a run's held-out loss" in text
    assert "14.6 times" in text and "so the study can rank measures" in text
    assert "only 1.6 times that error" in text  # the spread within the groups compared is small
    assert "no measure predicts held-out Dice" in text
    top = text[text.index("strongest"):]
    assert top.index("roughness tau -0.9 (Holm p 0.07") < top.index("trace tau -0.45 (Holm p 0.14")
    assert "norm" not in top  # the three measures ranked first only
    cannot = table_pages.generalisation_line(generalisation_table(can_rank=False))
    assert "the study cannot rank measures" in cannot and "only 1.6" not in cannot
    predicts = table_pages.generalisation_line(
        generalisation_table(verdict="predicts it: sharper minima go with worse generalisation"))
    assert "1 measure(s) predict held-out Dice" in predicts


def test_generalisation_page_reads_every_tau_from_the_table_and_carries_the_front_page_line(tmp_path):
    table = generalisation_table()
    targets = {"final_heldout_dice": "held-out hard Dice", "gap_loss": "generalisation gap"}
    measures = {m: (m, "sharper") for m in table["measure"]}
    out = tmp_path / "g.html"
    table.to_csv(tmp_path / "g.csv", index=False)
    table_pages.generalisation_page(tmp_path / "g.csv", out, targets, measures)
    html = out.read_text()
    (rows_,) = tables_of(html)
    assert "within-condition tau" in rows_[0] and "pooled tau (mixes conditions)" in rows_[0]
    assert "granulated Psi" in rows_[0]
    # one sentence per target, each on its own line
    first = re.search(r"<li.*?</li>", html).group(0)
    assert first.count("<br>") == 2 and "Held-out hard Dice: does not predict" in first and "Generalisation gap:" in first
    front = page_html.fragment_of(html)
    assert front.startswith(f"<p>{escape(table_pages.generalisation_line(table))}</p>")
    assert "The measures this paragraph names" in front  # with a glossary of the measures it names
    assert "<code>roughness</code>" in front and "<code>norm</code>" not in front
    # a table without the granulated Psi shows the other taus only
    table.drop(columns="Psi").to_csv(tmp_path / "g.csv", index=False)
    table_pages.generalisation_page(tmp_path / "g.csv", out, targets, measures)
    assert "granulated Psi" not in tables_of(out.read_text())[0][0]


# --- what was run ----------------------------------------------------------------------------------


def test_overview_counts_each_run_once_by_outcome_and_names_shared_studies():
    runs = pd.DataFrame({"run": ["a", "a", "b", "c", "a", "b", "c"],
                         "outcome": ["finished", "finished", "unstable", "finished"] + ["finished", "unstable", "finished"],
                         "study": ["seeds", "seeds", "seeds", "seeds", "momentum", "momentum", "momentum"]})
    args = ({"name": "syn", "source": "synthetic", "train": 900, "heldout": 300, "size": [16, 16]},
            {"simple": {"norm": "none", "skip": "concat", "depth": 2, "base_width": 8},
             "improved_noskip": {"norm": "batch", "skip": "none", "depth": 2, "base_width": 8}},
            {"seeds": {"archs": ["simple"], "optimizers": ["sgd", "m"], "noise": [0], "seeds": [0, 1, 2]},
             "momentum": {"archs": ["simple"], "optimizers": ["sgd", "m"], "noise": [0], "seeds": [0, 1, 2]}},
            runs, {"epochs": 10, "batch_size": 4, "optimizers": {"sgd": {"lr": 0.01, "momentum": 0.0}}})
    text = front_page.overview_rst(*args)
    assert "900 training and 300 held-out images of 16 x 16 px" in text
    assert "depth 2, base width 8" in text and "improved_noskip (batch norm, no skips)" in text
    assert "3 trainings (the seeds and momentum studies are the same 3 runs" in text
    assert "seeds: 2 conditions x 3 seeds" in text and "first seed of each condition only" in text
    assert "2 finished, 1 unstable" in text
    (table,) = tables_of(front_page.overview_html(front_page.overview_rows(*args)))
    assert [row[0] for row in table] == ["Data", "Model", "Training", "Runs", "Outcomes"]


def test_fragment_markers_round_trip():
    page = page_html.html_page("t", "<p>before</p>" + page_html.fragment("<p>this</p>") + "<p>after</p>")
    assert page_html.fragment_of(page) == "<p>this</p>"
    assert page_html.fragment_of("<p>no markers</p>") == ""


# --- the front page and the captions as Snakemake renders them ---------------------------------


class Result:
    """What the front page's template sees of a report entry: its file name and path."""

    def __init__(self, path: Path):
        self.path, self.target = path, path.name


class Wildcards(dict):
    __getattr__ = dict.get


def render(template: str, files=(), study="seeds") -> str:
    """A caption or the front page as `snakemake --report` renders it: Jinja2, then docutils,
    failing on any docutils warning or error (an undefined substitution such as |w| among them)."""
    import jinja2
    import yaml
    from docutils.core import publish_parts

    config = yaml.safe_load((REPORT.parent / "config/config.yaml").read_text())

    class Snakemake:
        pass

    snakemake = Snakemake()
    snakemake.config = config
    snakemake.wildcards = Wildcards(study=study, arch="simple", optim="sgd", noise="0", seed="0",
                                    measure="roughness", runs="01-20")
    text = jinja2.Environment(trim_blocks=True, lstrip_blocks=True).from_string(template).render(
        snakemake=snakemake, files=list(files), categories={})
    # the report adds a link target per category; these stand in for them
    text += "\n\n" + "\n".join(f".. _{name}: #" for name in (
        "Findings", "Tables", "Training", "Generalisation", "Landscapes per study", "Stability"))
    return publish_parts(text, writer="html", settings_overrides={"halt_level": 2, "report_level": 5})["body"]


@pytest.mark.parametrize("caption", sorted(p.name for p in REPORT.glob("*.rst") if p.name != "workflow.rst"))
def test_every_caption_is_clean_restructured_text(caption):
    for study in ("seeds", "momentum", "generalisation", "stability"):
        body = render((REPORT / caption).read_text(), study=study)
        assert body.strip() and "{{" not in body and "system-message" not in body


def test_shared_runs_are_named_in_the_captions_of_both_studies():
    caption = (REPORT / "training_figure.rst").read_text()
    assert "very runs of the study <tt class=\"docutils literal\">seeds</tt>" in render(caption, study="momentum")
    assert "very runs of the study <tt class=\"docutils literal\">momentum</tt>" in render(caption, study="seeds")
    assert "very runs" not in render(caption, study="noise")


def test_front_page_pastes_in_the_pages_fragments(tmp_path):
    claims = front_page.claims_html(claims_tables())
    claims += "".join(f"<p>{'a sentence ' * 20}</p>" for _ in range(60))  # more than docutils takes on one line
    pages = {"overview.html": "<table class=\"overview\"><tr><th>Data</th><td>images</td></tr></table>",
             "claims.html": claims,
             "generalisation.html": "<p>the gap spans 0.01 to 0.13</p>"}
    files = []
    for name, body in pages.items():
        path = tmp_path / name
        path.write_text(page_html.html_page(name, "<p>not on the front page</p>" + page_html.fragment(body)))
        files.append(Result(path))
    body = render((REPORT / "workflow.rst").read_text(), files)  # docutils fails on any error, long lines too
    assert "not on the front page" not in body
    assert body.index("images") < body.index("part: supported") < body.index("the gap spans")
    flat = " ".join(body.split())
    for text in ("whole claim: partly supported", "The measures named here", "<code>probe_largest_rise</code>"):
        assert text in flat


# --- the 3-D pages ---------------------------------------------------------------------------------


def surface(n, offset=0.0):
    x, y = np.linspace(-1, 1, n), np.linspace(-1, 1, n)
    loss = offset + x[None, :] ** 2 + y[:, None] ** 2
    return {"xcoordinates": x, "ycoordinates": y, "train_loss": loss, "dice": 1 - loss, "iou": 1 - loss,
            "attrs": {"outcome": "finished"}}


def test_3d_pages_stay_under_the_budget_and_hold_every_run_once_in_order():
    runs = [surface_viewer.run_entry(f"run{k}", surface(21, k), None) for k in range(12)]
    one = len(surface_viewer.page_html("t", runs[:1]).encode())
    each = len(surface_viewer.page_html("t", runs[:2]).encode()) - one
    budget = one + 3 * each  # room for about four runs a page
    pages = surface_viewer.pack_pages("t", runs, budget)
    assert len(pages) > 1
    assert [a for a, _, _ in pages][0] == 1 and pages[-1][1] == len(runs)
    for (a, b, page), following in zip(pages, pages[1:] + [(len(runs) + 1, None, None)]):
        assert len(page.encode()) <= budget and following[0] == b + 1
        data = json.loads(re.search(r'id="landscape-data" type="application/json">(.*?)</script>', page).group(1))
        assert [r["name"] for r in data["runs"]] == [f"run{k}" for k in range(a - 1, b)]
    # the values travel as float32, rows = y, exactly as the surface holds them
    values = np.frombuffer(__import__("base64").b64decode(runs[3]["planes"][0]["loss"]), "<f4").reshape(21, 21)
    np.testing.assert_allclose(values, surface(21, 3)["train_loss"], rtol=1e-6)
    assert runs[0]["planes"][1]["unavailable"]
    with pytest.raises(ValueError, match="coarser grid"):
        surface_viewer.pack_pages("t", runs, one - each // 2)


def test_default_budget_keeps_a_page_under_the_data_url_limit():
    # base64 makes 4 characters of every 3 bytes; the data URL's header is short
    assert surface_viewer.PAGE_BUDGET * 4 / 3 + 100 < surface_viewer.DATA_URL_LIMIT
