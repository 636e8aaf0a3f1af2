"""Mode-connecting curves: the Bezier path, the training of its bend, and the job's file."""

import hashlib
import json

import numpy as np
import pytest
import torch
from job_data import write_random_dataset
from torch import nn

from unetscape.jobs.curves import connect_seeds, read_connection
from unetscape.landscape.curves import (
    CurveSettings,
    bezier_point,
    line_point,
    midpoint,
    mode_connection,
    parameters_of,
    path_values,
    set_measure,
    train_bend,
)
from unetscape.landscape.surface import evaluation_set
from unetscape.models.checkpoints import save_checkpoint
from unetscape.models.unet import build_model
from unetscape.training.evaluation import evaluate


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # These tensors are tiny: with several threads, synchronisation costs far more than the
    # arithmetic (a hundredfold on a busy machine).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def settings(**changes) -> dict:
    base = {"steps": 100, "batch_size": 2, "lr": 0.1, "momentum": 0.9, "seed": 0, "t": [0, 1, 21],
            "bn_batch_size": 4}
    return {**base, **changes}


# A ring valley of radius sqrt(1 + D^2) about (0, -D): f(u, v) = (u^2 + v^2 + 2 D v - 1)^2,
# zero on the ring, which passes through A = (1, 0) and B = (-1, 0). The straight line from A
# to B crosses the disc; at its middle (0, 0), f = 1. The centre is off the line AB on
# purpose: a ring centred on it would be symmetric about the line, the bend's start at the
# midpoint a saddle of the averaged loss with no gradient across the line, and SGD would
# never leave the line.
D = 0.5


def ring(u, v):
    return (u**2 + v**2 + 2 * D * v - 1) ** 2


def ring_gradient(u, v):
    inner = 2 * (u**2 + v**2 + 2 * D * v - 1)
    return np.array([inner * 2 * u, inner * (2 * v + 2 * D)])


class RingValley(nn.Module):
    """Two scalar parameters; every image's output is the valley's height at (u, v)."""

    def __init__(self, u=0.0, v=0.0):
        super().__init__()
        self.u = nn.Parameter(torch.tensor(float(u), dtype=torch.float64))
        self.v = nn.Parameter(torch.tensor(float(v), dtype=torch.float64))

    def forward(self, x):
        return ring(self.u, self.v).expand(x.shape[0])


def output_is_loss(outputs, targets):
    return outputs


RING_IMAGES, RING_TARGETS = torch.zeros(4, 1), torch.zeros(4)
RING_A, RING_B = parameters_of(RingValley(1, 0)), parameters_of(RingValley(-1, 0))


def ring_measure(model):
    return {"loss": float(model(RING_IMAGES[:1])[0])}


@pytest.fixture(scope="module")
def ring_connection():
    model = RingValley()
    found = mode_connection(model, RING_A, RING_B, RING_IMAGES, RING_TARGETS, CurveSettings.from_dict(settings()),
                            output_is_loss, ring_measure)
    return model, found


def test_ring_valley_curve_goes_round_the_ring(ring_connection):
    _, found = ring_connection
    t = found["t"]
    assert t[0] == 0 and t[-1] == 1 and 0.5 in t
    # The line (1 - 2t, 0): f = ((1 - 2t)^2 - 1)^2, zero at the ends, 1 at t = 1/2.
    line = ((1 - 2 * t) ** 2 - 1) ** 2
    assert found["barrier_line"] == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(found["line"]["loss"], line, atol=1e-12)
    assert found["barrier_curve"] < 0.1
    # The curve's values are f at the Bezier points of the trained bend, computed here by hand.
    cu, cv = float(found["bend"]["u"]), float(found["bend"]["v"])
    assert cv > 1  # the bend left the line for the upper arc
    u = (1 - t) ** 2 * 1 + 2 * t * (1 - t) * cu + t**2 * -1
    v = 2 * t * (1 - t) * cv
    np.testing.assert_allclose(found["curve"]["loss"], ring(u, v), atol=1e-12)
    assert found["barrier_curve"] == pytest.approx(ring(u, v).max() - 0, abs=1e-12)
    assert found["bend_offset"] == pytest.approx(np.hypot(cu, cv))
    assert found["ends_distance"] == pytest.approx(2.0)


