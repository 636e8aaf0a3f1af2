"""1-D linear interpolation between two solutions (Goodfellow et al. 2015; Li et al. 2018).

theta(t) = (1 - t) theta_A + t theta_B over the learnable parameters, as the reference's
`states` direction type does; integer buffers (BN's num_batches_tracked) are counters, not
coordinates, and are taken from A.

The reference mixes the batch-norm running statistics linearly too. Beyond [0, 1] that
extrapolates the running variances, which turn negative (a BN layer then divides by the square
root of a negative number and the curve is NaN from there on). Two sound treatments, chosen by
`bn`:

    geometric  running means linearly, running variances geometrically,
               var(t) = var_A^(1 - t) * var_B^t: positive for every t, and exactly A's and B's
               statistics at t = 0 and t = 1, so the end points are the two trained models as
               their checkpoints evaluate them (the default)
    recompute  the statistics are re-estimated at every t with one train-mode pass over the
               evaluation images (cumulative average), as mode-connectivity work does (Garipov
               et al. 2018): the path then measures each network with the normalisation it
               would have, at the price of one more pass per point

Without batch norm the two are the same path.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from unetscape.training.evaluation import evaluate

BN_PATHS = ("geometric", "recompute")
# Normalisation layers with running statistics (batch norms, instance norms tracking them).
_BATCH_NORMS = (_NormBase,)


def _check_pair(state_a: dict, state_b: dict) -> None:
    if list(state_a) != list(state_b):
        missing = sorted(set(state_a) ^ set(state_b))
        raise ValueError(f"states have different keys (e.g. {missing[:3]}): not the same architecture")
    for key, a in state_a.items():
        if a.shape != state_b[key].shape:
            raise ValueError(
                f"state entry {key} has shape {tuple(a.shape)} in A, {tuple(state_b[key].shape)} in B"
            )


def interpolate_states(state_a: dict, state_b: dict, ts: Iterable[float], bn: str = "geometric") -> Iterator[dict]:
    """Yield the state at each t; exactly A at t=0 and exactly B at t=1.

    Floating-point entries mix linearly, except BN running variances (keys ending in
    `running_var`), which mix geometrically with bn="geometric" (with bn="recompute" they are
    re-estimated afterwards, so their mix does not matter; it is taken geometric as well).
    """
    if bn not in BN_PATHS:
        raise ValueError(f"bn must be one of {BN_PATHS}, got {bn!r}")
    _check_pair(state_a, state_b)
    for key, a in state_a.items():
        if key.endswith("running_var") and not (bool((a > 0).all()) and bool((state_b[key] > 0).all())):
            raise ValueError(f"state entry {key} has a running variance <= 0: not a batch-norm state")
    for t in ts:
        t = float(t)
        state = {}
        for key, a in state_a.items():
            b = state_b[key]
            if not a.is_floating_point():
                state[key] = a.clone()
            elif key.endswith("running_var"):
                state[key] = a if t == 0 else b if t == 1 else torch.exp((1 - t) * a.log() + t * b.log())
            else:
                state[key] = (1 - t) * a + t * b
        yield state


@torch.no_grad()
def recompute_bn_statistics(model: nn.Module, x: torch.Tensor, batch_size: int) -> None:
    """Re-estimate every BN layer's running statistics from one train-mode pass over `x`
    (cumulative average over the batches); the model is left in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, _BATCH_NORMS) and m.track_running_stats]
    momenta = [m.momentum for m in norms]
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        for start in range(0, len(x), batch_size):
            model(x[start : start + batch_size])
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.eval()


def interpolation_curve(
    model: nn.Module,
    state_a: dict,
    state_b: dict,
    ts: Iterable[float],
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int = 128,
    bn: str = "geometric",
    loss: str = "dice",
) -> dict:
    """Loss, hard Dice and IoU (per-image means over (x, y)) along the path, in eval mode.

    Each state is loaded into `model` in place; the model's own state and mode are restored
    afterwards. `bn` is the batch-norm treatment (module docstring), `loss` the loss
    (`models.losses`, the run's training loss). Returns arrays "t",
    "loss", "dice", "iou" (Dice and IoU NaN exactly where the loss is not finite).
    """
    ts = np.asarray(list(ts), dtype=np.float64)
    device = next(model.parameters()).device
    state_a = {k: v.to(device) for k, v in state_a.items()}
    state_b = {k: v.to(device) for k, v in state_b.items()}
    original = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was_training = model.training
    curve = {key: np.full(len(ts), np.nan) for key in ("loss", "dice", "iou")}
    try:
        model.eval()
        has_bn = any(isinstance(m, _BATCH_NORMS) and m.track_running_stats for m in model.modules())
        for k, state in enumerate(interpolate_states(state_a, state_b, ts, bn)):
            model.load_state_dict(state)
            if bn == "recompute" and has_bn:
                recompute_bn_statistics(model, x, batch_size)
            for key, value in evaluate(model, x, y, batch_size, loss).items():
                curve[key][k] = value
    finally:
        model.load_state_dict(original)
        model.train(was_training)
    return {"t": ts, **curve}
