"""``gradflow.nn.functional`` (PyTorch's ``F``): the differentiable building blocks
of networks. conv2d, the poolings and cross_entropy are primitives with
hand-written backward passes calling backend kernels; the rest compose ops."""
from __future__ import annotations

import functools

# the primitives and ops re-exported under PyTorch's ``F`` names
from ..ops import elementwise as _ew
from ..ops.attention import scaled_dot_product_attention  # noqa: F401
from ..ops.contrast import local_contrast_norm  # noqa: F401
from ..ops.conv import conv2d, conv_transpose2d  # noqa: F401
from ..ops.elementwise import erf as _erf, logsigmoid, softsign, where as _where  # noqa: F401
from ..ops.fold import unfold, fold  # noqa: F401
from ..ops.linalg import linear  # noqa: F401
from ..ops.loss import (cross_entropy, nll_loss, mse_loss, l1_loss, smooth_l1_loss,  # noqa: F401
                        huber_loss, binary_cross_entropy, binary_cross_entropy_with_logits, kl_div)
from ..ops.rms_norm import rms_norm  # noqa: F401
from ..ops.stochastic import (dropout1d, dropout3d, alpha_dropout, feature_alpha_dropout,  # noqa: F401
                              gumbel_softmax)
from ..ops.margin_loss import (margin_ranking_loss, hinge_embedding_loss,  # noqa: F401
                               soft_margin_loss, cosine_embedding_loss, triplet_margin_loss,
                               multilabel_soft_margin_loss, multi_margin_loss, poisson_nll_loss,
                               gaussian_nll_loss, pdist)
from ..ops.norm import (batch_norm, local_response_norm, dropout, dropout2d,  # noqa: F401
                        layer_norm, group_norm, instance_norm, normalize, cosine_similarity,
                        pairwise_distance)
from ..ops.onedim import (conv1d, conv_transpose1d, max_pool1d, avg_pool1d,  # noqa: F401
                          adaptive_avg_pool1d,
                          adaptive_max_pool1d)
from ..ops.pool import (max_pool2d, avg_pool2d, lp_pool2d, adaptive_avg_pool2d,  # noqa: F401
                        adaptive_max_pool2d)
from ..ops.resample import pad, interpolate  # noqa: F401
from ..ops.shape import (flatten, embedding, pixel_shuffle, pixel_unshuffle,  # noqa: F401
                         channel_shuffle, max_unpool2d)
from ..ops.softmax import softmax, log_softmax  # noqa: F401
from ..ops.threed import (conv3d, conv_transpose3d, max_pool3d, avg_pool3d,  # noqa: F401
                          adaptive_avg_pool3d, adaptive_max_pool3d)
from ..tensor import Tensor


def relu(x, inplace=False):
    return x.relu()


def sigmoid(x):
    return x.sigmoid()


def tanh(x):
    return x.tanh()


def hardtanh(x, min_val=-1.0, max_val=1.0, inplace=False):
    return x.clip(min_val, max_val)


def relu6(x, inplace=False):
    return x.clip(0.0, 6.0)


def prelu(x, weight):
    """max(0, x) + weight * min(0, x), ``weight`` per channel (dim 1) or a single value."""
    w = weight.reshape((1, -1) + (1,) * (x.ndim - 2)) if weight.numel() > 1 else weight.reshape(())
    return _where(x > 0, x, x * w)


def leaky_relu(x, negative_slope=0.01, inplace=False):
    return _where(x > 0, x, x * negative_slope)


def elu(x, alpha=1.0, inplace=False):
    return _where(x > 0, x, (x.clip(None, 0.0).exp() - 1) * alpha)


def softplus(x, beta=1.0, threshold=20.0):
    bx = x * beta
    return _where(bx > threshold, x, ((-bx.abs()).exp().log1p() + bx.relu()) * (1.0 / beta))


def silu(x, inplace=False):
    return x * x.sigmoid()


# ``inplace`` is accepted as PyTorch's (the result is returned out of place, as F.relu's)
def hardsigmoid(x, inplace=False):
    return _ew.hardsigmoid(x)


