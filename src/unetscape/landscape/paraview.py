"""A surface as a ParaView-readable file: a VTK XML structured grid (.vts), written by pyevtk.

The reference's h52vtp.py turns a surface into a .vtp of quads whose points are (x, y, loss);
this export gives ParaView the same picture for any grid, square or not: the grid's points
(x[i], y[j], L(x[i], y[j])) as one structured (nx, ny, 1) block, the loss, hard Dice (also in
percent as `train_acc`) and IoU as point data, and each cell's mean loss as cell data
(`averaged_train_loss`, as h52vtp.py's "averaged zvalue"). VTK numbers points with x fastest,
point k = i + nx * j, which is the row-major order of the surface file's (ny, nx) arrays.

Unevaluated points (NaN) have no height: they sit at z = NaN and are blanked, with every cell
that touches them, through VTK's `vtkGhostType` arrays (HIDDENPOINT, HIDDENCELL), so ParaView
leaves holes there instead of drawing through them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from unetscape.atomic import atomic_path

from .surface_io import surface_array

# vtkDataSetAttributes ghost flags
HIDDEN_POINT = 2
HIDDEN_CELL = 32
POINT_DATA = ("train_loss", "train_acc", "dice", "iou")


def _block(values: np.ndarray) -> np.ndarray:
    """An x-first (nx, ny) array as pyevtk's (nx, ny, 1) block."""
    return np.ascontiguousarray(values, dtype=np.float64)[:, :, None]


def write_vts(surface: dict, out: str | os.PathLike) -> Path:
    """Write `surface` (as `read_surface` returns it, 2-D) to `out` (a .vts file); returns `out`."""
    from pyevtk.hl import gridToVTK

    out = Path(out)
    if out.suffix != ".vts":
        raise ValueError(f"{out}: a structured-grid file must end in .vts")
    if surface.get("ycoordinates") is None:
        raise ValueError("only 2-D surfaces can be exported as a structured grid")
    x = np.asarray(surface["xcoordinates"], dtype=np.float64)
    y = np.asarray(surface["ycoordinates"], dtype=np.float64)
    loss = surface_array(surface, "train_loss", order="xy")
    if min(loss.shape) < 2:
        raise ValueError(f"a surface of shape {loss.shape} has no cells to draw")
    points_x, points_y = np.meshgrid(x, y, indexing="ij")
    missing = ~np.isfinite(loss)
    cell_loss = (loss[:-1, :-1] + loss[1:, :-1] + loss[:-1, 1:] + loss[1:, 1:]) / 4
    cell_missing = ~np.isfinite(cell_loss)

    point_data = {name: _block(surface_array(surface, name, order="xy")) for name in POINT_DATA if name in surface}
    point_data["vtkGhostType"] = np.ascontiguousarray(np.where(missing, HIDDEN_POINT, 0).astype(np.uint8)[:, :, None])
    cell_data = {
        "averaged_train_loss": _block(cell_loss),
        "vtkGhostType": np.ascontiguousarray(np.where(cell_missing, HIDDEN_CELL, 0).astype(np.uint8)[:, :, None]),
    }
    with atomic_path(out) as tmp:
        # pyevtk appends the extension to the name it is given.
        stem = tmp.with_name(tmp.name + ".part")
        written = Path(gridToVTK(str(stem), _block(points_x), _block(points_y), _block(loss),
                                 cellData=cell_data, pointData=point_data))
        try:
            os.replace(written, tmp)
        finally:
            written.unlink(missing_ok=True)
    return out
