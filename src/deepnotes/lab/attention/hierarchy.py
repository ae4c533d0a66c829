"""C84-C85: after ViT, the hierarchical transformers the notes name (Swin, PVT): what their
attention costs against ViT's, and what their locality buys at a fixed training budget.

C84  measured cost against resolution: multiply-adds (deepnotes.explain.summarize) and seconds per
     forward of vit_tiny_28 (with 2x2 patches), swin_tiny_28 and pvt_tiny_28 - about 0.46M
     parameters each, the same 2x2 patch embedding, so the same number of tokens N at every input
     size - at four sizes. The exponent p of cost ~ N^p is the slope of a least-squares line
     through (log N, log cost). Two costs are fitted: the whole forward, and the attention
     products alone (q k^T and weights x v, counted by a torch function mode: the matrix products
     between two activations), the part each design changes: ViT's is N^2, Swin's N * M^2 (M^2
     tokens per window), PVT's N * N / R^2.
C85  Swin against a ViT and a CNN of about the same size (vit_tiny_28, swin_tiny_28, resnet20 at
     width 1.3: 455k-462k parameters) trained with one recipe and one budget (lab.common.
     train_small: AdamW, one-cycle schedule, the same images, epochs and batches); full size on a
     10,000-image subset of Fashion-MNIST for 10 epochs, 3 seeds, with a 95% interval of the
     paired (same seed) difference. The claim is the notes' "ViT needs more data" (C73) seen from
     the other side: locality as a prior instead of data.

All models are deepnotes's own (deepnotes.models.vit / swin / pvt / resnet); the clock runs on this
machine's CPU and the numbers say how many threads it had.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from deepnotes.explain import summarize
from deepnotes.lab import Context, Finding, experiment
from deepnotes.lab.common import (
    fit_exponent,
    image_paired_interval,
    lab_data,
    new_figure,
    paired_interval,
    rounded,
    save_figure,
    train_small,
)
from deepnotes.layers.attention import use_fused
from deepnotes.models import create_model
from deepnotes.models.vit import ViT, ViTConfig

# ============================================================================ C84


class AttentionProducts(TorchFunctionMode):
    """Counts the multiply-adds of the products between two activations: matmul / @ of two
    tensors neither of which is a parameter (in these models exactly q k^T and weights x v; the
    projections run through F.linear), and F.scaled_dot_product_attention on the fused path."""

    def __init__(self) -> None:
        super().__init__()
        self.macs = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        if name in ("matmul", "__matmul__", "bmm") and not any(isinstance(a, nn.Parameter) for a in args[:2]):
            self.macs += out.numel() * args[0].shape[-1]
        elif name == "scaled_dot_product_attention":
            q, k, v = args[:3]
            self.macs += (out.numel() // v.shape[-1]) * k.shape[-2] * (q.shape[-1] + v.shape[-1])
        return out


def attention_product_macs(model: nn.Module, input_size: Sequence[int]) -> int:
    """The attention products' multiply-adds for one image (the model may sit on the meta device)."""
    device = next(model.parameters()).device
    counter = AttentionProducts()
    with torch.no_grad(), counter:
        model.eval()(torch.empty(1, *input_size, device=device))
    return counter.macs


def seconds_per_forward(model: nn.Module, x: torch.Tensor, repeats: int) -> float:
    """The fastest of `repeats` timed forward passes (eval, no_grad) after one untimed warm-up."""
    model.eval()
    best = math.inf
    with torch.no_grad():
        model(x)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            best = min(best, time.perf_counter() - start)
    return best


