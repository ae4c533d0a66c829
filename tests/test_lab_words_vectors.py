"""Lab experiments C39, C40, C58, C59 (word vectors): the pieces on hand-made vectors and corpora,
against oracles where one exists, and the judges on hand-made numbers (tests/test_lab.py runs every
quick run and its opposite evidence)."""

import copy

import numpy as np
import pytest
import torch

from deepnotes.data.corpora import Corpus
from deepnotes.errors import UserError
from deepnotes.lab import Context
from deepnotes.lab.words import vectors as lab
from deepnotes.metrics.wordvec import analogy_accuracy, nearest


def _iv(mean, low, high, over="seeds"):
    return {"mean": mean, "low": low, "high": high, "runs": 3, "over": over}


def _corpus(sentences):
    return Corpus("tiny", [list(s) for s in sentences], np.zeros(len(sentences), dtype=np.int32), ["d"], ["c"], "test", "words-1")


def _trained(words, vectors, counts=None, model=None):
    """A Trained record around hand-made vectors (the first 4 rows stand for the specials)."""
    words = ["<pad>", "<sos>", "<eos>", "<unk>", *words]
    vectors = np.vstack([np.zeros((4, vectors.shape[1])), vectors])
    counts = np.array([0] * 4 + list(counts if counts is not None else [10] * (len(words) - 4)), dtype=float)
    return lab.Trained("word2vec", "tiny", 0, 1, {"dim": vectors.shape[1], "min_count": 1}, words,
                       {w: i for i, w in enumerate(words) if i >= 4}, counts, vectors, [], {}, 0.0, model)  # fmt: skip


# ---------------------------------------------------------------- corpora


def test_shuffled_corpus_keeps_tokens_counts_and_lengths():
    c = _corpus([["the", "cat", "sat"], ["on", "the", "mat", "today"], ["a"]])
    s = lab.shuffled_corpus(c, seed=0)
    assert [len(x) for x in s.sentences] == [3, 4, 1]
    assert sorted(t for x in s.sentences for t in x) == sorted(t for x in c.sentences for t in x)
    assert s.sentences != c.sentences and lab.shuffled_corpus(c, 0).sentences == s.sentences  # shuffled, and seeded
    assert "shuffled" in s.name and s.name != lab.shuffled_corpus(c, 1).name


def test_without_words_deletes_every_token_and_drops_empty_sentences():
    c = _corpus([["a", "b", "a"], ["b"], ["c", "a"]])
    out = lab.without_words(c, ["a"])
    assert out.sentences == [["b"], ["b"], ["c"]]
    out = lab.without_words(c, ["b"])
    assert out.sentences == [["a", "a"], ["c", "a"]] and len(out.doc_of_sentence) == 2 and out.doc_of_sentence.dtype == np.int32
    assert out.name != lab.without_words(c, ["c"]).name  # the cache tells the two apart


# ---------------------------------------------------------------- statistics


def test_tie_rank_puts_ties_in_the_middle():
    assert lab.tie_rank(np.array([0.9, 0.5, 0.1]), 0) == 1.0
    assert lab.tie_rank(np.array([0.9, 0.5, 0.1]), 2) == 3.0
    assert lab.tie_rank(np.zeros(9), 4) == 5.0  # every candidate tied: the middle, not the top


def test_fisher_and_exact_intervals():
    iv = lab.fisher_interval(0.3, 274)
    se = np.sqrt(1.06 / 271)
    assert iv["low"] == pytest.approx(np.tanh(np.arctanh(0.3) - 1.96 * se), abs=1e-3) and iv["pairs"] == 274
    assert lab.fisher_interval(0.5, 3)["low"] is None
    from scipy.stats import binomtest

    ci = binomtest(7, 1407).proportion_ci(method="exact")
    iv = lab.exact_interval(7, 1407)
    assert iv["low"] == pytest.approx(ci.low, rel=1e-3) and iv["high"] == pytest.approx(ci.high, rel=1e-3)
    assert lab.above(iv, 1 / 6935) and not lab.above(lab.exact_interval(0, 91), 0.0) and not lab.above(None)


# ---------------------------------------------------------------- C39 pieces


