"""More of PyTorch's tensor functions, composed from the differentiable ops (so their
gradients, and higher-order ones, come from the ops they are made of).

Each function takes the tensor first, as ``torch.<name>(input, ...)``; those that are
also methods are bound onto ``Tensor`` by :mod:`gradflow.tensor_extra`. Index
arithmetic that only builds integer indices (``repeat_interleave``, ``unfold``,
``tril_indices``) is plain Python; every value computation goes through the ops.
"""
from __future__ import annotations

import builtins
import math
import numbers

from .. import dtypes
from ..creation import eye, rand, tensor
from ..tensor import Tensor, ValuesIndices
from . import elementwise as _ew, shape as _sh


def _dim(d, ndim, op):
    n = builtins.max(ndim, 1)
    if not isinstance(d, numbers.Integral) or not -n <= d < n:
        raise IndexError(f"{op}: dimension {d!r} out of range for a {ndim}-D tensor "
                         f"(valid: {-n} to {n - 1})")
    return int(d) % n


def _int(v, op, what):
    if isinstance(v, Tensor):
        if v.numel() != 1 or v.dtype.kind not in "iu":
            raise TypeError(f"{op}: {what} must be an integer or a one-element integer tensor, "
                            f"got shape {v.shape} {v.dtype}")
        return int(v.item())
    if not isinstance(v, numbers.Integral) or isinstance(v, bool):
        raise TypeError(f"{op}: {what} must be an integer, got {v!r}")
    return int(v)


def _like(value, x):
    return value if isinstance(value, Tensor) else Tensor(value, dtype=x.dtype, backend=x.backend)


def _index(values, like):
    """An int64 index tensor on ``like``'s backend from a Python list."""
    return Tensor(list(values), dtype=dtypes.int64, backend=like.backend)


# -- slicing and rearranging ---------------------------------------------------------------
def narrow(input, dim, start, length):
    """``input`` restricted to ``start:start + length`` along ``dim`` (a view, as
    PyTorch's: differentiable, sharing storage). ``start`` may be negative."""
    d = _dim(dim, input.ndim, "narrow")
    if input.ndim == 0:
        raise RuntimeError("narrow: cannot be applied to a 0-dim tensor")
    size = input.shape[d]
    start, length = _int(start, "narrow", "start"), _int(length, "narrow", "length")
    if not -size <= start <= size:
        raise IndexError(f"narrow: start {start} out of range for dimension {d} of size {size} "
                         f"(shape {input.shape})")
    start %= builtins.max(size, 1) if start < 0 else size + 1
    if length < 0 or start + length > size:
        raise RuntimeError(f"narrow: start ({start}) + length ({length}) exceeds dimension {d} "
                           f"of size {size} (shape {input.shape})")
    return input[(slice(None),) * d + (slice(start, start + length),)]


def narrow_copy(input, dim, start, length):
    return narrow(input, dim, start, length).clone()


def select(input, dim, index):
    """``input[..., index, ...]`` at ``dim``, which disappears."""
    d = _dim(dim, input.ndim, "select")
    i = _int(index, "select", "index")
    if not -input.shape[d] <= i < input.shape[d]:
        raise IndexError(f"select: index {i} out of range for dimension {d} of size "
                         f"{input.shape[d]} (shape {input.shape})")
    return input[(slice(None),) * d + (i,)]


def swapaxes(input, axis0, axis1):
    return input.transpose(axis0, axis1)


