"""Checkpoint files: a save killed at any moment leaves a whole file; a wrong file gets a clear error and stays as it was."""

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

import train
from callbacks import LastCheckpoint
from checkpoints import FORMAT, AtomicCheckpointIO, files, read_checkpoint
from datamodules import CharDataModule
from tiny import CORPUS_LINE, REPO, ddpm_args, gpt_args, quiet_trainer, tiny_gpt, write_corpus

SAVER = """
import sys, torch
from checkpoints import AtomicCheckpointIO
io, path, n = AtomicCheckpointIO(background=sys.argv[2] == "background"), sys.argv[1], 0
while True:  # ~24 MB a save, each tagged with its number, until killed
    n += 1
    io.save_checkpoint({"state_dict": {"w": torch.full((6_000_000,), float(n))}, "n": n}, path)
    if n == 1:
        io.wait()
        print("saved", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["in the foreground", "background"])
def test_killing_a_process_while_it_saves_never_leaves_a_broken_file(tmp_path, mode):
    # Three savers side by side (they start slowly and save quickly); each is killed at its own moment.
    delays = (0.05, 0.17, 0.29)
    paths = [tmp_path / f"saver{i}" / "last.ckpt" for i in range(len(delays))]
    savers = [
        subprocess.Popen([sys.executable, "-c", SAVER, str(path), mode], cwd=REPO, stdout=subprocess.PIPE, text=True)
        for path in paths
    ]
    for saver, delay in zip(savers, delays):
        assert saver.stdout.readline() == "saved\n"
        time.sleep(delay)  # somewhere inside a later save (each takes ~50 ms here)
        saver.kill()
        saver.wait()
    seen = []
    for path in paths:
        checkpoint = read_checkpoint(path)
        w = checkpoint["state_dict"]["w"]
        assert w.numel() == 6_000_000 and torch.all(w == checkpoint["n"])  # one whole save, not a mix
        seen.append(checkpoint["n"])
    assert max(seen) > 1  # the kills did land after at least one overwrite


@pytest.fixture
def slow_writes(monkeypatch):
    """Makes every checkpoint write take 0.5 s longer, and records when each one is on disk."""
    done, write = [], files._write_atomically

    def slow_write(checkpoint, path):
        time.sleep(0.5)
        write(checkpoint, path)
        done.append(f"wrote {path.name}")

    monkeypatch.setattr(files, "_write_atomically", slow_write)
    return done


def test_a_background_save_writes_the_state_at_the_moment_it_was_called(tmp_path, slow_writes):
    writer, w = AtomicCheckpointIO(background=True), torch.zeros(1000)
    writer.save_checkpoint({"state_dict": {"tok_emb.weight": w, "lm_head.weight": w}}, tmp_path / "last.ckpt")
    w.add_(1.0)  # training goes on while the file is written
    assert slow_writes == []
    writer.wait()
    assert slow_writes == ["wrote last.ckpt"]
    state = torch.load(tmp_path / "last.ckpt", weights_only=True)["state_dict"]
    assert torch.equal(state["tok_emb.weight"], torch.zeros(1000))
    assert state["tok_emb.weight"].untyped_storage().data_ptr() == state["lm_head.weight"].untyped_storage().data_ptr()


def test_an_old_checkpoint_is_removed_only_once_its_replacement_is_on_disk(tmp_path, slow_writes):
    writer = AtomicCheckpointIO(background=True)
    (tmp_path / "best-old.ckpt").write_bytes(b"an older best checkpoint")
    writer.save_checkpoint({"n": torch.tensor(2)}, tmp_path / "best-new.ckpt")
    writer.remove_checkpoint(tmp_path / "best-old.ckpt")
    slow_writes.append("removed best-old.ckpt")
    assert slow_writes == ["wrote best-new.ckpt", "removed best-old.ckpt"]
    assert [path.name for path in tmp_path.iterdir()] == ["best-new.ckpt"]


def test_after_the_run_a_save_is_on_disk_when_it_returns(tmp_path, slow_writes):
    writer = AtomicCheckpointIO(background=True)
    writer.teardown()  # what Lightning calls when fit ends, before on_fit_end or the user's own saves
    writer.save_checkpoint({"n": torch.tensor(3)}, tmp_path / "after.ckpt")
    assert slow_writes == ["wrote after.ckpt"]


def test_a_failed_background_write_raises_in_the_training_process(tmp_path):
    writer = AtomicCheckpointIO(background=True)
    (tmp_path / "last.ckpt").mkdir()  # a folder where the file should go: the final rename fails
    writer.save_checkpoint({"n": torch.tensor(1)}, tmp_path / "last.ckpt")
    with pytest.raises(OSError):
        writer.teardown()
    assert list(tmp_path.iterdir()) == [tmp_path / "last.ckpt"]  # no temporary file left behind


def test_a_failed_write_does_not_hide_the_error_that_ended_the_run(tmp_path):
    writer = AtomicCheckpointIO(background=True)
    (tmp_path / "last.ckpt").mkdir()
    writer.save_checkpoint({"n": torch.tensor(1)}, tmp_path / "last.ckpt")
    with pytest.raises(RuntimeError, match="diverged"), pytest.warns(UserWarning, match="write failed as well"):
        try:
            raise RuntimeError("diverged")
        except RuntimeError:
            writer.teardown()  # as Lightning does while it handles the run's error
            raise


def test_last_checkpoint_is_on_disk_before_the_next_step_changes_the_weights(tmp_path, repetitive_text, slow_writes):
    # With every write 0.5 s late, only LastCheckpoint's wait puts step 2's file on disk by the end of step 3.
    on_disk = {}

    class LookAfterEachStep(pl.Callback):  # runs before LastCheckpoint's own hook (Lightning puts those last)
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            path = tmp_path / "last.ckpt"
            on_disk[trainer.global_step] = torch.load(path)["global_step"] if path.exists() else None

    dm = CharDataModule(data_path=repetitive_text, block_size=8, batch_size=4)
    model = tiny_gpt(vocab_size=dm.vocab_size, chars=dm.chars, n_layer=1, block_size=8)
    trainer = quiet_trainer(
        max_steps=5, limit_val_batches=0, enable_checkpointing=True, plugins=[AtomicCheckpointIO(background=True)],
        callbacks=[LookAfterEachStep(), LastCheckpoint(dirpath=tmp_path, every_n_train_steps=2)],
    )  # fmt: skip
    trainer.fit(model, dm)
    assert on_disk == {1: None, 2: None, 3: 2, 4: 2, 5: 4}
    assert torch.load(tmp_path / "last.ckpt")["global_step"] == 5  # the final save, on disk when fit returns


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, tiny_mnist):
    """A two-step GPT2Mini checkpoint and a two-step DDPM checkpoint, made through train.py."""
    root = tmp_path_factory.mktemp("ckpts")
    text = write_corpus(root / "tiny.txt", 10)
    gpt = train.LabCLI(args=["fit", *gpt_args(root / "gpt", text, "--trainer.max_steps", "2")])
    ddpm = train.LabCLI(args=["fit", *ddpm_args(root / "ddpm", tiny_mnist, "--trainer.max_steps", "2")])
    return {
        "root": root,
        "text": text,
        "data_dir": tiny_mnist,
        "gpt": Path(gpt.trainer.checkpoint_callbacks[-1].last_model_path),
        "ddpm": Path(ddpm.trainer.checkpoint_callbacks[-1].last_model_path),
    }


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _bad_checkpoint(tmp_path: Path, checkpoints: dict, case: str) -> tuple[Path, str]:
    good = checkpoints["gpt"]
    path = tmp_path / f"{case.replace(' ', '_')}.ckpt"
    if case == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path, "is truncated"
    if case == "not a checkpoint":
        path.write_text("these are my notes, not weights\n")
        return path, "is not a checkpoint file"
    if case == "no state_dict":
        torch.save({"weights": torch.zeros(3)}, path)
        return path, "not a Lightning checkpoint"
    if case == "newer format":
        checkpoint = torch.load(good, weights_only=True)
        checkpoint["lab"]["format"] = FORMAT + 1
        torch.save(checkpoint, path)
        return path, f"incompatible version of the lab \\(checkpoint format {FORMAT + 1}"
    if case == "a directory":
        path.mkdir()
        return path, "is a directory"
    raise AssertionError(case)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["truncated", "not a checkpoint", "no state_dict", "newer format", "a directory"])
def test_a_bad_checkpoint_gets_one_clear_error_and_is_left_alone(tmp_path, checkpoints, case):
    path, message = _bad_checkpoint(tmp_path, checkpoints, case)
    before = _digest(path) if path.is_file() else None
    with pytest.raises(SystemExit) as exit_info:
        train.main(["fit", *gpt_args(tmp_path, checkpoints["text"]), "--ckpt_path", str(path)])
    assert exit_info.value.code.startswith(f"error: Checkpoint {path}") or exit_info.value.code.startswith(f"error: {path}")
    assert pytest.importorskip("re").search(message, exit_info.value.code)
    if before is not None:
        assert _digest(path) == before
    assert not (tmp_path / "lightning_logs").exists()  # nothing was started


@pytest.mark.slow
@pytest.mark.parametrize(("ckpt", "config", "message"), [
    ("gpt", "ddpm", "is a GPT2Mini checkpoint, but this run's model is DDPM"),
    ("ddpm", "gpt", "is a DDPM checkpoint, but this run's model is GPT2Mini"),
])  # fmt: skip
def test_a_checkpoint_of_the_other_model_is_refused_by_name(tmp_path, checkpoints, ckpt, config, message):
    path = checkpoints[ckpt]
    before = _digest(path)
    args = gpt_args(tmp_path, checkpoints["text"]) if config == "gpt" else ddpm_args(tmp_path, checkpoints["data_dir"])
    for subcommand in ("fit", "predict"):
        with pytest.raises(SystemExit) as exit_info:
            train.main([subcommand, *args, "--ckpt_path", str(path)])
        assert exit_info.value.code == f"error: {path} {message}. Use the config the checkpoint was trained with, or a {message.split()[-1]} checkpoint."
    assert _digest(path) == before


@pytest.mark.slow
def test_generate_refuses_a_diffusion_checkpoint(checkpoints):
    import generate

    with pytest.raises(SystemExit, match="is a DDPM checkpoint, but this run's model is GPT2Mini"):
        generate.main([str(checkpoints["ddpm"])])


@pytest.mark.slow
def test_a_text_too_short_for_the_checkpoints_context_is_an_error(tmp_path, checkpoints):
    short = tmp_path / "short.txt"
    short.write_text(CORPUS_LINE)  # a 16-character window needs more than this split has
    with pytest.raises(SystemExit) as exit_info:
        train.main(["validate", *gpt_args(tmp_path, short), "--ckpt_path", str(checkpoints["gpt"])])
    assert "too short for this checkpoint" in exit_info.value.code
