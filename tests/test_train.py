"""The training loop on real data (scikit-learn's digits): run directory, resume, divergence."""

import json

import pytest
import torch
from safetensors.torch import load_file

from deepnotes.errors import UserError
from deepnotes.models import MODELS
from deepnotes.registry import Variant, register_variants
from deepnotes.rundir import RunDir
from deepnotes.tasks import fit, run_training
from deepnotes.train import TrainConfig, TrainingDiverged
from deepnotes.train.optim import lr_factor

# The registry record of the little test models below (1x8x8 digits, 10 classes).
TEST_ONLY = Variant("test only", num_params=None, input_size=(1, 8, 8), num_classes=10, config={})


def cfg(tmp_path, name="run", **kw):
    base = dict(model="mlp", data="digits", epochs=2, batch_size=64, seed=0, out=str(tmp_path / name), progress=False)
    return TrainConfig(**{**base, **kw})


def weights(run_dir):
    return load_file(str(run_dir / "model.safetensors"))


def test_run_directory_holds_everything(tmp_path):
    m = fit(cfg(tmp_path, epochs=3, lr=3e-3))
    d = tmp_path / "run"
    for f in ("config.json", "model.safetensors", "metrics.json", "curves.png", "confusion.png", "report.html"):
        assert (d / f).stat().st_size > 0, f
    saved = json.loads((d / "metrics.json").read_text())
    assert saved["test_accuracy"] == m["test_accuracy"] > 0.85  # 3 epochs of an MLP on digits
    assert len(saved["epochs"]) == 3 and saved["train_seconds"] > 0
    assert sum(map(sum, saved["confusion"])) == 450
    config = json.loads((d / "config.json").read_text())
    assert config["model_args"] == {"num_classes": 10, "in_chans": 1, "img_size": [8, 8]}
    assert config["train"]["lr"] == 3e-3 and config["input"]["data_size"] == [8, 8]


def test_two_epochs_equal_one_plus_resume_plus_one(tmp_path):
    fit(cfg(tmp_path, "straight", schedule="none"))
    fit(cfg(tmp_path, "split", schedule="none", epochs=1))
    fit(cfg(tmp_path, "split", schedule="none", epochs=2, resume=True))
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "split")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    hist = json.loads((tmp_path / "split" / "metrics.json").read_text())["epochs"]
    assert [h["epoch"] for h in hist] == [1, 2]


def test_interrupted_mid_epoch_resumes_bit_identically(tmp_path):
    """With dropout, augmentation and a cosine schedule: stopping at step 5 of epoch 2 and
    resuming gives the same weights as never stopping."""
    opts = dict(schedule="cosine", augment="crop", model_args={"dropout": 0.3}, epochs=3)
    fit(cfg(tmp_path, "straight", **opts))
    r = run_training(cfg(tmp_path, "split", **opts), should_stop=lambda epoch, step: (epoch, step) == (2, 5))
    assert r.interrupted
    assert json.loads((tmp_path / "split" / "checkpoints" / "latest.json").read_text())["step"] == 5
    fit(cfg(tmp_path, "split", resume=True, **opts))
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "split")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_existing_run_is_never_overwritten(tmp_path):
    fit(cfg(tmp_path, epochs=1))
    before = (tmp_path / "run" / "model.safetensors").read_bytes()
    with pytest.raises(UserError, match="already holds a run, and runs are never overwritten: pass --resume"):
        fit(cfg(tmp_path, epochs=1))
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == before


def test_resume_refuses_a_different_configuration(tmp_path):
    fit(cfg(tmp_path, epochs=1))
    with pytest.raises(UserError, match="optimizer"):
        fit(cfg(tmp_path, epochs=2, optimizer="sgd", resume=True))


