import itertools

import numpy as np
import pytest
import torch

from unetscape.models.checkpoints import load_checkpoint, read_checkpoint, save_checkpoint
from unetscape.models.unet import build_model, resolve_arch


@pytest.mark.parametrize("norm,skip", list(itertools.product(["none", "batch"], ["concat", "add", "none"])))
@pytest.mark.parametrize("depth", [1, 3])
def test_output_shape_for_every_variant(norm, skip, depth):
    model = build_model({"depth": depth, "base_width": 4, "norm": norm, "skip": skip})
    x = torch.rand(2, 3, 24, 40)
    out = model(x)
    assert out.shape == (2, 1, 24, 40)
    has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert has_bn == (norm == "batch")


@pytest.mark.parametrize("skip", ["concat", "add", "none"])
def test_skip_variants_wire_the_encoder_into_the_decoder(skip):
    torch.manual_seed(0)
    model = build_model({"depth": 1, "base_width": 4, "skip": skip}).eval()
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        encoder = model.down[0](x)
        up = model.up[0](model.down[1](model.pool(encoder)))
        merged = {"concat": torch.cat([encoder, up], 1), "add": encoder + up, "none": up}[skip]
        expected = model.head(model.merge[0](merged))
        assert torch.allclose(model(x), expected, atol=1e-6)


def test_presets():
    assert resolve_arch({"preset": "simple"})["norm"] == "none"
    assert resolve_arch({"preset": "improved"})["norm"] == "batch"
    assert resolve_arch({"preset": "improved", "skip": "add"})["skip"] == "add"
    with pytest.raises(ValueError, match="preset"):
        resolve_arch({"preset": "fancy"})
    with pytest.raises(ValueError, match="norm"):
        resolve_arch({"norm": "layer"})
    with pytest.raises(ValueError, match="unknown architecture keys"):
        resolve_arch({"widht": 3})


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(3)
    model = build_model({"preset": "improved", "depth": 2, "base_width": 4})
    model.train()
    model(torch.rand(4, 3, 16, 16))  # move the BN running statistics away from their defaults
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, model, epoch=7, seed=11, run="improved/sgd/noise0/seed11")
    meta = read_checkpoint(path)
    assert (meta["epoch"], meta["seed"], meta["run"]) == (7, 11, "improved/sgd/noise0/seed11")
    assert meta["arch"] == model.arch
    loaded = load_checkpoint(path)
    assert not loaded.training
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = torch.rand(2, 3, 16, 16)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_identical_checkpoints_are_identical_files(tmp_path):
    # Their sha256 is recorded in every landscape file, so reruns must reproduce the bytes.
    model = build_model({"preset": "improved", "depth": 2, "base_width": 4})
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        save_checkpoint(tmp_path / name / "epoch_001.pt", model, epoch=1)
    assert (tmp_path / "a/epoch_001.pt").read_bytes() == (tmp_path / "b/epoch_001.pt").read_bytes()


def test_checkpoint_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "unetscape-checkpoint/1", "payload": Evil()}, path)
    with pytest.raises(ValueError, match="holds Python objects other than tensors") as err:
        load_checkpoint(path)
    assert "weights_only" not in str(err.value)  # never advise loading it with code enabled


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def plain_stack(init, depth=14, width=16):
    """A deep stack of 3x3 conv + ReLU, the shape of a U-Net path without normalisation."""
    from torch import nn

    from unetscape.models.unet import initialise

    layers = []
    for k in range(depth):
        layers += [nn.Conv2d(3 if k == 0 else width, width, 3, padding=1), nn.ReLU()]
    stack = nn.Sequential(*layers)
    initialise(stack, init)
    return stack


def second_moments(stack, x):
    moments = []
    with torch.no_grad():
        for layer in stack:
            x = layer(x)
            if isinstance(layer, torch.nn.Conv2d):
                moments.append(float(x.pow(2).mean()))
    return moments


def test_he_initialisation_keeps_the_signal_and_the_default_shrinks_it():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 32, 32)
    he = second_moments(plain_stack("kaiming_normal"), x)
    default = second_moments(plain_stack("torch_default"), x)
    # He: Var(w) = 2 / fan_in keeps E[z^2] from layer to layer (a factor ~1 per layer)
    ratios = np.array(he[2:]) / np.array(he[1:-1])
    assert 0.7 < np.exp(np.log(ratios).mean()) < 1.4
    # PyTorch's default (bound 1/sqrt(fan_in)) keeps ~1/6 of it per ReLU layer while the
    # input signal dominates ...
    shrink = np.exp(np.log(np.array(default[1:3]) / np.array(default[0:2])).mean())
    assert 0.1 < shrink < 0.25
    # ... until only the biases are left: the deep output no longer depends on the input.
    stack = plain_stack("torch_default")
    with torch.no_grad():
        out = stack(x)
    spread = float(out.std(dim=0).mean())  # how much the output changes from image to image
    assert spread < 1e-3 * float(out.abs().mean())


def test_xavier_initialisation_is_glorots_bound():
    stack = plain_stack("xavier_uniform", depth=2, width=8)
    conv = stack[2]
    fan_in, fan_out = 8 * 9, 8 * 9
    bound = (6 / (fan_in + fan_out)) ** 0.5
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.8 * bound
    assert (conv.bias == 0).all()


def test_transposed_convolution_fan_in_counts_the_inputs_of_one_output():
    from torch import nn

    from unetscape.models.unet import fan_in

    up = nn.ConvTranspose2d(64, 32, 2, stride=2)  # each output pixel sees one input pixel of 64 channels
    assert fan_in(up) == 64
    assert fan_in(nn.Conv2d(16, 8, 3)) == 16 * 9
    torch.manual_seed(0)
    model = build_model({"depth": 2, "base_width": 8, "init": "kaiming_normal"})
    std = float(model.up[0].weight.detach().std())
    assert std == pytest.approx((2 / 32) ** 0.5, rel=0.1)  # up[0]: 32 -> 16 channels


def test_init_is_recorded_in_the_checkpoint_and_refused_when_unknown(tmp_path):
    model = build_model({"depth": 1, "base_width": 4, "init": "xavier_uniform"})
    save_checkpoint(tmp_path / "c.pt", model, epoch=0)
    assert read_checkpoint(tmp_path / "c.pt")["arch"]["init"] == "xavier_uniform"
    assert resolve_arch({})["init"] == "kaiming_normal"
    with pytest.raises(ValueError, match="init"):
        resolve_arch({"init": "orthogonal"})
