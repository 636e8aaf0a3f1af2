"""Curvature of the whole-set Dice loss: Hessian-vector products, extreme eigenvalues, trace.

The loss is the one the surfaces plot: the model in eval mode (batch norm uses its running
statistics) and L(theta) = mean over ALL evaluation images of the per-image soft Dice loss.
It is summed batch by batch and divided by the image count once, so L, its gradient and every
Hessian-vector product do not depend on the batch size.

Solvers only need an object with `hvp(v)` and `dim` (`LossHessian` is one):
    top_eigenvalues     Lanczos with full reorthogonalisation and a check for skipped eigenvalues
    lambda_min          the most negative end of the spectrum, same solver
    hutchinson_trace    tr(H) = E[z^T H z] over Rademacher z (Hutchinson 1989)
    eigenvalue_density  stochastic Lanczos quadrature (Ghorbani et al. 2019)
and `curvature_summary` runs them for one checkpoint and returns a JSON-ready dict, with the
non-convexity ratio |lambda_min / lambda_max| that Li et al. (2018) map over their surfaces.

Why a check, and why this one. A small Ritz residual ||H y - theta y|| proves that theta is
near *an* eigenvalue, never that none was skipped: a single-vector Krylov space holds one
vector per distinct eigenvalue, so an exactly repeated eigenvalue is seen once, a cluster
tighter than the tolerance is seen as one converged Ritz value, and an eigenvector nearly
orthogonal to the start vector appears only after many steps. Each lets the k-th reported
value be the (k+1)-th eigenvalue with every residual small. So `lanczos_extremes` decides
convergence in two stages:
  1. Lanczos from a seeded Gaussian vector until every wanted Ritz pair has a small residual.
  2. A check: Lanczos from a fresh seeded Gaussian vector on the Hessian deflated by every
     eigenvector found so far (the run kept orthogonal to them), until its own extreme Ritz
     pairs converge, relative to its own Ritz values. If nothing was skipped, the deflated
     spectrum lies within the reported range (to the tolerance); an extreme beyond the k-th
     reported value (by the chosen order) or below the smallest is an eigenvalue stage 1
     skipped. It is inserted and the check repeats, until a check finds nothing: only then
     is the result `converged`.
The check meets each cause: the second copy of a repeated eigenvalue, or the rest of a
cluster, survives the deflation as an extreme of the deflated Hessian, so each round finds
one more; an eigenvector the first start missed gets a second, independent start. Missing an
eigenvalue then takes two independent seeded starts both nearly orthogonal to it (no Krylov
method can rule that out: a direction every start is orthogonal to is invisible). The price is a
second Lanczos run, whose extremes are the next eigenvalues inward, to the same relative
tolerance as the first (so to a finer absolute one when the rest of the spectrum is small).
The alternatives guarantee less: block Lanczos with block size b sees a multiplicity of at
most b, and per product its Krylov degree is 1/b of single-vector Lanczos, so isolated
extremes converge more slowly; waiting until the k-th Ritz value stops moving is fooled by
the clusters above (it does not move); ARPACK's implicit restarts are single-vector Krylov
too, and with their default basis miss the repeated eigenvalue of the tests just the same.

"Top" is chosen by `which`: "algebraic" (default) orders eigenvalues by value, largest
first, as the surfaces' curvature is read at a minimum; "magnitude" orders by |value|, the
convention of power iteration and PyHessian. lambda_max is the largest algebraic eigenvalue
either way.

Vectors are flat float64 tensors on the model's device, whatever the model's dtype: the
Lanczos recurrence and reorthogonalisation lose accuracy fast in float32. Random vectors are
drawn on the CPU from one seeded torch.Generator, in a fixed order, and then moved, so a seed
gives the same start vectors on CPU and CUDA.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from unetscape.models.losses import soft_dice_loss_per_image

ORDERS = ("algebraic", "magnitude")
CURVATURE_DEFAULTS = {
    "k": 3,  # top eigenvalues to report
    "tol": 1e-4,  # Lanczos: Ritz residual <= tol * |lambda_max|
    "max_iter": 100,  # Lanczos steps (= Hessian-vector products) at most
    "which": "algebraic",  # order of "top": largest algebraic value or largest magnitude
    "trace_samples": 100,  # Hutchinson Rademacher vectors
    "seed": 0,
    "batch_size": 64,
    "density_vectors": 0,  # stochastic Lanczos quadrature start vectors; 0 skips the density
    "density_steps": 30,  # Lanczos steps per density vector
    "density_points": 256,  # grid points of the density curve
    "log_every": 10,  # one progress line per this many Lanczos steps / trace samples
}


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


def _random_vector(dim: int, generator: torch.Generator, device, kind: str = "gaussian") -> torch.Tensor:
    if kind == "rademacher":
        v = torch.randint(0, 2, (dim,), generator=generator, dtype=torch.int8).to(torch.float64) * 2 - 1
    else:
        v = torch.randn(dim, generator=generator, dtype=torch.float64)
    return v.to(device)


def _tridiagonal(alphas: list[float], betas: list[float]) -> np.ndarray:
    m = len(alphas)
    return np.diag(alphas) + np.diag(betas[: m - 1], 1) + np.diag(betas[: m - 1], -1)


class _Lanczos:
    """Symmetric Lanczos with full reorthogonalisation, one step at a time.

    Keeps every basis vector (m x dim float64, grown by doubling) and orthogonalises each new
    vector against all of them twice ("twice is enough", Parlett): without that, converged
    eigenvalues reappear as spurious copies. When the Krylov space becomes invariant (beta ~ 0)
    it restarts from a fresh random vector orthogonal to the basis, with a zero coupling, so
    eigenvalues outside the first invariant subspace can still be found.

    `locked` (p x dim, orthonormal rows) deflates: every vector is also kept orthogonal to
    those rows, so the run is Lanczos on P H P restricted to their complement (P = I - L^T L).
    Since each basis vector q is in that complement, q^T H q = q^T P H P q, and projecting H q
    against the locked rows with the basis gives P H P q.
    """

    def __init__(
        self,
        operator,
        start: torch.Tensor,
        generator: torch.Generator,
        max_steps: int,
        locked: torch.Tensor | None = None,
    ):
        self.operator, self.generator = operator, generator
        self.dim, self.device = operator.dim, start.device
        self.locked = locked if locked is not None and len(locked) else None
        self.free = self.dim - (0 if self.locked is None else len(self.locked))  # dimension of the complement
        # Grown on demand up to max_steps rows: the basis is the memory cost (8 bytes x dim x steps).
        self.max_steps = min(max_steps, self.free)
        rows = max(1, min(16, self.max_steps))
        self.basis = torch.empty(rows, self.dim, dtype=torch.float64, device=self.device)
        self.alphas: list[float] = []
        self.betas: list[float] = []  # betas[j] couples basis[j] and basis[j + 1]
        start = self._orthogonalise(start, 0)
        self.next = start / start.norm()
        self.last_beta = 0.0  # the coupling to the vector after the last one: the residual scale

    @property
    def steps(self) -> int:
        return len(self.alphas)

    def _orthogonalise(self, w: torch.Tensor, m: int) -> torch.Tensor:
        Q = self.basis[:m]
        for _ in range(2):
            w = w - Q.T @ (Q @ w)
            if self.locked is not None:
                w = w - self.locked.T @ (self.locked @ w)
        return w

    def step(self) -> None:
        j = self.steps
        if j == self.max_steps:
            raise RuntimeError(f"Lanczos already took its {self.max_steps} steps")
        if j == self.basis.shape[0]:
            grown = torch.empty(min(2 * j, self.max_steps), self.dim, dtype=torch.float64, device=self.device)
            grown[:j] = self.basis
            self.basis = grown
        q = self.next
        self.basis[j] = q
        w = self.operator.hvp(q).to(torch.float64)
        alpha = float(w @ q)
        w = self._orthogonalise(w, j + 1)
        beta = float(w.norm())
        self.alphas.append(alpha)
        self.last_beta = beta
        if j + 1 == self.free:
            self.next = None  # the basis spans the complement: T is similar to (deflated) H
            return
        scale = max(abs(a) for a in self.alphas) + max(self.betas, default=0.0)
        if beta <= 1e-10 * max(scale, 1e-300):
            # Invariant subspace: the Ritz values so far are exact; carry on in its complement.
            w = self._orthogonalise(_random_vector(self.dim, self.generator, self.device), j + 1)
            self.betas.append(0.0)
            self.last_beta = 0.0
            self.next = w / w.norm()
        else:
            self.betas.append(beta)
            self.next = w / beta

    @property
    def exhausted(self) -> bool:
        return self.next is None

    def ritz(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ritz values (ascending), eigenvectors of T, and residual norms ||H y - theta y||."""
        theta, S = np.linalg.eigh(_tridiagonal(self.alphas, self.betas))
        residuals = self.last_beta * np.abs(S[-1, :])
        return theta, S, residuals

    def ritz_vectors(self, S: np.ndarray) -> torch.Tensor:
        """Ritz vectors (rows) for eigenvector columns S of T."""
        m = self.steps
        return torch.from_numpy(np.ascontiguousarray(S.T)).to(self.device) @ self.basis[:m]


