"""Shared test settings: small thread counts keep the suite quick and steady on 2 cores."""

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def mha_slow_path():
    """torch's fused inference path of nn.MultiheadAttention / TransformerEncoderLayer is another
    computation (and zeroes padded rows): oracle comparisons use its slow path."""
    import torch

    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    yield
    torch.backends.mha.set_fastpath_enabled(before)
