"""The plane of an optimisation path: PCA of the saved checkpoints (Li et al. 2018, sec. 7).

Rows are theta_e - theta_final over the learnable parameters, one per saved checkpoint (the
final one last, giving a zero row). As in the reference (projection.py, which fits
sklearn's PCA to these rows), the rows are centred before the SVD, so the components are the
directions of largest variance of the path; the coordinates of each checkpoint are then the
projections of its *uncentred* row, <theta_e - theta_final, pc> / ||pc||, so the final model
sits at (0, 0) and the surface on this plane is centred on it.

`fit_pca_plane` also returns sklearn PCA's statistics of the fit under their sklearn names
(what the reference stores next to its PCA directions): `explained_variance_ratio_`,
`singular_values_` (of the centred rows) and `explained_variance_` (= singular value^2 /
(rows - 1)), for the first two components.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .directions import IGNORES, Direction


def _path_matrix(states: Sequence[dict], names: list[str], keep: list[bool]) -> np.ndarray:
    final = states[-1]
    rows = []
    for state in states:
        rows.append(
            np.concatenate(
                [
                    (
                        (state[name].double() - final[name].double()).flatten().numpy()
                        if kept
                        else np.zeros(final[name].numel())
                    )
                    for name, kept in zip(names, keep)
                ]
            )
        )
    return np.stack(rows)


@dataclass
class PcaPlane:
    dx: Direction
    dy: Direction
    coords: np.ndarray  # (n, 2): each checkpoint projected on (dx, dy), final last at (0, 0)
    explained_variance_ratio: np.ndarray  # (2,)
    singular_values: np.ndarray  # (2,)
    explained_variance: np.ndarray  # (2,)

    def statistics(self) -> dict[str, np.ndarray]:
        """The fit's numbers under sklearn's (and the reference's direction file's) names."""
        return {
            "explained_variance_ratio_": self.explained_variance_ratio,
            "singular_values_": self.singular_values,
            "explained_variance_": self.explained_variance,
        }


def pca_plane(
    states: Sequence[dict], model: nn.Module, ignore: str | None = "biasbn"
) -> tuple[Direction, Direction, np.ndarray, np.ndarray]:
    """(dx, dy, coords (n, 2), explained_variance_ratio (2,)) of `fit_pca_plane`."""
    plane = fit_pca_plane(states, model, ignore)
    return plane.dx, plane.dy, plane.coords, plane.explained_variance_ratio


def fit_pca_plane(states: Sequence[dict], model: nn.Module, ignore: str | None = "biasbn") -> PcaPlane:
    """The PCA plane of checkpoints `states`, their coordinates on it and the fit's statistics.

    `states[-1]` is theta_final. `model` names the learnable parameters (its own values are not
    used). With ignore="biasbn", tensors with dim <= 1 are left out of the PCA and are zero in
    dx and dy. Each component's sign is fixed so that its largest-magnitude entry is positive
    (sklearn's convention), which makes the plane reproducible.
    """
    ignore = "none" if ignore is None else ignore
    if ignore not in IGNORES:
        raise ValueError(f"ignore must be one of {IGNORES} or None, got {ignore!r}")
    if len(states) < 3:
        raise ValueError(f"a PCA plane needs at least 3 checkpoints, got {len(states)}")
    params = [(name, p) for name, p in model.named_parameters()]
    names = [name for name, _ in params]
    for k, state in enumerate(states):
        missing = [name for name in names if name not in state]
        if missing:
            raise ValueError(f"checkpoint {k} of the path lacks parameter {missing[0]}")
    keep = [ignore == "none" or p.dim() > 1 for _, p in params]
    states = [{name: state[name].detach().cpu() for name in names} for state in states]

    deltas = _path_matrix(states, names, keep)
    centred = deltas - deltas.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:2].copy()
    for pc in components:
        if pc[np.argmax(np.abs(pc))] < 0:
            pc *= -1
    total = float((singular**2).sum())
    if total == 0:
        raise ValueError("all checkpoints of the path are identical: no plane to fit")
    ratio = singular[:2] ** 2 / total

    directions = [_unflatten(pc, params, keep) for pc in components]
    # Project with the stored (float32) directions, so coordinates match the plane evaluated.
    flat = [np.concatenate([d.double().flatten().numpy() for d in direction]) for direction in directions]
    coords = np.stack([deltas @ pc / np.linalg.norm(pc) for pc in flat], axis=1)
    return PcaPlane(
        directions[0],
        directions[1],
        coords,
        ratio,
        singular[:2].copy(),
        singular[:2] ** 2 / (len(deltas) - 1),
    )


def _unflatten(vector: np.ndarray, params: list, keep: list[bool]) -> Direction:
    out, start = [], 0
    for (_, p), kept in zip(params, keep):
        n = p.numel()
        piece = torch.from_numpy(vector[start : start + n].astype(np.float32)).reshape(p.shape)
        out.append(piece if kept else torch.zeros(p.shape, dtype=torch.float32))
        start += n
    return out


def plane_extent(coords: np.ndarray, margin: float = 0.2) -> tuple[list[float], list[float]]:
    """([xmin, xmax], [ymin, ymax]) covering the path and the origin, widened by `margin`
    times the span on each side; append a point count to get a grid config."""
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != 2 or len(coords) == 0:
        raise ValueError(f"coords must have shape (n, 2), got {coords.shape}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin!r}")
    extent = []
    for axis in range(2):
        lo, hi = min(coords[:, axis].min(), 0.0), max(coords[:, axis].max(), 0.0)
        if hi == lo:  # a path with no extent along this axis still gets a plane of unit width
            lo, hi = lo - 0.5, hi + 0.5
        span = hi - lo
        extent.append([float(lo - margin * span), float(hi + margin * span)])
    return extent[0], extent[1]


def save_projection(path, coords: np.ndarray, epochs: Sequence[int], attrs: dict) -> None:
    """The projected path in the reference's projection-file format (projection.py):
    datasets `proj_xcoord`, `proj_ycoord` (one entry per checkpoint, in epoch order), plus
    `epochs`; `attrs` (e.g. the directions file) as root attributes."""
    import h5py

    from unetscape.atomic import atomic_path

    from .surface_io import write_attrs

    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != 2 or len(coords) != len(epochs):
        raise ValueError(f"coords must have shape ({len(epochs)}, 2) for {len(epochs)} epochs, got {coords.shape}")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("proj_xcoord", data=coords[:, 0])
        f.create_dataset("proj_ycoord", data=coords[:, 1])
        f.create_dataset("epochs", data=np.asarray(epochs, dtype=np.int64))
        write_attrs(f, attrs)
