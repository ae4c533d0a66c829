"""The command line: every bad input is one clear line and exit code 2; train, predict, list work."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from clicheck import assert_one_line_error, run_cli
from PIL import Image

from deepnotes.cli import main
from deepnotes.data import load_dataset


def test_help_does_not_import_torch():
    """What keeps `deepnotes --help` well under half a second: no torch import."""
    code = (
        "import sys, contextlib, io\n"
        "from deepnotes.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "    try: main(['train', '--help'])\n"
        "    except SystemExit: pass\n"
        "heavy = [m for m in ('torch', 'numpy', 'matplotlib', 'sklearn') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_train_help_shows_the_config_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "[digits]" in out and "[adam]" in out and "[cosine]" in out


def test_list_shows_models_and_datasets(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    lines = out.splitlines()
    assert any(line.split()[:2] == ["model", "lenet5"] and "60,850" in line for line in lines)
    assert any(line.split()[:2] == ["dataset", "fashion-mnist"] for line in lines)
    code, out, _ = run_cli(capsys, "list", "lenet*")
    assert code == 0 and len(out.splitlines()) == 2


def test_unknown_model_and_dataset(capsys, tmp_path):
    assert_one_line_error(*run_cli(capsys, "train", "lenet", "--out", str(tmp_path / "a"))[::2], "lenet5")
    code, _, err = run_cli(capsys, "train", "mlp", "--data", "fashion", "--out", str(tmp_path / "b"))
    assert_one_line_error(code, err, "fashion-mnist")


def test_wrong_data_dir(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "mlp", "--data", "fashion-mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, str(tmp_path), "train-images-idx3-ubyte")


def test_bad_numbers(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "mlp", "--epochs", "0", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "--epochs")
    code, _, err = run_cli(capsys, "train", "mlp", "--augment", "crop", "--crop-padding", "0", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "--crop-padding", "got 0")
    code, _, err = run_cli(capsys, "train", "mlp", "--crop-padding", "2", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "--crop-padding applies to --augment crop", "got --augment none")


def test_crop_padding_and_precision_reach_the_run(capsys, tmp_path):
    out = tmp_path / "r"
    code, _, err = run_cli(capsys, "train", "mlp", "--epochs", "1", "--augment", "crop", "--crop-padding", "1",
                           "--precision", "bf16", "--out", str(out), "--quiet")  # fmt: skip
    assert code == 0, err
    saved = json.loads((out / "config.json").read_text())["train"]
    assert saved["crop_padding"] == 1 and saved["augment"] == "crop" and saved["precision"] == "bf16"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """LeNet-5 trained on digits for a few epochs through the CLI."""
    out = tmp_path_factory.mktemp("runs") / "lenet"
    code = main(["train", "lenet5", "--data", "digits", "--epochs", "8", "--lr", "3e-3", "--out", str(out), "--quiet"])
    assert code == 0
    return out


def test_train_writes_the_run(trained_run):
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.9
    html = (trained_run / "report.html").read_text()
    assert "lenet5" in html and "data:image/png;base64," in html


def _save_digit(path, pixels8x8: np.ndarray, scale=10):
    img = Image.fromarray(pixels8x8.astype(np.uint8), mode="L").resize((8 * scale, 8 * scale), Image.NEAREST)
    img.save(path)


def test_predict_agrees_with_the_label_on_real_digits(trained_run, tmp_path, capsys):
    data = load_dataset("digits")
    paths, labels = [], []
    for i in range(12):
        p = tmp_path / f"digit{i}.png"
        _save_digit(p, data.test_x[i, 0])
        paths.append(str(p))
        labels.append(data.classes[data.test_y[i]])
    code, out, _ = run_cli(capsys, "predict", str(trained_run), *paths, "--top", "2")
    assert code == 0
    tops = [line.split()[1] for line in out.splitlines() if line.strip().startswith("1.")]
    assert len(tops) == 12
    assert sum(t == y for t, y in zip(tops, labels)) >= 10
    assert "resized" in out  # the conversion is said


def test_predict_rejects_non_images_and_runs_without_weights(trained_run, tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    assert_one_line_error(*run_cli(capsys, "predict", str(trained_run), str(text))[::2], "notes.txt")
    empty = tmp_path / "empty_run"
    empty.mkdir()
    assert_one_line_error(*run_cli(capsys, "predict", str(empty), str(text))[::2], "config.json")
    broken = tmp_path / "broken_run"
    broken.mkdir()
    (broken / "config.json").write_text((trained_run / "config.json").read_text())
    assert_one_line_error(*run_cli(capsys, "predict", str(broken), str(text))[::2], "model.safetensors")


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "deepnotes", "train", "mlp", "--data", "digits", "--epochs", "400", "--out", str(out), "--threads", "1",
           "--schedule", "none"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    for line in proc.stdout:  # wait until training is under way
        if line.startswith("epoch   2/"):
            break
        assert time.time() < deadline
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "--resume" in stdout
    latest = json.loads((out / "checkpoints" / "latest.json").read_text())
    assert 2 <= latest["epoch"] < 400
    done = subprocess.run(cmd[:7] + ["--schedule", "none", "--epochs", str(latest["epoch"] + 2), "--out", str(out), "--resume", "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "metrics.json").read_text())["epochs_completed"] == latest["epoch"] + 2


def test_inspect_prints_the_layer_table(capsys):
    code, out, _ = run_cli(capsys, "inspect", "lenet5")
    assert code == 0
    c3 = next(line for line in out.splitlines() if line.startswith("features.c3 "))
    assert c3.split()[-2:] == ["14", "2"]  # receptive field 14, jump 2 (worked by hand in test_inspect)
    assert "Total params 60,850" in out
    code, out, _ = run_cli(capsys, "inspect", "vgg11", "--input", "3x64x64", "--json")
    assert code == 0 and json.loads(out)["totals"]["params"] == 132_863_336


def test_inspect_bad_input_size(capsys):
    assert_one_line_error(*run_cli(capsys, "inspect", "vgg16", "--input", "3x224")[::2], "CxHxW")


def test_model_arg_reaches_the_model(tmp_path, capsys):
    out = tmp_path / "r"
    code = main(["train", "mlp", "--data", "digits", "--epochs", "1", "--model-arg", "hidden=[16]", "--out", str(out), "--quiet"])
    assert code == 0
    assert json.loads((out / "config.json").read_text())["model_args"]["hidden"] == [16]
    assert json.loads((out / "metrics.json").read_text())["num_params"] == 64 * 16 + 16 + 16 * 10 + 10
    with pytest.raises(SystemExit):
        main(["train", "mlp", "--model-arg", "hidden"])
