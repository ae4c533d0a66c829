"""Lab experiment C60 (contextual against static embeddings): the sentence sets, the encodings of an
occurrence, the measures on hand-made vectors and a tiny untrained BERT, and the judge on hand-made
numbers (tests/test_lab.py runs the quick run and its opposite evidence)."""

import copy
from collections import Counter

import numpy as np
import pytest
import torch

from deepnotes.data import load_dataset
from deepnotes.data.corpora import Corpus
from deepnotes.errors import DataError, UserError
from deepnotes.lab import Context
from deepnotes.lab.language import contextual as lab
from deepnotes.models import create_model
from deepnotes.tasks.language_model import split_documents
from deepnotes.text.streams import MASK_ID, build_tokenizer
from deepnotes.text.tokenize import tokenize
from deepnotes.text.vocab import EOS, UNK


def _corpus(sentences, docs=10):
    doc = np.arange(len(sentences), dtype=np.int32) % docs
    return Corpus("tiny", [list(s) for s in sentences], doc, [f"d{i}" for i in range(docs)], ["c"] * docs, "test", "words-1")


# ---------------------------------------------------------------- the sentences


@pytest.mark.parametrize("sets", [lab.GETTEXT_SENSES, lab.BROWN_SENSES], ids=["gettext", "brown"])
def test_every_occurrence_is_the_second_word_of_its_sentence(sets):
    positions = lab.check_sentences(sets)
    assert set(positions) == set(sets) and len(sets) >= lab.MIN_WORDS
    assert all(p == [1] * 5 for p in positions.values())  # one position for every occurrence: no position cue
    assert all(len(a) == len(b) == 5 for _, (a, b) in sets.values())


def test_check_sentences_rejects_unmatched_positions_and_repeated_words():
    with pytest.raises(ValueError, match="positions of the two senses differ"):
        lab.check_sentences({"bank": (("money", "river"), (["the bank paid"], ["by the bank"]))})
    with pytest.raises(ValueError, match="exactly once"):
        lab.check_sentences({"bank": (("money", "river"), (["the bank bank"], ["the bank"]))})


def _vocabulary(name, n):
    c = load_dataset(name, download=False)
    train = set(split_documents(c.num_docs)[0])
    counts = Counter(t for s, d in zip(c.sentences, c.doc_of_sentence) if int(d) in train for t in s)
    return {w for w, _ in counts.most_common(n)}


@pytest.mark.parametrize(("name", "sets", "pick"), [("gettext-en", lab.GETTEXT_SENSES, 0), ("brown", lab.BROWN_SENSES, 1)])
def test_every_sentence_word_is_in_the_runs_vocabulary(name, sets, pick):
    try:
        vocab = _vocabulary(name, lab.RECIPE["vocabulary"][pick])
    except DataError:
        pytest.skip(f"{name} is not on this machine")
    missing = {t for _, groups in sets.values() for g in groups for s in g for t in tokenize(s) if t not in vocab}
    assert not missing


def test_sense_sets_pick_the_corpus_register():
    assert lab.sense_sets("gettext-en") is lab.GETTEXT_SENSES
    assert lab.sense_sets("brown") is lab.BROWN_SENSES and lab.sense_sets("shakespeare") is lab.BROWN_SENSES


# ---------------------------------------------------------------- corpus, encodings, vectors


def test_top_words_replaces_the_rest_by_unk_and_the_tokenizer_follows():
    sentences = [["a", "a", "b", "c"], ["a", "b", "d"], ["a", "e"]] * 10
    c, counts = lab.top_words(_corpus(sentences), 2)
    assert counts["a"] > counts["b"] > 0
    assert all(t in ("a", "b", "<unk>") for s in c.sentences for t in s) and "top 2" in c.name
    tok = build_tokenizer("word", c, split_documents(c.num_docs)[0])
    assert len(tok) == 5 + 2  # PAD SOS EOS UNK <mask> and the two words
    assert tok.encode_sentences([["c", "a"]]).tolist() == [UNK, tok.table.stoi["a"], EOS]


def _tok():
    c = _corpus([["the", "bank", "paid", "money"], ["the", "river", "bank", "was", "high"], ["cannot", "list", "files"]] * 10)
    return build_tokenizer("word", c, range(c.num_docs))


def test_occurrences_sentence_masked_alone():
    tok = _tok()
    wid = tok.table.stoi["bank"]
    (ids, p), (ids2, p2) = lab.occurrences(tok, "bank", ["the bank paid money", "the river bank"], "sentence")
    assert ids[0] == EOS == ids[-1] and ids[p] == wid and p == 2 and ids2[p2] == wid and p2 == 3
    (ids, p), _ = lab.occurrences(tok, "bank", ["the bank paid money", "the river bank"], "masked")
    assert ids == [EOS, MASK_ID, wid, MASK_ID, MASK_ID, EOS] and p == 2
    alone = lab.occurrences(tok, "bank", ["the bank paid money", "the river bank"], "alone")
    assert alone == [([EOS, wid, EOS], 1)] * 2


