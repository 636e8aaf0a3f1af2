"""Evaluate the loss on a plane through a trained model: L(theta* + a dx + b dy).

`SurfaceEvaluator` moves one model in place. It keeps theta* (a copy of the learnable
parameters) and the checkpoint's buffers, rebuilds every point from theta* (never by adding
steps, so rounding does not drift along the grid), and puts the model back exactly on close.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..evaluation import evaluate, images_to_tensor, masks_to_tensor, noisy_copy
from .directions import check_directions_fit
from .grid import SurfaceGrid

BN_MODES = ("checkpoint", "recompute")
EVAL_NOISE = ("train", "clean")
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class SurfaceEvaluator:
    """Loss, hard Dice and IoU of `model` at points of the plane spanned by `directions`.

    bn="checkpoint" (the reference's behaviour): eval mode with the checkpoint's running
    statistics at every point. bn="recompute": at every point, first re-estimate the running
    statistics with one train-mode pass over the evaluation data (cumulative average, i.e.
    BN momentum=None: the mean of the per-batch statistics), then evaluate in eval mode. Far
    from theta* the checkpoint's statistics no longer fit the perturbed weights, so recompute
    measures the network rather than a stale normalisation. Without batch norm the two agree.
    """

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        directions: Sequence[Sequence[torch.Tensor]],
        bn: str = "checkpoint",
        batch_size: int = 128,
    ):
        if bn not in BN_MODES:
            raise ValueError(f"bn must be one of {BN_MODES}, got {bn!r}")
        if len(directions) not in (1, 2):
            raise ValueError(f"a plane has 1 or 2 directions, got {len(directions)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        check_directions_fit(directions, model)
        self.model, self.x, self.y = model, x, y
        self.bn, self.batch_size = bn, batch_size
        self.params = [p for _, p in model.named_parameters()]
        with torch.no_grad():
            self.theta_star = [p.detach().clone() for p in self.params]
            # On the parameters' device once, so no point re-reads or re-copies them.
            self.directions = [
                [d.detach().to(device=p.device, dtype=p.dtype) for d, p in zip(direction, self.params)]
                for direction in directions
            ]
            self.buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
        self.batch_norms = [m for m in model.modules() if isinstance(m, _BATCH_NORMS)]
        self.was_training = model.training
        self.closed = False

    @property
    def ndim(self) -> int:
        return len(self.directions)

    @torch.no_grad()
    def set_point(self, coords: Sequence[float]) -> None:
        """Set the parameters, in place, to theta* + sum_k coords[k] * directions[k]."""
        if self.closed:
            raise RuntimeError("SurfaceEvaluator is closed")
        if len(coords) != self.ndim:
            raise ValueError(f"{len(coords)} coordinates for a plane of {self.ndim} directions")
        torch._foreach_copy_(self.params, self.theta_star)
        for step, direction in zip(coords, self.directions):
            if step != 0:
                torch._foreach_add_(self.params, direction, alpha=float(step))

    @torch.no_grad()
    def restore_buffers(self) -> None:
        for name, b in self.model.named_buffers():
            b.copy_(self.buffers[name])

    @torch.no_grad()
    def recompute_bn_statistics(self) -> None:
        """Re-estimate BN running statistics at the current point: one train-mode pass."""
        self.restore_buffers()
        momenta = [m.momentum for m in self.batch_norms]
        try:
            for m in self.batch_norms:
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the pass, not an EMA
            self.model.train()
            for start in range(0, len(self.x), self.batch_size):
                self.model(self.x[start : start + self.batch_size])
        finally:
            for m, momentum in zip(self.batch_norms, momenta):
                m.momentum = momentum
            self.model.eval()

    def evaluate(self, coords: Sequence[float]) -> dict:
        """{"loss", "dice", "iou"} at `coords`: per-image means over the evaluation set."""
        self.set_point(coords)
        if self.bn == "recompute" and self.batch_norms:
            self.recompute_bn_statistics()
        self.model.eval()
        return evaluate(self.model, self.x, self.y, self.batch_size)

    def evaluate_points(
        self,
        points: Sequence[Sequence[int]],
        grid: SurfaceGrid,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict:
        """Evaluate grid `points` in order; arrays "loss", "dice", "iou" aligned with them.

        `progress(done, total)` is called after every point.
        """
        values = {key: np.full(len(points), np.nan) for key in ("loss", "dice", "iou")}
        for k, point in enumerate(points):
            for key, value in self.evaluate(grid.coordinates(point)).items():
                values[key][k] = value
            if progress is not None:
                progress(k + 1, len(points))
        return values

    @torch.no_grad()
    def close(self) -> None:
        """Put the model back exactly as it was: theta*, checkpoint buffers, train/eval mode."""
        if self.closed:
            return
        torch._foreach_copy_(self.params, self.theta_star)
        self.restore_buffers()
        self.model.train(self.was_training)
        self.closed = True

    def __enter__(self) -> "SurfaceEvaluator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def evaluation_set(
    dataset_images: np.ndarray,
    dataset_masks: np.ndarray,
    subset: int | None,
    subset_seed: int,
    noise: float,
    eval_noise: str,
    noise_seed: int,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """The images a surface is evaluated on, as model input, and a record of how they were chosen.

    subset=None takes every training image; an integer takes a fixed random subset (drawn
    without replacement with `subset_seed`, kept in dataset order). A run trained with input
    noise is evaluated on one fixed noisy copy (`noise_seed`) unless eval_noise == "clean".
    """
    if eval_noise not in EVAL_NOISE:
        raise ValueError(f"eval_noise must be one of {EVAL_NOISE}, got {eval_noise!r}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    n = len(dataset_images)
    if len(dataset_masks) != n:
        raise ValueError(f"{n} images but {len(dataset_masks)} masks")
    if subset is None:
        indices = np.arange(n)
    else:
        if isinstance(subset, bool) or not isinstance(subset, (int, np.integer)) or not 1 <= subset <= n:
            raise ValueError(
                f"evaluation subset must be an integer in 1..{n} (the dataset size), got {subset!r}"
            )
        indices = np.sort(np.random.default_rng(subset_seed).choice(n, size=int(subset), replace=False))
    x = images_to_tensor(dataset_images[indices], device)
    y = masks_to_tensor(dataset_masks[indices], device)
    noisy = noise > 0 and eval_noise == "train"
    if noisy:
        x = noisy_copy(x, noise, noise_seed)
    description = {
        "count": int(len(indices)),
        "dataset_size": int(n),
        "subset": None if subset is None else int(subset),
        "subset_seed": None if subset is None else int(subset_seed),
        "indices_sha256": hashlib.sha256(indices.astype("<i8").tobytes()).hexdigest(),
        "noise": float(noise),
        "eval_noise": eval_noise,
        "noise_applied": bool(noisy),
        "noise_seed": int(noise_seed) if noisy else None,
    }
    return x, y, description
