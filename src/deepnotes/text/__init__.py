"""Text for sequence tasks: a word tokenizer for translation and a vocabulary saved as JSON.

    tokens = tokenize("L’homme d’État\u00a0!")      # ["l'", "homme", "d'", "état", "!"]
    vocab = Vocabulary.build([tokens], min_count=1)
    ids = vocab.encode(tokens)                     # ... + [EOS]
    detokenize(vocab.decode(ids))                  # "l'homme d'état !"
    vocab.save(run_dir / "vocab-fr.json"); Vocabulary.load(run_dir / "vocab-fr.json")

No torch, no numpy: importing this package is cheap.
"""

from deepnotes.text.tokenize import TOKENIZER, detokenize, normalize, tokenize
from deepnotes.text.vocab import EOS, PAD, SOS, SPECIALS, UNK, Vocabulary

__all__ = ["EOS", "PAD", "SOS", "SPECIALS", "TOKENIZER", "UNK", "Vocabulary", "detokenize", "normalize", "tokenize"]
