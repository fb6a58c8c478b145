"""Forward values and gradients against independent references.

* PyTorch (when importable): every case of the op table in float64, values AND
  input gradients under a fixed random cotangent;
* hand-computed small cases that need no PyTorch (box filter, a 4x4 max-pool,
  cross-entropy of huge logits...).
"""
from __future__ import annotations

import types
import warnings

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from conftest import HAVE_TORCH, requires_torch
from test_ops_gradcheck import CASES, GL, gf_inputs, outputs

if HAVE_TORCH:
    import torch
    import torch.nn.functional as TF
    TL = types.SimpleNamespace(lib=torch, F=TF, name="torch")


def _np(t):
    if HAVE_TORCH and isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return t.numpy()


def _torch_inputs(case, arrays):
    out = []
    for i, a in enumerate(arrays):
        t = torch.tensor(a)  # float64 stays float64, int64 -> long, bool -> bool
        if a.dtype.kind == "f" and case.diff(i, a) and i not in case.torch_nograd:
            t.requires_grad_(True)
        out.append(t)
    return out


def _cotangents(outs, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(tuple(o.shape)) for o in outs]


@requires_torch
@pytest.mark.parametrize("case", [c for c in CASES if c.th is not False], ids=lambda c: c.id)
def test_matches_torch(case):
    arrays = case.arrays()
    xs = gf_inputs(case, arrays)
    ts = _torch_inputs(case, arrays)
    gouts = outputs(case.fn(GL, *xs))
    with warnings.catch_warnings():  # PyTorch's own performance hints are not our concern
        warnings.simplefilter("ignore", UserWarning)
        touts = outputs((case.th or case.fn)(TL, *ts))
    assert len(gouts) == len(touts)
    for g, t in zip(gouts, touts):
        assert g.shape == tuple(t.shape), case.id
        np.testing.assert_allclose(_np(g), _np(t), rtol=1e-9, atol=1e-10, err_msg=case.id)
    cots = _cotangents(gouts)
    gtot = sum((g * gf.tensor(c)).sum() for g, c in zip(gouts, cots) if g.requires_grad)
    ttot = sum((t * torch.tensor(c)).sum() for t, c in zip(touts, cots) if t.requires_grad)
    gtot.backward()
    ttot.backward()
    for i, (x, t) in enumerate(zip(xs, ts)):
        if not t.requires_grad:
            continue
        tg = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
        assert x.grad is not None, f"{case.id}: no gradient for input {i}"
        assert x.grad.shape == tuple(t.shape)
        np.testing.assert_allclose(x.grad.numpy(), tg, rtol=1e-8, atol=1e-10,
                                   err_msg=f"{case.id}: gradient of input {i}")


@requires_torch
def test_batch_norm_running_stats_match_torch():
    x = np.random.default_rng(0).standard_normal((6, 3, 2, 2))
    rm, rv = gf.zeros(3, dtype="float64"), gf.ones(3, dtype="float64")
    trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    for _ in range(3):
        F.batch_norm(gf.tensor(x), rm, rv, training=True, momentum=0.2)
        TF.batch_norm(torch.tensor(x), trm, trv, training=True, momentum=0.2)
    np.testing.assert_allclose(rm.numpy(), trm.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv.numpy(), trv.numpy(), rtol=1e-12)


@requires_torch
def test_max_pool_return_indices_match_torch():
    x = np.random.default_rng(3).standard_normal((2, 2, 7, 6))
    y, idx = F.max_pool2d(gf.tensor(x), 3, stride=2, padding=1, return_indices=True)
    ty, tidx = TF.max_pool2d(torch.tensor(x), 3, stride=2, padding=1, return_indices=True)
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    assert idx.dtype == gf.int64


# ---------------------------------------------------------------------------
# hand-computed references (no PyTorch needed)
# ---------------------------------------------------------------------------
def test_box_filter_conv_by_hand():
    """The filtering example: a 3x3 box filter (all 1/9) over a 5x5 image."""
    img = np.arange(25, dtype=np.float64).reshape(5, 5)
    x = gf.tensor(img[None, None])
    w = gf.full((1, 1, 3, 3), 1.0 / 9, dtype="float64")
    y = F.conv2d(x, w).numpy()[0, 0]
    # window centred at (r, c) of arange(25).reshape(5,5) averages to 5r + c
    expected = np.array([[5 * r + c for c in range(1, 4)] for r in range(1, 4)], dtype=np.float64)
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    # zero padding 1: the corner sees 4 pixels 0, 1, 5, 6 -> 12/9
    yp = F.conv2d(x, w, padding=1).numpy()[0, 0]
    assert yp.shape == (5, 5)
    assert abs(yp[0, 0] - 12 / 9) < 1e-12
    np.testing.assert_allclose(yp[1:4, 1:4], expected, rtol=1e-12)
    # stride 2 picks every other window
    ys = F.conv2d(x, w, stride=2).numpy()[0, 0]
    np.testing.assert_allclose(ys, expected[::2, ::2], rtol=1e-12)


