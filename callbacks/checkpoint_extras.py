"""CheckpointExtras: what the lab adds to every checkpoint beyond Lightning's own state."""

import random
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

# Bumped when a checkpoint's contents change in a way older code cannot read. Format 2 moved GPT2Mini's
# weights under its `GPT` network (`gpt.`); GPT2Mini upgrades format 1 files as it loads them.
CHECKPOINT_FORMAT = 2
READABLE_FORMATS = (1, 2)


def collect_rng_states() -> dict[str, Any]:
    """Python's, NumPy's and torch's global generator states, as plain data (loadable with weights_only)."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    if torch.backends.mps.is_available():
        states["mps"] = torch.mps.get_rng_state()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, key, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if "mps" in states and torch.backends.mps.is_available():
        torch.mps.set_rng_state(states["mps"])


class CheckpointExtras(pl.Callback):
    """Saves the random generators' states, and which model and checkpoint format wrote the file.

    Lightning restores weights, optimizer, schedule, loops and callbacks but not the global random
    generators that drive dropout and diffusion noise. With their states saved, and restored when training
    starts again, a resumed run draws the same random numbers as one that never stopped. `train.py` adds
    this callback to every run; the model name and format let it reject the wrong checkpoint clearly.
    """

    def __init__(self) -> None:
        self._states_to_restore: dict[str, Any] | None = None

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["lab"] = {"model": type(pl_module).__name__, "format": CHECKPOINT_FORMAT}
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
