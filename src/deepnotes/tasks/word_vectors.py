"""Word vectors from a corpus (task "word-vectors"): Word2Vec skip-gram and CBOW, FastText, GloVe.

    deepnotes train word2vec --data brown --epochs 5 --out runs/w2v
    deepnotes embed neighbors runs/w2v king
    deepnotes embed analogy runs/w2v man king woman          # man : king :: woman : ?
    deepnotes embed eval runs/w2v                            # WordSim-353, SimLex-999, Google analogies

The data is a corpus (a dataset of kind "corpus": brown, shakespeare, bible-kjv, gettext-en),
already lowercased and tokenized. The vocabulary is every word seen at least min_count times
(a model setting, as gensim's), most frequent first, saved in config.json; rarer words are
removed from the sentences before windows are taken (gensim and word2vec.c do the same).

GloVe (Pennington et al. 2014, models/glove.py) trains on the non-zero cells of the co-occurrence
matrix (deepnotes.text.cooccurrence), counted once, shuffled every epoch, by AdaGrad with a constant
rate, as glove.c (the command line's defaults for glove: lr 0.5 and 25 epochs, models/glove.py says why).

One epoch of Word2Vec (Mikolov et al. 2013), as word2vec.c and gensim:
1. subsampling: each occurrence of word w is kept with probability
   min(1, (sqrt(f(w) / t) + 1) * t / f(w)), t = sample * (words in the corpus), drawn anew every epoch;
2. a window per kept position: b drawn uniformly in 1..window, the context is the kept words
   at distance 1..b inside the same sentence;
3. skip-gram trains on every (centre, context) pair, CBOW on every (context words, centre);
   each with `negative` noise words drawn from counts^0.75 (the specials and nothing else have 0);
4. the learning rate falls linearly from --lr (0.025, gensim's and word2vec.c's) to 1e-4 of it
   over the run (--schedule linear).
The examples of an epoch are shuffled (a pure function of (seed, epoch)) and cut into batches of
--batch-size (default 1024 here) updated at once; see deepnotes.models.word2vec on why that is
the same algorithm up to Hogwild's ordering. The number of pairs varies a little from epoch to
epoch (subsampling and windows are random); every epoch runs the steps of epoch 1, dropping or
repeating the fraction of a percent that differs, so the schedule knows its length.

Evaluation after each epoch (deepnotes.metrics.wordvec, computed as gensim does): Spearman
correlation on WordSim-353 and SimLex-999, 3CosAdd accuracy on the Google analogy questions,
out-of-vocabulary pairs and questions counted. The headline is the WordSim-353 Spearman
correlation. "pairs_loss" is the loss of a fixed sample of training examples with fixed noise
words: how well the objective is fit (there is no held-out text to score).

The run directory also holds vectors.txt in the word2vec text format ("V dim" on the first line,
then "word x1 x2 ..."), which gensim's KeyedVectors.load_word2vec_format and other tools read.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepnotes.errors import DataError, UserError
from deepnotes.fileio import write_text
from deepnotes.metrics.wordvec import analogy_accuracy, nearest, word_similarity
from deepnotes.registry import register_task
from deepnotes.report.html import ReportParts, html_table
from deepnotes.report.plots import Panel
from deepnotes.rundir import RunConfig
from deepnotes.tasks.base import StepOutput, Target, Task
from deepnotes.text.vocab import SPECIALS, Vocabulary

DEFAULTS = {"optimizer": "sgd", "lr": 0.025, "schedule": "linear", "batch_size": 1024}  # word2vec.c's / gensim's
PROBE_EXAMPLES = 20_000  # the fixed sample of training examples whose loss is reported
PLOT_WORDS = ("man", "woman", "king", "queen", "boy", "girl", "father", "mother", "son", "daughter",
              "monday", "friday", "sunday", "january", "june", "one", "two", "three", "ten",
              "red", "green", "blue", "black", "white", "dog", "cat", "horse", "car", "train", "ship")  # fmt: skip
NEIGHBOUR_WORDS = ("man", "king", "money", "war", "god", "house", "good", "file", "love", "time")


# --------------------------------------------------------------------------- the corpus as ids


def corpus_ids(sentences, vocab: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """The words of `sentences` that are in the vocabulary, as one stream of ids (int64) and the
    sentence of each (int64); out-of-vocabulary words are removed, not replaced."""
    ids, sent = [], []
    stoi = vocab.stoi
    for j, sentence in enumerate(sentences):
        row = [stoi[t] for t in sentence if t in stoi and stoi[t] >= len(SPECIALS)]
        ids += row
        sent += [j] * len(row)
    return np.asarray(ids, dtype=np.int64), np.asarray(sent, dtype=np.int64)


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """Subsampling (Mikolov et al. 2013b, the formula of word2vec.c and gensim): the probability
    that an occurrence of each word is kept, for a threshold `sample` (0: keep all)."""
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones_like(counts)
    t = sample * counts.sum()
    with np.errstate(divide="ignore"):
        p = (np.sqrt(counts / t) + 1.0) * t / counts
    return np.minimum(1.0, np.nan_to_num(p, nan=1.0, posinf=1.0))


def noise_cdf(counts: np.ndarray, power: float = 0.75) -> torch.Tensor:
    """The cumulative noise distribution counts^power / sum (float64), for searchsorted draws."""
    w = torch.as_tensor(np.asarray(counts, dtype=np.float64)) ** power
    cdf = torch.cumsum(w / w.sum(), 0)
    cdf[-1] = 1.0
    return cdf


def windows(ids: np.ndarray, sent: np.ndarray, window: int, rng: np.random.Generator, keep: np.ndarray | None):
    """One epoch's subsampled stream and its dynamic windows: (centre positions, context
    positions) for every pair at distance <= the centre's window b (1..window), in one sentence.
    Returns (kept ids, centre index, context index) into the kept stream."""
    if keep is not None:
        mask = rng.random(len(ids)) < keep[ids]
        ids, sent = ids[mask], sent[mask]
    b = rng.integers(1, window + 1, len(ids))
    centres, contexts = [], []
    for d in range(1, window + 1):
        same = sent[:-d] == sent[d:]
        right = np.nonzero(same & (b[:-d] >= d))[0]  # centre i, context i + d
        left = np.nonzero(same & (b[d:] >= d))[0]  # centre i + d, context i
        centres += [right, left + d]
        contexts += [right + d, left]
    return ids, np.concatenate(centres), np.concatenate(contexts)


class WindowBatches:
    """The examples of one epoch, batched: skip-gram (centre (B,), context (B,)); CBOW (context ids
    (B, 2 * window), -1 padded, centre (B,)). A pure function of (seed, epoch)."""

    def __init__(self, ids, sent, keep, *, mode: str, window: int, batch_size: int, seed: int):
        self.ids, self.sent, self.keep, self.mode, self.window = ids, sent, keep, mode, window
        self.batch_size, self.seed = batch_size, seed
        self.examples = self._examples(1)[0].shape[0]  # epoch 1's count sets the steps of every epoch
        self.steps = max(1, math.ceil(self.examples / batch_size))

    def __len__(self) -> int:
        return self.steps

    def _examples(self, epoch: int):
        rng = np.random.default_rng([self.seed, epoch])
        ids, c, x = windows(self.ids, self.sent, self.window, rng, self.keep)
        if self.mode == "skipgram":
            return ids[c], ids[x], rng
        # CBOW: one example per centre with at least one context word: its context ids in a row
        order = np.argsort(c, kind="stable")
        c, x = c[order], x[order]
        centres, starts, counts = np.unique(c, return_index=True, return_counts=True)
        slot = np.arange(len(c)) - np.repeat(starts, counts)
        ctx = np.full((len(centres), 2 * self.window), -1, dtype=np.int64)
        ctx[np.repeat(np.arange(len(centres)), counts), slot] = ids[x]
        return ctx, ids[centres], rng

    def epoch(self, epoch: int, start_step: int = 0):
        a, b, rng = self._examples(epoch)
        need = self.steps * self.batch_size
        order = rng.permutation(len(b))
        order = np.resize(order, need) if len(order) < need else order  # repeats the first few if short
        a, b = torch.from_numpy(a), torch.from_numpy(b)
        for step in range(start_step, self.steps):
            i = torch.from_numpy(order[step * self.batch_size : (step + 1) * self.batch_size])
            yield a[i], b[i]


class CellBatches:
    """GloVe's examples: the non-zero cells (i, j, X_ij) of the co-occurrence matrix, shuffled every
    epoch (a pure function of (seed, epoch)), in batches of batch_size (the last one shorter)."""

    def __init__(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, *, batch_size: int, seed: int):
        self.rows, self.cols, self.values = torch.from_numpy(rows), torch.from_numpy(cols), torch.from_numpy(values.astype(np.float32))
        self.batch_size, self.seed, self.mode = batch_size, seed, "glove"
        self.examples = len(rows)
        self.steps = max(1, math.ceil(self.examples / batch_size))

    def __len__(self) -> int:
        return self.steps

    def _examples(self, epoch: int):
        rng = np.random.default_rng([self.seed, epoch])
        return torch.stack([self.rows, self.cols], 1), self.values, rng

    def epoch(self, epoch: int, start_step: int = 0):
        order = torch.from_numpy(np.random.default_rng([self.seed, epoch]).permutation(self.examples))
        for step in range(start_step, self.steps):
            i = order[step * self.batch_size : (step + 1) * self.batch_size]
            yield torch.stack([self.rows[i], self.cols[i]], 1), self.values[i]


class ProbeBatches:
    """A fixed sample of training examples with fixed noise words (drawn once from the seed)."""

    def __init__(self, batches, cdf: torch.Tensor | None, negative: int, size: int = PROBE_EXAMPLES):
        a, b, rng = batches._examples(0)
        pick = torch.from_numpy(rng.permutation(len(b))[:size])
        g = torch.Generator().manual_seed(batches.seed)
        self.a, self.b = torch.as_tensor(a)[pick], torch.as_tensor(b)[pick]
        self.noise = None if cdf is None else torch.searchsorted(cdf, torch.rand(len(pick), negative, generator=g, dtype=torch.float64))

    def epoch(self, epoch: int = 0, start_step: int = 0):
        yield self.a, self.b, self.noise


# --------------------------------------------------------------------------- evaluation sets


def load_benchmarks() -> tuple[dict[str, Any], list[str]]:
    """WordSim-353, SimLex-999 and the Google analogies (deepnotes.data.wordsets), as far as they
    can be found; notes for the ones that cannot."""
    from deepnotes.data.wordsets import load_analogies, load_word_pairs

    found, notes = {}, []
    for name in ("wordsim353", "simlex999"):
        try:
            found[name] = load_word_pairs(name)
        except DataError as e:
            notes.append(f"{name} not scored: {e}")
    try:
        found["analogies"] = load_analogies()
    except DataError as e:
        notes.append(f"analogies not scored: {e}")
    return found, notes


def score_vectors(vectors, index: dict[str, int], benchmarks: dict[str, Any]) -> dict[str, Any]:
    """{"wordsim": {...}, "simlex": {...}, "analogy": {...}} for the benchmarks given."""
    out: dict[str, Any] = {}
    for key, name in (("wordsim", "wordsim353"), ("simlex", "simlex999")):
        if name in benchmarks:
            pairs = benchmarks[name]
            out[key] = word_similarity(vectors, index, pairs.pairs, pairs.scores)
    if "analogies" in benchmarks:
        a = benchmarks["analogies"]
        out["analogy"] = analogy_accuracy(vectors, index, a.questions, [a.sections[i] for i in a.section_of])
    return out


# --------------------------------------------------------------------------- the task


class WordVectors(Task):
    name = "word-vectors"
    description = "word vectors from a corpus: Word2Vec (skip-gram, CBOW), FastText, GloVe; word similarity and analogies"
    data_kinds = ("corpus",)
    options = frozenset()
    commands = ("embed",)
    target = Target("test_wordsim", "WordSim-353 Spearman", percent=False, upper=1.0)
    sample_name = "examples"
    sample_unit = "ex"
    manual_optimization = True  # word2vec.c's SGD on the rows a batch touches, written out (models/word2vec.py)
    train_defaults = DEFAULTS

    @classmethod
    def check_options(cls, cfg) -> None:
        from deepnotes.models import get_model_entry

        super().check_options(cfg)
        entry = get_model_entry(cfg.model)
        wanted = (entry.variant.train if entry.variant else {}).get("optimizer", DEFAULTS["optimizer"])
        if cfg.optimizer != wanted:
            how = "AdaGrad as glove.c (Pennington et al. 2014)" if wanted == "adagrad" else "plain SGD (Mikolov et al. 2013)"
            raise UserError(f"{cfg.model} trains by {how}, written out on the rows each batch touches; "
                            f"--optimizer {cfg.optimizer} does not apply: use --optimizer {wanted}")  # fmt: skip
        if cfg.precision != "fp32" or cfg.clip_grad_norm is not None or cfg.weight_decay:
            raise UserError("word vectors train in fp32 without --clip-grad-norm or --weight-decay (their SGD is written out by hand)")

    def setup(self, data: Any, source: RunConfig | None) -> None:
        from deepnotes.models import get_model_entry

        settings = {**get_model_entry(self.cfg.model).defaults, **self.cfg.model_args}
        self.settings = settings
        if source is not None:
            raise UserError("word vectors do not start from another run (--from); train them from scratch")
        self.vocab = Vocabulary.build(data.sentences, min_count=int(settings["min_count"]))
        if len(self.vocab) <= len(SPECIALS) + 1:
            raise UserError(f"{data.name} has fewer than 2 words seen at least min_count={settings['min_count']} times; "
                            "lower it (--model-arg min_count=1) or use a larger corpus")  # fmt: skip
        self.words = self.vocab.itos
        self.index = {w: i for i, w in enumerate(self.words) if i >= len(SPECIALS)}
        counts = np.array([0] * len(SPECIALS) + self.vocab.counts, dtype=np.float64)
        self.ids, self.sent = corpus_ids(data.sentences, self.vocab)
        self.model_args = {"vocab_size": len(self.vocab), "num_classes": len(self.vocab), **self.cfg.model_args}
        self.input = {"corpus_tokenizer": getattr(data, "tokenizer", ""), "vocab": self.vocab.to_dict()}
        window = int(settings["window"])
        if "x_max" in settings:  # GloVe: the co-occurrence counts, once
            from deepnotes.text.cooccurrence import cooccurrence

            starts = np.flatnonzero(np.r_[True, self.sent[1:] != self.sent[:-1]]) if len(self.sent) else np.zeros(0, np.int64)
            X = cooccurrence((self.ids, starts), len(self.vocab), window=window)
            self.cdf = None
            self.batches = CellBatches(X.row.astype(np.int64), X.col.astype(np.int64), X.data, batch_size=self.cfg.batch_size, seed=self.cfg.seed)
            what = f"{self.batches.examples:,} non-zero co-occurrence cells (window {window}, 1/d weights)"
        else:
            self.cdf = noise_cdf(counts)
            keep = keep_probabilities(counts, float(settings["sample"]))
            self.batches = WindowBatches(self.ids, self.sent, keep, mode=settings.get("mode", "skipgram"), window=window,
                                         batch_size=self.cfg.batch_size, seed=self.cfg.seed)  # fmt: skip
            what = f"{self.batches.examples:,} {self.batches.mode} examples in epoch 1 (window {window}, sample {settings['sample']:g})"
        self.benchmarks, notes = load_benchmarks()
        self.notes += notes
        self.input_note = (
            f"{data.name}: {len(self.ids):,} words in the vocabulary of {len(self.vocab) - len(SPECIALS):,} "
            f"(seen >= {settings['min_count']} times) of {sum(map(len, data.sentences)):,}; {what}"
        )

    def build(self, model: nn.Module) -> nn.Module:
        if hasattr(model, "set_vocabulary"):  # FastText: which n-gram rows each word uses
            model.set_vocabulary(self.words)
        return super().build(model)

    @classmethod
    def inference_model(cls, model: nn.Module, config: RunConfig) -> nn.Module:
        if hasattr(model, "set_vocabulary"):
            model.set_vocabulary(Vocabulary.from_dict(config.input["vocab"]).itos)
        return model

    def train_batches(self, rank: int = 0, world_size: int = 1):
        if world_size > 1:
            raise UserError("word vectors train in one process (their updates are Hogwild-style row updates); drop the distributed launch")
        return self.batches

    def test_batches(self) -> ProbeBatches:
        return ProbeBatches(self.batches, self.cdf, int(self.settings.get("negative", 0)))

    def configure_optimizers(self, params) -> list[torch.optim.Optimizer]:
        # never stepped: it carries the learning rate that the engine's schedule sets each step
        self.optimizers = [torch.optim.SGD(params, lr=self.cfg.learning_rate)]
        return self.optimizers

    def _step(self, net, a, b, noise, lr: float) -> torch.Tensor:
        if net.mode == "glove":
            return net.glove_step(a[:, 0], a[:, 1], b, lr)
        targets = torch.cat([b.unsqueeze(1), noise], 1)
        return net.cbow_step(a, targets, lr) if net.mode == "cbow" else net.sgns_step(a, targets, lr)

    def training_step(self, net: nn.Module, batch) -> StepOutput:
        a, b = batch
        noise = None if self.cdf is None else torch.searchsorted(self.cdf, torch.rand(len(b), net.negative, dtype=torch.float64))
        opt = self.optimizers[0]
        loss = self._step(net, a, b, noise, opt.param_groups[0]["lr"])
        opt.step()  # no gradients, so nothing moves: it tells the schedule that a step happened
        return StepOutput(loss, {"loss": loss}, len(b))

    @torch.no_grad()
    def evaluate(self, core: nn.Module, batches) -> dict[str, Any]:
        a, b, noise = next(batches.epoch(0))
        if core.mode == "glove":  # its biases move without the learning rate (glove.c): the loss by itself
            loss = float(core.cell_loss(a[:, 0], a[:, 1], b)) / len(b)
        else:
            loss = float(self._step(core, a, b, noise, 0.0)) / len(b)  # lr 0: the update adds zeros, only the loss counts
        vectors = core.vectors()
        scores = score_vectors(vectors, self.index, self.benchmarks)
        neighbours = {w: nearest(vectors, self.index, self.words, w, k=8) for w in NEIGHBOUR_WORDS if w in self.index}
        return {"loss": loss, **scores, "neighbours": neighbours}

    def test_record(self, ev) -> dict[str, Any]:
        """None where a score could not be computed (no benchmark file, or fewer than 3 pairs or no
        question with every word in the vocabulary: a tiny corpus)."""
        finite = lambda x: x if x is not None and math.isfinite(x) else None  # noqa: E731
        return {
            "pairs_loss": ev["loss"],
            "test_wordsim": finite(ev.get("wordsim", {}).get("spearman")),
            "test_simlex": finite(ev.get("simlex", {}).get("spearman")),
            "test_analogy": finite(ev.get("analogy", {}).get("accuracy")),
        }

    def scores_text(self, record) -> str:
        parts = [f"pairs loss {record['pairs_loss']:.4f}"]
        for key, label in (("test_wordsim", "WordSim-353"), ("test_simlex", "SimLex-999")):
            parts.append(f"{label} {record[key]:.3f}" if record.get(key) is not None else f"{label} -")
        parts.append(f"analogies {record['test_analogy']:.2%}" if record.get("test_analogy") is not None else "analogies -")
        return "  ".join(parts)

    def summary(self, history, ev) -> dict[str, Any]:
        out = {k: v for k, v in (history[-1] if history else {}).items() if k.startswith("test_") or k == "pairs_loss"}
        out.setdefault("test_wordsim", None)
        scored = [h["test_wordsim"] for h in history if h.get("test_wordsim") is not None]
        out["best_test_wordsim"] = max(scored, default=None)
        return out

    def final_metrics(self, ev) -> dict[str, Any]:
        if ev is None:
            return {}
        out = {k: ev[k] for k in ("wordsim", "simlex", "analogy") if k in ev}
        return {"benchmarks": out, "neighbours": {w: [[n, round(s, 4)] for n, s in ns] for w, ns in ev["neighbours"].items()}}

    def curve_panels(self) -> list[Panel]:
        return [
            Panel("Loss", "loss per example", (("train_loss", "train (running)"), ("pairs_loss", "fixed sample"))),
            Panel("Word similarity", "Spearman", (("test_wordsim", "WordSim-353"), ("test_simlex", "SimLex-999"))),
        ]

    def write_figures(self, run_dir, core, ev, metrics) -> list[dict]:
        vectors = core.vectors()
        write_vectors(Path(run_dir) / "vectors.txt", self.words[len(SPECIALS):], vectors[len(SPECIALS):])
        figures = []
        chosen = [w for w in PLOT_WORDS if w in self.index]
        if len(chosen) >= 3:
            draw_words(vectors, self.index, chosen, Path(run_dir) / "words-pca.png")
            figures.append({"path": "words-pca.png", "caption": "chosen words' vectors projected on their first two principal components"})
        return figures

    def report(self, metrics) -> ReportParts:
        parts = super().report(metrics)
        for key, label in (("test_simlex", "SimLex-999 Spearman"), ("test_analogy", "analogy accuracy")):
            if isinstance(metrics.get(key), (int, float)):
                parts.cards.append((label, f"{metrics[key]:.2%}" if key == "test_analogy" else f"{metrics[key]:.3f}"))
                parts.headline_keys.add(key)
        rows = [{"word": w, "nearest (cosine)": ", ".join(f"{n} {s:.2f}" for n, s in ns)} for w, ns in (metrics.get("neighbours") or {}).items()]
        if rows:
            parts.sections.append(("Nearest neighbours", html_table(rows)))
        parts.labels = {"test_wordsim": "WordSim-353", "test_simlex": "SimLex-999", "test_analogy": "analogies", "pairs_loss": "sample loss"}
        return parts

    def final_text(self, metrics) -> str:
        if metrics.get("test_wordsim") is None:
            return "no epoch finished" if not metrics.get("epochs") else "trained (no WordSim-353 to score on)"
        text = f"WordSim-353 Spearman {metrics['test_wordsim']:.3f}"
        if metrics.get("test_analogy") is not None:
            text += f", analogies {metrics['test_analogy']:.2%}"
        return text


register_task(WordVectors)


# --------------------------------------------------------------------------- files and figures


def write_vectors(path: str | Path, words, vectors) -> Path:
    """The word2vec text format: "V dim", then one "word x1 ... xdim" line per word (%.6g)."""
    v = np.asarray(vectors.detach().cpu() if isinstance(vectors, torch.Tensor) else vectors, dtype=np.float32)
    lines = [f"{len(words)} {v.shape[1]}"]
    lines += [w + " " + " ".join(f"{x:.6g}" for x in row) for w, row in zip(words, v)]
    return write_text(path, "\n".join(lines) + "\n")


def read_vectors(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Words and vectors of a word2vec text file (a DataError naming the line when it is not one)."""
    words, rows = [], []
    with open(path, encoding="utf-8") as f:
        head = f.readline().split()
        if len(head) != 2 or not all(h.isdigit() for h in head):
            raise DataError(f"{path}: the first line must be 'V dim' (the word2vec text format), got {' '.join(head)[:60]!r}")
        n, dim = int(head[0]), int(head[1])
        for lineno, line in enumerate(f, 2):
            parts = line.rstrip("\n").split(" ")
            if len(parts) != dim + 1:
                raise DataError(f"{path}:{lineno}: expected a word and {dim} numbers, got {len(parts) - 1} values")
            words.append(parts[0])
            rows.append(np.asarray(parts[1:], dtype=np.float32))
    if len(words) != n:
        raise DataError(f"{path}: the header says {n} words but the file has {len(words)}")
    return words, np.stack(rows) if rows else np.zeros((0, dim), np.float32)


