"""gradflow.ops.extra / tensor_extra: the second round of torch.Tensor / torch functions,
values and float64 gradients against torch, odd shapes, bad input, and the clear
errors for what is deliberately missing."""
import math

import numpy as np
import pytest

import gradflow as gf
from gradflow.autograd import gradcheck

torch = pytest.importorskip("torch")

rng = np.random.default_rng(0)
A34 = rng.normal(size=(3, 4))
POS = rng.uniform(0.2, 0.9, size=(3, 4))
B34 = rng.normal(size=(3, 4))
V4 = rng.normal(size=4)
M44 = rng.normal(size=(4, 4))
B234 = rng.normal(size=(2, 3, 4))
B245 = rng.normal(size=(2, 4, 5))
WITH_NAN = np.array([[1.0, np.nan, -np.inf], [np.inf, -2.0, 0.5]])

# name -> (function of the module `m` (gradflow or torch) and its inputs, inputs)
CASES = {
    "narrow": (lambda m, a: a.narrow(1, 1, 2), [A34]),
    "narrow-neg-start": (lambda m, a: m.narrow(a, 0, -2, 2), [A34]),
    "narrow-empty": (lambda m, a: a.narrow(1, 4, 0), [A34]),
    "select": (lambda m, a: a.select(1, -1), [A34]),
    "swapaxes": (lambda m, a: a.swapaxes(0, 2), [B234]),
    "movedim": (lambda m, a: m.movedim(a, (0, 1), (2, 0)), [B234]),
    "ravel": (lambda m, a: a.t().ravel(), [A34]),
    "tile": (lambda m, a: a.tile((2, 1, 2)), [A34]),
    "tile-short": (lambda m, a: m.tile(a, (2,)), [A34]),
    "tensor_split-n": (lambda m, a: a.tensor_split(3, dim=1), [A34]),
    "tensor_split-idx": (lambda m, a: m.tensor_split(a, [1, 3], dim=1), [A34]),
    "diff": (lambda m, a: a.diff(dim=1), [A34]),
    "diff-n2-prepend": (lambda m, a: m.diff(a, n=2, dim=0, prepend=a[:1]), [A34]),
    "unfold": (lambda m, a: a.unfold(1, 2, 1), [A34]),
    "unfold-step": (lambda m, a: a.unfold(2, 3, 2), [B245]),
    "repeat_interleave": (lambda m, a: a.repeat_interleave(2, dim=1), [A34]),
    "repeat_interleave-flat": (lambda m, a: m.repeat_interleave(a, 3), [V4]),
    "repeat_interleave-list": (lambda m, a: a.repeat_interleave(m.tensor([1, 0, 2]), dim=0), [A34]),
    "meshgrid-ij": (lambda m, a, b: m.meshgrid(a, b[0], indexing="ij"), [V4, A34]),
    "meshgrid-xy": (lambda m, a, b: m.meshgrid(a, b[0], indexing="xy"), [V4, A34]),
    "cartesian_prod": (lambda m, a: m.cartesian_prod(a, a[:2]), [V4]),
    "hstack": (lambda m, a, b: m.hstack([a, b]), [A34, B34]),
    "vstack": (lambda m, a, b: m.vstack([a, b[0]]), [A34, B34]),
    "column_stack": (lambda m, a, b: m.column_stack([a[0], b.t()]), [A34, B34]),
    "atleast_3d": (lambda m, a: m.atleast_3d(a), [A34]),
    "block_diag": (lambda m, a, b: m.block_diag(a, b[:2, :1]), [A34, B34]),
    "diag_embed": (lambda m, a: m.diag_embed(a), [A34]),
    "diag_embed-offset": (lambda m, a: m.diag_embed(a, offset=1), [A34]),
    "diag_embed-neg": (lambda m, a: m.diag_embed(a, offset=-2), [A34]),
    "diagflat": (lambda m, a: m.diagflat(a[:2], 1), [A34]),
    "take": (lambda m, a: m.take(a, m.tensor([[0, 5], [11, 3]])), [A34]),
    "index_fill": (lambda m, a: a.index_fill(1, m.tensor([0, 2]), -1.0), [A34]),
    "index_copy": (lambda m, a, b: a.index_copy(0, m.tensor([2, 0]), b[:2]), [A34, B34]),
    "addcmul": (lambda m, a, b, c: m.addcmul(a, b, c, value=0.5), [A34, B34, POS]),
    "addcdiv": (lambda m, a, b, c: a.addcdiv(b, c, value=-2), [A34, B34, POS]),
    "addmm": (lambda m, a, b, c: m.addmm(a[:, :3], b, c.t()[:, :3], beta=0.5, alpha=2), [A34, B34, POS]),
    "addmv": (lambda m, a, b: m.addmv(a[:, 0], b, a[0], beta=2), [A34, B34]),
    "baddbmm": (lambda m, a, b: m.baddbmm(a[:, :, :1], a, b[:, :, :1], alpha=0.5), [B234, B245]),
    "addbmm": (lambda m, a, b: m.addbmm(a[0, :, :1], a, b[:, :, :1]), [B234, B245]),
    "mv": (lambda m, a, b: a.mv(b), [A34, V4]),
    "trace": (lambda m, a: m.trace(a), [M44]),
    "tensordot": (lambda m, a, b: m.tensordot(a, b, dims=([1, 2], [0, 1])), [B234, np.ones((3, 4, 2))]),
    "kron": (lambda m, a, b: m.kron(a[:2, :2], b[:1]), [A34, B34]),
    "cross": (lambda m, a, b: m.cross(a[:, :3], b[:, :3], dim=1), [A34, B34]),
    "lerp": (lambda m, a, b: a.lerp(b, 0.3), [A34, B34]),
    "clamp_min": (lambda m, a: m.clamp_min(a, 0.1), [A34]),
    "clamp_max": (lambda m, a: a.clamp_max(0.1), [A34]),
    "divide-floor": (lambda m, a, b: m.divide(a, b, rounding_mode="floor"), [A34, POS]),
    "divide-trunc": (lambda m, a, b: a.divide(b, rounding_mode="trunc"), [A34, POS]),
    "fmod": (lambda m, a: m.fmod(a * 5, 1.5), [A34]),
    "frac": (lambda m, a: (a * 3).frac(), [A34]),
    "float_power": (lambda m, a: m.float_power(a, 2), [A34]),
    "log2": (lambda m, a: a.log2(), [POS]),
    "log10": (lambda m, a: m.log10(a), [POS]),
    "exp2": (lambda m, a: a.exp2(), [A34]),
    "tan": (lambda m, a: a.tan(), [A34]),
    "sinh": (lambda m, a: a.sinh(), [A34]),
    "cosh": (lambda m, a: m.cosh(a), [A34]),
    "asin": (lambda m, a: a.asin(), [POS]),
    "acos": (lambda m, a: m.acos(-a), [POS]),
    "asinh": (lambda m, a: a.asinh(), [A34]),
    "atanh": (lambda m, a: a.atanh(), [POS * 0.9]),
    "logit": (lambda m, a: a.logit(), [POS]),
    "logit-eps": (lambda m, a: m.logit(a * 1.2, eps=0.05), [POS]),
    "xlogy": (lambda m, a, b: m.xlogy(a * (a > 0), b), [A34, POS]),
    "hypot": (lambda m, a, b: m.hypot(a, b), [A34, B34]),
    "logaddexp": (lambda m, a, b: m.logaddexp(a * 30, b), [A34, B34]),
    "sinc": (lambda m, a: m.sinc(a * (a > 0)), [A34]),
    "copysign": (lambda m, a, b: m.copysign(a, b), [A34, B34]),
    "deg2rad": (lambda m, a: a.deg2rad(), [A34]),
    "nan_to_num": (lambda m, a: m.nan_to_num(a), [WITH_NAN]),
    "nan_to_num-args": (lambda m, a: a.nan_to_num(nan=7.0, posinf=1e3, neginf=-5.0), [WITH_NAN]),
    "nansum": (lambda m, a: m.nansum(m.nan_to_num(a, posinf=2.0, neginf=1.0, nan=math.nan), 1), [WITH_NAN]),
    "nanmean": (lambda m, a: m.nan_to_num(a, posinf=2.0, neginf=1.0, nan=math.nan).nanmean(0), [WITH_NAN]),
    "cumprod": (lambda m, a: a.cumprod(1), [A34]),
    "cumprod-zero": (lambda m, a: m.cumprod(a * (a > -0.5), 0), [A34]),
    "cummax": (lambda m, a: m.cummax(a, 1), [A34]),
    "cummin": (lambda m, a: a.cummin(0), [A34]),
    "logcumsumexp": (lambda m, a: m.logcumsumexp(a * 10, 1), [A34]),
    "kthvalue": (lambda m, a: a.kthvalue(2, 1), [A34]),
    "kthvalue-keepdim": (lambda m, a: m.kthvalue(a, 3, 0, keepdim=True), [A34]),
    "median-all": (lambda m, a: a.median(), [A34]),
    "median-dim": (lambda m, a: m.median(a, 1), [A34]),
    "quantile": (lambda m, a: m.quantile(a, 0.3, dim=1), [A34]),
    "quantile-list": (lambda m, a: a.quantile(m.tensor([0.0, 0.25, 1.0], dtype=m.float64)), [A34]),
    "quantile-nearest": (lambda m, a: m.quantile(a, 0.4, dim=0, keepdim=True, interpolation="nearest"), [A34]),
    "std_mean": (lambda m, a: m.std_mean(a, 1), [A34]),
    "var_mean": (lambda m, a: m.var_mean(a, 0, keepdim=True), [A34]),
}

