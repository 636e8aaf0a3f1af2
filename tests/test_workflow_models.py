"""Your own data, model and loss through the workflow: a Kvasir-style folder, a network from a
Python file of the project, a non-default loss, and the landscape of a model trained elsewhere
(a plain state_dict); an edit to the network's file re-runs exactly the jobs that build it."""

import json
import textwrap

import h5py
import numpy as np
import pytest
import torch
from PIL import Image
from workflow_helpers import copy_workflow, load_smoke, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.workflow

MODULE = textwrap.dedent('''
    import torch
    from torch import nn


    class TinyUNet(nn.Module):
        """A two-level U-Net of a user's own: conv -> batch norm -> ReLU, a skip, a transposed conv."""

        def __init__(self, in_channels=3, out_channels=1, width=4):
            super().__init__()
            self.down = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(width), nn.ReLU())
            self.pool = nn.MaxPool2d(2)
            self.mid = nn.Sequential(nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU())
            self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
            self.head = nn.Conv2d(2 * width, out_channels, 1)

        def forward(self, x):
            skip = self.down(x)
            return self.head(torch.cat([skip, self.up(self.mid(self.pool(skip)))], dim=1))
''')


def kvasir_folder(root, count=20):
    """images/<id>.jpg and masks/<id>.png with the same stems, grayscale (one channel)."""
    images, masks = root / "data/kvasir/images", root / "data/kvasir/masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(count):
        r, c, w = rng.integers(2, 10), rng.integers(2, 10), rng.integers(6, 12)
        image = np.full((24, 24), 180, np.uint8)
        image[r : r + w, c : c + w] = 70
        mask = np.zeros((24, 24), np.uint8)
        mask[r : r + w, c : c + w] = 255
        Image.fromarray(image, "L").save(images / f"polyp{k:02d}.jpg", quality=95)
        Image.fromarray(mask, "L").save(masks / f"polyp{k:02d}.png")


def tiny_config():
    config = load_smoke()
    config["data"] = {"name": "kvasir", "source": "folder", "images_dir": "data/kvasir/images",
                      "masks_dir": "data/kvasir/masks", "mask_suffix": "", "size": 16, "heldout": 4, "seed": 0}
    config["archs"] = {"mine": {"module": "models/mynet.py:TinyUNet", "kwargs": {"width": 4}},
                       "simple": {"preset": "simple"}}
    config["model"] = {"depth": 1, "base_width": 4}
    config["optimizers"] = {"sgd": {"lr": 0.05, "momentum": 0.9}}
    config["training"].update(epochs=3, loss="bce", stop_on_plateau=False)
    config["landscape"]["evaluation"].update(subset=8, heldout_subset=4, batch_size=8)
    config["landscape"]["plane"].update(x=[-1, 1, 3], y=[-1, 1, 3])
    config["landscape"]["line"]["x"] = [-1, 1, 3]
    config["landscape"]["interpolation"]["t"] = [-0.5, 1.5, 5]
    config["landscape"]["trajectory"]["num"] = 3
    config["curvature"].update(top_k=1, max_iter=4, trace_samples=2)
    config["scale_invariance"].update(runs=[], x=[-1, 1, 3])  # a check of built-in U-Nets, left out
    config["studies"] = {"polyps": {"archs": ["mine", "simple"], "optimizers": ["sgd"], "noise": [0], "seeds": [0]}}
    config["external"] = {"elsewhere": {"arch": "mine", "checkpoint": "checkpoints/unet.pt"}}
    return config


def test_own_data_module_loss_and_a_model_trained_elsewhere(tmp_path):
    workdir = copy_workflow(tmp_path)
    kvasir_folder(workdir)
    (workdir / "models").mkdir()
    (workdir / "models/mynet.py").write_text(MODULE)
    # a model trained elsewhere: only its state_dict, as torch.save writes it
    namespace = {}
    exec(compile(MODULE, "mynet", "exec"), namespace)
    torch.manual_seed(7)
    elsewhere = namespace["TinyUNet"](in_channels=1, width=4)
    (workdir / "checkpoints").mkdir()
    torch.save(elsewhere.state_dict(), workdir / "checkpoints/unet.pt")
    path = write_config(workdir / "mine.yaml", tiny_config())
    snakemake(workdir, "--configfile", str(path))  # rule all: every study output and the external model's
    assert (workdir / "results/tables/findings.csv").exists()
    assert not (workdir / "results/figures/scale_invariance.png").exists()

    # the data set: grayscale images, one channel, and the network built for it
    data = np.load(workdir / "results/data/kvasir.npz")
    assert data["images"].shape == (16, 16, 16, 1) and data["heldout_images"].shape == (4, 16, 16, 1)
    run = workdir / "results/landscape/mine/sgd/noise0/seed0"
    with h5py.File(run / "random/surface.h5") as f:
        assert f.attrs["loss_function"] == "bce" and np.isfinite(f["train_loss"][()]).all()
    # the model trained elsewhere: labelled, measured at its own weights, no training path
    external = workdir / "results/landscape/external/elsewhere"
    outcome = json.loads((workdir / "results/runs/external/elsewhere/outcome.json").read_text())
    assert outcome["outcome"] == "external"
    with h5py.File(external / "random/surface.h5") as f:
        assert f.attrs["outcome"] == "external" and f.attrs["loss_function"] == "bce"
        centre = f["train_loss"][1, 1]
    x = torch.from_numpy(data["images"][:8].astype(np.float32) / 255).permute(0, 3, 1, 2)
    eval_indices = json.loads((external / "hessian.json").read_text())["eval_indices"]
    x = torch.from_numpy(data["images"][eval_indices].astype(np.float32) / 255).permute(0, 3, 1, 2)
    y = torch.from_numpy(data["masks"][eval_indices].astype(np.float32)).unsqueeze(1)
    with torch.no_grad():
        expected = torch.nn.functional.binary_cross_entropy_with_logits(elsewhere.eval()(x), y)
    assert centre == pytest.approx(float(expected), rel=1e-5)
    with h5py.File(external / "pca/surface.h5") as f:
        assert "a model trained elsewhere" in f.attrs["unavailable"]
    assert json.loads((external / "hessian.json").read_text())["finite"]
    for name in ("surface", "lines", "trajectory"):
        assert (workdir / f"results/figures/landscape/external/elsewhere/{name}.png").stat().st_size > 1000

    def planned():
        return planned_jobs(snakemake(workdir, "--configfile", str(path), "-n").stdout)

    assert planned() == []
    # an edit to the network's file re-runs the jobs that build it (and what reads their files)
    (workdir / "models/mynet.py").write_text(MODULE + "\n# a comment: the file changed\n")
    jobs = planned()
    builders = ["train", "random_plane", "run_measures", "edge_of_stability", "import_external",
                "external_random_plane", "external_run_measures"]
    assert set(builders) <= {rule for rule, _ in jobs}
    assert all(w.get("arch", "mine") == "mine" for _, w in jobs)  # no job of the built-in U-Net's run
    assert "prepare_dataset" not in {rule for rule, _ in jobs}
    # besides them, only the figures and tables that read their files
    assert {rule for rule, _ in jobs} - set(builders) <= {
        "all", "run_figures", "external_run_figures", "landscape_figure", "interpolation_figure", "explore_study",
        "training_figure", "training_table", "landscape_metrics", "metrics_figure", "findings", "generalisation",
        "interpolate_seeds", "study_3d", "conditions_page", "findings_pages", "generalisation_page", "report_overview",
        "directions_figure", "sharpness_figure", "parts_figure", "curves_figure", "learning_rate_figure"}
