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

from .atomic import atomic_path
from .evaluation import evaluate, images_to_tensor, masks_to_tensor
from .losses import dice_loss
from .models import build_model, save_checkpoint
from .outcomes import CHECKPOINT_ROLES, Plateau, best_constant_dice, classify, plateau_fall, plateau_reached, write_outcome
from .seeding import derive_seed

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
    # CPU training steps: oneDNN's convolutions, or PyTorch's own (im2col + matrix product),
    # measured 1.3-1.4x faster for the U-Net's small convolutions on 16-px images. Numbers
    # differ at rounding level, so this is a setting, recorded with the run.
    cpu_convolutions: str = "onednn"

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
        self.plateau_rule  # checks the plateau settings

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


TRAIN_MEMORY_FORMAT = torch.channels_last
CPU_CONVOLUTIONS = ("onednn", "native")


def checkpoint_name(epoch: int) -> str:
    return f"epoch_{epoch:03d}.pt"


def _finite_params(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in model.parameters())


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
    set and, if given, on the held-out set. Training stops early when the training loss reaches
    a plateau (`settings.plateau`, if `stop_on_plateau`); the last epoch is always saved. A
    non-finite loss or weight is a result: training stops, the history row says `diverged`,
    the checkpoints saved so far stay, and the function returns normally. The outcome
    (`outcomes.classify`) is written to every history row and, with the details, to
    `outcome_path` as JSON.
    """
    device = torch.device(device)
    seeds = settings.seeds()
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(seeds["init_seed"])  # initial weights come from the global generator
    # channels_last: measured 1.1-1.3x more images/s on CPUs and 1.1-2x on an H100
    # (benchmarks/RESULTS.md); checkpoints are still written in the default layout.
    model = build_model(settings.arch).to(device, memory_format=TRAIN_MEMORY_FORMAT)
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum)
    order_gen = torch.Generator(device="cpu").manual_seed(seeds["order_seed"])
    noise_gen = torch.Generator(device=device).manual_seed(seeds["noise_seed"])

    x = images_to_tensor(images, device).contiguous(memory_format=TRAIN_MEMORY_FORMAT)
    y = masks_to_tensor(masks, device)
    heldout = None
    if heldout_images is not None and len(heldout_images):
        heldout = (
            images_to_tensor(heldout_images, device).contiguous(memory_format=TRAIN_MEMORY_FORMAT),
            masks_to_tensor(heldout_masks, device),
        )
    n = x.shape[0]
    plateau = settings.plateau_rule
    # Only the training steps: whole-set evaluation is faster with oneDNN's batched kernels.
    native = device.type == "cpu" and settings.cpu_convolutions == "native"
    def step_backend():
        return torch.backends.mkldnn.flags(enabled=False) if native else contextlib.nullcontext()
    steps_per_epoch = math.ceil(n / settings.batch_size)
    meta = {"run": run_id, "seed": settings.seed, **seeds, "settings": _plain(settings),
            "memory_format": str(TRAIN_MEMORY_FORMAT).removeprefix("torch.")}

    rows: list[dict] = []
    saved: list[Path] = []

    def epoch_row(epoch: int, step: int) -> dict:
        model.eval()
        metrics = evaluate(model, x, y, settings.eval_batch_size)
        held = {}
        if heldout is not None:
            held = {f"heldout_{k}": v for k, v in evaluate(model, *heldout, settings.eval_batch_size).items()}
        model.train()
        diverged = not math.isfinite(metrics["loss"])
        row = {"kind": "epoch", "step": step, "epoch": epoch, **metrics, **held, "lr": settings.lr,
               "diverged": diverged}
        rows.append(row)
        return row

    def save(epoch: int) -> None:
        path = checkpoint_dir / checkpoint_name(epoch)
        save_checkpoint(path, model, epoch=epoch, **meta)
        saved.append(path)

    start = time.time()
    row = epoch_row(0, 0)
    save(0)
    log(f"[{run_id}] epoch 0/{settings.epochs}: loss {row['loss']:.4f} dice {row['dice']:.4f}")
    step, diverged, epochs_run, on_plateau = 0, False, 0, False
    losses = [row["loss"]]
    model.train()
    for epoch in range(1, settings.epochs + 1):
        order = torch.randperm(n, generator=order_gen).to(device)
        for b in range(steps_per_epoch):
            idx = order[b * settings.batch_size : (b + 1) * settings.batch_size]
            xb = x[idx]
            if settings.noise > 0:
                xb = xb + settings.noise * torch.randn(xb.shape, generator=noise_gen, device=device)
            with step_backend():
                loss = dice_loss(model(xb), y[idx])
            step += 1
            value = loss.item()
            if not math.isfinite(value):
                diverged = True
                rows.append({"kind": "step", "step": step, "epoch": epoch, "loss": value,
                             "dice": math.nan, "iou": math.nan, "lr": settings.lr, "diverged": True})
                break
            optimizer.zero_grad(set_to_none=True)
            with step_backend():
                loss.backward()
            optimizer.step()
            rows.append({"kind": "step", "step": step, "epoch": epoch, "loss": value,
                         "dice": math.nan, "iou": math.nan, "lr": settings.lr, "diverged": False})
        if diverged or not _finite_params(model):
            diverged = True
            rows[-1]["diverged"] = True
            log(f"[{run_id}] diverged in epoch {epoch} at step {step}; stopping")
            break
        row = epoch_row(epoch, step)
        epochs_run = epoch
        if row["diverged"]:
            diverged = True
            log(f"[{run_id}] diverged: epoch {epoch} loss is {row['loss']}; stopping")
            break
        losses.append(row["loss"])
        on_plateau = settings.stop_on_plateau and plateau_reached(losses, plateau)
        if epoch % settings.save_every == 0 or epoch == settings.epochs or on_plateau:
            save(epoch)
        rate = step * settings.batch_size / (time.time() - start)
        held = f" held-out dice {row['heldout_dice']:.4f}" if heldout is not None else ""
        log(f"[{run_id}] epoch {epoch}/{settings.epochs}: loss {row['loss']:.4f} "
            f"dice {row['dice']:.4f} iou {row['iou']:.4f}{held} ({rate:.0f} img/s)")
        if on_plateau:
            fall, initial = plateau_fall(losses, plateau.window)
            log(f"[{run_id}] plateau at epoch {epoch}: the last {plateau.window} epochs gained {fall:.4f} "
                f"(<= {plateau.tolerance:g} x the initial loss {initial:.4f}); stopping")
            break

    epochs = [r for r in rows if r["kind"] == "epoch" and math.isfinite(r["loss"])]
    final = epochs[-1]
    constant = best_constant_dice(masks)
    outcome, reason = classify(
        losses, final["dice"], diverged, on_plateau, constant, plateau, settings.collapse_margin
    )
    for r in rows:
        r["outcome"] = outcome
    write_history(rows, history_path)
    log(f"[{run_id}] outcome: {outcome} ({reason})")
    if outcome_path is not None:
        trained = [p for p in saved if int(p.stem.split("_")[1]) > 0]
        summary = {
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
            "heldout_constant_dice": best_constant_dice(heldout_masks) if heldout is not None else None,
            "collapse_margin": settings.collapse_margin,
            # The weights every landscape job measures: never the initial ones.
            "landscape_checkpoint": trained[-1].name if trained else None,
            "checkpoint_role": CHECKPOINT_ROLES[outcome] if trained else None,
            "seed": settings.seed,
            **seeds,
        }
        write_outcome(summary, outcome_path)
    return TrainResult(epochs_run, diverged, final["loss"], saved, outcome, reason)


def write_history(rows: list[dict], path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)


def _plain(settings: TrainSettings) -> dict:
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in vars(settings).items()}