def test_corrupt_checkpoint_is_detected(tmp_path):
    fit(cfg(tmp_path, epochs=1))
    record = json.loads((tmp_path / "run" / "checkpoints" / "latest.json").read_text())
    path = tmp_path / "run" / "checkpoints" / record["file"]
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(UserError, match="does not match the SHA-256"):
        fit(cfg(tmp_path, epochs=1, resume=True))


class _NaNAfter(torch.nn.Module):
    """A linear classifier whose output turns NaN after `after` forward passes in training."""

    def __init__(self, num_classes=10, in_chans=1, img_size=(8, 8), after=30):
        super().__init__()
        self.fc = torch.nn.Linear(in_chans * img_size[0] * img_size[1], num_classes)
        self.after, self.calls = after, 0

    def forward(self, x):
        self.calls += self.training
        out = self.fc(x.flatten(1))
        return out * float("nan") if self.calls > self.after else out


@pytest.fixture
def nan_model():
    name = "nan-after-30"
    with MODELS.scoped():
        register_variants(_NaNAfter, {name: TEST_ONLY})
        yield name


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, nan_model):
    # digits: 1347 train images, batch 64 -> 21 steps/epoch, so NaN arrives in epoch 2
    with pytest.raises(TrainingDiverged, match="became nan in epoch 2"):
        fit(cfg(tmp_path, model=nan_model, epochs=3))
    state = RunDir(tmp_path / "run").read_checkpoint()
    assert state["epoch"] == 1 and state["step"] == 0
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_target_accuracy_stops_early(tmp_path):
    m = fit(cfg(tmp_path, epochs=20, lr=3e-3, target_accuracy=0.8))
    assert m["epochs_completed"] < 20
    assert m["test_accuracy"] >= 0.8
    assert m["seconds_to_target"] == m["epochs"][-1]["seconds"]


def test_lr_schedules_by_hand():
    c = TrainConfig(model="mlp", epochs=4, schedule="step", gamma=0.5, step_size=2)
    assert [lr_factor(c, s * 10, 10) for s in range(4)] == [1, 1, 0.5, 0.5]
    c = TrainConfig(model="mlp", epochs=2, schedule="cosine")
    assert lr_factor(c, 0, 10) == 1 and abs(lr_factor(c, 10, 10) - 0.5) < 1e-12 and lr_factor(c, 20, 10) == 0
    c = TrainConfig(model="mlp", epochs=4, schedule="onecycle")  # warm up for 10 of 40 steps from lr/25
    assert abs(lr_factor(c, 0, 10) - (0.04 + 0.96 / 10)) < 1e-12 and lr_factor(c, 9, 10) == 1
    c = TrainConfig(model="mlp", epochs=2, schedule="cosine", warmup_epochs=1)
    assert lr_factor(c, 4, 10) == 0.5


def test_bad_options_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="optimizer"):
        TrainConfig(model="mlp", optimizer="adamm")
    with pytest.raises(UserError, match="number > 0"):
        TrainConfig(model="mlp", target_accuracy=-1)
    with pytest.raises(UserError, match="--target-accuracy 91 is beyond the test accuracy's range"):  # the task's range: a fraction
        fit(TrainConfig(model="mlp", target_accuracy=91, progress=False, out=str(tmp_path / "run")))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "scratch, torch_name, extra",
    [("scratch-momentum", "sgd", {}), ("scratch-nesterov", "sgd", {"nesterov": True}), ("scratch-adam", "adam", {})],
)
def test_scratch_optimizer_trains_like_its_torch_counterpart(tmp_path, scratch, torch_name, extra):
    """Through the whole training loop, the scratch optimizer ends where torch.optim's does."""
    fit(cfg(tmp_path, "scratch", optimizer=scratch, epochs=1, lr=0.01, **extra))
    fit(cfg(tmp_path, "torch", optimizer=torch_name, epochs=1, lr=0.01, **extra))
    a, b = weights(tmp_path / "scratch"), weights(tmp_path / "torch")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)  # float32, 21 steps


