"""Curvature that respects the U-Nets' rescaling symmetries.

Two rescalings leave the network's function unchanged: a convolution feeding batch norm times c
(with BN's running statistics rescaled, and eps = 0, since eps itself breaks the symmetry at
about eps/var), and a conv -> ReLU -> conv pair times (c, 1/c). The raw Hessian moves under
both; the folded one (batch-norm nets) under neither of the first, the relative one
(diag(|w|) H diag(|w|)) under neither. Checked in float64 against the numbers before rescaling,
and the relative Hessian against a dense Hessian computed without the package.
"""

import numpy as np
import pytest
import torch
from model_helpers import with_random_batch_norm
from test_curvature import tiny, tiny_problem, whole_set_loss_of_flat_parameters  # noqa: F401  (fixture)
from torch import nn

from unetscape.landscape.rescale import relu_pairs, rescale_bn_inputs, rescale_relu_pair
from unetscape.measures.curvature import curvature_summary
from unetscape.measures.hessian import LossHessian, RelativeHessian
from unetscape.models.unet import build_model
from unetscape.training.evaluation import evaluate

# torch.func's forward-mode AD (the dense reference Hessian) warns from inside torch.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

SETTINGS = {"k": 2, "tol": 1e-9, "max_iter": 300, "trace_samples": 6, "seed": 0, "batch_size": 4, "log_every": 1000}
NUMBERS = ("lambda_max", "lambda_min", "nonconvexity", "trace")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def data(seed=1, n=6, size=8):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=gen, dtype=torch.float64)
    y = (torch.rand(n, 1, size, size, generator=gen) > 0.6).double()
    return x, y


def bn_unet():
    torch.manual_seed(0)
    model = with_random_batch_norm(build_model({"depth": 1, "base_width": 4, "norm": "batch"}).double())
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eps = 0.0
    return model


def plain_unet():
    torch.manual_seed(0)
    return build_model({"depth": 1, "base_width": 4, "norm": "none"}).double().eval()


def summary(model, x, y):
    result = curvature_summary(model, x, y, SETTINGS, log=lambda _: None)
    for part in (result, result["folded"], result["relative"]):
        assert part["lanczos_converged"], "the comparison needs converged eigenvalues"
    return result


def assert_same(a: dict, b: dict, keys=NUMBERS, rel=1e-6):
    for key in keys:
        assert b[key] == pytest.approx(a[key], rel=rel), key


def moved(a: dict, b: dict, key="lambda_max", factor=1.1) -> bool:
    ratio = b[key] / a[key]
    return ratio > factor or ratio < 1 / factor


def test_batch_norm_rescaling_moves_raw_curvature_but_not_folded_or_relative():
    x, y = data()
    model = bn_unet()
    rescaled = rescale_bn_inputs(model, 4.0).eval()
    assert evaluate(rescaled, x, y)["loss"] == pytest.approx(evaluate(model, x, y)["loss"], rel=1e-12)
    before, after = summary(model, x, y), summary(rescaled, x, y)
    # the raw numbers move (the Hessian of a rescaled block shrinks by 1/c^2) ...
    assert moved(before, after) and moved(before, after, "trace")
    # ... the invariant ones do not
    assert not before["folded"]["same_as_raw"]
    assert_same(before["folded"], after["folded"])
    assert_same(before["relative"], after["relative"])
    assert before["relative"]["top_eigenvalues"] == pytest.approx(after["relative"]["top_eigenvalues"], rel=1e-6)


def test_relu_pair_rescaling_moves_raw_curvature_but_not_relative():
    x, y = data()
    model = plain_unet()
    pairs = relu_pairs(model)
    assert ("down.0.0", "down.0.2") in pairs and len(pairs) == 3  # one per ConvBlock
    rescaled = rescale_relu_pair(model, "down.0.0", "down.0.2", 2.0)
    assert not torch.equal(rescaled.down[0][0].weight, model.down[0][0].weight)
    assert evaluate(rescaled, x, y)["loss"] == pytest.approx(evaluate(model, x, y)["loss"], rel=1e-12)
    before, after = summary(model, x, y), summary(rescaled, x, y)
    assert moved(before, after) or moved(before, after, "trace")
    assert_same(before["relative"], after["relative"])
    # without batch norm the folded network is the network: its numbers are the raw ones
    assert before["folded"]["same_as_raw"] and before["folded"]["lambda_max"] == before["lambda_max"]


