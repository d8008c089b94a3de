"""EMA: Lightning's EMAWeightAveraging, with an average that is the current weights until averaging starts."""

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import EMAWeightAveraging
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from callbacks.lightning_internals import averaged_model


class EMA(EMAWeightAveraging):
    """An exponential moving average of the weights, used by validation, sample grids, checkpoints and predict.

    Same arguments as `EMAWeightAveraging` (`decay`, `update_starting_at_step`, ...). Lightning's callback
    leaves the average at the untrained initial weights until its first update, yet swaps it in for
    validation and saves it as the checkpoint's `state_dict`: a run shorter than `update_starting_at_step`
    reported the initial model's `val_loss`, drew noise and named its best checkpoint after it. Here, until
    the first update, the average follows (is a copy of) the current weights after every training batch, so
    everything that reads it sees the trained model; averaging proper starts at the configured step.

    `predict`, `validate` and `test` from a checkpoint this callback (or `EMAWeightAveraging`) wrote need
    nothing restored: Lightning loads the checkpoint's `state_dict`, the averaged weights, into the model.
    That gets one info line instead of Lightning's "cannot be restored" warning. (From an
    `EMAWeightAveraging` checkpoint saved before its first update, whose `state_dict` is the initial copy,
    the model takes the saved current weights instead.) Its state is filed under `EMAWeightAveraging`'s
    key, so checkpoints of either callback resume with the other.
    """

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self._follow_until_averaging(pl_module)

    @property
    def state_key(self) -> str:
        # The key Lightning's callback files its state under, so checkpoints from either resume with the other.
        return "EMAWeightAveraging"

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if trainer.state.fn != TrainerFn.FITTING and "current_model_state" in checkpoint:
            # Lightning has loaded `state_dict` into the model: the average, unless nothing had been averaged yet.
            if int(checkpoint.get("averaging_state", {}).get("n_averaged", 1)) == 0:
                pl_module.load_state_dict(checkpoint["current_model_state"])
                rank_zero_info("EMA: averaging had not started in this checkpoint; using its current_model_state weights.")
            else:
                rank_zero_info("EMA: using the averaged (EMA) weights, saved as the checkpoint's state_dict.")
            return
        super().on_load_checkpoint(trainer, pl_module, checkpoint)
        # A checkpoint written by EMAWeightAveraging before its first update holds the initial weights as the
        # average; the weights the run had reached take their place.
        self._follow_until_averaging(pl_module)

    def _follow_until_averaging(self, pl_module: pl.LightningModule) -> None:
        """Before the first update (`n_averaged` 0), make the average a copy of the current weights.

        The first update then copies the weights once more (`AveragedModel` does so when nothing has been
        averaged yet), and the moving average runs from there.
        """
        average = averaged_model(self)
        if average is not None and int(average.n_averaged) == 0:
            average.module.load_state_dict(pl_module.state_dict())
