"""Several random planes through one trained model: a number made from random directions is a
measurement of the model only once it is averaged over directions.

A random plane is one draw from a distribution of directions; its roughness (or sharpness, or
basin width) measures the draw nearly as much as the model. So each run is also measured on K
independent seeded direction sets, each a filter-normalised plane (Li et al. 2018) evaluated on
its own grid, with a line along its x direction. Set 0 is the plane the figures draw (seed
`landscape.plane.seed`) measured again on this grid; set k >= 1 has the seed
`derive_seed(plane seed, "direction_set{k}")`. Every run of a study is measured on the same
grids, so their averages compare.

The file (`random/sets.h5`, one per run):

    seeds              (K,)          the direction seed of each set
    xcoordinates, ycoordinates        the plane grid of every set
    train_loss         (K, ny, nx)   set k's surface, meshgrid order (train_loss[k, j, i] = L(x[i], y[j]))
    line_xcoordinates  (nl,)         the line grid
    line_train_loss    (K, nl)       the loss along set k's x direction
and attributes: the directions' settings, the evaluation set, the measured checkpoint.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from unetscape.atomic import atomic_path
from unetscape.seeding import derive_seed

from .surface_io import LAYOUT, read_attrs, write_attrs

SETS_FORMAT = "unetscape-direction-sets/1"


def direction_set_seeds(plane_seed: int, count: int) -> list[int]:
    """The direction seed of each of `count` sets: the plane's own seed first."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"landscape.direction_sets.count must be a positive integer, got {count!r}")
    return [int(plane_seed)] + [derive_seed(int(plane_seed), f"direction_set{k}") for k in range(1, count)]


def write_direction_sets(path: str | os.PathLike, seeds, x, y, surfaces, line_x, lines, attrs: dict) -> None:
    surfaces, lines = np.asarray(surfaces, dtype=np.float64), np.asarray(lines, dtype=np.float64)
    if surfaces.shape != (len(seeds), len(y), len(x)) or lines.shape != (len(seeds), len(line_x)):
        raise ValueError(f"direction sets of shape {surfaces.shape} and {lines.shape} do not fit {len(seeds)} sets "
                         f"on a {len(y)} x {len(x)} grid and a line of {len(line_x)} points")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("seeds", data=np.asarray(seeds, dtype=np.uint64))
        f.create_dataset("xcoordinates", data=np.asarray(x, dtype=np.float64))
        f.create_dataset("ycoordinates", data=np.asarray(y, dtype=np.float64))
        f.create_dataset("train_loss", data=surfaces)
        f.create_dataset("line_xcoordinates", data=np.asarray(line_x, dtype=np.float64))
        f.create_dataset("line_train_loss", data=lines)
        write_attrs(f, {"format": SETS_FORMAT, "layout": "train_loss[k] is set k; " + LAYOUT, **attrs})


def read_direction_sets(path: str | os.PathLike) -> dict:
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != SETS_FORMAT:
            raise ValueError(f"{path} is not a {SETS_FORMAT} file")
        data = {key: f[key][()] for key in f}
        data["attrs"] = read_attrs(f)
    return data


def set_surfaces(sets: dict) -> list[dict]:
    """Each set's plane and line as the surface dicts `measures.surface_metrics` reads."""
    out = []
    for k in range(len(sets["seeds"])):
        plane = {"xcoordinates": sets["xcoordinates"], "ycoordinates": sets["ycoordinates"],
                 "train_loss": sets["train_loss"][k], "attrs": {"layout": LAYOUT}}
        line = {"xcoordinates": sets["line_xcoordinates"], "train_loss": sets["line_train_loss"][k], "attrs": {}}
        out.append({"seed": int(sets["seeds"][k]), "plane": plane, "line": line})
    return out
