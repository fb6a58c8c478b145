"""3-D (NCDHW) convolution, pooling and batch norm: values and gradients against PyTorch
on every backend, float64 gradcheck, a tiny 3-D CNN trained like PyTorch, errors."""
from __future__ import annotations

import numpy as np
import pytest

import gradflow
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.autograd import gradcheck

from conftest import requires_torch, tols


def _tol(dtype):
    # float32 sums of up to a few hundred products: a little looser than the elementwise tols
    return dict(rtol=1e-4, atol=1e-4) if np.dtype(dtype) == np.float32 else tols(dtype)


def _compare(gf_fn, t_fn, arrays, dtype, grad_of=None):
    """Run both functions on the same data, compare outputs and input gradients of
    <u, f(inputs)> for a fixed random cotangent u."""
    import torch
    arrays = [np.asarray(a, dtype=dtype) for a in arrays]
    grad_of = range(len(arrays)) if grad_of is None else grad_of
    gs = [gradflow.tensor(a, requires_grad=i in grad_of) for i, a in enumerate(arrays)]
    ts = [torch.tensor(a, requires_grad=i in grad_of) for i, a in enumerate(arrays)]
    y, yt = gf_fn(*gs), t_fn(*ts)
    assert y.shape == tuple(yt.shape)
    assert y.dtype == np.dtype(dtype)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), **_tol(dtype))
    u = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    (y * gradflow.tensor(u)).sum().backward()
    (yt * torch.tensor(u)).sum().backward()
    for i in grad_of:
        assert gs[i].grad is not None and gs[i].grad.shape == arrays[i].shape
        np.testing.assert_allclose(gs[i].grad.numpy(), ts[i].grad.numpy(), **_tol(dtype))


CONV_CASES = [
    # x shape, (C_out, kernel), kwargs
    ((2, 3, 5, 6, 7), (4, (3, 3, 3)), {}),
    ((2, 4, 7, 6, 5), (6, (3, 2, 3)), dict(stride=(2, 1, 2), padding=(1, 0, 1), dilation=(1, 2, 1),
                                            groups=2)),
    ((3, 2, 4, 5, 5), (2, (2, 3, 1)), dict(stride=2, padding=1)),
    ((2, 4, 5, 4, 6), (4, (3, 3, 2)), dict(padding="same", dilation=(2, 1, 1), groups=4)),
    ((1, 2, 3, 3, 3), (3, (1, 1, 1)), dict(padding="valid")),
]


