"""Lab experiments C41 (TF-IDF) and C57 (bag of words ignores order): the pieces on tiny hand-made
corpora and the judges on hand-made numbers (tests/test_lab.py runs every quick run and its
opposite evidence)."""

from collections import Counter

import numpy as np
import pytest

from deepnotes.errors import DataError, UserError
from deepnotes.lab import Context
from deepnotes.lab.words import bow as lab
from deepnotes.text.vectorize import bag_of_words


def _iv(mean, low, high, over="documents"):
    return {"mean": mean, "low": low, "high": high, "runs": 3, "over": over}


# ---------------------------------------------------------------- C41 pieces


def test_worked_example_is_the_errata_identity():
    ex = lab.worked_example()
    assert ex["kind"].startswith("identity")
    assert ex["max_abs_diff_to_errata_textbook"] <= lab.E40_TOLERANCE
    assert ex["max_abs_diff_to_errata_sklearn"] <= lab.E40_TOLERANCE
    assert ex["max_abs_diff_to_sklearn_vectorizer"] <= 1e-12
    assert ex["weight_of_words_in_every_document"] == 0.0
    assert ex["textbook"][0][2] == pytest.approx(2 * np.log(2), abs=1e-4)  # "cats": tf 2 x ln(2/1)


def test_shuffled_documents_keep_the_tokens_and_the_lengths():
    docs = [["a"] * 5 + ["b"] * 3, ["c"] * 4, ["d", "e"]]
    out = lab.shuffled_documents(docs, seed=0)
    assert [len(d) for d in out] == [8, 4, 2]
    assert Counter(t for d in out for t in d) == Counter(t for d in docs for t in d)
    assert out != docs and lab.shuffled_documents(docs, seed=0) == out  # shuffled, and seeded


def _topical(seed=0, n_docs=12, length=200):
    """Documents of common words plus a topic word of their own, spread over the whole document."""
    rng = np.random.default_rng(seed)
    common = [f"w{i}" for i in range(20)]
    docs = []
    for d in range(n_docs):
        tokens = list(rng.choice(common, length))
        for pos in rng.choice(length, 6, replace=False):  # fewer than a common word's ~9.7
            tokens[pos] = f"topic{d}"
        docs.append(tokens)
    return docs


def test_rarity_puts_document_words_first_for_tfidf_and_common_words_for_counts():
    r = lab.rarity(_topical(), top=1)
    per = r["per_document"]
    assert np.mean(per["df_tfidf"]) == pytest.approx(1 / 12)  # each document's own topic word, df 1 of 12
    assert np.mean(per["df_count"]) == 1.0  # a common word: in every document
    assert all(p["tfidf"] == [f"topic{i}"] for i, p in enumerate(r["picks"]))
    assert np.mean(per["rho_tfidf"]) > 0 > np.mean(per["rho_count"])


def test_held_out_lift_sees_recurring_topic_words_and_not_shuffled_ones():
    docs = _topical()
    lift = lab.held_out_lift(docs, top=1)
    assert lift["tfidf"].min() > 1 and lift["tfidf"].mean() > 2  # the first half's topic word recurs in the second, nowhere else
    assert abs(lift["count"].mean()) < 0.5  # a common word occurs at its usual rate
    shuffled = lab.held_out_lift(lab.shuffled_documents(docs, 0), top=1)
    assert shuffled["tfidf"].mean() < lift["tfidf"].mean() - 2


def test_c41_bad_documents_option_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="'texts' or 'shuffled'"):
        lab.run_c41(Context(tmp_path, quick=True), documents="random")


# ---------------------------------------------------------------- C41 judge


def _c41(df_iv, lift_iv, diff=0.0):
    ex = lab.worked_example() | {"max_abs_diff_to_errata_sklearn": diff}
    return {
        "data": "brown", "which": "texts", "documents": 500, "tokens": 10**6, "vocabulary": 50_000, "top": 10, "identity": ex,
        "rarity": {"count": {"mean_df_share": 0.92, "rare_and_frequent_share": 0.03},
                   "tfidf": {"mean_df_share": 0.05, "rare_and_frequent_share": 0.87},
                   "sklearn": {"mean_df_share": 0.5, "in_every_document_share": 0.49},
                   "tfidf_minus_count_df_share": df_iv, "spearman_idf_count": -0.4, "spearman_idf_tfidf": 0.8},
        "held_out": {"count": 0.2, "tfidf": 4.0, "tfidf_minus_count": lift_iv},
    }  # fmt: skip


def test_judge_c41():
    rare, specific = _iv(-0.86, -0.87, -0.85), _iv(3.9, 3.7, 4.0)
    verdict, reason = lab.judge_c41(_c41(rare, specific))
    assert verdict == "holds" and "ERRATA E40" in reason and "+3.90" in reason
    # shuffled documents: still rare, no longer recurring (the opposite evidence)
    verdict, reason = lab.judge_c41(_c41(rare, _iv(-0.06, -0.2, 0.1)))
    assert verdict == "does not hold" and "not document-specific" in reason and "recur less" not in reason
    verdict, reason = lab.judge_c41(_c41(rare, _iv(-1.0, -1.2, -0.8)))
    assert verdict == "does not hold" and "recur less" in reason
    verdict, reason = lab.judge_c41(_c41(_iv(0.01, -0.01, 0.03), specific))
    assert verdict == "does not hold" and "not rarer" in reason
    verdict, reason = lab.judge_c41(_c41(rare, specific, diff=0.01))  # a worked example off by 0.01
    assert verdict == "does not hold" and "does not reproduce ERRATA E40" in reason


