"""MNISTDataModule on a tiny MNIST written as IDX files, and its one clear error for missing or mismatched files."""

import gzip
import shutil
import struct
from pathlib import Path

import pytest
import torch
from torchvision import datasets

import train
from conftest import _write_idx
from datamodules import MNISTDataModule
from datamodules.mnist import MNIST_FILES
from errors import UserInputError
from subprocess_runs import run_train
from tiny import ddpm_args


def test_reads_both_splits_scaled_to_minus_one_one(tiny_mnist):
    dm = MNISTDataModule(data_dir=str(tiny_mnist), download=False, batch_size=8, val_batch_size=16)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_set) == 48 and len(dm.val_set) == 16  # train split for training, test split for validation
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (8, 1, 28, 28) and images.dtype == torch.float32
    assert set(images.unique().tolist()) == {-1.0, 1.0}  # pixels 0 and 255 land on the ends of [-1, 1]
    first, label = dm.val_set[0]
    assert label == 0 and first[0, 0, 0] == -1.0 and first[0, 2, 2] == 1.0
    val_images, _ = next(iter(dm.val_dataloader()))
    assert val_images.shape == (16, 1, 28, 28)


def test_validate_stage_needs_only_the_test_split(tiny_mnist):
    dm = MNISTDataModule(data_dir=str(tiny_mnist), download=False)
    dm.setup("validate")
    assert len(dm.val_set) == 16 and not hasattr(dm, "train_set")


def _assert_names_dir_and_files(message: str, data_dir: Path) -> None:
    assert str(data_dir) in message
    assert str(data_dir / "MNIST" / "raw") in message
    for name in MNIST_FILES:
        assert name in message


def test_missing_files_with_download_off_raise_one_clear_error(tmp_path):
    dm = MNISTDataModule(data_dir=str(tmp_path), download=False)
    with pytest.raises(UserInputError) as err:
        dm.prepare_data()
    _assert_names_dir_and_files(str(err.value), tmp_path)
    assert "--data.download true" in str(err.value)
    with pytest.raises(UserInputError):
        dm.setup("fit")


def test_failed_download_raises_the_same_clear_error(tmp_path, monkeypatch):
    def offline(self):
        raise RuntimeError("Error downloading x.gz:\n<urlopen error [Errno -2] Name or service not known>\n")

    monkeypatch.setattr(datasets.MNIST, "download", offline)  # never touch the network in tests
    dm = MNISTDataModule(data_dir=str(tmp_path), download=True)
    with pytest.raises(UserInputError) as err:
        dm.prepare_data()
    _assert_names_dir_and_files(str(err.value), tmp_path)
    assert "Downloading them failed: <urlopen error [Errno -2] Name or service not known>" in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no torchvision traceback behind it


def test_error_names_only_the_missing_files_as_missing(tiny_mnist, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES[:2]:
        (raw / name).write_bytes((tiny_mnist / "MNIST" / "raw" / name).read_bytes())
    with pytest.raises(UserInputError, match="t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte missing"):
        MNISTDataModule(data_dir=str(tmp_path), download=False).prepare_data()


def test_predict_needs_no_files(tmp_path):
    dm = MNISTDataModule(data_dir=str(tmp_path / "nothing_here"), download=True)
    dm.setup("predict")
    assert len(list(dm.predict_dataloader())) == 1
    assert not (tmp_path / "nothing_here").exists()


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"val_batch_size": -1}, {"num_workers": -1}])
def test_bad_loader_settings_are_user_errors(kwargs):
    with pytest.raises(UserInputError):
        MNISTDataModule(**kwargs)


@pytest.mark.slow
def test_missing_dataset_through_the_cli_exits_with_the_message_and_no_traceback(tmp_path):
    result = run_train(
        "fit", "--config", "configs/ddpm.yaml",
        "--data.data_dir", str(tmp_path), "--data.download", "false", "--trainer.default_root_dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: MNIST not found in data_dir")
    _assert_names_dir_and_files(last_line, tmp_path)
    assert not list(tmp_path.rglob("*.ckpt"))


def _replace_file(tiny_mnist: Path, tmp_path: Path, name: str, data: torch.Tensor | bytes) -> Path:
    """A copy of the tiny MNIST whose file `name` is whole but from another set: `data`, as IDX or raw bytes."""
    data_dir = tmp_path / "data"
    shutil.copytree(tiny_mnist, data_dir)
    path = data_dir / "MNIST" / "raw" / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        _write_idx(path, data)
    return data_dir


def _wrong_label(n: int, at: int, value: int) -> torch.Tensor:
    """The tiny MNIST's labels, one of them not a digit."""
    labels = torch.arange(n) % 10
    labels[at] = value
    return labels