def test_conv_edge_filter_and_bias_by_hand():
    x = gf.tensor([[[[1.0, 2.0, 4.0, 7.0], [0.0, 0.0, 1.0, 1.0]]]])
    w = gf.tensor([[[[-1.0, 1.0]]]])  # horizontal difference
    y = F.conv2d(x, w, gf.tensor([10.0]))
    np.testing.assert_allclose(y.numpy()[0, 0], [[11, 12, 13], [10, 11, 10]])


def test_conv_backward_by_hand():
    """d sum(conv(x, w)) / d w[k] = sum of x over the windows' tap k."""
    x = gf.arange(16, dtype="float64").reshape(1, 1, 4, 4)
    w = gf.zeros(1, 1, 2, 2, dtype="float64", requires_grad=True)
    F.conv2d(x, w).sum().backward()
    a = np.arange(16.0).reshape(4, 4)
    expected = [[a[:3, :3].sum(), a[:3, 1:].sum()], [a[1:, :3].sum(), a[1:, 1:].sum()]]
    np.testing.assert_allclose(w.grad.numpy()[0, 0], expected)


def test_max_pool_4x4_by_hand():
    x = gf.tensor([[[[1.0, 3.0, 2.0, 0.0],
                     [4.0, 2.0, 9.0, 1.0],
                     [5.0, 7.0, 0.0, 3.0],
                     [6.0, 8.0, 4.0, 2.0]]]], requires_grad=True)
    y = F.max_pool2d(x, 2)
    np.testing.assert_array_equal(y.numpy()[0, 0], [[4, 9], [8, 4]])
    y.backward(gf.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]))
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], [[0, 0, 0, 0],
                                                        [1, 0, 2, 0],
                                                        [0, 0, 0, 0],
                                                        [0, 3, 4, 0]])
    # stride 1: the 9 is the max of four windows and collects all their gradients
    x.grad = None
    y1 = F.max_pool2d(x, 2, stride=1)
    np.testing.assert_array_equal(y1.numpy()[0, 0], [[4, 9, 9], [7, 9, 9], [8, 8, 4]])
    y1.sum().backward()
    g = x.grad.numpy()[0, 0]
    assert g[1, 2] == 4 and g[3, 1] == 2 and g.sum() == 9


def test_avg_pool_padding_by_hand():
    x = gf.ones(1, 1, 3, 3, dtype="float64")
    incl = F.avg_pool2d(x, 3, stride=1, padding=1).numpy()[0, 0]
    excl = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False).numpy()[0, 0]
    np.testing.assert_allclose(incl, [[4 / 9, 6 / 9, 4 / 9], [6 / 9, 1, 6 / 9], [4 / 9, 6 / 9, 4 / 9]])
    np.testing.assert_allclose(excl, np.ones((3, 3)))


def test_cross_entropy_huge_logits_finite():
    for dt in ("float32", "float64"):
        x = gf.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4]], dtype=dt,
                      requires_grad=True)
        t = gf.tensor([1, 2, 0])
        loss = F.cross_entropy(x, t, reduction="none")
        # row 0: logsumexp = 1e4, target -1e4 -> 2e4; row 1: 0; row 2: log 2
        np.testing.assert_allclose(loss.numpy(), [2e4, 0.0, np.log(2)], rtol=1e-6)
        loss.sum().backward()
        g = x.grad.numpy()
        assert np.isfinite(g).all()
        np.testing.assert_allclose(g, [[1, -1, 0], [0, 0, 0], [-0.5, 0.5, 0]], atol=1e-6)
        assert g.dtype == np.dtype(dt)


def test_cross_entropy_by_hand():
    x = gf.tensor([[0.0, 0.0], [np.log(3.0), 0.0]], dtype="float64", requires_grad=True)
    t = gf.tensor([0, 1])
    loss = F.cross_entropy(x, t)
    np.testing.assert_allclose(loss.item(), (np.log(2) + np.log(4)) / 2, rtol=1e-12)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), [[-0.25, 0.25], [0.375, -0.375]], rtol=1e-12)


def test_log_softmax_huge_logits_finite():
    x = gf.tensor([[1e4, 0.0, -1e4]], requires_grad=True)
    y = x.log_softmax(dim=1)
    np.testing.assert_allclose(y.numpy(), [[0.0, -1e4, -2e4]])
    y.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
    s = x.softmax(dim=1).numpy()
    np.testing.assert_allclose(s, [[1, 0, 0]])


