"""generate.py: one-shot and interactive generation from a checkpoint alone."""

import io

import pytest
import torch

import generate
from datamodules import CharDataModule
from lightning_modules import GPT2Mini
from tiny import quiet_trainer, tiny_gpt


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    text = root / "tiny.txt"
    text.write_text("abc abc abc\n" * 50)
    dm = CharDataModule(data_path=str(text), block_size=8, batch_size=4)
    model = tiny_gpt(vocab_size=dm.vocab_size, chars=dm.chars, n_layer=1, block_size=8)
    trainer = quiet_trainer(max_steps=1)
    trainer.fit(model, dm)
    path = root / "model.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_one_shot_generation_prints_prompt_and_continuation(ckpt, capsys):
    generate.main([str(ckpt), "--prompt", "ab", "--max_new_tokens", "6", "--seed", "0"])
    out = capsys.readouterr().out
    torch.manual_seed(0)
    assert out == generate.load_model(str(ckpt)).generate_text("ab", 6) + "\n"  # the same text as in one piece


def test_one_shot_prints_each_character_before_picking_the_next(ckpt, capsys, monkeypatch):
    printed: list[str] = []  # stdout, read each time a new token is about to be handed out
    generate_tokens = GPT2Mini.generate_tokens

    def watched(self, *args, **kwargs):
        for token in generate_tokens(self, *args, **kwargs):
            printed.append(capsys.readouterr().out)
            yield token

    monkeypatch.setattr(GPT2Mini, "generate_tokens", watched)
    generate.main([str(ckpt), "--prompt", "ab", "--max_new_tokens", "6", "--seed", "0"])
    out = "".join(printed) + capsys.readouterr().out
    so_far = ["".join(printed[: i + 1]) for i in range(len(printed))]
    assert so_far == [out[: 2 + i] for i in range(6)]  # the prompt, then one more character at each token
    assert len(out) == 2 + 6 + 1 and out.endswith("\n")


def test_interactive_loop_answers_each_line_reports_bad_ones_and_ends_on_eof(ckpt, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("ab\nxyz\n\nc\n"))
    generate.main([str(ckpt), "--interactive", "--max_new_tokens", "5"])
    captured = capsys.readouterr()
    answers = captured.out.split("> ")
    assert answers[1].startswith("ab") and len(answers[1].splitlines()[0]) >= 2
    assert "'x', 'y', 'z'" in captured.err  # the unknown characters are named, and the loop goes on
    assert answers[-2].startswith("c")


def test_interactive_ctrl_c_exits_cleanly(ckpt, monkeypatch):
    def interrupted(prompt=""):
        raise KeyboardInterrupt

    monkeypatch.setattr("builtins.input", interrupted)
    generate.main([str(ckpt), "--interactive"])  # returns instead of raising


@pytest.mark.parametrize("make_bad", [lambda tmp: tmp / "none.ckpt", lambda tmp: (tmp / "x.ckpt").write_text("no") and tmp / "x.ckpt"])
def test_bad_checkpoint_exits_with_a_message(tmp_path, make_bad):
    path = make_bad(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        generate.main([str(path)])
    assert str(path) in exit_info.value.code and exit_info.value.code.startswith("error: ")
