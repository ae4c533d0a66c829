"""Word-embedding benchmarks: WordSim-353, SimLex-999 (word pairs with human similarity scores)
and the Google analogy set (a : b :: c : d questions in 14 sections), as gensim ships them.

    ws = load_word_pairs("wordsim353")      # WordPairs: 353 pairs, scores 0..10
    sl = load_word_pairs("simlex999")       # 999 pairs, scores 0..10
    qa = load_analogies()                   # Analogies: 19,544 questions, 14 sections

The files (gensim/test/test_data/ in gensim 4.4.0) are found through data/sources.py under the
name "word-benchmarks": data_dir, $DEEPNOTES_DATA/word-benchmarks/, the installed gensim's test
data (a system copy, found with importlib.util.find_spec, which does not import gensim: that
would cost a second and pull in scipy), the user cache, then a download from gensim's GitHub
tag 4.4.0 verified against the SHA-256 below. Each file is looked for on its own.

Parsing follows gensim's KeyedVectors.evaluate_word_pairs / evaluate_word_analogies:
- word pairs: lines starting with "#" are comments; the rest are word, word, score separated by
  tabs (by runs of whitespace when a line has no tab);
- analogies: ": name" starts a section (its name is the line without the leading ": "), other
  lines are four words separated by whitespace; a question before any section is an error;
- words are lowercased: gensim compares words case-insensitively by default
  (case_insensitive=True uppercases both the file's words and the model's), and the corpora here
  are lowercased. The three files are ASCII, where upper- and lowercasing group words alike.
One difference: gensim logs and skips a line it cannot parse; here it is a DataError naming the
file and line (the real files have none: 353 + 999 pairs and 19,544 questions parse, as in gensim).
Blank lines are skipped in both.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from deepnotes.data import sources
from deepnotes.errors import DataError, UserError

NAME = "word-benchmarks"
GENSIM_URL = "https://raw.githubusercontent.com/piskvorky/gensim/4.4.0/gensim/test/test_data/"
FILES = {  # name -> (file, SHA-256, size in bytes), as in gensim 4.4.0
    "wordsim353": ("wordsim353.tsv", "f92a022fc2537793a15bc3a8c162ebcd74990e033a228bb6388cb71e4c0b1e1d", 7186),
    "simlex999": ("simlex999.txt", "d5e0501971478a511430ee880bd0121e94ac701ba86d90544d83e6d2ba3db05d", 18126),
    "analogies": ("questions-words.txt", "8c29b3332afc46f3fb8be04cb5297bf96f39aa7131272dff57869b4485b22a36", 603955),
}
WORD_PAIRS = ("wordsim353", "simlex999")


def gensim_test_data() -> Path | None:
    """gensim/test/test_data of the installed gensim, found without importing gensim; None without gensim."""
    try:
        spec = importlib.util.find_spec("gensim")
    except (ImportError, ValueError):  # ValueError: a gensim in sys.modules without a spec
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "test" / "test_data"


sources.SYSTEM_DIRS[NAME] = tuple(p for p in (gensim_test_data(),) if p is not None)


@dataclass
class WordPairs:
    """Word pairs with human similarity scores (float64, one per pair); words lowercased."""

    name: str
    pairs: list[tuple[str, str]]
    scores: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.pairs)

    def __repr__(self) -> str:
        return f"WordPairs({self.name!r}, {len(self.pairs)} pairs, source={self.source!r})"


@dataclass
class Analogies:
    """Analogy questions (a, b, c, d): "a is to b as c is to d", words lowercased; `section_of`
    (int32, one per question) indexes `sections`."""

    name: str
    sections: list[str]
    questions: list[tuple[str, str, str, str]]
    section_of: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.questions)

    def __repr__(self) -> str:
        return f"Analogies({self.name!r}, {len(self.questions)} questions in {len(self.sections)} sections, source={self.source!r})"


def source_of(name: str) -> sources.Source:
    """The Source of one benchmark file (`name` a key of FILES)."""
    fname, sha, size = FILES[name]
    url = GENSIM_URL + fname
    return sources.Source(
        name=NAME,
        files=((fname,),),
        remotes=(sources.Remote(url, sha, size),),
        how_to_get=sources._hint(NAME, f"`pip install gensim` (its test data holds it) or download {url}"),
    )


def _lines(path: Path) -> list[str]:
    try:
        return path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})") from None


def read_word_pairs(path: str | Path, name: str = "") -> WordPairs:
    """Word pairs from a WordSim-353 / SimLex-999 file in gensim's format (module docstring)."""
    path = Path(path)
    pairs, scores = [], []
    for lineno, line in enumerate(_lines(path), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split()
        try:
            if len(fields) != 3 or not fields[0] or not fields[1]:
                raise ValueError
            score = float(fields[2])
        except ValueError:
            raise DataError(f"{path}, line {lineno}: {line[:80]!r} is not 'word<TAB>word<TAB>score' "
                            "(or a '#' comment)") from None  # fmt: skip
        pairs.append((fields[0].lower(), fields[1].lower()))
        scores.append(score)
    if not pairs:
        raise DataError(f"{path}: holds no word pairs ('word<TAB>word<TAB>score' lines)")
    return WordPairs(name or path.stem, pairs, np.asarray(scores, dtype=np.float64), str(path))


def read_analogies(path: str | Path, name: str = "google-analogies") -> Analogies:
    """Analogy questions from a file in questions-words.txt's format (module docstring)."""
    path = Path(path)
    sections: list[str] = []
    questions, section_of = [], []
    for lineno, line in enumerate(_lines(path), 1):
        if line.startswith(": "):
            sections.append(line.lstrip(": ").strip())  # as gensim: every leading ":" and space goes
            continue
        words = line.split()
        if not words:
            continue
        if not sections:
            raise DataError(f"{path}, line {lineno}: a question before any ': section' line; the file must start with one")
        if len(words) != 4:
            raise DataError(f"{path}, line {lineno}: {line[:80]!r} has {len(words)} words; a question has 4 (a b c d)")
        questions.append(tuple(w.lower() for w in words))
        section_of.append(len(sections) - 1)
    if not questions:
        raise DataError(f"{path}: holds no analogy questions (': section' lines, then 'a b c d' lines)")
    return Analogies(name, sections, questions, np.asarray(section_of, dtype=np.int32), str(path))


def load_word_pairs(name: Literal["wordsim353", "simlex999"], data_dir=None, download=True) -> WordPairs:
    """WordSim-353 ("wordsim353", 353 pairs) or SimLex-999 ("simlex999", 999 pairs), found or downloaded."""
    if name not in WORD_PAIRS:
        raise UserError(f"unknown word-pair benchmark {name!r}; valid: {', '.join(WORD_PAIRS)}")
    found = sources.locate(source_of(name), data_dir, download)
    return read_word_pairs(found.paths[FILES[name][0]], name)


def load_analogies(data_dir=None, download=True) -> Analogies:
    """The Google analogy set (questions-words.txt: 19,544 questions in 14 sections), found or downloaded."""
    found = sources.locate(source_of("analogies"), data_dir, download)
    return read_analogies(found.paths[FILES["analogies"][0]])
