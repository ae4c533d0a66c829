"""C18: the degradation problem (성능 저하 문제), He, Zhang, Ren & Sun, "Deep Residual Learning for
Image Recognition", 2015, arXiv:1512.03385, figures 1 and 6.

Plain nets (the paper's CIFAR nets without shortcuts: 6n+2 layers, BatchNorm after every conv)
of growing depth and the same nets with identity shortcuts (option A) are trained with one
recipe on real images. The claim: the deeper plain net has *higher training error*, so the
problem is optimization, not overfitting; with shortcuts depth does not hurt.

Departures from the paper, for a CPU: Fashion-MNIST (1 channel, 28x28) instead of CIFAR-10,
half the width (8-16-32 channels, `width=0.5`), a 10k-image subset and a few epochs of
one-cycle SGD instead of 64k iterations. Training error is measured the paper's way at the end
(on the training images, the model in eval mode), beside the test error (to tell degradation
from overfitting).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import torch

from deepnotes.data.transforms import TensorBatches
from deepnotes.lab import Context, Finding, experiment
from deepnotes.lab.common import accuracy, lab_data, new_figure, rounded, save_figure, train_small
from deepnotes.models import create_model


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup: float = 0.1) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over the first `warmup` fraction of the steps, then cosine to zero (a plain
    net of 56 layers can blow up at full LR from the first step; the paper warms up ResNet-110)."""
    w = max(1, int(total_steps * warmup))

    def factor(step: int) -> float:
        if step < w:
            return (step + 1) / w
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - w) / max(1, total_steps - w))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def judge_c18(numbers: dict) -> tuple[str, str]:
    """Degradation: the deepest plain net's final training error is above the shallowest plain
    net's by at least `margin` (absolute) *and* by a quarter of it (relative); otherwise the claim
    does not hold. Residual nets: if the deepest one's training error is within the margin of the
    shallowest one's, the claim holds. If it is higher but still below the deepest plain net's by
    the margin, it holds with a correction (the shortcuts cure most of the degradation, not all of
    it, in this budget). A residual arm no better than the plain one (e.g. residual=False, the
    opposite evidence) means the shortcuts did not help: does not hold."""
    n = numbers
    depths = [str(d) for d in n["depths"]]
    lo, hi = depths[0], depths[-1]
    plain = {d: n["nets"][d]["plain"]["train_error"] for d in depths}
    res = {d: n["nets"][d]["residual"]["train_error"] for d in depths}
    test_plain = {d: n["nets"][d]["plain"]["test_error"] for d in depths}
    m = n["margin"]
    degrades = plain[hi] > plain[lo] + m and plain[hi] > 1.25 * plain[lo]
    arm = "residual" if n["residual"] else "'residual' arm (built without shortcuts)"
    table = (
        "training error plain " + ", ".join(f"{plain[d]:.2%}" for d in depths)
        + f"; {arm} " + ", ".join(f"{res[d]:.2%}" for d in depths)
        + f" at depths {', '.join(depths)} ({n['data']}, {n['n_train']} images, {n['epochs']} epochs)"
    )  # fmt: skip
    if not degrades:
        return "does not hold", table + f": the deeper plain net does not train worse (margin {m:.0%})"
    if res[hi] >= plain[hi] - m:
        return "does not hold", table + f": the deeper {arm} degrades as much as the plain one"
    overfit = test_plain[hi] - plain[hi] < test_plain[lo] - plain[lo]
    plain_says = (
        f": the {hi}-layer plain net fits its own training images worse than the {lo}-layer one "
        f"(test error {test_plain[lo]:.2%} -> {test_plain[hi]:.2%} rises with it"
        + (", with a smaller train-test gap: not overfitting" if overfit else "") + ")"
    )  # fmt: skip
    if res[hi] <= res[lo] + m:
        return "holds", table + plain_says + "; with shortcuts the deeper net trains as well or better"
    return "holds with a correction", table + plain_says + (
        f"; with shortcuts the {hi}-layer net is {100 * (plain[hi] - res[hi]):.1f} points better than the plain one but still "
        f"{100 * (res[hi] - res[lo]):.1f} points behind the {lo}-layer residual net after {n['epochs']} epochs: the shortcuts "
        "remove most of the degradation, and deeper nets need a longer schedule to pull ahead (the paper: 64k iterations)"
    )


