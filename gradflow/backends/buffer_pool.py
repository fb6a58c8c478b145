"""A bounded pool of large NumPy buffers that the numba backend recycles.

Why: glibc serves multi-megabyte blocks with ``mmap`` and returns them with
``munmap``, so a fresh conv buffer costs a page fault per 4 KB on first touch --
about as much as filling it. Reusing the previous step's buffers avoids that.

How a buffer is known to be free: the pool hands out views of flat buffers it
keeps in lists; a buffer whose reference count is the baseline ``_FREE_REFS``
(the pool's list, the loop variable, ``getrefcount``'s argument) is referenced by
nobody else -- no array, no view (views reference their base) -- so arrays still
held by the graph or the user are never handed out twice.

The bound (issue 16: with batch sizes varying 1-64 the old pool only grew):

* the pool holds at most ``max_bytes`` (buffers in use and idle together);
  when a new buffer would not fit, idle buffers are dropped least recently used
  first, so what it holds follows the shapes in use now, not every shape seen;
* a buffer idle for ``idle_s`` seconds is dropped at the next pool miss;
* :meth:`empty_cache` (``gradflow.backends.empty_cache()``) drops every idle
  buffer and hands freed heap memory back to the OS (``malloc_trim`` on glibc);
* :meth:`info` reports the bytes held, in use and idle, hits, misses and trims.

So the pool adds at most ``max_bytes`` to a process's memory on top of the arrays
the program itself holds.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
import time

import numpy


def _free_refcount():
    """What ``sys.getrefcount`` reports, in :meth:`BufferPool.empty`'s loop, for a
    pooled buffer nobody else references (3 on CPython 3.10-3.12: the list, the loop
    variable, the call's argument) -- measured, not assumed, so that an interpreter
    that counts differently can only make the pool reuse less, never too much."""
    bufs = [numpy.empty(1)]
    for b in bufs:
        return sys.getrefcount(b)


_FREE_REFS = _free_refcount()


def _malloc_trim():
    """Return freed heap memory to the OS where the C library can (glibc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return True


class BufferPool:
    def __init__(self, min_bytes=1 << 18, max_bytes=64 << 20, idle_s=10.0, per_shape=8):
        #: arrays smaller than this are plain ``numpy.empty``
        self.min_bytes = min_bytes
        #: the most the pool holds (in use + idle)
        self.max_bytes = max_bytes
        #: idle buffers unused this long are dropped at the next miss
        self.idle_s = idle_s
        #: at most this many buffers of one (dtype, size)
        self.per_shape = per_shape
        self._bufs = {}        # (dtype, size) -> [flat buffer, ...]
        self._used = {}        # (dtype, size) -> [perf_counter of last hand-out, ...]
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = self.trimmed_bytes = 0

    def empty(self, shape, dtype):
        """An uninitialised array of ``shape``/``dtype``, recycled when large."""
        dtype = numpy.dtype(dtype)
        if isinstance(shape, int):
            shape = (shape,)
        size = 1
        for d in shape:
            size *= d
        nbytes = size * dtype.itemsize
        if nbytes < self.min_bytes:
            return numpy.empty(shape, dtype)
        key = (dtype, size)
        now = time.perf_counter()
        with self._lock:
            bufs = self._bufs.get(key)
            if bufs is not None:
                i = 0
                for b in bufs:
                    if sys.getrefcount(b) == _FREE_REFS:
                        self._used[key][i] = now
                        self.hits += 1
                        return b.reshape(shape)
                    i += 1
            self.misses += 1
            b = bufs = None                  # no stray reference while idle buffers are counted
            self._trim(now - self.idle_s, None)
            if self._bytes + nbytes > self.max_bytes:
                self._trim(None, self._bytes + nbytes - self.max_bytes)
            b = numpy.empty(size, dtype)
            if (self._bytes + nbytes <= self.max_bytes
                    and len(self._bufs.get(key, ())) < self.per_shape):
                self._bufs.setdefault(key, []).append(b)
                self._used.setdefault(key, []).append(now)
                self._bytes += nbytes
        return b.reshape(shape)

    def _idle(self):
        """[(last use, key, buffer)] of the buffers nobody references."""
        out = []
        for key, bufs in self._bufs.items():
            used = self._used[key]
            i = 0
            for b in bufs:
                if sys.getrefcount(b) == _FREE_REFS:
                    out.append((used[i], key, i))
                i += 1
        return out

    def _trim(self, older_than, need):
        """Drop idle buffers last used before ``older_than`` (None: any), oldest first,
        until ``need`` bytes are dropped (None: all that qualify). Lock held."""
        cand = sorted(self._idle(), key=lambda t: t[0])
        drop = {}
        freed = 0
        for t, key, i in cand:
            if need is not None and freed >= need:
                break
            if older_than is not None and t >= older_than:
                break
            drop.setdefault(key, set()).add(i)
            freed += self._bufs[key][i].nbytes
        for key, idx in drop.items():
            self._bufs[key] = [b for j, b in enumerate(self._bufs[key]) if j not in idx]
            self._used[key] = [u for j, u in enumerate(self._used[key]) if j not in idx]
            if not self._bufs[key]:
                del self._bufs[key], self._used[key]
        self._bytes -= freed
        self.trimmed_bytes += freed
        return freed

    def empty_cache(self):
        """Drop every idle buffer (buffers in use stay until their arrays die); returns
        the bytes dropped."""
        with self._lock:
            freed = self._trim(None, None)
        _malloc_trim()
        return freed

    def info(self):
        with self._lock:
            idle = sum(self._bufs[k][i].nbytes for _, k, i in self._idle())
            n = sum(len(v) for v in self._bufs.values())
            return {"pool_bytes": self._bytes, "pool_idle_bytes": idle,
                    "pool_in_use_bytes": self._bytes - idle, "pool_buffers": n,
                    "pool_max_bytes": self.max_bytes, "pool_idle_s": self.idle_s,
                    "pool_hits": self.hits, "pool_misses": self.misses,
                    "pool_trimmed_bytes": self.trimmed_bytes}
