"""Landscape metrics on surfaces whose answers are known in closed form."""

import json
import math

import numpy as np
import pytest

from unetscape.measures.surface_metrics import (
    basin_width,
    basin_width_1d,
    loss_range,
    roughness,
    roughness_1d,
    sharpness,
    sharpness_1d,
    strict_local_minima,
    surface_metrics,
    total_variation,
    total_variation_1d,
)

A, B = 3.0, 1.0  # a != b so that a mix-up of the axes shows


def grid():
    """Non-square, not symmetric about the origin, 0 on both axes (steps 0.025 and 0.03)."""
    return np.linspace(-1.0, 1.0, 81), np.linspace(-0.6, 1.2, 61)


def bowl(x, y, a=A, b=B):
    return a * x[:, None] ** 2 + b * y[None, :] ** 2


def ripple(x, y):
    return 0.05 * np.sin(20 * x[:, None]) * np.sin(20 * y[None, :])


# --------------------------------------------------------------------------------------------
# roughness and total variation


def test_paraboloid_roughness_is_its_constant_laplacian_in_range_units():
    x, y = grid()
    loss = bowl(x, y)
    half_width = max(x[-1] - x[0], y[-1] - y[0]) / 2  # 1.0
    span = A * 1.0**2 + B * 1.2**2  # the far corner, minus the minimum 0 at the origin
    assert loss_range(loss) == pytest.approx(span)
    assert roughness(x, y, loss) == pytest.approx(half_width**2 * (2 * A + 2 * B) / span, rel=1e-9)


def test_centred_bowl_anchors_and_scale_invariance():
    x = y = np.linspace(-0.4, 0.4, 41)
    loss = bowl(x, y, 5.0, 0.5)
    assert roughness(x, y, loss) == pytest.approx(2.0, rel=1e-9)
    assert total_variation(x, y, loss) == pytest.approx(1.0, rel=1e-9)
    # Stretching the plane and rescaling / shifting the loss changes neither number.
    rough, tv = roughness(x, y, loss), total_variation(x, y, loss)
    assert roughness(7 * x, 7 * y, 0.1 * loss + 2) == pytest.approx(rough, rel=1e-9)
    assert total_variation(7 * x, 7 * y, 0.1 * loss + 2) == pytest.approx(tv, rel=1e-9)


def test_ripples_add_minima_roughness_and_variation():
    x, y = grid()
    # A shallow bowl, so the ripple's slopes beat the bowl's over much of the grid.
    smooth = bowl(x, y, 0.3, 0.1)
    rough = smooth + ripple(x, y)
    assert strict_local_minima(smooth) == 1
    assert strict_local_minima(smooth, connectivity=4) == 1
    assert strict_local_minima(rough) > 20
    assert roughness(x, y, rough) > 3 * roughness(x, y, smooth)
    assert total_variation(x, y, rough) > 1.2 * total_variation(x, y, smooth)


def test_tilted_plane_total_variation_and_flatness():
    x, y = np.linspace(-1.0, 1.0, 21), np.linspace(0.0, 3.0, 16)
    p, q = 2.0, -0.5
    loss = p * x[:, None] + q * y[None, :]
    half_width = 1.5  # half of the longer side, y's
    span = abs(p) * 2.0 + abs(q) * 3.0
    assert total_variation(x, y, loss) == pytest.approx(half_width * (abs(p) + abs(q)) / span, rel=1e-9)
    assert roughness(x, y, loss) == pytest.approx(0.0, abs=1e-9)
    assert strict_local_minima(loss) == 0
    assert strict_local_minima(loss, edges=True) == 1  # the corner (x = -1, y = 3)


def test_flat_surface_scores_zero():
    x, y = grid()
    loss = np.full((len(x), len(y)), 0.3)
    assert roughness(x, y, loss) == 0.0
    assert total_variation(x, y, loss) == 0.0
    assert strict_local_minima(loss) == 0  # ties are not strict minima


# --------------------------------------------------------------------------------------------
# minima


def test_four_and_eight_neighbours_differ_on_diagonals():
    loss = np.array([[-1.0, 1.0, -1.0], [1.0, 0.0, 1.0], [-1.0, 1.0, -1.0]])
    assert strict_local_minima(loss, connectivity=4) == 1
    assert strict_local_minima(loss, connectivity=8) == 0
    assert strict_local_minima(loss, connectivity=8, edges=True) == 4  # the corners
    with pytest.raises(ValueError, match="connectivity"):
        strict_local_minima(loss, connectivity=6)


