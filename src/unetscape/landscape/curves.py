"""Mode-connecting curves between two solutions (Garipov et al. 2018, "Loss Surfaces, Mode
Connectivity, and Fast Ensembling of DNNs").

Over every learnable parameter, the quadratic Bezier curve with ends A and B and bend C,

    theta(t) = (1 - t)^2 A + 2 t (1 - t) C + t^2 B,        0 <= t <= 1,

is trained by moving C alone to minimise the loss averaged over the curve, E_{t ~ U(0, 1)}
L(theta(t)). C starts at the midpoint (A + B) / 2, where the curve is the straight line
(1 - t) A + t B; each SGD step draws one t and one mini-batch from one seeded generator and
steps C along the gradient of the mini-batch loss at theta(t). The network runs in train mode
while C trains, so batch norm normalises with each mini-batch's own statistics, as in training.

A path (curve or line) is measured at each t of a grid in eval mode after re-estimating the
batch-norm running statistics with one pass over the evaluation images (the `recompute` of
`interpolation.py`; nothing to do for a network without batch norm). That holds at t = 0 and
t = 1 too: the ends are A's and B's parameters exactly (taken, not computed, so bit for bit),
measured with re-estimated statistics rather than their checkpoints' own.

The barrier of a path, over its points with 0 <= t <= 1, compares it with its two ends:

    loss barrier  max_t L(t) - (L(0) + L(1)) / 2
    Dice barrier  (D(0) + D(1)) / 2 - min_t D(t)        (D: hard Dice; a dip, not a peak)

The ends are points of the path, so a loss barrier is never below |L(1) - L(0)| / 2 (a Dice
barrier never below |D(1) - D(0)| / 2): a path that stays between its ends' values has
exactly that barrier.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import partial
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.func import functional_call
from torch.nn.modules.batchnorm import _NormBase

from unetscape.landscape.interpolation import recompute_bn_statistics
from unetscape.training.evaluation import evaluate

Params = dict[str, torch.Tensor]
# (model outputs, targets) -> the loss of each image, shape (n,): `models.losses.loss_per_image`.
PerImageLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# The model as it stands (eval mode) -> {"loss": ..., and any other values to record}.
Measure = Callable[[nn.Module], dict]

SETTING_KEYS = ("steps", "batch_size", "lr", "momentum", "seed", "t", "bn_batch_size")


def _positive_int(settings: dict, key: str) -> int:
    value = settings[key]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"curves.{key} must be a positive integer, got {value!r}")
    return int(value)


def _real(settings: dict, key: str) -> float:
    value = settings[key]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value):
        raise ValueError(f"curves.{key} must be a finite number, got {value!r}")
    return float(value)


def path_grid(t, key: str = "curves.t") -> np.ndarray:
    """linspace(min, max, num) from t = [min, max, num], which must hold 0 and 1 (the two
    models); the points nearest them are snapped to exactly 0 and 1 (linspace can miss them
    by a rounding error). The rule of `jobs.interpolation.interpolation_grid`."""
    if not isinstance(t, (list, tuple)) or len(t) != 3:
        raise ValueError(f"{key} must be [min, max, num], got {t!r}")
    low, high, num = t
    if any(isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) for v in t) \
            or not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{key} must be [min, max, num] of finite numbers, got {t!r}")
    if num != int(num) or num < 2 or not low < high:
        raise ValueError(f"{key} {list(t)} must have min < max and an integer num >= 2")
    low, high, num = float(low), float(high), int(num)
    ts = np.linspace(low, high, num)
    step = (high - low) / (num - 1)
    for end in (0.0, 1.0):
        k = int(np.argmin(np.abs(ts - end)))
        if abs(ts[k] - end) > 1e-9 * max(step, 1.0):
            raise ValueError(
                f"{key} {[low, high, num]} has no point at t = {end:g}: the path must pass through both "
                f"models (choose min, max and num so that {end:g} is one of the linspace values)"
            )
        ts[k] = end
    return ts


@dataclass(frozen=True)
class CurveSettings:
    """How the bend is trained and where the paths are measured (config section `curves`)."""

    steps: int  # SGD steps on the bend
    batch_size: int  # images per step (the whole evaluation set if it holds fewer)
    lr: float
    momentum: float  # heavy-ball momentum, in [0, 1)
    seed: int  # of the generator that draws every t and every mini-batch
    t: tuple  # [min, max, num] of the measuring grid, holding 0 and 1
    bn_batch_size: int  # images per pass when re-estimating batch-norm statistics

    @classmethod
    def from_dict(cls, settings: dict) -> CurveSettings:
        """Check every setting; errors name the key (`curves.<key>`) and say what is wrong."""
        if not isinstance(settings, dict):
            raise ValueError(f"curves must be a mapping of {SETTING_KEYS}, got {type(settings).__name__}")
        missing = [k for k in SETTING_KEYS if k not in settings]
        if missing:
            raise ValueError(f"curves.{missing[0]} is missing (curves needs {', '.join(SETTING_KEYS)})")
        unknown = sorted(set(settings) - set(SETTING_KEYS))
        if unknown:
            raise ValueError(f"curves.{unknown[0]} is not a setting (curves takes {', '.join(SETTING_KEYS)})")
        lr, momentum = _real(settings, "lr"), _real(settings, "momentum")
        if lr <= 0:
            raise ValueError(f"curves.lr must be > 0, got {lr!r}")
        if not 0 <= momentum < 1:
            raise ValueError(f"curves.momentum must be in [0, 1), got {momentum!r}")
        seed = settings["seed"]
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
            raise ValueError(f"curves.seed must be an integer in [0, 2^63), got {seed!r}")
        ts = path_grid(settings["t"])
        return cls(
            steps=_positive_int(settings, "steps"),
            batch_size=_positive_int(settings, "batch_size"),
            lr=lr,
            momentum=momentum,
            seed=int(seed),
            t=(float(ts[0]), float(ts[-1]), len(ts)),
            bn_batch_size=_positive_int(settings, "bn_batch_size"),
        )

    def grid(self) -> np.ndarray:
        return path_grid(list(self.t))

    def as_dict(self) -> dict:
        return {**asdict(self), "t": list(self.t)}


def parameters_of(model: nn.Module) -> Params:
    """A detached copy of every learnable parameter, by name: one end of a path."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def check_ends(end_a: Params, end_b: Params) -> None:
    if list(end_a) != list(end_b):
        different = sorted(set(end_a) ^ set(end_b))
        raise ValueError(f"the two ends have different parameters (e.g. {different[:3]}): not the same architecture")
    for name, a in end_a.items():
        if a.shape != end_b[name].shape:
            raise ValueError(f"parameter {name} has shape {tuple(a.shape)} in A, {tuple(end_b[name].shape)} in B")


