"""Training: the loop, checkpoints, run directories, multi-process (DDP) support; classification
and segmentation (deepnotes.train.segmentation) through the same loop.

    from deepnotes.train import TrainConfig, fit
    metrics = fit(TrainConfig(model="lenet5", data="digits", epochs=10))

The loop (and torch) load on first use, so `deepnotes.train.config` stays cheap to import.
"""

from deepnotes.train.config import TrainConfig

_LOOP_NAMES = (
    "EpochProgress", "TrainingDiverged", "TrainResult", "evaluate", "evaluate_segmentation", "fit", "run_training", "train_one_epoch",
)  # fmt: skip

__all__ = ["TrainConfig", *_LOOP_NAMES]


def __getattr__(name: str):
    if name in _LOOP_NAMES:
        from deepnotes.train import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'deepnotes.train' has no attribute {name!r}")
