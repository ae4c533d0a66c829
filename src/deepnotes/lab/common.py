"""Shared pieces of the lab experiments: real data in small doses, the one training loop of the
lab (train_small, which records every step), and figure helpers.

Quick runs use scikit-learn's digits (always installed); full runs use Fashion-MNIST when it
can be found, and say which data they used in their numbers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.data import ImageData, load_dataset
from deepnotes.data.transforms import (
    InputSpec,
    TensorBatches,
    as_tensors,
    channel_stats,
)
from deepnotes.errors import DataError


@dataclass
class Data:
    """A labelled image set as uint8 tensors (N, C, H, W) plus the name it came from."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    classes: tuple[str, ...] = ()

    @property
    def in_features(self) -> int:
        return int(np.prod(self.train_x.shape[1:]))

    def spec(self, standardize: bool = True) -> InputSpec:
        """standardize=True: per-channel mean/std of the training set; False: raw 0-255 values."""
        c = self.train_x.shape[1]
        size = tuple(self.train_x.shape[2:])
        if standardize:
            mean, std = channel_stats(self.train_x)
            return InputSpec(c, size, mean, std)
        return InputSpec(c, size, (0.0,) * c, (1 / 255,) * c)  # x/255 -> undo: raw pixel values


def lab_corpus(corpus: str | None, quick: bool, full: str = "brown"):
    """gettext-en for quick runs (always on a Debian machine); `full` (Brown) for full runs when it can be
    found without a download, else gettext-en (results name the corpus they used); or the corpus named
    (brown, gettext-en, shakespeare, bible-kjv). A deepnotes.data.corpora.Corpus."""
    from deepnotes.data.corpora import Corpus
    from deepnotes.errors import UserError

    if corpus is not None:
        data = load_dataset(corpus, download=False)
    elif quick:
        data = load_dataset("gettext-en")
    else:
        try:
            data = load_dataset(full, download=False)
        except DataError:
            data = load_dataset("gettext-en")
    if not isinstance(data, Corpus):
        raise UserError(f"{corpus} is not a corpus (tokenized sentences); use brown, gettext-en, shakespeare or bible-kjv")
    return data


def lab_data(quick: bool, *, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> Data:
    """Digits for quick runs; Fashion-MNIST (or digits if it cannot be found) for full runs.

    n_train / n_test take a seeded random subset (stratification is not needed at these sizes).
    """
    data: ImageData
    if quick:
        data = load_dataset("digits")
    else:
        try:
            data = load_dataset("fashion-mnist", download=False)
        except DataError:
            data = load_dataset("digits")
    train_x, train_y = as_tensors(data.train_x, data.train_y)
    test_x, test_y = as_tensors(data.test_x, data.test_y)
    g = torch.Generator().manual_seed(seed)
    if n_train is not None and n_train < len(train_x):
        idx = torch.randperm(len(train_x), generator=g)[:n_train]
        train_x, train_y = train_x[idx], train_y[idx]
    if n_test is not None and n_test < len(test_x):
        idx = torch.randperm(len(test_x), generator=g)[:n_test]
        test_x, test_y = test_x[idx], test_y[idx]
    return Data(data.name, train_x, train_y, test_x, test_y, data.num_classes, tuple(data.classes))


@dataclass
class History:
    """What train_small records: the loss of every step; per epoch the mean training loss, the
    test accuracy (when it evaluates) and the seconds spent in training steps so far."""

    step_loss: list[float] = field(default_factory=list)
    epoch_train_loss: list[float] = field(default_factory=list)
    epoch_test_accuracy: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)


class Step(NamedTuple):
    """What on_step sees after each optimizer step; logits and loss are those of the step (from
    before the update), so a callback can inspect the gradients the step used."""

    step: int  # 1-based, counted over the whole run
    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    logits: torch.Tensor
    loss: float


