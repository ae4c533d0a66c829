"""The task seam: what differs between kinds of training, behind one interface the engine calls.

A task is a class (one per file in deepnotes/tasks/, registered with register_task); the engine
(deepnotes.train.engine) makes one instance per run and calls it at fixed points, in the manner
of Lightning's LightningModule (the task owns its step, the engine owns the loop):

    task = Task(cfg, device)
    task.setup(data, source)              model arguments, batches, classes, how inputs are prepared
    core = task.build(model)              the module that sees the batches (may wrap the model)
    optimizers = task.configure_optimizers(params)
    per step:   batch = task.before_step(batch)                    outside autocast
                out = task.training_step(net, batch)                 inside autocast
                (engine: zero_grad, backward, step, unless task.manual_optimization)
    per epoch:  task.train_record(sums, seen), ev = task.evaluate(core, test_batches), task.test_record(ev)
    at the end: task.summary(history, ev), task.write_figures(...), task.report(metrics)

The engine keeps what every task shares: the run directory, resume, DDP, Ctrl-C, progress,
checkpoint cadence, precision and schedules. It names no task.

How the kinds of training still to come fit:
- detection: batches of (images, list of boxes per image); training_step returns the sum of
  the loss dict as `loss` and each part in `sums`; evaluate computes mAP.
- translation and language models: batches of token ids with padding masks; sums count tokens,
  sample_name = "tokens"; evaluate gives perplexity / BLEU; commands ("translate", "generate").
- a GAN: manual_optimization = True; configure_optimizers returns the generator's and the
  discriminator's optimizers; training_step does both updates itself (zero_grad, backward,
  step on each, under self.autocast()) and returns the losses in `sums`; the engine saves both
  optimizers and schedules in the checkpoint and steps every schedule once per step.
- diffusion: training_step draws the noise level and the noise from the global torch RNG (so a
  resumed run draws the same ones: the checkpoint saves that RNG); the sampler is the task's
  (a "generate" command and a figure of samples in write_figures); state_dict() carries any
  extra state such as an EMA of the weights.
- CLIP: batches of (images, token ids) pairs; training_step computes the contrastive loss;
  evaluate gives zero-shot accuracy by prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from deepnotes.errors import UserError
from deepnotes.report.html import ReportParts
from deepnotes.rundir import RunConfig
from deepnotes.train.config import TASK_OPTIONS, TrainConfig, option_flag
from deepnotes.train.engine import autocast
from deepnotes.train.optim import build_optimizer


class Target(NamedTuple):
    """The headline metric of a task: what --target-accuracy is a target for."""

    key: str  # a key of the per-epoch record, e.g. "test_accuracy"
    label: str  # how it is named in messages, e.g. "test accuracy"
    higher_is_better: bool = True
    percent: bool = True  # shown as a percentage (else with 4 significant digits)
    upper: float | None = 1.0  # the largest value the metric takes (a fraction: 1; BLEU: 100; a loss: None)

    def format(self, value: float) -> str:
        return f"{value:.2%}" if self.percent else f"{value:.4g}"

    def reached(self, value: float, target: float) -> bool:
        return value >= target if self.higher_is_better else value <= target


@dataclass
class StepOutput:
    """What one training step gives the engine.

    loss: the tensor backward() runs on (automatic optimization; ignored in manual mode).
    sums: numbers summed over the batch, kept as running totals for the epoch and passed to
    train_record; "loss" (the loss times the batch size) is required: a non-finite total stops
    the run. Values are tensors on the device (no host sync per step) or Python numbers.
    count: the samples in the batch (for the means and the throughput).
    """

    loss: torch.Tensor
    sums: dict[str, Any]
    count: int


class Task:
    """The base class of every task; see the module docstring for when each method is called."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    data_kinds: ClassVar[tuple[str, ...]] = ()  # the dataset kinds it trains on (DatasetEntry.kind)
    options: ClassVar[frozenset[str]] = frozenset()  # the TrainConfig task options it takes
    commands: ClassVar[tuple[str, ...]] = ()  # how a trained run is used: `deepnotes COMMAND RUN_DIR ...`
    target: ClassVar[Target]
    sample_name: ClassVar[str] = "images"  # what a sample is: the throughput is <sample_name>_per_second
    sample_unit: ClassVar[str] = "img"  # ... shown as "<n> img/s"
    manual_optimization: ClassVar[bool] = False
    # TrainConfig values the command line uses for this task's models when not given (word vectors:
    # SGD at 0.025 with a linear decay, as word2vec.c), e.g. {"optimizer": "sgd", "lr": 0.025}
    train_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, cfg: TrainConfig, device: torch.device = torch.device("cpu")):
        self.cfg = cfg
        self.device = device
        self.model_args: dict[str, Any] = {}  # create_model's keyword arguments, set by setup()
        self.classes: list[str] = []
        self.input: dict[str, Any] = {}  # config.json["input"]: how inputs are prepared
        self.input_note = ""  # one line on how the data was brought to the model
        self.notes: list[str] = []  # further lines logged when the run starts
        self.optimizers: list[torch.optim.Optimizer] = []

    # ------------------------------------------------------------------ checks before anything runs

    @classmethod
    def check_options(cls, cfg: TrainConfig) -> None:
        """Refuse the task options (TASK_OPTIONS) the task does not take, given other than their default."""
        target, upper = cfg.target_accuracy, cls.target.upper
        if target is not None and upper is not None and target > upper:
            raise UserError(f"--target-accuracy {target:g} is beyond the {cls.target.label}'s range (0 to {upper:g}); e.g. {0.9 * upper:g}")
        defaults = TrainConfig(model=cfg.model)
        for name in TASK_OPTIONS:
            if name not in cls.options and getattr(cfg, name) != getattr(defaults, name):
                raise UserError(
                    f"{option_flag(name)} {getattr(cfg, name)} is not an option of {cls.name} runs "
                    f"({cfg.model} is a {cls.name} model); leave it out"
                )

    # ------------------------------------------------------------------ building the run

    def setup(self, data: Any, source: RunConfig | None) -> None:
        """From the loaded dataset: model_args, classes, input, input_note, notes, and the batches.
        `source` is the config of the run whose weights transfer learning starts from."""
        raise NotImplementedError

    def build(self, model: nn.Module) -> nn.Module:
        """Called once the model exists and sits on the device; returns the module that sees the
        batches (the model itself unless the task wraps it). Keep what the steps need."""
        self.model = model
        return model

    def train_batches(self, rank: int = 0, world_size: int = 1):
        """The training batches: len() steps per epoch, .epoch(epoch, start_step) yields them
        in an order that is a pure function of (seed, epoch) (resume depends on it)."""
        raise NotImplementedError

    def test_batches(self):
        raise NotImplementedError

    def configure_optimizers(self, params: list[nn.Parameter]) -> list[torch.optim.Optimizer]:
        """One optimizer over the trainable parameters (a GAN returns one per network)."""
        self.optimizers = [build_optimizer(self.cfg, params)]
        return self.optimizers

    def autocast(self):
        """The mixed-precision context of --precision for forward passes (and losses)."""
        return autocast(self.cfg.precision, self.device)

    # ------------------------------------------------------------------ steps

    def before_step(self, batch: Any) -> Any:
        """The batch on the device, before the step and outside autocast (e.g. an attack)."""
        return batch

    def training_step(self, net: nn.Module, batch: Any) -> StepOutput:
        raise NotImplementedError

    def train_record(self, sums: dict[str, Any], seen: int) -> dict[str, float]:
        """The epoch's training numbers from the running sums, e.g. {"train_loss": ...}."""
        return {"train_loss": sums.get("loss", 0.0) / max(1, seen)}

    @torch.no_grad()
    def evaluate(self, core: nn.Module, batches) -> dict[str, Any]:
        """Score the test batches (from test_batches()); the dict must hold "loss"."""
        raise NotImplementedError

    def test_record(self, ev: dict[str, Any]) -> dict[str, Any]:
        """The per-epoch record's test numbers (JSON values), e.g. {"test_loss": ..., "test_accuracy": ...}."""
        return {"test_loss": ev["loss"]}

    def scores_text(self, record: dict[str, Any]) -> str:
        """The test part of the epoch's log line."""
        return f"test loss {record['test_loss']:.4f}"

    # ------------------------------------------------------------------ results

    def summary(self, history: list[dict[str, Any]], ev: dict[str, Any] | None) -> dict[str, Any]:
        """The task's headline keys of metrics.json: the last epoch's test numbers, the best target."""
        key = self.target.key
        out: dict[str, Any] = {key: None, "test_loss": None}
        if history:
            out |= {k: v for k, v in history[-1].items() if k.startswith("test_")}
        out[f"best_{key}"] = (max if self.target.higher_is_better else min)((h[key] for h in history), default=None)
        return out

    def final_metrics(self, ev: dict[str, Any] | None) -> dict[str, Any]:
        """Keys of metrics.json computed from the last evaluation (e.g. a confusion matrix)."""
        return {}

    def curve_panels(self) -> list:
        """The panels of curves.png (deepnotes.report.plots.Panel); default: the loss."""
        from deepnotes.report.plots import Panel

        return [Panel("Loss", "loss", (("train_loss", "train"), ("test_loss", "test")))]

    def write_figures(self, run_dir, core: nn.Module, ev: dict[str, Any] | None, metrics: dict[str, Any]) -> list[dict]:
        """Write the task's figures into the run directory; return [{"path", "caption"}]."""
        return []

    def report(self, metrics: dict[str, Any]) -> ReportParts:
        """The headline is the target metric."""
        key = self.target.key
        value = metrics.get(key)
        cards = [(self.target.label, self.target.format(value))] if isinstance(value, (int, float)) else []
        return ReportParts(cards=cards, headline_keys={key})

    def final_text(self, metrics: dict[str, Any]) -> str:
        """The results in the run's last log line, before "after N s of training"."""
        value = metrics.get(self.target.key)
        return f"{self.target.label} {self.target.format(value)}" if value is not None else "no epoch finished"

    def state_dict(self) -> dict[str, Any]:
        """Task state beyond the model and optimizers, saved in every checkpoint (e.g. an EMA)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    # ------------------------------------------------------------------ using a trained run

    @classmethod
    def inference_model(cls, model: nn.Module, config: RunConfig) -> nn.Module:
        """The trained model as the task's commands run it (e.g. wrapped as in training)."""
        return model
