"""The word tokenizer for translation, one rule for English and French ("words-1"):

1. normalize (also what data/pairs.py applies to its sentences, without lowercasing): Unicode
   NFC; every space character (the non-breaking space U+00A0 and narrow one U+202F that French
   puts before : ; ! ? and inside « », thin and figure spaces, tabs, newlines) becomes one plain
   space; zero-width spaces, soft hyphens and byte-order marks go; the curly apostrophes ’ ‘ and
   ʼ become ', “ ” „ become ", … becomes ...;
2. lowercase;
3. split into tokens, left to right, taking at each place the first that matches:
   - a number with inner periods or commas: "3.5", "1,000", "2.0.1" (one token);
   - an elision: a word and the apostrophe after it when a letter follows: "l'", "d'", "qu'",
     "jusqu'", "aujourd'" (French elisions are their own tokens, so "l'" is one vocabulary
     entry shared by "l'homme", "l'eau", ...; English contractions split the same way: "don'"
     "t", "it'" "s": one rule, and detokenize puts them back together);
   - a word: letters, digits or _, with inner hyphens: "peut-être", "est-à-dire", "e-mail";
   - any other character on its own: punctuation (. , ! ? : ; « » ( ) - ' " ...), symbols.

    tokenize("L’homme d’État, c’est-à-dire\u00a0: «\u202fOui\u202f» !")
    -> ["l'", "homme", "d'", "état", ",", "c'", "est-à-dire", ":", "«", "oui", "»", "!"]

detokenize joins tokens with single spaces, except after an elision (no space: "l'homme"); so
detokenize(tokenize(s)) is s normalized and lowercased with one space around punctuation. BLEU's
13a tokenization (deepnotes.metrics.text) splits ASCII punctuation that way anyway and keeps
"l'homme" whole, so it sees the same tokens in both; « » are not ASCII, but French writes them
with (non-breaking) spaces inside.
"""

from __future__ import annotations

import re
import unicodedata

TOKENIZER = "words-1"  # the rule above; saved with a vocabulary so a run knows how its text was split

_TYPOGRAPHY = str.maketrans({
    "\u2019": "'", "\u2018": "'", "\u02bc": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"',
    "\u2026": "...",
    "\u200b": "", "\u00ad": "", "\ufeff": "",
})  # fmt: skip
_SPACES = re.compile(r"\s+")  # Unicode spaces: U+00A0, U+202F, U+2009, tabs, newlines, ...
_TOKEN = re.compile(
    r"\d+(?:[.,]\d+)+"  # a number with inner periods or commas
    r"|\w+(?:-\w+)*'(?=\w)"  # an elision, apostrophe included
    r"|\w+(?:-\w+)*"  # a word with inner hyphens
    r"|\S"  # anything else, one character at a time
)


def normalize(text: str) -> str:
    """Step 1 of the rule: NFC, plain spaces (collapsed, stripped), straight apostrophes and quotes; case kept."""
    text = unicodedata.normalize("NFC", text).translate(_TYPOGRAPHY)
    return _SPACES.sub(" ", text).strip()


def tokenize(text: str) -> list[str]:
    """Lowercased word tokens of `text` by the rule in the module docstring."""
    return _TOKEN.findall(normalize(text).lower())


def is_elision(token: str) -> bool:
    return len(token) > 1 and token.endswith("'")


def detokenize(tokens: list[str]) -> str:
    """Tokens back to text: single spaces, none after an elision ("l'" "homme" -> "l'homme")."""
    out = []
    for i, token in enumerate(tokens):
        out.append(token)
        if i + 1 < len(tokens) and not is_elision(token):
            out.append(" ")
    return "".join(out)
