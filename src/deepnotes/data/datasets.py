"""The registered dataset loaders: digits, fashion-mnist, mnist, cifar10.

Each loader is `loader(data_dir=None, download=True) -> ImageData` with uint8 images
(N, C, H, W), int64 labels and the standard train/test split. Files are found by
deepnotes.data.sources (data_dir, $DEEPNOTES_DATA, system copy, cache, verified download)
and checked on reading: any problem is a DataError naming the file.
"""

from __future__ import annotations

import numpy as np

from deepnotes.data import ImageData, cifar, sources
from deepnotes.data.idx import read_idx
from deepnotes.errors import DataError
from deepnotes.registry import register_dataset

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
DIGIT_CLASSES = tuple(str(i) for i in range(10))


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
    return ImageData("digits", train_x, train_y, test_x, test_y, DIGIT_CLASSES, "scikit-learn (sklearn.datasets.load_digits)")


def read_idx_split(images_path, labels_path, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """An images file (N, H, W) and its labels file (N,) -> (x uint8 (N, 1, H, W), y int64)."""
    x = read_idx(images_path, ndim=3, dtype=np.uint8)
    y = read_idx(labels_path, ndim=1, dtype=np.uint8)
    if len(x) != len(y):
        raise DataError(f"{labels_path}: {len(y)} labels for the {len(x)} images in {images_path.name}")
    return x[:, None], check_labels(y, num_classes, str(labels_path))


def load_idx_dataset(source: sources.Source, classes, data_dir=None, download=True) -> ImageData:
    """Load an MNIST-format dataset (the 4 IDX files) found through `source`."""
    found = sources.locate(source, data_dir, download)
    p = found.paths
    train_x, train_y = read_idx_split(p["train-images-idx3-ubyte.gz"], p["train-labels-idx1-ubyte.gz"], len(classes))
    test_x, test_y = read_idx_split(p["t10k-images-idx3-ubyte.gz"], p["t10k-labels-idx1-ubyte.gz"], len(classes))
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(
            f"{found.folder}: training images are {train_x.shape[2:]} but test images {test_x.shape[2:]}"
        )
    return ImageData(source.name, train_x, train_y, test_x, test_y, tuple(classes), str(found.folder))


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
    return ImageData("cifar10", train_x, train_y, test_x, test_y, classes, str(found.folder))


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