def midpoint(end_a: Params, end_b: Params) -> Params:
    """(A + B) / 2: the bend whose curve is the straight line."""
    return {name: (a + end_b[name]) / 2 for name, a in end_a.items()}


def _bezier(end_a: Params, bend: Params, end_b: Params, t: float) -> Params:
    wa, wc, wb = (1 - t) ** 2, 2 * t * (1 - t), t**2
    return {name: wa * a + wc * bend[name] + wb * end_b[name] for name, a in end_a.items()}


def bezier_point(end_a: Params, bend: Params, end_b: Params, t: float) -> Params:
    """theta(t) = (1 - t)^2 A + 2 t (1 - t) C + t^2 B; at t = 0 and t = 1 the ends themselves."""
    t = float(t)
    if t == 0:
        return dict(end_a)
    if t == 1:
        return dict(end_b)
    return _bezier(end_a, bend, end_b, t)


def line_point(end_a: Params, end_b: Params, t: float) -> Params:
    """theta(t) = (1 - t) A + t B (as `interpolation.interpolate_states` mixes parameters); at
    t = 0 and t = 1 the ends themselves."""
    t = float(t)
    if t == 0:
        return dict(end_a)
    if t == 1:
        return dict(end_b)
    return {name: (1 - t) * a + t * end_b[name] for name, a in end_a.items()}


