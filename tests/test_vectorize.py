"""deepnotes.text.vectorize: one-hot, bag of words and TF-IDF against scikit-learn's vectorizers
(the oracle) on random documents, the notes' worked example (ERRATA E40) and bad inputs."""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity as sk_cosine

from deepnotes.errors import UserError
from deepnotes.text.vectorize import (
    bag_of_words,
    build_vocabulary,
    cosine_similarity,
    document_frequency,
    idf_weights,
    normalize_rows,
    one_hot,
    tfidf,
    tfidf_textbook,
    top_words,
)

WORDS = ["the", "a", "dog", "Dog", "bites", "man", "é", "x1", "b-c", "zz"]  # case kept: no lowercasing here
# random corpora: 1-6 documents of 0-12 tokens from a small vocabulary (repeats, empty documents),
# at least one token in all
documents = st.lists(st.lists(st.sampled_from(WORDS), max_size=12), min_size=1, max_size=6).filter(lambda ds: any(ds))


def identity(d):
    return d


@settings(max_examples=60, deadline=None)
@given(documents, st.booleans())
def test_bag_of_words_equals_countvectorizer(docs, binary):
    ours = bag_of_words(docs, binary=binary)
    cv = CountVectorizer(analyzer=identity, binary=binary)
    theirs = cv.fit_transform(docs)
    assert ours.vocabulary == list(cv.get_feature_names_out())
    assert ours.matrix.shape == theirs.shape and sp.isspmatrix_csr(ours.matrix)
    assert np.array_equal(ours.matrix.toarray(), theirs.toarray())
    # the tokenizer= route with lowercase=False gives the same columns
    cv2 = CountVectorizer(tokenizer=str.split, lowercase=False, token_pattern=None, binary=binary)
    assert np.array_equal(cv2.fit_transform([" ".join(d) for d in docs]).toarray(), ours.matrix.toarray())


@settings(max_examples=25, deadline=None)
@given(documents)
def test_tfidf_equals_tfidfvectorizer_for_every_option(docs):
    for norm, use_idf, smooth_idf, sublinear_tf, binary in itertools.product(("l1", "l2", None), *[(False, True)] * 4):
        opts = dict(norm=norm, use_idf=use_idf, smooth_idf=smooth_idf, sublinear_tf=sublinear_tf, binary=binary)
        ours = tfidf(docs, **opts)
        theirs = TfidfVectorizer(analyzer=identity, **opts).fit_transform(docs).toarray()
        assert np.abs(ours.matrix.toarray() - theirs).max() <= 1e-12, opts


def test_given_vocabulary_keeps_its_order_and_ignores_other_words():
    docs = [["b", "a", "c", "a"], ["c", "zz"]]
    ours = bag_of_words(docs, ["c", "a"])
    theirs = CountVectorizer(analyzer=identity, vocabulary=["c", "a"]).fit_transform(docs)
    assert ours.vocabulary == ["c", "a"] and np.array_equal(ours.matrix.toarray(), theirs.toarray())
    assert ours.matrix.toarray().tolist() == [[1, 2], [1, 0]]


def test_worked_example_of_the_notes_errata_e40():
    # "I love cats and cats are great" / "I love dogs", vocabulary in order of appearance (E40)
    docs = [["i", "love", "cats", "and", "cats", "are", "great"], ["i", "love", "dogs"]]
    vocab = ["i", "love", "cats", "and", "are", "great", "dogs"]
    textbook = tfidf_textbook(docs, vocab).matrix.toarray()
    assert np.allclose(textbook, [[0, 0, 1.386, 0.693, 0.693, 0.693, 0], [0, 0, 0, 0, 0, 0, 0.693]], atol=5e-4)
    assert textbook[0, 2] == pytest.approx(2 * np.log(2), abs=1e-15)  # tf 2, df 1 of N 2
    assert textbook[0, 0] == 0  # "i" is in every document: ln(2/2) = 0
    sk = tfidf(docs, vocab).matrix.toarray()
    assert np.allclose(sk, [[0.251, 0.251, 0.707, 0.353, 0.353, 0.353, 0], [0.502, 0.502, 0, 0, 0, 0, 0.705]], atol=5e-4)
    theirs = TfidfVectorizer(analyzer=identity, vocabulary=vocab).fit_transform(docs).toarray()
    assert np.abs(sk - theirs).max() <= 1e-12
    # scikit-learn's default token pattern drops one-letter words: "I" is not kept there
    assert "i" not in TfidfVectorizer().fit(["I love cats and cats are great", "I love dogs"]).vocabulary_


