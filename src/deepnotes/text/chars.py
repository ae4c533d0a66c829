"""A character vocabulary for character-level language models, saved as JSON (never pickled).

    chars = CharVocab.build(text)           # the distinct characters of `text`, sorted by code point
    ids = chars.encode("To be")             # one id per character: ids 0..len(chars)-1
    chars.decode(ids)                       # "To be"
    chars.save(run_dir / "chars.json"); CharVocab.load(run_dir / "chars.json")

No special tokens and no unknown one (the char-level Shakespeare setup: the model sees every
character of its corpus, and the 42 modern Shakespeare files have 84): a character outside the
vocabulary is a ValueError that names it and its position. Sorted by code point, so the same
text gives the same ids everywhere.

The JSON file (format "deepnotes.chars", version 1):

    {"format": "deepnotes.chars", "version": 1, "chars": ["\\n", " ", "!", ...]}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from deepnotes.errors import DataError
from deepnotes.fileio import write_text

FORMAT, VERSION = "deepnotes.chars", 1


class CharVocab:
    """Characters <-> ids 0..n-1, in code-point order."""

    def __init__(self, chars: Iterable[str]):
        chars = list(chars)
        if not all(isinstance(c, str) and len(c) == 1 for c in chars):
            raise ValueError("a CharVocab holds single characters")
        self.itos: list[str] = sorted(set(chars))
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.itos)}

    @classmethod
    def build(cls, texts: str | Iterable[str]) -> "CharVocab":
        """The distinct characters of `texts` (one string, or several)."""
        if isinstance(texts, str):
            return cls(set(texts))
        seen: set[str] = set()
        for t in texts:
            seen.update(t)
        return cls(seen)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, char: str) -> bool:
        return char in self.stoi

    def __eq__(self, other) -> bool:
        return isinstance(other, CharVocab) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} characters)"

    def encode(self, text: str) -> list[int]:
        """One id per character of `text`; a ValueError naming the first character not in the vocabulary."""
        try:
            return [self.stoi[c] for c in text]
        except KeyError as e:
            c = e.args[0]
            raise ValueError(f"character {c!r} (U+{ord(c):04X}) at position {text.index(c)} is not in the "
                             f"vocabulary of {len(self)} characters") from None  # fmt: skip

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids`; an id outside 0..len-1 is an IndexError."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise IndexError(f"id {i} is outside the character vocabulary (0..{len(self.itos) - 1})")
            out.append(self.itos[i])
        return "".join(out)

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "chars": self.itos}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "the character vocabulary") -> "CharVocab":
        try:
            d = json.loads(text)
        except ValueError as e:
            raise DataError(f"{where}: not valid JSON ({e}); a character vocabulary is written by CharVocab.save") from None
        return cls.from_dict(d, where)

    @classmethod
    def from_dict(cls, d: dict, where: str = "the character vocabulary") -> "CharVocab":
        """The vocabulary in `d` (to_dict's format); a DataError naming `where` if it is not one."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise DataError(f"{where}: not a deepnotes character vocabulary (its \"format\" must be {FORMAT!r})")
        if d.get("version") != VERSION:
            raise DataError(f"{where}: character vocabulary version {d.get('version')!r}; this deepnotes reads version {VERSION}")
        chars = d.get("chars")
        if not isinstance(chars, list) or not all(isinstance(c, str) and len(c) == 1 for c in chars) or chars != sorted(set(chars)):
            raise DataError(f"{where}: \"chars\" must be a list of distinct single characters in code-point order")
        return cls(chars)

    def save(self, path: str | Path) -> Path:
        """Write the vocabulary to `path` as JSON, atomically."""
        return write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "CharVocab":
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{path}: not UTF-8 text; a character vocabulary is JSON written by CharVocab.save") from None
        return cls.from_json(text, str(path))
