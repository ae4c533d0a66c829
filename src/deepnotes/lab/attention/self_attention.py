"""C29-C34: attention and the Vision Transformer (패치 임베딩, 위치 인코딩, 스케일드 닷-프로덕트 어텐션,
마스크드 어텐션, 멀티 헤드 어텐션, 귀납적 편향).

C29  ViT-B/16's embedding: the shapes read from the model's own modules on a 224x224x3 image
     (196 patches of 16x16x3 = 768 values -> 196 x 768 tokens -> 197 x 768 with the class
     token), the arithmetic behind them, and the strided-conv patch embedding checked equal to
     cutting the patches by hand and multiplying by one matrix, on a real photograph.
C30  a transformer encoder (deepnotes.layers.transformer) on real token sequences (the patches
     of images): permuting the tokens permutes the outputs, to float rounding, without a
     positional encoding; with a sinusoidal or learned one it does not.
C31  q, k with unit-variance entries: the logit q.k has variance d_k; divided by sqrt(d_k) it
     has variance 1. Per d_k from 4 to 1024: attention entropy, the largest weight and the norm
     of the softmax Jacobian (what backpropagation multiplies by), scaled against unscaled.
C32  images read as sequences of rows: which input positions each output position depends on,
     with the causal mask (none of the later ones: the outputs are bit-identical when the future
     changes) and without it, on both the scratch and the fused attention path.
C33  a small ViT trained on real images: how differently its heads spread their attention (total
     variation between heads' maps, on the same image and averaged over images, against the
     split-half sampling noise), the heads' mean attention distances, and the same model with
     the heads' query/key projections tied (identical maps by construction). "Different" is
     judged on the image-averaged maps (systematic differences beyond sampling noise), the
     stricter of the two readings; the per-image differences are reported beside them.
C34  input gradients of every output token of a ViT's first encoder layer (non-zero on every
     pixel: the receptive field is the whole image) against the first conv of resnet20 (3x3,
     measured by deepnotes.explain), and the same ViT layer with a local attention mask.

All models are deepnotes's own (MultiHeadAttention, TransformerEncoderLayer, ViT); training
(C33 only) is short and on a CPU, which the numbers state.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from deepnotes.explain import summarize
from deepnotes.explain.attention import attention_maps, cls_attention_grid
from deepnotes.lab import Context, Finding, experiment
from deepnotes.lab.cnn.layers import fields
from deepnotes.lab.common import lab_data, new_figure, rounded, save_figure, train_small
from deepnotes.layers.attention import (
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    SinusoidalPositionalEncoding,
    scaled_dot_product_attention,
    use_fused,
)
from deepnotes.layers.transformer import TransformerEncoder, TransformerEncoderLayer
from deepnotes.models import create_model
from deepnotes.models.vit import PatchEmbed, ViT, ViTConfig, embedding_shapes, patchify


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b|: an error on the scale of the values compared."""
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def _sig(x: float, digits: int = 3) -> float:
    return float(f"{x:.{digits}g}")


# ============================================================================ C29


