"""The one learning-rate schedule: its shape, one meaning of its settings for every model, and time-budgeted runs."""

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import train
from errors import UserInputError
from lightning_modules.lr_schedule import LRSchedule, warmup_cosine
from tiny import ddpm_args, gpt_args, tiny_ddpm, tiny_gpt


@pytest.fixture
def said(caplog, monkeypatch):
    """What Lightning's info lines said (its logger does not pass them on to pytest's by itself)."""
    monkeypatch.setattr(logging.getLogger("lightning.pytorch"), "propagate", True)
    caplog.set_level(logging.INFO, logger="lightning.pytorch")
    return caplog


def test_warmup_then_a_half_cosine_then_flat():
    lr = [warmup_cosine(s, warmup_steps=10, decay_steps=110, min_lr_ratio=0.1) for s in range(200)]
    assert lr[0] < lr[5] < lr[9] < 1.0
    assert lr[10] == pytest.approx(1.0)
    assert lr[60] == pytest.approx(0.55)
    assert all(a >= b for a, b in zip(lr[10:110], lr[11:111]))
    assert lr[110:] == [0.1] * 90
    assert [warmup_cosine(s, 10, None, 0.1) for s in range(10, 50)] == [1.0] * 40  # no length: the peak stays


def rates(model, run_steps: float, steps: int) -> list[float]:
    """The learning rates `model` trains with over `steps` optimizer steps of a run `run_steps` long."""
    model.trainer = SimpleNamespace(estimated_stepping_batches=run_steps)
    optimization = model.configure_optimizers()
    optimizer, scheduler = optimization["optimizer"], optimization["lr_scheduler"]["scheduler"]
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


@pytest.mark.parametrize("make", [tiny_gpt, tiny_ddpm], ids=["GPT2Mini", "DDPM"])
def test_every_model_reads_the_settings_the_same_way(make):
    settings = {"learning_rate": 1e-3, "warmup_steps": 4}
    over_the_run = rates(make(**settings), run_steps=24, steps=30)
    assert over_the_run[:5] == pytest.approx([1e-3 * (i + 1) / 5 for i in range(5)])
    assert over_the_run[14] == pytest.approx((1e-3 + 1e-4) / 2)  # halfway through the decay: lr_decay_steps null
    assert over_the_run[24:] == pytest.approx([1e-4] * 6)  # min_lr null: a tenth of the peak
    assert rates(make(**settings, lr_decay_steps=14), run_steps=24, steps=30)[14:] == pytest.approx([1e-4] * 16)
    assert rates(make(**settings, min_lr=0.0), run_steps=24, steps=30)[-1] == 0.0
    assert rates(make(**settings, min_lr=1e-3), run_steps=24, steps=30)[4:] == pytest.approx([1e-3] * 26)


@pytest.mark.parametrize("make", [tiny_gpt, tiny_ddpm], ids=["GPT2Mini", "DDPM"])
def test_a_run_without_a_step_limit_keeps_the_peak_after_the_warm_up_unless_told_the_decays_length(make, said):
    assert rates(make(learning_rate=1e-3, warmup_steps=4), run_steps=float("inf"), steps=30)[4:] == [1e-3] * 26
    assert "no step limit (max_steps -1), so the learning rate stays at 0.001 after its warm-up" in said.text
    decayed = rates(make(learning_rate=1e-3, warmup_steps=4, lr_decay_steps=14), run_steps=float("inf"), steps=30)
    assert decayed[14:] == pytest.approx([1e-4] * 16)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"learning_rate": 0.0}, "learning_rate must be positive, got 0.0"),
        ({"learning_rate": 1e-3, "warmup_steps": -1}, "warmup_steps must be 0 or more"),
        ({"learning_rate": 1e-3, "warmup_steps": 10, "lr_decay_steps": 10}, r"larger than warmup_steps \(10\)"),
        ({"learning_rate": 1e-3, "min_lr": 2e-3}, r"min_lr must be between 0 and learning_rate \(0.001\)"),
    ],
)
def test_bad_settings_are_refused_where_they_are_defined(settings, message):
    with pytest.raises(UserInputError, match=message):
        LRSchedule(**settings)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["gpt2_mini", "ddpm"])
def test_a_time_budgeted_run_trains_until_max_time_and_ends_with_last_ckpt(tmp_path, short_text, tiny_mnist, model, said):
    make, data = (gpt_args, short_text) if model == "gpt2_mini" else (ddpm_args, tiny_mnist)
    args = make(tmp_path, data, "--trainer.max_steps", "-1", "--trainer.max_time", "00:00:00:03",
                "--trainer.val_check_interval", "1000", "--model.warmup_steps", "2")  # fmt: skip
    if model == "ddpm":
        args += ["--model.lr_decay_steps", "null", "--model.min_lr", "null"]  # as the GPT config: no decay length
    train.main(["fit", *args])  # returns: no error, no traceback
    last = torch.load(Path(tmp_path, "lightning_logs/version_0/checkpoints/last.ckpt"), weights_only=True)
    assert last["global_step"] >= 1
    scheduler = last["lr_schedulers"][0]
    if last["global_step"] > 2:
        assert scheduler["_last_lr"] == pytest.approx(scheduler["base_lrs"])  # after the warm-up, the peak
    assert "the learning rate stays at" in said.text
