"""Read and write IDX files, the format of MNIST and Fashion-MNIST (gzip-compressed or plain).

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the values, big-endian, in C order:

    0x00000803  images: ubyte, 3 dims (N, rows, cols)
    0x00000801  labels: ubyte, 1 dim  (N,)

    x = read_idx("train-images-idx3-ubyte.gz")     # -> np.ndarray, native byte order, writable
    write_idx(tmp / "x-idx3-ubyte.gz", x)          # gzip when the name ends in .gz (for tests)

Every problem with a file (bad gzip data, CRC error, bad magic, wrong length) is a DataError
that names the file and says what is wrong.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

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


def read_bytes(path: str | Path) -> bytes:
    """The content of `path`, decompressed when it is gzip (decided by its first bytes, not its name)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(0)
            if head != GZIP_MAGIC:
                if path.suffix == ".gz":
                    raise DataError(f"{path}: not a gzip file (it does not start with 1f 8b)")
                return f.read()
            with gzip.GzipFile(fileobj=f, mode="rb") as g:
                return g.read()
    except DataError:
        raise
    except EOFError:
        raise DataError(f"{path}: the gzip data ends early (truncated download?)") from None
    except (gzip.BadGzipFile, zlib.error) as e:
        # BadGzipFile covers "CRC check failed" and "Incorrect length"; zlib.error bad deflate data.
        raise DataError(f"{path}: corrupt gzip data ({e})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an (uncompressed) IDX file; `name` is used in error messages."""
    if len(data) < 4:
        raise DataError(f"{name}: {len(data)} bytes, too short for an IDX header (truncated?)")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    magic = int.from_bytes(data[:4], "big")
    if zero != 0 or code not in IDX_TYPES or ndim == 0:
        raise DataError(f"{name}: bad magic number 0x{magic:08x} (not an IDX file; expected 0x000008dd etc.)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: header needs {header} bytes for {ndim} dimensions, file has {len(data)} (truncated?)")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_TYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    if found < expected:
        what = "pixels" if ndim >= 2 else "values"
        raise DataError(
            f"{name}: expected {expected} bytes of {what} after the header (shape {dims}), "
            f"found {found} (truncated?)"
        )
    if found > expected:
        raise DataError(f"{name}: {found - expected} unexpected bytes after the {expected} bytes of data (shape {dims})")
    arr = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    return arr.reshape(dims).astype(dtype.newbyteorder("="))  # copy: native order, writable


def read_idx(path: str | Path, *, ndim: int | None = None, dtype: np.dtype | str | None = None) -> np.ndarray:
    """Read an IDX file (gzip or plain). Optionally require `ndim` dimensions and value `dtype`."""
    path = Path(path)
    arr = parse_idx(read_bytes(path), str(path))
    if ndim is not None and arr.ndim != ndim:
        raise DataError(f"{path}: has {arr.ndim} dimensions {arr.shape}, expected {ndim}")
    if dtype is not None and arr.dtype != np.dtype(dtype):
        raise DataError(f"{path}: holds {arr.dtype} values, expected {np.dtype(dtype)}")
    return arr


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
