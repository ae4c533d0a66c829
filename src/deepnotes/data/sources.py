"""Where dataset files come from, tried in this order:

1. the folder given as data_dir / --data-dir (if given, it must hold the files: no fall-through);
2. $DEEPNOTES_DATA/<name>/ ($DEEPNOTES_DATA is a root with one folder per dataset;
   several roots may be joined with os.pathsep);
3. a system copy, where a system package installs one (SYSTEM_DIRS: Debian's
   dataset-fashion-mnist puts Fashion-MNIST in /usr/share/datasets/fashion-mnist);
4. the user cache, $XDG_CACHE_HOME/deepnotes/<name>/ (default ~/.cache/deepnotes/<name>/);
5. a download from the canonical source into the cache (unless download=False).

A download goes to a temporary file in the cache folder, is fsync'ed, checked against the
published size and SHA-256, and only then renamed to its final name (os.replace), so a file
under its final name in the cache is always a verified one; nothing existing is deleted. A
server that sends more than the published size is cut off there (nothing beyond it is written).
Every Remote carries its SHA-256, so data that is only available over plain http (Fashion-MNIST's
canonical URL) is verified by SHA-256 before use, exactly as data over https: a file altered in
transit never gets its final name (tests/test_data.py checks both).
When every place fails, the DataError names each place tried and how to get the data.

    found = locate(FASHION_MNIST, data_dir=None, download=True)
    found.folder, found.paths["train-images-idx3-ubyte.gz"]

Files found locally are not hashed (a system copy may be repackaged, and plain files are
accepted too); the readers check their structure instead, which catches truncation and
corruption (gzip CRC, IDX lengths, CIFAR record size).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from deepnotes.errors import DataError
from deepnotes.fileio import fsync_dir

ENV_VAR = "DEEPNOTES_DATA"
TIMEOUT = 60.0  # seconds without data before a download gives up
CHUNK = 1 << 20

# System copies by dataset name (module-level so tests and packagers can change them).
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}


@dataclass(frozen=True)
class Remote:
    """A file to download, with its published size and SHA-256."""

    url: str
    sha256: str
    size: int | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Source:
    """Where a dataset's files may be and how to get them.

    `files` lists the needed files, each as a tuple of accepted names (first = canonical),
    e.g. ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"). `subdirs` are the places
    inside a candidate folder where the files may sit ("" = the folder itself). `unpack`,
    for archives, turns the downloaded `remotes` in the cache folder into the files.
    """

    name: str
    files: tuple[tuple[str, ...], ...]
    remotes: tuple[Remote, ...]
    how_to_get: str
    subdirs: tuple[str, ...] = ("",)
    unpack: Callable[[Path], None] | None = None  # unpack(cache_folder)

    def expected(self) -> str:
        return ", ".join(" or ".join(names) for names in self.files)

    def find(self, folder: Path) -> tuple[Path, dict[str, Path]] | None:
        """(subfolder, {canonical name: path}) if `folder` holds every file, else None."""
        for sub in self.subdirs:
            d = folder / sub if sub else folder
            paths = {}
            for names in self.files:
                hit = next((d / n for n in names if (d / n).is_file()), None)
                if hit is None:
                    break
                paths[names[0]] = hit
            else:
                return d, paths
        return None

    def why_not(self, folder: Path) -> str:
        """Why `folder` does not qualify, for error messages."""
        if not folder.is_dir():
            return "no such folder"
        best = None
        for sub in self.subdirs:
            d = folder / sub if sub else folder
            missing = [names[0] for names in self.files if not any((d / n).is_file() for n in names)]
            if best is None or len(missing) < len(best):
                best = missing
        why = f"missing {', '.join(best)}"
        archives = [r.filename for r in self.remotes if self.unpack and (folder / r.filename).is_file()]
        if archives:
            why += f" ({archives[0]} is there: unpack it with `tar xzf {archives[0]}`)"
        return why


@dataclass
class Found:
    """Where a dataset was found: the folder, the path of each file, and which place it was."""

    folder: Path
    paths: dict[str, Path]
    place: str = ""
    tried: list[str] = field(default_factory=list)


class DownloadError(DataError):
    """A download failed (network, HTTP error, wrong size or hash); nothing was saved."""


def cache_root() -> Path:
    """$XDG_CACHE_HOME/deepnotes, or ~/.cache/deepnotes (XDG says: ignore a relative value)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "deepnotes"


