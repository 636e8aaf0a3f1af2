"""1-D linear interpolation between two solutions (Goodfellow et al. 2015; Li et al. 2018).

theta(t) = (1 - t) theta_A + t theta_B over the whole state: learnable parameters and the
batch-norm running mean and variance, as the reference's `states` direction type does.
t outside [0, 1] extrapolates. Integer buffers (BN's num_batches_tracked) are counters, not
coordinates: they are taken from A.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import torch
from torch import nn

from ..evaluation import evaluate


def _check_pair(state_a: dict, state_b: dict) -> None:
    if list(state_a) != list(state_b):
        missing = sorted(set(state_a) ^ set(state_b))
        raise ValueError(f"states have different keys (e.g. {missing[:3]}): not the same architecture")
    for key, a in state_a.items():
        if a.shape != state_b[key].shape:
            raise ValueError(
                f"state entry {key} has shape {tuple(a.shape)} in A, {tuple(state_b[key].shape)} in B"
            )


def interpolate_states(state_a: dict, state_b: dict, ts: Iterable[float]) -> Iterator[dict]:
    """Yield the state at each t; exactly A at t=0 and exactly B at t=1."""
    _check_pair(state_a, state_b)
    for t in ts:
        t = float(t)
        yield {
            key: (1 - t) * a + t * state_b[key] if a.is_floating_point() else a.clone()
            for key, a in state_a.items()
        }


def interpolation_curve(
    model: nn.Module,
    state_a: dict,
    state_b: dict,
    ts: Iterable[float],
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int = 128,
) -> dict:
    """Loss, hard Dice and IoU (per-image means over (x, y)) along the path, in eval mode.

    Each state is loaded into `model` in place; the model's own state and mode are restored
    afterwards. Returns arrays "t", "loss", "dice", "iou".
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
        for k, state in enumerate(interpolate_states(state_a, state_b, ts)):
            model.load_state_dict(state)
            for key, value in evaluate(model, x, y, batch_size).items():
                curve[key][k] = value
    finally:
        model.load_state_dict(original)
        model.train(was_training)
    return {"t": ts, **curve}
