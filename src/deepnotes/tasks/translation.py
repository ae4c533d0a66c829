"""Translation: a sentence in, a sentence out (task "translation"), English to French.

    deepnotes train seq2seq_bahdanau --data gettext-fr-en --epochs 20 --out runs/fr
    deepnotes translate runs/fr "Save the file" --beam 5 --attention alignment.png

The data are sentence pairs (a dataset of kind "pairs"); both sides are tokenized
(deepnotes.text.tokenize), pairs longer than MAX_TOKENS tokens on either side are left out, and
the vocabularies (PAD, SOS, EOS, UNK, then every token seen at least MIN_COUNT times in the
training pairs) are built from the training split and saved in config.json, so a run directory
translates on its own. Training is teacher-forced token-level cross-entropy (padding ignored);
the headline metric is corpus BLEU (deepnotes.metrics.text.corpus_bleu, equal to sacreBLEU's) of
greedy translations of the held-out test pairs, computed on the lowercased tokenized text; the
test loss, token accuracy and perplexity exp(loss) are recorded beside it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.errors import UserError
from deepnotes.metrics.text import corpus_bleu
from deepnotes.registry import register_task
from deepnotes.report.html import ReportParts, html_table
from deepnotes.report.plots import Panel
from deepnotes.rundir import RunConfig
from deepnotes.tasks.base import StepOutput, Target, Task
from deepnotes.text.tokenize import detokenize, tokenize
from deepnotes.text.vocab import EOS, PAD, SOS, Vocabulary

MAX_TOKENS = 20  # per side, EOS not counted: the classic tutorial keeps sentences of < 10 words
MIN_COUNT = 2  # a token seen once in training is UNK: the model could not learn it anyway
EVAL_SENTENCES = 1000  # BLEU is computed on at most this many test pairs (greedy decoding, every epoch)
EXAMPLES = 8  # translations shown in the report


def tokenized_pairs(pairs) -> list[tuple[list[str], list[str]]]:
    """(English, French) strings -> token lists, keeping the pairs of 1 to MAX_TOKENS tokens on both sides."""
    out = [(tokenize(en), tokenize(fr)) for en, fr in pairs]
    return [(s, t) for s, t in out if 1 <= len(s) <= MAX_TOKENS and 1 <= len(t) <= MAX_TOKENS]


class PairBatches:
    """Mini-batches of encoded sentence pairs: (src (B, S), src_lengths (B,), tgt_in (B, T),
    tgt_out (B, T)), padded with PAD; tgt_in starts with SOS, tgt_out ends with EOS. The order is a
    pure function of (seed, epoch), as deepnotes.data.transforms.TensorBatches' (resume relies on
    it); with world_size > 1 every rank takes every world_size-th pair of the same permutation.

    Shuffled batches are bucketed: the permutation is cut into pools of POOL batches, each pool
    is sorted by length and cut into batches, and the batches are shuffled again, so a batch
    holds sentences of about one length (an RNN steps through the longest one: padding costs
    time) while every epoch still sees new batches in a new order."""

    POOL = 50

    def __init__(self, pairs: list[tuple[list[int], list[int]]], batch_size: int, *, shuffle: bool = False, seed: int = 0,
                 drop_last: bool = False, rank: int = 0, world_size: int = 1):  # fmt: skip
        if batch_size % world_size:
            raise UserError(f"--batch-size {batch_size} must be divisible by the number of processes ({world_size})")
        self.pairs, self.batch_size, self.shuffle, self.seed = pairs, batch_size // world_size, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.num_samples = len(pairs) // world_size if world_size > 1 else len(pairs)
        self.drop_last = drop_last and self.num_samples >= self.batch_size

    def __len__(self) -> int:
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else math.ceil(n / b)

    def epoch(self, epoch: int, start_step: int = 0):
        n = len(self.pairs)
        if self.shuffle:
            g = torch.Generator().manual_seed(((self.seed * 1_000_003 + epoch) * 7) % (2**63))
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        if self.world_size > 1:
            order = order[self.rank :: self.world_size][: self.num_samples]
        order = order[: len(self) * self.batch_size].tolist()  # drop_last: whole batches only
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.shuffle:
            pool = self.POOL * self.batch_size
            batches = []
            for start in range(0, len(order), pool):
                chunk = sorted(order[start : start + pool], key=lambda i: (len(self.pairs[i][0]), len(self.pairs[i][1])))
                batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
            batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
        for step in range(start_step, len(self)):
            yield collate([self.pairs[i] for i in batches[step]])


def collate(pairs: list[tuple[list[int], list[int]]]):
    """Encoded pairs -> the padded tensors of one batch (see PairBatches)."""
    B = len(pairs)
    S = max(len(s) for s, _ in pairs)
    T = max(len(t) for _, t in pairs) + 1
    src = torch.full((B, S), PAD, dtype=torch.long)
    tgt_in = torch.full((B, T), PAD, dtype=torch.long)
    tgt_out = torch.full((B, T), PAD, dtype=torch.long)
    for b, (s, t) in enumerate(pairs):
        src[b, : len(s)] = torch.tensor(s)
        tgt_in[b, : len(t) + 1] = torch.tensor([SOS, *t])
        tgt_out[b, : len(t) + 1] = torch.tensor([*t, EOS])
    return src, torch.tensor([len(s) for s, _ in pairs]), tgt_in, tgt_out


class Translation(Task):
    name = "translation"
    description = "a sentence -> its translation: teacher-forced cross-entropy, greedy decoding, corpus BLEU"
    data_kinds = ("pairs",)
    options = frozenset()  # none of the image options
    commands = ("translate",)
    target = Target("test_bleu", "test BLEU", percent=False, upper=100.0)
    sample_name = "sentences"
    sample_unit = "sent"

    def setup(self, data: Any, source: RunConfig | None) -> None:
        cfg = self.cfg

        train, test = tokenized_pairs(data.train), tokenized_pairs(data.test)
        if not train or not test:
            raise UserError(f"{data.name} has no pairs of 1 to {MAX_TOKENS} tokens on both sides in its train or test split")
        if source is not None:  # transfer: the same vocabularies, so that the embeddings line up
            self.src_vocab = Vocabulary.from_dict(source.input["source_vocab"])
            self.tgt_vocab = Vocabulary.from_dict(source.input["target_vocab"])
        else:
            self.src_vocab = Vocabulary.build((s for s, _ in train), min_count=MIN_COUNT)
            self.tgt_vocab = Vocabulary.build((t for _, t in train), min_count=MIN_COUNT)
        overrides = dict(cfg.model_args)
        if source is not None:
            overrides = {k: v for k, v in source.model_args.items() if k not in ("vocab_size", "num_classes")} | overrides
        self.model_args = {"vocab_size": len(self.src_vocab), "num_classes": len(self.tgt_vocab), **overrides}
        encode = lambda pairs: [(self.src_vocab.encode(s, eos=False), self.tgt_vocab.encode(t, eos=False)) for s, t in pairs]  # noqa: E731
        self.train_pairs, self.test_pairs, self.test_text = encode(train), encode(test), test
        self.input = {
            "tokenizer": "deepnotes.text.tokenize", "max_tokens": MAX_TOKENS, "min_count": MIN_COUNT,
            "source_vocab": self.src_vocab.to_dict(), "target_vocab": self.tgt_vocab.to_dict(),
        }  # fmt: skip
        self.input_note = (
            f"{len(train):,} train / {len(test):,} test pairs of 1-{MAX_TOKENS} tokens; vocabularies of "
            f"{len(self.src_vocab):,} source and {len(self.tgt_vocab):,} target tokens (seen >= {MIN_COUNT} times)"
        )

    def train_batches(self, rank: int = 0, world_size: int = 1) -> PairBatches:
        return PairBatches(self.train_pairs, self.cfg.batch_size, shuffle=True, seed=self.cfg.seed, drop_last=True,
                           rank=rank, world_size=world_size)  # fmt: skip

    def test_batches(self) -> PairBatches:
        return PairBatches(self.test_pairs, min(self.cfg.eval_batch_size, 256))

    def training_step(self, net: nn.Module, batch) -> StepOutput:
        src, lengths, tgt_in, tgt_out = batch
        logits = net(src, lengths, tgt_in)  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD)  # mean over real tokens
        real = tgt_out != PAD
        tokens = real.sum()
        correct = ((logits.detach().argmax(-1) == tgt_out) & real).sum()
        return StepOutput(loss, {"loss": loss.detach() * tokens, "tokens": tokens, "correct": correct}, len(src))

    def train_record(self, sums, seen) -> dict[str, float]:
        tokens = max(1, sums.get("tokens", 0))
        return {"train_loss": sums.get("loss", 0.0) / tokens, "train_accuracy": sums.get("correct", 0) / tokens}

    def evaluate(self, core: nn.Module, batches) -> dict[str, Any]:
        core.eval()
        loss_sum, tokens, correct = 0.0, 0, 0
        for src, lengths, tgt_in, tgt_out in batches.epoch(0):
            src, tgt_in, tgt_out = src.to(self.device), tgt_in.to(self.device), tgt_out.to(self.device)
            logits = core(src, lengths, tgt_in)
            real = tgt_out != PAD
            loss_sum += float(F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD, reduction="sum"))
            tokens += int(real.sum())
            correct += int(((logits.argmax(-1) == tgt_out) & real).sum())
        n = min(EVAL_SENTENCES, len(self.test_pairs))
        hyps, shown = translate_pairs(core, self.test_pairs[:n], self.tgt_vocab, self.device)
        refs = [" ".join(t) for _, t in self.test_text[:n]]  # the tokens themselves: a word outside the vocabulary stays itself
        sources = [" ".join(s) for s, _ in self.test_text[:EXAMPLES]]
        loss = loss_sum / max(1, tokens)
        return {
            "loss": loss, "accuracy": correct / max(1, tokens), "perplexity": math.exp(min(loss, 50.0)),
            "bleu": corpus_bleu(hyps, [refs]).score,
            "examples": [{"source": s, "reference": r, "translation": h} for s, r, h in zip(sources, refs[:EXAMPLES], shown)],
        }  # fmt: skip

    def test_record(self, ev) -> dict[str, Any]:
        return {"test_loss": ev["loss"], "test_accuracy": ev["accuracy"], "test_perplexity": ev["perplexity"], "test_bleu": ev["bleu"]}

    def scores_text(self, record) -> str:
        return (f"test loss {record['test_loss']:.4f}  ppl {record['test_perplexity']:.1f}  "
                f"token acc {record['test_accuracy']:.2%}  BLEU {record['test_bleu']:.2f}")  # fmt: skip

    def final_metrics(self, ev) -> dict[str, Any]:
        return {} if ev is None else {"examples": ev["examples"]}

    def curve_panels(self) -> list[Panel]:
        return [
            Panel("Loss per token", "cross-entropy", (("train_loss", "train"), ("test_loss", "test"))),
            Panel("BLEU", "BLEU (0-100)", (("test_bleu", "test BLEU"),)),
        ]

    def write_figures(self, run_dir, core, ev, metrics) -> list[dict]:
        if not metrics["epochs"]:
            return []
        pairs = self.test_pairs[:4]
        src = [s for s, _ in pairs]
        tokens, weights = decode(core, src, self.device)
        if weights is None:
            return []
        items = [(self.src_vocab.decode(s), self.tgt_vocab.decode(t), w) for s, t, w in zip(src, tokens, weights)]
        draw_alignments(items, Path(run_dir) / "attention.png")
        return [{"path": "attention.png", "caption": "attention weights of the first test sentences (rows: French output, columns: English input)"}]

    def report(self, metrics) -> ReportParts:
        parts = super().report(metrics)
        if isinstance(metrics.get("test_perplexity"), (int, float)):
            parts.cards.append(("test perplexity", f"{metrics['test_perplexity']:.1f}"))
            parts.headline_keys.add("test_perplexity")
        if metrics.get("examples"):
            parts.sections.append(("Example translations (greedy, test pairs)", html_table(metrics["examples"])))
        parts.labels = {"train_accuracy": "train token acc", "test_accuracy": "test token acc", "test_perplexity": "test ppl",
                        "test_bleu": "test BLEU"}  # fmt: skip
        return parts

    def final_text(self, metrics) -> str:
        if metrics.get("test_bleu") is None:
            return "no epoch finished"
        return f"test BLEU {metrics['test_bleu']:.2f} (perplexity {metrics['test_perplexity']:.1f})"


register_task(Translation)


# --------------------------------------------------------------------------- decoding


@torch.no_grad()
def decode(model: nn.Module, sources: list[list[int]], device: torch.device, *, beam: int = 1, max_len: int = MAX_TOKENS + 10):
    """Greedy (beam 1) or beam-search decoding of encoded sources, in batches of 64: the token ids
    per source (EOS and PAD included) and the attention weights (T, S) per source, or None."""
    model.eval()
    ids, weights = [], []
    for i in range(0, len(sources), 64):
        chunk = sources[i : i + 64]
        src, lengths, _, _ = collate([(s, []) for s in chunk])
        src = src.to(device)
        out, w = model.greedy(src, lengths, max_len) if beam == 1 else model.beam_search(src, lengths, beam, max_len)
        ids += out.tolist()
        weights += [w[b, :, : len(s)].cpu() for b, s in enumerate(chunk)] if w is not None else [None] * len(chunk)
    return ids, (weights if weights and weights[0] is not None else None)


def translate_pairs(model: nn.Module, pairs, tgt_vocab: Vocabulary, device: torch.device):
    """Greedy translations of encoded pairs: as the lowercased tokens joined by spaces (what BLEU
    is computed on), and the first EXAMPLES of them detokenized."""
    tokens, _ = decode(model, [s for s, _ in pairs], device)
    hyps = [" ".join(tgt_vocab.decode(t)) for t in tokens]
    return hyps, [detokenize(h.split()) for h in hyps[:EXAMPLES]]


def draw_alignments(items, out_png: str | Path) -> Path:
    """One heat map per (source tokens, translated tokens, weights (T, S)) item, side by side."""
    from deepnotes.report.plots import new_figure, save_png

    fig = new_figure((4.2 * len(items), 4.0))
    axes = fig.subplots(1, len(items), squeeze=False)[0]
    for ax, (src, out, w) in zip(axes, items):
        w = w[: len(out) + 1].numpy()  # the rows of the produced tokens and the EOS step
        ax.imshow(w, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(src)), src, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(w)), [*out, "<eos>"][: len(w)], fontsize=7)
    fig.tight_layout()
    return save_png(fig, out_png)


# --------------------------------------------------------------------------- using a trained run


def translate(run, sentence: str, *, beam: int = 1, attention_png: str | Path | None = None) -> tuple[str, list[str], Path | None]:
    """Translate one sentence with a translation run: (the translation, the source tokens as the
    model saw them (UNK for unknown words), the attention figure written or None)."""
    run.require("translate")
    if beam < 1:
        raise UserError(f"--beam must be >= 1, got {beam}")
    src_vocab = Vocabulary.from_dict(run.config.input["source_vocab"])
    tgt_vocab = Vocabulary.from_dict(run.config.input["target_vocab"])
    tokens = tokenize(sentence)
    if not tokens:
        raise UserError("the sentence has no words to translate")
    max_tokens = run.config.input.get("max_tokens", MAX_TOKENS)
    if len(tokens) > 3 * max_tokens:
        raise UserError(f"the sentence has {len(tokens)} tokens; this run was trained on sentences of at most {max_tokens}")
    ids = src_vocab.encode(tokens, eos=False)
    out, weights = decode(run.model, [ids], torch.device("cpu"), beam=beam, max_len=2 * max_tokens + 10)
    words = tgt_vocab.decode(out[0])
    seen = src_vocab.decode(ids)
    figure = None
    if attention_png is not None:
        if weights is None:
            raise UserError(f"{run.config.model} has no attention to draw; --attention needs a model with attention (seq2seq_bahdanau, ...)")
        figure = draw_alignments([(seen, words, weights[0])], attention_png)
    return detokenize(words), seen, figure
