"""The folder data source: any folder of images and a folder of masks paired by file name
(Kvasir-SEG's layout, a mask suffix, grayscale data), and its checks at config time."""

import numpy as np
import pytest
from PIL import Image

from unetscape.data import DatasetError, load_dataset, load_folder, prepare_dataset, save_dataset
from unetscape.data.prepare import source_files

POLYP, MUCOSA = (200, 90, 80), (150, 60, 60)
W, H = 40, 30


def polyp_image(k: int, mode: str = "RGB") -> Image.Image:
    image = Image.new("RGB", (W, H), MUCOSA)
    image.paste(POLYP, box(k))
    return image.convert(mode)


def box(k: int) -> tuple[int, int, int, int]:
    return (5 + k, 4 + k % 3, 25 + k, 20)


def polyp_mask(k: int) -> Image.Image:
    mask = Image.new("L", (W, H), 0)
    mask.paste(255, box(k))
    return mask


def kvasir(root, count=4, mode="RGB", image_ext="jpg", mask_ext="png", suffix=""):
    """A Kvasir-SEG-style pair of folders: images/<id>.jpg and masks/<id>.png, same stems."""
    images, masks = root / "images", root / "masks"
    images.mkdir(exist_ok=True)
    masks.mkdir(exist_ok=True)
    for k in range(count):
        key = f"cju{k}ddda"
        polyp_image(k, mode).save(images / f"{key}.{image_ext}", quality=95)
        polyp_mask(k).save(masks / f"{key}{suffix}.{mask_ext}")
    (images / "README.md").write_text("Kvasir-SEG")  # other files are ignored
    return images, masks


def config(images, masks, **data):
    return {"source": "folder", "images_dir": str(images), "masks_dir": str(masks), "size": 16, **data}


def expected_mask(k: int, size: int = 16) -> np.ndarray:
    return (np.asarray(polyp_mask(k).resize((size, size), Image.Resampling.NEAREST)) > 127).astype(np.uint8)


def test_kvasir_layout_through_prepare_dataset(tmp_path):
    images, masks = kvasir(tmp_path)
    out = tmp_path / "results" / "kvasir.npz"
    save_dataset(prepare_dataset(config(images, masks)), out)
    ds = load_dataset(out)
    assert ds.ids == [f"cju{k}ddda" for k in range(4)]
    assert ds.images.shape == (4, 16, 16, 3) and ds.masks.shape == (4, 16, 16)
    for k in range(4):  # each image keeps its own mask, read by the mask rule and resized by NEAREST
        np.testing.assert_array_equal(ds.masks[k], expected_mask(k))
        image = ds.images[k].astype(float)
        assert image[ds.masks[k] == 1, 0].mean() > image[ds.masks[k] == 0, 0].mean() + 30
    prov = ds.provenance
    assert prov["source"] == "folder" and prov["channels"] == 3 and prov["mask_suffix"] == ""
    assert prov["count"] == 4 and len(prov["sha256"]) == 64


def test_grayscale_folder_gives_one_channel(tmp_path):
    images, masks = kvasir(tmp_path, mode="L")
    ds = prepare_dataset(config(images, masks))
    assert ds.images.shape == (4, 16, 16, 1) and ds.provenance["channels"] == 1
    # the same pixels as the grey version of the RGB images, resized with the same filter
    expected = np.asarray(polyp_image(2, "L").resize((16, 16), Image.Resampling.BOX))
    np.testing.assert_allclose(ds.images[2, ..., 0].astype(int), expected.astype(int), atol=2)  # JPEG


