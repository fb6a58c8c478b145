"""3-D (volumetric, NCDHW) convolution and pooling layers (PyTorch's ``Conv3d``,
``ConvTranspose3d``, ``MaxPool3d``, ``AvgPool3d`` and the adaptive pools), thin
wrappers over :mod:`gradflow.nn.functional` with PyTorch's attribute names and
initialisation. ``BatchNorm3d`` lives with the other batch norms in ``layers``."""
from __future__ import annotations

import math

from ..creation import empty
from . import functional as F
from . import init
from .layers import _AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd, _factory
from .module import Module
from .parameter import Parameter


def _triple(v, name, cls):
    if isinstance(v, (tuple, list)):
        if len(v) != 3:
            raise ValueError(f"{cls}: {name} must be an int or three ints, got {v!r}")
        return tuple(int(i) for i in v)
    return (int(v),) * 3


class _ConvNd3(Module):
    def _setup(self, cls, in_channels, out_channels, kernel_size, stride, padding, dilation,
               groups, bias, padding_mode, device, dtype, transposed, output_padding=0):
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{cls}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        if padding_mode != "zeros":
            raise NotImplementedError(f"{cls}: padding_mode {padding_mode!r} is not supported "
                                      f"(only 'zeros')")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), \
            int(groups)
        self.kernel_size = _triple(kernel_size, "kernel_size", cls)
        self.stride, self.dilation = _triple(stride, "stride", cls), _triple(dilation, "dilation", cls)
        if isinstance(padding, str):
            if transposed or padding not in ("valid", "same"):
                allowed = "" if transposed else ", 'valid' or 'same'"
                raise ValueError(f"{cls}: padding must be an int or three ints{allowed}, "
                                 f"got {padding!r}")
            if padding == "same" and self.stride != (1, 1, 1):
                raise ValueError(f"{cls}: padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _triple(padding, "padding", cls)
        self.output_padding = _triple(output_padding, "output_padding", cls)
        self.padding_mode, self.transposed = padding_mode, transposed
        kw = _factory(device, dtype)
        shape = (in_channels, out_channels // groups) if transposed else \
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

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
            f"stride={self.stride}"
        if self.padding != (0, 0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv3d(_ConvNd3):
    """3-D convolution over (N, C, D, H, W); weight (out_channels, in_channels/groups,
    kD, kH, kW)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        self._setup("Conv3d", in_channels, out_channels, kernel_size, stride, padding, dilation,
                    groups, bias, padding_mode, device, dtype, transposed=False)

    def forward(self, x):
        return F.conv3d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class ConvTranspose3d(_ConvNd3):
    """Transposed 3-D convolution; weight (in_channels, out_channels/groups, kD, kH, kW)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__()
        self._setup("ConvTranspose3d", in_channels, out_channels, kernel_size, stride, padding,
                    dilation, groups, bias, padding_mode, device, dtype, transposed=True,
                    output_padding=output_padding)

    def forward(self, x, output_size=None):
        opad = self.output_padding
        if output_size is not None:
            size = [int(v) for v in output_size][-3:]
            opad = []
            for i in range(3):
                lo = ((x.shape[x.ndim - 3 + i] - 1) * self.stride[i] - 2 * self.padding[i]
                      + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
                if not lo <= size[i] <= lo + self.stride[i] - 1:
                    raise ValueError(f"ConvTranspose3d: requested output size {tuple(size)} is "
                                     f"not reachable from input of shape {x.shape}")
                opad.append(size[i] - lo)
        return F.conv_transpose3d(x, self.weight, self.bias, self.stride, self.padding,
                                  tuple(opad), self.groups, self.dilation)


class MaxPool3d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, x):
        return F.max_pool3d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, " \
               f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"


class AvgPool3d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode, self.count_include_pad = padding, ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x):
        return F.avg_pool3d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    _fn = "adaptive_avg_pool3d"


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    _fn = "adaptive_max_pool3d"
