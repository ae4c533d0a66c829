"""Training a language model for the lab, through the language-model task (deepnotes.tasks.run_training,
the path of `deepnotes train gpt_nano --data shakespeare`), on a corpus the lab may have changed.

    run = train_lm("gpt_nano", corpus, steps=300, batch_size=32, seed=0, model_args={"n_layer": 2})
    run.model, run.tokenizer, run.metrics["test_loss"], run.run_dir
    tuned = train_lm("gpt_nano", small, steps=100, from_run=run.run_dir, ...)   # fine-tuning: its tokenizer

The corpus is registered for the run under a scoped name (nothing global changes); runs are kept in a
temporary folder for the life of the process (a fine-tuning run starts from another run's directory)
and cached by everything that defines them, so two experiments of one `lab run` share a run.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepnotes.lab.sequences.recurrent import one_thread

_ROOT: Path | None = None
_RUNS: dict[str, "LMRun"] = {}


@dataclass
class LMRun:
    """A trained language-model run: its directory, the model (eval mode), its tokenizer, the final
    metrics (metrics.json), the per-epoch records and the seconds run_training took."""

    run_dir: Path
    model: Any
    tokenizer: Any
    metrics: dict
    history: list[dict]
    seconds: float
    task: Any  # the LanguageModel task the run was set up with (its train_ids / test_ids streams)


def _root() -> Path:
    global _ROOT
    if _ROOT is None:
        _ROOT = Path(tempfile.mkdtemp(prefix="deepnotes-lab-lm-"))
        atexit.register(shutil.rmtree, _ROOT, True)
    return _ROOT


def train_lm(model: str, corpus, *, steps: int, seed: int = 0, batch_size: int = 32, tokenizer: str | None = None,
             steps_per_epoch: int | None = None, block_size: int | None = None, model_args: dict | None = None,
             from_run: str | Path | None = None, log=None, **train: Any) -> LMRun:  # fmt: skip
    """Train `model` on `corpus` for `steps` steps (epochs of steps_per_epoch, default all of them in one;
    an n-gram model: one counting step) through the language-model task, one thread. `train` holds
    further TrainConfig values (lr, precision, optimizer, schedule, warmup_epochs, ...)."""
    from deepnotes.models import get_model_entry
    from deepnotes.registry import DATASETS, register_dataset
    from deepnotes.tasks import get_task, load_run, run_training
    from deepnotes.tasks.language_model import LanguageModel
    from deepnotes.train import TrainConfig

    entry = get_model_entry(model)
    defaults = {**get_task(entry.task).train_defaults, **(entry.variant.train if entry.variant else {})}  # `deepnotes train`'s
    per_epoch = steps_per_epoch or steps
    settings = {**defaults, "batch_size": batch_size, "epochs": max(1, -(-steps // per_epoch)), **train}
    if tokenizer is not None:
        settings["tokenizer"] = tokenizer
    key_text = json.dumps([model, corpus.name, len(corpus.sentences), corpus.num_tokens, steps, per_epoch, seed, block_size,
                           sorted((model_args or {}).items()), str(from_run), sorted(settings.items())], default=str)  # fmt: skip
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    if key in _RUNS:
        return _RUNS[key]
    out = _root() / key
    name = f"lab-lm-{key}"
    with DATASETS.scoped(), one_thread():
        register_dataset(name, lambda data_dir=None, download=True: corpus, description=corpus.name, kind="corpus")
        cfg = TrainConfig(model=model, data=name, steps_per_epoch=per_epoch, block_size=block_size, threads=1, seed=seed,
                          out=str(out), progress=False, model_args=dict(model_args or {}),
                          from_run=None if from_run is None else str(from_run), **settings)  # fmt: skip
        start = time.perf_counter()
        result = run_training(cfg)
        seconds = time.perf_counter() - start
        run = load_run(out)
        task = LanguageModel(cfg)
        task.setup(corpus, run.config)  # the run's own tokenizer, read back (not learned a second time)
    metrics = dict(result.metrics)
    lm = LMRun(out, run.model, task.tokenizer, metrics, list(metrics.get("epochs", [])), seconds, task)
    if log is not None:
        log(f"{model} on {corpus.name}, seed {seed}, {steps} steps: test loss {metrics.get('test_loss'):.4f} in {seconds:.0f} s")
    _RUNS[key] = lm
    return lm
