"""The training loop, built from small plain functions (the shape of nanoGPT's train.py and
torchvision's references/classification):

    train_one_epoch(...)   one pass over the shuffled training batches
    evaluate(...)          loss, accuracy and predictions on a fixed set
    evaluate_segmentation  loss and IoU / Dice / pixel accuracy of masks on a fixed set
    run_training(cfg)      data -> model -> epochs -> checkpoints -> run directory
    fit(cfg)               run_training(cfg).metrics

Everything is seeded: the batch order and augmentation are pure functions of (seed, epoch),
and the checkpoint holds the torch RNG state (dropout), so 2 epochs == 1 epoch + --resume
+ 1 epoch, bit for bit on the same machine, also when the first run was cut off mid-epoch.

The task comes from the registry entries of the model and the dataset (they must agree).
Segmentation (masks as labels, deepnotes.train.segmentation) runs through the same loop and
run directory with three differences: the loss is deepnotes.segment.segmentation_loss, the
test set is scored by SegmentationMetrics (per-class IoU and Dice, mean IoU, pixel accuracy),
and accuracies are pixel accuracies. test_accuracy is then the test pixel accuracy, and
--target-accuracy is a target for the test mean IoU (the headline metric of segmentation).
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import deepnotes
from deepnotes.data import ImageData, load_dataset
from deepnotes.data.transforms import (
    InputSpec,
    TensorBatches,
    adapt_size,
    as_tensors,
    channel_stats,
)
from deepnotes.errors import UserError
from deepnotes.fileio import write_json
from deepnotes.registry import builder_accepts, create_model, get_model_entry
from deepnotes.segment import SegmentationMetrics, predict_mask, segmentation_loss
from deepnotes.train import checkpoint as ckpt
from deepnotes.train import distributed as ddp
from deepnotes.train import segmentation as seg
from deepnotes.train import transfer
from deepnotes.train.config import TrainConfig
from deepnotes.train.optim import build_optimizer, build_scheduler

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16}  # TrainConfig.precision -> torch.autocast dtype


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class EpochProgress:
    """Running totals of one training epoch; saved in a mid-epoch checkpoint."""

    step: int = 0  # batches done
    loss_sum: float = 0.0  # sum over samples of the loss
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0
    per_sample: int = 1  # predictions scored per sample: 1 label, or H * W pixels of a mask


    @property
    def loss(self) -> float:
        return self.loss_sum / max(1, self.seen)

    @property
    def accuracy(self) -> float:
        return self.correct / max(1, self.seen * self.per_sample)


@dataclass
class TrainResult:
    model: nn.Module
    metrics: dict[str, Any]
    run_dir: Path
    interrupted: bool = False


# --------------------------------------------------------------------------- small functions


def train_one_epoch(
    model: nn.Module,
    batches: TensorBatches,
    epoch: int,
    optimizer: torch.optim.Optimizer,
    scheduler,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    progress: EpochProgress,
    *,
    device: torch.device = torch.device("cpu"),
    should_stop: Callable[[int], bool] = lambda step: False,
    on_flush: Callable[[EpochProgress], None] = lambda p: None,
    flush_every: int = 20,
    adversarial: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> EpochProgress:
    """Train on the batches of `epoch` from progress.step on; update and return `progress`.

    Running sums stay on the device and are read back every `flush_every` steps (no
    per-step host sync); that is also when a non-finite loss is detected. `should_stop(step)`
    is asked after every step; when it says yes the epoch ends early (progress.step tells where).
    adversarial(x, y), if given, replaces each batch before the step (adversarial training);
    the loss and accuracy recorded are then those on the adversarial batches.
    autocast_dtype (e.g. torch.bfloat16) runs forward and loss under torch.autocast (mixed precision).
    Labels that are masks (B, H, W) are scored per pixel (progress.accuracy = pixel accuracy).
    """
    model.train()
    inner = getattr(model, "module", model)  # DDP wraps the model
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    start = time.perf_counter()

    def flush() -> None:
        nonlocal seen, start
        total = loss_sum.item()
        if not math.isfinite(total):
            raise TrainingDiverged(
                f"the training loss became {total} in epoch {epoch} (by step {progress.step}); "
                "stopped without saving this state. Try a lower --lr"
            )
        progress.loss_sum += total
        progress.correct += int(correct.item())
        progress.seen += seen
        progress.seconds += time.perf_counter() - start
        loss_sum.zero_()
        correct.zero_()
        seen, start = 0, time.perf_counter()
        on_flush(progress)

    for x, y in batches.epoch(epoch, start_step=progress.step):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if y.dim() > 1:  # masks: every pixel is a prediction
            progress.per_sample = y[0].numel()
        if adversarial is not None:
            x = adversarial(x, y)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits = model(x)
            loss = loss_fn(logits, y)
            for aux in getattr(inner, "aux_outputs", ()):  # GoogLeNet's auxiliary classifiers (Szegedy et al. 2014)
                loss = loss + inner.aux_weight * loss_fn(aux, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_sum += loss.detach() * len(y)
        correct += (logits.detach().argmax(1) == y).sum()
        seen += len(y)
        progress.step += 1
        stop = should_stop(progress.step)
        if stop or progress.step % flush_every == 0 or progress.step == len(batches):
            flush()
        if stop:
            break
    return progress


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: TensorBatches,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    device: torch.device = torch.device("cpu"),
) -> dict[str, Any]:
    """Mean loss, accuracy and the predicted labels over all batches (in order)."""
    model.eval()
    loss_sum, correct, seen, preds = 0.0, 0, 0, []
    for x, y in batches.epoch(0):
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss_sum += float(loss_fn(logits, y)) * len(y)
        pred = logits.argmax(1)
        correct += int((pred == y).sum())
        seen += len(y)
        preds.append(pred.cpu())
    return {
        "loss": loss_sum / max(1, seen),
        "accuracy": correct / max(1, seen),
        "preds": torch.cat(preds).numpy() if preds else np.zeros(0, dtype=np.int64),
    }


@torch.no_grad()
def evaluate_segmentation(
    model: nn.Module,
    batches: TensorBatches,
    num_classes: int,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = segmentation_loss,
    device: torch.device = torch.device("cpu"),
) -> dict[str, Any]:
    """Mean loss and the segmentation metrics of all batches (masks as labels), from one pixel
    confusion matrix over the whole set (deepnotes.segment.SegmentationMetrics): mean_iou,
    mean_dice, pixel_accuracy (also as "accuracy"), per-class iou and dice (NaN for a class in
    neither targets nor predictions), and "confusion" (num_classes x num_classes pixel counts)."""
    model.eval()
    scores = SegmentationMetrics(num_classes)
    loss_sum, seen = 0.0, 0
    for x, y in batches.epoch(0):
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss_sum += float(loss_fn(logits, y)) * len(y)
        scores.update(logits, y)
        seen += len(y)
    m = scores.compute()
    return {"loss": loss_sum / max(1, seen), "accuracy": m["pixel_accuracy"], **m, "confusion": scores.confusion.clone()}


# --------------------------------------------------------------------------- building a run


def model_kwargs_for_data(
    model: str, data: ImageData, overrides: dict[str, Any], num_classes: int | None = None
) -> tuple[dict[str, Any], tuple[int, int]]:
    """Keyword arguments that fit `model` to the data, and the input size it will see.

    Models with a fixed input size (LeNet-5: 32x32) get the data adapted to them; the others
    are built for the data's own size.
    """
    entry = get_model_entry(model)
    if num_classes is not None and num_classes < data.num_classes:
        raise UserError(f"--num-classes {num_classes} is too few for {data.name}, whose labels go up to {data.num_classes - 1}")
    kwargs: dict[str, Any] = {"num_classes": num_classes or data.num_classes}
    if builder_accepts(model, "in_chans"):
        kwargs["in_chans"] = data.in_chans
    img_size = tuple(entry.input_size[1:]) if entry.fixed_input_size else data.img_size
    if not entry.fixed_input_size and builder_accepts(model, "img_size"):
        kwargs["img_size"] = list(img_size)
    kwargs.update(overrides)
    if "img_size" in kwargs:
        size = kwargs["img_size"]
        img_size = (size, size) if isinstance(size, int) else tuple(size)
    return kwargs, img_size


def prepare_data(data: ImageData, img_size: tuple[int, int], stats: InputSpec | None = None):
    """uint8 tensors adapted to the model's size, and the InputSpec with training statistics
    (or with the normalization of `stats`, e.g. a transfer source's, when its channels match)."""
    train_x, train_y = as_tensors(data.train_x, data.train_y)
    test_x, test_y = as_tensors(data.test_x, data.test_y)
    train_x, note = adapt_size(train_x, img_size)
    test_x, _ = adapt_size(test_x, img_size)
    if stats is not None and stats.in_chans == data.in_chans:
        mean, std = stats.mean, stats.std
    else:
        mean, std = channel_stats(train_x)
    spec = InputSpec(data.in_chans, tuple(img_size), mean, std)
    return (train_x, train_y), (test_x, test_y), spec, note


def _check_resume(cfg: TrainConfig, saved: dict[str, Any], run_dir: Path) -> None:
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


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))


