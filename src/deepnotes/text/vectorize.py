"""Counting words: one-hot vectors, bags of words and TF-IDF, by hand (numpy + scipy.sparse).

    docs = [["i", "love", "cats", "and", "cats", "are", "great"], ["i", "love", "dogs"]]
    bow = bag_of_words(docs)                 # BagOfWords(matrix: CSR (2, 7) counts, vocabulary: sorted words)
    bag_of_words(docs, binary=True)          # 1 where a word occurs (E38: BoW comes in count and binary forms)
    tfidf_textbook(docs)                     # tf x ln(N / df): raw counts, no normalisation
    tfidf(docs)                              # scikit-learn's TfidfVectorizer: smoothed idf, L2 rows
    one_hot(["cats", "dogs"], bow.vocabulary)  # one row per token, a single 1 in each
    cosine_similarity(a, b)                  # rows of a against rows of b

Documents are lists of tokens (tokenize first); nothing is lowercased or split here. Without a
given vocabulary the columns are the documents' words in sorted order, scikit-learn's order
(CountVectorizer(analyzer=lambda d: d) gives the same matrix); with one, its order is kept and
words outside it are ignored, as scikit-learn does.

TF-IDF is high only for words frequent in a document *and* rare in the corpus (ERRATA E39, E40):
a word in every document gets idf ln(N/N) = 0 in the textbook form; scikit-learn adds 1 to every
idf (and smooths df as if one extra document held every word once), so such a word keeps weight
tf x 1 there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from deepnotes.errors import UserError

NORMS = ("l1", "l2", None)


class BagOfWords(NamedTuple):
    """A document-term matrix (CSR, float64, one row per document) and its column words."""

    matrix: sp.csr_matrix
    vocabulary: list[str]


def _documents(documents: Iterable[Sequence[str]]) -> list[Sequence[str]]:
    docs = list(documents)
    for i, d in enumerate(docs):
        # a str is a sequence of characters: counting them would be silently wrong
        if isinstance(d, (str, bytes)) or not isinstance(d, Sequence):
            raise UserError(f"document {i} is a {type(d).__name__}, not a list of tokens; tokenize it first, e.g. text.split()")
    return docs


def build_vocabulary(documents: Iterable[Sequence[str]]) -> list[str]:
    """The documents' distinct tokens, sorted (scikit-learn's feature order)."""
    words = sorted({w for d in _documents(documents) for w in d})
    if not words:
        raise UserError("empty vocabulary: the documents hold no tokens; give at least one non-empty document")
    return words


def _index(vocabulary: Sequence[str]) -> dict[str, int]:
    if isinstance(vocabulary, str):
        raise UserError(f"vocabulary is a str ({vocabulary[:20]!r}); give a list of words")
    index = {w: i for i, w in enumerate(vocabulary)}
    if not index:
        raise UserError("empty vocabulary: give at least one word")
    if len(index) != len(vocabulary):
        dup = sorted({w for w in vocabulary if list(vocabulary).count(w) > 1})
        raise UserError(f"the vocabulary repeats {dup[:5]}; every word must be listed once")
    return index


def one_hot(tokens: Sequence[str], vocabulary: Sequence[str]) -> np.ndarray:
    """(len(tokens), |V|) float64: row t is 1 at tokens[t]'s column, 0 elsewhere. Distinct words get
    orthogonal rows (cosine 0): one-hot vectors carry no similarity (C39)."""
    if isinstance(tokens, str):
        raise UserError(f"tokens is a str ({tokens[:20]!r}), not a list of tokens; tokenize it first")
    index = _index(vocabulary)
    unknown = [t for t in tokens if t not in index]
    if unknown:
        raise UserError(f"{len(unknown)} token(s) not in the vocabulary of {len(index)} words, e.g. {unknown[0]!r}; "
                        "a one-hot vector exists only for vocabulary words: add them or map them to an unknown-word entry")  # fmt: skip
    out = np.zeros((len(tokens), len(index)))
    out[np.arange(len(tokens)), [index[t] for t in tokens]] = 1.0
    return out


def bag_of_words(documents: Iterable[Sequence[str]], vocabulary: Sequence[str] | None = None, *, binary: bool = False) -> BagOfWords:
    """Counts of each vocabulary word in each document (binary: 1 if it occurs), as CSR float64.
    Word order inside a document is lost: any permutation of a document gives the same row (C57)."""
    docs = _documents(documents)
    words = build_vocabulary(docs) if vocabulary is None else list(vocabulary)
    index = _index(words)
    rows, cols = [], []
    for r, d in enumerate(docs):
        ids = [index[w] for w in d if w in index]
        rows.extend([r] * len(ids))
        cols.extend(ids)
    data = np.ones(len(cols))
    # COO -> CSR sums repeated (row, column) pairs: the counts
    m = sp.coo_matrix((data, (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))), shape=(len(docs), len(words))).tocsr()
    m.sum_duplicates()
    m.sort_indices()
    if binary:
        m.data[:] = 1.0
    return BagOfWords(m, words)


def document_frequency(matrix: sp.spmatrix) -> np.ndarray:
    """df: in how many documents (rows) each word (column) occurs."""
    m = sp.csr_matrix(matrix)
    return np.bincount(m.indices[m.data != 0], minlength=m.shape[1]).astype(np.int64)


def idf_weights(df: np.ndarray, n_documents: int, *, form: str = "sklearn", smooth_idf: bool = True) -> np.ndarray:
    """Inverse document frequency per word. form="textbook": ln(N / df); form="sklearn":
    ln(N / df) + 1, with smooth_idf ln((1 + N) / (1 + df)) + 1. A word with df = 0 gets inf
    (it has no entries to weigh)."""
    df = np.asarray(df, dtype=np.float64)
    with np.errstate(divide="ignore"):
        if form == "textbook":
            return np.log(n_documents / df)
        if form == "sklearn":
            s = float(smooth_idf)
            return np.log((n_documents + s) / (df + s)) + 1.0
    raise UserError(f"unknown idf form {form!r}; use 'textbook' (ln(N/df)) or 'sklearn' (ln(N/df) + 1, smoothed)")


def _weigh(m: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    m = m.copy()
    m.data *= idf[m.indices]  # only stored entries: a df = 0 column (inf idf) has none
    return m


def tfidf_textbook(documents: Iterable[Sequence[str]], vocabulary: Sequence[str] | None = None) -> BagOfWords:
    """tf x ln(N / df) with raw counts as tf and no normalisation (the notes' form; ERRATA E40):
    a word in every document weighs 0, a word in one document weighs tf ln N."""
    counts, words = bag_of_words(documents, vocabulary)
    idf = idf_weights(document_frequency(counts), counts.shape[0], form="textbook")
    m = _weigh(counts, idf)
    m.eliminate_zeros()  # words in every document: weight 0, not stored
    return BagOfWords(m, words)


def normalize_rows(matrix: sp.spmatrix, norm: str | None = "l2") -> sp.csr_matrix:
    """Each row divided by its L1 or L2 norm (rows of zeros stay zero), as sklearn.preprocessing.normalize."""
    if norm not in NORMS:
        raise UserError(f"unknown norm {norm!r}; use 'l1', 'l2' or None")
    m = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    if norm is None:
        return m
    per_entry = sp.csr_matrix((np.abs(m.data) if norm == "l1" else m.data**2, m.indices, m.indptr), shape=m.shape)
    lengths = np.asarray(per_entry.sum(axis=1), dtype=np.float64).ravel()
    if norm == "l2":
        lengths = np.sqrt(lengths)
    lengths[lengths == 0] = 1.0
    m.data /= np.repeat(lengths, np.diff(m.indptr))
    return m


def tfidf(
    documents: Iterable[Sequence[str]],
    vocabulary: Sequence[str] | None = None,
    *,
    norm: str | None = "l2",
    use_idf: bool = True,
    smooth_idf: bool = True,
    sublinear_tf: bool = False,
    binary: bool = False,
) -> BagOfWords:
    """scikit-learn's TfidfVectorizer, options named as there: tf = counts (binary: 0/1;
    sublinear_tf: 1 + ln tf), times idf = ln((1 + N) / (1 + df)) + 1 (smooth_idf=False:
    ln(N / df) + 1) if use_idf, then every row scaled to unit L2 (or L1) norm unless norm=None."""
    if norm not in NORMS:
        raise UserError(f"unknown norm {norm!r}; use 'l1', 'l2' or None")
    counts, words = bag_of_words(documents, vocabulary, binary=binary)
    m = counts
    if sublinear_tf:
        m = m.copy()
        m.data = np.log(m.data) + 1.0
    if use_idf:
        m = _weigh(m, idf_weights(document_frequency(counts), counts.shape[0], form="sklearn", smooth_idf=smooth_idf))
    return BagOfWords(normalize_rows(m, norm), words)


def cosine_similarity(a, b=None) -> np.ndarray:
    """Cosine similarity of every row of a with every row of b (default: a itself), dense or
    sparse inputs, a dense (len(a), len(b)) array; a row of zeros has similarity 0 with everything."""
    b = a if b is None else b
    if a.shape[1] != b.shape[1]:
        raise UserError(f"rows of {a.shape[1]} and {b.shape[1]} columns cannot be compared; use the same vocabulary for both")
    na = normalize_rows(sp.csr_matrix(a, dtype=np.float64), "l2")
    nb = normalize_rows(sp.csr_matrix(b, dtype=np.float64), "l2")
    return np.asarray((na @ nb.T).toarray())


def top_words(row, vocabulary: Sequence[str], k: int = 10) -> list[str]:
    """The k words of one document's row with the largest values, largest first (ties: vocabulary
    order), zeros left out."""
    r = sp.csr_matrix(row)
    if r.shape[0] != 1:
        raise UserError(f"top_words takes one document's row, got {r.shape[0]} rows")
    order = np.lexsort((r.indices, -r.data))  # by value descending, then by column
    return [vocabulary[r.indices[i]] for i in order[:k] if r.data[i] > 0]
