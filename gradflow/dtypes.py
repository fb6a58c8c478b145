"""dtype names and the promotion rules of gradflow (stricter than NumPy's).

* float32 is the default floating dtype; float64 only when asked for.
* A Python scalar takes the tensor's dtype (``float32 * 0.5`` stays float32);
  an integer tensor meeting a Python float becomes the default float dtype.
* Integer/bool meeting float takes the float dtype (as PyTorch).
* float32 meeting float64 is an error, never a silent promotion.
"""
from __future__ import annotations

import numpy

float32 = numpy.dtype("float32")
float64 = numpy.dtype("float64")
float16 = numpy.dtype("float16")
int8 = numpy.dtype("int8")
int16 = numpy.dtype("int16")
int32 = numpy.dtype("int32")
int64 = numpy.dtype("int64")
uint8 = numpy.dtype("uint8")
bool_ = numpy.dtype("bool")
# PyTorch spellings
float = float32  # noqa: A001 - mirrors torch.float
double = float64
long = int64
int = int32  # noqa: A001 - mirrors torch.int
half = float16

_default_float = float32


def get_default_dtype():
    return _default_float


def set_default_dtype(dtype):
    global _default_float
    dt = numpy.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {dt}")
    _default_float = dt


def as_dtype(dtype):
    """Normalise a dtype-like (numpy dtype, type, string) or ``None``."""
    if dtype is None:
        return None
    try:
        return numpy.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}; use e.g. gradflow.float32, float64, int64") from None


def _ragged_where(data):
    """``(path, length, expected)`` of the first nested list/tuple whose length differs
    from its siblings' (or that mixes lists with scalars), found breadth-first without
    recursion; None when the nesting is rectangular."""
    level = [((), data)]
    while level:
        seqs = [(p, v) for p, v in level if isinstance(v, (list, tuple))]
        if not seqs:
            return None
        if len(seqs) != len(level):  # lists next to scalars at the same depth
            p, v = next((p, v) for p, v in level if not isinstance(v, (list, tuple)))
            return p, "a scalar", f"a sequence of length {len(seqs[0][1])}"
        n = len(seqs[0][1])
        for p, v in seqs:
            if len(v) != n:
                return p, f"length {len(v)}", f"length {n} like {_path(seqs[0][0])}"
        level = [(p + (i,), x) for p, v in seqs for i, x in enumerate(v)]
    return None


def _path(p):
    return "data" + "".join(f"[{i}]" for i in p)


def host_array(data, dtype=None, op="tensor"):
    """``numpy.array(data, dtype)`` for tensor construction; ragged nested sequences
    raise a ValueError that names the first offending element."""
    try:
        return numpy.array(data, dtype=dtype)
    except ValueError:
        where = _ragged_where(data) if isinstance(data, (list, tuple)) else None
        if where is None:
            raise
        p, got, want = where
        raise ValueError(f"{op}: ragged nested sequence: {_path(p)} is {got}, expected {want}; "
                         f"every list at one depth must have the same length") from None


def infer_dtype(data):
    """dtype for ``gradflow.tensor(data)``: floats -> default float, ints -> int64,
    bools -> bool; NumPy arrays keep their dtype."""
    if isinstance(data, numpy.ndarray) or hasattr(data, "__cuda_array_interface__"):
        return None
    arr = host_array(data)
    if arr.dtype.kind == "f":
        return _default_float
    if arr.dtype.kind in "iu":
        return int64
    if arr.dtype.kind == "b":
        return bool_
    raise TypeError(f"tensor: cannot make a tensor from data of dtype {arr.dtype}")


def result_dtype(op, a, b):
    """dtype of a binary op between two dtypes under the rules above."""
    if a == b:
        return a
    fa, fb = a.kind == "f", b.kind == "f"
    if fa and fb:
        raise TypeError(
            f"{op}: operands have dtypes {a} and {b}; gradflow never promotes silently -- "
            f"convert one with .to({a}) / .double() / .float()")
    if fa:
        return a
    if fb:
        return b
    return numpy.promote_types(a, b)


def finfo(dtype=None):
    """Machine limits of a float dtype (``.eps .max .min .tiny``), NumPy's ``finfo``."""
    return numpy.finfo(as_dtype(dtype) or get_default_dtype())


def iinfo(dtype):
    return numpy.iinfo(as_dtype(dtype))
