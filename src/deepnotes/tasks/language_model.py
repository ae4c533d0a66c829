"""Language models (task "language-model"): a corpus, one token at a time.

    deepnotes train gpt_nano --data shakespeare --out runs/gpt          # nanoGPT's CPU recipe, characters
    deepnotes train lstm_lm --data shakespeare --out runs/lstm
    deepnotes train ngram5 --data shakespeare --out runs/ngram         # counted, one step
    deepnotes train bert_mini --data brown --tokenizer word --out runs/bert   # masked tokens
    deepnotes generate runs/gpt --prompt "ROMEO:" --max-new-tokens 300 --temperature 0.8

The data is a corpus (a dataset of kind "corpus": shakespeare, brown, bible-kjv, gettext-en); every
tenth document (i % 10 == 9: 4 of Shakespeare's 42 plays, 50 of Brown's 500 texts) is held out as
the test text, the rest is the training text (a corpus of one document: its last tenth). The
tokenizer (deepnotes.text.streams: char, word or bpe; --tokenizer, else the model's, else char) is
learned from the training text and saved in config.json, so a run generates on its own.

Causal models (GPT, RNN: `objective == "causal"`) learn next-token prediction: a step takes
--batch-size windows of --block-size + 1 tokens at random places of the training stream (as
nanoGPT's get_batch), the loss is the mean cross-entropy of every position's next token. Masked
models (BERT) see the same windows with 15% of the tokens chosen (80% -> [MASK], 10% random, 10%
kept; Devlin et al. 2019) and learn to restore the chosen ones. An n-gram model has no weights: its
one step per epoch counts the whole training stream (`fit`), and its "training loss" is that
stream's own NLL under the counts.

An epoch is --steps-per-epoch steps (default 250, nanoGPT's eval_interval; the defaults, 8 epochs of
250 steps, are nanoGPT's 2,000 iterations). After each, the test text is scored in non-overlapping
windows of the block size, the first EVAL_TOKENS tokens (the same for every model of a tokenizer):
the loss per token in nats (the headline: lower is better; --target-accuracy is a loss to reach),
perplexity = exp(loss), bits per character = total nats / characters / ln 2 (the number that
compares a character model with a word or BPE one), and next-token accuracy. A masked model's are
those of the chosen tokens, drawn with a fixed seed (its "perplexity" is the masked tokens').

Optimization (torch AdamW for adamw/adam, as nanoGPT configures it): weight decay only on the
matrices (weights of 2 or more dimensions), betas (0.9, 0.99) (nanoGPT's shakespeare_char: few
tokens per step). The report ends with text sampled from the trained model.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.errors import UserError
from deepnotes.metrics.language import bits_per_character, perplexity
from deepnotes.registry import register_task
from deepnotes.report.html import ReportParts
from deepnotes.report.plots import Panel
from deepnotes.rundir import RunConfig
from deepnotes.tasks.base import StepOutput, Target, Task
from deepnotes.text.streams import LMTokenizer, build_tokenizer, corpus_stream, parse_tokenizer
from deepnotes.text.vocab import EOS
from deepnotes.train.optim import build_optimizer

EVAL_TOKENS = 32_768  # test tokens scored after every epoch (nanoGPT estimates from 20 x 12 x 64 = 15,360)
EVAL_BATCH_TOKENS = 8_192  # tokens per evaluation forward pass
STEPS_PER_EPOCH = 250  # nanoGPT's eval_interval
DEFAULT_BLOCK = 128  # a model without a context of its own (an RNN) trains on windows of this many tokens
SAMPLE_TOKENS = 300  # sampled into the report
SAMPLE_TEMPERATURE = 0.8  # nanoGPT's sample.py
HELD_OUT_EVERY = 10  # document i is test text when i % 10 == 9
IGNORE = -100  # cross_entropy's ignore_index: positions a masked LM does not score
MASK_SEED = 1234  # the test text's masks (the same for every evaluation and every run)


def split_documents(num_docs: int) -> tuple[list[int], list[int]]:
    """(train documents, test documents): every tenth document (i % 10 == 9) is test text."""
    test = [d for d in range(num_docs) if d % HELD_OUT_EVERY == HELD_OUT_EVERY - 1]
    return [d for d in range(num_docs) if d not in set(test)], test


def make_streams(tok: LMTokenizer, corpus) -> tuple[np.ndarray, np.ndarray]:
    """The training and test streams of `corpus` (see the module docstring)."""
    train_docs, test_docs = split_documents(corpus.num_docs)
    if test_docs and train_docs:
        return corpus_stream(tok, corpus, train_docs), corpus_stream(tok, corpus, test_docs)
    ids = corpus_stream(tok, corpus, range(max(corpus.num_docs, 1)))
    cut = int(0.9 * len(ids))
    return ids[:cut], ids[cut:]


class BlockBatches:
    """Random windows of the training stream: (x (B, T), y (B, T)) with y the next tokens of x. The
    window starts are drawn per epoch from a generator seeded by (seed, epoch, rank), so the order is
    a pure function of them (resume relies on it); each rank draws its own windows."""

    def __init__(self, ids: torch.Tensor, block: int, batch_size: int, steps: int, *, seed: int, rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise UserError(f"--batch-size {batch_size} must be divisible by the number of processes ({world_size})")
        if len(ids) < block + 2:
            raise UserError(f"the training text has {len(ids):,} tokens, fewer than one window of --block-size {block} + 1")
        self.ids, self.block, self.batch_size, self.steps = ids, block, batch_size // world_size, steps
        self.seed, self.rank = seed, rank
        self.offsets = torch.arange(block + 1)

    def __len__(self) -> int:
        return self.steps

    def epoch(self, epoch: int, start_step: int = 0):
        g = torch.Generator().manual_seed(((self.seed * 1_000_003 + epoch) * 7919 + self.rank) % (2**63))
        starts = torch.randint(0, len(self.ids) - self.block, (self.steps, self.batch_size), generator=g)
        for step in range(start_step, self.steps):
            w = self.ids[starts[step].unsqueeze(1) + self.offsets]
            yield w[:, :-1], w[:, 1:]


class EvalBlocks:
    """The first EVAL_TOKENS tokens of the test stream in non-overlapping windows of the block size."""

    def __init__(self, ids: torch.Tensor, block: int, tokens: int | None = None):
        n = max(1, min(tokens or EVAL_TOKENS, len(ids) - 1) // block)
        if len(ids) < block + 1:
            raise UserError(f"the test text has {len(ids):,} tokens, fewer than one window of --block-size {block} + 1")
        self.x = ids[: n * block].view(n, block)
        self.y = ids[1 : n * block + 1].view(n, block)
        self.per_batch = max(1, EVAL_BATCH_TOKENS // block)

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.per_batch)

    def epoch(self, epoch: int = 0, start_step: int = 0):
        for i in range(start_step * self.per_batch, len(self.x), self.per_batch):
            yield self.x[i : i + self.per_batch], self.y[i : i + self.per_batch]


class WholeStream:
    """An n-gram model's one step: the whole training stream, once."""

    def __init__(self, ids: torch.Tensor):
        self.ids = ids

    def __len__(self) -> int:
        return 1

    def epoch(self, epoch: int = 0, start_step: int = 0):
        if start_step == 0:
            yield (self.ids.unsqueeze(0),)