def has_batch_norm(model: nn.Module) -> bool:
    """Whether any normalisation layer keeps running statistics (they are re-estimated along a path)."""
    return any(isinstance(m, _NormBase) and m.track_running_stats for m in model.modules())


def train_bend(
    model: nn.Module,
    end_a: Params,
    end_b: Params,
    x: torch.Tensor,
    y: torch.Tensor,
    per_image_loss: PerImageLoss,
    settings: CurveSettings,
    log: Callable[[str], None] | None = None,
) -> tuple[Params, np.ndarray]:
    """Train the bend C from the midpoint (module docstring); returns C and the mini-batch
    loss of every step.

    `model` supplies the architecture (and its buffers); its parameters are replaced by
    theta(t) through `functional_call`, so gradients reach C alone. Its state and mode are
    restored afterwards. A non-finite loss stops the training there: the remaining steps'
    losses are NaN and C is left as it is (the paths then show what it did).
    """
    check_ends(end_a, end_b)
    device = x.device
    end_a = {k: v.detach().to(device) for k, v in end_a.items()}
    end_b = {k: v.detach().to(device) for k, v in end_b.items()}
    bend = {k: v.clone().requires_grad_(True) for k, v in midpoint(end_a, end_b).items()}
    optimizer = torch.optim.SGD(list(bend.values()), lr=settings.lr, momentum=settings.momentum)
    # t and the mini-batches are drawn on the CPU: the same seed gives the same bend on any device.
    generator = torch.Generator(device="cpu").manual_seed(settings.seed)
    batch_size = min(settings.batch_size, len(x))
    losses = np.full(settings.steps, np.nan)
    every, reported = max(1, settings.steps // 10), 0
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was_training = model.training
    try:
        model.train()
        for step in range(settings.steps):
            t = float(torch.rand((), generator=generator, dtype=torch.float64))
            images = torch.randperm(len(x), generator=generator)[:batch_size].to(device)
            outputs = functional_call(model, _bezier(end_a, bend, end_b, t), (x[images],))
            loss = per_image_loss(outputs, y[images]).mean()
            losses[step] = loss.item()
            if not math.isfinite(losses[step]):
                if log:
                    log(f"bend step {step + 1}/{settings.steps}: loss {losses[step]} at t = {t:.3f}; "
                        "training stopped")
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if log and ((step + 1) % every == 0 or step + 1 == settings.steps):
                log(f"bend step {step + 1}/{settings.steps}: mean loss {losses[reported:step + 1].mean():.4f} "
                    f"over the last {step + 1 - reported} steps")
                reported = step + 1
    finally:
        model.load_state_dict(saved)
        model.train(was_training)
    return {k: v.detach() for k, v in bend.items()}, losses


@torch.no_grad()
def load_parameters(model: nn.Module, params: Params) -> None:
    """Copy `params` into the model's parameters in place (a copy is exact: bit for bit)."""
    for name, p in model.named_parameters():
        p.copy_(params[name])


def set_measure(x: torch.Tensor, y: torch.Tensor, batch_size: int, loss: str = "dice") -> Measure:
    """The measure of every landscape: mean per-image loss `loss`, hard Dice and IoU over (x, y)
    (`training.evaluation.evaluate`)."""
    return lambda model: evaluate(model, x, y, batch_size, loss)


def path_values(
    model: nn.Module,
    point: Callable[[float], Params],
    ts: Iterable[float],
    x: torch.Tensor,
    bn_batch_size: int,
    measure: Measure,
) -> dict:
    """`measure` at theta(t) = point(t) for each t: the parameters are loaded, batch-norm
    statistics re-estimated with one pass over `x` (none without batch norm), then the model
    is measured in eval mode. Returns "t" and one array per key `measure` returns. The
    model's own state and mode are restored afterwards."""
    ts = np.asarray(list(ts), dtype=np.float64)
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was_training = model.training
    device = next(model.parameters()).device
    recompute = has_batch_norm(model)
    values: dict[str, np.ndarray] = {}
    try:
        for k, t in enumerate(ts):
            load_parameters(model, {name: v.to(device) for name, v in point(t).items()})
            if recompute:
                recompute_bn_statistics(model, x, bn_batch_size)
            model.eval()
            with torch.no_grad():
                measured = measure(model)
            for key, value in measured.items():
                values.setdefault(key, np.full(len(ts), np.nan))[k] = value
    finally:
        model.load_state_dict(saved)
        model.train(was_training)
    return {"t": ts, **values}


def _ends(ts: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, float]:
    ts, values = np.asarray(ts, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if ts.shape != values.shape or not ((ts == 0).any() and (ts == 1).any()):
        raise ValueError("a barrier needs values on a grid holding t = 0 and t = 1 exactly")
    inside = values[(ts >= 0) & (ts <= 1)]
    return inside, (values[ts == 0][0] + values[ts == 1][0]) / 2


def loss_barrier(ts, loss) -> float:
    """max over 0 <= t <= 1 of L(t), minus the mean of L(0) and L(1) (NaN if a value is)."""
    inside, ends = _ends(ts, loss)
    return float(np.max(inside) - ends)


def dice_barrier(ts, dice) -> float:
    """The mean of D(0) and D(1), minus the lowest D(t) over 0 <= t <= 1 (NaN if a value is)."""
    inside, ends = _ends(ts, dice)
    return float(ends - np.min(inside))


def _distance(p: Params, q: Params) -> float:
    return math.sqrt(sum(float((p[k].double() - q[k].double()).square().sum()) for k in p))


def mode_connection(
    model: nn.Module,
    end_a: Params,
    end_b: Params,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: CurveSettings,
    per_image_loss: PerImageLoss,
    measure: Measure,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Train the bend between A and B on (x, y), then measure the curve and the straight line
    on the same grid. Returns "t", "curve" and "line" (`path_values` of each), "bend",
    "bend_loss" (per step), "bend_offset" (||C - (A + B) / 2||), "ends_distance"
    (||B - A||), the loss barriers "barrier_curve", "barrier_line" and, where
    `measure` gives "dice", "dice_barrier_curve" and "dice_barrier_line"."""
    ts = settings.grid()
    device = next(model.parameters()).device
    end_a = {k: v.to(device) for k, v in end_a.items()}
    end_b = {k: v.to(device) for k, v in end_b.items()}
    bend, bend_loss = train_bend(model, end_a, end_b, x, y, per_image_loss, settings, log)
    curve = path_values(model, partial(bezier_point, end_a, bend, end_b), ts, x, settings.bn_batch_size, measure)
    line = path_values(model, partial(line_point, end_a, end_b), ts, x, settings.bn_batch_size, measure)
    result = {
        "t": ts, "curve": curve, "line": line, "bend": bend, "bend_loss": bend_loss,
        "barrier_curve": loss_barrier(ts, curve["loss"]), "barrier_line": loss_barrier(ts, line["loss"]),
    }
    # How far training moved the bend, beside how far apart the ends are (Euclidean, all parameters).
    result["bend_offset"] = _distance(bend, midpoint(end_a, end_b))
    result["ends_distance"] = _distance(end_a, end_b)
    if "dice" in curve:
        result["dice_barrier_curve"] = dice_barrier(ts, curve["dice"])
        result["dice_barrier_line"] = dice_barrier(ts, line["dice"])
    return result
