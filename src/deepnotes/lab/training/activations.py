"""C05, C06, C10, C11: what activation functions do (비선형 활성화 함수, 기울기 소실, Leaky ReLU / ELU).

C05  stacked linear layers collapse to one matrix and cannot learn XOR; a ReLU between them can.
C06  sigmoid's derivative is at most 1/4, so gradients shrink layer by layer in a deep net.
C10  sigmoid outputs are all positive, so the weight gradient of a neuron fed by them has one
     sign per sample (the "zig-zag" of cs231n); averaging over a mini-batch weakens this.
C11  Leaky ReLU keeps falling for negative inputs; ELU levels off at -alpha.

The activations are the scratch ones of deepnotes.layers.activations (formulas with
hand-written derivatives); the initializers come from deepnotes.layers.init.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

from deepnotes.lab import Context, Finding, experiment
from deepnotes.lab.common import Batches, Step, lab_data, new_figure, rounded, save_figure, train_small
from deepnotes.layers.activations import (
    elu,
    elu_grad,
    leaky_relu,
    leaky_relu_grad,
    make_activation,
    sigmoid,
    sigmoid_grad,
)
from deepnotes.layers.init import kaiming_normal_, lecun_normal_, zeros_


def _mlp(widths: list[int], activation: str | None, *, dtype=torch.float32) -> nn.Sequential:
    """Linear layers of the given widths with `activation` between them (None: nothing between)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(n_in, n_out, dtype=dtype))
        if activation is not None and i < len(widths) - 2:
            layers.append(make_activation(activation))
    return nn.Sequential(*layers)


