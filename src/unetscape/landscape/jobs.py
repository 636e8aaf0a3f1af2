"""What each landscape rule does, from files to files: directions, surface chunks, merge,
1-D lines, interpolations and PCA trajectories. Scripts call these; the math lives in the
modules they import."""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import torch

from .. import __version__
from ..atomic import atomic_path
from ..data import load_dataset
from ..models import file_sha256, load_checkpoint, read_checkpoint
from ..outcomes import read_outcome
from .directions import directions_settings, load_directions, make_directions, parameter_names, save_directions
from .grid import SurfaceGrid
from .interpolation import interpolation_curve
from .surface import SurfaceEvaluator, evaluation_set, resolve_batch_size
from .surface_io import merge_chunk_files, merge_chunks, read_attrs, write_attrs, write_chunk
from .trajectory import fit_pca_plane, plane_extent, save_projection

Log = Callable[[str], None]
CHECKPOINT = re.compile(r"^epoch_(\d+)\.pt$")


def list_checkpoints(checkpoint_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(epoch, path) of every checkpoint of a run, by epoch."""
    checkpoint_dir = Path(checkpoint_dir)
    found = sorted(
        (int(m.group(1)), checkpoint_dir / name)
        for name in os.listdir(checkpoint_dir)
        if (m := CHECKPOINT.match(name))
    )
    if not found:
        raise FileNotFoundError(f"no epoch_NNN.pt checkpoints in {checkpoint_dir}")
    return found


def final_checkpoint(checkpoint_dir: str | os.PathLike) -> Path:
    """The last saved checkpoint (for a diverged run: the last one with finite weights)."""
    return list_checkpoints(checkpoint_dir)[-1][1]


def measured_weights(checkpoint_dir: str | os.PathLike, outcome_path: str | os.PathLike) -> tuple[Path | None, dict]:
    """The checkpoint the landscape jobs of a run measure, and attributes saying what it is.

    The training's outcome file names it (`landscape_checkpoint`): the final weights of a
    finished, collapsed or not converged run, the last finite ones of a diverged run, never
    the initial weights. A run that diverged before saving any trained checkpoint has none:
    the path is None and the attributes hold the reason (`unavailable`).
    """
    outcome = read_outcome(outcome_path)
    attrs = {"outcome": outcome["outcome"], "checkpoint_role": outcome["checkpoint_role"] or "none"}
    name = outcome["landscape_checkpoint"]
    if name is None:
        attrs["unavailable"] = (
            f"no trained weights to measure: the run {outcome['outcome']} "
            f"({outcome['reason']}) before a checkpoint after epoch 0 was saved"
        )
        return None, attrs
    path = Path(checkpoint_dir) / name
    if not path.is_file():
        raise FileNotFoundError(f"{outcome_path} names checkpoint {name}, which is not in {checkpoint_dir}")
    return path, attrs


def checkpoint_attrs(path: Path) -> dict:
    meta = read_checkpoint(path)
    return {"checkpoint": str(path), "checkpoint_sha256": file_sha256(path), "checkpoint_epoch": meta.get("epoch")}


def axis(spec) -> list:
    """A grid axis from config [min, max, num] as stored in attributes."""
    low, high, num = spec
    return [float(low), float(high), int(num)]


def random_plane(checkpoint_dir, outcome_path, out, settings: dict, log: Log = print) -> None:
    """Filter-normalised random plane at the run's measured weights, with its grid."""
    path, label = measured_weights(checkpoint_dir, outcome_path)
    attrs = {
        "plane": "random",
        **directions_settings(settings["seed"], settings["norm"], settings["ignore"], settings["orthogonalize"], 2),
        **label,
        "grid_x": axis(settings["x"]),
        "grid_y": axis(settings["y"]),
    }
    if path is None:
        # Nothing to measure: a plane of zeros (shapes from the initial weights) that says why.
        model = load_checkpoint(list_checkpoints(checkpoint_dir)[0][1])
        zeros = [torch.zeros_like(p) for p in model.parameters()]
        save_directions(out, [zeros, zeros], attrs, parameter_names(model))
        log(f"no random plane: {label['unavailable']}")
        return
    model = load_checkpoint(path)
    directions = make_directions(
        model, settings["seed"], settings["norm"], settings["ignore"], settings["orthogonalize"], ndim=2
    )
    save_directions(out, directions, {**attrs, **checkpoint_attrs(path)}, parameter_names(model))
    log(f"random plane at {path} ({label['checkpoint_role']}): seed {settings['seed']}, {settings['norm']} normalisation")


def trajectory_plane(checkpoint_dir, out, settings: dict, log: Log = print, label: dict | None = None,
                     checkpoints: list | None = None, projection_out=None) -> None:
    """PCA plane of the training path (theta_e - theta_final), the projected path and a grid covering it.

    `checkpoints` ((epoch, path) pairs, default: all of the run) end at the measured weights.
    The directions file also holds sklearn's PCA statistics as datasets (as the reference's
    does); `projection_out` gets the path in the reference's projection-file format.
    """
    checkpoints = checkpoints or list_checkpoints(checkpoint_dir)
    states = [read_checkpoint(p)["state_dict"] for _, p in checkpoints]
    model = load_checkpoint(checkpoints[-1][1])
    pca = fit_pca_plane(states, model, settings["ignore"])
    dx, dy, coords, ratio = pca.dx, pca.dy, pca.coords, pca.explained_variance_ratio
    x_range, y_range = plane_extent(coords, settings["margin"])
    attrs = {
        "plane": "pca",
        "direction_ignore": settings["ignore"],
        **(label or {}),
        **checkpoint_attrs(checkpoints[-1][1]),
        "grid_x": [*x_range, int(settings["num"])],
        "grid_y": [*y_range, int(settings["num"])],
        "path_epochs": [e for e, _ in checkpoints],
        "path_x": coords[:, 0].tolist(),
        "path_y": coords[:, 1].tolist(),
        "explained_variance_ratio": ratio.tolist(),
    }
    save_directions(out, [dx, dy], attrs, parameter_names(model), datasets=pca.statistics())
    if projection_out is not None:
        save_projection(projection_out, coords, attrs["path_epochs"], {"dir_file": str(out), "projection": "cos"})
    log(f"PCA plane of {len(checkpoints)} checkpoints: explained variance {ratio.round(4).tolist()}")


def grid_of(attrs: dict, ndim: int = 2) -> SurfaceGrid:
    return SurfaceGrid.from_config(attrs["grid_x"], attrs["grid_y"] if ndim == 2 else None)


def load_evaluation_set(dataset_path, evaluation: dict, noise: float, device, heldout: bool = False) -> tuple:
    """The images a landscape is evaluated on (`surface.evaluation_set`): a seeded subset of the
    training images, or with `heldout` of the held-out images (`evaluation.heldout_subset`).
    The held-out choice is seeded from the same seed; its description says which part it is."""
    dataset = load_dataset(dataset_path)
    part = dataset.heldout if heldout else dataset
    if part is None:
        raise ValueError(f"{dataset_path} has no held-out part to evaluate on")
    x, y, description = evaluation_set(
        part.images,
        part.masks,
        evaluation["heldout_subset"] if heldout else evaluation["subset"],
        evaluation["seed"],
        noise,
        evaluation["noise"],
        evaluation["seed"],
        device,
    )
    return x, y, {**description, "part": "heldout" if heldout else "training"}


def has_heldout(dataset_path, evaluation: dict) -> bool:
    """Whether landscapes are also evaluated on the data set's held-out part."""
    return evaluation.get("heldout_subset") != 0 and load_dataset(dataset_path).heldout is not None


def evaluator_options(evaluation: dict) -> dict:
    """SurfaceEvaluator keyword arguments from the config's landscape.evaluation section."""
    return {key: evaluation[key] for key in ("bn", "batch_size", "precision", "points_per_pass")}


def _progress(log: Log, label: str) -> Callable[[int, int], None]:
    start = time.time()
    every = 1

    def report(done: int, total: int) -> None:
        nonlocal every
        if done % every == 0 or done == total:
            rate = done / max(time.time() - start, 1e-9)
            log(f"{label}: {done}/{total} points ({rate:.2f} points/s)")
            every = max(1, total // 10)

    return report


def surface_chunk(
    checkpoint_dir, outcome_path, directions_path, dataset_path, out, chunk: int, chunks: int,
    evaluation: dict, noise: float, device, ndim: int = 2, grid_key: dict | None = None, log: Log = print,
    heldout: bool = True,
) -> None:
    """Evaluate chunk `chunk` (0-based) of `chunks` of the plane's grid and write only its points.

    `ndim=1` evaluates along the x direction alone (a 1-D line); `grid_key` then gives the
    line's own x axis. With `heldout` (and a data set with a held-out part) the same points
    are evaluated on the held-out images too (`test_*` values). A plane marked `unavailable`
    (a run with no trained weights) gives NaN values and keeps the reason.
    """
    heldout = heldout and has_heldout(dataset_path, evaluation)
    directions, plane = load_directions(directions_path)
    grid = SurfaceGrid.from_config(grid_key["x"]) if grid_key else grid_of(plane, ndim)
    points = grid.chunk(chunk, chunks)
    attrs = {
        # grid_x/grid_y are rewritten by write_chunk from the grid itself
        **{k: v for k, v in plane.items() if k not in ("parameter_names", "parameter_shapes", "format", "grid_x", "grid_y")},
        "bn": evaluation["bn"],
        "device": str(device),
        "chunk": chunk,
        "chunks": chunks,
        "dir_file": str(directions_path),
    }
    if "unavailable" in plane:
        nan = np.full(len(points), np.nan)
        keys = ("loss", "dice", "iou") + (("test_loss", "test_dice", "test_iou") if heldout else ())
        write_chunk(out, grid, points, dict.fromkeys(keys, nan), attrs)
        log(f"chunk {chunk + 1}/{chunks}: no values ({plane['unavailable']})")
        return
    path, label = measured_weights(checkpoint_dir, outcome_path)
    if path is None or checkpoint_attrs(path)["checkpoint_sha256"] != plane.get("checkpoint_sha256"):
        raise ValueError(f"{directions_path} was made at another checkpoint than the run's measured {path}")
    model = load_checkpoint(path, device)
    directions, _ = load_directions(directions_path, model)
    x, y, description = load_evaluation_set(dataset_path, evaluation, noise, device)
    log(f"chunk {chunk + 1}/{chunks}: {len(points)} of {grid.size} points, {description['count']} images on {device}")
    with SurfaceEvaluator(model, x, y, directions[:ndim], **evaluator_options(evaluation)) as evaluator:
        values = evaluator.evaluate_points(points, grid, _progress(log, f"chunk {chunk + 1}/{chunks}"))
        settings = evaluator.settings
    extra = {}
    if heldout:
        hx, hy, held = load_evaluation_set(dataset_path, evaluation, noise, device, heldout=True)
        with SurfaceEvaluator(model, hx, hy, directions[:ndim], **evaluator_options(evaluation)) as evaluator:
            test = evaluator.evaluate_points(points, grid, _progress(log, f"held-out chunk {chunk + 1}/{chunks}"))
        values = {**values, **{f"test_{k}": v for k, v in test.items()}}
        extra["heldout_eval_set"] = held
    write_chunk(out, grid, points, values,
                {**attrs, **label, **checkpoint_attrs(path), "eval_set": description, **extra, **settings})


def merge_surface(chunk_paths: list, out, log: Log = print) -> None:
    merge_chunk_files(chunk_paths, out, log)


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
    log: Log = print, bn: str = "geometric", labels: dict | None = None,
) -> None:
    """Loss along theta(t) = (1 - t) A + t B over the parameters, BN statistics treated as `bn`
    says (see `interpolation.py`); `labels` (e.g. what A and B are) go into the attributes.
    A or B None (a run without trained weights) writes a NaN curve that says why."""
    ts = interpolation_grid(t)
    attrs = {"mode": "states", "bn": bn, "unetscape_version": __version__, **(labels or {})}
    if checkpoint_a is None or checkpoint_b is None:
        nan = np.full(len(ts), np.nan)
        _write_curve(out, {"t": ts, "loss": nan, "dice": nan, "iou": nan}, attrs)
        log(f"no interpolation: {attrs.get('unavailable', 'a model is missing')}")
        return
    a, b = read_checkpoint(checkpoint_a), read_checkpoint(checkpoint_b)
    if a["arch"] != b["arch"]:
        raise ValueError(f"cannot interpolate between different architectures: {checkpoint_a} and {checkpoint_b}")
    model = load_checkpoint(checkpoint_a, device)
    x, y, description = load_evaluation_set(dataset_path, evaluation, noise, device)
    batch_size = resolve_batch_size(evaluation["batch_size"], x)
    curve = interpolation_curve(model, a["state_dict"], b["state_dict"], ts, x, y, batch_size, bn=bn)
    _write_curve(out, curve, {
        **attrs,
        "checkpoint_a": str(checkpoint_a), "checkpoint_a_sha256": file_sha256(checkpoint_a),
        "checkpoint_b": str(checkpoint_b), "checkpoint_b_sha256": file_sha256(checkpoint_b),
        "eval_set": description,
    })
    log(f"interpolation {checkpoint_a} -> {checkpoint_b}: loss at t=0 {curve['loss'][ts == 0][0]:.4f}, "
        f"t=1 {curve['loss'][ts == 1][0]:.4f}, {int(np.isfinite(curve['loss']).sum())}/{len(ts)} points finite")


def _write_curve(out, curve: dict, attrs: dict) -> None:
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
    start = list_checkpoints(checkpoint_dir)[0][1]
    interpolation(start, path, dataset_path, out, settings["t"], evaluation, noise, device, log, settings["bn"],
                  {"a": "initial weights", "b": label["checkpoint_role"], **label})


def interpolation_seeds(checkpoint_dirs: list, outcome_paths: list, dataset_path, out, settings: dict,
                        evaluation: dict, noise: float, device, log: Log = print) -> None:
    """Between the measured weights of two runs of one condition (two seeds)."""
    (path_a, label_a), (path_b, label_b) = (measured_weights(c, o) for c, o in zip(checkpoint_dirs, outcome_paths))
    labels = {"a": label_a["checkpoint_role"], "b": label_b["checkpoint_role"],
              "outcome_a": label_a["outcome"], "outcome_b": label_b["outcome"]}
    missing = [lab["unavailable"] for lab in (label_a, label_b) if "unavailable" in lab]
    if missing:
        labels["unavailable"] = "; ".join(missing)
    interpolation(path_a, path_b, dataset_path, out, settings["t"], evaluation, noise, device, log, settings["bn"],
                  labels)


def read_curve(path) -> dict:
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f} | {"attrs": read_attrs(f)}


