"""Multi-process training through torch.distributed (DDP), started by torchrun.

    torchrun --nproc_per_node=4 -m deepnotes train resnet18 --data cifar10   # 4 GPUs, one machine
    torchrun --nnodes=2 --node_rank=0 --master_addr=HOST --master_port=29500 \
             --nproc_per_node=8 -m deepnotes train ...                         # 2 machines x 8 GPUs

Backend: NCCL when each process has a GPU, gloo on CPU. A plain `deepnotes train` (no
WORLD_SIZE in the environment) runs one process and never touches torch.distributed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup() -> DistInfo:
    """Join the process group described by torchrun's environment variables, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank % max(1, torch.cuda.device_count())) if cuda else torch.device("cpu")
    if world_size <= 1:
        return DistInfo(device=device)
    if cuda:
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, local_world, device)


def teardown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True on every rank if `flag` is true on any rank (so all ranks stop at the same step)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def sync_buffers(model: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank before evaluating,
    so all ranks compute the same test accuracy and make the same stopping decision."""
    if info.enabled:
        for buf in model.buffers():
            dist.broadcast(buf, src=0)
