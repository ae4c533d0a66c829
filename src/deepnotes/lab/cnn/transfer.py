"""C20: transfer learning (전이 학습): retraining only the classifier adapts a trained network to
new classes cheaply (Yosinski et al., "How transferable are features in deep neural networks?",
2014, arXiv:1411.1792; the feature-extractor recipe of the notes).

A CNN is trained on five classes of the data (Fashion-MNIST: T-shirt, trouser, pullover, dress,
coat). Then the *other* five classes (sandal, shirt, sneaker, bag, ankle boot), from a small
training set, are learned three ways with the same epochs and optimizer:

    head-only    the pretrained features frozen (weights and BatchNorm statistics), a new head
    fine-tune    the pretrained weights as the start, everything trained (the notes' "full")
    scratch      the same architecture from random initialization

Test accuracy on the new classes is recorded against cumulative training time (the clock runs
only during training steps). pretrained=False replaces the pretrained features with untrained
ones (the opposite evidence: a frozen random network is not a feature extractor).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from deepnotes.lab import Context, Finding, experiment
from deepnotes.lab.common import Data, lab_data, new_figure, rounded, save_figure, train_small
from deepnotes.models import create_model
from deepnotes.train.transfer import freeze

ARMS = ("head-only", "fine-tune", "scratch")


def class_subset(data: Data, classes: Sequence[int]) -> Data:
    """The images of `classes` only, relabelled 0..len(classes)-1 in the given order."""
    classes = [int(c) for c in classes]
    if not classes or any(c < 0 or c >= data.num_classes for c in classes) or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct labels in 0..{data.num_classes - 1}, got {classes}")
    lut = torch.full((data.num_classes,), -1, dtype=torch.int64)
    lut[torch.tensor(classes)] = torch.arange(len(classes))

    def pick(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = lut[y] >= 0
        return x[keep], lut[y[keep]]

    train_x, train_y = pick(data.train_x, data.train_y)
    test_x, test_y = pick(data.test_x, data.test_y)
    names = tuple(data.classes[c] for c in classes) if data.classes else ()
    return Data(f"{data.name}[{','.join(map(str, classes))}]", train_x, train_y, test_x, test_y, len(classes), names)


def first(data: Data, n: int, seed: int) -> Data:
    """A seeded random subset of n training images (the test set is kept whole)."""
    if n >= len(data.train_x):
        return data
    idx = torch.randperm(len(data.train_x), generator=torch.Generator().manual_seed(seed))[:n]
    return Data(data.name, data.train_x[idx], data.train_y[idx], data.test_x, data.test_y, data.num_classes, data.classes)


def timed_training(model, data: Data, spec, *, epochs: int, lr: float, batch: int, seed: int) -> dict:
    """SGD with Nesterov momentum and a cosine schedule over the trainable parameters; the test
    accuracy after every epoch against the seconds spent in training steps so far."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = epochs * math.ceil(len(data.train_x) / batch)  # every batch, the last one may be short
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    hist = train_small(model, data, opt, epochs=epochs, batch_size=batch, spec=spec, seed=seed, drop_last=False, scheduler=sched)
    return {
        "seconds": [round(s, 3) for s in hist.epoch_seconds],
        "test_accuracy": [round(a, 4) for a in hist.epoch_test_accuracy],
        "trainable_params": sum(p.numel() for p in params),
    }


def judge_c20(numbers: dict) -> tuple[str, str]:
    """Head-only training adapts when its final accuracy beats training the same net from scratch
    on the same small set, and is cheap when its time per epoch is at most 0.7x fine-tuning's
    (either failing: does not hold). Within 5 points of fine-tuning everything: holds; further
    behind: holds with a correction (cheap, but fine-tuning buys accuracy the frozen features lack)."""
    a = {arm: numbers["arms"][arm] for arm in ARMS}
    acc = {arm: v["test_accuracy"][-1] for arm, v in a.items()}
    per_epoch = {arm: v["seconds"][-1] / len(v["seconds"]) for arm, v in a.items()}
    speed = per_epoch["head-only"] / per_epoch["fine-tune"]
    head = (
        f"new classes {numbers['target_classes']} from {numbers['n_target_train']} images, {numbers['epochs']} epochs "
        f"({'features pretrained on ' + str(numbers['source_classes']) if numbers['pretrained'] else 'untrained features'}): "
        f"head-only {acc['head-only']:.2%} in {a['head-only']['seconds'][-1]:.1f} s "
        f"({a['head-only']['trainable_params']:,} trainable parameters), fine-tune {acc['fine-tune']:.2%} in "
        f"{a['fine-tune']['seconds'][-1]:.1f} s, scratch {acc['scratch']:.2%} in {a['scratch']['seconds'][-1]:.1f} s"
    )
    more = ""
    for n, final in sorted(numbers.get("by_n", {}).items(), key=lambda kv: int(kv[0]))[1:]:
        more += (f"; with {n} images: head-only {final['head-only']:.2%}, fine-tune {final['fine-tune']:.2%}, scratch "
                 f"{final['scratch']:.2%}" + (" (scratch catches up: the gain is a few-labels gain)"
                                             if final["scratch"] >= final["head-only"] else ""))  # fmt: skip
    head += more
    if acc["head-only"] <= acc["scratch"]:
        return "does not hold", head + ": the frozen features do no better than training from scratch"
    if speed > 0.7:
        return "does not hold", head + f": head-only epochs take {speed:.2f}x as long as fine-tuning's, not cheap"
    cheap = f"the new head alone adapts the network, at {speed:.2f}x the time per epoch of fine-tuning"
    if acc["head-only"] < acc["fine-tune"] - 0.05:
        return "holds with a correction", head + (
            f": {cheap}, but fine-tuning every layer gains {100 * (acc['fine-tune'] - acc['head-only']):.1f} points: "
            "features learned on other classes are only partly right for the new ones"
        )
    return "holds", head + f": {cheap}"


