"""Prints the texts `predict` generates and writes them to a file in the run directory."""

from pathlib import Path
from typing import Any

from callbacks.prediction_writer import RankZeroPredictionWriter


class TextPredictionWriter(RankZeroPredictionWriter):
    """Writes every generated text to `output_file` (default: `predictions.txt` in the run's log folder)."""

    def __init__(self, output_file: str | None = None) -> None:
        super().__init__()
        self.output_file = output_file

    def write(self, batches: list[Any], log_dir: Path) -> None:
        texts = [text for batch in batches for text in batch]
        path = Path(self.output_file) if self.output_file else log_dir / "predictions.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        separator = "\n" + "-" * 40 + "\n"
        path.write_text(separator.join(texts) + "\n", encoding="utf-8")
        for text in texts:
            print(text, end=separator)
        print(f"Wrote {len(texts)} generated text(s) to {path}")
