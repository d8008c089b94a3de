"""Draws a grid of images from a fixed seed during training, logs it to TensorBoard and saves it as a PNG."""

import math
from pathlib import Path
from typing import Protocol, runtime_checkable

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torchvision.utils import make_grid, save_image

from errors import UserInputError


@runtime_checkable
class ImageSampler(Protocol):
    """What this callback needs of a model: a way to draw images in [0, 1]."""

    def sample(
        self,
        num_samples: int,
        steps: int | None = None,
        eta: float = 0.0,
        seed: int | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        ...


class ImageSampleCallback(pl.Callback):
    """Every `every_n_steps` training steps (if set) and at the end of each validation, draws `num_samples` images.

    The seed is fixed, so successive grids start from the same noise and show how the model changes, not
    the luck of the draw. `sample_steps` is the number of DDIM steps (None: the full ancestral sampler,
    much slower). The grid goes to TensorBoard's Images tab (tag `samples`) and to
    `<log_dir>/samples/step_XXXXXX.png`.
    """

    def __init__(
        self,
        num_samples: int = 16,
        every_n_steps: int | None = 500,
        sample_steps: int | None = 50,
        eta: float = 0.0,
        seed: int = 0,
    ) -> None:
        if num_samples <= 0:
            raise UserInputError(f"ImageSampleCallback num_samples must be positive, got {num_samples}.")
        if every_n_steps is not None and every_n_steps <= 0:
            raise UserInputError(f"ImageSampleCallback every_n_steps must be positive or null, got {every_n_steps}.")
        self.num_samples = num_samples
        self.every_n_steps = every_n_steps
        self.sample_steps = sample_steps
        self.eta = eta
        self.seed = seed
        self._last_step: int | None = None

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Inside the validation epoch, so that a weight-averaging callback listed after this one has swapped
        # its averaged (EMA) weights in: the grid shows the weights that validation scores.
        if not trainer.sanity_checking:
            self._sample(trainer, pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self._sample(trainer, pl_module)

    def _sample(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A validation that ends on a sampling step would draw the same grid twice.
        if not trainer.is_global_zero or self._last_step == trainer.global_step:
            return
        if not isinstance(pl_module, ImageSampler):
            raise TypeError(f"ImageSampleCallback needs a model with sample(); {type(pl_module).__name__} has none.")
        self._last_step = trainer.global_step
        images = pl_module.sample(self.num_samples, self.sample_steps, self.eta, seed=self.seed)
        grid = make_grid(images.cpu(), nrow=math.ceil(math.sqrt(self.num_samples)))
        if isinstance(trainer.logger, TensorBoardLogger):
            trainer.logger.experiment.add_image("samples", grid, trainer.global_step)
        path = Path(trainer.log_dir or trainer.default_root_dir) / "samples" / f"step_{trainer.global_step:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