def test_bce_with_logits_huge_finite():
    x = gf.tensor([100.0, -100.0, 1e4, -1e4], requires_grad=True)
    t = gf.tensor([0.0, 1.0, 1.0, 0.0])
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_allclose(loss.numpy(), [100, 100, 0, 0], atol=1e-5)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1, -1, 0, 0], atol=1e-6)


def test_sigmoid_extremes_finite():
    x = gf.tensor([-1000.0, 0.0, 1000.0], requires_grad=True)
    y = x.sigmoid()
    np.testing.assert_allclose(y.numpy(), [0.0, 0.5, 1.0])
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.25, 0.0])


def test_dropout_fixed_mask_values_and_grad():
    x = gf.ones(50, 40, dtype="float64", requires_grad=True)
    gf.manual_seed(11)
    y = F.dropout(x, 0.25)
    keep = y.numpy() != 0
    assert 0.6 < keep.mean() < 0.9
    np.testing.assert_allclose(y.numpy()[keep], 1 / 0.75)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), keep / 0.75)
    gf.manual_seed(11)
    np.testing.assert_array_equal(F.dropout(x, 0.25).numpy(), y.numpy())  # same seed, same mask
    assert F.dropout(x, 0.25, training=False) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), 0.0)


def test_lrn_by_hand():
    x = gf.tensor([[[1.0], [2.0], [3.0]]], dtype="float64")  # (1, 3, 1)
    y = F.local_response_norm(x, 3, alpha=3.0, beta=1.0, k=1.0).numpy()[:, :, 0]
    sq = np.array([1.0, 4.0, 9.0])
    sums = np.array([sq[0] + sq[1], sq.sum(), sq[1] + sq[2]])
    np.testing.assert_allclose(y[0], [1, 2, 3] / (1 + sums))


def test_batch_norm_eval_by_hand():
    x = gf.tensor([[1.0, 2.0], [3.0, 6.0]], dtype="float64")
    rm, rv = gf.tensor([1.0, 2.0], dtype="float64"), gf.tensor([4.0, 16.0], dtype="float64")
    y = F.batch_norm(x, rm, rv, gf.tensor([2.0, 1.0], dtype="float64"),
                     gf.tensor([0.0, 1.0], dtype="float64"), training=False, eps=0.0)
    np.testing.assert_allclose(y.numpy(), [[0.0, 1.0], [2.0, 2.0]])


# ---------------------------------------------------------------------------
# seeded sweeps over random shapes (broadcasting, reduction axes) against PyTorch
# ---------------------------------------------------------------------------
def _random_broadcast_pair(rng):
    nd = int(rng.integers(0, 4))
    full = [int(v) for v in rng.integers(1, 4, nd)]
    a = [s if rng.random() < 0.6 else 1 for s in full]
    b = [s if rng.random() < 0.6 else 1 for s in full]
    a = a[int(rng.integers(0, nd + 1)):] if rng.random() < 0.3 else a
    b = b[int(rng.integers(0, nd + 1)):] if rng.random() < 0.3 else b
    return tuple(a), tuple(b)


def _compare_grads(gx, tx, what):
    for i, (g, t) in enumerate(zip(gx, tx)):
        np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=f"{what}: grad {i}")


@requires_torch
@pytest.mark.parametrize("seed", range(12))
def test_random_broadcasting_vs_torch(seed):
    rng = np.random.default_rng(seed)
    sa, sb = _random_broadcast_pair(rng)
    a0, b0 = rng.standard_normal(sa), rng.uniform(0.5, 2.0, sb)
    ops = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
           "div": lambda x, y: x / y, "pow": lambda x, y: y ** x,
           "max": lambda x, y: x.maximum(y) if isinstance(x, gf.Tensor) else torch.maximum(x, y),
           "where": lambda x, y: (gf if isinstance(x, gf.Tensor) else torch).where(x > 0, x, y)}
    for name, f in ops.items():
        ga, gb = gf.tensor(a0, requires_grad=True), gf.tensor(b0, requires_grad=True)
        ta, tb = torch.tensor(a0, requires_grad=True), torch.tensor(b0, requires_grad=True)
        gy, ty = f(ga, gb), f(ta, tb)
        assert gy.shape == tuple(ty.shape), (name, sa, sb)
        np.testing.assert_allclose(gy.numpy(), ty.detach().numpy(), rtol=1e-12, err_msg=name)
        c = rng.standard_normal(gy.shape)
        (gy * gf.tensor(c)).sum().backward()
        (ty * torch.tensor(c)).sum().backward()
        _compare_grads((ga, gb), (ta, tb), f"{name} {sa} {sb}")


