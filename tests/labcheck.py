"""The checks every lab experiment gets (tests/test_lab.py runs them for every registered one):
its quick run gives the verdict it declares (`@experiment(id, quick_verdict=..., opposite=...)`)
and writes result.json and its figures, with no NaN/inf in its numbers; the params it declares as
the opposite evidence flip the verdict to "does not hold". NUMBER_CHECKS holds further checks of
some quick runs' numbers, by claim id.
"""

import importlib
import json
from pathlib import Path

from deepnotes.lab import VERDICTS, Experiment, run_experiment

REQUIRED = {"id", "claim", "verdict", "numbers", "figures", "seconds"}


def quiet(_msg: str) -> None:
    pass


def undeclared(experiments: list[Experiment]) -> list[str]:
    """Ids of the experiments that do not declare a quick verdict (that opposite evidence can flip)
    and the opposite evidence."""
    return [e.id for e in experiments if e.quick_verdict not in VERDICTS or e.quick_verdict == "does not hold" or not e.opposite]


def misnamed(experiments: list[Experiment]) -> list[str]:
    """Ids of the experiments not named run_cNN, or whose module has no judge_cNN."""
    bad = []
    for e in experiments:
        module = importlib.import_module(e.run.__module__)
        if e.run.__name__ != f"run_{e.id.lower()}" or not callable(getattr(module, f"judge_{e.id.lower()}", None)):
            bad.append(e.id)
    return bad


def check_quick_run(cid: str, expected: str | None, out: Path) -> dict:
    assert expected in VERDICTS, f"{cid} declares no quick_verdict in @experiment"
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


def check_opposite_flips(cid: str, expected: str | None, opposite: dict | None, out: Path) -> None:
    assert opposite, f"{cid} declares no opposite evidence in @experiment"
    result = run_experiment(cid, out / "opposite", quick=True, log=quiet, **opposite)
    assert result["verdict"] == "does not hold" != expected, result["reason"]


# ---------------------------------------------------------------- further checks of quick runs' numbers


def _c25(n: dict) -> None:
    from deepnotes.lab.dense.fcn import C25_TOLERANCE

    assert n["equal"]["max_abs_diff"] <= C25_TOLERANCE and n["score_map"]["grid"] == [17, 17]


def _c29(n: dict) -> None:
    assert n["shapes"]["patches"] == [196, 768] and n["shapes"]["with class token"] == [197, 768]
    assert n["other_models"] == {"vit_s_16": [197, 384], "vit_ti_16": [197, 192]}


def _c32(n: dict) -> None:
    assert all(n["arms"]["tested"][p]["bit_identical"] for p in ("scratch", "fused"))


def _c34(n: dict) -> None:
    assert n["cnn"]["first_rf_measured"] == 3 and n["cnn"]["first_support_pixels"] == 9
    assert n["vit"]["min_support"] == 1.0


def _c46(n: dict) -> None:
    assert n["sklearn_relative_error"] < 1e-8  # oracle: scikit-learn's PCA


def _c48(n: dict) -> None:
    from deepnotes.lab.dense.fcn import C48_METHODS

    assert all(0 < r[m]["mse"] for r in n["reconstruction"].values() for m in C48_METHODS)


NUMBER_CHECKS = {"C25": _c25, "C29": _c29, "C32": _c32, "C34": _c34, "C46": _c46, "C48": _c48}
