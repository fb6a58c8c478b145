"""``gradflow.linalg``: PyTorch's ``torch.linalg`` for real matrices (the last two dims;
leading dims are a batch).

The factorisations (``inv``, ``solve``, ``det``, ``slogdet``, ``cholesky``, ``qr``,
``eigh``, ``svd``) are Functions whose forward calls the backend's LAPACK
(``backend.xp.linalg``) and whose backward is written in differentiable Tensor
operations, so second derivatives work where the first ones do. The norms are composed
from Tensor ops. Gradient formulas (M. Giles, "An extended collection of matrix
derivative results", 2008; I. Murray, "Differentiation of the Cholesky decomposition",
2016; J. Townsend, "Differentiating the singular value decomposition", 2016):

- ``inv``:      dA = -Y^T G Y^T                              (Y = A^-1)
- ``solve``:    dB = A^-T G,  dA = -dB X^T                   (X = A^-1 B)
- ``det``:      dA = g det(A) A^-T;  ``slogdet``: dA = g A^-T
- ``cholesky``: S = L^-T Phi(L^T G) L^-1, dA = (S + S^T) / 2  (Phi: lower triangle, half diagonal)
- ``qr``:       M = R G_R^T - G_Q^T Q, dA = (G_Q + Q copyltu(M)) R^-T   (m >= n)
- ``eigh``:     dA = V (diag(g_w) + F o (V^T G_V)) V^T, F_ij = 1 / (w_j - w_i), symmetrised
- ``svd``:      Townsend's formula for the reduced SVD (distinct singular values)
"""
from __future__ import annotations

import builtins
import math
import numbers
from collections import namedtuple

from .autograd import Function
from .creation import eye
from .ops.elementwise import where
from .ops.extra import broadcast_shapes, cross as _cross, diagonal as _diagonal, movedim
from .tensor import Tensor

SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
QRResult = namedtuple("QRResult", ["Q", "R"])
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])


def _lapack(x):
    xp = getattr(x.backend, "xp", None)
    if xp is None or not hasattr(xp, "linalg"):
        raise RuntimeError(f"linalg: backend {x.backend.name!r} has no linear-algebra routines")
    return xp.linalg


def _square(op, a):
    if not isinstance(a, Tensor):
        raise TypeError(f"linalg.{op}: expected a Tensor, got {type(a).__name__}")
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise RuntimeError(f"linalg.{op}: A must be a batch of square matrices, got shape {a.shape}")
    _float(op, a)


def _float(op, a):
    if a.dtype.kind != "f":
        raise TypeError(f"linalg.{op}: expected a floating-point tensor, got {a.dtype}")


def _wrap(arr, like):
    return Tensor._make(arr, like.backend)


def _eye(n, like):
    return eye(n, dtype=like.dtype, backend=like.backend)


def _singular(op, err):
    return RuntimeError(f"linalg.{op}: the input is singular (or not positive-definite): {err}")


class _Inv(Function):
    @staticmethod
    def forward(ctx, a):
        try:
            y = _wrap(_lapack(a).inv(a.array), a)
        except Exception as err:  # numpy.linalg.LinAlgError; cupy raises its own
            raise _singular("inv", err) from None
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        yt = y.mT
        return -(yt @ g @ yt)


def inv(A):
    """The inverse of each square matrix (RuntimeError when singular)."""
    _square("inv", A)
    return _Inv.apply(A)


class _Solve(Function):
    @staticmethod
    def forward(ctx, a, b):
        try:
            x = _wrap(_lapack(a).solve(a.array, b.array), a)
        except Exception as err:
            raise _singular("solve", err) from None
        ctx.save_for_backward(a, x)
        return x

    @staticmethod
    def backward(ctx, g):
        a, x = ctx.saved_tensors
        gb = solve(a.mT, g)
        return -(gb @ x.mT), gb


def solve(A, B, left=True):
    """``X`` with ``A X = B`` (``left=False``: ``X A = B``). ``B`` is a matrix (or a
    batch) or a vector of length n."""
    _square("solve", A)
    if not isinstance(B, Tensor):
        B = Tensor(B, dtype=A.dtype, backend=A.backend)
    if not left:
        return solve(A.mT, B.mT).mT
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape == A.shape[:-1])
    b = B.unsqueeze(-1) if vector else B
    if b.shape[-2] != A.shape[-1]:
        raise RuntimeError(f"linalg.solve: A of shape {A.shape} and B of shape {B.shape} do not "
                           f"match (B needs {A.shape[-1]} rows)")
    x = _Solve.apply(*_batch_pair(A, b))
    return x.squeeze(-1) if vector else x


