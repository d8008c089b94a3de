"""Running one training through train.py's command line and reading back what it logged."""

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule, LightningModule

from experiments.run_log import RunLog
from train import LabCLI

REPO = Path(__file__).resolve().parents[1]
THROUGHPUT_WINDOW = 50  # steps that each reading of the training speed spans
# Each run's config files, in the order train.py reads them (a later one states only what differs).
CONFIGS = {
    "gpt2_mini": (REPO / "configs" / "gpt2_mini.yaml",),
    "gpt2_mini_shakespeare": (REPO / "configs" / "gpt2_mini.yaml", REPO / "configs" / "gpt2_mini_shakespeare.yaml"),
    "ddpm": (REPO / "configs" / "ddpm.yaml",),
    "ddpm_conditional": (REPO / "configs" / "ddpm.yaml", REPO / "configs" / "ddpm_conditional.yaml"),
}


def config_args(configs: tuple[Path, ...]) -> list[str]:
    """`--config FILE` for each of `configs`, in order."""
    return [arg for config in configs for arg in ("--config", str(config))]


@dataclass
class RunResult:
    train_loss: float
    val_loss: float
    log_dir: str
    model: LightningModule
    datamodule: LightningDataModule
    wall_time_s: float
    samples_per_s: float  # training examples (text windows, images) a second, validation left out
    items_per_s: float  # the same in tokens for text; equal to samples_per_s for images


def fit(configs: tuple[Path, ...], out: Path, name: str, steps: int, args: list[str]) -> RunResult:
    """Train `steps` steps with `configs` plus `args`, logging to TensorBoard under `out/name/version_N`.

    Validation runs once, at the end (unless `args` say otherwise); the training loss is logged every step
    so runs can be overlaid. The run's switches and its losses are in TensorBoard's HPARAMS tab (every fit's
    `HParamsTab`), where runs can be sorted by them. Lightning's `ThroughputMonitor` logs the training speed of each process
    (`train/device/samples_per_sec` and `.../items_per_sec`, each over the last `THROUGHPUT_WINDOW` steps,
    validation left out); the result holds their medians over the run, times the number of processes.
    """
    start = time.perf_counter()
    with warnings.catch_warnings():
        # sys.argv holds the experiment's own options; LightningCLI warns whenever both it and `args` are set.
        warnings.filterwarnings("ignore", "LightningCLI's args parameter is intended")
        warnings.filterwarnings("ignore", "When using the `ThroughputMonitor`, you need to define a `flops_per_batch`")
        cli = LabCLI(
            args=[
                "fit",
                *config_args(configs),
                "--trainer.max_steps", str(steps),
                "--trainer.max_time", "null",
                "--trainer.val_check_interval", str(steps),
                "--trainer.log_every_n_steps", "1",
                "--trainer.default_root_dir", str(out),
                "--trainer.logger", "lightning.pytorch.loggers.TensorBoardLogger",
                "--trainer.logger.save_dir", str(out),
                "--trainer.logger.name", name,
                "--trainer.logger.default_hp_metric", "false",  # HParamsTab registers the real metrics
                "--trainer.callbacks+=lightning.pytorch.callbacks.ThroughputMonitor",
                "--trainer.callbacks.batch_size_fn", "experiments.runs.batch_size",
                "--trainer.callbacks.length_fn", "experiments.runs.batch_items",
                "--trainer.callbacks.window_size", str(min(THROUGHPUT_WINDOW, max(steps, 2))),
                *args,
            ]
        )  # fmt: skip
    metrics = cli.trainer.callback_metrics
    log = RunLog(cli.trainer.log_dir)
    return RunResult(
        train_loss=float(metrics["train_loss"]),
        val_loss=float(metrics["val_loss"]),
        log_dir=cli.trainer.log_dir,
        model=cli.model,
        datamodule=cli.datamodule,
        wall_time_s=time.perf_counter() - start,
        samples_per_s=log.median("train/device/samples_per_sec") * cli.trainer.world_size,
        items_per_s=log.median("train/device/items_per_sec") * cli.trainer.world_size,
    )


def batch_size(batch: Any) -> int:
    """How many examples a batch holds: the first dimension of its inputs (text windows or images)."""
    return len(batch[0])


def batch_items(batch: Any) -> int:
    """How many items a batch holds: tokens for text (B, T), images for images (B, C, H, W)."""
    inputs = batch[0]
    return inputs.numel() if inputs.dim() == 2 else len(inputs)