def _real_batch(ctx: Context, n: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """n standardized, flattened images (B, C*H*W) and their labels from the lab's data."""
    data = lab_data(ctx.quick, n_train=n, seed=ctx.seed)
    x = data.spec().normalize(data.train_x).flatten(1)  # (B, C*H*W)
    return x, data.train_y, data.name


# ============================================================================ C05


def collapse(model: nn.Sequential) -> tuple[torch.Tensor, torch.Tensor]:
    """The single (W, b) a stack of Linear layers equals if nothing sits between them:

        W = W_k ... W_2 W_1,   b = W_k ... W_2 b_1 + ... + W_k b_{k-1} + b_k.

    Anything other than Linear in the stack is ignored, so for a net with activations
    the result is what it *would* be without them.
    """
    linears = [m for m in model if isinstance(m, nn.Linear)]
    w = torch.eye(linears[0].in_features, dtype=linears[0].weight.dtype)
    b = torch.zeros(linears[0].in_features, dtype=w.dtype)
    for layer in linears:
        w = layer.weight @ w
        b = layer.weight @ b + layer.bias
    return w.detach(), b.detach()


def xor_cloud(per_corner: int, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Points around the corners (+-1, +-1), label 1 where the signs differ (XOR), float64."""
    g = torch.Generator().manual_seed(seed)
    corners = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    x = corners.repeat_interleave(per_corner, 0) + noise * torch.randn(4 * per_corner, 2, generator=g, dtype=torch.float64)
    return x, labels.repeat_interleave(per_corner)


def _fit_xor(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Full-batch Adam on binary cross-entropy (train_small, one batch per epoch); the final loss."""
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    hist = train_small(model, None, opt, epochs=steps, batches=Batches(x, y, len(x), shuffle=False), loss_fn=_bce, evaluate=False)
    return hist.step_loss[-1]


def _bce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(logits.squeeze(1), y)


def judge_c05(numbers: dict) -> tuple[str, str]:
    """Holds if the stacked net's outputs equal one matrix's (relative error < 1e-9 in float64)
    and it gets at most 3 of the 4 XOR corners (the most a line can), while the ReLU net gets all 4."""
    n = numbers
    collapses = n["stack_collapse_rel_error"] < 1e-9
    no_xor = n["stack_xor_corner_accuracy"] <= 0.75
    relu_xor = n["relu_xor_corner_accuracy"] == 1.0
    if collapses and no_xor and relu_xor:
        return "holds", (
            f"the {n['stack_layers']}-layer stack without activations equals the single matrix W_k...W_1 up to "
            f"{n['stack_collapse_rel_error']:.1e} (relative) and classifies {n['stack_xor_corner_accuracy']:.0%} of "
            f"the XOR corners ({n['stack_xor_cloud_accuracy']:.0%} of the cloud); with ReLU between the same layers "
            f"the net gets {n['relu_xor_corner_accuracy']:.0%} ({n['relu_xor_cloud_accuracy']:.0%} of the cloud)"
        )
    what = []
    if not collapses:
        what.append(
            f"the stack ({n['stack_activation']} between layers) is not one matrix: the product of its weights "
            f"misses its outputs by {n['stack_collapse_rel_error']:.2g} (relative)"
        )
    if not no_xor:
        what.append(f"the stack classifies {n['stack_xor_corner_accuracy']:.0%} of the XOR corners")
    if not relu_xor:
        what.append(f"the ReLU net only gets {n['relu_xor_corner_accuracy']:.0%} of the XOR corners")
    return "does not hold", "; ".join(what)


@experiment("C05", quick_verdict="holds", opposite={"activation": "relu"})
def run_c05(ctx: Context, activation: str | None = None, layers: int = 4, width: int = 16) -> Finding:
    """A `layers`-deep stack 2 -> width -> ... -> 1 with `activation` between its layers (None: the
    claim, a purely linear stack; "relu": opposite evidence) is trained on an XOR point cloud next to
    the same stack with ReLU. float64 throughout, so "equal" can mean equal to rounding error."""
    torch.manual_seed(ctx.seed)
    x, y = xor_cloud(ctx.size(25, 100), 0.25, ctx.seed)
    corners = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]], dtype=torch.float64)
    corner_y = torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    widths = [2] + [width] * (layers - 1) + [1]
    steps = ctx.size(400, 1500)
    nets = {"stack": _mlp(widths, activation, dtype=torch.float64), "relu": _mlp(widths, "relu", dtype=torch.float64)}
    losses = {name: _fit_xor(net, x, y, steps) for name, net in nets.items()}

    def acc(net, pts, labels) -> float:
        with torch.no_grad():
            return float(((net(pts).squeeze(1) > 0).double() == labels).double().mean())

    stack = nets["stack"]
    w, b = collapse(stack)
    probe = torch.cat([x, 3 * torch.randn(200, 2, dtype=torch.float64)])  # the data and points far from it
    with torch.no_grad():
        out = stack(probe)
        err = float((out - (probe @ w.T + b)).abs().max() / out.abs().max())
    numbers = {
        "stack_layers": layers,
        "stack_activation": activation or "none",
        "stack_collapse_matrix": rounded([float(v) for v in w.flatten()]),
        "stack_collapse_rel_error": err,
        "stack_xor_corner_accuracy": acc(stack, corners, corner_y),
        "stack_xor_cloud_accuracy": rounded(acc(stack, x, y)),
        "stack_final_loss": rounded(losses["stack"]),
        "relu_xor_corner_accuracy": acc(nets["relu"], corners, corner_y),
        "relu_xor_cloud_accuracy": rounded(acc(nets["relu"], x, y)),
        "relu_final_loss": rounded(losses["relu"]),
        "points": len(x),
        "adam_steps": steps,
    }

    fig, axes = new_figure(2, 1, size=(4.4, 4.2))
    grid = torch.linspace(-2.2, 2.2, 200, dtype=torch.float64)
    gx, gy = torch.meshgrid(grid, grid, indexing="xy")
    pts = torch.stack([gx.flatten(), gy.flatten()], 1)
    titles = {
        "stack": f"{layers} linear layers, {activation or 'no activation'}",
        "relu": f"{layers} linear layers, ReLU between",
    }
    for a, (name, net) in zip(axes[0], nets.items()):
        with torch.no_grad():
            p = torch.sigmoid(net(pts)).reshape(gx.shape).numpy()
        a.contourf(gx.numpy(), gy.numpy(), p, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.75)
        a.contour(gx.numpy(), gy.numpy(), p, levels=[0.5], colors="k", linewidths=1.5)
        a.scatter(x[:, 0], x[:, 1], c=y.numpy(), cmap="RdBu_r", edgecolors="k", linewidths=0.4, s=14)
        a.set(title=f"{titles[name]}\nXOR accuracy {acc(net, x, y):.0%}", xlabel="x1", ylabel="x2", aspect="equal")
    fig.suptitle("decision regions on XOR (colour: P(class 1); line: 0.5)")
    figure = save_figure(fig, ctx.figure_path("xor_decision_regions"))
    verdict, reason = judge_c05(numbers)
    return Finding(numbers, [figure], verdict, reason)


