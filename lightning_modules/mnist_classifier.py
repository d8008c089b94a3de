"""MNISTClassifier: a small CNN that reads digits, the lab's judge of the DDPM's samples.

Its penultimate layer gives the features of the Frechet distance in `metrics.SampleQuality`, and its
predictions say how sure it is that a sample is a digit and which one. Trained weights ship with the lab
(`WEIGHTS`), so sample quality can be measured offline without training anything first;
`configs/mnist_classifier.yaml` re-creates them.
"""

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from errors import UserInputError
from lightning_modules.lr_schedule import LRSchedule

WEIGHTS = Path(__file__).resolve().parent / "weights" / "mnist_classifier.ckpt"


def conv_block(in_ch: int, out_ch: int) -> nn.Sequential:
    """Two 3x3 convolutions with BatchNorm and ReLU: one resolution level."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(),
        nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(),
    )


class MNISTClassifier(pl.LightningModule):
    """Digits (B, 1, 28, 28) in [-1, 1] (as `MNISTDataModule` gives them) -> logits over the ten classes.

    Three levels of `conv_block` at 28, 14 and 7 pixels, then a global average: a `width * 4`-dimensional
    feature vector per image (`features`), and one linear layer to the logits. Trained with AdamW and the
    lab's learning-rate schedule (`LRSchedule`); it logs `val_acc` / `test_acc`.
    """

    def __init__(
        self,
        width: int = 32,
        dropout: float = 0.1,
        learning_rate: float = 3e-3,
        weight_decay: float = 1e-4,
        warmup_steps: int = 100,
        lr_decay_steps: int | None = None,
        min_lr: float | None = None,
    ) -> None:
        super().__init__()
        if width <= 0:
            raise UserInputError(f"width must be a positive integer, got {width}.")
        LRSchedule(learning_rate, warmup_steps, lr_decay_steps, min_lr)  # checks the settings now, not at fit
        self.save_hyperparameters()
        self.body = nn.Sequential(
            conv_block(1, width),
            nn.MaxPool2d(2),
            conv_block(width, 2 * width),
            nn.MaxPool2d(2),
            conv_block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.num_features = 4 * width
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, 10))
        self.val_acc = MulticlassAccuracy(num_classes=10, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes=10, average="micro")

    @classmethod
    def pretrained(cls, path: str | Path = WEIGHTS, map_location: str | torch.device = "cpu") -> "MNISTClassifier":
        """The shipped (or another trained) classifier, frozen and in eval mode."""
        if not Path(path).is_file():
            raise UserInputError(
                f"MNIST classifier weights not found at {path}. Train them with "
                "`python train.py fit --config configs/mnist_classifier.yaml` and pass the best checkpoint."
            )
        model = cls.load_from_checkpoint(path, map_location=map_location, weights_only=True)
        return model.eval().requires_grad_(False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer: (B, num_features), what the Frechet distance compares."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.val_acc(logits, y)
        self.log("val_loss", F.cross_entropy(logits, y), prog_bar=True, sync_dist=True)
        self.log("val_acc", self.val_acc, prog_bar=True)

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.test_acc(self(x), y)
        self.log("test_acc", self.test_acc)

    def configure_optimizers(self) -> dict[str, Any]:
        lr, weight_decay = self.hparams.learning_rate, self.hparams.weight_decay
        optimizer = torch.optim.AdamW(self.parameters(), lr=lr, weight_decay=weight_decay)
        schedule = LRSchedule.of(self.hparams).scheduler(optimizer, run_steps=self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": schedule}
