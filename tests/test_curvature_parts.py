"""Curvature per network part: the block-diagonal restriction of the scale-normalised Hessian,
checked against dense Hessians built without the package (torch.func / torch.autograd), and
the U-Net's parts checked against the U-Net's own layout."""

import math

import numpy as np
import pytest
import torch
from model_helpers import with_random_batch_norm
from test_curvature import tiny_problem, whole_set_loss_of_flat_parameters
from torch import nn
from torch.func import functional_call

from unetscape.landscape.rescale import rescale_bn_inputs
from unetscape.measures.curvature_parts import PART_SETTINGS, parameter_parts, part_curvature
from unetscape.measures.hessian import LossHessian
from unetscape.models.unet import build_model
from unetscape.training.evaluation import evaluate

# torch.func's forward-mode AD (the dense reference Hessian) warns from inside torch.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

SETTINGS = {"tol": 1e-9, "max_iter": 300, "trace_samples": 8, "seed": 3, "batch_size": 3, "log_every": 1000}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def quiet(_):
    pass


def dice_per_image(logits, masks):
    """The soft Dice loss per image, written out: 1 - (2 sum p g + 1) / (sum p + sum g + 1)."""
    p = torch.sigmoid(logits).reshape(len(logits), -1)
    g = masks.reshape(len(masks), -1)
    return 1 - (2 * (p * g).sum(1) + 1) / (p.sum(1) + g.sum(1) + 1)