def cache_dir(name: str) -> Path:
    return cache_root() / name


def urlopen(url: str, timeout: float):
    """urllib's urlopen, imported on first use (urllib/ssl cost ~25 ms); tests replace this."""
    from urllib.request import urlopen as _urlopen

    return _urlopen(url, timeout=timeout)


def download_file(
    url: str, dest: str | Path, sha256: str, size: int | None = None, *, timeout: float = TIMEOUT, progress: bool = True
) -> Path:
    """Download `url` to `dest`, verified: temp file in dest's folder, fsync, size + SHA-256, os.replace.

    Reading stops as soon as more than `size` bytes arrive (or more than the Content-Length, when
    `size` is None), so a server cannot fill the disk. On any failure the temporary file is
    removed, `dest` is untouched and a DownloadError says why.
    """
    import http.client
    import urllib.error

    from tqdm.auto import tqdm

    dest = Path(dest)
    made_dir = not dest.parent.exists()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as e:
        raise DownloadError(f"cannot write to {dest.parent} ({e.strerror or e})") from None
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        n = 0
        with os.fdopen(fd, "wb") as f:
            try:
                with urlopen(url, timeout=timeout) as resp:
                    length = getattr(resp, "headers", {}).get("Content-Length")
                    total = int(length) if length and str(length).isdigit() else size
                    limit = size if size is not None else total  # None: neither is known
                    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                              desc=dest.name, disable=not progress, leave=False) as bar:
                        while chunk := resp.read(CHUNK if limit is None else min(CHUNK, limit - n + 1)):
                            if limit is not None and n + len(chunk) > limit:  # checked before writing
                                raise DownloadError(f"{url}: sends more than the {limit} bytes expected; stopped there, not saved")
                            f.write(chunk)
                            h.update(chunk)
                            n += len(chunk)
                            bar.update(len(chunk))
            except urllib.error.HTTPError as e:
                raise DownloadError(f"{url}: HTTP error {e.code} {e.reason}") from None
            except urllib.error.URLError as e:  # no network, DNS failure, refused
                raise DownloadError(f"{url}: {e.reason}") from None
            except (OSError, http.client.HTTPException) as e:  # timeouts, resets, disk full
                raise DownloadError(f"{url}: {type(e).__name__}: {e}") from None
            f.flush()
            os.fsync(f.fileno())
        if size is not None and n != size:
            raise DownloadError(f"{url}: received {n} bytes, expected {size} (interrupted?); not saved")
        got = h.hexdigest()
        if got != sha256.lower():
            raise DownloadError(f"{url}: SHA-256 is {got}, expected {sha256}; not saved")
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if made_dir:
            with contextlib.suppress(OSError):
                dest.parent.rmdir()  # only if still empty
        raise
    return dest


def fetch(source: Source, folder: Path, download: bool = True) -> None:
    """Bring `source`'s files into `folder` (the cache): download what is missing, then unpack."""
    missing = [r for r in source.remotes if not (folder / r.filename).is_file()]
    if missing and not download:
        raise DownloadError(f"skipped (download=False); it would fetch {', '.join(r.url for r in missing)}")
    for r in missing:
        download_file(r.url, folder / r.filename, r.sha256, r.size)
    if source.unpack is not None:
        source.unpack(folder)


