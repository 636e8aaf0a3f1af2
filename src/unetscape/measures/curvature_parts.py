"""Curvature of each part of a network: where in the U-Net the loss is sharp.

    parameter_parts   the parameter names of each part (encoder levels, bottleneck, decoder
                      levels, head of the built-in U-Net; top-level child modules otherwise)
    part_curvature    per part: lambda_max and trace of the scale-normalised Hessian
                      restricted to the part's parameters

The restriction is block-diagonal: for a part P with parameters w_P, the operator is the
diagonal block H_PP = d^2 L / dw_P^2 of the whole Hessian (the other parameters held at their
measured values), scale-normalised as diag(|w_P|) H_PP diag(|w_P|) (`hessian.RelativeHessian`
of `hessian.LossHessian(..., params=w_P)`). Its trace is the part's share of the whole relative
trace exactly, since a trace is the sum of the diagonal blocks': the parts' traces add up to
tr(diag(|w|) H diag(|w|)). Its lambda_max is the sharpest curvature of the loss along
directions that move only that part; couplings between parts (the off-diagonal blocks) are left
out, so the whole relative lambda_max can exceed every part's (by Cauchy interlacing it is at
least each part's).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from unetscape.models.losses import soft_dice_loss_per_image
from unetscape.models.unet import UNet

from .curvature import CURVATURE_DEFAULTS, resolve_curvature_settings
from .hessian import LossHessian, RelativeHessian
from .lanczos import lanczos_extremes
from .spectral import hutchinson_samples, trace_estimate

# The settings a part solve reads, with the meanings and defaults of `CURVATURE_DEFAULTS`.
PART_SETTINGS = ("tol", "max_iter", "trace_samples", "seed", "batch_size", "log_every")
PART_DEFAULTS = {key: CURVATURE_DEFAULTS[key] for key in PART_SETTINGS}

RESTRICTION = (
    "block-diagonal: each part's numbers are those of diag(|w_P|) H_PP diag(|w_P|), the "
    "scale-normalised Hessian of the loss in the part's parameters w_P alone, every other "
    "parameter held at its measured value; the parts' traces add up to the whole relative "
    "trace, while couplings between parts are left out of their eigenvalues"
)
UNET_PARTS = (
    "encoder1..encoderD: the conv blocks down[0..D-1], from the input down; bottleneck: "
    "down[D]; decoder1..decoderD: the up-convolution up[d-1] and conv block merge[d-1] of "
    "decoder level d, counted from the bottleneck up (decoder1 is the deepest, decoderD the "
    "one at full resolution); head: the final 1x1 convolution"
)
CHILD_PARTS = (
    "one part per top-level child module that owns learnable parameters (named_children()), "
    "and 'other' for parameters held directly by the network"
)


def _learnable_names(model: nn.Module) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]


def _unet_parts(model: UNet, names: list[str]) -> dict[str, list[str]]:
    depth = len(model.down) - 1  # the last block of `down` is the bottleneck
    prefixes: dict[str, tuple[str, ...]] = {}
    for level in range(depth):
        prefixes[f"encoder{level + 1}"] = (f"down.{level}.",)
    prefixes["bottleneck"] = (f"down.{depth}.",)
    # up[0] / merge[0] are built first, for the deepest level: decoder1 sits just above the bottleneck.
    for level in range(depth):
        prefixes[f"decoder{level + 1}"] = (f"up.{level}.", f"merge.{level}.")
    prefixes["head"] = ("head.",)
    parts = {part: [n for n in names if n.startswith(owned)] for part, owned in prefixes.items()}
    return {part: owned for part, owned in parts.items() if owned}  # a frozen part has nothing to measure


def _child_parts(model: nn.Module, names: list[str]) -> dict[str, list[str]]:
    children = [name for name, _ in model.named_children()]
    direct = "other" if "other" not in children else "other_direct"
    parts: dict[str, list[str]] = {child: [] for child in children}
    parts[direct] = []
    for name in names:
        head = name.split(".", 1)[0]
        # A parameter name is "child.rest" or, for one the network holds itself, a bare name.
        parts[head if "." in name and head in parts else direct].append(name)
    return {part: owned for part, owned in parts.items() if owned}


def parameter_parts(model: nn.Module) -> dict[str, list[str]]:
    """The learnable parameters' names (`named_parameters()`, requires_grad) of each part.

    The built-in U-Net (`models.unet.UNet`) of depth D: encoder1..encoderD, bottleneck,
    decoder1..decoderD, head (`UNET_PARTS`; decoder1 is the deepest decoder level). Any other
    network: one part per top-level child module with learnable parameters, in
    `named_children()` order, then "other" for the network's own parameters (`CHILD_PARTS`).
    Names keep `named_parameters()` order within a part; every learnable parameter is in
    exactly one part.
    """
    names = _learnable_names(model)
    if not names:
        raise ValueError("the model has no learnable parameters (none with requires_grad)")
    parts = _unet_parts(model, names) if isinstance(model, UNet) else _child_parts(model, names)
    assigned = [name for owned in parts.values() for name in owned]
    assert sorted(assigned) == sorted(names) and len(set(assigned)) == len(assigned), (
        "every learnable parameter must belong to exactly one part"
    )
    return parts


def resolve_part_settings(settings: dict | None) -> dict:
    """Fill part-curvature settings from `PART_DEFAULTS` and check them as `curvature` does."""
    settings = dict(settings or {})
    unknown = set(settings) - set(PART_SETTINGS)
    if unknown:
        raise ValueError(f"unknown part curvature settings {sorted(unknown)}; allowed: {list(PART_SETTINGS)}")
    resolved = resolve_curvature_settings({**PART_DEFAULTS, **settings})
    return {key: resolved[key] for key in PART_SETTINGS}


# The numbers of each part besides its size and names (None where the loss is not finite).
PART_NUMBERS = ("lambda_max", "lambda_max_residual", "lanczos_converged", "lanczos_verified", "lanczos_steps",
                "trace", "trace_se", "trace_samples_values", "hvp_calls", "trace_share")


def _json_float(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _one_part(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    params: list[torch.Tensor],
    settings: dict,
    loss_per_image: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    log: Callable[[str], None],
    label: str,
) -> dict:
    """lambda_max (checked Lanczos, k = 1) and the Hutchinson trace of one restricted block."""
    hessian = LossHessian(model, x, y, batch_size=settings["batch_size"], params=params,
                          loss_per_image=loss_per_image)
    relative = RelativeHessian(hessian)
    extremes = lanczos_extremes(
        relative,
        k_top=1,
        which="algebraic",
        tol=settings["tol"],
        max_iter=settings["max_iter"],
        seed=settings["seed"],
        log=lambda line: log(f"{label}: {line}"),
        log_every=settings["log_every"],
    )
    samples = hutchinson_samples(relative, settings["trace_samples"], settings["seed"],
                                 log=lambda line: log(f"{label}: {line}"), log_every=settings["log_every"])
    trace, trace_se = trace_estimate(samples)
    return {
        "parameters": hessian.dim,
        "tensors": len(params),
        "lambda_max": _json_float(extremes["largest"]),
        "lambda_max_residual": _json_float(extremes["top_residuals"][0]),
        "lanczos_converged": bool(extremes["converged"]),
        "lanczos_verified": bool(extremes["verified"]),
        "lanczos_steps": extremes["steps"],
        "trace": _json_float(trace),
        "trace_se": _json_float(trace_se),
        "trace_samples_values": [_json_float(v) for v in samples],
        "hvp_calls": hessian.hvp_calls,
    }


def part_curvature(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: dict | None = None,
    loss_per_image: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = soft_dice_loss_per_image,
    log: Callable[[str], None] = print,
    total_trace: float | None = None,
) -> dict:
    """Relative curvature of each part (`parameter_parts`) under the block-diagonal restriction.

    For part P: lambda_max of diag(|w_P|) H_PP diag(|w_P|) by the checked Lanczos
    (`lanczos.lanczos_extremes`, k = 1, algebraic order, with its `converged` flag) and its
    trace by Hutchinson (`spectral.hutchinson_samples`, Rademacher vectors from `seed`: mean,
    standard error and the samples), where H_PP is the Hessian of the whole-set loss (the model
    in eval mode, `hessian.LossHessian`) in the part's parameters alone, the others fixed
    (`RESTRICTION`). `total_trace`, the whole relative trace (e.g. `relative.trace` of
    `curvature.curvature_summary`), adds each part's `trace_share` = trace / total_trace; the
    sum of the parts' traces (`trace_sum`) estimates that same number.

    Settings (`PART_SETTINGS`, meanings as in `CURVATURE_DEFAULTS`): tol, max_iter,
    trace_samples, seed, batch_size, log_every. JSON-ready (NaN -> None); a non-finite loss
    gives the same keys with no numbers.
    """
    settings = resolve_part_settings(settings)
    if total_trace is not None and (
        isinstance(total_trace, bool) or not isinstance(total_trace, (int, float)) or not math.isfinite(total_trace)
    ):
        raise ValueError(f"total_trace must be a finite number or None, got {total_trace!r}")
    parts = parameter_parts(model)
    by_name = dict(model.named_parameters())
    whole = LossHessian(model, x, y, batch_size=settings["batch_size"], loss_per_image=loss_per_image)
    loss = whole.loss()
    log(f"part curvature: {len(parts)} parts, {whole.dim} parameters, {whole.count} images, loss {loss:.6g}")
    result = {
        "restriction": RESTRICTION,
        "parts_rule": UNET_PARTS if isinstance(model, UNet) else CHILD_PARTS,
        "parameters": whole.dim,
        "images": whole.count,
        "loss": _json_float(loss),
        "finite": math.isfinite(loss),
        "settings": settings,
        "total_trace": _json_float(total_trace),
        "parts": {},
    }
    if not math.isfinite(loss):
        # A diverged run is a result, not a crash: same keys, no curvature numbers.
        log("part curvature: the loss is not finite; no curvature computed")
        for part, names in parts.items():
            result["parts"][part] = {"parameters": sum(by_name[n].numel() for n in names), "tensors": len(names),
                                     **dict.fromkeys(PART_NUMBERS), "parameter_names": names}
        result["trace_sum"] = None
        return result
    for part, names in parts.items():
        numbers = _one_part(model, x, y, [by_name[n] for n in names], settings, loss_per_image, log, f"part {part}")
        share = numbers["trace"] / total_trace if total_trace and numbers["trace"] is not None else None
        result["parts"][part] = {**numbers, "trace_share": _json_float(share), "parameter_names": names}
        log(
            f"part {part}: {numbers['parameters']} parameters, lambda_max {_text(numbers['lambda_max'])}"
            f"{'' if numbers['lanczos_converged'] else ' (NOT converged)'}, trace {_text(numbers['trace'])} "
            f"+- {_text(numbers['trace_se'])}, {numbers['hvp_calls']} hessian-vector products"
        )
    traces = [numbers["trace"] for numbers in result["parts"].values()]
    result["trace_sum"] = None if None in traces else float(sum(traces))
    return result


def _text(value: float | None) -> str:
    return "nan" if value is None else f"{value:.6g}"
