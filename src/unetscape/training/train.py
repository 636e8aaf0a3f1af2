"""Train one U-Net run: SGD on the Dice loss with Gaussian input-noise augmentation, until the
training loss reaches a plateau or the epochs run out; then decide the run's outcome."""

from __future__ import annotations

import contextlib
import csv
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from unetscape.atomic import atomic_path
from unetscape.models.losses import check_loss, training_loss
from unetscape.models.registry import build_model, check_output, model_kind
from unetscape.models.checkpoints import save_checkpoint
from unetscape.seeding import derive_seed

from .evaluation import evaluate, images_to_tensor, masks_to_tensor, predicted_masks, standard_errors
from .outcomes import (
    CHECKPOINT_ROLES,
    Plateau,
    best_constant_dice,
    classify,
    plateau_fall,
    plateau_reached,
    prediction_variation,
    write_outcome,
)
from .stability import probe_stability, stability_numbers

OPTIMIZER_PRESETS = {"sgd": {"momentum": 0.0}, "sgd_momentum": {"momentum": 0.9}}
HISTORY_COLUMNS = [
    "kind", "step", "epoch", "loss", "dice", "iou", "heldout_loss", "heldout_dice", "heldout_iou",
    "lr", "diverged", "outcome",
]



@dataclass
class TrainSettings:
    arch: dict
    lr: float = 0.01
    momentum: float = 0.0
    noise: float = 0.0
    seed: int = 0
    epochs: int = 10
    batch_size: int = 16
    save_every: int = 1
    eval_batch_size: int = 128
    plateau: dict | None = None  # {window, tolerance}: see outcomes.Plateau
    stop_on_plateau: bool = True
    collapse_margin: float = 0.02
    # Collapsed: the predicted masks vary at most this fraction of the true masks' variation
    # across images (outcomes.prediction_variation).
    collapse_variation: float = 0.1
    # CPU training steps: oneDNN's convolutions, or PyTorch's own (im2col + matrix product),
    # measured 1.3-1.4x faster for the U-Net's small convolutions on 16-px images. Numbers
    # differ at rounding level, so this is a setting, recorded with the run.
    cpu_convolutions: str = "onednn"
    loss: str = "dice"  # models.losses.LOSSES: what SGD minimises and every landscape measures
    # A budget of SGD steps instead of epochs (None: `epochs` decides): at most the whole epochs
    # that hold this many steps (the plateau stop as usual), evaluated and saved at about
    # `MAX_EVALUATIONS` of them (`epoch_plan`), so the plateau is judged over evaluations.
    steps: int | None = None
    # A seeded subset of the training images (None: all of them): `training_subset`.
    train_size: int | None = None
    subset_seed: int = 0
    # The probe curve: `probe_images` seeded training images (clean, eval mode) evaluated every
    # `probe_every` SGD steps, so oscillation is read without the mini-batches' own spread.
    probe_images: int = 32
    probe_every: int = 25
    probe_seed: int = 0

    def __post_init__(self):
        for key in ("epochs", "batch_size", "save_every", "eval_batch_size"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"training.{key} must be >= 1, got {getattr(self, key)!r}")
        if self.noise < 0:
            raise ValueError(f"noise must be >= 0, got {self.noise!r}")
        if self.cpu_convolutions not in CPU_CONVOLUTIONS:
            raise ValueError(f"training.cpu_convolutions must be one of {CPU_CONVOLUTIONS}, got {self.cpu_convolutions!r}")
        if not 0 <= self.collapse_margin < 1:
            raise ValueError(f"training.collapse_margin must be in [0, 1), got {self.collapse_margin!r}")
        if not 0 <= self.collapse_variation < 1:
            raise ValueError(f"training.collapse_variation must be in [0, 1), got {self.collapse_variation!r}")
        self.plateau_rule  # checks the plateau settings
        check_loss(self.loss)
        if self.steps is not None and (isinstance(self.steps, bool) or int(self.steps) < 1):
            raise ValueError(f"steps must be >= 1, got {self.steps!r}")
        if self.train_size is not None and int(self.train_size) < 1:
            raise ValueError(f"train_size must be >= 1, got {self.train_size!r}")
        for key in ("probe_images", "probe_every"):
            if isinstance(getattr(self, key), bool) or int(getattr(self, key)) < 1:
                raise ValueError(f"training.probe.{key.removeprefix('probe_')} must be >= 1, got {getattr(self, key)!r}")

    @property
    def plateau_rule(self) -> Plateau:
        return Plateau(**(self.plateau or {}))

    def seeds(self) -> dict:
        return {f"{s}_seed": derive_seed(self.seed, s) for s in ("init", "order", "noise")}


