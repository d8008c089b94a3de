"""Logs how far each optimizer step moves the weights, relative to their size."""

from collections import defaultdict
from typing import Any

import lightning.pytorch as pl
import torch

from callbacks.grad_norms import part_of


class UpdateRatioLogger(pl.Callback):
    """Logs `update_ratio/<part>` = |w_after - w_before| / |w_before| every `log_every_n_steps` steps.

    The step the optimizer actually took (learning rate times its update, weight decay included), against
    the size of the weights, per part (the same parts as `grad_norm/`). Around 1e-3 a part learns at a
    healthy pace; far below it is frozen, far above it is being thrown around (Karpathy's rule of thumb).
    """

    def __init__(self) -> None:
        self._before: dict[str, torch.Tensor] = {}

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if trainer.global_step % trainer.log_every_n_steps == 0:
            self._before = {name: p.detach().clone() for name, p in pl_module.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *_: Any) -> None:
        if not self._before:
            return
        update: dict[str, list[torch.Tensor]] = defaultdict(list)
        weight: dict[str, list[torch.Tensor]] = defaultdict(list)
        for name, p in pl_module.named_parameters():
            if name in self._before:
                part = part_of(name, pl_module)
                update[part].append((p - self._before[name]).float().pow(2).sum())
                weight[part].append(self._before[name].float().pow(2).sum())
        self._before = {}
        ratios = {part: (torch.stack(update[part]).sum() / torch.stack(weight[part]).sum()).sqrt() for part in update}
        logged = {f"update_ratio/{part}": r.item() for part, r in ratios.items() if r.isfinite()}
        step = trainer.global_step - 1  # the step whose update this was, as grad_norm/ counts it
        for logger in trainer.loggers:
            logger.log_metrics(logged, step=step)