class Batches:
    """Mini-batches of (x, y) drawn from one random stream for the whole run: each epoch a
    permutation from the generator seeded with `seed`; then, batch by batch, augment(x, generator)
    (on the raw batch), normalization by `spec` (uint8 images; None: x as it is) and
    attack(x, y, generator) (e.g. adversarial examples of the current model) draw from the same
    stream. Whole batches only, at least one per epoch. shuffle=False keeps the order (with
    batch_size = len(x): full-batch training). One object serves one run: the stream goes on."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        *,
        spec: InputSpec | None = None,
        seed: int = 0,
        shuffle: bool = True,
        augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
        attack: Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    ):
        self.x, self.y, self.batch_size, self.spec = x, y, batch_size, spec
        self.shuffle, self.augment, self.attack = shuffle, augment, attack
        self.generator = torch.Generator().manual_seed(seed)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of the next epoch (`epoch` is not used: the stream decides the order)."""
        n, b = len(self.x), self.batch_size
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for i in range(max(1, n // b)):
            idx = order[i * b : (i + 1) * b]
            x, y = self.x[idx], self.y[idx]
            if self.augment is not None:
                x = self.augment(x, self.generator)
            if self.spec is not None:
                x = self.spec.normalize(x)
            if self.attack is not None:
                x = self.attack(x, y, self.generator)
            yield x, y


def train_small(
    model: nn.Module,
    data: Data | None,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    batch_size: int = 64,
    spec: InputSpec | None = None,
    seed: int = 0,
    drop_last: bool = True,
    batches: TensorBatches | Batches | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    on_step: Callable[[Step], None] | None = None,
    evaluate: bool = True,
) -> History:
    """The lab's one training loop: plain, and recording every step (the lab wants curves, not speed).

    The batches are TensorBatches over data.train_x normalized by `spec` (default data.spec()),
    reshuffled every epoch from `seed`, or `batches` (e.g. Batches: one random stream that also
    drives augmentation and attacks). Each step: loss_fn(model(x), y), backward, optimizer step,
    scheduler step (per step), then on_step(Step(...)). evaluate: the accuracy on data.test_x after
    every epoch. Training stops early, keeping what it recorded, if the loss becomes NaN/inf (a
    large LR may do that, and that is a result).
    """
    if spec is None and (batches is None or evaluate):
        spec = data.spec()
    if batches is None:
        batches = TensorBatches(data.train_x, data.train_y, spec, batch_size, shuffle=True, seed=seed, drop_last=drop_last)
    test = TensorBatches(data.test_x, data.test_y, spec, 1000) if evaluate else None
    hist = History()
    step, clock = 0, 0.0
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        total, seen = 0.0, 0
        model.train()
        for x, y in batches.epoch(epoch):
            if not model.training:  # on_step (or an attack in the batches) switched to eval mode
                model.train()
            logits = model(x)
            loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            step += 1
            value = loss.item()
            hist.step_loss.append(value)
            if on_step is not None:
                on_step(Step(step, model, x, y, logits.detach(), value))
            if not math.isfinite(value):
                return hist
            total += value * len(y)
            seen += len(y)
        clock += time.perf_counter() - start
        hist.epoch_seconds.append(clock)
        hist.epoch_train_loss.append(total / max(1, seen))
        if test is not None:
            hist.epoch_test_accuracy.append(accuracy(model, test))
    return hist


@torch.no_grad()
def accuracy(model: nn.Module, batches: TensorBatches) -> float:
    model.eval()
    correct = seen = 0
    for x, y in batches.epoch(0):
        correct += int((model(x).argmax(1) == y).sum())
        seen += len(y)
    return correct / max(1, seen)


def smooth(losses: list[float] | np.ndarray, window: int = 10) -> np.ndarray:
    """Trailing moving average of a loss curve; a window holding NaN/inf is inf (a blow-up stays visible)."""
    x = np.asarray(losses, dtype=float)
    finite = np.isfinite(x)
    c = np.concatenate([[0.0], np.cumsum(np.where(finite, x, 0.0))])
    bad = np.concatenate([[0], np.cumsum(~finite)])
    i = np.arange(len(x))
    lo = np.maximum(0, i - window + 1)
    mean = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return np.where(bad[i + 1] - bad[lo] > 0, np.inf, mean)


def steps_to(losses: list[float] | np.ndarray, target: float, window: int = 10) -> int | None:
    """First step (1-based) at which the smoothed loss is <= target; None if never."""
    s = smooth(losses, window)
    hit = np.nonzero(s <= target)[0]
    return int(hit[0]) + 1 if len(hit) else None


def new_figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (5.0, 3.6)):
    """A matplotlib Figure on its own Agg canvas (no pyplot state), and its axes array."""
    from deepnotes.report.plots import new_figure as figure

    fig = figure((size[0] * ncols, size[1] * nrows))
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def save_figure(fig, path) -> str:
    """Save a figure atomically; return its file name (for Finding.figures)."""
    from deepnotes.report.plots import save_png

    fig.tight_layout()
    return save_png(fig, path).name


def rounded(x, digits: int = 4):
    """Round floats (and lists of floats) for result.json."""
    if isinstance(x, (list, tuple)):
        return [rounded(v, digits) for v in x]
    if isinstance(x, float):
        return float(f"{x:.{digits}g}")
    return x


# --------------------------------------------------------------------------- intervals and fits


def paired_interval(a: Sequence[float], b: Sequence[float]) -> dict:
    """Mean of a - b over paired runs (same seed) and its 95% t-interval (Student's t with n - 1
    degrees of freedom: wide for 3 runs, as it should be); with one run the interval is the point."""
    from scipy.stats import t as student_t

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    mean = float(d.mean())
    if len(d) < 2:
        return {"mean": rounded(mean), "low": rounded(mean), "high": rounded(mean), "runs": len(d)}
    half = float(student_t.ppf(0.975, len(d) - 1)) * float(d.std(ddof=1)) / math.sqrt(len(d))
    return {"mean": rounded(mean), "low": rounded(mean - half), "high": rounded(mean + half), "runs": len(d)}


def image_paired_interval(right_a: torch.Tensor, right_b: torch.Tensor) -> dict:
    """Accuracy of a minus accuracy of b on the same test items (boolean "right" per item), with the
    95% normal interval of the per-item differences (one training run: the uncertainty of the test
    sample only, not of training)."""
    d = right_a.double() - right_b.double()
    mean = float(d.mean())
    se = float(d.std(unbiased=True)) / math.sqrt(len(d)) if len(d) > 1 else 0.0
    return {"mean": rounded(mean), "low": rounded(mean - 1.96 * se), "high": rounded(mean + 1.96 * se), "runs": 1}


def fit_exponent(sizes: Sequence[float], cost: Sequence[float]) -> float:
    """p of cost ~ c * size^p: the least-squares slope through (log size, log cost)."""
    return float(np.polyfit(np.log(np.asarray(sizes, dtype=float)), np.log(np.asarray(cost, dtype=float)), 1)[0])
