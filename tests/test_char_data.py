"""CharDataModule: vocabulary, splits, windows, the built-in corpus, and errors that name the file."""

import pytest
import torch

from datamodules import CharDataModule
from datamodules.char_data import EMBEDDED_CORPUS
from errors import UserInputError


def test_vocabulary_and_split(repetitive_text):
    dm = CharDataModule(data_path=str(repetitive_text), block_size=8, batch_size=4, val_fraction=0.1)
    text = repetitive_text.read_text()
    assert dm.chars == sorted(set(text))
    assert len(dm.train_data) + len(dm.val_data) == len(text)
    assert len(dm.val_data) == int(len(text) * 0.1)
    assert dm.tokenizer.decode(dm.val_data.tolist()) == text[-len(dm.val_data) :]


def test_training_windows_are_shifted_by_one(repetitive_text):
    dm = CharDataModule(data_path=str(repetitive_text), block_size=8, batch_size=4)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == y.shape == (4, 8)
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_validation_is_deterministic_and_scores_every_val_token_once(repetitive_text):
    dm = CharDataModule(data_path=str(repetitive_text), block_size=8, batch_size=4, val_batch_size=5)
    first = [y for _, y in dm.val_dataloader()]
    second = [y for _, y in dm.val_dataloader()]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    windows = dm.val_dataloader().dataset
    covered = set()
    for start in windows.starts:
        covered.update(range(start + 1, start + 9))
    assert covered == set(range(1, len(dm.val_data)))


def test_default_is_the_embedded_corpus():
    dm = CharDataModule(block_size=32)
    assert dm.path == EMBEDDED_CORPUS
    assert len(EMBEDDED_CORPUS.read_text()) > 30_000
    assert 40 < dm.vocab_size < 100


def test_short_text_reduces_block_size_with_a_warning(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("abcdefghij" * 5)
    with pytest.warns(UserWarning, match="too short for block_size 256"):
        dm = CharDataModule(data_path=str(path), block_size=256, batch_size=2)
    assert dm.block_size == len(dm.val_data) - 1
    x, _ = next(iter(dm.val_dataloader()))
    assert x.shape[1] == dm.block_size


def _bad_files(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 ol\xe9".encode("latin-1"))
    binary = tmp_path / "weights.bin"
    binary.write_bytes(bytes(range(128)) * 4)
    one = tmp_path / "one.txt"
    one.write_text("a")
    same = tmp_path / "same.txt"
    same.write_text("z" * 500)
    short = tmp_path / "short.txt"
    short.write_text("ab")
    return {
        "missing": (tmp_path / "nope.txt", "not found"),
        "directory": (tmp_path, "is a directory"),
        "empty": (empty, "is empty"),
        "not utf-8": (latin1, "not UTF-8"),
        "binary": (binary, "binary file"),
        "one character": (one, "single character"),
        "one character repeated": (same, "single character"),
        "too short": (short, "too short"),
    }


@pytest.mark.parametrize(
    "case",
    ["missing", "directory", "empty", "not utf-8", "binary", "one character", "one character repeated", "too short"],
)
def test_bad_data_file_gets_an_error_naming_it(tmp_path, case):
    path, message = _bad_files(tmp_path)[case]
    with pytest.raises(UserInputError, match=message) as err:
        CharDataModule(data_path=str(path))
    assert str(path) in str(err.value)


def test_worker_processes_give_the_same_validation_batches(repetitive_text):
    in_process = CharDataModule(data_path=str(repetitive_text), block_size=8, batch_size=4, val_batch_size=7)
    workers = CharDataModule(data_path=str(repetitive_text), block_size=8, batch_size=4, val_batch_size=7, num_workers=2)
    for (x0, y0), (x1, y1) in zip(in_process.val_dataloader(), workers.val_dataloader(), strict=True):
        assert torch.equal(x0, x1) and torch.equal(y0, y1)
