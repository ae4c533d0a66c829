"""The curriculum's building blocks written from their formulas, each tested against the fused PyTorch op.

    activations  sigmoid, tanh, ReLU, Leaky ReLU, ELU, GELU and their hand-written derivatives
    init         zeros, small random, LeCun, Xavier/Glorot, He/Kaiming initializers; fan computation
    norm         BatchNorm1d/2d, LayerNorm
    dropout      classic and inverted dropout
    ops          center_crop (U-Net's crop of its skips)
    recurrent    RNN (tanh, ReLU), LSTM, GRU cells and multi-layer, bidirectional modules (torch's parameters)

Import from the submodules, e.g. ``from deepnotes.layers.norm import BatchNorm2d``.

tests/test_layer_oracles.py compares each against its torch counterpart on cases hypothesis
draws (shapes, dtypes, masks, layouts, gradient scales); a layer added here gets such a test
from its first commit.
"""

from deepnotes.layers.activations import ACTIVATIONS, make_activation
from deepnotes.layers.dropout import Dropout
from deepnotes.layers.init import INITIALIZERS, init_model_
from deepnotes.layers.norm import BatchNorm1d, BatchNorm2d, LayerNorm
from deepnotes.layers.ops import center_crop
from deepnotes.layers.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "BatchNorm1d",
    "BatchNorm2d",
    "Dropout",
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "LayerNorm",
    "RNN",
    "RNNCell",
    "center_crop",
    "init_model_",
    "make_activation",
]
