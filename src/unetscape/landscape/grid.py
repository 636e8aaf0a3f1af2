"""The grid of plane coordinates a surface is evaluated on, and its split into chunks.

A point is a tuple of indices with one entry per axis: (i,) on a 1-D grid, (i, j) on a 2-D
grid, so `values[point]` indexes an array of shape `grid.shape`. Its coordinates are
(x[i],) or (x[i], y[j]).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


def _axis(name: str, spec: Sequence) -> np.ndarray:
    """[min, max, num] -> np.linspace(min, max, num), with a message naming the axis."""
    if not isinstance(spec, (list, tuple)) or len(spec) != 3:
        raise ValueError(f"grid {name} must be [min, max, num], got {spec!r}")
    lo, hi, num = spec
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 1:
        raise ValueError(f"grid {name} num must be a positive integer, got {num!r}")
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        raise ValueError(f"grid {name} min and max must be numbers, got {spec!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
        raise ValueError(f"grid {name} needs finite min <= max, got min={lo!r}, max={hi!r}")
    return np.linspace(lo, hi, int(num))


@dataclass
class SurfaceGrid:
    x: np.ndarray
    y: np.ndarray | None = None

    def __post_init__(self):
        self.x = np.asarray(self.x, dtype=np.float64)
        if self.x.ndim != 1 or len(self.x) == 0:
            raise ValueError(f"grid x must be a non-empty 1-D array, got shape {self.x.shape}")
        if self.y is not None:
            self.y = np.asarray(self.y, dtype=np.float64)
            if self.y.ndim != 1 or len(self.y) == 0:
                raise ValueError(f"grid y must be a non-empty 1-D array, got shape {self.y.shape}")

    @classmethod
    def from_config(cls, x: Sequence, y: Sequence | None = None) -> "SurfaceGrid":
        return cls(_axis("x", x), None if y is None else _axis("y", y))

    @property
    def ndim(self) -> int:
        return 1 if self.y is None else 2

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.x),) if self.y is None else (len(self.x), len(self.y))

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def points(self) -> list[tuple[int, ...]]:
        """Every point, row-major: x index outer, y index inner."""
        return [tuple(int(k) for k in index) for index in np.ndindex(*self.shape)]

    def coordinates(self, point: Sequence[int]) -> tuple[float, ...]:
        if len(point) != self.ndim:
            raise ValueError(f"point {tuple(point)} does not fit a {self.ndim}-D grid")
        if self.y is None:
            return (float(self.x[point[0]]),)
        return (float(self.x[point[0]]), float(self.y[point[1]]))

    def chunk(self, index: int, count: int) -> list[tuple[int, ...]]:
        """The points of chunk `index` of `count`: contiguous runs of near-equal length.

        The first `size % count` chunks hold one point more; every point is in exactly one
        chunk. With more chunks than points, the last chunks are empty.
        """
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ValueError(f"chunk count must be a positive integer, got {count!r}")
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < count:
            raise ValueError(f"chunk index {index!r} is out of range for {count} chunks (0..{count - 1})")
        base, extra = divmod(self.size, count)
        start = index * base + min(index, extra)
        stop = start + base + (1 if index < extra else 0)
        return self.points()[start:stop]
