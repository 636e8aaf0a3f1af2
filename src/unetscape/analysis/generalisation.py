"""Does a flatter minimum generalise better? Every landscape measure against held-out numbers.

Over all finished runs of the configured studies (each run once), each measure of the measured
weights is rank-correlated (Kendall's tau-b, `rank_correlation`) with the held-out Dice and
with the generalisation gap (held-out minus training Dice loss).

The headline is the within-condition tau (`rank_correlation.within_condition_tau`): runs are
compared only with runs of the same condition (architecture, optimiser, noise level: they
differ only in their seed), and the taus of the conditions are averaged. Its p-value is a
permutation test that shuffles the target among the runs of each condition, its interval a
bootstrap that resamples runs within conditions. The pooled tau over all runs stays as a
secondary column: it mixes conditions, so a measure that merely differs between architectures
(or optimisers) whose held-out Dice also differs "predicts" it without ranking any two
comparable runs; runs of one condition are not independent of each other in that sense, and
the pooled bootstrap interval (resampling runs as if they were) does not account for it.
Jiang et al.'s granulated Psi (one psi per hyper-parameter factor, seed not a factor) is kept
for reference.

A measure *predicts* a target here when its within-condition p-value, Holm-adjusted over every
measure x target pair of the table (statsmodels `multipletests`), is below `alpha`: the chance
that any measure is called predictive of any target when none is related to either (the
family-wise error rate) is then at most alpha. The verdict says in which direction.

The measures, with the direction in which each grows (so a reader can tell "sharper goes with
worse held-out Dice" from "flatter goes with it"), and whether they move under the networks'
rescaling symmetries:
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np
import pandas as pd

from unetscape.atomic import atomic_path

from .findings import holm
from .rank_correlation import generalisation_table, within_condition_tau

# column -> (what it is, "sharper" if a larger value means a sharper minimum, "flatter" if a
# flatter one, "larger" for the norms, which are not about the shape of the minimum, and
# whether the number is invariant to rescaling the weights without changing the function)
MEASURES = {
    "sharpness_r0.25": ("largest rise of the loss within radius 0.25 on the random plane", "sharper", True),
    "sharpness_r0.5": ("largest rise of the loss within radius 0.5 on the random plane", "sharper", True),
    "basin_width_h0.05_mean": ("distance at which the loss first rises by 0.05, mean of 4 half-axes", "flatter", True),
    "roughness": ("mean |Laplacian| of the random-plane surface, relative", "sharper", True),
    "relative_lambda_max": ("largest eigenvalue of the scale-normalised Hessian", "sharper", True),
    "relative_trace": ("trace of the scale-normalised Hessian (Hutchinson)", "sharper", True),
    "average_sharpness": ("adaptive average-case sharpness, rho = flatness.average_rho", "sharper", True),
    "worst_case_sharpness": ("adaptive worst-case sharpness, rho = flatness.worst_rho", "sharper", True),
    "pac_bayes_flatness": ("PAC-Bayes 1/sigma^2 (largest sigma keeping the Dice drop within target)", "sharper",
                           False),
    "pac_bayes_mag_flatness": ("magnitude-aware PAC-Bayes 1/sigma'^2", "sharper", True),
    "frobenius_sq_sum": ("sum of squared Frobenius norms of the layers", "larger", False),
    "log_prod_frobenius": ("log of the product of the layers' Frobenius norms", "larger", False),
    "distance_from_init": ("||w - w_0||, BN folded", "larger", False),
}
TARGETS = {
    "final_heldout_dice": "held-out hard Dice",
    "gap_loss": "generalisation gap (held-out minus training Dice loss)",
}
# What a condition is: runs that share these differ only in their seed.
CONDITION = ("arch", "optimizer", "noise")
# Hyper-parameter factors of the granulated Psi (the seed is a replicate, not a factor).
FACTORS = ("optimizer", "noise", "norm", "skip")
# A study built to make generalisation vary (issue: "generalisation that varies"): its runs are
# compared within each training-set size, and its factors are what it varies.
STUDY = "generalisation"
STUDY_CONDITION = ("train_size",)
STUDY_FACTORS = ("train_size", "optimizer", "lr", "batch_size", "arch", "noise")
# The study can rank measures when its runs' gaps spread by at least this many standard errors
# of a held-out estimate: otherwise the gaps differ by little more than their own noise.
RANKABLE_SPREAD = 3.0


def gap_check(runs: pd.DataFrame, groups: Sequence[str] = ()) -> dict:
    """Does the generalisation gap vary by more than its error? Over the finished runs: the
    gap's range and standard deviation (`gap_loss`), the median standard error over held-out
    images of a run's held-out loss (`final_heldout_loss_se`, the error of its gap), their
    ratio, and whether it is at least `RANKABLE_SPREAD`."""
    finished = runs[runs["outcome"] == "finished"] if "outcome" in runs else runs
    gap = pd.to_numeric(finished.get("gap_loss", pd.Series(dtype=float)), errors="coerce").dropna()
    se = pd.to_numeric(finished.get("final_heldout_loss_se", pd.Series(dtype=float)), errors="coerce").dropna()
    spread = float(gap.std(ddof=1)) if len(gap) > 1 else math.nan
    error = float(se.median()) if len(se) else math.nan
    ratio = spread / error if error > 0 else math.nan
    # Within the groups the headline compares runs in (e.g. each training-set size): the pooled
    # standard deviation of the gap about each group's mean.
    within = math.nan
    keys = [g for g in groups if g in finished.columns]
    if keys and len(gap) > 1:
        frame = finished.assign(_gap=pd.to_numeric(finished["gap_loss"], errors="coerce")).dropna(subset=["_gap"])
        deviations = frame["_gap"] - frame.groupby(keys)["_gap"].transform("mean")
        dof = len(frame) - frame.groupby(keys).ngroups
        within = float(np.sqrt((deviations**2).sum() / dof)) if dof > 0 else math.nan
    return {"runs": int(len(gap)), "gap_min": float(gap.min()) if len(gap) else math.nan,
            "gap_max": float(gap.max()) if len(gap) else math.nan, "gap_sd": spread, "heldout_se": error,
            "spread_over_se": ratio, "can_rank": bool(ratio >= RANKABLE_SPREAD), "gap_sd_within": within,
            "within_over_se": within / error if error > 0 else math.nan}
__doc__ += "\n".join(
    f"    {name:24s} {text} (larger = {kind}{'' if invariant else '; changes with the weights scale'})"
    for name, (text, kind, invariant) in MEASURES.items()
) + "\n"


def all_runs_table(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The union of per-study run tables, each run once (studies share runs)."""
    frame = pd.concat(list(tables), ignore_index=True)
    return frame.drop_duplicates(subset="run", keep="first").sort_values("run").reset_index(drop=True)


