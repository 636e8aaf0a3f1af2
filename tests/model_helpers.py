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
