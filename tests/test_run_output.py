"""What a learner sees on the terminal: no warning they cannot act on, and where each run's outputs went."""

import re
import subprocess
import sys

import pytest

from subprocess_runs import run_train
from tiny import REPO, ddpm_args, gpt_args

pytestmark = pytest.mark.slow  # train.py in fresh processes, as a user runs it

# A Python warning as printed ("path/to/module.py:123: SomeWarning: ..."), or one of Lightning's tips.
NOISE = re.compile(r"\.py:\d+: |Warning|💡")


def _noise(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if NOISE.search(line)]


def test_fit_resume_and_predict_print_no_warnings_and_fit_says_where_its_outputs_are(tmp_path, short_text):
    shown = ["--trainer.enable_model_summary", "true"]  # the summary, as in a user's run
    fit = run_train("fit", *gpt_args(tmp_path, short_text, "--trainer.max_steps", "6", *shown))
    assert fit.returncode == 0, fit.stderr[-3000:]
    assert _noise(fit.stderr) == []
    run = tmp_path / "lightning_logs/version_0"
    last = run / "checkpoints/last.ckpt"
    assert f"Run folder: {run}" in fit.stdout
    assert f"Last checkpoint (resume with --ckpt_path): {last}" in fit.stdout
    assert re.search(rf"Best checkpoint \(val_loss \d\.\d{{4}}\): {run}/checkpoints/best-step=[56]-", fit.stdout)  # validated at 5 and 6
    assert f"Watch it: tensorboard --logdir {tmp_path}" in fit.stdout

    resumed = run_train("fit", *gpt_args(tmp_path, short_text, "--trainer.max_steps", "8", *shown), "--ckpt_path", str(last))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _noise(resumed.stderr) == []  # neither "not resumable" nor "The dirpath has changed"

    predicted = run_train("predict", *gpt_args(tmp_path, short_text), "--ckpt_path", str(last))
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert _noise(predicted.stderr) == []


def test_a_bf16_ddpm_run_prints_no_warnings(tmp_path, tiny_mnist):
    # log_every_n_steps 1: the tiny MNIST's 6 batches an epoch are fewer than the config's interval of 50,
    # which Lightning rightly warns about (a warning about the user's own settings).
    args = ddpm_args(tmp_path, tiny_mnist, "--trainer.max_steps", "2", "--trainer.log_every_n_steps", "1")
    fit = run_train("fit", *args, "--trainer.enable_model_summary", "true")
    assert fit.returncode == 0, fit.stderr[-3000:]
    assert _noise(fit.stderr) == []


IMPORT_CHECK = """
import logging, sys, warnings

repo = sys.argv[1]
calls = []  # (file, arguments) of every filter the lab's own code sets


def watched(set_filter):
    def record(*args, **kwargs):
        caller = sys._getframe(1).f_code.co_filename
        if caller.startswith(repo):
            calls.append((caller, args))
        return set_filter(*args, **kwargs)
    return record


warnings.filterwarnings, warnings.simplefilter = watched(warnings.filterwarnings), watched(warnings.simplefilter)
import train, generate, experiments.ablation, experiments.quality, experiments.scaling, benchmarks.run
logged = [f for f in logging.getLogger("lightning.pytorch.utilities.rank_zero").filters]
sys.exit(f"filters set at import: {calls} {logged}" if calls or logged else 0)
"""


def test_importing_the_lab_changes_no_warning_filter():
    # Only the lab's own calls count: the libraries set filters of their own when imported, which is theirs to do.
    result = subprocess.run([sys.executable, "-c", IMPORT_CHECK, str(REPO)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
