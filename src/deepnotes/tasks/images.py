"""What the image tasks share (classification, segmentation, and tasks that train on images):
model arguments from the data, uint8 tensors and their normalization, seeded batches, and
image files prepared for a trained run exactly as the training data was.

    class MyTask(ImageTask): ...          # setup() and the batches come with it
    x, notes = load_input(run, "shoe.png")    # uint8 (C, H, W) as in training, and what was done
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from deepnotes.data import ImageData
from deepnotes.data.transforms import InputSpec, TensorBatches, adapt_size, as_tensors, channel_stats
from deepnotes.errors import UserError
from deepnotes.images import load_image
from deepnotes.models import builder_accepts, get_model_entry
from deepnotes.rundir import RunConfig
from deepnotes.tasks.base import Task


def model_kwargs_for_data(
    model: str, data: ImageData, overrides: dict[str, Any], num_classes: int | None = None
) -> tuple[dict[str, Any], tuple[int, int]]:
    """Keyword arguments that fit `model` to the data, and the input size it will see.

    Models with a fixed input size (LeNet-5: 32x32) get the data adapted to them; the others
    are built for the data's own size.
    """
    entry = get_model_entry(model)
    if num_classes is not None and num_classes < data.num_classes:
        raise UserError(f"--num-classes {num_classes} is too few for {data.name}, whose labels go up to {data.num_classes - 1}")
    kwargs: dict[str, Any] = {"num_classes": num_classes or data.num_classes}
    if builder_accepts(model, "in_chans"):
        kwargs["in_chans"] = data.in_chans
    img_size = tuple(entry.input_size[1:]) if entry.fixed_input_size else data.img_size
    if not entry.fixed_input_size and builder_accepts(model, "img_size"):
        kwargs["img_size"] = list(img_size)
    kwargs.update(overrides)
    if "img_size" in kwargs:
        size = kwargs["img_size"]
        img_size = (size, size) if isinstance(size, int) else tuple(size)
    return kwargs, img_size


def input_spec(train_x: torch.Tensor, in_chans: int, img_size: tuple[int, int], stats: InputSpec | None = None) -> InputSpec:
    """The normalization of the training images, or `stats`' (e.g. a transfer source's) when its channels match."""
    if stats is not None and stats.in_chans == in_chans:
        mean, std = stats.mean, stats.std
    else:
        mean, std = channel_stats(train_x)
    return InputSpec(in_chans, tuple(img_size), mean, std)


def prepare_data(data: ImageData, img_size: tuple[int, int], stats: InputSpec | None = None):
    """uint8 tensors adapted to the model's size, the InputSpec, and a sentence saying how."""
    train_x, train_y = as_tensors(data.train_x, data.train_y)
    test_x, test_y = as_tensors(data.test_x, data.test_y)
    train_x, note = adapt_size(train_x, img_size)
    test_x, _ = adapt_size(test_x, img_size)
    return (train_x, train_y), (test_x, test_y), input_spec(train_x, data.in_chans, img_size, stats), note


class ImageTask(Task):
    """A task on images with per-image targets held in memory as tensors (labels, masks, ...).

    Subclasses say how the data becomes tensors (prepare) and may cap the evaluation batch
    (eval_batch_size); setup() and the batches are shared."""

    data_kinds = ("images",)

    def prepare(self, data: Any, img_size: tuple[int, int], stats: InputSpec | None):
        """((train_x, train_y), (test_x, test_y), InputSpec, note): uint8 images, targets as tensors."""
        return prepare_data(data, img_size, stats)

    def setup(self, data: Any, source: RunConfig | None) -> None:
        cfg = self.cfg
        overrides = dict(cfg.model_args)
        if source:  # the body's options come from the source run (only the head is new)
            overrides = {k: v for k, v in source.model_args.items() if k != "num_classes"} | overrides
        self.model_args, self.img_size = model_kwargs_for_data(cfg.model, data, overrides, cfg.num_classes)
        stats = InputSpec.from_json(source.input) if source else None
        (self.train_x, self.train_y), (self.test_x, self.test_y), self.spec, self.input_note = self.prepare(data, self.img_size, stats)
        self.classes = list(data.classes)
        self.input = {**self.spec.to_json(), "data_size": list(data.img_size), "adapted": self.input_note}

    def eval_batch_size(self) -> int:
        return self.cfg.eval_batch_size

    def train_batches(self, rank: int = 0, world_size: int = 1) -> TensorBatches:
        cfg = self.cfg
        return TensorBatches(
            self.train_x, self.train_y, self.spec, cfg.batch_size, shuffle=True, seed=cfg.seed, augment=cfg.augment,
            crop_padding=cfg.crop_padding, drop_last=True, rank=rank, world_size=world_size, channels_last=cfg.channels_last,
        )  # fmt: skip

    def test_batches(self) -> TensorBatches:
        return TensorBatches(self.test_x, self.test_y, self.spec, self.eval_batch_size(), channels_last=self.cfg.channels_last)


# --------------------------------------------------------------------------- image files for a trained run


def run_input_spec(config: RunConfig) -> InputSpec:
    return InputSpec.from_json(config.input)


def load_inputs(config: RunConfig, paths: list[str | Path], invert: bool | None = None) -> tuple[torch.Tensor, list[list[str]]]:
    """Image files as the model's input before normalization: uint8 (B, C, H, W), brought to
    the dataset's channels and size and then adapted as in training; and the notes per image
    on every conversion."""
    spec = run_input_spec(config)
    data_size = tuple(config.input.get("data_size", spec.img_size))
    pixels, notes = [], []
    for path in paths:
        p, n = load_image(path, spec.in_chans, data_size, invert=invert)
        pixels.append(torch.tensor(p))
        notes.append(n)
    x, how = adapt_size(torch.stack(pixels), spec.img_size)  # (B, C, H, W) uint8
    if data_size != tuple(spec.img_size):
        for n in notes:
            n.append(how + " as in training")
    return x, notes


def load_input(config: RunConfig, path: str | Path, invert: bool | None = None) -> tuple[torch.Tensor, list[str]]:
    """One image file as load_inputs prepares it: uint8 (C, H, W) and its notes."""
    x, notes = load_inputs(config, [path], invert)
    return x[0], notes[0]
