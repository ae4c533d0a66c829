"""ResNet: He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", 2015
(CVPR 2016), arXiv:1512.03385.

The paper's idea: make each block learn a residual F(x) and add the input back,
y = relu(F(x) + x). A block that has nothing to add only has to push F towards zero, which
is easier than fitting an identity with a stack of nonlinear layers; the paper shows that
deeper *plain* nets (the same layers without the additions) have higher *training* error
than shallower ones (the degradation problem, figure 1 and figure 4) while residual nets
keep improving with depth. Two blocks (figure 5):

    BasicBlock (resnet18/34):  3x3 conv-BN-ReLU -> 3x3 conv-BN, + shortcut, ReLU
    Bottleneck (resnet50+):    1x1 conv (reduce to `planes`)-BN-ReLU -> 3x3 conv-BN-ReLU
                               -> 1x1 conv (expand to 4 * planes)-BN, + shortcut, ReLU

The shortcut is the identity when the block keeps its shape. When a block halves the size
and widens the channels, the paper offers (section 3.3): (A) the identity on the
subsampled input, zero-padded with new channels (no parameters), or (B) a projection, a
1x1 conv with the stride (+ BN). The ImageNet nets here use B (as torchvision, so the
published counts match); the CIFAR nets use A, as the paper's section 4.2 does.

ImageNet form (table 1), input 3x224x224:

    stem: 7x7/2 conv 64 -> BN -> ReLU -> 3x3/2 max-pool          64@56
    layer1 (stride 1) 64@56 -> layer2 128@28 -> layer3 256@14 -> layer4 512@7
    (x4 channels for bottleneck nets) -> global average pool -> FC 1000

CIFAR form (section 4.2), input 3x32x32, depth 6n + 2:

    3x3 conv 16 -> BN -> ReLU -> 2n layers at 16@32 -> 2n at 32@16 -> 2n at 64@8
    -> global average pool -> FC 10

Notes where this code departs from the paper:
- "ResNet v1.5" (the departure torchvision and most later code make): a bottleneck that
  downsamples puts the stride on its 3x3 conv; the paper puts it on the first 1x1 conv,
  which then throws away 3 of every 4 input positions before looking at them. Same
  parameter count, about +0.5% top-1 in NVIDIA's measurements, a little more compute.
  `stride_in_1x1=True` gives the paper's form;
- convolutions followed by BN have no bias (BN's shift makes it redundant), as
  torchvision; the published counts count no conv biases;
- `zero_init_residual=True` (off by default; Goyal et al. 2017, "Accurate, Large Minibatch
  SGD") starts the last BN of every residual branch at zero, so every block starts as the
  identity; `residual=False` removes every shortcut: the paper's plain nets, for the
  degradation experiment (lab claim C18), registered as plain18/34 and plain20/32/44/56;
- `width` multiplies every width (stem and stages) and rounds to an integer, a width
  multiplier in the spirit of Zagoruyko & Komodakis' Wide ResNets (arXiv:1605.07146),
  which widen the stages only.

Parameter counts: the ImageNet ones are torchvision's published ones. The CIFAR nets with
option A shortcuts have 269,722 / 464,154 / 658,586 / 853,018 / 1,727,962 parameters for
depth 20 / 32 / 44 / 56 / 110, which the paper's table 6 rounds to 0.27M / 0.46M / 0.66M
/ 0.85M / 1.7M. Option B (shortcut="B") adds 2,752 (two projections: 16*32 + 2*32 and
32*64 + 2*64), which would round to 0.27M / 0.47M / 0.66M / 0.86M / 1.7M: the table's
0.46M and 0.85M agree with option A only, as the text says. Each extra n adds 97,216
(6 convs + 6 BNs).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.models.options import check_multiplier, check_size, check_sizes
from deepnotes.registry import Variant, register_variants

PAPER = 'He, Zhang, Ren & Sun 2015, "Deep Residual Learning for Image Recognition", arXiv:1512.03385'

# --------------------------------------------------------------------------- helpers


def conv3x3(in_chans: int, out_chans: int, stride: int = 1) -> nn.Conv2d:
    """3x3 conv, padding 1, no bias (a BN follows)."""
    return nn.Conv2d(in_chans, out_chans, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_chans: int, out_chans: int, stride: int = 1) -> nn.Conv2d:
    """1x1 conv, no bias (a BN follows)."""
    return nn.Conv2d(in_chans, out_chans, 1, stride=stride, bias=False)


def _scaled(channels: int, width: float) -> int:
    """A width times the width multiplier, rounded, at least 1."""
    return max(1, round(channels * width))


def _init_weights(model: nn.Module, zero_init_residual: bool) -> None:
    # He et al. 2015 ("Delving Deep into Rectifiers") init, as the paper; fan_out as torchvision.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, (BasicBlock, Bottleneck)):
                nn.init.zeros_(m.last_bn.weight)


class PadShortcut(nn.Module):
    """Option A shortcut: the identity on the strided input, zero-padded with new channels.

    (B, C_in, H, W) -> (B, C_out, H / stride, W / stride); no parameters. The new channels
    are zeros, so those channels of the block are a plain (non-residual) mapping.
    """

    def __init__(self, in_chans: int, out_chans: int, stride: int):
        super().__init__()
        if out_chans < in_chans:
            raise ValueError(f"option A shortcut can only add channels, got {in_chans} -> {out_chans}")
        self.in_chans, self.out_chans, self.stride = in_chans, out_chans, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]  # (B, C_in, ceil(H / s), ceil(W / s))
        return F.pad(x, (0, 0, 0, 0, 0, self.out_chans - self.in_chans))  # (B, C_out, ...)

    def extra_repr(self) -> str:
        return f"{self.in_chans}, {self.out_chans}, stride={self.stride}"


def make_shortcut(in_chans: int, out_chans: int, stride: int, kind: str) -> nn.Module:
    """The identity when the shape is kept; otherwise option A (zero-pad) or B (projection)."""
    if stride == 1 and in_chans == out_chans:
        return nn.Identity()
    if kind == "A":
        return PadShortcut(in_chans, out_chans, stride)
    return nn.Sequential(OrderedDict(conv=conv1x1(in_chans, out_chans, stride), bn=nn.BatchNorm2d(out_chans)))


# --------------------------------------------------------------------------- blocks


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN (ReLU between), plus the shortcut, then ReLU (figure 5, left).

    (B, in_chans, H, W) -> (B, planes, H / stride, W / stride). With residual=False there
    is no shortcut (shortcut is None): a block of the paper's plain nets.
    """

    expansion = 1

    def __init__(self, in_chans: int, planes: int, stride: int = 1, *, residual: bool = True, shortcut: str = "B", stride_in_1x1: bool = False):
        super().__init__()
        del stride_in_1x1  # only the bottleneck has a 1x1 conv to put the stride on
        self.conv1 = conv3x3(in_chans, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = make_shortcut(in_chans, planes, stride, shortcut) if residual else None

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))  # F(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)  # F(x) + x
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4), each with BN, plus the shortcut, then ReLU (figure 5, right).

    (B, in_chans, H, W) -> (B, 4 * planes, H / stride, W / stride). The stride sits on the
    3x3 conv (ResNet v1.5) unless stride_in_1x1 (the paper). residual=False: no shortcut.
    """

    expansion = 4

    def __init__(self, in_chans: int, planes: int, stride: int = 1, *, residual: bool = True, shortcut: str = "B", stride_in_1x1: bool = False):
        super().__init__()
        out_chans = planes * self.expansion
        self.conv1 = conv1x1(in_chans, planes, stride if stride_in_1x1 else 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, 1 if stride_in_1x1 else stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, out_chans)
        self.bn3 = nn.BatchNorm2d(out_chans)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = make_shortcut(in_chans, out_chans, stride, shortcut) if residual else None

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))  # F(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)  # F(x) + x
        return self.relu(out)


BLOCKS: dict[str, type[BasicBlock | Bottleneck]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class ResNetConfig:
    """One ResNet variant: block type, blocks per stage, stage widths and the stem."""

    block: str = "basic"  # "basic" (two 3x3) | "bottleneck" (1x1-3x3-1x1, x4 output)
    layers: tuple[int, ...] = (2, 2, 2, 2)  # blocks per stage
    widths: tuple[int, ...] = (64, 128, 256, 512)  # `planes` per stage (x4 at the output of a bottleneck)
    stem: str = "imagenet"  # "imagenet": 7x7/2 conv + 3x3/2 max-pool | "cifar": 3x3 conv, no pool
    stem_width: int = 64
    residual: bool = True  # False: the paper's plain net (no shortcuts)
    shortcut: str = "B"  # when the shape changes: "A" zero-pad identity | "B" 1x1 conv + BN projection
    width: float = 1.0  # multiplier of the stem and stage widths
    stride_in_1x1: bool = False  # bottleneck: stride on the first 1x1 (paper) instead of the 3x3 (v1.5)
    zero_init_residual: bool = False  # start each residual branch's last BN scale at 0


class ResNet(nn.Module):
    """A stem, stages of residual (or plain) blocks, global average pooling and a linear head.

    features: stem, layer1..layerN (the first block of every stage but the first halves the
    size); head: the linear classifier. `feature_layers` names the stage outputs (CAM
    targets, backbone reuse) and `feature_info` gives their channels and reduction.
    """

    def __init__(self, cfg: ResNetConfig, num_classes: int = 1000, in_chans: int = 3):
        super().__init__()
        if cfg.block not in BLOCKS:
            raise ValueError(f"unknown ResNet block {cfg.block!r}; choose one of {sorted(BLOCKS)}")
        if cfg.stem not in ("imagenet", "cifar"):
            raise ValueError(f"unknown ResNet stem {cfg.stem!r}; choose 'imagenet' or 'cifar'")
        if cfg.shortcut not in ("A", "B"):
            raise ValueError(f"unknown shortcut option {cfg.shortcut!r}; choose 'A' (zero-pad) or 'B' (projection)")
        if not cfg.layers or len(cfg.layers) != len(cfg.widths) or min(cfg.layers) < 1:
            raise ValueError(f"ResNet needs one width per stage and at least one block each, got layers={cfg.layers} widths={cfg.widths}")
        self.cfg, self.num_classes, self.in_chans = cfg, num_classes, in_chans
        block = BLOCKS[cfg.block]
        c = _scaled(cfg.stem_width, cfg.width)
        if cfg.stem == "imagenet":
            stem = [("conv", nn.Conv2d(in_chans, c, 7, stride=2, padding=3, bias=False)), ("bn", nn.BatchNorm2d(c)),
                    ("relu", nn.ReLU(inplace=True)), ("pool", nn.MaxPool2d(3, stride=2, padding=1))]  # fmt: skip
            reduction = 4
        else:
            stem = [("conv", conv3x3(in_chans, c)), ("bn", nn.BatchNorm2d(c)), ("relu", nn.ReLU(inplace=True))]
            reduction = 1
        stages: list[tuple[str, nn.Module]] = [("stem", nn.Sequential(OrderedDict(stem)))]
        self.feature_info = []
        for i, (n, w) in enumerate(zip(cfg.layers, cfg.widths), start=1):
            planes, stride = _scaled(w, cfg.width), 1 if i == 1 else 2
            blocks = []
            for j in range(n):
                blocks.append(block(c, planes, stride if j == 0 else 1, residual=cfg.residual, shortcut=cfg.shortcut, stride_in_1x1=cfg.stride_in_1x1))
                c = planes * block.expansion
            reduction *= stride
            stages.append((f"layer{i}", nn.Sequential(*blocks)))
            self.feature_info.append({"module": f"features.layer{i}", "num_chs": c, "reduction": reduction})
        self.features = nn.Sequential(OrderedDict(stages))
        self.feature_layers = [f["module"] for f in self.feature_info]
        self.num_features = c
        self.reduction = reduction
        # Below half the total reduction, more than the last stage would work on 1x1 maps.
        self.min_size = max(1, reduction // 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c, num_classes)
        self.classifier_modules = ("head",)  # depends on the classes; transfer learning replaces it
        _init_weights(self, cfg.zero_init_residual)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_chans or min(x.shape[2:]) < self.min_size:
            raise ValueError(
                f"ResNet expects input (B, {self.in_chans}, H, W) with H, W >= {self.min_size} "
                f"(it downsamples {self.reduction}x), got {tuple(x.shape)}"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.features(x)  # (B, C, H / reduction, W / reduction), rounded up

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pool(x).flatten(1)  # (B, C)
        return x if pre_logits else self.head(x)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _resnet(
    num_classes: int = 1000,
    in_chans: int = 3,
    block: str = "basic",
    layers: Sequence[int] = (2, 2, 2, 2),
    widths: Sequence[int] = (64, 128, 256, 512),
    stem: str = "imagenet",
    stem_width: int = 64,
    residual: bool = True,
    shortcut: str = "B",
    width: float = 1.0,
    stride_in_1x1: bool = False,
    zero_init_residual: bool = False,
) -> ResNet:
    cfg = ResNetConfig(
        block=block, layers=tuple(int(n) for n in layers), widths=check_sizes("widths", widths), stem=stem,
        stem_width=check_size("stem_width", stem_width), residual=bool(residual), shortcut=shortcut,
        width=check_multiplier("width", width),
        stride_in_1x1=bool(stride_in_1x1), zero_init_residual=bool(zero_init_residual),
    )  # fmt: skip
    return ResNet(cfg, num_classes=num_classes, in_chans=in_chans)


# --------------------------------------------------------------------------- variants


def _cifar(depth: int, residual: bool = True) -> ResNetConfig:
    """The paper's CIFAR-10 net of depth 6n + 2 (section 4.2), option A shortcuts."""
    n = (depth - 2) // 6
    assert 6 * n + 2 == depth, depth
    return ResNetConfig(layers=(n, n, n), widths=(16, 32, 64), stem="cifar", stem_width=16, residual=residual, shortcut="A")


