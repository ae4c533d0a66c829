"""Segmentation through the training loop: run directory, metrics worked by hand, resume,
masks that move with their images, mirrored input for valid convolutions, task checks.

The data: scenes of real scikit-learn digits (deepnotes.data.scenes) at test size, 96 train /
32 test 32x32 canvases, registered here as "test-scenes" (digit-scenes itself is 2,000 64x64
scenes: seconds per epoch even for a tiny net)."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from deepnotes.data import DATASETS, load_dataset
from deepnotes.data.scenes import make_scene_dataset
from deepnotes.data.transforms import InputSpec, TensorBatches
from deepnotes.errors import UserError
from deepnotes.registry import register_dataset
from deepnotes.rundir import RunDir
from deepnotes.tasks import fit, run_training
from deepnotes.tasks.segmentation import MirrorPad, evaluate_segmentation, fit_input, mirror_pad
from deepnotes.train import TrainConfig

SCENES = "test-scenes"
TINY_UNET = {"base_width": 4, "depth": 2}  # unet_small's form (same padding, BatchNorm), 4-8-16 channels


def _test_scenes(data_dir=None, download=True):
    return make_scene_dataset(load_dataset("digits"), 96, 32, name=SCENES, canvas=32, scale=2, items_per_scene=(1, 2), seed=0)


@pytest.fixture(scope="module", autouse=True)
def _scenes_registered():
    with DATASETS.scoped():
        register_dataset(SCENES, _test_scenes, kind="scenes", description="test only: 96/32 digit scenes, 32x32")
        yield


def cfg(tmp_path, name="run", **kw):
    base = dict(model="unet_small", data=SCENES, epochs=2, batch_size=16, seed=0, out=str(tmp_path / name), progress=False,
                model_args=dict(TINY_UNET))  # fmt: skip
    return TrainConfig(**{**base, **kw})


def weights(run_dir):
    return load_file(str(run_dir / "model.safetensors"))


# With BatchNorm, flips and crops of images and masks, a cosine schedule.
OPTS = dict(augment="crop+flip", schedule="cosine", epochs=3)


@pytest.fixture(scope="module")
def seg_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg")
    fit(cfg(root, **OPTS))
    return root / "run"


def test_run_directory_and_metrics_json(seg_run):
    d = seg_run
    for f in ("config.json", "model.safetensors", "metrics.json", "curves.png", "confusion.png", "masks.png", "report.html"):
        assert (d / f).stat().st_size > 0, f
    config = json.loads((d / "config.json").read_text())
    assert config["task"] == "segmentation" and config["input"]["pad_to"] is None
    assert config["classes"] == ["background", *map(str, range(10))]
    m = json.loads((d / "metrics.json").read_text())  # strict JSON: absent classes are null, not NaN
    assert m["task"] == "segmentation" and m["target_metric"] == "test_mean_iou" and m["epochs_completed"] == 3
    # Recompute every score from the pixel confusion matrix (32 test scenes of 32x32 pixels).
    cm = np.array(m["confusion"], dtype=np.float64)
    assert cm.shape == (11, 11) and cm.sum() == 32 * 32 * 32
    tp, fp, fn = np.diag(cm), cm.sum(0) - np.diag(cm), cm.sum(1) - np.diag(cm)
    with np.errstate(invalid="ignore"):
        iou, dice = tp / (tp + fp + fn), 2 * tp / (2 * tp + fp + fn)
    assert list(m["test_iou"]) == config["classes"]
    for k, name in enumerate(config["classes"]):
        want = None if np.isnan(iou[k]) else iou[k]
        assert m["test_iou"][name] == pytest.approx(want, abs=1e-12)
        assert m["test_dice"][name] == pytest.approx(None if np.isnan(dice[k]) else dice[k], abs=1e-12)
    assert m["test_mean_iou"] == pytest.approx(np.nanmean(iou), abs=1e-12)
    assert m["test_mean_dice"] == pytest.approx(np.nanmean(dice), abs=1e-12)
    assert m["test_accuracy"] == m["test_pixel_accuracy"] == pytest.approx(np.trace(cm) / cm.sum(), abs=1e-12)
    last = m["epochs"][-1]
    assert {"test_mean_iou", "test_mean_dice", "test_iou", "test_dice", "train_accuracy"} <= set(last)
    assert 0 <= last["train_accuracy"] <= 1  # a pixel accuracy, not pixels per image
    assert m["best_test_mean_iou"] == max(e["test_mean_iou"] for e in m["epochs"])
    html = (d / "report.html").read_text()
    assert "test mean IoU" in html and "Per-class results" in html and html.count("data:image/png;base64,") == 3


def _mask_batches(masks: torch.Tensor, batch_size: int) -> TensorBatches:
    """Batches whose input is the mask itself: with mean 0 and std 1/255 the model sees the class indices."""
    spec = InputSpec(1, tuple(masks.shape[-2:]), (0.0,), (1 / 255,))
    return TensorBatches(masks[:, None].contiguous(), masks, spec, batch_size)


class _Oracle(torch.nn.Module):
    """Logits that put all the weight on the class the input pixel holds (or on background)."""

    def __init__(self, num_classes=11, all_background=False):
        super().__init__()
        self.num_classes, self.all_background = num_classes, all_background

    def forward(self, x):
        classes = torch.zeros_like(x[:, 0], dtype=torch.long) if self.all_background else x[:, 0].round().long()
        return 5.0 * F.one_hot(classes, self.num_classes).permute(0, 3, 1, 2).float()


def test_evaluate_segmentation_by_hand():
    masks = torch.from_numpy(_test_scenes().test_y)  # (32, 32, 32) uint8
    truth = evaluate_segmentation(_Oracle(), _mask_batches(masks, 10), 11)  # 10 does not divide 32: a ragged batch
    present = set(np.unique(masks.numpy()).tolist())
    assert truth["mean_iou"] == truth["mean_dice"] == truth["pixel_accuracy"] == 1.0
    assert [k for k, v in enumerate(truth["iou"]) if v == 1.0] == sorted(present)
    assert all(np.isnan(v) for k, v in enumerate(truth["iou"]) if k not in present)  # in neither: left out
    # Everything predicted background: IoU_bg = bg / all, every other class present gets 0.
    bg = evaluate_segmentation(_Oracle(all_background=True), _mask_batches(masks, 10), 11)
    n_bg, n = int((masks == 0).sum()), masks.numel()
    assert bg["iou"][0] == pytest.approx(n_bg / n, abs=1e-12)
    assert bg["dice"][0] == pytest.approx(2 * n_bg / (n + n_bg), abs=1e-12)
    assert bg["mean_iou"] == pytest.approx(n_bg / n / len(present), abs=1e-12)
    assert bg["pixel_accuracy"] == bg["accuracy"] == pytest.approx(n_bg / n, abs=1e-12)
    # The loss is the mean pixel cross-entropy over the whole set (float32 sums: 1e-6).
    logits = _Oracle(all_background=True)(masks[:, None].float())
    assert bg["loss"] == pytest.approx(float(F.cross_entropy(logits, masks.long())), rel=1e-6)


def test_resume_mid_epoch_is_bit_identical(seg_run, tmp_path):
    """Stopping at step 3 of epoch 2 and resuming gives the same weights as never stopping."""
    r = run_training(cfg(tmp_path, "split", **OPTS), should_stop=lambda epoch, step: (epoch, step) == (2, 3))
    assert r.interrupted
    assert json.loads((tmp_path / "split" / "checkpoints" / "latest.json").read_text())["step"] == 3
    fit(cfg(tmp_path, "split", resume=True, **OPTS))
    a, b = weights(seg_run), weights(tmp_path / "split")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (seg_run, tmp_path / "split"))
    assert [e["test_mean_iou"] for e in ma["epochs"]] == [e["test_mean_iou"] for e in mb["epochs"]]


def test_target_accuracy_is_a_target_for_mean_iou(seg_run, tmp_path):
    first = json.loads((seg_run / "metrics.json").read_text())["epochs"][0]  # the same epoch 1 as below (same seed)
    assert first["test_mean_iou"] < first["test_accuracy"]  # the two differ, so the test can tell them apart
    reached = fit(cfg(tmp_path, "reached", **{**OPTS, "target_accuracy": first["test_mean_iou"]}))
    assert reached["epochs_completed"] == 1 and reached["seconds_to_target"] == reached["epochs"][0]["seconds"]
    between = (first["test_mean_iou"] + first["test_accuracy"]) / 2  # reached by the pixel accuracy only
    missed = fit(cfg(tmp_path, "missed", **{**OPTS, "epochs": 1, "target_accuracy": between}))
    assert missed["seconds_to_target"] is None


def test_task_mismatch_says_what_fits(tmp_path):
    with pytest.raises(UserError, match=r"mlp is a classification model \(it trains on images\), but test-scenes holds scenes.*unet_small"):
        fit(cfg(tmp_path, model="mlp", model_args={}))
    with pytest.raises(UserError, match=r"unet_small is a segmentation model \(it trains on scenes\), but digits holds images.*digit-scenes"):
        fit(cfg(tmp_path, data="digits"))
    for bad, option in ((dict(label_smoothing=0.1), "--label-smoothing"), (dict(adversarial="fgsm"), "--adversarial")):
        with pytest.raises(UserError, match=f"{option} .* is not an option of segmentation runs"):
            fit(cfg(tmp_path, **bad))
    assert not (tmp_path / "run").exists()  # refused before anything was written


class _NaNAfter(torch.nn.Module):
    """A 1x1-conv segmenter whose logits turn NaN after `after` forward passes in training."""

    def __init__(self, num_classes=11, in_chans=1, after=8):
        super().__init__()
        self.conv = torch.nn.Conv2d(in_chans, num_classes, 1)
        self.after, self.calls = after, 0

    def forward(self, x):
        self.calls += self.training
        out = self.conv(x)
        return out * float("nan") if self.calls > self.after else out


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    from deepnotes.models import MODELS
    from deepnotes.registry import Variant, register_variants
    from deepnotes.train import TrainingDiverged

    name = "seg-nan-after-8"
    with MODELS.scoped(), pytest.raises(TrainingDiverged, match="became nan in epoch 2"):  # 6 steps per epoch
        test_only = Variant("test only", num_params=None, input_size=(1, 32, 32), num_classes=11, config={}, task="segmentation")
        register_variants(_NaNAfter, {name: test_only})
        fit(cfg(tmp_path, model=name, model_args={}, epochs=3))
    state = RunDir(tmp_path / "run").read_checkpoint()
    assert state["epoch"] == 1 and state["step"] == 0
    assert all(torch.isfinite(v).all() for v in state["model"].values())


class _Valid(torch.nn.Module):
    """A valid 17x17 convolution whose kernel is a delta at its centre: the output is the
    input's centre (8 pixels less on every side), in each of `num_classes` channels."""

    def __init__(self, num_classes=3):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, num_classes, 17, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[:, 0, 8, 8] = torch.arange(1.0, num_classes + 1)

    def output_size(self, size):
        return size - 16 if size > 16 else None

    def forward(self, x):
        return self.conv(x)


