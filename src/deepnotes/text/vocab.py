"""A vocabulary: tokens <-> ids, with PAD = 0, SOS = 1, EOS = 2, UNK = 3, saved as JSON (never pickled).

    vocab = Vocabulary.build(token_lists, min_count=2, max_size=10_000)
    vocab.encode(["le", "chat"])                      # [ids..., EOS]; unknown tokens -> UNK
    vocab.decode([SOS, 17, 42, EOS, PAD])             # ["le", "chat"]: stops at EOS, drops PAD/SOS
    vocab.save(run_dir / "vocab-fr.json")             # atomic (deepnotes.fileio)
    Vocabulary.load(run_dir / "vocab-fr.json")        # checked: a bad file is one DataError line
    Vocabulary.from_dict(vocab.to_dict())             # the same, as a JSON object inside another file

Order (so the same data gives the same ids on every machine): the 4 specials, then the tokens
seen at least `min_count` times by decreasing count, equal counts in alphabetical (code point)
order; `max_size` caps the total, specials included (it is the embedding table's size).

The JSON file (format "deepnotes.vocabulary", version 1):

    {"format": "deepnotes.vocabulary", "version": 1, "tokenizer": "words-1",
     "specials": ["<pad>", "<sos>", "<eos>", "<unk>"], "min_count": 2, "max_size": 10000,
     "tokens": ["the", "de", ...], "counts": [1520, 1311, ...]}

`tokens` are the ids 4, 5, ... in order, `counts` their counts in the data the vocabulary was
built from; `tokenizer` names the rule that produced the tokens (deepnotes.text.tokenize).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from deepnotes.errors import DataError
from deepnotes.fileio import write_text
from deepnotes.text.tokenize import TOKENIZER

PAD, SOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<sos>", "<eos>", "<unk>")
FORMAT, VERSION = "deepnotes.vocabulary", 1


class Vocabulary:
    """Token <-> id tables. Build one with Vocabulary.build; `tokens` (ids 4, 5, ...) and `counts`
    are what a saved vocabulary holds."""

    def __init__(self, tokens: Sequence[str], counts: Sequence[int] | None = None, *, min_count: int = 1,
                 max_size: int | None = None, tokenizer: str = TOKENIZER):  # fmt: skip
        tokens = list(tokens)
        clash = sorted(set(tokens) & set(SPECIALS))
        if clash:
            raise ValueError(f"{', '.join(clash)} are reserved for the special tokens")
        if len(set(tokens)) != len(tokens):
            dup = next(t for t, n in Counter(tokens).items() if n > 1)
            raise ValueError(f"token {dup!r} is listed twice")
        self.itos: list[str] = [*SPECIALS, *tokens]
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        self.counts: list[int] = list(counts) if counts is not None else [0] * len(tokens)
        if len(self.counts) != len(tokens):
            raise ValueError(f"{len(self.counts)} counts for {len(tokens)} tokens")
        self.min_count, self.max_size, self.tokenizer = min_count, max_size, tokenizer

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], min_count: int = 1, max_size: int | None = None) -> "Vocabulary":
        """The tokens of `sentences` (lists of tokens) seen at least `min_count` times, most frequent
        first (ties alphabetical), at most `max_size` entries including the 4 specials. Tokens equal to
        a special's name ("<unk>") are not counted: they could not be told apart from the special."""
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {min_count}")
        if max_size is not None and max_size < len(SPECIALS):
            raise ValueError(f"max_size must be at least {len(SPECIALS)} (the special tokens), got {max_size}")
        counts = Counter(t for sentence in sentences for t in sentence if t not in SPECIALS)
        kept = sorted((t for t, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max_size - len(SPECIALS)]
        return cls(kept, [counts[t] for t in kept], min_count=min_count, max_size=max_size)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} entries, min_count={self.min_count}, max_size={self.max_size})"

    def id(self, token: str) -> int:
        """The id of `token`, UNK if it is not in the vocabulary."""
        return self.stoi.get(token, UNK)

    def token(self, i: int) -> str:
        return self.itos[i]

    def encode(self, tokens: Sequence[str], *, sos: bool = False, eos: bool = True) -> list[int]:
        """Ids of `tokens` (UNK for unknown ones), with SOS in front if `sos`, EOS at the end if `eos`."""
        return [SOS] * sos + [self.stoi.get(t, UNK) for t in tokens] + [EOS] * eos

    def decode(self, ids: Iterable[int], *, stop_at_eos: bool = True) -> list[str]:
        """Tokens of `ids` up to the first EOS (all of them if not `stop_at_eos`); PAD, SOS and EOS are
        dropped, UNK stays as "<unk>". An id outside the vocabulary is an IndexError."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise IndexError(f"id {i} is outside the vocabulary (0..{len(self.itos) - 1})")
            if i == EOS and stop_at_eos:
                break
            if i not in (PAD, SOS, EOS):
                out.append(self.itos[i])
        return out

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict:
        return {
            "format": FORMAT, "version": VERSION, "tokenizer": self.tokenizer, "specials": list(SPECIALS),
            "min_count": self.min_count, "max_size": self.max_size, "tokens": self.itos[len(SPECIALS):], "counts": self.counts,
        }  # fmt: skip

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "the vocabulary") -> "Vocabulary":
        """The vocabulary in `text` (to_json's format); a DataError naming `where` if it is not one."""
        try:
            d = json.loads(text)
        except ValueError as e:
            raise DataError(f"{where}: not valid JSON ({e}); a vocabulary file is written by Vocabulary.save") from None
        return cls.from_dict(d, where)

    @classmethod
    def from_dict(cls, d: dict, where: str = "the vocabulary") -> "Vocabulary":
        """The vocabulary in `d` (to_dict's format, e.g. kept inside config.json); checked as from_json."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise DataError(f"{where}: not a deepnotes vocabulary (its \"format\" must be {FORMAT!r})")
        if d.get("version") != VERSION:
            raise DataError(f"{where}: vocabulary version {d.get('version')!r}; this deepnotes reads version {VERSION}")
        if d.get("specials") != list(SPECIALS):
            raise DataError(f"{where}: the specials are {d.get('specials')!r}; they must be {list(SPECIALS)} (ids 0..3)")
        tokens, counts = d.get("tokens"), d.get("counts")
        if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
            raise DataError(f"{where}: \"tokens\" must be a list of non-empty strings")
        if not isinstance(counts, list) or len(counts) != len(tokens) or not all(type(n) is int and n >= 0 for n in counts):
            raise DataError(f"{where}: \"counts\" must be a list of {len(tokens)} counts (integers >= 0), one per token")
        try:
            return cls(tokens, counts, min_count=d.get("min_count", 1), max_size=d.get("max_size"),
                       tokenizer=d.get("tokenizer", TOKENIZER))  # fmt: skip
        except ValueError as e:
            raise DataError(f"{where}: {e}") from None

    def save(self, path: str | Path) -> Path:
        """Write the vocabulary to `path` as JSON, atomically."""
        return write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "Vocabulary":
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{path}: not UTF-8 text; a vocabulary file is JSON written by Vocabulary.save") from None
        return cls.from_json(text, str(path))
