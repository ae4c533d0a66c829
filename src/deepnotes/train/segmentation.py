"""What the training loop needs for dense prediction (task "segmentation"), kept out of loop.py:

    check_task(model, data)         the task both registry entries agree on, or a UserError
    check_options(cfg)              options that have no meaning for masks are refused
    prepare_scenes(data, ...)       uint8 images and uint8 masks (N, H, W) as tensors, the InputSpec
    fit_input(model, ...)           None, or the side the input is mirror-padded to (MirrorPad)
    MirrorPad(model, pad_to)        run a model on images it cannot take as they are

Masks stay uint8 in memory (fashion-scenes' 30,000 64x64 masks: 123 MB; as int64 983 MB);
segmentation_loss and SegmentationMetrics take them as they are (.long() per batch).

Valid convolutions (the paper's `unet`: 572 -> 388) predict only the centre of their input,
and 64x64 scenes are not even a size it takes. As in the U-Net paper's overlap-tile strategy
("the missing context is extrapolated by mirroring the input image"), the image is mirrored
out to the smallest input whose output covers the whole image, and the logits are cropped back
to the image, so every pixel of every scene is predicted and scored, whatever the model.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.data.transforms import InputSpec, channel_stats
from deepnotes.errors import UserError
from deepnotes.registry import DATASETS, MODELS

TASKS = ("classification", "segmentation")


def check_task(model: str, data: str) -> str:
    """The task of `model` and `data` (their registry entries), or a UserError naming what fits."""
    model_task, data_task = MODELS.get(model).task, DATASETS.get(data).task
    if model_task == data_task:
        return data_task
    models = [n for n in MODELS.names() if MODELS.get(n).task == data_task and not n.startswith("test")]
    datasets = [n for n in DATASETS.names() if DATASETS.get(n).task == model_task and not n.startswith("test")]
    raise UserError(
        f"{model} is a {model_task} model but {data} is a {data_task} dataset; "
        f"train {model} on a {model_task} dataset ({', '.join(datasets) or 'none registered'}) "
        f"or {data} with a {data_task} model ({', '.join(models) or 'none registered'})"
    )


def check_options(cfg) -> None:
    """Refuse the training options that are defined for class labels only."""
    if cfg.label_smoothing:
        raise UserError(f"--label-smoothing {cfg.label_smoothing} is for classification; segmentation trains on the plain pixel-wise cross-entropy")
    if cfg.adversarial != "none":
        raise UserError(f"--adversarial {cfg.adversarial} attacks a classifier's label; it is not defined for segmentation runs")


def prepare_scenes(data, img_size: tuple[int, int], stats: InputSpec | None = None):
    """Like loop.prepare_data for a SceneDataset: uint8 image tensors, uint8 mask tensors, the
    InputSpec (training statistics, or `stats`' when its channels match) and a note. The images
    are never resized: a mask cannot be resampled without inventing labels."""
    if tuple(img_size) != tuple(data.img_size):
        raise UserError(
            f"segmentation trains at the scenes' own size ({data.img_size[1]}x{data.img_size[0]}), "
            f"but the model is set to {img_size[1]}x{img_size[0]}; drop the img_size model option"
        )
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    train_x, train_y, test_x, test_y = (as_t(a) for a in (data.train_x, data.train_y, data.test_x, data.test_y))
    if train_y.dim() != 3 or train_y.shape[0] != train_x.shape[0]:
        raise UserError(f"{data.name}: segmentation labels must be masks (N, H, W), got {tuple(train_y.shape)}")
    if stats is not None and stats.in_chans == data.in_chans:
        mean, std = stats.mean, stats.std
    else:
        mean, std = channel_stats(train_x)
    spec = InputSpec(data.in_chans, tuple(img_size), mean, std)
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
            out = model(torch.zeros(1, in_chans, *img_size))
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


# --------------------------------------------------------------------------- batches


# --------------------------------------------------------------------------- metrics


def by_class(values, classes) -> dict[str, float | None]:
    """Per-class values as {class name: value}, NaN (class in neither targets nor predictions)
    as None so that metrics.json stays strict JSON; outputs beyond the names are "class K"."""
    names = list(classes)
    out = {}
    for k, v in enumerate(values):
        name = names[k] if k < len(names) else f"class {k}"
        out[name] = None if v is None or v != v else float(v)
    return out
