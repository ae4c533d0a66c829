"""LeNet-5: LeCun, Bottou, Bengio & Haffner, "Gradient-Based Learning Applied to Document
Recognition", Proc. IEEE 1998.

    input 1x32x32 -> C1 conv5 6@28x28 -> S2 subsample 6@14x14 -> C3 conv5 16@10x10
    -> S4 subsample 16@5x5 -> C5 conv5 120@1x1 -> F6 84 -> output 10

The 32x32 input is the paper's: MNIST's 28x28 digits were padded by 2 pixels so that the
strokes' end points can reach the centre of C1's receptive fields.

`lenet5` follows the paper layer by layer:
- the squashing function f(a) = 1.7159 tanh(2a/3) (paper, appendix A);
- S2/S4 are trainable subsampling: the sum of each 2x2 window times one learned
  coefficient per map, plus one learned bias per map (12 and 32 parameters);
- C3 uses the paper's partial connection table (Table I): each of the 16 maps sees only
  3, 4 or all 6 of S2's maps (60 connections). Only the 60 connected 5x5 kernels are
  stored (a (60, 25) parameter scattered into the full 16x6x5x5 weight at each forward), so
  C3 has 60*25 + 16 = 1,516 parameters, not the 6*16*25 + 16 = 2,416 of a full 6->16 conv.
  With the table, the whole model has 60,850 parameters; without it, 61,750.
Departure from the paper: the output layer is a linear layer with softmax cross-entropy
(84*10 + 10 = 850 parameters) instead of the Euclidean RBF units whose 840 weights were
fixed by hand (stylized 7x12 bitmaps) and trained with the paper's MAP criterion.
The paper's total counts C1..F6 = 60,000 trainable parameters, as here minus the head.
PyTorch's default initialization replaces the paper's uniform(+-2.4/fan_in).

`lenet5_relu` is the form most code calls LeNet-5: ReLU, 2x2 max-pooling without
parameters, a full C3 (2,416 parameters): 61,706 parameters in all.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.registry import Variant, register_variants

PAPER = 'LeCun, Bottou, Bengio & Haffner 1998, "Gradient-Based Learning Applied to Document Recognition", Proc. IEEE'

# Table I of the paper: the S2 maps that each C3 map is connected to.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip


# --------------------------------------------------------------------------- helpers


class ScaledTanh(nn.Module):
    """The paper's squashing function f(a) = A tanh(S a), A = 1.7159, S = 2/3 (appendix A)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.7159 * torch.tanh(x * (2.0 / 3.0))


