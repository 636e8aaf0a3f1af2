"""Random, normalised directions in parameter space (Li et al. 2018, filter normalisation).

A direction is a list of tensors, one per learnable parameter in `model.named_parameters()`
order, each with the shape of its parameter. A plane is a list of one (1-D) or two (2-D)
directions. The normalisation follows the reference implementation
(tomgoldstein/loss-landscape, net_plotter.py):

    filter  for each slice i along dim 0: d[i] *= ||w[i]|| / (||d[i]|| + 1e-10)
    layer   d *= ||w|| / ||d||
    weight  d *= w (elementwise)
    none    the raw N(0, 1) draw

Along dim 0 a Conv2d weight (out, in, kh, kw) is cut into output filters; a ConvTranspose2d
weight is stored as (in, out, kh, kw), so its dim-0 slices are the kernels that read one
*input* channel. We keep dim 0 for both, exactly as the reference does, so directions (and
surfaces) stay comparable with it.

Tensors with dim <= 1 (biases, batch-norm gamma and beta) get d = 0 under ignore="biasbn"
(the default), and d = w otherwise, whatever the norm (again the reference's rule).
"""

from __future__ import annotations

import os
from typing import Sequence

import h5py
import numpy as np
import torch
from torch import nn

from unetscape.atomic import atomic_path

from .surface_io import read_attrs, write_attrs

NORMS = ("filter", "layer", "weight", "none")
IGNORES = ("biasbn", "none")
AXES = ("xdirection", "ydirection")  # group names of the reference direction files
DIRECTIONS_FORMAT = "unetscape-directions/1"

Direction = list[torch.Tensor]


def _check_settings(norm: str, ignore: str | None) -> str:
    if norm not in NORMS:
        raise ValueError(f"direction norm must be one of {NORMS}, got {norm!r}")
    ignore = "none" if ignore is None else ignore
    if ignore not in IGNORES:
        raise ValueError(f"direction ignore must be one of {IGNORES} or None, got {ignore!r}")
    return ignore


def parameter_names(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_parameters()]


def normalize_direction(d: torch.Tensor, w: torch.Tensor, norm: str) -> torch.Tensor:
    """Rescale `d` (dim >= 2) in place so that it has the scale of the weights `w`."""
    if norm == "filter":
        d_rows, w_rows = d.reshape(d.shape[0], -1), w.reshape(w.shape[0], -1)
        scale = w_rows.norm(dim=1) / (d_rows.norm(dim=1) + 1e-10)
        d.mul_(scale.view(-1, *([1] * (d.dim() - 1))))
    elif norm == "layer":
        d.mul_(w.norm() / d.norm())
    elif norm == "weight":
        d.mul_(w)
    return d


@torch.no_grad()
def random_direction(
    model: nn.Module, generator: torch.Generator, norm: str = "filter", ignore: str | None = "biasbn"
) -> Direction:
    """One normalised Gaussian direction, on the CPU, as float32 tensors."""
    ignore = _check_settings(norm, ignore)
    direction = []
    for _, p in model.named_parameters():
        w = p.detach().to("cpu", torch.float32)
        # Draw for every tensor, ignored ones included, so the random stream (and therefore
        # every later tensor) is the same whatever `ignore` says.
        d = torch.randn(w.shape, generator=generator)
        if d.dim() <= 1:
            d = torch.zeros_like(w) if ignore == "biasbn" else w.clone()
        else:
            normalize_direction(d, w, norm)
        direction.append(d)
    return direction


def inner_product(a: Direction, b: Direction) -> float:
    """<a, b> over the concatenated vector, accumulated in float64."""
    return float(sum((x.double() * y.double()).sum() for x, y in zip(a, b)))


def make_directions(
    model: nn.Module,
    seed: int,
    norm: str = "filter",
    ignore: str | None = "biasbn",
    orthogonalize: bool = False,
    ndim: int = 2,
) -> list[Direction]:
    """The x (and y) direction of a plane, both drawn from one generator seeded with `seed`.

    x is drawn before y. With `orthogonalize`, y loses its component along x (Gram-Schmidt
    over the whole parameter vector, after normalisation); the reference does not do this, and
    an orthogonalised y is no longer exactly filter-normalised. No effect when ndim == 1.
    """
    if ndim not in (1, 2):
        raise ValueError(f"a plane has 1 or 2 directions, got ndim={ndim!r}")
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    directions = [random_direction(model, generator, norm, ignore) for _ in range(ndim)]
    if orthogonalize and ndim == 2:
        dx, dy = directions
        xx = inner_product(dx, dx)
        if xx == 0:
            raise ValueError("cannot orthogonalize against an all-zero x direction")
        coef = inner_product(dx, dy) / xx
        for x, y in zip(dx, dy):
            y.sub_(x, alpha=coef)
    return directions


