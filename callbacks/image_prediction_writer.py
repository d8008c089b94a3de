"""Writes the images `predict` draws: a PNG grid to look at and the raw tensor to compute with."""

import math
from pathlib import Path
from typing import Any, Sequence

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torchvision.utils import save_image


class ImagePredictionWriter(BasePredictionWriter):
    """Writes `samples.png` (a grid) and `samples.pt` (an (N, C, H, W) float tensor in [0, 1]).

    They go to `output_dir`, by default the run's log folder.
    """

    def __init__(self, output_dir: str | None = None) -> None:
        super().__init__(write_interval="epoch")
        self.output_dir = output_dir

    def write_on_epoch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        predictions: Sequence[Any],
        batch_indices: Sequence[Any],
    ) -> None:
        images = torch.cat(list(predictions)).cpu()
        folder = Path(self.output_dir or trainer.log_dir or trainer.default_root_dir)
        folder.mkdir(parents=True, exist_ok=True)
        png, pt = folder / "samples.png", folder / "samples.pt"
        save_image(images, png, nrow=math.ceil(math.sqrt(len(images))))
        torch.save(images, pt)
        print(f"Wrote {len(images)} sample(s) to {png} (grid) and {pt} (tensor {tuple(images.shape)})")
