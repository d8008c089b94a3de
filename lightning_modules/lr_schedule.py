"""The learning-rate schedule every model in the lab trains with: linear warm-up, then a half cosine.

One meaning for its settings across models:
- `warmup_steps`: the rate rises linearly to `learning_rate` over these optimizer steps.
- `lr_decay_steps`: the step at which the cosine reaches `min_lr`; after it the rate stays there. `null`: the
  run's own length (`max_steps`, or `max_epochs` times the batches of an epoch). A run with no step limit, one
  that ends at `max_time`, has no length to decay over: its rate stays at `learning_rate` after the warm-up
  (it says so when it starts); set `lr_decay_steps` to the steps your machine reaches in that time to decay.
- `min_lr`: the rate the decay ends at. `null`: `learning_rate / 10` (nanoGPT's and Chinchilla's choice);
  `min_lr = learning_rate` keeps the rate constant after the warm-up, as DDPM trained.
"""

import math
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info

from errors import UserInputError


def warmup_cosine(step: int, warmup_steps: int, decay_steps: int | None, min_lr_ratio: float) -> float:
    """The multiplier of the peak learning rate at optimizer step `step`.

    Rises linearly to 1 over `warmup_steps`, follows a half cosine down to `min_lr_ratio` at `decay_steps`,
    then stays there (so training past the planned length never raises the rate again). With no
    `decay_steps` it stays at 1 after the warm-up.
    """
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if decay_steps is None:
        return 1.0
    if step >= decay_steps:
        return min_lr_ratio
    progress = (step - warmup_steps) / max(1, decay_steps - warmup_steps)
    return min_lr_ratio + 0.5 * (1.0 + math.cos(math.pi * progress)) * (1.0 - min_lr_ratio)


@dataclass(frozen=True)
class LRSchedule:
    """A model's schedule settings (see the module's docstring), checked when they are made."""

    learning_rate: float
    warmup_steps: int = 100
    lr_decay_steps: int | None = None
    min_lr: float | None = None

    def __post_init__(self) -> None:
        if self.learning_rate <= 0:
            raise UserInputError(f"learning_rate must be positive, got {self.learning_rate}.")
        if self.warmup_steps < 0:
            raise UserInputError(f"warmup_steps must be 0 or more, got {self.warmup_steps}.")
        if self.lr_decay_steps is not None and self.lr_decay_steps <= self.warmup_steps:
            raise UserInputError(
                f"lr_decay_steps must be larger than warmup_steps ({self.warmup_steps}), got {self.lr_decay_steps}; "
                "leave it unset (null) to decay over the whole run."
            )
        if self.min_lr is not None and not 0.0 <= self.min_lr <= self.learning_rate:
            raise UserInputError(
                f"min_lr must be between 0 and learning_rate ({self.learning_rate}), got {self.min_lr}."
            )

    @classmethod
    def of(cls, hparams: Any) -> "LRSchedule":
        """The schedule a model's saved settings (`hparams`) describe."""
        return cls(hparams.learning_rate, hparams.warmup_steps, hparams.lr_decay_steps, hparams.min_lr)

    @property
    def final_lr(self) -> float:
        return self.learning_rate / 10 if self.min_lr is None else self.min_lr

    def decay_steps(self, run_steps: float) -> int | None:
        """`lr_decay_steps`, or the run's length in optimizer steps; None when the run has no step limit (inf)."""
        if self.lr_decay_steps is not None:
            return self.lr_decay_steps
        if math.isfinite(run_steps):
            return int(run_steps)
        if self.final_lr < self.learning_rate:
            rank_zero_info(
                f"This run has no step limit (max_steps -1), so the learning rate stays at {self.learning_rate:g} "
                "after its warm-up. Set --model.lr_decay_steps to decay it to min_lr over that many steps."
            )
        return None

    def scheduler(self, optimizer: torch.optim.Optimizer, run_steps: float) -> dict[str, Any]:
        """The `lr_scheduler` entry of `configure_optimizers`, stepped after every optimizer step, for a run of
        `run_steps` optimizer steps (`trainer.estimated_stepping_batches`: infinite when only time limits it)."""
        multiplier = partial(
            warmup_cosine,
            warmup_steps=self.warmup_steps,
            decay_steps=self.decay_steps(run_steps),
            min_lr_ratio=self.final_lr / self.learning_rate,
        )
        return {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier), "interval": "step"}
