"""Masks as pictures: fixed class colours, a mask over its image, and the side-by-side figure
of test scenes (image, ground truth, prediction) that segmentation runs put in their report.

Colours are fixed per class index (palette), so a class looks the same in every figure.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from deepnotes.layers.ops import center_crop
from deepnotes.report.plots import new_figure, save_png

# matplotlib's tab10 then tab20's light halves: bright and distinct on the black background
_BRIGHT = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
    (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213),
    (196, 156, 148), (247, 182, 210), (199, 199, 199), (219, 219, 141), (158, 218, 229),
)  # fmt: skip


def palette(num_classes: int = 256) -> np.ndarray:
    """Fixed class colours, uint8 (num_classes, 3): 0 (background) black, 1-20 matplotlib's
    tab10 and the light tab20 colours, 21-255 the Pascal VOC colour map (the bits of the class
    index spread over R, G, B; multiples of 32, so no clash with the first 21). A class has the
    same colour in every figure, whatever the number of classes.
    """
    out = np.zeros((max(num_classes, len(_BRIGHT) + 1), 3), np.uint8)
    for c in range(len(out)):
        r = g = b = 0
        v = c
        for shift in range(7, -1, -1):
            r |= (v & 1) << shift
            g |= ((v >> 1) & 1) << shift
            b |= ((v >> 2) & 1) << shift
            v >>= 3
        out[c] = (r, g, b)
    out[1 : len(_BRIGHT) + 1] = _BRIGHT
    return out[:num_classes]


def _as_numpy(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def _to_rgb(image) -> np.ndarray:
    """uint8 (C, H, W) with C in (1, 3), or (H, W) -> uint8 (H, W, 3)."""
    img = _as_numpy(image)
    if img.ndim == 2:
        img = img[None]
    if img.ndim != 3 or img.shape[0] not in (1, 3):
        raise ValueError(f"expected an image (C, H, W) with 1 or 3 channels, or (H, W), got shape {img.shape}")
    if img.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels 0..255, got {img.dtype}")
    return np.repeat(img, 3, axis=0).transpose(1, 2, 0) if img.shape[0] == 1 else img.transpose(1, 2, 0).copy()


def colorize(mask) -> np.ndarray:
    """Class mask (H, W) -> uint8 (H, W, 3) in the fixed palette (background black)."""
    m = _as_numpy(mask).astype(np.int64)
    if m.ndim != 2 or m.min(initial=0) < 0 or m.max(initial=0) > 255:
        raise ValueError(f"expected a mask (H, W) of classes 0..255, got shape {m.shape}")
    return palette(256)[m]


def overlay_mask(image, mask, alpha: float = 0.5) -> np.ndarray:
    """The image (uint8 (C, H, W) or (H, W)) as RGB with each non-background pixel of `mask`
    (H, W) blended with its class colour: (1 - alpha) * pixel + alpha * colour. uint8 (H, W, 3)."""
    rgb = _to_rgb(image)
    m = _as_numpy(mask)
    if m.shape != rgb.shape[:2]:
        raise ValueError(f"mask {m.shape} and image {rgb.shape[:2]} must have the same height and width")
    out = rgb.astype(np.float64)
    fg = m > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colorize(m)[fg]
    return np.rint(out).clip(0, 255).astype(np.uint8)


def draw_masks(images, pred, target, class_names: Sequence[str], out_png: str | os.PathLike, max_images: int = 8) -> Path:
    """One row per image: the image, the ground truth and the prediction in the fixed palette,
    with a legend of the classes that appear. A prediction smaller than the image (valid
    convolutions) is shown for the centre it covers. Written atomically as PNG."""
    images, pred, target = _as_numpy(images), _as_numpy(pred), _as_numpy(target)
    n = min(len(images), max_images)
    if not (len(pred) >= n and len(target) >= n):
        raise ValueError(f"need as many predictions ({len(pred)}) and targets ({len(target)}) as images ({len(images)})")
    fig = new_figure((6.0, 2.0 * n + 0.6))
    axes = fig.subplots(n, 3, squeeze=False)
    colors = palette(256)
    seen: set[int] = set()
    for i in range(n):
        h, w = pred[i].shape
        img = _to_rgb(center_crop(images[i], (h, w)))  # center_crop slices numpy arrays too
        tgt = center_crop(target[i], (h, w))
        seen |= set(np.unique(tgt).tolist()) | set(np.unique(pred[i]).tolist())
        for ax, picture, title in zip(axes[i], (img, colorize(tgt), colorize(pred[i])), ("image", "ground truth", "prediction")):
            ax.imshow(picture, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=9)
    from matplotlib.patches import Patch

    names = list(class_names)
    handles = [
        Patch(facecolor=colors[c] / 255.0, edgecolor="grey", label=names[c] if c < len(names) else str(c)) for c in sorted(seen)
    ]
    fig.legend(handles=handles, loc="lower center", ncol=min(4, len(handles)), fontsize=7, frameon=False)
    fig.subplots_adjust(bottom=0.6 / (2.0 * n + 0.6) + 0.03)
    return save_png(fig, out_png)
