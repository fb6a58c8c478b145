"""Reliability: a fuzz test of the public ops, functional layers and modules.

Hypothesis throws random shapes (zero sizes included), dtypes (float32/64, int64, bool),
``None``s, negative and zero sizes, out-of-range dims and wrong-typed arguments at each
op, on the NumPy and Numba backends. Each call must either

* return a result -- equal to PyTorch's (values, shape and input gradients) whenever
  PyTorch is installed and accepts the same call; or
* raise ValueError / TypeError / RuntimeError / IndexError whose message names the op
  and is none of NumPy's, Numba's or Python's internal messages.

Bounded like the property tests: few examples per op, ``derandomize=True`` (the same
examples every run) and no example database.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F

from conftest import HAVE_TORCH, backend_params

if HAVE_TORCH:
    import torch
    import torch.nn.functional as TF

FUZZ = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

ALLOWED = (ValueError, TypeError, RuntimeError, IndexError)
# what a leaked internal error looks like
RAW = ("ufunc", "could not be broadcast", "cannot reshape array", "numpy", "numba",
       "setting an array element", "zero-size array", "has no attribute", "unsupported operand type(s)",
       "not supported between instances", "list index out of range", "tuple index out of range",
       "is not subscriptable", "object is not iterable", "object cannot be interpreted",
       "must be real number", "takes from", "positional argument", "unexpected keyword")

DTYPES = ["float32", "float64", "int64", "bool"]


# ---------------------------------------------------------------------------
# argument strategies: a tensor spec is ("T", ndarray); anything else is passed as is
# ---------------------------------------------------------------------------
@st.composite
def shapes(draw, min_dims=0, max_dims=4, max_side=3):
    return tuple(draw(st.lists(st.integers(0, max_side), min_size=min_dims, max_size=max_dims)))


@st.composite
def tensors(draw, min_dims=0, max_dims=4, max_side=3, dtypes=DTYPES, junk=True, shape=None):
    """A tensor spec, or (rarely, with ``junk``) None, a number or a string."""
    if junk and draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from([None, 2.5, "x"]))
    shp = shape if shape is not None else draw(shapes(min_dims, max_dims, max_side))
    dt = draw(st.sampled_from(dtypes))
    seed = draw(st.integers(0, 2**16))
    r = np.random.default_rng(seed)
    if dt == "bool":
        a = r.random(shp) > 0.5
    elif dt == "int64":
        a = r.integers(-3, 4, shp).astype(np.int64)
    else:
        a = r.standard_normal(shp).astype(dt)
    return ("T", np.asarray(a))


def ints(lo=-3, hi=4, junk=True):
    s = st.integers(lo, hi)
    return st.one_of(s, s, s, st.sampled_from([None, 1.5, "2"])) if junk else s


def _build(spec, grads, make):
    """A spec as an argument: tensor specs through ``make`` (gradflow's or torch's
    ``tensor``; floating ones require grad and are collected in ``grads``)."""
    if isinstance(spec, tuple) and len(spec) == 2 and spec[0] == "T":
        t = make(spec[1])
        if spec[1].dtype.kind == "f":
            t.requires_grad_(True)
            grads.append(t)
        return t
    if isinstance(spec, list) and spec and all(isinstance(s, tuple) for s in spec):
        return [_build(s, grads, make) for s in spec]
    return spec


# ---------------------------------------------------------------------------
# the check
# ---------------------------------------------------------------------------
def _first(out):
    """The tensor of a result (the values of (values, indices) pairs)."""
    if isinstance(out, (tuple, list)):
        return out[0] if out else None
    return out


def _np(t):
    if isinstance(t, gf.Tensor):
        return t.numpy()
    if HAVE_TORCH and isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return np.asarray(t)


def check(names, call, args, tcall=None, grad=True):
    """Run ``call(*gradflow args)``; see the module docstring for what must hold."""
    grads = []
    try:
        out = call(*[_build(a, grads, gf.tensor) for a in args])
    except ALLOWED as e:
        msg = str(e)
        assert not type(e).__module__.startswith(("numpy", "numba")), f"{names[0]}: raw {e!r}"
        assert any(n in msg for n in names), f"{names[0]}: error does not name the op: {e!r}"
        assert not any(m in msg for m in RAW), f"{names[0]}: internal message leaked: {e!r}"
        return "error"
    except Exception as e:  # noqa: BLE001 - the failure being tested for
        pytest.fail(f"{names[0]}: {type(e).__name__} is not an allowed error type: {e!r}")
    if not HAVE_TORCH or tcall is None:
        return "ok"
    tgrads = []
    try:
        tout = tcall(*[_build(a, tgrads, torch.tensor) for a in args])
    except Exception:  # noqa: BLE001 - PyTorch refuses what gradflow accepts: lenient, allowed
        return "ok"
    y, ty = _first(out), _first(tout)
    a, b = _np(y), _np(ty)
    assert a.shape == b.shape, f"{names[0]}: shape {a.shape} != torch's {b.shape}"
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        tol = 1e-4 if np.float32 in (a.dtype, b.dtype) else 1e-9
        np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), rtol=tol,
                                   atol=tol, equal_nan=True, err_msg=names[0])
    else:
        np.testing.assert_array_equal(a, b, err_msg=names[0])
    if grad and grads and isinstance(y, gf.Tensor) and y.requires_grad and y.dtype.kind == "f":
        with np.errstate(all="ignore"):
            y.sum().backward()
            ty.sum().backward()
        for g, tg in zip(grads, tgrads):
            if tg.grad is None:
                continue
            assert g.grad is not None, f"{names[0]}: no gradient where torch has one"
            tol = 1e-4 if g.dtype == np.float32 else 1e-9
            np.testing.assert_allclose(g.grad.numpy().astype(np.float64),
                                       tg.grad.numpy().astype(np.float64), rtol=tol, atol=tol,
                                       equal_nan=True, err_msg=f"{names[0]} gradient")
    return "ok"


# ---------------------------------------------------------------------------
# the cases: name -> (names the errors may use, strategy of args, gradflow call, torch call)
# ---------------------------------------------------------------------------
def _t(**kw):
    return tensors(**kw)


def _channels(w):
    """PyTorch answers a convolution whose weight has 0 input channels with an empty
    tensor; gradflow with the empty sum (zeros, plus the bias). Not compared."""
    if 0 in w.shape[1:2]:
        raise RuntimeError("not comparable")
    return w


def _self(**kw):
    """The receiver of a method call: always a tensor."""
    return tensors(junk=False, **kw)


FLOATS = ["float32", "float64"]
CASES = {
    "add": (("add",), st.tuples(_self(), _t()), lambda a, b: a + b, lambda a, b: a + b),
    "mul": (("mul",), st.tuples(_self(), _t()), lambda a, b: a * b, lambda a, b: a * b),
    "div": (("div",), st.tuples(_self(dtypes=FLOATS), _t(dtypes=FLOATS)),
            lambda a, b: a / b, lambda a, b: a / b),
    "matmul": (("matmul",), st.tuples(_self(dtypes=FLOATS, max_dims=3), _t(dtypes=FLOATS, max_dims=3)),
               lambda a, b: a @ b, lambda a, b: a @ b),
    "exp": (("exp",), st.tuples(_self(dtypes=FLOATS)), lambda a: a.exp(), lambda a: a.exp()),
    "relu": (("relu",), st.tuples(_self(dtypes=FLOATS)), lambda a: F.relu(a), lambda a: TF.relu(a)),
    "sum": (("sum", "dim"), st.tuples(_self(), ints()), lambda a, d: a.sum(d), lambda a, d: a.sum(d)),
    "mean": (("mean", "dim"), st.tuples(_self(dtypes=FLOATS), ints()),
             lambda a, d: a.mean(d), lambda a, d: a.mean(d)),
    "max": (("max", "dim"), st.tuples(_self(dtypes=FLOATS), ints()),
            lambda a, d: a.max(d), lambda a, d: a.max(d)),
    "argmax": (("argmax", "dim"), st.tuples(_self(dtypes=FLOATS), ints()),
               lambda a, d: a.argmax(d), lambda a, d: a.argmax(d)),
    "softmax": (("softmax", "dim"), st.tuples(_self(dtypes=FLOATS), ints()),
                lambda a, d: F.softmax(a, d), lambda a, d: TF.softmax(a, d)),
    "log_softmax": (("log_softmax", "dim"), st.tuples(_self(dtypes=FLOATS), ints()),
                    lambda a, d: F.log_softmax(a, d), lambda a, d: TF.log_softmax(a, d)),
    "reshape": (("reshape", "view"), st.tuples(_self(), st.lists(ints(-2, 6), max_size=3)),
                lambda a, s: a.reshape(*s) if isinstance(s, list) else a.reshape(s),
                lambda a, s: a.reshape(*s)),
    "transpose": (("transpose", "dim"), st.tuples(_self(), ints(), ints()),
                  lambda a, i, j: a.transpose(i, j), lambda a, i, j: a.transpose(i, j)),
    "squeeze": (("squeeze", "dim"), st.tuples(_self(), ints()),
                lambda a, d: a.squeeze(d), lambda a, d: a.squeeze(d)),
    "unsqueeze": (("unsqueeze", "dim"), st.tuples(_self(), ints(-5, 5)),
                  lambda a, d: a.unsqueeze(d), lambda a, d: a.unsqueeze(d)),
    "flatten": (("flatten", "dim"), st.tuples(_self(), ints(), ints()),
                lambda a, s, e: a.flatten(s, e), lambda a, s, e: a.flatten(s, e)),
    "cat": (("cat", "dim"), st.tuples(st.lists(_t(junk=False, max_dims=3), min_size=1, max_size=3),
                                      ints()),
            lambda ts, d: gf.cat(ts, d), lambda ts, d: torch.cat(ts, d)),
    "stack": (("stack", "dim"), st.tuples(st.lists(_t(junk=False, max_dims=3), min_size=1,
                                                   max_size=3), ints()),
              lambda ts, d: gf.stack(ts, d), lambda ts, d: torch.stack(ts, d)),
    "gather": (("gather", "dim", "index"), st.tuples(_self(dtypes=FLOATS, max_dims=2), ints(),
                                                     _t(dtypes=["int64"], max_dims=2)),
               lambda a, d, i: a.gather(d, i), lambda a, d, i: a.gather(d, i)),
    "index_select": (("index", "dim"), st.tuples(_self(dtypes=FLOATS, max_dims=2), ints(),
                                                 _t(dtypes=["int64"], max_dims=1)),
                     lambda a, d, i: a.index_select(d, i), lambda a, d, i: a.index_select(d, i)),
    "clamp": (("clamp", "clip"), st.tuples(_self(), st.one_of(st.none(), st.floats(-1, 1))),
              lambda a, lo: a.clamp(lo, 0.5), lambda a, lo: a.clamp(lo, 0.5)),
    "cumsum": (("cumsum", "dim"), st.tuples(_self(), ints()),
               lambda a, d: a.cumsum(d), lambda a, d: a.cumsum(d)),
    "topk": (("topk", "dim", "k"), st.tuples(_self(dtypes=FLOATS, max_dims=2), ints(-1, 4)),
             lambda a, k: a.topk(k), lambda a, k: a.topk(k)),
    "flip": (("flip", "dim"), st.tuples(_self(), ints()),
             lambda a, d: a.flip(d), lambda a, d: a.flip(d)),
    "one_hot": (("one_hot",), st.tuples(_self(dtypes=["int64", "float32"], max_dims=2), ints(-2, 5)),
                lambda a, n: F.one_hot(a, n), lambda a, n: TF.one_hot(a, n)),
    "zeros": (("zeros", "shape", "size"), st.tuples(st.lists(ints(-2, 3), max_size=3)),
              lambda s: gf.zeros(*s), lambda s: torch.zeros(*s)),
    "full": (("full", "shape", "size"), st.tuples(st.lists(ints(-2, 3), max_size=3)),
             lambda s: gf.full(s, 2.0), lambda s: torch.full(s, 2.0)),
    "arange": (("arange",), st.tuples(ints(-3, 3), ints(-3, 3), ints(-2, 2)),
               lambda a, b, s: gf.arange(a, b, s), lambda a, b, s: torch.arange(a, b, s)),
    "linear": (("linear", "Linear"), st.tuples(_self(dtypes=FLOATS, max_dims=3),
                                               _t(dtypes=FLOATS, min_dims=2, max_dims=2)),
               lambda x, w: F.linear(x, w), lambda x, w: TF.linear(x, w)),
    "conv2d": (("conv2d", "Conv2d"), st.tuples(_self(dtypes=["float64"], min_dims=3, max_dims=4, max_side=4),
                                               _t(dtypes=["float64"], min_dims=4, max_dims=4, max_side=3),
                                               ints(0, 2), ints(0, 2)),
               lambda x, w, s, p: F.conv2d(x, w, stride=s, padding=p),
               lambda x, w, s, p: TF.conv2d(x, _channels(w), stride=s, padding=p)),
    "conv1d": (("conv1d", "conv2d"), st.tuples(_self(dtypes=["float64"], min_dims=2, max_dims=3, max_side=4),
                                               _t(dtypes=["float64"], min_dims=3, max_dims=3, max_side=3)),
               lambda x, w: F.conv1d(x, w), lambda x, w: TF.conv1d(x, _channels(w))),
    "max_pool2d": (("max_pool2d", "kernel", "stride", "padding"),
                   st.tuples(_self(dtypes=FLOATS, min_dims=3, max_dims=4, max_side=4), ints(0, 3),
                             ints(0, 2)),
                   lambda x, k, s: F.max_pool2d(x, k, s), lambda x, k, s: TF.max_pool2d(x, k, s)),
    "avg_pool2d": (("avg_pool2d", "kernel", "stride", "padding"),
                   st.tuples(_self(dtypes=FLOATS, min_dims=3, max_dims=4, max_side=4), ints(0, 3),
                             ints(0, 2)),
                   lambda x, k, s: F.avg_pool2d(x, k, s), lambda x, k, s: TF.avg_pool2d(x, k, s)),
    "adaptive_avg_pool2d": (("adaptive_avg_pool2d", "avg_pool2d", "output_size"),
                            st.tuples(_self(dtypes=FLOATS, min_dims=3, max_dims=4, max_side=4),
                                      ints(-1, 3)),
                            lambda x, o: F.adaptive_avg_pool2d(x, o),
                            lambda x, o: TF.adaptive_avg_pool2d(x, o)),
    "layer_norm": (("layer_norm", "normalized_shape"),
                   st.tuples(_self(dtypes=FLOATS, max_dims=3), st.lists(ints(0, 3, junk=False),
                                                                      max_size=2)),
                   lambda x, s: F.layer_norm(x, s), lambda x, s: TF.layer_norm(x, s)),
    "group_norm": (("group_norm", "num_groups", "num_channels"),
                   st.tuples(_self(dtypes=FLOATS, min_dims=2, max_dims=4), ints(-1, 3)),
                   lambda x, g: F.group_norm(x, g), lambda x, g: TF.group_norm(x, g)),
    "dropout_eval": (("dropout", " p "), st.tuples(_self(dtypes=FLOATS), st.floats(-0.5, 1.5)),
                     lambda x, p: F.dropout(x, p, training=False),
                     lambda x, p: TF.dropout(x, p, training=False)),
    "embedding": (("embedding",), st.tuples(_self(dtypes=["int64"], max_dims=2),
                                            _t(dtypes=FLOATS, min_dims=2, max_dims=2)),
                  lambda i, w: F.embedding(i, w), lambda i, w: TF.embedding(i, w)),
    "cross_entropy": (("cross_entropy", "target", "input"),
                      st.tuples(_self(dtypes=FLOATS, min_dims=2, max_dims=3),
                                _t(dtypes=["int64", "float32"], max_dims=2)),
                      lambda x, t: F.cross_entropy(x, t), lambda x, t: TF.cross_entropy(x, t)),
    "mse_loss": (("mse_loss",), st.tuples(_self(dtypes=FLOATS), _t(dtypes=FLOATS)),
                 lambda x, t: F.mse_loss(x, t), None),
    "binary_cross_entropy": (("binary_cross_entropy",), st.tuples(_self(dtypes=["float64"]),
                                                                      _t(dtypes=["float64"])),
                             lambda x, t: F.binary_cross_entropy(x.sigmoid(), t), None),
    "pad": (("pad",), st.tuples(_self(dtypes=FLOATS, min_dims=1), st.lists(ints(-1, 2), max_size=4)),
            lambda x, p: F.pad(x, p), lambda x, p: TF.pad(x, p)),
    "interpolate": (("interpolate", "size", "scale_factor"),
                    st.tuples(_self(dtypes=FLOATS, min_dims=3, max_dims=4), ints(-1, 3)),
                    lambda x, s: F.interpolate(x, scale_factor=s),
                    lambda x, s: TF.interpolate(x, scale_factor=s)),
    "pixel_shuffle": (("pixel_shuffle", "upscale_factor"),
                      st.tuples(_self(dtypes=FLOATS, min_dims=3, max_dims=4, max_side=4), ints(-1, 3)),
                      lambda x, r: F.pixel_shuffle(x, r), lambda x, r: TF.pixel_shuffle(x, r)),
}

# modules: constructor arguments fuzzed, then one forward on a matching random input
MODULES = {
    "Linear": (("Linear", "in_features", "out_features"), st.tuples(ints(-1, 3), ints(-1, 3)),
               lambda a, b: (nn.Linear(a, b), (2, a))),
    "Conv2d": (("Conv2d", "conv2d", "channels", "kernel_size"),
               st.tuples(ints(-1, 3), ints(-1, 3), ints(-1, 3)),
               lambda i, o, k: (nn.Conv2d(i, o, k), (1, i, 4, 4))),
    "BatchNorm2d": (("BatchNorm2d", "batch_norm", "num_features"), st.tuples(ints(-1, 3)),
                    lambda c: (nn.BatchNorm2d(c), (2, c, 2, 2))),
    "Embedding": (("Embedding", "embedding"), st.tuples(ints(-1, 3), ints(-1, 3)),
                  lambda n, d: (nn.Embedding(n, d), None)),
    "Dropout": (("Dropout", "dropout", "probability"), st.tuples(st.floats(-0.5, 1.5)),
                lambda p: (nn.Dropout(p), (3, 3))),
    "MaxPool2d": (("MaxPool2d", "max_pool2d", "kernel", "stride", "padding"),
                  st.tuples(ints(-1, 3), ints(-1, 2), ints(-1, 2)),
                  lambda k, s, p: (nn.MaxPool2d(k, s, p), (1, 2, 4, 4))),
    "LSTM": (("LSTM", "input_size", "hidden_size", "num_layers"),
             st.tuples(ints(-1, 3), ints(-1, 3), ints(-1, 2)),
             lambda i, h, n: (nn.LSTM(i, h, n), (2, 1, i))),
    "GroupNorm": (("GroupNorm", "group_norm", "num_groups", "num_channels"),
                  st.tuples(ints(-1, 3), ints(-1, 4)),
                  lambda g, c: (nn.GroupNorm(g, c), (2, c, 2))),
}

BACKENDS = backend_params(["numpy", "numba"])


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("case", list(CASES))
def test_fuzz_op(backend, case):
    names, args, call, tcall = CASES[case]

    @FUZZ
    @given(args)
    def run(a):
        check(names, call, list(a), tcall)

    run()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("case", list(MODULES))
def test_fuzz_module(backend, case):
    names, args, make = MODULES[case]

    def build_and_run(*a):
        m, shape = make(*a)
        x = gf.randn(*shape) if shape is not None else gf.tensor([[0, 1]])
        return m(x)

    @FUZZ
    @given(args)
    def run(a):
        check(names, build_and_run, list(a))

    run()