class _WithAux(torch.nn.Module):
    """A linear classifier plus an auxiliary head that only an auxiliary loss can train."""

    def __init__(self, num_classes=10, in_chans=1, img_size=(8, 8)):
        super().__init__()
        n = in_chans * img_size[0] * img_size[1]
        self.head = torch.nn.Linear(n, num_classes)
        self.aux = torch.nn.Linear(n, num_classes)
        self.classifier_modules = ("head", "aux")
        self._aux_out = None

    def forward(self, x):
        x = x.flatten(1)
        self._aux_out = self.aux(x) if self.training else None
        return self.head(x)

    def aux_loss(self, y, loss_fn):
        return 0.3 * loss_fn(self._aux_out, y) if self._aux_out is not None else torch.zeros((), device=y.device)


def test_auxiliary_outputs_join_the_loss(tmp_path):
    name = "with-aux"
    torch.manual_seed(0)
    start = _WithAux().aux.weight.detach().clone()
    with MODELS.scoped():
        register_variants(_WithAux, {name: TEST_ONLY})
        r = run_training(cfg(tmp_path, model=name, epochs=1))
    assert not torch.equal(r.model.aux.weight, start)


class _DtypeWatch(torch.nn.Module):
    """A two-layer MLP that records the dtype its hidden layer computes in, by mode."""

    seen: dict = {}

    def __init__(self, num_classes=10, in_chans=1, img_size=(8, 8)):
        super().__init__()
        self.fc1 = torch.nn.Linear(in_chans * img_size[0] * img_size[1], 64)
        self.fc2 = torch.nn.Linear(64, num_classes)

    def forward(self, x):
        h = self.fc1(x.flatten(1))
        _DtypeWatch.seen.setdefault("train" if self.training else "eval", set()).add(h.dtype)
        return self.fc2(torch.relu(h))


def test_bf16_runs_the_training_forward_in_bfloat16_and_keeps_float32_weights(tmp_path):
    """--precision bf16: linear layers compute in bfloat16 in training steps (autocast), never in
    the fp32 evaluation; the weights stay float32 and the run still learns digits."""
    _DtypeWatch.seen.clear()
    with MODELS.scoped():
        register_variants(_DtypeWatch, {"dtype-watch": TEST_ONLY})
        m = fit(cfg(tmp_path, model="dtype-watch", epochs=3, lr=3e-3, precision="bf16"))
        assert _DtypeWatch.seen == {"train": {torch.bfloat16}, "eval": {torch.float32}}
        assert all(w.dtype == torch.float32 for w in weights(tmp_path / "run").values())
        assert m["test_accuracy"] > 0.85  # as the fp32 MLP in test_run_directory_holds_everything
        assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["precision"] == "bf16"
        with pytest.raises(UserError, match="precision"):
            fit(cfg(tmp_path, model="dtype-watch", epochs=4, resume=True))  # may not silently switch to fp32


def test_unknown_precision_is_refused_with_the_choices(tmp_path):
    with pytest.raises(UserError, match="unknown precision 'fp16'; choose one of fp32, bf16"):
        cfg(tmp_path, precision="fp16")


