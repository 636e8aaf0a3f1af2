"""What each landscape rule does, from files to files: directions, surface chunks, merge,
1-D lines, interpolations and PCA trajectories. Scripts call these; the math lives in the
modules they import."""

from __future__ import annotations

import hashlib
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
from .directions import directions_settings, load_directions, make_directions, parameter_names, save_directions
from .grid import SurfaceGrid
from .interpolation import interpolation_curve
from .surface import SurfaceEvaluator, evaluation_set, resolve_batch_size
from .surface_io import merge_chunk_files, merge_chunks, read_attrs, write_attrs, write_chunk
from .trajectory import pca_plane, plane_extent

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


def checkpoint_attrs(path: Path) -> dict:
    meta = read_checkpoint(path)
    return {"checkpoint": str(path), "checkpoint_sha256": file_sha256(path), "checkpoint_epoch": meta.get("epoch")}


def axis(spec) -> list:
    """A grid axis from config [min, max, num] as stored in attributes."""
    low, high, num = spec
    return [float(low), float(high), int(num)]


def random_plane(checkpoint_dir, out, settings: dict, log: Log = print) -> None:
    """Filter-normalised random plane at the final checkpoint, with its grid."""
    path = final_checkpoint(checkpoint_dir)
    model = load_checkpoint(path)
    directions = make_directions(
        model, settings["seed"], settings["norm"], settings["ignore"], settings["orthogonalize"], ndim=2
    )
    attrs = {
        "plane": "random",
        **directions_settings(settings["seed"], settings["norm"], settings["ignore"], settings["orthogonalize"], 2),
        **checkpoint_attrs(path),
        "grid_x": axis(settings["x"]),
        "grid_y": axis(settings["y"]),
    }
    save_directions(out, directions, attrs, parameter_names(model))
    log(f"random plane at {path}: seed {settings['seed']}, {settings['norm']} normalisation")


def trajectory_plane(checkpoint_dir, out, settings: dict, log: Log = print) -> None:
    """PCA plane of the training path (theta_e - theta_final), the projected path and a grid covering it."""
    checkpoints = list_checkpoints(checkpoint_dir)
    states = [read_checkpoint(p)["state_dict"] for _, p in checkpoints]
    model = load_checkpoint(checkpoints[-1][1])
    dx, dy, coords, ratio = pca_plane(states, model, settings["ignore"])
    x_range, y_range = plane_extent(coords, settings["margin"])
    attrs = {
        "plane": "pca",
        "direction_ignore": settings["ignore"],
        **checkpoint_attrs(checkpoints[-1][1]),
        "grid_x": [*x_range, int(settings["num"])],
        "grid_y": [*y_range, int(settings["num"])],
        "path_epochs": [e for e, _ in checkpoints],
        "path_x": coords[:, 0].tolist(),
        "path_y": coords[:, 1].tolist(),
        "explained_variance_ratio": ratio.tolist(),
    }
    save_directions(out, [dx, dy], attrs, parameter_names(model))
    log(f"PCA plane of {len(checkpoints)} checkpoints: explained variance {ratio.round(4).tolist()}")


def grid_of(attrs: dict, ndim: int = 2) -> SurfaceGrid:
    return SurfaceGrid.from_config(attrs["grid_x"], attrs["grid_y"] if ndim == 2 else None)


