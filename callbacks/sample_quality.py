"""Scores a DDPM's samples while it trains: Frechet distance, confidence and class balance (metrics.SampleQuality)."""

import lightning.pytorch as pl

from callbacks.image_samples import check_sampler
from callbacks.periodic_sampler import PeriodicSampler
from callbacks.tags import QUALITY
from errors import UserInputError
from lightning_modules.mnist_classifier import WEIGHTS, MNISTClassifier
from metrics import SampleQuality, draw_samples


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
        if num_samples < 2 or min(reference_size, batch_size) <= 0:  # the sampler's settings: the model checks them
            raise UserInputError(
                "SampleQualityCallback needs num_samples of at least 2 (a Frechet distance needs a spread) and a "
                f"positive reference_size and batch_size, got {num_samples}, {reference_size} and {batch_size}."
            )
        self.num_samples = num_samples
        self.sample_steps = sample_steps
        self.seed = seed
        self.reference_size = reference_size
        self.batch_size = batch_size
        self.classifier = classifier
        self.metric: SampleQuality | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        check_sampler(self, pl_module, self.num_samples, self.sample_steps)
        if stage not in ("fit", "validate") or not trainer.is_global_zero or self.metric is not None:
            return
        self.metric = SampleQuality(MNISTClassifier.pretrained(self.classifier))
        reference, _ = trainer.datamodule.digits(train=False)  # the validation digits
        self.metric.add_reference(reference[: self.reference_size], self.batch_size)

    def draw(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        images, labels = draw_samples(pl_module, self.num_samples, self.sample_steps, seed=self.seed,
                                      batch_size=self.batch_size)  # fmt: skip
        scores = self.metric.score(images, labels, self.batch_size)
        metrics = {f"{QUALITY}{name}": value for name, value in scores.items() if name != "num_samples"}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
