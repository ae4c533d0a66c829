"""Shared by the benchmark scripts: what they record about the machine, and how they time a
training step."""

from __future__ import annotations

import os
import statistics
import time

import torch


def load_average() -> float | None:
    """The 1-minute load average: above the thread count, other work shared the cores."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not on every platform
        return None


def use_threads(requested: int | None) -> int:
    """Set torch's thread count (None: all the cores torch sees) and return it."""
    threads = requested or torch.get_num_threads()
    torch.set_num_threads(threads)
    return threads


def busy_warning(log=print) -> float | None:
    """The load average as a benchmark starts, with a warning when other work is running:
    another process on the cores makes multi-threaded torch ops wait for each other, so a
    2-thread step can take 10x longer at random moments."""
    load = load_average()
    if load is not None and load > 0.5:
        log(f"warning: load average {load:.2f} before starting: other work is running, timings will be noisy")
    return load


def train_step_throughput(
    model: torch.nn.Module,
    input_size: tuple[int, ...],
    batch: int = 128,
    steps: int = 6,
    *,
    num_classes: int = 10,
    masks: bool = False,
    autocast_dtype: torch.dtype | None = None,
) -> float:
    """Images/s of forward + backward + SGD step on random data, channels_last as training runs
    (median of `steps` timed steps after 2 warm-up steps that allocate and pick kernels).
    masks=True scores (B, H, W) label maps (segmentation); autocast_dtype (torch.bfloat16) runs
    forward and loss under torch.autocast as `deepnotes train --precision bf16` does."""
    model = model.to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.randn(batch, *input_size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (batch, *input_size[1:]) if masks else (batch,))
    device_type = x.device.type
    times = []
    for i in range(steps + 2):
        t = time.perf_counter()
        with torch.autocast(device_type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            out = model(x)
            loss = torch.nn.functional.cross_entropy(out, y)
            if hasattr(model, "aux_loss"):  # auxiliary classifiers take part in the backward pass as in training
                loss = loss + model.aux_loss(y, torch.nn.functional.cross_entropy)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t)
    return batch / statistics.median(times)
