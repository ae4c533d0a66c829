"""Never lose a run: kills at any moment, a full disk, two writers, a reader that leaves, SIGTERM,
finishing a run whose outputs were never written, and resume's promises about the schedule.

Faults are injected from outside the package: a subprocess runs `deepnotes train` with
os.replace (the commit point of every atomic write) patched to SIGKILL the process at its
N-th call, or is killed at a random moment; a tmpfs too small for a second checkpoint stands
for a full disk."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from clicheck import assert_one_line_error, run_cli
from safetensors.torch import load_file

from deepnotes.tasks import fit
from deepnotes.train import TrainConfig

EPOCHS = 3
TRAIN = ["train", "mlp", "--data", "digits", "--epochs", str(EPOCHS), "--threads", "1", "--quiet", "--model-arg", "dropout=0.2"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}

# Runs `deepnotes train` and SIGKILLs itself at the N-th os.replace (argv[1]) while writing.
KILL_AT_REPLACE = """
import os, signal, sys
n, calls, real = int(sys.argv[1]), [0], os.replace
def replace(src, dst):
    calls[0] += 1
    if calls[0] == n:
        os.kill(os.getpid(), signal.SIGKILL)  # mid-write: the temporary file is complete, not yet renamed
    real(src, dst)
os.replace = replace
from deepnotes.cli import main
sys.exit(main(sys.argv[2:]))
"""


def weights(run_dir):
    return load_file(str(Path(run_dir) / "model.safetensors"))


def same_weights(a, b) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run every interrupted one must end equal to."""
    out = tmp_path_factory.mktemp("ref") / "run"
    assert run_cli_quiet([*TRAIN, "--out", str(out)]) == 0
    return out


def run_cli_quiet(argv):
    from deepnotes.cli import main

    return main([str(a) for a in argv])


def finish(out) -> int:
    """What a user does after a crash: --resume when the run directory got a config.json, else start again."""
    resume = ["--resume"] if (Path(out) / "config.json").exists() else []
    return run_cli_quiet([*TRAIN, "--out", str(out), *resume])


def _writes_of_a_run() -> int:
    # config.json + manifest, then per epoch a checkpoint + latest.json, then weights + manifest,
    # curves.png, confusion.png, metrics.json, report.html
    return 2 + 2 * EPOCHS + 6


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_killed_at_any_write_resume_ends_with_the_same_weights(tmp_path, reference, seed):
    """SIGKILL at two write moments drawn per seed (each seed also kills in the final output
    writing), then --resume: always the same weights as the run never killed."""
    total = _writes_of_a_run()
    rng = random.Random(seed)
    moments = sorted({rng.randrange(1, total - 6), rng.randrange(total - 6, total + 1)})  # one in training, one in the outputs
    for n in moments:
        out = tmp_path / f"kill-{n}"
        p = subprocess.run([sys.executable, "-c", KILL_AT_REPLACE, str(n), *TRAIN, "--out", str(out)], env=ENV, capture_output=True, text=True)
        assert p.returncode == -signal.SIGKILL, (n, p.stderr)
        assert finish(out) == 0
        assert same_weights(reference, out), n
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["epochs_completed"] == EPOCHS and not any(p.name.endswith(".tmp") for p in out.rglob("*"))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2))
def test_killed_at_a_random_moment_resume_ends_with_the_same_weights(tmp_path, reference, seed):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "deepnotes", *TRAIN, "--out", str(out)], env=ENV)
    time.sleep(random.Random(seed).uniform(1.0, 4.0))  # from importing torch to writing the report
    proc.kill()
    proc.wait()
    assert finish(out) == 0
    assert same_weights(reference, out)


def test_a_run_whose_outputs_were_never_written_is_finished_by_resume(tmp_path, reference, capsys):
    out = tmp_path / "run"
    assert run_cli_quiet([*TRAIN, "--out", out]) == 0
    for name in ("model.safetensors", "metrics.json", "report.html", "curves.png", "confusion.png"):
        (out / name).unlink()
    code, _, err = run_cli(capsys, *TRAIN, "--out", out)  # a plain rerun is refused ...
    assert_one_line_error(code, err, "already holds a run", "--resume")
    code, _, err = run_cli(capsys, *[a for a in TRAIN if a != "--quiet"], "--out", out, "--resume")  # ... --resume finishes it
    assert code == 0, err
    assert same_weights(reference, out) and (out / "report.html").exists()
    assert json.loads((out / "metrics.json").read_text())["epochs_completed"] == EPOCHS


def test_two_processes_cannot_train_into_one_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    long = [sys.executable, "-m", "deepnotes", "train", "mlp", "--data", "digits", "--epochs", "400", "--schedule", "none",
            "--threads", "1", "--out", str(out)]  # fmt: skip
    first = subprocess.Popen(long, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in first.stdout:  # the first process holds the lock from before it writes config.json
            if line.startswith("epoch   1/"):
                break
        before = (out / "config.json").read_bytes()
        code, _, err = run_cli(capsys, *TRAIN, "--out", out, "--resume")
        assert_one_line_error(code, err, "another deepnotes process is training into")
        assert (out / "config.json").read_bytes() == before
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)


