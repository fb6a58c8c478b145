"""``InstanceNorm2d``: normalise each (sample, channel) plane over H, W."""
from __future__ import annotations

from ...creation import empty
from .. import functional as F, init
from ..parameter import Parameter
from .module import Module
from .utils import factory_kwargs


class InstanceNorm2d(Module):
    """Per-sample, per-channel normalisation over H, W; ``affine=False`` by default and
    no running statistics (PyTorch's defaults)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, device=None, dtype=None):
        super().__init__()
        if track_running_stats:
            raise NotImplementedError("InstanceNorm2d: track_running_stats=True is not supported")
        self.num_features, self.eps, self.affine = num_features, eps, affine
        kw = factory_kwargs(device, dtype)
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
