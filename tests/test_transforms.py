"""Batches from tensors: size adaptation, augmentation, deterministic order, DDP shards."""

import torch

from deepnotes.data.transforms import (
    InputSpec,
    TensorBatches,
    adapt_size,
    channel_stats,
    random_translate,
)


def spec(c=1, size=(4, 4)):
    return InputSpec(c, size, (0.0,) * c, (1.0,) * c)


def test_adapt_size_pads_small_differences_and_resizes_others():
    x = torch.full((2, 1, 28, 28), 200, dtype=torch.uint8)
    y, note = adapt_size(x, (32, 32))
    assert y.shape == (2, 1, 32, 32) and "padded" in note
    assert y[:, :, 2:30, 2:30].eq(200).all() and y[:, :, :2].eq(0).all() and y[:, :, :, 30:].eq(0).all()
    z, note = adapt_size(torch.full((2, 1, 8, 8), 100, dtype=torch.uint8), (32, 32))
    assert z.shape == (2, 1, 32, 32) and "resized" in note and z.eq(100).all()  # constant stays constant
    same, note = adapt_size(x, (28, 28))
    assert same is x and note == "kept 28x28"


def test_random_translate_hand_case():
    x = torch.arange(9, dtype=torch.uint8).view(1, 1, 3, 3)
    # shift (dy, dx) = (1, -1): output pixel (r, c) reads input (r + 1, c - 1), zero outside
    out = random_translate(x, torch.tensor([[1, -1]]), padding=1)
    assert out[0, 0].tolist() == [[0, 3, 4], [0, 6, 7], [0, 0, 0]]
    assert random_translate(x, torch.tensor([[0, 0]]), padding=1).equal(x)


def test_channel_stats_and_normalize():
    x = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 1, 2, 2).contiguous()
    mean, std = channel_stats(x)
    assert abs(mean[0] - 0.5) < 1e-6 and abs(std[0] - 0.5345) < 1e-3  # sample std of 4 zeros, 4 ones
    s = InputSpec(1, (2, 2), mean, std)
    z = s.normalize(x)
    assert abs(float(z.mean())) < 1e-6


def test_epoch_order_is_a_function_of_seed_and_epoch():
    x = torch.zeros(10, 1, 4, 4, dtype=torch.uint8)
    y = torch.arange(10)
    a = TensorBatches(x, y, spec(), 3, shuffle=True, seed=1)
    b = TensorBatches(x, y, spec(), 3, shuffle=True, seed=1)
    assert a.indices(2).equal(b.indices(2))
    assert not a.indices(1).equal(a.indices(2))
    full = [yb for _, yb in a.epoch(3)]
    assert [yb.tolist() for _, yb in a.epoch(3, start_step=2)] == [yb.tolist() for yb in full[2:]]  # resume skips exactly
    assert sorted(torch.cat(full).tolist()) == list(range(10))


def test_ddp_shards_are_disjoint_and_equal_length():
    x = torch.zeros(11, 1, 4, 4, dtype=torch.uint8)
    y = torch.arange(11)
    shards = [TensorBatches(x, y, spec(), 4, shuffle=True, seed=0, rank=r, world_size=2).indices(1) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 5
    assert not set(shards[0].tolist()) & set(shards[1].tolist())


def test_flip_augmentation_flips_about_half():
    x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4).repeat(200, 1, 1, 1)
    b = TensorBatches(x, torch.zeros(200, dtype=torch.long), spec(), 200, shuffle=True, augment="flip")
    (xb, _), = list(b.epoch(1))
    xb = (xb * 255).round()  # undo the (identity-statistics) normalization
    flipped = (xb[:, 0, 0, 0] == 3).sum().item()
    assert 60 < flipped < 140
    assert ((xb[:, 0, 0, 0] == 0) | (xb[:, 0, 0, 0] == 3)).all()