@contextlib.contextmanager
def _ctrl_c_stops(message: str) -> Iterator[threading.Event]:
    """First Ctrl-C: set the event (the loop saves and stops at the next step). Second: quit now."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    def handler(signum, frame):
        if event.is_set():
            raise KeyboardInterrupt
        event.set()
        print(f"\n{message}", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield event
    finally:
        signal.signal(signal.SIGINT, previous)


def _log(info: ddp.DistInfo, cfg: TrainConfig, text: str) -> None:
    if info.is_main and cfg.progress:
        print(text, flush=True)


# --------------------------------------------------------------------------- the run


def run_training(cfg: TrainConfig, *, should_stop: Callable[[int, int], bool] | None = None) -> TrainResult:
    """Train cfg.model on cfg.data and write the run directory (see README: "Run directory").

    should_stop(epoch, step), if given, is asked after every step (tests use it to simulate
    an interruption); Ctrl-C does the same. A stopped run saves a checkpoint and returns
    with interrupted=True.
    """
    info = ddp.setup()
    try:
        return _run(cfg, info, should_stop)
    finally:
        ddp.teardown(info)


def fit(cfg: TrainConfig) -> dict[str, Any]:
    """Train and return the metrics dict (what metrics.json holds)."""
    return run_training(cfg).metrics


def _run(cfg: TrainConfig, info: ddp.DistInfo, should_stop) -> TrainResult:
    run_dir = Path(cfg.out_dir)
    task = seg.check_task(cfg.model, cfg.data)
    segmentation = task == "segmentation"
    if segmentation:
        seg.check_options(cfg)
    threads = cfg.threads or max(1, torch.get_num_threads() // info.local_world_size)
    torch.set_num_threads(threads)

    # -- run directory: never overwrite a run; --resume must continue the same configuration
    state = None
    if cfg.resume:
        if not (run_dir / "config.json").exists():
            raise UserError(f"--resume needs an existing run directory, but {run_dir}/config.json does not exist")
        _check_resume(cfg, ckpt.read_run_config(run_dir)["train"], run_dir)
        state = ckpt.load_checkpoint(run_dir)
    elif ckpt.has_checkpoint(run_dir):
        raise UserError(f"{run_dir} already holds a run; pass --resume to continue it, or --out NEW_DIR for a new one")

    # -- data (rank 0 first, so that only one process downloads)
    if info.enabled and not info.is_main:
        torch.distributed.barrier()
    data = load_dataset(cfg.data, data_dir=cfg.data_dir)
    if info.enabled and info.is_main:
        torch.distributed.barrier()
    source = transfer.source_config(cfg.from_run, cfg.model) if cfg.from_run else None
    overrides = dict(cfg.model_args)
    if source:  # the body's options come from the source run (only the head is new)
        overrides = {k: v for k, v in source["model_args"].items() if k != "num_classes"} | overrides
    model_args, img_size = model_kwargs_for_data(cfg.model, data, overrides, cfg.num_classes)
    source_spec = InputSpec.from_json(source["input"]) if source else None
    prepare = seg.prepare_scenes if segmentation else prepare_data
    (train_x, train_y), (test_x, test_y), spec, adapt_note = prepare(data, img_size, source_spec)

    # -- model (from scratch, or from a trained run with a new head), optimizer, schedule
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **model_args)
    if cfg.from_run and state is None:
        transfer.start_from_run(model, cfg.model, cfg.from_run)
    frozen = transfer.freeze(model, cfg.freeze)
    num_params = sum(p.numel() for p in model.parameters())
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise UserError(f"--freeze {' '.join(cfg.freeze)} leaves nothing to train")
    pad_to = seg.fit_input(model, cfg.model, cfg.data, data.in_chans, img_size) if segmentation else None
    model.to(info.device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    core: nn.Module = seg.MirrorPad(model, pad_to) if pad_to else model  # what sees the batches (no DDP)
    net: nn.Module = core
    if info.enabled:
        net = nn.parallel.DistributedDataParallel(core, device_ids=[info.device.index] if info.device.type == "cuda" else None)
    torch.manual_seed(cfg.seed + info.rank)  # dropout masks differ between ranks

    train_batches = TensorBatches(  # with masks as labels, crops and flips move the masks too
        train_x, train_y, spec, cfg.batch_size, shuffle=True, seed=cfg.seed, augment=cfg.augment,
        crop_padding=cfg.crop_padding, drop_last=True, rank=info.rank, world_size=info.world_size,
        channels_last=cfg.channels_last,
    )  # fmt: skip
    eval_batch = cfg.eval_batch_size
    if segmentation:  # every pixel has a feature vector: 1000 64x64 scenes through unet_small hold ~2 GB; 2**20 pixels ~0.5 GB
        eval_batch = min(eval_batch, max(1, 2**20 // (img_size[0] * img_size[1])))
    test_batches = TensorBatches(test_x, test_y, spec, eval_batch, channels_last=cfg.channels_last)
    optimizer = build_optimizer(cfg, trainable)
    scheduler = build_scheduler(cfg, optimizer, len(train_batches))
    loss_fn = segmentation_loss if segmentation else nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    num_outputs = model_args["num_classes"]
    adversarial = _adversarial(cfg, model, spec)

    history: list[dict[str, Any]] = []
    first_epoch, progress = 1, EpochProgress()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_torch"])
        history = list(state["history"])
        first_epoch = state["epoch"] + 1 if state["step"] == 0 else state["epoch"]
        if state["step"]:
            progress = EpochProgress(**state["progress"])
        if first_epoch > cfg.epochs:
            raise UserError(f"{run_dir} has already trained {state['epoch']} epochs; pass a larger --epochs to continue")

    config_json = {
        "deepnotes_version": deepnotes.__version__,
        "torch_version": torch.__version__,
        "task": task,
        "model": cfg.model,
        "model_args": _jsonable(model_args),
        "num_params": num_params,
        "trainable_params": sum(p.numel() for p in trainable),
        "dataset": cfg.data,
        "data_source": data.source,
        "classes": list(data.classes),
        "input": {**spec.to_json(), "data_size": list(data.img_size), "adapted": adapt_note}
        | ({"pad_to": list(pad_to) if pad_to else None} if segmentation else {}),
        "train": cfg.to_json(),
        "world_size": info.world_size,
    }
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", config_json)
    _log(info, cfg, f"{cfg.model} ({num_params:,} parameters) on {data!r}")
    if cfg.from_run or frozen:
        _log(info, cfg, f"transfer: weights from {cfg.from_run or '-'} (new head); frozen: {', '.join(cfg.freeze) or 'nothing'}; "
             f"{sum(p.numel() for p in trainable):,} parameters train")
    if adversarial is not None:
        how = f"{cfg.adv_steps}-step PGD" if cfg.adversarial == "pgd" else "FGSM"
        _log(info, cfg, f"adversarial training: each batch replaced by its {how} version, eps {cfg.adv_eps:.4g} ({cfg.adv_eps * 255:.3g}/255)")
    if pad_to:
        _log(info, cfg, f"{cfg.model} does not predict all of a {img_size[1]}x{img_size[0]} image as it is: each is mirrored "
             f"out to {pad_to[1]}x{pad_to[0]} (U-Net's overlap-tile) and the output cropped back to {img_size[1]}x{img_size[0]}")
    _log(info, cfg, f"input: {adapt_note}; {len(train_batches)} steps/epoch of {cfg.batch_size}; {threads} threads; -> {run_dir}")
    if state is not None:
        _log(info, cfg, f"resumed from epoch {state['epoch']}" + (f" step {state['step']}" if state["step"] else ""))

    def checkpoint(epoch: int, step: int) -> None:
        if info.is_main:
            ckpt.save_checkpoint(run_dir, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "epoch": epoch, "step": step,
                "rng_torch": torch.get_rng_state(), "history": history,
                "progress": progress.__dict__.copy() if step else {},
            })  # fmt: skip

    train_seconds = history[-1]["seconds"] if history else 0.0
    target_key = "test_mean_iou" if segmentation else "test_accuracy"  # what --target-accuracy is a target for
    target_name = "test mean IoU" if segmentation else "test accuracy"
    seconds_to_target = next(
        (h["seconds"] for h in history if cfg.target_accuracy and h[target_key] >= cfg.target_accuracy), None
    )

    def run_evaluation() -> dict[str, Any]:
        if segmentation:
            return evaluate_segmentation(core, test_batches, num_outputs, loss_fn, info.device)
        return evaluate(model, test_batches, loss_fn, info.device)

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
                        f"loss {p.loss:.4f} acc {p.accuracy:.1%} {p.seen / max(p.seconds, 1e-9):,.0f} img/s "
                        f"run ETA {_fmt_seconds(remaining)} ({_fmt_seconds(done)} so far)"
                    )

            try:
                train_one_epoch(
                    net, train_batches, epoch, optimizer, scheduler, loss_fn, progress,
                    device=info.device, should_stop=stop_now, on_flush=on_flush, adversarial=adversarial,
                    autocast_dtype=AUTOCAST_DTYPES[cfg.precision],
                )  # fmt: skip
            finally:
                if bar is not None:
                    bar.close()
            if progress.step < len(train_batches):  # stopped mid-epoch
                checkpoint(epoch, progress.step)
                interrupted = True
                break
            ddp.sync_buffers(model, info)
            last_eval = run_evaluation()
            train_seconds += progress.seconds
            record = {
                "epoch": epoch,
                "train_loss": progress.loss,
                "train_accuracy": progress.accuracy,
                "test_loss": last_eval["loss"],
                "test_accuracy": last_eval["accuracy"],
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": train_seconds,
                "images_per_second": progress.seen * info.world_size / max(progress.seconds, 1e-9),
            }
            if segmentation:  # test_accuracy above is the pixel accuracy
                record |= _segmentation_record(last_eval, data.classes)
            history.append(record)
            progress = EpochProgress()
            checkpoint(epoch, 0)
            if segmentation:
                scores = (f"test loss {record['test_loss']:.4f}  mIoU {record['test_mean_iou']:.4f}  "
                          f"Dice {record['test_mean_dice']:.4f}  pixel acc {record['test_accuracy']:.2%}")  # fmt: skip
            else:
                scores = f"test loss {record['test_loss']:.4f}  test acc {record['test_accuracy']:.2%}"
            _log(
                info, cfg,
                f"epoch {epoch:>3}/{cfg.epochs}  loss {record['train_loss']:.4f}  acc {record['train_accuracy']:.2%}  "
                f"{scores}  {record['images_per_second']:,.0f} img/s  {train_seconds:.1f}s",
            )  # fmt: skip
            if cfg.target_accuracy and record[target_key] >= cfg.target_accuracy:
                seconds_to_target = train_seconds
                target = f"{cfg.target_accuracy:.4g}" if segmentation else f"{cfg.target_accuracy:.2%}"
                _log(info, cfg, f"reached {target_name} {target} after {train_seconds:.1f}s of training")
            if ctrl_c.is_set():
                interrupted = True
                break

    if last_eval is None and history:  # resumed a finished run or stopped early: measure once more
        last_eval = run_evaluation()
    if segmentation:
        metrics = _segmentation_metrics(cfg, history, train_seconds, seconds_to_target, last_eval, data.classes, interrupted, num_params)
    else:
        metrics = _metrics(cfg, history, train_seconds, seconds_to_target, last_eval, len(data.classes), test_y, interrupted, num_params)
    if info.is_main:
        shown = None
        if segmentation and history:  # a few test scenes for the report: image, ground truth, prediction
            n = min(len(test_x), MASK_FIGURE_SCENES)
            shown = (test_x[:n], predict_mask(core, spec.normalize(test_x[:n]).to(info.device)).cpu(), test_y[:n])
        classes = list(data.classes)
        if segmentation:  # the pixel confusion matrix has a row per model output
            classes += [f"class {k}" for k in range(len(classes), num_outputs)]
        _write_outputs(run_dir, model, metrics, classes, test_y.numpy(), last_eval, masks=shown)
        if interrupted:
            _log(info, cfg, f"interrupted: checkpoint saved; continue with the same command plus --resume (run directory {run_dir})")
        elif segmentation:
            _log(info, cfg, f"test mean IoU {metrics['test_mean_iou']:.4f} (Dice {metrics['test_mean_dice']:.4f}, pixel accuracy "
                 f"{metrics['test_accuracy']:.2%}) after {train_seconds:.1f}s of training; report: {run_dir / 'report.html'}")
        else:
            _log(info, cfg, f"test accuracy {metrics['test_accuracy']:.2%} after {train_seconds:.1f}s of training; report: {run_dir / 'report.html'}")
    return TrainResult(model, metrics, run_dir, interrupted)


def _adversarial(cfg: TrainConfig, model: nn.Module, spec: InputSpec) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
    """The batch -> adversarial batch function of adversarial training, or None.

    The attack runs on the unwrapped model (not the DDP wrapper: its forward would take part in
    gradient synchronization), in eval mode (adversarial_batch), in pixel space with the run's
    normalization. PGD's random starts come from the global torch RNG, which the checkpoint
    saves, so a resumed run sees the same adversarial batches."""
    if cfg.adversarial == "none":
        return None
    from deepnotes.explain.attack import adversarial_batch

    def make(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        adv = adversarial_batch(
            model, x, y, cfg.adversarial, cfg.adv_eps, mean=spec.mean, std=spec.std, alpha=cfg.adv_alpha, steps=cfg.adv_steps
        )
        return adv.contiguous(memory_format=torch.channels_last) if cfg.channels_last else adv

    return make


def _metrics(cfg, history, train_seconds, seconds_to_target, last_eval, num_classes, test_y, interrupted, num_params) -> dict[str, Any]:
    from deepnotes.report import confusion_matrix

    metrics: dict[str, Any] = {
        "test_accuracy": history[-1]["test_accuracy"] if history else None,
        "test_loss": history[-1]["test_loss"] if history else None,
        "best_test_accuracy": max((h["test_accuracy"] for h in history), default=None),
        "train_seconds": train_seconds,
        "target_accuracy": cfg.target_accuracy,
        "seconds_to_target": seconds_to_target,
        "epochs_completed": len(history),
        "num_params": num_params,
        "interrupted": interrupted,
        "epochs": history,
    }
    if last_eval is not None:
        metrics["confusion"] = confusion_matrix(test_y.numpy(), last_eval["preds"], num_classes).tolist()
    return metrics


def _segmentation_record(ev: dict[str, Any], classes) -> dict[str, Any]:
    """The segmentation scores of one evaluation, as metrics.json holds them (classes by name)."""
    return {
        "test_mean_iou": ev["mean_iou"],
        "test_mean_dice": ev["mean_dice"],
        "test_pixel_accuracy": ev["pixel_accuracy"],
        "test_iou": seg.by_class(ev["iou"], classes),
        "test_dice": seg.by_class(ev["dice"], classes),
    }


def _segmentation_metrics(cfg, history, train_seconds, seconds_to_target, last_eval, classes, interrupted, num_params) -> dict[str, Any]:
    """metrics.json of a segmentation run: _metrics' keys (test_accuracy = pixel accuracy, the
    confusion matrix counts pixels) plus mean IoU, Dice and per-class IoU / Dice by class name."""
    metrics: dict[str, Any] = {
        "task": "segmentation",
        "target_metric": "test_mean_iou",  # --target-accuracy is compared with it
        "test_accuracy": history[-1]["test_accuracy"] if history else None,
        "test_loss": history[-1]["test_loss"] if history else None,
        "test_mean_iou": None,
        "test_mean_dice": None,
        "test_pixel_accuracy": None,
        "best_test_mean_iou": max((h["test_mean_iou"] for h in history), default=None),
        "best_test_accuracy": max((h["test_accuracy"] for h in history), default=None),
    }
    if history:
        metrics |= {k: v for k, v in history[-1].items() if k in ("test_mean_iou", "test_mean_dice", "test_pixel_accuracy", "test_iou", "test_dice")}
    metrics |= {
        "train_seconds": train_seconds,
        "target_accuracy": cfg.target_accuracy,
        "seconds_to_target": seconds_to_target,
        "epochs_completed": len(history),
        "num_params": num_params,
        "interrupted": interrupted,
        "epochs": history,
    }
    if last_eval is not None:
        metrics["confusion"] = last_eval["confusion"].tolist()
    return metrics


MASK_FIGURE_SCENES = 6  # test scenes drawn in masks.png


def _write_outputs(run_dir: Path, model: nn.Module, metrics: dict, classes: list[str], test_y, last_eval, masks=None) -> None:
    from deepnotes.report import plot_confusion, plot_curves, write_run_report

    ckpt.save_weights(run_dir, model)
    figures = []
    segmentation = metrics.get("task") == "segmentation"
    if metrics["epochs"]:
        plot_curves(metrics["epochs"], run_dir / "curves.png")
        what = "loss, pixel accuracy and mean IoU" if segmentation else "loss and accuracy"
        figures.append({"path": "curves.png", "caption": f"{what} per epoch"})
    if masks is not None:
        from deepnotes.segment import draw_masks

        draw_masks(*masks, classes, run_dir / "masks.png")
        figures.append({"path": "masks.png", "caption": f"the first {len(masks[0])} test scenes: image, ground truth, prediction"})
    if "confusion" in metrics:
        plot_confusion(np.array(metrics["confusion"]), classes, run_dir / "confusion.png")
        where = "the test pixels" if segmentation else "the test set"
        figures.append({"path": "confusion.png", "caption": f"confusion matrix on {where} (rows: true class)"})
    metrics["figures"] = figures
    write_json(run_dir / "metrics.json", metrics)
    write_run_report(run_dir)


def _progress_bar(info: ddp.DistInfo, cfg: TrainConfig, epoch: int, total: int, initial: int):
    if not (info.is_main and cfg.progress and sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"epoch {epoch}/{cfg.epochs}", unit="step", leave=False, dynamic_ncols=True)


def _fmt_seconds(s: float) -> str:
    s = int(s)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
