"""RankZeroPredictionWriter: predictions from every process, written once."""

from pathlib import Path
from typing import Any, Sequence

import lightning.pytorch as pl
import torch.distributed as dist
from lightning.pytorch.callbacks import BasePredictionWriter


class RankZeroPredictionWriter(BasePredictionWriter):
    """Collects the batches `predict` returned on every process, in dataset order, and lets rank zero write them.

    Under DDP each process predicts its own share of the inputs; gathering them first means one complete
    output file instead of one partial file per process racing to the same path.
    """

    def __init__(self) -> None:
        super().__init__(write_interval="epoch")

    def write_on_epoch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        predictions: Sequence[Any],
        batch_indices: Sequence[Any],
    ) -> None:
        log_dir = Path(trainer.log_dir or trainer.default_root_dir)  # a collective call under DDP: every rank makes it
        # The lab's datamodules have one predict loader; Lightning nests its batches' sample indices in a list.
        batches = list(zip(batch_indices[0], predictions))
        if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
            shares: list[Any] = [None] * trainer.world_size
            dist.all_gather_object(shares, batches)
            batches = [batch for share in shares for batch in share]
        if trainer.is_global_zero:
            batches.sort(key=lambda batch: min(batch[0], default=0))
            self.write([prediction for _, prediction in batches], log_dir)

    def write(self, batches: list[Any], log_dir: Path) -> None:
        """Write the predicted `batches`, in dataset order, by default into the run's `log_dir` (rank zero only)."""
        raise NotImplementedError
