"""Running train.py in a fresh process, as a user would: what the kill, resume and DDP tests need."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def run_train(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    """`python train.py ARGS` from the repository root, with tests/ importable for the helper callbacks."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "train.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def _run_args(config: str, root: Path) -> list[str]:
    """What every tiny run shares: the config, the CPU, an output folder, quiet output, validation every 5 steps."""
    return [
        "--config", config,
        "--trainer.accelerator", "cpu",
        "--trainer.default_root_dir", str(root),
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--trainer.val_check_interval", "5",
    ]  # fmt: skip


def gpt_args(root: Path, text: Path, *extra: str) -> list[str]:
    """A tiny GPT2Mini run on `text` with dropout on, so that resuming must restore the random generators."""
    return [
        *_run_args("configs/gpt2_mini.yaml", root),
        "--model.n_layer", "1", "--model.n_head", "2", "--model.n_embd", "32", "--model.dropout", "0.1",
        "--model.max_new_tokens", "8",
        "--data.data_path", str(text), "--data.block_size", "16", "--data.batch_size", "16",
        *extra,
    ]  # fmt: skip


def ddpm_args(root: Path, data_dir: Path, *extra: str) -> list[str]:
    """A tiny DDPM run on the tiny MNIST, in the config's bf16-mixed precision, with dropout on."""
    return [
        *_run_args("configs/ddpm.yaml", root),
        "--trainer.limit_val_batches", "1",
        "--model.base_channels", "8", "--model.channel_mults", "[1, 2]", "--model.timesteps", "50",
        "--model.dropout", "0.1", "--model.num_samples", "4", "--model.sample_steps", "5",
        "--data.data_dir", str(data_dir), "--data.download", "false", "--data.batch_size", "8",
        *extra,
    ]  # fmt: skip
