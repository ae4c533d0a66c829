"""C21, C22, C23, C24, C47: looking inside and breaking CNNs (데이터 증강, 선형 분류기 템플릿,
클래스 활성화 맵, 적대적 공격, 풀링).

C21  The same small CNN trained with and without augmentation (random shifts and rotations), tested
     on the plain test set and on copies shifted / rotated by growing amounts.
C22  A linear classifier (mlp with hidden=()) on the images: its weight rows, as images, against
     the class-mean images (correlation of every template with every class mean).
C23  CAM exists only for feature map -> global average pooling -> one linear layer; for such
     nets Grad-CAM's weights are CAM's divided by h*w (Selvaraju et al. 2017, section 3.1),
     checked on a trained small CNN and an untrained ResNet-20; a flatten + linear head has no CAM,
     and there Grad-CAM is not the map that adds up to the score.
C24  FGSM and PGD (L-inf) against a trained CNN: accuracy against eps, random-sign noise of the
     same size as the control, and a PGD-adversarially trained copy (Madry et al. 2017).
C47  Global average pooling is blind to where things are on the last feature map (exact, by
     permuting the map's positions); on images whose tiles are scrambled, a GAP network against
     the same network with a flatten + linear head (which keeps positions).

The small CNN everywhere is `vgg_small` with fewer stages (conv-BN-ReLU, max-pool between stages,
no pool after the last): 16-32 channels on digits (8 -> 4 -> 4 map), 16-32-64 on Fashion-MNIST
(28 -> 14 -> 7 -> 7). Training: Adam with a cosine schedule, seeded batch order (train, through common.train_small).
Pixel units: eps and pixel statistics are on the [0, 1] scale (uint8 / 255).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.data.transforms import random_rotate, random_translate
from deepnotes.errors import UserError
from deepnotes.explain.attack import accuracy_vs_eps, adversarial_batch, pgd
from deepnotes.explain.cam import compute_cam, overlay
from deepnotes.explain.templates import class_templates
from deepnotes.lab import Context, Finding, experiment
from deepnotes.lab.common import Batches, Data, lab_data, new_figure, rounded, save_figure, train_small
from deepnotes.models import create_model

# ============================================================================ shared pieces


def small_cnn(data: Data, head: str = "gap", stages: Sequence[Sequence[int]] | None = None) -> nn.Module:
    """vgg_small with 2 stages (images under 16 px) or 3, and either its own head (global average
    pooling + linear, "gap") or a flatten + linear head over the whole last map ("flatten")."""
    if head not in ("gap", "flatten"):
        raise ValueError(f"head is 'gap' or 'flatten', got {head!r}")
    c, h, w = data.train_x.shape[1:]
    if stages is None:
        stages = ((16,), (32,)) if min(h, w) < 16 else ((16,), (32,), (64,))
    model = create_model("vgg_small", in_chans=c, num_classes=data.num_classes, stages=[list(s) for s in stages])
    if head == "flatten":
        with torch.no_grad():
            model.eval()
            k, fh, fw = model.forward_features(torch.zeros(1, c, h, w)).shape[1:]
            model.train()
        model.pool = nn.Identity()  # forward_head: pool(x).flatten(1) -> head
        model.head = nn.Linear(k * fh * fw, data.num_classes)
    return model


def train(
    model: nn.Module,
    data: Data,
    *,
    epochs: int,
    lr: float = 3e-3,
    batch_size: int = 64,
    seed: int = 0,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    adversarial: dict | None = None,
    labels: torch.Tensor | None = None,
) -> list[float]:
    """The chapter's recipe, through train_small: Adam + cosine schedule on data.train_x (uint8),
    normalized with the training statistics, batches from one seeded random stream (Batches).

    augment(uint8 batch, generator) -> uint8 batch, applied before normalization. adversarial:
    kwargs of explain.attack.adversarial_batch (method, eps, steps, ...): every batch is replaced
    by its adversarial version (Madry et al.). labels: train on these instead of data.train_y.
    Returns the mean training loss per epoch; leaves the model in eval mode."""
    spec = data.spec()
    per_epoch = max(1, len(data.train_x) // batch_size)
    opt = torch.optim.Adam(model.parameters(), lr)
    total = epochs * per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))

    def attack(x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return adversarial_batch(model, x, y, mean=spec.mean, std=spec.std, generator=g, **adversarial)

    batches = Batches(data.train_x, data.train_y if labels is None else labels, batch_size, spec=spec, seed=seed, augment=augment,
                      attack=attack if adversarial is not None else None)  # fmt: skip
    hist = train_small(model, None, opt, epochs=epochs, batches=batches, scheduler=sched, evaluate=False)
    model.eval()
    steps = hist.step_loss
    return [sum(steps[i : i + per_epoch]) / per_epoch for i in range(0, len(steps), per_epoch)]


@torch.no_grad()
def logits_of(model: nn.Module, x: torch.Tensor, data: Data, batch: int = 1000) -> torch.Tensor:
    """Logits for uint8 images, normalized as in training, in eval mode."""
    spec = data.spec()
    model.eval()
    return torch.cat([model(spec.normalize(x[i : i + batch])) for i in range(0, len(x), batch)])


def accuracy_on(model: nn.Module, x: torch.Tensor, y: torch.Tensor, data: Data) -> float:
    return float((logits_of(model, x, data).argmax(1) == y).float().mean())


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


# ============================================================================ C21


def shifted(x: torch.Tensor, pixels: int, seed: int) -> torch.Tensor:
    """Every image moved by `pixels` up, down, left or right (a seeded random one of the four), zero-filled."""
    if pixels == 0:
        return x
    g = torch.Generator().manual_seed(seed)
    dirs = torch.tensor([[-1, 0], [1, 0], [0, -1], [0, 1]])
    shifts = dirs[torch.randint(0, 4, (len(x),), generator=g)] * pixels
    return random_translate(x, shifts, pixels)


def rotated(x: torch.Tensor, degrees: float, seed: int) -> torch.Tensor:
    """Every image rotated by +degrees or -degrees (seeded random sign) about its centre."""
    if degrees == 0:
        return x
    g = torch.Generator().manual_seed(seed)
    sign = torch.randint(0, 2, (len(x),), generator=g) * 2 - 1
    return random_rotate(x, sign * float(degrees))


def shift_rotate_augment(max_shift: int, max_degrees: float) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """Training augmentation: a uniform integer shift in [-max_shift, max_shift] per axis and a
    uniform rotation in [-max_degrees, max_degrees], per image."""

    def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if max_shift > 0:
            x = random_translate(x, torch.randint(-max_shift, max_shift + 1, (len(x), 2), generator=g), max_shift)
        if max_degrees > 0:
            x = random_rotate(x, (2 * torch.rand(len(x), generator=g) - 1) * max_degrees)
        return x

    return augment


def judge_c21(numbers: dict) -> tuple[str, str]:
    """Holds when the augmented net is better on the shifted/rotated test sets by at least `margin`
    (mean over the transformed sets, absolute accuracy) and costs at most `tolerance` on the plain
    test set; better on the transformed sets but costing more on the plain one: holds with a
    correction; not better by the margin: does not hold."""
    n = numbers
    base, aug = n["arms"]["plain"], n["arms"]["augmented"]
    sets = [k for k in base["accuracy"] if k != "plain"]
    gains = {k: aug["accuracy"][k] - base["accuracy"][k] for k in sets}
    gain = sum(gains.values()) / max(1, len(sets))
    cost = base["accuracy"]["plain"] - aug["accuracy"]["plain"]
    worst = max(sets, key=lambda k: gains[k]) if sets else None
    head = (
        f"{n['data']}, {n['n_train']} training images, {n['epochs']} epochs; plain test set: no augmentation "
        f"{_pct(base['accuracy']['plain'])}, augmented ({n['augmentation']}) {_pct(aug['accuracy']['plain'])}; "
        f"on the shifted/rotated sets the augmented net gains {100 * gain:+.1f} points on average"
        + (f" (most on {worst}: {_pct(base['accuracy'][worst])} -> {_pct(aug['accuracy'][worst])})" if worst else "")
    )
    if gain < n["margin"]:
        return "does not hold", head + f": less than the {100 * n['margin']:.0f}-point margin"
    if cost > n["tolerance"]:
        return "holds with a correction", head + (
            f", but it loses {100 * cost:.1f} points on the plain test set (more than {100 * n['tolerance']:.0f}): "
            "robustness to poses bought with accuracy on ordinary images at this training budget"
        )
    return "holds", head + f", at a cost of {100 * cost:+.1f} points on the plain test set"


@experiment("C21", quick_verdict="holds with a correction", opposite={"augment": False, "epochs": 3})
def run_c21(
    ctx: Context,
    augment: bool = True,
    max_shift: int | None = None,
    max_degrees: float = 30.0,
    shifts: Sequence[int] | None = None,
    angles: Sequence[float] = (15.0, 30.0, 45.0),
    epochs: int | None = None,
    n_train: int | None = None,
    margin: float = 0.03,
    tolerance: float = 0.02,
) -> Finding:
    """Two copies of the small CNN (same initialization, same batches): one trained on the plain
    images, one with random shifts (up to max_shift px per axis; default 1/7 of the side, 4 px on
    28x28, 1 px on 8x8) and rotations (up to max_degrees). Both tested on the plain test set and on
    test copies shifted by each of `shifts` pixels (one of four directions; default 1, 2 on 8x8 and
    2, 4, 6 on 28x28) and rotated by +-each of `angles`. augment=False trains the second copy
    without augmentation too (the opposite evidence)."""
    data = lab_data(ctx.quick, n_train=n_train or ctx.size(None, 20000), n_test=ctx.size(None, 5000), seed=ctx.seed)
    side = int(data.train_x.shape[-1])
    max_shift = max(1, round(side / 7)) if max_shift is None else int(max_shift)
    shifts = tuple(shifts) if shifts is not None else ((1, 2) if side < 16 else (2, 4, 6))
    epochs = epochs or ctx.size(12, 5)
    test_sets = {"plain": data.test_x}
    for s in shifts:
        test_sets[f"shift {s}px"] = shifted(data.test_x, int(s), ctx.seed + 1)
    for a in angles:
        test_sets[f"rotate {a:g}°"] = rotated(data.test_x, float(a), ctx.seed + 2)
    arms = {}
    for arm, aug in (("plain", None), ("augmented", shift_rotate_augment(max_shift, max_degrees) if augment else None)):
        torch.manual_seed(ctx.seed)
        model = small_cnn(data)
        losses = train(model, data, epochs=epochs, seed=ctx.seed, augment=aug, lr=1e-2 if ctx.quick else 3e-3)
        arms[arm] = {
            "final_train_loss": rounded(losses[-1]),
            "accuracy": {k: rounded(accuracy_on(model, x, data.test_y, data)) for k, x in test_sets.items()},
        }
        ctx.log(f"{arm}: " + ", ".join(f"{k} {_pct(v)}" for k, v in arms[arm]["accuracy"].items()))
    numbers = {
        "data": data.name,
        "n_train": len(data.train_x),
        "n_test": len(data.test_x),
        "epochs": epochs,
        "augment": augment,
        "augmentation": f"shift <= {max_shift}px, rotation <= {max_degrees:g}°" if augment else "none",
        "shifts_px": list(shifts),
        "angles_deg": list(angles),
        "margin": margin,
        "tolerance": tolerance,
        "arms": arms,
    }

    fig, axes = new_figure(2, 1, size=(4.6, 3.6))
    for a, (kind, xs, keys) in zip(axes[0], (("shift (px)", [0, *shifts], ["plain"] + [f"shift {s}px" for s in shifts]),
                                             ("rotation (degrees)", [0, *angles], ["plain"] + [f"rotate {x:g}°" for x in angles]))):  # fmt: skip
        for arm, color in (("plain", "C3"), ("augmented", "C0")):
            label = "trained without augmentation" if arm == "plain" else ("trained with shifts + rotations" if augment else "second copy, no augmentation")
            a.plot(xs, [100 * arms[arm]["accuracy"][k] for k in keys], "o-", color=color, label=label)
        a.set(xlabel=f"test images moved by: {kind}", ylabel="test accuracy (%)", title=f"{data.name}: accuracy vs {kind.split()[0]}")
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    curves = save_figure(fig, ctx.figure_path("accuracy_vs_pose"))

    keys = list(test_sets)
    fig, axes = new_figure(len(keys), 2, size=(1.3, 1.4))
    for j, k in enumerate(keys):
        for i in range(2):
            a = axes[i, j]
            a.imshow(test_sets[k][i, 0].numpy(), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            a.set_xticks([])
            a.set_yticks([])
        axes[0, j].set_title(k, fontsize=7)
    examples = save_figure(fig, ctx.figure_path("test_sets"))
    verdict, reason = judge_c21(numbers)
    return Finding(numbers, [curves, examples], verdict, reason)


# ============================================================================ C22


def template_correlations(templates: torch.Tensor, means: torch.Tensor) -> np.ndarray:
    """R[c, c'] = Pearson correlation over pixels of template c and class mean c', both taken
    relative to their average over the classes (the part that tells classes apart: softmax does
    not change when the same image is added to every template, and every class mean shares the
    average image)."""
    t = templates.flatten(1).double()
    m = means.flatten(1).double()
    t = t - t.mean(0, keepdim=True)
    m = m - m.mean(0, keepdim=True)
    t = t - t.mean(1, keepdim=True)
    m = m - m.mean(1, keepdim=True)
    t = t / t.norm(dim=1, keepdim=True).clamp_min(1e-12)
    m = m / m.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (t @ m.T).numpy()


def judge_c22(numbers: dict) -> tuple[str, str]:
    """From the template-vs-class-mean correlation matrix R (rows: templates): holds when every
    template correlates best with its own class mean and the mean own-class correlation is above
    the mean other-class one by at least 0.3; with at least 80% of the classes matched and a gap
    of at least 0.15: holds with a correction (mostly templates); else does not hold."""
    r = np.asarray(numbers["correlation"], dtype=float)
    k = len(r)
    own = int((r.argmax(1) == np.arange(k)).sum())
    diag = float(np.diag(r).mean())
    off = float((r.sum() - np.trace(r)) / max(1, k * (k - 1)))
    head = (
        f"{numbers['data']}, linear classifier ({numbers['how']}, test accuracy {_pct(numbers['test_accuracy'])}): "
        f"{own}/{k} templates correlate best with their own class mean; mean correlation with the own class "
        f"{diag:.2f}, with the other classes {off:.2f}"
    )
    if own == k and diag - off >= 0.3:
        return "holds", head + (
            ": each class's weights are a picture of that class, as it differs from the average image"
            + (" (a noisy one: the weights also cancel pixels that vary together, so r stays well below 1)" if diag < 0.7 else "")
        )
    if own >= 0.8 * k and diag - off >= 0.15:
        return "holds with a correction", head + (
            ": most templates resemble their classes, but not all, and only loosely: a template also subtracts the "
            "classes it must be told apart from"
        )
    return "does not hold", head + ": the weight images do not look like their classes"


@experiment("C22", quick_verdict="holds", opposite={"shuffle_labels": True})
def run_c22(ctx: Context, shuffle_labels: bool = False, untrained: bool = False, epochs: int | None = None, lr: float = 1e-3) -> Finding:
    """mlp with hidden=() (one Linear layer on the flattened image) trained with Adam on the lab
    data (digits quick, all of Fashion-MNIST full); templates = weights / std (weights on [0, 1]
    pixels, explain.templates). Compared with the class means of the training images.
    shuffle_labels=True trains on permuted labels, untrained=True skips training (opposite evidence)."""
    data = lab_data(ctx.quick, seed=ctx.seed)
    epochs = epochs or ctx.size(20, 5)
    c, h, w = data.train_x.shape[1:]
    torch.manual_seed(ctx.seed)
    model = create_model("mlp", in_chans=c, num_classes=data.num_classes, img_size=[h, w], hidden=[])
    labels = data.train_y[torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(ctx.seed + 7))] if shuffle_labels else None
    if not untrained:
        train(model, data, epochs=epochs, lr=lr, batch_size=128, seed=ctx.seed, labels=labels)
    spec = data.spec()
    templates = class_templates(model, (c, h, w), std=spec.std)
    means = torch.stack([data.train_x[data.train_y == k].float().mean(0) / 255 for k in range(data.num_classes)])
    r = template_correlations(templates, means)
    how = "untrained" if untrained else f"{epochs} epochs" + (" on shuffled labels" if shuffle_labels else "")
    numbers = {
        "data": data.name,
        "n_train": len(data.train_x),
        "how": how,
        "shuffle_labels": shuffle_labels,
        "untrained": untrained,
        "test_accuracy": rounded(accuracy_on(model, data.test_x, data.test_y, data)),
        "classes": list(data.classes),
        "correlation": [rounded([float(v) for v in row], 3) for row in r],
        "own_class_correlation": rounded([float(v) for v in np.diag(r)], 3),
        "best_match": [int(i) for i in r.argmax(1)],
    }
    names = list(data.classes) or [str(k) for k in range(data.num_classes)]
    k = data.num_classes
    fig, axes = new_figure(k, 2, size=(1.35, 1.55))
    centred = means - means.mean(0, keepdim=True)
    tmpl = templates - templates.mean(0, keepdim=True)
    for j in range(k):
        for i, (img, label) in enumerate(((tmpl[j, 0], "template"), (centred[j, 0], "class mean"))):
            a = axes[i, j]
            m = float(img.abs().max()) or 1.0
            a.imshow(img.numpy(), cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
            a.set_xticks([])
            a.set_yticks([])
            if j == 0:
                a.set_ylabel(label, fontsize=8)
        axes[0, j].set_title(f"{names[j]}\nr = {r[j, j]:.2f}", fontsize=7)
    fig.suptitle(f"linear classifier weights ({how}) vs class means minus the average image (red +, blue -)", fontsize=9)
    pictures = save_figure(fig, ctx.figure_path("templates_vs_means"))
    fig, axes = new_figure(1, 1, size=(5.2, 4.4))
    a = axes[0, 0]
    im = a.imshow(r, cmap="RdBu_r", vmin=-1, vmax=1)
    a.set(xticks=range(k), yticks=range(k), xlabel="class mean", ylabel="template", title="correlation (centred over classes)")
    a.set_xticklabels(names, rotation=90, fontsize=7)
    a.set_yticklabels(names, fontsize=7)
    fig.colorbar(im, ax=a, fraction=0.046)
    matrix = save_figure(fig, ctx.figure_path("correlation"))
    verdict, reason = judge_c22(numbers)
    return Finding(numbers, [pictures, matrix], verdict, reason)


# ============================================================================ C23


def contribution_map(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, h, w): sum_k A_k,ij * dy^c/dA_k,ij at the last feature map A = forward_features(x).

    For a head that is linear in A (GAP + linear, or flatten + linear) this is exact: the map adds
    up to y^c - b_c, so it says how much each position gives to the score. For GAP + linear it is
    CAM's M_c divided by h*w."""
    model.eval()
    with torch.enable_grad():
        a = model.forward_features(x).detach().requires_grad_(True)
        y = model.forward_head(a)
        (g,) = torch.autograd.grad(y.gather(1, target[:, None]).sum(), a)
    return (g * a).sum(1).detach()


def cam_relation(model: nn.Module, x: torch.Tensor, name: str) -> dict:
    """Grad-CAM against CAM (when CAM exists) and against the exact contribution map."""
    gc = compute_cam(model, x, "gradcam", model_name=name)
    c = contribution_map(model, x, gc.target)
    z = c.shape[-2] * c.shape[-1]
    scale = float(c.abs().max()) or 1.0
    row = {
        "layer": gc.layer,
        "map": f"{c.shape[-2]}x{c.shape[-1]}",
        "gradcam_vs_relu_contribution_rel_error": float(f"{float((gc.raw - c.clamp_min(0)).abs().max()) / scale:.3g}"),
        "gradcam_contribution_correlation": rounded(_mean_corr(gc.raw, c.clamp_min(0)), 4),
    }
    try:
        cam = compute_cam(model, x, "cam", target=gc.target, model_name=name)
    except UserError as e:
        row |= {"cam_defined": False, "cam_error": str(e)[:200]}
        return row
    w_scale = float(cam.weights.abs().max()) or 1.0
    row |= {
        "cam_defined": True,
        "hw": z,
        # Grad-CAM's alpha_k = w_k^c / (h*w): one positive factor for every channel and image
        "weight_rel_error": float(f"{float((gc.weights * z - cam.weights).abs().max()) / w_scale:.3g}"),
        "fitted_scale": float(f"{float((gc.weights * cam.weights).sum() / (cam.weights**2).sum()):.6g}"),
        "expected_scale": float(f"{1 / z:.6g}"),
        # Grad-CAM's map = ReLU(M_c) / (h*w) (Grad-CAM's ReLU; CAM keeps the negative part)
        "map_rel_error": float(f"{float((gc.raw - cam.raw.clamp_min(0) / z).abs().max()) / (float(cam.raw.abs().max() / z) or 1.0):.3g}"),
        "cam_is_contribution_times_hw_rel_error": float(f"{float((cam.raw / z - c).abs().max()) / scale:.3g}"),
        "images_with_negative_cam": rounded(float((cam.raw.flatten(1).min(1).values < 0).float().mean()), 3),
    }
    return row


def _mean_corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten(1).double(), b.flatten(1).double()
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    den = a.norm(dim=1) * b.norm(dim=1)
    ok = den > 0
    return float(((a * b).sum(1)[ok] / den[ok]).mean()) if bool(ok.any()) else 0.0


def judge_c23(numbers: dict) -> tuple[str, str]:
    """Holds when (1) every model under test (GAP + linear head) has a CAM, Grad-CAM's channel
    weights are CAM's times one positive factor equal to 1/(h*w) (relative error <= 1e-4, float32)
    and Grad-CAM's map is ReLU(CAM) / (h*w) to the same tolerance, and (2) the control (flatten +
    linear head) has no CAM. Either failing: does not hold."""
    tol = 1e-4
    models, ctrl = numbers["models"], numbers["control"]
    bad = [m for m, r in models.items() if not r["cam_defined"]]
    if bad:
        return "does not hold", (
            f"{', '.join(bad)} ({numbers['head']} head) has no CAM: CAM needs global average pooling then one linear layer, "
            f"so there is nothing for Grad-CAM to equal (Grad-CAM vs the exact contribution map: relative error "
            + ", ".join(f"{models[m]['gradcam_vs_relu_contribution_rel_error']:.2g}" for m in bad) + ")"
        )
    off = [m for m, r in models.items() if r["weight_rel_error"] > tol or r["map_rel_error"] > tol]
    detail = "; ".join(
        f"{m} ({r['map']} map): alpha*h*w vs w error {r['weight_rel_error']:.1e}, fitted scale {r['fitted_scale']:.4g} "
        f"vs 1/(h*w) = {r['expected_scale']:.4g}, map error {r['map_rel_error']:.1e}"
        for m, r in models.items()
    )
    if off:
        return "does not hold", detail + f": Grad-CAM differs from CAM beyond {tol:g} on {', '.join(off)}"
    if ctrl["cam_defined"]:
        return "does not hold", detail + "; but the flatten + linear control also got a CAM, so CAM did not need GAP + FC"
    neg = max(r["images_with_negative_cam"] for r in models.values())
    return "holds", (
        detail + f"; so Grad-CAM = ReLU(CAM) / (h*w), a positive scale (CAM has negative regions in up to {neg:.0%} of "
        f"the images, which Grad-CAM's ReLU zeroes). The flatten + linear control has no CAM, and its Grad-CAM is "
        f"not the map that adds up to the score (relative error {ctrl['gradcam_vs_relu_contribution_rel_error']:.2g})"
    )


@experiment("C23", quick_verdict="holds", opposite={"head": "flatten"})
def run_c23(ctx: Context, head: str = "gap", n_images: int | None = None, epochs: int | None = None) -> Finding:
    """The small CNN (trained briefly: quick 3 epochs on digits, full 2 epochs on 10k Fashion-MNIST
    images) and an untrained ResNet-20 (the identity is algebra: it needs no training), both with
    `head` ("gap": their own GAP + linear head; "flatten": flatten + linear, the opposite evidence),
    and a control with a flatten + linear head. CAM and Grad-CAM for the predicted class at the
    default layer (the last conv stage) of n_images test images."""
    data = lab_data(ctx.quick, n_train=ctx.size(None, 10000), n_test=ctx.size(None, 1000), seed=ctx.seed)
    epochs = epochs or ctx.size(3, 2)
    n_images = n_images or ctx.size(64, 256)
    x = data.spec().normalize(data.test_x[:n_images])
    torch.manual_seed(ctx.seed)
    cnn = small_cnn(data, head=head)
    train(cnn, data, epochs=epochs, seed=ctx.seed, lr=1e-2 if ctx.quick else 3e-3)
    torch.manual_seed(ctx.seed)
    resnet = create_model("resnet20", in_chans=data.train_x.shape[1], num_classes=data.num_classes)
    if head == "flatten":
        with torch.no_grad():
            resnet.eval()
            k, fh, fw = resnet.forward_features(x[:1]).shape[1:]
        resnet.pool, resnet.head = nn.Identity(), nn.Linear(k * fh * fw, data.num_classes)
    resnet.eval()
    torch.manual_seed(ctx.seed)
    control = small_cnn(data, head="flatten")
    train(control, data, epochs=epochs, seed=ctx.seed, lr=1e-2 if ctx.quick else 3e-3)
    models = {"small_cnn": cam_relation(cnn, x, "small_cnn"), "resnet20": cam_relation(resnet, x, "resnet20 (untrained)")}
    ctrl = cam_relation(control, x, "small_cnn with a flatten head")
    numbers = {
        "data": data.name,
        "head": head,
        "n_images": len(x),
        "small_cnn_epochs": epochs,
        "small_cnn_test_accuracy": rounded(accuracy_on(cnn, data.test_x, data.test_y, data)),
        "control_test_accuracy": rounded(accuracy_on(control, data.test_x, data.test_y, data)),
        "resnet20": "untrained (the identity holds for any weights)",
        "models": models,
        "control": ctrl,
    }

    show = min(4, len(x))
    images = data.test_x[:show]
    gc = compute_cam(cnn, x[:show], "gradcam")
    rows = [("Grad-CAM", gc.heatmap)]
    try:
        cam = compute_cam(cnn, x[:show], "cam", target=gc.target)
        rows.insert(0, ("CAM", cam.heatmap))
        rows.append(("ReLU(CAM) / hw", _norm01(F.interpolate(cam.raw.clamp_min(0)[:, None] / models["small_cnn"]["hw"], size=x.shape[-2:],
                                                              mode="bilinear", align_corners=False)[:, 0])))  # fmt: skip
    except UserError:
        pass
    cg = compute_cam(control, x[:show], "gradcam")
    contrib = contribution_map(control, x[:show], cg.target).clamp_min(0)
    rows += [("control: Grad-CAM", cg.heatmap),
             ("control: contribution", _norm01(F.interpolate(contrib[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]))]  # fmt: skip
    fig, axes = new_figure(len(rows) + 1, show, size=(1.7, 1.8))
    for i in range(show):
        axes[i, 0].imshow(images[i, 0].numpy(), cmap="gray", interpolation="nearest")
        axes[i, 0].set_title("image" if i == 0 else "", fontsize=8)
        for j, (label, heat) in enumerate(rows, start=1):
            axes[i, j].imshow(overlay(images[i], heat[i]), interpolation="nearest")
            if i == 0:
                axes[i, j].set_title(label, fontsize=8)
    for a in axes.flat:
        a.set_xticks([])
        a.set_yticks([])
    fig.suptitle(f"small CNN ({head} head) and a flatten-head control, {data.name}", fontsize=9)
    maps = save_figure(fig, ctx.figure_path("cam_vs_gradcam"))
    verdict, reason = judge_c23(numbers)
    return Finding(numbers, [maps], verdict, reason)


def _norm01(m: torch.Tensor) -> torch.Tensor:
    flat = m.flatten(1)
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(1e-12)).view_as(m)


# ============================================================================ C24


def noise_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps_list: Sequence[float], data: Data, seed: int) -> list[float]:
    """Accuracy under random-sign noise of the same L-inf size (x + eps * (+-1), clipped): the
    control that tells a crafted perturbation from any perturbation of that size."""
    spec = data.spec()
    p = x.float() / 255
    sign = torch.randint(0, 2, p.shape, generator=torch.Generator().manual_seed(seed)).float() * 2 - 1
    out = []
    with torch.no_grad():
        model.eval()
        for e in eps_list:
            z = ((p + e * sign).clamp(0, 1) - torch.tensor(spec.mean).view(1, -1, 1, 1)) / torch.tensor(spec.std).view(1, -1, 1, 1)
            out.append(float((model(z).argmax(1) == y).float().mean()))
    return out


