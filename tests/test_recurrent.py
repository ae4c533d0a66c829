"""Recurrent layers (deepnotes.layers.recurrent) against nn.RNN / nn.LSTM / nn.GRU and their cells.

The oracle is torch's module with the same weights (copied through state_dict, which must load
both ways). Derandomized hypothesis searches draw the mode (tanh RNN, ReLU RNN, LSTM, GRU), sizes
(batch 1, length 1, 1-3 layers, hidden size 1), both directions, batch_first both ways, bias or
not, an initial state or zeros, float32 / float64, memory layouts (contiguous, transposed,
strided), the fused switch, and the way variable lengths come in: none, an unbatched sequence,
a padded batch + lengths (torch: pack_padded_sequence -> module -> pad_packed_sequence), a
PackedSequence sorted or not (enforce_sorted=False); lengths include 1 and T, and the padding
may hold NaN (never read, by either side). Compared: output, h_n, c_n, and the gradients of
<output, u1> + <h_n, u2> + <c_n, u3> with respect to the input, the initial states and every
parameter (upstream u ~ 1e-3 to 1e4 times N(0, 1); gradients divided by that scale first).
torch.testing.assert_close also fails on NaN / inf where the other side has none.

Tolerances, rtol = atol (in brackets the worst |ours - torch| / (1 + |torch|) measured over
2,000 drawn examples of the module search and 1,000 of the cell search, on this torch 2.13):
  float64  1e-10: a few hundred correctly rounded operations on each side [module 3.0e-15, cell
           6.7e-16]; a wrong gate order (i <-> f, r <-> z), a misplaced GRU bias, z on the wrong
           term or a state not held past a sequence's end is off by 1.6e-2 or more (each was tried).
  float32  1e-4: torch's kernels block and reorder the sums, and the recurrence carries the
           rounding through up to 5 steps and 3 layers [module 5.9e-6, cell 1.1e-7].
Settings: derandomize=True, database=None (CI runs the same examples every time), deadline=None.
"""

import math
import warnings

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from deepnotes.layers import recurrent as R

ORACLE = settings(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])


def oracle(max_examples: int) -> settings:
    return settings(ORACLE, max_examples=max_examples)


TOL = {torch.float64: dict(rtol=1e-10, atol=1e-10), torch.float32: dict(rtol=1e-4, atol=1e-4)}
MODES = ["RNN_TANH", "RNN_RELU", "LSTM", "GRU"]
LAYOUTS = st.sampled_from(["contiguous", "transposed", "strided"])
GRAD_SCALES = st.sampled_from([1e-3, 1.0, 1e2, 1e4])


def make(g, shape, dtype, layout="contiguous", scale=1.0):
    """N(0, scale^2) in dtype with the given memory layout: transposed = the last two axes swapped
    in memory, strided = every other element of a twice-as-long last axis."""
    shape = tuple(shape)
    if layout == "transposed" and len(shape) >= 2:
        t = torch.randn(*shape[:-2], shape[-1], shape[-2], generator=g, dtype=torch.float64) * scale
        return t.to(dtype).transpose(-1, -2)
    if layout == "strided":
        return (torch.randn(*shape[:-1], 2 * shape[-1], generator=g, dtype=torch.float64) * scale).to(dtype)[..., ::2]
    return (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)


def build(mode, *args, torch_module=False, cell=False, fused=False, **kwargs):
    """Ours (or torch's with torch_module) for a mode: RNN_TANH, RNN_RELU, LSTM, GRU; a cell with cell=True."""
    name = "RNN" if mode.startswith("RNN") else mode
    if mode.startswith("RNN"):
        kwargs["nonlinearity"] = "tanh" if mode == "RNN_TANH" else "relu"
    name += "Cell" if cell else ""
    return getattr(nn, name)(*args, **kwargs) if torch_module else getattr(R, name)(*args, fused=fused, **kwargs)


def pair(mode, *args, fused=False, **kwargs):
    """(ours, torch's) for a mode, with the same arguments."""
    return build(mode, *args, fused=fused, **kwargs), build(mode, *args, torch_module=True, **kwargs)


