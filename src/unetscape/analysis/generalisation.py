"""Does a flatter minimum generalise better? Every landscape measure against held-out numbers.

Over all finished runs of the configured studies (each run once), each measure of the measured
weights is rank-correlated (Kendall's tau-b, `rank_correlation`) with the held-out Dice and
with the generalisation gap (held-out minus training Dice loss), with a bootstrap interval
over runs and Jiang et al.'s granulated tau (within groups of runs that differ in one factor
only). A measure *predicts* a target here when its tau's bootstrap interval excludes 0 and its
p-value is below `alpha`; the verdict says in which direction.

The measures, with the direction in which each grows (so a reader can tell "sharper goes with
worse held-out Dice" from "flatter goes with it"):
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import pandas as pd

from unetscape.atomic import atomic_path

from .rank_correlation import generalisation_table

# column -> (what it is, "sharper" if a larger value means a sharper minimum, "flatter" if a
# flatter one, "larger" for the norms, which are not about the shape of the minimum)
MEASURES = {
    "sharpness_r0.25": ("largest rise of the loss within radius 0.25 on the random plane", "sharper"),
    "sharpness_r0.5": ("largest rise of the loss within radius 0.5 on the random plane", "sharper"),
    "basin_width_h0.05_mean": ("distance at which the loss first rises by 0.05, mean of 4 half-axes", "flatter"),
    "roughness": ("mean |Laplacian| of the random-plane surface, relative", "sharper"),
    "top_eigenvalue": ("largest Hessian eigenvalue", "sharper"),
    "trace": ("Hessian trace (Hutchinson)", "sharper"),
    "average_sharpness": ("adaptive average-case sharpness, rho = flatness.average_rho", "sharper"),
    "worst_case_sharpness": ("adaptive worst-case sharpness, rho = flatness.worst_rho", "sharper"),
    "pac_bayes_flatness": ("PAC-Bayes 1/sigma^2 (largest sigma keeping the Dice drop within target)", "sharper"),
    "pac_bayes_mag_flatness": ("magnitude-aware PAC-Bayes 1/sigma'^2", "sharper"),
    "frobenius_sq_sum": ("sum of squared Frobenius norms of the layers", "larger"),
    "log_prod_frobenius": ("log of the product of the layers' Frobenius norms", "larger"),
    "distance_from_init": ("||w - w_0||, BN folded", "larger"),
}
TARGETS = {
    "final_heldout_dice": "held-out hard Dice",
    "gap_loss": "generalisation gap (held-out minus training Dice loss)",
}
FACTORS = ("seed", "optimizer", "noise", "norm", "skip")
__doc__ += "\n".join(f"    {name:24s} {text} (larger = {kind})" for name, (text, kind) in MEASURES.items()) + "\n"


def all_runs_table(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The union of per-study run tables, each run once (studies share runs)."""
    frame = pd.concat(list(tables), ignore_index=True)
    return frame.drop_duplicates(subset="run", keep="first").sort_values("run").reset_index(drop=True)


def _verdict(tau: float, low: float, high: float, p: float, alpha: float, kind: str, target: str) -> str:
    if not all(math.isfinite(v) for v in (tau, low, high, p)):
        return "cannot say (too few runs with a value)"
    if p >= alpha or low <= 0 <= high:
        return "does not predict it here"
    larger = "larger" if kind == "larger" else ("sharper" if kind == "sharper" else "flatter")
    better = tau > 0 if target == "final_heldout_dice" else tau < 0
    return f"predicts it: {larger} minima go with {'better' if better else 'worse'} generalisation"


def generalisation(runs: pd.DataFrame, settings: dict, measures: Sequence[str] | None = None) -> pd.DataFrame:
    """The rank-correlation table over the finished runs, with a verdict and a rank per row.

    `settings`: level, bootstrap, seed, alpha (the config's `metrics`). Measures missing from
    the runs table are left out; rows are ranked by |tau| against held-out Dice.
    """
    finished = runs[runs["outcome"] == "finished"].reset_index(drop=True)
    measures = [m for m in (measures or MEASURES) if m in finished.columns]
    factors = [f for f in FACTORS if f in finished.columns]
    table = generalisation_table(finished, measures, list(TARGETS), factors, n_boot=settings["bootstrap"],
                                 level=settings["level"], seed=settings["seed"])
    table.insert(1, "measure_is", [MEASURES[m][1] for m in table["measure"]])
    table.insert(2, "description", [MEASURES[m][0] for m in table["measure"]])
    table["verdict"] = [
        _verdict(r.tau, r.tau_low, r.tau_high, r.p_value, settings["alpha"], r.measure_is, r.target)
        for r in table.itertuples()
    ]
    strength = table[table["target"] == "final_heldout_dice"].set_index("measure")["tau"].abs()
    table["rank"] = table["measure"].map(strength.rank(ascending=False, method="min", na_option="bottom"))
    table["runs_total"] = len(runs)
    table["runs_finished"] = len(finished)
    return table.sort_values(["rank", "target"]).reset_index(drop=True)


def _number(value) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.2f}"


def generalisation_rst(table: pd.DataFrame, table_path: str, level: float) -> str:
    """The generalisation page's summary: measures ranked, each with its tau and verdict."""
    heldout = table[table["target"] == "final_heldout_dice"]
    gap = table[table["target"] == "gap_loss"].set_index("measure")
    n = int(heldout["n"].max()) if len(heldout) else 0
    lines = ["Does a flatter minimum generalise better?", "-" * 41, "",
             f"Kendall's tau of each measure with the held-out hard Dice over the {n} finished runs of "
             f"the studies ({table['runs_total'].iloc[0] if len(table) else 0} runs in all), with a "
             f"{100 * level:g}% bootstrap interval over runs, and Jiang et al.'s granulated tau (Psi). "
             f"Numbers: ``{table_path}``.", ""]
    predicting = heldout[heldout["verdict"].str.startswith("predicts")]
    if len(predicting):
        names = ", ".join(f"``{m}``" for m in predicting["measure"])
        lines += [f"**Measures that predict held-out Dice here:** {names}.", ""]
    else:
        lines += ["**No measure predicts held-out Dice here** at this number of runs.", ""]
    # A bullet list: tied ranks (1, 2, 2, 4) are no valid enumerated list in reStructuredText.
    for row in heldout.itertuples():
        g = gap.loc[row.measure] if row.measure in gap.index else None
        gap_text = "" if g is None else (
            f"; generalisation gap: {g['verdict']} (tau {_number(g['tau'])} "
            f"[{_number(g['tau_low'])}, {_number(g['tau_high'])}], p = {_p_value(g['p_value'])})"
        )
        lines.append(
            f"- rank {int(row.rank)}, ``{row.measure}`` ({MEANING.get(row.measure_is, row.measure_is)}): held-out Dice: "
            f"{row.verdict} (tau {_number(row.tau)} [{_number(row.tau_low)}, {_number(row.tau_high)}], "
            f"p = {_p_value(row.p_value)}, Psi {_number(row.Psi)}){gap_text}"
        )
    return "\n".join(lines) + "\n"


MEANING = {"sharper": "larger means sharper", "flatter": "larger means flatter", "larger": "a size of the weights"}


def _p_value(value) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.1e}" if value < 0.001 else f"{value:.3f}"


def write_generalisation(table: pd.DataFrame, csv_path: str | os.PathLike, rst_path: str | os.PathLike,
                         level: float) -> None:
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(rst_path) as tmp:
        tmp.write_text(generalisation_rst(table, str(csv_path), level))
