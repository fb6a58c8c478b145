"""Shape and data-movement primitives: reshape, permute, expand, indexing,
cat/stack, and moving a tensor between backends."""
from __future__ import annotations

import math

import numpy

from ..autograd import Function
from ..tensor import Tensor


def shape_arg(args):
    """Accept ``f(2, 3)`` and ``f((2, 3))`` alike."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def _dim(d, ndim, op):
    if isinstance(d, bool) or not hasattr(d, "__index__"):
        raise TypeError(f"{op}: dim must be an int, got {type(d).__name__} {d!r}")
    d = d.__index__()
    if not -ndim <= d < max(ndim, 1):
        raise ValueError(f"{op}: dim {d} is out of range for a tensor with {ndim} dimensions")
    return d % max(ndim, 1)


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return x.backend.reshape(x.array, shape)

    @staticmethod
    def backward(ctx, gy):
        return Reshape.apply(gy, ctx.shape), None


def reshape(x, shape):
    if any(isinstance(s, bool) or not hasattr(s, "__index__") for s in shape):
        raise TypeError(f"reshape: shape must be ints, got {tuple(shape)!r}")
    shape = tuple(s.__index__() for s in shape)
    known = math.prod(s for s in shape if s != -1)
    n = x.array.size
    if shape.count(-1) > 1 or (-1 not in shape and known != n) or \
            (-1 in shape and (known == 0 or n % known)):
        raise ValueError(f"reshape: cannot view a tensor of shape {x.shape} ({n} elements) as "
                         f"{shape}; the element count must match (at most one -1)")
    if -1 in shape:
        shape = tuple(n // known if s == -1 else s for s in shape)
    if shape == x.shape:
        return x
    return Reshape.apply(x, shape)


def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = _dim(start_dim, x.ndim, "flatten"), _dim(end_dim, x.ndim, "flatten")
    # the merged size spelled out: -1 is ambiguous when another dim is 0 (an empty batch)
    return reshape(x, x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:])


def unflatten(x, dim, sizes):
    d = _dim(dim, x.ndim, "unflatten")
    return reshape(x, x.shape[:d] + tuple(sizes) + x.shape[d + 1:])


def squeeze(x, dim=None):
    if dim is None:
        return reshape(x, tuple(s for s in x.shape if s != 1))
    dims = set(_dims_arg(dim, x.ndim, "squeeze"))
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1)))


def unsqueeze(x, dim):
    d = _dim(dim, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


class Permute(Function):
    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return x.backend.transpose(x.array, axes)

    @staticmethod
    def backward(ctx, gy):
        inv = tuple(sorted(range(len(ctx.axes)), key=ctx.axes.__getitem__))
        return Permute.apply(gy, inv), None


def permute(x, dims):
    dims = tuple(_dim(d, x.ndim, "permute") for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of the {x.ndim} dims of {x.shape}")
    return Permute.apply(x, dims)


def transpose(x, axes):
    """``()`` reverses all axes (``.T``); two ints swap those dims (PyTorch);
    a full permutation permutes (NumPy)."""
    axes = shape_arg(axes)
    if not axes:
        return permute(x, tuple(range(x.ndim))[::-1])
    if len(axes) == 2:
        a, b = _dim(axes[0], x.ndim, "transpose"), _dim(axes[1], x.ndim, "transpose")
        if x.ndim == 0:  # dims 0 / -1 of a 0-d tensor: nothing to swap
            return permute(x, ())
        order = list(range(x.ndim))
        order[a], order[b] = order[b], order[a]
        return permute(x, tuple(order))
    return permute(x, axes)


class Expand(Function):
    @staticmethod
    def forward(ctx, x, shape):
        return x.backend.broadcast_to(x.array, shape)

    @staticmethod
    def backward(ctx, gy):
        return gy, None  # the engine sums it back to the input's shape


def expand(x, shape):
    lead = len(shape) - x.ndim
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    try:
        numpy.broadcast_shapes(x.shape, shape)
        if numpy.broadcast_shapes(x.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"expand: cannot expand shape {x.shape} to {shape}; only size-1 "
                         f"dimensions can grow") from None
    return Expand.apply(x, shape)


def repeat(x, reps):
    """PyTorch's ``repeat`` (NumPy's ``tile``), built from expand + reshape."""
    if len(reps) < x.ndim:
        raise ValueError(f"repeat: needs at least {x.ndim} repeat counts for shape {x.shape}")
    x = reshape(x, (1,) * (len(reps) - x.ndim) + x.shape)
    inter = []
    for r, s in zip(reps, x.shape):
        inter += [1, s]
    y = expand(reshape(x, tuple(inter)), tuple(v for r, s in zip(reps, x.shape) for v in (r, s)))
    return reshape(y, tuple(r * s for r, s in zip(reps, x.shape)))


class SetItem(Function):
    """``x[index] = value`` in place, recorded in the graph (``Tensor.__setitem__``
    rebinds ``x`` to this node): d/dx is the gradient with the assigned region zeroed,
    d/dvalue the gradient of that region (summed back over broadcasting)."""

    @staticmethod
    def forward(ctx, x, index, value):
        ctx.index = index
        x.backend.setitem_(x.array, index, value.array)
        return x.array

    @staticmethod
    def backward(ctx, gy):
        be = gy.backend
        gx = gv = None
        if ctx.needs_input_grad[0]:  # the overwritten region gets no gradient
            keep = be.full(gy.shape, True, "bool")
            be.setitem_(keep, ctx.index, False)
            gx = gy * Tensor._make(be.astype(keep, gy.dtype), be)
        if ctx.needs_input_grad[2]:
            gv = GetItem.apply(gy, ctx.index)
        return gx, None, gv


class Clone(Function):
    @staticmethod
    def forward(ctx, x):
        return x.backend.copy(x.array)

    @staticmethod
    def backward(ctx, gy):
        return gy


# ---------------------------------------------------------------------------
# indexing
# ---------------------------------------------------------------------------
def normalize_index(index, x):
    """Turn Tensor indices into backend arrays; check integer bounds for clear errors."""
    items = index if isinstance(index, tuple) else (index,)
    out = []
    for it in items:
        if isinstance(it, Tensor):
            if it.backend is not x.backend:
                raise RuntimeError(f"index: index tensor on {it.backend.name}, tensor on "
                                   f"{x.backend.name}")
            it = it.array
        elif isinstance(it, list):
            it = x.backend.asarray(it)
        out.append(it)
    return tuple(out) if isinstance(index, tuple) else out[0]


class GetItem(Function):
    """``x[index]``. ``unique=True`` promises that no position is picked twice (as in
    sort, max(dim)), so the backward is a plain assignment instead of a scatter-add."""

    @staticmethod
    def forward(ctx, x, index, unique=False):
        ctx.shape, ctx.index, ctx.unique = x.shape, index, unique
        return x.backend.getitem(x.array, index)

    @staticmethod
    def backward(ctx, gy):
        return IndexInto.apply(gy, ctx.shape, ctx.index, ctx.unique), None, None


class IndexInto(Function):
    """Zeros of ``shape`` with ``g`` added at ``index``: the backward of ``x[index]``.
    Repeated fancy indices accumulate (``x[[0, 0]]`` -> gradient 2); ``unique`` (or a
    basic index) makes it a plain assignment. Its own backward is ``g[index]``."""

    @staticmethod
    def forward(ctx, g, shape, index, unique=False):
        be = g.backend
        ctx.index, ctx.unique = index, unique
        if unique or _is_basic(index):
            out = be.zeros(shape, g.dtype)
            be.setitem_(out, index, g.array)
            return out
        return be.index_add(shape, index, g.array, g.dtype)

    @staticmethod
    def backward(ctx, gg):
        return GetItem.apply(gg, ctx.index, ctx.unique), None, None, None


def _is_basic(index):
    items = index if isinstance(index, tuple) else (index,)
    return all(it is None or it is Ellipsis or isinstance(it, (slice, int)) and not isinstance(it, bool)
               for it in items)


def getitem(x, index):
    idx = normalize_index(index, x)
    try:
        return GetItem.apply(x, idx)
    except IndexError as e:
        raise IndexError(f"index: {e} (tensor shape {x.shape}, index {index!r})") from None


# ---------------------------------------------------------------------------
# joining and splitting
# ---------------------------------------------------------------------------
class Concat(Function):
    @staticmethod
    def forward(ctx, axis, *xs):
        ctx.axis, ctx.sizes = axis, [x.shape[axis] for x in xs]
        return xs[0].backend.concat([x.array for x in xs], axis)

    @staticmethod
    def backward(ctx, gy):
        outs, start = [None], 0
        for i, n in enumerate(ctx.sizes):
            sl = [slice(None)] * gy.ndim
            sl[ctx.axis] = slice(start, start + n)
            outs.append(GetItem.apply(gy, tuple(sl)) if ctx.needs_input_grad[i + 1] else None)
            start += n
        return tuple(outs)


def _check_join(op, xs, axis, same_rank_shape):
    if not xs:
        raise ValueError(f"{op}: needs at least one tensor")
    xs = list(xs)
    ref = xs[0]
    for t in xs:
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected Tensors, got {type(t).__name__}")
        if t.backend is not ref.backend:
            raise RuntimeError(f"{op}: tensors on different backends ({ref.backend.name}, "
                               f"{t.backend.name})")
    dt = ref.dtype
    for t in xs:
        if t.dtype != dt:  # promoted as PyTorch (float32 with float64 still raises)
            from .. import dtypes
            dt = dtypes.result_dtype(op, dt, t.dtype)
    if dt != ref.dtype or any(t.dtype != dt for t in xs):
        xs = [t if t.dtype == dt else t.to(dt) for t in xs]
        ref = xs[0]
    shapes = [t.shape for t in xs]
    if same_rank_shape and any(t.ndim == 0 for t in xs):
        raise ValueError(f"{op}: zero-dimensional tensors cannot be concatenated (shapes "
                         f"{shapes}); use stack")
    ax = _dim(axis, ref.ndim + (0 if same_rank_shape else 1), op)
    for s in shapes:
        if same_rank_shape:
            if len(s) != ref.ndim or s[:ax] + s[ax + 1:] != ref.shape[:ax] + ref.shape[ax + 1:]:
                raise ValueError(f"{op}: shapes {shapes} must match except along dim {axis}")
        elif s != ref.shape:
            raise ValueError(f"{op}: all shapes must be equal, got {shapes}")
    return xs, ax


def cat(tensors, dim=0, axis=None):
    xs, ax = _check_join("cat", tensors, dim if axis is None else axis, True)
    return Concat.apply(ax, *xs)


def stack(tensors, dim=0, axis=None):
    xs, ax = _check_join("stack", tensors, dim if axis is None else axis, False)
    return Concat.apply(ax, *[unsqueeze(x, ax) for x in xs])


def split(x, size, dim=0):
    d = _dim(dim, x.ndim, "split")
    n = x.shape[d]
    sizes = [size] * (n // size) + ([n % size] if n % size else []) if isinstance(size, int) \
        else list(size)
    if sum(sizes) != n:
        raise ValueError(f"split: sizes {sizes} do not sum to {n} (dim {dim} of {x.shape})")
    out, start = [], 0
    for s in sizes:
        sl = [slice(None)] * x.ndim
        sl[d] = slice(start, start + s)
        out.append(getitem(x, tuple(sl)))
        start += s
    return tuple(out)


def chunk(x, chunks, dim=0):
    n = x.shape[_dim(dim, x.ndim, "chunk")]
    return split(x, max(1, -(-n // chunks)), dim)


# ---------------------------------------------------------------------------
# between backends
# ---------------------------------------------------------------------------
class ToBackend(Function):
    """Copy to another backend (via host memory); the gradient copies back."""

    @staticmethod
    def forward(ctx, x, target):
        ctx.source = x.backend
        return Tensor._make(target.asarray(x.backend.to_numpy(x.array)), target)

    @staticmethod
    def backward(ctx, gy):
        return ToBackend.apply(gy, ctx.source), None


# ---------------------------------------------------------------------------
# gather / sort / topk
# ---------------------------------------------------------------------------
def _along(be, index, dim):
    """Full fancy-index tuple selecting ``index`` along ``dim`` (other dims by position)."""
    grids = []
    for d, n in enumerate(index.shape):
        if d == dim:
            grids.append(index)
        else:
            shape = [1] * index.ndim
            shape[d] = n
            grids.append(be.reshape(be.arange(0, n, 1, "int64"), tuple(shape)))
    return tuple(grids)


def gather(x, dim, index, _unique=False):
    """``out[i][j] = x[i][index[i][j]]`` along ``dim`` (PyTorch's gather); differentiable
    in ``x``: repeated indices accumulate their gradient."""
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu":
        raise TypeError("gather: index must be an integer Tensor")
    d = _dim(dim, x.ndim, "gather")
    if index.ndim != x.ndim:
        raise ValueError(f"gather: index of shape {index.shape} must have as many dims as the "
                         f"input {x.shape}")
    for i, (a, b) in enumerate(zip(index.shape, x.shape)):
        if i != d and a > b:
            raise ValueError(f"gather: index shape {index.shape} exceeds input shape {x.shape} "
                             f"at dim {i}")
    _check_index_range("gather", index, x.shape[d], d)
    return GetItem.apply(x, _along(x.backend, index.array, d), _unique)


def _check_index_range(op, index, size, dim):
    """IndexError unless every value of the integer Tensor ``index`` is in [-size, size)."""
    if not index.numel():
        return
    be = index.backend
    lo = int(be.reduce("min", index.array, None, False))
    hi = int(be.reduce("max", index.array, None, False))
    if lo < -size or hi >= size:
        raise IndexError(f"{op}: index values must lie in [{-size}, {size - 1}] for dim {dim} of "
                         f"size {size}, got min {lo}, max {hi}")


def _zero_d(x, op, dim):
    """sort/argsort/topk of a 0-d tensor (dim 0 or -1): the value itself, index 0."""
    from ..tensor import ValuesIndices
    if dim not in (0, -1):
        raise ValueError(f"{op}: dim {dim} is out of range for a 0-d tensor (valid: -1, 0)")
    return ValuesIndices(Clone.apply(x), Tensor._make(x.backend.zeros((), "int64"), x.backend))


def sort(x, dim=-1, descending=False, stable=False):
    """``(values, indices)`` sorted along ``dim``; values are differentiable. The sort is
    always stable (``stable=`` is accepted): ties keep their order, as PyTorch's
    ``stable=True``."""
    from ..tensor import ValuesIndices
    if x.ndim == 0:
        return _zero_d(x, "sort", dim)
    d = _dim(dim, x.ndim, "sort")
    idx = Tensor._make(x.backend.argsort(x.array, d, descending), x.backend)
    return ValuesIndices(gather(x, d, idx, _unique=True), idx)


def argsort(x, dim=-1, descending=False, stable=False):
    if x.ndim == 0:
        return _zero_d(x, "argsort", dim)[1]
    d = _dim(dim, x.ndim, "argsort")
    return Tensor._make(x.backend.argsort(x.array, d, descending), x.backend)


def topk(x, k, dim=-1, largest=True, sorted=True):  # noqa: A002 - PyTorch's name
    """The ``k`` largest (or smallest) values along ``dim`` and their indices."""
    from ..tensor import ValuesIndices
    if isinstance(k, bool) or not hasattr(k, "__index__"):
        raise TypeError(f"topk: k must be an int, got {type(k).__name__} {k!r}")
    k = k.__index__()
    if x.ndim == 0:
        if k != 1:
            raise ValueError(f"topk: k={k} is out of range for a 0-d tensor")
        return _zero_d(x, "topk", dim)
    d = _dim(dim, x.ndim, "topk")
    if not 0 <= k <= x.shape[d]:
        raise ValueError(f"topk: k={k} is out of range for dim {dim} of size {x.shape[d]}")
    idx = x.backend.argsort(x.array, d, largest)
    sl = [slice(None)] * x.ndim
    sl[d] = slice(0, k)
    idx = Tensor._make(idx[tuple(sl)], x.backend)
    return ValuesIndices(gather(x, d, idx, _unique=True), idx)


def unbind(x, dim=0):
    """The slices of ``x`` along ``dim``, that dim removed (differentiable)."""
    d = _dim(dim, x.ndim, "unbind")
    return tuple(getitem(x, (slice(None),) * d + (i,)) for i in range(x.shape[d]))


def tri(x, diagonal=0, lower=True):
    """tril/triu of the last two dims: x where a 0/1 mask is set, else 0 (differentiable;
    a select, not a product, so infinities outside the triangle give 0, not NaN)."""
    if x.ndim < 2:
        raise ValueError(f"{'tril' if lower else 'triu'}: needs at least 2 dims, got {x.shape}")
    rows, cols = x.shape[-2:]
    mask = (numpy.tri(rows, cols, diagonal, dtype=bool) if lower
            else ~numpy.tri(rows, cols, diagonal - 1, dtype=bool))
    be = x.backend
    if x.dtype.kind == "b":
        return Tensor._make(be.binary("and", x.array, be.asarray(mask)), be)
    from .elementwise import where
    return where(Tensor._make(be.asarray(mask), be), x, Tensor._make(be.zeros((), x.dtype), be))


# ---------------------------------------------------------------------------
# scatter / index_select / masked_select / nonzero
# ---------------------------------------------------------------------------
def _index_along_check(op, x, dim, index, src=None):
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer Tensor, got "
                        f"{getattr(index, 'dtype', type(index).__name__)}")
    d = _dim(dim, x.ndim, op)
    if index.ndim != x.ndim:
        raise ValueError(f"{op}: index of shape {index.shape} must have as many dims as the "
                         f"input {x.shape}")
    for i, n in enumerate(index.shape):
        if (i != d and n > x.shape[i]) or (src is not None and n > src.shape[i]):
            raise ValueError(f"{op}: index shape {index.shape} exceeds the input shape {x.shape}"
                             + (f" or the src shape {src.shape}" if src is not None else "")
                             + f" at dim {i}")
    _check_index_range(op, index, x.shape[d], d)
    return d


class Scatter(Function):
    """``out = x.clone(); out[index[i][j]][j] = src[i][j]`` along ``dim`` (``add``: +=).
    d/dx: the gradient, zeroed at overwritten positions (kept for ``add``); d/dsrc: the
    gradient gathered at the index positions (zero where src is not used)."""

    @staticmethod
    def forward(ctx, x, src, grids, src_region, add):
        be = x.backend
        ctx.grids, ctx.add, ctx.region = grids, add, src_region
        ctx.src_shape = src.shape if isinstance(src, Tensor) else None
        v = be.getitem(src.array, src_region) if isinstance(src, Tensor) else src
        if add:
            return be.binary("add", x.array, be.index_add(x.shape, grids, v, x.dtype))
        out = be.copy(x.array)
        be.setitem_(out, grids, v)
        return out

    @staticmethod
    def backward(ctx, gy):
        be = gy.backend
        gx = gs = None
        if ctx.needs_input_grad[0]:
            if ctx.add:
                gx = gy
            else:  # overwritten positions get no gradient
                keep = be.full(gy.shape, True, "bool")
                be.setitem_(keep, ctx.grids, False)
                gx = gy * Tensor._make(be.astype(keep, gy.dtype), be)
        if ctx.needs_input_grad[1]:
            gs = IndexInto.apply(GetItem.apply(gy, ctx.grids), ctx.src_shape, ctx.region, True)
        return gx, gs, None, None, None


def scatter(x, dim, index, src=None, value=None, reduce=None, _op="scatter"):
    """PyTorch's ``x.scatter(dim, index, src)`` / ``x.scatter(dim, index, value)``:
    a copy of ``x`` with ``src`` (or the number ``value``) written at ``index`` along
    ``dim``; ``reduce='add'`` (or ``scatter_add``) accumulates instead. Differentiable
    in ``x`` and ``src``."""
    if src is None and value is None:
        raise TypeError(f"{_op}: give src (a Tensor) or value (a number)")
    if src is not None and not isinstance(src, Tensor):
        src, value = None, src  # x.scatter(1, idx, 1.0)
    if reduce not in (None, "add"):
        raise ValueError(f"{_op}: reduce must be None or 'add', got {reduce!r}")
    d = _index_along_check(_op, x, dim, index, src)
    be = x.backend
    grids = _along(be, index.array, d)
    if src is not None:
        if src.backend is not be:
            raise RuntimeError(f"{_op}: src on {src.backend.name}, input on {be.name}")
        if src.ndim != x.ndim:
            raise ValueError(f"{_op}: src of shape {src.shape} must have as many dims as the "
                             f"input {x.shape}")
        if src.dtype != x.dtype:
            src = src.to(x.dtype)
        region = tuple(slice(0, n) for n in index.shape)
    else:
        value, region = x.dtype.type(value), None
    return Scatter.apply(x, src if src is not None else value, grids, region, reduce == "add")


def index_select(x, dim, index):
    """The entries of ``x`` at the 1-D integer ``index`` along ``dim`` (differentiable;
    repeated indices accumulate their gradient)."""
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu" or index.ndim > 1:
        raise TypeError(f"index_select: index must be a 0-d or 1-D integer Tensor, got "
                        f"{getattr(index, 'shape', type(index).__name__)} "
                        f"{getattr(index, 'dtype', '')}")
    d = _dim(dim, x.ndim, "index_select")
    if x.ndim == 0:  # as PyTorch: a 0-d input takes exactly one index, 0, and stays 0-d
        if index.numel() != 1:
            raise ValueError(f"index_select: a 0-d input takes exactly one index, got "
                             f"{index.numel()}")
        _check_index_range("index_select", index, 1, 0)
        return getitem(x.reshape(1), (index.reshape(-1),)).reshape(())
    _check_index_range("index_select", index, x.shape[d], d)
    return getitem(x, (slice(None),) * d + (index.reshape(-1),))


def masked_select(x, mask):
    """The entries of ``x`` where the bool ``mask`` (broadcast with ``x``) is True, as 1-D."""
    if not isinstance(mask, Tensor) or mask.dtype.kind != "b":
        raise TypeError("masked_select: mask must be a bool Tensor")
    if mask.shape != x.shape:
        shape = numpy.broadcast_shapes(x.shape, mask.shape)
        x, mask = expand(x, shape), Tensor._make(mask.backend.broadcast_to(mask.array, shape),
                                                 mask.backend)
    return getitem(x, mask)


def nonzero(x, as_tuple=False):
    """Indices of the non-zero entries: an (n, ndim) int64 tensor, or with
    ``as_tuple=True`` one 1-D index tensor per dim (as ``numpy.nonzero``)."""
    be = x.backend
    a = x.numpy()
    if a.ndim == 0:  # PyTorch: a 0-d input counts as one element with no coordinates
        if as_tuple:
            return (Tensor._make(be.asarray(numpy.zeros(int(a != 0), numpy.int64)), be),)
        return Tensor._make(be.asarray(numpy.zeros((int(a != 0), 0), numpy.int64)), be)
    idx = numpy.nonzero(a)  # data-dependent size: computed on the host
    if as_tuple:
        return tuple(Tensor._make(be.asarray(i.astype(numpy.int64)), be) for i in idx)
    return Tensor._make(be.asarray(numpy.stack(idx, axis=1).astype(numpy.int64)), be)


def embedding(input, weight, padding_idx=None, max_norm=None):
    """Rows of ``weight`` picked by the integer tensor ``input`` (any shape); repeated
    indices accumulate their gradient; the ``padding_idx`` row gets none."""
    if max_norm is not None:
        raise NotImplementedError("embedding: max_norm is not supported")
    if not isinstance(input, Tensor) or input.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be an integer Tensor, got "
                        f"{getattr(input, 'dtype', type(input).__name__)}")
    if not isinstance(weight, Tensor):
        raise TypeError(f"embedding: weight must be a Tensor, got {type(weight).__name__}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, dim), got {weight.shape}")
    n = weight.shape[0]
    if input.numel():
        lo = int(input.backend.reduce("min", input.array, None, False))
        hi = int(input.backend.reduce("max", input.array, None, False))
        if lo < 0 or hi >= n:
            raise IndexError(f"embedding: index out of range: indices must be in [0, {n - 1}], "
                             f"got min {lo}, max {hi}")
    out = getitem(weight, input)
    if padding_idx is not None and weight.requires_grad:
        if padding_idx < 0:
            padding_idx += n
        keep = Tensor._make(input.backend.binary("ne", input.array, padding_idx), input.backend)
        from .elementwise import where
        out = where(unsqueeze(keep, -1), out, out.detach())  # same values, no gradient there
    return out


# ---------------------------------------------------------------------------
# reordering: flip, roll, rot90, pixel / channel shuffle, max-unpooling
# ---------------------------------------------------------------------------
def _dims_arg(dims, ndim, op):
    if not (hasattr(dims, "__index__") or isinstance(dims, (tuple, list))):
        raise TypeError(f"{op}: dims must be an int or a sequence of ints, got "
                        f"{type(dims).__name__} {dims!r}")
    dims = [dims] if hasattr(dims, "__index__") else list(dims)
    out = [_dim(d, ndim, op) for d in dims]
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dims {tuple(dims)} name a dimension twice")
    return out


def flip(x, dims):
    """``torch.flip``: reverse the order along ``dims`` (a reversed-slice view; its
    backward writes the gradient back reversed)."""
    idx = [slice(None)] * x.ndim
    for d in _dims_arg(dims, x.ndim, "flip"):
        if x.ndim:  # a 0-d tensor accepts dim 0 / -1 and has nothing to reverse
            idx[d] = slice(None, None, -1)
    return GetItem.apply(x, tuple(idx))


def fliplr(x):
    """Reverse dim 1 (left-right), as ``torch.fliplr``."""
    if x.ndim < 2:
        raise ValueError(f"fliplr: input must be at least 2-D, got shape {x.shape}")
    return flip(x, 1)


def flipud(x):
    """Reverse dim 0 (up-down), as ``torch.flipud``."""
    if x.ndim < 1:
        raise ValueError(f"flipud: input must be at least 1-D, got shape {x.shape}")
    return flip(x, 0)


def roll(x, shifts, dims=None):
    """``torch.roll``: shift elements along ``dims`` circularly (flattened when ``dims``
    is None)."""
    if dims is None:
        if not isinstance(shifts, int):
            if len(shifts) != 1:
                raise ValueError(f"roll: without dims, shifts must be one int, got {shifts!r}")
            shifts = shifts[0]
        return roll(x.reshape(-1), shifts, 0).reshape(x.shape)
    shifts = [shifts] if isinstance(shifts, int) else list(shifts)
    dims = [dims] if isinstance(dims, int) else list(dims)
    if len(shifts) != len(dims):
        raise ValueError(f"roll: shifts {tuple(shifts)} and dims {tuple(dims)} must have the "
                         f"same length")
    for s, d in zip(shifts, dims):
        d = _dim(int(d), x.ndim, "roll")
        n = x.shape[d]
        s = int(s) % n if n else 0
        if s:
            head = [slice(None)] * d
            x = cat([x[tuple(head + [slice(n - s, None)])], x[tuple(head + [slice(0, n - s)])]], d)
    return x


def rot90(x, k=1, dims=(0, 1)):
    """``torch.rot90``: rotate by 90 degrees ``k`` times in the plane ``dims`` (from the
    first towards the second)."""
    if len(dims) != 2:
        raise ValueError(f"rot90: dims must name two dimensions, got {tuple(dims)}")
    d0, d1 = _dims_arg(dims, x.ndim, "rot90")
    k = int(k) % 4
    if k == 1:
        return transpose(flip(x, d1), (d0, d1))
    if k == 2:
        return flip(x, (d0, d1))
    if k == 3:
        return transpose(flip(x, d0), (d0, d1))
    return x


def pixel_shuffle(x, upscale_factor):
    """(*, C r^2, H, W) -> (*, C, H r, W r), PyTorch's channel order (sub-pixel conv)."""
    if isinstance(upscale_factor, bool) or not hasattr(upscale_factor, "__index__"):
        raise TypeError(f"pixel_shuffle: upscale_factor must be an int, got {upscale_factor!r}")
    r = int(upscale_factor)
    if x.ndim < 3 or r <= 0 or x.shape[-3] % (r * r):
        raise ValueError(f"pixel_shuffle: expected input (*, C*r^2, H, W) with channels "
                         f"divisible by upscale_factor^2 = {r * r}, got shape {x.shape} and "
                         f"upscale_factor={upscale_factor}")
    *lead, c, h, w = x.shape
    n = len(lead)
    y = x.reshape(*lead, c // (r * r), r, r, h, w)
    y = y.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return y.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(x, downscale_factor):
    """(*, C, H r, W r) -> (*, C r^2, H, W): the inverse of :func:`pixel_shuffle`."""
    r = int(downscale_factor)
    if x.ndim < 3 or r <= 0 or x.shape[-2] % r or x.shape[-1] % r:
        raise ValueError(f"pixel_unshuffle: expected input (*, C, H, W) with H and W divisible "
                         f"by downscale_factor={downscale_factor}, got shape {x.shape}")
    *lead, c, h, w = x.shape
    n = len(lead)
    y = x.reshape(*lead, c, h // r, r, w // r, r)
    y = y.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return y.reshape(*lead, c * r * r, h // r, w // r)


def channel_shuffle(x, groups):
    """(N, g*k, *) -> channels reordered as (k, g): ShuffleNet's shuffle."""
    g = int(groups)
    if x.ndim < 3 or g <= 0 or x.shape[1] % g:
        raise ValueError(f"channel_shuffle: expected input (N, C, *) with C divisible by "
                         f"groups={groups}, got shape {x.shape}")
    n, c, *rest = x.shape
    return transpose(x.reshape(n, g, c // g, *rest), (1, 2)).reshape(x.shape)


def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of ``max_pool2d(..., return_indices=True)``: each value goes
    to the flat position ``indices`` names in its (H_out, W_out) plane, zeros elsewhere."""
    from .conv import pair
    kh, kw = pair(kernel_size, "kernel_size", "max_unpool2d")
    sh, sw = pair(stride if stride is not None else kernel_size, "stride", "max_unpool2d")
    ph, pw = pair(padding, "padding", "max_unpool2d", minimum=0)
    if x.ndim not in (3, 4):
        raise ValueError(f"max_unpool2d: expected a 3-D or 4-D input, got shape {x.shape}")
    if indices.shape != x.shape or indices.dtype.kind not in "iu":
        raise ValueError(f"max_unpool2d: indices must be integers of the input's shape "
                         f"{x.shape}, got {indices.dtype} {indices.shape}")
    h, w = x.shape[-2:]
    if output_size is None:
        oh, ow = (h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw
    else:
        oh, ow = [int(v) for v in output_size][-2:]
    lead = x.shape[:-2]
    flat_x = x.reshape(*lead, h * w)
    flat_i = indices.reshape(*lead, h * w)
    if flat_i.numel():
        lo, hi = int(flat_i.min().item()), int(flat_i.max().item())
        if lo < 0 or hi >= oh * ow:
            raise ValueError(f"max_unpool2d: an index ({lo if lo < 0 else hi}) is out of range "
                             f"for the output size {(oh, ow)} (valid: 0 .. {oh * ow - 1})")
    base = x.new_zeros(*lead, oh * ow)
    return scatter(base, x.ndim - 2, flat_i, flat_x).reshape(*lead, oh, ow)
