"""Evaluate the loss on a plane through a trained model: L(theta* + a dx + b dy).

`SurfaceEvaluator` moves one model in place. It keeps theta* (a copy of the learnable
parameters) and the checkpoint's buffers, rebuilds every point from theta* (never by adding
steps, so rounding does not drift along the grid), and puts the model back exactly on close.
"""

from __future__ import annotations

import hashlib
import math
from contextlib import contextmanager, nullcontext
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from unetscape.models.losses import PreparedMasks, check_loss, metrics_per_image
from unetscape.models.unet import UNet
from unetscape.training.evaluation import images_to_tensor, masks_to_tensor, noisy_copy

from .directions import check_directions_fit
from .folding import FoldedNet
from .grid import SurfaceGrid

BN_MODES = ("checkpoint", "recompute")
EVAL_NOISE = ("train", "clean")
PRECISIONS = ("float32", "tf32", "bfloat16")
# Normalisation layers with running statistics (batch norms of any dimension, instance norms
# that track statistics): `bn` applies to each of them that tracks its statistics.
_BATCH_NORMS = (_NormBase,)
# "auto" batch: on a CPU, 64 images of 32x32 ran 1.05-1.2x faster than 128 in paired runs;
# on a GPU a batch this large fills the device without stressing its memory.
_CPU_PIXELS_PER_BATCH = 64 * 32 * 32
_GPU_PIXELS_PER_BATCH = 4096 * 32 * 32


