"""Shared fixtures: tiny synthetic data written into temporary folders (tests never need real data)."""

import struct
from pathlib import Path

import pytest
import torch


@pytest.fixture
def repetitive_text(tmp_path: Path) -> Path:
    """A short, highly repetitive text: a small model can learn it in a few dozen steps."""
    path = tmp_path / "tiny.txt"
    path.write_text("hello world, the lab says hi.\n" * 120, encoding="utf-8")
    return path


def _write_idx(path: Path, data: torch.Tensor) -> None:
    """An IDX file as MNIST ships it: magic (2051 images, 2049 labels), big-endian int32 sizes, uint8 data."""
    magic = 2051 if data.dim() == 3 else 2049
    header = struct.pack(f">{1 + data.dim()}i", magic, *data.shape)
    path.write_bytes(header + data.to(torch.uint8).numpy().tobytes())


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data_dir holding a tiny MNIST in torchvision's layout: 48 train and 16 test 28x28 "digits" (read only).

    Image i is black with a white 8x8 square whose corner depends on its label (i % 10), so there is a
    pattern to learn; image 0's first pixel is 0 and its square's first pixel 255, for checking scaling.
    """
    data_dir = tmp_path_factory.mktemp("mnist_data")
    raw = data_dir / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", 48), ("t10k", 16)):
        labels = torch.arange(n) % 10
        images = torch.zeros(n, 28, 28, dtype=torch.uint8)
        for i, label in enumerate(labels.tolist()):
            row, col = 2 + 10 * (label // 5), 2 + 4 * (label % 5)
            images[i, row : row + 8, col : col + 8] = 255
        _write_idx(raw / f"{split}-images-idx3-ubyte", images)
        _write_idx(raw / f"{split}-labels-idx1-ubyte", labels)
    return data_dir
