"""The report's pages of numbers: every table as an HTML page, and the front page's fragments.

Snakemake's report offers a CSV only as a download; an HTML result opens in the report's content
frame. So every table a reader looks for (the runs of a study, its conditions, the direction and
seed variance, the findings, the claims, the generalisation ranking) is written here as a small
self-contained HTML page beside its CSV, which stays as the download.

A page must fit the report's frame (about 780 to 1000 CSS pixels wide at a 1280 px window,
depending on the menu beside it), so a wide table is split: its columns go into sections of a
few related measures each (`SECTIONS`), every section a table of its own that repeats the row's
name (run or condition). Columns get words a reader understands (`column_words`), and each page
ends with a glossary of the measures it names (`analysis.glossary`, or the generalisation
study's descriptions). Columns are read from the CSV as they come: a number `X` with
`X_low`/`X_high` (or `X_ci_low`/`X_ci_high`) beside it is one cell, its interval on a line under
it, and `X_se` its standard error; a table that gains a column shows it without a change here.

The front page (report/workflow.rst) pastes in fragments of three pages, marked by
`FRAGMENT_BEGIN`/`FRAGMENT_END`: what was run (`overview_html`), the claims table with its rules,
plan and glossary (`claims_html`), and a paragraph on the generalisation study
(`generalisation_line`). The same fragments are pages of the report, so nothing on the front
page is a download.
"""

from __future__ import annotations

import fnmatch
import html
import math
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from unetscape.atomic import atomic_path

STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 12px; color: #222; }
h1 { font-size: 17px; margin: 0 0 6px; }
h2 { font-size: 15px; margin: 18px 0 4px; }
h3 { font-size: 13px; margin: 10px 0 2px; }
p, ul, dl { max-width: 60em; line-height: 1.4; margin: 4px 0 8px; }
table { border-collapse: collapse; margin: 6px 0 14px; max-width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 6px; vertical-align: top; }
th { background: #f0f1f4; text-align: left; vertical-align: bottom; font-weight: 600; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.text { min-width: 6em; max-width: 22em; overflow-wrap: anywhere; }
tr:nth-child(even) td { background: #fafafa; }
.ci, .small { color: #666; font-size: 11px; }
dt { font-weight: 600; margin-top: 4px; }
dd { margin: 0 0 4px 1.5em; }
code { font-size: 12px; }
tr.claim td { background: #eef0f6; border-bottom: 2px solid #99a; }
"""

# The front page pastes the part of a page between these markers (report/workflow.rst).
FRAGMENT_BEGIN = "<!-- front page: begin -->"
FRAGMENT_END = "<!-- front page: end -->"

# Value columns per table of a split table: with the row's name, a table of this many numbers
# and their intervals keeps within a frame of about 780 px.
MAX_COLUMNS = 6


# --- formatting ----------------------------------------------------------------------------


def number(value, digits: int = 3) -> str:
    """A number for a table cell: 3 significant digits, integers as integers, '–' for none."""
    if value is None or isinstance(value, str):
        return "–" if value is None else value
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
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


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def cell(row: pd.Series, sources: list[str]) -> tuple[str, bool]:
    """(text, numeric) of one cell: 'value [low, high]' where the value has an interval."""
    value = row[sources[0]]
    if isinstance(value, str):
        return value, False
    if _missing(value):
        return "–", True
    text = number(value)
    if len(sources) == 3:
        low, high = row[sources[1]], row[sources[2]]
        if pd.notna(low) and pd.notna(high):
            text += f" [{number(low)}, {number(high)}]"
    return text, True


def _numeric_cell(value: str, lines: Sequence[str] = ()) -> str:
    below = "".join(f"<br><span class=\"ci\">{html.escape(line)}</span>" for line in lines if line)
    return f"<td class=\"num\">{html.escape(value)}{below}</td>"


def _text_cell(text: str) -> str:
    return f"<td class=\"text\">{html.escape(text)}</td>"


def html_table(frame: pd.DataFrame, columns: Iterable[str] | None = None, headers: dict[str, str] | None = None,
               extra: dict[str, Sequence[str]] | None = None) -> str:
    """An HTML table of the frame's rows (numbers rounded, intervals under their values).

    `extra`: column -> the columns whose values go on a small line under its value (e.g. a
    standard deviation and a count), each as 'name value'."""
    shown = display_columns(frame, columns)
    headers, extra = headers or {}, extra or {}
    head = "".join(f"<th>{html.escape(headers.get(name, name))}</th>" for name, _ in shown)
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for name, sources in shown:
            text, numeric = cell(row, sources)
            if not numeric:
                cells.append(_text_cell(text))
                continue
            value, _, interval = text.partition(" [")
            notes = [f"{label} {number(row[c])}" for label, c in extra.get(name, ()) if c in row and pd.notna(row[c])]
            cells.append(_numeric_cell(value, [f"[{interval}" if interval else "", ", ".join(notes)]))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def html_page(title: str, body: str) -> str:
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")


def fragment(body: str) -> str:
    """Part of a page that the front page pastes in, between its markers; a line per table row,
    paragraph and list item (docutils refuses lines of more than 10,000 characters)."""
    for tag in ("</tr>", "</p>", "</li>", "</dd>", "</table>", "</h2>"):
        body = body.replace(tag, tag + "\n")
    return f"{FRAGMENT_BEGIN}\n{body.strip()}\n{FRAGMENT_END}"


def fragment_of(page: str) -> str:
    """The front page's part of a page written with `fragment` ('' when it has none)."""
    if FRAGMENT_BEGIN not in page:
        return ""
    return page.split(FRAGMENT_BEGIN, 1)[1].split(FRAGMENT_END, 1)[0].strip()


def _write(text: str, out: str | os.PathLike) -> None:
    with atomic_path(out) as tmp:
        tmp.write_text(text)


def paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


# --- words for columns and measures -----------------------------------------------------------

COLUMN_WORDS = {
    "run": "run", "outcome": "outcome", "arch": "architecture", "optimizer": "optimiser", "noise": "noise",
    "seed": "seed", "lr": "learning rate", "batch_size": "batch size", "train_size": "training images",
    "epochs_budget": "epoch budget", "epochs_run": "epochs trained", "steps": "steps", "norm": "normalisation",
    "skip": "skips", "n": "runs", "momentum": "momentum",
    "final_heldout_dice": "held-out hard Dice", "final_dice": "training hard Dice",
    "final_heldout_loss": "held-out Dice loss", "final_loss": "training Dice loss",
    "final_heldout_iou": "held-out IoU", "gap_loss": "generalisation gap (Dice loss)",
    "gap_dice": "gap in hard Dice (training - held-out)", "final_heldout_loss_se": "SE of held-out loss",
    "final_heldout_dice_se": "SE of held-out Dice",
    "roughness": "roughness", "total_variation": "total variation", "basins": "basins",
    "total_persistence": "total persistence", "strict_local_minima": "strict local minima",
    "relative_lambda_max": "top eigenvalue (scale-normalised)", "relative_lambda_min": "lowest eigenvalue (scale-normalised)",
    "relative_nonconvexity": "non-convexity (scale-normalised)", "relative_trace": "trace (scale-normalised)",
    "probe_largest_rise": "largest probe-loss rise", "probe_volatility": "probe-loss volatility",
    "probe_rises": "probe-loss rises", "probe_final_above_best": "probe loss: final above best",
    "largest_rise": "largest epoch-loss rise", "step_volatility": "step volatility (mini-batch)",
    "loss_rises": "epoch-loss rises", "final_above_best": "epoch loss: final above best",
    "prediction_variation": "prediction variation",
    "eos_lambda_ratio_final": "final lambda_max / edge", "eos_batch_ratio_final": "final batch sharpness / edge",
    "eos_lambda_ratio_max": "largest lambda_max / edge", "eos_batch_ratio_max": "largest batch sharpness / edge",
    "average_sharpness": "adaptive average sharpness", "worst_case_sharpness": "adaptive worst-case sharpness",
    "pac_bayes_flatness": "PAC-Bayes 1/sigma^2", "pac_bayes_mag_flatness": "magnitude-aware PAC-Bayes 1/sigma'^2",
    "pac_bayes_sigma": "PAC-Bayes sigma", "pac_bayes_mag_sigma": "magnitude-aware PAC-Bayes sigma'",
    "frobenius_sq_sum": "sum of squared Frobenius norms", "log_prod_frobenius": "log product of Frobenius norms",
    "distance_from_init": "distance from initialisation",
    "curve_barrier_next": "barrier on the Bezier curve to the next seed",
    "line_barrier_next": "barrier on the straight line to the next seed",
    "curve_dice_barrier_next": "hard-Dice barrier on the curve to the next seed",
    "finished_rate": "share finished", "diverged_rate": "share diverged",
}
_PATTERNS = [  # (regular expression, words with its groups)
    (r"sharpness_r([\d.]+)", "largest rise within radius {0}"),
    (r"basin_width_h([\d.]+)_mean", "basin width (rise {0})"),
    (r"basin_width_h([\d.]+)_(x|y)(pos|neg)", "basin width (rise {0}, {1} {2})"),
    (r"part_(\w+?)_lambda_max", "{0}: top eigenvalue"),
    (r"part_(\w+?)_trace_share", "{0}: share of the trace"),
    (r"part_(\w+?)_trace", "{0}: trace"),
    (r"part_(\w+?)_lanczos_converged", "{0}: Lanczos converged"),
    (r"n_(\w+)", "{0}"),
]


def column_words(name: str) -> str:
    """A column's name in words: 'held-out hard Dice' for final_heldout_dice; a name it does
    not know with its underscores as spaces ('_first': of the first plane alone; 'raw_',
    'folded_' and 'eigen_': of the raw or BN-folded Hessian, of the sharpest plane)."""
    if name in COLUMN_WORDS:
        return COLUMN_WORDS[name]
    for pattern, words in _PATTERNS:
        match = re.fullmatch(pattern, name)
        if match:
            return words.format(*(g.replace("_", " ") for g in match.groups()))
    for suffix, words in (("_first", "{}, first plane only"), ("_se", "SE of {}")):
        if name.endswith(suffix) and name != suffix:
            return words.format(column_words(name.removesuffix(suffix)))
    return name.replace("_", " ")


def measure_line(measure: str) -> str | None:
    """What a measure is, with its formula: the glossary's line, else the generalisation
    study's description of it; None when neither has one."""
    from unetscape.analysis.generalisation import MEASURES
    from unetscape.analysis.glossary import describe

    line = describe(measure)
    if line != describe("\0"):  # the glossary's "no formula on record"
        return line
    if measure in MEASURES:
        return MEASURES[measure][0]
    return None


def glossary_html(measures: Iterable[str], heading: str = "The measures named here") -> str:
    """A definition list of the measures a page names under `heading`: words, column name and
    formula; the measures without a formula on record are listed by name at the end."""
    items, unknown = [], []
    for measure in dict.fromkeys(measures):
        line = measure_line(measure)
        if line is None:
            unknown.append(measure)
            continue
        items.append(f"<dt>{html.escape(column_words(measure))} <code>{html.escape(measure)}</code></dt>"
                     f"<dd>{html.escape(line)}</dd>")
    text = f"<h2>{html.escape(heading)}</h2><dl>{''.join(items)}</dl>" if items else ""
    if unknown:
        text += paragraph("No formula on record for: " + ", ".join(unknown) + " (see docs/measures-and-statistics.md).")
    return text


# --- wide tables, split into sections ---------------------------------------------------------

# The sections a wide table of runs or conditions is split into, each a few related measures
# in the order a reader looks for them; a column in none goes to the "other columns" sections.
SECTIONS = [
    ("Held-out and training numbers", ["final_heldout_dice", "final_dice", "gap_loss", "final_heldout_loss",
                                       "final_loss", "final_heldout_iou", "gap_dice"]),
    ("Random planes, averaged over directions", ["roughness", "total_variation", "sharpness_r0.25", "sharpness_r0.5",
                                                 "sharpness_r1", "basin_width_h0.01_mean", "basin_width_h0.05_mean",
                                                 "basins", "total_persistence", "strict_local_minima"]),
    ("Curvature at the measured weights (scale-normalised Hessian)",
     ["relative_lambda_max", "relative_nonconvexity", "relative_trace", "relative_lambda_min",
      "relative_lanczos_converged"]),
    ("Training stability (every run, finished or not)",
     ["probe_largest_rise", "probe_volatility", "probe_rises", "probe_final_above_best", "largest_rise",
      "step_volatility", "loss_rises", "final_above_best"]),
    ("Edge of stability (every run)", ["eos_lambda_ratio_final", "eos_batch_ratio_final", "eos_lambda_ratio_max",
                                       "eos_batch_ratio_max"]),
    ("Flatness and size of the weights", ["average_sharpness", "worst_case_sharpness", "pac_bayes_flatness",
                                          "pac_bayes_mag_flatness", "frobenius_sq_sum", "log_prod_frobenius",
                                          "distance_from_init"]),
    ("Mode connectivity", ["curve_barrier_next", "line_barrier_next", "curve_dice_barrier_next"]),
    ("Curvature per part of the network", ["part_*_lambda_max", "part_*_trace", "part_*_trace_share"]),
]
# Columns that say what a row is (shown in its name), or bookkeeping a reader does not need on
# the page (the CSV keeps them).
IDENTITY = ("run", "arch", "optimizer", "recipe", "noise", "seed", "norm", "skip", "init", "lr", "momentum",
            "batch_size", "train_size", "epochs_budget", "epochs", "note")


def _expand(patterns: Sequence[str], columns: Sequence[str]) -> list[str]:
    out = []
    for pattern in patterns:
        out += [c for c in columns if fnmatch.fnmatchcase(c, pattern) and c not in out]
    return out


def _chunks(columns: list[str], size: int) -> list[list[str]]:
    return [columns[k:k + size] for k in range(0, len(columns), size)] or [[]]


def _family(name: str) -> str:
    """The section of a column no section names: by its prefix (eos_, raw_, line_, ...)."""
    prefix = name.split("_", 1)[0]
    words = {"eos": "Edge of stability, more", "raw": "Raw Hessian (not invariant; never in a verdict)",
             "folded": "Hessian of the BN-folded network", "eigen": "Plane of the sharpest directions",
             "pca": "Plane of the training path (PCA)", "line": "1-D line through the weights",
             "part": "Curvature per part, more", "basin": "Basin widths per half-axis"}
    return words.get(prefix, "Other columns")


def split_sections(measures: Sequence[str]) -> list[tuple[str, list[str]]]:
    """(heading, measures) of every section a table of these `measures` is shown in: the named
    `SECTIONS` first, then the others by family; each at most MAX_COLUMNS wide."""
    used: set[str] = set()
    sections = []
    for heading, patterns in SECTIONS:
        chosen = [m for m in _expand(patterns, measures) if m not in used]
        used.update(chosen)
        if chosen:
            sections.append((heading, chosen))
    families: dict[str, list[str]] = {}
    for m in measures:
        if m not in used:
            families.setdefault(_family(m), []).append(m)
    sections += list(families.items())
    out = []
    for heading, chosen in sections:
        parts = _chunks(chosen, MAX_COLUMNS)
        out += [(heading + (f" ({k + 1} of {len(parts)})" if len(parts) > 1 else ""), part)
                for k, part in enumerate(parts)]
    return out


def _sections_html(frame: pd.DataFrame, keys: list[str], sections, headers: dict[str, str], extra=None) -> str:
    body = ""
    for heading, columns in sections:
        body += f"<h2>{html.escape(heading)}</h2>" + html_table(frame, keys + columns, headers, extra)
    return body


def _contents(sections) -> str:
    names = list(dict.fromkeys(re.sub(r" \(\d+ of \d+\)$", "", h) for h, _ in sections))
    return paragraph("Sections: " + "; ".join(names) + ".")


# --- what tells conditions apart --------------------------------------------------------------

FACTORS = ("arch", "optimizer", "lr", "batch_size", "train_size", "epochs_budget", "noise", "norm", "skip")


def _factor_words(factor: str, value) -> str:
    if _missing(value):
        return f"{column_words(factor)} as configured"
    shown = number(value) if not isinstance(value, str) else value
    return {"arch": shown, "optimizer": shown, "lr": f"lr {shown}", "batch_size": f"batch {shown}",
            "train_size": f"{shown} training images", "epochs_budget": f"{shown} epochs", "noise": f"noise {shown}",
            "norm": f"norm {shown}", "skip": f"skip {shown}"}[factor]


def varied_factors(frame: pd.DataFrame) -> list[str]:
    """The factors that tell this table's conditions apart (the architecture always, the
    normalisation and skips only when the architecture does not already say them)."""
    varied = [f for f in FACTORS if f in frame.columns and frame[f].nunique(dropna=False) > 1]
    if "arch" in varied:
        varied = [f for f in varied if f not in ("norm", "skip")]
    return ["arch"] * ("arch" in frame.columns and "arch" not in varied) + varied


def condition_names(frame: pd.DataFrame) -> pd.Series:
    """Each row's condition in words, e.g. 'simple, sgd_momentum, noise 0.1'."""
    factors = varied_factors(frame)
    return frame.apply(lambda row: ", ".join(_factor_words(f, row[f]) for f in factors), axis=1)


# --- the tables' pages -----------------------------------------------------------------------


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
    ) + _contents(sections)
    body += _sections_html(means, ["condition"], sections, headers, extra)
    body += glossary_html(measures)
    _write(html_page(title, body), out)


def _run_name(row: pd.Series, factors: Sequence[str]) -> str:
    words = [_factor_words(f, row[f]) for f in factors if f in row]
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
    ) + _contents(sections)
    body += _sections_html(frame, ["name", "outcome"], sections, headers, extra)
    body += glossary_html(columns)
    _write(html_page(title, body), out)


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
        _write(html_page(title, body), out)
        return
    frame = pd.concat([condition_names(frame).rename("condition"), frame], axis=1)
    columns = [c for c in DIRECTION_COLUMNS if c in frame.columns]
    for metric, rows in frame.groupby("metric", sort=False):
        body += (f"<h2>{html.escape(column_words(metric))} <code>{html.escape(metric)}</code></h2>"
                 + html_table(rows, ["condition"] + columns, DIRECTION_COLUMNS | {"condition": "condition"}))
    body += glossary_html(frame["metric"].unique())
    _write(html_page(title, body), out)


def _interval_note(row: pd.Series) -> str:
    """Why an interval that excludes 0 sits beside a decision other than 'different': the
    interval and the test are different methods; '' when nothing needs saying."""
    low, high = row.get("effect_ci_low"), row.get("effect_ci_high")
    if _missing(low) or _missing(high) or not (low > 0 or high < 0):
        return ""
    if str(row.get("decision")) in ("different", "negligible"):
        return ""
    test = row.get("test") if _is_text(row.get("test")) else "the test"
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
    notes = [t for t in (f"runs to decide it: {needed}" if needed != "–" else "", _interval_note(row),
                         str(row["note"]) if _is_text(row.get("note")) else "") if t]
    stratum = str(row["within"]) if _is_text(row.get("within")) else "all runs"
    compared = f"{row['group_b']} vs {row['group_a']}"
    small = "".join(f"<br><span class=\"small\">{html.escape(t)}</span>" for t in notes)
    return [
        f"<td class=\"text\"><code>{html.escape(_breakable(str(row['metric'])))}</code><br>"
        f"<span class=\"small\">{html.escape(str(row.get('role', '')))}</span></td>",
        f"<td class=\"text\">{html.escape(_breakable(compared))}<br>"
        f"<span class=\"small\">in {html.escape(_breakable(stratum))}</span></td>",
        _numeric_cell(f"{number(row.get('n_a'))} + {number(row.get('n_b'))}", n_lines),
        _numeric_cell(f"{number(row.get('mean_a'))} / {number(row.get('mean_b'))}"),
        _numeric_cell(value, [f"[{interval}" if interval else "",
                              f"at {100 * level:.3g}%" if pd.notna(level) else ""]),
        _numeric_cell(number(row.get("p_holm")),
                      [f"p {number(row.get('p_value'))}" if pd.notna(row.get("p_value")) else ""]),
        _numeric_cell(f"±{number(margin)}" if pd.notna(margin) else "–",
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
                body += paragraph(str(part["note"].iloc[0]) if _is_text(part["note"].iloc[0]) else "not tested")
                continue
            measures += list(tested["metric"])
            rows = "".join("<tr>" + "".join(_findings_cells(r)) + "</tr>" for _, r in tested.iterrows())
            head = "".join(f"<th>{html.escape(h)}</th>" for h in FINDINGS_HEADERS)
            body += f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    sources = sorted({str(s) for s in frame.get("source", pd.Series(dtype=str)).dropna()})
    body += paragraph("Numbers from: " + ", ".join(sources) + f". The same table, with every test statistic, "
                      f"the runs each test would need and the power settings: {findings_csv}.")
    body += glossary_html(measures)
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
    from unetscape.analysis.generalisation import RANKABLE_SPREAD, STUDY, STUDY_CONDITION

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
    _write(html_page("Which landscape measures predict generalisation?", body), out)


# --- the front page's fragments ----------------------------------------------------------------


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
        group = _breakable(str(row[f"group_{side}"]))
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
            if _is_text(row.get("test")):
                text, _ = cell(row, ["effect", "effect_ci_low", "effect_ci_high"])
                within = row["within"] if _is_text(row.get("within")) else "all runs"
                entry |= {"metric": row["metric"], "n": f"{number(row['n_a'])} + {number(row['n_b'])}",
                          "effect": (_breakable(f"{row['metric']} ({within}, {row['group_b']} vs {row['group_a']})")
                                     + f": {text}" + _critical_lrs(row)),
                          "p": number(row["p_holm"]), "decision": str(row["decision"]), "note": _interval_note(row)}
                if row["decision"] in ("inconclusive", "too few runs", "cannot reach alpha at this n"):
                    entry["needed"] = runs_words(row["seeds_needed"], row.get("kind"))
            elif _is_text(row.get("note")):
                entry["effect"] = str(row["note"])
            rows.append(entry)
        head = claim.iloc[0]
        summary = str(head["claim_summary"]) if _is_text(head.get("claim_summary")) else str(head["claim_verdict"])
        why = summary.split(": ", 1)[1] if ": " in summary else ""
        rows.append({"kind": "claim", "part": head["claim_text"], "verdict": head["claim_verdict"],
                     "why": why.replace(" -- ", ": ")})
    return rows


def claims_notes(claims: pd.DataFrame) -> dict:
    """What goes under the claims table: the rules, what the columns mean (`columns`), the
    plan (`plan`, `plan_items`) and the measures the table names (`measures`)."""
    from unetscape.analysis.findings import CLAIM_RULE, PART_RULE

    compared = claims[claims["test"].map(_is_text)] if "test" in claims.columns else claims.iloc[:0]
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
    _write("\n".join(_list_table(rows)), rst_out)
    _write(html_page("What was run", fragment(overview_html(rows))), html_out)


def write_findings_pages(findings_csv, claims_csv, claims_out, page_out, claims_page_out) -> None:
    """What rule findings_pages writes: the claims as reStructuredText and as the page the front
    page pastes in, and the page of every comparison."""
    claims = pd.read_csv(claims_csv)
    _write(claims_rst(claims), claims_out)
    _write(html_page("The poster's claims", fragment(claims_html(claims))), claims_page_out)
    findings_page(findings_csv, page_out)
