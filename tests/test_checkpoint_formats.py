"""Checkpoints of every earlier format load, generate or sample, and resume.

tests/old_checkpoints/ holds small files that the lab's own train.py wrote at the time (see its README):
unstamped (before the lab stamped its files; GPT2Mini's weights on the system), format 1 (stamped; the same
layout), format 2 (GPT2Mini's weights under `gpt.`; a DDPM at a constant rate still had a LinearLR), each a
4-step run on tests/old_checkpoints/tiny.txt or the tests' tiny MNIST.
"""

from pathlib import Path

import pytest
import torch

import generate
import train
from checkpoints import FORMAT, read_checkpoint, upgrade
from lightning_modules import DDPM, GPT2Mini
from tiny import ddpm_args, gpt_args

OLD = Path(__file__).resolve().parent / "old_checkpoints"
GPT_FILES = ["gpt_unstamped", "gpt_format1", "gpt_format2"]
DDPM_FILES = ["ddpm_unstamped", "ddpm_format1", "ddpm_format2_constant", "ddpm_format2_cosine", "ddpm_conditional_format2"]


def raw(name: str) -> dict:
    return torch.load(OLD / f"{name}.ckpt", weights_only=True)


def test_the_files_are_what_their_names_say():
    formats = {name: raw(name).get("lab", {}).get("format") for name in GPT_FILES + DDPM_FILES}
    assert formats == {
        "gpt_unstamped": None, "gpt_format1": 1, "gpt_format2": 2, "ddpm_unstamped": None, "ddpm_format1": 1,
        "ddpm_format2_constant": 2, "ddpm_format2_cosine": 2, "ddpm_conditional_format2": 2,
    }  # fmt: skip
    assert "tok_emb.weight" in raw("gpt_format1")["state_dict"] and "gpt.tok_emb.weight" in raw("gpt_format2")["state_dict"]
    assert "start_factor" in raw("ddpm_format2_constant")["lr_schedulers"][0]  # LinearLR's state


@pytest.mark.parametrize("name", GPT_FILES + DDPM_FILES)
def test_every_file_loads_with_each_weight_where_the_network_now_keeps_it(name):
    model_class = GPT2Mini if name.startswith("gpt") else DDPM
    loaded = model_class.load_from_checkpoint(OLD / f"{name}.ckpt", map_location="cpu").state_dict()
    saved = raw(name)["state_dict"]
    prefix = "gpt." if model_class is GPT2Mini else ""
    expected = {(k if k.startswith(prefix) else prefix + k): v for k, v in saved.items()}
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[k], v) for k, v in expected.items())
    assert read_checkpoint(OLD / f"{name}.ckpt", model=model_class.__name__)["state_dict"].keys() == expected.keys()


def test_the_upgrade_gives_a_constant_rate_ddpm_the_shared_schedule_and_keeps_its_rate():
    checkpoint = upgrade(raw("ddpm_format2_constant"), "DDPM")
    (scheduler,) = checkpoint["lr_schedulers"]
    assert scheduler["lr_lambdas"] == [None] and "start_factor" not in scheduler
    assert checkpoint["hyper_parameters"]["min_lr"] == checkpoint["hyper_parameters"]["learning_rate"] == 5e-4
    cosine = raw("ddpm_format2_cosine")
    assert upgrade(raw("ddpm_format2_cosine"), "DDPM")["lr_schedulers"] == cosine["lr_schedulers"]  # already shared
    assert upgrade(raw("ddpm_format2_cosine"), "DDPM")["hyper_parameters"]["min_lr"] == 0.0


def test_the_pre_split_files_generate_what_the_format_2_file_of_the_same_run_generates(capsys):
    texts = {}
    for name in GPT_FILES:
        generate.main([str(OLD / f"{name}.ckpt"), "--prompt", "hello", "--max_new_tokens", "20", "--seed", "0"])
        texts[name] = capsys.readouterr().out
        assert texts[name].startswith("hello") and len(texts[name]) == len("hello") + 20 + 1
    assert texts["gpt_format1"] == texts["gpt_format2"]  # the same run, written before and after the split


@pytest.mark.parametrize("name", DDPM_FILES)
def test_every_ddpm_file_samples(name):
    model = DDPM.load_from_checkpoint(OLD / f"{name}.ckpt", map_location="cpu")
    images = model.sample(2, steps=3, seed=0)
    assert images.shape == (2, 1, 28, 28) and 0 <= images.min() <= images.max() <= 1
    assert model.conditional == (name == "ddpm_conditional_format2")


@pytest.mark.slow
@pytest.mark.parametrize("name", GPT_FILES + DDPM_FILES)
def test_every_file_resumes_and_is_written_back_in_the_current_format(tmp_path, tiny_mnist, name):
    ckpt = OLD / f"{name}.ckpt"
    before = raw(name)
    if name.startswith("gpt"):
        args = gpt_args(tmp_path, OLD / "tiny.txt", "--data.block_size", "8", "--data.batch_size", "4")
    else:
        args = ddpm_args(tmp_path, tiny_mnist, "--trainer.precision", "32")
    cli = train.LabCLI(args=["fit", *args, "--trainer.max_steps", "6", "--ckpt_path", str(ckpt)])
    after = torch.load(cli.trainer.checkpoint_callbacks[-1].last_model_path, weights_only=True)
    assert before["global_step"] == 4 and after["global_step"] == 6
    assert after["lab"]["format"] == FORMAT
    first = next(iter(after["optimizer_states"][0]["state"].values()))
    assert first["step"] == 6  # the optimizer's moments carried on from step 4
    (scheduler,) = after["lr_schedulers"]
    assert scheduler["last_epoch"] == 6 and "lr_lambdas" in scheduler
    peak = before["hyper_parameters"]["learning_rate"]
    assert scheduler["_last_lr"] == pytest.approx([peak * 7 / 101] * len(scheduler["base_lrs"]))  # the 100-step warm-up
    if name in ("ddpm_unstamped", "ddpm_format1", "ddpm_format2_constant"):  # trained at a constant rate: kept
        assert after["hyper_parameters"]["min_lr"] == peak