def judge_c24(numbers: dict) -> tuple[str, str]:
    """For the normally trained net, at the largest eps <= eps_small: the claim holds when PGD
    brings accuracy below half the clean accuracy while random-sign noise of the same size keeps
    it above half (so it is the crafting, not the size), and PGD is never weaker than FGSM by
    more than 2 points. Adversarial training (Madry et al.) then counts as helping when it raises
    PGD accuracy at its training eps by at least 10 points; if it does not: holds with a
    correction. Not fooled: does not hold."""
    n = numbers
    std = n["models"]["standard"]
    eps = [float(e) for e in n["eps"]]
    small = [i for i, e in enumerate(eps) if 0 < e <= n["eps_small"] + 1e-12]
    clean = std["fgsm"][0] if eps[0] == 0 else max(std["fgsm"][0], std["pgd"][0])
    if not small:
        return "does not hold", f"no eps in (0, {n['eps_small']:g}] was tried, so nothing small was crafted"
    i = small[-1]
    e = eps[i]
    pgd_acc, fgsm_acc, noise = std["pgd"][i], std["fgsm"][i], std["noise"][i]
    half = next((eps[j] for j in range(len(eps)) if std["pgd"][j] < clean / 2), None)
    head = (
        f"{n['data']} small CNN, clean accuracy {_pct(clean)}; at eps {e:.3g} ({e * 255:.3g}/255): FGSM {_pct(fgsm_acc)}, "
        f"PGD-{n['pgd_steps']} {_pct(pgd_acc)}, random-sign noise {_pct(noise)} (n = {n['n_test']})"
        + (f"; PGD takes away over half the accuracy from eps {half:.3g} ({half * 255:.3g}/255) on" if half is not None else "")
    )
    if pgd_acc >= clean / 2:
        return "does not hold", head + ": perturbations this small do not fool it (PGD keeps over half the clean accuracy)"
    if noise < clean / 2:
        return "does not hold", head + ": random noise of the same size fools it as well, so it is not the crafting"
    weaker = [eps[j] for j in range(len(eps)) if std["pgd"][j] > std["fgsm"][j] + 0.02]
    if weaker:
        return "does not hold", head + f": PGD is weaker than FGSM at eps {weaker} (the attack did not converge)"
    adv = n["models"].get("adversarial")
    if adv is None:
        return "holds", head
    j = min(range(len(eps)), key=lambda k: abs(eps[k] - n["adv_eps"]))
    gain = adv["pgd"][j] - std["pgd"][j]
    adv_txt = (
        f"; {n['adv_method'].upper()}-trained copy (eps {n['adv_eps']:g}): clean {_pct(adv['pgd'][0])}, PGD at eps "
        f"{eps[j]:.3g} {_pct(std['pgd'][j])} -> {_pct(adv['pgd'][j])}"
    )
    if gain < 0.10:
        return "holds with a correction", head + adv_txt + ": adversarial training did not buy robustness at this budget"
    cost = clean - adv["pgd"][0]
    return "holds", head + adv_txt + f" ({100 * gain:+.0f} points, " + (
        f"costing {100 * cost:.1f} points of clean accuracy)" if cost > 0 else f"and {100 * -cost:.1f} points more clean accuracy)")


