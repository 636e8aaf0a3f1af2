"""Rule random_plane: the filter-normalised random plane at a run's measured weights, the
1-D line along its x direction, (with one chunk) the surface on the plane, and the run's
direction sets: K seeded planes and lines on a coarser grid whose numbers are averaged over
directions (`landscape.direction_sets`)."""

from __future__ import annotations

import numpy as np
import torch

from unetscape import __version__
from unetscape.jobs.measured import (
    Log,
    axis,
    checkpoint_attrs,
    checkpoint_loss,
    evaluator_options,
    list_checkpoints,
    load_evaluation_set,
    measured_weights,
    progress,
)
from unetscape.jobs.surface import whole_surface
from unetscape.landscape.direction_sets import direction_set_seeds, write_direction_sets
from unetscape.landscape.directions import (
    directions_settings,
    load_directions,
    make_directions,
    parameter_names,
    save_directions,
)
from unetscape.landscape.grid import SurfaceGrid
from unetscape.landscape.surface import SurfaceEvaluator
from unetscape.models.checkpoints import load_checkpoint


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


def line(checkpoint_dir, outcome_path, directions_path, dataset_path, out, settings: dict, evaluation: dict,
         noise: float, device, log: Log = print, directions_out=None) -> None:
    """1-D surface along the plane's (filter-normalised) x direction, written as a 1-D surface file.

    With `directions_out`, that x direction is first written alone (the reference's directions
    file of a 1-D plot) and the line is evaluated from, and points to, that file.
    """
    if directions_out is not None:
        line_directions(directions_path, directions_out, settings)
        directions_path = directions_out
    whole_surface(checkpoint_dir, outcome_path, directions_path, dataset_path, out, evaluation, noise, device, log,
                  ndim=1, grid_key={"x": settings["x"]})


def line_directions(directions_path, out, settings: dict) -> None:
    """The x direction of a plane's directions file, alone, with the line's grid."""
    (dx, *_), plane = load_directions(directions_path)
    attrs = {k: v for k, v in plane.items() if k not in ("format", "parameter_names", "parameter_shapes", "grid_y")}
    attrs.update(direction_ndim=1, grid_x=axis(settings["x"]), x_direction_of=str(directions_path))
    save_directions(out, [dx], attrs, plane["parameter_names"])


def direction_sets(checkpoint_dir, outcome_path, dataset_path, out, plane: dict, sets: dict, evaluation: dict,
                   noise: float, device, log: Log = print) -> None:
    """The run's K direction sets (`landscape.direction_sets`: count, x, y, line), each a
    filter-normalised plane with the plane's settings on the sets' grid and a line along its x
    direction, at the measured weights, on the training evaluation images; one file
    (`landscape.direction_sets`). A run without trained weights gets NaN values and the reason."""
    seeds = direction_set_seeds(plane["seed"], sets["count"])
    grid = SurfaceGrid.from_config(sets["x"], sets["y"])
    line_grid = SurfaceGrid.from_config(sets["line"])
    surfaces = np.full((len(seeds), len(grid.y), len(grid.x)), np.nan)
    lines = np.full((len(seeds), len(line_grid.x)), np.nan)
    attrs = {"direction_norm": plane["norm"], "direction_ignore": plane["ignore"],
             "direction_orthogonalize": bool(plane["orthogonalize"]), "grid_x": axis(sets["x"]),
             "grid_y": axis(sets["y"]), "grid_line": axis(sets["line"]), "first_set": (
                 "set 0 is the plane of random/surface.h5 (landscape.plane.seed) on this grid; set k >= 1 has the "
                 "seed derive_seed(plane seed, 'direction_set{k}')"), "unetscape_version": __version__}
    path, label = measured_weights(checkpoint_dir, outcome_path)
    if path is None:
        write_direction_sets(out, seeds, grid.x, grid.y, surfaces, line_grid.x, lines, {**attrs, **label})
        log(f"no direction sets: {label['unavailable']}")
        return
    model = load_checkpoint(path, device)
    loss = checkpoint_loss(path)
    x, y, description = load_evaluation_set(dataset_path, evaluation, noise, device, outcome_path=outcome_path)
    points, line_points = grid.points(), line_grid.points()
    report = progress(log, f"{len(seeds)} direction sets")
    for k, seed in enumerate(seeds):
        # Drawn on a CPU copy's shapes, exactly as the figure's plane is (random_plane).
        directions = make_directions(model, seed, plane["norm"], plane["ignore"], plane["orthogonalize"], ndim=2)
        with SurfaceEvaluator(model, x, y, directions, loss=loss, **evaluator_options(evaluation)) as evaluator:
            values = evaluator.evaluate_points(points, grid)["loss"]
        for (i, j), value in zip(points, values):
            surfaces[k, j, i] = value
        with SurfaceEvaluator(model, x, y, directions[:1], loss=loss, **evaluator_options(evaluation)) as evaluator:
            lines[k] = evaluator.evaluate_points(line_points, line_grid)["loss"]
        report(k + 1, len(seeds))
    write_direction_sets(out, seeds, grid.x, grid.y, surfaces, line_grid.x, lines,
                         {**attrs, **label, **checkpoint_attrs(path), "loss_function": loss, "eval_set": description,
                          "bn": evaluation["bn"], "device": str(device)})


def random_plane_and_line(checkpoint_dir, outcome_path, dataset_path, directions_out, line_out, line_directions_out,
                          plane: dict, line_settings: dict, evaluation: dict, noise: float, device,
                          log: Log = print, surface_out=None, sets_out=None, sets: dict | None = None) -> None:
    """The random plane's directions and the 1-D line along its x direction (with the x
    direction alone in its own file), in one job; with `surface_out` the whole surface too
    (a surface of one chunk needs no chunk and merge jobs of its own); with `sets_out` the
    run's direction sets (`direction_sets`)."""
    random_plane(checkpoint_dir, outcome_path, directions_out, plane, log)
    line(checkpoint_dir, outcome_path, directions_out, dataset_path, line_out, line_settings, evaluation, noise,
         device, log, directions_out=line_directions_out)
    if surface_out is not None:
        whole_surface(checkpoint_dir, outcome_path, directions_out, dataset_path, surface_out, evaluation, noise,
                      device, log)
    if sets_out is not None:
        direction_sets(checkpoint_dir, outcome_path, dataset_path, sets_out, plane, sets, evaluation, noise, device,
                       log)
