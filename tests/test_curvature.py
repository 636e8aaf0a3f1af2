import copy
import json
import math

import numpy as np
import pytest
import torch
from job_data import write_random_dataset
from scipy.sparse.linalg import LinearOperator, eigsh
from torch import nn
from torch.func import functional_call

from unetscape.jobs.run_measures import hessian as hessian_job
from unetscape.measures.curvature import curvature_summary, resolve_curvature_settings
from unetscape.measures.hessian import LossHessian
from unetscape.measures.lanczos import ORDERS, lambda_min, lanczos_extremes, nonconvexity, top_eigenvalues
from unetscape.measures.spectral import eigenvalue_density, hutchinson_samples, hutchinson_trace, trace_estimate
from unetscape.models.checkpoints import save_checkpoint
from unetscape.models.unet import build_model

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


def test_hutchinson_samples_are_z_h_z_in_draw_order(quadratic):
    _, a, hessian = quadratic
    values = hutchinson_samples(hessian, samples=5, seed=9)
    # The documented draw: one seeded CPU generator, int8 {0, 1} -> {-1, +1}, one vector per sample.
    generator = torch.Generator().manual_seed(9)
    for value in values:
        z = (torch.randint(0, 2, (hessian.dim,), generator=generator, dtype=torch.int8) * 2 - 1).double().numpy()
        assert value == pytest.approx(float(z @ a @ z), rel=1e-12)
    assert trace_estimate(values) == pytest.approx(hutchinson_trace(hessian, samples=5, seed=9), rel=1e-12)
    assert values[:3] == hutchinson_samples(hessian, samples=3, seed=9)  # a prefix: more samples extend it


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
        "max_iter": 200,
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
    assert summary["settings"]["which"] == "algebraic"
    assert summary["eigenvalue_order"].startswith("algebraic: ")
    hessian = LossHessian(model, x, y, batch_size=3)
    assert summary["loss"] == pytest.approx(hessian.loss(), rel=1e-6)
    assert (summary["trace"], summary["trace_se"]) == pytest.approx(
        hutchinson_trace(hessian, samples=6, seed=1)
    )
    # trace and trace_se are the mean and standard error of the raw samples, in draw order.
    samples = np.array(summary["trace_samples_values"])
    assert len(samples) == 6
    assert summary["trace"] == pytest.approx(samples.sum() / 6, rel=1e-12)
    variance = ((samples - samples.mean()) ** 2).sum() / 5
    assert summary["trace_se"] == pytest.approx(math.sqrt(variance / 6), rel=1e-12)
    # every solve converged and was checked for skipped eigenvalues, well within max_iter
    for part in (summary, summary["folded"], summary["relative"]):
        assert part["lanczos_converged"] and part["lanczos_verified"]
        assert part["lanczos_steps"] < 200
        assert part["lanczos_steps"] >= sum(check["steps"] for check in part["lanczos_checks"])
    # raw, folded (a batch-norm net: a solve of its own) and relative: Lanczos + 6 Hutchinson
    # samples each, and 8 density steps
    assert not summary["folded"]["same_as_raw"]
    assert summary["hvp_calls"] == sum(p["lanczos_hvp_calls"] + 6 for p in (summary, summary["folded"],
                                                                            summary["relative"])) + 8
    assert set(summary["invariance"]) == {"raw", "folded", "relative"}
    assert len(summary["density"]["grid"]) == 32
    assert any(line.startswith("lanczos step") for line in lines)
    assert any(line.startswith("hutchinson sample") for line in lines)
    with pytest.raises(ValueError, match="unknown curvature settings"):
        resolve_curvature_settings({"samples": 3})
    with pytest.raises(ValueError, match="curvature which must be one of"):
        resolve_curvature_settings({"which": "largest"})


def test_curvature_summary_of_a_diverged_model_is_a_result():
    model, x, y = tiny_problem("none")
    with torch.no_grad():
        model.head.bias.fill_(float("nan"))
    summary = curvature_summary(model, x, y, {"trace_samples": 2}, log=lambda line: None)
    json.dumps(summary, allow_nan=False)
    assert summary["finite"] is False
    assert summary["top_eigenvalues"] is None and summary["trace"] is None and summary["hvp_calls"] == 0
    assert summary["trace_samples_values"] is None and summary["lanczos_converged"] is None
    assert summary["eigenvalue_order"].startswith("algebraic: ")


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


# ---- the checked Lanczos solver against ARPACK -----------------------------------------------


