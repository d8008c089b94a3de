"""Tiny runs for the tests: the corpus they learn, and the train.py arguments that make a run small and quick.

The one place that says what a tiny run is; tests add or override options (the last value of an option wins).
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS_LINE = "hello world, the lab says hi.\n"


def write_corpus(path: Path, repeats: int) -> Path:
    """`CORPUS_LINE` repeated: a text so regular that a small model learns it in a few dozen steps."""
    path.write_text(CORPUS_LINE * repeats, encoding="utf-8")
    return path


def run_args(config: str, root: Path) -> list[str]:
    """What every tiny run shares: the config, the CPU, an output folder, quiet output, validation every 5 steps.

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
