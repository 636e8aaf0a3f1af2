"""The batch-norm scale symmetry, and why filter normalisation is needed (Li et al. 2018).

Multiplying a conv that feeds batch norm by c > 0 leaves the network unchanged except through
BN's eps: (c z - c mu) / sqrt(c^2 var + eps) = (z - mu) / sqrt(var + eps / c^2). So the checks
are exact in two forms: with a negligible eps the rescaled model is the original one, and with
the default eps the rescaled model equals the original with eps / c^2.
"""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from unetscape.landscape import (
    SurfaceEvaluator,
    SurfaceGrid,
    conv_bn_pairs,
    make_directions,
    rescale_bn_inputs,
)
from unetscape.models.unet import build_model
from unetscape.training.evaluation import evaluate, images_to_tensor, masks_to_tensor

FACTORS = (0.5, 2.0)
TINY_EPS = 1e-12  # torch refuses eps = 0 in train mode; this is 1e-10 of the running variances


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = images_to_tensor(rng.integers(0, 256, size=(8, 16, 16, 3), dtype=np.uint8))
    y = masks_to_tensor((rng.random((8, 16, 16)) < 0.3).astype(np.uint8))
    return x, y


def batch_norms(model):
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


@torch.no_grad()
def improved_model(x, eps=None):
    """A batch-norm U-Net with realistic running statistics (one pass over the data)."""
    torch.manual_seed(0)
    model = build_model({"preset": "improved", "depth": 1, "base_width": 4})
    for bn in batch_norms(model):
        bn.momentum = None
        if eps is not None:
            bn.eps = eps
    model.train()
    model(x)
    for bn in batch_norms(model):
        bn.momentum = 0.1
    return model.eval()


def with_eps(model, eps):
    model = copy.deepcopy(model)
    for bn in batch_norms(model):
        bn.eps = eps
    return model


def surface(model, x, y, norm, bn, seed=3):
    grid = SurfaceGrid.from_config([-1, 1, 3], [-1, 1, 3])
    with SurfaceEvaluator(
        model, x, y, make_directions(model, seed=seed, norm=norm), bn=bn, batch_size=4
    ) as ev:
        return ev.evaluate_points(grid.points(), grid)["loss"]


@pytest.mark.parametrize("factor", FACTORS)
def test_rescaling_leaves_the_bn_model_unchanged(data, factor):
    x, y = data
    model = improved_model(x, eps=TINY_EPS)
    rescaled = rescale_bn_inputs(model, factor).eval()
    assert len(conv_bn_pairs(rescaled)) == len(batch_norms(rescaled)) == 6
    assert not torch.equal(rescaled.down[0][0].weight, model.down[0][0].weight)
    base = evaluate(model, x, y)["loss"]
    assert evaluate(rescaled, x, y)["loss"] == pytest.approx(base, rel=1e-5)


@pytest.mark.parametrize("factor", FACTORS)
def test_with_default_eps_rescaling_only_rescales_eps(data, factor):
    x, y = data
    model = improved_model(x)
    eps = batch_norms(model)[0].eps
    rescaled = evaluate(rescale_bn_inputs(model, factor).eval(), x, y)["loss"]
    equivalent = evaluate(with_eps(model, eps / factor**2), x, y)["loss"]
    assert rescaled == pytest.approx(equivalent, rel=1e-6)
    # ... and that eps change is a small effect at realistic running variances.
    assert rescaled == pytest.approx(evaluate(model, x, y)["loss"], rel=1e-4)


@pytest.mark.parametrize("bn", ["checkpoint", "recompute"])
def test_filter_normalised_surface_is_scale_invariant(data, bn):
    x, y = data
    model = improved_model(x, eps=TINY_EPS)
    expected = surface(model, x, y, "filter", bn)
    for factor in FACTORS:
        rescaled = rescale_bn_inputs(model, factor).eval()
        # Filter normalisation scales the direction with the weights, slice by slice ...
        fed = {id(conv.weight) for conv, _ in conv_bn_pairs(model)}
        before, after = make_directions(model, seed=3)[0], make_directions(rescaled, seed=3)[0]
        for w, d0, d1 in zip(model.parameters(), before, after):
            scale = factor if id(w) in fed else 1.0
            torch.testing.assert_close(d1, scale * d0, rtol=1e-5, atol=1e-7)
        # ... so every point of the plane is the same network.
        np.testing.assert_allclose(surface(rescaled, x, y, "filter", bn), expected, rtol=1e-5)
    assert np.ptp(expected) > 1e-2  # a surface with some relief, not a constant


def test_unnormalised_surface_is_not_scale_invariant(data):
    x, y = data
    model = improved_model(x, eps=TINY_EPS)
    expected = surface(model, x, y, "none", "checkpoint")
    changed = surface(rescale_bn_inputs(model, 2.0).eval(), x, y, "none", "checkpoint")
    assert np.max(np.abs(changed - expected)) > 1e-3


def test_plain_unet_has_no_such_symmetry(data):
    x, y = data
    torch.manual_seed(0)
    model = build_model({"preset": "simple", "depth": 1, "base_width": 4}).eval()
    # He init: PyTorch's default init shrinks activations layer by layer, which would hide
    # a first-layer change behind the head's bias.
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    with pytest.raises(ValueError, match="BatchNorm"):
        rescale_bn_inputs(model, 2.0)
    rescaled = copy.deepcopy(model)
    with torch.no_grad():
        rescaled.down[0][0].weight.mul_(2.0)
    base = evaluate(model, x, y)["loss"]
    assert abs(evaluate(rescaled, x, y)["loss"] - base) / base > 1e-3


def test_factor_must_be_positive(data):
    model = improved_model(data[0])
    for factor in (0.0, -1.0):
        with pytest.raises(ValueError, match="factor"):
            rescale_bn_inputs(model, factor)
