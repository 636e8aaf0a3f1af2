"""The report's tables as pages: a study's conditions, runs and direction and seed variance,
every comparison of the findings, and the generalisation ranking. Each page ends with a glossary
of the measures it names; the CSV stays beside it as the download.
"""

from __future__ import annotations

import html
import math
import re
from typing import Sequence

import pandas as pd

from .page_html import (
    breakable,
    cell,
    column_words,
    display_columns,
    fragment,
    glossary_html,
    html_page,
    html_table,
    is_missing,
    is_text,
    number,
    numeric_cell,
    paragraph,
    write_page,
)
from .page_sections import (
    IDENTITY,
    condition_names,
    contents_line,
    factor_words,
    sections_html,
    split_sections,
    varied_factors,
)


def _outcome_columns(columns: Sequence[str]) -> list[str]:
    """`n` and the per-outcome counts `n_<outcome>` of a conditions table, whatever the outcomes."""
    return ["n"] * ("n" in columns) + [c for c in columns if re.fullmatch(r"n_[a-z_]+", c) and c != "n_left_out"]


def conditions_page(title: str, conditions_csv, out, level: float) -> None:
    """The conditions of a study: runs by outcome, then every measure as 'mean [interval]'
    over the condition's finished runs (the stability numbers: over all its runs) with its
    standard deviation and count, in sections of a few measures, and a glossary."""
    frame = pd.read_csv(conditions_csv)
    frame = pd.concat([condition_names(frame).rename("condition"), frame], axis=1)
    counts = _outcome_columns(list(frame.columns))
    measures = [c.removesuffix("_mean") for c in frame.columns if c.endswith("_mean")]
    means = frame.rename(columns={f"{m}_mean": m for m in measures})
    headers = {c: column_words(c) for c in counts} | {m: column_words(m) for m in measures}
    headers |= {"condition": "condition", "note": "note"}
    extra = {m: [("sd", f"{m}_std"), ("n", f"{m}_n")] for m in measures}
    notes = ["note"] if "note" in frame.columns and frame["note"].notna().any() else []
    rates = [r for r in ("finished_rate", "diverged_rate") if r in frame.columns]
    headers |= {r: column_words(r) for r in rates}
    sections = [("Runs by outcome", counts + rates + notes)] + split_sections(measures)
    body = paragraph(
        f"One row per condition: its runs by training outcome, then for each measure the mean over the "
        f"condition's finished runs (the stability numbers: over all its runs), its {100 * level:g}% bootstrap "
        f"interval over seeds under it (none with too few runs: see the note), and its standard deviation (sd) "
        f"and the number of runs with a value (n). The same table, one column per statistic: {conditions_csv}."
    ) + contents_line(sections)
    body += sections_html(means, ["condition"], sections, headers, extra)
    body += glossary_html(measures)
    write_page(html_page(title, body), out)


def _run_name(row: pd.Series, factors: Sequence[str]) -> str:
    words = [factor_words(f, row[f]) for f in factors if f in row]
    return ", ".join(words + [f"seed {row['seed']}"]) if "seed" in row else str(row.get("run", ""))


def runs_page(title: str, runs_csv, out) -> None:
    """The runs of a study, one row per run (its condition and seed, its outcome): every
    column of the runs table in sections of a few measures, a standard error under its value."""
    frame = pd.read_csv(runs_csv)
    factors = varied_factors(frame)
    names = pd.Series([_run_name(row, factors) for _, row in frame.iterrows()], index=frame.index, name="name")
    frame = pd.concat([names, frame], axis=1)
    columns = [c for c in frame.columns if c not in IDENTITY and c not in ("name", "outcome")
               and not (c.endswith("_se") and c.removesuffix("_se") in frame.columns)
               and not c.endswith("_top_eigenvalues")]
    columns = [c for c in columns if frame[c].notna().any()]
    headers = {c: column_words(c) for c in columns} | {"name": "run", "outcome": "outcome"}
    extra = {c: [("±", f"{c}_se")] for c in columns if f"{c}_se" in frame.columns}
    sections = split_sections(columns)
    body = paragraph(
        f"One row per run of the study, named by its condition and seed, with its training outcome. A number "
        f"with a standard error has it under its value (±): over the run's random direction sets for the "
        f"numbers averaged over directions, over the held-out images for the held-out numbers. Runs that did "
        f"not finish have no landscape numbers. The same table, with the run ids: {runs_csv}."
    ) + contents_line(sections)
    body += sections_html(frame, ["name", "outcome"], sections, headers, extra)
    body += glossary_html(columns)
    write_page(html_page(title, body), out)


