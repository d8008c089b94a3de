"""Draws a grid of images from a fixed seed during training, logs it to TensorBoard and saves it as a PNG."""

import math
from pathlib import Path
from typing import Protocol, runtime_checkable

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torchvision.utils import make_grid, save_image

from callbacks.periodic_sampler import PeriodicSampler
from callbacks.tags import SAMPLES
from errors import UserInputError


@runtime_checkable
class ImageSampler(Protocol):
    """What the image callbacks need of a model: a way to draw images in [0, 1], and to check the settings."""

    def sample(self, num_samples: int, steps: int | None, eta: float, seed: int | None) -> torch.Tensor:
        ...

    def check_sampling(self, num_samples: int, steps: int | None, eta: float) -> None:
        ...


def check_sampler(
    callback: pl.Callback, pl_module: pl.LightningModule, num_samples: int, steps: int | None, eta: float = 0.0
) -> None:
    """Refuse, before anything runs, a model that cannot sample or settings it cannot follow, naming the callback."""
    name = type(callback).__name__
    if not isinstance(pl_module, ImageSampler):
        raise TypeError(f"{name} needs a model with sample(); {type(pl_module).__name__} has none.")
    try:
        pl_module.check_sampling(num_samples, steps, eta)
    except UserInputError as err:
        raise UserInputError(f"{name}: {err} Change it in the config.") from None


class ImageSampleCallback(PeriodicSampler):
    """Every `every_n_steps` training steps (if set) and at the end of each validation, draws `num_samples` images.

    The seed is fixed, so successive grids start from the same noise and show how the model changes, not
    the luck of the draw. `sample_steps` is the number of DDIM steps (None: the full ancestral sampler,
    much slower). A class-conditional model draws the digits in turn, one column per digit, in whole rows
    (`num_samples` rounded up to a multiple of its classes). The grid goes to TensorBoard's Images tab (tag
    `samples`) and to `<log_dir>/samples/step_XXXXXX.png`.
    """

    def __init__(
        self,
        num_samples: int = 16,
        every_n_steps: int | None = 500,
        sample_steps: int | None = 50,
        eta: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(every_n_steps)
        if num_samples <= 0:
            raise UserInputError(f"ImageSampleCallback num_samples must be positive, got {num_samples}.")
        self.num_samples = num_samples
        self.sample_steps = sample_steps
        self.eta = eta
        self.seed = seed

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        check_sampler(self, pl_module, self.num_samples, self.sample_steps, self.eta)

    def draw(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        classes = pl_module.hparams.get("num_classes", 0)
        count = math.ceil(self.num_samples / classes) * classes if classes else self.num_samples
        images = pl_module.sample(count, self.sample_steps, self.eta, seed=self.seed)
        grid = make_grid(images.cpu(), nrow=classes or math.ceil(math.sqrt(count)))
        if isinstance(trainer.logger, TensorBoardLogger):
            trainer.logger.experiment.add_image(SAMPLES, grid, trainer.global_step)
        # The logger's folder, not `trainer.log_dir`: that is a collective call under DDP, and only rank zero is here.
        log_dir = getattr(trainer.logger, "log_dir", None) or trainer.default_root_dir
        path = Path(log_dir) / "samples" / f"step_{trainer.global_step:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
