"""Bad input, case by case: each is stopped with a message naming its key or file, and leaves
no partial output behind.

Config values are checked when the config is loaded (before any job runs), config files are
read strictly, data folders, checkpoints and intermediate files are refused by the code that
reads them, and a failing job writes its traceback and a one-line summary to its log.
"""

from __future__ import annotations

import os
import re
import runpy
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from workflow_helpers import REPO, copy_workflow, load_smoke, snakemake, write_config

from unetscape.data import DatasetError, load_dataset, load_isic
from unetscape.models.checkpoints import load_checkpoint, save_checkpoint
from unetscape.models.unet import build_model
from unetscape.workflow.config import ConfigError, all_runs, format_noise
from unetscape.workflow.config_checks import validate_config
from unetscape.workflow.rule_entry import run_rule
from unetscape.workflow.strict_yaml import YamlError, load_yaml_file

SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"


def valid_config() -> dict:
    """The smoke config, with an interpolation path through t = 0 and t = 1."""
    config = load_smoke()
    config["landscape"]["interpolation"]["t"] = [-0.5, 1.5, 9]
    return config


def tiny_config() -> dict:
    """One run at toy size: a real job in seconds."""
    config = valid_config()
    config["data"].update(num_images=8, size=8)
    config["archs"] = {"simple": {"preset": "simple"}}
    config["optimizers"] = {"sgd": {"lr": 0.01, "momentum": 0.0}}
    config["training"].update(epochs=2, batch_size=4, eval_batch_size=8)
    config["landscape"]["evaluation"].update(subset=8, batch_size=8)
    config["landscape"]["plane"].update(x=[-1, 1, 3], y=[-1, 1, 3], chunks=2)
    config["landscape"]["line"]["x"] = [-1, 1, 3]
    config["landscape"]["interpolation"]["t"] = [0, 1, 2]
    config["landscape"]["trajectory"]["num"] = 2
    config["curvature"].update(top_k=1, max_iter=3, trace_samples=2)
    config["scale_invariance"].update(runs=["simple/sgd/noise0/seed0"], x=[-1, 1, 3])
    config["studies"] = {"seeds": {"archs": ["simple"], "optimizers": ["sgd"], "noise": [0], "seeds": [0]}}
    return config


def test_the_base_configs_are_valid():
    validate_config(valid_config(), SCHEMA)
    validate_config(tiny_config(), SCHEMA)


def test_shipped_configs_are_valid(tmp_path):
    for name in ("config.yaml", "smoke.yaml", "isic2016.yaml"):
        config = load_yaml_file(REPO / "config" / name)
        if config["data"]["source"] == "isic":  # the check counts the images: stand-in folders
            assert config["data"]["heldout_images_dir"]  # the paper's config tests on ISIC's test set
            for part, count, first in (("", 900, 0), ("heldout_", 379, 10000)):
                images, masks = tmp_path / f"{part}images", tmp_path / f"{part}masks"
                images.mkdir(exist_ok=True)
                masks.mkdir(exist_ok=True)
                for k in range(first, first + count):
                    (images / f"ISIC_{k:07d}.jpg").touch()
                    (masks / f"ISIC_{k:07d}_Segmentation.png").touch()
                config["data"].update({f"{part}images_dir": str(images), f"{part}masks_dir": str(masks)})
        validate_config(config, SCHEMA)


# --- config values: checked at load time, the message names the key ----------------------


def set_key(config: dict, key: str, value) -> None:
    *parents, last = key.split(".")
    for part in parents:
        config = config[part]
    config[last] = value


def with_values(**values):
    """An edit setting dotted keys (written with "__" for ".")."""
    return lambda c: [set_key(c, k.replace("__", "."), v) for k, v in values.items()]