class TwoBranches(nn.Module):
    """Two networks side by side on the same images: channel 0 is `left`'s logits, channel 1
    `right`'s. With `two_dice` as the loss, L = f(left) + g(right): the Hessian is block
    diagonal over the two branches, and each block is full (tanh couples a branch's weights)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.left = nn.Sequential(nn.Conv2d(3, 3, 1), nn.Tanh(), nn.Conv2d(3, 1, 1))
        self.right = nn.Sequential(nn.Conv2d(3, 2, 1), nn.Tanh(), nn.Conv2d(2, 1, 1))
        self.double()

    def forward(self, x):
        return torch.cat([self.left(x), self.right(x)], dim=1)


def two_dice(logits, masks):
    return dice_per_image(logits[:, :1], masks) + dice_per_image(logits[:, 1:], masks)


def images(n=5, size=4, seed=1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=gen, dtype=torch.float64)
    y = (torch.rand(n, 1, size, size, generator=gen) > 0.5).double()
    return x, y


def dense_hessian(model, x, y, per_image):
    """d^2 L / dtheta^2 of L = mean over images of `per_image`, by torch.autograd.functional."""
    named = list(model.named_parameters())
    buffers = dict(model.named_buffers())

    def loss(theta):
        params = {name: piece.view_as(p) for (name, p), piece in zip(named, theta.split([p.numel() for _, p in named]))}
        return per_image(functional_call(model, {**params, **buffers}, (x,)), y).mean()

    theta = torch.cat([p.detach().reshape(-1) for _, p in named])
    return torch.autograd.functional.hessian(loss, theta), theta


def block_indices(model, names):
    """Positions of the parameters `names` in the flat vector of all parameters."""
    offsets, start = {}, 0
    for name, p in model.named_parameters():
        offsets[name] = np.arange(start, start + p.numel())
        start += p.numel()
    return np.concatenate([offsets[name] for name in names])


def relative_block(dense, theta, index):
    """diag(|w_P|) H_PP diag(|w_P|) for the positions `index`."""
    scale = theta.abs().numpy()[index]
    return scale[:, None] * dense.numpy()[np.ix_(index, index)] * scale[None, :]


def rademacher_mean(matrix, samples, seed):
    """The Hutchinson estimate from the documented draw (spectral.hutchinson_samples), done densely."""
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(samples):
        z = (torch.randint(0, 2, (len(matrix),), generator=gen, dtype=torch.int8) * 2 - 1).double().numpy()
        values.append(z @ matrix @ z)
    return float(np.mean(values))


def test_separable_loss_parts_equal_their_own_dense_hessians():
    model, (x, y) = TwoBranches().eval(), images()
    dense, theta = dense_hessian(model, x, y, two_dice)
    parts = parameter_parts(model)
    assert list(parts) == ["left", "right"]
    left, right = (block_indices(model, parts[name]) for name in parts)
    # The model really separates: no coupling between the branches, full blocks inside each.
    assert float(dense[np.ix_(left, right)].abs().max()) < 1e-12
    block = dense.numpy()[np.ix_(left, left)]
    assert np.abs(block - np.diag(np.diag(block))).max() > 1e-3 * np.abs(block).max()

    result = part_curvature(model, x, y, SETTINGS, loss_per_image=two_dice, log=quiet)
    with torch.no_grad():
        expected_loss = float(two_dice(model(x), y).mean())
    assert result["finite"] and result["loss"] == pytest.approx(expected_loss, rel=1e-12)
    assert result["restriction"].startswith("block-diagonal")
    for name, index in zip(parts, (left, right)):
        numbers = result["parts"][name]
        exact = relative_block(dense, theta, index)
        eigenvalues = np.linalg.eigvalsh(exact)
        assert numbers["parameters"] == len(index) and numbers["lanczos_converged"]
        # tol is relative to the block's spectral norm
        assert numbers["lambda_max"] == pytest.approx(eigenvalues[-1], abs=1e-7 * np.abs(eigenvalues).max())
        # the reported trace is exactly the mean of z^T B z over the documented Rademacher draw ...
        assert numbers["trace"] == pytest.approx(rademacher_mean(exact, SETTINGS["trace_samples"], SETTINGS["seed"]),
                                                 rel=1e-9, abs=1e-12)
        # ... and within a few standard errors of the exact trace
        assert abs(numbers["trace"] - np.trace(exact)) < 4 * numbers["trace_se"] + 1e-12
        assert numbers["trace_share"] is None  # no total_trace given
    # Separable: the whole relative lambda_max is the larger of the two parts'.
    whole = np.linalg.eigvalsh(relative_block(dense, theta, np.arange(len(theta))))
    assert max(p["lambda_max"] for p in result["parts"].values()) == pytest.approx(whole[-1], rel=1e-6)
    # Same inputs and seed, same numbers.
    assert part_curvature(model, x, y, SETTINGS, loss_per_image=two_dice, log=quiet) == result


def test_trace_share_divides_by_the_given_total():
    model, (x, y) = TwoBranches().eval(), images()
    result = part_curvature(model, x, y, {**SETTINGS, "tol": 1e-4}, loss_per_image=two_dice, log=quiet,
                            total_trace=2.5)
    for numbers in result["parts"].values():
        assert numbers["trace_share"] == pytest.approx(numbers["trace"] / 2.5, rel=1e-12)
    assert result["trace_sum"] == pytest.approx(sum(p["trace"] for p in result["parts"].values()), rel=1e-12)


@pytest.mark.parametrize("depth", [0, 1, 2])
@pytest.mark.parametrize("norm", ["none", "batch"])
@pytest.mark.parametrize("skip", ["concat", "add", "none"])
def test_unet_parts_cover_every_parameter_once(depth, norm, skip):
    base = 2
    model = build_model({"depth": depth, "base_width": base, "norm": norm, "skip": skip})
    parts = parameter_parts(model)
    expected = (
        [f"encoder{d}" for d in range(1, depth + 1)] + ["bottleneck"]
        + [f"decoder{d}" for d in range(1, depth + 1)] + ["head"]
    )
    assert list(parts) == expected
    assigned = [name for names in parts.values() for name in names]
    all_names = [name for name, _ in model.named_parameters()]
    assert sorted(assigned) == sorted(all_names) and len(assigned) == len(set(assigned))
    shapes = dict(model.named_parameters())
    for d in range(1, depth + 1):
        # encoder d works at level d - 1: its convolutions put out base * 2^(d-1) channels
        assert all(name.startswith(f"down.{d - 1}.") for name in parts[f"encoder{d}"])
        assert shapes[parts[f"encoder{d}"][0]].shape[0] == base * 2 ** (d - 1)
        # decoder 1 is the deepest: its up-convolution reads the bottleneck's base * 2^depth channels
        ups = [name for name in parts[f"decoder{d}"] if name.startswith("up.")]
        assert ups and shapes[ups[0]].shape[0] == base * 2 ** (depth - d + 1)
        assert any(name.startswith("merge.") for name in parts[f"decoder{d}"])
    assert shapes[parts["bottleneck"][0]].shape[0] == base * 2**depth
    assert parts["head"] == ["head.weight", "head.bias"]
    if norm == "batch":
        assert any(shapes[name].dim() == 1 for name in parts["bottleneck"])  # BN's gamma and beta are in it


def test_other_networks_are_split_by_top_level_children():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 2, 3)
            self.pool = nn.MaxPool2d(2)  # no parameters: no part
            self.body = nn.Sequential(nn.Conv2d(2, 2, 1), nn.ReLU(), nn.Conv2d(2, 1, 1))
            self.temperature = nn.Parameter(torch.ones(1))
            self.frozen = nn.Linear(2, 2)
            self.frozen.requires_grad_(False)

    parts = parameter_parts(Net())
    assert parts == {
        "stem": ["stem.weight", "stem.bias"],
        "body": ["body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias"],
        "other": ["temperature"],
    }
    with pytest.raises(ValueError, match="no learnable parameters"):
        parameter_parts(nn.Sequential(nn.ReLU()))


def test_part_traces_add_up_to_the_whole_relative_trace():
    # A batch-norm U-Net (depth 1, base width 2): its dense Hessian, by torch.func.
    model, x, y = tiny_problem("batch")
    model.eval()
    loss, theta = whole_set_loss_of_flat_parameters(model, x, y)
    dense = torch.func.hessian(loss)(theta)
    scaled = relative_block(dense, theta, np.arange(len(theta)))
    result = part_curvature(model, x, y, {**SETTINGS, "tol": 1e-8}, log=quiet, total_trace=float(np.trace(scaled)))
    parts = parameter_parts(model)
    assert list(result["parts"]) == ["encoder1", "bottleneck", "decoder1", "head"]
    exact_traces = []
    for name, names in parts.items():
        index = block_indices(model, names)
        block = relative_block(dense, theta, index)
        numbers = result["parts"][name]
        assert numbers["parameter_names"] == names and numbers["parameters"] == len(index)
        eigenvalues = np.linalg.eigvalsh(block)
        assert numbers["lanczos_converged"]
        assert numbers["lambda_max"] == pytest.approx(eigenvalues[-1], abs=1e-6 * np.abs(eigenvalues).max())
        # interlacing: a principal block's top eigenvalue is at most the whole matrix's
        assert numbers["lambda_max"] <= np.linalg.eigvalsh(scaled)[-1] * (1 + 1e-6)
        assert numbers["trace"] == pytest.approx(rademacher_mean(block, SETTINGS["trace_samples"], SETTINGS["seed"]),
                                                 rel=1e-8, abs=1e-10)
        exact_traces.append(np.trace(block))
    assert sum(exact_traces) == pytest.approx(np.trace(scaled), rel=1e-12)
    shares = [p["trace_share"] for p in result["parts"].values()]
    assert shares == pytest.approx([p["trace"] / np.trace(scaled) for p in result["parts"].values()], rel=1e-12)


def bn_unet():
    torch.manual_seed(0)
    model = with_random_batch_norm(build_model({"depth": 1, "base_width": 2, "norm": "batch"}).double())
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eps = 0.0  # eps breaks the rescaling symmetry at about eps / var
    return model


def test_part_numbers_do_not_move_when_convs_feeding_batch_norm_are_rescaled():
    x, y = images(n=4, size=8, seed=2)
    model = bn_unet()
    rescaled = rescale_bn_inputs(model, 4.0).eval()
    assert evaluate(rescaled, x, y)["loss"] == pytest.approx(evaluate(model, x, y)["loss"], rel=1e-12)
    settings = {**SETTINGS, "tol": 1e-8}
    before = part_curvature(model, x, y, settings, log=quiet)
    after = part_curvature(rescaled, x, y, settings, log=quiet)
    for name, numbers in before["parts"].items():
        assert numbers["lanczos_converged"] and after["parts"][name]["lanczos_converged"]
        for key in ("lambda_max", "trace"):
            assert after["parts"][name][key] == pytest.approx(numbers[key], rel=1e-6), (name, key)
    # The raw restricted Hessian of the same part does move: the test could fail.
    z = torch.ones(sum(p.numel() for p in model.down[0].parameters()), dtype=torch.float64)
    raw = [float(z @ LossHessian(m, x, y, params=list(m.down[0].parameters())).hvp(z)) for m in (model, rescaled)]
    assert raw[1] != pytest.approx(raw[0], rel=0.1)


def test_a_diverged_model_gives_the_keys_without_numbers():
    model, (x, y) = TwoBranches().eval(), images()
    with torch.no_grad():
        model.left[0].weight.fill_(math.nan)
    result = part_curvature(model, x, y, SETTINGS, loss_per_image=two_dice, log=quiet)
    assert result["finite"] is False and result["loss"] is None and result["trace_sum"] is None
    healthy = part_curvature(TwoBranches().eval(), x, y, SETTINGS, loss_per_image=two_dice, log=quiet)
    for name in ("left", "right"):
        assert set(result["parts"][name]) == set(healthy["parts"][name])
        assert result["parts"][name]["lambda_max"] is None


def test_bad_settings_are_refused_by_name():
    model, (x, y) = TwoBranches().eval(), images()
    with pytest.raises(ValueError, match="unknown part curvature settings"):
        part_curvature(model, x, y, {"k": 3}, loss_per_image=two_dice, log=quiet)
    with pytest.raises(ValueError, match="tol"):
        part_curvature(model, x, y, {"tol": 0}, loss_per_image=two_dice, log=quiet)
    with pytest.raises(ValueError, match="trace_samples"):
        part_curvature(model, x, y, {"trace_samples": 1}, loss_per_image=two_dice, log=quiet)
    with pytest.raises(ValueError, match="total_trace"):
        part_curvature(model, x, y, {}, loss_per_image=two_dice, log=quiet, total_trace=math.nan)
    assert set(PART_SETTINGS) == {"tol", "max_iter", "trace_samples", "seed", "batch_size", "log_every"}