@requires_torch
@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")  # torch's own notice
@pytest.mark.parametrize("xshape,wspec,kw", CONV_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv3d_matches_torch(backend, dtype, xshape, wspec, kw, bias):
    import torch
    rng = np.random.default_rng(0)
    cout, k = wspec
    g = kw.get("groups", 1)
    arrays = [rng.standard_normal(xshape), rng.standard_normal((cout, xshape[1] // g) + k)]
    if bias:
        arrays.append(rng.standard_normal(cout))
    _compare(lambda x, w, b=None: F.conv3d(x, w, b, **kw),
             lambda x, w, b=None: torch.nn.functional.conv3d(x, w, b, **kw), arrays, dtype)


@requires_torch
@pytest.mark.parametrize("kw", [dict(stride=(2, 1, 3), padding=(1, 0, 1), output_padding=(1, 0, 2),
                                     groups=2, dilation=(1, 2, 1)),
                                dict(stride=3, output_padding=2),
                                dict()])
def test_conv_transpose3d_matches_torch(backend, dtype, kw):
    import torch
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((2, 4, 3, 4, 3)), rng.standard_normal((4, 3, 3, 2, 3)),
              rng.standard_normal(3 * kw.get("groups", 1))]
    _compare(lambda x, w, b: F.conv_transpose3d(x, w, b, **kw),
             lambda x, w, b: torch.nn.functional.conv_transpose3d(x, w, b, **kw), arrays, dtype)


POOL_CASES = [
    (3, None, 0, 1), ((3, 2, 3), (2, 2, 1), (1, 1, 0), 1), (2, 1, 1, 1), ((2, 3, 2), 2, (1, 1, 0), 1),
]


@requires_torch
@pytest.mark.parametrize("k,s,p,d", POOL_CASES + [((3, 2, 3), (2, 2, 1), (1, 1, 0), (1, 1, 2))])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pool3d_matches_torch(backend, dtype, k, s, p, d, ceil_mode):
    import torch
    x = np.random.default_rng(3).standard_normal((2, 3, 7, 6, 7))
    _compare(lambda x: F.max_pool3d(x, k, s, p, d, ceil_mode),
             lambda x: torch.nn.functional.max_pool3d(x, k, s, p, d, ceil_mode), [x], dtype)


@requires_torch
@pytest.mark.parametrize("k,s,p,d", POOL_CASES)
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("cip", [True, False])
def test_avg_pool3d_matches_torch(backend, dtype, k, s, p, d, ceil_mode, cip):
    import torch
    x = np.random.default_rng(4).standard_normal((2, 3, 7, 6, 5))
    _compare(lambda x: F.avg_pool3d(x, k, s, p, ceil_mode, cip),
             lambda x: torch.nn.functional.avg_pool3d(x, k, s, p, ceil_mode, cip), [x], dtype)


@requires_torch
@pytest.mark.parametrize("out", [1, (7, 3, 5), (1, 2, 1), (3, 4, 2), (None, 3, 2)])
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_adaptive_pool3d_matches_torch(backend, dtype, out, kind):
    import torch
    x = np.random.default_rng(5).standard_normal((2, 3, 7, 6, 5))
    gf_fn = F.adaptive_avg_pool3d if kind == "avg" else F.adaptive_max_pool3d
    t_fn = getattr(torch.nn.functional, f"adaptive_{kind}_pool3d")
    _compare(lambda x: gf_fn(x, out), lambda x: t_fn(x, out), [x], dtype)


@requires_torch
def test_unbatched_input_matches_batched(backend):
    rng = np.random.default_rng(6)
    x = gradflow.tensor(rng.standard_normal((2, 4, 5, 5)))
    w = gradflow.tensor(rng.standard_normal((3, 2, 2, 3, 2)))
    for f in (lambda t: F.conv3d(t, w, padding=1), lambda t: F.max_pool3d(t, 2),
              lambda t: F.avg_pool3d(t, 2, 1), lambda t: F.adaptive_avg_pool3d(t, (2, 3, 2))):
        y = f(x)
        assert y.ndim == 4
        np.testing.assert_allclose(y.numpy(), f(x.unsqueeze(0)).numpy()[0], rtol=0, atol=0)


def test_gradcheck_conv3d_and_pools(backend):
    rng = np.random.default_rng(7)
    x = gradflow.tensor(rng.standard_normal((2, 2, 3, 3, 4)), dtype="float64", requires_grad=True)
    w = gradflow.tensor(rng.standard_normal((2, 1, 2, 2, 2)), dtype="float64", requires_grad=True)
    b = gradflow.tensor(rng.standard_normal(2), dtype="float64", requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv3d(x, w, b, stride=(1, 2, 1), padding=1, groups=2),
                     (x, w, b))
    wt = gradflow.tensor(rng.standard_normal((2, 1, 2, 2, 2)), dtype="float64", requires_grad=True)
    assert gradcheck(lambda x, w: F.conv_transpose3d(x, w, stride=2, output_padding=1, groups=2),
                     (x, wt))
    assert gradcheck(lambda x: F.max_pool3d(x, 2, 1, 1), (x,))
    assert gradcheck(lambda x: F.avg_pool3d(x, (2, 2, 3), 1, (1, 0, 1), ceil_mode=True,
                                            count_include_pad=False), (x,))
    assert gradcheck(lambda x: F.adaptive_avg_pool3d(x, (2, 2, 3)), (x,))
    bn = nn.BatchNorm3d(2).double()
    assert gradcheck(lambda x: bn(x), (x,))


def test_gradcheck_catches_a_wrong_gradient():
    """The gradcheck used above can fail: a pool whose backward is scaled is rejected."""
    x = gradflow.tensor(np.random.default_rng(8).standard_normal((1, 1, 2, 2, 2)),
                        requires_grad=True)

    def wrong(x):
        y = F.avg_pool3d(x, 2)
        return y + (y - y.detach())  # value unchanged, gradient doubled
    assert not gradcheck(wrong, (x,), raise_exception=False)


@requires_torch
def test_modules_match_torch_defaults_and_init(backend):
    import torch
    m = nn.Conv3d(4, 6, (3, 2, 1), stride=2, padding=1, groups=2)
    tm = torch.nn.Conv3d(4, 6, (3, 2, 1), stride=2, padding=1, groups=2)
    for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                 "groups", "padding_mode", "transposed", "output_padding"):
        assert getattr(m, attr) == getattr(tm, attr), attr
    assert m.weight.shape == tuple(tm.weight.shape) and m.bias.shape == tuple(tm.bias.shape)
    bound = 1 / np.sqrt(2 * 3 * 2 * 1)  # kaiming_uniform(a=sqrt 5) and bias: 1/sqrt(fan_in)
    assert np.abs(m.weight.numpy()).max() <= bound and np.abs(m.weight.numpy()).max() > bound / 2
    assert np.abs(m.bias.numpy()).max() <= bound
    mt = nn.ConvTranspose3d(4, 6, 3, stride=2, groups=2, bias=False)
    assert mt.weight.shape == (4, 3, 3, 3, 3) and mt.bias is None
    x = gradflow.randn(1, 4, 3, 3, 3)
    assert mt(x, output_size=(8, 7, 8)).shape == (1, 6, 8, 7, 8)
    assert sorted(dict(nn.BatchNorm3d(5).state_dict())) == sorted(torch.nn.BatchNorm3d(5).state_dict())


def _net(mod):
    return mod.Sequential(mod.Conv3d(2, 4, 3, padding=1), mod.BatchNorm3d(4), mod.ReLU(),
                          mod.MaxPool3d(2), mod.AdaptiveAvgPool3d(1), mod.Flatten(),
                          mod.Linear(4, 3))


@requires_torch
def test_tiny_3d_cnn_trains_like_torch(backend, dtype):
    import torch
    torch.manual_seed(0)
    tnet = _net(torch.nn).to(torch.float64 if dtype == np.float64 else torch.float32)
    net = _net(nn)
    net.load_state_dict({k: gradflow.tensor(v.detach().numpy()) for k, v in tnet.state_dict().items()})
    net = net.double() if dtype == np.float64 else net
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 2, 5, 6, 6)).astype(dtype)
    y = np.array([0, 2, 1])
    opt = gradflow.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tnet.parameters(), lr=0.1, momentum=0.9)
    losses, tlosses = [], []
    for _ in range(3):
        opt.zero_grad()
        loss = F.cross_entropy(net(gradflow.tensor(x)), gradflow.tensor(y))
        loss.backward()
        opt.step()
        topt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(tnet(torch.tensor(x)), torch.tensor(y))
        tloss.backward()
        topt.step()
        losses.append(loss.item())
        tlosses.append(tloss.item())
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(losses, tlosses, **tol)
    assert losses[-1] < losses[0]  # it learns
    np.testing.assert_allclose(net[1].running_var.numpy(), tnet[1].running_var.numpy(), **tol)
    np.testing.assert_allclose(net[0].weight.numpy(), tnet[0].weight.detach().numpy(),
                               **dict(tol, atol=1e-4 if dtype == np.float32 else 1e-10))
    net.eval()
    tnet.eval()
    np.testing.assert_allclose(net(gradflow.tensor(x)).numpy(),
                               tnet(torch.tensor(x)).detach().numpy(),
                               **dict(tol, atol=1e-4 if dtype == np.float32 else 1e-10))