DIRECTION_COLUMNS = {"runs": "runs", "sets": "direction sets per run", "sd_direction": "SD between directions",
                     "sd_seed": "SD between seeds (beyond directions)", "direction_share": "direction's share",
                     "se_directions": "SE of a run's average", "se_over_sd_seed": "SE / SD between seeds",
                     "criterion": "SE at most half the seeds' SD"}


def directions_page(title: str, directions_csv, out) -> None:
    """How much of each number made from random directions is the direction and how much the
    seed: one table per measure, one row per condition."""
    frame = pd.read_csv(directions_csv)
    body = paragraph(
        "Every run is measured on several seeded direction sets; a one-way random-effects model (the ANOVA "
        "estimator) splits each number's variance into its part within a run (another direction, the same "
        "weights) and between seeds (what a seed changes beyond what a direction does). The direction's share "
        "is its part of a single plane's variance; the standard error (SE) is that of a run's average over its "
        "sets, what the tables and findings use; the criterion is met where it is at most half the seeds' "
        f"standard deviation. The same table: {directions_csv}."
    )
    if frame.empty or "metric" not in frame.columns:
        body += paragraph("No numbers made from random directions: the study has no landscapes or no finished run.")
        write_page(html_page(title, body), out)
        return
    frame = pd.concat([condition_names(frame).rename("condition"), frame], axis=1)
    columns = [c for c in DIRECTION_COLUMNS if c in frame.columns]
    for metric, rows in frame.groupby("metric", sort=False):
        body += (f"<h2>{html.escape(column_words(metric))} <code>{html.escape(metric)}</code></h2>"
                 + html_table(rows, ["condition"] + columns, DIRECTION_COLUMNS | {"condition": "condition"}))
    body += glossary_html(frame["metric"].unique())
    write_page(html_page(title, body), out)


def interval_note(row: pd.Series) -> str:
    """Why an interval that excludes 0 sits beside a decision other than 'different': the
    interval and the test are different methods; '' when nothing needs saying."""
    low, high = row.get("effect_ci_low"), row.get("effect_ci_high")
    if is_missing(low) or is_missing(high) or not (low > 0 or high < 0):
        return ""
    if str(row.get("decision")) in ("different", "negligible"):
        return ""
    test = row.get("test") if is_text(row.get("test")) else "the test"
    return (f"the interval excludes 0, but {test}'s Holm-adjusted p ({number(row.get('p_holm'))}) is not below "
            f"alpha: interval and test are different methods and disagree at this n, so the comparison stays "
            f"{row.get('decision')}")


