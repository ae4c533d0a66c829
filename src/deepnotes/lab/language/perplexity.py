"""C61: perplexity (난해성, perplexity) measures next-token prediction; the n-gram / RNN / transformer ladder.

(1) Identities, checked numerically (they are definitions, not findings):
    - a model that gives every token of a vocabulary of V the same probability has perplexity V
      exactly, whatever the text (zero logits on the test windows; deepnotes.metrics.language and
      torchmetrics' Perplexity as oracles);
    - perplexity = exp(mean per-token NLL) (ERRATA E21): the task's test perplexity against exp of
      the mean of the per-token NLLs recomputed here on the same windows, against
      deepnotes.metrics.language.perplexity(sum, n) and torchmetrics' Perplexity;
    - bits per character = log2(perplexity) for a character model (every token one character).
(2) The ladder, on the same held-out text with one tokenizer (characters): counted n-grams
    (interpolated Kneser-Ney; unigram, bigram, trigram and 5-gram as reference rungs, the judged
    one of order `order`), an LSTM (lstm_lm) and a transformer (gpt_nano), all scored by the
    language-model task on the same test tokens in the same windows of `block_size` tokens (the
    block size is passed to every model: the task would score an n-gram table in windows of
    DEFAULT_BLOCK otherwise). The two neural models get the same budget in tokens: steps x batch
    x window, the same optimizer (AdamW), schedule, weight decay and clipping (the learning rate:
    each architecture its own, below); their seconds and parameter counts are reported. Per pair the difference of mean NLL (nats per token; its exp is the perplexity
    ratio), with a 95% t-interval over seeds (full: 3 seeds) and, for every run, over the test
    windows (the uncertainty of the test sample given one trained model; windows are the units
    because neighbouring tokens are not independent).

    Full: Shakespeare (gettext-en if it cannot be found without a download), windows of 64 (gpt_nano's
    context), judged n-gram order 5, nanoGPT's CPU recipe for both neural models (2,000 steps of 12
    windows, AdamW, cosine, weight decay 0.1, clipping 1.0; lr 1e-3 for gpt_nano 4 x 128, 0.80M
    parameters; 2e-3 for lstm_lm 2 x 256 tied, dropout 0.2, 1.07M), 3 seeds. Quick: gettext-en,
    windows of 32, tiny models (an LSTM of 1 x 128, lr 1e-2; a GPT of 2 layers of width 64, lr 3e-3;
    no decay of the lr) trained 400 steps of 32 windows (seconds); a few hundred steps cannot reach
    what a 5-gram counts from 800,000 characters, so the quick run judges the trigram (order 3)
    and reports the other rungs.

context: the window the neural models train and are scored on (default: block_size; the task's
windows are at least 2 tokens). context=2 is the opposite evidence: the neural models then see at
most the current and the previous character, no more than a trigram table sees (and only the
current one at every other position), so neither can beat the trigram (quick) or the 5-gram
(full) that counts those contexts exactly; same test tokens, batch x context kept at the same
tokens per step. Every n-gram rung is scored in windows of block_size as in the normal run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from deepnotes.errors import UserError
from deepnotes.lab import Context, Finding, experiment
from deepnotes.lab.common import new_figure, paired_interval, rounded, save_figure

RECIPE = {  # (quick, full)
    "corpus": ("gettext-en", "shakespeare"),
    "block_size": (32, 64),
    "order": (3, 5),
    "seeds": (1, 3),
    "steps": (400, 2000),
    "batch_size": (32, 12),
    "evals": (4, 8),  # test-loss points per run (steps_per_epoch = steps / evals)
    "lr": ({"rnn": 1e-2, "transformer": 3e-3}, {"rnn": 2e-3, "transformer": 1e-3}),  # each architecture its own (AdamW)
    "schedule": ("none", "cosine"),  # quick: a few hundred steps, no decay; full: nanoGPT's cosine
    "gpt": ({"n_layer": 2, "n_head": 4, "n_embd": 64}, {"n_layer": 4, "n_head": 4, "n_embd": 128}),
    "lstm": ({"embed_dim": 128, "hidden_size": 128, "num_layers": 1, "dropout": 0.0},
             {"embed_dim": 256, "hidden_size": 256, "num_layers": 2, "dropout": 0.2}),
}  # fmt: skip
REFERENCE_ORDERS = (1, 2, 3, 5)  # counted rungs always reported
TRAIN = {"optimizer": "adamw", "weight_decay": 0.1, "clip_grad_norm": 1.0}  # the task's defaults (nanoGPT's)
IDENTITY_TOL = 1e-9  # relative: float64 rounding
RECOMPUTE_TOL = 1e-6  # relative: float32 along the way (the task's logits; torchmetrics' softmax)
NEURAL = ("rnn", "transformer")
PAIRS = (("ngram", "rnn"), ("rnn", "transformer"), ("ngram", "transformer"))  # (worse, better) as the claim orders them
LABELS = {"ngram": "n-gram", "rnn": "RNN (LSTM)", "transformer": "transformer (GPT)"}


def rung_name(order: int) -> str:
    return ("unigram", "bigram", "trigram")[order - 1] if order <= 3 else f"{order}-gram"


def _pick(ctx: Context, key: str):
    return RECIPE[key][0 if ctx.quick else 1]


def corpus_for(name: str | None, quick: bool):
    """The named corpus; else gettext-en (quick) or Shakespeare, falling back to gettext-en if it
    cannot be found without a download."""
    from deepnotes.lab.common import lab_corpus

    return lab_corpus(name, quick, full="shakespeare")


# ============================================================================ scoring on the task's windows


@torch.no_grad()
def token_nlls(model, test_ids: torch.Tensor, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(targets, NLL per token in nats) of `model` on the task's evaluation windows
    (EvalBlocks(test_ids, window): the first EVAL_TOKENS test tokens in non-overlapping windows),
    computed as the task computes them (float32 logits, cross-entropy per token; an n-gram's nll)."""
    from deepnotes.tasks.language_model import EvalBlocks

    model.eval()
    targets, nlls = [], []
    for x, y in EvalBlocks(test_ids, window).epoch(0):
        if hasattr(model, "fit"):
            losses = model.nll(x, y)
        else:
            logits = model(x).float()
            losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view_as(y)
        targets.append(y.reshape(-1).numpy())
        nlls.append(losses.double().reshape(-1).numpy())
    return np.concatenate(targets), np.concatenate(nlls)


