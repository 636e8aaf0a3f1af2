"""The front page's fragments and the pages they come from: what was run (`overview_html`),
the claims table with its rules, plan and glossary (`claims_html`), and the paragraph on the
generalisation study (`generalisation_line`, in `table_pages`).

The front page (report/workflow.rst) pastes in the part of each page between `FRAGMENT_BEGIN`
and `FRAGMENT_END` (`page_html`), so nothing on the front page is only a download.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Sequence

import pandas as pd

from .page_html import (
    breakable,
    cell,
    fragment,
    glossary_html,
    html_page,
    is_text,
    number,
    paragraph,
    write_page,
)
from .table_pages import findings_page, interval_note


def _arch_words(name: str, arch: dict) -> str:
    if "library" in arch or "module" in arch:
        return f"{name} ({arch.get('library', arch.get('module'))} {arch.get('name', '')})".strip()
    parts = ["batch norm" if arch.get("norm") == "batch" else "no normalisation"]
    if arch.get("skip", "concat") != "concat":
        parts.append("no skips" if arch["skip"] == "none" else f"skips {arch['skip']}")
    return f"{name} ({', '.join(parts)})"


def overview_rows(dataset: dict, archs: dict[str, dict], studies: dict[str, dict], runs: pd.DataFrame,
                  training: dict) -> list[tuple[str, str]]:
    """What was run, as (heading, text) rows: data, model, training, runs and seeds, outcomes.

    `dataset`: name, source, train and heldout image counts, size; `archs`: name -> resolved
    architecture; `studies`: name -> spec (archs, optimizers, noise, seeds); `runs`: one row per
    run (`run`, `outcome`, and `study` where known); `training`: epochs, batch size and
    optimisers from the config.
    """
    shapes = {(a.get("depth"), a.get("base_width")) for a in archs.values() if "library" not in a and "module" not in a}
    model = "U-Net, " + "; ".join(f"depth {d}, base width {w}" for d, w in sorted(shapes, key=str)) if shapes else "models"
    model += ": " + ", ".join(_arch_words(n, a) for n, a in archs.items())
    optimisers = ", ".join(f"{n} (lr {number(o['lr'])}, momentum {number(o['momentum'])})"
                           for n, o in training["optimizers"].items())

    def conditions(spec: dict) -> int:
        count = len(spec["archs"]) * len(spec["optimizers"]) * len(spec["noise"])
        for key in ("lr", "batch_size", "train_size"):
            count *= len(spec.get(key) or [None])
        return count

    study_text = "; ".join(
        f"{name}: {conditions(spec)} conditions x {len(spec['seeds'])} seed{'s' * (len(spec['seeds']) != 1)}"
        for name, spec in studies.items())
    shared = _shared_studies(studies, runs)
    counts = runs.drop_duplicates("run")["outcome"].value_counts()
    order = ["finished"] + sorted(o for o in counts.index if o != "finished")
    outcomes = ", ".join(f"{int(counts.get(o, 0))} {o.replace('_', ' ')}" for o in order)
    size = dataset["size"]
    source = {"synthetic": "synthetic skin-lesion images", "isic": "ISIC images", "folder": "images from a folder"}
    return [
        ("Data", f"{source.get(dataset['source'], dataset['source'])} ({dataset['name']}): {dataset['train']} "
                 f"training and {dataset['heldout']} held-out images of {size[0]} x {size[1]} px"),
        ("Model", model),
        ("Training", f"{training.get('loss', 'dice')} loss, at most {training['epochs']} epochs (stopped at a plateau), "
                     f"batch {training['batch_size']}; {optimisers}; a study may set its own learning rates, batch "
                     f"sizes, training subsets and budget (the run ids say which)"),
        ("Runs", f"{runs['run'].nunique()} trainings{shared}; seeds per condition by study: {study_text}. Per-run "
                 f"figures (Landscapes per run) are drawn for the first seed of each condition only; any other "
                 f"run's on request by file name."),
        ("Outcomes", outcomes + " (the landscapes describe finished runs only)"),
    ]


def _list_table(rows: list[tuple[str, str]], widths: str = "18 82") -> list[str]:
    lines = [".. list-table::", f"   :widths: {widths}", ""]
    for key, value in rows:
        lines += [f"   * - {key}", f"     - {value}"]
    return lines + [""]


def overview_rst(dataset: dict, archs: dict[str, dict], studies: dict[str, dict], runs: pd.DataFrame,
                 training: dict) -> str:
    """What was run (`overview_rows`) as a reStructuredText table."""
    return "\n".join(_list_table(overview_rows(dataset, archs, studies, runs, training)))


def overview_html(rows: list[tuple[str, str]]) -> str:
    """What was run as the HTML table the front page and the page "what was run" show."""
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table class=\"overview\"><tbody>{body}</tbody></table>"


def _shared_studies(studies: dict[str, dict], runs: pd.DataFrame) -> str:
    """Words naming studies that hold the very same runs (each run is trained once), e.g.
    " (the seeds and momentum studies are the same 20 runs)"; "" when none do."""
    if "study" not in runs.columns:
        return ""
    sets = {name: frozenset(runs.loc[runs["study"] == name, "run"]) for name in studies}
    groups: dict[frozenset, list[str]] = {}
    for name, members in sets.items():
        if members:
            groups.setdefault(members, []).append(name)
    same = [(names, len(members)) for members, names in groups.items() if len(names) > 1]
    if not same:
        return ""
    words = "; ".join(f"the {' and '.join(names)} studies are the same {count} runs, compared differently"
                      for names, count in same)
    return f" ({words})"


DECIDED = ("supported", "partly supported", "contradicted", "no effect")
UNDECIDED = ("inconclusive at this n", "too few runs")


def _power(claims: pd.DataFrame) -> str:
    """The power the runs to decide were computed for, in words ("80%")."""
    values = claims["power"].dropna().unique() if "power" in claims.columns else []
    return f"{100 * values[0]:g}%" if len(values) == 1 else "the configured"


def claims_plan(claims: pd.DataFrame) -> tuple[str, list[str]]:
    """The front page's plan: which parts these runs decide (a sentence), and for each undecided
    part how many runs would decide it under its own rule (every stratum of its primary measure
    decided, at the claim's Holm threshold), fewest first (one line each)."""
    from unetscape.analysis.findings import runs_words

    parts = claims.drop_duplicates(["claim", "part"])
    tested = parts[parts["part_verdict"].isin(DECIDED + UNDECIDED)]
    if tested.empty:
        return "No part of any claim could be tested with these runs.", []
    decided = tested[tested["part_verdict"].isin(DECIDED)]
    undecided = tested[tested["part_verdict"].isin(UNDECIDED)].copy()
    compared = claims[claims["part_verdict"].isin(DECIDED + UNDECIDED) & (claims["kind"] != "dose_response")]
    used = sorted({int(v) for v in pd.concat([compared["n_a"], compared["n_b"]]).dropna()})
    used_text = f"{used[0]}–{used[-1]}" if len(used) > 1 else (str(used[0]) if used else "–")
    head = f"With {used_text} runs per group these runs decide {len(decided)} of {len(tested)} parts"
    head += (": " + "; ".join(f"{r['claim_text']}: {r['part_text']} ({r['part_verdict']})"
                             for _, r in decided.iterrows()) + ".") if len(decided) else "."
    if len(undecided):
        head += (f" To decide the others, each needs this many runs per condition: enough for every comparison "
                 f"of its primary measure to be decided (the difference found, or shown within ±delta) with "
                 f"{_power(claims)} power at the claim's strictest Holm threshold, if the observed effects are "
                 f"the true ones. Raise seeds of the part's study (on the cluster where it is many):")
    items = []
    undecided["_order"] = undecided["part_seeds_needed"].fillna(math.inf)
    for _, r in undecided.sort_values("_order", kind="stable").iterrows():
        needed = runs_words(r["part_seeds_needed"], r.get("kind"))
        what = needed if needed != "–" else "runs needed cannot be estimated (a group has fewer than two runs)"
        items.append(f"{what}: {r['claim_text']}: {r['part_text']} ({r['metric']}, study {r['study']})")
    return head, items


def _critical_lrs(row: pd.Series) -> str:
    """A dose response's learning rates at 50% failure, from the fit, or where at least half of
    a group's runs failed when the fit does not cross 50% within the sweep; '' for other kinds."""
    if row.get("kind") != "dose_response":
        return ""
    words = []
    for side in ("a", "b"):
        fitted, observed = row.get(f"critical_lr_{side}"), row.get(f"half_failed_lr_{side}")
        group = breakable(str(row[f"group_{side}"]))
        if pd.notna(fitted):
            words.append(f"{group} {number(fitted)}")
        elif pd.notna(observed):
            words.append(f"{group} {number(observed)} (half its runs failed)")
        else:
            words.append(f"{group} none in the sweep")
    return "; lr at 50% failure: " + ", ".join(words)


CLAIMS_HEADERS = ["Part of the claim", "Verdict on the part", "Comparison of its primary measure (stratum): effect "
                  "[interval at 1 - alpha/m]", "Runs (a + b)", "Holm p", "This comparison", "Runs to decide it"]


def claims_rows(claims: pd.DataFrame) -> list[dict]:
    """The claims table's rows: per claim a row per (part, stratum) comparison of the part's
    primary measure, every cell from that comparison, then a row with the claim's verdict.

    Each row: `kind` ("comparison" or "claim"), `part`, `verdict` (the part's, on the part's
    first row, or the claim's), `first` (the part's first row), `span` (rows of the part),
    `effect`, `n`, `p`, `decision`, `needed`, `note` (why an interval excluding 0 is not a
    difference), `metric` (named by the row)."""
    from unetscape.analysis.findings import runs_words

    rows = []
    for _, claim in claims.groupby("claim", sort=False):
        parts = [str(p) for p in claim["part"]]
        for k, (_, row) in enumerate(claim.iterrows()):
            first = k == 0 or parts[k] != parts[k - 1]
            span = next((j for j in range(k, len(parts)) if parts[j] != parts[k]), len(parts)) - k
            entry = {"kind": "comparison", "part": row["part_text"], "verdict": row["part_verdict"], "first": first,
                     "span": span, "effect": "–", "n": "–", "p": "–", "decision": "–", "needed": "–",
                     "note": "", "metric": None}
            if is_text(row.get("test")):
                text, _ = cell(row, ["effect", "effect_ci_low", "effect_ci_high"])
                within = row["within"] if is_text(row.get("within")) else "all runs"
                entry |= {"metric": row["metric"], "n": f"{number(row['n_a'])} + {number(row['n_b'])}",
                          "effect": (breakable(f"{row['metric']} ({within}, {row['group_b']} vs {row['group_a']})")
                                     + f": {text}" + _critical_lrs(row)),
                          "p": number(row["p_holm"]), "decision": str(row["decision"]), "note": interval_note(row)}
                if row["decision"] in ("inconclusive", "too few runs", "cannot reach alpha at this n"):
                    entry["needed"] = runs_words(row["seeds_needed"], row.get("kind"))
            elif is_text(row.get("note")):
                entry["effect"] = str(row["note"])
            rows.append(entry)
        head = claim.iloc[0]
        summary = str(head["claim_summary"]) if is_text(head.get("claim_summary")) else str(head["claim_verdict"])
        why = summary.split(": ", 1)[1] if ": " in summary else ""
        rows.append({"kind": "claim", "part": head["claim_text"], "verdict": head["claim_verdict"],
                     "why": why.replace(" -- ", ": ")})
    return rows


def claims_notes(claims: pd.DataFrame) -> dict:
    """What goes under the claims table: the rules, what the columns mean (`columns`), the
    plan (`plan`, `plan_items`) and the measures the table names (`measures`)."""
    from unetscape.analysis.findings import CLAIM_RULE, PART_RULE

    compared = claims[claims["test"].map(is_text)] if "test" in claims.columns else claims.iloc[:0]
    margins = dict(zip(compared["metric"], compared["equivalence_margin"]))
    margins_words = ", ".join(f"{m} ±{number(v)}" for m, v in margins.items() if pd.notna(v))
    levels = sorted({float(f"{100 * v:.3g}") for v in compared.get("ci_level", pd.Series(dtype=float)).dropna()})
    left_out = int(compared["n_unconverged"].fillna(0).sum()) if "n_unconverged" in compared else 0
    columns = (
        "Read each claim's rows top down: first the verdict on each part (from its comparisons), then, in the "
        "claim's own row, the verdict on the claim as a whole. Effect: the group with the factor (batch norm, "
        "momentum, skips) minus the one without, the change over the noise levels that the fitted line predicts, "
        "or the log odds ratio of failing at the same learning rate. Interval: at the claim's Bonferroni level "
        "1 - alpha/m (m the claim's primary comparisons; " + (", ".join(f"{v:g}%" for v in levels) if levels else "–")
        + " here). An interval that excludes 0 beside a decision other than different (or negligible) says why "
        "under it: the interval (bootstrap) and the test (Welch, Fisher, logistic) are different methods. Runs "
        "(a + b) = runs per group; Holm p = the difference test's p-value, Holm-adjusted within the claim; this "
        "comparison = its decision (different, equivalent within ±delta, negligible, inconclusive, too few runs); "
        f"runs to decide it: for {_power(claims)} power to decide this comparison (difference found or "
        "equivalence shown) at alpha/m, if the observed effect is the true one."
        + (f" Margins (±delta, the smallest difference that matters, fixed in the config): {margins_words}."
           if margins_words else "")
        + f" Curvature values left out because their Lanczos solve did not converge: {left_out}."
    )
    plan, items = claims_plan(claims)
    named = [r["metric"] for r in claims_rows(claims) if r.get("metric")]
    return {"rules": PART_RULE + " " + CLAIM_RULE, "columns": columns, "plan": plan, "plan_items": items,
            "measures": list(dict.fromkeys(named))}


def claims_rst(claims: pd.DataFrame) -> str:
    """The poster's claims as a reStructuredText table (`claims_rows`), the rules, what the
    columns mean, the plan and a glossary of the measures named (the file claims.rst)."""
    from unetscape.analysis.glossary import glossary_lines

    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 17 12 29 7 8 12 15", ""]
    lines += ["   * - " + CLAIMS_HEADERS[0]] + [f"     - {h}" for h in CLAIMS_HEADERS[1:]]
    for row in claims_rows(claims):
        if row["kind"] == "claim":
            cells = [f"**Claim: {row['part']}**", f"**whole claim: {row['verdict']}**", row["why"], "", "", "", ""]
        else:
            effect = row["effect"] + (f" ({row['note']})" if row["note"] else "")
            cells = [row["part"] if row["first"] else "", f"**part: {row['verdict']}**" if row["first"] else "",
                     effect, row["n"], row["p"], row["decision"], row["needed"]]
        lines += [f"   * - {cells[0]}".rstrip()] + [f"     - {c}".rstrip() for c in cells[1:]]
    notes = claims_notes(claims)
    lines += ["", notes["rules"], "", notes["columns"], "", f"**Plan.** {notes['plan']}", ""]
    lines += [f"- {item}" for item in notes["plan_items"]] + [""] * bool(notes["plan_items"])
    if notes["measures"]:
        lines += ["**The measures named here:**", "", *glossary_lines(notes["measures"]), ""]
    return "\n".join(lines)


def claims_html(claims: pd.DataFrame) -> str:
    """The poster's claims as HTML (the front page's and the page "claims"): the table, its
    part cells spanning the part's comparisons, then the rules, what the columns mean, the plan
    and a glossary of the measures named."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in CLAIMS_HEADERS)
    body = []
    for row in claims_rows(claims):
        if row["kind"] == "claim":
            body.append(f"<tr class=\"claim\"><td><b>Claim: {html.escape(row['part'])}</b></td>"
                        f"<td><b>whole claim: {html.escape(row['verdict'])}</b></td>"
                        f"<td colspan=\"5\">{html.escape(row['why'])}</td></tr>")
            continue
        cells = ""
        if row["first"]:
            cells += (f"<td rowspan=\"{row['span']}\">{html.escape(row['part'])}</td>"
                      f"<td rowspan=\"{row['span']}\"><b>part: {html.escape(row['verdict'])}</b></td>")
        note = f"<br><span class=\"small\">{html.escape(row['note'])}</span>" if row["note"] else ""
        cells += (f"<td>{html.escape(row['effect'])}{note}</td><td class=\"num\">{html.escape(row['n'])}</td>"
                  f"<td class=\"num\">{html.escape(row['p'])}</td><td>{html.escape(row['decision'])}</td>"
                  f"<td>{html.escape(row['needed'])}</td>")
        body.append(f"<tr>{cells}</tr>")
    widths = "".join(f"<col style=\"width:{w}%\">" for w in (15, 12, 33, 8, 7, 11, 14))
    text = (f"<table class=\"claims\"><colgroup>{widths}</colgroup><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")
    notes = claims_notes(claims)
    text += paragraph(notes["rules"]) + paragraph(notes["columns"])
    text += f"<p><b>Plan.</b> {html.escape(notes['plan'])}</p>"
    if notes["plan_items"]:
        text += "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in notes["plan_items"]) + "</ul>"
    if notes["measures"]:
        text += glossary_html(notes["measures"])
    return text


def dataset_summary(path, name: str, source: str) -> dict:
    """Image counts and size of the prepared data set, and where it came from."""
    from unetscape.data.store import load_dataset

    data = load_dataset(path)
    return {"name": name, "source": data.provenance.get("source", source), "train": len(data.ids),
            "heldout": 0 if data.heldout is None else len(data.heldout.ids), "size": list(data.images.shape[1:3])}


def write_overview(dataset_path, settings: dict, training_tables: Sequence, rst_out, html_out) -> None:
    """What rule report_overview writes: what was run as reStructuredText and as the page the
    front page pastes in. `settings`: data (name, source), archs, studies and training
    (epochs, batch_size, optimizers), as the rule passes them."""
    # each table is a study's (results/tables/training_{study}.csv): the study of each row
    runs = pd.concat([pd.read_csv(p).assign(study=Path(p).stem.removeprefix("training_")) for p in training_tables],
                     ignore_index=True)
    data = dataset_summary(dataset_path, settings["data"]["name"], settings["data"]["source"])
    rows = overview_rows(data, settings["archs"], settings["studies"], runs, settings["training"])
    write_page("\n".join(_list_table(rows)), rst_out)
    write_page(html_page("What was run", fragment(overview_html(rows))), html_out)


def write_findings_pages(findings_csv, claims_csv, claims_out, page_out, claims_page_out) -> None:
    """What rule findings_pages writes: the claims as reStructuredText and as the page the front
    page pastes in, and the page of every comparison."""
    claims = pd.read_csv(claims_csv)
    write_page(claims_rst(claims), claims_out)
    write_page(html_page("The poster's claims", fragment(claims_html(claims))), claims_page_out)
    findings_page(findings_csv, page_out)
