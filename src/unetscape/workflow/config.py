"""The run grid: which trainings the configured studies need, and what each depends on.

A run is one training, identified as `{arch}/{recipe}/noise{noise}/seed{seed}` (`run_ids`: the
recipe is the optimiser's name and the training's departures from the config's defaults). A
study is the cartesian product of its archs, optimizers, noise levels and seeds, and of the
learning rates, batch sizes and training-subset sizes it lists (each optional); `epochs` gives
its runs a fixed budget instead of the plateau stop. The workflow trains the union of all
studies' runs once.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

from unetscape.models.registry import ModelSpecError, resolve_model
from unetscape.models.spec import model_kind
from unetscape.run_ids import format_number, recipe
from unetscape.seeding import derive_seed


class ConfigError(ValueError):
    """A config value is missing or wrong; the message names the key."""


def format_noise(noise: float) -> str:
    """Canonical text of a noise level in run ids: 0 -> "0", 0.05 -> "0.05"."""
    return format_number(noise)


@dataclass(frozen=True)
class Run:
    arch: str
    optimizer: str
    noise: float
    seed: int
    # Departures from the config's defaults (None: as the config says; see run_ids).
    lr: float | None = None
    batch_size: int | None = None
    train_size: int | None = None
    epochs: int | None = None
    steps: int | None = None

    @property
    def recipe(self) -> str:
        return recipe(self.optimizer, self.lr, self.batch_size, self.train_size, self.epochs, self.steps)

    @property
    def id(self) -> str:
        return f"{self.arch}/{self.recipe}/noise{format_noise(self.noise)}/seed{self.seed}"

    @property
    def wildcards(self) -> dict:
        return {"arch": self.arch, "optim": self.recipe, "noise": format_noise(self.noise), "seed": str(self.seed)}

    @property
    def order(self) -> tuple:
        """A stable sort key (numbers as numbers, unset departures first)."""
        return (self.arch, self.optimizer, self.noise, self.seed, self.lr or 0.0, self.batch_size or 0,
                self.train_size or 0, self.epochs or 0, self.steps or 0)


STUDY_FACTORS = ("lr", "batch_size", "train_size")


def _departure(config: dict, key: str, value, optimizer: str):
    """A study's value of a training factor, or None where it is the config's default."""
    if key == "lr":
        return None if math.isclose(float(value), float(config["optimizers"][optimizer]["lr"])) else float(value)
    if key == "batch_size":
        return None if int(value) == int(config["training"]["batch_size"]) else int(value)
    return int(value)  # train_size: a subset, always named


def study_runs(config: dict, study: str) -> list[Run]:
    spec = config["studies"][study]
    factors = [spec.get(key) or [None] for key in STUDY_FACTORS]
    budget = {key: None if spec.get(key) is None else int(spec[key]) for key in ("epochs", "steps")}
    runs = []
    for a, o, n, s, *values in itertools.product(spec["archs"], spec["optimizers"], spec["noise"], spec["seeds"],
                                                 *factors):
        extra = {key: None if v is None else _departure(config, key, v, o) for key, v in zip(STUDY_FACTORS, values)}
        runs.append(Run(a, o, float(n), int(s), **budget, **extra))
    return runs


def study_has_landscapes(config: dict, study: str) -> bool:
    """Whether a study's runs get landscapes (`landscapes: false`: training and its stability
    diagnostics only, e.g. a learning-rate sweep)."""
    return bool(config["studies"][study].get("landscapes", True))


def all_runs(config: dict) -> list[Run]:
    """Every run of every study, each once, in a stable order."""
    return sorted({run for study in config["studies"] for run in study_runs(config, study)}, key=lambda r: r.order)


def landscape_runs(config: dict) -> list[Run]:
    """Every run that some study with landscapes holds, each once, in a stable order."""
    return sorted({run for study in config["studies"] if study_has_landscapes(config, study)
                   for run in study_runs(config, study)}, key=lambda r: r.order)


def first_seed_runs(config: dict) -> list[Run]:
    """Each study's runs with its first (smallest) seed: one run per condition, each once
    (studies with landscapes only: these are the runs whose own figures are drawn)."""
    return sorted(
        {run for study in config["studies"] if study_has_landscapes(config, study)
         for run in study_runs(config, study) if run.seed == min(config["studies"][study]["seeds"])},
        key=lambda r: r.order,
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
    settings = {
        "arch": arch_spec(config, run.arch),
        "lr": float(optimizer["lr"]) if run.lr is None else run.lr,
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
        **{f"probe_{key}": value for key, value in probe_settings(config).items()},
    }
    if run.batch_size is not None:
        settings["batch_size"] = run.batch_size
    if run.epochs is not None:  # a fixed budget: every run of the study trains exactly this long
        settings.update(epochs=run.epochs, stop_on_plateau=False)
    if run.steps is not None:  # at most this many SGD steps, whatever the training-set size
        settings.update(steps=run.steps)
    if run.train_size is not None:
        settings.update(train_size=run.train_size, subset_seed=training_subset_seed(config))
    return settings


PROBE_DEFAULTS = {"images": 32, "every": 25, "seed": 0}


def probe_settings(config: dict) -> dict:
    """training.probe with its documented defaults (configs written before it existed)."""
    return {**PROBE_DEFAULTS, **config["training"].get("probe", {})}


def training_subset_seed(config: dict) -> int:
    """The seed of the training subsets (`train_size`): one seeded order of the training images,
    whose first n are the subset of size n, so every run of a size trains on the same images and
    a smaller subset lies inside a larger one."""
    return derive_seed(int(config["data"]["seed"]), "training_subset")


# Landscape evaluation settings that say how a job runs, not what it computes: images per
# forward pass and grid points per vmapped pass give the same values (to float rounding), so
# they are left out of the jobs' params and changing them re-runs nothing.
RUN_ONLY_EVALUATION = ("batch_size", "points_per_pass")


def evaluation_params(config: dict) -> dict:
    """The landscape evaluation settings that are part of a result's identity (its params)."""
    evaluation = config["landscape"]["evaluation"]
    return {key: value for key, value in evaluation.items() if key not in RUN_ONLY_EVALUATION}


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