def test_bend_follows_sgd_with_momentum_on_draws_from_the_seed():
    # The same training by hand: t, then the mini-batch, from one generator per step; the
    # gradient reaches C through theta(t) only, d theta / d C = 2 t (1 - t); torch's momentum
    # buffer b = m b + g, C -= lr b.
    config = settings(steps=25, lr=0.05, momentum=0.8, seed=11)
    bend, losses = train_bend(RingValley(), RING_A, RING_B, RING_IMAGES, RING_TARGETS,
                              output_is_loss, CurveSettings.from_dict(config))
    generator = torch.Generator().manual_seed(11)
    c, buffer = np.zeros(2), np.zeros(2)
    for step in range(config["steps"]):
        t = float(torch.rand((), generator=generator, dtype=torch.float64))
        torch.randperm(4, generator=generator)
        point = (1 - t) ** 2 * np.array([1.0, 0.0]) + 2 * t * (1 - t) * c + t**2 * np.array([-1.0, 0.0])
        assert losses[step] == pytest.approx(ring(*point), rel=1e-12, abs=1e-15)
        gradient = ring_gradient(*point) * 2 * t * (1 - t)
        buffer = gradient if step == 0 else config["momentum"] * buffer + gradient
        c = c - config["lr"] * buffer
    np.testing.assert_allclose([float(bend["u"]), float(bend["v"])], c, rtol=1e-10, atol=1e-14)


def bn_unet(seed):
    torch.manual_seed(seed)
    return build_model({"depth": 1, "base_width": 2, "norm": "batch"})


def test_curve_ends_are_exactly_the_two_models(ring_connection):
    _, found = ring_connection
    bend = found["bend"]
    assert float(bend["v"]) > 1  # far from the midpoint (0, 0)
    a, b = parameters_of(bn_unet(0)), parameters_of(bn_unet(1))
    unet_bend = {k: v + 3 * torch.randn(v.shape, generator=torch.Generator().manual_seed(2)) for k, v in
                 midpoint(a, b).items()}
    for ends, c in (((RING_A, RING_B), bend), ((a, b), unet_bend)):
        for t in (0, 0.0, np.float64(0.0)):
            point = bezier_point(ends[0], c, ends[1], t)
            assert all(torch.equal(point[k], ends[0][k]) for k in ends[0])
            assert all(torch.equal(v, ends[0][k]) for k, v in line_point(*ends, t).items())
        for t in (1, 1.0, np.float64(1.0)):
            point = bezier_point(ends[0], c, ends[1], t)
            assert all(torch.equal(point[k], ends[1][k]) for k in ends[1])
            assert all(torch.equal(v, ends[1][k]) for k, v in line_point(*ends, t).items())
    # And the network measured at the path's ends holds those parameters bit for bit.
    seen = []

    def record(model):
        seen.append(parameters_of(model))
        return {"loss": 0.0}

    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    path_values(bn_unet(5), lambda t: bezier_point(a, unet_bend, b, t), [0.0, 0.5, 1.0], x, 4, record)
    assert all(torch.equal(seen[0][k], a[k]) for k in a)
    assert all(torch.equal(seen[2][k], b[k]) for k in b)
    assert not any(torch.equal(seen[1][k], a[k]) for k in a)


