"""gradflow.einsum: values vs NumPy, gradients by gradcheck and against PyTorch; ellipsis,
broadcasting and repeated indices (diagonals, traces); errors on bad specs."""
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
    with pytest.raises(ValueError, match="einsum: subscripts 'ijk' of operand 0 name 3 axes"):
        gf.einsum("ijk->i", a)
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


# ---------------------------------------------------------------------------
# ellipsis, broadcasting and repeated indices (diagonals / traces)
# ---------------------------------------------------------------------------
# (spec, shapes, numpy reference or None when np.einsum takes the spec as it is).
# PyTorch sums '...' dims the output leaves out; NumPy rejects such specs, hence the lambdas.
ELLIPSIS_SPECS = [
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)], None),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (3, 4, 2)], None),     # batch dims (2,1) x (3,)
    ("...ij,...jk", [(2, 3, 4), (4, 5)], None),                  # implicit: "...ik"
    ("b...,b...->b", [(2, 3, 4), (2, 3, 4)], lambda a, b: (a * b).sum(axis=(1, 2))),
    ("b...,b...->b", [(2, 3), (2,)], lambda a, b: (a * b[:, None]).sum(axis=1)),
    ("...i->...", [(2, 3, 4)], None),
    ("...i->...", [(4,)], None),                                 # empty ellipsis
    ("...ij,j->...i", [(3, 4), (4,)], None),                     # empty, explicit output
    ("...ij->ij", [(2, 3, 4)], lambda a: a.sum(axis=0)),         # '...' summed away
    ("...->", [(2, 3)], lambda a: a.sum()),
    ("i...,i...->...", [(3, 1, 4), (3, 2, 1)], None),
    ("...,...->...", [(2, 1, 3), (4, 1)], None),
    ("a...,...b", [(2, 3), (3, 4)], None),                       # implicit: "...ab"
    ("ij->...ij", [(2, 3)], None),                               # '...' only in the output
    ("...", [()], None),
    ("i,i->i", [(1,), (3,)], None),                              # a named size-1 axis broadcasts
    ("ij,jk->ik", [(2, 1), (3, 4)], None),                       # ... also when contracted
    ("...A,Ab->...b", [(2, 3), (3, 4)], None),                   # '...' letters avoid 'A', 'b'
    ("a...,...A", [(2, 3), (3, 4)], None),                       # implicit: "...Aa"
]
DIAG_SPECS = [
    ("ii->i", [(3, 3)], None),
    ("ii->", [(3, 3)], None),
    ("ii", [(3, 3)], None),                                      # implicit: trace
    ("bii->bi", [(2, 3, 3)], None),
    ("bii->b", [(2, 3, 3)], None),
    ("iij->j", [(3, 3, 4)], None),
    ("iij->ji", [(3, 3, 4)], None),
    ("iji->ij", [(3, 2, 3)], None),                              # non-adjacent repeat
    ("iii->i", [(3, 3, 3)], None),
    ("iijj->ij", [(2, 2, 3, 3)], None),
    ("ii,ij->j", [(3, 3), (3, 4)], None),
    ("ij,jj->i", [(3, 4), (4, 4)], None),
    ("ii,ii->i", [(3, 3), (3, 3)], None),
    ("bij,bjj->bi", [(2, 3, 4), (2, 4, 4)], None),
    ("...ii->...i", [(2, 3, 3)], None),
    ("i...i->...", [(3, 2, 3)], None),
    ("ii,i->i", [(3, 3), (1,)], None),
    ("ii,i->i", [(1, 1), (3,)], None),                           # the diagonal operand broadcasts
]
NEW_SPECS = ELLIPSIS_SPECS + DIAG_SPECS
_ids = [f"{s}|{'x'.join(map(str, sh))}" for s, sh, _ in NEW_SPECS]


def _reference(spec, ref, arrs):
    return ref(*arrs) if ref is not None else np.einsum(spec, *arrs)


@pytest.mark.parametrize("spec,shapes,ref", NEW_SPECS, ids=_ids)
def test_ellipsis_and_diagonal_gradcheck(backend, spec, shapes, ref):
    arrs = _arrays(shapes, seed=2)
    ts = [gf.tensor(a, requires_grad=True) for a in arrs]
    y = gf.einsum(spec, *ts)
    assert y.backend.name == backend
    expect = _reference(spec, ref, arrs)
    assert y.shape == np.shape(expect)
    np.testing.assert_allclose(y.numpy(), expect, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda *xs: gf.einsum(spec, *xs), tuple(ts))


@pytest.mark.parametrize("spec,shapes,ref", NEW_SPECS, ids=_ids)
def test_ellipsis_and_diagonal_float32(backend, spec, shapes, ref):
    arrs = [a.astype(np.float32) for a in _arrays(shapes, seed=3)]
    ts = [gf.tensor(a, requires_grad=True) for a in arrs]
    y = gf.einsum(spec, *ts)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), _reference(spec, ref, arrs), rtol=1e-5, atol=1e-5)
    y.sum().backward()
    for t, a in zip(ts, arrs):
        assert t.grad.shape == a.shape and t.grad.dtype == np.float32


