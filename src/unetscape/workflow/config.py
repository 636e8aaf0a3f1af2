"""The run grid: which trainings the configured studies need, and what each depends on.

A run is one training, identified as `{arch}/{optimizer}/noise{noise}/seed{seed}`. A study is
the cartesian product of its archs, optimizers, noise levels and seeds; the workflow trains the
union of all studies' runs once.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

from unetscape.models.registry import ModelSpecError, resolve_model
from unetscape.models.spec import model_kind


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


def arch_spec(config: dict, arch: str, channels: int | None = None) -> dict:
    """Model spec of a named arch for the configured data (`channels`: the images' channels,
    default `data_channels(config)`).

    The built-in U-Net: config `model` defaults, then its own keys; a MONAI, smp or own-module
    network: its own keys (see `unetscape.models.registry`).
    """
    own = config["archs"][arch]
    channels = data_channels(config) if channels is None else channels
    if model_kind(own) == "unet":
        return resolve_model({**config.get("model", {}), **own}, channels)
    try:
        return resolve_model(own, channels)
    except ModelSpecError as err:
        raise ConfigError(f"config key archs.{arch}: {err}") from None


def data_channels(config: dict) -> int:
    """Image channels of the configured data set: 3 for synthetic data; for a folder source 1
    when every image of its folders is stored as grayscale (read from the file headers), else 3."""
    data = config["data"]
    if data["source"] == "synthetic":
        return 3
    folders = tuple((data.get(f"{part}images_dir"), data.get(f"{part}masks_dir")) for part in ("", "heldout_"))
    return _folder_channels(data["source"], data.get("mask_suffix") or "", folders)


@functools.lru_cache(maxsize=8)
def _folder_channels(source: str, mask_suffix: str, folders: tuple) -> int:
    # Cached: every job's params ask, and the answer reads every image's header.
    from unetscape.data.folder import folders_channels
    from unetscape.data.prepare import naming
    from unetscape.data.store import DatasetError

    try:
        rule = naming({"source": source, "mask_suffix": mask_suffix})
        return folders_channels([f for f in folders if None not in f], rule, strict=False)
    except DatasetError as err:
        raise ConfigError(f"config key data.images_dir: {err}") from None


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
        # optional (added after configs were written from the README): its documented default
        "collapse_variation": config["training"].get("collapse_variation", 0.1),
        "loss": config["training"].get("loss", "dice"),
    }


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
