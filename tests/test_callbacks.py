"""The shared callbacks: gradient norms add up, text samples land in TensorBoard on schedule, the bar counts steps."""

import re
from datetime import timedelta
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch

import train
from callbacks import FinalValidation, GradNormLogger, LastCheckpoint, StepProgressBar, TextSampleCallback
from callbacks.tags import GRAD_NORM, SAMPLES
from datamodules import CharDataModule
from experiments.run_log import RunLog
from lightning_modules import GPT2Mini
from tiny import quiet_trainer, recording_trainer, tiny_gpt, tiny_gpt_with_gradients


def gpt_for(dm: CharDataModule) -> GPT2Mini:
    """A tiny model for the datamodule's text and windows."""
    return tiny_gpt(vocab_size=dm.vocab_size, chars=dm.chars, block_size=dm.block_size)


def test_grad_norms_per_block_and_total_match_the_gradients():
    model = tiny_gpt_with_gradients()
    trainer, logged = recording_trainer()
    GradNormLogger().on_before_optimizer_step(trainer, model, optimizer=None)

    grads = {name: p.grad for name, p in model.named_parameters()}
    block0 = torch.cat([g.flatten() for n, g in grads.items() if n.startswith("gpt.blocks.0.")]).norm()
    total = torch.cat([g.flatten() for g in grads.values()]).norm()
    assert logged[GRAD_NORM + "blocks.0"] == pytest.approx(block0.item(), rel=1e-5)
    assert logged[GRAD_NORM + "total"] == pytest.approx(total.item(), rel=1e-5)
    assert set(logged) == {GRAD_NORM + k for k in ("tok_emb", "pos_emb", "blocks.0", "blocks.1", "ln_f", "total")}


def test_grad_norms_are_skipped_between_logging_steps():
    model = tiny_gpt(vocab_size=10, block_size=8)
    model.loss(*(torch.zeros(1, 8, dtype=torch.long),) * 2).backward()
    logger = SimpleNamespace(log_metrics=lambda metrics, step: pytest.fail("logged between logging steps"))
    trainer = SimpleNamespace(global_step=3, log_every_n_steps=10, loggers=[logger])
    GradNormLogger().on_before_optimizer_step(trainer, model, None)


def test_text_samples_every_n_steps_reach_tensorboard(tmp_path, repetitive_text):
    dm = CharDataModule(data_path=str(repetitive_text), block_size=8, batch_size=4)
    trainer = quiet_trainer(
        max_steps=10, limit_val_batches=0, default_root_dir=tmp_path, logger=True,
        callbacks=[TextSampleCallback(prompt="hello", max_new_tokens=5, every_n_steps=5)],
    )  # fmt: skip
    trainer.fit(gpt_for(dm), dm)
    steps, texts = RunLog(trainer.log_dir).texts(SAMPLES)
    assert steps == [5, 10]
    assert texts[0].startswith("```\nhello") and len(texts[0]) == len("```\nhello\n```") + 5


def test_text_samples_need_a_text_generator():
    with pytest.raises(TypeError, match="generate_text"):
        TextSampleCallback().setup(SimpleNamespace(datamodule=None), torch.nn.Linear(1, 1), "fit")


def _fit_with_bar(tmp_path, text, ckpt_path=None, **trainer_args) -> tuple[pl.Trainer, StepProgressBar]:
    dm = CharDataModule(data_path=str(text), block_size=8, batch_size=16)
    bar = StepProgressBar()
    trainer = quiet_trainer(default_root_dir=tmp_path, callbacks=[bar], limit_val_batches=0, enable_progress_bar=True,
                            **trainer_args)  # fmt: skip
    trainer.fit(gpt_for(dm), dm, ckpt_path=ckpt_path)
    return trainer, bar


def test_the_progress_bar_counts_the_runs_steps_across_epochs_and_a_resume(tmp_path, short_text):
    # The short text is 17 batches an epoch: the 20 steps cross an epoch boundary without a restart of the count.
    trainer, bar = _fit_with_bar(tmp_path / "first", short_text, max_steps=20)
    assert (bar.train_progress_bar.desc, bar.train_progress_bar.n, bar.train_progress_bar.total) == ("Epoch 1: ", 20, 20)
    ckpt = tmp_path / "step20.ckpt"
    trainer.save_checkpoint(ckpt)
    _, bar = _fit_with_bar(tmp_path / "resumed", short_text, ckpt_path=ckpt, max_steps=25)
    assert (bar.train_progress_bar.initial, bar.train_progress_bar.n, bar.train_progress_bar.total) == (20, 25, 25)


