"""Logs how far each optimizer step moves the weights, relative to their size."""

from collections import defaultdict
from typing import Any

import lightning.pytorch as pl
import torch

from callbacks.grad_norms import part_of
from callbacks.tags import UPDATE_RATIO


class UpdateRatioLogger(pl.Callback):
    """Logs `update_ratio/<part>` = |w_after - w_before| / |w_before| every `log_every_n_steps` steps.

    The step the optimizer actually took (learning rate times its update, weight decay included), against
    the size of the weights, per part (the same parts as `grad_norm/`). Around 1e-3 a part learns at a
    healthy pace; far below it is frozen, far above it is being thrown around (Karpathy's rule of thumb).
    """

    def __init__(self) -> None:
        self._before: dict[str, torch.Tensor] = {}  # the weights before this logging step's update
        self._parts: dict[str, str] = {}  # parameter name -> part

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._parts = {name: part_of(name, pl_module) for name, _ in pl_module.named_parameters()}

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if trainer.global_step % trainer.log_every_n_steps == 0:
            self._before = {name: p.detach().clone() for name, p in pl_module.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *_: Any) -> None:
        if not self._before:
            return
        update: dict[str, torch.Tensor] = defaultdict(float)  # per part, sums of squares
        weight: dict[str, torch.Tensor] = defaultdict(float)
        for name, p in pl_module.named_parameters():
            if name in self._before:
                before = self._before[name].float()
                update[self._parts[name]] += (p.float() - before).pow(2).sum()
                weight[self._parts[name]] += before.pow(2).sum()
        self._before = {}
        ratios = {part: (update[part] / weight[part]).sqrt() for part in update}
        logged = {f"{UPDATE_RATIO}{part}": r.item() for part, r in ratios.items() if r.isfinite()}
        step = trainer.global_step - 1  # the step whose update this was, as grad_norm/ counts it
        for logger in trainer.loggers:
            logger.log_metrics(logged, step=step)
