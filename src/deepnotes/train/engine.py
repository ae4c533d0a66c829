"""The engine every task shares, built from small plain functions (the shape of nanoGPT's
train.py and of torchvision's reference training scripts):

    train_one_epoch(...)   one pass over the shuffled training batches
    run(cfg, task_cls)     data -> model -> epochs -> checkpoints -> run directory

It owns the run directory, resume, DDP, Ctrl-C, progress, the checkpoint cadence, precision and
the learning-rate schedules. What differs between kinds of training (the batches, the step, the
loss, the scores, the figures) is the task's: deepnotes.tasks.base.Task, called at fixed points.
Users start runs through deepnotes.tasks.run_training / fit, which pick the task of the model.

Everything is seeded: the batch order and augmentation are pure functions of (seed, epoch),
and the checkpoint holds the torch RNG state (dropout), so 2 epochs == 1 epoch + --resume
+ 1 epoch, bit for bit on the same machine, also when the first run was cut off mid-epoch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

import deepnotes
from deepnotes.data import load_dataset
from deepnotes.errors import UserError
from deepnotes.models import create_model
from deepnotes.rundir import RunConfig, RunDir
from deepnotes.train import distributed as ddp
from deepnotes.train import transfer
from deepnotes.train.config import TrainConfig
from deepnotes.train.optim import build_scheduler

# Mixed precision: bf16 runs forward passes under torch.autocast (matmuls and convolutions in
# bfloat16; weights, gradients and the optimizer in float32; no loss scaling: bf16 has float32's
# exponent range). The test set is always scored in float32.
AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16}  # TrainConfig.precision -> torch.autocast dtype


def autocast(precision: str, device: torch.device):
    """The context a task's forward pass (and loss) runs in for TrainConfig.precision."""
    dtype = AUTOCAST_DTYPES[precision]
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class EpochProgress:
    """Running totals of one training epoch (the task's sums by name); saved in a mid-epoch checkpoint."""

    step: int = 0  # batches done
    sums: dict[str, Any] = field(default_factory=dict)
    seen: int = 0  # samples
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    model: nn.Module
    metrics: dict[str, Any]
    run_dir: Path
    interrupted: bool = False


# --------------------------------------------------------------------------- small functions


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def train_one_epoch(
    net: nn.Module,
    task,
    batches,
    epoch: int,
    optimizers: list[torch.optim.Optimizer],
    schedulers: list,
    progress: EpochProgress,
    *,
    clip_grad_norm: float | None = None,
    device: torch.device = torch.device("cpu"),
    should_stop: Callable[[int], bool] = lambda step: False,
    on_flush: Callable[[EpochProgress], None] = lambda p: None,
    flush_every: int = 20,
) -> EpochProgress:
    """Train on the batches of `epoch` from progress.step on; update and return `progress`.

    Each step: task.before_step (outside autocast), task.training_step under the task's
    autocast, then zero_grad / backward / step of every optimizer (unless the task optimizes
    by hand), then one step of every schedule. Running sums stay on the device and are read
    back every `flush_every` steps (no per-step host sync); that is also when a non-finite loss
    is detected. `should_stop(step)` is asked after every step; when it says yes the epoch ends
    early (progress.step tells where). clip_grad_norm scales the gradients of every optimizer's
    parameters to that joint L2 norm at most, between backward and step.
    """
    net.train()
    clipped = [p for opt in optimizers for group in opt.param_groups for p in group["params"]] if clip_grad_norm else []
    sums: dict[str, torch.Tensor] = {}
    seen = 0
    start = time.perf_counter()

    def flush() -> None:
        nonlocal seen, start
        total = sums["loss"].item() if "loss" in sums else 0.0
        if not math.isfinite(total):
            raise TrainingDiverged(
                f"the training loss became {total} in epoch {epoch} (by step {progress.step}); "
                "stopped without saving this state. Try a lower --lr"
            )
        for k, acc in sums.items():
            progress.sums[k] = progress.sums.get(k, 0) + acc.item()
            acc.zero_()
        progress.seen += seen
        progress.seconds += time.perf_counter() - start
        seen, start = 0, time.perf_counter()
        on_flush(progress)

    for batch in batches.epoch(epoch, start_step=progress.step):
        batch = task.before_step(_to_device(batch, device))
        if task.manual_optimization:
            out = task.training_step(net, batch)  # zero_grad, backward and step are the task's
        else:
            with task.autocast():
                out = task.training_step(net, batch)
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            out.loss.backward()
            if clipped:
                torch.nn.utils.clip_grad_norm_(clipped, clip_grad_norm)  # equal to deepnotes.optim.clip_grad_norm_ (tested)
            for opt in optimizers:
                opt.step()
        for sched in schedulers:
            sched.step()
        for k, v in out.sums.items():
            if k not in sums:  # float64 totals of float values, int64 of counts
                floating = v.is_floating_point() if isinstance(v, torch.Tensor) else isinstance(v, float)
                sums[k] = torch.zeros((), dtype=torch.float64 if floating else torch.int64, device=device)
            sums[k] += v
        seen += out.count
        progress.step += 1
        stop = should_stop(progress.step)
        if stop or progress.step % flush_every == 0 or progress.step == len(batches):
            flush()
        if stop:
            break
    return progress


