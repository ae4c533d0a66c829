"""C12-C14: input normalization (입력 정규화), batch normalization (배치 정규화), dropout (드롭아웃).

All training uses the scratch SGD of deepnotes.optim.

C12 trains one MLP on raw 0-255 pixels and on standardized pixels, over a grid of learning
rates: at the same LR the comparison depends on which LR you pick (raw pixels act like a much
larger step on the first layer), so the fair comparison is each input at its own best LR,
plus what happens at an LR that is ordinary for standardized data.
C13 measures the per-feature mean/variance that BatchNorm produces (the scratch layer of
deepnotes.layers.norm) and trains the same deep ReLU MLP with and without it, same LR.
C14 averages the train-mode output of dropout (deepnotes.layers.dropout) over many masks and
compares it with the test-mode output, for inverted dropout, classic dropout with the
test-time (1 - p) scaling, and classic dropout where the scaling was forgotten.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from deepnotes.lab import Context, Finding, experiment
from deepnotes.lab.common import (
    Data,
    lab_data,
    new_figure,
    rounded,
    save_figure,
    smooth,
    steps_to,
    train_small,
)


# ----------------------------------------------------------------------------- helpers
def final_loss(losses: list[float], planned_steps: int, frac: float = 0.1) -> float:
    """Mean step loss over the last `frac` of the run; inf if the run blew up (stopped early or NaN)."""
    if len(losses) < planned_steps or not np.all(np.isfinite(losses)):
        return math.inf
    k = max(1, round(frac * planned_steps))
    return float(np.mean(losses[-k:]))


def _finite(x: float) -> float | None:
    """JSON-friendly: inf/NaN -> None."""
    return rounded(float(x)) if np.isfinite(x) else None


def _steps_per_epoch(data: Data, batch_size: int) -> int:
    n = len(data.train_x)
    return n // batch_size if n >= batch_size else 1


# ----------------------------------------------------------------------------- C12
def judge_c12(numbers: dict) -> tuple[str, str]:
    """Speeds: at each input's own best LR, standardized inputs end at a loss at least 20% lower
    (or reach the common target at least 1.5x sooner). Stabilizes: at the shared LR (ordinary
    for standardized data) raw inputs fail (blow up or stay above 90% of the chance loss) while
    standardized ones train, or standardized inputs train over more of the LR grid.
    Both -> holds; one -> holds with a correction; neither -> does not hold."""
    n = numbers
    std_best, raw_best = n["standardized"]["best_final_loss"], n["raw"]["best_final_loss"]
    raw_best = math.inf if raw_best is None else raw_best
    speedup = n["speedup_to_target"]
    speeds = std_best is not None and (std_best < 0.8 * raw_best or (speedup is not None and speedup >= 1.5))
    shared = n["shared_lr"]
    raw_fails = not n["raw"]["trains_at_shared_lr"] and n["standardized"]["trains_at_shared_lr"]
    wider = n["standardized"]["lrs_that_train"] > n["raw"]["lrs_that_train"]
    stabilizes = raw_fails or wider
    sp = "never reached by the raw run" if speedup is None else f"{speedup:.1f}x"
    facts = (
        f"best LR: standardized {n['standardized']['best_lr']:g} -> loss {std_best}, "
        f"raw {n['raw']['best_lr']:g} -> loss {n['raw']['best_final_loss']} (speed-up to loss "
        f"{n['target_loss']}: {sp}); at lr={shared:g} raw inputs "
        f"{'train' if n['raw']['trains_at_shared_lr'] else 'fail'}; LRs of the grid that train: "
        f"standardized {n['standardized']['lrs_that_train']}, raw {n['raw']['lrs_that_train']} of {n['grid_size']}"
    )
    if n["raw_wins_at_lrs"]:
        facts += (
            f"; note: at the same small LR ({', '.join(f'{lr:g}' for lr in n['raw_wins_at_lrs'])}) raw inputs "
            "end lower, because 0-255 values act like a much larger step on the first layer; compare each at its best LR"
        )
    if speeds and stabilizes:
        return "holds", facts
    if speeds or stabilizes:
        which = "speeds training but did not stabilize it" if speeds else "stabilizes training but did not speed it"
        return "holds with a correction", f"normalization {which} here; {facts}"
    return "does not hold", f"no speed or stability difference; {facts}"


def _mlp(data: Data, hidden: int, seed: int) -> nn.Module:
    from deepnotes.models.mlp import MLP

    torch.manual_seed(seed)
    h, w = data.train_x.shape[-2:]
    return MLP(data.num_classes, in_chans=data.train_x.shape[1], img_size=(h, w), hidden=(hidden,))


@experiment("C12", quick_verdict="holds", opposite={"baseline": "standardized", "lrs": (1e-3, 0.1, 1.0)})
def run_c12(
    ctx: Context, baseline: str = "raw", shared_lr: float = 0.1, lrs: tuple[float, ...] | None = None
) -> Finding:
    """baseline="raw" (0-255 pixels: the claim) or "standardized" (both runs standardized:
    opposite evidence). shared_lr: an ordinary LR for standardized inputs; lrs: the LR grid."""
    from deepnotes.optim import SGD

    if baseline not in ("raw", "standardized"):
        raise ValueError(f"baseline must be 'raw' or 'standardized', got {baseline!r}")
    data = lab_data(ctx.quick, n_train=ctx.size(None, 20000), n_test=ctx.size(None, 2000), seed=ctx.seed)
    epochs, batch_size, hidden = ctx.size(10, 3), 64, 100
    if lrs is None:
        lrs = ctx.size((1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0), tuple(float(f"{10 ** (k / 2):.0e}") for k in range(-10, 2)))
    lrs = tuple(sorted(set(lrs) | {shared_lr}))
    planned = epochs * _steps_per_epoch(data, batch_size)
    chance = math.log(data.num_classes)
    arms = {"standardized": True, "raw": baseline == "standardized"}

    runs: dict[str, dict[float, dict]] = {name: {} for name in arms}
    for name, standardize in arms.items():
        for lr in lrs:
            model = _mlp(data, hidden, ctx.seed)
            hist = train_small(
                model, data, SGD(model.parameters(), lr=lr),
                epochs=epochs, batch_size=batch_size, spec=data.spec(standardize), seed=ctx.seed,
            )  # fmt: skip
            fin = final_loss(hist.step_loss, planned)
            acc = hist.epoch_test_accuracy[-1] if len(hist.epoch_test_accuracy) == epochs else None
            runs[name][lr] = {"loss": hist.step_loss, "final": fin, "accuracy": acc}

    def summary(name: str) -> dict:
        r = runs[name]
        best = min(lrs, key=lambda lr: r[lr]["final"])
        trains = [lr for lr in lrs if r[lr]["final"] < 0.5 * chance]
        return {
            "best_lr": best,
            "best_final_loss": _finite(r[best]["final"]),
            "best_test_accuracy": rounded(r[best]["accuracy"]),
            "initial_loss": rounded(float(r[best]["loss"][0])),
            "lrs_that_train": len(trains),
            "trains_at_shared_lr": bool(r[shared_lr]["final"] < 0.5 * chance),
            "final_loss_at_shared_lr": _finite(r[shared_lr]["final"]),
            "final_loss_by_lr": [_finite(r[lr]["final"]) for lr in lrs],
        }

    std, raw = summary("standardized"), summary("raw")
    finals = [f for f in (std["best_final_loss"], raw["best_final_loss"]) if f is not None]
    target = rounded(2.0 * max(finals)) if finals else None
    s_std = steps_to(runs["standardized"][std["best_lr"]]["loss"], target) if target else None
    s_raw = steps_to(runs["raw"][raw["best_lr"]]["loss"], target) if target else None
    speedup = None if s_raw is None or not s_std else rounded(s_raw / s_std)
    raw_wins = [  # LRs where raw inputs train and end clearly lower than standardized ones
        lr for lr in lrs if runs["raw"][lr]["final"] < min(0.5 * chance, 0.8 * runs["standardized"][lr]["final"])
    ]
    numbers = {
        "data": data.name,
        "model": f"MLP {data.in_features}-{hidden}-{data.num_classes}, SGD, batch {batch_size}, {epochs} epochs ({planned} steps)",
        "baseline": baseline,
        "lrs": list(lrs),
        "grid_size": len(lrs),
        "shared_lr": shared_lr,
        "chance_loss": rounded(chance),
        "train_threshold": "final loss (mean of the last 10% of steps) < half the chance loss",
        "standardized": std,
        "raw": raw,
        "target_loss": target,
        "steps_to_target": {"standardized": s_std, "raw": s_raw},
        "speedup_to_target": speedup,
        "raw_wins_at_lrs": raw_wins,
    }

    fig, axes = new_figure(2, 1, size=(5.2, 3.8))
    a = axes[0, 0]
    for name, color in (("standardized", "C0"), ("raw", "C3")):
        y = [runs[name][lr]["final"] for lr in lrs]
        ok = [np.isfinite(v) for v in y]
        a.plot([lr for lr, k in zip(lrs, ok) if k], [v for v, k in zip(y, ok) if k], "o-", color=color, label=_arm_label(name, baseline))
        a.plot([lr for lr, k in zip(lrs, ok) if not k], [10 * chance] * (len(ok) - sum(ok)), "x", color=color, ms=9)
    a.axhline(chance, color="gray", ls=":", label="chance loss ln(C)")
    a.axvline(shared_lr, color="gray", ls="--", lw=0.8)
    a.set(xscale="log", yscale="log", xlabel="learning rate", ylabel="final training loss", title="final loss vs LR (x = blew up)")
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    a = axes[0, 1]
    for name, color in (("standardized", "C0"), ("raw", "C3")):
        best = numbers[name]["best_lr"]
        a.plot(smooth(runs[name][best]["loss"]), color=color, label=f"{_arm_label(name, baseline)}, best lr={best:g}")
        a.plot(smooth(runs[name][shared_lr]["loss"]), color=color, ls="--", alpha=0.7, label=f"{_arm_label(name, baseline)}, lr={shared_lr:g}")
    a.set(yscale="log", xlabel="step", ylabel="training loss (10-step mean)", title="loss curves")
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    figure = save_figure(fig, ctx.figure_path("input_normalization"))
    verdict, reason = judge_c12(numbers)
    return Finding(numbers, [figure], verdict, reason)


def _arm_label(name: str, baseline: str) -> str:
    if name == "raw":
        return "raw 0-255" if baseline == "raw" else "standardized (baseline)"
    return "standardized"


# ----------------------------------------------------------------------------- C13
def judge_c13(numbers: dict) -> tuple[str, str]:
    """Normalizes: in training mode every feature of the normalized values (x_hat, before the
    learned scale/shift) has |mean| < 0.01 and |var - 1| < 0.01. Speeds: with BN the smoothed
    loss reaches half the chance loss at least 1.5x sooner (or the plain net never does) and
    the final loss is lower. Both -> holds; one -> holds with a correction; neither -> does not hold."""
    n = numbers
    st = n["bn_normalized_stats"]
    normalizes = st["max_abs_mean"] < 0.01 and st["max_abs_var_minus_1"] < 0.01
    s_bn, s_plain = n["steps_to_half_chance"]["bn"], n["steps_to_half_chance"]["plain"]
    faster = s_bn is not None and (s_plain is None or s_plain >= 1.5 * s_bn)
    f_bn, f_plain = (math.inf if v is None else v for v in (n["final_loss"]["bn"], n["final_loss"]["plain"]))
    speeds = faster and f_bn < f_plain
    plain = n["plain_preactivation_stats"]
    facts = (
        f"per-feature mean/var of BN's normalized values: max |mean| {st['max_abs_mean']:.1e}, max |var-1| "
        f"{st['max_abs_var_minus_1']:.1e} (without BN the pre-activations' variances span "
        f"{plain['var_p5']:.3g}-{plain['var_p95']:.3g}); steps to half the chance loss: "
        f"{'never' if s_bn is None else s_bn} with BN vs {'never' if s_plain is None else s_plain} without; "
        f"final loss {n['final_loss']['bn']} vs {n['final_loss']['plain']}, test accuracy "
        f"{n['test_accuracy']['bn']} vs {n['test_accuracy']['plain']}"
    )
    if normalizes and speeds:
        return "holds", facts
    if normalizes or speeds:
        which = "normalizes the features but did not speed training" if normalizes else "speeds training but its features are not 0/1"
        return "holds with a correction", f"BN {which} here; {facts}"
    return "does not hold", facts


def _deep_mlp(data: Data, depth: int, width: int, use_bn: bool, seed: int) -> nn.Sequential:
    from deepnotes.layers.norm import BatchNorm1d

    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Flatten()]
    w = data.in_features
    for _ in range(depth):
        layers += [nn.Linear(w, width)] + ([BatchNorm1d(width)] if use_bn else []) + [nn.ReLU()]
        w = width
    layers.append(nn.Linear(w, data.num_classes))
    return nn.Sequential(*layers)


@torch.no_grad()
def _feature_stats(model: nn.Sequential, x: torch.Tensor, train_mode: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-feature (mean, var) over the batch of every hidden layer's normalized values and of
    its output, pooled over layers. With BN: normalized = (out - beta) / gamma, output = the
    BN layer's output; without BN both are the Linear layer's output (the pre-activation)."""
    from deepnotes.layers.norm import BatchNorm1d

    model.train(train_mode)
    captured: list[tuple[nn.Module, torch.Tensor]] = []
    bns = [m for m in model if isinstance(m, BatchNorm1d)]
    watch = bns if bns else [m for m in model if isinstance(m, nn.Linear)][:-1]
    hooks = [m.register_forward_hook(lambda mod, inp, out: captured.append((mod, out))) for m in watch]
    state = {k: v.clone() for k, v in model.state_dict().items()}  # train-mode BN updates running stats
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
        model.load_state_dict(state)
    norm_means, norm_vars, out_means, out_vars = [], [], [], []
    for mod, out in captured:
        normalized = (out - mod.bias) / mod.weight if isinstance(mod, BatchNorm1d) else out
        norm_means.append(normalized.mean(0))
        norm_vars.append(normalized.var(0, unbiased=False))
        out_means.append(out.mean(0))
        out_vars.append(out.var(0, unbiased=False))
    cat = lambda ts: torch.cat(ts).numpy()
    return cat(norm_means), cat(norm_vars), cat(out_means), cat(out_vars)


