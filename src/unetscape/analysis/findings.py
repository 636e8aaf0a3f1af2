"""What the runs say about the poster's claims: a test, an effect size and a verdict for each.

The poster drew four conclusions from pictures of landscapes; here each becomes comparisons
between groups of runs that differ in one factor, read from the per-run tables
(`results/tables/landscape_{study}.csv`):

    batchnorm  "Batch norm gives normal behaviour": within the `seeds` study, U-Nets with batch
               norm have smoother (lower roughness), more convex (lower |lambda_min/lambda_max|)
               landscapes than without, per optimiser
    momentum   "Momentum makes SGD less stable": within the `momentum` study, SGD with momentum
               diverges more often and finds sharper (higher top eigenvalue) and rougher minima,
               per architecture
    noise      "More input noise gives rougher landscapes": within the `noise` study, roughness
               rises with the noise level (Kendall's tau over runs), per architecture
    skips      "Skip connections change the landscape": within the `skips` study, U-Nets with
               concatenated or added skips differ from those without in roughness and top
               eigenvalue, per normalisation (a change in either direction)

Tests: Welch's t-test (two-sided) for the difference of two means, Fisher's exact test for two
divergence rates, Kendall's tau-b with its two-sided p-value for a trend. The p-values within a
claim are Holm-adjusted (the claim is one question asked several ways). A comparison
`supports` the claim when its adjusted p is below `alpha` and its effect has the claimed sign,
`contradicts` it when significant with the other sign, and is `inconclusive` otherwise; one
with fewer than `min_runs` runs in a group is `too few runs`. A claim is supported when some
comparison supports it and none contradicts it, contradicted in the mirror case, and otherwise
inconclusive at this number of runs.

Landscape metrics are compared over `finished` runs only (a diverged run has no landscape to
speak of); divergence rates count every run of a condition.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.stats

from unetscape.atomic import atomic_path
from unetscape.training.outcome_words import no_finished_run


@dataclass(frozen=True)
class Comparison:
    metric: str  # column of the runs table, or "diverged" for the divergence rate
    factor: str  # the column whose two levels are compared (or, for a trend, ordered)
    a: object | None  # level of the reference group (None for a trend)
    b: object | None  # level of the other group
    within: tuple[str, ...]  # separate comparisons for each value of these columns
    direction: str  # "greater": b > a claimed, "less": b < a, "different": either
    kind: str = "means"  # "means" (Welch), "rate" (Fisher), "trend" (Kendall)


@dataclass(frozen=True)
class Claim:
    key: str
    text: str
    study: str
    comparisons: tuple[Comparison, ...]
    where: tuple[tuple[str, object], ...] = ()  # rows kept: column == value


CLAIMS = (
    Claim(
        "batchnorm",
        "Batch norm gives normal behaviour (smoother, more convex landscapes)",
        "seeds",
        (
            Comparison("roughness", "norm", "none", "batch", ("optimizer",), "less"),
            Comparison("nonconvexity", "norm", "none", "batch", ("optimizer",), "less"),
        ),
    ),
    Claim(
        "momentum",
        "Momentum makes SGD less stable (more divergence, sharper and rougher minima)",
        "momentum",
        (
            Comparison("diverged", "optimizer", "sgd", "sgd_momentum", ("arch",), "greater", "rate"),
            Comparison("top_eigenvalue", "optimizer", "sgd", "sgd_momentum", ("arch",), "greater"),
            Comparison("roughness", "optimizer", "sgd", "sgd_momentum", ("arch",), "greater"),
        ),
    ),
    Claim(
        "noise",
        "More input noise gives rougher landscapes",
        "noise",
        (Comparison("roughness", "noise", None, None, ("arch",), "greater", "trend"),),
    ),
    Claim(
        "skips",
        "Skip connections change the landscape",
        "skips",
        (
            Comparison("roughness", "skip", "none", "concat", ("norm",), "different"),
            Comparison("roughness", "skip", "none", "add", ("norm",), "different"),
            Comparison("top_eigenvalue", "skip", "none", "concat", ("norm",), "different"),
            Comparison("top_eigenvalue", "skip", "none", "add", ("norm",), "different"),
        ),
    ),
)

COLUMNS = [
    "claim", "claim_text", "claim_verdict", "study", "metric", "test", "within", "group_a", "group_b",
    "n_a", "n_b", "mean_a", "mean_b", "effect", "effect_ci_low", "effect_ci_high", "standardised_effect",
    "statistic", "p_value", "p_holm", "claimed", "verdict", "source",
]


def _finite(values) -> np.ndarray:
    values = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    return values[np.isfinite(values)]


def hedges_g(a: np.ndarray, b: np.ndarray) -> float:
    """(mean b - mean a) / pooled sd, with the small-sample correction 1 - 3 / (4 (n_a + n_b) - 9)."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return math.nan
    pooled = math.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    if pooled == 0:
        return math.nan
    return (b.mean() - a.mean()) / pooled * (1 - 3 / (4 * (na + nb) - 9))


