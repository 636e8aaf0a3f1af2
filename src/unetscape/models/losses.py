"""Dice loss and segmentation metrics, per image and averaged over images.

Every quantity is a per-image value averaged over images, so the value for a whole set does
not depend on how the set is split into batches.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

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


def _hard_dice(inter: torch.Tensor, p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    denom = p + g
    return torch.where(denom > 0, 2 * inter / denom.clamp(min=1), torch.ones_like(denom))


def _iou(inter: torch.Tensor, p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    union = p + g - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def hard_dice_per_image(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """2|P∩G| / (|P| + |G|) at threshold 0.5; 1 when prediction and mask are both empty."""
    return _hard_dice(*_hard_counts(logits, masks))


def iou_per_image(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """|P∩G| / |P∪G| at threshold 0.5; 1 when prediction and mask are both empty."""
    return _iou(*_hard_counts(logits, masks))


@dataclass(frozen=True)
class PreparedMasks:
    """Masks flattened per image, with the sums every metric needs, computed once.

    A surface evaluates the same masks at hundreds of points; `metrics_per_image` with these
    does per batch only the work that depends on the logits. Slicing gives the masks of a batch.
    """

    values: torch.Tensor  # (n, pixels) float32
    positive: torch.Tensor  # values > 0
    value_sums: torch.Tensor  # float32, as soft Dice sums them
    positive_counts: torch.Tensor  # float64, as the hard metrics count them

    @classmethod
    def of(cls, masks: torch.Tensor) -> "PreparedMasks":
        values = masks.reshape(masks.shape[0], -1).float()
        positive = values > 0
        return cls(values, positive, values.sum(1), positive.sum(1, dtype=torch.float64))

    def __len__(self) -> int:
        return self.values.shape[0]

    def __getitem__(self, index: slice) -> "PreparedMasks":
        return PreparedMasks(*(getattr(self, f.name)[index] for f in fields(self)))


def metrics_per_image(logits: torch.Tensor, masks: PreparedMasks) -> torch.Tensor:
    """(n, 3) or (points, n, 3) float64: soft Dice loss, hard Dice and IoU per image, in one pass.

    The same values as `soft_dice_loss_per_image`, `hard_dice_per_image` and `iou_per_image`
    (same float32 sums, so bit for bit), sharing the sigmoid, the threshold and the mask sums.
    `logits`: (n, C, H, W) for one point, or (points, n, C, H, W) for several at once.
    """
    n, pixels = masks.values.shape
    stacked = logits.dim() == 5
    one_point = logits.shape[1:] if stacked else logits.shape
    if logits.dim() not in (4, 5) or one_point[0] != n or one_point[1:].numel() != pixels:
        raise ValueError(f"logits {tuple(logits.shape)} do not match {n} masks of {pixels} pixels")
    flat = logits.reshape(-1, n, pixels) if stacked else logits.reshape(n, pixels)
    p = torch.sigmoid(flat)
    soft = 1 - (2 * (p * masks.values).sum(-1) + SMOOTH) / (p.sum(-1) + masks.value_sums + SMOOTH)
    pred = flat > 0
    inter = (pred & masks.positive).sum(-1, dtype=torch.float64)
    counts = (inter, pred.sum(-1, dtype=torch.float64), masks.positive_counts)
    return torch.stack([soft.double(), _hard_dice(*counts), _iou(*counts)], dim=-1)
