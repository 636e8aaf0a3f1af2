"""The poster's four claims, their parts, and the one measure that decides each part.

Each claim compares groups of runs that differ in one factor, within strata of others:

    batchnorm  "Batch norm gives normal behaviour", study `seeds`: norm none (a) against batch (b),
               within each optimiser
    momentum   "Momentum makes SGD less stable", study `momentum`: optimizer sgd (a) against
               sgd_momentum (b), within each architecture
    noise      "More input noise gives rougher landscapes", study `noise`: a trend over the noise
               level, within each architecture
    skips      "Skip connections change the landscape", study `skips`: skip none (a) against
               concat and against add (b), within each normalisation

A part (e.g. "smoother") has ONE primary measure, with the claimed direction (b greater than a,
less, or different either way), whose comparisons (one per stratum) decide it; the secondary
measures are reported beside it and decide nothing. The primary measures come from the config
section `claims` (`parse_claims`; the defaults, `DEFAULT_CLAIMS`, equal the config's):

    claims:
      batchnorm:
        smoother: {measure: roughness, direction: less}
        ...
      momentum:
        less_stable: {measure: failed, direction: greater, study: stability, kind: dose_response}

Keys of a part: `measure` (a column of the runs tables, or `failed`: the run ended unstable,
diverged or collapsed), `direction` (greater, less, different), and optionally `study` (the
study whose runs table it reads; default the claim's) and `kind`: `means` (Welch's test and a
TOST, the default of two-group claims), `trend` (the noise claim's OLS slope over the level),
`rate` (Fisher's test of the share of failed runs, the default for `failed`), `dose_response`
(a learning-rate sweep: logistic regression of failed on log10(lr) and the factor,
`analysis/dose_response.py`). The secondary measures of each part are defined here
(`SECONDARY`; a name with `*` stands for every column of the runs table it matches, e.g. each
part's curvature); one missing from a runs table is skipped, and the findings say so.

Margins (`equivalence_margins`): every measure's smallest effect of interest, +-delta, is an
absolute number in the measure's own units, from `metrics.equivalence` ({measure: margin});
without that setting the defaults `DEFAULT_MARGINS` apply. A primary measure without a margin is
an error (`check_margins`), except a dose response, which has no equivalence test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

KINDS = ("means", "trend", "rate", "dose_response")
DIRECTIONS = ("greater", "less", "different")
PART_KEYS = ("measure", "direction", "study", "kind")
# The response of rates and dose responses: whether a run failed.
FAILED = "failed"
# Measures about the training rather than the trained minimum: compared over every run with a
# value (an unstable run is what they are about); the others over finished runs only.
TRAINING_MEASURES = ("failed", "largest_rise", "step_volatility", "loss_rises", "final_above_best")
TRAINING_PREFIXES = ("probe_", "eos_")


@dataclass(frozen=True)
class Measure:
    name: str  # a column of the runs table, or "failed"
    direction: str  # "greater": b > a claimed (or rising with the level), "less", "different"
    kind: str  # one of KINDS
    study: str  # the study whose runs table it reads

    @property
    def runs(self) -> str:
        """"all": every run with a value; "finished": finished runs only."""
        training = self.name in TRAINING_MEASURES or self.name.startswith(TRAINING_PREFIXES)
        return "all" if training else "finished"


@dataclass(frozen=True)
class Part:
    key: str
    text: str
    primary: Measure
    secondary: tuple[Measure, ...]

    @property
    def short(self) -> str:
        """The part's name in a sentence: "less stable"."""
        return self.key.replace("_", " ")


@dataclass(frozen=True)
class Claim:
    key: str
    text: str
    study: str
    factor: str  # the column whose levels are compared (or, for a trend, ordered)
    reference: object | None  # level a (None for a trend)
    others: tuple  # levels b, each compared with a
    within: tuple[str, ...]  # one comparison per value of these columns (a stratum)
    kinds: tuple[str, ...]  # the kinds its parts may use
    parts: tuple[Part, ...]


