"""Writing your own differentiable primitive: a ``Function`` with forward/backward,
checked against finite differences with ``gradcheck``.

    python examples/custom_function.py [--backend NAME]

``Softsign(x) = x / (1 + |x|)`` with ``d/dx = 1 / (1 + |x|)^2``. The forward computes
on backend arrays (so it runs on every backend); the backward gets the gradient of
the output and returns the gradient of the input. ``gradcheck`` perturbs each input
element by +-eps in float64 and compares.
"""
import os
import sys

import gradflow as gf
from gradflow.autograd import Function, GradcheckError, gradcheck

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Timer, example_parser, parse  # noqa: E402


class Softsign(Function):
    @staticmethod
    def forward(ctx, x):
        be = x.backend
        denom = be.binary("add", be.unary("abs", x.array), 1.0)   # 1 + |x|
        ctx.denom = denom                                          # all backward needs
        return be.binary("div", x.array, denom)

    @staticmethod
    def backward(ctx, grad_out):
        be = grad_out.backend
        return be.binary("div", grad_out.array, be.binary("mul", ctx.denom, ctx.denom))


class ScaledProduct(Function):
    """f(a, b, s) = s * a * b for tensors a, b and a Python float s: gradients for the
    tensors, ``None`` for the non-tensor argument; ``needs_input_grad`` skips work."""

    @staticmethod
    def forward(ctx, a, b, s):
        ctx.save_for_backward(a, b)
        ctx.s = s
        return a.backend.binary("mul", a.backend.binary("mul", a.array, b.array), s)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = g * b * ctx.s if ctx.needs_input_grad[0] else None
        gb = g * a * ctx.s if ctx.needs_input_grad[1] else None
        return ga, gb, None


class WrongSoftsign(Softsign):
    """Forgets to square the denominator: gradcheck must catch it."""

    @staticmethod
    def backward(ctx, grad_out):
        be = grad_out.backend
        return be.binary("div", grad_out.array, ctx.denom)


def main():
    gf.manual_seed(0)
    x = gf.randn(4, 5, dtype=gf.float64, requires_grad=True)
    y = Softsign.apply(x)
    y.sum().backward()
    print("softsign(x)[0]   =", y.numpy()[0].round(4))
    print("d/dx softsign[0] =", x.grad.numpy()[0].round(4))
    ok1 = gradcheck(Softsign.apply, (x,))
    print("gradcheck(Softsign):", ok1)
    a = gf.randn(3, dtype=gf.float64, requires_grad=True)
    b = gf.randn(3, dtype=gf.float64, requires_grad=True)
    ok2 = gradcheck(lambda a, b: ScaledProduct.apply(a, b, 2.5), (a, b))
    print("gradcheck(ScaledProduct):", ok2)
    try:
        gradcheck(WrongSoftsign.apply, (x,))
        caught = False
    except GradcheckError as e:
        caught = True
        print("gradcheck(WrongSoftsign) fails as it should:", str(e).splitlines()[0])
    return ok1 and ok2 and caught


if __name__ == "__main__":
    parse(example_parser(__doc__, takes="about 4 s", fast_takes="the same (it is already fast)"))
    with Timer("custom_function"):
        ok = main()
    raise SystemExit(0 if ok else 1)
