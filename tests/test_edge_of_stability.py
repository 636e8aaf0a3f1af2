"""Edge-of-stability diagnostics: directional and batch sharpness, train-mode lambda_max, the
thresholds of gradient descent with and without momentum, and the job's file."""

import copy
import hashlib
import json
import math

import numpy as np
import pytest
import torch
from job_data import write_random_dataset
from torch import nn
from torch.func import functional_call

from unetscape.jobs.edge_of_stability import edge_of_stability_job
from unetscape.measures.edge_of_stability import (
    EDGE_FRACTION,
    batch_sharpness,
    directional_sharpness,
    edge_summary,
    evenly_spaced_epochs,
    resolve_sharpness_settings,
    sharpness_batches,
    stability_thresholds,
    train_mode_lambda_max,
)
from unetscape.measures.hessian import LossHessian
from unetscape.measures.lanczos import top_eigenvalues
from unetscape.models.checkpoints import load_checkpoint, read_checkpoint, save_checkpoint
from unetscape.models.losses import soft_dice_loss_per_image
from unetscape.models.unet import build_model
from unetscape.training.train import TrainSettings, train


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # These tensors are tiny: with several threads, synchronisation costs far more than the
    # arithmetic (a hundredfold on a busy machine).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def quiet(_):
    pass


