"""Rescale the weights in front of batch norm: the symmetry filter normalisation factors out.

A convolution that feeds a BatchNorm layer can be multiplied by any c > 0 without changing
the network: BN divides the scale out again. In eval mode BN uses running statistics, so they
are rescaled with it (mean by c, variance by c^2); the output then changes only through BN's
eps, (z - mu) / sqrt(var + eps / c^2). Li et al. argue that un-normalised plots are misleading
because of exactly this symmetry; `rescale_bn_inputs` makes it checkable.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def conv_bn_pairs(model: nn.Module) -> list[tuple[nn.Module, nn.Module]]:
    """(conv, batch norm) pairs where the conv's output goes straight into the BN.

    Found as neighbours inside an nn.Sequential, which is how the U-Net's ConvBlock wires
    them; a conv whose output is concatenated or summed first does not count.
    """
    pairs = []
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            layers = list(module.children())
            pairs += [
                (a, b)
                for a, b in zip(layers, layers[1:])
                if isinstance(a, _CONVS) and isinstance(b, _BATCH_NORMS)
            ]
    return pairs


@torch.no_grad()
def rescale_bn_inputs(model: nn.Module, factor: float) -> nn.Module:
    """A copy of `model` with every conv that feeds a BN multiplied by `factor` (> 0), and
    that BN's running mean and variance rescaled to match."""
    if not factor > 0:
        raise ValueError(f"factor must be > 0 (a negative one flips BN's output), got {factor!r}")
    model = copy.deepcopy(model)
    pairs = conv_bn_pairs(model)
    if not pairs:
        raise ValueError(
            "model has no convolution feeding a BatchNorm layer: rescaling is a symmetry only of "
            "batch-norm models"
        )
    for conv, bn in pairs:
        conv.weight.mul_(factor)
        if conv.bias is not None:  # keeps the conv output exactly factor * z
            conv.bias.mul_(factor)
        if bn.running_mean is not None:
            bn.running_mean.mul_(factor)
            bn.running_var.mul_(factor**2)
    return model


@torch.no_grad()
def rescale_block_convs(model: nn.Module, factor: float) -> nn.Module:
    """Rescale the convolutions inside the U-Net's conv blocks by `factor`.

    With batch norm these are exactly the convs that feed a BN (`rescale_bn_inputs`, a
    symmetry); without it the same weights are rescaled, which changes the function. The pair
    makes the poster's point measurable: only the batch-norm network is scale invariant.
    """
    if conv_bn_pairs(model):
        return rescale_bn_inputs(model, factor)
    if not factor > 0:
        raise ValueError(f"factor must be > 0, got {factor!r}")
    from unetscape.models.unet import ConvBlock

    model = copy.deepcopy(model)
    for block in (m for m in model.modules() if isinstance(m, ConvBlock)):
        for conv in (m for m in block if isinstance(m, _CONVS)):
            conv.weight.mul_(factor)
    return model


# Activations with f(c z) = c f(z) for c > 0: a layer in front of one can be rescaled by c and
# the layer after it by 1/c without changing the network (Dinh et al. 2017).
_HOMOGENEOUS = (nn.ReLU, nn.LeakyReLU)


def relu_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(first, second) names of convolutions with only a positively homogeneous activation
    between them inside an nn.Sequential (conv -> ReLU -> conv): pairs that
    `rescale_relu_pair` may rescale by (c, 1/c)."""
    pairs = []
    for prefix, module in model.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        named = list(module.named_children())
        for (a, first), (_, act), (b, second) in zip(named, named[1:], named[2:]):
            if isinstance(first, _CONVS) and isinstance(act, _HOMOGENEOUS) and isinstance(second, _CONVS):
                pairs.append((f"{prefix}.{a}" if prefix else a, f"{prefix}.{b}" if prefix else b))
    return pairs


@torch.no_grad()
def rescale_relu_pair(model: nn.Module, first: str, second: str, factor: float) -> nn.Module:
    """A copy of `model` with convolution `first` (weight and bias) times `factor` and the
    convolution `second` after its ReLU times 1/`factor`: the same function, other weights."""
    if not factor > 0:
        raise ValueError(f"factor must be > 0 (ReLU is homogeneous for positive factors only), got {factor!r}")
    if (first, second) not in relu_pairs(model):
        raise ValueError(f"{first} -> {second} is not a conv -> ReLU -> conv pair of this model: {relu_pairs(model)}")
    model = copy.deepcopy(model)
    modules = dict(model.named_modules())
    modules[first].weight.mul_(factor)
    if modules[first].bias is not None:
        modules[first].bias.mul_(factor)
    modules[second].weight.div_(factor)
    return model
