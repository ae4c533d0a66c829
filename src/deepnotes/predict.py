"""Use a trained run directory on image files: classify them (`deepnotes predict RUN_DIR IMAGE...`)
or, for a segmentation run, predict their masks (`deepnotes segment RUN_DIR IMAGE...`).

An image is brought to what the model saw in training: the dataset's channels and size
(e.g. 8x8 for digits, 64x64 for the scenes, with the training data's dark background), then
the same size adaptation and normalization as in training (config.json["input"]). Every
conversion is reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deepnotes.data.transforms import InputSpec, adapt_size
from deepnotes.errors import UserError
from deepnotes.images import load_image
from deepnotes.registry import MODELS, create_model
from deepnotes.train.checkpoint import load_weights, read_run_config


@dataclass
class LoadedRun:
    run_dir: Path
    config: dict
    model: torch.nn.Module  # segmentation runs: wrapped as in training (MirrorPad) when the model needs it
    spec: InputSpec
    classes: list[str]

    @property
    def task(self) -> str:
        return self.config.get("task", "classification")

    def describe(self) -> str:
        return f"{self.run_dir} holds a {self.task} run ({self.config['model']} on {self.config['dataset']})"


def load_run(run_dir: str | Path) -> LoadedRun:
    """Rebuild the model of a run from config.json and load its verified weights."""
    config = read_run_config(run_dir)
    model = create_model(config["model"], **config["model_args"])
    load_weights(run_dir, model)
    model.eval()
    pad_to = config["input"].get("pad_to")
    if pad_to:  # a valid-convolution U-Net: mirrored out and cropped back, as in training
        from deepnotes.train.segmentation import MirrorPad

        model = MirrorPad(model, pad_to).eval()
    return LoadedRun(Path(run_dir), config, model, InputSpec.from_json(config["input"]), config["classes"])


def require_classification(run: LoadedRun, command: str) -> None:
    """A UserError when `command` (a classifier's command) is given a segmentation run."""
    if run.task == "segmentation":
        raise UserError(f"{run.describe()}; `deepnotes {command}` needs a classifier. For masks use `deepnotes segment {run.run_dir} IMAGE...`")


def load_input(run: LoadedRun, path: str | Path, invert: bool | None = None) -> tuple[torch.Tensor, list[str]]:
    """The image file as the model's input before normalization: uint8 (C, H, W), and the notes."""
    data_size = tuple(run.config["input"].get("data_size", run.spec.img_size))
    pixels, notes = load_image(path, run.spec.in_chans, data_size, invert=invert)
    x, how = adapt_size(torch.tensor(pixels).unsqueeze(0), run.spec.img_size)  # (1, C, H, W) uint8
    if data_size != tuple(run.spec.img_size):
        notes.append(how + " as in training")
    return x[0], notes


@torch.no_grad()
def predict_image(run: LoadedRun, path: str | Path, top: int = 3, invert: bool | None = None):
    """[(class name, probability)] for the `top` classes, and the notes on how the image was converted."""
    require_classification(run, "predict")
    x, notes = load_input(run, path, invert)
    probs = torch.softmax(run.model(run.spec.normalize(x[None])), dim=1)[0]
    p, idx = probs.topk(min(top, len(run.classes)))
    return [(run.classes[i], float(v)) for v, i in zip(p.tolist(), idx.tolist())], notes


# --------------------------------------------------------------------------- segmentation


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


def _require_segmentation(run: LoadedRun) -> None:
    if run.task != "segmentation":
        models = ", ".join(n for n in MODELS.names() if MODELS.get(n).task == "segmentation")
        raise UserError(
            f"{run.describe()}; `deepnotes segment` needs a segmentation run ({models} trained on fashion-scenes or "
            f"digit-scenes). For classes use `deepnotes predict {run.run_dir} IMAGE...`"
        )


@torch.no_grad()
def segment_image(run: LoadedRun, path: str | Path, invert: bool | None = None) -> Segmented:
    """Predict the mask of an image file with a segmentation run (argmax of the softmax per pixel)."""
    from deepnotes.segment import mask_from_logits

    _require_segmentation(run)
    x, notes = load_input(run, path, invert)
    mask = mask_from_logits(run.model(run.spec.normalize(x[None])))[0].numpy()
    counts = np.bincount(mask.reshape(-1), minlength=len(run.classes))
    names = list(run.classes) + [f"class {k}" for k in range(len(run.classes), len(counts))]
    present = sorted(((k, names[k], c / mask.size) for k, c in enumerate(counts) if c), key=lambda t: (-t[2], t[0]))
    return Segmented(str(path), x.numpy(), mask, present, notes)


def draw_segmentation(results: list[Segmented], out_png: str | os.PathLike, title: str | None = None) -> Path:
    """One row per image: the image as the model saw it, and the predicted mask over it in the
    fixed class colours (deepnotes.segment.palette; background is left uncoloured) with a legend
    of the classes present and their share of the pixels. Written atomically as PNG."""
    from matplotlib.patches import Patch

    from deepnotes.report.plots import new_figure, save_png
    from deepnotes.segment import overlay_mask, palette

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
