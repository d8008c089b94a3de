"""DivergenceGuard: stop at the first non-finite loss, before a checkpoint can save the broken weights."""

from typing import Any

import lightning.pytorch as pl
import torch

from errors import UserInputError


class TrainingDiverged(UserInputError):
    """The loss became NaN or infinite; the message says at which step and what usually causes it."""


class DivergenceGuard(pl.Callback):
    """Raises `TrainingDiverged` on the first training step whose loss is NaN or infinite.

    It runs in `on_train_batch_end`, which Lightning calls before any `ModelCheckpoint` (those always run
    last), so the newest checkpoint on disk is still the last good one. Lightning's `EarlyStopping` with
    `check_finite` only looks at logged metrics, at validation or epoch end, too late for that.
    """

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        finite = loss is None or bool(torch.isfinite(loss).all())
        # Under DDP every process must stop together, or the others wait forever in the next all-reduce.
        if trainer.strategy.reduce_boolean_decision(finite, all=True):
            return
        raise TrainingDiverged(
            f"Training diverged at step {trainer.global_step}: the loss is {_value(loss)}. "
            f"{likely_cause(trainer, pl_module)} "
            "The newest checkpoint is the last good one: fix the cause and resume from it with --ckpt_path."
        )


def likely_cause(trainer: pl.Trainer, pl_module: pl.LightningModule) -> str:
    """The usual suspects for this run, from its settings."""
    hp = pl_module.hparams
    lr = hp.get("learning_rate")
    causes = [f"a learning rate too high ({lr:g}; try --model.learning_rate {lr / 10:g})"] if lr else []
    if not trainer.gradient_clip_val:
        causes.append("no gradient clipping (try --trainer.gradient_clip_val 1.0)")
    if hp.get("disable_residual") or hp.get("ln_style") == "post":
        causes.append("a switch that makes deep stacks unstable (disable_residual or ln_style post; warm up longer)")
    if "16" in str(trainer.precision):
        causes.append(f"reduced precision ({trainer.precision}; try --trainer.precision 32)")
    if not causes:
        return "Check the data and the model's settings."
    return "Likely cause: " + ", or ".join(causes) + "."


def _value(loss: torch.Tensor | None) -> str:
    """This process's loss, or a word for it when another process's loss was the non-finite one."""
    if loss is not None and not torch.isfinite(loss).all():
        return str(loss.item())
    return "not finite on another process"
