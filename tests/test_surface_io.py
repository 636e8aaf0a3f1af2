"""Grids, chunk files and the merged surface file."""

import h5py
import numpy as np
import pytest
import torch

from unetscape.landscape import (
    SurfaceEvaluator,
    SurfaceGrid,
    make_directions,
    merge_chunks,
    read_chunk,
    read_surface,
    surface_array,
    write_chunk,
)
from unetscape.landscape.surface_io import LAYOUT, LAYOUT_X_FIRST
from unetscape.models.unet import build_model
from unetscape.training.evaluation import images_to_tensor, masks_to_tensor

ATTRS = {
    "checkpoint": "results/runs/r/checkpoints/epoch_003.pt",
    "checkpoint_sha256": "ab" * 32,
    "direction_norm": "filter",
    "direction_ignore": "biasbn",
    "direction_seed": 7,
    "direction_orthogonalize": False,
    "bn": "checkpoint",
    "eval_set": {"count": 8, "subset_seed": 1, "noise": 0.0},
}


def test_grid_shapes_points_and_chunks():
    grid = SurfaceGrid.from_config([0, 1, 5], [-1, 1, 4])
    assert grid.shape == (5, 4) and grid.size == 20
    assert grid.x[0] == 0.0 and grid.coordinates((0, 3)) == (0.0, 1.0)
    assert grid.points()[:5] == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0)]
    chunks = [grid.chunk(k, 3) for k in range(3)]
    assert [len(c) for c in chunks] == [7, 7, 6]
    assert sum(chunks, []) == grid.points()
    assert sum([grid.chunk(k, 30) for k in range(30)], []) == grid.points()
    with pytest.raises(ValueError, match="chunk index 3"):
        grid.chunk(3, 3)
    with pytest.raises(ValueError, match="chunk index -1"):
        grid.chunk(-1, 3)

    line = SurfaceGrid.from_config([-1, 1, 3])
    assert line.shape == (3,) and line.points() == [(0,), (1,), (2,)] and line.coordinates((2,)) == (1.0,)
    with pytest.raises(ValueError, match="grid y"):
        SurfaceGrid.from_config([0, 1, 3], [1, 0, 3])
    with pytest.raises(ValueError, match="grid x num"):
        SurfaceGrid.from_config([0, 1, 0])


@pytest.fixture(scope="module")
def evaluator():
    torch.manual_seed(0)
    model = build_model({"preset": "simple", "depth": 1, "base_width": 2}).eval()
    rng = np.random.default_rng(0)
    x = images_to_tensor(rng.integers(0, 256, size=(8, 16, 16, 3), dtype=np.uint8))
    y = masks_to_tensor((rng.random((8, 16, 16)) < 0.3).astype(np.uint8))
    with SurfaceEvaluator(model, x, y, make_directions(model, seed=7), batch_size=4) as ev:
        yield ev


def write_chunks(evaluator, grid, folder, count):
    paths = []
    for k in range(count):
        points = grid.chunk(k, count)
        path = folder / f"chunks/{k}.h5"
        write_chunk(path, grid, points, evaluator.evaluate_points(points, grid), ATTRS)
        paths.append(path)
    return paths


def test_chunked_surface_equals_the_single_chunk_surface(evaluator, tmp_path):
    grid = SurfaceGrid.from_config([0, 1, 5], [-1, 1, 4])
    whole = merge_chunks(write_chunks(evaluator, grid, tmp_path / "one", 1), grid, tmp_path / "one.h5", ATTRS)
    paths = write_chunks(evaluator, grid, tmp_path / "three", 3)
    merged = merge_chunks(paths, grid, tmp_path / "three.h5", ATTRS)
    for key in ("train_loss", "train_acc", "dice", "iou"):
        assert merged[key].shape == (4, 5)  # (ny, nx)
        assert np.array_equal(merged[key], whole[key])
    assert not np.isnan(merged["train_loss"]).any()
    # meshgrid order: [j, i] holds L(x[i], y[j])
    assert merged["train_loss"][1, 3] == evaluator.evaluate(grid.coordinates((3, 1)))["loss"]
    assert merged["attrs"]["eval_set"] == ATTRS["eval_set"]
    assert merged["attrs"]["points_evaluated"] == merged["attrs"]["points_total"] == 20

    chunk = read_chunk(paths[2])
    assert [tuple(p) for p in chunk["points"]] == grid.chunk(2, 3)
    assert len(chunk["train_loss"]) == 6  # only its own points

    partial = merge_chunks(paths[:2], grid, tmp_path / "partial.h5", ATTRS)
    missing = np.zeros(grid.shape, dtype=bool)
    for point in grid.chunk(2, 3):
        missing[point] = True
    missing = missing.T  # points are (i, j); the surface is [j, i]
    assert np.isnan(partial["train_loss"][missing]).all()
    assert np.array_equal(partial["train_loss"][~missing], whole["train_loss"][~missing])
    assert partial["attrs"]["points_evaluated"] == 14