def line(checkpoint_dir, outcome_path, directions_path, dataset_path, out, settings: dict, evaluation: dict,
         noise: float, device, log: Log = print, directions_out=None) -> None:
    """1-D surface along the plane's (filter-normalised) x direction, written as a 1-D surface file.

    With `directions_out`, that x direction is first written alone (the reference's directions
    file of a 1-D plot) and the line is evaluated from, and points to, that file.
    """
    if directions_out is not None:
        line_directions(directions_path, directions_out, settings)
        directions_path = directions_out
    chunk_path = Path(str(out) + ".chunk")
    try:
        surface_chunk(checkpoint_dir, outcome_path, directions_path, dataset_path, chunk_path, 0, 1, evaluation,
                      noise, device, ndim=1, grid_key={"x": settings["x"]}, log=log)
        merge_surface([chunk_path], out, log)
    finally:
        chunk_path.unlink(missing_ok=True)


def line_directions(directions_path, out, settings: dict) -> None:
    """The x direction of a plane's directions file, alone, with the line's grid."""
    (dx, *_), plane = load_directions(directions_path)
    attrs = {k: v for k, v in plane.items() if k not in ("format", "parameter_names", "parameter_shapes", "grid_y")}
    attrs.update(direction_ndim=1, grid_x=axis(settings["x"]), x_direction_of=str(directions_path))
    save_directions(out, [dx], attrs, plane["parameter_names"])