def window_means(nll: np.ndarray, window: int) -> np.ndarray:
    """Mean NLL of each consecutive group of `window` tokens (the last partial group dropped)."""
    n = len(nll) // window
    return nll[: n * window].reshape(n, window).mean(1)


def window_interval(worse: np.ndarray, better: np.ndarray, window: int) -> dict:
    """mean(worse - better) of the per-token NLLs and its 95% t-interval over test windows of
    `window` tokens (both arrays over the same test tokens)."""
    n = min(len(worse), len(better))
    d = window_means(worse[:n], window) - window_means(better[:n], window)
    return paired_interval(d, np.zeros_like(d)) | {"over": f"{len(d)} test windows of {window} tokens"}


def uniform_identity(test_ids: torch.Tensor, vocab: int, window: int) -> dict:
    """Zero logits (every token probability 1/V) on the evaluation windows: perplexity = V exactly."""
    from torchmetrics.text import Perplexity

    from deepnotes.metrics.language import perplexity, token_nll
    from deepnotes.tasks.language_model import EvalBlocks

    total, count = 0.0, 0
    tm = Perplexity()
    for x, y in EvalBlocks(test_ids, window).epoch(0):
        logits = torch.zeros(*y.shape, vocab, dtype=torch.float64)
        s, n = token_nll(logits, y)
        total, count = total + s, count + n
        tm.update(logits, y)
    ppl = perplexity(total, count)
    tm_ppl = float(tm.compute())
    return {"kind": "identity (a definition, checked numerically)", "vocabulary": vocab, "tokens": count,
            "perplexity": ppl, "torchmetrics": tm_ppl, "relative_error": abs(ppl - vocab) / vocab,
            "torchmetrics_relative_error": abs(tm_ppl - vocab) / vocab}  # fmt: skip


