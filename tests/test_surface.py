"""SurfaceEvaluator against slow, independent computations of the same numbers."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from unetscape.landscape import SurfaceEvaluator, SurfaceGrid, evaluation_set, make_directions
from unetscape.models.checkpoints import load_checkpoint, read_checkpoint, save_checkpoint
from unetscape.models.unet import build_model
from unetscape.training.evaluation import evaluate, images_to_tensor, masks_to_tensor


def make_data(n=8, size=16, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    masks = (rng.random((n, size, size)) < 0.4).astype(np.uint8)
    return images, masks


def checkpointed_model(tmp_path, preset, seed=0):
    """A tiny model that went through a checkpoint file, with non-trivial BN statistics."""
    torch.manual_seed(seed)
    model = build_model({"preset": preset, "depth": 1, "base_width": 4})
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.num_batches_tracked.fill_(17)
    path = tmp_path / f"{preset}.pt"
    save_checkpoint(path, model, epoch=3, seed=seed)
    return load_checkpoint(path), path


def perturbed_copy(model, coords, directions):
    model = copy.deepcopy(model)
    with torch.no_grad():
        for k, p in enumerate(model.parameters()):
            p.add_(sum(c * direction[k] for c, direction in zip(coords, directions)))
    return model


@torch.no_grad()
def slow_loss(model, x, y):
    """Per-image soft Dice by hand, one image at a time, averaged."""
    model.eval()
    losses = []
    for n in range(len(x)):
        p = torch.sigmoid(model(x[n : n + 1])).flatten().double()
        g = y[n].flatten().double()
        losses.append(1 - (2 * (p * g).sum() + 1) / (p.sum() + g.sum() + 1))
    return float(torch.stack(losses).mean())


@torch.no_grad()
def recompute_by_hand(model, x, batch_size):
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    for start in range(0, len(x), batch_size):
        model(x[start : start + batch_size])
    model.eval()
    return model


@pytest.fixture
def data():
    images, masks = make_data()
    return images_to_tensor(images), masks_to_tensor(masks)


def assert_model_is_checkpoint(model, path):
    stored = read_checkpoint(path)["state_dict"]
    state = model.state_dict()
    assert list(state) == list(stored)
    for key, value in stored.items():
        assert torch.equal(state[key], value), key


@pytest.mark.parametrize("preset", ["simple", "improved"])
def test_origin_is_the_unperturbed_model(tmp_path, data, preset):
    x, y = data
    model, _ = checkpointed_model(tmp_path, preset)
    expected = evaluate(model, x, y, batch_size=3)
    with SurfaceEvaluator(model, x, y, make_directions(model, seed=1), batch_size=5) as evaluator:
        got = evaluator.evaluate((0.0, 0.0))
    for key in ("loss", "dice", "iou"):
        assert got[key] == pytest.approx(expected[key], abs=1e-6)


@pytest.mark.parametrize("preset", ["simple", "improved"])
def test_grid_point_matches_a_slow_independent_computation(tmp_path, data, preset):
    x, y = data
    model, path = checkpointed_model(tmp_path, preset)
    directions = make_directions(model, seed=2)
    grid = SurfaceGrid.from_config([-1, 1, 5], [-0.5, 1.5, 4])
    point = grid.points()[np.random.default_rng(0).integers(1, grid.size)]
    coords = grid.coordinates(point)
    assert coords != (0.0, 0.0)
    expected = slow_loss(perturbed_copy(model, coords, directions), x, y)
    unperturbed = slow_loss(copy.deepcopy(model), x, y)
    with SurfaceEvaluator(model, x, y, directions, batch_size=3) as evaluator:
        got = evaluator.evaluate_points([point], grid)["loss"][0]
    assert got == pytest.approx(expected, abs=1e-5)
    assert abs(expected - unperturbed) > 1e-3  # the point really is somewhere else
    assert_model_is_checkpoint(model, path)


@pytest.mark.parametrize("coords", [(0.0, 0.0), (0.3, -0.6)])
def test_bn_recompute_matches_a_hand_computation_and_restores_the_model(tmp_path, data, coords):
    x, y = data
    model, path = checkpointed_model(tmp_path, "improved")
    model.train()  # the evaluator must give the caller's mode back too
    directions = make_directions(model, seed=3)
    expected = slow_loss(recompute_by_hand(perturbed_copy(model, coords, directions), x, batch_size=3), x, y)
    stale = slow_loss(perturbed_copy(model, coords, directions), x, y)
    with SurfaceEvaluator(model, x, y, directions, bn="recompute", batch_size=3) as evaluator:
        got = evaluator.evaluate(coords)["loss"]
    assert got == pytest.approx(expected, abs=1e-5)
    assert abs(got - stale) > 1e-4  # recomputing the statistics changed something
    assert model.training
    assert all(m.momentum == 0.1 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert_model_is_checkpoint(model, path)


def test_values_do_not_drift_when_revisiting_a_point(tmp_path, data):
    x, y = data
    model, path = checkpointed_model(tmp_path, "improved")
    directions = make_directions(model, seed=4)
    grid = SurfaceGrid.from_config([-1, 1, 4], [-1, 1, 3])
    with SurfaceEvaluator(model, x, y, directions, bn="recompute", batch_size=4) as evaluator:
        first = evaluator.evaluate((0.25, -0.75))
        params = [p.detach().clone() for p in model.parameters()]
        evaluator.evaluate_points(grid.points(), grid)
        again = evaluator.evaluate((0.25, -0.75))
        assert all(torch.equal(a, p) for a, p in zip(params, model.parameters()))
    assert again == first
    assert_model_is_checkpoint(model, path)


def test_one_dimensional_plane_and_progress(tmp_path, data):
    x, y = data
    model, _ = checkpointed_model(tmp_path, "simple")
    directions = make_directions(model, seed=5, ndim=1)
    grid = SurfaceGrid.from_config([0, 1, 3])
    seen = []
    with SurfaceEvaluator(model, x, y, directions, batch_size=8) as evaluator:
        values = evaluator.evaluate_points(
            grid.points(), grid, progress=lambda done, total: seen.append((done, total))
        )
        with pytest.raises(ValueError, match="coordinates"):
            evaluator.evaluate((0.1, 0.2))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    expected = slow_loss(perturbed_copy(model, (1.0,), directions), x, y)
    assert values["loss"][2] == pytest.approx(expected, abs=1e-5)


def test_directions_of_another_model_are_refused(tmp_path, data):
    x, y = data
    model, _ = checkpointed_model(tmp_path, "simple")
    other = build_model({"preset": "simple", "depth": 2, "base_width": 4})
    with pytest.raises(ValueError, match="directions"):
        SurfaceEvaluator(model, x, y, make_directions(other, seed=0))


def test_evaluation_set_is_a_fixed_seeded_subset():
    images, masks = make_data(n=12)
    x, y, description = evaluation_set(images, masks, 5, 9, 0.1, "train", 3, "cpu")
    x2, _, description2 = evaluation_set(images, masks, 5, 9, 0.1, "train", 3, "cpu")
    _, _, other = evaluation_set(images, masks, 5, 10, 0.1, "train", 3, "cpu")
    clean, clean_y, clean_description = evaluation_set(images, masks, 5, 9, 0.1, "clean", 3, "cpu")

    indices = np.sort(np.random.default_rng(9).choice(12, size=5, replace=False))
    assert torch.equal(clean, images_to_tensor(images[indices]))
    assert torch.equal(clean_y, masks_to_tensor(masks[indices]))
    assert torch.equal(x, x2) and description == description2
    assert float((x - clean).std()) == pytest.approx(0.1, rel=0.05)
    assert description["count"] == 5 and description["subset_seed"] == 9
    assert description["noise_applied"] and description["noise_seed"] == 3
    assert not clean_description["noise_applied"] and clean_description["noise_seed"] is None
    assert other["indices_sha256"] != description["indices_sha256"]

    everything, _, full = evaluation_set(images, masks, None, 0, 0.0, "train", 0, "cpu")
    assert torch.equal(everything, images_to_tensor(images)) and full["count"] == 12
    with pytest.raises(ValueError, match="subset"):
        evaluation_set(images, masks, 13, 0, 0.0, "train", 0, "cpu")
    with pytest.raises(ValueError, match="eval_noise"):
        evaluation_set(images, masks, None, 0, 0.0, "noisy", 0, "cpu")
