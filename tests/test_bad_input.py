"""Every mistake a user can type gets one clear line, a non-zero exit, and nothing written or overwritten."""

import re
import shutil
from pathlib import Path

import pytest

import train
from errors import UserInputError
from tiny import ddpm_args, gpt_args

pytestmark = pytest.mark.slow  # every test goes through train.py's command line


def _fail(argv: list[str], capsys) -> tuple[int, str]:
    """Run train.py's main in-process; return its exit code and the one message it printed."""
    with pytest.raises(SystemExit) as exit_info:
        train.main(argv)
    code = exit_info.value.code
    if isinstance(code, str):  # a UserInputError: sys.exit("error: ...") prints it and exits 1
        return 1, code
    return code, capsys.readouterr().err.strip()


def _assert_nothing_started(root: Path) -> None:
    assert not (root / "lightning_logs").exists()
    assert not list(root.rglob("*.ckpt"))


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty; give a text file to train on"),
    (bytes(range(256)), "is not UTF-8 text"),
    (b"\x00\x01\x02 looks like text otherwise", "looks like a binary file"),
    (b"a", "uses a single character"),
    (b"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "uses a single character"),
    (b"ab", "too short to train on"),
])  # fmt: skip
def test_bad_data_files(tmp_path, capsys, content, message):
    data = tmp_path / "data.txt"
    data.write_bytes(content)
    code, err = _fail(["fit", *gpt_args(tmp_path, data)], capsys)
    assert code == 1 and err.startswith(f"error: {data}") and message in err
    _assert_nothing_started(tmp_path)


@pytest.mark.parametrize(("extra", "message"), [
    (["--model.n_layer", "0"], "n_layer must be a positive integer, got 0."),
    (["--model.n_embd=-8"], "n_embd must be a positive integer, got -8."),
    (["--data.batch_size", "0"], "batch_size and block_size must be positive, got 0 and 16."),
    (["--data.block_size=-1"], "batch_size and block_size must be positive, got 16 and -1."),
    (["--model.learning_rate", "0"], "learning_rate must be positive, got 0.0."),
    (["--model.optimizer", "muon", "--model.muon_lr", "0"], "muon_lr must be positive, got 0.0."),
    (["--model.muon_momentum", "1.5"], "muon_momentum must be in [0, 1), got 1.5."),
    (["--model.n_head", "3"], "n_embd (32) must be divisible by n_head (3)"),
    (["--model.n_kv_head", "3"], "n_head (2) must be divisible by n_kv_head (3)"),
    (["--model.n_head", "32", "--model.pos_emb", "rope"], "the head size n_embd / n_head must be even, got 1."),
    (["--trainer.max_steps", "0"], "--trainer.max_steps 0 trains nothing"),
    (["--data.prompts", '["hello", "xyz"]'], "Prompt 1 of --data.prompts ('xyz'): The text has characters the model never saw in training: 'x', 'z'."),
    (["--data.prompts", '[""]'], "Prompt 0 of --data.prompts is empty"),
])  # fmt: skip
def test_bad_gpt_settings(tmp_path, short_text, capsys, extra, message):
    code, err = _fail(["fit", *gpt_args(tmp_path, short_text, *extra)], capsys)
    assert code == 1 and err.startswith("error: ") and message in err and "\n" not in err
    _assert_nothing_started(tmp_path)


@pytest.mark.parametrize(("extra", "message"), [
    (["--model.base_channels", "0"], "base_channels must be a positive integer, got 0."),
    (["--model.learning_rate=-1e-3"], "learning_rate must be positive, got -0.001."),
    (["--data.batch_size=-4"], "batch sizes must be positive, got -4"),
])  # fmt: skip
def test_bad_ddpm_settings(tmp_path, tiny_mnist, capsys, extra, message):
    code, err = _fail(["fit", *ddpm_args(tmp_path, tiny_mnist, *extra)], capsys)
    assert code == 1 and err.startswith("error: ") and message in err
    _assert_nothing_started(tmp_path)