def movedim(input, source, destination):
    """Move the dims ``source`` to the positions ``destination`` (ints or sequences)."""
    src = [source] if isinstance(source, numbers.Integral) else list(source)
    dst = [destination] if isinstance(destination, numbers.Integral) else list(destination)
    if len(src) != len(dst):
        raise ValueError(f"movedim: source {source} and destination {destination} must have the "
                         f"same number of dims")
    src = [_dim(s, input.ndim, "movedim") for s in src]
    dst = [_dim(s, input.ndim, "movedim") for s in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(f"movedim: repeated dim in source {source} or destination {destination}")
    order = [None] * input.ndim
    for s, t in zip(src, dst):
        order[t] = s
    rest = iter(d for d in range(input.ndim) if d not in src)
    order = [o if o is not None else next(rest) for o in order]
    return input.permute(*order)


def ravel(input):
    return input.reshape(-1)


def tile(input, dims):
    """Repeat ``input`` ``dims[i]`` times along each dim (``dims`` shorter than the rank
    is padded with ones in front; longer adds leading dims), as ``torch.tile``."""
    dims = tuple(dims)
    if input.ndim > len(dims):
        dims = (1,) * (input.ndim - len(dims)) + dims
    x = input.reshape((1,) * (len(dims) - input.ndim) + input.shape)
    return x.repeat(*dims)


def tensor_split(input, indices_or_sections, dim=0):
    """Split into ``n`` nearly equal parts (the first ``size % n`` one longer) or at the
    given indices, as ``torch.tensor_split``; views of ``input``."""
    d = _dim(dim, input.ndim, "tensor_split")
    size = input.shape[d]
    if isinstance(indices_or_sections, numbers.Integral):
        n = int(indices_or_sections)
        if n <= 0:
            raise RuntimeError(f"tensor_split: number of sections must be larger than 0, got {n}")
        q, r = divmod(size, n)
        bounds, at = [], 0
        for i in range(n - 1):
            at += q + (1 if i < r else 0)
            bounds.append(at)
    else:
        bounds = [int(b) for b in indices_or_sections]
    edges = [0] + bounds + [size]
    pre = (slice(None),) * d
    return tuple(input[pre + (slice(builtins.min(a, size), builtins.min(builtins.max(a, b), size)),)]
                 for a, b in zip(edges[:-1], edges[1:]))


def hsplit(input, sections):
    return tensor_split(input, sections, 1 if input.ndim > 1 else 0)


def vsplit(input, sections):
    return tensor_split(input, sections, 0)


def diff(input, n=1, dim=-1, prepend=None, append=None):
    """The ``n``-th forward difference along ``dim`` (``x[1:] - x[:-1]``, repeated)."""
    d = _dim(dim, input.ndim, "diff")
    x = input
    if prepend is not None or append is not None:
        parts = [_like(p, input) for p in (prepend, input, append) if p is not None]
        x = _sh.cat(parts, d)
    pre = (slice(None),) * d
    for _ in range(n):
        x = x[pre + (slice(1, None),)] - x[pre + (slice(None, -1),)]
    return x


def unfold(input, dimension, size, step):
    """Every window of ``size`` elements along ``dimension``, ``step`` apart, as a new
    last dim (``Tensor.unfold``): shape ``(..., (n - size) // step + 1, ..., size)``."""
    d = _dim(dimension, input.ndim, "unfold")
    n = input.shape[d] if input.ndim else 1
    if size < 0 or size > n or step <= 0:
        raise RuntimeError(f"unfold: size {size} and step {step} invalid for dimension {d} of "
                           f"size {n} (shape {input.shape}); need 0 <= size <= {n}, step > 0")
    windows = (n - size) // step + 1
    idx = _index([w * step + k for w in range(windows) for k in range(size)], input)
    picked = _sh.index_select(input, d, idx)
    shape = input.shape[:d] + (windows, size) + input.shape[d + 1:]
    return movedim(picked.reshape(shape), d + 1, -1)


def repeat_interleave(input, repeats=None, dim=None, output_size=None):
    """Each element (or slice along ``dim``) repeated ``repeats`` times (an int or one
    count per element); ``repeat_interleave(counts)`` alone gives
    ``[0]*counts[0] + [1]*counts[1] + ...``. Without ``dim`` the input is flattened."""
    if repeats is None:  # torch.repeat_interleave(repeats_tensor)
        counts = input
        if counts.ndim != 1 or counts.dtype.kind not in "iu":
            raise TypeError(f"repeat_interleave: expected a 1-D integer tensor of counts, got "
                            f"shape {counts.shape} {counts.dtype}")
        return _index([i for i, r in enumerate(counts.tolist()) for _ in range(r)], counts)
    x = input.reshape(-1) if dim is None else input
    d = 0 if dim is None else _dim(dim, input.ndim, "repeat_interleave")
    n = x.shape[d] if x.ndim else 1
    if isinstance(repeats, Tensor):
        reps = repeats.tolist() if repeats.ndim else [int(repeats.item())] * n
    elif isinstance(repeats, numbers.Integral):
        reps = [int(repeats)] * n
    else:
        reps = list(repeats)
    if len(reps) == 1 and n != 1:
        reps = reps * n
    if len(reps) != n or builtins.any(r < 0 for r in reps):
        raise RuntimeError(f"repeat_interleave: repeats must be non-negative and have one entry "
                           f"per element along dim {d} ({n}), got {len(reps)} entries")
    idx = _index([i for i, r in enumerate(reps) for _ in range(r)], x)
    if x.ndim == 0:
        x = x.reshape(1)
    return _sh.index_select(x, d, idx)


def broadcast_tensors(*tensors):
    shape = broadcast_shapes(*(t.shape for t in tensors))
    return tuple(t.expand(*shape) for t in tensors)


def broadcast_shapes(*shapes):
    out = []
    for dims in zip(*(((1,) * (builtins.max(map(len, shapes)) - len(s)) + tuple(s)) for s in shapes)):
        big = builtins.max(dims)
        if builtins.any(d not in (1, big) for d in dims):
            raise RuntimeError(f"broadcast_shapes: shapes {list(map(tuple, shapes))} are not "
                               f"broadcastable")
        out.append(big if 0 not in dims else 0)
    return tuple(out)


def broadcast_to(input, size):
    return input.expand(*size)


def atleast_1d(*tensors):
    out = tuple(t.reshape(1) if t.ndim == 0 else t for t in _flat_args(tensors))
    return out[0] if len(out) == 1 else out


def atleast_2d(*tensors):
    out = tuple(t.reshape((1,) * (2 - t.ndim) + t.shape) if t.ndim < 2 else t
                for t in _flat_args(tensors))
    return out[0] if len(out) == 1 else out


def atleast_3d(*tensors):
    def three(t):
        if t.ndim == 0:
            return t.reshape(1, 1, 1)
        if t.ndim == 1:
            return t.reshape(1, -1, 1)
        return t.unsqueeze(-1) if t.ndim == 2 else t
    out = tuple(three(t) for t in _flat_args(tensors))
    return out[0] if len(out) == 1 else out


def _flat_args(tensors):
    return tuple(tensors[0]) if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)) \
        else tensors


