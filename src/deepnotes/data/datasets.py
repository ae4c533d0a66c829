"""The registered dataset loaders: digits, fashion-mnist, mnist, cifar10.

Each loader is `loader(data_dir=None, download=True) -> ImageData` with uint8 images
(N, C, H, W), int64 labels and the standard train/test split. Files are found by
deepnotes.data.sources (data_dir, $DEEPNOTES_DATA, system copy, cache, verified download)
and checked on reading: any problem is a DataError naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepnotes.data import ImageData, check_data, cifar, sources
from deepnotes.data.idx import read_idx
from deepnotes.errors import DataError
from deepnotes.registry import register_dataset

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
DIGIT_CLASSES = tuple(str(i) for i in range(10))
# What an MNIST-format dataset must hold: 28x28 greyscale images, at most the published counts
# (the header may announce no more: that bounds what a gzip file is decompressed to).
IDX_SHAPE = (1, 28, 28)
IDX_MAX_ITEMS = {"train": 60_000, "t10k": 10_000}


def check_labels(y: np.ndarray, num_classes: int, name: str) -> np.ndarray:
    """int64 copy of `y`, or a DataError naming `name` when a label is outside 0..num_classes-1."""
    y = np.asarray(y).astype(np.int64)
    bad = (y < 0) | (y >= num_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{name}: label {y[i]} at position {i} is outside 0..{num_classes - 1}")
    return y


def load_digits(data_dir=None, download=True) -> ImageData:
    """scikit-learn's 8x8 digits (1,797 images, shipped with scikit-learn: always available).

    Values 0..16 become uint8 0..255 as round(v * 255 / 16) with halves rounded up, computed
    exactly in integers: (v * 255 + 8) // 16 (0 -> 0, 8 -> 128, 16 -> 255).
    There is no standard split, so this one is fixed: sklearn's train_test_split with
    test_size=0.25, stratify=y, random_state=0 -> 1,347 train / 450 test, every class in
    the same proportion in both. `data_dir` and `download` are ignored.
    """
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    v = bunch.images.astype(np.int64)  # exact small integers stored as float
    x = ((v * 255 + 8) // 16).astype(np.uint8)[:, None]  # (N, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    data = ImageData("digits", train_x, train_y, test_x, test_y, DIGIT_CLASSES, "scikit-learn (sklearn.datasets.load_digits)")
    return check_data(data, where=data.source, shape=(1, 8, 8))


def read_idx_split(
    images_path, labels_path, num_classes: int = 10, *, item_shape=None, max_items=None, what: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """An images file (N, H, W) and its labels file (N,) -> (x uint8 (N, 1, H, W), y int64).

    `item_shape` (H, W) and `max_items` are what the dataset must hold (checked on the headers,
    before the data is read); `what` names the split in messages ("fashion-mnist's training").
    """
    images_path, labels_path = Path(images_path), Path(labels_path)
    x = read_idx(images_path, ndim=3, dtype=np.uint8, item_shape=item_shape, max_items=max_items, what=f"{what} images".strip())
    if len(x) == 0:
        one = f" {'x'.join(map(str, item_shape))}" if item_shape else ""
        raise DataError(f"{images_path}: holds 0 images; {what or 'the'} images must be at least one{one} image")
    y = read_idx(labels_path, ndim=1, dtype=np.uint8, max_items=max_items, what=f"{what} labels".strip())
    if len(x) != len(y):
        raise DataError(f"{labels_path}: {len(y)} labels for the {len(x)} images in {images_path.name}")
    return x[:, None], check_labels(y, num_classes, str(labels_path))


def load_idx_dataset(source: sources.Source, classes, data_dir=None, download=True) -> ImageData:
    """Load an MNIST-format dataset (the 4 IDX files) found through `source`: 28x28 greyscale."""
    found = sources.locate(source, data_dir, download)
    p = found.paths
    splits = []
    for prefix, split in (("train", "training"), ("t10k", "test")):
        splits.append(read_idx_split(
            p[f"{prefix}-images-idx3-ubyte.gz"], p[f"{prefix}-labels-idx1-ubyte.gz"], len(classes),
            item_shape=IDX_SHAPE[1:], max_items=IDX_MAX_ITEMS[prefix], what=f"{source.name}'s {split}",
        ))  # fmt: skip
    (train_x, train_y), (test_x, test_y) = splits
    data = ImageData(source.name, train_x, train_y, test_x, test_y, tuple(classes), str(found.folder))
    return check_data(data, where=str(found.folder), shape=IDX_SHAPE)


def load_fashion_mnist(data_dir=None, download=True) -> ImageData:
    """Fashion-MNIST (Xiao et al. 2017): 60,000 / 10,000 28x28 greyscale images of 10 clothing classes."""
    return load_idx_dataset(sources.FASHION_MNIST, FASHION_MNIST_CLASSES, data_dir, download)


def load_mnist(data_dir=None, download=True) -> ImageData:
    """MNIST (LeCun et al. 1998): 60,000 / 10,000 28x28 greyscale handwritten digits."""
    return load_idx_dataset(sources.MNIST, DIGIT_CLASSES, data_dir, download)


def load_cifar10(data_dir=None, download=True) -> ImageData:
    """CIFAR-10 (Krizhevsky 2009), binary version: 50,000 / 10,000 32x32 colour images, (N, 3, 32, 32)."""
    found = sources.locate(sources.CIFAR10, data_dir, download)
    train_x, train_y, test_x, test_y, classes = cifar.read_cifar10(found.folder)
    data = ImageData("cifar10", train_x, train_y, test_x, test_y, classes, str(found.folder))
    return check_data(data, where=str(found.folder), shape=cifar.IMAGE_SHAPE)


register_dataset(
    "digits", load_digits,
    description="scikit-learn 8x8 digits, 1,347/450 stratified split (always available)",
)
register_dataset(
    "fashion-mnist", load_fashion_mnist,
    description="Fashion-MNIST 28x28 clothing, 60k/10k, 10 classes",
)
register_dataset(
    "mnist", load_mnist,
    description="MNIST 28x28 handwritten digits, 60k/10k, 10 classes",
)
register_dataset(
    "cifar10", load_cifar10,
    description="CIFAR-10 32x32 colour images (binary version), 50k/10k, 10 classes",
)