# What each claim compares, and the words for it and its parts.
DESIGNS = {
    "batchnorm": {"text": "Batch norm gives normal behaviour", "study": "seeds", "factor": "norm", "reference": "none",
                  "others": ("batch",), "within": ("optimizer",), "kinds": ("means", "rate", "dose_response")},
    "momentum": {"text": "Momentum makes SGD less stable", "study": "momentum", "factor": "optimizer",
                 "reference": "sgd", "others": ("sgd_momentum",), "within": ("arch",),
                 "kinds": ("means", "rate", "dose_response")},
    "noise": {"text": "More input noise gives rougher landscapes", "study": "noise", "factor": "noise",
              "reference": None, "others": (), "within": ("arch",), "kinds": ("trend",)},
    "skips": {"text": "Skip connections change the landscape", "study": "skips", "factor": "skip", "reference": "none",
              "others": ("concat", "add"), "within": ("norm",), "kinds": ("means", "rate", "dose_response")},
}
PART_TEXTS = {
    ("batchnorm", "smoother"): "smoother landscapes",
    ("batchnorm", "more_convex"): "more convex minima",
    ("batchnorm", "more_stable"): "more stable training",
    ("momentum", "less_stable"): "less stable training",
    ("momentum", "sharper"): "sharper minima",
    ("momentum", "rougher"): "rougher minima",
    ("noise", "rougher"): "roughness rises with the noise level",
    ("skips", "roughness"): "they change the landscape's roughness",
    ("skips", "curvature"): "they change the curvature of the minimum",
    ("skips", "stability"): "they change the stability of training",
}
_STABILITY = ("probe_volatility", "probe_rises", "failed", "eos_lambda_ratio_final", "eos_batch_ratio_final")
_ROUGHNESS = ("roughness_first", "total_variation")
# Secondary measures of each part: reported beside the primary one, outside the verdict.
_BASINS = ("basins", "total_persistence")
_BARRIERS = ("curve_barrier_next", "line_barrier_next")
SECONDARY = {
    ("batchnorm", "smoother"): _ROUGHNESS + _BASINS,
    ("batchnorm", "more_convex"): _BARRIERS,
    ("batchnorm", "more_stable"): ("probe_largest_rise",) + _STABILITY,
    ("momentum", "less_stable"): ("probe_largest_rise",) + _STABILITY,
    ("momentum", "sharper"): ("relative_trace",),
    ("momentum", "rougher"): _ROUGHNESS,
    ("noise", "rougher"): _ROUGHNESS,
    ("skips", "roughness"): _ROUGHNESS + _BASINS,
    # where in the network the curvature moves: each part's (a pattern: the parts the table has)
    ("skips", "curvature"): ("relative_trace", "relative_nonconvexity", "part_*_lambda_max"),
    ("skips", "stability"): ("probe_largest_rise",) + _STABILITY,
}
DEFAULT_CLAIMS = {
    "batchnorm": {
        "smoother": {"measure": "roughness", "direction": "less"},
        "more_convex": {"measure": "relative_nonconvexity", "direction": "less"},
        "more_stable": {"measure": "probe_largest_rise", "direction": "less"},
    },
    "momentum": {
        "less_stable": {"measure": "failed", "direction": "greater", "study": "stability", "kind": "dose_response"},
        "sharper": {"measure": "relative_lambda_max", "direction": "greater"},
        "rougher": {"measure": "roughness", "direction": "greater"},
    },
    "noise": {"rougher": {"measure": "roughness", "direction": "greater"}},
    "skips": {
        "roughness": {"measure": "roughness", "direction": "different"},
        "curvature": {"measure": "relative_lambda_max", "direction": "different"},
        "stability": {"measure": "probe_largest_rise", "direction": "different"},
    },
}
# Smallest effects of interest, +-delta, in each measure's own units (rises as fractions of the
# initial loss, edge-of-stability ratios against their edge at 1): half the pooled standard
# deviation between seeds of each measure in the default run's seeds study, rounded, i.e. half of
# what changing the seed does by itself; for the share of failed runs, a quarter of the runs (the
# config's `metrics.equivalence` says the same; docs/measures-and-statistics.md how they were
# measured).
DEFAULT_MARGINS = {
    "roughness": 0.2,
    "roughness_first": 0.4,
    "total_variation": 0.02,
    "relative_lambda_max": 1.5,
    "relative_nonconvexity": 0.07,
    "relative_trace": 3.0,
    "probe_largest_rise": 0.03,
    "probe_volatility": 0.01,
    "probe_rises": 1.5,
    "eos_lambda_ratio_final": 0.04,
    "eos_batch_ratio_final": 0.2,
    "curve_barrier_next": 0.003,
    "line_barrier_next": 0.03,
    "failed": 0.25,
}


def _measure_kind(claim: str, where: str, measure: str, kind: str | None) -> str:
    design = DESIGNS[claim]
    if kind is None:
        kind = "rate" if measure == FAILED and "rate" in design["kinds"] else design["kinds"][0]
    if kind not in KINDS:
        raise ValueError(f"{where}.kind: must be one of {list(KINDS)}, got {kind!r}")
    if kind not in design["kinds"]:
        raise ValueError(f"{where}.kind: claim {claim!r} compares {design['factor']} "
                         f"{'as a trend' if design['kinds'] == ('trend',) else 'between two groups'}; "
                         f"its parts may use {list(design['kinds'])}, not {kind!r}")
    if kind in ("rate", "dose_response") and measure != FAILED:
        raise ValueError(f"{where}.kind: {kind!r} is about whether runs failed: its measure must be "
                         f"{FAILED!r}, got {measure!r}")
    if measure == FAILED and kind not in ("rate", "dose_response"):
        raise ValueError(f"{where}.kind: {FAILED!r} is a yes/no outcome: compare it as 'rate' or "
                         f"'dose_response', not {kind!r}")
    return kind


