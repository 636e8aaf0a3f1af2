"""Surface files: chunk files that each hold their own points, and the merged surface.

The merged file keeps the reference implementation's dataset names and layout (tomgoldstein/
loss-landscape, plot_surface.py), so its tools (plot_2D.py, plot_1D.py, h52vtp.py) draw it:

    xcoordinates  (nx,)        ycoordinates  (ny,)   (absent on a 1-D surface)
    train_loss    (ny, nx)     mean per-image soft Dice loss
    train_acc     (ny, nx)     mean per-image hard Dice, in percent (the accuracy analogue)
    dice, iou     (ny, nx)     mean per-image hard Dice and IoU as fractions
    test_loss, test_acc, test_dice, test_iou   the same on the held-out set (the reference's
                  names for the test-set surfaces), when the surface was evaluated on one
    dir_file      string       the directions file the surface was evaluated on

2-D arrays are in `np.meshgrid(x, y)` order, `train_loss[j, i] = L(x[i], y[j])`: rows are
y, as the reference, matplotlib and plotly expect; the `layout` attribute says so. A 1-D
surface (a line) holds `train_loss[i] = L(x[i])`. Read 2-D values with `surface_array`, which
hands them out in the orientation asked for, so no caller transposes by hand.

Points not evaluated hold NaN. The reference's plot_surface.py starts its arrays at -1 and
on a resume recomputes exactly the points whose loss is <= 0; NaN compares false, so it
would take our unevaluated points as done (set them to -1 first to have it fill them).

Settings are root attributes: scalars as they are, everything else JSON-encoded and listed in
the `json_attrs` attribute so that it decodes back to the same value.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from unetscape import __version__
from unetscape.atomic import atomic_path

from .grid import SurfaceGrid

SURFACE_FORMAT = "unetscape-surface/1"
CHUNK_FORMAT = "unetscape-surface-chunk/1"
METRICS = {"train_loss": "loss", "dice": "dice", "iou": "iou"}  # dataset name -> value key
# Values on the held-out set, present when a surface was evaluated on one.
HELDOUT_METRICS = {"test_loss": "test_loss", "test_dice": "test_dice", "test_iou": "test_iou"}
LAYOUT = "train_loss[j, i] = L(xcoordinates[i], ycoordinates[j]): shape (ny, nx), meshgrid order as in the reference"
# What files of the first format version (x as the first axis) recorded; read_surface turns them.
LAYOUT_X_FIRST = "train_loss[i, j] = L(xcoordinates[i], ycoordinates[j]); the reference stores the transpose"
LAYOUT_1D = "train_loss[i] = L(xcoordinates[i])"
ORDERS = ("yx", "xy")
_SCALARS = (bool, int, float, str, np.bool_, np.integer, np.floating)


def write_attrs(obj: h5py.HLObject, attrs: dict) -> None:
    """Store `attrs` on an HDF5 file or group; non-scalars (and None) go in as JSON."""
    if "json_attrs" in attrs:
        raise ValueError("attribute name 'json_attrs' is reserved")
    encoded = []
    for key, value in attrs.items():
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if isinstance(value, _SCALARS):
            obj.attrs[key] = value
        else:
            try:
                obj.attrs[key] = json.dumps(value, sort_keys=True)
            except TypeError as err:
                raise TypeError(
                    f"attribute {key!r} is neither a scalar nor JSON-serialisable: {err}"
                ) from None
            encoded.append(key)
    obj.attrs["json_attrs"] = json.dumps(encoded)


def read_attrs(obj: h5py.HLObject) -> dict:
    """The inverse of `write_attrs`, with numpy scalars turned into Python ones."""
    encoded = set(json.loads(obj.attrs.get("json_attrs", "[]")))
    attrs = {}
    for key, value in obj.attrs.items():
        if key == "json_attrs":
            continue
        if isinstance(value, bytes):
            value = value.decode()
        if key in encoded:
            value = json.loads(value)
        elif isinstance(value, np.generic):
            value = value.item()
        attrs[key] = value
    return attrs


def write_chunk(
    path: str | os.PathLike,
    grid: SurfaceGrid,
    points: Sequence[Sequence[int]],
    values: dict,
    attrs: dict,
) -> None:
    """Write the values of `points` only: datasets `i` (and `j`), `train_loss`, `dice`, `iou`.

    `values` holds arrays "loss", "dice", "iou" in the order of `points` (what
    `SurfaceEvaluator.evaluate_points` returns), and optionally "test_loss", "test_dice",
    "test_iou" on the held-out set (all three or none). The grid is stored as attributes so a
    merge can refuse chunks of a different grid.
    """
    index = np.asarray(points, dtype=np.int64).reshape(len(points), grid.ndim)
    _check_in_grid(index, grid, str(path))
    held = [key for key in HELDOUT_METRICS.values() if key in values]
    if held and len(held) != len(HELDOUT_METRICS):
        raise ValueError(f"held-out values need all of {list(HELDOUT_METRICS.values())}, got {held}")
    names = {**METRICS, **(HELDOUT_METRICS if held else {})}
    columns = {name: np.asarray(values[key], dtype=np.float64) for name, key in names.items()}
    for name, column in columns.items():
        if column.shape != (len(index),):
            raise ValueError(f"{name} has shape {column.shape} for {len(index)} points")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("i", data=index[:, 0])
            if grid.ndim == 2:
                f.create_dataset("j", data=index[:, 1])
            for name, column in columns.items():
                f.create_dataset(name, data=column)
            write_attrs(f, {**attrs, "format": CHUNK_FORMAT})
            f.attrs["grid_x"] = grid.x
            if grid.y is not None:
                f.attrs["grid_y"] = grid.y


def read_chunk(path: str | os.PathLike) -> dict:
    """A chunk file as a dict: `grid`, `points` (n, ndim), the metric arrays and `attrs`."""
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != CHUNK_FORMAT:
            raise ValueError(f"{path} is not a {CHUNK_FORMAT} file")
        grid = SurfaceGrid(f.attrs["grid_x"], f.attrs["grid_y"] if "grid_y" in f.attrs else None)
        columns = [f["i"][()]] + ([f["j"][()]] if "j" in f else [])
        chunk = {name: f[name][()] for name in (*METRICS, *HELDOUT_METRICS) if name in f}
        attrs = {k: v for k, v in read_attrs(f).items() if k not in ("grid_x", "grid_y")}
    return {"grid": grid, "points": np.stack(columns, axis=1), **chunk, "attrs": attrs}


def merge_chunks(
    chunk_paths: Sequence[str | os.PathLike],
    grid: SurfaceGrid,
    out_path: str | os.PathLike,
    attrs: dict,
) -> dict:
    """Gather chunk files into one surface file; returns what `read_surface` would.

    Points no chunk covers stay NaN (`points_evaluated` < `points_total`). A chunk of another
    grid, or two chunks with the same point, is an error. An attribute `dir_file` (the
    directions file) is written as the reference's `dir_file` dataset instead.
    """
    reserved = {"format", "layout", "points_total", "points_evaluated"} & set(attrs)
    if reserved:
        raise ValueError(f"attribute names {sorted(reserved)} are reserved for the surface file")
    chunks = [read_chunk(path) for path in chunk_paths]
    held = {all(name in c for name in HELDOUT_METRICS) for c in chunks}
    if len(held) > 1:
        raise ValueError(f"some of the chunks {list(chunk_paths)} hold held-out values and some do not")
    names = [*METRICS, *(HELDOUT_METRICS if held == {True} else ())]
    surface = {name: np.full(grid.shape, np.nan) for name in names}
    owner = np.full(grid.shape, -1, dtype=np.int64)
    for k, (path, chunk) in enumerate(zip(chunk_paths, chunks)):
        if not _same_grid(chunk["grid"], grid):
            raise ValueError(f"chunk {path} was evaluated on another grid than the one being merged")
        for point in map(tuple, chunk["points"].tolist()):
            if owner[point] >= 0:
                raise ValueError(
                    f"point {point} is given by both chunk {chunk_paths[owner[point]]} and chunk {path}"
                )
            owner[point] = k
        index = tuple(chunk["points"].T)
        for name in names:
            surface[name][index] = chunk[name]

    attrs = dict(attrs)
    dir_file = attrs.pop("dir_file", None)
    meta = {
        "unetscape_version": __version__,
        **attrs,
        "format": SURFACE_FORMAT,
        "layout": LAYOUT if grid.ndim == 2 else LAYOUT_1D,
        "points_total": grid.size,
        "points_evaluated": int((owner >= 0).sum()),
    }
    with atomic_path(out_path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("xcoordinates", data=grid.x)
            if grid.y is not None:
                f.create_dataset("ycoordinates", data=grid.y)
            # Values were gathered by point (i, j); the file holds them in meshgrid order.
            stored = {name: values.T for name, values in surface.items()}
            f.create_dataset("train_loss", data=stored["train_loss"])
            f.create_dataset("train_acc", data=100.0 * stored["dice"])
            f.create_dataset("dice", data=stored["dice"])
            f.create_dataset("iou", data=stored["iou"])
            if "test_loss" in stored:
                f.create_dataset("test_loss", data=stored["test_loss"])
                f.create_dataset("test_acc", data=100.0 * stored["test_dice"])
                f.create_dataset("test_dice", data=stored["test_dice"])
                f.create_dataset("test_iou", data=stored["test_iou"])
            if dir_file is not None:
                f.create_dataset("dir_file", data=os.fspath(dir_file))
            write_attrs(f, meta)
    return read_surface(out_path)


SURFACE_ARRAYS = ("train_loss", "train_acc", "dice", "iou", "test_loss", "test_acc", "test_dice", "test_iou")


def read_surface(path: str | os.PathLike) -> dict:
    """A surface file as a dict of arrays plus `attrs` (`ycoordinates` is None when 1-D).

    2-D arrays come in the file's meshgrid order, `[j, i] = value at (x[i], y[j])`; files of
    the first format (x first, told by their `layout` attribute) are turned to it. Use
    `surface_array` to get them in a stated orientation.
    """
    path = Path(path)
    with h5py.File(path, "r") as f:
        if "xcoordinates" not in f or "train_loss" not in f:
            raise ValueError(f"{path} has no xcoordinates/train_loss: not a surface file")
        surface = {name: f[name][()] for name in ("xcoordinates", *SURFACE_ARRAYS) if name in f}
        surface["ycoordinates"] = f["ycoordinates"][()] if "ycoordinates" in f else None
        if "dir_file" in f:
            value = f["dir_file"][()]
            surface["dir_file"] = value.decode() if isinstance(value, bytes) else str(value)
        surface["attrs"] = read_attrs(f)
    if surface["ycoordinates"] is not None:
        layout = surface["attrs"].get("layout")
        if layout == LAYOUT_X_FIRST:
            for name in SURFACE_ARRAYS:
                if name in surface:
                    surface[name] = surface[name].T
            surface["attrs"]["layout"] = LAYOUT
        elif layout != LAYOUT:
            raise ValueError(f"{path}: unknown 2-D layout {layout!r} (attribute 'layout'); expected {LAYOUT!r}")
        expected = (len(surface["ycoordinates"]), len(surface["xcoordinates"]))
        for name in SURFACE_ARRAYS:
            if name in surface and surface[name].shape != expected:
                raise ValueError(
                    f"{path}: {name} has shape {surface[name].shape}, but (len(ycoordinates), "
                    f"len(xcoordinates)) is {expected}"
                )
    return surface


def surface_array(surface: dict, name: str = "train_loss", order: str = "yx") -> np.ndarray:
    """One array of a surface (a dict as `read_surface` returns it) in a stated orientation.

    order="yx": `[j, i] = value at (x[i], y[j])`, rows are y: the file's (and the reference's)
    meshgrid order, what matplotlib's contour and plotly's surface take with 1-D x and y.
    order="xy": `[i, j] = value at (x[i], y[j])`, x first, as the metric functions take it.
    A 1-D surface's array is returned as it is, whatever the order.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    values = np.asarray(surface[name])
    x, y = surface["xcoordinates"], surface.get("ycoordinates")
    if y is None:
        if values.shape != (len(x),):
            raise ValueError(f"{name} has shape {values.shape} for {len(x)} x coordinates")
        return values
    if values.shape != (len(y), len(x)):
        raise ValueError(
            f"{name} has shape {values.shape}, not (len(ycoordinates), len(xcoordinates)) = "
            f"{(len(y), len(x))}: not in the meshgrid order of a surface file"
        )
    return values if order == "yx" else values.T