def cell_pair(mode, *args, fused=False, **kwargs):
    return build(mode, *args, cell=True, fused=fused, **kwargs), build(mode, *args, cell=True, torch_module=True, **kwargs)


def params(module):
    return [p for _, p in sorted(module.named_parameters())]


def close(a, b, tol, what):
    torch.testing.assert_close(a, b, **tol, msg=lambda m: f"{what}: {m}")


# --------------------------------------------------------------------------- parameters


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bias", [True, False])
def test_parameters_have_torchs_names_shapes_order_and_init_and_load_both_ways(mode, bias):
    kwargs = dict(num_layers=3, bias=bias, bidirectional=True)
    torch.manual_seed(0)
    ours = build(mode, 5, 7, **kwargs)
    torch.manual_seed(0)
    ref = build(mode, 5, 7, torch_module=True, **kwargs)
    a, b = ours.state_dict(), ref.state_dict()
    assert list(a) == list(b)  # names and registration order: weight_ih_l0, weight_hh_l0, ..., bias_hh_l2_reverse
    assert all(a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)  # same seed, same uniform(-1/sqrt(H), 1/sqrt(H))
    assert [[p.shape for p in w] for w in ours.all_weights] == [[p.shape for p in w] for w in ref.all_weights]
    bound = 1 / math.sqrt(7)
    assert all(p.abs().max() <= bound for p in ours.parameters())
    # both ways, strictly
    fresh_ref = pair(mode, 5, 7, **kwargs)[1]
    fresh_ref.load_state_dict(ours.state_dict())
    fresh_ours = pair(mode, 5, 7, **kwargs)[0]
    fresh_ours.load_state_dict(ref.state_dict())
    torch.manual_seed(0)
    cell = build(mode, 5, 7, bias=bias, cell=True)
    torch.manual_seed(0)
    ref_cell = build(mode, 5, 7, bias=bias, cell=True, torch_module=True)
    a, b = cell.state_dict(), ref_cell.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    ref_cell.load_state_dict(cell.state_dict())
    cell.load_state_dict(ref_cell.state_dict())


def test_gate_blocks_gru_has_three_quarters_of_lstms_parameters():
    """3 blocks (r, z, n) against 4 (i, f, g, o): per layer and direction G H (I + H) + 2 G H."""
    count = {m: sum(p.numel() for p in pair(m, 256, 256)[0].parameters()) for m in MODES}
    assert count["LSTM"] == 4 * 256 * 512 + 8 * 256 == 526_336
    assert count["GRU"] == 394_752 == 3 * count["LSTM"] // 4
    assert count["RNN_TANH"] == count["RNN_RELU"] == count["LSTM"] // 4
    assert R.GRU(3, 4).weight_ih_l0.shape == nn.GRU(3, 4).weight_ih_l0.shape == (12, 3)


# --------------------------------------------------------------------------- the module search