def _part(claim: str, key: str, spec, base: dict) -> Part:
    where = f"claims.{claim}.{key}"
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: must be a mapping with keys {list(PART_KEYS)}, got {spec!r}")
    unknown = [k for k in spec if k not in PART_KEYS]
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown key (a part has {list(PART_KEYS)})")
    for required in ("measure", "direction"):
        if required not in spec:
            raise ValueError(f"{where}.{required}: missing (a part needs a primary measure and its direction)")
    measure, direction = spec["measure"], spec["direction"]
    if not isinstance(measure, str) or not measure.isidentifier():
        raise ValueError(f"{where}.measure: must be the name of a column of the runs table, got {measure!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"{where}.direction: must be one of {list(DIRECTIONS)}, got {direction!r}")
    study = spec.get("study", base["study"])
    if not isinstance(study, str) or not study:
        raise ValueError(f"{where}.study: must be the name of a study, got {study!r}")
    kind = _measure_kind(claim, where, measure, spec.get("kind"))
    primary = Measure(measure, direction, kind, study)
    secondary = tuple(
        Measure(name, direction, _measure_kind(claim, f"{where} (secondary {name})", name, None), base["study"])
        for name in SECONDARY[(claim, key)] if name != measure
    )
    return Part(key, PART_TEXTS[(claim, key)], primary, secondary)


def parse_claims(section: dict | None = None) -> tuple[Claim, ...]:
    """The claims with the primary measures of the config's `claims` section: each part it
    names takes its spec from there, the others keep `DEFAULT_CLAIMS`. Errors name the key
    (`claims.<claim>.<part>.<key>`)."""
    section = {} if section is None else section
    if not isinstance(section, dict):
        raise ValueError(f"claims: must be a mapping of claim -> part -> spec, got {section!r}")
    for claim, parts in section.items():
        if claim not in DEFAULT_CLAIMS:
            raise ValueError(f"claims.{claim}: unknown claim (the claims are {list(DEFAULT_CLAIMS)})")
        if not isinstance(parts, dict):
            raise ValueError(f"claims.{claim}: must be a mapping of part -> spec, got {parts!r}")
        for key in parts:
            if key not in DEFAULT_CLAIMS[claim]:
                raise ValueError(f"claims.{claim}.{key}: unknown part (the parts of {claim!r} are "
                                 f"{list(DEFAULT_CLAIMS[claim])})")
    claims = []
    for claim, defaults in DEFAULT_CLAIMS.items():
        base = DESIGNS[claim]
        given = section.get(claim, {})
        parts = tuple(_part(claim, key, given.get(key, spec), base) for key, spec in defaults.items())
        claims.append(Claim(claim, base["text"], base["study"], base["factor"], base["reference"], base["others"],
                            base["within"], base["kinds"], parts))
    return tuple(claims)


CLAIMS = parse_claims()


def equivalence_margins(settings: dict) -> dict:
    """{measure: +-delta} from `settings["equivalence"]` (the config's `metrics.equivalence`),
    or `DEFAULT_MARGINS` where the settings have none. Each margin must be a positive number in
    the measure's own units."""
    margins = settings.get("equivalence")
    if margins is None:
        return dict(DEFAULT_MARGINS)
    if not isinstance(margins, dict):
        raise ValueError(f"metrics.equivalence: must map each measure to its margin, got {margins!r}")
    if "relative" in margins or "absolute" in margins:
        raise ValueError("metrics.equivalence: give each measure an absolute margin in its own units "
                         "({measure: margin}); 'relative' and 'absolute' are no longer read (a margin "
                         "relative to the sample's mean moves with the sample, which TOST does not allow)")
    for measure, margin in margins.items():
        number = isinstance(margin, (int, float)) and not isinstance(margin, bool)
        if not (number and math.isfinite(margin) and margin > 0):
            raise ValueError(f"metrics.equivalence.{measure}: must be a positive number (the smallest "
                             f"difference that matters, in the measure's units), got {margin!r}")
    return {k: float(v) for k, v in margins.items()}


def check_margins(claims, margins: dict) -> None:
    """Every primary measure with an equivalence test (all kinds but dose_response) has a margin."""
    for claim in claims:
        for part in claim.parts:
            measure = part.primary
            if measure.kind != "dose_response" and measure.name not in margins:
                raise ValueError(f"metrics.equivalence.{measure.name}: missing; it is the primary measure of "
                                 f"claims.{claim.key}.{part.key} and needs its smallest effect of interest "
                                 f"(+-delta, in its own units) for the equivalence test")