def _findings_cells(row: pd.Series) -> list[str]:
    """The cells of one comparison on the findings page, every one from this row."""
    from unetscape.analysis.findings import runs_words

    left = row.get("n_unconverged")
    n_lines = [f"{number(left)} left out (Lanczos)" if pd.notna(left) and left else ""]
    effect, _ = cell(row, ["effect", "effect_ci_low", "effect_ci_high"])
    value, _, interval = effect.partition(" [")
    level = row.get("ci_level")
    margin = row.get("equivalence_margin")
    decided = str(row.get("decision", ""))
    verdict = str(row.get("verdict", ""))
    needed = runs_words(row.get("seeds_needed"), row.get("kind")) if decided != "different" else "–"
    notes = [t for t in (f"runs to decide it: {needed}" if needed != "–" else "", interval_note(row),
                         str(row["note"]) if is_text(row.get("note")) else "") if t]
    stratum = str(row["within"]) if is_text(row.get("within")) else "all runs"
    compared = f"{row['group_b']} vs {row['group_a']}"
    small = "".join(f"<br><span class=\"small\">{html.escape(t)}</span>" for t in notes)
    return [
        f"<td class=\"text\"><code>{html.escape(breakable(str(row['metric'])))}</code><br>"
        f"<span class=\"small\">{html.escape(str(row.get('role', '')))}</span></td>",
        f"<td class=\"text\">{html.escape(breakable(compared))}<br>"
        f"<span class=\"small\">in {html.escape(breakable(stratum))}</span></td>",
        numeric_cell(f"{number(row.get('n_a'))} + {number(row.get('n_b'))}", n_lines),
        numeric_cell(f"{number(row.get('mean_a'))} / {number(row.get('mean_b'))}"),
        numeric_cell(value, [f"[{interval}" if interval else "",
                              f"at {100 * level:.3g}%" if pd.notna(level) else ""]),
        numeric_cell(number(row.get("p_holm")),
                      [f"p {number(row.get('p_value'))}" if pd.notna(row.get("p_value")) else ""]),
        numeric_cell(f"±{number(margin)}" if pd.notna(margin) else "–",
                      [f"Holm p {number(row.get('p_equivalence_holm'))}" if pd.notna(margin) else ""]),
        f"<td class=\"text\">{html.escape(decided)}"
        + (f" ({html.escape(verdict)})" if verdict and verdict != decided else "") + f"{small}</td>",
    ]


FINDINGS_HEADERS = ["measure", "compared (b vs a), in the stratum", "runs (a + b)", "means (a / b)",
                    "effect [interval at the claim's level]", "Holm p (raw p)", "±delta (equivalence Holm p)",
                    "decision (for the claim)"]


def findings_page(findings_csv, out) -> None:
    """Every comparison behind the claims' verdicts, by claim and part (primary measure first,
    then the secondary ones), one table per part, every cell of a row from that comparison."""
    from unetscape.analysis.findings import CLAIM_RULE, PART_RULE

    frame = pd.read_csv(findings_csv)
    body = paragraph(PART_RULE + " " + CLAIM_RULE)
    body += paragraph(
        "Columns: the measure compared (primary: it decides the part; secondary: shown beside it), the stratum "
        "(the runs that share it are compared), the two groups compared within it (the effect is b minus a, or as "
        "the effect says), runs per group (and values left out where a curvature solve did not converge), the groups' means, the "
        "effect with its interval at the claim's Bonferroni level, the difference test's Holm-adjusted p-value "
        "(the raw one under it), the equivalence margin with the equivalence test's Holm-adjusted p-value, the "
        "decision (and what it means for the claim), with the runs per group that would decide an undecided "
        "comparison under it.")
    groups = frame.groupby("claim", sort=False) if "claim" in frame.columns else [("", frame)]
    measures = []
    for key, claim in groups:
        first = claim.iloc[0]
        verdict = first.get("claim_verdict", "")
        body += (f"<h2>Claim: {html.escape(str(first.get('claim_text', key)))} — the claim as a whole: "
                 f"{html.escape(str(verdict))}</h2>")
        if "part" not in claim.columns or claim["part"].isna().all():
            body += paragraph(str(first.get("note", first.get("verdict", ""))))
            continue
        for _, part in claim.groupby("part", sort=False):
            body += (f"<h3>Part: {html.escape(str(part['part_text'].iloc[0]))} — this part: "
                     f"{html.escape(str(part['part_verdict'].iloc[0]))}</h3>")
            tested = part[part["metric"].notna()] if "metric" in part else part.iloc[:0]
            if tested.empty or tested["n_a"].isna().all():
                body += paragraph(str(part["note"].iloc[0]) if is_text(part["note"].iloc[0]) else "not tested")
                continue
            measures += list(tested["metric"])
            rows = "".join("<tr>" + "".join(_findings_cells(r)) + "</tr>" for _, r in tested.iterrows())
            head = "".join(f"<th>{html.escape(h)}</th>" for h in FINDINGS_HEADERS)
            body += f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    sources = sorted({str(s) for s in frame.get("source", pd.Series(dtype=str)).dropna()})
    body += paragraph("Numbers from: " + ", ".join(sources) + f". The same table, with every test statistic, "
                      f"the runs each test would need and the power settings: {findings_csv}.")
    body += glossary_html(measures)
    write_page(html_page("The poster's claims tested on the runs", body), out)


