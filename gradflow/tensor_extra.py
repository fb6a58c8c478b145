"""More of ``torch.Tensor``'s methods, bound onto :class:`gradflow.Tensor` when
:mod:`gradflow` is imported: the functions of :mod:`gradflow.ops.extra` as methods,
dtype shorthands, a few in-place forms, and a clear error for the methods gradflow
deliberately lacks (see :data:`UNSUPPORTED`).

This module sits above the ops (it imports them; they never import it).
"""
from __future__ import annotations

from . import dtypes
from .functions import allclose, bincount, diag, diagonal, equal, isclose, outer
from .functions import logical_and, logical_not, logical_or, logical_xor
from .ops import elementwise as _ew, extra as _x
from .tensor import Tensor

#: method/attribute name -> why it is missing and what to use instead
UNSUPPORTED = {
    "bfloat16": "gradflow has no bfloat16 dtype (NumPy has none); use float32 or half()",
    "cfloat": "gradflow has no complex dtypes", "cdouble": "gradflow has no complex dtypes",
    "chalf": "gradflow has no complex dtypes", "angle": "gradflow has no complex dtypes",
    "conj": "gradflow has no complex dtypes", "real": "gradflow has no complex dtypes",
    "imag": "gradflow has no complex dtypes",
    "digamma": "special functions (digamma/lgamma/erfinv/polygamma) are not implemented",
    "lgamma": "special functions (digamma/lgamma/erfinv/polygamma) are not implemented",
    "erfinv": "special functions (digamma/lgamma/erfinv/polygamma) are not implemented",
    "polygamma": "special functions (digamma/lgamma/erfinv/polygamma) are not implemented",
    "apply_": "apply_ runs a Python function per element; use vectorised ops "
              "(or t.copy_(gradflow.tensor([f(v) for v in t.tolist()])))",
    "map_": "map_ runs a Python function per element; use vectorised ops",
    "resize_": "storage resizing is not supported; use reshape/view or a new tensor",
    "set_": "storage swapping is not supported; use .data = other",
    "storage": "gradflow tensors expose no Storage object; use .numpy() / data_ptr()",
    "untyped_storage": "gradflow tensors expose no Storage object; use .numpy() / data_ptr()",
    "put_": "put_ is not implemented; use t.view(-1).scatter_(0, index, source)",
    "index_put_": "index_put_ is not implemented; use t[indices] = values",
    "masked_scatter_": "masked_scatter_ is not implemented; use t[mask] = source[:n]",
    "masked_scatter": "masked_scatter is not implemented; use where() or boolean setitem",
    "scatter_reduce": "scatter_reduce is not implemented; scatter_add / scatter(reduce=...) cover "
                      "sum and mean",
    "scatter_reduce_": "scatter_reduce_ is not implemented; use scatter_add_",
    "random_": "random_ is not implemented; use gradflow.randint(low, high, t.shape)",
    "exponential_": "exponential_ is not implemented; use -(1 - gradflow.rand_like(t)).log() / rate",
    "geometric_": "geometric_ is not implemented",
    "log_normal_": "log_normal_ is not implemented; use (gradflow.randn_like(t) * std + mean).exp()",
    "cauchy_": "cauchy_ is not implemented",
    "to_sparse": "sparse tensors are not supported", "is_sparse": "sparse tensors are not supported",
    "to_dense": "sparse tensors are not supported",
    "q_scale": "quantized tensors are not supported",
    "dequantize": "quantized tensors are not supported",
    "refine_names": "named tensors are not supported", "rename": "named tensors are not supported",
    "align_to": "named tensors are not supported",
    "record_stream": "CUDA streams are not exposed",
}


def _unsupported_getattr(self, name):
    """Only called when normal lookup fails: a clear error for the known gaps."""
    why = UNSUPPORTED.get(name)
    if why is not None:
        raise AttributeError(f"Tensor.{name} is not supported by gradflow: {why}")
    raise AttributeError(f"'Tensor' object has no attribute {name!r}")


def _assign(self, op, out):
    """Finish an in-place method: ``self`` takes the value ``out`` (rebound when the
    graph is involved, copied in place otherwise; a leaf that requires grad refuses)."""
    if self._in_graph(out):
        return self._rebind(op, out)
    self._check_inplace(op)
    if out.shape != self.shape:
        raise RuntimeError(f"{op}: output with shape {self.shape} doesn't match the broadcast "
                           f"shape {out.shape}")
    self.backend.copyto_(self.array, out.array if out.dtype == self.dtype
                         else self.backend.astype(out.array, self.dtype))
    return self._bump()