def _top_order(values: np.ndarray, which: str) -> np.ndarray:
    """Indices of `values`, top first by `which`; ties keep their order (stable)."""
    key = np.abs(values) if which == "magnitude" else values
    return np.argsort(-key, kind="stable")


def _wanted(theta: np.ndarray, k_top: int, k_bottom: int, which: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices into ascending `theta`: the top k_top (by `which`), the bottom k_bottom, and all
    that must converge. By magnitude, both extremes must: until the smaller end has converged,
    it may still grow past the larger one, and lambda_max is reported whatever the order."""
    top = _top_order(theta, which)[:k_top]
    bottom = np.arange(len(theta))[:k_bottom]
    needed = [top, bottom]
    if which == "magnitude" and k_top > 0:
        needed.append(np.array([0, len(theta) - 1]))
    return top, bottom, np.unique(np.concatenate(needed)).astype(int)


def _lanczos_run(
    operator,
    generator: torch.Generator,
    k_top: int,
    k_bottom: int,
    which: str,
    tol: float,
    scale: float | None,
    max_steps: int,
    locked: torch.Tensor | None,
    log: Callable[[str], None] | None,
    log_every: int,
    label: str,
) -> dict:
    """One Lanczos run from a fresh seeded start until its wanted Ritz pairs have small residuals.

    Converged when every pair in `needed` has residual <= tol * s (s = the largest Ritz
    magnitude, capped by `scale`), or when the basis spans the whole (deflated) space. Returns the
    Ritz values (ascending), residuals, the index sets, the needed pairs' vectors (rows, in
    `needed` order), steps and whether it converged.
    """
    device = getattr(operator, "device", "cpu")
    lanczos = _Lanczos(operator, _random_vector(operator.dim, generator, device), generator, max_steps, locked)
    converged = False
    for _ in range(lanczos.max_steps):
        lanczos.step()
        theta, S, residuals = lanczos.ritz()
        top, bottom, needed = _wanted(theta, k_top, k_bottom, which)
        # Never more than the run's own largest Ritz magnitude: a run whose Ritz values have
        # not yet grown to the given scale has not explored the operator, however small its
        # residuals look against that scale (a random vector is "converged" if H is small on it).
        s = float(np.abs(theta).max()) if scale is None else min(scale, float(np.abs(theta).max()))
        enough = len(top) == k_top and len(bottom) == k_bottom
        converged = lanczos.exhausted or (enough and bool(np.all(residuals[needed] <= tol * s)))
        if log is not None and (lanczos.steps % log_every == 0 or converged):
            worst = float(residuals[needed].max() / s) if s > 0 else 0.0
            log(
                f"{label} step {lanczos.steps}: top {np.round(theta[top], 6).tolist()}, "
                f"bottom {np.round(theta[bottom], 6).tolist()}, worst residual/scale {worst:.2e}"
            )
        if converged:
            break
    return {
        "theta": theta,
        "residuals": residuals,
        "top": top,
        "bottom": bottom,
        "needed": needed,
        "vectors": lanczos.ritz_vectors(S[:, needed]),
        "steps": lanczos.steps,
        "converged": converged,
        "exhausted": lanczos.exhausted,
        "scale": s,
    }


class _Found:
    """Eigenpairs found so far: values, orthonormal vectors (rows), residuals ||H y - theta y||."""

    def __init__(self, values, vectors: torch.Tensor, residuals):
        self.values = np.asarray(values, dtype=np.float64)
        self.vectors = vectors
        self.residuals = np.asarray(residuals, dtype=np.float64)

    def add(self, value: float, vector: torch.Tensor, residual: float) -> None:
        self.values = np.append(self.values, value)
        self.vectors = torch.cat([self.vectors, vector[None]])
        self.residuals = np.append(self.residuals, residual)

    def top(self, k: int, which: str) -> np.ndarray:
        return _top_order(self.values, which)[:k]

    def bottom(self, k: int) -> np.ndarray:
        return np.argsort(self.values, kind="stable")[:k]


def _skipped(check: dict, found: _Found, k_top: int, k_bottom: int, which: str, margin: float) -> list[int]:
    """Indices (into the check's `needed`) of deflated extremes beyond the reported range.

    The reported range is: the top k_top of `found` by `which` (and, by magnitude, lambda_max
    too) and its k_bottom smallest. An extreme of the deflated Hessian more than `margin`
    beyond it is an eigenvalue the earlier runs skipped.
    """
    theta, needed = check["theta"], list(check["needed"])
    ends = {"largest": len(theta) - 1, "smallest": 0}
    beyond = set()
    if k_top > 0:
        kth = found.values[found.top(k_top, which)[-1]]
        if which == "magnitude":
            beyond |= {i for i in ends.values() if abs(theta[i]) > abs(kth) + margin}
            if theta[ends["largest"]] > found.values.max() + margin:
                beyond.add(ends["largest"])
        elif theta[ends["largest"]] > kth + margin:
            beyond.add(ends["largest"])
    if k_bottom > 0 and theta[ends["smallest"]] < found.values[found.bottom(k_bottom)[-1]] - margin:
        beyond.add(ends["smallest"])
    return sorted(needed.index(i) for i in beyond)


def lanczos_extremes(
    hessian,
    k_top: int = 3,
    k_bottom: int = 0,
    which: str = "algebraic",
    tol: float = 1e-4,
    max_iter: int = 100,
    seed: int = 0,
    scale: float | None = None,
    log: Callable[[str], None] | None = None,
    log_every: int = 10,
    verify: bool = True,
) -> dict:
    """The k_top largest (by `which`) and k_bottom smallest eigenpairs of `hessian`, checked.

    Stage 1: Lanczos until every wanted Ritz pair (theta, y) has residual ||H y - theta y||
    <= tol * s, with s the run's largest Ritz magnitude (an estimate of ||H|| = max |lambda|),
    capped by `scale` if given. For a symmetric H some eigenvalue then lies within tol * s of
    theta (within residual^2 / gap when it is isolated), so the tolerance is relative to the
    spectral norm: eigenvalues near zero are not chased to a relative accuracy they cannot have.

    Stage 2 (`verify`, see the module docstring): Lanczos from a fresh seeded vector on the
    Hessian deflated by every pair found, until its extremes converge by the same rule, with
    its own Ritz magnitudes as the scale (capped by stage 1's s): judged against stage 1's s,
    a deflated Hessian that is small next to lambda_max would look converged on its first,
    random vector, before any skipped eigenvalue could show. An extreme beyond the reported
    range by more than tol * s (stage 1's s) is an eigenvalue stage 1 skipped:
    its Rayleigh quotient and true residual are measured (one more product), it joins the
    found pairs (the k-th reported one moves down), and the check repeats. `converged` is true
    only when every reported residual is within tolerance and (with `verify`) a check found
    nothing; without `verify` it is stage 1's residual test alone, which cannot see a skipped
    eigenvalue. `max_iter` bounds the Lanczos steps (one Hessian-vector product each) of both
    stages together; when they run out, `converged` is false and the values found so far are
    reported. Each inserted eigenvalue costs one more product, counted in "hvp_calls".

    Returns {"top": values, "top_vectors", "bottom", "bottom_vectors", "top_residuals",
    "bottom_residuals", "largest", "steps", "hvp_calls", "converged", "verified", "checks",
    "tol", "scale"}; values are float lists (top: first by `which`; bottom: smallest first),
    vectors float64 (n, dim); "largest" is the largest value found, lambda_max whichever order
    was asked for; "steps" counts the Lanczos steps of every run; "checks" has one entry per
    stage-2 run: {"steps", "largest", "smallest", "found"} (the Ritz extremes of the deflated
    Hessian and the skipped eigenvalues it found).
    """
    if which not in ORDERS:
        raise ValueError(f"which must be one of {ORDERS}, got {which!r}")
    if k_top < 0 or k_bottom < 0 or k_top + k_bottom == 0:
        raise ValueError(f"ask for at least one eigenvalue, got k_top={k_top}, k_bottom={k_bottom}")
    if k_top + k_bottom > hessian.dim:
        raise ValueError(f"{k_top + k_bottom} eigenvalues asked of a {hessian.dim}-dimensional Hessian")
    if not tol > 0 or max_iter < 1:
        raise ValueError(f"need tol > 0 and max_iter >= 1, got {tol!r} and {max_iter!r}")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    first = _lanczos_run(
        hessian, generator, k_top, k_bottom, which, tol, scale, max_iter, None, log, log_every, "lanczos"
    )
    needed = list(first["needed"])
    found = _Found(first["theta"][needed], first["vectors"], first["residuals"][needed])
    s, steps, inserted, checks = first["scale"], first["steps"], 0, []
    # An exhausted run has seen the whole space: its Ritz values are the spectrum, copies included.
    verified = first["exhausted"]
    while verify and first["converged"] and not verified:
        free = hessian.dim - len(found.values)
        if free == 0:
            verified = True  # the found vectors span the space
            break
        if steps == max_iter:
            break
        check = _lanczos_run(
            hessian, generator, min(k_top, 1), min(k_bottom, 1), which, tol, s, max_iter - steps,
            found.vectors, log, log_every, f"lanczos check {len(checks) + 1}",
        )  # fmt: skip
        steps += check["steps"]
        theta = check["theta"]
        record = {"steps": check["steps"], "largest": float(theta[-1]), "smallest": float(theta[0]), "found": []}
        checks.append(record)
        if not check["converged"]:
            break
        skipped = _skipped(check, found, k_top, k_bottom, which, tol * s)
        if not skipped:
            verified = True
            if log is not None:
                log(f"lanczos check {len(checks)}: no eigenvalue beyond the reported ones")
            break
        for i in skipped:
            # The Ritz value is y^T H y already (y is orthogonal to the found vectors); the
            # product measures the residual against H itself, not the deflated operator.
            y = check["vectors"][i]
            hy = hessian.hvp(y).to(torch.float64)
            inserted += 1
            value = float(y @ hy)
            found.add(value, y, float((hy - value * y).norm()))
            record["found"].append(value)
            if scale is None:
                s = max(s, abs(value))
        if log is not None:
            found_now = np.round(record["found"], 6).tolist()
            log(f"lanczos check {len(checks)}: found skipped eigenvalue(s) {found_now}")
    top, bottom = found.top(k_top, which), found.bottom(k_bottom)
    reported = np.concatenate([top, bottom]).astype(int)
    within = bool(np.all(found.residuals[reported] <= tol * s))
    converged = first["converged"] and within and (verified or not verify)
    if log is not None and not converged:
        why = "not verified" if first["converged"] and within else f"not converged to tol {tol:g}"
        log(f"lanczos: {why} after {steps} steps; reporting the values found")
    largest = float(found.values.max()) if k_top > 0 else float(first["theta"][-1])
    return {
        "top": found.values[top].tolist(),
        "top_vectors": found.vectors[top],
        "top_residuals": found.residuals[top].tolist(),
        "bottom": found.values[bottom].tolist(),
        "bottom_vectors": found.vectors[bottom],
        "bottom_residuals": found.residuals[bottom].tolist(),
        "largest": largest,
        "steps": steps,
        "hvp_calls": steps + inserted,
        "converged": converged,
        "verified": verified,
        "checks": checks,
        "tol": tol,
        "scale": s,
    }


def top_eigenvalues(
    hessian,
    k: int = 3,
    tol: float = 1e-4,
    max_iter: int = 100,
    seed: int = 0,
    which: str = "algebraic",
    log: Callable[[str], None] | None = None,
    verify: bool = True,
) -> tuple[list[float], torch.Tensor, dict]:
    """The k top eigenvalues (first by `which`), their unit eigenvectors (k, dim), and info.

    which="algebraic" (default) orders by value: at a trained minimum H is nearly positive
    semi-definite and the reference's lambda_max is the largest positive curvature, so a large
    negative eigenvalue must not displace it (it is reported by `lambda_min`). which=
    "magnitude" orders by |value|, the convention of power iteration and PyHessian. See
    `lanczos_extremes` for the convergence criterion and its check.
    """
    result = lanczos_extremes(
        hessian, k_top=k, which=which, tol=tol, max_iter=max_iter, seed=seed, log=log, verify=verify
    )
    return result["top"], result["top_vectors"], _info(result)


def lambda_min(
    hessian,
    lambda_max: float | None = None,
    tol: float = 1e-4,
    max_iter: int = 100,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    verify: bool = True,
) -> tuple[float, torch.Tensor, dict]:
    """The smallest (most negative) eigenvalue, its eigenvector, and info.

    The bottom of a Hessian spectrum at a minimum sits in the bulk near zero, where Lanczos
    converges slowly; the tolerance is therefore relative to |lambda_max| (pass it, e.g. from
    `top_eigenvalues`), which is the accuracy the ratio lambda_min / lambda_max needs.
    """
    scale = None if lambda_max is None else abs(lambda_max)
    result = lanczos_extremes(
        hessian, k_top=0, k_bottom=1, tol=tol, max_iter=max_iter, seed=seed, scale=scale, log=log, verify=verify
    )
    return result["bottom"][0], result["bottom_vectors"][0], _info(result)


def _info(result: dict) -> dict:
    keys = ("steps", "hvp_calls", "converged", "verified", "checks", "tol", "scale")
    return {key: result[key] for key in keys} | {"residuals": result["top_residuals"] + result["bottom_residuals"]}


def nonconvexity(lambda_min: float, lambda_max: float) -> float:
    """Li et al.'s |lambda_min / lambda_max|, with lambda_min the most negative eigenvalue.

    A positive semi-definite Hessian has no negative eigenvalue, hence ratio 0 (convex);
    NaN where lambda_max <= 0, for which the ratio means nothing.
    """
    if not lambda_max > 0:
        return math.nan
    return abs(min(lambda_min, 0.0) / lambda_max)


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


def resolve_curvature_settings(settings: dict | None) -> dict:
    """Fill curvature settings from `CURVATURE_DEFAULTS` and check them."""
    settings = {**CURVATURE_DEFAULTS, **(settings or {})}
    unknown = set(settings) - set(CURVATURE_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown curvature settings {sorted(unknown)}")
    if settings["which"] not in ORDERS:
        raise ValueError(f"curvature which must be one of {ORDERS}, got {settings['which']!r}")
    for key in (
        "k",
        "max_iter",
        "trace_samples",
        "batch_size",
        "density_steps",
        "density_points",
        "log_every",
    ):
        if isinstance(settings[key], bool) or not isinstance(settings[key], int) or settings[key] < 1:
            raise ValueError(f"curvature {key} must be a positive integer, got {settings[key]!r}")
    if settings["trace_samples"] < 2:
        raise ValueError("curvature trace_samples must be >= 2 (a standard error needs two)")
    if not isinstance(settings["density_vectors"], int) or settings["density_vectors"] < 0:
        raise ValueError(
            f"curvature density_vectors must be an integer >= 0, got {settings['density_vectors']!r}"
        )
    if not isinstance(settings["seed"], int):
        raise ValueError(f"curvature seed must be an integer, got {settings['seed']!r}")
    if not isinstance(settings["tol"], (int, float)) or not settings["tol"] > 0:
        raise ValueError(f"curvature tol must be > 0, got {settings['tol']!r}")
    return settings


EIGENVALUE_ORDER = {
    "algebraic": (
        "algebraic: top_eigenvalues are the top_k largest eigenvalues by value, largest first; "
        "lambda_max is the largest eigenvalue and lambda_min the smallest (most negative)"
    ),
    "magnitude": (
        "magnitude: top_eigenvalues are the top_k eigenvalues of largest absolute value, largest "
        "|value| first (PyHessian's convention), so they may be negative; lambda_max is still the "
        "largest eigenvalue by value and lambda_min the smallest"
    ),
}


def _json_float(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


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


# Which rescaling of the weights moves which numbers (hessian.json, tables, README).
PARAMETRISATIONS = {
    "raw": (
        "the Hessian of the loss in the weights as trained: NOT invariant. Rescaling the "
        "convolutions that feed batch norm by c changes it by 1/c^2 in their block, a ReLU layer "
        "pair rescaled by (c, 1/c) changes it too, with the same function; kept for reference "
        "and never compared across runs"
    ),
    "folded": (
        "the Hessian in the weights of the batch-norm-folded network (each conv -> BN pair one "
        "convolution with bias, eval-mode statistics): invariant to rescaling the convolutions "
        "that feed batch norm (exactly with BN eps = 0; to about eps/var otherwise), not to ReLU "
        "rescaling; for a network without batch norm it is the raw Hessian"
    ),
    "relative": (
        "the scale-normalised Hessian diag(|w|) H diag(|w|) over every learnable parameter: "
        "invariant to rescaling the convolutions that feed batch norm and to ReLU rescaling "
        "between consecutive layers (per tensor or per channel); the numbers the findings compare"
    ),
}
SPECTRUM_NUMBERS = (
    "top_eigenvalues",
    "top_residuals",
    "lambda_max",
    "lambda_min",
    "lambda_min_residual",
    "nonconvexity",
    "lanczos_steps",
    "lanczos_hvp_calls",
    "lanczos_converged",
    "lanczos_verified",
    "lanczos_checks",
    "trace",
    "trace_se",
    "trace_samples_values",
)


def spectrum_summary(operator, settings: dict, log: Callable[[str], None] = print, label: str = "curvature") -> dict:
    """The extreme eigenvalues (one checked Lanczos solve, `lanczos_extremes`), the
    non-convexity ratio and the Hutchinson trace of any symmetric operator with `hvp` and `dim`.

    The trace uses its own Rademacher vectors from the same seed, and every sample is kept
    (`trace_samples_values`, in draw order). NaN -> None, ready for json.dump.
    """
    extremes = lanczos_extremes(
        operator,
        k_top=min(settings["k"], operator.dim - 1) if operator.dim > 1 else 1,
        k_bottom=1 if operator.dim > 1 else 0,
        which=settings["which"],
        tol=settings["tol"],
        max_iter=settings["max_iter"],
        seed=settings["seed"],
        log=log,
        log_every=settings["log_every"],
    )
    top = extremes["top"]
    smallest = extremes["bottom"][0] if extremes["bottom"] else top[-1]
    lam_max = extremes["largest"]  # with which="magnitude", top[0] may be a negative eigenvalue
    samples = hutchinson_samples(
        operator,
        samples=settings["trace_samples"],
        seed=settings["seed"],
        log=log,
        log_every=settings["log_every"],
    )
    trace, trace_se = trace_estimate(samples)
    log(
        f"{label}: lambda_max {lam_max:.6g}, lambda_min {smallest:.6g}, trace {trace:.6g} +- {trace_se:.2g}; "
        f"lanczos {'converged and checked' if extremes['converged'] else 'NOT converged'}"
    )
    return {
        "top_eigenvalues": top,
        "top_residuals": extremes["top_residuals"],
        "lambda_max": lam_max,
        "lambda_min": smallest,
        "lambda_min_residual": extremes["bottom_residuals"][0] if extremes["bottom"] else None,
        "nonconvexity": _json_float(nonconvexity(smallest, lam_max)),
        "lanczos_steps": extremes["steps"],
        "lanczos_hvp_calls": extremes["hvp_calls"],
        "lanczos_converged": extremes["converged"],
        "lanczos_verified": extremes["verified"],
        "lanczos_checks": extremes["checks"],
        "trace": trace,
        "trace_se": trace_se,
        "trace_samples_values": samples,
    }


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def curvature_summary(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: dict | None = None,
    log: Callable[[str], None] = print,
    loss_per_image: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = soft_dice_loss_per_image,
) -> dict:
    """Curvature of the Dice loss (or of `loss_per_image`, the run's training loss) at the
    model's weights, in three parametrisations
    (`PARAMETRISATIONS`): raw (the top-level numbers, as before), `folded` (batch norm folded
    into its convolution) and `relative` (the scale-normalised Hessian, `RelativeHessian`).

    Each is one checked Lanczos solve (`lanczos_extremes`: top k by `which`, and the smallest
    eigenvalue; tolerance relative to the largest Ritz magnitude) and a Hutchinson trace
    (`spectrum_summary`); a network without batch norm has no separate folded solve (its folded
    network is the network: the raw numbers are copied and `folded.same_as_raw` says so).
    Optionally the raw spectral density. Every number is a plain float or list (NaN -> None),
    ready for json.dump; `settings` records what was used, `eigenvalue_order` says in words
    what "top" means and `invariance` which rescalings move which numbers.
    """
    from .flatness import fold_batch_norm  # same layer; flatness folds batch norm the same way

    settings = resolve_curvature_settings(settings)
    hessian = LossHessian(model, x, y, batch_size=settings["batch_size"], loss_per_image=loss_per_image)
    log(f"curvature: {hessian.dim} parameters, {hessian.count} images, batch size {settings['batch_size']}")
    loss = hessian.loss()
    log(f"curvature: loss {loss:.6g}")
    common = {
        "eigenvalue_order": EIGENVALUE_ORDER[settings["which"]],
        "invariance": PARAMETRISATIONS,
        "parameters": hessian.dim,
        "images": hessian.count,
        "settings": settings,
    }
    if not math.isfinite(loss):
        # A diverged run is a result, not a crash: same keys, no curvature numbers.
        log("curvature: the loss is not finite; no curvature computed")
        empty = dict.fromkeys(SPECTRUM_NUMBERS)
        return {"loss": None, **empty, "finite": False, **common, "folded": dict(empty), "relative": dict(empty),
                "hvp_calls": 0}
    raw = spectrum_summary(hessian, settings, log, "raw curvature")
    summary = {"loss": loss, "finite": True, **raw, **common}
    calls = hessian.hvp_calls
    folded_model = None
    if has_batch_norm(model):
        try:
            folded_model = fold_batch_norm(model)
        except ValueError as err:  # a network whose batch norms do not follow a convolution
            summary["folded"] = {**dict.fromkeys(SPECTRUM_NUMBERS), "parameters": None, "same_as_raw": False,
                                 "unavailable": f"batch norm cannot be folded: {err}"}
            log(f"folded curvature: {summary['folded']['unavailable']}")
    if folded_model is not None:
        folded_hessian = LossHessian(folded_model, x, y, batch_size=settings["batch_size"],
                                     loss_per_image=loss_per_image)
        summary["folded"] = {**spectrum_summary(folded_hessian, settings, log, "folded curvature"),
                             "parameters": folded_hessian.dim, "same_as_raw": False}
        calls += folded_hessian.hvp_calls
    elif "folded" not in summary:  # no batch norm: the folded network is the network
        summary["folded"] = {**raw, "parameters": hessian.dim, "same_as_raw": True}
    before = hessian.hvp_calls
    summary["relative"] = spectrum_summary(RelativeHessian(hessian), settings, log, "relative curvature")
    calls += hessian.hvp_calls - before
    if settings["density_vectors"] > 0:
        before = hessian.hvp_calls
        summary["density"] = eigenvalue_density(
            hessian,
            n_vectors=settings["density_vectors"],
            n_steps=settings["density_steps"],
            seed=settings["seed"],
            points=settings["density_points"],
            log=log,
        )
        calls += hessian.hvp_calls - before
    summary["hvp_calls"] = calls
    log(f"curvature: {calls} hessian-vector products in all")
    return summary