def load_evaluation_set(dataset_path, evaluation: dict, noise: float, device) -> tuple:
    dataset = load_dataset(dataset_path)
    return evaluation_set(
        dataset.images,
        dataset.masks,
        evaluation["subset"],
        evaluation["seed"],
        noise,
        evaluation["noise"],
        evaluation["seed"],
        device,
    )


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
    checkpoint_dir, directions_path, dataset_path, out, chunk: int, chunks: int,
    evaluation: dict, noise: float, device, ndim: int = 2, grid_key: dict | None = None, log: Log = print,
) -> None:
    """Evaluate chunk `chunk` (0-based) of `chunks` of the plane's grid and write only its points.

    `ndim=1` evaluates along the x direction alone (a 1-D line); `grid_key` then gives the
    line's own x axis.
    """
    path = final_checkpoint(checkpoint_dir)
    model = load_checkpoint(path, device)
    directions, plane = load_directions(directions_path, model)
    grid = SurfaceGrid.from_config(grid_key["x"]) if grid_key else grid_of(plane, ndim)
    x, y, description = load_evaluation_set(dataset_path, evaluation, noise, device)
    points = grid.chunk(chunk, chunks)
    log(f"chunk {chunk + 1}/{chunks}: {len(points)} of {grid.size} points, {description['count']} images on {device}")
    with SurfaceEvaluator(model, x, y, directions[:ndim], **evaluator_options(evaluation)) as evaluator:
        values = evaluator.evaluate_points(points, grid, _progress(log, f"chunk {chunk + 1}/{chunks}"))
        settings = evaluator.settings
    attrs = {
        # grid_x/grid_y are rewritten by write_chunk from the grid itself
        **{k: v for k, v in plane.items() if k not in ("parameter_names", "parameter_shapes", "format", "grid_x", "grid_y")},
        **checkpoint_attrs(path),
        "bn": evaluation["bn"],
        "eval_set": description,
        **settings,
        "device": str(device),
        "chunk": chunk,
        "chunks": chunks,
    }
    write_chunk(out, grid, points, values, attrs)


def merge_surface(chunk_paths: list, out, log: Log = print) -> None:
    merge_chunk_files(chunk_paths, out, log)


def interpolation(
    checkpoint_a, checkpoint_b, dataset_path, out, t: list, evaluation: dict, noise: float, device, log: Log = print
) -> None:
    """Loss along theta(t) = (1 - t) A + t B over parameters and BN buffers (the reference's states mode)."""
    a, b = read_checkpoint(checkpoint_a), read_checkpoint(checkpoint_b)
    if a["arch"] != b["arch"]:
        raise ValueError(f"cannot interpolate between different architectures: {checkpoint_a} and {checkpoint_b}")
    model = load_checkpoint(checkpoint_a, device)
    x, y, description = load_evaluation_set(dataset_path, evaluation, noise, device)
    ts = np.linspace(*axis(t)[:2], axis(t)[2])
    batch_size = resolve_batch_size(evaluation["batch_size"], x)
    curve = interpolation_curve(model, a["state_dict"], b["state_dict"], ts, x, y, batch_size)
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("t", data=curve["t"])
        f.create_dataset("train_loss", data=curve["loss"])
        f.create_dataset("train_acc", data=100 * np.asarray(curve["dice"]))
        f.create_dataset("dice", data=curve["dice"])
        f.create_dataset("iou", data=curve["iou"])
        write_attrs(f, {
            "checkpoint_a": str(checkpoint_a), "checkpoint_a_sha256": file_sha256(checkpoint_a),
            "checkpoint_b": str(checkpoint_b), "checkpoint_b_sha256": file_sha256(checkpoint_b),
            "mode": "states", "eval_set": description, "unetscape_version": __version__,
        })
    log(f"interpolation {checkpoint_a} -> {checkpoint_b}: loss at t=0 {curve['loss'][np.argmin(np.abs(ts))]:.4f}")


def read_curve(path) -> dict:
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f} | {"attrs": read_attrs(f)}


def line(checkpoint_dir, directions_path, dataset_path, out, settings: dict, evaluation: dict, noise: float,
         device, log: Log = print) -> None:
    """1-D surface along the plane's (filter-normalised) x direction, written as a 1-D surface file."""
    chunk_path = Path(str(out) + ".chunk")
    try:
        surface_chunk(checkpoint_dir, directions_path, dataset_path, chunk_path, 0, 1, evaluation, noise,
                      device, ndim=1, grid_key={"x": settings["x"]}, log=log)
        merge_surface([chunk_path], out, log)
    finally:
        chunk_path.unlink(missing_ok=True)


def trajectory(checkpoint_dir, dataset_path, directions_out, surface_out, settings: dict, evaluation: dict,
               noise: float, device, log: Log = print) -> None:
    """PCA plane of the training path and the surface on it, in one job (the plane's grid is
    only known once the path is projected). The surface attributes carry the projected path."""
    checkpoints = list_checkpoints(checkpoint_dir)
    if len(checkpoints) < 3:
        # A run that diverged within its first epochs: no plane to fit. Write the files with
        # the reason, so the workflow and its figures go on (divergence is a result).
        _no_trajectory(checkpoints, directions_out, surface_out, settings, log)
        return
    trajectory_plane(checkpoint_dir, directions_out, settings, log)
    chunk_path = Path(str(surface_out) + ".chunk")
    try:
        surface_chunk(checkpoint_dir, directions_out, dataset_path, chunk_path, 0, 1, evaluation, noise, device, log=log)
        merge_surface([chunk_path], surface_out, log)
    finally:
        chunk_path.unlink(missing_ok=True)


