"""C07, C08, C09: weight initialization (0 초기화, 작은 난수 초기화, Xavier / He 초기화).

C07  all-zero weights: every unit of a layer gets the same gradient, so they stay copies.
C08  N(0, 0.01^2) weights: each layer multiplies the activation scale by ~0.01 sqrt(n) < 1,
     so in a deep net the activations collapse to 0 (cs231n's 10 x 500 tanh net).
C09  Xavier (Var w = 1/n_in, the notes' form) for tanh, He (Var w = 2/n_in) for ReLU.

"Xavier" here is the notes' and cs231n's W / sqrt(n_in) (deepnotes.layers.init.lecun_normal_);
Glorot & Bengio's 2 / (n_in + n_out) differs only where n_in != n_out (the first layer).
Activation statistics are measured on real images (standardized pixels), not random inputs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from deepnotes.lab import Context, Finding, experiment
from deepnotes.lab.common import lab_data, new_figure, rounded, save_figure, train_small
from deepnotes.layers.activations import make_activation
from deepnotes.layers.init import kaiming_normal_, lecun_normal_, small_random_, zeros_


def init_linear_(layer: nn.Linear, init: str, g: torch.Generator, std: float = 0.01) -> None:
    """init: "zeros", "normal" (N(0, std^2)), "xavier" (Var 1/n_in) or "he" (Var 2/n_in); bias 0."""
    if init == "zeros":
        zeros_(layer.weight)
    elif init == "normal":
        small_random_(layer.weight, std=std, generator=g)
    elif init == "xavier":
        lecun_normal_(layer.weight, generator=g)
    elif init == "he":
        kaiming_normal_(layer.weight, generator=g)
    else:
        raise ValueError(f"unknown init {init!r}; choose zeros, normal, xavier or he")
    zeros_(layer.bias)


def _images(ctx: Context, n: int) -> tuple[torch.Tensor, str]:
    data = lab_data(ctx.quick, n_train=n, seed=ctx.seed)
    return data.spec().normalize(data.train_x).flatten(1), data.name  # (B, C*H*W)


@torch.no_grad()
def layer_activations(
    x: torch.Tensor, depth: int, width: int, activation: str, init: str, seed: int, std: float = 0.01
) -> list[torch.Tensor]:
    """The activations (B, width) after each of `depth` Linear + activation layers at initialization."""
    g = torch.Generator().manual_seed(seed)
    act = make_activation(activation)
    h, out = x, []
    for _ in range(depth):
        layer = nn.Linear(h.shape[1], width)
        init_linear_(layer, init, g, std)
        h = act(layer(h))
        out.append(h)
    return out


def _histogram_grid(rows: dict[str, list[torch.Tensor]], path, title: str, show: list[int]) -> str:
    """One row of per-layer activation histograms per setting, on one x-range per row (tanh:
    [-1, 1]; ReLU: [0, 4 x layer 1's std], exact zeros and the far tail left out) so shrinking
    shows as narrowing."""
    fig, axes = new_figure(len(show), len(rows), size=(1.9, 1.7))
    for r, (label, acts) in enumerate(rows.items()):
        relu = float(acts[0].min()) >= 0
        lo, hi = (0.0, 4 * float(acts[0].std())) if relu else (-1.0, 1.0)
        for c, layer in enumerate(show):
            a = axes[r, c]
            values = acts[layer - 1].flatten().numpy()
            shown = values[values != 0] if relu else values
            counts, edges = np.histogram(shown, bins=40, range=(lo, hi))
            a.stairs(counts, edges, fill=True, color=f"C{r}")  # one artist: much faster than 40 bars
            a.set_xticks([lo, (lo + hi) / 2, hi], [f"{v:.2g}" for v in (lo, (lo + hi) / 2, hi)])
            a.set_yticks([])
            a.set_title(f"layer {layer}: std {values.std():.2g}", fontsize=8)
            a.tick_params(labelsize=7)
            if c == 0:
                a.set_ylabel(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def _layers_to_show(depth: int, panels: int) -> list[int]:
    """About `panels` layers spread from the first to the last (all of them if few)."""
    return sorted({round(float(v)) for v in np.linspace(1, depth, min(depth, panels))})


# ============================================================================ C07


def unit_spread(weight: torch.Tensor, bias: torch.Tensor) -> float:
    """How different a layer's units are: max over units of ||w_i - mean w|| / mean ||w_i||, with
    w_i a unit's incoming weights and bias (0: all units identical)."""
    w = torch.cat([weight, bias[:, None]], 1).double()  # (units, inputs + 1)
    scale = w.norm(dim=1).mean()
    if scale == 0:
        return 0.0
    return float((w - w.mean(0)).norm(dim=1).max() / scale)


def numerical_rank(weight: torch.Tensor) -> int:
    s = torch.linalg.svdvals(weight.double())
    return int((s > 1e-6 * s.max()).sum()) if s.max() > 0 else 0


def judge_c07(numbers: dict) -> tuple[str, str]:
    """Holds if every hidden layer of the trained net has relative unit spread below 1e-5 (its units
    are copies) while the weights did move (relative change above 1e-3: they learned, all the
    same thing). Copies that never moved: "holds with a correction" (they learn nothing at all)."""
    n = numbers
    identical = max(n["unit_spread"]) < 1e-5
    moved = min(n["weight_change"]) > 1e-3
    if not identical:
        return "does not hold", (
            f"after training from {n['init']} init the hidden units differ (spread {rounded(n['unit_spread'], 2)}, "
            f"rank {n['rank']} of {n['width']}); test accuracy {n['test_accuracy']:.1%}"
        )
    base = (
        f"after {n['steps']} Adam steps from {n['init']} init the {n['width']} units of each {n['activation']} "
        f"layer are copies (spread {max(n['unit_spread']):.1e}, weight rank {n['rank']}), "
    )
    if moved:
        return "holds", base + (
            f"although they learned (weights moved); the net reaches {n['test_accuracy']:.1%} test accuracy "
            f"against {n['random_test_accuracy']:.1%} from random init (spread {max(n['random_unit_spread']):.2f})"
        )
    return "holds with a correction", base + (
        f"but only because they do not learn at all ({n['activation']}(0) = 0 blocks every hidden gradient): "
        f"test accuracy {n['test_accuracy']:.1%}"
    )


@experiment("C07", quick_verdict="holds", opposite={"init": "random"})
def run_c07(ctx: Context, init: str = "zeros", activation: str = "sigmoid", width: int = 32) -> Finding:
    """An MLP pixels -> width -> width -> classes with `activation` hidden units, every weight and
    bias initialized by `init` ("zeros": the claim; "xavier" or "random" (= xavier): opposite
    evidence), trained with Adam on real images; a Xavier-initialized twin is the reference.

    Why sigmoid: with all-zero weights a tanh or ReLU unit outputs f(0) = 0, so the layer above gets
    no input and the layer below no gradient: those nets do not learn at all (the units stay
    identical trivially; run activation="tanh" to see it). Sigmoid outputs sigma(0) = 1/2, so the
    zero-initialized net does learn, and what it learns shows the symmetry: every unit of a layer
    gets the same gradient at every step and stays an exact copy of the others.
    """
    init = "xavier" if init == "random" else init
    data = lab_data(ctx.quick, n_train=ctx.size(None, 10000), n_test=ctx.size(None, 2000), seed=ctx.seed)
    epochs = ctx.size(5, 4)
    nets, hists = {}, {}
    for scheme in dict.fromkeys([init, "xavier"]):  # the claimed init and the Xavier reference
        torch.manual_seed(ctx.seed)
        model = nn.Sequential(
            nn.Flatten(),
            nn.Linear(data.in_features, width),
            make_activation(activation),
            nn.Linear(width, width),
            make_activation(activation),
            nn.Linear(width, data.num_classes),
        )
        g = torch.Generator().manual_seed(ctx.seed)
        for m in model:
            if isinstance(m, nn.Linear):
                init_linear_(m, scheme, g)
        before = [m.weight.detach().clone() for m in model if isinstance(m, nn.Linear)]
        opt = torch.optim.Adam(model.parameters(), lr=0.01)  # elementwise: equal gradients, equal steps
        hists[scheme] = train_small(model, data, opt, epochs=epochs, batch_size=64, seed=ctx.seed)
        nets[scheme] = (model, before)

    def stats(name: str) -> dict:
        model, before = nets[name]
        linears = [m for m in model if isinstance(m, nn.Linear)]
        hidden = linears[:-1]
        change = []
        for m, w0 in zip(hidden, before):
            d = float((m.weight.detach() - w0).norm())
            change.append(d / max(float(m.weight.detach().norm()), 1e-12) if d > 0 else 0.0)
        return {
            "unit_spread": [unit_spread(m.weight.detach(), m.bias.detach()) for m in hidden],
            "rank": [numerical_rank(m.weight.detach()) for m in hidden],
            "weight_change": change,
            "test_accuracy": hists[name].epoch_test_accuracy[-1],
        }

    claim, random = stats(init), stats("xavier")
    numbers = {
        "data": data.name,
        "init": init,
        "activation": activation,
        "width": width,
        "epochs": epochs,
        "steps": len(hists[init].step_loss),
        "unit_spread": [float(f"{v:.3g}") for v in claim["unit_spread"]],
        "rank": claim["rank"],
        "weight_change": rounded(claim["weight_change"], 3),
        "test_accuracy": rounded(claim["test_accuracy"]),
        "random_unit_spread": rounded(random["unit_spread"], 3),
        "random_rank": random["rank"],
        "random_test_accuracy": rounded(random["test_accuracy"]),
    }

    fig, axes = new_figure(9, 2, size=(1.45, 1.6))
    side = int(data.train_x.shape[-1])
    for r, name in enumerate([init, "xavier"]):
        label = f"{name} init"
        w = nets[name][0][1].weight.detach()  # (width, C*H*W): incoming weights of layer-1 units
        lim = float(w.abs().max()) or 1.0
        for c in range(8):
            a = axes[r, c]
            a.imshow(w[c].reshape(-1, side)[:side].numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
            a.set_xticks([])
            a.set_yticks([])
            if c == 0:
                a.set_ylabel(label, fontsize=9)
            a.set_title(f"unit {c + 1}", fontsize=8)
        a = axes[r, 8]
        a.plot(range(1, epochs + 1), hists[name].epoch_test_accuracy, marker="o")
        a.set(ylim=(0, 1), title="test acc.", xlabel="epoch")
        a.tick_params(labelsize=7)
        a.title.set_fontsize(8)
    fig.suptitle(f"incoming weights of the first 8 hidden units after training ({activation}, {data.name})", fontsize=10)
    figure = save_figure(fig, ctx.figure_path("hidden_units"))
    verdict, reason = judge_c07(numbers)
    return Finding(numbers, [figure], verdict, reason)


# ============================================================================ C08


def judge_c08(numbers: dict) -> tuple[str, str]:
    """Holds if the last layer's activation std is below 1% of the first layer's and below 1e-3
    in absolute terms (collapsed toward 0)."""
    n = numbers
    ratio = n["last_to_first_std"]
    if ratio < 0.01 and n["std_per_layer"][-1] < 1e-3:
        return "holds", (
            f"with {n['init_label']} the {n['activation']} activations' std falls from {n['std_per_layer'][0]:.3g} "
            f"to {n['std_per_layer'][-1]:.2g} over {n['depth']} layers (x{n['per_layer_factor']:.3g} per layer; "
            f"0.01 sqrt({n['width']}) = {0.01 * n['width'] ** 0.5:.3g}); with Xavier it ends at {n['xavier_std_per_layer'][-1]:.2g}"
        )
    sat = n["saturated_last"]
    extra = f", and {sat:.0%} of the last layer's units are saturated (|h| > 0.99)" if sat > 0.05 else ""
    return "does not hold", (
        f"with {n['init_label']} the activations' std goes from {n['std_per_layer'][0]:.3g} to "
        f"{n['std_per_layer'][-1]:.3g} over {n['depth']} layers (ratio {ratio:.2g}): no collapse{extra}"
    )


@experiment("C08", quick_verdict="holds", opposite={"std": 1.0})
def run_c08(
    ctx: Context, std: float = 0.01, init: str = "normal", activation: str = "tanh", depth: int = 10, width: int = 500
) -> Finding:
    """cs231n's experiment on real images: `depth` layers of `width` `activation` units with weights
    N(0, std^2) (init="normal"; the claim std = 0.01; std = 1.0 is the opposite evidence:
    saturation instead of collapse), or init="xavier" / "he". Xavier and N(0, 1) are always run
    as references for the figures."""
    x, data_name = _images(ctx, ctx.size(200, 1000))
    label = f"N(0, {std:g}^2)" if init == "normal" else init
    settings = {label: (init, std), "xavier (1/n)": ("xavier", std), "N(0, 1)": ("normal", 1.0)}
    acts = {k: layer_activations(x, depth, width, activation, i, ctx.seed, s) for k, (i, s) in settings.items()}
    stds = {k: [float(h.std()) for h in v] for k, v in acts.items()}
    claim = stds[label]
    numbers = {
        "data": data_name,
        "batch": len(x),
        "depth": depth,
        "width": width,
        "activation": activation,
        "init_label": label,
        "std_per_layer": rounded(claim, 3),
        "mean_per_layer": rounded([float(h.mean()) for h in acts[label]], 2),
        "last_to_first_std": float(f"{claim[-1] / claim[0]:.3g}"),
        "per_layer_factor": rounded((claim[-1] / claim[0]) ** (1 / (depth - 1)), 3),
        "saturated_last": rounded(float((acts[label][-1].abs() > 0.99).float().mean()), 3),
        "xavier_std_per_layer": rounded(stds["xavier (1/n)"], 3),
        "std1_std_per_layer": rounded(stds["N(0, 1)"], 3),
        "std1_saturated_last": rounded(float((acts["N(0, 1)"][-1].abs() > 0.99).float().mean()), 3),
    }

    fig, axes = new_figure(1, 1, size=(5.5, 3.8))
    a = axes[0, 0]
    for k, v in stds.items():
        a.semilogy(range(1, depth + 1), v, marker="o", ms=3, label=k)
    a.set(title=f"activation std per layer ({depth} x {width} {activation}, {data_name})", xlabel="layer", ylabel="std")
    a.legend()
    a.grid(alpha=0.3, which="both")
    figures = [save_figure(fig, ctx.figure_path("activation_std"))]
    show = _layers_to_show(depth, ctx.size(5, 10))
    figures.append(
        _histogram_grid(
            acts, ctx.figure_path("activation_histograms"), f"{activation} activations per layer (x from -1 to 1)", show
        )
    )
    verdict, reason = judge_c08(numbers)
    return Finding(numbers, figures, verdict, reason)


# ============================================================================ C09


KEEP_BAND = (0.5, 2.0)


def judge_c09(numbers: dict) -> tuple[str, str]:
    """Scale kept: last/first hidden-layer activation std within KEEP_BAND = [0.5, 2].

    holds: the claimed pairs keep the scale and the swapped ones do not (ReLU: shrinks; tanh: out
    of the band or more than 5% of units saturated at |h| > 0.99).
    holds with a correction: the ReLU half holds, and the claimed tanh init leaves the band but
    decays slowly (ratio >= 0.1, against ~1e-6 for 0.01 init in C08), or the swapped tanh init
    keeps the scale too.
    does not hold: otherwise (e.g. the claimed ReLU init does not keep the scale).
    """
    n = numbers
    r = n["last_to_first_std"]
    lo, hi = KEEP_BAND

    def kept(key: str) -> bool:
        return lo <= r[key] <= hi

    ti, ri = n["tanh_init"], n["relu_init"]
    to, ro = ("he" if ti == "xavier" else "xavier"), ("he" if ri == "xavier" else "xavier")
    relu_ok = kept(f"{ri}+relu") and r[f"{ro}+relu"] < lo
    tanh_other_fails = not kept(f"{to}+tanh") or n["saturated_last"][f"{to}+tanh"] > 0.05
    tanh_ok = kept(f"{ti}+tanh") and tanh_other_fails
    relu_text = (
        f"{ri}+ReLU keeps the scale (last/first std {r[f'{ri}+relu']:.2f}) while {ro}+ReLU shrinks it to "
        f"{r[f'{ro}+relu']:.3f} (2^-(L-1)/2 = {n['relu_halving_prediction']:.3f})"
    )
    if not relu_ok:
        return "does not hold", (
            f"{ri}+ReLU gives last/first std {r[f'{ri}+relu']:.3g} and {ro}+ReLU {r[f'{ro}+relu']:.3g} "
            f"(kept means within [{lo:g}, {hi:g}])"
        )
    if tanh_ok:
        return "holds", relu_text + (
            f"; {ti}+tanh keeps it ({r[f'{ti}+tanh']:.2f}) while {to}+tanh gives {r[f'{to}+tanh']:.2f} with "
            f"{n['saturated_last'][f'{to}+tanh']:.0%} saturated"
        )
    if r[f"{ti}+tanh"] >= 0.1:
        return "holds with a correction", relu_text + (
            f"; but for tanh, {ti} does not keep the scale exactly: the std decays slowly "
            f"({r[f'{ti}+tanh']:.2f} of layer 1's after {n['depth']} layers, like layer^{n['power_law_exponent'][f'{ti}+tanh']:.2f}, "
            f"a power law, not exponentially), "
            f"and {to}+tanh keeps it better ({r[f'{to}+tanh']:.2f}) with only "
            f"{n['saturated_last'][f'{to}+tanh']:.1%} of units saturated: the forward scale alone does not pick "
            f"{ti} for tanh"
        )
    return "does not hold", relu_text + f"; but {ti}+tanh collapses (last/first std {r[f'{ti}+tanh']:.2g})"


@experiment("C09", quick_verdict="holds with a correction", opposite={"tanh_init": "he", "relu_init": "xavier"})
def run_c09(ctx: Context, tanh_init: str = "xavier", relu_init: str = "he", depth: int = 10, width: int = 500) -> Finding:
    """Activation std per layer on real images for init in {xavier (1/n), he (2/n)} x activation in
    {tanh, relu}; the claimed pairing is tanh_init / relu_init (swap them for the opposite
    evidence).

    The numbers correct the notes on the tanh side: with Xavier the tanh activations shrink slowly
    with depth (tanh(z) < z pulls the variance below its fixed point 0 at a polynomial rate), and
    He's larger weights keep tanh's scale better without saturating it much. (PyTorch itself
    recommends gain 5/3 for tanh, i.e. Var w = 2.8/n, above even He's 2/n.) What the ReLU side
    claims holds to the digit: with Xavier each ReLU layer halves the variance.
    """
    x, data_name = _images(ctx, ctx.size(200, 1000))
    acts = {
        f"{i}+{a}": layer_activations(x, depth, width, a, i, ctx.seed) for a in ("tanh", "relu") for i in ("xavier", "he")
    }
    stds = {k: [float(h.std()) for h in v] for k, v in acts.items()}
    numbers = {
        "data": data_name,
        "batch": len(x),
        "depth": depth,
        "width": width,
        "tanh_init": tanh_init,
        "relu_init": relu_init,
        "keep_band": list(KEEP_BAND),
        "last_to_first_std": {k: float(f"{v[-1] / v[0]:.3g}") for k, v in stds.items()},
        "relu_halving_prediction": rounded(2 ** (-(depth - 1) / 2)),
        # std ~ layer^p fitted in log-log: p = -0.5 is 1/sqrt(layer); an exponential collapse has no fixed p
        "power_law_exponent": {
            k: rounded(float(np.polyfit(np.log(np.arange(1, depth + 1)), np.log(v), 1)[0]), 3) for k, v in stds.items()
        },
        "saturated_last": {k: rounded(float((v[-1].abs() > 0.99).float().mean()), 3) for k, v in acts.items() if "tanh" in k},
        "std_per_layer": {k: rounded(v, 3) for k, v in stds.items()},
    }

    fig, axes = new_figure(1, 1, size=(5.5, 3.8))
    a = axes[0, 0]
    for k, v in stds.items():
        claimed = k in (f"{tanh_init}+tanh", f"{relu_init}+relu")
        a.semilogy(range(1, depth + 1), v, marker="o", ms=3, ls="-" if claimed else "--", label=k + (" (claimed)" if claimed else ""))
    a.set(title=f"activation std per layer ({depth} x {width}, {data_name})", xlabel="layer", ylabel="std")
    a.legend(fontsize=8)
    a.grid(alpha=0.3, which="both")
    figures = [save_figure(fig, ctx.figure_path("activation_std"))]
    show = _layers_to_show(depth, ctx.size(5, 10))
    figures.append(
        _histogram_grid(acts, ctx.figure_path("activation_histograms"), "activations per layer, init + activation", show)
    )
    verdict, reason = judge_c09(numbers)
    return Finding(numbers, figures, verdict, reason)
