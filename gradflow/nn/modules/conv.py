"""Convolution modules over 1-, 2- and 3-d inputs (PyTorch's ``Conv1d/2d/3d``,
``ConvTranspose2d/3d``): one N-d base holds the constructor checks, the attributes
(tuples of N ints, as PyTorch), the weight and its initialisation; each class names its
dimension and functional.

Weights: ``(out_channels, in_channels/groups, *kernel_size)``, transposed
``(in_channels, out_channels/groups, *kernel_size)``; initialised as PyTorch:
``kaiming_uniform_(a=sqrt(5))`` and a bias ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.
"""
from __future__ import annotations

import math

from ...creation import empty
from ...geometry import int_tuple
from .. import functional as F, init
from ..parameter import Parameter
from .module import Module
from .utils import check_sizes, factory_kwargs

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """Subclasses set ``_n`` (the spatial dims), ``_fn`` (the functional's name in
    :mod:`gradflow.nn.functional`), ``_transposed`` and the padding modes they support."""

    _n, _fn, _transposed = 2, "conv2d", False
    _padding_modes = ("zeros",)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None,
                 output_padding=0):
        super().__init__()
        cls, n = type(self).__name__, self._n
        check_sizes(cls, in_channels=in_channels, out_channels=out_channels, groups=groups)
        if groups <= 0:
            raise ValueError(f"{cls}: groups must be a positive integer, got {groups}")
        for what, c in (("in_channels", in_channels), ("out_channels", out_channels)):
            if c % groups:
                raise ValueError(f"{cls}: {what} ({c}) must be divisible by groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{cls}: padding_mode must be 'zeros', 'reflect', 'replicate' or "
                             f"'circular', got {padding_mode!r}")
        if padding_mode not in self._padding_modes:
            error = ValueError if self._transposed else NotImplementedError  # as PyTorch
            raise error(f"{cls}: padding_mode {padding_mode!r} is not supported (only 'zeros')")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), \
            int(groups)
        self.kernel_size = int_tuple(kernel_size, n, "kernel_size", cls)
        if min(self.kernel_size) < 1:
            raise ValueError(f"{cls}: kernel_size must be >= 1, got {kernel_size!r}")
        self.stride = int_tuple(stride, n, "stride", cls)
        self.dilation = int_tuple(dilation, n, "dilation", cls)
        if isinstance(padding, str):
            if self._transposed or padding not in ("valid", "same"):
                allowed = "" if self._transposed else ", 'valid' or 'same'"
                raise ValueError(f"{cls}: padding must be an int or {n} ints{allowed}, got "
                                 f"{padding!r}")
            if padding == "same" and self.stride != (1,) * n:
                raise ValueError(f"{cls}: padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = int_tuple(padding, n, "padding", cls)
        self.output_padding = int_tuple(output_padding, n, "output_padding", cls)
        self.padding_mode, self.transposed = padding_mode, self._transposed
        kw = factory_kwargs(device, dtype)
        shape = (in_channels, out_channels // groups) if self._transposed else \
            (out_channels, in_channels // groups)
        self.weight = Parameter(empty(*shape, *self.kernel_size, **kw))
        self.bias = Parameter(empty(out_channels, **kw)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        fn = getattr(F, self._fn)
        if self.padding_mode != "zeros":  # pad explicitly, then convolve unpadded (PyTorch)
            return fn(F.pad(x, self._mode_pad(), mode=self.padding_mode), self.weight, self.bias,
                      self.stride, 0, self.dilation, self.groups)
        return fn(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def _mode_pad(self):
        """F.pad's (last-dim left, right, next-to-last left, right, ...) for a non-zeros
        padding_mode; 'same' puts the odd extra element after, as PyTorch."""
        if self.padding == "valid":
            sides = [(0, 0)] * self._n
        elif self.padding == "same":
            tot = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            sides = [(t // 2, t - t // 2) for t in tot]
        else:
            sides = [(p, p) for p in self.padding]
        return tuple(v for side in reversed(sides) for v in side)

    def extra_repr(self):
        n = self._n
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
            f"stride={self.stride}"
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L); weight (out_channels, in_channels/groups, k)."""
    _n, _fn = 1, "conv1d"


class Conv2d(_ConvNd):
    """2-D convolution over NCHW input; weight (out_channels, in_channels/groups, kH, kW).
    ``padding_mode`` 'reflect' / 'replicate' / 'circular' pads with F.pad first."""
    _n, _fn = 2, "conv2d"
    _padding_modes = _PADDING_MODES


class Conv3d(_ConvNd):
    """3-D convolution over (N, C, D, H, W); weight (out_channels, in_channels/groups,
    kD, kH, kW)."""
    _n, _fn = 3, "conv3d"


class _ConvTransposeNd(_ConvNd):
    """The transposed convolutions: ``forward(x, output_size=None)`` as PyTorch, where
    ``output_size`` picks the output_padding."""
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype, output_padding)

    def _size_range(self, x, top):
        """The smallest (top=0) or largest (top=1) reachable output size per dim."""
        n = self._n
        return [(x.shape[x.ndim - n + d] - 1) * self.stride[d] - 2 * self.padding[d]
                + self.dilation[d] * (self.kernel_size[d] - 1) + 1 + top * (self.stride[d] - 1)
                for d in range(n)]

    def _output_padding(self, x, output_size):
        """PyTorch's rule: the output_padding that makes the output ``output_size`` (the
        last N entries of a full size, or the N spatial sizes); each must lie in
        [min, min + stride - 1] where min is the size without output_padding."""
        if output_size is None:
            return self.output_padding
        n, cls = self._n, type(self).__name__
        size = [int(v) for v in output_size]
        if len(size) == x.ndim:
            size = size[-n:]
        if len(size) != n:
            raise ValueError(f"{cls}: output_size must have {n} or {x.ndim} elements (the "
                             f"spatial sizes or a full size), got {tuple(output_size)}")
        lo, hi = self._size_range(x, 0), self._size_range(x, 1)
        if not all(a <= s <= b for a, s, b in zip(lo, size, hi)):
            raise ValueError(f"{cls}: requested an output size of {tuple(size)} for input of "
                             f"shape {x.shape}, but valid sizes range from {tuple(lo)} to "
                             f"{tuple(hi)} (for an input of {tuple(x.shape[-n:])})")
        return tuple(s - a for s, a in zip(size, lo))

    def forward(self, x, output_size=None):
        return getattr(F, self._fn)(x, self.weight, self.bias, self.stride, self.padding,
                                    self._output_padding(x, output_size), self.groups,
                                    self.dilation)


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-D convolution; weight (in_channels, out_channels/groups, k)."""
    _n, _fn = 1, "conv_transpose1d"


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-D convolution; weight (in_channels, out_channels/groups, kH, kW),
    initialised as PyTorch (the same rule as Conv2d on this weight shape)."""
    _n, _fn = 2, "conv_transpose2d"


class ConvTranspose3d(_ConvTransposeNd):
    """Transposed 3-D convolution; weight (in_channels, out_channels/groups, kD, kH, kW)."""
    _n, _fn = 3, "conv_transpose3d"
