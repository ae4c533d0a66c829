"""`deepnotes cam`, `templates`, `attack` and `train --adversarial` on tiny runs trained here on digits."""

import json

import numpy as np
import pytest
import torch
from clicheck import assert_one_line_error, png_size, run_cli
from PIL import Image

from deepnotes.cli import main
from deepnotes.cli.common import class_index
from deepnotes.data import load_dataset
from deepnotes.errors import UserError

CONV = ["vgg_small", "--model-arg", "stages=[[16],[32]]", "--epochs", "3", "--batch-size", "32", "--lr", "0.01"]
QUIET = ["--quiet", "--threads", "1"]








@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain_cli")
    assert main(["train", *CONV, "--out", str(root / "conv"), *QUIET]) == 0
    assert main(["train", "mlp", "--model-arg", "hidden=[]", "--epochs", "2", "--out", str(root / "linear"), *QUIET]) == 0
    data = load_dataset("digits")
    images = []
    for i in range(3):
        path = root / f"digit{i}.png"
        Image.fromarray(data.test_x[i, 0]).save(path)
        images.append(path)
    return {"root": root, "conv": root / "conv", "linear": root / "linear", "images": images, "labels": data.test_y[:3]}


# ---------------------------------------------------------------- cam


def test_cam_names_the_layer_and_agrees_with_predict(runs, capsys, tmp_path):
    out_png = tmp_path / "cam.png"
    code, out, _ = run_cli(capsys, "cam", runs["conv"], *runs["images"], "--out", out_png)
    assert code == 0
    assert "gradcam at layer features.stage2.relu1 (the last convolutional stage" in out
    assert f"wrote {out_png}" in out
    w, h = png_size(out_png)
    assert h > w  # one row per image, 3 rows
    for path in runs["images"]:
        line = next(ln for ln in out.splitlines() if ln.startswith(f"{path}: predicted "))
        name, prob = line.split(": predicted ")[1].split()  # "NAME (12.3%)"
        code, pout, _ = run_cli(capsys, "predict", runs["conv"], path, "--top", "1")
        want_name, want_p = pout.splitlines()[-1].split()[1:3]  # "  1. NAME  12.34%"
        assert name == want_name and float(prob[1:-2]) == pytest.approx(float(want_p[:-1]), abs=0.051)


def test_cam_class_and_methods(runs, capsys, tmp_path):
    img = runs["images"][0]
    code, out, _ = run_cli(capsys, "cam", runs["conv"], img, "--out", tmp_path / "a.png")
    predicted = out.split("predicted ")[1].split()[0]
    other = "1" if predicted != "1" else "2"
    code, out, _ = run_cli(capsys, "cam", runs["conv"], img, "--class", other, "--method", "cam", "--out", tmp_path / "b.png")
    assert code == 0 and f"; explaining {other} (" in out and "cam at layer" in out
    png_size(tmp_path / "b.png")
    code, out, _ = run_cli(capsys, "cam", runs["conv"], img, "--method", "saliency", "--out", tmp_path / "c.png")
    assert code == 0 and "gradients with respect to the input pixels" in out


def test_cam_errors(runs, capsys, tmp_path):
    img = runs["images"][0]
    code, _, err = run_cli(capsys, "cam", runs["conv"], img, "--layer", "features.stage9", "--out", tmp_path / "x.png")
    assert_one_line_error(code, err, "no layer 'features.stage9'", "valid layers:", "features.stage2.relu1")
    code, _, err = run_cli(capsys, "cam", runs["conv"], img, "--class", "10", "--out", tmp_path / "x.png")
    assert_one_line_error(code, err, "--class 10 is outside 0..9", "9 9")
    code, _, err = run_cli(capsys, "cam", runs["conv"], img, "--class", "seven", "--out", tmp_path / "x.png")
    assert_one_line_error(code, err, "'seven' is not one of the run's classes", "0 0, 1 1")
    code, _, err = run_cli(capsys, "cam", runs["linear"], img, "--out", tmp_path / "x.png")
    assert_one_line_error(code, err, "--method saliency")
    code, _, err = run_cli(capsys, "cam", runs["conv"], runs["root"] / "missing.png", "--out", tmp_path / "x.png")
    assert_one_line_error(code, err, "missing.png does not exist")
    assert not (tmp_path / "x.png").exists()


def test_class_names_and_indices():
    classes = ["T-shirt/top", "Trouser", "Bag"]
    assert class_index("trouser", classes) == 1 and class_index("2", classes) == 2 and class_index(" BAG ", classes) == 2
    with pytest.raises(UserError, match="0 T-shirt/top, 1 Trouser, 2 Bag"):
        class_index("shoe", classes)


# ---------------------------------------------------------------- templates


def test_templates_of_a_linear_run(runs, capsys, tmp_path):
    code, out, _ = run_cli(capsys, "templates", runs["linear"], "--out", tmp_path / "t.png")
    assert code == 0 and "10 class templates of 1x8x8 weights" in out
    w, h = png_size(tmp_path / "t.png")
    assert w > 2 * h  # one row of ten panels


def test_templates_of_a_conv_run_say_how_to_train_one(runs, capsys, tmp_path):
    code, _, err = run_cli(capsys, "templates", runs["conv"], "--out", tmp_path / "t.png")
    assert_one_line_error(code, err, "need a linear classifier", "deepnotes train mlp --model-arg hidden=[] --data digits")
    assert not (tmp_path / "t.png").exists()


# ---------------------------------------------------------------- attack


