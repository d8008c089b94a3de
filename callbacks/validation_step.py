"""ValidationStep: a validation's scalars at the step its pictures and checkpoints carry."""

import lightning.pytorch as pl


class ValidationStep(pl.Callback):
    """Logs each validation's metrics (`val_loss`, ...) at `trainer.global_step`, the number of optimizer steps
    taken, which is where the observers put their images, texts and scalars and what checkpoint names say.

    Lightning would log them at the index of the last training batch, one less (step 99 for the validation
    after 100 steps), so that compared by step nothing of one validation would line up. Logging a metric
    named `step` is Lightning's documented way to choose the x axis of the metrics logged with it.
    """

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            pl_module.log("step", float(trainer.global_step))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Once the validation's checkpoints are named: a checkpoint saved every n steps names its file after
        # `step` in these metrics, where the validation's value would stay until the next validation.
        trainer.callback_metrics.pop("step", None)