class Subsample(nn.Module):
    """S2/S4: sum over each 2x2 window, times a learned coefficient per map, plus a learned bias."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        summed = F.avg_pool2d(x, 2) * 4.0  # (B, C, H/2, W/2)
        return summed * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class PartialConv2d(nn.Module):
    """A conv whose output map o sees only the input maps table[o] (LeNet-5's C3).

    Only the connected kernels are parameters; forward scatters them into a zero weight of
    the full shape and runs one ordinary convolution, so the cost is that of a full conv.
    """

    def __init__(self, in_chans: int, table: tuple[tuple[int, ...], ...], kernel_size: int):
        super().__init__()
        self.in_chans, self.out_chans, self.kernel_size = in_chans, len(table), kernel_size
        flat = [o * in_chans + i for o, inputs in enumerate(table) for i in inputs]
        self.register_buffer("index", torch.tensor(flat), persistent=False)
        # PyTorch's default conv init, U(+-1/sqrt(fan_in)), with each map's true fan-in.
        bound = torch.tensor([1.0 / (len(inputs) * kernel_size**2) ** 0.5 for inputs in table])
        self.weight = nn.Parameter((torch.rand(len(flat), kernel_size**2) * 2 - 1) * bound[self._out_of(table)].unsqueeze(1))
        self.bias = nn.Parameter((torch.rand(len(table)) * 2 - 1) * bound)

    @staticmethod
    def _out_of(table: tuple[tuple[int, ...], ...]) -> torch.Tensor:
        return torch.tensor([o for o, inputs in enumerate(table) for _ in inputs])

    def full_weight(self) -> torch.Tensor:
        k2 = self.kernel_size**2
        w = self.weight.new_zeros(self.out_chans * self.in_chans, k2).index_copy(0, self.index, self.weight)
        return w.view(self.out_chans, self.in_chans, self.kernel_size, self.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.full_weight(), self.bias)


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class LeNetConfig:
    activation: str = "scaled_tanh"  # "scaled_tanh" (paper) | "relu"
    pool: str = "subsample"  # "subsample" (paper, trainable) | "max"
    c3_table: bool = True  # the paper's partial C3 connections


class LeNet5(nn.Module):
    """LeNet-5 for (B, in_chans, 32, 32) input; see the module docstring for the paper's details."""

    img_size = (32, 32)

    def __init__(self, num_classes: int = 10, in_chans: int = 1, cfg: LeNetConfig = LeNetConfig()):
        super().__init__()
        if cfg.activation not in ("scaled_tanh", "relu") or cfg.pool not in ("subsample", "max"):
            raise ValueError(f"unknown LeNet-5 option in {cfg}")
        self.in_chans, self.num_classes = in_chans, num_classes
        act = ScaledTanh if cfg.activation == "scaled_tanh" else nn.ReLU

        def pool(channels: int) -> nn.Module:
            return Subsample(channels) if cfg.pool == "subsample" else nn.MaxPool2d(2)

        c3 = PartialConv2d(6, C3_TABLE, 5) if cfg.c3_table else nn.Conv2d(6, 16, 5)
        subsample = cfg.pool == "subsample"  # the paper squashes after subsampling too
        layers = [
            ("c1", nn.Conv2d(in_chans, 6, 5)),  # (B, 6, 28, 28)
            ("act1", act()),
            ("s2", pool(6)),  # (B, 6, 14, 14)
            *([("act2", act())] if subsample else []),
            ("c3", c3),  # (B, 16, 10, 10)
            ("act3", act()),
            ("s4", pool(16)),  # (B, 16, 5, 5)
            *([("act4", act())] if subsample else []),
            ("c5", nn.Conv2d(16, 120, 5)),  # (B, 120, 1, 1)
            ("act5", act()),
        ]
        self.features = nn.Sequential(OrderedDict(layers))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(120, 84), act(), nn.Linear(84, num_classes))
        self.feature_layers = ["features.c1", "features.c3", "features.c5"]
        self.classifier_modules = ("head",)  # F6 and the output layer; transfer learning replaces them

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_chans or tuple(x.shape[2:]) != self.img_size:
            raise ValueError(
                f"LeNet-5 expects input (B, {self.in_chans}, 32, 32), got {tuple(x.shape)}; "
                "pad 28x28 images by 2 pixels as the paper did"
            )
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if pre_logits:
            return self.head[:-1](x)  # F6's squashed outputs (B, 84)
        return self.head(x)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _lenet5(num_classes: int = 10, in_chans: int = 1, **cfg) -> LeNet5:
    return LeNet5(num_classes=num_classes, in_chans=in_chans, cfg=LeNetConfig(**cfg))


# --------------------------------------------------------------------------- variants

VARIANTS: dict[str, Variant] = {
    # 156 + 12 + 1,516 + 32 + 48,120 + 10,164 + 850 (1 input channel, 10 classes)
    "lenet5": Variant(
        "LeNet-5 as in the paper: scaled tanh, trainable subsampling, C3 connection table",
        num_params=60_850, input_size=(1, 32, 32), num_classes=10, config=LeNetConfig(), fixed_input_size=True,
    ),
    # 156 + 2,416 + 48,120 + 10,164 + 850
    "lenet5_relu": Variant(
        "LeNet-5 as most code has it: ReLU, max-pooling, full C3",
        num_params=61_706, input_size=(1, 32, 32), num_classes=10, fixed_input_size=True,
        config=LeNetConfig(activation="relu", pool="max", c3_table=False),
    ),
}

register_variants(_lenet5, VARIANTS, paper=PAPER)
