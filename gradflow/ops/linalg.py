"""Matrix products: ``matmul`` (2-D, batched with broadcast batch dims, 1-D
promoted as NumPy does) and the fused ``linear`` (x @ W^T + b)."""
from __future__ import annotations

import math

from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor
from .elementwise import operands
from .shape import IndexInto, reshape


def _swap_last(t):
    """The last two dims of a Tensor swapped (differentiable)."""
    return t.permute(*range(t.ndim - 2), t.ndim - 1, t.ndim - 2)


class MatMul(Function):
    """a (..., n, k) @ b (..., k, m); batch dims broadcast (the engine sums them back)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None,
                              b if ctx.needs_input_grad[0] else None)
        return a.backend.matmul(a.array, b.array)

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved_tensors
        ga = MatMul.apply(gy, _swap_last(b)) if ctx.needs_input_grad[0] else None
        gb = MatMul.apply(_swap_last(a), gy) if ctx.needs_input_grad[1] else None
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
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None,
                              w if ctx.needs_input_grad[0] else None)
        y = be.matmul(x.array, be.transpose(w.array, (1, 0)))
        if b is not None:
            y = be.binary("add", y, b.array, out=y)  # y is this op's own new array
        return y

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        need = ctx.needs_input_grad
        if not is_grad_enabled():
            # nothing is recorded (a first-order backward): the same three products on the
            # backend's arrays, without a graph node each (the MLP step's hot path)
            return _linear_grads_arrays(gy, x, w, need)
        gx = None
        if need[0]:  # a 1-D input makes gy 1-D: matmul() promotes it
            gx = MatMul.apply(gy, w) if gy.ndim > 1 else matmul(gy, w)
        gw = gb = None
        if need[1] or (len(need) > 2 and need[2]):
            rows = math.prod(gy.shape[:-1])  # not -1: ambiguous for 0 in-features
            g2 = gy if gy.ndim == 2 else gy.reshape(rows, gy.shape[-1])
            if need[1]:
                x2 = x if x.ndim == 2 else x.reshape(rows, x.shape[-1])
                gw = MatMul.apply(_swap_last(g2), x2)
            if len(need) > 2 and need[2]:
                gb = g2.sum(dim=0)
        return gx, gw, gb


def _linear_grads_arrays(gy, x, w, need):
    """Linear's (gx, gw, gb) computed on backend arrays: gy @ w, gy2^T @ x2, sum(gy2)."""
    be, g = gy.backend, gy.array
    gx = gw = gb = None
    if need[0]:
        gx = Tensor._make(be.matmul(g, w.array), be)
    if need[1] or (len(need) > 2 and need[2]):
        rows = math.prod(gy.shape[:-1])
        g2 = be.reshape(g, (rows, gy.shape[-1]))
        if need[1]:
            x2 = be.reshape(x.array, (rows, x.shape[-1]))
            gw = Tensor._make(be.matmul(be.transpose(g2, (1, 0)), x2), be)
        if len(need) > 2 and need[2]:
            gb = Tensor._make(be.reduce("sum", g2, 0, False), be)
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
# A spec is first normalised against the operand shapes into a *plan*: '...' expanded into
# fresh letters (right-aligned, one per broadcast dim), the output written out (implicit
# output: the '...' dims, then the letters seen once, sorted as torch/NumPy sort them), and
# every size-1 axis that broadcasts against a larger size dropped from its operand (a
# reshape), so the backend einsum only ever sees exact sizes. Repeated letters within one
# operand (diagonals, traces) stay in the normalised spec: the backend einsum takes the
# diagonal; backward scatters the gradient back onto it.
_EINSUM_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # ASCII order
_EINSUM_PLANS = {}


class _EinsumPlan:
    __slots__ = ("subs", "out", "shapes", "orig_shapes", "expr", "sizes")

    def __init__(self, subs, out, shapes, orig_shapes, sizes):
        self.subs, self.out, self.shapes, self.orig_shapes = subs, out, shapes, orig_shapes
        self.sizes = sizes  # letter -> size after broadcasting
        self.expr = ",".join(subs) + "->" + out


