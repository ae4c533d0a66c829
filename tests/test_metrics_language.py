"""Language-model metrics (deepnotes.metrics.language): perplexity against torchmetrics' Perplexity,
ROUGE against the rouge-score package, both on random cases, and cases worked by hand."""

import ast
import math
import random
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer
from torchmetrics.text import Perplexity

from deepnotes.metrics import language
from deepnotes.metrics.language import (
    LanguageModelMetrics,
    RougeScore,
    bits_per_character,
    bits_per_token,
    corpus_rouge,
    lcs_length,
    perplexity,
    rouge,
    rouge_l,
    rouge_n,
    token_nll,
    tokenize_rouge,
)

# ---------------------------------------------------------------- perplexity


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_perplexity_equals_torchmetrics_with_ignore_index(dtype):
    gen = torch.Generator().manual_seed(0)
    checked = 0
    for trial in range(12):
        b, t, v = 1 + trial % 3, 3 + trial, 2 + 5 * trial
        logits = (torch.randn(b, t, v, generator=gen) * (1 + trial % 4)).to(dtype)
        targets = torch.randint(0, v, (b, t), generator=gen)
        targets[torch.rand(b, t, generator=gen) < 0.3] = -100
        targets[0, 0] = 0  # at least one counted token
        ours = LanguageModelMetrics()
        oracle = Perplexity(ignore_index=-100)
        for i in range(b):  # batch by batch: sums are accumulated, not perplexities
            ours.update_logits(logits[i : i + 1], targets[i : i + 1], ignore_index=-100)
            oracle.update(logits[i : i + 1], targets[i : i + 1])
        out = ours.compute()
        assert out["tokens"] == int((targets != -100).sum())
        assert out["perplexity"] == pytest.approx(float(oracle.compute()), rel=1e-5)
        nll, n = token_nll(logits, targets, ignore_index=-100)  # the whole set at once: same sums
        assert n == out["tokens"] and perplexity(nll, n) == pytest.approx(out["perplexity"], rel=1e-12)
        checked += 1
    assert checked == 12


def test_token_nll_is_cross_entropy_sum():
    gen = torch.Generator().manual_seed(1)
    logits, targets = torch.randn(4, 7, 11, generator=gen, dtype=torch.float64), torch.randint(0, 11, (4, 7), generator=gen)
    targets[1, 2:] = 3
    nll, n = token_nll(logits, targets, ignore_index=3)
    expected = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=3, reduction="sum")
    assert nll == pytest.approx(float(expected), rel=1e-12) and n == int((targets != 3).sum())
    assert token_nll(logits, targets)[1] == 28  # no ignore_index: every target counts


def test_uniform_logits_give_the_vocabulary_size():
    # identity: p = 1/V for every token, so NLL / N = ln V and perplexity = exp(ln V) = V
    for v in (2, 7, 50, 1000):
        logits = torch.zeros(3, 5, v) + 4.2  # any constant: softmax is uniform
        targets = torch.randint(0, v, (3, 5), generator=torch.Generator().manual_seed(v))
        nll, n = token_nll(logits, targets)
        assert perplexity(nll, n) == pytest.approx(v, rel=1e-12)
        assert bits_per_token(nll, n) == pytest.approx(math.log2(v), rel=1e-12)


def test_bits_by_hand():
    # 4 characters at p = 1/2 each: 4 ln 2 nats = 4 bits, 1 bit per character, perplexity 2
    assert perplexity(4 * math.log(2), 4) == pytest.approx(2.0)
    assert bits_per_token(4 * math.log(2), 4) == pytest.approx(1.0)
    assert bits_per_character(4 * math.log(2), 4) == pytest.approx(1.0)
    # a subword model: the same text (12 characters) in 3 tokens with total NLL 6 ln 2 nats = 6 bits
    nll = 6 * math.log(2)
    assert bits_per_token(nll, 3) == pytest.approx(2.0) and perplexity(nll, 3) == pytest.approx(4.0)
    assert bits_per_character(nll, 12) == pytest.approx(0.5)  # divided by the characters, not the tokens
    assert perplexity(0.0, 5) == 1.0  # certain of every token
    assert perplexity(1e6, 1) == math.inf and perplexity(math.inf, 3) == math.inf


def test_accumulator_sums_before_dividing():
    m = LanguageModelMetrics()
    m.update(2.0, 1, characters=4)  # one token with NLL 2, one with NLL 0.5 over 3 more: not a mean of perplexities
    m.update(1.5, 3, characters=8)
    out = m.compute()
    assert out["tokens"] == 4 and out["characters"] == 12 and out["nll_per_token"] == pytest.approx(3.5 / 4)
    assert out["perplexity"] == pytest.approx(math.exp(3.5 / 4))
    assert out["perplexity"] != pytest.approx((math.exp(2.0) + math.exp(0.5)) / 2)
    assert out["bits_per_character"] == pytest.approx(3.5 / 12 / math.log(2))
    assert out["bits_per_token"] == pytest.approx(math.log2(out["perplexity"]))
    m.reset()
    m.update(1.0, 2)
    assert "bits_per_character" not in m.compute()


