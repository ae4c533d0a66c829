"""Scratch optimizers follow torch.optim's trajectories step by step; schedules equal torch's.

Optimizer tolerance: float64, rtol = 1e-8, atol = 1e-10, checked on every parameter after
every one of 100 steps (parameters are O(0.01 - 1)). SGD, momentum, Nesterov, AdaGrad and
plain RMSProp do the same arithmetic as torch in the same order and agree bit for bit here.
Adam and centered RMSProp write the formulas in a different order than torch (e.g.
m_hat / (sqrt(v_hat) + eps) vs torch's step_size * m / (sqrt(v) / sqrt(bc2) + eps), and
beta1 m + (1 - beta1) g vs torch's lerp): ~1e-16 relative per step, which the oscillating
dynamics amplify over 100 steps to at most 6e-13 absolute (measured) - 150x below atol.
Convention mistakes are far larger: eps inside instead of outside the square root moves each
Adam step by ~1e-5 relative (~1e-7 absolute), a missing bias correction by a factor up to 10,
buf = mu buf + (1 - mu) g instead of mu buf + g by a factor 10.

Schedule tolerance: relative 1e-12 (plus 1e-15 absolute for lrs that reach 0). torch computes
most of its schedulers recursively (lr_t from lr_{t-1}), so its rounding accumulates over the
run: ~t * 1e-16, i.e. < 1e-13 over the runs here.
"""

import copy
import functools
import io
import math

import pytest
import torch
from torch import nn

from deepnotes.optim import optimizers as O
from deepnotes.optim import schedules as S

TOL = {"rtol": 1e-8, "atol": 1e-10}
STEPS = 100


def mlp_problem(seed=0):
    """A 6-16-3 tanh MLP and a fixed regression batch, float64."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    x = torch.randn(64, 6, generator=g, dtype=torch.float64)
    y = torch.randn(64, 3, generator=g, dtype=torch.float64)

    def loss_fn(m):
        return nn.functional.mse_loss(m(x), y)

    return model, loss_fn


class Rosenbrock(nn.Module):
    """f(a, b) = (1 - a)^2 + 100 (b - a^2)^2: a curved, badly conditioned valley (minimum at (1, 1))."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([-1.5, 2.0], dtype=torch.float64))

    def forward(self):
        a, b = self.w
        return (1 - a) ** 2 + 100 * (b - a**2) ** 2


def rosenbrock_problem(seed=0):
    return Rosenbrock(), lambda m: m()


def run_both(problem, scratch_cls, torch_cls, kwargs, steps=STEPS, param_groups=None):
    """Optimize two copies with the two optimizers; compare all parameters after every step."""
    model, loss_fn = problem()
    twin = copy.deepcopy(model)
    groups = param_groups or (lambda m: m.parameters())
    ours, ref = scratch_cls(groups(model), **kwargs), torch_cls(groups(twin), **kwargs)
    for step in range(steps):
        for m, opt in ((model, ours), (twin, ref)):
            opt.zero_grad()
            loss_fn(m).backward()
            opt.step()
        for (name, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
            torch.testing.assert_close(p, q, **TOL, msg=lambda msg, name=name, step=step: f"step {step}, {name}: {msg}")
    return model, ours


CASES = [
    pytest.param(O.SGD, torch.optim.SGD, {"lr": 0.1}, id="sgd"),
    pytest.param(O.SGD, torch.optim.SGD, {"lr": 0.1, "weight_decay": 0.01}, id="sgd-wd"),
    pytest.param(O.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}, id="momentum0.9"),
    pytest.param(O.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.01}, id="momentum0.5-wd"),
    pytest.param(O.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.1}, id="momentum-dampening"),
    pytest.param(O.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}, id="nesterov0.9"),
    pytest.param(O.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.7, "nesterov": True, "weight_decay": 0.01}, id="nesterov0.7-wd"),
    pytest.param(O.Adagrad, torch.optim.Adagrad, {"lr": 0.1}, id="adagrad"),
    pytest.param(
        O.Adagrad,
        torch.optim.Adagrad,
        {"lr": 0.1, "weight_decay": 0.01, "lr_decay": 0.01, "initial_accumulator_value": 0.1},
        id="adagrad-wd-decay-init",
    ),
    pytest.param(O.RMSprop, torch.optim.RMSprop, {"lr": 0.01}, id="rmsprop"),
    pytest.param(O.RMSprop, torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.9, "weight_decay": 0.01}, id="rmsprop-alpha0.9-wd"),
    pytest.param(O.RMSprop, torch.optim.RMSprop, {"lr": 0.005, "momentum": 0.9, "centered": True}, id="rmsprop-momentum-centered"),
    pytest.param(O.Adam, torch.optim.Adam, {"lr": 0.01}, id="adam"),
    pytest.param(O.Adam, torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.01}, id="adam-wd"),
    pytest.param(O.Adam, torch.optim.Adam, {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6}, id="adam-betas-eps"),
]


