"""Dice loss and segmentation metrics, per image and averaged over images.

Every quantity is a per-image value averaged over images, so the value for a whole set does
not depend on how the set is split into batches.
"""

from __future__ import annotations

import torch

SMOOTH = 1.0


def _flat(logits: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n = logits.shape[0]
    if masks.shape[0] != n or masks.numel() != logits.numel():
        raise ValueError(f"logits {tuple(logits.shape)} and masks {tuple(masks.shape)} do not match")
    return logits.reshape(n, -1), masks.reshape(n, -1)


def soft_dice_loss_per_image(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """1 - (2 sum(p g) + 1) / (sum(p) + sum(g) + 1) for each image, p = sigmoid(logits)."""
    logits, masks = _flat(logits, masks)
    p = torch.sigmoid(logits)
    g = masks.to(p.dtype)
    return 1 - (2 * (p * g).sum(1) + SMOOTH) / (p.sum(1) + g.sum(1) + SMOOTH)


def dice_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Soft Dice loss: the mean over images of `soft_dice_loss_per_image`."""
    return soft_dice_loss_per_image(logits, masks).mean()


def _hard_counts(logits: torch.Tensor, masks: torch.Tensor):
    logits, masks = _flat(logits, masks)
    pred = logits > 0  # sigmoid(logit) > 0.5
    gt = masks > 0
    inter = (pred & gt).sum(1, dtype=torch.float64)
    return inter, pred.sum(1, dtype=torch.float64), gt.sum(1, dtype=torch.float64)


def hard_dice_per_image(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """2|P∩G| / (|P| + |G|) at threshold 0.5; 1 when prediction and mask are both empty."""
    inter, p, g = _hard_counts(logits, masks)
    denom = p + g
    return torch.where(denom > 0, 2 * inter / denom.clamp(min=1), torch.ones_like(denom))


def iou_per_image(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """|P∩G| / |P∪G| at threshold 0.5; 1 when prediction and mask are both empty."""
    inter, p, g = _hard_counts(logits, masks)
    union = p + g - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
