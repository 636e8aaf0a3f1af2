"""Read the ISIC skin-lesion segmentation data (2016 Part 1 layout) into a Dataset.

A folder of `ISIC_<7 digits>.jpg` images and a folder of `ISIC_<id>_Segmentation.png` masks
(ISIC 2017/2018 spell it `_segmentation.png`). Other files in the folders — superpixel maps,
licence and metadata files — are ignored. Every image needs its mask and every mask its
image; either one alone is an error naming the file (an image saved under another name would
otherwise vanish from the data set without a word).

Held-out part: ISIC's own test folders (the 2016 test set has the same naming), or a seeded
split of the training folders; the provenance says which, with the folders' checksum or the
split's seed and rule.

Mask rule. Background is 0 (black), or fully transparent. A pixel's level is its brightest
colour channel, so a red lesion on black counts like a white one. Then:
- a mask with one non-zero level (0/255, 0/1, red on black, 0/65535) is lesion wherever it is
  not 0;
- a mask with several non-zero levels is read as an anti-aliased 0..full-scale mask (8 or 16
  bits) and thresholded at half scale (> 127 for 8 bits), but only if some level lies above
  half scale: several levels all at or below it (a label map, or a 0/1 mask with stray values)
  are ambiguous and refused, naming the file.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .store import Dataset, DatasetError

IMAGE_NAME = re.compile(r"^(ISIC_\d{7})\.jpe?g$", re.IGNORECASE)
MASK_NAME = re.compile(r"^(ISIC_\d{7})_[Ss]egmentation\.png$")


# The seeded split of the training folder draws from SeedSequence(seed, spawn_key=(SPLIT_STREAM,)),
# a stream of its own, so the split never shares random numbers with training or the landscapes.
SPLIT_STREAM = 1 << 29


def load_isic(
    images_dir: str | os.PathLike,
    masks_dir: str | os.PathLike,
    size: int,
    limit: int | None = None,
    heldout_images_dir: str | os.PathLike | None = None,
    heldout_masks_dir: str | os.PathLike | None = None,
    heldout: int = 0,
    seed: int = 0,
) -> Dataset:
    """Pair images and masks by ISIC id (sorted), resize to size×size, binarise masks.

    The held-out part is either every pair in `heldout_images_dir`/`heldout_masks_dir` (ISIC's
    own test set), or `heldout` pairs drawn, seeded by `seed`, from the (first `limit`) pairs of
    the training folders, which then train on the rest; or there is none.
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise DatasetError(f"size must be a positive integer, got {size!r}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise DatasetError(f"limit must be a positive integer or None, got {limit!r}")
    for name, value in (("heldout", heldout), ("seed", seed)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise DatasetError(f"{name} must be an integer >= 0, got {value!r}")
    if (heldout_images_dir is None) != (heldout_masks_dir is None):
        given, missing = "heldout_images_dir", "heldout_masks_dir"
        if heldout_images_dir is None:
            given, missing = missing, given
        raise DatasetError(f"{missing} must be given with {given} (a held-out set needs its images and masks)")
    if heldout_images_dir is not None and heldout:
        raise DatasetError(
            f"heldout is {heldout}, but heldout_images_dir names a held-out folder already: "
            "use one of them (heldout 0 with the folders, or a seeded split without them)"
        )

    images, masks, ids, digests = read_pairs(images_dir, masks_dir, size, limit)
    provenance = {
        "source": "isic",
        "images_dir": str(images_dir),
        "masks_dir": str(masks_dir),
        "size": size,
        "count": len(ids),
        "sha256": files_sha256(digests),
        "heldout": None,
    }
    if heldout_images_dir is not None:
        h_images, h_masks, h_ids, h_digests = read_pairs(heldout_images_dir, heldout_masks_dir, size, None)
        shared = sorted(set(ids) & set(h_ids))
        if shared:
            raise DatasetError(
                f"{heldout_images_dir}: {len(shared)} ids are also in {images_dir} (first {shared[0]}); "
                "a held-out set must hold images training never sees"
            )
        provenance["heldout"] = {
            "source": "folders",
            "images_dir": str(heldout_images_dir),
            "masks_dir": str(heldout_masks_dir),
            "count": len(h_ids),
            "sha256": files_sha256(h_digests),
        }
        part = Dataset(h_images, h_masks, h_ids, {"part": "heldout"})
        return Dataset(images, masks, ids, provenance, heldout=part)
    if heldout:
        if heldout >= len(ids):
            raise DatasetError(
                f"heldout of {heldout} images, but the training folder gives {len(ids)}: "
                "a split must leave images to train on"
            )
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SPLIT_STREAM,)))
        held = np.zeros(len(ids), dtype=bool)
        held[rng.choice(len(ids), size=heldout, replace=False)] = True
        provenance["count"] = int((~held).sum())
        provenance["heldout"] = {
            "source": "split",
            "count": heldout,
            "of": len(ids),
            "seed": seed,
            "rule": f"default_rng(SeedSequence(seed, spawn_key=({SPLIT_STREAM},))).choice(of, count, "
            "replace=False) over the ids in sorted order",
        }
        part = Dataset(images[held], masks[held], [i for i, h in zip(ids, held) if h], {"part": "heldout"})
        train = [i for i, h in zip(ids, held) if not h]
        return Dataset(images[~held], masks[~held], train, provenance, heldout=part)
    return Dataset(images=images, masks=masks, ids=ids, provenance=provenance)


