"""``DataLoader``: batches of a dataset as Tensors on the current backend.

Each epoch (each ``iter(loader)``) visits every sample exactly once -- in order, or
in a fresh random permutation when ``shuffle=True``; with ``seed`` the sequence of
permutations is reproducible. The last short batch is kept unless ``drop_last``.
Samples are collated like PyTorch's ``default_collate``: NumPy arrays, Python
numbers and Tensors are stacked into one Tensor per field, tuples/lists/dicts are
collated field by field.
"""
from __future__ import annotations

import collections.abc
import numbers

import numpy

from ..backends import current_backend, get_backend
from ..tensor import Tensor
from .dataset import _permutation


def _to_tensor(arr, be):
    arr = numpy.ascontiguousarray(arr)
    return Tensor._make(be.asarray(arr), be)


def default_collate(batch, backend=None):
    """Stack a list of samples into a batch (PyTorch's rules):

    * Tensors -> stacked Tensor; NumPy arrays/scalars -> stacked Tensor of their dtype;
    * Python floats -> float64 Tensor, ints -> int64, bools -> bool;
    * str/bytes -> the list as is; dicts -> dict of collated fields;
    * tuples/lists -> collated per position (namedtuples keep their type)."""
    be = get_backend(backend) if backend is not None else current_backend()
    if not batch:
        raise ValueError("default_collate: empty batch")
    elem = batch[0]
    if isinstance(elem, Tensor):
        if any(t.backend is not elem.backend for t in batch):
            raise RuntimeError("default_collate: samples are Tensors on different backends")
        arrs = [t.array for t in batch]
        try:
            return Tensor._make(elem.backend.stack(arrs, 0), elem.backend)
        except ValueError:
            raise RuntimeError(f"default_collate: stack expects each Tensor to be equal size, got "
                               f"shapes {sorted({t.shape for t in batch})}") from None
    if isinstance(elem, (numpy.ndarray, numpy.generic)):
        if isinstance(elem, numpy.ndarray) and elem.dtype.kind in "OUS":
            raise TypeError(f"default_collate: batch must contain numeric arrays; found dtype {elem.dtype}")
        try:
            return _to_tensor(numpy.stack([numpy.asarray(b) for b in batch]), be)
        except ValueError:
            raise RuntimeError(f"default_collate: stack expects each array to be equal size, got "
                               f"shapes {sorted({numpy.shape(b) for b in batch})}") from None
    if isinstance(elem, bool):
        return _to_tensor(numpy.array(batch, dtype=bool), be)
    if isinstance(elem, numbers.Integral):
        return _to_tensor(numpy.array(batch, dtype=numpy.int64), be)
    if isinstance(elem, numbers.Real):
        return _to_tensor(numpy.array(batch, dtype=numpy.float64), be)
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {k: default_collate([d[k] for d in batch], be) for k in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(s), be) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(e) != len(elem) for e in batch):
            raise RuntimeError("default_collate: each element in the list of the batch should be "
                               "of equal size")
        return [default_collate(list(s), be) for s in zip(*batch)]
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or "
                    f"lists; found {type(elem).__name__}")


def _as_batch(fetched, be):
    """Turn a dataset's ``_fetch_batch`` output into Tensors on ``be``."""
    if isinstance(fetched, Tensor):
        return fetched if fetched.backend is be else fetched.to(be)
    if isinstance(fetched, numpy.ndarray):
        return _to_tensor(fetched, be)
    if isinstance(fetched, (tuple, list)):
        return [_as_batch(f, be) for f in fetched]
    return fetched


