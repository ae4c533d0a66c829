"""Dropout in its two forms: classic (scale at test time) and inverted (scale in training).

Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov 2014, "Dropout: A Simple Way to
Prevent Neural Networks from Overfitting", JMLR 15 (first as Hinton et al. 2012,
arXiv:1207.0580).

Each unit is kept with probability q = 1 - p. The expected training output is then q * x, and
the two forms make test time agree with it (C14):

    mode="classic"   train: x * mask              test: q * x       (the paper's form)
    mode="inverted"  train: x * mask / q          test: x           (nn.Dropout's form)

Inverted dropout moves the 1/q into training, so the test-time network is the plain one.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MODES", "Dropout", "dropout"]

MODES = ("inverted", "classic")


def dropout(
    x: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    mode: str = "inverted",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Zero each element with probability p (training) and scale according to `mode`."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if mode not in MODES:
        raise ValueError(f"dropout mode must be one of {MODES}, got {mode!r}")
    keep = 1.0 - p
    if not training:
        return x if mode == "inverted" else x * keep
    if p == 0.0:
        return x
    # keep a unit when u >= p, u ~ U[0, 1): probability 1 - p. u is drawn in float32 (float64 for
    # float64 x), never in x's own low precision: bfloat16 has ~2,000 values in [0, 1) and rounds
    # p too (0.3 -> 0.30078), which biased the keep rate by ~2e-3 (F.dropout is unbiased there).
    draw = torch.float64 if x.dtype == torch.float64 else torch.float32
    mask = torch.rand(x.shape, dtype=draw, device=x.device, generator=generator) >= p
    if mode == "classic":
        return x * mask
    if p == 1.0:
        return x * 0.0  # everything dropped; 1/q would be inf
    return x * mask / keep


class Dropout(nn.Module):
    """Scratch nn.Dropout(p) with mode="inverted" (as nn.Dropout) or "classic"."""

    def __init__(self, p: float = 0.5, mode: str = "inverted", generator: torch.Generator | None = None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        if mode not in MODES:
            raise ValueError(f"dropout mode must be one of {MODES}, got {mode!r}")
        self.p, self.mode, self.generator = p, mode, generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training, self.mode, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}"
