"""A non-square surface from file to numbers and pictures: the meshgrid layout is read the
same way by the metrics (x first, turned once) and by the figures (rows are y)."""

import matplotlib

matplotlib.use("Agg")

import h5py
import numpy as np
import pytest
from matplotlib import pyplot as plt

from unetscape.landscape import SurfaceGrid, merge_chunks, read_surface, write_chunk
from unetscape.measures.surface_metrics import (
    basin_width,
    roughness,
    sharpness,
    surface_metrics,
    total_variation,
)
from unetscape.plots.landscape import draw_contour

A, B = 3.0, 1.0  # a != b: swapped axes would swap the basin widths


def write_known_surface(path, grid, loss_of):
    """A surface file whose value at point (i, j) is loss_of(x[i], y[j]), written the way the
    workflow writes one (chunk by point, then merge)."""
    points = grid.points()
    loss = np.array([loss_of(*grid.coordinates(p)) for p in points])
    values = {"loss": loss, "dice": 1 - loss, "iou": 1 - 2 * loss}
    write_chunk(path.with_suffix(".chunk.h5"), grid, points, values, {"direction_seed": 0})
    merge_chunks([path.with_suffix(".chunk.h5")], grid, path, {"direction_seed": 0})
    return read_surface(path)


def test_metrics_of_a_non_square_surface_file(tmp_path):
    grid = SurfaceGrid.from_config([-1, 1, 41], [-0.6, 1.2, 31])
    surface = write_known_surface(tmp_path / "bowl.h5", grid, lambda x, y: A * x**2 + B * y**2)
    assert surface["train_loss"].shape == (31, 41)

    x, y = grid.x, grid.y
    loss = A * x[:, None] ** 2 + B * y[None, :] ** 2  # built here, x first
    metrics = surface_metrics(surface, radii=[0.4], rises=[0.12])
    assert metrics["roughness"] == pytest.approx(roughness(x, y, loss), rel=1e-12)
    assert metrics["total_variation"] == pytest.approx(total_variation(x, y, loss), rel=1e-12)
    assert metrics["sharpness_r0.4"] == pytest.approx(sharpness(x, y, loss, [0.4])[0], rel=1e-12)
    # closed form: the loss first rises by h at sqrt(h / a) along x and sqrt(h / b) along y
    assert metrics["basin_width_h0.12_xpos"] == pytest.approx(np.sqrt(0.12 / A), abs=2e-3)
    assert metrics["basin_width_h0.12_ypos"] == pytest.approx(np.sqrt(0.12 / B), abs=2e-3)
    assert basin_width(x, y, loss, 0.12)["yneg"] == pytest.approx(metrics["basin_width_h0.12_yneg"])


def test_contours_of_a_non_square_surface_run_along_the_right_axis(tmp_path):
    """L = x has vertical contour lines (x constant); mirrored about the diagonal they would be
    horizontal, and a non-square grid would not even draw."""
    grid = SurfaceGrid.from_config([-1, 1, 9], [-0.5, 1, 7])
    surface = write_known_surface(tmp_path / "ramp.h5", grid, lambda x, y: 0.5 + 0.25 * x)
    fig, ax = plt.subplots()
    contours = draw_contour(ax, surface, levels=np.linspace(0.3, 0.7, 5), labels=False)
    plt.close(fig)
    drawn = 0
    for level, path in zip(contours.levels, contours.get_paths()):  # one path per level
        if not len(path.vertices):
            continue
        drawn += 1
        xs, ys = path.vertices[:, 0], path.vertices[:, 1]
        np.testing.assert_allclose(xs, (level - 0.5) / 0.25, atol=1e-9)  # x constant where L = level
        assert np.ptp(ys) == pytest.approx(1.5)  # across the whole y range
    assert drawn == 5  # every level lies inside the grid's range 0.25..0.75


def test_what_the_reference_plot_reads_matches_the_function(tmp_path):
    """plot_2D.py pairs np.meshgrid(x, y) with the stored array as it is."""
    grid = SurfaceGrid.from_config([-1, 1, 5], [0, 1, 3])
    write_known_surface(tmp_path / "s.h5", grid, lambda x, y: x + 10 * y)
    with h5py.File(tmp_path / "s.h5", "r") as f:
        X, Y = np.meshgrid(f["xcoordinates"][:], f["ycoordinates"][:])
        np.testing.assert_allclose(f["train_loss"][:], X + 10 * Y)
        np.testing.assert_allclose(f["train_acc"][:], 100 * (1 - (X + 10 * Y)))
