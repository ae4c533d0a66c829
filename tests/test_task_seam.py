"""The task seam: two new kinds of training defined entirely in this file, trained, evaluated,
checkpointed and resumed bit for bit through the same engine, run directory and report, with no
change to the engine, report, predict or CLI modules.

- an autoencoder (no labels; mean squared error; the headline metric is lower-is-better);
- a GAN (two networks, two optimizers stepped by the task itself: manual optimization; the noise
  comes from the global torch RNG, which the checkpoint saves).

Both are registered in scoped registries, so nothing here is seen by other tests or users.
"""

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from deepnotes.errors import UserError
from deepnotes.models import MODELS
from deepnotes.registry import TASKS, Variant, register_task, register_variants
from deepnotes.tasks import fit, load_run, run_training
from deepnotes.tasks.base import StepOutput, Target
from deepnotes.tasks.images import ImageTask
from deepnotes.train import TrainConfig

# --------------------------------------------------------------------------- an autoencoder


class TinyAutoencoder(nn.Module):
    """8x8 digits -> `latent` numbers -> 8x8; dropout so that resuming must restore the RNG."""

    def __init__(self, num_classes=10, in_chans=1, img_size=(8, 8), latent=6):
        super().__init__()
        n = in_chans * img_size[0] * img_size[1]
        self.shape = (in_chans, *img_size)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(n, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, latent))
        self.decoder = nn.Sequential(nn.Linear(latent, 32), nn.ReLU(), nn.Linear(32, n))

    def forward(self, x):
        return self.decoder(self.encoder(x)).view(-1, *self.shape)


class Reconstruction(ImageTask):
    """Reconstruct the image: no labels are used; the score is the test mean squared error."""

    name = "reconstruction"
    description = "images -> the same images through a bottleneck: mean squared error"
    data_kinds = ("images",)
    target = Target("test_mse", "test MSE", higher_is_better=False, percent=False, upper=None)

    def training_step(self, net, batch):
        x, _ = batch
        loss = F.mse_loss(net(x), x)
        return StepOutput(loss, {"loss": loss.detach() * len(x)}, len(x))

    @torch.no_grad()
    def evaluate(self, core, batches):
        core.eval()
        total, n = 0.0, 0
        for x, _ in batches.epoch(0):
            total += float(F.mse_loss(core(x), x, reduction="sum"))
            n += x.numel()
        return {"loss": total / n}

    def test_record(self, ev):
        return {"test_loss": ev["loss"], "test_mse": ev["loss"]}


# --------------------------------------------------------------------------- a GAN


class TinyGAN(nn.Module):
    """A generator (noise -> 8x8 image) and a discriminator (image -> real/fake logit)."""

    def __init__(self, num_classes=10, in_chans=1, img_size=(8, 8), latent=4):
        super().__init__()
        n = in_chans * img_size[0] * img_size[1]
        self.latent, self.shape = latent, (in_chans, *img_size)
        self.generator = nn.Sequential(nn.Linear(latent, 32), nn.ReLU(), nn.Linear(32, n))
        self.discriminator = nn.Sequential(nn.Flatten(), nn.Linear(n, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))

    def forward(self, z):
        return self.generator(z).view(-1, *self.shape)


