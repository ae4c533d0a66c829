"""DDP on CPU (gloo): two processes train together and end with identical weights."""

import os
import socket

import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world_size),
    )  # fmt: skip
    from deepnotes.tasks import run_training
    from deepnotes.train import TrainConfig

    cfg = TrainConfig(model="lenet5_relu", data="digits", epochs=1, batch_size=64, out=f"{out}/run", progress=False, threads=1)
    result = run_training(cfg)
    torch.save({k: v.clone() for k, v in result.model.state_dict().items()}, f"{out}/rank{rank}.pt")


def test_two_ranks_end_identical_and_trained(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    from deepnotes.models import create_model

    torch.manual_seed(0)  # the run's seed: the weights it started from
    start = create_model("lenet5_relu", num_classes=10, in_chans=1).state_dict()
    assert all(not torch.equal(start[k], w0[k]) for k in start)
    assert (tmp_path / "run" / "model.safetensors").exists()  # rank 0 wrote the run