def test_category_auc_is_one_for_separated_categories_and_half_for_none():
    labels = ["a"] * 3 + ["b"] * 3
    block = np.kron(np.eye(2), np.ones((3, 3)))  # similarity 1 inside a category, 0 across
    assert lab.category_auc(block, labels).tolist() == [1.0] * 6
    assert lab.category_auc(np.zeros((6, 6)), labels).tolist() == [0.5] * 6  # all ties
    assert lab.category_auc(1 - block, labels).tolist() == [0.0] * 6


def test_category_words_keep_categories_with_enough_words():
    index = {w: i for i, w in enumerate(["monday", "tuesday", "friday", "red", "blue", "png"])}
    assert lab.category_words(index) == {"days": ["monday", "tuesday", "friday"]}


def test_one_hot_identity():
    words = ["cat", "dog", "car", "tiger"]
    out = lab.one_hot_identity(words, words + ["the", "a"], [("cat", "tiger"), ("dog", "car"), ("cat", "zebra")], [7.0, 2.0, 5.0])
    assert out["kind"].startswith("identity")
    assert out["dimensions"] == 6 and out["words"] == 4
    assert out["max_abs_off_diagonal_cosine"] == 0.0 and out["diagonal"] == 1.0
    assert out["wordsim_pairs"] == 2 and out["distinct_pair_cosines"] == [0.0] and out["spearman"] is None
    assert out["same_word_pairs"] == [] and out["spearman_all"] is None  # every cosine 0: no ranks at all
    # WordSim-353 pairs "tiger" with itself (10.0): cosine 1, and then a correlation exists, made by that pair alone
    pairs, scores = [("tiger", "tiger"), ("cat", "tiger"), ("dog", "car"), ("car", "cat")], [10.0, 7.0, 2.0, 1.0]
    out = lab.one_hot_identity(words, words, pairs, np.array(scores))  # the benchmark's scores are an array
    assert out["distinct_pair_cosines"] == [0.0] and out["distinct_word_pairs"] == 3 and out["same_word_pairs"] == [["tiger", 1.0]]
    from scipy.stats import spearmanr

    assert out["spearman_all"] == pytest.approx(spearmanr([1, 0, 0, 0], scores).statistic, abs=1e-3) and out["spearman_all"] > 0


def test_c39_arm_sees_categories_beyond_frequency():
    words = "monday tuesday wednesday one two three red blue green".split()
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16))
    vectors = np.repeat(centres, 3, 0) + 0.1 * rng.normal(size=(9, 16))  # each category a tight cluster
    arm = lab.c39_arm([_trained(words, vectors, counts=[50, 40, 30, 50, 40, 30, 50, 40, 30])], {})
    assert arm["auc"]["mean"] == 1.0 and arm["frequency_auc"] < 0.6  # same frequencies in every category
    assert lab.above(arm["auc_minus_frequency"]["over_words"]) and arm["auc_minus_frequency"]["over_seeds"] is None


# ---------------------------------------------------------------- C39 judge


def _c39(d_words, d_seeds, simlex=None, identity_max=0.0):
    bench = {"wordsim": {"runs": [0.3] * 3, "mean": 0.3, "pairs": 274, "over_pairs": {"low": 0.19, "high": 0.4, "pairs": 274},
                         "over_seeds": _iv(0.3, 0.28, 0.32), "judged": True},
             "simlex": simlex or {"runs": [0.15] * 3, "mean": 0.15, "pairs": 997, "over_pairs": {"low": 0.09, "high": 0.21, "pairs": 997},
                                  "over_seeds": _iv(0.15, 0.13, 0.17), "judged": True}}  # fmt: skip
    arm = {"categories": {"days": ["monday"] * 7}, "auc": {"mean": 0.85}, "frequency_auc": 0.58,
           "auc_minus_frequency": {"over_words": d_words, "over_seeds": d_seeds}, "benchmarks": bench}  # fmt: skip
    return {
        "data": "brown", "context": "text", "tokens": 1_161_192, "vocabulary": 14_221, "seeds": [0, 1, 2],
        "recipe": {"dim": 100, "epochs": 5},
        "identity": {"words": 368, "dimensions": 14_221, "max_abs_off_diagonal_cosine": identity_max, "diagonal": 1.0,
                     "wordsim_pairs": 274, "distinct_word_pairs": 273, "distinct_pair_cosines": [0.0],
                     "same_word_pairs": [["tiger", 1.0]], "spearman_all": 0.05},
        "vectors": arm, "control": None,
    }  # fmt: skip


