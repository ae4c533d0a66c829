"""Classify image files with a trained run directory (`deepnotes predict RUN_DIR IMAGE...`).

An image is brought to what the model saw in training: the dataset's channels and size
(e.g. 8x8 for digits, with Fashion-MNIST's dark background), then the same size adaptation
and normalization as in training (config.json["input"]). Every conversion is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from deepnotes.data.transforms import InputSpec, adapt_size
from deepnotes.images import load_image
from deepnotes.registry import create_model
from deepnotes.train.checkpoint import load_weights, read_run_config


@dataclass
class LoadedRun:
    run_dir: Path
    config: dict
    model: torch.nn.Module
    spec: InputSpec
    classes: list[str]


def load_run(run_dir: str | Path) -> LoadedRun:
    """Rebuild the model of a run from config.json and load its verified weights."""
    config = read_run_config(run_dir)
    model = create_model(config["model"], **config["model_args"])
    load_weights(run_dir, model)
    model.eval()
    return LoadedRun(Path(run_dir), config, model, InputSpec.from_json(config["input"]), config["classes"])


@torch.no_grad()
def predict_image(run: LoadedRun, path: str | Path, top: int = 3, invert: bool | None = None):
    """[(class name, probability)] for the `top` classes, and the notes on how the image was converted."""
    data_size = tuple(run.config["input"].get("data_size", run.spec.img_size))
    pixels, notes = load_image(path, run.spec.in_chans, data_size, invert=invert)
    x = torch.tensor(pixels).unsqueeze(0)  # (1, C, h, w) uint8
    x, how = adapt_size(x, run.spec.img_size)
    if data_size != tuple(run.spec.img_size):
        notes.append(how + " as in training")
    probs = torch.softmax(run.model(run.spec.normalize(x)), dim=1)[0]
    p, idx = probs.topk(min(top, len(run.classes)))
    return [(run.classes[i], float(v)) for v, i in zip(p.tolist(), idx.tolist())], notes
