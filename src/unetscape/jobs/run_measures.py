"""Rule run_measures: at a run's measured weights, its training path (the PCA plane of its
checkpoints with the surface on it, the line from the initial weights) and the curvature and
flatness measures of its minimum."""

from __future__ import annotations

import json

import numpy as np
import torch

from unetscape import __version__
from unetscape.atomic import atomic_path
from unetscape.jobs.interpolation import interpolation_init
from unetscape.jobs.measured import (
    Log,
    axis,
    checkpoint_attrs,
    checkpoint_loss,
    initial_weights,
    epoch_of,
    json_safe,
    list_checkpoints,
    load_evaluation_set,
    measured_weights,
)
from unetscape.jobs.surface import whole_surface
from unetscape.landscape.directions import parameter_names, save_directions
from unetscape.landscape.grid import SurfaceGrid
from unetscape.landscape.surface import resolve_batch_size
from unetscape.landscape.surface_io import merge_chunks
from unetscape.landscape.trajectory import fit_pca_plane, plane_extent, save_projection
from unetscape.models.losses import loss_per_image
from unetscape.models.checkpoints import load_checkpoint, read_checkpoint


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


def trajectory(checkpoint_dir, outcome_path, dataset_path, directions_out, surface_out, settings: dict,
               evaluation: dict, noise: float, device, log: Log = print, projection_out=None) -> None:
    """PCA plane of the training path and the surface on it, in one job (the plane's grid is
    only known once the path is projected). The surface attributes carry the projected path;
    `projection_out` gets it in the reference's projection-file format. The path runs from
    epoch 0 to the run's measured weights."""
    path, label = measured_weights(checkpoint_dir, outcome_path)
    _, missing = initial_weights(checkpoint_dir, label)
    if missing:  # a model trained elsewhere: the files say there is no path to draw
        no_trajectory([(0, path)], directions_out, surface_out, settings, log, {**label, "unavailable": missing},
                      projection_out)
        return
    checkpoints = [(e, p) for e, p in list_checkpoints(checkpoint_dir) if path is not None and e <= epoch_of(path)]
    if len(checkpoints) < 3:
        # A run that diverged within its first epochs: no plane to fit. Write the files with
        # the reason, so the workflow and its figures go on (divergence is a result).
        no_trajectory(checkpoints or list_checkpoints(checkpoint_dir)[:1], directions_out, surface_out, settings,
                       log, label, projection_out)
        return
    trajectory_plane(checkpoint_dir, directions_out, settings, log, label, checkpoints, projection_out)
    whole_surface(checkpoint_dir, outcome_path, directions_out, dataset_path, surface_out, evaluation, noise, device,
                  log, heldout=False)


def training_path(checkpoint_dir, outcome_path, dataset_path, directions_out, surface_out, projection_out,
                  interpolation_out, trajectory_settings: dict, interpolation_settings: dict, evaluation: dict,
                  noise: float, device, log: Log = print) -> None:
    """Everything along one run's training path, in one job: the PCA trajectory with its surface
    and projection file, and the straight line from the initial to the measured weights."""
    trajectory(checkpoint_dir, outcome_path, dataset_path, directions_out, surface_out, trajectory_settings,
               evaluation, noise, device, log, projection_out=projection_out)
    interpolation_init(checkpoint_dir, outcome_path, dataset_path, interpolation_out, interpolation_settings,
                       evaluation, noise, device, log)


def no_trajectory(checkpoints, directions_out, surface_out, settings: dict, log: Log, label: dict,
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
            log: Log = print, eigen_out=None, eigen_plane: dict | None = None, parts: bool = False) -> None:
    """Curvature of the whole-set loss (the run's training loss) at the measured weights, as
    JSON (NaN written as null).

    The file also lists the evaluation set's dataset indices (`eval_indices`, ascending), so
    the same Hessian can be rebuilt from the checkpoint, the dataset and `eval_set`. With
    `parts`, the curvature of the scale-normalised Hessian restricted to each part of the network
    (`curvature_parts.part_curvature`) is under `parts` (else `parts` says it was not measured).
    With `eigen_out`, the plane of the scale-normalised Hessian's two sharpest eigenvectors
    (`eigen_plane`) is written there as a directions file with the `eigen_plane` grid."""
    from unetscape.measures.curvature import curvature_summary_with_eigenvectors
    from unetscape.measures.curvature_parts import part_curvature

    path, label = measured_weights(checkpoint_dir, outcome_path)
    if path is None:
        with atomic_path(out) as tmp:
            tmp.write_text(json.dumps({**label, "top_eigenvalues": None, "finite": False}, indent=2) + "\n")
        if eigen_out is not None:
            no_eigen_plane(checkpoint_dir, eigen_out, eigen_plane, label)
        log(f"no curvature: {label['unavailable']}")
        return
    model = load_checkpoint(path, device)
    x, y, description = load_evaluation_set(dataset_path, evaluation, noise, device, outcome_path=outcome_path)
    curvature = {
        "k": settings["top_k"],
        "tol": settings["tol"],
        "max_iter": settings["max_iter"],
        "which": settings["which"],
        "trace_samples": settings["trace_samples"],
        "seed": settings["seed"],
        "batch_size": resolve_batch_size(evaluation["batch_size"], x),
    }
    loss = checkpoint_loss(path)
    summary, eigenvectors = curvature_summary_with_eigenvectors(model, x, y, curvature, log=log,
                                                                loss_per_image=loss_per_image(loss))
    if parts:
        part_settings = {key: curvature[key] for key in ("tol", "seed", "batch_size")}
        part_settings.update(max_iter=settings["parts"]["max_iter"], trace_samples=settings["parts"]["trace_samples"])
        summary["parts"] = {"measured": True, **part_curvature(
            model, x, y, part_settings, loss_per_image(loss), log, total_trace=(summary.get("relative") or {}).get("trace"))}
    else:
        summary["parts"] = {"measured": False, "why": "curvature.parts: not a run of curvature.parts.studies"}
    summary.update(label, **checkpoint_attrs(path), loss_function=loss, eval_set=description, eval_indices=description["indices"],
                   device=str(device), unetscape_version=__version__)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(json_safe(summary), indent=2) + "\n")
    if eigen_out is not None:
        if eigenvectors is None:  # the loss is not finite: no eigenvectors to span a plane
            no_eigen_plane(checkpoint_dir, eigen_out, eigen_plane,
                           {**label, "unavailable": "the loss at the measured weights is not finite"})
            return
        save_eigen_plane(model, eigenvectors, eigen_out, eigen_plane, {**label, **checkpoint_attrs(path)}, curvature)