def test_judge_c39():
    good = _iv(0.27, 0.23, 0.31, "116 words")
    verdict, reason = lab.judge_c39(_c39(good, _iv(0.27, 0.26, 0.28)))
    assert verdict == "holds" and "E27" in reason and "E37" in reason and "E41" in reason and "+0.270" in reason
    assert "tiger-tiger" in reason and "+0.050" in reason
    # shuffled context: below what frequency alone gives (the opposite evidence)
    verdict, reason = lab.judge_c39(_c39(_iv(-0.07, -0.1, -0.03, "55 words"), None))
    assert verdict == "does not hold" and "frequency alone" in reason
    verdict, _ = lab.judge_c39(_c39(good, _iv(0.05, -0.02, 0.12)))  # the seeds disagree
    assert verdict == "does not hold"
    weak = {"runs": [0.02] * 3, "mean": 0.02, "pairs": 997, "over_pairs": {"low": -0.04, "high": 0.08, "pairs": 997},
            "over_seeds": _iv(0.02, 0.0, 0.04), "judged": True}  # fmt: skip
    verdict, reason = lab.judge_c39(_c39(good, None, simlex=weak))
    assert verdict == "holds with a correction" and "SimLex-999 is not above 0" in reason
    verdict, reason = lab.judge_c39(_c39(good, None, simlex=weak | {"pairs": 148, "judged": False}))
    assert verdict == "holds" and "not judged" in reason  # too few pairs: reported only
    verdict, reason = lab.judge_c39(_c39(good, None, identity_max=1e-9))
    assert verdict == "does not hold" and "one-hot identity fails" in reason


# ---------------------------------------------------------------- C40 pieces


def test_e43_identity():
    out = lab.e43_identity()
    assert out["equal"] and out["playing_3grams"] == lab.E43_PLAYING
    assert "<cat>" in out["cat_3_to_6grams"]  # a short word is one of its own n-grams


def test_held_out_words_and_relatives():
    common = [f"words{chr(97 + i)}" for i in range(12)]
    sentences = [[w] * 20 for w in common] + [["rare" + "q" * 3]] + [["a"] * 200]
    words = lab.held_out_words(_corpus(sentences), 5, seed=0)
    assert len(words) == 5 and set(words) <= set(common) and words == lab.held_out_words(_corpus(sentences), 5, seed=0)
    assert lab.has_relative("configured", {"configure", "file"}) and not lab.has_relative("configured", {"configured", "file"})
    assert lab.has_relative("addresses", {"address"})


class _FakeFastText:
    """oov_vector(word) from a table (what the n-grams would give)."""

    def __init__(self, table, dim):
        self.table, self.dim = table, dim

    def oov_vector(self, word):
        return torch.as_tensor(self.table.get(word, np.zeros(self.dim)), dtype=torch.float32)


def test_oov_against_in_vocabulary_aligns_a_rotated_space():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(60)]
    held = words[:10]
    kept_vectors = rng.normal(size=(60, 8))
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))  # the held-out run's space: the same vectors, rotated
    out_vectors = kept_vectors[10:] @ q
    kept = _trained(words, kept_vectors)
    model = _FakeFastText({w: kept_vectors[i] @ q for i, w in enumerate(held)}, 8)
    out = _trained(words[10:], out_vectors, model=model)
    r = lab.oov_against_in_vocabulary(out, kept, held)
    assert r["aligned_in_vocabulary"] == pytest.approx(1.0, abs=1e-6) and r["shared_words"] == 50
    assert np.allclose(r["true"], 1.0, atol=1e-6) and (r["rank"] == 1).all() and (r["true"] > r["other"]).all()
    model.table = {}  # no n-grams: zero vectors, no information
    r = lab.oov_against_in_vocabulary(out, kept, held)
    assert r["zero_vectors"] == 10 and np.allclose(r["true"] - r["other"], 0.0) and (r["rank"] > 20).all()