def test_bad_perplexity_arguments():
    for bad in (lambda: perplexity(1.0, 0), lambda: perplexity(-0.5, 3), lambda: perplexity(math.nan, 3),
                lambda: bits_per_character(1.0, 0), lambda: bits_per_token(1.0, 2.5), lambda: perplexity(1.0, True)):  # fmt: skip
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(ValueError, match="no tokens"):
        LanguageModelMetrics().compute()
    m = LanguageModelMetrics()
    m.update(1.0, 2, characters=5)
    with pytest.raises(ValueError, match="every batch or for none"):
        m.update(1.0, 2)
    with pytest.raises(ValueError, match="agree in shape"):
        token_nll(torch.zeros(2, 3, 4), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="must lie in"):
        token_nll(torch.zeros(2, 4), torch.tensor([0, 4]))
    with pytest.raises(TypeError, match="floating point"):
        token_nll(torch.zeros(2, 4, dtype=torch.long), torch.tensor([0, 1]))


# ---------------------------------------------------------------- ROUGE

SCORER = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)

# small, for overlaps; case, punctuation glued to words, elisions, digits, non-ASCII letters (dropped by the
# tokenizer), characters whose lowercase is ASCII (KELVIN SIGN -> k, İ -> i + combining dot), odd spaces
WORDS = ["the", "cat", "sat", "on", "mat", "a", "The", "CAT", "cat.", "don't", "well-known", "3.5", "1,000", "x2",
         "café", "é", "naïve", "\u212a", "\u0130", "_", "!", "?", ",", ".", "...", "--", "(a)", "\u00a0", "\n", "\t", ""]  # fmt: skip


def _same(ours: dict, theirs: dict, tol=1e-12):
    assert set(ours) == set(theirs) == {"rouge1", "rouge2", "rougeL"}
    for k in ours:
        assert ours[k].precision == pytest.approx(theirs[k].precision, abs=tol), k
        assert ours[k].recall == pytest.approx(theirs[k].recall, abs=tol), k
        assert ours[k].fmeasure == pytest.approx(theirs[k].fmeasure, abs=tol), k


_text = st.lists(st.sampled_from(WORDS), max_size=25).flatmap(
    lambda words: st.lists(st.sampled_from([" ", " ", "", "  "]), min_size=len(words), max_size=len(words)).map(
        lambda seps: "".join(w + s for w, s in zip(words, seps))))  # fmt: skip


@settings(max_examples=300, derandomize=True, deadline=None)
@given(_text, _text)
def test_rouge_equals_rouge_score_on_random_pairs(candidate, reference):
    _same(rouge(candidate, reference), SCORER.score(reference, candidate))  # rouge-score: (target, prediction)


def test_rouge_equals_rouge_score_on_related_pairs():
    # random pairs rarely share bigrams; edited copies do, and reach every branch (full, partial, no overlap)
    rng = random.Random(0)
    vocab = ["the", "cat", "sat", "on", "mat", "a", "dog", "The", "mat.", "on,"]
    partial = 0
    for _ in range(400):
        ref = [rng.choice(vocab) for _ in range(rng.randint(0, 20))]
        cand = [w for w in ref if rng.random() > 0.2]
        for _ in range(rng.randint(0, 4)):
            cand.insert(rng.randint(0, len(cand)), rng.choice(vocab))
        c, r = " ".join(cand), " ".join(ref)
        ours = rouge(c, r)
        _same(ours, SCORER.score(r, c))
        partial += 0 < ours["rouge2"].fmeasure < 1 and ours["rougeL"].fmeasure != ours["rouge1"].fmeasure
    assert partial > 50, partial


def test_corpus_rouge_is_the_mean_of_pair_scores():
    rng = random.Random(1)
    refs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 12))) for _ in range(30)]
    cands = [" ".join(w for w in r.split() if rng.random() > 0.3) + " cat" for r in refs]
    ours = corpus_rouge(cands, refs)
    theirs = [SCORER.score(r, c) for c, r in zip(cands, refs)]
    for k in ("rouge1", "rouge2", "rougeL"):
        for field in ("precision", "recall", "fmeasure"):
            mean = sum(getattr(s[k], field) for s in theirs) / len(theirs)
            assert getattr(ours[k], field) == pytest.approx(mean, abs=1e-12)
    # the mean F is not the F of the mean P and R
    p, r = ours["rouge2"].precision, ours["rouge2"].recall
    assert ours["rouge2"].fmeasure != pytest.approx(2 * p * r / (p + r), abs=1e-6)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(st.sampled_from(list("aZ9 .,'-_\n\té\u00a0\u212a\u0130ß!") + ["Don't", "ÉCOLE"])))
def test_tokenizer_equals_rouge_scores(pieces):
    text = "".join(pieces)
    assert tokenize_rouge(text) == SCORER._tokenizer.tokenize(text)