def _einsum_error(spec, shapes, msg):
    where = ", ".join(str(tuple(s)) for s in shapes)
    return ValueError(f"einsum: {msg} (spec {spec!r}, operand shapes {where})")


def _einsum_terms(spec, shapes, term, what):
    """``term`` as a list of letters with at most one ``"..."`` item."""
    toks, i = [], 0
    while i < len(term):
        c = term[i]
        if c == ".":
            if term[i:i + 3] != "...":
                raise _einsum_error(spec, shapes, f"{what} {term!r} has a '.' that is not part of "
                                    f"an ellipsis '...'")
            if "..." in toks:
                raise _einsum_error(spec, shapes, f"{what} {term!r} has more than one '...'; at "
                                    f"most one ellipsis per operand and in the output")
            toks.append("...")
            i += 3
            continue
        if c not in _EINSUM_LETTERS:
            raise _einsum_error(spec, shapes, f"{what} {term!r} has the invalid subscript {c!r}; "
                                f"subscripts are letters a-z, A-Z, one '...' per operand, ',' "
                                f"between operands and one '->' before the output")
        toks.append(c)
        i += 1
    return toks


def _einsum_plan(spec, shapes):
    """The normalised plan for ``spec`` on operands of ``shapes`` (cached; raises ValueError)."""
    key = (spec, shapes)
    plan = _EINSUM_PLANS.get(key)
    if plan is None:
        plan = _make_einsum_plan(spec, shapes)
        if len(_EINSUM_PLANS) >= 1024:
            _EINSUM_PLANS.clear()
        _EINSUM_PLANS[key] = plan
    return plan


