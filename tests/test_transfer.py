"""Transfer learning: --from a trained run, new head, frozen modules stay bit-identical."""

import pytest
import torch
from safetensors.torch import load_file

from deepnotes.cli import main
from deepnotes.errors import UserError
from deepnotes.tasks import fit
from deepnotes.train import TrainConfig


def weights(run_dir):
    return load_file(str(run_dir / "model.safetensors"))


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """vgg_small (it has BatchNorm, whose running statistics must not move when frozen) on digits."""
    out = tmp_path_factory.mktemp("src") / "run"
    fit(TrainConfig(model="vgg_small", data="digits", epochs=1, batch_size=64, out=str(out), progress=False,
                    model_args={"width": 0.25}))  # fmt: skip
    return out


def test_frozen_features_are_bit_identical_and_head_changes(source_run, tmp_path, capsys):
    out = tmp_path / "transfer"
    code = main([
        "train", "vgg_small", "--data", "digits", "--epochs", "2", "--from", str(source_run),
        "--freeze", "features", "--num-classes", "12", "--out", str(out), "--quiet",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    # the source had width 0.25 in model_args: transfer builds the same body without being told
    before, after = weights(source_run), weights(out)
    body = [k for k in before if k.startswith("features.")]
    assert body and all(torch.equal(before[k], after[k]) for k in body)  # incl. BN running stats
    assert after["head.1.weight"].shape[0] == 12  # replaced head, 12 outputs
    assert not torch.equal(before["head.1.weight"], after["head.1.weight"][:10])


def test_unfrozen_transfer_changes_the_body(source_run, tmp_path):
    fit(TrainConfig(model="vgg_small", data="digits", epochs=1, batch_size=64, out=str(tmp_path / "t"),
                    progress=False, from_run=str(source_run)))  # fmt: skip
    before, after = weights(source_run), weights(tmp_path / "t")
    assert not torch.equal(before["features.stage1.conv1.weight"], after["features.stage1.conv1.weight"])


def test_transfer_errors(source_run, tmp_path):
    with pytest.raises(UserError, match="holds a vgg_small run"):
        fit(TrainConfig(model="lenet5", data="digits", epochs=1, out=str(tmp_path / "a"), progress=False, from_run=str(source_run)))
    with pytest.raises(UserError, match="top-level modules: features"):
        fit(TrainConfig(model="vgg_small", data="digits", epochs=1, out=str(tmp_path / "b"), progress=False,
                        from_run=str(source_run), freeze=["featurez"]))  # fmt: skip
    with pytest.raises(UserError, match="other shapes"):
        fit(TrainConfig(model="vgg_small", data="digits", epochs=1, out=str(tmp_path / "c"), progress=False,
                        from_run=str(source_run), model_args={"width": 0.5}))  # fmt: skip