def test_per_channel_rescaling_is_a_symmetry_of_the_relative_hessian_too():
    x, y = data()
    model = plain_unet()
    rescaled = rescale_relu_pair(model, "merge.0.0", "merge.0.2", 1.0)
    with torch.no_grad():  # channel k of the first conv times c_k, input channel k of the second times 1/c_k
        c = torch.tensor([0.5, 3.0, 1.5, 0.25], dtype=torch.float64)
        rescaled.merge[0][0].weight.mul_(c.view(-1, 1, 1, 1))
        rescaled.merge[0][0].bias.mul_(c)
        rescaled.merge[0][2].weight.div_(c.view(1, -1, 1, 1))
    assert evaluate(rescaled, x, y)["loss"] == pytest.approx(evaluate(model, x, y)["loss"], rel=1e-12)
    v = torch.randn(sum(p.numel() for p in model.parameters()), generator=torch.Generator().manual_seed(4),
                    dtype=torch.float64)
    before = RelativeHessian(LossHessian(model, x, y)).hvp(v)
    after = RelativeHessian(LossHessian(rescaled, x, y)).hvp(v)
    torch.testing.assert_close(after, before, rtol=1e-9, atol=1e-12 * float(before.abs().max()))
    raw_before, raw_after = LossHessian(model, x, y).hvp(v), LossHessian(rescaled, x, y).hvp(v)
    assert (raw_after - raw_before).abs().max() > 1e-3 * raw_before.abs().max()


def test_relative_hessian_matches_the_scaled_dense_hessian(tiny):  # noqa: F811
    model, x, y, _, dense = tiny
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).abs()
    scaled = (theta[:, None] * dense * theta[None, :]).numpy()
    exact = np.linalg.eigvalsh(scaled)
    result = curvature_summary(model, x, y, {**SETTINGS, "k": 3, "tol": 1e-8, "trace_samples": 200},
                               log=lambda _: None)["relative"]
    assert result["lanczos_converged"]
    np.testing.assert_allclose(result["top_eigenvalues"], exact[::-1][:3], rtol=1e-6)
    assert result["lambda_min"] == pytest.approx(exact[0], rel=1e-6, abs=1e-9 * abs(exact).max())
    se = result["trace_se"]
    assert abs(result["trace"] - float(np.trace(scaled))) < 4 * se


def test_folded_curvature_of_a_batch_norm_net_is_the_dense_hessian_of_its_folded_weights():
    # The folded network, written out by hand: each conv -> BN pair as one conv with
    # weight W * s and bias (b - mean) * s + beta, s = gamma / sqrt(var + eps).
    model, x, y = tiny_problem("batch")
    model.eval()
    folded = build_model({"depth": 1, "base_width": 2, "norm": "none"}).double().eval()
    source = dict(model.named_modules())
    convs = (nn.Conv2d, nn.ConvTranspose2d)
    # The k-th convolution of the plain net is the k-th of the batch-norm net (same wiring).
    pairs = zip([m for m in folded.modules() if isinstance(m, convs)],
                [(name, m) for name, m in model.named_modules() if isinstance(m, convs)], strict=True)
    with torch.no_grad():
        for module, (name, conv) in pairs:
            block, _, index = name.rpartition(".")
            bn = source.get(f"{block}.{int(index) + 1}") if index.isdigit() else None
            if isinstance(bn, nn.BatchNorm2d):
                s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                module.weight.copy_(conv.weight * s.view(-1, 1, 1, 1))
                module.bias.copy_(bn.bias - bn.running_mean * s)
            else:
                module.weight.copy_(conv.weight)
                module.bias.copy_(conv.bias)
    assert evaluate(folded, x, y)["loss"] == pytest.approx(evaluate(model, x, y)["loss"], rel=1e-10)
    loss, theta = whole_set_loss_of_flat_parameters(folded, x, y)
    exact = np.linalg.eigvalsh(torch.func.hessian(loss)(theta).numpy())
    result = curvature_summary(model, x, y, {**SETTINGS, "k": 2, "tol": 1e-8}, log=lambda _: None)["folded"]
    assert result["parameters"] == len(theta)
    np.testing.assert_allclose(result["top_eigenvalues"], exact[::-1][:2], rtol=1e-6)
    assert result["lambda_min"] == pytest.approx(exact[0], rel=1e-6, abs=1e-9 * abs(exact).max())


def test_a_pair_that_is_not_conv_relu_conv_is_refused():
    model = bn_unet()
    assert relu_pairs(model) == []  # batch norm sits between the convolutions
    with pytest.raises(ValueError, match="not a conv -> ReLU -> conv pair"):
        rescale_relu_pair(model, "down.0.0", "down.0.3", 2.0)
    with pytest.raises(ValueError, match="factor must be > 0"):
        rescale_relu_pair(plain_unet(), "down.0.0", "down.0.2", -1.0)
