"""VGG: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", 2014 (ICLR 2015), arXiv:1409.1556.

The paper's idea: depth from a single building block. Every convolution is 3x3, stride 1,
padding 1 (two stacked 3x3 convs see 5x5, three see 7x7, with fewer parameters and more
non-linearities than one big kernel); a 2x2 max-pool (stride 2) ends each of five stages and
the width doubles after each pool (64, 128, 256, 512, 512), until three fully connected
layers (4096, 4096, 1000) with dropout 0.5 classify. Table 1 of the paper names the
configurations by letter; here A = vgg11, B = vgg13, D = vgg16, E = vgg19.

    input 3x224x224 -> stage1 64@112 -> stage2 128@56 -> stage3 256@28 -> stage4 512@14
    -> stage5 512@7 -> flatten 25088 -> FC 4096 -> FC 4096 -> FC 1000

Notes where this code departs from the paper (the same departures as torchvision's VGG, so
the parameter counts are the ones published there):
- an adaptive average pool to 7x7 before the classifier, so inputs other than 224x224 work
  (any size from 32x32 up; at 224x224 it is the identity);
- the `_bn` variants add BatchNorm after every convolution (Ioffe & Szegedy 2015, a year
  later; the paper trained A first and initialized the deeper nets from it instead); like
  torchvision's they keep the conv biases that BN makes redundant, which the published
  counts include (vgg16_bn = vgg16 + 2 * 4,224 BN scales and shifts = 138,365,992);
- initialization: He (kaiming) normal for the convolutions, N(0, 0.01) for the linear layers.

`vgg_small` is the "CIFAR-style" VGG for 28x28 / 32x32 images, the usual way VGG is taught
on small data, shaped for training speed on a CPU. It keeps the paper's principles (only
3x3 stride-1 convolutions, a 2x2 max-pool between stages, width doubling per stage) and
departs from it in:
- BatchNorm after every convolution (no conv biases: BN makes them redundant);
- four stages of one conv each, widths 32-64-128-256 (times `width`), on 28 -> 14 -> 7 -> 3
  (like the first stages of configuration A); a second conv per stage doubled the cost of a
  training step on 2 CPU cores for about +0.3% test accuracy after 2 epochs on
  Fashion-MNIST, while the fourth stage, at 3x3, adds capacity for 2.7M of 10.1M MACs;
- the last stage has no max-pool: global average pooling + one linear layer replace the
  three 4096-wide FC layers (that head alone would be 120M parameters; the whole net has
  0.39M). Conv features -> GAP -> linear is exactly the architecture that class activation
  maps (CAM, Zhou et al. 2016) read, and the last feature map stays 3x3 for them;
- in each pooled stage the max-pool runs right after the convolution, before its BatchNorm
  and ReLU (conv -> pool -> BN -> ReLU, as in Keller Jordan's airbench CIFAR-10 speed runs).
  Max-pooling commutes with ReLU, so the only change is that BN normalizes the pooled map;
  BN and ReLU then touch 4x fewer values, which saved 20-30% of a training step here (2 cores).
`stages`, `width`, `pool_before_norm` and `pool_last` are builder options, e.g.
create_model("vgg_small", stages=[[32], [64, 64], [128, 128]]) for two convs per stage.
benchmarks/time_to_accuracy.py trains it on Fashion-MNIST to 91% at width 0.5 (3 epochs)
and to 93% at width 1 (6-7 epochs).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from deepnotes.models.options import check_multiplier, check_size, check_sizes
from deepnotes.registry import Variant, register_variants

PAPER = 'Simonyan & Zisserman 2014, "Very Deep Convolutional Networks for Large-Scale Image Recognition", arXiv:1409.1556'

# --------------------------------------------------------------------------- helpers


def _scaled(channels: int, width: float) -> int:
    """A stage width times the width multiplier, at least 8 and rounded to a multiple of 8."""
    return max(8, int(round(channels * width / 8)) * 8) if width != 1.0 else channels


def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


# --------------------------------------------------------------------------- blocks


def vgg_stage(
    in_chans: int,
    widths: Sequence[int],
    *,
    batch_norm: bool,
    conv_bias: bool = True,
    pool: bool = True,
    pool_before_norm: bool = False,
) -> nn.Sequential:
    """One stage: a 3x3 stride-1 conv (+ BN) + ReLU per width, then a 2x2 max-pool.

    With pool_before_norm the pool moves between the last conv and its BN/ReLU (needs BN);
    pool=False leaves it out. conv_bias=False drops the conv biases, which a following BN
    makes redundant. Output: (B, widths[-1], H // 2, W // 2), or (B, widths[-1], H, W).
    """
    layers: list[tuple[str, nn.Module]] = []
    c = in_chans
    for i, w in enumerate(widths, start=1):
        last = i == len(widths)
        layers.append((f"conv{i}", nn.Conv2d(c, w, 3, padding=1, bias=conv_bias)))
        if last and pool and pool_before_norm:
            layers.append(("pool", nn.MaxPool2d(2)))
        if batch_norm:
            layers.append((f"bn{i}", nn.BatchNorm2d(w)))
        layers.append((f"relu{i}", nn.ReLU(inplace=True)))
        c = w
    if pool and not pool_before_norm:
        layers.append(("pool", nn.MaxPool2d(2)))
    return nn.Sequential(OrderedDict(layers))


def fc_head(in_features: int, num_classes: int, hidden: int = 4096, dropout: float = 0.5) -> nn.Sequential:
    """The paper's classifier: FC hidden -> ReLU -> dropout, twice, then FC num_classes."""
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class VGGConfig:
    """One VGG variant. `stages` holds the conv widths of each stage (a max-pool ends each)."""

    stages: tuple[tuple[int, ...], ...]
    batch_norm: bool = False
    head: str = "fc"  # "fc": avg-pool to 7x7 + FC 4096-4096-classes (paper) | "gap": global avg-pool + linear
    width: float = 1.0  # multiplier of every stage width
    dropout: float = 0.5  # in the FC head (or before the linear layer of the GAP head)
    fc_width: int = 4096
    pool_before_norm: bool = False  # conv -> pool -> BN -> ReLU in each stage's last conv (needs BN)
    conv_bias: bool = True  # torchvision's _bn variants keep them (and their published counts count them)
    pool_last: bool = True  # False: the last stage has no max-pool (the head's global average pool follows)


class VGG(nn.Module):
    """A stack of VGG stages and a classifier head; see the module docstring.

    features: stage1..stageN (each ends by halving the size); head: the classifier.
    `feature_layers` names the stage outputs (for CAM targets and backbone reuse) and
    `feature_info` gives their channels and reduction (as timm's feature_info).
    """

    def __init__(self, cfg: VGGConfig, num_classes: int = 1000, in_chans: int = 3):
        super().__init__()
        if cfg.head not in ("fc", "gap"):
            raise ValueError(f"unknown VGG head {cfg.head!r}; choose 'fc' or 'gap'")
        if cfg.pool_before_norm and not cfg.batch_norm:
            raise ValueError("pool_before_norm moves the pool before BatchNorm, so it needs batch_norm=True")
        if not cfg.stages or not all(cfg.stages):
            raise ValueError(f"VGG needs at least one stage and one conv per stage, got stages={cfg.stages}")
        self.cfg, self.num_classes, self.in_chans = cfg, num_classes, in_chans
        stages, c, self.feature_info, pools = [], in_chans, [], 0
        for i, widths in enumerate(cfg.stages, start=1):
            widths = [_scaled(w, cfg.width) for w in widths]
            pool = cfg.pool_last or i < len(cfg.stages)
            pools += pool
            stage = vgg_stage(
                c, widths, batch_norm=cfg.batch_norm, conv_bias=cfg.conv_bias, pool=pool, pool_before_norm=cfg.pool_before_norm
            )  # fmt: skip
            stages.append((f"stage{i}", stage))
            c = widths[-1]
            self.feature_info.append({"module": f"features.stage{i}", "num_chs": c, "reduction": 2**pools})
        self.features = nn.Sequential(OrderedDict(stages))
        self.feature_layers = [f["module"] for f in self.feature_info]
        self.num_features = c
        self.num_pools = pools
        self.min_size = 2**pools  # every pool halves the size
        if cfg.head == "fc":
            self.pool = nn.AdaptiveAvgPool2d(7)
            self.head = fc_head(c * 7 * 7, num_classes, cfg.fc_width, cfg.dropout)
        else:
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.head = nn.Sequential(nn.Dropout(cfg.dropout) if cfg.dropout else nn.Identity(), nn.Linear(c, num_classes))
        self.classifier_modules = ("head",)  # depends on the classes; transfer learning replaces it
        _init_weights(self)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_chans or min(x.shape[2:]) < self.min_size:
            raise ValueError(
                f"VGG expects input (B, {self.in_chans}, H, W) with H, W >= {self.min_size} "
                f"({self.num_pools} max-pools each halve the size), got {tuple(x.shape)}"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.features(x)  # (B, C, H / 2**pools, W / 2**pools)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pool(x).flatten(1)  # (B, C*7*7) for "fc", (B, C) for "gap"
        if pre_logits:
            return self.head[:-1](x)
        return self.head(x)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _vgg(
    num_classes: int = 1000,
    in_chans: int = 3,
    stages: Sequence[Sequence[int]] = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    batch_norm: bool = False,
    head: str = "fc",
    width: float = 1.0,
    dropout: float = 0.5,
    fc_width: int = 4096,
    pool_before_norm: bool = False,
    conv_bias: bool = True,
    pool_last: bool = True,
) -> VGG:
    cfg = VGGConfig(
        stages=tuple(check_sizes(f"stages[{i}]", s) for i, s in enumerate(stages)), batch_norm=batch_norm, head=head,
        width=check_multiplier("width", width), dropout=float(dropout), fc_width=check_size("fc_width", fc_width), pool_before_norm=pool_before_norm,
        conv_bias=conv_bias, pool_last=pool_last,
    )  # fmt: skip
    return VGG(cfg, num_classes=num_classes, in_chans=in_chans)


# --------------------------------------------------------------------------- variants

_A = ((64,), (128,), (256, 256), (512, 512), (512, 512))
_B = ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512))
_D = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
_E = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))