CONFIG_CASES = {
    # grids: num >= 3, min < max, 0 a grid point
    "one_point_axis": (with_values(landscape__plane__x=[-1, 1, 1]), "landscape.plane.x", "at least 3"),
    "even_num": (with_values(landscape__plane__y=[-1, 1, 10]), "landscape.plane.y", "no grid point at 0"),
    "reversed_axis": (with_values(landscape__plane__x=[1, -1, 11]), "landscape.plane.x", "min must be less than max"),
    "line_without_zero": (with_values(landscape__line__x=[-1, 1, 4]), "landscape.line.x", "no grid point at 0"),
    "axis_beside_zero": (with_values(scale_invariance__x=[0.5, 1, 5]), "scale_invariance.x", "does not even reach 0"),
    "infinite_axis": (with_values(landscape__plane__x=[-float("inf"), 1, 5]), "landscape.plane.x", "finite"),
    "reversed_t": (with_values(landscape__interpolation__t=[1.5, -0.5, 9]), "landscape.interpolation.t", "min must be less"),
    "t_without_0": (with_values(landscape__interpolation__t=[0.25, 1.5, 6]), "landscape.interpolation.t", "t = 0"),
    "t_without_1": (with_values(landscape__interpolation__t=[0, 1.5, 3]), "landscape.interpolation.t", "t = 1"),
    # values that need the data set or the model
    "subset_too_large": (with_values(landscape__evaluation__subset=33), "landscape.evaluation.subset", "has 32"),
    "heldout_subset_too_large": (with_values(landscape__evaluation__heldout_subset=9),
                                 "landscape.evaluation.heldout_subset", "data.heldout has 8"),
    "fewer_images_than_subset": (with_values(data__num_images=8), "landscape.evaluation.subset", "has 8"),
    "top_k_not_below_max_iter": (with_values(curvature__top_k=10), "curvature.top_k", "max_iter"),
    "too_deep_for_size": (with_values(model__depth=5), "model.depth", "divisible by 2^5"),
    "arch_too_deep": (lambda c: c["archs"]["improved"].update(depth=5), "archs.improved.depth", "divisible by 2^5"),
    "size_not_divisible": (with_values(data__size=18), "model.depth", "got 18"),
    "grey_model_on_rgb": (with_values(model__in_channels=1), "model.in_channels", "RGB"),
    "arch_channels": (lambda c: c["archs"]["simple"].update(in_channels=4), "archs.simple.in_channels", "RGB"),
    # run grid
    "noise_ids_collide": (with_values(studies__noise__noise=[0, 0.1, 0.1000001]), "studies.noise.noise", "noise0.1"),
    "noise_ids_collide_across_studies": (
        with_values(studies__skips__noise=[0.1000001]), "studies.", "both give the run id"),
    "too_few_checkpoints": (with_values(training__epochs=1), "training.save_every", "at least 3"),
    "sparse_checkpoints": (with_values(training__epochs=4, training__save_every=4), "training.save_every", "epochs [0, 4]"),
    "infinite_lr": (lambda c: c["optimizers"]["sgd"].update(lr=float("inf")), "optimizers.sgd.lr", "finite"),
    "nan_tol": (with_values(curvature__tol=float("nan")), "curvature.tol", "finite"),
    "study_named_like_a_figure": (
        lambda c: c["studies"].update(scale_invariance=c["studies"]["seeds"]), "studies.scale_invariance", "rename"),
    "study_named_like_another_studys_figure": (
        lambda c: c["studies"].update(seeds_landscape=c["studies"]["seeds"]), "studies.seeds_landscape", "seeds_landscape.png"),
    "unknown_scale_invariance_run": (
        with_values(scale_invariance__runs=["simple/sgd/noise0.10/seed0"]), "scale_invariance.runs", "not a run"),
    # the schema (the description of the key says what it means)
    "chunks_zero": (with_values(landscape__plane__chunks=0), "landscape.plane.chunks", "minimum"),
    # 40 chunks of a 5x5 grid: 15 jobs would evaluate nothing
    "more_chunks_than_points": (with_values(landscape__plane__chunks=40), "landscape.plane.chunks",
                                "40 chunks for a 5×5 grid of 25 points"),
    "epochs_as_text": (with_values(training__epochs="5"), "training.epochs", "not of type"),
    "unknown_key": (lambda c: c["training"].update(epoch=3), "training", "'epoch' was unexpected"),
    "seed_beyond_64_bits": (with_values(landscape__plane__seed=2**64), "landscape.plane.seed", "64-bit"),
    "negative_seed": (with_values(studies__seeds__seeds=[0, -1]), "studies.seeds.seeds[1]", "minimum"),
    "axis_num_two": (with_values(landscape__line__x=[0, 1, 2]), "landscape.line.x[2]", "at least 3"),
}


@pytest.mark.parametrize("edit,key,words", CONFIG_CASES.values(), ids=CONFIG_CASES.keys())
def test_bad_config_value_names_its_key(edit, key, words):
    config = valid_config()
    edit(config)
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA)
    message = str(err.value)
    assert f"config key {key}" in message, message
    assert words in message, message
    assert "\n" not in message


def test_negative_zero_noise_is_the_run_noise0():
    config = valid_config()
    config["studies"]["noise"]["noise"] = [-0.0, 0.1]
    validate_config(config, SCHEMA)
    assert format_noise(-0.0) == "0"
    assert all("noise-" not in run.id for run in all_runs(config))


# --- ISIC folders named in the config: counted and paired (not read) at load time -------------


