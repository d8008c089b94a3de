"""Every fit ends observed: one last validation when a run stops between two validations."""

from typing import Any

import lightning.pytorch as pl


class FinalValidation(pl.Callback):
    """Makes a fit that reaches `max_steps` end with a validation: val_loss, samples, pictures, best checkpoint.

    Lightning validates before it stops when something asks it to (`trainer.should_stop`), which is how
    `max_time` and early stopping end a run; reaching `max_steps` does not ask, so a run whose `max_steps`
    is not a multiple of `val_check_interval` would end without its last val_loss and samples. This asks at
    the last step. A last step that validates anyway validates once.
    """

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *_: Any) -> None:
        if trainer.max_steps != -1 and trainer.global_step >= trainer.max_steps:
            trainer.should_stop = True
