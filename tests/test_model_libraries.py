"""Networks from MONAI and segmentation_models_pytorch, and a user's own module: built from
their specs, trained, and measured by every landscape tool, each surface point equal to an
independent evaluation of Li et al.'s definition on that model.

The MONAI and smp tests need the optional extras (`pip install -e '.[monai,smp]'`, which
.ci/run installs); where an extra is not installed they are skipped, saying so.
"""

import importlib.util
import json

import h5py
import numpy as np
import pytest
import torch
from job_data import write_random_dataset
from model_helpers import li_surface_point

from unetscape.jobs.measured import load_evaluation_set
from unetscape.jobs.random_plane import random_plane_and_line
from unetscape.jobs.run_measures import curvature_and_flatness, training_path
from unetscape.landscape.directions import load_directions
from unetscape.landscape.surface_io import read_surface
from unetscape.models import registry
from unetscape.models.registry import ModelSpecError, build_model, resolve_model
from unetscape.models.checkpoints import load_checkpoint, read_checkpoint
from unetscape.training.outcomes import read_outcome
from unetscape.training.train import TrainSettings, train

EVALUATION = {"subset": None, "heldout_subset": None, "seed": 0, "batch_size": 4, "noise": "train",
              "bn": "checkpoint", "precision": "float32", "points_per_pass": 1}
PLANE = {"seed": 2, "norm": "filter", "ignore": "biasbn", "orthogonalize": False, "x": [-1, 1, 3], "y": [-1, 1, 3]}
LINE = {"x": [-1, 1, 3]}
TRAJECTORY = {"ignore": "biasbn", "num": 3, "margin": 0.2}
INTERPOLATION = {"t": [-0.5, 1.5, 5], "bn": "geometric"}
CURVATURE = {"top_k": 1, "tol": 1e-2, "max_iter": 4, "which": "algebraic", "trace_samples": 2, "seed": 0}
FLATNESS = {"average_samples": 4, "worst_steps": 2, "pac_samples": 1, "pac_iterations": 2}


def needs(package, extra):
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed: pip install -e '.[{extra}]' (.ci/run installs it)")


MONAI_BASIC = {"library": "monai", "name": "BasicUNet", "kwargs": {"features": [4, 4, 8, 8, 16, 4]}}
# Smoke-sized: the first three stages of the resnet18 encoder (about 0.7 million parameters).
SMP_RESNET = {"library": "smp", "name": "Unet",
              "kwargs": {"encoder_name": "resnet18", "encoder_depth": 3, "decoder_channels": [16, 8, 4]}}


def quiet(_):
    pass


def train_and_measure(root, spec, loss="dice", size=32, measures=True):
    """train -> random plane, line and surface -> training path (-> curvature, flatness)."""
    images, masks = write_random_dataset(root / "data.npz", 8, size=size)
    settings = TrainSettings(arch=resolve_model(spec, channels=3), lr=0.01, momentum=0.9, seed=0, epochs=2,
                             batch_size=4, eval_batch_size=8, stop_on_plateau=False, loss=loss)
    checkpoints, outcome = root / "checkpoints", root / "outcome.json"
    train(images, masks, settings, checkpoints, root / "history.csv", log=quiet, outcome_path=outcome)
    land = root / "landscape"
    (land / "random").mkdir(parents=True)
    (land / "pca").mkdir()
    random_plane_and_line(checkpoints, outcome, root / "data.npz", land / "random/directions.h5",
                          land / "random/line.h5", land / "random/line_directions.h5", PLANE, LINE, EVALUATION, 0.0,
                          "cpu", quiet, surface_out=land / "random/surface.h5")
    training_path(checkpoints, outcome, root / "data.npz", land / "pca/directions.h5", land / "pca/surface.h5",
                  land / "pca/projection.h5", land / "interpolation_init.h5", TRAJECTORY, INTERPOLATION, EVALUATION,
                  0.0, "cpu", quiet)
    if measures:
        curvature_and_flatness(checkpoints, outcome, root / "data.npz", land / "hessian.json",
                               land / "flatness.json", CURVATURE, FLATNESS, EVALUATION, 0.0, "cpu", quiet)
    return checkpoints, outcome, land


