"""When the sample callbacks draw: the schedule shared by text and image samples."""

import lightning.pytorch as pl
from lightning.pytorch.utilities.seed import isolate_rng

from errors import UserInputError


class PeriodicSampler(pl.Callback):
    """Calls `draw` at the end of each validation and every `every_n_steps` training steps (if set).

    Only rank zero draws, never during the sanity check, and at most once per step (a validation that ends
    on a sampling step does not draw twice). Drawing at validation happens inside the validation epoch, so
    a weight-averaging callback listed after this one has its averaged (EMA) weights swapped in.
    """

    def __init__(self, every_n_steps: int | None) -> None:
        if every_n_steps is not None and every_n_steps <= 0:
            raise UserInputError(f"{type(self).__name__} every_n_steps must be positive or null, got {every_n_steps}.")
        self.every_n_steps = every_n_steps
        self._last_step: int | None = None

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._maybe_draw(trainer, pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self._maybe_draw(trainer, pl_module)

    def _maybe_draw(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero and self._last_step != trainer.global_step:
            self._last_step = trainer.global_step
            with isolate_rng():  # drawing samples must not change the random numbers training uses next
                self.draw(trainer, pl_module)

    def draw(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        raise NotImplementedError
