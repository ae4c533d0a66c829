"""C38: attention in seq2seq (어텐션 seq2seq): BLEU by source length, with and without attention.

C38  the notes' reason for attention: an encoder that must squeeze the whole source into one
     fixed-size vector loses long sentences; attention lets every decoder step look at every
     source position (Bahdanau et al. 2015, arXiv:1409.0473, figure 2: BLEU against sentence
     length). Two deepnotes models with the same encoder, decoder sizes, data, seed, optimizer
     and number of steps: `seq2seq` (the fixed context vector, Cho et al. 2014) and
     `seq2seq_bahdanau` (additive attention). Both translate the held-out test sentences
     greedily; corpus BLEU (deepnotes.metrics.text, equal to sacreBLEU's) is computed per
     source-length bucket, and the difference on sources longer than 10 tokens gets a 95%
     interval by Koehn's paired bootstrap (2004) over the test sentences.

     Full size: the gettext-fr-en pairs (English->French user-interface strings, 1-20 tokens,
     deepnotes.data.pairs), the registered model sizes (embedding 128, GRU 256), Adam, gradient
     clipping at norm 1. Quick: a made-up language in which every English word has one French
     word and the order is kept (sentences of 3-14 words over 12 words), tiny models: the
     fixed vector has to hold the whole sentence, which attention does not need.

The models and decoding are deepnotes's own (models/seq2seq.py, models/decoding.py); training is
a plain loop over deepnotes.tasks.translation's length-bucketed batches, on this machine's CPU.
"""

from __future__ import annotations

import random
import time

import numpy as np
import torch
import torch.nn.functional as F

from deepnotes.lab import Context, Finding, experiment
from deepnotes.lab.common import new_figure, save_figure
from deepnotes.metrics.text import corpus_bleu, paired_bootstrap
from deepnotes.models import create_model
from deepnotes.tasks.translation import MIN_COUNT, PairBatches, tokenized_pairs, translate_pairs
from deepnotes.text.vocab import Vocabulary

LONG = 10  # "sentences longer than 10 words" (the issue's and Bahdanau et al.'s long end)
GOAL = 5.0  # BLEU points attention should add on the long sentences (the project's goal for C38)
ARMS = {"none": "seq2seq", "bahdanau": "seq2seq_bahdanau", "luong": "seq2seq_luong"}


