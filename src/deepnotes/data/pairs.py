"""English->French sentence pairs (kind "pairs"): "gettext-fr-en" and "tatoeba-fr-en".

gettext-fr-en: the message catalogues Debian packages install, /usr/share/locale/fr/LC_MESSAGES/*.mo
(coreutils, git, apt, dpkg, libc, binutils, PostgreSQL, GTK, iso-codes, ...), read with the
standard library (gettext.GNUTranslations(f)._catalog: msgid -> msgstr). Technical UI text, and
some of it is not sentences at all (language and country names from iso-codes). The pipeline,
in order, with what remains after each step on this machine (Debian 12, 87 catalogues):

    78,227  entries in the catalogues
    77,684  messages: no header (the "" entry), no plural forms (they almost always hold a %d);
            a context ("ctx\\x04msgid") is dropped, the message kept
    74,608  single line: both sides non-empty after stripping outer whitespace (a trailing "\\n"
            is common), no newline, tab or other control character inside
    73,721  no markup: no <tag> and no &entity; on either side
    56,838  no format specifiers: no printf %s %d %-5lu %(name)s %1$s %%, no {0} {name} {}
    55,319  no accelerators or identifiers: no "_" (GTK mnemonics "_File", "rem_placer"; identifiers
            "pg_lsn", "LC_ALL") and no "&" before a letter (Qt/KDE "&File"). Dropped, not stripped:
            stripping would fuse identifiers ("max_connections") and a mnemonic can sit mid-word
    35,662  translated: French differs from English, ignoring case ("Phrae" -> "Phrae", "Cubeo" ->
            "cubeo" are not translations); compared after normalizing the typography (below)
    35,616  1-30 English words (the full cleaned set; a task selects what it trains on: select())
    35,605  aligned: neither side has more than 3 x the other's words + 2 (drops misaligned pairs
            such as the font preview "abcdefghijk ABCDEFGHIJK" -> a French pangram of 27 words,
            and a few very loose ones: "Getting provides" -> 9 words)
    28,840  unique English, ignoring case: when one English has several French translations (544
            do: "Usage:" -> "Usage :" or "Utilisation :"), the most frequent pair is kept, ties
            going to the shorter French, then to the alphabetically first
    26,071 / 1,372 / 1,397   train / valid / test

Typography, normalized on both sides (deepnotes.text.normalize, case kept): the non-breaking
spaces French puts before : ; ! ? and inside « » (U+00A0, U+202F) and all other space
characters become one plain space; curly apostrophes (l’homme) become '; “ ” become "; … ...
So a sentence reads the same however the catalogue typed it, and BLEU's references are plain.

DATA.md's survey counted the same 77,684 messages and 33,405 pairs after a lighter cleaning
(it kept "_" entries and compared and deduplicated case-sensitively), 19,221 of 3-15 English
words, 14,733 in a strict letters-and-punctuation subset. Here select(3, 15) keeps 20,870 and
select(3, 15, letters_only=True) 14,541 (5.7 English words on average). Print this machine's
numbers (they change with the packages installed):

    .venv/bin/python -c "from deepnotes.data.pairs import describe; print(describe())"

Split: by English sentence (ignoring case), never by pair, so no English sentence is in two
splits: a sentence goes to test when u < 0.05, to valid when u < 0.10, else to train, where u
in [0, 1) comes from SHA-256(seed, sentence). Deterministic on every machine and stable: a
sentence's split depends on itself and the seed only, so catalogues added or removed by a
Debian upgrade never move another sentence from test into train. The fractions are therefore
about, not exactly, 90/5/5.

tatoeba-fr-en: the Tatoeba pairs of the PyTorch seq2seq tutorial (data/eng-fra.txt in
https://download.pytorch.org/tutorial/data.zip: "English<TAB>French" lines), found or downloaded
through data/sources.py (see TATOEBA_FR_EN there about its SHA-256), then the same pipeline.
Tatoeba often gives several French sentences for one English one ("Go." -> "Va !", "Marche.",
"Bouge !"); the pipeline keeps one, as for gettext, so fewer pairs remain than the file's
135,842 lines.

Loaders return SentencePairs; check_pairs checks one (non-empty splits of (str, str) pairs, no
English sentence in two splits).
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

from deepnotes.data import sources
from deepnotes.errors import DataError
from deepnotes.fileio import write_bytes
from deepnotes.registry import register_dataset
from deepnotes.text.tokenize import normalize

SPLIT_SEED = 0
FRACTIONS = (0.90, 0.05, 0.05)  # train, valid, test
MIN_WORDS, MAX_WORDS = 1, 30  # English words (whitespace-separated) in the stored set
GETTEXT = "gettext-fr-en"
LOCALE_DIR = "/usr/share/locale/fr/LC_MESSAGES"  # where Debian puts them (sources.SYSTEM_DIRS)
TATOEBA = "tatoeba-fr-en"
MAX_TEXT_BYTES = 64 << 20  # eng-fra.txt is ~9 MB; a zip member claiming more is not it

MARKUP = re.compile(r"<[A-Za-z/!?][^<>]*>|&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#x[0-9A-Fa-f]+);")
# printf: %s %d %-5lu %.2f %(name)s %1$s %%; Qt's %1; "100 %" and "50%." are not specifiers
PRINTF = re.compile(r"%(?:\d+\$)?(?:\([^)]*\))?[-+#0'*.\d]*[A-Za-z%]|%\d")
BRACES = re.compile(r"\{[A-Za-z0-9_.]*(?:[:!][^{}]*)?\}")  # {0} {name} {} {0:>5} {x!r}
ACCELERATOR = re.compile(r"_|&(?=[^\W\d_])")
LETTERS_ONLY_PUNCT = set(" '-.,!?:;")
LOOSE_HYPHEN = re.compile(r"(?<![^\W\d_])-|-(?![^\W\d_])")  # a hyphen not between letters: "--quiet", "-q"

Pair = tuple[str, str]


@dataclass
class SentencePairs:
    """English->French pairs in three splits with no English sentence in two of them.

    `train`, `valid`, `test`: lists of (english, french); `source`: the folder or file read;
    `steps`: the pipeline as (what, how many remain) in order, from the raw entries to the
    stored pairs (and any select()); `seed`: the split's seed.
    """

    name: str
    train: list[Pair]
    valid: list[Pair]
    test: list[Pair]
    source: str
    steps: list[tuple[str, int]] = field(default_factory=list)
    seed: int = SPLIT_SEED
    languages: tuple[str, str] = ("en", "fr")

    def splits(self) -> dict[str, list[Pair]]:
        return {"train": self.train, "valid": self.valid, "test": self.test}

    def __len__(self) -> int:
        return len(self.train) + len(self.valid) + len(self.test)

    def __repr__(self) -> str:
        return (f"SentencePairs({self.name!r}, train={len(self.train)}, valid={len(self.valid)}, "
                f"test={len(self.test)}, source={self.source!r})")  # fmt: skip

    def describe(self) -> str:
        """The pipeline's counts, one step a line, and the split sizes."""
        lines = [f"{self.name} from {self.source}"]
        lines += [f"{n:>9,}  {what}" for what, n in self.steps]
        lines.append(f"train {len(self.train):,} / valid {len(self.valid):,} / test {len(self.test):,} "
                     f"(by English sentence, seed {self.seed})")  # fmt: skip
        return "\n".join(lines)

    def select(self, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS, letters_only: bool = False) -> "SentencePairs":
        """The pairs whose English has min_words..max_words words (and, with `letters_only`, whose two
        sides hold only letters, spaces and ' . , ! ? : ; and hyphens between letters), in the same splits;
        the step is recorded."""
        def keep(p: Pair) -> bool:
            if not min_words <= len(p[0].split()) <= max_words:
                return False
            if not letters_only:
                return True
            return all(c.isalpha() or c in LETTERS_ONLY_PUNCT for c in p[0] + p[1]) and not any(LOOSE_HYPHEN.search(s) for s in p)

        train, valid, test = ([p for p in split if keep(p)] for split in (self.train, self.valid, self.test))
        what = f"{min_words}-{max_words} English words" + (", letters and . , ! ? : ; ' - only" if letters_only else "")
        steps = [*self.steps, (what, len(train) + len(valid) + len(test))]
        return replace(self, train=train, valid=valid, test=test, steps=steps)