def test_idf_forms_by_hand():
    df, n = np.array([1, 2, 4]), 4
    assert np.allclose(idf_weights(df, n, form="textbook"), np.log([4, 2, 1]))
    assert np.allclose(idf_weights(df, n), np.log(5 / np.array([2, 3, 5])) + 1)
    assert np.allclose(idf_weights(df, n, smooth_idf=False), np.log([4, 2, 1]) + 1)
    m = sp.csr_matrix(np.array([[2.0, 0, 1], [0, 0, 3]]))
    assert document_frequency(m).tolist() == [1, 0, 2]


def test_word_order_is_lost():
    a = bag_of_words([["dog", "bites", "man"], ["man", "bites", "dog"]]).matrix.toarray()
    assert np.array_equal(a[0], a[1])
    rng = np.random.default_rng(0)
    sentence = "the old man saw the young dog bite the old man".split()
    docs = [sentence] + [list(rng.permutation(sentence)) for _ in range(5)]
    rows = bag_of_words(docs).matrix.toarray()
    assert (rows == rows[0]).all()


def test_binary_bag_of_words():
    bow = bag_of_words([["a", "a", "b"], ["c"]], binary=True)
    assert bow.vocabulary == ["a", "b", "c"] and bow.matrix.toarray().tolist() == [[1, 1, 0], [0, 0, 1]]


def test_one_hot_rows_sum_to_one_and_are_orthogonal():
    vocab = build_vocabulary([["cat", "dog", "puppy", "car"]])
    x = one_hot(["dog", "puppy", "car", "dog"], vocab)
    assert x.shape == (4, 4) and (x.sum(1) == 1).all()
    sim = cosine_similarity(x)
    assert sim[0, 3] == 1.0  # the same word
    assert sim[0, 1] == sim[0, 2] == sim[1, 2] == 0.0  # dog is no closer to puppy than to car (C39)
    assert np.allclose(sim, sk_cosine(x))


def test_cosine_similarity_sparse_and_dense_agree_with_sklearn():
    rng = np.random.default_rng(1)
    a = rng.random((4, 6)) * (rng.random((4, 6)) > 0.5)
    a[2] = 0  # a row of zeros: similarity 0
    b = rng.random((3, 6))
    assert np.allclose(cosine_similarity(a, b), sk_cosine(a, b), atol=1e-12)
    assert np.allclose(cosine_similarity(sp.csr_matrix(a)), sk_cosine(a), atol=1e-12)
    assert np.allclose(normalize_rows(sp.csr_matrix(a), "l1").toarray().sum(1), [1, 1, 0, 1])


def test_top_words():
    bow = tfidf_textbook([["x", "y", "y", "z", "the"], ["the", "w"]])
    assert top_words(bow.matrix[0], bow.vocabulary, 2) == ["y", "x"]  # ties in vocabulary order; "the" weighs 0
    assert top_words(bow.matrix[0], bow.vocabulary, 10) == ["y", "x", "z"]


@pytest.mark.parametrize(
    "call, needle",
    [
        (lambda: bag_of_words([[], []]), "empty vocabulary"),
        (lambda: bag_of_words([["a"]], []), "empty vocabulary"),
        (lambda: bag_of_words(["dog bites man"]), "not a list of tokens"),
        (lambda: bag_of_words([["a"]], ["a", "b", "a"]), "repeats"),
        (lambda: tfidf([["a"]], norm="l3"), "unknown norm 'l3'"),
        (lambda: normalize_rows(sp.csr_matrix((1, 1)), "max"), "unknown norm"),
        (lambda: one_hot(["a", "q"], ["a", "b"]), "not in the vocabulary"),
        (lambda: one_hot("ab", ["a", "b"]), "not a list of tokens"),
        (lambda: idf_weights(np.ones(2), 2, form="bm25"), "unknown idf form"),
        (lambda: cosine_similarity(np.ones((1, 2)), np.ones((1, 3))), "same vocabulary"),
    ],
)
def test_bad_input_is_one_clear_error(call, needle):
    with pytest.raises(UserError, match=needle) as e:
        call()
    assert "\n" not in str(e.value)
