"""Segmentation: an image in, a class per pixel out (task "segmentation").

    deepnotes train unet_small --data fashion-scenes     # scenes: images with exact masks
    deepnotes segment RUN_DIR scene.png                  # a trained run draws its masks

The loss is the pixel-wise cross-entropy (deepnotes.layers.losses.segmentation_loss), the test
set is scored by one pixel confusion matrix (deepnotes.metrics.segmentation.SegmentationMetrics:
per-class IoU and Dice, mean IoU, pixel accuracy), and accuracies are pixel accuracies.
test_accuracy is then the test pixel accuracy, and --target-accuracy is a target for the test
mean IoU (the headline metric of segmentation).

Masks stay uint8 in memory (fashion-scenes' 30,000 64x64 masks: 123 MB; as int64 983 MB);
the loss and the metrics take them as they are (.long() per batch). The training options that
have no meaning for masks (label smoothing, adversarial training) are refused (Task.options).

Valid convolutions (the paper's `unet`: 572 -> 388) predict only the centre of their input,
and 64x64 scenes are not even a size it takes. As in the U-Net paper's overlap-tile strategy
("the missing context is extrapolated by mirroring the input image", Ronneberger et al. 2015,
arXiv:1505.04597), the image is mirrored out to the smallest input whose output covers the
whole image, and the logits are cropped back to the image, so every pixel of every scene is
predicted and scored, whatever the model (MirrorPad).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.data.transforms import InputSpec
from deepnotes.errors import UserError
from deepnotes.layers.losses import segmentation_loss
from deepnotes.metrics.segmentation import SegmentationMetrics, by_class, mask_from_logits
from deepnotes.registry import register_task
from deepnotes.report.html import ReportParts
from deepnotes.report.plots import Panel
from deepnotes.rundir import RunConfig
from deepnotes.tasks.base import StepOutput, Target
from deepnotes.tasks.images import ImageTask, input_spec, load_input, run_input_spec

MASK_FIGURE_SCENES = 6  # test scenes drawn in masks.png
EVAL_PIXELS = 2**20  # pixels per evaluation batch: every pixel has a feature vector (1000 64x64 scenes through unet_small: ~2 GB)


def prepare_scenes(data, img_size: tuple[int, int], stats: InputSpec | None = None):
    """uint8 image tensors, uint8 mask tensors (N, H, W), the InputSpec (training statistics, or
    `stats`' when its channels match) and a note. The images are never resized: a mask cannot
    be resampled without inventing labels."""
    if tuple(img_size) != tuple(data.img_size):
        raise UserError(
            f"segmentation trains at the scenes' own size ({data.img_size[1]}x{data.img_size[0]}), "
            f"but the model is set to {img_size[1]}x{img_size[0]}; drop the img_size model option"
        )
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    train_x, train_y, test_x, test_y = (as_t(a) for a in (data.train_x, data.train_y, data.test_x, data.test_y))
    if train_y.dim() != 3 or train_y.shape[0] != train_x.shape[0]:
        raise UserError(f"{data.name}: segmentation labels must be masks (N, H, W), got {tuple(train_y.shape)}")
    spec = input_spec(train_x, data.in_chans, img_size, stats)
    return (train_x, train_y), (test_x, test_y), spec, f"kept {img_size[1]}x{img_size[0]}"


# --------------------------------------------------------------------------- input sizes


def mirror_pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Reflect-pad the last two dimensions (the image mirrored at its border, edge pixel not
    repeated); margins wider than the image are reached by mirroring again."""
    while top or bottom or left or right:
        H, W = x.shape[-2:]
        if min(H, W) < 2:  # nothing to mirror in a single row or column
            return F.pad(x, (left, right, top, bottom), mode="replicate")
        t, b, lft, r = min(top, H - 1), min(bottom, H - 1), min(left, W - 1), min(right, W - 1)
        x = F.pad(x, (lft, r, t, b), mode="reflect")
        top, bottom, left, right = top - t, bottom - b, left - lft, right - r
    return x


class MirrorPad(nn.Module):
    """model(x) for images that `model` cannot take or only partly predicts: x is mirrored out
    to pad_to = (H', W') (centred), and the logits cropped back to x's own H x W.

    The model's output is taken to be centred on its input (true of valid convolutions).
    The wrapped model is `.module`, so its state_dict keys are those of the bare model."""

    def __init__(self, model: nn.Module, pad_to: tuple[int, int]):
        super().__init__()
        self.module = model
        self.pad_to = (int(pad_to[0]), int(pad_to[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H, W = x.shape[-2:]
        S, T = self.pad_to
        top, left = (S - H) // 2, (T - W) // 2
        logits = self.module(mirror_pad(x, top, S - H - top, left, T - W - left))
        oh, ow = logits.shape[-2:]
        r0, c0 = top - (S - oh) // 2, left - (T - ow) // 2  # the image's first row/column in the output
        if r0 < 0 or c0 < 0 or r0 + H > oh or c0 + W > ow:
            raise ValueError(f"the output {oh}x{ow} of a {S}x{T} input does not cover the {H}x{W} image")
        return logits[..., r0 : r0 + H, c0 : c0 + W]


def fit_input(model: nn.Module, model_name: str, data_name: str, in_chans: int, img_size: tuple[int, int]) -> tuple[int, int] | None:
    """How `model` is run on img_size images: None (as they are: logits of the same size), or
    the size they are mirror-padded to (see MirrorPad). A model without `output_size` is
    probed once (eval mode, no gradients); a size it refuses is a UserError."""
    output_size = getattr(model, "output_size", None)
    if output_size is not None:
        if all(output_size(int(s)) == s for s in img_size):
            return None
        pad_to = []
        for s in img_size:
            t = int(s)
            while (o := output_size(t)) is None or o < s:  # the output grows with the input
                t += 1
                if t > 8 * s + 2048:
                    raise UserError(f"{model_name} has no input size whose output covers {s} pixels")
            pad_to.append(t)
        return tuple(pad_to)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            device = next(model.parameters(), torch.zeros(0)).device
            out = model(torch.zeros(1, in_chans, *img_size, device=device))
    except ValueError as e:
        raise UserError(f"{model_name} cannot take the {img_size[1]}x{img_size[0]} images of {data_name}: {e}") from None
    finally:
        model.train(was_training)
    if out.dim() != 4 or tuple(out.shape[-2:]) != tuple(img_size):
        raise UserError(
            f"{model_name} returns {tuple(out.shape)} for {img_size[1]}x{img_size[0]} images; "
            "segmentation needs logits (B, classes, H, W) of the image's size"
        )
    return None


# --------------------------------------------------------------------------- training


@torch.no_grad()
def predict_mask(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's mask for a batch x (B, C, H, W), in eval mode (its mode is restored after)."""
    was_training = model.training
    model.eval()
    try:
        return mask_from_logits(model(x))
    finally:
        model.train(was_training)


@torch.no_grad()
def evaluate_segmentation(
    model: nn.Module,
    batches,
    num_classes: int,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = segmentation_loss,
    device: torch.device = torch.device("cpu"),
) -> dict[str, Any]:
    """Mean loss and the segmentation metrics of all batches (masks as labels), from one pixel
    confusion matrix over the whole set (SegmentationMetrics): mean_iou, mean_dice,
    pixel_accuracy (also as "accuracy"), per-class iou and dice (NaN for a class in neither
    targets nor predictions), and "confusion" (num_classes x num_classes pixel counts)."""
    model.eval()
    scores = SegmentationMetrics(num_classes)
    loss_sum, seen = 0.0, 0
    for x, y in batches.epoch(0):
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss_sum += float(loss_fn(logits, y)) * len(y)
        scores.update(logits, y)
        seen += len(y)
    m = scores.compute()
    return {"loss": loss_sum / max(1, seen), "accuracy": m["pixel_accuracy"], **m, "confusion": scores.confusion.clone()}


class Segmentation(ImageTask):
    name = "segmentation"
    description = "images -> a class per pixel: pixel-wise cross-entropy, IoU, Dice, pixel accuracy"
    data_kinds = ("scenes",)
    options = frozenset({"augment", "crop_padding", "num_classes"})  # crops and flips move the masks too
    commands = ("segment",)
    target = Target("test_mean_iou", "test mean IoU", percent=False)

    def prepare(self, data, img_size, stats):
        return prepare_scenes(data, img_size, stats)

    def eval_batch_size(self) -> int:
        return min(self.cfg.eval_batch_size, max(1, EVAL_PIXELS // (self.img_size[0] * self.img_size[1])))

    def build(self, model: nn.Module) -> nn.Module:
        self.model = model
        self.num_outputs = self.model_args["num_classes"]
        pad_to = fit_input(model, self.cfg.model, self.cfg.data, self.spec.in_chans, self.img_size)
        self.input["pad_to"] = list(pad_to) if pad_to else None
        if not pad_to:
            return model
        (h, w), (ph, pw) = self.img_size, pad_to
        self.notes.append(f"{self.cfg.model} does not predict all of a {w}x{h} image as it is: each is mirrored "
                          f"out to {pw}x{ph} (U-Net's overlap-tile) and the output cropped back to {w}x{h}")  # fmt: skip
        return MirrorPad(model, pad_to)

    def training_step(self, net: nn.Module, batch) -> StepOutput:
        x, y = batch
        logits = net(x)
        loss = segmentation_loss(logits, y)
        correct = (logits.detach().argmax(1) == y).sum()
        return StepOutput(loss, {"loss": loss.detach() * len(y), "correct": correct, "pixels": y.numel()}, len(y))

    def train_record(self, sums, seen) -> dict[str, float]:
        return {"train_loss": sums.get("loss", 0.0) / max(1, seen), "train_accuracy": sums.get("correct", 0) / max(1, sums.get("pixels", 0))}

    def evaluate(self, core: nn.Module, batches) -> dict[str, Any]:
        return evaluate_segmentation(core, batches, self.num_outputs, segmentation_loss, self.device)

    def test_record(self, ev) -> dict[str, Any]:
        return {
            "test_loss": ev["loss"],
            "test_accuracy": ev["accuracy"],  # the pixel accuracy
            "test_mean_iou": ev["mean_iou"],
            "test_mean_dice": ev["mean_dice"],
            "test_pixel_accuracy": ev["pixel_accuracy"],
            "test_iou": by_class(ev["iou"], self.classes),
            "test_dice": by_class(ev["dice"], self.classes),
        }

    def scores_text(self, record) -> str:
        return (f"test loss {record['test_loss']:.4f}  mIoU {record['test_mean_iou']:.4f}  "
                f"Dice {record['test_mean_dice']:.4f}  pixel acc {record['test_accuracy']:.2%}")  # fmt: skip

    def summary(self, history, ev) -> dict[str, Any]:
        out = {"test_accuracy": None, "test_loss": None, "test_mean_iou": None, "test_mean_dice": None, "test_pixel_accuracy": None}
        out |= super().summary(history, ev)
        out["best_test_accuracy"] = max((h["test_accuracy"] for h in history), default=None)
        return out

    def final_metrics(self, ev) -> dict[str, Any]:
        return {} if ev is None else {"confusion": ev["confusion"].tolist()}

    def output_names(self) -> list[str]:
        """A name per model output: the classes, then "class K" for outputs beyond them."""
        return self.classes + [f"class {k}" for k in range(len(self.classes), self.num_outputs)]

    def curve_panels(self) -> list[Panel]:
        return [
            Panel("Loss", "loss", (("train_loss", "train"), ("test_loss", "test"))),
            Panel("Pixel accuracy and mean IoU", "%", (("train_accuracy", "train"), ("test_accuracy", "test"),
                                                       ("test_mean_iou", "test mean IoU", "--")), scale=100.0),
        ]  # fmt: skip

    def write_figures(self, run_dir, core, ev, metrics) -> list[dict]:
        from deepnotes.report import plot_confusion
        from deepnotes.report.masks import draw_masks

        figures = []
        if metrics["epochs"]:  # a few test scenes: image, ground truth, prediction
            n = min(len(self.test_x), MASK_FIGURE_SCENES)
            pred = predict_mask(core, self.spec.normalize(self.test_x[:n]).to(self.device)).cpu()
            draw_masks(self.test_x[:n], pred, self.test_y[:n], self.output_names(), Path(run_dir) / "masks.png")
            figures.append({"path": "masks.png", "caption": f"the first {n} test scenes: image, ground truth, prediction"})
        if "confusion" in metrics:  # the pixel confusion matrix has a row per model output
            plot_confusion(np.array(metrics["confusion"]), self.output_names(), Path(run_dir) / "confusion.png")
            figures.append({"path": "confusion.png", "caption": "confusion matrix on the test pixels (rows: true class)"})
        return figures

    def report(self, metrics) -> ReportParts:
        return segmentation_report(metrics)

    def final_text(self, metrics) -> str:
        if metrics.get("test_mean_iou") is None:
            return "no epoch finished"
        return (f"test mean IoU {metrics['test_mean_iou']:.4f} (Dice {metrics['test_mean_dice']:.4f}, "
                f"pixel accuracy {metrics['test_accuracy']:.2%})")  # fmt: skip

    @classmethod
    def inference_model(cls, model: nn.Module, config: RunConfig) -> nn.Module:
        pad_to = config.input.get("pad_to")
        return MirrorPad(model, pad_to) if pad_to else model  # a valid-convolution U-Net: mirrored as in training


register_task(Segmentation)


def segmentation_report(metrics: dict[str, Any]) -> ReportParts:
    """Mean IoU, Dice and pixel accuracy as the headline; a table of per-class IoU and Dice."""
    from deepnotes.report.html import html_table

    cards = [(label, f"{float(metrics[key]):.4f}") for key, label in (("test_mean_iou", "test mean IoU"), ("test_mean_dice", "test mean Dice"))
             if isinstance(metrics.get(key), (int, float))]  # fmt: skip
    if isinstance(metrics.get("test_accuracy"), (int, float)):
        cards.append(("test pixel accuracy", f"{100 * float(metrics['test_accuracy']):.2f}%"))
    sections = []
    iou, dice = metrics.get("test_iou"), metrics.get("test_dice") or {}
    if isinstance(iou, dict):
        cm = metrics.get("confusion")
        totals = [sum(r) for r in cm] if isinstance(cm, list) and len(cm) == len(iou) else None
        rows = []
        for k, (name, v) in enumerate(iou.items()):
            d = dice.get(name)
            row = {"class": name, "IoU": f"{v:.4f}" if v is not None else "absent", "Dice": f"{d:.4f}" if d is not None else "absent"}
            if totals is not None:
                row["test pixels"] = totals[k]
            rows.append(row)
        note = ('<p class="note">IoU = TP / (TP + FP + FN), Dice = 2 TP / (2 TP + FP + FN), over all test pixels; '
                "absent: the class is in neither the targets nor the predictions (left out of the means).</p>")  # fmt: skip
        sections.append(("Per-class results on the test scenes", html_table(rows) + "\n" + note))
    labels = {"train_accuracy": "train pixel acc", "test_accuracy": "test pixel acc", "test_mean_iou": "test mean IoU",
              "test_mean_dice": "test mean Dice", "test_pixel_accuracy": None}  # the same as test_accuracy  # fmt: skip
    shown = {"test_mean_iou", "test_mean_dice", "test_pixel_accuracy", "test_accuracy"}
    return ReportParts(cards=cards, headline_keys=shown, sections=sections, labels=labels)


# --------------------------------------------------------------------------- using a trained run


@dataclass
class Segmented:
    """One image segmented by a run: the model's input (uint8 (C, H, W)), the predicted mask
    (int64 (H, W)), the classes present as (class index, name, fraction of the pixels) from the
    largest fraction down, and the conversion notes."""

    path: str
    image: np.ndarray
    mask: np.ndarray
    present: list[tuple[int, str, float]]
    notes: list[str]


@torch.no_grad()
def segment_image(run, path: str | Path, invert: bool | None = None) -> Segmented:
    """Predict the mask of an image file with a segmentation run (argmax of the softmax per pixel)."""
    run.require("segment")
    x, notes = load_input(run.config, path, invert)
    mask = mask_from_logits(run.model(run_input_spec(run.config).normalize(x[None])))[0].numpy()
    counts = np.bincount(mask.reshape(-1), minlength=len(run.classes))
    names = list(run.classes) + [f"class {k}" for k in range(len(run.classes), len(counts))]
    present = sorted(((k, names[k], c / mask.size) for k, c in enumerate(counts) if c), key=lambda t: (-t[2], t[0]))
    return Segmented(str(path), x.numpy(), mask, present, notes)


def draw_segmentation(results: list[Segmented], out_png: str | os.PathLike, title: str | None = None) -> Path:
    """One row per image: the image as the model saw it, and the predicted mask over it in the
    fixed class colours (deepnotes.report.masks.palette; background is left uncoloured) with a legend
    of the classes present and their share of the pixels. Written atomically as PNG."""
    from matplotlib.patches import Patch

    from deepnotes.report.masks import overlay_mask, palette
    from deepnotes.report.plots import new_figure, save_png

    colors = palette(256)
    n = len(results)
    fig = new_figure((7.4, 2.7 * n + (0.4 if title else 0)))
    axes = fig.subplots(n, 2, squeeze=False)
    for (ax_img, ax_mask), r in zip(axes, results):
        shown = r.image[0] if r.image.shape[0] == 1 else r.image.transpose(1, 2, 0)
        ax_img.imshow(shown, cmap="gray" if r.image.shape[0] == 1 else None, vmin=0, vmax=255, interpolation="nearest")
        ax_img.set_title(Path(r.path).name, fontsize=8)
        ax_mask.imshow(overlay_mask(r.image, r.mask), interpolation="nearest")
        ax_mask.set_title("predicted mask", fontsize=8)
        handles = [
            Patch(facecolor=colors[k] / 255.0, edgecolor="grey", label=f"{name} {fraction:.1%}" + (" (uncoloured)" if k == 0 else ""))
            for k, name, fraction in r.present
        ]
        ax_mask.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=7, frameon=False)
        for ax in (ax_img, ax_mask):
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    return save_png(fig, out_png)
