"""Datasets: anything with ``__getitem__(i)`` and ``__len__``, as in PyTorch.

A dataset may also define ``_fetch_batch(indices) -> batch`` returning an already
collated batch (a tuple of NumPy arrays or Tensors); the DataLoader uses it, when no
custom ``collate_fn`` is given, to build whole batches with one fancy-index instead
of one Python call per sample.
"""
from __future__ import annotations

import bisect
import math

import numpy

from ..backends import current_backend
from ..creation import Generator  # noqa: F401 - torch.utils.data spelling of torch.Generator
from ..tensor import Tensor


class Dataset:
    """Base class: subclasses implement ``__getitem__`` and ``__len__``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    def __iter__(self):
        raise NotImplementedError


def _rows(t, index):
    if isinstance(t, Tensor):
        return t.detach()[index] if not isinstance(index, numpy.ndarray) else \
            Tensor._make(t.backend.getitem(t.array, t.backend.asarray(index)), t.backend)
    return t[index]


class TensorDataset(Dataset):
    """Samples are ``tuple(t[i] for t in tensors)``; every tensor (or NumPy array)
    must have the same first dimension."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: give at least one tensor")
        n = len(tensors[0])
        for i, t in enumerate(tensors):
            if not isinstance(t, (Tensor, numpy.ndarray)):
                raise TypeError(f"TensorDataset: argument {i} is a {type(t).__name__}; expected "
                                f"a gradflow Tensor or a NumPy array")
            if len(t) != n:
                raise ValueError(f"TensorDataset: size mismatch between tensors: first dimensions "
                                 f"{[len(x) for x in tensors]}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(_rows(t, index) for t in self.tensors)

    def __len__(self):
        return len(self.tensors[0])

    def _fetch_batch(self, indices):
        idx = numpy.asarray(indices, dtype=numpy.int64)
        return tuple(_rows(t, idx) for t in self.tensors)


class ArrayDataset(Dataset):
    """In-memory (inputs, targets) arrays with an optional per-sample ``transform``;
    the base of the bundled and downloaded image datasets.

    ``data`` is kept as stored (uint8 images); ``transform`` maps one sample (or, if it
    has ``apply_batch``, a whole batch) to the network's input."""

    def __init__(self, data, targets, transform=None, target_transform=None):
        if len(data) != len(targets):
            raise ValueError(f"{type(self).__name__}: {len(data)} inputs but {len(targets)} targets")
        self.data, self.targets = data, targets
        self.transform, self.target_transform = transform, target_transform

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        x, y = self.data[index], self.targets[index]
        if self.transform is not None:
            x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        else:
            y = int(y)
        return x, y

    def _fetch_batch(self, indices):
        if (self.transform is not None and not hasattr(self.transform, "apply_batch")) or \
                self.target_transform is not None:
            return None  # fall back to per-sample __getitem__ + collate
        idx = numpy.asarray(indices, dtype=numpy.int64)
        x = self.data[idx]
        if self.transform is not None:
            x = self.transform.apply_batch(x)
        return x, numpy.asarray(self.targets[idx], dtype=numpy.int64)


class Subset(Dataset):
    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, list(indices)

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return [self.dataset[self.indices[i]] for i in idx]
        return self.dataset[self.indices[idx]]

    def __len__(self):
        return len(self.indices)

    def _fetch_batch(self, indices):
        fetch = getattr(self.dataset, "_fetch_batch", None)
        if fetch is None:
            return None
        return fetch([self.indices[int(i)] for i in indices])


class ConcatDataset(Dataset):
    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes, total = [], 0
        for d in self.datasets:
            total += len(d)
            self.cumulative_sizes.append(total)

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise IndexError("ConcatDataset: index out of range")
            idx += len(self)
        d = bisect.bisect_right(self.cumulative_sizes, idx)
        start = 0 if d == 0 else self.cumulative_sizes[d - 1]
        return self.datasets[d][idx - start]

    def _fetch_batch(self, indices):
        """One gather per part, put back in the batch's order; None (per-sample path)
        unless every part gathers and all return the same kind of field (NumPy arrays,
        or Tensors on one backend)."""
        fetches = [getattr(d, "_fetch_batch", None) for d in self.datasets]
        if any(f is None for f in fetches):
            return None
        idx = numpy.asarray(indices, dtype=numpy.int64)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"ConcatDataset: index out of range for {n} samples")
        idx = numpy.where(idx < 0, idx + n, idx)
        part = numpy.searchsorted(self.cumulative_sizes, idx, side="right")
        starts = numpy.asarray([0] + self.cumulative_sizes[:-1], dtype=numpy.int64)
        used = numpy.unique(part)
        got = [fetches[d](idx[part == d] - starts[d]) for d in used]
        if any(g is None or not isinstance(g, (tuple, list)) or len(g) != len(got[0]) for g in got):
            return None
        where = numpy.concatenate([numpy.flatnonzero(part == d) for d in used])
        back = numpy.empty_like(where)
        back[where] = numpy.arange(len(where))  # row k of the batch is row back[k] of the concatenation
        out = []
        for fields in zip(*got):
            if all(isinstance(f, numpy.ndarray) for f in fields):
                out.append(numpy.concatenate(fields)[back])
            elif all(isinstance(f, Tensor) and f.backend is fields[0].backend for f in fields):
                be = fields[0].backend
                cat = be.concat([f.array for f in fields], 0) if len(fields) > 1 else fields[0].array
                out.append(Tensor._make(be.getitem(cat, be.asarray(back)), be))
            else:
                return None
        return tuple(out)


def random_split(dataset, lengths, generator=None, seed=None):
    """Split into non-overlapping random Subsets of the given lengths (or fractions
    summing to 1, remainders spread round-robin as PyTorch). ``seed`` (or an int
    ``generator``) makes the split reproducible; otherwise it follows
    ``gradflow.manual_seed``."""
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1 and all(0 <= f <= 1 for f in lengths) \
            and not all(isinstance(f, int) for f in lengths):
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != n:
        raise ValueError(f"random_split: sum of input lengths ({sum(lengths)}) does not equal the "
                         f"length of the input dataset ({n})")
    perm = _permutation(n, seed if seed is not None else generator)
    out, offset = [], 0
    for k in lengths:
        out.append(Subset(dataset, perm[offset:offset + k].tolist()))
        offset += k
    return out


def _permutation(n, seed):
    if isinstance(seed, numpy.random.Generator):
        return seed.permutation(n)
    if hasattr(seed, "_rng"):  # a gradflow.Generator: draw from (and advance) its stream
        return seed._rng.permutation(n)
    if seed is None:
        be = current_backend()
        seed = int(be.to_numpy(be.randint(0, 2 ** 31 - 1, (), numpy.int64)))
    elif hasattr(seed, "initial_seed"):
        seed = seed.initial_seed()
    return numpy.random.default_rng(int(seed)).permutation(n)
