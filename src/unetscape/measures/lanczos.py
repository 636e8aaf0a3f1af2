"""Extreme eigenvalues of a symmetric operator (anything with `hvp(v)` and `dim`), checked.

    lanczos_extremes    Lanczos with full reorthogonalisation and a check for skipped eigenvalues
    top_eigenvalues     the top k (by value or by magnitude)
    lambda_min          the most negative end of the spectrum, same solver
    nonconvexity        Li et al.'s (2018) |lambda_min / lambda_max|

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


Random vectors are drawn on the CPU from one seeded torch.Generator, in a fixed order, and
then moved, so a seed gives the same start vectors on CPU and CUDA.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

ORDERS = ("algebraic", "magnitude")


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

