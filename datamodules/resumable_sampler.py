"""ResumableSampler: shuffled training order that a resumed run can pick up mid-epoch."""

import math
import os

import lightning.pytorch as pl
from torch.utils.data import Dataset, DistributedSampler


class ResumableSampler(DistributedSampler):
    """DistributedSampler's shuffling, which can start an epoch part-way through.

    The order is a function of (seed, epoch) only: each epoch is one permutation of the dataset, and each
    rank takes every `num_replicas`-th index of it, so ranks see different samples. Being a
    `DistributedSampler`, Lightning keeps it under DDP instead of wrapping it. A run resumed from a
    mid-epoch checkpoint skips the `skip` indices of `start_epoch` it had already trained on, so it goes
    on with exactly the batches the uninterrupted run would have seen.
    """

    def __init__(
        self,
        dataset: Dataset,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
        start_epoch: int = 0,
        skip: int = 0,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.set_epoch(start_epoch)
        self.start_epoch, self.skip = start_epoch, skip

    def __iter__(self):
        indices = list(super().__iter__())
        if self.epoch == self.start_epoch:
            indices = indices[self.skip :]
        return iter(indices)

    @classmethod
    def for_trainer(cls, dataset: Dataset, batch_size: int, trainer: "pl.Trainer | None") -> "ResumableSampler":
        """The sampler for `trainer`'s rank, seed and position (a fresh one when there is no trainer).

        The seed is the run's (`seed_everything`), as for the samplers Lightning makes itself. Batches
        already trained on in the current epoch follow from the restored step count: every earlier epoch
        took `ceil(batches / accumulate_grad_batches)` optimizer steps, batches counted after
        `limit_train_batches`.
        """
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
        if trainer is None:
            return cls(dataset, seed=seed)
        sampler = cls(dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, seed=seed)
        batches_per_epoch = math.ceil(sampler.num_samples / batch_size)
        limit = trainer.limit_train_batches  # Lightning's cut of each epoch: a count, or a fraction
        if isinstance(limit, int):
            batches_per_epoch = min(batches_per_epoch, limit)
        elif limit < 1.0:
            batches_per_epoch = int(batches_per_epoch * limit)
        accumulate = trainer.accumulate_grad_batches
        steps_per_epoch = math.ceil(batches_per_epoch / accumulate)
        epoch = trainer.current_epoch
        batches_done = min((trainer.global_step - epoch * steps_per_epoch) * accumulate, batches_per_epoch)
        sampler.set_epoch(epoch)
        sampler.start_epoch, sampler.skip = epoch, max(0, batches_done) * batch_size
        return sampler
