"""deepnotes.text.subwords: fastText's character n-grams and their hashes, equal to gensim's (the oracle)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.errors import UserError
from deepnotes.text.subwords import char_ngrams, ft_hash, hashed_ngrams, ngram_ids, ngram_table

# ascii, accented (NFC and NFD: 4 vs 5 code points), CJK, emoji (4 UTF-8 bytes), words shorter than min_n,
# repeats ("aaaa" has "aaa" twice), the boundary characters themselves, a NUL byte
WORDS = ["where", "a", "", "of", "café", "cafe\u0301", "東京", "日本語の単語", "😀", "a😀b", "aaaa", "<a>", "x\x00y",
         "naïveté", "Straße"]
SETTINGS = [(1, 1), (1, 3), (2, 2), (3, 6), (4, 4), (5, 4), (1, 10)]
BUCKETS = [1, 7, 2_000_000, 2**32 + 1]
# no lone surrogates: gensim cannot hash them either (UnicodeEncodeError)
unicode_words = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)


def gensim_fns():
    pytest.importorskip("gensim")
    from gensim.models.fasttext import ft_ngram_hashes
    from gensim.models.fasttext_inner import compute_ngrams, compute_ngrams_bytes, ft_hash_bytes

    return compute_ngrams, compute_ngrams_bytes, ft_hash_bytes, ft_ngram_hashes


def test_worked_examples():
    # the paper's example (Bojanowski et al. 2017, section 3.2): "where", n = 3
    assert char_ngrams("where", 3, 3) == ["<wh", "whe", "her", "ere", "re>"]
    # char_ngrams goes by length; the hashed order goes by position and drops the 1-grams "<" and ">"
    assert char_ngrams("ab", 1, 2) == ["<", "a", "b", ">", "<a", "ab", "b>"]
    assert hashed_ngrams("ab", 1, 2) == ["<a", "a", "ab", "b", "b>"]
    # the whole "<word>" is an n-gram when it fits in max_n; repeats are kept
    assert char_ngrams("ab", 3, 6) == ["<ab", "ab>", "<ab>"]
    assert hashed_ngrams("aaaa", 3, 3).count("aaa") == 2
    # code points, not bytes nor graphemes
    assert hashed_ngrams("café", 3, 6) == ["<ca", "<caf", "<café", "<café>", "caf", "café", "café>", "afé",
                                          "afé>", "fé>"]
    assert len(char_ngrams("cafe\u0301", 6, 6)) == 2 and len(char_ngrams("café", 6, 6)) == 1
    assert char_ngrams("a", 4, 6) == [] and char_ngrams("where", 5, 4) == [] and ngram_ids("where", 5, 4) == []


def test_ft_hash_known_values():
    # textbook FNV-1a 32-bit test vectors hold for ASCII ...
    assert ft_hash(b"") == 0x811C9DC5 and ft_hash(b"a") == 0xE40C292C and ft_hash(b"foobar") == 0xBF9CF968
    # ... but fastText sign-extends bytes >= 0x80 (int8_t), so b"\xe9" is not FNV-1a's 1812687940
    assert ft_hash(b"\xe9") == ((0x811C9DC5 ^ 0xFFFFFFE9) * 16777619) % 2**32 == 3958606660
    # values printed by gensim 4.4's ft_hash_bytes / ft_ngram_hashes
    assert ft_hash("café".encode()) == 1970454601 and ft_hash("東京".encode()) == 1997330287
    assert ft_hash("😀".encode()) == 604031496 and ft_hash(b"<wh") == 1048167652
    assert ft_hash(bytearray(b"<wh")) == ft_hash(memoryview(b"<wh")) == 1048167652
    assert ngram_ids("café", 3, 6, 2_000_000) == [916747, 1991831, 794639, 17187, 369661, 454601, 761685, 960362,
                                                  1966012, 1609697]
    assert ngram_ids("東京", 1, 2, 1000) == [997, 463, 287, 85, 713]


def test_equal_to_gensim_on_chosen_words():
    compute_ngrams, compute_ngrams_bytes, ft_hash_bytes, ft_ngram_hashes = gensim_fns()
    for word in WORDS:
        for min_n, max_n in SETTINGS:
            assert char_ngrams(word, min_n, max_n) == compute_ngrams(word, min_n, max_n), (word, min_n, max_n)
            grams = compute_ngrams_bytes(word, min_n, max_n)
            assert hashed_ngrams(word, min_n, max_n) == [g.decode() for g in grams], (word, min_n, max_n)
            assert [ft_hash(g) for g in grams] == [ft_hash_bytes(g) for g in grams]
            for buckets in BUCKETS:
                assert ngram_ids(word, min_n, max_n, buckets) == ft_ngram_hashes(word, min_n, max_n, buckets)


@settings(max_examples=300, deadline=None)
@given(word=unicode_words, min_n=st.integers(1, 4), extra=st.integers(-1, 4), buckets=st.sampled_from(BUCKETS))
def test_equal_to_gensim_on_random_words(word, min_n, extra, buckets):
    compute_ngrams, compute_ngrams_bytes, ft_hash_bytes, ft_ngram_hashes = gensim_fns()
    max_n = min_n + extra
    assert char_ngrams(word, min_n, max_n) == compute_ngrams(word, min_n, max_n)
    assert ngram_ids(word, min_n, max_n, buckets) == ft_ngram_hashes(word, min_n, max_n, buckets)
    raw = word.encode("utf-8")
    assert ft_hash(raw) == ft_hash_bytes(raw)


def test_ngram_table_equals_ngram_ids_on_chosen_words():
    for min_n, max_n in SETTINGS:
        for buckets in BUCKETS:
            ids, lengths = ngram_table(WORDS, min_n, max_n, buckets)
            assert ids.dtype == lengths.dtype == np.int64 and ids.shape == (len(WORDS), lengths.max(initial=0))
            for row, n, word in zip(ids, lengths, WORDS):
                assert row[:n].tolist() == ngram_ids(word, min_n, max_n, buckets)
                assert (row[n:] == -1).all()


@settings(max_examples=100, deadline=None)
@given(words=st.lists(unicode_words, max_size=8), min_n=st.integers(1, 4), extra=st.integers(-1, 4),
       buckets=st.sampled_from(BUCKETS))
def test_ngram_table_equals_ngram_ids_on_random_words(words, min_n, extra, buckets):
    ids, lengths = ngram_table(words, min_n, min_n + extra, buckets)
    rows = [ngram_ids(w, min_n, min_n + extra, buckets) for w in words]
    assert lengths.tolist() == [len(r) for r in rows]
    assert ids.shape == (len(words), max(map(len, rows), default=0))
    assert [row[:n].tolist() for row, n in zip(ids, lengths)] == rows
    assert all((row[n:] == -1).all() for row, n in zip(ids, lengths))


def test_bad_inputs_say_what_would_be_right():
    with pytest.raises(UserError, match="min_n must be >= 1"):
        char_ngrams("word", 0, 3)
    with pytest.raises(UserError, match="buckets must be an int >= 1"):
        ngram_ids("word", 3, 6, 0)
    with pytest.raises(UserError, match="decode bytes as UTF-8"):
        ngram_ids(b"word")
    with pytest.raises(UserError, match=r"ft_hash\(s.encode"):
        ft_hash("word")
    with pytest.raises(UserError, match="single string"):
        ngram_table("word")
    # a lone surrogate has no UTF-8 bytes to hash; the error names the word
    with pytest.raises(UserError, match=r"'b\\udce9d'.*U\+DCE9"):
        ngram_ids("b\udce9d")
    with pytest.raises(UserError, match=r"'b\\udce9d'"):
        ngram_table(["ok", "b\udce9d"])
    assert char_ngrams("b\udce9d", 5, 5) == ["<b\udce9d>"]  # no hashing, no encoding: as gensim's compute_ngrams
