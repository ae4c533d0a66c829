"""Adversarial examples: FGSM and PGD (L-infinity), accuracy against eps, adversarial training batches.

    x_adv = fgsm(model, x, y, eps=8/255, mean=spec.mean, std=spec.std)      # x: [0, 1] pixels
    x_adv = pgd(model, x, y, eps=8/255, alpha=2/255, steps=10, mean=spec.mean, std=spec.std)
    rows = accuracy_vs_eps(model, test_x_uint8, test_y, [0, 1/255, 2/255, 4/255], "fgsm", mean=..., std=...)
    plot_accuracy_vs_eps(rows, "attack.png")
    xb_adv = adversarial_batch(model, xb, yb, "pgd", eps=0.1, mean=..., std=...)   # in a training loop

- FGSM: Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR
  2015, arXiv:1412.6572: x' = x + eps * sign(grad_x L(f(x), y)) (eq. 3), here clipped to the
  valid pixel range.
- PGD: Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards Deep Learning Models Resistant to
  Adversarial Attacks", ICLR 2018, arXiv:1706.06083, section 2.1: x^{t+1} =
  Proj_{x+S}(x^t + alpha * sign(grad L)), S the L-inf ball of radius eps, started at a uniform
  random point of the ball (random_start); here the projection is onto the ball intersected
  with the pixel box [lo, hi] (clip to the ball, then to the box: for a box that is exact).
  One step with alpha = eps and no random start is FGSM, bit for bit.
  Default alpha = 2.5 * eps / steps, a common heuristic (not the paper's): all steps together
  can cross the ball (diameter 2 eps) 1.25 times. The paper's settings were eps 0.3 with 40
  steps of 0.01 (MNIST) and eps 8/255 with 7 steps of 2/255 (CIFAR-10); pass alpha for those.

Pixel space, the one thing that is easy to get wrong. A model trained here never sees pixels:
TensorBatches/InputSpec feed it z = (p - mean) / std with p = uint8 / 255 in [0, 1]. An eps
or a clip applied to z would mean a different size per channel (eps / std) and clip to the
wrong range. So every attack here takes x as [0, 1] pixels (uint8 images are divided by 255
where accepted), perturbs and clips in that space, and normalizes inside the graph before the
model: model((x - mean) / std). eps is in [0, 1] pixel units (8/255 is the usual CIFAR one).
A tensor outside the clip range is refused with a hint that it may be normalized already.
adversarial_batch() is the exception: it takes and returns normalized batches, as a training
loop holds them, and converts to pixels and back itself.

The model runs in eval mode during an attack (BatchNorm must not update its running
statistics with adversarial batches, dropout must not randomize the gradient) and every
submodule's train/eval flag is restored afterwards. Gradients are taken w.r.t. the input
only (torch.autograd.grad): parameters' .grad and requires_grad are never touched. The loss
is cross-entropy summed over the batch (in eval mode the images are independent, so each one
gets exactly its own gradient; its sign does not depend on the batch size).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.explain.tracing import eval_mode

__all__ = [
    "METHODS",
    "accuracy_vs_eps",
    "adversarial_batch",
    "attack",
    "draw_attack_examples",
    "fgsm",
    "pgd",
    "plot_accuracy_vs_eps",
    "predict",
]

METHODS = ("fgsm", "pgd")
Clamp = tuple[float, float] | None

# --------------------------------------------------------------------------- pixels <-> model input


def _stats(mean, std, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """mean/std as (1, C, 1, 1) tensors on x's device (None: identity)."""
    if mean is None and std is None:
        return None, None
    c = x.shape[1]
    m = torch.as_tensor(tuple(mean) if mean is not None else (0.0,), dtype=x.dtype, device=x.device).reshape(-1)
    s = torch.as_tensor(tuple(std) if std is not None else (1.0,), dtype=x.dtype, device=x.device).reshape(-1)
    for name, v in (("mean", m), ("std", s)):
        if v.numel() not in (1, c):
            raise ValueError(f"{name} must have 1 or {c} values (one per channel), got {v.numel()}")
    if bool((s <= 0).any()):
        raise ValueError(f"std must be positive, got {s.tolist()}")
    return m.reshape(1, -1, 1, 1), s.reshape(1, -1, 1, 1)


def _to_model(p: torch.Tensor, m: torch.Tensor | None, s: torch.Tensor | None) -> torch.Tensor:
    return p if m is None else (p - m) / s


