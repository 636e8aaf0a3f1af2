"""The report's pages: tables on the page, the front page's fragments, 3-D pages under the limit."""

import json
import math
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from unetscape.plots import report_pages, surface_viewer


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


def test_conditions_page_shows_heldout_dice_with_its_interval_and_every_outcome(tmp_path):
    csv = tmp_path / "conditions_x.csv"
    pd.DataFrame({
        "arch": ["simple", "improved"], "optimizer": ["sgd", "sgd"], "noise": [0.0, 0.0],
        "n": [5, 5], "n_finished": [4, 2], "n_diverged": [0, 1], "n_unstable": [1, 2],
        "final_heldout_dice_mean": [0.81234, np.nan], "final_heldout_dice_ci_low": [0.8, np.nan],
        "final_heldout_dice_ci_high": [0.83, np.nan], "final_heldout_dice_std": [0.01, np.nan],
        "roughness_mean": [0.0123, 0.02], "roughness_ci_low": [0.01, 0.015], "roughness_ci_high": [0.014, 0.03],
        "note": ["", "too few runs"],
    }).to_csv(csv, index=False)
    out = tmp_path / "conditions.html"
    report_pages.conditions_page("Seeds: conditions", csv, out, 0.95)
    ((header, first, second),) = tables_of(out.read_text())
    assert header[:2] == ["arch", "runs"]  # the optimiser does not vary: not a column
    assert "unstable" in header  # an outcome the page was not written for still shows
    column = header.index("held-out hard Dice")
    assert first[column] == "0.812[0.8, 0.83]"  # value, then its interval under it
    assert second[column] == "–" and second[-1] == "too few runs"
    assert first[header.index("unstable")] == "1"


def test_findings_page_is_an_html_table_per_claim_part(tmp_path):
    csv = tmp_path / "findings.csv"
    pd.DataFrame({
        "claim": ["bn", "bn", "mom"], "claim_text": ["Batch norm", "Batch norm", "Momentum"],
        "claim_verdict": ["partly supported", "partly supported", "inconclusive at this n"],
        "claim_summary": ["partly supported: smoother -- supported; convex -- inconclusive at this n"] * 2
        + ["inconclusive at this n: sharper -- inconclusive at this n"],
        "part": ["smoother", "convex", "sharper"], "part_text": ["smoother", "more convex", "sharper minima"],
        "part_verdict": ["supported", "inconclusive at this n", "inconclusive at this n"],
        "role": ["primary", "primary", "primary"],
        "metric": ["roughness", "relative_nonconvexity", "relative_lambda_max"], "within": ["", "", ""],
        "group_a": ["norm=none"] * 2 + ["optimizer=sgd"], "group_b": ["norm=batch"] * 2 + ["optimizer=sgd_momentum"],
        "n_a": [5, 5, 5], "n_b": [5, 5, 5], "n_unconverged": [0, 1, 0], "mean_a": [1.0, 0.3, 2.0],
        "mean_b": [0.9, 0.1, 2.3], "effect": [-0.1, -0.2, 0.3], "effect_ci_low": [-0.15, -0.3, -0.1],
        "effect_ci_high": [-0.05, -0.1, 0.7], "p_holm": [0.01, 0.2, 0.4],
        "verdict": ["supports", "inconclusive", "inconclusive"],
        "decision": ["different", "inconclusive", "inconclusive"], "seeds_needed": [None, 12, 30], "source": "x.csv",
    }).to_csv(csv, index=False)
    out = tmp_path / "findings.html"
    report_pages.findings_page(csv, out)
    html = out.read_text()
    smoother, convex, sharper = tables_of(html)
    assert len(smoother) == len(convex) == len(sharper) == 2  # header + the part's comparison
    header = smoother[0]
    assert smoother[1][header.index("effect [interval at the family's level]")] == "-0.1[-0.15, -0.05]"
    assert convex[1][convex[0].index("left out (Lanczos)")] == "1"
    assert "Batch norm: partly supported: smoother -- supported" in html
    assert "smoother: supported" in html and "supported only when every part was tested" in html


