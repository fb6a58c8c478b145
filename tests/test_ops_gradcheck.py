"""gradcheck (float64, central differences) for every differentiable op and primitive.

``CASES`` is the one table of ops the suite knows: each case names its inputs
(shapes and kinds) and one function written against a namespace ``L`` with
``L.lib`` (``gradflow`` or ``torch``) and ``L.F`` (their ``nn.functional``), so
the same function runs on gradflow and, in ``test_ops_torch.py``, on PyTorch.
``test_backend_parity.py`` and ``test_dtypes.py`` reuse the table too, so a new
op added here is covered everywhere.
"""
from __future__ import annotations

import types
import zlib

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as GF
from gradflow.autograd import gradcheck

GL = types.SimpleNamespace(lib=gf, F=GF, name="gradflow")


# ---------------------------------------------------------------------------
# input specs: (kind, shape[, extra]) -> a NumPy array
# ---------------------------------------------------------------------------
def make_array(spec, rng):
    kind, shape = spec[0], spec[1]
    n = int(np.prod(shape)) if shape else 1
    if kind == "f":          # plain normal floats
        return rng.standard_normal(shape)
    if kind == "p":          # positive, away from 0
        return rng.uniform(0.5, 2.0, shape)
    if kind == "u":          # in (0.1, 0.9): probabilities
        return rng.uniform(0.1, 0.9, shape)
    if kind == "d":          # distinct, well separated, away from 0 (max, relu, abs, pools)
        mags = np.linspace(0.1, 2.0, n)
        vals = mags * rng.choice([-1.0, 1.0], n)
        return rng.permutation(vals).reshape(shape)
    if kind == "i":          # integer class indices in [0, high)
        return rng.integers(0, spec[2], shape).astype(np.int64)
    if kind == "b":          # boolean mask
        return rng.random(shape) < 0.5
    if kind == "simplex":    # probability rows along axis 1
        a = rng.uniform(0.1, 1.0, shape)
        return a / a.sum(axis=1, keepdims=True)
    if kind == "c":          # a constant array given in the spec
        return np.asarray(spec[2])
    raise ValueError(kind)


class Case:
    """One op application. ``fn(L, *inputs)``; ``th`` overrides ``fn`` for torch
    (``False``: no torch comparison); ``grad`` lists the input positions that are
    differentiated (default: every floating input except ``nograd``)."""

    def __init__(self, id, specs, fn, th=None, nograd=(), torch_nograd=(), gc=True, mode="full",
                 seed=None, parity=True, tol=None):
        self.id, self.specs, self.fn, self.th = id, specs, fn, th
        self.nograd, self.torch_nograd = set(nograd), set(torch_nograd)
        self.gc, self.mode, self.seed, self.parity, self.tol = gc, mode, seed, parity, tol

    def arrays(self, seed=0):
        rng = np.random.default_rng(zlib.crc32(self.id.encode()) + seed)
        return [make_array(s, rng) for s in self.specs]

    def diff(self, i, arr):
        return arr.dtype.kind == "f" and i not in self.nograd

    def __repr__(self):
        return self.id


def outputs(out):
    """Every output as a list (ops may return tuples, ValuesIndices...)."""
    if isinstance(out, (tuple, list)):
        return list(out)
    return [out]


def _seeded(fn, seed):
    """Wrap ``fn`` so each call re-seeds gradflow (dropout's mask stays fixed)."""
    def run(L, *a):
        if L.name == "gradflow":
            gf.manual_seed(seed)
        return fn(L, *a)
    return run


def _bn_running(c):
    return [("c", (c,), np.linspace(-0.2, 0.3, c)), ("c", (c,), np.linspace(0.5, 1.5, c))]


def _setitem(a, b, index):
    y = a * 1.0
    y[index] = b
    return y


