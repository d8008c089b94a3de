"""A shuffled training order that a run resumed from a mid-epoch checkpoint picks up where it stopped."""

import os
from collections.abc import Iterator
from typing import Any

import lightning.pytorch as pl
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from datamodules.loaders import loader_options


class ResumableSampler(DistributedSampler):
    """DistributedSampler's shuffling, which can start an epoch part-way through.

    The order is a function of (seed, epoch) only: each epoch is one permutation of the dataset, and each
    rank takes every `num_replicas`-th index of it, so ranks see different samples. Being a
    `DistributedSampler`, Lightning keeps it under DDP instead of wrapping it. After `resume(epoch, skip)`
    that epoch leaves out the first `skip` indices, the ones a resumed run had already trained on.
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.start_epoch, self.skip = 0, 0

    def resume(self, epoch: int, skip: int) -> None:
        self.set_epoch(epoch)
        self.start_epoch, self.skip = epoch, skip

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        if self.epoch == self.start_epoch:
            indices = indices[self.skip :]
        return iter(indices)


class ResumableLoader(DataLoader):
    """The training loader: a `ResumableSampler`'s order, with a `state_dict` that Lightning saves and restores.

    Lightning's fit loop puts the `state_dict` of a train loader that has one into every checkpoint, and
    hands it back to `load_state_dict` before a resumed run draws its first batch. The state is the epoch
    and how many batches of it this loader has handed out; for a loader with a length Lightning fetches no
    batch ahead, so that is how many were trained on.
    """

    def __init__(self, dataset: Dataset, batch_size: int, num_workers: int, trainer: "pl.Trainer | None") -> None:
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))  # the run's seed_everything, as Lightning's samplers use
        ranks = {"num_replicas": trainer.world_size, "rank": trainer.global_rank} if trainer is not None else {}
        self.order = ResumableSampler(dataset, seed=seed, **ranks)
        super().__init__(dataset, batch_size, sampler=self.order, **loader_options(num_workers))
        self._batches_done = 0

    def __iter__(self) -> Iterator[Any]:
        resumed = self.order.epoch == self.order.start_epoch
        self._batches_done = self.order.skip // self.batch_size if resumed else 0
        for batch in super().__iter__():
            self._batches_done += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.order.epoch, "batches_done": self._batches_done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.order.resume(state["epoch"], state["batches_done"] * self.batch_size)
