"""Whole-set evaluation: the training loss, hard Dice and IoU averaged over every image."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from unetscape.models.losses import hard_dice_per_image, iou_per_image, loss_per_image


def images_to_tensor(images: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 NHWC images -> float32 NCHW in [0, 1]: the model's only input transform."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    return x.permute(0, 3, 1, 2).float().div_(255).contiguous()


def masks_to_tensor(masks: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 NHW masks in {0, 1} -> float32 N1HW."""
    return torch.from_numpy(np.ascontiguousarray(masks)).to(device).float().unsqueeze(1)


def noisy_copy(x: torch.Tensor, std: float, seed: int) -> torch.Tensor:
    """A fixed Gaussian-noise copy of `x` (no clipping: the noise the model was trained with)."""
    if std == 0:
        return x
    generator = torch.Generator(device="cpu").manual_seed(seed)
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return x + std * noise.to(x.device)


@torch.inference_mode()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64, loss: str = "dice") -> dict:
    """Mean per-image loss (`loss`, default the soft Dice loss), hard Dice and IoU of `model`
    over the set (x, y).

    Per-image values are summed in float64 across batches, so the result does not depend on
    `batch_size`. The caller decides train/eval mode. Where the loss is not finite (a
    diverged model) Dice and IoU are NaN too: a NaN logit thresholds to "background", which
    would otherwise score as a real prediction.
    """
    n = x.shape[0]
    per_image = loss_per_image(loss)
    totals = torch.zeros(3, dtype=torch.float64, device=x.device)
    for start in range(0, n, batch_size):
        logits = model(x[start : start + batch_size])
        masks = y[start : start + batch_size]
        totals[0] += per_image(logits, masks).sum(dtype=torch.float64)
        totals[1] += hard_dice_per_image(logits, masks).sum()
        totals[2] += iou_per_image(logits, masks).sum()
    loss, dice, iou = (totals / n).tolist()
    if not np.isfinite(loss):
        dice = iou = float("nan")
    return {"loss": loss, "dice": dice, "iou": iou}


@torch.inference_mode()
def predicted_masks(model: nn.Module, x: torch.Tensor, batch_size: int = 64) -> np.ndarray:
    """The model's hard masks (logit > 0, i.e. probability > 0.5) of the images `x`, uint8 N×H×W.
    The caller decides train/eval mode."""
    masks = [(model(x[start : start + batch_size]) > 0).squeeze(1).to("cpu", torch.uint8)
             for start in range(0, x.shape[0], batch_size)]
    return torch.cat(masks).numpy()


@torch.inference_mode()
def standard_errors(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64,
                    loss: str = "dice") -> dict:
    """The standard errors over images of the set's mean loss and mean hard Dice: the per-image
    values' sample standard deviation over sqrt(n) (NaN for fewer than two images or a loss that
    is not finite). For a held-out set they say how precisely its mean estimates the population's,
    so two runs' held-out numbers (and generalisation gaps) differ by more than their error only
    when they differ by several of these. The caller decides train/eval mode."""
    per_image = loss_per_image(loss)
    losses, dices = [], []
    for start in range(0, x.shape[0], batch_size):
        logits = model(x[start : start + batch_size])
        masks = y[start : start + batch_size]
        losses.append(per_image(logits, masks).to(torch.float64))
        dices.append(hard_dice_per_image(logits, masks).to(torch.float64))
    out = {}
    for name, values in (("loss", losses), ("dice", dices)):
        values = torch.cat(values)
        finite = len(values) > 1 and bool(torch.isfinite(values).all())
        out[f"{name}_se"] = float(values.std(unbiased=True) / len(values) ** 0.5) if finite else float("nan")
    return out
