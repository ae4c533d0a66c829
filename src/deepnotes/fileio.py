"""Safe file writing: everything deepnotes writes goes through a temp file and an atomic rename.

A crash or Ctrl-C in the middle of a write leaves the previous file intact, never a
half-written one under the final name. SHA-256 digests let readers verify files before use.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed onto `path`.

        with atomic_path(out / "model.safetensors") as tmp:
            save_file(tensors, tmp)

    On an exception the temporary file is removed and `path` is left as it was. A writer that
    fails for lack of space without saying so (torch.save reports "unexpected pos ...") is
    reported as OSError ENOSPC, so the user reads "No space left on device".
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
        except OSError:
            raise
        except Exception as e:
            if disk_full(path.parent):
                raise OSError(errno.ENOSPC, f"No space left on device ({type(e).__name__}: {e})", str(path)) from e
            raise
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        # mkstemp makes the file 0600; keep the old file's mode, or the usual 0644.
        try:
            mode = path.stat().st_mode & 0o777
        except OSError:
            mode = 0o644
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, path)
        fsync_dir(path.parent)
    finally:
        tmp_path.unlink(missing_ok=True)


def disk_full(folder: Path, margin: int = 1 << 20) -> bool:
    """True when the file system of `folder` has less than `margin` bytes free."""
    try:
        return shutil.disk_usage(folder).free < margin
    except OSError:
        return False


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (not possible on every platform or filesystem)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
