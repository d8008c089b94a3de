"""DDPM: its settings, that it learns, how it samples, and its life through train.py (checkpoint, resume, predict)."""

from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import train
from callbacks import ImageSampleCallback
from callbacks.tags import GRAD_NORM, SAMPLES
from errors import UserInputError
from experiments.run_log import RunLog
from lightning_modules import DDPM
from tiny import ddpm_args, digit_squares, quiet_trainer, tiny_ddpm


def squares(n: int = 32) -> torch.Tensor:
    """Digit-like squares in [-1, 1], the range the model works in."""
    return digit_squares(n)[0] * 2 - 1


# ---- settings ---------------------------------------------------------------------------------------


def test_defaults_follow_the_plan_and_keep_sampling_settings_out_of_hparams():
    model = DDPM()
    hp = model.hparams
    assert (hp.image_size, hp.in_channels, hp.base_channels, hp.timesteps) == (28, 1, 64, 1000)
    assert (hp.beta_start, hp.beta_end, hp.noise_schedule, hp.learning_rate) == (1e-4, 0.02, "linear", 2e-4)
    assert not hp.disable_residual and not hp.disable_time_emb
    assert (model.num_samples, model.sample_steps, model.eta) == (64, None, 0.0)
    assert not {"num_samples", "sample_steps", "eta"} & set(hp)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_channels": 0}, "base_channels must be a positive integer"),
        ({"base_channels": 7}, r"\(the U-Net.s base_channels\) must be even, got 7"),
        ({"timesteps": 0}, "timesteps must be a positive integer"),
        ({"learning_rate": 0.0}, "learning_rate must be positive"),
        ({"noise_schedule": "quadratic"}, "choose one of 'linear', 'cosine'"),
        ({"channel_mults": (1, 2, 2, 2)}, "image_size 28 cannot be halved 3 times"),
        ({"sample_steps": 21}, r"sample_steps must be between 1 and timesteps \(20\)"),
        ({"eta": 1.5}, r"eta must be in \[0, 1\]"),
        ({"num_samples": 0}, "num_samples must be a positive integer"),
        ({"warmup_steps": 10, "lr_decay_steps": 10}, r"lr_decay_steps must be larger than warmup_steps \(10\)"),
        ({"learning_rate": 1e-3, "lr_decay_steps": 500, "min_lr": 2e-3}, r"min_lr must be between 0 and learning_rate"),
        ({"min_snr_gamma": 0.0}, "min_snr_gamma must be positive"),
        ({"in_channels": 0}, "in_channels must be a positive integer"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ],
)
def test_bad_settings_are_user_errors(kwargs, message):
    with pytest.raises(UserInputError, match=message):
        tiny_ddpm(**kwargs)


@pytest.mark.parametrize(("kwargs", "message"), [({"steps": 0}, "sample_steps"), ({"eta": -0.1}, "eta")])
def test_bad_sampling_arguments_are_user_errors(kwargs, message):
    with pytest.raises(UserInputError, match=message):
        tiny_ddpm().sample(2, **kwargs)


def test_cosine_schedule_changes_the_noise_but_not_the_network():
    linear, cosine = tiny_ddpm(), tiny_ddpm(noise_schedule="cosine")
    for name, value in linear.state_dict().items():
        torch.testing.assert_close(cosine.state_dict()[name], value, rtol=0, atol=0)
    assert not torch.allclose(linear.schedule.alphas_cumprod, cosine.schedule.alphas_cumprod)
    x0, t, noise = squares(4), torch.full((4,), 10), torch.randn(4, 1, 28, 28)
    assert not torch.allclose(linear.schedule.q_sample(x0, t, noise), cosine.schedule.q_sample(x0, t, noise))


