"""Training and surface jobs on CUDA give the CPU's numbers (up to GPU rounding).

Skipped without a CUDA device; `benchmarks/gpu_check.sh` runs them on a GPU machine.
"""

import numpy as np
import pytest
import torch
from job_data import write_random_dataset

from unetscape.jobs.random_plane import random_plane
from unetscape.jobs.surface import surface_chunk
from unetscape.landscape.surface_io import merge_chunk_files, read_surface
from unetscape.training.train import TrainSettings, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

PLANE = {"seed": 5, "norm": "filter", "ignore": "biasbn", "orthogonalize": False, "x": [-1, 1, 5], "y": [-1, 1, 5]}


def quiet(_):
    pass


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cuda")
    images, masks = write_random_dataset(root / "data.npz", 24)
    settings = TrainSettings(arch={"depth": 2, "base_width": 4, "norm": "batch"}, lr=0.05, momentum=0.9,
                             noise=0.1, seed=1, epochs=3, batch_size=8)
    results = {}
    for device in ("cpu", "cuda"):
        results[device] = train(images, masks, settings, root / device / "checkpoints", root / device / "history.csv",
                                device=device, log=quiet)
    return root, results


def test_training_on_cuda_follows_the_cpu_run(trained):
    _, results = trained
    assert not results["cuda"].diverged
    assert results["cuda"].final_loss == pytest.approx(results["cpu"].final_loss, rel=1e-3)


@pytest.mark.parametrize("precision, points_per_pass, rel", [("float32", 1, 1e-4), ("float32", 4, 1e-4),
                                                              ("tf32", 1, 1e-2), ("bfloat16", 4, 5e-2)])
def test_surface_chunk_on_cuda_matches_the_cpu(trained, precision, points_per_pass, rel):
    root, _ = trained
    checkpoints = root / "cpu" / "checkpoints"
    random_plane(checkpoints, root / "directions.h5", PLANE, quiet)
    surfaces = {}
    for device, options in (("cpu", ("float32", 1)), ("cuda", (precision, points_per_pass))):
        evaluation = {"subset": 16, "seed": 0, "batch_size": "auto", "noise": "train", "bn": "checkpoint",
                      "precision": options[0], "points_per_pass": options[1]}
        chunk = root / f"{device}_{precision}_{points_per_pass}.chunk.h5"
        surface_chunk(checkpoints, root / "directions.h5", root / "data.npz", chunk, 0, 1, evaluation, 0.1, device,
                      log=quiet)
        merge_chunk_files([chunk], root / f"{device}_{precision}_{points_per_pass}.h5", quiet)
        surfaces[device] = read_surface(root / f"{device}_{precision}_{points_per_pass}.h5")
    np.testing.assert_allclose(surfaces["cuda"]["train_loss"], surfaces["cpu"]["train_loss"], rtol=rel)
    assert surfaces["cuda"]["attrs"]["precision"] == precision
    assert surfaces["cuda"]["attrs"]["device"].startswith("cuda")
