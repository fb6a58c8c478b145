"""dtype rules: float32 default, float64 kept, no silent promotion, integer targets,
and no float64 leaking out of any op (values or gradients) on float32 inputs."""
from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from test_ops_gradcheck import CASES, GL, gf_inputs, outputs


def test_defaults():
    assert gf.tensor([1.0, 2.0]).dtype == gf.float32
    assert gf.tensor(1.5).dtype == gf.float32
    assert gf.tensor([1, 2]).dtype == gf.int64
    assert gf.tensor([True, False]).dtype == gf.bool_
    for t in (gf.zeros(2), gf.ones(2), gf.randn(2), gf.rand(2), gf.eye(2), gf.empty(2),
              gf.linspace(0, 1, 3), gf.full((2,), 1.5)):
        assert t.dtype == gf.float32, t
    assert gf.arange(3).dtype == gf.int64
    assert gf.arange(0, 1, 0.5).dtype == gf.float32
    assert gf.full((2,), 3).dtype == gf.int64
    assert gf.get_default_dtype() == gf.float32


def test_float64_kept():
    x = gf.randn(3, dtype="float64")
    assert x.dtype == gf.float64
    assert (x * 2.5 + 1).dtype == gf.float64
    assert x.exp().sum().dtype == gf.float64
    assert gf.tensor(np.zeros(3)).dtype == gf.float64        # NumPy arrays keep their dtype
    assert gf.from_numpy(np.zeros(3, np.float32)).dtype == gf.float32
    assert gf.zeros(2, dtype=gf.double).dtype == gf.float64


def test_python_scalars_never_promote_float32():
    x = gf.randn(3)
    for y in (x * 0.5, 0.5 * x, x + 1e-300, x / 3.0, 3.0 / x.abs(), x - 2, x.abs() ** 2.5, 2.0 ** x,
              x.clip(-0.5, 0.5), gf.maximum(x, 0.1), gf.where(x > 0, x, 0.5), x.masked_fill(x > 0, 1.5),
              x * np.float64(2.0), x + np.float64(1.0)):
        assert y.dtype == gf.float32, y


def test_int_tensor_with_python_float_gives_float32():
    i = gf.tensor([1, 2, 3])
    assert (i * 0.5).dtype == gf.float32
    assert (0.5 + i).dtype == gf.float32
    assert (i / 2).dtype == gf.float32
    assert (i * 2).dtype == gf.int64
    assert (i + True).dtype == gf.int64
    assert (i ** 0.5).dtype == gf.float32
    assert (i.exp()).dtype == gf.float32
    np.testing.assert_allclose((i * 0.5).numpy(), [0.5, 1.0, 1.5])
    f = gf.randn(3)
    assert (i * f).dtype == gf.float32 and (f + i).dtype == gf.float32
    assert (i * gf.randn(3, dtype="float64")).dtype == gf.float64
    b = gf.tensor([True, False])
    assert (b * 2).dtype == gf.int64 and (b * 1.5).dtype == gf.float32


def test_float32_plus_float64_raises():
    a, b = gf.randn(2), gf.randn(2, dtype="float64")
    for fn in (lambda: a + b, lambda: b * a, lambda: a @ b, lambda: gf.maximum(a, b),
               lambda: gf.where(a > 0, a, b), lambda: a - b, lambda: a / b):
        with pytest.raises(TypeError, match=r"float32 and float64|float64 and float32"):
            fn()
    with pytest.raises(TypeError, match=r"cat.*float32.*float64"):
        gf.cat([a, b])
    w = gf.randn(3, 2, dtype="float64")
    with pytest.raises(TypeError, match=r"linear.*float32.*float64"):
        F.linear(a, w)
    with pytest.raises(TypeError, match=r"conv2d.*float32.*float64"):
        F.conv2d(gf.randn(1, 1, 3, 3), gf.randn(1, 1, 2, 2, dtype="float64"))
    assert (a + b.float()).dtype == gf.float32 and (a.double() + b).dtype == gf.float64


def test_integer_targets():
    x = gf.randn(4, 3)
    for dt in ("int64", "int32", "uint8", "int16"):
        t = gf.tensor([0, 2, 1, 2], dtype=dt)
        loss = F.cross_entropy(x, t)
        assert loss.dtype == gf.float32
        assert F.nll_loss(x.log_softmax(1), t).dtype == gf.float32
    with pytest.raises(ValueError, match=r"cross_entropy: a floating target holds class probabilities.*"
                                         r"\(4, 3\), got \(4,\).*integer"):
        F.cross_entropy(x, gf.tensor([0.0, 1.0, 2.0, 0.0]))
    with pytest.raises(TypeError, match=r"nll_loss: target must hold integer class indices"):
        F.nll_loss(x, gf.tensor([0.0, 1.0, 2.0, 0.0]))
    assert x.argmax(1).dtype == gf.int64 and x.max(1).indices.dtype == gf.int64