def _pixels(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"images must be a (B, C, H, W) tensor, got {getattr(x, 'shape', type(x).__name__)}")
    if x.dtype == torch.uint8:
        return x.float() / 255.0
    if not x.is_floating_point():
        raise ValueError(f"images must be uint8 or float pixels in [0, 1], got {x.dtype}")
    return x.detach()


def _check_range(x: torch.Tensor, clamp: Clamp) -> None:
    if clamp is None:
        return
    lo, hi = clamp
    if not lo < hi:
        raise ValueError(f"clamp must be (low, high) with low < high, got {clamp}")
    xmin, xmax = float(x.min()), float(x.max())
    tol = 1e-6 * max(1.0, abs(lo), abs(hi))
    if xmin < lo - tol or xmax > hi + tol:
        raise ValueError(
            f"images hold values in [{xmin:.3g}, {xmax:.3g}], outside the pixel range [{lo:g}, {hi:g}]: pass the [0, 1] "
            "images (not the normalized model input) and mean/std, so the attack perturbs pixels and normalizes them as "
            "the model expects (or set clamp to the input's range)"
        )


def _check_eps(eps: float) -> float:
    eps = float(eps)
    if not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0 (L-inf radius in [0, 1] pixel units, e.g. 8/255), got {eps}")
    return eps


def _box(x: torch.Tensor, clamp: Clamp) -> torch.Tensor:
    return x if clamp is None else x.clamp(clamp[0], clamp[1])


def _loss_grad(model, x, y, m, s, loss_fn) -> torch.Tensor:
    """d loss / d x for pixel images x (the normalization is inside the graph)."""
    with torch.enable_grad():
        xr = x.detach().clone().requires_grad_(True)
        logits = model(_to_model(xr, m, s))
        loss = loss_fn(logits, y) if loss_fn is not None else F.cross_entropy(logits, y, reduction="sum")
        (g,) = torch.autograd.grad(loss, xr)
    return g


