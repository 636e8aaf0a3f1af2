"""What the runs say about the poster's claims: a verdict per part of each claim, each from tests.

The claims, their parts and each part's primary and secondary measures are in `claims.py`; the
tests of one comparison in `comparisons.py` (and `dose_response.py`); the runs that would decide
a comparison in `seeds_needed.py`. This module runs them over the per-run tables
(`results/tables/landscape_{study}.csv`) and turns the p-values into verdicts.

Comparisons. A part's primary measure is compared in every stratum (e.g. each optimiser) and,
where a claim compares several levels with its reference (skips: concat and add against none),
for each of them: one comparison per (stratum, level), each a row. Landscape measures count
finished runs only (a run that did not finish has no trained minimum); the training's measures
(`failed`, probe_*, eos_*) every run with a value. A curvature value (a measure named raw_*,
folded_* or relative_*) whose Lanczos solve did not converge (column
`<prefix>_lanczos_converged` False; a table without that column counts as converged) is left
out of every statistic; `n_unconverged` counts the values left out of each comparison.

Families. The primary comparisons of a claim are one family: their difference tests'
p-values are Holm-adjusted together, and so are their equivalence tests'. Holm controls the
family-wise error rate: the chance of any false "different" (or "equivalent") verdict in the
claim is at most alpha. Secondary measures form a family of their own (Holm-adjusted among
themselves, shown beside the verdict, deciding nothing). A rate whose smallest attainable
p-value at its groups' sizes (`p_smallest`, Fisher's test) is not below the family's strictest
threshold alpha / m cannot be significant whatever the runs show: it leaves the family (and m),
is reported as secondary with decision "cannot reach alpha at this n", keeps its part
undecided, and the plan says how many runs it would need.

Decisions of a primary comparison (`decide`), with p_holm and p_equivalence_holm its adjusted
p-values:

    too few runs        a group has fewer than `min_runs` runs with a value
    negligible          p_holm < alpha and p_equivalence_holm < alpha: different, but shown to lie
                        within +-delta: a real difference too small to matter, which neither
                        supports nor contradicts the claim
    different           p_holm < alpha only: supports the claim with the claimed sign (either
                        sign for "different" claims), contradicts it against
    equivalent          p_equivalence_holm < alpha only: within +-delta (no effect)
    inconclusive        neither

The interval of each effect is taken at the family's Bonferroni level 1 - alpha / m, so an
interval that excludes 0 (p < alpha / m) always goes with a "different" decision (Holm's
adjusted p is at most m p). `seeds_needed` is the runs per group (per level for a trend, per
learning rate and group for a dose response) at which the difference test or the TOST would
decide the comparison with the configured power at alpha / m, taking the observed effect and
spread as the truth (`seeds_needed_difference`, `seeds_needed_equivalence`: each alone); a
part needs the most any of its undecided comparisons needs (`part_seeds_needed`).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import os
from typing import Sequence

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from unetscape.atomic import atomic_path
from unetscape.training.outcome_words import no_finished_run

from . import comparisons
from .claims import (
    CLAIMS,
    FAILED,
    Claim,
    Measure,
    Part,
    check_margins,
    equivalence_margins,
)
from .comparisons import hedges_g, welch_tost  # noqa: F401  (the findings' public names)
from .dose_response import FAILED_OUTCOMES, MAX_SEEDS_PER_LR, SIMULATIONS
from .seeds_needed import MAX_RATE_SEEDS, MAX_SEEDS, seeds_for_power, welch_df  # noqa: F401

DEFAULT_POWER = 0.8
# What one of the runs a comparison needs is, by its kind, and where the search for them stops.
RUN_UNITS = {"means": "runs per group", "rate": "runs per group", "trend": "runs per level",
             "dose_response": "seeds per learning rate and group"}
SEARCH_CAPS = {"means": MAX_SEEDS, "rate": MAX_RATE_SEEDS, "trend": MAX_SEEDS, "dose_response": MAX_SEEDS_PER_LR}
CURVATURE_PREFIXES = ("relative_", "folded_", "raw_")
UNDECIDED = ("inconclusive", "too few runs", "cannot reach alpha at this n")

PART_RULE = (
    "A part is decided by its primary measure alone, one comparison per stratum (and per level compared "
    "with the reference): supported when every comparison supports it (different, Holm p < alpha, with the "
    "claimed sign); contradicted when any is different against the claimed sign; partly supported when some "
    "support it and none contradicts; no effect when every comparison is equivalent within +-delta (TOST) or "
    "negligible (different, but also shown to lie within +-delta: a real difference too small to matter, "
    "which neither supports nor contradicts); too few runs when every comparison has too few; inconclusive "
    "at this n otherwise. Secondary measures are shown beside it and decide nothing."
)
CLAIM_RULE = (
    "A claim is contradicted when any of its parts is; supported only when every part was tested and is "
    "supported (a part never tested keeps it from supported); partly supported when some part is (partly) "
    "supported and none is contradicted; no effect when every part shows no effect; not tested when no part "
    "could be; inconclusive at this n otherwise."
)

COLUMNS = [
    "claim", "claim_text", "claim_verdict", "claim_summary", "part", "part_text", "part_verdict",
    "part_seeds_needed", "role", "primary_measure", "study", "metric", "kind", "runs", "test", "within", "group_a",
    "group_b", "n_a", "n_b", "n_unconverged", "mean_a", "mean_b", "effect", "effect_is", "ci_level",
    "effect_ci_low", "effect_ci_high", "standardised_effect", "statistic", "p_value", "p_holm", "claimed",
    "equivalence_margin", "p_equivalence", "p_equivalence_holm", "p_smallest", "decision", "verdict", "power",
    "alpha_family", "seeds_needed", "seeds_needed_difference", "seeds_needed_equivalence", "critical_lr_a",
    "critical_lr_b", "half_failed_lr_a", "half_failed_lr_b", "note", "source",
]
CLAIM_COLUMNS = [
    "claim", "claim_text", "claim_verdict", "claim_summary", "part", "part_text", "part_verdict",
    "part_seeds_needed", "metric", "kind", "study", "claimed", "within", "group_a", "group_b", "n_a", "n_b",
    "n_unconverged", "mean_a", "mean_b", "effect", "effect_is", "ci_level", "effect_ci_low", "effect_ci_high",
    "p_value", "p_holm", "equivalence_margin", "p_equivalence_holm", "decision", "verdict", "seeds_needed", "power",
    "critical_lr_a", "critical_lr_b", "half_failed_lr_a", "half_failed_lr_b", "test", "note",
]


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (statsmodels `multipletests`); NaN
    stays NaN and is not counted in the family."""
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(len(p), np.nan)
    finite = np.isfinite(p)
    if finite.any():
        adjusted[finite] = multipletests(p[finite], method="holm")[1]
    return adjusted.tolist()