def hstack(tensors):
    ts = atleast_1d(*tensors)
    ts = ts if isinstance(ts, tuple) else (ts,)
    return _sh.cat(list(ts), 0 if ts[0].ndim == 1 else 1)


def vstack(tensors):
    ts = atleast_2d(*tensors)
    return _sh.cat(list(ts if isinstance(ts, tuple) else (ts,)), 0)


def dstack(tensors):
    ts = atleast_3d(*tensors)
    return _sh.cat(list(ts if isinstance(ts, tuple) else (ts,)), 2)


def column_stack(tensors):
    return _sh.cat([t.reshape(-1, 1) if t.ndim <= 1 else t for t in tensors], 1)


def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids from 1-D tensors; ``indexing='ij'`` (matrix, PyTorch's default)
    or ``'xy'`` (Cartesian: the first two output dims swapped)."""
    ts = _flat_args(tensors)
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    if builtins.any(t.ndim > 1 for t in ts):
        raise RuntimeError(f"meshgrid: expects 0-D or 1-D tensors, got shapes "
                           f"{[t.shape for t in ts]}")
    ts = [t.reshape(-1) for t in ts]
    swap = indexing == "xy" and len(ts) >= 2  # 'xy' is 'ij' of the first two swapped
    if swap:
        ts[0], ts[1] = ts[1], ts[0]
    shape = tuple(t.shape[0] for t in ts)
    grids = []
    for i, t in enumerate(ts):
        view = [1] * len(ts)
        view[i] = -1
        grids.append(t.reshape(view).expand(*shape))
    if swap:
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)


def cartesian_prod(*tensors):
    grids = meshgrid(*tensors, indexing="ij")
    if len(grids) == 1:
        return grids[0]
    return _sh.stack([g.reshape(-1) for g in grids], 1)


def tril_indices(row, col, offset=0, dtype=None, backend=None, device=None):
    return _tri_indices(row, col, offset, True, dtype, backend, device)


def triu_indices(row, col, offset=0, dtype=None, backend=None, device=None):
    return _tri_indices(row, col, offset, False, dtype, backend, device)


def _tri_indices(row, col, offset, lower, dtype, backend, device):
    pairs = [(i, j) for i in range(row) for j in range(col) if (j - i <= offset if lower else
                                                                 j - i >= offset)]
    rows, cols = [p[0] for p in pairs], [p[1] for p in pairs]
    return tensor([rows, cols], dtype=dtype or dtypes.int64, backend=backend, device=device)


def diag(input, diagonal=0):  # noqa: F811 - the argument shadows diagonal() inside
    """1-D input: a square matrix with it on the ``diagonal``-th diagonal; 2-D input: that
    diagonal as 1-D. Differentiable."""
    if input.ndim == 1:
        n = input.shape[0] + builtins.abs(diagonal)
        out = input.new_zeros(n, n)
        be = input.backend
        r = be.arange(0, input.shape[0], 1, dtypes.int64)
        idx = (r, r + diagonal) if diagonal >= 0 else (r - diagonal, r)
        if input.requires_grad:
            return _sh.scatter(out.reshape(-1), 0, Tensor._make(idx[0] * n + idx[1], be),
                               input, _op="diag").reshape(n, n)
        be.setitem_(out.array, idx, input.array)
        return out
    if input.ndim == 2:
        return globals()['diagonal'](input, diagonal)
    raise ValueError(f"diag: expected a 1-D or 2-D tensor, got shape {input.shape}")


def diagonal(input, offset=0, dim1=0, dim2=1):
    """The ``offset``-th diagonal of a 2-D tensor, as 1-D (differentiable)."""
    if input.ndim != 2 or {dim1 % 2, dim2 % 2} != {0, 1}:
        raise NotImplementedError(f"diagonal: only 2-D inputs are supported, got shape "
                                  f"{input.shape}, dims ({dim1}, {dim2})")
    if dim1 % 2 == 1:
        input = input.t()
    rows, cols = input.shape
    r0, c0 = (0, offset) if offset >= 0 else (-offset, 0)
    n = builtins.max(0, builtins.min(rows - r0, cols - c0))
    be = input.backend
    r = be.arange(0, n, 1, dtypes.int64)
    return _sh.getitem(input, (Tensor._make(r + r0, be), Tensor._make(r + c0, be)))


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """Matrices with the last dim of ``input`` on their ``offset`` diagonal (only the
    default ``dim1=-2, dim2=-1`` layout)."""
    if (dim1 % (input.ndim + 1), dim2 % (input.ndim + 1)) != (input.ndim - 1, input.ndim):
        raise NotImplementedError("diag_embed: only dim1=-2, dim2=-1 is supported")
    n = input.shape[-1] + builtins.abs(offset)
    x = input
    if offset:  # zeros where the rolled diagonal wraps around
        z = input.new_zeros(*input.shape[:-1], builtins.abs(offset))
        x = _sh.cat([x, z] if offset > 0 else [z, x], -1)
    out = x.unsqueeze(-1) * eye(n, dtype=input.dtype, backend=input.backend)
    # (i, i) -> (i, i + offset): rolling the columns moves the main diagonal to ``offset``
    return _sh.roll(out, offset, -1) if offset else out


def diagflat(input, offset=0):
    return diag(input.reshape(-1), offset)


def block_diag(*tensors):
    """A block-diagonal matrix of the given 0-D, 1-D (a row) or 2-D blocks."""
    ts = [t.reshape(1, -1) if t.ndim < 2 else t for t in tensors]
    if builtins.any(t.ndim != 2 for t in ts):
        raise RuntimeError(f"block_diag: inputs must have 2 dims or fewer, got "
                           f"{[t.shape for t in tensors]}")
    width = builtins.sum(t.shape[1] for t in ts)
    rows, at = [], 0
    for t in ts:
        left = t.new_zeros(t.shape[0], at)
        right = t.new_zeros(t.shape[0], width - at - t.shape[1])
        rows.append(_sh.cat([left, t, right], 1))
        at += t.shape[1]
    return _sh.cat(rows, 0)


def take(input, index):
    """``input.reshape(-1)[index]`` (the result has ``index``'s shape)."""
    return _sh.index_select(input.reshape(-1), 0, index.reshape(-1)).reshape(index.shape)


def index_fill(input, dim, index, value):
    d = _dim(dim, input.ndim, "index_fill")
    mask = isin(arange_like(input, input.shape[d]), index)
    view = [1] * input.ndim
    view[d] = -1
    return _ew.where(mask.reshape(view), _like(value, input).to(input.dtype), input)


def index_copy(input, dim, index, source):
    return index_fill(input, dim, index, 0).index_add(dim, index, source)


def arange_like(x, n):
    return Tensor(list(range(n)), dtype=dtypes.int64, backend=x.backend)


def isin(elements, test_elements, invert=False):
    """Elementwise: is each element of ``elements`` among ``test_elements``?"""
    test = _like(test_elements, elements).reshape(-1)
    hit = (elements.unsqueeze(-1) == test).any(-1) if test.numel() else \
        elements.new_zeros(*elements.shape, dtype=dtypes.bool_)
    return ~hit if invert else hit


def sum_to_size(input, *size):
    size = _sh.shape_arg(size)
    lead = input.ndim - len(size)
    if lead < 0:
        raise RuntimeError(f"sum_to_size: size {size} is not expandable to {input.shape}")
    out = input.sum(tuple(range(lead))) if lead else input
    dims = tuple(i for i, (s, t) in enumerate(zip(size, out.shape)) if s == 1 and t != 1)
    for i, (s, t) in enumerate(zip(size, out.shape)):
        if s not in (1, t):
            raise RuntimeError(f"sum_to_size: size {size} is not expandable to {input.shape}")
    return out.sum(dims, keepdim=True) if dims else out


# -- arithmetic ------------------------------------------------------------------------------
def addcmul(input, tensor1, tensor2, value=1):
    return input + value * tensor1 * tensor2


def addcdiv(input, tensor1, tensor2, value=1):
    return input + value * tensor1 / tensor2


def _scaled(beta, input, alpha, product):
    out = product if alpha == 1 else alpha * product
    if beta == 0:  # PyTorch ignores input (even NaN in it) when beta is 0
        return out
    return (input if beta == 1 else beta * input) + out


def addmm(input, mat1, mat2, beta=1, alpha=1):
    """``beta * input + alpha * (mat1 @ mat2)``."""
    if mat1.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"addmm: mat1 and mat2 must be matrices, got shapes {mat1.shape} "
                           f"and {mat2.shape}")
    return _scaled(beta, input, alpha, mat1 @ mat2)


def addmv(input, mat, vec, beta=1, alpha=1):
    return _scaled(beta, input, alpha, mv(mat, vec))


def addbmm(input, batch1, batch2, beta=1, alpha=1):
    return _scaled(beta, input, alpha, (batch1 @ batch2).sum(0))


def baddbmm(input, batch1, batch2, beta=1, alpha=1):
    if batch1.ndim != 3 or batch2.ndim != 3:
        raise RuntimeError(f"baddbmm: batch1 and batch2 must be 3-D, got shapes {batch1.shape} "
                           f"and {batch2.shape}")
    return _scaled(beta, input, alpha, batch1 @ batch2)


def mv(input, vec):
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"mv: expected a matrix and a vector, got shapes {input.shape} and "
                           f"{vec.shape}")
    return input @ vec


