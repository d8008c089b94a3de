"""The DataLoader settings every datamodule here shares."""

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def make_loader(dataset: Dataset, batch_size: int, num_workers: int, sampler: Sampler | None = None) -> DataLoader:
    """A loader in dataset order, or in `sampler`'s order when given.

    It keeps its worker processes between epochs when it has any (`num_workers: 0` loads in-process).
    Its own generator seeds the workers, so starting an epoch or a validation never draws from torch's
    global generator: dropout and diffusion noise stay the same whether or not a validation ran.
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        generator=torch.Generator(),
    )
