"""FastText's subword units (Bojanowski et al. 2017, "Enriching Word Vectors with Subword Information",
arXiv:1607.04606): a word is "<word>" cut into character n-grams, each hashed into one of `buckets` rows.

    char_ngrams("where", 3, 3)        # ['<wh', 'whe', 'her', 'ere', 're>']  (gensim's compute_ngrams)
    hashed_ngrams("where", 3, 4)      # ['<wh', '<whe', 'whe', 'wher', ...]  (the order ngram_ids hashes in)
    ft_hash(b"<wh")                   # FNV-1a 32-bit with fastText's signed-char quirk (gensim's ft_hash_bytes)
    ngram_ids("where", 3, 6, 2_000_000)        # gensim's ft_ngram_hashes: ft_hash(utf8(ngram)) % buckets
    ids, lengths = ngram_table(words, 3, 6, 2_000_000)   # the same for a vocabulary, (V, L) padded with -1

Checked against gensim 4.4 (gensim/models/fasttext_inner.pyx and fasttext.py) in tests/test_subwords.py.
What gensim does, and so what these do:

- Characters are Unicode code points (not bytes, not graphemes): "café" written with a combining accent
  (NFD) has 5 characters and other n-grams than its NFC form. Normalize text before, if that matters.
- The whole "<word>" is one of the n-grams when len(word) + 2 <= max_n; it is hashed into a bucket like
  any other n-gram. The word itself (its own vector) is NOT in these lists: the model adds it
  separately (fastText's dictionary.cc pushes the word id before the n-grams; gensim keeps in-vocabulary
  words in `vectors_vocab`). An out-of-vocabulary word is the average of its n-gram rows.
- Repeated n-grams are kept ("aaaa" has "aaa" twice), so they weigh twice in that average.
- Two different orders in gensim: compute_ngrams (char_ngrams here) goes by length, then position;
  compute_ngrams_bytes, which ft_ngram_hashes hashes, goes by position, then length (fastText's
  computeSubwords order). With min_n = 1 they also differ in content: compute_ngrams keeps the 1-grams
  "<" and ">", the hashed list drops them (fastText's rule). ngram_ids follows the hashed order.
- max_n < min_n gives no n-grams (gensim's FastText then sets bucket = 0: subwords off).
- ft_ngram_hashes hashes the UTF-8 bytes of each n-gram, so a word with a lone surrogate (e.g. from
  decoding with errors="surrogateescape") cannot be hashed: gensim raises UnicodeEncodeError, this raises
  UserError naming the word.

ngram_table on the 15,000 commonest Brown words (min_n=3, max_n=6, 343,677 n-grams): 20-40 ms, against
0.31 s for ngram_ids word by word and 0.07 s for gensim's Cython ft_ngram_hashes (one core).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from deepnotes.errors import UserError

# FNV-1a 32-bit constants, as in fastText's Dictionary::hash (src/dictionary.cc) and gensim's ft_hash_bytes.
FNV_OFFSET = 2166136261
FNV_PRIME = 16777619
_MASK32 = 0xFFFFFFFF

# fastText XORs `uint32_t(int8_t(str[i]))`: bytes >= 0x80 are sign-extended (0xE9 -> 0xFFFFFFE9), so hashes
# of non-ASCII n-grams differ from textbook FNV-1a. gensim copies it (`<np.uint32_t>(<np.int8_t>b)`).
_SIGNED = tuple(b | 0xFFFFFF00 if b >= 0x80 else b for b in range(256))


def _check_n(min_n, max_n) -> None:
    for name, v in (("min_n", min_n), ("max_n", max_n)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise UserError(f"{name} must be an int, got {v!r}")
    if min_n < 1:
        raise UserError(f"min_n must be >= 1, got {min_n} (for no n-grams at all, give max_n < min_n)")
    if max_n < 0:
        raise UserError(f"max_n must be >= 0, got {max_n} (max_n < min_n means no n-grams)")


def _check_buckets(buckets) -> None:
    if isinstance(buckets, bool) or not isinstance(buckets, (int, np.integer)) or buckets < 1:
        raise UserError(f"buckets must be an int >= 1 (fastText's default is 2000000), got {buckets!r}")


def _check_word(word) -> str:
    if not isinstance(word, str):
        raise UserError(f"a word must be a str, got {type(word).__name__} {word!r}" +
                        (" (decode bytes as UTF-8 first)" if isinstance(word, (bytes, bytearray)) else ""))
    return word


def _utf8(text: str, word: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise UserError(f"word {word!r} has a lone surrogate {e.object[e.start]!r} (U+{ord(e.object[e.start]):04X}) "
                        "that UTF-8 cannot encode, so it has no fastText hash; decode the text with "
                        "errors='replace' (or 'strict') instead of 'surrogateescape'") from None


def char_ngrams(word: str, min_n: int = 3, max_n: int = 6) -> list[str]:
    """The character n-grams of "<word>", n = min_n..max_n, shortest first, left to right within a length:
    gensim's compute_ngrams (1-grams "<" and ">" included when min_n == 1, as there). Code points, not bytes."""
    word = _check_word(word)
    _check_n(min_n, max_n)
    ext = f"<{word}>"
    return [ext[i:i + n] for n in range(min_n, min(len(ext), max_n) + 1) for i in range(len(ext) - n + 1)]


