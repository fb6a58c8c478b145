"""``gradflow.nn.functional`` (PyTorch's ``F``): the differentiable building blocks
of networks. conv2d, the poolings and cross_entropy are primitives with
hand-written backward passes calling backend kernels; the rest compose ops."""
from __future__ import annotations

from ..ops.conv import conv2d, conv_transpose2d  # noqa: F401
from ..ops.elementwise import where as _where
from ..ops.linalg import linear  # noqa: F401
from ..ops.loss import (cross_entropy, nll_loss, mse_loss, l1_loss, smooth_l1_loss,  # noqa: F401
                        huber_loss, binary_cross_entropy, binary_cross_entropy_with_logits, kl_div)
from ..ops.norm import batch_norm, local_response_norm, dropout, dropout2d  # noqa: F401
from ..ops.pool import max_pool2d, avg_pool2d, lp_pool2d, adaptive_avg_pool2d  # noqa: F401
from ..ops.shape import flatten  # noqa: F401
from ..ops.softmax import softmax, log_softmax  # noqa: F401


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


def silu(x):
    return x * x.sigmoid()


def gelu(x, approximate="none"):
    """GELU. ``approximate='none'`` (default, as PyTorch): the exact x/2 (1 + erf(x/sqrt 2));
    ``'tanh'``: the tanh approximation (several times faster here)."""
    if approximate == "none":
        from ..ops.elementwise import erf
        return x * 0.5 * (erf(x * 0.7071067811865476) + 1.0)
    if approximate != "tanh":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    c = 0.7978845608028654  # sqrt(2/pi)
    return x * 0.5 * (1 + ((x + x * x * x * 0.044715) * c).tanh())


def one_hot(target, num_classes=-1):
    from ..tensor import Tensor
    be = target.backend
    n = int(be.reduce("max", target.array, None, False)) + 1 if num_classes < 0 else num_classes
    eye = be.eye(n, n, target.dtype)
    return Tensor._make(be.getitem(eye, target.array), be)


def pad(x, pad, mode="constant", value=0.0):
    """PyTorch's F.pad: ``pad`` lists (left, right) pairs starting from the last dim."""
    from ..ops.shape import cat
    from ..tensor import Tensor
    if mode != "constant" or len(pad) % 2:
        raise ValueError(f"pad: only mode='constant' with (left, right) pairs is supported, "
                         f"got mode={mode!r}, pad={pad}")
    if len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: {len(pad) // 2} (left, right) pairs given for a tensor of shape "
                         f"{x.shape}; at most one pair per dimension")
    be = x.backend
    for i in range(len(pad) // 2):
        dim = x.ndim - 1 - i
        lo, hi = pad[2 * i], pad[2 * i + 1]
        if lo < 0 or hi < 0:  # negative padding crops, as PyTorch
            n = x.shape[dim]
            if n + min(lo, 0) + min(hi, 0) <= 0:
                raise ValueError(f"pad: padding ({lo}, {hi}) would leave no elements of dim {dim} "
                                 f"(size {n}) of shape {x.shape}")
            sl = [slice(None)] * x.ndim
            sl[dim] = slice(max(-lo, 0), n - max(-hi, 0))
            x = x[tuple(sl)]
            lo, hi = max(lo, 0), max(hi, 0)
        parts = []
        for m in (lo, hi):
            shp = x.shape[:dim] + (m,) + x.shape[dim + 1:]
            parts.append(Tensor._make(be.full(shp, value, x.dtype), be) if m > 0 else None)
        x = cat([t for t in (parts[0], x, parts[1]) if t is not None], dim=dim)
    return x


def interpolate(x, size=None, scale_factor=None, mode="nearest"):
    """Nearest-neighbour upsampling of (N, C, H, W) by integer factors (each input pixel
    becomes an sH x sW block; built from reshape + expand, so the gradient sums each block)."""
    if mode != "nearest":
        raise NotImplementedError(f"interpolate: only mode='nearest' is implemented, got {mode!r}")
    if x.ndim != 4:
        raise ValueError(f"interpolate: expected (N, C, H, W), got shape {x.shape}")
    n, c, h, w = x.shape
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    if size is not None:
        oh, ow = (size, size) if isinstance(size, int) else tuple(size)
        if oh % h or ow % w:
            raise NotImplementedError(f"interpolate: size {(oh, ow)} must be an integer multiple "
                                      f"of the input size {(h, w)}")
        sh, sw = oh // h, ow // w
    else:
        sh, sw = (scale_factor, scale_factor) if not isinstance(scale_factor, (tuple, list)) \
            else tuple(scale_factor)
        if float(sh) != int(sh) or float(sw) != int(sw) or sh < 1 or sw < 1:
            raise NotImplementedError(f"interpolate: scale_factor must be positive integers, "
                                      f"got {scale_factor}")
        sh, sw = int(sh), int(sw)
    y = x.reshape(n, c, h, 1, w, 1).expand(n, c, h, sh, w, sw)
    return y.reshape(n, c, h * sh, w * sw)


upsample = interpolate
