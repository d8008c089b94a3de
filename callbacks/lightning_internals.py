"""Every private part of Lightning the lab relies on, in one place.

Lightning offers no public way to do these few things; each function below says what it reaches for and why.
pyproject.toml pins Lightning to 2.6.x, and tests/test_lightning_internals.py checks every name used here, so
an upgrade that moves one fails there, loudly, before it can break a run quietly.
"""

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar, WeightAveraging
from torch.optim.swa_utils import AveragedModel


def averaged_model(callback: WeightAveraging) -> AveragedModel | None:
    """The `AveragedModel` a weight-averaging callback builds in `setup("fit")` (None before): `callbacks.EMA`
    makes it follow the current weights until averaging starts."""
    return callback._average_model


def last_saved_step(callback: ModelCheckpoint) -> int:
    """The step of the checkpoint `callback` saved last, which `callbacks.LastCheckpoint` compares with the
    step of the last validation."""
    return callback._last_global_step_saved


def save_last_now(callback: ModelCheckpoint, trainer: "pl.Trainer", unless_skipped: bool = True) -> None:
    """Write last.ckpt now, as `ModelCheckpoint` does after a validation or every n steps; with `unless_skipped`,
    not when Lightning would skip it (fast_dev_run, the sanity check, or a step already saved)."""
    if unless_skipped and callback._should_skip_saving_checkpoint(trainer):
        return
    callback._save_last_checkpoint(trainer, callback._monitor_candidates(trainer))


def bar_should_update(bar: TQDMProgressBar, current: int, total: int | float | None) -> bool:
    """Whether a TQDM bar redraws at `current` (every `refresh_rate` steps, and at the end)."""
    return bar._should_update(current, total)