# ============================================================================ C06


def gradient_norms(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """Frobenius norm of dL/dW for every Linear layer, input side first, on one batch."""
    model.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x), y).backward()
    return [float(m.weight.grad.norm()) for m in model if isinstance(m, nn.Linear)]


def deep_mlp(in_features: int, width: int, depth: int, num_classes: int, activation: str, seed: int) -> nn.Sequential:
    """`depth` hidden layers of `width` units, each initialized to keep the forward scale for its
    activation: He (Var w = 2/n_in) for ReLU, Xavier in the notes' form (Var w = 1/n_in) otherwise;
    biases 0."""
    model = _mlp([in_features] + [width] * depth + [num_classes], activation)
    g = torch.Generator().manual_seed(seed)
    for m in model:
        if isinstance(m, nn.Linear):
            if activation == "relu":
                kaiming_normal_(m.weight, generator=g)
            else:
                lecun_normal_(m.weight, generator=g)
            zeros_(m.bias)
    return model


def judge_c06(numbers: dict) -> tuple[str, str]:
    """Holds if sigmoid' peaks at 0.25 (within 1e-6), the claimed net's first-layer gradient is
    below 1e-3 of its last layer's (vanished), and the ReLU reference net's ratio stays above 0.1
    (so the loss comes from the activation, not from depth alone)."""
    n = numbers
    peak = abs(n["sigmoid_grad_max"] - 0.25) < 1e-6 and abs(n["sigmoid_grad_argmax"]) < 1e-3
    vanishes = n["first_to_last_ratio"] < 1e-3
    reference_ok = n["relu_first_to_last_ratio"] > 0.1
    if peak and vanishes and reference_ok:
        return "holds", (
            f"sigmoid' peaks at {n['sigmoid_grad_max']:.6f} (x = {n['sigmoid_grad_argmax']:.3g}); through "
            f"{n['depth']} {n['activation']} layers the first layer's gradient is {n['first_to_last_ratio']:.1e} "
            f"of the last layer's (x{n['per_layer_factor']:.3f} per layer), against "
            f"{n['relu_first_to_last_ratio']:.2f} with ReLU"
        )
    what = []
    if not peak:
        what.append(f"sigmoid' peaks at {n['sigmoid_grad_max']:.6f} at x = {n['sigmoid_grad_argmax']:.3g}")
    if not vanishes:
        what.append(
            f"with {n['activation']} the first layer's gradient is still {n['first_to_last_ratio']:.2g} of the "
            f"last layer's after {n['depth']} layers"
        )
    if not reference_ok:
        what.append(f"the ReLU reference also vanishes ({n['relu_first_to_last_ratio']:.2g})")
    return "does not hold", "; ".join(what)