def save_directions(
    path: str | os.PathLike,
    directions: list[Direction],
    attrs: dict,
    names: Sequence[str],
    datasets: dict | None = None,
) -> None:
    """Write a plane in the reference layout: groups `xdirection` (and `ydirection`) holding
    datasets "0", "1", ... in parameter order; `attrs` (the settings) as root attributes;
    `datasets` (name -> array, e.g. a PCA plane's `explained_variance_ratio_`) as root datasets.

    `names` (use `parameter_names(model)`) are stored with the shapes so that loading into a
    model with another layout fails clearly instead of pairing the wrong tensors.
    """
    datasets = dict(datasets or {})
    clash = set(AXES) & set(datasets)
    if clash:
        raise ValueError(f"dataset names {sorted(clash)} are the direction groups'")
    if len(directions) not in (1, 2):
        raise ValueError(f"a plane has 1 or 2 directions, got {len(directions)}")
    names = list(names)
    for axis, direction in zip(AXES, directions):
        if len(direction) != len(names):
            raise ValueError(f"{axis} has {len(direction)} tensors for {len(names)} parameter names")
    reserved = {"format", "parameter_names", "parameter_shapes"} & set(attrs)
    if reserved:
        raise ValueError(f"attribute names {sorted(reserved)} are reserved for the directions file")
    meta = {
        **attrs,
        "format": DIRECTIONS_FORMAT,
        "parameter_names": names,
        "parameter_shapes": [list(d.shape) for d in directions[0]],
    }
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for axis, direction in zip(AXES, directions):
                group = f.create_group(axis)
                for k, d in enumerate(direction):
                    group.create_dataset(str(k), data=d.detach().cpu().numpy())
            for name, values in datasets.items():
                f.create_dataset(name, data=np.asarray(values))
            write_attrs(f, meta)


def load_directions(path: str | os.PathLike, model: nn.Module | None = None) -> tuple[list[Direction], dict]:
    """Read a plane written by `save_directions`; with `model`, check it fits that model."""
    with h5py.File(path, "r") as f:
        attrs = read_attrs(f)
        axes = [axis for axis in AXES if axis in f]
        if not axes or axes[0] != "xdirection":
            raise ValueError(f"{path} holds no xdirection group: not a directions file")
        directions = [
            [torch.from_numpy(np.asarray(f[axis][str(k)][()])) for k in range(len(f[axis]))] for axis in axes
        ]
    if model is not None:
        check_directions_fit(directions, model, attrs.get("parameter_names"), source=str(path))
    return directions, attrs


def check_directions_fit(
    directions: list[Direction],
    model: nn.Module,
    names: Sequence[str] | None = None,
    source: str = "directions",
) -> None:
    """Raise a ValueError naming the first parameter where `directions` and `model` disagree."""
    params = list(model.named_parameters())
    if names is not None and list(names) != [n for n, _ in params]:
        expected = [n for n, _ in params]
        first = next(
            (k for k, (a, b) in enumerate(zip(names, expected)) if a != b), min(len(names), len(expected))
        )
        raise ValueError(
            f"{source} were made for another model layout: {len(names)} parameters vs "
            f"{len(expected)}, first difference at position {first} "
            f"({(list(names) + ['<none>'])[first]!r} vs {(expected + ['<none>'])[first]!r})"
        )
    for axis, direction in zip(AXES, directions):
        if len(direction) != len(params):
            raise ValueError(
                f"{source}: {axis} has {len(direction)} tensors, model has {len(params)} parameters"
            )
        for d, (name, p) in zip(direction, params):
            if tuple(d.shape) != tuple(p.shape):
                raise ValueError(
                    f"{source}: {axis} tensor for {name} has shape {tuple(d.shape)}, "
                    f"the parameter has {tuple(p.shape)}"
                )


def directions_settings(seed: int, norm: str, ignore: str | None, orthogonalize: bool, ndim: int) -> dict:
    """The settings that define a random plane, as stored in directions and surface files."""
    return {
        "direction_seed": int(seed),
        "direction_norm": norm,
        "direction_ignore": _check_settings(norm, ignore),
        "direction_orthogonalize": bool(orthogonalize),
        "direction_ndim": int(ndim),
    }
