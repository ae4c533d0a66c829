"""Bad options and bad data at the command line, one row each: exit code 2, one line
`deepnotes: error: ...` naming what was wrong (every needle of the row in it), no traceback,
and nothing on disk changed; a refused `train` leaves no --out folder behind.

Rows cover numbers (NaN, infinite, negative, too large: each separately), --model-arg, datasets
that are empty or of the wrong size, gzip bombs and downloads, a FIFO given as an image, and
predict --top. The network is never used: downloads go to a stand-in server (`_Server`).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import tqdm
from clicheck import assert_refused
from fakes import ZeroBody
from PIL import Image

from deepnotes.cli import main
from deepnotes.data import cifar, sources
from deepnotes.data.idx import write_idx

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FM_TRAIN_IMAGES = sources.FASHION_MNIST.remotes[0]  # served with the right size and the wrong content
MNIST_TRAIN_IMAGES = sources.MNIST.remotes[0]  # served endlessly: more than its size


def _server(url: str, timeout=None) -> ZeroBody:
    """Fashion-MNIST's (plain http) file altered in transit; MNIST's file without end (1 GB)."""
    if url == FM_TRAIN_IMAGES.url:
        return ZeroBody(FM_TRAIN_IMAGES.size)
    return ZeroBody(1 << 30)


def _idx(folder: Path, n_train=20, n_test=10, size=28) -> Path:
    """The 4 MNIST-format files, small."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    arrays = (
        rng.integers(0, 256, (n_train, size, size), dtype=np.uint8), (np.arange(n_train) % 10).astype(np.uint8),
        rng.integers(0, 256, (n_test, size, size), dtype=np.uint8), (np.arange(n_test) % 10).astype(np.uint8),
    )  # fmt: skip
    for name, a in zip(IDX_NAMES, arrays):
        write_idx(folder / f"{name}.gz", a)
    return folder


