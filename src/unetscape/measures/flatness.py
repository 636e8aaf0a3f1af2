"""Flatness, sharpness and norm measures of one trained model, at its final weights.

Every measure takes the loss (or metric) as a callable of a flat parameter vector, so it can be
checked on closed forms; `ModelLoss` builds those callables for a model and a data set, and
`flatness_summary` runs them all for one checkpoint:

    average_sharpness      E_{delta ~ N(0, rho^2 diag(w^2))} L(w + delta) - L(w)
    worst_case_sharpness   max_{||delta / |w| ||_2 <= rho} L(w + delta) - L(w)
    pac_bayes_sigma        the largest sigma whose Gaussian noise costs at most `target` metric
    norm_measures          sum of squared Frobenius norms, log product of norms, distance to init

Conventions. The parameters are ONE flat float64 vector `w`: every learnable tensor of the
measured model in `named_parameters()` order, each flattened with `reshape(-1)` and
concatenated (biases included). A loss is `loss(w) -> float`, a loss with gradient is
`loss_and_gradient(w) -> (float, dL/dw as a flat float64 tensor)`, a metric is
`metric(w) -> float` (higher is better). Every random draw comes from a `torch.Generator`
seeded with the function's `seed` argument and is drawn on the CPU in float64, then moved to
`w`'s device, so a seed gives the same perturbations on every device.

Batch norm. A model is measured with every conv -> BN pair folded into one convolution with a
bias (`fold_batch_norm`, eval mode, running statistics): the perturbations then act on the
weights that compute the output, so they mean the same with and without batch norm. The
measured parameters of a batch-norm U-Net are its folded conv weights and biases (no BN
parameters remain); those of a plain U-Net are its own.

The model-level loss is the one of the surfaces and of `hessian.LossHessian`: eval mode, the
mean over ALL images of the per-image soft Dice loss, summed batch by batch and divided by the
image count once, so it does not depend on the batch size. The metric is the mean per-image
hard Dice (threshold 0.5).
"""

from __future__ import annotations

import contextlib
import copy
import math
from typing import Callable, Mapping

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from unetscape.landscape.folding import FoldedNet
from unetscape.models.losses import hard_dice_per_image, soft_dice_loss_per_image
from unetscape.seeding import derive_seed

Loss = Callable[[torch.Tensor], float]
LossAndGradient = Callable[[torch.Tensor], tuple[float, torch.Tensor]]

PAC_BAYES_STATUSES = ("bracketed", "exceeds_target_at_sigma_lo", "within_target_at_sigma_hi")


# ---------------------------------------------------------------------------------------------
# the measured model


def fold_batch_norm(model: nn.Module, strict: bool = True) -> nn.Module:
    """An eval-mode copy of `model` with every conv -> BN pair folded into one conv with bias.

    In eval mode BN(z) = (z - mean) * s + beta with s = gamma / sqrt(var + eps), so conv -> BN
    computes the same as one convolution with weight W * s and bias (b - mean) * s + beta
    (`landscape.folding.FoldedNet` does the folding). The copy is a plain nn.Module whose
    parameters require gradients, BN layers replaced by nn.Identity; a model without batch norm
    comes back as an eval-mode copy. `model` is not changed. A batch norm that cannot be folded
    (not right after a Conv2d in an nn.Sequential, or without running statistics) raises: its
    parameters would be measured in other units than the convolutions'. With `strict=False` it
    stays as it is (for networks of other makes; `unfolded_batch_norms` counts them).
    """
    net = FoldedNet(model)
    with torch.no_grad():
        params = {name: p.detach() for name, p in model.named_parameters()}
        buffers = {name: b.detach() for name, b in model.named_buffers()}
        net.load(net.state(params, buffers))
    folded = net.twin
    left = [name for name, module in folded.named_modules() if isinstance(module, _BatchNorm)]
    if left and strict:
        raise ValueError(f"batch norm layers {left} cannot be folded into a preceding convolution")
    # FoldedNet lets activations overwrite their input (it only runs forward passes); this copy
    # is differentiated, so it keeps the source model's activations as they were.
    source = dict(model.named_modules())
    for name, module in folded.named_modules():
        if hasattr(module, "inplace") and name in source and hasattr(source[name], "inplace"):
            module.inplace = source[name].inplace
    for p in folded.parameters():
        p.requires_grad_(True)
    return folded.eval()