def trajectory(checkpoint_dir, outcome_path, dataset_path, directions_out, surface_out, settings: dict,
               evaluation: dict, noise: float, device, log: Log = print, projection_out=None) -> None:
    """PCA plane of the training path and the surface on it, in one job (the plane's grid is
    only known once the path is projected). The surface attributes carry the projected path;
    `projection_out` gets it in the reference's projection-file format. The path runs from
    epoch 0 to the run's measured weights."""
    path, label = measured_weights(checkpoint_dir, outcome_path)
    checkpoints = [(e, p) for e, p in list_checkpoints(checkpoint_dir) if path is not None and e <= _epoch_of(path)]
    if len(checkpoints) < 3:
        # A run that diverged within its first epochs: no plane to fit. Write the files with
        # the reason, so the workflow and its figures go on (divergence is a result).
        _no_trajectory(checkpoints or list_checkpoints(checkpoint_dir)[:1], directions_out, surface_out, settings,
                       log, label, projection_out)
        return
    trajectory_plane(checkpoint_dir, directions_out, settings, log, label, checkpoints, projection_out)
    chunk_path = Path(str(surface_out) + ".chunk")
    try:
        surface_chunk(checkpoint_dir, outcome_path, directions_out, dataset_path, chunk_path, 0, 1, evaluation, noise,
                      device, log=log, heldout=False)
        merge_surface([chunk_path], surface_out, log)
    finally:
        chunk_path.unlink(missing_ok=True)


