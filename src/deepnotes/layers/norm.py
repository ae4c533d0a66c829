"""Batch normalization and layer normalization written out, next to nn.BatchNorm / nn.LayerNorm.

BatchNorm - Ioffe & Szegedy 2015, "Batch Normalization: Accelerating Deep Network Training by
Reducing Internal Covariate Shift", arXiv:1502.03167.
LayerNorm - Ba, Kiros & Hinton 2016, "Layer Normalization", arXiv:1607.06450.

Both compute y = (x - mean) / sqrt(var + eps) * weight + bias; they differ in which axes the
statistics run over. BatchNorm: per channel, over the batch (and spatial) axes, so a sample's
output depends on the rest of its batch, and at test time fixed running averages replace the
batch statistics. LayerNorm: per sample, over the trailing `normalized_shape` axes, the same
in training and at test time.

Conventions copied from PyTorch (the paper leaves them open): normalization uses the biased
batch variance (divide by n), the running variance is updated with the unbiased one
(divide by n - 1), and running = (1 - momentum) * running + momentum * batch, momentum = 0.1.
momentum=None gives the cumulative average over all batches seen. The buffers and parameters
have nn.BatchNorm's / nn.LayerNorm's names, so state dicts load either way.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "batch_norm", "layer_norm"]


def batch_norm(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    use_batch_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Normalize x of shape (N, C, *) per channel C.

    use_batch_stats=True: normalize with this batch's mean and biased variance over all axes
    but C, and (if running_mean/running_var are given) update them in place with factor
    `momentum`. False: normalize with running_mean / running_var.
    """
    dims = [0, *range(2, x.ndim)]  # every axis except channels
    stats_shape = (1, -1) + (1,) * (x.ndim - 2)  # (1, C, 1, ...) to broadcast against x
    if use_batch_stats:
        n = x.numel() // x.shape[1]  # values per channel
        if n <= 1:
            raise ValueError(f"batch norm in training needs more than 1 value per channel, got input {tuple(x.shape)}")
        mean = x.mean(dim=dims)  # (C,)
        var = ((x - mean.view(stats_shape)) ** 2).mean(dim=dims)  # (C,) biased: divide by n
        if running_mean is not None and running_var is not None:
            with torch.no_grad():
                running_mean.mul_(1 - momentum).add_(momentum * mean)
                running_var.mul_(1 - momentum).add_(momentum * var * (n / (n - 1)))  # unbiased
    else:
        mean, var = running_mean, running_var
    y = (x - mean.view(stats_shape)) / torch.sqrt(var.view(stats_shape) + eps)  # x_hat: mean 0, var 1
    if weight is not None:
        y = y * weight.view(stats_shape)  # gamma
    if bias is not None:
        y = y + bias.view(stats_shape)  # beta
    return y


class _BatchNorm(nn.Module):
    """Shared by BatchNorm1d / BatchNorm2d; subclasses say which input ranks are allowed."""

    _ranks: tuple[int, ...] = ()
    _layout = ""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))  # gamma
            self.bias = nn.Parameter(torch.zeros(num_features))  # beta
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim not in self._ranks or x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}({self.num_features}) expects input {self._layout} "
                f"with C = {self.num_features}, got {tuple(x.shape)}"
            )
        # Training, or no running statistics kept: normalize with this batch's statistics.
        use_batch_stats = self.training or not self.track_running_stats
        momentum = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            # momentum=None: cumulative moving average, factor 1/k at the k-th batch
            momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        return batch_norm(
            x,
            self.running_mean,  # None when not tracked; updated in place when training
            self.running_var,
            self.weight,
            self.bias,
            use_batch_stats=use_batch_stats,
            momentum=momentum,
            eps=self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Scratch nn.BatchNorm1d: input (N, C) or (N, C, L), statistics per feature C."""

    _ranks = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Scratch nn.BatchNorm2d: input (N, C, H, W), statistics per channel over N, H, W."""

    _ranks = (4,)
    _layout = "(N, C, H, W)"


def layer_norm(
    x: torch.Tensor,
    normalized_shape: tuple[int, ...],
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Normalize each sample over its last len(normalized_shape) axes (biased variance)."""
    if tuple(x.shape[x.ndim - len(normalized_shape) :]) != tuple(normalized_shape):
        raise ValueError(f"layer norm over {tuple(normalized_shape)} needs input (*, {', '.join(map(str, normalized_shape))}), got {tuple(x.shape)}")
    dims = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    mean = x.mean(dim=dims, keepdim=True)  # (*, 1, ..., 1)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    y = (x - mean) / torch.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


class LayerNorm(nn.Module):
    """Scratch nn.LayerNorm(normalized_shape, eps, elementwise_affine, bias)."""

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
    ):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        # registered even when absent (None), as in nn.LayerNorm
        self.register_parameter("weight", nn.Parameter(torch.ones(shape)) if elementwise_affine else None)
        self.register_parameter("bias", nn.Parameter(torch.zeros(shape)) if elementwise_affine and bias else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