def made_up_pairs(n: int, seed: int, *, words: int = 12, shortest: int = 3, longest: int = 14) -> list[tuple[list[str], list[str]]]:
    """n pairs of a made-up language: English word eK is French word fK, in the same order."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        src = [f"e{rng.randrange(words)}" for _ in range(rng.randint(shortest, longest))]
        out.append((src, ["f" + w[1:] for w in src]))
    return out


def gettext_pairs() -> tuple[list[tuple[list[str], list[str]]], list[tuple[list[str], list[str]]], str]:
    """The gettext-fr-en train and test pairs, tokenized, of 1-MAX_TOKENS tokens on both sides."""
    from deepnotes.data import load_dataset

    data = load_dataset("gettext-fr-en")
    return tokenized_pairs(data.train), tokenized_pairs(data.test), data.name


def buckets_for(longest: int) -> list[tuple[int, int]]:
    """Source-length buckets: 1-5, 6-10, then 11 to the longest (split in two past 15)."""
    out = [(1, 5), (6, LONG)]
    out += [(LONG + 1, longest)] if longest <= 15 else [(LONG + 1, 15), (16, longest)]
    return out


def train_arm(model_name: str, train, vocab: tuple[Vocabulary, Vocabulary], *, model_args: dict, epochs: int, batch_size: int,
              lr: float, seed: int, log) -> tuple[torch.nn.Module, list[float], float]:  # fmt: skip
    """Adam with gradient clipping at norm 1 on teacher-forced cross-entropy: the model, the mean
    loss per epoch and the training seconds."""
    src_vocab, tgt_vocab = vocab
    torch.manual_seed(seed)
    model = create_model(model_name, vocab_size=len(src_vocab), num_classes=len(tgt_vocab), **model_args)
    encoded = [(src_vocab.encode(s, eos=False), tgt_vocab.encode(t, eos=False)) for s, t in train]
    batches = PairBatches(encoded, batch_size, shuffle=True, seed=seed, drop_last=True)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses, start = [], time.perf_counter()
    for epoch in range(epochs):
        model.train()
        total = n = 0
        for src, lengths, tgt_in, tgt_out in batches.epoch(epoch):
            loss = F.cross_entropy(model(src, lengths, tgt_in).flatten(0, 1), tgt_out.flatten(), ignore_index=0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total, n = total + float(loss.detach()), n + 1
        losses.append(total / max(1, n))
        log(f"C38 {model_name} epoch {epoch + 1}/{epochs}: loss {losses[-1]:.3f} ({time.perf_counter() - start:.0f} s)")
    return model.eval(), losses, time.perf_counter() - start


def translations(model, test, vocab: tuple[Vocabulary, Vocabulary]) -> list[str]:
    """Greedy translations of the test sources, as tokens joined by spaces (what BLEU scores)."""
    src_vocab, tgt_vocab = vocab
    return translate_pairs(model, [(src_vocab.encode(s, eos=False), []) for s, _ in test], tgt_vocab, torch.device("cpu"))[0]


def judge_c38(numbers: dict) -> tuple[str, str]:
    """Holds if attention's BLEU on the long sources (> 10 tokens) is above the fixed vector's
    with the paired-bootstrap 95% interval above 0; does not hold if the interval reaches 0 or
    below. The reason also says whether the fixed vector's BLEU falls from the shortest to the
    longest bucket (the bottleneck the notes describe) and whether the project's 5-point goal is met."""
    n = numbers
    d = n["long_difference"]
    by = n["by_bucket"]
    falls = by[-1]["fixed"] < by[0]["fixed"]
    summary = (
        f"{n['data']}, {n['train_pairs']:,} training pairs x {n['epochs']} epochs, seed {n['seed']}: BLEU with / without attention "
        + ", ".join(f"{b['shortest']}-{b['longest']} tokens {b['attention']:.1f} / {b['fixed']:.1f} ({b['sentences']} sentences)" for b in by)
        + f"; on sources > {LONG} tokens attention - fixed {d['difference']:+.1f} BLEU, 95% paired-bootstrap interval "
        f"[{d['low']:+.1f}, {d['high']:+.1f}] ({d['samples']} resamples of the test sentences, not of training runs); "
        f"the fixed vector's BLEU {'falls' if falls else 'does not fall'} from the shortest to the longest sources "
        f"({by[0]['fixed']:.1f} -> {by[-1]['fixed']:.1f})"
    )
    if n["data"] == "gettext-fr-en":  # the project's goal is stated for the real pairs
        summary += f"; the project's goal of >= {GOAL:g} points on the long ones is {'met' if d['difference'] >= GOAL else 'missed'}"
    if d["low"] <= 0:
        return "does not hold", f"the long sentences' interval reaches 0: {summary}"
    return "holds", summary