def trace(input):
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, got shape {input.shape}")
    return diagonal(input).sum()


def tensordot(a, b, dims=2):
    """Contract the last ``dims`` dims of ``a`` with the first of ``b`` (or the listed
    pairs ``dims=([a dims], [b dims])``)."""
    if isinstance(dims, numbers.Integral):
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        da, db = [[d] if isinstance(d, numbers.Integral) else list(d) for d in dims]
    da = [_dim(d, a.ndim, "tensordot") for d in da]
    db = [_dim(d, b.ndim, "tensordot") for d in db]
    ka = [d for d in range(a.ndim) if d not in da]
    kb = [d for d in range(b.ndim) if d not in db]
    k = 1
    for d in da:
        k *= a.shape[d]
    am = a.permute(*(ka + da)).reshape(-1, k) if a.ndim else a.reshape(1, 1)
    bm = b.permute(*(db + kb)).reshape(k, -1) if b.ndim else b.reshape(1, 1)
    return (am @ bm).reshape(tuple(a.shape[d] for d in ka) + tuple(b.shape[d] for d in kb))


def kron(a, b):
    nd = builtins.max(a.ndim, b.ndim)
    a = a.reshape((1,) * (nd - a.ndim) + a.shape)
    b = b.reshape((1,) * (nd - b.ndim) + b.shape)
    inter = [v for i in range(nd) for v in (a.shape[i], 1)]
    inter_b = [v for i in range(nd) for v in (1, b.shape[i])]
    out = a.reshape(inter) * b.reshape(inter_b)
    return out.reshape(tuple(a.shape[i] * b.shape[i] for i in range(nd)))


