"""English->French pairs (deepnotes.data.pairs): gettext catalogues the test writes in the real .mo
format, every cleaning rule, the split, the errors, the Tatoeba download path; and the machine's
own catalogues when it has them."""

import hashlib
import io
import random
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from fakes import HEADER, no_network, write_mo

from deepnotes.data import DATASETS, load_dataset, pairs, sources
from deepnotes.data.pairs import SentencePairs, check_pairs, load_gettext_fr_en, load_tatoeba_fr_en, split_pairs
from deepnotes.errors import DataError

SYSTEM_LOCALE = Path("/usr/share/locale/fr/LC_MESSAGES")
PANGRAM = ("Dès Noël où un zéphyr haï me vêt de glaçons würmiens je dîne d'exquis rôtis de bœuf "
           "au kir à l'aÿ d'âge mûr & cætera ! 0123456789.")
CATALOGUE_A = {
    "": HEADER,
    "Open the file": "Ouvrir le fichier",
    "Password:": "Mot de passe\u00a0:",  # NBSP before ":"
    "The man\u2019s hat": "Le chapeau de l\u2019homme",  # curly apostrophes
    "Done.\n": "Terminé.\n",  # a trailing newline is stripped, not a second line
    "menu\x04Quit": "Quitter",  # a message context is dropped
    ("%d file", "%d files"): ["%d fichier", "%d fichiers"],  # plural forms: dropped
    "Line one\nline two": "Ligne un\nligne deux",  # multi-line
    "Name\tValue": "Nom\tValeur",  # a tab
    "Untranslated thing": "",  # empty translation
    "<b>Bold</b> text": "<b>Gras</b> texte",  # markup
    "Tom &amp; Jerry": "Tom &amp; Jerry le chat",  # an entity
    "Search & Replace": "Rechercher et remplacer",  # "&" before a space is not an accelerator: kept
    "%s not found": "%s introuvable",  # printf
    "Deleted %(count)s items": "%(count)s éléments supprimés",  # Python's named printf
    "Hello {name}": "Bonjour {name}",  # braces
    "Value {0}": "Valeur {0}",
    "%1 is ready": "%1 est prêt",  # Qt
    "Progress is complete": "Progression\u202f: 100\u00a0% terminée",  # "100 %" is not a specifier: kept
    "_File": "_Fichier",  # GTK mnemonic
    "&Edit": "&Édition",  # Qt mnemonic
    "Bad pg_lsn value": "Valeur pg_lsn invalide",  # an identifier
    "Phrae": "Phrae",  # untranslated
    "Cubeo": "cubeo",  # untranslated, ignoring case
    " ".join(["word"] * 31): " ".join(["mot"] * 31),  # 31 English words
    "abcdefghijk ABCDEFGHIJK": PANGRAM,  # misaligned: 2 words -> 27
    "Usage:": "Usage :",
    "block device": "périphérique de blocs",
}
CATALOGUE_B = {
    "": HEADER,
    "Usage:": "Usage\u00a0:",  # the same pair as in a.mo once normalized: now 2 of them
    "usage:": "utilisation :",  # the same English ignoring case, 1 of them: loses
    "block device": "volume bloc",  # 1 against 1: the shorter French wins (though alphabetically later)
    "Open the file": "Ouvrir le fichier",
}
EXPECTED = [
    ("block device", "volume bloc"),
    ("Done.", "Terminé."),
    ("Open the file", "Ouvrir le fichier"),
    ("Password:", "Mot de passe :"),
    ("Progress is complete", "Progression : 100 % terminée"),
    ("Quit", "Quitter"),
    ("Search & Replace", "Rechercher et remplacer"),
    ("The man's hat", "Le chapeau de l'homme"),
    ("Usage:", "Usage :"),
]
STEPS = [  # counted by hand from the two catalogues above
    ("entries in 2 catalogues", 29 + 5),  # a.mo: header + 2 plural forms + 26; b.mo: header + 4
    ("messages", 26 + 4),
    ("single line", 27),  # - "Line one", "Name\tValue", "Untranslated thing"
    ("no markup", 25),  # - <b>, &amp;
    ("no format specifiers", 20),  # - %s, %(count)s, {name}, {0}, %1
    ("no accelerators or identifiers", 17),  # - _File, &Edit, pg_lsn
    ("translated", 15),  # - Phrae, Cubeo
    ("1-30 English words", 14),  # - 31 words
    ("aligned", 13),  # - the pangram
    ("unique English", 9),
]


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No $DEEPNOTES_DATA, the cache inside tmp_path, the system folder missing, no network."""
    monkeypatch.delenv(sources.TATOEBA_SHA256_VAR, raising=False)
    return no_network(monkeypatch, tmp_path, {"gettext-fr-en": (tmp_path / "no-locale",)})


def catalogues(folder: Path) -> Path:
    write_mo(folder / "a.mo", CATALOGUE_A)
    write_mo(folder / "b.mo", CATALOGUE_B)
    (folder / "c.mo").write_bytes(b"not a catalogue at all")  # unreadable: skipped and reported
    (folder / "notes.txt").write_text("not a .mo file")
    return folder


# --------------------------------------------------------------------------- the .mo writer


def test_mo_writer_is_read_by_gettext(tmp_path):
    import gettext

    path = write_mo(tmp_path / "x.mo", {"": HEADER, "Hello": "Bonjour", "ctx\x04Open": "Ouvrir", ("a", "as"): ["un", "des"]})
    with open(path, "rb") as f:
        t = gettext.GNUTranslations(f)
    assert t.gettext("Hello") == "Bonjour" and t.pgettext("ctx", "Open") == "Ouvrir"
    assert t.ngettext("a", "as", 1) == "un" and t.ngettext("a", "as", 5) == "des"


@pytest.mark.skipif(shutil.which("msgunfmt") is None, reason="GNU gettext's msgunfmt is not installed")
def test_mo_writer_is_read_by_gnu_msgunfmt(tmp_path):
    path = write_mo(tmp_path / "x.mo", {"": HEADER, "Hello": "Bonjour", ("a", "as"): ["un", "des"]})
    po = subprocess.run(["msgunfmt", str(path)], capture_output=True, text=True, check=True).stdout
    assert 'msgid "Hello"\nmsgstr "Bonjour"' in po
    assert 'msgid "a"\nmsgid_plural "as"\nmsgstr[0] "un"\nmsgstr[1] "des"' in po


# --------------------------------------------------------------------------- the pipeline


def test_every_cleaning_rule(tmp_path):
    data = load_gettext_fr_en(catalogues(tmp_path / "mo"), fractions=(0.4, 0.3, 0.3))
    assert sorted(data.train + data.valid + data.test, key=lambda p: p[0].casefold()) == EXPECTED
    assert all(split for split in data.splits().values())
    assert [(what.split(" (")[0], n) for what, n in data.steps][:1] == [("entries in 2 catalogues", 34)]
    assert data.steps[0][0] == "entries in 2 catalogues (unreadable, skipped: c.mo (Bad magic number))"
    assert len(data.steps) == len(STEPS)
    for (what, n), (start, expected) in zip(data.steps, STEPS):
        assert what.startswith(start) and n == expected, (what, n)
    assert data.source == str(tmp_path / "mo") and data.name == "gettext-fr-en" and data.seed == 0
    text = data.describe()
    assert "9  unique English sentences (ignoring case)" in text and f"train {len(data.train)} / valid" in text


def test_data_dir_may_hold_a_gettext_fr_en_folder_and_environment_roots(tmp_path, monkeypatch):
    catalogues(tmp_path / "root" / "gettext-fr-en")
    kw = dict(fractions=(0.4, 0.3, 0.3))
    assert len(load_gettext_fr_en(tmp_path / "root", **kw)) == 9
    monkeypatch.setenv("DEEPNOTES_DATA", str(tmp_path / "root"))
    assert load_gettext_fr_en(**kw).source == str(tmp_path / "root" / "gettext-fr-en")


def test_missing_catalogues_say_what_was_tried_and_how_to_get_them(tmp_path):
    with pytest.raises(DataError) as e:
        load_gettext_fr_en()
    msg = str(e.value)
    assert "no French gettext catalogues (*.mo) found" in msg and f"{tmp_path / 'no-locale'} (system copy): no such folder" in msg
    assert "$DEEPNOTES_DATA: not set" in msg and "apt-get install" in msg and "--data tatoeba-fr-en" in msg and "\n" not in msg
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"the data folder .*empty holds no gettext catalogues \(\*\.mo files\)"):
        load_gettext_fr_en(tmp_path / "empty")


def test_only_unreadable_catalogues_is_an_error(tmp_path):
    (tmp_path / "x.mo").write_bytes(b"\x00" * 40)
    with pytest.raises(DataError, match=r"none of its 1 \.mo files is a readable gettext catalogue, e.g. x.mo"):
        load_gettext_fr_en(tmp_path)


def test_the_split_is_by_english_sentence_deterministic_and_stable():
    rng = random.Random(0)
    sentences = [f"Sentence number {i} of {rng.randint(0, 99)}" for i in range(3000)]
    items = [(s, f"Phrase {i}") for i, s in enumerate(sentences)]
    items += [(s.upper(), "EN MAJUSCULES") for s in sentences[:300]]  # the same English, another case
    train, valid, test = split_pairs(items)
    english = [{p[0].casefold() for p in split} for split in (train, valid, test)]
    assert not (english[0] & english[1] or english[0] & english[2] or english[1] & english[2])
    assert len(train) + len(valid) + len(test) == len(items)
    assert 0.04 < len(test) / len(items) < 0.06 and 0.04 < len(valid) / len(items) < 0.06
    shuffled = items[:]
    rng.shuffle(shuffled)
    assert [sorted(s) for s in split_pairs(shuffled)] == [sorted(s) for s in (train, valid, test)]  # order-free
    # stable: dropping half the sentences moves none of the others
    half = split_pairs(items[::2])
    assert all(set(h) <= set(s) for h, s in zip(half, (train, valid, test)))
    assert set(split_pairs(items, seed=1)[2]) != set(test)  # the seed matters
    with pytest.raises(ValueError, match="summing to 1"):
        split_pairs(items, fractions=(0.9, 0.1, 0.1))


def test_check_pairs(tmp_path):
    good = SentencePairs("p", [("a", "b")], [("c", "d")], [("e", "f")], "here")
    assert check_pairs(good) is good
    for bad, message in [
        (SentencePairs("p", [("a", "b")], [], [("e", "f")], "here"), "here: p has no valid pairs"),
        (SentencePairs("p", [("a", "")], [("c", "d")], [("e", "f")], "here"), "train pair 0 is ('a', '')"),
        (SentencePairs("p", [("a", "b", "c")], [("c", "d")], [("e", "f")], "here"), "train pair 0"),
        (SentencePairs("p", [("a", "b")], [("A", "d")], [("e", "f")], "here"), "'A' is in both train and valid"),
    ]:
        with pytest.raises(DataError, match=re.escape(message)):
            check_pairs(bad)


def test_select_by_length_and_letters():
    train = [("one two three", "un deux trois"), ("one", "un"), ("Run --quiet now", "Lancer --quiet")]
    test = [("x-ray shot here", "radio-graphie ici !")]
    data = SentencePairs("p", train, [("a b c d", "a (b) c d")], test, "here", [("stored", 5)])
    short = data.select(1, 2)
    assert short.train == [("one", "un")] and short.valid == [] and short.steps[-1] == ("1-2 English words", 1)
    strict = data.select(3, 15, letters_only=True)
    assert strict.train == [("one two three", "un deux trois")] and strict.valid == []  # "--quiet", "(b)" out
    assert strict.test == [("x-ray shot here", "radio-graphie ici !")]  # hyphens between letters stay
    assert data.steps == [("stored", 5)]  # select returns a new SentencePairs


def test_registered_as_pairs():
    assert DATASETS.get("gettext-fr-en").kind == "pairs" and DATASETS.get("tatoeba-fr-en").kind == "pairs"
    assert DATASETS.get("gettext-fr-en").loader is load_gettext_fr_en


def test_load_dataset_checks_pairs(tmp_path):
    many = {"": HEADER, **{f"Item {i} is open": f"L'élément {i} est ouvert" for i in range(300)}}
    write_mo(tmp_path / "gettext-fr-en" / "items.mo", many)
    data = load_dataset("gettext-fr-en", data_dir=tmp_path)
    assert isinstance(data, SentencePairs) and len(data) == 300


# --------------------------------------------------------------------------- Tatoeba (download path)

TATOEBA_LINES = "Go.\tVa !\nRun!\tCours\u202f!\nI'm cold.\tJ\u2019ai froid.\nI'm cold.\tJ'ai froid.\nbroken line\n" + "".join(
    f"Sentence {i} is here.\tLa phrase {i} est ici.\n" for i in range(60)
)


def tatoeba_zip(text: str = TATOEBA_LINES) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("data/eng-fra.txt", text)
        z.writestr("data/names/French.txt", "Martin\n")
    return buf.getvalue()


def serve(monkeypatch, files: dict[str, bytes]):
    calls = []

    def fake(url, timeout=None):
        calls.append(url)
        return io.BytesIO(files[url])

    monkeypatch.setattr(sources, "urlopen", fake)
    return calls


def test_tatoeba_downloads_only_with_a_sha256_then_verifies_and_unpacks(tmp_path, monkeypatch, offline):
    with pytest.raises(DataError) as e:
        load_tatoeba_fr_en()
    msg = str(e.value)
    assert offline == []  # nothing to verify a download against: not attempted
    assert f"download: not attempted, there is no SHA-256 to verify {sources.TATOEBA_FR_EN_URL} against" in msg
    assert "DEEPNOTES_TATOEBA_SHA256" in msg and "unzip" in msg

    body = tatoeba_zip()
    calls = serve(monkeypatch, {sources.TATOEBA_FR_EN_URL: body})
    monkeypatch.setenv(sources.TATOEBA_SHA256_VAR, "0" * 64)
    with pytest.raises(DataError, match=r"SHA-256 is [0-9a-f]{64}, expected 0{64}; not saved"):
        load_tatoeba_fr_en()
    cache = tmp_path / "xdg-cache" / "deepnotes" / "tatoeba-fr-en"
    assert not (cache / "data.zip").exists()

    monkeypatch.setenv(sources.TATOEBA_SHA256_VAR, hashlib.sha256(body).hexdigest().upper())
    data = load_tatoeba_fr_en()
    assert calls == [sources.TATOEBA_FR_EN_URL] * 2 and (cache / "data.zip").is_file() and (cache / "eng-fra.txt").is_file()
    everything = dict(data.train + data.valid + data.test)
    assert len(everything) == 63 and everything["I'm cold."] == "J'ai froid." and everything["Run!"] == "Cours !"
    assert data.steps[:2] == [("non-empty lines in eng-fra.txt", 65), ("English<TAB>French lines", 64)]
    assert data.source == str(cache / "eng-fra.txt") and data.name == "tatoeba-fr-en"
    load_tatoeba_fr_en()  # from the cache now
    assert len(calls) == 2

    monkeypatch.setenv(sources.TATOEBA_SHA256_VAR, "not-a-hash")
    with pytest.raises(DataError, match="must be a SHA-256: 64 hexadecimal digits"):
        load_tatoeba_fr_en()


def test_tatoeba_from_an_unzipped_folder_without_download(tmp_path, offline):
    with zipfile.ZipFile(io.BytesIO(tatoeba_zip())) as z:
        z.extractall(tmp_path / "tutorial")
    data = load_tatoeba_fr_en(tmp_path / "tutorial", download=False)  # the folder holding data/eng-fra.txt
    assert len(data) == 63 and offline == []
    with pytest.raises(DataError, match="does not hold the tatoeba-fr-en files"):
        load_tatoeba_fr_en(tmp_path / "nowhere")


def test_tatoeba_bad_files(tmp_path):
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(DataError, match="bad.zip: not a readable zip archive"):
        pairs.extract_eng_fra(tmp_path / "bad.zip", tmp_path / "out.txt")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("data/other.txt", "x")
    (tmp_path / "other.zip").write_bytes(buf.getvalue())
    with pytest.raises(DataError, match="holds no data/eng-fra.txt"):
        pairs.extract_eng_fra(tmp_path / "other.zip", tmp_path / "out.txt")
    assert not (tmp_path / "out.txt").exists()
    (tmp_path / "latin1").mkdir()
    (tmp_path / "latin1" / "eng-fra.txt").write_bytes("Go.\tVa !\nYes.\tOui, très\n".encode("latin-1"))
    with pytest.raises(DataError, match="eng-fra.txt: not UTF-8 text"):
        load_tatoeba_fr_en(tmp_path / "latin1")
    (tmp_path / "notabs").mkdir()
    (tmp_path / "notabs" / "eng-fra.txt").write_text("no tabs here\n")
    with pytest.raises(DataError, match="no English<TAB>French lines among its 1 lines"):
        load_tatoeba_fr_en(tmp_path / "notabs")


# --------------------------------------------------------------------------- this machine's catalogues


@pytest.mark.skipif(not any(SYSTEM_LOCALE.glob("*.mo")), reason="no French gettext catalogues on this machine")
def test_the_machines_catalogues(monkeypatch):
    monkeypatch.setattr(sources, "SYSTEM_DIRS", {"gettext-fr-en": (SYSTEM_LOCALE,)})
    data = load_gettext_fr_en()
    steps = dict(data.steps)
    # Debian 12 with this project's packages: 77,684 messages, 28,840 pairs (see the module docstring);
    # other package sets give other numbers, in these ranges
    assert 20_000 < steps["messages (no header, no plural forms)"] < 200_000
    assert 10_000 < len(data) < 100_000
    for split, share in (("valid", 0.05), ("test", 0.05), ("train", 0.90)):
        assert abs(len(data.splits()[split]) / len(data) - share) < 0.01
    everything = data.train + data.valid + data.test
    assert not any("\u00a0" in f or "\u202f" in f or "\u2019" in f or "%s" in e for e, f in everything)
    assert 10_000 < len(data.select(3, 15, letters_only=True)) < len(data.select(3, 15)) < len(data)
