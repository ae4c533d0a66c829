"""A table of bad inputs and damaged run directories against the CLI: each one exits 2 with one
line that names the problem (every needle in it), no traceback, and changes no file it should
not (tests/clicheck.assert_refused). The options and data side of the table is in
tests/test_bad_inputs_options.py.

Each row is (id, how to damage a fresh copy of a finished run, the command, the needles); the
copy is made per row, so rows never see each other's damage."""

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from clicheck import assert_refused, run_cli
from PIL import Image

from deepnotes.fileio import sha256_file

TRAIN = ["train", "mlp", "--data", "digits", "--epochs", "1", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 1-epoch MLP run on digits, a linear one, an image, and lab results."""
    from deepnotes.cli import main

    root = tmp_path_factory.mktemp("bad")
    assert main([*TRAIN, "--out", str(root / "run")]) == 0
    assert main([*TRAIN, "--model-arg", "hidden=[]", "--out", str(root / "linear")]) == 0
    Image.fromarray((np.arange(64).reshape(8, 8) * 4).astype(np.uint8)).save(root / "digit.png")
    return root


def _resign(run: Path) -> None:
    """Make a changed checkpoint pass its SHA-256 check (latest.json re-signed): only its contents can give it away."""
    latest = run / "checkpoints" / "latest.json"
    record = json.loads(latest.read_text())
    latest.write_text(json.dumps({**record, "sha256": sha256_file(run / "checkpoints" / record["file"])}))


def _checkpoint(run: Path) -> Path:
    return run / "checkpoints" / json.loads((run / "checkpoints" / "latest.json").read_text())["file"]


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def _malicious(run: Path) -> None:
    _checkpoint(run).write_bytes(pickle.dumps({"model": _Payload()}))
    _resign(run)


def _random_bytes(run: Path) -> None:
    _checkpoint(run).write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _resign(run)


def _other_model(run: Path) -> None:
    import torch

    state = torch.load(_checkpoint(run), weights_only=True)
    state["model"] = {"fc.weight": torch.zeros(3, 3)}
    torch.save(state, _checkpoint(run))
    _resign(run)


def _edit_json(name: str, change, resign: bool = False):
    def damage(run: Path) -> None:
        path = run / name
        path.write_text(json.dumps(change(json.loads(path.read_text()))))
        if resign:  # as if the SHA-256 had been recorded after the edit (or by an old run that recorded none)
            manifest = json.loads((run / "manifest.json").read_text())
            manifest.pop(name, None)
            (run / "manifest.json").write_text(json.dumps(manifest))

    return damage


def _write(name: str, text: str):
    def damage(run: Path) -> None:
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(text)

    return damage


def _remove(name: str):
    def damage(run: Path) -> None:
        p = run / name
        shutil.rmtree(p) if p.is_dir() else p.unlink()

    return damage


def _classes_5(config: dict) -> dict:
    return {**config, "model_args": {**config["model_args"], "num_classes": 5}}


def _std_0(config: dict) -> dict:
    return {**config, "input": {**config["input"], "std": [0.0]}}


RESUME = [*TRAIN, "--resume", "--out", "{run}"]
PREDICT = ["predict", "{run}", "{image}"]

# id, damage (or None), argv ({run}: the damaged copy, {root}: the fixture's folder, {tmp}: a fresh folder), needles
ROWS = [
    ("overwrite a finished run", None, [*TRAIN, "--out", "{run}"], ["already holds a run", "--resume"]),
    ("overwrite a run without checkpoints/", _remove("checkpoints"), [*TRAIN, "--out", "{run}"], ["already holds a run"]),
    ("overwrite a folder with metrics.json", None, [*TRAIN, "--out", "{tmp}/m"], ["already holds", "metrics.json"]),
    ("overwrite any non-empty folder", None, [*TRAIN, "--out", "{tmp}/notes"], ["already holds", "notes.txt"]),
    ("--out is a file", None, [*TRAIN, "--out", "{tmp}/notes/notes.txt"], ["is a file"]),
    ("--out is empty", None, [*TRAIN, "--out", ""], ["--out is empty"]),
    ("--out name too long", None, [*TRAIN, "--out", "{tmp}/" + "x" * 300], ["File name too long"]),
    ("--out under a file", None, [*TRAIN, "--out", "{tmp}/notes/notes.txt/run"], ["is a file"]),
    ("resume a folder that does not exist", None, [*TRAIN, "--resume", "--out", "{tmp}/nothing"], ["does not exist"]),
    ("resume a folder that is not a run", None, [*TRAIN, "--resume", "--out", "{tmp}/notes"], ["not a run directory"]),
    ("resume: manifest.json not JSON", _write("manifest.json", "{oops"), RESUME, ["manifest.json", "not valid JSON"]),
    ("resume: manifest.json a list", _write("manifest.json", "[]"), RESUME, ["manifest.json", "damaged"]),
    ("resume: latest.json not JSON", _write("checkpoints/latest.json", "{"), RESUME, ["latest.json", "not valid JSON"]),
    ("resume: latest.json without file", _write("checkpoints/latest.json", '{"sha256": "ab"}'), RESUME, ["latest.json", "damaged"]),
    ("resume: latest.json names ../", _write("checkpoints/latest.json", '{"file": "../x", "sha256": "ab"}'), RESUME, ["latest.json"]),
    ("resume: checkpoint missing", lambda run: _checkpoint(run).unlink(), RESUME, ["is missing"]),
    ("resume: checkpoint changed", lambda run: _checkpoint(run).write_bytes(b"x"), RESUME, ["does not match the SHA-256"]),
    ("resume: random bytes, SHA re-signed", _random_bytes, RESUME, ["not a deepnotes checkpoint"]),
    ("resume: a malicious pickle", _malicious, RESUME, ["not a deepnotes checkpoint"]),
    ("resume: another model's weights", _other_model, RESUME, ["does not fit mlp"]),
    ("resume: config.json edited", _edit_json("config.json", _std_0), RESUME, ["config.json", "SHA-256"]),
    ("resume: config.json {}", _edit_json("config.json", lambda c: {}, resign=True), RESUME, ["config.json lacks"]),
    ("resume: config.json a list", _edit_json("config.json", lambda c: [], resign=True), RESUME, ["config.json", "JSON object"]),
    ("resume: config.json from the future", _edit_json("config.json", lambda c: {**c, "format_version": 99}, resign=True), RESUME,
     ["format_version 99", "upgrade deepnotes"]),
    ("resume: metrics.json not JSON", _write("metrics.json", "nan]"), RESUME, ["metrics.json", "not valid JSON"]),
    ("resume: another optimizer", None, [*TRAIN, "--resume", "--out", "{run}", "--optimizer", "sgd"], ["these differ", "optimizer"]),
    ("resume: other epochs, cosine", None, [*TRAIN[:4], "--epochs", "3", *TRAIN[6:], "--resume", "--out", "{run}"],
     ["laid out over 1 epochs", "--epochs 1"]),
    ("predict: config.json edited (std 0)", _edit_json("config.json", _std_0), PREDICT, ["config.json", "SHA-256"]),
    ("predict: manifest.json removed", _remove("manifest.json"), PREDICT, ["cannot be verified"]),
    ("predict: weights changed", lambda run: (run / "model.safetensors").write_bytes(b"0" * 64), PREDICT, ["model.safetensors", "SHA-256"]),
    ("predict: classes disagree with the weights", _edit_json("config.json", _classes_5, resign=True), PREDICT,
     ["does not fit the model", "head"]),
    ("predict: not a run directory", None, ["predict", "{tmp}/notes", "{image}"], ["not a run directory"]),
    ("predict: a file as the run", None, ["predict", "{tmp}/notes/notes.txt", "{image}"], ["not a directory"]),
    ("cam: --out is a folder", None, ["cam", "{run}", "{image}", "--method", "saliency", "--out", "{tmp}"], ["Is a directory", "file name"]),
    ("templates: --out is a folder", None, ["templates", "{root}/linear", "--out", "{tmp}"], ["Is a directory"]),
    ("attack: --out is a file", None, ["attack", "{run}", "--n", "5", "--out", "{tmp}/notes/notes.txt"], ["notes.txt"]),
    ("lab run: --out is a file", None, ["lab", "run", "C46", "--quick", "--out", "{tmp}/notes/notes.txt"], ["notes.txt"]),
    ("lab report: no results", None, ["lab", "report", "{tmp}/nothing"], ["holds no lab results"]),
    ("lab report: a result without a verdict", None, ["lab", "report", "{tmp}/lab"], ["C05", "result.json", "verdict"]),
]


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_is_one_line_and_changes_nothing(row, finished, tmp_path, capsys):
    _, damage, argv, needles = row
    run = tmp_path / "run"
    shutil.copytree(finished / "run", run)
    if damage is not None:
        damage(run)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "metrics.json").write_text("{}")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("mine")
    (tmp_path / "lab" / "C05").mkdir(parents=True)
    (tmp_path / "lab" / "C05" / "result.json").write_text(json.dumps({"id": "C05", "title": "x"}))
    fill = {"run": str(run), "root": str(finished), "tmp": str(tmp_path), "image": str(finished / "digit.png")}
    args = [a.format(**fill) for a in argv]
    assert_refused(capsys, args, needles, untouched=[tmp_path])
    assert not Path("pwned").exists()  # the malicious pickle ran nothing


def test_the_table_is_long_enough():
    from test_bad_inputs_options import ROWS as OPTION_ROWS

    assert len(ROWS) + len(OPTION_ROWS) >= 60


def test_the_error_for_a_malicious_checkpoint_never_advises_weights_only_false(finished, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished / "run", run)
    _malicious(run)
    code, _, err = run_cli(capsys, *RESUME[:-1], str(run))
    assert code == 2 and "weights_only" not in err and "pickle" not in err.lower()
