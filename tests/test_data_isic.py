"""Reading the ISIC layout (and preparing datasets from the config) with small files."""

import numpy as np
import pytest
from PIL import Image

from unetscape.data import DatasetError, load_dataset, load_isic, prepare_dataset, save_dataset

SKIN, LESION = (210, 170, 150), (90, 55, 40)
W, H = 32, 24  # stored image size (width, height)
BOX = (8, 6, 24, 18)  # lesion rectangle (left, top, right, bottom)


def lesion_rgb(width=W, height=H, box=BOX):
    image = Image.new("RGB", (width, height), SKIN)
    image.paste(LESION, box)
    return image


def lesion_mask(width=W, height=H, box=BOX):
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, box)
    return mask


def make_layout(root):
    """An ISIC-style pair of folders with one case per kind of file seen in the wild."""
    images, masks = root / "images", root / "masks"
    images.mkdir()
    masks.mkdir()

    lesion_rgb().save(images / "ISIC_0000000.jpg", quality=95)  # plain RGB JPEG
    lesion_mask().save(masks / "ISIC_0000000_Segmentation.png")

    lesion_rgb().convert("L").save(images / "ISIC_0000001.jpg", quality=95)  # grayscale
    lesion_mask().save(masks / "ISIC_0000001_Segmentation.png")

    # Some mirrors ship PNG content (here with alpha) under a .jpg name; PIL reads by content.
    rgba = lesion_rgb().convert("RGBA")
    rgba.putalpha(128)
    rgba.save(images / "ISIC_0000002.jpg", format="PNG")
    lesion_mask().convert("1").save(masks / "ISIC_0000002_Segmentation.png")  # 1-bit mask

    # ISIC 2017/2018 spell the mask suffix in lower case.
    lesion_rgb().save(images / "ISIC_0000003.jpg", quality=95)
    lesion_mask().save(masks / "ISIC_0000003_segmentation.png")

    # Palette image and a palette mask.
    lesion_rgb().convert("P").save(images / "ISIC_0000004.jpg", format="PNG")
    lesion_mask().convert("P").save(masks / "ISIC_0000004_Segmentation.png")

    # Files that are not part of the data set are ignored.
    lesion_mask().save(images / "ISIC_0000000_superpixels.png")
    (images / "LICENSE.txt").write_text("CC-BY-NC")
    (masks / "ATTRIBUTION.txt").write_text("ISIC")
    return images, masks


@pytest.fixture
def layout(tmp_path):
    return make_layout(tmp_path)


def test_loads_every_case_as_rgb_and_binary_masks(layout):
    images, masks = layout
    ds = load_isic(images, masks, size=16)
    assert ds.ids == [f"ISIC_000000{i}" for i in range(5)]
    assert ds.images.shape == (5, 16, 16, 3) and ds.images.dtype == np.uint8
    assert ds.masks.shape == (5, 16, 16) and set(np.unique(ds.masks)) == {0, 1}
    # The lesion box covers (16×12)/(32×24) = 1/4 of every image.
    assert np.allclose(ds.masks.mean(axis=(1, 2)), 0.25)
    for image, mask in zip(ds.images.astype(float), ds.masks.astype(bool)):
        assert image[mask].mean() < image[~mask].mean() - 60  # the mask marks the lesion
    grey = ds.images[1].astype(int)
    assert np.abs(grey[..., 0] - grey[..., 2]).max() <= 1  # grayscale became grey RGB
    np.testing.assert_array_equal(ds.images[2], np.asarray(lesion_rgb().resize((16, 16), 4)))


def test_provenance(layout):
    images, masks = layout
    ds = load_isic(images, masks, size=16, limit=3)
    prov = ds.provenance
    assert set(prov) == {"source", "images_dir", "masks_dir", "size", "channels", "count", "sha256", "heldout"}
    assert prov["channels"] == 3  # one grayscale image among colour ones: RGB
    assert prov["heldout"] is None
    assert prov["source"] == "isic"
    assert prov["images_dir"] == str(images) and prov["masks_dir"] == str(masks)
    assert prov["size"] == 16 and prov["count"] == 3
    assert len(prov["sha256"]) == 64