def claims_of(findings_rows):
    return pd.DataFrame(findings_rows)


def comparison(claim, part, verdict, decision, needed=math.nan, part_needed=math.nan, n=5, kind="means",
               metric="roughness", within="arch=simple", **extra):
    return {"claim": claim, "claim_text": claim.title(), "claim_verdict": "partly supported",
            "claim_summary": f"partly supported: {part} -- {verdict}", "part": part, "part_text": part,
            "part_verdict": verdict, "part_seeds_needed": part_needed, "metric": metric, "kind": kind,
            "study": "seeds", "within": within, "group_a": "norm=none", "group_b": "norm=batch", "n_a": n, "n_b": n,
            "n_unconverged": 0, "effect": -0.5, "effect_ci_low": -0.9, "effect_ci_high": -0.1, "ci_level": 0.99,
            "p_holm": 0.2, "equivalence_margin": 1.0, "decision": decision, "seeds_needed": needed,
            "test": "Welch t-test", **extra}


def test_front_page_claims_table_has_a_row_per_part_and_stratum_then_the_claim_in_words():
    from unetscape.analysis.findings import claims_table, findings_table

    rng = np.random.default_rng(0)
    rows = [{"arch": a, "optimizer": o, "noise": 0.0, "seed": s, "norm": n, "skip": "concat", "outcome": "finished",
             "roughness": 4.0 - (2.0 if n == "batch" else 0) + rng.normal(0, 0.1),
             "relative_nonconvexity": 0.3 + rng.normal(0, 0.05), "probe_largest_rise": rng.uniform(0, 0.05),
             "relative_lambda_max": 2.0, "relative_lanczos_converged": s > 0}
            for o in ("sgd", "sgd_momentum") for a, n in (("simple", "none"), ("improved", "batch")) for s in range(5)]
    findings = findings_table({"seeds": (pd.DataFrame(rows), "t.csv")},
                              {"level": 0.95, "bootstrap": 500, "seed": 0, "min_runs": 3, "alpha": 0.05})
    text = report_pages.claims_rst(claims_table(findings))
    assert ":header-rows: 1" in text
    # batch norm: 3 parts x 2 optimisers; momentum, noise: one row per part (not tested), skips
    # 3: then a row per claim with its verdict in words; and a header row
    assert text.count("   * - ") == 1 + 6 + 3 + 1 + 3 + 4
    lines = text.splitlines()
    claim_row = lines.index("   * - **Claim: Batch norm gives normal behaviour**")
    assert lines[claim_row + 1] == "     - **partly supported**"
    assert lines[claim_row + 2].startswith("     - smoother -- supported; more convex -- ")
    smooth = next(line for line in lines if line.startswith("     - roughness")).replace("\u200b", "")
    assert re.search(r"roughness \(optimizer=sgd, norm=batch vs norm=none\): -\d\.\d+ \[-\d\.\d+, -\d\.\d+\]",
                     smooth), smooth
    assert "A claim is contradicted when any of its parts is" in text and "negligible" in text
    assert "Bonferroni level 1 - alpha/m" in text and "99.2%" in text  # m = 6 here
    assert "``roughness`` ±1" in text  # the margins
    # the non-convexity of the first run of each group was not converged: 4 values left out
    assert "did not converge: 4." in text
    # the glossary of the measures the table names, at the end
    glossary = text[text.index("**The measures named here:**"):]
    assert "- ``roughness``: mean over the run's random filter-normalised planes" in glossary
    assert "- ``relative_nonconvexity``:" in glossary and "- ``probe_largest_rise``:" in glossary
    assert "``relative_lambda_max``" not in glossary  # not named: its part was not tested


