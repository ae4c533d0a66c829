"""The run directory format (deepnotes.rundir): versions, and runs written before versions
existed (format 0: the config.json and checkpoints of deepnotes up to the task seam) still
loading for predict, cam, attack, resume and transfer.

A version-0 run is written here the way that code wrote it: config.json as one dict without
"format_version" (and, before segmentation, without "task"), a checkpoint holding one
"optimizer" and one "scheduler" and the epoch's running sums as loss_sum / correct /
per_sample."""

import json

import pytest
import torch
from clicheck import run_cli
from PIL import Image
from safetensors.torch import load_file

from deepnotes.errors import UserError
from deepnotes.fileio import sha256_file
from deepnotes.rundir import FORMAT_VERSION, RunConfig, RunDir, upgrade_checkpoint
from deepnotes.tasks import fit, load_run, run_training
from deepnotes.train import TrainConfig

V0_CONFIG_KEYS = (
    "deepnotes_version", "torch_version", "task", "model", "model_args", "num_params", "trainable_params", "dataset",
    "data_source", "classes", "input", "train", "world_size",
)  # fmt: skip


def cfg(tmp_path, name, **kw):
    base = dict(model="mlp", data="digits", epochs=2, batch_size=64, seed=0, out=str(tmp_path / name), progress=False,
                model_args={"dropout": 0.3}, augment="crop")  # fmt: skip
    return TrainConfig(**{**base, **kw})


def to_version_0(run_dir, with_task=True):
    """Rewrite a run directory as deepnotes wrote it before the run-directory format had versions."""
    config = json.loads((run_dir / "config.json").read_text())
    old = {k: config[k] for k in V0_CONFIG_KEYS if with_task or k != "task"}
    (run_dir / "config.json").write_text(json.dumps(old, indent=2))
    manifest = run_dir / "manifest.json"  # format 0 recorded only the weights' SHA-256
    if manifest.exists():
        record = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({k: v for k, v in record.items() if k != "config.json"}))
    latest = run_dir / "checkpoints" / "latest.json"
    if latest.exists():
        record = json.loads(latest.read_text())
        path = latest.parent / record["file"]
        state = torch.load(path, weights_only=True)
        p = state["progress"]
        v0 = {
            "model": state["model"], "optimizer": state["optimizers"][0], "scheduler": state["schedulers"][0],
            "epoch": state["epoch"], "step": state["step"], "rng_torch": state["rng_torch"], "history": state["history"],
            "progress": {"step": p["step"], "loss_sum": p["sums"]["loss"], "correct": p["sums"]["correct"], "seen": p["seen"],
                         "seconds": p["seconds"], "per_sample": 1} if p else {},
        }  # fmt: skip
        torch.save(v0, path)
        latest.write_text(json.dumps({**record, "sha256": sha256_file(path)}))


def test_a_version_0_checkpoint_resumes_bit_identically(tmp_path):
    fit(cfg(tmp_path, "straight"))
    r = run_training(cfg(tmp_path, "old"), should_stop=lambda epoch, step: (epoch, step) == (1, 5))
    assert r.interrupted
    to_version_0(tmp_path / "old")
    assert "format_version" not in json.loads((tmp_path / "old" / "config.json").read_text())
    fit(cfg(tmp_path, "old", resume=True))
    a, b = load_file(str(tmp_path / "straight" / "model.safetensors")), load_file(str(tmp_path / "old" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "old" / "config.json").read_text())["format_version"] == FORMAT_VERSION


@pytest.fixture(scope="module")
def old_run(tmp_path_factory):
    """A finished classification run rewritten as version 0 (without "task", as before segmentation)."""
    root = tmp_path_factory.mktemp("old")
    fit(cfg(root, "run", epochs=3, lr=3e-3, model_args={}, augment="none"))
    to_version_0(root / "run", with_task=False)
    image = root / "digit.png"
    Image.fromarray((torch.arange(64).reshape(8, 8) * 4).numpy().astype("uint8")).save(image)
    return root / "run", image


def test_a_version_0_run_loads_as_a_classification_run(old_run):
    run_dir, _ = old_run
    run = load_run(run_dir)
    assert run.config.format_version == 0 and run.task.name == "classification" and run.config.model == "mlp"


def test_predict_cam_and_attack_use_a_version_0_run(old_run, capsys, tmp_path):
    run_dir, image = old_run
    code, out, err = run_cli(capsys, "predict", run_dir, image, "--top", "2")
    assert code == 0 and out.count("%") == 2, err
    code, out, err = run_cli(capsys, "cam", run_dir, image, "--method", "saliency", "--out", tmp_path / "cam.png")
    assert code == 0 and (tmp_path / "cam.png").exists(), err
    code, out, err = run_cli(capsys, "attack", run_dir, "--n", "50", "--eps", "0,0.1", "--method", "fgsm", "--out", tmp_path / "attack")
    assert code == 0 and json.loads((tmp_path / "attack" / "attack.json").read_text())["n"] == 50, err


def test_transfer_starts_from_a_version_0_run(old_run, tmp_path):
    run_dir, _ = old_run
    m = fit(cfg(tmp_path, "new", epochs=1, model_args={}, augment="none", from_run=str(run_dir), freeze=["features"]))
    source, new = load_file(str(run_dir / "model.safetensors")), load_file(str(tmp_path / "new" / "model.safetensors"))
    frozen = [k for k in source if k.startswith("features.")]
    assert frozen and all(torch.equal(source[k], new[k]) for k in frozen)
    assert m["epochs_completed"] == 1


def test_upgrade_of_a_version_0_mid_epoch_state_keeps_the_pixel_counts():
    """Segmentation runs of format 0 counted per_sample = H * W predictions per sample."""
    v0 = {"optimizer": {"a": 1}, "scheduler": {"b": 2}, "epoch": 2, "step": 3,
          "progress": {"step": 3, "loss_sum": 1.5, "correct": 700, "seen": 48, "seconds": 0.5, "per_sample": 1024}}  # fmt: skip
    new = upgrade_checkpoint(v0)
    assert new["optimizers"] == [{"a": 1}] and new["schedulers"] == [{"b": 2}] and new["format_version"] == FORMAT_VERSION
    assert new["progress"] == {"step": 3, "sums": {"loss": 1.5, "correct": 700, "pixels": 48 * 1024}, "seen": 48, "seconds": 0.5}
    assert upgrade_checkpoint(new) == new  # the current format passes through


def test_newer_formats_and_damaged_configs_are_clear_errors(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"format_version": FORMAT_VERSION + 1, "model": "mlp"}))
    with pytest.raises(UserError, match="a newer deepnotes wrote it"):
        RunDir(d).read_config()
    (d / "config.json").write_text(json.dumps({"model": "mlp"}))
    with pytest.raises(UserError, match="lacks model_args, dataset, classes, input, train"):
        RunDir(d).read_config()
    with pytest.raises(UserError, match="not a run directory"):
        RunDir(tmp_path).read_config()
    with pytest.raises(UserError, match="newer"):
        upgrade_checkpoint({"format_version": FORMAT_VERSION + 1})


def test_the_config_round_trips(tmp_path):
    config = RunConfig(task="classification", model="mlp", model_args={"num_classes": 10}, dataset="digits", classes=["0"],
                       input={"in_chans": 1}, train={"epochs": 1}, num_params=5, trainable_params=5)  # fmt: skip
    RunDir(tmp_path / "r").write_config(config)
    assert RunDir(tmp_path / "r").read_config() == config
