"""Filter-normalised random directions (Li et al. 2018) and the directions file."""

import h5py
import pytest
import torch

from unetscape.landscape import (
    inner_product,
    load_directions,
    make_directions,
    parameter_names,
    random_direction,
    save_directions,
)
from unetscape.models.unet import build_model


def tiny(preset="improved", depth=1, width=4, seed=0):
    torch.manual_seed(seed)
    return build_model({"preset": preset, "depth": depth, "base_width": width})


def raw_draws(model, seed):
    """The N(0, 1) tensors random_direction starts from, drawn the same way."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(p.shape, generator=generator) for p in model.parameters()]


@pytest.mark.parametrize("preset", ["simple", "improved"])
def test_filter_norm_matches_every_weight_slice(preset):
    model = tiny(preset)
    direction = random_direction(model, torch.Generator().manual_seed(1), norm="filter")
    kinds = set()
    for (name, w), d in zip(model.named_parameters(), direction):
        assert d.shape == w.shape
        if w.dim() <= 1:
            assert torch.count_nonzero(d) == 0, name  # biasbn: exactly zero
            continue
        kinds.add(name.split(".")[0])
        for i in range(w.shape[0]):  # dim 0, also for ConvTranspose2d (input channels)
            torch.testing.assert_close(d[i].norm(), w[i].detach().norm(), rtol=1e-5, atol=0)
    assert {"down", "up", "merge", "head"} <= kinds


def test_ignore_none_keeps_one_dim_weights_for_every_norm():
    model = tiny("improved")
    for norm in ("filter", "layer", "weight", "none"):
        for ignore in (None, "none"):
            direction = random_direction(model, torch.Generator().manual_seed(2), norm=norm, ignore=ignore)
            for (name, w), d in zip(model.named_parameters(), direction):
                if w.dim() <= 1:
                    assert torch.equal(d, w.detach()), (norm, name)


def test_layer_weight_and_none_norms():
    model = tiny("simple")
    raw = raw_draws(model, 3)
    weights = [p.detach() for p in model.parameters()]
    layer = random_direction(model, torch.Generator().manual_seed(3), norm="layer")
    weight = random_direction(model, torch.Generator().manual_seed(3), norm="weight")
    none = random_direction(model, torch.Generator().manual_seed(3), norm="none")
    for w, r, dl, dw, dn in zip(weights, raw, layer, weight, none):
        if w.dim() <= 1:
            continue
        torch.testing.assert_close(dl.norm(), w.norm(), rtol=1e-5, atol=0)
        torch.testing.assert_close(dl, r * (w.norm() / r.norm()))
        torch.testing.assert_close(dw, r * w)
        assert torch.equal(dn, r)


def test_unknown_settings_are_rejected():
    model = tiny("simple")
    with pytest.raises(ValueError, match="norm"):
        random_direction(model, torch.Generator(), norm="filters")
    with pytest.raises(ValueError, match="ignore"):
        random_direction(model, torch.Generator(), ignore="bias")


def test_seed_decides_the_plane_and_x_is_drawn_first():
    model = tiny("improved")
    a = make_directions(model, seed=5)
    b = make_directions(model, seed=5)
    c = make_directions(model, seed=6)
    assert len(a) == 2
    for da, db in zip(a, b):
        assert all(torch.equal(u, v) for u, v in zip(da, db))
    assert not all(torch.equal(u, v) for u, v in zip(a[0], c[0]))
    assert not all(torch.equal(u, v) for u, v in zip(a[0], a[1]))
    first = random_direction(model, torch.Generator().manual_seed(5))
    assert all(torch.equal(u, v) for u, v in zip(a[0], first))
    one = make_directions(model, seed=5, ndim=1)
    assert len(one) == 1 and all(torch.equal(u, v) for u, v in zip(one[0], a[0]))


def test_orthogonalize_removes_the_x_component_only():
    model = tiny("improved")
    plain = make_directions(model, seed=7)
    dx, dy = make_directions(model, seed=7, orthogonalize=True)
    assert all(torch.equal(u, v) for u, v in zip(dx, plain[0]))
    scale = inner_product(dx, dx) ** 0.5 * inner_product(dy, dy) ** 0.5
    assert abs(inner_product(plain[0], plain[1])) / scale > 1e-3  # there was something to remove
    assert abs(inner_product(dx, dy)) / scale < 1e-6
    for d in dy:
        if d.dim() <= 1:
            assert torch.count_nonzero(d) == 0


def test_directions_file_round_trip_and_layout(tmp_path):
    model = tiny("improved")
    directions = make_directions(model, seed=8, norm="filter", ignore="biasbn")
    attrs = {"direction_seed": 8, "direction_norm": "filter", "grid": {"x": [-1, 1, 5]}, "note": None}
    path = tmp_path / "directions.h5"
    save_directions(path, directions, attrs, parameter_names(model))

    loaded, read = load_directions(path, model)
    for original, back in zip(directions, loaded):
        assert all(torch.equal(u, v) for u, v in zip(original, back))
    for key, value in attrs.items():
        assert read[key] == value
    assert read["parameter_names"] == parameter_names(model)

    with h5py.File(path, "r") as f:  # the reference layout
        assert set(f) == {"xdirection", "ydirection"}
        assert sorted(f["xdirection"], key=int) == [str(k) for k in range(len(directions[0]))]
        assert f["ydirection"]["0"].shape == tuple(directions[1][0].shape)


def test_loading_into_another_layout_is_a_clear_error(tmp_path):
    model = tiny("improved", depth=1)
    path = tmp_path / "directions.h5"
    save_directions(path, make_directions(model, seed=0, ndim=1), {}, parameter_names(model))
    with pytest.raises(ValueError, match="another model layout"):
        load_directions(path, tiny("improved", depth=2))
    with pytest.raises(ValueError, match="another model layout"):
        load_directions(path, tiny("simple", depth=1))
