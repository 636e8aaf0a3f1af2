"""Curvature of a run's whole-set loss at its measured weights, in three parametrisations.

`curvature_summary` runs the solvers for one checkpoint and returns a JSON-ready dict: the top
eigenvalues and lambda_min (`lanczos.lanczos_extremes`, checked for skipped eigenvalues), the
non-convexity ratio |lambda_min / lambda_max| that Li et al. (2018) map over their surfaces,
and the Hutchinson trace (`spectral.hutchinson_samples`), each for the raw Hessian
(`hessian.LossHessian`), the Hessian of the batch-norm-folded network and the scale-normalised
Hessian (`hessian.RelativeHessian`); optionally the spectral density.
`curvature_summary_with_eigenvectors` also hands out the relative solve's top eigenvectors
(for the plane of `eigen_plane`), outside the JSON summary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from unetscape.models.losses import soft_dice_loss_per_image

from .hessian import LossHessian, RelativeHessian, has_batch_norm
from .lanczos import ORDERS, lanczos_extremes, nonconvexity
from .spectral import eigenvalue_density, hutchinson_samples, trace_estimate

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
    return _spectrum(operator, settings, log, label)[0]


def _spectrum(operator, settings: dict, log: Callable[[str], None], label: str, min_top: int = 1) -> tuple[dict, dict]:
    """`spectrum_summary` and the Lanczos result it came from (with the eigenvectors).

    The solve asks for at least `min_top` top eigenpairs (as many as the dimension allows);
    the summary still reports the top `settings["k"]`, so its keys mean what they always did.
    """
    k_report = min(settings["k"], operator.dim - 1) if operator.dim > 1 else 1
    extremes = lanczos_extremes(
        operator,
        k_top=max(k_report, min(min_top, operator.dim - 1)) if operator.dim > 1 else 1,
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
    summary = {
        "top_eigenvalues": top[:k_report],
        "top_residuals": extremes["top_residuals"][:k_report],
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
    return summary, extremes



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
    return _curvature_summary(model, x, y, settings, log, loss_per_image, keep_vectors=False)[0]


@dataclass(frozen=True)
class RelativeEigenvectors:
    """The top eigenpairs of the relative solve of `curvature_summary`, kept out of its JSON.

    `vectors` are unit eigenvectors of diag(|w|) H diag(|w|) as float64 rows (n, dim), top
    first (by the settings' `which`), in the coordinates of `parameter_names` (every learnable
    parameter, `named_parameters()` order, flattened and concatenated); `values` and
    `residuals` are their eigenvalues and Ritz residuals ||H~ y - theta y||; `converged` is the
    checked Lanczos flag of the solve (`relative.lanczos_converged` of the summary).
    """

    values: list[float]
    vectors: torch.Tensor
    residuals: list[float]
    converged: bool
    parameter_names: list[str]


def curvature_summary_with_eigenvectors(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: dict | None = None,
    log: Callable[[str], None] = print,
    loss_per_image: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = soft_dice_loss_per_image,
) -> tuple[dict, RelativeEigenvectors | None]:
    """`curvature_summary`, and the top eigenvectors of its relative solve (None if the loss
    is not finite).

    The relative solve asks Lanczos for at least 2 top eigenpairs (a plane needs two), even
    when `settings["k"]` is 1; the summary still reports the top k, so its numbers and keys
    mean what they do in `curvature_summary` (only the step counts of the relative solve
    can differ when k = 1).
    """
    return _curvature_summary(model, x, y, settings, log, loss_per_image, keep_vectors=True)


def _curvature_summary(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: dict | None,
    log: Callable[[str], None],
    loss_per_image: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    keep_vectors: bool,
) -> tuple[dict, RelativeEigenvectors | None]:
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
                "hvp_calls": 0}, None
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
    summary["relative"], relative = _spectrum(
        RelativeHessian(hessian), settings, log, "relative curvature", min_top=2 if keep_vectors else 1
    )
    eigenvectors = None
    if keep_vectors:
        names = [name for name, p in model.named_parameters() if p.requires_grad]  # LossHessian's order
        eigenvectors = RelativeEigenvectors(
            values=list(relative["top"]),
            vectors=relative["top_vectors"].to(torch.float64),
            residuals=list(relative["top_residuals"]),
            converged=bool(relative["converged"]),
            parameter_names=names,
        )
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
    return summary, eigenvectors
