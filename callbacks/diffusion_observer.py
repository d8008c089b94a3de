"""Looks inside a DDPM at every validation: the loss at each noise level, and digits emerging from noise."""

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torchvision.utils import make_grid

from callbacks.image_samples import check_sampler
from callbacks.periodic_sampler import PeriodicSampler
from callbacks.tags import TRAJECTORY, VAL_LOSS_BY_T
from errors import UserInputError


class DiffusionObserver(PeriodicSampler):
    """At every validation, logs where along the noise levels the network fails, and what it sees there.

    - `val_loss_by_t/{lo:03d}-{hi:03d}`: the validation loss of the images whose timestep fell in each of
      `buckets` equal ranges of t. A network without its time embedding fails where it must guess the noise
      level; and losses by t compare the linear and cosine schedules where their plain losses do not.
      Weighted by their counts, the buckets add up to `val_loss`.
    - `denoising/trajectory`: for `num_images` images drawn from `seed` (the same at every validation),
      `points` moments along a `sample_steps`-step DDIM run: the noisy image x_t (top row of each pair)
      above the network's predicted clean image x0 (bottom row). Early on x0 is a blurry average of
      digits; it sharpens as the noise goes.

    The model's `validation_step` returns each image's timestep and loss (`{"t": (B,), "losses": (B,)}`),
    and its `sample` takes `on_step` to show every sampler step (see `DDPM`). Only rank zero observes (its
    share of the validation data under DDP), never during the sanity check. List it before the EMA
    callback, so that the trajectory uses the averaged weights as validation does.
    """

    def __init__(
        self, buckets: int = 10, num_images: int = 4, points: int = 10, sample_steps: int = 50, seed: int = 0
    ) -> None:
        super().__init__(every_n_steps=None)
        if min(buckets, num_images, points) <= 0:  # sample_steps is the model's to check (`setup`)
            got = f"got {buckets}, {num_images} and {points}"
            raise UserInputError(f"DiffusionObserver buckets, num_images and points must be positive, {got}.")
        self.buckets = buckets
        self.num_images = num_images
        self.points = points
        self.sample_steps = sample_steps
        self.seed = seed
        self._loss_sum = torch.zeros(buckets)  # per bucket, over this validation's batches
        self._count = torch.zeros(buckets)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        check_sampler(self, pl_module, self.num_images, self.sample_steps)
        self.timesteps = pl_module.hparams.timesteps

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._loss_sum.zero_()
        self._count.zero_()

    def on_validation_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, *_: Any
    ) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        bucket = (outputs["t"] * self.buckets // self.timesteps).cpu()
        losses = outputs["losses"].detach().float().cpu()
        self._loss_sum.index_add_(0, bucket, losses)
        self._count += torch.bincount(bucket, minlength=self.buckets)

    def bucket_losses(self) -> dict[str, tuple[float, int]]:
        """{"lo-hi": (mean loss, images)} for each bucket that had images in this validation."""
        sums, counts = self._loss_sum, self._count
        edges = [i * self.timesteps // self.buckets for i in range(self.buckets + 1)]
        return {
            f"{edges[i]:03d}-{edges[i + 1] - 1:03d}": ((sums[i] / counts[i]).item(), int(counts[i]))
            for i in range(self.buckets)
            if counts[i] > 0
        }

    def draw(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = {f"{VAL_LOSS_BY_T}{name}": loss for name, (loss, _) in self.bucket_losses().items()}
        if metrics:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)
        if isinstance(trainer.logger, TensorBoardLogger):
            grid = self.trajectory(pl_module)
            trainer.logger.experiment.add_image(TRAJECTORY, grid, trainer.global_step)

    def trajectory(self, pl_module: pl.LightningModule) -> torch.Tensor:
        """A (3, H, W) grid: a pair of rows (x_t above predicted x0) per image, a column per moment of sampling."""
        seen: list[tuple[torch.Tensor, torch.Tensor]] = []  # (x_t, predicted x0) at every step

        def record(t: int, x_t: torch.Tensor, step: Any) -> None:
            seen.append((x_t.float().cpu(), step.pred_x0.float().cpu()))

        pl_module.sample(self.num_images, self.sample_steps, seed=self.seed, on_step=record)
        at = sorted({round(i * (len(seen) - 1) / max(self.points - 1, 1)) for i in range(self.points)})
        chosen = [seen[i] for i in at]
        rows = []
        for n in range(self.num_images):
            rows += [torch.stack([x_t[n] for x_t, _ in chosen]), torch.stack([x0[n] for _, x0 in chosen])]
        images = ((torch.cat(rows) + 1) / 2).clamp(0, 1)  # [-1, 1] -> [0, 1]
        return make_grid(images, nrow=len(chosen), padding=2, pad_value=0.5)