@experiment("C06", quick_verdict="holds", opposite={"activation": "relu"})
def run_c06(ctx: Context, activation: str = "sigmoid", depth: int = 15) -> Finding:
    """Gradient norms of every layer at initialization, on one batch of real images, for a deep MLP
    with `activation` (the claim: sigmoid; opposite evidence: "relu") and a ReLU reference.

    Each net gets the initialization that keeps its forward scale (Xavier 1/n for sigmoid, He 2/n
    for ReLU), so what remains is the activation's derivative: the backward signal of a layer is
    multiplied by W^T diag(f'(z)), and sigmoid' <= 1/4 however the weights are drawn (weights large
    enough to make up for it push z into the flat tails, where f' is smaller still)."""
    t = torch.linspace(-10, 10, 200001, dtype=torch.float64)
    d = sigmoid_grad(t)
    i = int(d.argmax())
    # autograd through the scratch formula agrees with the hand-written derivative
    tt = t[::1000].clone().requires_grad_(True)
    sigmoid(tt).sum().backward()
    autograd_err = float((tt.grad - sigmoid_grad(tt.detach())).abs().max())

    x, y, data_name = _real_batch(ctx, ctx.size(256, 512))
    width = ctx.size(64, 256)
    norms = {}
    for act in dict.fromkeys([activation, "relu", "sigmoid"]):
        model = deep_mlp(x.shape[1], width, depth, 10, act, ctx.seed)
        norms[act] = gradient_norms(model, x, y)
    claim, relu = norms[activation], norms["relu"]
    ratio = claim[0] / claim[-1]
    numbers = {
        "data": data_name,
        "batch": len(x),
        "depth": depth,
        "width": width,
        "activation": activation,
        "sigmoid_grad_max": float(d[i]),
        "sigmoid_grad_argmax": float(t[i]),
        "sigmoid_grad_autograd_error": autograd_err,
        "first_to_last_ratio": float(f"{ratio:.4g}"),
        "per_layer_factor": rounded(ratio ** (1 / depth)),
        "relu_first_to_last_ratio": rounded(relu[0] / relu[-1]),
        "grad_norms": rounded(claim, 3),
        "relu_grad_norms": rounded(relu, 3),
    }
    if activation != "sigmoid":
        numbers["sigmoid_first_to_last_ratio"] = float(f"{norms['sigmoid'][0] / norms['sigmoid'][-1]:.4g}")

    fig, axes = new_figure(2, 1, size=(5.0, 3.8))
    a = axes[0, 0]
    tp = t[::100].numpy()
    a.plot(tp, sigmoid(t[::100]).numpy(), label="sigmoid(x)")
    a.plot(tp, d[::100].numpy(), label="sigmoid'(x) = y(1-y)")
    a.axhline(0.25, color="grey", ls="--", lw=1)
    a.annotate("max 0.25 at x = 0", (0, 0.25), xytext=(3.0, 0.33), arrowprops={"arrowstyle": "->"})
    a.set(title="sigmoid and its derivative", xlabel="x")
    a.legend(loc="upper left")
    a.grid(alpha=0.3)
    a = axes[0, 1]
    layers = np.arange(1, depth + 2)
    for act, values in norms.items():
        a.semilogy(layers, values, marker="o", ms=3, label=f"{act} ({'He' if act == 'relu' else 'Xavier'} init)")
    a.set(
        title=f"gradient norm per layer at init ({data_name})",
        xlabel="layer (1 = next to the input, last = output)",
        ylabel="||dL/dW||",
    )
    a.legend()
    a.grid(alpha=0.3, which="both")
    figure = save_figure(fig, ctx.figure_path("gradient_norms"))
    verdict, reason = judge_c06(numbers)
    return Finding(numbers, [figure], verdict, reason)


# ============================================================================ C10


