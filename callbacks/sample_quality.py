"""Scores a DDPM's samples while it trains: Frechet distance, confidence and class balance (metrics.SampleQuality)."""

import lightning.pytorch as pl
import torch

from callbacks.periodic_sampler import PeriodicSampler
from errors import UserInputError
from lightning_modules.mnist_classifier import WEIGHTS, MNISTClassifier
from metrics.sample_quality import SampleQuality


class SampleQualityCallback(PeriodicSampler):
    """At the end of each validation, draws `num_samples` digits with `sample_steps`-step DDIM from `seed` and
    scores them against the validation digits (the MNIST test set) with the lab's classifier.

    Logs `quality/fid`, `quality/confidence`, `quality/class_balance` and, for a class-conditional model
    (whose samples cycle through the digits), `quality/accuracy`: the share drawn as the digit asked for.
    The Frechet distance depends on the sample count (fewer samples, a larger distance), so compare runs
    at the same `num_samples`; `python -m experiments.quality` scores a checkpoint at 1,000. The reference
    features (`reference_size` validation digits) are computed once, at the start. Only rank zero scores;
    list it before the EMA callback, so that it sees the averaged weights as validation does.
    """

    def __init__(
        self,
        num_samples: int = 200,
        sample_steps: int = 50,
        seed: int = 0,
        reference_size: int = 10_000,
        batch_size: int = 250,
        classifier: str = str(WEIGHTS),
    ) -> None:
        super().__init__(every_n_steps=None)
        if min(num_samples, sample_steps, reference_size, batch_size) <= 0 or num_samples < 2:
            raise UserInputError(
                "SampleQualityCallback num_samples (at least 2), sample_steps, reference_size and batch_size must "
                f"be positive, got {num_samples}, {sample_steps}, {reference_size} and {batch_size}."
            )
        self.num_samples = num_samples
        self.sample_steps = sample_steps
        self.seed = seed
        self.reference_size = reference_size
        self.batch_size = batch_size
        self.classifier = classifier
        self.metric: SampleQuality | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage not in ("fit", "validate") or not trainer.is_global_zero or self.metric is not None:
            return
        self.metric = SampleQuality(MNISTClassifier.pretrained(self.classifier))
        reference = trainer.datamodule.val_set
        count = min(self.reference_size, len(reference))
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(reference, range(count)), self.batch_size)
        for images, _ in loader:
            self.metric.update((images + 1) / 2, real=True)  # the datamodule's [-1, 1] -> [0, 1]

    def draw(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.metric.reset()
        labels = pl_module.sampling_labels(None, self.num_samples)
        for start in range(0, self.num_samples, self.batch_size):
            count = min(self.batch_size, self.num_samples - start)
            share = labels[start : start + count] if labels is not None else None
            images = pl_module.sample(count, self.sample_steps, seed=self.seed + start, labels=share)
            self.metric.update(images.cpu(), labels=share)
        scores = self.metric.compute()
        metrics = {f"quality/{name}": value for name, value in scores.items() if name != "num_samples"}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
