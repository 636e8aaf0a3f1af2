"""A model trained elsewhere: its state_dict file becomes a run the landscape jobs measure, and
bad files and config entries are refused naming the file or key."""

import json

import pytest
import torch
from job_data import write_random_dataset
from model_helpers import li_surface_point

from unetscape.jobs.external import import_external
from unetscape.jobs.measured import load_evaluation_set
from unetscape.jobs.random_plane import random_plane_and_line
from unetscape.jobs.run_measures import curvature_and_flatness, training_path
from unetscape.landscape.directions import load_directions
from unetscape.landscape.surface_io import read_surface
from unetscape.models.registry import build_model, resolve_model
from unetscape.models.checkpoints import CheckpointError, read_checkpoint

SPEC = resolve_model({"depth": 1, "base_width": 4, "norm": "batch"})
EVALUATION = {"subset": None, "heldout_subset": None, "seed": 0, "batch_size": 4, "noise": "train",
              "bn": "checkpoint", "precision": "float32", "points_per_pass": 1}
PLANE = {"seed": 1, "norm": "filter", "ignore": "biasbn", "orthogonalize": False, "x": [-1, 1, 3], "y": [-1, 1, 3]}


def quiet(_):
    pass


def saved_elsewhere(path, seed=3):
    torch.manual_seed(seed)
    model = build_model(SPEC)
    with torch.no_grad():  # as if trained: batch-norm statistics that are not the identity's
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2)
    torch.save(model.state_dict(), path)
    return model.eval()


def test_a_state_dict_is_measured_as_its_own_run(tmp_path):
    write_random_dataset(tmp_path / "data.npz", 6)
    model = saved_elsewhere(tmp_path / "unet.pt")
    run = tmp_path / "runs/external/mine"
    import_external("mine", tmp_path / "unet.pt", SPEC, "tversky", tmp_path / "data.npz", run / "checkpoints",
                    run / "outcome.json", quiet)
    outcome = json.loads((run / "outcome.json").read_text())
    assert outcome["outcome"] == "external" and outcome["landscape_checkpoint"] == "external.pt"
    meta = read_checkpoint(run / "checkpoints/external.pt")
    assert meta["settings"]["loss"] == "tversky" and meta["arch"] == SPEC
    assert all(torch.equal(meta["state_dict"][k], v) for k, v in model.state_dict().items())

    land = tmp_path / "landscape"
    (land / "random").mkdir(parents=True)
    (land / "pca").mkdir()
    random_plane_and_line(run / "checkpoints", run / "outcome.json", tmp_path / "data.npz", land / "random/d.h5",
                          land / "random/line.h5", land / "random/ld.h5", PLANE, {"x": [-1, 1, 3]}, EVALUATION, 0.0,
                          "cpu", quiet, surface_out=land / "random/surface.h5")
    surface = read_surface(land / "random/surface.h5")
    assert surface["attrs"]["outcome"] == "external" and surface["attrs"]["loss_function"] == "tversky"
    x, y, _ = load_evaluation_set(tmp_path / "data.npz", EVALUATION, 0.0, "cpu")
    directions, _ = load_directions(land / "random/d.h5", model)
    for j, b in enumerate(surface["ycoordinates"]):
        for i, a in enumerate(surface["xcoordinates"]):
            expected = li_surface_point(model, x, y, directions, (a, b), "tversky")
            assert surface["train_loss"][j, i] == pytest.approx(expected, rel=1e-5)
    # no training path and no initial weights: files that say so; curvature and flatness as usual
    training_path(run / "checkpoints", run / "outcome.json", tmp_path / "data.npz", land / "pca/d.h5",
                  land / "pca/surface.h5", land / "pca/projection.h5", land / "interpolation_init.h5",
                  {"ignore": "biasbn", "num": 3, "margin": 0.2}, {"t": [0, 1, 3], "bn": "geometric"}, EVALUATION,
                  0.0, "cpu", quiet)
    assert "trained elsewhere" in read_surface(land / "pca/surface.h5")["attrs"]["unavailable"]
    curvature_and_flatness(run / "checkpoints", run / "outcome.json", tmp_path / "data.npz", land / "h.json",
                           land / "f.json", {"top_k": 1, "tol": 1e-2, "max_iter": 4, "which": "algebraic",
                                             "trace_samples": 2, "seed": 0},
                           {"average_samples": 4, "worst_steps": 1, "pac_samples": 1, "pac_iterations": 1},
                           EVALUATION, 0.0, "cpu", quiet)
    hessian, flatness = (json.loads((land / name).read_text()) for name in ("h.json", "f.json"))
    assert hessian["outcome"] == "external" and hessian["loss"] == pytest.approx(surface["train_loss"][1, 1])
    assert flatness["distance_from_init"] is None and flatness["finite"]


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda p: torch.save({"weights": 1}, p), "is not a state_dict"),
        (lambda p: torch.save(build_model(resolve_model({"depth": 1, "base_width": 2})).state_dict(), p),
         "does not fit the network"),
        (lambda p: torch.save(torch.nn.Conv2d(1, 1, 1), p), "cannot be read as weights only"),
        (lambda p: p.write_bytes(b"not a checkpoint"), "cannot be read as weights only"),
    ],
    ids=["not_a_state_dict", "another_network", "a_pickled_module", "junk"],
)
def test_bad_checkpoints_are_refused_naming_the_file(tmp_path, write, message):
    write_random_dataset(tmp_path / "data.npz", 4)
    write(tmp_path / "bad.pt")
    run = tmp_path / "run"
    with pytest.raises(CheckpointError, match=message) as err:
        import_external("bad", tmp_path / "bad.pt", SPEC, "dice", tmp_path / "data.npz", run / "checkpoints",
                        run / "outcome.json", quiet)
    assert "bad.pt" in str(err.value)
    assert not (run / "outcome.json").exists()


def test_config_entries_are_checked_at_load_time(tmp_path):
    from test_bad_input import SCHEMA, valid_config

    from unetscape.workflow.config import ConfigError
    from unetscape.workflow.config_checks import validate_config

    saved_elsewhere(tmp_path / "unet.pt")
    config = valid_config()
    config["external"] = {"mine": {"arch": "improved", "checkpoint": str(tmp_path / "unet.pt")}}
    validate_config(config, SCHEMA)
    config["external"]["mine"]["checkpoint"] = str(tmp_path / "gone.pt")
    with pytest.raises(ConfigError, match=r"config key external.mine.checkpoint: file .*gone.pt not found"):
        validate_config(config, SCHEMA)
    config["external"]["mine"] = {"arch": "fancy", "checkpoint": str(tmp_path / "unet.pt")}
    with pytest.raises(ConfigError, match=r"config key external.mine.arch: 'fancy' is not defined"):
        validate_config(config, SCHEMA)
    config = valid_config()
    config["archs"]["tiny"] = {"library": "monai", "name": "BasicUNet"}
    config["studies"]["seeds"]["archs"].append("tiny")
    config["scale_invariance"]["runs"] = ["tiny/sgd/noise0/seed0"]
    with pytest.raises(ConfigError, match=r"scale_invariance.runs: 'tiny/sgd/noise0/seed0' is not a built-in U-Net"):
        validate_config(config, SCHEMA)
    config = valid_config()
    config["archs"]["tiny"] = {"library": "monai", "name": "BasicUNet", "depth": 2}
    with pytest.raises(ConfigError, match=r"config key archs.tiny"):
        validate_config(config, SCHEMA)
