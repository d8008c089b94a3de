"""The DataLoader settings every datamodule here shares."""

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset


def loader_options(num_workers: int) -> dict[str, Any]:
    """Worker settings for every loader here, the training one (`ResumableLoader`) included.

    A loader keeps its worker processes between epochs when it has any (`num_workers: 0` loads in-process).
    Its own generator seeds the workers, so starting an epoch or a validation never draws from torch's
    global generator: dropout and diffusion noise stay the same whether or not a validation ran.
    """
    return {"num_workers": num_workers, "persistent_workers": num_workers > 0, "generator": torch.Generator()}


def make_loader(dataset: Dataset, batch_size: int, num_workers: int) -> DataLoader:
    """A loader in dataset order, for validation and test."""
    return DataLoader(dataset, batch_size=batch_size, **loader_options(num_workers))