# Numbers TrainConfig refuses before anything runs (each used to be accepted, or to fail late):
# one row per option and kind of bad value.
BAD_NUMBERS = [
    (dict(weight_decay=-1.0), "--weight-decay must be a finite number >= 0"),
    (dict(weight_decay=float("nan")), "--weight-decay must be a finite number >= 0, e.g. 5e-4, got nan"),
    (dict(weight_decay=float("inf")), "--weight-decay must be a finite number >= 0"),
    (dict(momentum=-1.0), "--momentum must be in [0, 1), e.g. 0.9, got -1.0"),
    (dict(momentum=float("nan")), "--momentum must be in [0, 1), e.g. 0.9, got nan"),
    (dict(momentum=5.0), "--momentum must be in [0, 1), e.g. 0.9, got 5.0"),
    (dict(momentum=1.0), "--momentum must be in [0, 1)"),
    (dict(warmup_epochs=float("inf")), "--warmup-epochs must be a finite number >= 0, e.g. 1, got inf"),
    (dict(warmup_epochs=float("nan")), "--warmup-epochs must be a finite number >= 0"),
    (dict(lr=float("inf")), "--lr must be a finite number > 0, e.g. 0.01, got inf"),
    (dict(lr=float("nan")), "--lr must be a finite number > 0"),
    (dict(seed=2**63), f"--seed must be an integer in 0..{2**63 - 1} (2**63 - 1), got {2**63}"),
    (dict(seed=-1), "--seed must be an integer in 0.."),
    (dict(threads=-3), "--threads must be between 1 and"),
    (dict(threads=0), "--threads must be between 1 and"),
    (dict(threads=100_000), "(the CPU cores of this machine), got 100000"),
    (dict(gamma=float("nan")), "gamma (the step/exponential decay factor) must be a finite number > 0"),
    (dict(step_size=0), "step_size (epochs between decays) must be >= 1"),
    (dict(model_args={"num_classes": 5}), "--model-arg num_classes=5 is not taken: give --num-classes 5 instead"),
    (dict(model_args={"in_chans": 3}), "--model-arg in_chans=3 is not taken: the input channels come from the data"),
    (dict(model_args={"img_size": 0}), "--model-arg img_size=0 must be one positive integer or two"),
    (dict(model_args={"img_size": [8, 8, 8]}), "--model-arg img_size=[8, 8, 8] must be one positive integer or two"),
    (dict(model_args={"img_size": "big"}), "--model-arg img_size='big' must be one positive integer or two"),
]


@pytest.mark.parametrize("options, message", BAD_NUMBERS, ids=[next(iter(o)) + "=" + str(next(iter(o.values()))) for o, _ in BAD_NUMBERS])
def test_train_config_refuses_bad_numbers(tmp_path, options, message):
    with pytest.raises(UserError) as e:
        cfg(tmp_path, **options)
    assert message in str(e.value)


def test_train_config_threads_bound_is_the_machine_and_good_values_pass(tmp_path, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    with pytest.raises(UserError, match=r"--threads must be between 1 and 4 \(the CPU cores of this machine\), got 5"):
        cfg(tmp_path, threads=5)
    c = cfg(tmp_path, threads=4, momentum=0.0, weight_decay=0.0, warmup_epochs=2.5, lr=1e-3, seed=2**63 - 1,
            model_args={"img_size": [8, 8], "width": 0.5})  # fmt: skip
    assert c.threads == 4 and c.seed == 2**63 - 1


def test_clip_grad_norm_bounds_every_step_and_is_recorded(tmp_path):
    """With SGD (no momentum) a step moves the weights by lr * the clipped gradient: clipped to a
    norm of 1e-6, 20 steps of lr 0.05 move them by at most 1e-6 in L2 norm in all."""
    from deepnotes.models import create_model

    r = run_training(cfg(tmp_path, epochs=1, optimizer="sgd", momentum=0.0, schedule="none", clip_grad_norm=1e-6))
    torch.manual_seed(0)
    start = create_model("mlp", num_classes=10, in_chans=1, img_size=[8, 8])
    moved = torch.sqrt(sum(((a - b.detach()) ** 2).sum() for a, b in zip(start.state_dict().values(), r.model.state_dict().values())))
    steps = 1347 // 64
    assert 0 < moved <= 0.05 * 1e-6 * steps * (1 + 1e-3)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["clip_grad_norm"] == 1e-6
    unclipped = run_training(cfg(tmp_path, "free", epochs=1, optimizer="sgd", momentum=0.0, schedule="none")).model
    free = torch.sqrt(sum(((a - b.detach()) ** 2).sum() for a, b in zip(start.state_dict().values(), unclipped.state_dict().values())))
    assert free > 1000 * moved  # without clipping the same run moves far more
