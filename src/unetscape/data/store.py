"""The prepared dataset: one validated in-memory form and one `.npz` file on disk.

Every later stage (training, landscapes) reads the same file, so it is checked on the way in
and on the way out: a bad array is reported here, with its name, instead of as a shape error
deep inside a training loop.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unetscape.atomic import atomic_path

NPZ_KEYS = ("images", "masks", "ids", "provenance")
# The held-out part (never seen in training) is stored beside the training part under these
# keys; a file without them has no held-out part.
HELDOUT_KEYS = ("heldout_images", "heldout_masks", "heldout_ids")
# Image channels: RGB, or grayscale (the model's input channels follow the data).
CHANNELS = (3, 1)


class DatasetError(ValueError):
    """A dataset, its file or its source is not what the workflow needs."""


@dataclass
class Dataset:
    """Images uint8 N×H×W×C (C = 3, RGB, or 1, grayscale), masks uint8 N×H×W in {0, 1}, one id
    per image, provenance.

    `heldout` is the part of the data set that training never sees (a Dataset of its own,
    same image size, ids distinct from the training ids), or None.
    """

    images: np.ndarray
    masks: np.ndarray
    ids: list[str]
    provenance: dict = field(default_factory=dict)
    heldout: "Dataset | None" = None

    def __post_init__(self) -> None:
        images, masks = self.images, self.masks
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
            raise DatasetError(f"images must be a uint8 array, got {_describe(images)}")
        if images.ndim != 4 or images.shape[-1] not in CHANNELS:
            raise DatasetError(f"images must have shape N×H×W×C with C 3 (RGB) or 1 (grayscale), got {images.shape}")
        if not isinstance(masks, np.ndarray) or masks.dtype != np.uint8:
            raise DatasetError(f"masks must be a uint8 array, got {_describe(masks)}")
        if masks.shape != images.shape[:3]:
            raise DatasetError(
                f"masks must have shape {images.shape[:3]} to match images, got {masks.shape}"
            )
        if len(images) == 0:
            raise DatasetError("dataset has no images")
        # uint8 cannot be negative, so the maximum alone decides whether masks are binary.
        if masks.max() > 1:
            raise DatasetError(f"masks must hold only 0 and 1, found value {int(masks.max())}")
        # Masks read wrongly (a colour or 0/1 mask taken for all background) look like this;
        # a model trained on them learns to predict nothing and every number is meaningless.
        if not masks.any():
            raise DatasetError(
                f"every one of the {len(masks)} masks is empty (no lesion pixel): check how the masks "
                "are stored (README, Data: background 0, lesion any other value)"
            )
        if not isinstance(self.ids, list) or not all(isinstance(i, str) for i in self.ids):
            raise DatasetError("ids must be a list of strings")
        if len(self.ids) != len(images):
            raise DatasetError(f"got {len(self.ids)} ids for {len(images)} images")
        if len(set(self.ids)) != len(self.ids):
            raise DatasetError("ids must be unique")
        if not isinstance(self.provenance, dict):
            raise DatasetError(f"provenance must be a dict, got {type(self.provenance).__name__}")
        try:
            json.dumps(self.provenance)
        except (TypeError, ValueError) as err:
            raise DatasetError(f"provenance must be JSON-serialisable: {err}") from None
        if self.heldout is not None:
            if not isinstance(self.heldout, Dataset) or self.heldout.heldout is not None:
                raise DatasetError("heldout must be a Dataset without a held-out part of its own")
            if self.heldout.images.shape[1:] != images.shape[1:]:
                raise DatasetError(
                    f"held-out images have shape {self.heldout.images.shape[1:]}, "
                    f"training images {images.shape[1:]}"
                )
            shared = set(self.ids) & set(self.heldout.ids)
            if shared:
                raise DatasetError(f"ids {sorted(shared)[:3]} are in both the training and the held-out part")

    def __len__(self) -> int:
        return len(self.images)


def _describe(x: object) -> str:
    if isinstance(x, np.ndarray):
        return f"array of dtype {x.dtype}"
    return type(x).__name__


def save_dataset(ds: Dataset, path: str | os.PathLike) -> None:
    """Write `ds` to one uncompressed `.npz`; a crash leaves no partial file behind."""
    provenance = json.dumps(ds.provenance, sort_keys=True)
    # np.savez appends ".npz" to a bare filename (and atomic_path's temp name ends in ".tmp"),
    # so hand it an open file instead.
    heldout = {}
    if ds.heldout is not None:
        heldout = {
            "heldout_images": ds.heldout.images,
            "heldout_masks": ds.heldout.masks,
            "heldout_ids": np.array(ds.heldout.ids, dtype=np.str_),
        }
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            images=ds.images,
            masks=ds.masks,
            ids=np.array(ds.ids, dtype=np.str_),
            provenance=np.array(provenance, dtype=np.str_),
            **heldout,
        )


def load_dataset(path: str | os.PathLike) -> Dataset:
    """Read and validate a dataset written by `save_dataset`."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: dataset file not found")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):  # a bare .npy array
            raise DatasetError(f"{path}: not an .npz archive")
        with archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise DatasetError(f"{path}: missing keys {missing} (has {archive.files})")
            arrays = {key: _read_array(archive, key, path) for key in NPZ_KEYS}
            present = [key for key in HELDOUT_KEYS if key in archive.files]
            if present and len(present) != len(HELDOUT_KEYS):
                raise DatasetError(f"{path}: has {present} but not all of {list(HELDOUT_KEYS)}")
            arrays.update({key: _read_array(archive, key, path) for key in present})
    except DatasetError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DatasetError(f"{path}: not a readable .npz archive ({err})") from None

    ids, provenance = arrays["ids"], arrays["provenance"]
    for key in ("ids", "heldout_ids"):
        if key in arrays and (arrays[key].dtype.kind != "U" or arrays[key].ndim != 1):
            raise DatasetError(f"{path}: key {key!r} must be a 1-D unicode array, got {arrays[key].dtype}")
    if provenance.dtype.kind != "U" or provenance.ndim != 0:
        raise DatasetError(f"{path}: key 'provenance' must be a 0-d unicode array (JSON text)")
    try:
        provenance = json.loads(str(provenance[()]))
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: key 'provenance' is not valid JSON ({err})") from None
    try:
        heldout = None
        if "heldout_images" in arrays:
            heldout = Dataset(
                images=arrays["heldout_images"],
                masks=arrays["heldout_masks"],
                ids=[str(i) for i in arrays["heldout_ids"]],
                provenance={"part": "heldout"},
            )
        return Dataset(
            images=arrays["images"],
            masks=arrays["masks"],
            ids=[str(i) for i in ids],
            provenance=provenance,
            heldout=heldout,
        )
    except DatasetError as err:
        raise DatasetError(f"{path}: {err}") from None


def _read_array(archive: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as err:  # object arrays refuse to load without pickle
        raise DatasetError(f"{path}: key {key!r} cannot be read without pickle ({err})") from None