def pair_files(
    images_dir: str | os.PathLike, masks_dir: str | os.PathLike, limit: int | None = None
) -> tuple[list[str], dict[str, Path], dict[str, Path]]:
    """The ids of the (first `limit`) image/mask pairs of two folders, and each id's image and
    mask file, from the folder listings alone (no file is opened), so the workflow can refuse
    an unpaired file when the config is loaded, before any job runs."""
    image_files = find_files(images_dir, IMAGE_NAME, "images")
    mask_files = find_files(masks_dir, MASK_NAME, "masks")
    if not image_files:
        raise DatasetError(f"{images_dir}: no ISIC_<id>.jpg images in this folder")

    orphans = sorted(set(mask_files) - set(image_files))
    if orphans:
        raise DatasetError(
            f"{mask_files[orphans[0]]}: mask without an image {orphans[0]}.jpg in {images_dir}"
            + (f" (and {len(orphans) - 1} more masks without images)" if len(orphans) > 1 else "")
        )
    if limit is not None and limit > len(image_files):
        raise DatasetError(
            f"limit of {limit} images, but {images_dir} holds {len(image_files)}; use None for all of them"
        )
    ids = sorted(image_files)[:limit]
    missing = [i for i in ids if i not in mask_files]
    if missing:
        raise DatasetError(
            f"{image_files[missing[0]]}: no mask {missing[0]}_Segmentation.png in {masks_dir}"
            + (f" (and {len(missing) - 1} more images without masks)" if len(missing) > 1 else "")
        )
    return ids, image_files, mask_files


def read_pairs(
    images_dir: str | os.PathLike, masks_dir: str | os.PathLike, size: int, limit: int | None
) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, bytes]]:
    """The (first `limit`) image/mask pairs of two folders: images, masks, ids, file digests."""
    ids, image_files, mask_files = pair_files(images_dir, masks_dir, limit)

    images = np.empty((len(ids), size, size, 3), dtype=np.uint8)
    masks = np.empty((len(ids), size, size), dtype=np.uint8)
    file_digests = {}  # file name -> sha256 of its bytes (not the bytes: ISIC is ~1 GB)
    for k, isic_id in enumerate(ids):
        image, image_bytes = read_image(image_files[isic_id])
        mask, mask_bytes = read_image(mask_files[isic_id])
        if mask.size != image.size:
            raise DatasetError(
                f"{mask_files[isic_id]}: mask is {mask.size[0]}×{mask.size[1]} but its image "
                f"{image_files[isic_id].name} is {image.size[0]}×{image.size[1]} (after EXIF "
                "orientation)"
            )
        images[k] = resize_image(image.convert("RGB"), size)
        masks[k] = resize_mask(lesion_pixels(mask, mask_files[isic_id]), size)
        file_digests[image_files[isic_id].name] = hashlib.sha256(image_bytes).digest()
        file_digests[mask_files[isic_id].name] = hashlib.sha256(mask_bytes).digest()

    if not masks.any():
        raise DatasetError(
            f"{masks_dir}: every one of the {len(ids)} masks is empty once read (no lesion pixel); "
            "check how they are stored (README, Data: background 0, lesion any other value)"
        )
    return images, masks, ids, file_digests