def _cost_model(name: str, size: int, swin_global: bool, largest: int, device: str | None = None) -> nn.Module:
    """The three arms of C84, built for an input of size x size: vit_tiny_28 with 2x2 patches, swin_tiny_28
    (swin_global: a window as large as the largest token map, so every layer attends globally),
    pvt_tiny_28."""
    with torch.device(device or "cpu"):
        if name == "vit":
            return create_model("vit_tiny_28", patch_size=2, img_size=size)
        if name == "swin":
            return create_model("swin_tiny_28", window_size=-(-largest // 2)) if swin_global else create_model("swin_tiny_28")
        return create_model("pvt_tiny_28", img_size=size)


ARMS_C84 = {"vit": "ViT (vit_tiny_28, 2x2 patches)", "swin": "Swin (swin_tiny_28)", "pvt": "PVT (pvt_tiny_28)"}
QUADRATIC, LINEAR = 1.8, 1.25  # exponent bands: >= 1.8 counts as quadratic, <= 1.25 as linear


def judge_c84(numbers: dict) -> tuple[str, str]:
    """From the fitted exponents p (cost ~ N^p over the four sizes; >= 1.8 quadratic, <= 1.25 linear):
    holds if ViT's attention products are quadratic, Swin's products and its whole forward linear,
    and PVT's whole-forward exponent lies strictly between Swin's and ViT's, with PVT's products
    between linear and quadratic too. Holds with a correction when all that is true except that
    PVT's attention products are themselves quadratic (a fixed R divides N^2 by R^2 but keeps the
    square): PVT then sits between only in its total cost and in absolute terms. Does not hold
    otherwise (e.g. Swin with windows as large as the map: quadratic like ViT)."""
    n = numbers
    e = {a: n["arms"][a]["exponent"] for a in ARMS_C84}
    vit_quadratic = e["vit"]["attention_products"] >= QUADRATIC
    swin_linear = e["swin"]["attention_products"] <= LINEAR and e["swin"]["macs"] <= LINEAR
    pvt_between = e["swin"]["macs"] < e["pvt"]["macs"] < e["vit"]["macs"]
    pvt_products_between = LINEAR < e["pvt"]["attention_products"] < QUADRATIC
    last = str(n["sizes"][-1])
    ratio = {a: n["arms"][a]["by_size"][last]["attention_products"] / n["arms"]["vit"]["by_size"][last]["attention_products"] for a in ARMS_C84}
    clock = {a: e[a]["seconds"] for a in ARMS_C84}
    clock_order = clock["swin"] < clock["pvt"] < clock["vit"]
    summary = (
        f"tokens N = {n['tokens'][0]}-{n['tokens'][-1]} ({n['sizes'][0]}-{n['sizes'][-1]} px, 2x2 patches); fitted exponents "
        f"(MACs of the whole forward / of the attention products / seconds): ViT {e['vit']['macs']:.2f} / "
        f"{e['vit']['attention_products']:.2f} / {e['vit']['seconds']:.2f}, Swin{' (global windows)' if n['swin_global'] else ''} "
        f"{e['swin']['macs']:.2f} / {e['swin']['attention_products']:.2f} / {e['swin']['seconds']:.2f}, PVT {e['pvt']['macs']:.2f} / "
        f"{e['pvt']['attention_products']:.2f} / {e['pvt']['seconds']:.2f}; at {last} px the attention products cost "
        f"{ratio['swin']:.3f} (Swin) and {ratio['pvt']:.3f} (PVT) of ViT's"
        + ("" if clock_order else " (the clock, on a shared CPU, does not order the three the same way)")
    )
    if vit_quadratic and swin_linear and pvt_between:
        if pvt_products_between:
            return "holds", summary
        return "holds with a correction", (
            f"ViT's attention grows as N^2 and Swin's as N, but PVT's spatial reduction with a fixed R divides N^2 by R^2 and keeps "
            f"the square (its products' exponent {e['pvt']['attention_products']:.2f}): PVT sits between only in total cost over "
            f"these sizes and in absolute terms (PVT v2's linear SRA, pooling to a fixed size, removes the square); " + summary
        )
    what = []
    if not vit_quadratic:
        what.append("ViT's attention products do not grow as N^2")
    if not swin_linear:
        what.append("Swin's cost does not grow linearly")
    if not pvt_between:
        what.append("PVT's exponent does not sit between Swin's and ViT's")
    return "does not hold", "; ".join(what) + ". " + summary


@experiment("C84", quick_verdict="holds with a correction", opposite={"swin_global": True})
def run_c84(ctx: Context, swin_global: bool = False, sizes: Sequence[int] | None = None) -> Finding:
    """MACs (summarize, on the meta device), attention-product MACs and seconds per image (1 thread,
    the fastest of a few runs, scratch attention path for all three) at four input sizes:
    quick 14-56 px (49-784 tokens), full 28-112 px (196-3,136 tokens; ViT's largest forward is
    12.7 GMACs). swin_global=True gives Swin a window as large as its largest map (the opposite
    evidence: global attention, as ViT's)."""
    sizes = [int(s) for s in (sizes or ctx.size((14, 28, 42, 56), (28, 56, 84, 112)))]
    repeats = ctx.size(1, 3)
    tokens = [(-(-s // 2)) ** 2 for s in sizes]
    arms: dict[str, dict] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the clock of a shared CPU is steadier, and no op is too small to split
    try:
        with use_fused(False):
            for a in ARMS_C84:
                by_size = {}
                for s, n_tokens in zip(sizes, tokens):
                    meta = _cost_model(a, s, swin_global, sizes[-1], device="meta")
                    summary = summarize(meta, (1, s, s))
                    products = attention_product_macs(meta, (1, s, s))
                    torch.manual_seed(ctx.seed)
                    model = _cost_model(a, s, swin_global, sizes[-1])
                    batch = -(-tokens[-1] // n_tokens)  # about the same work per timed call at every size
                    seconds = seconds_per_forward(model, torch.randn(batch, 1, s, s), repeats) / batch
                    by_size[str(s)] = {"params": summary.total_params, "macs": summary.total_macs, "attention_products": products,
                                       "seconds": rounded(seconds, 4), "timed_batch": batch}  # fmt: skip
                    ctx.log(f"C84 {a} {s}px: {summary.total_macs / 1e6:.1f}M MACs, products {products / 1e6:.1f}M, {seconds * 1e3:.2f} ms/image")
                rows = [by_size[str(s)] for s in sizes]
                arms[a] = {
                    "model": ARMS_C84[a] + (" with global windows" if a == "swin" and swin_global else ""),
                    "by_size": by_size,
                    "exponent": {k: rounded(fit_exponent(tokens, [r[k] for r in rows]), 4) for k in ("macs", "attention_products", "seconds")},
                }
    finally:
        torch.set_num_threads(threads)
    numbers = {
        "sizes": sizes,
        "tokens": tokens,
        "swin_global": swin_global,
        "arms": arms,
        "threads": 1,
        "timing": f"seconds per image from a batch of ceil(N_max / N) images, eval, no_grad, 1 thread, fastest of {repeats} run(s) "
        "after a warm-up, scratch attention path",
        "fit": "least-squares slope of log(cost) against log(N), N = tokens after the 2x2 patch embedding",
    }

    fig, axes = new_figure(3, 1, size=(4.6, 3.8))
    colours = {"vit": "C3", "swin": "C0", "pvt": "C2"}
    N = np.asarray(tokens, dtype=float)
    panels = (("macs", "MACs per image (whole forward)"), ("attention_products", "MACs of q k^T and weights x v"), ("seconds", "seconds per forward"))
    for ax, (key, title) in zip(axes[0], panels):
        for a in ARMS_C84:
            y = np.asarray([arms[a]["by_size"][str(s)][key] for s in sizes], dtype=float)
            ax.loglog(N, y, "o-", color=colours[a], label=f"{a.upper() if a != 'swin' else 'Swin'}: N^{arms[a]['exponent'][key]:.2f}")
        for p, style in ((1, ":"), (2, "--")):  # reference slopes through ViT's first point
            y0 = float(arms["vit"]["by_size"][str(sizes[0])][key]) or 1.0
            ax.loglog(N, y0 * (N / N[0]) ** p, style, color="grey", lw=1, label=f"slope {p}")
        ax.set(xlabel="tokens N (2x2 patches)", title=title)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle(f"cost against resolution ({sizes[0]}-{sizes[-1]} px), ~0.46M-parameter models; exponents fitted over the four sizes", fontsize=10)
    figure = save_figure(fig, ctx.figure_path("cost_against_tokens"))
    verdict, reason = judge_c84(numbers)
    return Finding(numbers, [figure], verdict, reason)


# ============================================================================ C85

NEAR = 0.01  # "nears the CNN": at most 1 percentage point below it


def _c85_model(arm: str, quick: bool, num_classes: int, in_chans: int, img: int) -> nn.Module:
    if quick:  # digits 8x8: 2x2 patches (a 4x4 grid), about 20-70k parameters
        if arm == "vit":
            return ViT(ViTConfig(patch_size=2, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0), num_classes, in_chans, img)
        if arm == "swin":
            return create_model("swin_tiny_28", patch_size=2, embed_dim=16, depths=[2, 2], num_heads=[1, 2], window_size=2,
                                num_classes=num_classes, in_chans=in_chans)  # fmt: skip
        return create_model("resnet20", width=0.5, num_classes=num_classes, in_chans=in_chans)
    if arm == "vit":
        return create_model("vit_tiny_28", num_classes=num_classes, in_chans=in_chans, img_size=img)
    if arm == "swin":
        return create_model("swin_tiny_28", num_classes=num_classes, in_chans=in_chans)
    return create_model("resnet20", width=1.3, num_classes=num_classes, in_chans=in_chans)


def judge_c85(numbers: dict) -> tuple[str, str]:
    """Holds if the windowed transformer beats the ViT (the 95% interval of the paired difference in
    test accuracy lies above 0) and nears the CNN (its mean accuracy at most 1 percentage point
    below the CNN's, or above it); holds with a correction if it beats the ViT but stays more than a
    point under the CNN; does not hold if it does not beat the ViT (e.g. when the "windowed" arm is
    the ViT itself: no difference)."""
    n = numbers
    a = n["arms"]
    d, gap = n["windowed_minus_vit"], a["cnn"]["mean"] - a["windowed"]["mean"]
    beats = d["low"] > 0
    nears = gap <= NEAR
    runs = f"{d['runs']} seed{'s' if d['runs'] != 1 else ''}"
    interval = "95% t-interval over seeds" if d["runs"] > 1 else "95% interval over the test images"
    summary = (
        f"{n['data']}, {n['train_images']} training images x {n['epochs']} epochs ({n['steps']} steps of {n['batch_size']}), {runs}: "
        f"{a['windowed']['model']} {a['windowed']['mean']:.2%}, {a['vit']['model']} {a['vit']['mean']:.2%}, {a['cnn']['model']} "
        f"{a['cnn']['mean']:.2%} (test accuracy, mean); windowed - ViT {d['mean']:+.2%} [{d['low']:+.2%}, {d['high']:+.2%}] ({interval}), "
        f"CNN - windowed {gap:+.2%}"
    )
    if beats and nears:
        return "holds", summary
    if beats:
        return "holds with a correction", f"the windowed transformer beats the ViT but stays {gap:.2%} under the CNN: {summary}"
    return "does not hold", f"the windowed transformer does not beat the ViT beyond the interval: {summary}"


@experiment("C85", quick_verdict="holds with a correction", opposite={"windowed": "vit"})
def run_c85(ctx: Context, windowed: str = "swin", seeds: int | None = None, n_train: int | None = None, epochs: int | None = None,
            lr: float = 1e-3, batch_size: int = 64) -> Finding:  # fmt: skip
    """Train ViT, the windowed transformer and the CNN with one recipe (AdamW lr 1e-3, weight decay
    0.05, one-cycle: 10% warm-up then cosine, batch 64, no augmentation) for the same epochs on the
    same images. Quick: digits, 1 seed, 5 epochs, 2x2-patch models of 20-70k parameters. Full:
    10,000 Fashion-MNIST training images (a fixed subset), the whole test set, 10 epochs, seeds
    0-2, vit_tiny_28 / swin_tiny_28 / resnet20 at width 1.3 (456k / 462k / 455k parameters).
    windowed="vit" puts the ViT in the windowed arm as well (the opposite evidence: a control with
    nothing to find)."""
    if windowed not in ("swin", "vit"):
        raise ValueError(f"windowed is 'swin' or 'vit' (the control), got {windowed!r}")
    seeds = seeds or ctx.size(1, 3)
    epochs = epochs or ctx.size(5, 10)
    data = lab_data(ctx.quick, n_train=n_train or ctx.size(None, 10_000), seed=ctx.seed)
    in_chans, img = data.train_x.shape[1], data.train_x.shape[-1]
    spec = data.spec()
    test_x = spec.normalize(data.test_x)
    results: dict[str, dict] = {}
    right: dict[str, list[torch.Tensor]] = {}
    curves: dict[str, list[list[float]]] = {}
    steps = 0
    for arm, source in (("vit", "vit"), ("windowed", windowed), ("cnn", "cnn")):
        accs, times = [], []
        for s in range(seeds):
            seed = ctx.seed + s
            torch.manual_seed(seed)
            model = _c85_model(source, ctx.quick, data.num_classes, in_chans, img)
            params = sum(p.numel() for p in model.parameters())
            opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
            steps = epochs * (len(data.train_x) // batch_size)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
            hist = train_small(model, data, opt, epochs=epochs, batch_size=batch_size, spec=spec, seed=seed, scheduler=sched)
            with torch.no_grad():
                pred = torch.cat([model.eval()(x).argmax(1) for x in test_x.split(1000)])
            right.setdefault(arm, []).append(pred == data.test_y)
            curves.setdefault(arm, []).append(hist.epoch_test_accuracy)
            accs.append(hist.epoch_test_accuracy[-1])
            times.append(hist.epoch_seconds[-1])
            ctx.log(f"C85 {arm} ({source}) seed {seed}: {accs[-1]:.2%} in {times[-1]:.0f} s")
        name = {"vit": "ViT", "swin": "Swin", "cnn": "ResNet-20"}[source]
        results[arm] = {
            "model": name + ("" if ctx.quick else {"vit": " (vit_tiny_28)", "swin": " (swin_tiny_28)", "cnn": " (resnet20, width 1.3)"}[source]),
            "params": params,
            "accuracy": [rounded(a, 4) for a in accs],
            "mean": rounded(float(np.mean(accs)), 4),
            "train_seconds": [round(t, 1) for t in times],
        }
    if seeds > 1:
        diff = paired_interval(results["windowed"]["accuracy"], results["vit"]["accuracy"])
    else:
        diff = image_paired_interval(right["windowed"][0], right["vit"][0])
    numbers = {
        "data": data.name,
        "train_images": len(data.train_x),
        "test_images": len(data.test_x),
        "epochs": epochs,
        "steps": steps,
        "batch_size": batch_size,
        "recipe": f"AdamW lr {lr:g}, weight decay 0.05, one-cycle (10% warm-up, cosine), batch {batch_size}, no augmentation",
        "seeds": [ctx.seed + s for s in range(seeds)],
        "windowed": windowed,
        "arms": results,
        "windowed_minus_vit": diff,
        "cnn_minus_windowed": paired_interval(results["cnn"]["accuracy"], results["windowed"]["accuracy"]),
        "threads": torch.get_num_threads(),
    }

    fig, axes = new_figure(2, 1, size=(5.0, 3.8))
    colours = {"vit": "C3", "windowed": "C0", "cnn": "C7"}
    ax = axes[0, 0]
    for key in ("vit", "windowed", "cnn"):
        c = np.asarray(curves[key], dtype=float)  # (seeds, epochs)
        x = np.arange(1, c.shape[1] + 1)
        ax.plot(x, c.mean(0), "o-", color=colours[key], ms=3, label=results[key]["model"])
        if len(c) > 1:
            ax.fill_between(x, c.min(0), c.max(0), color=colours[key], alpha=0.2)
    ax.set(xlabel="epoch", ylabel="test accuracy", title="test accuracy per epoch (mean; band: min-max over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    keys = ("vit", "windowed", "cnn")
    for i, key in enumerate(keys):
        accs = results[key]["accuracy"]
        ax.bar(i, results[key]["mean"], color=colours[key], alpha=0.7)
        ax.scatter([i] * len(accs), accs, color="black", s=12, zorder=3)
    lo = min(min(results[k]["accuracy"]) for k in keys)
    ax.set_ylim(max(0.0, lo - 0.05), min(1.0, max(max(results[k]["accuracy"]) for k in keys) + 0.02))
    ax.set_xticks(range(len(keys)), [f"{results[k]['model']}\n{results[k]['params']:,} params" for k in keys], fontsize=7)
    ax.set(ylabel="test accuracy after the last epoch", title=f"windowed - ViT: {diff['mean']:+.2%} [{diff['low']:+.2%}, {diff['high']:+.2%}]")
    fig.suptitle(f"one budget for all: {len(data.train_x):,} {data.name} images x {epochs} epochs, {len(numbers['seeds'])} seed(s)", fontsize=10)
    figure = save_figure(fig, ctx.figure_path("locality_at_a_fixed_budget"))
    verdict, reason = judge_c85(numbers)
    return Finding(numbers, [figure], verdict, reason)
