"""Where does the model look? Class activation maps, Grad-CAM, Grad-CAM++ and saliency maps.

    r = compute_cam(model, x, method="gradcam")      # x: the model's input (B, C, H, W), normalized
    r.heatmap          # (B, H, W) in [0, 1], at the input size
    r.raw              # (B, h, w) the map at the layer's own resolution, before upsampling
    r.layer            # the layer used, named as `deepnotes inspect` prints it ("features.layer3.2.relu #2")
    r.target, r.predicted, r.probs
    draw_cam(images, [r], "cam.png", class_names)    # image | overlay, one row per image

The methods, with A_k the k-th channel (h x w) of the chosen layer's output, y^c the score
(logit, before softmax) of class c and Z = h * w:

- "cam": Zhou, Khosla, Lapedriza, Oliva & Torralba, "Learning Deep Features for
  Discriminative Localization", CVPR 2016, arXiv:1512.04150. For a network whose layer is
  followed by global average pooling and one linear layer (y^c = sum_k w_k^c mean(A_k) + b_c),
  M_c = sum_k w_k^c A_k (eq. 2), so y^c = mean(M_c) + b_c: the map says how much each
  position adds to the score. No ReLU (the paper has none); only models with exactly that head
  qualify, which is checked from the operations the forward pass really runs (see deepnotes.explain.tracing.OpChain),
  not from attribute names, and confirmed numerically (the linear layer's input must equal the
  spatial mean of A). Any other head is a UserError that suggests "gradcam".
- "gradcam": Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra, "Grad-CAM: Visual
  Explanations from Deep Networks via Gradient-based Localization", ICCV 2017,
  arXiv:1610.02391. alpha_k^c = (1/Z) sum_ij dy^c/dA_k,ij (eq. 1) and
  L = ReLU(sum_k alpha_k^c A_k) (eq. 2). Any differentiable model. For a GAP + linear head
  dy^c/dA_k,ij = w_k^c / Z everywhere, so Grad-CAM = ReLU(M_c) / Z: CAM up to a positive
  scale (the paper's section 3.1; lab claim C23).
- "gradcam++": Chattopadhay, Sarkar, Howlader & Balasubramanian, "Grad-CAM++: Improved
  Visual Explanations for Deep Convolutional Networks", WACV 2018, arXiv:1710.11063. The
  closed form of eq. 19 with Y^c = exp(y^c), where exp cancels and the second and third
  derivatives become powers of the first (y^c piecewise linear in A):
  a_ij = g^2 / (2 g^2 + sum_ab A_ab g^3), g = dy^c/dA_ij, a_ij = 0 where g = 0;
  w_k = sum_ij a_ij ReLU(g_ij); L = ReLU(sum_k w_k A_k). This is the authors' code without
  its factor exp(y^c) (one positive number per image, gone after normalization), and
  pytorch-grad-cam's GradCAMPlusPlus except that a zero denominator is guarded exactly
  instead of adding 1e-6 to every one.
- "saliency": Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks:
  Visualising Image Classification Models and Saliency Maps", 2013, arXiv:1312.6034,
  section 3.1: M_ij = max over channels of |dy^c/dx_ij|, taken w.r.t. the model's input (the
  normalized image: for one channel only a constant factor 1/std away from the raw pixels).

Departures and choices, stated:
- The heat map is `raw` upsampled bilinearly (align_corners=False) to the input size, then
  scaled to [0, 1] per image by (m - min) / (max - min) (Zhou et al.'s released code; an
  all-constant map becomes zeros and gets a note). Grad-CAM's ReLU comes before that, so its
  zeros stay zeros.
- The score y^c is the logit, not the probability (Grad-CAM's and CAM's choice).
- The model runs in eval mode (dropout off, BatchNorm with its running statistics) and is put
  back in the train/eval state of every submodule afterwards; parameters' requires_grad flags
  and .grad are never touched (gradients are taken w.r.t. activations only, with
  torch.autograd.grad, from a copy of the input that requires grad, so a frozen model works).
- Transformers: if the layer outputs tokens (B, T, D) with T = h*w or T = 1 + h*w (a CLS
  token first), where h x w is the patch grid (h : w = H : W), the CLS token is dropped and
  the rest reshaped row-major to (B, D, h, w). Channels-first sequences (T, B, D) are not
  recognized. The default layer of a token model is the last layer of embedding width D
  whose gradient is non-zero at the patch tokens: in a CLS-pooled ViT everything after the
  last attention is per-token, so the patch tokens' gradient is zero there (the usual choice,
  `blocks[-1].norm1` in pre-norm ViTs, is what this finds).
- Hooks live only inside one call (try/finally) and the captured activation is cloned before
  the rest of the network sees it, so a later in-place op (ResNet's ReLU(inplace=True))
  cannot change the values the map is computed from.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.errors import UserError
from deepnotes.explain.tracing import OpChain, display_name, eval_mode, first_tensor, linear_after, linear_weight

__all__ = ["METHODS", "CamResult", "compute_cam", "draw_cam", "layer_names", "overlay", "parse_layer"]

METHODS = ("cam", "gradcam", "gradcam++", "saliency")

# --------------------------------------------------------------------------- result


@dataclass
class CamResult:
    """One method applied to a batch. Tensors are on the CPU, detached.

    heatmap: (B, H, W) in [0, 1] at the input size. raw: (B, h, w) the method's own map at
    the layer's resolution (CAM: signed M_c; Grad-CAM(++): after the ReLU; saliency: (B, H, W)
    max |gradient|). weights: (B, K) the per-channel weights (CAM: w^c; Grad-CAM: alpha^c;
    Grad-CAM++: w^c), None for saliency. layer: the layer label as `deepnotes inspect` prints
    it ("name" or "name #k" for the k-th call), None for saliency. layout: "map", "tokens",
    "tokens+cls" (how the layer's output was read) or "input" (saliency).
    """

    method: str
    layer: str | None
    heatmap: torch.Tensor
    raw: torch.Tensor
    weights: torch.Tensor | None
    target: torch.Tensor
    predicted: torch.Tensor
    probs: torch.Tensor
    layout: str
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.target.shape[0])

    @property
    def target_prob(self) -> torch.Tensor:
        """(B,) the softmax probability of the explained class."""
        return self.probs.gather(1, self.target[:, None])[:, 0]

    @property
    def predicted_prob(self) -> torch.Tensor:
        """(B,) the softmax probability of the predicted class."""
        return self.probs.gather(1, self.predicted[:, None])[:, 0]


# --------------------------------------------------------------------------- small helpers


def _label(name: str, call: int) -> str:
    """The layer label of `deepnotes inspect`: the module name, plus " #k" for its k-th call."""
    return name + (f" #{call}" if call != 1 else "")


_LAYER_RE = re.compile(r"^\s*(.*?)\s*(?:#\s*(\d+))?\s*$")


def parse_layer(layer: str | tuple[str, int]) -> tuple[str, int]:
    """'features.layer1.0.relu #2' (or '...relu#2', or ('...relu', 2)) -> ('features.layer1.0.relu', 2)."""
    if isinstance(layer, tuple):
        name, call = layer
        return str(name), int(call)
    m = _LAYER_RE.match(str(layer))
    name, call = m.group(1), int(m.group(2) or 1)
    if not name or call < 1:
        raise UserError(f"layer must be a module name as `deepnotes inspect` prints it, e.g. 'features.layer4' or 'block.relu #2'; got {layer!r}")
    return name, call


def _module_names(model: nn.Module) -> tuple[dict[int, str], dict[str, nn.Module]]:
    """id(module) -> its first name (as summarize() names it), and every name -> module."""
    first: dict[int, str] = {}
    by_name: dict[str, nn.Module] = {}
    for n, m in model.named_modules(remove_duplicate=False):
        first.setdefault(id(m), n)
        by_name.setdefault(n, m)
    return first, by_name


def layer_names(model: nn.Module) -> list[str]:
    """Every module name `layer=` accepts (without call indices; "#k" picks the k-th call)."""
    return [n for n in _module_names(model)[1] if n]


@contextlib.contextmanager
def _hooks(handles: list) -> Iterator[list]:
    """Remove every hook handle appended to `handles`, whatever happens inside."""
    try:
        yield handles
    finally:
        for h in handles:
            h.remove()
        handles.clear()


# --------------------------------------------------------------------------- what follows a layer


# --------------------------------------------------------------------------- token layers


def _grid(n: int, hw: tuple[int, int]) -> tuple[int, int] | None:
    """The h x w grid with h * w = n and h : w = H : W, or None."""
    H, W = hw
    for h in range(1, n + 1):
        if n % h == 0 and h * W == (n // h) * H:
            return h, n // h
    return None


def _token_layout(t: torch.Tensor, hw: tuple[int, int]) -> tuple[str, tuple[int, int]] | None:
    """("tokens+cls", grid) for (B, 1 + h*w, D), ("tokens", grid) for (B, h*w, D), else None."""
    if t.dim() != 3:
        return None
    T = t.shape[1]
    if T > 1 and (g := _grid(T - 1, hw)) is not None:
        return "tokens+cls", g
    if (g := _grid(T, hw)) is not None:
        return "tokens", g
    return None


def _as_map(t: torch.Tensor, layout: str, grid: tuple[int, int] | None) -> torch.Tensor:
    """(B, C, h, w) from a layer output read as `layout` (see _read_layout)."""
    if layout == "map":
        return t
    B, _, D = t.shape
    tokens = t[:, 1:] if layout == "tokens+cls" else t
    return tokens.transpose(1, 2).reshape(B, D, *grid)


def _read_layout(t: torch.Tensor, hw: tuple[int, int], label: str) -> tuple[str, tuple[int, int] | None]:
    if t.dim() == 4:
        return "map", None
    tok = _token_layout(t, hw)
    if tok is not None:
        return tok
    shape = "x".join(map(str, t.shape[1:]))
    if t.dim() == 3:
        raise UserError(
            f"layer {label!r} outputs tokens (B, T, D) = (B, {shape}) but T = {t.shape[1]} is neither h*w nor 1 + h*w "
            f"for a patch grid with the input's aspect ratio {hw[0]}:{hw[1]}; choose another layer"
        )
    raise UserError(
        f"layer {label!r} outputs (B, {shape}), not a feature map (B, C, H, W) or tokens (B, T, D); "
        "CAM-type methods need a layer with positions, e.g. the last conv stage (leave layer= unset for it)"
    )


# --------------------------------------------------------------------------- forward passes


@dataclass
class _Call:
    name: str
    call: int
    output: torch.Tensor
    leaf: bool  # a module without children

    @property
    def label(self) -> str:
        return _label(self.name, self.call)


def _logits(out: Any, model: nn.Module, model_name: str | None) -> torch.Tensor:
    logits = first_tensor(out)
    if logits is None or logits.dim() != 2:
        shape = None if logits is None else tuple(logits.shape)
        raise UserError(f"{display_name(model, model_name)} returns {shape}, not logits (B, num_classes); CAM needs a classifier")
    return logits


def _targets(target: Any, logits: torch.Tensor) -> torch.Tensor:
    B, n = logits.shape
    if target is None:
        return logits.argmax(1)
    t = torch.as_tensor(target, dtype=torch.long).reshape(-1)
    if t.numel() == 1:
        t = t.expand(B)
    if t.numel() != B:
        raise UserError(f"target gives {t.numel()} classes for a batch of {B} images; give one class or one per image")
    if int(t.min()) < 0 or int(t.max()) >= n:
        raise UserError(f"target class {t.tolist()} is outside 0..{n - 1} (the model has {n} classes)")
    return t.to(logits.device)


def _probe_calls(model: nn.Module, x: torch.Tensor, names: dict[int, str]) -> tuple[list[_Call], torch.Tensor | None, Any]:
    """One forward pass recording every module call's output (in the order the calls finish),
    the output of forward_features if the model has one, and the model's output."""
    calls: list[_Call] = []
    counts: dict[int, int] = {}
    root = id(model)

    def hook(module, args, output):
        counts[id(module)] = counts.get(id(module), 0) + 1
        t = first_tensor(output)
        if t is not None and id(module) != root:
            calls.append(_Call(names.get(id(module), "?"), counts[id(module)], t, next(module.children(), None) is None))

    with _hooks([]) as handles:
        for m in model.modules():
            handles.append(m.register_forward_hook(hook))
        if callable(getattr(model, "forward_features", None)) and callable(getattr(model, "forward_head", None)):
            feats = model.forward_features(x)
            return calls, feats, model.forward_head(feats)
        return calls, None, model(x)


def _spatial(t: torch.Tensor, batch: int) -> bool:
    return t.dim() == 4 and t.shape[0] == batch and t.shape[-2] * t.shape[-1] > 1


def _innermost(calls: list[_Call], t: torch.Tensor) -> _Call | None:
    """The module call that produced `t`: the last leaf module whose output is `t` (after an
    in-place ReLU that is the ReLU, not the BatchNorm before it, though both return the same
    tensor object), else the first (innermost) container."""
    mine = [c for c in calls if c.output is t]
    leaves = [c for c in mine if c.leaf]
    return leaves[-1] if leaves else (mine[0] if mine else None)


def _default_layer(model, x, names, target, model_name) -> tuple[str, int]:
    """The last conv stage (forward_features' output, or the last module with a spatial map);
    for token models the last layer whose gradient reaches the patch tokens (module docstring)."""
    B, hw = x.shape[0], tuple(x.shape[-2:])
    calls, feats, out = _probe_calls(model, x, names)
    if feats is not None and _spatial(feats, B):
        c = _innermost(calls, feats)
        if c is not None:
            return c.name, c.call
    width = feats.shape[-1] if feats is not None and feats.dim() == 3 else None
    tokens = [
        i for i, c in enumerate(calls)
        if c.output.dim() == 3 and c.output.shape[0] == B and c.output.requires_grad
        and _token_layout(c.output, hw) is not None and (width is None or c.output.shape[-1] == width)
    ]  # fmt: skip
    maps = [i for i, c in enumerate(calls) if _spatial(c.output, B)]
    # A token model: forward_features gives tokens, or (without forward_features) tokens come
    # after the last map (which is then the patch embedding, not a last stage).
    token_model = width is not None or (feats is None and tokens and (not maps or tokens[-1] > maps[-1]))
    if maps and not token_model:
        return calls[maps[-1]].name, calls[maps[-1]].call
    if tokens:
        logits = _logits(out, model, model_name)
        score = logits.gather(1, _targets(target, logits)[:, None]).sum()
        grads = torch.autograd.grad(score, [calls[i].output for i in tokens], allow_unused=True)
        for i, g in zip(reversed(tokens), reversed(grads)):
            layout, _ = _token_layout(calls[i].output, hw)
            patches = g[:, 1:] if (g is not None and layout == "tokens+cls") else g
            if patches is not None and bool((patches != 0).any()):
                c = _innermost(calls, calls[i].output) or calls[i]
                return c.name, c.call
    shape = "x".join(map(str, feats.shape[1:])) if feats is not None else None
    raise UserError(
        f"{display_name(model, model_name)} has no layer with a spatial map (B, C, H, W) larger than 1x1 or patch tokens"
        + (f" (its forward_features gives (B, {shape}))" if shape else "")
        + "; CAM and Grad-CAM need one: use method='saliency' (gradients w.r.t. the input pixels)"
    )


def _check_layer_name(model: nn.Module, name: str, by_name: dict[str, nn.Module], model_name: str | None) -> nn.Module:
    if name in by_name and name:
        return by_name[name]
    valid = [n for n in by_name if n]
    close = difflib.get_close_matches(name, valid, n=6, cutoff=0.5)
    listing = f"valid layers: {', '.join(valid)}; " if len(valid) <= 30 else ""
    raise UserError(
        f"no layer {name!r} in {display_name(model, model_name)}"
        + (f"; closest: {', '.join(close)}" if close else "")
        + f"; {listing}`deepnotes inspect MODEL` lists all {len(valid)} with their output shapes "
        "(add ' #k' for the k-th call of a module used several times)"
    )


def _capture(model, x, module, name, call, chain: OpChain | None, model_name):
    """Forward pass with the output of `module`'s call number `call` captured.

    The hook hands the rest of the network a clone, so in-place ops later in the network
    cannot change the captured values; gradients w.r.t. the original equal those w.r.t. the
    clone. Returns (captured, clone, model output)."""
    state: dict[str, Any] = {"n": 0, "orig": None, "clone": None}

    def hook(mod, args, output):
        state["n"] += 1
        if state["n"] != call:
            return None
        t = first_tensor(output)
        if t is None:
            return None
        c = t.clone()
        state["orig"], state["clone"] = t, c
        if chain is not None:
            chain.start(c)
        if isinstance(output, torch.Tensor):
            return c
        if isinstance(output, (tuple, list)) and output and output[0] is t:
            return type(output)([c, *output[1:]]) if isinstance(output, list) else (c, *output[1:])
        state["clone"] = t  # an output we cannot rebuild: use it as it is
        return None

    with _hooks([module.register_forward_hook(hook)]), (chain if chain is not None else contextlib.nullcontext()):
        out = model(x)
    if state["orig"] is None:
        ran = state["n"]
        label = _label(name, call)
        if ran == 0:
            raise UserError(f"layer {label!r} of {display_name(model, model_name)} does not run in the forward pass")
        raise UserError(f"layer {name!r} runs {ran} time(s) in one forward pass, so {label!r} does not exist; use '{name}' .. '{_label(name, ran)}'")
    return state["orig"], state["clone"], out


# --------------------------------------------------------------------------- the methods


def _normalize01(m: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Per image (m - min) / (max - min); constant maps become 0. Returns the maps and whether any was constant."""
    flat = m.flatten(1)
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    span = hi - lo
    const = span <= 1e-12 * torch.maximum(hi.abs(), lo.abs()).clamp_min(1e-30)
    out = torch.where(const, torch.zeros_like(flat), (flat - lo) / torch.where(const, torch.ones_like(span), span))
    return out.view_as(m), bool(const.any())


def _upsample(m: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    if tuple(m.shape[-2:]) == tuple(hw):
        return m
    return F.interpolate(m[:, None], size=hw, mode="bilinear", align_corners=False)[:, 0]


def _gradcam_pp_weights(A: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    g2, g3 = G.pow(2), G.pow(3)
    sum_a = A.sum((2, 3), keepdim=True)
    denom = 2 * g2 + sum_a * g3
    aij = torch.where(G != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)), torch.zeros_like(G))
    return (aij * G.clamp_min(0)).sum((2, 3))  # (B, K)


def compute_cam(
    model: nn.Module,
    x: torch.Tensor,
    method: str = "gradcam",
    layer: str | tuple[str, int] | None = None,
    target: int | Sequence[int] | torch.Tensor | None = None,
    *,
    model_name: str | None = None,
) -> CamResult:
    """Explain the model's score for class `target` (default: the predicted class) on x.

    x: the model's input (B, C, H, W) or (C, H, W), normalized as the model expects. method:
    "cam", "gradcam", "gradcam++" or "saliency" (module docstring). layer: a module name as
    `deepnotes inspect` prints it ("features.layer4", "features.layer1.0.relu #2" for the
    second call of a module used twice) or (name, call); default: the last conv stage (see
    _default_layer); ignored by saliency. target: one class for all images, one per image, or
    None. model_name only makes error messages name the model. Bad names, a CAM request on a
    model without a GAP + linear head, a layer without positions: UserError.
    """
    if method not in METHODS:
        raise UserError(f"unknown CAM method {method!r}; choose one of {', '.join(METHODS)}")
    if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4) or not x.is_floating_point():
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise UserError(f"x must be a float tensor (B, C, H, W) or (C, H, W), normalized as the model expects; got {got}")
    x = x.detach()
    if x.dim() == 3:
        x = x[None]
    hw = (int(x.shape[-2]), int(x.shape[-1]))
    notes: list[str] = []
    with eval_mode(model), torch.enable_grad():
        x_in = x.clone().requires_grad_(True)  # gradients flow even through a frozen model
        if method == "saliency":
            logits = _logits(model(x_in), model, model_name)
            tgt = _targets(target, logits)
            (g,) = torch.autograd.grad(logits.gather(1, tgt[:, None]).sum(), x_in)
            raw = g.abs().amax(1)  # (B, H, W): max over channels of |dy/dx|
            heat, const = _normalize01(raw)
            if const:
                notes.append("the gradient is constant (zero?) over the image for some images; their heat map is all zeros")
            probs = torch.softmax(logits.detach(), 1)
            return CamResult(method, None, heat.detach().cpu(), raw.detach().cpu(), None, tgt.cpu(), probs.argmax(1).cpu(), probs.cpu(), "input", notes)

        first_names, by_name = _module_names(model)
        if layer is None:
            name, call = _default_layer(model, x_in, first_names, target, model_name)
        else:
            name, call = parse_layer(layer)
        module = _check_layer_name(model, name, by_name, model_name)
        name = first_names[id(module)]  # a module known under several names: the one inspect shows
        label = _label(name, call)
        chain = OpChain() if method == "cam" else None
        act, passed, out = _capture(model, x_in, module, name, call, chain, model_name)
        logits = _logits(out, model, model_name)
        tgt = _targets(target, logits)
        layout, grid = _read_layout(act, hw, label)
        A = _as_map(act.detach(), layout, grid)  # (B, K, h, w)
        if method == "cam":
            weights = _cam_weights(model, chain, passed, logits, A, layout, label, model_name)[tgt]  # (B, K)
            raw = (weights[:, :, None, None] * A).sum(1)  # M_c, signed
        else:
            score = logits.gather(1, tgt[:, None]).sum()  # images are independent in eval mode
            (g,) = torch.autograd.grad(score, act)
            G = _as_map(g, layout, grid)
            if method == "gradcam":
                weights = G.mean((2, 3))  # alpha_k^c
            else:
                weights = _gradcam_pp_weights(A, G)
            raw = F.relu((weights[:, :, None, None] * A).sum(1))
            if not bool((G != 0).any()):
                notes.append(
                    f"the gradient at {label!r} is zero everywhere: nothing after it mixes positions "
                    "(e.g. after the last attention of a CLS-pooled transformer); choose an earlier layer"
                )
        heat, const = _normalize01(_upsample(raw, hw))
        if const and not notes:
            notes.append("the map is constant for some images; their heat map is all zeros")
        probs = torch.softmax(logits.detach(), 1)
        return CamResult(
            method, label, heat.detach().cpu(), raw.detach().cpu(), weights.detach().cpu(), tgt.cpu(),
            probs.argmax(1).cpu(), probs.cpu(), layout, notes,
        )  # fmt: skip


def _cam_weights(model, chain: OpChain, passed, logits, A, layout, label, model_name) -> torch.Tensor:
    """The linear layer's weight (num_classes, K) if the layer is followed by GAP + one linear layer."""
    name = display_name(model, model_name)
    hint = "Grad-CAM works for any head: use method='gradcam' (for a GAP + linear head it equals CAM up to a positive scale)"
    if layout != "map":
        raise UserError(f"{name} cannot give a CAM at layer {label!r}: it outputs tokens, and CAM needs a feature map "
                        f"(B, C, H, W) followed by global average pooling and one linear layer; {hint}")  # fmt: skip
    op, desc = linear_after(chain.ops, passed, logits, allow_average=True)
    ok = op is not None
    if ok:
        w, _ = linear_weight(op)
        lin_in = op.args[0].detach()
        gap = A.mean((2, 3))
        ok = lin_in.shape == gap.shape and w.shape[1] == A.shape[1] and torch.allclose(lin_in, gap, rtol=1e-4, atol=1e-5 * (1 + float(gap.abs().max())))
    if not ok:
        raise UserError(
            f"{name} cannot give a CAM: CAM needs global average pooling then one linear layer after the chosen layer "
            f"(Zhou et al. 2016), but here layer {label!r} is followed by: {desc}; {hint}"
        )
    return w.detach()


# --------------------------------------------------------------------------- pictures


def _to_hwc01(image: Any) -> np.ndarray:
    """Any of (H, W), (C, H, W), (H, W, C) with C in {1, 3}, uint8 or float, -> float (H, W, 3) in [0, 1].
    Floats outside [0, 1] (a normalized image) are stretched min-max for display."""
    a = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (1, 3):  # (C, H, W), the layout of the datasets and models
        a = a.transpose(1, 2, 0)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3):
        raise ValueError(f"image must be (H, W), (C, H, W) or (H, W, C) with 1 or 3 channels, got shape {a.shape}")
    if a.dtype == np.uint8:
        f = a.astype(np.float64) / 255.0
    else:
        f = a.astype(np.float64)
        lo, hi = float(f.min()), float(f.max())
        if lo < 0 or hi > 1:
            f = (f - lo) / (hi - lo) if hi > lo else np.zeros_like(f)
    return np.repeat(f, 3, axis=-1) if f.shape[-1] == 1 else f


def overlay(image: Any, heatmap: Any, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Blend a heat map (H, W) in [0, 1] over an image: (1 - alpha) * image + alpha * cmap(heat).

    image: (H, W), (C, H, W) or (H, W, C), uint8 or float in [0, 1] (other floats are
    stretched for display). Returns RGB uint8 (H, W, 3).
    """
    from matplotlib import colormaps

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    img = _to_hwc01(image)
    heat = heatmap.detach().cpu().numpy() if isinstance(heatmap, torch.Tensor) else np.asarray(heatmap)
    heat = np.asarray(heat, dtype=np.float64)
    if heat.shape != img.shape[:2]:
        raise ValueError(f"heatmap is {heat.shape} but the image is {img.shape[:2]}; use CamResult.heatmap (input size)")
    colored = colormaps[cmap](np.clip(heat, 0.0, 1.0))[..., :3]
    return np.clip(np.rint(255.0 * ((1.0 - alpha) * img + alpha * colored)), 0, 255).astype(np.uint8)


def _class_name(i: int, class_names: Sequence[str] | None) -> str:
    return str(class_names[i]) if class_names is not None and 0 <= i < len(class_names) else str(i)


def draw_cam(
    images: Any,
    results: CamResult | Sequence[CamResult],
    out_png: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    *,
    max_images: int = 8,
    alpha: float = 0.5,
) -> Path:
    """One row per image: the image (titled with the predicted class and its probability), then
    one overlay per result (method, layer, explained class and its probability). `images` are
    the pictures to show (B, C, H, W) (uint8, or floats; normalized ones are stretched), the same
    images the results were computed on. Written atomically as PNG; returns the path."""
    from deepnotes.report.plots import new_figure, save_png

    results = [results] if isinstance(results, CamResult) else list(results)
    if not results:
        raise ValueError("draw_cam needs at least one CamResult")
    n = min(len(images), max_images, *(len(r) for r in results))
    if any(len(r) != len(results[0]) for r in results) or len(images) != len(results[0]):
        raise ValueError(f"{len(images)} images but results for {[len(r) for r in results]} images; they must match")
    cols = 1 + len(results)
    fig = new_figure((2.4 * cols, 2.5 * n))
    axes = np.asarray(fig.subplots(n, cols, squeeze=False))
    r0 = results[0]
    for i in range(n):
        pred = int(r0.predicted[i])
        ax = axes[i, 0]
        ax.imshow(_to_hwc01(images[i]), interpolation="nearest")
        ax.set_title(f"predicted {_class_name(pred, class_names)}\n{float(r0.probs[i, pred]):.0%}", fontsize=9)
        for j, r in enumerate(results, start=1):
            ax = axes[i, j]
            ax.imshow(overlay(images[i], r.heatmap[i], alpha=alpha), interpolation="nearest")
            t = int(r.target[i])
            where = "" if r.layer is None else f" @ {r.layer}"
            ax.set_title(f"{r.method}{where}\n{_class_name(t, class_names)} ({float(r.probs[i, t]):.0%})", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return save_png(fig, out_png)
