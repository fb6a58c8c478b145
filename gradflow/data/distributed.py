"""Samplers that split an epoch among the ranks of a ``gradflow.distributed`` job."""
from __future__ import annotations

import math

import numpy

from .dataloader import Sampler
from .dataset import Subset


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



def _group_world():
    from .. import distributed as dist
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def shard(dataset, rank=None, world=None):
    """This rank's interleaved share of ``dataset`` (samples rank, rank + world, ...), e.g.
    for an evaluation whose per-rank means go through
    :func:`gradflow.distributed.weighted_mean`. ``rank``/``world`` default to the process
    group's; with one process it is ``dataset`` itself."""
    if rank is None or world is None:
        rank, world = _group_world()
    if world == 1:
        return dataset
    if isinstance(dataset, Subset):  # keep one level of indirection (and the fast batch fetch)
        return Subset(dataset.dataset, list(dataset.indices)[rank::world])
    return Subset(dataset, range(rank, len(dataset), world))


def shard_batches(batches, rank=None, world=None):
    """This rank's part of each global batch (lists of sample indices): batch ``[b_0, b_1,
    ...]`` gives rank r the samples ``b_r, b_{r+N}, ...``. With the gradients averaged over
    ranks, N processes then take the steps one process takes on ``batches`` (up to rounding;
    exactly when the parts have equal sizes). A batch smaller than N is dropped, on every
    rank (one rank would get no sample). ``rank``/``world`` default to the process group's."""
    if rank is None or world is None:
        rank, world = _group_world()
    if world == 1:
        return batches
    return [list(b)[rank::world] for b in batches if len(b) >= world]
