"""gradflow: a readable reverse-mode autograd engine with NumPy, Numba and CuPy
backends, and the CNN training stack on top of it.

    import gradflow as gf
    x = gf.randn(4, 3, requires_grad=True)
    (x * x).sum().backward()        # x.grad == 2 * x
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import dtypes
from .dtypes import (float32, float64, float16, int8, int16, int32, int64, uint8, bool_,  # noqa: F401
                     double, long, half, get_default_dtype, set_default_dtype)
from .dtypes import float, int, bool_ as bool  # noqa: F401,A004 - torch.float/int/bool spellings
from .backends import (set_backend, backend, get_backend, current_backend,  # noqa: F401
                       available_backends, BackendUnavailable)
from .tensor import Tensor, Size  # noqa: F401
from . import autograd  # noqa: F401
from .autograd import no_grad, enable_grad, set_grad_enabled, is_grad_enabled, inference_mode  # noqa: F401
from .creation import (tensor, from_numpy, as_tensor, zeros, ones, empty, full, arange,  # noqa: F401
                       linspace, logspace, eye, manual_seed, rand, randn, randint, randperm,
                       zeros_like, ones_like, empty_like, full_like, rand_like, randn_like,
                       randint_like, normal, Generator)
from .device import device, cuda, cpu, accelerator  # noqa: F401
from .layout import (memory_format, contiguous_format, channels_last,  # noqa: F401
                     channels_last_3d, preserve_format)
from .ops.elementwise import (maximum, minimum, add, sub, mul, div, pow, clip,  # noqa: F401,A004
                              floordiv as floor_divide, remainder)
from .ops.elementwise import atan2, atan2 as arctan2  # noqa: F401
from .functions import where  # noqa: F401 - also the one-argument where(cond)


def isnan(x): return x.isnan()  # noqa: E302,E704
def isinf(x): return x.isinf()  # noqa: E704
def atan(x): return x.atan()  # noqa: E704
def arctan(x): return x.atan()  # noqa: E704
def isfinite(x): return x.isfinite()  # noqa: E704
def reciprocal(x): return x.reciprocal()  # noqa: E704
def rsqrt(x): return x.rsqrt()  # noqa: E704
def erf(x): return x.erf()  # noqa: E704
def tril(x, diagonal=0): return x.tril(diagonal)  # noqa: E704
def triu(x, diagonal=0): return x.triu(diagonal)  # noqa: E704
def cumsum(x, dim, dtype=None): return x.cumsum(dim, dtype=dtype)  # noqa: E704
def logsumexp(x, dim, keepdim=False): return x.logsumexp(dim, keepdim)  # noqa: E704
def unbind(x, dim=0): return x.unbind(dim)  # noqa: E704
def count_nonzero(x, dim=None): return (x != 0).sum(dim)  # noqa: E704
from .functions import (eq, ne, lt, le, gt, ge, equal, isclose, logical_and, logical_or,  # noqa: E402,F401,A004
                     logical_not, logical_xor, index_select, masked_select, nonzero, argwhere,
                     round, floor, ceil, trunc, norm, outer, diag, diagonal, unique, bincount,
                     clone, neg, scatter, scatter_add, masked_fill, cosine_similarity, cdist,
                     set_printoptions, finfo, iinfo, FloatTensor, DoubleTensor, LongTensor,
                     IntTensor, BoolTensor, pi, e, inf, nan, is_floating_point,
                     seed, initial_seed, get_rng_state, set_rng_state)
from .ops.shape import (cat, stack, reshape, flatten, squeeze, unsqueeze, permute, split,  # noqa: F401
                        chunk, gather, sort, argsort, topk, flip, fliplr, flipud, roll,
                        rot90)
from .ops.linalg import matmul, mm, bmm, dot, einsum  # noqa: F401
from .ops.softmax import softmax, log_softmax  # noqa: F401
from .functions import (exp, log, sqrt, abs, sin, cos, tanh, sigmoid, relu, sum, mean,  # noqa: F401,A004
                        max, min, argmax, argmin, transpose, clamp, sign, var, std, prod, concat,
                        numel, is_tensor, square, log1p, expm1, amax, amin, allclose)
from . import nn, optim, data  # noqa: E402,F401
from .serialization import save, load  # noqa: E402,F401
from . import utils  # noqa: E402,F401
from . import amp  # noqa: E402,F401 - mixed-precision shims (autocast is a no-op)
from .amp import autocast, is_autocast_enabled  # noqa: E402,F401
cuda.amp = amp.cuda_amp  # ``torch.cuda.amp.GradScaler`` / ``autocast``
cpu.amp = amp.cpu_amp
from .vis.summary import summary  # noqa: E402,F401 - last: gradflow.vis sits on top of nn


class _Flags:
    """``torch.backends.cudnn`` / ``.mps`` / ``.cuda.matmul`` stand-ins: scripts set
    ``cudnn.benchmark`` / ``cudnn.deterministic`` and ask ``mps.is_available()``; gradflow
    has neither cuDNN nor MPS (its kernels are deterministic), so the flags are recorded
    and the answers are False."""

    def __init__(self, **flags):
        self.__dict__.update(flags)

    @staticmethod
    def is_available():
        return False

    @staticmethod
    def is_built():
        return False

    def version(self):
        return None


backends.cudnn = _Flags(enabled=False, benchmark=False, deterministic=True, allow_tf32=False)
backends.mps = _Flags()
backends.cuda = _Flags(matmul=_Flags(allow_tf32=False, allow_fp16_reduced_precision_reduction=False))


def use_deterministic_algorithms(mode, warn_only=False):
    """Accepted for PyTorch compatibility: gradflow's kernels are deterministic."""
    return None


def lerp(input, end, weight):
    """``input + weight * (end - input)`` (differentiable)."""
    return input + (end - input) * weight


def softmin(input, dim=None, dtype=None):
    """softmax(-input) along ``dim`` (``torch.nn.functional.softmin``)."""
    return nn.functional.softmin(input, dim, dtype=dtype)


def selu(input):
    return nn.functional.selu(input)


def celu(input, alpha=1.0):
    return nn.functional.celu(input, alpha)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False):
    return nn.functional.rrelu(input, lower, upper, training)