NONDIFF = {
    "searchsorted": (lambda m, a: m.searchsorted(m.tensor([0.0, 0.5, 1.0], dtype=m.float64), a), [A34]),
    "searchsorted-right": (lambda m, a: m.searchsorted(m.tensor([-1.0, 0.0, 1.0], dtype=m.float64),
                                                      a.round(), right=True), [A34]),
    "bucketize": (lambda m, a: m.bucketize(a, m.tensor([-1.0, 0.0, 1.0], dtype=m.float64)), [A34]),
    "histc": (lambda m, a: m.histc(a, bins=5, min=-2, max=2), [A34]),
    "signbit": (lambda m, a: m.signbit(m.cat([a.reshape(-1), -a.new_zeros(1)])), [A34]),
    "isin": (lambda m, a: m.isin(a.round(), m.tensor([0.0, 1.0], dtype=m.float64)), [A34]),
    "count_nonzero": (lambda m, a: m.count_nonzero(a.round(), 1), [A34]),
    "tril_indices": (lambda m: m.tril_indices(4, 3, offset=-1), []),
    "triu_indices": (lambda m: m.triu_indices(3, 5, 1), []),
    "heaviside": (lambda m, a: m.heaviside(a.round(), m.tensor([0.5], dtype=m.float64)), [A34]),
    "broadcast_tensors": (lambda m, a: m.broadcast_tensors(a[:1], a[:, :1]), [A34]),
    "repeat_interleave-counts": (lambda m: m.repeat_interleave(m.tensor([2, 0, 3])), []),
}