def cross(input, other, dim=None):
    """The 3-vector cross product along ``dim`` (the first dim of size 3 if None)."""
    if dim is None:
        dim = next((i for i, s in enumerate(input.shape) if s == 3), None)
        if dim is None:
            raise RuntimeError(f"cross: no dimension of size 3 in input of shape {input.shape}")
    d = _dim(dim, input.ndim, "cross")
    if input.shape[d] != 3 or other.shape[d] != 3:
        raise RuntimeError(f"cross: dimension {d} must have size 3, got shapes {input.shape} "
                           f"and {other.shape}")
    a = [select(input, d, i) for i in range(3)]
    b = [select(other, d, i) for i in range(3)]
    return _sh.stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2],
                      a[0] * b[1] - a[1] * b[0]], d)


def lerp(input, end, weight):
    return input + (end - input) * weight


def clamp_min(input, min):  # noqa: A002
    return input.clamp(min=min)


def clamp_max(input, max):  # noqa: A002
    return input.clamp(max=max)


def divide(input, other, rounding_mode=None):
    """``input / other``; ``rounding_mode='trunc'`` or ``'floor'`` rounds the quotient."""
    if rounding_mode is None:
        return _ew.div(input, other)
    if rounding_mode == "floor":
        return _ew.floordiv(input, other)
    if rounding_mode == "trunc":
        q = _ew.div(input, other)
        if isinstance(input, Tensor) and input.dtype.kind in "iu" and \
                (not isinstance(other, Tensor) or other.dtype.kind in "iu") and \
                not isinstance(other, float):
            return q.trunc().to(input.dtype)
        return q.trunc()
    raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")


true_divide = _ew.div


def negative(input):
    return -input


def positive(input):
    return input


def fix(input):
    return input.trunc()


def frac(input):
    return input - input.trunc()


def fmod(input, other):
    """Remainder with the sign of the dividend (C's fmod), unlike ``remainder``."""
    return input - divide(input, other, "trunc") * other


def float_power(input, exponent):
    x = input.to(dtypes.float64) if isinstance(input, Tensor) else input
    e = exponent.to(dtypes.float64) if isinstance(exponent, Tensor) else exponent
    return _ew.pow(x, e)


