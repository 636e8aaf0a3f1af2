"""The report's pages of numbers: tables as HTML pages and the front page's fragments.

Snakemake's report shows a CSV as a download; an HTML result opens in the report's content
frame, so every table a reader looks for (held-out Dice per condition, the findings, the
generalisation ranking) is written here as a small self-contained HTML page beside its CSV.
Columns are read from the CSV as they come: a number `X` with `X_low`/`X_high` (or
`X_ci_low`/`X_ci_high`) beside it is shown as one cell, "X [low, high]", so a table that gains
a column or an interval shows it without a change here.

The front page (report/workflow.rst) pastes in two reStructuredText fragments: what was run
(`overview_rst`) and the claims (`claims_rst`): a row per comparison of each part's primary
measure, each claim's verdict in words, the rules, the plan and a glossary of the measures named.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
import re
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from unetscape.atomic import atomic_path

STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 12px; color: #222; }
h1 { font-size: 17px; margin: 0 0 6px; }
p { max-width: 60em; line-height: 1.4; margin: 4px 0 8px; }
table { border-collapse: collapse; margin: 6px 0 14px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; vertical-align: top; }
th { background: #f0f1f4; text-align: left; position: sticky; top: 0; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
.ci { color: #666; font-size: 11px; }
td.text { max-width: 24em; }
"""


# --- formatting ----------------------------------------------------------------------------


def number(value, digits: int = 3) -> str:
    """A number for a table cell: 3 significant digits, integers as integers, '–' for none."""
    if value is None or isinstance(value, str):
        return "–" if value is None else value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if not math.isfinite(value):
        return "–"
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def _bounds(columns: Sequence[str], name: str) -> tuple[str, str] | None:
    """The columns holding `name`'s interval, if the table has them."""
    base = name.removesuffix("_mean")
    for low, high in ((f"{name}_low", f"{name}_high"), (f"{base}_ci_low", f"{base}_ci_high"),
                      (f"{name}_ci_low", f"{name}_ci_high")):
        if low in columns and high in columns:
            return low, high
    return None


def display_columns(frame: pd.DataFrame, columns: Iterable[str] | None = None) -> list[tuple[str, list[str]]]:
    """(header, source columns) of each shown column: a value with its interval bounds is one
    column; the bounds are not shown on their own."""
    columns = [c for c in (frame.columns if columns is None else columns) if c in frame.columns]
    bounds = {c for name in frame.columns for pair in [_bounds(list(frame.columns), name)] if pair for c in pair}
    shown = []
    for name in columns:
        if name in bounds:
            continue
        pair = _bounds(list(frame.columns), name)
        shown.append((name, [name, *pair] if pair else [name]))
    return shown


def cell(row: pd.Series, sources: list[str]) -> tuple[str, bool]:
    """(text, numeric) of one cell: 'value [low, high]' where the value has an interval."""
    value = row[sources[0]]
    if isinstance(value, str):
        return value, False
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–", True
    text = number(value)
    if len(sources) == 3:
        low, high = row[sources[1]], row[sources[2]]
        if pd.notna(low) and pd.notna(high):
            text += f" [{number(low)}, {number(high)}]"
    return text, True


