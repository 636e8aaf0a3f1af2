"""A small random data set written where landscape jobs read it, for tests of the jobs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unetscape.data import Dataset, save_dataset


def write_random_dataset(path: Path, count: int, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random RGB images with random masks, saved to `path`; returns (images, masks)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, (count, size, size, 3), dtype=np.uint8)
    masks = (rng.random((count, size, size)) > 0.6).astype(np.uint8)
    save_dataset(Dataset(images, masks, [f"img{k}" for k in range(count)], {"source": "test"}), path)
    return images, masks
