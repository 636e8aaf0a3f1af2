"""The landscape rules' file-to-file steps on a tiny trained run, including a diverged one."""

import json

import h5py
import numpy as np
import pytest
from job_data import write_random_dataset

from unetscape.jobs.interpolation import interpolation, interpolation_grid
from unetscape.jobs.measured import list_checkpoints
from unetscape.jobs.random_plane import line, random_plane, random_plane_and_line
from unetscape.jobs.run_measures import hessian, training_path, trajectory
from unetscape.jobs.scale_invariance import scale_invariance
from unetscape.jobs.surface import surface_chunk
from unetscape.landscape.surface_io import merge_chunk_files, read_surface
from unetscape.models.checkpoints import load_checkpoint, read_checkpoint
from unetscape.training.train import TrainSettings, train

EVALUATION = {"subset": 6, "seed": 0, "batch_size": 4, "noise": "train", "bn": "checkpoint", "precision": "float32",
              "points_per_pass": 1}
PLANE = {"seed": 5, "norm": "filter", "ignore": "biasbn", "orthogonalize": False, "x": [-1, 1, 4], "y": [0, 1, 3]}
TRAJECTORY = {"ignore": "biasbn", "num": 3, "margin": 0.2}


def quiet(_):
    pass


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("jobs")
    images, masks = write_random_dataset(root / "data.npz", 8)
    runs = {}
    for name, lr in (("ok", 0.05), ("diverged", 1e30)):
        settings = TrainSettings(arch={"depth": 1, "base_width": 4, "norm": "batch"}, lr=lr, momentum=0.9,
                                 noise=0.1, seed=1, epochs=3, batch_size=4, stop_on_plateau=False)
        result = train(images, masks, settings, root / name / "checkpoints", root / name / "history.csv", log=quiet,
                       outcome_path=root / name / "outcome.json")
        runs[name] = (root / name / "checkpoints", result)
    return root, runs


def outcome(root, name):
    return root / name / "outcome.json"


def test_chunked_surface_equals_one_chunk(trained):
    root, runs = trained
    checkpoints = runs["ok"][0]
    random_plane(checkpoints, outcome(root, "ok"), root / "ok/directions.h5", PLANE, quiet)
    for count in (1, 3):
        paths = []
        for k in range(count):
            path = root / f"ok/chunk{count}_{k}.h5"
            surface_chunk(checkpoints, outcome(root, "ok"), root / "ok/directions.h5", root / "data.npz", path, k,
                          count, EVALUATION, 0.1, "cpu", log=quiet)
            paths.append(path)
        merge_chunk_files(paths, root / f"ok/surface{count}.h5", quiet)
    one, three = read_surface(root / "ok/surface1.h5"), read_surface(root / "ok/surface3.h5")
    assert one["train_loss"].shape == (3, 4)  # (ny, nx)
    assert one["dir_file"] == str(root / "ok/directions.h5")
    np.testing.assert_array_equal(one["train_loss"], three["train_loss"])
    assert np.isfinite(one["train_loss"]).all()
    # the surface records where it came from
    attrs = one["attrs"]
    assert attrs["checkpoint"].endswith("epoch_003.pt") and len(attrs["checkpoint_sha256"]) == 64
    assert attrs["direction_seed"] == 5 and attrs["bn"] == "checkpoint"
    assert attrs["outcome"] == runs["ok"][1].outcome and attrs["checkpoint_role"]
    assert attrs["eval_set"]["count"] == 6 and attrs["eval_set"]["noise_applied"]


def test_interpolation_ends_match_the_checkpoints(trained):
    root, runs = trained
    checkpoints = list_checkpoints(runs["ok"][0])
    out = root / "ok/interp.h5"
    interpolation(checkpoints[0][1], checkpoints[-1][1], root / "data.npz", out, [0, 1, 3], EVALUATION, 0.1, "cpu",
                  quiet)
    # t = 1 is the final weights: the same loss as the centre of a surface through them
    plane_out = root / "ok/directions_for_interp.h5"
    path = root / "ok/centre.h5"
    centre = {**PLANE, "x": [0, 0, 1], "y": [0, 0, 1]}
    random_plane(runs["ok"][0], outcome(root, "ok"), plane_out, centre, quiet)
    surface_chunk(runs["ok"][0], outcome(root, "ok"), plane_out, root / "data.npz", path, 0, 1, EVALUATION, 0.1,
                  "cpu", log=quiet)
    merge_chunk_files([path], root / "ok/centre_surface.h5", quiet)
    with h5py.File(out, "r") as f:
        loss_final = f["train_loss"][-1]
        # the reference's 1-D tools read the axis as xcoordinates
        np.testing.assert_array_equal(f["xcoordinates"][()], [0.0, 0.5, 1.0])
        np.testing.assert_array_equal(f["xcoordinates"][()], f["t"][()])
    assert loss_final == pytest.approx(read_surface(root / "ok/centre_surface.h5")["train_loss"][0, 0], rel=1e-6)


