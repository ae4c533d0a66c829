"""Optimizers and learning-rate schedules by name, for the training loop.

Two families of optimizers: torch.optim's fast ones (sgd, adam, adamw, adadelta, rmsprop,
adagrad) and the scratch ones written from the update equations (scratch-sgd,
scratch-momentum, scratch-nesterov, scratch-adagrad, scratch-rmsprop, scratch-adam; see
deepnotes.optim), which follow torch's trajectories (tested) and explain them.
Schedules are composed from deepnotes.optim.schedules and step once per optimizer step, so
a run resumed mid-epoch continues the same curve.
"""

from __future__ import annotations

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
        return torch.optim.RMSprop(params, lr=lr, weight_decay=wd)  # Tieleman & Hinton: no momentum
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    if name.startswith("scratch-"):
        from deepnotes.optim import make_optimizer

        return make_optimizer(name, params, lr, momentum=cfg.momentum, weight_decay=wd)
    raise AssertionError(name)  # TrainConfig validated the name


def lr_factor(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The multiplier of the base learning rate for optimizer step `step` (0-based)."""
    from deepnotes.optim import schedules

    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    if cfg.schedule == "onecycle" and warmup == 0:
        warmup = int(0.25 * total)  # Smith & Topin 2017 warm up for a quarter to a third of the run
    if step < warmup:
        # onecycle starts at lr/25 (as torch's OneCycleLR), the others at 0; counting step+1
        # so that the first step already moves
        start = 0.04 if cfg.schedule == "onecycle" else 0.0
        return schedules.linear_warmup(step + 1, warmup, start_factor=start)
    if cfg.schedule == "none":
        return 1.0
    if cfg.schedule == "step":
        return schedules.step_decay(step, cfg.step_size * steps_per_epoch, cfg.gamma)
    if cfg.schedule == "linear":  # word2vec.c: lr * (1 - progress), floored at 1e-4 of lr
        return max(1e-4, 1.0 - (step - warmup) / max(1, total - warmup))
    if cfg.schedule == "exponential":  # decays once per epoch, as ExponentialLR stepped per epoch
        return schedules.step_decay(step, steps_per_epoch, cfg.gamma)
    # cosine and onecycle: half a cosine from the peak down to 0 over the steps after warmup
    return schedules.cosine_annealing(step - warmup, max(1, total - warmup))


def build_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(cfg, step, steps_per_epoch))
