"""Gradient clipping from its definitions, equal to torch.nn.utils.clip_grad_norm_ / clip_grad_value_.

Clipping by norm (Pascanu, Mikolov & Bengio 2013, "On the difficulty of training recurrent
neural networks", arXiv:1211.5063, section 3.2): all gradients of the model, taken as one
vector g, are scaled down when their norm exceeds a threshold, which keeps the direction of the
step and bounds its length (exploding gradients in an RNN give a few huge steps otherwise):

    ||g||_q = (sum_i |g_i|^q)^(1/q)          ||g||_inf = max_i |g_i|
    g <- g * min(1, max_norm / (||g||_q + 1e-6))

The norm of the whole vector is the norm of the vector of per-tensor norms, which is how it is
computed (as torch does, with the same roundings and the same overflow and underflow: in float32
two entries of 1e20 give an infinite 2-norm, two of 1e-30 a zero one; a single entry's norm is
its absolute value, without the powers). The 1e-6 is torch's. The scale is applied to every
gradient, as torch does, so a non-finite total norm reaches the gradients as torch's does (its
default error_if_nonfinite=False): NaN makes every gradient NaN, +inf scales by 0 (finite
entries become 0, infinite ones NaN). error_if_nonfinite=True raises instead.

Clipping by value (element-wise, as Mikolov 2012, "Statistical Language Models Based on Neural
Networks", PhD thesis, did before Pascanu et al.): every entry is clamped to [-clip_value,
clip_value] on its own, which may change the direction.

Parameters whose .grad is None are skipped. Departure from torch: a negative (or NaN) max_norm
or clip_value is a ValueError (torch would flip the gradients' sign, or set every entry to
-clip_value); norm_type must be > 0 or inf (torch also takes 0 and negative orders, which are
not norms: its "0-norm" counts the non-zero per-tensor norms, not the non-zero entries); a
gradient with no entries adds nothing to the inf norm (torch raises, as the max over no entries
has no identity; norms are >= 0, so 0 is one here), as it adds nothing to the others;
clip_grad_value_ without any gradient is a no-op (torch 2.13 fails inside with an internal error).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters: torch.Tensor | Iterable[torch.Tensor]) -> list[torch.Tensor]:
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def _norm(v: torch.Tensor, q: float) -> torch.Tensor:
    """||v||_q of all entries of v, in v's dtype (0 for an empty v)."""
    if v.numel() == 0:
        return v.new_zeros(())
    if v.numel() == 1:  # one entry: |v|, as torch (|v|^q could overflow or underflow on the way)
        return v.abs().reshape(())
    if q == math.inf:
        return v.abs().max()
    return v.abs().pow(q).sum().pow(1.0 / q)


@torch.no_grad()
def clip_grad_norm_(
    parameters: torch.Tensor | Iterable[torch.Tensor], max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> torch.Tensor:
    """Scale every gradient by min(1, max_norm / (||g||_q + 1e-6)), g = all gradients as one
    vector, q = norm_type (inf for the max norm); in place. Returns ||g||_q (a 0-d tensor,
    before clipping; tensor(0.) when no parameter has a gradient)."""
    max_norm, q = float(max_norm), float(norm_type)
    if not max_norm >= 0:
        raise ValueError(f"max_norm must be >= 0, got {max_norm}")
    if not q > 0:
        raise ValueError(f"norm_type must be > 0 (or inf), got {norm_type}")
    grads = _grads(parameters)
    if not grads:
        return torch.tensor(0.0)
    device = grads[0].device
    # the per-tensor norms as one vector (torch.stack promotes mixed dtypes), then its norm
    total = _norm(torch.stack([_norm(g, q).to(device) for g in grads]), q)
    if error_if_nonfinite and not torch.isfinite(total):
        raise RuntimeError(f"the total {q}-norm of the gradients is {total.item()}, so they cannot be clipped")
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.to(g.device))
    return total


@torch.no_grad()
def clip_grad_value_(parameters: torch.Tensor | Iterable[torch.Tensor], clip_value: float) -> None:
    """Clamp every gradient entry to [-clip_value, clip_value], in place (NaN stays NaN)."""
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters):
        g.clamp_(-clip_value, clip_value)
