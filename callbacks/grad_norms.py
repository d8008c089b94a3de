"""Logs gradient norms: the whole model's and each top-level part's (every block on its own)."""

from collections import defaultdict

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import grad_norm

from callbacks.tags import GRAD_NORM


class GradNormLogger(pl.Callback):
    """Logs `grad_norm/total` and `grad_norm/<part>` before clipping, every `log_every_n_steps` steps.

    A part is a child of the network the system trains (`GPT2Mini.gpt`, `DDPM.unet`), with lists split per
    item: `blocks.0`, `blocks.1`, ..., `tok_emb`, `ln_f` for GPT2Mini. Norms are combined from Lightning's
    per-parameter `grad_norm`.
    """

    def __init__(self, norm_type: float = 2.0) -> None:
        self.norm_type = norm_type

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if trainer.global_step % trainer.log_every_n_steps != 0:
            return
        norms = grad_norm(pl_module, self.norm_type)
        if not norms:
            return
        total = norms.pop(f"grad_{float(self.norm_type)}_norm_total")
        parts: dict[str, list[torch.Tensor]] = defaultdict(list)
        for key, value in norms.items():
            parts[part_of(key.split("/", 1)[1], pl_module)].append(value)
        logged = {f"{GRAD_NORM}{part}": torch.stack(v).norm(self.norm_type).item() for part, v in parts.items()}
        logged[f"{GRAD_NORM}total"] = total.item()
        # Straight to the loggers: `self.log` bookkeeping for a dozen values would cost more than the norms.
        for logger in trainer.loggers:
            logger.log_metrics(logged, step=trainer.global_step)


def part_of(param_name: str, module: torch.nn.Module) -> str:
    """'gpt.blocks.2.attn.c_attn.weight' -> 'blocks.2'; 'gpt.ln_f.weight' -> 'ln_f'.

    The name of the network the system holds (its only child with parameters) is left out, and a
    `ModuleList` counts one part per item.
    """
    holders = [(name, child) for name, child in module.named_children() if next(child.parameters(), None) is not None]
    if len(holders) == 1:
        name, module = holders[0]
        param_name = param_name.removeprefix(name + ".")
    first, item, *_ = param_name.split(".") + [""]
    return f"{first}.{item}" if isinstance(getattr(module, first, None), torch.nn.ModuleList) else first