def unfolded_batch_norms(model: nn.Module) -> int:
    """Batch norms left in a model `fold_batch_norm(strict=False)` returned."""
    return sum(isinstance(m, _BatchNorm) for m in model.modules())


def flat_parameters(model: nn.Module) -> torch.Tensor:
    """The flat float64 vector of `model`'s learnable parameters (the convention above)."""
    return torch.cat([p.detach().reshape(-1).to(torch.float64) for _, p in model.named_parameters() if p.requires_grad])


class ModelLoss:
    """Whole-set Dice loss and hard Dice of a model as functions of its flat parameter vector.

    Works on its own eval-mode copy of `model` (the caller's model is never changed); the
    parameters are that copy's learnable tensors in `named_parameters()` order, `w0` their
    values, which the copy holds again after every evaluation. Counts what it costs: `forward_passes` (whole-set evaluations without gradient)
    and `gradient_passes` (whole-set evaluations with a backward pass).
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64,
                 loss_per_image: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = soft_dice_loss_per_image):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        if x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ValueError(f"need as many masks as images (and at least one), got {x.shape[0]} and {y.shape[0]}")
        self.model = copy.deepcopy(model).eval()
        self.names = [name for name, p in self.model.named_parameters() if p.requires_grad]
        self.params = [p for _, p in self.model.named_parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("the model has no learnable parameters")
        self.sizes = [p.numel() for p in self.params]
        self.dim = sum(self.sizes)
        self.device = self.params[0].device
        self.w0 = flat_parameters(self.model)
        self.x, self.y, self.batch_size, self.count = x, y, batch_size, x.shape[0]
        self.loss_per_image = loss_per_image  # the run's training loss (models.losses)
        self.forward_passes = 0
        self.gradient_passes = 0

    @torch.no_grad()
    def _load(self, w: torch.Tensor) -> None:
        if w.shape != (self.dim,):
            raise ValueError(f"parameter vector of shape {tuple(w.shape)}, expected ({self.dim},)")
        for p, chunk in zip(self.params, w.to(self.device).split(self.sizes)):
            p.copy_(chunk.view_as(p))

    def _batches(self):
        dtype = self.params[0].dtype
        for start in range(0, self.count, self.batch_size):
            # Moved per batch so a large evaluation set can stay on the CPU.
            xb = self.x[start : start + self.batch_size].to(self.device, dtype)
            yb = self.y[start : start + self.batch_size].to(self.device, dtype)
            yield xb, yb

    @contextlib.contextmanager
    def _at(self, w: torch.Tensor):
        """The copy's parameters set to `w` inside, back to `w0` after (so `model` always holds w0)."""
        self._load(w)
        try:
            yield
        finally:
            self._load(self.w0)

    @torch.no_grad()
    def evaluate(self, w: torch.Tensor) -> tuple[float, float]:
        """(soft Dice loss, hard Dice), each the mean over all images, from one pass."""
        loss = dice = 0.0
        with self._at(w):
            for xb, yb in self._batches():
                logits = self.model(xb)
                loss += float(self.loss_per_image(logits, yb).sum(dtype=torch.float64))
                dice += float(hard_dice_per_image(logits, yb).sum())
        self.forward_passes += 1
        return loss / self.count, dice / self.count

    def loss(self, w: torch.Tensor) -> float:
        return self.evaluate(w)[0]

    def dice(self, w: torch.Tensor) -> float:
        return self.evaluate(w)[1]

    def loss_and_gradient(self, w: torch.Tensor) -> tuple[float, torch.Tensor]:
        loss = 0.0
        grad = torch.zeros(self.dim, dtype=torch.float64, device=self.device)
        with self._at(w):
            for xb, yb in self._batches():
                batch = self.loss_per_image(self.model(xb), yb).sum()
                # materialize_grads: a parameter the loss does not reach has zero gradient, not None.
                grads = torch.autograd.grad(batch, self.params, allow_unused=True, materialize_grads=True)
                grad += torch.cat([g.reshape(-1).to(torch.float64) for g in grads])
                loss += float(batch.detach().to(torch.float64))
        self.gradient_passes += 1
        return loss / self.count, grad / self.count


def _generator(seed: int) -> torch.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return torch.Generator(device="cpu").manual_seed(seed)


def _gaussian(dim: int, generator: torch.Generator, device) -> torch.Tensor:
    return torch.randn(dim, generator=generator, dtype=torch.float64).to(device)


