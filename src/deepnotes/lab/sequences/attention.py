"""C52-C56: attention on sequences (셀프 어텐션 vs 순환, 위치 인코딩, 패딩 마스크, 소프트 / 하드
어텐션, 멀티 헤드 어텐션), each on a small synthetic sequence task defined below.

C52  cost against sequence length n (32-2048; quick 16-128) of one self-attention layer (global,
     and block-local with a fixed window as the reference) and of one RNN / LSTM layer of the same
     width: multiply-adds and the bytes of every tensor the forward writes, counted by a torch
     function mode (the counted numbers give the verdict), the number of matrix products one after
     another (attention: a fixed handful at every n; a recurrence: one per step), and seconds per
     sequence on one thread (supporting only). Exponents: least-squares slopes on log-log axes. The
     notes' "exponential" is tested against the numbers: a log-linear fit and the doubling ratios
     cost(2n) / cost(n) (4 at every n for a square, growing without bound for an exponential).
C53  "the token one step back" with no other cue than the positions, trained on sequences of
     length L and tested on 2L, with a sinusoidal table, a learned table sized for the test length
     (its rows past L never receive a gradient: they stay at their random init) and no positions
     (full size only: content alone, near chance); a learned table sized for the training length refuses a longer input (the error is
     recorded). Accuracy on the positions past L, several seeds, a paired 95% t-interval.
C54  a 2-layer transformer encoder (deepnotes's layers) on padded batches: the largest change of
     the real positions' outputs (and of the gradient reaching the padded inputs) when only the
     padded content changes, with the key padding mask and without, on the scratch and the fused
     attention path.
C55  a lookup: a query finds its matching key among n and the answer is that item's label. Soft
     attention (softmax, trained by backpropagation) against hard attention (one sampled position,
     Xu et al. 2015, "Show, Attend and Tell", arXiv:1502.03044), trained by REINFORCE (Williams 1992)
     with a moving-average baseline, and hard attention trained by backpropagation alone (its scorer
     gets no gradient): weight sums (an identity of the softmax, checked), gradient check, the
     scorer's gradient norm, accuracy over seeds, and the variance of each gradient estimator.
C56  a task that needs two lookups at once (output the tokens 1 and 3 steps back) for one
     attention layer with 1 head of width d against 2 (and 4) heads of width d / h, the same
     parameters and a linear read-out: accuracy over seeds with a paired 95% t-interval; multiply-
     adds counted for 1-8 heads (equal), seconds supporting.

All attention is deepnotes's own (deepnotes.layers.attention, .transformer), recurrences
deepnotes.layers.recurrent (scratch loop for counting, torch's kernels for the clock).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from deepnotes.lab import Context, Finding, experiment
from deepnotes.lab.common import fit_exponent, new_figure, paired_interval, rounded, save_figure
from deepnotes.layers.attention import (
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    SinusoidalPositionalEncoding,
    record_attention,
    use_fused,
)
from deepnotes.layers.recurrent import LSTM, RNN
from deepnotes.layers.recurrent import use_fused as recurrent_fused
from deepnotes.layers.transformer import TransformerEncoder, TransformerEncoderLayer


def _interval_text(d: dict, pct: bool = True) -> str:
    f = (lambda v: f"{v:+.1%}") if pct else (lambda v: f"{v:+.3g}")
    straddles = " (straddles 0)" if d["low"] <= 0 <= d["high"] and d["runs"] > 1 else ""
    return f"{f(d['mean'])} [{f(d['low'])}, {f(d['high'])}]{straddles}"


# ============================================================================ counting


class OpCounter(TorchFunctionMode):
    """Counts, for everything run inside it: multiply-adds of the matrix products (F.linear,
    matmul / @ / bmm / mm, addmm, F.scaled_dot_product_attention), split into `products`
    (activation x activation: matmul, bmm and the fused attention, i.e. q k^T and weights x v)
    and the rest; `calls`, the number of matrix products in program order; and the bytes of every
    new (non-view) tensor written, with the largest one."""

    def __init__(self) -> None:
        super().__init__()
        self.macs = self.product_macs = self.calls = self.bytes = self.largest = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        if name == "linear":
            self.macs += out.numel() * args[0].shape[-1]
            self.calls += 1
        elif name in ("matmul", "__matmul__", "bmm", "mm"):
            m = out.numel() * args[0].shape[-1]
            self.macs += m
            self.product_macs += m
            self.calls += 1
        elif name == "addmm":
            self.macs += out.numel() * args[1].shape[-1]
            self.calls += 1
        elif name == "scaled_dot_product_attention":
            q, k, v = args[:3]
            m = (out.numel() // v.shape[-1]) * k.shape[-2] * (q.shape[-1] + v.shape[-1])
            self.macs += m
            self.product_macs += m
            self.calls += 1
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and not t._is_view():
                size = t.numel() * t.element_size()
                self.bytes += size
                self.largest = max(self.largest, size)
        return out


def count_ops(fn: Callable[[], object]) -> dict:
    """Run fn() under an OpCounter (no_grad); its counts as a dict."""
    counter = OpCounter()
    with torch.no_grad(), counter:
        fn()
    return {"macs": counter.macs, "product_macs": counter.product_macs, "products_in_sequence": counter.calls,
            "bytes": counter.bytes, "largest_tensor_bytes": counter.largest}  # fmt: skip


def fastest(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of `repeats` timed calls of fn() (no_grad) after one untimed warm-up."""
    best = math.inf
    with torch.no_grad():
        fn()
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
    return best


# ============================================================================ C52