@requires_torch
@pytest.mark.parametrize("spec,shapes,ref", NEW_SPECS, ids=_ids)
def test_ellipsis_and_diagonal_against_torch(spec, shapes, ref):
    import torch
    arrs = _arrays(shapes, seed=4)
    ts = [gf.tensor(a, requires_grad=True) for a in arrs]
    tt = [torch.tensor(a, requires_grad=True) for a in arrs]
    y, yt = gf.einsum(spec, *ts), torch.einsum(spec, *tt)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    cot = np.random.default_rng(5).standard_normal(y.shape)
    y.backward(gf.tensor(cot))
    yt.backward(torch.tensor(cot))
    for a, b in zip(ts, tt):
        assert a.grad.shape == tuple(b.grad.shape)
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_diagonal_gradient_is_placed_on_the_diagonal():
    a = gf.tensor(np.arange(9.0).reshape(3, 3), requires_grad=True)
    gf.einsum("ii->i", a).backward(gf.tensor([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(a.grad.numpy(), np.diag([1.0, 2.0, 3.0]))
    b = gf.tensor(np.ones((2, 2, 3)), requires_grad=True)
    gf.einsum("iij->", b).backward()
    np.testing.assert_array_equal(b.grad.numpy(), np.eye(2)[:, :, None] * np.ones(3))


def test_non_contiguous_operands():
    base = _arrays([(4, 6, 4)], seed=6)[0]
    x = gf.tensor(base, requires_grad=True)
    v = x[:, ::2, :]                        # non-contiguous view, shape (4, 3, 4)
    y = gf.einsum("iji->j", v)
    np.testing.assert_allclose(y.numpy(), np.einsum("iji->j", base[:, ::2, :]), rtol=1e-12)
    y.sum().backward()
    expect = np.zeros_like(base)
    expect[np.arange(4), ::2, np.arange(4)] = 1.0
    np.testing.assert_array_equal(x.grad.numpy(), expect)


# (spec, shapes, a fragment the message must contain)
BAD_SPECS = [
    ("...,...->...", [(2, 3), (4, 3)], "'...' do not broadcast"),
    ("...ij,...jk->...ik", [(2, 3, 4), (5, 4, 2)], "'...' do not broadcast"),
    ("ii->i", [(2, 3)], "'i' is repeated in operand 0"),
    ("ii->i", [(1, 3)], "'i' is repeated in operand 0"),       # size 1 does not broadcast here
    ("ij->k", [(2, 3)], "output index 'k' does not appear in any input"),
    ("ij->ii", [(2, 3)], "output index 'i' appears more than once"),
    ("ij,jk->ik", [(2, 3), (4, 5)], "index 'j' has size 4 in operand 1 but size 3"),
    ("ijk->i", [(2, 3)], "name 3 axes but the operand has 2 dims"),
    ("...ijk->i", [(2, 3)], "has only 2 dims"),
    ("i..j->ij", [(2, 3)], "not part of an ellipsis"),
    ("...i...->i", [(2, 3)], "more than one '...'"),
    ("i1->i", [(2, 3)], "invalid subscript '1'"),
    ("ij->i->j", [(2, 3)], "'->' appears more than once"),
    ("ij", [(2, 3), (2, 3)], "names 1 operand(s) but 2"),
]


@pytest.mark.parametrize("spec,shapes,fragment", BAD_SPECS, ids=[b[0] for b in BAD_SPECS])
def test_bad_specs_raise_clear_errors(spec, shapes, fragment):
    ts = [gf.zeros(*s) for s in shapes]
    with pytest.raises(ValueError) as info:
        gf.einsum(spec, *ts)
    msg = str(info.value)
    assert msg.startswith("einsum: ")
    assert fragment in msg
    assert repr(spec) in msg                              # names the spec ...
    assert all(str(tuple(s)) in msg for s in shapes)      # ... and the operand shapes


@requires_torch
@pytest.mark.parametrize("spec,shapes,fragment", BAD_SPECS, ids=[b[0] for b in BAD_SPECS])
def test_bad_specs_are_rejected_by_torch_too(spec, shapes, fragment):
    import torch
    with pytest.raises(RuntimeError):
        torch.einsum(spec, *[torch.zeros(s) for s in shapes])


def test_bad_arguments():
    with pytest.raises(ValueError, match="no operands"):
        gf.einsum("->")
    with pytest.raises(TypeError, match="operand 1 has type ndarray"):
        gf.einsum("i,i->", gf.zeros(2), np.zeros(2))
    with pytest.raises(TypeError, match="spec must be a string"):
        gf.einsum(["ij"], gf.zeros(2, 2))