def check_against_the_definition(root, checkpoints, outcome, land, loss="dice", measures=True):
    """Every point of the random-plane surface and of the line is Li et al.'s value, computed
    independently on the checkpoint's model; the other files exist and are finite."""
    path = checkpoints / read_outcome(outcome)["landscape_checkpoint"]
    model = load_checkpoint(path)
    x, y, _ = load_evaluation_set(root / "data.npz", EVALUATION, 0.0, "cpu")
    for name, directions_file, ndim in (("surface", "directions", 2), ("line", "line_directions", 1)):
        surface = read_surface(land / f"random/{name}.h5")
        directions, _ = load_directions(land / f"random/{directions_file}.h5", model)
        values = np.atleast_2d(surface["train_loss"])
        assert np.isfinite(values).all() and np.ptp(values) > 1e-6  # the points differ
        for j, b in enumerate(surface["ycoordinates"] if ndim == 2 else [None]):
            for i, a in enumerate(surface["xcoordinates"]):
                coords = (a, b) if ndim == 2 else (a,)
                expected = li_surface_point(model, x, y, directions, coords, loss)
                assert values[j, i] == pytest.approx(expected, rel=1e-5, abs=1e-6), (name, coords)
        assert surface["attrs"]["loss_function"] == loss
    pca = read_surface(land / "pca/surface.h5")
    assert np.isfinite(pca["train_loss"]).all()
    with h5py.File(land / "interpolation_init.h5") as f:
        assert np.isfinite(f["train_loss"][()]).all()
    if not measures:
        return
    hessian = json.loads((land / "hessian.json").read_text())
    flatness = json.loads((land / "flatness.json").read_text())
    assert hessian["finite"] and hessian["loss_function"] == loss and np.isfinite(hessian["lambda_max"])
    assert flatness["finite"] and flatness["loss_function"] == loss
    # the Hessian's loss is the surface's centre (the same loss at the same weights)
    centre = read_surface(land / "random/surface.h5")["train_loss"][1, 1]
    assert hessian["loss"] == pytest.approx(centre, rel=1e-5)


def test_monai_basic_unet_train_to_surface(tmp_path):
    needs("monai", "monai")
    checkpoints, outcome, land = train_and_measure(tmp_path, MONAI_BASIC, loss="dice_bce")
    meta = read_checkpoint(checkpoints / "epoch_002.pt")
    assert meta["arch"]["library"] == "monai" and meta["arch"]["kwargs"]["spatial_dims"] == 2
    assert meta["arch"]["kwargs"]["in_channels"] == 3 and meta["arch"]["kwargs"]["out_channels"] == 1
    check_against_the_definition(tmp_path, checkpoints, outcome, land, loss="dice_bce")


def test_smp_unet_resnet18_train_to_surface(tmp_path):
    needs("segmentation_models_pytorch", "smp")
    checkpoints, outcome, land = train_and_measure(tmp_path, SMP_RESNET)
    meta = read_checkpoint(checkpoints / "epoch_002.pt")
    assert meta["arch"]["kwargs"]["encoder_weights"] is None and meta["arch"]["kwargs"]["classes"] == 1
    check_against_the_definition(tmp_path, checkpoints, outcome, land)
    # smp's conv -> BN -> ReLU blocks are folded on the fast path
    attrs = read_surface(land / "random/surface.h5")["attrs"]
    assert attrs["bn_folded"] and "twin_fallback" not in attrs


def test_smp_refuses_pretrained_weights():
    with pytest.raises(ModelSpecError, match="encoder_weights is 'imagenet'"):
        resolve_model({"library": "smp", "name": "Unet", "kwargs": {"encoder_weights": "imagenet"}})


@pytest.mark.parametrize("library, package, extra", [("monai", "monai", "monai"),
                                                     ("smp", "segmentation_models_pytorch", "smp")])
def test_a_missing_extra_is_named(monkeypatch, library, package, extra):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a))
    spec = resolve_model({"library": library, "name": "UNet" if library == "monai" else "Unet"})
    with pytest.raises(ModelSpecError, match=rf"pip install -e '\.\[{extra}\]'"):
        build_model(spec)


# --- your own nn.Module ----------------------------------------------------------------------

MODULE = '''
import torch
from torch import nn


class TinyUNet(nn.Module):
    """Two levels, batch norm, a skip: a small network of a user's own."""

    def __init__(self, in_channels=3, out_channels=1, width=4):
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU())
        self.pool = nn.MaxPool2d(2)
        self.mid = nn.Sequential(nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU())
        self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.head = nn.Conv2d(2 * width, out_channels, 1)

    def forward(self, x):
        skip = self.down(x)
        return self.head(torch.cat([skip, self.up(self.mid(self.pool(skip)))], dim=1))
'''