@st.composite
def module_cases(draw):
    inputs = draw(st.sampled_from(["full", "unbatched", "lengths", "packed", "packed_unsorted"]))
    B = 1 if inputs == "unbatched" else draw(st.integers(1, 4))
    T = draw(st.integers(1, 5))
    lengths = draw(st.lists(st.integers(1, T), min_size=B, max_size=B))
    if inputs == "packed":  # enforce_sorted=True wants decreasing lengths
        lengths.sort(reverse=True)
    return dict(
        mode=draw(st.sampled_from(MODES)),
        inputs=inputs,
        B=B,
        T=T,
        lengths=lengths,
        I=draw(st.integers(1, 4)),
        H=draw(st.integers(1, 4)),
        layers=draw(st.integers(1, 3)),
        bidirectional=draw(st.booleans()),
        batch_first=draw(st.booleans()),
        bias=draw(st.booleans()),
        initial=draw(st.booleans()),
        padding=draw(st.sampled_from(["zeros", "nan"])),
        dtype=draw(st.sampled_from([torch.float32, torch.float64])),
        layout=draw(LAYOUTS),
        fused=draw(st.booleans()),
        input_scale=draw(st.sampled_from([1.0, 4.0])),  # 4: saturated gates
        grad_scale=draw(GRAD_SCALES),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


def _case(**kwargs):
    base = dict(mode="LSTM", inputs="lengths", B=3, T=4, lengths=[4, 1, 2], I=3, H=2, layers=2, bidirectional=True,
                batch_first=True, bias=True, initial=True, padding="nan", dtype=torch.float64, layout="contiguous",
                fused=False, input_scale=1.0, grad_scale=1.0, seed=0)  # fmt: skip
    return dict(base, **kwargs)


def _run(module, c, x, state, ours):
    """(output tensor, h_n, c_n or None, the PackedSequence or None) for the case's kind of input."""
    hx = None if state is None else (state if c["mode"] == "LSTM" else state[0])
    lengths = torch.tensor(c["lengths"])
    if c["inputs"] in ("full", "unbatched"):
        out, h = module(x, hx)
        packed = None
    elif c["inputs"] == "lengths":
        if ours:
            out, h = module(x, hx, lengths=c["lengths"])
        else:
            p = pack_padded_sequence(x, lengths, batch_first=c["batch_first"], enforce_sorted=False)
            out, h = module(p, hx)
            out, _ = pad_packed_sequence(out, batch_first=c["batch_first"], total_length=c["T"])
        packed = None
    else:
        p = pack_padded_sequence(x, lengths, batch_first=c["batch_first"], enforce_sorted=c["inputs"] == "packed")
        packed, h = module(p, hx)
        assert isinstance(packed, PackedSequence)
        out = packed.data
    h, cn = h if c["mode"] == "LSTM" else (h, None)
    return out, h, cn, packed


@oracle(100)
@given(c=module_cases())
@example(c=_case())  # padded + lengths with NaN padding, a length of 1 and a full one, both directions
@example(c=_case(inputs="packed_unsorted", mode="GRU", B=1, T=1, lengths=[1], layers=3))  # batch 1, length 1
@example(c=_case(inputs="lengths", mode="RNN_RELU", lengths=[4, 4, 4], fused=True, dtype=torch.float32))
def test_recurrent_modules_equal_torch(c):
    g = torch.Generator().manual_seed(c["seed"])
    dtype, D = c["dtype"], 2 if c["bidirectional"] else 1
    ours, ref = pair(c["mode"], c["I"], c["H"], num_layers=c["layers"], bias=c["bias"], batch_first=c["batch_first"],
                     bidirectional=c["bidirectional"], fused=c["fused"])  # fmt: skip
    ref = ref.to(dtype)
    with torch.no_grad():  # larger than torch's init, so the gates and the recurrence matter
        for p in ref.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.7)
    ours = ours.to(dtype)
    ours.load_state_dict(ref.state_dict())
    B, T = c["B"], c["T"]
    if c["inputs"] == "unbatched":
        x = make(g, (T, c["I"]), dtype, c["layout"], c["input_scale"])
        state_shape = (D * c["layers"], c["H"])
    else:
        x = make(g, (B, T, c["I"]) if c["batch_first"] else (T, B, c["I"]), dtype, c["layout"], c["input_scale"])
        state_shape = (D * c["layers"], B, c["H"])
        if c["inputs"] != "full" and c["padding"] == "nan":
            for b, n in enumerate(c["lengths"]):
                (x[b, n:] if c["batch_first"] else x[n:, b]).fill_(float("nan"))
    x.requires_grad_(True)
    state = None
    if c["initial"]:
        state = [make(g, state_shape, dtype, c["layout"]).requires_grad_(True) for _ in range(2 if c["mode"] == "LSTM" else 1)]
    out, h, cn, packed = _run(ours, c, x, state, True)
    ref_out, ref_h, ref_cn, ref_packed = _run(ref, c, x, state, False)
    tol, what = TOL[dtype], f"{c['mode']} {c['inputs']}"
    close(out, ref_out, tol, f"{what} output")
    close(h, ref_h, tol, f"{what} h_n")
    if cn is not None:
        close(cn, ref_cn, tol, f"{what} c_n")
    if packed is not None:
        for field in ("batch_sizes", "sorted_indices", "unsorted_indices"):  # the same layout as torch's output
            a, b = getattr(packed, field), getattr(ref_packed, field)
            assert (a is None and b is None) or torch.equal(a, b), field
    if c["inputs"] == "lengths":  # zero beyond each length, as pad_packed_sequence
        for b, n in enumerate(c["lengths"]):
            assert not (out[b, n:] if c["batch_first"] else out[n:, b]).any()
    outputs = [out, h] + ([cn] if cn is not None else [])
    ref_outputs = [ref_out, ref_h] + ([ref_cn] if ref_cn is not None else [])
    ups = [make(g, o.shape, dtype, scale=c["grad_scale"]) for o in outputs]
    inputs = [x] + (state or [])
    grads = torch.autograd.grad(outputs, inputs + params(ours), ups)
    ref_grads = torch.autograd.grad(ref_outputs, inputs + params(ref), ups)
    names = ["x"] + [f"state {i}" for i in range(len(state or []))] + [n for n, _ in sorted(ours.named_parameters())]
    for name, a, b in zip(names, grads, ref_grads, strict=True):
        close(a / c["grad_scale"], b / c["grad_scale"], tol, f"{what} gradient of {name}")