def hardswish(x, inplace=False):
    return _ew.hardswish(x)


def mish(x, inplace=False):
    return _ew.mish(x)


def gelu(x, approximate="none"):
    """GELU. ``approximate='none'`` (default, as PyTorch): the exact x/2 (1 + erf(x/sqrt 2));
    ``'tanh'``: the tanh approximation (several times faster here)."""
    if approximate == "none":
        return x * 0.5 * (_erf(x * 0.7071067811865476) + 1.0)
    if approximate != "tanh":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    c = 0.7978845608028654  # sqrt(2/pi)
    return x * 0.5 * (1 + ((x + x * x * x * 0.044715) * c).tanh())


def one_hot(target, num_classes=-1):
    """int64 (..., num_classes) with a 1 at each target's class; ``num_classes=-1``:
    one more than the largest target."""
    op = "one_hot"
    if not isinstance(target, Tensor) or target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must be an integer Tensor of class indices, got "
                        f"{getattr(target, 'dtype', type(target).__name__)}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < -1:
        raise ValueError(f"{op}: num_classes must be an int >= 0 (or -1 to infer it), got "
                         f"{num_classes!r}")
    be = target.backend
    if target.numel():
        lo = int(be.reduce("min", target.array, None, False))
        hi = int(be.reduce("max", target.array, None, False))
        if lo < 0 or (num_classes >= 0 and hi >= num_classes):
            raise ValueError(f"{op}: class values must lie in [0, {num_classes if num_classes >= 0 else 'inf'})"
                             f", got values in [{lo}, {hi}]")
    elif num_classes < 0:
        raise ValueError(f"{op}: cannot infer num_classes from an empty target; pass num_classes")
    n = hi + 1 if num_classes < 0 else num_classes
    eye = be.eye(n, n, target.dtype)
    return Tensor._make(be.getitem(eye, target.array), be)


upsample = interpolate


def upsample_nearest(input, size=None, scale_factor=None):
    """Deprecated PyTorch spelling of ``interpolate(..., mode='nearest')``."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """Deprecated PyTorch spelling of ``interpolate(..., mode='bilinear', align_corners=True)``."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _float_input(op, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: needs a floating-point input, got dtype {x.dtype} "
                        f"(shape {x.shape}); convert with .float()")


# ``inplace`` is accepted as PyTorch's; the result is always a new tensor (as F.relu's)
def selu(x, inplace=False):
    """scale * (max(0, x) + min(0, alpha * (exp(x) - 1))) with PyTorch's constants
    alpha = 1.6733, scale = 1.0507 (self-normalising)."""
    _float_input("selu", x)
    return elu(x, _SELU_ALPHA) * _SELU_SCALE


def celu(x, alpha=1.0, inplace=False):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    _float_input("celu", x)
    if alpha == 0:
        raise ValueError("celu: alpha cannot be 0 (it divides x); use a nonzero alpha")
    return _where(x > 0, x, ((x.clip(None, 0.0) * (1.0 / alpha)).exp() - 1) * alpha)


def glu(x, dim=-1):
    """Gated linear unit: split ``x`` in halves a, b along ``dim``; a * sigmoid(b)."""
    _float_input("glu", x)
    if x.ndim == 0:
        raise ValueError("glu: does not support 0-d (scalar) tensors")
    d = dim % x.ndim if -x.ndim <= dim < x.ndim else None
    if d is None:
        raise IndexError(f"glu: dim {dim} out of range for a tensor of shape {x.shape} "
                         f"(valid: {-x.ndim} to {x.ndim - 1})")
    if x.shape[d] % 2:
        raise ValueError(f"glu: halving dimension must be even, but dimension {dim} of shape "
                         f"{x.shape} is size {x.shape[d]}")
    a, b = x.chunk(2, d)
    return a * b.sigmoid()