# --------------------------------------------------------------------------- the pipeline


def _single_line(s: str) -> bool:
    return bool(s) and not any(unicodedata.category(c) == "Cc" for c in s)


def clean_pairs(entries: Iterable[Pair], steps: list[tuple[str, int]]) -> list[Pair]:
    """The pipeline of the module docstring from raw (english, french) messages to unique, cleaned
    pairs; appends (step, remaining) to `steps`."""
    rules = (
        ("single line", lambda e, f: _single_line(e) and _single_line(f)),
        ("no markup (<tag>, &entity;)", lambda e, f: not (MARKUP.search(e) or MARKUP.search(f))),
        ("no format specifiers (%s, %(name)s, {0}, {name})",
         lambda e, f: not any(r.search(s) for r in (PRINTF, BRACES) for s in (e, f))),
        ("no accelerators or identifiers (_, & before a letter)",
         lambda e, f: not (ACCELERATOR.search(e) or ACCELERATOR.search(f))),
    )  # fmt: skip
    pairs = [(e.strip(), f.strip()) for e, f in entries]
    for what, ok in rules:
        pairs = [p for p in pairs if ok(*p)]
        steps.append((what, len(pairs)))
    pairs = [(normalize(e), normalize(f)) for e, f in pairs]
    pairs = [(e, f) for e, f in pairs if e.casefold() != f.casefold()]
    steps.append(("translated (French differs from English, ignoring case)", len(pairs)))
    pairs = [(e, f) for e, f in pairs if MIN_WORDS <= len(e.split()) <= MAX_WORDS]
    steps.append((f"{MIN_WORDS}-{MAX_WORDS} English words", len(pairs)))
    pairs = [(e, f) for e, f in pairs if _aligned(len(e.split()), len(f.split()))]
    steps.append(("aligned (neither side more than 3x the other's words + 2)", len(pairs)))
    pairs = deduplicate(pairs)
    steps.append(("unique English sentences (ignoring case)", len(pairs)))
    return pairs


