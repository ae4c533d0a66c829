"""deepnotes.text: the translation tokenizer and the vocabulary (cases worked by hand)."""

import json

import pytest

from deepnotes.errors import DataError
from deepnotes.metrics.text import tokenize_13a
from deepnotes.text import EOS, PAD, SOS, SPECIALS, UNK, Vocabulary, detokenize, normalize, tokenize


def test_french_typography_and_elisions():
    # what the gettext catalogues hold: curly apostrophes, NBSP before ":" and "!", narrow NBSP inside « »
    assert tokenize("L’homme d’État, c’est-à-dire\u00a0: «\u202fOui\u202f» !") == [
        "l'", "homme", "d'", "état", ",", "c'", "est-à-dire", ":", "«", "oui", "»", "!",
    ]
    assert tokenize("Jusqu'à aujourd’hui, qu’il") == ["jusqu'", "à", "aujourd'", "hui", ",", "qu'", "il"]
    assert tokenize("L'homme") == tokenize("L’homme") == tokenize("Lʼhomme") == ["l'", "homme"]


def test_english_punctuation_numbers_and_contractions():
    assert tokenize("Don't stop: it's 3.5 km (1,000 files)…") == [
        "don'", "t", "stop", ":", "it'", "s", "3.5", "km", "(", "1,000", "files", ")", ".", ".", ".",
    ]
    assert tokenize("'Quoted' well-known e-mail, version 2.0.1.") == [
        "'", "quoted", "'", "well-known", "e-mail", ",", "version", "2.0.1", ".",
    ]
    assert tokenize("Go.") == ["go", "."] and tokenize("Hi!") == tokenize("hi !") == ["hi", "!"]
    assert tokenize("") == [] and tokenize(" \u00a0\t\n") == []


def test_normalize_keeps_case_and_collapses_spaces():
    assert normalize("  Mot\u00a0de\u202fpasse\u2009:\t“ok”\u200b…  ") == 'Mot de passe : "ok"...'
    assert normalize("e\u0301t\u00e9") == "\u00e9t\u00e9"  # NFC: a decomposed é equals the composed one


def test_detokenize_joins_elisions_and_agrees_with_13a():
    s = "L’homme d’État, c’est-à-dire\u00a0: oui\u00a0!"
    assert detokenize(tokenize(s)) == "l'homme d'état , c'est-à-dire : oui !"
    assert detokenize(["'", "quoted", "'"]) == "' quoted '"  # a lone apostrophe is a quote, not an elision
    # what BLEU's 13a tokenization sees is the same for the text and its detokenized tokens
    for text in ["l'homme d'état, c'est-à-dire : oui !", "it's 3.5 km (1,000 files).", "a-b: « c »"]:
        assert tokenize_13a(detokenize(tokenize(text))) == tokenize_13a(text)
    assert tokenize_13a("«c»") == ["«c»"]  # 13a splits ASCII punctuation only; French puts spaces inside « »


def _vocab():
    sentences = [["le", "chat", "."], ["le", "chien", "."], ["un", "chat", "!"], ["le", "<unk>"]]
    return Vocabulary.build(sentences, min_count=1)


def test_vocabulary_order_and_ids():
    v = _vocab()
    # counts: le 3; chat 2, . 2; chien 1, un 1, ! 1 -> by count, then code point ("!" < "." < "chat" < ...)
    assert v.itos == [*SPECIALS, "le", ".", "chat", "!", "chien", "un"]
    assert (PAD, SOS, EOS, UNK) == (0, 1, 2, 3) and v.id("<pad>") == 0 and v.id("<unk>") == 3
    assert v.counts == [3, 2, 2, 1, 1, 1] and len(v) == 10 and "chat" in v and "<unk>" in v and "lapin" not in v
    assert v.encode(["le", "lapin", "."]) == [4, UNK, 5, EOS]
    assert v.encode(["le"], sos=True, eos=False) == [SOS, 4]
    assert v.decode([SOS, 4, 3, 6, EOS, 7, PAD]) == ["le", "<unk>", "chat"]
    assert v.decode([4, EOS, 8], stop_at_eos=False) == ["le", "chien"]
    with pytest.raises(IndexError, match="id 10 is outside"):
        v.decode([10])


def test_min_count_and_max_size():
    sentences = [["a"] * 3 + ["b"] * 2 + ["c", "d"]]
    assert Vocabulary.build(sentences, min_count=2).itos[4:] == ["a", "b"]
    assert Vocabulary.build(sentences, max_size=6).itos[4:] == ["a", "b"]  # 6 entries, the specials included
    assert Vocabulary.build(sentences, max_size=4).itos == list(SPECIALS)
    with pytest.raises(ValueError, match="min_count"):
        Vocabulary.build(sentences, min_count=0)
    with pytest.raises(ValueError, match="max_size"):
        Vocabulary.build(sentences, max_size=3)


def test_json_round_trip(tmp_path):
    v = Vocabulary.build([["é", "l'", "é"]], min_count=1, max_size=100)
    path = v.save(tmp_path / "vocab.json")
    d = json.loads(path.read_text(encoding="utf-8"))
    assert d == {
        "format": "deepnotes.vocabulary", "version": 1, "tokenizer": "words-1", "specials": list(SPECIALS),
        "min_count": 1, "max_size": 100, "tokens": ["é", "l'"], "counts": [2, 1],
    }
    assert "é" in path.read_text(encoding="utf-8")  # readable UTF-8, not \u escapes
    w = Vocabulary.load(path)
    assert w == v and w.itos == v.itos and w.encode(["l'", "é"]) == v.encode(["l'", "é"])
    assert Vocabulary.from_dict(json.loads(json.dumps(v.to_dict()))).itos == v.itos  # inside another JSON file
    assert Vocabulary.from_json(v.to_json()) == v and v != Vocabulary.build([["é"]])


@pytest.mark.parametrize("text, message", [
    ("{", "not valid JSON"),
    ('{"format": "other"}', "not a deepnotes vocabulary"),
    ('{"format": "deepnotes.vocabulary", "version": 2}', "version 2"),
    ('{"format": "deepnotes.vocabulary", "version": 1, "specials": ["<unk>"]}', "the specials are"),
    ('{"format": "deepnotes.vocabulary", "version": 1, "specials": ["<pad>", "<sos>", "<eos>", "<unk>"],'
     ' "tokens": ["a", 1], "counts": [1, 1]}', "non-empty strings"),
    ('{"format": "deepnotes.vocabulary", "version": 1, "specials": ["<pad>", "<sos>", "<eos>", "<unk>"],'
     ' "tokens": ["a", "b"], "counts": [1]}', "2 counts"),
    ('{"format": "deepnotes.vocabulary", "version": 1, "specials": ["<pad>", "<sos>", "<eos>", "<unk>"],'
     ' "tokens": ["a", "a"], "counts": [1, 1]}', "listed twice"),
    ('{"format": "deepnotes.vocabulary", "version": 1, "specials": ["<pad>", "<sos>", "<eos>", "<unk>"],'
     ' "tokens": ["<eos>"], "counts": [1]}', "reserved"),
])  # fmt: skip
def test_bad_vocabulary_files_are_one_data_error(tmp_path, text, message):
    path = tmp_path / "vocab.json"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as e:
        Vocabulary.load(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