@experiment("C20", quick_verdict="holds with a correction", opposite={"pretrained": False})
def run_c20(ctx: Context, pretrained: bool = True, model: str = "vgg_small", n_targets: Sequence[int] | None = None,
            epochs: int | None = None, lr: float = 0.05) -> Finding:  # fmt: skip
    """Pretrain `model` on classes 0-4 (all their training images), then learn classes 5-9 three
    ways, the same epochs and LR, from few images (the verdict: 200 of Fashion-MNIST; quick: 100
    digits) and from more (1,000; quick: 600), to show where training from scratch catches up."""
    source_classes, target_classes = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)
    data = lab_data(ctx.quick, seed=ctx.seed)
    source = class_subset(data, source_classes)
    n_targets = sorted(int(n) for n in (n_targets or ctx.size((100, 600), (200, 1_000))))
    pool = class_subset(data, target_classes)
    spec = data.spec()  # one normalization for both tasks: the pretrained features expect it
    epochs = int(epochs or ctx.size(8, 6))
    batch = ctx.size(64, 128)
    in_chans = data.train_x.shape[1]

    torch.manual_seed(ctx.seed)
    base = create_model(model, in_chans=in_chans, num_classes=len(source_classes))
    if pretrained:
        pre = timed_training(base, source, spec, epochs=ctx.size(4, 3), lr=lr * 2, batch=batch, seed=ctx.seed)
        ctx.log(f"  pretrained {model} on {source.name}: {pre['test_accuracy'][-1]:.2%} in {pre['seconds'][-1]:.1f} s")
    else:
        pre = None
    features = {k: v for k, v in base.state_dict().items() if not k.startswith("head.")}

    runs: dict[int, dict] = {}
    for n in n_targets:
        target = first(pool, n, ctx.seed)
        runs[n] = {}
        for arm in ARMS:
            torch.manual_seed(ctx.seed + 1)  # the same new head in every arm
            net = create_model(model, in_chans=in_chans, num_classes=len(target_classes))
            if arm != "scratch":
                missing, unexpected = net.load_state_dict(features, strict=False)
                assert not unexpected and all(k.startswith("head.") for k in missing), (missing, unexpected)
            if arm == "head-only":
                freeze(net, [name for name, _ in net.named_children() if name != "head"])
            runs[n][arm] = timed_training(net, target, spec, epochs=epochs, lr=lr, batch=batch, seed=ctx.seed)
            ctx.log(f"  {len(target.train_x)} images, {arm:9s}: {runs[n][arm]['test_accuracy'][-1]:.2%} "
                    f"after {runs[n][arm]['seconds'][-1]:.1f} s")  # fmt: skip
    few = n_targets[0]
    arms, target = runs[few], first(pool, few, ctx.seed)
    numbers = {
        "data": data.name,
        "model": model,
        "pretrained": pretrained,
        "source_classes": list(source.classes) or list(source_classes),
        "target_classes": list(target.classes) or list(target_classes),
        "n_source_train": len(source.train_x),
        "n_target_train": len(target.train_x),
        "n_target_test": len(target.test_x),
        "epochs": epochs,
        "lr": lr,
        "pretraining": pre,
        "arms": arms,
        "by_n": {str(len(first(pool, n, ctx.seed).train_x)): {arm: runs[n][arm]["test_accuracy"][-1] for arm in ARMS}
                 for n in n_targets},  # fmt: skip
        "measure": "test accuracy on the new classes after each epoch, against seconds spent in training steps",
    }

    fig, axes = new_figure(3, 1, size=(4.6, 3.8))
    a = axes[0, 0]
    for arm, color in zip(ARMS, ("C2", "C0", "C7")):
        v = arms[arm]
        a.plot(v["seconds"], [100 * x for x in v["test_accuracy"]], "o-", color=color, label=arm)
    a.set(title=f"{len(target.train_x)} images: accuracy vs training time", xlabel="training seconds", ylabel="test accuracy (%)")
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    a = axes[0, 1]
    sizes = list(numbers["by_n"])
    for i, (arm, color) in enumerate(zip(ARMS, ("C2", "C0", "C7"))):
        a.bar(np.arange(len(sizes)) + (i - 1) * 0.27, [100 * numbers["by_n"][k][arm] for k in sizes], 0.27, color=color, label=arm)
    a.set(title="final accuracy by training-set size", xticks=range(len(sizes)), xticklabels=[f"{k} images" for k in sizes],
          ylabel="test accuracy (%)", ylim=(0, 100))  # fmt: skip
    a.legend(fontsize=7)
    a = axes[0, 2]
    a.bar(ARMS, [arms[arm]["seconds"][-1] / epochs for arm in ARMS], color=("C2", "C0", "C7"))
    for i, arm in enumerate(ARMS):
        a.annotate(f"{arms[arm]['trainable_params']:,}\ntrainable", (i, 0), xytext=(0, 3), textcoords="offset points",
                   ha="center", fontsize=7)  # fmt: skip
    a.set(title="seconds per epoch", ylabel="s")
    fig.suptitle(f"transfer {'from classes 0-4' if pretrained else '(features untrained)'} to classes 5-9 of {data.name} ({model})")
    figure = save_figure(fig, ctx.figure_path("transfer"))
    numbers["arms"] = {k: {**v, "test_accuracy": rounded(v["test_accuracy"])} for k, v in arms.items()}
    verdict, reason = judge_c20(numbers)
    return Finding(numbers, [figure], verdict, reason)