def _float(x):
    return x if x.dtype.kind == "f" else x.to(dtypes.get_default_dtype())


def log2(input):
    return _float(input).log() * (1.0 / math.log(2.0))


def log10(input):
    return _float(input).log() * (1.0 / math.log(10.0))


def exp2(input):
    return (_float(input) * math.log(2.0)).exp()


def tan(input):
    x = _float(input)
    return x.sin() / x.cos()


def sinh(input):
    x = _float(input)
    return (x.expm1() - (-x).expm1()) * 0.5  # expm1 keeps small |x| accurate


def cosh(input):
    x = _float(input)
    return (x.exp() + (-x).exp()) * 0.5


def asin(input):
    x = _float(input)
    return _ew.atan2(x, (1 - x * x).sqrt())


def acos(input):
    x = _float(input)
    return _ew.atan2((1 - x * x).sqrt(), x)


def asinh(input):
    x = _float(input)
    return x.sign() * (x.abs() + (x * x + 1).sqrt()).log()


def atanh(input):
    x = _float(input)
    return 0.5 * ((1 + x).log() - (1 - x).log())


def logit(input, eps=None):
    x = _float(input)
    if eps is not None:
        x = x.clamp(eps, 1 - eps)
    return (x / (1 - x)).log()


def xlogy(input, other):
    """``input * log(other)``, 0 where ``input == 0`` (NaN ``other`` still gives NaN)."""
    x = _like(input, other) if not isinstance(input, Tensor) else input
    y = _like(other, x) if not isinstance(other, Tensor) else other
    x, y = _float(x), _float(y)
    safe = _ew.where(x == 0, y.new_ones(()), y)  # no log(0) * 0 = NaN in the gradient
    out = x * safe.log()
    return _ew.where((x == 0) & ~y.isnan(), out.new_zeros(()), out)


def hypot(input, other):
    return (input * input + other * other).sqrt()


def logaddexp(input, other):
    m = _ew.maximum(input, other).detach()
    m = _ew.where(m.isinf(), m.new_zeros(()), m)  # keep -inf + -inf at -inf, not NaN
    return m + ((input - m).exp() + (other - m).exp()).log()


def sgn(input):
    return input.sign()


def signbit(input):
    """True where the sign bit is set (negative numbers and -0.0)."""
    if input.dtype.kind != "f":
        return input < 0
    return (input < 0) | ((input == 0) & ((1.0 / input) < 0))


def copysign(input, other):
    mag = _float(input).abs()
    neg = signbit(_like(other, mag)) if isinstance(other, Tensor) else \
        mag.new_full((), math.copysign(1.0, other) < 0, dtype=dtypes.bool_)
    return _ew.where(neg, -mag, mag)


def heaviside(input, values):
    zero, one = input.new_zeros(()), input.new_ones(())
    return _ew.where(input == 0, values.to(input.dtype), _ew.where(input > 0, one, zero))


def sinc(input):
    x = _float(input) * math.pi
    safe = _ew.where(x == 0, x.new_ones(()), x)
    return _ew.where(x == 0, x.new_ones(()), safe.sin() / safe)


def deg2rad(input):
    return _float(input) * (math.pi / 180.0)


def rad2deg(input):
    return _float(input) * (180.0 / math.pi)


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """NaN -> ``nan``, +inf -> ``posinf`` (default: the dtype's largest finite value),
    -inf -> ``neginf`` (default: the most negative). Integer tensors are returned as is."""
    if input.dtype.kind != "f":
        return input.clone()
    import numpy  # host-side dtype limits only
    info = numpy.finfo(input.dtype)
    hi = float(info.max) if posinf is None else posinf
    lo = float(-info.max) if neginf is None else neginf
    full = input.new_full
    out = _ew.where(input.isnan(), full((), nan), input)
    out = _ew.where(out == math.inf, full((), hi), out)
    return _ew.where(out == -math.inf, full((), lo), out)


def nansum(input, dim=None, keepdim=False, dtype=None):
    x = input if dtype is None else input.to(dtype)
    x = _ew.where(x.isnan(), x.new_zeros(()), x) if x.dtype.kind == "f" else x
    return x.sum(dim, keepdim)


def nanmean(input, dim=None, keepdim=False, dtype=None):
    x = input if dtype is None else input.to(dtype)
    if x.dtype.kind != "f":
        raise RuntimeError(f"nanmean: expected a floating-point input, got {x.dtype}")
    keep = ~x.isnan()
    return nansum(x, dim, keepdim) / keep.sum(dim, keepdim).to(x.dtype)


# -- scans and order statistics ----------------------------------------------------------
def cumprod(input, dim, dtype=None):
    """Running product along ``dim`` (a product per step: exact with zeros and signs)."""
    x = input if dtype is None else input.to(dtype)
    d = _dim(dim, x.ndim, "cumprod")
    if x.ndim == 0:
        return x.clone()
    parts, acc = [], None
    for s in x.unbind(d):
        acc = s if acc is None else acc * s
        parts.append(acc)
    return _sh.stack(parts, d) if parts else x.clone()