def _check_vector(w: torch.Tensor) -> torch.Tensor:
    if not isinstance(w, torch.Tensor) or w.dim() != 1 or w.numel() == 0:
        raise ValueError("w must be a non-empty 1-D tensor (the flat parameter vector)")
    return w.to(torch.float64)


# ---------------------------------------------------------------------------------------------
# 1. adaptive average-case sharpness


def average_sharpness(
    loss: Loss,
    w: torch.Tensor,
    rho: float,
    samples: int = 20,
    seed: int = 0,
    antithetic: bool = True,
    base: float | None = None,
) -> dict:
    """Adaptive average-case sharpness E_delta[L(w + delta)] - L(w), delta ~ N(0, rho^2 diag(w^2)).

    The elementwise-adaptive average sharpness of Andriushchenko et al. 2023 ("A modern look at
    the relationship between sharpness and generalization", their S_avg with c = |w|), the
    noise scaled per coordinate by |w| as in ASAM (Kwon et al. 2021), so that rescaling a
    layer does not change it. Monte Carlo over `samples` seeded draws delta_k = rho * |w| * z_k,
    z_k ~ N(0, I); a coordinate with w_i = 0 does not move.

    `antithetic=True` evaluates each z_k at +delta_k and -delta_k and averages the pair: the
    estimate stays unbiased (the noise is symmetric) while the first-order term g.delta, which
    dominates the variance when the gradient at w is not zero, cancels exactly. Then `samples`
    (loss evaluations) must be even and the standard error is over the samples / 2 pair means.

    Returns {"mean", "se" (standard error of the mean, ddof 1), "samples", "rho", "antithetic",
    "seed", "base" (L(w))}. Costs `samples` loss evaluations, plus one for L(w) unless `base`
    is given.
    """
    w = _check_vector(w)
    if not rho > 0:
        raise ValueError(f"rho must be > 0, got {rho!r}")
    groups = samples // 2 if antithetic else samples
    if groups < 2 or (antithetic and samples % 2):
        need = "an even number >= 4 (antithetic pairs)" if antithetic else "at least 2"
        raise ValueError(f"samples must be {need} for a standard error, got {samples!r}")
    generator = _generator(seed)
    base = loss(w) if base is None else float(base)
    scale = rho * w.abs()
    values = []
    for _ in range(groups):
        delta = scale * _gaussian(w.numel(), generator, w.device)
        if antithetic:
            values.append(0.5 * (loss(w + delta) + loss(w - delta)) - base)
        else:
            values.append(loss(w + delta) - base)
    values_t = torch.tensor(values, dtype=torch.float64)
    return {
        "mean": float(values_t.mean()),
        "se": float(values_t.std(correction=1) / math.sqrt(groups)),
        "samples": samples,
        "rho": float(rho),
        "antithetic": antithetic,
        "seed": seed,
        "base": base,
    }


# ---------------------------------------------------------------------------------------------
# 2. adaptive worst-case sharpness


