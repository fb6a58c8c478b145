"""Memory-format constants (PyTorch's ``torch.channels_last`` etc.).

gradflow stays NCHW: every kernel assumes row-major (C-contiguous) arrays, and there
is no channels-last (NHWC-strided) storage. ``.to(memory_format=...)``,
``.contiguous(memory_format=...)`` and ``.clone(memory_format=...)`` accept these
constants as *layout hints and ignore them* (a deliberate no-op), so PyTorch programs
that ask for channels-last run unchanged and compute the same values. What a tensor
really looks like in memory is reported truthfully by ``Tensor.stride()`` and
``Tensor.is_contiguous(memory_format=...)``: after ``x.contiguous(memory_format=
gradflow.channels_last)`` a 4-D ``x`` is still NCHW, so ``x.is_contiguous(memory_format=
gradflow.channels_last)`` is False where PyTorch says True.
"""
from __future__ import annotations


class memory_format:
    """A memory-layout tag (PyTorch's ``torch.memory_format``)."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"torch.{self.name}"

    def __reduce__(self):  # pickles as the module-level constant (a singleton)
        return self.name


contiguous_format = memory_format("contiguous_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")
preserve_format = memory_format("preserve_format")


def check(fmt, op):
    """``fmt`` if it is one of the constants above (or None), else a TypeError."""
    if fmt is None or isinstance(fmt, memory_format):
        return fmt
    raise TypeError(f"{op}: memory_format must be one of gradflow.contiguous_format, "
                    f"channels_last, channels_last_3d or preserve_format, got {fmt!r}")


def strides_match(shape, strides, order):
    """True if ``strides`` (in elements) are the dense strides of ``shape`` laid out with
    dims ordered ``order`` (outermost first); dims of size 1 may have any stride (as
    PyTorch's contiguity checks)."""
    expected = 1
    for d in reversed(order):
        if shape[d] != 1 and strides[d] != expected:
            return False
        expected *= shape[d]
    return True
