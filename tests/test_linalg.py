"""gradflow.linalg and gradflow.testing.assert_close: values and float64 gradients vs
torch.linalg (gauge-invariant functions of eigen/singular vectors, whose signs are
arbitrary), gradcheck, batches, singular and malformed input."""
import math

import numpy as np
import pytest

import gradflow as gf
from gradflow import linalg as L
from gradflow.autograd import gradcheck

torch = pytest.importorskip("torch")

rng = np.random.default_rng(0)
SQ = rng.normal(size=(4, 4))
RHS = rng.normal(size=(4, 2))
SPD = SQ @ SQ.T + 4 * np.eye(4)
TALL = rng.normal(size=(5, 3))
WIDE = rng.normal(size=(3, 5))
BATCH = rng.normal(size=(2, 3, 3))


def _proj(u, k=2):
    """u[:, :k] u[:, :k]^T: unchanged by the sign of each column."""
    return u[..., :k] @ u[..., :k].mT


CASES = {
    "inv": (lambda m, a: m.linalg.inv(a), [SQ]),
    "inv-batch": (lambda m, a: m.linalg.inv(a), [BATCH]),
    "solve": (lambda m, a, b: m.linalg.solve(a, b), [SQ, RHS]),
    "solve-vector": (lambda m, a, b: m.linalg.solve(a, b[:, 0]), [SQ, RHS]),
    "solve-right": (lambda m, a, b: m.linalg.solve(a, b.mT, left=False), [SQ, RHS]),
    "solve-broadcast": (lambda m, a, b: m.linalg.solve(a, b[:, :1]), [BATCH, RHS[:3]]),
    "det": (lambda m, a: m.linalg.det(a), [SQ]),
    "det-batch": (lambda m, a: m.linalg.det(a), [BATCH]),
    "slogdet": (lambda m, a: m.linalg.slogdet(a), [SQ]),
    "logdet": (lambda m, a: m.logdet(a), [SPD]),
    "cholesky": (lambda m, a: m.linalg.cholesky(a), [SPD]),
    "cholesky-upper": (lambda m, a: m.linalg.cholesky(a, upper=True), [SPD]),
    "qr-tall": (lambda m, a: m.linalg.qr(a), [TALL]),
    "qr-square": (lambda m, a: m.linalg.qr(a), [SQ]),
    "eigh-values": (lambda m, a: m.linalg.eigh(a).eigenvalues, [SPD]),
    "eigh-projector": (lambda m, a: _proj(m.linalg.eigh(a).eigenvectors), [SPD]),
    "eigh-upper": (lambda m, a: m.linalg.eigvalsh(a, UPLO="U"), [SPD]),
    "svdvals": (lambda m, a: m.linalg.svdvals(a), [TALL]),
    "svd-tall": (lambda m, a: (lambda r: (_proj(r.U), _proj(r.Vh.mT), r.S))(
        m.linalg.svd(a, full_matrices=False)), [TALL]),
    "svd-wide": (lambda m, a: (lambda r: (_proj(r.U), _proj(r.Vh.mT), r.S))(
        m.linalg.svd(a, full_matrices=False)), [WIDE]),
    "pinv": (lambda m, a: m.linalg.pinv(a), [TALL]),
    "matrix_power-3": (lambda m, a: m.linalg.matrix_power(a, 3), [SQ]),
    "matrix_power-neg": (lambda m, a: m.linalg.matrix_power(a, -2), [SQ]),
    "multi_dot": (lambda m, a, b: m.linalg.multi_dot([a, b, b.mT]), [SQ, RHS]),
    "norm-default": (lambda m, a: m.linalg.norm(a), [TALL]),
    "norm-dim": (lambda m, a: m.linalg.norm(a, dim=1), [TALL]),
    "norm-ord-matrix": (lambda m, a: m.linalg.norm(a, ord=1), [TALL]),
    "vector_norm-3": (lambda m, a: m.linalg.vector_norm(a, 3, dim=(0, 1)), [TALL]),
    "vector_norm-inf": (lambda m, a: m.linalg.vector_norm(a, math.inf, dim=0, keepdim=True), [TALL]),
    "vector_norm-0.5": (lambda m, a: m.linalg.vector_norm(a, 0.5), [TALL]),
    "vector_norm-0": (lambda m, a: m.linalg.vector_norm(a, 0, dim=1), [TALL]),
}
for _ord in ["fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf]:
    CASES[f"matrix_norm-{_ord}"] = ((lambda o: lambda m, a: m.linalg.matrix_norm(a, o))(_ord), [TALL])
CASES["matrix_norm-keepdim-batch"] = (lambda m, a: m.linalg.matrix_norm(a, "nuc", keepdim=True),
                                      [BATCH])


def _flat(out):
    if isinstance(out, (tuple, list)):
        return [x for o in out for x in _flat(o)]
    return [out]


@pytest.mark.parametrize("name", sorted(CASES, key=str))
def test_matches_torch_linalg(name):
    fn, arrays = CASES[name]
    tin = [torch.tensor(a, requires_grad=True) for a in arrays]
    gin = [gf.tensor(a, dtype=gf.float64, requires_grad=True) for a in arrays]
    tout, gout = _flat(fn(torch, *tin)), _flat(fn(gf, *gin))
    w = [rng.normal(size=tuple(t.shape)) for t in tout]
    for t, g in zip(tout, gout):
        assert tuple(g.shape) == tuple(t.shape), name
        np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), rtol=1e-9, atol=1e-11)
    sum((t * torch.tensor(x)).sum() for t, x in zip(tout, w) if t.requires_grad).backward()
    sum((g * gf.tensor(x)).sum() for g, x in zip(gout, w) if g.requires_grad).backward()
    for t, g in zip(tin, gin):
        tg = np.zeros(t.shape) if t.grad is None else t.grad.numpy()  # torch: None for ord=0
        np.testing.assert_allclose(g.grad.numpy(), tg, rtol=1e-8, atol=1e-10,
                                   err_msg=f"{name} gradient")