@experiment("C13", quick_verdict="holds", opposite={"use_bn": False})
def run_c13(ctx: Context, use_bn: bool = True, lr: float = 0.1, depth: int = 4) -> Finding:
    """use_bn=True: the BN arm has BatchNorm after every hidden Linear (the claim); False: both
    arms are the plain net (opposite evidence). Same init seed, data order and LR for both."""
    from deepnotes.optim import SGD

    data = lab_data(ctx.quick, n_train=ctx.size(None, 20000), n_test=ctx.size(None, 2000), seed=ctx.seed)
    epochs, batch_size, width = ctx.size(10, 3), 64, 64
    planned = epochs * _steps_per_epoch(data, batch_size)
    chance = math.log(data.num_classes)
    spec = data.spec(True)
    g = torch.Generator().manual_seed(ctx.seed)
    probe = spec.normalize(data.train_x[torch.randperm(len(data.train_x), generator=g)[:512]])
    test_probe = spec.normalize(data.test_x[:512])

    arms: dict[str, dict] = {}
    for name, bn in (("plain", False), ("bn", use_bn)):
        model = _deep_mlp(data, depth, width, bn, ctx.seed)
        at_init = _feature_stats(model, probe, train_mode=True)
        hist = train_small(
            model, data, SGD(model.parameters(), lr=lr),
            epochs=epochs, batch_size=batch_size, seed=ctx.seed,
        )  # fmt: skip
        arms[name] = {
            "loss": hist.step_loss,
            "final": final_loss(hist.step_loss, planned),
            "accuracy": hist.epoch_test_accuracy[-1] if len(hist.epoch_test_accuracy) == epochs else None,
            "init": at_init,
            "trained": _feature_stats(model, probe, train_mode=True),
            "eval": _feature_stats(model, test_probe, train_mode=False),
        }

    def stats(means: np.ndarray, variances: np.ndarray) -> dict:
        return {
            "max_abs_mean": rounded(float(np.abs(means).max())),
            "max_abs_var_minus_1": rounded(float(np.abs(variances - 1).max())),
            "mean_p5": rounded(float(np.percentile(means, 5))),
            "mean_p95": rounded(float(np.percentile(means, 95))),
            "var_p5": rounded(float(np.percentile(variances, 5))),
            "var_p95": rounded(float(np.percentile(variances, 95))),
        }

    bn_arm, plain_arm = arms["bn"], arms["plain"]
    target = 0.5 * chance
    numbers = {
        "data": data.name,
        "model": f"MLP {depth}x{width} ReLU{' + BatchNorm (scratch) before each ReLU' if use_bn else ''} vs without, "
        f"SGD lr={lr}, batch {batch_size}, {epochs} epochs ({planned} steps)",
        "use_bn": use_bn,
        "features": len(bn_arm["trained"][0]),
        "bn_normalized_stats": stats(*bn_arm["trained"][:2]),
        "bn_normalized_stats_at_init": stats(*bn_arm["init"][:2]),
        "bn_output_stats": stats(*bn_arm["trained"][2:]),
        "bn_eval_mode_test_stats": stats(*bn_arm["eval"][:2]),
        "plain_preactivation_stats": stats(*plain_arm["trained"][:2]),
        "plain_preactivation_stats_at_init": stats(*plain_arm["init"][:2]),
        "half_chance_loss": rounded(target),
        "steps_to_half_chance": {k: steps_to(arms[k]["loss"], target) for k in ("bn", "plain")},
        "final_loss": {k: _finite(arms[k]["final"]) for k in ("bn", "plain")},
        "test_accuracy": {k: rounded(arms[k]["accuracy"]) for k in ("bn", "plain")},
        "tolerance": "|mean| < 0.01 and |var - 1| < 0.01 for every feature (training mode, 512-image batch)",
    }

    bn_label = "with BatchNorm" if use_bn else "with BN (use_bn=False: plain)"
    fig, axes = new_figure(3, 1, size=(4.6, 3.7))
    a = axes[0, 0]
    a.plot(smooth(plain_arm["loss"]), color="C3", label="without BN")
    a.plot(smooth(bn_arm["loss"]), color="C0", label=bn_label)
    a.axhline(target, color="gray", ls=":", label="half the chance loss")
    a.set(yscale="log", xlabel="step", ylabel="training loss (10-step mean)", title=f"same net, same lr={lr:g}")
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    bins_m = np.linspace(-3.05, 3.05, 62)  # a bin centred on 0
    a = axes[0, 1]
    a.hist(np.clip(plain_arm["trained"][0], -3, 3), bins=bins_m, color="C3", alpha=0.6, label="without BN: pre-activation")
    a.hist(np.clip(bn_arm["trained"][0], -3, 3), bins=bins_m, color="C0", alpha=0.6, label=f"{bn_label}: normalized")
    a.set(xlabel="per-feature mean over a batch", ylabel="features", title="per-feature means (after training)")
    a.legend(fontsize=7)
    a = axes[0, 2]
    allv = np.concatenate([plain_arm["trained"][1], bn_arm["trained"][1]])
    lo, hi = max(1e-4, float(allv.min()) * 0.8), max(2.0, float(allv.max()) * 1.2)
    bins_v = np.geomspace(lo, hi, 61)
    a.hist(np.clip(plain_arm["trained"][1], lo, hi), bins=bins_v, color="C3", alpha=0.6, label="without BN")
    a.hist(np.clip(bn_arm["trained"][1], lo, hi), bins=bins_v, color="C0", alpha=0.6, label=bn_label)
    a.axvline(1.0, color="k", lw=0.8)
    a.set(xscale="log", xlabel="per-feature variance over a batch", ylabel="features", title="per-feature variances")
    a.legend(fontsize=7)
    figure = save_figure(fig, ctx.figure_path("batchnorm"))
    verdict, reason = judge_c13(numbers)
    return Finding(numbers, [figure], verdict, reason)


