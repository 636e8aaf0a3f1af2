"""The plane of the top two eigenvectors of the scale-normalised Hessian, checked on a quadratic
loss whose relative Hessian diag(|w*|) A diag(|w*|) is known in closed form (numpy eigh)."""

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from unetscape.landscape.directions import load_directions, parameter_names, save_directions
from unetscape.measures.curvature import curvature_summary, curvature_summary_with_eigenvectors
from unetscape.measures.eigen_plane import PLANE, eigen_plane_attrs, eigenvector_directions

SETTINGS = {"k": 3, "tol": 1e-10, "max_iter": 200, "trace_samples": 4, "seed": 0, "batch_size": 2,
            "log_every": 1000}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def quiet(_):
    pass


class Quadratic(nn.Module):
    """L(w) = 1/2 (w - w*)^T A (w - w*) over a weight (3, 4) and a bias (4,), initialised at w*.

    The "logits" are L repeated once per image, and `loss_of_logits` reads them back, so the
    whole-set loss of `LossHessian` is exactly L."""

    def __init__(self, a: np.ndarray, w_star: np.ndarray):
        super().__init__()
        self.register_buffer("a", torch.from_numpy(a))
        self.register_buffer("w_star", torch.from_numpy(w_star))
        self.weight = nn.Parameter(torch.from_numpy(w_star[:12].reshape(3, 4)).clone())
        self.bias = nn.Parameter(torch.from_numpy(w_star[12:]).clone())

    def value(self) -> torch.Tensor:
        delta = torch.cat([self.weight.reshape(-1), self.bias]) - self.w_star
        return 0.5 * delta @ self.a @ delta

    def forward(self, x):
        return self.value().expand(len(x), 1)


def loss_of_logits(logits, masks):
    return logits[:, 0]


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    b = rng.standard_normal((16, 16))
    a = b @ b.T / 16 + 0.1 * np.eye(16)  # positive definite, far from diagonal
    w_star = rng.uniform(0.2, 2.0, 16) * rng.choice([-1.0, 1.0], 16)
    model = Quadratic(a, w_star)
    x = torch.zeros(3, 1, dtype=torch.float64)
    y = torch.zeros(3, 1, dtype=torch.float64)
    summary, eigen = curvature_summary_with_eigenvectors(model, x, y, SETTINGS, log=quiet, loss_per_image=loss_of_logits)
    # The closed form: eigenpairs of diag(|w*|) A diag(|w*|), largest first.
    scale = np.abs(w_star)
    values, vectors = np.linalg.eigh(scale[:, None] * a * scale[None, :])
    values, vectors = values[::-1], vectors[:, ::-1]
    assert values[0] - values[1] > 1e-2 * values[0] and values[1] - values[2] > 1e-2 * values[0]  # well posed
    return model, x, y, a, w_star, values, vectors, summary, eigen


def signed_like_the_rule(u):
    k = int(np.argmax(np.abs(u)))
    return -u if u[k] < 0 else u


def loss_at(model, direction, step):
    moved = copy.deepcopy(model)
    with torch.no_grad():
        for p, d in zip(moved.parameters(), direction):
            p.add_(step * d)
        return float(moved.value())


def test_relative_eigenpairs_match_the_dense_eigendecomposition(problem):
    *_, values, vectors, summary, eigen = problem
    assert eigen.converged and summary["relative"]["lanczos_converged"]
    assert eigen.parameter_names == ["weight", "bias"]
    np.testing.assert_allclose(eigen.values[:2], values[:2], rtol=1e-8)
    assert eigen.vectors.dtype == torch.float64 and eigen.vectors.shape[1] == 16
    for row, u in zip(eigen.vectors[:2].numpy(), vectors.T[:2]):
        assert abs(abs(row @ u) - 1) < 1e-8  # the same eigenvector up to sign
    # orthogonal in relative coordinates
    assert abs(float(eigen.vectors[0] @ eigen.vectors[1])) < 1e-10


