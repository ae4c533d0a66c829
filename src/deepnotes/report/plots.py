"""Plots for a run: training curves and the confusion matrix, written as PNG files.

matplotlib is imported inside the functions (it costs ~0.3 s) and every figure is drawn on
its own Agg canvas, without pyplot, so nothing here touches the global backend or leaks
figures. PNGs are written atomically: a reader never sees a half-written file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepnotes.fileio import atomic_path

TRAIN_COLOR = "#1f77b4"
TEST_COLOR = "#d62728"
MIOU_COLOR = "#2ca02c"


def new_figure(figsize: tuple[float, float]):
    """A Figure on its own Agg canvas: no pyplot, no global backend, no figures left open."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path: str | os.PathLike) -> Path:
    """Write the figure as PNG atomically (shared by run reports and lab experiments)."""
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    return path


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Count matrix `cm[true, predicted]`, shape (num_classes, num_classes), dtype int64.

    Same result as sklearn.metrics.confusion_matrix(y_true, y_pred, labels=range(num_classes)).
    Accepts anything np.asarray understands (lists, arrays, CPU tensors). Labels outside
    [0, num_classes) or inputs of different lengths are a ValueError.
    """
    t = np.asarray(y_true).reshape(-1)
    p = np.asarray(y_pred).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if t.size == 0:
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    for name, a in (("y_true", t), ("y_pred", p)):
        if not np.issubdtype(a.dtype, np.integer):
            if not np.all(np.equal(np.mod(a, 1), 0)):
                raise ValueError(f"{name} must hold integer class indices")
        if a.min() < 0 or a.max() >= num_classes:
            raise ValueError(
                f"{name} holds labels in [{a.min()}, {a.max()}], outside [0, {num_classes})"
            )
    t = t.astype(np.int64)
    p = p.astype(np.int64)
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def _series(epochs: Sequence[dict], key: str) -> np.ndarray:
    """Values of `key` across epochs as floats, NaN where missing or None."""
    out = []
    for e in epochs:
        v = e.get(key)
        out.append(float("nan") if v is None else float(v))
    return np.asarray(out, dtype=float)


def plot_curves(epochs: list[dict], path: str | os.PathLike) -> Path:
    """Draw loss and accuracy (train and test) against epoch in two panels; write a PNG.

    `epochs` is the per-epoch list of a run's metrics.json: dicts with `epoch` (1-based),
    `train_loss`, `train_accuracy`, `test_loss`, `test_accuracy` (0..1, drawn as %), `lr`,
    `seconds`. Missing or None values are left out; a series with no values is not drawn.
    Points get markers when there are few epochs (so a single epoch is visible) or gaps.
    Segmentation runs (epochs with `test_mean_iou`) also get the test mean IoU, dashed, in the
    accuracy panel (their accuracies are pixel accuracies). Returns `path`.
    """
    from matplotlib.ticker import MaxNLocator

    epochs = list(epochs)
    fig = new_figure((10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    if epochs:
        x = np.asarray(
            [e.get("epoch") if e.get("epoch") is not None else i + 1 for i, e in enumerate(epochs)],
            dtype=float,
        )
    else:
        x = np.zeros(0)

    panels = (
        (ax_loss, "loss", 1.0, "Loss", "loss"),
        (ax_acc, "accuracy", 100.0, "Accuracy", "accuracy (%)"),
    )
    for ax, metric, scale, title, ylabel in panels:
        drawn = False
        for split, color in (("train", TRAIN_COLOR), ("test", TEST_COLOR)):
            y = _series(epochs, f"{split}_{metric}") * scale
            finite = np.isfinite(y)
            if not finite.any():
                continue
            # Isolated points (one epoch, or neighbours missing) need a marker to be seen.
            marker = "o" if (len(y) <= 30 or not finite.all()) else None
            ax.plot(x, y, color=color, marker=marker, markersize=4, linewidth=1.6, label=split)
            drawn = True
        if metric == "accuracy" and np.isfinite(miou := _series(epochs, "test_mean_iou") * scale).any():
            ax.plot(x, miou, color=MIOU_COLOR, linestyle="--", marker="o" if len(miou) <= 30 else None, markersize=4,
                    linewidth=1.6, label="test mean IoU")  # fmt: skip
            title, ylabel, drawn = "Pixel accuracy and mean IoU", "%", True
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if drawn:
            ax.legend(loc="best")
        else:
            ax.text(0.5, 0.5, "no values recorded", ha="center", va="center",
                    transform=ax.transAxes, color="gray")
        if len(x) == 1:
            ax.set_xlim(x[0] - 1, x[0] + 1)
    fig.tight_layout()
    return save_png(fig, path)


def plot_confusion(
    cm: Any,
    classes: Sequence[str] | None,
    path: str | os.PathLike,
    normalize: bool = True,
) -> Path:
    """Draw a confusion matrix (rows = true class, columns = predicted class); write a PNG.

    With `normalize` each row is divided by its total (the fraction of each true class that
    went to each prediction, colour scale 0..1); otherwise raw counts are shown. Values are
    written in the cells when there are at most 15 classes. The title gives the overall
    accuracy (trace / total). `classes` may be None (indices are used). Returns `path`.
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {cm.shape}")
    n = cm.shape[0]
    names = [str(c) for c in classes] if classes is not None else [str(i) for i in range(n)]
    if len(names) != n:
        raise ValueError(f"{len(names)} class names for a {n}x{n} confusion matrix")

    counts = cm.astype(np.float64)
    total = counts.sum()
    acc = np.trace(counts) / total if total > 0 else float("nan")
    if normalize:
        rows = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
        vmax, cbar_label = 1.0, "fraction of true class"
    else:
        values = counts
        vmax, cbar_label = max(float(values.max()) if n else 1.0, 1.0), "count"

    side = min(max(4.5, 0.45 * n + 2.5), 16.0)
    fig = new_figure((side + 1.2, side))
    ax = fig.subplots()
    im = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label(cbar_label)

    step = 1 if n <= 40 else math.ceil(n / 40)  # keep tick labels legible for many classes
    ticks = np.arange(0, n, step)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xticklabels([names[i] for i in ticks], rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticklabels([names[i] for i in ticks])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    acc_text = "n/a" if math.isnan(acc) else f"{100 * acc:.2f}%"
    ax.set_title(f"Confusion matrix - accuracy {acc_text} ({int(total):,} samples)")

    if n <= 15:
        threshold = vmax / 2
        for i in range(n):
            for j in range(n):
                v = values[i, j]
                if normalize:
                    text = "0" if v == 0 else f"{v:.2f}"
                else:
                    text = f"{int(v)}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8 if n > 10 else 9,
                        color="white" if v > threshold else "black")
    fig.tight_layout()
    return save_png(fig, path)