def resolve_batch_size(batch_size: int | str, x: torch.Tensor) -> int:
    """An integer batch size, or "auto": one chosen for the device and the image size."""
    if batch_size == "auto":
        pixels = x.shape[-2] * x.shape[-1]
        budget = _GPU_PIXELS_PER_BATCH if x.device.type == "cuda" else _CPU_PIXELS_PER_BATCH
        return int(min(len(x), max(1, budget // pixels)))
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or 'auto', got {batch_size!r}")
    return batch_size


@contextmanager
def precision_context(precision: str, device: torch.device):
    """float32: exact float32 (TF32 off on CUDA); tf32: TF32 matrix units on CUDA (float32 on
    a CPU); bfloat16: autocast to bfloat16 (tensor cores, or CPUs with bf16 instructions)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    saved = None
    if device.type == "cuda":
        backends = torch.backends
        saved = (backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32, backends.cudnn.benchmark)
        backends.cuda.matmul.allow_tf32 = backends.cudnn.allow_tf32 = precision == "tf32"
        # A surface repeats one shape hundreds of times: worth timing cuDNN's algorithms once.
        backends.cudnn.benchmark = True
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bfloat16" else nullcontext()
    try:
        with autocast:
            yield
    finally:
        if saved is not None:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = saved


class SurfaceEvaluator:
    """Loss (`loss`: the run's training loss, `models.losses`), hard Dice and IoU of `model` at
    points of the plane spanned by `directions`.

    bn="checkpoint" (the reference's behaviour): eval mode with the checkpoint's running
    statistics at every point. bn="recompute": at every point, first re-estimate the running
    statistics with one train-mode pass over the evaluation data (cumulative average, i.e.
    BN momentum=None: the mean of the per-batch statistics), then evaluate in eval mode. Far
    from theta* the checkpoint's statistics no longer fit the perturbed weights, so recompute
    measures the network rather than a stale normalisation. Without batch norm the two agree.

    Speed, none of which changes the numbers beyond float32 rounding unless `precision` says
    so: the evaluation set stays on the device in its final layout (`channels_last`); the
    forward pass runs a twin with batch norm folded into the convolutions (`fold_bn`, see
    `folding.FoldedNet`), whose up-sampling layers run as matrix products (`patch_matmul`;
    None: on CPUs); `channels_last=None` picks the layout for the device and precision; the
    masks' sums are computed once; on CUDA, cuDNN times its algorithms once per shape;
    `batch_size="auto"` picks a batch for the device; and with `points_per_pass > 1`
    (bn="checkpoint" only) one vmapped forward pass evaluates several grid points at once,
    which keeps a GPU busy on small models.
    """

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        directions: Sequence[Sequence[torch.Tensor]],
        bn: str = "checkpoint",
        batch_size: int | str = 128,
        precision: str = "float32",
        points_per_pass: int = 1,
        channels_last: bool | None = None,
        fold_bn: bool = True,
        patch_matmul: bool | None = None,
        loss: str = "dice",
    ):
        if bn not in BN_MODES:
            raise ValueError(f"bn must be one of {BN_MODES}, got {bn!r}")
        if len(directions) not in (1, 2):
            raise ValueError(f"a plane has 1 or 2 directions, got {len(directions)}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if isinstance(points_per_pass, bool) or not isinstance(points_per_pass, int) or points_per_pass < 1:
            raise ValueError(f"points_per_pass must be a positive integer, got {points_per_pass!r}")
        if points_per_pass > 1 and bn == "recompute":
            raise ValueError("points_per_pass > 1 needs bn 'checkpoint' (recompute re-estimates BN per point)")
        check_directions_fit(directions, model)
        self.model, self.loss = model, check_loss(loss)
        if channels_last is None:
            # Measured: channels_last speeds up CPU convolutions and bf16 tensor-core ones, but
            # slows cuDNN's float32 kernels down (benchmarks/RESULTS.md).
            channels_last = x.device.type == "cpu" or precision == "bfloat16"
        self.channels_last = channels_last
        self.x = x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x
        self.y = y
        self.masks = PreparedMasks.of(y)
        self.bn, self.batch_size = bn, resolve_batch_size(batch_size, x)
        self.precision, self.points_per_pass = precision, points_per_pass
        self.device = x.device
        self.param_names = [name for name, _ in model.named_parameters()]
        self.params = [p for _, p in model.named_parameters()]
        with torch.no_grad():
            self.theta_star = [p.detach().clone() for p in self.params]
            # On the parameters' device once, so no point re-reads or re-copies them.
            self.directions = [
                [d.detach().to(device=p.device, dtype=p.dtype) for d, p in zip(direction, self.params)]
                for direction in directions
            ]
            self.buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
        self.batch_norms = running_stat_norms(model)
        if patch_matmul is None:
            # Measured faster on CPUs only; cuDNN keeps its own transposed convolution.
            patch_matmul = channels_last and x.device.type == "cpu"
        self.net = FoldedNet(model, patch_matmul=patch_matmul) if fold_bn else None
        if self.net is not None and channels_last:
            self.net.to(memory_format=torch.channels_last)
        self.was_training = model.training
        self.closed = False
        # Why the fast paths are not used for this model ("" where they are).
        self.fallback = {"twin": "", "vmap": ""}
        if self.net is not None and type(model) is not UNet:
            # A network of unknown make: its twin must compute what it computes, or is dropped.
            self.fallback["twin"] = self._twin_disagrees()
            if self.fallback["twin"]:
                self.net = None

    @property
    def ndim(self) -> int:
        return len(self.directions)

    @property
    def settings(self) -> dict:
        """How the values were computed, for the surface file's attributes."""
        return {
            "loss_function": self.loss,
            "eval_batch_size": self.batch_size,
            "precision": self.precision,
            "points_per_pass": self.points_per_pass,
            "bn_folded": self.net is not None and self.net.folded > 0,
            "channels_last": self.channels_last,
            "transposed_conv_as_matmul": self.net is not None and self.net.patched > 0,
            **{f"{path}_fallback": reason for path, reason in self.fallback.items() if reason},
        }

    @torch.no_grad()
    def _twin_disagrees(self) -> str:
        """"" if the folded twin gives the model's logits at theta* on a batch of the evaluation
        images (float32, to 1e-4 of their scale), else why not: then the general path runs."""
        batch = self.x[: min(len(self.x), self.batch_size)]
        self.model.eval()
        try:
            expected = self.model(batch).float()
            got = self._forward_here()(batch).float()
        except Exception as err:  # a layer the twin changed cannot run as the model calls it
            return f"the batch-norm-folded twin fails on this network ({type(err).__name__}: {err})"
        finally:
            self.restore_buffers()
        scale = float(expected.abs().max()) + 1e-6
        if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-4, atol=1e-4 * scale):
            return "the batch-norm-folded twin does not reproduce this network's output"
        return ""

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
            with precision_context(self.precision, self.device):
                for start in range(0, len(self.x), self.batch_size):
                    self.model(self.x[start : start + self.batch_size])
        finally:
            for m, momentum in zip(self.batch_norms, momenta):
                m.momentum = momentum
            self.model.eval()

    def _forward_fn(self, params: dict, buffers: dict) -> Callable[[torch.Tensor], torch.Tensor]:
        """x -> logits of the network with these (source) parameters and buffers."""
        if self.net is None:
            self.model.eval()
            state = {**params, **buffers}
            return lambda x: torch.func.functional_call(self.model, state, (x,))
        state = self.net.state(params, buffers)
        return lambda x: self.net.forward(state, x)

    def _forward_here(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """x -> logits at the point the model is at now, without functional re-binding."""
        self.model.eval()
        if self.net is None:
            return self.model
        with torch.no_grad():
            self.net.load(self.net.state(dict(zip(self.param_names, self.params)), dict(self.model.named_buffers())))
        return self.net.twin

    @torch.inference_mode()
    def _sums(self, forward: Callable[[torch.Tensor], torch.Tensor], points: int | None = None) -> torch.Tensor:
        """(points, 3) float64 sums over images of soft Dice loss, hard Dice and IoU.

        points=None: `forward` returns one point's logits; else (points, batch, ...) logits.
        """
        points = points or 1
        totals = torch.zeros(points, 3, dtype=torch.float64, device=self.device)
        with precision_context(self.precision, self.device):
            for start in range(0, len(self.x), self.batch_size):
                logits = forward(self.x[start : start + self.batch_size]).float()
                per_image = metrics_per_image(logits, self.masks[start : start + self.batch_size], self.loss)
                totals += per_image.reshape(points, -1, 3).sum(1)
        return totals

    def evaluate(self, coords: Sequence[float]) -> dict:
        """{"loss", "dice", "iou"} at `coords`: per-image means over the evaluation set."""
        self.set_point(coords)
        if self.bn == "recompute" and self.batch_norms:
            self.recompute_bn_statistics()
        return _point_values(*(self._sums(self._forward_here())[0] / len(self.x)).tolist())

    def evaluate_many(self, coords: Sequence[Sequence[float]]) -> list[dict]:
        """Like `evaluate` at every row of `coords`, several points per forward pass (vmap).

        The parameters of point k are built from theta* as in `set_point`, for all points at
        once; the model itself is not moved.
        """
        if self.closed:
            raise RuntimeError("SurfaceEvaluator is closed")
        if self.bn == "recompute" and self.batch_norms:
            raise ValueError("several points per pass need bn 'checkpoint'")
        steps = torch.as_tensor(coords, dtype=torch.float64)
        if steps.dim() != 2 or steps.shape[1] != self.ndim:
            raise ValueError(f"coords must have shape (points, {self.ndim}), got {tuple(steps.shape)}")
        with torch.no_grad():
            stacked = {}
            for k, (name, theta) in enumerate(zip(self.param_names, self.theta_star)):
                value = theta.expand(len(steps), *theta.shape).clone()
                for j, direction in enumerate(self.directions):
                    shape = (len(steps),) + (1,) * theta.dim()
                    step = steps[:, j].to(device=theta.device, dtype=theta.dtype).reshape(shape)
                    value += step * direction[k]
                stacked[name] = value
        buffers = {name: b.to(self.device) for name, b in self.buffers.items()}

        def one_point(params: dict, x: torch.Tensor) -> torch.Tensor:
            return self._forward_fn(params, buffers)(x)

        batched = torch.func.vmap(one_point, in_dims=(0, None))
        if not self.fallback["vmap"]:
            try:
                sums = self._sums(lambda x: batched(stacked, x), len(steps)) / len(self.x)
                return [_point_values(*row) for row in sums.tolist()]
            except Exception as err:  # an operation torch.func.vmap cannot batch
                self.fallback["vmap"] = f"several points per pass failed ({type(err).__name__}: {err}); one at a time"
        return [self.evaluate(c) for c in steps.tolist()]

    def evaluate_points(
        self,
        points: Sequence[Sequence[int]],
        grid: SurfaceGrid,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict:
        """Evaluate grid `points` in order; arrays "loss", "dice", "iou" aligned with them.

        `progress(done, total)` is called after every point (or group of points).
        """
        values = {key: np.full(len(points), np.nan) for key in ("loss", "dice", "iou")}
        step = self.points_per_pass
        for first in range(0, len(points), step):
            group = points[first : first + step]
            coords = [grid.coordinates(point) for point in group]
            results = self.evaluate_many(coords) if step > 1 else [self.evaluate(coords[0])]
            for k, result in enumerate(results, start=first):
                for key, value in result.items():
                    values[key][k] = value
            if progress is not None:
                progress(first + len(group), len(points))
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


def running_stat_norms(model: nn.Module) -> list[nn.Module]:
    """The normalisation layers of `model` that keep running statistics (what `bn` is about)."""
    return [m for m in model.modules() if isinstance(m, _BATCH_NORMS) and m.track_running_stats]


def _point_values(loss: float, dice: float, iou: float) -> dict:
    """One point's values; Dice and IoU are NaN where the loss is not finite (a NaN logit would
    otherwise count as a "background" prediction)."""
    if not math.isfinite(loss):
        dice = iou = math.nan
    return {"loss": loss, "dice": dice, "iou": iou}


def evaluation_set(
    dataset_images: np.ndarray,
    dataset_masks: np.ndarray,
    subset: int | None,
    subset_seed: int,
    noise: float,
    eval_noise: str,
    noise_seed: int,
    device: str | torch.device = "cpu",
    within: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """The images a surface is evaluated on, as model input, and a record of how they were chosen.

    subset=None takes every training image; an integer takes a fixed random subset (drawn
    without replacement with `subset_seed`, kept in dataset order). `within` (dataset indices:
    the images a run trained on, when it trained on a subset) restricts both to those images, so
    a run is never measured on images it did not train on; a subset at least as large takes them
    all. A run trained with input noise is evaluated on one fixed noisy copy (`noise_seed`)
    unless eval_noise == "clean". The record's `indices` are always dataset indices.
    """
    if eval_noise not in EVAL_NOISE:
        raise ValueError(f"eval_noise must be one of {EVAL_NOISE}, got {eval_noise!r}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    n = len(dataset_images)
    if len(dataset_masks) != n:
        raise ValueError(f"{n} images but {len(dataset_masks)} masks")
    pool = np.arange(n) if within is None else np.sort(np.asarray(within, dtype=np.int64))
    if within is not None and (len(pool) == 0 or pool[0] < 0 or pool[-1] >= n or len(np.unique(pool)) != len(pool)):
        raise ValueError(f"the run's training images must be distinct indices in 0..{n - 1}")
    if subset is None:
        indices = pool
    else:
        if isinstance(subset, bool) or not isinstance(subset, (int, np.integer)) or not 1 <= subset <= n:
            raise ValueError(
                f"evaluation subset must be an integer in 1..{n} (the dataset size), got {subset!r}"
            )
        if subset >= len(pool):
            indices = pool
        else:
            indices = np.sort(pool[np.random.default_rng(subset_seed).choice(len(pool), size=int(subset), replace=False)])
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
        "indices": indices.tolist(),  # the dataset's images, ascending: the set can be rebuilt
        "within": None if within is None else f"the run's training subset of {len(pool)} images",
        "noise": float(noise),
        "eval_noise": eval_noise,
        "noise_applied": bool(noisy),
        "noise_seed": int(noise_seed) if noisy else None,
    }
    return x, y, description
