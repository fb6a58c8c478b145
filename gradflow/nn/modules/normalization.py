"""``LayerNorm``, ``GroupNorm`` and ``LocalResponseNorm`` (PyTorch's names, defaults
and initialisation: weight 1, bias 0), and ``LocalContrastNorm2d`` (Jarrett et al.
2009; see :mod:`gradflow.ops.contrast`)."""
from __future__ import annotations

from ...creation import empty
from ...ops.contrast import _check_options, local_contrast_norm
from .. import functional as F, init
from ..parameter import Parameter
from .module import Module
from .utils import check_sizes, factory_kwargs


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` dims; ``weight`` starts at 1 and
    ``bias`` at 0 (``elementwise_affine=False``: neither; ``bias=False``: no bias)."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps = tuple(int(s) for s in ns), eps
        self.elementwise_affine = elementwise_affine
        kw = factory_kwargs(device, dtype)
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


class RMSNorm(LayerNorm):
    """``x / sqrt(mean(x^2) + eps) * weight`` over the trailing ``normalized_shape``
    dims; ``weight`` starts at 1 (``eps=None``: the dtype's machine epsilon); no bias."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None,
                 dtype=None):
        super().__init__(normalized_shape, eps, elementwise_affine, bias=False, device=device,
                         dtype=dtype)

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)


class GroupNorm(Module):
    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None):
        super().__init__()
        check_sizes("GroupNorm", 1, num_groups=num_groups)
        check_sizes("GroupNorm", num_channels=num_channels)
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = \
            num_groups, num_channels, eps, affine
        kw = factory_kwargs(device, dtype)
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


class LocalResponseNorm(Module):
    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x):
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class LocalContrastNorm2d(Module):
    """``local_contrast_norm`` as a layer for (N, C, H, W) input; no parameters.

    ``LocalContrastNorm2d(9, 2.0)``: a 9x9 Gaussian window of standard deviation 2."""

    def __init__(self, size=9, sigma=2.0, divisive=True, floor="mean", eps=1e-4):
        super().__init__()
        _check_options("LocalContrastNorm2d", size, sigma, floor, eps)
        self.size, self.sigma, self.divisive, self.floor, self.eps = size, sigma, divisive, floor, eps

    def forward(self, x):
        return local_contrast_norm(x, self.size, self.sigma, self.divisive, self.floor, self.eps)

    def extra_repr(self):
        return (f"{self.size}, sigma={self.sigma}, divisive={self.divisive}, "
                f"floor={self.floor!r}")
