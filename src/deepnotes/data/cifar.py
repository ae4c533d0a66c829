"""Read (and, for tests, write) the *binary* version of CIFAR-10.

The archive cifar-10-binary.tar.gz unpacks to cifar-10-batches-bin/ with

    data_batch_1.bin .. data_batch_5.bin   10,000 records each (the training set)
    test_batch.bin                         10,000 records
    batches.meta.txt                       the 10 class names, one a line

A record is 1 label byte followed by 3,072 pixel bytes: the 1,024 red values of the 32x32
image row by row, then green, then blue, so a batch reshapes straight to (N, 3, 32, 32).
The pickled "python version" of CIFAR-10 is never read (unpickling runs code).
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

import numpy as np

from deepnotes.errors import DataError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
META_FILE = "batches.meta.txt"
FOLDER = "cifar-10-batches-bin"  # the folder the archive unpacks to
IMAGE_SHAPE = (3, 32, 32)
RECORD = 1 + 3 * 32 * 32  # 3073 bytes


def read_batch(path: str | Path, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (x uint8 (N, 3, 32, 32), y int64 (N,))."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    if data.size == 0:
        raise DataError(f"{path}: the file is empty")
    if data.size % RECORD:
        raise DataError(
            f"{path}: {data.size} bytes is not a whole number of {RECORD}-byte records "
            f"({data.size // RECORD} records and {data.size % RECORD} bytes left over; truncated?)"
        )
    records = data.reshape(-1, RECORD)
    y = records[:, 0].astype(np.int64)
    if y.max() >= num_classes:
        i = int(np.argmax(y >= num_classes))
        raise DataError(f"{path}: record {i} has label {y[i]}, outside 0..{num_classes - 1} (not a CIFAR-10 binary batch?)")
    x = records[:, 1:].reshape(-1, *IMAGE_SHAPE).copy()
    return x, y


def read_classes(path: str | Path) -> tuple[str, ...]:
    """Class names from batches.meta.txt (one a line; blank lines ignored)."""
    path = Path(path)
    try:
        names = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read the class names ({e})") from None
    if len(names) != len(CLASSES):
        raise DataError(f"{path}: lists {len(names)} class names, expected {len(CLASSES)}")
    return names


def read_cifar10(folder: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """Read a cifar-10-batches-bin folder -> (train_x, train_y, test_x, test_y, classes).

    The class names come from batches.meta.txt when present, else the standard names.
    """
    folder = Path(folder)
    batches = [read_batch(folder / name) for name in TRAIN_FILES]
    train_x = np.concatenate([b[0] for b in batches])
    train_y = np.concatenate([b[1] for b in batches])
    test_x, test_y = read_batch(folder / TEST_FILE)
    meta = folder / META_FILE
    classes = read_classes(meta) if meta.exists() else CLASSES
    return train_x, train_y, test_x, test_y, classes


def write_batch(path: str | Path, x: np.ndarray, y: np.ndarray) -> Path:
    """Write records (x uint8 (N, 3, 32, 32), y labels) as one binary batch file."""
    x = np.asarray(x, dtype=np.uint8).reshape(len(y), -1)
    records = np.concatenate([np.asarray(y, dtype=np.uint8)[:, None], x], axis=1)
    if records.shape[1] != RECORD:
        raise ValueError(f"images must be {IMAGE_SHAPE}, got {x.shape[1]} values each")
    path = Path(path)
    records.tofile(path)
    return path


def write_cifar10(folder: str | Path, train_x, train_y, test_x, test_y, classes=CLASSES) -> Path:
    """Write a cifar-10-batches-bin style folder (training set split over the 5 batch files)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, xs, ys in zip(TRAIN_FILES, np.array_split(train_x, 5), np.array_split(train_y, 5)):
        write_batch(folder / name, xs, ys)
    write_batch(folder / TEST_FILE, test_x, test_y)
    (folder / META_FILE).write_text("\n".join(classes) + "\n\n", encoding="utf-8")
    return folder


def safe_members(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    """The archive's members, refusing any that could write outside the target folder."""
    members = tar.getmembers()
    for m in members:
        parts = PurePosixPath(m.name).parts
        if m.name.startswith(("/", "\\")) or PurePosixPath(m.name).is_absolute() or ".." in parts or (
            parts and ":" in parts[0]
        ):
            raise DataError(f"{archive}: refusing to extract member {m.name!r} (absolute path or '..')")
        if not (m.isfile() or m.isdir()):
            raise DataError(f"{archive}: refusing to extract member {m.name!r} (links and devices are not expected)")
    return members


def extract_tar(archive: str | Path, dest: str | Path) -> Path:
    """Safely unpack a .tar(.gz) `archive` into the folder `dest`; returns dest.

    Members are checked first (no absolute paths, no '..', no links or devices); everything is
    unpacked into a temporary folder next to `dest` and moved into place, so an interrupted
    extraction never leaves half a folder under its final name.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = safe_members(tar, archive)
                kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(tmp, members=members, **kwargs)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise DataError(f"{archive}: cannot unpack ({e})") from None
        for item in tmp.iterdir():
            target = dest / item.name
            if target.exists():
                continue  # never replace what is already there
            os.replace(item, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