# --------------------------------------------------------------------------- the run


# Schedules whose curve is laid out over the run's epochs: a resume with other --epochs would
# restart or bend their curve, so it is refused (step, exponential and none do not depend on it).
HORIZON_SCHEDULES = ("cosine", "onecycle", "linear")


def _check_resume(cfg: TrainConfig, saved: dict[str, Any], run_dir: RunDir) -> None:
    differ = [
        f"{f.name} ({saved.get(f.name)!r} in the run, {getattr(cfg, f.name)!r} now)"
        for f in fields(TrainConfig)
        if f.name not in TrainConfig.RESUMABLE_CHANGES
        and f.name in saved
        and saved[f.name] != (cfg.learning_rate if f.name == "lr" else _jsonable(getattr(cfg, f.name)))
    ]
    if differ:
        raise UserError(
            f"--resume continues the run in {run_dir} as it was configured, but these differ: "
            + "; ".join(differ)
            + ". Pass the same options (only --epochs and --target-accuracy may change) or use a new --out"
        )
    if cfg.schedule in HORIZON_SCHEDULES and saved.get("epochs") not in (None, cfg.epochs):
        raise UserError(
            f"--epochs {cfg.epochs} differs from the run's {saved['epochs']}, and its {cfg.schedule} schedule is laid out over "
            f"{saved['epochs']} epochs: resuming would bend its curve. Resume with --epochs {saved['epochs']}, or start a new "
            f"run from this one's weights (--from {run_dir} --out NEW_DIR)"
        )


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))


def data_fingerprint(data: Any) -> str | None:
    """SHA-256 of a dataset's arrays (train_x, train_y, test_x, test_y): what a resume must find
    again (another --data-dir could hold other files). None when the data has none of them."""
    arrays = [getattr(data, name, None) for name in ("train_x", "train_y", "test_x", "test_y")]
    if any(a is None or not hasattr(a, "tobytes") for a in arrays):
        return None
    h = hashlib.sha256()
    for a in arrays:
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(memoryview(a.reshape(-1).view("uint8") if a.flags.c_contiguous else a.tobytes()))
    return h.hexdigest()


@contextlib.contextmanager
def _ctrl_c_stops(message: str) -> Iterator[threading.Event]:
    """First Ctrl-C (or SIGTERM, as a scheduler or `kill` sends): set the event (the loop saves
    and stops at the next step). A second one quits at once."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    def handler(signum, frame):
        if event.is_set():
            raise KeyboardInterrupt
        event.set()
        print(f"\n{message}", file=sys.stderr, flush=True)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield event
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _log(info: ddp.DistInfo, cfg: TrainConfig, text: str) -> None:
    if info.is_main and cfg.progress:
        try:
            print(text, flush=True)
        except BrokenPipeError:  # `deepnotes train ... | head`: the reader left; the run goes on, silently
            sys.stdout = open(os.devnull, "w")


def _format(key: str, value: float, percent: str = ".2%") -> str:
    """A training number for the log: accuracies as percentages, the rest with 4 decimals."""
    return f"{value:{percent}}" if "accuracy" in key else f"{value:.4f}"


def _train_text(record: dict[str, Any], percent: str = ".2%") -> str:
    """'loss 0.1234  acc 95.12%' from the task's train_record."""
    parts = []
    for key, value in record.items():
        label = key.removeprefix("train_").replace("accuracy", "acc").replace("_", " ")
        parts.append(f"{label} {_format(key, value, percent)}")
    return "  ".join(parts)