def test_misspelling_ranks():
    words = ["government", "receive", "other", "thing"]
    v = np.eye(4)
    kept = _trained(words, v, model=_FakeFastText({"goverment": v[0] + 0.1, "recieve": v[2]}, 4))
    out = {m["word"]: m for m in lab.misspelling_ranks(kept)}
    assert set(out) == {"goverment", "recieve"}
    assert out["goverment"]["rank"] == 1 and out["goverment"]["nearest"][0][0] == "government"
    assert out["recieve"]["rank"] > 1


# ---------------------------------------------------------------- C40 judge


def _c40(d_words, d_seeds, playing=None, no_vector=30):
    return {
        "data": "brown", "seeds": [0, 1, 2],
        "recipe": {"dim": 100, "min_n": 3, "max_n": 6, "buckets": 200_000, "epochs": 3},
        "identity": {"equal": (playing or lab.E43_PLAYING) == lab.E43_PLAYING, "playing_3grams": playing or lab.E43_PLAYING,
                     "playing_3_to_6grams": 22},
        "held_out": {"words": ["a"] * 200, "tokens_removed": 9000, "count_band": [10, 100]},
        "word2vec": {"asked": 30, "no_vector": no_vector, "error": "'x' is not in the run's vocabulary"},
        "oov": {"true_cosine": 0.6, "other_cosine": 0.2, "aligned_in_vocabulary": 0.8, "zero_vectors": 0,
                "true_minus_other": {"over_words": d_words, "over_seeds": d_seeds},
                "rank": {"median": 12, "top10_share": 0.45, "vocabulary": 14_221},
                "by_relative": {"with": {"words": 120, "mean": 0.45}, "without": {"words": 80, "mean": 0.3}}},
        "misspellings": [{"word": "goverment", "intended": "government", "rank": 1}, {"word": "recieve", "intended": "receive", "rank": 40}],
    }  # fmt: skip


def test_judge_c40():
    good = _iv(0.4, 0.36, 0.44, "200 words")
    verdict, reason = lab.judge_c40(_c40(good, _iv(0.4, 0.38, 0.42)))
    assert verdict == "holds" and "E43" in reason and "top 10 for 1 of 2" in reason and "goverment -> government #1" in reason
    # no n-grams: every unseen word gets the zero vector (the opposite evidence)
    verdict, reason = lab.judge_c40(_c40(_iv(0.0, 0.0, 0.0, "50 words"), None))
    assert verdict == "does not hold" and "do not point to them" in reason
    verdict, _ = lab.judge_c40(_c40(_iv(1e-9, 5e-10, 2e-9, "50 words"), None))  # float rounding is not an effect
    assert verdict == "does not hold"
    verdict, reason = lab.judge_c40(_c40(good, None, playing=["pla", "lay"]))
    assert verdict == "does not hold" and "not E43's" in reason
    verdict, _ = lab.judge_c40(_c40(good, None, no_vector=29))  # Word2Vec answered for an unseen word
    assert verdict == "does not hold"


# ---------------------------------------------------------------- C58 pieces


class _Analogies:
    def __init__(self, questions, sections):
        self.questions = questions
        self.sections = sorted(set(sections))
        self.section_of = [self.sections.index(s) for s in sections]


