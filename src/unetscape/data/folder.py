"""Read any binary segmentation data set stored as a folder of images and a folder of masks.

Images and masks are paired by file name: an image `<id>.<ext>` and its mask
`<id><mask_suffix>.<ext>`, where `<ext>` is any of png, jpg, jpeg, tif, tiff, bmp in any case
(Kvasir-SEG: same stems, suffix ""; ISIC: `_Segmentation`). Every image needs its mask and
every mask its image; either one alone is an error naming the file (an image saved under
another name would otherwise vanish from the data set without a word). Files of other kinds
(licences, metadata) are ignored. Images and masks may share one folder when the suffix is
not empty: the masks are then the files with the suffix.

Channels. The images become grayscale (1 channel) when every image of the folders is stored
in a grayscale mode (L, LA, 1, 16-bit I;16), else RGB (3 channels: grayscale and palette
images among colour ones are turned into RGB). The model's input channels follow the data.

Held-out part: a second pair of folders read whole, or a seeded split of the training
folders; the provenance says which, with the folders' checksum or the split's seed and rule.

Mask rule. Background is 0 (black), or fully transparent. A pixel's level is its brightest
colour channel, so a red lesion on black counts like a white one. Then:
- a mask with one non-zero level (0/255, 0/1, red on black, 0/65535) is foreground wherever
  it is not 0;
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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageOps

from .store import Dataset, DatasetError

EXTENSIONS = ("png", "jpg", "jpeg", "tif", "tiff", "bmp")
_EXTENSION = r"\.(?:" + "|".join(EXTENSIONS) + r")"
# PIL modes whose pixels are one grey level (LA: with alpha, which is dropped).
GRAYSCALE_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N")
_SIXTEEN_BIT = ("I", "I;16", "I;16B", "I;16L", "I;16N")

# The seeded split of the training folder draws from SeedSequence(seed, spawn_key=(SPLIT_STREAM,)),
# a stream of its own, so the split never shares random numbers with training or the landscapes.
SPLIT_STREAM = 1 << 29


@dataclass(frozen=True)
class Naming:
    """How a data source names its files: group 1 of each pattern is the id pairing them."""

    source: str  # provenance "source" of a data set read with this naming
    image: re.Pattern
    mask: re.Pattern
    image_words: str  # what the image files look like, for messages
    mask_name: Callable[[str], str]  # the expected mask file of an id, for messages
    image_name: Callable[[str], str]  # the expected image file of an id, for messages

    def is_mask(self, name: str) -> bool:
        return self.mask.match(name) is not None


def folder_naming(mask_suffix: str = "") -> Naming:
    """Images `<id>.<ext>`, masks `<id><mask_suffix>.<ext>`, any supported extension, any case."""
    if not isinstance(mask_suffix, str):
        raise DatasetError(f"mask_suffix must be a string, got {mask_suffix!r}")
    return Naming(
        source="folder",
        image=re.compile(r"^(.+?)" + _EXTENSION + "$", re.IGNORECASE),
        mask=re.compile(r"^(.+?)" + re.escape(mask_suffix) + _EXTENSION + "$", re.IGNORECASE),
        image_words="images (" + ", ".join(f".{e}" for e in EXTENSIONS) + ")",
        mask_name=lambda key: f"{key}{mask_suffix}.<{'|'.join(EXTENSIONS)}>",
        image_name=lambda key: f"{key}.<{'|'.join(EXTENSIONS)}>",
    )


def load_folder(
    images_dir: str | os.PathLike,
    masks_dir: str | os.PathLike,
    size: int,
    limit: int | None = None,
    heldout_images_dir: str | os.PathLike | None = None,
    heldout_masks_dir: str | os.PathLike | None = None,
    heldout: int = 0,
    seed: int = 0,
    mask_suffix: str = "",
    naming: Naming | None = None,
) -> Dataset:
    """Pair images and masks by id (sorted), resize to size×size, binarise masks.

    `naming` (default: `folder_naming(mask_suffix)`) says how files are named. The held-out
    part is either every pair in `heldout_images_dir`/`heldout_masks_dir`, or `heldout` pairs
    drawn, seeded by `seed`, from the (first `limit`) pairs of the training folders, which then
    train on the rest; or there is none.
    """
    naming = naming or folder_naming(mask_suffix)
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

    folders = [(images_dir, masks_dir)] + ([(heldout_images_dir, heldout_masks_dir)] if heldout_images_dir else [])
    channels = folders_channels(folders, naming)
    images, masks, ids, digests = read_pairs(images_dir, masks_dir, size, limit, naming, channels)
    provenance = {
        "source": naming.source,
        "images_dir": str(images_dir),
        "masks_dir": str(masks_dir),
        "size": size,
        "channels": channels,
        "count": len(ids),
        "sha256": files_sha256(digests),
        "heldout": None,
    }
    if naming.source == "folder":
        provenance["mask_suffix"] = mask_suffix
    if heldout_images_dir is not None:
        h_images, h_masks, h_ids, h_digests = read_pairs(
            heldout_images_dir, heldout_masks_dir, size, None, naming, channels
        )
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


def find_pairs(
    images_dir: str | os.PathLike, masks_dir: str | os.PathLike, naming: Naming
) -> tuple[dict[str, Path], dict[str, Path]]:
    """(id -> image file, id -> mask file) of two folders, every image with its mask and every
    mask with its image (else a DatasetError naming the first file alone)."""
    same = Path(images_dir).is_dir() and Path(images_dir).resolve() == Path(masks_dir).resolve()
    mask_files = find_files(masks_dir, naming.mask, "masks")
    # Images and masks in one folder: the masks are not images of their own.
    image_files = find_files(images_dir, naming.image, "images", skip=naming.is_mask if same else None)
    if same and not image_files and find_files(images_dir, naming.image, "images"):
        raise DatasetError(
            f"{masks_dir}: images and masks share this folder, so the masks need a mask_suffix that the "
            "images do not have"
        )
    if not image_files:
        raise DatasetError(f"{images_dir}: no {naming.image_words} in this folder")
    orphans = sorted(set(mask_files) - set(image_files))
    if orphans:
        raise DatasetError(
            f"{mask_files[orphans[0]]}: mask without an image {naming.image_name(orphans[0])} in {images_dir}"
            + (f" (and {len(orphans) - 1} more masks without images)" if len(orphans) > 1 else "")
        )
    return image_files, mask_files


def paired_ids(
    images_dir: str | os.PathLike, masks_dir: str | os.PathLike, limit: int | None, naming: Naming
) -> tuple[list[str], dict[str, Path], dict[str, Path]]:
    """The sorted ids of the (first `limit`) images of two folders, each with its mask, and the
    id -> file maps; a DatasetError names the first file without its partner."""
    image_files, mask_files = find_pairs(images_dir, masks_dir, naming)
    if limit is not None and limit > len(image_files):
        raise DatasetError(
            f"limit of {limit} images, but {images_dir} holds {len(image_files)}; use None for all of them"
        )
    ids = sorted(image_files)[:limit]
    missing = [i for i in ids if i not in mask_files]
    if missing:
        raise DatasetError(
            f"{image_files[missing[0]]}: no mask {naming.mask_name(missing[0])} in {masks_dir}"
            + (f" (and {len(missing) - 1} more images without masks)" if len(missing) > 1 else "")
        )
    return ids, image_files, mask_files


def read_pairs(
    images_dir: str | os.PathLike,
    masks_dir: str | os.PathLike,
    size: int,
    limit: int | None,
    naming: Naming,
    channels: int,
) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, bytes]]:
    """The (first `limit`) image/mask pairs of two folders: images, masks, ids, file digests."""
    ids, image_files, mask_files = paired_ids(images_dir, masks_dir, limit, naming)

    images = np.empty((len(ids), size, size, channels), dtype=np.uint8)
    masks = np.empty((len(ids), size, size), dtype=np.uint8)
    file_digests = {}  # file name -> sha256 of its bytes (not the bytes: ISIC is ~1 GB)
    for k, key in enumerate(ids):
        image, image_bytes = read_image(image_files[key])
        mask, mask_bytes = read_image(mask_files[key])
        if mask.size != image.size:
            raise DatasetError(
                f"{mask_files[key]}: mask is {mask.size[0]}×{mask.size[1]} but its image "
                f"{image_files[key].name} is {image.size[0]}×{image.size[1]} (after EXIF "
                "orientation)"
            )
        images[k] = resize_image(as_channels(image, channels, image_files[key]), size).reshape(size, size, channels)
        masks[k] = resize_mask(lesion_pixels(mask, mask_files[key]), size)
        # An image and its mask may have the same name in two folders: the key says which is which.
        image_key, mask_key = (
            (image_files[key].name, mask_files[key].name) if naming.source == "isic"
            else (f"image {image_files[key].name}", f"mask {mask_files[key].name}")
        )
        file_digests[image_key] = hashlib.sha256(image_bytes).digest()
        file_digests[mask_key] = hashlib.sha256(mask_bytes).digest()

    if not masks.any():
        raise DatasetError(
            f"{masks_dir}: every one of the {len(ids)} masks is empty once read (no foreground pixel); "
            "check how they are stored (README, Data: background 0, foreground any other value)"
        )
    return images, masks, ids, file_digests


def source_files(data_cfg: dict, naming: Naming | None = None) -> list[str]:
    """Every file a folder data set may be built from: each image and mask in its folders.

    All of them, not only the first `num_images`: an added file can change which are first.
    Missing folders give no files here; reading the data set names them.
    """
    naming = naming or folder_naming(data_cfg.get("mask_suffix") or "")
    files: set[str] = set()
    for images_key, masks_key in (("images_dir", "masks_dir"), ("heldout_images_dir", "heldout_masks_dir")):
        for key, pattern in ((images_key, naming.image), (masks_key, naming.mask)):
            folder = data_cfg.get(key)
            if folder is not None and Path(folder).is_dir():
                files.update(os.path.join(folder, name) for name in os.listdir(folder) if pattern.match(name))
    return sorted(files)


def find_files(
    folder: str | os.PathLike, pattern: re.Pattern, what: str, skip: Callable[[str], bool] | None = None
) -> dict[str, Path]:
    """Map id -> file for every file in `folder` whose name matches `pattern` (and not `skip`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: {what} folder not found")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        match = pattern.match(path.name)
        if match is None or not path.is_file() or (skip is not None and skip(path.name)):
            continue
        key = match.group(1)
        if key in found:
            raise DatasetError(f"{path}: second file for {key} (also {found[key].name})")
        found[key] = path
    return found


def folders_channels(folders: list[tuple], naming: Naming, strict: bool = True) -> int:
    """1 if every image of the folders is stored in a grayscale mode, else 3.

    Reads the file headers only, so a dry run can afford it. `strict=False` passes over folders
    and files that cannot be read (reading the data set names them), for the checks at config
    time; with none readable the answer is 3.
    """
    grey = 0
    for images_dir, masks_dir in folders:
        try:
            image_files, _ = find_pairs(images_dir, masks_dir, naming)
        except DatasetError:
            if strict:
                raise
            continue  # a missing folder or an unpaired file: the folder checks name it
        for path in image_files.values():
            mode = stored_mode(path, strict)
            if mode is not None and mode not in GRAYSCALE_MODES:
                return 3
            grey += mode is not None
    return 1 if grey else 3


def stored_mode(path: Path, strict: bool = True) -> str | None:
    try:
        with Image.open(path) as image:
            return image.mode
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        if not strict:
            return None
        raise DatasetError(f"{path}: cannot read image ({err})") from None


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


def as_channels(image: Image.Image, channels: int, path: Path) -> Image.Image:
    """The image as 8-bit grayscale (channels 1) or RGB (channels 3)."""
    if image.mode in _SIXTEEN_BIT:
        # 16-bit grey: PIL's own conversion clips at 255; scale the full range instead.
        values = np.asarray(image).astype(np.int64)
        if values.min() < 0 or values.max() > 65535:
            raise DatasetError(f"{path}: a {image.mode} image with values outside 0..65535; save it as 8 or 16 bits")
        image = Image.fromarray((values // 257).astype(np.uint8), mode="L")
    elif image.mode == "F":
        raise DatasetError(f"{path}: a floating-point image; save it as an 8- or 16-bit image")
    return image.convert("L" if channels == 1 else "RGB")


def resize_image(image: Image.Image, size: int) -> np.ndarray:
    # BOX averages over the source area when shrinking; BILINEAR interpolates when enlarging.
    shrinking = image.width >= size and image.height >= size
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    return np.asarray(image.resize((size, size), resample), dtype=np.uint8)


def lesion_pixels(mask: Image.Image, path: Path) -> np.ndarray:
    """Boolean H×W foreground map of a mask as stored, by the mask rule of the module docstring."""
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
            "mask; save it with background 0 and one foreground value (see the README, Data)"
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