def test_minima_compare_only_with_finite_neighbours():
    loss = np.ones((3, 3))
    loss[1, 1], loss[0, 1] = 0.5, np.nan
    assert strict_local_minima(loss) == 1
    loss[0, 1] = 0.0  # a finite lower neighbour: no longer a minimum
    assert strict_local_minima(loss) == 0
    alone = np.full((3, 3), np.nan)
    alone[1, 1] = 0.0  # nothing to compare with: not counted
    assert strict_local_minima(alone) == 0
    assert strict_local_minima(np.array([2.0, 1.0, 3.0, 0.5, 4.0])) == 2  # a curve


# --------------------------------------------------------------------------------------------
# missing values


def test_nan_points_are_skipped_not_propagated():
    x, y = grid()
    clean = bowl(x, y) + ripple(x, y)
    holed = clean.copy()
    holed[50, 30] = np.nan
    holed[70, 55] = np.nan
    for metric in (roughness, total_variation):
        value = metric(x, y, holed)
        assert np.isfinite(value)
        assert value == pytest.approx(metric(x, y, clean), rel=0.05)
    # On the bowl the Laplacian is constant, so skipping stencils leaves roughness exact.
    bowl_holed = bowl(x, y)
    bowl_holed[50, 30] = np.nan
    assert roughness(x, y, bowl_holed) == pytest.approx(roughness(x, y, bowl(x, y)), rel=1e-9)
    assert strict_local_minima(bowl_holed) == 1
    # A NaN inside the disc and on the +x half-line is stepped over.
    i0, j0 = 40, 20
    bowl_holed[i0 + 2, j0] = np.nan
    assert sharpness(x, y, bowl_holed, [0.3])[0] == pytest.approx(A * 0.3**2, rel=1e-9)
    assert basin_width(x, y, bowl_holed, 0.12)["xpos"] == pytest.approx(0.2, abs=2e-3)


def test_too_small_or_empty_surfaces_give_nan():
    x, y = np.array([-1.0, 0.0]), np.array([0.0, 1.0])
    assert math.isnan(roughness(x, y, np.zeros((2, 2))))
    x, y = grid()
    assert math.isnan(total_variation(x, y, np.full((len(x), len(y)), np.nan)))


# --------------------------------------------------------------------------------------------
# measured from the origin


@pytest.mark.parametrize("a, b", [(A, B), (B, A)])
def test_sharpness_is_max_curvature_times_r_squared(a, b):
    x, y = grid()
    radii = [0.0, 0.3, 0.6]  # on both axes' grids, so the closed form is hit exactly
    expected = [max(a, b) * r**2 for r in radii]
    np.testing.assert_allclose(sharpness(x, y, bowl(x, y, a, b), radii), expected, rtol=1e-9, atol=1e-12)


def test_sharpness_with_missing_origin_is_nan():
    x, y = grid()
    loss = bowl(x, y)
    loss[40, 20] = np.nan
    assert np.isnan(sharpness(x, y, loss, [0.1, 0.2])).all()


def test_basin_width_matches_sqrt_rise_over_curvature_per_axis():
    x, y = np.linspace(-1.0, 1.0, 201), np.linspace(-1.5, 1.0, 251)  # steps 0.01
    rise = 0.12
    widths = basin_width(x, y, bowl(x, y), rise)
    along_x, along_y = math.sqrt(rise / A), math.sqrt(rise / B)
    for name, expected in (("xpos", along_x), ("xneg", along_x), ("ypos", along_y), ("yneg", along_y)):
        assert widths[name] == pytest.approx(expected, abs=1e-3), name
    assert widths["mean"] == pytest.approx((along_x + along_y) / 2, abs=1e-3)


