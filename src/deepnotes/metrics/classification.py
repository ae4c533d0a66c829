"""Classification metrics: the confusion matrix and accuracy.

The confusion matrix is the one every other count here comes from (accuracy = trace / total;
segmentation's IoU and Dice are computed from the confusion matrix of the pixels).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """Count matrix `cm[true, predicted]`, shape (num_classes, num_classes), dtype int64.

    Same result as sklearn.metrics.confusion_matrix(y_true, y_pred, labels=range(num_classes)).
    Accepts anything np.asarray understands (lists, arrays, CPU tensors) of any shape (masks are
    counted per pixel); entries whose target is `ignore_index` are left out. Labels outside
    [0, num_classes) or inputs of different shapes are a ValueError.
    """
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} must have the same shape")
    t, p = t.reshape(-1), p.reshape(-1)
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if ignore_index is not None:
        keep = t != ignore_index
        t, p = t[keep], p[keep]
    if t.size == 0:
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    for name, a in (("y_true", t), ("y_pred", p)):
        if not np.issubdtype(a.dtype, np.integer):
            if not np.all(np.equal(np.mod(a, 1), 0)):
                raise ValueError(f"{name} must hold integer class indices")
        if a.min() < 0 or a.max() >= num_classes:
            raise ValueError(f"{name} holds labels in [{a.min()}, {a.max()}], outside [0, {num_classes})")
    t = t.astype(np.int64)
    p = p.astype(np.int64)
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def accuracy(y_true: Any, y_pred: Any) -> float:
    """The fraction of equal entries (NaN for no entries)."""
    t, p = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    return float(np.mean(t == p)) if t.size else float("nan")
