"""Matrix products: ``matmul`` (2-D, batched with broadcast batch dims, 1-D
promoted as NumPy does) and the fused ``linear`` (x @ W^T + b)."""
from __future__ import annotations

from ..autograd import Function
from ..tensor import Tensor
from .elementwise import operands
from .shape import reshape


def _swap_last(be, a):
    axes = tuple(range(a.ndim - 2)) + (a.ndim - 1, a.ndim - 2)
    return be.transpose(a, axes)


class MatMul(Function):
    """a (..., n, k) @ b (..., k, m); batch dims broadcast (the engine sums them back)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.a = a.array if ctx.needs_input_grad[1] else None
        ctx.b = b.array if ctx.needs_input_grad[0] else None
        return a.backend.matmul(a.array, b.array)

    @staticmethod
    def backward(ctx, gy):
        be, g = gy.backend, gy.array
        ga = be.matmul(g, _swap_last(be, ctx.b)) if ctx.needs_input_grad[0] else None
        gb = be.matmul(_swap_last(be, ctx.a), g) if ctx.needs_input_grad[1] else None
        return ga, gb


def matmul(a, b):
    a, b = operands(a, b, "matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes "
                         f"{a.shape} and {b.shape} (use * for scalars)")
    va, vb = a.ndim == 1, b.ndim == 1
    a2 = reshape(a, (1,) + a.shape) if va else a
    b2 = reshape(b, b.shape + (1,)) if vb else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned: "
                         f"{a2.shape[-1]} (last dim of the first) != {b2.shape[-2]} "
                         f"(second-to-last dim of the second)")
    try:
        import numpy
        numpy.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of {a.shape} and {b.shape} cannot be "
                         f"broadcast together") from None
    y = MatMul.apply(a2, b2)
    if va or vb:
        shape = y.shape[:-2] + (() if va else y.shape[-2:-1]) + (() if vb else y.shape[-1:])
        y = reshape(y, shape)
    return y


def mm(a, b):
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"mm: expects two 2-D tensors, got shapes {a.shape} and {b.shape}")
    return matmul(a, b)


def bmm(a, b):
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise ValueError(f"bmm: expects (B, n, k) and (B, k, m), got {a.shape} and {b.shape}")
    return matmul(a, b)


def dot(a, b):
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"dot: expects two 1-D tensors, got {a.shape} and {b.shape}")
    return matmul(a, b)


class Linear(Function):
    """y (..., out) = x (..., in) @ w (out, in)^T + b (out,), as one primitive."""

    @staticmethod
    def forward(ctx, x, w, b=None):
        be = x.backend
        ctx.x = x.array if ctx.needs_input_grad[1] else None
        ctx.w = w.array if ctx.needs_input_grad[0] else None
        y = be.matmul(x.array, be.transpose(w.array, (1, 0)))
        if b is not None:
            y += b.array
        return y

    @staticmethod
    def backward(ctx, gy):
        be, g = gy.backend, gy.array
        gx = be.matmul(g, ctx.w) if ctx.needs_input_grad[0] else None
        gw = gb = None
        if ctx.needs_input_grad[1] or (len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]):
            g2 = be.reshape(g, (-1, g.shape[-1]))
            if ctx.needs_input_grad[1]:
                x2 = be.reshape(ctx.x, (-1, ctx.x.shape[-1]))
                gw = be.matmul(be.transpose(g2, (1, 0)), x2)
            if len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]:
                gb = be.reduce("sum", g2, 0, False)
        return gx, gw, gb


def linear(x, weight, bias=None):
    """``x @ weight.T + bias``; x (..., in), weight (out, in), bias (out,)."""
    if not isinstance(x, Tensor) or not isinstance(weight, Tensor):
        raise TypeError("linear: x and weight must be Tensors")
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {x.shape} does not match weight of shape "
                         f"{weight.shape}; the input's last dim must equal weight.shape[1] "
                         f"(in_features={weight.shape[1] if weight.ndim == 2 else '?'})")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias shape {bias.shape} must be ({weight.shape[0]},)")
    for t in (weight, bias):
        if t is not None and t.dtype != x.dtype:
            raise TypeError(f"linear: input dtype {x.dtype} but parameter dtype {t.dtype}; "
                            f"no silent promotion -- convert one")
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)


# ---------------------------------------------------------------------------
# einsum
# ---------------------------------------------------------------------------
def _parse_einsum(spec, n):
    spec = spec.replace(" ", "")
    if "." in spec:
        raise NotImplementedError("einsum: ellipsis ('...') is not supported; name every axis")
    lhs, arrow, out = spec.partition("->")
    ins = lhs.split(",")
    if len(ins) != n:
        raise ValueError(f"einsum: {spec!r} names {len(ins)} operands but {n} were given")
    if not arrow:  # implicit output: letters seen once, in alphabetical order
        letters = "".join(ins)
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    for sub in ins:
        if len(set(sub)) != len(sub):
            raise NotImplementedError(f"einsum: repeated index within one operand ({sub!r}, a "
                                      f"diagonal/trace) is not supported")
    return ins, out


class Einsum(Function):
    """Sum of products over named axes. The gradient for operand i is again an einsum:
    of the output gradient with the other operands, producing operand i's axes (axes that
    only operand i has are summed in forward, so their gradient is broadcast back)."""

    @staticmethod
    def forward(ctx, spec, *xs):
        ins, out = _parse_einsum(spec, len(xs))
        ctx.ins, ctx.out, ctx.arrays = ins, out, [x.array for x in xs]
        return xs[0].backend.einsum(f"{','.join(ins)}->{out}", *ctx.arrays)

    @staticmethod
    def backward(ctx, gy):
        be = gy.backend
        grads = [None]
        for i, sub in enumerate(ctx.ins):
            if not ctx.needs_input_grad[i + 1]:
                grads.append(None)
                continue
            others = [s for j, s in enumerate(ctx.ins) if j != i]
            avail = set(ctx.out).union(*others) if others else set(ctx.out)
            keep = "".join(c for c in sub if c in avail)
            g = be.einsum(",".join([ctx.out] + others) + "->" + keep, gy.array,
                             *[a for j, a in enumerate(ctx.arrays) if j != i])
            if keep != sub:  # axes summed by operand i alone: broadcast the gradient back
                shape = tuple(ctx.arrays[i].shape[k] if c in keep else 1 for k, c in enumerate(sub))
                g = be.broadcast_to(be.reshape(g, shape), ctx.arrays[i].shape)
            grads.append(g)
        return tuple(grads)


def einsum(spec, *operands_):
    """``gradflow.einsum("ij,jk->ik", a, b)``: NumPy/PyTorch einsum, differentiable in every
    operand (no ellipsis or repeated index within one operand)."""
    if len(operands_) == 1 and isinstance(operands_[0], (list, tuple)):
        operands_ = tuple(operands_[0])
    xs = list(operands_)
    for t in xs[1:]:
        if t.dtype != xs[0].dtype:
            raise TypeError(f"einsum: operands have dtypes {xs[0].dtype} and {t.dtype}; convert first")
    ins, _ = _parse_einsum(spec, len(xs))
    for sub, t in zip(ins, xs):
        if len(sub) != t.ndim:
            raise ValueError(f"einsum: subscripts {sub!r} name {len(sub)} axes but the operand "
                             f"has shape {t.shape}")
    return Einsum.apply(spec, *xs)
