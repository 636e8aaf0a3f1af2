"""Linear interpolation between two solutions: parameters linear, BN statistics kept valid."""

import numpy as np
import pytest
import torch
from torch import nn

from unetscape.landscape import interpolate_states, interpolation_curve
from unetscape.models.unet import build_model
from unetscape.training.evaluation import evaluate, images_to_tensor, masks_to_tensor


def bn_model(seed):
    torch.manual_seed(seed)
    model = build_model({"preset": "improved", "depth": 1, "base_width": 2})
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.num_batches_tracked.fill_(seed + 10)
    return model.eval()


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = images_to_tensor(rng.integers(0, 256, size=(8, 16, 16, 3), dtype=np.uint8))
    y = masks_to_tensor((rng.random((8, 16, 16)) < 0.3).astype(np.uint8))
    return x, y


def test_states_mix_parameters_linearly_and_variances_geometrically():
    a, b = bn_model(0).state_dict(), bn_model(1).state_dict()
    start, middle, end, beyond = interpolate_states(a, b, [0.0, 0.5, 1.0, 1.5])
    for key in a:
        if key.endswith("num_batches_tracked"):
            assert torch.equal(middle[key], a[key])
            continue
        assert torch.equal(start[key], a[key]) and torch.equal(end[key], b[key]), key
        if key.endswith("running_var"):
            # sqrt(a b) and b^1.5 / a^0.5: the geometric path, positive for every t
            torch.testing.assert_close(middle[key], (a[key] * b[key]).sqrt())
            torch.testing.assert_close(beyond[key], b[key] ** 1.5 / a[key] ** 0.5)
        else:
            torch.testing.assert_close(middle[key], (a[key] + b[key]) / 2)
            torch.testing.assert_close(beyond[key], 1.5 * b[key] - 0.5 * a[key])
    assert any(k.endswith("running_var") for k in a)
    assert not torch.equal(middle["down.0.1.running_mean"], a["down.0.1.running_mean"])


def far_apart_bn_models():
    """Two BN models whose linearly extrapolated running variances turn negative beyond t = 1."""
    a, b = bn_model(0), bn_model(1)
    with torch.no_grad():
        for ma, mb in zip(a.modules(), b.modules()):
            if isinstance(ma, nn.BatchNorm2d):
                ma.running_var.fill_(4.0)
                mb.running_var.fill_(0.5)
    return a, b


@pytest.mark.parametrize("bn", ["geometric", "recompute"])
def test_bn_path_beyond_one_is_finite(data, bn):
    x, y = data
    a, b = far_apart_bn_models()
    ts = np.linspace(-0.5, 1.5, 9)
    # The reference's linear mix: 4 (1 - t) + 0.5 t < 0 for t > 8/7, i.e. NaN at t = 1.25, 1.5.
    linear = {k: (1 - 1.5) * va + 1.5 * b.state_dict()[k] for k, va in a.state_dict().items() if k.endswith("running_var")}
    assert all((v < 0).all() for v in linear.values())
    curve = interpolation_curve(bn_model(3), a.state_dict(), b.state_dict(), ts, x, y, batch_size=3, bn=bn)
    for key in ("loss", "dice", "iou"):
        assert np.isfinite(curve[key]).all(), (key, curve[key])


def test_recomputed_statistics_are_those_of_a_train_mode_pass(data):
    x, y = data
    a, b = far_apart_bn_models()
    curve = interpolation_curve(bn_model(3), a.state_dict(), b.state_dict(), [0.5], x, y, batch_size=8, bn="recompute")
    # Independently: the midpoint weights, BN statistics of one whole-set batch in train mode.
    mid = bn_model(3)
    mid.load_state_dict(next(interpolate_states(a.state_dict(), b.state_dict(), [0.5])))
    for m in mid.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    mid.train()
    with torch.no_grad():
        mid(x)
    mid.eval()
    assert curve["loss"][0] == pytest.approx(evaluate(mid, x, y)["loss"], abs=1e-6)


def test_metrics_are_nan_exactly_where_the_loss_is(data):
    x, y = data
    model = bn_model(0)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    result = evaluate(model, x, y)
    assert np.isnan(result["loss"]) and np.isnan(result["dice"]) and np.isnan(result["iou"])


def test_curve_ends_are_the_two_models(data):
    x, y = data
    model_a, model_b = bn_model(0), bn_model(1)
    loss_a = evaluate(model_a, x, y)["loss"]
    loss_b = evaluate(model_b, x, y)["loss"]
    assert abs(loss_a - loss_b) > 1e-4
    work = bn_model(5).train()
    before = {k: v.clone() for k, v in work.state_dict().items()}
    curve = interpolation_curve(
        work, model_a.state_dict(), model_b.state_dict(), [0.0, 0.5, 1.0], x, y, batch_size=3
    )
    assert curve["loss"][0] == pytest.approx(loss_a, abs=1e-6)
    assert curve["loss"][2] == pytest.approx(loss_b, abs=1e-6)
    assert np.array_equal(curve["t"], [0.0, 0.5, 1.0])
    assert all(torch.equal(before[k], v) for k, v in work.state_dict().items())
    assert work.training


def test_mismatched_states_are_refused():
    a = bn_model(0).state_dict()
    b = build_model({"preset": "improved", "depth": 1, "base_width": 4}).state_dict()
    with pytest.raises(ValueError, match="shape"):
        next(interpolate_states(a, b, [0.5]))
    c = build_model({"preset": "simple", "depth": 1, "base_width": 2}).state_dict()
    with pytest.raises(ValueError, match="keys"):
        next(interpolate_states(a, c, [0.5]))