def test_front_page_plan_says_what_these_runs_decide_and_what_each_part_needs():
    claims = claims_of([
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
    text = report_pages.claims_rst(claims)
    plan = text[text.index("**Plan.**"):]
    assert plan.startswith("**Plan.** With 3–5 runs per group these runs decide 1 of 4 parts: "
                           "*Batch Norm*: smoother (supported).")
    # one line per undecided part, the runs its own rule needs (every stratum), fewest first
    items = [line for line in plan.splitlines() if line.startswith("- ")][:3]
    assert items == ["- 12 seeds per learning rate and group: *Momentum*: less stable (``failed``, study seeds)",
                     "- 35 runs per group: *Batch Norm*: more convex (``roughness``, study seeds)",
                     "- more than 10,000 runs per group: *Momentum*: rougher (``roughness``, study seeds)"]
    assert "*Noise*" not in plan  # a part without runs is no part to plan
    # the table's runs column: this comparison's own, where it is undecided
    rows = [line for line in text.splitlines() if line.startswith("     - ")]
    assert "     - 35 runs per group" in rows and "     - 9 seeds per learning rate and group" in rows
    assert rows[rows.index("     - **supported**") + 5] == "     - –"  # decided: nothing to plan
    assert "     - study 'noise' is not in the config" in rows
    # a sweep's learning rates at 50% failure: from the fit, or where half the runs failed
    sweep = next(r for r in rows if r.startswith("     - failed (arch=\u200bsimple")).replace("\u200b", "")
    assert sweep.endswith("; lr at 50% failure: norm=none 0.55, norm=batch 0.3 (half its runs failed)")


def test_generalisation_page_reads_every_tau_from_the_table(tmp_path):
    rows = []
    for rank, measure in enumerate(["roughness", "trace"], 1):
        for target in ("final_heldout_dice", "gap_loss"):
            rows.append({"measure": measure, "measure_is": "sharper", "target": target, "n": 20, "tau": 0.5 / rank,
                         "tau_low": 0.2, "tau_high": 0.7, "tau_pooled": 0.6, "Psi": 0.05, "p_value": 0.01,
                         "verdict": "predicts it: sharper minima go with better generalisation", "rank": rank})
    table = pd.DataFrame(rows)
    targets = {"final_heldout_dice": "held-out hard Dice", "gap_loss": "generalisation gap"}
    measures = {"roughness": ("roughness", "sharper"), "trace": ("trace", "sharper")}
    out = tmp_path / "g.html"
    table.to_csv(tmp_path / "g.csv", index=False)
    report_pages.generalisation_page(tmp_path / "g.csv", out, targets, measures)
    html = out.read_text()
    (rows_,) = tables_of(html)
    assert "within-condition tau" in rows_[0] and "pooled tau (mixes conditions)" in rows_[0]
    assert "granulated Psi" in rows_[0]
    # one sentence per target, each on its own line
    first = re.search(r"<li.*?</li>", html).group(0)
    assert first.count("<br>") == 2 and "Held-out hard Dice: predicts it" in first and "Generalisation gap:" in first
    # a table without the granulated Psi shows the other taus only
    table.drop(columns="Psi").to_csv(tmp_path / "g.csv", index=False)
    report_pages.generalisation_page(tmp_path / "g.csv", out, targets, measures)
    assert "granulated Psi" not in tables_of(out.read_text())[0][0]


def test_overview_counts_each_run_once_by_outcome():
    runs = pd.DataFrame({"run": ["a", "a", "b", "c"], "outcome": ["finished", "finished", "unstable", "finished"]})
    text = report_pages.overview_rst(
        {"name": "syn", "source": "synthetic", "train": 900, "heldout": 300, "size": [16, 16]},
        {"simple": {"norm": "none", "skip": "concat", "depth": 2, "base_width": 8},
         "improved_noskip": {"norm": "batch", "skip": "none", "depth": 2, "base_width": 8}},
        {"seeds": {"archs": ["simple"], "optimizers": ["sgd", "m"], "noise": [0], "seeds": [0, 1, 2]}},
        runs, {"epochs": 10, "batch_size": 4, "optimizers": {"sgd": {"lr": 0.01, "momentum": 0.0}}},
    )
    assert "900 training and 300 held-out images of 16 x 16 px" in text
    assert "depth 2, base width 8" in text and "improved_noskip (batch norm, no skips)" in text
    assert "3 trainings" in text and "seeds: 2 conditions x 3 seeds" in text
    assert "2 finished, 1 unstable" in text


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
