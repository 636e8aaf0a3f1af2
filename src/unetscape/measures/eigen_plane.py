"""The plane of the two sharpest directions of the scale-normalised Hessian, as a landscape plane.

A random filter-normalised plane (`landscape.directions`) shows the loss along directions of
typical curvature; this plane shows it along the sharpest. Take the top two unit eigenvectors
v_1, v_2 of H~ = diag(|w|) H diag(|w|) at the measured weights w (`hessian.RelativeHessian`,
from the checked Lanczos of `curvature.curvature_summary_with_eigenvectors`): they are
directions in relative coordinates, w_j (1 + u_j). Mapped back to parameter space,

    d_i = s_i |w| * v_i              (elementwise),   s_i = ||w|| / || |w| * v_i ||,

each direction moves every weight in proportion to its size, as filter normalisation does, and
has length ||d_i|| = ||w||, the norm over every learnable parameter. (A filter-normalised random
direction has length sqrt(sum over filters ||w_f||^2): the norm of the weight tensors it moves,
the same up to the biases and batch-norm parameters it leaves at zero.) Along the axis a d_i,

    L(w + a d_i) = L(w) + a g.d_i + 1/2 lambda~_i s_i^2 a^2 + O(a^3),

since d_i^T H d_i = s_i^2 v_i^T H~ v_i = s_i^2 lambda~_i, the axis's second derivative. The
length matches a random plane's, not the spread: a random direction moves every filter by its
own norm per unit a, while d_i moves weight j by a s_i |v_ij| times its size, and the top
eigenvectors of a trained U-Net are concentrated on few weights (s_i >> 1), so the loss
saturates at far smaller |a| than on a random plane. A grid for this plane is sized from the
second derivative: the quadratic rise reaches dL at |a| = sqrt(2 dL / (lambda~_i s_i^2)). The
two directions are orthogonal in relative coordinates (v_1 . v_2 = 0), not in general in
parameter space. An eigenvector's sign is arbitrary; it is fixed by making the entry of largest
|value| of v_i positive (the first such entry on ties), so a plane is reproducible.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

PLANE = "hessian_eigenvectors"
SCALING = (
    "d_i = s_i |w| * v_i (elementwise) for the unit eigenvectors v_i of diag(|w|) H diag(|w|), "
    "with s_i = ||w|| / || |w| * v_i || so that ||d_i|| = ||w|| over every learnable parameter "
    "(biases and batch-norm parameters included); a filter-normalised random direction has the "
    "length of the weight tensors it moves, sqrt(sum over filters ||w_f||^2), the same up to the "
    "biases and batch-norm parameters it leaves at zero. Each d_i moves every weight in "
    "proportion to its size; the loss along a d_i has second derivative lambda_i s_i^2 at a = 0"
)
SIGN = "each eigenvector v_i is signed so that its entry of largest |value| is positive (the first such entry on ties)"
ORTHOGONALITY = "the directions are orthogonal in relative coordinates (v_1 . v_2 = 0), not in general in parameter space"

Direction = list[torch.Tensor]


def _learnable(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


def signed(vector: torch.Tensor) -> torch.Tensor:
    """`vector` or `-vector`, whichever has its entry of largest |value| positive."""
    k = int(torch.argmax(vector.abs()))  # the first maximal entry on ties
    return -vector if vector[k] < 0 else vector


def eigenvector_directions(
    model: nn.Module,
    vectors: torch.Tensor | Sequence[torch.Tensor],
    parameter_names: Sequence[str] | None = None,
) -> tuple[list[Direction], list[float]]:
    """The plane d_1, d_2 of the first two rows of `vectors` (see the module docstring), and s_1, s_2.

    `vectors` are eigenvectors of the relative Hessian over the model's learnable parameters
    (requires_grad, `named_parameters()` order, flattened and concatenated: the layout of
    `hessian.LossHessian`), top first; `parameter_names`, if given (`RelativeEigenvectors.
    parameter_names`), must be those parameters' names. Each direction is a list of tensors in
    `model.named_parameters()` order, on the CPU in the parameter's dtype (the format
    `landscape.directions.save_directions` writes); a parameter without requires_grad gets 0.
    """
    learnable = _learnable(model)
    if parameter_names is not None and list(parameter_names) != [name for name, _ in learnable]:
        raise ValueError("the eigenvectors were computed for another parameter layout than the model's")
    rows = vectors if isinstance(vectors, torch.Tensor) else torch.stack(list(vectors))
    dim = sum(p.numel() for _, p in learnable)
    if rows.dim() != 2 or rows.shape[0] < 2 or rows.shape[1] != dim:
        raise ValueError(
            f"vectors must be at least 2 rows of the model's {dim} learnable parameters, got shape {tuple(rows.shape)}"
        )
    rows = rows[:2].detach().to("cpu", torch.float64)
    if not torch.isfinite(rows).all():
        raise ValueError("vectors hold non-finite entries")
    weights = torch.cat([p.detach().reshape(-1).to("cpu", torch.float64) for _, p in learnable])
    weight_norm = float(weights.norm())
    directions, scales = [], []
    for i, v in enumerate(rows):
        step = weights.abs() * signed(v)
        length = float(step.norm())
        if not length > 0:
            raise ValueError(f"eigenvector {i + 1} lives on zero weights only: |w| * v is zero, it has no scale")
        scale = weight_norm / length
        pieces = iter((scale * step).split([p.numel() for _, p in learnable]))
        direction = []
        for _, p in model.named_parameters():
            if p.requires_grad:
                direction.append(next(pieces).view(p.shape).to(p.dtype))
            else:
                direction.append(torch.zeros(p.shape, dtype=p.dtype))
        directions.append(direction)
        scales.append(scale)
    return directions, scales


def eigen_plane_attrs(
    values: Sequence[float],
    scales: Sequence[float],
    converged: bool,
    residuals: Sequence[float] | None = None,
    tol: float | None = None,
) -> dict:
    """The attributes a directions or surface file of this plane carries: what the plane is,
    the two relative eigenvalues lambda~_1, lambda~_2 and scales s_1, s_2, each axis's second
    derivative lambda~_i s_i^2, the scaling and sign rules in words, and whether the Lanczos
    solve converged (a plane of unconverged vectors is still a plane, but not of the sharpest
    directions)."""
    values, scales = [float(v) for v in values][:2], [float(s) for s in scales][:2]
    if len(values) != 2 or len(scales) != 2:
        raise ValueError(f"a plane needs 2 eigenvalues and 2 scales, got {len(values)} and {len(scales)}")
    if not all(math.isfinite(v) for v in values + scales):
        raise ValueError(f"eigenvalues and scales must be finite, got {values} and {scales}")
    attrs = {
        "plane": PLANE,
        "hessian": "scale-normalised diag(|w|) H diag(|w|) of the whole-set loss at the measured weights",
        "eigenvalues_relative": values,
        "direction_scales": scales,
        "axis_second_derivatives": [v * s**2 for v, s in zip(values, scales)],
        "scaling": SCALING,
        "sign": SIGN,
        "orthogonality": ORTHOGONALITY,
        "lanczos_converged": bool(converged),
    }
    if residuals is not None:
        attrs["eigenvector_residuals"] = [float(r) for r in residuals][:2]
    if tol is not None:
        attrs["lanczos_tol"] = float(tol)
    return attrs