@pytest.mark.parametrize(("scratch_cls", "torch_cls", "kwargs"), CASES)
def test_same_trajectory_as_torch_mlp(scratch_cls, torch_cls, kwargs):
    model, _ = run_both(mlp_problem, scratch_cls, torch_cls, kwargs)
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize(
    ("scratch_cls", "torch_cls", "kwargs"),
    [
        pytest.param(O.SGD, torch.optim.SGD, {"lr": 1e-3}, id="sgd"),
        pytest.param(O.SGD, torch.optim.SGD, {"lr": 2e-4, "momentum": 0.9}, id="momentum"),
        pytest.param(O.SGD, torch.optim.SGD, {"lr": 2e-4, "momentum": 0.9, "nesterov": True}, id="nesterov"),
        pytest.param(O.Adagrad, torch.optim.Adagrad, {"lr": 0.1}, id="adagrad"),
        pytest.param(O.RMSprop, torch.optim.RMSprop, {"lr": 0.01}, id="rmsprop"),
        pytest.param(O.Adam, torch.optim.Adam, {"lr": 0.05}, id="adam"),
    ],
)
def test_same_trajectory_as_torch_rosenbrock(scratch_cls, torch_cls, kwargs):
    model, _ = run_both(rosenbrock_problem, scratch_cls, torch_cls, kwargs)
    assert model().item() < Rosenbrock()().item()  # and it made progress from f(-1.5, 2) = 12.5


def test_param_groups_and_lr_scheduler():
    """Per-group hyperparameters, and an LR scheduler changing group['lr'] between steps."""

    def groups(m):
        return [{"params": m[0].parameters()}, {"params": m[2].parameters(), "lr": 0.005, "weight_decay": 0.1}]

    model, loss_fn = mlp_problem()
    twin = copy.deepcopy(model)
    ours, ref = O.Adam(groups(model), lr=0.02), torch.optim.Adam(groups(twin), lr=0.02)
    fn = S.with_warmup(functools.partial(S.cosine_annealing, total_steps=40), 10, start_factor=0.1)
    sched_ours, sched_ref = (torch.optim.lr_scheduler.LambdaLR(o, fn) for o in (ours, ref))
    for _ in range(50):
        for m, opt, sched in ((model, ours, sched_ours), (twin, ref, sched_ref)):
            opt.zero_grad()
            loss_fn(m).backward()
            opt.step()
            sched.step()
        for p, q in zip(model.parameters(), twin.parameters(), strict=True):
            torch.testing.assert_close(p, q, **TOL)
    assert ours.param_groups[1]["lr"] == pytest.approx(0.005 * S.cosine_annealing(40, 40), abs=1e-15)


def test_closure_returns_loss():
    model, loss_fn = mlp_problem()
    opt = O.SGD(model.parameters(), lr=0.1)

    def closure():
        opt.zero_grad()
        loss = loss_fn(model)
        loss.backward()
        return loss

    first = opt.step(closure).item()
    assert first == pytest.approx(loss_fn(mlp_problem()[0]).item())
    assert opt.step(closure).item() < first


def hand_steps(opt_cls, kwargs, grads):
    """Run opt on a scalar parameter starting at 1.0 with the given sequence of gradients."""
    w = nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = opt_cls([w], **kwargs)
    out = []
    for g in grads:
        w.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        out.append(w.item())
    return out


def test_hand_worked_updates():
    """Small enough to check with a pencil."""
    # momentum: v1 = 1, w = 1 - 0.1 = 0.9; v2 = 0.5 * 1 + 1 = 1.5, w = 0.9 - 0.15 = 0.75
    assert hand_steps(O.SGD, {"lr": 0.1, "momentum": 0.5}, [1.0, 1.0]) == pytest.approx([0.9, 0.75])
    # Nesterov: v1 = 1, step g + mu v1 = 1.5 -> 0.85; v2 = 1.5, step 1 + 0.5 * 1.5 = 1.75 -> 0.675
    assert hand_steps(O.SGD, {"lr": 0.1, "momentum": 0.5, "nesterov": True}, [1.0, 1.0]) == pytest.approx([0.85, 0.675])
    # AdaGrad: s = 4, w = 1 - 0.1 * 2 / 2 = 0.9; s = 4 + 16 = 20, w = 0.9 - 0.1 * 4 / sqrt(20)
    assert hand_steps(O.Adagrad, {"lr": 0.1, "eps": 0.0}, [2.0, 4.0]) == pytest.approx([0.9, 0.9 - 0.4 / math.sqrt(20)])
    # RMSProp (alpha 0.75): s = 0.25 * 4 = 1, w = 1 - 0.1 * 2 / 1 = 0.8
    assert hand_steps(O.RMSprop, {"lr": 0.1, "alpha": 0.75, "eps": 0.0}, [2.0]) == pytest.approx([0.8])
    # Adam: after bias correction the first step is lr * g / |g| = lr, whatever the gradient's size
    assert hand_steps(O.Adam, {"lr": 0.1, "eps": 0.0}, [1e-3]) == pytest.approx([0.9])
    assert hand_steps(O.Adam, {"lr": 0.1, "eps": 0.0}, [-50.0]) == pytest.approx([1.1])