def test_line_has_its_own_x_direction_file(trained):
    root, runs = trained
    checkpoints = runs["ok"][0]
    random_plane(checkpoints, outcome(root, "ok"), root / "ok/line_plane.h5", PLANE, quiet)
    settings = {"x": [-1, 1, 4], "log_scale": False}
    line(checkpoints, outcome(root, "ok"), root / "ok/line_plane.h5", root / "data.npz", root / "ok/line.h5", settings,
         EVALUATION, 0.1, "cpu", quiet, directions_out=root / "ok/line_directions.h5")
    with h5py.File(root / "ok/line_directions.h5", "r") as f, h5py.File(root / "ok/line_plane.h5", "r") as plane:
        assert set(f) == {"xdirection"}  # what the reference's 1-D plots are made from
        assert len(f["xdirection"]) == len(plane["xdirection"])
        for k in plane["xdirection"]:
            np.testing.assert_array_equal(f["xdirection"][k][()], plane["xdirection"][k][()])
    curve = read_surface(root / "ok/line.h5")
    assert curve["dir_file"] == str(root / "ok/line_directions.h5") and curve["attrs"]["direction_ndim"] == 1
    # the plane's grid has y = 0 as its first row and the same x: the line is that row
    path = root / "ok/line_surface_chunk.h5"
    surface_chunk(checkpoints, outcome(root, "ok"), root / "ok/line_plane.h5", root / "data.npz", path, 0, 1,
                  EVALUATION, 0.1, "cpu", log=quiet)
    merge_chunk_files([path], root / "ok/line_surface.h5", quiet)
    surface = read_surface(root / "ok/line_surface.h5")
    np.testing.assert_allclose(curve["train_loss"], surface["train_loss"][0], rtol=1e-6)


def _flat(tensors):
    return np.concatenate([np.asarray(t, dtype=np.float64).ravel() for t in tensors])


