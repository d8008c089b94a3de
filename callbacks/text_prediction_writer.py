"""Writes the texts `predict` generates to a file in the run directory, and prints those not yet shown."""

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from tqdm import tqdm

from callbacks.prediction_writer import RankZeroPredictionWriter

SEPARATOR = "\n" + "-" * 40 + "\n"  # between two texts, in the file and on the console (as GPT2Mini prints)


class TextPredictionWriter(RankZeroPredictionWriter):
    """Writes every generated text to `output_file` (default: `predictions.txt` in the run's log folder).

    `GPT2Mini.predict_step` prints process 0's texts while it generates them, so that a long answer is not
    minutes of silence; at the end this prints only the texts that other processes (under DDP) generated.
    """

    def __init__(self, output_file: str | None = None) -> None:
        super().__init__()
        self.output_file = output_file
        self._shown: list[str] = []  # the texts process 0 printed as it generated them

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._shown = []

    def on_predict_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        super().on_predict_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)
        if trainer.is_global_zero:
            self._shown.extend(outputs)

    def write(self, batches: list[Any], log_dir: Path) -> None:
        texts = [text for batch in batches for text in batch]
        path = Path(self.output_file) if self.output_file else log_dir / "predictions.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SEPARATOR.join(texts) + "\n", encoding="utf-8")
        shown = Counter(self._shown)
        with tqdm.external_write_mode(file=sys.stdout):  # below the progress bar, not after it on its line
            for text in texts:
                if shown[text] > 0:
                    shown[text] -= 1  # already on the console
                else:
                    print(text, end=SEPARATOR)
            print(f"Wrote {len(texts)} generated text(s) to {path}")
