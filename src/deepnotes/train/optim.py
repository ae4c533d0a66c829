"""Optimizers and learning-rate schedules by name (torch.optim's fast implementations).

Schedules step once per optimizer step, so a run resumed mid-epoch continues the same curve.
"""

from __future__ import annotations

import math

import torch

from deepnotes.train.config import TrainConfig


def build_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    lr, wd = cfg.learning_rate, cfg.weight_decay
    name = cfg.optimizer
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0, weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=cfg.momentum, weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    raise AssertionError(name)  # TrainConfig validated the name


def lr_factor(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The multiplier of the base learning rate after `step` optimizer steps."""
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    if cfg.schedule == "onecycle" and warmup == 0:
        warmup = int(0.25 * total)  # Smith & Topin 2017 warm up for a quarter to a third of the run
    if step < warmup:
        start = 0.04 if cfg.schedule == "onecycle" else 0.0  # onecycle starts at lr/25 (as OneCycleLR)
        return start + (1 - start) * (step + 1) / warmup
    epoch = step // steps_per_epoch
    if cfg.schedule == "none":
        return 1.0
    if cfg.schedule == "step":
        return cfg.gamma ** (epoch // cfg.step_size)
    if cfg.schedule == "exponential":
        return cfg.gamma**epoch
    # cosine and onecycle: half a cosine from the peak down to 0 over the steps after warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def build_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(cfg, step, steps_per_epoch))
