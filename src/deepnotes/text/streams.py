"""A corpus as one stream of token ids for a language model, by one of three tokenizers.

    tok = build_tokenizer("char", corpus, docs=train_docs)   # or "word", "bpe", "bpe:4000"
    train_ids = corpus_stream(tok, corpus, train_docs)        # 1-D int64 numpy array
    tok.encode_text("ROMEO:"); tok.decode(ids)
    LMTokenizer.from_dict(tok.to_dict())                      # saved in the run's config.json

- char: every character of the text is a token (deepnotes.text.chars.CharVocab, no special ids),
  as Karpathy's char-rnn and nanoGPT's shakespeare_char. The text is the corpus's raw text where it
  has one (Shakespeare's plays, with their case, punctuation and line breaks), else its tokenized
  sentences joined by spaces, one per line.
- word: the corpus's own word tokens (lowercased), the 10,000 most frequent (specials included;
  Mikolov et al. 2010's Penn Treebank setup), every other word UNK; EOS ends each sentence (read back
  as a line break). Ids: PAD 0, SOS 1, EOS 2, UNK 3 (deepnotes.text.vocab), then "<mask>" at 4 (the
  masked LM's [MASK], Devlin et al. 2019; never in the text), then the words.
- bpe: byte-pair encoding learned from scratch on the training words (deepnotes.text.bpe, 2,000
  merges unless "bpe:N"), EOS after each sentence; a character never seen in training is UNK.

The word and BPE tokenizers learn only from the training documents (`docs`), so nothing of the test
text leaks into their vocabularies; the character one takes the character set of the whole corpus (as
nanoGPT does), so that every test text encodes: which characters exist, nothing more. `char_lengths()` gives the characters each id stands for (a word and its space), so
a loss per token converts to bits per character, the number comparable across tokenizers.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from deepnotes.errors import DataError, UserError
from deepnotes.text.bpe import BPE, EOW
from deepnotes.text.chars import CharVocab
from deepnotes.text.tokenize import tokenize
from deepnotes.text.vocab import EOS, PAD, SOS, SPECIALS, UNK, Vocabulary

KINDS = ("char", "word", "bpe")
WORD_VOCAB = 10_000  # ids, specials included
BPE_MERGES = 2_000
MASK_TOKEN = "<mask>"
MASK_ID = len(SPECIALS)  # 4: right after PAD, SOS, EOS, UNK


def parse_tokenizer(name: str) -> tuple[str, int | None]:
    """'bpe:4000' -> ('bpe', 4000); 'char' -> ('char', None)."""
    kind, _, merges = name.partition(":")
    if kind not in KINDS or merges and (kind != "bpe" or not merges.isdigit() or int(merges) < 1):
        raise UserError(f"--tokenizer is one of {', '.join(KINDS)} or bpe:N (N merges, e.g. bpe:2000), got {name!r}")
    return kind, int(merges) if merges else None


def doc_texts(corpus, docs: Sequence[int]) -> list[str]:
    """The raw text of each document in `docs`: the corpus's own where it has it, else its sentences
    joined by spaces, one per line."""
    if corpus.texts is not None:
        return [corpus.texts[d] for d in docs]
    by_doc: dict[int, list[str]] = {int(d): [] for d in docs}
    for sentence, d in zip(corpus.sentences, corpus.doc_of_sentence):
        if int(d) in by_doc:
            by_doc[int(d)].append(" ".join(sentence))
    return ["\n".join(by_doc[int(d)]) for d in docs]


def doc_sentences(corpus, docs: Sequence[int]) -> list[list[str]]:
    """The tokenized sentences of the documents in `docs`, in corpus order."""
    wanted = np.zeros(max(corpus.num_docs, 1), dtype=bool)
    wanted[np.asarray(list(docs), dtype=np.int64)] = True
    return [s for s, d in zip(corpus.sentences, corpus.doc_of_sentence) if wanted[int(d)]]


class LMTokenizer:
    """One of the three tokenizers of the module docstring, behind encode_text / decode / ids."""

    def __init__(self, kind: str, table: CharVocab | Vocabulary | BPE):
        self.kind, self.table = kind, table

    # ------------------------------------------------------------------ sizes and special ids

    def __len__(self) -> int:
        return len(self.table) if self.kind != "bpe" else len(self.table.itos)

    @property
    def mask_id(self) -> int | None:
        """The [MASK] id of a masked LM (word tokenizer only)."""
        return MASK_ID if self.kind == "word" else None

    @property
    def special_ids(self) -> list[int]:
        """Ids that are not text (never masked, never drawn as a random replacement)."""
        if self.kind == "char":
            return []
        return [PAD, SOS, EOS, UNK] + ([MASK_ID] if self.kind == "word" else [])

    def describe(self) -> str:
        if self.kind == "char":
            return f"{len(self)} characters"
        if self.kind == "word":
            return f"{len(self):,} ids (the {len(self) - MASK_ID - 1:,} most frequent training words, specials, <mask>)"
        return f"{len(self):,} ids (BPE, {len(self.table.merges):,} merges learned on the training words)"

    # ------------------------------------------------------------------ text <-> ids

    def encode_sentences(self, sentences: list[list[str]]) -> np.ndarray:
        """Tokenized sentences -> one stream, EOS after each (word, bpe)."""
        out: list[int] = []
        if self.kind == "word":
            stoi, unk = self.table.stoi, UNK
            for s in sentences:
                out += [stoi.get(t, unk) for t in s]
                out.append(EOS)
        else:
            for s in sentences:
                for t in s:
                    out += self.table.encode_ids(t)
                out.append(EOS)
        return np.asarray(out, dtype=np.int64)

    def encode_text(self, text: str) -> list[int]:
        """A prompt -> ids: its characters (char; one not in the vocabulary is a UserError), or its
        lowercased words by deepnotes.text.tokenize (word: unknown ones UNK; bpe), lines ending in EOS."""
        if self.kind == "char":
            unknown = sorted({c for c in text if c not in self.table})
            if unknown:
                raise UserError(f"the prompt has characters this run never saw: {''.join(unknown)!r}; use only these: "
                                f"{''.join(c for c in self.table.itos if c.isprintable())!r}")  # fmt: skip
            return self.table.encode(text)
        lines = text.split("\n")
        ids: list[int] = []
        for i, line in enumerate(lines):
            words = tokenize(line)
            if self.kind == "word":
                ids += [self.table.stoi.get(w, UNK) for w in words]
            else:
                for w in words:
                    ids += self.table.encode_ids(w)
            if i < len(lines) - 1:
                ids.append(EOS)
        return ids

    def decode(self, ids) -> str:
        """Ids -> text; EOS reads as a line break, PAD and SOS are dropped."""
        ids = [int(i) for i in ids]
        if self.kind == "char":
            return self.table.decode(ids)
        if self.kind == "word":
            lines, words = [], []
            for i in ids:
                if i == EOS:
                    lines.append(" ".join(words))
                    words = []
                elif i not in (PAD, SOS):
                    words.append(self.table.itos[i])
            return "\n".join([*lines, " ".join(words)])
        lines, piece = [], []
        for i in ids:
            if i == EOS:
                lines.append(self.table.decode(piece))
                piece = []
            else:
                piece.append(i)
        return "\n".join([*lines, self.table.decode(piece)])

    def char_lengths(self) -> np.ndarray:
        """Characters each id stands for in the text: a word or a word-final piece counts the space or
        line break after it (so EOS counts nothing), an unknown word 4 (about an English word and its space)."""
        n = len(self)
        out = np.zeros(n, dtype=np.int64)
        if self.kind == "char":
            out[:] = 1
        elif self.kind == "word":
            out[MASK_ID + 1 :] = [len(t) + 1 for t in self.table.itos[MASK_ID + 1 :]]
            out[UNK] = 4
        else:
            for i, s in enumerate(self.table.itos):
                if i >= len(SPECIALS):
                    out[i] = len(s) - len(EOW) + 1 if s.endswith(EOW) else len(s)
            out[UNK] = 1
        return out

    # ------------------------------------------------------------------ saved with the run

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "table": self.table.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "the run's tokenizer") -> "LMTokenizer":
        kind = d.get("kind") if isinstance(d, dict) else None
        if kind not in KINDS or not isinstance(d.get("table"), dict):
            raise DataError(f"{where} is not a language-model tokenizer (kind one of {', '.join(KINDS)} and a table)")
        table = {"char": CharVocab, "word": Vocabulary, "bpe": BPE}[kind].from_dict(d["table"], where=where)
        if kind == "word" and (len(table) <= MASK_ID or table.itos[MASK_ID] != MASK_TOKEN):
            raise DataError(f"{where}: a word tokenizer has {MASK_TOKEN} at id {MASK_ID}")
        return cls(kind, table)

    def __eq__(self, other) -> bool:
        return isinstance(other, LMTokenizer) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"LMTokenizer({self.kind!r}, {self.describe()})"


def build_tokenizer(name: str, corpus, docs: Sequence[int]) -> LMTokenizer:
    """Learn the tokenizer `name` ("char", "word", "bpe", "bpe:N") from the documents `docs` of `corpus`."""
    kind, merges = parse_tokenizer(name)
    if kind == "char":  # the characters of the whole corpus (as nanoGPT), so that every test text encodes
        return LMTokenizer("char", CharVocab.build(doc_texts(corpus, range(max(corpus.num_docs, 1)))))
    sentences = doc_sentences(corpus, docs)
    if kind == "word":
        v = Vocabulary.build(sentences, max_size=WORD_VOCAB - 1)  # one id left for <mask>
        return LMTokenizer("word", Vocabulary([MASK_TOKEN, *v.itos[len(SPECIALS) :]], [0, *v.counts], max_size=WORD_VOCAB))
    counts: dict[str, int] = {}
    for s in sentences:
        for w in s:
            counts[w] = counts.get(w, 0) + 1
    return LMTokenizer("bpe", BPE.train(counts, merges or BPE_MERGES))


def corpus_stream(tok: LMTokenizer, corpus, docs: Sequence[int]) -> np.ndarray:
    """The documents `docs` of `corpus` as one stream of ids (documents in order; char: separated by a blank line)."""
    if tok.kind == "char":
        text = "\n\n".join(doc_texts(corpus, docs))
        unknown = sorted(set(text) - set(tok.table.itos))
        if unknown:  # a tokenizer from another corpus (fine-tuning): a character tokenizer has no UNK
            raise UserError(f"{corpus.name} has {len(unknown)} characters the character tokenizer does not know "
                            f"({''.join(unknown[:20])!r}); fine-tune from a run whose corpus has them, or use --tokenizer word or bpe")  # fmt: skip
        return np.asarray(tok.table.encode(text), dtype=np.int64)
    return tok.encode_sentences(doc_sentences(corpus, docs))