def test_analogy_ranks_agree_with_the_library_and_king_works_on_built_vectors():
    rng = np.random.default_rng(1)
    base = {w: rng.normal(size=16) for w in ("man", "king", "woman", "paris", "france", "rome", "walk", "walked", "jump", "x", "y")}
    base["queen"] = lab.unit(base["king"]) - lab.unit(base["man"]) + lab.unit(base["woman"])
    base["italy"] = lab.unit(base["france"]) - lab.unit(base["paris"]) + lab.unit(base["rome"])
    words = list(base)
    t = _trained(words, np.stack([base[w] for w in words]))
    questions = [("man", "king", "woman", "queen"), ("paris", "france", "rome", "italy"), ("walk", "walked", "jump", "x"),
                 ("man", "woman", "king", "nothere")]  # fmt: skip
    where, ranks = lab.analogy_ranks(t.vectors, t.index, questions)
    assert where.tolist() == [0, 1, 2] and ranks[0] == 1 and ranks[1] == 1 and ranks[2] >= 1
    lib = analogy_accuracy(t.vectors, t.index, questions)
    assert lib["correct"] == int((ranks == 1).sum()) and lib["questions"] == 3  # the oracle: the metric deepnotes reports
    k = lab.king_example(t.vectors, t.index, t.words)
    assert k["answers"][0][0] == "queen" and k["queen_rank"] == 1
    assert k["answers"][0][0] == nearest(t.vectors, t.index, t.words, base["queen"], k=1, exclude=["man", "king", "woman"])[0][0]
    del t.index["queen"]
    assert lab.king_example(t.vectors, t.index, t.words)["missing"] == ["queen"]
    arm = lab.analogy_arm([t.vectors], {**t.index, "queen": words.index("queen") + 4},
                          _Analogies(questions, ["family", "capital-world", "gram7-past-tense", "family"]), chance=0.1)  # fmt: skip
    assert arm["semantic"]["questions"] == 2 and arm["syntactic"]["questions"] == 1 and arm["semantic"]["mean"] == 1.0


def test_one_hot_analogies_tie_every_candidate():
    index = {w: i for i, w in enumerate(["a", "b", "c", "d", "e", "f"])}
    out = lab.one_hot_analogies(index, _Analogies([("a", "b", "c", "d"), ("b", "e", "f", "a"), ("a", "z", "c", "d")], ["x"] * 3))
    assert out["questions"] == 2 and out["max_abs_candidate_score"] == 0.0 and out["kind"].startswith("identity")


def test_ppmi_svd_puts_words_of_the_same_contexts_together():
    rng = np.random.default_rng(0)
    sentences = []
    for _ in range(300):
        sentences.append([str(rng.choice(["cat", "dog"])), "eats", str(rng.choice(["fish", "meat"]))])
        sentences.append([str(rng.choice(["car", "bus"])), "drives", str(rng.choice(["fast", "far"]))])
    words = ["cat", "dog", "eats", "fish", "meat", "car", "bus", "drives", "fast", "far"]
    index = {w: i for i, w in enumerate(words)}
    v = lab.unit(lab.ppmi_svd(_corpus(sentences), index, len(words), dim=4))
    assert v.shape == (10, 4) and np.isfinite(v).all()
    assert v[index["cat"]] @ v[index["dog"]] > 0.9 > v[index["cat"]] @ v[index["car"]]


# ---------------------------------------------------------------- C58 judge


def _part(mean, low, n, seeds=None):
    return {"mean": mean, "questions": n, "over_questions": {"low": low, "high": mean + 0.01, "n": n}, "over_seeds": seeds}


def _c58(w2v_all, w2v_sem, w2v_syn, king=("queen", 1.0)):
    arm = lambda a, s, y: {"all": a, "semantic": s, "syntactic": y, "median_rank": 80.0}  # noqa: E731
    answers = {"answers": [[king[0], 0.7]], "queen_rank": king[1], "missing": []} if king else {"answers": [], "queen_rank": None,
                                                                                              "missing": ["king", "queen"]}  # fmt: skip
    return {
        "data": "brown", "context": "text", "questions": 19_544, "scored": 6_304, "vocabulary": 14_221, "chance": 7.03e-5,
        "seeds": [0, 1, 2],
        "models": {"word2vec": arm(w2v_all, w2v_sem, w2v_syn), "fasttext": arm(_part(0.2, 0.19, 6304), _part(0.02, 0.01, 843),
                                                                                 _part(0.23, 0.22, 5461)),
                   "ppmi_svd": arm(_part(0.1, 0.09, 6304), _part(0.14, 0.1, 843), _part(0.09, 0.08, 5461))},
        "one_hot": {"max_abs_candidate_score": 0.0, "questions": 6_304},
        "king": {"word2vec": answers, "fasttext": answers, "ppmi_svd": answers},
        "control": {"word2vec": arm(_part(0.0, 0.0, 6304), _part(0.0, 0.0, 843), _part(0.0, 0.0, 5461)),
                    "fasttext": arm(_part(0.15, 0.14, 6304), _part(0.0, 0.0, 843), _part(0.18, 0.17, 5461))},
    }  # fmt: skip


