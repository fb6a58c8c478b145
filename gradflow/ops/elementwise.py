"""Elementwise primitives with NumPy broadcasting.

Broadcast gradients are summed back to each input's shape by the engine, so a
backward here returns gradients shaped like the output. Operand dtypes are
resolved once, in :func:`operands`, under the rules of :mod:`gradflow.dtypes`.
"""
from __future__ import annotations

import builtins
import numbers

import numpy

from .. import dtypes
from ..autograd import Function
from ..autograd.grad_mode import in_plain_backward
from ..backends.base import UNARY_BACKWARD_FROM
from ..tensor import Tensor


# ---------------------------------------------------------------------------
# operand handling
# ---------------------------------------------------------------------------
def _scalar_dtype(value, other_dtype):
    """dtype a Python scalar takes next to a tensor of ``other_dtype``."""
    if isinstance(value, (bool, numpy.bool_)):
        return other_dtype
    if isinstance(value, numbers.Integral):
        return other_dtype if other_dtype.kind != "b" else dtypes.int64
    if isinstance(value, numbers.Real):
        return other_dtype if other_dtype.kind == "f" else dtypes.get_default_dtype()
    raise TypeError(f"unsupported operand type {type(value).__name__}")


def _as_tensor(value, like, op):
    if isinstance(value, Tensor):
        return value
    dt = like.array.dtype
    if type(value) is float and dt.kind == "f":  # fast path: the common ``x * 0.5``
        if abs(value) > 65504.0:  # may overflow float16/32: inf, silently, as PyTorch
            with numpy.errstate(over="ignore"):
                return Tensor._make(like.backend.asarray(value, dtype=dt), like.backend)
        return Tensor._make(like.backend.asarray(value, dtype=dt), like.backend)
    if isinstance(value, numbers.Number) and not isinstance(value, complex):
        dt = _scalar_dtype(value, like.dtype)
        with numpy.errstate(over="ignore"):  # a too-large scalar becomes inf (PyTorch)
            return Tensor._make(like.backend.asarray(value, dtype=dt), like.backend)
    if isinstance(value, (list, tuple)) or isinstance(value, numpy.ndarray):
        arr = numpy.asarray(value)
        if arr.dtype.kind == "f" and like.dtype.kind == "f":
            arr = arr.astype(like.dtype)  # literals/arrays adopt the tensor's float width
        return Tensor._make(like.backend.asarray(arr), like.backend)
    raise TypeError(f"{op}: unsupported operand type {type(value).__name__} (expected a Tensor, "
                    f"a Python number or an array)")


def operands(a, b, op):
    """Two Tensors of one backend and one dtype for a binary op."""
    if not isinstance(a, Tensor):
        a = _as_tensor(a, b, op)
    elif not isinstance(b, Tensor):
        b = _as_tensor(b, a, op)
    if a.backend is not b.backend:
        raise RuntimeError(
            f"{op}: operands live on different backends ({a.shape} on {a.backend.name}, "
            f"{b.shape} on {b.backend.name}); move one with .to('{a.backend.name}') first")
    if a.array.dtype != b.array.dtype:
        if op == "sub" and "b" in (a.dtype.kind, b.dtype.kind):
            raise TypeError("sub: subtraction with a bool tensor is not supported (as PyTorch); "
                            "to invert a mask use ~ or logical_not()")
        dt = dtypes.result_dtype(op, a.dtype, b.dtype)
        a = a if a.dtype == dt else Cast.apply(a, dt)
        b = b if b.dtype == dt else Cast.apply(b, dt)
    return a, b


def scalar_or_array(value, like, op):
    """A backend array (or scalar of ``like``'s dtype) for in-place updates of ``like``."""
    if isinstance(value, Tensor):
        if value.backend is not like.backend:
            raise RuntimeError(f"{op}: value lives on {value.backend.name}, target on "
                               f"{like.backend.name}; move it first")
        if value.dtype != like.dtype:
            return like.backend.astype(value.array, like.dtype)
        return value.array
    return _as_tensor(value, like, op).array.astype(like.dtype, copy=False)


