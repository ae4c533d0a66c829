"""Stand-ins the tests share: a server's response this machine cannot reach, and files in real
formats that no installed tool writes (GNU gettext catalogues)."""

import importlib.util
import io
import struct
import sys
import urllib.error
from pathlib import Path


class ZeroBody(io.RawIOBase):
    """A response body of `total` zero bytes, made as they are read (a file of any size without
    the memory); `sent` counts what was read of it, `headers` are the response's."""

    def __init__(self, total: int, headers=None):
        self.total, self.sent, self.headers = total, 0, headers or {}

    def readable(self):
        return True

    def read(self, n=-1):
        n = self.total - self.sent if n is None or n < 0 else min(n, self.total - self.sent)
        self.sent += n
        return bytes(n)

    def __exit__(self, *exc):
        return False


HEADER = "Project-Id-Version: test\nContent-Type: text/plain; charset=UTF-8\nPlural-Forms: nplurals=2; plural=(n > 1);\n"


def write_mo(path: Path, messages: dict) -> Path:
    """A GNU gettext .mo file (little-endian), as documented in the GNU gettext manual, "The Format of
    GNU MO Files": magic 0x950412de, revision 0, N strings, the offsets of the table of original
    strings and of the table of translations, hash table size 0 and its offset; each table holds N
    (length, offset) pairs, sorted by original string; strings are NUL-terminated (the length leaves
    the NUL out). A key may be "context\\x04msgid" or a (singular, plural) tuple whose value is a list
    of forms (stored NUL-separated)."""
    entries = sorted(
        (("\0".join(k) if isinstance(k, tuple) else k).encode(), ("\0".join(v) if isinstance(v, list) else v).encode())
        for k, v in messages.items()
    )
    n = len(entries)
    originals, translations = 28, 28 + 8 * n
    offset = 28 + 16 * n
    tables, blobs = [b"", b""], b""
    for column in (0, 1):
        for entry in entries:
            s = entry[column]
            tables[column] += struct.pack("<2I", len(s), offset)
            blobs += s + b"\0"
            offset += len(s) + 1
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack("<7I", 0x950412DE, 0, n, originals, translations, 0, 28 + 16 * n)
    path.write_bytes(header + tables[0] + tables[1] + blobs)
    return path


def serve(monkeypatch, files: dict[str, bytes]) -> list[str]:
    """Replace deepnotes.data.sources' URL opener with one that serves `files` (url -> bytes);
    returns the list of URLs asked for."""
    from deepnotes.data import sources

    calls = []

    def fake(url, timeout=None):
        calls.append(url)
        if url not in files:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        return io.BytesIO(files[url])

    monkeypatch.setattr(sources, "urlopen", fake)
    return calls


def no_network(monkeypatch, tmp_path, system_dirs: dict) -> list[str]:
    """Data sources with no $DEEPNOTES_DATA, the cache inside tmp_path, these SYSTEM_DIRS and a URL
    opener that fails as an offline machine's does; returns the list of URLs asked for."""
    from deepnotes.data import sources

    monkeypatch.delenv("DEEPNOTES_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setattr(sources, "SYSTEM_DIRS", system_dirs)
    calls = []

    def fail(url, timeout=None):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(sources, "urlopen", fail)
    return calls


BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def load_benchmark(name: str):
    """benchmarks/<name>.py as a module (the scripts import their shared machine.py as `python benchmarks/x.py` does)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