def test_midpoint_bend_gives_the_straight_line():
    a, b = parameters_of(bn_unet(0)), parameters_of(bn_unet(1))
    bend = midpoint(a, b)
    for t in (-0.5, 0.1, 0.37, 0.5, 0.9, 1.5):
        curve, line = bezier_point(a, bend, b, t), line_point(a, b, t)
        for k in a:
            # The line, computed independently in float64.
            expected = (1 - t) * a[k].double() + t * b[k].double()
            torch.testing.assert_close(curve[k].double(), expected, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(line[k].double(), expected, rtol=1e-5, atol=1e-6)


def tiny_data(count=8, size=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(count, 3, size, size, generator=generator)
    y = (torch.rand(count, 1, size, size, generator=generator) > 0.6).float()
    return x, y


def test_same_seed_same_bend_and_the_model_is_left_as_it_was():
    from unetscape.models.losses import loss_per_image

    x, y = tiny_data()
    a, b = parameters_of(bn_unet(0)), parameters_of(bn_unet(1))
    work = bn_unet(3).eval()
    before = {k: v.clone() for k, v in work.state_dict().items()}

    def bend_of(seed):
        config = CurveSettings.from_dict(settings(steps=6, batch_size=3, lr=0.5, seed=seed))
        return train_bend(work, a, b, x, y, loss_per_image("dice"), config)

    (first, first_losses), (again, again_losses), (other, _) = bend_of(4), bend_of(4), bend_of(5)
    assert all(torch.equal(first[k], again[k]) for k in first)
    np.testing.assert_array_equal(first_losses, again_losses)
    assert not all(torch.equal(first[k], other[k]) for k in first)
    mid = midpoint(a, b)
    assert not all(torch.equal(first[k], mid[k]) for k in first)  # the bend did move
    assert all(torch.equal(before[k], v) for k, v in work.state_dict().items())
    assert not work.training
    # The first step by hand: t and the batch drawn from the seed, the network at the line's
    # point (the bend starts at the midpoint) in train mode, batch norm on the batch's statistics.
    generator = torch.Generator().manual_seed(4)
    t = float(torch.rand((), generator=generator, dtype=torch.float64))
    batch = torch.randperm(len(x), generator=generator)[:3]
    by_hand = bn_unet(3)
    with torch.no_grad():
        for name, p in by_hand.named_parameters():
            p.copy_((1 - t) * a[name] + t * b[name])
        by_hand.train()
        expected = loss_per_image("dice")(by_hand(x[batch]), y[batch]).mean().item()
    assert first_losses[0] == pytest.approx(expected, rel=1e-5)


def count_forward_passes(model):
    calls = []
    model.register_forward_hook(lambda module, inputs, output: calls.append(module.training))
    return calls


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_batch_norm_is_reestimated_at_every_point_and_only_with_batch_norm(norm):
    torch.manual_seed(0)
    model = build_model({"depth": 1, "base_width": 2, "norm": norm})
    a, b = parameters_of(model), parameters_of(build_model({"depth": 1, "base_width": 2, "norm": norm}))
    x, y = tiny_data()
    calls = count_forward_passes(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    values = path_values(model, lambda t: line_point(a, b, t), [0.0, 0.5, 1.0], x, 3, set_measure(x, y, 8))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()) and model.training
    # A train-mode pass of 3 batches (8 images, 3 per batch) before each eval-mode pass, with batch norm.
    per_point = [True] * 3 + [False] if norm == "batch" else [False]
    assert calls == per_point * 3
    # The middle point measured by hand: its parameters loaded, statistics of the same batches.
    independent = build_model({"depth": 1, "base_width": 2, "norm": norm})
    independent.load_state_dict(model.state_dict())
    with torch.no_grad():
        for name, p in independent.named_parameters():
            p.copy_(0.5 * a[name] + 0.5 * b[name])
    if norm == "batch":
        for m in independent.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
        independent.train()
        with torch.no_grad():
            for start in range(0, 8, 3):
                independent(x[start:start + 3])
    independent.eval()
    expected = evaluate(independent, x, y, 8)
    assert values["loss"][1] == pytest.approx(expected["loss"], abs=1e-6)
    assert values["dice"][1] == pytest.approx(expected["dice"], abs=1e-9)


def write_run(root, seed, outcome="finished"):
    run = root / f"seed{seed}"
    save_checkpoint(run / "checkpoints/epoch_001.pt", bn_unet(seed), epoch=1, seed=seed)
    if outcome == "finished":
        summary = {"outcome": "finished", "reason": "", "landscape_checkpoint": "epoch_001.pt",
                   "checkpoint_role": "trained"}
    else:
        summary = {"outcome": "diverged", "reason": "the loss was NaN at step 3", "landscape_checkpoint": None,
                   "checkpoint_role": None}
    (run / "outcome.json").write_text(json.dumps(summary))
    return run


EVALUATION = {"subset": 6, "seed": 0, "batch_size": 4, "noise": "train"}
JOB_SETTINGS = settings(steps=12, batch_size=3, lr=0.2, seed=1, t=[-0.25, 1.25, 7], bn_batch_size=4)
DATASETS = ("t", "xcoordinates", "train_loss", "train_acc", "dice", "iou", "line_train_loss", "line_train_acc",
            "line_dice", "line_iou", "bend_loss")


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_connect_seeds_writes_every_dataset_and_attribute(tmp_path):
    images, masks = write_random_dataset(tmp_path / "data.npz", 10, size=8)
    runs = [write_run(tmp_path, seed) for seed in (0, 1)]
    out = tmp_path / "curve.h5"
    lines = []
    connect_seeds([r / "checkpoints" for r in runs], [r / "outcome.json" for r in runs], tmp_path / "data.npz", out,
                  JOB_SETTINGS, EVALUATION, 0.0, "cpu", log=lines.append)
    found = read_connection(out)
    attrs = found["attrs"]
    assert set(DATASETS) <= set(found)
    t = found["t"]
    np.testing.assert_array_equal(t, found["xcoordinates"])
    assert list(t) == [-0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25]  # 0 and 1 exactly
    assert found["bend_loss"].shape == (12,) and np.isfinite(found["bend_loss"]).all()
    for prefix in ("", "line_"):
        np.testing.assert_allclose(found[f"{prefix}train_acc"], 100 * found[f"{prefix}dice"])
        assert np.isfinite(found[f"{prefix}train_loss"]).all()
    # The barriers recomputed from the stored arrays, over 0 <= t <= 1.
    inside = (t >= 0) & (t <= 1)
    for name, prefix in (("curve", ""), ("line", "line_")):
        loss, dice = found[f"{prefix}train_loss"], found[f"{prefix}dice"]
        assert attrs[f"barrier_{name}"] == pytest.approx(loss[inside].max() - (loss[1] + loss[5]) / 2, abs=1e-12)
        assert attrs[f"dice_barrier_{name}"] == pytest.approx((dice[1] + dice[5]) / 2 - dice[inside].min(), abs=1e-12)
    # Both paths start at A and end at B: the same network, the same re-estimated statistics.
    for key in ("train_loss", "dice", "iou"):
        assert found[key][1] == found[f"line_{key}"][1] and found[key][5] == found[f"line_{key}"][5]
    # ... and the value at t = 0 is A's with statistics of one pass over the evaluation images.
    x, y, _ = evaluation_set(images, masks, 6, 0, 0.0, "train", 0)
    model_a = bn_unet(0)
    for m in model_a.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model_a.train()
    with torch.no_grad():
        model_a(x[:4])
        model_a(x[4:])
    model_a.eval()
    assert found["train_loss"][1] == pytest.approx(evaluate(model_a, x, y)["loss"], abs=1e-6)
    for side, run in (("a", runs[0]), ("b", runs[1])):
        path = run / "checkpoints/epoch_001.pt"
        assert attrs[f"checkpoint_{side}"] == str(path)
        assert attrs[f"checkpoint_{side}_sha256"] == sha256(path)
        assert attrs[side] == "trained" and attrs[f"outcome_{side}"] == "finished"
    assert attrs["settings"] == JOB_SETTINGS
    assert attrs["seed"] == 1
    assert attrs["bn"].startswith("recompute: one pass over the evaluation images at every t")
    assert "re-estimated" in attrs["ends"]
    assert attrs["loss_function"] == "dice"
    assert attrs["eval_set"]["count"] == 6
    assert attrs["unetscape_version"]
    assert attrs["bend_offset"] > 0 and attrs["ends_distance"] > 0
    assert "unavailable" not in attrs
    assert any("bend step 12/12" in line for line in lines)


def test_connect_seeds_without_trained_weights_writes_nan_and_why(tmp_path):
    write_random_dataset(tmp_path / "data.npz", 10, size=8)
    runs = [write_run(tmp_path, 0), write_run(tmp_path, 1, outcome="diverged")]
    out = tmp_path / "curve.h5"
    connect_seeds([r / "checkpoints" for r in runs], [r / "outcome.json" for r in runs], tmp_path / "data.npz", out,
                  JOB_SETTINGS, EVALUATION, 0.0, "cpu", log=lambda line: None)
    found = read_connection(out)
    assert set(DATASETS) <= set(found)
    assert np.isnan(found["train_loss"]).all() and np.isnan(found["line_dice"]).all()
    assert found["bend_loss"].shape == (12,) and np.isnan(found["bend_loss"]).all()
    np.testing.assert_array_equal(found["t"], [-0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25])
    attrs = found["attrs"]
    assert "diverged" in attrs["unavailable"] and "NaN at step 3" in attrs["unavailable"]
    assert np.isnan(attrs["barrier_curve"]) and np.isnan(attrs["dice_barrier_line"])
    assert attrs["outcome_b"] == "diverged"


@pytest.mark.parametrize("key, value", [
    ("steps", 0), ("steps", 2.5), ("batch_size", 0), ("lr", 0), ("lr", float("nan")), ("momentum", 1.0),
    ("seed", -1), ("t", [0, 0.9, 10]), ("t", [0.2, 1, 5]), ("t", [0, 1]), ("bn_batch_size", "auto"),
])
def test_bad_settings_name_the_key(tmp_path, key, value):
    with pytest.raises(ValueError, match=f"curves\\.{key}"):
        CurveSettings.from_dict(settings(**{key: value}))
    # The job refuses them before reading anything.
    with pytest.raises(ValueError, match=f"curves\\.{key}"):
        connect_seeds([tmp_path / "a", tmp_path / "b"], [tmp_path / "a.json", tmp_path / "b.json"],
                      tmp_path / "data.npz", tmp_path / "out.h5", settings(**{key: value}), EVALUATION, 0.0, "cpu")


def test_missing_and_unknown_settings_are_named():
    config = settings()
    del config["lr"]
    with pytest.raises(ValueError, match="curves.lr is missing"):
        CurveSettings.from_dict(config)
    with pytest.raises(ValueError, match="curves.step is not a setting"):
        CurveSettings.from_dict(settings(step=3))


def test_a_diverging_bend_stops_and_shows_in_the_curve_without_crashing():
    lines = []
    found = mode_connection(RingValley(), RING_A, RING_B, RING_IMAGES, RING_TARGETS,
                            CurveSettings.from_dict(settings(steps=40, lr=1e4, momentum=0.0)), output_is_loss,
                            ring_measure, log=lines.append)
    losses = found["bend_loss"]
    stop = int(np.argmin(np.isfinite(losses)))
    assert 0 < stop < 40 and np.isfinite(losses[:stop]).all() and np.isnan(losses[stop + 1:]).all()
    assert not np.isfinite(losses[stop])
    assert any("training stopped" in line for line in lines)
    assert not np.isfinite(found["barrier_curve"]) and found["barrier_line"] == pytest.approx(1.0)
