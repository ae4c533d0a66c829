"""Layer-by-layer summary of a model: output shape, parameters, MACs, receptive field, jump.

The library behind `deepnotes inspect MODEL --input CxHxW [--json]`:

    s = summarize(model, (3, 224, 224))     # one real forward pass of one image
    print(format_table(s))                  # aligned table, totals line, legend
    s.to_json()                             # the same as plain data
    inspect_model("vgg16")                  # build by name (on the meta device: instant) + summarize

How it works. One forward pass runs under a TorchFunctionMode that sees every torch call
(conv, pool, cat, add, view, matmul, ...). Each tensor that derives from the input carries
its geometry: for each spatial axis the receptive field r, the jump j (the distance in input
pixels between neighbouring units: the product of the strides so far) and the start s (the
input coordinate of the first pixel that unit 0 sees, negative inside the padding). Unit i
of the map sees input pixels s + i*j ... s + i*j + r - 1. A window op with kernel k,
stride t, padding p, dilation d maps them as

    r_out = r_in + (k - 1) * d * j_in      j_out = j_in * t      s_out = s_in - p * j_in

Where the data flow branches and meets again (Inception's torch.cat, ResNet's F(x) + x,
DenseNet's concatenation) the elementwise/concat op takes the union of its inputs' regions,
that is the maximum over the branches (for aligned branches exactly max(r)). Because this
follows the tensors and not the module order, any nn.Module works, including functional
ops written in forward(). Module forward hooks give the names (exactly those of
model.named_modules(), so they can be passed on as CAM layers), the output shapes and the
parameters; MACs are counted per op and charged to the innermost running module.

Conventions, stated:
- MACs are multiply-accumulates for one image: conv = out_h*out_w*out_c*(in_c/groups)*k_h*k_w,
  transposed conv = in_h*in_w*in_c*(out_c/groups)*k_h*k_w, linear = in*out per position,
  matmul/attention = the products they form. Normalization, pooling, activations and
  elementwise ops count 0.
- Normalization layers are treated as pointwise (their statistics are not a spatial
  dependency: in eval mode BatchNorm is a per-channel affine map).
- After a global pooling, a flatten of the spatial axes into features, a Linear over them or
  any op that mixes all positions (softmax over positions, attention between positions),
  a unit sees the whole input: `is_global`, reported as the full input size ("global").
- Transposed convs, interpolation and adaptive pools whose windows do not tile evenly have
  position-dependent fields: the maximum over positions is reported and `exact` is False.
- An op the tracer does not know that changes the spatial shape makes the result "global"
  (a stated upper bound) rather than a guess.

The feature-map size of every conv/pool is also checked against the formula
out = floor((n - f + 2p)/s) + 1 (conv_output_size; the notes write it without the "+1").
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from deepnotes.errors import UserError
from deepnotes.explain.tracing import first_tensor, func_name, tensors

__all__ = [
    "LayerRow",
    "MeasuredField",
    "Summary",
    "conv_output_size",
    "format_table",
    "inspect_model",
    "measure_receptive_field",
    "parse_input_size",
    "summarize",
]

# --------------------------------------------------------------------------- formulas


def conv_output_size(n: int, f: int, p: int, s: int, d: int = 1, ceil_mode: bool = False) -> int:
    """Size of a conv/pool output along one axis: floor((n - f_eff + 2p) / s) + 1.

    f_eff = d * (f - 1) + 1 is the extent of a kernel of size f with dilation d. (The notes
    write (n - f + 2p) / s without the "+1": that counts the strides, not the positions.)
    With ceil_mode (pools only) the division rounds up, and, as in PyTorch, a last window
    that would start inside the right padding is dropped.
    """
    return _out_size(n, f, p, p, s, d, ceil_mode)


def _out_size(n: int, f: int, p_lo: int, p_hi: int, s: int, d: int = 1, ceil_mode: bool = False) -> int:
    f_eff = d * (f - 1) + 1
    span = n + p_lo + p_hi - f_eff
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p_lo:
        out -= 1
    return out


def parse_input_size(text: str) -> tuple[int, int, int]:
    """'3x224x224' -> (3, 224, 224): channels x height x width, positive integers."""
    parts = str(text).strip().lower().replace("×", "x").split("x")
    try:
        dims = tuple(int(p.strip()) for p in parts)
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) <= 0:
        raise UserError(
            f"--input must be CxHxW with three positive integers (channels x height x width), "
            f"e.g. 3x224x224 or 1x28x28; got {text!r}"
        )
    return dims  # type: ignore[return-value]


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class _Axis:
    """One spatial axis of a map: unit i sees input pixels start + i*jump ... + rf - 1."""

    rf: Fraction
    jump: Fraction
    start: Fraction


@dataclass(frozen=True)
class _Geo:
    """Where a tensor's spatial axes are and what each unit sees.

    axes None: every unit sees the whole input (global). dims: the (negative) positions of
    the spatial axes in the tensor, or with flat=True the one position into which they were
    flattened (row-major). grid: the sizes of the spatial axes.
    """

    axes: tuple[_Axis, ...] | None
    dims: tuple[int, ...] = ()
    grid: tuple[int, ...] = ()
    flat: bool = False
    exact: bool = True

    @property
    def is_global(self) -> bool:
        return self.axes is None

    def fits(self, t: torch.Tensor) -> bool:
        if self.axes is None:
            return True
        nd = t.dim()
        if any(-d > nd for d in self.dims):
            return False
        if self.flat:
            return t.shape[self.dims[0]] == math.prod(self.grid)
        return tuple(t.shape[d] for d in self.dims) == self.grid

    def same_layout(self, other: _Geo) -> bool:
        return (self.dims, self.grid, self.flat) == (other.dims, other.grid, other.flat)


_GLOBAL = _Geo(None)


def _union(geos: Sequence[_Geo]) -> _Geo:
    """Union of the regions of aligned maps (the max over branches of a residual add / concat)."""
    first = geos[0]
    axes, exact = [], all(g.exact for g in geos)
    for per_axis in zip(*(g.axes for g in geos)):
        start = min(a.start for a in per_axis)
        end = max(a.start + a.rf for a in per_axis)
        jumps = {a.jump for a in per_axis}
        exact = exact and len(jumps) == 1
        axes.append(_Axis(end - start, max(jumps), start))
    return _Geo(tuple(axes), first.dims, first.grid, first.flat, exact)


def _ntuple(v: Any, k: int) -> tuple:
    if isinstance(v, (list, tuple, torch.Size)):
        v = tuple(v)
        return v * k if len(v) == 1 else v
    return (v,) * k


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: Any = None) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[i] if len(args) > i else default


# --------------------------------------------------------------------------- the tracer

_CONV = {"conv1d", "conv2d", "conv3d"}
_CONV_T = {"conv_transpose1d", "conv_transpose2d", "conv_transpose3d"}
_MAXPOOL = {f"max_pool{k}d{s}" for k in (1, 2, 3) for s in ("", "_with_indices")}
_AVGPOOL = {"avg_pool1d", "avg_pool2d", "avg_pool3d"}
_LPPOOL = {"lp_pool1d", "lp_pool2d", "lp_pool3d"}
_ADAPTIVE = {f"adaptive_{m}_pool{k}d{s}" for m in ("avg", "max") for k in (1, 2, 3) for s in ("", "_with_indices")}
_INTERP = {"interpolate", "upsample", "upsample_nearest", "upsample_bilinear"}
_RESHAPE = {"view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze", "view_as", "reshape_as", "ravel"}
_PERMUTE = {"transpose", "swapaxes", "swapdims", "transpose_", "permute", "movedim", "moveaxis", "t", "T", "mT", "mH", "H"}
_MATMUL = {"matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "addmm", "baddbmm", "addbmm"}
# ops that combine values along `dim` (reductions and position-mixing ones): spatial dim -> global
_ALONG_DIM = {
    "sum", "mean", "nansum", "nanmean", "amax", "amin", "max", "min", "prod", "std", "var", "std_mean",
    "var_mean", "logsumexp", "norm", "argmax", "argmin", "median", "nanmedian", "mode", "all", "any",
    "count_nonzero", "softmax", "log_softmax", "softmin", "cumsum", "cumprod", "cummax", "cummin",
    "sort", "argsort", "topk", "kthvalue", "roll", "flip", "normalize", "glu",
}  # fmt: skip
_KEEPS_DIMS = {"softmax", "log_softmax", "softmin", "cumsum", "cumprod", "cummax", "cummin", "sort", "argsort",
               "roll", "flip", "normalize", "topk", "kthvalue"}  # fmt: skip
_NO_WORK = (nn.Identity, nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass
class _Frame:
    module: nn.Module
    name: str
    call: int
    macs: int = 0
    ops: list[dict] = field(default_factory=list)


class _Tracer(TorchFunctionMode):
    """Propagates geometry through every torch call and counts MACs; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.geo: dict[int, tuple[torch.Tensor, _Geo]] = {}  # id -> (tensor kept alive, geometry)
        self.stack: list[_Frame] = []
        self.busy = False
        self.total_macs = 0
        self.checks: list[dict] = []
        self.unknown: set[str] = set()
        self.input_hw: tuple[int, ...] = ()

    # -- bookkeeping
    def get(self, t: Any) -> _Geo | None:
        if not isinstance(t, torch.Tensor):
            return None
        hit = self.geo.get(id(t))
        return hit[1] if hit is not None and hit[0] is t else None

    def set(self, t: torch.Tensor, g: _Geo | None) -> None:
        if g is None:
            self.geo.pop(id(t), None)
        else:
            self.geo[id(t)] = (t, g if g.fits(t) else _GLOBAL)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.busy:
            return out
        outs = list(tensors(out))
        if not outs:
            return out
        name = func_name(func)
        try:
            macs = self._macs(func, name, args, kwargs, outs[0])
        except Exception:  # noqa: BLE001 - bookkeeping must never break the forward pass
            macs = 0
        if macs:
            self.total_macs += macs
            if self.stack:
                self.stack[-1].macs += macs
        ins = [(t, g) for t in tensors((args, kwargs)) if (g := self.get(t)) is not None]
        if not ins:
            return out
        try:
            result = self._propagate(func, name, args, kwargs, out, outs, ins)
        except Exception:  # noqa: BLE001
            self.unknown.add(name or repr(func))
            result = [_GLOBAL] * len(outs)
        for t, g in zip(outs, result):
            self.set(t, g)
        return out

    # -- MACs
    @staticmethod
    def _macs(func, name: str, args: tuple, kwargs: dict, out: torch.Tensor) -> int:
        if name in _CONV:
            return out.numel() * _arg(args, kwargs, 1, "weight")[0].numel()
        if name in _CONV_T:
            w = _arg(args, kwargs, 1, "weight")
            return _arg(args, kwargs, 0, "input").numel() * w[0].numel()
        if name == "linear":
            return out.numel() * _arg(args, kwargs, 1, "weight").shape[-1]
        if name == "bilinear":
            w = _arg(args, kwargs, 2, "weight")
            return out.numel() * w.shape[1] * w.shape[2]
        if name in _MATMUL:
            a = args[1] if name in ("addmm", "baddbmm", "addbmm") else args[0]
            b = args[2] if name in ("addmm", "baddbmm", "addbmm") else args[1]
            if name == "__rmatmul__":
                a, b = b, a
            if name == "addbmm":
                return a.numel() * b.shape[-1]
            return out.numel() * (a.shape[-1] if a.dim() else 1)
        if name == "scaled_dot_product_attention":
            q, k, v = args[0], args[1], args[2]
            return (out.numel() // v.shape[-1]) * k.shape[-2] * (q.shape[-1] + v.shape[-1])
        if name == "einsum":
            return _einsum_macs(args)
        return 0

    # -- geometry
    def _propagate(self, func, name, args, kwargs, out, outs, ins) -> list[_Geo | None]:
        n = len(outs)
        if any(g.is_global for _, g in ins):
            return [_GLOBAL] * n
        first = _arg(args, kwargs, 0, "input")
        g0 = self.get(first)
        window = name in _CONV | _CONV_T | _MAXPOOL | _AVGPOOL | _LPPOOL | _ADAPTIVE | _INTERP or func is F.unfold
        if window or name == "pad":
            if g0 is None:
                return [None] * n
            if name == "pad":
                return [self._pad(g0, first, args, kwargs)] * n
            return [self._window(func, name, g0, first, args, kwargs, outs[0])] * n
        if name in _RESHAPE and g0 is not None:
            return [_reshape(g0, tuple(first.shape), tuple(t.shape)) for t in outs]
        if name in _PERMUTE and g0 is not None:
            return [_permute(g0, name, first.dim(), args, kwargs)] * n
        if name == "__getitem__" and g0 is not None:
            return [_getitem(g0, first, args[1], outs[0])] + [_GLOBAL] * (n - 1)
        if name == "linear":
            if g0 is None or len(ins) > 1 or -1 in g0.dims:
                return [_GLOBAL] * n
            return [g0] * n
        if name in _MATMUL or name == "scaled_dot_product_attention":
            return [_matmul(self, name, args)] * n
        if name == "einsum":
            return [_GLOBAL] * n
        if name in _ALONG_DIM and g0 is not None and not (len(args) > 1 and isinstance(args[1], torch.Tensor)):
            return [_along_dim(g0, name, first, args, kwargs, outs[0])] * n
        if name == "layer_norm" and g0 is not None:
            k = len(_ntuple(_arg(args, kwargs, 1, "normalized_shape"), 1))
            if any(-d <= k for d in g0.dims):
                return [_GLOBAL] * n
        return self._generic(ins, outs)

    @staticmethod
    def _generic(ins, outs) -> list[_Geo | None]:
        geos = [g for _, g in ins]
        ref = geos[0]
        if not all(g.same_layout(ref) for g in geos):
            return [_GLOBAL] * len(outs)
        merged = _union(geos) if len(geos) > 1 else ref
        return [merged if merged.fits(t) else _GLOBAL for t in outs]

    def _pad(self, g: _Geo, x: torch.Tensor, args, kwargs) -> _Geo:
        pad = list(_arg(args, kwargs, 1, "pad"))
        lo = {}
        for i in range(0, len(pad), 2):
            lo[-(i // 2) - 1] = (pad[i], pad[i + 1])
        axes = list(g.axes)
        grid = list(g.grid)
        for d, (a, b) in lo.items():
            if (a or b) and (d in g.dims):
                if g.flat:
                    return _GLOBAL
                k = g.dims.index(d)
                ax = axes[k]
                axes[k] = _Axis(ax.rf, ax.jump, ax.start - a * ax.jump)
                grid[k] += a + b
        return _Geo(tuple(axes), g.dims, tuple(grid), g.flat, g.exact)

    def _window(self, func, name, g: _Geo, x: torch.Tensor, args, kwargs, out: torch.Tensor) -> _Geo:
        """Conv / pool / unfold / interpolate on the last k axes."""
        if name in _CONV | _CONV_T:
            k = _arg(args, kwargs, 1, "weight").dim() - 2
        elif func is F.unfold:
            k = 2
        else:
            k = int(name.split("pool")[-1][0]) if "pool" in name else x.dim() - 2
        if g.flat or g.dims != tuple(range(-k, 0)):
            return _GLOBAL
        n_in = tuple(x.shape[-k:])
        n_out = tuple(out.shape[-k:])
        if name in _ADAPTIVE:
            return _adaptive(g, n_in, n_out)
        if name in _INTERP:
            mode = _arg(args, kwargs, 3, "mode", "nearest")
            return _interpolate(g, n_in, n_out, mode)
        if name in _CONV_T:
            stride = _ntuple(_arg(args, kwargs, 3, "stride", 1), k)
            pad = _ntuple(_arg(args, kwargs, 4, "padding", 0), k)
            dil = _ntuple(_arg(args, kwargs, 7, "dilation", 1), k)
            kern = tuple(_arg(args, kwargs, 1, "weight").shape[2:])
            out_pad = _ntuple(_arg(args, kwargs, 5, "output_padding", 0), k)
            axes = []
            for ax, kk, s, p, d in zip(g.axes, kern, stride, pad, dil):
                # output o gets inputs i with i*s - p + t*d = o: at most floor((k-1)d/s) + 1 of them
                reach = ((kk - 1) * d // s) * ax.jump
                axes.append(_Axis(ax.rf + reach, ax.jump / s, ax.start + Fraction(p - (kk - 1) * d, s) * ax.jump))
            # transposed conv: out = (n - 1) * s - 2p + d(k - 1) + output_padding + 1
            expected = tuple(
                (n - 1) * s - 2 * p + d * (kk - 1) + op + 1
                for n, kk, s, p, d, op in zip(n_in, kern, stride, pad, dil, out_pad)
            )
            self._record(name, n_in, n_out, kern, stride, pad, dil, False, ok=expected == n_out, expected=expected)
            return _Geo(tuple(axes), g.dims, n_out, False, False)
        ceil, pad_hi = False, None
        if name in _CONV:
            kern = tuple(_arg(args, kwargs, 1, "weight").shape[2:])
            stride = _ntuple(_arg(args, kwargs, 3, "stride", 1), k)
            pad = _arg(args, kwargs, 4, "padding", 0)
            dil = _ntuple(_arg(args, kwargs, 5, "dilation", 1), k)
            if isinstance(pad, str):  # "valid" = 0; "same": d(k-1) in all, the odd pixel on the right
                total = tuple(0 if pad == "valid" else d * (kk - 1) for kk, d in zip(kern, dil))
                pad = tuple(t // 2 for t in total)
                pad_hi = tuple(t - t // 2 for t in total)
            pad = _ntuple(pad, k)
        elif func is F.unfold:
            kern = _ntuple(_arg(args, kwargs, 1, "kernel_size"), k)
            dil = _ntuple(_arg(args, kwargs, 2, "dilation", 1), k)
            pad = _ntuple(_arg(args, kwargs, 3, "padding", 0), k)
            stride = _ntuple(_arg(args, kwargs, 4, "stride", 1), k)
        elif name in _LPPOOL:
            kern = _ntuple(_arg(args, kwargs, 2, "kernel_size"), k)
            stride = _arg(args, kwargs, 3, "stride", None)
            stride = kern if stride is None or stride == [] else _ntuple(stride, k)
            pad, dil = (0,) * k, (1,) * k
            ceil = bool(_arg(args, kwargs, 4, "ceil_mode", False))
        else:  # max / avg pool
            kern = _ntuple(_arg(args, kwargs, 1, "kernel_size"), k)
            stride = _arg(args, kwargs, 2, "stride", None)
            stride = kern if stride is None or stride == [] or stride == () else _ntuple(stride, k)
            pad = _ntuple(_arg(args, kwargs, 3, "padding", 0), k)
            if name in _MAXPOOL:
                dil = _ntuple(_arg(args, kwargs, 4, "dilation", 1), k)
                ceil = bool(_arg(args, kwargs, 5, "ceil_mode", False))
            else:
                dil = (1,) * k
                ceil = bool(_arg(args, kwargs, 4, "ceil_mode", False))
        kern, stride, pad, dil = (tuple(int(v) for v in t) for t in (kern, stride, pad, dil))
        axes = tuple(
            _Axis(ax.rf + (kk - 1) * d * ax.jump, ax.jump * s, ax.start - p * ax.jump)
            for ax, kk, s, p, d in zip(g.axes, kern, stride, pad, dil)
        )
        pad_hi = pad if pad_hi is None else pad_hi
        expected = tuple(
            _out_size(n, kk, p, q, s, d, ceil) for n, kk, p, q, s, d in zip(n_in, kern, pad, pad_hi, stride, dil)
        )
        if func is F.unfold:
            self._record("unfold", n_in, expected, kern, stride, pad, dil, ceil, ok=True)
            return _Geo(axes, (-1,), expected, True, g.exact)
        self._record(name, n_in, n_out, kern, stride, pad, dil, ceil, ok=expected == n_out, expected=expected)
        return _Geo(axes, g.dims, n_out, False, g.exact)

    def _record(self, op, n_in, n_out, kern, stride, pad, dil, ceil, ok, expected=None) -> None:
        frame = self.stack[-1] if self.stack else None
        check = {
            "layer": frame.name if frame else "",
            "call": frame.call if frame else 1,
            "op": op,
            "input": list(n_in),
            "kernel": list(kern),
            "stride": list(stride),
            "padding": list(pad),
            "dilation": list(dil),
            "ceil_mode": ceil,
            "expected": list(expected if expected is not None else n_out),
            "observed": list(n_out),
            "ok": ok,
        }
        self.checks.append(check)
        if frame:
            frame.ops.append(check)


def _adaptive(g: _Geo, n_in: tuple[int, ...], n_out: tuple[int, ...]) -> _Geo:
    if all(o == 1 for o in n_out) and any(n > 1 for n in n_in):
        return _GLOBAL  # global pooling: one unit per channel sees the whole map
    axes, exact = [], g.exact
    for ax, n, o in zip(g.axes, n_in, n_out):
        # window i covers [floor(i n / o), ceil((i + 1) n / o)): its size and step vary with i
        starts = [(i * n) // o for i in range(o)]
        sizes = [-(-((i + 1) * n) // o) - s for i, s in enumerate(starts)]
        steps = {b - a for a, b in itertools.pairwise(starts)}
        exact = exact and len(set(sizes)) == 1 and len(steps) <= 1
        axes.append(_Axis(ax.rf + (max(sizes) - 1) * ax.jump, ax.jump * Fraction(n, o), ax.start))
    return _Geo(tuple(axes), g.dims, n_out, False, exact)


def _interpolate(g: _Geo, n_in, n_out, mode: str) -> _Geo:
    extra = {"nearest": 0, "nearest-exact": 0, "area": 0, "linear": 1, "bilinear": 1, "trilinear": 1, "bicubic": 3}.get(mode, 3)
    axes = []
    for ax, n, o in zip(g.axes, n_in, n_out):
        if n == o:
            axes.append(ax)
            continue
        lead = 1 if extra == 3 else 0
        axes.append(_Axis(ax.rf + extra * ax.jump, ax.jump * Fraction(n, o), ax.start - lead * ax.jump))
    return _Geo(tuple(axes), g.dims, n_out, False, g.exact and tuple(n_in) == tuple(n_out))


def _reshape(g: _Geo, shape_in: tuple[int, ...], shape_out: tuple[int, ...]) -> _Geo:
    """Follow the spatial axes through view/reshape/flatten/unflatten/(un)squeeze."""
    k = len(g.grid)
    nd_in = len(shape_in)
    if g.flat:
        p, span = nd_in + g.dims[0], 1
    else:
        first = g.dims[0]
        if g.dims != tuple(range(first, first + k)):
            return _GLOBAL
        p, span = nd_in + first, k
    pre = math.prod(shape_in[:p])
    n_out = len(shape_out)
    for q in range(n_out):
        if math.prod(shape_out[:q]) != pre:
            continue
        if tuple(shape_out[q : q + k]) == g.grid and q + k <= n_out:
            return _Geo(g.axes, tuple(range(q - n_out, q - n_out + k)), g.grid, False, g.exact)
        if shape_out[q] == math.prod(g.grid) and (k > 1 or span == 1):
            return _Geo(g.axes, (q - n_out,), g.grid, True, g.exact)
    return _GLOBAL


def _permute(g: _Geo, name: str, nd: int, args, kwargs) -> _Geo:
    perm = list(range(nd))
    if name in ("transpose", "swapaxes", "swapdims", "transpose_"):
        a, b = (int(v) % nd for v in (args[1], args[2]))
        perm[a], perm[b] = perm[b], perm[a]
    elif name == "permute":
        dims = args[1:] if len(args) > 2 or not isinstance(args[1], (list, tuple)) else args[1]
        perm = [int(v) % nd for v in dims]
    elif name in ("movedim", "moveaxis"):
        src = [int(v) % nd for v in _ntuple(args[1], 1)]
        dst = [int(v) % nd for v in _ntuple(args[2], 1)]
        rest = [i for i in range(nd) if i not in src]
        perm = [None] * nd  # type: ignore[list-item]
        for s, d in zip(src, dst):
            perm[d] = s
        it = iter(rest)
        perm = [v if v is not None else next(it) for v in perm]
    elif name in ("t", "T", "H"):
        perm = list(reversed(perm))
    else:  # mT, mH
        perm[-1], perm[-2] = perm[-2], perm[-1]
    where = {src: dst for dst, src in enumerate(perm)}
    dims = tuple(where[nd + d] - nd for d in g.dims)
    return _Geo(g.axes, dims, g.grid, g.flat, g.exact)


def _getitem(g: _Geo, x: torch.Tensor, index: Any, out: torch.Tensor) -> _Geo:
    """Basic slicing x[..., a:b:s, ...]: a spatial slice moves the start and multiplies the jump."""
    idx = index if isinstance(index, tuple) else (index,)
    if any(not (isinstance(i, (int, slice)) or i is None or i is Ellipsis) for i in idx):
        return _GLOBAL if not g.fits(out) else g
    nd = x.dim()
    n_real = sum(1 for i in idx if i is not None and i is not Ellipsis)
    expanded: list[Any] = []
    for i in idx:
        if i is Ellipsis:
            expanded += [slice(None)] * (nd - n_real)
        else:
            expanded.append(i)
    expanded += [slice(None)] * (nd - sum(1 for i in expanded if i is not None))
    pos_out, in_dim = 0, 0
    mapping: dict[int, tuple[int, slice]] = {}
    for i in expanded:
        if i is None:
            pos_out += 1
            continue
        if isinstance(i, slice):
            mapping[in_dim] = (pos_out, i)
            pos_out += 1
        in_dim += 1
    nd_out = pos_out
    axes, dims, grid = list(g.axes), [], []
    for k, d in enumerate(g.dims):
        p = nd + d
        if p not in mapping:
            return _GLOBAL  # an integer index picked one row / column
        q, sl = mapping[p]
        n = x.shape[p]
        if g.flat:
            if sl != slice(None) and sl.indices(n) != (0, n, 1):
                return _GLOBAL
            dims.append(q - nd_out)
            continue
        a, _, s = sl.indices(n)
        ax = axes[k]
        axes[k] = _Axis(ax.rf, ax.jump * s, ax.start + a * ax.jump)
        dims.append(q - nd_out)
        grid.append(len(range(*sl.indices(n))))
    if g.flat:
        return _Geo(g.axes, tuple(dims[:1]), g.grid, True, g.exact)
    return _Geo(tuple(axes), tuple(dims), tuple(grid), False, g.exact)


def _matmul(tr: _Tracer, name: str, args: tuple) -> _Geo | None:
    if name == "scaled_dot_product_attention":
        q, k, v = args[0], args[1], args[2]
        if tr.get(k) is not None or tr.get(v) is not None:
            return _GLOBAL  # every query position attends to every key position
        gq = tr.get(q)
        return None if gq is None or -1 in gq.dims else gq
    if name in ("addmm", "baddbmm", "addbmm"):
        a, b = args[1], args[2]
    else:
        a, b = args[0], args[1]
    if name == "__rmatmul__":
        a, b = b, a
    ga, gb = tr.get(a), tr.get(b)
    if ga is not None and gb is not None:
        return _GLOBAL
    if name == "addbmm" and (ga is not None or gb is not None):
        return _GLOBAL
    if ga is not None:
        if -1 in ga.dims or a.dim() < 2:
            return _GLOBAL
        return ga if b.dim() >= 2 else _Geo(ga.axes, tuple(d + 1 for d in ga.dims), ga.grid, ga.flat, ga.exact)
    if gb is not None:
        if -2 in gb.dims or b.dim() < 2 or a.dim() < 2:
            return _GLOBAL
        return gb
    return None


def _along_dim(g: _Geo, name: str, x: torch.Tensor, args, kwargs, out: torch.Tensor) -> _Geo:
    nd = x.dim()
    if name in ("topk", "kthvalue"):
        dim = _arg(args, kwargs, 2, "dim", -1)
    elif name == "normalize":
        dim = _arg(args, kwargs, 2, "dim", 1)
    elif name == "roll":
        dim = kwargs.get("dims", args[2] if len(args) > 2 else None)
    elif name == "flip":
        dim = kwargs.get("dims", args[1] if len(args) > 1 else None)
        if dim is None or (len(args) > 2):
            dim = list(args[1:]) or dim
    elif name == "norm":
        dim = _arg(args, kwargs, 2, "dim", None)
    elif name in ("sort", "argsort", "glu"):
        dim = _arg(args, kwargs, 1, "dim", -1)
    else:
        dim = kwargs.get("dim", kwargs.get("axis", args[1] if len(args) > 1 else None))
    if dim is None:
        return _GLOBAL  # reduces (or mixes) all dims
    dims = [int(d) % nd for d in _ntuple(dim, 1)]
    spatial = {nd + d for d in g.dims} if not g.flat else {nd + g.dims[0]}
    if spatial & set(dims):
        return _GLOBAL
    if name in _KEEPS_DIMS or out.dim() == nd:
        return g
    removed = sorted(dims)
    new_dims = []
    for d in g.dims:
        p = nd + d
        p -= sum(1 for r in removed if r < p)
        new_dims.append(p - out.dim())
    return _Geo(g.axes, tuple(new_dims), g.grid, g.flat, g.exact)


def _einsum_macs(args: tuple) -> int:
    eq = args[0].replace(" ", "")
    ops = list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) else list(args[1:])
    if "->" not in eq or "..." in eq:
        return 0
    lhs = eq.split("->")[0]
    sizes: dict[str, int] = {}
    for term, t in zip(lhs.split(","), ops):
        for c, n in zip(term, t.shape):
            sizes[c] = max(sizes.get(c, 1), int(n))
    if len(ops) < 2:
        return 0
    return math.prod(sizes.values())


# --------------------------------------------------------------------------- the summary


def _num(v: Fraction) -> int | float:
    return int(v) if v.denominator == 1 else float(v)


@dataclass
class LayerRow:
    """One layer of the summary (a module call that does work).

    name: the module's qualified name in model.named_modules() ("" for the model itself);
    call: 1, or n for the n-th call of a module used several times in one forward.
    output_shape: without the batch dimension. receptive_field / jump / start: per spatial
    axis (height, width), None when the output does not derive from the input;
    is_global: the unit sees the whole input (after global pooling, flatten + linear, ...):
    receptive_field is then the input's own size and jump / start are None.
    exact: False when some op on the way had position-dependent windows (max reported).
    ops: the conv/pool ops run directly by this module, with their feature-map size check.
    """

    name: str
    kind: str
    call: int
    output_shape: tuple[int, ...]
    params: int
    macs: int
    receptive_field: tuple[int, ...] | None
    jump: tuple[int | float, ...] | None
    start: tuple[int | float, ...] | None
    is_global: bool
    exact: bool
    spatial: tuple[int, ...] | None  # (H, W) of the output when its last dims are the spatial ones
    is_layer: bool = True
    ops: list[dict] = field(default_factory=list)

    def field_of(self, unit: Sequence[int], input_hw: Sequence[int] | None = None) -> list[tuple[int, int]]:
        """The input rows/cols (first, last; inclusive) that unit (i, j, ...) of this map sees,
        clipped to the input when input_hw is given."""
        if self.receptive_field is None or self.is_global or self.start is None or self.jump is None:
            raise ValueError(f"layer {self.name!r} has no local receptive field")
        out = []
        for k, i in enumerate(unit):
            lo = self.start[k] + i * self.jump[k]
            hi = lo + self.receptive_field[k] - 1
            lo, hi = math.floor(lo), math.ceil(hi)
            if input_hw is not None:
                lo, hi = max(lo, 0), min(hi, input_hw[k] - 1)
            out.append((int(lo), int(hi)))
        return out

    def to_json(self) -> dict:
        d = {
            "name": self.name,
            "type": self.kind,
            "output_shape": list(self.output_shape),
            "params": self.params,
            "macs": self.macs,
            "receptive_field": list(self.receptive_field) if self.receptive_field else None,
            "jump": list(self.jump) if self.jump else None,
            "start": list(self.start) if self.start else None,
            "global": self.is_global,
        }
        if self.call != 1:
            d["call"] = self.call
        if not self.exact:
            d["exact"] = False
        if self.ops:
            d["ops"] = self.ops
        return d


@dataclass
class Summary:
    """The result of summarize(): rows (layers in execution order) and totals."""

    name: str
    input_size: tuple[int, ...]
    rows: list[LayerRow]
    modules: list[LayerRow]  # every module call, containers included (for lookups by name)
    total_params: int
    trainable_params: int
    total_macs: int
    output_shape: tuple[int, ...]
    unused: list[str]  # modules with parameters that the forward pass did not run (e.g. aux heads)
    unused_params: int
    size_checks: list[dict]
    notes: list[str]

    def row(self, name: str, call: int = 1) -> LayerRow:
        """The record of module `name` (a layer or a container such as "features.stage2")."""
        for r in self.modules:
            if r.name == name and r.call == call:
                return r
        names = sorted({r.name for r in self.rows})
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.4)
        raise UserError(f"no layer {name!r} in this model; closest: {', '.join(close) or ', '.join(names[:5])}")

    def to_json(self) -> dict:
        return {
            "model": self.name,
            "input_size": list(self.input_size),
            "layers": [r.to_json() for r in self.rows],
            "totals": {
                "params": self.total_params,
                "trainable_params": self.trainable_params,
                "macs": self.total_macs,
                "output_shape": list(self.output_shape),
                "unused_params": self.unused_params,
                "unused_modules": self.unused,
            },
            "size_checks": {
                "formula": "out = floor((n - f_eff + 2p) / s) + 1, f_eff = d(f - 1) + 1 (ceil_mode pools: ceil)",
                "checked": len(self.size_checks),
                "mismatches": [c for c in self.size_checks if c["ok"] is False],
            },
            "notes": self.notes,
        }

    def __str__(self) -> str:
        return format_table(self)


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t.device, t.dtype
    for t in model.buffers():
        return t.device, torch.float32
    return torch.device("cpu"), torch.float32


def summarize(model: nn.Module, input_size: Sequence[int], *, name: str = "") -> Summary:
    """Run one image of size input_size (C, H, W) through `model` and describe every layer.

    The model runs once in eval mode under torch.no_grad() (its training flags are restored),
    on the device and dtype of its parameters; on the meta device it computes no numbers and
    is instant, which is how inspect_model() handles the big models. Errors raised by the
    model (e.g. its own input-size check) propagate unchanged.
    """
    input_size = tuple(int(v) for v in input_size)
    device, dtype = _model_device_dtype(model)
    if device.type == "meta":
        x = torch.empty((1, *input_size), device=device, dtype=dtype)
    else:
        gen = torch.Generator().manual_seed(0)
        x = torch.rand((1, *input_size), generator=gen).to(device=device, dtype=dtype)
    k = len(input_size) - 1
    tracer = _Tracer()
    tracer.input_hw = tuple(input_size[1:])
    tracer.set(x, _Geo(tuple(_Axis(Fraction(1), Fraction(1), Fraction(0)) for _ in range(k)), tuple(range(-k, 0)), tuple(input_size[1:])))

    names: dict[int, str] = {}
    for n, m in model.named_modules(remove_duplicate=False):
        names.setdefault(id(m), n)
    calls: dict[int, int] = {}
    records: list[LayerRow] = []
    seen_params: set[int] = set()

    def pre_hook(module, args):
        tracer.busy = True
        calls[id(module)] = calls.get(id(module), 0) + 1
        tracer.stack.append(_Frame(module, names.get(id(module), "?"), calls[id(module)]))
        tracer.busy = False

    def post_hook(module, args, output):
        tracer.busy = True
        try:
            while tracer.stack and tracer.stack[-1].module is not module:
                tracer.stack.pop()
            if not tracer.stack:
                return
            frame = tracer.stack.pop()
            records.append(_make_row(module, frame, output, tracer, seen_params))
        finally:
            tracer.busy = False

    was_training = {id(m): m.training for m in model.modules()}
    handles = []
    for m in model.modules():
        handles.append(m.register_forward_pre_hook(pre_hook))
        handles.append(m.register_forward_hook(post_hook))
    try:
        model.eval()
        with torch.no_grad(), tracer:
            out = model(x)
    finally:
        for h in handles:
            h.remove()
        for m in model.modules():
            m.training = was_training[id(m)]

    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    counted = sum(r.params for r in records)
    unused: list[str] = []  # the outermost modules none of whose parameters took part
    for n, m in model.named_modules():  # pre-order: a parent comes before its children
        params = list(m.parameters())
        if params and not any(id(p) in seen_params for p in params) and not any(n.startswith(u + ".") for u in unused):
            unused.append(n)
    notes = []
    if tracer.unknown:
        notes.append(f"ops whose geometry could not be followed (treated as global): {', '.join(sorted(tracer.unknown))}")
    if total != counted:
        notes.append(f"{total - counted:,} parameters are not used by the forward pass in eval mode: {', '.join(unused) or '?'}")
    first = first_tensor(out)
    return Summary(
        name=name or type(model).__name__,
        input_size=input_size,
        rows=[r for r in records if r.is_layer],
        modules=records,
        total_params=total,
        trainable_params=trainable,
        total_macs=tracer.total_macs,
        output_shape=tuple(first.shape[1:]) if first is not None else (),
        unused=unused,
        unused_params=total - counted,
        size_checks=tracer.checks,
        notes=notes,
    )


def _make_row(module: nn.Module, frame: _Frame, output: Any, tracer: _Tracer, seen: set[int]) -> LayerRow:
    has_children = any(True for _ in module.children())
    own = [p for p in module.parameters(recurse=not has_children) if id(p) not in seen]
    for p in own:
        seen.add(id(p))
    params = sum(p.numel() for p in own)
    direct_params = any(True for _ in module.parameters(recurse=False))
    if has_children:
        is_layer = direct_params or frame.macs > 0 or bool(frame.ops)
    else:
        is_layer = not isinstance(module, _NO_WORK)
    t = first_tensor(output)
    g = tracer.get(t) if t is not None else None
    rf = jump = start = spatial = None
    is_global, exact = False, True
    if g is not None and g.is_global:
        is_global = True
        rf = tracer.input_hw
    elif g is not None:
        rf = tuple(math.ceil(a.rf) for a in g.axes)
        jump = tuple(_num(a.jump) for a in g.axes)
        start = tuple(_num(a.start) for a in g.axes)
        exact = g.exact
        if not g.flat and g.dims == tuple(range(-len(g.grid), 0)):
            spatial = g.grid
    return LayerRow(
        name=frame.name,
        kind=type(module).__name__,
        call=frame.call,
        output_shape=tuple(t.shape[1:]) if t is not None else (),
        params=params,
        macs=frame.macs,
        receptive_field=rf,
        jump=jump,
        start=start,
        is_global=is_global,
        exact=exact,
        spatial=spatial,
        is_layer=is_layer,
        ops=list(frame.ops),
    )


# --------------------------------------------------------------------------- by name


def inspect_model(name: str, input_size: Sequence[int] | None = None, **overrides: Any) -> Summary:
    """Build the registered model `name` and summarize it for input_size (default: its own).

    The model is built on the meta device (no memory, no init: instant even for vgg19) and
    falls back to a real CPU build for models whose forward needs real values. A wrong input
    size or a model that cannot run on it is a UserError.
    """
    from deepnotes.models import builder_accepts, create_model, get_model_entry

    entry = get_model_entry(name)
    if entry.inputs != "images":
        raise UserError(
            f"{name} takes {entry.inputs}, and `deepnotes inspect` traces image models (shapes, receptive fields); "
            f"`deepnotes list {name}` gives its parameter count"
        )
    size = tuple(int(v) for v in (input_size or entry.input_size))
    shown = "x".join(map(str, size))
    if entry.fixed_input_size and size != tuple(entry.input_size):
        raise UserError(
            f"{name} is defined for input {'x'.join(map(str, entry.input_size))} only (fixed_input_size); got {shown}"
        )
    kwargs = dict(overrides)
    if size[0] != entry.input_size[0]:
        if not builder_accepts(name, "in_chans"):
            raise UserError(f"{name} takes {entry.input_size[0]} input channels, got {shown}")
        kwargs.setdefault("in_chans", size[0])
    if size[1:] != tuple(entry.input_size[1:]) and builder_accepts(name, "img_size"):
        kwargs.setdefault("img_size", tuple(size[1:]))
    try:
        summary = _summarize_on_meta(name, size, kwargs)
    except ValueError as e:  # the model's own input check
        raise UserError(f"{name} cannot run on input {shown}: {e}") from None
    if summary is not None:
        return summary
    model = create_model(name, **kwargs)  # some op needed real values: build for real
    try:
        return summarize(model, size, name=name)
    except (ValueError, RuntimeError) as e:
        raise UserError(f"{name} cannot run on input {shown}: {e}") from None


def _summarize_on_meta(name: str, size: tuple[int, ...], kwargs: dict) -> Summary | None:
    """summarize() a meta-device build of `name`, or None when some op of it needs real values."""
    from deepnotes.models import create_model

    with torch.device("meta"):
        model = create_model(name, **kwargs)
    try:
        return summarize(model, size, name=name)
    except (UserError, ValueError):
        raise
    except Exception:  # noqa: BLE001 - e.g. .item() or a kernel without a meta implementation
        return None


# --------------------------------------------------------------------------- the table


def _fmt_macs(v: int) -> str:
    if v == 0:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if v >= scale:
            return f"{v / scale:.2f}{unit}"
    return str(v)


def _fmt_axes(vals: Sequence[int | float] | None) -> str:
    if not vals:
        return "-"
    shown = [str(v) if isinstance(v, int) else f"{v:.3g}" for v in vals]
    return shown[0] if len(set(shown)) == 1 else "x".join(shown)


def format_table(summary: Summary) -> str:
    """The human table: one line per layer, aligned columns, a totals line and a legend."""
    head = ("Layer", "Type", "Output", "Params", "MACs", "RF", "Jump")
    lines = []
    for r in summary.rows:
        label = (r.name or "(model)") + (f" #{r.call}" if r.call != 1 else "")
        rf = "global" if r.is_global else _fmt_axes(r.receptive_field) + ("" if r.exact else "~")
        jump = "-" if r.is_global else _fmt_axes(r.jump)
        lines.append((label, r.kind, "x".join(map(str, r.output_shape)) or "-", f"{r.params:,}", _fmt_macs(r.macs), rf, jump))
    widths = [max(len(h), *(len(row[i]) for row in lines)) if lines else len(h) for i, h in enumerate(head)]
    right = {3, 4, 5, 6}

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    rule = "-" * len(fmt(["x" * w for w in widths]))
    out = [f"{summary.name}  input {'x'.join(map(str, summary.input_size))}", fmt(head), rule]
    out += [fmt(row) for row in lines]
    out.append(rule)
    out_shape = "x".join(map(str, summary.output_shape)) or "-"
    out.append(
        f"Total params {summary.total_params:,} (trainable {summary.trainable_params:,})   "
        f"MACs {_fmt_macs(summary.total_macs)} ({summary.total_macs:,})   output {out_shape}"
    )
    hw = "x".join(map(str, summary.input_size[1:]))
    out += [
        "RF: receptive field (수용 영역), the side of the input region one output unit sees:",
        "    r_out = r_in + (k-1)*d*j_in, the max over branches (concat / add); padding moves it, not its size.",
        f"    'global': the unit sees the whole {hw} input (after global pooling / flatten); '~': windows vary",
        "    with the position (upsampling, uneven adaptive pooling), the maximum is shown.",
        "Jump: distance in input pixels between neighbouring units = product of the strides so far.",
        "MACs: multiply-accumulates for one image, conv / linear / matmul (norm, pool, activation: -).",
    ]
    bad = [c for c in summary.size_checks if c["ok"] is False]
    n = len(summary.size_checks)
    if bad:
        out.append(f"Feature-map size check: {len(bad)} of {n} conv/pool outputs differ from floor((n - f + 2p)/s) + 1: "
                   + ", ".join(f"{c['layer']} {c['observed']} vs {c['expected']}" for c in bad[:5]))  # fmt: skip
    elif n:
        out.append(f"Feature-map sizes: all {n} conv/pool outputs match out = floor((n - f + 2p)/s) + 1 "
                   "(the notes omit the +1).")  # fmt: skip
    out += summary.notes
    return "\n".join(out)


# --------------------------------------------------------------------------- measurement


@dataclass
class MeasuredField:
    """The input region whose pixels get a non-zero gradient from one output unit."""

    layer: str
    call: int
    unit: tuple[int, ...]
    extent: list[tuple[int, int]]  # per spatial axis: (first, last), inclusive

    @property
    def size(self) -> tuple[int, ...]:
        return tuple(b - a + 1 for a, b in self.extent)


class _ProbeMode(TorchFunctionMode):
    """Max-pooling -> average pooling of the same geometry (so the gradient reaches the whole
    window instead of one winner); local response normalization -> identity (pointwise in space);
    layer norm over the last (channel) dimension -> identity: it is pointwise in space too, and
    with the probe's constant weights every channel holds the same value, so the real one would
    output zeros and cut the gradient (a PVT's spatial-reduction conv after norm1)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func_name(func)
        if "with_indices" in name:
            raise NotImplementedError(f"receptive-field probe: {name} (pooling indices)")
        if name in _MAXPOOL:
            k = int(name[8])
            kern = _arg(args, kwargs, 1, "kernel_size")
            stride = _arg(args, kwargs, 2, "stride", None) or kern
            pad = _arg(args, kwargs, 3, "padding", 0)
            if set(_ntuple(_arg(args, kwargs, 4, "dilation", 1), k)) != {1} or _arg(args, kwargs, 6, "return_indices", False):
                raise NotImplementedError("receptive-field probe: dilated max-pool / return_indices")
            avg = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[k - 1]
            return avg(args[0], kern, stride, pad, ceil_mode=bool(_arg(args, kwargs, 5, "ceil_mode", False)))
        if name.startswith("adaptive_max_pool"):
            k = int(name[len("adaptive_max_pool")])
            avg = (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d)[k - 1]
            return avg(args[0], _arg(args, kwargs, 1, "output_size"))
        if name == "local_response_norm":
            return args[0]
        if name == "layer_norm" and len(_ntuple(_arg(args, kwargs, 1, "normalized_shape"), 1)) == 1:
            return args[0]
        return func(*args, **kwargs)


class _Stop(Exception):
    pass


def _probe_value(pname: str, p: torch.Tensor) -> float:
    """Weights that cannot cancel: every weight matrix/kernel 1/fan_in (> 0), biases 0, other
    scales (BatchNorm, LayerNorm, LeNet's subsampling coefficients) 1."""
    if "bias" in pname:
        return 0.0
    return 1.0 / p[0].numel() if p.dim() >= 2 else 1.0


def _make_probe_module(module: nn.Module) -> None:
    """Turn one module's own parameters and buffers into float64 probe values (in place):
    see _probe_value; BatchNorm running statistics 0 / 1, so that in eval mode it is the identity."""
    for pname, p in module._parameters.items():
        if p is not None and p.is_floating_point() and p.dtype != torch.float64:
            p.data = torch.full(p.shape, _probe_value(pname, p), dtype=torch.float64)
            p.requires_grad_(False)
    for bname, b in module._buffers.items():
        if b is None or not b.is_floating_point() or b.dtype == torch.float64:
            continue
        if bname == "running_mean":
            module._buffers[bname] = torch.zeros(b.shape, dtype=torch.float64)
        elif bname == "running_var":
            module._buffers[bname] = torch.ones(b.shape, dtype=torch.float64)
        else:
            module._buffers[bname] = b.to(torch.float64)


def measure_receptive_field(
    model: nn.Module,
    input_size: Sequence[int],
    layers: Sequence[str | tuple[str, int]],
    units: Sequence[Sequence[int] | None] | None = None,
) -> list[MeasuredField]:
    """Measure the receptive field from input gradients (OVERWRITES the model's weights).

    For each layer (a module name, or (name, call) for the n-th call of a module used several
    times), backpropagate from one output unit (default: the centre of its map; all channels
    summed) to an all-ones input and return the extent of the non-zero gradient. So that the
    measurement finds the whole theoretical field, the model is made a probe first: positive
    weights 1/fan_in, biases 0, BatchNorm as identity, max-pooling replaced by average pooling
    of the same geometry, LRN by the identity; activations then pass (positive inputs). It runs
    in float64 (deep stacks of 1/9 factors underflow float32), converting each module only when
    it first runs and stopping after the last requested layer, so unused heads cost nothing
    (the model may even hold uninitialized weights, e.g. built on the meta device + to_empty).
    """
    targets = [(t, 1) if isinstance(t, str) else (t[0], int(t[1])) for t in layers]
    units = list(units) if units is not None else [None] * len(targets)
    named = dict(model.named_modules())
    for t, _ in targets:
        if t not in named:
            raise UserError(f"no module {t!r} in the model")
    model.eval()
    captured: dict[tuple[str, int], torch.Tensor] = {}
    calls: dict[str, int] = {}
    wanted = set(targets)

    def capture(name):
        def hook(module, args, output):
            calls[name] = calls.get(name, 0) + 1
            key = (name, calls[name])
            if key in wanted:
                captured[key] = first_tensor(output)
                if len(captured) == len(wanted):
                    raise _Stop

        return hook

    handles = [m.register_forward_pre_hook(lambda m, args: _make_probe_module(m)) for m in model.modules()]
    handles += [named[n].register_forward_hook(capture(n)) for n in {t for t, _ in targets}]
    x = torch.ones((1, *input_size), dtype=torch.float64, requires_grad=True)
    try:
        with _ProbeMode():
            model(x)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    results = []
    for (name, call), unit in zip(targets, units):
        if (name, call) not in captured:
            raise UserError(f"module {name!r} (call {call}) did not run in the forward pass")
        y = captured[(name, call)]
        k = len(input_size) - 1
        grid = tuple(y.shape[-k:])
        unit = tuple(unit) if unit is not None else tuple((n - 1) // 2 for n in grid)
        (g,) = torch.autograd.grad(y[(0, Ellipsis, *unit)].sum() if y.dim() > k + 1 else y[(0, *unit)], x, retain_graph=True)
        nz = (g[0] != 0).any(0) if g.dim() > k + 1 else g[0] != 0
        extent = []
        for axis in range(k):
            other = tuple(a for a in range(k) if a != axis)
            idx = (nz.any(other) if other else nz).nonzero().flatten()
            extent.append((int(idx.min()), int(idx.max())) if idx.numel() else (0, -1))
        results.append(MeasuredField(name, call, unit, extent))
    return results
