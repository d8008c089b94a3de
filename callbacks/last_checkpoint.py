"""LastCheckpoint: last.ckpt every half minute (or every few steps), and once more when training ends."""

from datetime import timedelta

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from callbacks.lightning_internals import last_saved_step, save_last_now


class LastCheckpoint(ModelCheckpoint):
    """Writes only `last.ckpt`: every `every_n_seconds` of training, and at the end of training.

    A killed run loses at most `every_n_seconds` of work (and the step under way). By the clock rather than
    by steps, the price of that safety stays small whatever a step costs: a small model's 10 MB checkpoint
    costs about as much as a step, so every 10 steps was a tenth of its run. `every_n_train_steps`, when
    given, saves every that many steps instead (the tests use it: a step count is the same on every
    machine). With a writer that works in the background
    (`AtomicCheckpointIO(background=True)`), a save may still be writing during the next step's forward and
    backward passes; that step waits for it before it changes the weights. `ModelCheckpoint` alone skips the
    final save when the run stops between two of those steps (a `max_steps` or `max_time` that is not a
    multiple), so a finished run's last.ckpt could lag its real end; here it never does. It also writes it
    again when the last step was saved before that step's validation, so that the file knows the best
    checkpoint that validation made. A run stopped by an error keeps the previous last.ckpt, which is what
    `DivergenceGuard` relies on. A run stopped by SIGTERM (a scheduler, `timeout`) stops between two steps,
    and saves that step; Ctrl-C can land half-way through a step, so it keeps the previous last.ckpt.
    """

    def __init__(
        self, every_n_seconds: float | None = 30.0, every_n_train_steps: int | None = None, dirpath: str | None = None
    ) -> None:
        if every_n_train_steps is not None:
            trigger = {"every_n_train_steps": every_n_train_steps}
        else:
            trigger = {"train_time_interval": timedelta(seconds=every_n_seconds)} if every_n_seconds else {}
        super().__init__(dirpath=dirpath, save_last=True, save_top_k=0, **trigger)

    _last_validated_step = -1

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not trainer.sanity_checking:
            self._last_validated_step = trainer.global_step

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        _wait_for_write(trainer)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        super().on_exception(trainer, pl_module, exception)
        if isinstance(exception, SIGTERMException) and not (trainer.validating or trainer.sanity_checking):
            save_last_now(self, trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The parent's own test (not in fast_dev_run or sanity checks, nor twice for one step), except that
        # a step saved before its validation is saved again.
        validated_since = last_saved_step(self) == trainer.global_step == self._last_validated_step
        save_last_now(self, trainer, unless_skipped=not validated_since)
        # Every process leaves training with the files on disk (under DDP only rank zero writes them).
        _wait_for_write(trainer)
        trainer.strategy.barrier("LastCheckpoint.on_train_end")


def _wait_for_write(trainer: pl.Trainer) -> None:
    wait = getattr(trainer.strategy.checkpoint_io, "wait", None)
    if wait is not None:
        wait()