def _cum_extreme(input, dim, largest, op):
    d = _dim(dim, input.ndim, op)
    if input.ndim == 0:
        return ValuesIndices(input.clone(), input.new_zeros((), dtype=dtypes.int64))
    vals, idxs, best, where_ = [], [], None, None
    for i, s in enumerate(input.unbind(d)):
        if best is None:
            best, where_ = s, s.new_zeros(*s.shape, dtype=dtypes.int64)
        else:
            better = (s >= best) if largest else (s <= best)
            better = better | s.isnan() if s.dtype.kind == "f" else better
            best = _ew.where(better, s, best)
            where_ = _ew.where(better, s.new_full((), i, dtype=dtypes.int64), where_)
        vals.append(best)
        idxs.append(where_)
    return ValuesIndices(_sh.stack(vals, d), _sh.stack(idxs, d))


def cummax(input, dim):
    return _cum_extreme(input, dim, True, "cummax")


def cummin(input, dim):
    return _cum_extreme(input, dim, False, "cummin")


def logcumsumexp(input, dim):
    d = _dim(dim, input.ndim, "logcumsumexp")
    m = input.detach().amax(d, keepdim=True)
    m = _ew.where(m.isinf(), m.new_zeros(()), m)
    return (input - m).exp().cumsum(d).log() + m


def kthvalue(input, k, dim=-1, keepdim=False):
    """The ``k``-th smallest value (1-based) along ``dim`` and its index."""
    d = _dim(dim, input.ndim, "kthvalue")
    n = input.shape[d] if input.ndim else 1
    if not 1 <= k <= n:
        raise RuntimeError(f"kthvalue: k ({k}) out of range for dimension {d} of size {n}")
    vals, idx = _sh.sort(input, d)
    v, i = select(vals, d, k - 1), select(idx, d, k - 1)
    if keepdim:
        v, i = v.unsqueeze(d), i.unsqueeze(d)
    return ValuesIndices(v, i)


