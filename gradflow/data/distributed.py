"""Samplers that split an epoch among the ranks of a ``gradflow.distributed`` job."""
from __future__ import annotations

import math

import numpy

from .dataloader import Sampler


def _world(num_replicas, rank, who):
    if num_replicas is None or rank is None:
        from .. import distributed as dist
        if not dist.is_initialized():
            raise RuntimeError(f"{who}: pass num_replicas and rank, or call "
                               f"gradflow.distributed.init_process_group() first")
        num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
        rank = dist.get_rank() if rank is None else rank
    if not isinstance(num_replicas, int) or num_replicas < 1:
        raise ValueError(f"{who}: num_replicas must be a positive integer, got {num_replicas!r}")
    if not isinstance(rank, int) or not 0 <= rank < num_replicas:
        raise ValueError(f"{who}: invalid rank {rank!r}, rank should be in the interval "
                         f"[0, {num_replicas - 1}]")
    return num_replicas, rank


class DistributedSampler(Sampler):
    """``DistributedSampler(dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
    drop_last=False)``: rank ``rank``'s share of each epoch (PyTorch's).

    The epoch's order (a permutation seeded by ``seed + epoch`` when shuffling, else
    ``0..n-1``) is cut into ``num_replicas`` interleaved shares of equal length
    ``num_samples``: every sample goes to exactly one rank. When ``n`` is not a multiple of
    ``num_replicas``, ``drop_last=False`` pads the order with its own first samples (those
    few are seen twice) and ``drop_last=True`` drops the tail. Call ``set_epoch(e)`` before
    each epoch so the shuffle changes, identically on every rank."""

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        self.num_replicas, self.rank = _world(num_replicas, rank, "DistributedSampler")
        self.dataset, self.shuffle, self.seed, self.drop_last = dataset, shuffle, int(seed), drop_last
        self.epoch = 0
        n = len(dataset)
        if drop_last:
            self.num_samples = n // self.num_replicas
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            order = numpy.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            order = numpy.arange(n)
        if self.total_size > n:  # pad by wrapping around (as often as needed for tiny datasets)
            order = numpy.resize(order, self.total_size)
        order = order[:self.total_size]
        return iter(order[self.rank:self.total_size:self.num_replicas].tolist())

    def __len__(self):
        return self.num_samples


class ShardedBatchSampler(Sampler):
    """This rank's part of each global batch: the epoch's order (``DataLoader(shuffle=True,
    seed=seed)``'s permutation) is cut into batches of ``batch_size`` exactly as one process
    would, and batch ``[b_0, b_1, ...]`` gives rank r the samples ``b_r, b_{r+N}, ...``. With
    the gradients averaged over ranks, N processes then take the steps one process takes
    (up to rounding, and exactly when each rank's share has the same size). A last batch
    smaller than the number of ranks is dropped (a rank would get no sample).
    ``num_samples``: how many samples this rank sees per epoch."""

    def __init__(self, n, batch_size, seed=None, shuffle=True, num_replicas=None, rank=None):
        self.num_replicas, self.rank = _world(num_replicas, rank, "ShardedBatchSampler")
        if not isinstance(batch_size, int) or batch_size < self.num_replicas:
            raise ValueError(f"ShardedBatchSampler: batch_size must be an integer >= the number of "
                             f"ranks ({self.num_replicas}), got {batch_size!r}")
        self.n, self.batch_size, self.seed, self.shuffle = int(n), batch_size, seed, shuffle
        sizes = [min(batch_size, self.n - s) for s in range(0, self.n, batch_size)]
        sizes = [s for s in sizes if s >= self.num_replicas]
        self._len = len(sizes)
        self.num_samples = sum(len(range(self.rank, s, self.num_replicas)) for s in sizes)

    def __iter__(self):
        order = numpy.random.default_rng(self.seed).permutation(self.n) if self.shuffle else \
            numpy.arange(self.n)
        for start in range(0, self.n, self.batch_size):
            batch = order[start:start + self.batch_size]
            if len(batch) >= self.num_replicas:
                yield batch[self.rank::self.num_replicas].tolist()

    def __len__(self):
        return self._len
