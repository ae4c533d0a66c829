"""A linear classifier's weights are class templates (lab claim C22).

A linear classifier on the flattened image computes score_c = <W_c, x> + b_c: one weight per
pixel and class. Reshaped to the image's shape, row W_c is a picture, and the score is its
match (inner product) with the input, so training pushes W_c towards what class c looks like
and away from the other classes (cs231n's "template matching" view; the same picture is in
Bishop's and in every linear-classifier chapter since).

    T = class_templates(model)                 # (num_classes, C, H, W)
    T = class_templates(model, std=spec.std)   # the same, as weights on [0, 1] pixels
    draw_templates(T, class_names, "templates.png")

Which models qualify is decided from what the forward pass does, not from names: starting
from the input, only reshapes (and dropout, off in eval mode) may come before exactly one
linear layer whose output is the model's output, and the linear layer's input must equal the
flattened image. In this package that is `mlp` with hidden=() (`--model-arg hidden=[]`).

Pixel space: the model sees z = (p - mean) / std per channel (deepnotes.data.transforms.
InputSpec), so score_c = sum W_c z + b_c = sum (W_c / std) p + const; with `std` given, the
templates are W_c / std, the weights on the [0, 1] pixels p (for one channel only a scale).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepnotes.errors import UserError
from deepnotes.explain.tracing import OpChain, display_name, eval_mode, linear_after, linear_weight

__all__ = ["class_templates", "draw_templates"]


def _input_size(model: nn.Module, input_size: Sequence[int] | None) -> tuple[int, int, int]:
    if input_size is not None:
        size = tuple(int(v) for v in input_size)
    else:
        c, hw = getattr(model, "in_chans", None), getattr(model, "img_size", None)
        if c is None or hw is None:
            raise UserError(f"{type(model).__name__} does not say its input size (no in_chans/img_size); pass input_size=(C, H, W)")
        hw = (hw, hw) if isinstance(hw, int) else tuple(hw)
        size = (int(c), int(hw[0]), int(hw[1]))
    if len(size) != 3 or min(size) < 1:
        raise UserError(f"input_size must be (C, H, W) with positive sizes, got {input_size}")
    return size  # type: ignore[return-value]


def class_templates(
    model: nn.Module,
    input_size: Sequence[int] | None = None,
    *,
    std: Sequence[float] | None = None,
    model_name: str | None = None,
) -> torch.Tensor:
    """The weights of a linear classifier as images: (num_classes, C, H, W), float32, CPU.

    input_size (C, H, W) defaults to the model's in_chans and img_size. std: the per-channel
    std of the input normalization; given, the templates are divided by it (weights on [0, 1]
    pixels, see the module docstring). A model that is not one linear layer on the flattened
    image is a UserError saying so.
    """
    c, h, w = _input_size(model, input_size)
    name = display_name(model, model_name)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = torch.rand((2, c, h, w), generator=torch.Generator().manual_seed(0)).to(device)
    chain = OpChain()
    chain.start(x)
    with eval_mode(model), torch.no_grad():
        try:
            with chain:
                out = model(x)
        except (RuntimeError, ValueError) as e:
            raise UserError(f"{name} cannot run on input {c}x{h}x{w}: {e}") from None
    logits = out if isinstance(out, torch.Tensor) else None
    op, desc = linear_after(chain.ops, x, logits, allow_average=False) if logits is not None else (None, "?")
    if op is not None:
        weight, _ = linear_weight(op)
        ok = weight.dim() == 2 and weight.shape[1] == c * h * w and torch.equal(op.args[0].reshape(2, -1), x.reshape(2, -1))
    if op is None or not ok:
        raise UserError(
            f"class templates need a linear classifier: one Linear layer on the flattened image and nothing else "
            f"(e.g. mlp with hidden=(), `--model-arg hidden=[]`); {name} does: {desc}"
        )
    t = weight.detach().float().cpu().reshape(weight.shape[0], c, h, w).clone()
    if std is not None:
        s = torch.as_tensor(tuple(std), dtype=torch.float32)
        if s.numel() not in (1, c) or bool((s <= 0).any()):
            raise UserError(f"std must hold 1 or {c} positive values (one per channel), got {tuple(std)}")
        t = t / s.reshape(1, -1, 1, 1)
    return t


def draw_templates(
    weights: torch.Tensor | np.ndarray,
    class_names: Sequence[str] | None,
    out_png: str | os.PathLike,
    *,
    title: str | None = None,
    ncols: int = 10,
) -> Path:
    """One panel per class. One channel: a diverging colour map centred on 0, scaled per class to
    its largest |weight| (red: the pixel raises the score, blue: it lowers it). Three channels:
    each template stretched min-max to an RGB image (cs231n's rendering). Returns the path."""
    from deepnotes.report.plots import new_figure, save_png

    t = weights.detach().cpu().numpy() if isinstance(weights, torch.Tensor) else np.asarray(weights)
    if t.ndim != 4:
        raise ValueError(f"weights must be (num_classes, C, H, W), got shape {t.shape}")
    n, c = t.shape[:2]
    if class_names is not None and len(class_names) != n:
        raise ValueError(f"{len(class_names)} class names for {n} templates")
    cols = max(1, min(ncols, n))
    rows = -(-n // cols)
    fig = new_figure((1.6 * cols, 1.8 * rows + (0.4 if title else 0)))
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False))
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.set_axis_off()
            continue
        if c == 3:
            img = t[i].transpose(1, 2, 0)
            lo, hi = float(img.min()), float(img.max())
            ax.imshow((img - lo) / (hi - lo) if hi > lo else np.zeros_like(img), interpolation="nearest")
        else:
            img = t[i].mean(0)  # one channel (or the channel mean of an unusual layout)
            m = float(np.abs(img).max()) or 1.0
            ax.imshow(img, cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
        ax.set_title(str(class_names[i]) if class_names is not None else str(i), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_png(fig, out_png)