def median(input, dim=None, keepdim=False):
    """The lower median (``torch.median``): of all elements, or ``(values, indices)``
    along ``dim``."""
    if dim is None:
        flat = input.reshape(-1)
        return kthvalue(flat, (flat.shape[0] + 1) // 2, 0).values
    n = input.shape[_dim(dim, input.ndim, "median")] if input.ndim else 1
    return kthvalue(input, (n + 1) // 2, dim, keepdim)


def quantile(input, q, dim=None, keepdim=False, interpolation="linear"):
    """The ``q``-quantile(s) (``q`` a float or 1-D tensor in [0, 1]) with linear
    interpolation between order statistics (``interpolation`` also 'lower', 'higher',
    'nearest', 'midpoint')."""
    if interpolation not in ("linear", "lower", "higher", "nearest", "midpoint"):
        raise ValueError(f"quantile: interpolation {interpolation!r} is not one of linear, "
                         f"lower, higher, nearest, midpoint")
    qs = q.tolist() if isinstance(q, Tensor) else q
    scalar = not isinstance(qs, (list, tuple))
    qs = [qs] if scalar else list(qs)
    if builtins.any(not 0 <= v <= 1 for v in qs):
        raise RuntimeError(f"quantile: q values must be in the range [0, 1], got {qs}")
    x = input.reshape(-1) if dim is None else input
    d = 0 if dim is None else _dim(dim, input.ndim, "quantile")
    vals, _ = _sh.sort(x, d)
    n = vals.shape[d]
    outs = []
    for v in qs:
        pos = v * (n - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        frac_ = pos - lo
        if interpolation == "lower":
            hi, frac_ = lo, 0.0
        elif interpolation == "higher":
            lo, frac_ = hi, 0.0
        elif interpolation == "nearest":
            lo = hi = builtins.round(pos)  # round half to even, as PyTorch
            frac_ = 0.0
        elif interpolation == "midpoint":
            frac_ = 0.5 if hi != lo else 0.0
        a, b = select(vals, d, lo), select(vals, d, hi)
        out = a + (b - a) * frac_ if frac_ else a
        if keepdim:
            out = out.reshape((1,) * input.ndim) if dim is None else out.unsqueeze(d)
        outs.append(out)
    return outs[0] if scalar else _sh.stack(outs, 0)


def searchsorted(sorted_sequence, values, right=False, side=None, out_int32=False):
    """For each value, the index at which it would be inserted into the sorted last dim
    of ``sorted_sequence`` (leftmost by default, ``right=True``/``side='right'``)."""
    if side is not None:
        right = side == "right"
    v = _like(values, sorted_sequence) if not isinstance(values, Tensor) else values
    seq = sorted_sequence
    if seq.ndim == 1:
        below = (seq <= v.unsqueeze(-1)) if right else (seq < v.unsqueeze(-1))
    else:
        below = (seq.unsqueeze(-2) <= v.unsqueeze(-1)) if right else \
            (seq.unsqueeze(-2) < v.unsqueeze(-1))
    out = below.sum(-1)
    return out.to(dtypes.int32) if out_int32 else out


def bucketize(input, boundaries, out_int32=False, right=False):
    return searchsorted(boundaries, input, right=right, out_int32=out_int32)


def histc(input, bins=100, min=0, max=0):  # noqa: A002
    """Counts of ``input`` in ``bins`` equal-width bins over [min, max] (the data's
    range when both are 0); values outside are ignored. Not differentiable."""
    x = input.detach().reshape(-1).to(input.dtype if input.dtype.kind == "f" else dtypes.float32)
    lo, hi = float(min), float(max)
    if lo == hi == 0 and x.numel():
        lo, hi = x.min().item(), x.max().item()
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    inside = (x >= lo) & (x <= hi)
    b = ((x - lo) * (bins / (hi - lo))).floor().clamp(0, bins - 1).long()
    onehot = (b.unsqueeze(-1) == arange_like(x, bins)) & inside.unsqueeze(-1)
    return onehot.sum(0).to(x.dtype)


def std_mean(input, dim=None, unbiased=True, keepdim=False, correction=None):
    return (input.std(dim, keepdim, unbiased, correction=correction), input.mean(dim, keepdim))


def var_mean(input, dim=None, unbiased=True, keepdim=False, correction=None):
    return (input.var(dim, keepdim, unbiased, correction=correction), input.mean(dim, keepdim))


def count_nonzero(input, dim=None):
    return (input != 0).sum(dim)


# -- sampling ---------------------------------------------------------------------------------
def bernoulli(input, p=None, generator=None):
    """0/1 draws with probabilities ``input`` (or the scalar ``p``), ``input``'s dtype."""
    prob = input if p is None else input.new_full((), p)
    u = rand(*input.shape, generator=generator, dtype=input.dtype if input.dtype.kind == "f"
             else dtypes.float32, backend=input.backend)
    return (u < prob.detach()).to(input.dtype)


def multinomial(input, num_samples, replacement=False, generator=None):
    """Indices drawn from the (unnormalised, non-negative) weights in each row of
    ``input`` (1-D or 2-D): with replacement by inverting the cumulative distribution,
    without replacement as the ``num_samples`` largest ``w / E`` for exponential ``E``
    (which draws in proportion to ``w`` one after another)."""
    if input.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got shape {input.shape}")
    w = input.detach().to(dtypes.float64)
    rows = w.reshape(1, -1) if w.ndim == 1 else w
    n = rows.shape[1]
    if (rows < 0).any().item() or not rows.isfinite().all().item():
        raise RuntimeError("multinomial: probability tensor contains either inf, nan or an "
                           "element < 0")
    if (rows.sum(1) <= 0).any().item():
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of "
                           "probabilities <= 0)")
    if not replacement and num_samples > n:
        raise RuntimeError(f"multinomial: cannot sample {num_samples} > {n} (categories) "
                           f"samples without replacement")
    if num_samples <= 0:
        raise RuntimeError(f"multinomial: num_samples must be positive, got {num_samples}")
    if replacement:
        u = rand(rows.shape[0], num_samples, generator=generator, dtype=dtypes.float64,
                 backend=input.backend)
        cdf = rows.cumsum(1) / rows.sum(1, keepdim=True)
        # index = how many cumulative sums lie at or below u; the zero-weight categories
        # at the end can never be picked (cdf reaches 1 before them)
        idx = (cdf.unsqueeze(1) <= u.unsqueeze(-1)).sum(-1).clamp(max=n - 1)
        positive = rows > 0
        last = n - 1 - positive.flip(1).long().argmax(1, keepdim=True)
        idx = _ew.minimum(idx, last)
    else:
        u = rand(rows.shape[0], n, generator=generator, dtype=dtypes.float64,
                 backend=input.backend)
        keys = rows / -(1 - u).log()  # w / E with E ~ Exp(1)
        keys = _ew.where(rows > 0, keys, keys.new_full((), -1.0))
        idx = _sh.topk(keys, num_samples, 1).indices
    idx = idx.long()
    return idx.reshape(-1) if input.ndim == 1 else idx


def add(input, other, alpha=1):
    """``input + alpha * other`` (``torch.add``'s ``alpha``)."""
    return _ew.add(input, other if alpha == 1 else other * alpha)


def sub(input, other, alpha=1):
    """``input - alpha * other``."""
    return _ew.sub(input, other if alpha == 1 else other * alpha)