# ----------------------------------------------------------------------------- C14
DROPOUT_VARIANTS = ("inverted", "classic, test x(1-p)", "classic, no test scaling")


def judge_c14(numbers: dict) -> tuple[str, str]:
    """Each variant's gap = |test-mode mean - train-mode mean (over many masks)| / train-mode mean,
    over all units and inputs. Holds if both correct variants have gap < tol (default 0.02) and
    the mistaken one (classic without test scaling) has gap > tol; does not hold otherwise."""
    n = numbers
    tol = n["tolerance"]
    gaps = {v: n["variants"][v]["relative_gap"] for v in DROPOUT_VARIANTS}
    correct = [v for v in DROPOUT_VARIANTS[:2] if gaps[v] < tol]
    mistake_differs = gaps[DROPOUT_VARIANTS[2]] > tol
    facts = "; ".join(
        f"{v}: test/train = {n['variants'][v]['test_over_train']:.3f}" for v in DROPOUT_VARIANTS
    ) + f" (p = {n['p']}, 1/(1-p) = {1 / (1 - n['p']):.3f}, tolerance {tol:.0%})"
    if len(correct) == 2 and mistake_differs:
        return "holds", f"both correct forms keep the expected activation and the forgotten scaling does not; {facts}"
    broken = [v for v in DROPOUT_VARIANTS[:2] if v not in correct]
    what = [f"{v} does not keep the expected activation" for v in broken]
    if not mistake_differs:
        what.append("the mistaken variant shows no difference (p too small to tell?)")
    return "does not hold", "; ".join(what) + f"; {facts}"


