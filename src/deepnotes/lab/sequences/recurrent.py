"""C35-C37, C51: recurrent networks (장기 의존성, GRU 파라미터 수, 그래디언트 클리핑, 양방향 RNN).

C35  the recall task (deepnotes.data.sequence_tasks.recall_task: remember the first of
     distance + 1 tokens, the others random distractors from 8 tokens of their own) at several
     distances; a vanilla tanh RNN, an LSTM
     and a GRU of the same width trained with one recipe on fresh batches; test accuracy against
     distance (chance 1/8), several seeds, the 95% t-interval of the paired (same seed)
     difference gated - RNN at the longest distance. The gated arms start from the chrono
     initialization (Tallec & Ollivier 2018, "Can recurrent neural networks warp time?",
     arXiv:1804.11188): forget (LSTM) / update (GRU) gate biases log(U(1, T)), so that their
     time constants span the sequence; a vanilla RNN has no gate, so no time constant to set.
     (With torch's all-uniform init the LSTM's forget gate starts near 0.5 and the signal of the
     first token shrinks as 0.5^distance before the gate has learned to hold it.)
C36  parameter counts of deepnotes's LSTM / GRU / RNN and torch's nn.LSTM / nn.GRU / nn.RNN at
     several sizes (input, hidden, layers, directions) against the formula per layer and
     direction G H (I + H) + 2 G H, G = weight blocks (LSTM 4: i, f, g, o; GRU 3: r, z, n; RNN 1).
     GRU / LSTM = 3/4 at every size: an identity of the layout, not a measurement. The notes'
     "2 gates vs 3" counts the sigmoid gates (GRU r, z; LSTM i, f, o); each model also has a tanh
     candidate (GRU n, LSTM g) with a block of its own: 3 blocks vs 4, not 2 vs 3.
C37  a vanilla tanh RNN with a large recurrent init (W_hh = gain x a random orthogonal matrix:
     the chaotic regime where gradients explode, Pascanu, Mikolov & Bengio 2013, arXiv:1211.5063)
     on the adding problem (Le, Jaitly & Hinton 2015, arXiv:1504.00941), plain SGD, the same
     seeds and batches with and without clipping the gradient norm (deepnotes.optim.clip):
     gradient norms per step, the training loss and the test MSE at the end (baseline 1/6 for
     predicting 1.0), the 95% t-interval of the paired difference in test MSE.
C51  (a) the lookahead task (label each position with the token `offset` steps later): a
     bidirectional GRU against a unidirectional one of the same hidden size per direction, test
     accuracy (chance 1/8); (b) next-token prediction on a seeded Markov chain: the bidirectional
     model's loss with the future visible (its backward half reads the very token it predicts:
     near 0, cheating) against its causal loss (run on each prefix alone, as generation must) and
     the unidirectional model's, with the chain's entropy rate as the floor of any causal model.

All recurrent layers are deepnotes's own (deepnotes.layers.recurrent, fused kernels for training);
everything runs on the CPU with one thread, which the numbers state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.data.sequence_tasks import (
    ADDING_BASELINE_MSE,
    IGNORE,
    adding_problem,
    lookahead_task,
    markov_chain,
    markov_entropy_rate,
    markov_sequences,
    recall_task,
)
from deepnotes.lab import Context, Finding, experiment
from deepnotes.lab.common import image_paired_interval, new_figure, paired_interval, rounded, save_figure
from deepnotes.layers.recurrent import GRU, LSTM, RNN
from deepnotes.optim.clip import clip_grad_norm_

KINDS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
NAMES = {"rnn": "vanilla RNN (tanh)", "lstm": "LSTM", "gru": "GRU"}
BLOCKS = {"rnn": 1, "lstm": 4, "gru": 3}  # weight blocks per layer and direction, torch's order



class one_thread:
    """Run the block with torch on one thread (steadier clocks, and what the budgets assume)."""

    def __enter__(self):
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)


class SeqModel(nn.Module):
    """Tokens (embedding) or real vectors -> one recurrent layer -> a linear read-out, at the last
    step (per_step=False) or at every step (per_step=True)."""

    def __init__(self, kind: str, inputs: int, hidden: int, outputs: int, *, tokens: bool = True, per_step: bool = False,
                 bidirectional: bool = False, embed: int = 16):  # fmt: skip
        super().__init__()
        self.embed = nn.Embedding(inputs, embed) if tokens else None
        self.rnn = KINDS[kind](embed if tokens else inputs, hidden, batch_first=True, bidirectional=bidirectional)
        self.out = nn.Linear(hidden * (2 if bidirectional else 1), outputs)
        self.per_step = per_step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(self.embed(x) if self.embed is not None else x)
        return self.out(h if self.per_step else h[:, -1])


@torch.no_grad()
def chrono_init(rnn: nn.Module, horizon: int, generator: torch.Generator) -> None:
    """Tallec & Ollivier 2018's chrono initialization: the gate that keeps the state (LSTM's forget
    gate f, GRU's update gate z) gets bias log(u), u ~ U(1, horizon - 1), so its time constants
    1 / (1 - sigmoid(b)) ~ u span 1..horizon; the LSTM's input gate gets -log(u). Only the
    bias_hh blocks are set (torch adds b_ih + b_hh; the b_ih blocks become 0)."""
    mode = type(rnn).__name__.lower()
    if mode not in ("lstm", "gru"):
        return
    H = rnn.hidden_size
    b = torch.log(torch.empty(H).uniform_(1.0, max(2.0, horizon - 1.0), generator=generator))
    for name, p in rnn.named_parameters():
        if not name.startswith("bias_"):
            continue
        keep = slice(H, 2 * H)  # f in (i, f, g, o); z in (r, z, n): the second block of both
        if name.startswith("bias_ih"):
            p[keep] = 0.0
            if mode == "lstm":
                p[:H] = 0.0
        else:
            p[keep] = b
            if mode == "lstm":
                p[:H] = -b


def _stamp(seed: int, step: int) -> int:
    return 1_000_003 * (seed + 1) + step  # a different batch seed for every (run, step)


def interval(a: Sequence[float], b: Sequence[float], items_a: torch.Tensor, items_b: torch.Tensor) -> dict:
    """mean(a - b) with its 95% interval: over seeds (paired t-interval) with 2+ seeds; with one seed
    over the test items of that run (normal interval of the per-item differences, e.g. right/wrong
    per sequence: the uncertainty of the test sample only)."""
    if len(a) > 1:
        return paired_interval(a, b) | {"over": "seeds"}
    return image_paired_interval(items_a, items_b) | {"over": f"{len(items_a)} test items"}


def _over(d: dict) -> str:
    return "95% t-interval of paired differences over seeds" if d["over"] == "seeds" else f"95% interval over {d['over']}, 1 seed"


# ============================================================================ C35


def judge_c35(numbers: dict) -> tuple[str, str]:
    """At the longest distance, the 95% t-interval over seeds of the paired difference in test
    accuracy, gated arm - vanilla RNN, for the LSTM and the GRU. Holds if both intervals lie above 0;
    holds with a correction if only one does; does not hold if neither (e.g. at distance 1, where
    every arm solves the task, or with the "gated" arms replaced by RNNs)."""
    n = numbers
    far = str(n["distances"][-1])
    near = str(n["distances"][0])
    acc = {a: n["arms"][a]["mean"] for a in n["arms"]}
    diffs = n["gated_minus_rnn"]
    above = [g for g in ("lstm", "gru") if diffs[g]["low"] > 0]
    seeds = len(n["seeds"])
    what = f"{seeds} seed{'s' if seeds != 1 else ''}"
    per = "; ".join(
        f"{NAMES[a]} " + " / ".join(f"{acc[a][d]:.1%}" for d in map(str, n["distances"])) for a in ("rnn", "lstm", "gru")
    )
    summary = (
        f"recall of the first token across {', '.join(map(str, n['distances']))} distractor steps (vocabulary {n['vocab']}, chance "
        f"{1 / n['vocab']:.1%}), hidden {n['hidden']}, {n['steps']} Adam steps of {n['batch']} fresh sequences, {what}; "
        f"mean test accuracy by distance: {per}; at distance {far}, LSTM - RNN {diffs['lstm']['mean']:+.1%} "
        f"[{diffs['lstm']['low']:+.1%}, {diffs['lstm']['high']:+.1%}], GRU - RNN {diffs['gru']['mean']:+.1%} "
        f"[{diffs['gru']['low']:+.1%}, {diffs['gru']['high']:+.1%}] ({_over(diffs['gru'])}); the RNN at "
        f"distance {near}: {acc['rnn'][near]:.1%}"
    )
    straddle = [g for g in ("lstm", "gru") if diffs[g]["low"] <= 0 < diffs[g]["high"]]
    note = f" ({' and '.join(NAMES[g] for g in straddle)}: the interval straddles 0)" if straddle else ""
    if len(above) == 2:
        return "holds", summary
    if above:
        other = NAMES[next(g for g in ("lstm", "gru") if g not in above)]
        return "holds with a correction", f"only the {NAMES[above[0]]} beats the RNN beyond the interval, the {other} does not{note}: {summary}"
    return "does not hold", f"no gated arm beats the RNN beyond the interval at distance {far}{note}: {summary}"


@experiment("C35", quick_verdict="holds", opposite={"distances": (1,)})
def run_c35(ctx: Context, distances: Sequence[int] | None = None, gated: Sequence[str] = ("lstm", "gru"), seeds: int | None = None,
            steps: int | None = None, hidden: int = 32, vocab: int = 8, distractors: int = 8, batch: int = 64, lr: float = 1e-2) -> Finding:  # fmt: skip
    """Recall the first token across `distance` random distractors. Quick: distances 2 and 30, 150 steps, 1 seed (the interval over
    test sequences);
    full: 5, 25, 50, 100, 600 steps, 3 seeds. One recipe for all arms: Adam lr 1e-2, batch 64
    (fresh sequences every step), gradient norm clipped at 1 (the same for all, so the arms differ
    only in the cell), test on 1,000 held-out sequences. gated=("rnn", "rnn") puts vanilla RNNs in
    the gated arms (a control); distances=(1,) is the opposite evidence (no long range to lose)."""
    distances = [int(d) for d in (distances or ctx.size((2, 30), (5, 25, 50, 100)))]
    seeds = seeds or ctx.size(1, 3)
    steps = steps or ctx.size(150, 600)
    if len(gated) != 2 or any(g not in KINDS for g in gated):
        raise ValueError(f"gated names two of {sorted(KINDS)} for the LSTM and GRU arms, got {gated!r}")
    sources = {"rnn": "rnn", "lstm": gated[0], "gru": gated[1]}
    arms: dict[str, dict] = {a: {"model": NAMES[s] if a == s else f"{NAMES[s]} (in the {NAMES[a]} arm)", "accuracy": {}, "mean": {}, "curve": {}}
                             for a, s in sources.items()}  # fmt: skip
    first_seed_right: dict[str, torch.Tensor] = {}
    with one_thread():
        for d in distances:
            test_x, test_y = recall_task(1000, d, vocab, distractors=distractors, seed=10_000_000 + ctx.seed)
            for arm, source in sources.items():
                accs, curves, right = [], [], None
                for s in range(seeds):
                    seed = ctx.seed + s
                    torch.manual_seed(seed)
                    model = SeqModel(source, vocab + distractors, hidden, vocab)
                    chrono_init(model.rnn, d + 1, torch.Generator().manual_seed(seed))
                    opt = torch.optim.Adam(model.parameters(), lr=lr)
                    curve = []
                    for i in range(steps):
                        x, y = recall_task(batch, d, vocab, distractors=distractors, seed=_stamp(seed, i))
                        loss = F.cross_entropy(model(x), y)
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        clip_grad_norm_(model.parameters(), 1.0)
                        opt.step()
                        curve.append(loss.item())
                    with torch.no_grad():
                        hit = model(test_x).argmax(1) == test_y
                    accs.append(float(hit.float().mean()))
                    right = hit if right is None else right
                    curves.append(curve)
                    ctx.log(f"C35 distance {d} {arm} ({source}) seed {seed}: {accs[-1]:.1%}")
                arms[arm]["accuracy"][str(d)] = [rounded(a, 4) for a in accs]
                arms[arm]["mean"][str(d)] = rounded(float(np.mean(accs)), 4)
                arms[arm]["curve"][str(d)] = [rounded(v, 4) for v in np.mean(curves, 0)[:: max(1, steps // 50)]]
                if d == distances[-1]:
                    first_seed_right[arm] = right
    far = str(distances[-1])
    numbers = {
        "task": f"recall the first token across `distance` random distractors (recall_task, {distractors} distractor tokens)",
        "distances": distances,
        "vocab": vocab,
        "hidden": hidden,
        "steps": steps,
        "batch": batch,
        "recipe": f"Adam lr {lr:g}, batch {batch} fresh sequences per step, gradient norm clipped at 1, embedding 16, "
        "chrono init of the gated arms' keep-gate biases (horizon distance + 1)",
        "seeds": [ctx.seed + s for s in range(seeds)],
        "gated": list(gated),
        "arms": arms,
        "gated_minus_rnn": {g: interval(arms[g]["accuracy"][far], arms["rnn"]["accuracy"][far], first_seed_right[g], first_seed_right["rnn"])
                            for g in ("lstm", "gru")},  # fmt: skip
        "threads": 1,
    }

    fig, axes = new_figure(2, 1, size=(5.0, 3.8))
    colours = {"rnn": "C3", "lstm": "C0", "gru": "C2"}
    ax = axes[0, 0]
    for a in arms:
        m = [arms[a]["mean"][str(d)] for d in distances]
        ax.plot(distances, m, "o-", color=colours[a], label=arms[a]["model"])
        for d in distances:
            pts = arms[a]["accuracy"][str(d)]
            ax.scatter([d] * len(pts), pts, color=colours[a], s=10, alpha=0.5)
    ax.axhline(1 / vocab, ls=":", color="grey", label=f"chance 1/{vocab}")
    ax.set(xlabel="distance (distractor steps between the token and the answer)", ylabel="test accuracy", ylim=(-0.02, 1.02),
           title="recall accuracy against distance (dots: seeds)")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    for a in arms:
        c = arms[a]["curve"][far]
        ax.plot(np.linspace(1, steps, len(c)), c, color=colours[a], label=arms[a]["model"])
    ax.axhline(math.log(vocab), ls=":", color="grey", label=f"log {vocab} (chance)")
    ax.set(xlabel="step", ylabel="training cross-entropy (mean over seeds)", title=f"training at distance {far}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(f"long-range memory: {len(numbers['seeds'])} seed(s), hidden {hidden}, {steps} steps", fontsize=10)
    figure = save_figure(fig, ctx.figure_path("accuracy_against_distance"))
    verdict, reason = judge_c35(numbers)
    return Finding(numbers, [figure], verdict, reason)


# ============================================================================ C36


def block_formula(kind: str, input_size: int, hidden: int, layers: int = 1, directions: int = 1) -> int:
    """Parameters of a torch-layout recurrent module: per layer and direction G H (I_l + H) + 2 G H
    (weights W_ih, W_hh and the two biases b_ih, b_hh), I_0 = input_size, I_l = directions H above."""
    G = BLOCKS[kind]
    total = 0
    for layer in range(layers):
        i = input_size if layer == 0 else directions * hidden
        total += directions * (G * hidden * (i + hidden) + 2 * G * hidden)
    return total


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def judge_c36(numbers: dict) -> tuple[str, str]:
    """An identity, checked: holds if at every size deepnotes's and torch's modules have the formula's
    count, the `fewer` model has fewer parameters than the `more` model, and the ratio is exactly the
    ratio of their weight blocks (GRU / LSTM = 3/4); does not hold otherwise (e.g. GRU against a
    vanilla RNN: 3 times as many)."""
    n = numbers
    f, m = n["fewer"], n["more"]
    rows = n["sizes"]
    formula_ok = all(r["counts"][k]["deepnotes"] == r["counts"][k]["torch"] == r["counts"][k]["formula"] for r in rows for k in (f, m))
    fewer = all(r["counts"][f]["deepnotes"] < r["counts"][m]["deepnotes"] for r in rows)
    exact = all(r["ratio_numerator"] * BLOCKS[m] == r["ratio_denominator"] * BLOCKS[f] for r in rows)
    ratios = sorted({r["ratio"] for r in rows})
    example = rows[0]
    ex = f"I = {example['input']}, H = {example['hidden']}: {NAMES[f]} {example['counts'][f]['deepnotes']:,}, {NAMES[m]} {example['counts'][m]['deepnotes']:,}"
    summary = (
        f"an identity of the weight layout, not a measurement: per layer and direction G H (I + H) + 2 G H parameters with "
        f"G = {BLOCKS[f]} blocks for the {NAMES[f]} and {BLOCKS[m]} for the {NAMES[m]}, so {NAMES[f]} / {NAMES[m]} = "
        f"{BLOCKS[f]}/{BLOCKS[m]} at every size; counted in deepnotes's and torch's modules at {len(rows)} sizes "
        f"({'all equal to the formula' if formula_ok else 'NOT all equal to the formula'}; ratios {', '.join(f'{r:.4f}' for r in ratios)}), "
        f"e.g. {ex}. The notes' \"2 gates vs 3\" counts the sigmoid gates (GRU: reset r, update z; LSTM: input i, forget f, "
        f"output o); each cell also has a tanh candidate with its own block (GRU n, LSTM g), so the weights hold 3 blocks vs 4 "
        f"and the ratio is 3/4, not the 2/3 the gate count suggests (E93: about 25% fewer parameters)"
    )
    if formula_ok and fewer and exact:
        return "holds", summary
    what = []
    if not fewer:
        what.append(f"the {NAMES[f]} does not have fewer parameters than the {NAMES[m]}")
    if not formula_ok:
        what.append("some counts differ from the formula")
    if not exact:
        what.append("the ratio is not the ratio of weight blocks")
    return "does not hold", "; ".join(what) + ". " + summary


@experiment("C36", quick_verdict="holds", opposite={"more": "rnn"})
def run_c36(ctx: Context, fewer: str = "gru", more: str = "lstm") -> Finding:
    """Count the parameters of deepnotes's and torch's recurrent modules at several sizes (1-2 layers,
    uni- and bidirectional, input 1-512, hidden 8-1024; quick: fewer sizes) and compare with the
    formula. more="rnn" compares the GRU against a vanilla RNN (the opposite evidence: 3 times as many)."""
    for k in (fewer, more):
        if k not in KINDS:
            raise ValueError(f"fewer and more are among {sorted(KINDS)}, got {k!r}")
    sizes = ctx.size([(16, 32, 1, 1), (256, 256, 1, 1), (10, 64, 2, 2)],
                     [(1, 8, 1, 1), (16, 32, 1, 1), (128, 128, 1, 1), (256, 256, 1, 1), (300, 512, 2, 1), (10, 64, 2, 2),
                      (512, 1024, 1, 2)])  # fmt: skip
    torch_kinds = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
    rows = []
    for i, h, layers, dirs in sizes:
        counts = {}
        for k in dict.fromkeys(("rnn", "gru", "lstm", fewer, more)):
            with torch.device("meta"):  # shapes only: no memory for the large sizes
                ours = KINDS[k](i, h, layers, bidirectional=dirs == 2)
                theirs = torch_kinds[k](i, h, layers, bidirectional=dirs == 2)
            counts[k] = {"deepnotes": _count(ours), "torch": _count(theirs), "formula": block_formula(k, i, h, layers, dirs)}
        a, b = counts[fewer]["deepnotes"], counts[more]["deepnotes"]
        g = math.gcd(a, b)
        rows.append({"input": i, "hidden": h, "layers": layers, "directions": dirs, "counts": counts,
                     "ratio": rounded(a / b, 6), "ratio_numerator": a // g, "ratio_denominator": b // g})  # fmt: skip
        ctx.log(f"C36 I={i} H={h} layers={layers} dirs={dirs}: " + ", ".join(f"{k} {c['deepnotes']:,}" for k, c in counts.items()))
    numbers = {
        "fewer": fewer,
        "more": more,
        "blocks": dict(BLOCKS),
        "formula": "per layer and direction G H (I + H) + 2 G H; I = input size (layer 0) or directions x H (above)",
        "gates_in_the_notes": {"gru": ["r (reset)", "z (update)"], "lstm": ["i (input)", "f (forget)", "o (output)"]},
        "weight_blocks": {"gru": ["r", "z", "n (candidate, tanh)"], "lstm": ["i", "f", "g (candidate, tanh)", "o"], "rnn": ["h (tanh)"]},
        "sizes": rows,
    }

    fig, axes = new_figure(2, 1, size=(5.0, 3.8))
    ax = axes[0, 0]
    labels = [f"I{r['input']} H{r['hidden']}\n{r['layers']}L{' bi' if r['directions'] == 2 else ''}" for r in rows]
    x = np.arange(len(rows))
    kinds = list(dict.fromkeys(("rnn", "gru", "lstm", fewer, more)))
    for j, k in enumerate(kinds):
        ax.bar(x + (j - (len(kinds) - 1) / 2) * 0.25, [r["counts"][k]["deepnotes"] for r in rows], 0.25, label=f"{NAMES[k]} (G = {BLOCKS[k]})")
    ax.set_yscale("log")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set(ylabel="parameters (deepnotes = torch = formula)", title="parameter counts by size")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    ax = axes[0, 1]
    ax.plot(x, [r["ratio"] for r in rows], "o-", color="C0", label=f"{NAMES[fewer]} / {NAMES[more]} (counted)")
    ax.axhline(BLOCKS[fewer] / BLOCKS[more], ls="--", color="C2", label=f"weight blocks {BLOCKS[fewer]}/{BLOCKS[more]}")
    if {fewer, more} == {"gru", "lstm"}:
        ax.axhline(2 / 3 if fewer == "gru" else 3 / 2, ls=":", color="C3", label="sigmoid gates 2/3 (the notes' count)")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set(ylabel="ratio of parameter counts", title="the ratio is the ratio of weight blocks")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    figure = save_figure(fig, ctx.figure_path("parameter_counts"))
    verdict, reason = judge_c36(numbers)
    return Finding(numbers, [figure], verdict, reason)


# ============================================================================ C37


def judge_c37(numbers: dict) -> tuple[str, str]:
    """Holds if the unclipped runs' gradients explode (the largest gradient norm is at least 10 times
    the clipping threshold) and clipping lowers the final test MSE: the 95% t-interval over seeds of
    the paired difference unclipped - clipped lies above 0. Does not hold otherwise (e.g. a
    threshold so high that it never clips: the two runs are the same run)."""
    n = numbers
    d = n["unclipped_minus_clipped"]
    u, c = n["arms"]["unclipped"], n["arms"]["clipped"]
    explode = u["max_grad_norm_max"] >= 10 * n["max_norm"]
    tamed = d["low"] > 0
    seeds = len(n["seeds"])
    straddle = " (the interval straddles 0)" if d["low"] <= 0 < d["high"] else ""
    diverged = f"; {u['diverged']} of {seeds} unclipped runs diverged to inf/NaN" if u["diverged"] else ""
    summary = (
        f"vanilla tanh RNN, hidden {n['hidden']}, W_hh = {n['gain']:g} x orthogonal, on the adding problem of length {n['length']} "
        f"(baseline MSE {ADDING_BASELINE_MSE:.4f}), SGD lr {n['lr']:g} for {n['steps']} steps, {seeds} seed{'s' if seeds != 1 else ''}: "
        f"largest gradient norm {u['max_grad_norm_max']:.3g} unclipped (median per step {u['median_grad_norm']:.3g}), "
        f"{c['clipped_fraction']:.0%} of the clipped run's steps clipped at {n['max_norm']:g}; final test MSE (capped at "
        f"{n['diverged_mse']:g}, what a diverged run counts as) unclipped "
        f"{u['mean_test_mse']:.4f}, clipped {c['mean_test_mse']:.4f}; unclipped - clipped {d['mean']:+.4f} [{d['low']:+.4f}, "
        f"{d['high']:+.4f}] (95% t-interval of paired differences){straddle}{diverged}"
    )
    if explode and tamed:
        return "holds", summary
    what = []
    if not explode:
        what.append(f"the gradients do not explode (largest norm under 10 x {n['max_norm']:g})")
    if not tamed:
        what.append("clipping does not lower the test MSE beyond the interval")
    return "does not hold", "; ".join(what) + ": " + summary


def _adding_mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(F.mse_loss(model(x).squeeze(-1), y))


@experiment("C37", quick_verdict="holds", opposite={"max_norm": 1e9})
def run_c37(ctx: Context, max_norm: float = 1.0, gain: float = 2.0, length: int | None = None, seeds: int | None = None,
            steps: int | None = None, hidden: int = 32, lr: float = 0.05, batch: int = 32) -> Finding:  # fmt: skip
    """The same vanilla RNN, seed and batches trained twice, without and with clip_grad_norm_(max_norm).
    Quick: length 30, 150 steps, 2 seeds; full: length 50, 800 steps, 3 seeds. The opposite evidence:
    max_norm=1e9, a threshold no gradient reaches."""
    length = length or ctx.size(30, 50)
    seeds = seeds or ctx.size(2, 3)
    steps = steps or ctx.size(150, 800)
    diverged_mse = 10.0  # what a run that diverged (inf/NaN) counts as: worse than any finite run here
    test_x, test_y = adding_problem(1000, length, seed=10_000_000 + ctx.seed)
    arms: dict[str, dict] = {}
    traces: dict[str, dict] = {}
    with one_thread():
        for arm, threshold in (("unclipped", None), ("clipped", max_norm)):
            mses, norms, losses, clipped, diverged = [], [], [], [], 0
            for s in range(seeds):
                seed = ctx.seed + s
                torch.manual_seed(seed)
                model = SeqModel("rnn", 2, hidden, 1, tokens=False)
                with torch.no_grad():  # the chaotic regime: a gain > 1 on an orthogonal W_hh (Pascanu et al. 2013)
                    w = torch.empty(hidden, hidden)
                    nn.init.orthogonal_(w, gain=gain, generator=torch.Generator().manual_seed(seed))
                    model.rnn.weight_hh_l0.copy_(w)
                opt = torch.optim.SGD(model.parameters(), lr=lr)
                norm_trace, loss_trace, n_clipped, ok = [], [], 0, True
                for i in range(steps):
                    x, y = adding_problem(batch, length, seed=_stamp(seed, i))
                    loss = F.mse_loss(model(x).squeeze(-1), y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if threshold is None:
                        norm = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()])))
                    else:
                        norm = float(clip_grad_norm_(model.parameters(), threshold))
                        n_clipped += norm > threshold
                    if not (math.isfinite(norm) and math.isfinite(loss.item())):
                        ok = False
                        break
                    opt.step()
                    norm_trace.append(norm)
                    loss_trace.append(loss.item())
                mse = _adding_mse(model, test_x, test_y) if ok else math.inf
                if not math.isfinite(mse):
                    diverged += 1
                    mse = diverged_mse
                mses.append(min(mse, diverged_mse))
                norms.append(norm_trace)
                losses.append(loss_trace)
                clipped.append(n_clipped / max(1, len(norm_trace)))
                ctx.log(f"C37 {arm} seed {seed}: test MSE {mse:.4f}, max grad norm {max(norm_trace, default=0):.3g}")
            every = np.concatenate([np.asarray(t) for t in norms]) if norms else np.zeros(1)
            arms[arm] = {
                "test_mse": [rounded(m, 4) for m in mses],
                "mean_test_mse": rounded(float(np.mean(mses)), 4),
                "max_grad_norm": [rounded(max(t, default=0.0), 4) for t in norms],
                "max_grad_norm_max": rounded(float(every.max()), 4),
                "median_grad_norm": rounded(float(np.median(every)), 4),
                "clipped_fraction": rounded(float(np.mean(clipped)), 4) if threshold is not None else 0.0,
                "diverged": diverged,
                "final_train_loss": [rounded(float(np.mean(t[-20:])), 4) if t else diverged_mse for t in losses],
            }
            traces[arm] = {"norms": norms[0], "losses": losses[0]}
    numbers = {
        "task": f"adding problem (Le et al. 2015 form), length {length}",
        "length": length,
        "hidden": hidden,
        "gain": gain,
        "lr": lr,
        "steps": steps,
        "batch": batch,
        "max_norm": max_norm,
        "baseline_mse": rounded(ADDING_BASELINE_MSE, 4),
        "diverged_mse": diverged_mse,
        "seeds": [ctx.seed + s for s in range(seeds)],
        "arms": arms,
        "unclipped_minus_clipped": paired_interval(arms["unclipped"]["test_mse"], arms["clipped"]["test_mse"]),
        "threads": 1,
    }

    fig, axes = new_figure(2, 1, size=(5.0, 3.8))
    colours = {"unclipped": "C3", "clipped": "C0"}
    ax = axes[0, 0]
    for arm in arms:
        t = traces[arm]["norms"]
        ax.semilogy(np.arange(1, len(t) + 1), t, color=colours[arm], lw=0.8, label=f"{arm} (gradient norm before clipping)")
    ax.axhline(max_norm, ls="--", color="grey", label=f"threshold {max_norm:g}")
    ax.set(xlabel="step", ylabel="gradient norm", title=f"gradient norm per step (seed {ctx.seed})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    for arm in arms:
        t = traces[arm]["losses"]
        ax.semilogy(np.arange(1, len(t) + 1), t, color=colours[arm], lw=0.8, label=f"{arm}: test MSE {arms[arm]['mean_test_mse']:.3g} (mean)")
    ax.axhline(ADDING_BASELINE_MSE, ls=":", color="grey", label="predict 1.0: MSE 1/6")
    ax.set(xlabel="step", ylabel="training MSE", title=f"training loss (seed {ctx.seed})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(f"vanilla RNN, W_hh = {gain:g} x orthogonal, adding problem T = {length}, SGD lr {lr:g}", fontsize=10)
    figure = save_figure(fig, ctx.figure_path("clipping"))
    verdict, reason = judge_c37(numbers)
    return Finding(numbers, [figure], verdict, reason)


# ============================================================================ C51

CHEAT = 0.1  # nats below the causal floor: a loss no causal predictor can reach
NO_GAIN = 0.02  # nats: "no better causally" = the causal bi - uni interval reaches above -0.02


def judge_c51(numbers: dict) -> tuple[str, str]:
    """(a) the 95% interval of the difference in lookahead accuracy, bidirectional - unidirectional,
    lies above 0; (b) on next-token prediction the bidirectional model's loss with the future visible
    lies more than 0.1 nats below the causal floor (the true chain's loss on the same test tokens,
    which no causal predictor beats in expectation): it reads the token it predicts; (c) run causally
    (each prediction from its prefix alone) it is no better than the unidirectional model (the
    interval of causal bi - uni reaches above -0.02 nats). Holds if (a), (b) and (c); holds with a
    correction if (a) but not (b) and (c); does not hold if not (a) (e.g. when the answer is an
    earlier token: both directions reach it)."""
    n = numbers
    a, b = n["lookahead"], n["next_token"]
    d, dc = a["bi_minus_uni"], b["bi_causal_minus_uni"]
    beats = d["low"] > 0
    cheats = b["bi_visible"]["mean"] < b["causal_floor"] - CHEAT
    no_gain = dc["high"] > -NO_GAIN
    seeds = len(n["seeds"])
    where = f"{abs(a['offset'])} steps {'later' if a['offset'] > 0 else 'earlier'}" if a["offset"] else "itself"
    summary = (
        f"GRU, hidden {n['hidden']} per direction, {seeds} seed{'s' if seeds != 1 else ''}. (a) label each of {a['length']} random "
        f"tokens with the token {where} (vocabulary {n['vocab']}, chance {1 / n['vocab']:.1%}): bidirectional {a['bi']['mean']:.1%}, "
        f"unidirectional {a['uni']['mean']:.1%}, difference {d['mean']:+.1%} [{d['low']:+.1%}, {d['high']:+.1%}] ({_over(d)})"
        f"{' (the interval straddles 0)' if d['low'] <= 0 < d['high'] else ''}; (b) next token of a {n['vocab']}-token Markov chain "
        f"(the true chain's loss on the test tokens {b['causal_floor']:.3f} nats, entropy rate {b['entropy_rate']:.3f}): "
        f"unidirectional {b['uni']['mean']:.3f}, bidirectional with the future visible {b['bi_visible']['mean']:.3f} (below the "
        f"causal floor: its backward half reads the token it predicts), the same bidirectional model on prefixes only "
        f"{b['bi_causal']['mean']:.3f} nats; causal bi - uni {dc['mean']:+.3f} [{dc['low']:+.3f}, {dc['high']:+.3f}] ({_over(dc)}): "
        f"run causally, its backward half sees nothing ahead and it is no better than the unidirectional model, at T passes "
        f"over prefixes instead of one"
    )
    if beats and cheats and no_gain:
        return "holds", summary
    if beats:
        return "holds with a correction", f"the bidirectional model wins on the lookahead task, but its next-token losses do not show the leak: {summary}"
    return "does not hold", f"the bidirectional model does not beat the unidirectional one beyond the interval: {summary}"


def _token_losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-token cross-entropy (B, T), 0 where y is IGNORE."""
    return F.cross_entropy(logits.transpose(1, 2), y, ignore_index=IGNORE, reduction="none")


