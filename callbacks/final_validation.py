"""Every fit ends observed, and a fit with a time budget ends within it."""

import time
from datetime import timedelta
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.utilities import rank_zero_info

FIRST_RESERVE = 0.2  # of the budget, kept for the final validation until one validation has been timed


class FinalValidation(pl.Callback):
    """Makes a fit end with a validation (val_loss, samples, pictures, best checkpoint) that fits its `max_time`.

    Lightning validates before it stops when something asks it to (`trainer.should_stop`), which is how
    `max_time` and early stopping end a run; reaching `max_steps` does not ask, so a run whose `max_steps`
    is not a multiple of `val_check_interval` would end without its last val_loss and samples. This asks at
    the last step. A last step that validates anyway validates once.

    With `max_time`, Lightning stops training when the budget is spent and then validates, draws and saves,
    which on a slow CPU took minutes more. Here training stops early enough for that last validation to end
    within the budget: it keeps back as much time as the latest validation took (timed from its start to its
    checkpoints), or a fifth of the budget before the first one. The budget counts from the start of the
    fit, sanity check included; the process's own start-up (imports, reading the data) comes before it.
    """

    def __init__(self) -> None:
        self._fit_start = self._validation_start = 0.0
        self._before_training_s = 0.0  # the sanity check and set-up, spent from the budget before the Timer starts
        self._validation_s: float | None = None
        self._timer: Timer | None = None  # Lightning's, made from max_time

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fit_start = time.monotonic()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._before_training_s = time.monotonic() - self._fit_start
        self._timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._validation_start = time.monotonic()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validation_s = time.monotonic() - self._validation_start

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *_: Any) -> None:
        if trainer.max_steps != -1 and trainer.global_step >= trainer.max_steps:
            trainer.should_stop = True
        timer = self._timer
        if timer is None or timer.time_remaining() is None or trainer.should_stop:
            return
        budget = timer.time_elapsed() + timer.time_remaining()
        reserve = self._validation_s if self._validation_s is not None else FIRST_RESERVE * budget
        stop = trainer.strategy.broadcast(self._before_training_s + timer.time_elapsed() + reserve >= budget)
        if stop:
            trainer.should_stop = True
            rank_zero_info(
                f"Stopping at step {trainer.global_step}: the last {timedelta(seconds=round(reserve))} of the "
                f"{timedelta(seconds=round(budget))} budget (max_time) is kept for the final validation."
            )