def worst_case_sharpness(
    loss_and_gradient: LossAndGradient,
    w: torch.Tensor,
    rho: float,
    steps: int = 10,
    step_size: float = 1.0,
    start_radius: float = 0.0,
    seed: int = 0,
    loss: Loss | None = None,
    base: float | None = None,
) -> dict:
    """Adaptive worst-case sharpness max_{||delta / |w| ||_2 <= rho} L(w + delta) - L(w), from below.

    Andriushchenko et al. 2023's S_max with c = |w| and the l2 ball (ASAM's neighbourhood,
    Kwon et al. 2021), by projected gradient ascent in the rescaled variable u = delta / |w|:
    the gradient in u is |w| * grad L(w + u |w|); each step moves u by `step_size` * rho along
    that gradient normalised to unit length, then projects u back onto the ball ||u|| <= rho.
    Ascent starts from u = 0 (`start_radius` = 0) or from a seeded Gaussian direction of
    length `start_radius` * rho (needed at an exact minimum, where the gradient is zero).
    A coordinate with w_i = 0 cannot move (delta_i = u_i |w_i| = 0); its u_i is kept at 0 so it
    takes none of the ball. It stops early when the gradient in u vanishes.

    The value reported is the largest L(w + delta) - L(w) seen at any iterate, including the
    final point: a LOWER BOUND of the true maximum (ascent on a non-concave function can stop
    at a local maximum or short of the boundary).

    Returns {"value", "final" (the last iterate's value), "steps" (gradient steps taken),
    "u_norm" (of the last iterate), "rho", "step_size", "start_radius", "seed", "base"}.
    Costs `steps` gradient evaluations plus one loss evaluation of the final point (with
    `loss_and_gradient` when `loss` is None) and one of L(w) unless `base` is given or the
    ascent starts at u = 0 (its first gradient evaluation is at w).
    """
    w = _check_vector(w)
    if not rho > 0:
        raise ValueError(f"rho must be > 0, got {rho!r}")
    if steps < 1 or not step_size > 0 or start_radius < 0:
        raise ValueError(f"need steps >= 1, step_size > 0, start_radius >= 0; got {steps!r}, {step_size!r}, {start_radius!r}")
    scale = w.abs()
    movable = scale > 0
    u = torch.zeros_like(w)
    if start_radius > 0:
        u = _gaussian(w.numel(), _generator(seed), w.device) * movable
        norm = float(u.norm())
        if norm > 0:
            u *= start_radius * rho / norm
    if base is None and start_radius > 0:
        base = (loss or (lambda v: loss_and_gradient(v)[0]))(w)
    best = -math.inf
    taken = 0
    for _ in range(steps):
        value, grad = loss_and_gradient(w + u * scale)
        if base is None:  # the first point is w itself
            base = value
        best = max(best, value - base)
        grad_u = grad.to(torch.float64) * scale
        norm = float(grad_u.norm())
        if not norm > 0:
            break
        u = u + (step_size * rho / norm) * grad_u
        length = float(u.norm())
        if length > rho:
            u *= rho / length
        taken += 1
    final = (loss or (lambda v: loss_and_gradient(v)[0]))(w + u * scale) - base
    best = max(best, final)
    return {
        "value": best,
        "final": final,
        "steps": taken,
        "u_norm": float(u.norm()),
        "rho": float(rho),
        "step_size": float(step_size),
        "start_radius": float(start_radius),
        "seed": seed,
        "base": float(base),
    }


# ---------------------------------------------------------------------------------------------
# 3. PAC-Bayes flatness


def pac_bayes_sigma(
    metric: Loss,
    w: torch.Tensor,
    target: float = 0.1,
    sigma_range: tuple[float, float] = (1e-4, 1.0),
    iterations: int = 7,
    samples: int = 4,
    seed: int = 0,
    magnitude_aware: bool = False,
    eps: float = 1e-3,
    base: float | None = None,
) -> dict:
    """The largest noise scale sigma whose expected metric drop stays within `target`.

    PAC-Bayes flatness of Jiang et al. 2020 ("Fantastic generalization measures and where to
    find them", their pacbayes.flatness and pacbayes.mag.flatness; after Dziugaite & Roy 2017,
    Dziugaite et al. 2020): the drop is metric(w) - E_z[metric(w + s * z)], z ~ N(0, I), with
    per-coordinate noise scale
        s = sigma                              (plain:  w + N(0, sigma^2 I), measure 1/sigma^2)
        s = sqrt(sigma^2 w^2 + eps^2)          (magnitude-aware, Jiang et al. eps = 1e-3,
                                                measure 1/sigma'^2)
    Each expectation is the mean over the same `samples` seeded draws z_k at every sigma
    (common random numbers: the estimated drop is then a smooth function of sigma, close to
    monotone, and bisection sees no fresh noise at each step).

    Bisection in log space on [sigma_lo, sigma_hi] = `sigma_range`, assuming the drop grows
    with sigma: each of `iterations` steps evaluates the geometric midpoint and keeps the half
    where the drop crosses `target` (drop <= target: sigma is acceptable). An end of the
    interval is evaluated only if no midpoint tested that side. The final bracket is
    [sigma_low, sigma_high], its width a factor (sigma_hi / sigma_lo)^(1 / 2^iterations);
    "sigma" is its geometric midpoint. If even sigma_lo drops more than the target, or even
    sigma_hi stays within it, "status" says so and "sigma" is that end: a bound, not an estimate.
    "monotone" says whether the drops evaluated grow with sigma, as bisection assumes; a model
    whose metric is already poor can gain from noise, and then the crossing found is one of
    several.

    Returns {"sigma", "measure" (1 / sigma^2), "sigma_low", "sigma_high", "status" (one of
    PAC_BAYES_STATUSES), "bracketed", "evaluations" ([[sigma, drop], ...] in order), "monotone", "target",
    "samples", "iterations", "magnitude_aware", "eps", "seed", "base" (metric(w))}. Costs
    samples * (iterations + at most 1) metric evaluations, plus one unless `base` is given.
    """
    w = _check_vector(w)
    lo, hi = (float(s) for s in sigma_range)
    if not 0 < lo < hi:
        raise ValueError(f"sigma_range must satisfy 0 < sigma_lo < sigma_hi, got {sigma_range!r}")
    if not target > 0 or iterations < 1 or samples < 1:
        raise ValueError(f"need target > 0, iterations >= 1, samples >= 1; got {target!r}, {iterations!r}, {samples!r}")
    if magnitude_aware and not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps!r}")
    generator = _generator(seed)
    draws = [_gaussian(w.numel(), generator, w.device) for _ in range(samples)]
    base = metric(w) if base is None else float(base)
    evaluations: list[list[float]] = []

    def drop(sigma: float) -> float:
        s = torch.sqrt(sigma**2 * w**2 + eps**2) if magnitude_aware else sigma
        value = base - sum(metric(w + s * z) for z in draws) / samples
        evaluations.append([sigma, value])
        return value

    lo_tested = hi_tested = False
    for _ in range(iterations):
        mid = math.sqrt(lo * hi)
        if drop(mid) <= target:
            lo, lo_tested = mid, True
        else:
            hi, hi_tested = mid, True
    status = "bracketed"
    if not hi_tested and drop(hi) <= target:
        status, lo = "within_target_at_sigma_hi", hi
    elif not lo_tested and drop(lo) > target:
        status, hi = "exceeds_target_at_sigma_lo", lo
    sigma = math.sqrt(lo * hi)
    ordered = [d for _, d in sorted(evaluations)]
    return {
        "sigma": sigma,
        "measure": 1.0 / sigma**2,
        "sigma_low": lo,
        "sigma_high": hi,
        "status": status,
        "bracketed": status == "bracketed",
        "evaluations": evaluations,
        "monotone": all(a <= b for a, b in zip(ordered, ordered[1:])),
        "target": float(target),
        "samples": samples,
        "iterations": iterations,
        "magnitude_aware": magnitude_aware,
        "eps": float(eps) if magnitude_aware else None,
        "seed": seed,
        "base": base,
    }


