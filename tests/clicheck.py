"""What the CLI tests share: run `deepnotes` in-process, check a one-line user error, read a PNG."""

from pathlib import Path

from PIL import Image

from deepnotes.cli import main


def run_cli(capsys, *argv):
    """main(argv) -> (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *needles):
    """Exit code 2 and a single 'deepnotes: error: ...' line containing every needle."""
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepnotes: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)


def png_size(path: Path) -> tuple[int, int]:
    """The (width, height) of a file that must be a valid PNG."""
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        return im.size


def tree_digest(*roots: Path) -> dict[str, bytes]:
    """Every file under the roots (or the root itself, if a file) with its bytes: to prove a
    refused command changed nothing on disk."""
    out = {}
    for root in map(Path, roots):
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
        out |= {str(p): p.read_bytes() for p in files}
    return out


def assert_refused(capsys, argv, needles, untouched=()):
    """One row of a bad-input table: `deepnotes *argv` exits 2 with one line naming the problem
    (every needle in it), no traceback, and no file under `untouched` changes, appears or goes."""
    before = tree_digest(*untouched)
    code, _, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, *needles)
    assert tree_digest(*untouched) == before, f"{argv} changed files it should not have"
