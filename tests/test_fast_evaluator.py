"""The fast surface evaluator against the reference implementation's slow path.

`ReferenceEvaluator` does what the loss-landscape reference code does at every point
(load_state_dict of a fresh theta* + a dx + b dy, a DataLoader over CPU data, model.eval()),
so it shares none of the fast path's tricks: BN folding, channels_last, in-place updates,
vmapped points.
"""

import itertools

import pytest
import torch
from model_helpers import with_random_batch_norm
from torch import nn

from unetscape.landscape import SurfaceGrid, make_directions
from unetscape.landscape.folding import FoldedNet, PatchConvTranspose
from unetscape.landscape.reference import ReferenceEvaluator
from unetscape.landscape.surface import SurfaceEvaluator, resolve_batch_size
from unetscape.models.unet import build_model

VARIANTS = list(itertools.product(["none", "batch"], ["concat", "add", "none"]))


def trained_looking_model(norm, skip, seed=0):
    """A small U-Net with non-trivial BN statistics and affine parameters."""
    torch.manual_seed(seed)
    return with_random_batch_norm(build_model({"depth": 2, "base_width": 4, "norm": norm, "skip": skip}))


def data(n=10, size=16, seed=1):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=generator)
    y = (torch.rand(n, 1, size, size, generator=generator) < 0.4).float()
    return x, y


def random_points(count, seed=2):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(count, 2, generator=generator) * 2 - 1).tolist()


def reference_values(model, x, y, directions, points, bn, batch_size):
    reference = ReferenceEvaluator(model, x, y, directions, bn=bn, batch_size=batch_size)
    try:
        return [reference.evaluate(p) for p in points]
    finally:
        reference.close()


def assert_close(got, expected, rel=1e-5):
    for g, e in zip(got, expected, strict=True):
        assert g["loss"] == pytest.approx(e["loss"], rel=rel)
        assert g["dice"] == pytest.approx(e["dice"], rel=rel, abs=1e-7)
        assert g["iou"] == pytest.approx(e["iou"], rel=rel, abs=1e-7)


@pytest.mark.parametrize("norm, skip", VARIANTS)
@pytest.mark.parametrize("bn", ["checkpoint", "recompute"])
def test_fast_path_matches_the_reference_path(norm, skip, bn):
    model = trained_looking_model(norm, skip)
    x, y = data()
    directions = make_directions(model, seed=3)
    points = random_points(4)
    # Train-mode BN statistics are per batch: recompute needs the same batches on both paths.
    expected = reference_values(model, x, y, directions, points, bn, batch_size=4)
    with SurfaceEvaluator(model, x, y, directions, bn=bn, batch_size=4 if bn == "recompute" else "auto") as evaluator:
        got = [evaluator.evaluate(p) for p in points]
    assert_close(got, expected)
    losses = [e["loss"] for e in expected]
    assert max(losses) - min(losses) > 1e-6  # the points differ, so agreement means something


@pytest.mark.parametrize("norm, skip", VARIANTS)
def test_several_points_per_pass_match_the_reference_path(norm, skip):
    model = trained_looking_model(norm, skip, seed=4)
    x, y = data(seed=5)
    directions = make_directions(model, seed=6)
    points = random_points(5, seed=7)
    expected = reference_values(model, x, y, directions, points, "checkpoint", batch_size=128)
    before = [p.detach().clone() for p in model.parameters()]
    with SurfaceEvaluator(model, x, y, directions, batch_size=3, points_per_pass=3) as evaluator:
        got = evaluator.evaluate_many(points)
    assert_close(got, expected)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize(
    "fold_bn, channels_last, patch_matmul",
    [(False, False, False), (True, False, False), (False, True, False), (True, False, True)],
)
def test_each_speed_option_alone_keeps_the_values(fold_bn, channels_last, patch_matmul):
    model = trained_looking_model("batch", "concat", seed=8)
    x, y = data(seed=9)
    directions = make_directions(model, seed=10)
    points = random_points(3, seed=11)
    expected = reference_values(model, x, y, directions, points, "checkpoint", batch_size=128)
    options = {"fold_bn": fold_bn, "channels_last": channels_last, "patch_matmul": patch_matmul}
    with SurfaceEvaluator(model, x, y, directions, batch_size=7, **options) as ev:
        got = [ev.evaluate(p) for p in points]
        assert ev.settings["transposed_conv_as_matmul"] == patch_matmul
    assert_close(got, expected)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("c_in, c_out, k, bias", [(6, 3, 2, True), (4, 5, 3, False), (8, 8, 2, True)])
def test_transposed_convolution_as_a_matrix_product_equals_torch(c_in, c_out, k, bias, channels_last):
    torch.manual_seed(c_in * 10 + k)
    layer = nn.ConvTranspose2d(c_in, c_out, k, stride=k, bias=bias).eval()
    x = torch.randn(3, c_in, 5, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    assert PatchConvTranspose.replaces(layer)
    with torch.no_grad():
        expected = layer(x)
        got = PatchConvTranspose(layer)(x)
    assert got.shape == expected.shape == (3, c_out, 5 * k, 7 * k)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "layer",
    [
        nn.ConvTranspose2d(4, 4, 2, stride=1),
        nn.ConvTranspose2d(4, 4, 2, stride=2, padding=1),
        nn.ConvTranspose2d(4, 4, 3, stride=3, output_padding=1),
        nn.ConvTranspose2d(4, 4, 2, stride=2, groups=2),
        nn.Conv2d(4, 4, 2, stride=2),
    ],
)
def test_only_transposed_convolutions_with_disjoint_patches_are_replaced(layer):
    assert not PatchConvTranspose.replaces(layer)


