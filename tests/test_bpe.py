"""Byte-pair encoding (deepnotes.text.bpe) against the paper's worked example and a plain re-count
reference, encode/decode round trips, the JSON file and its errors; and the character vocabulary
(deepnotes.text.chars)."""

import collections
import json
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.errors import DataError
from deepnotes.text import BPE, EOW, CharVocab
from deepnotes.text.bpe import merge_pair
from deepnotes.text.vocab import EOS, PAD, SOS, UNK

PAPER_DICT = {"low": 5, "lower": 2, "newest": 6, "widest": 3}
# Equal counts go to the smallest pair (code-point order); the counts are the pairs' when merged.
OURS = [("e s", 9), ("es t", 9), ("est </w>", 9), ("l o", 7), ("lo w", 7), ("e w", 6), ("ew est</w>", 6),
        ("n ewest</w>", 6), ("low </w>", 5), ("d est</w>", 3), ("i dest</w>", 3), ("w idest</w>", 3),
        ("e r", 2), ("er </w>", 2), ("low er</w>", 2)]  # fmt: skip
# Algorithm 1 of Sennrich et al. (2016) run in Python >= 3.7 (ties: first pair met in dict order)
PAPER = ["e s", "es t", "est </w>", "l o", "lo w", "n e", "ne w", "new est</w>", "low </w>", "w i",
         "wi d", "wid est</w>", "low e", "lowe r", "lower </w>"]  # fmt: skip


def paper_algorithm(vocab: dict[str, int], num_merges: int) -> list[str]:
    """The paper's listing (Algorithm 1), as printed there: full re-count each merge, max(pairs, key=pairs.get)."""
    def get_stats(vocab):
        pairs = collections.defaultdict(int)
        for word, freq in vocab.items():
            symbols = word.split()
            for i in range(len(symbols) - 1):
                pairs[symbols[i], symbols[i + 1]] += freq
        return pairs

    def merge_vocab(pair, v_in):
        bigram = re.escape(" ".join(pair))
        p = re.compile(r"(?<!\S)" + bigram + r"(?!\S)")
        return {p.sub("".join(pair), word): freq for word, freq in v_in.items()}

    out = []
    for _ in range(num_merges):
        pairs = get_stats(vocab)
        if not pairs:
            break
        best = max(pairs, key=pairs.get)
        vocab = merge_vocab(best, vocab)
        out.append(" ".join(best))
    return out


def recount_reference(counts: dict[str, int], num_merges: int):
    """Plain BPE: count every pair again before each merge; ties to the smallest pair.
    Returns (merges, counts of the merged pairs, final segmentation of each word)."""
    words = {w: [*w, EOW] for w in counts}
    merges, merged_counts = [], []
    for _ in range(num_merges):
        pairs = collections.Counter()
        for w, syms in words.items():
            for p in zip(syms, syms[1:]):
                pairs[p] += counts[w]
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged_counts.append(pairs[best])
        words = {w: merge_pair(syms, *best) for w, syms in words.items()}
    return merges, merged_counts, words


def sequential_encode(bpe: BPE, word: str) -> list[str]:
    """Every merge, in learned order, applied everywhere in the word: what encode must equal."""
    symbols = [*word, EOW]
    for a, b in bpe.merges:
        symbols = merge_pair(symbols, a, b)
    return symbols


# --------------------------------------------------------------------------- the paper's example


def test_paper_example_merges_and_tie_rule():
    bpe = BPE.train(PAPER_DICT, num_merges=15)
    assert [(" ".join(m), n) for m, n in zip(bpe.merges, bpe.counts)] == OURS
    # the paper's own listing agrees up to the first tie it breaks differently (6th merge, count 6)
    paper = paper_algorithm({" ".join([*w, EOW]): n for w, n in PAPER_DICT.items()}, 15)
    assert paper == PAPER
    assert [" ".join(m) for m in bpe.merges[:5]] == PAPER[:5] and " ".join(bpe.merges[5]) != PAPER[5]
    # the tie rule does not depend on the order of the words
    assert BPE.train(dict(reversed(list(PAPER_DICT.items()))), 15) == bpe
    assert bpe.encode("lowest") == ["low", "est</w>"] and bpe.encode("newest") == ["newest</w>"]
    assert bpe.encode("lower") == ["lower</w>"] and bpe.encode("low") == ["low</w>"]
    # a word unseen in training: merges apply where they can; "x" stays a character
    assert bpe.encode("slower") == ["s", "lower</w>"] and bpe.encode("xest") == ["x", "est</w>"]


