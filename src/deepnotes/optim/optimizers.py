"""SGD, momentum, Nesterov, AdaGrad, RMSProp and Adam written from their update equations.

Each is a torch.optim.Optimizer subclass: it works with param groups, closures, LR schedulers
(which change group["lr"]) and state_dict()/load_state_dict(). The per-parameter state uses
the same names as torch.optim ("momentum_buffer", "sum", "square_avg", "exp_avg",
"exp_avg_sq", "step"), so a checkpoint of one loads into the other.

Papers:
    momentum  Polyak 1964, "Some methods of speeding up the convergence of iteration methods"
    Nesterov  Nesterov 1983, "A method for solving the convex programming problem with
              convergence rate O(1/k^2)"; in deep learning form Sutskever, Martens, Dahl &
              Hinton 2013, "On the importance of initialization and momentum in deep learning"
    AdaGrad   Duchi, Hazan & Singer 2011, "Adaptive Subgradient Methods for Online Learning
              and Stochastic Optimization", JMLR 12
    RMSProp   Tieleman & Hinton 2012, Coursera "Neural Networks for Machine Learning",
              lecture 6.5
    Adam      Kingma & Ba 2014, "Adam: A Method for Stochastic Optimization", arXiv:1412.6980

Conventions follow torch.optim's defaults where the papers leave room (noted per class).
Weight decay everywhere is the L2 form g <- g + weight_decay * w (added to the gradient).
Sparse gradients are not supported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch.optim import Optimizer

__all__ = ["OPTIMIZERS", "SGD", "Adagrad", "Adam", "RMSprop", "make_optimizer"]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _grad(p: torch.Tensor, weight_decay: float) -> torch.Tensor:
    """The gradient of p, plus the L2 weight-decay term (a new tensor; p.grad is not changed)."""
    if p.grad.is_sparse:
        raise RuntimeError("the scratch optimizers do not support sparse gradients")
    return p.grad.add(p, alpha=weight_decay) if weight_decay != 0 else p.grad


def _advance(state: dict) -> float:
    """Increment the step counter t (a tensor, as torch.optim keeps it) and return t."""
    if "step" not in state:
        state["step"] = torch.tensor(0.0)
    elif not isinstance(state["step"], torch.Tensor):
        state["step"] = torch.tensor(float(state["step"]))
    state["step"] += 1
    return float(state["step"])


class _Scratch(Optimizer):
    """The step() skeleton: evaluate the closure, then update each parameter that has a gradient."""

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, self.state[p], group)
        return loss

    def _update(self, p: torch.Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError


class SGD(_Scratch):
    """Stochastic gradient descent, with optional momentum (Polyak 1964) and Nesterov momentum.

    With g = grad + weight_decay * w:

        plain      w <- w - lr g
        momentum   v <- mu v + (1 - dampening) g        (v = g at the first step)
                   w <- w - lr v
        Nesterov   w <- w - lr (g + mu v)               (v updated as above)

    This is torch.optim.SGD's convention. The notes' (cs231n) form v <- mu v - lr g,
    w <- w + v is the same trajectory while lr is constant (their v is -lr times this v);
    they differ once a schedule changes lr. The Nesterov line is Sutskever et al.'s (2013)
    look-ahead gradient rewritten in terms of the current weights: the step uses the
    velocity after this update, g + mu v, instead of v.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        _check(lr >= 0, f"invalid learning rate {lr}")
        _check(momentum >= 0, f"invalid momentum {momentum}")
        _check(weight_decay >= 0, f"invalid weight_decay {weight_decay}")
        _check(not nesterov or (momentum > 0 and dampening == 0), "Nesterov momentum needs momentum > 0 and dampening 0")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay, "nesterov": nesterov}
        super().__init__(params, defaults)

    def _update(self, p, state, group):
        g = _grad(p, group["weight_decay"])
        mu = group["momentum"]
        if mu != 0:
            v = state.get("momentum_buffer")
            if v is None:
                v = state["momentum_buffer"] = g.clone()
            else:
                v.mul_(mu).add_(g, alpha=1 - group["dampening"])
            g = g.add(v, alpha=mu) if group["nesterov"] else v
        p.add_(g, alpha=-group["lr"])


