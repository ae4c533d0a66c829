"""Recurrent layers from their equations: Elman RNN, LSTM and GRU cells and multi-layer, bidirectional modules.

Papers:
    RNN   Elman 1990, "Finding Structure in Time", Cognitive Science 14
    LSTM  Hochreiter & Schmidhuber 1997, "Long Short-Term Memory", Neural Computation 9(8); the
          forget gate from Gers, Schmidhuber & Cummins 2000, "Learning to Forget: Continual
          Prediction with LSTM", Neural Computation 12(10)
    GRU   Cho et al. 2014, "Learning Phrase Representations using RNN Encoder-Decoder for
          Statistical Machine Translation", arXiv:1406.1078
    bidirectional  Schuster & Paliwal 1997, "Bidirectional Recurrent Neural Networks", IEEE TSP 45(11)

One step, for an input x (B, I) and the previous hidden state h (B, H) (sigma = logistic sigmoid,
* = elementwise product), exactly as torch's nn.RNN / nn.LSTM / nn.GRU:

    RNN   h' = act(W_ih x + b_ih + W_hh h + b_hh)                act = tanh or relu

    LSTM  i  = sigma(W_ii x + b_ii + W_hi h + b_hi)               input gate
          f  = sigma(W_if x + b_if + W_hf h + b_hf)               forget gate (Gers et al. 2000)
          g  = tanh(W_ig x + b_ig + W_hg h + b_hg)                candidate cell
          o  = sigma(W_io x + b_io + W_ho h + b_ho)               output gate
          c' = f * c + i * g                                      the cell: an additive path through time
          h' = o * tanh(c')

    GRU   r  = sigma(W_ir x + b_ir + W_hr h + b_hr)               reset gate
          z  = sigma(W_iz x + b_iz + W_hz h + b_hz)               update gate
          n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))          candidate
          h' = (1 - z) * n + z * h

The GRU's candidate is torch's (and cuDNN's) formulation: r multiplies W_hn h + b_hn, after the
matrix product. Cho et al. put r before it, n = tanh(W_in x + W_hn (r * h)); the two differ in
values, so torch's form is the one here (its weights load unchanged).

Weight blocks and gate order. The weights of one layer and direction are W_ih (G H, I), W_hh
(G H, H), b_ih (G H), b_hh (G H), with one block of H rows per gate and per candidate, stacked
in torch's order: LSTM G = 4 blocks i, f, g, o; GRU G = 3 blocks r, z, n; RNN G = 1. "A GRU has
2 gates to the LSTM's 3" counts the sigmoid gates (r, z vs i, f, o); each model also has one
tanh candidate (n vs g) with its own block, so 3 blocks vs 4, and a GRU has 3/4 of an LSTM's
parameters: per layer and direction G H (I + H) + 2 G H, e.g. I = H = 256: LSTM 526,336,
GRU 394,752. The two biases are torch's (kept for cuDNN's layout): for RNN and LSTM only
b_ih + b_hh matters, in the GRU b_hn sits inside r * (...) and is a parameter of its own.

    RNNCell, LSTMCell, GRUCell      one step, as nn.RNNCell / nn.LSTMCell / nn.GRUCell
    RNN, LSTM, GRU                  sequences, as nn.RNN / nn.LSTM / nn.GRU: num_layers,
                                    bidirectional, batch_first, dropout between layers, bias
    use_fused(True) / set_fused_default / fused_default: the scratch loop <-> torch's own kernels

Parameters have torch's names (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, ...,
weight_ih_l1_reverse, ...), shapes, registration order and initialization (every parameter
uniform(-1/sqrt(H), 1/sqrt(H))), so a state_dict loads both ways and the same seed gives the same
weights. Shapes (time-major, batch_first=False; batch_first=True swaps the first two axes of the
input and the output, never of the states; D = 2 if bidirectional else 1):

    x (T, B, I), h_0 and c_0 (D num_layers, B, H)  ->  output (T, B, D H), h_n and c_n (D num_layers, B, H)

output holds the last layer's h_t at every step (forward and reverse concatenated); h_n holds
every layer's final state, ordered layer 0 forward, layer 0 reverse, layer 1 forward, ...
Unbatched (T, I) inputs with (D num_layers, H) states work as in torch.

Variable-length batches, either way:
- a torch.nn.utils.rnn.PackedSequence (pack_padded_sequence, also with enforce_sorted=False and
  then hx in the caller's order, as torch): the output is a PackedSequence of the same layout;
- a padded batch with forward(x, hx, lengths=...), lengths (B,) with 1 <= length <= T: the
  output is padded and zero beyond each length, h_n / c_n are each sequence's state at its
  last real step, and the reverse direction starts at each sequence's own last step. This is
  what torch gives for pack_padded_sequence -> module -> pad_packed_sequence(total_length=T).
  The padding itself is never read (NaN there changes nothing, values or gradients).

The fused switch: fused=True runs torch's own implementation (torch.lstm, torch.gru,
torch.rnn_tanh, torch.rnn_relu, i.e. what nn.LSTM etc. call, oneDNN kernels on CPU) with this
module's parameters; fused=False the scratch loop below; fused=None the module-level default,
which is True: the fused kernels are what training uses, the scratch path is the equations to
read, check and take apart (benchmarks/recurrent.py measures the two; tests/test_recurrent.py
checks they agree with torch's modules).

Where this code departs from torch:
- forward takes lengths= for padded batches (torch needs pack/pad around the call); with
  lengths or a PackedSequence the scratch path runs the padded batch with a mask per step.
- Dropout between layers (training only, as torch) draws the same masks as torch for a padded
  batch without lengths (same op, same shape, same order: equal for the same seed); on
  variable-length batches the scratch path drops on the padded (T, B, D H) output where torch
  drops on the packed data, so the masks differ (their distribution does not).
- No proj_size (LSTM with projections, Sak et al. 2014).
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from deepnotes.layers.ops import FusedSwitch

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "GRUCell",
    "LSTMCell",
    "RNNCell",
    "fused_default",
    "set_fused_default",
    "use_fused",
]

# --------------------------------------------------------------------------- the fused switch

# True: torch's own recurrent kernels (torch.lstm & co.); False: the scratch loop below.
# Unlike attention's (False), the default is the fused path: it is what training runs.
_SWITCH = FusedSwitch(True)

# fused_default(): the path modules with fused=None take; set_fused_default(v) -> the previous one;
# use_fused(v): a with-block in which the default is v
fused_default, set_fused_default, use_fused = _SWITCH.get, _SWITCH.set, _SWITCH.use


# --------------------------------------------------------------------------- one step

# Gate blocks per mode (rows of W_ih / W_hh in units of H), and torch's kernels.
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
_TORCH_LAYER = {"RNN_TANH": torch.rnn_tanh, "RNN_RELU": torch.rnn_relu, "LSTM": torch.lstm, "GRU": torch.gru}
_TORCH_CELL = {"RNN_TANH": torch.rnn_tanh_cell, "RNN_RELU": torch.rnn_relu_cell, "LSTM": torch.lstm_cell, "GRU": torch.gru_cell}

# The steps take gx = W_ih x + b_ih (+ b_hh for RNN and LSTM, where only the sum of the biases
# matters), computed by the caller: a layer computes it for all T steps in one matrix product
# up front, so only the recurrent product h W_hh^T is left inside the loop. w_hh_t is W_hh^T (H, G H).


def _rnn_step(gx: torch.Tensor, h: torch.Tensor, w_hh_t: torch.Tensor, relu: bool) -> torch.Tensor:
    """Elman: h' = act(gx + h W_hh^T), (B, H)."""
    pre = torch.addmm(gx, h, w_hh_t)
    return torch.relu(pre) if relu else torch.tanh(pre)