def _epoch_of(path: Path) -> int:
    match = CHECKPOINT.match(Path(path).name)
    if not match:
        raise ValueError(f"{path} is not an epoch_NNN.pt checkpoint")
    return int(match.group(1))


def training_path(checkpoint_dir, outcome_path, dataset_path, directions_out, surface_out, projection_out,
                  interpolation_out, trajectory_settings: dict, interpolation_settings: dict, evaluation: dict,
                  noise: float, device, log: Log = print) -> None:
    """Everything along one run's training path, in one job: the PCA trajectory with its surface
    and projection file, and the straight line from the initial to the measured weights."""
    trajectory(checkpoint_dir, outcome_path, dataset_path, directions_out, surface_out, trajectory_settings,
               evaluation, noise, device, log, projection_out=projection_out)
    interpolation_init(checkpoint_dir, outcome_path, dataset_path, interpolation_out, interpolation_settings,
                       evaluation, noise, device, log)


def random_plane_and_line(checkpoint_dir, outcome_path, dataset_path, directions_out, line_out, line_directions_out,
                          plane: dict, line_settings: dict, evaluation: dict, noise: float, device,
                          log: Log = print, surface_out=None) -> None:
    """The random plane's directions and the 1-D line along its x direction (with the x
    direction alone in its own file), in one job; with `surface_out` the whole surface too
    (a surface of one chunk needs no chunk and merge jobs of its own)."""
    random_plane(checkpoint_dir, outcome_path, directions_out, plane, log)
    line(checkpoint_dir, outcome_path, directions_out, dataset_path, line_out, line_settings, evaluation, noise,
         device, log, directions_out=line_directions_out)
    if surface_out is not None:
        chunk_path = Path(str(surface_out) + ".chunk")
        try:
            surface_chunk(checkpoint_dir, outcome_path, directions_out, dataset_path, chunk_path, 0, 1, evaluation,
                          noise, device, log=log)
            merge_surface([chunk_path], surface_out, log)
        finally:
            chunk_path.unlink(missing_ok=True)


