"""`deepnotes segment` and `deepnotes attention` on tiny runs trained here through the CLI, and
the one-line errors for runs of the wrong kind."""

import json

import numpy as np
import pytest
import torch
from clicheck import assert_one_line_error, png_size, run_cli
from PIL import Image

from deepnotes.cli import main
from deepnotes.data import DATASETS, load_dataset
from deepnotes.data.scenes import make_scene_dataset
from deepnotes.registry import register_dataset
from deepnotes.tasks.images import run_input_spec
from deepnotes.tasks.segmentation import predict_mask

SCENES = "test-scenes"  # the same scenes as tests/test_train_segment.py
QUIET = ["--quiet", "--threads", "1"]


def _test_scenes(data_dir=None, download=True):
    return make_scene_dataset(load_dataset("digits"), 96, 32, name=SCENES, canvas=32, scale=2, items_per_scene=(1, 2), seed=0)


@pytest.fixture(scope="module", autouse=True)
def _scenes_registered():
    with DATASETS.scoped():
        register_dataset(SCENES, _test_scenes, kind="scenes", description="test only: 96/32 digit scenes, 32x32")
        yield








@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg_cli")
    small = ["--model-arg", "base_width=4", "--model-arg", "depth=2"]
    assert main(["train", "unet_small", "--data", SCENES, *small, "--epochs", "2", "--batch-size", "16", "--out", str(root / "unet"), *QUIET]) == 0
    # the paper's valid convolutions (one level): 32x32 scenes are mirrored out to 48x48
    valid = ["--model-arg", "base_width=2", "--model-arg", "depth=1"]
    assert main(["train", "unet", "--data", SCENES, *valid, "--epochs", "1", "--batch-size", "16", "--out", str(root / "valid"), *QUIET]) == 0
    vit = ["--model-arg", "patch_size=4", "--model-arg", "embed_dim=16", "--model-arg", "depth=2", "--model-arg", "num_heads=2"]
    assert main(["train", "vit_tiny_28", "--data", "digits", *vit, "--epochs", "1", "--out", str(root / "vit"), *QUIET]) == 0
    assert main(["train", "mlp", "--data", "digits", "--epochs", "1", "--out", str(root / "mlp"), *QUIET]) == 0
    scenes = _test_scenes().test
    paths = []
    for i in range(2):
        p = root / f"scene{i}.png"
        Image.fromarray(scenes.images[i, 0]).save(p)
        paths.append(p)
    digit = root / "digit.png"
    Image.fromarray(load_dataset("digits").test_x[0, 0]).save(digit)
    return {"root": root, "scenes": paths, "scene_pixels": scenes.images[:2], "digit": digit} | {
        k: root / k for k in ("unet", "valid", "vit", "mlp")
    }


def test_segment_prints_the_classes_and_draws_the_overlay(runs, capsys, tmp_path):
    out_png = tmp_path / "seg.png"
    code, out, _ = run_cli(capsys, "segment", runs["unet"], *runs["scenes"], "--out", out_png)
    assert code == 0 and f"wrote {out_png}" in out
    w, h = png_size(out_png)
    assert h > w / 2  # two rows
    # The scene PNGs are exactly the test scenes (32x32, dark background: nothing converted),
    # so the printed shares are those of the model's own prediction on the scene pixels.
    from deepnotes.tasks import load_run

    run = load_run(runs["unet"])
    pred = predict_mask(run.model, run_input_spec(run.config).normalize(torch.from_numpy(runs["scene_pixels"])))
    blocks = []
    for line in out.splitlines()[:-1]:
        if line.endswith(".png:"):
            blocks.append([])
        else:
            blocks[-1].append(line)
    assert len(blocks) == 2
    for mask, block in zip(pred, blocks):
        assert not any(line.strip().startswith("(") for line in block)  # no conversion notes
        shares = {line.split()[0]: float(line.split()[-1][:-1]) / 100 for line in block}
        counts = np.bincount(mask.reshape(-1).numpy(), minlength=11) / mask.numel()
        want = {run.classes[k]: counts[k] for k in range(11) if counts[k]}
        assert shares.keys() == want.keys()
        for name in want:
            assert shares[name] == pytest.approx(want[name], abs=5e-5)  # printed with 2 decimals of a percent
        assert sum(shares.values()) == pytest.approx(1, abs=1e-3)


def test_segment_with_mirrored_input(runs, capsys, tmp_path):
    assert json.loads((runs["valid"] / "config.json").read_text())["input"]["pad_to"] == [48, 48]
    metrics = json.loads((runs["valid"] / "metrics.json").read_text())
    assert sum(map(sum, metrics["confusion"])) == 32 * 32 * 32  # every pixel of every test scene scored
    code, out, _ = run_cli(capsys, "segment", runs["valid"], runs["scenes"][0], "--out", tmp_path / "v.png")
    assert code == 0
    png_size(tmp_path / "v.png")


def test_attention_draws_heads_and_rollout(runs, capsys, tmp_path):
    out_png = tmp_path / "att.png"
    code, out, _ = run_cli(capsys, "attention", runs["vit"], runs["digit"], "--out", out_png)
    assert code == 0, out
    assert "last layer: 2 heads; rollout over 2 layers" in out and f"wrote {out_png}" in out
    w, h = png_size(out_png)
    assert w > 2 * h  # image, 2 heads and the rollout side by side
    predicted = out.split("predicted ")[1].split()[0]
    code, pout, _ = run_cli(capsys, "predict", runs["vit"], runs["digit"], "--top", "1")
    assert pout.splitlines()[-1].split()[1] == predicted
    code, out, _ = run_cli(capsys, "attention", runs["vit"], runs["digit"], "--head-fusion", "max", "--discard-ratio", "0.5",
                           "--out", tmp_path / "b.png")  # fmt: skip
    assert code == 0 and png_size(tmp_path / "b.png")


def test_wrong_run_types_are_one_line_errors(runs, capsys, tmp_path):
    scene, digit = runs["scenes"][0], runs["digit"]
    assert_one_line_error(*run_cli(capsys, "predict", runs["unet"], scene)[::2], "segmentation run", "deepnotes segment")
    assert_one_line_error(*run_cli(capsys, "cam", runs["unet"], scene, "--out", tmp_path / "c.png")[::2], "deepnotes segment")
    assert_one_line_error(*run_cli(capsys, "attack", runs["unet"], "--out", tmp_path / "a")[::2], "deepnotes segment")
    assert_one_line_error(*run_cli(capsys, "segment", runs["mlp"], digit)[::2], "classification run", "unet_small", "deepnotes predict")
    assert_one_line_error(*run_cli(capsys, "attention", runs["mlp"], digit)[::2], "mlp run", "vit_tiny_28")
    assert_one_line_error(*run_cli(capsys, "attention", runs["unet"], scene)[::2], "unet_small run", "vit_tiny_28")
    assert_one_line_error(*run_cli(capsys, "attention", runs["vit"], digit, "--discard-ratio", "1")[::2], "--discard-ratio")
    assert_one_line_error(*run_cli(capsys, "train", "mlp", "--data", SCENES, "--out", tmp_path / "m")[::2], "holds scenes", "unet_small")
    code, _, err = run_cli(capsys, "train", "fcn8s_small", "--data", "digits", "--out", tmp_path / "f")
    assert_one_line_error(code, err, "holds images", "fashion-scenes")
    assert not any(p.exists() for p in (tmp_path / "c.png", tmp_path / "a", tmp_path / "m", tmp_path / "f"))