def _make_einsum_plan(spec, shapes):
    n = len(shapes)
    s = "".join(spec.split())
    if s.count("->") > 1:
        raise _einsum_error(spec, shapes, "'->' appears more than once; write 'inputs->output'")
    lhs, arrow, rhs = s.partition("->")
    terms = lhs.split(",")
    if len(terms) != n:
        raise _einsum_error(spec, shapes, f"the spec names {len(terms)} operand(s) but {n} "
                            f"tensor(s) were given; give one comma-separated term per operand")
    ins = [_einsum_terms(spec, shapes, t, f"operand {k}") for k, t in enumerate(terms)]
    out_toks = _einsum_terms(spec, shapes, rhs, "the output") if arrow else None
    used = {c for toks in ins for c in toks if c != "..."}
    if out_toks is not None:
        seen = set()
        for c in out_toks:
            if c in seen:
                raise _einsum_error(spec, shapes, f"output index {c!r} appears more than once in "
                                    f"the output; each output index may appear once")
            seen.add(c)
            if c != "..." and c not in used:
                raise _einsum_error(spec, shapes, f"output index {c!r} does not appear in any "
                                    f"input; the output may only name indices of the inputs")
    # operand dimension counts and the '...' dims each covers
    n_ell = []
    for k, (toks, shape) in enumerate(zip(ins, shapes)):
        named = len(toks) - ("..." in toks)
        if "..." not in toks and named != len(shape):
            raise _einsum_error(spec, shapes, f"subscripts {terms[k]!r} of operand {k} name "
                                f"{named} axes but the operand has {len(shape)} dims (shape "
                                f"{tuple(shape)}); write one letter per axis, or use '...' for "
                                f"the axes you do not name")
        if named > len(shape):
            raise _einsum_error(spec, shapes, f"subscripts {terms[k]!r} of operand {k} name "
                                f"{named} axes besides '...' but the operand has only "
                                f"{len(shape)} dims (shape {tuple(shape)})")
        n_ell.append(len(shape) - named if "..." in toks else 0)
    e = max(n_ell, default=0)
    free = [c for c in _EINSUM_LETTERS if c not in used]
    if e > len(free):
        raise _einsum_error(spec, shapes, f"'...' covers {e} dims but only {len(free)} letters are "
                            f"left unused; einsum supports at most {len(_EINSUM_LETTERS)} distinct "
                            f"indices")
    ell = free[:e]
    # expand '...' (right-aligned) and check that the dims it covers broadcast
    subs, ell_shape = [], [1] * e
    for k, (toks, shape) in enumerate(zip(ins, shapes)):
        letters = []
        for c in toks:
            letters.extend(ell[e - n_ell[k]:] if c == "..." else [c])
        subs.append(letters)
        if "..." in toks:
            at = toks.index("...")
            part = shape[at:at + n_ell[k]]
            for j, size in enumerate(part):
                d = e - n_ell[k] + j
                if size != ell_shape[d] and size != 1 and ell_shape[d] != 1:
                    covered = "; ".join(
                        f"operand {m}: {tuple(shapes[m][ins[m].index('...'):][:n_ell[m]])}"
                        for m in range(k + 1) if "..." in ins[m])
                    raise _einsum_error(
                        spec, shapes, f"the dims covered by '...' do not broadcast ({covered}); "
                        f"aligned from the right, sizes must be equal or one of them 1")
                if size != 1:
                    ell_shape[d] = size
    # sizes of named indices: equal within an operand (a diagonal), equal or 1 across them
    sizes, src = dict(zip(ell, ell_shape)), {}
    for k, (letters, shape) in enumerate(zip(subs, shapes)):
        mine = {}
        for c, size in zip(letters, shape):
            if c in mine and mine[c] != size:
                raise _einsum_error(spec, shapes, f"index {c!r} is repeated in operand {k} "
                                    f"({terms[k]!r}, a diagonal) but its axes have sizes "
                                    f"{mine[c]} and {size}; a repeated index needs equal sizes")
            mine[c] = size
        for c, size in mine.items():
            if c in ell:
                continue
            if c not in sizes or sizes[c] == 1:
                sizes[c], src[c] = size, k
            elif size != sizes[c] and size != 1:
                raise _einsum_error(spec, shapes, f"index {c!r} has size {size} in operand {k} "
                                    f"but size {sizes[c]} in operand {src[c]}; sizes of one index "
                                    f"must match (or be 1, which broadcasts)")
    # the output
    if out_toks is None:
        counts = {}
        for toks in ins:
            for c in toks:
                counts[c] = counts.get(c, 0) + 1
        out = ell + sorted(c for c, m in counts.items() if m == 1 and c != "...")
    else:
        out = []
        for c in out_toks:
            out.extend(ell if c == "..." else [c])
    # drop the size-1 axes that broadcast against a larger (or empty) size
    new_subs, new_shapes = [], []
    for letters, shape in zip(subs, shapes):
        keep = [j for j, (c, size) in enumerate(zip(letters, shape))
                if not (size == 1 and sizes[c] != 1)]
        new_subs.append("".join(letters[j] for j in keep))
        new_shapes.append(tuple(shape[j] for j in keep))
    return _EinsumPlan(tuple(new_subs), "".join(out), tuple(new_shapes), tuple(shapes), sizes)


def _unique(sub):
    return "".join(dict.fromkeys(sub))


def _einsum_diag_scatter(g, sub, shape):
    """Zeros of ``shape`` (axes ``sub``, with repeated letters) holding the Tensor ``g``
    (axes ``_unique(sub)``) on the diagonal of every repeated letter: the adjoint of
    taking it (differentiable)."""
    be = g.backend
    u = _unique(sub)
    pos = {c: k for k, c in enumerate(u)}
    index = []
    for c, size in zip(sub, shape):
        view = [1] * len(u)
        view[pos[c]] = size
        index.append(be.reshape(be.arange(0, size, 1, "int64"), tuple(view)))
    return IndexInto.apply(g, shape, tuple(index), True)


