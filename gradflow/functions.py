"""Module-level spellings of Tensor methods (``gradflow.exp(x)`` == ``x.exp()``)."""
from __future__ import annotations

import numpy

from .tensor import Tensor
from .ops.shape import cat as concat  # noqa: F401


def _m(name):
    def f(x, *args, **kwargs):
        return getattr(x, name)(*args, **kwargs)
    f.__name__ = name
    f.__doc__ = f"``gradflow.{name}(x, ...)`` is ``x.{name}(...)``."
    return f


exp, log, sqrt, abs, sin, cos = _m("exp"), _m("log"), _m("sqrt"), _m("abs"), _m("sin"), _m("cos")  # noqa: A001
tanh, sigmoid, relu, sign = _m("tanh"), _m("sigmoid"), _m("relu"), _m("sign")
sum, mean, max, min, var, std, prod = (_m("sum"), _m("mean"), _m("max"), _m("min"),  # noqa: A001
                                       _m("var"), _m("std"), _m("prod"))
argmax, argmin, transpose, clamp = _m("argmax"), _m("argmin"), _m("transpose"), _m("clamp")
square, log1p, expm1, amax, amin = _m("square"), _m("log1p"), _m("expm1"), _m("amax"), _m("amin")


def numel(x):
    return x.numel()


def is_tensor(x):
    return isinstance(x, Tensor)


def allclose(a, b, rtol=1e-5, atol=1e-8):
    return bool(numpy.allclose(numpy.asarray(a), numpy.asarray(b), rtol=rtol, atol=atol))