def save_eigen_plane(model, eigenvectors, out, grid: dict, attrs: dict, curvature: dict) -> None:
    """The directions file of the eigenvector plane (`measures.eigen_plane`), with its grid."""
    from unetscape.measures.eigen_plane import eigen_plane_attrs, eigenvector_directions

    directions, scales = eigenvector_directions(model, eigenvectors.vectors, eigenvectors.parameter_names)
    save_directions(out, directions, {
        **attrs,
        **eigen_plane_attrs(eigenvectors.values, scales, eigenvectors.converged, eigenvectors.residuals,
                            curvature["tol"]),
        "grid_x": axis(grid["x"]),
        "grid_y": axis(grid["y"]),
    }, parameter_names(model))


def no_eigen_plane(checkpoint_dir, out, grid: dict, label: dict) -> None:
    """An eigenvector plane of zeros (shapes from the initial weights) that says why."""
    model = load_checkpoint(list_checkpoints(checkpoint_dir)[0][1])
    zeros = [torch.zeros_like(p) for p in model.parameters()]
    save_directions(out, [zeros, zeros], {"plane": "hessian_eigenvectors", **label,
                                          "grid_x": axis(grid["x"]), "grid_y": axis(grid["y"])},
                    parameter_names(model))


def flatness(checkpoint_dir, outcome_path, dataset_path, out, settings: dict, evaluation: dict, noise: float,
             device, log: Log = print) -> None:
    """The generalisation measures of the measured weights (`flatness.flatness_summary`: adaptive
    sharpness, PAC-Bayes flatness, norms; batch norm folded), as JSON (NaN written as null)."""
    from unetscape.measures.flatness import flatness_summary

    path, label = measured_weights(checkpoint_dir, outcome_path)
    if path is None:
        with atomic_path(out) as tmp:
            tmp.write_text(json.dumps({**label, "finite": False}, indent=2) + "\n")
        log(f"no flatness measures: {label['unavailable']}")
        return
    model = load_checkpoint(path, device)
    start, _ = initial_weights(checkpoint_dir, label)
    initial = None if start is None else load_checkpoint(start, device)
    x, y, description = load_evaluation_set(dataset_path, evaluation, noise, device, outcome_path=outcome_path)
    options = {**settings, "batch_size": resolve_batch_size(evaluation["batch_size"], x)}
    loss = checkpoint_loss(path)
    summary = flatness_summary(model, x, y, initial, options, log=log, loss_per_image=loss_per_image(loss))
    summary.update(label, **checkpoint_attrs(path), loss_function=loss, eval_set=description, device=str(device),
                   unetscape_version=__version__)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(json_safe(summary), indent=2) + "\n")


def curvature_and_flatness(checkpoint_dir, outcome_path, dataset_path, hessian_out, flatness_out, curvature: dict,
                           flatness_settings: dict, evaluation: dict, noise: float, device, log: Log = print,
                           eigen_directions_out=None, eigen_surface_out=None, eigen_plane: dict | None = None,
                           parts: bool = False) -> None:
    """Every measure of the shape of the minimum, in one job: the Hessian's curvature (per part
    of the network with `parts`), the plane of its two sharpest directions with the surface on
    it, and the flatness measures the generalisation study ranks."""
    hessian(checkpoint_dir, outcome_path, dataset_path, hessian_out, curvature, evaluation, noise, device, log,
            eigen_out=eigen_directions_out, eigen_plane=eigen_plane, parts=parts)
    if eigen_surface_out is not None:
        whole_surface(checkpoint_dir, outcome_path, eigen_directions_out, dataset_path, eigen_surface_out, evaluation,
                      noise, device, log, heldout=False)
    flatness(checkpoint_dir, outcome_path, dataset_path, flatness_out, flatness_settings, evaluation, noise, device,
             log)