def source_files(data_cfg: dict) -> list[str]:
    """Every file an ISIC data set may be built from: each image and mask in its folders.

    All of them, not only the first `num_images`: an added file can change which are first.
    Missing folders give no files here; reading the data set names them.
    """
    files = []
    for images_key, masks_key in (("images_dir", "masks_dir"), ("heldout_images_dir", "heldout_masks_dir")):
        for key, pattern in ((images_key, IMAGE_NAME), (masks_key, MASK_NAME)):
            folder = data_cfg.get(key)
            if folder is not None and Path(folder).is_dir():
                files += sorted(
                    os.path.join(folder, name) for name in os.listdir(folder) if pattern.match(name)
                )
    return files


def find_files(folder: str | os.PathLike, pattern: re.Pattern, what: str) -> dict[str, Path]:
    """Map ISIC id -> file for every file in `folder` whose name matches `pattern`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: {what} folder not found")
    found: dict[str, Path] = {}
    for path in folder.iterdir():
        match = pattern.match(path.name)
        if match is None or not path.is_file():
            continue
        isic_id = match.group(1)
        if isic_id in found:
            raise DatasetError(f"{path}: second file for {isic_id} (also {found[isic_id].name})")
        found[isic_id] = path
    return found


def read_image(path: Path) -> tuple[Image.Image, bytes]:
    """Decode a file in its displayed orientation; also return its bytes for the checksum."""
    # Decode from the bytes that are hashed, so the checksum describes exactly what was read.
    data = path.read_bytes()
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        # Cameras store rotated pixels plus an EXIF Orientation tag; annotations follow the
        # displayed picture.
        image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise DatasetError(f"{path}: cannot read image ({err})") from None
    return image, data


def resize_image(image: Image.Image, size: int) -> np.ndarray:
    # BOX averages over the source area when shrinking; BILINEAR interpolates when enlarging.
    shrinking = image.width >= size and image.height >= size
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    return np.asarray(image.resize((size, size), resample), dtype=np.uint8)


def lesion_pixels(mask: Image.Image, path: Path) -> np.ndarray:
    """Boolean H×W lesion map of a mask as stored, by the mask rule of the module docstring."""
    if mask.mode in ("P", "PA"):  # palette index 0 need not be black: read the colours
        mask = mask.convert("RGBA")
    elif mask.mode == "1":
        mask = mask.convert("L")
    elif mask.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        mask = mask.convert("RGB")
    bands = mask.getbands()
    values = np.asarray(mask)
    if values.ndim == 2:
        values = values[..., None]
    colour = values[..., [k for k, band in enumerate(bands) if band != "A"]]
    level = colour.max(axis=-1)
    if "A" in bands:
        level = np.where(values[..., bands.index("A")] == 0, 0, level)
    painted = level[level != 0]
    if painted.size == 0 or painted.min() == painted.max():
        return level != 0
    full_scale = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}.get(level.dtype)
    if full_scale is None or painted.max() <= full_scale // 2:
        shown = ", ".join(str(v) for v in np.unique(painted)[:6])
        scale = f"of at most {full_scale // 2}, half of full scale {full_scale}" if full_scale else "in a float or 32-bit mask"
        raise DatasetError(
            f"{path}: ambiguous mask: several non-zero levels ({shown}{', ...' if len(np.unique(painted)) > 6 else ''}) "
            f"{scale}, so it is neither a two-level mask nor an anti-aliased 0..{full_scale or 'max'} "
            "mask; save it with background 0 and one lesion value (see the README, Data)"
        )
    return level > full_scale // 2


def resize_mask(lesion: np.ndarray, size: int) -> np.ndarray:
    # NEAREST on the binary map, so no interpolated label values appear.
    binary = Image.fromarray(lesion.astype(np.uint8) * 255)
    resized = binary.resize((size, size), Image.Resampling.NEAREST)
    return (np.asarray(resized) > 127).astype(np.uint8)


def files_sha256(file_digests: dict[str, bytes]) -> str:
    """One sha256 over every file: its name and the sha256 of its bytes, in name order.

    Any changed, added, removed or renamed input file changes the result.
    """
    h = hashlib.sha256()
    for name in sorted(file_digests):
        encoded = name.encode()
        # Length-prefix the name so that no two different file sets hash alike.
        h.update(len(encoded).to_bytes(8, "little"))
        h.update(encoded)
        h.update(file_digests[name])
    return h.hexdigest()
