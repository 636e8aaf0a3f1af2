"""What every landscape job starts from: the weights a run's outcome names, the evaluation
images, the grid of a directions file, and the small pieces the jobs share (progress lines,
strict JSON)."""

from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path
from typing import Callable

import numpy as np

from unetscape.data import load_dataset
from unetscape.landscape.grid import SurfaceGrid
from unetscape.landscape.surface import evaluation_set
from unetscape.models.checkpoints import file_sha256, read_checkpoint
from unetscape.training.outcomes import read_outcome

Log = Callable[[str], None]
CHECKPOINT = re.compile(r"^epoch_(\d+)\.pt$")


def list_checkpoints(checkpoint_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(epoch, path) of every checkpoint of a run, by epoch."""
    checkpoint_dir = Path(checkpoint_dir)
    found = sorted(
        (int(m.group(1)), checkpoint_dir / name)
        for name in os.listdir(checkpoint_dir)
        if (m := CHECKPOINT.match(name))
    )
    if not found:
        raise FileNotFoundError(f"no epoch_NNN.pt checkpoints in {checkpoint_dir}")
    return found


def final_checkpoint(checkpoint_dir: str | os.PathLike) -> Path:
    """The last saved checkpoint (for a diverged run: the last one with finite weights)."""
    return list_checkpoints(checkpoint_dir)[-1][1]


def measured_weights(checkpoint_dir: str | os.PathLike, outcome_path: str | os.PathLike) -> tuple[Path | None, dict]:
    """The checkpoint the landscape jobs of a run measure, and attributes saying what it is.

    The training's outcome file names it (`landscape_checkpoint`): the final weights of a
    finished, collapsed or not converged run, the last finite ones of a diverged run, never
    the initial weights. A run that diverged before saving any trained checkpoint has none:
    the path is None and the attributes hold the reason (`unavailable`).
    """
    outcome = read_outcome(outcome_path)
    attrs = {"outcome": outcome["outcome"], "checkpoint_role": outcome["checkpoint_role"] or "none"}
    name = outcome["landscape_checkpoint"]
    if name is None:
        attrs["unavailable"] = (
            f"no trained weights to measure: the run {outcome['outcome']} "
            f"({outcome['reason']}) before a checkpoint after epoch 0 was saved"
        )
        return None, attrs
    path = Path(checkpoint_dir) / name
    if not path.is_file():
        raise FileNotFoundError(f"{outcome_path} names checkpoint {name}, which is not in {checkpoint_dir}")
    return path, attrs


def initial_weights(checkpoint_dir: str | os.PathLike, label: dict) -> tuple[Path | None, str]:
    """The run's initial weights (epoch 0), or None and why: a model trained elsewhere
    (outcome `external`) comes without them."""
    if label.get("outcome") == "external":
        return None, "a model trained elsewhere: its initial weights and training path are not known"
    return list_checkpoints(checkpoint_dir)[0][1], ""


def checkpoint_loss(path: Path) -> str:
    """The loss the checkpoint's run trained with (`models.losses`): every landscape of it is
    of that loss. Checkpoints that do not say trained with the Dice loss."""
    settings = read_checkpoint(path).get("settings") or {}
    return settings.get("loss", "dice")


def checkpoint_attrs(path: Path) -> dict:
    meta = read_checkpoint(path)
    return {"checkpoint": str(path), "checkpoint_sha256": file_sha256(path), "checkpoint_epoch": meta.get("epoch")}


def epoch_of(path: Path) -> int:
    match = CHECKPOINT.match(Path(path).name)
    if not match:
        raise ValueError(f"{path} is not an epoch_NNN.pt checkpoint")
    return int(match.group(1))


def axis(spec) -> list:
    """A grid axis from config [min, max, num] as stored in attributes."""
    low, high, num = spec
    return [float(low), float(high), int(num)]


def grid_of(attrs: dict, ndim: int = 2) -> SurfaceGrid:
    return SurfaceGrid.from_config(attrs["grid_x"], attrs["grid_y"] if ndim == 2 else None)


def training_indices(outcome_path) -> np.ndarray | None:
    """The dataset indices of the images a run trained on, when it trained on a subset of them
    (outcome.json `train_indices`); None when it trained on every training image."""
    outcome = read_outcome(outcome_path)
    if not (outcome.get("training") or {}).get("subset"):
        return None
    return np.asarray(outcome["train_indices"], dtype=np.int64)


def load_evaluation_set(dataset_path, evaluation: dict, noise: float, device, heldout: bool = False,
                        outcome_path=None) -> tuple:
    """The images a landscape is evaluated on (`surface.evaluation_set`): a seeded subset of the
    training images, or with `heldout` of the held-out images (`evaluation.heldout_subset`).
    The held-out choice is seeded from the same seed; its description says which part it is.
    With the run's `outcome_path`, a run trained on a subset of the training images is
    evaluated on images of its own subset only."""
    dataset = load_dataset(dataset_path)
    part = dataset.heldout if heldout else dataset
    if part is None:
        raise ValueError(f"{dataset_path} has no held-out part to evaluate on")
    within = None if heldout or outcome_path is None else training_indices(outcome_path)
    x, y, description = evaluation_set(
        part.images,
        part.masks,
        evaluation["heldout_subset"] if heldout else evaluation["subset"],
        evaluation["seed"],
        noise,
        evaluation["noise"],
        evaluation["seed"],
        device,
        within=within,
    )
    return x, y, {**description, "part": "heldout" if heldout else "training"}


def has_heldout(dataset_path, evaluation: dict) -> bool:
    """Whether landscapes are also evaluated on the data set's held-out part."""
    return evaluation.get("heldout_subset") != 0 and load_dataset(dataset_path).heldout is not None


def evaluator_options(evaluation: dict) -> dict:
    """SurfaceEvaluator keyword arguments from the config's landscape.evaluation section."""
    return {key: evaluation[key] for key in ("bn", "batch_size", "precision", "points_per_pass")}


def progress(log: Log, label: str) -> Callable[[int, int], None]:
    start = time.time()
    every = 1

    def report(done: int, total: int) -> None:
        nonlocal every
        if done % every == 0 or done == total:
            rate = done / max(time.time() - start, 1e-9)
            log(f"{label}: {done}/{total} points ({rate:.2f} points/s)")
            every = max(1, total // 10)

    return report


def json_safe(value):
    """Strict JSON: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
