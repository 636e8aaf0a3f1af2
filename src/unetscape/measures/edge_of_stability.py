"""Does a run train at its optimiser's edge of stability? Sharpness against 2/lr-type thresholds.

Two curvatures of the training loss, each against the edge its optimiser is known to settle at:

    lambda_max       the largest eigenvalue of the Hessian of the training loss (here: on a fixed
                     evaluation subset, all its images as one batch). Full-batch gradient descent
                     with step lr drives it up to 2/lr and hovers there (Cohen et al. 2021,
                     "Gradient descent on neural networks typically occurs at the edge of
                     stability"); heavy-ball momentum beta moves the edge to 2(1 + beta)/lr,
                     where GD with momentum on a quadratic becomes unstable.
    batch sharpness  E_B[g_B^T H_B g_B / ||g_B||^2]: the curvature of a mini-batch loss along its
                     own gradient, averaged over mini-batches of the training batch size. Small-
                     batch SGD drives it to 2/lr, and SGD with momentum to 2(1 - beta)/lr
                     (Andreyev and Beneventano 2026, "Momentum further constrains sharpness at
                     the edge of stochastic stability", arXiv 2604.14108).

Both are measured in TRAIN mode, as the optimiser's steps see the network: batch norm
normalises with each batch's own statistics (so the loss of a batch is not a sum of per-image
losses, and the evaluation subset enters lambda_max as one batch). Every measurement works on a
copy of the model, so the running statistics of the checkpoint never change. Dropout layers of
the copy are switched off: a fresh random mask at every Hessian-vector product would make the
Hessian a different matrix at every Lanczos step.

A ratio value / threshold of 1 is "at the edge"; the summary counts the checkpoints within 10%
of it (ratio >= 0.9).
"""

from __future__ import annotations

import copy
import math
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from unetscape.models.checkpoints import file_sha256, load_checkpoint, read_checkpoint
from unetscape.models.losses import loss_per_image as loss_per_image_of
from unetscape.seeding import derive_seed

from .hessian import LossHessian
from .lanczos import lanczos_extremes

Log = Callable[[str], None]
LossPerImage = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# About 1.1 s of one CPU thread per checkpoint of the default run's U-Nets (depth 2, width 8,
# 16-px images; 32 evaluation images): a checked lambda_max took 11-26 Lanczos steps at this
# tolerance, and 16 mini-batches of 4 images about 0.3 s. Four checkpoints: about 5 s a run.
SHARPNESS_DEFAULTS = {
    "checkpoints": 4,  # evaluated checkpoints per run, evenly spaced in epoch
    "batches": 16,  # mini-batches averaged for the batch sharpness
    "tol": 1e-3,  # Lanczos: Ritz residual <= tol * |lambda_max|
    "max_iter": 30,  # Lanczos steps (= Hessian-vector products) of both stages together, at most
    "seed": 0,
}
EDGE_FRACTION = 0.9  # "at the edge": within 10% of the threshold

EPOCH_RULE = (
    "at most `checkpoints` saved epochs from the first trained checkpoint (epoch > 0) to the "
    "measured one, both included: for each of `checkpoints` targets evenly spaced from the first "
    "to the last epoch (numpy.linspace), the saved epoch nearest to it (the earlier one on a tie); "
    "an epoch chosen twice is kept once"
)
SUMMARY_RULE = (
    "final_*: the ratios at the measured checkpoint (the last evaluated one; final_lambda_converged "
    "says whether its Lanczos solve converged: if not, the value is a lower bound); max_*: the largest "
    "ratio over the evaluated checkpoints; fraction_*_at_edge: the fraction of them with ratio >= "
    f"{EDGE_FRACTION} (within 10% of the edge). The maximum and fraction count only checkpoints "
    "with a finite ratio and, for lambda_max, a converged Lanczos solve (counted_* says how many)"
)


def resolve_sharpness_settings(settings: dict | None) -> dict:
    """Fill the edge-of-stability settings from `SHARPNESS_DEFAULTS` and check them.

    Errors name the config key, `stability.sharpness.<key>`.
    """
    settings = {**SHARPNESS_DEFAULTS, **(settings or {})}
    unknown = sorted(set(settings) - set(SHARPNESS_DEFAULTS))
    if unknown:
        raise ValueError(f"stability.sharpness.{unknown[0]}: unknown setting (known: {sorted(SHARPNESS_DEFAULTS)})")
    for key, least in (("checkpoints", 2), ("batches", 2), ("max_iter", 1)):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"stability.sharpness.{key} must be an integer >= {least}, got {value!r}")
        settings[key] = int(value)
    tol = settings["tol"]
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < 1:
        raise ValueError(f"stability.sharpness.tol must be a number in (0, 1), got {tol!r}")
    seed = settings["seed"]
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"stability.sharpness.seed must be an integer >= 0, got {seed!r}")
    settings["tol"], settings["seed"] = float(tol), int(seed)
    return settings


