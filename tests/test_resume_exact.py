"""Exact resume: a run SIGKILLed mid-training and resumed from last.ckpt ends where an uninterrupted run ends."""

import signal
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import train
from datamodules.resumable_sampler import ResumableSampler
from subprocess_runs import ddpm_args, gpt_args, run_train


def test_sampler_shuffles_by_seed_and_epoch_and_splits_ranks():
    data = range(10)
    first = list(ResumableSampler(data, seed=1))
    assert sorted(first) == list(range(10)) and first != list(range(10))
    assert list(ResumableSampler(data, seed=1)) == first
    assert list(ResumableSampler(data, seed=1, start_epoch=1)) != first
    ranks = [list(ResumableSampler(data, num_replicas=2, rank=r, seed=1)) for r in (0, 1)]
    assert sorted(ranks[0] + ranks[1]) == list(range(10))  # each rank its own half


def test_sampler_skips_what_a_resumed_epoch_already_trained_on():
    sampler = ResumableSampler(range(10), seed=1, start_epoch=2, skip=4)
    sampler.set_epoch(2)
    epoch2 = list(ResumableSampler(range(10), seed=1, start_epoch=2))
    assert list(sampler) == epoch2[4:]
    sampler.set_epoch(3)
    assert len(list(sampler)) == 10  # later epochs are whole


@pytest.mark.parametrize(("limit", "global_step", "epoch", "skip"), [
    (1.0, 0, 0, 0), (1.0, 3, 0, 6), (1.0, 5, 1, 2), (1.0, 8, 2, 0),  # 7 samples, batches of 2: 4 steps an epoch
    (3, 4, 1, 2), (0.5, 5, 2, 2),  # limit_train_batches cuts epochs to 3 and to 2 batches
])  # fmt: skip
def test_sampler_position_follows_the_restored_step(limit, global_step, epoch, skip):
    trainer = SimpleNamespace(
        world_size=1, global_rank=0, accumulate_grad_batches=1, limit_train_batches=limit,
        current_epoch=epoch, global_step=global_step,
    )  # fmt: skip
    sampler = ResumableSampler.for_trainer(range(7), batch_size=2, trainer=trainer)
    assert (sampler.epoch, sampler.start_epoch, sampler.skip) == (epoch, epoch, skip)


def _train_losses(log_dir: Path) -> dict[int, float]:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {e.step: e.value for e in events.Scalars("train_loss")}


@pytest.mark.parametrize("model", ["gpt2_mini", "ddpm"])
def test_a_killed_run_resumes_exactly(tmp_path, tiny_mnist, model):
    # The killed run is a process of its own; the uninterrupted and the resumed run happen in this one.
    # 25 steps; last.ckpt every 10 (the configs' logging interval); validation every 5. The data has
    # 16 (GPT) or 6 (DDPM) batches an epoch, so the resumed stretch crosses epoch boundaries.
    text = tmp_path / "tiny.txt"
    text.write_text("hello world, the lab says hi.\n" * 10, encoding="utf-8")

    def args(root: Path, *extra: str) -> list[str]:
        make = gpt_args if model == "gpt2_mini" else ddpm_args
        data = text if model == "gpt2_mini" else tiny_mnist
        return ["fit", *make(root, data, "--trainer.max_steps", "25", "--trainer.log_every_n_steps", "1", *extra)]

    train.LabCLI(args=args(tmp_path / "full"))
    killed = run_train(*args(tmp_path / "killed", "--trainer.callbacks+=helper_callbacks.KillAtStep", "--trainer.callbacks.step", "17"))
    assert killed.returncode == -signal.SIGKILL
    first_run = tmp_path / "killed/lightning_logs/version_0"
    last = first_run / "checkpoints/last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 10  # steps 11-17 are lost

    train.LabCLI(args=args(tmp_path / "killed", "--ckpt_path", str(last)))

    expected = torch.load(tmp_path / "full/lightning_logs/version_0/checkpoints/last.ckpt", weights_only=True)
    got = torch.load(tmp_path / "killed/lightning_logs/version_1/checkpoints/last.ckpt", weights_only=True)
    assert got["global_step"] == expected["global_step"] == 25
    assert expected["state_dict"].keys() == got["state_dict"].keys()
    for name, value in expected["state_dict"].items():
        assert torch.equal(got["state_dict"][name], value), name  # bitwise, not approximately

    full_losses = _train_losses(tmp_path / "full/lightning_logs/version_0")
    resumed_losses = _train_losses(tmp_path / "killed/lightning_logs/version_1")
    after = {step: loss for step, loss in full_losses.items() if step >= 10}
    assert len(after) == 15
    assert resumed_losses == after
