"""C25, C48: dense prediction (완전 합성곱 네트워크, 전치 합성곱).

C25  A small classifier with a flatten + linear head (no padding anywhere, so that every window of
     a larger input is exactly an image the classifier could be given) is trained on real images,
     then convolutionalized (deepnotes.models.fcn.convolutionalize: the first Linear's weight
     viewed as an (out, C, h, w) kernel as large as its input map, the later ones as 1x1 convs).
     On the test images at the training size the two give the same outputs (max |difference|
     against a stated tolerance). On scenes of several held-out items (deepnotes.data.scenes) the
     convolutionalized net returns a map of class scores, one per window at the net's stride; it
     equals the classifier run on every window cropped by hand, and the cell whose window is
     centred on an item names that item. The opposite evidence is a broken conversion: the weight
     reshaped in a channels-last order (how a port from a channels-last framework goes wrong) or
     with rows and columns swapped.
C48  Images are downsampled by average pooling (a strided conv with an f x f kernel of 1/f^2) and
     brought back by transposed convolutions: the adjoint (the same weights, transposed: the
     gradient of the downsampling), the pseudo-inverse (f^2 times the adjoint here: nearest
     neighbour), FCN's bilinear initialization, and a transposed conv fitted by least squares on
     training images (the best of its shape). None reconstructs held-out images exactly, and
     neither does the best linear map of any shape (the pseudo-inverse part plus the null-space
     part regressed on the low-resolution image): what pooling threw away is not in its output.
     "Transposed" is the adjoint: <conv(x), y> = <x, conv_transpose(y)>, checked, and equal to
     autograd's gradient. Kernels whose size the stride does not divide overlap unevenly
     (Odena, Dumoulin & Olah 2016, "Deconvolution and Checkerboard Artifacts", Distill): tap
     counts, and a fitted kernel-3 stride-2 transposed conv on flat input. The opposite evidence
     is factor 1 (no downsampling): then every method is exact.

Pixel units: images on the [0, 1] scale (uint8 / 255) for C48; MSE per pixel and PSNR = 10 log10(1 / MSE).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.data import ImageData
from deepnotes.data.scenes import generate_scenes
from deepnotes.lab import Context, Finding, experiment
from deepnotes.lab.common import Data, lab_data, new_figure, rounded, save_figure, train_small
from deepnotes.models.fcn import bilinear_upsampling, convolutionalize

# ============================================================================ C25

CONVERSIONS = ("exact", "channels_last", "transposed")
C25_TOLERANCE = 1e-4  # max |logit difference|, float32: the same sums in another order round differently


def window_classifier(in_chans: int, img_size: int, num_classes: int) -> nn.Sequential:
    """features -> flatten -> Linear-ReLU-Linear, with valid (unpadded) convs: on a larger input the
    convolutionalized net's window (i, j) then sees exactly the pixels of the crop at (stride i, stride j).

    Images of 16 px or more: conv5-16, pool 2, conv5-32, pool 2 (28 -> 4x4 map, stride 4, 28x28
    windows); smaller (8x8 digits): conv3-16, conv3-32, no pooling (8 -> 4x4, stride 1)."""
    if img_size >= 16:
        layers = [nn.Conv2d(in_chans, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2)]
    else:
        layers = [nn.Conv2d(in_chans, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3), nn.ReLU()]
    features = nn.Sequential(*layers)
    with torch.no_grad():
        c, h, w = features(torch.zeros(1, in_chans, img_size, img_size)).shape[1:]
    if h < 1 or w < 1:
        raise ValueError(f"images of {img_size} px are too small for window_classifier (need at least 5)")
    head = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 64), nn.ReLU(), nn.Linear(64, num_classes))
    return nn.Sequential(OrderedDict(features=features, head=head))


def net_stride(model: nn.Module) -> int:
    """The step between neighbouring windows: the product of the strides of every conv and pool."""
    s = 1
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            st = m.stride if isinstance(m.stride, int) else m.stride[0]
            s *= int(st)
    return s


def miswire(fcn: nn.Sequential, how: str) -> nn.Sequential:
    """Break the first head conv of a convolutionalized net the way a wrong conversion would (in place).

    "channels_last": the Linear's row read as (h, w, C) instead of nn.Flatten's (C, h, w) order, the
    order of a channels-last framework; "transposed": the kernel's rows and columns swapped."""
    if how not in CONVERSIONS:
        raise ValueError(f"conversion must be one of {CONVERSIONS}, got {how!r}")
    if how == "exact":
        return fcn
    conv = next(m for m in fcn.head if isinstance(m, nn.Conv2d))
    out, c, h, w = conv.weight.shape
    with torch.no_grad():
        if how == "channels_last":
            new = conv.weight.reshape(out, -1).view(out, h, w, c).permute(0, 3, 1, 2)
        else:
            if h != w:
                raise ValueError(f"conversion='transposed' needs a square kernel, got {h}x{w}")
            new = conv.weight.transpose(2, 3)
        conv.weight.copy_(new.contiguous())
    return fcn


