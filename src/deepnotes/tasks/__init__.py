"""Tasks: one file per kind of training (classification, segmentation; detection, translation,
language models, generative models and CLIP as they arrive), each a deepnotes.tasks.base.Task
registered by name. Importing this package registers them all.

    from deepnotes.tasks import fit, run_training, load_run
    metrics = fit(TrainConfig(model="lenet5", data="digits", epochs=10))   # the task comes from the model
    run = load_run("runs/lenet5-digits")                                    # a trained run, ready to use

A model's registry entry names its task (Variant.task); a dataset's entry names its kind
(DatasetEntry.kind); the task says which kinds it trains on (Task.data_kinds).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from torch import nn

from deepnotes.data import DATASETS
from deepnotes.errors import UserError
from deepnotes.models import MODELS, create_model
from deepnotes.registry import TASKS
from deepnotes.rundir import RunConfig, RunDir
from deepnotes.tasks import classification, language_model, segmentation, translation, word_vectors  # noqa: F401  (registration)
from deepnotes.tasks.base import Task
from deepnotes.train.config import TrainConfig

__all__ = ["LoadedRun", "Task", "TASKS", "fit", "get_task", "load_run", "run_training", "task_for"]


def get_task(name: str) -> type[Task]:
    return TASKS.get(name)


def task_for(model: str, data: str) -> type[Task]:
    """The task of `model` (its registry entry), after checking that it trains on `data`'s kind."""
    task = get_task(MODELS.get(model).task)
    entry = DATASETS.get(data)
    if entry.kind not in task.data_kinds:
        datasets = [d.name for d in DATASETS.entries() if d.kind in task.data_kinds]
        kinds = {t.name: t for t in TASKS.entries() if entry.kind in t.data_kinds}
        models = [m.name for m in MODELS.entries() if m.task in kinds]
        raise UserError(
            f"{model} is a {task.name} model (it trains on {' or '.join(task.data_kinds)}), but {data} holds "
            f"{entry.kind}; train {model} on {', '.join(datasets) or 'none registered'}, "
            f"or {data} with a {' or '.join(kinds) or 'matching'} model ({', '.join(models) or 'none registered'})"
        )
    return task


def run_training(cfg: TrainConfig, *, should_stop: Callable[[int, int], bool] | None = None):
    """Train cfg.model on cfg.data through the engine and write the run directory (see README:
    "Run directory"). should_stop(epoch, step), if given, is asked after every step (tests use
    it to simulate an interruption); Ctrl-C does the same. Returns deepnotes.train.TrainResult."""
    from deepnotes.train.engine import run

    return run(cfg, task_for(cfg.model, cfg.data), should_stop=should_stop)


def fit(cfg: TrainConfig) -> dict[str, Any]:
    """Train and return the metrics dict (what metrics.json holds)."""
    return run_training(cfg).metrics


# --------------------------------------------------------------------------- trained runs


@dataclass
class LoadedRun:
    """A trained run, rebuilt: its config, its task and its model (in eval mode, as the task runs it)."""

    rundir: RunDir
    config: RunConfig
    task: type[Task]
    model: nn.Module

    @property
    def run_dir(self) -> Path:
        return self.rundir.path

    @property
    def classes(self) -> list[str]:
        return list(self.config.classes)

    def describe(self) -> str:
        return f"{self.run_dir} holds a {self.task.name} run ({self.config.model} on {self.config.dataset})"

    def require(self, command: str) -> None:
        """A UserError when `deepnotes COMMAND` does not apply to this run's task; it names the
        tasks the command is for and the commands that do apply."""
        if command in self.task.commands:
            return
        fit = [t for t in TASKS.entries() if command in t.commands]
        models = [m.name for m in MODELS.entries() if m.task in {t.name for t in fit}]
        shown = ", ".join(models[:8]) + (", ..." if len(models) > 8 else "")
        uses = ", ".join(f"`deepnotes {c}`" if i == 0 else f"`{c}`" for i, c in enumerate(self.task.commands)) or "no command yet"
        raise UserError(
            f"{self.describe()}; `deepnotes {command}` needs a {' or '.join(t.name for t in fit)} run ({shown}). "
            f"This run is for {uses}"
        )


def load_run(run_dir: str | Path) -> LoadedRun:
    """Rebuild the model of a run from config.json and load its verified weights."""
    rundir = RunDir(run_dir)
    config = rundir.read_config()
    task = get_task(config.task)
    model = create_model(config.model, **config.model_args)
    rundir.load_weights_into(model)
    model.eval()
    return LoadedRun(rundir, config, task, task.inference_model(model, config).eval())