def _flat(out):
    if isinstance(out, (tuple, list)):
        return [x for o in out for x in _flat(o)]
    return [out]


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _compare(name, fn, arrays, grads=True):
    tin = [torch.tensor(a, dtype=torch.float64, requires_grad=grads) for a in arrays]
    gin = [gf.tensor(a, dtype=gf.float64, requires_grad=grads) for a in arrays]
    tout, gout = _flat(fn(torch, *tin)), _flat(fn(gf, *gin))
    assert len(tout) == len(gout), name
    for t, g in zip(tout, gout):
        assert tuple(t.shape) == tuple(g.shape), f"{name}: shape {g.shape} vs torch {tuple(t.shape)}"
        np.testing.assert_allclose(_np(g), _np(t), rtol=1e-10, atol=1e-12, err_msg=name)
        if t.dtype in (torch.int64, torch.bool, torch.int32):
            assert str(g.dtype) == str(t.dtype).replace("torch.", ""), name
    if not grads:
        return
    w = [rng.normal(size=tuple(t.shape)) for t in tout]
    pairs = [(t, g, x) for t, g, x in zip(tout, gout, w) if t.dtype == torch.float64 and t.requires_grad]
    sum(((t * torch.tensor(x)).sum() for t, _, x in pairs), torch.zeros((), dtype=torch.float64)).backward()
    sum(((g * gf.tensor(x)).sum() for _, g, x in pairs), gf.zeros((), dtype=gf.float64)).backward()
    for t, g in zip(tin, gin):
        tg = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
        gg = np.zeros(g.shape) if g.grad is None else g.grad.numpy()
        np.testing.assert_allclose(gg, tg, rtol=1e-9, atol=1e-10, err_msg=f"{name} gradient")


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_gradients_match_torch(name):
    fn, arrays = CASES[name]
    _compare(name, fn, arrays)