@experiment("C14", quick_verdict="holds", opposite={"classic_test_scaling": False})
def run_c14(ctx: Context, p: float = 0.5, classic_test_scaling: bool = True, tolerance: float = 0.02) -> Finding:
    """classic_test_scaling=True: classic dropout multiplies by (1 - p) at test time (the claim);
    False: the classic variant forgets it (opposite evidence). Activations are the ReLU hidden
    units of an MLP at initialization on real images."""
    from deepnotes.layers.dropout import Dropout

    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    data = lab_data(ctx.quick, n_train=ctx.size(None, 5000), seed=ctx.seed)
    n_inputs, n_masks, width = ctx.size(128, 1000), ctx.size(200, 2000), 64
    torch.manual_seed(ctx.seed)
    layer = nn.Sequential(nn.Flatten(), nn.Linear(data.in_features, width), nn.ReLU())
    x = data.spec(True).normalize(data.train_x[:n_inputs])
    with torch.no_grad():
        h = layer(x)  # (n_inputs, width), non-negative activations

    def dropout_means(mode: str, scale_at_test: bool, prob: float, masks: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-unit mean of the train-mode output over inputs and masks, and of the test-mode output
        (no training: the layer is only run, in both modes)."""
        drop = Dropout(prob, mode=mode, generator=torch.Generator().manual_seed(ctx.seed + 1))
        drop.train()
        with torch.no_grad():
            total = torch.zeros(width)
            for _ in range(masks):
                total += drop(h).mean(0)
            drop.eval()
            test = drop(h) if scale_at_test else h  # forgetting the scaling = using h as is
        return (total / masks).numpy(), test.mean(0).numpy()

    setups = {
        DROPOUT_VARIANTS[0]: ("inverted", True),
        DROPOUT_VARIANTS[1]: ("classic", classic_test_scaling),
        DROPOUT_VARIANTS[2]: ("classic", False),
    }
    per_unit: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    variants = {}
    for name, (mode, scale) in setups.items():
        tr, te = dropout_means(mode, scale, p, n_masks)
        per_unit[name] = (tr, te)
        live = tr > 1e-6 * tr.max()
        ratio = te[live] / tr[live]
        variants[name] = {
            "train_mean": rounded(float(tr.mean())),
            "test_mean": rounded(float(te.mean())),
            "test_over_train": rounded(float(te.sum() / tr.sum())),
            "relative_gap": rounded(float(abs(te.sum() - tr.sum()) / tr.sum())),
            "per_unit_ratio_p5_p95": rounded([float(np.percentile(ratio, 5)), float(np.percentile(ratio, 95))]),
        }
    sweep_p = (0.1, 0.3, 0.5, 0.7, 0.9)
    sweep = []
    for q in sweep_p:
        tr, te = dropout_means("classic", False, q, max(50, n_masks // 4))
        sweep.append(rounded(float(te.sum() / tr.sum())))
    numbers = {
        "data": data.name,
        "activations": f"{width} ReLU units of Linear({data.in_features}, {width}) at init, {n_inputs} images",
        "p": p,
        "masks": n_masks,
        "classic_test_scaling": classic_test_scaling,
        "tolerance": tolerance,
        "variants": variants,
        "mistake_ratio_by_p": {"p": list(sweep_p), "measured": sweep, "1/(1-p)": [rounded(1 / (1 - q)) for q in sweep_p]},
    }

    fig, axes = new_figure(3, 1, size=(4.6, 3.8))
    a = axes[0, 0]
    xs = np.arange(len(DROPOUT_VARIANTS))
    a.bar(xs - 0.2, [variants[v]["train_mean"] for v in DROPOUT_VARIANTS], 0.4, label=f"train (mean of {n_masks} masks)")
    a.bar(xs + 0.2, [variants[v]["test_mean"] for v in DROPOUT_VARIANTS], 0.4, label="test")
    labels = list(DROPOUT_VARIANTS)
    if not classic_test_scaling:
        labels[1] = "classic (scaling off)"
    a.set_xticks(xs, [lab.replace(", ", "\n") for lab in labels], fontsize=8)
    top = max(max(v["train_mean"], v["test_mean"]) for v in variants.values())
    a.set(ylabel="mean activation", title=f"expected activation, p={p}", ylim=(0, 1.45 * top))
    a.legend(fontsize=8, loc="upper left")
    a = axes[0, 1]
    for (name, (tr, te)), c, lab in zip(per_unit.items(), ("C0", "C2", "C3"), labels):
        a.scatter(tr, te, s=10, color=c, alpha=0.7, label=lab)
    top = max(float(max(te.max(), tr.max())) for tr, te in per_unit.values()) * 1.05
    a.plot([0, top], [0, top], "k--", lw=0.8, label="test = train")
    a.set(xlabel="train-mode mean (over masks)", ylabel="test-mode activation", title="per unit")
    a.legend(fontsize=7)
    a = axes[0, 2]
    grid = np.linspace(0.05, 0.92, 100)
    a.plot(grid, 1 / (1 - grid), "k-", lw=0.8, label="1/(1-p)")
    a.plot(sweep_p, sweep, "o", color="C3", label="measured: classic, no test scaling")
    a.axhline(1.0, color="C0", ls=":", label="correct forms")
    a.set(xlabel="drop probability p", ylabel="test / train mean", yscale="log", title="the forgotten scaling")
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    figure = save_figure(fig, ctx.figure_path("dropout"))
    verdict, reason = judge_c14(numbers)
    return Finding(numbers, [figure], verdict, reason)
