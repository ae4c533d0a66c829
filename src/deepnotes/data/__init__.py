"""Datasets: real loaders with the standard splits, all kept in memory as uint8 arrays.

    data = load_dataset("fashion-mnist")          # -> ImageData
    data.train_x.shape                             # (60000, 1, 28, 28), uint8
    list_datasets()                                # registered names

Every loader is registered in deepnotes.registry (register_dataset) by deepnotes.data.datasets
and deepnotes.data.scenes when this package is imported.
Where a file comes from is decided in deepnotes.data.sources (explicit --data-dir, then
$DEEPNOTES_DATA, then a system copy, then the user cache, then a verified download).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepnotes.registry import DATASETS, DatasetEntry


@dataclass
class ImageData:
    """A labelled image dataset with its standard train/test split.

    Images are uint8 in (N, C, H, W) order; labels are int64 in [0, num_classes).
    `source` says where the data was read from (a directory, or "scikit-learn").
    """

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: tuple[str, ...]
    source: str

    @property
    def in_chans(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def img_size(self) -> tuple[int, int]:
        return int(self.train_x.shape[2]), int(self.train_x.shape[3])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (
            f"ImageData({self.name!r}, train={len(self.train_y)}, test={len(self.test_y)}, "
            f"shape={tuple(self.train_x.shape[1:])}, classes={self.num_classes}, source={self.source!r})"
        )


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = True) -> ImageData:
    """Load the registered dataset `name` (see `deepnotes list`)."""
    return DATASETS.get(name).loader(data_dir=data_dir, download=download)


def list_datasets(pattern: str | None = None) -> list[str]:
    return DATASETS.names(pattern)


def get_dataset_entry(name: str) -> DatasetEntry:
    return DATASETS.get(name)


from deepnotes.data import datasets as _datasets  # noqa: E402,F401  (registers the loaders)
from deepnotes.data import scenes as _scenes  # noqa: E402,F401  (registers fashion-scenes, digit-scenes)
