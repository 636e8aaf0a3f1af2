"""The run grid: which trainings the configured studies need, and what each depends on.

A run is one training, identified as `{arch}/{optimizer}/noise{noise}/seed{seed}`. A study is
the cartesian product of its archs, optimizers, noise levels and seeds; the workflow trains the
union of all studies' runs once.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path


from .models import resolve_arch


class ConfigError(ValueError):
    """A config value is missing or wrong; the message names the key."""


def format_noise(noise: float) -> str:
    """Canonical text of a noise level in run ids: 0 -> "0", 0.05 -> "0.05"."""
    # + 0.0 turns -0.0 (allowed by "minimum: 0") into 0.0, so it cannot become "noise-0".
    return f"{float(noise) + 0.0:g}"


@dataclass(frozen=True, order=True)
class Run:
    arch: str
    optimizer: str
    noise: float
    seed: int

    @property
    def id(self) -> str:
        return f"{self.arch}/{self.optimizer}/noise{format_noise(self.noise)}/seed{self.seed}"

    @property
    def wildcards(self) -> dict:
        return {"arch": self.arch, "optim": self.optimizer, "noise": format_noise(self.noise), "seed": str(self.seed)}


def study_runs(config: dict, study: str) -> list[Run]:
    spec = config["studies"][study]
    grid = itertools.product(spec["archs"], spec["optimizers"], spec["noise"], spec["seeds"])
    return [Run(a, o, float(n), int(s)) for a, o, n, s in grid]


def all_runs(config: dict) -> list[Run]:
    """Every run of every study, each once, in a stable order."""
    return sorted({run for study in config["studies"] for run in study_runs(config, study)})


def first_seed_runs(config: dict) -> list[Run]:
    """Each study's runs with its first (smallest) seed: one run per condition, each once."""
    return sorted(
        {run for study in config["studies"] for run in study_runs(config, study)
         if run.seed == min(config["studies"][study]["seeds"])}
    )


def find_run(config: dict, arch: str, optim: str, noise: str, seed: str) -> Run:
    """The configured run matching these wildcard values, or a ConfigError saying why not."""
    wanted = f"{arch}/{optim}/noise{noise}/seed{seed}"
    for run in all_runs(config):
        if run.id == wanted:
            return run
    raise ConfigError(f"run {wanted} is not part of any configured study (see config key 'studies')")


def arch_spec(config: dict, arch: str) -> dict:
    """Architecture dict of a named arch: config `model` defaults, then its own keys."""
    return resolve_arch({**config.get("model", {}), **config["archs"][arch]})


def train_settings(config: dict, run: Run) -> dict:
    """Everything a training result depends on (passed to the rule as params)."""
    optimizer = config["optimizers"][run.optimizer]
    return {
        "arch": arch_spec(config, run.arch),
        "lr": float(optimizer["lr"]),
        "momentum": float(optimizer["momentum"]),
        "noise": run.noise,
        "seed": run.seed,
        **{
            k: config["training"][k]
            for k in ("epochs", "batch_size", "save_every", "eval_batch_size", "plateau", "stop_on_plateau",
                      "collapse_margin", "cpu_convolutions")
        },
    }


def _where(error: "jsonschema.ValidationError") -> str:
    path = ""
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def validate_config(config: dict, schema_path: str | Path) -> None:
    """Check `config` against the JSON schema, the cross-references between its sections and
    the constraints between its values (unetscape/config_checks.py).

    Raises ConfigError with one line naming the offending key.
    """
    import jsonschema  # only validation needs it: the package's numerical code runs without it

    from .config_checks import check_config
    from .strict_yaml import load_yaml_file

    schema = load_yaml_file(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(list(e.absolute_path)), str(e.absolute_path)))
    if errors:
        error = errors[0]
        # The schema's description of the key says what the value means (and why a limit is there).
        about = error.schema.get("description") if isinstance(error.schema, dict) else None
        about = f" ({' '.join(about.split())})" if about else ""
        raise ConfigError(f"config key {_where(error)}: {error.message}{about}")
    for name in config["archs"]:
        try:
            arch_spec(config, name)
        except ValueError as err:
            raise ConfigError(f"config key archs.{name}: {err}") from None
    for study, spec in config["studies"].items():
        for key, section in (("archs", "archs"), ("optimizers", "optimizers")):
            for name in spec[key]:
                if name not in config[section]:
                    raise ConfigError(
                        f"config key studies.{study}.{key}: {name!r} is not defined under '{section}' "
                        f"(defined: {', '.join(config[section])})"
                    )
    evaluation = config["landscape"]["evaluation"]
    if evaluation["points_per_pass"] > 1 and evaluation["bn"] == "recompute":
        raise ConfigError(
            "config key landscape.evaluation.points_per_pass: must be 1 with bn 'recompute' "
            "(BN statistics are re-estimated point by point)"
        )
    runs = {run.id for run in all_runs(config)}
    for run_id in config["scale_invariance"]["runs"]:
        if run_id not in runs:
            raise ConfigError(f"config key scale_invariance.runs: {run_id!r} is not a run of any study")
    if config["data"]["source"] == "isic":
        for key in ("images_dir", "masks_dir"):
            if not config["data"].get(key):
                raise ConfigError(f"config key data.{key}: required when data.source is 'isic'")
    check_config(config)


def canonical(value):
    """`value` with every mapping's keys sorted, recursively (lists keep their order).

    Snakemake compares a dict param in key order, so the same config written with its keys in
    another order (as YAML tools that sort keys do) would re-run every job; canonical params
    change only when a value does.
    """
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value
