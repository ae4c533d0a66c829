"""Decoding for the encoder-decoder families (seq2seq, seq2seq_transformer): greedy and beam search,
written once against a two-method protocol, so every translation model decodes the same way.

A model provides
    start(src (B, S), src_lengths (B,)) -> (memory, state, feed)
    step(y_prev (B,), state, memory, feed) -> (logits (B, V), state, feed, weights (B, S) or None)
where `state` and `feed` are whatever the model carries from one target token to the next (an
RNN's hidden state and Luong's attentional vector; a Transformer's prefix of tokens) and
`weights` is the step's attention over the source (None without attention). Each model says in
its own docstring which weights those are.

Token ids follow deepnotes.text.vocab: PAD 0, SOS 1, EOS 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PAD, SOS, EOS = 0, 1, 2


class StepDecoding:
    """greedy() and beam_search() for a model with start() and step() (see the module docstring)."""

    @torch.no_grad()
    def greedy(self, src: torch.Tensor, src_lengths: torch.Tensor, max_len: int = 50):
        """Pick the most likely token at every step until EOS or max_len. Returns the token ids
        (B, <= max_len), EOS and after it PAD, and the attention weights (B, T, S) (or None)."""
        memory, state, feed = self.start(src, src_lengths)
        B = src.shape[0]
        y = torch.full((B,), SOS, dtype=torch.long, device=src.device)
        done = torch.zeros(B, dtype=torch.bool, device=src.device)
        tokens, weights = [], []
        for _ in range(max_len):
            logits, state, feed, w = self.step(y, state, memory, feed)
            y = logits.argmax(-1).masked_fill(done, PAD)
            tokens.append(y)
            weights.append(w)
            done |= y == EOS
            if done.all():
                break
        attn = torch.stack(weights, dim=1) if weights[0] is not None else None
        return torch.stack(tokens, dim=1), attn

    @torch.no_grad()
    def beam_search(self, src: torch.Tensor, src_lengths: torch.Tensor, beam_size: int = 5, max_len: int = 50,
                    length_penalty: float = 0.6):  # fmt: skip
        """Beam search for one source at a time (B = 1 each; a batch is decoded in turn): keep the
        beam_size best partial translations by total log-probability; a finished one (EOS) is
        scored by log p / lp(len) with Wu et al. 2016's lp = ((5 + len) / 6) ** length_penalty
        (arXiv:1609.08144; 0 = no penalty). Returns token ids (B, T) padded with PAD after EOS and
        the attention weights of the chosen translations (B, T, S) (or None)."""
        outs, attns = [], []
        for b in range(src.shape[0]):
            tokens, attn = self._beam_one(src[b : b + 1, : int(src_lengths[b])], src_lengths[b : b + 1], beam_size, max_len, length_penalty)
            outs.append(tokens)
            attns.append(attn)
        T = max(len(t) for t in outs)
        S = src.shape[1]
        ids = torch.full((len(outs), T), PAD, dtype=torch.long, device=src.device)
        weights = torch.zeros(len(outs), T, S, device=src.device) if attns[0] is not None else None
        for b, (t, a) in enumerate(zip(outs, attns)):
            ids[b, : len(t)] = torch.tensor(t, device=src.device)
            if weights is not None:
                weights[b, : len(t), : a.shape[1]] = a
        return ids, weights

    def _beam_one(self, src, src_lengths, beam_size: int, max_len: int, length_penalty: float):
        memory, state, feed = self.start(src, src_lengths)
        # hypotheses: (log p, tokens, state, feed, attention rows)
        beams = [(0.0, [SOS], state, feed, [])]
        finished = []
        for _ in range(max_len):
            candidates = []
            for logp, toks, st, fd, rows in beams:
                logits, st2, fd2, w = self.step(torch.tensor([toks[-1]], device=src.device), st, memory, fd)
                lp = F.log_softmax(logits[0].float(), dim=-1)
                top = lp.topk(beam_size)
                for v, i in zip(top.values.tolist(), top.indices.tolist()):
                    candidates.append((logp + v, toks + [i], st2, fd2, rows + ([w[0]] if w is not None else [])))
            candidates.sort(key=lambda c: -c[0])
            beams = []
            for c in candidates:
                if c[1][-1] == EOS:
                    finished.append(c)
                elif len(beams) < beam_size:
                    beams.append(c)
                if len(beams) == beam_size:
                    break
            best_open = beams[0][0] / length_norm(len(beams[0][1]) - 1, length_penalty) if beams else float("-inf")
            if len(finished) >= beam_size and max(f[0] / length_norm(len(f[1]) - 1, length_penalty) for f in finished) >= best_open:
                break  # no open hypothesis can still overtake (log p only falls with length; lp grows slowly)
            if not beams:
                break
        pool = finished or beams
        best = max(pool, key=lambda c: c[0] / length_norm(len(c[1]) - 1, length_penalty))
        rows = torch.stack(best[4]) if best[4] else None
        return best[1][1:], rows


def length_norm(length: int, alpha: float) -> float:
    """Wu et al. 2016's length penalty lp(Y) = ((5 + |Y|) / 6) ** alpha."""
    return ((5 + length) / 6) ** alpha