def test_one_colour_image_makes_the_folder_rgb(tmp_path):
    images, masks = kvasir(tmp_path, mode="L")
    polyp_image(9).save(images / "colour.png")
    polyp_mask(9).save(masks / "colour.png")
    ds = prepare_dataset(config(images, masks))
    assert ds.images.shape[-1] == 3 and ds.provenance["channels"] == 3
    grey = ds.images[ds.ids.index("cju0ddda")].astype(int)
    assert np.abs(grey[..., 0] - grey[..., 2]).max() <= 1  # a grayscale image became grey RGB


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    values = np.full((16, 16), 65535 // 2, dtype=np.uint16)
    Image.fromarray(values).save(images / "a.png")
    polyp_mask(0).resize((16, 16)).save(masks / "a.png")
    ds = prepare_dataset(config(images, masks))
    assert ds.images.shape[-1] == 1 and int(ds.images[0, 0, 0, 0]) == 65535 // 2 // 257


def test_suffix_extensions_and_case(tmp_path):
    images, masks = kvasir(tmp_path, count=3, image_ext="TIF", mask_ext="BMP", suffix="_mask")
    ds = prepare_dataset(config(images, masks, mask_suffix="_mask"))
    assert ds.ids == ["cju0ddda", "cju1ddda", "cju2ddda"]
    np.testing.assert_array_equal(ds.masks[1], expected_mask(1))


def test_images_and_masks_in_one_folder(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for k in range(3):
        polyp_image(k).save(folder / f"case{k}.png")
        polyp_mask(k).save(folder / f"case{k}_mask.png")
    ds = prepare_dataset(config(folder, folder, mask_suffix="_mask"))
    assert ds.ids == ["case0", "case1", "case2"]
    np.testing.assert_array_equal(ds.masks[2], expected_mask(2))
    with pytest.raises(DatasetError, match="share this folder"):
        prepare_dataset(config(folder, folder))


def test_heldout_folders_and_split(tmp_path):
    images, masks = kvasir(tmp_path, count=5)
    split = prepare_dataset(config(images, masks, heldout=2, seed=1))
    assert len(split) == 3 and len(split.heldout) == 2 and split.provenance["heldout"]["source"] == "split"
    test = tmp_path / "test"
    test.mkdir()
    test_images, test_masks = test / "images", test / "masks"
    test_images.mkdir(), test_masks.mkdir()
    polyp_image(7).save(test_images / "held.jpg")
    polyp_mask(7).save(test_masks / "held.png")
    folders = prepare_dataset(config(images, masks, heldout_images_dir=str(test_images),
                                     heldout_masks_dir=str(test_masks)))
    assert folders.heldout.ids == ["held"] and folders.provenance["heldout"]["source"] == "folders"


@pytest.mark.parametrize(
    "break_input, message",
    [
        (lambda i, m: (m / "cju1ddda.png").unlink(), r"images/cju1ddda.jpg: no mask cju1ddda"),
        (lambda i, m: polyp_mask(0).save(m / "stray.png"), r"masks/stray.png: mask without an image stray"),
        (lambda i, m: polyp_image(0).save(i / "cju0ddda.png"), r"second file for cju0ddda"),
        (lambda i, m: (i / "cju2ddda.jpg").write_bytes(b"junk"), r"cju2ddda.jpg: cannot read image"),
        (lambda i, m: polyp_mask(0).resize((8, 8)).save(m / "cju0ddda.png"), r"cju0ddda.png: mask is 8×8"),
    ],
    ids=["image_without_mask", "mask_without_image", "two_images_one_id", "unreadable", "size_mismatch"],
)
def test_bad_folders_name_the_file_and_leave_nothing(tmp_path, break_input, message):
    images, masks = kvasir(tmp_path)
    break_input(images, masks)
    out_dir = tmp_path / "results"
    out_dir.mkdir()
    with pytest.raises(DatasetError, match=message):
        save_dataset(prepare_dataset(config(images, masks)), out_dir / "kvasir.npz")
    assert list(out_dir.iterdir()) == []


def test_source_files_are_every_image_and_mask(tmp_path):
    images, masks = kvasir(tmp_path, count=3)
    files = source_files(config(images, masks))
    assert files == sorted([str(images / f"cju{k}ddda.jpg") for k in range(3)]
                           + [str(masks / f"cju{k}ddda.png") for k in range(3)])
    assert source_files({"source": "synthetic"}) == []


def test_load_folder_checks_its_arguments(tmp_path):
    images, masks = kvasir(tmp_path)
    with pytest.raises(DatasetError, match="size must be"):
        load_folder(images, masks, size=0)
    with pytest.raises(DatasetError, match="mask_suffix must be a string"):
        load_folder(images, masks, size=8, mask_suffix=None)


# --- at config time: pairing and channels are known before any job runs ----------------------


def folder_config(images, masks, **data):
    from workflow_helpers import load_smoke

    cfg = load_smoke()
    cfg["landscape"]["interpolation"]["t"] = [-0.5, 1.5, 9]
    cfg["data"] = {"name": "kvasir", **config(images, masks, num_images=None, **data)}
    cfg["landscape"]["evaluation"].update(subset=4, heldout_subset=None)
    cfg["model"]["depth"] = 1
    # a folder of a few images: training subsets of the smoke config's size do not fit in it
    for spec in cfg["studies"].values():
        if "train_size" in spec:
            spec["train_size"] = [2, 4]
    return cfg


def validate(cfg):
    from workflow_helpers import REPO

    from unetscape.workflow.config_checks import validate_config

    validate_config(cfg, REPO / "config" / "schema" / "config.schema.yaml")


def test_config_checks_pair_the_files_and_name_them(tmp_path):
    from unetscape.workflow.config import ConfigError

    images, masks = kvasir(tmp_path)
    validate(folder_config(images, masks))
    (masks / "cju3ddda.png").unlink()
    with pytest.raises(ConfigError, match=r"config key data.masks_dir: .*images/cju3ddda.jpg: no mask cju3ddda"):
        validate(folder_config(images, masks))
    polyp_mask(3).save(masks / "cju3ddda.png")
    polyp_mask(3).save(masks / "orphan.png")
    with pytest.raises(ConfigError, match=r"config key data.masks_dir: .*masks/orphan.png: mask without an image"):
        validate(folder_config(images, masks))


def test_model_channels_follow_the_data(tmp_path):
    from unetscape.workflow.config import ConfigError, arch_spec

    images, masks = kvasir(tmp_path, mode="L")
    cfg = folder_config(images, masks)
    validate(cfg)
    assert {arch_spec(cfg, name)["in_channels"] for name in cfg["archs"]} == {1}
    cfg["model"]["in_channels"] = 3
    with pytest.raises(ConfigError, match=r"config key model.in_channels: .* the images are grayscale \(1\)"):
        validate(cfg)