def _no_trajectory(checkpoints, directions_out, surface_out, settings: dict, log: Log, label: dict,
                   projection_out=None) -> None:
    if "unavailable" in label:
        reason, measured = label["unavailable"], {}  # nothing trained: no checkpoint to name
    else:
        reason = f"only {len(checkpoints)} checkpoint(s) were saved before training stopped; a PCA plane needs 3"
        measured = checkpoint_attrs(checkpoints[-1][1])
    model = load_checkpoint(checkpoints[-1][1])
    zeros = [torch.zeros_like(p) for p in model.parameters()]
    attrs = {"plane": "pca", **label, "unavailable": reason, **measured,
             "path_epochs": [e for e, _ in checkpoints], "path_x": [0.0] * len(checkpoints),
             "path_y": [0.0] * len(checkpoints), "explained_variance_ratio": [float("nan")] * 2}
    nan = np.full(2, np.nan)
    statistics = {"explained_variance_ratio_": nan, "singular_values_": nan, "explained_variance_": nan}
    save_directions(directions_out, [zeros, zeros], attrs, parameter_names(model), datasets=statistics)
    if projection_out is not None:
        coords = np.column_stack([attrs["path_x"], attrs["path_y"]])
        save_projection(projection_out, coords, attrs["path_epochs"],
                        {"dir_file": str(directions_out), "projection": "cos", "unavailable": reason})
    grid = SurfaceGrid.from_config([-1, 1, settings["num"]], [-1, 1, settings["num"]])
    merge_chunks([], grid, surface_out, {**attrs, "dir_file": str(directions_out)})
    log(f"no trajectory: {reason}")