# ---------------------------------------------------------------------------------------------
# 4. norm-based baselines


def _layers(named: Mapping[str, torch.Tensor]) -> dict[str, list[torch.Tensor]]:
    layers: dict[str, list[torch.Tensor]] = {}
    for name, tensor in named.items():
        layers.setdefault(name.rpartition(".")[0], []).append(tensor.detach().to(torch.float64))
    return layers


def _named(source: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if isinstance(source, nn.Module):
        return {name: p for name, p in source.named_parameters() if p.requires_grad}
    return dict(source)


def norm_measures(
    params: nn.Module | Mapping[str, torch.Tensor],
    initial: nn.Module | Mapping[str, torch.Tensor] | None = None,
) -> dict:
    """Norm-based baselines (Jiang et al. 2020, "norm-based measures") of the measured parameters.

    A layer is the module that owns parameters (names grouped by their prefix before the last
    dot): its Frobenius norm is that of all its tensors together, ||[W, b]||_F, the bias taken
    as one more column of the layer's affine map. With layers l = 1..d:
        frobenius_sq_sum    sum_l ||W_l||_F^2   (= ||w||_2^2 of the flat vector)
        log_prod_frobenius  log prod_l ||W_l||_F = sum_l log ||W_l||_F
        distance_from_init  ||w - w0||_2       (None without `initial`)
    `params` and `initial` are models (their learnable parameters) or name -> tensor maps with
    the same names and shapes; pass a batch-norm model and its initial weights both through
    `fold_batch_norm` so the norms are of the same parameter set as the other measures.
    """
    named = _named(params)
    if not named:
        raise ValueError("no parameters to measure")
    layers = _layers(named)
    squares = [sum(float((t**2).sum()) for t in tensors) for tensors in layers.values()]
    result = {
        "frobenius_sq_sum": sum(squares),
        "log_prod_frobenius": sum(0.5 * math.log(s) if s > 0 else -math.inf for s in squares),
        "layers": len(layers),
        "distance_from_init": None,
    }
    if initial is not None:
        start = _named(initial)
        if list(start) != list(named):
            raise ValueError(f"initial parameters {list(start)} do not match the measured ones {list(named)}")
        total = 0.0
        for name, tensor in named.items():
            if start[name].shape != tensor.shape:
                raise ValueError(f"initial parameter {name} has shape {tuple(start[name].shape)}, expected {tuple(tensor.shape)}")
            diff = tensor.detach().to(torch.float64) - start[name].detach().to(device=tensor.device, dtype=torch.float64)
            total += float((diff**2).sum())
        result["distance_from_init"] = math.sqrt(total)
    return result


# ---------------------------------------------------------------------------------------------
# all measures of one model

# Cost with these defaults: 98 whole-set forward passes (1 at w shared by all, 40 average, 1
# worst-case final point, 2 x 7 x 4 PAC-Bayes, plus 4 for each PAC-Bayes search that must test
# an end of its range) and 10 gradient passes (each about 3 forward passes): about 130
# forward-pass equivalents per model.
FLATNESS_DEFAULTS = {
    "seed": 0,
    "batch_size": 64,
    "average_rho": 0.05,  # noise std as a fraction of |w_i|
    "average_samples": 40,  # loss evaluations (20 antithetic pairs)
    "worst_rho": 0.1,  # radius of the ball ||delta / |w| ||_2 <= rho
    "worst_steps": 10,  # gradient evaluations
    "worst_step_size": 1.0,  # each step moves u by this fraction of rho
    "worst_start_radius": 0.0,  # start at w; its gradient is not zero at a trained model
    "pac_target": 0.1,  # largest expected hard-Dice drop (absolute)
    "pac_samples": 4,  # draws per expectation, the same at every sigma
    "pac_iterations": 7,  # bisection steps
    "pac_sigma_range": [1e-4, 1.0],  # plain noise std (absolute)
    "pac_magnitude_range": [1e-3, 10.0],  # magnitude-aware sigma' (relative to |w_i|)
    "pac_eps": 1e-3,  # magnitude-aware floor of the noise std (Jiang et al.)
}

SUMMARY_NUMBERS = (
    "average_sharpness",
    "average_sharpness_se",
    "worst_case_sharpness",
    "pac_bayes_sigma",
    "pac_bayes_flatness",
    "pac_bayes_mag_sigma",
    "pac_bayes_mag_flatness",
    "frobenius_sq_sum",
    "log_prod_frobenius",
    "distance_from_init",
)


def resolve_flatness_settings(settings: dict | None) -> dict:
    """Fill flatness settings from `FLATNESS_DEFAULTS` and check them (errors name the key)."""
    settings = {**FLATNESS_DEFAULTS, **(settings or {})}
    unknown = set(settings) - set(FLATNESS_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown flatness settings {sorted(unknown)}")

    def integer(key, low):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"flatness {key} must be an integer >= {low}, got {value!r}")

    def positive(key):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"flatness {key} must be a number > 0, got {value!r}")

    integer("seed", 0)
    for key in ("batch_size", "worst_steps", "pac_iterations", "pac_samples"):
        integer(key, 1)
    integer("average_samples", 4)
    if settings["average_samples"] % 2:
        raise ValueError(f"flatness average_samples must be even (antithetic pairs), got {settings['average_samples']!r}")
    for key in ("average_rho", "worst_rho", "worst_step_size", "pac_target"):
        positive(key)
    start, eps = settings["worst_start_radius"], settings["pac_eps"]
    for key, value in (("worst_start_radius", start), ("pac_eps", eps)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"flatness {key} must be a number >= 0, got {value!r}")
    for key in ("pac_sigma_range", "pac_magnitude_range"):
        value = settings[key]
        if (
            not isinstance(value, (list, tuple))
            or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            or not 0 < value[0] < value[1]
        ):
            raise ValueError(f"flatness {key} must be [low, high] with 0 < low < high, got {value!r}")
        settings[key] = [float(v) for v in value]
    return settings