def _bomb(path: Path, dims: tuple[int, ...], data: int, zeros_mb: int) -> None:
    """An IDX images file: a header announcing `dims`, `data` bytes, then `zeros_mb` MB of zeros, gzip'ed."""
    with gzip.open(path, "wb") as g:
        g.write(bytes([0, 0, 8, len(dims)]) + np.asarray(dims, ">u4").tobytes() + bytes(data))
        for _ in range(zeros_mb):
            g.write(bytes(1 << 20))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A trained run, an image, a FIFO, data folders (good, empty, 1x1, bombs), a private cache."""
    root = tmp_path_factory.mktemp("bad-inputs")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DEEPNOTES_DATA", raising=False)
        mp.setenv("XDG_CACHE_HOME", str(root / "cache"))
        mp.setattr(sources, "SYSTEM_DIRS", {})
        mp.setattr(sources, "urlopen", _server)
        # downloads draw a progress bar on stderr (not what is tested here: the one error line is)
        mp.setattr("tqdm.auto.tqdm", lambda *a, **kw: tqdm.tqdm(*a, **{**kw, "disable": True}))
        run = root / "run"
        assert main(["train", "mlp", "--data", "digits", "--epochs", "1", "--quiet", "--threads", "1", "--out", str(run)]) == 0
        files = root / "files"
        files.mkdir()
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(files / "digit.png")
        os.mkfifo(root / "pipe.png")
        data = root / "data"
        _idx(data / "empty", n_train=0)
        _idx(data / "no-test", n_test=0)
        _idx(data / "one-by-one", size=1)
        _bomb(_idx(data / "bomb") / "train-images-idx3-ubyte.gz", (1, 28, 28), 784, 50)  # 50 MB after 1 image
        _bomb(_idx(data / "too-many") / "train-images-idx3-ubyte.gz", (60_001, 28, 28), 0, 0)
        blank = np.zeros((5, 3, 32, 32), np.uint8), np.zeros(5, int)
        (cifar.write_cifar10(data / "cifar", *blank, *blank) / cifar.TEST_FILE).write_bytes(b"")  # 0 test images
        yield {"root": root, "run": run, "image": files / "digit.png", "fifo": root / "pipe.png", "data": data}


TRAIN = ["train", "mlp", "--data", "digits", "--epochs", "1", "--quiet", "--threads", "1"]


def _model(name: str, *model_args: str) -> list[str]:
    return ["train", name, "--data", "digits", "--epochs", "1", "--quiet", "--threads", "1",
            *(a for arg in model_args for a in ("--model-arg", arg))]  # fmt: skip


def _fm(data: str, model: str = "mlp", dataset: str = "fashion-mnist") -> list[str]:
    return ["train", model, "--data", dataset, "--data-dir", "{data}/" + data, "--epochs", "1", "--quiet", "--threads", "1"]


# (argv, needles): "{run}", "{image}", "{fifo}", "{data}" are filled in from the world; a train row gets --out {out}.
ROWS = [
    # 8. numbers: each option with each kind of bad value
    ([*TRAIN, "--weight-decay", "-1"], ["--weight-decay must be a finite number >= 0", "got -1.0"]),
    ([*TRAIN, "--weight-decay", "nan"], ["--weight-decay must be a finite number >= 0", "got nan"]),
    ([*TRAIN, "--weight-decay", "inf"], ["--weight-decay must be a finite number >= 0", "got inf"]),
    ([*TRAIN, "--momentum", "-1"], ["--momentum must be in [0, 1)", "got -1.0"]),
    ([*TRAIN, "--momentum", "nan"], ["--momentum must be in [0, 1)", "got nan"]),  # was blamed on the learning rate
    ([*TRAIN, "--momentum", "5"], ["--momentum must be in [0, 1)", "got 5.0"]),
    ([*TRAIN, "--warmup-epochs", "inf"], ["--warmup-epochs must be a finite number >= 0", "got inf"]),
    ([*TRAIN, "--warmup-epochs", "nan"], ["--warmup-epochs must be a finite number >= 0", "got nan"]),
    ([*TRAIN, "--warmup-epochs", "-1"], ["--warmup-epochs must be a finite number >= 0", "got -1.0"]),
    ([*TRAIN, "--lr", "inf"], ["--lr must be a finite number > 0", "got inf"]),  # was accepted, failed at step 10
    ([*TRAIN, "--lr", "nan"], ["--lr must be a finite number > 0", "got nan"]),
    ([*TRAIN, "--lr", "-0.1"], ["--lr must be a finite number > 0", "got -0.1"]),
    ([*TRAIN, "--seed", str(2**63)], ["--seed must be an integer in 0..9223372036854775807", f"got {2**63}"]),
    ([*TRAIN, "--seed", "-1"], ["--seed must be an integer in 0..", "got -1"]),
    ([*TRAIN, "--threads", "-3"], ["--threads must be between 1 and", "got -3"]),
    ([*TRAIN, "--threads", "0"], ["--threads must be between 1 and", "got 0"]),
    ([*TRAIN, "--threads", "100000"], [f"--threads must be between 1 and {os.cpu_count()} (the CPU cores of this machine)", "got 100000"]),
    (["predict", "{run}", "{image}", "--top", "-2"], ["--top must be at least 1", "got -2"]),
    (["predict", "{run}", "{image}", "--top", "0"], ["--top must be at least 1", "got 0"]),
    # 9. --model-arg
    ([*TRAIN, "--model-arg", "hidden=[16,"], ["--model-arg hidden=[16, is not valid JSON", "lists as [16,32]"]),
    ([*TRAIN, "--model-arg", "dropout=.5"], ["--model-arg dropout=.5 is not valid JSON", "numbers as 0.5"]),
    ([*TRAIN, "--model-arg", "dropout=NaN"], ["--model-arg dropout=NaN is not valid JSON", "NaN is not a finite number"]),
    ([*TRAIN, "--model-arg", "num_classes=5"], ["--model-arg num_classes=5 is not taken", "--num-classes 5"]),
    ([*TRAIN, "--model-arg", "in_chans=3"], ["--model-arg in_chans=3 is not taken", "the input channels come from the data"]),
    ([*TRAIN, "--model-arg", "img_size=0"], ["--model-arg img_size=0 must be one positive integer or two"]),
    ([*TRAIN, "--model-arg", "img_size=[8,-8]"], ["--model-arg img_size=[8, -8] must be one positive integer or two"]),
    (_model("mlp", "hidden=[0]"), ["model 'mlp' cannot be built with hidden=[0]", "whole numbers >= 1"]),
    (_model("mlp", "hidden=[16,-1]"), ["model 'mlp' cannot be built with hidden=[16, -1]", "whole numbers >= 1"]),
    (_model("vgg_small", "width=0"), ["model 'vgg_small' cannot be built with width=0", "a number > 0"]),
    (_model("resnet20", "width=-1"), ["model 'resnet20' cannot be built with width=-1", "a number > 0"]),
    (_model("vit_tiny_28", "num_heads=0"), ["model 'vit_tiny_28' cannot be built with num_heads=0", "whole number >= 1"]),
    (_model("mlp", "widht=3"), ["model 'mlp' does not take widht", "it takes:"]),
    # 6. datasets that are empty or not what the dataset must hold
    (_fm("empty"), ["train-images-idx3-ubyte.gz: holds 0 images", "fashion-mnist's training images must be at least one 28x28"]),
    (_fm("empty", "unet_small", "fashion-scenes"), ["train-images-idx3-ubyte.gz: holds 0 images"]),  # used to crash
    (_fm("no-test", dataset="mnist"), ["t10k-images-idx3-ubyte.gz: holds 0 images", "mnist's test images"]),
    (_fm("one-by-one"), ["train-images-idx3-ubyte.gz: holds 20 items of 1x1", "fashion-mnist's training images must be 28x28"]),
    (_fm("cifar", dataset="cifar10"), ["test_batch.bin: the file is empty"]),
    # 13. gzip bombs and downloads
    (_fm("bomb"), ["train-images-idx3-ubyte.gz: unexpected bytes after the 784 bytes of data its header announces"]),
    (_fm("too-many"), ["train-images-idx3-ubyte.gz: its header announces 60001 items", "must be at most 60000"]),
    (["train", "mlp", "--data", "mnist", "--epochs", "1", "--quiet", "--threads", "1"],
     [f"{MNIST_TRAIN_IMAGES.url}: sends more than the {MNIST_TRAIN_IMAGES.size} bytes expected; stopped there, not saved"]),
    (["train", "mlp", "--data", "fashion-mnist", "--epochs", "1", "--quiet", "--threads", "1"],
     [f"{FM_TRAIN_IMAGES.url}: SHA-256 is", f"expected {FM_TRAIN_IMAGES.sha256}; not saved"]),  # plain http, verified
    # 16. a FIFO given as an image (opening it would block forever)
    (["predict", "{run}", "{fifo}"], ["pipe.png is a FIFO (named pipe), not an image file"]),
]


def _row_id(argv: list[str]) -> str:
    text = " ".join(argv).replace(" --data digits", "").replace(" --epochs 1 --quiet --threads 1", "")
    return text.replace("{data}/", "").replace("--data-dir ", "")


@pytest.mark.parametrize("argv, needles", ROWS, ids=[_row_id(a) for a, _ in ROWS])
def test_refused(world, argv, needles, capsys, tmp_path):
    out = tmp_path / "out"
    argv = [a.format(**{k: str(v) for k, v in world.items()}) for a in argv]
    if argv[0] == "train":
        argv += ["--out", str(out)]
    assert_refused(capsys, argv, needles, untouched=[world["run"], world["data"], world["root"] / "cache", world["image"]])
    assert not out.exists(), "a refused train left its --out folder behind"
    assert not list((world["root"] / "cache").rglob("*.part")), "a refused download left a partial file"


def test_table_size():
    assert len(ROWS) >= 25
