"""Writes the images `predict` draws: a PNG grid to look at and the raw tensor to compute with."""

import math
from pathlib import Path
from typing import Any

import torch
from torchvision.utils import save_image

from callbacks.prediction_writer import RankZeroPredictionWriter


class ImagePredictionWriter(RankZeroPredictionWriter):
    """Writes `samples.png` (a grid) and `samples.pt` (an (N, C, H, W) float tensor in [0, 1]).

    They go to `output_dir`, by default the run's log folder.
    """

    def __init__(self, output_dir: str | None = None) -> None:
        super().__init__()
        self.output_dir = output_dir

    def write(self, batches: list[Any], log_dir: Path) -> None:
        images = torch.cat([batch.cpu() for batch in batches])
        folder = Path(self.output_dir) if self.output_dir else log_dir
        folder.mkdir(parents=True, exist_ok=True)
        png, pt = folder / "samples.png", folder / "samples.pt"
        save_image(images, png, nrow=math.ceil(math.sqrt(len(images))))
        torch.save(images, pt)
        print(f"Wrote {len(images)} sample(s) to {png} (grid) and {pt} (tensor {tuple(images.shape)})")