@torch.no_grad()
def torchmetrics_perplexity(model, test_ids: torch.Tensor, window: int) -> float:
    """torchmetrics' Perplexity of a neural model on the evaluation windows (an outside oracle)."""
    from torchmetrics.text import Perplexity

    from deepnotes.tasks.language_model import EvalBlocks

    tm = Perplexity()
    model.eval()
    for x, y in EvalBlocks(test_ids, window).epoch(0):
        tm.update(model(x).double(), y)
    return float(tm.compute())


def exp_identity(name: str, metrics: dict, nll: np.ndarray, tm: float | None = None) -> dict:
    """perplexity = exp(mean NLL) and bits per character = log2(perplexity), for one run."""
    from deepnotes.metrics.language import perplexity

    mean = float(nll.mean())
    ppl_task, bpc_task = float(metrics["test_perplexity"]), float(metrics["test_bpc"])
    out = {
        "model": name,
        "tokens": int(len(nll)),
        "task_loss": float(metrics["test_loss"]),
        "recomputed_loss": mean,
        "task_perplexity": ppl_task,
        "exp_mean_nll": math.exp(mean),
        "metrics_perplexity": perplexity(float(nll.sum()), len(nll)),
        "task_bpc": bpc_task,
        "log2_perplexity": math.log2(ppl_task),
        "loss_relative_error": abs(mean - float(metrics["test_loss"])) / float(metrics["test_loss"]),
        "exp_relative_error": abs(math.exp(float(metrics["test_loss"])) - ppl_task) / ppl_task,
        "metrics_relative_error": abs(perplexity(float(nll.sum()), len(nll)) - math.exp(mean)) / math.exp(mean),
        "bpc_relative_error": abs(math.log2(ppl_task) - bpc_task) / bpc_task,
    }
    if tm is not None:
        out["torchmetrics"] = tm
        out["torchmetrics_relative_error"] = abs(tm - math.exp(mean)) / math.exp(mean)
    return out


def identities_hold(ident: dict) -> bool:
    u = ident["uniform"]
    if u["relative_error"] > IDENTITY_TOL or u["torchmetrics_relative_error"] > RECOMPUTE_TOL:  # torchmetrics: float32 inside
        return False
    for r in ident["exp_mean_nll"]:
        if max(r["exp_relative_error"], r["metrics_relative_error"], r["bpc_relative_error"]) > IDENTITY_TOL:
            return False
        if max(r["loss_relative_error"], r.get("torchmetrics_relative_error", 0.0)) > RECOMPUTE_TOL:
            return False
    return True


# ============================================================================ the judge


def _beats(iv: dict | None) -> bool:
    """The interval of NLL(worse) - NLL(better) lies above 0: the better model is better."""
    return iv is not None and iv.get("low") is not None and iv["low"] > 0


def _iv(iv: dict | None) -> str:
    if iv is None or iv.get("low") is None:
        return "[-]"
    return f"[{iv['low']:+.3f}, {iv['high']:+.3f}]"


