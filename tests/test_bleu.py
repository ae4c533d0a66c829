"""BLEU (deepnotes.metrics.text) against sacreBLEU, its reference implementation, on many random
corpora, and on cases worked by hand."""

import ast
import math
import random
from pathlib import Path

import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

from deepnotes.metrics import text as bleu_module
from deepnotes.metrics.text import corpus_bleu, sentence_bleu, tokenize_13a

# Small enough for n-gram overlaps; punctuation, numbers, elisions, entities, markup, odd spaces,
# and line breaks (13a joins "-\n" and drops "<skipped>")
WORDS = [
    "the", "cat", "sat", "on", "mat", "a", "Le", "chat", "l'homme", "well-known", "don't", "3.5", "1,000", "2-3",
    "x", "é", "Être", "THE", ".", ",", "!", "?", ":", ";", "«", "»", "(", ")", "-", "'", '"', "$", "%", "/",
    "&amp;", "&quot;", "&lt;", "<skipped>", "...", "\u00a0", "\u202f", "a.b", "9.", ".9", "-\n", "\n",
]


def _sentence(rng: random.Random, max_len: int) -> str:
    n = rng.randint(0, max_len)
    out = ""
    for w in rng.choices(WORDS, k=n):
        out += w + rng.choice([" ", " ", " ", "", "  "])  # sometimes glued to the next word
    return out + rng.choice(["", "", " ", "\n", " \t"])


def _reference(rng: random.Random, hyp: str, max_len: int) -> str:
    """A reference sharing n-grams with the hypothesis: its words with some replaced, dropped or added."""
    if rng.random() < 0.15:
        return _sentence(rng, max_len)
    words = []
    for w in hyp.split(" "):
        r = rng.random()
        if r < 0.15:
            words.append(rng.choice(WORDS))
        elif r < 0.25:
            continue
        else:
            words.append(w)
        if rng.random() < 0.1:
            words.append(rng.choice(WORDS))
    return " ".join(words)


def _corpus(rng: random.Random):
    size = rng.randint(1, 12)
    max_len = rng.choice([2, 3, 5, 12, 30])  # short corpora: orders without any n-gram
    hyps, refs = [], []
    for _ in range(size):
        h = _sentence(rng, max_len) if rng.random() > 0.05 else ""
        hyps.append(h)
        refs.append([_reference(rng, h, max_len) for _ in range(rng.choice([1, 1, 2, 3]))])
    return hyps, refs


def _streams(refs):
    """Per-hypothesis references -> sacreBLEU's streams (None where a sentence has fewer)."""
    most = max(len(r) for r in refs)
    return [[r[j] if j < len(r) else None for r in refs] for j in range(most)]


def _same(ours, theirs, tol=1e-6):
    assert ours.score == pytest.approx(theirs.score, abs=tol)
    assert ours.bp == pytest.approx(theirs.bp, abs=1e-12)
    assert (ours.sys_len, ours.ref_len) == (theirs.sys_len, theirs.ref_len)
    assert list(ours.counts) == list(theirs.counts) and list(ours.totals) == list(theirs.totals)
    assert list(ours.precisions) == pytest.approx(list(theirs.precisions), abs=1e-9)


def test_corpus_bleu_equals_sacrebleu_on_random_corpora():
    rng = random.Random(0)
    worst, zeros, smoothed = 0.0, 0, 0
    for i in range(400):
        hyps, refs = _corpus(rng)
        lowercase = i % 4 == 0
        streams = _streams(refs)
        ours = corpus_bleu(hyps, streams, lowercase=lowercase)
        theirs = sacrebleu.corpus_bleu(hyps, streams, lowercase=lowercase)
        _same(ours, theirs)
        worst = max(worst, abs(ours.score - theirs.score))
        zeros += ours.score == 0
        smoothed += any(c == 0 < t for c, t in zip(ours.counts, ours.totals)) and ours.score > 0
    # the corpora reach every branch: zero scores, smoothed orders, ordinary scores
    assert 20 < zeros < 300 and smoothed > 20, (zeros, smoothed)
    assert worst < 1e-6


def test_sentence_bleu_equals_sacrebleu_on_random_sentences():
    rng = random.Random(1)
    for i in range(1500):
        max_len = rng.choice([1, 2, 3, 5, 12, 30])
        h = _sentence(rng, max_len)
        refs = [_reference(rng, h, max_len) for _ in range(rng.choice([1, 1, 2, 3]))]
        lowercase = i % 5 == 0
        _same(sentence_bleu(h, refs, lowercase=lowercase), sacrebleu.sentence_bleu(h, refs, lowercase=lowercase))
        if len(refs) == 1:  # one reference may be given as a plain string
            assert sentence_bleu(h, refs[0]).score == sacrebleu.sentence_bleu(h, refs).score


@settings(max_examples=400, derandomize=True, deadline=None)
@given(st.lists(st.sampled_from(list("ab1 9.,-'\"&;<>/!?()[]{}~`^_|@#$%*+=:\\\n\t\u00a0é") + ["&amp;", "<skipped>", "-\n"])))
def test_13a_tokenizer_equals_sacrebleus(pieces):
    line = "".join(pieces)
    assert " ".join(tokenize_13a(line)) == Tokenizer13a()(line)


def test_13a_by_hand():
    assert tokenize_13a("Hello, world! It's 3.5 km (well-known).") == [
        "Hello", ",", "world", "!", "It's", "3.5", "km", "(", "well-known", ")", "."
    ]
    assert tokenize_13a("1,000 and 2-3 &amp; a<skipped> line-\nbreak") == ["1,000", "and", "2", "-", "3", "&", "a", "linebreak"]
    assert tokenize_13a("Bonjour\u00a0!") == tokenize_13a("Bonjour!") == ["Bonjour", "!"]