def _aligned(a: int, b: int) -> bool:
    return max(a, b) <= 3 * min(a, b) + 2


def deduplicate(pairs: Iterable[Pair]) -> list[Pair]:
    """One pair per English sentence (ignoring case): the most frequent pair, then the shortest
    French, then the alphabetically first; sorted by English."""
    groups: dict[str, Counter] = defaultdict(Counter)
    for e, f in pairs:
        groups[e.casefold()][(e, f)] += 1
    best = [min(g.items(), key=lambda item: (-item[1], len(item[0][1]), item[0][1], item[0][0]))[0] for g in groups.values()]
    return sorted(best, key=lambda p: (p[0].casefold(), p))


def split_fraction(sentence: str, seed: int = SPLIT_SEED) -> float:
    """u in [0, 1) from SHA-256(seed, the English sentence ignoring case): the sentence's place in the split."""
    digest = hashlib.sha256(f"{seed}\x00{sentence.casefold()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_pairs(pairs: Iterable[Pair], seed: int = SPLIT_SEED, fractions=FRACTIONS) -> tuple[list[Pair], list[Pair], list[Pair]]:
    """(train, valid, test): test when u < fractions[2], valid when u < fractions[2] + fractions[1]."""
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be 3 numbers >= 0 (train, valid, test) summing to 1, got {fractions}")
    out: tuple[list[Pair], list[Pair], list[Pair]] = ([], [], [])
    for p in pairs:
        u = split_fraction(p[0], seed)
        out[2 if u < fractions[2] else 1 if u < fractions[2] + fractions[1] else 0].append(p)
    return out


def check_pairs(data: SentencePairs, where: str = "") -> SentencePairs:
    """A DataError naming `where` unless every split holds at least one (english, french) pair of
    non-empty strings and no English sentence (ignoring case) is in two splits. Returns `data`."""
    where = where or data.source or data.name
    seen: dict[str, str] = {}
    for split, items in data.splits().items():
        if not isinstance(items, list) or not items:
            raise DataError(f"{where}: {data.name} has no {split} pairs; every split needs at least one")
        for i, p in enumerate(items):
            if not (isinstance(p, tuple) and len(p) == 2 and all(isinstance(s, str) and s.strip() for s in p)):
                raise DataError(f"{where}: {data.name}'s {split} pair {i} is {p!r}; "
                                "pairs are (english, french) non-empty strings")
            key = p[0].casefold()
            if seen.setdefault(key, split) != split:
                raise DataError(f"{where}: {data.name}'s English sentence {p[0]!r} is in both {seen[key]} and {split}")
    return data


# --------------------------------------------------------------------------- gettext catalogues


def read_catalogue(path: Path) -> list[tuple]:
    """(msgid, msgstr) entries of a .mo file as the standard library reads them: the header is the
    "" entry, plural forms have (msgid, index) keys, a context is "ctx\\x04msgid"."""
    import gettext  # here: `deepnotes list` imports this module

    with open(path, "rb") as f:
        return list(gettext.GNUTranslations(f)._catalog.items())


def catalogue_messages(entries: Iterable[tuple]) -> Iterable[Pair]:
    """Singular messages: no header, no plural forms; a message context is dropped."""
    for key, value in entries:
        if isinstance(key, str) and key and isinstance(value, str):
            yield key.rpartition("\x04")[2], value


def find_catalogues(data_dir: str | Path | None = None) -> tuple[Path, list[Path]]:
    """(folder, its *.mo files): data_dir (or data_dir/gettext-fr-en) if given, else
    $DEEPNOTES_DATA/gettext-fr-en, then the system folder; a DataError naming each place tried."""
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        for cand in (d, d / GETTEXT):
            if files := sorted(cand.glob("*.mo")):
                return cand, files
        raise DataError(f"{GETTEXT}: the data folder {d} holds no gettext catalogues (*.mo files), nor does {d / GETTEXT}; "
                        f"French ones are in {LOCALE_DIR}")  # fmt: skip
    tried = []
    roots = [Path(r).expanduser() / GETTEXT for r in os.environ.get(sources.ENV_VAR, "").split(os.pathsep) if r]
    places = [(r, f"${sources.ENV_VAR}") for r in roots] + [(s, "system copy") for s in sources.SYSTEM_DIRS.get(GETTEXT, ())]
    for folder, label in places:
        if files := sorted(Path(folder).glob("*.mo")):
            return Path(folder), files
        tried.append(f"{folder} ({label}): {'no *.mo files' if Path(folder).is_dir() else 'no such folder'}")
    if not roots:
        tried.insert(0, f"${sources.ENV_VAR}: not set")
    raise DataError(f"{GETTEXT}: no French gettext catalogues (*.mo) found. Tried: {'; '.join(tried)}. "
                    f"To get them: {sources.GETTEXT_FR_EN_HOW}")  # fmt: skip


def load_gettext_fr_en(data_dir=None, download=True, *, seed: int = SPLIT_SEED, fractions=FRACTIONS) -> SentencePairs:
    """The gettext English->French pairs (module docstring). `download` is ignored: nothing is downloaded.
    A catalogue the standard library cannot read is skipped and counted in `steps`."""
    folder, files = find_catalogues(data_dir)
    entries, bad = [], []
    for path in files:
        try:
            entries += read_catalogue(path)
        except (OSError, ValueError, LookupError, IndexError, struct.error) as e:  # bad magic, truncated, charset
            bad.append(f"{path.name} ({e.strerror if isinstance(e, OSError) and e.strerror else f'{type(e).__name__}: {e}'})")
    if len(bad) == len(files):
        raise DataError(f"{folder}: none of its {len(files)} .mo files is a readable gettext catalogue, e.g. {bad[0]}")
    steps = [(f"entries in {len(files) - len(bad)} catalogues" + (f" (unreadable, skipped: {', '.join(bad)})" if bad else ""),
              len(entries))]  # fmt: skip
    messages = list(catalogue_messages(entries))
    steps.append(("messages (no header, no plural forms)", len(messages)))
    pairs = clean_pairs(messages, steps)
    train, valid, test = split_pairs(pairs, seed, fractions)
    return check_pairs(SentencePairs(GETTEXT, train, valid, test, str(folder), steps, seed), str(folder))


def describe(data_dir=None) -> str:
    """The gettext pipeline's counts on this machine, one step a line (the numbers in the module docstring)."""
    return load_gettext_fr_en(data_dir).describe()


# --------------------------------------------------------------------------- Tatoeba (the PyTorch tutorial's file)


def extract_eng_fra(archive: Path, dest: Path) -> None:
    """data/eng-fra.txt from the tutorial's data.zip to `dest`, atomically; a DataError if the zip is not that."""
    import zipfile

    member = "data/eng-fra.txt"
    try:
        with zipfile.ZipFile(archive) as z:
            info = z.getinfo(member)
            if info.file_size > MAX_TEXT_BYTES:
                raise DataError(f"{archive}: {member} claims {info.file_size:,} bytes; the real file is about 9 MB")
            data = z.read(info)  # checks the CRC
    except KeyError:
        raise DataError(f"{archive}: holds no {member}; it is not the PyTorch tutorial's data.zip") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as e:
        raise DataError(f"{archive}: not a readable zip archive ({e})") from None
    write_bytes(dest, data)


def read_tab_pairs(path: Path, steps: list[tuple[str, int]]) -> list[Pair]:
    """(english, french) from "English<TAB>French[<TAB>...]" lines (UTF-8); appends the counts to `steps`."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start}); eng-fra.txt holds English<TAB>French lines") from None
    lines = [line for line in text.splitlines() if line.strip()]
    pairs = [(parts[0], parts[1]) for parts in (line.split("\t") for line in lines) if len(parts) >= 2]
    steps += [(f"non-empty lines in {Path(path).name}", len(lines)), ("English<TAB>French lines", len(pairs))]
    if not pairs:
        raise DataError(f"{path}: no English<TAB>French lines among its {len(lines)} lines")
    return pairs


def load_tatoeba_fr_en(data_dir=None, download=True, *, seed: int = SPLIT_SEED, fractions=FRACTIONS) -> SentencePairs:
    """The PyTorch tutorial's Tatoeba English->French pairs, found or downloaded (data/sources.py),
    through the same pipeline. Downloads only with a known SHA-256 (sources.tatoeba_fr_en)."""
    source = sources.tatoeba_fr_en()
    url = source.remotes[0].url
    verifiable = bool(source.remotes[0].sha256)
    try:
        found = sources.locate(source, data_dir, download and verifiable)
    except DataError as e:
        if download and not verifiable:
            raise DataError(str(e).replace(
                f"download: skipped (download=False); it would fetch {url}",
                f"download: not attempted, there is no SHA-256 to verify {url} against (set ${sources.TATOEBA_SHA256_VAR})",
            )) from None  # fmt: skip
        raise
    path = found.paths["eng-fra.txt"]
    steps: list[tuple[str, int]] = []
    pairs = clean_pairs(read_tab_pairs(path, steps), steps)
    train, valid, test = split_pairs(pairs, seed, fractions)
    return check_pairs(SentencePairs(TATOEBA, train, valid, test, str(path), steps, seed), str(path))


register_dataset(
    GETTEXT, load_gettext_fr_en, kind="pairs",
    description="English->French UI messages from this machine's gettext catalogues (/usr/share/locale/fr), ~29k pairs",
)
register_dataset(
    TATOEBA, load_tatoeba_fr_en, kind="pairs",
    description="English->French Tatoeba pairs of the PyTorch seq2seq tutorial (download), ~135k lines",
)