def judge_c61(numbers: dict) -> tuple[str, str]:
    """Holds if (1) the identities check (uniform perplexity = V, perplexity = exp(mean NLL) in the
    task, deepnotes.metrics and torchmetrics, bits per character = log2 perplexity, the task's loss
    recomputed on the same windows) and (2) perplexity(n-gram) > perplexity(RNN) > perplexity(transformer):
    each of the three differences of mean NLL (n-gram - RNN, RNN - transformer, n-gram - transformer)
    has its judged 95% interval above 0 (over seeds with 2+ seeds, else over test windows).
    Holds with a correction if a neural model beats the n-gram but the order is partly different
    (the n-gram beats or ties the RNN, or the transformer, at this budget; or the RNN beats or ties
    the transformer). Does not hold if an identity fails or neither neural model beats the n-gram
    (e.g. neural models that see only 2 characters, context=2: no more than a trigram table)."""
    n = numbers
    d = n["differences"]
    judged = {k: (v["over_seeds"] if v["over_seeds"] is not None else v["over_windows"]) for k, v in d.items()}
    ppl = n["perplexity"]
    ident = n["identities"]
    u = ident["uniform"]
    worst = max(max(r["exp_relative_error"], r["metrics_relative_error"], r["bpc_relative_error"]) for r in ident["exp_mean_nll"])
    recompute = max(r["loss_relative_error"] for r in ident["exp_mean_nll"])
    seeds = len(n["seeds"])
    over = "seeds" if seeds > 1 else "test windows (one seed)"
    ctx_note = (f"; the neural models see only {n['context']} token{'s' if n['context'] != 1 else ''} of context "
                f"(windows of {n['context']}, batch {n['neural_batch_size']})" if n["context"] != n["block_size"] else "")  # fmt: skip
    rungs = ", ".join(f"{k} {v:.2f}" for k, v in n["reference_perplexity"].items())
    summary = (
        f"{n['data']} (characters, V = {n['vocabulary']}; {n['train_tokens']:,} training and the first {n['eval_tokens']:,} test tokens, "
        f"windows of {n['block_size']}{ctx_note}). (1) identities: the uniform model's perplexity {u['perplexity']:.6g} = V "
        f"(relative error {u['relative_error']:.1e}; torchmetrics {u['torchmetrics']:.6g}); perplexity = exp(mean NLL) and bits per "
        f"character = log2 perplexity to {worst:.1e} for every model; the task's loss recomputed on the same windows to {recompute:.1e}. "
        f"(2) perplexity: {LABELS['ngram']} (order {n['order']}, Kneser-Ney) {ppl['ngram']['mean']:.3f}, RNN {ppl['rnn']['mean']:.3f}, "
        f"transformer {ppl['transformer']['mean']:.3f} ({seeds} seed{'s' if seeds != 1 else ''}; each neural model "
        f"{n['budget']['tokens_per_model']:,} training tokens = {n['budget']['steps']} steps x {n['neural_batch_size']} x "
        f"{n['context']}); counted rungs {rungs}. Differences of mean NLL (nats/token, 95% over {over}): n-gram - RNN "
        f"{d['ngram-rnn']['mean']:+.3f} {_iv(judged['ngram-rnn'])}, RNN - transformer {d['rnn-transformer']['mean']:+.3f} "
        f"{_iv(judged['rnn-transformer'])}, n-gram - transformer {d['ngram-transformer']['mean']:+.3f} {_iv(judged['ngram-transformer'])}."
    )
    if not identities_hold(ident):
        return "does not hold", f"an identity fails: {summary}"
    if not (_beats(judged["ngram-rnn"]) or _beats(judged["ngram-transformer"])):
        return "does not hold", (f"neither neural model beats the n-gram (order {n['order']}) on the same test tokens at this budget"
                                 f"{' (they see no more context than it does)' if n['context'] < n['order'] else ''}: {summary}")  # fmt: skip
    wrong = []
    if not _beats(judged["ngram-rnn"]):
        wrong.append(f"the n-gram (order {n['order']}) beats or ties the RNN")
    if not _beats(judged["ngram-transformer"]):
        wrong.append(f"the n-gram (order {n['order']}) beats or ties the transformer")
    if not _beats(judged["rnn-transformer"]):
        wrong.append("the RNN beats or ties the transformer")
    if wrong:
        return "holds with a correction", (f"perplexity measures next-token prediction as defined and a neural model beats the n-gram, "
                                           f"but {' and '.join(wrong)} at this budget: {summary}")  # fmt: skip
    return "holds", summary


