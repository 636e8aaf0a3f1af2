"""Training losses and segmentation metrics, per image and averaged over images.

Every quantity is a per-image value averaged over images, so the value for a whole set does
not depend on how the set is split into batches. With p = sigmoid(logits) and g the mask
(sums and means over the pixels of one image):

    dice      1 - (2 sum(p g) + 1) / (sum(p) + sum(g) + 1)            (the default, the poster's)
    bce       mean of -[g log p + (1 - g) log(1 - p)]                 (binary cross-entropy)
    dice_bce  dice + bce
    focal     mean of -(1 - p_t)^2 log p_t, p_t = p where g = 1, else 1 - p   (Lin et al. 2017)
    tversky   1 - (TP + 1) / (TP + 0.3 FP + 0.7 FN + 1), TP = sum(p g), FP = sum(p (1 - g)),
              FN = sum((1 - p) g)                                      (Salehi et al. 2017)

Each is MONAI's loss of that name on one image with these settings (tests/test_losses.py checks
them against MONAI where it is installed): DiceLoss(sigmoid=True, smooth_nr=1, smooth_dr=1),
BCEWithLogitsLoss, DiceCELoss(sigmoid=True, smooth_nr=1, smooth_dr=1), FocalLoss(gamma=2,
alpha=None) and TverskyLoss(sigmoid=True, alpha=0.3, beta=0.7, smooth_nr=1, smooth_dr=1).
MONAI is not needed to compute them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

import torch
import torch.nn.functional as F

SMOOTH = 1.0
LOSSES = ("dice", "bce", "dice_bce", "focal", "tversky")
FOCAL_GAMMA = 2.0
TVERSKY_ALPHA, TVERSKY_BETA = 0.3, 0.7  # weights of false positives and false negatives


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


def _bce_rows(logits: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, g.expand_as(logits), reduction="none").mean(-1)


def _dice_rows(logits: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits)
    return 1 - (2 * (p * g).sum(-1) + SMOOTH) / (p.sum(-1) + g.sum(-1) + SMOOTH)


def _focal_rows(logits: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    bce = F.binary_cross_entropy_with_logits(logits, g.expand_as(logits), reduction="none")
    # log(1 - p_t) = logsigmoid(-x) where g = 1, logsigmoid(x) where g = 0: no overflow
    return (torch.exp(FOCAL_GAMMA * F.logsigmoid(-logits * (2 * g - 1))) * bce).mean(-1)


def _tversky_rows(logits: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits)
    tp = (p * g).sum(-1)
    fp = (p * (1 - g)).sum(-1)
    fn = ((1 - p) * g).sum(-1)
    return 1 - (tp + SMOOTH) / (tp + TVERSKY_ALPHA * fp + TVERSKY_BETA * fn + SMOOTH)


# name -> loss of each row of flattened logits (..., pixels) against masks broadcast to them
_ROWS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "dice": _dice_rows,
    "bce": _bce_rows,
    "dice_bce": lambda logits, g: _dice_rows(logits, g) + _bce_rows(logits, g),
    "focal": _focal_rows,
    "tversky": _tversky_rows,
}


def check_loss(name: str) -> str:
    if name not in LOSSES:
        raise ValueError(f"training.loss must be one of {LOSSES}, got {name!r}")
    return name


def loss_per_image(name: str = "dice") -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """(logits, masks) -> the loss `name` of each image, shape (n,) (module docstring)."""
    if check_loss(name) == "dice":
        return soft_dice_loss_per_image  # the default exactly as it always was

    def per_image(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        logits, masks = _flat(logits, masks)
        return _ROWS[name](logits, masks.to(logits.dtype))

    per_image.__name__ = f"{name}_loss_per_image"
    return per_image


def training_loss(name: str = "dice") -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """(logits, masks) -> the mean over images of the loss `name` (what SGD minimises)."""
    if check_loss(name) == "dice":
        return dice_loss
    per_image = loss_per_image(name)
    return lambda logits, masks: per_image(logits, masks).mean()


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


def metrics_per_image(logits: torch.Tensor, masks: PreparedMasks, loss: str = "dice") -> torch.Tensor:
    """(n, 3) or (points, n, 3) float64: the loss `loss`, hard Dice and IoU per image, in one pass.

    The same values as `loss_per_image(loss)`, `hard_dice_per_image` and `iou_per_image`
    (same float32 sums, so bit for bit), sharing the sigmoid, the threshold and the mask sums.
    `logits`: (n, C, H, W) for one point, or (points, n, C, H, W) for several at once.
    """
    n, pixels = masks.values.shape
    stacked = logits.dim() == 5
    one_point = logits.shape[1:] if stacked else logits.shape
    if logits.dim() not in (4, 5) or one_point[0] != n or one_point[1:].numel() != pixels:
        raise ValueError(f"logits {tuple(logits.shape)} do not match {n} masks of {pixels} pixels")
    flat = logits.reshape(-1, n, pixels) if stacked else logits.reshape(n, pixels)
    if loss == "dice":
        p = torch.sigmoid(flat)
        soft = 1 - (2 * (p * masks.values).sum(-1) + SMOOTH) / (p.sum(-1) + masks.value_sums + SMOOTH)
    else:
        soft = _ROWS[check_loss(loss)](flat, masks.values)
    pred = flat > 0
    inter = (pred & masks.positive).sum(-1, dtype=torch.float64)
    counts = (inter, pred.sum(-1, dtype=torch.float64), masks.positive_counts)
    return torch.stack([soft.double(), _hard_dice(*counts), _iou(*counts)], dim=-1)