def test_casts_and_grad_dtype():
    x = gf.randn(3, requires_grad=True)
    y = x.double() * gf.randn(3, dtype="float64")
    y.sum().backward()
    assert x.grad.dtype == gf.float32
    assert x.to(gf.float64).dtype == gf.float64 and x.to("float64").dtype == gf.float64
    assert x.long().dtype == gf.int64 and x.int().dtype == gf.int32 and x.bool().dtype == gf.bool_
    assert x.type_as(gf.zeros(1, dtype="float64")).dtype == gf.float64
    i = gf.tensor([1, 2]).float()
    assert i.dtype == gf.float32


def test_comparisons_are_bool_and_sums_of_bools_are_int():
    x = gf.randn(5)
    m = x > 0
    assert m.dtype == gf.bool_ and not m.requires_grad
    assert m.sum().dtype == gf.int64
    assert (x == x).all().item() is True


def test_mean_of_int_tensor_is_an_error():
    with pytest.raises(TypeError, match=r"mean: needs a floating tensor"):
        gf.tensor([1, 2]).mean()


def test_set_default_dtype():
    try:
        gf.set_default_dtype(gf.float64)
        assert gf.tensor([1.0]).dtype == gf.float64 and gf.zeros(1).dtype == gf.float64
        assert (gf.tensor([1]) * 0.5).dtype == gf.float64
    finally:
        gf.set_default_dtype(gf.float32)
    with pytest.raises(TypeError, match="floating"):
        gf.set_default_dtype(gf.int64)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_no_dtype_leak(case, dtype, backend):
    """Every op keeps float32 float32 (and float64 float64), values and gradients."""
    xs = gf_inputs(case, case.arrays(), dtype=dtype)
    outs = outputs(case.fn(GL, *xs))
    for o in outs:
        assert o.dtype == np.dtype(dtype), f"{case.id}: output dtype {o.dtype}"
        assert o.backend.name == backend
    total = sum(o.sum() for o in outs if o.requires_grad)
    total.backward()
    for i, x in enumerate(xs):
        if x.requires_grad:
            assert x.grad is not None, f"{case.id}: input {i} got no gradient"
            assert x.grad.dtype == np.dtype(dtype), f"{case.id}: grad {i} dtype {x.grad.dtype}"
            assert x.grad.shape == x.shape
        elif x.dtype.kind == "f":
            assert x.dtype == np.dtype(dtype)  # running stats etc. untouched dtype


@pytest.mark.parametrize("case", [c for c in CASES if c.parity], ids=lambda c: c.id)
def test_float32_close_to_float64(case):
    """float32 results (values and grads) stay near the float64 ones: no op loses
    precision catastrophically in single precision (e.g. unstable softmax/variance)."""
    res = {}
    for dt in ("float32", "float64"):
        xs = gf_inputs(case, case.arrays(), dtype=dt)
        outs = outputs(case.fn(GL, *xs))
        rng = np.random.default_rng(3)
        total = sum((o * gf.tensor(rng.standard_normal(o.shape), dtype=dt)).sum()
                    for o in outs if o.requires_grad)
        total.backward()
        res[dt] = [o.numpy().astype(np.float64) for o in outs] + \
                  [x.grad.numpy().astype(np.float64) for x in xs if x.requires_grad]
    for a, b in zip(res["float32"], res["float64"]):
        scale = max(1.0, float(np.abs(b).max()) if b.size else 1.0)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale, err_msg=case.id)


def test_float32_numerically_stable_ops():
    big = gf.tensor([[1e3, -1e3, 0.0], [50.0, 51.0, 52.0]], requires_grad=True)
    for y in (big.softmax(1), big.log_softmax(1), F.cross_entropy(big, gf.tensor([1, 0])),
              F.softplus(big), F.binary_cross_entropy_with_logits(big, gf.ones(2, 3) * 0.5),
              big.sigmoid(), big.tanh()):
        assert y.dtype == gf.float32 and np.isfinite(y.numpy()).all()
        y.sum().backward()
        assert np.isfinite(big.grad.numpy()).all()
        big.grad = None
    # variance of data with a large offset: computed from deviations, not E[x^2] - E[x]^2
    x = gf.tensor(1e4 + np.array([0.0, 1.0, 2.0, 3.0]), dtype="float32")
    np.testing.assert_allclose(x.var().item(), np.var([0.0, 1, 2, 3], ddof=1), rtol=1e-5)
    bn = F.batch_norm(x.reshape(4, 1), None, None, training=True).numpy()[:, 0]
    np.testing.assert_allclose(bn, (np.arange(4) - 1.5) / np.sqrt(1.25 + 1e-5), rtol=1e-4)
