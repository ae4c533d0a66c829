"""Tracing helpers shared by the explain modules: which torch calls follow a tensor, and eval
mode that puts every submodule's flag back.

    with OpChain() as chain:          # a TorchFunctionMode: records every call on tracked tensors
        chain.start(features)          # ... from this tensor on
        logits = head(features)
    op, description = linear_after(chain.ops, features, logits, allow_average=True)

CAM and the class templates use the chain to check what a network really does with a layer's
output (only pass-through ops, averages and one linear layer may follow); the layer table's
tracer (summary) uses the tensor walkers; the attacks use eval_mode.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode


def display_name(model: nn.Module, model_name: str | None = None) -> str:
    """The name to show in messages: the registered name when known, else the class name."""
    return model_name or type(model).__name__


def tensors(obj: Any) -> Iterable[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from tensors(o)


def first_tensor(obj: Any) -> torch.Tensor | None:
    return next(iter(tensors(obj)), None)


def func_name(func: Any) -> str:
    name = getattr(func, "__name__", "")
    if name == "__get__":  # a Tensor property such as .T or .mT
        name = getattr(getattr(func, "__self__", None), "__name__", "")
    return name


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the duration; every submodule's own training flag is put back afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for m, flag in flags:
            m.training = flag


@dataclass
class Op:
    name: str
    args: tuple
    kwargs: dict
    inputs: list[torch.Tensor]  # the traced tensors among the arguments
    out: torch.Tensor


class OpChain(TorchFunctionMode):
    """Records every torch call that consumes a tensor derived from `start(t)` (CAM's and the
    templates' structural check: what the network really does with a layer's output)."""

    def __init__(self) -> None:
        super().__init__()
        self.tracked: dict[int, torch.Tensor] = {}  # id -> tensor (kept alive, so ids stay unique)
        self.ops: list[Op] = []

    def start(self, t: torch.Tensor) -> None:
        self.tracked[id(t)] = t

    def _is_tracked(self, t: torch.Tensor) -> bool:
        return self.tracked.get(id(t)) is t

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.tracked:
            ins = [t for t in tensors((args, kwargs)) if self._is_tracked(t)]
            outs = list(tensors(out)) if ins else []
            if outs:
                self.ops.append(Op(func_name(func), args, kwargs, ins, outs[0]))
                for o in outs:
                    self.tracked[id(o)] = o
        return out


# ops that only rearrange or (in eval mode) pass values through
_PASS = {"flatten", "view", "reshape", "squeeze", "unsqueeze", "contiguous", "clone", "view_as", "reshape_as"}
_DROPOUT = {"dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout", "feature_dropout"}
_AVERAGE = {"adaptive_avg_pool2d", "avg_pool2d", "mean", "adaptive_avg_pool1d", "avg_pool1d"}


def linear_after(ops: list[Op], start: torch.Tensor, output: torch.Tensor, allow_average: bool) -> tuple[Op | None, str]:
    """If `start` reaches `output` through one chain of pass-through ops (plus averages when
    allow_average) and exactly one F.linear whose result is `output`, return that linear op.
    Otherwise (None, a description of what follows `start`)."""
    desc = " -> ".join(describe_op(op) for op in ops[:8]) + (" -> ..." if len(ops) > 8 else "")
    desc = desc or "nothing the tracer could follow"
    head, linear = start, None
    for op in ops:
        if len(op.inputs) != 1 or op.inputs[0] is not head or linear is not None:
            return None, desc  # a branch, a merge, or something after the linear layer
        name = op.name
        if name == "linear":
            linear = op
        elif name in _DROPOUT:
            training = op.kwargs.get("training", op.args[2] if len(op.args) > 2 else True)
            if training:
                return None, desc
        elif name not in _PASS and not (allow_average and name in _AVERAGE):
            return None, desc
        head = op.out
    if linear is None or linear.out is not output:
        return None, desc
    return linear, desc


def describe_op(op: Op) -> str:
    if op.name == "adaptive_avg_pool2d" and len(op.args) > 1:
        return f"adaptive_avg_pool2d({op.args[1]})"
    if op.name == "linear":
        w = op.args[1] if len(op.args) > 1 else op.kwargs.get("weight")
        return f"linear({w.shape[1]}->{w.shape[0]})" if isinstance(w, torch.Tensor) else "linear"
    return op.name


def linear_weight(op: Op) -> tuple[torch.Tensor, torch.Tensor | None]:
    w = op.args[1] if len(op.args) > 1 else op.kwargs["weight"]
    b = op.args[2] if len(op.args) > 2 else op.kwargs.get("bias")
    return w, b