def hessian(checkpoint_dir, outcome_path, dataset_path, out, settings: dict, evaluation: dict, noise: float, device,
            log: Log = print) -> None:
    """Curvature of the whole-set Dice loss at the measured weights, as JSON (NaN written as null).

    The file also lists the evaluation set's dataset indices (`eval_indices`, ascending), so
    the same Hessian can be rebuilt from the checkpoint, the dataset and `eval_set`."""
    from ..curvature import curvature_summary

    path, label = measured_weights(checkpoint_dir, outcome_path)
    if path is None:
        with atomic_path(out) as tmp:
            tmp.write_text(json.dumps({**label, "top_eigenvalues": None, "finite": False}, indent=2) + "\n")
        log(f"no curvature: {label['unavailable']}")
        return
    model = load_checkpoint(path, device)
    x, y, description = load_evaluation_set(dataset_path, evaluation, noise, device)
    curvature = {
        "k": settings["top_k"],
        "tol": settings["tol"],
        "max_iter": settings["max_iter"],
        "which": settings["which"],
        "trace_samples": settings["trace_samples"],
        "seed": settings["seed"],
        "batch_size": resolve_batch_size(evaluation["batch_size"], x),
    }
    summary = curvature_summary(model, x, y, curvature, log=log)
    summary.update(label, **checkpoint_attrs(path), eval_set=description, eval_indices=description["indices"],
                   device=str(device), unetscape_version=__version__)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(_json_safe(summary), indent=2) + "\n")