@pytest.mark.parametrize("name", sorted(NONDIFF))
def test_nondifferentiable_match_torch(name):
    fn, arrays = NONDIFF[name]
    _compare(name, fn, arrays, grads=False)


@pytest.mark.parametrize("name", ["logaddexp", "sinh", "cumprod", "unfold", "narrow", "addmm",
                                  "quantile", "logcumsumexp", "diag_embed-offset"])
def test_gradcheck(name):
    fn, arrays = CASES[name]
    inputs = tuple(gf.tensor(a, dtype=gf.float64, requires_grad=True) for a in arrays)
    assert gradcheck(lambda *xs: _flat(fn(gf, *xs))[0], inputs)


def test_narrow_is_a_view_and_batchifies():
    """The language-model batchify idiom: trim with narrow, then view(bsz, -1).t()."""
    data = gf.arange(26)
    nbatch = data.size(0) // 4
    b = data.narrow(0, 0, nbatch * 4).view(4, -1).t().contiguous()
    ref = torch.arange(26).narrow(0, 0, nbatch * 4).view(4, -1).t().contiguous()
    np.testing.assert_array_equal(b.numpy(), ref.numpy())
    x = gf.zeros(5)
    x.narrow(0, 1, 2).fill_(3.0)
    np.testing.assert_array_equal(x.numpy(), [0, 3, 3, 0, 0])


@pytest.mark.parametrize("call, exc, match", [
    (lambda x: x.narrow(0, 2, 5), RuntimeError, "exceeds dimension 0 of size 3"),
    (lambda x: x.narrow(3, 0, 1), IndexError, "out of range"),
    (lambda x: x.narrow(0, 0, 1.5), TypeError, "length must be an integer"),
    (lambda x: x.select(1, 4), IndexError, "index 4 out of range"),
    (lambda x: x.unfold(1, 5, 1), RuntimeError, "unfold"),
    (lambda x: x.repeat_interleave(gf.tensor([1, 2]), dim=0), RuntimeError, "one entry per element"),
    (lambda x: x.kthvalue(5, 1), RuntimeError, "out of range"),
    (lambda x: gf.quantile(x, 1.5), RuntimeError, r"range \[0, 1\]"),
    (lambda x: gf.meshgrid(x, x), RuntimeError, "0-D or 1-D"),
    (lambda x: gf.divide(x, x, rounding_mode="up"), ValueError, "rounding_mode"),
    (lambda x: x.multinomial(2), RuntimeError, "element < 0|inf, nan"),
    (lambda x: gf.cross(x[:2], x[:2]), RuntimeError, "size 3"),
])
def test_bad_input(call, exc, match):
    x = gf.tensor(A34)  # (3, 4), with negative entries
    with pytest.raises(exc, match=match):
        call(x)


def test_multinomial_distribution_and_rules():
    gf.manual_seed(0)
    w = gf.tensor([[0.1, 0.0, 0.6, 0.3], [1.0, 1.0, 0.0, 2.0]])
    draws = gf.multinomial(w, 4000, replacement=True)
    assert draws.shape == (2, 4000) and draws.dtype == gf.int64
    freq = np.stack([np.bincount(r, minlength=4) / 4000 for r in draws.numpy()])
    np.testing.assert_allclose(freq, [[0.1, 0, 0.6, 0.3], [0.25, 0.25, 0, 0.5]], atol=0.03)
    assert freq[0, 1] == 0 and freq[1, 2] == 0
    # without replacement: distinct indices, zero-weight categories never drawn first
    no_rep = gf.multinomial(gf.tensor([0.5, 0.0, 0.2, 0.3]), 3).numpy()
    assert sorted(no_rep.tolist()) == [0, 2, 3]
    firsts = np.array([gf.multinomial(gf.tensor([0.7, 0.3]), 1).item() for _ in range(400)])
    assert abs((firsts == 0).mean() - 0.7) < 0.08
    with pytest.raises(RuntimeError, match="without replacement"):
        gf.multinomial(gf.tensor([0.5, 0.5]), 3)


