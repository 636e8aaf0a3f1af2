import numpy as np
import pandas as pd
import pytest
import torch

from unetscape.models.checkpoints import read_checkpoint
from unetscape.training.train import TrainSettings, train


def blob_data(n=12, size=16, seed=0):
    """Dark squares on a lighter background: enough for a few SGD steps to mean something."""
    rng = np.random.default_rng(seed)
    images = rng.integers(150, 220, size=(n, size, size, 3), dtype=np.uint8)
    masks = np.zeros((n, size, size), dtype=np.uint8)
    for k in range(n):
        r, c, w = rng.integers(2, size // 2), rng.integers(2, size // 2), rng.integers(4, size // 2)
        masks[k, r : r + w, c : c + w] = 1
        images[k, r : r + w, c : c + w] //= 2
    return images, masks


def settings(**overrides):
    base = dict(arch={"depth": 1, "base_width": 4, "norm": "batch"}, lr=0.05, momentum=0.9, noise=0.1,
                seed=3, epochs=2, batch_size=5, save_every=1, eval_batch_size=7)
    return TrainSettings(**{**base, **overrides})


def run(tmp_path, name, **overrides):
    images, masks = blob_data()
    out = tmp_path / name
    result = train(images, masks, settings(**overrides), out / "checkpoints", out / "history.csv",
                   run_id=name, log=lambda _: None)
    return result, pd.read_csv(out / "history.csv"), out


def test_same_config_gives_identical_history_and_weights(tmp_path):
    torch.set_num_threads(1)
    _, first, out1 = run(tmp_path, "a")
    _, second, out2 = run(tmp_path, "b")
    pd.testing.assert_frame_equal(first, second)
    a = read_checkpoint(out1 / "checkpoints" / "epoch_002.pt")["state_dict"]
    b = read_checkpoint(out2 / "checkpoints" / "epoch_002.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # another seed changes the numbers (the test could fail if seeding were ignored)
    _, other, _ = run(tmp_path, "c", seed=4)
    assert not np.allclose(first["loss"].to_numpy(), other["loss"].to_numpy())


def test_history_and_checkpoints_layout(tmp_path):
    result, history, out = run(tmp_path, "layout", epochs=3, save_every=2)
    assert not result.diverged and result.epochs_run == 3
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["epoch_000.pt", "epoch_002.pt", "epoch_003.pt"]
    steps = history[history["kind"] == "step"]
    epochs = history[history["kind"] == "epoch"]
    assert len(steps) == 3 * 3  # 12 images, batch 5 -> 3 steps per epoch
    assert list(epochs["epoch"]) == [0, 1, 2, 3]
    assert steps["step"].tolist() == list(range(1, 10))
    assert not history["diverged"].any()
    meta = read_checkpoint(out / "checkpoints" / "epoch_003.pt")
    assert meta["epoch"] == 3 and meta["seed"] == 3 and {"init_seed", "order_seed", "noise_seed"} <= set(meta)
    # Trained in channels_last, stored in the default layout: files do not depend on the layout.
    assert meta["memory_format"] == "channels_last"
    convs = [v for v in meta["state_dict"].values() if v.dim() == 4 and v.shape[1] > 1 and v.shape[2] > 1]
    assert convs and all(v.is_contiguous() and not v.is_contiguous(memory_format=torch.channels_last) for v in convs)


def test_noise_changes_only_the_noise_stream(tmp_path):
    _, clean, out_clean = run(tmp_path, "clean", noise=0.0)
    _, noisy, out_noisy = run(tmp_path, "noisy", noise=0.2)
    init_a = read_checkpoint(out_clean / "checkpoints" / "epoch_000.pt")["state_dict"]
    init_b = read_checkpoint(out_noisy / "checkpoints" / "epoch_000.pt")["state_dict"]
    assert all(torch.equal(init_a[k], init_b[k]) for k in init_a)  # same initial weights
    assert not np.allclose(clean["loss"].to_numpy()[1:], noisy["loss"].to_numpy()[1:])


def test_training_reduces_the_loss(tmp_path):
    _, history, _ = run(tmp_path, "learn", epochs=6, noise=0.0, lr=0.1)
    epochs = history[history["kind"] == "epoch"]
    assert epochs["loss"].iloc[-1] < epochs["loss"].iloc[0] - 0.02


def test_divergence_is_a_result_not_a_crash(tmp_path):
    result, history, out = run(tmp_path, "boom", lr=1e30, momentum=0.9, noise=0.0,
                               arch={"depth": 1, "base_width": 4, "norm": "none"}, epochs=3)
    assert result.diverged
    assert history["diverged"].astype(str).str.lower().eq("true").any()
    # the initial checkpoint stays; the non-finite weights are never saved
    saved = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert saved[0] == "epoch_000.pt"
    for name in saved:
        state = read_checkpoint(out / "checkpoints" / name)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


@pytest.mark.parametrize("key", ["epochs", "batch_size", "save_every"])
def test_bad_settings_name_the_key(key):
    with pytest.raises(ValueError, match=key):
        settings(**{key: 0})