TAU_WORDS = {"tau": "within-condition tau", "tau_pooled": "pooled tau (mixes conditions)", "Psi": "granulated Psi"}


def tau_column_names(table: pd.DataFrame) -> list[str]:
    """The rank correlations a generalisation table holds, as it orders them: the within-condition
    `tau` (the headline), the pooled `tau_pooled`, the granulated `Psi` and any other
    `tau_*`/`Psi_*` (interval bounds and bookkeeping aside)."""
    return [c for c in table.columns if c in ("tau", "Psi") or re.fullmatch(r"(tau|Psi)_[a-z]+", c)
            and not c.endswith(("_low", "_high", "_factors", "_valid"))]


def _target_sentence(row: pd.Series, target_words: str, tau_columns: Sequence[str]) -> str:
    taus = "; ".join(f"{name} {cell(row, sources)[0]}" for name, sources in tau_columns)
    return f"{target_words[:1].upper()}{target_words[1:]}: {row.get('verdict', '')} ({taus})."


def _first(table: pd.DataFrame, column: str):
    return table[column].iloc[0] if column in table.columns and len(table) else math.nan


# The measures the front page's paragraph on generalisation names: the ones ranked first.
TOP_MEASURES = 3


def _top_measures(table: pd.DataFrame) -> pd.DataFrame:
    """The rows against held-out Dice of the measures ranked first."""
    return table[table["target"] == "final_heldout_dice"].sort_values("rank").head(TOP_MEASURES)


def generalisation_line(table: pd.DataFrame) -> str:
    """The front page's paragraph on generalisation, from the ranking table: which runs, the
    gap's range against the standard error of a held-out loss, whether the runs can rank
    measures, and the verdicts of the measures ranked first."""
    from unetscape.analysis.generalisation import (
        RANKABLE_SPREAD,
        STUDY,
        STUDY_CONDITION,
    )

    if table.empty:
        return "No generalisation table: no run finished with a value of any measure."
    within = str(_first(table, "within"))
    by_study = within == " x ".join(STUDY_CONDITION)
    finished, total = _first(table, "runs_finished"), _first(table, "runs_total")
    source = (f"the {STUDY} study ({number(finished)} finished of {number(total)} runs, compared within each "
              f"training-set size)" if by_study else
              f"the finished runs of every study ({number(finished)} of {number(total)}, compared within "
              f"conditions: {within.replace(' x ', ', ')})")
    gap_min, gap_max, se = _first(table, "gap_min"), _first(table, "gap_max"), _first(table, "heldout_se")
    ratio = _first(table, "spread_over_se")
    text = f"Which landscape measures predict generalisation, over {source}? "
    text += (f"The generalisation gap (held-out minus training Dice loss) spans {number(gap_min)} to "
             f"{number(gap_max)} (standard deviation {number(_first(table, 'gap_sd'))}), against a median standard "
             f"error of {number(se)} of a run's held-out loss: {number(ratio)} times. ")
    can_rank = str(_first(table, "can_rank")).lower() == "true"
    text += ("The gaps differ by more than their error, so the study can rank measures. " if can_rank else
             f"The gaps differ by less than {RANKABLE_SPREAD:g} times their error: the study cannot rank measures, "
             f"and its taus say little. ")
    within_ratio = _first(table, "within_over_se")
    if can_rank and pd.notna(within_ratio) and within_ratio < RANKABLE_SPREAD:
        text += (f"Within the groups the runs are compared in, though, the gap's standard deviation is only "
                 f"{number(within_ratio)} times that error, so the within-group taus rank differences not much "
                 f"larger than their noise. ")
    heldout = table[table["target"] == "final_heldout_dice"].sort_values("rank")
    predicts = heldout[heldout["verdict"].astype(str).str.startswith("predicts")]
    if predicts.empty:
        text += "After Holm's adjustment no measure predicts held-out Dice; the strongest within-group taus: "
    else:
        text += f"{len(predicts)} measure(s) predict held-out Dice after Holm's adjustment; ranked first: "
    top = _top_measures(table)
    text += "; ".join(f"{r['measure']} tau {number(r['tau'])} (Holm p {number(r['p_holm'])}: {r['verdict']})"
                      for _, r in top.iterrows()) + "."
    return text


