"""deepnotes.data.sequence_tasks: shapes, seeds, hand-worked small cases and the chance baselines."""

import math

import pytest
import torch

from deepnotes.data.sequence_tasks import (
    ADDING_BASELINE_MSE,
    IGNORE,
    MarkovChain,
    adding_problem,
    copy_task,
    lookahead_task,
    markov_chain,
    markov_entropy_rate,
    markov_sequences,
    recall_task,
)


def test_recall_task_answer_is_the_first_token_and_distractors_have_their_own_tokens():
    x, y = recall_task(500, 7, vocab=4, seed=1)
    assert x.shape == (500, 8) and y.shape == (500,) and x.dtype == y.dtype == torch.long
    assert torch.equal(y, x[:, 0])
    assert int(y.min()) >= 0 and int(y.max()) <= 3
    assert int(x[:, 1:].min()) >= 4 and int(x[:, 1:].max()) <= 7
    blank, _ = recall_task(10, 5, vocab=4, distractors=1, seed=1)
    assert (blank[:, 1:] == 4).all()


def test_generators_are_seeded_and_leave_the_global_rng_alone():
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    a = recall_task(20, 5, seed=3)
    b = recall_task(20, 5, seed=3)
    c = recall_task(20, 5, seed=4)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    assert torch.equal(torch.rand(1), before)
    assert torch.equal(adding_problem(5, 10, seed=2)[0], adding_problem(5, 10, seed=2)[0])


def test_copy_task_by_hand():
    x, y = copy_task(3, symbols=2, delay=3, vocab=5, seed=0)
    assert x.shape == y.shape == (3, 2 + 3 + 1 + 2)
    for row_x, row_y in zip(x.tolist(), y.tolist()):
        s = row_x[:2]
        assert all(0 <= v < 5 for v in s)
        assert row_x[2:] == [5, 5, 5, 6, 5, 5]  # 3 blanks, the go marker, 2 blanks
        assert row_y == [IGNORE] * 6 + s


def test_adding_problem_marks_two_positions_and_sums_them():
    x, y = adding_problem(400, 20, seed=5)
    assert x.shape == (400, 20, 2) and y.shape == (400,)
    marks = x[..., 1]
    assert torch.equal(marks.sum(1), torch.full((400,), 2.0))
    first, second = [marks[:, :10].argmax(1), 10 + marks[:, 10:].argmax(1)]
    assert (marks[:, :10].sum(1) == 1).all() and (marks[:, 10:].sum(1) == 1).all()  # one mark in each half (Le et al.)
    rows = torch.arange(400)
    assert torch.allclose(y, x[rows, first, 0] + x[rows, second, 0])
    assert 0 <= float(x[..., 0].min()) and float(x[..., 0].max()) <= 1


def test_adding_problem_at_a_given_distance():
    x, y = adding_problem(200, 12, distance=7, seed=0)
    marks = x[..., 1]
    assert (marks[:, 12 - 1 - 7] == 1).all()  # the first mark exactly 7 steps before the last step
    assert (marks[:, : 12 - 1 - 7].sum(1) == 0).all() and (marks[:, 12 - 7 :].sum(1) == 1).all()
    with pytest.raises(ValueError):
        adding_problem(2, 5, distance=5)


def test_adding_baseline_is_one_sixth_not_le_et_al_0_1767():
    assert ADDING_BASELINE_MSE == pytest.approx(1 / 6)
    _, y = adding_problem(200_000, 4, seed=0)
    mse = float(((y - 1.0) ** 2).mean())
    assert mse == pytest.approx(1 / 6, abs=0.003)  # the standard error is about 0.0004
    assert abs(mse - 0.1767) > 0.005


def test_lookahead_by_hand():
    x, y = lookahead_task(4, 6, vocab=5, offset=2, seed=0)
    assert torch.equal(y[:, :4], x[:, 2:]) and (y[:, 4:] == IGNORE).all()
    x, y = lookahead_task(4, 6, vocab=5, offset=-2, seed=0)
    assert torch.equal(y[:, 2:], x[:, :4]) and (y[:, :2] == IGNORE).all()
    x, y = lookahead_task(4, 6, vocab=5, offset=0, seed=0)
    assert torch.equal(x, y)
    with pytest.raises(ValueError):
        lookahead_task(2, 3, offset=3)


def test_markov_entropy_rate_by_hand():
    # a two-state chain: from 0 always to 1; from 1 to 0 or 1 with 1/2 each. Stationary (1/3, 2/3);
    # H = 1/3 * 0 + 2/3 * log 2
    P = torch.tensor([[0.0, 1.0], [0.5, 0.5]], dtype=torch.float64)
    chain = MarkovChain(torch.tensor([1 / 3, 2 / 3], dtype=torch.float64), P)
    assert markov_entropy_rate(chain) == pytest.approx(2 / 3 * math.log(2))


def test_markov_chain_rows_and_sequences_follow_the_transitions():
    chain = markov_chain(6, 2, seed=0)
    P = chain.transition
    assert torch.allclose(P.sum(1), torch.ones(6, dtype=torch.float64))
    assert ((P > 0).sum(1) == 2).all()
    assert torch.allclose(chain.start @ P, chain.start, atol=1e-10)  # stationary
    x = markov_sequences(300, 30, chain, seed=1)
    assert x.shape == (300, 30)
    assert (P[x[:, :-1], x[:, 1:]] > 0).all()  # only allowed transitions occur
    # the true chain's loss on a large sample approaches the entropy rate
    nll = float(-torch.log(P[x[:, :-1], x[:, 1:]]).mean())
    assert nll == pytest.approx(markov_entropy_rate(chain), abs=0.03)
    assert markov_entropy_rate(chain) <= math.log(2) + 1e-12  # two successors: at most log 2 nats


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_bad_sizes_are_value_errors(bad):
    with pytest.raises(ValueError):
        recall_task(bad, 3)
    with pytest.raises(ValueError):
        copy_task(2, bad, 3)
