"""More of PyTorch's everyday surface: Size, new_*, in-place unary ops, unbind, tril/triu,
cumsum, logsumexp, hardtanh/relu6/PReLU, count_nonzero -- values, gradients, PyTorch."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.autograd import gradcheck

from conftest import requires_torch


def _r(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def test_size_new_and_is_cuda():
    x = gf.randn(2, 3, dtype=gf.float64)
    assert x.shape == gf.Size([2, 3]) and gf.Size([2, 3]).numel() == 6
    z = x.new_zeros(4)
    assert z.shape == (4,) and z.dtype == gf.float64 and z.backend is x.backend
    assert x.new_full((2,), 7.0).tolist() == [7.0, 7.0]
    assert x.new_tensor([1, 2]).dtype == gf.float64
    assert x.is_cuda is False


def test_inplace_unary_ops_and_their_guard():
    x = gf.tensor([-1.0, 4.0])
    assert x.relu_().tolist() == [0.0, 4.0] and x.sqrt_().tolist() == [0.0, 2.0]
    v = x._version[0]
    x.exp_()
    assert x._version[0] == v + 1
    np.testing.assert_allclose(x.numpy(), [1.0, np.exp(2.0)], rtol=1e-6)
    leaf = gf.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="relu_: in-place operation on a leaf"):
        leaf.relu_()


def test_gradients():
    x = gf.tensor(_r(3, 4), requires_grad=True)
    assert gradcheck(lambda a: a.cumsum(1), (x,))
    assert gradcheck(lambda a: a.logsumexp(0), (x,))
    assert gradcheck(lambda a: a.tril(-1) + a.triu(2), (x,))
    assert gradcheck(lambda a: gf.stack(a.unbind(1), 0), (x,))
    assert gradcheck(lambda a: F.hardtanh(a, -0.5, 0.5) + F.relu6(a * 4), (x,))
    w = gf.tensor([0.1, 0.2, 0.3], requires_grad=True)
    assert gradcheck(lambda a, w: F.prelu(a.reshape(2, 3, 2), w), (x, w))


def test_logsumexp_is_stable():
    x = gf.tensor([[1e4, 1e4], [-1e4, 0.0]])
    np.testing.assert_allclose(x.logsumexp(1).numpy(), [1e4 + np.log(2), 0.0], rtol=1e-6)


@requires_torch
def test_against_torch():
    import torch
    xn = _r(2, 3, 4, seed=1)
    x, xt = gf.tensor(xn), torch.tensor(xn)
    np.testing.assert_allclose(x.cumsum(2).numpy(), xt.cumsum(2).numpy())
    np.testing.assert_allclose(x.logsumexp(1).numpy(), xt.logsumexp(1).numpy(), rtol=1e-12)
    np.testing.assert_array_equal(gf.tril(x, 1).numpy(), torch.tril(xt, 1).numpy())
    np.testing.assert_array_equal(gf.triu(x, -1).numpy(), torch.triu(xt, -1).numpy())
    np.testing.assert_array_equal(F.relu6(x * 5).numpy(), torch.nn.functional.relu6(xt * 5).numpy())
    assert gf.count_nonzero(gf.tril(x)).item() == torch.count_nonzero(torch.tril(xt)).item()
    p, pt = nn.PReLU(3, dtype=gf.float64), torch.nn.PReLU(3, dtype=torch.float64)
    np.testing.assert_allclose(p(x).detach().numpy(), pt(xt).detach().numpy())


def _ieee_program(lib, x, F_):
    """Ops that produce inf/NaN on purpose: log(0), 1/0, sqrt(-1), 0 * inf, overflow."""
    y = x.log() + 1 / x + x.sqrt() + x * float("inf") + x.exp() * 1e39
    s = F_.softmax(x.reshape(1, -1) * 1e30, 1).sum() + F_.log_softmax(x.reshape(1, -1), 1).sum()
    return y, s


@requires_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inf_nan_results_are_silent_and_match_torch(backend, dtype):
    """PyTorch returns IEEE inf/NaN without warnings; so does gradflow (pytest turns any
    RuntimeWarning into an error here), forward and backward."""
    import torch
    vals = np.array([0.0, 1.0, -1.0, 2.0], dtype=dtype)
    xg = gf.tensor(vals, requires_grad=True)
    xt = torch.tensor(vals, requires_grad=True)
    yg, sg = _ieee_program(gf, xg, F)
    yt, st = _ieee_program(torch, xt, torch.nn.functional)
    np.testing.assert_array_equal(yg.numpy(), yt.detach().numpy())
    np.testing.assert_array_equal(sg.numpy(), st.detach().numpy())
    (yg.sum() + sg).backward()
    (yt.sum() + st).backward()
    np.testing.assert_array_equal(np.isnan(xg.grad.numpy()), np.isnan(xt.grad.numpy()))
    np.testing.assert_array_equal(np.isinf(xg.grad.numpy()), np.isinf(xt.grad.numpy()))