def generalisation_page(table_csv, out, targets: dict[str, str], measures: dict[str, tuple[str, str]]) -> None:
    """The measures ranked by how well they predict held-out Dice: the front page's paragraph,
    one sentence per target for each measure, then the table, with every tau the table holds
    (within conditions and pooled over runs, read from its columns)."""
    table = pd.read_csv(table_csv)
    tau_names = tau_column_names(table)
    words = TAU_WORDS
    tau_columns = [(words.get(name, name), sources) for name, sources in display_columns(table, tau_names)]
    named = _top_measures(table)["measure"]
    body = fragment(paragraph(generalisation_line(table)) + glossary_html(named, "The measures this paragraph names"))
    body += paragraph(
        "Kendall's tau of each landscape measure with each target over the finished runs. The headline is "
        "the within-condition tau: each run is compared only with runs of its own condition (the generalisation "
        "study: its own training-set size; otherwise its architecture, optimiser and noise level), and the "
        "conditions' taus are averaged, so a measure is not rewarded for telling conditions apart. Its p-value "
        "shuffles the target among the runs of each condition and is Holm-adjusted over every measure and "
        "target (the chance of calling any measure predictive when none is stays below alpha); its interval "
        "resamples runs within conditions. The pooled tau over all runs and Jiang et al.'s granulated Psi are "
        "shown beside it: the pooled one mixes conditions, which are not independent of one another."
    )
    first = [t for t in targets if t in set(table["target"])][:1]
    order = table[table["target"].isin(first)].sort_values("rank")["measure"].tolist() if first else []
    order += [m for m in dict.fromkeys(table["measure"]) if m not in order]
    body += "<ul>"
    for measure in order:
        rows = table[table["measure"] == measure]
        kind = measures.get(measure, (measure, "?"))[1]
        kind = "a size of the weights" if kind == "larger" else f"larger = {kind}"
        sentences = [_target_sentence(r, targets.get(r["target"], r["target"]), tau_columns) for _, r in rows.iterrows()]
        rank = rows["rank"].iloc[0] if "rank" in rows else float("nan")
        body += (f"<li style=\"margin-bottom:4px\">rank {number(rank)}, <b>{html.escape(measure)}</b> "
                 f"({html.escape(kind)})<br>" + "<br>".join(html.escape(s) for s in sentences) + "</li>")
    body += "</ul>"
    columns = ["rank", "measure", "target", "n"] + tau_names + ["p_holm", "verdict"]
    shown = table.assign(target=table["target"].map(lambda t: targets.get(t, t)),
                         measure=table["measure"].map(lambda m: m.replace("_", "_\u200b")))
    body += html_table(shown, columns, {"n": "runs", "p_holm": "Holm p", "target": "against"} | words)
    body += paragraph(f"The full table, with the raw p-values, tau within each factor, the number of groups and "
                      f"the gap check: {table_csv}.")
    body += glossary_html(order)
    write_page(html_page("Which landscape measures predict generalisation?", body), out)


