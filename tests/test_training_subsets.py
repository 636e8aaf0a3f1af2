"""A run trained on a subset of the training images is measured on images of its own subset only,
by every landscape job."""

import json

import h5py
import pytest
import torch
from job_data import write_random_dataset

from unetscape.jobs.curves import connect_seeds, read_connection
from unetscape.jobs.edge_of_stability import edge_of_stability_job
from unetscape.jobs.random_plane import random_plane_and_line
from unetscape.jobs.run_measures import curvature_and_flatness, training_path
from unetscape.landscape.direction_sets import read_direction_sets
from unetscape.landscape.surface_io import read_surface
from unetscape.training.train import TrainSettings, train

EVALUATION = {"subset": 5, "heldout_subset": 0, "seed": 0, "batch_size": 8, "noise": "train", "bn": "checkpoint",
              "precision": "float32", "points_per_pass": 1}
PLANE = {"seed": 5, "norm": "filter", "ignore": "biasbn", "orthogonalize": False, "x": [-1, 1, 3], "y": [-1, 1, 3]}
LINE = {"x": [-1, 1, 3], "log_scale": False}
SETS = {"count": 2, "x": [-1, 1, 3], "y": [-1, 1, 3], "line": [-1, 1, 3]}
CURVATURE = {"top_k": 1, "which": "algebraic", "tol": 1e-2, "max_iter": 8, "trace_samples": 2, "seed": 0,
             "parts": {"studies": [], "every_run": False, "max_iter": 5, "trace_samples": 2}}
FLATNESS = {"seed": 0, "average_rho": 0.05, "average_samples": 4, "worst_rho": 0.1, "worst_steps": 1,
            "worst_step_size": 1.0, "worst_start_radius": 0.0, "pac_target": 0.1, "pac_samples": 1,
            "pac_iterations": 1, "pac_sigma_range": [1e-4, 1.0], "pac_magnitude_range": [1e-3, 10.0], "pac_eps": 1e-3}


def quiet(_):
    pass


@pytest.fixture(scope="module")
def subset_runs(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("subsets")
    images, masks = write_random_dataset(root / "data.npz", 20)
    for seed in (0, 1):
        settings = TrainSettings(arch={"depth": 1, "base_width": 2, "norm": "batch"}, lr=0.05, momentum=0.9,
                                 seed=seed, epochs=3, batch_size=4, stop_on_plateau=False, train_size=8,
                                 subset_seed=11, probe_images=4, probe_every=2)
        train(images, masks, settings, root / f"s{seed}/checkpoints", root / f"s{seed}/history.csv", log=quiet,
              outcome_path=root / f"s{seed}/outcome.json")
    return root


def test_every_landscape_job_measures_a_subset_run_on_its_own_training_images(subset_runs):
    root = subset_runs
    run = root / "s0"
    outcome = json.loads((run / "outcome.json").read_text())
    own = set(outcome["train_indices"])
    assert len(own) == 8 and outcome["training"]["subset"] and outcome["training"]["train_size"] == 8
    random_plane_and_line(run / "checkpoints", run / "outcome.json", root / "data.npz", run / "dirs.h5",
                          run / "line.h5", run / "line_dirs.h5", PLANE, LINE, EVALUATION, 0.0, "cpu", quiet,
                          surface_out=run / "surface.h5", sets_out=run / "sets.h5", sets=SETS)
    training_path(run / "checkpoints", run / "outcome.json", root / "data.npz", run / "pca_dirs.h5",
                  run / "pca.h5", run / "projection.h5", run / "interp.h5",
                  {"ignore": "biasbn", "num": 3, "margin": 0.2}, {"t": [0, 1, 3], "bn": "geometric"}, EVALUATION,
                  0.0, "cpu", quiet)
    curvature_and_flatness(run / "checkpoints", run / "outcome.json", root / "data.npz", run / "hessian.json",
                           run / "flatness.json", CURVATURE, FLATNESS, EVALUATION, 0.0, "cpu", quiet,
                           eigen_directions_out=run / "eigen_dirs.h5", eigen_surface_out=run / "eigen.h5",
                           eigen_plane={"x": [-0.03, 0.03, 3], "y": [-0.03, 0.03, 3]}, parts=True)
    edge_of_stability_job(run / "checkpoints", run / "outcome.json", root / "data.npz", run / "eos.json",
                          {"checkpoints": 2, "batches": 2, "tol": 1e-2, "max_iter": 5, "seed": 0}, EVALUATION, 0.0,
                          "cpu", quiet)
    connect_seeds([run / "checkpoints", root / "s1/checkpoints"], [run / "outcome.json", root / "s1/outcome.json"],
                  root / "data.npz", run / "curve.h5",
                  {"steps": 2, "batch_size": 4, "lr": 0.1, "momentum": 0.9, "seed": 0, "t": [0, 1, 3],
                   "bn_batch_size": 8}, EVALUATION, 0.0, "cpu", quiet)
    eval_sets = {
        "surface": read_surface(run / "surface.h5")["attrs"]["eval_set"],
        "line": read_surface(run / "line.h5")["attrs"]["eval_set"],
        "pca": read_surface(run / "pca.h5")["attrs"]["eval_set"],
        "eigen": read_surface(run / "eigen.h5")["attrs"]["eval_set"],
        "sets": read_direction_sets(run / "sets.h5")["attrs"]["eval_set"],
        "hessian": json.loads((run / "hessian.json").read_text())["eval_set"],
        "flatness": json.loads((run / "flatness.json").read_text())["eval_set"],
        "eos": json.loads((run / "eos.json").read_text())["eval_set"],
        "curve": read_connection(run / "curve.h5")["attrs"]["eval_set"],
    }
    with h5py.File(run / "interp.h5") as f:
        eval_sets["interpolation"] = json.loads(f.attrs["eval_set"])
    for job, description in eval_sets.items():
        assert set(description["indices"]) <= own, job
        assert description["count"] == 5 and "training subset of 8" in description["within"], job
    # the batch sharpness draws its mini-batches from the run's own images too
    assert json.loads((run / "eos.json").read_text())["training_images"] == 8


def test_runs_of_one_size_share_their_subset_and_a_run_without_one_uses_every_image(subset_runs):
    first = json.loads((subset_runs / "s0/outcome.json").read_text())
    second = json.loads((subset_runs / "s1/outcome.json").read_text())
    assert first["train_indices"] == second["train_indices"]
    assert first["probe"]["indices"] != [] and set(first["probe"]["indices"]) <= set(first["train_indices"])