def rotated(eigenvalues, seed: int = 0) -> np.ndarray:
    """Q diag(eigenvalues) Q^T for a random orthogonal Q."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((len(eigenvalues), len(eigenvalues))))
    a = q @ np.diag(eigenvalues) @ q.T
    return (a + a.T) / 2


class QuadraticModel(nn.Module):
    """A "network" whose loss for every image is 0.5 theta^T A theta + b^T theta, whatever the
    image: gradient A theta + b, Hessian A, and every batch has the same loss."""

    def __init__(self, a: np.ndarray, b: np.ndarray, seed: int = 3):
        super().__init__()
        self.register_buffer("a", torch.from_numpy(a))
        self.register_buffer("b", torch.from_numpy(b))
        generator = torch.Generator().manual_seed(seed)
        self.theta = nn.Parameter(torch.randn(len(a), generator=generator, dtype=torch.float64))

    def value(self) -> torch.Tensor:
        return 0.5 * self.theta @ self.a @ self.theta + self.b @ self.theta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value().expand(x.shape[0])


def per_image_output(output, masks):
    return output  # the quadratic model's output is already its per-image loss


def closed_form_sharpness(a: np.ndarray, b: np.ndarray, theta: np.ndarray) -> float:
    g = a @ theta + b
    return float(g @ a @ g / (g @ g))


# ---- directional sharpness and batch sharpness on a quadratic --------------------------------


def test_directional_sharpness_of_a_quadratic_is_its_closed_form():
    a = rotated([7.0, 3.0, 1.0, -2.0, 0.5, 4.0], seed=1)  # indefinite: the value may be anything
    b = np.random.default_rng(2).standard_normal(6)
    model = QuadraticModel(a, b)
    value = directional_sharpness(model.value, [model.theta])
    assert value == pytest.approx(closed_form_sharpness(a, b, model.theta.detach().numpy()), rel=1e-12)
    assert model.theta.grad is None


def test_directional_sharpness_without_a_direction_or_curvature():
    theta = nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    assert math.isnan(directional_sharpness(lambda: (theta * 0).sum(), [theta]))  # zero gradient
    assert directional_sharpness(lambda: (3 * theta).sum(), [theta]) == 0.0  # linear: H = 0
    assert math.isnan(directional_sharpness(lambda: theta.sum() * math.inf, [theta]))  # loss not finite


def test_batch_sharpness_of_a_batch_independent_loss_is_the_full_batch_sharpness():
    a = rotated([5.0, 2.0, 1.0, 0.25], seed=4)
    b = np.random.default_rng(5).standard_normal(4)
    model = QuadraticModel(a, b)
    x, y = torch.rand(12, 3, 4, 4), torch.zeros(12, 1, 4, 4)
    result = batch_sharpness(model, x, y, batch_size=5, batches=4, seed=0, loss_per_image=per_image_output, noise=0.3)
    expected = closed_form_sharpness(a, b, model.theta.detach().numpy())
    np.testing.assert_allclose(result["values"], [expected] * 4, rtol=1e-12)
    assert result["mean"] == pytest.approx(expected, rel=1e-12)
    assert result["se"] == pytest.approx(0.0, abs=1e-12)


# ---- the thresholds: gradient descent on a quadratic, with and without momentum -------------


def heavy_ball_spectral_radius(lr: float, beta: float, curvature: float) -> float:
    """Spectral radius of (theta_{t+1}, theta_t) <- M (theta_t, theta_{t-1}) on the 1-D quadratic
    with curvature lambda: theta_{t+1} = theta_t - lr lambda theta_t + beta (theta_t - theta_{t-1})."""
    m = np.array([[1 + beta - lr * curvature, -beta], [1.0, 0.0]])
    return float(np.abs(np.linalg.eigvals(m)).max())


def run_sgd(model: QuadraticModel, lr: float, momentum: float, steps: int) -> list[float]:
    """Full-batch gradient descent with torch's SGD, as training steps it; the loss after each step."""
    model = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = model.value()
        loss.backward()
        optimizer.step()
        losses.append(float(model.value().detach()))
        if not abs(losses[-1]) < 1e15:  # diverged: no need to go on
            break
    return losses


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_gradient_descent_diverges_exactly_above_its_edge(momentum):
    eigenvalues = [8.0, 4.0, 2.0, 1.0, 0.5]
    a = rotated(eigenvalues, seed=6)
    b = np.random.default_rng(7).standard_normal(5)
    model = QuadraticModel(a, b)
    x, y = torch.zeros(3, 1, 2, 2), torch.zeros(3, 1, 2, 2)
    top = train_mode_lambda_max(model, x, y, per_image_output, tol=1e-10, max_iter=50, seed=0)
    assert top["converged"]
    assert top["lambda_max"] == pytest.approx(max(eigenvalues), rel=1e-9)
    minimum = float(0.5 * -b @ np.linalg.solve(a, b))  # min of 0.5 t^T A t + b^T t
    edge_lr = 2 * (1 + momentum) / top["lambda_max"]  # where heavy ball loses stability
    for factor in (0.98, 1.02):
        lr = factor * edge_lr
        ratio = top["lambda_max"] / stability_thresholds(lr, momentum)["full_batch"]
        losses = run_sgd(model, lr, momentum, steps=700)
        # The boundary itself, independently of torch: the iteration matrix's spectral radius.
        radius = heavy_ball_spectral_radius(lr, momentum, max(eigenvalues))
        if factor > 1:
            assert ratio > 1 and radius > 1
            assert not math.isfinite(losses[-1]) or losses[-1] > 1e12
        else:
            assert ratio < 1 and radius < 1
            assert max(heavy_ball_spectral_radius(lr, momentum, e) for e in eigenvalues) < 1
            assert losses[-1] == pytest.approx(minimum, rel=1e-9, abs=1e-12)


def test_thresholds_of_sgd_and_of_sgd_with_momentum():
    plain = stability_thresholds(0.01)
    assert plain["full_batch"] == pytest.approx(200.0) and plain["batch"] == pytest.approx(200.0)
    assert "2/lr" in plain["full_batch_rule"] and "Cohen et al. 2021" in plain["full_batch_rule"]
    assert plain["full_batch_rule"].startswith("full_batch: lambda_max")
    assert plain["batch_rule"].startswith("batch: batch sharpness against 2/lr")
    heavy = stability_thresholds(0.01, 0.9)
    assert heavy["full_batch"] == pytest.approx(2 * 1.9 / 0.01) and heavy["batch"] == pytest.approx(2 * 0.1 / 0.01)
    assert "2(1+beta)/lr (heavy-ball gradient descent, Cohen et al. 2021)" in heavy["full_batch_rule"]
    assert "2(1-beta)/lr (small-batch SGD with momentum, Andreyev and Beneventano 2026)" in heavy["batch_rule"]
    for lr, momentum, word in ((0.0, 0.0, "lr"), (-1.0, 0.0, "lr"), (math.nan, 0.0, "lr"), (0.1, 1.0, "momentum"),
                               (0.1, -0.1, "momentum")):
        with pytest.raises(ValueError, match=word):
            stability_thresholds(lr, momentum)