@torch.no_grad()
def crop_scores(classifier: nn.Module, x: torch.Tensor, size: tuple[int, int], stride: int, grid: tuple[int, int]) -> torch.Tensor:
    """The classifier on every window cropped by hand: (B, classes, gh, gw), window (i, j) at
    rows stride*i .. stride*i + h - 1, columns stride*j .. stride*j + w - 1."""
    h, w = size
    rows = []
    for i in range(grid[0]):
        row = [classifier(x[:, :, stride * i : stride * i + h, stride * j : stride * j + w]) for j in range(grid[1])]
        rows.append(torch.stack(row, dim=-1))
    return torch.stack(rows, dim=-2)


def centred_cells(placements: Sequence[np.ndarray], boxes: Sequence[np.ndarray], stride: int, grid: tuple[int, int]) -> list[tuple]:
    """For every pasted item: (scene, cell row, cell column, item class, offset in pixels), the
    cell being the one whose window starts nearest to the item's square (at most stride / 2 away
    in each direction, so the window is centred on the item to within stride / 2)."""
    out = []
    for s, (place, box) in enumerate(zip(placements, boxes)):
        for (_, top, left), b in zip(place, box):
            i = min(int(math.floor(top / stride + 0.5)), grid[0] - 1)
            j = min(int(math.floor(left / stride + 0.5)), grid[1] - 1)
            offset = max(abs(stride * i - int(top)), abs(stride * j - int(left)))
            out.append((s, i, j, int(b[4]) - 1, offset))
    return out


def judge_c25(numbers: dict) -> tuple[str, str]:
    """Holds if (1) at the training size the convolutionalized net gives the classifier's outputs on
    every test image (max |difference| <= tolerance), (2) on the larger scenes it returns a score
    map of the expected (H - h) / stride + 1 cells per side, more than one, (3) that map equals
    the classifier run on each hand-cropped window (max |difference| <= tolerance, and the same
    argmax in every cell whose top-two margin exceeds the tolerance), and (4) the cell centred on
    an item names it for at least half of the items (chance: 1 / classes) and at least 0.6 of the
    classifier's test accuracy. Otherwise it does not hold; which part failed is the reason."""
    n = numbers
    tol = n["tolerance"]
    eq, sm = n["equal"], n["score_map"]
    equal = eq["max_abs_diff"] <= tol
    grid_ok = sm["grid"] == sm["expected_grid"] and sm["grid"][0] * sm["grid"][1] > 1
    windows = sm["vs_crops_max_abs_diff"] <= tol and sm["argmax_disagreements"] == 0
    acc, ref = sm["centred_accuracy"], n["classifier_test_accuracy"]
    names = acc >= 0.5 and acc >= 0.6 * ref
    if equal and grid_ok and windows and names:
        return "holds", (
            f"on {n['data']} ({n['test_images']:,} test images at {n['input_size']}) the FC head as a "
            f"{n['first_kernel']} conv gives the classifier's logits to {eq['max_abs_diff']:.1e} (tolerance {tol:g}); on "
            f"{sm['scenes']} {sm['canvas']} scenes of {sm['items_per_scene']} held-out items it returns a "
            f"{sm['grid'][0]}x{sm['grid'][1]} score map (stride {n['stride']}) equal to the classifier on every hand-cropped "
            f"window ({sm['vs_crops_max_abs_diff']:.1e}); the cell centred on an item names it for {acc:.1%} of "
            f"{sm['centred_items']} items (classifier test accuracy {ref:.1%})"
        )
    what = []
    if not equal:
        what.append(
            f"with the {n['conversion']} conversion the conv head misses the classifier's logits by up to "
            f"{eq['max_abs_diff']:.3g} (tolerance {tol:g}; argmax agrees on {eq['argmax_agreement']:.1%} of test images)"
        )
    if not grid_ok:
        what.append(f"the score map is {sm['grid']}, expected {sm['expected_grid']}")
    if not windows:
        what.append(
            f"the score map differs from the hand-cropped windows by {sm['vs_crops_max_abs_diff']:.3g} "
            f"({sm['argmax_disagreements']} cells with another argmax)"
        )
    if not names:
        what.append(f"the cell centred on an item names it for {acc:.1%} of items (classifier: {ref:.1%})")
    return "does not hold", "; ".join(what)


def _image_data(data: Data) -> ImageData:
    to = lambda t: t.numpy()  # noqa: E731
    return ImageData(data.name, to(data.train_x), to(data.train_y), to(data.test_x), to(data.test_y), data.classes, "lab_data")