def _same_grid(a: SurfaceGrid, b: SurfaceGrid) -> bool:
    if (a.y is None) != (b.y is None):
        return False
    return np.array_equal(a.x, b.x) and (a.y is None or np.array_equal(a.y, b.y))


def _check_in_grid(index: np.ndarray, grid: SurfaceGrid, where: str) -> None:
    bad = ((index < 0) | (index >= np.asarray(grid.shape))).any(axis=1)
    if bad.any():
        raise ValueError(
            f"{where}: point {tuple(index[np.argmax(bad)])} is outside the grid of shape {grid.shape}"
        )


def merge_chunk_files(chunk_paths: Sequence[str | os.PathLike], out_path: str | os.PathLike, log=print) -> dict:
    """Merge chunk files of one plane; the grid and attributes come from the first chunk."""
    first = read_chunk(chunk_paths[0])
    attrs = {k: v for k, v in first["attrs"].items() if k not in ("format", "chunk")}
    surface = merge_chunks(chunk_paths, first["grid"], out_path, attrs)
    loss = surface["train_loss"]
    finite = np.isfinite(loss)
    span = f"loss {loss[finite].min():.4f}..{loss[finite].max():.4f}" if finite.any() else "no finite values"
    log(f"merged {len(chunk_paths)} chunk(s) into {out_path}: {int(finite.sum())}/{loss.size} points, {span}")
    return surface