def test_judge_c58():
    seeds = _iv(0.03, 0.025, 0.035)
    good = (_part(0.03, 0.026, 6304, seeds), _part(0.05, 0.035, 843), _part(0.027, 0.023, 5461))
    verdict, reason = lab.judge_c58(_c58(*good))
    assert verdict == "holds" and "queen #1" in reason and "from shared spellings" in reason
    verdict, reason = lab.judge_c58(_c58(*good, king=("mary", 12.0)))
    assert verdict == "holds with a correction" and "does not answer queen" in reason and "queen #12" in reason
    verdict, reason = lab.judge_c58(_c58(*good, king=None))
    assert verdict == "holds with a correction" and "cannot be asked" in reason
    verdict, reason = lab.judge_c58(_c58(good[0], _part(0.0, 0.0, 91), good[2]))
    assert verdict == "holds with a correction" and "semantic questions" in reason
    # shuffled context: at chance (the opposite evidence)
    verdict, reason = lab.judge_c58(_c58(_part(0.0007, 1.8e-5, 1407), _part(0.0, 0.0, 91), _part(0.0008, 2e-5, 1316)))
    assert verdict == "does not hold" and "not above chance" in reason
    verdict, _ = lab.judge_c58(_c58(_part(0.03, 0.026, 6304, _iv(0.03, -0.01, 0.07)), good[1], good[2]))  # seeds disagree
    assert verdict == "does not hold"


# ---------------------------------------------------------------- C59 pieces


def test_weighted_fit_and_biases_only():
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, 30, 2000), rng.integers(0, 30, 2000)
    b, c = rng.normal(size=30), rng.normal(size=30)
    y = b[i] + c[j]
    f = rng.uniform(0.01, 1.0, 2000)
    pred, change = lab.biases_only(i, j, y, f, 30, iterations=200)
    fit = lab.weighted_fit(pred, y, f)
    assert fit["r2"] == pytest.approx(1.0, abs=1e-6) and fit["r"] == pytest.approx(1.0, abs=1e-6) and change < 1e-6
    mean = float(f @ y / f.sum())
    assert lab.weighted_fit(np.full_like(y, mean), y, f)["r2"] == pytest.approx(0.0, abs=1e-12)
    noisy = y + rng.normal(size=2000)
    gain = lab.r2_gain_over_cells(y, noisy, y, f)
    assert gain["mean"] == pytest.approx(1.0 - lab.weighted_fit(noisy, y, f)["r2"], rel=1e-3) and gain["low"] > 0


def test_spread_counts_the_directions_vectors_use():
    rng = np.random.default_rng(0)
    line = np.outer(rng.normal(size=500), rng.normal(size=20)) + 1e-3 * rng.normal(size=(500, 20))
    out = lab.spread(line)
    assert out["top1_variance_share"] > 0.99 and out["participation_ratio"] < 1.01
    out = lab.spread(rng.normal(size=(5000, 20)))
    assert out["top1_variance_share"] < 0.1 and out["participation_ratio"] > 18 and abs(out["mean_cosine_random_pairs"]) < 0.02


def test_glove_predictions_and_the_permutation():
    from deepnotes.models import create_model

    torch.manual_seed(0)
    m = create_model("glove", vocab_size=7, num_classes=7, dim=3)
    i, j = np.array([0, 3, 6]), np.array([1, 3, 2])
    with torch.no_grad():
        want = [float(m.w[a] @ m.w_context[b] + m.b[a] + m.b_context[b]) for a, b in zip(i, j)]
    assert np.allclose(lab.glove_predictions(m, i, j), want, atol=1e-6)
    p = lab.permutation(10, 3)
    assert sorted(p.tolist()) == list(range(10)) and (p == lab.permutation(10, 3)).all() and (p != np.arange(10)).any()


# ---------------------------------------------------------------- C59 judge


