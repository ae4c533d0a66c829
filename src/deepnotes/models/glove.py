"""GloVe: global vectors from the co-occurrence counts (Pennington et al. 2014, "GloVe: Global Vectors
for Word Representation", EMNLP), trained by the word-vectors task.

    model = create_model("glove", vocab_size=len(vocab), num_classes=len(vocab))
    loss = model.glove_step(i, j, x, lr)    # B cells (i, j) of the co-occurrence matrix with their counts x
    model.vectors()                         # w + w~ (the paper's choice, section 4.2)

The objective is a weighted least squares over the non-zero cells of X (deepnotes.text.cooccurrence,
1/d-weighted counts in a symmetric window of 10 inside a sentence):

    J = sum_ij f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2,   f(x) = min(1, (x / x_max)^alpha)

with x_max = 100 and alpha = 0.75 (the paper's). The update is the reference implementation's
(glove.c as stanfordnlp/GloVe has it since 2020): AdaGrad per component with the squared-gradient
sums starting at 1; a word vector's step is lr * clip(f * diff * w~_j, +-100), the learning rate
inside the accumulated square; a bias's step is f * diff, WITHOUT the learning rate (the 2014 code
multiplied it in). Batched over B cells: each row's steps in the batch are summed, then AdaGrad
divides by the root of its sums with this step's square included (_adagrad: Duchi et al.'s and
torch's order; glove.c, one cell at a time, divides before adding). For a cell whose rows are not
shared with another cell of its batch, the step differs from glove.c's only by that order.
The sums G are buffers of the model, so a checkpoint resumes them exactly. tests/test_word_vectors.py
checks one step against a loop written from glove.c.

The learning rate: 0.5 here against glove.c's 0.05. With the sums starting at 1, AdaGrad divides
by about 1 until the squared steps add up, so a small gradient moves at plain SGD's pace; on a corpus
the size of Brown most counts are small, f(X) = (X/100)^alpha is 0.03 at X = 1, and at 0.05 the
vectors had hardly left their start after 15 epochs (WordSim-353 Spearman 0.02; the loss falling all
the same, carried by the biases). At 0.5 and 25 epochs: 0.25, as skip-gram's on the same corpus
(`deepnotes train glove --data brown`, 1 thread). glove.c's order (dividing before adding) diverged
at 0.5 on Brown (loss 5e5 by epoch 5 with commit 2cf43bf's code, `deepnotes train glove --data brown --lr 0.5`); the order here does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepnotes.registry import Variant, register_variants

PAPER = "Pennington et al. 2014, GloVe: Global Vectors for Word Representation (EMNLP)"


@dataclass
class GloVeConfig:
    dim: int = 100
    window: int = 10  # GloVe's demo.sh uses 15; 10 is the paper's best symmetric window on its analogy tasks
    x_max: float = 100.0
    alpha: float = 0.75
    min_count: int = 5


GRAD_CLIP = 100.0  # glove.c's grad_clip_value, on each component of a word-vector gradient


class GloVe(nn.Module):
    mode = "glove"

    def __init__(self, vocab_size: int, num_classes: int | None = None, dim: int = 100, window: int = 10,
                 x_max: float = 100.0, alpha: float = 0.75, min_count: int = 5):  # fmt: skip
        super().__init__()
        if num_classes not in (None, vocab_size):
            raise ValueError(f"the context table has one row per word: num_classes must equal vocab_size ({vocab_size})")
        if vocab_size < 1 or dim < 1 or window < 1 or x_max <= 0 or min_count < 1:
            raise ValueError("GloVe needs vocab_size, dim, window, min_count >= 1 and x_max > 0")
        self.vocab_size, self.dim, self.window, self.x_max, self.alpha, self.min_count = vocab_size, dim, window, x_max, alpha, min_count
        init = lambda *shape: nn.Parameter((torch.rand(*shape) - 0.5) / dim)  # noqa: E731  (glove.c's initialize_parameters)
        self.w, self.w_context, self.b, self.b_context = init(vocab_size, dim), init(vocab_size, dim), init(vocab_size), init(vocab_size)
        for name, p in (("g_w", self.w), ("g_context", self.w_context), ("g_b", self.b), ("g_b_context", self.b_context)):
            self.register_buffer(name, torch.ones_like(p.data))  # AdaGrad's sums of squares start at 1 (glove.c)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.vectors()[ids]

    def vectors(self) -> torch.Tensor:
        return (self.w + self.w_context).detach()

    def weight(self, x: torch.Tensor) -> torch.Tensor:
        """f(x) = (x / x_max)^alpha below x_max, 1 above."""
        return torch.where(x < self.x_max, (x / self.x_max) ** self.alpha, torch.ones_like(x))

    @torch.no_grad()
    def fit(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """w_i . w~_j + b_i + b~_j: what approximates log X_ij."""
        return (self.w.index_select(0, i) * self.w_context.index_select(0, j)).sum(1) + self.b[i] + self.b_context[j]

    @torch.no_grad()
    def cell_loss(self, i: torch.Tensor, j: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The summed loss 0.5 * f(x) * (fit - log x)^2 of B cells, nothing updated."""
        diff = self.fit(i, j) - torch.log(x)
        return 0.5 * (self.weight(x) * diff.square()).sum()

    @torch.no_grad()
    def glove_step(self, i: torch.Tensor, j: torch.Tensor, x: torch.Tensor, lr: float) -> torch.Tensor:
        """One AdaGrad step on B cells; returns the summed loss 0.5 * f * diff^2 before the step."""
        wi, wj = self.w.index_select(0, i), self.w_context.index_select(0, j)
        diff = (wi * wj).sum(1) + self.b[i] + self.b_context[j] - torch.log(x)
        fdiff = self.weight(x) * diff
        loss = 0.5 * (fdiff * diff).sum()
        g = fdiff.unsqueeze(1)
        _adagrad(self.w.data, self.g_w, i, (g * wj).clamp(-GRAD_CLIP, GRAD_CLIP) * lr)
        _adagrad(self.w_context.data, self.g_context, j, (g * wi).clamp(-GRAD_CLIP, GRAD_CLIP) * lr)
        _adagrad(self.b.data, self.g_b, i, fdiff)
        _adagrad(self.b_context.data, self.g_b_context, j, fdiff)
        return loss


