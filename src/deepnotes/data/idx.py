"""Read and write IDX files, the format of MNIST and Fashion-MNIST (gzip-compressed or plain).

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the values, big-endian, in C order:

    0x00000803  images: ubyte, 3 dims (N, rows, cols)
    0x00000801  labels: ubyte, 1 dim  (N,)

    x = read_idx("train-images-idx3-ubyte.gz")     # -> np.ndarray, native byte order, writable
    write_idx(tmp / "x-idx3-ubyte.gz", x)          # gzip when the name ends in .gz (for tests)

Every problem with a file (bad gzip data, CRC error, bad magic, wrong length) is a DataError
that names the file and says what is wrong. Reading is bounded: the header is checked first
(against what the caller expects, e.g. (N, 28, 28) with N at most 60,000), then only the bytes
it announces are decompressed, so a gzip bomb is refused after at most that many.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import struct
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from deepnotes.errors import DataError

# IDX type code -> big-endian numpy dtype.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}

GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20  # bytes decompressed at a time
MAX_BYTES = 1 << 30  # the most data an IDX file may announce (MNIST's training images: 47 MB)


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[BinaryIO]:
    """The file as a stream of its (decompressed, when it is gzip) bytes; gzip is decided by the
    first bytes, not the name. Problems reading it become DataErrors naming the file."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(0)
            if head != GZIP_MAGIC:
                if path.suffix == ".gz":
                    raise DataError(f"{path}: not a gzip file (it does not start with 1f 8b)")
                yield f
            else:
                with gzip.GzipFile(fileobj=f, mode="rb") as g:
                    yield g
    except DataError:
        raise
    except EOFError:
        raise DataError(f"{path}: the gzip data ends early (truncated download?)") from None
    except (gzip.BadGzipFile, zlib.error) as e:
        # BadGzipFile covers "CRC check failed" and "Incorrect length"; zlib.error bad deflate data.
        raise DataError(f"{path}: corrupt gzip data ({e})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


def _read_up_to(f: BinaryIO, n: int) -> bytearray:
    """Up to n bytes of f (fewer only at its end), read in chunks: a gzip stream is never
    decompressed further than asked, and memory grows only with the bytes really there."""
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(min(CHUNK, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return buf


def read_bytes(path: str | Path, limit: int = MAX_BYTES) -> bytes:
    """The content of `path`, decompressed when it is gzip (decided by its first bytes, not its name).
    More than `limit` bytes (after decompression) is a DataError, found without reading further."""
    path = Path(path)
    with _opened(path) as f:
        data = _read_up_to(f, limit + 1)
    if len(data) > limit:
        raise DataError(f"{path}: more than {limit} bytes (decompressed), too large for an IDX file here")
    return bytes(data)


def _header(f: BinaryIO, name: str) -> tuple[np.dtype, tuple[int, ...]]:
    """Read and check the magic number and the dimensions at the start of an IDX stream."""
    head = _read_up_to(f, 4)
    if len(head) < 4:
        raise DataError(f"{name}: {len(head)} bytes, too short for an IDX header (truncated?)")
    zero, code, ndim = struct.unpack(">HBB", head)
    if zero != 0 or code not in IDX_TYPES or ndim == 0:
        magic = int.from_bytes(head, "big")
        raise DataError(f"{name}: bad magic number 0x{magic:08x} (not an IDX file; expected 0x000008dd etc.)")
    raw = _read_up_to(f, 4 * ndim)
    if len(raw) < 4 * ndim:
        raise DataError(f"{name}: header needs {4 + 4 * ndim} bytes for {ndim} dimensions, file has {4 + len(raw)} (truncated?)")
    return IDX_TYPES[code], struct.unpack(f">{ndim}I", raw)


def _payload(dtype: np.dtype, dims: tuple[int, ...], data: bytes | bytearray, name: str, more: bool) -> np.ndarray:
    """The values after the header: exactly prod(dims) of them (`more`: bytes follow them)."""
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) < expected:
        what = "pixels" if len(dims) >= 2 else "values"
        raise DataError(
            f"{name}: expected {expected} bytes of {what} after the header (shape {dims}), "
            f"found {len(data)} (truncated?)"
        )
    if len(data) > expected:
        raise DataError(f"{name}: {len(data) - expected} unexpected bytes after the {expected} bytes of data (shape {dims})")
    if more:  # not read on: a gzip bomb would be decompressed whole just to count it
        raise DataError(f"{name}: unexpected bytes after the {expected} bytes of data its header announces (shape {dims})")
    arr = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize)
    return arr.reshape(dims).astype(dtype.newbyteorder("="))  # copy: native order, writable


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an (uncompressed) IDX file; `name` is used in error messages."""
    f = io.BytesIO(data)
    dtype, dims = _header(f, name)
    return _payload(dtype, dims, data[f.tell() :], name, more=False)


def read_idx(
    path: str | Path,
    *,
    ndim: int | None = None,
    dtype: np.dtype | str | None = None,
    item_shape: tuple[int, ...] | None = None,
    max_items: int | None = None,
    what: str = "",
) -> np.ndarray:
    """Read an IDX file (gzip or plain). Optionally require `ndim` dimensions, value `dtype`, items
    (the first dimension counts them) of `item_shape` and at most `max_items` of them; `what`
    names what the file must hold in error messages (e.g. "fashion-mnist's training images").

    The header is checked first, and then only as many bytes as it announces are decompressed
    (plus one, to see that nothing follows): a gzip bomb is refused after at most that many bytes,
    never decompressed whole, and a header may not announce more than MAX_BYTES.
    """
    path = Path(path)
    must = f"; {what} must be" if what else ", expected"
    with _opened(path) as f:
        found_dtype, dims = _header(f, str(path))
        if ndim is not None and len(dims) != ndim:
            raise DataError(f"{path}: has {len(dims)} dimensions {dims}{must} {ndim}-dimensional")
        if dtype is not None and found_dtype.newbyteorder("=") != np.dtype(dtype):
            raise DataError(f"{path}: holds {found_dtype.newbyteorder('=')} values{must} {np.dtype(dtype)}")
        if item_shape is not None and tuple(dims[1:]) != tuple(item_shape):
            got, want = "x".join(map(str, dims[1:])) or "single values", "x".join(map(str, item_shape)) or "single values"
            raise DataError(f"{path}: holds {dims[0]} items of {got}{must} {want}")
        if max_items is not None and dims[0] > max_items:
            raise DataError(f"{path}: its header announces {dims[0]} items{must} at most {max_items}")
        expected = int(np.prod(dims, dtype=np.int64)) * found_dtype.itemsize
        if expected > MAX_BYTES:
            raise DataError(f"{path}: its header announces {expected} bytes of data (shape {dims}), more than the {MAX_BYTES} read here")
        data = _read_up_to(f, expected)
        more = bool(f.read(1))  # at the end of a gzip stream, this also checks its CRC and length
    return _payload(found_dtype, dims, data, str(path), more)


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of `array` (uint8, int8, int16, int32, float32 or float64)."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES or array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"cannot write a {array.dtype} array of {array.ndim} dimensions as IDX")
    code = _CODES[native]
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write `array` as IDX to `path`, gzip-compressed when the name ends in .gz."""
    path = Path(path)
    data = idx_bytes(array)
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path