def run(cfg: TrainConfig, task_cls, *, should_stop: Callable[[int, int], bool] | None = None) -> TrainResult:
    """Train cfg.model on cfg.data as task `task_cls` (a deepnotes.tasks.base.Task subclass)."""
    info = ddp.setup()
    try:
        return _run(cfg, task_cls, info, should_stop)
    finally:
        ddp.teardown(info)


def _run(cfg: TrainConfig, task_cls, info: ddp.DistInfo, should_stop) -> TrainResult:
    if cfg.out is not None and not cfg.out.strip():
        raise UserError("--out is empty; give the run directory, e.g. --out runs/NAME (or leave --out out for runs/MODEL-DATASET)")
    run_dir = RunDir(cfg.out_dir)
    task_cls.check_options(cfg)
    if cfg.resume and not run_dir.path.is_dir():
        raise UserError(f"--resume needs an existing run directory, but {run_dir} does not exist")
    threads = cfg.threads or max(1, torch.get_num_threads() // info.local_world_size)
    torch.set_num_threads(threads)
    # one writer per run directory (rank 0 writes; the other ranks only read)
    with run_dir.lock() if info.is_main else contextlib.nullcontext():
        return _run_locked(cfg, task_cls, info, should_stop, run_dir, threads)


def _run_locked(cfg: TrainConfig, task_cls, info: ddp.DistInfo, should_stop, run_dir: RunDir, threads: int) -> TrainResult:
    # -- run directory: never overwrite a run; --resume continues one as it was configured
    if info.is_main:
        stray = run_dir.clean_stray()
        if stray:
            _log(info, cfg, f"removed {len(stray)} unfinished temporary file(s) of an interrupted write: {', '.join(stray)}")
    state, saved = None, None
    if cfg.resume:
        run_dir.check_files()  # a damaged file stops here, before anything is changed
        if not run_dir.exists() and run_dir.contents():
            raise UserError(f"{run_dir} holds files but no config.json: it is not a run directory to resume; use --out NEW_DIR")
        if run_dir.exists():
            saved = run_dir.read_config()
            _check_resume(cfg, saved.train, run_dir)
        if run_dir.has_checkpoint():
            state = run_dir.read_checkpoint()
    elif run_dir.contents():
        what = "a run" if run_dir.exists() else f"{', '.join(run_dir.contents()[:5])}"
        raise UserError(
            f"{run_dir} already holds {what}, and runs are never overwritten: pass --resume to continue (or finish) it, "
            "or --out NEW_DIR for a new run"
        )

    # -- data (rank 0 first, so that only one process downloads)
    if info.enabled and not info.is_main:
        torch.distributed.barrier()
    data = load_dataset(cfg.data, data_dir=cfg.data_dir)
    if info.enabled and info.is_main:
        torch.distributed.barrier()
    fingerprint = data_fingerprint(data)
    if saved is not None and saved.data_sha256 and fingerprint != saved.data_sha256:
        raise UserError(
            f"the data of {cfg.data} differs from the data {run_dir} was trained on (SHA-256 {str(fingerprint)[:12]}... != "
            f"{saved.data_sha256[:12]}...): --data-dir holds other files now; point it at the run's data or start a new run"
        )
    source = transfer.source_config(cfg.from_run, cfg.model) if cfg.from_run else None
    task = task_cls(cfg, info.device)
    task.setup(data, source)

    # -- model (from scratch, or from a trained run with a new head), optimizers, schedules
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **task.model_args)
    if cfg.from_run and state is None:
        transfer.start_from_run(model, cfg.model, cfg.from_run)
    frozen = transfer.freeze(model, cfg.freeze)
    num_params = sum(p.numel() for p in model.parameters())
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable and cfg.freeze:  # (a model without parameters, an n-gram count table, trains by its task's own step)
        raise UserError(f"--freeze {' '.join(cfg.freeze)} leaves nothing to train")
    model.to(info.device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    core = task.build(model)  # what sees the batches (no DDP)
    net: nn.Module = core
    if info.enabled:
        net = nn.parallel.DistributedDataParallel(core, device_ids=[info.device.index] if info.device.type == "cuda" else None)
    torch.manual_seed(cfg.seed + info.rank)  # each rank draws its own dropout

    train_batches = task.train_batches(info.rank, info.world_size)
    test_batches = task.test_batches()
    optimizers = task.configure_optimizers(trainable)
    schedulers = [build_scheduler(cfg, opt, len(train_batches)) for opt in optimizers]

    history: list[dict[str, Any]] = []
    first_epoch, progress = 1, EpochProgress()
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            for opt, opt_state in zip(optimizers, state["optimizers"], strict=True):
                opt.load_state_dict(opt_state)
            for sched, sched_state in zip(schedulers, state["schedulers"], strict=True):
                sched.load_state_dict(sched_state)
        except (RuntimeError, ValueError, KeyError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"the checkpoint in {run_dir} does not fit {cfg.model} as config.json builds it ({first})") from None
        task.load_state_dict(state.get("task", {}))
        torch.set_rng_state(state["rng_torch"])
        history = list(state["history"])
        first_epoch = state["epoch"] + 1 if state["step"] == 0 else state["epoch"]
        if state["step"]:
            progress = EpochProgress(**state["progress"])
        if state["epoch"] > cfg.epochs:
            raise UserError(f"{run_dir} has already trained {state['epoch']} epochs; pass --epochs {state['epoch']} or more to continue")

    config = RunConfig(
        task=task.name,
        model=cfg.model,
        model_args=_jsonable(task.model_args),
        dataset=cfg.data,
        classes=list(task.classes),
        input=_jsonable(task.input),
        train=cfg.to_json(),
        num_params=num_params,
        trainable_params=sum(p.numel() for p in trainable),
        data_sha256=fingerprint,
        data_source=getattr(data, "source", ""),
        world_size=info.world_size,
        deepnotes_version=deepnotes.__version__,
        torch_version=torch.__version__,
    )
    if info.is_main:
        run_dir.write_config(config)
    _log(info, cfg, f"{cfg.model} ({num_params:,} parameters) on {data!r}")
    if cfg.from_run or frozen:
        _log(info, cfg, f"transfer: weights from {cfg.from_run or '-'} (new head); frozen: {', '.join(cfg.freeze) or 'nothing'}; "
             f"{sum(p.numel() for p in trainable):,} parameters train")
    for note in task.notes:
        _log(info, cfg, note)
    _log(info, cfg, f"input: {task.input_note}; {len(train_batches)} steps/epoch of {cfg.batch_size}; {threads} threads; -> {run_dir}")
    if state is not None:
        _log(info, cfg, f"resumed from epoch {state['epoch']}" + (f" step {state['step']}" if state["step"] else "")
             + ("; training is complete: writing its outputs from the last checkpoint" if first_epoch > cfg.epochs else ""))
    elif cfg.resume:
        _log(info, cfg, f"{run_dir} has no checkpoint yet (stopped before the first one): training from the start")

    def checkpoint(epoch: int, step: int) -> None:
        if info.is_main:
            run_dir.save_checkpoint({
                "model": model.state_dict(), "optimizers": [o.state_dict() for o in optimizers],
                "schedulers": [s.state_dict() for s in schedulers], "task": task.state_dict(), "epoch": epoch, "step": step,
                "rng_torch": torch.get_rng_state(), "history": history, "progress": progress.to_json() if step else {},
            })  # fmt: skip

    target = task.target
    train_seconds = history[-1]["seconds"] if history else 0.0
    seconds_to_target = next(
        (h["seconds"] for h in history if cfg.target_accuracy and target.reached(h[target.key], cfg.target_accuracy)), None
    )
    rate_key = f"{task.sample_name}_per_second"

    interrupted, last_eval = False, None
    with _ctrl_c_stops("stopping after this step and saving a checkpoint (Ctrl-C again quits at once)") as ctrl_c:
        for epoch in range(first_epoch, cfg.epochs + 1):
            if seconds_to_target is not None:
                break
            bar = _progress_bar(info, cfg, epoch, len(train_batches), progress.step)

            def stop_now(step: int, epoch: int = epoch) -> bool:
                wanted = ctrl_c.is_set() or (should_stop is not None and should_stop(epoch, step))
                return ddp.any_rank(wanted, info)

            def on_flush(p: EpochProgress, bar=bar) -> None:
                if bar is not None:
                    bar.update(p.step - bar.n)
                    done = train_seconds + p.seconds
                    remaining = (cfg.epochs - epoch + 1 - p.step / len(train_batches)) * (p.seconds / max(1, p.step)) * len(train_batches)
                    bar.set_postfix_str(
                        f"{_train_text(task.train_record(p.sums, p.seen), '.1%')} {p.seen / max(p.seconds, 1e-9):,.0f} "
                        f"{task.sample_unit}/s run ETA {_fmt_seconds(remaining)} ({_fmt_seconds(done)} so far)"
                    )

            try:
                train_one_epoch(
                    net, task, train_batches, epoch, optimizers, schedulers, progress, clip_grad_norm=cfg.clip_grad_norm,
                    device=info.device, should_stop=stop_now, on_flush=on_flush,
                )  # fmt: skip
            finally:
                if bar is not None:
                    bar.close()
            if progress.step < len(train_batches):  # stopped mid-epoch
                checkpoint(epoch, progress.step)
                interrupted = True
                break
            ddp.sync_buffers(model, info)
            last_eval = _evaluate(task, core, test_batches)
            train_seconds += progress.seconds
            train = task.train_record(progress.sums, progress.seen)
            record = {
                "epoch": epoch,
                **train,
                **task.test_record(last_eval),
                "lr": optimizers[0].param_groups[0]["lr"] if optimizers else None,  # (none: an n-gram model)
                "seconds": train_seconds,
                rate_key: progress.seen * info.world_size / max(progress.seconds, 1e-9),
            }
            history.append(record)
            progress = EpochProgress()
            checkpoint(epoch, 0)
            _log(
                info, cfg,
                f"epoch {epoch:>3}/{cfg.epochs}  {_train_text(train)}  {task.scores_text(record)}  "
                f"{record[rate_key]:,.0f} {task.sample_unit}/s  {train_seconds:.1f}s",
            )  # fmt: skip
            if cfg.target_accuracy and target.reached(record[target.key], cfg.target_accuracy):
                seconds_to_target = train_seconds
                _log(info, cfg, f"reached {target.label} {target.format(cfg.target_accuracy)} after {train_seconds:.1f}s of training")
            if ctrl_c.is_set():
                interrupted = True
                break

    if last_eval is None and history:  # resumed a finished run or stopped early: measure once more
        last_eval = _evaluate(task, core, test_batches)
    metrics: dict[str, Any] = {
        "task": task.name,
        "target_metric": target.key,  # what --target-accuracy is compared with
        **task.summary(history, last_eval),
        "train_seconds": train_seconds,
        "target_accuracy": cfg.target_accuracy,
        "seconds_to_target": seconds_to_target,
        "epochs_completed": len(history),
        "num_params": num_params,
        "interrupted": interrupted,
        "epochs": history,
        **task.final_metrics(last_eval),
    }
    if info.is_main:
        _write_outputs(run_dir, task, model, core, metrics, last_eval)
        if interrupted:
            _log(info, cfg, f"interrupted: checkpoint saved; continue with the same command plus --resume (run directory {run_dir})")
        else:
            _log(info, cfg, f"{task.final_text(metrics)} after {train_seconds:.1f}s of training; report: {run_dir.file('report.html')}")
    return TrainResult(model, metrics, run_dir.path, interrupted)


def _evaluate(task, core: nn.Module, batches) -> dict[str, Any]:
    """The task's scores on the test batches, without gradients; the module's mode is put back."""
    was_training = core.training
    try:
        with torch.no_grad():
            return task.evaluate(core, batches)
    finally:
        core.train(was_training)


def _write_outputs(run_dir: RunDir, task, model: nn.Module, core: nn.Module, metrics: dict, last_eval) -> None:
    """The weights, curves.png and the task's figures, metrics.json, then report.html."""
    from deepnotes.report import plot_curves, write_run_report

    run_dir.save_weights(model.state_dict())
    figures = []
    if metrics["epochs"]:
        plot_curves(metrics["epochs"], run_dir.file("curves.png"), task.curve_panels())
        titles = [p.title[0].lower() + p.title[1:] for p in task.curve_panels()]
        what = ", ".join(titles[:-1]) + " and " + titles[-1] if len(titles) > 1 else titles[0]
        figures.append({"path": "curves.png", "caption": f"{what} per epoch"})
    figures += task.write_figures(run_dir.path, core, last_eval, metrics)
    metrics["figures"] = figures
    run_dir.write_metrics(metrics)
    write_run_report(run_dir.path, task.report(metrics))


def _progress_bar(info: ddp.DistInfo, cfg: TrainConfig, epoch: int, total: int, initial: int):
    if not (info.is_main and cfg.progress and sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"epoch {epoch}/{cfg.epochs}", unit="step", leave=False, dynamic_ncols=True)


def _fmt_seconds(s: float) -> str:
    s = int(s)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
