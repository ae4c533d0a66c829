"""C01, C02, C03, C04, C19: what convolutions buy (가중치 공유, 수용 영역, 3x3 합성곱 쌓기, 1x1 합성곱, 스킵 연결).

C01  an FC layer from an image to as many outputs as a conv layer makes needs n*h weights; the
     conv needs k*k*C_in*C_out because one kernel is used at every position. The conv *is* an FC
     layer whose big matrix repeats the kernel (a block-Toeplitz matrix): built, checked equal,
     its distinct values counted. A locally connected layer (same windows, no sharing) shows
     which part of the saving comes from locality and which from sharing.
C02  the receptive field per layer from the tracer of deepnotes.explain (analytic), from the
     textbook recursion r_l = r_{l-1} + (k_l - 1) * j_{l-1}, and from input gradients
     (measure_receptive_field), for conv stacks and for real models.
C03  n stacked 3x3 convs: 9n C^2 weights and a (2n+1)x(2n+1) field, against (2n+1)^2 C^2 for one
     big kernel; counted from modules, fields measured from gradients.
C04  GoogLeNet's Inception modules with and without the 1x1 reductions before the 3x3 / 5x5
     branches: parameters and multiply-adds per branch, per module and for the whole net.
C19  y = x + f(x) has dy/dx = f'(x) + 1 (checked by autograd), and the backward signal through
     CIFAR-form plain vs residual nets of the same depth at initialization, on real images.

Parameter counts of big layers come from modules built on the meta device (shapes without
memory), so a 4.8e11-weight FC layer is counted, not estimated.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.explain import conv_output_size, measure_receptive_field, summarize
from deepnotes.lab import Context, Finding, experiment
from deepnotes.lab.common import lab_data, new_figure, rounded, save_figure
from deepnotes.models import builder_accepts, create_model


def _weights(module: nn.Module) -> tuple[int, int]:
    """(weights, biases) of a module: parameters named *bias count as biases, the rest as weights."""
    w = b = 0
    for name, p in module.named_parameters():
        if name.endswith("bias"):
            b += p.numel()
        else:
            w += p.numel()
    return w, b


def _human(n: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:g}"


# ============================================================================ C01


class LocallyConnected2d(nn.Module):
    """A convolution without weight sharing: every output position (i, j) has its own
    C_out x C_in x k x k kernel (and its own bias), applied to the same window a conv would see.

    (B, C_in, H, W) -> (B, C_out, H_out, W_out), H_out = floor((H - k + 2p) / s) + 1.
    weight: (H_out * W_out, C_out, C_in * k * k), in F.unfold's (c, a, b) order.
    """

    def __init__(self, in_chans: int, out_chans: int, in_size: tuple[int, int], kernel: int, padding: int = 0, stride: int = 1):
        super().__init__()
        self.in_chans, self.out_chans, self.kernel, self.padding, self.stride = in_chans, out_chans, kernel, padding, stride
        self.out_size = tuple(conv_output_size(n, kernel, padding, stride) for n in in_size)
        positions = self.out_size[0] * self.out_size[1]
        fan_in = in_chans * kernel * kernel
        self.weight = nn.Parameter(torch.empty(positions, out_chans, fan_in))
        self.bias = nn.Parameter(torch.empty(out_chans, *self.out_size))
        bound = 1 / math.sqrt(fan_in)  # nn.Conv2d's default scale
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def kernel_at(self, i: int, j: int) -> torch.Tensor:
        """The (C_out, C_in, k, k) kernel used at output position (i, j)."""
        k = self.kernel
        return self.weight[i * self.out_size[1] + j].reshape(self.out_chans, self.in_chans, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cols = F.unfold(x, self.kernel, padding=self.padding, stride=self.stride)  # (B, C_in*k*k, L)
        out = torch.einsum("bil,loi->bol", cols, self.weight)  # (B, C_out, L): each position its own kernel
        return out.reshape(len(x), self.out_chans, *self.out_size) + self.bias  # (B, C_out, H_out, W_out)


def expanded_matrix(layer: nn.Conv2d | LocallyConnected2d, in_shape: tuple[int, int, int]) -> np.ndarray:
    """The (C_out*H_out*W_out, C_in*H*W) matrix M with layer(x).flatten() = M @ x.flatten() + bias.

    Row (o, i, j) holds, at the columns of the input pixels in the window of output (i, j), the
    kernel used there: for a conv the same kernel in every row (a block-Toeplitz matrix; its
    distinct values are the kernel's), for a locally connected layer a different one per row.
    Built by placing kernel values, not by probing the layer, so that equal outputs are a check.
    """
    c_in, h, w = in_shape
    k, p, s = (layer.kernel, layer.padding, layer.stride) if isinstance(layer, LocallyConnected2d) else (
        layer.kernel_size[0], layer.padding[0], layer.stride[0])  # fmt: skip
    c_out = layer.out_chans if isinstance(layer, LocallyConnected2d) else layer.out_channels
    ho, wo = conv_output_size(h, k, p, s), conv_output_size(w, k, p, s)
    m = np.zeros((c_out * ho * wo, c_in * h * w))
    out_ch = np.arange(c_out)[:, None] * ho * wo
    in_ch = np.arange(c_in)[None, :] * h * w
    shared = layer.weight.detach().double().numpy() if isinstance(layer, nn.Conv2d) else None
    for i in range(ho):
        for j in range(wo):
            kern = shared if shared is not None else layer.kernel_at(i, j).detach().double().numpy()
            for a in range(k):
                for b in range(k):
                    r, c = i * s - p + a, j * s - p + b
                    if 0 <= r < h and 0 <= c < w:  # outside: the window lies on the zero padding
                        m[out_ch + i * wo + j, in_ch + r * w + c] = kern[:, :, a, b]
    return m


# The inputs of the claim: (name, (C, H, W), C_out of the 3x3 "same" conv).
C01_INPUTS = (("Fashion-MNIST", (1, 28, 28), 32), ("ImageNet", (3, 224, 224), 64))


def judge_c01(numbers: dict) -> tuple[str, str]:
    """Holds if, for every input, the counted weights of nn.Linear are n*h and those of the layer
    under test are k*k*C_in*C_out (the claim's formula, exactly), and the layer equals an FC layer
    whose matrix (checked to reproduce its outputs on real images to 1e-9 relative, float64) holds
    only k*k*C_in*C_out distinct non-zero values: one kernel shared by every position."""
    n = numbers
    fc_ok = all(r["fc_weights"] == r["n"] * r["h"] for r in n["inputs"])
    formula_ok = all(r["layer_weights"] == r["claimed_conv_weights"] for r in n["inputs"])
    equal = n["expanded_rel_error"] < 1e-9
    shared = n["expanded_distinct_values"] == n["expanded_kernel_weights"]
    if fc_ok and formula_ok and equal and shared:
        big = n["inputs"][-1]
        return "holds", (
            f"on {big['input']} ({big['name']}) an FC layer to the {_human(big['h'])} outputs of a 3x3 conv "
            f"with {big['c_out']} maps needs n*h = {_human(big['fc_weights'])} weights, the conv "
            f"k*k*C_in*C_out = {big['layer_weights']:,} ({_human(big['fc_weights'] / big['layer_weights'])}x fewer); "
            f"without sharing (locally connected) it would be {_human(big['local_weights'])}, so sharing alone saves "
            f"{_human(big['local_weights'] / big['layer_weights'])}x. The conv equals an FC layer whose "
            f"{n['expanded_shape'][0]}x{n['expanded_shape'][1]} matrix (error {n['expanded_rel_error']:.1e}) has "
            f"{n['expanded_nonzeros']:,} non-zeros but only {n['expanded_distinct_values']} distinct values"
        )
    what = []
    if not fc_ok:
        what.append("nn.Linear's count differs from n*h")
    if not formula_ok:
        r = n["inputs"][-1]
        what.append(
            f"the {n['layer']} layer needs {r['layer_weights']:,} weights on {r['input']}, not "
            f"k*k*C_in*C_out = {r['claimed_conv_weights']:,} (x{r['layer_weights'] / r['claimed_conv_weights']:.0f})"
        )
    if not equal:
        what.append(f"the expanded matrix misses the layer's outputs by {n['expanded_rel_error']:.2g} (relative)")
    if not shared:
        what.append(
            f"its FC-equivalent matrix holds {n['expanded_distinct_values']:,} distinct values, not "
            f"{n['expanded_kernel_weights']} (each position has its own kernel: nothing is shared)"
        )
    return "does not hold", "; ".join(what)


@experiment("C01", quick_verdict="holds", opposite={"layer": "local"})
def run_c01(ctx: Context, layer: str = "conv", kernel: int = 3, expanded_maps: int = 4) -> Finding:
    """layer="conv" (the claim) or "local" (a locally connected layer: the same windows with an own
    kernel per position, the opposite evidence). Counts for 1x28x28 and 3x224x224 inputs; the
    FC-equivalent matrix of the layer (with `expanded_maps` output maps) is built for the lab's
    images (digits 8x8 quick, Fashion-MNIST 28x28 full) and checked on a batch of them."""
    if layer not in ("conv", "local"):
        raise ValueError(f"layer is 'conv' or 'local', got {layer!r}")
    pad = kernel // 2
    rows = []
    for name, (c, h, w), c_out in C01_INPUTS:
        with torch.device("meta"):
            fc = nn.Linear(c * h * w, c_out * h * w)
            conv = nn.Conv2d(c, c_out, kernel, padding=pad)
            local = LocallyConnected2d(c, c_out, (h, w), kernel, padding=pad)
        tested = conv if layer == "conv" else local
        rows.append({
            "name": name, "input": f"{c}x{h}x{w}", "c_out": c_out, "n": c * h * w, "h": c_out * h * w,
            "fc_weights": _weights(fc)[0], "fc_biases": _weights(fc)[1],
            "conv_weights": _weights(conv)[0], "conv_biases": _weights(conv)[1],
            "local_weights": _weights(local)[0], "local_biases": _weights(local)[1],
            "layer_weights": _weights(tested)[0],
            "claimed_conv_weights": kernel * kernel * c * c_out,
        })  # fmt: skip

    data = lab_data(ctx.quick, n_train=64, seed=ctx.seed)
    x = data.spec().normalize(data.train_x).double()  # (B, C, H, W) real images
    shape = tuple(x.shape[1:])
    torch.manual_seed(ctx.seed)
    if layer == "conv":
        probe: nn.Conv2d | LocallyConnected2d = nn.Conv2d(shape[0], expanded_maps, kernel, padding=pad).double()
    else:
        probe = LocallyConnected2d(shape[0], expanded_maps, shape[1:], kernel, padding=pad).double()
    m = expanded_matrix(probe, shape)
    with torch.no_grad():
        y = probe(x).flatten(1).numpy()  # (B, C_out*H*W)
    bias = np.repeat(probe.bias.detach().numpy(), shape[1] * shape[2]) if layer == "conv" else probe.bias.detach().numpy().flatten()
    y_fc = x.flatten(1).numpy() @ m.T + bias
    err = float(np.abs(y - y_fc).max() / np.abs(y).max())
    nonzero = m[m != 0]
    numbers = {
        "layer": layer,
        "kernel": kernel,
        "inputs": rows,
        "data": data.name,
        "expanded_input": "x".join(map(str, shape)),
        "expanded_shape": list(m.shape),
        "expanded_rel_error": float(f"{err:.3g}"),
        "expanded_nonzeros": int(nonzero.size),
        "expanded_zero_fraction": rounded(1 - nonzero.size / m.size),
        "expanded_distinct_values": int(np.unique(nonzero).size),
        "expanded_kernel_weights": kernel * kernel * shape[0] * expanded_maps,
        "expanded_layer_weights": _weights(probe)[0],
    }

    # figure 1: counts, log scale
    fig, axes = new_figure(1, 1, size=(7.0, 4.2))
    a = axes[0, 0]
    kinds = (("fc_weights", "FC (n*h)", "C3"), ("local_weights", "locally connected\n(no sharing)", "C1"),
             ("conv_weights", f"conv {kernel}x{kernel} (shared)", "C0"))  # fmt: skip
    xs = np.arange(len(rows))
    for t, (key, label, color) in enumerate(kinds):
        vals = [r[key] for r in rows]
        bars = a.bar(xs + (t - 1) * 0.27, vals, 0.25, label=label.replace("\n", " "), color=color)
        for bar, v in zip(bars, vals):
            a.annotate(_human(v), (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=8)
    a.set_xticks(xs, [f"{r['name']} {r['input']}\n-> {r['c_out']} maps, same size" for r in rows])
    a.set(yscale="log", ylabel="weights (log scale)", title="weights to make the same outputs: FC vs conv")
    a.set_ylim(1, max(r["fc_weights"] for r in rows) * 30)
    a.legend(loc="upper left", fontsize=8)
    a.grid(alpha=0.3, axis="y")
    counts = save_figure(fig, ctx.figure_path("parameter_counts"))

    # figure 2: the FC-equivalent matrices of a toy 1x6x6 input, 1 output map
    toy = (1, 6, 6)
    conv_toy = nn.Conv2d(1, 1, kernel, padding=pad).double()
    with torch.no_grad():
        conv_toy.weight.copy_(torch.arange(1, kernel * kernel + 1, dtype=torch.float64).reshape(1, 1, kernel, kernel))
    torch.manual_seed(ctx.seed)
    local_toy = LocallyConnected2d(1, 1, toy[1:], kernel, padding=pad).double()
    fig, axes = new_figure(2, 1, size=(4.6, 4.6))
    for a, (lay, title) in zip(axes[0], ((conv_toy, "conv: one 3x3 kernel (values 1-9)"), (local_toy, "locally connected: own kernel per row"))):
        mt = expanded_matrix(lay, toy)
        shown = np.ma.masked_equal(mt, 0)
        im = a.imshow(shown, cmap="viridis" if lay is conv_toy else "coolwarm", interpolation="nearest")
        distinct = np.unique(mt[mt != 0]).size
        a.set(title=f"{title}\n{mt.shape[0]}x{mt.shape[1]} matrix, {distinct} distinct values", xlabel="input pixel (6x6, row-major)",
              ylabel="output unit")  # fmt: skip
        a.title.set_fontsize(9)
        fig.colorbar(im, ax=a, fraction=0.046)
    fig.suptitle("a conv is an FC layer with a repeated, mostly-zero weight matrix (blank = 0)")
    matrices = save_figure(fig, ctx.figure_path("expanded_matrix"))
    verdict, reason = judge_c01(numbers)
    return Finding(numbers, [counts, matrices], verdict, reason)


# ============================================================================ C02 / C03 helpers


def conv_stack(kernels: Sequence[int], strides: Sequence[int] | None = None, dilations: Sequence[int] | None = None,
               channels: int = 1) -> nn.Sequential:  # fmt: skip
    """conv1, relu1, conv2, relu2, ...: channels -> channels convs with "same" padding d(k-1)/2."""
    strides = strides or [1] * len(kernels)
    dilations = dilations or [1] * len(kernels)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for i, (k, s, d) in enumerate(zip(kernels, strides, dilations), start=1):
        layers[f"conv{i}"] = nn.Conv2d(channels, channels, k, s, padding=d * (k - 1) // 2, dilation=d)
        layers[f"relu{i}"] = nn.ReLU()
    return nn.Sequential(layers)


def rf_formula(kernels: Sequence[int], strides: Sequence[int] | None = None, dilations: Sequence[int] | None = None) -> list[int]:
    """The textbook recursion, per layer: r_l = r_{l-1} + d_l (k_l - 1) j_{l-1}, j_l = j_{l-1} s_l."""
    strides = strides or [1] * len(kernels)
    dilations = dilations or [1] * len(kernels)
    r, j, out = 1, 1, []
    for k, s, d in zip(kernels, strides, dilations):
        r += d * (k - 1) * j
        j *= s
        out.append(r)
    return out


def fields(model: nn.Module, input_size: tuple[int, ...], layers: Sequence[str]) -> list[dict]:
    """For each layer: the analytic field of its centre unit (explain.summarize, clipped to the
    input) and the one measured from input gradients (explain.measure_receptive_field).
    Overwrites the model's weights (the measurement makes it a probe)."""
    s = summarize(model, input_size)
    measured = measure_receptive_field(model, input_size, list(layers))
    out = []
    for name, f in zip(layers, measured):
        row = s.row(name)
        analytic = row.field_of(f.unit, input_size[1:])
        out.append({
            "layer": name, "rf": int(row.receptive_field[0]), "jump": int(row.jump[0]),
            "analytic_extent": [list(e) for e in analytic], "measured_extent": [list(e) for e in f.extent],
            "measured_size": int(f.size[0]),
        })  # fmt: skip
    return out


def footprint(model: nn.Sequential, input_size: tuple[int, ...], layer: str) -> np.ndarray:
    """|d unit / d input| (H, W) for the centre unit of `layer` (all its channels summed), with the
    measurement's probe weights: every kernel weight 1/fan_in, biases 0, float64, all-ones input.
    The shape shows how much each input pixel counts, not just whether it counts."""
    probe = model.double()
    for m in probe.modules():
        if isinstance(m, nn.Conv2d):
            with torch.no_grad():
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
    x = torch.ones((1, *input_size), dtype=torch.float64, requires_grad=True)
    h = x
    for name, mod in probe.named_children():
        h = mod(h)
        if name == layer:
            break
    hh, ww = h.shape[-2:]
    (g,) = torch.autograd.grad(h[0, :, (hh - 1) // 2, (ww - 1) // 2].sum(), x)
    return g[0].abs().sum(0).numpy()


def _footprint_std(fp: np.ndarray) -> float:
    """Standard deviation (pixels) of the footprint's mass along the rows: the 'effective' half-width."""
    p = fp.sum(1) / fp.sum()
    i = np.arange(len(p))
    mu = (p * i).sum()
    return float(np.sqrt((p * (i - mu) ** 2).sum()))


# ============================================================================ C02


def judge_c02(numbers: dict) -> tuple[str, str]:
    """Holds if (1) analytic == measured everywhere: for every stack layer the tracer's field, the
    textbook recursion and the gradient footprint agree, and for every layer of the real models the
    analytic and measured extents (first and last input row/column, clipped to the input) are
    identical; (2) the field grows strictly with depth for every kernel size, and strictly with the
    kernel size at every depth; (3) with stride 1 it grows by exactly k-1 per layer, and by 2(k-1)
    per layer after the stride-2 layer."""
    n = numbers
    mismatch, flat, slow = [], [], []
    for cfg, per_k in n["stacks"].items():
        stride_at = n["stride2_at"] if cfg == "stride2" else None
        for k_str, r in per_k.items():
            k = int(k_str)
            if not (r["analytic"] == r["measured"] == r["formula"]):
                mismatch.append(f"{cfg} k={k}")
            rf = r["analytic"]
            if any(b <= a for a, b in itertools.pairwise(rf)):
                flat.append(f"k={k} ({cfg}: {rf[:4]}...)")
            steps = [b - a for a, b in zip([1] + rf, rf)]
            want = [(k - 1) * (2 if stride_at is not None and i > stride_at else 1) for i in range(1, len(rf) + 1)]
            if steps != want:
                slow.append(f"{cfg} k={k}: steps {steps[:4]}... instead of {want[:4]}...")
    for name, mdl in n["models"].items():
        if mdl["extents_equal"] != mdl["layers_checked"]:
            mismatch.append(f"{name} ({mdl['layers_checked'] - mdl['extents_equal']} layers)")
    ks = sorted(int(k) for k in n["stacks"]["stride1"])
    kernel_order = all(
        all(n["stacks"][cfg][str(a)]["analytic"][d] < n["stacks"][cfg][str(b)]["analytic"][d] for a, b in itertools.pairwise(ks))
        for cfg in n["stacks"] for d in range(n["depth"])
    )  # fmt: skip
    if not (mismatch or flat or slow) and kernel_order:
        s1 = n["stacks"]["stride1"]
        s2 = n["stacks"]["stride2"]
        models = "; ".join(
            f"{m}: {d['extents_equal']}/{d['layers_checked']} layers equal, RF of the last one {d['last_rf']}"
            + (f" (clipped by the {d['input']} input)" if d["last_rf"] > int(d["input"].split("x")[-1]) else "")
            for m, d in n["models"].items()
        )
        return "holds", (
            f"analytic == formula == measured for every layer of {len(s1) + len(s2)} stacks; RF = 1 + depth*(k-1) with "
            + ", ".join(f"k={k}: {s1[str(k)]['analytic'][-1]}" for k in ks)
            + f" at depth {n['depth']}; a stride-2 layer at {n['stride2_at']} doubles every later step ("
            + ", ".join(f"{s2[str(k)]['analytic'][-1]}" for k in ks)
            + f"); {models}. The gradient footprint is peaked, not flat: its std grows like "
            f"depth^{n['footprint_growth_exponent']:.2f} (k=3), the theoretical RF like depth^1"
        )
    what = []
    if mismatch:
        what.append("analytic and measured fields differ for " + ", ".join(mismatch))
    if flat:
        what.append("the field does not grow with depth for " + ", ".join(flat))
    if not kernel_order:
        what.append("a larger kernel does not give a larger field at every depth")
    if slow and not flat:
        what.append("; ".join(slow))
    return "does not hold", "; ".join(what)


@experiment("C02", quick_verdict="holds", opposite={"kernel_sizes": (1,)})
def run_c02(ctx: Context, kernel_sizes: Sequence[int] = (3, 5, 7), depth: int | None = None, stride2_at: int = 2,
            models: Sequence[str] | None = None) -> Finding:  # fmt: skip
    """Stacks of `depth` convs (kernel k, "same" padding) for each k in kernel_sizes, all stride 1
    and with a stride-2 layer at position `stride2_at`; and the conv/pool layers of real models
    (quick: vgg11, resnet18 at 3x64x64; full: vgg16, resnet18 at 3x224x224), built at a
    fraction of their width (the field does not depend on the number of channels).
    kernel_sizes=(1,) is the opposite evidence: the field never grows."""
    depth = depth or ctx.size(6, 10)
    models = tuple(models) if models is not None else ctx.size(("vgg11", "resnet18"), ("vgg16", "resnet18"))
    kernel_sizes = sorted(int(k) for k in kernel_sizes)
    names = [f"conv{i}" for i in range(1, depth + 1)]
    configs = {"stride1": [1] * depth, "stride2": [2 if i == stride2_at else 1 for i in range(1, depth + 1)]}
    stacks: dict[str, dict[str, dict]] = {}
    for cfg, strides in configs.items():
        stacks[cfg] = {}
        for k in kernel_sizes:
            formula = rf_formula([k] * depth, strides)
            side = formula[-1] + 8  # the centre unit's whole field fits, so the sizes are not clipped
            torch.manual_seed(ctx.seed)
            rows = fields(conv_stack([k] * depth, strides), (1, side, side), names)
            extents_ok = all(r["analytic_extent"] == r["measured_extent"] for r in rows)
            stacks[cfg][str(k)] = {
                "analytic": [r["rf"] for r in rows],
                "measured": [r["measured_size"] if extents_ok else -1 for r in rows],
                "formula": formula,
                "input": side,
            }

    side, width = ctx.size((64, 1 / 16), (224, 1 / 8))
    model_results = {}
    for name in models:
        kwargs = {"width": width} if builder_accepts(name, "width") else {}
        if builder_accepts(name, "fc_width"):
            kwargs["fc_width"] = 64  # the classifier is not what is measured
        torch.manual_seed(ctx.seed)
        model = create_model(name, **kwargs)
        s = summarize(model, (3, side, side))
        layers = [r.name for r in s.rows if r.kind in ("Conv2d", "MaxPool2d") and r.call == 1 and not r.is_global]
        rows = fields(model, (3, side, side), layers)
        model_results[name] = {
            "input": f"3x{side}x{side}",
            "width": rounded(width),
            "layers_checked": len(rows),
            "extents_equal": sum(r["analytic_extent"] == r["measured_extent"] for r in rows),
            "rf": [r["rf"] for r in rows],
            "analytic_size_in_input": [r["analytic_extent"][0][1] - r["analytic_extent"][0][0] + 1 for r in rows],
            "measured_size": [r["measured_size"] for r in rows],
            "last_rf": rows[-1]["rf"],
            "layer_names": [r["layer"] for r in rows],
        }

    # footprints of the k=3 (or smallest kernel) stride-1 stack at a few depths
    k0 = 3 if 3 in kernel_sizes else kernel_sizes[0]
    show = sorted({1, 2, max(1, depth // 2), depth})
    side0 = rf_formula([k0] * depth)[-1] + 8
    prints = {d: footprint(conv_stack([k0] * depth), (1, side0, side0), f"conv{d}") for d in show}
    stds = {d: _footprint_std(fp) for d, fp in prints.items()}
    ds = np.array([d for d in show if stds[d] > 0], dtype=float)
    expo = float(np.polyfit(np.log(ds), np.log([stds[int(d)] for d in ds]), 1)[0]) if len(ds) >= 2 else 0.0
    numbers = {
        "kernel_sizes": kernel_sizes,
        "depth": depth,
        "stride2_at": stride2_at,
        "stacks": stacks,
        "models": model_results,
        "footprint_kernel": k0,
        "footprint_depths": show,
        "footprint_std": rounded([stds[d] for d in show], 3),
        "footprint_growth_exponent": rounded(expo, 3),
    }

    fig, axes = new_figure(3, 1, size=(4.4, 3.8))
    depths = np.arange(1, depth + 1)
    for a, (cfg, title) in zip(axes[0], (("stride1", "all stride 1"), ("stride2", f"stride 2 at layer {stride2_at}"))):
        for t, k in enumerate(kernel_sizes):
            r = stacks[cfg][str(k)]
            a.plot(depths, r["analytic"], color=f"C{t}", label=f"{k}x{k} analytic")
            a.plot(depths, r["measured"], "o", color=f"C{t}", mfc="none", ms=7, label=f"{k}x{k} measured")
        if cfg == "stride2":
            a.axvline(stride2_at, color="grey", ls=":", lw=1)
        a.set(title=f"conv stacks, {title}", xlabel="depth (conv layers)", ylabel="receptive field (pixels)")
        a.legend(fontsize=7)
        a.grid(alpha=0.3)
    a = axes[0, 2]
    for t, (name, mr) in enumerate(model_results.items()):
        idx = np.arange(1, len(mr["rf"]) + 1)
        a.plot(idx, mr["rf"], color=f"C{t + 3}", lw=0.8, ls=":", label=f"{name} analytic RF")
        a.plot(idx, mr["analytic_size_in_input"], color=f"C{t + 3}", label=f"{name} analytic, inside the input")
        a.plot(idx, mr["measured_size"], "o", color=f"C{t + 3}", mfc="none", ms=5, label=f"{name} measured")
    a.axhline(side, color="grey", ls="--", lw=1)
    a.set(title=f"real models at 3x{side}x{side}: conv/pool layers", xlabel="layer index (execution order)",
          ylabel="field of the centre unit (pixels)", yscale="log")  # fmt: skip
    a.legend(fontsize=7)
    a.grid(alpha=0.3)
    fig.suptitle("receptive field: lines analytic, circles measured from input gradients")
    growth = save_figure(fig, ctx.figure_path("rf_vs_depth"))

    fig, axes = new_figure(len(show), 1, size=(2.6, 2.9))
    for a, d in zip(axes[0], show):
        fp = prints[d]
        a.imshow(fp / fp.max(), cmap="magma", vmin=0, vmax=1)
        rf = stacks["stride1"][str(k0)]["analytic"][d - 1]
        c = (side0 - 1) // 2
        a.add_patch(_rect(c - rf // 2 - 0.5, rf))
        a.set_title(f"depth {d}: RF {rf}, std {stds[d]:.2f}", fontsize=9)
        a.axis("off")
    fig.suptitle(f"|d unit / d input| of the centre unit, {k0}x{k0} stack (box: analytic RF)", fontsize=10)
    prints_fig = save_figure(fig, ctx.figure_path("gradient_footprints"))
    verdict, reason = judge_c02(numbers)
    return Finding(numbers, [growth, prints_fig], verdict, reason)


def _rect(lo: float, size: int):
    from matplotlib.patches import Rectangle

    return Rectangle((lo, lo), size, size, fill=False, edgecolor="cyan", lw=1.2, ls="--")


# ============================================================================ C03

# n stacked 3x3 convs -> (receptive field, weights / C^2) vs one conv of that size, as the notes state them.
C03_CLAIMED = {2: (5, 18, 25), 3: (7, 27, 49)}


def judge_c03(numbers: dict) -> tuple[str, str]:
    """Holds if, for two and three stacked convs and every channel count C: the stack's counted
    weights are exactly 18C^2 / 27C^2, one 5x5 / 7x7 conv's exactly 25C^2 / 49C^2, and the
    stack's receptive field measured from input gradients is 5 / 7, equal to the single conv's."""
    n = numbers
    bad = []
    for depth_str, row in n["claims"].items():
        rf, stack_per_c2, single_per_c2 = C03_CLAIMED[int(depth_str)]
        cs = sorted(int(c) for c in row["counts"])
        stack_off = [c for c in cs if row["counts"][str(c)]["stack_weights"] != stack_per_c2 * c * c]
        single_off = [c for c in cs if row["counts"][str(c)]["single_weights"] != single_per_c2 * c * c]
        if stack_off:
            c = stack_off[0]
            bad.append(f"{depth_str} stacked layers have {row['counts'][str(c)]['stack_weights'] / (c * c):g}C^2 weights, "
                       f"not {stack_per_c2}C^2 (C={', '.join(map(str, stack_off))})")  # fmt: skip
        if single_off:
            c = single_off[0]
            bad.append(f"one {rf}x{rf} conv has {row['counts'][str(c)]['single_weights'] / (c * c):g}C^2 weights, not {single_per_c2}C^2")
        if row["stack_rf_measured"] != rf or row["single_rf_measured"] != rf:
            bad.append(
                f"{depth_str} stacked layers see {row['stack_rf_measured']}x{row['stack_rf_measured']} "
                f"(one {rf}x{rf} conv: {row['single_rf_measured']}), not {rf}x{rf}"
            )
    if not bad:
        c2, c3 = n["claims"]["2"], n["claims"]["3"]
        big = str(max(int(c) for c in c2["counts"]))
        return "holds", (
            f"counted from modules: 2 stacked {n['kernel']}x{n['kernel']} convs {c2['counts'][big]['stack_weights']:,} weights "
            f"vs one 5x5 {c2['counts'][big]['single_weights']:,} (C={big}: 18C^2 vs 25C^2), 3 stacked "
            f"{c3['counts'][big]['stack_weights']:,} vs one 7x7 {c3['counts'][big]['single_weights']:,} (27C^2 vs 49C^2); "
            f"biases {c2['counts'][big]['stack_biases']} vs {c2['counts'][big]['single_biases']} (2C vs C, negligible); "
            f"measured fields 5 and 7 for both; the stacks add {c2['relus']} and {c3['relus']} ReLUs instead of 1. "
            f"Weighting differs: the stacked field counts its centre {c2['stack_centre_to_corner']:.0f}x its corners "
            f"(the single conv 1x)"
        )
    return "does not hold", "; ".join(bad)


@experiment("C03", quick_verdict="holds", opposite={"kernel": 1})
def run_c03(ctx: Context, kernel: int = 3, dilation: int = 1, channels: Sequence[int] = (64, 512), max_depth: int = 5) -> Finding:
    """Stacks of n `kernel`x`kernel` convs (C -> C, "same" padding, `dilation`) for n = 1..max_depth
    against one conv of size 2n+1: weights and biases counted from modules (meta device) for each C
    in `channels`, receptive fields measured from gradients (1 channel: the field does not depend
    on C), multiply-adds at 64@56x56 from explain.summarize. kernel=1 (1x1 stacks) or dilation=2
    are the opposite evidence."""
    counts: dict[str, dict[str, dict]] = {}
    per_c2 = {"stack": [], "single": []}
    for n_layers in range(1, max_depth + 1):
        big = 2 * n_layers + 1
        counts[str(n_layers)] = {}
        for c in channels:
            with torch.device("meta"):
                stack = conv_stack([kernel] * n_layers, dilations=[dilation] * n_layers, channels=c)
                single = nn.Conv2d(c, c, big, padding=big // 2)
            sw, sb = _weights(stack)
            gw, gb = _weights(single)
            counts[str(n_layers)][str(c)] = {"stack_weights": sw, "stack_biases": sb, "single_weights": gw, "single_biases": gb}
        c = channels[0]
        per_c2["stack"].append(counts[str(n_layers)][str(c)]["stack_weights"] / c**2)
        per_c2["single"].append(counts[str(n_layers)][str(c)]["single_weights"] / c**2)

    stack_rf, single_rf = [], []
    side = 2 * rf_formula([kernel] * max_depth, dilations=[dilation] * max_depth)[-1] + 9
    torch.manual_seed(ctx.seed)
    stack_fields = fields(conv_stack([kernel] * max_depth, dilations=[dilation] * max_depth), (1, side, side),
                          [f"conv{i}" for i in range(1, max_depth + 1)])  # fmt: skip
    stack_rf = [r["measured_size"] for r in stack_fields]
    for n_layers in range(1, max_depth + 1):
        big = 2 * n_layers + 1
        single_rf.append(fields(conv_stack([big]), (1, side, side), ["conv1"])[0]["measured_size"])

    claims = {}
    for n_layers in C03_CLAIMED:
        big = 2 * n_layers + 1
        fp = footprint(conv_stack([kernel] * n_layers, dilations=[dilation] * n_layers), (1, side, side), f"conv{n_layers}")
        nz = np.argwhere(fp > 0)
        corner = fp[tuple(nz.min(0))] if len(nz) else 0.0
        centre = fp[(side - 1) // 2, (side - 1) // 2]
        claims[str(n_layers)] = {
            "counts": {str(c): counts[str(n_layers)][str(c)] for c in channels},
            "stack_rf_measured": stack_rf[n_layers - 1],
            "single_rf_measured": single_rf[n_layers - 1],
            "relus": n_layers,
            "stack_centre_to_corner": rounded(float(centre / corner) if corner else float("inf"), 4),
        }
    c = 64
    with torch.device("meta"):
        macs_stack = summarize(conv_stack([kernel] * 2, dilations=[dilation] * 2, channels=c), (c, 56, 56)).total_macs
        macs_single = summarize(nn.Conv2d(c, c, 5, padding=2), (c, 56, 56)).total_macs
    numbers = {
        "kernel": kernel,
        "dilation": dilation,
        "channels": list(channels),
        "claims": claims,
        "depths": list(range(1, max_depth + 1)),
        "stack_weights_per_c2": rounded(per_c2["stack"]),
        "single_weights_per_c2": rounded(per_c2["single"]),
        "stack_rf_measured": stack_rf,
        "single_rf_measured": single_rf,
        "macs_at_64x56x56": {"two_stacked": macs_stack, "one_5x5": macs_single},
    }

    fig, axes = new_figure(2, 1, size=(4.8, 3.8))
    a = axes[0, 0]
    ds = np.arange(1, max_depth + 1)
    a.bar(ds - 0.2, per_c2["stack"], 0.38, label=f"n stacked {kernel}x{kernel}" + (f" (dilation {dilation})" if dilation > 1 else ""))
    a.bar(ds + 0.2, per_c2["single"], 0.38, label="one (2n+1)x(2n+1)")
    for d in C03_CLAIMED:
        a.annotate(f"{per_c2['stack'][d - 1]:g} vs {per_c2['single'][d - 1]:g}", (d, per_c2["single"][d - 1]), ha="center",
                   va="bottom", fontsize=8)  # fmt: skip
    a.set(title="weights per C^2 (biases: n*C vs C)", xlabel="n (stacked layers)", ylabel="weights / C^2", xticks=ds)
    a.legend(fontsize=8)
    a.grid(alpha=0.3, axis="y")
    a = axes[0, 1]
    a.plot(ds, 2 * ds + 1, color="grey", ls="--", label="2n+1")
    a.plot(ds, stack_rf, "o-", label=f"n stacked {kernel}x{kernel}, measured")
    a.plot(ds, single_rf, "s", mfc="none", ms=9, label="one (2n+1)x(2n+1), measured")
    a.set(title="receptive field from input gradients", xlabel="n (stacked layers)", ylabel="receptive field (pixels)", xticks=ds)
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    counts_fig = save_figure(fig, ctx.figure_path("weights_and_fields"))

    fig, axes = new_figure(4, 1, size=(2.4, 2.7))
    crop = 5
    c0 = (side - 1) // 2
    panels = []
    for n_layers in C03_CLAIMED:
        big = 2 * n_layers + 1
        panels.append((f"{n_layers} x {kernel}x{kernel}", footprint(conv_stack([kernel] * n_layers, dilations=[dilation] * n_layers),
                                                                     (1, side, side), f"conv{n_layers}")))  # fmt: skip
        panels.append((f"one {big}x{big}", footprint(conv_stack([big]), (1, side, side), "conv1")))
    for a, (title, fp) in zip(axes[0], panels):
        view = fp[c0 - crop : c0 + crop + 1, c0 - crop : c0 + crop + 1]
        a.imshow(view / view.max(), cmap="magma", vmin=0, vmax=1)
        a.set_title(title, fontsize=9)
        a.axis("off")
    fig.suptitle("how much each input pixel counts for one output unit (uniform probe weights, 11x11 crop)", fontsize=10)
    prints_fig = save_figure(fig, ctx.figure_path("footprints"))
    verdict, reason = judge_c03(numbers)
    return Finding(numbers, [counts_fig, prints_fig], verdict, reason)


# ============================================================================ C04


class NoReductionInception(nn.Module):
    """An Inception module without the 1x1 "reduce" convs: the 3x3 and 5x5 convs read all input
    channels. Same outputs as googlenet.Inception (the pool projection is kept, so the output
    width, and every later layer, stay the same; the paper's "naive" module, figure 2a, also
    drops that projection and passes all input channels on)."""

    def __init__(self, in_chans: int, spec, branch3_kernel: int = 5):
        super().__init__()
        from deepnotes.models.googlenet import BasicConv2d

        s = spec
        self.branch1 = BasicConv2d(in_chans, s.ch1x1, 1)
        self.branch2 = BasicConv2d(in_chans, s.ch3x3, 3, padding=1)
        self.branch3 = BasicConv2d(in_chans, s.ch5x5, branch3_kernel, padding=branch3_kernel // 2)
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), BasicConv2d(in_chans, s.pool_proj, 1))
        self.out_chans = s.ch1x1 + s.ch3x3 + s.ch5x5 + s.pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)  # (B, out_chans, H, W)


def inception_inputs() -> dict[str, tuple[int, int]]:
    """Each Inception module of Table 1 -> (input channels, map side at 224x224 input)."""
    from deepnotes.models.googlenet import TABLE_1, InceptionSpec

    c, side, out = 192, 28, {}
    for name, spec in TABLE_1:
        if isinstance(spec, InceptionSpec):
            out[name] = (c, side)
            c = spec.ch1x1 + spec.ch3x3 + spec.ch5x5 + spec.pool_proj
        else:
            side //= 2
    return out


def _with_reduce(spec, in_chans: int, factor: float | None):
    """Table 1's spec, or one whose two reductions are round(factor * in_chans) channels."""
    if factor is None:
        return spec
    r = max(1, round(factor * in_chans))
    return spec._replace(ch3x3red=r, ch5x5red=r)


def _branch_counts(module: nn.Module, in_chans: int, side: int) -> dict[str, dict[str, int]]:
    """Parameters and multiply-adds of each branch of an Inception module (meta device)."""
    s = summarize(module, (in_chans, side, side))
    out = {}
    for b in ("branch1", "branch2", "branch3", "branch4"):
        rows = [r for r in s.rows if r.name == b or r.name.startswith(b + ".")]
        out[b] = {"params": sum(p.numel() for p in getattr(module, b).parameters()), "macs": sum(r.macs for r in rows)}
    return out


def judge_c04(numbers: dict) -> tuple[str, str]:
    """Holds if every Inception module examined, and the whole GoogLeNet, has fewer parameters
    with the 1x1 reductions than without them (same outputs). No minimum saving is asked: the
    claim is that they cut, and the reason reports by how much."""
    n = numbers
    more = [m for m, r in n["modules"].items() if r["with"]["params"] >= r["without"]["params"]]
    net = n["network"]
    net_cut = net["with"]["params"] < net["without"]["params"]
    if not more and net_cut:
        m3 = n["modules"].get("inception3a") or next(iter(n["modules"].values()))
        b3 = m3["branches"]
        return "holds", (
            f"GoogLeNet (paper's 5x5 branch) has {net['with']['params'] / 1e6:.2f}M parameters and "
            f"{net['with']['macs'] / 1e9:.2f}G multiply-adds with the 1x1 reductions, {net['without']['params'] / 1e6:.2f}M "
            f"and {net['without']['macs'] / 1e9:.2f}G without (x{net['param_ratio']:.2f} / x{net['mac_ratio']:.2f}); "
            f"every one of {len(n['modules'])} modules is smaller (x{min(r['param_ratio'] for r in n['modules'].values()):.2f}"
            f" to x{max(r['param_ratio'] for r in n['modules'].values()):.2f}); in 3a the 5x5 branch shrinks "
            f"{b3['branch3']['without']['params']:,} -> {b3['branch3']['with']['params']:,}, the 3x3 branch "
            f"{b3['branch2']['without']['params']:,} -> {b3['branch2']['with']['params']:,}"
        )
    what = [
        f"{m} has {n['modules'][m]['with']['params']:,} parameters with the 1x1 reductions "
        f"({n['reduce_channels'][m]} channels) and {n['modules'][m]['without']['params']:,} without"
        for m in more[:3]
    ]
    if not net_cut:
        what.append(f"the whole net has {net['with']['params']:,} with vs {net['without']['params']:,} without")
    return "does not hold", "; ".join(what)


@experiment("C04", quick_verdict="holds", opposite={"reduce_factor": 1.0})
def run_c04(ctx: Context, reduce_factor: float | None = None, modules: Sequence[str] | None = None) -> Finding:
    """GoogLeNet with the paper's 5x5 branch (branch3_kernel=5) and torchvision's BN units, built on
    the meta device, with Table 1's 1x1 reductions and without them (NoReductionInception); counts
    from modules, multiply-adds from explain.summarize at 3x224x224. reduce_factor sets every
    reduction to round(factor * input channels) instead: 1.0 or more is the opposite evidence (a
    "reduction" that does not reduce). modules: the Inception modules detailed (quick: 3a and 4a;
    full: all nine)."""
    from deepnotes.models.googlenet import (
        TABLE_1,
        GoogLeNet,
        GoogLeNetConfig,
        Inception,
        InceptionSpec,
    )

    specs = {name: spec for name, spec in TABLE_1 if isinstance(spec, InceptionSpec)}
    inputs = inception_inputs()
    modules = list(modules) if modules is not None else ctx.size(["inception3a", "inception4a"], list(specs))
    per_module, reduce_channels = {}, {}
    for name in modules:
        c, side = inputs[name]
        spec = _with_reduce(specs[name], c, reduce_factor)
        reduce_channels[name] = [spec.ch3x3red, spec.ch5x5red]
        with torch.device("meta"):
            with_red, without = Inception(c, spec, 5), NoReductionInception(c, spec, 5)
        bw, bo = _branch_counts(with_red, c, side), _branch_counts(without, c, side)
        pw, po = sum(v["params"] for v in bw.values()), sum(v["params"] for v in bo.values())
        mw, mo = sum(v["macs"] for v in bw.values()), sum(v["macs"] for v in bo.values())
        conv_w = sum(m.weight.numel() for m in with_red.modules() if isinstance(m, nn.Conv2d))
        per_module[name] = {
            "input": f"{c}x{side}x{side}",
            "with": {"params": pw, "macs": mw},
            "without": {"params": po, "macs": mo},
            "param_ratio": rounded(po / pw),
            "mac_ratio": rounded(mo / mw),
            "branches": {b: {"with": bw[b], "without": bo[b]} for b in bw},
            "conv_weights_k": rounded(conv_w / 1024, 4),  # the unit of the paper's Table 1 (K = 1024, no biases)
        }

    with torch.device("meta"):
        net_with = GoogLeNet(GoogLeNetConfig(branch3_kernel=5))
        net_without = GoogLeNet(GoogLeNetConfig(branch3_kernel=5))
    for name, spec in specs.items():
        c, _ = inputs[name]
        s = _with_reduce(spec, c, reduce_factor)
        with torch.device("meta"):
            setattr(net_with.features, name, Inception(c, s, 5))
            setattr(net_without.features, name, NoReductionInception(c, s, 5))
    sw, so = summarize(net_with, (3, 224, 224)), summarize(net_without, (3, 224, 224))
    network = {
        "with": {"params": sw.total_params, "macs": sw.total_macs},
        "without": {"params": so.total_params, "macs": so.total_macs},
        "param_ratio": rounded(so.total_params / sw.total_params),
        "mac_ratio": rounded(so.total_macs / sw.total_macs),
    }
    numbers = {
        "reduce_factor": reduce_factor,
        "reduce_channels": reduce_channels,
        "modules": per_module,
        "network": network,
        "note": "GoogLeNet with the paper's 5x5 branch and BN units (conv without bias + BN), 1000 classes, no aux heads",
    }

    shown = modules[:2]
    fig, axes = new_figure(len(shown) + 1, 1, size=(4.2, 3.9))
    labels = ["1x1", "1x1 -> 3x3", "1x1 -> 5x5", "pool -> 1x1"]
    for a, name in zip(axes[0], shown):
        br = per_module[name]["branches"]
        xs = np.arange(4)
        vw = [br[b]["with"]["params"] for b in br]
        vo = [br[b]["without"]["params"] for b in br]
        a.bar(xs - 0.2, vo, 0.38, label="without 1x1 reductions", color="C3")
        a.bar(xs + 0.2, vw, 0.38, label="with (Table 1)" if reduce_factor is None else f"with {reduce_channels[name][0]}-ch reductions",
              color="C0")  # fmt: skip
        for x0, v1, v2 in zip(xs, vo, vw):
            a.annotate(_human(v1), (x0 - 0.2, v1), ha="center", va="bottom", fontsize=7)
            a.annotate(_human(v2), (x0 + 0.2, v2), ha="center", va="bottom", fontsize=7)
        a.set_xticks(xs, labels, fontsize=8)
        a.set(title=f"{name} (input {per_module[name]['input']})", ylabel="parameters")
        a.legend(fontsize=7)
        a.grid(alpha=0.3, axis="y")
    a = axes[0, -1]
    xs = np.arange(2)
    a.bar(xs - 0.2, [network["without"]["params"] / 1e6, network["without"]["macs"] / 1e9], 0.38, color="C3", label="without")
    a.bar(xs + 0.2, [network["with"]["params"] / 1e6, network["with"]["macs"] / 1e9], 0.38, color="C0", label="with")
    a.set_xticks(xs, ["parameters (M)", "multiply-adds (G)"])
    a.set(title="whole GoogLeNet, 3x224x224")
    a.legend(fontsize=8)
    a.grid(alpha=0.3, axis="y")
    fig.suptitle("Inception with and without the 1x1 reductions")
    figure = save_figure(fig, ctx.figure_path("inception_params"))
    verdict, reason = judge_c04(numbers)
    return Finding(numbers, [figure], verdict, reason)


# ============================================================================ C19


def skip_derivative_check(residual: bool = True, points: int = 101) -> dict:
    """y = x + f(x) (or y = f(x) when not residual) with f(x) = 0.8 tanh(1.5 x - 0.3), float64:
    autograd's dy/dx against the hand formula f'(x) + 1 = 1.2 (1 - tanh^2(1.5 x - 0.3)) + 1."""
    x = torch.linspace(-3, 3, points, dtype=torch.float64, requires_grad=True)
    f = 0.8 * torch.tanh(1.5 * x - 0.3)
    y = x + f if residual else f
    (dy,) = torch.autograd.grad(y.sum(), x)
    t = torch.tanh(1.5 * x.detach() - 0.3)
    fprime = 1.2 * (1 - t**2)
    return {"x": x.detach().numpy(), "fprime": fprime.numpy(), "autograd": dy.numpy(),
            "error_vs_fprime_plus_1": float((dy - (fprime + 1)).abs().max())}  # fmt: skip


def backward_signal(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[list[float], list[float]]:
    """One forward/backward in training mode (BatchNorm on batch statistics): the norm of dL/dh for
    the stem output and every block output h (input side first), and ||dL/dW|| of every conv."""
    outs: list[torch.Tensor] = []

    def keep(module, args, out):
        out.retain_grad()
        outs.append(out)

    blocks = [model.features.stem] + [b for name, stage in model.features.named_children() if name != "stem" for b in stage]
    handles = [b.register_forward_hook(keep) for b in blocks]
    model.train()
    try:
        F.cross_entropy(model(x), y).backward()
    finally:
        for h in handles:
            h.remove()
    signal = [float(o.grad.norm()) for o in outs]
    weights = [float(m.weight.grad.norm()) for m in model.modules() if isinstance(m, nn.Conv2d)]
    return signal, weights


def _without_bn(model: nn.Module) -> nn.Module:
    for mod in list(model.modules()):
        for cn, child in list(mod.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(mod, cn, nn.Identity())
    return model


def judge_c19(numbers: dict) -> tuple[str, str]:
    """Three facts. (1) autograd's derivative of y = x + f(x) equals f'(x) + 1 (to 1e-12, float64).
    (2) "alive": in the residual net the backward signal at the stem is at least 0.1 of the last
    block's, at every depth. (3) what the skip changes, at the deepest net: if the plain net's ratio
    is below 0.1 (vanished), the claim holds as the notes state it. If it is not, the plain net's
    gradients are alive too, and the claim holds with a correction only when the skip still evens
    them out: |log10 ratio| smaller for the residual net at every depth, and by at least one order
    of magnitude at the deepest (e.g. plain gradients that *grow* 1000x toward the input, as BN nets
    do at initialization, against 10x with skips). Otherwise it does not hold."""
    n = numbers
    hand = n["hand_check_error"] < 1e-12
    depths = [str(d) for d in n["depths"]]
    deep = depths[-1]
    res = {d: n["nets"][d]["residual"]["signal_ratio"] for d in depths}
    plain = {d: n["nets"][d]["plain"]["signal_ratio"] for d in depths}
    alive = all(r >= 0.1 for r in res.values())
    spread = {d: (abs(math.log10(res[d])), abs(math.log10(plain[d]))) for d in depths}
    evens = all(s_res < s_plain for s_res, s_plain in spread.values()) and spread[deep][1] - spread[deep][0] >= 1
    arm = "residual" if n["residual"] else "'residual' arm (no skips: residual=False)"
    if not hand:
        return "does not hold", (
            f"dy/dx of the {arm} y = {'x + ' if n['residual'] else ''}f(x) is not f'(x) + 1: off by up to {n['hand_check_error']:.3g}"
            + (f"; stem/last-block gradient ratio at depth {deep}: {res[deep]:.3g} vs plain {plain[deep]:.3g}")
        )
    if not alive:
        worst = min(res, key=res.get)
        return "does not hold", f"in the residual net of depth {worst} the stem gets {res[worst]:.2g} of the last block's gradient"
    head = (
        f"autograd gives dy/dx = f'(x) + 1 to {n['hand_check_error']:.0e}; on {n['data']} at initialization the backward "
        f"signal at the stem is " + ", ".join(f"{res[d]:.3g}x (depth {d})" for d in depths) + " the last block's with skips, "
        + ", ".join(f"{plain[d]:.3g}x" for d in depths) + f" without ({'BatchNorm' if n['batch_norm'] else 'no BatchNorm'})"
    )
    if plain[deep] < 0.1:
        grows = f" (growing x{res[deep]:.3g} toward the input: they are alive, not even)" if res[deep] > 10 else ""
        return "holds", head + f": the plain net's gradients vanish toward the input, the residual net's reach it{grows}"
    if evens:
        extra = ""
        if n.get("no_bn_plain_ratio"):
            extra = (f"; without BatchNorm the plain net's do vanish ({n['no_bn_plain_ratio'][deep]:.2g}x at depth {deep}), "
                     "the notes' picture")  # fmt: skip
        return "holds with a correction", (
            head + f": {'with BatchNorm ' if n['batch_norm'] else ''}the plain net's gradients do not vanish at initialization, they grow toward the "
            f"input (x{plain[deep]:.3g} over {deep} layers, x{plain[deep] ** (2 / (int(deep) - 2)):.2f} per block of two layers); the skip "
            f"keeps them within x{res[deep]:.3g}, so it keeps them even rather than alive" + extra
        )
    return "does not hold", head + ": the plain net's gradients reach the input just as well (the skip changes little)"


@experiment("C19", quick_verdict="holds with a correction", opposite={"residual": False})
def run_c19(ctx: Context, residual: bool = True, batch_norm: bool = True, depths: Sequence[int] = (20, 56), batch: int | None = None) -> Finding:
    """The CIFAR-form ResNets of the paper (resnet20/56, option A shortcuts, 1 input channel) with
    skips (residual=True) and without (the plain nets), built with the same seed, one training-mode
    forward/backward on a batch of real images (digits quick, Fashion-MNIST full). residual=False
    builds both arms without skips and drops the x from y = x + f(x): the opposite evidence.
    batch_norm=False removes every BatchNorm (the notes' setting, where plain gradients vanish)."""
    hand = skip_derivative_check(residual)
    data = lab_data(ctx.quick, n_train=batch or ctx.size(128, 256), seed=ctx.seed)
    x = data.spec().normalize(data.train_x)
    y = data.train_y
    nets, no_bn = {}, {}
    for depth in depths:
        nets[str(depth)] = {}
        for arm, skip in (("plain", False), ("residual", residual)):
            torch.manual_seed(ctx.seed)
            model = create_model(f"resnet{depth}", in_chans=x.shape[1], num_classes=data.num_classes, residual=skip)
            if not batch_norm:
                _without_bn(model)
            signal, weights = backward_signal(model, x, y)
            nets[str(depth)][arm] = {
                "signal_ratio": float(f"{signal[0] / signal[-1]:.4g}"),
                "weight_grad_ratio": float(f"{weights[0] / weights[-1]:.4g}"),
                "signal": rounded(signal, 3),
                "weight_grads": rounded(weights, 3),
            }
        if batch_norm:  # the reference the notes have in mind: a plain net without BatchNorm
            torch.manual_seed(ctx.seed)
            model = _without_bn(create_model(f"resnet{depth}", in_chans=x.shape[1], num_classes=data.num_classes, residual=False))
            signal, _ = backward_signal(model, x, y)
            no_bn[str(depth)] = {"signal": rounded(signal, 3), "ratio": float(f"{signal[0] / signal[-1]:.4g}")}
    numbers = {
        "data": data.name,
        "batch": len(x),
        "residual": residual,
        "batch_norm": batch_norm,
        "depths": list(depths),
        "hand_check_error": float(f"{hand['error_vs_fprime_plus_1']:.3g}"),
        "hand_check_points": len(hand["x"]),
        "nets": nets,
        "no_bn_plain_ratio": {d: v["ratio"] for d, v in no_bn.items()},
        "measure": "signal_ratio = ||dL/dh|| at the stem output / at the last block output, one batch, at initialization",
    }

    fig, axes = new_figure(len(depths) + 1, 1, size=(4.4, 3.8))
    a = axes[0, 0]
    a.plot(hand["x"], hand["fprime"], label="f'(x)  (plain: y = f(x))")
    a.plot(hand["x"], hand["fprime"] + 1, label="f'(x) + 1  (hand formula)")
    a.plot(hand["x"][::5], hand["autograd"][::5], "o", mfc="none", label=f"autograd dy/dx, y = {'x + ' if residual else ''}f(x)")
    a.axhline(1, color="grey", ls=":", lw=1)
    a.set(title="f(x) = 0.8 tanh(1.5x - 0.3)", xlabel="x", ylabel="derivative")
    a.legend(fontsize=7)
    a.grid(alpha=0.3)
    for a, d in zip(axes[0][1:], depths):
        r = nets[str(d)]
        a.semilogy(np.arange(len(r["plain"]["signal"])), r["plain"]["signal"], "o-", ms=3, color="C3", label="plain (BN)" if batch_norm else "plain")
        a.semilogy(np.arange(len(r["residual"]["signal"])), r["residual"]["signal"], "o-", ms=3, color="C0",
                   label=("residual" if residual else "'residual' (no skips)") + (" (BN)" if batch_norm else ""))  # fmt: skip
        if str(d) in no_bn:
            a.semilogy(np.arange(len(no_bn[str(d)]["signal"])), no_bn[str(d)]["signal"], "--", color="C7", label="plain, no BN")
        a.set(title=f"depth {d}, {data.name}: signal per block", xlabel="0 = stem output ... last block",
              ylabel="||dL/dh||")  # fmt: skip
        a.legend(fontsize=7)
        a.grid(alpha=0.3, which="both")
    fig.suptitle("skip connections: gradient reaching each block at initialization")
    figure = save_figure(fig, ctx.figure_path("gradient_per_block"))
    verdict, reason = judge_c19(numbers)
    return Finding(numbers, [figure], verdict, reason)