class Einsum(Function):
    """Sum of products over named axes. The gradient for operand i is again an einsum:
    of the output gradient with the other operands, producing operand i's distinct axes
    (axes that only operand i has are summed in forward, so their gradient is broadcast
    back); a repeated index (a diagonal) gets that gradient scattered onto its diagonal, and
    an axis of size 1 that broadcast gets the gradient summed (it was dropped in forward)."""

    @staticmethod
    def forward(ctx, spec, *xs):  # spec: a string, or the plan einsum() made of it
        be = xs[0].backend
        plan = spec if isinstance(spec, _EinsumPlan) else \
            _einsum_plan(spec, tuple(tuple(x.shape) for x in xs))
        arrays = [x.array if x.shape == sh else be.reshape(x.array, sh)
                  for x, sh in zip(xs, plan.shapes)]
        need = ctx.needs_input_grad[1:]
        # operand j is needed by the gradient of every other operand
        ctx.plan = plan
        ctx.save_for_backward(*[x if any(need[:j] + need[j + 1:]) else None
                                for j, x in enumerate(xs)])
        return be.einsum(plan.expr, *arrays)

    @staticmethod
    def backward(ctx, gy):
        plan = ctx.plan
        xs = [x if x is None or x.shape == sh else x.reshape(sh)
              for x, sh in zip(ctx.saved_tensors, plan.shapes)]
        grads = [None]
        for i, sub in enumerate(plan.subs):
            if not ctx.needs_input_grad[i + 1]:
                grads.append(None)
                continue
            others = [s for j, s in enumerate(plan.subs) if j != i]
            avail = set(plan.out).union(*others)
            u = _unique(sub)
            keep = "".join(c for c in u if c in avail)
            g = Einsum.apply(",".join([plan.out] + others) + "->" + keep, gy,
                             *[a for j, a in enumerate(xs) if j != i])
            if keep != u:  # axes summed by operand i alone: broadcast the gradient back
                full = tuple(plan.sizes[c] for c in u)
                g = g.reshape(tuple(n if c in keep else 1 for c, n in zip(u, full)))
                g = g.broadcast_to(full)
            if u != sub:  # a repeated index: the gradient lives on the diagonal
                g = _einsum_diag_scatter(g, sub, plan.shapes[i])
            if plan.shapes[i] != plan.orig_shapes[i]:  # broadcast size-1 axes: summed back
                g = g.reshape(plan.orig_shapes[i])
            grads.append(g)
        return tuple(grads)


def einsum(spec, *operands_):
    """``gradflow.einsum("ij,jk->ik", a, b)``: PyTorch/NumPy einsum, differentiable in every
    operand. Supports implicit output (``"ij,jk"``), ellipsis (``"...ij,...jk->...ik"``, the
    '...' dims broadcast, and are summed when the output omits them, as in PyTorch),
    repeated indices within one operand (``"ii->i"`` diagonal, ``"ii->"`` trace) and size-1
    axes that broadcast against a larger size of the same index."""
    if len(operands_) == 1 and isinstance(operands_[0], (list, tuple)):
        operands_ = tuple(operands_[0])
    if not isinstance(spec, str):
        raise TypeError(f"einsum: the spec must be a string such as 'ij,jk->ik', got "
                        f"{type(spec).__name__} (the sublist form is not supported)")
    xs = list(operands_)
    if not xs:
        raise ValueError(f"einsum: {spec!r} was given no operands; pass at least one Tensor")
    for k, t in enumerate(xs):
        if not isinstance(t, Tensor):
            raise TypeError(f"einsum: operand {k} has type {type(t).__name__}; expected a Tensor")
    for t in xs[1:]:
        if t.dtype != xs[0].dtype:
            raise TypeError(f"einsum: operands have dtypes {xs[0].dtype} and {t.dtype}; convert first")
    plan = _einsum_plan(spec, tuple(tuple(t.shape) for t in xs))  # validates
    return Einsum.apply(plan, *xs)