def test_attack_table_json_and_figures(runs, capsys, tmp_path):
    out_dir = tmp_path / "atk"
    code, out, _ = run_cli(capsys, "attack", runs["conv"], "--n", "1000", "--eps", "0.3,0,8/255", "--steps", "5", "--out", out_dir)
    assert code == 0
    saved = json.loads((out_dir / "attack.json").read_text())
    rows = saved["rows"]
    assert saved["n"] == 450  # --n above the test set's size: all of it
    assert [(r["method"], r["eps"]) for r in rows] == [(m, e) for m in ("fgsm", "pgd") for e in (0.0, 8 / 255, 0.3)]
    acc = {(r["method"], r["eps"]): r["accuracy"] for r in rows}
    clean = json.loads((runs["conv"] / "metrics.json").read_text())["test_accuracy"]
    # eps 0 is the run's own test accuracy (computed by the training loop; NCHW vs channels-last may flip a near-tie)
    assert acc["fgsm", 0.0] == acc["pgd", 0.0] == pytest.approx(clean, abs=1.01 / 450)
    assert acc["pgd", 0.3] <= acc["fgsm", 0.3] + 0.01 and acc["pgd", 0.3] < clean / 2
    table = [ln.split() for ln in out.splitlines() if ln.strip()[:1].isdigit()]
    assert [row[0] for row in table] == ["0.0000", "0.0314", "0.3000"] and table[1][1] == "8"
    for row, e in zip(table, (0.0, 8 / 255, 0.3)):
        assert row[2:] == [f"{100 * acc['fgsm', e]:.1f}%", f"{100 * acc['pgd', e]:.1f}%"]
    for name in ("accuracy_vs_eps.png", "examples_fgsm.png", "examples_pgd.png"):
        png_size(out_dir / name)


@pytest.mark.parametrize("argv, needle", [
    (["--eps", "8"], "for 8 of 255 write 8/255"),
    (["--eps", "0,x"], "like 0.1 or 8/255"),
    (["--method", "cw"], "fgsm, pgd or fgsm,pgd"),
])  # fmt: skip
def test_attack_bad_arguments(runs, capsys, argv, needle):
    with pytest.raises(SystemExit) as e:
        main(["attack", str(runs["conv"]), *argv])
    assert e.value.code == 2 and needle in capsys.readouterr().err


# ---------------------------------------------------------------- adversarial training


def _train_loss(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())["epochs"][0]["train_loss"]


def test_adversarial_training_is_recorded_and_applied(runs, capsys, tmp_path):
    base = ["train", "mlp", "--epochs", "1", *QUIET]
    assert main([*base, "--out", str(tmp_path / "clean")]) == 0
    assert main([*base, "--adversarial", "fgsm", "--adv-eps", "0.1", "--out", str(tmp_path / "fgsm")]) == 0
    assert main([*base, "--adversarial", "fgsm", "--adv-eps", "0", "--out", str(tmp_path / "eps0")]) == 0
    saved = json.loads((tmp_path / "fgsm" / "config.json").read_text())["train"]
    assert (saved["adversarial"], saved["adv_eps"], saved["adv_steps"]) == ("fgsm", 0.1, 7)
    clean = _train_loss(tmp_path / "clean")
    assert _train_loss(tmp_path / "eps0") == clean  # eps 0: the batches are the clean ones, bit for bit
    assert _train_loss(tmp_path / "fgsm") > clean + 0.05  # the model trained on harder (perturbed) batches
    capsys.readouterr()
    code, _, err = run_cli(capsys, *base, "--epochs", "2", "--resume", "--out", tmp_path / "fgsm")
    assert_one_line_error(code, err, "adversarial ('fgsm' in the run, 'none' now)")


def test_adversarial_training_bad_options(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "mlp", "--adversarial", "pgd", "--adv-steps", "0", "--out", tmp_path / "r")
    assert_one_line_error(code, err, "--adv-steps must be >= 1")
    with pytest.raises(SystemExit):
        main(["train", "mlp", "--adv-eps", "8", "--out", str(tmp_path / "r")])
    assert "for 8 of 255 write 8/255" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_pgd_training_runs_through_the_loop(capsys, tmp_path):
    argv = ["train", *CONV[:3], "--epochs", "1", "--adversarial", "pgd", "--adv-eps", "4/255", "--adv-steps", "2", "--out", str(tmp_path / "p")]
    assert main([*argv, "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "adversarial training: each batch replaced by its 2-step PGD version, eps 0.01569 (4/255)" in out
    assert np.isfinite(_train_loss(tmp_path / "p"))


def test_pgd_training_resumed_mid_epoch_is_bit_identical(tmp_path):
    """PGD's random starts come from the checkpointed global RNG: stop mid-epoch, resume, same weights."""
    from safetensors.torch import load_file

    from deepnotes.tasks import run_training
    from deepnotes.train import TrainConfig

    def cfg(name, **kw):
        return TrainConfig(model="mlp", data="digits", epochs=2, batch_size=64, seed=0, out=str(tmp_path / name), progress=False,
                           threads=1, adversarial="pgd", adv_eps=0.05, adv_steps=2, model_args={"dropout": 0.2}, **kw)  # fmt: skip

    run_training(cfg("straight"))
    assert run_training(cfg("split"), should_stop=lambda epoch, step: epoch == 1 and step == 7).interrupted
    run_training(cfg("split", resume=True))
    a, b = (load_file(str(tmp_path / n / "model.safetensors")) for n in ("straight", "split"))
    assert all(torch.equal(a[k], b[k]) for k in a)