class Adagrad(_Scratch):
    """AdaGrad (Duchi et al. 2011): divide by the root of the sum of all past squared gradients.

        s <- s + g^2                            (s starts at initial_accumulator_value)
        w <- w - lr_t g / (sqrt(s) + eps),      lr_t = lr / (1 + (t - 1) lr_decay)

    s only grows, so the effective step lr / sqrt(s) shrinks toward 0 (C17). torch's
    defaults: eps = 1e-10 added outside the square root, initial_accumulator_value = 0.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ):
        _check(lr >= 0, f"invalid learning rate {lr}")
        _check(lr_decay >= 0, f"invalid lr_decay {lr_decay}")
        _check(weight_decay >= 0, f"invalid weight_decay {weight_decay}")
        _check(initial_accumulator_value >= 0, f"invalid initial_accumulator_value {initial_accumulator_value}")
        _check(eps >= 0, f"invalid eps {eps}")
        defaults = {
            "lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay, "initial_accumulator_value": initial_accumulator_value, "eps": eps
        }
        super().__init__(params, defaults)

    def _update(self, p, state, group):
        if "sum" not in state:
            state["sum"] = torch.full_like(p, group["initial_accumulator_value"])
        t = _advance(state)
        g = _grad(p, group["weight_decay"])
        s = state["sum"]
        s.addcmul_(g, g)
        lr_t = group["lr"] / (1 + (t - 1) * group["lr_decay"])
        p.addcdiv_(g, s.sqrt().add_(group["eps"]), value=-lr_t)


class RMSprop(_Scratch):
    """RMSProp (Tieleman & Hinton 2012): AdaGrad with a moving average instead of a sum.

        s <- alpha s + (1 - alpha) g^2                    (s starts at 0)
        w <- w - lr g / (sqrt(s) + eps)

    Old gradients are forgotten, so the step no longer shrinks to 0 (C17). torch's defaults:
    alpha = 0.99, eps = 1e-8 added outside the square root. Options as torch.optim.RMSprop:
    momentum > 0 keeps b <- momentum b + g / (sqrt(s) + eps) and steps w <- w - lr b;
    centered=True divides by the estimated standard deviation sqrt(s - m^2) (Graves 2013),
    m the moving average of g.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ):
        _check(lr >= 0, f"invalid learning rate {lr}")
        _check(0 <= alpha <= 1, f"invalid alpha {alpha}")
        _check(eps >= 0, f"invalid eps {eps}")
        _check(weight_decay >= 0, f"invalid weight_decay {weight_decay}")
        _check(momentum >= 0, f"invalid momentum {momentum}")
        defaults = {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay, "momentum": momentum, "centered": centered}
        super().__init__(params, defaults)

    def _update(self, p, state, group):
        if "square_avg" not in state:
            state["square_avg"] = torch.zeros_like(p)
        _advance(state)
        g = _grad(p, group["weight_decay"])
        alpha = group["alpha"]
        s = state["square_avg"]
        s.mul_(alpha).addcmul_(g, g, value=1 - alpha)
        if group["centered"]:
            m = state.setdefault("grad_avg", torch.zeros_like(p))
            m.mul_(alpha).add_(g, alpha=1 - alpha)
            denom = (s - m * m).sqrt_().add_(group["eps"])
        else:
            denom = s.sqrt().add_(group["eps"])
        if group["momentum"] > 0:
            b = state.setdefault("momentum_buffer", torch.zeros_like(p))
            b.mul_(group["momentum"]).addcdiv_(g, denom)
            p.add_(b, alpha=-group["lr"])
        else:
            p.addcdiv_(g, denom, value=-group["lr"])


class Adam(_Scratch):
    """Adam (Kingma & Ba 2014): momentum on g and RMSProp on g^2, both bias-corrected.

        m <- beta1 m + (1 - beta1) g            v <- beta2 v + (1 - beta2) g^2
        m_hat = m / (1 - beta1^t)               v_hat = v / (1 - beta2^t)
        w <- w - lr m_hat / (sqrt(v_hat) + eps)

    m and v start at 0, so without the corrections the first steps would be biased toward 0.
    eps is added to sqrt(v_hat), as in the paper's Algorithm 1 and torch.optim.Adam (not to
    sqrt(v), as in the paper's "more efficient" variant). Defaults are the paper's:
    lr = 1e-3, betas = (0.9, 0.999), eps = 1e-8. weight_decay is L2 added to g (Adam, not AdamW).
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        _check(lr >= 0, f"invalid learning rate {lr}")
        _check(0 <= betas[0] < 1 and 0 <= betas[1] < 1, f"invalid betas {betas}")
        _check(eps >= 0, f"invalid eps {eps}")
        _check(weight_decay >= 0, f"invalid weight_decay {weight_decay}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay})

    def _update(self, p, state, group):
        if "exp_avg" not in state:
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        t = _advance(state)
        g = _grad(p, group["weight_decay"])
        beta1, beta2 = group["betas"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.mul_(beta1).add_(g, alpha=1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        p.addcdiv_(m_hat, v_hat.sqrt_().add_(group["eps"]), value=-group["lr"])


# name -> optimizer class; scratch-momentum and scratch-nesterov are SGD with momentum set
# (make_optimizer fills in the arguments).
OPTIMIZERS: dict[str, type[Optimizer]] = {
    "scratch-sgd": SGD,
    "scratch-momentum": SGD,
    "scratch-nesterov": SGD,
    "scratch-adagrad": Adagrad,
    "scratch-rmsprop": RMSprop,
    "scratch-adam": Adam,
}

_TORCH_COUNTERPARTS: dict[str, type[Optimizer]] = {
    "scratch-sgd": torch.optim.SGD,
    "scratch-momentum": torch.optim.SGD,
    "scratch-nesterov": torch.optim.SGD,
    "scratch-adagrad": torch.optim.Adagrad,
    "scratch-rmsprop": torch.optim.RMSprop,
    "scratch-adam": torch.optim.Adam,
}


def make_optimizer(
    name: str,
    params: Iterable,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    *,
    reference: bool = False,
) -> Optimizer:
    """The optimizer `name` (a key of OPTIMIZERS) over params.

    `momentum` is used by scratch-momentum and scratch-nesterov only; the adaptive methods
    run with their papers' defaults (RMSProp without momentum, Adam betas (0.9, 0.999)).
    reference=True returns torch.optim's implementation with the same hyperparameters
    (the fused counterpart, for checks and speed comparisons).
    """
    if name not in OPTIMIZERS:
        raise KeyError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    kwargs: dict = {"lr": lr, "weight_decay": weight_decay}
    if name in ("scratch-momentum", "scratch-nesterov"):
        kwargs.update(momentum=momentum, nesterov=name == "scratch-nesterov")
    cls = (_TORCH_COUNTERPARTS if reference else OPTIMIZERS)[name]
    return cls(params, **kwargs)
