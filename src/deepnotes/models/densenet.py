"""DenseNet: Huang, Liu, van der Maaten & Weinberger, "Densely Connected Convolutional
Networks", 2016 (CVPR 2017), arXiv:1608.06993.

The paper's idea: inside a dense block every layer takes the concatenation of *all* earlier
feature maps of the block as its input and adds only k new maps (the growth rate k), so
layer l of a block sees in + (l - 1) * k channels and the block ends with in + n * k. Each
layer is narrow (k = 32 on ImageNet) because it can reuse everything before it; gradients
reach every layer directly from the block's output. Between blocks a transition shrinks
the maps.

    dense layer ("-B", bottleneck): BN-ReLU-1x1 conv (4k) -> BN-ReLU-3x3 conv (k)
    transition ("-C", compression 0.5): BN-ReLU-1x1 conv (half the channels) -> 2x2 avg-pool

ImageNet form (table 1, DenseNet-BC, k = 32), input 3x224x224:

    stem: 7x7/2 conv 2k -> BN -> ReLU -> 3x3/2 max-pool    64@56
    block1 (6 layers) 256@56 -> transition 128@28 -> block2 (12) 512@28 -> transition 256@14
    -> block3 (24 / 32 / 48) -> transition @7 -> block4 (16 / 32 / 32) 1024 / 1664 / 1920@7
    -> BN -> ReLU -> global average pool -> FC 1000          (densenet121 / 169 / 201)

CIFAR form (section 3, "Implementation details"; DenseNet-BC), input 3x32x32:
a 3x3 conv with 2k channels, three dense blocks of equal length n at 32x32, 16x16 and 8x8
with two transitions between them, BN-ReLU, global average pool, FC. Depth L = 6n + 4
(2 convs per dense layer, the first conv, two transition convs and the FC layer).

Notes where this code departs from the paper or matches torchvision on details:
- the ImageNet nets are torchvision's (their published counts): no conv biases (a BN
  always follows or precedes them), the final BN + ReLU before the pool, a transition keeps
  floor(channels * compression) channels;
- the CIFAR first conv has no bias (the first dense layer's BN follows); with 10 classes
  DenseNet-BC (L=100, k=12) has 769,162 parameters, which the paper's table 2 gives as
  0.8M. The paper's dropout (0.2 after each conv, used only without data augmentation) is
  the `drop_rate` option, off by default;
- `bn_size=0` drops the 1x1 bottleneck (the paper's plain "DenseNet", BN-ReLU-3x3 conv)
  and `compression=1.0` keeps every channel in the transitions, so both ablations of the
  paper's "-B" and "-C" are options, not separate code.

`densenet_small` is DenseNet-BC with L = 40 and k = 12 (n = 6 layers per block), 176,122
parameters with 10 classes, sized for a CPU: 72M multiply-adds per 32x32 image against
288M for L = 100 (ResNet-20: 41M).
It takes (1, 28, 28) inputs as well (28 -> 14 -> 7).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from deepnotes.models.options import check_size
from deepnotes.registry import Variant, register_variants

PAPER = 'Huang, Liu, van der Maaten & Weinberger 2016, "Densely Connected Convolutional Networks", arXiv:1608.06993'

# --------------------------------------------------------------------------- helpers


def _init_weights(model: nn.Module) -> None:
    # As torchvision's DenseNet: He (kaiming) normal convs, BN at 1 / 0, linear biases at 0.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)


def norm_act_conv(in_chans: int, out_chans: int, kernel_size: int) -> list[nn.Module]:
    """Pre-activation: BN -> ReLU -> conv (no bias), padding keeps the size."""
    return [
        nn.BatchNorm2d(in_chans),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_chans, out_chans, kernel_size, padding=kernel_size // 2, bias=False),
    ]


# --------------------------------------------------------------------------- blocks


class DenseLayer(nn.Sequential):
    """One layer of a dense block: (B, in_chans, H, W) -> (B, growth_rate, H, W), the k new maps.

    bn_size > 0: BN-ReLU-1x1 conv (bn_size * k)-BN-ReLU-3x3 conv (k) (DenseNet-B);
    bn_size = 0: BN-ReLU-3x3 conv (k) (the paper's basic DenseNet). drop_rate: dropout after.
    """

    def __init__(self, in_chans: int, growth_rate: int, bn_size: int = 4, drop_rate: float = 0.0):
        layers = []
        if bn_size:
            layers += norm_act_conv(in_chans, bn_size * growth_rate, 1)
            in_chans = bn_size * growth_rate
        layers += norm_act_conv(in_chans, growth_rate, 3)
        if drop_rate:
            layers.append(nn.Dropout(drop_rate))
        super().__init__(*layers)


class DenseBlock(nn.Module):
    """n dense layers, each fed the concatenation of the block input and every earlier output.

    (B, in_chans, H, W) -> (B, in_chans + n * growth_rate, H, W).
    """

    def __init__(self, in_chans: int, num_layers: int, growth_rate: int, bn_size: int = 4, drop_rate: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(in_chans + i * growth_rate, growth_rate, bn_size, drop_rate) for i in range(num_layers)
        )
        self.out_chans = in_chans + num_layers * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))  # each: (B, k, H, W)
        return torch.cat(features, dim=1)  # (B, in_chans + n * k, H, W)


class Transition(nn.Sequential):
    """BN-ReLU-1x1 conv to floor(in_chans * compression) channels, then a 2x2 average pool.

    (B, C, H, W) -> (B, floor(C * compression), H // 2, W // 2).
    """

    def __init__(self, in_chans: int, compression: float = 0.5):
        self.out_chans = int(in_chans * compression)
        super().__init__(*norm_act_conv(in_chans, self.out_chans, 1), nn.AvgPool2d(2, stride=2))


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class DenseNetConfig:
    """One DenseNet variant: growth rate, layers per dense block, stem and the B/C options."""

    growth_rate: int = 32  # k: new maps per dense layer
    block_config: tuple[int, ...] = (6, 12, 24, 16)  # dense layers per block
    num_init_features: int = 64  # stem output channels (2k for DenseNet-BC)
    bn_size: int = 4  # 1x1 bottleneck width in multiples of k; 0: no bottleneck (basic DenseNet)
    compression: float = 0.5  # theta: a transition keeps this fraction of the channels
    stem: str = "imagenet"  # "imagenet": 7x7/2 conv-BN-ReLU + 3x3/2 max-pool | "cifar": one 3x3 conv
    drop_rate: float = 0.0  # dropout after every dense layer


class DenseNet(nn.Module):
    """A stem, dense blocks joined by transitions, BN-ReLU, global average pooling and a linear head.

    features: stem, denseblock1, transition1, ..., denseblockN, norm_final (BN + ReLU);
    head: the linear classifier. `feature_layers` names the output of every dense block but
    the last and then norm_final (CAM targets, backbone reuse); `feature_info` gives their
    channels and reduction.
    """

    def __init__(self, cfg: DenseNetConfig, num_classes: int = 1000, in_chans: int = 3):
        super().__init__()
        if cfg.stem not in ("imagenet", "cifar"):
            raise ValueError(f"unknown DenseNet stem {cfg.stem!r}; choose 'imagenet' or 'cifar'")
        if not cfg.block_config or min(cfg.block_config) < 1 or not 0 < cfg.compression <= 1:
            raise ValueError(f"DenseNet needs blocks of at least one layer and 0 < compression <= 1, got {cfg}")
        self.cfg, self.num_classes, self.in_chans = cfg, num_classes, in_chans
        c = cfg.num_init_features
        if cfg.stem == "imagenet":
            stem = nn.Sequential(OrderedDict(
                conv=nn.Conv2d(in_chans, c, 7, stride=2, padding=3, bias=False), bn=nn.BatchNorm2d(c),
                relu=nn.ReLU(inplace=True), pool=nn.MaxPool2d(3, stride=2, padding=1),
            ))  # fmt: skip
            reduction = 4
        else:
            stem = nn.Sequential(OrderedDict(conv=nn.Conv2d(in_chans, c, 3, padding=1, bias=False)))
            reduction = 1
        layers: list[tuple[str, nn.Module]] = [("stem", stem)]
        self.feature_info = []
        num_blocks = len(cfg.block_config)
        for i, n in enumerate(cfg.block_config, start=1):
            block = DenseBlock(c, n, cfg.growth_rate, cfg.bn_size, cfg.drop_rate)
            layers.append((f"denseblock{i}", block))
            c = block.out_chans
            if i < num_blocks:
                self.feature_info.append({"module": f"features.denseblock{i}", "num_chs": c, "reduction": reduction})
                transition = Transition(c, cfg.compression)
                layers.append((f"transition{i}", transition))
                c, reduction = transition.out_chans, reduction * 2
        layers.append(("norm_final", nn.Sequential(OrderedDict(bn=nn.BatchNorm2d(c), relu=nn.ReLU(inplace=True)))))
        self.feature_info.append({"module": "features.norm_final", "num_chs": c, "reduction": reduction})
        self.features = nn.Sequential(OrderedDict(layers))
        self.feature_layers = [f["module"] for f in self.feature_info]
        self.num_features = c
        self.reduction = reduction
        # Each of the (num_blocks - 1) 2x2 average pools needs a map of at least 2x2, so the stem
        # must give 2**(num_blocks - 1); the ImageNet stem maps H to ceil(ceil(H / 2) / 2).
        need = 2 ** (num_blocks - 1)
        self.min_size = 4 * need - 3 if cfg.stem == "imagenet" else need
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c, num_classes)
        self.classifier_modules = ("head",)  # depends on the classes; transfer learning replaces it
        _init_weights(self)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_chans or min(x.shape[2:]) < self.min_size:
            raise ValueError(
                f"DenseNet expects input (B, {self.in_chans}, H, W) with H, W >= {self.min_size} "
                f"(it downsamples {self.reduction}x), got {tuple(x.shape)}"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.features(x)  # (B, C, ~H / reduction, ~W / reduction), after BN-ReLU

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pool(x).flatten(1)  # (B, C)
        return x if pre_logits else self.head(x)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _densenet(
    num_classes: int = 1000,
    in_chans: int = 3,
    growth_rate: int = 32,
    block_config: Sequence[int] = (6, 12, 24, 16),
    num_init_features: int = 64,
    bn_size: int = 4,
    compression: float = 0.5,
    stem: str = "imagenet",
    drop_rate: float = 0.0,
) -> DenseNet:
    cfg = DenseNetConfig(
        growth_rate=check_size("growth_rate", growth_rate), block_config=tuple(int(n) for n in block_config),
        num_init_features=check_size("num_init_features", num_init_features), bn_size=check_size("bn_size", bn_size, minimum=0), compression=float(compression),
        stem=stem, drop_rate=float(drop_rate),
    )  # fmt: skip
    return DenseNet(cfg, num_classes=num_classes, in_chans=in_chans)


# --------------------------------------------------------------------------- variants


def _cifar_bc(depth: int, growth_rate: int = 12) -> DenseNetConfig:
    """DenseNet-BC of depth L = 6n + 4 for 32x32 inputs: three blocks of n layers, a 2k-wide 3x3 stem."""
    n = (depth - 4) // 6
    assert 6 * n + 4 == depth, depth
    return DenseNetConfig(growth_rate, (n, n, n), num_init_features=2 * growth_rate, stem="cifar")


_IMAGENET = (3, 224, 224)
_CIFAR = (3, 32, 32)

# ImageNet nets (3 channels, 1000 classes): torchvision's published counts. CIFAR nets
# (3 channels, 10 classes): counted here; the paper's table 2 gives DenseNet-BC (L=100,
# k=12) as 0.8M.
VARIANTS: dict[str, Variant] = {
    "densenet121": Variant(
        "DenseNet-BC-121: k=32, blocks 6-12-24-16",
        num_params=7_978_856, input_size=_IMAGENET, num_classes=1000, config=DenseNetConfig(32, (6, 12, 24, 16)),
    ),
    "densenet169": Variant(
        "DenseNet-BC-169: k=32, blocks 6-12-32-32",
        num_params=14_149_480, input_size=_IMAGENET, num_classes=1000, config=DenseNetConfig(32, (6, 12, 32, 32)),
    ),
    "densenet201": Variant(
        "DenseNet-BC-201: k=32, blocks 6-12-48-32",
        num_params=20_013_928, input_size=_IMAGENET, num_classes=1000, config=DenseNetConfig(32, (6, 12, 48, 32)),
    ),
    "densenet_bc100": Variant(
        "CIFAR DenseNet-BC (L=100, k=12): three blocks of 16 layers",
        num_params=769_162, input_size=_CIFAR, num_classes=10, config=_cifar_bc(100),
    ),
    "densenet_small": Variant(
        "CIFAR DenseNet-BC (L=40, k=12): three blocks of 6 layers, CPU-sized",
        num_params=176_122, input_size=_CIFAR, num_classes=10, config=_cifar_bc(40),
    ),
}

register_variants(_densenet, VARIANTS, paper=PAPER)