def test_loss_along_each_axis_is_half_lambda_s_squared_a_squared(problem):
    model, _, _, _, w_star, values, vectors, _, eigen = problem
    directions, scales = eigenvector_directions(model, eigen.vectors, eigen.parameter_names)
    assert len(directions) == 2 and [d.shape for d in directions[0]] == [(3, 4), (4,)]
    w_norm = np.linalg.norm(w_star)
    for i, (direction, scale) in enumerate(zip(directions, scales)):
        u = signed_like_the_rule(vectors[:, i])
        expected_scale = w_norm / np.linalg.norm(np.abs(w_star) * u)
        assert scale == pytest.approx(expected_scale, rel=1e-8)
        flat = torch.cat([d.reshape(-1) for d in direction]).numpy()
        np.testing.assert_allclose(flat, expected_scale * np.abs(w_star) * u, rtol=0, atol=1e-7 * w_norm)
        assert np.linalg.norm(flat) == pytest.approx(w_norm, rel=1e-12)
        for step in (-1.0, 0.1, 0.5, 1.0):
            expected = 0.5 * values[i] * expected_scale**2 * step**2
            assert loss_at(model, direction, step) == pytest.approx(expected, rel=1e-6, abs=1e-12)
    # The directions, read back in relative coordinates d_i / (s_i |w*|), are orthogonal.
    relative = [torch.cat([d.reshape(-1) for d in direction]).numpy() / (s * np.abs(w_star))
                for direction, s in zip(directions, scales)]
    assert abs(relative[0] @ relative[1]) < 1e-10
    # Not in general orthogonal in parameter space: the plane is not a random one orthogonalised.
    flat = [torch.cat([d.reshape(-1) for d in direction]).numpy() for direction in directions]
    assert abs(flat[0] @ flat[1]) > 1e-6 * w_norm**2


def test_the_sign_rule_makes_the_plane_independent_of_the_eigenvectors_signs(problem):
    model, *_, eigen = problem
    directions, scales = eigenvector_directions(model, eigen.vectors)
    flipped, flipped_scales = eigenvector_directions(model, -eigen.vectors)
    assert scales == flipped_scales
    for a, b in zip(directions, flipped):
        for x, y in zip(a, b):
            assert torch.equal(x, y)
    for direction in directions:
        flat = torch.cat([d.reshape(-1) for d in direction])
        relative = flat / torch.cat([p.detach().reshape(-1).abs() for p in model.parameters()])
        assert relative[relative.abs().argmax()] > 0


def test_the_plane_saves_as_a_directions_file(problem, tmp_path):
    model, *_, eigen = problem
    directions, scales = eigenvector_directions(model, eigen.vectors)
    attrs = eigen_plane_attrs(eigen.values, scales, eigen.converged, eigen.residuals, SETTINGS["tol"])
    save_directions(tmp_path / "directions.h5", directions, attrs, parameter_names(model))
    loaded, read = load_directions(tmp_path / "directions.h5", model)
    assert read["plane"] == PLANE and read["lanczos_converged"] is True
    assert read["eigenvalues_relative"] == pytest.approx(eigen.values[:2], rel=1e-12)
    assert read["axis_second_derivatives"] == pytest.approx([v * s**2 for v, s in zip(eigen.values, scales)])
    assert "sign" in read and "scaling" in read
    for a, b in zip(directions, loaded):
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_the_summary_is_the_same_with_or_without_the_vectors(problem):
    model, x, y, *_ = problem
    summary, _ = curvature_summary_with_eigenvectors(model, x, y, SETTINGS, log=quiet, loss_per_image=loss_of_logits)
    assert summary == curvature_summary(model, x, y, SETTINGS, log=quiet, loss_per_image=loss_of_logits)
    json.dumps(summary)  # no tensors in the summary
    # k = 1 still gives two vectors; the summary reports one top eigenvalue, as curvature_summary does.
    one = {**SETTINGS, "k": 1}
    summary, eigen = curvature_summary_with_eigenvectors(model, x, y, one, log=quiet, loss_per_image=loss_of_logits)
    plain = curvature_summary(model, x, y, one, log=quiet, loss_per_image=loss_of_logits)
    assert len(eigen.vectors) == 2 and len(summary["relative"]["top_eigenvalues"]) == 1
    assert summary["relative"]["lambda_max"] == pytest.approx(plain["relative"]["lambda_max"], rel=1e-8)
    assert set(summary) == set(plain) and set(summary["relative"]) == set(plain["relative"])


def test_frozen_parameters_get_zero_and_bad_vectors_are_refused(problem):
    model, *_, eigen = problem
    frozen = copy.deepcopy(model)
    frozen.bias.requires_grad_(False)
    rows = eigen.vectors[:, :12]
    directions, _ = eigenvector_directions(frozen, rows)
    assert torch.equal(directions[0][1], torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="at least 2 rows"):
        eigenvector_directions(model, eigen.vectors[:1])
    with pytest.raises(ValueError, match="at least 2 rows"):
        eigenvector_directions(model, eigen.vectors[:, :12])
    with pytest.raises(ValueError, match="parameter layout"):
        eigenvector_directions(frozen, rows, eigen.parameter_names)
    with pytest.raises(ValueError, match="2 eigenvalues"):
        eigen_plane_attrs([1.0], [1.0, 2.0], True)