def save_and_load(state_dict: dict) -> dict:
    """Through bytes, as a checkpoint file would be."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer)


@pytest.mark.parametrize("name", list(O.OPTIMIZERS))
def test_state_dict_round_trip(name):
    """30 steps, checkpoint, rebuild, 30 more == 60 uninterrupted steps (bit for bit)."""
    make = functools.partial(O.make_optimizer, name, lr=0.01, momentum=0.9, weight_decay=1e-3)

    def train(model, opt, loss_fn, steps):
        for _ in range(steps):
            opt.zero_grad()
            loss_fn(model).backward()
            opt.step()

    straight, loss_fn = mlp_problem()
    opt = make(straight.parameters())
    train(straight, opt, loss_fn, 60)

    first, _ = mlp_problem()
    opt = make(first.parameters())
    train(first, opt, loss_fn, 30)
    checkpoint = save_and_load({"model": first.state_dict(), "optimizer": opt.state_dict()})
    resumed, _ = mlp_problem(seed=1)  # different starting weights, overwritten by the checkpoint
    resumed.load_state_dict(checkpoint["model"])
    opt = make(resumed.parameters(), lr=123.0)  # the checkpoint's hyperparameters win
    opt.load_state_dict(checkpoint["optimizer"])
    assert opt.param_groups[0]["lr"] == 0.01
    train(resumed, opt, loss_fn, 30)
    for p, q in zip(resumed.parameters(), straight.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("name", list(O.OPTIMIZERS))
def test_torch_checkpoint_continues_in_scratch_optimizer(name):
    """State has torch.optim's names, so a torch.optim checkpoint resumes in the scratch optimizer."""
    model, loss_fn = mlp_problem()
    ref = O.make_optimizer(name, model.parameters(), lr=0.01, weight_decay=1e-3, reference=True)
    for _ in range(20):
        ref.zero_grad()
        loss_fn(model).backward()
        ref.step()
    twin = copy.deepcopy(model)
    ours = O.make_optimizer(name, twin.parameters(), lr=0.01, weight_decay=1e-3)
    ours.load_state_dict(save_and_load(ref.state_dict()))
    for _ in range(20):
        for m, opt in ((model, ref), (twin, ours)):
            opt.zero_grad()
            loss_fn(m).backward()
            opt.step()
        for p, q in zip(twin.parameters(), model.parameters(), strict=True):
            torch.testing.assert_close(p, q, **TOL)


def test_make_optimizer_and_registry():
    assert set(O.OPTIMIZERS) == {
        "scratch-sgd",
        "scratch-momentum",
        "scratch-nesterov",
        "scratch-adagrad",
        "scratch-rmsprop",
        "scratch-adam",
    }
    params = [nn.Parameter(torch.zeros(3))]
    sgd = O.make_optimizer("scratch-sgd", params, lr=0.1)
    assert isinstance(sgd, O.SGD) and sgd.defaults["momentum"] == 0
    nesterov = O.make_optimizer("scratch-nesterov", params, lr=0.1, momentum=0.8, weight_decay=0.01)
    assert nesterov.defaults["nesterov"] and nesterov.defaults["momentum"] == 0.8 and nesterov.defaults["weight_decay"] == 0.01
    momentum = O.make_optimizer("scratch-momentum", params, lr=0.1)
    assert not momentum.defaults["nesterov"] and momentum.defaults["momentum"] == 0.9
    assert isinstance(O.make_optimizer("scratch-adam", params, lr=1e-3), O.Adam)
    assert isinstance(O.make_optimizer("scratch-adam", params, lr=1e-3, reference=True), torch.optim.Adam)
    assert O.make_optimizer("scratch-rmsprop", params, lr=1e-3).defaults["momentum"] == 0  # papers' form
    with pytest.raises(KeyError, match="unknown optimizer"):
        O.make_optimizer("scratch-lion", params, lr=1e-3)
    with pytest.raises(ValueError, match="Nesterov"):
        O.SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="learning rate"):
        O.Adam(params, lr=-1.0)