def default_tokenizer(model: str) -> str:
    """The tokenizer `deepnotes train MODEL` uses without --tokenizer: the model's (Variant.train), else char."""
    from deepnotes.models import MODELS

    entry = MODELS.get(model) if model in MODELS else None
    return ((entry.variant.train if entry is not None and entry.variant else {}) or {}).get("tokenizer") or "char"


class LanguageModel(Task):
    name = "language-model"
    description = "next-token (GPT, RNN, n-gram) or masked-token (BERT) prediction on a corpus: perplexity, bits per character, samples"
    data_kinds = ("corpus",)
    options = frozenset({"tokenizer", "block_size", "steps_per_epoch"})
    commands = ("generate",)
    target = Target("test_loss", "test loss (nats/token)", higher_is_better=False, percent=False, upper=None)
    sample_name = "tokens"
    sample_unit = "tok"
    train_defaults = {"optimizer": "adamw", "lr": 1e-3, "schedule": "cosine", "batch_size": 32, "epochs": 8,
                      "weight_decay": 0.1, "clip_grad_norm": 1.0}  # fmt: skip  (nanoGPT's, its batch 12 aside)

    # ------------------------------------------------------------------ building the run

    def setup(self, data: Any, source: RunConfig | None) -> None:
        cfg = self.cfg
        if source is not None:  # pre-training -> fine-tuning: the same tokenizer, so the ids mean the same
            self.tokenizer = LMTokenizer.from_dict(source.input["tokenizer"], where=f"--from {cfg.from_run}'s tokenizer")
            if cfg.tokenizer is not None and parse_tokenizer(cfg.tokenizer)[0] != self.tokenizer.kind:
                raise UserError(f"--tokenizer {cfg.tokenizer}: the run in --from {cfg.from_run} uses {self.tokenizer.kind}; "
                                "fine-tuning keeps its tokenizer (leave --tokenizer out)")  # fmt: skip
        else:
            self.tokenizer = build_tokenizer(cfg.tokenizer or default_tokenizer(cfg.model), data, split_documents(data.num_docs)[0] or [0])
        train, test = make_streams(self.tokenizer, data)
        if len(train) < 3 or len(test) < 3:
            raise UserError(f"{data.name} gives {len(train):,} training and {len(test):,} test tokens: too little text for a language model")
        self.train_ids, self.test_ids = torch.from_numpy(train), torch.from_numpy(test)
        self.char_len = torch.from_numpy(self.tokenizer.char_lengths())
        overrides = dict(cfg.model_args)
        if source is not None:
            overrides = {k: v for k, v in source.model_args.items() if k not in ("vocab_size", "num_classes")} | overrides
        self.model_args = {"vocab_size": len(self.tokenizer), "num_classes": len(self.tokenizer), **overrides}
        self.input = {
            "tokenizer": self.tokenizer.to_dict(),
            "split": f"document i is test text when i % {HELD_OUT_EVERY} == {HELD_OUT_EVERY - 1}",
            "train_tokens": len(train), "test_tokens": len(test), "eval_tokens": min(EVAL_TOKENS, len(test) - 1),
        }  # fmt: skip
        self.input_note = (
            f"{data.name}: {len(train):,} training and {len(test):,} test tokens ({self.tokenizer.kind} tokenizer: "
            f"{self.tokenizer.describe()}); the test loss on the first {self.input['eval_tokens']:,} test tokens"
        )

    def build(self, model: nn.Module) -> nn.Module:
        self.model = model
        self.objective = getattr(model, "objective", None)
        if self.objective not in ("causal", "masked"):
            raise UserError(f"{self.cfg.model} is not a language model of this task (objective causal or masked)")
        context = getattr(model, "context", None)
        self.counted = hasattr(model, "fit")  # an n-gram table: counted, not trained
        self.manual_optimization = self.counted
        if self.objective == "masked" and self.tokenizer.mask_id is None:
            raise UserError(f"{self.cfg.model} is a masked language model: it needs a [MASK] token, so --tokenizer word "
                            f"(this run's is {self.tokenizer.kind})")  # fmt: skip
        block = self.cfg.block_size or (context if context and not self.counted else DEFAULT_BLOCK)  # (a table scores any length)
        if context is not None and block > context and not self.counted:
            raise UserError(f"--block-size {block} is longer than {self.cfg.model}'s context of {context} tokens; "
                            f"give --block-size {context} or less, or --model-arg block_size={block}")  # fmt: skip
        self.block = block
        self.notes.append(
            f"{'counted once (no weights to train)' if self.counted else f'windows of {block} tokens'}; "
            f"{'masked tokens (15%: 80% [MASK], 10% random, 10% kept)' if self.objective == 'masked' else 'next-token prediction'}"
        )
        return model

    def train_batches(self, rank: int = 0, world_size: int = 1):
        if self.counted:
            return WholeStream(self.train_ids)
        steps = self.cfg.steps_per_epoch or STEPS_PER_EPOCH
        return BlockBatches(self.train_ids, self.block, self.cfg.batch_size, steps, seed=self.cfg.seed, rank=rank, world_size=world_size)

    def test_batches(self) -> EvalBlocks:
        return EvalBlocks(self.test_ids, self.block)

    def configure_optimizers(self, params) -> list[torch.optim.Optimizer]:
        if not params:
            self.optimizers = []
            return self.optimizers
        if self.cfg.optimizer in ("adamw", "adam"):
            decay = [p for p in params if p.dim() >= 2]
            rest = [p for p in params if p.dim() < 2]
            groups = [{"params": decay, "weight_decay": self.cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
            self.optimizers = [torch.optim.AdamW([g for g in groups if g["params"]], lr=self.cfg.learning_rate, betas=(0.9, 0.99))]
        else:
            self.optimizers = [build_optimizer(self.cfg, params)]
        return self.optimizers

    # ------------------------------------------------------------------ steps

    def _masked(self, x: torch.Tensor, generator: torch.Generator | None):
        from deepnotes.models.bert import mask_tokens

        tok = self.tokenizer
        return mask_tokens(x, vocab_size=len(tok), mask_id=tok.mask_id, generator=generator, protected=tok.special_ids,
                           random_low=max(tok.special_ids) + 1)  # fmt: skip

    def training_step(self, net: nn.Module, batch) -> StepOutput:
        if self.counted:
            (ids,) = batch
            net.fit(ids[0])
            with torch.no_grad():
                nll = net.nll(ids[:, :-1], ids[:, 1:]).sum()
            n = ids.shape[1] - 1
            return StepOutput(nll, {"loss": nll, "tokens": n}, n)
        x, y = batch
        if self.objective == "masked":
            x, y = self._masked(x, None)  # the global generator: a resumed run draws the same masks
        logits = net(x)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), ignore_index=IGNORE)
        scored = y != IGNORE
        n = scored.sum()
        correct = ((logits.detach().argmax(-1) == y) & scored).sum()
        return StepOutput(loss, {"loss": loss.detach() * n, "tokens": n, "correct": correct}, int(x.numel()))

    def train_record(self, sums, seen) -> dict[str, float]:
        tokens = max(1, int(sums.get("tokens", 0)))
        out = {"train_loss": float(sums.get("loss", 0.0)) / tokens}
        if "correct" in sums:
            out["train_accuracy"] = float(sums["correct"]) / tokens
        return out

    @torch.no_grad()
    def evaluate(self, core: nn.Module, batches) -> dict[str, Any]:
        core.eval()
        nll, tokens, chars, correct = 0.0, 0, 0, 0
        masks = torch.Generator().manual_seed(MASK_SEED)
        for x, y in batches.epoch(0):
            x, y = x.to(self.device), y.to(self.device)
            if self.objective == "masked":
                x, y = self._masked(x, masks)
            if self.counted:
                losses, logits = core.nll(x, y), None
            else:
                logits = core(x).float()
                losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE, reduction="none").view_as(y)
            scored = y != IGNORE
            nll += float(losses[scored].double().sum())
            tokens += int(scored.sum())
            chars += int(self.char_len[y[scored].cpu()].sum())  # (a masked position's target is its own token)
            if logits is not None:
                correct += int(((logits.argmax(-1) == y) & scored).sum())
        loss = nll / max(1, tokens)
        return {
            "loss": loss, "perplexity": perplexity(nll, max(1, tokens)), "bits_per_character": bits_per_character(nll, max(1, chars)),
            "accuracy": None if self.counted else correct / max(1, tokens), "tokens": tokens,
        }  # fmt: skip

    def test_record(self, ev) -> dict[str, Any]:
        out = {"test_loss": ev["loss"], "test_perplexity": ev["perplexity"], "test_bpc": ev["bits_per_character"]}
        if ev["accuracy"] is not None:
            out["test_accuracy"] = ev["accuracy"]
        return out

    def scores_text(self, record) -> str:
        acc = f"  acc {record['test_accuracy']:.1%}" if "test_accuracy" in record else ""
        return f"test loss {record['test_loss']:.4f}  ppl {record['test_perplexity']:.2f}  bpc {record['test_bpc']:.3f}{acc}"

    # ------------------------------------------------------------------ results

    def final_metrics(self, ev) -> dict[str, Any]:
        if ev is None or self.objective != "causal":
            return {}
        prompt = self.test_ids[: min(16, self.model.context or 16)].tolist()
        g = torch.Generator().manual_seed(self.cfg.seed)
        text = "".join(stream_text(self.model, self.tokenizer, prompt, SAMPLE_TOKENS, temperature=SAMPLE_TEMPERATURE, generator=g))
        return {"sample": {"prompt": self.tokenizer.decode(prompt), "text": text, "temperature": SAMPLE_TEMPERATURE,
                           "tokens": SAMPLE_TOKENS, "seed": self.cfg.seed}}  # fmt: skip

    def curve_panels(self) -> list[Panel]:
        return [
            Panel("Loss per token", "cross-entropy (nats)", (("train_loss", "train"), ("test_loss", "test"))),
            Panel("Bits per character", "bits", (("test_bpc", "test"),)),
        ]

    def report(self, metrics) -> ReportParts:
        import html

        parts = super().report(metrics)
        for key, label, fmt in (("test_perplexity", "test perplexity", "{:.2f}"), ("test_bpc", "bits per character", "{:.3f}")):
            if isinstance(metrics.get(key), (int, float)):
                parts.cards.append((label, fmt.format(metrics[key])))
                parts.headline_keys.add(key)
        sample = metrics.get("sample")
        if isinstance(sample, dict):
            body = (f"<p>{SAMPLE_TOKENS} tokens at temperature {sample['temperature']}, seed {sample['seed']}, after the "
                    f"prompt in bold (the first test tokens)</p><pre><b>{html.escape(sample['prompt'])}</b>{html.escape(sample['text'])}</pre>")  # fmt: skip
            parts.sections.append(("Sampled text", body))
        parts.labels = {"train_accuracy": "train acc", "test_accuracy": "test acc", "test_perplexity": "test ppl", "test_bpc": "test bpc"}
        return parts

    def final_text(self, metrics) -> str:
        if metrics.get("test_loss") is None:
            return "no epoch finished"
        return (f"test loss {metrics['test_loss']:.4f} nats/token (perplexity {metrics['test_perplexity']:.2f}, "
                f"{metrics['test_bpc']:.3f} bits per character)")  # fmt: skip


