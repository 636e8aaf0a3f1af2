"""Turn the `data:` section of the workflow config into a Dataset."""

from __future__ import annotations

from .isic import load_isic
from .store import Dataset, DatasetError
from .synthetic import make_synthetic

SOURCES = ("synthetic", "isic")
SYNTHETIC_DEFAULTS = {"num_images": 900, "size": 64, "seed": 0, "hair": True, "vignette": True, "heldout": 0}


def prepare_dataset(data_cfg: dict) -> Dataset:
    """Build the dataset that `data_cfg` (the config's `data:` mapping) describes.

    synthetic: num_images, size, seed, hair, vignette, heldout (each optional, defaults above).
    isic: images_dir, masks_dir, size (required); num_images (optional, null = all images);
    the held-out part from heldout_images_dir and heldout_masks_dir, or a split of `heldout`
    images seeded by `seed` (each optional).
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
    if source == "isic":
        return with_config_names(
            load_isic,
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
