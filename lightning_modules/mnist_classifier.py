"""MNISTClassifier: a small CNN that reads digits, the lab's judge of the DDPM's samples.

Its penultimate layer gives the features of the Frechet distance in `metrics.SampleQuality`, and its
predictions say how sure it is that a sample is a digit and which one; an eleventh class, "not a digit",
lets it say that noise, a blank or a checkerboard is none. Trained weights ship with the lab (`WEIGHTS`), so
sample quality can be measured offline without training anything first; `configs/mnist_classifier.yaml`
and `configs/mnist_classifier_not_a_digit.yaml` re-create them.
"""

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from datamodules.non_digits import non_digits
from errors import UserInputError
from lightning_modules.lr_schedule import LRSchedule

WEIGHTS = Path(__file__).resolve().parent / "weights" / "mnist_classifier.ckpt"
NOT_A_DIGIT = 10  # the eleventh class's index


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

    `not_a_digit` adds an eleventh class (an output of its own, `not_a_digit_head`), trained on images that
    are not digits (`non_digits`, a share `non_digit_share` of each training batch), and logs
    `val_not_a_digit_acc`: how many of those it calls so. `start_from` takes a trained classifier's weights and keeps them as they are, so that only the new
    output learns: the Frechet distance, which reads the features, stays what it was, and so do the digit
    outputs. The file is read once, at construction, and is
    not saved in hyperparameters.
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
        not_a_digit: bool = False,
        non_digit_share: float = 0.25,
        start_from: str | None = None,
    ) -> None:
        super().__init__()
        if width <= 0:
            raise UserInputError(f"width must be a positive integer, got {width}.")
        if not 0 < non_digit_share < 1:
            raise UserInputError(f"non_digit_share must be between 0 and 1, got {non_digit_share}.")
        LRSchedule(learning_rate, warmup_steps, lr_decay_steps, min_lr)  # checks the settings now, not at fit
        self.save_hyperparameters(ignore=["start_from"])
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
        num_classes = 11 if not_a_digit else 10
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, 10))
        # "Not a digit" has its own output, so that a judge taught it later keeps its digit outputs as they were.
        self.not_a_digit_head = None
        if not_a_digit:  # a small MLP: a single linear unit called 1.5% of the test digits "not a digit"
            self.not_a_digit_head = nn.Sequential(
                nn.Linear(self.num_features, self.num_features), nn.ReLU(), nn.Linear(self.num_features, 1)
            )
        self.val_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.val_not_a_digit_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.frozen = start_from is not None
        if start_from is not None:
            self._start_from(start_from)

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

    def _start_from(self, path: str) -> None:
        if not Path(path).is_file():
            raise UserInputError(f"start_from: no classifier checkpoint at {path}.")
        weights = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        for part in ("body", "head"):
            layer = getattr(self, part)
            prefix = part + "."
            layer.load_state_dict({k.removeprefix(prefix): v for k, v in weights.items() if k.startswith(prefix)})
            layer.requires_grad_(False).eval()  # eval now too: Lightning need not call train() (see `train`)

    def train(self, mode: bool = True) -> "MNISTClassifier":
        """Frozen layers stay in eval mode: BatchNorm keeps the statistics it was trained with, dropout is off."""
        super().train(mode)
        if self.frozen:
            self.body.eval()
            self.head.eval()
        return self

    def digit_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 10): the probability of each digit; with `not_a_digit` the rest is the probability of none."""
        return self(x).float().softmax(dim=-1)[:, :10]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer: (B, num_features), what the Frechet distance compares."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        logits = self.head(features)
        if self.not_a_digit_head is None:
            return logits
        return torch.cat([logits, self.not_a_digit_head(features)], dim=-1)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        if self.hparams.not_a_digit:
            share = self.hparams.non_digit_share
            x, y = self._with_non_digits(x, y, round(len(x) * share / (1 - share)))
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.val_acc(logits, y)
        self.log("val_loss", F.cross_entropy(logits, y), prog_bar=True, sync_dist=True)
        self.log("val_acc", self.val_acc, prog_bar=True)
        if self.hparams.not_a_digit:  # the same images at every validation
            others, labels = self._with_non_digits(x[:0], y[:0], len(x), torch.Generator().manual_seed(batch_idx))
            self.val_not_a_digit_acc(self(others), labels)
            self.log("val_not_a_digit_acc", self.val_not_a_digit_acc, prog_bar=True)

    def _with_non_digits(
        self, x: torch.Tensor, y: torch.Tensor, n: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch with `n` images that are not digits added, labelled `NOT_A_DIGIT`."""
        others = non_digits(n, generator=generator).to(x.device) * 2 - 1  # the [-1, 1] of the digits
        return torch.cat([x, others]), torch.cat([y, torch.full((n,), NOT_A_DIGIT, device=y.device)])

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.test_acc(self(x), y)
        self.log("test_acc", self.test_acc)

    def configure_optimizers(self) -> dict[str, Any]:
        lr, weight_decay = self.hparams.learning_rate, self.hparams.weight_decay
        trained = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trained, lr=lr, weight_decay=weight_decay)
        schedule = LRSchedule.of(self.hparams).scheduler(optimizer, run_steps=self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": schedule}
