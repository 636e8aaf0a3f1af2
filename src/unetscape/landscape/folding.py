"""An inference twin of a network: batch norm folded into the convolution before it.

In eval mode batch norm is a per-channel affine map, BN(z) = (z - mean) * s + beta with
s = gamma / sqrt(var + eps), so conv -> BN is one convolution with weight W * s and bias
(b - mean) * s + beta. The twin runs that one convolution, which spares the forward pass a
full read and write of every BN activation. Its weights are a pure function of the source
model's parameters and buffers (`FoldedNet.state`), so one twin serves every grid point:
refolding costs a few small tensor ops, and `torch.func.vmap` can fold many points at once.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

# Activations whose input is a fresh conv output can overwrite it: one memory pass less.
_INPLACE_AFTER = (nn.Conv2d, _BatchNorm)


class FoldedBatchNorm(nn.Identity):
    """Where a batch norm was folded into the convolution before it (passes the conv output on)."""


def _runs_in_order(module: nn.Module) -> bool:
    """An nn.Sequential that runs its children one after the other (a subclass with a forward
    of its own may use them otherwise, so nothing inside it is folded)."""
    return isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward


class PatchConvTranspose(nn.Module):
    """A ConvTranspose2d whose kernel equals its stride, as one matrix product.

    Each input pixel then writes its own k x k output patch, so the layer is
    (N*H*W, C_in) @ (C_in, k*k*C_out) followed by one copy into the channels_last output.
    On CPUs this is 1.3-3.8x faster than oneDNN's transposed convolution for the U-Net's
    up-sampling layers (benchmarks/RESULTS.md). Same parameter names as the layer it replaces.
    """

    def __init__(self, layer: nn.ConvTranspose2d):
        super().__init__()
        self.k = layer.kernel_size[0]
        self.weight = layer.weight  # (C_in, C_out, k, k)
        self.bias = layer.bias

    @staticmethod
    def replaces(layer: nn.Module) -> bool:
        return (
            type(layer) is nn.ConvTranspose2d
            and layer.kernel_size[0] == layer.kernel_size[1] == layer.stride[0] == layer.stride[1]
            and layer.padding == (0, 0)
            and layer.output_padding == (0, 0)
            and layer.dilation == (1, 1)
            and layer.groups == 1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        k, c_out = self.k, self.weight.shape[1]
        # Columns ordered (row in patch, column in patch, channel): every output row segment of
        # a patch is then k * C_out contiguous floats in the product and in the output.
        weight = self.weight.permute(0, 2, 3, 1).reshape(c, k * k * c_out)
        pixels = x.permute(0, 2, 3, 1).reshape(n * h * w, c)
        if self.bias is None:
            y = pixels @ weight
        else:
            y = torch.addmm(self.bias.repeat(k * k), pixels, weight)
        y = y.view(n, h, w, k, k * c_out).transpose(2, 3).reshape(n, h * k, w * k, c_out)
        return y.permute(0, 3, 1, 2)  # NCHW shape, channels_last memory


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d
        and isinstance(bn, _BatchNorm)
        and bn.track_running_stats
        and bn.running_mean is not None
        and bn.num_features == conv.out_channels
    )


class FoldedNet:
    """Eval-mode twin of `model` with every Conv2d -> BatchNorm pair of an nn.Sequential folded.

    The source model is not changed. `state(params, buffers)` maps the source's named
    parameters and buffers to the twin's; `forward(state, x)` runs the twin with them.
    Batch norms that cannot be folded (not after a Conv2d, no running statistics) stay as they
    are and use the source's buffers.
    """

    def __init__(self, model: nn.Module, patch_matmul: bool = False):
        twin = copy.deepcopy(model).eval()
        self.patched = 0  # transposed convolutions run as matrix products
        if patch_matmul:
            for name, module in list(twin.named_modules()):
                if PatchConvTranspose.replaces(module):
                    twin.set_submodule(name, PatchConvTranspose(module))
                    self.patched += 1
        self.folds: dict[str, str] = {}  # twin conv prefix -> source BN prefix
        self.eps: dict[str, float] = {}
        for prefix, module in twin.named_modules():
            if not _runs_in_order(module):
                continue
            children = list(module.named_children())
            for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
                if not _foldable(conv, bn):
                    continue
                conv_path = f"{prefix}.{conv_name}" if prefix else conv_name
                bn_path = f"{prefix}.{bn_name}" if prefix else bn_name
                self.folds[conv_path] = bn_path
                self.eps[bn_path] = float(bn.eps)
                setattr(module, bn_name, FoldedBatchNorm())
                if conv.bias is None:
                    conv.bias = nn.Parameter(torch.zeros_like(conv.weight[:, 0, 0, 0]))
            layers = list(module.children())  # after the BN -> Identity swaps
            for before, after in zip(layers, layers[1:]):
                if hasattr(after, "inplace") and isinstance(before, (*_INPLACE_AFTER, FoldedBatchNorm)):
                    after.inplace = True
        for p in twin.parameters():
            p.requires_grad_(False)
        self.twin = twin
        self.names = [name for name, _ in twin.named_parameters()] + [name for name, _ in twin.named_buffers()]
        self.tensors = [t for _, t in twin.named_parameters()] + [t for _, t in twin.named_buffers()]

    @property
    def folded(self) -> int:
        """How many conv -> BN pairs were folded."""
        return len(self.folds)

    def state(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The twin's tensors from the source's: pure tensor ops, so it works under vmap."""
        state = {}
        for name in self.names:
            prefix, _, leaf = name.rpartition(".")
            bn = self.folds.get(prefix)
            if bn is None:
                state[name] = params[name] if name in params else buffers[name]
                continue
            scale = torch.rsqrt(buffers[f"{bn}.running_var"] + self.eps[bn])
            if f"{bn}.weight" in params:
                scale = scale * params[f"{bn}.weight"]
            if leaf == "weight":
                state[name] = params[name] * scale.reshape(-1, 1, 1, 1)
            else:
                bias = -buffers[f"{bn}.running_mean"]
                if name in params:
                    bias = bias + params[name]
                bias = bias * scale
                if f"{bn}.bias" in params:
                    bias = bias + params[f"{bn}.bias"]
                state[name] = bias
        return state

    @torch.no_grad()
    def load(self, state: dict[str, torch.Tensor]) -> None:
        """Copy `state` into the twin's own tensors, so `twin(x)` runs it without re-binding."""
        torch._foreach_copy_(self.tensors, [state[name] for name in self.names])

    def forward(self, state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The twin with `state` bound functionally (works under vmap; `load` is cheaper per call)."""
        return torch.func.functional_call(self.twin, state, (x,))

    def to(self, *args, **kwargs) -> "FoldedNet":
        self.twin.to(*args, **kwargs)
        return self