@requires_torch
@pytest.mark.parametrize("seed", range(10))
def test_random_reductions_vs_torch(seed):
    rng = np.random.default_rng(100 + seed)
    nd = int(rng.integers(1, 4))
    shape = tuple(int(v) for v in rng.integers(2, 4, nd))
    k = int(rng.integers(1, nd + 1))
    axes = tuple(sorted(int(v) for v in rng.choice(nd, k, replace=False)))
    axes = tuple(a - nd if rng.random() < 0.5 else a for a in axes)
    keep = bool(rng.random() < 0.5)
    x0 = rng.permutation(np.linspace(0.5, 2.0, int(np.prod(shape)))).reshape(shape)
    for name in ("sum", "mean", "var", "std", "amax", "amin", "prod"):
        gx = gf.tensor(x0, requires_grad=True)
        tx = torch.tensor(x0, requires_grad=True)
        if name == "prod":
            if len(axes) != 1:
                continue
            gy, ty = gx.prod(dim=axes[0], keepdim=keep), tx.prod(dim=axes[0], keepdim=keep)
        else:
            gy = getattr(gx, name)(dim=axes, keepdim=keep)
            ty = getattr(tx, name)(dim=axes, keepdim=keep)
        assert gy.shape == tuple(ty.shape), (name, shape, axes, keep)
        np.testing.assert_allclose(gy.numpy(), ty.detach().numpy(), rtol=1e-12, err_msg=name)
        c = rng.standard_normal(gy.shape)
        (gy * gf.tensor(c)).sum().backward()
        (ty * torch.tensor(c)).sum().backward()
        _compare_grads((gx,), (tx,), f"{name} {shape} {axes} keep={keep}")


@requires_torch
@pytest.mark.parametrize("seed", range(8))
def test_random_conv_pool_geometry_vs_torch(seed):
    rng = np.random.default_rng(200 + seed)
    n, g = int(rng.integers(1, 3)), int(rng.choice([1, 2]))
    c, k = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
    kh, kw = (int(v) for v in rng.integers(1, 4, 2))
    s = tuple(int(v) for v in rng.integers(1, 3, 2))
    p = tuple(int(v) for v in rng.integers(0, 2, 2))
    d = tuple(int(v) for v in rng.integers(1, 3, 2))
    h, w = (int(v) for v in rng.integers(6, 9, 2))
    x0, w0, b0 = rng.standard_normal((n, c, h, w)), rng.standard_normal((k, c // g, kh, kw)), \
        rng.standard_normal(k)
    gx, gw, gb = (gf.tensor(a, requires_grad=True) for a in (x0, w0, b0))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x0, w0, b0))
    gy = F.conv2d(gx, gw, gb, stride=s, padding=p, dilation=d, groups=g)
    ty = TF.conv2d(tx, tw, tb, stride=s, padding=p, dilation=d, groups=g)
    pd = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    gm = F.max_pool2d(gy, 2, 1, 0, dilation=pd).sum()
    tm = TF.max_pool2d(ty, 2, 1, 0, dilation=pd).sum()
    pk = (int(rng.integers(1, 3)), int(rng.integers(2, 4)))
    ps = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    pp = (int(rng.integers(0, pk[0] // 2 + 1)), int(rng.integers(0, pk[1] // 2 + 1)))
    ceil = bool(rng.random() < 0.5)
    gz = F.max_pool2d(gy, pk, ps, pp, ceil_mode=ceil).sum() + \
        F.avg_pool2d(gy, pk, ps, pp, ceil_mode=ceil, count_include_pad=bool(seed % 2)).sum() * 0.5
    tz = TF.max_pool2d(ty, pk, ps, pp, ceil_mode=ceil).sum() + \
        TF.avg_pool2d(ty, pk, ps, pp, ceil_mode=ceil, count_include_pad=bool(seed % 2)).sum() * 0.5
    gz, tz = gz + gm * 0.25, tz + tm * 0.25
    np.testing.assert_allclose(gy.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gz.item(), tz.item(), rtol=1e-10)
    gz.backward()
    tz.backward()
    _compare_grads((gx, gw, gb), (tx, tw, tb), f"conv/pool seed {seed}")


def test_var_of_too_few_elements_is_nan():
    assert np.isnan(gf.tensor([1.0]).var().item())
    assert gf.tensor([1.0]).var(unbiased=False).item() == 0.0
    assert np.isnan(gf.tensor([[1.0, 2.0]]).var(0).numpy()).all()
    assert np.isnan(gf.tensor([1.0]).std().item())
