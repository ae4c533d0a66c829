"""Dataset layer: IDX / CIFAR-binary readers, the lookup order, verified downloads, errors.

Every test runs on tiny files written here in the real formats; the network is never used
(`offline` replaces the URL opener). One test reads the real Fashion-MNIST if the Debian
package is installed.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from fakes import ZeroBody, no_network, serve

from deepnotes.data import ImageData, cifar, list_datasets, load_dataset, sources
from deepnotes.data.idx import read_idx, write_idx
from deepnotes.errors import DataError, UserError

REAL_URLOPEN = sources.urlopen  # before the fixture below replaces it
IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No $DEEPNOTES_DATA, the cache and system copy inside tmp_path, and no network."""
    return no_network(monkeypatch, tmp_path, {"fashion-mnist": (tmp_path / "system" / "fashion-mnist",)})


def make_idx(folder: Path, n_train=20, n_test=10, gz=True, seed=0, size=28):
    """Write the 4 MNIST-format files into `folder`; returns (train_x, train_y, test_x, test_y)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = (
        rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        (np.arange(n_train) % 10).astype(np.uint8),
        rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        (np.arange(n_test) % 10).astype(np.uint8),
    )
    for name, a in zip(IDX_NAMES, arrays):
        write_idx(folder / (name + (".gz" if gz else "")), a)
    return arrays


def make_cifar(folder: Path, n_train=10, n_test=4, seed=0, classes=cifar.CLASSES):
    rng = np.random.default_rng(seed)
    arrays = (
        rng.integers(0, 256, (n_train, 3, 32, 32), dtype=np.uint8),
        (np.arange(n_train) % 10).astype(np.int64),
        rng.integers(0, 256, (n_test, 3, 32, 32), dtype=np.uint8),
        (np.arange(n_test) * 3 % 10).astype(np.int64),
    )
    cifar.write_cifar10(folder, *arrays, classes=classes)
    return arrays


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- registry, digits


def test_registered():
    assert set(list_datasets()) >= {"digits", "fashion-mnist", "mnist", "cifar10"}
    with pytest.raises(UserError, match="fashion-mnist"):
        load_dataset("fashion_mnist")


def test_digits_split():
    d = load_dataset("digits")
    assert isinstance(d, ImageData)
    assert d.train_x.shape == (1347, 1, 8, 8) and d.test_x.shape == (450, 1, 8, 8)
    assert d.train_x.dtype == np.uint8 and d.train_y.dtype == np.int64
    assert d.classes == tuple("0123456789") and d.num_classes == 10 and d.in_chans == 1
    assert d.train_x.min() == 0 and d.train_x.max() == 255
    # (v*255+8)//16 maps the 17 levels 0..16 to these values only
    assert set(np.unique(np.concatenate([d.train_x, d.test_x]))) <= {(v * 255 + 8) // 16 for v in range(17)}
    # stratified: every class has ~25% of its images in test
    n_all = np.bincount(np.concatenate([d.train_y, d.test_y]))
    assert np.all(np.abs(np.bincount(d.test_y) - n_all * 0.25) <= 1)
    # deterministic
    d2 = load_dataset("digits")
    assert np.array_equal(d.train_x, d2.train_x) and np.array_equal(d.test_y, d2.test_y)


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, np.float64])
def test_idx_roundtrip(tmp_path, suffix, dtype):
    a = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype) if dtype != np.uint8 else np.arange(30, dtype=np.uint8).reshape(2, 3, 5)
    path = write_idx(tmp_path / f"a-idx3{suffix}", a)
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.shape == a.shape and np.array_equal(a, b)
    assert b.flags.writeable
    if suffix:
        assert path.read_bytes()[:2] == b"\x1f\x8b"


def test_fashion_mnist_from_data_dir(tmp_path):
    train_x, train_y, test_x, test_y = make_idx(tmp_path / "fm")
    d = load_dataset("fashion-mnist", data_dir=tmp_path / "fm")
    assert d.train_x.shape == (20, 1, 28, 28) and d.test_x.shape == (10, 1, 28, 28)
    assert d.train_x.dtype == np.uint8 and d.train_y.dtype == np.int64 and d.test_y.dtype == np.int64
    assert np.array_equal(d.train_x[:, 0], train_x) and np.array_equal(d.test_x[:, 0], test_x)
    assert np.array_equal(d.train_y, train_y) and np.array_equal(d.test_y, test_y)
    assert d.classes[0] == "T-shirt/top" and d.classes[9] == "Ankle boot" and d.num_classes == 10
    assert d.source == str(tmp_path / "fm")


def test_mnist_plain_files_via_env(tmp_path, monkeypatch):
    train_x, *_ = make_idx(tmp_path / "root" / "mnist", gz=False)
    monkeypatch.setenv("DEEPNOTES_DATA", str(tmp_path / "root"))
    d = load_dataset("mnist")
    assert np.array_equal(d.train_x[:, 0], train_x) and d.classes == tuple("0123456789")
    assert d.source == str(tmp_path / "root" / "mnist")


def test_cifar10_roundtrip(tmp_path):
    train_x, train_y, test_x, test_y = make_cifar(tmp_path / "c" / cifar.FOLDER, classes=tuple("ABCDEFGHIJ"))
    for data_dir in (tmp_path / "c", tmp_path / "c" / cifar.FOLDER):  # the unpack root or the folder
        d = load_dataset("cifar10", data_dir=data_dir)
        assert d.train_x.shape == (10, 3, 32, 32) and d.test_x.shape == (4, 3, 32, 32)
        assert d.train_x.dtype == np.uint8 and d.train_y.dtype == np.int64
        assert np.array_equal(d.train_x, train_x) and np.array_equal(d.test_x, test_x)
        assert np.array_equal(d.train_y, train_y) and np.array_equal(d.test_y, test_y)
        assert d.classes == tuple("ABCDEFGHIJ") and d.in_chans == 3 and d.img_size == (32, 32)
    (tmp_path / "c" / cifar.FOLDER / cifar.META_FILE).unlink()
    assert load_dataset("cifar10", data_dir=tmp_path / "c").classes == cifar.CLASSES


def test_cifar_record_layout(tmp_path):
    # 1 label byte, then 1024 red, 1024 green, 1024 blue, each row by row
    rec = bytes([7]) + bytes([1] * 1024 + [2] * 1024 + [3] * 1024)
    (tmp_path / "b.bin").write_bytes(rec * 2)
    x, y = cifar.read_batch(tmp_path / "b.bin")
    assert y.tolist() == [7, 7] and x.shape == (2, 3, 32, 32)
    assert x[:, 0].min() == 1 and x[:, 1].max() == 2 and x[:, 2].min() == 3


# --------------------------------------------------------------------------- lookup order


def test_lookup_order(tmp_path, monkeypatch):
    explicit = make_idx(tmp_path / "explicit", seed=1)[0]
    env = make_idx(tmp_path / "root" / "fashion-mnist", seed=2)[0]
    system = make_idx(tmp_path / "system" / "fashion-mnist", seed=3)[0]
    cache = make_idx(tmp_path / "xdg-cache" / "deepnotes" / "fashion-mnist", seed=4)[0]
    monkeypatch.setenv("DEEPNOTES_DATA", str(tmp_path / "root"))

    def first():
        return load_dataset("fashion-mnist", data_dir=None, download=False).train_x[:, 0]

    assert np.array_equal(load_dataset("fashion-mnist", data_dir=tmp_path / "explicit").train_x[:, 0], explicit)
    assert np.array_equal(first(), env)
    monkeypatch.delenv("DEEPNOTES_DATA")
    assert np.array_equal(first(), system)
    monkeypatch.setattr(sources, "SYSTEM_DIRS", {})
    assert np.array_equal(first(), cache)


def test_explicit_dir_does_not_fall_through(tmp_path, monkeypatch):
    make_idx(tmp_path / "root" / "fashion-mnist")
    monkeypatch.setenv("DEEPNOTES_DATA", str(tmp_path / "root"))
    (tmp_path / "mine").mkdir()
    write_idx(tmp_path / "mine" / "train-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError) as e:
        load_dataset("fashion-mnist", data_dir=tmp_path / "mine")
    msg = str(e.value)
    assert str(tmp_path / "mine") in msg
    for name in IDX_NAMES[1:]:
        assert f"{name}.gz" in msg
    assert "missing train-labels-idx1-ubyte.gz" in msg


def test_offline_error_names_every_place(tmp_path, monkeypatch, offline):
    monkeypatch.setenv("DEEPNOTES_DATA", str(tmp_path / "root"))
    with pytest.raises(DataError) as e:
        load_dataset("fashion-mnist")
    msg = str(e.value)
    for place in (tmp_path / "root" / "fashion-mnist", tmp_path / "system" / "fashion-mnist",
                  tmp_path / "xdg-cache" / "deepnotes" / "fashion-mnist"):
        assert str(place) in msg
    assert "fashion-mnist.s3-website.eu-central-1.amazonaws.com" in msg and "name resolution" in msg
    assert "sudo apt-get install dataset-fashion-mnist" in msg and "--data-dir" in msg and "DEEPNOTES_DATA" in msg
    assert offline  # the download was attempted
    assert "\n" not in msg

    with pytest.raises(DataError, match=r"cifar-10-binary\.tar\.gz"):
        load_dataset("cifar10")


def test_download_false_skips_network(offline):
    with pytest.raises(DataError, match=r"download=False.*ossci-datasets"):
        load_dataset("mnist", download=False)
    assert offline == []


# --------------------------------------------------------------------------- downloads


def test_download_into_cache(tmp_path, monkeypatch):
    make_idx(tmp_path / "served", seed=5)
    files = {sources.MNIST_URL + n + ".gz": (tmp_path / "served" / (n + ".gz")).read_bytes() for n in IDX_NAMES}
    remotes = tuple(sources.Remote(url, sha(b), len(b)) for url, b in files.items())
    monkeypatch.setattr(sources, "MNIST", dataclasses.replace(sources.MNIST, remotes=remotes))
    calls = serve(monkeypatch, files)
    d = load_dataset("mnist")
    cache = tmp_path / "xdg-cache" / "deepnotes" / "mnist"
    assert d.source == str(cache) and len(calls) == 4
    assert sorted(p.name for p in cache.iterdir()) == sorted(n + ".gz" for n in IDX_NAMES)
    load_dataset("mnist")  # now found in the cache
    assert len(calls) == 4


def test_wrong_hash_leaves_nothing(tmp_path, monkeypatch):
    serve(monkeypatch, {"http://x/f.gz": b"not what you wanted"})
    dest = tmp_path / "dl" / "f.gz"
    with pytest.raises(DataError, match=r"http://x/f\.gz: SHA-256 is [0-9a-f]{64}, expected 0{64}; not saved"):
        sources.download_file("http://x/f.gz", dest, "0" * 64, progress=False)
    assert not dest.parent.exists()  # the folder it made is removed again, being empty
    dest.parent.mkdir()
    with pytest.raises(DataError):
        sources.download_file("http://x/f.gz", dest, "0" * 64, progress=False)
    assert list(dest.parent.iterdir()) == []
    # a good file already under the name is never touched by a failed download
    dest.write_bytes(b"good")
    with pytest.raises(DataError):
        sources.download_file("http://x/f.gz", dest, "0" * 64, progress=False)
    assert dest.read_bytes() == b"good" and list(dest.parent.iterdir()) == [dest]
    # wrong size is refused too
    with pytest.raises(DataError, match="received 19 bytes, expected 20"):
        sources.download_file("http://x/f.gz", tmp_path / "g", sha(b"not what you wanted"), 20, progress=False)
    assert not (tmp_path / "g").exists()
    # right hash: saved under the final name, no temporary file left
    sources.download_file("http://x/f.gz", tmp_path / "dl2" / "f.gz", sha(b"not what you wanted"), progress=False)
    assert [p.name for p in (tmp_path / "dl2").iterdir()] == ["f.gz"]


def test_download_with_urllib(tmp_path, monkeypatch, capsys):
    # the real opener on a file:// URL: headers, chunked reads and the progress bar
    src = tmp_path / "src.bin"
    src.write_bytes(bytes(range(256)) * 5000)
    monkeypatch.setattr(sources, "urlopen", REAL_URLOPEN)
    out = sources.download_file(src.as_uri(), tmp_path / "cache" / "x.bin", sha(src.read_bytes()), 1280000)
    assert out.read_bytes() == src.read_bytes()
    assert "x.bin" in capsys.readouterr().err
    with pytest.raises(DataError, match="missing.bin"):
        sources.download_file((tmp_path / "missing.bin").as_uri(), tmp_path / "y", "0" * 64, progress=False)


def test_interrupted_download_leaves_nothing(tmp_path, monkeypatch):
    class Broken(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 0:
                raise ConnectionResetError(104, "Connection reset by peer")
            return super().read(3)

    monkeypatch.setattr(sources, "urlopen", lambda url, timeout=None: Broken(b"abcdefgh"))
    with pytest.raises(DataError, match="Connection reset"):
        sources.download_file("http://x/f", tmp_path / "f", sha(b"abcdefgh"), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cifar_download_and_safe_extract(tmp_path, monkeypatch):
    train_x, *_ = make_cifar(tmp_path / "src" / cifar.FOLDER)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(tmp_path / "src" / cifar.FOLDER, arcname=cifar.FOLDER)
    archive = buf.getvalue()
    remote = sources.Remote(sources.CIFAR10_URL, sha(archive), len(archive))
    monkeypatch.setattr(sources, "CIFAR10", dataclasses.replace(sources.CIFAR10, remotes=(remote,)))
    serve(monkeypatch, {sources.CIFAR10_URL: archive})
    d = load_dataset("cifar10")
    cache = tmp_path / "xdg-cache" / "deepnotes" / "cifar10"
    assert d.source == str(cache / cifar.FOLDER) and np.array_equal(d.train_x, train_x)
    assert sorted(p.name for p in cache.iterdir()) == ["cifar-10-batches-bin", "cifar-10-binary.tar.gz"]


@pytest.mark.parametrize("member", ["../evil.bin", "/tmp/evil.bin", "a/../../evil.bin"])
def test_extract_rejects_unsafe_members(tmp_path, member):
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(DataError, match="refusing to extract"):
        cifar.extract_tar(archive, tmp_path / "out")
    assert not (tmp_path / "evil.bin").exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_extract_rejects_links(tmp_path):
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("cifar-10-batches-bin/x.bin")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(DataError, match="links"):
        cifar.extract_tar(archive, tmp_path / "out")


# --------------------------------------------------------------------------- corrupt files


def _load_fm(folder):
    return load_dataset("fashion-mnist", data_dir=folder)


def test_truncated_images(tmp_path):
    make_idx(tmp_path / "fm")
    path = tmp_path / "fm" / "train-images-idx3-ubyte.gz"
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[:16 + 1234]))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: expected 15680 bytes of pixels after the header.*found 1234 \(truncated\?\)"):
        _load_fm(tmp_path / "fm")


def test_truncated_gzip_stream(tmp_path):
    make_idx(tmp_path / "fm")
    path = tmp_path / "fm" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: the gzip data ends early"):
        _load_fm(tmp_path / "fm")


def test_gzip_crc_error(tmp_path):
    make_idx(tmp_path / "fm")
    path = tmp_path / "fm" / "train-labels-idx1-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: corrupt gzip data \(CRC check failed"):
        _load_fm(tmp_path / "fm")


def test_not_gzip_under_gz_name(tmp_path):
    make_idx(tmp_path / "fm")
    (tmp_path / "fm" / "train-labels-idx1-ubyte.gz").write_bytes(b"<html>404</html>")
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: not a gzip file"):
        _load_fm(tmp_path / "fm")


def test_bad_magic(tmp_path):
    make_idx(tmp_path / "fm", gz=False)
    path = tmp_path / "fm" / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x12\x34\x08\x01" + path.read_bytes()[4:])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte: bad magic number 0x12340801"):
        _load_fm(tmp_path / "fm")


def test_images_file_where_labels_expected(tmp_path):
    make_idx(tmp_path / "fm")
    (tmp_path / "fm" / "train-labels-idx1-ubyte.gz").write_bytes((tmp_path / "fm" / "train-images-idx3-ubyte.gz").read_bytes())
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: has 3 dimensions"):
        _load_fm(tmp_path / "fm")


def test_label_count_mismatch(tmp_path):
    make_idx(tmp_path / "fm")
    write_idx(tmp_path / "fm" / "train-labels-idx1-ubyte.gz", np.zeros(19, np.uint8))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: 19 labels for the 20 images"):
        _load_fm(tmp_path / "fm")


def test_label_out_of_range(tmp_path):
    make_idx(tmp_path / "fm")
    write_idx(tmp_path / "fm" / "t10k-labels-idx1-ubyte.gz", np.array([0] * 5 + [10] + [0] * 4, np.uint8))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: label 10 at position 5 is outside 0\.\.9"):
        _load_fm(tmp_path / "fm")


def test_cifar_truncated_and_bad_label(tmp_path):
    folder = tmp_path / "c"
    make_cifar(folder)
    batch = folder / "data_batch_3.bin"
    good = batch.read_bytes()
    batch.write_bytes(good[:-100])
    with pytest.raises(DataError, match=r"data_batch_3\.bin: 6046 bytes is not a whole number of 3073-byte records"):
        load_dataset("cifar10", data_dir=folder)
    batch.write_bytes(bytes([42]) + good[1:])
    with pytest.raises(DataError, match=r"data_batch_3\.bin: record 0 has label 42"):
        load_dataset("cifar10", data_dir=folder)


# --------------------------------------------------------------------------- the real thing


@pytest.mark.skipif(not SYSTEM_FASHION.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_real_fashion_mnist():
    d = load_dataset("fashion-mnist", data_dir=SYSTEM_FASHION)
    assert d.train_x.shape == (60000, 1, 28, 28) and d.test_x.shape == (10000, 1, 28, 28)
    assert np.bincount(d.train_y).tolist() == [6000] * 10
    assert np.bincount(d.test_y).tolist() == [1000] * 10
    assert 0 < d.train_x.mean() < 255


# --------------------------------------------------------------------------- what a dataset must hold


def test_empty_idx_files_are_refused_naming_the_file(tmp_path):
    # 0 images used to "train" 0 steps and report 0.00% with exit code 0
    make_idx(tmp_path / "fm", n_train=0)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: holds 0 images; fashion-mnist's training images must be at least one 28x28"):
        _load_fm(tmp_path / "fm")
    make_idx(tmp_path / "m", n_test=0)
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: holds 0 images; mnist's test images"):
        load_dataset("mnist", data_dir=tmp_path / "m")


def test_fashion_scenes_from_empty_or_blank_items_is_a_data_error(tmp_path):
    make_idx(tmp_path / "empty", n_test=0)
    with pytest.raises(DataError, match="holds 0 images"):
        load_dataset("fashion-scenes", data_dir=tmp_path / "empty")
    folder = tmp_path / "blank"
    make_idx(folder)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.full((10, 28, 28), 20, np.uint8))  # nothing above the threshold 32
    with pytest.raises(DataError, match=rf"{folder}: no test image of fashion-mnist has a pixel above 32"):
        load_dataset("fashion-scenes", data_dir=folder)


@pytest.mark.parametrize("size", [1, 27])
def test_images_of_another_size_are_not_fashion_mnist(tmp_path, size):
    make_idx(tmp_path / "fm", size=size)
    with pytest.raises(DataError, match=rf"train-images-idx3-ubyte\.gz: holds 20 items of {size}x{size}; fashion-mnist's training images must be 28x28"):
        _load_fm(tmp_path / "fm")


def test_check_data_names_what_is_wrong():
    from deepnotes.data import check_data

    x, y = np.zeros((4, 1, 8, 8), np.uint8), np.arange(4) % 2

    def data(**kw):
        return ImageData(**{**dict(name="d", train_x=x, train_y=y, test_x=x, test_y=y, classes=("a", "b"), source="here"), **kw})

    assert check_data(data(), where="here", shape=(1, 8, 8)) is not None
    cases = [
        (dict(test_x=x[:0], test_y=y[:0]), "here: d has no test images; it must have at least one"),
        (dict(train_x=x.astype(np.float32)), r"d's training images are float32 \(4, 1, 8, 8\); they must be uint8 \(N, C, H, W\)"),
        (dict(train_y=y[:3]), "d has 3 training labels for its 4 training images"),
        (dict(test_y=y + 1), "d's test label 2 at position 1 is outside 0..1"),
        (dict(test_x=np.zeros((4, 1, 9, 9), np.uint8)), "d's test images are 1x9x9; d's images must be 1x8x8"),
    ]
    for kw, message in cases:
        with pytest.raises(DataError, match=message):
            check_data(data(**kw), where="here", shape=(1, 8, 8))


def _gzip_bomb(path: Path, header_dims, megabytes: int) -> Path:
    """An IDX header announcing `header_dims` of uint8, then that much data and `megabytes` MB of
    zeros, gzip-compressed in chunks (the file is ~1000x smaller than what it unpacks to)."""
    with gzip.open(path, "wb", compresslevel=9) as g:
        g.write(bytes([0, 0, 8, len(header_dims)]) + np.asarray(header_dims, ">u4").tobytes())  # uint8 values
        g.write(bytes(int(np.prod(header_dims))))
        zeros = bytes(1 << 20)
        for _ in range(megabytes):
            g.write(zeros)
    return path


def test_gzip_bomb_is_refused_before_it_is_decompressed(tmp_path):
    import tracemalloc

    bomb = _gzip_bomb(tmp_path / "train-images-idx3-ubyte.gz", (1, 28, 28), 50)
    assert bomb.stat().st_size < 200_000  # 50 MB of zeros
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"unexpected bytes after the 784 bytes of data its header announces"):
            read_idx(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, peak  # reading it whole took 50 MB (and a 1.5 MB bomb took 3.4 GB)


def test_idx_header_bounds_what_is_read(tmp_path):
    # a header may not announce more than the dataset has (the published counts) or than MAX_BYTES:
    # refused from the header alone, before any data is decompressed
    make_idx(tmp_path / "fm")
    _gzip_bomb(tmp_path / "fm" / "t10k-labels-idx1-ubyte.gz", (10_001,), 0)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: its header announces 10001 items; fashion-mnist's test labels must be at most 10000"):
        _load_fm(tmp_path / "fm")
    huge = tmp_path / "huge-idx3-ubyte.gz"
    with gzip.open(huge, "wb") as g:
        g.write(bytes([0, 0, 8, 3]) + np.asarray([2**31, 28, 28], ">u4").tobytes())
    with pytest.raises(DataError, match=r"its header announces 1683627180032 bytes of data .*more than the 1073741824 read here"):
        read_idx(huge)


@pytest.mark.parametrize("size, headers", [(1000, {}), (None, {"Content-Length": "1000"})])
def test_download_stops_at_the_expected_size(tmp_path, monkeypatch, size, headers):
    body = ZeroBody(50 << 20, headers)  # the server would send 50 MB
    monkeypatch.setattr(sources, "urlopen", lambda url, timeout=None: body)
    with pytest.raises(DataError, match=r"http://x/f\.gz: sends more than the 1000 bytes expected; stopped there, not saved"):
        sources.download_file("http://x/f.gz", tmp_path / "dl" / "f.gz", sha(bytes(1000)), size, progress=False)
    assert body.sent <= 1001  # it used to read (and write) all 50 MB before comparing sizes
    assert not (tmp_path / "dl").exists()


def test_plain_http_data_is_verified_by_sha256_before_use(tmp_path, monkeypatch):
    # Fashion-MNIST is published over plain http only: what arrives is used only if its SHA-256 matches
    plain = [r for s in sources.SOURCES.values() for r in s.remotes if r.url.startswith("http://")]
    assert plain and all(len(r.sha256) == 64 and int(r.sha256, 16) >= 0 and r.size for r in plain)
    first = sources.FASHION_MNIST.remotes[0]
    assert first.url.startswith("http://")
    serve(monkeypatch, {first.url: bytes(first.size)})  # the right size, altered content
    with pytest.raises(DataError, match=rf"{first.url}: SHA-256 is [0-9a-f]{{64}}, expected {first.sha256}; not saved"):
        load_dataset("fashion-mnist")
    cache = tmp_path / "xdg-cache" / "deepnotes" / "fashion-mnist"
    assert not cache.exists() or list(cache.iterdir()) == []
