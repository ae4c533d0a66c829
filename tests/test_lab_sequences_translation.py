"""Lab C38 (attention in seq2seq by source length): the made-up language, the buckets and the judge
on hand-made numbers (tests/test_lab.py runs the quick run and its opposite evidence)."""

from deepnotes.lab.sequences import translation as lab


def test_made_up_pairs_translate_word_for_word_and_are_seeded():
    pairs = lab.made_up_pairs(50, 3, words=5, shortest=2, longest=6)
    assert pairs == lab.made_up_pairs(50, 3, words=5, shortest=2, longest=6) != lab.made_up_pairs(50, 4, words=5, shortest=2, longest=6)
    assert all(2 <= len(s) <= 6 and t == ["f" + w[1:] for w in s] for s, t in pairs)
    assert {w for s, _ in pairs for w in s} == {f"e{i}" for i in range(5)}


def test_buckets_cover_every_length_once():
    for longest in (3, 12, 14, 20):
        b = lab.buckets_for(longest)
        covered = [n for lo, hi in b for n in range(lo, hi + 1)]
        assert covered == list(range(1, max(longest, lab.LONG) + 1))
    assert lab.buckets_for(20) == [(1, 5), (6, 10), (11, 15), (16, 20)]


def _numbers(low, diff, fixed_short=20.0, fixed_long=5.0, data="gettext-fr-en"):
    return {"data": data, "train_pairs": 1000, "epochs": 2, "seed": 0,
            "by_bucket": [{"shortest": 1, "longest": 5, "sentences": 10, "fixed": fixed_short, "attention": 30.0},
                          {"shortest": 11, "longest": 15, "sentences": 10, "fixed": fixed_long, "attention": 5.0 + diff}],
            "long_difference": {"difference": diff, "low": low, "high": diff + 2, "samples": 100}}  # fmt: skip


def test_judge_by_hand():
    verdict, reason = lab.judge_c38(_numbers(1.0, 6.0))
    assert verdict == "holds" and "goal of >= 5 points on the long ones is met" in reason and "falls" in reason
    verdict, reason = lab.judge_c38(_numbers(0.5, 3.0, fixed_long=25.0))
    assert verdict == "holds" and "is missed" in reason and "does not fall" in reason
    assert lab.judge_c38(_numbers(0.0, 3.0))[0] == "does not hold"  # the interval reaches 0
    assert lab.judge_c38(_numbers(-4.0, -1.0))[0] == "does not hold"
    assert "goal" not in lab.judge_c38(_numbers(1.0, 6.0, data="made-up"))[1]  # the goal is the real pairs'
