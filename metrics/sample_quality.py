"""How good a set of generated digits is, judged by the lab's own MNIST classifier, and how the set is drawn.

Inception-v3 FID needs a download and means little on 28x28 digits. The same Frechet distance computed on
the features of a classifier trained on MNIST works offline, and the classifier's predictions add two
numbers a learner reads at once: how sure it is that each sample is a digit, and whether all ten appear.
`draw_samples` and `SampleQuality.score` are the one way the lab draws a set and scores it: the training
callback, `python -m experiments.quality` and the ablation all use them.
"""

import contextlib
import math

import torch
from torch import nn
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance

from errors import UserInputError
from lightning_modules.ddpm import DDPM
from lightning_modules.mnist_classifier import MNISTClassifier

BATCH = 250  # images per sampler call and per classifier pass


def draw_samples(
    model: DDPM,
    num_samples: int,
    steps: int | None = 50,
    eta: float = 0.0,
    seed: int = 0,
    guidance_scale: float | None = None,
    precision: str = "32",
    batch_size: int = BATCH,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`num_samples` images (N, 1, 28, 28) in [0, 1] on the CPU, and for a conditional model the digit each
    was asked to be (the digits in turn: 0, 1, ..., 9, 0, ...).

    They are drawn `batch_size` at a time, the batch that starts at image i from seed `seed + i`, so the same
    settings draw the same set. `steps` as in `DDPM.sample` (None: the full ancestral sampler);
    `precision="bf16-mixed"` samples under bf16 autocast (about 2x faster on CPUs with AMX).
    """
    labels = model.sampling_labels(None, num_samples)
    try:
        autocast = torch.autocast(model.device.type, torch.bfloat16) if precision == "bf16-mixed" else None
    except RuntimeError as err:  # a device without autocast
        raise UserInputError(f"precision bf16-mixed does not work here ({err}); use precision 32.") from err
    images = []
    with autocast or contextlib.nullcontext():
        for start in range(0, num_samples, batch_size):
            share = labels[start : start + batch_size] if labels is not None else None
            count = min(batch_size, num_samples - start)
            images.append(model.sample(count, steps, eta, seed=seed + start, labels=share,
                                       guidance_scale=guidance_scale).cpu())  # fmt: skip
    return torch.cat(images), labels


class ClassifierFeatures(nn.Module):
    """The classifier's penultimate layer as torchmetrics' FID feature extractor (it reads `num_features`)."""

    def __init__(self, classifier: MNISTClassifier) -> None:
        super().__init__()
        self.classifier = classifier
        self.num_features = classifier.num_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(images).float()


class SampleQuality(Metric):
    """Frechet distance, mean confidence and class balance of generated digits against real ones.

    `update(images, real=True)` adds reference digits (kept across `reset`, so the reference is computed
    once); `update(images)` adds generated ones, with `labels` when they were asked for a digit. Images are
    (N, 1, 28, 28) in [0, 1], as `DDPM.sample` returns them. `compute` gives:

    - `fid`: the Frechet distance between Gaussians fitted to the two sets' classifier features
      (torchmetrics' `FrechetInceptionDistance` with the classifier in place of Inception). It depends on
      the number of samples, so it is reported with `num_samples`.
    - `confidence`: the mean probability the classifier gives each sample's most likely digit. The shipped
      judge also has a "not a digit" class, which takes the rest: noise, a blank or a blob of ink gets a low
      confidence, a clear digit a high one.
    - `class_balance`: the entropy of the most likely digits over log 10: 1 when the ten digits are equally
      frequent, 0 when every sample is the same digit.
    - `accuracy` (when labels were given): the share of samples whose most likely digit is the one they were
      asked for.
    """

    full_state_update = False

    def __init__(self, classifier: MNISTClassifier | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.classifier = classifier if classifier is not None else MNISTClassifier.pretrained()
        self.fid = FrechetInceptionDistance(feature=ClassifierFeatures(self.classifier), reset_real_features=False)
        self.add_state("confidence_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("class_counts", torch.zeros(10, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("correct", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("labelled", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, images: torch.Tensor, real: bool = False, labels: torch.Tensor | None = None) -> None:
        if images.dim() != 4 or images.shape[1:] != (1, 28, 28):
            raise ValueError(
                f"SampleQuality scores (N, 1, 28, 28) digits, got a tensor of shape {tuple(images.shape)}."
            )
        x = images.float() * 2 - 1  # [0, 1] -> the [-1, 1] the classifier was trained on
        self.fid.update(x, real=real)
        if real:
            return
        confidence, predicted = self.classifier.digit_probabilities(x).max(dim=-1)
        self.confidence_sum += confidence.double().sum()
        self.class_counts += torch.bincount(predicted, minlength=10)
        if labels is not None:
            self.correct += (predicted == labels.to(predicted.device)).sum()
            self.labelled += labels.numel()

    def add_reference(self, images: torch.Tensor, batch_size: int = BATCH) -> None:
        """Add real digits (N, 1, 28, 28) in [0, 1] to the reference set, which `reset` keeps."""
        for batch in images.split(batch_size):
            self.update(batch, real=True)

    def score(self, images: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = BATCH) -> dict:
        """Forget earlier samples, then score these (`compute`'s numbers); `labels`: the digit each was asked to be."""
        self.reset()
        for start in range(0, len(images), batch_size):
            share = labels[start : start + batch_size] if labels is not None else None
            self.update(images[start : start + batch_size], labels=share)
        return self.compute()

    def compute(self) -> dict[str, float]:
        n = int(self.class_counts.sum())
        shares = self.class_counts.double() / max(n, 1)
        entropy = -(shares[shares > 0] * shares[shares > 0].log()).sum()
        result = {
            "fid": float(self.fid.compute()),
            "confidence": float(self.confidence_sum / max(n, 1)),
            "class_balance": max(0.0, float(entropy / math.log(10))),  # not -0.0 when every sample is one digit
            "num_samples": n,
        }
        if self.labelled > 0:
            result["accuracy"] = float(self.correct / self.labelled)
        return result

    def reset(self) -> None:
        """Forget the generated samples; the reference set stays."""
        super().reset()
        self.fid.reset()