def bootstrap_difference(a: np.ndarray, b: np.ndarray, level: float, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile interval of mean(b) - mean(a), resampling each group with replacement."""
    if len(a) == 0 or len(b) == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    diffs = b[rng.integers(0, len(b), (n_boot, len(b)))].mean(1) - a[rng.integers(0, len(a), (n_boot, len(a)))].mean(1)
    low, high = np.quantile(diffs, [0.5 * (1 - level), 0.5 * (1 + level)])
    return float(low), float(high)


def _sign_ok(effect: float, direction: str) -> bool | None:
    """True if the effect has the claimed sign, False if the opposite, None for 'different'."""
    if direction == "different":
        return None
    return effect > 0 if direction == "greater" else effect < 0


def _compare_means(a, b, settings) -> dict:
    a, b = _finite(a), _finite(b)
    out = {"n_a": len(a), "n_b": len(b), "mean_a": a.mean() if len(a) else math.nan,
           "mean_b": b.mean() if len(b) else math.nan, "test": "Welch t-test"}
    out["effect"] = out["mean_b"] - out["mean_a"]
    out["effect_ci_low"], out["effect_ci_high"] = bootstrap_difference(
        a, b, settings["level"], settings["bootstrap"], settings["seed"]
    )
    out["standardised_effect"] = hedges_g(a, b)
    if min(len(a), len(b)) >= 2 and (a.var(ddof=1) > 0 or b.var(ddof=1) > 0):
        result = scipy.stats.ttest_ind(b, a, equal_var=False)
        out["statistic"], out["p_value"] = float(result.statistic), float(result.pvalue)
    else:
        out["statistic"] = out["p_value"] = math.nan
    return out


def _compare_rates(a: pd.Series, b: pd.Series) -> dict:
    ka, kb = int(a.sum()), int(b.sum())
    na, nb = len(a), len(b)
    out = {"n_a": na, "n_b": nb, "mean_a": ka / na if na else math.nan, "mean_b": kb / nb if nb else math.nan,
           "test": "Fisher exact test"}
    out["effect"] = out["mean_b"] - out["mean_a"]
    out["effect_ci_low"] = out["effect_ci_high"] = out["standardised_effect"] = math.nan
    if na and nb:
        result = scipy.stats.fisher_exact([[kb, nb - kb], [ka, na - ka]])
        out["statistic"], out["p_value"] = float(result.statistic), float(result.pvalue)
    else:
        out["statistic"] = out["p_value"] = math.nan
    return out


def _compare_trend(levels: pd.Series, values: pd.Series) -> dict:
    keep = np.isfinite(pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64))
    levels, values = levels[keep].astype(float), values[keep].astype(float)
    lo, hi = (levels.min(), levels.max()) if len(levels) else (math.nan, math.nan)
    a, b = values[levels == lo].to_numpy(), values[levels == hi].to_numpy()
    out = {"n_a": len(a), "n_b": len(b), "mean_a": a.mean() if len(a) else math.nan,
           "mean_b": b.mean() if len(b) else math.nan, "test": "Kendall tau-b (trend over all levels)",
           "effect_ci_low": math.nan, "effect_ci_high": math.nan}
    out["effect"] = out["mean_b"] - out["mean_a"]
    if levels.nunique() >= 2 and values.nunique() >= 2:
        result = scipy.stats.kendalltau(levels, values)
        out["statistic"], out["p_value"] = float(result.statistic), float(result.pvalue)
    else:
        out["statistic"] = out["p_value"] = math.nan
    out["standardised_effect"] = out["statistic"]
    return out


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (NaN stays NaN, not counted)."""
    p = np.asarray(p_values, dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(p))
    adjusted = np.full(len(p), np.nan)
    order = finite[np.argsort(p[finite], kind="stable")]
    m, running = len(order), 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[k]))
        adjusted[k] = running
    return adjusted.tolist()