def test_own_module_from_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mynet.py").write_text(MODULE)
    spec = resolve_model({"module": "models/mynet.py:TinyUNet", "kwargs": {"width": 3}}, channels=1)
    assert spec["kwargs"] == {"in_channels": 1, "out_channels": 1, "width": 3}
    assert registry.module_file(spec) == "models/mynet.py"
    images, masks = write_random_dataset(tmp_path / "data.npz", 8, size=16)
    settings = TrainSettings(arch=resolve_model({"module": "models/mynet.py:TinyUNet", "kwargs": {"width": 3}}),
                             lr=0.01, momentum=0.9, seed=0, epochs=2, batch_size=4, stop_on_plateau=False)
    train(images, masks, settings, tmp_path / "checkpoints", tmp_path / "history.csv", log=quiet,
          outcome_path=tmp_path / "outcome.json")
    land = tmp_path / "landscape"
    (land / "random").mkdir(parents=True)
    random_plane_and_line(tmp_path / "checkpoints", tmp_path / "outcome.json", tmp_path / "data.npz",
                          land / "random/directions.h5", land / "random/line.h5", land / "random/line_directions.h5",
                          PLANE, LINE, EVALUATION, 0.0, "cpu", quiet, surface_out=land / "random/surface.h5")
    attrs = read_surface(land / "random/surface.h5")["attrs"]
    assert attrs["bn_folded"] and attrs["transposed_conv_as_matmul"] and "twin_fallback" not in attrs
    model = load_checkpoint(tmp_path / "checkpoints" / "epoch_002.pt")
    assert type(model).__name__ == "TinyUNet"
    x, y, _ = load_evaluation_set(tmp_path / "data.npz", EVALUATION, 0.0, "cpu")
    directions, _ = load_directions(land / "random/directions.h5", model)
    surface = read_surface(land / "random/surface.h5")
    for j, b in enumerate(surface["ycoordinates"]):
        for i, a in enumerate(surface["xcoordinates"]):
            assert surface["train_loss"][j, i] == pytest.approx(li_surface_point(model, x, y, directions, (a, b)),
                                                                rel=1e-5)


def test_own_module_errors_name_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelSpecError, match="module file nope.py not found"):
        resolve_model({"module": "nope.py:Net"})
    (tmp_path / "broken.py").write_text("import torch\nraise RuntimeError('boom')\n")
    with pytest.raises(ModelSpecError, match="broken.py: importing it failed: RuntimeError: boom"):
        resolve_model({"module": "broken.py:Net"})
    (tmp_path / "net.py").write_text(MODULE)
    with pytest.raises(ModelSpecError, match="defines no torch.nn.Module subclass 'Missing'"):
        resolve_model({"module": "net.py:Missing"})
    with pytest.raises(ModelSpecError, match="path/to/file.py:ClassName"):
        resolve_model({"module": "net.py"})
    wrong = build_model(resolve_model({"module": "net.py:TinyUNet", "kwargs": {"out_channels": 2}}))
    with pytest.raises(ModelSpecError, match="must return one logit per pixel"):
        registry.check_output(wrong, torch.zeros(1, 3, 8, 8))


class Unusual(torch.nn.Sequential):
    """A Sequential subclass that uses its children out of order: nothing in it may be folded."""

    def forward(self, x):
        return self[2](self[0](x)) + self[1](self[0](x))


def test_unknown_module_kinds_fall_back_to_the_general_path():
    from unetscape.landscape.directions import make_directions
    from unetscape.landscape.reference import ReferenceEvaluator
    from unetscape.landscape.surface import SurfaceEvaluator

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        Unusual(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU()),
        torch.nn.Conv2d(4, 1, 1),
    ).eval()
    with torch.no_grad():
        model[0][1].running_mean.uniform_(-1, 1)
        model[0][1].running_var.uniform_(0.5, 2)
    x = torch.rand(4, 3, 8, 8)
    y = (torch.rand(4, 1, 8, 8) > 0.5).float()
    directions = make_directions(model, seed=1)
    with SurfaceEvaluator(model, x, y, directions, points_per_pass=2) as evaluator:
        got = evaluator.evaluate_many([[0.3, -0.2], [0.0, 0.5]])
        assert not evaluator.settings["bn_folded"]
    reference = ReferenceEvaluator(model, x, y, directions)
    for value, point in zip(got, [[0.3, -0.2], [0.0, 0.5]]):
        assert value["loss"] == pytest.approx(reference.evaluate(point)["loss"], rel=1e-5)


def test_a_missing_extra_stops_the_config_naming_it(monkeypatch):
    from test_bad_input import SCHEMA, valid_config

    from unetscape.workflow.config import ConfigError
    from unetscape.workflow.config_checks import validate_config

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "segmentation_models_pytorch" else real(name, *a))
    config = valid_config()
    config["archs"]["smp_resnet"] = {"library": "smp", "name": "Unet", "kwargs": {"encoder_name": "resnet18"}}
    with pytest.raises(ConfigError, match=r"config key archs.smp_resnet.library: .*pip install -e '\.\[smp\]'"):
        validate_config(config, SCHEMA)