def isic_folders(root: Path, count: int, first: int = 0, part: str = "") -> tuple[Path, Path]:
    """Empty stand-ins of `count` ISIC images and their masks: the load-time checks only list them."""
    images, masks = root / f"{part}images", root / f"{part}masks"
    images.mkdir()
    masks.mkdir()
    for k in range(first, first + count):
        (images / f"ISIC_{k:07d}.jpg").touch()
        (masks / f"ISIC_{k:07d}_Segmentation.png").touch()
    return images, masks


def isic_config(images: Path, masks: Path, **data) -> dict:
    config = valid_config()
    config["data"] = {"name": "isic", "source": "isic", "images_dir": str(images), "masks_dir": str(masks),
                      "size": 16, "num_images": None, **data}
    config["landscape"]["evaluation"]["heldout_subset"] = None  # no held-out part unless given
    return config


def test_isic_images_are_counted_at_load_time(tmp_path):
    images, masks = isic_folders(tmp_path, 20)
    validate_config(isic_config(images, masks), SCHEMA)  # 20 images >= subset 16
    with pytest.raises(ConfigError, match=r"config key landscape\.evaluation\.subset: .*the data set has 12"):
        validate_config(isic_config(images, masks, num_images=12), SCHEMA)
    # a seeded split trains on what it leaves
    validate_config(isic_config(images, masks, heldout=4), SCHEMA)
    with pytest.raises(ConfigError, match=r"config key landscape\.evaluation\.subset: .*the data set has 15"):
        validate_config(isic_config(images, masks, heldout=5), SCHEMA)
    config = isic_config(images, masks, heldout=4)
    config["landscape"]["evaluation"]["heldout_subset"] = 5
    with pytest.raises(ConfigError, match=r"config key landscape\.evaluation\.heldout_subset: 5 .* has 4"):
        validate_config(config, SCHEMA)
    # held-out folders are counted too
    test_images, test_masks = isic_folders(tmp_path, 3, first=100, part="test_")
    config = isic_config(images, masks, heldout_images_dir=str(test_images), heldout_masks_dir=str(test_masks))
    config["landscape"]["evaluation"]["heldout_subset"] = 3
    validate_config(config, SCHEMA)
    config["landscape"]["evaluation"]["heldout_subset"] = 4
    with pytest.raises(ConfigError, match=r"heldout_subset: 4 .* has 3"):
        validate_config(config, SCHEMA)


@pytest.mark.parametrize(
    "change,key,words",
    [
        (lambda images, masks: {"images_dir": str(images.parent / "nope")}, "data.images_dir", "nope not found"),
        (lambda images, masks: {"masks_dir": str(masks.parent / "gone")}, "data.masks_dir", "gone not found"),
        (lambda images, masks: {"num_images": 30}, "data.num_images", "holds 20"),
        (lambda images, masks: {"images_dir": str(masks)}, "data.images_dir", "no ISIC_<id>.jpg images"),
        (lambda images, masks: {"heldout": 20}, "data.heldout", "leaves none to train on"),
        (lambda images, masks: {"heldout_images_dir": str(images)}, "data.heldout_masks_dir", "needed with"),
        (lambda images, masks: {"heldout_images_dir": str(images), "heldout_masks_dir": str(masks), "heldout": 2},
         "data.heldout", "names the held-out folder"),
        (lambda images, masks: {"heldout_images_dir": str(images.parent / "nope"), "heldout_masks_dir": str(masks)},
         "data.heldout_images_dir", "nope not found"),
    ],
    ids=["no_images_folder", "no_masks_folder", "limit_beyond_folder", "empty_images_folder", "split_too_large",
         "one_heldout_folder", "split_and_folders", "no_heldout_folder"],
)
def test_bad_isic_folders_name_the_key(tmp_path, change, key, words):
    images, masks = isic_folders(tmp_path, 20)
    config = isic_config(images, masks)
    config["data"].update(change(images, masks))
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA)
    assert f"config key {key}" in str(err.value) and words in str(err.value), err.value


def drop_mask(masks: Path, k: int) -> dict:
    (masks / f"ISIC_{k:07d}_Segmentation.png").unlink()
    return {}


def heldout_without_a_mask(tmp_path: Path) -> dict:
    images, masks = isic_folders(tmp_path, 3, first=100, part="test_")
    drop_mask(masks, 101)
    return {"heldout_images_dir": str(images), "heldout_masks_dir": str(masks)}