def _broadcast_check(a, b, op):
    sa, sb = a.array.shape, b.array.shape
    if all(x == y or x == 1 or y == 1 for x, y in zip(sa[::-1], sb[::-1])):
        return
    raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together "
                     f"(trailing dimensions must be equal or 1)")


# ---------------------------------------------------------------------------
# arithmetic
# ---------------------------------------------------------------------------
class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a.backend.binary("add", a.array, b.array)

    @staticmethod
    def backward(ctx, gy):
        return gy, gy


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a.backend.binary("sub", a.array, b.array)

    @staticmethod
    def backward(ctx, gy):
        return gy, (neg(gy) if ctx.needs_input_grad[1] else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None,
                              b if ctx.needs_input_grad[0] else None)
        return a.backend.binary("mul", a.array, b.array)

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved_tensors
        return (mul(gy, b) if ctx.needs_input_grad[0] else None,
                mul(gy, a) if ctx.needs_input_grad[1] else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        y = a.backend.binary("div", a.array, b.array)
        ctx.save_for_backward(b, y if ctx.needs_input_grad[1] else None)
        return y

    @staticmethod
    def backward(ctx, gy):
        b, y = ctx.saved_tensors
        ga = div(gy, b)
        return ga, (-(ga * y) if ctx.needs_input_grad[1] else None)


class PowScalar(Function):
    """x ** p for a Python number p: d/dx = p * x**(p-1)."""

    @staticmethod
    def forward(ctx, x, p):
        ctx.save_for_backward(x)
        ctx.p = p
        return x.backend.binary("pow", x.array, x.array.dtype.type(p))

    @staticmethod
    def backward(ctx, gy):
        (x,), p = ctx.saved_tensors, ctx.p
        if p == 2:
            return gy * (x * 2.0), None
        if p == 0 or p == 1:  # x ** 0 == 1 everywhere (p * x**-1 would be 0 * inf at 0)
            return (gy * 0.0 if p == 0 else gy), None
        return gy * (pow(x, p - 1) * float(p)), None


class Pow(Function):
    """a ** b elementwise: da = b * a**(b-1), db = a**b * log(a)."""

    @staticmethod
    def forward(ctx, a, b):
        y = a.backend.binary("pow", a.array, b.array)
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        a, b, y = ctx.saved_tensors
        ga = gy * b * pow(a, b - 1.0) if ctx.needs_input_grad[0] else None
        gb = gy * y * unary("log", a) if ctx.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return x.backend.unary("neg", x.array)

    @staticmethod
    def backward(ctx, gy):
        return neg(gy)


def neg(x):
    if in_plain_backward():  # nothing to record: Neg.forward's kernel
        return Tensor._make(x.backend.unary("neg", x.array), x.backend)
    return Neg.apply(x)


class Cast(Function):
    """dtype conversion; the gradient flows back in the input's dtype."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return x.backend.astype(x.array, dtype)

    @staticmethod
    def backward(ctx, gy):
        if ctx.dtype.kind != "f":
            return None, None
        return Cast.apply(gy, ctx.dtype), None


def _binary(fn, op, a, b):
    if (type(a) is not Tensor or type(b) is not Tensor or a.backend is not b.backend
            or a.array.dtype != b.array.dtype):
        a, b = operands(a, b, op)
    if a.array.shape != b.array.shape and a.array.ndim and b.array.ndim:
        _broadcast_check(a, b, op)
    if in_plain_backward():  # nothing to record: the kernel Add/Sub/Mul.forward calls
        return Tensor._make(a.backend.binary(op, a.array, b.array), a.backend)
    return fn.apply(a, b)


def add(a, b):
    return _binary(Add, "add", a, b)


def sub(a, b):
    return _binary(Sub, "sub", a, b)


def mul(a, b):
    return _binary(Mul, "mul", a, b)


def div(a, b):
    a, b = operands(a, b, "div")
    if a.dtype.kind != "f":  # true division of integers gives floats (``1 / int_tensor`` too)
        dt = dtypes.get_default_dtype()
        a, b = Cast.apply(a, dt), Cast.apply(b, dt)
    if a.array.shape != b.array.shape and a.array.ndim and b.array.ndim:
        _broadcast_check(a, b, "div")
    if in_plain_backward():  # nothing to record: Div.forward's kernel
        return Tensor._make(a.backend.binary("div", a.array, b.array), a.backend)
    return Div.apply(a, b)


def pow(a, b):  # noqa: A001 - mirrors torch.pow
    if isinstance(a, Tensor) and isinstance(b, numbers.Real) and not isinstance(b, bool):
        if a.dtype.kind != "f":
            if not isinstance(b, numbers.Integral):
                a = a.to(dtypes.get_default_dtype())
            elif a.dtype.kind == "b":
                a = a.to(dtypes.int64)  # bool ** int is int64 (PyTorch)
        return PowScalar.apply(a, b)
    return _binary(Pow, "pow", a, b)


class Atan2(Function):
    """atan2(a, b), the angle of the point (b, a) in (-pi, pi];
    d/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2) (as PyTorch; both 0/0 = nan at the origin)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a.backend.binary("atan2", a.array, b.array)

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved_tensors
        r = gy / (a * a + b * b)
        return (r * b if ctx.needs_input_grad[0] else None,
                -(r * a) if ctx.needs_input_grad[1] else None)