@pytest.mark.slow
@pytest.mark.parametrize(("name", "data", "problem"), [
    ("t10k-labels-idx1-ubyte", torch.arange(48) % 10,
     "has 48 labels but t10k-images-idx3-ubyte has 16 images: the files come from different sets."),
    ("train-labels-idx1-ubyte", _wrong_label(48, at=5, value=12),
     "has label 12 (at position 5), but MNIST labels are the digits 0 to 9: is it from another data set?"),
    ("t10k-images-idx3-ubyte", torch.zeros(16, 32, 32),
     "holds 32x32 images but train-images-idx3-ubyte holds 28x28 ones: the files come from different sets."),
    ("train-images-idx3-ubyte", torch.zeros(48, 32, 32),
     "holds 32x32 images but t10k-images-idx3-ubyte holds 28x28 ones: the files come from different sets."),
    ("t10k-labels-idx1-ubyte", torch.zeros(16, 28, 28),
     "holds images, not labels (IDX magic 2051): were the files renamed or swapped?"),
])  # fmt: skip
def test_mismatched_files_through_the_cli_are_one_error_line_and_no_run_folder(
    tiny_mnist, tmp_path, name, data, problem
):
    data_dir = _replace_file(tiny_mnist, tmp_path, name, data)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        train.main(["fit", *ddpm_args(out, data_dir)])
    message, raw = exit_info.value.code, data_dir / "MNIST" / "raw"
    assert isinstance(message, str) and "\n" not in message  # sys.exit(str): one line on stderr, exit status 1
    assert message == (
        f"error: MNIST file {raw / name} {problem} Copy the four files of one MNIST set into {raw}/ again, "
        "or delete all four and fetch them (--data.download true)."
    )
    assert not out.exists()  # no run folder: checked in prepare_data, before Lightning writes anything


def test_an_idx_file_that_is_neither_images_nor_labels_is_named(tiny_mnist, tmp_path):
    matrix = struct.pack(">3i", 0x0802, 48, 784) + bytes(48 * 784)  # a whole 2-D uint8 IDX file: 48 x 784
    data_dir = _replace_file(tiny_mnist, tmp_path, "train-images-idx3-ubyte", matrix)
    with pytest.raises(UserInputError) as err:
        MNISTDataModule(data_dir=str(data_dir), download=False).prepare_data()
    assert "train-images-idx3-ubyte holds no MNIST images (IDX magic 2050, not 2051): is it from" in str(err.value)


def test_a_data_dir_at_the_files_own_folder_is_named_and_nothing_is_created(tiny_mnist, tmp_path):
    raw, out = tiny_mnist / "MNIST" / "raw", tmp_path / "out"
    before = sorted(raw.iterdir())
    with pytest.raises(SystemExit) as exit_info:
        train.main(["fit", *ddpm_args(out, raw, "--data.download", "true")])  # a download would be allowed
    assert exit_info.value.code == (
        f"error: data_dir {raw} holds the MNIST files itself, but they are read from <data_dir>/MNIST/raw/: "
        f"use --data.data_dir {tiny_mnist}."
    )
    assert sorted(raw.iterdir()) == before and not out.exists()  # no MNIST/raw/MNIST/raw/, no run folder


def _compressed_copy(tiny_mnist: Path, tmp_path: Path) -> Path:
    """The tiny MNIST with each file gzipped (`<name>.gz`, as the official downloads are) and not unpacked."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES:
        (raw / f"{name}.gz").write_bytes(gzip.compress((tiny_mnist / "MNIST" / "raw" / name).read_bytes()))
    return raw


def test_compressed_files_are_named_without_download_and_unpacked_offline_with_it(tiny_mnist, tmp_path, monkeypatch):
    raw = _compressed_copy(tiny_mnist, tmp_path)
    with pytest.raises(UserInputError) as err:
        MNISTDataModule(data_dir=str(tmp_path), download=False).prepare_data()
    assert str(err.value).startswith(f"MNIST in {raw} is compressed (t10k-images-idx3-ubyte.gz, ")
    assert f"gunzip {raw}/*.gz" in str(err.value) and "--data.download true" in str(err.value)

    def offline(self):
        raise AssertionError("no download: the files are there")

    monkeypatch.setattr(datasets.MNIST, "download", offline)
    dm = MNISTDataModule(data_dir=str(tmp_path), download=True)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_set) == 48 and (raw / "train-images-idx3-ubyte.gz").is_file()  # the .gz stays


def test_a_failed_download_removes_the_folders_it_made(tmp_path, monkeypatch):
    def offline(self):
        Path(self.raw_folder).mkdir(parents=True)  # as torchvision does before it downloads
        raise RuntimeError("Error downloading x.gz:\n<urlopen error [Errno -2] Name or service not known>\n")

    monkeypatch.setattr(datasets.MNIST, "download", offline)
    with pytest.raises(UserInputError, match="Downloading them failed"):
        MNISTDataModule(data_dir=str(tmp_path / "new" / "data"), download=True).prepare_data()
    assert list(tmp_path.iterdir()) == []