# --------------------------------------------------------------------------- the cell search


@oracle(60)
@given(
    mode=st.sampled_from(MODES),
    B=st.integers(0, 3),  # 0: an unbatched (I,) input
    I=st.integers(1, 5),
    H=st.integers(1, 5),
    bias=st.booleans(),
    initial=st.booleans(),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    layout=LAYOUTS,
    fused=st.booleans(),
    grad_scale=GRAD_SCALES,
    seed=st.integers(0, 2**31 - 1),
)
def test_cells_equal_torch(mode, B, I, H, bias, initial, dtype, layout, fused, grad_scale, seed):
    g = torch.Generator().manual_seed(seed)
    ours, ref = cell_pair(mode, I, H, bias=bias, fused=fused)
    ref = ref.to(dtype)
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    ours = ours.to(dtype)
    ours.load_state_dict(ref.state_dict())
    x = make(g, (B, I) if B else (I,), dtype, layout).requires_grad_(True)
    state = [make(g, (B, H) if B else (H,), dtype, layout).requires_grad_(True) for _ in range(2 if mode == "LSTM" else 1)]
    hx = (tuple(state) if mode == "LSTM" else state[0]) if initial else None
    out, ref_out = ours(x, hx), ref(x, hx)
    outputs, ref_outputs = (list(out), list(ref_out)) if mode == "LSTM" else ([out], [ref_out])
    for a, b in zip(outputs, ref_outputs, strict=True):
        close(a, b, TOL[dtype], f"{mode} cell values")
    inputs = [x] + (state if initial else [])
    ups = [make(g, o.shape, dtype, scale=grad_scale) for o in outputs]
    for a, b in zip(torch.autograd.grad(outputs, inputs + params(ours), ups),
                    torch.autograd.grad(ref_outputs, inputs + params(ref), ups), strict=True):  # fmt: skip
        close(a / grad_scale, b / grad_scale, TOL[dtype], f"{mode} cell gradients")


# --------------------------------------------------------------------------- the fused switch, dropout