def arpack_top(hessian, k: int, which: str, ncv: int | None = None) -> np.ndarray:
    """The k top eigenvalues by `which` from scipy's ARPACK, on the same Hessian-vector product."""
    operator = LinearOperator(
        (hessian.dim, hessian.dim),
        matvec=lambda v: hessian.hvp(torch.from_numpy(np.asarray(v, dtype=np.float64).reshape(-1))).numpy(),
        dtype=np.float64,
    )
    start = np.random.default_rng(0).standard_normal(hessian.dim)
    mode = {"algebraic": "LA", "magnitude": "LM"}[which]
    values = eigsh(operator, k=k, which=mode, tol=1e-12, ncv=ncv, v0=start, return_eigenvectors=False)
    return values[np.argsort(-(np.abs(values) if which == "magnitude" else values), kind="stable")]


def exact_top(eigenvalues: np.ndarray, k: int, which: str) -> np.ndarray:
    key = np.abs(eigenvalues) if which == "magnitude" else eigenvalues
    return eigenvalues[np.argsort(-key, kind="stable")][:k]


def assert_top_matches(values, reference, lambda_max: float) -> None:
    np.testing.assert_allclose(values, reference, rtol=0, atol=1e-3 * abs(lambda_max))


def quadratic_hessian(eigenvalues: np.ndarray, seed: int = 0) -> LossHessian:
    module = Quadratic(symmetric_matrix(eigenvalues, seed))
    return LossHessian.from_function(list(module.parameters()), module)


# Top eigenvalues 10, 9.997, 9.994 (within 1e-3 of each other, relative), then 8 twice
# (exactly repeated), and negative ones whose magnitude exceeds the top ones.
CLUSTERED = np.array([10.0, 9.997, 9.994, 8.0, 8.0, 7.5, -11.0, -10.5] + list(np.linspace(-2.0, 4.0, 52)))
# Positive top 5, 4, 3.5 below negative eigenvalues -9, -7, -6, -6 in magnitude (-6 repeated).
NEGATIVE = np.array([5.0, 4.0, 3.5, -9.0, -7.0, -6.0, -6.0] + list(np.linspace(-1.0, 2.0, 33)))