def _batch_pair(a, b):
    batch = _broadcast(a.shape[:-2], b.shape[:-2])
    return a.expand(*batch, *a.shape[-2:]), b.expand(*batch, *b.shape[-2:])


def _broadcast(s, t):
    return broadcast_shapes(s, t)


class _Det(Function):
    @staticmethod
    def forward(ctx, a):
        d = _wrap(_lapack(a).det(a.array), a)
        ctx.save_for_backward(a, d)
        return d

    @staticmethod
    def backward(ctx, g):
        a, d = ctx.saved_tensors
        return (g * d).unsqueeze(-1).unsqueeze(-1) * inv(a).mT


def det(A):
    """The determinant of each square matrix (gradient via ``A^-1``: a singular input's
    gradient is not defined here)."""
    _square("det", A)
    return _Det.apply(A)


class _Slogdet(Function):
    @staticmethod
    def forward(ctx, a):
        sign, logabs = _lapack(a).slogdet(a.array)
        ctx.save_for_backward(a)
        sign_t = _wrap(a.backend.astype(sign, a.dtype), a)
        ctx.mark_non_differentiable(sign_t)
        return sign_t, _wrap(logabs, a)

    @staticmethod
    def backward(ctx, g_sign, g_logabs):
        (a,) = ctx.saved_tensors
        return g_logabs.unsqueeze(-1).unsqueeze(-1) * inv(a).mT


def slogdet(A):
    """``(sign, log|det A|)``; differentiable in ``logabsdet``."""
    _square("slogdet", A)
    return SlogdetResult(*_Slogdet.apply(A))


def logdet(A):
    """``log det A`` (NaN where the determinant is negative, as PyTorch)."""
    sign, logabs = slogdet(A)  # a zero determinant already gives -inf
    return _where(sign < 0, logabs.new_full((), math.nan), logabs)


def _where(cond, a, b):
    return where(cond, a, b)


def _phi(m):
    """The lower triangle of ``m`` with its diagonal halved."""
    return m.tril() - 0.5 * (m * _eye(m.shape[-1], m))


class _Cholesky(Function):
    @staticmethod
    def forward(ctx, a):
        try:
            low = _wrap(_lapack(a).cholesky(a.array), a)
        except Exception as err:
            raise _singular("cholesky", err) from None
        ctx.save_for_backward(low)
        return low

    @staticmethod
    def backward(ctx, g):
        (low,) = ctx.saved_tensors
        li = inv(low)
        s = li.mT @ _phi(low.mT @ g) @ li
        return 0.5 * (s + s.mT)


def cholesky(A, upper=False):
    """The lower Cholesky factor ``L`` (``A = L L^T``) of each symmetric positive-definite
    matrix (only its lower triangle is read; the gradient is the symmetric one, as
    PyTorch's); ``upper=True`` returns ``L^T``."""
    _square("cholesky", A)
    low = _Cholesky.apply(A)  # LAPACK reads the lower triangle
    return low.mT if upper else low


class _QR(Function):
    @staticmethod
    def forward(ctx, a, mode):
        q, r = _lapack(a).qr(a.array, mode=mode)
        q, r = _wrap(q, a), _wrap(r, a)
        ctx.save_for_backward(q, r)
        return q, r

    @staticmethod
    def backward(ctx, gq, gr):
        q, r = ctx.saved_tensors
        if q.shape[-1] != r.shape[-1] or r.shape[-2] != r.shape[-1]:
            raise RuntimeError("linalg.qr: the gradient is only implemented for inputs with at "
                               "least as many rows as columns (mode='reduced')")
        m = r @ gr.mT - gq.mT @ q
        copyltu = m.tril(-1) + m.tril(-1).mT + m * _eye(m.shape[-1], m)
        rhs = gq + q @ copyltu
        return solve(r, rhs.mT).mT, None


def qr(A, mode="reduced"):
    """``(Q, R)`` with ``A = Q R``; ``mode`` 'reduced' (default), 'complete' or 'r'."""
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"linalg.qr: mode must be 'reduced', 'complete' or 'r', got {mode!r}")
    if A.ndim < 2:
        raise RuntimeError(f"linalg.qr: expected a batch of matrices, got shape {A.shape}")
    _float("qr", A)
    if mode == "r":
        q, r = _QR.apply(A, "reduced")
        return QRResult(q.new_zeros(0), r)
    return QRResult(*_QR.apply(A, mode))