def test_min_snr_gamma_caps_the_weight_of_low_noise_steps_and_leaves_the_rest_at_one():
    model = tiny_ddpm(min_snr_gamma=5.0)
    t = torch.arange(20)
    weights, snr = model.loss_weights(t), model.schedule.snr
    assert snr[0] > 5 > snr[-1]  # the tiny schedule has steps on both sides of gamma
    torch.testing.assert_close(weights[snr <= 5], torch.ones(int((snr <= 5).sum())))
    torch.testing.assert_close(weights[snr > 5], 5 / snr[snr > 5])
    assert torch.all(weights[1:] >= weights[:-1])  # more noise, more weight, up to 1
    assert torch.equal(tiny_ddpm().loss_weights(t), torch.ones(20))  # off by default: DDPM's L_simple


def test_min_snr_gamma_weights_the_training_loss_but_not_the_validation_loss():
    x0, batch = squares(8), [squares(8)]
    plain, weighted = tiny_ddpm(), tiny_ddpm(min_snr_gamma=1.0)
    torch.manual_seed(1)
    plain_loss = plain.training_step(batch, 0)
    torch.manual_seed(1)
    weighted_loss = weighted.training_step(batch, 0)
    torch.manual_seed(1)
    t = torch.randint(0, 20, (8,))
    losses = plain.loss(x0, t, torch.randn_like(x0), per_image=True)
    torch.testing.assert_close(plain_loss, losses.mean())
    torch.testing.assert_close(weighted_loss, (weighted.loss_weights(t) * losses).mean())
    assert weighted_loss < plain_loss
    val = [model._fixed_noise_losses(batch, 0)["losses"] for model in (plain, weighted)]
    assert torch.equal(*val)


def test_switches_reach_the_unet():
    model = tiny_ddpm(disable_residual=True, disable_time_emb=True)
    assert model.unet.time_mlp is None
    assert model.unet.down_blocks[0].res1.disable_residual


# ---- training ---------------------------------------------------------------------------------------


def test_a_short_training_run_lowers_the_loss():
    model = tiny_ddpm(learning_rate=3e-3, warmup_steps=0)
    x0 = squares(32)
    generator = torch.Generator().manual_seed(0)
    t, noise = torch.randint(0, 20, (32,), generator=generator), torch.randn(x0.shape, generator=generator)
    with torch.no_grad():
        before = model.loss(x0, t, noise).item()
    trainer = quiet_trainer(max_steps=30)
    trainer.fit(model, DataLoader(TensorDataset(x0), batch_size=16, shuffle=True))
    with torch.no_grad():
        after = model.loss(x0, t, noise).item()
    assert trainer.global_step == 30
    assert after < 0.5 * before


def test_validation_loss_scores_the_same_draws_every_time():
    model, batch = tiny_ddpm(), [squares(8)]
    logged = []
    model.log = lambda name, value, **kwargs: logged.append((name, value.item(), kwargs.get("sync_dist")))
    model.validation_step(batch, 0)
    torch.manual_seed(123)  # the global RNG must not matter
    model.validation_step(batch, 0)
    model.validation_step(batch, 1)
    assert logged[0] == logged[1] and logged[0][0] == "val_loss" and logged[0][2] is True
    assert logged[2][1] != logged[0][1]  # another batch index draws other timesteps and noise


