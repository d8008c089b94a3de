"""Callbacks the tests add to runs in subprocesses (importable there through PYTHONPATH=tests)."""

import os
import signal
from pathlib import Path

import lightning.pytorch as pl
import torch


class KillAtStep(pl.Callback):
    """SIGKILLs its own process at the end of training step `step`: no cleanup, no final checkpoint."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class PoisonAtStep(pl.Callback):
    """Fills the first parameter with NaN just before training step `step` runs."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        if trainer.global_step + 1 == self.step:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))


class DumpRankState(pl.Callback):
    """Saves, per rank, the first training batch it saw and its final weights to `<out_dir>/rank<N>.pt`."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)
        self.first_batch = None

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if self.first_batch is None:
            self.first_batch = batch[0].detach().cpu().clone()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in pl_module.state_dict().items()}
        torch.save({"first_batch": self.first_batch, "state_dict": state}, self.out_dir / f"rank{trainer.global_rank}.pt")


class FailAtStep(pl.Callback):
    """Raises a RuntimeError before training step `step`: a run that fails after start-up."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: pl.Trainer, *args: object) -> None:
        if trainer.global_step + 1 == self.step:
            raise RuntimeError(f"failing at step {self.step}, as asked")