def test_stops_when_every_word_is_one_symbol_and_vocab_size():
    bpe = BPE.train({"ab": 3}, num_merges=10)
    assert bpe.merges == [("a", "b"), ("ab", "</w>")] and bpe.encode("ab") == ["ab</w>"]
    bpe = BPE.train(PAPER_DICT, vocab_size=4 + 1 + 10 + 3)  # specials, </w>, 10 characters, 3 merges
    assert len(bpe) == 18 and len(bpe.merges) == 3
    assert BPE.train(PAPER_DICT, num_merges=0).merges == []
    with pytest.raises(ValueError, match="at least 15"):
        BPE.train(PAPER_DICT, vocab_size=14)
    with pytest.raises(ValueError, match="one of them"):
        BPE.train(PAPER_DICT, 3, vocab_size=20)


def test_sentences_are_counted_like_a_dictionary():
    sentences = [["low", "low", "newest"], ["widest", "lower"]] * 3 + [["newest"] * 3, ["low"]]
    counted = collections.Counter(t for s in sentences for t in s)
    assert BPE.train(sentences, 12) == BPE.train(dict(counted), 12)


@pytest.mark.parametrize("bad", ["", "two words", "a</w>b", "tab\there"])
def test_bad_words(bad):
    with pytest.raises(ValueError, match="non-empty string without spaces"):
        BPE.train({bad: 1, "ok": 2}, 3)
    with pytest.raises(ValueError, match="non-empty string without spaces"):
        BPE.train(PAPER_DICT, 3).encode(bad)


# --------------------------------------------------------------------------- against the plain re-count

# small alphabets make ties, runs ("aaaa", where merges overlap) and shared pairs likely
words_st = st.dictionaries(st.text(alphabet="abcab", min_size=1, max_size=7), st.integers(1, 5), min_size=1, max_size=12)


@settings(max_examples=80, deadline=None)
@given(words_st, st.integers(0, 30))
def test_incremental_counts_equal_a_full_recount(counts, num_merges):
    bpe = BPE.train(counts, num_merges)
    merges, merged_counts, segmented = recount_reference(counts, num_merges)
    assert bpe.merges == merges and bpe.counts == merged_counts
    for w, syms in segmented.items():  # encode reproduces training's segmentation of its own words
        assert bpe.encode(w) == syms


@settings(max_examples=60, deadline=None)
@given(words_st, st.integers(0, 20), st.lists(st.text(alphabet="abcd", min_size=1, max_size=9), max_size=8))
def test_encode_applies_merges_in_learned_order(counts, num_merges, words):
    bpe = BPE.train(counts, num_merges)
    for w in words:
        assert bpe.encode(w) == sequential_encode(bpe, w)


def test_a_symbol_made_twice_keeps_the_learned_order():
    # "abb" is made by merge 1 and again by merge 4: one id, and encode still follows the list's order
    bpe = BPE("ab", [("a", "b"), ("ab", "b"), ("abb", "a"), ("b", "b"), ("a", "bb"), ("abb", "</w>")])
    assert bpe.itos.count("abb") == 1
    for w in ("abba", "abbb", "babb", "abbabb", "aabb", "bbabba"):
        assert bpe.encode(w) == sequential_encode(bpe, w), w


# --------------------------------------------------------------------------- round trips

word_st = st.text(st.characters(blacklist_categories=("Zs", "Zl", "Zp", "Cc", "Cs")) | st.sampled_from("</w>"),
                  min_size=1, max_size=12).filter(lambda w: EOW not in w and not any(c.isspace() for c in w))  # fmt: skip


@pytest.fixture(scope="module")
def trained():
    text = "the lower newest widest slowest low <w/> a</w b/w> wider".split() * 3 + ["élan", "naïve", "日本語"]
    return BPE.train(text, 40)


@settings(max_examples=150, deadline=None)
@given(st.lists(word_st, min_size=1, max_size=5))
def test_encode_decode_round_trip(trained, words):
    for w in words:
        symbols = trained.encode(w)
        assert symbols[-1].endswith(EOW) and "".join(symbols) == w + EOW
        assert trained.decode(symbols) == w
        ids = trained.encode_ids(w)
        if all(c in trained.alphabet for c in w):  # a character unseen in training would be UNK
            assert trained.decode(ids) == w
    assert trained.decode([s for w in words for s in trained.encode(w)]) == " ".join(words)