def test_static_vectors_are_one_row_and_contextual_ones_differ():
    tok = _tok()
    torch.manual_seed(0)
    bert = create_model(
        "bert_mini", vocab_size=len(tok), num_classes=len(tok), n_layer=1, n_head=2, d_model=16, d_ff=32, max_len=16
    )
    sentences = ["the bank paid money", "the river bank was high", "the bank was high"]
    ctx_v, static = lab.vectors(bert, lab.occurrences(tok, "bank", sentences, "sentence"))
    ident = lab.static_identity(static)
    assert ident["max_abs_difference"] == 0.0 and abs(ident["min_cosine"] - 1) < 1e-12
    assert np.array_equal(static[0], bert.embeddings.word.weight[tok.table.stoi["bank"]].double().detach().numpy())
    assert lab.cosines(ctx_v)[np.triu_indices(3, 1)].max() < 1 - lab.SAME  # the same word, three vectors
    alone, _ = lab.vectors(bert, lab.occurrences(tok, "bank", sentences, "alone"))
    assert np.array_equal(alone[0], alone[1]) and np.array_equal(alone[1], alone[2])  # no context: one vector


def test_separation_on_hand_made_vectors():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=8), rng.normal(size=8)
    v = np.stack([a + 0.1 * rng.normal(size=8) for _ in range(4)] + [b + 0.1 * rng.normal(size=8) for _ in range(4)])
    s = lab.separation(lab.cosines(v), [0] * 4 + [1] * 4)
    assert s["diff"] > 0.5 and s["auc"] == 1.0 and s["pairs_differing"] == 1.0
    same = lab.separation(lab.cosines(np.tile(a, (8, 1))), [0] * 4 + [1] * 4)
    assert same["diff"] == pytest.approx(0, abs=1e-12) and same["auc"] == 0.5 and same["pairs_differing"] == 0.0
    swapped = lab.separation(lab.cosines(v), [0, 1] * 4)  # labels that cut across the clusters
    assert swapped["diff"] < 0 and swapped["auc"] < 0.5


# ---------------------------------------------------------------- the judge


def _iv(mean, low, high, over="words"):
    return {"mean": mean, "low": low, "high": high, "runs": 9, "over": over}


def _numbers(diff, auc_gain, seeds_iv=None, differing=1.0, static_diff=0.0):
    return {
        "data": "brown (top 5000 words)", "train_tokens": 1_000_000, "vocabulary": 5005, "context": "sentence",
        "recipe": {"bert": {"n_layer": 4}, "steps": 1500}, "seeds": [0, 1, 2] if seeds_iv else [0], "sentences_per_sense": 5,
        "mlm": {"test_loss_mean": 5.1, "test_accuracy_mean": 0.2},
        "identity": {"max_abs_difference": static_diff, "min_cosine": 1.0 if not static_diff else 0.9, "max_cosine": 1.0},
        "words": {"bank": {"trained": {"diff_mean": diff["mean"]}}},
        "summary": {"diff_over_words": diff, "diff_over_seeds": seeds_iv, "auc_trained": 0.7, "auc_init": 0.55,
                    "auc_trained_minus_init_over_words": auc_gain, "diff_init": 0.01, "pairs_differing": differing,
                    "mean_cosine": 0.8, "max_cosine": 0.99},
    }  # fmt: skip


def test_judge_c60():
    up, straddle, down = _iv(0.1, 0.05, 0.15), _iv(0.03, -0.01, 0.07), _iv(-0.1, -0.15, -0.05)
    verdict, reason = lab.judge_c60(_numbers(up, up, seeds_iv=_iv(0.1, 0.02, 0.18, "seeds")))
    assert verdict == "holds" and "bit-identical" in reason and "over seeds" in reason
    verdict, reason = lab.judge_c60(_numbers(up, straddle))  # the untrained encoder separates them as well
    assert verdict == "holds with a correction" and "untrained encoder" in reason
    verdict, reason = lab.judge_c60(_numbers(straddle, up))  # a small BERT: vectors differ, sense not shown
    assert verdict == "holds with a correction" and "inconclusive" in reason
    verdict, reason = lab.judge_c60(_numbers(up, up, seeds_iv=straddle))  # separated over words, not over seeds
    assert verdict == "holds with a correction" and "inconclusive" in reason
    verdict, reason = lab.judge_c60(_numbers(down, up))
    assert verdict == "does not hold" and "reversed" in reason
    verdict, reason = lab.judge_c60(_numbers(_iv(0.0, 0.0, 0.0), _iv(0.0, 0.0, 0.0), differing=0.0))  # context="alone"
    assert verdict == "does not hold" and "do not differ" in reason
    verdict, reason = lab.judge_c60(_numbers(up, up, static_diff=0.1))
    assert verdict == "does not hold" and "static vectors" in reason


def test_a_judge_does_not_change_its_numbers():
    n = _numbers(_iv(0.1, 0.05, 0.15), _iv(0.1, 0.05, 0.15))
    before = copy.deepcopy(n)
    lab.judge_c60(n)
    assert n == before


def test_bad_context_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="context is one of"):
        lab.run_c60(Context(tmp_path, quick=True), context="sideways")
