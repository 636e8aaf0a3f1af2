"""U-Net variants built from a plain config dict (checkpoints: `models.checkpoints`).

An architecture is a dict with keys
    depth        number of 2x down-sampling steps (the U has depth+1 resolution levels)
    base_width   channels at the first level; doubled at every level down
    norm         "none" (the poster's plain U-Net) or "batch"
    activation   "relu", "leaky_relu", "elu", "gelu" or "silu"
    skip         "concat" (classic U-Net), "add" (summed skips) or "none" (no skips)
    in_channels  3 (RGB)
    init         initial weights: "kaiming_normal" (He et al. 2015, the default), "xavier_uniform"
                 (Glorot & Bengio 2010) or "torch_default" (PyTorch's own layer initialisation)
Presets `simple` and `improved` are the two models of the poster.
"""

from __future__ import annotations


import torch
from torch import nn


ARCH_DEFAULTS = {
    "depth": 3,
    "base_width": 8,
    "norm": "none",
    "activation": "relu",
    "skip": "concat",
    "in_channels": 3,
    "init": "kaiming_normal",
}
ARCH_PRESETS = {
    "simple": {"norm": "none", "activation": "relu"},
    "improved": {"norm": "batch", "activation": "relu"},
}
NORMS = ("none", "batch")
SKIPS = ("concat", "add", "none")
ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}
# PyTorch's default conv initialisation (uniform, bound 1/sqrt(fan_in)) keeps a quarter of
# the second moment per ReLU layer: after the ~14 convolutions of a depth-3 U-Net without
# normalisation the output is the head's bias and the plain U-Net never learns. He
# initialisation (std sqrt(2 / fan_in)) keeps it, which is why it is the default.
INITS = ("kaiming_normal", "xavier_uniform", "torch_default")


def resolve_arch(spec: dict | None = None) -> dict:
    """Fill an architecture spec from the defaults and its optional `preset`, and check it."""
    spec = dict(spec or {})
    preset = spec.pop("preset", None)
    if preset is not None and preset not in ARCH_PRESETS:
        raise ValueError(f"unknown architecture preset {preset!r}; choose from {sorted(ARCH_PRESETS)}")
    arch = {**ARCH_DEFAULTS, **ARCH_PRESETS.get(preset, {}), **spec}
    unknown = set(arch) - set(ARCH_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown architecture keys {sorted(unknown)}")
    if arch["norm"] not in NORMS:
        raise ValueError(f"arch norm must be one of {NORMS}, got {arch['norm']!r}")
    if arch["skip"] not in SKIPS:
        raise ValueError(f"arch skip must be one of {SKIPS}, got {arch['skip']!r}")
    if arch["init"] not in INITS:
        raise ValueError(f"arch init must be one of {INITS}, got {arch['init']!r}")
    if arch["activation"] not in ACTIVATIONS:
        raise ValueError(f"arch activation must be one of {sorted(ACTIVATIONS)}, got {arch['activation']!r}")
    for key in ("depth", "base_width", "in_channels"):
        if not isinstance(arch[key], int) or arch[key] < (0 if key == "depth" else 1):
            raise ValueError(f"arch {key} must be a positive integer, got {arch[key]!r}")
    return arch


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by optional batch norm and the activation."""

    def __init__(self, c_in: int, c_out: int, norm: str, activation: str):
        layers: list[nn.Module] = []
        for c in (c_in, c_out):
            # With batch norm a conv bias is redundant (BN subtracts the mean); leaving it out
            # makes the conv -> BN pair exactly invariant to rescaling the conv weights.
            layers.append(nn.Conv2d(c, c_out, 3, padding=1, bias=norm == "none"))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(ACTIVATIONS[activation]())
        super().__init__(*layers)


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015) for binary segmentation; returns logits (N, 1, H, W)."""

    def __init__(self, arch: dict):
        super().__init__()
        self.arch = resolve_arch(arch)
        depth, width = self.arch["depth"], self.arch["base_width"]
        norm, act, self.skip = self.arch["norm"], self.arch["activation"], self.arch["skip"]
        widths = [width * 2**level for level in range(depth + 1)]

        self.down = nn.ModuleList([ConvBlock(self.arch["in_channels"], widths[0], norm, act)])
        for level in range(1, depth + 1):
            self.down.append(ConvBlock(widths[level - 1], widths[level], norm, act))
        self.pool = nn.MaxPool2d(2)

        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for level in reversed(range(depth)):
            self.up.append(nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2))
            merged = 2 * widths[level] if self.skip == "concat" else widths[level]
            self.merge.append(ConvBlock(merged, widths[level], norm, act))
        self.head = nn.Conv2d(widths[0], 1, 1)
        initialise(self, self.arch["init"], act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, block in enumerate(self.down):
            if level > 0:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottleneck output is not a skip
        for up, merge in zip(self.up, self.merge):
            x = up(x)
            skip = skips.pop()
            if self.skip == "concat":
                x = torch.cat([skip, x], dim=1)
            elif self.skip == "add":
                x = x + skip
            x = merge(x)
        return self.head(x)


def fan_in(layer: nn.Conv2d | nn.ConvTranspose2d) -> int:
    """Inputs that reach one output value: C_in * k * k for a convolution; for a transposed
    convolution C_in * k * k / (stride * stride), its kernel spread over the stride's phases.

    (torch.nn.init reads a transposed convolution's weight (C_in, C_out, k, k) as if it were a
    convolution's and takes C_out * k * k.)
    """
    kernel = layer.weight[0, 0].numel()
    if isinstance(layer, nn.ConvTranspose2d):
        stride = layer.stride[0] * layer.stride[1]
        return max(1, layer.in_channels * kernel // stride)
    return layer.in_channels // layer.groups * kernel


def initialise(model: nn.Module, scheme: str, activation: str = "relu") -> None:
    """Re-initialise every convolution of `model` in place, from torch's global generator.

    kaiming_normal: weights N(0, gain^2 / fan_in) with the activation's gain (sqrt 2 for
    ReLU), biases 0: the second moment of the pre-activations stays the same from layer to
    layer (He et al. 2015). xavier_uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)),
    biases 0. torch_default: the layers keep the initialisation they were built with.
    """
    if scheme == "torch_default":
        return
    if scheme not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {scheme!r}")
    if activation == "leaky_relu":
        gain = nn.init.calculate_gain("leaky_relu", 0.01)
    else:  # ELU, GELU and SiLU are close enough to ReLU for the gain
        gain = nn.init.calculate_gain("relu")
    with torch.no_grad():
        for layer in model.modules():
            if not isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                continue
            if scheme == "kaiming_normal":
                layer.weight.normal_(0.0, gain / fan_in(layer) ** 0.5)
            else:
                nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                layer.bias.zero_()


def build_model(arch: dict) -> UNet:
    return UNet(arch)