# ============================================================================ the run


@experiment("C61", quick_verdict="holds with a correction", opposite={"context": 2})
def run_c61(ctx: Context, context: int | None = None, block_size: int | None = None, order: int | None = None, corpus: str | None = None,
            seeds: int | None = None, steps: int | None = None) -> Finding:  # fmt: skip
    """Identities of perplexity; counted n-grams, an LSTM and a GPT on the same held-out characters
    (quick: gettext-en, tiny models, 400 steps, judged trigram; full: Shakespeare, lstm_lm and gpt_nano,
    2,000 steps of 12 x 64, judged 5-gram, 3 seeds). context=2 (the neural models see at most 2
    characters) is the opposite evidence."""
    from deepnotes.lab.language.runs import train_lm

    block = block_size or _pick(ctx, "block_size")
    context = context or block
    if block < 1 or context < 1 or block % context:
        raise UserError(f"block_size ({block}) and context ({context}) must be >= 1, and context must divide block_size")
    order = order or _pick(ctx, "order")
    if not 1 <= order <= 7:
        raise UserError(f"order is the judged n-gram's order, 1-7, got {order}")
    seeds = seeds or _pick(ctx, "seeds")
    steps = steps or _pick(ctx, "steps")
    data = corpus_for(corpus, ctx.quick)
    batch = _pick(ctx, "batch_size") * block // context  # the same tokens per step at any context
    per_epoch = max(1, steps // _pick(ctx, "evals"))
    lr, schedule = _pick(ctx, "lr"), _pick(ctx, "schedule")
    arch = {
        "transformer": ("gpt_nano", {**_pick(ctx, "gpt"), "block_size": context}),
        "rnn": ("lstm_lm", dict(_pick(ctx, "lstm"))),
    }

    # counted rungs: scored in windows of `block` (passed explicitly: the task's default for a table is DEFAULT_BLOCK)
    counted, scored = {}, {}
    for o in sorted({*REFERENCE_ORDERS, order}):
        run = train_lm("ngram5", data, steps=1, tokenizer="char", block_size=block, model_args={"order": o}, log=ctx.log)
        counted[o] = run
        scored[o] = token_nlls(run.model, run.task.test_ids, block)
    base = counted[order]
    test_ids, vocab = base.task.test_ids, len(base.tokenizer)
    targets = scored[order][0]

    neural: dict[str, list] = {k: [] for k in NEURAL}
    nll: dict[str, list[np.ndarray]] = {k: [] for k in NEURAL}
    for s in range(seeds):
        for k in NEURAL:
            name, args = arch[k]
            run = train_lm(name, data, steps=steps, seed=ctx.seed + s, batch_size=batch, tokenizer="char", steps_per_epoch=per_epoch,
                           block_size=context, model_args=args, lr=lr[k], schedule=schedule, log=ctx.log, **TRAIN)  # fmt: skip
            t, v = token_nlls(run.model, run.task.test_ids, context)
            m = min(len(t), len(targets))
            if len(run.tokenizer) != vocab or not np.array_equal(t[:m], targets[:m]):
                raise RuntimeError("the neural and counted models were not scored on the same test tokens")
            neural[k].append(run)
            nll[k].append(v)
    first = {k: nll[k][0] for k in NEURAL}  # every token the task scored (for the identities)
    m = min(len(targets), *(len(v) for vs in nll.values() for v in vs))
    nll_ngram = scored[order][1][:m]
    nll = {k: [v[:m] for v in vs] for k, vs in nll.items()}

    # identities
    ident = {"uniform": uniform_identity(test_ids, vocab, block), "exp_mean_nll": []}
    ident["exp_mean_nll"].append(exp_identity(f"ngram order {order}", base.metrics, scored[order][1]))
    for k in NEURAL:
        run = neural[k][0]
        tm = torchmetrics_perplexity(run.model, run.task.test_ids, context)
        ident["exp_mean_nll"].append(exp_identity(f"{arch[k][0]} seed {ctx.seed}", run.metrics, first[k], tm))

    # the ladder
    loss = {"ngram": [float(nll_ngram.mean())] * seeds, **{k: [float(v.mean()) for v in nll[k]] for k in NEURAL}}
    per_token = {"ngram": [nll_ngram] * seeds, **nll}
    differences = {}
    for worse, better in PAIRS:
        over_windows = [window_interval(a, b, block) for a, b in zip(per_token[worse], per_token[better])]
        differences[f"{worse}-{better}"] = {
            "mean": rounded(float(np.mean(loss[worse]) - np.mean(loss[better]))),
            "over_seeds": (paired_interval(loss[worse], loss[better]) | {"over": f"{seeds} seeds"}) if seeds > 1 else None,
            "over_windows": over_windows[0],
            "over_windows_per_seed": over_windows,
            "perplexity_ratio": rounded(float(np.exp(np.mean(loss[worse]) - np.mean(loss[better])))),
        }
    perplexity = {}
    for k, vals in loss.items():
        iv = paired_interval(vals, [0.0] * len(vals)) if k != "ngram" and seeds > 1 else None
        perplexity[k] = {"runs": [rounded(math.exp(v)) for v in vals], "mean": rounded(math.exp(float(np.mean(vals)))),
                         "loss": rounded(float(np.mean(vals))),
                         "interval": {"low": rounded(math.exp(iv["low"])), "high": rounded(math.exp(iv["high"]))} if iv else None}  # fmt: skip
    reference = {"uniform (V)": float(vocab)} | {
        rung_name(o): rounded(math.exp(float(scored[o][1][:m].mean()))) for o in sorted(counted)
    }
    curves = {k: [[{"tokens": int(h["epoch"]) * per_epoch * batch * context, "test_loss": rounded(float(h["test_loss"])),
                    "train_loss": rounded(float(h["train_loss"]))} for h in r.history] for r in neural[k]] for k in NEURAL}  # fmt: skip
    numbers: dict[str, Any] = {
        "data": data.name,
        "tokenizer": "char",
        "vocabulary": vocab,
        "train_tokens": int(len(base.task.train_ids)),
        "eval_tokens": int(m),
        "block_size": block,
        "context": context,
        "order": order,
        "seeds": [ctx.seed + s for s in range(seeds)],
        "neural_batch_size": batch,
        "budget": {"equalized": "training tokens = steps x batch x window; the same optimizer, schedule, weight decay and clipping "
                                "(the learning rate: each architecture its own)",
                   "steps": steps, "tokens_per_model": steps * batch * context, "lr": lr, "schedule": schedule, **TRAIN,
                   "seconds": {k: [rounded(r.seconds, 3) for r in neural[k]] for k in NEURAL},
                   "parameters": {k: int(sum(p.numel() for p in neural[k][0].model.parameters())) for k in NEURAL}},
        "models": {"ngram": f"ngram (order {order}, interpolated Kneser-Ney, counted once)", "rnn": f"lstm_lm {arch['rnn'][1]}",
                   "transformer": f"gpt_nano {arch['transformer'][1]}"},
        "identities": ident,
        "perplexity": perplexity,
        "reference_perplexity": reference,
        "differences": differences,
        "curves": curves,
        "threads": 1,
    }  # fmt: skip

    figures = [_ladder_figure(ctx, numbers), _curve_figure(ctx, numbers)]
    verdict, reason = judge_c61(numbers)
    return Finding(numbers, figures, verdict, reason)


# ============================================================================ figures


def _ladder_figure(ctx: Context, n: dict) -> str:
    from matplotlib.ticker import NullFormatter

    fig, axes = new_figure(2, 1, size=(5.6, 4.0))
    ax = axes[0, 0]
    bars = [(k, v, None, "C7") for k, v in n["reference_perplexity"].items()]
    for k, colour in (("rnn", "C1"), ("transformer", "C0")):
        p = n["perplexity"][k]
        bars.append((LABELS[k], p["mean"], p, colour))
    for i, (label, value, p, colour) in enumerate(bars):
        ax.bar(i, value, color=colour, alpha=0.85)
        if p is not None:
            ax.scatter([i] * len(p["runs"]), p["runs"], color="black", s=10, zorder=3)
            if p["interval"]:
                ax.errorbar(
                    i, value, yerr=[[value - p["interval"]["low"]], [p["interval"]["high"] - value]], color="black", capsize=4
                )
        top = max([value, *(p["runs"] if p else []), *([p["interval"]["high"]] if p and p["interval"] else [])])
        ax.annotate(f"{value:.2f}", (i, top), ha="center", va="bottom", fontsize=7)
    ax.axhline(n["perplexity"]["ngram"]["mean"], color="C3", ls=":", lw=1, label=f"judged n-gram (order {n['order']})")
    ax.set_yscale("log")
    values = [b[1] for b in bars]
    ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if min(values) / 1.5 <= t <= max(values) * 1.5]
    ax.set_yticks(ticks, [str(t) for t in ticks])
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(range(len(bars)), [b[0] for b in bars], rotation=30, ha="right", fontsize=8)
    ax.set(
        ylabel="test perplexity (log scale; lower is better)",
        title=f"same {n['eval_tokens']:,} test characters, windows of {n['block_size']}",
    )
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    ax = axes[0, 1]
    keys = list(n["differences"])
    for i, k in enumerate(keys):
        d = n["differences"][k]
        iv = d["over_seeds"] or d["over_windows"]
        ax.errorbar(i, d["mean"], yerr=[[d["mean"] - iv["low"]], [iv["high"] - d["mean"]]], fmt="o", color="black", capsize=5)
        for w in d["over_windows_per_seed"]:
            ax.errorbar(
                i + 0.15,
                w["mean"],
                yerr=[[w["mean"] - w["low"]], [w["high"] - w["mean"]]],
                fmt=".",
                color="C0",
                alpha=0.6,
                capsize=2,
            )
    ax.axhline(0, color="grey", lw=0.8)
    worse_better = [k.split("-") for k in keys]
    ax.set_xticks(range(len(keys)), [f"{LABELS[a]}\nminus {LABELS[b]}" for a, b in worse_better], fontsize=7)
    ax.set(
        ylabel="difference of mean NLL (nats/token)", title="> 0: the second is better (black: judged 95%; blue: over windows)"
    )
    ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{n['data']}: perplexity of counted and neural character models", fontsize=10)
    return save_figure(fig, ctx.figure_path("perplexity_ladder"))


def _curve_figure(ctx: Context, n: dict) -> str:
    fig, axes = new_figure(1, 1, size=(6.0, 4.0))
    ax = axes[0, 0]
    for k, colour in (("rnn", "C1"), ("transformer", "C0")):
        for s, curve in enumerate(n["curves"][k]):
            ax.plot([c["tokens"] for c in curve], [c["test_loss"] for c in curve], "o-", color=colour, alpha=0.7, ms=3,
                    label=LABELS[k] if s == 0 else None)  # fmt: skip
    for i, (k, v) in enumerate(n["reference_perplexity"].items()):
        if k != "uniform (V)":
            ax.axhline(math.log(v), color=f"C{i + 2}", ls="--", lw=1, label=f"{k} (counted)")
    ax.set(xlabel="training tokens (steps x batch x window)", ylabel="test loss (nats/token) = log perplexity",
           title=f"{n['data']}: test loss during training (lines: seeds)")  # fmt: skip
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return save_figure(fig, ctx.figure_path("test_loss_curves"))