def _adagrad(param: torch.Tensor, sums: torch.Tensor, rows: torch.Tensor, steps: torch.Tensor) -> None:
    """AdaGrad on the rows a batch touches: a row's steps in the batch are summed first (g), then
    G += g^2 and the row moves by -g / sqrt(G), the current step included in G (Duchi et al. 2011,
    torch.optim.Adagrad). glove.c divides by G before adding the cell's own square, one cell at a
    time; summed over a batch that order let a frequent word's bias jump by the sum of ~30 unscaled
    steps at once (G still 1), and Brown's vectors collapsed onto one direction."""
    unique, where = torch.unique(rows, return_inverse=True)
    g = torch.zeros((len(unique), *steps.shape[1:]), dtype=steps.dtype).index_add_(0, where, steps)
    sums.index_add_(0, unique, g.square())
    param.index_add_(0, unique, -g / sums.index_select(0, unique).sqrt())


def _glove(**kwargs) -> GloVe:
    return GloVe(**kwargs)


_VOCAB = 10_000
VARIANTS = {
    "glove": Variant(
        "GloVe: word and context vectors whose dot products fit the log co-occurrence counts (weighted least squares)",
        num_params=2 * _VOCAB * 100 + 2 * _VOCAB, input_size=(_VOCAB, 1), num_classes=_VOCAB, config=GloVeConfig(),
        task="word-vectors", inputs="tokens", train={"optimizer": "adagrad", "lr": 0.5, "schedule": "none", "batch_size": 1024, "epochs": 25},
    ),
}
register_variants(_glove, VARIANTS, paper=PAPER)
