"""Numbers that summarise one loss surface: roughness, total variation, minima, sharpness, basin width.

A surface is `loss[i, j] = L(x[i], y[j])` on coordinate vectors `x` (nx,) and `y` (ny,), x
first (the transpose of a surface file's meshgrid order; `surface_metrics` reads a file's dict
in this orientation), a curve is `loss[i] = L(x[i])`. The trained model sits at the coordinates (0, 0) (resp. 0),
which must be a grid point for the metrics measured from it. Grids may be non-square, need not
be symmetric about the origin and may start at 0.

Missing values: every non-finite value (NaN for points not evaluated or whose network diverged,
±inf) is *skipped*: a difference stencil that touches one is left out of the average, a
neighbour that is one is not compared with, and so on. A metric that is left with nothing to
average is NaN rather than an error, so tables over many runs keep their rows.

Scaling. Roughness and total variation are made dimensionless so that surfaces of different
runs, grids and loss levels can be compared:

    R     = max(L) - min(L)                     over the finite points (the loss range)
    ell   = max(x[-1] - x[0], y[-1] - y[0]) / 2  the grid's half-width (one length for both axes,
                                                so the Laplacian keeps its meaning)

Both metrics are then unchanged when the coordinates are multiplied by a constant, and when the
loss is replaced by alpha * L + beta (alpha > 0). Anchors: a bowl a x^2 + b y^2 centred on a
square grid scores roughness 2 and total variation 1 whatever a, b and the grid's size; ripples
on top raise both.

Means are plain averages over grid points (or adjacent pairs of points), which is the average
over the plane for the evenly spaced grids the workflow makes; differences use the actual
spacings, so unevenly spaced grids give correct derivatives.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from unetscape.landscape.surface_io import surface_array

# Directions of the half-lines along which basin width is measured: name, axis, sign.
DIRECTIONS_2D = (("xpos", 0, +1), ("xneg", 0, -1), ("ypos", 1, +1), ("yneg", 1, -1))
DIRECTIONS_1D = (("xpos", 0, +1), ("xneg", 0, -1))


# ---------------------------------------------------------------------------------------------
# inputs


def _coords(name: str, values, length: int) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) != length:
        raise ValueError(f"{name} has shape {values.shape} but the loss has {length} points along it")
    if len(values) > 1 and not np.all(np.diff(values) > 0):
        raise ValueError(f"{name} must be strictly increasing")
    return values


def _surface(x, y, loss) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    loss = np.asarray(loss, dtype=np.float64)
    if loss.ndim != 2:
        raise ValueError(f"a surface must be a 2-D array loss[i, j] = L(x[i], y[j]), got shape {loss.shape}")
    return _coords("x", x, loss.shape[0]), _coords("y", y, loss.shape[1]), loss


def _curve(x, loss) -> tuple[np.ndarray, np.ndarray]:
    loss = np.asarray(loss, dtype=np.float64)
    if loss.ndim != 1:
        raise ValueError(f"a curve must be a 1-D array loss[i] = L(x[i]), got shape {loss.shape}")
    return _coords("x", x, loss.shape[0]), loss


def _half_width(*axes: np.ndarray) -> float:
    return max(float(a[-1] - a[0]) for a in axes) / 2.0


def loss_range(loss) -> float:
    """max(L) - min(L) over the finite points; NaN when there are none."""
    finite = np.asarray(loss, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.max() - finite.min()) if finite.size else float("nan")


def _relative(value: float, scale: float, span: float) -> float:
    """value * scale / span, with a flat surface (span 0, hence value 0) scoring 0."""
    if not np.isfinite(value) or not np.isfinite(span):
        return float("nan")
    if span == 0.0:
        return 0.0
    return float(value * scale / span)


# ---------------------------------------------------------------------------------------------
# differences along one axis (axis 0 of `f`), NaN where the stencil touches a missing value


def _second_difference(f: np.ndarray, t: np.ndarray) -> np.ndarray:
    """f''(t_i) at the interior points i = 1..n-2 by the three-point formula.

    2 * [(f[i+1] - f[i]) / h1 - (f[i] - f[i-1]) / h0] / (h0 + h1), h0 = t[i] - t[i-1],
    h1 = t[i+1] - t[i]; on an even grid this is (f[i+1] - 2 f[i] + f[i-1]) / h^2.
    """
    h0 = (t[1:-1] - t[:-2]).reshape((-1,) + (1,) * (f.ndim - 1))
    h1 = (t[2:] - t[1:-1]).reshape(h0.shape)
    return 2.0 * ((f[2:] - f[1:-1]) / h1 - (f[1:-1] - f[:-2]) / h0) / (h0 + h1)


def _slope(f: np.ndarray, t: np.ndarray) -> np.ndarray:
    """|f[i+1] - f[i]| / (t[i+1] - t[i]) for each adjacent pair."""
    h = np.diff(t).reshape((-1,) + (1,) * (f.ndim - 1))
    return np.abs(np.diff(f, axis=0)) / h


def _finite_mean(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


# ---------------------------------------------------------------------------------------------
# roughness and total variation


def roughness(x, y, loss) -> float:
    """Mean absolute Laplacian of the surface, in units of the loss range over the half-width^2.

        roughness = ell^2 / R * mean_{i,j} | d2L/dx2 (i, j) + d2L/dy2 (i, j) |

    The second derivatives are three-point differences with the grid's spacings,
    (L[i+1, j] - 2 L[i, j] + L[i-1, j]) / dx^2 on an even grid (likewise along y); the mean
    runs over the interior points (1 <= i <= nx-2, 1 <= j <= ny-2) whose five-point stencil
    is finite, so a missing point removes the (up to five) stencils it belongs to. ell and R
    as in the module docstring. A paraboloid a x^2 + b y^2 has Laplacian 2a + 2b everywhere,
    hence roughness ell^2 (2a + 2b) / R, which is 2 on a square grid centred on its minimum.
    0 for a flat surface; NaN with no complete stencil (e.g. fewer than 3 points on an axis).
    """
    x, y, loss = _surface(x, y, loss)
    if min(loss.shape) < 3:
        return float("nan")
    laplacian = _second_difference(loss, x)[:, 1:-1] + _second_difference(loss.T, y).T[1:-1, :]
    return _relative(_finite_mean(np.abs(laplacian)), _half_width(x, y) ** 2, loss_range(loss))


def roughness_1d(x, loss) -> float:
    """The curve's version: roughness = ell^2 / R * mean_i |d2L/dx2 (i)|, ell = (x[-1] - x[0]) / 2.

    Mean over the interior points whose three-point stencil is finite. A parabola centred on
    its grid scores 2.
    """
    x, loss = _curve(x, loss)
    if len(loss) < 3:
        return float("nan")
    curvature = np.abs(_second_difference(loss, x))
    return _relative(_finite_mean(curvature), _half_width(x) ** 2, loss_range(loss))


def total_variation(x, y, loss) -> float:
    """Mean absolute slope along x plus along y, in units of the loss range over the half-width.

        total_variation = ell / R * ( mean_{pairs along x} |L[i+1, j] - L[i, j]| / (x[i+1] - x[i])
                                    + mean_{pairs along y} |L[i, j+1] - L[i, j]| / (y[j+1] - y[j]) )

    i.e. the average of the anisotropic gradient norm |dL/dx| + |dL/dy| over the plane. Each
    mean runs over the adjacent pairs whose both values are finite. A plane p x + q y on
    [x0, x1] x [y0, y1] scores ell (|p| + |q|) / (|p| (x1 - x0) + |q| (y1 - y0)) (1/2 on a square
    grid); a bowl centred on a square grid scores 1. 0 for a flat surface; NaN if an axis has
    no finite pair.
    """
    x, y, loss = _surface(x, y, loss)
    if min(loss.shape) < 2:
        return float("nan")
    along_x = _finite_mean(_slope(loss, x))
    along_y = _finite_mean(_slope(loss.T, y))
    return _relative(along_x + along_y, _half_width(x, y), loss_range(loss))


def total_variation_1d(x, loss) -> float:
    """total_variation = ell / R * mean_i |L[i+1] - L[i]| / (x[i+1] - x[i]) over finite pairs.

    On an even grid this is (sum of |steps|) / (2 R): 1/2 for a monotone curve, 1 for a
    single valley, more for every extra wiggle.
    """
    x, loss = _curve(x, loss)
    if len(loss) < 2:
        return float("nan")
    return _relative(_finite_mean(_slope(loss, x)), _half_width(x), loss_range(loss))


# ---------------------------------------------------------------------------------------------
# strict local minima


def strict_local_minima(loss, connectivity: int = 8, edges: bool = False) -> int:
    """Number of grid points whose value is strictly lower than every finite neighbour.

    Neighbours on a surface are the 8 surrounding points (connectivity=8) or the 4 along the
    axes (connectivity=4); on a curve, the points before and after. Ties do not count (a flat
    valley floor has no strict minimum). A point must be finite and have at least one finite
    neighbour; missing neighbours are not compared with.

    With `edges=False` (default) only interior points count, those with a full set of
    neighbours: a boundary point lower than its inner neighbours usually means the surface
    keeps falling beyond the grid, not that it has a minimum there. With `edges=True` boundary
    points are compared with the neighbours they have.
    """
    loss = np.asarray(loss, dtype=np.float64)
    if loss.ndim == 1:
        offsets = [(-1,), (1,)]
    elif loss.ndim == 2:
        if connectivity == 4:
            offsets = [(-1, 0), (1, 0), (0, -1), (0, 1)]
        elif connectivity == 8:
            offsets = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)]
        else:
            raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    else:
        raise ValueError(f"loss must be 1-D or 2-D, got shape {loss.shape}")

    # Pad with NaN so every point has every neighbour; padded ones behave like missing ones.
    padded = np.pad(loss, 1, constant_values=np.nan)
    lower_than_all = np.isfinite(loss)
    compared = np.zeros(loss.shape, dtype=bool)
    for offset in offsets:
        neighbour = padded[tuple(slice(1 + d, n + 1 + d) for d, n in zip(offset, loss.shape))]
        present = np.isfinite(neighbour)
        lower_than_all &= ~present | (loss < neighbour)
        compared |= present
    minima = lower_than_all & compared
    if not edges:
        interior = np.zeros(loss.shape, dtype=bool)
        interior[(slice(1, -1),) * loss.ndim] = True
        minima &= interior
    return int(minima.sum())


# ---------------------------------------------------------------------------------------------
# measured from the trained model at the origin


def _origin_index(name: str, coords: np.ndarray) -> int:
    """Index of coordinate 0, allowing the rounding error of np.linspace."""
    tolerance = 1e-9 * float(np.abs(coords).max())
    k = int(np.argmin(np.abs(coords)))
    if abs(coords[k]) > tolerance:
        raise ValueError(
            f"the trained model's point (0, 0) is not on the grid: {name} has no coordinate 0 "
            f"(nearest is {coords[k]:g}); use a grid with 0 as one of its {name} values"
        )
    return k


def origin_loss(x, y, loss) -> float:
    """L(0, 0), the loss of the trained model (error if (0, 0) is not a grid point)."""
    x, y, loss = _surface(x, y, loss)
    return float(loss[_origin_index("x", x), _origin_index("y", y)])


def sharpness(x, y, loss, radii: Sequence[float]) -> np.ndarray:
    """For each radius r: the largest rise above the trained model within distance r of it.

        sharpness(r) = max { L(x[i], y[j]) - L(0, 0) : x[i]^2 + y[j]^2 <= r^2, L finite }

    (the grid analogue of Keskar et al.'s sharpness, on the plane instead of a box in weight
    space). Always >= 0, since the origin itself is in the disc. Only grid points count: a disc
    reaching past the grid is cut at its edges, and for a >= b the bowl a x^2 + b y^2 gives
    exactly a r^2 when (r, 0) is a grid point. NaN for every radius if L(0, 0) is missing;
    ValueError if (0, 0) is not a grid point.
    """
    x, y, loss = _surface(x, y, loss)
    centre = loss[_origin_index("x", x), _origin_index("y", y)]
    distance = np.hypot(x[:, None], y[None, :])
    rise = np.where(np.isfinite(loss), loss - centre, -np.inf)
    return _disc_max(distance, rise, centre, radii)


def sharpness_1d(x, loss, radii: Sequence[float]) -> np.ndarray:
    """sharpness(r) = max { L(x[i]) - L(0) : |x[i]| <= r, L finite }, as for a surface."""
    x, loss = _curve(x, loss)
    centre = loss[_origin_index("x", x)]
    rise = np.where(np.isfinite(loss), loss - centre, -np.inf)
    return _disc_max(np.abs(x), rise, centre, radii)


def _disc_max(distance: np.ndarray, rise: np.ndarray, centre: float, radii) -> np.ndarray:
    out = np.full(len(radii), np.nan)
    if not np.isfinite(centre):
        return out
    for k, r in enumerate(radii):
        if not r >= 0:
            raise ValueError(f"sharpness radii must be >= 0, got {r!r}")
        # A relative slack so points exactly on the circle survive linspace rounding.
        inside = distance <= r * (1 + 1e-9) + 1e-12
        out[k] = rise[inside].max()
    return out


def _first_crossing(t: np.ndarray, values: np.ndarray, level: float) -> float:
    """Distance |t| where `values` (ordered outwards from t[0] = 0) first reaches `level`.

    Linear interpolation between the last finite point below `level` and the first at or
    above it; missing points are skipped over. NaN if `level` is never reached.
    """
    keep = np.isfinite(values)
    t, values = np.abs(t[keep]), values[keep]
    above = np.flatnonzero(values >= level)
    if above.size == 0:
        return float("nan")
    k = int(above[0])
    if k == 0:
        return 0.0
    fraction = (level - values[k - 1]) / (values[k] - values[k - 1])
    return float(t[k - 1] + fraction * (t[k] - t[k - 1]))


def _basin(axes: Sequence[np.ndarray], loss: np.ndarray, origin: tuple, rise: float, directions) -> dict:
    if not rise > 0:
        raise ValueError(f"basin width rise must be > 0, got {rise!r}")
    centre = loss[origin]
    widths = {}
    for name, axis, sign in directions:
        k0 = origin[axis]
        n = loss.shape[axis]
        stop = n if sign > 0 else -1
        index = np.arange(k0, stop, sign)
        if len(index) < 2:  # no grid on this side of the origin (e.g. a grid starting at 0)
            continue
        line = list(origin)
        line[axis] = index
        widths[name] = (
            _first_crossing(axes[axis][index], loss[tuple(line)], centre + rise)
            if np.isfinite(centre)
            else float("nan")
        )
    values = list(widths.values())
    mean = float(np.mean(values)) if values else float("nan")
    return {"mean": mean, **{name: widths.get(name, float("nan")) for name, _, _ in directions}}


def basin_width(x, y, loss, rise: float) -> dict:
    """How far from the trained model the loss first rises by `rise`, along the four axis half-lines.

    Walking outwards from (0, 0) along +x, -x (y = 0) and +y, -y (x = 0), the width in one
    direction is the distance d at which L first reaches L(0, 0) + rise, linearly interpolated
    between the last grid point below that level and the first at or above it (missing points
    are stepped over):

        d = |t_{k-1}| + (L(0,0) + rise - L_{k-1}) / (L_k - L_{k-1}) * |t_k - t_{k-1}|

    Returns {"mean", "xpos", "xneg", "ypos", "yneg"}. A direction in which the level is never
    reached within the grid is NaN (the basin is wider than the grid there), and so is a
    direction the grid does not extend into (a grid starting at 0); "mean" averages the
    directions the grid extends into and is NaN if any of them is NaN, so it is never an
    underestimate. For a x^2 + b y^2 the widths are sqrt(rise / a) along x and sqrt(rise / b)
    along y. ValueError if (0, 0) is not a grid point.
    """
    x, y, loss = _surface(x, y, loss)
    origin = (_origin_index("x", x), _origin_index("y", y))
    return _basin((x, y), loss, origin, rise, DIRECTIONS_2D)


def basin_width_1d(x, loss, rise: float) -> dict:
    """basin_width along a curve: {"mean", "xpos", "xneg"}, same definition and NaN rules."""
    x, loss = _curve(x, loss)
    return _basin((x,), loss, (_origin_index("x", x),), rise, DIRECTIONS_1D)


def minimum_offset(loss, axes: Sequence[np.ndarray]) -> float:
    """Grid steps from the trained model's point to the lowest finite point of the grid: the
    largest index difference over the axes (Chebyshev distance), so 0 means the trained model
    is the grid's minimum and 1 that the minimum is one of its neighbours. NaN without a
    finite point."""
    loss = np.asarray(loss, dtype=np.float64)
    if not np.isfinite(loss).any():
        return float("nan")
    lowest = np.unravel_index(np.nanargmin(np.where(np.isfinite(loss), loss, np.nan)), loss.shape)
    origin = [_origin_index(name, np.asarray(a, dtype=np.float64)) for name, a in zip(("x", "y"), axes)]
    return float(max(abs(int(a) - int(b)) for a, b in zip(lowest, origin)))


# ---------------------------------------------------------------------------------------------
# everything for one surface file


def _key(value: float) -> str:
    return f"{float(value):g}"


def surface_metrics(surface: dict, radii: Sequence[float] = (), rises: Sequence[float] = ()) -> dict:
    """All metrics of the `train_loss` of one surface (as `read_surface` returns it), flat.

    The surface's meshgrid-ordered array is turned x-first once, here (`surface_array`), so
    every function above sees `loss[i, j] = L(x[i], y[j])`.

    Keys: ndim, points_total, points_finite, loss_origin, loss_min, loss_max, loss_range,
    roughness, total_variation, strict_local_minima (interior points, 8 neighbours on a
    surface), strict_local_minima_4 (surfaces only, 4 neighbours), sharpness_r{r} per radius
    and basin_width_h{rise}_{mean,xpos,xneg[,ypos,yneg]} per rise, with r and rise written
    with `%g`. Values are Python ints and floats; missing ones are float NaN (json.dump writes
    them as NaN).
    """
    x = np.asarray(surface["xcoordinates"], dtype=np.float64)
    y = surface.get("ycoordinates")
    loss = np.asarray(surface_array(surface, "train_loss", order="xy"), dtype=np.float64)
    finite = loss[np.isfinite(loss)]
    out: dict = {
        "ndim": int(loss.ndim),
        "points_total": int(loss.size),
        "points_finite": int(finite.size),
    }
    if y is None:
        x, loss = _curve(x, loss)
        out["loss_origin"] = float(loss[_origin_index("x", x)])
        out.update(
            roughness=roughness_1d(x, loss),
            total_variation=total_variation_1d(x, loss),
            strict_local_minima=strict_local_minima(loss),
        )
        sharp = sharpness_1d(x, loss, radii)
        basins = [basin_width_1d(x, loss, h) for h in rises]
    else:
        x, y, loss = _surface(x, y, loss)
        out["loss_origin"] = origin_loss(x, y, loss)
        out.update(
            roughness=roughness(x, y, loss),
            total_variation=total_variation(x, y, loss),
            strict_local_minima=strict_local_minima(loss, connectivity=8),
            strict_local_minima_4=strict_local_minima(loss, connectivity=4),
        )
        sharp = sharpness(x, y, loss, radii)
        basins = [basin_width(x, y, loss, h) for h in rises]
    out["loss_min"] = float(finite.min()) if finite.size else float("nan")
    out["loss_max"] = float(finite.max()) if finite.size else float("nan")
    out["loss_range"] = loss_range(loss)
    out["minimum_offset"] = minimum_offset(loss, [x] if y is None else [x, y])
    for r, value in zip(radii, sharp):
        out[f"sharpness_r{_key(r)}"] = float(value)
    for h, widths in zip(rises, basins):
        for name, value in widths.items():
            out[f"basin_width_h{_key(h)}_{name}"] = float(value)
    return out