def test_under_max_time_the_progress_bar_says_how_much_time_is_left(tmp_path, short_text):
    _, bar = _fit_with_bar(tmp_path, short_text, max_steps=-1, max_time={"hours": 1}, max_epochs=1)
    assert bar.train_progress_bar.total == 17  # one epoch: what Lightning estimates when an epoch count is the limit
    assert re.fullmatch(r"Epoch 0, \d+:\d\d of max_time left: ", bar.train_progress_bar.desc)


class ValidationSteps(pl.Callback):
    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.steps.append(trainer.global_step)


@pytest.mark.parametrize(("max_steps", "final", "validated_at"), [(5, True, [3, 5]), (5, False, [3]), (6, True, [3, 6])])
def test_a_run_that_stops_between_validations_ends_with_one(tmp_path, short_text, max_steps, final, validated_at):
    dm = CharDataModule(data_path=str(short_text), block_size=8, batch_size=4)
    seen = ValidationSteps()
    trainer = quiet_trainer(
        max_steps=max_steps, val_check_interval=3, limit_val_batches=1, default_root_dir=tmp_path,
        callbacks=[seen, *([FinalValidation()] if final else [])],
    )  # fmt: skip
    trainer.fit(gpt_for(dm), dm)
    assert seen.steps == validated_at


def test_last_ckpt_written_before_the_final_validation_is_rewritten_with_its_best_checkpoint(tmp_path, short_text):
    dm = CharDataModule(data_path=str(short_text), block_size=8, batch_size=4)
    best = pl.callbacks.ModelCheckpoint(monitor="val_loss")
    trainer = quiet_trainer(
        max_steps=6, val_check_interval=3, limit_val_batches=1, default_root_dir=tmp_path, enable_checkpointing=True,
        callbacks=[LastCheckpoint(every_n_train_steps=3), best],
    )  # fmt: skip
    trainer.fit(gpt_for(dm), dm)  # step 6 is saved, then validated
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"]
    states = [state for key, state in saved.items() if key.startswith("ModelCheckpoint{'monitor': 'val_loss'")]
    assert [state["best_model_path"] for state in states] == [best.best_model_path]
    assert best.best_model_path  # the test means something: a best checkpoint exists


def test_last_ckpt_is_saved_by_the_clock(tmp_path, short_text, monkeypatch):
    # A fake clock that each training step moves by 4 seconds: with every_n_seconds=10, the saves fall at the
    # third step after the previous one (12 s later), and once more at the end.
    import lightning.pytorch.callbacks.model_checkpoint as model_checkpoint

    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(model_checkpoint.time, "monotonic", lambda: clock.now)

    class Tick(pl.Callback):
        def on_train_batch_start(self, *args) -> None:
            clock.now += 4.0

    saved_at = []

    class Saves(pl.Callback):
        def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
            saved_at.append(trainer.global_step)

    dm = CharDataModule(data_path=str(short_text), block_size=8, batch_size=4)
    trainer = quiet_trainer(max_steps=8, default_root_dir=tmp_path, enable_checkpointing=True,
                            callbacks=[Tick(), Saves(), LastCheckpoint(every_n_seconds=10)])  # fmt: skip
    trainer.fit(gpt_for(dm), dm)
    assert saved_at == [3, 6, 8]
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 8


@pytest.mark.parametrize("config", ["configs/gpt2_mini.yaml", "configs/ddpm.yaml"])
def test_the_configs_save_last_ckpt_every_30_seconds_and_one_option_changes_that(tmp_path, short_text, config):
    data = ["--data.data_path", str(short_text)] if "gpt" in config else ["--data.data_dir", str(tmp_path)]
    args = ["--config", config, *data, "--trainer.default_root_dir", str(tmp_path)]
    by_steps = ["--trainer.callbacks.every_n_train_steps", "7"]
    for extra, interval, steps in (([], timedelta(seconds=30), 0), (by_steps, None, 7)):
        cli = train.LabCLI(args=[*args, *extra], run=False)
        last = cli.trainer.checkpoint_callbacks[-1]
        assert isinstance(last, LastCheckpoint)
        assert (last._train_time_interval, last._every_n_train_steps) == (interval, steps)
