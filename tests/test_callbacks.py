"""The shared callbacks: gradient norms add up, text samples land in TensorBoard on schedule, the bar counts steps."""

import re
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from callbacks import FinalValidation, GradNormLogger, LastCheckpoint, StepProgressBar, TextSampleCallback
from datamodules import CharDataModule
from lightning_modules import GPT2Mini


def tiny_gpt(vocab_size: int, chars: list[str] | None = None) -> GPT2Mini:
    torch.manual_seed(0)
    return GPT2Mini(vocab_size, n_layer=2, n_head=2, n_embd=16, block_size=8, chars=chars)


def test_grad_norms_per_block_and_total_match_the_gradients():
    model = tiny_gpt(10)
    x = torch.randint(0, 10, (4, 8))
    model.loss(x, x).backward()
    logged = {}
    logger = SimpleNamespace(log_metrics=lambda metrics, step: logged.update(metrics))
    trainer = SimpleNamespace(global_step=0, log_every_n_steps=1, loggers=[logger])
    GradNormLogger().on_before_optimizer_step(trainer, model, optimizer=None)

    grads = {name: p.grad for name, p in model.named_parameters()}
    block0 = torch.cat([g.flatten() for n, g in grads.items() if n.startswith("gpt.blocks.0.")]).norm()
    total = torch.cat([g.flatten() for g in grads.values()]).norm()
    assert logged["grad_norm/blocks.0"] == pytest.approx(block0.item(), rel=1e-5)
    assert logged["grad_norm/total"] == pytest.approx(total.item(), rel=1e-5)
    assert set(logged) == {"grad_norm/" + k for k in ("tok_emb", "pos_emb", "blocks.0", "blocks.1", "ln_f", "total")}


def test_grad_norms_are_skipped_between_logging_steps():
    model = tiny_gpt(10)
    model.loss(*(torch.zeros(1, 8, dtype=torch.long),) * 2).backward()
    logger = SimpleNamespace(log_metrics=lambda metrics, step: pytest.fail("logged between logging steps"))
    trainer = SimpleNamespace(global_step=3, log_every_n_steps=10, loggers=[logger])
    GradNormLogger().on_before_optimizer_step(trainer, model, None)


def test_text_samples_every_n_steps_reach_tensorboard(tmp_path, repetitive_text):
    dm = CharDataModule(data_path=str(repetitive_text), block_size=8, batch_size=4)
    model = tiny_gpt(dm.vocab_size, dm.chars)
    trainer = pl.Trainer(
        max_steps=10,
        limit_val_batches=0,
        default_root_dir=tmp_path,
        callbacks=[TextSampleCallback(prompt="hello", max_new_tokens=5, every_n_steps=5)],
        enable_progress_bar=False,
        enable_checkpointing=False,
    )
    trainer.fit(model, dm)
    events = EventAccumulator(trainer.log_dir)
    events.Reload()
    samples = events.Tensors("samples/text_summary")
    assert [s.step for s in samples] == [5, 10]
    assert b"hello" in samples[0].tensor_proto.string_val[0]


def test_text_samples_need_a_text_generator():
    with pytest.raises(TypeError, match="generate_text"):
        TextSampleCallback().setup(SimpleNamespace(datamodule=None), torch.nn.Linear(1, 1), "fit")


def _fit_with_bar(tmp_path, text, ckpt_path=None, **trainer_args) -> tuple[pl.Trainer, StepProgressBar]:
    dm = CharDataModule(data_path=str(text), block_size=8, batch_size=16)
    bar = StepProgressBar()
    trainer = pl.Trainer(
        default_root_dir=tmp_path, callbacks=[bar], limit_val_batches=0, logger=False, enable_model_summary=False,
        **trainer_args,
    )  # fmt: skip
    trainer.fit(tiny_gpt(dm.vocab_size, dm.chars), dm, ckpt_path=ckpt_path)
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
    trainer = pl.Trainer(
        max_steps=max_steps, val_check_interval=3, limit_val_batches=1, default_root_dir=tmp_path, logger=False,
        callbacks=[seen, *([FinalValidation()] if final else [])], enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False,
    )  # fmt: skip
    trainer.fit(tiny_gpt(dm.vocab_size, dm.chars), dm)
    assert seen.steps == validated_at


def test_last_ckpt_written_before_the_final_validation_is_rewritten_with_its_best_checkpoint(tmp_path, short_text):
    dm = CharDataModule(data_path=str(short_text), block_size=8, batch_size=4)
    best = pl.callbacks.ModelCheckpoint(monitor="val_loss")
    trainer = pl.Trainer(
        max_steps=6, val_check_interval=3, limit_val_batches=1, default_root_dir=tmp_path, logger=False,
        callbacks=[LastCheckpoint(every_n_train_steps=3), best], enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(tiny_gpt(dm.vocab_size, dm.chars), dm)  # step 6 is saved, then validated
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"]
    states = [state for key, state in saved.items() if key.startswith("ModelCheckpoint{'monitor': 'val_loss'")]
    assert [state["best_model_path"] for state in states] == [best.best_model_path]
    assert best.best_model_path  # the test means something: a best checkpoint exists
