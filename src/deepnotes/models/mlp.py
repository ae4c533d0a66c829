"""The fully connected network (MLP) of the notes: flatten the image, then Linear-ReLU layers.

The baseline every CNN is compared with (C01): it ignores that pixels have neighbours,
and its first layer needs in_chans * H * W * hidden weights.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.registry import register_model


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

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.in_chans, *self.img_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"MLP expects input (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# 784*256+256 + 256*128+128 + 128*10+10 = 235,146 for 1x28x28 input, 10 classes.
register_model(
    "mlp",
    MLP,
    description="fully connected network: flatten, 256-128 ReLU hidden layers",
    num_params=235_146,
    input_size=(1, 28, 28),
)
