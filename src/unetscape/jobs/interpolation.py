"""Linear interpolation between two sets of weights (rule interpolate_seeds, and the initial
-> measured line of run_measures): the loss along theta(t) = (1 - t) A + t B."""

from __future__ import annotations

import h5py
import numpy as np
import torch

from unetscape import __version__
from unetscape.atomic import atomic_path
from unetscape.jobs.measured import Log, axis, checkpoint_loss, initial_weights, load_evaluation_set, measured_weights
from unetscape.landscape.interpolation import interpolation_curve
from unetscape.landscape.surface import resolve_batch_size
from unetscape.landscape.surface_io import read_attrs, write_attrs
from unetscape.models.checkpoints import file_sha256, load_checkpoint, read_checkpoint


def interpolation_grid(t) -> np.ndarray:
    """The t values of an interpolation: linspace(min, max, num) with 0 and 1 required on it
    and snapped to exactly 0 and 1 (linspace can miss them by a rounding error)."""
    low, high, num = axis(t)
    ts = np.linspace(low, high, num)
    step = (high - low) / max(num - 1, 1)
    for end in (0.0, 1.0):
        k = int(np.argmin(np.abs(ts - end)))
        if abs(ts[k] - end) > 1e-9 * max(step, 1.0):
            raise ValueError(
                f"landscape.interpolation.t {[low, high, num]} has no point at t = {end:g}: the path must pass "
                f"through both models (choose min, max and num so that {end:g} is one of the linspace values)"
            )
        ts[k] = end
    return ts


def interpolation(
    checkpoint_a, checkpoint_b, dataset_path, out, t: list, evaluation: dict, noise: float, device,
    log: Log = print, bn: str = "geometric", labels: dict | None = None, outcome_path=None,
) -> None:
    """Loss along theta(t) = (1 - t) A + t B over the parameters, BN statistics treated as `bn`
    says (see `interpolation.py`); `labels` (e.g. what A and B are) go into the attributes.
    A or B None (a run without trained weights) writes a NaN curve that says why. `outcome_path`:
    a run's outcome file, so a run trained on a subset is evaluated on its own images."""
    ts = interpolation_grid(t)
    attrs = {"mode": "states", "bn": bn, "unetscape_version": __version__, **(labels or {})}
    if checkpoint_a is None or checkpoint_b is None:
        nan = np.full(len(ts), np.nan)
        write_curve(out, {"t": ts, "loss": nan, "dice": nan, "iou": nan}, attrs)
        log(f"no interpolation: {attrs.get('unavailable', 'a model is missing')}")
        return
    a, b = read_checkpoint(checkpoint_a), read_checkpoint(checkpoint_b)
    if a["arch"] != b["arch"]:
        raise ValueError(f"cannot interpolate between different architectures: {checkpoint_a} and {checkpoint_b}")
    loss = checkpoint_loss(checkpoint_a)
    if checkpoint_loss(checkpoint_b) != loss:
        raise ValueError(f"{checkpoint_a} and {checkpoint_b} were trained with different losses "
                         f"({loss}, {checkpoint_loss(checkpoint_b)}): the path has no one loss to measure")
    model = load_checkpoint(checkpoint_a, device)
    x, y, description = load_evaluation_set(dataset_path, evaluation, noise, device, outcome_path=outcome_path)
    batch_size = resolve_batch_size(evaluation["batch_size"], x)
    curve = interpolation_curve(model, a["state_dict"], b["state_dict"], ts, x, y, batch_size, bn=bn, loss=loss)
    write_curve(out, curve, {
        **attrs,
        # whether `bn` means anything: a network without batch norm has no statistics to treat
        "batch_norm": any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()),
        "loss_function": loss,
        "checkpoint_a": str(checkpoint_a), "checkpoint_a_sha256": file_sha256(checkpoint_a),
        "checkpoint_b": str(checkpoint_b), "checkpoint_b_sha256": file_sha256(checkpoint_b),
        "eval_set": description,
    })
    log(f"interpolation {checkpoint_a} -> {checkpoint_b}: loss at t=0 {curve['loss'][ts == 0][0]:.4f}, "
        f"t=1 {curve['loss'][ts == 1][0]:.4f}, {int(np.isfinite(curve['loss']).sum())}/{len(ts)} points finite")


def write_curve(out, curve: dict, attrs: dict) -> None:
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("t", data=curve["t"])
        f.create_dataset("xcoordinates", data=curve["t"])  # the axis' name in the reference's 1-D files
        f.create_dataset("train_loss", data=curve["loss"])
        f.create_dataset("train_acc", data=100 * np.asarray(curve["dice"]))
        f.create_dataset("dice", data=curve["dice"])
        f.create_dataset("iou", data=curve["iou"])
        write_attrs(f, attrs)


def interpolation_init(checkpoint_dir, outcome_path, dataset_path, out, settings: dict, evaluation: dict,
                       noise: float, device, log: Log = print) -> None:
    """From a run's initial weights (epoch 0) to its measured weights."""
    path, label = measured_weights(checkpoint_dir, outcome_path)
    start, missing = initial_weights(checkpoint_dir, label)
    labels = {"a": "initial weights", "b": label["checkpoint_role"], **label}
    if missing:
        labels["unavailable"] = missing
    interpolation(start, path, dataset_path, out, settings["t"], evaluation, noise, device, log, settings["bn"],
                  labels, outcome_path)


def interpolation_seeds(checkpoint_dirs: list, outcome_paths: list, dataset_path, out, settings: dict,
                        evaluation: dict, noise: float, device, log: Log = print) -> None:
    """Between the measured weights of two runs of one condition (two seeds)."""
    (path_a, label_a), (path_b, label_b) = (measured_weights(c, o) for c, o in zip(checkpoint_dirs, outcome_paths))
    labels = {"a": label_a["checkpoint_role"], "b": label_b["checkpoint_role"],
              "outcome_a": label_a["outcome"], "outcome_b": label_b["outcome"]}
    missing = [lab["unavailable"] for lab in (label_a, label_b) if "unavailable" in lab]
    if missing:
        labels["unavailable"] = "; ".join(missing)
    # Both runs are of one condition, so of one training subset: A's images serve both.
    interpolation(path_a, path_b, dataset_path, out, settings["t"], evaluation, noise, device, log, settings["bn"],
                  labels, outcome_paths[0])


def read_curve(path) -> dict:
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f} | {"attrs": read_attrs(f)}
