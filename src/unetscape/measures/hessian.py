"""The Hessian of a model's whole-set loss, as an operator with `hvp(v)` and `dim`.

The loss is the one the surfaces plot: the model in eval mode (batch norm uses its running
statistics) and L(theta) = mean over ALL evaluation images of the per-image loss (the soft
Dice loss unless the run trained with another). It is summed batch by batch and divided by the
image count once, so L, its gradient and every Hessian-vector product do not depend on the
batch size. `RelativeHessian` is the scale-normalised diag(|w|) H diag(|w|) of such an operator.

Vectors are flat float64 tensors on the model's device, whatever the model's dtype: the
Lanczos recurrence and reorthogonalisation lose accuracy fast in float32.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from unetscape.models.losses import soft_dice_loss_per_image


class LossHessian:
    """The Hessian of a scalar loss with respect to a list of parameters, as an operator.

    `LossHessian(model, x, y)` is the whole-set Dice loss of `model` on images `x` and masks `y`
    with respect to its learnable parameters (default: every `requires_grad` parameter in
    `named_parameters()` order; pass `params` to restrict). `LossHessian.from_function(params,
    fn)` wraps any loss `fn()` of `params`. The model's parameters, buffers and train/eval mode
    are left exactly as they were; `.grad` is never written.
    """

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int = 64,
        params: Sequence[torch.Tensor] | None = None,
        loss_per_image: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = soft_dice_loss_per_image,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        if x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ValueError(
                f"need as many masks as images (and at least one), got {x.shape[0]} and {y.shape[0]}"
            )
        if params is None:
            params = [p for _, p in model.named_parameters() if p.requires_grad]
        self.model, self.x, self.y, self.batch_size = model, x, y, batch_size
        self.loss_per_image = loss_per_image  # the run's training loss (models.losses)
        self._setup(list(params), count=x.shape[0])

    @classmethod
    def from_function(cls, params: Sequence[torch.Tensor], fn: Callable[[], torch.Tensor]) -> "LossHessian":
        """The Hessian of `fn()` (a scalar computed from `params`) with respect to `params`."""
        self = cls.__new__(cls)
        self.model, self.fn = None, fn
        self._setup(list(params), count=1)
        return self

    def _setup(self, params: list[torch.Tensor], count: int) -> None:
        if not params:
            raise ValueError("no parameters to differentiate with respect to")
        self.params = params
        self.count = count
        self.device = params[0].device
        self.dtype = torch.float64  # of the flat vectors; the model keeps its own dtype
        self.dim = sum(p.numel() for p in params)
        self.hvp_calls = 0

    def _batch_losses(self) -> Iterator[torch.Tensor]:
        """Scalars whose sum, divided by `self.count`, is the loss: one per batch."""
        if self.model is None:
            yield self.fn()
            return
        was_training = self.model.training
        self.model.eval()  # batch norm with running statistics, as on the surfaces
        try:
            dtype = self.params[0].dtype
            for start in range(0, self.count, self.batch_size):
                # Moved per batch so a large evaluation set can stay on the CPU.
                xb = self.x[start : start + self.batch_size].to(self.device, dtype)
                yb = self.y[start : start + self.batch_size].to(self.device, dtype)
                yield self.loss_per_image(self.model(xb), yb).sum()
        finally:
            self.model.train(was_training)

    def _flat(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat([t.reshape(-1).to(self.dtype) for t in tensors])

    def _grads(self, output: torch.Tensor, create_graph: bool = False) -> tuple[torch.Tensor, ...]:
        # materialize_grads: a parameter the loss does not reach has zero gradient, not None.
        return torch.autograd.grad(
            output, self.params, create_graph=create_graph, allow_unused=True, materialize_grads=True
        )

    def loss(self) -> float:
        with torch.no_grad():
            total = sum(batch.to(torch.float64) for batch in self._batch_losses())
        return float(total) / self.count

    def gradient(self) -> torch.Tensor:
        total = torch.zeros(self.dim, dtype=self.dtype, device=self.device)
        for batch in self._batch_losses():
            total += self._flat(self._grads(batch))
        return total / self.count

    def hvp(self, v: torch.Tensor) -> torch.Tensor:
        """H v by double backprop: the gradient of <grad L, v>, accumulated over batches."""
        if v.shape != (self.dim,):
            raise ValueError(f"vector of shape {tuple(v.shape)}, expected ({self.dim},)")
        pieces = [
            chunk.view_as(p).to(p.dtype)
            for chunk, p in zip(v.to(self.device).split([p.numel() for p in self.params]), self.params)
        ]
        total = torch.zeros(self.dim, dtype=self.dtype, device=self.device)
        for batch in self._batch_losses():
            grads = self._grads(batch, create_graph=True)
            dot = sum((g * piece).sum() for g, piece in zip(grads, pieces))
            if dot.requires_grad:  # otherwise the loss is at most linear: H v = 0
                total += self._flat(self._grads(dot))
        self.hvp_calls += 1
        return total / self.count



class RelativeHessian:
    """The scale-normalised Hessian H~ = diag(|w|) H diag(|w|) of a `LossHessian`, as an operator.

    It is the Hessian in relative coordinates, w_i (1 + u_i): the second-order term of the
    adaptive sharpness (Kwon et al. 2021), the matrix of Petzka et al.'s (2021) relative
    flatness. Rescaling parameters by any positive diagonal D with the loss unchanged,
    L(D w) = L(w), turns H into D^-1 H D^-1 and |w| into D |w|, so H~ does not move. Both
    symmetries of the U-Nets are of this kind: a convolution feeding batch norm times c > 0, and
    a ReLU layer pair (its weights and bias times c, the next layer's weights times 1/c), per
    tensor or per channel. Its eigenvalues are in loss units per squared relative change.
    """

    def __init__(self, hessian: LossHessian):
        self.hessian = hessian
        self.scale = torch.cat([p.detach().reshape(-1).abs().to(torch.float64) for p in hessian.params])
        self.dim, self.device, self.dtype = hessian.dim, hessian.device, hessian.dtype

    @property
    def hvp_calls(self) -> int:
        return self.hessian.hvp_calls

    def hvp(self, v: torch.Tensor) -> torch.Tensor:
        v = v.to(self.device, torch.float64)
        return self.scale * self.hessian.hvp(self.scale * v).to(torch.float64)




def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
