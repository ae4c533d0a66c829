"""Optimizers and learning-rate schedules written from their equations, tested against torch.optim.

    optimizers  SGD, momentum (Polyak 1964), Nesterov (Nesterov 1983; Sutskever et al. 2013),
                AdaGrad (Duchi et al. 2011), RMSProp (Tieleman & Hinton 2012),
                Adam (Kingma & Ba 2014, arXiv:1412.6980) as torch.optim.Optimizer subclasses
    schedules   step decay, exponential decay, cosine annealing (Loshchilov & Hutter 2017),
                linear warmup (Goyal et al. 2017) as plain functions step -> lr multiplier
    clip        gradient clipping by norm (Pascanu et al. 2013) and by value, as torch.nn.utils'
"""

from deepnotes.optim.clip import clip_grad_norm_, clip_grad_value_
from deepnotes.optim.optimizers import (
    OPTIMIZERS,
    SGD,
    Adagrad,
    Adam,
    RMSprop,
    make_optimizer,
)
from deepnotes.optim.schedules import (
    chain,
    cosine_annealing,
    exponential_decay,
    linear_warmup,
    step_decay,
    with_warmup,
)

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adagrad",
    "Adam",
    "RMSprop",
    "chain",
    "clip_grad_norm_",
    "clip_grad_value_",
    "cosine_annealing",
    "exponential_decay",
    "linear_warmup",
    "make_optimizer",
    "step_decay",
    "with_warmup",
]