def photo(size: int, crop: tuple[float, float, float] = (0.5, 0.5, 1.0)) -> torch.Tensor:
    """(3, size, size) uint8: a square crop of scikit-learn's bundled sample photograph
    ("china.jpg", 427x640), resized with antialiasing. crop = (centre y, centre x, side) as
    fractions of the photo's height / width / shorter side."""
    from sklearn.datasets import load_sample_image

    im = torch.from_numpy(np.array(load_sample_image("china.jpg"))).permute(2, 0, 1)  # (3, H, W), a writable copy
    h, w = im.shape[1:]
    side = max(16, int(min(h, w) * crop[2]))
    top = min(max(0, int(h * crop[0]) - side // 2), h - side)
    left = min(max(0, int(w * crop[1]) - side // 2), w - side)
    x = im[:, top : top + side, left : left + side].float()[None]
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    return x.round().clamp(0, 255).to(torch.uint8)


def judge_c29(numbers: dict) -> tuple[str, str]:
    """Holds if the model's own shapes are the claimed ones: a 3x224x224 image, 196 patch tokens
    of width 768 and 197 with the class token (also after the position embedding); if they follow
    from the arithmetic ((224/p)^2 patches, p*p*3 values each); and if the strided-conv patch
    embedding equals cutting the patches out by hand and multiplying by one matrix (relative
    error < 1e-5 in float32, on real photographs)."""
    n = numbers
    s = n["shapes"]
    claimed = s["image"] == [3, 224, 224] and s["patch tokens"] == [196, 768] and s["with class token"] == [197, 768] \
        and s["encoder input"] == [197, 768]  # fmt: skip
    arithmetic = n["num_patches"] == n["grid"][0] * n["grid"][1] and n["patch_divides"] and s["patches"] == [n["num_patches"], n["patch_values"]] \
        and n["patch_values"] == n["patch_size"] ** 2 * s["image"][0]  # fmt: skip
    equal = max(n["conv_vs_unfold_rel_error"], n["conv_vs_slices_rel_error"]) < 1e-5
    chain = " -> ".join("x".join(map(str, s[k])) for k in ("image", "patches", "patch tokens", "with class token"))
    if claimed and arithmetic and equal:
        others = ", ".join(f"{m} {'x'.join(map(str, v))}" for m, v in n["other_models"].items())
        return "holds", (
            f"{n['model']} on a 3x224x224 image: {chain} (read from the model's modules); (224/16)^2 = "
            f"{n['num_patches']} patches of 16*16*3 = {n['patch_values']} values. The strided conv equals cutting "
            f"the 16x16 patches by hand and multiplying by one {n['embed_dim']}x{n['patch_values']} matrix "
            f"(relative error {max(n['conv_vs_unfold_rel_error'], n['conv_vs_slices_rel_error']):.1g} on "
            f"{n['images_checked']} crop(s) of a photograph). The two 768s are different numbers that happen to agree in ViT-B: 16*16*3 values per "
            f"patch and the width D; the same patches give {others}"
        )
    what = []
    if not claimed:
        what.append(f"{n['model']} with {n['patch_size']}x{n['patch_size']} patches on {'x'.join(map(str, s['image']))}: {chain}, "
                    "not 196 x 768 and 197 x 768 with the class token")  # fmt: skip
    if not n["patch_divides"]:
        what.append(f"{n['patch_size']} does not divide {s['image'][1]}: the image is zero-padded to a {n['grid'][0]}x{n['grid'][1]} grid")
    elif not arithmetic:
        what.append("the shapes do not follow (H/p)^2 patches of p*p*C values")
    if not equal:
        what.append(f"the conv patch embedding differs from unfold + matrix by {n['conv_vs_unfold_rel_error']:.2g} (relative)")
    return "does not hold", "; ".join(what)


@experiment("C29", quick_verdict="holds", opposite={"patch_size": 14})
def run_c29(ctx: Context, model: str = "vit_b_16", patch_size: int | None = None, img_size: int = 224) -> Finding:
    """The shapes through `model`'s embedding at img_size (built on the meta device: shapes only),
    and its patch embedding (a real one with the same geometry) on crops of a real photograph.
    patch_size overrides the model's (e.g. 14: 256 patches, the opposite evidence)."""
    overrides = {"img_size": img_size} | ({"patch_size": int(patch_size)} if patch_size is not None else {})
    with torch.device("meta"):
        vit = create_model(model, **overrides)
    shapes = {k: list(v) for k, v in embedding_shapes(vit).items()}
    p = vit.patch_embed.patch_size[0]
    C, D = vit.in_chans, vit.embed_dim
    others = {}
    for name in ("vit_s_16", "vit_ti_16"):
        if name != model:
            with torch.device("meta"):
                other = create_model(name, **overrides)
            others[name] = list(embedding_shapes(other)["with class token"])

    # the patch embedding on real pixels: conv == unfold + matrix == slices cut by hand + matrix
    torch.manual_seed(ctx.seed)
    pe = PatchEmbed(img_size, p, C, D)
    crops = [(0.5, 0.5, 1.0), (0.45, 0.3, 0.6), (0.4, 0.7, 0.5), (0.6, 0.5, 0.35), (0.3, 0.4, 0.8), (0.7, 0.75, 0.45),
             (0.5, 0.2, 0.5), (0.35, 0.6, 0.3)][: ctx.size(1, 8)]  # fmt: skip
    images = torch.stack([photo(img_size, c) for c in crops])  # (n, 3, S, S) uint8
    x = images.float() / 255.0
    with torch.no_grad():
        conv = pe(x)  # (n, N, D)
        unfold = pe.forward_unfold(x)
        xp = pe.pad(x)
        gh, gw = pe.grid_for(x.shape[-2:])
        w = pe.proj.weight.reshape(D, -1)  # (D, C*p*p): the projection E as a matrix
        cut = torch.stack([xp[:, :, p * i : p * i + p, p * j : p * j + p].reshape(len(x), -1) for i in range(gh) for j in range(gw)], 1)
        slices = cut @ w.T + pe.proj.bias  # (n, N, D)
    numbers = {
        "model": model,
        "patch_size": p,
        "embed_dim": D,
        "shapes": shapes,
        "grid": [gh, gw],
        "patch_divides": img_size % p == 0,
        "num_patches": gh * gw,
        "patch_values": C * p * p,
        "conv_vs_unfold_rel_error": _sig(_rel(unfold, conv)),
        "conv_vs_slices_rel_error": _sig(_rel(slices, conv)),
        "images_checked": len(x),
        "image": "scikit-learn sample photo china.jpg, square crops resized",
        "other_models": others,
    }

    # figure: the photo cut into its patches, the patch matrix, the token matrix with the class token
    fig, axes = new_figure(3, 1, size=(4.6, 4.6))
    a = axes[0, 0]
    a.imshow(xp[0].permute(1, 2, 0).numpy())
    for i in range(1, gh):
        a.axhline(i * p - 0.5, color="w", lw=0.6)
    for j in range(1, gw):
        a.axvline(j * p - 0.5, color="w", lw=0.6)
    for n_, (i, j) in enumerate((i, j) for i in range(gh) for j in range(gw)):
        if i in (0, gh - 1) and j in (0, gw - 1):
            a.text(j * p + p / 2, i * p + p / 2, str(n_ + 1), color="yellow", ha="center", va="center", fontsize=7)
    a.set(title=f"{img_size}x{img_size}x{C} cut into {gh}x{gw} = {gh * gw} patches of {p}x{p}", xticks=[], yticks=[])
    a = axes[0, 1]
    a.imshow(cut[0].numpy(), aspect="auto", cmap="gray", interpolation="nearest")
    a.set(title=f"patches, flattened: {gh * gw} x {C * p * p}\n(each row: {p}*{p} R, then G, then B)", xlabel="value", ylabel="patch")
    a = axes[0, 2]
    with torch.no_grad():
        tokens = torch.cat([torch.zeros(1, D), conv[0]])  # the class token's row drawn blank (its value is learned)
    a.imshow(tokens.numpy(), aspect="auto", cmap="RdBu_r", interpolation="nearest")
    a.axhline(0.5, color="k", lw=1)
    a.set(title=f"tokens x E, class token in front: {gh * gw + 1} x {D}", xlabel="feature (D)", ylabel="token (0 = class)")
    chain = " -> ".join("x".join(map(str, shapes[k])) for k in ("image", "patches", "patch tokens", "with class token"))
    fig.suptitle(f"{model}: {chain}", fontsize=10)
    figure = save_figure(fig, ctx.figure_path("patches"))
    verdict, reason = judge_c29(numbers)
    return Finding(numbers, [figure], verdict, reason)


# ============================================================================ C30


def patch_sequences(quick: bool, n: int, seed: int) -> tuple[torch.Tensor, str, int]:
    """Real token sequences: the non-overlapping patches of standardized images, (n, N, p*p).
    Digits (8x8, 2x2 patches: 16 tokens) for quick runs, Fashion-MNIST (28x28, 7x7 patches:
    16 tokens) for full ones. Returns (tokens, data name, patch size)."""
    data = lab_data(quick, n_train=n, seed=seed)
    x = data.spec().normalize(data.train_x)
    p = 2 if x.shape[-1] == 8 else 7
    return patchify(x, p), data.name, p


class TokenEncoder(nn.Module):
    """Linear token embedding, an optional positional encoding, a pre-norm transformer encoder
    (deepnotes's layers) and a final LayerNorm: (B, L, in_features) -> (B, L, d_model)."""

    def __init__(self, in_features: int, d_model: int, num_heads: int, num_layers: int, position: str = "none", max_len: int = 64):
        super().__init__()
        self.embed = nn.Linear(in_features, d_model)
        if position == "none":
            self.position: nn.Module = nn.Identity()
        elif position == "sinusoidal":
            self.position = SinusoidalPositionalEncoding(d_model, max_len)
        elif position == "learned":
            self.position = LearnedPositionalEmbedding(max_len, d_model)
        else:
            raise ValueError(f"position must be 'none', 'sinusoidal' or 'learned', got {position!r}")
        layer = TransformerEncoderLayer(d_model, num_heads, dim_feedforward=2 * d_model, dropout=0.0, activation="gelu", norm_first=True)
        self.encoder = TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(d_model))

    def forward(self, x: torch.Tensor, is_causal: bool = False) -> torch.Tensor:
        return self.encoder(self.position(self.embed(x)), is_causal=is_causal)


def judge_c30(numbers: dict) -> tuple[str, str]:
    """Holds if, for the model under test, permuting the input tokens permutes the outputs up to
    float32 rounding (max error <= 1e-5 of the output scale, over every permutation and sequence
    tried) while the control with a positional encoding does not (error >= 1e-3): the check can see
    a broken equivariance. A tested model that is not equivariant: does not hold."""
    n = numbers
    err = n["errors"][n["tested"]]
    control = max(n["errors"][arm] for arm in n["errors"] if arm != "none")
    if err <= 1e-5 and control >= 1e-3:
        return "holds", (
            f"{n['layers']}-layer encoder on {n['sequences']} {n['data']} patch sequences of {n['tokens']} tokens, "
            f"{n['permutations']} random permutations: without positional encoding f(Px) = P f(x) to {err:.1g} of the "
            f"output scale (float32 rounding); adding a sinusoidal encoding breaks it ({n['errors']['sinusoidal']:.2g}), "
            f"a learned one too ({n['errors']['learned']:.2g}, small because it starts at std 0.02)"
        )
    if err > 1e-5:
        return "does not hold", (
            f"the model under test ({n['tested']} position information) gives f(Px) != P f(x): error {err:.2g} of the output "
            f"scale over {n['permutations']} permutations"
        )
    return "does not hold", f"the positional encodings do not break equivariance either (largest error {control:.2g}): the check sees nothing"


@experiment("C30", quick_verdict="holds", opposite={"use_pe": True})
def run_c30(ctx: Context, use_pe: bool = False, layers: int | None = None, d_model: int | None = None) -> Finding:
    """Encoders with no / sinusoidal / learned positional encoding, the same weights otherwise, on
    real patch sequences; the error of f(Px) against P f(x). use_pe=True tests the claim on the
    model with the sinusoidal encoding (the opposite evidence)."""
    torch.manual_seed(ctx.seed)
    tokens, data_name, p = patch_sequences(ctx.quick, ctx.size(32, 256), ctx.seed)
    B, L, F_ = tokens.shape
    layers = layers or ctx.size(2, 4)
    d_model = d_model or ctx.size(32, 64)
    torch.manual_seed(ctx.seed)
    base = TokenEncoder(F_, d_model, 4, layers).eval()
    models = {}
    for arm in ("none", "sinusoidal", "learned"):
        m = TokenEncoder(F_, d_model, 4, layers, position=arm).eval()
        m.load_state_dict(base.state_dict(), strict=False)  # identical weights; only the position term differs
        models[arm] = m
    g = torch.Generator().manual_seed(ctx.seed + 1)
    perms = [torch.randperm(L, generator=g) for _ in range(ctx.size(4, 32))]
    errors, per_token = {}, {}
    with torch.no_grad():
        for arm, m in models.items():
            y = m(tokens)
            worst = torch.zeros(L)
            for perm in perms:
                diff = (m(tokens[:, perm]) - y[:, perm]).abs().amax(dim=(0, 2)) / y.abs().max()  # (L,) in permuted order
                worst = torch.maximum(worst, diff[torch.argsort(perm)])  # back to the original positions
            errors[arm] = _sig(float(worst.max()))
            per_token[arm] = worst.tolist()
    tested = "sinusoidal" if use_pe else "none"
    numbers = {
        "data": data_name,
        "sequences": B,
        "tokens": L,
        "token_features": F_,
        "patch": p,
        "layers": layers,
        "d_model": d_model,
        "permutations": len(perms),
        "use_pe": use_pe,
        "tested": tested,
        "errors": errors,
        "measure": "max |f(Px) - P f(x)| / max |f(x)|, float32, eval mode",
    }

    fig, axes = new_figure(3, 1, size=(4.4, 3.6))
    a = axes[0, 0]
    colors = {"none": "C0", "sinusoidal": "C3", "learned": "C1"}
    for arm in models:
        a.semilogy(np.arange(L), np.maximum(per_token[arm], 1e-12), "o-", ms=3, color=colors[arm], label=f"{arm} PE")
    a.axhline(1e-5, color="grey", ls=":", lw=1, label="tolerance 1e-5")
    a.set(title="worst error per token, all permutations", xlabel="token (patch) position", ylabel="|f(Px) - P f(x)| / max|f|")
    a.legend(fontsize=7)
    a.grid(alpha=0.3, which="both")
    # an image and the same image with its patches shuffled: without PE the model cannot tell them apart (up to the shuffle)
    data = lab_data(ctx.quick, n_train=1, seed=ctx.seed)
    img = data.train_x[0, 0].float()
    side = img.shape[-1] // p
    perm = perms[0]
    patches = img.reshape(side, p, side, p).permute(0, 2, 1, 3).reshape(L, p, p)
    shuffled = patches[perm].reshape(side, side, p, p).permute(0, 2, 1, 3).reshape(img.shape)
    axes[0, 1].imshow(img.numpy(), cmap="gray", interpolation="nearest")
    axes[0, 1].set(title=f"an image as {L} patch tokens", xticks=[], yticks=[])
    axes[0, 2].imshow(shuffled.numpy(), cmap="gray", interpolation="nearest")
    axes[0, 2].set(title="its tokens permuted: without PE the\noutputs are the same, permuted", xticks=[], yticks=[])
    for a in axes[0][1:]:
        for k in range(1, side):
            a.axhline(k * p - 0.5, color="C0", lw=0.8)
            a.axvline(k * p - 0.5, color="C0", lw=0.8)
    fig.suptitle("permutation equivariance of a transformer encoder, with and without positional encoding", fontsize=10)
    figure = save_figure(fig, ctx.figure_path("permutation"))
    verdict, reason = judge_c30(numbers)
    return Finding(numbers, [figure], verdict, reason)


# ============================================================================ C31


def softmax_jacobian_norm(p: torch.Tensor) -> torch.Tensor:
    """Frobenius norm of d softmax / d logits = diag(p) - p p^T for each row of p (..., S):
    sqrt(sum p^2 - 2 sum p^3 + (sum p^2)^2). It goes to 0 as the softmax saturates (one p -> 1)."""
    s2 = (p * p).sum(-1)
    s3 = (p * p * p).sum(-1)
    return (s2 - 2 * s3 + s2 * s2).clamp_min(0).sqrt()


def attention_stats(d_k: int, scaled: bool, groups: int, queries: int, keys: int, seed: int) -> dict:
    """Random q, k, v with N(0, 1) entries through scaled_dot_product_attention (scale 1/sqrt(d_k)
    or 1): logit variance, mean entropy of a row / log(keys), mean largest weight, mean softmax
    Jacobian norm."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(groups, queries, d_k, generator=g, dtype=torch.float64)
    k = torch.randn(groups, keys, d_k, generator=g, dtype=torch.float64)
    v = torch.randn(groups, keys, 4, generator=g, dtype=torch.float64)
    scale = 1 / math.sqrt(d_k) if scaled else 1.0
    _, w = scaled_dot_product_attention(q, k, v, scale=scale, return_weights=True)  # (G, n, S)
    logits = (q @ k.transpose(-2, -1)) * scale
    entropy = -(w * torch.log(w.clamp_min(1e-300))).sum(-1)
    return {
        "logit_var": float(logits.var()),
        "entropy": float(entropy.mean() / math.log(keys)),
        "max_weight": float(w.amax(-1).mean()),
        "jacobian_norm": float(softmax_jacobian_norm(w).mean()),
        "example_row": w[0, 0].tolist(),
    }


def judge_c31(numbers: dict) -> tuple[str, str]:
    """Holds if (1) the unscaled logits have variance ~ d_k (ratio 0.7-1.3 at every d_k) and their
    softmax saturates at the largest d_k (mean largest weight >= 0.9), the danger the scaling is
    for; and (2) the arm under test keeps logit variance ~1 (0.7-1.3) at every d_k and does not
    saturate: at the largest d_k its largest weight stays <= 0.5, its entropy >= 0.9 times the one
    at the smallest d_k and its Jacobian norm >= 0.5 times."""
    n = numbers
    ds = [str(d) for d in n["d_k"]]
    un, te = n["arms"]["unscaled"], n["arms"]["tested"]
    lo, hi = ds[0], ds[-1]
    var_d = all(0.7 <= un[d]["logit_var"] / int(d) <= 1.3 for d in ds)
    saturates = un[hi]["max_weight"] >= 0.9
    var_1 = all(0.7 <= te[d]["logit_var"] <= 1.3 for d in ds)
    flat = te[hi]["max_weight"] <= 0.5 and te[hi]["entropy"] >= 0.9 * te[lo]["entropy"] and te[hi]["jacobian_norm"] >= 0.5 * te[lo]["jacobian_norm"]
    summary = (
        f"d_k {lo} -> {hi}, {n['keys']} keys: unscaled logit variance {un[lo]['logit_var']:.3g} -> {un[hi]['logit_var']:.4g}, "
        f"largest weight {un[lo]['max_weight']:.2f} -> {un[hi]['max_weight']:.3f}, entropy {un[lo]['entropy']:.2f} -> "
        f"{un[hi]['entropy']:.3f} of log S, Jacobian norm {un[lo]['jacobian_norm']:.3f} -> {un[hi]['jacobian_norm']:.2g}; "
        f"{n['tested']} (under test): variance {te[lo]['logit_var']:.3g} -> {te[hi]['logit_var']:.4g}, largest weight "
        f"{te[lo]['max_weight']:.2f} -> {te[hi]['max_weight']:.3f}, entropy {te[lo]['entropy']:.2f} -> {te[hi]['entropy']:.3f}, "
        f"Jacobian norm {te[lo]['jacobian_norm']:.3f} -> {te[hi]['jacobian_norm']:.2g}"
    )
    if var_d and saturates and var_1 and flat:
        return "holds", summary
    what = []
    if not (var_d and saturates):
        what.append("the unscaled logits do not grow and saturate as d_k grows")
    if not var_1:
        what.append(f"the {n['tested']} logits do not keep variance ~1")
    if not flat:
        what.append(f"the {n['tested']} softmax saturates as d_k grows")
    return "does not hold", "; ".join(what) + ". " + summary


@experiment("C31", quick_verdict="holds", opposite={"scale": False})
def run_c31(ctx: Context, scale: bool = True, d_k: Sequence[int] | None = None, keys: int = 64) -> Finding:
    """scale=True: the arm under test divides the logits by sqrt(d_k) (the claim); False: it does
    not (the opposite evidence). The unscaled arm is always measured as the reference."""
    dks = list(d_k or ctx.size((4, 16, 64, 256, 1024), (4, 8, 16, 32, 64, 128, 256, 512, 1024)))
    groups, queries = ctx.size(8, 32), 64
    tested = "scaled" if scale else "unscaled (as the tested arm)"
    arms: dict[str, dict[str, dict]] = {"unscaled": {}, "tested": {}}
    for i, d in enumerate(dks):
        arms["unscaled"][str(d)] = attention_stats(d, False, groups, queries, keys, ctx.seed + i)
        arms["tested"][str(d)] = attention_stats(d, scale, groups, queries, keys, ctx.seed + i)
    examples = {arm: arms[arm][str(dks[-1])].pop("example_row") for arm in arms}
    for arm in arms:
        for d in arms[arm]:
            arms[arm][d].pop("example_row", None)
            arms[arm][d] = {k: _sig(v, 4) for k, v in arms[arm][d].items()}
    numbers = {
        "d_k": dks,
        "keys": keys,
        "rows": groups * queries,
        "scale": scale,
        "tested": tested,
        "arms": arms,
        "measure": "q, k ~ N(0, 1) per entry, float64; entropy as a fraction of log(keys); Jacobian = ||diag(p) - p p^T||_F per row",
    }

    fig, axes = new_figure(5, 1, size=(3.6, 3.4))
    label = {"unscaled": "q.k (unscaled)", "tested": "q.k / sqrt(d_k)" if scale else "tested arm (unscaled)"}
    style = {"unscaled": ("C3", "s--"), "tested": ("C0", "o-")}
    panels = (("logit_var", "logit variance", True), ("entropy", "entropy / log S", False),
              ("max_weight", "largest weight", False), ("jacobian_norm", "||d softmax / d logits||", True))  # fmt: skip
    for a, (key, title, logy) in zip(axes[0], panels):
        for arm in ("unscaled", "tested"):
            color, fmt = style[arm]
            a.plot(dks, [arms[arm][str(d)][key] for d in dks], fmt, color=color, ms=4, label=label[arm])
        if key == "logit_var":
            a.plot(dks, dks, ":", color="grey", lw=1, label="d_k")
        a.set(xscale="log", yscale="log" if logy else "linear", title=title, xlabel="d_k")
        a.grid(alpha=0.3, which="both")
        a.legend(fontsize=7)
    a = axes[0, 4]
    for arm in ("unscaled", "tested"):
        row = np.sort(np.asarray(examples[arm]))[::-1]
        a.bar(np.arange(len(row)) + (0.2 if arm == "tested" else -0.2), row, 0.4, color=style[arm][0], label=label[arm])
    a.set(title=f"one query's weights, d_k = {dks[-1]}", xlabel="key (sorted)", ylabel="weight", xlim=(-1, 16))
    a.legend(fontsize=7)
    fig.suptitle(f"softmax saturation vs d_k ({keys} keys, unit-variance q and k)", fontsize=10)
    figure = save_figure(fig, ctx.figure_path("scaling"))
    verdict, reason = judge_c31(numbers)
    return Finding(numbers, [figure], verdict, reason)


# ============================================================================ C32


def row_sequences(quick: bool, n: int, seed: int) -> tuple[torch.Tensor, str]:
    """Images read as sequences of their rows (B, H, W): digits 8 tokens of 8 values (quick),
    Fashion-MNIST 28 of 28 (full); standardized."""
    data = lab_data(quick, n_train=n, seed=seed)
    return data.spec().normalize(data.train_x)[:, 0], data.name


def influence(model: TokenEncoder, x: torch.Tensor, causal: bool) -> torch.Tensor:
    """(L, L) matrix: entry (i, j) = max over the batch and features of |change of output i| when
    input token j alone is replaced by the same position of another sequence, / max |output|."""
    L = x.shape[1]
    other = x.roll(1, 0)
    with torch.no_grad():
        y = model(x, is_causal=causal)
        out = torch.zeros(L, L, dtype=torch.float64)
        for j in range(L):
            x2 = x.clone()
            x2[:, j] = other[:, j]
            out[:, j] = ((model(x2, is_causal=causal) - y).abs().amax(dim=(0, 2)) / y.abs().max()).double()
    return out


def future_changes(model: TokenEncoder, x: torch.Tensor, causal: bool) -> tuple[float, bool]:
    """Replace every token after position t (for every t) with another sequence's: the largest
    change of the outputs at positions <= t (absolute), and whether they stayed bit-identical."""
    other = x.roll(1, 0)
    worst, identical = 0.0, True
    with torch.no_grad():
        y = model(x, is_causal=causal)
        for t in range(x.shape[1] - 1):
            x2 = x.clone()
            x2[:, t + 1 :] = other[:, t + 1 :]
            y2 = model(x2, is_causal=causal)
            worst = max(worst, float((y2[:, : t + 1] - y[:, : t + 1]).abs().max()))
            identical = identical and torch.equal(y2[:, : t + 1], y[:, : t + 1])
    return worst, identical


def judge_c32(numbers: dict) -> tuple[str, str]:
    """Holds if, on both attention paths, the model under test shows no influence of any later
    token on an earlier output (<= 1e-6 of the output scale, single changes and whole futures
    replaced), while earlier tokens do reach later outputs (>= 1e-3: the mask does not just cut
    everything) and the unmasked control shows the future leaking (>= 1e-3: the check can see it)."""
    n = numbers
    te, un = n["arms"]["tested"], n["arms"]["unmasked"]
    paths = list(te)
    no_future = all(te[p]["future_influence"] <= 1e-6 and te[p]["future_swap_rel"] <= 1e-6 for p in paths)
    reads_past = all(te[p]["past_influence"] >= 1e-3 for p in paths)
    control_leaks = all(un[p]["future_influence"] >= 1e-3 for p in paths)
    s = te["scratch"]
    if no_future and reads_past and control_leaks:
        if all(te[p]["bit_identical"] for p in paths):
            effect = "leaves the earlier outputs bit-identical"
        else:
            effect = (f"moves the earlier outputs by at most {max(te[p]['future_influence'] for p in paths):.1g} (one token) and "
                      f"{max(te[p]['future_swap_rel'] for p in paths):.1g} (the whole future) of the output scale")  # fmt: skip
        return "holds", (
            f"{n['layers']}-layer encoder on {n['sequences']} {n['data']} images read as {n['tokens']} row tokens: with the causal "
            f"mask, changing later tokens (one at a time, or everything after position t, for every t) {effect}, on the "
            f"scratch and the fused attention path, while earlier tokens move later outputs by up to {s['past_influence']:.2g}; "
            f"without the mask the future moves earlier outputs by up to {un['scratch']['future_influence']:.2g}"
        )
    what = []
    if not no_future:
        worst = max(te[p]["future_influence"] for p in paths)
        what.append(f"the model under test ({n['tested']}) lets later tokens change earlier outputs (by up to {worst:.2g} of the output scale)")
    if not reads_past:
        what.append("earlier tokens do not reach later outputs either")
    if not control_leaks:
        what.append("even without the mask the future does not leak: the check sees nothing")
    return "does not hold", "; ".join(what)


@experiment("C32", quick_verdict="holds", opposite={"causal": False})
def run_c32(ctx: Context, causal: bool = True, layers: int | None = None) -> Finding:
    """The same encoder (sinusoidal positions, random weights) with is_causal=True and without a
    mask, on both attention paths (scratch softmax and F.scaled_dot_product_attention).
    causal=False tests the claim on the unmasked model (the opposite evidence)."""
    x, data_name = row_sequences(ctx.quick, ctx.size(32, 128), ctx.seed)
    B, L, W = x.shape
    layers = layers or ctx.size(2, 4)
    torch.manual_seed(ctx.seed)
    model = TokenEncoder(W, ctx.size(32, 64), 4, layers, position="sinusoidal").eval()
    arms: dict[str, dict[str, dict]] = {"tested": {}, "unmasked": {}}
    matrices = {}
    upper = torch.ones(L, L, dtype=torch.bool).triu(1)  # (i, j) with j > i: a later token j, an earlier output i
    lower = torch.ones(L, L, dtype=torch.bool).tril(-1)
    for path, fused in (("scratch", False), ("fused", True)):
        with use_fused(fused):
            for arm, mask in (("tested", causal), ("unmasked", False)):
                m = influence(model, x, mask)
                worst, identical = future_changes(model, x, mask)
                with torch.no_grad():
                    y_scale = float(model(x, is_causal=mask).abs().max())
                arms[arm][path] = {
                    "future_influence": _sig(float(m[upper].max())),
                    "past_influence": _sig(float(m[lower].max())),
                    "future_swap_abs": _sig(worst),
                    "future_swap_rel": _sig(worst / y_scale),
                    "bit_identical": bool(identical),
                }
                matrices[(arm, path)] = m.numpy()
    numbers = {
        "data": data_name,
        "sequences": B,
        "tokens": L,
        "token_features": W,
        "layers": layers,
        "causal": causal,
        "tested": "causal mask" if causal else "no mask",
        "arms": arms,
        "measure": "influence (i, j) = max |change of output i| / max |output| when token j is replaced by another image's row",
    }

    # the influence matrices and the first layer's attention with the mask
    fig, axes = new_figure(3, 1, size=(4.2, 4.0))
    for a, (arm, title) in zip(axes[0], (("tested", f"{'causal mask' if causal else 'no mask (tested)'}"), ("unmasked", "no mask"))):
        shown = np.log10(np.maximum(matrices[(arm, "scratch")], 1e-12))
        im = a.imshow(shown, cmap="magma", vmin=-12, vmax=0, interpolation="nearest")
        a.set(title=f"{title}: log10 influence\n(no change at all drawn as -12)", xlabel="changed input token j", ylabel="output position i")
        a.title.set_fontsize(9)
        fig.colorbar(im, ax=a, fraction=0.046)
    layer0 = model.encoder.layers[0].self_attn
    with torch.no_grad(), use_fused(False):
        h = model.encoder.layers[0].norm1(model.position(model.embed(x[:1])))
        _, w = layer0(h, h, h, is_causal=causal, need_weights=True)
    a = axes[0, 2]
    im = a.imshow(w[0].numpy(), cmap="viridis", interpolation="nearest")
    a.set(title="layer 1 attention of one image\n(mean over heads)", xlabel="key position", ylabel="query position")
    a.title.set_fontsize(9)
    fig.colorbar(im, ax=a, fraction=0.046)
    fig.suptitle(f"which inputs reach which outputs ({data_name} rows as tokens)", fontsize=10)
    figure = save_figure(fig, ctx.figure_path("causal_influence"))
    verdict, reason = judge_c32(numbers)
    return Finding(numbers, [figure], verdict, reason)


# ============================================================================ C33


class _TiedHeads(nn.Module):
    """A parametrization of in_proj_weight (3E, E) / in_proj_bias (3E): every head's query and key
    rows are head 0's (the value rows stay free), so all heads compute the same attention map."""

    def __init__(self, embed_dim: int, num_heads: int):
        super().__init__()
        self.embed_dim, self.head_dim, self.num_heads = embed_dim, embed_dim // num_heads, num_heads

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        E, d, H = self.embed_dim, self.head_dim, self.num_heads
        reps = (H,) + (1,) * (w.dim() - 1)
        return torch.cat([w[:d].repeat(*reps), w[E : E + d].repeat(*reps), w[2 * E :]])


def tie_heads(model: nn.Module) -> nn.Module:
    """Make every MultiHeadAttention in the model use one query/key projection for all heads."""
    for m in model.modules():
        if isinstance(m, MultiHeadAttention):
            if m.in_proj_weight is None:
                raise ValueError("tie_heads needs MultiHeadAttention with one stacked in_proj_weight (kdim = vdim = embed_dim)")
            parametrize.register_parametrization(m, "in_proj_weight", _TiedHeads(m.embed_dim, m.num_heads))
            if m.in_proj_bias is not None:
                parametrize.register_parametrization(m, "in_proj_bias", _TiedHeads(m.embed_dim, m.num_heads))
    return model


def total_variation(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """0.5 * sum |p - q| over the last axis: the fraction of attention mass placed differently (0..1)."""
    return 0.5 * (p - q).abs().sum(-1)


def head_stats(maps: torch.Tensor, grid: tuple[int, int], patch: int) -> dict:
    """One layer's maps (B, H, T, T) (class token first) -> how differently the heads attend.

    tv_heads_image: TV between two heads' rows on the same image (mean over images, queries, pairs),
    tv_pairs_image: the same per pair of heads;
    tv_same_head_other_image: one head on two different images (a scale for input dependence);
    tv_pairs_mean_map: per pair of heads, TV between their maps averaged over images (systematic);
    tv_split_half: the same head's mean map from the odd vs the even images (sampling noise);
    distance: per head, the mean attention distance of patch queries to patch keys, pixels.
    """
    A = maps.double()
    B, H, T, _ = A.shape
    pairs = list(itertools.combinations(range(H), 2))
    mean, half1, half2 = A.mean(0), A[0::2].mean(0), A[1::2].mean(0)  # (H, T, T)
    gh, gw = grid
    rows = torch.arange(gh * gw) // gw
    cols = torch.arange(gh * gw) % gw
    dist = torch.sqrt((rows[:, None] - rows[None]) ** 2 + (cols[:, None] - cols[None]) ** 2).double() * patch  # (N, N) pixels
    pp = A[:, :, 1:, 1:]
    pp = pp / pp.sum(-1, keepdim=True).clamp_min(1e-12)  # patch queries' weights on the patch keys
    distance = (pp * dist).sum(-1).mean(dim=(0, 2))  # (H,)
    per_image = {f"{h + 1}-{g + 1}": float(total_variation(A[:, h], A[:, g]).mean()) for h, g in pairs}
    return {
        "tv_heads_image": float(np.mean(list(per_image.values()))) if pairs else 0.0,
        "tv_pairs_image": per_image,
        "tv_same_head_other_image": float(total_variation(A, A.roll(1, 0)).mean()),
        "tv_pairs_mean_map": {f"{h + 1}-{g + 1}": float(total_variation(mean[h], mean[g]).mean()) for h, g in pairs},
        "tv_split_half": float(total_variation(half1, half2).mean()),
        "distance": distance.tolist(),
    }


def judge_c33(numbers: dict) -> tuple[str, str]:
    """A pair of heads in a layer attends differently when the TV between their image-averaged
    maps is >= 0.1 (a tenth of the attention mass placed elsewhere, systematically) and >= 3x
    that layer's split-half noise. Holds if every pair in every layer of the trained model does;
    holds with a correction if at least half the pairs do (the rest are near-duplicates); does not
    hold otherwise (e.g. heads with tied query/key projections: identical maps)."""
    n = numbers
    distinct, total, duplicates = 0, 0, []
    for layer, s in n["trained"].items():
        floor = max(0.1, 3 * s["tv_split_half"])
        for pair, tv in s["tv_pairs_mean_map"].items():
            total += 1
            if tv >= floor:
                distinct += 1
            else:
                per_image = s.get("tv_pairs_image", {}).get(pair)
                on_images = f", {per_image:.2f} image by image" if per_image is not None else ""
                duplicates.append(f"layer {layer} heads {pair}: averaged maps {tv:.2f} apart{on_images}")
    frac = distinct / max(1, total)
    t, i = n["trained"], n["init"]
    layers = list(t)
    img = ", ".join(f"{t[k]['tv_heads_image']:.2f}" for k in layers)
    mm = ", ".join(f"{min(t[k]['tv_pairs_mean_map'].values(), default=0):.2f}" for k in layers)
    noise = max(t[k]["tv_split_half"] for k in layers)
    setting = (
        f"{n['model']} ({n['heads']} heads x {len(layers)} layers) trained {n['epochs']} epochs on {n['train_images']} {n['data']} "
        f"images (test accuracy {n['test_accuracy']:.2f}){', query/key projections tied across heads' if n['tie_heads'] else ''}"
    )
    detail = (
        f"on the same image two heads place {img} of their attention differently (per layer; before training "
        f"{max(i[k]['tv_heads_image'] for k in layers):.3f} at most); the closest pair's image-averaged maps differ by {mm} "
        f"against split-half noise <= {noise:.3f}; {distinct}/{total} head pairs distinct"
    )
    if frac == 1.0:
        return "holds", f"{setting}: {detail}"
    if frac >= 0.5:
        return "holds with a correction", f"{setting}: most heads differ but some are near-duplicates ({'; '.join(duplicates[:4])}): {detail}"
    return "does not hold", f"{setting}: the heads attend alike: {detail}"


def _small_vit(quick: bool, num_classes: int, in_chans: int, img: int) -> tuple[ViT, str]:
    if quick:  # digits 8x8: 2x2 patches, a 4x4 grid as vit_tiny_28's
        return ViT(ViTConfig(patch_size=2, embed_dim=32, depth=2, num_heads=4, mlp_ratio=2.0), num_classes, in_chans, img), "ViT 8x8/2, D=32"
    return create_model("vit_tiny_28", num_classes=num_classes, in_chans=in_chans, img_size=img), "vit_tiny_28"


# tied maps are identical at any epoch: 1 epoch is enough for the opposite evidence
@experiment("C33", quick_verdict="holds", opposite={"tie_heads_qk": True, "epochs": 1})
def run_c33(ctx: Context, tie_heads_qk: bool = False, epochs: int | None = None, n_train: int | None = None) -> Finding:
    """Train a small ViT (quick: 2 layers, 8 epochs on digits; full: vit_tiny_28, 2 epochs on all of
    Fashion-MNIST, about 2 minutes on one thread) and compare its heads' attention maps on held-out
    images. n_train takes a subset: with 20k images (same 2 epochs) two of the 36 head pairs of
    layer 2 stayed near-duplicates on average (TV 0.07-0.08), so the verdict depends on how far
    the heads are trained. tie_heads_qk=True shares the query/key projections between the heads
    (the opposite evidence: one map per layer, copied)."""
    data = lab_data(ctx.quick, n_train=n_train, n_test=ctx.size(400, 1000), seed=ctx.seed)
    img = data.train_x.shape[-1]
    torch.manual_seed(ctx.seed)
    model, name = _small_vit(ctx.quick, data.num_classes, data.train_x.shape[1], img)
    if tie_heads_qk:
        tie_heads(model)
    x = data.spec().normalize(data.test_x)
    grid, patch = model.grid_size, model.patch_embed.patch_size[0]

    def stats() -> dict:
        return {str(i + 1): head_stats(a, grid, patch) for i, a in enumerate(attention_maps(model, x))}

    before = stats()
    epochs = epochs or ctx.size(8, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=ctx.size(3e-3, 1e-3), weight_decay=0.05)
    hist = train_small(model, data, opt, epochs=epochs, batch_size=ctx.size(32, 64), seed=ctx.seed)
    maps = attention_maps(model, x)
    after = {str(i + 1): head_stats(a, grid, patch) for i, a in enumerate(maps)}

    def clean(s: dict) -> dict:
        return {k: (rounded(v, 3) if not isinstance(v, dict) else {p: _sig(t) for p, t in v.items()}) for k, v in s.items()}

    numbers = {
        "model": name,
        "data": data.name,
        "train_images": len(data.train_x),
        "test_images": len(x),
        "epochs": epochs,
        "heads": model.cfg.num_heads,
        "tie_heads": tie_heads_qk,
        "test_accuracy": _sig(hist.epoch_test_accuracy[-1]) if hist.epoch_test_accuracy else 0.0,
        "trained": {k: clean(v) for k, v in after.items()},
        "init": {k: clean(v) for k, v in before.items()},
        "measure": "TV = 0.5 sum |p - q| over the keys, mean over query tokens; maps of held-out images",
    }

    # figure 1: the class token's attention in every head of the last layer, on a few test images
    H = model.cfg.num_heads
    shown = ctx.size(3, 4)
    cls = cls_attention_grid(maps[-1][:shown], grid)  # (n, H, gh, gw)
    fig, axes = new_figure(H + 1, shown, size=(2.0, 2.0))
    for r in range(shown):
        axes[r, 0].imshow(data.test_x[r, 0].numpy(), cmap="gray", interpolation="nearest")
        for h in range(H):
            up = F.interpolate(cls[r, h][None, None].float(), size=(img, img), mode="nearest")[0, 0]
            axes[r, h + 1].imshow(data.test_x[r, 0].numpy(), cmap="gray", interpolation="nearest")
            axes[r, h + 1].imshow(up.numpy(), cmap="inferno", alpha=0.6, interpolation="nearest")
            if r == 0:
                axes[r, h + 1].set_title(f"head {h + 1}", fontsize=9)
        for a in axes[r]:
            a.set(xticks=[], yticks=[])
    axes[0, 0].set_title("image", fontsize=9)
    fig.suptitle(f"class-token attention to the patches, last layer ({name}, {data.name}; colours scaled per panel)", fontsize=10)
    heads_fig = save_figure(fig, ctx.figure_path("heads_cls_attention"))

    # figure 2: pairwise TV of the image-averaged maps per layer, and the heads' attention distances
    layers = list(after)
    fig, axes = new_figure(2, 1, size=(5.0, 3.8))
    a = axes[0, 0]
    width = 0.8 / max(1, len(after[layers[0]]["tv_pairs_mean_map"]))
    for li, k in enumerate(layers):
        vals = list(after[k]["tv_pairs_mean_map"].values())
        a.bar(li + np.arange(len(vals)) * width - 0.4 + width / 2, vals, width, color="C0", label="head pairs (trained)" if li == 0 else None)
        a.plot([li - 0.4, li + 0.4], [after[k]["tv_split_half"]] * 2, color="C3", lw=2, label="split-half noise" if li == 0 else None)
        a.plot([li - 0.4, li + 0.4], [max(before[k]["tv_pairs_mean_map"].values(), default=0)] * 2, color="C7", ls="--",
               label="largest pair before training" if li == 0 else None)  # fmt: skip
    a.axhline(0.1, color="grey", ls=":", lw=1, label="0.1")
    a.set(xticks=range(len(layers)), xticklabels=[f"layer {k}" for k in layers], ylabel="TV between mean maps",
          title="how differently each pair of heads attends")  # fmt: skip
    a.legend(fontsize=7)
    a = axes[0, 1]
    for li, k in enumerate(layers):
        a.scatter([li + 1] * H, after[k]["distance"], color=[f"C{h}" for h in range(H)], s=20)
    a.set(xlabel="layer", ylabel="mean attention distance (pixels)", title="each head's attention distance (dots: heads)",
          xticks=range(1, len(layers) + 1))  # fmt: skip
    a.grid(alpha=0.3)
    fig.suptitle(f"{name} on {data.name}: heads compared on {len(x)} held-out images", fontsize=10)
    pairs_fig = save_figure(fig, ctx.figure_path("head_differences"))
    verdict, reason = judge_c33(numbers)
    return Finding(numbers, [heads_fig, pairs_fig], verdict, reason)


# ============================================================================ C34


def local_mask(grid: tuple[int, int], window: int, prefix: int = 1) -> torch.Tensor:
    """(T, T) boolean mask in nn.MultiheadAttention's convention (True = NOT allowed), T = prefix +
    gh * gw: a patch token may attend the class token and the patches within `window` grid steps
    (Chebyshev distance); the class token only itself."""
    gh, gw = grid
    r = torch.arange(gh * gw) // gw
    c = torch.arange(gh * gw) % gw
    near = ((r[:, None] - r[None]).abs() <= window) & ((c[:, None] - c[None]).abs() <= window)
    T = prefix + gh * gw
    allowed = torch.zeros(T, T, dtype=torch.bool)
    allowed[prefix:, prefix:] = near
    allowed[prefix:, :prefix] = True
    allowed[:prefix, :prefix] = torch.eye(prefix, dtype=torch.bool)
    return ~allowed


def token_footprints(model: ViT, x: torch.Tensor, mask: torch.Tensor | None, seed: int) -> torch.Tensor:
    """(T, H, W): |d (output token t . g_t) / d image|, summed over the images, for every output
    token of the first encoder layer (embedding + block 1), g_t a fixed random direction."""
    x = x.clone().requires_grad_(True)
    y = model.blocks[0](model.embed(x), src_mask=mask)  # (B, T, D)
    g = torch.randn(y.shape[1:], generator=torch.Generator().manual_seed(seed))
    out = []
    for t in range(y.shape[1]):
        (grad,) = torch.autograd.grad((y[:, t] * g[t]).sum(), x, retain_graph=True)
        out.append(grad.abs().sum(dim=(0, 1)))
    return torch.stack(out)


def judge_c34(numbers: dict) -> tuple[str, str]:
    """Holds if every output token of the ViT's first encoder layer (the arm under test) has a
    non-zero input gradient on every pixel (receptive field = the whole image) while the CNN's first
    conv, measured the same way, sees a k x k window (k < the image side)."""
    n = numbers
    v, c = n["vit"], n["cnn"]
    side = n["image"][-1]
    global_vit = v["min_support"] == 1.0
    local_cnn = c["first_rf_measured"] < side and c["first_rf_measured"] == c["first_rf_analytic"]
    vit_text = (
        f"{n['vit_model']} ({n['grid'][0]}x{n['grid'][1]} patches of {n['patch']}), first encoder layer with {n['attention']} "
        f"attention: each of the {v['tokens']} output tokens depends on "
        + (f"{v['min_support']:.0%}" if v["min_support"] == v["max_support"] else f"{v['min_support']:.0%} to {v['max_support']:.0%}")
        + f" of the {side}x{side} pixels"
    )
    cnn_text = (
        f"{n['cnn_model']}'s first conv sees {c['first_rf_measured']}x{c['first_rf_measured']} = {c['first_support_pixels']} pixels "
        f"({c['first_support_pixels'] / (side * side):.1%}); its field reaches the whole image only at conv layer "
        f"{c['convs_to_cover']} ({c['layer_to_cover']})"
    )
    if global_vit and local_cnn:
        return "holds", (
            f"{vit_text} (gradients on {n['images']} {n['data']} images); {v['own_patch_share']:.0%} of a patch token's gradient "
            f"mass still comes from its own patch (the residual path), so 'global' is what it can see, not what it weighs most; {cnn_text}"
        )
    what = []
    if not global_vit:
        what.append(f"{vit_text}: not the whole image")
    if not local_cnn:
        what.append(f"the CNN's first layer is not local ({cnn_text})")
    return "does not hold", "; ".join(what)


@experiment("C34", quick_verdict="holds", opposite={"attention": "local"})
def run_c34(ctx: Context, attention: str = "global", window: int = 1, patch_size: int = 4, cnn: str = "resnet20") -> Finding:
    """Input-gradient footprints of every output token of the first encoder layer of vit_tiny_28
    (with `patch_size`, default 4: a 7x7 grid) on real 28x28 images, against the first conv of
    `cnn`. attention="local" restricts each patch to its neighbours within `window` grid steps
    (the opposite evidence)."""
    if attention not in ("global", "local"):
        raise ValueError(f"attention is 'global' or 'local', got {attention!r}")
    data = lab_data(ctx.quick, n_train=ctx.size(4, 32), seed=ctx.seed)
    x = data.spec().normalize(data.train_x)
    if x.shape[-1] != 28:  # digits (quick): upsample to the model's 28x28
        x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    side = x.shape[-1]
    torch.manual_seed(ctx.seed)
    vit = create_model("vit_tiny_28", patch_size=patch_size, num_classes=data.num_classes).eval()
    grid = vit.grid_size
    masks = {"global": None, "local": local_mask(grid, window)}
    fp = {arm: token_footprints(vit, x, m, ctx.seed) for arm, m in masks.items()}  # (T, H, W)
    tested = fp[attention]
    support = (tested > 0).flatten(1).float().mean(1)  # (T,)
    # share of a patch token's gradient mass inside its own patch
    own = []
    for t in range(1, tested.shape[0]):
        i, j = divmod(t - 1, grid[1])
        cell = tested[t, i * patch_size : (i + 1) * patch_size, j * patch_size : (j + 1) * patch_size]
        own.append(float(cell.sum() / tested[t].sum()))

    # the CNN: analytic and measured field of its first conv, and where its field covers the image
    torch.manual_seed(ctx.seed)
    net = create_model(cnn, in_chans=1, num_classes=data.num_classes)
    convs = [name for name, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    first = fields(net, (1, side, side), [convs[0]])[0]
    s = summarize(create_model(cnn, in_chans=1, num_classes=data.num_classes), (1, side, side))
    cover = next((k for k, name in enumerate(convs, 1) if s.row(name).is_global or min(s.row(name).receptive_field) >= side), None)
    # the CNN's gradient footprint on the real image (its own weights, not the probe's)
    net = create_model(cnn, in_chans=1, num_classes=data.num_classes).eval()
    conv = dict(net.named_modules())[convs[0]]
    xi = x.clone().requires_grad_(True)
    y = conv(xi)
    (cg,) = torch.autograd.grad(y[:, :, y.shape[-2] // 2, y.shape[-1] // 2].sum(), xi)
    cnn_fp = cg.abs().sum(dim=(0, 1))
    (r0, r1), (c0, c1) = first["measured_extent"]
    numbers = {
        "data": data.name,
        "images": len(x),
        "image": [1, side, side],
        "vit_model": f"vit_tiny_28 (patch_size={patch_size})",
        "patch": patch_size,
        "grid": list(grid),
        "attention": attention,
        "window": window,
        "vit": {
            "tokens": int(tested.shape[0]),
            "min_support": _sig(float(support.min()), 4),
            "max_support": _sig(float(support.max()), 4),
            "centre_support": _sig(float(support[1 + (grid[0] // 2) * grid[1] + grid[1] // 2]), 4),
            "own_patch_share": _sig(float(np.mean(own)), 3),
        },
        "support_by_arm": {arm: _sig(float((f > 0).flatten(1).float().mean(1).min()), 4) for arm, f in fp.items()},
        "cnn_model": cnn,
        "cnn": {
            "first_layer": convs[0],
            "first_rf_analytic": first["rf"],
            "first_rf_measured": first["measured_size"],
            "first_extent": [[r0, r1], [c0, c1]],
            "first_support_pixels": int((cnn_fp > 0).sum()),
            "convs_to_cover": cover,
            "layer_to_cover": convs[cover - 1] if cover else None,
        },
        "measure": "support = fraction of input pixels with a non-zero gradient of one output token (ViT) / the centre unit (CNN)",
    }

    import matplotlib

    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")  # NaN (an exactly zero gradient) drawn white
    fig, axes = new_figure(4, 1, size=(3.4, 3.6))
    centre = 1 + (grid[0] // 2) * grid[1] + grid[1] // 2
    axes[0, 0].imshow(x[0, 0].numpy(), cmap="gray", interpolation="nearest")
    axes[0, 0].set_title(f"an input ({data.name}, as {side}x{side}, standardized)", fontsize=9)
    panels = ((fp["global"][centre], "ViT layer 1, global attention"), (fp["local"][centre], f"ViT layer 1, local mask ({2 * window + 1}x{2 * window + 1} patches)"),
              (cnn_fp, f"{cnn} first conv ({first['rf']}x{first['rf']})"))  # fmt: skip
    for a, (f, title) in zip(axes[0][1:], panels):
        f = f.detach().numpy()
        shown = np.where(f > 0, np.log10(np.maximum(f, 1e-30) / f.max()), np.nan)
        im = a.imshow(shown, cmap=cmap, vmin=-8, vmax=0, interpolation="nearest")
        a.set_title(f"{title}\nnon-zero on {(f > 0).mean():.0%} of the pixels", fontsize=9)
        fig.colorbar(im, ax=a, fraction=0.046, label="log10 |grad| / max")
    for a in axes[0]:
        a.set(xticks=[], yticks=[])
    fig.suptitle("input-gradient footprint of one output (centre token / centre unit); white = exactly zero", fontsize=10)
    figure = save_figure(fig, ctx.figure_path("footprints"))
    verdict, reason = judge_c34(numbers)
    return Finding(numbers, [figure], verdict, reason)