def _c59(up, beyond, cells="real"):
    fit = lambda r2, r, mse: {"r2": {"mean": r2}, "r": {"mean": r}, "mse": {"mean": mse}}  # noqa: E731
    n = {
        "data": "brown", "cells": 3_619_272, "vocabulary": 14_221, "window": 10, "recipe": {"dim": 100, "epochs": 15}, "seeds": [0, 1, 2],
        "cells_values": cells,
        "fit": {"init": fit(-0.18, 0.04, 4.56), "trained": fit(0.84, 0.92, 0.62), "biases_only": {"r2": 0.70, "r": 0.84, "mse": 1.15}},
        "trained_minus_init_r2": up, "trained_minus_biases_r2": beyond, "loss_curve": [0.0198, 0.0085],
        "similarity": {k: {"wordsim": 0.03, "simlex": 0.03} for k in ("w_plus_context", "w", "context")},
        "spread": {"top1_variance_share": 0.79, "top2_variance_share": 0.93, "participation_ratio": 1.5, "mean_cosine_random_pairs": 0.27},
    }  # fmt: skip
    if cells == "permuted":
        n["fit_to_training_targets"] = {"r2": 0.2, "r": 0.45, "mse": 0.6}
    return n


def test_judge_c59():
    verdict, reason = lab.judge_c59(_c59(_iv(1.02, 1.01, 1.03), _iv(0.14, 0.13, 0.15)))
    assert verdict == "holds" and "E42" in reason and "+0.840" in reason and "Side number" in reason and "holds 79%" in reason
    # trained on permuted cells: worse than frequencies alone (the opposite evidence)
    verdict, reason = lab.judge_c59(_c59(_iv(0.19, 0.18, 0.2), _iv(-0.6, -0.62, -0.58), cells="permuted"))
    assert verdict == "does not hold" and "no better than word frequencies" in reason and "its own targets" in reason
    verdict, reason = lab.judge_c59(_c59(_iv(-0.1, -0.2, 0.0), _iv(0.1, 0.05, 0.15)))
    assert verdict == "does not hold" and "does not raise" in reason


# ---------------------------------------------------------------- options and the training path


@pytest.mark.parametrize(("run", "option"), [(lab.run_c39, "context"), (lab.run_c58, "context"), (lab.run_c59, "cells")])
def test_bad_options_are_one_clear_error(tmp_path, run, option):
    with pytest.raises(UserError, match=f"{option} is"):
        run(Context(tmp_path, quick=True), **{option: "sideways"})


def test_train_vectors_goes_through_run_training_and_caches(monkeypatch):
    monkeypatch.setattr(lab, "_RUNS", {})
    rng = np.random.default_rng(0)
    c = _corpus([[str(w) for w in rng.choice(["a", "b", "c", "d", "e", "f"], 8)] for _ in range(200)])
    t = lab.train_vectors("word2vec", c, epochs=1, seed=0, model_args={"dim": 4, "min_count": 1})
    assert t.vectors.shape == (len(t.words), 4) and set(t.index) == set("abcdef") and len(t.history) == 1
    assert t.counts[t.index["a"]] == sum(s.count("a") for s in c.sentences)
    assert lab.train_vectors("word2vec", c, epochs=1, seed=0, model_args={"dim": 4, "min_count": 1}) is t  # cached
    assert torch.get_num_threads() == 1  # conftest's one thread, put back after the run's


def test_permuted_cells_task_trains_on_permuted_values(monkeypatch):
    monkeypatch.setattr(lab, "_RUNS", {})
    rng = np.random.default_rng(0)
    c = _corpus([[str(w) for w in rng.choice(list("abcdefgh"), 10)] for _ in range(100)])
    real = lab.train_vectors("glove", c, epochs=1, seed=0, model_args={"dim": 4, "min_count": 1})
    task = lab._permuted_cells_task()
    perm = lab.train_vectors("glove", c, epochs=1, seed=0, model_args={"dim": 4, "min_count": 1}, task=task)
    assert perm is not real and not np.allclose(perm.vectors, real.vectors)
    i, j, x = lab.glove_cells(c, real)
    assert len(x) == len(set(zip(i.tolist(), j.tolist()))) > 0 and (x > 0).all()


def test_a_judge_does_not_change_its_numbers():
    n = _c59(_iv(1.02, 1.01, 1.03), _iv(0.14, 0.13, 0.15))
    before = copy.deepcopy(n)
    lab.judge_c59(n)
    assert n == before
