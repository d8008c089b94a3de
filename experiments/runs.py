"""Running one training through train.py's command line and reading back what it logged."""

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from lightning.pytorch import LightningModule
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from train import LabCLI

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {"gpt2_mini": REPO / "configs" / "gpt2_mini.yaml", "ddpm": REPO / "configs" / "ddpm.yaml"}


@dataclass
class RunResult:
    train_loss: float
    val_loss: float
    log_dir: str
    model: LightningModule
    wall_time_s: float


def fit(config: Path, out: Path, name: str, steps: int, args: list[str]) -> RunResult:
    """Train `steps` steps with `config` plus `args`, logging to TensorBoard under `out/name/version_N`.

    Validation runs once, at the end; the training loss is logged every step so runs can be overlaid.
    The run's switches and final losses go to TensorBoard's HPARAMS tab, where runs can be sorted by them.
    """
    start = time.perf_counter()
    with warnings.catch_warnings():
        # sys.argv holds the experiment's own options; LightningCLI warns whenever both it and `args` are set.
        warnings.filterwarnings("ignore", "LightningCLI's args parameter is intended")
        cli = LabCLI(
            args=[
                "fit",
                "--config", str(config),
                "--trainer.max_steps", str(steps),
                "--trainer.max_time", "null",
                "--trainer.val_check_interval", str(steps),
                "--trainer.log_every_n_steps", "1",
                "--trainer.default_root_dir", str(out),
                "--trainer.logger", "lightning.pytorch.loggers.TensorBoardLogger",
                "--trainer.logger.save_dir", str(out),
                "--trainer.logger.name", name,
                "--trainer.logger.default_hp_metric", "false",  # the HPARAMS tab gets the real metrics below
                *args,
            ]
        )  # fmt: skip
    metrics = cli.trainer.callback_metrics
    switches = {k: v for k, v in cli.model.hparams.items() if isinstance(v, (bool, int, float, str))}
    final = {"final/train_loss": float(metrics["train_loss"]), "final/val_loss": float(metrics["val_loss"])}
    cli.trainer.logger.log_hyperparams({"variant": name, **switches}, final)  # TensorBoard's HPARAMS tab
    return RunResult(
        train_loss=float(metrics["train_loss"]),
        val_loss=float(metrics["val_loss"]),
        log_dir=cli.trainer.log_dir,
        model=cli.model,
        wall_time_s=time.perf_counter() - start,
    )


def read_scalars(log_dir: str, tag: str) -> tuple[list[int], list[float]]:
    """Steps and values of one scalar from a run's TensorBoard event files."""
    events = EventAccumulator(log_dir, size_guidance={"scalars": 0})
    events.Reload()
    scalars = events.Scalars(tag)
    return [s.step for s in scalars], [s.value for s in scalars]
