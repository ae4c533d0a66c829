"""Checkpoints and exported weights of a run directory, written atomically and verified.

    DIR/checkpoints/epoch-0003.pt          weights + optimizer + scheduler + epoch + RNG state
    DIR/checkpoints/latest.json            {"file", "sha256", "epoch", "step"}: the commit point
    DIR/model.safetensors                  the weights alone, for predict / transfer
    DIR/manifest.json                      {"model.safetensors": sha256}

A checkpoint file is complete (fsynced, renamed) before latest.json points at it, and the
previous one is deleted only after that, so an interruption at any moment leaves a good,
verifiable checkpoint. Checkpoints load with torch.load(weights_only=True): no pickled code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from deepnotes.errors import UserError
from deepnotes.fileio import atomic_path, sha256_file, write_json

WEIGHTS = "model.safetensors"
MANIFEST = "manifest.json"


def _ckpt_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def save_checkpoint(run_dir: str | Path, state: dict[str, Any]) -> Path:
    """Write state (must hold "epoch" and "step") as the run's latest checkpoint."""
    ckpt_dir = _ckpt_dir(Path(run_dir))
    name = f"epoch-{state['epoch']:04d}" + (f"-step-{state['step']:06d}" if state["step"] else "") + ".pt"
    path = ckpt_dir / name
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    latest = ckpt_dir / "latest.json"
    previous = _read_latest(latest)
    write_json(latest, {"file": name, "sha256": sha256_file(path), "epoch": state["epoch"], "step": state["step"]})
    if previous and previous.get("file") != name:
        (ckpt_dir / previous["file"]).unlink(missing_ok=True)
    return path


def _read_latest(latest: Path) -> dict | None:
    if not latest.exists():
        return None
    try:
        return json.loads(latest.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{latest} is not valid JSON ({e}); the checkpoint record is damaged") from None


def has_checkpoint(run_dir: str | Path) -> bool:
    return (_ckpt_dir(Path(run_dir)) / "latest.json").exists()


def load_checkpoint(run_dir: str | Path) -> dict[str, Any]:
    """Load and verify (SHA-256) the latest checkpoint of a run directory."""
    latest = _ckpt_dir(Path(run_dir)) / "latest.json"
    record = _read_latest(latest)
    if record is None:
        raise UserError(f"{run_dir} has no checkpoint to resume from (expected {latest}); start a run without --resume")
    path = latest.parent / record["file"]
    if not path.exists():
        raise UserError(f"checkpoint {path} named in {latest} is missing")
    digest = sha256_file(path)
    if digest != record["sha256"]:
        raise UserError(
            f"checkpoint {path} does not match the SHA-256 recorded in {latest.name} "
            f"({digest[:12]}... != {record['sha256'][:12]}...): the file was changed or damaged"
        )
    return torch.load(path, map_location="cpu", weights_only=True)


def save_weights(run_dir: str | Path, model: torch.nn.Module) -> Path:
    """Export the model's weights as safetensors and record their SHA-256 in manifest.json."""
    from safetensors.torch import save_file

    run_dir = Path(run_dir)
    path = run_dir / WEIGHTS
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    manifest_path = run_dir / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest[WEIGHTS] = sha256_file(path)
    write_json(manifest_path, manifest)
    return path


def read_run_config(run_dir: str | Path) -> dict:
    """DIR/config.json of a run, or a UserError saying why DIR is not a run directory."""
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a directory; pass a run directory written by `deepnotes train`")
    if not path.exists():
        raise UserError(f"{run_dir} is not a run directory (no config.json); pass one written by `deepnotes train`")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({e})") from None


def read_weights(run_dir: str | Path) -> dict[str, torch.Tensor]:
    """DIR/model.safetensors after checking its SHA-256 against manifest.json."""
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    path = run_dir / WEIGHTS
    if not path.exists():
        raise UserError(f"{run_dir} has no weights ({WEIGHTS} is missing); train first or pass a finished run directory")
    manifest_path = run_dir / MANIFEST
    if manifest_path.exists():
        expected = json.loads(manifest_path.read_text()).get(WEIGHTS)
        if expected and sha256_file(path) != expected:
            raise UserError(f"{path} does not match the SHA-256 in {MANIFEST}: the file was changed or damaged")
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise UserError(f"{path} is not a valid safetensors file ({e})") from None


def load_weights(run_dir: str | Path, model: torch.nn.Module) -> torch.nn.Module:
    """Load DIR/model.safetensors (verified) into `model`; every key must fit."""
    state = read_weights(run_dir)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UserError(
            f"{Path(run_dir) / WEIGHTS} does not fit the model in config.json "
            f"(missing: {', '.join(missing[:5]) or 'none'}; unexpected: {', '.join(unexpected[:5]) or 'none'})"
        )
    return model