def test_limit_takes_the_first_ids(layout):
    images, masks = layout
    assert load_isic(images, masks, size=8, limit=2).ids == ["ISIC_0000000", "ISIC_0000001"]
    # A limit beyond the folder's images would silently give fewer images than asked for.
    with pytest.raises(DatasetError, match=r"limit of 100 images, but .*images holds 5"):
        load_isic(images, masks, size=8, limit=100)


def test_checksum_detects_changed_input(layout):
    images, masks = layout
    first = load_isic(images, masks, size=8).provenance["sha256"]
    assert load_isic(images, masks, size=8).provenance["sha256"] == first
    assert load_isic(images, masks, size=8, limit=4).provenance["sha256"] != first

    mask = lesion_mask()
    mask.putpixel((0, 0), 255)  # one pixel of one mask, invisible after resizing to 8×8
    mask.save(masks / "ISIC_0000003_segmentation.png")
    changed = load_isic(images, masks, size=8)
    assert changed.provenance["sha256"] != first


def test_exif_orientation_applies_to_image_and_mask(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    # Stored 40×24 with the lesion in the top rows; Orientation 6 means "rotate 90° clockwise
    # to display", which puts the lesion in the right-hand columns of a 24×40 picture.
    stored = lesion_rgb(40, 24, box=(0, 0, 40, 8))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(images / "ISIC_0000007.jpg", quality=95, exif=exif)
    # The annotation was drawn on the displayed picture.
    lesion_mask(24, 40, box=(16, 0, 24, 40)).save(masks / "ISIC_0000007_Segmentation.png")

    ds = load_isic(images, masks, size=12)
    mask, lum = ds.masks[0], ds.images[0].astype(float).mean(axis=2)
    assert mask[:, 8:].all() and not mask[:, :8].any()  # right third
    assert lum[:, 9:].mean() < lum[:, :7].mean() - 60  # and that is where the image is dark


def test_mask_threshold_is_above_127(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    Image.new("RGB", (8, 8), SKIN).save(images / "ISIC_0000009.jpg")
    # Anti-aliased annotation: columns of 0, 100, 127, 128, 200, 255 ...
    values = np.array([0, 100, 127, 128, 200, 255, 126, 129], dtype=np.uint8)
    Image.fromarray(np.tile(values, (8, 1))).save(masks / "ISIC_0000009_Segmentation.png")
    ds = load_isic(images, masks, size=8)
    np.testing.assert_array_equal(ds.masks[0][0], [0, 0, 0, 1, 1, 1, 0, 1])


def test_upscaling_works(layout):
    images, masks = layout
    ds = load_isic(images, masks, size=48, limit=1)
    assert ds.images.shape == (1, 48, 48, 3)
    assert abs(ds.masks.mean() - 0.25) < 0.01


# --- errors: each names the offending file or folder -------------------------------------


def test_image_without_mask(layout):
    images, masks = layout
    (masks / "ISIC_0000003_segmentation.png").unlink()
    with pytest.raises(DatasetError, match=r"ISIC_0000003\.jpg.*no mask"):
        load_isic(images, masks, size=8)
    # Not an error when the limit leaves that image out.
    assert load_isic(images, masks, size=8, limit=3).provenance["count"] == 3


def test_unreadable_image(layout):
    images, masks = layout
    (images / "ISIC_0000001.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(DatasetError, match=r"ISIC_0000001\.jpg.*cannot read"):
        load_isic(images, masks, size=8)


def test_truncated_image(layout):
    images, masks = layout
    path = images / "ISIC_0000000.jpg"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DatasetError, match=r"ISIC_0000000\.jpg"):
        load_isic(images, masks, size=8)


def test_unreadable_mask(layout):
    images, masks = layout
    (masks / "ISIC_0000002_Segmentation.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=r"ISIC_0000002_Segmentation\.png.*cannot read"):
        load_isic(images, masks, size=8)


def test_mask_size_mismatch(layout):
    images, masks = layout
    lesion_mask(W + 1, H).save(masks / "ISIC_0000000_Segmentation.png")
    with pytest.raises(DatasetError, match=r"ISIC_0000000_Segmentation\.png.*33×24.*32×24"):
        load_isic(images, masks, size=8)


def test_empty_images_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DatasetError, match=r"images.*no ISIC_<id>\.jpg images"):
        load_isic(tmp_path / "images", tmp_path / "masks", size=8)


@pytest.mark.parametrize("missing", ["images", "masks"])
def test_missing_folder(layout, missing):
    images, masks = layout
    folders = {"images": images, "masks": masks}
    folders[missing] = folders[missing].parent / "nowhere"
    with pytest.raises(DatasetError, match=f"nowhere: {missing} folder not found"):
        load_isic(folders["images"], folders["masks"], size=8)


def test_bad_size_and_limit(layout):
    images, masks = layout
    with pytest.raises(DatasetError, match="size"):
        load_isic(images, masks, size=0)
    with pytest.raises(DatasetError, match="limit"):
        load_isic(images, masks, size=8, limit=0)


# --- prepare_dataset: config in, dataset (file) out ---------------------------------------


def isic_config(images, masks, **extra):
    return {"source": "isic", "images_dir": str(images), "masks_dir": str(masks), **extra}


def test_prepare_isic_and_save(layout, tmp_path):
    images, masks = layout
    out = tmp_path / "results" / "isic.npz"
    save_dataset(prepare_dataset(isic_config(images, masks, size=16, num_images=None)), out)
    ds = load_dataset(out)
    assert len(ds) == 5 and ds.provenance["source"] == "isic"
    limited = prepare_dataset(isic_config(images, masks, size=16, num_images=2))
    assert limited.ids == ds.ids[:2]


@pytest.mark.parametrize(
    "break_input, message",
    [
        (lambda i, m: (m / "ISIC_0000004_Segmentation.png").unlink(), "ISIC_0000004.jpg"),
        (lambda i, m: (i / "ISIC_0000003.jpg").write_bytes(b"junk"), "ISIC_0000003.jpg"),
        (
            lambda i, m: lesion_mask(10, 10).save(m / "ISIC_0000001_Segmentation.png"),
            "ISIC_0000001_Segmentation.png",
        ),
        (lambda i, m: [p.unlink() for p in i.iterdir()], "no ISIC_<id>.jpg images"),
        (lambda i, m: [p.unlink() for p in m.iterdir()] and m.rmdir(), "masks folder not found"),
    ],
)
def test_prepare_error_leaves_nothing_behind(layout, tmp_path, break_input, message):
    images, masks = layout
    break_input(images, masks)
    out_dir = tmp_path / "results" / "data"
    out_dir.mkdir(parents=True)
    with pytest.raises(DatasetError, match=message):
        save_dataset(prepare_dataset(isic_config(images, masks, size=16)), out_dir / "isic.npz")
    assert list(out_dir.iterdir()) == []


def test_prepare_config_errors_name_the_key(layout):
    images, masks = layout
    with pytest.raises(DatasetError, match="data.source: unknown source 'isic2016'"):
        prepare_dataset({"source": "isic2016"})
    with pytest.raises(DatasetError, match="data.source"):
        prepare_dataset({"size": 16})
    for key in ("images_dir", "masks_dir", "size"):
        cfg = isic_config(images, masks, size=16)
        del cfg[key]
        with pytest.raises(DatasetError, match=f"data.{key}"):
            prepare_dataset(cfg)
    with pytest.raises(DatasetError, match="data.num_images"):
        prepare_dataset(isic_config(images, masks, size=16, num_images=-1))


# --- the held-out part: ISIC's test folders, or a seeded split of the training folders -------


def make_test_layout(root, first=100, count=3):
    """A second pair of folders (an ISIC test set) with ids the training folders do not have."""
    images, masks = root / "test_images", root / "test_masks"
    images.mkdir()
    masks.mkdir()
    for k in range(first, first + count):
        box = (4 + k % 5, 3, 20 + k % 7, 15)  # a different lesion per image
        lesion_rgb(box=box).save(images / f"ISIC_{k:07d}.jpg", quality=95)
        lesion_mask(box=box).save(masks / f"ISIC_{k:07d}_Segmentation.png")
    (images / "README.txt").write_text("test set")
    return images, masks


def test_heldout_split_is_seeded_disjoint_and_recorded(layout):
    images, masks = layout
    whole = load_isic(images, masks, size=8)
    split = load_isic(images, masks, size=8, heldout=2, seed=3)
    assert len(split) == 3 and len(split.heldout) == 2
    assert sorted(split.ids + split.heldout.ids) == whole.ids and not set(split.ids) & set(split.heldout.ids)
    for part in (split, split.heldout):  # each image keeps its own mask
        rows = [whole.ids.index(i) for i in part.ids]
        assert np.array_equal(part.images, whole.images[rows]) and np.array_equal(part.masks, whole.masks[rows])
    again = load_isic(images, masks, size=8, heldout=2, seed=3)
    assert again.heldout.ids == split.heldout.ids
    assert len({tuple(load_isic(images, masks, size=8, heldout=2, seed=s).heldout.ids) for s in range(8)}) > 1
    held = split.provenance["heldout"]
    assert held["source"] == "split" and held["seed"] == 3 and held["count"] == 2 and held["of"] == 5
    assert split.provenance["count"] == 3


def test_heldout_folders_are_read_whole_and_checksummed(layout, tmp_path):
    images, masks = layout
    test_images, test_masks = make_test_layout(tmp_path)
    ds = load_isic(images, masks, size=8, heldout_images_dir=test_images, heldout_masks_dir=test_masks)
    assert len(ds) == 5 and ds.heldout.ids == [f"ISIC_{k:07d}" for k in (100, 101, 102)]
    alone = load_isic(test_images, test_masks, size=8)
    assert np.array_equal(ds.heldout.images, alone.images) and np.array_equal(ds.heldout.masks, alone.masks)
    held = ds.provenance["heldout"]
    assert held["source"] == "folders" and held["count"] == 3 and held["sha256"] == alone.provenance["sha256"]
    # the provenance survives the file
    out = tmp_path / "isic.npz"
    save_dataset(ds, out)
    assert load_dataset(out).provenance["heldout"] == held and load_dataset(out).heldout.ids == ds.heldout.ids


def test_heldout_errors(layout, tmp_path):
    images, masks = layout
    test_images, test_masks = make_test_layout(tmp_path)
    with pytest.raises(DatasetError, match="heldout_masks_dir must be given with heldout_images_dir"):
        load_isic(images, masks, size=8, heldout_images_dir=test_images)
    with pytest.raises(DatasetError, match="heldout_images_dir must be given with heldout_masks_dir"):
        load_isic(images, masks, size=8, heldout_masks_dir=test_masks)
    with pytest.raises(DatasetError, match="use one of them"):
        load_isic(images, masks, size=8, heldout=2, heldout_images_dir=test_images, heldout_masks_dir=test_masks)
    with pytest.raises(DatasetError, match="leave images to train on"):
        load_isic(images, masks, size=8, heldout=5)
    # a "test" folder holding training images is no held-out set
    with pytest.raises(DatasetError, match="ids are also in"):
        load_isic(images, masks, size=8, heldout_images_dir=images, heldout_masks_dir=masks)
    with pytest.raises(DatasetError, match="data.heldout"):
        prepare_dataset(isic_config(images, masks, size=8, heldout=-1))


def test_prepare_isic_heldout_from_config(layout, tmp_path):
    images, masks = layout
    test_images, test_masks = make_test_layout(tmp_path)
    folders = prepare_dataset(isic_config(images, masks, size=8, heldout_images_dir=str(test_images),
                                          heldout_masks_dir=str(test_masks), heldout=0, seed=0))
    assert len(folders.heldout) == 3
    split = prepare_dataset(isic_config(images, masks, size=8, heldout=1, seed=None))
    assert len(split) == 4 and split.provenance["heldout"]["seed"] == 0  # null seed is seed 0
    assert prepare_dataset(isic_config(images, masks, size=8)).heldout is None


def test_source_files_are_every_image_and_mask_of_the_folders(layout, tmp_path):
    from unetscape.data.isic import source_files

    images, masks = layout
    test_images, test_masks = make_test_layout(tmp_path)
    files = source_files(isic_config(images, masks, num_images=2, heldout_images_dir=str(test_images),
                                     heldout_masks_dir=str(test_masks)))
    expected = {str(p) for folder in (images, masks, test_images, test_masks) for p in folder.iterdir()
                if p.suffix in (".jpg", ".png") and "superpixels" not in p.name}
    assert set(files) == expected and len(files) == 2 * 5 + 2 * 3  # all five pairs, not the first two only
