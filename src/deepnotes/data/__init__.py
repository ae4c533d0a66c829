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

from deepnotes.errors import DataError
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


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = True):
    """Load the registered dataset `name` (see `deepnotes list`), checked (check_data): an
    ImageData whose splits hold images (uint8 (N, C, H, W), the same size in both) and as many
    labels, or for a dataset of kind "pairs" a SentencePairs (deepnotes.data.pairs) with non-empty splits."""
    entry = DATASETS.get(name)
    data = entry.loader(data_dir=data_dir, download=download)
    check_data(data, entry.kind, str(getattr(data, "source", "") or name))
    return data


def _size(shape) -> str:
    return "x".join(map(str, shape))


def check_data(data, kind: str = "images", where: str = "", shape: tuple[int, int, int] | None = None):
    """A DataError naming `where` (the folder or file the data came from) unless both splits of
    `data` hold at least one image, uint8 (N, C, H, W) of one size (`shape` = (C, H, W) when the
    dataset must have that size), with one label per image; for kind "images" the labels must also
    be in 0..num_classes-1. Returns `data`. A dataset of 0 images would train 0 steps and report
    0% as a success; 1x1 images would pass for Fashion-MNIST."""
    if kind == "pairs":  # sentence pairs have their own check (non-empty splits of (str, str))
        from deepnotes.data.pairs import check_pairs

        return check_pairs(data, where)
    if kind == "corpus":  # text corpora: non-empty tokenized sentences, one document each
        from deepnotes.data.corpora import check_corpus

        return check_corpus(data, where)
    name = getattr(data, "name", "the dataset")
    where = where or name
    shapes = []
    for split, x, y in (("training", data.train_x, data.train_y), ("test", data.test_x, data.test_y)):
        if not isinstance(x, np.ndarray) or x.ndim != 4 or x.dtype != np.uint8:
            got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, np.ndarray) else type(x).__name__
            raise DataError(f"{where}: {name}'s {split} images are {got}; they must be uint8 (N, C, H, W)")
        if len(x) == 0:
            raise DataError(f"{where}: {name} has no {split} images; it must have at least one")
        if shape is not None and tuple(x.shape[1:]) != tuple(shape):
            raise DataError(f"{where}: {name}'s {split} images are {_size(x.shape[1:])}; {name}'s images must be {_size(shape)}")
        if len(y) != len(x):
            raise DataError(f"{where}: {name} has {len(y)} {split} labels for its {len(x)} {split} images; it needs one per image")
        if kind == "images":
            y = np.asarray(y)
            bad = (y < 0) | (y >= data.num_classes)
            if bad.any():
                i = int(np.argmax(bad))
                raise DataError(f"{where}: {name}'s {split} label {y[i]} at position {i} is outside 0..{data.num_classes - 1}")
        shapes.append(tuple(x.shape[1:]))
    if shapes[0] != shapes[1]:
        raise DataError(f"{where}: {name}'s training images are {_size(shapes[0])} but its test images {_size(shapes[1])}; both must be one size")
    return data


def list_datasets(pattern: str | None = None) -> list[str]:
    return DATASETS.names(pattern)


def get_dataset_entry(name: str) -> DatasetEntry:
    return DATASETS.get(name)


from deepnotes.data import corpora as _corpora  # noqa: E402,F401  (registers brown, shakespeare, bible-kjv, gettext-en)
from deepnotes.data import datasets as _datasets  # noqa: E402,F401  (registers the loaders)
from deepnotes.data import pairs as _pairs  # noqa: E402,F401  (registers gettext-fr-en, tatoeba-fr-en)
from deepnotes.data import scenes as _scenes  # noqa: E402,F401  (registers fashion-scenes, digit-scenes)
