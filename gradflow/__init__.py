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
from . import tensor_methods  # noqa: F401 - binds the operators and math methods onto Tensor
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


from .functions import (eq, ne, lt, le, gt, ge, equal, isclose, logical_and, logical_or,  # noqa: F401,A004
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
from .functions import (isnan, isinf, isfinite, atan, arctan, reciprocal, rsqrt, erf,  # noqa: F401
                        tril, triu, cumsum, logsumexp, unbind, lerp)
from . import nn, optim, data  # noqa: F401
from .serialization import save, load  # noqa: F401
from . import utils  # noqa: F401
from . import amp  # noqa: F401 - mixed-precision shims (autocast is a no-op)
from .amp import autocast, is_autocast_enabled  # noqa: F401
# more of torch's namespace: gradflow.ops.extra, linalg, testing, jit
from . import tensor_extra  # noqa: F401 - binds the extra Tensor methods
from .autograd import functional as _autograd_functional  # noqa: F401 - autograd.functional
from . import linalg, testing, jit, onnx  # noqa: F401 - onnx needs the package only to export
from .ops.extra import (narrow, narrow_copy, select, swapaxes, swapaxes as swapdims,  # noqa: F401
                        movedim, movedim as moveaxis, ravel, tile, tensor_split, hsplit, vsplit,
                        diff, repeat_interleave, broadcast_tensors, broadcast_shapes,
                        broadcast_to, atleast_1d, atleast_2d, atleast_3d, hstack, vstack, dstack,
                        column_stack, meshgrid, cartesian_prod, tril_indices, triu_indices,
                        diag_embed, diagflat, block_diag, take, index_fill, index_copy, isin,
                        addcmul, addcdiv, addmm, addmv, addbmm, baddbmm, mv, trace, tensordot,
                        kron, cross, clamp_min, clamp_max, divide, true_divide, negative,
                        positive, fix, frac, fmod, float_power, log2, log10, exp2, tan, sinh,
                        cosh, asin, acos, asinh, atanh, logit, xlogy, hypot, logaddexp, sgn,
                        signbit, copysign, heaviside, sinc, deg2rad, rad2deg, nan_to_num,
                        nansum, nanmean, cumprod, cummax, cummin, logcumsumexp, kthvalue,
                        median, quantile, searchsorted, bucketize, histc, std_mean, var_mean,
                        bernoulli, multinomial, count_nonzero, add, sub)
from .ops.extra import asin as arcsin, acos as arccos, asinh as arcsinh, atanh as arctanh  # noqa: F401
from .linalg import det, slogdet, logdet, inv as inverse, pinv as pinverse, svd as _svd  # noqa: F401
from .linalg import matrix_power, cholesky, eigvalsh  # noqa: F401
from .vis.summary import summary  # noqa: F401 - last: gradflow.vis sits on top of nn

cuda.amp = amp.cuda_amp  # ``torch.cuda.amp.GradScaler`` / ``autocast``
cpu.amp = amp.cpu_amp


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


def softmin(input, dim=None, dtype=None):
    """softmax(-input) along ``dim`` (``torch.nn.functional.softmin``)."""
    return nn.functional.softmin(input, dim, dtype=dtype)


def selu(input):
    return nn.functional.selu(input)


def celu(input, alpha=1.0):
    return nn.functional.celu(input, alpha)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False):
    return nn.functional.rrelu(input, lower, upper, training)


def svd(input, some=True, compute_uv=True):
    """``torch.svd``: ``(U, S, V)`` (V, not Vh; reduced unless ``some=False``)."""
    u, s, vh = _svd(input, full_matrices=not some)
    return u, s, vh.mT


def qr(input, some=True):
    """``torch.qr``: reduced (``some=True``) or complete QR."""
    return linalg.qr(input, "reduced" if some else "complete")


def all(input, dim=None, keepdim=False):  # noqa: A001
    return input.all(dim, keepdim)


def any(input, dim=None, keepdim=False):  # noqa: A001
    return input.any(dim, keepdim)


def t(input):
    return input.t()


def compile(model=None, **kwargs):  # noqa: A001
    """``torch.compile``'s name: a training-step *function* is captured once and replayed
    as a flat list of backend kernel calls (:mod:`gradflow.capture` has the rules); an
    ``nn.Module`` is returned unchanged. Also a decorator: ``@gradflow.compile`` or
    ``@gradflow.compile(validate=False)``."""
    from .capture import compile as _compile
    return _compile(model, **kwargs)


#: torch names gradflow deliberately lacks -> why, and what to use instead
UNSUPPORTED = {
    "bfloat16": "gradflow has no bfloat16 dtype (NumPy has none); use float32 or float16",
    "complex64": "gradflow has no complex dtypes", "complex128": "gradflow has no complex dtypes",
    "cfloat": "gradflow has no complex dtypes", "cdouble": "gradflow has no complex dtypes",
    "view_as_real": "gradflow has no complex dtypes", "view_as_complex": "gradflow has no "
    "complex dtypes", "fft": "torch.fft is not implemented",
    "special": "torch.special is not implemented", "distributions": "torch.distributions is not "
    "implemented; sample with gradflow.rand/randn/multinomial",
    "lgamma": "special functions (lgamma/digamma/erfinv/polygamma) are not implemented",
    "digamma": "special functions (lgamma/digamma/erfinv/polygamma) are not implemented",
    "erfinv": "special functions (lgamma/digamma/erfinv/polygamma) are not implemented",
    "polygamma": "special functions (lgamma/digamma/erfinv/polygamma) are not implemented",
    "sparse_coo_tensor": "sparse tensors are not supported", "sparse": "sparse tensors are not "
    "supported", "quantization": "quantization is not supported", "quantize_per_tensor":
    "quantization is not supported", "fx": "torch.fx graph capture is not supported; "
    "gradflow.onnx.export traces modules", "export": "torch.export is not supported; see "
    "gradflow.onnx.export",
    "mps": "gradflow has no MPS backend", "xpu": "gradflow has no XPU backend",
    "vmap": "vmap is not implemented; use gradflow.autograd.functional.jacobian or a batch dim",
    "func": "torch.func (vmap/grad transforms) is not implemented",
    "scatter_reduce": "scatter_reduce is not implemented; scatter_add / scatter(reduce=...) cover "
    "sum and mean", "poisson": "poisson sampling is not implemented",
    "stft": "torch.stft is not implemented", "istft": "torch.istft is not implemented",
}


from .unsupported import module_getattr  # noqa: E402
__getattr__ = module_getattr("gradflow", UNSUPPORTED)
