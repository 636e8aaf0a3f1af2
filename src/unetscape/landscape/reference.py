"""The reference implementation's way of evaluating a surface, kept as the slow path.

This is how the loss-landscape code of Li et al. (2018) evaluates a point, and what the
benchmark and the tests compare `SurfaceEvaluator` with: directions kept as NumPy arrays and
converted at every point, the point built as a fresh state dict theta* + a dx + b dy and loaded
with `load_state_dict`, then a `DataLoader` (batch 128, no workers) over the evaluation set
held on the CPU, each batch moved to the device, under `model.eval()` and `torch.no_grad()`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from unetscape.models.losses import hard_dice_per_image, iou_per_image, loss_per_image

from .surface import BN_MODES, running_stat_norms


class ReferenceEvaluator:
    """Slow, straightforward surface values; same numbers as `SurfaceEvaluator.evaluate`."""

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        directions: Sequence[Sequence[torch.Tensor]],
        bn: str = "checkpoint",
        batch_size: int = 128,
        loss: str = "dice",
    ):
        if bn not in BN_MODES:
            raise ValueError(f"bn must be one of {BN_MODES}, got {bn!r}")
        self.model, self.bn, self.batch_size = model, bn, batch_size
        self.loss_per_image = loss_per_image(loss)
        self.device = next(model.parameters()).device
        self.theta_star = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.names = [name for name, _ in model.named_parameters()]
        self.directions = [[d.detach().cpu().numpy() for d in direction] for direction in directions]
        self.dataset = TensorDataset(x.detach().cpu(), y.detach().cpu())

    def _loader(self) -> DataLoader:
        return DataLoader(self.dataset, batch_size=self.batch_size, shuffle=False, num_workers=0)

    @torch.no_grad()
    def _recompute_bn(self) -> None:
        batch_norms = running_stat_norms(self.model)
        momenta = [m.momentum for m in batch_norms]
        for m in batch_norms:
            m.reset_running_stats()
            m.momentum = None
        self.model.train()
        for images, _ in self._loader():
            self.model(images.to(self.device))
        for m, momentum in zip(batch_norms, momenta):
            m.momentum = momentum

    @torch.no_grad()
    def evaluate(self, coords: Sequence[float]) -> dict:
        state = dict(self.theta_star)
        for k, name in enumerate(self.names):
            change = sum(float(c) * torch.from_numpy(d[k]) for c, d in zip(coords, self.directions))
            state[name] = self.theta_star[name] + change.to(self.device)
        self.model.load_state_dict(state)
        if self.bn == "recompute":
            self._recompute_bn()
        self.model.eval()
        totals = np.zeros(3)
        for images, masks in self._loader():
            logits = self.model(images.to(self.device))
            masks = masks.to(self.device)
            totals[0] += self.loss_per_image(logits, masks).double().sum().item()
            totals[1] += hard_dice_per_image(logits, masks).sum().item()
            totals[2] += iou_per_image(logits, masks).sum().item()
        loss, dice, iou = totals / len(self.dataset)
        return {"loss": loss, "dice": dice, "iou": iou}

    def close(self) -> None:
        """Put theta* and the checkpoint buffers back."""
        self.model.load_state_dict(self.theta_star)