def draw_words(vectors, index: dict[str, int], words: list[str], out_png: str | Path) -> Path:
    from sklearn.decomposition import PCA

    from deepnotes.report.plots import new_figure, save_png

    x = np.asarray(torch.as_tensor(vectors)[[index[w] for w in words]].float())
    xy = PCA(n_components=2, random_state=0).fit_transform(x)
    fig = new_figure((6.5, 5.5))
    ax = fig.subplots()
    ax.scatter(xy[:, 0], xy[:, 1], s=12)
    for (px, py), w in zip(xy, words):
        ax.annotate(w, (px, py), fontsize=8, xytext=(3, 2), textcoords="offset points")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    fig.tight_layout()
    return save_png(fig, out_png)


# --------------------------------------------------------------------------- using a trained run


def run_vectors(run) -> tuple[list[str], dict[str, int], torch.Tensor]:
    """(words by id, word -> id without the specials, (V, dim) vectors) of a word-vectors run."""
    run.require("embed")
    vocab = Vocabulary.from_dict(run.config.input["vocab"], f"{run.run_dir}/config.json")
    words = vocab.itos
    index = {w: i for i, w in enumerate(words) if i >= len(SPECIALS)}
    return words, index, run.model.vectors()


def vector_of(run_model, index: dict[str, int], word: str) -> torch.Tensor:
    """The vector of `word`; a model that builds vectors for unseen words (FastText) does; otherwise
    a UserError naming the nearest spellings in the vocabulary."""
    word = word.lower()
    if word in index:
        return run_model.vectors()[index[word]]
    oov = getattr(run_model, "oov_vector", None)
    if oov is not None:
        return oov(word)
    import difflib

    close = difflib.get_close_matches(word, list(index), n=3)
    hint = f"; close: {', '.join(close)}" if close else ""
    raise UserError(f"{word!r} is not in the run's vocabulary of {len(index):,} words{hint}")
