"""Tiny models, tiny data and tiny runs: the one place the suite says what they are.

Models small enough to learn something in a few dozen steps (`tiny_gpt`, `tiny_network`, `tiny_ddpm`,
`tiny_unet`, each seeded, so two calls build the same weights), the data they learn (`write_corpus`,
`digit_squares`), a Trainer that writes nothing (`quiet_trainer`), and the train.py arguments of a small, quick
run (`gpt_args`, `ddpm_args`). Tests override what they need: keyword arguments, or options after these ones
(the last value of an option wins).
"""

from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as pl
import torch

from lightning_modules import DDPM, GPT2Mini
from lightning_modules.transformer import GPT, GPTConfig
from lightning_modules.unet import UNet

REPO = Path(__file__).resolve().parents[1]
CORPUS_LINE = "hello world, the lab says hi.\n"
CHARS = list("\n abcdefgh")  # the tiny models' vocabulary


TINY_GPT = {"n_layer": 2, "n_head": 2, "n_embd": 16, "block_size": 16, "dropout": 0.0}


def tiny_config(**settings) -> GPTConfig:
    """Two blocks of two heads, 16 wide, a context of 16, no dropout, over `CHARS`."""
    return GPTConfig(**{"vocab_size": len(CHARS), **TINY_GPT, **settings})


def tiny_network(**settings) -> GPT:
    torch.manual_seed(0)
    return GPT(tiny_config(**settings)).eval()


def tiny_gpt(**settings) -> GPT2Mini:
    """`tiny_config`'s network in a GPT2Mini, with `CHARS` as its vocabulary unless `vocab_size` is given."""
    torch.manual_seed(0)
    vocabulary = {} if "vocab_size" in settings else {"vocab_size": len(CHARS), "chars": CHARS}
    return GPT2Mini(**{**vocabulary, **TINY_GPT, **settings}).eval()


def tiny_ddpm(**settings) -> DDPM:
    """An 8-channel U-Net of two levels and 20 timesteps."""
    torch.manual_seed(0)
    return DDPM(**{"base_channels": 8, "channel_mults": (1, 2), "timesteps": 20, **settings})


def tiny_unet(**settings) -> UNet:
    torch.manual_seed(0)
    return UNet(**{"base_channels": 8, "channel_mults": (1, 2, 2), **settings}).eval()


def digit_squares(n: int, noise: float = 0.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Digit-like images (n, 1, 28, 28) in [0, 1], and labels i % 10: a bright 8x8 square whose place depends on
    the label, as in the tests' tiny MNIST, with uniform noise of amplitude `noise` added."""
    labels = torch.arange(n) % 10
    images = torch.zeros(n, 1, 28, 28)
    for i, label in enumerate(labels.tolist()):
        row, col = 2 + 10 * (label // 5), 2 + 4 * (label % 5)
        images[i, :, row : row + 8, col : col + 8] = 1.0
    if noise:
        images = (images + noise * torch.rand(images.shape, generator=torch.Generator().manual_seed(seed))).clamp(0, 1)
    return images, labels


def tiny_gpt_with_gradients() -> GPT2Mini:
    """`tiny_gpt` over 10 tokens (context 8) after one backward pass, for callbacks that read gradients."""
    model = tiny_gpt(vocab_size=10, block_size=8)
    x = torch.randint(0, 10, (4, 8), generator=torch.Generator().manual_seed(0))
    model.loss(x, x).backward()
    return model


def recording_trainer(global_step: int = 0, log_every_n_steps: int = 1) -> tuple[SimpleNamespace, dict]:
    """A stand-in trainer for callbacks that log straight to the loggers, and the dict its logger fills."""
    logged: dict[str, float] = {}
    logger = SimpleNamespace(log_metrics=lambda metrics, step: logged.update(metrics))
    return SimpleNamespace(global_step=global_step, log_every_n_steps=log_every_n_steps, loggers=[logger]), logged


def quiet_trainer(**settings) -> pl.Trainer:
    """A CPU Trainer that writes no logs or checkpoints and prints no bar or summary, unless told to."""
    quiet = {"accelerator": "cpu", "logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
             "enable_model_summary": False}  # fmt: skip
    return pl.Trainer(**{**quiet, **settings})


def write_corpus(path: Path, repeats: int) -> Path:
    """`CORPUS_LINE` repeated: a text so regular that a small model learns it in a few dozen steps."""
    path.write_text(CORPUS_LINE * repeats, encoding="utf-8")
    return path


def run_args(config: str, root: Path) -> list[str]:
    """What every tiny run shares: the config, the CPU, an output folder, quiet output, validation every 5 steps,
    and last.ckpt every 10 steps (the configs save it by the clock, which no test can predict).

    No `max_time` (configs/ddpm.yaml has 20 minutes): a test run ends at its `max_steps` however slow the
    machine, never at a wall-clock limit.
    """
    return [
        "--config", str(REPO / config),
        "--trainer.accelerator", "cpu",
        "--trainer.max_time", "null",
        "--trainer.default_root_dir", str(root),
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--trainer.val_check_interval", "5",
        "--trainer.callbacks.every_n_train_steps", "10",  # the configs' last callback is LastCheckpoint
    ]  # fmt: skip


def gpt_args(root: Path, text: Path, *extra: str) -> list[str]:
    """A tiny GPT2Mini run on `text` with dropout on, so that resuming must restore the random generators."""
    return [
        *run_args("configs/gpt2_mini.yaml", root),
        "--model.n_layer", "1", "--model.n_head", "2", "--model.n_embd", "32", "--model.dropout", "0.1",
        "--model.max_new_tokens", "8",
        "--data.data_path", str(text), "--data.block_size", "16", "--data.batch_size", "16",
        *extra,
    ]  # fmt: skip


def ddpm_args(root: Path, data_dir: Path, *extra: str) -> list[str]:
    """A tiny DDPM run on the tiny MNIST, in the config's bf16-mixed precision, with dropout on."""
    return [
        *run_args("configs/ddpm.yaml", root),
        "--trainer.limit_val_batches", "1",
        "--model.base_channels", "8", "--model.channel_mults", "[1, 2]", "--model.timesteps", "50",
        "--model.dropout", "0.1", "--model.num_samples", "4", "--model.sample_steps", "5",
        "--data.data_dir", str(data_dir), "--data.download", "false", "--data.batch_size", "8",
        *extra,
    ]  # fmt: skip
