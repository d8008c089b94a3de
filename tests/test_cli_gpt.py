"""GPT2Mini through train.py: learning, checkpoints, resume, predict, and errors on the command line."""

import math
import re
from pathlib import Path

import pytest
import lightning.pytorch as pl
import torch

import generate
import train
from callbacks import StepProgressBar
from callbacks.tags import GRAD_NORM, SAMPLES, UPDATE_RATIO
from errors import UserInputError
from experiments.run_log import RunLog
from lightning_modules import GPT2Mini
from subprocess_runs import run_train
from tiny import gpt_args, write_corpus

pytestmark = pytest.mark.slow  # every test goes through train.py's command line


def tiny_args(root: Path, text: Path, *extra: str) -> list[str]:
    """A tiny run that learns the corpus in 60 steps: no dropout, a high learning rate, a short warm-up."""
    return gpt_args(
        root, text, "--trainer.max_steps", "60", "--trainer.val_check_interval", "30", "--model.dropout", "0.0",
        "--model.learning_rate", "1e-2", "--model.warmup_steps", "5", *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One 60-step run on a repetitive text, shared by the tests that need a trained checkpoint."""
    root = tmp_path_factory.mktemp("run")
    text = write_corpus(root / "tiny.txt", 120)
    cli = train.LabCLI(args=["fit", *tiny_args(root, text)])
    ckpt = Path(cli.trainer.checkpoint_callbacks[-1].last_model_path)
    return cli, root, text, ckpt


def test_a_few_dozen_steps_drive_the_loss_well_below_a_uniform_guess(trained):
    cli, *_ = trained
    uniform = math.log(cli.datamodule.vocab_size)
    assert cli.trainer.global_step == 60
    assert cli.trainer.callback_metrics["val_loss"] < 0.3 * uniform
    assert cli.trainer.callback_metrics["train_loss"] < 0.3 * uniform


def test_run_writes_tensorboard_logs_and_checkpoints(trained):
    cli, root, _, ckpt = trained
    run_dir = Path(cli.trainer.log_dir)
    assert run_dir.is_relative_to(root)
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert ckpt.name == "last.ckpt" and ckpt.parent == run_dir / "checkpoints"
    assert Path(cli.trainer.checkpoint_callbacks[0].best_model_path).exists()
    log = RunLog(run_dir)
    grad_norms = {GRAD_NORM + part for part in ("total", "blocks.0", "tok_emb")}
    assert {"train_loss", "val_loss", "lr-AdamW/decay", *grad_norms} <= log.scalar_tags
    assert log.scalars("train_loss")[0] == [9, 19, 29, 39, 49, 59]  # every log_every_n_steps
    assert log.scalars("val_loss")[0] == [30, 60]  # the steps taken, as the pictures and checkpoints say
    assert log.texts(SAMPLES)[0] == [30, 60]  # TextSampleCallback, at each validation


def test_checkpoint_holds_plain_data_and_generates_on_its_own(trained):
    cli, _, _, ckpt = trained
    raw = torch.load(ckpt, weights_only=True)
    assert raw["hyper_parameters"]["chars"] == cli.datamodule.chars
    model = GPT2Mini.load_from_checkpoint(ckpt, map_location="cpu")
    for name, value in cli.model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], value.cpu())
    assert model.tokenizer.vocab_size == cli.datamodule.vocab_size
    assert model.tokenizer.decode(model.tokenizer.encode("hello")) == "hello"
    text = model.generate_text("hello", max_new_tokens=25, temperature=0)
    assert text.startswith("hello") and "the lab says" in text  # it learned the repeated line


def test_resume_continues_step_optimizer_and_schedule(trained):
    _, root, text, ckpt = trained
    before = torch.load(ckpt, weights_only=True)
    cli = train.LabCLI(args=["fit", *tiny_args(root, text, "--trainer.max_steps", "80"), "--ckpt_path", str(ckpt)])
    assert cli.trainer.global_step == 80
    after = torch.load(cli.trainer.checkpoint_callbacks[-1].last_model_path, weights_only=True)
    assert before["optimizer_states"][0]["state"][0]["step"] == 60
    assert after["optimizer_states"][0]["state"][0]["step"] == 80
    assert after["lr_schedulers"][0]["last_epoch"] == 80
    assert before["lr_schedulers"][0]["last_epoch"] == 60


def test_muon_trains_checkpoints_and_resumes_and_a_switch_of_optimizer_at_resume_is_refused(trained, capsys):
    _, root, text, adamw_ckpt = trained
    muon_root = root / "muon"
    cli = train.LabCLI(args=["fit", *tiny_args(muon_root, text, "--model.optimizer", "muon")])
    uniform = math.log(cli.datamodule.vocab_size)
    assert cli.trainer.callback_metrics["val_loss"] < 0.3 * uniform
    ckpt = Path(cli.trainer.checkpoint_callbacks[-1].last_model_path)
    saved = torch.load(ckpt, weights_only=True)
    assert set(saved["optimizer_states"][0]) == {"muon", "adamw"}
    assert {UPDATE_RATIO + "blocks.0", "lr-MuonWithAdamW/muon"} <= RunLog(cli.trainer.log_dir).scalar_tags
    resumed = train.LabCLI(args=["fit", *tiny_args(muon_root, text, "--model.optimizer", "muon",
                                                   "--trainer.max_steps", "70"), "--ckpt_path", str(ckpt)])  # fmt: skip
    assert resumed.trainer.global_step == 70
    after = torch.load(resumed.trainer.checkpoint_callbacks[-1].last_model_path, weights_only=True)
    assert after["optimizer_states"][0]["adamw"]["state"][0]["step"] == 70
    assert after["lr_schedulers"][0]["last_epoch"] == 70

    # train.py resumes with the checkpoint's own settings, optimizer included; a model built by hand with the
    # other optimizer is refused before its optimizer state is read.
    for checkpoint, asked, trained_with in ((adamw_ckpt, "muon", "adamw"), (ckpt, "adamw", "muon")):
        settings = torch.load(checkpoint, weights_only=True)["hyper_parameters"]
        model = GPT2Mini(**{k: v for k, v in settings.items() if not k.startswith("_")} | {"optimizer": asked})
        trainer = pl.Trainer(max_steps=80, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             default_root_dir=root / f"switch_{asked}")  # fmt: skip
        with pytest.raises(UserInputError, match=f"trained with --model.optimizer {trained_with}, and this run asks"):
            trainer.fit(model, datamodule=cli.datamodule, ckpt_path=checkpoint)


def test_validate_from_a_checkpoint_scores_it_and_draws_a_sample(trained):
    _, root, text, ckpt = trained
    cli = train.LabCLI(args=["validate", *tiny_args(root, text), "--ckpt_path", str(ckpt)])
    assert cli.trainer.callback_metrics["val_loss"] < 1.0
    assert len(RunLog(cli.trainer.log_dir).texts(SAMPLES)[1]) == 1


def test_the_progress_bar_counts_the_runs_steps(tmp_path, repetitive_text, capsys):
    args = tiny_args(tmp_path, repetitive_text, "--trainer.max_steps", "3", "--trainer.enable_progress_bar", "true")
    cli = train.LabCLI(args=["fit", *args])
    assert isinstance(cli.trainer.progress_bar_callback, StepProgressBar)
    assert "3/3 [" in capsys.readouterr().out  # the run's steps, not one epoch's batches (about 200)


def test_fast_dev_run_writes_no_checkpoint(tmp_path, repetitive_text):
    train.LabCLI(args=["fit", *tiny_args(tmp_path, repetitive_text, "--trainer.fast_dev_run", "true")])
    assert not list(tmp_path.rglob("*.ckpt"))


def test_predict_prints_and_writes_generated_text(trained, capsys):
    _, root, text, ckpt = trained
    args = tiny_args(root, text, "--model.max_new_tokens", "12", "--model.temperature", "0")
    cli = train.LabCLI(args=["predict", *args, "--data.prompts", '["hello", "the lab"]', "--ckpt_path", str(ckpt)])
    written = (Path(cli.trainer.log_dir) / "predictions.txt").read_text()
    assert written.startswith("hello") and "the lab says" in written
    out = capsys.readouterr().out
    assert all(out.count(text) == 1 for text in written.rstrip("\n").split("\n" + "-" * 40 + "\n"))  # printed once
    assert "the lab says" in out


def test_short_text_builds_the_model_with_the_reduced_block_size(tmp_path):
    text = tmp_path / "short.txt"
    text.write_text("abcdefghij" * 6)
    args = tiny_args(tmp_path, text, "--data.block_size", "256", "--trainer.max_steps", "2")
    with pytest.warns(UserWarning, match="too short"):
        cli = train.LabCLI(args=["fit", *args])
    assert cli.model.hparams.block_size == cli.datamodule.block_size < 256


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model.n_head", "3"], r"n_embd \(32\) must be divisible by n_head \(3\)"),
        (["--data.data_path", "missing.txt"], "Data file not found: missing.txt"),
        (["--ckpt_path", "nowhere.ckpt"], "Checkpoint nowhere.ckpt does not exist"),
    ],
)
def test_user_mistakes_exit_with_one_clear_message(tmp_path, repetitive_text, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["fit", *tiny_args(tmp_path, repetitive_text), *extra])
    assert exit_info.value.code.startswith("error: ")
    assert re.search(message, exit_info.value.code)
    assert not list(tmp_path.rglob("*.ckpt"))


def test_unknown_switch_value_is_a_usage_error(tmp_path, repetitive_text, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["fit", *tiny_args(tmp_path, repetitive_text), "--model.ln_style", "middle"])
    assert exit_info.value.code == 2
    assert "ln_style" in capsys.readouterr().err


def test_command_line_error_has_no_traceback(tmp_path):
    result = run_train("fit", "--config", "configs/gpt2_mini.yaml", "--data.data_path", str(tmp_path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"error: {tmp_path} is a directory; --data.data_path must name a UTF-8 text file."


def test_the_modern_switches_learn_resume_predict_and_generate(tmp_path, repetitive_text, capsys):
    switches = tmp_path / "llama.yaml"  # half of them in a YAML file, half on the command line
    switches.write_text("model:\n  init_args:\n    norm: rmsnorm\n    pos_emb: rope\n    mlp: swiglu\n")
    llama_switches = ["--config", str(switches), "--model.n_head", "4", "--model.n_kv_head", "1",
                      "--model.tie_weights", "false"]  # fmt: skip
    cli = train.LabCLI(args=["fit", *tiny_args(tmp_path, repetitive_text, *llama_switches)])
    assert cli.trainer.callback_metrics["val_loss"] < 0.3 * math.log(cli.datamodule.vocab_size)
    ckpt = Path(cli.trainer.checkpoint_callbacks[-1].last_model_path)
    saved = torch.load(ckpt, weights_only=True)
    assert {k: saved["hyper_parameters"][k] for k in ("norm", "pos_emb", "mlp", "n_kv_head", "tie_weights")} == {
        "norm": "rmsnorm", "pos_emb": "rope", "mlp": "swiglu", "n_kv_head": 1, "tie_weights": False}  # fmt: skip
    assert "gpt.pos_emb.weight" not in saved["state_dict"]
    assert not torch.equal(saved["state_dict"]["gpt.lm_head.weight"], saved["state_dict"]["gpt.tok_emb.weight"])

    resumed = train.LabCLI(args=["fit", *tiny_args(tmp_path, repetitive_text, *llama_switches,
                                                   "--trainer.max_steps", "70"), "--ckpt_path", str(ckpt)])  # fmt: skip
    assert resumed.trainer.global_step == 70 and resumed.model.hparams.n_kv_head == 1

    args = tiny_args(tmp_path, repetitive_text, "--model.max_new_tokens", "25", "--model.temperature", "0")
    predicted = train.LabCLI(args=["predict", *args, "--data.prompts", '["hello"]', "--ckpt_path", str(ckpt)])
    assert predicted.model.hparams.pos_emb == "rope"  # the checkpoint's switches, not the config's defaults
    assert "the lab says" in (Path(predicted.trainer.log_dir) / "predictions.txt").read_text()

    capsys.readouterr()
    generate.main([str(ckpt), "--prompt", "hello", "--max_new_tokens", "20", "--temperature", "0"])
    assert "the lab says" in capsys.readouterr().out