def test_tokenizer_by_hand():
    assert tokenize_rouge("Don't panic -- it's 3.5 km (well-known)!") == ["don", "t", "panic", "it", "s", "3", "5", "km", "well", "known"]
    assert tokenize_rouge("Café naïve") == ["caf", "na", "ve"]  # letters outside a-z are separators
    assert tokenize_rouge("running dogs") == ["running", "dogs"]  # not stemmed (rouge-score's use_stemmer=True: "run", "dog")
    assert tokenize_rouge("") == [] and tokenize_rouge(" ... ") == []


def test_hand_worked_example():
    reference, candidate = "the cat was under the bed", "the cat was found under the bed"  # 6 and 7 tokens
    s = rouge(candidate, reference)
    # ROUGE-1: all 6 reference unigrams (the x2, cat, was, under, bed) are in the candidate; 7 candidate unigrams
    #   R = 6/6, P = 6/7, F = 2 (6/7)(1) / (6/7 + 1) = 12/13
    assert (s["rouge1"].recall, s["rouge1"].precision, s["rouge1"].fmeasure) == pytest.approx((1.0, 6 / 7, 12 / 13), abs=1e-15)
    # ROUGE-2: reference bigrams the-cat, cat-was, was-under, under-the, the-bed (5); the candidate has 6, and shares
    #   the-cat, cat-was, under-the, the-bed (4). R = 4/5, P = 4/6, F = 2 (4/5)(2/3) / (4/5 + 2/3) = 8/11
    assert (s["rouge2"].recall, s["rouge2"].precision, s["rouge2"].fmeasure) == pytest.approx((4 / 5, 2 / 3, 8 / 11), abs=1e-15)
    # ROUGE-L: the whole reference is a subsequence of the candidate, LCS = 6: R = 6/6, P = 6/7, F = 12/13
    assert (s["rougeL"].recall, s["rougeL"].precision, s["rougeL"].fmeasure) == pytest.approx((1.0, 6 / 7, 12 / 13), abs=1e-15)
    assert rouge_n(candidate, reference, 2) == s["rouge2"] and rouge_l(candidate, reference) == s["rougeL"]
    # the order matters: candidate and reference swapped swap P and R
    swapped = rouge(reference, candidate)["rouge2"]
    assert (swapped.precision, swapped.recall) == (s["rouge2"].recall, s["rouge2"].precision)


def test_rouge_l_rewards_order_where_rouge_2_cannot():
    # Lin 2004, section 3.1: S2 and S3 have the same ROUGE-2 against the reference, but S2 keeps its word order
    ref = "police killed the gunman"
    s2, s3 = "police kill the gunman", "the gunman kill police"
    assert rouge_n(s2, ref, 2) == rouge_n(s3, ref, 2) == RougeScore(1 / 3, 1 / 3, 1 / 3)  # "the gunman" in both
    assert rouge_l(s2, ref) == RougeScore(0.75, 0.75, 0.75)  # LCS "police the gunman"
    assert rouge_l(s3, ref) == RougeScore(0.5, 0.5, 0.5)  # LCS "the gunman"


def test_edge_cases_and_clipping():
    assert rouge("", "the cat") == rouge("the cat", "") == rouge("", "") == rouge("!!", "...") == {
        k: RougeScore(0.0, 0.0, 0.0) for k in ("rouge1", "rouge2", "rougeL")}  # fmt: skip
    assert rouge_n("cat", "cat", 2) == RougeScore(0.0, 0.0, 0.0)  # no bigrams at all
    # a repeated word counts at most as often as in the reference: "the" x4 against "the" x2 -> 2 matches of 4
    assert rouge_n("the the the the", "the cat the", 1) == RougeScore(0.5, 2 / 3, 2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert rouge_n("The CAT!", "the cat", 1) == RougeScore(1.0, 1.0, 1.0)  # lowercased, punctuation dropped
    assert rouge_n("a b c d", "a b c d", 3) == RougeScore(1.0, 1.0, 1.0)


def test_lcs_length():
    assert lcs_length("ABCBDAB", "BDCABA") == 4  # CLRS's example: BCBA
    assert lcs_length("", "abc") == lcs_length("abc", "") == 0
    assert lcs_length("abc", "abc") == 3 and lcs_length("abc", "cba") == 1
    rng = random.Random(2)
    for _ in range(200):  # against rouge-score's full table, both argument orders
        a = [rng.choice("abc") for _ in range(rng.randint(0, 12))]
        b = [rng.choice("abc") for _ in range(rng.randint(0, 12))]
        expected = rouge_scorer._lcs_table(a, b)[-1][-1]
        assert lcs_length(a, b) == lcs_length(b, a) == expected


def test_bad_rouge_arguments():
    with pytest.raises(ValueError, match="n >= 1"):
        rouge_n("a", "a", 0)
    with pytest.raises(TypeError, match="strings"):
        rouge(["a"], "a")
    with pytest.raises(ValueError, match="one reference per candidate"):
        corpus_rouge(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="at least one"):
        corpus_rouge([], [])
    with pytest.raises(TypeError, match="not single strings"):
        corpus_rouge("a b", "a b")


def test_the_metrics_do_not_import_their_oracles():
    tree = ast.parse(Path(language.__file__).read_text())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert imported and not any(m.split(".")[0] in ("rouge_score", "torchmetrics", "nltk") for m in imported)