# --- the runs a comparison reads --------------------------------------------------------------


def _as_flags(column: pd.Series) -> np.ndarray:
    """True/False of a flag column as read from a CSV (bools, "True"/"False", 1/0); a missing
    value counts as True (nothing says the solve failed)."""
    words = column.map(lambda v: v if isinstance(v, (bool, np.bool_)) else
                       {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}
                       .get(str(v).strip().lower(), True))
    return words.to_numpy(dtype=bool)


def converged(table: pd.DataFrame, measure: str) -> np.ndarray:
    """Per run: whether the measure's value may enter a statistic (its Lanczos solve converged,
    for a curvature measure `<prefix>_...` with a `<prefix>_lanczos_converged` column)."""
    for prefix in CURVATURE_PREFIXES:
        flag = f"{prefix}lanczos_converged"
        if measure.startswith(prefix) and flag in table.columns:
            return _as_flags(table[flag])
    return np.ones(len(table), dtype=bool)


def _failed(table: pd.DataFrame) -> np.ndarray:
    return table["outcome"].isin(FAILED_OUTCOMES).to_numpy()


def _selected(table: pd.DataFrame, measure: Measure) -> pd.DataFrame:
    return table if measure.runs == "all" else table[table["outcome"] == "finished"]


def _values(runs: pd.DataFrame, measure: Measure) -> tuple[pd.Series, int]:
    """The measure's values with unconverged curvature set to NaN, and how many were."""
    values = pd.to_numeric(runs[measure.name], errors="coerce")
    ok = converged(runs, measure.name)
    left_out = int((~ok & values.notna().to_numpy()).sum())
    return values.where(ok), left_out


