"""The ISIC skin-lesion segmentation layout (2016 Part 1), a preset of the folder data source.

A folder of `ISIC_<7 digits>.jpg` images and a folder of `ISIC_<id>_Segmentation.png` masks
(ISIC 2017/2018 spell it `_segmentation.png`). Other files in the folders — superpixel maps,
licence and metadata files — are ignored. Everything else (pairing, channels, the mask rule,
the held-out part, provenance) is the folder source's (`folder.py`).
"""

from __future__ import annotations

import os
import re

from .folder import Naming, load_folder
from .folder import source_files as folder_source_files
from .store import Dataset

IMAGE_NAME = re.compile(r"^(ISIC_\d{7})\.jpe?g$", re.IGNORECASE)
MASK_NAME = re.compile(r"^(ISIC_\d{7})_[Ss]egmentation\.png$")

ISIC_NAMING = Naming(
    source="isic",
    image=IMAGE_NAME,
    mask=MASK_NAME,
    image_words="ISIC_<id>.jpg images",
    mask_name=lambda key: f"{key}_Segmentation.png",
    image_name=lambda key: f"{key}.jpg",
)


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
    """`folder.load_folder` with ISIC's file names (see there for the arguments)."""
    return load_folder(images_dir, masks_dir, size, limit, heldout_images_dir, heldout_masks_dir, heldout, seed,
                       naming=ISIC_NAMING)


def source_files(data_cfg: dict) -> list[str]:
    """Every image and mask file of the configured ISIC folders (`folder.source_files`)."""
    return folder_source_files(data_cfg, ISIC_NAMING)
