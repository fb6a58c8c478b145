"""gradflow.autograd.functional (jacobian, hessian, vjp, jvp, vhp, hvp) against
torch.autograd.functional in float64, several inputs/outputs, create_graph, bad input."""
import numpy as np
import pytest

import gradflow as gf
from gradflow.autograd import functional as AF

torch = pytest.importorskip("torch")
TF = torch.autograd.functional

rng = np.random.default_rng(0)
A, B = rng.normal(size=3), rng.normal(size=(2, 3))
U, W = rng.normal(size=3), rng.normal(size=3)
V = (rng.normal(size=3), rng.normal(size=(2, 3)))


def two_in_two_out(x, y):
    return (x * y).sin().sum(0) * x.exp(), (y ** 2).sum()


def scalar(x):
    return (x.sin() * x ** 2).sum() + (x[0] * x[1]) ** 2


def _gf(*xs):
    return tuple(gf.tensor(x, dtype=gf.float64) for x in xs)


def _t(*xs):
    return tuple(torch.tensor(x, dtype=torch.float64) for x in xs)


def _same(ours, theirs):
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _same(a, b)
        return
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", ["jacobian", "jacobian-single", "vjp", "vjp-scalar", "jvp",
                                  "hessian", "hessian-two-inputs", "hvp", "vhp"])
def test_matches_torch(case):
    calls = {
        "jacobian": lambda m, F, c: F.jacobian(two_in_two_out, c(A, B)),
        "jacobian-single": lambda m, F, c: F.jacobian(lambda x: x.tanh() * x[0], c(A)[0]),
        "vjp": lambda m, F, c: F.vjp(two_in_two_out, c(A, B), c(U, 1.5)),
        "vjp-scalar": lambda m, F, c: F.vjp(scalar, c(A)[0]),
        "jvp": lambda m, F, c: F.jvp(two_in_two_out, c(A, B), c(*V)),
        "hessian": lambda m, F, c: F.hessian(scalar, c(A)[0]),
        "hessian-two-inputs": lambda m, F, c: F.hessian(lambda x, y: (x * y[0]).sum() ** 2 + y.exp().sum(), c(A, B)),
        "hvp": lambda m, F, c: F.hvp(scalar, c(A)[0], c(W)[0]),
        "vhp": lambda m, F, c: F.vhp(scalar, c(A)[0], c(W)[0]),
    }
    _same(calls[case](gf, AF, _gf), calls[case](torch, TF, _t))


def test_inputs_untouched_and_results_detached():
    x = gf.tensor(A, dtype=gf.float64, requires_grad=True)
    j = AF.jacobian(lambda t: t ** 2, x)
    assert x.grad is None and not j.requires_grad
    np.testing.assert_allclose(j.numpy(), np.diag(2 * A))


def test_create_graph_lets_results_be_differentiated():
    """d/dx trace(H(x)) for f = sum x^3: H = diag(6x), so the gradient is 6 everywhere."""
    x = gf.tensor(A, dtype=gf.float64, requires_grad=True)
    h = AF.hessian(lambda t: (t ** 3).sum(), x, create_graph=True)
    assert h.requires_grad
    (g,) = gf.autograd.grad(h.diagonal().sum(), x)
    np.testing.assert_allclose(g.numpy(), np.full(3, 6.0))
    _, hv = AF.hvp(lambda t: (t ** 3).sum(), x, gf.ones(3, dtype=gf.float64), create_graph=True)
    (g2,) = gf.autograd.grad(hv.sum(), x)
    np.testing.assert_allclose(g2.numpy(), np.full(3, 6.0))


def test_independent_outputs_give_zeros_or_raise_when_strict():
    x, y = _gf(A, B)
    j = AF.jacobian(lambda a, b: a * 2, (x, y))
    np.testing.assert_array_equal(j[1].numpy(), np.zeros((3, 2, 3)))
    with pytest.raises(RuntimeError, match="strict"):
        AF.jacobian(lambda a, b: a * 2, (x, y), strict=True)


@pytest.mark.parametrize("call, match", [
    (lambda: AF.vjp(lambda x: x * 2, gf.ones(3)), "v can only be omitted"),
    (lambda: AF.vjp(lambda x: x * 2, gf.ones(3), gf.ones(2)), "v has shapes"),
    (lambda: AF.hessian(lambda x: x * 2, gf.ones(3)), "one-element"),
    (lambda: AF.jvp(lambda x: x, gf.ones(3), gf.ones(4)), "v has shapes"),
    (lambda: AF.jacobian(lambda x: x, [1.0, 2.0]), "Tensor or a tuple of Tensors"),
])
def test_bad_input(call, match):
    with pytest.raises((RuntimeError, TypeError), match=match):
        call()