def _verdict(tau: float, p_holm: float, alpha: float, kind: str, target: str) -> str:
    if not (math.isfinite(tau) and math.isfinite(p_holm)):
        return "cannot say (too few runs with a value)"
    if p_holm >= alpha:
        return "does not predict it here"
    larger = "larger" if kind == "larger" else ("sharper" if kind == "sharper" else "flatter")
    better = tau > 0 if target == "final_heldout_dice" else tau < 0
    return f"predicts it: {larger} minima go with {'better' if better else 'worse'} generalisation"


def generalisation(runs: pd.DataFrame, settings: dict, measures: Sequence[str] | None = None,
                   condition: Sequence[str] = CONDITION, factors: Sequence[str] = FACTORS) -> pd.DataFrame:
    """The rank-correlation table over the finished runs, with a verdict and a rank per row.

    `settings`: level, bootstrap, seed, alpha (the config's `metrics`); the permutation test
    uses `bootstrap` shuffles. Measures missing from the runs table are left out; rows are
    ranked by |within-condition tau| against held-out Dice. `condition`: the columns runs must
    share to be compared (the within-condition tau); `factors`: those of the granulated Psi
    (the ones that vary among the runs are used). The gap check (`gap_check`) is in every row.
    """
    finished = runs[runs["outcome"] == "finished"].reset_index(drop=True)
    measures = [m for m in (measures or MEASURES) if m in finished.columns]
    factors = [f for f in factors if f in finished.columns and finished[f].nunique() > 1] or [
        f for f in FACTORS if f in finished.columns]
    table = generalisation_table(finished, measures, list(TARGETS), factors, n_boot=settings["bootstrap"],
                                 level=settings["level"], seed=settings["seed"])
    table = table.rename(columns={"tau": "tau_pooled", "p_value": "p_pooled", "tau_low": "tau_pooled_low",
                                  "tau_high": "tau_pooled_high"})
    condition = [c for c in condition if c in finished.columns]
    codes = finished.groupby(condition, sort=True).ngroup().to_numpy() if condition else None
    within = []
    for row in table.itertuples():
        m = pd.to_numeric(finished[row.measure], errors="coerce")
        t = pd.to_numeric(finished[row.target], errors="coerce")
        keep = (m.notna() & t.notna()).to_numpy()
        if codes is None or keep.sum() < 2:
            within.append({"tau": math.nan, "p_value": math.nan, "low": math.nan, "high": math.nan, "conditions": 0})
            continue
        within.append(within_condition_tau(m[keep], t[keep], codes[keep], n_perm=settings["bootstrap"],
                                           n_boot=settings["bootstrap"], level=settings["level"],
                                           seed=settings["seed"]))
    table.insert(2, "tau", [w["tau"] for w in within])
    table.insert(3, "tau_low", [w["low"] for w in within])
    table.insert(4, "tau_high", [w["high"] for w in within])
    table.insert(5, "p_value", [w["p_value"] for w in within])
    table.insert(6, "p_holm", holm(table["p_value"]))
    table.insert(7, "conditions", [w["conditions"] for w in within])
    table.insert(1, "measure_is", [MEASURES[m][1] for m in table["measure"]])
    table.insert(2, "invariant", [MEASURES[m][2] for m in table["measure"]])
    table.insert(3, "description", [MEASURES[m][0] for m in table["measure"]])
    table["verdict"] = [
        _verdict(r.tau, r.p_holm, settings["alpha"], r.measure_is, r.target) for r in table.itertuples()
    ]
    strength = table[table["target"] == "final_heldout_dice"].set_index("measure")["tau"].abs()
    table["rank"] = table["measure"].map(strength.rank(ascending=False, method="min", na_option="bottom"))
    table["runs_total"] = len(runs)
    table["runs_finished"] = len(finished)
    table["within"] = " x ".join(condition)
    for key, value in gap_check(runs, condition).items():
        table[key] = value
    return table.sort_values(["rank", "target"]).reset_index(drop=True)


