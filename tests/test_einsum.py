"""gradflow.einsum: values vs NumPy, gradients by gradcheck and against PyTorch."""
import numpy as np
import pytest

import gradflow as gf
from gradflow.autograd import gradcheck

from conftest import requires_torch

SPECS = [
    ("ij,jk->ik", [(3, 4), (4, 2)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ij->j", [(3, 4)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ijk,k->ij", [(2, 3, 4), (4,)]),
    ("ij,ij->", [(3, 4), (3, 4)]),
    ("ab,bc,cd->ad", [(2, 3), (3, 4), (4, 2)]),
    ("ij,kj", [(3, 4), (2, 4)]),          # implicit output "ik"
    ("ijk->", [(2, 3, 2)]),
    ("ij,jk->i", [(3, 4), (4, 5)]),       # k only in the second operand
]


def _arrays(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


@pytest.mark.parametrize("spec,shapes", SPECS)
def test_values_and_gradcheck(spec, shapes):
    arrs = _arrays(shapes)
    ts = [gf.tensor(a, requires_grad=True) for a in arrs]
    np.testing.assert_allclose(gf.einsum(spec, *ts).numpy(), np.einsum(spec, *arrs), rtol=1e-12)
    assert gradcheck(lambda *xs: gf.einsum(spec, *xs), tuple(ts))


def test_errors():
    a = gf.randn(2, 3)
    with pytest.raises(ValueError, match="einsum: subscripts 'ijk' name 3 axes"):
        gf.einsum("ijk->i", a)
    with pytest.raises(NotImplementedError, match="ellipsis"):
        gf.einsum("...j->j", a)
    with pytest.raises(TypeError, match="dtypes"):
        gf.einsum("ij,jk->ik", a, gf.randn(3, 2, dtype=gf.float64))


@requires_torch
@pytest.mark.parametrize("spec,shapes", SPECS)
def test_against_torch(spec, shapes):
    import torch
    arrs = _arrays(shapes, seed=1)
    ts = [gf.tensor(a, requires_grad=True) for a in arrs]
    tt = [torch.tensor(a, requires_grad=True) for a in arrs]
    y, yt = gf.einsum(spec, *ts), torch.einsum(spec, *tt)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-10)
    (y * y).sum().backward()
    (yt * yt).sum().backward()
    for a, b in zip(ts, tt):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12)