class DataLoader:
    """``DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False, seed=None,
    collate_fn=None)``; iterate it once per epoch.

    ``seed`` fixes the shuffling sequence (epoch k of two loaders with the same seed
    see the same order); without it shuffling follows ``gradflow.manual_seed``.
    ``num_workers``/``pin_memory`` are accepted for PyTorch compatibility and ignored
    (loading runs in the calling thread). ``backend`` pins the batches' backend
    (default: the current backend when iterating)."""

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, generator=None, prefetch_factor=None,
                 persistent_workers=False, seed=None, backend=None):
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size <= 0):
            raise ValueError(f"DataLoader: batch_size should be a positive integer, got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, batch_size, shuffle, drop_last
        self.sampler, self.batch_sampler = sampler, batch_sampler
        self.collate_fn = collate_fn
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.generator = generator
        if seed is None and generator is not None and not hasattr(generator, "_rng"):
            seed = generator.initial_seed() if hasattr(generator, "initial_seed") else generator
        self.seed = seed
        self._rng = numpy.random.default_rng(seed) if seed is not None else None
        if seed is None and hasattr(generator, "_rng"):
            self._rng = generator._rng  # a gradflow.Generator: shuffles advance its stream
        self.backend = backend
        self.epoch = 0

    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self):
        n = len(self.dataset)
        if self.sampler is not None:
            return numpy.asarray(list(iter(self.sampler)), dtype=numpy.int64)
        if not self.shuffle:
            return numpy.arange(n)
        if self._rng is not None:
            return self._rng.permutation(n)
        return _permutation(n, None)

    def _batches(self):
        if self.batch_sampler is not None:
            for b in self.batch_sampler:
                yield list(b)
            return
        order = self._order()
        if self.batch_size is None:
            for i in order:
                yield int(i)
            return
        bs = self.batch_size
        stop = len(order) - (len(order) % bs if self.drop_last else 0)
        for start in range(0, stop, bs):
            yield order[start:start + bs]

    def __iter__(self):
        be = get_backend(self.backend) if self.backend is not None else current_backend()
        fetch = getattr(self.dataset, "_fetch_batch", None) if self.collate_fn is None else None
        collate = self.collate_fn or (lambda b: default_collate(b, be))
        self.epoch += 1
        for idx in self._batches():
            if isinstance(idx, int):  # batch_size=None: samples one by one, not collated
                yield self.dataset[idx]
                continue
            if fetch is not None:
                got = fetch(idx)
                if got is not None:
                    yield _as_batch(got, be)
                    continue
            yield collate([self.dataset[int(i)] for i in idx])


class Sampler:
    """Base class of samplers (PyTorch's ``torch.utils.data.Sampler``): subclasses define
    ``__iter__`` (indices) and usually ``__len__``."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler):
    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


def _sampler_rng(generator, seed):
    """A numpy Generator: ``generator``'s stream (a gradflow.Generator), a fixed ``seed``,
    or, with neither, one seeded from the current backend (follows gradflow.manual_seed)."""
    if generator is not None and hasattr(generator, "_rng"):
        return generator._rng
    if seed is None and generator is not None:
        seed = generator.initial_seed() if hasattr(generator, "initial_seed") else int(generator)
    if seed is None:
        be = current_backend()
        seed = int(be.to_numpy(be.randint(0, 2 ** 31 - 1, (), numpy.int64)))
    return numpy.random.default_rng(seed)


class RandomSampler(Sampler):
    def __init__(self, data_source, replacement=False, num_samples=None, generator=None, seed=None):
        self.data_source, self.replacement = data_source, replacement
        if num_samples is not None and (not isinstance(num_samples, int) or num_samples <= 0):
            raise ValueError(f"RandomSampler: num_samples should be a positive integer, got "
                             f"{num_samples!r}")
        self.num_samples = num_samples or len(data_source)
        self._rng = _sampler_rng(generator, seed)

    def __iter__(self):
        n = len(self.data_source)
        if self.replacement:
            return iter(self._rng.integers(0, n, self.num_samples).tolist())
        return iter(self._rng.permutation(n)[:self.num_samples].tolist())

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    def __init__(self, indices, generator=None, seed=None):
        self.indices = list(indices)
        self._rng = _sampler_rng(generator, seed)

    def __iter__(self):
        return iter([self.indices[i] for i in self._rng.permutation(len(self.indices))])

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """Indices ``0..len(weights)-1`` drawn with probability proportional to ``weights``
    (PyTorch's ``WeightedRandomSampler``; e.g. to balance classes)."""

    def __init__(self, weights, num_samples, replacement=True, generator=None, seed=None):
        w = numpy.asarray(weights.numpy() if isinstance(weights, Tensor) else weights,
                          dtype=numpy.float64).reshape(-1)
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError(f"WeightedRandomSampler: num_samples should be a positive integer, "
                             f"got {num_samples!r}")
        if w.size == 0 or (w < 0).any() or not numpy.isfinite(w).all() or w.sum() <= 0:
            raise ValueError("WeightedRandomSampler: weights must be finite, non-negative and "
                             "not all zero")
        if not replacement and num_samples > int((w > 0).sum()):
            raise ValueError(f"WeightedRandomSampler: cannot draw {num_samples} samples without "
                             f"replacement from {int((w > 0).sum())} non-zero weights")
        self.weights, self.num_samples, self.replacement = w, num_samples, replacement
        self._rng = _sampler_rng(generator, seed)

    def __iter__(self):
        p = self.weights / self.weights.sum()
        return iter(self._rng.choice(len(p), self.num_samples, replace=self.replacement,
                                     p=p).tolist())

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    def __init__(self, sampler, batch_size, drop_last):
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self):
        batch = []
        for i in self.sampler:
            batch.append(i)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
