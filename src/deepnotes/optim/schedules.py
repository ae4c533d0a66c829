"""Learning-rate schedules as plain functions: step -> multiplier of the base learning rate.

`step` counts optimizer steps (or epochs, if the schedule is advanced once per epoch) from 0;
the learning rate for step t is base_lr * multiplier(t). That is torch's LambdaLR convention,
so any schedule here drives a real optimizer with

    fn = functools.partial(cosine_annealing, total_steps=1000)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, fn)   # scheduler.step() after each step

and can be drawn with [fn(t) for t in range(1000)].

    step_decay         gamma ** (t // step_size)                       (StepLR)
    exponential_decay  gamma ** t                                      (ExponentialLR)
    cosine_annealing   floor + (1 - floor) (1 + cos(pi t / T)) / 2     (CosineAnnealingLR;
                       Loshchilov & Hutter 2017, "SGDR: Stochastic Gradient Descent with
                       Warm Restarts", arXiv:1608.03983, one cycle without restarts)
    linear_warmup      start + (1 - start) min(t, W) / W               (LinearLR; warmup as in
                       Goyal et al. 2017, "Accurate, Large Minibatch SGD: Training ImageNet in
                       1 Hour", arXiv:1706.02677)

Composition: with_warmup(schedule, W) warms up for W steps and then runs `schedule` from its
step 0 (as SequentialLR); chain(a, b, ...) multiplies schedules step by step (as ChainedScheduler).
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["chain", "cosine_annealing", "exponential_decay", "linear_warmup", "step_decay", "with_warmup"]

Schedule = Callable[[int], float]


def step_decay(step: int, step_size: int, gamma: float = 0.1) -> float:
    """Multiply by gamma every step_size steps: gamma ** floor(step / step_size)."""
    if step_size < 1:
        raise ValueError(f"step_size must be >= 1, got {step_size}")
    return gamma ** (step // step_size)


def exponential_decay(step: int, gamma: float) -> float:
    """Multiply by gamma every step: gamma ** step."""
    return gamma**step


def cosine_annealing(step: int, total_steps: int, floor: float = 0.0) -> float:
    """Half a cosine from 1 down to `floor` over total_steps, then stay at the floor.

    floor is a fraction of the base lr (CosineAnnealingLR's eta_min / base_lr). Past
    total_steps torch's CosineAnnealingLR would climb back up along the cosine; this stays at
    the floor, which is what a run that ends at total_steps wants.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    progress = min(step, total_steps) / total_steps
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def linear_warmup(step: int, warmup_steps: int, start_factor: float = 1.0 / 3.0) -> float:
    """Rise linearly from start_factor at step 0 to 1 at warmup_steps, then stay at 1.

    The default start_factor = 1/3 is LinearLR's; warmup from (almost) zero is e.g. 0.01.
    """
    if warmup_steps < 1:
        raise ValueError(f"warmup_steps must be >= 1, got {warmup_steps}")
    return start_factor + (1.0 - start_factor) * min(step, warmup_steps) / warmup_steps


def with_warmup(schedule: Schedule, warmup_steps: int, start_factor: float = 1.0 / 3.0) -> Schedule:
    """Linear warmup for warmup_steps, then schedule(step - warmup_steps).

    E.g. with_warmup(partial(cosine_annealing, total_steps=T - W), W): W warmup steps, then a
    full cosine over the remaining T - W steps. The main schedule should start at 1 to join the
    warmup without a jump (all of the above do).
    """
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")

    def warmed_up(step: int) -> float:
        if step < warmup_steps:
            return linear_warmup(step, warmup_steps, start_factor)
        return schedule(step - warmup_steps)

    return warmed_up


def chain(*schedules: Schedule) -> Schedule:
    """The product of the schedules' multipliers at each step (all run from step 0)."""

    def product(step: int) -> float:
        return math.prod(s(step) for s in schedules)

    return product