# --------------------------------------------------------------------------- attacks


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    clamp: Clamp = (0.0, 1.0),
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Fast gradient sign method: clamp(x + eps * sign(grad_x loss)). x: [0, 1] pixels (B, C, H, W)
    (uint8 accepted); mean/std: the model's input normalization; returns float pixels."""
    eps = _check_eps(eps)
    x = _pixels(x)
    _check_range(x, clamp)
    m, s = _stats(mean, std, x)
    with eval_mode(model):
        g = _loss_grad(model, x, y, m, s, loss_fn)
    return _box(x + eps * g.sign(), clamp).detach()


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    alpha: float | None = None,
    steps: int = 10,
    random_start: bool = True,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    clamp: Clamp = (0.0, 1.0),
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Projected gradient descent on the loss (ascent), L-inf ball of radius eps around x.

    x: [0, 1] pixels (uint8 accepted). alpha: step size (default 2.5 * eps / steps). Each step
    x <- clip_box(clip_ball(x + alpha * sign(grad))). random_start: start at x + U(-eps, eps)
    (clipped to the box), drawn from `generator` (seed it for reproducible attacks).
    """
    eps = _check_eps(eps)
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    alpha = 2.5 * eps / steps if alpha is None else float(alpha)
    if not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha (step size) must be a finite number >= 0, got {alpha}")
    x = _pixels(x)
    _check_range(x, clamp)
    m, s = _stats(mean, std, x)
    lo, hi = x - eps, x + eps
    adv = x.clone()
    if random_start and eps > 0:
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)  # U[0, 1)
        adv = _box(x + (2 * noise - 1) * eps, clamp)
    with eval_mode(model):
        for _ in range(steps):
            g = _loss_grad(model, adv, y, m, s, loss_fn)
            adv = adv + alpha * g.sign()
            adv = _box(torch.minimum(torch.maximum(adv, lo), hi), clamp)
    return adv.detach()


def attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, method: str, eps: float, **kwargs) -> torch.Tensor:
    """fgsm or pgd by name (kwargs as theirs; fgsm ignores alpha/steps/random_start/generator)."""
    if method == "fgsm":
        for k in ("alpha", "steps", "random_start", "generator"):
            kwargs.pop(k, None)
        return fgsm(model, x, y, eps, **kwargs)
    if method == "pgd":
        return pgd(model, x, y, eps, **kwargs)
    raise ValueError(f"unknown attack {method!r}; choose one of {', '.join(METHODS)}")


def adversarial_batch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    method: str = "pgd",
    eps: float = 8 / 255,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    alpha: float | None = None,
    steps: int = 7,
    random_start: bool = True,
    clamp: Clamp = (0.0, 1.0),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Adversarial versions of a training batch, for adversarial training (Madry et al.: train on
    the PGD examples, min_theta E max_{|d| <= eps} L(x + d, y)).

    x is the batch as the loop holds it: the model's input, normalized with mean/std (as
    TensorBatches yields it); the result is in the same space, ready for model(x_adv). eps is
    in [0, 1] pixel units. Runs the model in eval mode and restores its flags, so the caller's
    following forward pass in train mode is unaffected; eps = 0 returns x unchanged.
    """
    if _check_eps(eps) == 0:
        return x.detach()
    m, s = _stats(mean, std, x)
    p = x.detach() if m is None else x.detach() * s + m
    if clamp is not None:
        _check_range(p, (clamp[0] - 1e-4, clamp[1] + 1e-4))  # float round-off of (p - m) / s * s + m
        p = p.clamp(clamp[0], clamp[1])
    kwargs = dict(mean=mean, std=std, clamp=clamp)
    if method == "pgd":
        adv = pgd(model, p, y, eps, alpha, steps, random_start, generator=generator, **kwargs)
    else:
        adv = attack(model, p, y, method, eps, **kwargs)
    return _to_model(adv, m, s)


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def predict(
    model: nn.Module, x: torch.Tensor, *, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted classes (B,), softmax probabilities (B, num_classes)) for [0, 1] pixel images."""
    x = _pixels(x)
    m, s = _stats(mean, std, x)
    with eval_mode(model):
        probs = torch.softmax(model(_to_model(x, m, s)), 1)
    return probs.argmax(1), probs


def accuracy_vs_eps(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps_list: Sequence[float],
    method: str = "fgsm",
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    clamp: Clamp = (0.0, 1.0),
    batch_size: int = 256,
    alpha: float | None = None,
    steps: int = 10,
    random_start: bool = True,
    seed: int = 0,
) -> list[dict]:
    """Accuracy (and mean cross-entropy) on adversarial versions of `images` for every eps.

    images: uint8 (N, C, H, W) as the datasets store them (or [0, 1] floats), already at the
    model's size. One dict per eps: method, eps, eps_255 (eps * 255), accuracy, loss, n, and for
    PGD steps and alpha. eps = 0 gives the clean accuracy. PGD's random starts come from a
    generator seeded with `seed`, so the numbers are reproducible.
    """
    if method not in METHODS:
        raise ValueError(f"unknown attack {method!r}; choose one of {', '.join(METHODS)}")
    x_all = _pixels(images)
    y_all = torch.as_tensor(labels, dtype=torch.long)
    if len(x_all) != len(y_all):
        raise ValueError(f"{len(x_all)} images but {len(y_all)} labels")
    _check_range(x_all, clamp)
    m, s = _stats(mean, std, x_all)
    rows = []
    for eps in eps_list:
        eps = _check_eps(eps)
        gen = torch.Generator().manual_seed(seed)
        correct, loss_sum = 0, 0.0
        for i in range(0, len(x_all), batch_size):
            x, y = x_all[i : i + batch_size], y_all[i : i + batch_size]
            kw = dict(mean=mean, std=std, clamp=clamp)
            if method == "pgd":
                adv = pgd(model, x, y, eps, alpha, steps, random_start, generator=gen, **kw)
            else:
                adv = fgsm(model, x, y, eps, **kw)
            with torch.no_grad(), eval_mode(model):
                logits = model(_to_model(adv, m, s))
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        n = len(x_all)
        row = {"method": method, "eps": eps, "eps_255": eps * 255, "accuracy": correct / max(1, n), "loss": loss_sum / max(1, n), "n": n}
        if method == "pgd":
            row |= {"steps": int(steps), "alpha": 2.5 * eps / steps if alpha is None else float(alpha), "random_start": bool(random_start)}
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- figures


def _hwc(img: torch.Tensor) -> np.ndarray:
    a = img.detach().cpu().float().numpy().transpose(1, 2, 0)
    return np.clip(a[..., 0] if a.shape[-1] == 1 else a, 0.0, 1.0)


def _name(i: int, class_names: Sequence[str] | None) -> str:
    return str(class_names[i]) if class_names is not None and 0 <= i < len(class_names) else str(i)


def draw_attack_examples(
    clean: torch.Tensor,
    adversarial: torch.Tensor,
    labels: torch.Tensor,
    pred_clean: torch.Tensor,
    pred_adv: torch.Tensor,
    out_png: str | os.PathLike,
    *,
    class_names: Sequence[str] | None = None,
    probs_clean: torch.Tensor | None = None,
    probs_adv: torch.Tensor | None = None,
    eps: float | None = None,
    method: str | None = None,
    max_images: int = 8,
) -> Path:
    """Three rows per image column: the clean image (true class, prediction), the perturbation
    (adv - clean, on a diverging scale of +-eps; mean over channels), the adversarial image
    (prediction, red when wrong). Images are [0, 1] pixels (uint8 accepted). Returns the path."""
    from deepnotes.report.plots import new_figure, save_png

    clean, adversarial = _pixels(clean), _pixels(adversarial)
    if clean.shape != adversarial.shape:
        raise ValueError(f"clean {tuple(clean.shape)} and adversarial {tuple(adversarial.shape)} images differ in shape")
    n = min(len(clean), max_images)
    delta = (adversarial - clean)[:n]
    scale = float(eps) if eps else float(delta.abs().max()) or 1.0
    fig = new_figure((1.9 * n, 6.3))
    axes = np.asarray(fig.subplots(3, n, squeeze=False))
    gray = clean.shape[1] == 1
    for i in range(n):
        t, pc, pa = int(labels[i]), int(pred_clean[i]), int(pred_adv[i])
        pc_txt = f" {float(probs_clean[i, pc]):.0%}" if probs_clean is not None else ""
        pa_txt = f" {float(probs_adv[i, pa]):.0%}" if probs_adv is not None else ""
        axes[0, i].imshow(_hwc(clean[i]), cmap="gray" if gray else None, vmin=0, vmax=1, interpolation="nearest")
        axes[0, i].set_title(f"true {_name(t, class_names)}\npred {_name(pc, class_names)}{pc_txt}", fontsize=8,
                             color="black" if pc == t else "red")  # fmt: skip
        axes[1, i].imshow(delta[i].mean(0).cpu().numpy(), cmap="RdBu_r", vmin=-scale, vmax=scale, interpolation="nearest")
        axes[2, i].imshow(_hwc(adversarial[i]), cmap="gray" if gray else None, vmin=0, vmax=1, interpolation="nearest")
        axes[2, i].set_title(f"pred {_name(pa, class_names)}{pa_txt}", fontsize=8, color="black" if pa == t else "red")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("clean")
    axes[1, 0].set_ylabel(f"perturbation\n(±{scale * 255:.3g}/255)")
    axes[2, 0].set_ylabel("adversarial")
    if method or eps is not None:
        fig.suptitle(" ".join(p for p in (method.upper() if method else "", f"eps = {eps * 255:.3g}/255" if eps is not None else "") if p))
    fig.tight_layout()
    return save_png(fig, out_png)


def plot_accuracy_vs_eps(rows: Sequence[dict], out_png: str | os.PathLike, *, title: str | None = None) -> Path:
    """Accuracy (%) against eps (in /255 units), one line per method, from accuracy_vs_eps rows."""
    from deepnotes.report.plots import new_figure, save_png

    rows = list(rows)
    if not rows:
        raise ValueError("plot_accuracy_vs_eps needs at least one row from accuracy_vs_eps")
    fig = new_figure((5.5, 3.8))
    ax = fig.subplots()
    for method in dict.fromkeys(r["method"] for r in rows):
        pts = sorted((r["eps"] * 255, 100 * r["accuracy"]) for r in rows if r["method"] == method)
        label = method.upper()
        pgd_row = next((r for r in rows if r["method"] == method and "steps" in r), None)
        if pgd_row:
            label += f" ({pgd_row['steps']} steps)"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=4, label=label)
    ax.set_xlabel("eps (L∞, in 1/255 of the pixel range)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    ax.set_title(title or f"Accuracy under attack (n = {rows[0]['n']})")
    fig.tight_layout()
    return save_png(fig, out_png)
