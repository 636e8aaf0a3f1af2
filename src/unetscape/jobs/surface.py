"""Rules surface_chunk and merge_surface: a chunk of a plane's grid evaluated at a run's
measured weights, and the chunks merged into one surface file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unetscape.jobs.measured import (
    Log,
    checkpoint_attrs,
    checkpoint_loss,
    evaluator_options,
    grid_of,
    has_heldout,
    load_evaluation_set,
    measured_weights,
    progress,
)
from unetscape.landscape.directions import load_directions
from unetscape.landscape.grid import SurfaceGrid
from unetscape.landscape.surface import SurfaceEvaluator
from unetscape.landscape.surface_io import merge_chunk_files, write_chunk
from unetscape.models.checkpoints import load_checkpoint


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
    loss = checkpoint_loss(path)
    directions, _ = load_directions(directions_path, model)
    x, y, description = load_evaluation_set(dataset_path, evaluation, noise, device, outcome_path=outcome_path)
    log(f"chunk {chunk + 1}/{chunks}: {len(points)} of {grid.size} points, {description['count']} images on {device}")
    with SurfaceEvaluator(model, x, y, directions[:ndim], loss=loss, **evaluator_options(evaluation)) as evaluator:
        values = evaluator.evaluate_points(points, grid, progress(log, f"chunk {chunk + 1}/{chunks}"))
        settings = evaluator.settings
    extra = {}
    if heldout:
        hx, hy, held = load_evaluation_set(dataset_path, evaluation, noise, device, heldout=True)
        with SurfaceEvaluator(model, hx, hy, directions[:ndim], loss=loss, **evaluator_options(evaluation)) as evaluator:
            test = evaluator.evaluate_points(points, grid, progress(log, f"held-out chunk {chunk + 1}/{chunks}"))
        values = {**values, **{f"test_{k}": v for k, v in test.items()}}
        extra["heldout_eval_set"] = held
    write_chunk(out, grid, points, values,
                {**attrs, **label, **checkpoint_attrs(path), "eval_set": description, **extra, **settings})


def merge_surface(chunk_paths: list, out, log: Log = print) -> None:
    merge_chunk_files(chunk_paths, out, log)


def whole_surface(checkpoint_dir, outcome_path, directions_path, dataset_path, out, evaluation: dict,
                  noise: float, device, log: Log = print, **options) -> None:
    """The whole surface of a plane in one job: one chunk, merged into the surface file."""
    chunk_path = Path(str(out) + ".chunk")
    try:
        surface_chunk(checkpoint_dir, outcome_path, directions_path, dataset_path, chunk_path, 0, 1, evaluation,
                      noise, device, log=log, **options)
        merge_surface([chunk_path], out, log)
    finally:
        chunk_path.unlink(missing_ok=True)
