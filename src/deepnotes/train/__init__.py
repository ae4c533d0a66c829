"""The engine every task shares: the loop, checkpoints through the run directory, resume,
multi-process (DDP) support, precision and learning-rate schedules. It names no task.

    from deepnotes.train import TrainConfig          # cheap: no torch
    from deepnotes.tasks import fit                  # picks the model's task, then runs the engine
    metrics = fit(TrainConfig(model="lenet5", data="digits", epochs=10))

The engine (deepnotes.train.engine) and torch load on first use, so `deepnotes.train.config`
stays cheap to import.
"""

from deepnotes.train.config import TrainConfig

_ENGINE_NAMES = ("EpochProgress", "TrainingDiverged", "TrainResult", "run", "train_one_epoch")

__all__ = ["TrainConfig", *_ENGINE_NAMES]


def __getattr__(name: str):
    if name in _ENGINE_NAMES:
        from deepnotes.train import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'deepnotes.train' has no attribute {name!r}")