@dataclass
class TrainResult:
    epochs_run: int
    diverged: bool
    final_loss: float
    checkpoints: list[Path]
    outcome: str = "finished"
    reason: str = ""


# A run with a budget of steps is evaluated (and saved) at about this many epochs, whatever its
# training-set size: a subset of 32 images trains hundreds of short epochs, and evaluating the
# held-out images after each would cost more than the training.
MAX_EVALUATIONS = 20


def epoch_plan(settings: "TrainSettings", images: int) -> tuple[int, int]:
    """(epochs, evaluate every this many epochs): `settings.epochs` and 1, or for a budget of
    steps the whole epochs that hold at least that many steps and an interval that evaluates
    about `MAX_EVALUATIONS` of them (the last always)."""
    if settings.steps is None:
        return settings.epochs, 1
    epochs = math.ceil(settings.steps / math.ceil(images / settings.batch_size))
    return epochs, max(1, math.ceil(epochs / MAX_EVALUATIONS))


TRAIN_MEMORY_FORMAT = torch.channels_last
CPU_CONVOLUTIONS = ("onednn", "native")


def training_subset(count: int, size: int | None, seed: int) -> np.ndarray:
    """The dataset indices (ascending) of a run's training images: all `count` of them, or the
    first `size` of one seeded order of them, so every run of a size trains on the same images
    and a smaller subset lies inside a larger one."""
    if size is None:
        return np.arange(count)
    if not 1 <= size <= count:
        raise ValueError(f"train_size {size} is not between 1 and the {count} training images")
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[:size])


def probe_indices(count: int, size: int, seed: int) -> np.ndarray:
    """Positions (ascending) of the probe images among a run's `count` training images: a
    seeded choice of `size` of them (all, when there are fewer)."""
    if size >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size, replace=False))


def checkpoint_name(epoch: int) -> str:
    return f"epoch_{epoch:03d}.pt"


def _finite_params(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in model.parameters())


@dataclass
class TrainingData:
    """The training images and masks as model inputs, and the held-out pair if there is one."""

    x: torch.Tensor
    y: torch.Tensor
    heldout: tuple[torch.Tensor, torch.Tensor] | None
    probe: tuple[torch.Tensor, torch.Tensor] | None = None

    @classmethod
    def from_arrays(cls, images, masks, heldout_images, heldout_masks, device) -> "TrainingData":
        x = images_to_tensor(images, device).contiguous(memory_format=TRAIN_MEMORY_FORMAT)
        heldout = None
        if heldout_images is not None and len(heldout_images):
            heldout = (
                images_to_tensor(heldout_images, device).contiguous(memory_format=TRAIN_MEMORY_FORMAT),
                masks_to_tensor(heldout_masks, device),
            )
        return cls(x, masks_to_tensor(masks, device), heldout)


