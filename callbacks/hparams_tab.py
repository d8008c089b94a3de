"""HParamsTab: TensorBoard's HPARAMS tab as a table of fits that sorts by what they scored."""

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
from torch.utils.tensorboard.summary import hparams

from callbacks.sample_quality import SampleQualityCallback
from callbacks.tags import QUALITY

LEFT_OUT = {"chars"}  # data, not settings: the vocabulary's 65 characters would be one unreadable column


class HParamsTab(pl.Callback):
    """Registers a fit with TensorBoard's HPARAMS tab: its settings, and the metrics to compare runs by.

    Lightning's own registration (`hp_metric`) records a placeholder of -1 for every run and lists the settings
    alphabetically, so the tab shows `_instantiator` and `betas` while the switches that made runs differ are
    unticked. Here the metrics are the ones the run logs anyway (`val_loss` and `train_loss`, and the
    `quality/` scores when `SampleQualityCallback` runs), so the tab shows each run's last value of them, and
    the model's `SWITCHES` (its experiment flags) come first. Only `fit` registers: `validate`, `test` and
    `predict` runs are not trials. train.py turns Lightning's placeholder off
    (`TensorBoardLogger(default_hp_metric=False)`).
    """

    def __init__(self, metrics: tuple[str, ...] = ("val_loss", "train_loss")) -> None:
        self.metrics = metrics

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logger = trainer.logger
        if not trainer.is_global_zero or not isinstance(logger, TensorBoardLogger):
            return
        settings = dict(pl_module.hparams)
        switches = getattr(pl_module, "SWITCHES", ())
        metrics = list(self.metrics)
        if any(isinstance(c, SampleQualityCallback) for c in trainer.callbacks):
            metrics += [QUALITY + name for name in ("fid", "confidence", "class_balance")]
        experiment, session_start, session_end = hparams(shown(settings), dict.fromkeys(metrics, 0.0))
        first_switches(experiment, switches)
        writer = logger.experiment.file_writer
        for summary in (experiment, session_start, session_end):
            writer.add_summary(summary)


def shown(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as the tab shows them: numbers and text; yes/no as text (torch would turn them into 1.0 and 0.0),
    tuples and lists written out, and neither None nor Lightning's bookkeeping (`_instantiator`)."""
    table = {}
    for name, value in settings.items():
        if name.startswith("_") or name in LEFT_OUT or value is None:
            continue
        if isinstance(value, bool):
            table[name] = str(value).lower()
        else:
            table[name] = value if isinstance(value, (int, float, str)) else str(value)
    return table


def first_switches(experiment: Any, switches: tuple[str, ...]) -> None:
    """TensorBoard lists the settings marked as differing between runs first, and alphabetically after that:
    mark the switches."""
    content = experiment.value[0].metadata.plugin_data
    data = HParamsPluginData.FromString(content.content)
    for info in data.experiment.hparam_infos:
        info.differs = info.name in switches
    content.content = data.SerializeToString()