def test_bernoulli():
    gf.manual_seed(1)
    p = gf.full((20000,), 0.25)
    s = gf.bernoulli(p)
    assert s.dtype == gf.float32 and set(np.unique(s.numpy())) <= {0.0, 1.0}
    assert abs(s.mean().item() - 0.25) < 0.02
    assert abs(p.bernoulli(0.8).mean().item() - 0.8) < 0.02


def test_inplace_forms():
    x = gf.tensor([[1.5, -2.5], [0.2, 3.7]])
    x.clamp_min_(0.0).floor_()
    np.testing.assert_array_equal(x.numpy(), [[1, 0], [0, 3]])
    y = gf.tensor([1.0, 2.0])
    y.lerp_(gf.tensor([3.0, 4.0]), 0.5).pow_(2)
    np.testing.assert_allclose(y.numpy(), [4.0, 9.0])
    z = gf.ones(3, 3)
    z.tril_(-1)
    np.testing.assert_array_equal(z.numpy(), np.tril(np.ones((3, 3)), -1))
    leaf = gf.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        leaf.pow_(2)


def test_half_and_dtype_shorthands():
    x = gf.tensor([1.0, 2.5, 1e5])
    h = x.half()
    assert h.dtype == gf.float16
    np.testing.assert_array_equal(h.numpy(), torch.tensor([1.0, 2.5, 1e5]).half().numpy())
    assert x.byte().dtype == gf.uint8 and x.short().dtype == gf.int16 and x.char().dtype == gf.int8
    assert x.get_device() == -1 and x.ndimension() == 1 and not x.is_complex()
    assert x.pin_memory() is x and x.share_memory_() is x


def test_unsupported_names_say_why():
    x = gf.zeros(2)
    with pytest.raises(AttributeError, match="no bfloat16 dtype"):
        x.bfloat16()
    with pytest.raises(AttributeError, match="apply_ runs a Python function"):
        x.apply_(lambda v: v)
    with pytest.raises(AttributeError, match="not supported: gradflow has no complex"):
        gf.complex64  # noqa: B018
    with pytest.raises(AttributeError, match="torch.fft"):
        gf.fft  # noqa: B018
    assert not hasattr(x, "definitely_not_a_method") and not hasattr(gf, "definitely_not")
    assert not hasattr(x, "bfloat16")  # hasattr still works: an AttributeError


def test_compile_and_jit_return_the_model():
    m = gf.nn.Linear(2, 1)
    assert gf.compile(m) is m and gf.compile()(m) is m
    assert gf.jit.script(m) is m and gf.jit.trace(m, gf.zeros(1, 2)) is m
    with pytest.raises(RuntimeError, match="gradflow.save"):
        gf.jit.save(m, "x.pt")


def test_torch_level_spellings():
    a = gf.tensor(M44)
    u, s, v = gf.svd(a)
    np.testing.assert_allclose((u * s) @ v.t(), M44, atol=1e-5)
    np.testing.assert_allclose(gf.inverse(a).numpy(), np.linalg.inv(M44), rtol=1e-4, atol=1e-5)
    assert gf.all(a > -100).item() and gf.any(a > 0).item()
    np.testing.assert_array_equal(gf.t(a).numpy(), M44.T)


def test_add_sub_alpha():
    a, b = gf.tensor([1.0, 2.0]), gf.tensor([10.0, 20.0])
    np.testing.assert_allclose(gf.add(a, b, alpha=0.5).numpy(), [6.0, 12.0])
    np.testing.assert_allclose(gf.sub(a, b, alpha=2).numpy(), [-19.0, -38.0])
    np.testing.assert_allclose(a.add(b, alpha=-1).numpy(), torch.tensor([1.0, 2.0]).add(
        torch.tensor([10.0, 20.0]), alpha=-1).numpy())


def test_augmented_assignment_on_a_leaf_that_requires_grad_raises():
    """``x += 1`` on such a leaf raised nothing before and made x a non-leaf whose
    ``.grad`` stayed None; PyTorch refuses it."""
    x = gf.ones(2, requires_grad=True)
    for stmt in ("x += 1", "x -= 1", "x *= 2", "x /= 2"):
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
            exec(stmt, {"x": x})
    assert x.is_leaf and np.array_equal(x.numpy(), [1.0, 1.0])
    with gf.no_grad():
        x += 1  # parameter updates outside the graph stay in place
    assert x.is_leaf and np.array_equal(x.numpy(), [2.0, 2.0])
    y = x * 3
    y += 1  # a non-leaf graph tensor: recorded
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])
