"""MNISTDataModule: 28x28 handwritten digits scaled to [-1, 1], read through torchvision."""

import math
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import v2

from datamodules.loaders import make_loader
from datamodules.resumable_sampler import ResumableSampler
from errors import UserInputError

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


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
        """Download missing files (Lightning calls this once, on one process), or explain where to put them."""
        if self.trainer is not None and self.trainer.predicting:
            return
        if self.download and self._missing_files():
            try:
                for train in (True, False):
                    datasets.MNIST(self.data_dir, train=train, download=True)
            except (RuntimeError, OSError) as err:
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

    def _missing_files(self) -> list[str]:
        return [name for name in MNIST_FILES if not (self.raw_dir / name).is_file()]

    def _check_files(self) -> None:
        if self._missing_files():
            hint = "--data.download true fetches them (needs internet)." if not self.download else ""
            raise self._not_found_error(hint)
        for name in MNIST_FILES:
            _check_idx(self.raw_dir / name)

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
        sampler = ResumableSampler.for_trainer(self.train_set, self.batch_size, self.trainer)
        return make_loader(self.train_set, self.batch_size, self.num_workers, sampler)

    def val_dataloader(self) -> DataLoader:
        return make_loader(self.val_set, self.val_batch_size, self.num_workers)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(range(self.trainer.world_size if self.trainer else 1), batch_size=1)


def _check_idx(path: Path) -> None:
    """An IDX file's header gives its dimensions, so its size tells whether it arrived whole."""
    with path.open("rb") as f:
        header = f.read(4)
        ndim = header[3] if len(header) == 4 and header[:2] == b"\x00\x00" else 0
        dims = f.read(4 * ndim)
    size, expected = path.stat().st_size, None
    if ndim and len(dims) == 4 * ndim:
        expected = 4 + 4 * ndim + math.prod(int.from_bytes(dims[i : i + 4], "big") for i in range(0, 4 * ndim, 4))
    if expected != size:
        what = f"{size:,} bytes where its header promises {expected:,}" if expected else "no IDX header"
        raise UserInputError(
            f"MNIST file {path} is damaged ({what}): an interrupted download or copy? "
            "Delete it and fetch it again (--data.download true), or copy a good one there."
        )
