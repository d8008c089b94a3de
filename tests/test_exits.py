"""How runs end: one error line for a bad setting, no run folder without a checkpoint, a resume hint after
Ctrl-C or SIGTERM, and exit status 0 for every finished run."""

import shlex
import signal
from pathlib import Path

import pytest

import train
from subprocess_runs import run_train
from tiny import ddpm_args, gpt_args


def _fail(argv: list[str]) -> str:
    """train.py's main in-process: the message it exits with (sys.exit(str): one line, exit status 1)."""
    with pytest.raises(SystemExit) as exit_info:
        train.main(argv)
    assert isinstance(exit_info.value.code, str)
    return exit_info.value.code


def test_a_bad_max_time_is_one_error_line_and_creates_nothing(tmp_path, short_text):
    root = tmp_path / "runs"
    message = _fail(["fit", *gpt_args(root, short_text, "--trainer.max_time", "2m")])
    assert message == (
        "error: --trainer.max_time '2m' is not a duration: write days:hours:minutes:seconds, "
        "e.g. 00:00:02:00 for two minutes."
    )
    assert not root.exists()


def test_a_bad_callback_argument_is_one_error_line(tmp_path, short_text):
    args = gpt_args(tmp_path, short_text, "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
                    "--trainer.callbacks.every_n_train_steps=-3")  # fmt: skip
    assert _fail(["fit", *args]) == "error: Invalid value for every_n_train_steps=-3. Must be >= 0"


@pytest.mark.slow
@pytest.mark.parametrize("step", [3, 7])  # before and after the first checkpoint (the validation at step 5)
def test_a_failed_fit_keeps_its_run_folder_only_when_it_wrote_a_checkpoint(tmp_path, short_text, step):
    args = gpt_args(tmp_path, short_text, "--trainer.max_steps", "20",
                    "--trainer.callbacks+=helper_callbacks.FailAtStep", "--trainer.callbacks.step", str(step))  # fmt: skip
    with pytest.raises(RuntimeError, match=f"failing at step {step}"):
        train.main(["fit", *args])
    kept = list((tmp_path / "lightning_logs").glob("version_*/checkpoints/best-step=5-*.ckpt"))
    runs = list((tmp_path / "lightning_logs").glob("version_*"))
    assert (runs, kept) == ([], []) if step < 5 else (len(runs), len(kept)) == (1, 1)


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "status", "name"), [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_an_interrupted_fit_says_how_to_resume_and_exits_with_its_status(tmp_path, short_text, signum, status, name):
    args = gpt_args(tmp_path, short_text, "--trainer.max_steps", "100000")
    first = tmp_path / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    stopped = run_train("fit", *args, interrupt=(signum, first))
    assert stopped.returncode == status, stopped.stderr[-3000:]
    lines = stopped.stderr.strip().splitlines()
    resume = next(line for line in lines if line.startswith("Resume with: "))
    command = shlex.split(resume.removeprefix("Resume with: "))
    kept = Path(command[command.index("--ckpt_path") + 1])
    assert command[:3] == ["python", "train.py", "fit"] and kept == first and kept.is_file()
    assert command[3:-2] == args  # the run's own command, to the letter
    assert any(line.startswith(f"Stopped by {name} at step ") for line in lines)
    assert f"Checkpoint kept: {kept}" in stopped.stderr
    if signum == signal.SIGTERM:  # stopped between two steps: that step is the one kept
        stopped_at = int(next(line for line in lines if line.startswith("Stopped by")).split()[-1].rstrip("."))
        assert f"Checkpoint kept: {kept} (step {stopped_at})" in stopped.stderr


@pytest.mark.slow
def test_finished_runs_exit_with_status_zero_every_time(tmp_path, short_text, tiny_mnist):
    """Each tiny fit must exit 0, every time: one that finished its work and then died at interpreter exit
    (SIGABRT, "terminate called without an active exception") once made the suite flaky. Every other run in
    the suite is checked too (`run_train` fails a run that a signal ended), among them test_ddp.py's six
    two-process runs, so these few are enough here. (One at a time: two at once, each with its own threads
    on two cores, ran ten times slower.)"""
    two_processes = ["--trainer.devices", "2", "--trainer.strategy", "ddp"]
    runs = [gpt_args(tmp_path / "gpt", short_text, "--trainer.max_steps", "2"),
            ddpm_args(tmp_path / "ddpm", tiny_mnist, "--trainer.max_steps", "2"),
            gpt_args(tmp_path / "ddp", short_text, "--trainer.max_steps", "2", *two_processes)]  # fmt: skip
    for args in runs:
        result = run_train("fit", *args)
        assert result.returncode == 0 and "terminate called" not in result.stderr, result.stderr[-3000:]