@experiment("C24", quick_verdict="holds", opposite={"eps_list": (0.0, 0.5 / 255, 1 / 255), "adversarial_training": False})
def run_c24(
    ctx: Context,
    eps_list: Sequence[float] = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2),
    eps_small: float = 0.1,
    pgd_steps: int = 10,
    adversarial_training: bool = True,
    adv_method: str = "pgd",
    adv_eps: float = 0.1,
    adv_steps: int | None = None,
    epochs: int | None = None,
    n_test: int | None = None,
) -> Finding:
    """The small CNN trained normally (quick: digits; full: 20k Fashion-MNIST images, 4 epochs) and
    a copy trained on adversarial batches (adv_method at adv_eps, adv_steps PGD steps: quick 3, full
    5). FGSM, PGD (pgd_steps, random start) and random-sign noise at every eps of eps_list ([0, 1]
    pixel units) on n_test test images. The opposite evidence: eps_list all tiny (e.g. up to 1/255)."""
    data = lab_data(ctx.quick, n_train=ctx.size(None, 20000), n_test=n_test or ctx.size(None, 1000), seed=ctx.seed)
    epochs = epochs or ctx.size(6, 4)
    adv_steps = adv_steps or ctx.size(3, 5)
    eps_list = sorted({0.0, *(float(e) for e in eps_list)})
    spec = data.spec()
    x, y = data.test_x, data.test_y
    arms = {"standard": None}
    if adversarial_training:
        arms["adversarial"] = {"method": adv_method, "eps": adv_eps, "steps": adv_steps}
    models, nets = {}, {}
    for arm, adv in arms.items():
        torch.manual_seed(ctx.seed)
        model = small_cnn(data)
        train(model, data, epochs=epochs, seed=ctx.seed, lr=1e-2 if ctx.quick else 3e-3, adversarial=adv)
        row = {}
        for method in ("fgsm", "pgd"):
            rows = accuracy_vs_eps(model, x, y, eps_list, method, mean=spec.mean, std=spec.std, steps=pgd_steps, seed=ctx.seed)
            row[method] = [rounded(r["accuracy"]) for r in rows]
        row["noise"] = rounded(noise_accuracy(model, x, y, eps_list, data, ctx.seed))
        models[arm], nets[arm] = row, model
        ctx.log(f"{arm}: PGD " + ", ".join(f"{e:g}: {_pct(a)}" for e, a in zip(eps_list, row["pgd"])))
    numbers = {
        "data": data.name,
        "n_train": len(data.train_x),
        "n_test": len(x),
        "epochs": epochs,
        "eps": eps_list,
        "eps_units": "[0, 1] pixels",
        "eps_small": eps_small,
        "pgd_steps": pgd_steps,
        "pgd_alpha": "2.5 * eps / steps, random start",
        "adv_method": adv_method,
        "adv_eps": adv_eps,
        "adv_steps": adv_steps,
        "models": models,
    }

    fig, axes = new_figure(1, 1, size=(6.0, 4.2))
    a = axes[0, 0]
    for arm, ls in (("standard", "-"), ("adversarial", "--")):
        if arm not in models:
            continue
        for method, color in (("fgsm", "C1"), ("pgd", "C3"), ("noise", "C7")):
            label = {"fgsm": "FGSM", "pgd": f"PGD-{pgd_steps}", "noise": "random-sign noise"}[method]
            a.plot(eps_list, [100 * v for v in models[arm][method]], ls, marker="o", ms=3, color=color,
                   label=f"{label}, {'normal training' if arm == 'standard' else f'{adv_method.upper()} training (eps {adv_eps:g})'}")  # fmt: skip
    a.axvline(eps_small, color="grey", ls=":", lw=1)
    a.set(xlabel="eps (L-inf, [0, 1] pixel units)", ylabel="test accuracy (%)", ylim=(0, 100), title=f"{data.name}: accuracy under attack")
    a.grid(alpha=0.3)
    a.legend(fontsize=7)
    curve = save_figure(fig, ctx.figure_path("accuracy_vs_eps"))

    e = max([v for v in eps_list if v <= eps_small] or [eps_list[-1]])
    show = min(6, len(x))
    model = nets["standard"]
    clean = x[:show].float() / 255
    adv_x = pgd(model, x[:show], y[:show], e, steps=pgd_steps, mean=spec.mean, std=spec.std, generator=torch.Generator().manual_seed(ctx.seed))
    with torch.no_grad():
        pc = model(spec.normalize(x[:show])).argmax(1)
        pa = model((adv_x - torch.tensor(spec.mean).view(1, -1, 1, 1)) / torch.tensor(spec.std).view(1, -1, 1, 1)).argmax(1)
    names = list(data.classes) or [str(k) for k in range(data.num_classes)]
    fig, axes = new_figure(show, 3, size=(1.5, 1.6))
    for i in range(show):
        axes[0, i].imshow(clean[i, 0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[0, i].set_title(f"{names[int(pc[i])]}", fontsize=7, color="black" if pc[i] == y[i] else "red")
        axes[1, i].imshow((adv_x - clean)[i, 0].numpy(), cmap="RdBu_r", vmin=-e, vmax=e, interpolation="nearest")
        axes[2, i].imshow(adv_x[i, 0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[2, i].set_title(f"{names[int(pa[i])]}", fontsize=7, color="black" if pa[i] == y[i] else "red")
    for a in axes.flat:
        a.set_xticks([])
        a.set_yticks([])
    axes[0, 0].set_ylabel("clean", fontsize=8)
    axes[1, 0].set_ylabel(f"PGD ±{e:g}", fontsize=8)
    axes[2, 0].set_ylabel("adversarial", fontsize=8)
    examples = save_figure(fig, ctx.figure_path("examples"))
    verdict, reason = judge_c24(numbers)
    return Finding(numbers, [curve, examples], verdict, reason)


# ============================================================================ C47


def scramble_tiles(x: torch.Tensor, grid: int, seed: int) -> torch.Tensor:
    """Cut every image into grid x grid tiles and put them back in a seeded random order that is
    never the original one (H and W must be multiples of grid). grid = the image side scrambles
    single pixels."""
    B, C, H, W = x.shape
    if grid < 2 or H % grid or W % grid:
        raise ValueError(f"grid must be >= 2 and divide the image size {H}x{W}, got {grid}")
    th, tw = H // grid, W // grid
    tiles = x.reshape(B, C, grid, th, grid, tw).permute(0, 2, 4, 1, 3, 5).reshape(B, grid * grid, C, th, tw)
    g = torch.Generator().manual_seed(seed)
    n = grid * grid
    perms = torch.argsort(torch.rand(B, n, generator=g), dim=1)
    ident = (perms == torch.arange(n)).all(1)
    perms[ident] = perms[ident].roll(1, dims=1)  # never leave an image as it was
    out = tiles[torch.arange(B)[:, None], perms]
    return out.reshape(B, grid, grid, C, th, tw).permute(0, 3, 1, 4, 2, 5).reshape(B, C, H, W)


@torch.no_grad()
def head_input(model: nn.Module, x: torch.Tensor, data: Data) -> torch.Tensor:
    """What the linear layer sees: the pooled features (GAP head) or the flattened map (flatten head)."""
    model.eval()
    a = model.forward_features(data.spec().normalize(x))
    return model.pool(a).flatten(1)


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.double(), b.double(), dim=1).mean())


def pooling_measures(model: nn.Module, data: Data, x: torch.Tensor, y: torch.Tensor, grid: int, seed: int) -> dict:
    """Predictions and head inputs on images and on their tile-scrambled copies, with controls;
    and the exact check: the logits after permuting the last map's positions."""
    xs = scramble_tiles(x, grid, seed)
    p0, p1 = logits_of(model, x, data).argmax(1), logits_of(model, xs, data).argmax(1)
    f0, f1 = head_input(model, x, data), head_input(model, xs, data)
    g = torch.Generator().manual_seed(seed + 1)
    # controls: another test image of the same class, and one of a different class
    same, other = torch.empty(len(y), dtype=torch.long), torch.empty(len(y), dtype=torch.long)
    for i in range(len(y)):
        pool_same = torch.nonzero((y == y[i]) & (torch.arange(len(y)) != i))[:, 0]
        pool_other = torch.nonzero(y != y[i])[:, 0]
        same[i] = pool_same[torch.randint(len(pool_same), (1,), generator=g)] if len(pool_same) else i
        other[i] = pool_other[torch.randint(len(pool_other), (1,), generator=g)]
    with torch.no_grad():
        model.eval()
        a = model.forward_features(data.spec().normalize(x[:256]))
        B, K, h, w = a.shape
        perm = torch.randperm(h * w, generator=g)
        if bool((perm == torch.arange(h * w)).all()):
            perm = perm.roll(1)
        a_perm = a.flatten(2)[:, :, perm].reshape(B, K, h, w)
        l0, l1 = model.forward_head(a), model.forward_head(a_perm)
    return {
        "accuracy": rounded(float((p0 == y).float().mean())),
        "accuracy_scrambled": rounded(float((p1 == y).float().mean())),
        "prediction_kept": rounded(float((p0 == p1).float().mean())),
        "cos_scrambled": rounded(_cos(f0, f1)),
        "cos_same_class": rounded(_cos(f0, f0[same])),
        "cos_other_class": rounded(_cos(f0, f0[other])),
        "map": f"{h}x{w}",
        "map_permutation_logit_change": float(f"{float((l1 - l0).abs().max()) / (float(l0.abs().max()) or 1.0):.3g}"),
    }


def judge_c47(numbers: dict) -> tuple[str, str]:
    """(1) Exact: the GAP net's logits do not change (relative change <= 1e-5) when the positions
    of its last feature map are permuted, while the flatten-head net's do (> 1e-2): pooling, and
    only pooling, discards where things are. Without it: does not hold. (2) On images, the same
    conv layers with the two heads: the GAP net keeps its prediction on tile-scrambled images at
    least `margin` more often than the flatten net, and its pooled features of a scrambled image
    sit near the original's: similarity at least 80% of the way from another class's image (0) to
    another image of the same class (1). (1) and (2): holds; (1) only: holds with a correction
    (the convolutions still see the arrangement inside their receptive fields)."""
    n = numbers
    gap, flat = n["models"]["gap"], n["models"]["flatten"]
    exact = gap["map_permutation_logit_change"] <= 1e-5 and flat["map_permutation_logit_change"] > 1e-2
    span = gap["cos_same_class"] - gap["cos_other_class"]
    where = (gap["cos_scrambled"] - gap["cos_other_class"]) / span if span > 0 else 0.0
    head = (
        f"{n['data']}, {n['grid']}x{n['grid']} tiles of {n['tile']} px scrambled; prediction kept: {n['gap_head']} head "
        f"{_pct(gap['prediction_kept'])}, flatten head {_pct(flat['prediction_kept'])}; accuracy scrambled / original: "
        f"{_pct(gap['accuracy_scrambled'])} / {_pct(gap['accuracy'])} vs {_pct(flat['accuracy_scrambled'])} / {_pct(flat['accuracy'])}; "
        f"cosine of the {n['gap_head']} head's input to the original: scrambled {gap['cos_scrambled']:.2f}, another image of "
        f"the same class {gap['cos_same_class']:.2f}, of another class {gap['cos_other_class']:.2f} ({where:.0%} of the way "
        f"from other class to same class); permuting the {gap['map']} last map changes the logits by "
        f"{gap['map_permutation_logit_change']:.1e} ({n['gap_head']}) vs {flat['map_permutation_logit_change']:.1e} (flatten)"
    )
    if not exact:
        return "does not hold", head + ": the net under test keeps positions after its last map (no pooling to discard them)"
    kept = gap["prediction_kept"] >= flat["prediction_kept"] + n["margin"]
    close = where >= 0.8
    rf = "the conv layers below the pooling see how parts sit next to each other within their receptive fields, which cross the tile seams"
    if kept and close:
        return "holds", head + (
            ": pooling forgets positions exactly, and on images a scrambled copy stays about as close to its original as "
            "another image of its class" + (f"; the predictions that still change do so because {rf}" if gap["prediction_kept"] < 0.9 else "")
        )
    why = []
    if not close:
        why.append(f"a scrambled image's pooled features are only {where:.0%} of the way from another class's to the same class's")
    if not kept:
        why.append(
            f"the {n['gap_head']} net keeps its prediction only {100 * (gap['prediction_kept'] - flat['prediction_kept']):+.1f} "
            f"points more often than the flatten net (margin {100 * n['margin']:.0f})"
        )
    return "holds with a correction", head + ": pooling itself forgets positions exactly, but on images " + "; and ".join(why) + f": {rf}"


@experiment("C47", quick_verdict="holds with a correction", opposite={"gap_head": "flatten"})
def run_c47(ctx: Context, gap_head: str = "gap", grid: int = 2, epochs: int | None = None, margin: float = 0.1) -> Finding:
    """Two small CNNs with the same conv layers, trained alike: one ends in global average
    pooling + linear (gap_head="gap"; "flatten" makes it a second flatten-head net, the opposite
    evidence), the other in flatten + linear. Test images cut into grid x grid tiles and
    scrambled (quick digits 8x8: 4 px tiles; full Fashion-MNIST 28x28: 14 px tiles)."""
    data = lab_data(ctx.quick, n_train=ctx.size(None, 20000), n_test=ctx.size(None, 2000), seed=ctx.seed)
    epochs = epochs or ctx.size(6, 4)
    nets = {}
    for arm, head in (("gap", gap_head), ("flatten", "flatten")):
        torch.manual_seed(ctx.seed)
        nets[arm] = small_cnn(data, head=head)
        train(nets[arm], data, epochs=epochs, seed=ctx.seed, lr=1e-2 if ctx.quick else 3e-3)
    models = {arm: pooling_measures(m, data, data.test_x, data.test_y, grid, ctx.seed) for arm, m in nets.items()}
    numbers = {
        "data": data.name,
        "n_train": len(data.train_x),
        "n_test": len(data.test_x),
        "epochs": epochs,
        "gap_head": gap_head,
        "grid": grid,
        "tile": f"{data.test_x.shape[-2] // grid}x{data.test_x.shape[-1] // grid}",
        "margin": margin,
        "models": models,
    }
    show = 6
    xs = scramble_tiles(data.test_x[:show], grid, ctx.seed)
    names = list(data.classes) or [str(k) for k in range(data.num_classes)]
    preds = {arm: (logits_of(m, data.test_x[:show], data).argmax(1), logits_of(m, xs, data).argmax(1)) for arm, m in nets.items()}
    fig, axes = new_figure(show, 2, size=(1.6, 1.9))
    for i in range(show):
        for r, (img, k) in enumerate(((data.test_x[i], 0), (xs[i], 1))):
            a = axes[r, i]
            a.imshow(img[0].numpy(), cmap="gray", interpolation="nearest")
            a.set_title(f"gap: {names[int(preds['gap'][k][i])]}\nflat: {names[int(preds['flatten'][k][i])]}", fontsize=6)
            a.set_xticks([])
            a.set_yticks([])
    axes[0, 0].set_ylabel("original", fontsize=8)
    axes[1, 0].set_ylabel("scrambled", fontsize=8)
    examples = save_figure(fig, ctx.figure_path("scrambled_examples"))
    fig, axes = new_figure(2, 1, size=(4.4, 3.6))
    arms = list(models)
    xs_ = np.arange(len(arms))
    a = axes[0, 0]
    a.bar(xs_ - 0.2, [100 * models[m]["accuracy"] for m in arms], 0.4, label="original")
    a.bar(xs_ + 0.2, [100 * models[m]["accuracy_scrambled"] for m in arms], 0.4, label="scrambled")
    a.plot(xs_, [100 * models[m]["prediction_kept"] for m in arms], "kD", label="prediction kept")
    a.set_xticks(xs_, [f"{gap_head} head" if m == "gap" else "flatten head" for m in arms])
    a.set(ylabel="%", ylim=(0, 100), title="accuracy and kept predictions")
    a.legend(fontsize=7)
    a = axes[0, 1]
    for k, (key, label) in enumerate((("cos_scrambled", "scrambled copy"), ("cos_same_class", "same class"), ("cos_other_class", "other class"))):
        a.bar(xs_ + (k - 1) * 0.27, [models[m][key] for m in arms], 0.25, label=label)
    a.set_xticks(xs_, [f"{gap_head} head" if m == "gap" else "flatten head" for m in arms])
    a.set(ylabel="cosine to the original", ylim=(0, 1), title="the head's input: similarity to the original")
    a.legend(fontsize=7)
    bars = save_figure(fig, ctx.figure_path("pooling_measures"))
    verdict, reason = judge_c47(numbers)
    return Finding(numbers, [examples, bars], verdict, reason)