def sign_stats(grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For weight gradients (..., n): whether all n components share one sign (zeros ignored:
    a zero component agrees with either sign), and the fraction with the majority sign."""
    pos = (grads > 0).sum(-1)
    neg = (grads < 0).sum(-1)
    nonzero = (pos + neg).clamp_min(1)
    return (pos == 0) | (neg == 0), torch.maximum(pos, neg) / nonzero


def zigzag_path(inputs: str, steps: int, seed: int, lr: float = 0.5) -> np.ndarray:
    """SGD, one sample per step, on a 2-weight neuron y = w.x with x = act(N(0, I)) and target
    w* = (1, -1), from w = (0, 0). Each step moves w along +-x: with all-positive x, only towards
    "both up" or "both down", so reaching (1, -1) takes a zig-zag. Returns the path (steps+1, 2)."""
    g = torch.Generator().manual_seed(seed)
    act = sigmoid if inputs == "sigmoid" else make_activation(inputs)
    x = act(torch.randn(steps, 2, generator=g, dtype=torch.float64))
    w_star = torch.tensor([1.0, -1.0], dtype=torch.float64)
    w = torch.zeros(2, dtype=torch.float64)
    path = [w.clone()]
    for xi in x:
        w = w - lr * (w @ xi - w_star @ xi) * xi  # gradient of (w.x - w*.x)^2 / 2
        path.append(w.clone())
    return torch.stack(path).numpy()


def path_stats(path: np.ndarray, target: tuple[float, float] = (1.0, -1.0)) -> dict:
    """Path length over the straight distance covered, distance left to the target, and the
    fraction of steps whose two components share a sign."""
    steps = np.diff(path, axis=0)
    moved = np.abs(steps).sum(1) > 0
    same = (np.sign(steps[:, 0]) == np.sign(steps[:, 1]))[moved]
    length = float(np.linalg.norm(steps, axis=1).sum())
    return {
        "path_ratio": length / float(np.linalg.norm(path[-1] - path[0])),
        "distance_left": float(np.linalg.norm(path[-1] - np.asarray(target))),
        "steps_same_sign": float(same.mean()),
    }


def judge_c10(numbers: dict) -> tuple[str, str]:
    """Per sample the claim is exact when the inputs are positive: at least 99.9% of per-sample
    weight gradients single-signed (zero-centred inputs: below 5%). A mini-batch gradient sums
    per-sample ones whose signs differ, so the claim "holds" as stated only if at least 90% of
    mini-batch gradients are single-signed too; otherwise it "holds with a correction"."""
    n = numbers
    per_sample = n["per_sample_same_sign"] >= 0.999
    reference = n["tanh_per_sample_same_sign"] < 0.05
    if not per_sample:
        return "does not hold", (
            f"with {n['inputs']} inputs only {n['per_sample_same_sign']:.1%} of per-sample weight gradients "
            f"have one sign ({n['per_minibatch_same_sign']:.1%} of mini-batch gradients)"
        )
    if not reference:
        return "does not hold", (
            f"zero-centred (tanh) inputs also give single-signed gradients ({n['tanh_per_sample_same_sign']:.1%})"
        )
    base = (
        f"with {n['inputs']} inputs {n['per_sample_same_sign']:.1%} of per-sample weight gradients have one sign "
        f"(tanh inputs: {n['tanh_per_sample_same_sign']:.1%}); a 2-weight neuron heading for (1, -1) zig-zags "
        f"(every step has one sign, path {n['zigzag_path_ratio']:.1f}x the straight line, {n['zigzag_distance_left']:.2f} "
        f"short after 100 steps; tanh inputs: {n['tanh_zigzag_distance_left']:.2g} short)"
    )
    if n["per_minibatch_same_sign"] >= 0.9:
        return "holds", base + f", and {n['per_minibatch_same_sign']:.1%} of mini-batch gradients too"
    return "holds with a correction", (
        base + f"; but only {n['per_minibatch_same_sign']:.1%} of mini-batch gradients (batch "
        f"{n['batch_size']}) are single-signed (on average {n['per_minibatch_majority_sign']:.0%} of their components "
        f"share the majority sign): the one-sign rule is exact per sample and weakened by averaging"
    )


@experiment("C10", quick_verdict="holds with a correction", opposite={"inputs": "tanh"})
def run_c10(ctx: Context, inputs: str = "sigmoid", batch_size: int = 64) -> Finding:
    """A 2-layer net (pixels -> 64 hidden units with activation `inputs` -> 10 classes) is trained
    with SGD on real images; at every step the weight gradients of the 10 output neurons, which are
    fed by the hidden activations, are checked for a single sign, per sample (delta_k * h, from the
    formula) and per mini-batch (autograd's gradient). The claim uses sigmoid hidden units; "tanh"
    (zero-centred) is the opposite evidence, and is always run as the reference."""
    torch.manual_seed(ctx.seed)
    data = lab_data(ctx.quick, n_train=ctx.size(None, 6000), seed=ctx.seed)
    x_all = data.spec().normalize(data.train_x).flatten(1)  # (N, C*H*W)
    y_all = data.train_y
    epochs = 2
    results = {}
    hists = {}
    for act in dict.fromkeys([inputs, "tanh"]):
        torch.manual_seed(ctx.seed)
        model = _mlp([x_all.shape[1], 64, data.num_classes], act)
        seen: dict[str, torch.Tensor] = {}  # the hidden activations h of the step's forward pass
        model[1].register_forward_hook(lambda module, args, out: seen.update(h=out))
        same_sample, agree_sample, same_batch, agree_batch = [], [], [], []
        max_check = 0.0

        def check_signs(s: Step) -> None:
            # plain SGD leaves the gradient it stepped with in .grad
            nonlocal max_check
            h = seen["h"].detach()  # (B, 64)
            with torch.no_grad():
                delta = (s.logits.softmax(1) - nn.functional.one_hot(s.y, data.num_classes)) / len(s.y)  # (B, K)
                per_sample = delta[:, :, None] * h[:, None, :]  # (B, K, 64): dL/dW_out per sample
                batch_grad = s.model[2].weight.grad  # (K, 64)
                max_check = max(max_check, float((per_sample.sum(0) - batch_grad).abs().max()))
                s1, a1 = sign_stats(per_sample)
                s2, a2 = sign_stats(batch_grad)
            same_sample.append(s1.flatten())
            agree_sample.append(a1.flatten())
            same_batch.append(s2.flatten())
            agree_batch.append(a2.flatten())

        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        train_small(model, None, opt, epochs=epochs, batches=Batches(x_all, y_all, batch_size, seed=ctx.seed), on_step=check_signs,
                    evaluate=False)  # fmt: skip
        results[act] = {
            "per_sample": float(torch.cat(same_sample).float().mean()),
            "per_batch": float(torch.cat(same_batch).float().mean()),
        }
        hists[act] = (torch.cat(agree_sample).numpy(), torch.cat(agree_batch).numpy())

    paths = {act: zigzag_path(act, 100, ctx.seed) for act in dict.fromkeys([inputs, "tanh"])}
    walk = {act: path_stats(p) for act, p in paths.items()}
    numbers = {
        "data": data.name,
        "inputs": inputs,
        "batch_size": batch_size,
        "epochs": epochs,
        "per_sample_same_sign": rounded(results[inputs]["per_sample"]),
        "per_minibatch_same_sign": rounded(results[inputs]["per_batch"]),
        "tanh_per_sample_same_sign": rounded(results["tanh"]["per_sample"]),
        "tanh_per_minibatch_same_sign": rounded(results["tanh"]["per_batch"]),
        "per_minibatch_majority_sign": rounded(float(hists[inputs][1].mean())),
        "tanh_per_minibatch_majority_sign": rounded(float(hists["tanh"][1].mean())),
        "zigzag_steps_same_sign": rounded(walk[inputs]["steps_same_sign"]),
        "zigzag_path_ratio": rounded(walk[inputs]["path_ratio"]),
        "zigzag_distance_left": rounded(walk[inputs]["distance_left"]),
        "tanh_zigzag_steps_same_sign": rounded(walk["tanh"]["steps_same_sign"]),
        "tanh_zigzag_path_ratio": rounded(walk["tanh"]["path_ratio"]),
        "tanh_zigzag_distance_left": rounded(walk["tanh"]["distance_left"]),
        "per_sample_formula_vs_autograd": float(f"{max_check:.2g}"),
    }

    fig, axes = new_figure(2, 1, size=(5.0, 4.2))
    a = axes[0, 0]
    bins = np.linspace(0.5, 1.0, 26)
    for act, (sample, batch) in hists.items():
        for values, label, ls in ((sample, "per sample", "-"), (batch, "per mini-batch", "--")):
            a.hist(values, bins=bins, density=True, histtype="step", lw=1.8, ls=ls, label=f"{act} inputs, {label}")
    a.set(
        title=f"output neurons' weight gradients ({data.name})",
        xlabel="fraction of components with the majority sign (1 = one sign)",
        ylabel="density",
    )
    a.legend(loc="upper left", fontsize=8)
    a = axes[0, 1]
    for act, p in paths.items():
        a.plot(p[:, 0], p[:, 1], marker=".", ms=3, lw=1, label=f"{act} inputs ({len(p) - 1} steps, {walk[act]['distance_left']:.2f} left)")
    a.plot([0, 1], [0, -1], color="grey", ls=":", lw=1)
    a.scatter([1], [-1], marker="*", s=150, color="k", zorder=5, label="w* = (1, -1)")
    a.set(title="SGD path of a 2-weight neuron", xlabel="w1", ylabel="w2", aspect="equal")
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    figure = save_figure(fig, ctx.figure_path("gradient_signs"))
    verdict, reason = judge_c10(numbers)
    return Finding(numbers, [figure], verdict, reason)


# ============================================================================ C11


_NEGATIVE_FNS = {
    "leaky_relu": (leaky_relu, leaky_relu_grad, "Leaky ReLU (slope 0.01)"),
    "elu": (elu, elu_grad, "ELU (alpha = 1)"),
}


def judge_c11(numbers: dict) -> tuple[str, str]:
    """Holds if the "unbounded" function keeps growing 10x per decade of input (f(-1000) / f(-100)
    within 1% of 10) and the "saturating" one is within 1e-6 of -alpha = -1 at x = -1000, with a
    derivative below 1e-6 there."""
    n = numbers
    u, s = n["unbounded_fn"], n["saturating_fn"]
    fu, fs = n["outputs"][u], n["outputs"][s]
    growth = fu[2] / fu[1] if fu[1] != 0 else float("inf")
    unbounded = abs(growth - 10) < 0.1
    saturates = abs(fs[2] - (-1.0)) < 1e-6 and abs(n["derivatives"][s][2]) < 1e-6
    if unbounded and saturates:
        return "holds", (
            f"{u}(-10, -100, -1000) = {fu[0]:g}, {fu[1]:g}, {fu[2]:g} (x10 per decade, derivative stays "
            f"{n['derivatives'][u][2]:g}); {s}(-1000) = {fs[2]:.10g}, within {abs(fs[2] + 1):.1e} of -alpha = -1"
        )
    what = []
    if not unbounded:
        what.append(f"{u} does not keep growing: f(-1000) / f(-100) = {growth:.4g}")
    if not saturates:
        what.append(f"{s} does not level off at -1: f(-1000) = {fs[2]:.6g}, f'(-1000) = {n['derivatives'][s][2]:.3g}")
    return "does not hold", "; ".join(what)


@experiment("C11", quick_verdict="holds", opposite={"unbounded": "elu", "saturating": "leaky_relu"})
def run_c11(ctx: Context, unbounded: str = "leaky_relu", saturating: str = "elu") -> Finding:
    """Both functions (and their hand-written derivatives) at -10, -100, -1000, in float64. The claim
    checks Leaky ReLU for unboundedness and ELU for saturation; swapping the two names is the
    opposite evidence."""
    probes = torch.tensor([-10.0, -100.0, -1000.0], dtype=torch.float64)
    outputs = {name: [float(v) for v in fn(probes)] for name, (fn, _, _) in _NEGATIVE_FNS.items()}
    derivs = {name: [float(v) for v in d(probes)] for name, (_, d, _) in _NEGATIVE_FNS.items()}
    torch_ref = {"leaky_relu": nn.functional.leaky_relu(probes, 0.01), "elu": nn.functional.elu(probes)}
    oracle = max(float((torch.tensor(outputs[k], dtype=torch.float64) - v).abs().max()) for k, v in torch_ref.items())
    if not oracle <= 1e-9:
        raise RuntimeError(f"the scratch activations disagree with torch's by {oracle}")
    numbers = {
        "unbounded_fn": unbounded,
        "saturating_fn": saturating,
        "inputs": [-10, -100, -1000],
        "outputs": {k: [float(f"{v:.12g}") for v in vs] for k, vs in outputs.items()},
        "derivatives": {k: [float(f"{v:.4g}") for v in vs] for k, vs in derivs.items()},
        "max_error_vs_torch": oracle,
        "elu_gap_to_minus_alpha_at_-10": float(f"{outputs['elu'][0] + 1:.4g}"),
    }

    fig, axes = new_figure(2, 1, size=(5.0, 3.8))
    t = torch.linspace(-10, 3, 1301, dtype=torch.float64)
    wide = -torch.logspace(0, 3, 200, dtype=torch.float64)
    for fn, _, label in _NEGATIVE_FNS.values():
        axes[0, 0].plot(t.numpy(), fn(t).numpy(), label=label)
        line = axes[0, 1].plot(-wide.numpy(), fn(wide).numpy(), label=label)[0]
        axes[0, 1].scatter(-probes.numpy(), fn(probes).numpy(), color=line.get_color(), zorder=5, s=20)
    for a in axes[0]:
        a.axhline(-1.0, color="grey", ls="--", lw=1)
        a.grid(alpha=0.3)
        a.legend()
    axes[0, 0].set(title="on [-10, 3] (dashed: -alpha = -1)", xlabel="x", ylabel="f(x)")
    axes[0, 1].set(title="for x = -1 ... -1000 (dots: -10, -100, -1000)", xlabel="-x (log scale)", ylabel="f(x)", xscale="log")
    figure = save_figure(fig, ctx.figure_path("negative_inputs"))
    verdict, reason = judge_c11(numbers)
    return Finding(numbers, [figure], verdict, reason)
