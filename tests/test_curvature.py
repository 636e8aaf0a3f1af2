import copy
import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from unetscape.curvature import (
    LossHessian,
    curvature_summary,
    eigenvalue_density,
    hutchinson_trace,
    lambda_min,
    nonconvexity,
    resolve_curvature_settings,
    top_eigenvalues,
)
from unetscape.models import build_model

# torch.func's forward-mode AD (the dense reference Hessian) warns from inside torch.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # These tensors are tiny: with several threads, synchronisation costs far more than the
    # arithmetic (a hundredfold on a busy machine).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# A spectrum with a negative eigenvalue of the largest magnitude, so algebraic and magnitude
# orderings differ, and distinct values (Lanczos finds a repeated eigenvalue only once).
SPECTRUM = np.array([9.0, 6.5, 4.0, -12.0, -1.5] + list(np.linspace(-1.0, 3.0, 25)))


def symmetric_matrix(eigenvalues: np.ndarray, seed: int = 0) -> np.ndarray:
    """Q diag(eigenvalues) Q^T for a random orthogonal Q: far from diagonal, so Hutchinson has variance."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((len(eigenvalues), len(eigenvalues))))
    a = q @ np.diag(eigenvalues) @ q.T
    return (a + a.T) / 2


class Quadratic(nn.Module):
    """loss(theta) = 0.5 theta^T A theta, whose Hessian is A everywhere."""

    def __init__(self, a: np.ndarray):
        super().__init__()
        self.register_buffer("a", torch.from_numpy(a))
        self.theta = nn.Parameter(
            torch.randn(len(a), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        )

    def forward(self) -> torch.Tensor:
        return 0.5 * self.theta @ self.a @ self.theta


@pytest.fixture(scope="module")
def quadratic():
    a = symmetric_matrix(SPECTRUM)
    module = Quadratic(a)
    return module, a, LossHessian.from_function(list(module.parameters()), module)


def test_quadratic_hvp_gradient_and_loss(quadratic):
    module, a, hessian = quadratic
    a_t, theta = torch.from_numpy(a), module.theta.detach()
    v = torch.randn(hessian.dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(hessian.hvp(v), a_t @ v, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(hessian.gradient(), a_t @ theta, rtol=1e-12, atol=1e-12)
    assert hessian.loss() == pytest.approx(float(0.5 * theta @ a_t @ theta), rel=1e-12)


def test_quadratic_top_eigenvalues_and_lambda_min(quadratic):
    _, a, hessian = quadratic
    exact = np.linalg.eigvalsh(a)  # ascending
    values, vectors, info = top_eigenvalues(hessian, k=3, tol=1e-9, seed=0)
    assert info["converged"]
    np.testing.assert_allclose(values, exact[::-1][:3], rtol=1e-6)
    # The vectors are unit eigenvectors: A v = lambda v.
    for value, vector in zip(values, vectors):
        assert float(vector.norm()) == pytest.approx(1.0, abs=1e-10)
        torch.testing.assert_close(torch.from_numpy(a) @ vector, value * vector, rtol=0, atol=1e-6)
    # Lanczos needs far fewer products than the dimension for well separated extremes; the
    # check (a second run on the deflated Hessian) found nothing and inserted nothing.
    assert info["verified"] and [check["found"] for check in info["checks"]] == [[]]
    assert info["steps"] - info["checks"][0]["steps"] < hessian.dim
    assert info["hvp_calls"] == info["steps"]

    smallest, vector, info = lambda_min(hessian, lambda_max=values[0], tol=1e-9, seed=0)
    assert info["converged"]
    assert smallest == pytest.approx(exact[0], rel=1e-6)
    assert nonconvexity(smallest, values[0]) == pytest.approx(12.0 / 9.0, rel=1e-6)


def test_magnitude_order_puts_the_large_negative_eigenvalue_first(quadratic):
    _, a, hessian = quadratic
    values, _, _ = top_eigenvalues(hessian, k=3, tol=1e-9, which="magnitude")
    np.testing.assert_allclose(values, [-12.0, 9.0, 6.5], rtol=1e-6)


def test_nonconvexity_of_a_positive_definite_hessian_is_zero():
    assert nonconvexity(0.5, 10.0) == 0.0
    assert nonconvexity(-2.0, 10.0) == pytest.approx(0.2)
    assert math.isnan(nonconvexity(-2.0, 0.0))


def test_hutchinson_trace_of_quadratic(quadratic):
    _, a, hessian = quadratic
    few, few_se = hutchinson_trace(hessian, samples=25, seed=0)
    many, many_se = hutchinson_trace(hessian, samples=400, seed=0)
    assert abs(many - np.trace(a)) < 4 * many_se
    # The standard error falls as 1 / sqrt(samples) (ratio 4 here) and matches the Rademacher
    # variance 2 sum_{i != j} A_ij^2.
    assert many_se < few_se / 2.5
    expected_se = math.sqrt(2 * (np.sum(a**2) - np.sum(np.diag(a) ** 2)) / 400)
    assert many_se == pytest.approx(expected_se, rel=0.2)


def test_hutchinson_is_exact_for_a_diagonal_hessian():
    # z_i^2 = 1 for Rademacher z, so z^T D z = tr(D) for every sample (Gaussian z would not be).
    diagonal = torch.linspace(-2.0, 5.0, 40, dtype=torch.float64)
    theta = torch.zeros(40, dtype=torch.float64, requires_grad=True)
    hessian = LossHessian.from_function([theta], lambda: 0.5 * (diagonal * theta**2).sum())
    trace, se = hutchinson_trace(hessian, samples=5, seed=3)
    assert trace == pytest.approx(float(diagonal.sum()), abs=1e-12)
    assert se == pytest.approx(0.0, abs=1e-12)
    assert hessian.hvp_calls == 5


def test_density_on_quadratic_finds_the_spectrum(quadratic):
    _, a, hessian = quadratic
    grid = np.linspace(-13.0, 10.0, 2301)
    result = eigenvalue_density(hessian, n_vectors=2, n_steps=hessian.dim, seed=0, grid=grid, sigma=0.05)
    for nodes, weights in zip(result["nodes"], result["weights"]):
        np.testing.assert_allclose(np.sort(nodes), np.sort(SPECTRUM), atol=1e-6)
        assert sum(weights) == pytest.approx(1.0, rel=1e-10)
    density = np.array(result["density"])
    assert np.sum(density) * (grid[1] - grid[0]) == pytest.approx(1.0, rel=1e-3)
    # The isolated eigenvalue -12 is a Gaussian peak holding its quadrature weight (about 1/30
    # of the mass, averaged over the two vectors); the empty gap between -12 and -1.5 is zero.
    weight = np.mean([w[int(np.argmin(n))] for n, w in zip(result["nodes"], result["weights"])])
    assert density[np.argmin(abs(grid + 12.0))] == pytest.approx(
        weight / (0.05 * math.sqrt(2 * math.pi)), rel=1e-6
    )
    assert density[np.argmin(abs(grid + 6.0))] < 1e-10


# ---- a tiny real U-Net, against a dense Hessian written independently ----------------------


def tiny_problem(norm: str):
    torch.manual_seed(0)
    model = build_model({"depth": 1, "base_width": 2, "norm": norm}).double()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                # Running statistics far from (0, 1) so that train-mode BN would give another loss.
                module.running_mean.copy_(0.3 * torch.randn(module.num_features, generator=gen))
                module.running_var.copy_(0.5 + torch.rand(module.num_features, generator=gen))
                module.weight.copy_(1 + 0.2 * torch.randn(module.num_features, generator=gen))
                module.bias.copy_(0.2 * torch.randn(module.num_features, generator=gen))
    x = torch.rand(4, 3, 8, 8, generator=gen, dtype=torch.float64)
    y = (torch.rand(4, 1, 8, 8, generator=gen) > 0.5).double()
    return model, x, y


def whole_set_loss_of_flat_parameters(model, x, y):
    """The same loss without the package: eval mode, image by image, the Dice formula inline."""
    named = list(model.named_parameters())
    buffers = {name: b.detach() for name, b in model.named_buffers()}

    def loss(theta):
        pieces = theta.split([p.numel() for _, p in named])
        params = {name: piece.view_as(p) for (name, p), piece in zip(named, pieces)}
        total = 0
        for i in range(len(x)):
            p = torch.sigmoid(functional_call(model, {**params, **buffers}, (x[i : i + 1],))).reshape(-1)
            g = y[i].reshape(-1)
            total = total + 1 - (2 * (p * g).sum() + 1) / (p.sum() + g.sum() + 1)
        return total / len(x)

    theta = torch.cat([p.detach().reshape(-1) for _, p in named])
    return loss, theta


@pytest.fixture(scope="module", params=["none", "batch"])
def tiny(request):
    model, x, y = tiny_problem(request.param)
    model.eval()
    loss, theta = whole_set_loss_of_flat_parameters(model, x, y)
    value = loss(theta).item()
    # Forward-over-reverse (torch.func.hessian): the same matrix as
    # torch.autograd.functional.hessian, an order of magnitude faster on this loop.
    dense = torch.func.hessian(loss)(theta)
    model.train()  # the caller's mode, which LossHessian must switch and put back
    return model, x, y, value, dense


def test_tiny_unet_loss_and_hvp_match_dense_hessian(tiny):
    model, x, y, loss, dense = tiny
    hessian = LossHessian(model, x, y, batch_size=3)
    assert hessian.dim == dense.shape[0]
    assert hessian.loss() == pytest.approx(loss, rel=1e-12)
    gen = torch.Generator().manual_seed(5)
    for _ in range(2):
        v = torch.randn(hessian.dim, generator=gen, dtype=torch.float64)
        expected = dense @ v
        torch.testing.assert_close(
            hessian.hvp(v), expected, rtol=1e-8, atol=1e-8 * float(expected.abs().max())
        )


def test_tiny_unet_eigenvalues_and_trace_match_dense_hessian(tiny):
    model, x, y, _, dense = tiny
    exact = np.linalg.eigvalsh(dense.numpy())
    hessian = LossHessian(model, x, y, batch_size=4)
    values, _, info = top_eigenvalues(hessian, k=3, tol=1e-6, max_iter=300, seed=0)
    assert info["converged"]
    np.testing.assert_allclose(values, exact[::-1][:3], rtol=1e-3)

    smallest, _, info = lambda_min(hessian, lambda_max=values[0], tol=1e-6, max_iter=300, seed=0)
    assert info["converged"]
    assert smallest == pytest.approx(exact[0], rel=1e-3, abs=1e-6)

    trace, se = hutchinson_trace(hessian, samples=100, seed=0)
    assert abs(trace - float(np.trace(dense.numpy()))) < 4 * se
    # The standard error itself is right: the Rademacher variance is 2 sum_{i != j} H_ij^2.
    off_diagonal = float((dense**2).sum() - (torch.diagonal(dense) ** 2).sum())
    assert se == pytest.approx(math.sqrt(2 * off_diagonal / 100), rel=0.3)


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_loss_gradient_and_hvp_do_not_depend_on_batch_size(norm):
    model, x, y = tiny_problem(norm)
    v = torch.randn(
        sum(p.numel() for p in model.parameters()),
        generator=torch.Generator().manual_seed(2),
        dtype=torch.float64,
    )
    results = []
    for batch_size in (1, 3, len(x)):
        hessian = LossHessian(model, x, y, batch_size=batch_size)
        results.append((hessian.loss(), hessian.gradient(), hessian.hvp(v)))
    loss, gradient, hvp = results[0]
    for other_loss, other_gradient, other_hvp in results[1:]:
        assert other_loss == pytest.approx(loss, rel=1e-10, abs=1e-12)
        torch.testing.assert_close(other_gradient, gradient, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(other_hvp, hvp, rtol=1e-10, atol=1e-12)


def test_same_seed_same_results_and_model_untouched():
    model, x, y = tiny_problem("batch")
    model.train()
    before = {name: t.clone() for name, t in model.state_dict().items()}
    hessian = LossHessian(model, x, y, batch_size=3)
    first = top_eigenvalues(hessian, k=2, tol=1e-3, max_iter=20, seed=7)
    second = top_eigenvalues(hessian, k=2, tol=1e-3, max_iter=20, seed=7)
    assert first[0] == second[0]
    assert torch.equal(first[1], second[1])
    assert hutchinson_trace(hessian, samples=5, seed=7) == hutchinson_trace(hessian, samples=5, seed=7)
    assert hutchinson_trace(hessian, samples=5, seed=7) != hutchinson_trace(hessian, samples=5, seed=8)
    assert model.training
    assert all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_curvature_summary_is_json_ready_and_consistent():
    model, x, y = tiny_problem("batch")
    model = model.float()
    x, y = x.float(), y.float()
    lines = []
    settings = {
        "k": 2,
        "tol": 1e-3,
        "max_iter": 40,
        "trace_samples": 6,
        "seed": 1,
        "batch_size": 3,
        "density_vectors": 1,
        "density_steps": 8,
        "density_points": 32,
        "log_every": 5,
    }
    summary = curvature_summary(model, x, y, settings, log=lines.append)
    json.dumps(summary, allow_nan=False)
    assert summary["settings"] == resolve_curvature_settings(settings)
    assert len(summary["top_eigenvalues"]) == 2
    assert summary["top_eigenvalues"][0] >= summary["top_eigenvalues"][1] >= summary["lambda_min"]
    assert summary["nonconvexity"] == pytest.approx(
        nonconvexity(summary["lambda_min"], summary["top_eigenvalues"][0])
    )
    hessian = LossHessian(model, x, y, batch_size=3)
    assert summary["loss"] == pytest.approx(hessian.loss(), rel=1e-6)
    assert (summary["trace"], summary["trace_se"]) == pytest.approx(
        hutchinson_trace(hessian, samples=6, seed=1)
    )
    assert summary["hvp_calls"] == summary["lanczos_steps"] + 6 + 8
    assert len(summary["density"]["grid"]) == 32
    assert any(line.startswith("lanczos step") for line in lines)
    assert any(line.startswith("hutchinson sample") for line in lines)
    with pytest.raises(ValueError, match="unknown curvature settings"):
        resolve_curvature_settings({"samples": 3})


def test_curvature_summary_of_a_diverged_model_is_a_result():
    model, x, y = tiny_problem("none")
    with torch.no_grad():
        model.head.bias.fill_(float("nan"))
    summary = curvature_summary(model, x, y, {"trace_samples": 2}, log=lambda line: None)
    json.dumps(summary, allow_nan=False)
    assert summary["finite"] is False
    assert summary["top_eigenvalues"] is None and summary["trace"] is None and summary["hvp_calls"] == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    model, x, y = tiny_problem("batch")
    v = torch.randn(sum(p.numel() for p in model.parameters()), dtype=torch.float64)
    cpu = LossHessian(model, x, y, batch_size=3)
    expected_hvp, expected_top = cpu.hvp(v), top_eigenvalues(cpu, k=2, tol=1e-8, seed=0)[0]
    # A copy: .cuda() moves a module in place, and the CPU Hessian must keep its CPU model.
    cuda = LossHessian(copy.deepcopy(model).cuda(), x, y, batch_size=3)  # data stays on the CPU, moved per batch
    torch.testing.assert_close(cuda.hvp(v).cpu(), expected_hvp, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(top_eigenvalues(cuda, k=2, tol=1e-8, seed=0)[0], expected_top, rtol=1e-7)
    assert hutchinson_trace(cuda, samples=3, seed=0) == pytest.approx(
        hutchinson_trace(cpu, samples=3, seed=0)
    )