def _comparisons(claim: Claim, table: pd.DataFrame, settings: dict, source: str) -> list[dict]:
    rows = []
    for cmp in claim.comparisons:
        if cmp.metric != "diverged" and cmp.metric not in table.columns or cmp.factor not in table.columns:
            continue
        within = [c for c in cmp.within if c in table.columns]
        groups = table.groupby(within, sort=True) if within else [((), table)]
        for key, group in groups:
            key = key if isinstance(key, tuple) else (key,)
            label = ", ".join(f"{c}={v}" for c, v in zip(within, key))
            finished = group[group["outcome"] == "finished"]
            if cmp.kind == "trend":
                result = _compare_trend(finished[cmp.factor], finished[cmp.metric])
                levels = sorted(finished[cmp.factor].unique())
                names = (f"{cmp.factor}={levels[0]:g}" if levels else "", f"{cmp.factor}={levels[-1]:g}" if levels else "")
            elif cmp.kind == "rate":
                a = group[group[cmp.factor] == cmp.a]["outcome"] == "diverged"
                b = group[group[cmp.factor] == cmp.b]["outcome"] == "diverged"
                result, names = _compare_rates(a, b), (f"{cmp.factor}={cmp.a}", f"{cmp.factor}={cmp.b}")
            else:
                a = finished[finished[cmp.factor] == cmp.a][cmp.metric]
                b = finished[finished[cmp.factor] == cmp.b][cmp.metric]
                result, names = _compare_means(a, b, settings), (f"{cmp.factor}={cmp.a}", f"{cmp.factor}={cmp.b}")
            if result["n_a"] == 0 and result["n_b"] == 0:
                continue
            claimed = {"greater": "b > a", "less": "b < a", "different": "b != a"}[cmp.direction]
            if cmp.kind == "trend":
                claimed = "rises with " + cmp.factor
            rows.append({"claim": claim.key, "claim_text": claim.text, "study": claim.study,
                         "metric": cmp.metric if cmp.kind != "rate" else "diverged_rate", "within": label,
                         "group_a": names[0], "group_b": names[1], **result, "claimed": claimed,
                         "_direction": cmp.direction, "_kind": cmp.kind, "source": source})
    return rows


def _verdict(row: dict, settings: dict) -> str:
    if min(row["n_a"], row["n_b"]) < settings["min_runs"] and row["_kind"] != "rate":
        return "too few runs"
    p = row["p_holm"]
    if not math.isfinite(p) or p >= settings["alpha"]:
        return "inconclusive"
    sign = row["statistic"] if row["_kind"] == "trend" else row["effect"]
    ok = _sign_ok(sign, row["_direction"])
    return "supports" if ok in (True, None) else "contradicts"


def claim_verdict(verdicts: Sequence[str]) -> str:
    supports, contradicts = "supports" in verdicts, "contradicts" in verdicts
    if supports and not contradicts:
        return "supported"
    if contradicts and not supports:
        return "contradicted"
    return "inconclusive at this n"


def findings_table(tables: dict, settings: dict, claims: Sequence[Claim] = CLAIMS) -> pd.DataFrame:
    """One row per comparison of every claim whose study is in `tables` (study -> (runs table,
    source path)); `settings`: level, bootstrap, seed, min_runs, alpha. A claim whose study is
    not configured gets one row saying so."""
    out = []
    for claim in claims:
        if claim.study not in tables:
            out.append({"claim": claim.key, "claim_text": claim.text, "claim_verdict": "not tested",
                        "study": claim.study, "verdict": f"study {claim.study!r} is not in the config"})
            continue
        table, source = tables[claim.study]
        rows = _comparisons(claim, table, settings, str(source))
        for row, p in zip(rows, holm([r["p_value"] for r in rows])):
            row["p_holm"] = p
            row["verdict"] = _verdict(row, settings)
        verdict = claim_verdict([r["verdict"] for r in rows]) if rows else "not tested"
        for row in rows:
            row["claim_verdict"] = verdict
        if not rows:  # no group had a run to compare: say why when it is that none finished
            outcomes = table["outcome"] if "outcome" in table.columns else []
            why = "" if "finished" in set(outcomes) else f" ({no_finished_run(outcomes)})"
            rows = [{"claim": claim.key, "claim_text": claim.text, "claim_verdict": verdict, "study": claim.study,
                     "verdict": f"no runs to compare{why}", "source": str(source)}]
        out.extend(rows)
    frame = pd.DataFrame(out)
    return frame.reindex(columns=COLUMNS)


def _number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{value:.{digits}g}"


def findings_rst(findings: pd.DataFrame, table_path: str) -> str:
    """The front-page summary: one verdict per claim, with its comparisons, as reStructuredText."""
    lines = ["What the data say about the poster's claims", "-" * 44, "",
             f"Tests over the runs of the default studies (details: ``{table_path}``; each row names the "
             "table its numbers come from). Landscape numbers count finished runs only.", ""]
    for key, claim in findings.groupby("claim", sort=False):
        first = claim.iloc[0]
        lines += [f"**{first['claim_text']}** — *{first['claim_verdict']}*", ""]
        for _, row in claim.iterrows():
            if not isinstance(row.get("metric"), str):
                lines += [f"- {row['verdict']}", ""]
                continue
            lines.append(
                f"- {row['metric']} ({row['within'] or 'all runs'}): {row['group_a']} {_number(row['mean_a'])} "
                f"(n={_number(row['n_a'])}) vs {row['group_b']} {_number(row['mean_b'])} (n={_number(row['n_b'])}); "
                f"{row['test']} p={_number(row['p_value'])}, Holm p={_number(row['p_holm'])}: **{row['verdict']}**"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def write_findings(findings: pd.DataFrame, csv_path: str | os.PathLike, rst_path: str | os.PathLike) -> None:
    with atomic_path(csv_path) as tmp:
        findings.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(rst_path) as tmp:
        tmp.write_text(findings_rst(findings, str(csv_path)))
