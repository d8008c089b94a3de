"""CheckpointExtras: what the lab adds to every checkpoint beyond Lightning's own state."""

from typing import Any

import lightning.pytorch as pl

from checkpoints import collect_rng_states, set_rng_states, stamp


class CheckpointExtras(pl.Callback):
    """Saves the random generators' states, and which model and checkpoint format wrote the file.

    Lightning restores weights, optimizer, schedule, loops and callbacks but not the global random
    generators that drive dropout and diffusion noise. With their states saved, and restored when training
    starts again, a resumed run draws the same random numbers as one that never stopped. `train.py` adds
    this callback to every run; the model name and format (`checkpoints.format`) let it reject the wrong
    checkpoint clearly and upgrade an older one.
    """

    def __init__(self) -> None:
        self._states_to_restore: dict[str, Any] | None = None

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        stamp(checkpoint, type(pl_module).__name__)
        checkpoint["rng_states"] = collect_rng_states()

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._states_to_restore = checkpoint.get("rng_states")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Here, not at load time: setting up the run in between (datasets, loaders) may draw random numbers.
        if self._states_to_restore is not None:
            set_rng_states(self._states_to_restore)
            self._states_to_restore = None