def test_sigterm_saves_a_checkpoint_like_ctrl_c(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "deepnotes", "train", "mlp", "--data", "digits", "--epochs", "400", "--schedule", "none",
           "--threads", "1", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("epoch   2/"):
            break
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert json.loads((out / "checkpoints" / "latest.json").read_text())["epoch"] >= 2


def test_a_reader_that_leaves_does_not_stop_training(tmp_path):
    """`deepnotes train ... | head -1`: the run goes on to the end, silently, and exits 0."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "deepnotes", *[a for a in TRAIN if a != "--quiet"], "--out", str(out)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    proc.stdout.readline()
    proc.stdout.close()  # the reader leaves after one line
    assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    assert json.loads((out / "metrics.json").read_text())["epochs_completed"] == EPOCHS


def test_stray_temporary_files_of_a_killed_write_are_removed(tmp_path, reference):
    out = tmp_path / "run"
    assert run_cli_quiet([*TRAIN, "--out", out, "--epochs", "1", "--schedule", "none"]) == 0
    stray = [out / ".model.safetensors.abc123.tmp", out / "checkpoints" / ".epoch-0002.pt.xyz.tmp"]
    for p in stray:
        p.write_bytes(b"half a file")
    assert run_cli_quiet([*TRAIN, "--out", out, "--epochs", "2", "--schedule", "none", "--resume"]) == 0
    assert not any(p.exists() for p in stray)


# --------------------------------------------------------------------------- resume and the schedule


def cfg(tmp_path, name, **kw):
    return TrainConfig(**{**dict(model="mlp", data="digits", batch_size=64, seed=0, out=str(tmp_path / name), progress=False), **kw})


@pytest.mark.parametrize("schedule", ["cosine", "onecycle", "step", "none"])
def test_resume_continues_every_schedule_bit_for_bit(tmp_path, schedule):
    """With the --epochs of the run, every schedule (the default cosine too) resumes exactly."""
    fit(cfg(tmp_path, "straight", epochs=3, schedule=schedule))
    fit(cfg(tmp_path, "split", epochs=3, schedule=schedule, target_accuracy=0.0001))  # stops after epoch 1
    fit(cfg(tmp_path, "split", epochs=3, schedule=schedule, resume=True))
    assert same_weights(tmp_path / "straight", tmp_path / "split")


def test_a_schedule_laid_out_over_the_run_refuses_other_epochs_on_resume(tmp_path):
    from deepnotes.errors import UserError

    fit(cfg(tmp_path, "run", epochs=2))
    with pytest.raises(UserError, match="cosine schedule is laid out over 2 epochs.*--epochs 2"):
        fit(cfg(tmp_path, "run", epochs=4, resume=True))
    fit(cfg(tmp_path, "steps", epochs=2, schedule="step"))  # a schedule without a horizon may be extended
    assert fit(cfg(tmp_path, "steps", epochs=3, schedule="step", resume=True))["epochs_completed"] == 3


# --------------------------------------------------------------------------- the file system says no


@pytest.fixture
def tmpfs(tmp_path):
    """A 1000 KiB tmpfs: room for config.json and one checkpoint of the MLP (624 KB), not two."""
    where = tmp_path / "small"
    where.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1000k", "tmpfs", str(where)]).returncode:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    yield where
    subprocess.run(["umount", str(where)])


def test_a_full_disk_is_one_line_and_resume_afterwards_is_bit_identical(tmpfs, reference, capsys):
    out = tmpfs / "run"
    code, _, err = run_cli(capsys, *TRAIN, "--out", out)
    assert_one_line_error(code, err, "No space left on device", "checkpoints", "--resume")
    assert json.loads((out / "checkpoints" / "latest.json").read_text())["epoch"] == 1  # the last good checkpoint stays
    subprocess.run(["mount", "-o", "remount,size=20m", str(tmpfs)], check=True)  # space freed
    code, _, err = run_cli(capsys, *TRAIN, "--out", out, "--resume")
    assert code == 0, err
    assert same_weights(reference, out)


def test_a_read_only_file_system_is_one_line(tmpfs, capsys):
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    code, _, err = run_cli(capsys, *TRAIN, "--out", tmpfs / "run")
    assert_one_line_error(code, err, "Read-only file system", "--out")


def test_resume_refuses_other_data_behind_the_same_name(tmp_path, capsys):
    """The run records the SHA-256 of its data; --data-dir pointing at other files is refused."""
    from deepnotes.data.idx import write_idx

    rng = np.random.default_rng(0)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
        for name, shape in zip(names, ((40, 28, 28), (40,), (20, 28, 28), (20,))):
            data = rng.integers(0, 10 if len(shape) == 1 else 256, shape).astype(np.uint8)
            write_idx(tmp_path / folder / f"{name}.gz", data)
    out = tmp_path / "run"
    base = ["train", "mlp", "--data", "fashion-mnist", "--epochs", "2", "--schedule", "none", "--threads", "1", "--quiet"]
    assert run_cli(capsys, *base, "--epochs", "1", "--data-dir", tmp_path / "a", "--out", out)[0] == 0
    code, _, err = run_cli(capsys, *base, "--data-dir", tmp_path / "b", "--out", out, "--resume")
    assert_one_line_error(code, err, "differs from the data", "--data-dir")
    assert run_cli(capsys, *base, "--data-dir", tmp_path / "a", "--out", out, "--resume")[0] == 0


def test_a_listing_cut_short_by_its_reader_is_not_reported_as_success():
    read, write = os.pipe()
    os.close(read)  # the reader has left before the first line: every write fails
    proc = subprocess.Popen([sys.executable, "-m", "deepnotes", "list"], env=ENV, stdout=write, stderr=subprocess.PIPE)
    os.close(write)
    assert proc.wait(timeout=60) == 141  # 128 + SIGPIPE, as a shell reports it
    assert b"Traceback" not in proc.stderr.read()
