"""Normalisation layers beyond batch norm: LayerNorm, GroupNorm, InstanceNorm2d
(PyTorch's names, defaults and initialisation: weight 1, bias 0). BatchNorm lives
with the other regularisation layers in :mod:`gradflow.nn.layers`."""
from __future__ import annotations

from ..creation import empty
from . import functional as F
from . import init
from .layers import _factory
from .module import Module
from .parameter import Parameter


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