def test_mirrored_input_for_valid_convolutions():
    x = torch.randn(2, 1, 12, 7)
    for margins in ((0, 0, 0, 0), (3, 2, 1, 4), (20, 9, 13, 30)):  # wider than the image: mirrored again
        want = np.pad(x.numpy(), ((0, 0), (0, 0), margins[:2], margins[2:]), mode="reflect")  # numpy as the oracle
        assert np.array_equal(mirror_pad(x, *margins).numpy(), want)
    model = _Valid()
    assert fit_input(model, "valid", "scenes", 1, (12, 7)) == (28, 23)  # the smallest inputs whose output covers 12x7
    out = MirrorPad(model, (28, 23))(x)
    assert out.shape == (2, 3, 12, 7)
    for k in range(3):  # the cropped output is the image itself, pixel for pixel
        torch.testing.assert_close(out[:, k], (k + 1) * x[:, 0], rtol=0, atol=1e-5)  # float32 conv of one nonzero tap
    from deepnotes.models import create_model

    same = create_model("unet_small", **TINY_UNET)
    assert fit_input(same, "unet_small", "scenes", 1, (32, 32)) is None  # takes 32x32 as it is
    assert fit_input(same, "unet_small", "scenes", 1, (30, 32)) == (32, 32)  # not a multiple of 4: mirrored to 32
    with pytest.raises(UserError, match="fcn8s_small cannot take the 40x40 images of scenes"):
        fit_input(create_model("fcn8s_small"), "fcn8s_small", "scenes", 1, (40, 40))