def test_trajectory_of_a_run_and_of_a_run_that_diverged_at_once(trained):
    root, runs = trained
    trajectory(runs["ok"][0], outcome(root, "ok"), root / "data.npz", root / "ok/pca.h5", root / "ok/pca_surface.h5",
               TRAJECTORY, EVALUATION, 0.1, "cpu", quiet, projection_out=root / "ok/projection.h5")
    surface = read_surface(root / "ok/pca_surface.h5")
    assert surface["train_loss"].shape == (3, 3) and np.isfinite(surface["train_loss"]).all()
    assert len(surface["attrs"]["path_x"]) == 4  # epochs 0..3
    assert surface["dir_file"] == str(root / "ok/pca.h5")

    # The reference's PCA statistics and projection, recomputed here from the checkpoints and
    # the stored directions: variance of the centred path along each unit direction.
    states = [read_checkpoint(p)["state_dict"] for _, p in list_checkpoints(runs["ok"][0])]
    model = load_checkpoint(list_checkpoints(runs["ok"][0])[-1][1])
    names = [n for n, p in model.named_parameters() if p.dim() > 1]
    rows = np.stack([_flat([s[n] - states[-1][n] for n in names]) for s in states])
    keep = [p.dim() > 1 for _, p in model.named_parameters()]
    with h5py.File(root / "ok/pca.h5", "r") as f:
        units = []
        for axis in ("xdirection", "ydirection"):
            d = _flat([f[axis][str(k)][()] for k in range(len(f[axis])) if keep[k]])
            units.append(d / np.linalg.norm(d))
        stats = {k: f[k][()] for k in ("explained_variance_ratio_", "singular_values_", "explained_variance_")}
    centred = rows - rows.mean(axis=0)
    variance = np.array([np.var(centred @ u, ddof=1) for u in units])
    np.testing.assert_allclose(stats["explained_variance_"], variance, rtol=1e-5)
    np.testing.assert_allclose(stats["singular_values_"], np.sqrt(variance * (len(rows) - 1)), rtol=1e-5)
    total = (centred**2).sum() / (len(rows) - 1)
    np.testing.assert_allclose(stats["explained_variance_ratio_"], variance / total, rtol=1e-5)
    with h5py.File(root / "ok/projection.h5", "r") as f:
        np.testing.assert_allclose(f["proj_xcoord"][()], rows @ units[0], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(f["proj_ycoord"][()], rows @ units[1], rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(f["epochs"][()], [0, 1, 2, 3])

    checkpoints, result = runs["diverged"]
    assert result.diverged and len(list_checkpoints(checkpoints)) < 3
    trajectory(checkpoints, outcome(root, "diverged"), root / "data.npz", root / "diverged/pca.h5",
               root / "diverged/pca_surface.h5", TRAJECTORY, EVALUATION, 0.1, "cpu", quiet,
               projection_out=root / "diverged/projection.h5")
    surface = read_surface(root / "diverged/pca_surface.h5")
    assert "no trained weights" in surface["attrs"]["unavailable"]
    assert np.isnan(surface["train_loss"]).all()
    with h5py.File(root / "diverged/projection.h5", "r") as f:
        assert "no trained weights" in f.attrs["unavailable"] and len(f["proj_xcoord"]) == 1
    with h5py.File(root / "diverged/pca.h5", "r") as f:
        assert np.isnan(f["explained_variance_ratio_"][()]).all()


def test_landscape_jobs_of_a_run_that_diverged_at_once_never_measure_epoch_0(trained):
    """Every job of a run without trained weights writes a file that says why, with NaN values."""
    root, runs = trained
    checkpoints, result = runs["diverged"]
    assert result.outcome == "diverged"
    run = root / "diverged"
    line_settings = {"x": [-1, 1, 5], "log_scale": False}
    random_plane_and_line(checkpoints, outcome(root, "diverged"), root / "data.npz", run / "dirs.h5", run / "line.h5",
                          run / "line_dirs.h5", PLANE, line_settings, EVALUATION, 0.1, "cpu", quiet)
    surface_chunk(checkpoints, outcome(root, "diverged"), run / "dirs.h5", root / "data.npz", run / "chunk.h5", 0, 1,
                  EVALUATION, 0.1, "cpu", log=quiet)
    merge_chunk_files([run / "chunk.h5"], run / "surface.h5", quiet)
    training_path(checkpoints, outcome(root, "diverged"), root / "data.npz", run / "p.h5", run / "ps.h5",
                  run / "proj.h5", run / "init.h5", TRAJECTORY, {"t": [-0.5, 1.5, 5], "bn": "geometric"}, EVALUATION, 0.1, "cpu", quiet)
    hessian(checkpoints, outcome(root, "diverged"), root / "data.npz", run / "hessian.json",
            {"top_k": 2, "tol": 1e-3, "max_iter": 5, "trace_samples": 2, "seed": 0}, EVALUATION, 0.1, "cpu", quiet)
    for path in (run / "surface.h5", run / "line.h5", run / "ps.h5"):
        surface = read_surface(path)
        assert np.isnan(surface["train_loss"]).all() and np.isnan(surface["dice"]).all(), path
        assert "no trained weights" in surface["attrs"]["unavailable"], path
        assert surface["attrs"]["outcome"] == "diverged"
        assert "epoch_000" not in str(surface["attrs"].get("checkpoint", "")), path
    with h5py.File(run / "init.h5", "r") as f:
        assert np.isnan(f["train_loss"][()]).all() and "no trained weights" in f.attrs["unavailable"]
    summary = json.loads((run / "hessian.json").read_text())
    assert summary["top_eigenvalues"] is None and "no trained weights" in summary["unavailable"]


def test_interpolation_grid_holds_both_models_exactly():
    ts = interpolation_grid([-0.5, 1.5, 41])
    assert 0.0 in ts and 1.0 in ts and len(ts) == 41
    assert ts[10] == 0.0 and ts[30] == 1.0  # exactly, not up to linspace's rounding
    for bad in ([-0.5, 1.5, 40], [0.2, 1.5, 14], [-1, 0.5, 7]):
        with pytest.raises(ValueError, match="landscape.interpolation.t"):
            interpolation_grid(bad)


def test_scale_invariance_curves(trained):
    """Batch norm: filter-normalised curves do not move with the rescaling, raw ones do."""
    root, runs = trained
    out = root / "scale.h5"
    settings = {"factors": [0.5, 2.0], "x": [-1, 1, 5]}
    plane = {"seed": 3, "ignore": "biasbn"}
    evaluation = {**EVALUATION, "subset": None}
    scale_invariance(["ok"], [runs["ok"][0]], [outcome(root, "ok")], root / "data.npz", out, settings, plane,
                     evaluation, "cpu", quiet)
    with h5py.File(out, "r") as f:
        loss = f["train_loss"][()]
    raw, filtered = loss[0, 0], loss[0, 1]  # [factor, x]
    centre = 2
    # the same function at the trained point, whatever the factor (up to BN's eps)
    np.testing.assert_allclose(raw[:, centre], raw[0, centre], rtol=1e-4)
    np.testing.assert_allclose(filtered, np.broadcast_to(filtered[0], filtered.shape), rtol=1e-4)
    assert np.abs(raw[1] - raw[0]).max() > 10 * np.abs(filtered[1] - filtered[0]).max()