class Adversarial(ImageTask):
    """Goodfellow et al. 2014's two-player game, both updates in every step (manual optimization)."""

    name = "gan"
    description = "noise -> images judged by a discriminator"
    data_kinds = ("images",)
    manual_optimization = True
    target = Target("test_d_accuracy", "discriminator accuracy", higher_is_better=False)

    def configure_optimizers(self, params):
        g = torch.optim.Adam(self.model.generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
        d = torch.optim.Adam(self.model.discriminator.parameters(), lr=2e-3, betas=(0.5, 0.999))
        self.optimizers = [g, d]
        return self.optimizers

    def training_step(self, net, batch):
        x, _ = batch
        g_opt, d_opt = self.optimizers
        model, ones, zeros = self.model, torch.ones(len(x), 1), torch.zeros(len(x), 1)
        z = torch.randn(len(x), model.latent)  # the global RNG: saved in every checkpoint
        with self.autocast():
            fake = net(z)
            loss_d = F.binary_cross_entropy_with_logits(model.discriminator(x), ones) + F.binary_cross_entropy_with_logits(
                model.discriminator(fake.detach()), zeros
            )
        d_opt.zero_grad(set_to_none=True)
        loss_d.backward()
        d_opt.step()
        with self.autocast():
            loss_g = F.binary_cross_entropy_with_logits(model.discriminator(fake), ones)
        g_opt.zero_grad(set_to_none=True)
        loss_g.backward()
        g_opt.step()
        loss = (loss_d + loss_g).detach()
        return StepOutput(loss, {"loss": loss * len(x), "loss_d": loss_d.detach() * len(x), "loss_g": loss_g.detach() * len(x)}, len(x))

    def train_record(self, sums, seen):
        return {f"train_{k}": sums.get(k, 0.0) / max(1, seen) for k in ("loss", "loss_d", "loss_g")}

    @torch.no_grad()
    def evaluate(self, core, batches):
        core.eval()
        g = torch.Generator().manual_seed(0)  # fixed noise: never the global RNG
        correct = seen = 0
        for x, _ in batches.epoch(0):
            fake = core(torch.randn(len(x), core.latent, generator=g))
            correct += int((core.discriminator(x) > 0).sum()) + int((core.discriminator(fake) <= 0).sum())
            seen += 2 * len(x)
        return {"loss": float("nan"), "d_accuracy": correct / seen}

    def test_record(self, ev):
        return {"test_d_accuracy": ev["d_accuracy"]}

    def scores_text(self, record):
        return f"discriminator accuracy {record['test_d_accuracy']:.2%}"


# --------------------------------------------------------------------------- registered for this file only


@pytest.fixture(autouse=True)
def toy_tasks():
    with MODELS.scoped(), TASKS.scoped():
        register_task(Reconstruction)
        register_task(Adversarial)
        register_variants(TinyAutoencoder, {"tiny-ae": Variant("test only", None, (1, 8, 8), {}, 10, task="reconstruction")})
        register_variants(TinyGAN, {"tiny-gan": Variant("test only", None, (1, 8, 8), {}, 10, task="gan")})
        yield


def cfg(tmp_path, name="run", **kw):
    base = dict(model="tiny-ae", data="digits", epochs=2, batch_size=64, seed=0, out=str(tmp_path / name), progress=False, lr=3e-3)
    return TrainConfig(**{**base, **kw})


def weights(run_dir):
    return load_file(str(run_dir / "model.safetensors"))


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("model", ["tiny-ae", "tiny-gan"])
def test_a_new_task_trains_checkpoints_and_resumes_bit_for_bit(tmp_path, model):
    fit(cfg(tmp_path, "straight", model=model, epochs=3))
    # stopped in the middle of epoch 2 (a mid-epoch checkpoint with the task's running sums) ...
    r = run_training(cfg(tmp_path, "split", model=model, epochs=3), should_stop=lambda epoch, step: (epoch, step) == (2, 7))
    assert r.interrupted
    latest = json.loads((tmp_path / "split" / "checkpoints" / "latest.json").read_text())
    assert (latest["epoch"], latest["step"]) == (2, 7)
    # ... then resumed, stopped again in epoch 3, and resumed to the end
    r = run_training(cfg(tmp_path, "split", model=model, epochs=3, resume=True), should_stop=lambda epoch, step: (epoch, step) == (3, 2))
    assert r.interrupted and len(r.metrics["epochs"]) == 2
    m = fit(cfg(tmp_path, "split", model=model, epochs=3, resume=True))
    assert_same_weights(tmp_path / "straight", tmp_path / "split")
    straight = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    key = straight["target_metric"]
    assert [e[key] for e in m["epochs"]] == [e[key] for e in straight["epochs"]]
    # the run directory is complete and describes the task
    d = tmp_path / "split"
    for f in ("config.json", "model.safetensors", "metrics.json", "curves.png", "report.html"):
        assert (d / f).stat().st_size > 0, f
    config = json.loads((d / "config.json").read_text())
    task = {"tiny-ae": "reconstruction", "tiny-gan": "gan"}[model]
    assert config["task"] == m["task"] == task and config["format_version"] >= 1
    assert "confusion" not in m and not (d / "confusion.png").exists()
    page = (d / "report.html").read_text()
    assert {"tiny-ae": "test MSE", "tiny-gan": "discriminator accuracy"}[model] in page


def test_the_autoencoder_learns_and_its_lower_is_better_target_stops_it(tmp_path):
    first = fit(cfg(tmp_path, "a", epochs=4))
    mse = [e["test_mse"] for e in first["epochs"]]
    # it learns: the pixels are standardized (variance about 1, the error of predicting the mean),
    # and 6 numbers per digit keep more than half of it; and it improves after the first epoch
    assert mse[-1] < 0.5 and mse[-1] < 0.9 * mse[0]
    assert first["best_test_mse"] == min(mse) and first["test_mse"] == mse[-1]
    target = mse[1]  # reached after epoch 2 at the latest: a lower-is-better target
    stopped = fit(cfg(tmp_path, "b", epochs=4, target_accuracy=target))
    hit = next(i for i, v in enumerate(mse) if v <= target) + 1
    assert stopped["epochs_completed"] == hit and stopped["seconds_to_target"] is not None


def test_the_gan_steps_both_optimizers_and_saves_both(tmp_path):
    r = run_training(cfg(tmp_path, model="tiny-gan", epochs=1), should_stop=lambda epoch, step: step == 3)
    state = torch.load(next((tmp_path / "run" / "checkpoints").glob("*.pt")), weights_only=True)
    assert len(state["optimizers"]) == len(state["schedulers"]) == 2
    assert all(s["state"] for s in state["optimizers"])  # both took steps
    assert r.interrupted and state["progress"]["sums"].keys() == {"loss", "loss_d", "loss_g"}


def test_a_trained_run_of_the_new_task_loads_and_says_what_it_is_for(tmp_path):
    fit(cfg(tmp_path, epochs=1))
    run = load_run(tmp_path / "run")
    assert run.task is Reconstruction and not run.model.training
    x = torch.zeros(2, 1, 8, 8)
    assert run.model(x).shape == x.shape
    with pytest.raises(UserError, match="holds a reconstruction run .*`deepnotes predict` needs a classification run"):
        run.require("predict")


def test_options_the_task_does_not_take_are_refused(tmp_path):
    with pytest.raises(UserError, match="--label-smoothing 0.1 is not an option of reconstruction runs"):
        fit(cfg(tmp_path, label_smoothing=0.1))
    assert not (tmp_path / "run").exists()