# --- the comparisons of one measure ------------------------------------------------------------


def _strata(table: pd.DataFrame, within: Sequence[str]):
    columns = [c for c in within if c in table.columns]
    if not columns:
        return [("", table)]
    out = []
    for key, group in table.groupby(columns, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        out.append((", ".join(f"{c}={v}" for c, v in zip(columns, key)), group))
    return out


def _claimed(measure: Measure, claim: Claim) -> str:
    if measure.kind == "trend":
        return {"greater": f"rises with {claim.factor}", "less": f"falls with {claim.factor}",
                "different": f"changes with {claim.factor}"}[measure.direction]
    return {"greater": "b > a", "less": "b < a", "different": "b != a"}[measure.direction]


def _measure_rows(claim: Claim, part: Part, measure: Measure, role: str, table: pd.DataFrame, settings: dict,
                  margins: dict) -> list[dict]:
    """One row per (stratum, level) comparison of one measure of a part."""
    base = {"claim": claim.key, "claim_text": claim.text, "part": part.key, "part_text": part.text, "role": role,
            "primary_measure": role == "primary", "study": measure.study, "metric": measure.name,
            "kind": measure.kind, "runs": measure.runs, "claimed": _claimed(measure, claim),
            "_direction": measure.direction}
    if claim.factor not in table.columns:
        return [{**base, "note": f"the runs table has no column {claim.factor!r}"}]
    needs = ["lr"] if measure.kind == "dose_response" else ([] if measure.name == FAILED else [measure.name])
    missing = [c for c in needs if c not in table.columns]
    if missing:
        return [{**base, "note": f"not in the runs table of study {measure.study!r} (no column {missing[0]!r})"}]
    margin = margins.get(measure.name, math.nan)
    power = settings["power"]
    rows = []
    for label, group in _strata(table, claim.within):
        runs = _selected(group, measure)
        if measure.kind == "trend":
            values, left_out = _values(runs, measure)
            levels = pd.to_numeric(runs[claim.factor], errors="coerce")
            result = comparisons.trend(levels, values, margin, power)
            present = sorted(levels.dropna().unique())
            names = (f"{claim.factor}={present[0]:g}", f"{claim.factor}={present[-1]:g}") if present else ("", "")
            rows.append({**base, "within": label, "group_a": names[0], "group_b": names[1], "n_unconverged": left_out,
                         **result})
            continue
        for level in claim.others:
            a, b = runs[runs[claim.factor] == claim.reference], runs[runs[claim.factor] == level]
            names = {"group_a": f"{claim.factor}={claim.reference}", "group_b": f"{claim.factor}={level}"}
            if measure.kind == "dose_response":
                both = pd.concat([a, b])
                result = comparisons.dose(both["lr"].to_numpy(dtype=np.float64),
                                          (both[claim.factor] == level).to_numpy(), _failed(both), power,
                                          settings["seed"], settings.get("simulations", SIMULATIONS))
                left_out = 0
            elif measure.kind == "rate":
                result = comparisons.rates(_failed(a), _failed(b), margin, power)
                left_out = 0
            else:
                values_a, out_a = _values(a, measure)
                values_b, out_b = _values(b, measure)
                result = comparisons.means(values_a, values_b, margin, power)
                left_out = out_a + out_b
            if result["n_a"] == 0 and result["n_b"] == 0 and left_out == 0:
                continue
            rows.append({**base, "within": label, **names, "n_unconverged": left_out, **result})
    if not rows:
        outcomes = table["outcome"] if "outcome" in table.columns else []
        why = "" if measure.runs == "all" or "finished" in set(outcomes) else f" ({no_finished_run(outcomes)})"
        return [{**base, "note": f"no runs to compare{why}"}]
    return rows


# --- verdicts ------------------------------------------------------------------------------------


def _sign_ok(effect: float, direction: str) -> bool | None:
    """True if the effect has the claimed sign, False if the opposite, None for 'different'."""
    if direction == "different":
        return None
    return effect > 0 if direction == "greater" else effect < 0


def decide(row: dict, settings: dict) -> tuple[str, str]:
    """(decision, verdict) of one comparison from its adjusted p-values (see the module docstring)."""
    if row.get("_demoted"):
        return "cannot reach alpha at this n", "inconclusive"
    n = min(row.get("n_a", 0), row.get("n_b", 0))
    if not n >= settings["min_runs"]:
        return "too few runs", "too few runs"
    alpha = settings["alpha"]
    different = math.isfinite(row["p_holm"]) and row["p_holm"] < alpha
    equivalent = math.isfinite(row["p_equivalence_holm"]) and row["p_equivalence_holm"] < alpha
    if different and equivalent:
        return "negligible", "negligible"
    if different:
        ok = _sign_ok(row["effect"], row["_direction"])
        return "different", "supports" if ok in (True, None) else "contradicts"
    if equivalent:
        return "equivalent", "equivalent"
    return "inconclusive", "inconclusive"


def part_verdict(rows: Sequence[dict]) -> str:
    """A part's verdict from the verdicts of its primary measure's comparisons (`PART_RULE`)."""
    verdicts = [r["verdict"] for r in rows]
    if not verdicts:
        return "not tested"
    if all(v == "too few runs" for v in verdicts):
        return "too few runs"
    if "contradicts" in verdicts:
        return "contradicted"
    if all(v == "supports" for v in verdicts):
        return "supported"
    if "supports" in verdicts:
        return "partly supported"
    if all(v in ("equivalent", "negligible") for v in verdicts):
        return "no effect"
    return "inconclusive at this n"


def claim_verdict(parts: Sequence[str]) -> str:
    """A claim's verdict from the verdicts of ALL its parts, "not tested" ones included (`CLAIM_RULE`)."""
    tested = [p for p in parts if p != "not tested"]
    if not tested:
        return "not tested"
    if "contradicted" in tested:
        return "contradicted"
    if len(tested) == len(parts) and all(p == "supported" for p in parts):
        return "supported"
    if any(p in ("supported", "partly supported") for p in tested):
        return "partly supported"
    if len(tested) == len(parts) and all(p == "no effect" for p in parts):
        return "no effect"
    return "inconclusive at this n"


def claim_summary(verdict: str, parts: Sequence[tuple[str, str]]) -> str:
    """The claim's verdict with each part's, e.g. "partly supported: less stable -- supported;
    sharper -- inconclusive at this n"."""
    return f"{verdict}: " + "; ".join(f"{name} -- {part}" for name, part in parts)


def _largest(values) -> float:
    """The most runs any undecided comparison needs: inf if one can never be decided, NaN if
    one cannot be estimated (too few runs for a spread)."""
    values = [float(v) for v in values]
    if not values or any(math.isnan(v) for v in values):
        return math.nan
    return max(values)


def _family(rows: list[dict], settings: dict) -> float:
    """Holm within the rows (one family), their interval at the Bonferroni level, decisions; the
    family's alpha / m."""
    m = sum(math.isfinite(r.get("p_value", math.nan)) for r in rows)
    alpha_family = settings["alpha"] / max(m, 1)
    for row, p, p_eq in zip(rows, holm([r.get("p_value", math.nan) for r in rows]),
                            holm([r.get("p_equivalence", math.nan) for r in rows])):
        row["p_holm"], row["p_equivalence_holm"] = p, p_eq
        row["alpha_family"], row["ci_level"] = alpha_family, 1 - alpha_family
        row["effect_ci_low"], row["effect_ci_high"] = row["_interval"](1 - alpha_family)
        row["decision"], row["verdict"] = decide(row, settings)
    return alpha_family


def _demote_unreachable_rates(primary: list[dict], alpha: float) -> list[dict]:
    """Take out of the family every rate whose smallest attainable p is not below alpha / m,
    m counted over what stays (which can only relax the threshold: repeat until none goes)."""
    family = [r for r in primary if math.isfinite(r.get("p_value", math.nan))]
    while True:
        threshold = alpha / max(len(family), 1)
        out = [r for r in family if r["kind"] == "rate" and not r.get("p_smallest", 0.0) < threshold]
        if not out:
            return [r for r in primary if not r.get("_demoted")]
        for row in out:
            row["_demoted"] = True
            row["role"] = "secondary"
            row["note"] = (f"Fisher's test cannot give p below {row['p_smallest']:.3g} with {row['n_a']} and "
                           f"{row['n_b']} runs, not below the family's threshold {threshold:.3g}: outside the "
                           "family, undecided")
        family = [r for r in family if not r.get("_demoted")]


def _expanded(measures, tables: dict) -> list:
    """Secondary measures with a `*` pattern replaced by every matching column of their study's
    table (in column order); a pattern that matches nothing stays, so the findings say so."""
    out = []
    for measure in measures:
        table = tables.get(measure.study, (None,))[0]
        if "*" in measure.name and table is not None:
            matches = [c for c in table.columns if fnmatch.fnmatchcase(c, measure.name)]
            if matches:
                out += [dataclasses.replace(measure, name=name) for name in matches]
                continue
        out.append(measure)
    return out


def _claim_rows(claim: Claim, tables: dict, settings: dict, margins: dict) -> list[dict]:
    rows = []
    for part in claim.parts:
        for measure, role in [(part.primary, "primary")] + [(s, "secondary") for s in _expanded(part.secondary, tables)]:
            base = {"claim": claim.key, "claim_text": claim.text, "part": part.key, "part_text": part.text,
                    "role": role, "primary_measure": role == "primary", "study": measure.study,
                    "metric": measure.name, "kind": measure.kind}
            if measure.study not in tables:
                rows.append({**base, "note": f"study {measure.study!r} is not in the config"})
                continue
            table, source = tables[measure.study]
            for row in _measure_rows(claim, part, measure, role, table, settings, margins):
                rows.append({**row, "source": str(source)})
    compared = [r for r in rows if "_interval" in r]
    primary = _demote_unreachable_rates([r for r in compared if r["role"] == "primary"], settings["alpha"])
    alpha_family = _family(primary, settings)
    demoted = [r for r in compared if r.get("_demoted")]
    for row in demoted:  # undecided, with the runs that would decide it at the family's threshold
        _family([row], {**settings, "alpha": alpha_family})
        row["alpha_family"] = alpha_family
    _family([r for r in compared if r["role"] == "secondary" and not r.get("_demoted")], settings)
    for row in compared:
        row["power"] = settings["power"]
        if row["primary_measure"] and row["decision"] in UNDECIDED:
            difference, equivalence = row["_seeds"](row["alpha_family"])
            row["seeds_needed_difference"], row["seeds_needed_equivalence"] = difference, equivalence
            choices = [v for v in (difference, equivalence) if not math.isnan(v)]
            row["seeds_needed"] = min(choices) if choices else math.nan
    verdicts = []
    for part in claim.parts:
        mine = [r for r in compared if r["part"] == part.key and r["primary_measure"]]
        verdict = part_verdict(mine)
        needed = _largest(r["seeds_needed"] for r in mine if r["decision"] in UNDECIDED)
        for row in rows:
            if row["part"] == part.key:
                row["part_verdict"], row["part_seeds_needed"] = verdict, needed
        verdicts.append((part.short, verdict))
    verdict = claim_verdict([v for _, v in verdicts])
    for row in rows:
        row["claim_verdict"], row["claim_summary"] = verdict, claim_summary(verdict, verdicts)
        if "_interval" not in row:
            row["verdict"] = row.get("note", "")
    return rows


def findings_table(tables: dict, settings: dict, claims: Sequence[Claim] = CLAIMS) -> pd.DataFrame:
    """One row per comparison (primary and secondary) of every claim's parts; `tables`: study ->
    (runs table, source path). `settings`: the config's `metrics` (alpha, min_runs, seed, and
    optionally power, equivalence {measure: margin}; `simulations` for the dose responses'
    power). A part whose study or measure is missing gets a row saying so (verdict "not tested"
    where it is the primary measure)."""
    settings = {"power": DEFAULT_POWER, **settings}
    margins = equivalence_margins(settings)
    check_margins(claims, margins)
    out = []
    for claim in claims:
        out.extend(_claim_rows(claim, tables, settings, margins))
    frame = pd.DataFrame(out)
    return frame.reindex(columns=COLUMNS)


def claims_table(findings: pd.DataFrame, claims: Sequence[Claim] = CLAIMS) -> pd.DataFrame:
    """One row per (part, stratum) comparison of each part's primary measure, every cell of a
    row from that one comparison; a part without one (not tested) gets one row saying why."""
    rows = []
    for claim in claims:
        of_claim = findings[findings["claim"] == claim.key]
        for part in claim.parts:
            group = of_claim[(of_claim["part"] == part.key) & of_claim["primary_measure"].eq(True)]
            if group.empty:
                group = of_claim[of_claim["part"] == part.key].head(1)
            for _, row in group.iterrows():
                rows.append({c: row.get(c, math.nan) for c in CLAIM_COLUMNS})
    return pd.DataFrame(rows).reindex(columns=CLAIM_COLUMNS)


# --- words ---------------------------------------------------------------------------------------


def _number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    if isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1):
        return str(int(value))
    return f"{value:.{digits}g}"


