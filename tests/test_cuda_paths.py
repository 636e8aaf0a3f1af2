"""Every model job on CUDA gives the CPU's numbers (up to GPU rounding): training, the random
plane and its direction sets, the curvature (per part too) and the eigenvector plane, the edge
of stability, and the mode-connecting curves.

Skipped without a CUDA device; `benchmarks/gpu_check.sh` runs them on a GPU machine.
"""

import json

import numpy as np
import pytest
import torch
from job_data import write_random_dataset

from unetscape.jobs.curves import connect_seeds, read_connection
from unetscape.jobs.edge_of_stability import edge_of_stability_job
from unetscape.jobs.random_plane import random_plane, random_plane_and_line
from unetscape.jobs.run_measures import curvature_and_flatness
from unetscape.jobs.surface import surface_chunk
from unetscape.landscape.direction_sets import read_direction_sets
from unetscape.landscape.surface_io import merge_chunk_files, read_surface
from unetscape.training.train import TrainSettings, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

PLANE = {"seed": 5, "norm": "filter", "ignore": "biasbn", "orthogonalize": False, "x": [-1, 1, 5], "y": [-1, 1, 5]}
EVALUATION = {"subset": 16, "heldout_subset": 0, "seed": 0, "batch_size": "auto", "noise": "train",
              "bn": "checkpoint", "precision": "float32", "points_per_pass": 1}
CURVATURE = {"top_k": 2, "which": "algebraic", "tol": 1e-3, "max_iter": 40, "trace_samples": 4, "seed": 0,
             "parts": {"studies": [], "every_run": False, "max_iter": 30, "trace_samples": 4}}
FLATNESS = {"seed": 0, "average_rho": 0.05, "average_samples": 4, "worst_rho": 0.1, "worst_steps": 2,
            "worst_step_size": 1.0, "worst_start_radius": 0.0, "pac_target": 0.1, "pac_samples": 2,
            "pac_iterations": 3, "pac_sigma_range": [1e-4, 1.0], "pac_magnitude_range": [1e-3, 10.0], "pac_eps": 1e-3}


def quiet(_):
    pass


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cuda")
    images, masks = write_random_dataset(root / "data.npz", 24)
    results = {}
    for device in ("cpu", "cuda"):
        for seed in (1, 2):
            settings = TrainSettings(arch={"depth": 2, "base_width": 4, "norm": "batch"}, lr=0.05, momentum=0.9,
                                     noise=0.1, seed=seed, epochs=3, batch_size=8, stop_on_plateau=False)
            run = root / device / f"seed{seed}"
            results[device, seed] = train(images, masks, settings, run / "checkpoints", run / "history.csv",
                                          device=device, log=quiet, outcome_path=run / "outcome.json")
    return root, results


def test_training_on_cuda_follows_the_cpu_run(trained):
    _, results = trained
    assert not results["cuda", 1].diverged
    assert results["cuda", 1].final_loss == pytest.approx(results["cpu", 1].final_loss, rel=1e-3)


@pytest.mark.parametrize("precision, points_per_pass, rel", [("float32", 1, 1e-4), ("float32", 4, 1e-4),
                                                              ("tf32", 1, 1e-2), ("bfloat16", 4, 5e-2)])
def test_surface_chunk_on_cuda_matches_the_cpu(trained, precision, points_per_pass, rel):
    root, _ = trained
    run = root / "cpu" / "seed1"
    random_plane(run / "checkpoints", run / "outcome.json", root / "directions.h5", PLANE, quiet)
    surfaces = {}
    for device, options in (("cpu", ("float32", 1)), ("cuda", (precision, points_per_pass))):
        evaluation = {**EVALUATION, "precision": options[0], "points_per_pass": options[1]}
        chunk = root / f"{device}_{precision}_{points_per_pass}.chunk.h5"
        surface_chunk(run / "checkpoints", run / "outcome.json", root / "directions.h5", root / "data.npz", chunk,
                      0, 1, evaluation, 0.1, device, log=quiet)
        merge_chunk_files([chunk], root / f"{device}_{precision}_{points_per_pass}.h5", quiet)
        surfaces[device] = read_surface(root / f"{device}_{precision}_{points_per_pass}.h5")
    np.testing.assert_allclose(surfaces["cuda"]["train_loss"], surfaces["cpu"]["train_loss"], rtol=rel)
    assert surfaces["cuda"]["attrs"]["precision"] == precision
    assert surfaces["cuda"]["attrs"]["device"].startswith("cuda")


def test_the_new_model_jobs_on_cuda_match_the_cpu(trained):
    """Direction sets, curvature with parts and the eigenvector plane, edge of stability and a
    curve between seeds: the same numbers on both devices (float32 on the GPU)."""
    root, _ = trained
    run, other = root / "cpu" / "seed1", root / "cpu" / "seed2"
    sets = {"count": 2, "x": [-1, 1, 3], "y": [-1, 1, 3], "line": [-1, 1, 3]}
    eos = {"checkpoints": 2, "batches": 2, "tol": 1e-3, "max_iter": 20, "seed": 0}
    curve = {"steps": 5, "batch_size": 4, "lr": 0.1, "momentum": 0.9, "seed": 0, "t": [0, 1, 3], "bn_batch_size": 8}
    out = {}
    for device in ("cpu", "cuda"):
        folder = root / f"jobs_{device}"
        folder.mkdir()
        random_plane_and_line(run / "checkpoints", run / "outcome.json", root / "data.npz", folder / "dirs.h5",
                              folder / "line.h5", folder / "line_dirs.h5", PLANE, {"x": [-1, 1, 3], "log_scale": False},
                              EVALUATION, 0.1, device, quiet, sets_out=folder / "sets.h5", sets=sets)
        curvature_and_flatness(run / "checkpoints", run / "outcome.json", root / "data.npz", folder / "hessian.json",
                               folder / "flatness.json", CURVATURE, FLATNESS, EVALUATION, 0.1, device, quiet,
                               eigen_directions_out=folder / "eigen_dirs.h5", eigen_surface_out=folder / "eigen.h5",
                               eigen_plane={"x": [-0.03, 0.03, 3], "y": [-0.03, 0.03, 3]}, parts=True)
        edge_of_stability_job(run / "checkpoints", run / "outcome.json", root / "data.npz", folder / "eos.json", eos,
                              EVALUATION, 0.1, device, quiet)
        connect_seeds([run / "checkpoints", other / "checkpoints"], [run / "outcome.json", other / "outcome.json"],
                      root / "data.npz", folder / "curve.h5", curve, EVALUATION, 0.1, device, quiet)
        hessian = json.loads((folder / "hessian.json").read_text())
        out[device] = {
            "sets": read_direction_sets(folder / "sets.h5")["train_loss"],
            "lambda": hessian["relative"]["lambda_max"],
            "parts": [p["lambda_max"] for p in hessian["parts"]["parts"].values()],
            "eigen": read_surface(folder / "eigen.h5")["train_loss"],
            "eos": [r["lambda_max"] for r in json.loads((folder / "eos.json").read_text())["rows"]],
            "curve": read_connection(folder / "curve.h5")["line_train_loss"],
        }
    for key in ("sets", "eigen", "curve"):
        np.testing.assert_allclose(out["cuda"][key], out["cpu"][key], rtol=1e-3, atol=1e-5, err_msg=key)
    for key in ("lambda", "parts", "eos"):
        np.testing.assert_allclose(out["cuda"][key], out["cpu"][key], rtol=1e-2, err_msg=key)