C = Case
CASES = [
    # --- arithmetic with broadcasting ----------------------------------------------------
    C("add_bcast", [("f", (3, 4)), ("f", (4,))], lambda L, a, b: a + b),
    C("add_bcast_both", [("f", (2, 1, 4)), ("f", (3, 1))], lambda L, a, b: a + b),
    C("add_scalar", [("f", (3, 4))], lambda L, a: 2.5 + a + 1),
    C("sub_bcast", [("f", (3, 1)), ("f", (1, 4))], lambda L, a, b: a - b),
    C("rsub_scalar", [("f", (3, 4))], lambda L, a: 2.0 - a),
    C("mul_bcast", [("f", (2, 3, 4)), ("f", (3, 1))], lambda L, a, b: a * b),
    C("mul_self", [("f", (3, 4))], lambda L, a: a * a * 0.5),
    C("div_bcast", [("f", (3, 4)), ("p", (4,))], lambda L, a, b: a / b),
    C("rdiv_scalar", [("p", (3, 4))], lambda L, a: 3.0 / a),
    C("neg", [("f", (3, 4))], lambda L, a: -a),
    C("pow_2", [("f", (3, 4))], lambda L, a: a ** 2),
    C("pow_3", [("f", (3, 4))], lambda L, a: a ** 3),
    C("pow_half", [("p", (3, 4))], lambda L, a: a ** 0.5),
    C("pow_neg", [("p", (3, 4))], lambda L, a: a ** -1.5),
    C("pow_tensor", [("p", (3, 4)), ("f", (4,))], lambda L, a, b: a ** b),
    C("rpow", [("f", (3, 4))], lambda L, a: 2.0 ** a),
    C("pow_zero", [("c", (3,), [0.0, 1.5, -2.0])], lambda L, a: a ** 0 + a),
    # --- unary math ------------------------------------------------------------------------
    C("exp", [("f", (3, 4))], lambda L, a: a.exp()),
    C("log", [("p", (3, 4))], lambda L, a: a.log()),
    C("sqrt", [("p", (3, 4))], lambda L, a: a.sqrt()),
    C("abs", [("d", (3, 4))], lambda L, a: a.abs()),
    C("sin", [("f", (3, 4))], lambda L, a: a.sin()),
    C("cos", [("f", (3, 4))], lambda L, a: a.cos()),
    C("log1p", [("p", (3, 4))], lambda L, a: a.log1p()),
    C("expm1", [("f", (3, 4))], lambda L, a: a.expm1()),
    C("square", [("f", (3, 4))], lambda L, a: a.square()),
    C("reciprocal", [("p", (3, 4))], lambda L, a: a.reciprocal()),
    C("rsqrt", [("p", (3, 4))], lambda L, a: a.rsqrt()),
    C("relu", [("d", (3, 4))], lambda L, a: a.relu()),
    C("sigmoid", [("f", (3, 4))], lambda L, a: a.sigmoid()),
    C("tanh", [("f", (3, 4))], lambda L, a: a.tanh()),
    C("F_relu", [("d", (2, 3, 4))], lambda L, a: L.F.relu(a)),
    C("F_sigmoid", [("f", (2, 3, 4))], lambda L, a: L.F.sigmoid(a)),
    C("F_tanh", [("f", (2, 3, 4))], lambda L, a: L.F.tanh(a)),
    C("clip_both", [("d", (4, 5))], lambda L, a: a.clip(-0.55, 0.65)),
    C("clamp_min", [("d", (4, 5))], lambda L, a: a.clamp(min=-0.55)),
    C("clamp_max", [("d", (4, 5))], lambda L, a: a.clamp(max=0.65)),
    C("maximum", [("d", (3, 4)), ("d", (4,))], lambda L, a, b: L.lib.maximum(a, b)),
    C("minimum", [("d", (3, 4)), ("d", (3, 4))], lambda L, a, b: L.lib.minimum(a, b)),
    C("where", [("b", (3, 4)), ("f", (3, 4)), ("f", (4,))],
      lambda L, c, a, b: L.lib.where(c, a, b)),
    C("where_scalar", [("b", (3, 4)), ("f", (3, 4))],
      lambda L, c, a: L.lib.where(c, a, 0.0 * a)),
    C("masked_fill", [("f", (3, 4)), ("b", (3, 4))], lambda L, a, m: a.masked_fill(m, 0.5)),
    C("leaky_relu", [("d", (3, 4))], lambda L, a: L.F.leaky_relu(a, 0.1)),
    C("elu", [("d", (3, 4))], lambda L, a: L.F.elu(a, alpha=1.3)),
    C("softplus", [("f", (3, 4))], lambda L, a: L.F.softplus(a)),
    C("softplus_beta", [("c", (5,), [-30.0, -1.0, 0.3, 2.0, 30.0])],
      lambda L, a: L.F.softplus(a, beta=2.0, threshold=10.0)),
    C("silu", [("f", (3, 4))], lambda L, a: L.F.silu(a)),
    C("gelu_tanh", [("f", (3, 4))], lambda L, a: L.F.gelu(a, approximate="tanh")),
    C("gelu_exact", [("f", (3, 4))], lambda L, a: L.F.gelu(a, approximate="none")),
    C("erf", [("c", (7,), [-7.0, -2.5, -0.3, 0.0, 1e-8, 1.7, 4.0])], lambda L, a: a.erf()),
    # --- reductions ------------------------------------------------------------------------
    C("sum_all", [("f", (3, 4))], lambda L, a: a.sum()),
    C("sum_axis", [("f", (3, 4))], lambda L, a: a.sum(1)),
    C("sum_axes_keep", [("f", (2, 3, 4))], lambda L, a: a.sum(dim=(0, 2), keepdim=True)),
    C("sum_neg_axis", [("f", (2, 3, 4))], lambda L, a: a.sum(dim=-1)),
    C("mean_all", [("f", (3, 4))], lambda L, a: a.mean()),
    C("mean_axis_keep", [("f", (2, 3, 4))], lambda L, a: a.mean(dim=1, keepdim=True)),
    C("var_axis", [("f", (3, 5))], lambda L, a: a.var(dim=1)),
    C("var_biased", [("f", (3, 5))], lambda L, a: a.var(dim=0, unbiased=False)),
    C("var_all", [("f", (3, 5))], lambda L, a: a.var()),
    C("std_axis", [("f", (3, 5))], lambda L, a: a.std(dim=1, keepdim=True)),
    C("max_all", [("d", (3, 4))], lambda L, a: a.max()),
    C("max_dim", [("d", (3, 4))], lambda L, a: a.max(1).values),
    C("max_dim_keep", [("d", (2, 3, 4))], lambda L, a: a.max(dim=2, keepdim=True)[0]),
    C("min_dim", [("d", (3, 4))], lambda L, a: a.min(dim=0).values),
    C("min_all", [("d", (3, 4))], lambda L, a: a.min()),
    C("amax_axes", [("d", (2, 3, 4))], lambda L, a: a.amax(dim=(0, 2))),
    C("max_ties", [("c", (2, 3), [[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])],
      lambda L, a: a.amax(dim=1), gc=False),  # not differentiable at ties: torch.amax splits evenly
    C("max_dim_ties", [("c", (2, 3), [[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])],
      lambda L, a: a.max(dim=1).values * 1.0 + a.min(0, keepdim=True)[0].sum(), gc=False),
    C("max_dim_0d", [("f", ())], lambda L, a: a.max(0).values * 2.0, th=False),
    C("prod_axis", [("p", (3, 4))], lambda L, a: a.prod(dim=1)),
    C("prod_all", [("p", (2, 3))], lambda L, a: a.prod()),
    C("norm", [("f", (3, 4))], lambda L, a: a.norm()),
    C("norm_p1_dim", [("d", (3, 4))], lambda L, a: a.norm(p=1, dim=1)),
    C("norm_p3_keep", [("d", (3, 4))], lambda L, a: a.norm(p=3, dim=0, keepdim=True)),
    C("var_correction0", [("f", (3, 5))], lambda L, a: a.var(dim=1, correction=0)),
    C("std_all", [("f", (3, 5))], lambda L, a: a.std()),
    C("amin_keep", [("d", (2, 3, 4))], lambda L, a: a.amin(dim=-1, keepdim=True)),
    C("min_dim_keep", [("d", (3, 4))], lambda L, a: a.min(1, keepdim=True)[0]),
    C("logsumexp_compose", [("f", (3, 4))], lambda L, a: (a - a.amax(dim=1, keepdim=True)).exp().sum(1).log()),
    # --- shape -----------------------------------------------------------------------------
    C("reshape", [("f", (3, 4))], lambda L, a: a.reshape(2, 6) * 1.0),
    C("view_neg1", [("f", (2, 3, 4))], lambda L, a: a.view(-1, 4) * 1.0),
    C("view_as", [("f", (3, 4)), ("f", (6, 2))], lambda L, a, b: a.view_as(b) * b),
    C("permute", [("f", (2, 3, 4))], lambda L, a: a.permute(2, 0, 1)),
    C("transpose", [("f", (2, 3, 4))], lambda L, a: a.transpose(0, 2)),
    C("T", [("f", (3, 4))], lambda L, a: a.T),
    C("expand", [("f", (3, 1))], lambda L, a: a.expand(2, 3, 4)),
    C("expand_neg1", [("f", (1, 4))], lambda L, a: a.expand(3, -1)),
    C("squeeze", [("f", (3, 1, 4, 1))], lambda L, a: a.squeeze()),
    C("squeeze_dim", [("f", (3, 1, 4, 1))], lambda L, a: a.squeeze(1)),
    C("unsqueeze", [("f", (3, 4))], lambda L, a: a.unsqueeze(1) * 1.0),
    C("flatten", [("f", (2, 3, 4))], lambda L, a: L.lib.flatten(a, 1)),
    C("flatten_method", [("f", (2, 3, 2, 2))], lambda L, a: a.flatten(1, 2)),
    C("repeat", [("f", (2, 3))], lambda L, a: a.repeat(2, 1, 3)),
    C("clone", [("f", (3, 4))], lambda L, a: a.clone()),
    C("unflatten", [("f", (2, 12))], lambda L, a: a.unflatten(1, (3, 4)) * 1.0),
    C("expand_as_masked_fill_t", [("f", (3, 4)), ("b", (3, 4)), ("f", ())],
      lambda L, a, m, v: a.masked_fill(m, v)),
    C("contiguous_after_T", [("f", (3, 4))], lambda L, a: a.t().contiguous().view(-1)),
    C("getitem_slices", [("f", (5, 6))], lambda L, a: a[1:4, ::2]),
    C("getitem_int", [("f", (3, 4, 5))], lambda L, a: a[1, :, 2]),
    C("getitem_neg_int", [("f", (3, 4))], lambda L, a: a[-1]),
    C("getitem_none_ellipsis", [("f", (2, 3, 4))], lambda L, a: a[None, ..., 1:3]),
    C("getitem_reverse", [("f", (5, 4))], lambda L, a: a[::-1, 1], th=False),  # torch: no neg step
    C("getitem_bool", [("f", (3, 4)), ("b", (3, 4))], lambda L, a, m: a[m]),
    C("getitem_bool_rows", [("f", (4, 3)), ("c", (4,), [True, False, True, True])],
      lambda L, a, m: a[m]),
    C("getitem_fancy_repeat", [("f", (4, 3))], lambda L, a: a[[0, 0, 2, 0]]),
    C("getitem_fancy_2d", [("f", (4, 3))], lambda L, a: a[[0, 0, 3], [1, 1, 2]]),
    C("getitem_mixed", [("f", (4, 5))], lambda L, a: a[1:4, [0, 0, 3]]),
    C("getitem_neg_fancy", [("f", (4, 3))], lambda L, a: a[[-1, 0, -1], 1:]),
    C("getitem_chain", [("f", (4, 5))], lambda L, a: a[[1, 2]][:, ::2][0]),
    C("getitem_int_tensor", [("f", (5, 3)), ("c", (4,), [4, 1, 1, 4])], lambda L, a, i: a[i]),
    C("setitem_slice", [("f", (4, 3)), ("f", (3,))], lambda L, a, b: _setitem(a, b * 2.0, (slice(1, 3),))),
    C("setitem_fancy", [("f", (5, 2)), ("f", (2, 2))], lambda L, a, b: _setitem(a, b.exp(), [4, 0])),
    C("cat", [("f", (2, 3)), ("f", (2, 2))], lambda L, a, b: L.lib.cat([a, b], dim=1)),
    C("cat3", [("f", (1, 3)), ("f", (2, 3)), ("f", (1, 3))], lambda L, a, b, c: L.lib.cat([a, b, c])),
    C("stack", [("f", (2, 3)), ("f", (2, 3))], lambda L, a, b: L.lib.stack([a, b], dim=1)),
    C("split", [("f", (3, 5))], lambda L, a: L.lib.split(a, 2, dim=1)),
    C("split_sizes", [("f", (3, 5))], lambda L, a: a.split([1, 4], dim=1)),
    C("chunk", [("f", (6, 2))], lambda L, a: a.chunk(3)),
    # --- linear algebra --------------------------------------------------------------------
    C("matmul_2d", [("f", (3, 4)), ("f", (4, 2))], lambda L, a, b: a @ b),
    C("matmul_batched", [("f", (2, 3, 4)), ("f", (2, 4, 5))], lambda L, a, b: a @ b),
    C("matmul_bcast_batch", [("f", (2, 1, 3, 4)), ("f", (3, 4, 2))], lambda L, a, b: L.lib.matmul(a, b)),
    C("matmul_bcast_2d", [("f", (2, 3, 4)), ("f", (4, 2))], lambda L, a, b: a @ b),
    C("matmul_1d_2d", [("f", (4,)), ("f", (4, 3))], lambda L, a, b: a @ b),
    C("matmul_2d_1d", [("f", (3, 4)), ("f", (4,))], lambda L, a, b: a @ b),
    C("matmul_1d_1d", [("f", (4,)), ("f", (4,))], lambda L, a, b: a @ b),
    C("matmul_1d_batched", [("f", (4,)), ("f", (2, 4, 3))], lambda L, a, b: a @ b),
    C("mm", [("f", (3, 4)), ("f", (4, 2))], lambda L, a, b: a.mm(b)),
    C("bmm", [("f", (2, 3, 4)), ("f", (2, 4, 2))], lambda L, a, b: L.lib.bmm(a, b)),
    C("dot", [("f", (5,)), ("f", (5,))], lambda L, a, b: L.lib.dot(a, b)),
    C("linear", [("f", (3, 4)), ("f", (5, 4)), ("f", (5,))], lambda L, x, w, b: L.F.linear(x, w, b)),
    C("linear_nobias", [("f", (3, 4)), ("f", (5, 4))], lambda L, x, w: L.F.linear(x, w)),
    C("linear_1d", [("f", (4,)), ("f", (3, 4)), ("f", (3,))], lambda L, x, w, b: L.F.linear(x, w, b)),
    C("linear_3d", [("f", (2, 3, 4)), ("f", (5, 4)), ("f", (5,))], lambda L, x, w, b: L.F.linear(x, w, b)),
    # --- softmax ---------------------------------------------------------------------------
    C("softmax", [("f", (3, 5))], lambda L, a: L.F.softmax(a, dim=-1)),
    C("softmax_dim0", [("f", (3, 5))], lambda L, a: a.softmax(dim=0)),
    C("log_softmax", [("f", (3, 5))], lambda L, a: L.F.log_softmax(a, dim=1)),
    C("log_softmax_3d", [("f", (2, 3, 4))], lambda L, a: a.log_softmax(dim=1)),
    C("softmax_lib", [("f", (2, 3, 4))], lambda L, a: L.lib.softmax(a, 2)),
    # --- convolution -----------------------------------------------------------------------
    C("conv2d", [("f", (2, 3, 5, 5)), ("f", (4, 3, 3, 3)), ("f", (4,))],
      lambda L, x, w, b: L.F.conv2d(x, w, b)),
    C("conv2d_stride_pad", [("f", (2, 2, 6, 5)), ("f", (3, 2, 3, 3)), ("f", (3,))],
      lambda L, x, w, b: L.F.conv2d(x, w, b, stride=2, padding=1)),
    C("conv2d_dilation", [("f", (1, 2, 7, 7)), ("f", (2, 2, 3, 3))],
      lambda L, x, w: L.F.conv2d(x, w, None, dilation=2, padding=1)),
    C("conv2d_groups", [("f", (2, 4, 5, 5)), ("f", (6, 2, 3, 3)), ("f", (6,))],
      lambda L, x, w, b: L.F.conv2d(x, w, b, groups=2)),
    C("conv2d_depthwise", [("f", (2, 3, 4, 4)), ("f", (3, 1, 3, 3))],
      lambda L, x, w: L.F.conv2d(x, w, groups=3, padding=1)),
    C("conv2d_nonsquare", [("f", (2, 2, 6, 7)), ("f", (3, 2, 2, 3)), ("f", (3,))],
      lambda L, x, w, b: L.F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2))),
    C("conv2d_same", [("f", (2, 2, 5, 6)), ("f", (3, 2, 3, 5))],
      lambda L, x, w: L.F.conv2d(x, w, padding="same")),
    C("conv2d_same_even", [("f", (2, 2, 5, 6)), ("f", (3, 2, 2, 4)), ("f", (3,))],
      lambda L, x, w, b: L.F.conv2d(x, w, b, padding="same")),
    C("conv2d_same_dilated", [("f", (1, 2, 6, 5)), ("f", (2, 2, 2, 3))],
      lambda L, x, w: L.F.conv2d(x, w, padding="same", dilation=(3, 2))),
    C("conv2d_1x1", [("f", (2, 4, 3, 3)), ("f", (2, 4, 1, 1))], lambda L, x, w: L.F.conv2d(x, w)),
    C("conv2d_unbatched", [("f", (2, 4, 4)), ("f", (3, 2, 3, 3))], lambda L, x, w: L.F.conv2d(x, w)),
    # --- pooling ---------------------------------------------------------------------------
    C("max_pool2d", [("d", (2, 2, 4, 4))], lambda L, x: L.F.max_pool2d(x, 2)),
    C("max_pool2d_stride_pad", [("d", (2, 2, 5, 5))], lambda L, x: L.F.max_pool2d(x, 3, stride=1, padding=1)),
    C("max_pool2d_overlap", [("d", (1, 2, 5, 6))], lambda L, x: L.F.max_pool2d(x, 3, stride=2)),
    C("max_pool2d_ceil", [("d", (1, 2, 5, 5))], lambda L, x: L.F.max_pool2d(x, 2, stride=2, ceil_mode=True)),
    C("max_pool2d_ceil_pad", [("d", (1, 1, 6, 7))],
      lambda L, x: L.F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)),
    C("max_pool2d_dilation", [("d", (1, 2, 6, 6))], lambda L, x: L.F.max_pool2d(x, 2, stride=1, dilation=2)),
    C("max_pool2d_nonsquare", [("d", (2, 1, 5, 6))], lambda L, x: L.F.max_pool2d(x, (2, 3), stride=(1, 2))),
    C("max_pool2d_unbatched", [("d", (2, 4, 4))], lambda L, x: L.F.max_pool2d(x, 2)),
    C("avg_pool2d", [("f", (2, 2, 4, 4))], lambda L, x: L.F.avg_pool2d(x, 2)),
    C("avg_pool2d_pad_incl", [("f", (2, 2, 5, 5))], lambda L, x: L.F.avg_pool2d(x, 3, stride=2, padding=1)),
    C("avg_pool2d_pad_excl", [("f", (2, 2, 5, 5))],
      lambda L, x: L.F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)),
    C("avg_pool2d_ceil", [("f", (1, 2, 5, 5))], lambda L, x: L.F.avg_pool2d(x, 2, ceil_mode=True)),
    C("avg_pool2d_ceil_pad_excl", [("f", (1, 1, 6, 7))],
      lambda L, x: L.F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    C("avg_pool2d_ceil_pad_incl", [("f", (1, 1, 6, 7))],
      lambda L, x: L.F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)),
    C("avg_pool2d_nonsquare", [("f", (2, 1, 5, 6))], lambda L, x: L.F.avg_pool2d(x, (2, 3), stride=(1, 2))),
    C("lp_pool2d", [("p", (2, 2, 4, 4))], lambda L, x: L.F.lp_pool2d(x, 2, 2)),
    C("lp_pool2d_p3_stride", [("p", (1, 2, 5, 5))], lambda L, x: L.F.lp_pool2d(x, 3, 3, stride=2)),
    # --- losses ----------------------------------------------------------------------------
    C("ce_mean", [("f", (4, 5)), ("i", (4,), 5)], lambda L, x, t: L.F.cross_entropy(x, t)),
    C("ce_sum", [("f", (4, 5)), ("i", (4,), 5)], lambda L, x, t: L.F.cross_entropy(x, t, reduction="sum")),
    C("ce_none", [("f", (4, 5)), ("i", (4,), 5)], lambda L, x, t: L.F.cross_entropy(x, t, reduction="none")),
    C("ce_weight", [("f", (4, 5)), ("c", (4,), [0, 2, 2, 4]), ("p", (5,))],
      lambda L, x, t, w: L.F.cross_entropy(x, t, weight=w), nograd=(2,)),
    C("ce_weight_sum", [("f", (4, 5)), ("c", (4,), [0, 2, 2, 4]), ("p", (5,))],
      lambda L, x, t, w: L.F.cross_entropy(x, t, weight=w, reduction="sum"), nograd=(2,)),
    C("ce_ignore", [("f", (4, 5)), ("c", (4,), [1, -100, 3, 0])],
      lambda L, x, t: L.F.cross_entropy(x, t)),
    C("ce_ignore_custom", [("f", (4, 5)), ("c", (4,), [1, 2, 3, 2])],
      lambda L, x, t: L.F.cross_entropy(x, t, ignore_index=2, reduction="none")),
    C("ce_ignore_weight", [("f", (4, 5)), ("c", (4,), [1, -100, 3, 0]), ("p", (5,))],
      lambda L, x, t, w: L.F.cross_entropy(x, t, weight=w), nograd=(2,)),
    C("ce_nd", [("f", (2, 3, 2, 2)), ("i", (2, 2, 2), 3)], lambda L, x, t: L.F.cross_entropy(x, t)),
    C("ce_nd_none", [("f", (2, 3, 2, 2)), ("i", (2, 2, 2), 3)],
      lambda L, x, t: L.F.cross_entropy(x, t, reduction="none")),
    C("ce_1d", [("f", (5,)), ("c", (), 3)], lambda L, x, t: L.F.cross_entropy(x, t)),
    C("ce_prob", [("f", (3, 4)), ("simplex", (3, 4))], lambda L, x, t: L.F.cross_entropy(x, t)),
    C("ce_prob_none", [("f", (3, 4)), ("simplex", (3, 4))],
      lambda L, x, t: L.F.cross_entropy(x, t, reduction="none")),
    C("ce_prob_smooth", [("f", (3, 4)), ("simplex", (3, 4))],
      lambda L, x, t: L.F.cross_entropy(x, t, label_smoothing=0.2)),
    C("ce_smooth", [("f", (4, 5)), ("i", (4,), 5)],
      lambda L, x, t: L.F.cross_entropy(x, t, label_smoothing=0.1)),
    C("ce_smooth_sum_ignore", [("f", (4, 5)), ("c", (4,), [1, -100, 3, 0])],
      lambda L, x, t: L.F.cross_entropy(x, t, label_smoothing=0.3, reduction="sum")),
    C("ce_smooth_weight", [("f", (4, 5)), ("c", (4,), [0, 2, 2, 4]), ("p", (5,))],
      lambda L, x, t, w: L.F.cross_entropy(x, t, weight=w, label_smoothing=0.2), nograd=(2,)),
    C("ce_smooth_weight_ignore_nd", [("f", (2, 3, 2)), ("c", (2, 2), [[0, -100], [2, 1]]), ("p", (3,))],
      lambda L, x, t, w: L.F.cross_entropy(x, t, weight=w, label_smoothing=0.4, reduction="none"),
      nograd=(2,)),
    C("ce_smooth_weight_ignore_mean", [("f", (4, 3)), ("c", (4,), [0, -100, 2, 1]), ("p", (3,))],
      lambda L, x, t, w: L.F.cross_entropy(x, t, weight=w, label_smoothing=0.4), nograd=(2,)),
    C("nll_1d", [("f", (5,)), ("c", (), 2)], lambda L, x, t: L.F.nll_loss(x, t)),
    C("nll_mean", [("f", (4, 5)), ("i", (4,), 5)], lambda L, x, t: L.F.nll_loss(L.F.log_softmax(x, 1), t)),
    C("nll_raw_sum", [("f", (4, 5)), ("i", (4,), 5)], lambda L, x, t: L.F.nll_loss(x, t, reduction="sum")),
    C("nll_weight_ignore", [("f", (4, 5)), ("c", (4,), [1, -100, 3, 1]), ("p", (5,))],
      lambda L, x, t, w: L.F.nll_loss(x, t, weight=w), nograd=(2,)),
    C("nll_nd_none", [("f", (2, 3, 2, 2)), ("i", (2, 2, 2), 3)],
      lambda L, x, t: L.F.nll_loss(x, t, reduction="none")),
    C("mse_mean", [("f", (3, 4)), ("f", (3, 4))], lambda L, x, t: L.F.mse_loss(x, t)),
    C("mse_sum", [("f", (3, 4)), ("f", (3, 4))], lambda L, x, t: L.F.mse_loss(x, t, reduction="sum")),
    C("mse_none", [("f", (3, 4)), ("f", (3, 4))], lambda L, x, t: L.F.mse_loss(x, t, reduction="none")),
    C("l1", [("d", (3, 4)), ("c", (3, 4), np.zeros((3, 4)))], lambda L, x, t: L.F.l1_loss(x, t)),
    C("smooth_l1", [("d", (3, 4)), ("c", (3, 4), np.zeros((3, 4)))],
      lambda L, x, t: L.F.smooth_l1_loss(x, t)),
    C("smooth_l1_beta", [("d", (3, 4)), ("c", (3, 4), np.full((3, 4), 0.05))],
      lambda L, x, t: L.F.smooth_l1_loss(x, t, reduction="sum", beta=0.5)),
    C("bce", [("u", (3, 4)), ("u", (3, 4))], lambda L, x, t: L.F.binary_cross_entropy(x, t),
      torch_nograd=(1,)),
    C("bce_weight_sum", [("u", (3, 4)), ("u", (3, 4)), ("p", (4,))],
      lambda L, x, t, w: L.F.binary_cross_entropy(x, t, weight=w, reduction="sum"),
      nograd=(2,), torch_nograd=(1,)),
    C("bce_logits", [("f", (3, 4)), ("u", (3, 4))], lambda L, x, t: L.F.binary_cross_entropy_with_logits(x, t)),
    C("bce_logits_weights", [("f", (3, 4)), ("u", (3, 4)), ("p", (3, 4)), ("p", (4,))],
      lambda L, x, t, w, pw: L.F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw,
                                                                  reduction="none"),
      nograd=(2, 3)),
    C("bce_logits_big", [("c", (4,), [-30.0, -3.0, 3.0, 40.0]), ("c", (4,), [0.0, 1.0, 0.3, 0.0])],
      lambda L, x, t: L.F.binary_cross_entropy_with_logits(x, t, reduction="sum")),
    # --- normalisation, dropout, padding ---------------------------------------------------
    C("batch_norm_train_2d", [("f", (5, 3)), *_bn_running(3), ("p", (3,)), ("f", (3,))],
      lambda L, x, rm, rv, w, b: L.F.batch_norm(x, rm, rv, w, b, training=True), nograd=(1, 2)),
    C("batch_norm_train_4d", [("f", (3, 2, 3, 3)), *_bn_running(2), ("p", (2,)), ("f", (2,))],
      lambda L, x, rm, rv, w, b: L.F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3),
      nograd=(1, 2)),
    C("batch_norm_train_nostats", [("f", (4, 3, 2, 2))],
      lambda L, x: L.F.batch_norm(x, None, None, training=True)),
    C("batch_norm_eval", [("f", (3, 2, 3, 3)), *_bn_running(2), ("p", (2,)), ("f", (2,))],
      lambda L, x, rm, rv, w, b: L.F.batch_norm(x, rm, rv, w, b, training=False), nograd=(1, 2)),
    C("lrn", [("f", (2, 5, 3, 3))], lambda L, x: L.F.local_response_norm(x, 3, alpha=0.1, beta=0.75, k=1.0)),
    C("lrn_even", [("f", (2, 4, 3))], lambda L, x: L.F.local_response_norm(x, 2, alpha=0.2, beta=0.5, k=2.0)),
    C("dropout", [("f", (4, 5))], _seeded(lambda L, x: L.F.dropout(x, 0.4), 7), th=False, parity=False),
    C("dropout_eval", [("f", (4, 5))], lambda L, x: L.F.dropout(x, 0.4, training=False)),
    C("pad", [("f", (2, 3, 4))], lambda L, x: L.F.pad(x, (1, 2, 0, 1), value=0.5)),
    C("pad_last", [("f", (2, 3))], lambda L, x: L.F.pad(x, (2, 0))),
    C("pad_crop", [("f", (2, 3, 5))], lambda L, x: L.F.pad(x, (-1, 2, 1, -1))),
    # --- compositions that mix many ops ----------------------------------------------------
    C("mlp_ce", [("f", (4, 5)), ("f", (6, 5)), ("f", (6,)), ("f", (3, 6)), ("i", (4,), 3)],
      lambda L, x, w1, b1, w2, t: L.F.cross_entropy(L.F.linear(L.F.linear(x, w1, b1).tanh(), w2), t)),
    C("cnn_block", [("f", (2, 2, 6, 6)), ("f", (3, 2, 3, 3)), ("f", (3,))],
      lambda L, x, w, b: L.F.max_pool2d(L.F.conv2d(x, w, b, padding=1).sigmoid(), 2).sum(dim=(2, 3))),
]

