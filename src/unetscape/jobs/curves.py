"""Mode-connecting curves between the measured weights of two seeds (rule connect_seeds): a
trained quadratic Bezier curve and the straight line, measured on the same t grid
(`landscape.curves`, Garipov et al. 2018).

One HDF5 file per pair. Datasets, each over the grid `t`: the curve's values under the
reference tools' 1-D names (`xcoordinates` = t, `train_loss`, `train_acc` = 100 x hard Dice,
`dice`, `iou`, as `jobs.interpolation.write_curve` writes them), the straight line's as
`line_train_loss`, `line_train_acc`, `line_dice`, `line_iou`, and `bend_loss`, the bend's
mini-batch loss at every training step. Attributes: both checkpoints with their sha256, the
barriers, the settings and how batch norm was treated.
"""

from __future__ import annotations

import h5py
import numpy as np

from unetscape import __version__
from unetscape.atomic import atomic_path
from unetscape.jobs.measured import Log, checkpoint_loss, load_evaluation_set, measured_weights
from unetscape.landscape.curves import CurveSettings, has_batch_norm, mode_connection, parameters_of, set_measure
from unetscape.landscape.surface import resolve_batch_size
from unetscape.landscape.surface_io import read_attrs, write_attrs
from unetscape.models.checkpoints import file_sha256, load_checkpoint, read_checkpoint
from unetscape.models.losses import loss_per_image

CURVE_DESCRIPTION = ("quadratic Bezier theta(t) = (1-t)^2 A + 2t(1-t) C + t^2 B over every learnable parameter, "
                     "bend C trained from (A+B)/2 to minimise the loss averaged over t ~ U(0,1) "
                     "(Garipov et al. 2018); line: theta(t) = (1-t) A + t B")
BN_RECOMPUTE = "recompute: one pass over the evaluation images at every t"
BN_NONE = "none: the network has no batch norm"
ENDS = ("t = 0 and t = 1 are A's and B's parameters exactly, measured with batch-norm statistics re-estimated "
        "on the evaluation images (not their checkpoints' own)")
BARRIER = ("loss: max over 0 <= t <= 1 of the loss minus the mean of its values at t = 0 and t = 1; "
           "Dice: the mean of the hard Dice at t = 0 and t = 1 minus its lowest value over 0 <= t <= 1")
VALUES = ("train_loss", "train_acc", "dice", "iou")


def connect_seeds(checkpoint_dirs: list, outcome_paths: list, dataset_path, out, settings: dict, evaluation: dict,
                  noise: float, device, log: Log = print) -> None:
    """Between the measured weights of two runs of one condition (two seeds): train the bend on
    the evaluation images, measure curve and line, write one file. A run without trained
    weights gives a NaN file whose `unavailable` attribute says why."""
    curve_settings = CurveSettings.from_dict(settings)
    ts = curve_settings.grid()
    (path_a, label_a), (path_b, label_b) = (measured_weights(c, o) for c, o in zip(checkpoint_dirs, outcome_paths))
    attrs = {
        "curve": CURVE_DESCRIPTION, "a": label_a["checkpoint_role"], "b": label_b["checkpoint_role"],
        "outcome_a": label_a["outcome"], "outcome_b": label_b["outcome"],
        "settings": curve_settings.as_dict(), "seed": curve_settings.seed, "bn": BN_RECOMPUTE, "ends": ENDS,
        "barrier": BARRIER, "unetscape_version": __version__,
    }
    missing = [lab["unavailable"] for lab in (label_a, label_b) if "unavailable" in lab]
    if missing:
        attrs["unavailable"] = "; ".join(missing)
        write_connection(out, _unavailable(ts, curve_settings.steps), attrs)
        log(f"no curve: {attrs['unavailable']}")
        return
    a, b = read_checkpoint(path_a), read_checkpoint(path_b)
    if a["arch"] != b["arch"]:
        raise ValueError(f"cannot connect different architectures: {path_a} and {path_b}")
    loss = checkpoint_loss(path_a)
    if checkpoint_loss(path_b) != loss:
        raise ValueError(f"{path_a} and {path_b} were trained with different losses "
                         f"({loss}, {checkpoint_loss(path_b)}): the path has no one loss to measure")
    model = load_checkpoint(path_a, device)
    end_a, end_b = parameters_of(model), parameters_of(load_checkpoint(path_b, device))
    # Both runs are of one condition, so of one training subset: A's images serve both.
    x, y, description = load_evaluation_set(dataset_path, evaluation, noise, device, outcome_path=outcome_paths[0])
    measure = set_measure(x, y, resolve_batch_size(evaluation["batch_size"], x), loss)
    log(f"curve {path_a} -> {path_b}: {curve_settings.steps} bend steps on {len(x)} images")
    found = mode_connection(model, end_a, end_b, x, y, curve_settings, loss_per_image(loss), measure, log)
    write_connection(out, found, {
        **attrs,
        "bn": BN_RECOMPUTE if has_batch_norm(model) else BN_NONE,
        "loss_function": loss,
        "checkpoint_a": str(path_a), "checkpoint_a_sha256": file_sha256(path_a),
        "checkpoint_b": str(path_b), "checkpoint_b_sha256": file_sha256(path_b),
        "eval_set": description,
        "bend_offset": found["bend_offset"], "ends_distance": found["ends_distance"],
    })
    log(f"curve {path_a} -> {path_b}: loss barrier {found['barrier_curve']:.4f} on the curve, "
        f"{found['barrier_line']:.4f} on the line; Dice barrier {found['dice_barrier_curve']:.4f} on the curve, "
        f"{found['dice_barrier_line']:.4f} on the line")


def _unavailable(ts: np.ndarray, steps: int) -> dict:
    nan = np.full(len(ts), np.nan)
    path = {"t": ts, "loss": nan, "dice": nan, "iou": nan}
    return {"t": ts, "curve": path, "line": path, "bend_loss": np.full(steps, np.nan),
            **{key: float("nan") for key in ("barrier_curve", "barrier_line", "dice_barrier_curve",
                                             "dice_barrier_line")}}


def _reference_values(path: dict) -> dict:
    """A path's values under the reference tools' 1-D names."""
    return {"train_loss": path["loss"], "train_acc": 100 * np.asarray(path["dice"]), "dice": path["dice"],
            "iou": path["iou"]}


def write_connection(out, found: dict, attrs: dict) -> None:
    """The file of one pair (module docstring); `found` as `landscape.curves.mode_connection`
    returns it. Barrier attributes are taken from `found` where `attrs` lacks them."""
    barriers = {k: found[k] for k in ("barrier_curve", "barrier_line", "dice_barrier_curve", "dice_barrier_line")}
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("t", data=found["t"])
        f.create_dataset("xcoordinates", data=found["t"])  # the axis' name in the reference's 1-D files
        for name, values in _reference_values(found["curve"]).items():
            f.create_dataset(name, data=values)
        for name, values in _reference_values(found["line"]).items():
            f.create_dataset(f"line_{name}", data=values)
        f.create_dataset("bend_loss", data=found["bend_loss"])
        write_attrs(f, {**barriers, **attrs})


def read_connection(path) -> dict:
    """Every dataset of a connection file by name, and its attributes under "attrs"."""
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f} | {"attrs": read_attrs(f)}