@pytest.mark.parametrize(("model", "extra", "message"), [
    ("gpt", ["--model.ln_style", "middle"], "model.ln_style expects one of 'pre', 'post', got 'middle'."),
    ("gpt", ["--model.norm", "batchnorm"], "model.norm expects one of 'layernorm', 'rmsnorm', got 'batchnorm'."),
    ("gpt", ["--model.pos_emb", "alibi"], "model.pos_emb expects one of 'learned', 'rope', 'none', got 'alibi'."),
    ("gpt", ["--model.mlp", "relu"], "model.mlp expects one of 'gelu', 'swiglu', got 'relu'."),
    ("gpt", ["--model.optimizer", "sgd"], "model.optimizer expects one of 'adamw', 'muon', got 'sgd'."),
    ("gpt", ["--model.tie_weights", "maybe"], "model.tie_weights expects bool, got 'maybe'."),
    ("ddpm", ["--model.noise_schedule", "quadratic"], "model.noise_schedule expects one of 'linear', 'cosine', got 'quadratic'."),
    ("gpt", ["--model.colour", "blue"], "model.colour is not an option of GPT2Mini."),
    ("ddpm", ["--data.colour", "blue"], "data.colour is not an option of MNISTDataModule."),
    ("gpt", ["--trainer.max_steps", "ten"], "trainer.max_steps expects int, got 'ten'."),
    ("gpt", ["--model.n_layer", "two"], "model.n_layer expects int, got 'two'."),
    ("gpt", ["--no_such_option", "1"], "unrecognized arguments: --no_such_option 1"),
])  # fmt: skip
def test_unknown_options_values_and_types_are_usage_errors(tmp_path, short_text, tiny_mnist, capsys, model, extra, message):
    args = gpt_args(tmp_path, short_text, *extra) if model == "gpt" else ddpm_args(tmp_path, tiny_mnist, *extra)
    code, err = _fail(["fit", *args], capsys)
    assert code == 2
    assert err.splitlines() == [f"error: {message}", "Run `python train.py fit --help` to see every option."]
    _assert_nothing_started(tmp_path)


def test_predict_on_more_processes_than_prompts(tmp_path, short_text):
    from types import SimpleNamespace

    from datamodules import CharDataModule

    dm = CharDataModule(data_path=str(short_text), block_size=16, prompts=["hello"])
    dm.trainer = SimpleNamespace(world_size=2)
    with pytest.raises(UserInputError, match=r"1 prompt\(s\) for 2 processes.*--trainer.devices 1"):
        dm.predict_dataloader()


def test_unknown_key_in_a_config_file(tmp_path, short_text, capsys):
    config = tmp_path / "mine.yaml"
    config.write_text("model:\n  init_args:\n    n_layers: 3\n")
    code, err = _fail(["fit", *gpt_args(tmp_path, short_text), "--config", str(config)], capsys)
    assert code == 2 and err.splitlines()[0] == "error: model.n_layers is not an option of GPT2Mini."


def test_missing_config_file(tmp_path, capsys):
    code, err = _fail(["fit", "--config", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2 and err.splitlines()[0] == f"error: Config file not found: '{tmp_path / 'nope.yaml'}'."


def test_an_output_folder_that_cannot_be_written(tmp_path, short_text, capsys):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    code, err = _fail(["fit", *gpt_args(tmp_path, short_text, "--trainer.default_root_dir", str(blocked / "runs"))], capsys)
    assert code == 1 and f"Cannot write to the output folder {blocked / 'runs'}" in err
    assert blocked.read_text() == "not a folder"


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_mnist_with_a_file_missing_or_truncated(tmp_path, tiny_mnist, capsys, damage):
    data_dir = tmp_path / "data"
    shutil.copytree(tiny_mnist, data_dir)
    images = data_dir / "MNIST/raw/t10k-images-idx3-ubyte"
    if damage == "missing":
        images.unlink()
    else:
        images.write_bytes(images.read_bytes()[:1000])
    code, err = _fail(["fit", *ddpm_args(tmp_path / "out", data_dir)], capsys)
    assert code == 1
    if damage == "missing":
        assert re.search(r"MNIST not found .*t10k-images-idx3-ubyte missing", err)
    else:
        assert f"MNIST file {images} is damaged (1,000 bytes where its header promises 12,560)" in err
    _assert_nothing_started(tmp_path / "out")  # checked in prepare_data, before Lightning writes anything