def test_conflicting_chunks_are_refused(evaluator, tmp_path):
    grid = SurfaceGrid.from_config([0, 1, 3], [-1, 1, 2])
    paths = write_chunks(evaluator, grid, tmp_path, 2)
    with pytest.raises(ValueError, match="point"):
        merge_chunks([paths[0], paths[1], paths[0]], grid, tmp_path / "s.h5", ATTRS)
    other = SurfaceGrid.from_config([0, 2, 3], [-1, 1, 2])
    with pytest.raises(ValueError, match="another grid"):
        merge_chunks(paths, other, tmp_path / "s.h5", ATTRS)
    assert not (tmp_path / "s.h5").exists()


def test_surface_file_has_the_reference_keys_and_shapes(evaluator, tmp_path):
    grid = SurfaceGrid.from_config([-1, 1, 3], [0, 1, 2])  # not square
    merge_chunks(write_chunks(evaluator, grid, tmp_path, 2), grid, tmp_path / "surface.h5", ATTRS)
    with h5py.File(tmp_path / "surface.h5", "r") as f:
        assert f["xcoordinates"].shape == (3,) and f["ycoordinates"].shape == (2,)
        assert np.array_equal(f["xcoordinates"][()], grid.x)
        for key in ("train_loss", "train_acc", "dice", "iou"):
            assert f[key].shape == (2, 3)  # (ny, nx), as np.meshgrid(x, y)
        assert f.attrs["layout"] == LAYOUT
        np.testing.assert_allclose(f["train_acc"][()], 100 * f["dice"][()])
        assert f.attrs["checkpoint_sha256"] == ATTRS["checkpoint_sha256"]
        assert f.attrs["direction_seed"] == 7 and f.attrs["bn"] == "checkpoint"
        assert "unetscape_version" in f.attrs


def test_one_dimensional_surface(evaluator, tmp_path):
    model = build_model({"preset": "simple", "depth": 1, "base_width": 2}).eval()
    grid = SurfaceGrid.from_config([-1, 1, 5])
    with SurfaceEvaluator(model, evaluator.x, evaluator.y, make_directions(model, seed=1, ndim=1)) as line:
        paths = write_chunks(line, grid, tmp_path, 2)
        surface = merge_chunks(paths, grid, tmp_path / "line.h5", ATTRS)
        assert surface["train_loss"][4] == line.evaluate((1.0,))["loss"]
    assert surface["ycoordinates"] is None and surface["train_loss"].shape == (5,)
    with h5py.File(tmp_path / "line.h5", "r") as f:
        assert "ycoordinates" not in f and f["train_loss"].shape == (5,)
    assert read_surface(tmp_path / "line.h5")["attrs"]["direction_orthogonalize"] is False
    assert read_surface(tmp_path / "line.h5")["attrs"]["layout"] == "train_loss[i] = L(xcoordinates[i])"


def test_non_square_surface_is_stored_in_meshgrid_order(evaluator, tmp_path):
    """Every stored value against its own evaluation at (x[i], y[j]), read as the reference does."""
    grid = SurfaceGrid.from_config([-1, 1, 3], [0, 0.5, 2])
    attrs = {**ATTRS, "dir_file": "results/landscape/r/random/directions.h5"}
    merge_chunks(write_chunks(evaluator, grid, tmp_path, 2), grid, tmp_path / "surface.h5", attrs)
    with h5py.File(tmp_path / "surface.h5", "r") as f:
        x, y, z = f["xcoordinates"][()], f["ycoordinates"][()], f["train_loss"][()]
        assert f["dir_file"][()].decode() == attrs["dir_file"]
        assert "dir_file" not in f.attrs
    X, Y = np.meshgrid(x, y)  # what plot_2D.py and h52vtp.py pair the values with
    assert X.shape == z.shape == (2, 3)
    for (j, i), value in np.ndenumerate(z):
        assert value == evaluator.evaluate((X[j, i], Y[j, i]))["loss"]

    surface = read_surface(tmp_path / "surface.h5")
    assert surface["dir_file"] == attrs["dir_file"]
    assert np.array_equal(surface_array(surface, "train_loss", "yx"), z)
    xy = surface_array(surface, "train_loss", "xy")
    assert xy.shape == (3, 2) and xy[2, 1] == evaluator.evaluate((1.0, 0.5))["loss"]
    with pytest.raises(ValueError, match="meshgrid order"):
        surface_array({**surface, "train_loss": xy})
    with pytest.raises(ValueError, match="order"):
        surface_array(surface, "train_loss", "ij")


def test_files_of_the_first_layout_are_read_turned_and_unknown_layouts_refused(tmp_path):
    x, y = np.array([-1.0, 0.0, 1.0]), np.array([0.0, 1.0])
    values = x[:, None] + 10 * y[None, :]  # x first: [i, j] = x[i] + 10 y[j]
    for name, layout in (("old.h5", LAYOUT_X_FIRST), ("odd.h5", "rows are whatever")):
        with h5py.File(tmp_path / name, "w") as f:
            f["xcoordinates"], f["ycoordinates"] = x, y
            for key in ("train_loss", "train_acc", "dice", "iou"):
                f[key] = values
            f.attrs["layout"] = layout
    old = read_surface(tmp_path / "old.h5")
    assert old["train_loss"].shape == (2, 3) and old["train_loss"][1, 2] == 1.0 + 10.0
    assert old["attrs"]["layout"] == LAYOUT
    with pytest.raises(ValueError, match="odd.h5: unknown 2-D layout"):
        read_surface(tmp_path / "odd.h5")