_IMAGENET = (3, 224, 224)
_CIFAR = (3, 32, 32)

# ImageNet nets (3 channels, 1000 classes): torchvision's published counts. The plain nets
# have no published count (table 1 gives FLOPs); theirs is the residual net's minus its three
# projections, 8,448 + 33,280 + 132,096 = 173,824 (1x1 conv + BN at each stage change).
# CIFAR nets (3 channels, 10 classes): see the module docstring; option A shortcuts have no
# parameters, so a plain CIFAR net has exactly the count of its residual twin.
VARIANTS: dict[str, Variant] = {
    "resnet18": Variant(
        "ResNet-18: basic blocks 2-2-2-2, projection shortcuts",
        num_params=11_689_512, input_size=_IMAGENET, num_classes=1000, config=ResNetConfig("basic", (2, 2, 2, 2)),
    ),
    "resnet34": Variant(
        "ResNet-34: basic blocks 3-4-6-3, projection shortcuts",
        num_params=21_797_672, input_size=_IMAGENET, num_classes=1000, config=ResNetConfig("basic", (3, 4, 6, 3)),
    ),
    "resnet50": Variant(
        "ResNet-50 (v1.5): bottleneck blocks 3-4-6-3",
        num_params=25_557_032, input_size=_IMAGENET, num_classes=1000, config=ResNetConfig("bottleneck", (3, 4, 6, 3)),
    ),
    "resnet101": Variant(
        "ResNet-101 (v1.5): bottleneck blocks 3-4-23-3",
        num_params=44_549_160, input_size=_IMAGENET, num_classes=1000, config=ResNetConfig("bottleneck", (3, 4, 23, 3)),
    ),
    "resnet152": Variant(
        "ResNet-152 (v1.5): bottleneck blocks 3-8-36-3",
        num_params=60_192_808, input_size=_IMAGENET, num_classes=1000, config=ResNetConfig("bottleneck", (3, 8, 36, 3)),
    ),
    "plain18": Variant(
        "Plain-18: ResNet-18 without shortcuts (the paper's plain baseline)",
        num_params=11_515_688, input_size=_IMAGENET, num_classes=1000, config=ResNetConfig("basic", (2, 2, 2, 2), residual=False),
    ),
    "plain34": Variant(
        "Plain-34: ResNet-34 without shortcuts (degrades vs plain-18)",
        num_params=21_623_848, input_size=_IMAGENET, num_classes=1000, config=ResNetConfig("basic", (3, 4, 6, 3), residual=False),
    ),
    "resnet20": Variant(
        "CIFAR ResNet-20 (6n+2, n=3): 16-32-64 channels, option A shortcuts",
        num_params=269_722, input_size=_CIFAR, num_classes=10, config=_cifar(20),
    ),
    "resnet32": Variant(
        "CIFAR ResNet-32 (n=5): 16-32-64 channels, option A shortcuts",
        num_params=464_154, input_size=_CIFAR, num_classes=10, config=_cifar(32),
    ),
    "resnet44": Variant(
        "CIFAR ResNet-44 (n=7): 16-32-64 channels, option A shortcuts",
        num_params=658_586, input_size=_CIFAR, num_classes=10, config=_cifar(44),
    ),
    "resnet56": Variant(
        "CIFAR ResNet-56 (n=9): 16-32-64 channels, option A shortcuts",
        num_params=853_018, input_size=_CIFAR, num_classes=10, config=_cifar(56),
    ),
    "resnet110": Variant(
        "CIFAR ResNet-110 (n=18): 16-32-64 channels, option A shortcuts",
        num_params=1_727_962, input_size=_CIFAR, num_classes=10, config=_cifar(110),
    ),
    "plain20": Variant(
        "CIFAR plain-20: ResNet-20 without shortcuts (figure 6)",
        num_params=269_722, input_size=_CIFAR, num_classes=10, config=_cifar(20, residual=False),
    ),
    "plain32": Variant(
        "CIFAR plain-32: ResNet-32 without shortcuts (figure 6)",
        num_params=464_154, input_size=_CIFAR, num_classes=10, config=_cifar(32, residual=False),
    ),
    "plain44": Variant(
        "CIFAR plain-44: ResNet-44 without shortcuts (figure 6)",
        num_params=658_586, input_size=_CIFAR, num_classes=10, config=_cifar(44, residual=False),
    ),
    "plain56": Variant(
        "CIFAR plain-56: ResNet-56 without shortcuts (figure 6)",
        num_params=853_018, input_size=_CIFAR, num_classes=10, config=_cifar(56, residual=False),
    ),
}

register_variants(_resnet, VARIANTS, paper=PAPER)
