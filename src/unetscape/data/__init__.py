"""Datasets for the workflow: synthetic dermoscopy-like images, any folder of images and masks
(ISIC's layout a preset of it), stored as one .npz.

May import the basics (atomic, device, seeding) only."""

from .folder import load_folder
from .isic import load_isic
from .prepare import prepare_dataset
from .store import Dataset, DatasetError, load_dataset, save_dataset
from .synthetic import make_synthetic

__all__ = [
    "Dataset",
    "DatasetError",
    "load_dataset",
    "load_folder",
    "load_isic",
    "make_synthetic",
    "prepare_dataset",
    "save_dataset",
]