def atan2(a, b):
    """Elementwise ``atan2(a, b)`` (``torch.atan2``); integer inputs compute in the default
    float dtype."""
    a, b = operands(a, b, "atan2")
    if a.dtype.kind != "f":
        a, b = a.to(dtypes.get_default_dtype()), b.to(dtypes.get_default_dtype())
    return _binary(Atan2, "atan2", a, b)


# ---------------------------------------------------------------------------
# unary math: the first derivative is one backend kernel (``unary_backward``, from
# the op's input x or output y as UNARY_BACKWARD_FROM says); its own derivative, for
# gradients of gradients, is written here in Tensor ops beside each name
# ---------------------------------------------------------------------------
# d f'(s) / ds, times h = (incoming gradient) * g, for s = x or y; None: f'' = 0
_CURVATURE = {
    "exp": lambda s, h: h,                                  # f'(y) = y
    "expm1": lambda s, h: h,                                # f'(y) = y + 1
    "log": lambda s, h: -(h / (s * s)),                     # f'(x) = 1/x
    "log1p": lambda s, h: -(h / ((s + 1.0) * (s + 1.0))),   # f'(x) = 1/(x + 1)
    "sqrt": lambda s, h: -(h / (s * s * 2.0)),              # f'(y) = 1/(2y)
    "abs": lambda s, h: None,                               # f'(x) = sign(x)
    "tanh": lambda s, h: h * (s * -2.0),                    # f'(y) = 1 - y^2
    "sigmoid": lambda s, h: h * (1.0 - s * 2.0),            # f'(y) = y (1 - y)
    "sin": lambda s, h: -(h * unary("sin", s)),             # f'(x) = cos x
    "cos": lambda s, h: -(h * unary("cos", s)),             # f'(x) = -sin x
    "atan": lambda s, h: h * (s * -2.0) / ((s * s + 1.0) * (s * s + 1.0)),  # 1/(x^2 + 1)
}


class Unary(Function):
    @staticmethod
    def forward(ctx, x, op):
        y = x.backend.unary(op, x.array)
        src = UNARY_BACKWARD_FROM.get(op)
        ctx.save_for_backward(y if src == "y" else x if src == "x" else None)
        ctx.op = op
        return y

    @staticmethod
    def backward(ctx, gy):
        if ctx.op not in UNARY_BACKWARD_FROM:
            raise RuntimeError(f"{ctx.op}: not differentiable")
        s, = ctx.saved_tensors
        if in_plain_backward():  # nothing to record: UnaryGrad.forward's kernel
            return Tensor._make(gy.backend.unary_backward(ctx.op, gy.array, s.array),
                                gy.backend), None
        return UnaryGrad.apply(gy, s, ctx.op), None