class _ExtraMethods:
    """Not a base class: a namespace whose members :func:`bind` copies onto Tensor."""

    narrow = _x.narrow
    narrow_copy = _x.narrow_copy
    select = _x.select
    swapaxes = swapdims = _x.swapaxes
    movedim = moveaxis = _x.movedim
    ravel = _x.ravel
    tensor_split = _x.tensor_split
    hsplit = _x.hsplit
    vsplit = _x.vsplit
    diff = _x.diff
    unfold = _x.unfold
    take = _x.take
    index_fill = _x.index_fill
    index_copy = _x.index_copy
    sum_to_size = _x.sum_to_size
    addcmul = _x.addcmul
    addcdiv = _x.addcdiv
    addmm = _x.addmm
    addmv = _x.addmv
    addbmm = _x.addbmm
    baddbmm = _x.baddbmm
    mv = _x.mv
    trace = _x.trace
    cross = _x.cross
    kron = _x.kron
    lerp = _x.lerp
    clamp_min = _x.clamp_min
    clamp_max = _x.clamp_max
    divide = _x.divide
    true_divide = _x.true_divide
    negative = _x.negative
    positive = _x.positive
    fix = _x.fix
    frac = _x.frac
    fmod = _x.fmod
    float_power = _x.float_power
    log2 = _x.log2
    log10 = _x.log10
    exp2 = _x.exp2
    tan = _x.tan
    sinh = _x.sinh
    cosh = _x.cosh
    asin = arcsin = _x.asin
    acos = arccos = _x.acos
    asinh = arcsinh = _x.asinh
    atanh = arctanh = _x.atanh
    logit = _x.logit
    xlogy = _x.xlogy
    hypot = _x.hypot
    logaddexp = _x.logaddexp
    sgn = _x.sgn
    signbit = _x.signbit
    copysign = _x.copysign
    heaviside = _x.heaviside
    sinc = _x.sinc
    deg2rad = _x.deg2rad
    rad2deg = _x.rad2deg
    nan_to_num = _x.nan_to_num
    nansum = _x.nansum
    nanmean = _x.nanmean
    cumprod = _x.cumprod
    cummax = _x.cummax
    cummin = _x.cummin
    logcumsumexp = _x.logcumsumexp
    kthvalue = _x.kthvalue
    median = _x.median
    quantile = _x.quantile
    count_nonzero = _x.count_nonzero
    multinomial = _x.multinomial
    diag_embed = _x.diag_embed
    repeat_interleave = _x.repeat_interleave
    isin = _x.isin
    diag = diag
    diagonal = diagonal
    outer = ger = outer
    allclose = allclose
    isclose = isclose
    equal = equal
    bincount = bincount
    logical_and = logical_and
    logical_or = logical_or
    logical_not = logical_not
    logical_xor = logical_xor

    def absolute(self):
        return self.abs()

    def remainder(self, other):
        return _ew.remainder(self, other)

    def floor_divide(self, other):
        return _ew.floordiv(self, other)

    def tile(self, *dims):
        return _x.tile(self, dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list))
                       else dims)

    def bernoulli(self, p=None, generator=None):
        return _x.bernoulli(self, p, generator)

    def bitwise_not(self):
        return ~self

    # -- dtypes and device queries -----------------------------------------------------------
    def half(self):
        """float16 (computed in NumPy's float16: slow, and with float16's rounding)."""
        return self.to(dtypes.float16)

    def byte(self):
        return self.to(dtypes.uint8)

    def char(self):
        return self.to(dtypes.int8)

    def short(self):
        return self.to(dtypes.int16)

    def ndimension(self):
        return self.ndim

    def get_device(self):
        """-1 on the CPU, the device index (0) on CUDA, as PyTorch."""
        return 0 if self.is_cuda else -1

    def is_complex(self):
        return False

    def is_signed(self):
        return self.dtype.kind in "fi"

    def pin_memory(self):
        """A no-op (host memory is not pinned; copies are synchronous)."""
        return self

    def is_pinned(self):
        return False

    def share_memory_(self):
        """A no-op: DataLoader workers in gradflow get arrays by pickling, not shared memory."""
        return self

    def is_shared(self):
        return False

    # -- in-place forms -------------------------------------------------------------------------
    def lerp_(self, end, weight):
        return _assign(self, "lerp_", _x.lerp(self, end, weight))

    def clamp_min_(self, min):  # noqa: A002
        return _assign(self, "clamp_min_", self.clamp(min=min))

    def clamp_max_(self, max):  # noqa: A002
        return _assign(self, "clamp_max_", self.clamp(max=max))

    def pow_(self, exponent):
        return _assign(self, "pow_", self ** exponent)

    def floor_(self):
        return _assign(self, "floor_", self.floor())

    def ceil_(self):
        return _assign(self, "ceil_", self.ceil())

    def round_(self, decimals=0):
        return _assign(self, "round_", self.round(decimals))

    def trunc_(self):
        return _assign(self, "trunc_", self.trunc())

    def tril_(self, diagonal=0):
        return _assign(self, "tril_", self.tril(diagonal))

    def triu_(self, diagonal=0):
        return _assign(self, "triu_", self.triu(diagonal))

    def addcmul_(self, tensor1, tensor2, value=1):
        return _assign(self, "addcmul_", _x.addcmul(self, tensor1, tensor2, value))

    def addcdiv_(self, tensor1, tensor2, value=1):
        return _assign(self, "addcdiv_", _x.addcdiv(self, tensor1, tensor2, value))

    def remainder_(self, other):
        return _assign(self, "remainder_", _ew.remainder(self, other))

    def nan_to_num_(self, nan=0.0, posinf=None, neginf=None):
        return _assign(self, "nan_to_num_", _x.nan_to_num(self, nan, posinf, neginf))

    def index_fill_(self, dim, index, value):
        return _assign(self, "index_fill_", _x.index_fill(self, dim, index, value))

    def index_copy_(self, dim, index, source):
        return _assign(self, "index_copy_", _x.index_copy(self, dim, index, source))


def bind(cls=Tensor, surface=_ExtraMethods):
    """Copy every member of ``surface`` onto ``cls`` (never replacing one it has)."""
    for name, member in vars(surface).items():
        if name.startswith("__") or hasattr(cls, name):
            continue
        setattr(cls, name, member)
    if "__getattr__" not in vars(cls):
        cls.__getattr__ = _unsupported_getattr


bind()
