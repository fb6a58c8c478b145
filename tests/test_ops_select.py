"""gather, sort, argsort, topk, //, %, isnan/isinf/isfinite and nn.Embedding:
values and gradients against hand references and PyTorch."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
from gradflow.autograd import gradcheck

from conftest import requires_torch, tols


def _r(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def test_gather_values_and_repeated_index_gradient(backend, dtype):
    x = gf.tensor(_r(2, 4).astype(dtype), requires_grad=True)
    idx = gf.tensor([[0, 0, 3], [1, 2, 1]])
    y = x.gather(1, idx)
    xn = x.numpy()
    np.testing.assert_allclose(y.numpy(), np.take_along_axis(xn, idx.numpy(), 1), **tols(dtype))
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[2, 0, 0, 1], [0, 2, 1, 0]])


def test_gather_gradcheck_and_errors():
    x = gf.tensor(_r(3, 2, 4), requires_grad=True)
    idx = gf.tensor(np.random.default_rng(1).integers(0, 2, (3, 3, 4)))
    assert gradcheck(lambda a: a.gather(1, idx), (x,))
    with pytest.raises(TypeError, match="gather: index must be an integer"):
        x.gather(1, gf.zeros(3, 3, 4))
    with pytest.raises(ValueError, match="gather: index of shape"):
        x.gather(1, gf.tensor([0, 1]))


def test_sort_topk_argsort(backend, dtype):
    xn = _r(3, 5, seed=2).astype(dtype)
    x = gf.tensor(xn, requires_grad=True)
    v, i = x.sort(dim=1)
    np.testing.assert_array_equal(v.numpy(), np.sort(xn, 1))
    np.testing.assert_array_equal(i.numpy(), np.argsort(xn, 1, kind="stable"))
    v, i = x.sort(0, descending=True)
    np.testing.assert_array_equal(v.numpy(), -np.sort(-xn, 0))
    tv, ti = x.topk(2)
    np.testing.assert_array_equal(tv.numpy(), -np.sort(-xn, 1)[:, :2])
    np.testing.assert_array_equal(gf.argsort(x, 1).numpy(), np.argsort(xn, 1, kind="stable"))
    tv.sum().backward()
    expect = np.zeros_like(xn)
    np.put_along_axis(expect, np.argsort(-xn, 1)[:, :2], 1.0, 1)
    np.testing.assert_array_equal(x.grad.numpy(), expect)
    with pytest.raises(ValueError, match="topk: k=9 is out of range"):
        x.topk(9)


def test_sort_gradcheck():
    x = gf.tensor(_r(4, 3, seed=3), requires_grad=True)
    assert gradcheck(lambda a: a.sort(0)[0] * gf.tensor(_r(4, 3, seed=4)), (x,))
    assert gradcheck(lambda a: a.topk(2, dim=1, largest=False)[0], (x,))


def test_floordiv_mod_classify(backend):
    a = gf.tensor([-7, -1, 0, 5, 9])
    np.testing.assert_array_equal((a // 4).numpy(), np.array([-7, -1, 0, 5, 9]) // 4)
    np.testing.assert_array_equal((a % 4).numpy(), np.array([-7, -1, 0, 5, 9]) % 4)
    f = gf.tensor([-7.5, 2.5])
    np.testing.assert_allclose((f % 2.0).numpy(), [0.5, 0.5])
    assert (f // 2).dtype == gf.float32
    z = gf.tensor([1.0, float("nan"), float("inf"), -float("inf")])
    assert z.isnan().tolist() == [False, True, False, False]
    assert gf.isinf(z).tolist() == [False, False, True, True]
    assert gf.isfinite(z).tolist() == [True, False, False, False]


def test_embedding_lookup_and_gradient():
    gf.manual_seed(0)
    emb = nn.Embedding(5, 3, padding_idx=0)
    assert np.all(emb.weight.numpy()[0] == 0)
    idx = gf.tensor([[1, 0, 1], [4, 4, 2]])
    out = emb(idx)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out.numpy(), emb.weight.numpy()[idx.numpy()])
    out.sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.numpy()[:, 0], [0, 2, 1, 0, 2])
    with pytest.raises(TypeError, match="Embedding: indices must be integers"):
        emb(gf.zeros(2))


@requires_torch
def test_against_torch():
    import torch
    xn = _r(3, 6, seed=5)
    x, xt = gf.tensor(xn, requires_grad=True), torch.tensor(xn, requires_grad=True)
    w = _r(3, 2, seed=6)
    (x.topk(2, dim=1)[0] * gf.tensor(w)).sum().backward()
    (xt.topk(2, dim=1)[0] * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy())
    idx = np.random.default_rng(7).integers(0, 6, (3, 4))
    np.testing.assert_allclose(x.gather(1, gf.tensor(idx)).numpy(),
                               xt.gather(1, torch.tensor(idx)).detach().numpy())
    ai = np.arange(-6, 7)
    np.testing.assert_array_equal((gf.tensor(ai) % 4).numpy(), (torch.tensor(ai) % 4).numpy())
    np.testing.assert_array_equal((gf.tensor(ai) // 4).numpy(), (torch.tensor(ai) // 4).numpy())
    np.testing.assert_array_equal(gf.tensor(xn).sort(1, descending=True)[1].numpy(),
                                  torch.tensor(xn).sort(1, descending=True)[1].numpy())
