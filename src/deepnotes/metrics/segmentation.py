"""Segmentation metrics, from logits to masks to one pixel confusion matrix.

Segmentation models (unet*, fcn*) return logits (B, num_classes, H, W); nothing in the models
applies a sigmoid or softmax. Masks are decoded here, in one place:

- one class (num_classes = 1, foreground vs background): a pixel is foreground when
  sigmoid(logit) > 0.5, i.e. logit > 0;
- several classes (background is class 0): the argmax over the class dimension.

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

import torch

from deepnotes.layers.ops import center_crop
from deepnotes.metrics.classification import confusion_matrix


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


def _check_logits(logits: torch.Tensor) -> None:
    if logits.ndim != 4:
        raise ValueError(f"expected logits (B, num_classes, H, W), got shape {tuple(logits.shape)}")


def _tp_fp_fn(cm) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    cm = torch.as_tensor(cm).double()
    tp = cm.diagonal()
    return tp, cm.sum(0) - tp, cm.sum(1) - tp


def iou_per_class(cm) -> torch.Tensor:
    """TP / (TP + FP + FN) per class (float64); NaN for a class in neither targets nor predictions."""
    tp, fp, fn = _tp_fp_fn(cm)
    return tp / (tp + fp + fn)  # 0 / 0 = NaN on purpose


def dice_per_class(cm) -> torch.Tensor:
    """2 TP / (2 TP + FP + FN) per class (float64, the F1 score of the pixels); NaN as for IoU."""
    tp, fp, fn = _tp_fp_fn(cm)
    return 2 * tp / (2 * tp + fp + fn)


def _nanmean(v: torch.Tensor, include_background: bool) -> float:
    v = v if include_background else v[1:]
    v = v[~torch.isnan(v)]
    return float(v.mean()) if v.numel() else float("nan")


def mean_iou(cm, include_background: bool = True) -> float:
    """Mean IoU over the classes present in the targets or the predictions (see the module docstring)."""
    return _nanmean(iou_per_class(cm), include_background)


def mean_dice(cm, include_background: bool = True) -> float:
    return _nanmean(dice_per_class(cm), include_background)


def pixel_accuracy(cm) -> float:
    cm = torch.as_tensor(cm)
    total = int(cm.sum())
    return float(cm.diagonal().sum()) / total if total else float("nan")


class SegmentationMetrics:
    """Accumulates the pixel confusion matrix over batches; compute() gives every metric at once.

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
        cm = confusion_matrix(target.cpu(), pred.cpu(), self.num_classes, self.ignore_index)
        self.confusion += torch.from_numpy(cm)

    def compute(self) -> dict:
        cm = self.confusion
        return {
            "mean_iou": mean_iou(cm, self.include_background),
            "mean_dice": mean_dice(cm, self.include_background),
            "pixel_accuracy": pixel_accuracy(cm),
            "iou": iou_per_class(cm).tolist(),
            "dice": dice_per_class(cm).tolist(),
        }


def by_class(values, classes) -> dict[str, float | None]:
    """Per-class values as {class name: value}, NaN (class in neither targets nor predictions)
    as None so that metrics.json stays strict JSON; outputs beyond the names are "class K"."""
    names = list(classes)
    out = {}
    for k, v in enumerate(values):
        name = names[k] if k < len(names) else f"class {k}"
        out[name] = None if v is None or v != v else float(v)
    return out