# ----------------------------------------------------------------------------- schedules


def torch_lrs(make_scheduler, steps: int, base_lr: float = 0.1) -> list[float]:
    """The lr torch's scheduler sets for steps 0 .. steps-1 (scheduler.step() after each)."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=base_lr)
    scheduler = make_scheduler(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return lrs


def assert_schedule_equal(fn, make_scheduler, steps: int, base_lr: float = 0.1) -> None:
    expected = torch_lrs(make_scheduler, steps, base_lr)
    for t, lr in enumerate(expected):
        assert base_lr * fn(t) == pytest.approx(lr, rel=1e-12, abs=1e-15), f"step {t}"


LR = torch.optim.lr_scheduler


@pytest.mark.parametrize(("step_size", "gamma"), [(10, 0.1), (7, 0.5), (1, 0.9)])
def test_step_decay_equals_steplr(step_size, gamma):
    assert_schedule_equal(
        functools.partial(S.step_decay, step_size=step_size, gamma=gamma),
        lambda opt: LR.StepLR(opt, step_size=step_size, gamma=gamma),
        60,
    )


@pytest.mark.parametrize("gamma", [0.95, 0.7])
def test_exponential_decay_equals_exponentiallr(gamma):
    assert_schedule_equal(functools.partial(S.exponential_decay, gamma=gamma), lambda opt: LR.ExponentialLR(opt, gamma), 80)


@pytest.mark.parametrize(("total", "eta_min"), [(50, 0.0), (50, 0.01), (17, 0.001)])
def test_cosine_equals_cosineannealinglr(total, eta_min):
    base = 0.1
    assert_schedule_equal(
        functools.partial(S.cosine_annealing, total_steps=total, floor=eta_min / base),
        lambda opt: LR.CosineAnnealingLR(opt, T_max=total, eta_min=eta_min),
        total + 1,  # steps 0 .. total inclusive: from base down to eta_min
        base,
    )
    assert S.cosine_annealing(total + 5, total, floor=0.2) == 0.2  # stays at the floor afterwards


@pytest.mark.parametrize(("warmup", "start"), [(10, 1 / 3), (5, 0.01), (1, 0.5)])
def test_linear_warmup_equals_linearlr(warmup, start):
    assert_schedule_equal(
        functools.partial(S.linear_warmup, warmup_steps=warmup, start_factor=start),
        lambda opt: LR.LinearLR(opt, start_factor=start, total_iters=warmup),
        warmup + 10,
    )


def test_warmup_then_cosine_equals_sequentiallr():
    warmup, total = 5, 30
    fn = S.with_warmup(functools.partial(S.cosine_annealing, total_steps=total - warmup, floor=0.1), warmup, 0.2)
    assert_schedule_equal(
        fn,
        lambda opt: LR.SequentialLR(
            opt,
            [LR.LinearLR(opt, start_factor=0.2, total_iters=warmup), LR.CosineAnnealingLR(opt, total - warmup, eta_min=0.01)],
            milestones=[warmup],
        ),
        total + 1,
    )


def test_warmup_then_step_equals_sequentiallr():
    fn = S.with_warmup(functools.partial(S.step_decay, step_size=4, gamma=0.5), 3, 0.25)
    assert_schedule_equal(
        fn,
        lambda opt: LR.SequentialLR(
            opt, [LR.LinearLR(opt, start_factor=0.25, total_iters=3), LR.StepLR(opt, 4, 0.5)], milestones=[3]
        ),
        25,
    )


def test_chained_warmup_and_exponential_equals_chainedscheduler():
    fn = S.chain(functools.partial(S.linear_warmup, warmup_steps=8, start_factor=0.1), functools.partial(S.exponential_decay, gamma=0.97))
    assert_schedule_equal(
        fn,
        lambda opt: LR.ChainedScheduler([LR.LinearLR(opt, start_factor=0.1, total_iters=8), LR.ExponentialLR(opt, 0.97)]),
        40,
    )


def test_schedules_hand_worked_and_errors():
    assert [S.step_decay(t, 3, 0.5) for t in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    assert S.cosine_annealing(0, 10) == 1.0 and S.cosine_annealing(5, 10) == pytest.approx(0.5) and S.cosine_annealing(10, 10) == 0.0
    assert [S.linear_warmup(t, 4, 0.0) for t in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    for bad in (lambda: S.step_decay(0, 0), lambda: S.cosine_annealing(0, 0), lambda: S.linear_warmup(0, 0)):
        with pytest.raises(ValueError):
            bad()
