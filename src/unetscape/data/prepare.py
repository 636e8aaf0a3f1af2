"""Turn the `data:` section of the workflow config into a Dataset."""

from __future__ import annotations

from .folder import Naming, folder_naming, load_folder
from .folder import source_files as folder_files
from .isic import ISIC_NAMING
from .store import Dataset, DatasetError
from .synthetic import make_synthetic

SOURCES = ("synthetic", "isic", "folder")
# Folder sources: the generic one and the ISIC preset (ISIC's file names).
FOLDER_SOURCES = ("isic", "folder")
SYNTHETIC_DEFAULTS = {"num_images": 900, "size": 64, "seed": 0, "hair": True, "vignette": True, "heldout": 0}


def prepare_dataset(data_cfg: dict) -> Dataset:
    """Build the dataset that `data_cfg` (the config's `data:` mapping) describes.

    synthetic: num_images, size, seed, hair, vignette, heldout (each optional, defaults above).
    folder, isic: images_dir, masks_dir, size (required); num_images (optional, null = all
    images); the held-out part from heldout_images_dir and heldout_masks_dir, or a split of
    `heldout` images seeded by `seed` (each optional); folder: mask_suffix (default "").
    """
    if not isinstance(data_cfg, dict):
        raise DatasetError(f"data: expected a mapping, got {type(data_cfg).__name__}")
    source = require(data_cfg, "source")
    if source == "synthetic":
        # A key that is present but null means "use the default", as if it were left out.
        options = {
            key: default if data_cfg.get(key) is None else data_cfg[key]
            for key, default in SYNTHETIC_DEFAULTS.items()
        }
        return with_config_names(make_synthetic, **options)
    if source in FOLDER_SOURCES:
        return with_config_names(
            load_folder,
            naming=naming(data_cfg),
            images_dir=require(data_cfg, "images_dir"),
            masks_dir=require(data_cfg, "masks_dir"),
            size=require(data_cfg, "size"),
            limit=data_cfg.get("num_images"),
            heldout_images_dir=data_cfg.get("heldout_images_dir"),
            heldout_masks_dir=data_cfg.get("heldout_masks_dir"),
            heldout=data_cfg.get("heldout") or 0,
            seed=0 if data_cfg.get("seed") is None else data_cfg["seed"],
        )
    raise DatasetError(f"data.source: unknown source {source!r}, expected one of {SOURCES}")


def naming(data_cfg: dict) -> Naming:
    """How the configured folder source names its files."""
    if data_cfg["source"] == "isic":
        return ISIC_NAMING
    try:
        return folder_naming(data_cfg.get("mask_suffix") or "")
    except DatasetError as err:
        raise DatasetError(f"data.{err}") from None


def source_files(data_cfg: dict) -> list[str]:
    """Every file the configured data set may be built from (none for synthetic data)."""
    if data_cfg.get("source") not in FOLDER_SOURCES:
        return []
    return folder_files(data_cfg, naming(data_cfg))


def require(data_cfg: dict, key: str):
    if data_cfg.get(key) is None:
        raise DatasetError(f"data.{key}: required but missing")
    return data_cfg[key]


def with_config_names(build, **kwargs) -> Dataset:
    """Call `build`; a complaint about an argument names the config key instead."""
    try:
        return build(**kwargs)
    except DatasetError as err:
        # Argument checks start with the argument's name ("size must be ..."); `limit` is
        # called `num_images` in the config.
        arg = str(err).split(" ", 1)[0]
        if arg in kwargs:
            key = "num_images" if arg == "limit" else arg
            raise DatasetError(f"data.{key}: {err}") from None
        raise
