"""Text for sequence tasks: a word tokenizer for translation, a vocabulary saved as JSON, byte-pair
encoding learned from scratch (bpe.py) and a character vocabulary for char-level models (chars.py).

    tokens = tokenize("L’homme d’État\u00a0!")      # ["l'", "homme", "d'", "état", "!"]
    vocab = Vocabulary.build([tokens], min_count=1)
    ids = vocab.encode(tokens)                     # ... + [EOS]
    detokenize(vocab.decode(ids))                  # "l'homme d'état !"
    vocab.save(run_dir / "vocab-fr.json"); Vocabulary.load(run_dir / "vocab-fr.json")
    bpe = BPE.train(word_counts, num_merges=5000); bpe.encode("lowest")    # ["low", "est</w>"]
    chars = CharVocab.build(text); chars.decode(chars.encode("To be"))      # "To be"

No torch, no numpy: importing this package is cheap.
"""

from deepnotes.text.bpe import BPE, EOW
from deepnotes.text.chars import CharVocab
from deepnotes.text.tokenize import TOKENIZER, detokenize, normalize, tokenize
from deepnotes.text.vocab import EOS, PAD, SOS, SPECIALS, UNK, Vocabulary

__all__ = ["BPE", "EOS", "EOW", "PAD", "SOS", "SPECIALS", "TOKENIZER", "UNK", "CharVocab", "Vocabulary", "detokenize",
           "normalize", "tokenize"]