register_task(LanguageModel)


# --------------------------------------------------------------------------- using a trained run


def piece(tok: LMTokenizer, i: int) -> str:
    """The text one generated id adds (streaming): a character, a word and its space, a BPE piece."""
    return tok.decode([i]) if tok.kind == "char" else "\n" if i == EOS else tok.decode([i]) + (" " if tok.kind == "word" else "")


def stream_text(model: nn.Module, tok: LMTokenizer, prompt: list[int], max_new_tokens: int, *, temperature: float = 1.0,
                top_k: int | None = None, top_p: float | None = None, generator: torch.Generator | None = None):  # fmt: skip
    """The text of each token sampled after `prompt`, as it comes (deepnotes.models.sampling)."""
    from deepnotes.models.sampling import generate

    if tok.kind == "bpe":  # a piece ends a word when it carries "</w>": the text comes a word at a time
        pending: list[int] = []
        for t in generate(model, torch.tensor([prompt]), max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                          generator=generator):  # fmt: skip
            i = int(t[0])
            if i == EOS:
                yield (tok.decode(pending) + "\n") if pending else "\n"
                pending = []
                continue
            pending.append(i)
            if tok.table.itos[i].endswith("</w>"):
                yield tok.decode(pending) + " "
                pending = []
        if pending:
            yield tok.decode(pending)
        return
    for t in generate(model, torch.tensor([prompt]), max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator):
        yield piece(tok, int(t[0]))


def generate_text(run, prompt: str, max_new_tokens: int = 300, *, temperature: float = 0.8, top_k: int | None = None,
                  top_p: float | None = None, seed: int = 0):  # fmt: skip
    """`deepnotes generate`: the prompt's ids as the run's tokenizer reads them, and an iterator of text pieces."""
    run.require("generate")
    if getattr(run.model, "objective", None) != "causal":
        raise UserError(f"{run.config.model} is a masked language model: it fills in masked tokens and does not generate text "
                        "left to right; generate with a causal one (gpt_nano, lstm_lm, ngram3, ...)")  # fmt: skip
    if max_new_tokens < 1:
        raise UserError(f"--max-new-tokens must be >= 1, got {max_new_tokens}")
    tok = LMTokenizer.from_dict(run.config.input["tokenizer"], where=f"{run.run_dir}/config.json's tokenizer")
    ids = tok.encode_text(prompt) if prompt else []
    if not ids:  # a start: a line break (char) or the end of a sentence (word, bpe)
        ids = tok.encode_text("\n") if tok.kind == "char" and "\n" in tok.table else [EOS] if tok.kind != "char" else [0]
    g = torch.Generator().manual_seed(seed)
    return ids, stream_text(run.model, tok, ids, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, generator=g)