def test_ids_specials_and_unknown_characters(trained):
    ids = trained.encode_ids("lowest")
    assert all(i > UNK for i in ids)
    assert trained.decode([SOS, *ids, EOS, *trained.encode_ids("wider")]) == "lowest"  # stops at EOS
    assert trained.decode([PAD, *ids, PAD]) == "lowest"
    assert trained.encode_ids("q") == [UNK, trained.stoi[EOW]]  # "q" was never seen
    assert trained.decode(trained.encode_ids("q")) == "<unk>"
    with pytest.raises(IndexError, match="outside the BPE table"):
        trained.decode([len(trained)])
    assert trained.itos[:5] == ["<pad>", "<sos>", "<eos>", "<unk>", EOW] and len(set(trained.itos)) == len(trained)


# --------------------------------------------------------------------------- JSON


def test_save_load_round_trip(tmp_path, trained):
    path = trained.save(tmp_path / "bpe.json")
    d = json.loads(path.read_text(encoding="utf-8"))
    assert d["format"] == "deepnotes.bpe" and d["version"] == 1 and d["end_of_word"] == EOW
    loaded = BPE.load(path)
    assert loaded == trained and loaded.itos == trained.itos
    assert [loaded.encode(w) for w in ("lowest", "日本語", "zzz")] == [trained.encode(w) for w in ("lowest", "日本語", "zzz")]
    assert BPE.from_dict(trained.to_dict()) == trained


def _good() -> dict:
    return BPE.train(PAPER_DICT, 5).to_dict()


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(format="deepnotes.vocabulary"), "not a deepnotes BPE"),
    (lambda d: d.update(version=2), "version 2"),
    (lambda d: d.update(end_of_word="@@"), "end_of_word"),
    (lambda d: d["alphabet"].append("e"), "distinct single characters"),
    (lambda d: d["alphabet"].append("ab"), "distinct single characters"),
    (lambda d: (d["merges"].append(["x", "y"]), d["counts"].append(1)), "neither in the alphabet nor made by an earlier merge"),
    (lambda d: (d["merges"].insert(0, ["es", "t"]), d["counts"].append(1)), "neither in the alphabet nor made by an earlier merge"),
    (lambda d: (d["merges"].append(["est</w>", "l"]), d["counts"].append(1)), "nothing follows the end of a word"),
    (lambda d: (d["merges"].append(["e"]), d["counts"].append(1)), "pairs of non-empty strings"),
    (lambda d: d["counts"].pop(), "one per merge"),
    (lambda d: d.pop("merges"), "pairs of non-empty strings"),
])  # fmt: skip
def test_bad_bpe_files_are_one_data_error(tmp_path, change, message):
    d = _good()
    change(d)
    path = tmp_path / "bpe.json"
    path.write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(message)) as e:
        BPE.load(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_not_json_or_not_utf8(tmp_path):
    (tmp_path / "a.json").write_text("{merges", encoding="utf-8")
    with pytest.raises(DataError, match="not valid JSON"):
        BPE.load(tmp_path / "a.json")
    (tmp_path / "b.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(DataError, match="not UTF-8"):
        BPE.load(tmp_path / "b.json")


# --------------------------------------------------------------------------- characters


def test_char_vocab(tmp_path):
    text = "To be, or not to be:\nthat is the question.\u00e9"
    chars = CharVocab.build(text)
    assert chars.itos == sorted(set(text)) and len(chars) == len(set(text))
    assert chars.decode(chars.encode(text)) == text and chars.encode("\n") == [0]
    assert CharVocab.build(["ab", "ca"]).itos == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"'z' \(U\+007A\) at position 3"):
        chars.encode("Tobz")
    with pytest.raises(IndexError, match="outside"):
        chars.decode([len(chars)])
    assert CharVocab.load(chars.save(tmp_path / "chars.json")) == chars
    for bad, message in (({"format": "x"}, "not a deepnotes character vocabulary"),
                         ({"format": "deepnotes.chars", "version": 1, "chars": ["b", "a"]}, "code-point order"),
                         ({"format": "deepnotes.chars", "version": 1, "chars": ["ab"]}, "single characters"),
                         ({"format": "deepnotes.chars", "version": 9, "chars": []}, "version 9")):  # fmt: skip
        (tmp_path / "bad.json").write_text(json.dumps(bad), encoding="utf-8")
        with pytest.raises(DataError, match=re.escape(message)):
            CharVocab.load(tmp_path / "bad.json")


def test_importing_deepnotes_text_stays_cheap():
    code = "import sys, deepnotes.text; print(sorted(m for m in ('numpy', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