def test_loss_stays_float32_under_bf16_autocast():
    model, x0 = tiny_ddpm(), squares(4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(x0, torch.tensor([0, 5, 10, 19]), torch.randn_like(x0))
        samples = model.sample(2, steps=3, seed=0)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert samples.dtype == torch.float32 and samples.min() >= 0 and samples.max() <= 1


# ---- sampling ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [None, 5])
def test_samples_are_images_in_zero_one_and_repeat_with_the_seed(steps):
    model = tiny_ddpm().train()
    first = model.sample(3, steps=steps, seed=7)
    assert first.shape == (3, 1, 28, 28) and first.dtype == torch.float32
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert not first.requires_grad
    assert model.training  # sampling switches to eval mode and back
    torch.testing.assert_close(model.sample(3, steps=steps, seed=7), first, rtol=0, atol=0)
    assert not torch.equal(model.sample(3, steps=steps, seed=8), first)


def test_ddim_with_eta_zero_depends_only_on_the_starting_noise():
    model = tiny_ddpm()
    x_T = torch.randn(2, 1, 28, 28)

    def run(eta: float, seed: int) -> torch.Tensor:
        return model.denoise(x_T, steps=5, eta=eta, generator=torch.Generator().manual_seed(seed))

    torch.testing.assert_close(run(0.0, 1), run(0.0, 2), rtol=0, atol=0)
    assert not torch.allclose(run(1.0, 1), run(1.0, 2))  # eta > 0 adds fresh noise at every step


class GaussianOracle(nn.Module):
    """The exact noise predictor for data whose pixels are independent N(0, std^2): E[eps | x_t] in closed form."""

    def __init__(self, alphas_cumprod: torch.Tensor, std: float) -> None:
        super().__init__()
        self.alphas_cumprod, self.std = alphas_cumprod, std

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, labels: None = None) -> torch.Tensor:
        ab = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        x0 = ab.sqrt() * self.std**2 * x_t / (ab * self.std**2 + 1 - ab)  # E[x0 | x_t]
        return (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()


@pytest.mark.parametrize("noise_schedule", ["linear", "cosine"])
@pytest.mark.parametrize("steps", [None, 1000])
def test_samplers_recover_the_data_distribution_given_a_perfect_network(noise_schedule, steps):
    model = DDPM(base_channels=8, timesteps=1000, noise_schedule=noise_schedule)
    model.unet = GaussianOracle(model.schedule.alphas_cumprod, std=0.25)
    pixels = model.sample(64, steps=steps, seed=0) * 2 - 1  # back to the model's [-1, 1]
    assert pixels.mean().item() == pytest.approx(0.0, abs=0.01)
    assert pixels.std().item() == pytest.approx(0.25, rel=0.03)

# ---- sample grids during training -------------------------------------------------------------------


class CountingSampler(pl.LightningModule):
    """Stands in for a model: records each sample() call and returns mid-grey images."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def sample(self, num_samples, steps=None, eta=0.0, seed=None, progress=False):
        self.calls.append((num_samples, steps, eta, seed))
        return torch.full((num_samples, 1, 28, 28), 0.5)


def fake_trainer(log_dir: Path, step: int, sanity_checking: bool = False) -> SimpleNamespace:
    return SimpleNamespace(
        is_global_zero=True, global_step=step, sanity_checking=sanity_checking,
        logger=None, log_dir=str(log_dir), default_root_dir=str(log_dir),
    )  # fmt: skip


def test_sample_grids_every_n_steps_from_a_fixed_seed_once_per_step(tmp_path):
    callback = ImageSampleCallback(num_samples=4, every_n_steps=2, sample_steps=7, eta=0.5, seed=3)
    model = CountingSampler()
    callback.on_validation_epoch_end(fake_trainer(tmp_path, 0, sanity_checking=True), model)
    for step in (1, 2):
        callback.on_train_batch_end(fake_trainer(tmp_path, step), model)
    callback.on_validation_epoch_end(fake_trainer(tmp_path, 2), model)  # a validation on a sampling step: no second grid
    callback.on_validation_epoch_end(fake_trainer(tmp_path, 3), model)
    assert model.calls == [(4, 7, 0.5, 3)] * 2
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step_000002.png", "step_000003.png"]
    assert Image.open(tmp_path / "samples" / "step_000002.png").size == (62, 62)  # a 2x2 grid


def test_sample_grids_need_a_model_that_samples_and_settings_it_can_follow(tmp_path):
    with pytest.raises(TypeError, match="needs a model with sample"):
        ImageSampleCallback(every_n_steps=1).setup(fake_trainer(tmp_path, 1), pl.LightningModule(), "fit")
    with pytest.raises(UserInputError, match=r"ImageSampleCallback: sample_steps must be between 1 and timesteps \(20\)"):
        ImageSampleCallback(sample_steps=50).setup(fake_trainer(tmp_path, 1), tiny_ddpm(), "fit")


def test_a_conditional_models_grid_is_whole_rows_of_its_digits(tmp_path):
    callback = ImageSampleCallback(num_samples=16, sample_steps=2)
    callback.on_validation_epoch_end(fake_trainer(tmp_path, 1), tiny_ddpm(num_classes=10))
    assert Image.open(tmp_path / "samples" / "step_000001.png").size == (2 + 10 * 30, 2 + 2 * 30)  # 20 digits

# ---- through train.py -------------------------------------------------------------------------------


def tiny_args(root: Path, data_dir: Path, *extra: str) -> list[str]:
    """Four steps, validated (and sampled) at steps 2 and 4."""
    return ddpm_args(
        root, data_dir, "--trainer.max_steps", "4", "--trainer.val_check_interval", "2",
        "--trainer.log_every_n_steps", "1", *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_mnist):
    """One 4-step run on the tiny MNIST, shared by the tests that need a checkpoint."""
    root = tmp_path_factory.mktemp("ddpm_run")
    cli = train.LabCLI(args=["fit", *tiny_args(root, tiny_mnist)])
    return cli, root, Path(cli.trainer.checkpoint_callbacks[-1].last_model_path)


@pytest.mark.slow
def test_run_logs_losses_and_sample_grids(trained):
    cli, root, ckpt = trained
    run_dir = Path(cli.trainer.log_dir)
    assert cli.trainer.global_step == 4 and run_dir.is_relative_to(root)
    assert ckpt.name == "last.ckpt" and ckpt.parent == run_dir / "checkpoints"
    log = RunLog(run_dir)
    grad_norms = {GRAD_NORM + part for part in ("total", "down_blocks.0", "time_mlp")}
    assert {"train_loss", "val_loss", "lr-Adam", *grad_norms} <= log.scalar_tags
    assert log.images(SAMPLES) == [2, 4]  # ImageSampleCallback, at each validation
    for step in (2, 4):  # 16 samples in a 4x4 grid of 28-pixel tiles with 2-pixel padding
        assert Image.open(run_dir / "samples" / f"step_{step:06d}.png").size == (122, 122)


@pytest.mark.slow
def test_checkpoint_holds_plain_data_and_samples_on_its_own(trained):
    cli, _, ckpt = trained
    raw = torch.load(ckpt, weights_only=True)
    assert raw["hyper_parameters"]["base_channels"] == 8
    model = DDPM.load_from_checkpoint(ckpt, map_location="cpu")
    assert model.state_dict().keys() == cli.model.state_dict().keys()
    for name, value in cli.model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], value.cpu(), rtol=0, atol=0)
    samples = model.sample(2, steps=3, seed=0)
    assert samples.shape == (2, 1, 28, 28) and 0 <= samples.min() <= samples.max() <= 1


@pytest.mark.slow
def test_resume_continues_step_optimizer_and_schedule(trained, tiny_mnist):
    _, root, ckpt = trained
    before = torch.load(ckpt, weights_only=True)
    cli = train.LabCLI(args=["fit", *tiny_args(root, tiny_mnist, "--trainer.max_steps", "6"), "--ckpt_path", str(ckpt)])
    assert cli.trainer.global_step == 6
    after = torch.load(cli.trainer.checkpoint_callbacks[-1].last_model_path, weights_only=True)
    assert before["optimizer_states"][0]["state"][0]["step"] == 4
    assert after["optimizer_states"][0]["state"][0]["step"] == 6  # Adam's moments carried on, not restarted
    assert after["lr_schedulers"][0]["last_epoch"] == 6


@pytest.mark.slow
def test_predict_writes_a_grid_and_a_tensor_from_the_checkpoint_alone(trained, tmp_path, capsys):
    _, _, ckpt = trained
    args = tiny_args(tmp_path, tmp_path / "no_mnist_here", "--model.sample_steps", "5", "--model.num_samples", "4")
    cli = train.LabCLI(args=["predict", *args, "--ckpt_path", str(ckpt)])
    run_dir = Path(cli.trainer.log_dir)
    samples = torch.load(run_dir / "samples.pt", weights_only=True)
    assert samples.shape == (4, 1, 28, 28) and samples.dtype == torch.float32
    assert 0 <= samples.min() <= samples.max() <= 1
    assert Image.open(run_dir / "samples.png").size == (62, 62)  # 2x2 grid
    assert str(run_dir / "samples.png") in capsys.readouterr().out
