"""More of ``torch.nn``'s everyday layers: LayerNorm, GroupNorm, InstanceNorm2d,
AdaptiveMaxPool2d, ParameterDict and a few composed activations. Same conventions
as :mod:`gradflow.nn.layers` (PyTorch's attribute names, defaults and init)."""
from __future__ import annotations

from collections import OrderedDict

from ..creation import empty
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


def _factory(device=None, dtype=None):
    return {k: v for k, v in (("device", device), ("dtype", dtype)) if v is not None}


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` dims; ``weight`` starts at 1 and
    ``bias`` at 0 (``elementwise_affine=False``: neither; ``bias=False``: no bias)."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps = tuple(int(s) for s in ns), eps
        self.elementwise_affine = elementwise_affine
        kw = _factory(device, dtype)
        self.weight = Parameter(empty(*self.normalized_shape, **kw)) if elementwise_affine else None
        self.bias = Parameter(empty(*self.normalized_shape, **kw)) \
            if elementwise_affine and bias else None
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, " \
               f"elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None):
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = \
            num_groups, num_channels, eps, affine
        kw = _factory(device, dtype)
        self.weight = Parameter(empty(num_channels, **kw)) if affine else None
        self.bias = Parameter(empty(num_channels, **kw)) if affine else None
        self.reset_parameters()

    def reset_parameters(self):
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def forward(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm: expected input (N, {self.num_channels}, ...), got "
                             f"shape {x.shape}")
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class InstanceNorm2d(Module):
    """Per-sample, per-channel normalisation over H, W; ``affine=False`` by default and
    no running statistics (PyTorch's defaults)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, device=None, dtype=None):
        super().__init__()
        if track_running_stats:
            raise NotImplementedError("InstanceNorm2d: track_running_stats=True is not supported")
        self.num_features, self.eps, self.affine = num_features, eps, affine
        kw = _factory(device, dtype)
        self.weight = Parameter(empty(num_features, **kw)) if affine else None
        self.bias = Parameter(empty(num_features, **kw)) if affine else None
        if affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def forward(self, x):
        if x.ndim not in (3, 4) or x.shape[-3] != self.num_features:
            raise ValueError(f"InstanceNorm2d: expected input (N, {self.num_features}, H, W), "
                             f"got shape {x.shape}")
        if x.ndim == 3:
            return F.instance_norm(x.unsqueeze(0), weight=self.weight, bias=self.bias,
                                   eps=self.eps).squeeze(0)
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, affine={self.affine}"


class AdaptiveMaxPool2d(Module):
    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, x):
        return F.adaptive_max_pool2d(x, self.output_size, self.return_indices)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class ParameterDict(Module):
    """Parameters by name (PyTorch's ``nn.ParameterDict``); tensors are wrapped in
    ``Parameter``."""

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __setitem__(self, key, value):
        self.register_parameter(key, value if isinstance(value, Parameter) or value is None
                                else Parameter(value))

    def __getitem__(self, key):
        return self._parameters[key]

    def __delitem__(self, key):
        del self._parameters[key]

    def __contains__(self, key):
        return key in self._parameters

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters)

    def keys(self):
        return self._parameters.keys()

    def values(self):
        return self._parameters.values()

    def items(self):
        return self._parameters.items()

    def update(self, parameters):
        items = parameters.items() if hasattr(parameters, "items") else parameters
        for k, v in (OrderedDict(items) if not isinstance(parameters, dict) else items):
            self[k] = v


def _activation(name, fn, doc):
    def forward(self, x):
        return fn(x)

    def __init__(self, inplace=False):
        Module.__init__(self)

    return type(name, (Module,), {"forward": forward, "__init__": __init__, "__doc__": doc})


LogSigmoid = _activation("LogSigmoid", F.logsigmoid, "log(sigmoid(x)), stable.")
Hardsigmoid = _activation("Hardsigmoid", F.hardsigmoid, "clip(x / 6 + 1/2, 0, 1).")
Hardswish = _activation("Hardswish", F.hardswish, "x * hardsigmoid(x).")
Mish = _activation("Mish", F.mish, "x * tanh(softplus(x)).")
Softsign = _activation("Softsign", F.softsign, "x / (1 + |x|).")


# -- 1-D convolution and pooling (N, C, L) ---------------------------------------------------------
class Conv1d(Module):
    """1-D convolution over (N, C, L); weight (out_channels, in_channels/groups, k)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv1d: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        if padding_mode != "zeros":
            raise NotImplementedError(f"Conv1d: padding_mode {padding_mode!r} is not supported "
                                      f"(only 'zeros')")
        one = (lambda v: tuple(v) if isinstance(v, (tuple, list)) else (int(v),))
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.dilation = one(kernel_size), one(stride), one(dilation)
        self.padding = padding if isinstance(padding, str) else one(padding)
        self.padding_mode = padding_mode
        kw = _factory(device, dtype)
        self.weight = Parameter(empty(out_channels, in_channels // groups, self.kernel_size[0], **kw))
        self.bias = Parameter(empty(out_channels, **kw)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        import math
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
               f"stride={self.stride}, padding={self.padding}"


class MaxPool1d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def forward(self, x):
        return F.max_pool1d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)


class AvgPool1d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, x):
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


class AdaptiveAvgPool1d(Module):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool1d(x, self.output_size)


class AdaptiveMaxPool1d(Module):
    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, x):
        return F.adaptive_max_pool1d(x, self.output_size, self.return_indices)