UNPAIRED_CASES = {
    "image_without_mask": (lambda tmp, images, masks: drop_mask(masks, 7), "data.masks_dir",
                           "images/ISIC_0000007.jpg: no mask ISIC_0000007_Segmentation.png"),
    "mask_without_image": (lambda tmp, images, masks: (images / "ISIC_0000003.jpg").unlink() or {}, "data.masks_dir",
                           "masks/ISIC_0000003_Segmentation.png: mask without an image ISIC_0000003.jpg"),
    "two_masks_for_one_image": (lambda tmp, images, masks: (masks / "ISIC_0000004_segmentation.png").touch() or {},
                                "data.masks_dir", "second file for ISIC_0000004"),
    "heldout_image_without_mask": (lambda tmp, images, masks: heldout_without_a_mask(tmp), "data.heldout_masks_dir",
                                   "test_images/ISIC_0000101.jpg: no mask ISIC_0000101_Segmentation.png"),
}


@pytest.mark.parametrize("change,key,words", UNPAIRED_CASES.values(), ids=UNPAIRED_CASES.keys())
def test_unpaired_isic_files_are_refused_at_load_time_naming_the_file(tmp_path, change, key, words):
    images, masks = isic_folders(tmp_path, 20)
    config = isic_config(images, masks)
    config["data"].update(change(tmp_path, images, masks))
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA)
    message = str(err.value)
    assert message.startswith(f"config key {key}: ") and words in message, message
    assert "\n" not in message


def test_as_many_chunks_as_grid_points_is_allowed():
    config = valid_config()
    config["landscape"]["plane"].update(x=[-1, 1, 5], y=[-1, 1, 3], chunks=15)
    validate_config(config, SCHEMA)


# --- config files: strict YAML, the message names file and line ----------------------------

SMOKE_TEXT = (REPO / "config" / "smoke.yaml").read_text()


def duplicate_lr(text):
    return text.replace("  sgd: {lr: 0.05, momentum: 0.0}\n", "  sgd:\n    lr: 0.05\n    momentum: 0.0\n    lr: 5.0\n")


YAML_CASES = {
    "duplicate_nested_key": (duplicate_lr, "duplicate key 'lr' (first defined at line"),
    "duplicate_study": (lambda t: t + "  momentum:\n    archs: [simple]\n", "duplicate key 'momentum'"),
    "duplicate_top_level": (lambda t: t + "threads: 4\n", "duplicate key 'threads'"),
    "unclosed_list": (lambda t: t.replace("seeds: [0, 1]", "seeds: [0, 1"), "not valid YAML"),
    "tab_indent": (lambda t: re.sub(r"\n  epochs: ", "\n\tepochs: ", t, count=1), "not valid YAML"),
    "bad_indent": (lambda t: re.sub(r"\n  batch_size: ", "\n   batch_size: ", t, count=1), "not valid YAML"),
}


def line_of(text: str, needle: str, occurrence: int = -1) -> int:
    lines = [k + 1 for k, line in enumerate(text.splitlines()) if needle in line]
    return lines[occurrence]


@pytest.mark.parametrize("edit,words", YAML_CASES.values(), ids=YAML_CASES.keys())
def test_bad_yaml_names_file_and_line(tmp_path, edit, words):
    path = tmp_path / "bad.yaml"
    text = edit(SMOKE_TEXT)
    assert text != SMOKE_TEXT  # the edit found what it breaks
    path.write_text(text)
    with pytest.raises(YamlError) as err:
        load_yaml_file(path)
    message = str(err.value)
    assert message.startswith(f"{path}:"), message
    assert words in message, message
    line = int(message[len(str(path)) + 1 :].split(":")[0])
    assert 1 <= line <= len(path.read_text().splitlines())


def test_duplicate_key_points_at_the_second_copy(tmp_path):
    path = tmp_path / "bad.yaml"
    text = duplicate_lr(SMOKE_TEXT)
    path.write_text(text)
    with pytest.raises(YamlError, match=rf":{line_of(text, 'lr: 5.0')}: duplicate key 'lr' "
                                        rf"\(first defined at line {line_of(text, 'lr: 0.05', 0)}\)"):
        load_yaml_file(path)