def test_the_twin_replaces_every_up_sampling_layer_only_when_asked():
    model = trained_looking_model("batch", "concat")
    ups = sum(isinstance(m, nn.ConvTranspose2d) for m in model.modules())
    assert FoldedNet(model, patch_matmul=True).patched == ups > 0
    assert FoldedNet(model).patched == 0
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in model.modules()) == ups  # source untouched


def test_evaluate_points_in_groups_fills_every_point_in_order():
    model = trained_looking_model("batch", "add", seed=12)
    x, y = data(seed=13)
    directions = make_directions(model, seed=14)
    grid = SurfaceGrid.from_config([-1, 1, 3], [0, 1, 3])
    points = grid.points()
    with SurfaceEvaluator(model, x, y, directions) as evaluator:
        one_by_one = evaluator.evaluate_points(points, grid)
    seen = []
    with SurfaceEvaluator(model, x, y, directions, points_per_pass=4) as evaluator:
        grouped = evaluator.evaluate_points(points, grid, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(4, 9), (8, 9), (9, 9)]  # groups of 4, the last one short
    for key in ("loss", "dice", "iou"):
        assert grouped[key] == pytest.approx(one_by_one[key], rel=1e-5, abs=1e-7)


def test_folded_twin_folds_every_conv_bn_pair_and_leaves_the_source_alone():
    model = trained_looking_model("batch", "concat")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    net = FoldedNet(model)
    batch_norms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert net.folded == batch_norms > 0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.twin.modules())
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert FoldedNet(trained_looking_model("none", "concat")).folded == 0


def test_a_batch_norm_without_running_statistics_is_not_folded():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4, track_running_stats=False))
    assert FoldedNet(model).folded == 0


def test_bfloat16_is_close_to_float32_but_not_equal():
    model = trained_looking_model("batch", "concat", seed=15)
    x, y = data(seed=16)
    directions = make_directions(model, seed=17)
    with SurfaceEvaluator(model, x, y, directions) as evaluator:
        exact = evaluator.evaluate((0.2, 0.1))["loss"]
    with SurfaceEvaluator(model, x, y, directions, precision="bfloat16") as evaluator:
        low = evaluator.evaluate((0.2, 0.1))["loss"]
        assert evaluator.settings["precision"] == "bfloat16"
    assert low != exact
    assert low == pytest.approx(exact, abs=2e-2)


def test_auto_batch_size_follows_the_image_size_and_the_set():
    assert resolve_batch_size("auto", torch.zeros(900, 3, 32, 32)) == 64
    assert resolve_batch_size("auto", torch.zeros(900, 3, 128, 128)) == 4
    assert resolve_batch_size("auto", torch.zeros(20, 3, 32, 32)) == 20
    assert resolve_batch_size(5, torch.zeros(20, 3, 32, 32)) == 5
    for bad in (0, -1, 2.5, "big", True):
        with pytest.raises(ValueError, match="batch_size"):
            resolve_batch_size(bad, torch.zeros(2, 3, 8, 8))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"bn": "recompute", "points_per_pass": 2}, "points_per_pass"),
        ({"points_per_pass": 0}, "points_per_pass"),
        ({"precision": "float16"}, "precision"),
    ],
)
def test_bad_options_are_refused(options, message):
    model = trained_looking_model("batch", "concat")
    x, y = data()
    with pytest.raises(ValueError, match=message):
        SurfaceEvaluator(model, x, y, make_directions(model, seed=0), **options)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("norm, skip", VARIANTS)
def test_cuda_fast_path_matches_the_cpu_reference(norm, skip):
    model = trained_looking_model(norm, skip)
    x, y = data()
    directions = make_directions(model, seed=3)
    points = random_points(3)
    expected = reference_values(model, x, y, directions, points, "checkpoint", batch_size=128)
    cuda_model = trained_looking_model(norm, skip).cuda()
    cuda_directions = [[d.cuda() for d in direction] for direction in directions]
    with SurfaceEvaluator(cuda_model, x.cuda(), y.cuda(), cuda_directions, batch_size="auto", points_per_pass=2) as ev:
        got = ev.evaluate_many(points)
    assert_close(got, expected, rel=1e-4)  # cuDNN picks other algorithms than the CPU


from model_helpers import li_surface_point  # noqa: E402

from unetscape.models.losses import LOSSES  # noqa: E402


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_matches_the_reference_path_and_the_definition(loss):
    model = trained_looking_model("batch", "concat", seed=8)
    x, y = data(seed=9)
    directions = make_directions(model, seed=10)
    points = random_points(3, seed=11)
    reference = ReferenceEvaluator(model, x, y, directions, loss=loss)
    try:
        expected = [reference.evaluate(p) for p in points]
    finally:
        reference.close()
    with SurfaceEvaluator(model, x, y, directions, loss=loss) as evaluator:
        got = [evaluator.evaluate(p) for p in points]
        assert evaluator.settings["loss_function"] == loss and evaluator.settings["bn_folded"]
    with SurfaceEvaluator(model, x, y, directions, loss=loss, points_per_pass=3) as evaluator:
        many = evaluator.evaluate_many(points)
    assert_close(got, expected)
    assert_close(many, expected)
    for value, point in zip(got, points):
        assert value["loss"] == pytest.approx(li_surface_point(model, x, y, directions, point, loss), rel=1e-5)
