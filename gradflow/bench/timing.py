"""Timing one workload: first call, warm-up, then timed repeats.

Every timed call is bracketed by ``synchronize()`` so asynchronous (GPU) work
queued before the region is not charged to it and work queued inside it is:

    sync(); t0 = clock(); fn(); sync(); t1 = clock()

The first call is timed on its own (it includes JIT compilation, kernel
caching, allocator growth) and is never part of the statistics. Warm-up calls
are untimed. A time budget bounds slow cases: after ``min_repeat`` timed calls
the loop stops once the timed calls have used ``budget_s`` seconds, and warm-up
stops early once it (counting the first call) has used half of it.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field


def _noop() -> None:
    pass


def quantile(sorted_xs: list[float], q: float) -> float:
    """Linear-interpolated quantile of an already sorted list (NumPy's default method)."""
    if not sorted_xs:
        return math.nan
    pos = (len(sorted_xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


@dataclass
class Timing:
    """Seconds. ``times`` are the timed repeats in call order."""
    first_call: float
    times: list[float] = field(default_factory=list)
    warmup: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else math.nan

    @property
    def q1(self) -> float:
        return quantile(sorted(self.times), 0.25)

    @property
    def q3(self) -> float:
        return quantile(sorted(self.times), 0.75)

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @property
    def min(self) -> float:
        return min(self.times) if self.times else math.nan


def measure(fn, *, synchronize=None, warmup: int = 3, repeat: int = 20,
            budget_s: float | None = None, min_repeat: int = 3,
            clock=time.perf_counter) -> Timing:
    """Time ``fn()``: one first call, up to ``warmup`` untimed calls, up to ``repeat``
    timed calls, each bracketed by ``synchronize()`` (a backend's, or
    ``torch.cuda.synchronize``; a no-op when ``None``)."""
    sync = synchronize or _noop
    repeat = max(1, int(repeat))
    min_repeat = max(1, min(int(min_repeat), repeat))

    def timed() -> float:
        sync()
        t0 = clock()
        fn()
        sync()
        return clock() - t0

    first = timed()
    done_warmup = 0
    spent = first  # a slow first call already warmed up: it counts against the warm-up budget
    for _ in range(max(0, int(warmup))):
        if budget_s is not None and spent >= budget_s / 2:
            break
        t0 = time.perf_counter()
        fn()
        sync()
        spent += time.perf_counter() - t0
        done_warmup += 1
    times: list[float] = []
    for i in range(repeat):
        times.append(timed())
        if budget_s is not None and i + 1 >= min_repeat and sum(times) >= budget_s:
            break
    return Timing(first_call=first, times=times, warmup=done_warmup)