def runs_words(value, kind: str) -> str:
    """The runs a comparison (or part) of this kind needs, in words: "12 runs per group", "more
    than 10,000 runs per group" (the search's cap; never, for an effect of exactly 0), "–"
    where they cannot be estimated."""
    unit = RUN_UNITS.get(kind, "runs per group")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    cap = SEARCH_CAPS.get(kind, MAX_SEEDS)
    if math.isinf(value) or value >= cap:
        return f"more than {cap:,} {unit}"
    return f"{int(value)} {unit}"


def margins_text(findings: pd.DataFrame) -> str:
    """The margins the primary comparisons used, e.g. "roughness +-1, failed +-0.25"."""
    rows = findings[findings["primary_measure"].eq(True) & findings["equivalence_margin"].notna()]
    pairs = dict(zip(rows["metric"], rows["equivalence_margin"]))
    return ", ".join(f"{m} ±{_number(v)}" for m, v in pairs.items())


def findings_rst(findings: pd.DataFrame, claims: pd.DataFrame, table_path: str, claims_path: str,
                 settings: dict) -> str:
    """The verdicts as reStructuredText: the rules, then each claim with its parts."""
    alpha = settings["alpha"]
    margins = margins_text(findings)
    margins = f" Margins (±delta, the smallest difference that matters): {margins}." if margins else ""
    lines = ["What the data say about the poster's claims", "-" * 44, "",
             (f"Each part of a claim is decided by tests of its primary measure (alpha = {alpha:g}, Holm-adjusted "
              "within each claim: the chance of any false verdict in a claim is at most alpha). " + PART_RULE + " "
              + CLAIM_RULE + margins),
             "",
             (f"Details: ``{claims_path}`` (one row per primary comparison) and ``{table_path}`` (every "
              "comparison, secondary measures too)."), ""]
    for claim_key, claim in claims.groupby("claim", sort=False):
        first = claim.iloc[0]
        lines += [f"**{first['claim_text']}** — *{first['claim_summary']}*", ""]
        for _, row in claim.iterrows():
            text = f"- {row['part_text']}: **{row['part_verdict']}**"
            if not isinstance(row.get("test"), str):
                text += f" ({row['note']})" if isinstance(row.get("note"), str) else ""
                lines.append(text)
                continue
            text += (
                f" ({row['metric']}, {row['within'] or 'all runs'}: {row['group_a']} {_number(row['mean_a'])} "
                f"vs {row['group_b']} {_number(row['mean_b'])}; {row['effect_is']} {_number(row['effect'])} "
                f"[{_number(row['effect_ci_low'])}, {_number(row['effect_ci_high'])}] at "
                f"{100 * row['ci_level']:.3g}%, n = {_number(row['n_a'])} + {_number(row['n_b'])}, "
                f"Holm p = {_number(row['p_holm'])}: {row['decision']})"
            )
            if row["decision"] in UNDECIDED:
                text += f"; runs to decide it: {runs_words(row['seeds_needed'], row['kind'])}"
            lines.append(text)
        lines.append("")
    return "\n".join(lines) + "\n"


def write_findings(findings: pd.DataFrame, csv_path: str | os.PathLike, rst_path: str | os.PathLike,
                   claims_path: str | os.PathLike, settings: dict, claims: Sequence[Claim] = CLAIMS) -> None:
    table = claims_table(findings, claims)
    with atomic_path(csv_path) as tmp:
        findings.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(claims_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(rst_path) as tmp:
        tmp.write_text(findings_rst(findings, table, str(csv_path), str(claims_path), settings))
