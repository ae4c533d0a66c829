"""Plots for a run: training curves and the confusion matrix, written as PNG files (the
matrix itself is computed by deepnotes.metrics.confusion_matrix).

matplotlib is imported inside the functions (it costs ~0.3 s) and every figure is drawn on
its own Agg canvas, without pyplot, so nothing here touches the global backend or leaks
figures. PNGs are written atomically: a reader never sees a half-written file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from deepnotes.fileio import atomic_path

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd")  # train, test, then further series


class Panel(NamedTuple):
    """One panel of the training curves: a title, the y label, and the series to draw as
    (history key, legend label) or (history key, legend label, line style); values are
    multiplied by `scale` (100 for fractions drawn as %)."""

    title: str
    ylabel: str
    series: tuple[tuple[str, ...], ...]
    scale: float = 1.0


LOSS_AND_ACCURACY = (
    Panel("Loss", "loss", (("train_loss", "train"), ("test_loss", "test"))),
    Panel("Accuracy", "accuracy (%)", (("train_accuracy", "train"), ("test_accuracy", "test")), scale=100.0),
)


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


def _series(epochs: Sequence[dict], key: str) -> np.ndarray:
    """Values of `key` across epochs as floats, NaN where missing or None."""
    out = []
    for e in epochs:
        v = e.get(key)
        out.append(float("nan") if v is None else float(v))
    return np.asarray(out, dtype=float)


def plot_curves(epochs: list[dict], path: str | os.PathLike, panels: Sequence[Panel] = LOSS_AND_ACCURACY) -> Path:
    """Draw the per-epoch series of a run's metrics.json (`epochs`: dicts with `epoch`, 1-based,
    and the keys the panels name) side by side, one panel each; write a PNG.

    The tasks choose the panels (deepnotes.tasks.base.Task.curve_panels); the default is loss
    and accuracy, train and test. Missing or None values are left out; a series with no values
    is not drawn. Points get markers when there are few epochs (so a single epoch is visible)
    or gaps. Returns `path`.
    """
    from matplotlib.ticker import MaxNLocator

    epochs = list(epochs)
    fig = new_figure((5 * len(panels), 4))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    if epochs:
        x = np.asarray(
            [e.get("epoch") if e.get("epoch") is not None else i + 1 for i, e in enumerate(epochs)],
            dtype=float,
        )
    else:
        x = np.zeros(0)

    for ax, panel in zip(axes, panels):
        drawn = False
        for k, (key, label, *style) in enumerate(panel.series):
            y = _series(epochs, key) * panel.scale
            finite = np.isfinite(y)
            if not finite.any():
                continue
            # Isolated points (one epoch, or neighbours missing) need a marker to be seen.
            marker = "o" if (len(y) <= 30 or not finite.all()) else None
            ax.plot(x, y, color=COLORS[k % len(COLORS)], linestyle=style[0] if style else "-", marker=marker, markersize=4,
                    linewidth=1.6, label=label)  # fmt: skip
            drawn = True
        ax.set_title(panel.title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(panel.ylabel)
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