def hashed_ngrams(word: str, min_n: int = 3, max_n: int = 6) -> list[str]:
    """The n-grams ngram_ids hashes, in its order: left to right, shortest first at each position, without the
    1-grams "<" and ">" (gensim's compute_ngrams_bytes, decoded; fastText's Dictionary::computeSubwords)."""
    word = _check_word(word)
    _check_n(min_n, max_n)
    ext = f"<{word}>"
    last = len(ext) - 1
    return [ext[i:i + n] for i in range(len(ext)) for n in range(max(min_n, 2 if i in (0, last) else 1),
                                                                  min(max_n, len(ext) - i) + 1)]


def ft_hash(data: bytes) -> int:
    """FNV-1a 32-bit of `data` as fastText computes it (Dictionary::hash in src/dictionary.cc), bytes >= 0x80
    sign-extended first: equal to gensim's ft_hash_bytes (gensim/models/fasttext_inner.pyx). In [0, 2**32)."""
    if isinstance(data, str):
        raise UserError(f"ft_hash takes bytes, got the str {data!r}: hash its UTF-8 encoding, "
                        "ft_hash(s.encode('utf-8'))")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise UserError(f"ft_hash takes bytes, got {type(data).__name__}")
    h = FNV_OFFSET
    for b in bytes(data):
        h = ((h ^ _SIGNED[b]) * FNV_PRIME) & _MASK32
    return h


def ngram_ids(word: str, min_n: int = 3, max_n: int = 6, buckets: int = 2_000_000) -> list[int]:
    """The bucket of each hashed n-gram of `word` (hashed_ngrams order): ft_hash(utf8(ngram)) % buckets,
    equal to gensim's ft_ngram_hashes(word, min_n, max_n, buckets). Row r of gensim's vectors_ngrams;
    fastText's own input matrix puts it at nwords + r."""
    _check_buckets(buckets)
    grams = hashed_ngrams(word, min_n, max_n)
    _utf8(f"<{word}>", word)  # one clear error for the whole word rather than a failure on one n-gram
    return [ft_hash(g.encode("utf-8")) % buckets for g in grams]


def ngram_table(words: Sequence[str], min_n: int = 3, max_n: int = 6,
                buckets: int = 2_000_000) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """ngram_ids for every word at once: `ids` (V, L) int64, row v = ngram_ids(words[v]) then -1 up to
    L = the longest row (0 columns if no word has an n-gram), and `lengths` (V,) int64.

    One vectorized pass over all n-gram start positions of the whole vocabulary, growing every n-gram by one
    character per step (FNV-1a hashes a prefix incrementally, so "<wh" continues into "<whe"): max_n steps
    of at most 4 byte updates, instead of a Python loop per n-gram. 20-40 ms for the 15,000 commonest Brown
    words (min_n=3, max_n=6), against 0.31 s calling ngram_ids per word. Rows are padded to the longest word
    (there L = 78 columns for 23 n-grams a word on average: a 9.4 MB table).
    """
    _check_n(min_n, max_n)
    _check_buckets(buckets)
    if isinstance(words, (str, bytes)):
        raise UserError("ngram_table takes a sequence of words, got a single string (wrap it: [word])")
    words = [_check_word(w) for w in words]
    V = len(words)
    if V == 0 or max_n < min_n:
        return np.full((V, 0), -1, dtype=np.int64), np.zeros(V, dtype=np.int64)

    ext = [f"<{w}>" for w in words]
    text = "".join(ext)
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        for w in words:
            _utf8(w, w)  # raises UserError naming the first word UTF-8 cannot encode
        raise
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # one entry per code point
    nbytes = 1 + (cps >= 0x80).astype(np.int64) + (cps >= 0x800) + (cps >= 0x10000)  # UTF-8 length of each
    first_byte = np.cumsum(nbytes) - nbytes
    b = np.frombuffer(raw, dtype=np.uint8).astype(np.uint32)
    b[b >= 0x80] |= np.uint32(0xFFFFFF00)  # fastText's signed-char quirk, see _SIGNED

    wlen = np.fromiter((len(e) for e in ext), dtype=np.int64, count=V)
    wstart = np.cumsum(wlen) - wlen
    wid = np.repeat(np.arange(V), wlen)  # word of each character
    pos = np.arange(len(cps)) - wstart[wid]  # its position in "<word>"
    room = wlen[wid] - pos  # characters from this one to the end of "<word>", itself included
    # n-grams starting here: n from lo to hi, except the 1-grams "<" and ">" (fastText's rule)
    lo = np.maximum(min_n, np.where((pos == 0) | (room == 1), 2, 1))
    hi = np.minimum(max_n, room)
    count = np.maximum(hi - lo + 1, 0)
    lengths = np.add.reduceat(count, wstart)
    before = np.cumsum(count) - count
    col0 = before - before[wstart][wid]  # column of this start's first n-gram in its word's row

    ids = np.full((V, int(lengths.max())), -1, dtype=np.int64)
    mod = min(int(buckets), 1 << 32)  # h < 2**32, so a larger modulus changes nothing (and keeps int64)
    starts = np.arange(len(cps))
    h = np.full(len(cps), FNV_OFFSET, dtype=np.uint32)
    prime = np.uint32(FNV_PRIME)
    for n in range(1, max_n + 1):
        alive = room[starts] >= n
        starts, h = starts[alive], h[alive]
        if starts.size == 0:
            break
        end = starts + (n - 1)  # the character this step appends
        for k in range(int(nbytes[end].max())):
            has = nbytes[end] > k
            byte = b[np.minimum(first_byte[end] + k, len(b) - 1)]
            h = np.where(has, (h ^ byte) * prime, h)
        emit = n >= lo[starts]
        s = starts[emit]
        ids[wid[s], col0[s] + (n - lo[s])] = h[emit].astype(np.int64) % mod
    return ids, lengths
