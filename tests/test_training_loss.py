"""training.loss: a run trains with the loss it names, records it, and every landscape tool
measures that loss (checked against the loss's definition computed independently)."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from model_helpers import loss_by_definition, with_random_batch_norm
from test_training import blob_data

from unetscape.landscape.interpolation import interpolation_curve
from unetscape.measures.hessian import LossHessian
from unetscape.measures.flatness import ModelLoss
from unetscape.models.losses import loss_per_image
from unetscape.models.checkpoints import read_checkpoint
from unetscape.models.unet import build_model
from unetscape.training.evaluation import evaluate, images_to_tensor, masks_to_tensor
from unetscape.training.train import TrainSettings, train


def definition_mean(name, model, x, y):
    with torch.no_grad():
        return float(loss_by_definition(name, model.eval()(x), y).mean())


@pytest.mark.parametrize("loss", ["bce", "tversky"])
def test_a_run_trains_with_its_loss_and_records_it(tmp_path, loss):
    images, masks = blob_data(n=8)
    settings = TrainSettings(arch={"depth": 1, "base_width": 4}, lr=0.05, momentum=0.9, seed=1, epochs=2,
                             batch_size=4, save_every=1, eval_batch_size=8, loss=loss)
    train(images, masks, settings, tmp_path / "checkpoints", tmp_path / "history.csv", log=lambda _: None)
    history = pd.read_csv(tmp_path / "history.csv")
    meta = read_checkpoint(tmp_path / "checkpoints" / "epoch_002.pt")
    assert meta["settings"]["loss"] == loss
    model = build_model(meta["arch"])
    model.load_state_dict(meta["state_dict"])
    x, y = images_to_tensor(images), masks_to_tensor(masks)
    final = history[(history["kind"] == "epoch") & (history["epoch"] == 2)]["loss"].item()
    assert final == pytest.approx(definition_mean(loss, model, x, y), rel=1e-5)
    # and it differs from what the Dice loss would say (the column is not the Dice loss)
    assert abs(final - definition_mean("dice", model, x, y)) > 1e-3


def test_bad_loss_name_is_refused():
    with pytest.raises(ValueError, match="training.loss must be one of"):
        TrainSettings(arch={}, loss="hinge")


def small_model_and_data(seed=0):
    torch.manual_seed(seed)
    model = with_random_batch_norm(build_model({"depth": 1, "base_width": 2, "norm": "batch"})).double()
    generator = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(6, 3, 8, 8, generator=generator, dtype=torch.float64)
    y = (torch.rand(6, 1, 8, 8, generator=generator) < 0.4).double()
    return model, x, y


@pytest.mark.parametrize("loss", ["focal", "dice_bce"])
def test_curvature_and_flatness_measure_the_runs_loss(loss):
    model, x, y = small_model_and_data()
    expected = definition_mean(loss, model, x, y)
    hessian = LossHessian(model, x, y, batch_size=4, loss_per_image=loss_per_image(loss))
    assert hessian.loss() == pytest.approx(expected, rel=1e-10)
    # the gradient is the loss's own: a finite difference along a random direction agrees
    v = torch.randn(hessian.dim, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    objective = ModelLoss(model, x, y, batch_size=4, loss_per_image=loss_per_image(loss))
    assert objective.loss(objective.w0) == pytest.approx(expected, rel=1e-10)
    eps = 1e-5
    slope = (objective.loss(objective.w0 + eps * v) - objective.loss(objective.w0 - eps * v)) / (2 * eps)
    assert float(hessian.gradient() @ v) == pytest.approx(slope, rel=1e-5, abs=1e-9)


def test_interpolation_measures_the_runs_loss():
    model, x, y = small_model_and_data(seed=4)
    other = with_random_batch_norm(copy.deepcopy(model))
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(1.5)
    curve = interpolation_curve(model, model.state_dict(), other.state_dict(), [0.0, 1.0], x, y, batch_size=4,
                                loss="bce")
    assert curve["loss"][0] == pytest.approx(definition_mean("bce", copy.deepcopy(model), x, y), rel=1e-10)
    assert curve["loss"][1] == pytest.approx(definition_mean("bce", other, x, y), rel=1e-10)
    assert curve["loss"][0] == pytest.approx(evaluate(model.eval(), x, y, 4, "bce")["loss"], rel=1e-12)
    assert not np.isclose(curve["loss"][0], evaluate(model.eval(), x, y, 4)["loss"])
