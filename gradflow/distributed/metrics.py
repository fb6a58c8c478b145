"""Global metrics from per-rank ones."""
from __future__ import annotations

from .. import dtypes
from ..creation import tensor
from .group import ReduceOp, all_reduce, get_world_size, is_initialized


def weighted_mean(values, weight):
    """The means over all ranks of per-rank means ``values`` (a sequence of floats), each
    rank weighted by its sample count ``weight``: what one process over all the samples
    would report. Without an initialized group the values come back unchanged."""
    values = [float(v) for v in values]
    if not is_initialized() or get_world_size() == 1:
        return values
    t = tensor([v * weight for v in values] + [float(weight)], dtype=dtypes.float64, backend="numpy")
    all_reduce(t, ReduceOp.SUM)
    sums = t.tolist()
    total = sums[-1]
    return [s / total if total else float("nan") for s in sums[:-1]]
