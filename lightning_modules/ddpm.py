"""DDPM: a denoising diffusion model (Ho et al. 2020) on small images, and how it trains and samples."""

from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from tqdm import tqdm

from checkpoints import upgrade
from errors import UserInputError
from lightning_modules.lr_schedule import LRSchedule
from lightning_modules.noise_schedule import NoiseSchedule, SamplerStep, ScheduleKind
from lightning_modules.unet import UNet

OnStep = Callable[[int, torch.Tensor, SamplerStep], None]  # (t, x_t, the sampler's step from it)


class DDPM(pl.LightningModule):
    """A `UNet` that predicts the noise in x_t, trained with the epsilon-MSE loss, and a `NoiseSchedule`.

    Images are expected in [-1, 1]. Architecture switches (`disable_residual`, `disable_time_emb`) are
    documented on `UNet`; `noise_schedule` picks the betas and leaves the network untouched. The learning
    rate follows `LRSchedule` (`learning_rate`, `warmup_steps`, `lr_decay_steps`, `min_lr`; `min_lr` equal to
    `learning_rate` keeps it constant after the warm-up, as DDPM trained). `min_snr_gamma` weights the
    training loss by noise level (see `loss_weights`).

    `num_classes > 0` makes it class-conditional with classifier-free guidance (Ho and Salimans, 2022): the
    U-Net also sees each image's label (the second element of a batch), and in a share `cond_drop_prob` of
    training images the label is replaced by the "no label" token, so one network learns both eps(x, y) and
    eps(x). Sampling with `guidance_scale` w then steers towards the label (see `denoise`).

    `num_samples`, `sample_steps`, `eta`, `labels` and `guidance_scale` are the sampling settings `predict`
    uses (see `sample` and `predict_step`); they are not part of the model and are not saved with it, nor
    is `compile` (torch.compile for the training and validation loss; off by default: see the README for
    what it does on a CPU).
    """

    # The experiment switches: the first columns of TensorBoard's HPARAMS tab (callbacks.HParamsTab).
    SWITCHES = ("disable_residual", "disable_time_emb", "noise_schedule", "min_snr_gamma", "num_classes")

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
        lr_decay_steps: int | None = None,
        min_lr: float | None = None,
        min_snr_gamma: float | None = None,
        disable_residual: bool = False,
        disable_time_emb: bool = False,
        num_classes: int = 0,
        cond_drop_prob: float = 0.1,
        compile: bool = False,
        num_samples: int = 64,
        sample_steps: int | None = None,
        eta: float = 0.0,
        labels: list[int] | None = None,
        guidance_scale: float = 0.0,
    ) -> None:
        super().__init__()
        if image_size <= 0:
            raise UserInputError(f"image_size must be a positive integer, got {image_size}.")
        if min_snr_gamma is not None and min_snr_gamma <= 0:
            raise UserInputError(f"min_snr_gamma must be positive (or null: no weighting), got {min_snr_gamma}.")
        if not 0.0 <= cond_drop_prob < 1.0:
            raise UserInputError(f"cond_drop_prob must be in [0, 1), got {cond_drop_prob}.")
        LRSchedule(learning_rate, warmup_steps, lr_decay_steps, min_lr)  # checks the settings now, not at fit
        self.save_hyperparameters(ignore=["compile", "num_samples", "sample_steps", "eta", "labels", "guidance_scale"])
        self.schedule = NoiseSchedule(noise_schedule, timesteps, beta_start, beta_end)
        self.unet = UNet(
            in_channels, base_channels, tuple(channel_mults), dropout, disable_residual, disable_time_emb, num_classes
        )
        if image_size % 2 ** self.unet.halvings() != 0:
            raise UserInputError(
                f"image_size {image_size} cannot be halved {self.unet.halvings()} times (one per level after the "
                f"first in channel_mults={list(channel_mults)}): use fewer levels, e.g. channel_mults [1, 2, 2] "
                "for 28x28."
            )
        self.check_sampling(num_samples, sample_steps, eta)
        self.num_samples, self.sample_steps, self.eta = num_samples, sample_steps, eta
        self.labels = self._check_labels(torch.tensor(labels), len(labels)) if labels is not None else None
        self.guidance_scale = guidance_scale
        # torch.compile (on first call) for the training and validation loss; sampling stays eager.
        self._loss_fn = torch.compile(self.loss) if compile else self.loss

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Noisy images (B, C, H, W), their timesteps (B,) and, for a conditional model, their labels (B,)
        (None: no label) -> predicted noise eps_theta(x_t, t, y)."""
        return self.unet(x_t, t, labels)

    @property
    def conditional(self) -> bool:
        return self.hparams.num_classes > 0

    # ---- training -------------------------------------------------------------------------------

    def loss(
        self,
        x0: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
        labels: torch.Tensor | None = None,
        per_image: bool = False,
    ) -> torch.Tensor:
        """DDPM's L_simple: how far the predicted noise is from the noise that made x_t from x0 at step t.

        The mean over the batch, or with `per_image` one value per image (B,), which shows how the loss
        depends on the noise level t.
        """
        eps = self(self.schedule.q_sample(x0, t, noise), t, labels)
        losses = F.mse_loss(eps.float(), noise, reduction="none").flatten(1).mean(dim=1)
        return losses if per_image else losses.mean()

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x0 = batch[0]
        t = torch.randint(0, self.hparams.timesteps, (x0.size(0),), device=x0.device)
        losses = self._loss_fn(x0, t, torch.randn_like(x0), self.drop_labels(batch), per_image=True)
        loss = (self.loss_weights(t) * losses).mean()
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def loss_weights(self, t: torch.Tensor) -> torch.Tensor:
        """How much each timestep's loss counts in training: 1 everywhere (DDPM's L_simple), or with
        `min_snr_gamma` the Min-SNR-gamma weights min(SNR_t, gamma) / SNR_t (Hang et al. 2023).

        Near t = 0 the noise hides behind an almost clean digit: its loss is the largest and dominates the
        mean, though those steps only polish details. Min-SNR caps their weight at gamma / SNR_t (1 wherever
        SNR_t <= gamma), so training spends more of its effort on the noise levels that shape the digit. The
        validation loss stays unweighted, so runs with and without it compare (`train_loss` is the weighted one).
        """
        gamma = self.hparams.min_snr_gamma
        if gamma is None:
            return torch.ones_like(t, dtype=torch.float32)
        return (gamma / self.schedule.snr[t]).clamp(max=1.0)  # = min(SNR_t, gamma) / SNR_t, and 1 at SNR 0

    def drop_labels(self, batch: list[torch.Tensor]) -> torch.Tensor | None:
        """The batch's labels for a conditional model, each replaced by the "no label" token with probability
        `cond_drop_prob`, so that the network also learns the unconditional eps(x) that guidance needs."""
        if not self.conditional:
            return None
        labels = batch[1]
        dropped = torch.rand(labels.shape, device=labels.device) < self.hparams.cond_drop_prob
        return labels.masked_fill(dropped, self.unet.null_label)

    def _fixed_noise_losses(self, batch: list[torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        """Each image's loss, with timesteps and noise seeded by the batch index, so every evaluation scores
        the same draws; with the timesteps, for observers (`callbacks.DiffusionObserver`). A conditional
        model is scored with every label given."""
        x0 = batch[0]
        generator = torch.Generator().manual_seed(batch_idx)
        t = torch.randint(0, self.hparams.timesteps, (x0.size(0),), generator=generator).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        labels = batch[1] if self.conditional else None
        return {"t": t, "losses": self._loss_fn(x0, t, noise, labels, per_image=True)}

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        out = self._fixed_noise_losses(batch, batch_idx)
        self.log("val_loss", out["losses"].mean(), prog_bar=True, sync_dist=True, batch_size=batch[0].size(0))
        return out

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        loss = self._fixed_noise_losses(batch, batch_idx)["losses"].mean()
        self.log("test_loss", loss, sync_dist=True, batch_size=batch[0].size(0))

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.learning_rate)
        schedule = LRSchedule.of(self.hparams).scheduler(optimizer, run_steps=self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": schedule}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        upgrade(checkpoint, "DDPM")
        # An earlier run at a constant rate keeps it when it resumes (the upgrade's min_lr; see checkpoints.format).
        self.hparams.min_lr = checkpoint.get("hyper_parameters", {}).get("min_lr", self.hparams.min_lr)

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
        labels: torch.Tensor | list[int] | None = None,
        guidance_scale: float | None = None,
    ) -> torch.Tensor:
        """Draw `num_samples` images (N, C, H, W) in [0, 1], starting from pure noise.

        `steps=None` runs DDPM's ancestral sampler through every timestep; `steps=k` runs DDIM on k evenly
        spaced timesteps, where `eta` sets how much fresh noise each step adds (0: deterministic given the
        starting noise; 1: as much as DDPM). `eta` only applies to DDIM. All randomness comes from `seed`
        when given (from torch's global generator otherwise), drawn on the CPU, so a seed gives the same
        grid on any device. `progress` shows a progress bar over the steps; `on_step` sees every step
        (see `denoise`).

        A conditional model draws image i as digit `labels[i]` (by default the digits in turn: 0, 1, ..., 9,
        0, ...), steered by `guidance_scale` (by default the model's `guidance_scale` setting; see `denoise`).
        """
        self.check_sampling(num_samples, steps, eta)
        labels = self.sampling_labels(labels, num_samples)
        if guidance_scale is None:
            guidance_scale = self.guidance_scale
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        hp = self.hparams
        x_T = torch.randn((num_samples, hp.in_channels, hp.image_size, hp.image_size), generator=generator)
        x0 = self.denoise(x_T.to(self.device), steps, eta, generator, progress, on_step, labels, guidance_scale)
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
        labels: torch.Tensor | None = None,
        guidance_scale: float = 0.0,
    ) -> torch.Tensor:
        """Run the reverse process from the noise `x_T` to images in [-1, 1] (see `sample` for the arguments).

        `generator` (a CPU one) supplies the noise added along the way; DDIM with eta=0 adds none.
        `on_step(t, x_t, step)` is called at every step with the timestep, the current noisy images and
        the sampler's `SamplerStep` (the next x and the predicted clean image x0), to watch digits emerge.
        `labels` and `guidance_scale` go to `guided_eps`.
        """
        self.check_sampling(x_T.size(0), steps, eta)
        ancestral = steps is None
        timesteps = list(range(self.hparams.timesteps - 1, -1, -1)) if ancestral else self.schedule.ddim_timesteps(steps)
        if labels is not None:
            labels = labels.to(x_T.device)
        was_training = self.training
        self.eval()
        try:
            x = x_T
            desc = "DDPM sampling" if ancestral else "DDIM sampling"
            for i, t in enumerate(tqdm(timesteps, desc=desc, disable=not progress)):
                t_batch = torch.full((x.size(0),), t, device=x.device, dtype=torch.long)
                eps = self.guided_eps(x, t_batch, labels, guidance_scale)
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

    def guided_eps(
        self, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None, guidance_scale: float
    ) -> torch.Tensor:
        """The noise prediction a sampler step uses: classifier-free guidance (Ho and Salimans, 2022).

        eps = (1 + w) eps(x_t, y) - w eps(x_t): the conditional prediction pushed further away from the
        unconditional one, by w = `guidance_scale`. w = 0 is the plain conditional prediction; larger w
        gives digits that are more clearly the label, and less varied. The two predictions share one batch.
        """
        if labels is None or guidance_scale == 0:
            return self(x_t, t, labels)
        no_label = torch.full_like(labels, self.unet.null_label)
        eps = self(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([labels, no_label])).float()
        eps_cond, eps_uncond = eps.chunk(2)  # in float32 even under autocast: w scales their small difference
        return (1 + guidance_scale) * eps_cond - guidance_scale * eps_uncond

    def sampling_labels(self, labels: torch.Tensor | list[int] | None, num_samples: int) -> torch.Tensor | None:
        """The label of each image to draw: None for an unconditional model, the digits in turn by default."""
        if not self.conditional:
            if labels is not None:
                raise UserInputError("This model is unconditional (num_classes 0): it cannot be asked for labels.")
            return None
        if labels is None:
            return torch.arange(num_samples) % self.hparams.num_classes
        return self._check_labels(torch.as_tensor(labels), num_samples)

    def _check_labels(self, labels: torch.Tensor, count: int) -> torch.Tensor:
        num_classes = self.hparams.num_classes
        if num_classes == 0:
            raise UserInputError("This model is unconditional (num_classes 0): it cannot be asked for labels.")
        if labels.dim() != 1 or len(labels) != count:
            raise UserInputError(
                f"Give one label per image: {count} image(s), got labels of shape {tuple(labels.shape)}."
            )
        bad = [int(y) for y in labels if not 0 <= y < num_classes]
        if bad or labels.is_floating_point():
            raise UserInputError(
                f"Labels must be whole numbers from 0 to {num_classes - 1} (the model's classes), "
                f"got {labels.tolist()}."
            )
        return labels.long()

    def check_sampling(self, num_samples: int, steps: int | None = None, eta: float = 0.0) -> None:
        """Refuse sampling settings this model cannot follow, with the setting's name and range."""
        timesteps = self.hparams.timesteps
        if num_samples <= 0:
            raise UserInputError(f"num_samples must be a positive integer, got {num_samples}.")
        if steps is not None and not 1 <= steps <= timesteps:
            raise UserInputError(
                f"sample_steps must be between 1 and timesteps ({timesteps}) for DDIM, or unset for the full "
                f"ancestral sampler, got {steps}."
            )
        if not 0.0 <= eta <= 1.0:
            raise UserInputError(f"eta must be in [0, 1] (0: deterministic DDIM, 1: DDPM-like noise), got {eta}.")

    def _noise_like(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return torch.randn(x.shape, generator=generator).to(x.device)

    @property
    def predict_labels(self) -> torch.Tensor | None:
        """What `predict` draws for a conditional model: `num_samples` of each digit in `labels` (by default all
        of them), digit by digit, so that the grid has one row per digit; None for an unconditional model."""
        if not self.conditional:
            return None
        digits = self.labels if self.labels is not None else torch.arange(self.hparams.num_classes)
        return digits.repeat_interleave(self.num_samples)

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """This process's share of the grid; the batch holds the share's index (see MNISTDataModule).

        The grid is `num_samples` images, or for a conditional model `num_samples` of each requested digit.
        In one process that is the whole grid, drawn from torch's global generator. Under DDP, process i
        draws the i-th of world_size consecutive slices, and processes other than the first seed their own
        generator from the shared one, so that they do not all draw the same noise.
        """
        part, parts = int(batch[0]), self.trainer.world_size
        labels = self.predict_labels
        total = len(labels) if labels is not None else self.num_samples
        share = torch.tensor_split(torch.arange(total), parts)[part]
        if len(share) == 0:  # more processes than images
            return torch.empty(0, self.hparams.in_channels, self.hparams.image_size, self.hparams.image_size)
        seed = int(torch.randint(2**31, (1,))) + part if part else None
        share_labels = labels[share] if labels is not None else None
        return self.sample(len(share), self.sample_steps, self.eta, seed=seed, progress=True, labels=share_labels)
