"""PCA plane of a training path, on synthetic paths whose answer is known."""

import numpy as np
import pytest
import torch

from unetscape.landscape import pca_plane, plane_extent
from unetscape.models.unet import build_model


def flat(tensors):
    return torch.cat([t.double().flatten() for t in tensors])


def planar_path(coords, seed=0, noise_one_dim=True):
    """States theta_final + a*u + b*v (u, v orthonormal, zero on 1-D tensors), final last.

    1-D tensors (biases, BN) get unrelated noise: ignore="biasbn" must leave it out.
    """
    torch.manual_seed(seed)
    model = build_model({"preset": "improved", "depth": 1, "base_width": 2})
    final = {k: v.clone() for k, v in model.state_dict().items()}
    params = dict(model.named_parameters())
    generator = torch.Generator().manual_seed(seed + 1)
    u = {k: torch.randn(p.shape, generator=generator) * (p.dim() > 1) for k, p in params.items()}
    v = {k: torch.randn(p.shape, generator=generator) * (p.dim() > 1) for k, p in params.items()}
    nu = flat(u.values()).norm()
    u = {k: t / nu for k, t in u.items()}
    along = (flat(u.values()) @ flat(v.values())).item()
    v = {k: v[k] - along * u[k] for k in v}
    nv = flat(v.values()).norm()
    v = {k: t / nv for k, t in v.items()}
    states = []
    for a, b in coords:
        state = {k: t.clone() for k, t in final.items()}
        for k, p in params.items():
            state[k] = final[k] + a * u[k] + b * v[k]
            if p.dim() <= 1 and noise_one_dim:
                state[k] = state[k] + 0.3 * torch.randn(p.shape, generator=generator)
        states.append(state)
    states.append(final)
    return model, states, u, v


# centred covariance of these (a, b), final (0, 0) included, is diag(8, 0.5)/4
PATH = [(2.0, 0.0), (-2.0, 0.0), (0.0, 0.5), (0.0, -0.5)]


def test_plane_of_a_planar_path():
    model, states, u, v = planar_path(PATH)
    dx, dy, coords, ratio = pca_plane(states, model)

    assert ratio.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(ratio, [8 / 8.5, 0.5 / 8.5], rtol=1e-5)
    assert abs((flat(dx) @ flat(u.values())).item()) == pytest.approx(1.0, abs=1e-5)
    assert abs((flat(dy) @ flat(v.values())).item()) == pytest.approx(1.0, abs=1e-5)
    assert (flat(dx) @ flat(dy)).item() == pytest.approx(0.0, abs=1e-6)
    for d, (_, p) in zip(dx, model.named_parameters()):
        assert d.shape == p.shape
        if p.dim() <= 1:
            assert torch.count_nonzero(d) == 0

    # The final checkpoint is the origin and the coordinates rebuild every checkpoint.
    assert coords.shape == (len(states), 2)
    assert np.array_equal(coords[-1], [0.0, 0.0])
    names = [n for n, p in model.named_parameters() if p.dim() > 1]
    final = states[-1]
    for state, (a, b) in zip(states, coords):
        delta = flat([state[n] - final[n] for n in names])
        rebuilt = a * flat([d for d, (_, p) in zip(dx, model.named_parameters()) if p.dim() > 1])
        rebuilt += b * flat([d for d, (_, p) in zip(dy, model.named_parameters()) if p.dim() > 1])
        torch.testing.assert_close(rebuilt, delta, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.abs(coords[:-1]), np.abs(PATH), atol=1e-5)


def test_plane_is_reproducible_and_sign_fixed():
    model, states, _, _ = planar_path(PATH)
    first = pca_plane(states, model)
    second = pca_plane(list(states), model)
    assert all(torch.equal(a, b) for a, b in zip(first[0], second[0]))
    assert np.array_equal(first[2], second[2])
    for direction in first[:2]:
        vector = flat(direction)
        assert vector[vector.abs().argmax()] > 0


def test_ignore_none_uses_one_dim_tensors():
    model, states, _, _ = planar_path(PATH)
    dx, _, _, ratio = pca_plane(states, model, ignore=None)
    one_dim = [d for d, (_, p) in zip(dx, model.named_parameters()) if p.dim() <= 1]
    assert any(torch.count_nonzero(d) > 0 for d in one_dim)
    assert ratio.sum() < 0.999  # the 1-D noise is not in the plane


def test_too_short_path_is_refused():
    model, states, _, _ = planar_path(PATH[:1])
    with pytest.raises(ValueError, match="at least 3"):
        pca_plane(states, model)


def test_plane_extent_covers_the_path_and_origin():
    coords = np.array([[2.0, 1.0], [1.0, 0.5], [0.0, 0.0]])
    (xmin, xmax), (ymin, ymax) = plane_extent(coords, margin=0.25)
    assert (xmin, xmax) == pytest.approx((-0.5, 2.5))
    assert (ymin, ymax) == pytest.approx((-0.25, 1.25))
    (xmin, xmax), _ = plane_extent(np.array([[0.0, 1.0], [0.0, 0.0]]), margin=0.0)
    assert xmin < 0 < xmax
