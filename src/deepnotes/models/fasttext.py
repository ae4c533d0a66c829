"""FastText: skip-gram over words and their character n-grams (Bojanowski et al. 2017,
"Enriching Word Vectors with Subword Information", arXiv:1607.04606).

    model = create_model("fasttext", vocab_size=len(vocab), num_classes=len(vocab))
    model.set_vocabulary(vocab.itos)       # which n-gram rows each word uses (the task does this)
    model.oov_vector("unforgetable")       # a vector for a word never seen: the mean of its n-gram rows

A word's input vector is the mean of its own row and the rows of its n-grams ("<word>" cut into
n = min_n..max_n characters, each hashed into one of `buckets` rows: deepnotes.text.subwords,
equal to gensim's ft_ngram_hashes); the skip-gram with negative sampling update is Word2Vec's
(models/word2vec.py), with the step for the mean added whole to each of its rows, as
fastText's and gensim's code do. In-vocabulary vectors are the same mean (gensim's wv.vectors); a word outside
the vocabulary gets the mean of its n-gram rows, so misspellings and rare inflections land near
the words they share n-grams with (C40).

The mean is over 1 + n rows, as fastText's computeHidden; gensim's training divides the same sum
by n (subwords_len counts the n-grams only) but its final wv.vectors by 1 + n.

buckets: the paper and gensim use 2,000,000 rows (800 MB at dim 100); the default here is 200,000,
enough for a corpus of a million words (Brown has ~350k distinct n-grams of 3-6 characters among
its 14k words seen 5 times): a collision shares a row between two n-grams.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepnotes.models.word2vec import Word2Vec
from deepnotes.registry import Variant, register_variants
from deepnotes.text.subwords import ngram_ids, ngram_table
from deepnotes.text.vocab import SPECIALS

PAPER = "Bojanowski et al. 2017, Enriching Word Vectors with Subword Information (arXiv:1607.04606)"


@dataclass
class FastTextConfig:
    dim: int = 100
    window: int = 5
    negative: int = 5
    sample: float = 1e-3
    min_count: int = 5
    min_n: int = 3
    max_n: int = 6
    buckets: int = 200_000


class FastText(Word2Vec):
    def __init__(self, vocab_size: int, num_classes: int | None = None, dim: int = 100, window: int = 5, negative: int = 5,
                 sample: float = 1e-3, min_count: int = 5, min_n: int = 3, max_n: int = 6, buckets: int = 200_000):  # fmt: skip
        super().__init__(vocab_size, num_classes, dim=dim, mode="skipgram", window=window, negative=negative, sample=sample,
                         min_count=min_count)  # fmt: skip
        if buckets < 1 or min_n < 1 or max_n < min_n:
            raise ValueError(f"FastText needs buckets >= 1 and 1 <= min_n <= max_n, got buckets={buckets}, min_n={min_n}, max_n={max_n}")
        self.min_n, self.max_n, self.buckets = min_n, max_n, buckets
        self.input.data.uniform_(-1.0 / dim, 1.0 / dim)  # gensim's init of both tables
        self.ngrams = nn.Parameter(torch.empty(buckets, dim).uniform_(-1.0 / dim, 1.0 / dim))
        # the n-gram rows of every word, as CSR: word i uses sub_rows[sub_start[i] : sub_start[i + 1]]
        # (set from the vocabulary by set_vocabulary; a padded (V, L) table would gather L = the longest word's count)
        self.register_buffer("sub_rows", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("sub_start", torch.zeros(vocab_size + 1, dtype=torch.long), persistent=False)
        self._cached = None  # (ids, parts) of the last _parts call

    def set_vocabulary(self, words: list[str]) -> None:
        """The n-gram rows of each word; the specials (<pad>, ...) have none."""
        if len(words) != self.vocab_size:
            raise ValueError(f"{len(words)} words for a vocabulary of {self.vocab_size}")
        ids, lengths = ngram_table([w if i >= len(SPECIALS) else "" for i, w in enumerate(words)], self.min_n, self.max_n, self.buckets)
        device = self.input.device
        self.sub_rows = torch.from_numpy(ids[ids >= 0]).long().to(device)  # row-major: word by word, in order
        self.sub_start = torch.cat([torch.zeros(1, dtype=torch.long), torch.from_numpy(lengths).long().cumsum(0)]).to(device)
        self._cached = None

    def _parts(self, ids: torch.Tensor):
        """For a batch of word ids: the n-gram rows of all of them (flat), which batch entry each
        belongs to, and each entry's number of parts (1 + its n-grams)."""
        if self._cached is not None and self._cached[0] is ids:  # the step's second call, same batch: computed once
            return self._cached[1]
        start, count = self.sub_start[ids], self.sub_start[ids + 1] - self.sub_start[ids]
        owner = torch.repeat_interleave(torch.arange(len(ids), device=ids.device), count)
        first = torch.cumsum(count, 0) - count  # where each entry's run begins in the flat list
        pos = torch.repeat_interleave(start - first, count) + torch.arange(len(owner), device=ids.device)
        parts = self.sub_rows[pos], owner, (1.0 + count).unsqueeze(1)
        self._cached = (ids, parts)
        return parts

    def input_vectors(self, ids: torch.Tensor) -> torch.Tensor:
        rows, owner, n = self._parts(ids)
        summed = self.input.index_select(0, ids).index_add(0, owner, self.ngrams.index_select(0, rows))
        return summed / n

    def add_to_input(self, ids: torch.Tensor, delta: torch.Tensor) -> None:
        # fastText's update (Model::update in model.cc; gensim's fasttext_inner the same): the step for
        # the mean goes whole to the word's row and to every n-gram row, not divided among them as
        # the mean's gradient would be (n times the gradient for an n-gram row: a larger effective
        # rate for the shared rows). Divided, Brown's WordSim-353 fell below 0 (tests and docs).
        rows, owner, n = self._parts(ids)
        self.input.data.index_add_(0, ids, delta)
        self.ngrams.data.index_add_(0, rows, delta.index_select(0, owner))

    @torch.no_grad()
    def vectors(self) -> torch.Tensor:
        return torch.cat([self.input_vectors(torch.arange(i, min(i + 4096, self.vocab_size), device=self.input.device))
                          for i in range(0, self.vocab_size, 4096)])  # fmt: skip

    @torch.no_grad()
    def oov_vector(self, word: str) -> torch.Tensor:
        """The mean of the n-gram rows of `word` (gensim's vector for a word outside the vocabulary);
        zeros for a word too short to have n-grams."""
        rows = ngram_ids(word, self.min_n, self.max_n, self.buckets)
        if not rows:
            return torch.zeros(self.dim)
        return self.ngrams.detach()[torch.tensor(rows)].mean(0)


def _fasttext(**kwargs) -> FastText:
    return FastText(**kwargs)


_VOCAB = 10_000
VARIANTS = {
    "fasttext": Variant(
        "FastText skip-gram: a word's vector is the mean of its own row and its character 3-6-gram rows (hashed)",
        num_params=2 * _VOCAB * 100 + 200_000 * 100, input_size=(_VOCAB, 1), num_classes=_VOCAB, config=FastTextConfig(),
        task="word-vectors", inputs="tokens",
    ),
}
register_variants(_fasttext, VARIANTS, paper=PAPER)