def test_flips_and_crops_move_the_masks():
    data = _test_scenes()
    x, y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
    spec = InputSpec(1, (32, 32), (0.5,), (0.25,))

    def pixels(xb):  # back to uint8 (exact: 1/255 steps are far larger than float32 rounding)
        return (xb * 0.25 + 0.5).mul(255).round().to(torch.uint8)

    for augment in ("flip", "crop", "crop+flip"):
        batches = TensorBatches(x, y, spec, 32, shuffle=True, seed=3, augment=augment, crop_padding=4)
        labels = torch.zeros(len(x), dtype=torch.int64)  # the same images with class labels, not masks
        plain = TensorBatches(x, labels, spec, 32, shuffle=True, seed=3, augment=augment, crop_padding=4)
        for epoch in (1, 2):
            for (xb, yb), (xp, _) in zip(batches.epoch(epoch), plain.epoch(epoch)):
                assert torch.equal(xb, xp)  # the images are augmented exactly as for classification
                # scenes: thresholding the image at 32 gives the union of the masks, before and after
                assert torch.equal(pixels(xb)[:, 0] > 32, yb > 0), augment
    # flip alone, in order: each mask is flipped exactly when its image is
    (xb, yb), = TensorBatches(x, y, spec, len(x), augment="flip").epoch(1)
    seen = {"flipped": 0, "kept": 0}
    for i, img in enumerate(pixels(xb)):
        as_is, mirrored = torch.equal(img, x[i]), torch.equal(img, x[i].flip(-1))
        assert as_is or mirrored
        if as_is != mirrored:  # (a symmetric image tells nothing)
            assert torch.equal(yb[i], y[i] if as_is else y[i].flip(-1))
            seen["kept" if as_is else "flipped"] += 1
    assert seen["flipped"] > 20 and seen["kept"] > 20, seen  # about half of 96 each
