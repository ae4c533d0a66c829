"""Word2Vec: skip-gram and CBOW with negative sampling (Mikolov et al. 2013, arXiv:1301.3781 and
arXiv:1310.4546), trained by the word-vectors task (deepnotes.tasks.word_vectors).

    model = create_model("word2vec", vocab_size=len(vocab), num_classes=len(vocab))
    loss = model.sgns_step(centres, targets, lr)   # targets (B, 1 + K): the context word, then K noise words
    model.vectors()                                # (V, dim): the input vectors, what is evaluated and exported

Two tables of V x dim: `input` (the word vectors, initialized uniform in [-0.5/dim, 0.5/dim) as
word2vec.c) and `output` (the context vectors, zeros). Negative sampling replaces the softmax over
V words by K + 1 logistic regressions: the true (centre, context) pair labelled 1 and K words
drawn from the unigram distribution raised to 0.75, labelled 0 (Mikolov et al. 2013b, eq. 4):

    loss = -log s(u_o . v_c) - sum_k log s(-u_k . v_c)

The update is the one word2vec.c and gensim apply, batched: plain SGD on the rows a batch
touches, with the gradients written out (g = (label - s(score)) * lr), so no autograd graph and no
V x dim gradient tensor per step. Rows that occur several times in a batch receive the sum of
their updates (as Hogwild threads would, only all at once); up to ~4,096 pairs per batch at lr
0.025 this matches gensim's vectors on Brown (benchmarks/word_vectors.py), much larger batches
diverge on the most frequent noise words. tests/test_word_vectors.py checks the written-out
gradients against autograd on the same loss.

CBOW (mode="cbow") averages the context vectors (gensim's cbow_mean=1) to predict the centre word;
the step for the mean is added whole to each context word, as word2vec.c and gensim do (not the
mean's gradient, which is that step divided by the number of context words; divided, CBOW's
WordSim-353 on Brown was -0.07 against gensim's 0.12). A noise word equal to the target is kept
(word2vec.c and gensim skip it: rare for all but the most frequent words).

The window, the number of noise words, the subsampling threshold and min_count are training
settings of the task, kept in the config so that a run records them (gensim's Word2Vec takes
them the same way).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepnotes.registry import Variant, register_variants

MODES = ("skipgram", "cbow")
PAPER = "Mikolov et al. 2013, Efficient Estimation of Word Representations in Vector Space (arXiv:1301.3781); Distributed Representations of Words and Phrases (arXiv:1310.4546)"


@dataclass
class Word2VecConfig:
    dim: int = 100
    mode: str = "skipgram"
    window: int = 5  # the largest distance to a context word; each centre draws its own window of 1..window (word2vec.c)
    negative: int = 5  # noise words per pair
    sample: float = 1e-3  # subsampling threshold of frequent words (0: off)
    min_count: int = 5  # rarer words are dropped from the corpus before the windows are taken


class Word2Vec(nn.Module):
    def __init__(self, vocab_size: int, num_classes: int | None = None, dim: int = 100, mode: str = "skipgram",
                 window: int = 5, negative: int = 5, sample: float = 1e-3, min_count: int = 5):  # fmt: skip
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if num_classes not in (None, vocab_size):
            raise ValueError(f"the output table has one row per word: num_classes must equal vocab_size ({vocab_size})")
        checks = [(vocab_size >= 1, "vocab_size must be >= 1"), (dim >= 1, "dim must be >= 1"), (window >= 1, "window must be >= 1"),
                  (negative >= 1, "negative must be >= 1"), (sample >= 0, "sample must be >= 0"), (min_count >= 1, "min_count must be >= 1")]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        self.vocab_size, self.dim, self.mode = vocab_size, dim, mode
        self.window, self.negative, self.sample, self.min_count = window, negative, sample, min_count
        self.input = nn.Parameter((torch.rand(vocab_size, dim) - 0.5) / dim)
        self.output = nn.Parameter(torch.zeros(vocab_size, dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """The word vectors of `ids` (any shape) -> (..., dim)."""
        return self.input_vectors(ids.reshape(-1)).reshape(*ids.shape, self.dim)

    # ------------------------------------------------------------------ what a subclass may change (FastText)

    def input_vectors(self, ids: torch.Tensor) -> torch.Tensor:
        """The input vectors of a 1-D tensor of word ids."""
        return self.input.index_select(0, ids)

    def add_to_input(self, ids: torch.Tensor, delta: torch.Tensor) -> None:
        """Add delta (B, dim) to the input vectors of ids (B,)."""
        self.input.data.index_add_(0, ids, delta)

    def vectors(self) -> torch.Tensor:
        """(V, dim): the vector of every word of the vocabulary."""
        return self.input.detach()

    # ------------------------------------------------------------------ the updates

    @torch.no_grad()
    def sgns_step(self, centres: torch.Tensor, targets: torch.Tensor, lr: float) -> torch.Tensor:
        """One SGD step of skip-gram with negative sampling on B pairs: centres (B,), targets
        (B, 1 + K) with the context word first. Returns the summed loss before the step."""
        h = self.input_vectors(centres)  # (B, D)
        dh = self._negative_sampling(h, targets, lr)
        self.add_to_input(centres, dh)
        return self._last_loss

    @torch.no_grad()
    def cbow_step(self, contexts: torch.Tensor, targets: torch.Tensor, lr: float) -> torch.Tensor:
        """One SGD step of CBOW on B windows: contexts (B, 2 * window) of word ids, -1 where a
        window has fewer words; targets (B, 1 + K) with the centre word first."""
        real = contexts >= 0
        n = real.sum(1, keepdim=True).clamp_min(1)
        flat = contexts.clamp_min(0).reshape(-1)
        vecs = self.input_vectors(flat).view(*contexts.shape, self.dim) * real.unsqueeze(-1)
        h = vecs.sum(1) / n  # cbow_mean
        dh = self._negative_sampling(h, targets, lr)  # added whole to every context word (word2vec.c, gensim)
        keep = real.reshape(-1)
        self.add_to_input(flat[keep], dh.unsqueeze(1).expand(-1, contexts.shape[1], -1).reshape(-1, self.dim)[keep])
        return self._last_loss

    def _negative_sampling(self, h: torch.Tensor, targets: torch.Tensor, lr: float) -> torch.Tensor:
        """Update the output rows of targets for hidden vectors h (B, D); return the gradient step
        for h (to be added to the input side). Sets _last_loss (the summed loss)."""
        B, K1 = targets.shape
        flat = targets.reshape(-1)
        u = self.output.index_select(0, flat).view(B, K1, self.dim)
        scores = torch.einsum("bkd,bd->bk", u, h)
        sign = torch.full_like(scores, -1.0)
        sign[:, 0] = 1.0
        # -log s(sign * score), computed stably; the step is lr * (label - s(score))
        self._last_loss = nn.functional.softplus(-sign * scores).sum()
        g = torch.sigmoid(scores).neg_()
        g[:, 0] += 1.0
        g.mul_(lr)
        dh = torch.einsum("bk,bkd->bd", g, u)  # computed before the output rows move (as word2vec.c)
        self.output.data.index_add_(0, flat, torch.einsum("bk,bd->bkd", g, h).reshape(-1, self.dim))
        return dh


def _word2vec(**kwargs) -> Word2Vec:
    return Word2Vec(**kwargs)


_VOCAB = 10_000  # the registered size; a run builds the model for its corpus's vocabulary
VARIANTS = {
    "word2vec": Variant(
        "Word2Vec skip-gram with negative sampling: a word predicts the words around it (the vectors are the input table)",
        num_params=2 * _VOCAB * 100, input_size=(_VOCAB, 1), num_classes=_VOCAB, config=Word2VecConfig(),
        task="word-vectors", inputs="tokens",
    ),
    "cbow": Variant(
        "Word2Vec CBOW with negative sampling: the mean of the context vectors predicts the centre word",
        num_params=2 * _VOCAB * 100, input_size=(_VOCAB, 1), num_classes=_VOCAB, config=Word2VecConfig(mode="cbow"),
        task="word-vectors", inputs="tokens",
    ),
}
register_variants(_word2vec, VARIANTS, paper=PAPER)
