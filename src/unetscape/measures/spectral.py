"""The trace and the spectral density of a symmetric operator (anything with `hvp(v)` and
`dim`) from random vectors: Hutchinson's estimator (Rademacher z) and stochastic Lanczos
quadrature (Ghorbani et al. 2019, as in PyHessian)."""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

from .lanczos import _Lanczos, _random_vector


def hutchinson_samples(
    hessian,
    samples: int = 100,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    log_every: int = 10,
) -> list[float]:
    """z^T H z for `samples` Rademacher vectors z, in draw order.

    The vectors come from torch.Generator(device="cpu").manual_seed(seed), one
    `torch.randint(0, 2, (dim,), dtype=torch.int8) * 2 - 1` each, so another tool can redraw
    them; their mean estimates tr(H), and samples from other seeds can be pooled.
    """
    if samples < 1:
        raise ValueError(f"need at least 1 sample, got {samples!r}")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    device = getattr(hessian, "device", "cpu")
    values = []
    for i in range(samples):
        z = _random_vector(hessian.dim, generator, device, kind="rademacher")
        values.append(float(z @ hessian.hvp(z).to(torch.float64)))
        if log is not None and ((i + 1) % log_every == 0 or i + 1 == samples) and i > 0:
            log(f"hutchinson sample {i + 1}/{samples}: trace {np.mean(values):.6g} +- {_se(values):.2g}")
    return values


def trace_estimate(values: Sequence[float]) -> tuple[float, float]:
    """The Hutchinson estimate of tr(H) from samples z^T H z: their mean and its standard error."""
    if len(values) < 2:
        raise ValueError(f"need at least 2 samples for a standard error, got {len(values)}")
    return float(np.mean(values)), _se(values)


def hutchinson_trace(
    hessian,
    samples: int = 100,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    log_every: int = 10,
) -> tuple[float, float]:
    """tr(H) ~ mean of z^T H z over Rademacher vectors z, and the standard error of that mean.

    Rademacher (not Gaussian) z: the variance is 2 sum_{i != j} H_ij^2, without the diagonal
    term of the Gaussian estimator (Hutchinson 1989; Avron & Toledo 2011).
    """
    if samples < 2:
        raise ValueError(f"need at least 2 samples for a standard error, got {samples!r}")
    return trace_estimate(hutchinson_samples(hessian, samples, seed, log, log_every))


def _se(values: Sequence[float]) -> float:
    return float(np.std(values, ddof=1) / math.sqrt(len(values)))


def eigenvalue_density(
    hessian,
    n_vectors: int = 1,
    n_steps: int = 30,
    seed: int = 0,
    grid: np.ndarray | None = None,
    sigma: float | None = None,
    points: int = 256,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Spectral density of H by stochastic Lanczos quadrature with Gaussian broadening.

    For each Gaussian start vector, n_steps Lanczos steps give nodes theta_j (the Ritz values)
    and weights tau_j (squared first components of T's eigenvectors): a quadrature for
    v^T f(H) v / |v|^2. The density is the average over vectors of sum_j tau_j N(t; theta_j,
    sigma^2) (Ghorbani et al. 2019; PyHessian), normalised to integrate to 1 over the real line.
    sigma defaults to 1% of the node range; the grid to `points` points spanning the nodes
    plus 5 sigma on each side. Returns {"grid", "density", "nodes", "weights", "sigma"}
    (lists; nodes and weights one list per vector).
    """
    if n_vectors < 1 or n_steps < 1:
        raise ValueError(f"need n_vectors >= 1 and n_steps >= 1, got {n_vectors!r} and {n_steps!r}")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    device = getattr(hessian, "device", "cpu")
    nodes, weights = [], []
    for i in range(n_vectors):
        lanczos = _Lanczos(hessian, _random_vector(hessian.dim, generator, device), generator, n_steps)
        for _ in range(lanczos.max_steps):
            lanczos.step()
        theta, S, _ = lanczos.ritz()
        nodes.append(theta)
        weights.append(S[0, :] ** 2)
        if log is not None:
            log(
                f"density vector {i + 1}/{n_vectors}: {lanczos.steps} lanczos steps, "
                f"nodes in [{theta[0]:.4g}, {theta[-1]:.4g}]"
            )
    all_nodes = np.concatenate(nodes)
    if sigma is None:
        span = float(all_nodes.max() - all_nodes.min())
        sigma = 0.01 * span if span > 0 else max(1e-3 * abs(float(all_nodes[0])), 1e-12)
    if grid is None:
        grid = np.linspace(all_nodes.min() - 5 * sigma, all_nodes.max() + 5 * sigma, points)
    grid = np.asarray(grid, dtype=np.float64)
    density = np.zeros_like(grid)
    for theta, tau in zip(nodes, weights):
        gauss = np.exp(-0.5 * ((grid[:, None] - theta[None, :]) / sigma) ** 2) / (
            sigma * math.sqrt(2 * math.pi)
        )
        density += gauss @ tau
    density /= n_vectors
    return {
        "grid": grid.tolist(),
        "density": density.tolist(),
        "nodes": [t.tolist() for t in nodes],
        "weights": [w.tolist() for w in weights],
        "sigma": float(sigma),
    }

