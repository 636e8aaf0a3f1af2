"""Wide tables split to fit the report's frame, and the words that tell conditions apart.

A page must fit the report's frame (about 780 to 1000 CSS pixels wide at a 1280 px window,
depending on the menu beside it), so a wide table is split: its columns go into sections of a
few related measures each (`SECTIONS`), every section a table of its own that repeats the row's
name (run or condition).
"""

from __future__ import annotations

import fnmatch
import html
import re
from typing import Sequence

import pandas as pd

from .page_html import (
    MAX_COLUMNS,
    column_words,
    html_table,
    is_missing,
    number,
    paragraph,
)

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


def sections_html(frame: pd.DataFrame, keys: list[str], sections, headers: dict[str, str], extra=None) -> str:
    body = ""
    for heading, columns in sections:
        body += f"<h2>{html.escape(heading)}</h2>" + html_table(frame, keys + columns, headers, extra)
    return body


def contents_line(sections) -> str:
    names = list(dict.fromkeys(re.sub(r" \(\d+ of \d+\)$", "", h) for h, _ in sections))
    return paragraph("Sections: " + "; ".join(names) + ".")


# --- what tells conditions apart --------------------------------------------------------------

FACTORS = ("arch", "optimizer", "lr", "batch_size", "train_size", "epochs_budget", "noise", "norm", "skip")


def factor_words(factor: str, value) -> str:
    if is_missing(value):
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
    return frame.apply(lambda row: ", ".join(factor_words(f, row[f]) for f in factors), axis=1)