def test_yaml_merge_keys_may_be_overridden(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text("base: &base {lr: 0.01, momentum: 0.9}\nfast:\n  <<: *base\n  lr: 0.1\n")
    assert load_yaml_file(path)["fast"] == {"lr": 0.1, "momentum": 0.9}


def test_non_utf8_and_missing_files_are_named(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("title: caf\xe9\n".encode("latin-1"))
    with pytest.raises(YamlError, match=rf"{path}: not UTF-8"):
        load_yaml_file(path)
    with pytest.raises(YamlError, match="nope.yaml: file not found"):
        load_yaml_file(tmp_path / "nope.yaml")


def test_every_shipped_yaml_file_is_strict_yaml():
    files = [*(REPO / "config").rglob("*.yaml"), *(REPO / "profiles").glob("*/config.yaml"), REPO / "envs/unetscape.yaml"]
    assert len(files) >= 6
    for path in files:
        load_yaml_file(path)  # no duplicate keys (the last copy would win silently)


def test_config_check_command_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMOKE_TEXT.replace("seeds: [0, 1]", "seeds: [0, 1"))
    good = write_config(tmp_path / "good.yaml", valid_config())
    proc = subprocess.run([sys.executable, "-m", "unetscape.workflow.config_checks", str(bad), str(good)],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 1
    assert re.search(rf"^{re.escape(str(bad))}:\d+:\d+: not valid YAML", proc.stderr, re.M), proc.stderr
    assert f"{good}: ok" in proc.stdout


# --- the workflow: stopped before any job, nothing written ---------------------------------


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("bad_input_workflow"))


def assert_nothing_ran(workdir: Path):
    assert not (workdir / "results").exists()
    incomplete = workdir / ".snakemake" / "incomplete"
    assert not incomplete.exists() or not any(incomplete.iterdir())


def test_workflow_refuses_a_configfile_with_a_duplicate_key(workflow_copy):
    path = workflow_copy / "dup.yaml"
    path.write_text(duplicate_lr(SMOKE_TEXT))
    proc = snakemake(workflow_copy, "--configfile", str(path), "-n", check=False)
    assert proc.returncode != 0
    assert f"{path}:{line_of(path.read_text(), 'lr: 5.0')}: duplicate key 'lr'" in proc.stdout + proc.stderr
    assert_nothing_ran(workflow_copy)


@pytest.mark.parametrize(
    "edit,words",
    [
        (lambda t: t + "threads: 4\n", "config/config.yaml:{line}: duplicate key 'threads'"),
        (lambda t: t.replace("seeds: [0, 1, 2]", "seeds: [0, 1, 2"), "config/config.yaml:{line}:"),
    ],
    ids=["duplicate", "syntax"],
)
def test_workflow_refuses_a_bad_default_config(workflow_copy, edit, words):
    default = workflow_copy / "config" / "config.yaml"
    original = default.read_text()
    try:
        default.write_text(edit(original))
        proc = snakemake(workflow_copy, "-n", check=False)
    finally:
        default.write_text(original)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    line = line_of(edit(original), "threads: 4") if "duplicate" in words else None
    expected = words.format(line=line) if line else "config/config.yaml:"
    assert expected in output, output
    assert_nothing_ran(workflow_copy)


def test_workflow_refuses_a_bad_value_before_any_job(workflow_copy):
    config = valid_config()
    config["landscape"]["plane"]["x"] = [-1, 1, 10]
    path = write_config(workflow_copy / "even.yaml", config)
    proc = snakemake(workflow_copy, "--configfile", str(path), check=False)
    assert proc.returncode != 0
    assert "config key landscape.plane.x: [-1, 1, 10] has no grid point at 0" in proc.stdout + proc.stderr
    assert_nothing_ran(workflow_copy)


def test_a_dry_run_refuses_an_image_without_its_mask(workflow_copy):
    root = workflow_copy / "unpaired"
    root.mkdir()
    images, masks = isic_folders(root, 20)
    drop_mask(masks, 5)
    path = write_config(workflow_copy / "unpaired.yaml", isic_config(images, masks))
    proc = snakemake(workflow_copy, "--configfile", str(path), "-n", check=False)
    assert proc.returncode != 0
    expected = f"config key data.masks_dir: {images / 'ISIC_0000005.jpg'}: no mask ISIC_0000005_Segmentation.png"
    assert expected in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert_nothing_ran(workflow_copy)


# --- data folders: masks read by a stated rule, everything else refused naming the file ----

SKIN = (210, 170, 150)
BOX = (4, 4, 12, 10)  # lesion rectangle of every mask below (left, top, right, bottom), 16x16 files


def box_mask(mode: str, background, lesion) -> Image.Image:
    mask = Image.new(mode, (16, 16), background)
    mask.paste(lesion, BOX)
    return mask


def expected_box(size: int = 16) -> np.ndarray:
    box = np.zeros((size, size), dtype=np.uint8)
    box[BOX[1] : BOX[3], BOX[0] : BOX[2]] = 1
    return box


def isic_pair(root: Path, masks: dict[str, Image.Image]) -> tuple[Path, Path]:
    images_dir, masks_dir = root / "images", root / "masks"
    images_dir.mkdir(exist_ok=True)
    masks_dir.mkdir(exist_ok=True)
    for isic_id, mask in masks.items():
        Image.new("RGB", (16, 16), SKIN).save(images_dir / f"{isic_id}.jpg")
        mask.save(masks_dir / f"{isic_id}_Segmentation.png")
    return images_dir, masks_dir


def palette_mask() -> Image.Image:
    # Index 0 is white here, the lesion's colour: only the palette says which pixels are black.
    mask = Image.new("P", (16, 16), 1)
    mask.putpalette([255, 255, 255, 0, 0, 0])
    mask.paste(0, BOX)
    return mask


def transparent_mask() -> Image.Image:
    mask = Image.new("RGBA", (16, 16), (255, 255, 255, 0))  # white but fully transparent
    mask.paste((255, 0, 0, 255), BOX)
    return mask


READABLE_MASKS = {
    "white_on_black": box_mask("L", 0, 255),
    "zero_one": box_mask("L", 0, 1),
    "red_on_black": box_mask("RGB", (0, 0, 0), (255, 0, 0)),
    "grey_level": box_mask("L", 0, 100),
    "sixteen_bit": Image.fromarray(expected_box().astype(np.uint16) * 65535),
    "palette_white_index_0": palette_mask(),
    "transparent_background": transparent_mask(),
}


@pytest.mark.parametrize("mask", READABLE_MASKS.values(), ids=READABLE_MASKS.keys())
def test_masks_are_read_by_the_stated_rule(tmp_path, mask):
    images, masks = isic_pair(tmp_path, {"ISIC_0000000": mask})
    ds = load_isic(images, masks, size=16)
    np.testing.assert_array_equal(ds.masks[0], expected_box())


def prepare_job(tmp_path: Path, data: dict) -> tuple[int, str, Path]:
    """Run scripts/prepare_dataset.py's main as Snakemake would: (exit status, log, output)."""
    main = runpy.run_path(str(REPO / "scripts" / "prepare_dataset.py"))["main"]
    out, log = tmp_path / "results" / "data" / "set.npz", tmp_path / "prepare.log"
    smk = SimpleNamespace(rule="prepare_dataset", input=[], output=[str(out)], log=[str(log)],
                          params=SimpleNamespace(data=data))
    with pytest.raises(SystemExit) as exit_:
        run_rule(main, smk)
    return exit_.value.code, log.read_text(), out


def three_levels() -> Image.Image:
    mask = box_mask("L", 0, 1)
    mask.paste(2, (6, 6, 8, 8))
    return mask


DATA_CASES = {
    "all_masks_empty": (lambda root: isic_pair(root, {"ISIC_0000000": box_mask("L", 0, 0),
                                                      "ISIC_0000001": box_mask("L", 0, 0)}),
                        "every one of the 2 masks is empty", "masks"),
    "mask_without_image": (lambda root: orphan_mask(root), "mask without an image ISIC_0000005.jpg",
                           "masks/ISIC_0000005_Segmentation.png"),
    "label_map_mask": (lambda root: isic_pair(root, {"ISIC_0000000": three_levels()}), "ambiguous mask",
                       "masks/ISIC_0000000_Segmentation.png"),
    "image_without_mask": (lambda root: missing_mask(root), "no mask ISIC_0000001_Segmentation.png",
                           "images/ISIC_0000001.jpg"),
    "limit_beyond_folder": (lambda root: isic_pair(root, {"ISIC_0000000": box_mask("L", 0, 255)}),
                            "data.num_images: limit of 3 images", "images holds 1"),  # names the folder
}


def orphan_mask(root: Path):
    images, masks = isic_pair(root, {"ISIC_0000000": box_mask("L", 0, 255)})
    box_mask("L", 0, 255).save(masks / "ISIC_0000005_Segmentation.png")
    return images, masks


def missing_mask(root: Path):
    images, masks = isic_pair(root, {"ISIC_0000000": box_mask("L", 0, 255), "ISIC_0000001": box_mask("L", 0, 255)})
    (masks / "ISIC_0000001_Segmentation.png").unlink()
    return images, masks


@pytest.mark.parametrize("make,words,file", DATA_CASES.values(), ids=DATA_CASES.keys())
def test_bad_data_folder_stops_the_job_naming_the_file(tmp_path, make, words, file):
    images, masks = make(tmp_path)
    data = {"source": "isic", "images_dir": str(images), "masks_dir": str(masks), "size": 8,
            "num_images": 3 if "limit" in words else None}
    status, log, out = prepare_job(tmp_path, data)
    summary = log.strip().splitlines()[-1]
    assert status == 1
    assert "Traceback (most recent call last)" in log
    assert summary.startswith("error in rule prepare_dataset: ") and words in summary, log
    assert (file or str(images.parent)) in summary, summary
    assert "[" not in summary  # the message names its file: nothing appended
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no temporary file either


# --- checkpoints: what is wrong with the file, never "retry with weights_only=False" --------


class Foreign:
    def __reduce__(self):
        return (print, ("this ran",))


def good_checkpoint(path: Path) -> Path:
    torch.manual_seed(0)
    save_checkpoint(path, build_model({"depth": 1, "base_width": 2}), epoch=0)
    return path


def truncate(path: Path, keep: float):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def overwrite_middle(path: Path):
    data = bytearray(path.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 64] = bytes(64)
    path.write_bytes(bytes(data))


CHECKPOINT_CASES = {
    "empty": (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    "text": (lambda p: p.write_text("not a checkpoint\n"), "is not a PyTorch checkpoint"),
    "truncated": (lambda p: truncate(good_checkpoint(p), 0.5), "is not a PyTorch checkpoint"),
    "overwritten_bytes": (lambda p: overwrite_middle(good_checkpoint(p)), "is damaged"),
    "foreign_zip": (lambda p: zipfile.ZipFile(p, "w").close(), "is damaged"),
    "foreign_objects": (lambda p: torch.save({"format": "unetscape-checkpoint/1", "x": Foreign()}, p),
                        "holds Python objects other than tensors"),
    "bare_tensor": (lambda p: torch.save(torch.ones(3), p), "is not a unetscape-checkpoint/1 file"),
    "no_state_dict": (lambda p: torch.save({"format": "unetscape-checkpoint/1", "arch": {}}, p), "no 'state_dict'"),
}


@pytest.mark.parametrize("make,words", CHECKPOINT_CASES.values(), ids=CHECKPOINT_CASES.keys())
def test_bad_checkpoint_says_what_is_wrong(tmp_path, capsys, make, words):
    path = tmp_path / "epoch_002.pt"
    make(path)
    with pytest.raises(ValueError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert str(path) in message and words in message, message
    assert "weights_only" not in message and err.value.__cause__ is None  # no torch advice in the log
    assert "this ran" not in capsys.readouterr().out


# --- failing jobs: traceback and a one-line summary naming the file, in the rule's log ------


def fake_job(tmp_path: Path, inputs: list[Path], rule: str = "line_1d"):
    out, log = tmp_path / "out" / "line.h5", tmp_path / "logs" / f"{rule}.log"
    log.parent.mkdir(exist_ok=True)
    return SimpleNamespace(rule=rule, input=[str(p) for p in inputs], output=[str(out)], log=[str(log)]), out, log


def read_h5(smk):
    with h5py.File(smk.input[0], "r") as f:
        f["x"][()]


def missing_key(smk):
    {}["missing key"]


JOB_CASES = {
    "truncated_h5": (lambda p: truncate(write_h5(p), 0.05), read_h5, "OSError: Unable to synchronously open file"),
    "h5_without_dataset": (lambda p: h5py.File(p, "w").close(), read_h5, "KeyError"),
    "empty_h5": (lambda p: p.write_bytes(b""), read_h5, "OSError"),
}


def write_h5(path: Path) -> Path:
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(1000)
    return path


@pytest.mark.parametrize("make,main,words", JOB_CASES.values(), ids=JOB_CASES.keys())
def test_any_failure_logs_traceback_and_summary_naming_the_file(tmp_path, capsys, make, main, words):
    directions = tmp_path / "run" / "random" / "directions.h5"
    directions.parent.mkdir(parents=True)
    make(directions)
    smk, out, log = fake_job(tmp_path, [directions])
    with pytest.raises(SystemExit) as exit_:
        run_rule(main, smk)
    text = log.read_text()
    summary = text.strip().splitlines()[-1]
    assert exit_.value.code == 1
    assert "Traceback (most recent call last)" in text
    assert summary.startswith("error in rule line_1d: ") and words in summary, summary
    assert str(directions) in summary, summary
    assert summary in capsys.readouterr().err  # and on the terminal
    assert not out.exists()


def test_a_failure_naming_no_file_lists_the_jobs_files(tmp_path):
    smk, _, log = fake_job(tmp_path, [tmp_path / "a.h5"])
    with pytest.raises(SystemExit):
        run_rule(missing_key, smk)
    summary = log.read_text().strip().splitlines()[-1]
    assert summary.startswith("error in rule line_1d: KeyError: 'missing key' [the message names no file; the job's files: ")
    assert str(tmp_path / "a.h5") in summary


def test_the_file_inside_an_input_folder_is_named(tmp_path):
    checkpoints = tmp_path / "runs" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "epoch_002.pt").write_bytes(b"\x00" * 10)

    def load_last(smk):
        path = sorted(Path(smk.input[0]).glob("*.pt"))[-1]
        torch.load(path, weights_only=True)  # torch's own error names no file

    smk, _, log = fake_job(tmp_path, [checkpoints], rule="hessian")
    with pytest.raises(SystemExit):
        run_rule(load_last, smk)
    assert log.read_text().strip().splitlines()[-1].endswith(f"[file: {checkpoints / 'epoch_002.pt'}]")


def test_corrupt_dataset_file_is_named(tmp_path):
    path = tmp_path / "results" / "data" / "smoke.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DatasetError, match=f"{path}: not a readable .npz archive"):
        load_dataset(path)


# --- real jobs of a tiny workflow, their inputs broken in between ---------------------------

RUN = "simple/sgd/noise0/seed0"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny workflow run as far as one run's random directions."""
    workdir = copy_workflow(tmp_path_factory.mktemp("bad_input_jobs"))
    config = write_config(workdir / "tiny.yaml", tiny_config())
    snakemake(workdir, f"results/landscape/{RUN}/random/directions.h5", "--configfile", str(config))
    return workdir


def empty_checkpoint(workdir: Path) -> str:
    path = f"results/runs/{RUN}/checkpoints/epoch_002.pt"
    (workdir / path).write_bytes(b"")
    return path


def truncated_directions(workdir: Path) -> str:
    path = f"results/landscape/{RUN}/random/directions.h5"
    truncate(workdir / path, 0.1)
    return path


REAL_JOB_CASES = {
    "empty_checkpoint": (empty_checkpoint, "run_measures", f"results/landscape/{RUN}/hessian.json", "is empty (0 bytes)"),
    "truncated_directions": (truncated_directions, "surface_chunk", f"results/landscape/{RUN}/random/chunks/1-of-2.h5",
                             "OSError"),
}


@pytest.mark.workflow
@pytest.mark.parametrize("damage,rule,target,words", REAL_JOB_CASES.values(), ids=REAL_JOB_CASES.keys())
def test_damaged_intermediate_file_fails_its_job_naming_it(trained, tmp_path, damage, rule, target, words):
    workdir = tmp_path / "work"
    subprocess.run(["cp", "-a", str(trained), str(workdir)], check=True)  # keeps mtimes and metadata
    damaged = damage(workdir)
    # Only modification times decide here: the copy has moved, and nothing upstream should rerun.
    proc = snakemake(workdir, target, "--configfile", "tiny.yaml", "--rerun-triggers", "mtime", check=False)
    assert proc.returncode != 0
    assert not re.search(r"(rule|checkpoint) train:", proc.stdout + proc.stderr)
    logs = list((workdir / "results" / "logs" / rule).rglob("*.log"))
    assert len(logs) == 1, proc.stdout + proc.stderr
    text = logs[0].read_text()
    summary = text.strip().splitlines()[-1]
    assert "Traceback (most recent call last)" in text
    assert summary.startswith(f"error in rule {rule}: ") and words in summary, text
    assert damaged in summary, summary
    assert "weights_only" not in text
    output = workdir / target
    assert not output.exists() and not list(output.parent.glob(f".{output.name}.*"))


# --- an interrupted run: the lock, --unlock, and incomplete outputs redone -------------------


@pytest.mark.workflow
def test_interrupted_run_recovers_with_unlock_and_no_other_flag(tmp_path):
    workdir = copy_workflow(tmp_path)
    config = tiny_config()
    config["training"].update(epochs=12, stop_on_plateau=False)  # long enough to be killed while training
    write_config(workdir / "long.yaml", config)
    history = f"results/runs/{RUN}/history.csv"
    checkpoints = workdir / f"results/runs/{RUN}/checkpoints"
    cmd = [sys.executable, "-m", "snakemake", history, "--cores", "1", "--configfile", "long.yaml"]
    job = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list(checkpoints.glob("epoch_*.pt")) and job.poll() is None:
        time.sleep(0.02)
    assert job.poll() is None, "snakemake stopped before training started"
    os.killpg(job.pid, signal.SIGKILL)  # a lost session: no chance to clean up
    job.wait()
    assert not (workdir / history).exists(), "training finished before it could be interrupted"

    locked = snakemake(workdir, history, "--configfile", "long.yaml", check=False)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr

    snakemake(workdir, "--configfile", "long.yaml", "--unlock")
    snakemake(workdir, history, "--configfile", "long.yaml")  # no --rerun-incomplete needed
    table = pd.read_csv(workdir / history)
    assert table.loc[table["kind"] == "epoch", "epoch"].tolist() == list(range(13))  # redone whole, once
    assert sorted(p.name for p in checkpoints.glob("*.pt")) == [f"epoch_{e:03d}.pt" for e in range(13)]
