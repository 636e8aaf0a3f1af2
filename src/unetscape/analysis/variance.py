"""How much of a number's spread is the random direction and how much the seed.

Each run is measured on K seeded direction sets (`landscape.direction_sets`), so a number made
from random directions has two sources of variance within a condition: the direction (within a
run) and the seed (between runs). The one-way random-effects model

    y_rk = mu + s_r + e_rk,   s_r ~ (0, sigma_seed^2),  e_rk ~ (0, sigma_dir^2)

(run r, direction set k) splits them. The ANOVA (method-of-moments) estimator, for runs with
K_r sets each (N = sum K_r values, R runs):

    MS_within  = sum_r sum_k (y_rk - ybar_r)^2 / (N - R)              estimates sigma_dir^2
    MS_between = sum_r K_r (ybar_r - ybar)^2 / (R - 1)
    n0         = (N - sum_r K_r^2 / N) / (R - 1)                       (= K when balanced)
    sigma_seed^2 = max(0, (MS_between - MS_within) / n0)

(Searle, Casella and McCulloch 1992, ch. 3). With balanced data and a positive estimate it
equals the REML estimate of a linear mixed model (statsmodels `MixedLM`, checked in the tests).
A run's number averaged over its K sets has standard error sigma_dir / sqrt(K) from the
directions; what a seed changes beyond what a direction does is sigma_seed.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def one_way_components(groups: Sequence[Sequence[float]]) -> dict:
    """The ANOVA estimates of a one-way random-effects model from `groups` (one sequence of
    values per run; non-finite values are left out, as are runs left with none).

    Returns runs, values, n0, ms_within, ms_between, var_within (sigma_dir^2), var_between
    (sigma_seed^2, truncated at 0) and var_between_raw (before truncation); NaN where the data
    cannot define them (fewer than two runs for the between part, no run with two values for
    the within part).
    """
    cleaned = [np.asarray(g, dtype=np.float64) for g in groups]
    cleaned = [g[np.isfinite(g)] for g in cleaned]
    cleaned = [g for g in cleaned if len(g)]
    runs = len(cleaned)
    sizes = np.array([len(g) for g in cleaned], dtype=np.float64)
    total = float(sizes.sum())
    out = {"runs": runs, "values": int(total), "n0": math.nan, "ms_within": math.nan, "ms_between": math.nan,
           "var_within": math.nan, "var_between": math.nan, "var_between_raw": math.nan}
    if runs == 0:
        return out
    if total > runs:
        within = sum(float(((g - g.mean()) ** 2).sum()) for g in cleaned)
        out["ms_within"] = out["var_within"] = within / (total - runs)
    if runs >= 2:
        means = np.array([g.mean() for g in cleaned])
        grand = float((sizes * means).sum() / total)
        out["ms_between"] = float((sizes * (means - grand) ** 2).sum() / (runs - 1))
        out["n0"] = float((total - (sizes**2).sum() / total) / (runs - 1))
        if math.isfinite(out["ms_within"]):
            raw = (out["ms_between"] - out["ms_within"]) / out["n0"]
            out["var_between_raw"] = raw
            out["var_between"] = max(0.0, raw)
    return out


def direction_and_seed(groups: Sequence[Sequence[float]], sets: int) -> dict:
    """The reader's numbers of one condition's metric: the direction and seed standard
    deviations, the direction's share of a single plane's variance, the standard error over
    directions of a run's average of `sets` sets, and that error over the seed SD (at most 0.5:
    the averaged number measures the seed more than its directions)."""
    parts = one_way_components(groups)
    sd_dir, sd_seed = math.sqrt(parts["var_within"]), math.sqrt(parts["var_between"])
    total = parts["var_within"] + parts["var_between"]
    se = sd_dir / math.sqrt(sets) if sets > 0 else math.nan
    return {
        "runs": parts["runs"],
        "sets": sets,
        "sd_direction": sd_dir,
        "sd_seed": sd_seed,
        "direction_share": parts["var_within"] / total if total > 0 else math.nan,
        "se_directions": se,
        "se_over_sd_seed": se / sd_seed if sd_seed > 0 else (math.inf if se > 0 else math.nan),
    }