class _Eigh(Function):
    @staticmethod
    def forward(ctx, a, uplo):
        w, v = _lapack(a).eigh(a.array, UPLO=uplo)
        w, v = _wrap(w, a), _wrap(v, a)
        ctx.save_for_backward(w, v)
        return w, v

    @staticmethod
    def backward(ctx, gw, gv):
        w, v = ctx.saved_tensors
        n = w.shape[-1]
        eye = _eye(n, w)
        gap = w.unsqueeze(-2) - w.unsqueeze(-1)  # gap[i, j] = w_j - w_i
        f = (1 - eye) / (gap + eye)  # 1 / (w_j - w_i) off the diagonal, 0 on it
        inner = f * (v.mT @ gv) + gw.unsqueeze(-1) * eye
        ga = v @ inner @ v.mT
        return 0.5 * (ga + ga.mT), None


def eigh(A, UPLO="L"):
    """Eigenvalues (ascending) and orthonormal eigenvectors (columns) of each symmetric
    matrix, read from its lower (``UPLO='L'``) or upper triangle. Gradients assume
    distinct eigenvalues (and eigenvector gradients ignore their sign/rotation
    freedom, as PyTorch's)."""
    _square("eigh", A)
    if UPLO not in ("L", "U"):
        raise ValueError(f"linalg.eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    return EighResult(*_Eigh.apply(A, UPLO))


def eigvalsh(A, UPLO="L"):
    return eigh(A, UPLO).eigenvalues


class _SVD(Function):
    @staticmethod
    def forward(ctx, a):
        u, s, vh = _lapack(a).svd(a.array, full_matrices=False)
        u, s, vh = _wrap(u, a), _wrap(s, a), _wrap(vh, a)
        ctx.save_for_backward(u, s, vh)
        return u, s, vh

    @staticmethod
    def backward(ctx, gu, gs, gvh):
        u, s, vh = ctx.saved_tensors
        v, gv = vh.mT, gvh.mT
        k = s.shape[-1]
        eye = _eye(k, s)
        s2 = s * s
        gap = s2.unsqueeze(-2) - s2.unsqueeze(-1)  # s_j^2 - s_i^2
        f = (1 - eye) / (gap + eye)
        smat = s.unsqueeze(-1) * eye
        sinv = (1 / s).unsqueeze(-1) * eye
        utgu, vtgv = u.mT @ gu, v.mT @ gv
        inner = (f * (utgu - utgu.mT)) @ smat + smat @ (f * (vtgv - vtgv.mT)) + \
            gs.unsqueeze(-1) * eye
        ga = u @ inner @ vh
        m, n = u.shape[-2], v.shape[-2]
        if m > k:  # the part of gU outside U's column space
            ga = ga + (gu - u @ utgu) @ sinv @ vh
        if n > k:
            ga = ga + u @ sinv @ (gv - v @ vtgv).mT
        return ga


def svd(A, full_matrices=True):
    """``(U, S, Vh)`` with ``A = U diag(S) Vh``, singular values descending. Only the
    reduced factorisation (``full_matrices=False``) is differentiable, as in PyTorch
    (the extra columns of a full U/V are arbitrary); gradients assume distinct,
    non-zero singular values."""
    if A.ndim < 2:
        raise RuntimeError(f"linalg.svd: expected a batch of matrices, got shape {A.shape}")
    _float("svd", A)
    if full_matrices and A.shape[-1] != A.shape[-2]:
        if A.requires_grad:
            raise RuntimeError("linalg.svd: full_matrices=True is not differentiable for a "
                               "non-square input; use full_matrices=False")
        u, s, vh = _lapack(A).svd(A.array, full_matrices=True)
        return SVDResult(_wrap(u, A), _wrap(s, A), _wrap(vh, A))
    return SVDResult(*_SVD.apply(A))


def svdvals(A):
    return svd(A, full_matrices=False).S


def pinv(A, rtol=None, hermitian=False):
    """The Moore-Penrose pseudo-inverse via the SVD, singular values below
    ``rtol * max(S)`` (default ``max(m, n) * eps``) dropped."""
    u, s, vh = svd(A, full_matrices=False)
    if rtol is None:
        rtol = builtins.max(A.shape[-2:]) * _eps(A.dtype)
    keep = s > rtol * s.amax(-1, keepdim=True)
    sinv = _where(keep, 1 / _where(keep, s, s.new_ones(())), s.new_zeros(()))
    return (vh.mT * sinv.unsqueeze(-2)) @ u.mT


def _eps(dtype):
    import numpy  # host-side dtype limits only
    return float(numpy.finfo(dtype).eps)


def matrix_power(A, n):
    """``A`` multiplied by itself ``n`` times (``n < 0``: of its inverse; 0: identity),
    by repeated squaring."""
    _square("matrix_power", A)
    if not isinstance(n, numbers.Integral):
        raise TypeError(f"linalg.matrix_power: n must be an integer, got {n!r}")
    if n == 0:
        return _eye(A.shape[-1], A).expand(*A.shape).clone()
    base = inv(A) if n < 0 else A
    n, out = builtins.abs(n), None
    while n:
        if n & 1:
            out = base if out is None else out @ base
        n >>= 1
        if n:
            base = base @ base
    return out


def multi_dot(tensors):
    out = tensors[0]
    for t in tensors[1:]:
        out = out @ t
    return out


def vecdot(x, y, dim=-1):
    return (x * y).sum(dim)


def cross(input, other, dim=-1):
    return _cross(input, other, dim)


def diagonal(A, offset=0, dim1=-2, dim2=-1):
    return _diagonal(A, offset, dim1, dim2)


# -- norms --------------------------------------------------------------------------------------
def vector_norm(x, ord=2, dim=None, keepdim=False, dtype=None):
    """``(sum |x|^ord)^(1/ord)`` over ``dim`` (all elements by default); ``ord`` inf /
    -inf: max / min |x|; 0: the number of non-zeros."""
    if dtype is not None:
        x = x.to(dtype)
    _float("vector_norm", x)
    if isinstance(dim, numbers.Integral):
        dim = (dim,)
    dims = None if dim is None else tuple(dim)
    a = x.abs()
    if ord == math.inf:
        return a.amax(dims if dims is not None else tuple(range(x.ndim)), keepdim) \
            if x.ndim else a
    if ord == -math.inf:
        return a.amin(dims if dims is not None else tuple(range(x.ndim)), keepdim) \
            if x.ndim else a
    if ord == 0:  # a count: in the graph with a zero gradient, as PyTorch
        return (a * 0 + (x != 0).to(x.dtype)).sum(dims, keepdim)
    if ord == 2:
        return x.norm(2, dims, keepdim)
    if ord == 1:
        return a.sum(dims, keepdim)
    if not isinstance(ord, numbers.Number):
        raise ValueError(f"linalg.vector_norm: ord must be a number, got {ord!r}")
    return (a ** ord).sum(dims, keepdim) ** (1.0 / ord)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, dtype=None):
    """Matrix norms over the two ``dim``: 'fro', 'nuc', 1 / -1 (max / min column sum of
    |A|), inf / -inf (row sums), 2 / -2 (largest / smallest singular value)."""
    if dtype is not None:
        A = A.to(dtype)
    _float("matrix_norm", A)
    if A.ndim < 2:
        raise RuntimeError(f"linalg.matrix_norm: expected at least 2 dims, got shape {A.shape}")
    r, c = (d % A.ndim for d in dim)
    if r == c:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different, got {dim}")
    if ord == "fro":
        return A.norm(2, (r, c), keepdim)
    if ord in ("nuc", 2, -2):
        s = svdvals(movedim(A, (r, c), (-2, -1)))
        out = s.sum(-1) if ord == "nuc" else (s.amax(-1) if ord == 2 else s.amin(-1))
        if keepdim:
            for d in sorted((r, c)):
                out = out.unsqueeze(d)
        return out
    if ord in (1, -1, math.inf, -math.inf):
        sum_dim, red_dim = (r, c) if ord in (1, -1) else (c, r)
        sums = A.abs().sum(sum_dim, keepdim=True)
        out = sums.amax(red_dim, keepdim=True) if ord in (1, math.inf) else \
            sums.amin(red_dim, keepdim=True)
        return out if keepdim else out.squeeze(builtins.max(r, c)).squeeze(builtins.min(r, c))
    raise ValueError(f"linalg.matrix_norm: ord must be 'fro', 'nuc', 1, -1, 2, -2, inf or -inf, "
                     f"got {ord!r}")


def norm(A, ord=None, dim=None, keepdim=False, dtype=None):
    """``vector_norm`` for a 1-D ``dim`` (or, with ``ord=None``, all elements);
    ``matrix_norm`` for a 2-tuple ``dim`` or a string ``ord``, as ``torch.linalg.norm``."""
    if isinstance(dim, numbers.Integral):
        return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype)
    if dim is not None and len(dim) == 2:
        return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype)
    if ord is None:
        return vector_norm(A, 2, dim, keepdim, dtype)
    if A.ndim == 1:
        return vector_norm(A, ord, None, keepdim, dtype)
    if A.ndim == 2:
        return matrix_norm(A, ord, (-2, -1), keepdim, dtype)
    raise RuntimeError(f"linalg.norm: with ord={ord!r} the input must be 1-D or 2-D or dim must "
                       f"be given, got shape {A.shape}")
