"""The run directory: the one owner of its format. Everything that reads or writes a run goes
through here; nothing else opens these files by name.

    DIR/config.json              RunConfig: what was trained on what, how the input is prepared
    DIR/metrics.json             the results (history per epoch, the task's scores, figures)
    DIR/model.safetensors        the weights alone, for predict / transfer / the explain commands
    DIR/manifest.json            {"config.json": sha256, "model.safetensors": sha256}
    DIR/checkpoints/epoch-0003.pt          training state: weights, optimizers, schedules, RNG
    DIR/checkpoints/latest.json            {"file", "sha256", "epoch", "step"}: the commit point
    DIR/report.html, *.png       what a person reads

Versions. config.json carries "format_version" (FORMAT_VERSION); a checkpoint carries it too.
Runs written before the field existed are version 0 and are read as they are: RunConfig and
read_checkpoint upgrade them in memory (never on disk), so predict, cam, attack, resume and
transfer keep working on them (tests/test_rundir.py writes a version-0 run and uses it).

Every write is atomic (deepnotes.fileio) and verified by SHA-256 on reading (config.json and the
weights through manifest.json; a checkpoint through latest.json); a checkpoint file is complete
before latest.json points at it, and the previous one is deleted only after that, so an
interruption at any moment leaves a good, verifiable checkpoint. Checkpoints load with
torch.load(weights_only=True): no pickled code runs. A training process holds an OS lock on the
directory (lock()), so a second one cannot write into it at the same time.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterator

from deepnotes.errors import UserError
from deepnotes.fileio import atomic_path, sha256_file, write_json

FORMAT_VERSION = 1

CONFIG = "config.json"
METRICS = "metrics.json"
WEIGHTS = "model.safetensors"
MANIFEST = "manifest.json"
REPORT = "report.html"
CHECKPOINTS = "checkpoints"
LATEST = "latest.json"


@dataclass
class RunConfig:
    """config.json: everything needed to rebuild the model of a run and feed it as in training.

    model_args are create_model's keyword arguments; `input` is how inputs are prepared: for
    image tasks the InputSpec fields (in_chans, img_size, mean, std) plus data_size (the
    dataset's own size), adapted (a sentence saying how the data was brought to img_size) and
    whatever the task adds (segmentation: pad_to). `train` is TrainConfig.to_json().
    """

    task: str
    model: str
    model_args: dict[str, Any]
    dataset: str
    classes: list[str]
    input: dict[str, Any]
    train: dict[str, Any]
    num_params: int
    trainable_params: int
    data_source: str = ""
    data_sha256: str | None = None  # the dataset's arrays (a resume must find the same data)
    world_size: int = 1
    deepnotes_version: str = ""
    torch_version: str = ""
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any], where: str = CONFIG) -> "RunConfig":
        d = dict(d)
        version = d.setdefault("format_version", 0)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise UserError(
                f"{where} has format_version {version!r}; this deepnotes reads versions 0 to {FORMAT_VERSION} "
                "(a newer deepnotes wrote it: upgrade deepnotes)"
            )
        d.setdefault("task", "classification")  # version 0 runs before segmentation had no "task"
        missing = [n for n in ("model", "model_args", "dataset", "classes", "input", "train") if n not in d]
        if missing:
            raise UserError(f"{where} lacks {', '.join(missing)}: it was not written by `deepnotes train`")
        d.setdefault("num_params", 0)
        d.setdefault("trainable_params", d["num_params"])
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class RunDir:
    """A run directory on disk (it may not exist yet)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._config: RunConfig | None = None

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    # -- config.json

    def exists(self) -> bool:
        return (self.path / CONFIG).exists()

    def read_config(self) -> RunConfig:
        """config.json, or a UserError saying why the folder is not a run directory."""
        if self._config is None:
            if not self.path.is_dir():
                raise UserError(f"{self.path} is not a directory; pass a run directory written by `deepnotes train`")
            path = self.path / CONFIG
            if not path.exists():
                raise UserError(f"{self.path} is not a run directory (no {CONFIG}); pass one written by `deepnotes train`")
            self._verify(CONFIG)
            data = _read_json(path)
            if not isinstance(data, dict):
                raise UserError(f"{path} should hold a JSON object; it is damaged")
            self._config = RunConfig.from_json(data, str(path))
        return self._config

    def write_config(self, config: RunConfig) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.path / CONFIG, config.to_json())
        self._record(CONFIG)
        self._config = config

    # -- manifest.json: the SHA-256 of config.json and of the weights

    def _manifest(self) -> dict[str, str]:
        path = self.path / MANIFEST
        if not path.exists():
            return {}
        manifest = _read_json(path)
        if not isinstance(manifest, dict) or not all(isinstance(v, str) for v in manifest.values()):
            raise UserError(f"{path} should map file names to SHA-256 digests; it is damaged (train the run again)")
        return manifest

    def _record(self, name: str) -> None:
        write_json(self.path / MANIFEST, {**self._manifest(), name: sha256_file(self.path / name)})

    def _verify(self, name: str) -> None:
        expected = self._manifest().get(name)
        if expected and sha256_file(self.path / name) != expected:
            raise UserError(f"{self.path / name} does not match the SHA-256 in {MANIFEST}: the file was changed or damaged")

    # -- metrics.json

    def read_metrics(self) -> dict[str, Any]:
        path = self.path / METRICS
        if not path.exists():
            raise UserError(f"{path} not found: the run has no results yet (has training finished?)")
        return _read_json(path)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_json(self.path / METRICS, metrics)

    # -- weights

    def save_weights(self, state: dict) -> Path:
        """Export a state_dict as safetensors and record its SHA-256 in manifest.json."""
        from safetensors.torch import save_file

        path = self.path / WEIGHTS
        # safetensors refuses tensors that share memory; a tied weight (a Transformer's output
        # layer is its target embedding) is written under both names, each its own copy
        out, seen = {}, set()
        for k, v in state.items():
            t = v.detach().cpu()
            ptr = t.untyped_storage().data_ptr()
            out[k] = (t.clone() if ptr in seen else t).contiguous()
            seen.add(ptr)
        state = out
        with atomic_path(path) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt"})
        self._record(WEIGHTS)
        return path

    def read_weights(self) -> dict:
        """model.safetensors after checking its SHA-256 against manifest.json."""
        from safetensors.torch import load_file

        path = self.path / WEIGHTS
        if not path.exists():
            raise UserError(f"{self.path} has no weights ({WEIGHTS} is missing); train first or pass a finished run directory")
        if WEIGHTS not in self._manifest():
            raise UserError(f"{self.path / MANIFEST} does not record {WEIGHTS}'s SHA-256, so the weights cannot be verified; "
                            "finish the run with `deepnotes train ... --resume`, which writes both")  # fmt: skip
        self._verify(WEIGHTS)
        try:
            return load_file(str(path))
        except Exception as e:  # safetensors raises its own error types for bad headers
            raise UserError(f"{path} is not a valid safetensors file ({e})") from None

    def load_weights_into(self, model) -> None:
        """Load the verified weights into `model`; every key must fit."""
        try:
            missing, unexpected = model.load_state_dict(self.read_weights(), strict=False)
        except RuntimeError as e:  # shapes that differ: e.g. another class count than config.json's
            first = str(e).split("\n\t")[1] if "\n\t" in str(e) else str(e)
            raise UserError(f"{self.path / WEIGHTS} does not fit the model in {CONFIG}: {first.strip()}") from None
        if missing or unexpected:
            raise UserError(
                f"{self.path / WEIGHTS} does not fit the model in {CONFIG} "
                f"(missing: {', '.join(missing[:5]) or 'none'}; unexpected: {', '.join(unexpected[:5]) or 'none'})"
            )

    # -- checkpoints

    def has_checkpoint(self) -> bool:
        return (self.path / CHECKPOINTS / LATEST).exists()

    def save_checkpoint(self, state: dict[str, Any]) -> Path:
        """Write state (must hold "epoch" and "step") as the run's latest checkpoint."""
        import torch

        folder = self.path / CHECKPOINTS
        name = f"epoch-{state['epoch']:04d}" + (f"-step-{state['step']:06d}" if state["step"] else "") + ".pt"
        path = folder / name
        with atomic_path(path) as tmp:
            torch.save({**state, "format_version": FORMAT_VERSION}, tmp)
        latest = folder / LATEST
        previous = self._latest() if latest.exists() else None
        write_json(latest, {"file": name, "sha256": sha256_file(path), "epoch": state["epoch"], "step": state["step"]})
        if previous and previous.get("file") != name:
            (folder / previous["file"]).unlink(missing_ok=True)
        return path

    def read_checkpoint(self) -> dict[str, Any]:
        """The latest checkpoint, verified (SHA-256) and in the current state format."""
        import torch

        latest = self.path / CHECKPOINTS / LATEST
        if not latest.exists():
            raise UserError(f"{self.path} has no checkpoint to resume from (expected {latest}); start a run without --resume")
        record = self._latest()
        path = latest.parent / record["file"]
        if not path.exists():
            raise UserError(f"checkpoint {path} named in {latest} is missing")
        digest = sha256_file(path)
        if digest != record["sha256"]:
            raise UserError(
                f"checkpoint {path} does not match the SHA-256 recorded in {LATEST} "
                f"({digest[:12]}... != {record['sha256'][:12]}...): the file was changed or damaged"
            )
        try:
            with warnings.catch_warnings():  # torch's own advice about pickles is not for this file
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # never show torch's advice to load it with weights_only=False
            raise UserError(f"{path} is not a deepnotes checkpoint ({type(e).__name__} while reading it safely); it was not loaded") from None
        if not isinstance(state, dict) or not {"model", "epoch", "step"} <= set(state):
            raise UserError(f"{path} is not a deepnotes checkpoint (no model weights, epoch and step in it)")
        return upgrade_checkpoint(state)

    def _latest(self) -> dict[str, Any]:
        latest = self.path / CHECKPOINTS / LATEST
        record = _read_json(latest)
        ok = isinstance(record, dict) and isinstance(record.get("file"), str) and isinstance(record.get("sha256"), str)
        if not ok or "/" in record["file"] or record["file"].startswith("."):
            raise UserError(f"{latest} should name the checkpoint file and its SHA-256; it is damaged (delete checkpoints/ to train again)")
        return record

    # -- safety: one writer, no stray files, every file checked before anything changes

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an OS lock on the directory (created if needed) while training writes into it;
        a second process gets a UserError. The lock dies with the process (flock), so a killed
        run never leaves it behind. A directory this call created is removed again if it is
        still empty at the end (the run was refused before writing anything)."""
        created = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UserError(f"--out {self.path} is a file, or lies under one; give a folder for the run") from None
        if not self.path.is_dir():
            raise UserError(f"--out {self.path} is not a folder; give a folder for the run")
        fd = os.open(self.path, os.O_RDONLY)
        try:
            try:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UserError(f"another deepnotes process is training into {self.path}; wait for it to finish, or use another --out") from None
            except ImportError:  # no flock on this platform: run without the lock
                pass
            yield
        finally:
            os.close(fd)
            if created:
                with contextlib.suppress(OSError):
                    self.path.rmdir()  # only if empty

    def clean_stray(self) -> list[str]:
        """Remove the temporary files of writes a killed process left (fileio's ".NAME.*.tmp")."""
        removed = []
        for folder in (self.path, self.path / CHECKPOINTS):
            for p in folder.glob(".*.tmp") if folder.is_dir() else ():
                p.unlink(missing_ok=True)
                removed.append(p.name)
        return removed

    def contents(self) -> list[str]:
        """The names in the directory (none if it does not exist)."""
        return sorted(p.name for p in self.path.iterdir()) if self.path.is_dir() else []

    def check_files(self) -> None:
        """Read and check every run file that exists (config.json, manifest.json, latest.json,
        metrics.json), so that a damaged one stops a resume before anything is changed."""
        self._manifest()
        if (self.path / CONFIG).exists():
            self.read_config()
        if (self.path / CHECKPOINTS / LATEST).exists():
            self._latest()
        if (self.path / METRICS).exists() and not isinstance(self.read_metrics(), dict):
            raise UserError(f"{self.path / METRICS} should hold a JSON object; it is damaged")


def upgrade_checkpoint(state: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's state in the current format.

    Version 0 (one optimizer and schedule; an epoch's running sums as loss_sum, correct and
    per_sample, the predictions per sample) -> version 1 (lists of optimizers and schedules;
    the sums by name: loss, correct, and pixels where a sample had more than one prediction).
    """
    version = state.get("format_version", 0)
    if version > FORMAT_VERSION:
        raise UserError(f"the checkpoint has format_version {version}; this deepnotes reads up to {FORMAT_VERSION} "
                        "(a newer deepnotes wrote it: upgrade deepnotes)")  # fmt: skip
    if version == 0:
        state = dict(state)
        state["optimizers"] = [state.pop("optimizer")]
        state["schedulers"] = [state.pop("scheduler")]
        old = state.get("progress") or {}
        if old:
            sums = {"loss": old["loss_sum"], "correct": old["correct"]}
            if old.get("per_sample", 1) > 1:
                sums["pixels"] = old["seen"] * old["per_sample"]
            state["progress"] = {"step": old["step"], "sums": sums, "seen": old["seen"], "seconds": old["seconds"]}
        state["format_version"] = FORMAT_VERSION
    return state


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({e})") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
