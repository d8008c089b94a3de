"""The noise schedule's arithmetic, checked against the closed forms in the DDPM paper."""

import math

import pytest
import torch

from errors import UserInputError
from lightning_modules.noise_schedule import NoiseSchedule

KINDS = ["linear", "cosine"]


@pytest.mark.parametrize("kind", KINDS)
def test_alpha_bar_strictly_decreases_inside_zero_one(kind: str) -> None:
    ab = NoiseSchedule(kind, timesteps=1000).alphas_cumprod
    assert (ab > 0).all() and (ab < 1).all()
    assert (ab[1:] < ab[:-1]).all()


@pytest.mark.parametrize("kind", KINDS)
def test_buffers_are_float32_and_not_saved(kind: str) -> None:
    schedule = NoiseSchedule(kind, timesteps=50)
    buffers = dict(schedule.named_buffers())
    assert {"betas", "alphas_cumprod", "alphas_cumprod_prev", "posterior_variance"} <= buffers.keys()
    assert all(b.dtype == torch.float32 for b in buffers.values())
    assert schedule.state_dict() == {}  # rebuilt from the constructor arguments, not stored


def test_linear_betas_run_from_beta_start_to_beta_end() -> None:
    betas = NoiseSchedule("linear", timesteps=1000).betas
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)