# The full-size counts (3 input channels, 1000 classes) are torchvision's published ones.
# vgg_small (1 input channel, 10 classes): convs without bias 288 + 18,432 + 73,728 +
# 294,912, BN 2 * (32 + 64 + 128 + 256), linear 2,570 = 390,890.
VARIANTS: dict[str, Variant] = {
    "vgg11": Variant(
        "VGG-11 (configuration A): 8 convs + 3 FC",
        num_params=132_863_336, input_size=(3, 224, 224), num_classes=1000, config=VGGConfig(_A),
    ),
    "vgg13": Variant(
        "VGG-13 (configuration B): 10 convs + 3 FC",
        num_params=133_047_848, input_size=(3, 224, 224), num_classes=1000, config=VGGConfig(_B),
    ),
    "vgg16": Variant(
        "VGG-16 (configuration D): 13 convs + 3 FC",
        num_params=138_357_544, input_size=(3, 224, 224), num_classes=1000, config=VGGConfig(_D),
    ),
    "vgg19": Variant(
        "VGG-19 (configuration E): 16 convs + 3 FC",
        num_params=143_667_240, input_size=(3, 224, 224), num_classes=1000, config=VGGConfig(_E),
    ),
    "vgg16_bn": Variant(
        "VGG-16 with BatchNorm after every conv",
        num_params=138_365_992, input_size=(3, 224, 224), num_classes=1000, config=VGGConfig(_D, batch_norm=True),
    ),
    "vgg19_bn": Variant(
        "VGG-19 with BatchNorm after every conv",
        num_params=143_678_248, input_size=(3, 224, 224), num_classes=1000, config=VGGConfig(_E, batch_norm=True),
    ),
    "vgg_small": Variant(
        "CIFAR-style VGG for 28x28/32x32: 3x3 conv-BN-ReLU stages 32-64-128-256, GAP + linear head",
        num_params=390_890, input_size=(1, 28, 28), num_classes=10,
        config=VGGConfig(
            ((32,), (64,), (128,), (256,)), batch_norm=True, head="gap", dropout=0.0, pool_before_norm=True, conv_bias=False,
            pool_last=False,
        ),
    ),
}

register_variants(_vgg, VARIANTS, paper=PAPER)
