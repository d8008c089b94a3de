"""MNISTDataModule: 28x28 handwritten digits scaled to [-1, 1], read through torchvision."""

import math
import shutil
from pathlib import Path
from typing import NamedTuple

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.datasets.utils import extract_archive
from torchvision.transforms import v2

from datamodules.loaders import make_loader
from datamodules.resumable import ResumableLoader
from errors import UserInputError

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
KINDS = {2051: "images", 2049: "labels"}  # IDX magic: 0x08 (uint8 data), then the number of dimensions
MAGICS = {kind: magic for magic, kind in KINDS.items()}
SPLITS = {"train": MNIST_FILES[:2], "t10k": MNIST_FILES[2:]}  # each split's images and labels


class IdxHeader(NamedTuple):
    magic: int
    dims: tuple[int, ...]


class MNISTDataModule(pl.LightningDataModule):
    """The official MNIST split: 60,000 training digits, and the 10,000 test digits for validation and test.

    Files live where torchvision keeps them, `<data_dir>/MNIST/raw/`. With `download=True` torchvision
    fetches any that are missing. Pixels go to [-1, 1], the range a diffusion model's noise is scaled to.
    `predict` needs no files: it draws from the model, so its loader yields one placeholder per process,
    that process's index, and each process draws its share of the grid.
    """

    def __init__(
        self,
        data_dir: str = "data",
        download: bool = True,
        batch_size: int = 128,
        val_batch_size: int | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if batch_size <= 0 or (val_batch_size is not None and val_batch_size <= 0):
            raise UserInputError(f"batch sizes must be positive, got {batch_size} and {val_batch_size}.")
        if num_workers < 0:
            raise UserInputError(f"num_workers must be 0 or more, got {num_workers}.")
        self.data_dir = Path(data_dir)
        self.download = download
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = num_workers
        # ToTensor + Normalize((0.5,), (0.5,)) in torchvision's current API: uint8 [0, 255] -> float [-1, 1].
        self.transform = v2.Compose(
            [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5], [0.5])]
        )

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "MNIST" / "raw"

    def prepare_data(self) -> None:
        """Download missing files (Lightning calls this once, on one process), or explain where to put them.

        With `download=True`, compressed files (the official `.gz` downloads) are unpacked first, without the
        internet (torchvision would replace a `.gz` that is not byte-identical to its own).
        A failed download leaves no folder behind that it made, so a mistyped data_dir changes nothing.
        """
        if self.trainer is not None and self.trainer.predicting:
            return
        self._check_not_raw_dir()
        if self.download:
            for name in self._compressed_files():
                extract_archive(str(self.raw_dir / name))  # the .gz stays, as gunzip --keep would leave it
        if self.download and self._missing_files():
            made = [p for p in (self.raw_dir, *self.raw_dir.parents) if not p.exists()]
            try:
                for train in (True, False):
                    datasets.MNIST(self.data_dir, train=train, download=True)
            except (RuntimeError, OSError) as err:
                for folder in made:  # innermost first
                    shutil.rmtree(folder, ignore_errors=True)
                last_line = [line for line in str(err).splitlines() if line.strip()][-1]
                raise self._not_found_error(f"Downloading them failed: {last_line}") from None
        self._check_files()

    def setup(self, stage: str) -> None:
        if stage == "predict":
            return
        self._check_files()
        if stage == "fit":
            self.train_set = datasets.MNIST(self.data_dir, train=True, transform=self.transform)
        self.val_set = datasets.MNIST(self.data_dir, train=False, transform=self.transform)

    def digits(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """One split's digits (N, 1, 28, 28) in [0, 1], the scale samples come in, and their labels (N,)."""
        self._check_files()
        dataset = datasets.MNIST(self.data_dir, train=train)
        return dataset.data.unsqueeze(1).float() / 255, dataset.targets

    def _missing_files(self) -> list[str]:
        return [name for name in MNIST_FILES if not (self.raw_dir / name).is_file()]

    def _compressed_files(self) -> list[str]:
        """The official downloads' names (`<file>.gz`) of missing files that are there compressed."""
        return sorted(p.name for p in _files_in(self.raw_dir) if p.name in {n + ".gz" for n in self._missing_files()})

    def _check_not_raw_dir(self) -> None:
        """data_dir pointed at the files' own folder (`.../MNIST/raw`) rather than the one that holds MNIST/raw/."""
        if self.raw_dir.is_dir() or not any(p.name.startswith(MNIST_FILES) for p in _files_in(self.data_dir)):
            return
        above = self.data_dir.parent.parent if self.data_dir.parts[-2:] == ("MNIST", "raw") else None
        fix = f"use --data.data_dir {above}" if above else f"move them into {self.raw_dir}/"
        raise UserInputError(
            f"data_dir {self.data_dir} holds the MNIST files itself, but they are read from <data_dir>/MNIST/raw/: "
            f"{fix}."
        )

    def _check_files(self) -> None:
        if self._missing_files():
            compressed = self._compressed_files()
            if compressed and not self.download:
                raise UserInputError(
                    f"MNIST in {self.raw_dir} is compressed ({', '.join(compressed)}): unpack it "
                    f"(gunzip {self.raw_dir}/*.gz), or set --data.download true, which unpacks the files "
                    "without the internet."
                )
            hint = "--data.download true fetches them (needs internet)." if not self.download else ""
            raise self._not_found_error(hint)
        headers = {name: _check_idx(self.raw_dir / name) for name in MNIST_FILES}
        _check_set(self.raw_dir, headers)

    def _not_found_error(self, reason: str) -> UserInputError:
        """One message for every way the files can be missing: which ones, and where they must go."""
        missing = self._missing_files()
        what = f"{', '.join(missing)} missing" if len(missing) < len(MNIST_FILES) else "none of the four files is there"
        return UserInputError(
            f"MNIST not found in data_dir {self.data_dir} ({what}). "
            f"Put the four uncompressed IDX files ({', '.join(MNIST_FILES)}) in {self.raw_dir}/, "
            f"or set --data.data_dir to the folder that holds MNIST/raw/. {reason}".rstrip()
        )

    def train_dataloader(self) -> DataLoader:
        return ResumableLoader(self.train_set, self.batch_size, self.num_workers, self.trainer)

    def val_dataloader(self) -> DataLoader:
        return make_loader(self.val_set, self.val_batch_size, self.num_workers)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(range(self.trainer.world_size if self.trainer else 1), batch_size=1)


def _files_in(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []


def _check_idx(path: Path) -> IdxHeader:
    """An IDX file's header gives its dimensions, so its size tells whether it arrived whole."""
    with path.open("rb") as f:
        header = f.read(4)
        ndim = header[3] if len(header) == 4 and header[:2] == b"\x00\x00" else 0
        dims = f.read(4 * ndim)
    size, expected = path.stat().st_size, None
    if ndim and len(dims) == 4 * ndim:
        expected = 4 + 4 * ndim + math.prod(_ints(dims))
    if expected != size:
        what = f"{size:,} bytes where its header promises {expected:,}" if expected else "no IDX header"
        raise UserInputError(
            f"MNIST file {path} is damaged ({what}): an interrupted download or copy? "
            "Delete it and fetch it again (--data.download true), or copy a good one there."
        )
    return IdxHeader(int.from_bytes(header, "big"), _ints(dims))


def _ints(data: bytes) -> tuple[int, ...]:
    """IDX sizes are big-endian 32-bit integers."""
    return tuple(int.from_bytes(data[i : i + 4], "big") for i in range(0, len(data), 4))


def _check_set(raw_dir: Path, headers: dict[str, IdxHeader]) -> None:
    """Whole files can still come from different sets, and torchvision then fails mid-run (an IndexError)."""
    for name, header in headers.items():
        _check_kind(raw_dir, name, header.magic)
    _check_image_sizes(raw_dir, headers)
    for images, labels in SPLITS.values():
        (n_images, *_), (n_labels,) = headers[images].dims, headers[labels].dims
        if n_labels != n_images:
            raise _mismatch(
                raw_dir, labels,
                f"has {n_labels:,} labels but {images} has {n_images:,} images: the files come from different sets.",
            )  # fmt: skip
        _check_labels(raw_dir, labels)


def _check_kind(raw_dir: Path, name: str, magic: int) -> None:
    """Renamed or swapped files put images where labels belong (or the reverse); the magic number tells."""
    kind = "images" if "-images-" in name else "labels"
    if magic == MAGICS[kind]:
        return
    if magic in KINDS:
        problem = f"holds {KINDS[magic]}, not {kind} (IDX magic {magic}): were the files renamed or swapped?"
    else:
        problem = f"holds no MNIST {kind} (IDX magic {magic}, not {MAGICS[kind]}): is it from another data set?"
    raise _mismatch(raw_dir, name, problem)


def _check_image_sizes(raw_dir: Path, headers: dict[str, IdxHeader]) -> None:
    """Both splits feed one model, so their images must be one size; a split that is not 28x28 is the odd one."""
    (train, _), (test, _) = SPLITS.values()
    if headers[train].dims[1:] != headers[test].dims[1:]:
        odd, other = (test, train) if headers[train].dims[1:] == (28, 28) else (train, test)
        raise _mismatch(
            raw_dir, odd,
            f"holds {_size(headers[odd])} images but {other} holds {_size(headers[other])} ones: "
            "the files come from different sets.",
        )  # fmt: skip


def _check_labels(raw_dir: Path, name: str) -> None:
    """A label outside 0-9 means the file is not MNIST's (60,000 bytes at most: reading them is quick)."""
    labels = (raw_dir / name).read_bytes()[8:]
    top = max(labels, default=0)
    if top > 9:
        raise _mismatch(
            raw_dir, name,
            f"has label {top} (at position {labels.index(top):,}), but MNIST labels are the digits 0 to 9: "
            "is it from another data set?",
        )  # fmt: skip


def _size(images: IdxHeader) -> str:
    """28x28, as people write image sizes."""
    return "x".join(map(str, images.dims[1:]))


def _mismatch(raw_dir: Path, name: str, problem: str) -> UserInputError:
    """Every mismatch has the same fix: the four files of one MNIST set, side by side (`problem` ends a sentence)."""
    return UserInputError(
        f"MNIST file {raw_dir / name} {problem} Copy the four files of one MNIST set into {raw_dir}/ again, "
        "or delete all four and fetch them (--data.download true)."
    )
