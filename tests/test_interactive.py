"""The per-run 3-D page: the values it carries, and that a real browser draws it."""

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from unetscape.landscape import SurfaceGrid, merge_chunks, read_surface, write_chunk
from unetscape.plots.interactive import plane_values, run_page_figure, write_run_page


def plane_function(x, y):
    return 0.4 + 0.1 * x - 0.05 * y  # planar: bilinear interpolation is exact on it


def write_surface(path, grid, loss_of, attrs):
    points = grid.points()
    loss = np.array([loss_of(*grid.coordinates(p)) for p in points])
    write_chunk(path.with_suffix(".chunk.h5"), grid, points, {"loss": loss, "dice": 1 - loss, "iou": 1 - 2 * loss},
                attrs)
    merge_chunks([path.with_suffix(".chunk.h5")], grid, path, attrs)
    return read_surface(path)


@pytest.fixture
def surfaces(tmp_path):
    random = write_surface(tmp_path / "random.h5", SurfaceGrid.from_config([-1, 1, 7], [-1, 0.5, 4]),
                           lambda x, y: 0.3 + x**2 + 0.2 * y, {"plane": "random"})
    path_x, path_y = [1.5, 0.9, 0.2, 0.0], [-0.4, 0.3, 0.1, 0.0]
    pca = write_surface(tmp_path / "pca.h5", SurfaceGrid.from_config([-0.3, 1.8, 5], [-0.6, 0.5, 6]),
                        plane_function, {"plane": "pca", "path_x": path_x, "path_y": path_y,
                                         "path_epochs": [0, 1, 2, 3], "explained_variance_ratio": [0.8, 0.15]})
    return random, pca


def traces(fig, kind, scene):
    return [t for t in fig.data if t.type == kind and t.scene == scene]


def test_page_carries_the_surfaces_values_the_right_way_round(surfaces):
    random, pca = surfaces
    fig = run_page_figure("improved/sgd/noise0/seed0", random, pca)
    (left,) = traces(fig, "surface", "scene")
    x, y = np.asarray(left.x), np.asarray(left.y)
    z, extra = np.asarray(left.z), np.asarray(left.customdata)
    assert z.shape == (4, 7)  # plotly's surface: rows are y
    for (j, i), value in np.ndenumerate(z):
        assert value == pytest.approx(0.3 + x[i] ** 2 + 0.2 * y[j])
        assert tuple(extra[j, i]) == pytest.approx((1 - value, 1 - 2 * value))  # hard Dice, IoU on hover
    assert "hard Dice" in left.hovertemplate and "IoU" in left.hovertemplate

    (right,) = traces(fig, "surface", "scene2")
    assert np.asarray(right.z).shape == (6, 5)
    markers = [t for t in traces(fig, "scatter3d", "scene2") if t.mode == "markers"]
    (path,) = markers
    np.testing.assert_allclose(path.x, pca["attrs"]["path_x"])
    np.testing.assert_allclose(path.z, plane_function(np.asarray(path.x), np.asarray(path.y)), rtol=1e-12)
    assert "epoch 0" in path.text[0] and fig.layout.scene2.xaxis.title.text == "PC 1 (80.0%)"
    (line,) = [t for t in traces(fig, "scatter3d", "scene2") if t.mode == "lines"]
    lift = np.asarray(line.z) - plane_function(np.asarray(line.x), np.asarray(line.y))
    np.testing.assert_allclose(lift, lift[0], atol=1e-12)  # follows the surface between checkpoints
    assert 0 < lift[0] < 0.05 * np.ptp(right.z)


def test_plane_values_are_exact_on_grid_points_and_nan_outside(surfaces):
    _, pca = surfaces
    x, y = pca["xcoordinates"], pca["ycoordinates"]
    np.testing.assert_allclose(plane_values(pca, [x[3], x[0]], [y[1], y[5]]),
                               [plane_function(x[3], y[1]), plane_function(x[0], y[5])], rtol=1e-12)
    assert np.isnan(plane_values(pca, [5.0], [0.0])).all()


def test_page_says_when_there_is_no_trajectory(surfaces):
    random, pca = surfaces
    pca = {**pca, "train_loss": np.full_like(pca["train_loss"], np.nan),
           "attrs": {**pca["attrs"], "unavailable": "only 2 checkpoint(s) were saved"}}
    fig = run_page_figure("r", random, pca)
    assert not traces(fig, "surface", "scene2")
    assert any("only 2 checkpoint" in a.text for a in fig.layout.annotations)


def test_page_is_self_contained(surfaces, tmp_path):
    write_run_page("r", *surfaces, tmp_path / "page.html")
    html = (tmp_path / "page.html").read_text()
    assert "<script src=" not in html and len(html) > 1_000_000  # plotly.js is inside: opens offline
    assert "Plotly.newPlot(" in html and 'id="landscape"' in html
    first = html
    write_run_page("r", *surfaces, tmp_path / "again.html")
    assert (tmp_path / "again.html").read_text() == first  # the same surfaces give the same file


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def screenshot(page, out_dir):
    """The page as headless Chromium draws it once its scripts have run (WebGL in software)."""
    browser = chromium()
    if browser is None:
        pytest.skip("no Chromium here (.ci/run installs Debian's `chromium` where apt-get works)")
    shot = out_dir / "page.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
                    "--hide-scrollbars", "--window-size=1400,700", "--virtual-time-budget=20000",
                    f"--screenshot={shot}", page.as_uri()], check=True, capture_output=True, timeout=300)
    return np.asarray(Image.open(shot).convert("RGB")).astype(int)


def test_headless_chromium_draws_both_surfaces(surfaces, tmp_path):
    write_run_page("improved/sgd/noise0/seed0", *surfaces, tmp_path / "page.html")
    pixels = screenshot(tmp_path / "page.html", tmp_path)
    # Both halves of the page hold a drawn surface: viridis colours (white background, grey
    # scene walls otherwise) spread over far more columns than a colour bar's few dozen. Where
    # WebGL fails, plotly writes a notice instead and no column is coloured.
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    viridis = (b > r + 30) & (g > r) | (g > 150) & (r < 220) & (b < 120)
    columns = viridis.sum(axis=0) >= 3
    width = pixels.shape[1]
    for half in (slice(0, width // 2), slice(width // 2, width)):
        assert columns[half].sum() > 150, "a surface was not drawn"


def test_study_page_holds_every_run_and_shows_one_at_a_time(surfaces, tmp_path):
    from unetscape.plots.interactive import study_page_figure, write_page

    random, pca = surfaces
    runs = [("simple/sgd/noise0/seed0", random, pca), ("simple/sgd/noise0/seed1", random, None)]
    fig = study_page_figure("Random initialisations", runs)
    (menu,) = fig.layout.updatemenus
    assert [b.label for b in menu.buttons] == [r for r, _, _ in runs]
    surfaces_shown = [t for t in fig.data if t.type == "surface" and t.visible]
    assert len(surfaces_shown) == 2  # the first run's two planes
    second = menu.buttons[1].args[0]["visible"]
    assert sum(second) == len([t for t in run_page_figure(*runs[1]).data])
    assert any("no trajectory" in a.text for a in menu.buttons[1].args[1]["annotations"])
    write_page(fig, tmp_path / "study.html")
    pixels = screenshot(tmp_path / "study.html", tmp_path)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    viridis = (b > r + 30) & (g > r) | (g > 150) & (r < 220) & (b < 120)
    assert (viridis.sum(axis=0) >= 3).sum() > 300, "the study page drew no surface"