def _json_float(value) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def flatness_summary(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    initial: nn.Module | None = None,
    settings: dict | None = None,
    log: Callable[[str], None] = print,
    loss_per_image: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = soft_dice_loss_per_image,
) -> dict:
    """Every flatness measure of `model` on images `x`, masks `y`, as a JSON-ready dict (the
    loss: the soft Dice loss, or `loss_per_image`, the run's training loss).

    The model is measured with batch norm folded (`fold_batch_norm`); `initial` (the run's
    initial weights, same architecture) is folded the same way for the distance from
    initialisation. Each measure draws from its own seed, derived from settings["seed"] and the
    measure's name (recorded under "seeds"). L(w) and the hard Dice at w come from one pass
    shared by all measures. "forward_passes" and "gradient_passes" count the whole-set passes
    used. A model whose loss is not finite gets the same keys with null numbers and
    "finite": false.
    """
    settings = resolve_flatness_settings(settings)
    folded = fold_batch_norm(model, strict=False)
    unfolded = unfolded_batch_norms(folded)
    batch_norms = sum(isinstance(m, _BatchNorm) for m in model.modules()) - unfolded
    objective = ModelLoss(folded, x, y, batch_size=settings["batch_size"], loss_per_image=loss_per_image)
    seeds = {name: derive_seed(settings["seed"], f"flatness_{name}") for name in
             ("average", "worst", "pac_bayes", "pac_bayes_mag")}
    w = objective.w0
    loss, dice = objective.evaluate(w)
    log(f"flatness: {objective.dim} parameters ({batch_norms} batch norms folded), {objective.count} images, "
        f"loss {loss:.6g}, dice {dice:.6g}")
    summary = {
        "loss": _json_float(loss),
        "dice": _json_float(dice),
        "finite": math.isfinite(loss) and bool(torch.isfinite(w).all()),
        "parameters": objective.dim,
        "images": objective.count,
        "batch_norms_folded": batch_norms,
        # batch norms of a network of another make that could not be folded (measured as they are)
        "batch_norms_unfolded": unfolded,
        **dict.fromkeys(SUMMARY_NUMBERS),
        "pac_bayes_status": None,
        "pac_bayes_mag_status": None,
        "details": {},
        "seeds": seeds,
        "settings": settings,
    }
    if not summary["finite"]:
        # A diverged run is a result, not a crash: same keys, no numbers.
        log("flatness: the loss or a weight is not finite; no measures computed")
        summary.update(forward_passes=objective.forward_passes, gradient_passes=objective.gradient_passes)
        return summary

    average = average_sharpness(objective.loss, w, settings["average_rho"], settings["average_samples"],
                                seeds["average"], antithetic=True, base=loss)
    log(f"flatness: average sharpness {average['mean']:.6g} +- {average['se']:.2g}")
    worst = worst_case_sharpness(objective.loss_and_gradient, w, settings["worst_rho"], settings["worst_steps"],
                                 settings["worst_step_size"], settings["worst_start_radius"], seeds["worst"],
                                 loss=objective.loss, base=loss)
    log(f"flatness: worst-case sharpness >= {worst['value']:.6g} after {worst['steps']} steps")
    pac = {}
    for name, magnitude, sigma_range in (("pac_bayes", False, settings["pac_sigma_range"]),
                                         ("pac_bayes_mag", True, settings["pac_magnitude_range"])):
        pac[name] = pac_bayes_sigma(objective.dice, w, settings["pac_target"], sigma_range,
                                    settings["pac_iterations"], settings["pac_samples"], seeds[name],
                                    magnitude_aware=magnitude, eps=settings["pac_eps"], base=dice)
        log(f"flatness: {name} sigma {pac[name]['sigma']:.4g} ({pac[name]['status']})")
    norms = norm_measures(folded, fold_batch_norm(initial, strict=False) if initial is not None else None)
    summary.update(
        average_sharpness=_json_float(average["mean"]),
        average_sharpness_se=_json_float(average["se"]),
        worst_case_sharpness=_json_float(worst["value"]),
        pac_bayes_sigma=pac["pac_bayes"]["sigma"],
        pac_bayes_flatness=pac["pac_bayes"]["measure"],
        pac_bayes_status=pac["pac_bayes"]["status"],
        pac_bayes_mag_sigma=pac["pac_bayes_mag"]["sigma"],
        pac_bayes_mag_flatness=pac["pac_bayes_mag"]["measure"],
        pac_bayes_mag_status=pac["pac_bayes_mag"]["status"],
        frobenius_sq_sum=_json_float(norms["frobenius_sq_sum"]),
        log_prod_frobenius=_json_float(norms["log_prod_frobenius"]),
        distance_from_init=_json_float(norms["distance_from_init"]),
        details={"average": average, "worst": worst, **pac, "norms": norms},
        forward_passes=objective.forward_passes,
        gradient_passes=objective.gradient_passes,
    )
    log(f"flatness: {objective.forward_passes} forward and {objective.gradient_passes} gradient passes")
    return summary