def test_hand_worked_smoothing():
    # 6 words each; matches: 1-grams 5/6, 2-grams 3/5 (the cat, on the, the mat), 3-grams 1/4 (on the mat),
    # 4-grams 0/3 -> exp smoothing p_4 = 1 / (2 * 3). BP = 1. BLEU = 100 (5/6 * 3/5 * 1/4 * 1/6)^(1/4) = 100 / 48^(1/4)
    hyp, ref = "the cat sat on the mat", "the cat is on the mat"
    for s in (corpus_bleu([hyp], [[ref]]), sentence_bleu(hyp, ref)):
        assert s.counts == (5, 3, 1, 0) and s.totals == (6, 5, 4, 3)
        assert s.precisions == pytest.approx((500 / 6, 60.0, 25.0, 100 / 6))
        assert s.bp == 1.0 and (s.sys_len, s.ref_len) == (6, 6)
        assert s.score == pytest.approx(100 / 48**0.25)  # 37.99..., where the unsmoothed definition gives 0


def test_hand_worked_brevity_and_effective_order():
    # 2 words against 6: p_1 = p_2 = 100%, no 3- or 4-grams; BP = exp(1 - 6/2) = e^-2
    s = sentence_bleu("the cat", "the cat is on the mat")
    assert s.bp == pytest.approx(math.exp(-2)) and s.score == pytest.approx(100 * math.exp(-2))  # orders 1..2 only
    assert corpus_bleu(["the cat"], [["the cat is on the mat"]]).score == 0.0  # no 3-grams: p_3 = 0 at corpus level


def test_hand_worked_several_references():
    # "the" may count twice (the second reference has it twice); closest length to 4 is 3
    s = corpus_bleu(["the the the the"], [["the cat"], ["the the dog"]])  # two reference streams
    assert s.counts == (2, 1, 0, 0) and s.totals == (4, 3, 2, 1) and (s.sys_len, s.ref_len) == (4, 3)
    p = (50.0, 100 / 3, 100 / (2 * 2), 100 / (4 * 1))  # 3- and 4-grams smoothed by 1/2, then 1/4
    assert s.precisions == pytest.approx(p)
    assert s.score == pytest.approx(math.prod(p) ** 0.25)
    # a tie in length picks the shorter reference: 2 is as close to 3 as 4 is
    assert corpus_bleu(["a b c"], [["a b"], ["a b c d"]]).ref_len == 2
    # a sentence with fewer references than the others: None in the streams, as in sacreBLEU
    assert corpus_bleu(["a b", "c d"], [["a b", "c d"], ["x", None]]).ref_len == 4


def test_corpus_bleu_is_not_a_mean_of_sentence_scores():
    hyps, refs = ["the cat sat on the mat", "a dog"], ["the cat is on the mat", "a big dog barks"]
    corpus = corpus_bleu(hyps, [refs])
    assert corpus.counts == (7, 3, 1, 0) and corpus.totals == (8, 6, 4, 3) and (corpus.sys_len, corpus.ref_len) == (8, 10)
    mean = sum(sentence_bleu(h, r).score for h, r in zip(hyps, refs)) / 2
    assert abs(corpus.score - mean) > 1


def test_bad_arguments():
    with pytest.raises(ValueError, match="reference stream 0 has 1 sentences for 2 hypotheses"):
        corpus_bleu(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="at least one hypothesis"):
        corpus_bleu([], [[]])
    with pytest.raises(ValueError, match="at least one reference stream"):
        corpus_bleu(["a"], [])
    with pytest.raises(ValueError, match="at least one reference"):
        corpus_bleu(["a"], [[None]])
    with pytest.raises(TypeError, match=r"\[refs\] for one reference per sentence"):
        corpus_bleu(["a b", "c"], ["a b", "c"])  # one string per sentence: must be wrapped, [refs]
    with pytest.raises(TypeError):
        corpus_bleu("a b", [["a b"]])
    with pytest.raises(TypeError, match="strings"):
        sentence_bleu(["a"], "a")


def test_the_metric_does_not_import_sacrebleu():
    tree = ast.parse(Path(bleu_module.__file__).read_text())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert imported and not any(m.split(".")[0] == "sacrebleu" for m in imported)


def test_paired_bootstrap_scores_the_whole_set_and_brackets_the_difference():
    from deepnotes.metrics.text import paired_bootstrap

    rng = random.Random(5)
    refs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) for _ in range(60)]
    good = [r if i % 4 else r.split()[0] for i, r in enumerate(refs)]  # right three times in four
    bad = [" ".join(rng.choice(WORDS) for _ in range(6)) for _ in refs]
    r = paired_bootstrap(good, bad, refs, samples=300)
    assert r["a"] == pytest.approx(corpus_bleu(good, [refs]).score, abs=1e-9)
    assert r["b"] == pytest.approx(corpus_bleu(bad, [refs]).score, abs=1e-9)
    assert r["low"] <= r["difference"] <= r["high"] and r["low"] > 20
    same = paired_bootstrap(bad, bad, refs, samples=50)
    assert same["difference"] == same["low"] == same["high"] == 0.0
    flipped = paired_bootstrap(bad, good, refs, samples=300)
    assert flipped["high"] < -20
    with pytest.raises(ValueError, match="as many hypotheses"):
        paired_bootstrap(good, bad[:-1], refs)
