"""The DDPM noise schedule: how much noise each timestep adds, and the closed forms built on it.

This is pure arithmetic on tensors with no network inside (the split `diffusers` makes between a
scheduler and a U-Net): the forward process for training, and one update rule per sampler (`ddpm_step`,
`ddim_step`), each taking the network's noise prediction as a plain tensor; the caller owns the loop.
Names follow Ho et al. 2020: `betas`, `alphas`, `alphas_cumprod` (alpha-bar), `posterior_variance`
(beta-tilde).
"""

import math
from typing import Literal, NamedTuple, get_args

import torch
from torch import nn

from errors import UserInputError

ScheduleKind = Literal["linear", "cosine"]


def linear_betas(timesteps: int, beta_start: float, beta_end: float) -> torch.Tensor:
    """Ho et al. 2020: betas rising linearly from `beta_start` to `beta_end` (float64)."""
    return torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)


def cosine_betas(timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal 2021: alpha-bar follows a squared cosine, so noise arrives more evenly over time.

    The offset `s` keeps the first betas from being vanishingly small; clipping at `max_beta` avoids the
    singularity at the very end, where alpha-bar reaches zero (float64).
    """
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=max_beta)


class SamplerStep(NamedTuple):
    """One step of a sampler: the sample one step less noisy, and the clean image the step aimed at."""

    prev_sample: torch.Tensor
    pred_x0: torch.Tensor


class NoiseSchedule(nn.Module):
    """Betas and every quantity derived from them, one entry per timestep t = 0 .. timesteps - 1.

    Everything is computed in float64 on the CPU once, then stored as float32 buffers: run time needs no
    float64 (MPS has none), and the buffers follow the model with `.to(device)`. They are not saved in
    checkpoints, since the constructor arguments rebuild them exactly.
    """

    def __init__(
        self, kind: ScheduleKind = "linear", timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02
    ) -> None:
        super().__init__()
        _check_schedule(kind, timesteps, beta_start, beta_end)
        self.kind = kind
        self.timesteps = timesteps
        betas = linear_betas(timesteps, beta_start, beta_end) if kind == "linear" else cosine_betas(timesteps)
        alphas = 1.0 - betas
        alphas_cumprod = torch.cumprod(alphas, dim=0)
        alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])
        buffers = {
            "betas": betas,
            "alphas": alphas,
            "alphas_cumprod": alphas_cumprod,
            "alphas_cumprod_prev": alphas_cumprod_prev,
            # q(x_t | x_0) = N(sqrt(alpha-bar) x_0, (1 - alpha-bar) I), and its inverse for x_0.
            "sqrt_alphas_cumprod": alphas_cumprod.sqrt(),
            "sqrt_one_minus_alphas_cumprod": (1.0 - alphas_cumprod).sqrt(),
            "sqrt_recip_alphas_cumprod": (1.0 / alphas_cumprod).sqrt(),
            "sqrt_recipm1_alphas_cumprod": (1.0 / alphas_cumprod - 1.0).sqrt(),
            # The signal-to-noise ratio of x_t, alpha-bar / (1 - alpha-bar): linear, 1000 steps: 1e4 (t=0) to 4e-5.
            "snr": alphas_cumprod / (1.0 - alphas_cumprod),
            # q(x_{t-1} | x_t, x_0) = N(coef1 x_0 + coef2 x_t, beta-tilde I)   (DDPM eqs. 6-7)
            "posterior_variance": betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod),
            "posterior_mean_coef1": betas * alphas_cumprod_prev.sqrt() / (1.0 - alphas_cumprod),
            "posterior_mean_coef2": (1.0 - alphas_cumprod_prev) * alphas.sqrt() / (1.0 - alphas_cumprod),
        }
        for name, value in buffers.items():
            self.register_buffer(name, value.float(), persistent=False)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, timesteps={self.timesteps}"

    @staticmethod
    def at(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """values[t], shaped (B, 1, 1, ...) to broadcast against a batch shaped like `like`."""
        return values[t].view(-1, *([1] * (like.dim() - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t drawn from q(x_t | x_0) in one jump: sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) noise."""
        mean_scale, std = self.at(self.sqrt_alphas_cumprod, t, x0), self.at(self.sqrt_one_minus_alphas_cumprod, t, x0)
        return mean_scale * x0 + std * noise

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The x_0 that `q_sample` would have turned into x_t with noise `eps` (q_sample solved for x_0)."""
        recip = self.at(self.sqrt_recip_alphas_cumprod, t, x_t)
        recipm1 = self.at(self.sqrt_recipm1_alphas_cumprod, t, x_t)
        return recip * x_t - recipm1 * eps

    def predict_eps(self, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """The noise that takes x_0 to x_t (q_sample solved for the noise); DDIM re-derives it after clipping x_0."""
        recip = self.at(self.sqrt_recip_alphas_cumprod, t, x_t)
        recipm1 = self.at(self.sqrt_recipm1_alphas_cumprod, t, x_t)
        return (recip * x_t - x0) / recipm1

    def posterior_mean_variance(
        self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(x_{t-1} | x_t, x_0); the variance is shaped (B, 1, 1, ...)."""
        mean = self.at(self.posterior_mean_coef1, t, x_t) * x0 + self.at(self.posterior_mean_coef2, t, x_t) * x_t
        return mean, self.at(self.posterior_variance, t, x_t)

    def predict_x0_clipped(self, x_t: torch.Tensor, t: torch.Tensor | int, eps: torch.Tensor) -> torch.Tensor:
        """`predict_x0` clipped to the data range [-1, 1], as the samplers of the DDPM code use it."""
        return self.predict_x0(x_t, t, eps).clamp(-1.0, 1.0)

    def ddpm_step(
        self, x_t: torch.Tensor, t: int, eps: torch.Tensor, noise: torch.Tensor | None = None
    ) -> SamplerStep:
        """DDPM's ancestral step (Algorithm 2, through x_0): x_{t-1} ~ N(posterior mean, beta-tilde_t).

        The posterior mean comes from the clipped x_0 predicted from `eps`. `noise` (standard normal, shaped
        like x_t) is needed for every t > 0; the last step, t = 0, returns the mean itself.
        """
        x0 = self.predict_x0_clipped(x_t, t, eps)
        mean, variance = self.posterior_mean_variance(x0, x_t, t)
        if t == 0:
            return SamplerStep(mean, x0)
        if noise is None:
            raise ValueError(f"ddpm_step needs noise at t={t} > 0.")
        return SamplerStep(mean + variance.sqrt() * noise, x0)

    def ddim_timesteps(self, steps: int) -> list[int]:
        """The `steps` timesteps DDIM visits: evenly spaced from T - 1 down to 0."""
        return torch.linspace(self.timesteps - 1, 0, steps).round().long().tolist()

    def ddim_step(
        self,
        x_t: torch.Tensor,
        t: int,
        t_prev: int,
        eps: torch.Tensor,
        eta: float = 0.0,
        noise: torch.Tensor | None = None,
    ) -> SamplerStep:
        """DDIM's update (Song et al. 2021, eq. 12) from timestep t to the earlier `t_prev` (-1: the clean image).

        x_prev = sqrt(alpha-bar_prev) x_0 + sqrt(1 - alpha-bar_prev - sigma^2) eps + sigma noise, where x_0 is
        the clipped prediction and eps is re-derived from it so the two agree. `eta` scales sigma: 0 adds no
        noise (deterministic), 1 adds as much as DDPM's posterior. `noise` is needed when eta > 0.
        """
        x0 = self.predict_x0_clipped(x_t, t, eps)
        eps = self.predict_eps(x_t, t, x0)
        ab = self.alphas_cumprod[t]
        ab_prev = self.alphas_cumprod[t_prev] if t_prev >= 0 else torch.ones_like(ab)
        sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).sqrt()
        x_prev = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma**2).clamp(min=0).sqrt() * eps
        if eta > 0:
            if noise is None:
                raise ValueError("ddim_step needs noise when eta > 0.")
            x_prev = x_prev + sigma * noise
        return SamplerStep(x_prev, x0)


def _check_schedule(kind: str, timesteps: int, beta_start: float, beta_end: float) -> None:
    kinds = get_args(ScheduleKind)
    if kind not in kinds:
        raise UserInputError(f"Unknown noise schedule {kind!r}: choose one of {', '.join(map(repr, kinds))}.")
    if timesteps <= 0:
        raise UserInputError(f"timesteps must be a positive integer, got {timesteps}.")
    if kind == "linear" and not 0.0 < beta_start <= beta_end < 1.0:
        raise UserInputError(
            f"The linear schedule needs 0 < beta_start <= beta_end < 1, got beta_start={beta_start}, "
            f"beta_end={beta_end} (DDPM used 1e-4 and 0.02)."
        )