@pytest.mark.parametrize("name", ["inv", "solve", "det", "cholesky", "qr-tall", "eigh-projector",
                                  "svd-wide", "matrix_norm-nuc"])
def test_gradcheck(name):
    fn, arrays = CASES[name]
    if name == "cholesky":  # symmetric perturbations only: the factor reads one triangle
        assert gradcheck(lambda a: _flat(fn(gf, (a + a.mT) / 2))[0],
                         (gf.tensor(SPD, requires_grad=True),))
        return
    if name == "eigh-projector":
        assert gradcheck(lambda a: _flat(fn(gf, (a + a.mT) / 2))[0],
                         (gf.tensor(SPD, requires_grad=True),))
        return
    ins = tuple(gf.tensor(a, dtype=gf.float64, requires_grad=True) for a in arrays)
    assert gradcheck(lambda *xs: sum(o.sum() * (i + 1) for i, o in enumerate(_flat(fn(gf, *xs)))),
                     ins)


def test_float32_and_identities():
    a = gf.tensor(SQ.astype(np.float32))
    assert L.inv(a).dtype == gf.float32
    np.testing.assert_allclose((L.inv(a) @ a).numpy(), np.eye(4), atol=1e-5)
    q, r = L.qr(gf.tensor(TALL))
    np.testing.assert_allclose((q @ r).numpy(), TALL, atol=1e-12)
    np.testing.assert_allclose(np.triu(r.numpy()), r.numpy())
    assert L.qr(gf.tensor(TALL), mode="complete").Q.shape == (5, 5)
    assert L.svd(gf.tensor(TALL)).U.shape == (5, 5)  # full_matrices=True by default


@pytest.mark.parametrize("call, exc, match", [
    (lambda: L.inv(gf.zeros(3, 3)), RuntimeError, "singular"),
    (lambda: L.inv(gf.zeros(2, 3)), RuntimeError, "square matrices, got shape"),
    (lambda: L.cholesky(-gf.eye(3)), RuntimeError, "positive-definite"),
    (lambda: L.solve(gf.eye(3), gf.ones(4, 1)), RuntimeError, "do not match"),
    (lambda: L.det(gf.eye(2, dtype=gf.int64)), TypeError, "floating-point"),
    (lambda: L.qr(gf.eye(2), mode="full"), ValueError, "mode"),
    (lambda: L.matrix_norm(gf.ones(3, 3), "max"), ValueError, "ord"),
    (lambda: L.svd(gf.ones(3, 2, requires_grad=True)), RuntimeError, "full_matrices=False"),
    (lambda: L.qr(gf.ones(2, 4, requires_grad=True))[1].sum().backward(), RuntimeError, "at least as many rows"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_logdet_sign_cases():
    assert math.isnan(gf.logdet(gf.tensor([[0.0, 1.0], [1.0, 0.0]])).item())
    assert gf.logdet(gf.zeros(2, 2)).item() == -math.inf


# -- testing.assert_close ------------------------------------------------------------------------
def test_assert_close_passes_and_uses_dtype_tolerances():
    gf.testing.assert_close(gf.tensor([1.0, 2.0]), gf.tensor([1.0, 2.0 + 1e-6]))  # float32
    with pytest.raises(AssertionError, match="Tensor-likes are not close"):
        gf.testing.assert_close(gf.tensor([1.0, 2.0], dtype=gf.float64),
                                gf.tensor([1.0, 2.0 + 1e-6], dtype=gf.float64))
    gf.testing.assert_close(gf.tensor([1, 2]), gf.tensor([1, 2]))
    gf.testing.assert_close({"a": gf.ones(2), "b": [gf.zeros(1)]},
                            {"a": gf.ones(2), "b": [gf.zeros(1)]})
    gf.testing.assert_close(gf.tensor([math.nan]), gf.tensor([math.nan]), equal_nan=True)
    gf.testing.assert_close(1.0, 1.0 + 1e-9)


def test_assert_close_failure_messages_match_torch_wording():
    a, b = [0.0, 1.0, 2.0, 3.0], [0.0, 1.5, 2.0, 3.1]
    with pytest.raises(AssertionError) as ours:
        gf.testing.assert_close(gf.tensor(a), gf.tensor(b))
    with pytest.raises(AssertionError) as theirs:
        torch.testing.assert_close(torch.tensor(a), torch.tensor(b))
    for line in ("Mismatched elements: 2 / 4 (50.0%)", "Greatest absolute difference: 0.5 at index (1,)"):
        assert line in str(ours.value) and line in str(theirs.value)
    with pytest.raises(AssertionError, match="'dtype' do not match"):
        gf.testing.assert_close(gf.ones(2), gf.ones(2, dtype=gf.float64))
    gf.testing.assert_close(gf.ones(2), gf.ones(2, dtype=gf.float64), check_dtype=False)
    with pytest.raises(AssertionError, match="'shape' do not match"):
        gf.testing.assert_close(gf.ones(2), gf.ones(3))
    with pytest.raises(AssertionError, match="custom"):
        gf.testing.assert_close(gf.ones(2), gf.zeros(2), msg="custom")
    with pytest.raises(ValueError, match="both rtol and atol"):
        gf.testing.assert_close(gf.ones(2), gf.ones(2), rtol=1e-3)