# ---------------------------------------------------------------- C57 pieces


def test_pick_words_alternates_frequency_ranks_and_refuses_too_few():
    counts = Counter({"man": 50, "dog": 40, "house": 30, "car": 20, "city": 10, "saw": 9, "found": 8, "told": 7})
    a, b, verbs = lab.pick_words(counts, 2, 2)
    assert (a, b, verbs) == (["man", "house"], ["dog", "car"], ["saw", "found"])
    with pytest.raises(DataError, match="needs 6 and 2"):
        lab.pick_words(counts, 3, 2)


@pytest.mark.parametrize("task", lab.TASKS)
def test_order_task_holds_both_orders_of_every_triple_and_holds_out_whole_triples(task):
    a, b, v = ["man", "king"], ["dog", "cat"], ["saw", "found", "told", "met"]
    train_x, train_y, test_x, test_y = lab.order_task(a, b, v, task, seed=0)
    assert len(train_x) + len(test_x) == 2 * 2 * 2 * 4
    triples = lambda xs: {(frozenset((x[1], x[4])), x[2]) for x in xs}  # noqa: E731
    assert not triples(train_x) & triples(test_x)  # no triple in both: held out in both orders
    rows = bag_of_words(test_x).matrix.toarray()
    for i in range(0, len(test_x), 2):  # the two orders: one bag, both labels (order) or one label (content)
        assert test_x[i][1] == test_x[i + 1][4] and (rows[i] == rows[i + 1]).all()
        assert (test_y[i] != test_y[i + 1]) == (task == "order")
    assert np.concatenate([train_y, test_y]).mean() == 0.5


def test_order_task_bad_name():
    with pytest.raises(UserError, match="'order'"):
        lab.order_task(["a"], ["b"], ["v"], "syntax", seed=0)


def test_permutation_identity():
    out = lab.permutation_identity([["the", "dog", "bites", "the", "man"], ["go", "go"], ["hello"]], seed=0)
    assert out["bow_equal"] == out["sentences"] == 3 and out["dog_bites_man_equal"]
    assert out["order_changed"] <= 1  # "go go" and "hello" cannot change


def test_bag_of_words_classifier_is_at_chance_on_the_order_task():
    train_x, train_y, test_x, test_y = lab.order_task(["man", "king"], ["dog", "cat"], ["saw", "found", "told", "met"], "order", 1)
    vocab = sorted({w for x in train_x + test_x for w in x})
    right = lab._bow_classifier(train_x, train_y, test_x, vocab, 0) == test_y
    assert right.mean() == 0.5  # each held-out bag comes once with each label


# ---------------------------------------------------------------- C57 judge


def _c57(bow_iv, gap_iv, equal=100):
    return {
        "data": "brown", "task": "order", "task_rule": "agent from group A",
        "identity": {"sentences": 100, "bow_equal": equal, "order_changed": 90, "dog_bites_man_equal": True},
        "group_a": ["man"], "group_b": ["dog"], "verbs": ["saw"], "train_sentences": 10, "test_sentences": 4, "seeds": [0, 1, 2],
        "bow": {"mean": 0.5 + bow_iv["mean"]}, "lstm": {"mean": 0.5 + bow_iv["mean"] + gap_iv["mean"]},
        "bow_minus_chance": bow_iv, "lstm_minus_bow": gap_iv,
    }  # fmt: skip


def test_judge_c57():
    chance = _iv(0.0, 0.0, 0.0, "seeds")
    verdict, reason = lab.judge_c57(_c57(chance, _iv(0.5, 0.45, 0.55, "seeds")))
    assert verdict == "holds" and "LSTM - BoW +50.0%" in reason
    # the content task: the bag of words reads the label (the opposite evidence)
    verdict, reason = lab.judge_c57(_c57(_iv(0.5, 0.5, 0.5, "seeds"), _iv(0.0, 0.0, 0.0, "seeds")))
    assert verdict == "does not hold" and "above chance" in reason and "the LSTM is no better" in reason
    verdict, reason = lab.judge_c57(_c57(chance, _iv(0.02, -0.05, 0.09, "seeds")))
    assert verdict == "holds with a correction" and "did not either" in reason
    verdict, _ = lab.judge_c57(_c57(_iv(0.03, -0.01, 0.07, "seeds"), _iv(0.4, 0.3, 0.5, "seeds")))
    assert verdict == "holds"  # within the interval of chance
    verdict, reason = lab.judge_c57(_c57(chance, _iv(0.5, 0.45, 0.55, "seeds"), equal=99))
    assert verdict == "does not hold" and "another bag of words" in reason