def stability_thresholds(lr: float, momentum: float = 0.0) -> dict:
    """The two edges of stability of SGD with step `lr` and heavy-ball momentum `momentum`.

    full_batch = 2(1 + beta)/lr: the largest Hessian eigenvalue at which gradient descent with
    momentum beta (PyTorch's SGD: v <- beta v + g, theta <- theta - lr v) is stable on a
    quadratic; 2/lr without momentum (Cohen et al. 2021). batch = 2(1 - beta)/lr: the batch
    sharpness small-batch SGD settles at, 2/lr without momentum (Andreyev and Beneventano 2026).
    """
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
        raise ValueError(f"momentum must be a number in [0, 1), got {momentum!r}")
    lr, beta = float(lr), float(momentum)
    if beta == 0:
        full_words = (
            "lambda_max of the training loss on the evaluation subset against 2/lr (gradient descent, Cohen et al. 2021)"
        )
        batch_words = "batch sharpness against 2/lr (small-batch SGD, Andreyev and Beneventano 2026)"
    else:
        full_words = (
            "lambda_max of the training loss on the evaluation subset against 2(1+beta)/lr "
            "(heavy-ball gradient descent, Cohen et al. 2021)"
        )
        batch_words = (
            "batch sharpness against 2(1-beta)/lr (small-batch SGD with momentum, Andreyev and Beneventano 2026)"
        )
    return {
        "lr": lr,
        "momentum": beta,
        "full_batch": 2 * (1 + beta) / lr,
        "batch": 2 * (1 - beta) / lr,
        "full_batch_rule": f"full_batch: {full_words}",
        "batch_rule": f"batch: {batch_words}",
    }


def evenly_spaced_epochs(available: Sequence[int], last: int, count: int) -> list[int]:
    """The epochs to evaluate (`EPOCH_RULE`): from the first trained one to `last`, both always in."""
    if count < 1:
        raise ValueError(f"need at least one checkpoint to evaluate, got {count!r}")
    if last not in available:
        raise ValueError(f"epoch {last} is not among the saved epochs {sorted(available)}")
    candidates = sorted(e for e in set(available) if 0 < e <= last)
    if not candidates:
        raise ValueError(f"no trained checkpoint (epoch > 0) up to epoch {last}: saved {sorted(available)}")
    chosen = []
    for target in np.linspace(candidates[0], last, count):
        nearest = min(candidates, key=lambda e: (abs(e - target), e))
        if nearest not in chosen:
            chosen.append(nearest)
    return sorted(chosen)


def checkpoint_training(path) -> dict | None:
    """What the checkpoint's run trained with (lr, momentum, batch_size, noise, loss), or None if
    it does not say (a model trained elsewhere: no learning rate to measure against)."""
    settings = read_checkpoint(path).get("settings") or {}
    if not all(key in settings for key in ("lr", "momentum", "batch_size")):
        return None
    return {
        "lr": float(settings["lr"]),
        "momentum": float(settings["momentum"]),
        "batch_size": int(settings["batch_size"]),
        "noise": float(settings.get("noise", 0.0)),
        "loss": settings.get("loss", "dice"),
    }


# ---- the measurements ------------------------------------------------------------------------


def train_mode_copy(model: nn.Module) -> tuple[nn.Module, list[torch.Tensor]]:
    """A copy of `model` in train mode (dropout off, see the module docstring) and its learnable
    parameters in `named_parameters()` order."""
    twin = copy.deepcopy(model).train()
    for module in twin.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.eval()
    for p in twin.parameters():
        p.grad = None
    return twin, [p for _, p in twin.named_parameters() if p.requires_grad]


def _flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1).to(torch.float64) for t in tensors])