def test_fused_switch_default_and_both_paths_agree(monkeypatch):
    calls = []
    real = R._TORCH_LAYER["LSTM"]
    monkeypatch.setitem(R._TORCH_LAYER, "LSTM", lambda *args: calls.append(1) or real(*args))
    assert R.fused_default() is True  # training's default: torch's kernels
    lstm = R.LSTM(3, 4, num_layers=2, bidirectional=True).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    with R.use_fused(False):
        assert R.fused_default() is False
        scratch = lstm(x, lengths=[5, 2])
    assert calls == [] and R.fused_default() is True
    fused = lstm(x, lengths=[5, 2])
    assert calls == [1]
    for a, b in zip((scratch[0], *scratch[1]), (fused[0], *fused[1]), strict=True):
        close(a, b, TOL[torch.float64], "scratch vs fused")
    previous = R.set_fused_default(False)
    try:
        assert previous is True and R.fused_default() is False
        lstm.fused = True  # the module's own flag wins over the default
        lstm(x)
        assert calls == [1, 1]
    finally:
        R.set_fused_default(previous)
    assert "fused=True" in repr(lstm)
    cell = R.GRUCell(3, 4, fused=False)
    monkeypatch.setitem(R._TORCH_CELL, "GRU", None)  # the scratch cell never calls torch's
    cell(x[0].float())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fused", [False, True])
def test_dropout_between_layers_draws_torchs_masks(mode, fused):
    """Same op, shape and order as torch's: the same seed gives the same masks (padded input without lengths)."""
    ours, ref = pair(mode, 3, 6, num_layers=3, dropout=0.5, batch_first=True, fused=fused)
    ours, ref = ours.double(), ref.double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    torch.manual_seed(7)
    out = ours(x)[0]
    torch.manual_seed(7)
    ref_out = ref(x)[0]
    close(out, ref_out, TOL[torch.float64], "dropout")
    torch.manual_seed(8)
    assert not torch.allclose(ours(x)[0], out)  # a different seed, different masks: dropout acts
    ours.eval()
    ref.eval()
    close(ours(x)[0], ref(x)[0], TOL[torch.float64], "eval: no dropout")


def test_dropout_with_one_layer_warns_as_torch():
    with pytest.warns(UserWarning, match="does nothing"):
        R.GRU(2, 3, dropout=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        R.GRU(2, 3, num_layers=2, dropout=0.2)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: m(torch.randn(4, 2, 3), lengths=[5, 1]), r"in \[1, T = 4\]"),
        (lambda m: m(torch.randn(4, 2, 3), lengths=[0, 1]), r"in \[1, T = 4\]"),
        (lambda m: m(torch.randn(4, 2, 3), lengths=[1, 2, 3]), "B = 2 integers"),
        (lambda m: m(torch.randn(4, 2, 3), lengths=[1.0, 2.0]), "B = 2 integers"),
        (lambda m: m(torch.randn(4, 2, 5)), "input_size is 3"),
        (lambda m: m(torch.randn(0, 2, 3)), "at least one step"),
        (lambda m: m(torch.randn(4, 3), lengths=[2]), "lengths need a batch"),
        (lambda m: m(torch.randn(4, 2, 3), (torch.zeros(2, 2, 4), torch.zeros(2, 3, 4))), r"\(D num_layers, B, H\) = \(2, 2, 4"),
        (lambda m: m(torch.randn(4, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4))), r"= \(2, 2, 4\)"),
        (lambda m: m(torch.randn(4, 2, 3), torch.zeros(2, 2, 4)), "LSTM's hx must be a pair"),
        (lambda m: m(pack_padded_sequence(torch.randn(4, 2, 3), [4, 2]), lengths=[4, 2]), "carries its lengths"),
        (lambda m: m(torch.randn(2, 3, 4, 3)), "expects"),
    ],
)
def test_bad_inputs_are_value_errors_that_say_what_is_right(call, match):
    lstm = R.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match=match):
        call(lstm)


def test_bad_options_are_value_errors():
    with pytest.raises(ValueError, match="nonlinearity"):
        R.RNN(2, 3, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dropout"):
        R.LSTM(2, 3, num_layers=2, dropout=1.5)
    with pytest.raises(ValueError, match=">= 1"):
        R.GRU(2, 0)
    with pytest.raises(ValueError, match=r"\(B, H\) = \(2, 3\)"):
        R.LSTMCell(2, 3)(torch.randn(2, 2), (torch.zeros(2, 3), torch.zeros(1, 3)))