def train(
    images: np.ndarray,
    masks: np.ndarray,
    settings: TrainSettings,
    checkpoint_dir: str | os.PathLike,
    history_path: str | os.PathLike,
    run_id: str = "",
    device: str | torch.device = "cpu",
    log: Callable[[str], None] = print,
    heldout_images: np.ndarray | None = None,
    heldout_masks: np.ndarray | None = None,
    outcome_path: str | os.PathLike | None = None,
) -> TrainResult:
    """Train from seeded initial weights; write checkpoints, the history CSV and the outcome.

    After every epoch the model is evaluated (eval mode, clean images) on the whole training
    set and, if given, on the held-out set (`evaluate_epoch`). Training stops early when the
    training loss reaches a plateau (`settings.plateau`, if `stop_on_plateau`); the last epoch
    is always saved. A non-finite loss or weight is a result: training stops, the history row
    says `diverged`, the checkpoints saved so far stay, and the function returns normally. The
    outcome (`outcomes.classify`) is written to every history row and, with the details
    (`outcome_summary`), to `outcome_path` as JSON.
    """
    device = torch.device(device)
    seeds = settings.seeds()
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    subset = training_subset(len(images), settings.train_size, settings.subset_seed)
    images, masks = images[subset], masks[subset]
    probe = probe_indices(len(images), settings.probe_images, settings.probe_seed)

    torch.manual_seed(seeds["init_seed"])  # initial weights come from the global generator
    # channels_last: measured 1.1-1.3x more images/s on CPUs and 1.1-2x on an H100
    # (benchmarks/RESULTS.md); checkpoints are still written in the default layout.
    model = build_model(settings.arch).to(device, memory_format=TRAIN_MEMORY_FORMAT)
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum)
    order_gen = torch.Generator(device="cpu").manual_seed(seeds["order_seed"])
    noise_gen = torch.Generator(device=device).manual_seed(seeds["noise_seed"])
    data = TrainingData.from_arrays(images, masks, heldout_images, heldout_masks, device)
    data.probe = (data.x[torch.from_numpy(probe).to(device)], data.y[torch.from_numpy(probe).to(device)])
    if model_kind(settings.arch) != "unet":  # the built-in U-Net's shapes are checked with the config
        check_output(model, data.x[:1], f"network {settings.arch}")
    plateau = settings.plateau_rule
    meta = {"run": run_id, "seed": settings.seed, **seeds, "settings": _plain(settings),
            "memory_format": str(TRAIN_MEMORY_FORMAT).removeprefix("torch.")}

    rows: list[dict] = []
    saved: list[Path] = []

    def save(epoch: int) -> None:
        path = checkpoint_dir / checkpoint_name(epoch)
        save_checkpoint(path, model, epoch=epoch, **meta)
        saved.append(path)

    start = time.time()
    row = evaluate_epoch(model, data, settings, 0, 0)
    rows.append(row)
    rows.append(probe_row(model, data, settings, 0, 0))
    save(0)
    epochs, every = epoch_plan(settings, len(images))
    log(f"[{run_id}] epoch 0/{epochs}: loss {row['loss']:.4f} dice {row['dice']:.4f}")
    step, diverged, epochs_run, on_plateau = 0, False, 0, False
    losses = [row["loss"]]
    for epoch in range(1, epochs + 1):
        step_rows = train_epoch(model, optimizer, data, settings, epoch, step, order_gen, noise_gen)
        rows += step_rows
        last = [r for r in step_rows if r["kind"] == "step"][-1]
        step = last["step"]
        if last["diverged"] or not _finite_params(model):
            diverged = True
            last["diverged"] = True
            log(f"[{run_id}] diverged in epoch {epoch} at step {step}; stopping")
            break
        if epoch % every and epoch != epochs:  # a budget of steps: only every `every`-th epoch
            epochs_run = epoch
            continue
        row = evaluate_epoch(model, data, settings, epoch, step)
        rows.append(row)
        epochs_run = epoch
        if row["diverged"]:
            diverged = True
            log(f"[{run_id}] diverged: epoch {epoch} loss is {row['loss']}; stopping")
            break
        losses.append(row["loss"])
        on_plateau = settings.stop_on_plateau and plateau_reached(losses, plateau)
        if (epoch // every) % settings.save_every == 0 or epoch == epochs or on_plateau:
            save(epoch)
        rate = step * settings.batch_size / (time.time() - start)
        held = f" held-out dice {row['heldout_dice']:.4f}" if data.heldout is not None else ""
        log(f"[{run_id}] epoch {epoch}/{epochs}: loss {row['loss']:.4f} "
            f"dice {row['dice']:.4f} iou {row['iou']:.4f}{held} ({rate:.0f} img/s)")
        if on_plateau:
            fall, initial = plateau_fall(losses, plateau.window)
            log(f"[{run_id}] plateau at epoch {epoch}: the last {plateau.window} epochs gained {fall:.4f} "
                f"(<= {plateau.tolerance:g} x the initial loss {initial:.4f}); stopping")
            break

    final = [r for r in rows if r["kind"] == "epoch" and math.isfinite(r["loss"])][-1]
    constant = best_constant_dice(masks)
    variation = math.nan
    heldout_se = {"loss_se": math.nan, "dice_se": math.nan}
    if not diverged:  # the final weights are the ones measured; a diverged model predicts nothing
        model.eval()
        variation = prediction_variation(predicted_masks(model, data.x, settings.eval_batch_size), masks)
        if data.heldout is not None:
            heldout_se = standard_errors(model, *data.heldout, settings.eval_batch_size, settings.loss)
    stability = stability_numbers(
        losses, [r["loss"] for r in rows if r["kind"] == "step" and r["epoch"] >= 2], plateau.tolerance
    )
    probe_rows = [r for r in rows if r["kind"] == "probe"]
    stability["probe"] = probe_stability(
        [r["step"] for r in probe_rows], [r["loss"] for r in probe_rows], plateau.tolerance,
        steps_per_epoch=math.ceil(len(images) / settings.batch_size),
    )
    outcome, reason = classify(
        losses, final["dice"], diverged, on_plateau, constant, plateau, settings.collapse_margin,
        variation, settings.collapse_variation,
    )
    for r in rows:
        r["outcome"] = outcome
    write_history(rows, history_path)
    log(f"[{run_id}] outcome: {outcome} ({reason})")
    log(f"[{run_id}] stability: {stability['loss_rises']} epochs with a rise, largest rise "
        f"{stability['largest_rise']:.4f} x L0, step volatility {stability['step_volatility']:.4f}")
    if outcome_path is not None:
        summary = outcome_summary(
            run_id, outcome, reason, settings, losses, final, saved, epochs_run, on_plateau, constant,
            best_constant_dice(heldout_masks) if data.heldout is not None else None,
        )
        summary["max_epochs"] = epochs  # with a budget of steps, the epochs that hold it
        summary["prediction_variation"] = variation
        summary["collapse_variation"] = settings.collapse_variation
        summary["stability"] = stability
        summary["training"] = training_record(settings, len(images))
        # How precisely the held-out numbers estimate the population's (over held-out images).
        summary["final_heldout_loss_se"] = heldout_se["loss_se"]
        summary["final_heldout_dice_se"] = heldout_se["dice_se"]
        summary["train_indices"] = subset.tolist()
        summary["probe"] = {"indices": subset[probe].tolist(), "every": settings.probe_every,
                            "seed": settings.probe_seed, "mode": "eval mode, clean images"}
        write_outcome(summary, outcome_path)
    return TrainResult(epochs_run, diverged, final["loss"], saved, outcome, reason)


def training_record(settings: TrainSettings, images: int) -> dict:
    """What outcome.json says of how the run trained (the tables' factor columns)."""
    return {"lr": settings.lr, "momentum": settings.momentum, "batch_size": settings.batch_size,
            "train_size": images, "subset": settings.train_size is not None,
            "max_epochs": epoch_plan(settings, images)[0], "steps_budget": settings.steps,
            "stop_on_plateau": settings.stop_on_plateau, "noise": settings.noise, "loss": settings.loss}


def probe_row(model, data: TrainingData, settings: TrainSettings, epoch: int, step: int) -> dict:
    """The probe set's loss, hard Dice and IoU now (eval mode, clean images; the caller's mode is
    restored). Evaluating in eval mode changes nothing the training uses (no running statistic,
    no random number), so probing leaves the run's trajectory exactly as it would be."""
    was_training = model.training
    model.eval()
    metrics = evaluate(model, *data.probe, settings.eval_batch_size, settings.loss)
    model.train(was_training)
    return {"kind": "probe", "step": step, "epoch": epoch, **metrics, "lr": settings.lr,
            "diverged": not math.isfinite(metrics["loss"])}


def train_epoch(model, optimizer, data: TrainingData, settings: TrainSettings, epoch: int, step: int,
                order_gen: torch.Generator, noise_gen: torch.Generator) -> list[dict]:
    """One epoch of SGD steps in a seeded order, with seeded input noise; one history row per
    step, and a probe row (`probe_row`) after every `probe_every`-th step of the run.

    Stops at the first non-finite loss (that row says `diverged`) without stepping on it.
    """
    device = data.x.device
    n = data.x.shape[0]
    # Only the training steps: whole-set evaluation is faster with oneDNN's batched kernels.
    native = device.type == "cpu" and settings.cpu_convolutions == "native"
    backend = (lambda: torch.backends.mkldnn.flags(enabled=False)) if native else contextlib.nullcontext
    rows = []
    loss_fn = training_loss(settings.loss)
    model.train()
    order = torch.randperm(n, generator=order_gen).to(device)
    for b in range(math.ceil(n / settings.batch_size)):
        idx = order[b * settings.batch_size : (b + 1) * settings.batch_size]
        xb = data.x[idx]
        if settings.noise > 0:
            xb = xb + settings.noise * torch.randn(xb.shape, generator=noise_gen, device=device)
        with backend():
            loss = loss_fn(model(xb), data.y[idx])
        step += 1
        value = loss.item()
        finite = math.isfinite(value)
        rows.append({"kind": "step", "step": step, "epoch": epoch, "loss": value,
                     "dice": math.nan, "iou": math.nan, "lr": settings.lr, "diverged": not finite})
        if not finite:
            break
        optimizer.zero_grad(set_to_none=True)
        with backend():
            loss.backward()
        optimizer.step()
        if data.probe is not None and step % settings.probe_every == 0:
            rows.append(probe_row(model, data, settings, epoch, step))
    return rows


def evaluate_epoch(model, data: TrainingData, settings: TrainSettings, epoch: int, step: int) -> dict:
    """The history row of an epoch's end: whole-set metrics in eval mode, clean images."""
    model.eval()
    metrics = evaluate(model, data.x, data.y, settings.eval_batch_size, settings.loss)
    held = {}
    if data.heldout is not None:
        held = {f"heldout_{k}": v for k, v in evaluate(model, *data.heldout, settings.eval_batch_size,
                                                        settings.loss).items()}
    model.train()
    return {"kind": "epoch", "step": step, "epoch": epoch, **metrics, **held, "lr": settings.lr,
            "diverged": not math.isfinite(metrics["loss"])}


def outcome_summary(run_id: str, outcome: str, reason: str, settings: TrainSettings, losses: list[float],
                    final: dict, saved: list[Path], epochs_run: int, on_plateau: bool, constant: float,
                    heldout_constant: float | None) -> dict:
    """What `outcome.json` says of a run: its outcome and why, its final metrics, and the
    checkpoint its landscapes measure."""
    plateau = settings.plateau_rule
    trained = [p for p in saved if int(p.stem.split("_")[1]) > 0]
    return {
        "run": run_id,
        "outcome": outcome,
        "reason": reason,
        "epochs_run": epochs_run,
        "max_epochs": settings.epochs,
        "stopped_on_plateau": on_plateau,
        "plateau": {"window": plateau.window, "tolerance": plateau.tolerance,
                    **dict(zip(("fall", "initial_loss"), plateau_fall(losses, plateau.window)))},
        "final_epoch": final["epoch"],
        **{f"final_{k}": final.get(k, math.nan) for k in ("loss", "dice", "iou", "heldout_loss",
                                                          "heldout_dice", "heldout_iou")},
        "constant_dice": constant,
        "heldout_constant_dice": heldout_constant,
        "collapse_margin": settings.collapse_margin,
        # The weights every landscape job measures: never the initial ones.
        "landscape_checkpoint": trained[-1].name if trained else None,
        "checkpoint_role": CHECKPOINT_ROLES[outcome] if trained else None,
        "seed": settings.seed,
        **settings.seeds(),
    }


def link_measured(checkpoint_dir: str | os.PathLike, outcome: dict, link: str | os.PathLike) -> None:
    """A relative symbolic link `link` to the checkpoint the landscape jobs measure (outcome's
    `landscape_checkpoint`; the initial weights for a run that saved none after epoch 0, which
    no job measures: its files say why). Relative, so the project can move; made under a
    temporary name and renamed over `link`, so it is never half there."""
    link = Path(link)
    target = Path(checkpoint_dir) / (outcome["landscape_checkpoint"] or checkpoint_name(0))
    if not target.is_file():
        raise FileNotFoundError(f"{target} does not exist: no checkpoint to link {link} to")
    relative = os.path.relpath(target, link.parent)
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(relative, tmp)
    os.replace(tmp, link)


def write_history(rows: list[dict], path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)


def _plain(settings: TrainSettings) -> dict:
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in vars(settings).items()}