def locate(source: Source, data_dir: str | Path | None = None, download: bool = True) -> Found:
    """Find (or download) `source`'s files, trying the places in the module docstring in order."""
    name = source.name
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        for cand in (d, d / name):
            hit = source.find(cand)
            if hit:
                return Found(hit[0], hit[1], "data_dir")
        where = f"{d}" + "".join(f" or {d / s}" for s in source.subdirs if s)
        raise DataError(
            f"{name}: the data folder {d} does not hold the {name} files ({source.why_not(d)}); "
            f"expected in {where} (or in {d / name}): {source.expected()}"
        )

    tried: list[str] = []

    def attempt(folder: Path, label: str) -> Found | None:
        hit = source.find(folder)
        if hit:
            return Found(hit[0], hit[1], label, tried)
        tried.append(f"{folder} ({label}): {source.why_not(folder)}")
        return None

    roots = [r for r in os.environ.get(ENV_VAR, "").split(os.pathsep) if r]
    if not roots:
        tried.append(f"${ENV_VAR}: not set")
    for root in roots:
        if found := attempt(Path(root).expanduser() / name, f"${ENV_VAR}"):
            return found
    for folder in SYSTEM_DIRS.get(name, ()):
        if found := attempt(Path(folder), "system copy"):
            return found
    cache = cache_dir(name)
    if found := attempt(cache, "user cache"):
        return found

    try:
        fetch(source, cache, download)
    except DownloadError as e:
        tried.append(f"download: {e}")
    else:
        hit = source.find(cache)
        if hit:
            return Found(hit[0], hit[1], "downloaded", tried)
        tried.append(f"download: done, but {cache}: {source.why_not(cache)}")

    raise DataError(f"{name}: data not found. Tried: " + "; ".join(tried) + f". To get it: {source.how_to_get}")


# --------------------------------------------------------------------------- the datasets

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _idx_files() -> tuple[tuple[str, ...], ...]:
    return tuple((f"{f}.gz", f) for f in IDX_FILES)  # gzip as published, or unpacked


def _hint(name: str, where: str) -> str:
    return (
        f"{where}; put them in a folder and pass --data-dir FOLDER (data_dir=...), "
        f"or set {ENV_VAR}=ROOT with the files in ROOT/{name}/"
    )


FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# SHA-256 of the files as published. Their MD5s match the Fashion-MNIST README
# (8d4fb7e6..., 25c81989..., bef4ecab..., bb300cfd...). Debian's dataset-fashion-mnist ships
# the same compressed data with the gzip header's file name and mtime stripped (24 or 23
# bytes smaller, so other hashes): putting them back reproduces these hashes byte for byte.
FASHION_MNIST = Source(
    name="fashion-mnist",
    files=_idx_files(),
    remotes=(
        Remote(FASHION_MNIST_URL + "train-images-idx3-ubyte.gz", "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
        Remote(FASHION_MNIST_URL + "train-labels-idx1-ubyte.gz", "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
        Remote(FASHION_MNIST_URL + "t10k-images-idx3-ubyte.gz", "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
        Remote(FASHION_MNIST_URL + "t10k-labels-idx1-ubyte.gz", "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
    ),
    how_to_get=_hint(
        "fashion-mnist",
        "`sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or download the 4 files "
        f"from {FASHION_MNIST_URL}",
    ),
)

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # torchvision's mirror of yann.lecun.com
# SHA-256 of the original LeCun files (their MD5s are torchvision's f68b3c2d..., d53e105e...,
# 9fb629c4..., ec29112d...). Sizes are the originals'.
MNIST = Source(
    name="mnist",
    files=_idx_files(),
    remotes=(
        Remote(MNIST_URL + "train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
        Remote(MNIST_URL + "train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
        Remote(MNIST_URL + "t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
        Remote(MNIST_URL + "t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
    ),
    how_to_get=_hint("mnist", f"download the 4 files from {MNIST_URL}"),
)


def _unpack_cifar10(folder: Path) -> None:
    from deepnotes.data import cifar

    if not (folder / cifar.FOLDER).is_dir():
        cifar.extract_tar(folder / "cifar-10-binary.tar.gz", folder)


CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
# The binary version (never the pickled one). MD5 c32a1d4ab5d03f1284b67883e8d87530 as published
# on the CIFAR page; the SHA-256 is the one TensorFlow Datasets records for this URL.
CIFAR10 = Source(
    name="cifar10",
    files=tuple((f,) for f in ("data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                               "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin")),
    remotes=(Remote(CIFAR10_URL, "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd", 170052171),),
    subdirs=("", "cifar-10-batches-bin"),
    unpack=_unpack_cifar10,
    how_to_get=_hint("cifar10", f"download {CIFAR10_URL} and unpack it (tar xzf; the files are in cifar-10-batches-bin/)"),
)

SOURCES: dict[str, Source] = {s.name: s for s in (FASHION_MNIST, MNIST, CIFAR10)}

# --------------------------------------------------------------------------- sentence pairs (data/pairs.py)

# The French gettext catalogues Debian packages install: read in place, nothing to download.
SYSTEM_DIRS["gettext-fr-en"] = (Path("/usr/share/locale/fr/LC_MESSAGES"),)
GETTEXT_FR_EN_HOW = (
    "install Debian/Ubuntu packages that ship French messages (e.g. `sudo apt-get install libc-l10n coreutils "
    "iso-codes git binutils`; minimal images may exclude /usr/share/locale in /etc/dpkg/dpkg.cfg.d/), pass "
    "--data-dir FOLDER with *.mo files, or with internet use --data tatoeba-fr-en"
)

TATOEBA_FR_EN_URL = "https://download.pytorch.org/tutorial/data.zip"
# The PyTorch seq2seq tutorial's English->French pairs (Tatoeba, via manythings.org/anki): data/eng-fra.txt
# inside data.zip. No SHA-256 (or size) is published for data.zip and none could be obtained where this was
# written (no internet), so none is recorded: a download is verified against $DEEPNOTES_TATOEBA_SHA256 (the
# SHA-256 of data.zip from a copy you trust), and without it nothing is downloaded. Record the hash here
# once it is known; a file found locally (--data-dir, $DEEPNOTES_DATA, the cache) is used as always.
TATOEBA_FR_EN_SHA256 = ""
TATOEBA_SHA256_VAR = "DEEPNOTES_TATOEBA_SHA256"


def _unpack_tatoeba(folder: Path) -> None:
    from deepnotes.data import pairs

    pairs.extract_eng_fra(folder / "data.zip", folder / "eng-fra.txt")


TATOEBA_FR_EN = Source(
    name="tatoeba-fr-en",
    files=(("eng-fra.txt",),),
    remotes=(Remote(TATOEBA_FR_EN_URL, TATOEBA_FR_EN_SHA256),),
    subdirs=("", "data"),
    unpack=_unpack_tatoeba,
    how_to_get=_hint(
        "tatoeba-fr-en",
        f"download {TATOEBA_FR_EN_URL} and unzip it (the file is data/eng-fra.txt), or set "
        f"{TATOEBA_SHA256_VAR} to data.zip's SHA-256 to let deepnotes download and verify it",
    ),
)
SOURCES[TATOEBA_FR_EN.name] = TATOEBA_FR_EN


def tatoeba_fr_en() -> Source:
    """TATOEBA_FR_EN with the SHA-256 a download is verified against: the recorded one, else
    $DEEPNOTES_TATOEBA_SHA256 ("" when neither is known: then it is not downloaded)."""
    sha = TATOEBA_FR_EN_SHA256 or os.environ.get(TATOEBA_SHA256_VAR, "").strip().lower()
    if sha and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
        raise DataError(f"${TATOEBA_SHA256_VAR} is {sha!r}; it must be a SHA-256: 64 hexadecimal digits (sha256sum data.zip)")
    from dataclasses import replace

    return replace(TATOEBA_FR_EN, remotes=(Remote(TATOEBA_FR_EN_URL, sha),))
