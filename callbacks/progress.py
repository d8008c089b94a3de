"""A training progress bar that counts the run's steps, not one epoch's batches."""

import math
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Timer, TQDMProgressBar

from callbacks.lightning_internals import bar_should_update


class StepProgressBar(TQDMProgressBar):
    """Lightning's bar, showing `step/max_steps` for the whole run, and the time left under `max_time`.

    The lab's runs are measured in steps (`max_steps`) or in time (`max_time`), and an epoch of tiny
    Shakespeare is thousands of steps long, so Lightning's per-epoch count (`11/?` or `11/69708`) says
    nothing about when a run ends. This bar goes once from the step the run starts at (a resumed run
    starts part-way) to `trainer.estimated_stepping_batches`, and when a time limit is set it also says
    how much of it is left.
    """

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        bar = self.train_progress_bar
        steps = trainer.estimated_stepping_batches
        bar.reset(total=steps if math.isfinite(steps) else None)
        bar.initial = bar.n = trainer.global_step  # so that the rate counts only this run's steps
        bar.refresh()
        self._timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)

    def on_train_epoch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        self.train_progress_bar.set_description(self._description(trainer))

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *_: Any) -> None:
        bar = self.train_progress_bar
        if bar_should_update(self, trainer.global_step, bar.total):
            bar.set_description(self._description(trainer), refresh=False)
            bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
            bar.n = trainer.global_step
            bar.refresh()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))

    def _description(self, trainer: pl.Trainer) -> str:
        description = f"Epoch {trainer.current_epoch}"
        left = self._timer.time_remaining() if self._timer is not None else None
        if left is not None:
            minutes, seconds = divmod(max(0, round(left)), 60)
            description += f", {minutes}:{seconds:02d} of max_time left"
        return description