def softmin(x, dim=None, _stacklevel=3, dtype=None):
    """softmax(-x) along ``dim`` (PyTorch's legacy implicit dim when None)."""
    if dim is None:
        dim = 0 if x.ndim in (0, 1, 3) else 1
    if dtype is not None:
        x = x.to(dtype)
    return softmax(-x, dim)


def tanhshrink(x):
    """x - tanh(x)."""
    return x - x.tanh()


def _check_lambd(op, lambd):
    if lambd < 0:
        raise ValueError(f"{op}: lambd must be >= 0, got {lambd}")


def softshrink(x, lambd=0.5):
    """x - lambd where x > lambd, x + lambd where x < -lambd, else 0."""
    _float_input("softshrink", x)
    _check_lambd("softshrink", lambd)
    return _where(x > lambd, x - lambd, _where(x < -lambd, x + lambd, x * 0.0))


def hardshrink(x, lambd=0.5):
    """x where |x| > lambd, else 0."""
    _float_input("hardshrink", x)
    _check_lambd("hardshrink", lambd)
    return _where((x > lambd) | (x < -lambd), x, x * 0.0)


def threshold(x, threshold, value, inplace=False):
    """x where x > threshold, else ``value`` (the gradient is 0 there)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"threshold: input must be a Tensor, got {type(x).__name__}")
    return _where(x > threshold, x, x.dtype.type(value))


def rrelu(x, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """Randomized leaky ReLU. Training: each negative element gets its own slope drawn
    uniformly from [lower, upper] (from the backend's global RNG, seeded by
    ``gradflow.manual_seed``); eval: the fixed slope (lower + upper) / 2, as PyTorch."""
    _float_input("rrelu", x)
    if lower > upper:
        raise ValueError(f"rrelu: lower bound {lower} must be <= upper bound {upper}")
    if not training:
        return leaky_relu(x, (lower + upper) / 2)
    be = x.backend
    slopes = be.rand(x.shape, x.dtype) * x.dtype.type(upper - lower) + x.dtype.type(lower)
    return _where(x > 0, x, x * Tensor._make(slopes, be))


def _tensor_input(fn):
    """``fn(x, ...)`` with a clear TypeError when ``x`` is not a Tensor (these are one-liners
    on Tensor methods, which would fail with an AttributeError naming NoneType's missing
    method)."""
    @functools.wraps(fn)
    def checked(x, *args, **kwargs):
        if not isinstance(x, Tensor):
            raise TypeError(f"{fn.__name__}: input must be a Tensor, got {type(x).__name__}")
        return fn(x, *args, **kwargs)
    return checked


for _name in ("relu", "sigmoid", "tanh", "hardtanh", "relu6", "prelu", "leaky_relu", "elu",
              "softplus", "silu", "hardsigmoid", "hardswish", "mish", "gelu", "selu", "celu",
              "glu", "softmin", "tanhshrink", "softshrink", "hardshrink", "threshold", "rrelu"):
    globals()[_name] = _tensor_input(globals()[_name])
del _name


#: functional names gradflow lacks -> what to do instead
UNSUPPORTED = {
    "ctc_loss": "CTC loss is not implemented",
    "embedding_bag": "embedding_bag is not implemented; use F.embedding(...).sum/mean(dim)",
    "grid_sample": "grid_sample is not implemented", "affine_grid": "affine_grid is not implemented",
    "multi_head_attention_forward": "use nn.MultiheadAttention or F.scaled_dot_product_attention",
    "multilabel_margin_loss": "multilabel_margin_loss is not implemented; see "
                              "multilabel_soft_margin_loss",
    "triplet_margin_with_distance_loss": "not implemented; use triplet_margin_loss",
    "fractional_max_pool2d": "fractional max pooling is not implemented",
    "max_unpool1d": "only max_unpool2d is implemented", "max_unpool3d": "only max_unpool2d is "
    "implemented", "lp_pool1d": "only lp_pool2d is implemented",
}


from ..unsupported import module_getattr  # noqa: E402
__getattr__ = module_getattr("gradflow.nn.functional", UNSUPPORTED)
