"""What a fit records for comparing runs: TensorBoard's HPARAMS tab with the real metrics, and one step number
for everything one validation logs."""

import time

import pytest
from lightning.pytorch.callbacks import Timer
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

import train
from callbacks import FinalValidation
from callbacks.tags import ATTENTION, ATTENTION_ENTROPY, RESIDUAL_RMS, SAMPLES
from experiments.run_log import RunLog
from lightning_modules import GPT2Mini
from tiny import gpt_args


def _hparams_tab(log_dir: str) -> tuple[dict, dict, set]:
    """The run's settings as the HPARAMS tab reads them, which of them are marked as switches, and its metrics."""
    events = EventAccumulator(log_dir)
    events.Reload()
    try:
        content = events.PluginTagToContent("hparams")
    except KeyError:  # no hparams data in the run at all
        return {}, {}, set()
    start = HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    experiment = HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    settings = {k: v.string_value or v.number_value for k, v in start.hparams.items()}
    return settings, {h.name: h.differs for h in experiment.hparam_infos}, {m.name.tag for m in experiment.metric_infos}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("records")
    text = root / "text.txt"
    text.write_text("the lab breaks models and watches what happens inside them. " * 20)
    args = gpt_args(root, text, "--trainer.max_steps", "4", "--trainer.val_check_interval", "2",
                    "--model.norm", "rmsnorm")
    return train.LabCLI(args=["fit", *args]), root, text


@pytest.mark.slow
def test_the_hparams_tab_lists_the_real_metrics_and_the_switches_first(fitted):
    cli, *_ = fitted
    settings, marked, metrics = _hparams_tab(cli.trainer.log_dir)
    assert metrics == {"val_loss", "train_loss"}  # the scalars the run logged, not Lightning's hp_metric = -1
    assert "hp_metric" not in RunLog(cli.trainer.log_dir).tags
    assert settings["norm"] == "rmsnorm" and settings["disable_attention"] == "false" and settings["n_layer"] == 1
    assert not {"_instantiator", "_class_path", "chars"} & set(settings)
    assert {name for name, first in marked.items() if first} == set(GPT2Mini.SWITCHES) & set(settings)


@pytest.mark.slow
def test_validate_and_predict_runs_are_not_trials(fitted):
    cli, root, text = fitted
    ckpt = cli.trainer.checkpoint_callbacks[-1].last_model_path
    for subcommand in ("validate", "predict"):
        run = train.LabCLI(args=[subcommand, *gpt_args(root, text), "--ckpt_path", ckpt])
        assert _hparams_tab(run.trainer.log_dir) == ({}, {}, set()), subcommand


@pytest.mark.slow
def test_everything_one_validation_logs_carries_one_step(fitted):
    cli, *_ = fitted
    log = RunLog(cli.trainer.log_dir)
    assert log.scalars("val_loss")[0] == [2, 4]  # the steps taken; Lightning alone would say 1 and 3
    assert log.images(ATTENTION + "0") == [2, 4]
    assert log.scalars(ATTENTION_ENTROPY + "0/head_0")[0] == [2, 4]
    assert log.scalars(RESIDUAL_RMS + "0")[0] == [2, 4]
    assert log.texts(SAMPLES)[0] == [2, 4]
    assert "best-step=4-" in cli.trainer.checkpoint_callbacks[0].best_model_path


class _Clock:
    """A Timer's view of time, set by the test."""

    def __init__(self, budget: float) -> None:
        self.elapsed, self.budget = 0.0, budget


def _budgeted(clock: _Clock, monkeypatch) -> tuple[FinalValidation, object]:
    timer = Timer(duration={"seconds": clock.budget})
    monkeypatch.setattr(timer, "time_elapsed", lambda *_: clock.elapsed)
    monkeypatch.setattr(timer, "time_remaining", lambda *_: clock.budget - clock.elapsed)
    strategy = type("Strategy", (), {"broadcast": staticmethod(lambda x: x)})()
    trainer = type("Trainer", (), {"max_steps": -1, "global_step": 0, "should_stop": False, "sanity_checking": False,
                                   "callbacks": [timer], "strategy": strategy})()  # fmt: skip
    callback = FinalValidation()
    callback.on_fit_start(trainer, None)
    callback.on_train_start(trainer, None)
    return callback, trainer


def test_a_time_budget_keeps_room_for_the_final_validation(monkeypatch):
    clock = _Clock(budget=100.0)
    callback, trainer = _budgeted(clock, monkeypatch)
    clock.elapsed = 79.0  # before any validation, a fifth of the budget is kept
    callback.on_train_batch_end(trainer, None)
    assert not trainer.should_stop
    clock.elapsed = 80.5
    callback.on_train_batch_end(trainer, None)
    assert trainer.should_stop


def test_once_a_validation_was_timed_its_length_is_kept(monkeypatch):
    clock = _Clock(budget=100.0)
    callback, trainer = _budgeted(clock, monkeypatch)
    start = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: start)
    callback.on_validation_start(trainer, None)
    monkeypatch.setattr(time, "monotonic", lambda: start + 5.0)  # a validation of 5 s
    callback.on_validation_end(trainer, None)
    clock.elapsed = 94.0
    callback.on_train_batch_end(trainer, None)
    assert not trainer.should_stop
    clock.elapsed = 95.5
    callback.on_train_batch_end(trainer, None)
    assert trainer.should_stop
