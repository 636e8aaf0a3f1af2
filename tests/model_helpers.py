"""Small models for the numerical tests."""

from __future__ import annotations

import torch
from torch import nn


def with_random_batch_norm(model: nn.Module) -> nn.Module:
    """The model in eval mode with non-trivial BN running statistics and affine parameters, so
    that a test of batch-norm handling can fail (fresh BN layers are the identity)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.1, 0.1)
    return model.eval()


def loss_by_definition(name: str, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Per-image loss `name` from the README's definitions, in float64 with plain torch ops (not
    the package's code): the independent value the evaluators are checked against."""
    z = logits.double().reshape(len(logits), -1)
    g = masks.double().reshape(len(masks), -1)
    p = 1 / (1 + torch.exp(-z))
    bce = -(g * torch.log(p) + (1 - g) * torch.log(1 - p))
    tp, fp, fn = (p * g).sum(1), (p * (1 - g)).sum(1), ((1 - p) * g).sum(1)
    dice = 1 - (2 * tp + 1) / (p.sum(1) + g.sum(1) + 1)
    p_t = torch.where(g == 1, p, 1 - p)
    return {
        "dice": dice,
        "bce": bce.mean(1),
        "dice_bce": dice + bce.mean(1),
        "focal": ((1 - p_t) ** 2 * bce).mean(1),
        "tversky": 1 - (tp + 1) / (tp + 0.3 * fp + 0.7 * fn + 1),
    }[name]


@torch.no_grad()
def li_surface_point(model: nn.Module, x, y, directions, coords, loss: str = "dice") -> float:
    """Li et al.'s surface value at `coords`, computed directly: a copy of the model with every
    learnable parameter set to theta* + sum_k coords[k] d_k, in eval mode, the per-image loss
    averaged over all images in one batch."""
    import copy

    twin = copy.deepcopy(model).eval()
    for k, (_, p) in enumerate(twin.named_parameters()):
        p.add_(sum(float(c) * d[k].to(p) for c, d in zip(coords, directions)))
    return float(loss_by_definition(loss, twin(x), y).mean())