_IDS = [c.id for c in CASES]
assert len(set(_IDS)) == len(_IDS), "duplicate case ids"
CASES_BY_ID = {c.id: c for c in CASES}


def gf_inputs(case, arrays, dtype="float64", requires_grad=True, backend=None, make=None):
    """gradflow tensors for ``arrays``: floats in ``dtype`` (differentiable ones with
    requires_grad), ints as int64, bools as bool. ``make(array, dtype)`` overrides how
    a float array becomes a tensor (used for non-contiguous layouts)."""
    out = []
    for i, a in enumerate(arrays):
        if a.dtype.kind == "f":
            t = make(a, dtype) if make else gf.tensor(a, dtype=dtype, backend=backend)
            if requires_grad and case.diff(i, a):
                t.requires_grad_(True)
        else:
            t = gf.tensor(a, backend=backend)
        out.append(t)
    return out


@pytest.mark.parametrize("case", [c for c in CASES if c.gc], ids=lambda c: c.id)
def test_gradcheck(case):
    xs = gf_inputs(case, case.arrays())
    assert any(t.requires_grad for t in xs), "case has nothing to differentiate"
    assert gradcheck(lambda *a: case.fn(GL, *a), tuple(xs), mode=case.mode)


def test_case_table_covers_functional():
    """Every differentiable name exported by nn.functional appears in some case."""
    import inspect
    src = "\n".join(inspect.getsource(c.fn) for c in CASES)
    names = ["linear", "conv2d", "max_pool2d", "avg_pool2d", "lp_pool2d", "relu", "sigmoid", "tanh",
             "softmax", "log_softmax", "cross_entropy", "nll_loss", "mse_loss", "l1_loss",
             "smooth_l1_loss", "binary_cross_entropy(", "binary_cross_entropy_with_logits",
             "batch_norm", "local_response_norm", "leaky_relu", "elu", "softplus", "silu", "gelu",
             "pad"]
    missing = [n for n in names if f"F.{n}" not in src]
    assert not missing, missing


def test_gradcheck_random_mode_on_big_conv():
    """The random-direction mode checks inputs too large to perturb one by one."""
    x = gf.randn(2, 3, 9, 9, dtype="float64", requires_grad=True)
    w = gf.randn(4, 3, 3, 3, dtype="float64", requires_grad=True)
    assert gradcheck(lambda x, w: GF.conv2d(x, w, stride=2, padding=1), (x, w), mode="random",
                     n_directions=4)


def test_gradcheck_with_float32_inputs_checks_in_float64():
    x = gf.randn(3, 4, requires_grad=True)
    assert gradcheck(lambda a: (a * a).tanh(), (x,))
    assert x.dtype == gf.float32  # the caller's tensor is untouched
