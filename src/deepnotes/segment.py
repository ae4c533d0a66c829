"""Dense prediction helpers: from logits to masks, the loss, the metrics, and pictures.

Segmentation models (unet*, fcn*) return logits (B, num_classes, H, W); nothing in the models
applies a sigmoid or softmax. This module does, in one place:

- one class (num_classes = 1, foreground vs background): sigmoid; a pixel is foreground when
  sigmoid(logit) > 0.5, i.e. logit > 0; the loss is binary cross-entropy with logits on
  (target > 0);
- several classes (background is class 0): softmax over the class dimension; the mask is the
  argmax; the loss is the pixel-wise cross-entropy (log-softmax + NLL, as the U-Net paper's
  "pixel-wise soft-max combined with the cross entropy loss", without its weight map).

Metrics come from one confusion matrix cm[true, predicted] accumulated over batches
(SegmentationMetrics), so they are exact over the whole set, not averages of batch averages:

- IoU_c = TP / (TP + FP + FN) (Jaccard); Dice_c = 2 TP / (2 TP + FP + FN) = 2 IoU / (1 + IoU);
- a class that is in neither the targets nor the predictions has 0 / 0: its IoU and Dice are
  NaN and the means leave it out (mean over the classes present in the target or the
  prediction: the Pascal VOC / Cityscapes convention, np.nanmean). A class that is predicted
  but absent from the targets counts, with IoU 0. Background (class 0) is a class like the
  others unless include_background=False;
- pixel accuracy = trace / total; pixels whose target is ignore_index are not counted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# --------------------------------------------------------------------------- palette


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


# --------------------------------------------------------------------------- logits -> masks


def center_crop(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """The central size = (h, w) window of the last two dimensions (U-Net's crop of its skips).

    When the margin is odd the extra row/column is cut at the bottom/right.
    """
    h, w = int(size[0]), int(size[1])
    H, W = x.shape[-2:]
    if h > H or w > W:
        raise ValueError(f"cannot crop {H}x{W} to a larger {h}x{w}")
    top, left = (H - h) // 2, (W - w) // 2
    return x[..., top : top + h, left : left + w]


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) logits -> probabilities: sigmoid when C == 1 (foreground), else softmax over C."""
    _check_logits(logits)
    return torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, dim=1)


def mask_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) logits -> (B, H, W) int64 class indices (C == 1: 1 where sigmoid > 0.5)."""
    _check_logits(logits)
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(dim=1)


@torch.no_grad()
def predict_mask(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's mask for a batch x (B, C, H, W), in eval mode (its mode is restored after)."""
    was_training = model.training
    model.eval()
    try:
        return mask_from_logits(model(x))
    finally:
        model.train(was_training)


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Mean pixel loss of logits (B, C, h, w) against class masks (B, H, W) (any integer dtype).

    A target larger than the logits (a U-Net with valid convolutions predicts only the centre)
    is centre-cropped to them. C == 1: binary cross-entropy with logits against target > 0
    (ignore_index pixels left out); C > 1: cross-entropy over the classes.
    """
    _check_logits(logits)
    if target.ndim != 3 or target.shape[0] != logits.shape[0]:
        raise ValueError(f"target must be (B, H, W) class indices for logits {tuple(logits.shape)}, got {tuple(target.shape)}")
    if target.shape[-2:] != logits.shape[-2:]:
        target = center_crop(target, logits.shape[-2:])
    target = target.long()
    if logits.shape[1] == 1:
        keep = target != ignore_index
        loss = F.binary_cross_entropy_with_logits(logits[:, 0], (target > 0).float(), reduction="none")
        return loss[keep].mean()
    return F.cross_entropy(logits, target, ignore_index=ignore_index)


def _check_logits(logits: torch.Tensor) -> None:
    if logits.ndim != 4:
        raise ValueError(f"expected logits (B, num_classes, H, W), got shape {tuple(logits.shape)}")


# --------------------------------------------------------------------------- metrics


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None) -> torch.Tensor:
    """cm[true, predicted] counts (num_classes, num_classes) int64 over all pixels of equal-shape masks."""
    pred, target = torch.as_tensor(pred), torch.as_tensor(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
    t, p = target.reshape(-1).long(), pred.reshape(-1).long()
    if ignore_index is not None:
        keep = t != ignore_index
        t, p = t[keep], p[keep]
    for name, a in (("target", t), ("prediction", p)):
        if a.numel() and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{name} holds classes {a.min().item()}..{a.max().item()}, outside 0..{num_classes - 1}")
    return torch.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _tp_fp_fn(cm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    cm = torch.as_tensor(cm).double()
    tp = cm.diagonal()
    return tp, cm.sum(0) - tp, cm.sum(1) - tp


def iou_per_class(cm: torch.Tensor) -> torch.Tensor:
    """TP / (TP + FP + FN) per class (float64); NaN for a class in neither targets nor predictions."""
    tp, fp, fn = _tp_fp_fn(cm)
    return tp / (tp + fp + fn)  # 0 / 0 = NaN on purpose


def dice_per_class(cm: torch.Tensor) -> torch.Tensor:
    """2 TP / (2 TP + FP + FN) per class (float64, the F1 score of the pixels); NaN as for IoU."""
    tp, fp, fn = _tp_fp_fn(cm)
    return 2 * tp / (2 * tp + fp + fn)


def _nanmean(v: torch.Tensor, include_background: bool) -> float:
    v = v if include_background else v[1:]
    v = v[~torch.isnan(v)]
    return float(v.mean()) if v.numel() else float("nan")


def mean_iou(cm: torch.Tensor, include_background: bool = True) -> float:
    """Mean IoU over the classes present in the targets or the predictions (see the module docstring)."""
    return _nanmean(iou_per_class(cm), include_background)


def mean_dice(cm: torch.Tensor, include_background: bool = True) -> float:
    return _nanmean(dice_per_class(cm), include_background)


def pixel_accuracy(cm: torch.Tensor) -> float:
    cm = torch.as_tensor(cm)
    total = int(cm.sum())
    return float(cm.diagonal().sum()) / total if total else float("nan")


class SegmentationMetrics:
    """Accumulates the confusion matrix over batches; compute() gives every metric at once.

        metrics = SegmentationMetrics(num_classes=11)
        for x, y in batches:
            metrics.update(model(x), y)     # logits (B, C, H, W) or masks (B, H, W)
        metrics.compute()   # {"mean_iou", "mean_dice", "pixel_accuracy", "iou": [...], "dice": [...]}
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None, include_background: bool = True):
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes, self.ignore_index, self.include_background = num_classes, ignore_index, include_background
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def reset(self) -> None:
        self.confusion.zero_()

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """pred: masks (B, H, W) or logits (B, C, H, W) (turned into masks; C == 1 means 2 classes)."""
        if pred.ndim == target.ndim + 1:
            pred = mask_from_logits(pred)
        if pred.shape != target.shape and pred.shape[:-2] == target.shape[:-2]:
            target = center_crop(target, pred.shape[-2:])  # valid-convolution U-Net: only the centre is predicted
        self.confusion += confusion_matrix(pred.cpu(), target.cpu(), self.num_classes, self.ignore_index)

    def compute(self) -> dict:
        cm = self.confusion
        return {
            "mean_iou": mean_iou(cm, self.include_background),
            "mean_dice": mean_dice(cm, self.include_background),
            "pixel_accuracy": pixel_accuracy(cm),
            "iou": iou_per_class(cm).tolist(),
            "dice": dice_per_class(cm).tolist(),
        }


# --------------------------------------------------------------------------- pictures


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
    from deepnotes.report.plots import new_figure, save_png

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
