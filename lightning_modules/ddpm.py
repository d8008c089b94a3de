"""DDPM: a denoising diffusion model (Ho et al. 2020) on small images, and how it trains and samples."""

from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from tqdm import tqdm

from errors import UserInputError
from lightning_modules.noise_schedule import NoiseSchedule, SamplerStep, ScheduleKind
from lightning_modules.unet import UNet

OnStep = Callable[[int, torch.Tensor, SamplerStep], None]  # (t, x_t, the sampler's step from it)


class DDPM(pl.LightningModule):
    """A `UNet` that predicts the noise in x_t, trained with the simple epsilon-MSE loss, and a `NoiseSchedule`.

    Images are expected in [-1, 1]. Architecture switches (`disable_residual`, `disable_time_emb`) are
    documented on `UNet`; `noise_schedule` picks the betas and leaves the network untouched.
    `num_samples`, `sample_steps` and `eta` are the sampling settings `predict` uses (see `sample`); they
    are not part of the model and are not saved with it, nor is `compile` (torch.compile for the training
    and validation loss; off by default: see the README for what it does on a CPU).
    """

    def __init__(
        self,
        image_size: int = 28,
        in_channels: int = 1,
        base_channels: int = 64,
        channel_mults: tuple[int, ...] = (1, 2, 2),
        dropout: float = 0.0,
        timesteps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        noise_schedule: ScheduleKind = "linear",
        learning_rate: float = 2e-4,
        warmup_steps: int = 100,
        disable_residual: bool = False,
        disable_time_emb: bool = False,
        compile: bool = False,
        num_samples: int = 64,
        sample_steps: int | None = None,
        eta: float = 0.0,
    ) -> None:
        super().__init__()
        _check_config(image_size, in_channels, base_channels, channel_mults, dropout, learning_rate, warmup_steps)
        self.save_hyperparameters(ignore=["compile", "num_samples", "sample_steps", "eta"])
        self.schedule = NoiseSchedule(noise_schedule, timesteps, beta_start, beta_end)
        _check_sampling(num_samples, sample_steps, eta, timesteps)
        self.num_samples, self.sample_steps, self.eta = num_samples, sample_steps, eta
        self.unet = UNet(in_channels, base_channels, tuple(channel_mults), dropout, disable_residual, disable_time_emb)
        # torch.compile (on first call) for the training and validation loss; sampling stays eager.
        self._loss_fn = torch.compile(self.loss) if compile else self.loss

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Noisy images (B, C, H, W) and their timesteps (B,) -> predicted noise eps_theta(x_t, t)."""
        return self.unet(x_t, t)

    # ---- training -------------------------------------------------------------------------------

    def loss(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, per_image: bool = False) -> torch.Tensor:
        """DDPM's L_simple: how far the predicted noise is from the noise that made x_t from x0 at step t.

        The mean over the batch, or with `per_image` one value per image (B,), which shows how the loss
        depends on the noise level t.
        """
        eps = self(self.schedule.q_sample(x0, t, noise), t)
        losses = F.mse_loss(eps.float(), noise, reduction="none").flatten(1).mean(dim=1)
        return losses if per_image else losses.mean()

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x0 = batch[0]
        t = torch.randint(0, self.hparams.timesteps, (x0.size(0),), device=x0.device)
        loss = self._loss_fn(x0, t, torch.randn_like(x0))
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def _fixed_noise_losses(self, batch: list[torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        """Each image's loss, with timesteps and noise seeded by the batch index, so every evaluation scores
        the same draws; with the timesteps, for observers (`callbacks.DiffusionObserver`)."""
        x0 = batch[0]
        generator = torch.Generator().manual_seed(batch_idx)
        t = torch.randint(0, self.hparams.timesteps, (x0.size(0),), generator=generator).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        return {"t": t, "losses": self._loss_fn(x0, t, noise, per_image=True)}

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        out = self._fixed_noise_losses(batch, batch_idx)
        self.log("val_loss", out["losses"].mean(), prog_bar=True, sync_dist=True, batch_size=batch[0].size(0))
        return out

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        loss = self._fixed_noise_losses(batch, batch_idx)["losses"].mean()
        self.log("test_loss", loss, sync_dist=True, batch_size=batch[0].size(0))

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.learning_rate)
        # Linear warm-up to the peak rate over `warmup_steps`, then constant, as in DDPM.
        warmup = self.hparams.warmup_steps
        scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1 / (warmup + 1), total_iters=warmup)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ---- sampling -------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(
        self,
        num_samples: int,
        steps: int | None = None,
        eta: float = 0.0,
        seed: int | None = None,
        progress: bool = False,
        on_step: OnStep | None = None,
    ) -> torch.Tensor:
        """Draw `num_samples` images (N, C, H, W) in [0, 1], starting from pure noise.

        `steps=None` runs DDPM's ancestral sampler through every timestep; `steps=k` runs DDIM on k evenly
        spaced timesteps, where `eta` sets how much fresh noise each step adds (0: deterministic given the
        starting noise; 1: as much as DDPM). `eta` only applies to DDIM. All randomness comes from `seed`
        when given (from torch's global generator otherwise), drawn on the CPU, so a seed gives the same
        grid on any device. `progress` shows a progress bar over the steps; `on_step` sees every step
        (see `denoise`).
        """
        _check_sampling(num_samples, steps, eta, self.hparams.timesteps)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        hp = self.hparams
        x_T = torch.randn((num_samples, hp.in_channels, hp.image_size, hp.image_size), generator=generator)
        x0 = self.denoise(x_T.to(self.device), steps, eta, generator, progress, on_step)
        return ((x0.float() + 1) / 2).clamp(0.0, 1.0)

    @torch.no_grad()
    def denoise(
        self,
        x_T: torch.Tensor,
        steps: int | None = None,
        eta: float = 0.0,
        generator: torch.Generator | None = None,
        progress: bool = False,
        on_step: OnStep | None = None,
    ) -> torch.Tensor:
        """Run the reverse process from the noise `x_T` to images in [-1, 1] (see `sample` for the arguments).

        `generator` (a CPU one) supplies the noise added along the way; DDIM with eta=0 adds none.
        `on_step(t, x_t, step)` is called at every step with the timestep, the current noisy images and
        the sampler's `SamplerStep` (the next x and the predicted clean image x0), to watch digits emerge.
        """
        _check_sampling(x_T.size(0), steps, eta, self.hparams.timesteps)
        ancestral = steps is None
        timesteps = list(range(self.hparams.timesteps - 1, -1, -1)) if ancestral else self.schedule.ddim_timesteps(steps)
        was_training = self.training
        self.eval()
        try:
            x = x_T
            desc = "DDPM sampling" if ancestral else "DDIM sampling"
            for i, t in enumerate(tqdm(timesteps, desc=desc, disable=not progress)):
                eps = self(x, torch.full((x.size(0),), t, device=x.device, dtype=torch.long))
                if ancestral:
                    noise = self._noise_like(x, generator) if t > 0 else None
                    step = self.schedule.ddpm_step(x, t, eps, noise)
                else:
                    t_prev = timesteps[i + 1] if i + 1 < len(timesteps) else -1
                    noise = self._noise_like(x, generator) if eta > 0 else None
                    step = self.schedule.ddim_step(x, t, t_prev, eps, eta, noise)
                if on_step is not None:
                    on_step(t, x, step)
                x = step.prev_sample
            return x
        finally:
            self.train(was_training)

    def _noise_like(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return torch.randn(x.shape, generator=generator).to(x.device)

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """This process's share of a `num_samples` grid; the batch holds the share's index (see MNISTDataModule).

        In one process that is the whole grid, drawn from torch's global generator. Under DDP, process i
        draws every world_size-th image, and processes other than the first seed their own generator from
        the shared one, so that they do not all draw the same noise.
        """
        part, parts = int(batch[0]), self.trainer.world_size
        count = len(range(part, self.num_samples, parts))
        if count == 0:  # more processes than images
            return torch.empty(0, self.hparams.in_channels, self.hparams.image_size, self.hparams.image_size)
        seed = int(torch.randint(2**31, (1,))) + part if part else None
        return self.sample(count, self.sample_steps, self.eta, seed=seed, progress=True)


def _check_config(
    image_size: int,
    in_channels: int,
    base_channels: int,
    channel_mults: tuple[int, ...],
    dropout: float,
    learning_rate: float,
    warmup_steps: int,
) -> None:
    sizes = {"image_size": image_size, "in_channels": in_channels, "base_channels": base_channels}
    for name, value in sizes.items():
        if value <= 0:
            raise UserInputError(f"{name} must be a positive integer, got {value}.")
    if base_channels % 2 != 0:
        raise UserInputError(
            f"base_channels must be even (the time embedding pairs sines and cosines), got {base_channels}."
        )
    if not channel_mults or any(m <= 0 for m in channel_mults):
        raise UserInputError(f"channel_mults must be a non-empty list of positive integers, got {channel_mults}.")
    halvings = len(channel_mults) - 1
    if image_size % 2**halvings != 0:
        raise UserInputError(
            f"image_size {image_size} cannot be halved {halvings} times (one per level after the first in "
            f"channel_mults={list(channel_mults)}): use fewer levels, e.g. channel_mults [1, 2, 2] for 28x28."
        )
    if not 0.0 <= dropout < 1.0:
        raise UserInputError(f"dropout must be in [0, 1), got {dropout}.")
    if learning_rate <= 0:
        raise UserInputError(f"learning_rate must be positive, got {learning_rate}.")
    if warmup_steps < 0:
        raise UserInputError(f"warmup_steps must be 0 or more, got {warmup_steps}.")


def _check_sampling(num_samples: int, steps: int | None, eta: float, timesteps: int) -> None:
    if num_samples <= 0:
        raise UserInputError(f"num_samples must be a positive integer, got {num_samples}.")
    if steps is not None and not 1 <= steps <= timesteps:
        raise UserInputError(
            f"sample_steps must be between 1 and timesteps ({timesteps}) for DDIM, or unset for the full "
            f"ancestral sampler, got {steps}."
        )
    if not 0.0 <= eta <= 1.0:
        raise UserInputError(f"eta must be in [0, 1] (0: deterministic DDIM, 1: DDPM-like noise), got {eta}.")