def _no_trajectory(checkpoints, directions_out, surface_out, settings: dict, log: Log) -> None:
    reason = f"only {len(checkpoints)} checkpoint(s) were saved before training stopped; a PCA plane needs 3"
    model = load_checkpoint(checkpoints[-1][1])
    zeros = [torch.zeros_like(p) for p in model.parameters()]
    attrs = {"plane": "pca", "unavailable": reason, **checkpoint_attrs(checkpoints[-1][1]),
             "path_epochs": [e for e, _ in checkpoints], "path_x": [0.0] * len(checkpoints),
             "path_y": [0.0] * len(checkpoints), "explained_variance_ratio": [float("nan")] * 2}
    save_directions(directions_out, [zeros, zeros], attrs, parameter_names(model))
    grid = SurfaceGrid.from_config([-1, 1, settings["num"]], [-1, 1, settings["num"]])
    merge_chunks([], grid, surface_out, attrs)
    log(f"no trajectory: {reason}")


def _evaluation_indices(description: dict) -> list[int]:
    """The dataset indices of an evaluation set, rebuilt from its description (the same
    draw as `evaluation_set`) and checked against the description's indices_sha256."""
    n, subset = description["dataset_size"], description["subset"]
    if subset is None:
        indices = np.arange(n)
    else:
        indices = np.sort(np.random.default_rng(description["subset_seed"]).choice(n, size=subset, replace=False))
    if hashlib.sha256(indices.astype("<i8").tobytes()).hexdigest() != description["indices_sha256"]:
        raise RuntimeError("the evaluation indices rebuilt from the subset seed do not match indices_sha256")
    return indices.tolist()


def hessian(checkpoint_dir, dataset_path, out, settings: dict, evaluation: dict, noise: float, device,
            log: Log = print) -> None:
    """Curvature of the whole-set Dice loss at the final weights, as JSON (NaN written as null).

    The file also lists the evaluation set's dataset indices (`eval_indices`, ascending), so
    the same Hessian can be rebuilt from the checkpoint, the dataset and `eval_set`."""
    from ..curvature import curvature_summary

    path = final_checkpoint(checkpoint_dir)
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
    summary.update(checkpoint_attrs(path), eval_set=description, eval_indices=_evaluation_indices(description),
                   device=str(device), unetscape_version=__version__)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(_json_safe(summary), indent=2) + "\n")


def _json_safe(value):
    """Strict JSON: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def scale_invariance(runs: list[str], checkpoint_dirs: list, dataset_path, out, settings: dict, plane: dict,
                     evaluation: dict, device, log: Log = print) -> None:
    """1-D curves of each run's final weights rescaled by each factor, along a raw (norm none)
    and a filter-normalised direction drawn with the plane's seed.

    Stored as loss[run, direction norm, factor, x]; factor 1 (the trained weights) comes first.
    """
    from .rescale import rescale_block_convs

    factors = [1.0] + [float(f) for f in settings["factors"]]
    norms = ["none", "filter"]
    grid = SurfaceGrid.from_config(settings["x"])
    loss = np.full((len(runs), len(norms), len(factors), len(grid.x)), np.nan)
    x, y, description = load_evaluation_set(dataset_path, evaluation, 0.0, device)
    checkpoints = []
    for r, (run, checkpoint_dir) in enumerate(zip(runs, checkpoint_dirs, strict=True)):
        path = final_checkpoint(checkpoint_dir)
        checkpoints.append(str(path))
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
        write_attrs(f, {"runs": runs, "checkpoints": checkpoints, "norms": norms, "factors": factors,
                        "direction_seed": plane["seed"], "direction_ignore": plane["ignore"], "bn": evaluation["bn"],
                        "eval_set": description, "layout": "train_loss[run, norm, factor, x]",
                        "unetscape_version": __version__})