@experiment("C38", quick_verdict="holds", opposite={"attention": "none"})
def run_c38(ctx: Context, attention: str = "bahdanau", epochs: int | None = None, batch_size: int | None = None,
            lr: float | None = None) -> Finding:  # fmt: skip
    """Train the fixed-vector seq2seq and the attention one (`attention`: bahdanau or luong;
    "none" makes both arms the fixed vector: the opposite evidence, nothing to find) with one
    recipe, then score BLEU by source length. Quick: the made-up language, 1,500 training
    pairs, embedding 32, GRU 48, 3 epochs. Full: gettext-fr-en, the registered sizes, 4 epochs
    of batch 64."""
    if attention not in ARMS:
        raise ValueError(f"attention is one of {', '.join(ARMS)}, got {attention!r}")
    if ctx.quick:
        train, test, name = made_up_pairs(1500, ctx.seed), made_up_pairs(300, ctx.seed + 1), "made-up word-for-word language"
        model_args = {"embed_dim": 32, "hidden_size": 48, "dropout": 0.0}
    else:
        train, test, name = gettext_pairs()
        model_args = {}
    epochs = epochs or ctx.size(3, 4)
    batch_size = batch_size or ctx.size(32, 64)
    lr = lr or ctx.size(3e-3, 2e-3)
    vocab = (Vocabulary.build((s for s, _ in train), min_count=MIN_COUNT), Vocabulary.build((t for _, t in train), min_count=MIN_COUNT))
    refs = [" ".join(t) for _, t in test]
    arms, hyps = {}, {}
    for arm, model_name in (("fixed", ARMS["none"]), ("attention", ARMS[attention])):
        model, losses, seconds = train_arm(model_name, train, vocab, model_args=model_args, epochs=epochs, batch_size=batch_size,
                                           lr=lr, seed=ctx.seed, log=ctx.log)  # fmt: skip
        hyps[arm] = translations(model, test, vocab)
        arms[arm] = {"model": model_name, "params": sum(p.numel() for p in model.parameters()), "loss_per_epoch": [round(v, 4) for v in losses],
                     "train_seconds": round(seconds, 1), "bleu": round(corpus_bleu(hyps[arm], [refs]).score, 2)}  # fmt: skip
    lengths = [len(s) for s, _ in test]
    by_bucket = []
    for lo, hi in buckets_for(max(lengths)):
        idx = [i for i, n in enumerate(lengths) if lo <= n <= hi]
        if not idx:
            continue
        score = {arm: corpus_bleu([hyps[arm][i] for i in idx], [[refs[i] for i in idx]]).score for arm in arms}
        by_bucket.append({"shortest": lo, "longest": hi, "sentences": len(idx), "fixed": round(score["fixed"], 2), "attention": round(score["attention"], 2)})
    long_idx = [i for i, n in enumerate(lengths) if n > LONG]
    boot = paired_bootstrap([hyps["attention"][i] for i in long_idx], [hyps["fixed"][i] for i in long_idx], [refs[i] for i in long_idx],
                            samples=ctx.size(300, 1000), seed=ctx.seed)  # fmt: skip
    numbers = {
        "data": name, "train_pairs": len(train), "test_pairs": len(test), "epochs": epochs, "batch_size": batch_size, "lr": lr,
        "seed": ctx.seed, "attention": attention, "arms": arms, "by_bucket": by_bucket,
        "long_difference": {k: (round(v, 2) if isinstance(v, float) else v) for k, v in boot.items()},
        "threads": torch.get_num_threads(),
        "recipe": f"Adam lr {lr:g}, gradient norm clipped at 1, batch {batch_size}, length-bucketed batches, teacher forcing, greedy decoding",
    }  # fmt: skip

    fig, axes = new_figure(2, 1, size=(5.0, 3.8))
    ax = axes[0, 0]
    x = np.arange(len(by_bucket))
    ax.bar(x - 0.2, [b["fixed"] for b in by_bucket], 0.4, color="C7", label=f"{arms['fixed']['model']} (fixed vector)")
    ax.bar(x + 0.2, [b["attention"] for b in by_bucket], 0.4, color="C0", label=f"{arms['attention']['model']}")
    ax.set_xticks(x, [f"{b['shortest']}-{b['longest']}\n({b['sentences']})" for b in by_bucket])
    ax.set(xlabel="source length in tokens (test sentences)", ylabel="corpus BLEU", title="BLEU by source length")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    ax = axes[0, 1]
    for arm, colour in (("fixed", "C7"), ("attention", "C0")):
        ax.plot(range(1, epochs + 1), arms[arm]["loss_per_epoch"], "o-", color=colour, label=arms[arm]["model"])
    ax.set(xlabel="epoch", ylabel="training loss per token", title="training loss")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    d = numbers["long_difference"]
    fig.suptitle(f"{name}: attention - fixed on > {LONG} tokens {d['difference']:+.1f} BLEU [{d['low']:+.1f}, {d['high']:+.1f}]", fontsize=10)
    figure = save_figure(fig, ctx.figure_path("bleu_by_length"))
    verdict, reason = judge_c38(numbers)
    return Finding(numbers, [figure], verdict, reason)