def _lstm_step(gx: torch.Tensor, h: torch.Tensor, c: torch.Tensor, w_hh_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Hochreiter & Schmidhuber 1997 with Gers et al.'s forget gate: (h', c'), each (B, H)."""
    gates = torch.addmm(gx, h, w_hh_t)  # (B, 4H): all four pre-activations in one product
    i, f, g, o = gates.chunk(4, 1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # forget some of the old cell, write some of g
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


def _gru_step(gx: torch.Tensor, h: torch.Tensor, w_hh_t: torch.Tensor, b_hh: torch.Tensor | None) -> torch.Tensor:
    """Cho et al. 2014 in torch's form (r applied after W_hn h + b_hn): h', (B, H)."""
    gh = h @ w_hh_t if b_hh is None else torch.addmm(b_hh, h, w_hh_t)  # (B, 3H): r, z, n blocks
    H = h.shape[-1]
    r, z = torch.sigmoid(gx[:, : 2 * H] + gh[:, : 2 * H]).chunk(2, 1)
    n = torch.tanh(gx[:, 2 * H :] + r * gh[:, 2 * H :])
    return n + z * (h - n)  # = (1 - z) n + z h, in torch's arrangement (same rounding)


# --------------------------------------------------------------------------- cells


class _Cell(nn.Module):
    """One step with nn.RNNCell / nn.LSTMCell / nn.GRUCell's parameters: weight_ih (G H, I),
    weight_hh (G H, H), bias_ih and bias_hh (G H)."""

    mode = ""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, fused: bool | None = None):
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"input_size and hidden_size must be >= 1, got {input_size} and {hidden_size}")
        self.input_size, self.hidden_size, self.bias, self.fused = input_size, hidden_size, bias, fused
        G = _GATES[self.mode]
        self.weight_ih = nn.Parameter(torch.empty(G * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(G * hidden_size, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(G * hidden_size))
            self.bias_hh = nn.Parameter(torch.empty(G * hidden_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # As torch: every parameter uniform(-1/sqrt(H), 1/sqrt(H)), in registration order.
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        extra = "" if self.mode in ("LSTM", "GRU") else f", nonlinearity={self.nonlinearity!r}"
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}{extra}, fused={self.fused}"

    def _inputs(self, x: torch.Tensor, states: tuple[torch.Tensor | None, ...]) -> tuple[torch.Tensor, list[torch.Tensor], bool]:
        """x as (B, I) and each state as (B, H) (zeros for None), and whether x was unbatched (I,)."""
        if not isinstance(x, torch.Tensor) or x.dim() not in (1, 2) or x.shape[-1] != self.input_size:
            got = tuple(getattr(x, "shape", ()))
            raise ValueError(f"{type(self).__name__} expects (B, {self.input_size}) or ({self.input_size},), got {got}")
        unbatched = x.dim() == 1
        if unbatched:
            x = x.unsqueeze(0)
        expected = (x.shape[0], self.hidden_size)
        out = []
        for s in states:
            if s is None:
                s = x.new_zeros(expected)
            elif unbatched and s.dim() == 1:
                s = s.unsqueeze(0)
            if tuple(s.shape) != expected:
                raise ValueError(f"the state must be (B, H) = {expected} (or (H,) for an unbatched input), got {tuple(s.shape)}")
            out.append(s)
        return x, out, unbatched

    def _gx(self, x: torch.Tensor, fold_hh_bias: bool) -> torch.Tensor:
        gx = F.linear(x, self.weight_ih, self.bias_ih)
        return gx + self.bias_hh if fold_hh_bias and self.bias else gx

    def _fused(self) -> bool:
        return fused_default() if self.fused is None else self.fused


class RNNCell(_Cell):
    """h' = act(W_ih x + b_ih + W_hh h + b_hh), act = tanh or relu (Elman 1990); as nn.RNNCell.

    forward(x (B, I) or (I,), hx (B, H) or None = zeros) -> h' (B, H) (unbatched: (H,)).
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh", *, fused: bool | None = None
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self.mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(input_size, hidden_size, bias, fused=fused)

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        x, (h,), unbatched = self._inputs(x, (hx,))
        if self._fused():
            h = _TORCH_CELL[self.mode](x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        else:
            h = _rnn_step(self._gx(x, True), h, self.weight_hh.t(), self.nonlinearity == "relu")
        return h.squeeze(0) if unbatched else h


class LSTMCell(_Cell):
    """One LSTM step (Hochreiter & Schmidhuber 1997; forget gate: Gers et al. 2000); as nn.LSTMCell.

    Gate blocks of weight_ih (4H, I) and weight_hh (4H, H): i, f, g, o (torch's order).
    forward(x (B, I) or (I,), hx (h, c) each (B, H), or None = zeros) -> (h', c').
    """

    mode = "LSTM"

    def forward(self, x: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x, (h, c), unbatched = self._inputs(x, (None, None) if hx is None else tuple(hx))
        if self._fused():
            h, c = _TORCH_CELL["LSTM"](x, (h, c), self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        else:
            h, c = _lstm_step(self._gx(x, True), h, c, self.weight_hh.t())
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)


class GRUCell(_Cell):
    """One GRU step (Cho et al. 2014, torch's form of the candidate); as nn.GRUCell.

    Gate blocks of weight_ih (3H, I) and weight_hh (3H, H): r, z, n (torch's order).
    forward(x (B, I) or (I,), hx (B, H) or None = zeros) -> h' (B, H).
    """

    mode = "GRU"

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        x, (h,), unbatched = self._inputs(x, (hx,))
        if self._fused():
            h = _TORCH_CELL["GRU"](x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        else:
            h = _gru_step(self._gx(x, False), h, self.weight_hh.t(), self.bias_hh)
        return h.squeeze(0) if unbatched else h


# --------------------------------------------------------------------------- one layer, one direction


def _scratch_layer(
    mode: str,
    x: torch.Tensor,
    h: torch.Tensor,
    c: torch.Tensor | None,
    weights: list[torch.Tensor | None],
    mask: torch.Tensor | None,
    reverse: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Run one direction of one layer over x (T, B, I) from h (and c) (B, H).

    mask (T, B, 1), True at real steps, or None: a sequence's state is held where the mask is
    False, so forward it stops at its last real step and in reverse it starts there (from h_0);
    those outputs are set to zero. Returns output (T, B, H), the final h and c.
    """
    w_ih, w_hh, b_ih, b_hh = weights
    T = x.shape[0]
    fold = mode != "GRU" and b_ih is not None  # only the sum b_ih + b_hh matters outside the GRU's n
    # Every step's input projection in one (T B, I) x (I, G H) product, before the loop.
    gx = F.linear(x, w_ih, b_ih + b_hh if fold else b_ih)  # (T, B, G H)
    gxs = gx.unbind(0)  # T views; their backward is one stack (indexing gx[t] would zero-fill (T, B, G H) per step)
    masks = mask.unbind(0) if mask is not None else None
    w_hh_t = w_hh.t()
    relu = mode == "RNN_RELU"
    outs: list[torch.Tensor] = [x] * T  # placeholders, each replaced below
    for t in range(T - 1, -1, -1) if reverse else range(T):
        if mode == "LSTM":
            h_new, c_new = _lstm_step(gxs[t], h, c, w_hh_t)
        elif mode == "GRU":
            h_new, c_new = _gru_step(gxs[t], h, w_hh_t, b_hh), None
        else:
            h_new, c_new = _rnn_step(gxs[t], h, w_hh_t, relu), None
        if masks is None:
            h, c = h_new, c_new
        else:  # past a sequence's end its state is held (where: exactly no gradient into the unused step)
            h = torch.where(masks[t], h_new, h)
            c = torch.where(masks[t], c_new, c) if c is not None else None
        outs[t] = h
    out = torch.stack(outs)  # (T, B, H)
    if mask is not None:
        out = out.masked_fill(~mask, 0.0)  # padded steps give zeros, as pad_packed_sequence
    return out, h, c


# --------------------------------------------------------------------------- the modules


class _Recurrent(nn.Module):
    """What RNN, LSTM and GRU share: parameters, states, the two paths, variable lengths."""

    mode = ""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        fused: bool | None = None,
    ):
        super().__init__()
        if input_size < 1 or hidden_size < 1 or num_layers < 1:
            raise ValueError(f"input_size, hidden_size, num_layers must be >= 1, got {input_size}, {hidden_size}, {num_layers}")
        if isinstance(dropout, bool) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1], got {dropout}")
        if dropout > 0 and num_layers == 1:  # as torch: dropout only acts between layers
            warnings.warn(
                f"dropout={dropout} with num_layers=1 does nothing: dropout is applied after every layer but the last",
                stacklevel=2,
            )
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.fused = bidirectional, fused
        G, D = _GATES[self.mode], 2 if bidirectional else 1
        self._weight_names: list[str] = []  # torch's _flat_weights order: per layer, per direction: w_ih, w_hh, b_ih, b_hh
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else D * hidden_size
            for suffix in ("", "_reverse")[:D]:
                shapes = {"weight_ih": (G * hidden_size, layer_input), "weight_hh": (G * hidden_size, hidden_size)}
                if bias:
                    shapes.update(bias_ih=(G * hidden_size,), bias_hh=(G * hidden_size,))
                for kind, shape in shapes.items():
                    name = f"{kind}_l{layer}{suffix}"
                    self.register_parameter(name, nn.Parameter(torch.empty(shape)))
                    self._weight_names.append(name)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # As torch: every parameter uniform(-1/sqrt(H), 1/sqrt(H)), in registration order (same seed, same weights).
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def flatten_parameters(self) -> None:
        """A no-op (torch's packs weights for cuDNN); here for code written against torch's modules."""

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """Per layer and direction: [weight_ih, weight_hh, bias_ih, bias_hh] (without biases if bias=False), as torch."""
        per = 4 if self.bias else 2
        flat = self._flat_weights()
        return [flat[i : i + per] for i in range(0, len(flat), per)]

    def _flat_weights(self) -> list[torch.Tensor]:
        return [getattr(self, name) for name in self._weight_names]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s + f", fused={self.fused}"

    # ---- inputs and states

    def _initial(self, hx, B: int, batched: bool, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """h_0 (and c_0) as (D num_layers, B, H): given, or zeros."""
        D = 2 if self.bidirectional else 1
        shape = (D * self.num_layers, B, self.hidden_size)
        lstm = self.mode == "LSTM"
        if hx is None:
            h = like.new_zeros(shape)
            return h, (like.new_zeros(shape) if lstm else None)
        if lstm and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise ValueError("LSTM's hx must be a pair (h_0, c_0)")
        states = list(hx) if lstm else [hx]
        for i, s in enumerate(states):
            if not isinstance(s, torch.Tensor):
                raise ValueError(f"the initial state must be a tensor, got {type(s).__name__}")
            if not batched:
                if s.dim() != 2:
                    raise ValueError(f"for an unbatched (T, I) input the states must be (D num_layers, H), got {tuple(s.shape)}")
                s = s.unsqueeze(1)
            if tuple(s.shape) != shape:
                raise ValueError(f"the initial state must be (D num_layers, B, H) = {shape}, got {tuple(s.shape)}")
            states[i] = s
        return states[0], (states[1] if lstm else None)

    def _lengths(self, lengths, B: int, T: int) -> torch.Tensor:
        """(B,) int64 on the CPU (where pack_padded_sequence wants them), each in [1, T]."""
        lengths = torch.as_tensor(lengths).to("cpu")
        if lengths.dim() != 1 or lengths.shape[0] != B or lengths.is_floating_point() or lengths.dtype == torch.bool:
            raise ValueError(f"lengths must be B = {B} integers, one per sequence, got {tuple(lengths.shape)} {lengths.dtype}")
        lengths = lengths.to(torch.int64)
        if B and (int(lengths.min()) < 1 or int(lengths.max()) > T):
            raise ValueError(f"every length must be in [1, T = {T}], got {lengths.tolist()}")
        return lengths

    # ---- the two paths

    def _scratch(
        self, x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor | None, lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """x (T, B, I) time-major -> output (T, B, D H), h_n, c_n (D num_layers, B, H)."""
        T = x.shape[0]
        mask = None
        if lengths is not None:
            mask = (torch.arange(T, device=x.device)[:, None] < lengths.to(x.device)[None, :]).unsqueeze(-1)  # (T, B, 1)
            x = x.masked_fill(~mask, 0.0)  # the padding is never read, whatever it holds (NaN included)
        D = 2 if self.bidirectional else 1
        weights = self._flat_weights()
        per = len(weights) // (D * self.num_layers)
        hs, cs = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                k = layer * D + d
                w = weights[k * per : (k + 1) * per]
                if per == 2:  # bias=False
                    w = w + [None, None]
                out, h, c = _scratch_layer(self.mode, x, h0[k], None if c0 is None else c0[k], w, mask, reverse=d == 1)
                outs.append(out)
                hs.append(h)
                cs.append(c)
            x = outs[0] if D == 1 else torch.cat(outs, dim=-1)  # (T, B, D H): the next layer's input
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        return x, torch.stack(hs), (torch.stack(cs) if c0 is not None else None)

    def _fused_call(self, x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor | None, batch_sizes: torch.Tensor | None):
        """torch's kernel (what nn.LSTM & co. call) with this module's parameters; x is padded
        (in this module's batch_first layout) or packed data with its batch_sizes."""
        state = (h0, c0) if self.mode == "LSTM" else h0
        fn, w = _TORCH_LAYER[self.mode], self._flat_weights()
        common = (self.bias, self.num_layers, self.dropout, self.training, self.bidirectional)
        if batch_sizes is None:
            result = fn(x, state, w, *common, self.batch_first)
        else:
            result = fn(x, batch_sizes, state, w, *common)
        return result[0], result[1], (result[2] if self.mode == "LSTM" else None)

    # ---- forward

    def forward(self, x, hx=None, lengths=None):
        fused = fused_default() if self.fused is None else self.fused
        if isinstance(x, PackedSequence):
            if lengths is not None:
                raise ValueError("a PackedSequence carries its lengths: pass lengths only with a padded batch")
            output, h_n, c_n = self._forward_packed(x, hx, fused)
            return self._result(output, h_n, c_n)
        if not isinstance(x, torch.Tensor) or x.dim() not in (2, 3):
            got = f"{type(x).__name__} {tuple(getattr(x, 'shape', ()))}"
            layouts = "(T, B, I), (B, T, I) with batch_first, (T, I) or a PackedSequence"
            raise ValueError(f"{type(self).__name__} expects {layouts}, got {got}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"input_size is {self.input_size}, the input's last axis is {x.shape[-1]}")
        batched = x.dim() == 3
        if not batched:
            if lengths is not None:
                raise ValueError("lengths need a batch: pass (T, B, I) (or (B, T, I) with batch_first)")
            x = x.unsqueeze(0 if self.batch_first else 1)
        xt = x.transpose(0, 1) if self.batch_first else x  # (T, B, I)
        T, B = xt.shape[:2]
        if T == 0:
            raise ValueError("the sequences must have at least one step (T >= 1)")
        h0, c0 = self._initial(hx, B, batched, x)
        if lengths is not None:
            lengths = self._lengths(lengths, B, T)
        if fused and lengths is None:
            output, h_n, c_n = self._fused_call(x, h0, c0, None)
        elif fused:  # torch's way: pack, run, pad back
            packed = pack_padded_sequence(x, lengths, batch_first=self.batch_first, enforce_sorted=False)
            out_packed, h_n, c_n = self._forward_packed(packed, (h0, c0) if c0 is not None else h0, True)
            output, _ = pad_packed_sequence(out_packed, batch_first=self.batch_first, total_length=T)
        else:
            out, h_n, c_n = self._scratch(xt, h0, c0, lengths)
            output = out.transpose(0, 1) if self.batch_first else out
        if not batched:
            output = output.squeeze(0 if self.batch_first else 1)
            h_n, c_n = h_n.squeeze(1), (c_n.squeeze(1) if c_n is not None else None)
        return self._result(output, h_n, c_n)

    def _forward_packed(self, packed: PackedSequence, hx, fused: bool):
        """PackedSequence in, PackedSequence (same batch_sizes and order) out; hx and the states
        returned are in the caller's order (torch permutes them by sorted_indices and back)."""
        data, batch_sizes, sorted_indices, unsorted_indices = packed
        if data.dim() != 2 or data.shape[-1] != self.input_size:
            raise ValueError(f"the packed data must be (N, input_size = {self.input_size}), got {tuple(data.shape)}")
        B = int(batch_sizes[0])
        h0, c0 = self._initial(hx, B, True, data)
        if fused:
            if sorted_indices is not None:
                h0 = h0.index_select(1, sorted_indices)
                c0 = c0.index_select(1, sorted_indices) if c0 is not None else None
            out, h_n, c_n = self._fused_call(data, h0, c0, batch_sizes)
            if unsorted_indices is not None:
                h_n = h_n.index_select(1, unsorted_indices)
                c_n = c_n.index_select(1, unsorted_indices) if c_n is not None else None
            return PackedSequence(out, batch_sizes, sorted_indices, unsorted_indices), h_n, c_n
        padded, lengths = pad_packed_sequence(packed)  # (T, B, I) in the caller's order, lengths (B,) on the CPU
        out, h_n, c_n = self._scratch(padded, h0, c0, lengths)
        if sorted_indices is not None:  # back to the packed layout: sequences by decreasing length
            out, lengths = out.index_select(1, sorted_indices), lengths.index_select(0, sorted_indices.cpu())
        out_data = pack_padded_sequence(out, lengths, enforce_sorted=True).data
        return PackedSequence(out_data, batch_sizes, sorted_indices, unsorted_indices), h_n, c_n

    def _result(self, output, h_n: torch.Tensor, c_n: torch.Tensor | None):
        return (output, (h_n, c_n)) if self.mode == "LSTM" else (output, h_n)


class RNN(_Recurrent):
    """Elman RNN, h_t = act(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh), act = tanh or relu; as nn.RNN.

    RNN(input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
        dropout=0.0, bidirectional=False, *, fused=None)
    forward(x, hx=None, lengths=None) -> (output, h_n); x (T, B, I) (batch_first: (B, T, I)),
    (T, I) or a PackedSequence; hx (D num_layers, B, H). See the module docstring.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        fused: bool | None = None,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self.mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, fused=fused)


class LSTM(_Recurrent):
    """LSTM (Hochreiter & Schmidhuber 1997, forget gate of Gers et al. 2000); as nn.LSTM without proj_size.

    LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
         bidirectional=False, *, fused=None)
    forward(x, hx=None, lengths=None) -> (output, (h_n, c_n)); hx = (h_0, c_0), each
    (D num_layers, B, H). Gate blocks of each weight: i, f, g, o. See the module docstring.
    """

    mode = "LSTM"


class GRU(_Recurrent):
    """GRU (Cho et al. 2014, torch's form of the candidate n); as nn.GRU.

    GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
        bidirectional=False, *, fused=None)
    forward(x, hx=None, lengths=None) -> (output, h_n). Gate blocks of each weight: r, z, n.
    See the module docstring.
    """

    mode = "GRU"
