"""Rule random_plane: the filter-normalised random plane at a run's measured weights, the
1-D line along its x direction, and (with one chunk) the surface on the plane."""

from __future__ import annotations

import torch

from unetscape.jobs.measured import Log, axis, checkpoint_attrs, list_checkpoints, measured_weights
from unetscape.jobs.surface import whole_surface
from unetscape.landscape.directions import (
    directions_settings,
    load_directions,
    make_directions,
    parameter_names,
    save_directions,
)
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
        whole_surface(checkpoint_dir, outcome_path, directions_out, dataset_path, surface_out, evaluation, noise,
                      device, log)