@pytest.mark.parametrize("which", ORDERS)
@pytest.mark.parametrize("spectrum, k", [(CLUSTERED, 3), (CLUSTERED, 5), (NEGATIVE, 3), (NEGATIVE, 5)])
def test_synthetic_top_eigenvalues_match_arpack_and_the_exact_spectrum(spectrum, k, which):
    hessian = quadratic_hessian(spectrum)
    exact = exact_top(spectrum, k, which)
    # ARPACK is a single-vector Krylov method too: with its default basis size it reports 7.5
    # for CLUSTERED's repeated 8; a basis of half the dimension lets rounding reveal the copy.
    reference = arpack_top(hessian, k, which, ncv=hessian.dim // 2)
    assert_top_matches(reference, exact, spectrum.max())
    result = lanczos_extremes(hessian, k_top=k, k_bottom=1, which=which, tol=1e-4, max_iter=300, seed=0)
    assert result["converged"] and result["verified"]
    assert_top_matches(result["top"], reference, spectrum.max())
    assert result["largest"] == pytest.approx(spectrum.max(), abs=1e-3 * spectrum.max())
    assert result["bottom"][0] == pytest.approx(spectrum.min(), abs=1e-3 * spectrum.max())
    # Every reported pair is an eigenpair to the tolerance, measured against H itself.
    a = torch.from_numpy(symmetric_matrix(spectrum))
    for value, vector in zip(result["top"], result["top_vectors"]):
        assert float((a @ vector - value * vector).norm()) <= 1e-4 * np.abs(spectrum).max() * 1.01


@pytest.mark.parametrize(
    "spectrum, k, which, missed", [(CLUSTERED, 5, "algebraic", 8.0), (NEGATIVE, 5, "magnitude", -6.0)]
)
def test_a_repeated_eigenvalue_is_found_twice(spectrum, k, which, missed):
    # A single Krylov space holds one vector per distinct eigenvalue: plain Lanczos (the old
    # criterion, verify=False) sees the repeated eigenvalue once, reports the next one in its
    # place, and its residual test calls that converged.
    hessian = quadratic_hessian(spectrum)
    exact = exact_top(spectrum, k, which)
    options = {"k_top": k, "k_bottom": 1, "which": which, "tol": 1e-4, "max_iter": 300, "seed": 0}
    plain = lanczos_extremes(hessian, **options, verify=False)
    assert plain["converged"]
    assert sum(abs(v - missed) < 1e-3 for v in plain["top"]) == 1
    assert np.abs(np.array(plain["top"]) - exact).max() > 0.4
    checked = lanczos_extremes(hessian, **options)
    assert checked["converged"] and checked["verified"]
    assert_top_matches(checked["top"], exact, spectrum.max())
    # The first check found the second copy, the next one found nothing.
    assert [len(check["found"]) for check in checked["checks"]] == [1, 0]
    assert checked["checks"][0]["found"][0] == pytest.approx(missed, abs=1e-6)
    assert checked["hvp_calls"] == checked["steps"] + 1  # one product measured the inserted pair


def test_an_eigenvector_orthogonal_to_the_start_vector_is_found():
    # The start vector is the first Gaussian draw of the seeded generator. Give eigenvalue 8
    # (the second largest) an eigenvector orthogonal to it: the Krylov space never contains
    # that direction, beyond rounding, and plain Lanczos reports 6 as the second eigenvalue.
    seed, rest = 4, np.array([9.0, 6.0, 5.5] + list(np.linspace(-2.0, 4.0, 36)))
    dim = len(rest) + 1
    start = torch.randn(dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).numpy()
    columns = np.random.default_rng(1).standard_normal((dim, dim))
    columns[:, 0] -= start * (start @ columns[:, 0]) / (start @ start)
    q, _ = np.linalg.qr(columns)  # q[:, 0] is +-columns[:, 0] normalised: orthogonal to start
    assert abs(q[:, 0] @ start) < 1e-12 * np.linalg.norm(start)
    a = q @ np.diag(np.concatenate([[8.0], rest])) @ q.T
    module = Quadratic((a + a.T) / 2)
    hessian = LossHessian.from_function(list(module.parameters()), module)

    plain = lanczos_extremes(hessian, k_top=3, tol=1e-4, max_iter=100, seed=seed, verify=False)
    assert plain["converged"]
    np.testing.assert_allclose(plain["top"], [9.0, 6.0, 5.5], atol=1e-3)
    checked = lanczos_extremes(hessian, k_top=3, tol=1e-4, max_iter=100, seed=seed)
    assert checked["converged"] and checked["verified"]
    assert_top_matches(checked["top"], [9.0, 8.0, 6.0], 9.0)
    assert_top_matches(checked["top"], arpack_top(hessian, 3, "algebraic"), 9.0)
    assert checked["checks"][0]["found"] == [pytest.approx(8.0, abs=1e-6)]


def test_the_check_is_not_fooled_by_a_deflated_hessian_small_on_its_start_vector():
    # One outlier (100) and a tiny remainder: eigenvalue 0.8, orthogonal to the first start
    # vector, is skipped by the first run (top 100, 0.5). The check starts from the second
    # seeded draw; against the tolerance of the reported values (1e-3 x 100) its very first
    # Ritz pair already has a small residual, because the deflated Hessian is small on almost
    # every vector. A check judged on that scale would stop there and find nothing; judged on
    # the scale of its own Ritz values it runs on and finds 0.8.
    seed, rest = 3, np.array([100.0, 0.5, 0.45] + list(np.linspace(-0.04, 0.04, 196)))
    dim = len(rest) + 1
    generator = torch.Generator().manual_seed(seed)
    start, second = (torch.randn(dim, generator=generator, dtype=torch.float64).numpy() for _ in range(2))
    columns = np.random.default_rng(1).standard_normal((dim, dim))
    columns[:, 0] -= start * (start @ columns[:, 0]) / (start @ start)
    q, _ = np.linalg.qr(columns)  # q[:, 0], for 0.8, is orthogonal to the first start vector
    a = q @ np.diag(np.concatenate([[0.8], rest])) @ q.T
    module = Quadratic((a + a.T) / 2)
    hessian = LossHessian.from_function(list(module.parameters()), module)
    found = q[:, [1, 2]]  # the eigenvectors of 100 and 0.5
    v = second - found @ (found.T @ second)
    v /= np.linalg.norm(v)
    hv = a @ v - found @ (found.T @ (a @ v))
    assert np.linalg.norm(hv - (v @ hv) * v) < 1e-3 * 100

    plain = lanczos_extremes(hessian, k_top=2, tol=1e-3, max_iter=200, seed=seed, verify=False)
    np.testing.assert_allclose(plain["top"], [100.0, 0.5], atol=0.1)
    checked = lanczos_extremes(hessian, k_top=2, tol=1e-3, max_iter=200, seed=seed)
    assert checked["converged"] and checked["verified"]
    assert_top_matches(checked["top"], [100.0, 0.8], 100.0)
    assert checked["checks"][0]["steps"] > 1
    assert checked["checks"][0]["found"] == [pytest.approx(0.8, abs=1e-4)]


class SmallMLP(nn.Module):
    """6 -> 8 -> 8 -> 1 tanh network in float64: a real, indefinite Hessian."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1)).double()
        gen = torch.Generator().manual_seed(3)
        self.x = torch.randn(40, 6, generator=gen, dtype=torch.float64)
        self.y = torch.randn(40, 1, generator=gen, dtype=torch.float64)

    def forward(self) -> torch.Tensor:
        return ((self.net(self.x) - self.y) ** 2).mean()


def real_network(name: str) -> LossHessian:
    if name == "mlp":
        module = SmallMLP()
        return LossHessian.from_function(list(module.net.parameters()), module)
    model, x, y = tiny_problem(name)
    return LossHessian(model, x, y, batch_size=4)


@pytest.mark.parametrize("which", ORDERS)
@pytest.mark.parametrize("network", ["mlp", "none", "batch"])
def test_real_network_top_eigenvalues_match_arpack(network, which):
    hessian = real_network(network)
    k = 3
    reference = arpack_top(hessian, k, which)
    lambda_max = arpack_top(hessian, 1, "algebraic")[0]
    for tol in (1e-3, 1e-4):  # the default config's tolerance and a tighter one
        result = lanczos_extremes(hessian, k_top=k, k_bottom=1, which=which, tol=tol, max_iter=300, seed=0)
        assert result["converged"] and result["verified"]
        assert_top_matches(result["top"], reference, lambda_max)
        assert result["largest"] == pytest.approx(lambda_max, abs=1e-3 * abs(lambda_max))


def test_verification_needs_steps_within_max_iter():
    # The check's steps count against max_iter: with room for the first run only, the result
    # is reported but not called converged.
    hessian = quadratic_hessian(CLUSTERED)
    full = lanczos_extremes(hessian, k_top=3, tol=1e-4, max_iter=300, seed=0)
    first_run = full["steps"] - sum(check["steps"] for check in full["checks"])
    short = lanczos_extremes(hessian, k_top=3, tol=1e-4, max_iter=first_run + 2, seed=0)
    assert not short["converged"] and not short["verified"]
    assert short["steps"] == first_run + 2
    assert short["top"] == full["top"]


def test_hessian_job_records_the_order_the_samples_and_the_evaluation_indices(tmp_path):
    images, masks = write_random_dataset(tmp_path / "data.npz", 10, size=8)
    torch.manual_seed(0)
    model = build_model({"depth": 1, "base_width": 2, "norm": "batch"})
    save_checkpoint(tmp_path / "checkpoints/epoch_001.pt", model, epoch=1)
    settings = {"top_k": 2, "which": "magnitude", "tol": 1e-3, "max_iter": 120, "trace_samples": 3, "seed": 2}
    evaluation = {"subset": 6, "seed": 5, "batch_size": 4, "noise": "train"}
    out = tmp_path / "hessian.json"
    outcome = tmp_path / "outcome.json"
    outcome.write_text(json.dumps({"outcome": "finished", "reason": "", "landscape_checkpoint": "epoch_001.pt",
                                   "checkpoint_role": "trained"}))
    hessian_job(
        tmp_path / "checkpoints", outcome, tmp_path / "data.npz", out, settings, evaluation, 0.0, "cpu",
        log=lambda line: None,
    )
    result = json.loads(out.read_text())
    assert result["settings"]["which"] == "magnitude"
    assert result["eigenvalue_order"].startswith("magnitude: ")
    assert result["lanczos_converged"] and result["lanczos_verified"]
    magnitudes = [abs(v) for v in result["top_eigenvalues"]]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert result["lambda_max"] >= max(result["top_eigenvalues"])
    assert len(result["trace_samples_values"]) == 3
    assert result["trace"] == pytest.approx(np.mean(result["trace_samples_values"]), rel=1e-12)
    # The indices rebuild the Hessian: the loss and the trace samples of exactly those images.
    indices = result["eval_indices"]
    assert len(indices) == 6 == len(set(indices)) and indices == sorted(indices)
    assert result["eval_set"]["count"] == 6
    x = torch.from_numpy(images[indices]).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(masks[indices]).float()[:, None]
    rebuilt = LossHessian(model.eval(), x, y)
    assert rebuilt.loss() == pytest.approx(result["loss"], rel=1e-6)
    samples = hutchinson_samples(rebuilt, samples=3, seed=2)
    assert samples == pytest.approx(result["trace_samples_values"], rel=1e-6)