def _train_tokens(model: nn.Module, make_batch, steps: int, lr: float) -> list[float]:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    curve = []
    for i in range(steps):
        x, y = make_batch(i)
        loss = F.cross_entropy(model(x).reshape(-1, model.out.out_features), y.reshape(-1), ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        curve.append(loss.item())
    return curve


@torch.no_grad()
def causal_losses(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-token next-token losses (B, T) when each prediction sees only its prefix: the model runs on
    x[:, :t + 1] and its last output predicts y[:, t] (what generating one token at a time allows)."""
    model.eval()
    logits = torch.stack([model(x[:, : t + 1])[:, -1] for t in range(x.shape[1])], 1)
    return _token_losses(logits, y)


@experiment("C51", quick_verdict="holds", opposite={"offset": -3})
def run_c51(ctx: Context, offset: int = 3, seeds: int | None = None, steps: int | None = None, hidden: int = 32, vocab: int = 8,
            length: int = 20, batch: int = 64, lr: float = 1e-2) -> Finding:  # fmt: skip
    """(a) lookahead_task(offset): bidirectional vs unidirectional GRU, per-position accuracy on 1,000
    held-out sequences; (b) next-token prediction on markov_chain(vocab, 2 successors): the two
    models' test losses, the bidirectional one's with the future visible and on prefixes. Quick:
    150 steps, 1 seed (intervals over the test items); full: 600 steps, 3 seeds. offset=-3 (the answer is an earlier token) is the
    opposite evidence."""
    seeds = seeds or ctx.size(1, 3)
    steps = steps or ctx.size(150, 600)
    chain = markov_chain(vocab, 2, seed=ctx.seed)
    entropy = markov_entropy_rate(chain)
    look_x, look_y = lookahead_task(1000, length, vocab, offset, seed=10_000_000 + ctx.seed)
    lm = markov_sequences(500, length + 1, chain, seed=10_000_000 + ctx.seed)
    lm_x, lm_y = lm[:, :-1], lm[:, 1:]
    floor = -torch.log(chain.transition[lm_x, lm_y])  # the true chain's per-token loss: the causal floor on these tokens
    look = {"bi": [], "uni": []}
    lm_loss: dict[str, list[float]] = {"uni": [], "uni_causal": [], "bi_visible": [], "bi_causal": []}
    items: dict[str, torch.Tensor] = {}  # the first seed's per-item results (the interval when there is one seed)
    curves: dict[str, list] = {}
    with one_thread():
        for s in range(seeds):
            seed = ctx.seed + s
            for arm, bi in (("uni", False), ("bi", True)):
                torch.manual_seed(seed)
                model = SeqModel("gru", vocab, hidden, vocab, per_step=True, bidirectional=bi)
                curve = _train_tokens(model, lambda i: lookahead_task(batch, length, vocab, offset, seed=_stamp(seed, i)), steps, lr)
                with torch.no_grad():
                    pred = model.eval()(look_x).argmax(-1)
                mask = look_y != IGNORE
                hit = pred[mask] == look_y[mask]
                look[arm].append(float(hit.float().mean()))
                items.setdefault(f"look {arm}", hit)
                curves.setdefault(f"lookahead {arm}", []).append(curve)

                torch.manual_seed(seed)
                model = SeqModel("gru", vocab, hidden, vocab, per_step=True, bidirectional=bi)

                def lm_batch(i: int, seed: int = seed) -> tuple[torch.Tensor, torch.Tensor]:
                    z = markov_sequences(batch, length + 1, chain, seed=_stamp(seed, i))
                    return z[:, :-1], z[:, 1:]

                curve = _train_tokens(model, lm_batch, steps, lr)
                curves.setdefault(f"next token {arm}", []).append(curve)
                with torch.no_grad():
                    visible = float(_token_losses(model.eval()(lm_x), lm_y).mean())
                causal = causal_losses(model, lm_x, lm_y)
                if bi:
                    lm_loss["bi_visible"].append(visible)
                    lm_loss["bi_causal"].append(float(causal.mean()))
                    items.setdefault("lm bi_causal", causal.flatten())
                else:
                    lm_loss["uni"].append(visible)
                    lm_loss["uni_causal"].append(float(causal.mean()))  # a causal model: the same loss both ways
                    items.setdefault("lm uni", causal.flatten())
                ctx.log(f"C51 seed {seed} {arm}: lookahead {look[arm][-1]:.1%}, next-token loss {visible:.3f}")

    def stats(v: list[float]) -> dict:
        return {"runs": [rounded(x, 4) for x in v], "mean": rounded(float(np.mean(v)), 4)}

    numbers = {
        "hidden": hidden,
        "vocab": vocab,
        "steps": steps,
        "batch": batch,
        "recipe": f"GRU (deepnotes), embedding 16, Adam lr {lr:g}, gradient norm clipped at 1, {steps} steps of {batch} fresh sequences",
        "seeds": [ctx.seed + s for s in range(seeds)],
        "lookahead": {
            "length": length,
            "offset": offset,
            "bi": stats(look["bi"]),
            "uni": stats(look["uni"]),
            "bi_minus_uni": interval(look["bi"], look["uni"], items["look bi"], items["look uni"]),
        },
        "next_token": {
            "length": length,
            "entropy_rate": rounded(entropy, 4),
            "causal_floor": rounded(float(floor.mean()), 4),
            "uniform": rounded(math.log(vocab), 4),
            "uni": stats(lm_loss["uni"]),
            "uni_causal_max_abs_diff": rounded(max(abs(a - b) for a, b in zip(lm_loss["uni"], lm_loss["uni_causal"])), 3),
            "bi_visible": stats(lm_loss["bi_visible"]),
            "bi_causal": stats(lm_loss["bi_causal"]),
            "bi_causal_minus_uni": interval(lm_loss["bi_causal"], lm_loss["uni"], items["lm bi_causal"], items["lm uni"]),
        },
        "threads": 1,
    }

    fig, axes = new_figure(2, 1, size=(5.0, 3.8))
    ax = axes[0, 0]
    for key, colour in (("lookahead uni", "C3"), ("lookahead bi", "C0")):
        c = np.mean(curves[key], 0)
        ax.plot(np.arange(1, len(c) + 1), c, color=colour, label=f"{'bidirectional' if key.endswith('bi') else 'unidirectional'}: "
                f"{numbers['lookahead'][key.split()[-1]]['mean']:.1%} test accuracy")  # fmt: skip
    ax.axhline(math.log(vocab), ls=":", color="grey", label=f"log {vocab} (chance)")
    ax.set(xlabel="step", ylabel="training cross-entropy", title=f"(a) label = the token {offset:+d} steps away")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    nt = numbers["next_token"]
    bars = [("unidirectional", nt["uni"], "C3"), ("bidirectional,\nfuture visible", nt["bi_visible"], "C0"),
            ("bidirectional,\nprefixes only", nt["bi_causal"], "C9")]  # fmt: skip
    for i, (label, st, colour) in enumerate(bars):
        ax.bar(i, st["mean"], color=colour, alpha=0.8)
        ax.scatter([i] * len(st["runs"]), st["runs"], color="black", s=10, zorder=3)
    ax.axhline(float(floor.mean()), ls="--", color="C2", label=f"true chain {float(floor.mean()):.3f} (causal floor)")
    ax.axhline(math.log(vocab), ls=":", color="grey", label=f"log {vocab} (uniform)")
    ax.set_xticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
    ax.set(ylabel="test next-token loss (nats)", title="(b) next-token prediction on a Markov chain")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.suptitle(f"bidirectional vs unidirectional GRU, hidden {hidden} per direction, {len(numbers['seeds'])} seed(s)", fontsize=10)
    figure = save_figure(fig, ctx.figure_path("bidirectional"))
    verdict, reason = judge_c51(numbers)
    return Finding(numbers, [figure], verdict, reason)
