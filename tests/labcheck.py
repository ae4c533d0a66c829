"""The two checks every lab experiment gets (used by the tests/test_lab_*.py files):
its quick run gives the claimed verdict and writes result.json and its figures, and the
opposite evidence flips the verdict to "does not hold". claim_tests(CASES) makes both tests
(parametrized over the claims of a file) and their output-folder fixture:

    CASES = {"C25": ("holds", {"conversion": "channels_last"}), ...}   # id -> (verdict, opposite params)
    out, test_quick_run_gives_the_claimed_verdict, test_opposite_evidence_flips_the_verdict = claim_tests(CASES)
"""

import json
from pathlib import Path
from typing import Callable

import pytest

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


def claim_tests(cases: dict[str, tuple[str, dict]], check_numbers: Callable[[str, dict], None] | None = None):
    """(fixture `out`, quick-run test, opposite-evidence test) for the claims in `cases`
    (id -> (verdict of the quick default run, params giving the opposite evidence)).
    check_numbers(cid, numbers), if given, checks a quick run's numbers further."""

    @pytest.fixture(scope="module")
    def out(tmp_path_factory):
        return tmp_path_factory.mktemp("lab")

    @pytest.mark.parametrize("cid", sorted(cases))
    def test_quick_run_gives_the_claimed_verdict(cid, out):
        result = check_quick_run(cid, cases[cid][0], out)
        if check_numbers is not None:
            check_numbers(cid, result["numbers"])

    @pytest.mark.parametrize("cid", sorted(cases))
    def test_opposite_evidence_flips_the_verdict(cid, out):
        check_opposite_flips(cid, cases[cid][0], cases[cid][1], out)

    return out, test_quick_run_gives_the_claimed_verdict, test_opposite_evidence_flips_the_verdict
