"""The two checks every lab experiment gets (used by the tests/test_lab_*.py files):
its quick run gives the claimed verdict and writes result.json and its figures, and the
opposite evidence flips the verdict to "does not hold"."""

import json
from pathlib import Path

from deepnotes.lab import run_experiment

REQUIRED = {"id", "claim", "verdict", "numbers", "figures", "seconds"}


def quiet(_msg: str) -> None:
    pass


def check_quick_run(cid: str, expected: str, out: Path) -> dict:
    result = run_experiment(cid, out / "claim", quick=True, log=quiet)
    assert result["verdict"] == expected, result["reason"]
    folder = out / "claim" / cid
    saved = json.loads((folder / "result.json").read_text())
    assert REQUIRED <= set(saved)
    assert saved["verdict"] == expected and saved["id"] == cid
    assert saved["figures"] and all(f.endswith(".png") for f in saved["figures"])
    for name in saved["figures"]:
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    json.dumps(saved["numbers"], allow_nan=False)  # no NaN/inf sneaks into the numbers
    return result


def check_opposite_flips(cid: str, expected: str, opposite: dict, out: Path) -> None:
    result = run_experiment(cid, out / "opposite", quick=True, log=quiet, **opposite)
    assert result["verdict"] == "does not hold" != expected, result["reason"]