def html_table(frame: pd.DataFrame, columns: Iterable[str] | None = None, headers: dict[str, str] | None = None) -> str:
    """An HTML table of the frame's rows (numbers rounded, intervals beside their values)."""
    shown = display_columns(frame, columns)
    headers = headers or {}
    head = "".join(f"<th>{html.escape(headers.get(name, name))}</th>" for name, _ in shown)
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for _, sources in shown:
            text, numeric = cell(row, sources)
            if not numeric:
                cells.append(f"<td class=\"text\">{html.escape(text)}</td>")
                continue
            # the interval on a line of its own under its value keeps wide tables within the page
            value, _, interval = text.partition(" [")
            below = f"<br><span class=\"ci\">[{html.escape(interval)}</span>" if interval else ""
            cells.append(f"<td class=\"num\">{html.escape(value)}{below}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def html_page(title: str, body: str) -> str:
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")


def _write(text: str, out: str | os.PathLike) -> None:
    with atomic_path(out) as tmp:
        tmp.write_text(text)


def paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


# --- the tables' pages -----------------------------------------------------------------------

FACTORS = ("arch", "optimizer", "noise", "norm", "skip")
# What the conditions page shows of each condition, in this order where the table has it:
# held-out Dice first (what a reader looks for), then training and the landscape's headline measures.
CONDITION_MEASURES = {
    "final_heldout_dice_mean": "held-out hard Dice",
    "final_dice_mean": "training hard Dice",
    "gap_loss_mean": "generalisation gap (Dice loss)",
    "roughness_mean": "roughness",
    "sharpness_r0.5_mean": "sharpness (r = 0.5)",
    "relative_lambda_max_mean": "top eigenvalue, scale-normalised Hessian",
    "relative_nonconvexity_mean": "non-convexity, scale-normalised Hessian",
    "average_sharpness_mean": "adaptive average sharpness",
    "largest_rise_mean": "largest loss rise (all runs)",
    "step_volatility_mean": "step volatility (all runs)",
}


def _outcome_columns(columns: Sequence[str]) -> list[str]:
    """`n` and the per-outcome counts `n_<outcome>` of a conditions table, whatever the outcomes."""
    return ["n"] * ("n" in columns) + [c for c in columns if re.fullmatch(r"n_[a-z_]+", c) and c != "n_left_out"]


def conditions_page(title: str, conditions_csv, out, level: float) -> None:
    """The conditions of a study: runs by outcome, held-out Dice and the main measures as
    mean [interval] over the condition's finished runs."""
    frame = pd.read_csv(conditions_csv)
    factors = [f for f in FACTORS if f in frame.columns and (f == "arch" or frame[f].nunique() > 1)]
    counts = _outcome_columns(list(frame.columns))
    measures = [m for m in CONDITION_MEASURES if m in frame.columns]
    headers = {c: c.removeprefix("n_").replace("_", " ") if c != "n" else "runs" for c in counts}
    headers |= {m: f"{CONDITION_MEASURES[m]}" for m in measures}
    extra = ["note"] if "note" in frame.columns and frame["note"].notna().any() else []
    body = paragraph(
        f"One row per condition: its runs by training outcome, then the mean over its finished runs "
        f"(the stability numbers: over all its runs) with a {100 * level:g}% bootstrap interval over "
        f"seeds (none with too few runs: see the note). The full table, every measure with its standard deviation: {conditions_csv}."
    ) + html_table(frame, factors + counts + measures + extra, headers)
    _write(html_page(title, body), out)


FINDINGS_COLUMNS = ["role", "metric", "within", "group_a", "group_b", "n_a", "n_b", "n_unconverged", "mean_a",
                    "mean_b", "effect", "effect_is", "ci_level", "p_value", "p_holm", "equivalence_margin",
                    "p_equivalence_holm", "decision", "verdict", "seeds_needed", "critical_lr_a", "critical_lr_b",
                    "note"]
FINDINGS_HEADERS = {"within": "stratum", "effect": "effect [interval at the family's level]", "effect_is": "effect is",
                    "ci_level": "interval level", "p_value": "p", "p_holm": "Holm p", "equivalence_margin": "±delta",
                    "p_equivalence_holm": "equivalence Holm p", "n_unconverged": "left out (Lanczos)",
                    "seeds_needed": "runs to decide", "critical_lr_a": "lr at 50% failure, a",
                    "critical_lr_b": "lr at 50% failure, b"}


def findings_page(findings_csv, out) -> None:
    """Every comparison behind the claims' verdicts, by claim and part (primary measure first,
    then the secondary ones), as the findings table has it."""
    from unetscape.analysis.findings import CLAIM_RULE, PART_RULE

    frame = pd.read_csv(findings_csv)
    body = paragraph(PART_RULE + " " + CLAIM_RULE)
    for key, claim in frame.groupby("claim", sort=False) if "claim" in frame.columns else [("", frame)]:
        first = claim.iloc[0]
        verdict = first.get("claim_summary", first.get("claim_verdict", ""))
        body += (f"<h2 style=\"font-size:15px;margin:14px 0 2px\">{html.escape(str(first.get('claim_text', key)))}: "
                 f"{html.escape(str(verdict))}</h2>")
        if "part" not in claim.columns or claim["part"].isna().all():
            body += paragraph(str(first.get("verdict", "")))
            continue
        for _, part in claim.groupby("part", sort=False):
            body += (f"<h3 style=\"font-size:13px;margin:8px 0 2px\">{html.escape(str(part['part_text'].iloc[0]))}: "
                     f"{html.escape(str(part['part_verdict'].iloc[0]))}</h3>")
            shown = [c for c in FINDINGS_COLUMNS if c in part.columns and part[c].notna().any()]
            body += html_table(part, shown, FINDINGS_HEADERS)
    sources = sorted({str(s) for s in frame.get("source", pd.Series(dtype=str)).dropna()})
    body += paragraph("Numbers from: " + ", ".join(sources) + f". The same table, with every test statistic, "
                      f"the runs each test would need and the power settings: {findings_csv}.")
    _write(html_page("The poster's claims tested on the runs", body), out)


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


def generalisation_page(table_csv, out, targets: dict[str, str], measures: dict[str, tuple[str, str]]) -> None:
    """The measures ranked by how well they predict held-out Dice: one sentence per target for
    each measure, then the table, with every tau the table holds (pooled over runs and within
    conditions, read from its columns)."""
    table = pd.read_csv(table_csv)
    tau_names = tau_column_names(table)
    words = TAU_WORDS
    tau_columns = [(words.get(name, name), sources) for name, sources in display_columns(table, tau_names)]
    body = paragraph(
        "Kendall's tau of each landscape measure with each target over the finished runs. The headline is "
        "the within-condition tau: each run is compared only with runs of its own architecture, optimiser "
        "and noise level (they differ only in their seed), and the conditions' taus are averaged, so a "
        "measure is not rewarded for telling architectures apart. Its p-value shuffles the target among "
        "the runs of each condition and is Holm-adjusted over every measure and target (the chance of "
        "calling any measure predictive when none is stays below alpha); its interval resamples runs "
        "within conditions. The pooled tau over all runs and Jiang et al.'s granulated Psi are shown "
        "beside it: the pooled one mixes conditions, which are not independent of one another."
    )
    first = [t for t in targets if t in set(table["target"])][:1]
    order = table[table["target"].isin(first)].sort_values("rank")["measure"].tolist() if first else []
    order += [m for m in dict.fromkeys(table["measure"]) if m not in order]
    body += "<ul>"
    for measure in order:
        rows = table[table["measure"] == measure]
        kind = measures.get(measure, (measure, "?"))[1]
        sentences = [_target_sentence(r, targets.get(r["target"], r["target"]), tau_columns) for _, r in rows.iterrows()]
        rank = rows["rank"].iloc[0] if "rank" in rows else float("nan")
        body += (f"<li style=\"margin-bottom:4px\">rank {number(rank)}, <b>{html.escape(measure)}</b> "
                 f"(larger = {html.escape(kind)})<br>" + "<br>".join(html.escape(s) for s in sentences) + "</li>")
    body += "</ul>"
    columns = ["rank", "measure", "measure_is", "target", "n"] + tau_names + ["p_value", "p_holm", "verdict"]
    shown = table.assign(target=table["target"].map(lambda t: targets.get(t, t)))
    body += html_table(shown, columns, {"measure_is": "larger means"} | dict((n, w) for n, w in words.items()))
    body += paragraph(f"The full table, with tau within each factor and the number of groups: {table_csv}.")
    _write(html_page("Which landscape measures predict generalisation?", body), out)


# --- the front page's fragments ----------------------------------------------------------------


def _arch_words(name: str, arch: dict) -> str:
    if "library" in arch or "module" in arch:
        return f"{name} ({arch.get('library', arch.get('module'))} {arch.get('name', '')})".strip()
    parts = ["batch norm" if arch.get("norm") == "batch" else "no normalisation"]
    if arch.get("skip", "concat") != "concat":
        parts.append("no skips" if arch["skip"] == "none" else f"skips {arch['skip']}")
    return f"{name} ({', '.join(parts)})"


def _list_table(rows: list[tuple[str, str]], widths: str = "18 82") -> list[str]:
    lines = [".. list-table::", f"   :widths: {widths}", ""]
    for key, value in rows:
        lines += [f"   * - {key}", f"     - {value}"]
    return lines + [""]


def overview_rst(dataset: dict, archs: dict[str, dict], studies: dict[str, dict], runs: pd.DataFrame,
                 training: dict) -> str:
    """What was run, in a few table rows: data, model, training, runs and seeds, outcomes.

    `dataset`: name, source, train and heldout image counts, size; `archs`: name -> resolved
    architecture; `studies`: name -> spec (archs, optimizers, noise, seeds); `runs`: one row per
    run (`run`, `outcome`); `training`: epochs, batch size and optimisers from the config.
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
    rows = [
        ("Data", f"{source.get(dataset['source'], dataset['source'])} (``{dataset['name']}``): {dataset['train']} "
                 f"training and {dataset['heldout']} held-out images of {size[0]} x {size[1]} px"),
        ("Model", model),
        ("Training", f"{training.get('loss', 'dice')} loss, at most {training['epochs']} epochs (stopped at a plateau), batch "
                     f"{training['batch_size']}; {optimisers}; a study may set its own learning rates, batch sizes, "
                     f"training subsets and budget (the run ids say which)"),
        ("Runs", f"{runs['run'].nunique()} trainings{shared}; seeds per condition by study: {study_text}. Per-run "
                 f"figures are drawn for each condition's first seed (any other run's on request by file name)."),
        ("Outcomes", outcomes),
    ]
    return "\n".join(_list_table(rows))


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
def _breakable(name: str) -> str:
    """An identifier such as relative_nonconvexity (optimizer=sgd) that a narrow table column may
    break after its underscores and equals signs (zero-width spaces), not inside words."""
    return name.replace("_", "_\u200b").replace("=", "=\u200b")


def _is_text(value) -> bool:
    return isinstance(value, str) and value != ""


def _power(claims: pd.DataFrame) -> str:
    """The power the runs to decide were computed for, in words ("80%")."""
    values = claims["power"].dropna().unique() if "power" in claims.columns else []
    return f"{100 * values[0]:g}%" if len(values) == 1 else "the configured"


def claims_plan(claims: pd.DataFrame) -> list[str]:
    """The front page's plan, as reStructuredText lines: which parts these runs decide, and for
    each undecided part how many runs would decide it under its own rule (every stratum of its
    primary measure decided, at the claim's Holm threshold), fewest first."""
    from unetscape.analysis.findings import runs_words

    parts = claims.drop_duplicates(["claim", "part"])
    tested = parts[parts["part_verdict"].isin(DECIDED + UNDECIDED)]
    if tested.empty:
        return ["**Plan.** No part of any claim could be tested with these runs.", ""]
    decided = tested[tested["part_verdict"].isin(DECIDED)]
    undecided = tested[tested["part_verdict"].isin(UNDECIDED)].copy()
    compared = claims[claims["part_verdict"].isin(DECIDED + UNDECIDED) & (claims["kind"] != "dose_response")]
    used = sorted({int(v) for v in pd.concat([compared["n_a"], compared["n_b"]]).dropna()})
    used_text = f"{used[0]}–{used[-1]}" if len(used) > 1 else (str(used[0]) if used else "–")
    head = f"**Plan.** With {used_text} runs per group these runs decide {len(decided)} of {len(tested)} parts"
    head += (": " + "; ".join(f"*{r['claim_text']}*: {r['part_text']} ({r['part_verdict']})"
                             for _, r in decided.iterrows()) + ".") if len(decided) else "."
    lines = [head, ""]
    if len(undecided):
        lines += [(f"To decide the others, each needs this many runs per condition: enough for every comparison of "
                   f"its primary measure to be decided (the difference found, or shown within ±delta) with "
                   f"{_power(claims)} power at the claim's strictest Holm threshold, if the observed effects are the "
                   f"true ones. Raise ``seeds`` of the part's study (on the cluster where it is many):"), ""]
        undecided["_order"] = undecided["part_seeds_needed"].fillna(math.inf)
        for _, r in undecided.sort_values("_order", kind="stable").iterrows():
            needed = runs_words(r["part_seeds_needed"], r.get("kind"))
            what = needed if needed != "–" else "runs needed cannot be estimated (a group has fewer than two runs)"
            lines.append(f"- {what}: *{r['claim_text']}*: {r['part_text']} "
                         f"(``{r['metric']}``, study {r['study']})")
        lines.append("")
    return lines


def _critical_lrs(row: pd.Series) -> str:
    """A dose response's learning rates at 50% failure, from the fit, or where at least half of
    a group's runs failed when the fit does not cross 50% within the sweep; '' for other kinds."""
    if row.get("kind") != "dose_response":
        return ""
    words = []
    for side in ("a", "b"):
        fitted, observed = row.get(f"critical_lr_{side}"), row.get(f"half_failed_lr_{side}")
        group = _breakable(str(row[f"group_{side}"]))
        if pd.notna(fitted):
            words.append(f"{group} {number(fitted)}")
        elif pd.notna(observed):
            words.append(f"{group} {number(observed)} (half its runs failed)")
        else:
            words.append(f"{group} none in the sweep")
    return "; lr at 50% failure: " + ", ".join(words)


def claims_rst(claims: pd.DataFrame) -> str:
    """The poster's claims as one table: for each claim a row per (part, stratum) comparison of
    the part's primary measure, part verdict first, every cell of a row from that comparison
    (effect with its interval at the family's Bonferroni level, n, Holm p, decision, the runs
    that would decide it), then the claim's verdict in words; below the table the rules, the
    margins, the curvature left out, the plan and a glossary of the measures named."""
    from unetscape.analysis.findings import CLAIM_RULE, PART_RULE, runs_words
    from unetscape.analysis.glossary import glossary_lines

    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 17 12 29 7 8 12 15", "",
             "   * - Part", "     - Part verdict", "     - Primary measure (stratum): effect [interval at 1 - alpha/m]",
             "     - n", "     - Holm p", "     - Decision", "     - Runs to decide it"]
    named = []
    for _, claim in claims.groupby("claim", sort=False):
        previous = None
        for _, row in claim.iterrows():
            first = row["part"] != previous
            previous = row["part"]
            part = row["part_text"] if first else ""
            verdict = f"**{row['part_verdict']}**" if first else ""
            effect = n = p = decision = seeds = "–"
            if _is_text(row.get("test")):
                named.append(row["metric"])
                text, _ = cell(row, ["effect", "effect_ci_low", "effect_ci_high"])
                effect = (_breakable(f"{row['metric']} ({row['within'] or 'all runs'}, {row['group_b']} vs "
                                     f"{row['group_a']})") + f": {text}" + _critical_lrs(row))
                n = f"{number(row['n_a'])}+{number(row['n_b'])}"
                p, decision = number(row["p_holm"]), str(row["decision"])
                if row["decision"] in ("inconclusive", "too few runs", "cannot reach alpha at this n"):
                    seeds = runs_words(row["seeds_needed"], row.get("kind"))
            elif _is_text(row.get("note")):
                effect = str(row["note"])
            lines += [f"   * - {part}", f"     - {verdict}", f"     - {effect}", f"     - {n}", f"     - {p}",
                      f"     - {decision}", f"     - {seeds}"]
        head = claim.iloc[0]
        summary = str(head["claim_summary"]) if _is_text(head.get("claim_summary")) else str(head["claim_verdict"])
        words = summary.split(": ", 1)[1] if ": " in summary else ""
        lines += [f"   * - **Claim: {head['claim_text']}**", f"     - **{head['claim_verdict']}**",
                  f"     - {words}", "     -", "     -", "     -", "     -"]
    compared = claims[claims["test"].map(_is_text)] if "test" in claims.columns else claims.iloc[:0]
    margins = dict(zip(compared["metric"], compared["equivalence_margin"]))
    margins_words = ", ".join(f"``{m}`` ±{number(v)}" for m, v in margins.items() if pd.notna(v))
    levels = sorted({float(f"{100 * v:.3g}") for v in compared.get("ci_level", pd.Series(dtype=float)).dropna()})
    left_out = int(compared["n_unconverged"].fillna(0).sum()) if "n_unconverged" in compared else 0
    lines += [
        "", PART_RULE + " " + CLAIM_RULE,
        "",
        "Effect: the group with the factor (batch norm, momentum, skips) minus the one without, the change over the "
        "noise levels that the fitted line predicts, or the log odds ratio of failing at the same learning rate. "
        "Interval: at the claim's Bonferroni level 1 - alpha/m (m the claim's primary comparisons; "
        + (", ".join(f"{v:g}%" for v in levels) if levels else "–")
        + " here), so an interval that excludes 0 always goes with a *different* (or *negligible*) decision. "
        "n = runs per group; Holm p = the difference test's p-value, Holm-adjusted within the claim; runs to decide "
        f"it: for {_power(claims)} power to decide this comparison (difference found or equivalence shown) at "
        "alpha/m, if the observed effect is the true one."
        + (f" Margins (±delta, the smallest difference that matters, fixed in the config): {margins_words}."
           if margins_words else "")
        + f" Curvature values left out because their Lanczos solve did not converge: {left_out}.",
        "", *claims_plan(claims),
    ]
    if named:
        lines += ["**The measures named here:**", "", *glossary_lines(named), ""]
    return "\n".join(lines)


def dataset_summary(path, name: str, source: str) -> dict:
    """Image counts and size of the prepared data set, and where it came from."""
    from unetscape.data.store import load_dataset

    data = load_dataset(path)
    return {"name": name, "source": data.provenance.get("source", source), "train": len(data.ids),
            "heldout": 0 if data.heldout is None else len(data.heldout.ids), "size": list(data.images.shape[1:3])}


def write_overview(dataset_path, settings: dict, training_tables: Sequence, out) -> None:
    """What rule report_overview writes; `settings`: data (name, source), archs, studies and
    training (epochs, batch_size, optimizers), as the rule passes them."""
    # each table is a study's (results/tables/training_{study}.csv): the study of each row
    runs = pd.concat([pd.read_csv(p).assign(study=Path(p).stem.removeprefix("training_")) for p in training_tables],
                     ignore_index=True)
    data = dataset_summary(dataset_path, settings["data"]["name"], settings["data"]["source"])
    _write(overview_rst(data, settings["archs"], settings["studies"], runs, settings["training"]), out)


def write_findings_pages(findings_csv, claims_csv, claims_out, page_out) -> None:
    """What rule findings_pages writes: the front page's claims table and the page of every comparison."""
    _write(claims_rst(pd.read_csv(claims_csv)), claims_out)
    findings_page(findings_csv, page_out)