class UnaryGrad(Function):
    """``g * f'(s)`` for the unary op ``f`` (``s`` its input or output): one backend
    kernel. Linear in ``g``, so d/dg is itself; d/ds is ``g * f''`` from _CURVATURE."""

    @staticmethod
    def forward(ctx, g, s, op):
        ctx.save_for_backward(g if ctx.needs_input_grad[1] else None, s)
        ctx.op = op
        return g.backend.unary_backward(op, g.array, s.array)

    @staticmethod
    def backward(ctx, gg):
        g, s = ctx.saved_tensors
        dg = UnaryGrad.apply(gg, s, ctx.op) if ctx.needs_input_grad[0] else None
        ds = _CURVATURE[ctx.op](s, gg * g) if ctx.needs_input_grad[1] else None
        return dg, ds, None


def unary(op, x):
    if x.dtype.kind != "f":
        if op != "abs":
            x = x.to(dtypes.get_default_dtype())
        elif x.dtype.kind == "b":
            raise TypeError("abs: not implemented for bool tensors (as PyTorch)")
    return Unary.apply(x, op)


class Erf(Function):
    """erf(x); d/dx = 2/sqrt(pi) exp(-x^2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.backend.unary("erf", x.array)

    @staticmethod
    def backward(ctx, gy):
        x, = ctx.saved_tensors
        return gy * (unary("exp", -(x * x)) * 1.1283791670955126)


def erf(x):
    if x.dtype.kind != "f":
        x = x.to(dtypes.get_default_dtype())
    return Erf.apply(x)


class Relu(Function):
    @staticmethod
    def forward(ctx, x):
        y = x.backend.unary("relu", x.array)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        y, = ctx.saved_tensors
        return ReluGrad.apply(gy, y)


class ReluGrad(Function):
    """relu's backward, gy * (y > 0), as one fused kernel; linear in gy, so its own
    backward is itself (the mask y > 0 is a constant: relu'' = 0 almost everywhere)."""

    @staticmethod
    def forward(ctx, gy, y):
        ctx.save_for_backward(y)
        return gy.backend.relu_backward(gy.array, y.array)

    @staticmethod
    def backward(ctx, ggx):
        y, = ctx.saved_tensors
        return ReluGrad.apply(ggx, y.detach()), None


def _zero_outside(g, keep):
    """``g`` where the bool Tensor ``keep`` holds, 0 elsewhere (differentiable in g)."""
    return Where.apply(keep, g, Tensor._make(g.backend.zeros((), g.dtype), g.backend))


class Clip(Function):
    """clip(x, lo, hi); the gradient passes where lo <= x <= hi."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return x.backend.clip(x.array, lo, hi)

    @staticmethod
    def backward(ctx, gy):
        x, = ctx.saved_tensors
        lo, hi = ctx.lo, ctx.hi
        keep = (x >= lo) if lo is not None else None
        if hi is not None:
            keep = (x <= hi) if keep is None else keep & (x <= hi)
        return (gy if keep is None else _zero_outside(gy, keep)), None, None


