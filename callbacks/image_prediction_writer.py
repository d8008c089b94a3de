"""Writes the images `predict` draws: a PNG grid to look at and the raw tensor to compute with."""

import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torchvision.utils import save_image

from callbacks.prediction_writer import RankZeroPredictionWriter


class ImagePredictionWriter(RankZeroPredictionWriter):
    """Writes `samples.png` (a grid) and `samples.pt` (an (N, C, H, W) float tensor in [0, 1]).

    They go to `output_dir`, by default the run's log folder. The grid is square, or for a class-conditional
    model one row per requested digit (the model's `predict_labels`), and `labels.pt` holds each image's label.
    """

    def __init__(self, output_dir: str | None = None) -> None:
        super().__init__()
        self.output_dir = output_dir
        self._labels: torch.Tensor | None = None  # each image's label, for a conditional model
        self._row: int | None = None  # images per row of the grid, then

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._labels = getattr(pl_module, "predict_labels", None)
        self._row = getattr(pl_module, "num_samples", None)

    def write(self, batches: list[Any], log_dir: Path) -> None:
        images = torch.cat([batch.cpu() for batch in batches])
        folder = Path(self.output_dir) if self.output_dir else log_dir
        folder.mkdir(parents=True, exist_ok=True)
        png, pt = folder / "samples.png", folder / "samples.pt"
        row = self._row if self._labels is not None else math.ceil(math.sqrt(len(images)))
        save_image(images, png, nrow=row)
        torch.save(images, pt)
        written = f"{png} (grid) and {pt} (tensor {tuple(images.shape)})"
        if self._labels is not None:
            torch.save(self._labels, folder / "labels.pt")
            written += f", with their labels in {folder / 'labels.pt'}"
        print(f"Wrote {len(images)} sample(s) to {written}")