def flatness(checkpoint_dir, outcome_path, dataset_path, out, settings: dict, evaluation: dict, noise: float,
             device, log: Log = print) -> None:
    """The generalisation measures of the measured weights (`flatness.flatness_summary`: adaptive
    sharpness, PAC-Bayes flatness, norms; batch norm folded), as JSON (NaN written as null)."""
    from ..flatness import flatness_summary

    path, label = measured_weights(checkpoint_dir, outcome_path)
    if path is None:
        with atomic_path(out) as tmp:
            tmp.write_text(json.dumps({**label, "finite": False}, indent=2) + "\n")
        log(f"no flatness measures: {label['unavailable']}")
        return
    model = load_checkpoint(path, device)
    initial = load_checkpoint(list_checkpoints(checkpoint_dir)[0][1], device)
    x, y, description = load_evaluation_set(dataset_path, evaluation, noise, device)
    options = {**settings, "batch_size": resolve_batch_size(evaluation["batch_size"], x)}
    summary = flatness_summary(model, x, y, initial, options, log=log)
    summary.update(label, **checkpoint_attrs(path), eval_set=description, device=str(device),
                   unetscape_version=__version__)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(_json_safe(summary), indent=2) + "\n")


def curvature_and_flatness(checkpoint_dir, outcome_path, dataset_path, hessian_out, flatness_out, curvature: dict,
                           flatness_settings: dict, evaluation: dict, noise: float, device, log: Log = print) -> None:
    """Every measure of the shape of the minimum, in one job: the Hessian's curvature and the
    flatness measures the generalisation study ranks."""
    hessian(checkpoint_dir, outcome_path, dataset_path, hessian_out, curvature, evaluation, noise, device, log)
    flatness(checkpoint_dir, outcome_path, dataset_path, flatness_out, flatness_settings, evaluation, noise, device,
             log)


def _json_safe(value):
    """Strict JSON: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def scale_invariance(runs: list[str], checkpoint_dirs: list, outcome_paths: list, dataset_path, out,
                     settings: dict, plane: dict, evaluation: dict, device, log: Log = print) -> None:
    """1-D curves of each run's measured weights rescaled by each factor, along a raw (norm
    none) and a filter-normalised direction drawn with the plane's seed.

    Stored as loss[run, direction norm, factor, x]; factor 1 (the trained weights) comes first.
    A run without trained weights keeps NaN curves; `outcomes` records each run's outcome.
    """
    from .rescale import rescale_block_convs

    factors = [1.0] + [float(f) for f in settings["factors"]]
    norms = ["none", "filter"]
    grid = SurfaceGrid.from_config(settings["x"])
    loss = np.full((len(runs), len(norms), len(factors), len(grid.x)), np.nan)
    x, y, description = load_evaluation_set(dataset_path, evaluation, 0.0, device)
    checkpoints, outcomes = [], []
    for r, (run, checkpoint_dir, outcome_path) in enumerate(zip(runs, checkpoint_dirs, outcome_paths, strict=True)):
        path, label = measured_weights(checkpoint_dir, outcome_path)
        checkpoints.append(None if path is None else str(path))
        outcomes.append(label["outcome"])
        if path is None:
            log(f"{run}: {label['unavailable']}")
            continue
        base = load_checkpoint(path, device)
        for f, factor in enumerate(factors):
            model = rescale_block_convs(base, factor) if factor != 1.0 else base
            for n, norm in enumerate(norms):
                direction = make_directions(model, plane["seed"], norm, plane["ignore"], ndim=1)
                with SurfaceEvaluator(model, x, y, direction, **evaluator_options(evaluation)) as ev:
                    loss[r, n, f] = ev.evaluate_points(grid.points(), grid)["loss"]
            log(f"{run} x{factor:g}: loss at 0 = {loss[r, 0, f, np.argmin(np.abs(grid.x))]:.5f}")
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("xcoordinates", data=grid.x)
        f.create_dataset("train_loss", data=loss)
        write_attrs(f, {"runs": runs, "checkpoints": checkpoints, "outcomes": outcomes, "norms": norms, "factors": factors,
                        "direction_seed": plane["seed"], "direction_ignore": plane["ignore"], "bn": evaluation["bn"],
                        "eval_set": description, "layout": "train_loss[run, norm, factor, x]",
                        "unetscape_version": __version__})