def test_basin_width_unreached_and_one_sided_grids():
    x, y = np.linspace(-1.0, 1.0, 41), np.linspace(0.0, 1.0, 21)
    widths = basin_width(x, y, bowl(x, y), 1.5)  # 3 x^2 reaches 1.5 in x, y^2 never does in y
    assert widths["xpos"] == pytest.approx(math.sqrt(0.5), abs=5e-3)
    assert math.isnan(widths["ypos"]) and math.isnan(widths["yneg"])
    assert math.isnan(widths["mean"])  # never an underestimate
    widths = basin_width(x, y, bowl(x, y), 0.5)
    assert math.isnan(widths["yneg"])  # the grid has no -y side
    assert widths["mean"] == pytest.approx(
        (widths["xpos"] + widths["xneg"] + widths["ypos"]) / 3, rel=1e-12
    )
    assert widths["ypos"] == pytest.approx(math.sqrt(0.5), abs=5e-3)


def test_origin_off_grid_is_named():
    x, y = grid()
    with pytest.raises(ValueError, match=r"\(0, 0\) is not on the grid: x has no coordinate 0"):
        sharpness(x + 0.01, y, bowl(x, y), [0.1])
    with pytest.raises(ValueError, match=r"\(0, 0\) is not on the grid: y has no coordinate 0"):
        basin_width(x, np.linspace(-0.6, 1.2, 60), np.zeros((81, 60)), 0.1)


# --------------------------------------------------------------------------------------------
# curves


def test_curve_variants():
    x = np.linspace(-0.5, 1.0, 151)  # step 0.01
    loss = 2.0 * x**2
    widths = basin_width_1d(x, loss, 0.08)
    assert widths["xpos"] == pytest.approx(0.2, abs=1e-3)
    assert widths["xneg"] == pytest.approx(0.2, abs=1e-3)
    np.testing.assert_allclose(sharpness_1d(x, loss, [0.3]), [2.0 * 0.09], rtol=1e-9)
    centred = np.linspace(-1.0, 1.0, 51)
    assert roughness_1d(centred, 4.0 * centred**2) == pytest.approx(2.0, rel=1e-9)
    assert total_variation_1d(centred, 3.0 * centred + 1) == pytest.approx(0.5, rel=1e-9)
    assert total_variation_1d(centred, np.abs(centred)) == pytest.approx(1.0, rel=1e-9)


# --------------------------------------------------------------------------------------------
# one surface file


def test_surface_metrics_is_flat_and_json_ready():
    x, y = grid()
    loss = bowl(x, y)
    # a surface dict holds the file's meshgrid order, [j, i] = L(x[i], y[j])
    surface = {"xcoordinates": x, "ycoordinates": y, "train_loss": loss.T, "dice": loss.T, "iou": loss.T, "attrs": {}}
    metrics = surface_metrics(surface, radii=[0.3, 0.6], rises=[0.12])
    assert metrics["roughness"] == pytest.approx(roughness(x, y, loss))
    assert metrics["strict_local_minima"] == 1 and metrics["strict_local_minima_4"] == 1
    assert metrics["sharpness_r0.3"] == pytest.approx(A * 0.09)
    assert metrics["sharpness_r0.6"] == pytest.approx(A * 0.36)
    assert metrics["basin_width_h0.12_xpos"] == pytest.approx(0.2, abs=2e-3)
    assert metrics["loss_origin"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["points_finite"] == metrics["points_total"] == loss.size
    assert all(isinstance(v, (int, float)) and not isinstance(v, np.generic) for v in metrics.values())
    assert json.loads(json.dumps(metrics)) == pytest.approx(metrics)

    curve = {"xcoordinates": x, "ycoordinates": None, "train_loss": A * x**2, "attrs": {}}
    metrics = surface_metrics(curve, radii=[0.3], rises=[0.12])
    assert metrics["ndim"] == 1
    assert metrics["basin_width_h0.12_mean"] == pytest.approx(0.2, abs=2e-3)
    assert "basin_width_h0.12_ypos" not in metrics


def test_minimum_offset_counts_grid_steps_to_the_lowest_point():
    from unetscape.measures.surface_metrics import minimum_offset

    x = np.linspace(-1, 1, 5)
    y = np.linspace(-1, 1, 7)
    bowl = (x[:, None] - 0.5) ** 2 + (y[None, :] + 1 / 3) ** 2  # lowest at x = 0.5, y = -1/3
    assert minimum_offset(bowl, [x, y]) == 1.0  # one step along each axis
    assert minimum_offset(x[:, None] ** 2 + y[None, :] ** 2, [x, y]) == 0.0
    line = (x - 1) ** 2
    assert minimum_offset(line, [x]) == 2.0
    assert np.isnan(minimum_offset(np.full((5, 7), np.nan), [x, y]))