# ---- batch sharpness: batches, seeds, noise ----------------------------------------------


def tiny_unet(base_width: int = 2) -> nn.Module:
    """A tiny double-precision U-Net with batch norm whose running statistics are far from (0, 1)."""
    torch.manual_seed(0)
    model = build_model({"depth": 1, "base_width": base_width, "norm": "batch"}).double()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.copy_(0.3 * torch.randn(module.num_features, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(module.num_features, generator=generator))
                module.weight.copy_(1 + 0.2 * torch.randn(module.num_features, generator=generator))
                module.bias.copy_(0.2 * torch.randn(module.num_features, generator=generator))
    return model.eval()


def random_images(count: int, seed: int = 2):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(count, 3, 8, 8, generator=generator, dtype=torch.float64)
    y = (torch.rand(count, 1, 8, 8, generator=generator) > 0.5).double()
    return x, y


def test_batches_are_seeded_draws_of_distinct_images():
    first = sharpness_batches(10, 4, 5, seed=0)
    assert len(first) == 5 and all(len(set(batch.tolist())) == 4 for batch in first)
    assert all(0 <= int(i) < 10 for batch in first for i in batch)
    assert all(torch.equal(u, v) for u, v in zip(first, sharpness_batches(10, 4, 5, seed=0)))
    assert any(not torch.equal(u, v) for u, v in zip(first, sharpness_batches(10, 4, 5, seed=1)))
    assert [len(batch) for batch in sharpness_batches(3, 8, 2, seed=0)] == [3, 3]  # never more than all


def test_batch_sharpness_is_deterministic_and_its_seed_draws_the_batches():
    model = tiny_unet()
    x, y = random_images(10)

    def run(seed, noise=0.0):
        return batch_sharpness(model, x, y, 3, 4, seed, soft_dice_loss_per_image, noise)

    first, again, other = run(0), run(0), run(1)
    assert first["values"] == again["values"]
    assert first["values"] != other["values"]
    values = np.asarray(first["values"])
    assert first["mean"] == pytest.approx(values.mean(), rel=1e-12)
    assert first["se"] == pytest.approx(values.std(ddof=1) / 2, rel=1e-12)
    noisy, noisy_again = run(0, 0.2), run(0, 0.2)
    assert noisy["values"] == noisy_again["values"] and noisy["values"] != first["values"]


# ---- train mode: against a dense Hessian of the train-mode loss ---------------------------


def train_mode_loss_of_flat_parameters(model: nn.Module, x, y):
    """The train-mode loss without the package: batch norm with the statistics of all of x (one
    batch), the Dice formula inline, on a copy.

    Its derivatives are taken with torch.autograd.functional, not torch.func: torch.func's
    second derivatives through batch-statistics batch norm are wrong in torch 2.13 (H v off by 6%
    against central differences of the gradient), its first derivatives right."""
    twin = copy.deepcopy(model).train()
    # Batch norm without running statistics: always the batch's own, nothing updated in place.
    torch.func.replace_all_batch_norm_modules_(twin)
    named = list(twin.named_parameters())

    def loss(theta):
        pieces = theta.split([p.numel() for _, p in named])
        params = {name: piece.view_as(p) for (name, p), piece in zip(named, pieces)}
        p = torch.sigmoid(functional_call(twin, params, (x,))).reshape(len(x), -1)
        g = y.reshape(len(y), -1)
        return (1 - (2 * (p * g).sum(1) + 1) / (p.sum(1) + g.sum(1) + 1)).mean()

    return loss, torch.cat([p.detach().reshape(-1) for _, p in named])


def test_train_mode_lambda_max_matches_a_dense_hessian_and_leaves_the_model_alone():
    model = tiny_unet(base_width=1)
    x, y = random_images(6)
    before = {name: t.clone() for name, t in model.state_dict().items()}
    top = train_mode_lambda_max(model, x, y, soft_dice_loss_per_image, tol=1e-8, max_iter=300, seed=0)
    batch_sharpness(model, x, y, 4, 2, 0, soft_dice_loss_per_image, noise=0.1)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name  # running statistics included
    assert not model.training and all(p.grad is None for p in model.parameters())

    loss, theta = train_mode_loss_of_flat_parameters(model, x, y)
    dense = torch.autograd.functional.hessian(loss, theta)
    exact = np.linalg.eigvalsh(dense.numpy())
    # The dense Hessian itself, against central differences of the gradient along a vector.
    v = torch.randn(len(theta), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian
    difference = (jacobian(loss, theta + 1e-5 * v) - jacobian(loss, theta - 1e-5 * v)) / 2e-5
    torch.testing.assert_close(dense @ v, difference, rtol=1e-6, atol=1e-6 * float(difference.abs().max()))
    assert top["converged"]
    assert top["loss"] == pytest.approx(float(loss(theta)), rel=1e-12)
    assert top["lambda_max"] == pytest.approx(exact[-1], rel=1e-6)
    # Eval mode (running statistics) is another loss with another curvature: the test can tell.
    eval_top, _, _ = top_eigenvalues(LossHessian(model, x, y), k=1, tol=1e-6, max_iter=300)
    assert abs(eval_top[0] - exact[-1]) > 0.05 * abs(exact[-1])


def test_batch_sharpness_of_identical_images_is_the_full_batch_directional_sharpness():
    # Every batch of copies of one image has the same train-mode loss (same batch statistics,
    # same per-image loss) as the whole set, so each batch value is the full-batch g^T H g / g^T g.
    model = tiny_unet(base_width=1)
    x, y = random_images(1)
    x, y = x.expand(8, -1, -1, -1).clone(), y.expand(8, -1, -1, -1).clone()
    loss, theta = train_mode_loss_of_flat_parameters(model, x, y)
    g = torch.autograd.functional.jacobian(loss, theta).numpy()
    h = torch.autograd.functional.hessian(loss, theta).numpy()
    expected = float(g @ h @ g / (g @ g))
    result = batch_sharpness(model, x, y, 3, 4, 0, soft_dice_loss_per_image)
    np.testing.assert_allclose(result["values"], [expected] * 4, rtol=1e-8)
    assert result["mean"] == pytest.approx(expected, rel=1e-8)


# ---- the epochs chosen ------------------------------------------------------------------


def test_evenly_spaced_epochs():
    # linspace(1, 16, 4) = 1, 6, 11, 16: all saved.
    assert evenly_spaced_epochs(range(17), 16, 4) == [1, 6, 11, 16]
    # Saved every 5 epochs and at the end: targets 5, 14, 23 -> nearest saved 5, 15, 23.
    assert evenly_spaced_epochs([0, 5, 10, 15, 20, 23], 23, 3) == [5, 15, 23]
    # Epochs after the measured one never count; fewer saved than asked: all of them.
    assert evenly_spaced_epochs([0, 1, 2, 3, 4], 2, 5) == [1, 2]
    # A tie (target 2.5 between 2 and 3) goes to the earlier epoch.
    assert evenly_spaced_epochs([0, 1, 2, 3, 4], 4, 3) == [1, 2, 4]
    with pytest.raises(ValueError, match="not among the saved epochs"):
        evenly_spaced_epochs([0, 1, 2], 5, 2)
    with pytest.raises(ValueError, match="no trained checkpoint"):
        evenly_spaced_epochs([0], 0, 2)


def test_summary_counts_only_finite_ratios_and_converged_lambda_max():
    def row(epoch, lambda_ratio, converged, batch_ratio):
        return {"epoch": epoch, "lambda_ratio": lambda_ratio, "lambda_converged": converged,
                "batch_ratio": batch_ratio}

    rows = [row(1, 0.5, True, 0.95), row(2, 1.4, False, math.nan), row(3, 0.92, True, 0.3), row(4, 0.2, False, 1.1)]
    summary = edge_summary(rows)
    assert summary["final_epoch"] == 4 and summary["final_lambda_converged"] is False
    # The measured checkpoint's ratios as they are; the others from the rows that count.
    assert summary["final_lambda_ratio"] == 0.2 and summary["final_batch_ratio"] == 1.1
    assert summary["max_lambda_ratio"] == 0.92 and summary["counted_lambda"] == 2  # epochs 1 and 3
    assert summary["fraction_lambda_at_edge"] == 0.5
    assert summary["max_batch_ratio"] == 1.1 and summary["counted_batch"] == 3  # epochs 1, 3 and 4
    assert summary["fraction_batch_at_edge"] == pytest.approx(2 / 3)
    nothing = edge_summary([row(1, math.nan, False, math.nan)])
    assert all(math.isnan(nothing[k]) for k in ("max_lambda_ratio", "fraction_batch_at_edge"))


# ---- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value",
    [("checkpoints", 1), ("checkpoints", 2.5), ("checkpoints", True), ("batches", 1), ("tol", 0.0), ("tol", -1e-3),
     ("tol", "small"), ("max_iter", 0), ("seed", -1), ("seed", 0.5), ("typo", 3)],
)
def test_bad_settings_name_the_key(tmp_path, key, value):
    with pytest.raises(ValueError, match=rf"stability\.sharpness\.{key}"):
        resolve_sharpness_settings({key: value})
    # The job refuses them before it reads anything (none of these files exist).
    with pytest.raises(ValueError, match=rf"stability\.sharpness\.{key}"):
        edge_of_stability_job(tmp_path / "none", tmp_path / "none.json", tmp_path / "none.npz", tmp_path / "out.json",
                              {key: value}, {}, 0.0, "cpu", log=quiet)


def test_default_settings_are_valid():
    settings = resolve_sharpness_settings(None)
    assert settings["checkpoints"] >= 2 and settings["batches"] >= 2


# ---- the job, end to end ------------------------------------------------------------------

EVALUATION = {"subset": 6, "seed": 0, "batch_size": 4, "noise": "train"}
SETTINGS = {"checkpoints": 3, "batches": 3, "tol": 1e-3, "max_iter": 100, "seed": 4}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("eos")
    write_random_dataset(root / "data.npz", 8)
    settings = TrainSettings(arch={"depth": 1, "base_width": 4, "norm": "batch"}, lr=0.05, momentum=0.9, noise=0.1,
                             seed=1, epochs=3, batch_size=4, stop_on_plateau=False)
    from unetscape.data import load_dataset

    dataset = load_dataset(root / "data.npz")
    train(dataset.images, dataset.masks, settings, root / "checkpoints", root / "history.csv", log=quiet,
          outcome_path=root / "outcome.json")
    return root, settings


def run_job(root, out, checkpoint_dir=None, outcome=None, settings=SETTINGS, lines=None):
    edge_of_stability_job(checkpoint_dir or root / "checkpoints", outcome or root / "outcome.json", root / "data.npz",
                          out, settings, EVALUATION, 0.1, "cpu", log=quiet if lines is None else lines.append)
    return json.loads(out.read_text())


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_job_rows_thresholds_and_summary(tiny_run, tmp_path):
    root, training = tiny_run
    lines = []
    result = run_job(root, tmp_path / "eos.json", lines=lines)
    assert json.loads(json.dumps(result)) == result  # strict JSON
    assert result["epochs"] == [1, 2, 3] and [row["epoch"] for row in result["rows"]] == [1, 2, 3]
    assert result["available_epochs"] == [0, 1, 2, 3]
    full_batch = 2 * (1 + training.momentum) / training.lr
    batch = 2 * (1 - training.momentum) / training.lr
    assert result["thresholds"]["full_batch"] == pytest.approx(full_batch, rel=1e-12)
    assert result["thresholds"]["batch"] == pytest.approx(batch, rel=1e-12)
    assert result["training"] == {"lr": training.lr, "momentum": training.momentum, "batch_size": 4,
                                  "noise": training.noise, "loss": "dice"}
    for row in result["rows"]:
        assert row["lambda_ratio"] == pytest.approx(row["lambda_max"] / full_batch, rel=1e-12)
        assert row["batch_ratio"] == pytest.approx(row["batch_sharpness"] / batch, rel=1e-12)
        assert len(row["batch_sharpness_values"]) == SETTINGS["batches"]
        assert row["batch_sharpness"] == pytest.approx(np.mean(row["batch_sharpness_values"]), rel=1e-12)
        path = root / "checkpoints" / f"epoch_{row['epoch']:03d}.pt"
        assert row["checkpoint_sha256"] == sha256(path) == result["checkpoint_sha256s"][str(row["epoch"])]
    assert all(row["lambda_converged"] for row in result["rows"])

    rows, summary = result["rows"], result["summary"]
    assert summary["final_epoch"] == 3 and result["checkpoint_epoch"] == 3
    for name, key in (("lambda", "lambda_ratio"), ("batch", "batch_ratio")):
        ratios = [row[key] for row in rows]
        assert summary[f"final_{key}"] == ratios[-1]
        assert summary[f"max_{key}"] == max(ratios)
        assert summary[f"fraction_{name}_at_edge"] == pytest.approx(np.mean([r >= EDGE_FRACTION for r in ratios]))
        assert summary[f"counted_{name}"] == 3
    assert result["settings"] == {**resolve_sharpness_settings(None), **SETTINGS}
    assert result["seeds"]["lanczos_seed"] == SETTINGS["seed"]
    assert result["eval_set"]["count"] == 6 and result["training_images"] == 8
    assert result["outcome"] == json.loads((root / "outcome.json").read_text())["outcome"]
    assert isinstance(result["unetscape_version"], str) and result["device"] == "cpu"
    assert sum(line.startswith("epoch ") for line in lines) == 3  # a progress line per checkpoint

    # Two checkpoints: the first trained and the measured one. The same seed gives the same numbers.
    two = run_job(root, tmp_path / "eos2.json", settings={**SETTINGS, "checkpoints": 2})
    assert two["epochs"] == [1, 3]
    assert [two["rows"][0][k] for k in ("lambda_max", "batch_sharpness")] == [
        rows[0][k] for k in ("lambda_max", "batch_sharpness")
    ]


def test_job_at_a_checkpoint_whose_loss_is_not_finite(tiny_run, tmp_path):
    root, _ = tiny_run
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for epoch in range(4):
        (folder / f"epoch_{epoch:03d}.pt").write_bytes((root / "checkpoints" / f"epoch_{epoch:03d}.pt").read_bytes())
    payload = read_checkpoint(folder / "epoch_002.pt")
    model = load_checkpoint(folder / "epoch_002.pt")
    with torch.no_grad():
        next(model.parameters()).fill_(math.nan)
    meta = {k: v for k, v in payload.items() if k not in ("format", "arch", "state_dict")}
    save_checkpoint(folder / "epoch_002.pt", model, **meta)
    result = run_job(root, tmp_path / "eos.json", checkpoint_dir=folder)
    broken = result["rows"][1]
    assert broken["epoch"] == 2
    for key in ("lambda_max", "batch_sharpness", "batch_sharpness_se", "lambda_ratio", "batch_ratio"):
        assert broken[key] is None, key
    assert broken["lambda_converged"] is False
    assert all(row["lambda_max"] is not None for row in (result["rows"][0], result["rows"][2]))
    assert result["summary"]["counted_lambda"] == 2 and result["summary"]["counted_batch"] == 2


def test_job_without_trained_weights_says_why(tiny_run, tmp_path):
    root, _ = tiny_run
    outcome = tmp_path / "outcome.json"
    outcome.write_text(json.dumps({"outcome": "diverged", "reason": "non-finite loss in epoch 1",
                                   "landscape_checkpoint": None, "checkpoint_role": None}))
    result = run_job(root, tmp_path / "eos.json", outcome=outcome)
    assert "no trained weights" in result["unavailable"]
    assert result["rows"] == [] and result["summary"] is None and "thresholds" not in result

    # A model trained elsewhere: its checkpoint records no learning rate to measure against.
    folder = tmp_path / "external"
    save_checkpoint(folder / "external.pt", load_checkpoint(root / "checkpoints" / "epoch_003.pt"), epoch=None,
                    settings={"loss": "dice"})
    outcome.write_text(json.dumps({"outcome": "external", "reason": "trained elsewhere",
                                   "landscape_checkpoint": "external.pt", "checkpoint_role": "external"}))
    result = run_job(root, tmp_path / "external.json", checkpoint_dir=folder, outcome=outcome)
    assert "learning rate" in result["unavailable"] and result["rows"] == []
