"""HTML for the report's pages of numbers: the page and its style, number cells with their
intervals, tables, and the words a reader sees for each column and measure.

Snakemake's report offers a CSV only as a download; an HTML result opens in the report's content
frame, so every table a reader looks for is also a small self-contained page (`table_pages`,
`front_page`). Columns are read from the CSV as they come: a number `X` with `X_low`/`X_high`
(or `X_ci_low`/`X_ci_high`) beside it is one cell, its interval on a line under it, and `X_se`
its standard error; a table that gains a column shows it without a change here.
"""

from __future__ import annotations

import html
import math
import os
import re
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


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def cell(row: pd.Series, sources: list[str]) -> tuple[str, bool]:
    """(text, numeric) of one cell: 'value [low, high]' where the value has an interval."""
    value = row[sources[0]]
    if isinstance(value, str):
        return value, False
    if is_missing(value):
        return "–", True
    text = number(value)
    if len(sources) == 3:
        low, high = row[sources[1]], row[sources[2]]
        if pd.notna(low) and pd.notna(high):
            text += f" [{number(low)}, {number(high)}]"
    return text, True


def numeric_cell(value: str, lines: Sequence[str] = ()) -> str:
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
            cells.append(numeric_cell(value, [f"[{interval}" if interval else "", ", ".join(notes)]))
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


def write_page(text: str, out: str | os.PathLike) -> None:
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


def breakable(name: str) -> str:
    """An identifier such as relative_nonconvexity (optimizer=sgd) that a narrow table column may
    break after its underscores and equals signs (zero-width spaces), not inside words."""
    return name.replace("_", "_\u200b").replace("=", "=\u200b")


def is_text(value) -> bool:
    return isinstance(value, str) and value != ""