@pytest.mark.parametrize("fn,name", [
    (lambda x: F.conv3d(x, gradflow.randn(2, 2, 1, 1, 1)), "conv3d"),
    (lambda x: F.max_pool3d(x, 1), "max_pool3d"),
    (lambda x: F.avg_pool3d(x, 1), "avg_pool3d"),
    (lambda x: F.adaptive_avg_pool3d(x, 1), "adaptive_avg_pool3d"),
    (lambda x: F.conv_transpose3d(x, gradflow.randn(2, 2, 1, 1, 1)), "conv_transpose3d"),
    (lambda x: nn.Conv3d(2, 2, 1)(x), "conv3d"),
    (lambda x: nn.MaxPool3d(1)(x), "max_pool3d"),
])
@pytest.mark.parametrize("shape", [(2, 3, 3), (1, 2, 2, 3, 3, 3)])
def test_wrong_rank_raises_clearly(fn, name, shape):
    with pytest.raises(ValueError, match=rf"{name}: expected input \(N, C, D, H, W\) or "
                                         rf"\(C, D, H, W\), got shape"):
        fn(gradflow.randn(*shape))


def test_batchnorm3d_wrong_rank():
    bn = nn.BatchNorm3d(2)
    for shape in [(2, 2, 3, 3), (2, 2, 3)]:
        with pytest.raises(ValueError, match="BatchNorm3d: expected 5D input"):
            bn(gradflow.randn(*shape))
    assert bn(gradflow.randn(2, 2, 1, 2, 2)).shape == (2, 2, 1, 2, 2)


def test_argument_errors():
    x = gradflow.randn(1, 4, 3, 3, 3)
    with pytest.raises(ValueError, match="weight"):
        F.conv3d(x, gradflow.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match="channels"):
        F.conv3d(x, gradflow.randn(2, 3, 1, 1, 1))
    with pytest.raises(ValueError, match="output depth"):
        F.conv3d(x, gradflow.randn(2, 4, 5, 1, 1))
    with pytest.raises(ValueError, match="three ints"):
        F.conv3d(x, gradflow.randn(2, 4, 1, 1, 1), stride=(1, 1))
    with pytest.raises(ValueError, match="half the kernel"):
        F.max_pool3d(x, 2, padding=2)
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv3d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="strided"):
        nn.Conv3d(2, 4, 3, stride=2, padding="same")
