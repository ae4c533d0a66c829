"""deepnotes.text.cooccurrence: GloVe's co-occurrence counts against a brute-force double loop (cooccur.c's)."""

from collections import defaultdict

import numpy as np
import pytest
import scipy.sparse as sp

from deepnotes.errors import UserError
from deepnotes.text.cooccurrence import cooccurrence


def brute_force(sentences, V, window, symmetric, weighting):
    """cooccur.c's loop: per sentence, drop the -1 words, then each word with the `window` words before it."""
    X = defaultdict(float)
    for s in sentences:
        s = [w for w in s if w >= 0]
        for j in range(len(s)):
            for k in range(max(0, j - window), j):
                v = 1.0 / (j - k) if weighting else 1.0
                X[s[k], s[j]] += v
                if symmetric:
                    X[s[j], s[k]] += v
    dense = np.zeros((V, V))
    for (a, b), v in X.items():
        dense[a, b] = v
    return dense


def as_flat(sentences):
    ids = np.concatenate([np.asarray(s, dtype=np.int64) for s in sentences])
    return ids, np.cumsum([0] + [len(s) for s in sentences[:-1]])


def test_five_tokens_worked_by_hand():
    a, b, c = 0, 1, 2
    s = [np.array([a, b, c, a, b])]
    # d = 1: (a,b) twice, (b,c), (c,a); d = 2: (a,c), (b,a), (c,b) at 1/2 each; X[earlier, later]
    directed = [[0, 2, 0.5], [0.5, 0, 1], [1, 0.5, 0]]
    np.testing.assert_array_equal(cooccurrence(s, 3, 2, symmetric=False).toarray(), directed)
    np.testing.assert_array_equal(cooccurrence(s, 3, 2).toarray(), [[0, 2.5, 1.5], [2.5, 0, 1.5], [1.5, 1.5, 0]])
    np.testing.assert_array_equal(cooccurrence(s, 3, 2, symmetric=False, distance_weighting=False).toarray(),
                                  [[0, 2, 1], [1, 0, 1], [1, 1, 0]])
    # d = 3 pairs a with a and b with b (1/3), d = 4 adds (a,b) at 1/4; symmetric counts a self-pair twice
    X = cooccurrence(s, 3, 4).toarray()
    assert X[a, a] == X[b, b] == pytest.approx(2 / 3) and X[a, b] == X[b, a] == pytest.approx(2.75)
    assert cooccurrence(s, 3, 4, symmetric=False).toarray()[a, a] == pytest.approx(1 / 3)


def test_sentence_ends_and_dropped_words():
    # the window stops at the end of a sentence (a newline in cooccur.c)
    np.testing.assert_array_equal(cooccurrence([np.array([0, 1]), np.array([2])], 3, 5, symmetric=False).toarray(),
                                  [[0, 1, 0], [0, 0, 0], [0, 0, 0]])
    # a -1 word takes no position: 0 and 2 become neighbours at d = 1
    X = cooccurrence([np.array([0, -1, -1, 2])], 3, 1, symmetric=False).toarray()
    assert X[0, 2] == 1 and X.sum() == 1
    # empty sentences, sentences of dropped words, nothing at all
    assert cooccurrence([np.array([], dtype=np.int64), np.array([-1, -1]), np.array([1])], 2).nnz == 0
    assert cooccurrence([], 2).shape == (2, 2)
    assert cooccurrence((np.zeros(0, np.int64), np.zeros(0, np.int64)), 2).nnz == 0


@pytest.mark.parametrize("window", [1, 2, 3, 4])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("weighting", [True, False])
def test_equal_to_brute_force_on_random_streams(window, symmetric, weighting):
    rng = np.random.default_rng(window * 4 + 2 * symmetric + weighting)
    V = 7
    for _ in range(5):
        # short sentences (some empty, some shorter than the window), a small vocabulary so pairs repeat,
        # and about one word in five out of the vocabulary (-1)
        sentences = [rng.integers(-1, V, size=rng.integers(0, 12)) for _ in range(rng.integers(1, 8))]
        want = brute_force(sentences, V, window, symmetric, weighting)
        for form in (sentences, as_flat(sentences)):
            X = cooccurrence(form, V, window, symmetric=symmetric, distance_weighting=weighting)
            assert isinstance(X, sp.coo_matrix) and X.dtype == np.float64 and X.shape == (V, V)
            assert X.has_canonical_format and (X.data > 0).all()
            np.testing.assert_allclose(X.toarray(), want, rtol=1e-12, atol=0)
            if symmetric:
                assert (X != X.T).nnz == 0


def test_flat_form_with_indptr_style_starts():
    sentences = [np.array([1, 2, 3]), np.array([3, 1])]
    ids, starts = as_flat(sentences)
    want = cooccurrence(sentences, 4, 3).toarray()
    np.testing.assert_array_equal(cooccurrence((ids, np.append(starts, ids.size)), 4, 3).toarray(), want)
    np.testing.assert_array_equal(cooccurrence(([1, 2, 3, 3, 1], [0, 3]), 4, 3).toarray(), want)


def test_bad_inputs_say_what_would_be_right():
    with pytest.raises(UserError, match=r"out of range: ids must be in \[0, 3\)"):
        cooccurrence([np.array([0, 3])], 3)
    with pytest.raises(UserError, match="or -1"):
        cooccurrence([np.array([0, -2])], 3)
    with pytest.raises(UserError, match="window must be an int >= 1"):
        cooccurrence([np.array([0, 1])], 3, 0)
    with pytest.raises(UserError, match="vocab_size must be an int >= 1"):
        cooccurrence([np.array([0, 1])], 0)
    with pytest.raises(UserError, match=r"wrap one sentence in a list"):
        cooccurrence(np.array([0, 1]), 3)
    with pytest.raises(UserError, match="starts must begin with 0"):
        cooccurrence((np.array([0, 1]), np.array([1])), 3)
    with pytest.raises(UserError, match=r"<= len\(ids\) = 2"):
        cooccurrence((np.array([0, 1]), np.array([0, 5])), 3)
    with pytest.raises(UserError, match="tuple must be"):
        cooccurrence((np.array([0]), np.array([0]), np.array([1])), 3)
    with pytest.raises(UserError, match="sentence 1 must be a 1-D array of ints"):
        cooccurrence([np.array([0]), np.array([0.5])], 3)