@experiment("C18", quick_verdict="holds", opposite={"residual": False})
def run_c18(ctx: Context, residual: bool = True, depths: Sequence[int] | None = None, epochs: int | None = None,
            width: float = 0.5, lr: float = 0.1) -> Finding:  # fmt: skip
    """CIFAR-form nets of depth 6n+2 (resnet20/32/44/56 and their plain forms; quick: 8/20 on
    digits), one recipe: SGD momentum 0.9, Nesterov, weight decay 5e-4, batch 128, warm-up + cosine,
    the same seed per depth. residual=False builds the second arm without shortcuts too: the
    opposite evidence."""
    depths = tuple(depths or ctx.size((8, 20), (20, 32, 44, 56)))
    if any(d < 8 or (d - 2) % 6 for d in depths):
        raise ValueError(f"CIFAR-form depths are 6n + 2 with n >= 1 (8, 14, 20, 26, 32, ...), got {list(depths)}")
    epochs = int(epochs or ctx.size(3, 4))
    data = lab_data(ctx.quick, n_train=ctx.size(None, 10_000), n_test=ctx.size(None, 5_000), seed=ctx.seed)
    spec = data.spec()
    train_eval = TensorBatches(data.train_x, data.train_y, spec, 1000)
    batch = ctx.size(64, 128)
    nets: dict[str, dict] = {}
    for depth in depths:
        nets[str(depth)] = {}
        for arm, skip in (("plain", False), ("residual", residual)):
            torch.manual_seed(ctx.seed)
            n = (depth - 2) // 6  # resnet20 with n blocks per stage: any depth 6n + 2, not only the registered ones
            model = create_model("resnet20", layers=(n, n, n), in_chans=data.train_x.shape[1], num_classes=data.num_classes,
                                 residual=skip, width=width)  # fmt: skip
            opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
            steps = epochs * (len(data.train_x) // batch)
            t0 = time.perf_counter()
            hist = train_small(model, data, opt, epochs=epochs, batch_size=batch, seed=ctx.seed, scheduler=warmup_cosine(opt, steps))
            seconds = time.perf_counter() - t0
            finished = len(hist.epoch_train_loss) == epochs
            train_err = 1 - accuracy(model, train_eval) if finished else 1.0
            test_err = 1 - hist.epoch_test_accuracy[-1] if finished else 1.0
            nets[str(depth)][arm] = {
                "train_error": round(train_err, 4),
                "test_error": round(test_err, 4),
                "epoch_train_loss": rounded(hist.epoch_train_loss, 4),
                "step_loss": rounded(hist.step_loss[:: max(1, len(hist.step_loss) // 200)], 4),
                "diverged": not finished,
                "seconds": round(seconds, 1),
                "params": sum(p.numel() for p in model.parameters()),
            }
            ctx.log(f"  depth {depth} {arm:8s}: train error {train_err:.2%}, test error {test_err:.2%} ({seconds:.0f} s)")
    numbers = {
        "data": data.name,
        "n_train": len(data.train_x),
        "n_test": len(data.test_x),
        "epochs": epochs,
        "batch": batch,
        "width": width,
        "lr": lr,
        "residual": residual,
        "depths": list(depths),
        "margin": 0.01,
        "nets": nets,
        "measure": "train_error = error on the training images in eval mode after the last epoch",
    }

    fig, axes = new_figure(2, 1, size=(5.0, 3.8))
    a = axes[0, 0]
    for arm, color in (("plain", "C3"), ("residual", "C0")):
        label = arm if arm == "plain" or residual else "'residual' (no shortcuts)"
        a.plot(depths, [100 * nets[str(d)][arm]["train_error"] for d in depths], "o-", color=color, label=f"{label}: train")
        a.plot(depths, [100 * nets[str(d)][arm]["test_error"] for d in depths], "s--", color=color, alpha=0.6, label=f"{label}: test")
    a.set(title=f"error vs depth ({data.name}, {epochs} epochs)", xlabel="layers (6n + 2)", ylabel="error (%)", xticks=list(depths))
    a.legend(fontsize=7)
    a.grid(alpha=0.3)
    a = axes[0, 1]
    shades = np.linspace(0.35, 1.0, len(depths))
    for d, s in zip(depths, shades):
        for arm, color in (("plain", "C3"), ("residual", "C0")):
            loss = nets[str(d)][arm]["step_loss"]
            a.plot(np.linspace(0, epochs, len(loss)), loss, color=color, alpha=s, lw=1, label=f"{arm}-{d}")
    a.set(title="training loss (pale: shallow, dark: deep)", xlabel="epoch", ylabel="loss", yscale="log")
    a.legend(fontsize=6, ncol=2)
    a.grid(alpha=0.3, which="both")
    fig.suptitle("the degradation problem: training error against depth, plain vs residual (He et al. 2015, fig. 6)")
    figure = save_figure(fig, ctx.figure_path("error_vs_depth"))
    verdict, reason = judge_c18(numbers)
    return Finding(numbers, [figure], verdict, reason)
