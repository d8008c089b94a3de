"""Exact resume: a run SIGKILLed mid-training and resumed from last.ckpt ends where an uninterrupted run ends."""

import signal
import warnings
from pathlib import Path

import pytest
import torch

import train
from datamodules.resumable import ResumableLoader, ResumableSampler
from experiments.run_log import RunLog
from subprocess_runs import run_train
from tiny import ddpm_args, gpt_args


def test_sampler_shuffles_by_seed_and_epoch_and_splits_ranks():
    data = range(10)
    first = list(ResumableSampler(data, seed=1))
    assert sorted(first) == list(range(10)) and first != list(range(10))
    assert list(ResumableSampler(data, seed=1)) == first
    next_epoch = ResumableSampler(data, seed=1)
    next_epoch.set_epoch(1)
    assert list(next_epoch) != first
    ranks = [list(ResumableSampler(data, num_replicas=2, rank=r, seed=1)) for r in (0, 1)]
    assert sorted(ranks[0] + ranks[1]) == list(range(10))  # each rank its own half


def test_loader_state_is_its_position_and_a_restored_loader_goes_on_from_there():
    data = torch.arange(14)  # 7 batches of 2 an epoch
    loader = ResumableLoader(data, batch_size=2, num_workers=0, trainer=None)
    loader.order.set_epoch(1)
    batches = iter(loader)
    seen = [next(batches) for _ in range(3)]
    assert loader.state_dict() == {"epoch": 1, "batches_done": 3}

    restored = ResumableLoader(data, batch_size=2, num_workers=0, trainer=None)
    restored.load_state_dict(loader.state_dict())
    rest = list(restored)
    assert restored.state_dict() == {"epoch": 1, "batches_done": 7}
    assert torch.equal(torch.cat(seen + rest), torch.cat(list(loader_for_epoch(data, 1))))
    restored.order.set_epoch(2)
    assert len(list(restored)) == 7  # later epochs are whole


def loader_for_epoch(data: torch.Tensor, epoch: int) -> ResumableLoader:
    loader = ResumableLoader(data, batch_size=2, num_workers=0, trainer=None)
    loader.order.set_epoch(epoch)
    return loader


def _train_losses(log_dir: Path) -> dict[int, float]:
    return dict(zip(*RunLog(log_dir).scalars("train_loss")))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["gpt2_mini", "gpt2_mini_muon", "ddpm"])
def test_a_killed_run_resumes_exactly(tmp_path, tiny_mnist, short_text, model):
    # The killed run is a process of its own; the uninterrupted and the resumed run happen in this one.
    # 25 steps; last.ckpt every 10 (the configs' logging interval); validation every 5. The data has
    # 16 (GPT) or 6 (DDPM) batches an epoch, so the resumed stretch crosses epoch boundaries.
    def args(root: Path, *extra: str) -> list[str]:
        make = ddpm_args if model == "ddpm" else gpt_args
        data = tiny_mnist if model == "ddpm" else short_text
        muon = ["--model.optimizer", "muon"] if model == "gpt2_mini_muon" else []
        return ["fit", *make(root, data, "--trainer.max_steps", "25", "--trainer.log_every_n_steps", "1", *muon, *extra)]

    train.LabCLI(args=args(tmp_path / "full"))
    kill = ["--trainer.callbacks+=helper_callbacks.KillAtStep", "--trainer.callbacks.step", "17"]
    killed = run_train(*args(tmp_path / "killed", *kill), killed=True)
    assert killed.returncode == -signal.SIGKILL
    first_run = tmp_path / "killed/lightning_logs/version_0"
    last = first_run / "checkpoints/last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 10  # steps 11-17 are lost

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train.LabCLI(args=args(tmp_path / "killed", "--ckpt_path", str(last)))
    assert not [w for w in caught if "not resumable" in str(w.message)]  # Lightning sees the loader's state

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
