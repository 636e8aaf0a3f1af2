"""Datasets for the workflow: synthetic dermoscopy-like images or ISIC, stored as one .npz."""

from unetscape.data.isic import load_isic
from unetscape.data.prepare import prepare_dataset
from unetscape.data.store import Dataset, DatasetError, load_dataset, save_dataset
from unetscape.data.synthetic import make_synthetic

__all__ = [
    "Dataset",
    "DatasetError",
    "load_dataset",
    "load_isic",
    "make_synthetic",
    "prepare_dataset",
    "save_dataset",
]