class SelfAttentionLayer(nn.Module):
    """One self-attention layer on (B, n, d): global (every token attends to every token), or
    block-local (the sequence cut into blocks of `window` tokens, each attending within its block:
    the same module run on (B n / window, window, d), cost linear in n)."""

    def __init__(self, d: int, heads: int, window: int | None = None):
        super().__init__()
        self.att, self.window = MultiHeadAttention(d, heads), window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, n, d = x.shape
        if self.window is not None:
            if n % self.window:
                raise ValueError(f"block-local attention needs n divisible by the window {self.window}, got n = {n}")
            x = x.reshape(B * n // self.window, self.window, d)
        return self.att(x, x, x, need_weights=False)[0].reshape(B, n, d)


ARMS_C52 = {
    "global": "self-attention (global)",
    "local": "self-attention, block-local",
    "lstm": "LSTM",
    "rnn": "RNN (Elman, tanh)",
}
QUADRATIC, LINEAR = 1.8, 1.25  # exponent bands, as C84's


def doubling_ratios(lengths: Sequence[int], cost: Sequence[float]) -> list[float]:
    """cost(2n) / cost(n) for every n whose double is also measured."""
    at = dict(zip(lengths, cost))
    return [at[2 * n] / at[n] for n in lengths if 2 * n in at and at[n] > 0]


def fit_r2(x: Sequence[float], y: Sequence[float]) -> float:
    """R^2 of the least-squares line through (x, y)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    resid = y - np.polyval(np.polyfit(x, y, 1), x)
    total = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float((resid**2).sum()) / total if total > 0 else 1.0


def judge_c52(numbers: dict) -> tuple[str, str]:
    """From the counted numbers of the attention arm under test (`tested`) and of the recurrences:
    holds with a correction (the notes say "exponential"; the numbers say square) if the attention
    products' multiply-adds and its largest tensor grow as n^p with p >= 1.8, their doubling ratios
    stay constant (max / min <= 1.25: no exponential, whose ratios grow without bound) and the
    power law fits log cost better than a line in n does (log-linear), the attention layer runs the
    same number of matrix products one after another at every n (one parallel step) and the
    RNN / LSTM one per token (n + 1 in all, multiply-adds linear, p <= 1.25). Does not hold if the
    attention under test is not quadratic (e.g. block-local: linear) or the recurrence's steps do
    not grow with n."""
    n = numbers
    t = n["tested"]
    e = n["exponents"]
    a = n["arms"][t]
    quadratic = e[t]["product_macs"] >= QUADRATIC and e[t]["largest_tensor_bytes"] >= QUADRATIC
    ratios = n["doubling_ratios"][t]
    steady = bool(ratios) and max(ratios) / min(ratios) <= 1.25
    power_fits = n["fits"][t]["loglog_r2"] > n["fits"][t]["loglinear_r2"]
    parallel = len(set(a["products_in_sequence"])) == 1
    lengths = n["lengths"]
    sequential = all(n["arms"][r]["products_in_sequence"] == [m + 1 for m in lengths] for r in ("lstm", "rnn"))
    rnn_linear = all(e[r]["macs"] <= LINEAR for r in ("lstm", "rnn"))
    last = str(lengths[-1])
    at_last = {k: n["by_length"][k][last] for k in ARMS_C52}
    secs = n["seconds_per_sequence"]
    summary = (
        f"n = {lengths[0]}-{lengths[-1]}, d = {n['d_model']} ({n['heads']} heads), counted: {ARMS_C52[t]}'s q k^T and weights x v "
        f"grow as n^{e[t]['product_macs']:.2f} (whole layer n^{e[t]['macs']:.2f}), its largest tensor as n^{e[t]['largest_tensor_bytes']:.2f}, "
        f"in {a['products_in_sequence'][0]} matrix products one after another at every n; LSTM n^{e['lstm']['macs']:.2f} and RNN "
        f"n^{e['rnn']['macs']:.2f} multiply-adds in n + 1 products one after another ({lengths[-1] + 1} at n = {lengths[-1]}); at n = {last} "
        f"the global layer costs {at_last['global']['macs'] / at_last['lstm']['macs']:.1f}x the LSTM's multiply-adds. "
        f"Doubling n multiplies the attention products by {min(ratios):.2f}-{max(ratios):.2f}; R^2 on log-log {n['fits'][t]['loglog_r2']:.4f} "
        f"against log-linear {n['fits'][t]['loglinear_r2']:.4f}. Clock (1 thread, supporting): global n^{e['global']['seconds']:.2f}, "
        f"fused n^{e['global_fused']['seconds']:.2f}, LSTM n^{e['lstm']['seconds']:.2f}; at n = {last} "
        f"{secs['global_fused'][last] * 1e3:.3g} ms (attention, fused) against {secs['lstm'][last] * 1e3:.3g} ms (LSTM) per sequence"
        + (
            ": on one CPU thread the parallel step buys nothing, it pays where the hardware runs the products at once"
            if secs["global_fused"][last] > secs["lstm"][last]
            else ""
        )
    )
    if quadratic and steady and power_fits and parallel and sequential and rnn_linear:
        return "holds with a correction", (
            "the cost is quadratic, not exponential as the notes say (a square multiplies by 4 per doubling at every n; an exponential's "
            "factor would itself grow), and attention takes one parallel step while the RNN takes n: " + summary
        )
    what = []
    if not quadratic:
        what.append(f"{ARMS_C52[t]} is not O(n^2) (products n^{e[t]['product_macs']:.2f})")
    if quadratic and not (steady and power_fits):
        what.append("the growth does not look polynomial")
    if not parallel:
        what.append("the attention layer's sequential products grow with n")
    if not (sequential and rnn_linear):
        what.append("the recurrences do not take one product per step at linear cost")
    return "does not hold", "; ".join(what) + ". " + summary


@experiment("C52", quick_verdict="holds with a correction", opposite={"attention": "local"})
def run_c52(ctx: Context, attention: str = "global", lengths: Sequence[int] | None = None, d_model: int = 64, heads: int = 4,
            window: int = 16) -> Finding:  # fmt: skip
    """Count (on the meta device: no arithmetic) and time (one thread, fastest of a few calls, batch
    ceil(n_max / n) so every call does about the same work) one layer of each arm at each length.
    attention="local" tests the claim on block-local attention (window tokens per block), the
    opposite evidence: linear, not quadratic."""
    if attention not in ("global", "local"):
        raise ValueError(f"attention is 'global' or 'local', got {attention!r}")
    lengths = [int(n) for n in (lengths or ctx.size((16, 32, 64, 128), (32, 64, 128, 256, 512, 1024, 2048)))]
    repeats = ctx.size(2, 5)

    def build(arm: str, device: str = "cpu") -> nn.Module:
        torch.manual_seed(ctx.seed)
        with torch.device(device):
            if arm == "global":
                return SelfAttentionLayer(d_model, heads).eval()
            if arm == "local":
                return SelfAttentionLayer(d_model, heads, window).eval()
            if arm == "lstm":
                return LSTM(d_model, d_model, batch_first=True).eval()
            return RNN(d_model, d_model, batch_first=True).eval()

    counted: dict[str, dict[str, dict]] = {a: {} for a in ARMS_C52}
    seconds: dict[str, dict[str, float]] = {a: {} for a in (*ARMS_C52, "global_fused")}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the clock of a shared CPU is steadier on one thread
    try:
        for a in ARMS_C52:
            meta = build(a, "meta")
            real = build(a)
            for n in lengths:
                x_meta = torch.empty(1, n, d_model, device="meta")
                # counting on the scratch paths: the equations, every product visible
                with use_fused(False), recurrent_fused(False):
                    counted[a][str(n)] = count_ops(lambda: meta(x_meta))
                batch = -(-lengths[-1] // n)
                x = torch.randn(batch, n, d_model)
                # the clock on the paths training uses: torch's recurrent kernels, attention scratch and fused
                seconds[a][str(n)] = fastest(lambda: real(x), repeats) / batch
                if a == "global":
                    with use_fused(True):
                        seconds["global_fused"][str(n)] = fastest(lambda: real(x), repeats) / batch
                ctx.log(
                    f"C52 {a} n={n}: {counted[a][str(n)]['macs'] / 1e6:.2f}M MACs, {seconds[a][str(n)] * 1e3:.3f} ms/sequence"
                )
    finally:
        torch.set_num_threads(threads)

    keys = ("macs", "product_macs", "bytes", "largest_tensor_bytes", "products_in_sequence")
    arms = {a: {k: [counted[a][str(n)][k] for n in lengths] for k in keys} | {"model": ARMS_C52[a]} for a in ARMS_C52}
    exponents = {}
    for a in ARMS_C52:
        # rounded to 1e-6 (+ 0.0 turns -0.0 into 0.0): a constant count fits a slope of ~1e-17, not "-0.00"
        exponents[a] = {k: round(rounded(fit_exponent(lengths, arms[a][k]), 4), 6) + 0.0 for k in keys if min(arms[a][k]) > 0}
        exponents[a]["seconds"] = rounded(fit_exponent(lengths, [seconds[a][str(n)] for n in lengths]), 4)
    exponents["global_fused"] = {"seconds": rounded(fit_exponent(lengths, [seconds["global_fused"][str(n)] for n in lengths]), 4)}
    fits = {}
    for a in ("global", "local"):
        y = np.log(np.asarray(arms[a]["product_macs"], dtype=float))
        fits[a] = {"loglog_r2": rounded(fit_r2(np.log(lengths), y), 6), "loglinear_r2": rounded(fit_r2(lengths, y), 6)}
    numbers = {
        "tested": attention,
        "lengths": lengths,
        "d_model": d_model,
        "heads": heads,
        "window": window,
        "arms": arms,
        "by_length": {a: {str(n): counted[a][str(n)] for n in lengths} for a in ARMS_C52},
        "seconds_per_sequence": {a: {k: rounded(v, 4) for k, v in s.items()} for a, s in seconds.items()},
        "exponents": exponents,
        "doubling_ratios": {
            a: [rounded(r, 4) for r in doubling_ratios(lengths, arms[a]["product_macs"])] for a in ("global", "local")
        },
        "fits": fits,
        "threads": 1,
        "counting": "torch function mode on the scratch paths, batch 1, meta device: multiply-adds of every matrix product; bytes of every "
        "new (non-view) tensor; 'products_in_sequence' = matrix products run one after another",
        "timing": f"seconds per sequence, batch ceil({lengths[-1]} / n), 1 thread, fastest of {repeats} after a warm-up; LSTM / RNN on "
        "torch's kernels (fused), attention scratch and fused (F.scaled_dot_product_attention)",
    }

    fig, axes = new_figure(2, 2, size=(5.0, 3.8))
    N = np.asarray(lengths, dtype=float)
    colours = {"global": "C3", "local": "C1", "lstm": "C0", "rnn": "C2", "global_fused": "C4"}
    panels = (
        (axes[0, 0], "macs", "multiply-adds per sequence (counted)"),
        (axes[0, 1], "products_in_sequence", "matrix products one after another"),
        (axes[1, 0], "largest_tensor_bytes", "largest tensor written (bytes)"),
    )
    for ax, key, title in panels:
        for a in ARMS_C52:
            p = exponents[a].get(key)
            ax.loglog(
                N, arms[a][key], "o-", color=colours[a], ms=3, label=f"{ARMS_C52[a]}" + (f": n^{p:.2f}" if p is not None else "")
            )
        if key == "macs":
            ax.loglog(
                N,
                arms["global"]["product_macs"],
                "x--",
                color=colours["global"],
                lw=1,
                label=f"  of which q k^T, w v: n^{exponents['global']['product_macs']:.2f}",
            )
        ax.set(xlabel="sequence length n", title=title)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    ax = axes[1, 1]
    for a in (*ARMS_C52, "global_fused"):
        label = "self-attention (global, fused)" if a == "global_fused" else ARMS_C52[a]
        ax.loglog(
            N,
            [seconds[a][str(n)] for n in lengths],
            "o-",
            color=colours[a],
            ms=3,
            label=f"{label}: n^{exponents[a]['seconds']:.2f}",
        )
    ax.set(xlabel="sequence length n", title="seconds per sequence (1 thread, supporting)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.suptitle(f"one layer, d = {d_model}: attention against recurrence by sequence length", fontsize=10)
    cost_fig = save_figure(fig, ctx.figure_path("cost_against_length"))

    # the notes' "exponential": the counted products against a power law and an exponential fitted to them
    fig, axes = new_figure(2, 1, size=(5.0, 3.8))
    y = np.asarray(arms[attention]["product_macs"], dtype=float)
    p = np.polyfit(np.log(N), np.log(y), 1)
    q = np.polyfit(N, np.log(y), 1)
    fine = np.linspace(N[0], N[-1], 200)
    for ax, scale in zip(axes[0], ("log", "linear")):
        ax.plot(N, y, "o", color="k", label=f"counted ({ARMS_C52[attention]})")
        ax.plot(
            fine,
            np.exp(np.polyval(p, np.log(fine))),
            "-",
            color="C3",
            label=f"power law n^{p[0]:.2f} (R^2 {fits[attention]['loglog_r2']:.4f})",
        )
        ax.plot(
            fine,
            np.exp(np.polyval(q, fine)),
            "--",
            color="C0",
            label=f"exponential e^({q[0]:.2g} n) (R^2 {fits[attention]['loglinear_r2']:.4f})",
        )
        ax.set(xlabel="sequence length n", ylabel="multiply-adds of q k^T and weights x v", yscale="log", xscale=scale,
               title="log-log axes" if scale == "log" else "log-linear axes (an exponential is a straight line)")  # fmt: skip
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    ratios = numbers["doubling_ratios"][attention]
    fig.suptitle(f"doubling n multiplies the cost by {', '.join(f'{r:.2f}' for r in ratios)}", fontsize=10)
    fit_fig = save_figure(fig, ctx.figure_path("quadratic_not_exponential"))
    verdict, reason = judge_c52(numbers)
    return Finding(numbers, [cost_fig, fit_fig], verdict, reason)


# ============================================================================ C53


def previous_token_task(batch: int, length: int, vocab: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random tokens x (B, L) and the target y[:, i] = x[:, i - 1] (position 0 has no target: -1).
    Nothing in the content says where i - 1 is: only the positions do."""
    x = torch.randint(0, vocab, (batch, length), generator=g)
    y = torch.roll(x, 1, 1)
    y[:, 0] = -1
    return x, y


class PositionProbe(nn.Module):
    """Token embedding + a positional encoding ("sinusoidal", "learned" with max_len rows, or
    "none"), one self-attention layer, a linear read-out per position."""

    def __init__(self, vocab: int, d: int, heads: int, position: str, max_len: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        if position == "sinusoidal":
            self.position: nn.Module = SinusoidalPositionalEncoding(d, max_len)
        elif position == "learned":
            self.position = LearnedPositionalEmbedding(max_len, d)
        elif position == "none":
            self.position = nn.Identity()
        else:
            raise ValueError(f"position is 'sinusoidal', 'learned' or 'none', got {position!r}")
        self.att = MultiHeadAttention(d, heads)
        self.out = nn.Linear(d, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.position(self.embed(x))
        return self.out(self.att(h, h, h, need_weights=False)[0])


ARMS_C53 = ("sinusoidal", "learned", "none")
KEEPS = 0.9  # "generalizes": accuracy past L at least 90% of the accuracy within L


def judge_c53(numbers: dict) -> tuple[str, str]:
    """Holds if the sinusoidal table beats the learned one on the positions the test scores (past the
    training length L when the test is longer: the 95% t-interval over seeds of the paired
    difference lies above 0) and keeps at least 90% of its own accuracy within L there; holds with
    a correction if it beats the learned table but keeps less (defined past L is not the same as
    working past L); does not hold if the interval does not lie above 0 (e.g. when every tested
    position lies within the training length, where the learned rows are trained too)."""
    n = numbers
    d = n["sinusoidal_minus_learned"]
    a = n["arms"]
    where = f"positions {n['scored_positions'][0]}-{n['scored_positions'][1]}" + (
        " (past every training length)" if n["beyond"] else " (all within the training length)"
    )
    none = f", none {a['none']['scored_mean']:.1%}" if "none" in a else ""
    summary = (
        f"trained on length {n['train_length']}, tested on {n['test_length']}, {where}, {len(n['seeds'])} seeds: accuracy sinusoidal "
        f"{a['sinusoidal']['scored_mean']:.1%}, learned {a['learned']['scored_mean']:.1%}{none} (chance "
        f"{1 / n['vocab']:.1%}); within the training length {a['sinusoidal']['within_mean']:.1%} / {a['learned']['within_mean']:.1%}; "
        f"sinusoidal - learned {_interval_text(d)} (95% t-interval over seeds). "
        + (
            f"The learned rows past {n['train_length']} moved {n['learned_rows_past_training_moved']:.3g} from their random init (no "
            "gradient ever reached them); "
            if n["beyond"]
            else ""
        )
        + f"a learned table of {n['train_length']} rows refuses a longer input: {n['learned_table_error']}"
    )
    if d["low"] <= 0:
        return "does not hold", f"sinusoidal positions do not beat learned ones here: {summary}"
    kept = a["sinusoidal"]["scored_mean"] / max(a["sinusoidal"]["within_mean"], 1e-12)
    if kept >= KEEPS:
        return "holds", summary
    return "holds with a correction", (
        f"sinusoidal positions are defined past the training length and beat the learned table's untrained rows, but defined is not "
        f"generalized: the model keeps only {kept:.0%} of its accuracy there: {summary}"
    )


@experiment("C53", quick_verdict="holds with a correction", opposite={"beyond": False})
def run_c53(ctx: Context, beyond: bool = True, seeds: int | None = None, steps: int | None = None, train_length: int | None = None,
            vocab: int = 8, d_model: int = 32) -> Finding:  # fmt: skip
    """Train the position arms (same seed, same batches) on "the previous token" at train_length
    (quick 16, full 32; Adam 1e-2; quick 200 steps of 32, 3 seeds, without the "none" arm; full 800
    steps of 64, 5 seeds) and score them on 2 x train_length, at the positions past train_length.
    beyond=False tests on train_length itself (the opposite evidence: no position the learned table
    has not trained)."""
    L = train_length or ctx.size(16, 32)
    T = 2 * L if beyond else L
    seeds = seeds or ctx.size(3, 5)
    steps = steps or ctx.size(200, 800)
    batch = ctx.size(32, 64)
    scored = slice(L, T) if beyond else slice(1, T)
    names = ARMS_C53[:2] if ctx.quick else ARMS_C53
    results: dict[str, dict] = {a: {"scored": [], "within": [], "per_position": []} for a in names}
    moved = 0.0
    for s in range(seeds):
        seed = ctx.seed + s
        g_test = torch.Generator().manual_seed(10_000 + seed)
        xt, yt = previous_token_task(ctx.size(256, 1000), T, vocab, g_test)
        for a in names:
            torch.manual_seed(seed)
            model = PositionProbe(vocab, d_model, 1, a, T)
            init = model.position.weight.detach().clone() if a == "learned" else None
            opt = torch.optim.Adam(model.parameters(), lr=1e-2)
            g = torch.Generator().manual_seed(seed)
            for _ in range(steps):
                x, y = previous_token_task(batch, L, vocab, g)
                loss = F.cross_entropy(model(x)[:, 1:].reshape(-1, vocab), y[:, 1:].reshape(-1))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            with torch.no_grad():
                right = (model(xt).argmax(-1) == yt).float()  # (N, T); position 0 never right (target -1)
            results[a]["scored"].append(float(right[:, scored].mean()))
            results[a]["within"].append(float(right[:, 1:L].mean()))
            results[a]["per_position"].append(right.mean(0).tolist())
            if init is not None and T > L:
                moved = max(moved, float((model.position.weight.detach()[L:] - init[L:]).abs().max()))
            ctx.log(f"C53 {a} seed {seed}: scored {results[a]['scored'][-1]:.1%}, within {results[a]['within'][-1]:.1%}")
    # the learned table as most code builds it: exactly the training length's rows
    try:
        LearnedPositionalEmbedding(L, d_model)(torch.zeros(1, 2 * L, d_model))
        error = "none (it accepted the input)"
    except ValueError as e:
        error = f"ValueError: {e}"
    arms = {
        a: {
            "scored": [rounded(v, 4) for v in r["scored"]],
            "scored_mean": rounded(float(np.mean(r["scored"])), 4),
            "within": [rounded(v, 4) for v in r["within"]],
            "within_mean": rounded(float(np.mean(r["within"])), 4),
            "per_position_mean": [rounded(v, 3) for v in np.mean(r["per_position"], 0)],
        }
        for a, r in results.items()
    }
    numbers = {
        "task": "y[i] = x[i-1], random tokens: only the positions say where i - 1 is",
        "beyond": beyond,
        "train_length": L,
        "test_length": T,
        "scored_positions": [scored.start, scored.stop - 1],
        "vocab": vocab,
        "d_model": d_model,
        "steps": steps,
        "batch_size": batch,
        "seeds": [ctx.seed + s for s in range(seeds)],
        "model": "embedding + positions + 1 self-attention layer (1 head) + linear read-out; Adam lr 1e-2",
        "arms": arms,
        "sinusoidal_minus_learned": paired_interval(results["sinusoidal"]["scored"], results["learned"]["scored"]),
        "learned_rows_past_training_moved": rounded(moved, 3),
        "learned_table_error": error,
    }

    fig, axes = new_figure(2, 1, size=(5.0, 3.8))
    ax = axes[0, 0]
    pos = np.arange(T)
    colours = {"sinusoidal": "C3", "learned": "C0", "none": "C7"}
    for a in names:
        per = np.asarray(results[a]["per_position"])
        ax.plot(pos[1:], per.mean(0)[1:], "o-", ms=3, color=colours[a], label=a)
        if len(per) > 1:
            ax.fill_between(pos[1:], per.min(0)[1:], per.max(0)[1:], color=colours[a], alpha=0.15)
    if T > L:
        ax.axvspan(L - 0.5, T - 0.5, color="grey", alpha=0.15, label="never seen in training")
    ax.axhline(1 / vocab, color="k", ls=":", lw=1, label="chance")
    ax.set(xlabel="position", ylabel="accuracy (mean; band: min-max over seeds)", title=f"trained on length {L}, tested on {T}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    for i, a in enumerate(names):
        ax.bar(i, arms[a]["scored_mean"], color=colours[a], alpha=0.7)
        ax.scatter([i] * seeds, arms[a]["scored"], color="k", s=12, zorder=3)
    ax.set_xticks(range(len(names)), names)
    d = numbers["sinusoidal_minus_learned"]
    ax.set(ylabel=f"accuracy at positions {scored.start}-{scored.stop - 1}", ylim=(0, 1.05),
           title=f"sinusoidal - learned {_interval_text(d)}")  # fmt: skip
    fig.suptitle("the token one step back, found by position alone", fontsize=10)
    figure = save_figure(fig, ctx.figure_path("accuracy_by_position"))
    verdict, reason = judge_c53(numbers)
    return Finding(numbers, [figure], verdict, reason)


# ============================================================================ C54


def padded_batch(lengths: Sequence[int], total: int, d: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, total, d) with random content everywhere, and the key padding mask (B, total), True at
    the padded positions (index >= the sequence's length), MultiHeadAttention's convention."""
    x = torch.randn(len(lengths), total, d, generator=g)
    pad = torch.arange(total)[None, :] >= torch.as_tensor(lengths)[:, None]
    return x, pad


def judge_c54(numbers: dict) -> tuple[str, str]:
    """Holds if, for the arm under test, no output at a real position changes at all (exactly 0.0,
    the largest over every replacement of the padded content, on the scratch and the fused path),
    nor does the gradient reaching the padded inputs differ from exactly 0, while the unmasked
    control changes visibly (>= 1e-3 of the output scale): the check can see a dependence. A tested
    arm whose real outputs move: does not hold."""
    n = numbers
    t = n["tested"]
    arm = n["arms"][t]
    paths = ("scratch", "fused")
    exact = all(arm[p]["real_change"] == 0.0 and arm[p]["grad_to_padding"] == 0.0 for p in paths)
    seen = all(n["arms"]["no mask"][p]["real_change_relative"] >= 1e-3 for p in paths)
    summary = (
        f"{n['model']} on {n['batch']} sequences padded to {n['total_length']} (lengths {n['lengths'][0]}-{n['lengths'][-1]}), "
        f"{n['replacements']} replacements of the padded content (random, x1000, zeros, the real tokens copied): largest change of the "
        f"real positions' outputs with the mask {n['arms']['mask']['scratch']['real_change']:.3g} (scratch) / "
        f"{n['arms']['mask']['fused']['real_change']:.3g} (fused), gradient into the padding {n['arms']['mask']['scratch']['grad_to_padding']:.3g} / "
        f"{n['arms']['mask']['fused']['grad_to_padding']:.3g}; without it {n['arms']['no mask']['scratch']['real_change_relative']:.3g} / "
        f"{n['arms']['no mask']['fused']['real_change_relative']:.3g} of the output scale. The padded positions' own outputs change "
        f"either way ({arm['scratch']['pad_change']:.3g}): they are to be ignored downstream (loss, pooling)"
    )
    if t == "mask" and exact and seen:
        return "holds", summary
    if t == "mask" and exact:
        return "does not hold", f"the unmasked control does not change either: the check sees nothing. {summary}"
    return "does not hold", (
        f"with {t} the real positions' outputs change by {arm['scratch']['real_change_relative']:.3g} (scratch) / "
        f"{arm['fused']['real_change_relative']:.3g} (fused) of the output scale when only the padding changes. {summary}"
    )


@experiment("C54", quick_verdict="holds", opposite={"mask": False})
def run_c54(ctx: Context, mask: bool = True, layers: int = 2, d_model: int = 32, heads: int = 4) -> Finding:
    """A `layers`-layer post-norm encoder (deepnotes's TransformerEncoderLayer, untrained: the
    property is structural) on a padded batch; the padded content replaced several ways; outputs
    and gradients (of the real outputs' sum against a fixed random direction) compared with the
    original, with src_key_padding_mask and without, on both attention paths. mask=False tests the
    claim on the unmasked arm (the opposite evidence)."""
    g = torch.Generator().manual_seed(ctx.seed)
    total = ctx.size(12, 64)
    B = ctx.size(6, 32)
    lengths = sorted(int(v) for v in torch.randint(2, total, (B,), generator=g))
    lengths[-1] = total  # one full sequence: a batch pads to its longest
    x, pad = padded_batch(lengths, total, d_model, g)
    real = ~pad
    torch.manual_seed(ctx.seed)
    layer = TransformerEncoderLayer(d_model, heads, dim_feedforward=2 * d_model, dropout=0.0)
    model = TransformerEncoder(layer, layers).eval()
    direction = torch.randn(B, total, d_model, generator=g)

    def replacements(x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        r = torch.randn(x.shape, generator=g)
        copy = x.flip(0)  # other sequences' content
        return [(name, torch.where(pad[..., None], v, x)) for name, v in
                (("random", r), ("x1000", 1000 * r), ("zeros", torch.zeros_like(x)), ("copied", copy))]  # fmt: skip

    def run(inp: torch.Tensor, key_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        inp = inp.clone().requires_grad_(True)
        out = model(inp, src_key_padding_mask=key_mask)
        ((out * direction)[real].sum()).backward()  # a loss on the real positions only
        return out.detach(), inp.grad[pad].detach()

    arms: dict[str, dict] = {}
    curves: dict[str, dict[str, list[float]]] = {}
    for name, key_mask in (("mask", pad), ("no mask", None)):
        arms[name] = {}
        for path in ("scratch", "fused"):
            with use_fused(path == "fused"):
                base, _ = run(x, key_mask)
                real_change = pad_change = grad = 0.0
                per_position = torch.zeros(total)
                for _, xr in replacements(x):
                    out, gpad = run(xr, key_mask)
                    diff = (out - base).abs()
                    real_change = max(real_change, float(diff[real].max()))
                    pad_change = max(pad_change, float(diff[pad].max()))
                    grad = max(grad, float(gpad.abs().max()))
                    per_position = torch.maximum(per_position, diff.masked_fill(pad[..., None], 0).amax(dim=(0, 2)))
            scale = float(base[real].abs().max())
            arms[name][path] = {"real_change": rounded(real_change, 4), "real_change_relative": rounded(real_change / scale, 4),
                                "pad_change": rounded(pad_change, 4), "grad_to_padding": rounded(grad, 4), "output_scale": rounded(scale, 4)}  # fmt: skip
            curves.setdefault(name, {})[path] = per_position.tolist()
            ctx.log(f"C54 {name} {path}: real change {real_change:.3g}, gradient into padding {grad:.3g}")
    numbers = {
        "tested": "mask" if mask else "no mask",
        "model": f"{layers}-layer transformer encoder (d = {d_model}, {heads} heads, post-norm)",
        "batch": B,
        "total_length": total,
        "lengths": lengths,
        "replacements": 4,
        "arms": arms,
        "measure": "largest |output - original| over the real positions (and over the padded ones), and largest |gradient| reaching "
        "the padded inputs, over the replacements; loss = sum over the real positions of output . a fixed random direction",
    }

    fig, axes = new_figure(2, 1, size=(5.0, 3.8))
    ax = axes[0, 0]
    shown = torch.zeros(B, total)
    for i, n_ in enumerate(lengths):
        shown[i, n_:] = 1
    ax.imshow(shown.numpy(), cmap="Greys", aspect="auto", interpolation="nearest", vmin=0, vmax=2)
    ax.set(xlabel="position", ylabel="sequence", title="the batch: grey = padding (replaced 4 ways)")
    ax = axes[0, 1]
    floor = 1e-12
    for name, colour in (("mask", "C2"), ("no mask", "C3")):
        for path, style in (("scratch", "o-"), ("fused", "x--")):
            c = np.maximum(np.asarray(curves[name][path]), floor)
            ax.semilogy(np.arange(total), c, style, ms=3, color=colour, label=f"{name}, {path}")
    ax.axhline(floor, color="k", lw=0.8, ls=":")
    ax.text(0, floor * 2, "exactly 0 drawn here", fontsize=7)
    ax.set(xlabel="position", ylabel="largest |change| of the real outputs", title="what the padding changes, per position",
           ylim=(floor / 3, None))  # fmt: skip
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.suptitle(f"{numbers['model']}: changing only the padded content", fontsize=10)
    figure = save_figure(fig, ctx.figure_path("padding_changes"))
    verdict, reason = judge_c54(numbers)
    return Finding(numbers, [figure], verdict, reason)


# ============================================================================ C55


def lookup_task(batch: int, items: int, d: int, classes: int, g: torch.Generator, noise: float = 0.5):
    """`items` random keys (B, n, d) with a label each (B, n); the query is one key plus noise; the
    answer is that item's label. Returns (query, keys, labels, answer, target index)."""
    keys = torch.randn(batch, items, d, generator=g)
    labels = torch.randint(0, classes, (batch, items), generator=g)
    target = torch.randint(0, items, (batch,), generator=g)
    rows = torch.arange(batch)
    query = keys[rows, target] + noise * torch.randn(batch, d, generator=g)
    return query, keys, labels, labels[rows, target], target


def attention_weights(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """Soft attention's weights: softmax(scores / temperature); temperature 0 is the argmax as a
    one-hot vector (a "soft" attention that is hard: no gradient flows through it)."""
    if temperature == 0:
        return F.one_hot(scores.argmax(-1), scores.shape[-1]).to(scores.dtype)
    return torch.softmax(scores / temperature, dim=-1)


class Lookup(nn.Module):
    """A bilinear scorer s_j = (W q) . k_j / sqrt(d), values = a learned embedding of each item's
    label, a linear read-out. forward(..., mode): "soft" = sum_j w_j v_j; "sample" = v at one
    position drawn from softmax(s) (hard attention, Xu et al. 2015); "argmax" = v at the top score."""

    def __init__(self, d: int, classes: int, temperature: float = 1.0):
        super().__init__()
        self.W = nn.Linear(d, d, bias=False)
        self.value = nn.Embedding(classes, classes)
        self.out = nn.Linear(classes, classes)
        self.temperature = temperature

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return (keys @ self.W(query).unsqueeze(-1)).squeeze(-1) / math.sqrt(keys.shape[-1])

    def forward(self, query, keys, labels, mode: str = "soft", g: torch.Generator | None = None):
        s = self.scores(query, keys)
        v = self.value(labels)  # (B, n, C)
        if mode == "soft":
            w = attention_weights(s, self.temperature)
            return self.out((w.unsqueeze(-1) * v).sum(1)), s, None
        if mode == "argmax":
            idx = s.argmax(-1)
        else:  # the sample is an integer: nothing flows back from it to the scores
            idx = torch.multinomial(torch.softmax(s.detach(), -1), 1, generator=g).squeeze(-1)
        return self.out(v[torch.arange(len(idx)), idx]), s, idx


def reinforce_loss(
    logits: torch.Tensor, scores: torch.Tensor, idx: torch.Tensor, y: torch.Tensor, baseline: float
) -> tuple[torch.Tensor, float]:
    """Cross-entropy for the read-out (backpropagation, given the sample) plus the score-function
    term for the scorer: -(r - b) log p(idx), reward r = -cross-entropy, b a moving average
    (Williams 1992; Xu et al. 2015, section 4.1, also subtract a moving-average baseline)."""
    ce = F.cross_entropy(logits, y, reduction="none")
    reward = -ce.detach()
    logp = torch.log_softmax(scores, -1)[torch.arange(len(idx)), idx]
    return ce.mean() - ((reward - baseline) * logp).mean(), float(reward.mean())


ARMS_C55 = {
    "soft": "soft (backpropagation)",
    "hard_reinforce": "hard (REINFORCE)",
    "hard_backprop": "hard (backpropagation only)",
}


def scorer_gradient(model: Lookup, batch, arm: str, g: torch.Generator, baseline: float = 0.0) -> torch.Tensor:
    """The gradient each arm's training step gives the scorer W (zeros where none reaches it)."""
    q, k, lab, y, _ = batch
    model.zero_grad(set_to_none=True)
    if arm == "soft":
        logits, _, _ = model(q, k, lab, "soft")
        loss = F.cross_entropy(logits, y)
    else:
        logits, s, idx = model(q, k, lab, "sample", g)
        loss = reinforce_loss(logits, s, idx, y, baseline)[0] if arm == "hard_reinforce" else F.cross_entropy(logits, y)
    loss.backward()
    grad = model.W.weight.grad
    return torch.zeros_like(model.W.weight) if grad is None else grad.detach().clone()


def relative_variance(grads: list[torch.Tensor]) -> float:
    """E ||g - mean g||^2 / ||mean g||^2 over the estimates (0 for a deterministic estimator)."""
    G = torch.stack([g.flatten() for g in grads]).double()
    mean = G.mean(0)
    return float(((G - mean) ** 2).sum(1).mean() / mean.pow(2).sum().clamp_min(1e-300))


def steps_to_level(curves: list[list[float]], every: int, steps: int, level: float) -> dict:
    """The first evaluated step at which each seed's test accuracy reached `level`: the mean over
    the seeds that reached it, and how many did."""
    hits = []
    for c in curves:
        i = next((i for i, v in enumerate(c) if v >= level), None)
        if i is not None:
            hits.append(steps if i == len(c) - 1 else (i + 1) * every)
    return {"mean": rounded(float(np.mean(hits)), 3) if hits else None, "reached": len(hits), "runs": len(curves)}


def _steps_text(s: dict) -> str:
    if s["mean"] is None:
        return f"never (0 of {s['runs']})"
    return f"{s['mean']:.0f}" + (f" ({s['reached']} of {s['runs']})" if s["reached"] < s["runs"] else "")


def judge_c55(numbers: dict) -> tuple[str, str]:
    """Holds if soft attention's weights sum to 1 (largest error <= 1e-5 in float32: an identity of
    the softmax, checked), its output passes a float64 gradient check and its scorer gets a non-zero
    gradient; hard attention's scorer gets exactly no gradient from backpropagation, REINFORCE
    trains it (the 95% t-interval over seeds of its accuracy minus the backpropagation-only arm's
    lies above 0) and its gradient estimator is noisier than the soft one on the same batch (the
    sampling's own variance; the variance over batches is reported beside it). Does not hold otherwise (e.g. a "soft" attention at temperature 0, the argmax:
    no gradient reaches its scorer)."""
    n = numbers
    s, a = n["soft"], n["arms"]
    d = n["reinforce_minus_backprop_only"]
    differentiable = s["weight_sum_error_float32"] <= 1e-5 and s["gradcheck"] and s["scorer_grad_norm"] > 0
    no_backprop = n["hard"]["backprop_scorer_grad_norm"] == 0.0
    trained = d["low"] > 0
    v = n["gradient_relative_variance"]
    noisier = v["hard_reinforce"]["one_batch"] > v["soft"]["one_batch"]  # the sampling's own noise, on the same data
    summary = (
        f"lookup among {n['items']} items ({n['classes']} labels, chance ~{n['chance']:.0%}), {n['steps']} steps, {len(n['seeds'])} seeds: "
        f"accuracy soft {a['soft']['mean']:.1%}, hard + REINFORCE {a['hard_reinforce']['mean']:.1%}, hard with backpropagation only "
        f"{a['hard_backprop']['mean']:.1%}; steps to 90% test accuracy (mean over the seeds that got there) soft "
        f"{_steps_text(n['steps_to_90']['soft'])}, REINFORCE {_steps_text(n['steps_to_90']['hard_reinforce'])}; "
        f"REINFORCE - backprop-only {_interval_text(d)}, soft - REINFORCE "
        f"{_interval_text(n['soft_minus_reinforce'])} (95% t-intervals over seeds); soft weights sum to 1 within "
        f"{s['weight_sum_error_float32']:.2g} (float32) / {s['weight_sum_error_float64']:.2g} (float64) - an identity of the softmax, "
        f"checked, not a finding; gradient check {'passed' if s['gradcheck'] else 'failed'}; scorer gradient norm soft "
        f"{s['scorer_grad_norm']:.3g}, hard by backpropagation {n['hard']['backprop_scorer_grad_norm']:.3g}; relative gradient variance "
        f"over batches soft {v['soft']['over_batches']:.3g}, REINFORCE {v['hard_reinforce']['over_batches']:.3g}; on one batch (sampling "
        f"noise alone) soft {v['soft']['one_batch']:.3g}, REINFORCE {v['hard_reinforce']['one_batch']:.3g}"
    )
    if differentiable and no_backprop and trained and noisier:
        return "holds", summary
    what = []
    if not differentiable:
        what.append(f"the soft arm (temperature {n['temperature']}) is not a differentiable weighted average: scorer gradient norm "
                    f"{s['scorer_grad_norm']:.3g}")  # fmt: skip
    if not no_backprop:
        what.append("backpropagation reaches the hard arm's scorer")
    if not trained:
        what.append("REINFORCE does not train hard attention beyond backpropagation alone")
    if not noisier:
        what.append("REINFORCE's gradient is not noisier than the soft one")
    return "does not hold", "; ".join(what) + ". " + summary


@experiment("C55", quick_verdict="holds", opposite={"temperature": 0.0})
def run_c55(ctx: Context, temperature: float = 1.0, seeds: int | None = None, steps: int | None = None, items: int = 8,
            d: int = 16, classes: int = 8) -> Finding:  # fmt: skip
    """Train the three arms from the same initial weights on the same batches (Adam 1e-2, batch 64;
    quick 200 steps, 3 seeds; full 1500 steps, 5 seeds), scoring test accuracy on the way (hard
    arms at test: the top-scoring position). Gradients at the initial weights: 64 estimates on one
    batch and on 64 batches. temperature scales the soft arm's softmax; 0 makes it the argmax (the
    opposite evidence)."""
    seeds = seeds or ctx.size(3, 5)
    steps = steps or ctx.size(200, 1500)
    every = max(1, steps // 50)  # evaluations: fine enough to time "steps to 90%"
    estimates = ctx.size(32, 64)
    accs: dict[str, list[float]] = {a: [] for a in ARMS_C55}
    curves: dict[str, list[list[float]]] = {a: [] for a in ARMS_C55}
    variance: dict[str, dict[str, list[float]]] = {a: {"one_batch": [], "over_batches": []} for a in ("soft", "hard_reinforce")}
    grad_norms: dict[str, list[float]] = {a: [] for a in ARMS_C55}
    for s in range(seeds):
        seed = ctx.seed + s
        test = lookup_task(2000, items, d, classes, torch.Generator().manual_seed(10_000 + seed))
        torch.manual_seed(seed)
        init = Lookup(d, classes, temperature).state_dict()
        for arm in ARMS_C55:
            model = Lookup(d, classes, temperature)
            model.load_state_dict(init)
            # gradient estimators at the initial weights
            g = torch.Generator().manual_seed(seed)
            gs = torch.Generator().manual_seed(20_000 + seed)
            one = lookup_task(64, items, d, classes, g)
            grads_one = [scorer_gradient(model, one, arm, gs) for _ in range(estimates)]
            grads_many = [scorer_gradient(model, lookup_task(64, items, d, classes, g), arm, gs) for _ in range(estimates)]
            grad_norms[arm].append(float(torch.stack(grads_many).norm(dim=(1, 2)).mean()))
            if arm in variance:
                variance[arm]["one_batch"].append(relative_variance(grads_one))
                variance[arm]["over_batches"].append(relative_variance(grads_many))
            # training
            opt = torch.optim.Adam(model.parameters(), lr=1e-2)
            g = torch.Generator().manual_seed(seed)
            gs = torch.Generator().manual_seed(30_000 + seed)
            baseline, curve = 0.0, []
            for step in range(1, steps + 1):
                q, k, lab, y, _ = lookup_task(64, items, d, classes, g)
                if arm == "soft":
                    loss = F.cross_entropy(model(q, k, lab, "soft")[0], y)
                else:
                    logits, sc, idx = model(q, k, lab, "sample", gs)
                    if arm == "hard_reinforce":
                        loss, mean_reward = reinforce_loss(logits, sc, idx, y, baseline)
                        baseline = 0.9 * baseline + 0.1 * mean_reward
                    else:
                        loss = F.cross_entropy(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if step % every == 0 or step == steps:
                    with torch.no_grad():
                        out = model(*test[:3], "soft" if arm == "soft" else "argmax")[0]
                    curve.append(float((out.argmax(-1) == test[3]).float().mean()))
            accs[arm].append(curve[-1])
            curves[arm].append(curve)
            ctx.log(f"C55 {arm} seed {seed}: accuracy {curve[-1]:.1%}")

    # soft attention's weights and gradient, checked on the first seed's test batch
    q, k, lab, _, _ = lookup_task(256, items, d, classes, torch.Generator().manual_seed(ctx.seed))
    torch.manual_seed(ctx.seed)
    probe = Lookup(d, classes, temperature)
    with torch.no_grad():
        s32 = probe.scores(q, k)
        w32 = attention_weights(s32, temperature)
        w64 = attention_weights(s32.double(), temperature)
    v64 = torch.randn(256, items, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(ctx.seed))
    scores64 = s32[:4].double().requires_grad_(True)
    check = bool(
        torch.autograd.gradcheck(lambda t: (attention_weights(t, temperature).unsqueeze(-1) * v64[:4]).sum(1), (scores64,))
    )
    numbers = {
        "task": "a noisy query finds its key among the items; the answer is that item's label",
        "items": items,
        "d": d,
        "classes": classes,
        "chance": rounded(1 / items + (1 - 1 / items) / classes, 3),  # the right item, or another with the same label
        "temperature": temperature,
        "steps": steps,
        "seeds": [ctx.seed + s for s in range(seeds)],
        "optimizer": "Adam lr 1e-2, batch 64; REINFORCE baseline: moving average of the reward (0.9)",
        "arms": {
            a: {"model": ARMS_C55[a], "accuracy": [rounded(v, 4) for v in accs[a]], "mean": rounded(float(np.mean(accs[a])), 4)}
            for a in ARMS_C55
        },
        "reinforce_minus_backprop_only": paired_interval(accs["hard_reinforce"], accs["hard_backprop"]),
        "soft_minus_reinforce": paired_interval(accs["soft"], accs["hard_reinforce"]),
        "steps_to_90": {a: steps_to_level(curves[a], every, steps, 0.9) for a in ARMS_C55},
        "soft": {
            "weight_sum_error_float32": rounded(float((w32.sum(-1) - 1).abs().max()), 3),
            "weight_sum_error_float64": rounded(float((w64.sum(-1) - 1).abs().max()), 3),
            "gradcheck": check,
            "scorer_grad_norm": rounded(float(np.mean(grad_norms["soft"])), 4),
        },
        "hard": {
            "weights": "one position: a one-hot vector (sums to 1 by construction)",
            "backprop_scorer_grad_norm": rounded(float(np.mean(grad_norms["hard_backprop"])), 4),
            "reinforce_scorer_grad_norm": rounded(float(np.mean(grad_norms["hard_reinforce"])), 4),
        },
        "gradient_relative_variance": {a: {k: rounded(float(np.mean(v)), 4) for k, v in r.items()} for a, r in variance.items()},
        "variance_measure": f"E||g - mean g||^2 / ||mean g||^2 of the scorer's gradient at the initial weights, {estimates} estimates "
        "(one batch: the sampling noise alone; over batches: the data noise too), mean over seeds",
    }

    fig, axes = new_figure(2, 1, size=(5.0, 3.8))
    ax = axes[0, 0]
    colours = {"soft": "C0", "hard_reinforce": "C3", "hard_backprop": "C7"}
    for a in ARMS_C55:
        c = np.asarray(curves[a])
        x = np.arange(1, c.shape[1] + 1) * every
        x[-1] = steps
        ax.plot(x, c.mean(0), "-", color=colours[a], label=ARMS_C55[a])
        if len(c) > 1:
            ax.fill_between(x, c.min(0), c.max(0), color=colours[a], alpha=0.2)
    ax.axhline(numbers["chance"], color="k", ls=":", lw=1, label="chance")
    ax.set(xlabel="step", ylabel="test accuracy", title="training (mean; band: min-max over seeds)", ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    v = numbers["gradient_relative_variance"]
    labels = ["one batch", "over batches"]
    xs = np.arange(2)
    for i, a in enumerate(("soft", "hard_reinforce")):
        vals = [max(v[a]["one_batch"], 1e-6), max(v[a]["over_batches"], 1e-6)]
        ax.bar(xs + (i - 0.5) * 0.38, vals, 0.38, color=colours[a], label=ARMS_C55[a])
    ax.set_yscale("log")
    ax.set_xticks(xs, labels)
    ax.set(ylabel="relative variance of the scorer's gradient", title="gradient noise at the initial weights (0 drawn at 1e-6)")
    ax.legend(fontsize=7)
    fig.suptitle(f"soft against hard attention (temperature {temperature:g}), {len(numbers['seeds'])} seeds", fontsize=10)
    figure = save_figure(fig, ctx.figure_path("soft_vs_hard"))
    verdict, reason = judge_c55(numbers)
    return Finding(numbers, [figure], verdict, reason)


# ============================================================================ C56


def two_lookups_task(
    batch: int, length: int, vocab: int, offsets: Sequence[int], g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random tokens x (B, L) and targets y (B, L, len(offsets)): y[:, i, j] = x[:, i - offsets[j]]
    (positions i < max(offsets) are not scored)."""
    x = torch.randint(0, vocab, (batch, length), generator=g)
    return x, torch.stack([torch.roll(x, o, 1) for o in offsets], -1)


class HeadsProbe(nn.Module):
    """Token embedding + learned positions, one MultiHeadAttention(d, heads) and a linear read-out
    of `outputs` tokens per position: the same parameters for any number of heads."""

    def __init__(self, vocab: int, d: int, heads: int, length: int, outputs: int):
        super().__init__()
        self.vocab = vocab
        self.embed = nn.Embedding(vocab, d)
        self.position = LearnedPositionalEmbedding(length, d)
        self.att = MultiHeadAttention(d, heads)
        self.out = nn.Linear(d, vocab * outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.position(self.embed(x))
        return self.out(self.att(h, h, h, need_weights=False)[0]).unflatten(-1, (-1, self.vocab))


def judge_c56(numbers: dict) -> tuple[str, str]:
    """Holds if the multi-head layer beats one head of the same width on the task (the 95%
    t-interval over seeds of the paired difference in accuracy - every output right - lies above
    0) at the same counted multiply-adds and parameters (for every head count measured). Does not
    hold if the interval does not lie above 0 (e.g. a task of one relation: one head suffices) or
    the costs differ."""
    n = numbers
    d = n["multi_minus_single"]
    macs = list(n["macs_by_heads"].values())
    params = list(n["params_by_heads"].values())
    same_cost = max(macs) == min(macs) and max(params) == min(params)
    a = n["arms"]
    heads = ", ".join(f"{h} head{'s' if h != '1' else ''} {a[h]['mean']:.1%}" for h in a)
    secs = ", ".join(f"{h}: {v * 1e3:.2f} ms" for h, v in n["seconds_by_heads"].items())
    summary = (
        f"task: output the tokens {' and '.join(str(o) for o in n['offsets'])} steps back ({n['relations']} relation"
        f"{'s' if n['relations'] != 1 else ''}), length {n['length']}, d = {n['d_model']}, {n['steps']} steps, {len(n['seeds'])} seeds: "
        f"accuracy (all outputs right) {heads}; per output token, 1 head {a['1']['per_token_mean']:.1%}; {n['multi_heads']} heads - 1 head "
        f"{_interval_text(d)} (95% t-interval over seeds); multiply-adds per forward "
        + ("identical" if max(macs) == min(macs) else "different")
        + f" for {', '.join(n['macs_by_heads'])} heads ({macs[0]:,}), parameters {params[0]:,} each; seconds per forward (supporting) {secs}"
        + (
            " - several heads are not faster: the same multiply-adds in more, smaller products"
            if n["seconds_by_heads"]["1"] <= min(n["seconds_by_heads"].values())
            else ""
        )
    )
    if d["low"] > 0 and same_cost:
        return "holds", summary
    if not same_cost:
        return "does not hold", f"the head counts do not cost the same: {summary}"
    return "does not hold", f"several heads do not beat one head here: {summary}"


@experiment("C56", quick_verdict="holds", opposite={"offsets": (1, 1)})
def run_c56(ctx: Context, offsets: Sequence[int] = (1, 3), seeds: int | None = None, steps: int | None = None, length: int | None = None,
            vocab: int = 8, d_model: int = 32, multi_heads: int = 2) -> Finding:  # fmt: skip
    """Train 1 head and `multi_heads` heads (full: also 4) from the same seed on the same batches
    (Adam 3e-3, batch 64; quick 250 steps, 3 seeds; full 1000 steps, 5 seeds); count multiply-adds
    and time one forward for 1, 2, 4 and 8 heads. offsets=(1, 1) asks for one relation twice (the
    opposite evidence)."""
    offsets = tuple(int(o) for o in offsets)
    seeds = seeds or ctx.size(3, 5)
    steps = steps or ctx.size(250, 1000)
    L = length or ctx.size(8, 16)
    first = max(offsets)  # the first scored position
    head_counts = sorted({1, multi_heads} | (set() if ctx.quick else {4}))
    arms: dict[str, dict] = {}
    maps: dict[int, torch.Tensor] = {}
    for h in head_counts:
        accs, per_token = [], []
        for s in range(seeds):
            seed = ctx.seed + s
            torch.manual_seed(seed)
            model = HeadsProbe(vocab, d_model, h, L, len(offsets))
            opt = torch.optim.Adam(model.parameters(), lr=3e-3)
            g = torch.Generator().manual_seed(seed)
            for _ in range(steps):
                x, y = two_lookups_task(64, L, vocab, offsets, g)
                loss = F.cross_entropy(model(x)[:, first:].reshape(-1, vocab), y[:, first:].reshape(-1))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            x, y = two_lookups_task(ctx.size(256, 1000), L, vocab, offsets, torch.Generator().manual_seed(10_000 + seed))
            with torch.no_grad(), record_attention(model) as recorded:
                right = model(x)[:, first:].argmax(-1) == y[:, first:]
            accs.append(float(right.all(-1).float().mean()))
            per_token.append(float(right.float().mean()))
            if s == 0:
                maps[h] = recorded[0].mean(0)  # (heads, L, L), averaged over the test batch
            ctx.log(f"C56 {h} head(s) seed {seed}: {accs[-1]:.1%} (per token {per_token[-1]:.1%})")
        arms[str(h)] = {"accuracy": [rounded(v, 4) for v in accs], "mean": rounded(float(np.mean(accs)), 4),
                        "per_token_mean": rounded(float(np.mean(per_token)), 4)}  # fmt: skip

    # cost: counted multiply-adds (scratch path), parameters and seconds per forward, 1 to 8 heads
    macs, params, secs = {}, {}, {}
    x = torch.randint(0, vocab, (64, L))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with use_fused(False):
            for h in (1, 2, 4, 8):
                torch.manual_seed(ctx.seed)
                model = HeadsProbe(vocab, d_model, h, L, len(offsets)).eval()
                macs[str(h)] = count_ops(lambda: model(x))["macs"]
                params[str(h)] = sum(p.numel() for p in model.parameters())
                secs[str(h)] = rounded(fastest(lambda: model(x), ctx.size(3, 20)), 4)
    finally:
        torch.set_num_threads(threads)
    numbers = {
        "task": "random tokens; output the tokens at the given offsets back, all at once",
        "offsets": list(offsets),
        "relations": len(set(offsets)),
        "length": L,
        "vocab": vocab,
        "d_model": d_model,
        "multi_heads": multi_heads,
        "steps": steps,
        "seeds": [ctx.seed + s for s in range(seeds)],
        "model": "embedding + learned positions + 1 MultiHeadAttention(d, heads) + linear read-out; Adam lr 3e-3, batch 64",
        "arms": arms,
        "multi_minus_single": paired_interval(arms[str(multi_heads)]["accuracy"], arms["1"]["accuracy"]),
        "macs_by_heads": macs,
        "params_by_heads": params,
        "seconds_by_heads": secs,
        "cost": f"multiply-adds of one forward of a batch of 64 x {L} tokens (scratch path, counted); seconds: 1 thread, fastest of "
        f"{ctx.size(3, 20)}",
    }

    fig, axes = new_figure(len(head_counts) + 1, 1, size=(3.6, 3.6))
    q = L - 1  # the last query position
    for ax, h in zip(axes[0], head_counts):
        m = maps[h][:, q, :].numpy()  # (heads, L)
        ax.imshow(m, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        ax.set(xlabel="key position", ylabel="head", title=f"{h} head(s): {arms[str(h)]['mean']:.0%}\nweights of query {q}",
               yticks=range(h), xticks=range(0, L, max(1, L // 8)))  # fmt: skip
        for o in offsets:
            ax.axvline(q - o, color="w", ls=":", lw=1)
    ax = axes[0, -1]
    hs = [1, 2, 4, 8]
    ax.bar(np.arange(4), [macs[str(h)] / 1e6 for h in hs], color="C0")
    ax.set_xticks(np.arange(4), [str(h) for h in hs])
    ax.set(xlabel="heads", ylabel="multiply-adds per forward (millions, counted)", title="the same cost for any head count")
    fig.suptitle(
        f"output the tokens {', '.join(map(str, offsets))} back: attention weights (dotted: the targets) and cost", fontsize=10
    )
    figure = save_figure(fig, ctx.figure_path("heads"))
    verdict, reason = judge_c56(numbers)
    return Finding(numbers, [figure], verdict, reason)