@experiment("C25", quick_verdict="holds", opposite={"conversion": "channels_last"})
def run_c25(
    ctx: Context,
    conversion: str = "exact",
    canvas: int | None = None,
    items_per_scene: tuple[int, int] | None = None,
    scenes: int | None = None,
    epochs: int | None = None,
) -> Finding:
    """window_classifier trained with Adam on digits (quick) or all of Fashion-MNIST (full), then
    convolutionalized. conversion="exact" is convolutionalize's; "channels_last" or "transposed"
    miswires the first conv (the opposite evidence). Scenes: generate_scenes on the test split (held
    out items), canvas 24 with 2-3 items (digits) or 84 with 2-4 items (Fashion-MNIST), no overlap."""
    if conversion not in CONVERSIONS:
        raise ValueError(f"conversion must be one of {CONVERSIONS}, got {conversion!r}")
    data = lab_data(ctx.quick, seed=ctx.seed)
    c, h, w = (int(s) for s in data.train_x.shape[1:])
    torch.manual_seed(ctx.seed)
    clf = window_classifier(c, h, data.num_classes)
    epochs = epochs or ctx.size(15, 3)
    hist = train_small(clf, data, torch.optim.Adam(clf.parameters(), lr=2e-3), epochs=epochs, batch_size=ctx.size(64, 128), seed=ctx.seed)
    clf.eval()
    ctx.log(f"C25: classifier on {data.name}, test accuracy {hist.epoch_test_accuracy[-1]:.3f}")
    fcn = miswire(convolutionalize(clf, (c, h, w), check=conversion == "exact"), conversion).eval()
    first = next(m for m in fcn.head if isinstance(m, nn.Conv2d))
    stride = net_stride(clf)
    spec = data.spec()

    with torch.no_grad():
        x = spec.normalize(data.test_x)
        want = clf(x)
        got = fcn(x)
    assert got.shape[2:] == (1, 1)
    got = got.flatten(1)
    diff = (got - want).abs()
    equal = {
        "max_abs_diff": float(f"{diff.max():.3g}"),
        "max_abs_logit": rounded(float(want.abs().max())),
        "argmax_agreement": rounded(float((got.argmax(1) == want.argmax(1)).float().mean())),
    }

    canvas = canvas or ctx.size(24, 84)
    items = tuple(items_per_scene or ctx.size((2, 3), (2, 4)))
    n_scenes = scenes or ctx.size(40, 200)
    sd = generate_scenes(_image_data(data), n_scenes, canvas=canvas, items_per_scene=items, split="test", seed=ctx.seed)
    xs = spec.normalize(torch.from_numpy(sd.images))
    with torch.no_grad():
        smap = fcn(xs)  # (B, classes, gh, gw)
    grid = tuple(int(s) for s in smap.shape[2:])
    expected = tuple((canvas - s) // stride + 1 for s in (h, w))
    crops = crop_scores(clf, xs, (h, w), stride, grid) if grid == expected else smap
    top2 = crops.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > C25_TOLERANCE
    disagree = int(((smap.argmax(1) != crops.argmax(1)) & clear).sum())
    cells = centred_cells(sd.placements, sd.boxes, stride, grid)
    pred = smap.argmax(1)
    hits = [int(pred[s, i, j]) == k for s, i, j, k, _ in cells]
    offsets = np.array([o for *_, o in cells])
    hits_arr = np.array(hits, dtype=bool)
    score_map = {
        "scenes": n_scenes,
        "canvas": f"{canvas}x{canvas}",
        "items_per_scene": list(items),
        "grid": list(grid),
        "expected_grid": list(expected),
        "vs_crops_max_abs_diff": float(f"{(smap - crops).abs().max():.3g}"),
        "argmax_disagreements": disagree,
        "cells_compared": int(smap[:, 0].numel()),
        "centred_items": len(cells),
        "centred_accuracy": rounded(float(hits_arr.mean())) if len(cells) else 0.0,
        "aligned_items": int((offsets == 0).sum()),
        "aligned_accuracy": rounded(float(hits_arr[offsets == 0].mean())) if (offsets == 0).any() else None,
        "mean_offset_px": rounded(float(offsets.mean())) if len(cells) else None,
    }
    numbers = {
        "data": data.name,
        "train_images": len(data.train_x),
        "test_images": len(data.test_x),
        "epochs": epochs,
        "classifier_test_accuracy": rounded(hist.epoch_test_accuracy[-1]),
        "input_size": f"{c}x{h}x{w}",
        "first_kernel": "x".join(str(k) for k in first.kernel_size),
        "stride": stride,
        "conversion": conversion,
        "tolerance": C25_TOLERANCE,
        "equal": equal,
        "score_map": score_map,
        "measure": "centred_accuracy: argmax of the cell whose window starts within stride/2 px of an item's square "
        "(in each direction) equals the item's class",
    }
    figures = [_c25_equal_figure(ctx, want, got, conversion), _c25_map_figure(ctx, sd, smap, cells, stride, (h, w), data)]
    verdict, reason = judge_c25(numbers)
    return Finding(numbers, figures, verdict, reason)


def _c25_equal_figure(ctx: Context, want: torch.Tensor, got: torch.Tensor, conversion: str) -> str:
    fig, axes = new_figure(2, 1, size=(4.4, 3.8))
    a = axes[0, 0]
    k = min(len(want), 500)
    a.plot(want[:k].flatten().numpy(), got[:k].flatten().numpy(), ".", ms=2, alpha=0.5)
    lim = float(want[:k].abs().max()) * 1.05
    a.plot([-lim, lim], [-lim, lim], "k:", lw=1)
    a.set(title=f"logits, {k} test images ({conversion})", xlabel="classifier (flatten + linear)", ylabel="convolutionalized")
    a.grid(alpha=0.3)
    a = axes[0, 1]
    d = (got - want).abs().flatten().numpy()
    a.hist(np.log10(np.maximum(d, 1e-12)), bins=50, color="C0")
    a.axvline(math.log10(C25_TOLERANCE), color="C3", ls="--", label=f"tolerance {C25_TOLERANCE:g}")
    a.set(title="|difference| of every logit", xlabel="log10 |conv - linear|  (exact zeros at -12)", ylabel="count")
    a.legend(fontsize=8)
    fig.suptitle("an FC head and the same weights as a full-size conv")
    return save_figure(fig, ctx.figure_path("equal_outputs"))


def _c25_map_figure(ctx: Context, sd, smap: torch.Tensor, cells: list, stride: int, size: tuple[int, int], data: Data) -> str:
    """The first scene, and its score maps drawn in image coordinates: cell (i, j) as a stride x
    stride square centred on the centre of its window, so a cell sits where its window is centred."""
    from deepnotes.report.masks import palette

    s = 0
    img = sd.images[s, 0]
    H, W = img.shape
    probs = smap[s].softmax(0)  # (classes, gh, gw)
    pred = probs.argmax(0).numpy()
    gh, gw = pred.shape
    present = [int(b[4]) - 1 for b in sd.boxes[s]]
    shown = list(dict.fromkeys(present))[:3]
    names = data.classes or tuple(str(i) for i in range(data.num_classes))
    cy, cx = (size[0] - 1) / 2, (size[1] - 1) / 2  # centre of window (0, 0)
    extent = (cx - stride / 2, cx + stride * (gw - 0.5), cy + stride * (gh - 0.5), cy - stride / 2)

    def frame(a, title):
        for b in sd.boxes[s]:
            a.add_patch(_rect(b[0] - 0.5, b[1] - 0.5, b[2] - b[0], b[3] - b[1], "white", lw=0.8))
        a.set(xlim=(-0.5, W - 0.5), ylim=(H - 0.5, -0.5), title=title)
        a.set_xticks([]), a.set_yticks([])

    fig, axes = new_figure(3, 2, size=(4.0, 3.8))
    a = axes[0, 0]
    a.imshow(img, cmap="gray", interpolation="nearest")
    for b in sd.boxes[s]:
        a.text(b[0], b[1] - 1, names[int(b[4]) - 1], color="C1", fontsize=7, va="bottom")
    frame(a, f"scene {H}x{W} (held-out items)")
    a = axes[0, 1]
    pal = palette(data.num_classes + 1)[1:]
    a.imshow(pal[pred], extent=extent, interpolation="nearest")
    for sc, i, j, k, _ in cells:
        if sc == s:
            ok = pred[i, j] == k
            a.plot(cx + stride * j, cy + stride * i, "o", ms=6, mfc="white" if ok else "red", mec="black")
    handles = [_patch(pal[k], names[k]) for k in sorted(set(pred.flatten().tolist()))]
    a.legend(handles=handles, fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    frame(a, f"argmax per cell ({gh}x{gw}, stride {stride}, window {size[0]}x{size[1]})\ndots: cells centred on an item")
    a = axes[0, 2]
    im = a.imshow(probs.max(0).values.numpy(), extent=extent, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(im, ax=a, fraction=0.046)
    frame(a, "max softmax per cell")
    for a, k in zip(axes[1], shown + [None] * (3 - len(shown))):
        if k is None:
            a.axis("off")
            continue
        im = a.imshow(probs[k].numpy(), extent=extent, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
        fig.colorbar(im, ax=a, fraction=0.046)
        frame(a, f"P({names[k]}) per cell")
    fig.suptitle("the convolutionalized classifier on a larger input: a map of class scores (at window centres)")
    return save_figure(fig, ctx.figure_path("score_map"))


def _rect(x, y, w, h, color, lw=1.2):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, fill=False, edgecolor=color, lw=lw)


def _patch(rgb, label):
    from matplotlib.patches import Patch

    return Patch(facecolor=np.asarray(rgb) / 255, label=label)


# ============================================================================ C48

EXACT_MSE = 1e-10  # per-pixel MSE on the [0, 1] scale (PSNR 100 dB): float64 round-off of an exact inverse is ~1e-30
ADJOINT_TOLERANCE = 1e-6  # relative, float64
C48_METHODS = ("adjoint", "pinv_nearest", "bilinear", "fitted", "best_linear")
CONV_FIT_IMAGES = 2000  # a transposed conv has k*k + 1 unknowns (at most 145): 2,000 images give >= 128,000 equations


def avg_pool_weight(factor: int, dtype=torch.float64) -> torch.Tensor:
    """Average pooling by `factor` as a strided conv: one f x f kernel of 1 / f^2, stride f."""
    return torch.full((1, 1, factor, factor), 1.0 / factor**2, dtype=dtype)


def downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """(B, 1, H, W) -> (B, 1, H / f, W / f): average pooling, written as the strided conv D."""
    if x.shape[-1] % factor or x.shape[-2] % factor:
        raise ValueError(f"image sides {tuple(x.shape[-2:])} must be multiples of the factor {factor}")
    return F.conv2d(x, avg_pool_weight(factor, x.dtype), stride=factor)


def adjoint_upsample(z: torch.Tensor, factor: int) -> torch.Tensor:
    """D^T z: the transposed conv with D's own weights (what autograd uses to send gradients back)."""
    return F.conv_transpose2d(z, avg_pool_weight(factor, z.dtype), stride=factor)


def pinv_upsample(z: torch.Tensor, factor: int) -> torch.Tensor:
    """D^+ z = D^T (D D^T)^-1 z = f^2 D^T z (D D^T = I / f^2 for non-overlapping averages): nearest neighbour."""
    return factor**2 * adjoint_upsample(z, factor)


def transposed_geometry(kernel: int, stride: int) -> tuple[int, int]:
    """(padding, output_padding) with which a kernel-`kernel` stride-`stride` transposed conv maps n to
    stride * n: (n - 1) s - 2p + k + op = s n."""
    p = max(0, (kernel - stride + 1) // 2)
    op = stride - kernel + 2 * p
    if not 0 <= op < stride:
        raise ValueError(f"no padding maps n to {stride}n with kernel {kernel}, stride {stride}")
    return p, op


def fit_transposed_conv(z: torch.Tensor, x: torch.Tensor, kernel: int, stride: int, batch: int = 100) -> tuple[torch.Tensor, float]:
    """The single-channel transposed conv (kernel, stride, bias) with the least squared error
    ||convT(z) - x||^2 over the given pairs, solved exactly: the output is linear in the k*k weights
    and the bias, so the normal equations of those k*k + 1 unknowns, accumulated in float64.
    Returns (weight (1, 1, k, k), bias)."""
    p, op = transposed_geometry(kernel, stride)
    basis = torch.eye(kernel * kernel, dtype=torch.float64).view(1, kernel * kernel, kernel, kernel)
    m = kernel * kernel + 1
    gram = torch.zeros(m, m, dtype=torch.float64)
    rhs = torch.zeros(m, dtype=torch.float64)
    for i in range(0, len(z), batch):
        zb, xb = z[i : i + batch].double(), x[i : i + batch].double()
        phi = F.conv_transpose2d(zb, basis, stride=stride, padding=p, output_padding=op)  # (B, k*k, H, W): one map per weight
        phi = torch.cat([phi, torch.ones_like(phi[:, :1])], 1).permute(0, 2, 3, 1).reshape(-1, m)
        gram += phi.T @ phi
        rhs += phi.T @ xb.reshape(-1)
    sol = torch.linalg.lstsq(gram, rhs[:, None]).solution[:, 0]
    return sol[:-1].view(1, 1, kernel, kernel), float(sol[-1])


def apply_transposed(z: torch.Tensor, weight: torch.Tensor, bias: float, stride: int) -> torch.Tensor:
    p, op = transposed_geometry(weight.shape[-1], stride)
    return F.conv_transpose2d(z, weight.to(z.dtype), stride=stride, padding=p, output_padding=op) + bias


def fit_best_linear(z: torch.Tensor, x: torch.Tensor, factor: int, ridge: float = 1e-9) -> tuple[torch.Tensor, torch.Tensor]:
    """The best affine map from the low-resolution image to the image, of any shape (not a conv):
    x_hat = D^+ z + A z + c. D^+ z restores exactly the part of x that D sees; A z + c, fitted by
    least squares on the given pairs, guesses the null-space part x - D^+ D x (what pooling threw
    away) from z. A tiny ridge (relative to the mean diagonal) keeps the normal equations solvable
    when some low-resolution pixel is always zero. Returns (A (d_lo + 1, d_hi), with c as last row)."""
    zf = z.double().flatten(1)
    zf = torch.cat([zf, torch.ones_like(zf[:, :1])], 1)
    null = (x.double() - pinv_upsample(z.double(), factor)).flatten(1)
    gram = zf.T @ zf
    gram += ridge * gram.diagonal().mean() * torch.eye(len(gram), dtype=torch.float64)
    return torch.linalg.solve(gram, zf.T @ null), null


def apply_best_linear(z: torch.Tensor, a: torch.Tensor, factor: int) -> torch.Tensor:
    zf = z.double().flatten(1)
    zf = torch.cat([zf, torch.ones_like(zf[:, :1])], 1)
    up = pinv_upsample(z.double(), factor)
    return up + (zf @ a).view_as(up)


def adjoint_check(x: torch.Tensor, seed: int = 0) -> dict:
    """<conv(x), y> against <x, conv_transpose(y)> (float64, random y) for average pooling by 2 and for a
    random 2 -> 3 channel 3x3 stride-2 conv (padding 1), and conv_transpose(y) against autograd's
    gradient of <conv(x), y> with respect to x."""
    g = torch.Generator().manual_seed(seed)
    x = x.double()
    out = {}
    cases = {
        "avg_pool_2": (avg_pool_weight(2), 2, 0, x),
        "conv3x3_stride2": (torch.randn(3, 2, 3, 3, generator=g, dtype=torch.float64), 2, 1, torch.cat([x, x.flip(-1)], 1)),
    }
    for name, (w, s, p, xin) in cases.items():
        xin = xin.clone().requires_grad_(True)
        y_shape = F.conv2d(xin, w, stride=s, padding=p).shape
        y = torch.randn(y_shape, generator=g, dtype=torch.float64)
        forward = (F.conv2d(xin, w, stride=s, padding=p) * y).sum()
        (grad,) = torch.autograd.grad(forward, xin)
        op = xin.shape[-1] - ((y_shape[-1] - 1) * s - 2 * p + w.shape[-1])
        back = F.conv_transpose2d(y, w, stride=s, padding=p, output_padding=op)
        lhs, rhs = float(forward.detach()), float((xin.detach() * back).sum())
        out[name] = {
            "conv_x_dot_y": lhs,
            "x_dot_convT_y": rhs,
            "rel_error": float(f"{abs(lhs - rhs) / max(abs(lhs), 1e-300):.3g}"),
            "grad_max_diff": float(f"{(grad - back).abs().max():.3g}"),
        }
    return out


def tap_counts(kernel: int, stride: int = 2, n: int = 8) -> torch.Tensor:
    """How many kernel taps reach each output pixel: a transposed conv of an all-ones kernel on an
    all-ones n x n input, geometry n -> stride * n."""
    p, op = transposed_geometry(kernel, stride)
    return F.conv_transpose2d(torch.ones(1, 1, n, n), torch.ones(1, 1, kernel, kernel), stride=stride, padding=p, output_padding=op)[0, 0]


def _interior(t: torch.Tensor, margin: int) -> torch.Tensor:
    return t[..., margin:-margin, margin:-margin]


def ripple(t: torch.Tensor, margin: int) -> float:
    """(max - min) / mean of the interior (away from the zero border): 0 for a flat output."""
    c = _interior(t, margin)
    return float((c.max() - c.min()) / c.mean().abs().clamp_min(1e-300))


def _mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a.double() - b.double()) ** 2).mean())


def _psnr(mse: float) -> float:
    return 10 * math.log10(1 / mse) if mse > 0 else float("inf")


def _db(psnr: float | None) -> str:
    return "exact" if psnr is None else f"{psnr:.1f} dB"


def judge_c48(numbers: dict) -> tuple[str, str]:
    """Holds if (1) the transposed conv is the adjoint of the conv: <conv(x), y> = <x, convT(y)> to
    ADJOINT_TOLERANCE (relative) and convT(y) equals autograd's gradient to the same, for every case
    checked, and (2) at every downsampling factor none of the upsamplers (the adjoint, the
    pseudo-inverse, bilinear, the least-squares transposed conv, the best linear map of any shape)
    reconstructs the held-out images exactly: the smallest MSE exceeds exact_mse. Otherwise it does
    not hold."""
    n = numbers
    adj = n["adjoint"]
    adjoint_ok = all(c["rel_error"] <= ADJOINT_TOLERANCE and c["grad_max_diff"] <= ADJOINT_TOLERANCE for c in adj.values())
    best = {f: min(r[m]["mse"] for m in C48_METHODS) for f, r in n["reconstruction"].items()}
    exact = [f for f, v in best.items() if v <= n["exact_mse"]]
    worst_adj = max(c["rel_error"] for c in adj.values())

    def row(f):
        r = n["reconstruction"][f]
        return f"x{f}: " + ", ".join(f"{m} {_db(r[m]['psnr'])}" for m in C48_METHODS)

    if adjoint_ok and not exact:
        cb = n["checkerboard"]
        fs = list(n["reconstruction"])
        lost = ", ".join(f"x{f} {n['reconstruction'][f]['lost_energy_fraction']:.1%}" for f in fs)
        rec = ", ".join(f"x{f} {n['reconstruction'][f]['null_part_recovered']:.0%}" for f in fs)
        return "holds", (
            f"on {n['test_images']:,} held-out {n['data']} images, average-pooled then upsampled by transposed convs (PSNR; "
            + "; ".join(row(f) for f in fs)
            + f"): none is exact (best MSE {', '.join(f'x{f} {best[f]:.2g}' for f in fs)}, exact would be <= {n['exact_mse']:g}), "
            f"not even the best linear map of any shape: pooling discards the null-space part of the image ({lost} of "
            f"its energy), and a linear map of the pooled image guesses only {rec} of it. The transposed conv is the adjoint: <conv x, y> = <x, convT y> to {worst_adj:.0e} and "
            f"convT equals autograd's gradient. Kernel 3 at stride 2 overlaps unevenly (tap counts {cb['tap_ratio']['3']:g}:1; "
            f"kernel 4: {cb['tap_ratio']['4']:g}:1): the least-squares kernel-3 transposed conv ripples by "
            f"{cb['fitted_flat_ripple']['3']:.2g} on a flat input, kernel 4 by {cb['fitted_flat_ripple']['4']:.2g}"
        )
    what = []
    if not adjoint_ok:
        what.append(f"the transposed conv is not the conv's adjoint (relative error up to {worst_adj:.3g})")
    for f in exact:
        r = n["reconstruction"][f]
        exact_ones = [m for m in C48_METHODS if r[m]["mse"] <= n["exact_mse"]]
        what.append(f"at factor {f} {', '.join(exact_ones)} reconstruct{'s' if len(exact_ones) == 1 else ''} the held-out images "
                    f"exactly (MSE {best[f]:.2g} <= {n['exact_mse']:g}): nothing was thrown away")  # fmt: skip
    return "does not hold", "; ".join(what)


@experiment("C48", quick_verdict="holds", opposite={"factors": (1,)})
def run_c48(ctx: Context, factors: Sequence[int] = (2, 4), fit_images: int | None = None) -> Finding:
    """Average pooling by each factor, on digits (quick) or Fashion-MNIST (full), [0, 1] pixels, then the
    upsamplers of C48_METHODS; the best linear map is fitted on `fit_images` training images (quick:
    all 1,347 digits; full: 10,000), the least-squares transposed conv (kernel 3f, stride f) on the
    first CONV_FIT_IMAGES of them, and all are measured on the whole test split. factors=(1,) is the opposite evidence (no
    downsampling: every method is exact). The checkerboard part is always at stride 2."""
    factors = [int(f) for f in factors]
    if not factors or any(f < 1 for f in factors):
        raise ValueError(f"factors must be integers >= 1, got {factors}")
    data = lab_data(ctx.quick, n_train=fit_images or ctx.size(None, 10_000), seed=ctx.seed)
    xtr = data.train_x.double() / 255
    xte = data.test_x.double() / 255
    side = xte.shape[-1]
    recon: dict[str, dict] = {}
    shown: dict[str, torch.Tensor] = {}
    for f in factors:
        if side % f:
            raise ValueError(f"factor {f} does not divide the image side {side}")
        ztr, zte = downsample(xtr, f), downsample(xte, f)
        w_fit, b_fit = fit_transposed_conv(ztr[:CONV_FIT_IMAGES], xtr[:CONV_FIT_IMAGES], 3 * f, f)
        a_lin, _ = fit_best_linear(ztr, xtr, f)
        with torch.no_grad():
            outs = {
                "adjoint": adjoint_upsample(zte, f),
                "pinv_nearest": pinv_upsample(zte, f),
                "bilinear": bilinear_upsampling(1, f).double()(zte),
                "fitted": apply_transposed(zte, w_fit, b_fit, f),
                "best_linear": apply_best_linear(zte, a_lin, f),
            }
        row = {}
        for m, out in outs.items():
            mse = _mse(out, xte)
            row[m] = {"mse": float(f"{mse:.4g}"), "psnr": rounded(_psnr(mse)) if mse > 0 else None}  # None: exact (infinite PSNR)
        lost = _mse(xte - pinv_upsample(zte, f), torch.zeros_like(xte))
        row["lost_energy_fraction"] = rounded(lost / max(_mse(xte, torch.zeros_like(xte)), 1e-300))
        # how much of that null-space part the best linear map guesses from the pooled image
        row["null_part_recovered"] = rounded(1 - row["best_linear"]["mse"] / lost) if lost > 0 else None
        row["fitted_kernel"] = f"{3 * f}x{3 * f}, stride {f}"
        row["bilinear_kernel"] = f"{2 * f - f % 2}x{2 * f - f % 2}, stride {f}"
        recon[str(f)] = row
        shown[str(f)] = torch.stack([xte[:3], *(o[:3] for o in outs.values())], 0)  # (1 + methods, 3, 1, H, W)
        shown[f"z{f}"] = zte[:3]

    # Checkerboard (stride 2): tap counts per kernel size, and fitted kernels 3 and 4 on a flat input.
    taps = {str(k): tap_counts(k) for k in range(2, 7)}
    tap_ratio = {k: rounded(float(_interior(t, 3).max() / _interior(t, 3).min())) for k, t in taps.items()}
    z2tr, z2te = downsample(xtr, 2), downsample(xte, 2)
    flat = torch.full((1, 1, 8, 8), 0.5, dtype=torch.float64)
    fitted_ripple, fitted_mse, flat_out = {}, {}, {}
    for k in (3, 4):
        w, b = fit_transposed_conv(z2tr[:CONV_FIT_IMAGES], xtr[:CONV_FIT_IMAGES], k, 2)
        flat_out[str(k)] = apply_transposed(flat, w, b, 2)[0, 0]
        fitted_ripple[str(k)] = float(f"{ripple(flat_out[str(k)], 3):.3g}")
        fitted_mse[str(k)] = float(f"{_mse(apply_transposed(z2te, w, b, 2), xte):.4g}")
    box3 = apply_transposed(z2te[:1], torch.ones(1, 1, 3, 3), 0.0, 2)[0, 0]

    adjoint = adjoint_check(xte[:8], ctx.seed)
    numbers = {
        "data": data.name,
        "fit_images": len(xtr),
        "conv_fit_images": min(len(xtr), CONV_FIT_IMAGES),
        "test_images": len(xte),
        "image_size": f"{side}x{side}",
        "downsampling": "average pooling f x f, stride f (a strided conv with weights 1/f^2)",
        "factors": factors,
        "exact_mse": EXACT_MSE,
        "reconstruction": recon,
        "adjoint": adjoint,
        "checkerboard": {
            "stride": 2,
            "tap_ratio": tap_ratio,
            "fitted_flat_ripple": fitted_ripple,
            "fitted_mse": fitted_mse,
            "measure": "tap_ratio: max/min interior tap count of an all-ones kernel; flat ripple: (max-min)/mean of the "
            "interior output on a constant 0.5 input",
        },
    }
    figures = [
        _c48_recon_figure(ctx, shown, recon, factors, data.name),
        _c48_checker_figure(ctx, taps, flat_out, fitted_ripple, box3),
    ]
    verdict, reason = judge_c48(numbers)
    return Finding(numbers, figures, verdict, reason)


def _c48_recon_figure(ctx: Context, shown: dict, recon: dict, factors: list[int], data_name: str) -> str:
    cols = ["original", "downsampled", *C48_METHODS]
    rows = [(f, r) for f in factors for r in range(2)]
    fig, axes = new_figure(len(cols) + 1, len(rows), size=(1.9, 1.9))
    for ri, (f, r) in enumerate(rows):
        imgs = shown[str(f)]
        panels = [imgs[0, r, 0], shown[f"z{f}"][r, 0], *(imgs[1 + i, r, 0] for i in range(len(C48_METHODS)))]
        for ci, (name, im) in enumerate(zip(cols, panels)):
            a = axes[ri, ci]
            a.imshow(im.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            a.set_xticks([]), a.set_yticks([])
            if r == 0:
                extra = f"\n{_db(recon[str(f)][name]['psnr'])}" if name in C48_METHODS else (f"\nx{f}" if name != "original" else "")
                a.set_title(name.replace("_", " ") + extra, fontsize=8)
    a = axes[0, -1]
    xs = np.arange(len(C48_METHODS))
    for i, f in enumerate(factors):
        a.bar(xs + (i - (len(factors) - 1) / 2) * 0.8 / len(factors), [min(recon[str(f)][m]["psnr"] or 100, 100) for m in C48_METHODS],
              0.8 / len(factors), label=f"x{f}")  # fmt: skip
    a.set_xticks(xs, [m.replace("_", " ") for m in C48_METHODS], fontsize=7, rotation=45, ha="right")
    a.set_ylabel("PSNR (dB), test")
    a.legend(fontsize=7)
    a.grid(alpha=0.3, axis="y")
    for a in axes[1:, -1]:
        a.axis("off")
    fig.suptitle(f"average pooling undone by transposed convolutions ({data_name}, held-out images)")
    return save_figure(fig, ctx.figure_path("reconstruction"))


def _c48_checker_figure(ctx: Context, taps: dict, flat_out: dict, fitted_ripple: dict, box3: torch.Tensor) -> str:
    fig, axes = new_figure(5, 1, size=(3.0, 3.0))
    for a, k in zip(axes[0][:2], ("3", "4")):
        t = taps[k]
        im = a.imshow(t.numpy(), cmap="viridis", vmin=0, interpolation="nearest")
        fig.colorbar(im, ax=a, fraction=0.046)
        a.set(title=f"taps per pixel, kernel {k}, stride 2")
        a.set_xticks([]), a.set_yticks([])
    half = max(float((_interior(t, 3) - 0.5).abs().max()) for t in flat_out.values()) * 1.2 + 1e-6
    for a, k in zip(axes[0][2:4], ("3", "4")):  # one grey scale for both, around 0.5 (the border falls outside it)
        im = a.imshow(flat_out[k].numpy(), cmap="gray", vmin=0.5 - half, vmax=0.5 + half, interpolation="nearest")
        fig.colorbar(im, ax=a, fraction=0.046)
        a.set(title=f"fitted k{k} s2 on flat 0.5\nripple {fitted_ripple[k]:.2g}")
        a.set_xticks([]), a.set_yticks([])
    a = axes[0, 4]
    a.imshow(box3.numpy(), cmap="gray", interpolation="nearest")
    a.set(title="all-ones k3 s2 on a real image\n(the tap pattern shows through)")
    a.set_xticks([]), a.set_yticks([])
    fig.suptitle("uneven overlap: kernel size not divisible by the stride (Odena et al. 2016)")
    return save_figure(fig, ctx.figure_path("checkerboard"))