def _number(value) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.2f}"


def generalisation_rst(table: pd.DataFrame, table_path: str, level: float) -> str:
    """The generalisation page's summary: measures ranked by their within-condition tau with
    held-out Dice, each with one sentence per target."""
    heldout = table[table["target"] == "final_heldout_dice"]
    gap = table[table["target"] == "gap_loss"].set_index("measure")
    n = int(heldout["n"].max()) if len(heldout) else 0
    conditions = int(heldout["conditions"].max()) if len(heldout) else 0
    within = table["within"].iloc[0] if "within" in table and len(table) else "arch x optimizer x noise"
    by_size = within == " x ".join(STUDY_CONDITION)
    varied = [c.removeprefix("psi_").replace("_", " ") for c in table.columns
              if c.startswith("psi_") and c != "psi_train_size"]
    groups = (f"training-set size (they differ in their {', '.join(varied + ['seed'])})" if by_size
              else "architecture, optimiser and noise level (they differ only in their seed)")
    source = f"the {STUDY} study" if by_size else "the studies"
    lines = ["Does a flatter minimum generalise better?", "-" * 41, "",
             f"Kendall's tau of each measure with the held-out hard Dice and with the generalisation gap, "
             f"over the {n} finished runs of {source} ({table['runs_total'].iloc[0] if len(table) else 0} runs "
             f"in all), computed within groups: each run is compared only with runs of its own "
             f"{groups}; {conditions} groups with two or more runs, weighted by their pairs "
             f"(stratified tau). p-values come from shuffling the target among the runs of "
             f"each group and are Holm-adjusted over every measure and target, so the chance of calling "
             f"any measure predictive when none is stays below alpha; intervals ({100 * level:g}%) resample "
             f"runs within groups. Jiang et al.'s granulated Psi (the mean over factors of the tau among "
             f"runs that differ in that factor alone) and the pooled tau over all runs are shown beside it. "
             f"Numbers: ``{table_path}``.", ""]
    if "gap_sd" in table and len(table):
        row = table.iloc[0]
        spread = (f"The generalisation gap (held-out minus training Dice loss) of these runs spans "
                  f"{_number(row['gap_min'])} to {_number(row['gap_max'])} (standard deviation "
                  f"{row['gap_sd']:.3g}), against a median standard error of {row['heldout_se']:.3g} of a run's "
                  f"held-out loss over its held-out images: {row['spread_over_se']:.3g} times.")
        within = ""
        if "gap_sd_within" in row and math.isfinite(row["gap_sd_within"]):
            within = (f" Within the groups compared the gap's standard deviation is {row['gap_sd_within']:.3g}, "
                      f"{row['within_over_se']:.3g} times that error: the within-group tau ranks differences of "
                      f"that size.")
        if row["can_rank"]:
            lines += [spread + f" The gaps differ by more than their error (at least {RANKABLE_SPREAD:g} times), "
                      "so there is something to predict." + within, ""]
        else:
            lines += [f"**This study cannot rank measures.** {spread} The gaps differ by less than "
                      f"{RANKABLE_SPREAD:g} times their own error, so a ranking of measures by the gap would rank "
                      "noise.", ""]
    predicting = table[table["verdict"].str.startswith("predicts")]
    if len(predicting):
        names = ", ".join(f"``{m}`` ({TARGETS[t].split(' (')[0]})" for m, t in zip(predicting["measure"],
                                                                              predicting["target"]))
        lines += [f"**Predictive here, after the adjustment:** {names}.", ""]
    else:
        lines += ["**No measure predicts held-out Dice or the gap here** after the adjustment, at this number "
                  "of runs.", ""]
    # A bullet list: tied ranks (1, 2, 2, 4) are no valid enumerated list in reStructuredText.
    for row in heldout.itertuples():
        sentences = [_sentence("held-out Dice", row._asdict())]
        if row.measure in gap.index:
            sentences.append(_sentence("the generalisation gap", gap.loc[row.measure].to_dict()))
        scale = "" if row.invariant else " Its value changes when the weights are rescaled without changing the network."
        lines.append(
            f"- rank {int(row.rank)}, ``{row.measure}`` ({MEANING.get(row.measure_is, row.measure_is)}). "
            + " ".join(sentences) + scale
        )
    return "\n".join(lines) + "\n"


def _sentence(target: str, row: dict) -> str:
    verdict = row["verdict"].replace("predicts it: ", "predicts it (").rstrip()
    verdict = verdict + ")" if verdict.startswith("predicts it (") else verdict
    return (
        f"Against {target}: {verdict}; within-condition tau {_number(row['tau'])} "
        f"[{_number(row['tau_low'])}, {_number(row['tau_high'])}], Holm p = {_p_value(row['p_holm'])} "
        f"(pooled tau {_number(row['tau_pooled'])})."
    )


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