def directional_sharpness(loss_fn: Callable[[], torch.Tensor], params: Sequence[torch.Tensor]) -> float:
    """g^T H g / ||g||^2 of the scalar `loss_fn()` of `params`, g its gradient and H its Hessian.

    One forward pass, one gradient and one Hessian-vector product (double backprop: H g is the
    gradient of <grad L, stop_gradient(g)>); the dot products accumulate in float64, like
    `hessian.LossHessian`. NaN where the loss is not finite or the gradient is zero (no direction).
    """
    params = list(params)
    loss = loss_fn()
    if not math.isfinite(float(loss.detach())):
        return math.nan
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True, materialize_grads=True)
    g = _flat([grad.detach() for grad in grads])
    squared = float(g @ g)
    if not (math.isfinite(squared) and squared > 0):
        return math.nan
    along = sum((grad * grad.detach()).sum() for grad in grads)
    if not along.requires_grad:  # the loss is at most linear in params: no curvature
        return 0.0
    hg = _flat(torch.autograd.grad(along, params, allow_unused=True, materialize_grads=True))
    return float(g @ hg) / squared


def sharpness_batches(count: int, batch_size: int, batches: int, seed: int) -> list[torch.Tensor]:
    """Image indices of `batches` mini-batches of min(batch_size, count) distinct images each.

    Each batch is the start of a fresh permutation from one CPU generator seeded with
    derive_seed(seed, "batches"): a uniform draw without replacement, as one batch of the
    training's shuffled order is, and the same on every device.
    """
    if count < 1 or batch_size < 1 or batches < 1:
        raise ValueError(f"need count, batch_size and batches >= 1, got {count}, {batch_size}, {batches}")
    generator = torch.Generator(device="cpu").manual_seed(derive_seed(seed, "batches"))
    size = min(batch_size, count)
    return [torch.randperm(count, generator=generator)[:size] for _ in range(batches)]


def batch_sharpness(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    batches: int,
    seed: int,
    loss_per_image: LossPerImage,
    noise: float = 0.0,
) -> dict:
    """The batch sharpness: mean over seeded mini-batches B of g_B^T H_B g_B / ||g_B||^2.

    The mini-batch loss is the training loss, the mean of `loss_per_image` over the batch, of the
    model in train mode (on a copy), with the run's Gaussian input noise of std `noise` added to
    every batch as in training (drawn from a CPU generator seeded with derive_seed(seed, "noise")).
    Batches: `sharpness_batches`. Returns {"mean", "se" (standard error over batches, NaN for
    one batch), "values" (in draw order), "batch_size", "batches"}; a batch whose loss is not
    finite gives NaN, and so do the mean and SE then.
    """
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"need as many masks as images (and at least one), got {x.shape[0]} and {y.shape[0]}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    twin, params = train_mode_copy(model)
    dtype = params[0].dtype
    noise_generator = torch.Generator(device="cpu").manual_seed(derive_seed(seed, "noise"))
    values = []
    for indices in sharpness_batches(x.shape[0], batch_size, batches, seed):
        indices = indices.to(x.device)
        xb, yb = x[indices].to(dtype), y[indices].to(dtype)
        if noise > 0:
            xb = xb + noise * torch.randn(xb.shape, generator=noise_generator, dtype=dtype).to(xb.device)
        values.append(directional_sharpness(lambda xb=xb, yb=yb: loss_per_image(twin(xb), yb).mean(), params))
    mean, se = _mean_and_se(values)
    return {"mean": mean, "se": se, "values": values, "batch_size": min(batch_size, x.shape[0]), "batches": batches}