def test_cosine_follows_squared_cosine_and_clips_betas() -> None:
    T, s = 1000, 0.008
    schedule = NoiseSchedule("cosine", timesteps=T)
    assert schedule.betas.max().item() == pytest.approx(0.999)

    def f(t: int) -> float:
        return math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2

    for t in (0, 100, 500, 900):  # alpha-bar_t = f(t + 1) / f(0): index t is the (t+1)-th noising step
        assert schedule.alphas_cumprod[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_q_sample_matches_the_closed_form_mean_and_variance(kind: str) -> None:
    schedule = NoiseSchedule(kind, timesteps=100)
    torch.manual_seed(0)
    n = 200_000
    x0 = torch.full((n, 1, 1, 1), 0.7)
    for step in (0, 30, 99):
        t = torch.full((n,), step)
        x_t = schedule.q_sample(x0, t, torch.randn_like(x0))
        ab = schedule.alphas_cumprod[step]
        assert x_t.mean().item() == pytest.approx((ab.sqrt() * 0.7).item(), abs=0.01)
        assert x_t.var().item() == pytest.approx((1 - ab).item(), rel=0.02, abs=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_posterior_variance_is_beta_tilde(kind: str) -> None:
    schedule = NoiseSchedule(kind, timesteps=50)
    t = torch.arange(1, 50)
    b, ab, ab_prev = schedule.betas[t], schedule.alphas_cumprod[t], schedule.alphas_cumprod[t - 1]
    x = torch.zeros(len(t), 1, 2, 2)
    _, variance = schedule.posterior_mean_variance(x, x, t)
    torch.testing.assert_close(variance.flatten(), b * (1 - ab_prev) / (1 - ab))
    assert schedule.posterior_variance[0].item() == 0.0  # the last step of sampling adds no noise


@pytest.mark.parametrize("kind", KINDS)
def test_posterior_mean_from_x0_equals_the_epsilon_form(kind: str) -> None:
    """DDPM eq. 11: for x_t made from x0 and eps, the mean is (x_t - beta_t / sqrt(1 - ab_t) eps) / sqrt(alpha_t)."""
    schedule = NoiseSchedule(kind, timesteps=50)
    torch.manual_seed(0)
    t = torch.tensor([1, 10, 25, 49])
    x0, eps = torch.rand(4, 1, 5, 5) * 2 - 1, torch.randn(4, 1, 5, 5)
    x_t = schedule.q_sample(x0, t, eps)
    mean, _ = schedule.posterior_mean_variance(x0, x_t, t)
    b, a, ab = (v[t].view(-1, 1, 1, 1) for v in (schedule.betas, schedule.alphas, schedule.alphas_cumprod))
    torch.testing.assert_close(mean, (x_t - b / (1 - ab).sqrt() * eps) / a.sqrt(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_predict_x0_and_predict_eps_invert_q_sample(kind: str) -> None:
    schedule = NoiseSchedule(kind, timesteps=50)
    torch.manual_seed(0)
    t = torch.tensor([0, 20, 40])
    x0, eps = torch.rand(3, 1, 4, 4) * 2 - 1, torch.randn(3, 1, 4, 4)
    x_t = schedule.q_sample(x0, t, eps)
    torch.testing.assert_close(schedule.predict_x0(x_t, t, eps), x0, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(schedule.predict_eps(x_t, t, x0), eps, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("kind", KINDS)
def test_ddim_with_eta_one_on_every_timestep_is_the_ancestral_step(kind: str) -> None:
    """With eta=1 and no skipped steps, DDIM's sigma is beta-tilde's square root and its mean the posterior
    mean (Song et al. 2021, section 4.1), so both updates give the same x_{t-1} from the same noise."""
    schedule = NoiseSchedule(kind, timesteps=50)
    generator = torch.Generator().manual_seed(0)
    x_t, eps, noise = (torch.randn(2, 1, 4, 4, generator=generator) for _ in range(3))
    for t in range(50):
        ddpm = schedule.ddpm_step(x_t, t, eps, noise)
        ddim = schedule.ddim_step(x_t, t, t - 1, eps, eta=1.0, noise=noise)
        torch.testing.assert_close(ddim.prev_sample, ddpm.prev_sample, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(ddim.pred_x0, ddpm.pred_x0)


def test_ddpm_step_is_the_posterior_mean_plus_its_noise() -> None:
    schedule = NoiseSchedule("linear", timesteps=50)
    generator = torch.Generator().manual_seed(0)
    x_t, eps, noise = (torch.randn(2, 1, 4, 4, generator=generator) for _ in range(3))
    x0 = schedule.predict_x0(x_t, 30, eps).clamp(-1, 1)
    mean, variance = schedule.posterior_mean_variance(x0, x_t, 30)
    step = schedule.ddpm_step(x_t, 30, eps, noise)
    torch.testing.assert_close(step.prev_sample, mean + variance.sqrt() * noise)
    torch.testing.assert_close(step.pred_x0, x0)
    final = schedule.ddpm_step(x_t, 0, eps)  # the last step adds no noise
    torch.testing.assert_close(final.prev_sample, schedule.posterior_mean_variance(final.pred_x0, x_t, 0)[0])
    with pytest.raises(ValueError, match="needs noise"):
        schedule.ddpm_step(x_t, 30, eps)


def test_ddim_with_eta_zero_moves_along_the_predicted_x0_and_eps() -> None:
    """eq. 12 with sigma = 0: x_prev = sqrt(ab_prev) x0 + sqrt(1 - ab_prev) eps; to t_prev = -1 it returns x0."""
    schedule = NoiseSchedule("cosine", timesteps=50)
    x0, eps = torch.rand(2, 1, 4, 4) * 2 - 1, torch.randn(2, 1, 4, 4)
    x_t = schedule.q_sample(x0, torch.tensor([40, 40]), eps)
    step = schedule.ddim_step(x_t, 40, 10, eps)
    ab_prev = schedule.alphas_cumprod[10]
    torch.testing.assert_close(step.prev_sample, ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(schedule.ddim_step(x_t, 40, -1, eps).prev_sample, x0, atol=1e-4, rtol=1e-4)
    assert schedule.ddim_timesteps(5) == [49, 37, 24, 12, 0]


def test_linear_and_cosine_schedules_differ() -> None:
    linear, cosine = NoiseSchedule("linear", 100), NoiseSchedule("cosine", 100)
    assert not torch.allclose(linear.alphas_cumprod, cosine.alphas_cumprod)


def test_unknown_kind_lists_the_valid_ones() -> None:
    with pytest.raises(UserInputError, match="'linear', 'cosine'"):
        NoiseSchedule("quadratic")


@pytest.mark.parametrize("kwargs", [{"timesteps": 0}, {"beta_start": 0.0}, {"beta_start": 0.03, "beta_end": 0.02}])
def test_bad_numbers_are_user_errors(kwargs: dict) -> None:
    with pytest.raises(UserInputError):
        NoiseSchedule("linear", **kwargs)
