"""The fully connected network (MLP) of the notes: flatten the image, then Linear-ReLU layers.

The multilayer network trained by back-propagation: Rumelhart, Hinton & Williams, "Learning
representations by back-propagating errors", Nature 323, 1986. Departures: ReLU hidden units
(Nair & Hinton 2010) instead of the paper's logistic ones, and a softmax cross-entropy output.

The baseline every CNN is compared with (C01): it ignores that pixels have neighbours,
and its first layer needs in_chans * H * W * hidden weights.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.models.options import check_fraction, check_sizes, is_whole
from deepnotes.registry import Variant, register_variants

PAPER = 'Rumelhart, Hinton & Williams 1986, "Learning representations by back-propagating errors", Nature 323'


class MLP(nn.Module):
    """Flatten -> (Linear -> ReLU -> Dropout) x len(hidden) -> Linear(num_classes)."""

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        img_size: int | tuple[int, int] = 28,
        hidden: tuple[int, ...] = (256, 128),
        dropout: float = 0.0,
    ):
        super().__init__()
        h, w = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.in_chans, self.img_size, self.num_classes = in_chans, (h, w), num_classes
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_chans * h * w
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)
        self.feature_layers = ["features"]
        self.classifier_modules = ("head",)  # depends on the classes; transfer learning replaces it

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.in_chans, *self.img_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"MLP expects input (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.head(x)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _mlp(
    num_classes: int = 10,
    in_chans: int = 1,
    img_size: int | tuple[int, int] = 28,
    hidden: tuple[int, ...] = (256, 128),
    dropout: float = 0.0,
) -> MLP:
    sides = tuple(img_size) if isinstance(img_size, (list, tuple)) else (img_size, img_size)
    if len(sides) != 2 or not all(is_whole(v) and v >= 1 for v in sides):
        raise ValueError(f"img_size is one side or (height, width), whole numbers >= 1, e.g. 28 or [28,28], got {img_size!r}")
    sides = (int(sides[0]), int(sides[1]))
    return MLP(num_classes, in_chans, sides, check_sizes("hidden", hidden), check_fraction("dropout", dropout))


# --------------------------------------------------------------------------- variants

VARIANTS: dict[str, Variant] = {
    # 784*256+256 + 256*128+128 + 128*10+10 = 235,146 for 1x28x28 input, 10 classes.
    "mlp": Variant(
        "fully connected network: flatten, 256-128 ReLU hidden layers",
        num_params=235_146, input_size=(1, 28, 28), num_classes=10, config=dict(hidden=(256, 128)),
        pass_img_size=True,  # the first layer's width is in_chans * H * W
    ),
}

register_variants(_mlp, VARIANTS, paper=PAPER)