def _mean_and_se(values: Sequence[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        return math.nan, math.nan
    se = float(array.std(ddof=1) / math.sqrt(len(array))) if len(array) > 1 else math.nan
    return float(array.mean()), se


def train_mode_lambda_max(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_per_image: LossPerImage,
    tol: float,
    max_iter: int,
    seed: int,
    log: Log | None = None,
) -> dict:
    """lambda_max of the train-mode training loss mean_i loss_per_image(model(x), y)_i, all of
    `x` as one batch (batch norm with its statistics), by checked Lanczos (`lanczos_extremes`).

    Returns {"lambda_max", "converged", "steps", "residual", "loss"}; where the loss is not
    finite, lambda_max is NaN and nothing is solved.
    """
    twin, params = train_mode_copy(model)
    dtype = params[0].dtype
    xb, yb = x.to(dtype), y.to(dtype)
    hessian = LossHessian.from_function(params, lambda: loss_per_image(twin(xb), yb).mean())
    loss = hessian.loss()
    if not math.isfinite(loss):
        return {"lambda_max": math.nan, "converged": False, "steps": 0, "residual": math.nan, "loss": loss}
    result = lanczos_extremes(hessian, k_top=1, tol=tol, max_iter=max_iter, seed=seed, log=log)
    return {
        "lambda_max": result["largest"],
        "converged": result["converged"],
        "steps": result["steps"],
        "residual": result["top_residuals"][0],
        "loss": loss,
    }


# ---- a run ---------------------------------------------------------------------------------


def _ratio(value: float, threshold: float) -> float:
    return value / threshold if math.isfinite(value) else math.nan


def edge_of_stability(
    checkpoints: Sequence[tuple[int, object]],
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_eval: torch.Tensor,
    y_eval: torch.Tensor,
    settings: dict,
    log: Log = print,
) -> dict:
    """lambda_max and batch sharpness at each checkpoint, against the run's own thresholds.

    `checkpoints`: (epoch, path) pairs of one run, by epoch, the measured one last. The run's lr,
    momentum, batch size, input noise and loss are read from the checkpoints (they must agree).
    lambda_max is of the training loss on (x_eval, y_eval) (`train_mode_lambda_max`, seed
    `settings["seed"]`); the batch sharpness is over `settings["batches"]` mini-batches of the
    training images (x_train, y_train) (`batch_sharpness`), the same batches and noise at every
    checkpoint, so epochs are compared on equal terms. Returns {"rows", "summary", "thresholds",
    "training", "settings", "seeds"}; NaN where a checkpoint's loss is not finite.
    """
    settings = resolve_sharpness_settings(settings)
    if not checkpoints:
        raise ValueError("no checkpoints to evaluate")
    trainings = [checkpoint_training(path) for _, path in checkpoints]
    training = trainings[-1]
    if training is None or any(t != training for t in trainings):
        raise ValueError(
            "the checkpoints must all record the same training settings (lr, momentum, batch_size, noise, "
            f"loss); found {trainings}"
        )
    thresholds = stability_thresholds(training["lr"], training["momentum"])
    per_image = loss_per_image_of(training["loss"])
    device = x_eval.device
    rows = []
    for epoch, path in checkpoints:
        model = load_checkpoint(path, device)
        top = train_mode_lambda_max(
            model, x_eval, y_eval, per_image, settings["tol"], settings["max_iter"], settings["seed"]
        )
        sharp = batch_sharpness(
            model, x_train, y_train, training["batch_size"], settings["batches"], settings["seed"], per_image,
            training["noise"],
        )  # fmt: skip
        row = {
            "epoch": int(epoch),
            "checkpoint": str(path),
            "checkpoint_sha256": file_sha256(path),
            "loss": top["loss"],
            "lambda_max": top["lambda_max"],
            "lambda_converged": top["converged"],
            "lambda_steps": top["steps"],
            "lambda_residual": top["residual"],
            "batch_sharpness": sharp["mean"],
            "batch_sharpness_se": sharp["se"],
            "batch_sharpness_values": sharp["values"],
            "lambda_ratio": _ratio(top["lambda_max"], thresholds["full_batch"]),
            "batch_ratio": _ratio(sharp["mean"], thresholds["batch"]),
        }
        rows.append(row)
        flag = "" if top["converged"] else " (not converged)"
        log(
            f"epoch {epoch}: lambda_max {row['lambda_max']:.4g}{flag} = {row['lambda_ratio']:.3f} x "
            f"{thresholds['full_batch']:.4g}; batch sharpness {row['batch_sharpness']:.4g} +- "
            f"{row['batch_sharpness_se']:.2g} = {row['batch_ratio']:.3f} x {thresholds['batch']:.4g}"
        )
    return {
        "rows": rows,
        "summary": edge_summary(rows),
        "thresholds": thresholds,
        "training": training,
        "settings": settings,
        "seeds": {
            "lanczos_seed": settings["seed"],
            "batches_seed": derive_seed(settings["seed"], "batches"),
            "noise_seed": derive_seed(settings["seed"], "noise"),
        },
    }


def edge_summary(rows: Sequence[dict]) -> dict:
    """The run's summary of its per-checkpoint rows (`SUMMARY_RULE`); the last row is the
    measured checkpoint."""
    summary = {
        "final_epoch": rows[-1]["epoch"],
        "final_lambda_converged": rows[-1]["lambda_converged"],
        "edge_fraction": EDGE_FRACTION,
        "rule": SUMMARY_RULE,
    }
    for name in ("lambda", "batch"):
        key = f"{name}_ratio"
        counted = [
            r[key] for r in rows if math.isfinite(r[key]) and (name == "batch" or r["lambda_converged"])
        ]
        summary[f"final_{key}"] = rows[-1][key]
        summary[f"max_{key}"] = max(counted) if counted else math.nan
        summary[f"fraction_{name}_at_edge"] = (
            sum(ratio >= EDGE_FRACTION for ratio in counted) / len(counted) if counted else math.nan
        )
        summary[f"counted_{name}"] = len(counted)
    return summary