class ClampT(Function):
    """clamp with tensor bounds (broadcasting), gradients as PyTorch's: x where
    lo <= x <= hi; lo where x < lo (and lo < hi); hi where x > hi (or hi < lo)."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        be = x.backend
        ctx.save_for_backward(x, lo, hi)
        y = x.array if lo is None else be.binary("maximum", x.array, lo.array)
        return y if hi is None else be.binary("minimum", y, hi.array)

    @staticmethod
    def backward(ctx, gy):
        x, lo, hi = ctx.saved_tensors
        keep = (x >= lo) if hi is None else (x <= hi) if lo is None else (x >= lo) & (x <= hi)
        gx = _zero_outside(gy, keep) if ctx.needs_input_grad[0] else None
        glo = ghi = None
        if lo is not None and ctx.needs_input_grad[1]:
            glo = _zero_outside(gy, (x < lo) if hi is None else (x < lo) & (lo < hi))
        if hi is not None and ctx.needs_input_grad[2]:
            ghi = _zero_outside(gy, (x > hi) if lo is None else (x > hi) | (hi < lo))
        return gx, glo, ghi


def clip(x, lo=None, hi=None):
    if lo is None and hi is None:
        raise ValueError("clip: at least one of min and max must be given")
    if isinstance(lo, Tensor) or isinstance(hi, Tensor):
        lo = None if lo is None else operands(lo, x, "clamp")[0]
        hi = None if hi is None else operands(hi, x, "clamp")[0]
        if x.dtype.kind != "f" and builtins.any(b is not None and b.dtype != x.dtype for b in (lo, hi)):
            dt = lo.dtype if lo is not None and lo.dtype != x.dtype else hi.dtype
            x = Cast.apply(x, dt)
        lo = lo if lo is None or lo.dtype == x.dtype else Cast.apply(lo, x.dtype)
        hi = hi if hi is None or hi.dtype == x.dtype else Cast.apply(hi, x.dtype)
        return ClampT.apply(x, lo, hi)
    if x.dtype.kind != "f":  # integer/bool meeting a float bound: the default float (PyTorch)
        dt = x.dtype
        for v in (lo, hi):
            if v is not None:
                sd = _scalar_dtype(v, x.dtype)
                dt = sd if sd.kind == "f" else dtypes.int64 if dt.kind == "b" and sd != dt else dt
        if dt != x.dtype:
            x = Cast.apply(x, dt)
    cast = (lambda v: None if v is None else x.dtype.type(v))
    return Clip.apply(x, cast(lo), cast(hi))


class MaxMin(Function):
    """maximum/minimum; ties split the gradient equally (as PyTorch)."""

    @staticmethod
    def forward(ctx, a, b, op):
        ctx.save_for_backward(a, b)
        ctx.op = op
        return a.backend.binary(op, a.array, b.array)

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved_tensors
        win = (a > b) if ctx.op == "maximum" else (a < b)
        wa = Cast.apply(win, gy.dtype) + Cast.apply(a == b, gy.dtype) * 0.5  # a constant
        return gy * wa, gy * (1.0 - wa), None


def maximum(a, b):
    a, b = operands(a, b, "maximum")
    return MaxMin.apply(a, b, "maximum")


def minimum(a, b):
    a, b = operands(a, b, "minimum")
    return MaxMin.apply(a, b, "minimum")


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return a.backend.where(cond.array, a.array, b.array)

    @staticmethod
    def backward(ctx, gy):
        c, = ctx.saved_tensors
        z = Tensor._make(gy.backend.zeros((), gy.dtype), gy.backend)
        return (None,
                Where.apply(c, gy, z) if ctx.needs_input_grad[1] else None,
                Where.apply(c, z, gy) if ctx.needs_input_grad[2] else None)


def where(cond, a, b):
    """Elementwise ``a if cond else b`` (differentiable in ``a`` and ``b``)."""
    ref = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else cond
    if not isinstance(cond, Tensor):
        cond = _as_tensor(cond, ref, "where")
    a, b = operands(a if isinstance(a, Tensor) or isinstance(b, Tensor) else _as_tensor(a, ref, "where"),
                    b, "where")
    if cond.dtype.kind != "b":
        cond = Tensor._make(cond.backend.binary("ne", cond.array, 0), cond.backend)
    return Where.apply(cond, a, b)


def masked_fill(x, mask, value):
    return where(mask, x.dtype.type(value) if not isinstance(value, Tensor) else value, x)


# ---------------------------------------------------------------------------
# not differentiable
# ---------------------------------------------------------------------------
def compare(op, a, b):
    a, b = operands(a, b, op)
    return Tensor._make(a.backend.binary(op, a.array, b.array), a.backend)


class Rounding(Function):
    """sign / floor / ceil / trunc / round of a float tensor: piecewise constant, so the
    gradient is zero (PyTorch's outputs stay in the graph, with zero gradients)."""

    @staticmethod
    def forward(ctx, x, op):
        return x.backend.unary(op, x.array)

    @staticmethod
    def backward(ctx, gy):
        return _zeros_like(gy), None


def _zeros_like(g):
    return Tensor._make(g.backend.zeros(g.shape, g.dtype), g.backend)


def rounding(op, x):
    if x.dtype.kind == "f":
        return Rounding.apply(x, op)
    if x.dtype.kind == "b":
        if op == "sign":  # PyTorch: sign of a bool tensor is itself
            return Tensor._make(x.backend.copy(x.array), x.backend)
        raise TypeError(f"{op}: not implemented for bool tensors (as PyTorch)")
    if op == "sign":
        return Tensor._make(x.backend.unary("sign", x.array), x.backend)
    return Tensor._make(x.backend.copy(x.array), x.backend)  # integers are already integral


def sign(x):
    return rounding("sign", x)


def logical_not(x):
    be = x.backend
    return Tensor._make(be.unary("invert", x.array) if x.dtype.kind == "b" else
                        be.binary("eq", x.array, 0), be)


def invert(x):
    """``~x``: logical not of a bool tensor, bitwise not of an integer one (PyTorch)."""
    if x.dtype.kind == "f":
        raise TypeError(f"~ (bitwise_not): not supported for {x.dtype} tensors; "
                        f"use logical_not() for a mask")
    return Tensor._make(x.backend.unary("invert", x.array), x.backend)


def logical(op, a, b):
    a, b = operands(a, b, op)
    return Tensor._make(a.backend.binary(op, a.array, b.array), a.backend)


class FloorDiv(Function):
    """``a // b`` of floats: piecewise constant, zero gradients (PyTorch)."""

    @staticmethod
    def forward(ctx, a, b):
        return a.backend.binary("floordiv", a.array, b.array)

    @staticmethod
    def backward(ctx, gy):
        return _zeros_like(gy), _zeros_like(gy)


class Remainder(Function):
    """``a % b`` of floats: d/da = 1, d/db = -floor(a / b) (PyTorch)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a.backend.binary("mod", a.array, b.array)

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved_tensors
        gb = None
        if ctx.needs_input_grad[1]:
            q = a.backend.binary("floordiv", a.array, b.array)  # piecewise constant
            gb = -(gy * Tensor._make(q, a.backend))
        return gy, gb


def floordiv(a, b):
    """``a // b``, rounding down (zero gradient for floats)."""
    a, b = operands(a, b, "floordiv")
    if a.dtype.kind == "f":
        return _binary(FloorDiv, "floordiv", a, b)
    return Tensor._make(a.backend.binary("floordiv", a.array, b.array), a.backend)


def remainder(a, b):
    """``a % b`` with the sign of ``b`` (Python's and PyTorch's rule)."""
    a, b = operands(a, b, "remainder")
    if a.dtype.kind == "f":
        return _binary(Remainder, "remainder", a, b)
    return Tensor._make(a.backend.binary("mod", a.array, b.array), a.backend)


def classify(op, x):
    """isnan / isinf / isfinite: a bool tensor."""
    return Tensor._make(x.backend.classify(op, x.array), x.backend)


# ---------------------------------------------------------------------------
# activations composed from the primitives above
# ---------------------------------------------------------------------------
def logsigmoid(x):
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), stable for large |x|."""
    return minimum(x, 0.0) - unary("log1p", unary("exp", -unary("abs", x)))


def softplus(x, beta=1.0, threshold=20.0):
    bx = x * beta
    return where(bx > threshold, x,
                 (unary("log1p", unary("exp", -unary("abs", bx))) + Relu.apply(bx)) * (1.0 / beta))


def hardsigmoid(x):
    return clip(x * (1.0 / 6) + 0.5, 0.0, 1.0)


def hardswish(x):
    return x * hardsigmoid(x)


def mish(x):
    return x * unary("tanh", softplus(x))


def softsign(x):
    return x / (unary("abs", x) + 1.0)
