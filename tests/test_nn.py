"""gradflow.nn: Module registration/traversal, state_dict semantics, layers against
PyTorch (when importable) and hand-derived values, initialisers."""
from __future__ import annotations

import math

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from conftest import requires_torch


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
        self.scale = nn.Parameter(gf.ones(1))
        self.not_a_param = gf.zeros(2)

    def forward(self, x):
        return self.head(F.relu(self.bn(self.conv(x)))) * self.scale


# -- registration and traversal -------------------------------------------------------------------
def test_registration_and_names():
    m = Net()
    names = [n for n, _ in m.named_parameters()]
    # PyTorch's order: the module's own parameters, then each child's in registration order
    assert names == ["scale", "conv.weight", "conv.bias", "bn.weight", "bn.bias",
                     "head.1.weight", "head.1.bias"]
    assert len(list(m.parameters())) == 7
    assert [n for n, _ in m.named_children()] == ["conv", "bn", "head"]
    assert [n for n, _ in m.named_modules()] == ["", "conv", "bn", "head", "head.0", "head.1"]
    assert {n for n, _ in m.named_buffers()} == {"bn.running_mean", "bn.running_var",
                                                 "bn.num_batches_tracked"}
    assert "not_a_param" not in dict(m.named_parameters())
    # reassigning None keeps the slot; a non-Parameter in a parameter slot is a TypeError
    with pytest.raises(TypeError, match="Parameter"):
        m.scale = gf.ones(1)
    del m.scale
    assert "scale" not in dict(m.named_parameters())


def test_shared_parameters_counted_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2


def test_assign_before_init_is_clear():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(gf.ones(1))

    with pytest.raises(AttributeError, match="super"):
        Bad()


def test_train_eval_propagates_and_dropout_respects_it():
    m = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    assert m.training and m[1].training
    m.eval()
    assert not m.training and not m[1].training
    x = gf.ones(8, 4)
    assert np.array_equal(m[1](x).numpy(), x.numpy())
    m.train()
    y = m[1](gf.ones(1000, 4)).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.4 < (y == 0).mean() < 0.6


def test_zero_grad_and_requires_grad():
    m = nn.Linear(3, 2)
    m(gf.randn(4, 3)).sum().backward()
    assert m.weight.grad is not None
    m.zero_grad(set_to_none=False)
    assert np.all(m.weight.grad.numpy() == 0)
    m.zero_grad()
    assert m.weight.grad is None
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


def test_forward_hooks():
    m = nn.Linear(2, 2)
    seen = []
    h = m.register_forward_hook(lambda mod, inp, out: seen.append(out.shape))
    m(gf.ones(3, 2))
    h.remove()
    m(gf.ones(3, 2))
    assert seen == [(3, 2)]


def test_repr_like_pytorch():
    r = repr(nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU()))
    assert "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))" in r and "(1): ReLU()" in r


# -- state dicts -------------------------------------------------------------------------------------
def test_state_dict_roundtrip_and_buffers():
    a, b = Net(), Net()
    a.train()
    a(gf.randn(2, 1, 4, 4))  # updates running stats
    sd = a.state_dict()
    assert "bn.running_mean" in sd and "bn.num_batches_tracked" in sd
    assert int(sd["bn.num_batches_tracked"].item()) == 1
    res = b.load_state_dict(sd)
    assert res.missing_keys == [] and res.unexpected_keys == []
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), sd[k].numpy())
    # numpy values are accepted
    b.load_state_dict({k: v.numpy() for k, v in sd.items()})


def test_load_state_dict_is_all_or_nothing():
    m = Net()
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    bad = {k: gf.zeros(*v.shape) if v.dtype.kind == "f" else v for k, v in m.state_dict().items()}
    bad["head.1.weight"] = gf.zeros(5, 5)  # wrong shape, but other keys valid and first
    with pytest.raises(RuntimeError, match=r"size mismatch for head\.1\.weight.*\(5, 5\)"):
        m.load_state_dict(bad)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])
    missing = dict(m.state_dict())
    del missing["conv.bias"]
    missing["extra.w"] = gf.zeros(1)
    with pytest.raises(RuntimeError, match='Missing key.*"conv.bias"') as ei:
        m.load_state_dict(missing)
    assert '"extra.w"' in str(ei.value)
    res = m.load_state_dict(missing, strict=False)
    assert res.missing_keys == ["conv.bias"] and res.unexpected_keys == ["extra.w"]
    with pytest.raises(TypeError):
        m.load_state_dict([1, 2])


def test_state_dict_shares_storage_and_load_keeps_identity():
    m = nn.Linear(2, 2)
    w = m.weight
    m.load_state_dict({"weight": np.ones((2, 2)), "bias": np.zeros(2)})
    assert m.weight is w and np.all(w.numpy() == 1)
    assert w.dtype == np.float32


def test_module_to_dtype_and_backend_keeps_parameter_objects(backend):
    m = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    params = list(m.parameters())
    m.to(gf.float64)
    assert all(p.dtype == np.float64 for p in m.parameters())
    assert m[1].num_batches_tracked.dtype == np.int64
    assert [id(p) for p in m.parameters()] == [id(p) for p in params]
    m.to(backend)
    assert all(p.backend.name == backend for p in m.parameters())
    assert all(b.backend.name == backend for b in m.buffers())
    y = m(gf.randn(4, 3, dtype=gf.float64, backend=backend))
    assert y.backend.name == backend


def test_module_to_device_cpu():
    m = nn.Linear(2, 2).to(gf.device("cpu"))
    assert m.weight.backend.device_type == "cpu"


# -- layers ------------------------------------------------------------------------------------------
def test_layer_attributes_match_pytorch_names():
    c = nn.Conv2d(3, 8, 5, stride=2, padding=1, bias=False)
    assert (c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, c.dilation, c.groups) == \
        (3, 8, (5, 5), (2, 2), (1, 1), (1, 1), 1)
    assert c.weight.shape == (8, 3, 5, 5) and c.bias is None
    lin = nn.Linear(7, 3)
    assert (lin.in_features, lin.out_features, lin.weight.shape, lin.bias.shape) == (7, 3, (3, 7), (3,))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)


def test_default_init_bounds():
    gf.manual_seed(1)
    lin = nn.Linear(100, 200)
    bound = 1 / math.sqrt(100)  # kaiming_uniform(a=sqrt(5)) gives exactly 1/sqrt(fan_in)
    w = lin.weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert np.abs(lin.bias.numpy()).max() <= bound
    conv = nn.Conv2d(4, 8, 3)
    fan_in = 4 * 9
    assert np.abs(conv.weight.numpy()).max() <= 1 / math.sqrt(fan_in)
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound


def test_init_functions_statistics():
    gf.manual_seed(0)
    w = gf.empty(400, 300)
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(w.numpy().var() - 2 / 300) < 0.05 * 2 / 300
    nn.init.kaiming_uniform_(w, nonlinearity="relu")
    assert abs(w.numpy().var() - 2 / 300) < 0.05 * 2 / 300
    nn.init.xavier_uniform_(w)
    assert abs(w.numpy().var() - 2 / 700) < 0.05 * 2 / 700
    nn.init.xavier_normal_(w, gain=2.0)
    assert abs(w.numpy().var() - 4 * 2 / 700) < 0.05 * 8 / 700
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.numpy().var() - 2 / 400) < 0.05 * 2 / 400
    nn.init.zeros_(w)
    assert not w.numpy().any()
    nn.init.ones_(w)
    assert np.all(w.numpy() == 1)
    nn.init.constant_(w, 0.5)
    assert np.all(w.numpy() == 0.5)
    nn.init.uniform_(w, -2, -1)
    assert w.numpy().min() >= -2 and w.numpy().max() < -1
    nn.init.normal_(w, 3, 0.1)
    assert abs(w.numpy().mean() - 3) < 0.01
    nn.init.trunc_normal_(w, std=1.0, a=-0.5, b=0.5)
    assert np.abs(w.numpy()).max() <= 0.5
    q = gf.empty(5, 8)
    nn.init.orthogonal_(q)
    np.testing.assert_allclose(q.numpy() @ q.numpy().T, np.eye(5), atol=1e-5)
    # a parameter that requires grad can be initialised (outside the graph)
    p = nn.Parameter(gf.empty(3, 3))
    nn.init.kaiming_uniform_(p)
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    with pytest.raises(ValueError, match="fewer than 2"):
        nn.init.xavier_uniform_(gf.empty(3))


def test_init_is_reproducible_with_manual_seed():
    gf.manual_seed(5)
    a = nn.Linear(4, 4).weight.numpy()
    gf.manual_seed(5)
    b = nn.Linear(4, 4).weight.numpy()
    np.testing.assert_array_equal(a, b)


def test_batchnorm_running_stats_hand_derived():
    bn = nn.BatchNorm1d(2, momentum=0.5)
    x = gf.tensor([[1.0, 2.0], [3.0, 6.0]])
    y = bn(x).numpy()
    np.testing.assert_allclose(y, [[-1, -1], [1, 1]], atol=1e-3)
    # running_mean = 0.5*0 + 0.5*mean; running_var = 0.5*1 + 0.5*unbiased var
    np.testing.assert_allclose(bn.running_mean.numpy(), [1.0, 2.0])
    np.testing.assert_allclose(bn.running_var.numpy(), [0.5 + 0.5 * 2.0, 0.5 + 0.5 * 8.0])
    bn.eval()
    y = bn(gf.tensor([[2.0, 4.0]])).numpy()
    np.testing.assert_allclose(y, [[(2 - 1) / math.sqrt(1.5 + 1e-5), (4 - 2) / math.sqrt(4.5 + 1e-5)]],
                               rtol=1e-5)
    with pytest.raises(ValueError, match="channels"):
        bn(gf.ones(3, 5))
    with pytest.raises(ValueError, match="expected 4D"):
        nn.BatchNorm2d(2)(gf.ones(3, 2))


def test_layers_forward_shapes():
    x = gf.randn(2, 3, 8, 8)
    assert nn.MaxPool2d(2)(x).shape == (2, 3, 4, 4)
    assert nn.AvgPool2d(2, stride=1)(x).shape == (2, 3, 7, 7)
    assert nn.LPPool2d(2, 2)(x).shape == (2, 3, 4, 4)
    assert nn.AdaptiveAvgPool2d(1)(x).shape == (2, 3, 1, 1)
    assert nn.LocalResponseNorm(2)(x).shape == x.shape
    assert nn.Flatten()(x).shape == (2, 192)
    assert nn.Identity()(x) is x
    assert nn.Softmax(dim=1)(gf.randn(2, 5)).numpy().sum(1) == pytest.approx([1, 1], rel=1e-5)
    assert nn.LogSoftmax(dim=1)(gf.randn(2, 5)).shape == (2, 5)
    for act in (nn.ReLU(), nn.Sigmoid(), nn.Tanh(), nn.LeakyReLU(0.2), nn.ELU(), nn.GELU(), nn.SiLU(),
                nn.Softplus()):
        assert act(x).shape == x.shape
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(ml) == 3 and len(list(ml.parameters())) == 6
    md = nn.ModuleDict({"a": nn.Linear(2, 2)})
    assert "a" in md and len(list(md.parameters())) == 2
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear) and len(seq[:2]) == 2


@requires_torch
def test_layers_match_pytorch_given_same_weights():
    import torch
    gf.manual_seed(0)
    pairs = [
        (nn.Conv2d(3, 4, 3, stride=2, padding=1), torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)),
        (nn.Conv2d(4, 4, 3, groups=2, dilation=2), torch.nn.Conv2d(4, 4, 3, groups=2, dilation=2)),
        (nn.Linear(5, 3), torch.nn.Linear(5, 3)),
        (nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)),
        (nn.MaxPool2d(3, 2, 1), torch.nn.MaxPool2d(3, 2, 1)),
        (nn.AvgPool2d(2), torch.nn.AvgPool2d(2)),
        (nn.LPPool2d(2, 2), torch.nn.LPPool2d(2, 2)),
        (nn.LocalResponseNorm(3), torch.nn.LocalResponseNorm(3)),
    ]
    rng = np.random.default_rng(0)
    for g, t in pairs:
        g.double()
        t.double()
        g.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
        shape = (2, 5) if isinstance(g, nn.Linear) else (2, 3 if not isinstance(g, nn.Conv2d) or
                                                          g.in_channels == 3 else 4, 7, 7)
        xn = rng.standard_normal(shape)
        xg = gf.tensor(xn, requires_grad=True)
        xt = torch.tensor(xn, requires_grad=True)
        for mode in ("train", "eval"):
            getattr(g, mode)()
            getattr(t, mode)()
            yg, yt = g(xg), t(xt)
            np.testing.assert_allclose(yg.numpy(), yt.detach().numpy(), rtol=1e-9, atol=1e-10)
        (yg * yg).sum().backward()
        (yt * yt).sum().backward()
        np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=1e-8, atol=1e-10)
        for (n, p), (_, tp) in zip(g.named_parameters(), t.named_parameters()):
            np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=n)
        if isinstance(g, nn.BatchNorm2d):
            np.testing.assert_allclose(g.running_var.numpy(), t.running_var.numpy(), rtol=1e-12)


@requires_torch
def test_state_dict_keys_match_pytorch():
    import torch
    g = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2, 2))
    t = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU(),
                            torch.nn.Flatten(), torch.nn.Linear(2, 2))
    assert list(g.state_dict()) == list(t.state_dict())
    g.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})


def test_losses_modules():
    logits = gf.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    target = gf.tensor([0, 2])
    ce = nn.CrossEntropyLoss()(logits, target).item()
    ln = logits.numpy().astype(np.float64)
    ref = np.mean([np.log(np.exp(r).sum()) - r[t] for r, t in zip(ln, [0, 2])])
    assert ce == pytest.approx(ref, rel=1e-5)
    assert nn.NLLLoss()(F.log_softmax(logits, 1), target).item() == pytest.approx(ref, rel=1e-5)
    assert nn.MSELoss()(gf.tensor([1.0, 3.0]), gf.tensor([0.0, 0.0])).item() == pytest.approx(5.0)
    assert nn.MSELoss(reduction="sum")(gf.tensor([1.0, 3.0]), gf.tensor([0.0, 0.0])).item() == pytest.approx(10.0)
    assert nn.L1Loss()(gf.tensor([1.0, -3.0]), gf.tensor([0.0, 0.0])).item() == pytest.approx(2.0)
    assert nn.SmoothL1Loss()(gf.tensor([0.5, 3.0]), gf.tensor([0.0, 0.0])).item() == pytest.approx((0.125 + 2.5) / 2)
    z = gf.tensor([0.0, 2.0])
    y = gf.tensor([1.0, 0.0])
    bce = np.mean([math.log(2), 2 + math.log1p(math.exp(-2))])
    assert nn.BCEWithLogitsLoss()(z, y).item() == pytest.approx(bce, rel=1e-5)
    assert nn.BCELoss()(z.sigmoid(), y).item() == pytest.approx(bce, rel=1e-4)
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")


def test_parameter_is_a_leaf_that_requires_grad():
    p = nn.Parameter(gf.zeros(2))
    assert p.requires_grad and p.is_leaf and isinstance(p, gf.Tensor)
    assert "Parameter containing" in repr(p)
    q = nn.Parameter(gf.zeros(2), requires_grad=False)
    assert not q.requires_grad


def test_clip_grad_norm():
    p = nn.Parameter(gf.zeros(2))
    p.grad = gf.tensor([3.0, 4.0])
    total = nn.utils.clip_grad_norm_([p], 1.0)
    assert total == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad.numpy(), [0.6, 0.8], rtol=1e-5)


def test_buffers_persistent_and_not():
    m = nn.Module()
    m.register_buffer("kept", gf.zeros(2))
    m.register_buffer("scratch", gf.ones(2), persistent=False)
    m.extra = nn.Buffer(gf.ones(1))
    assert {n for n, _ in m.named_buffers()} == {"kept", "scratch", "extra"}
    assert list(m.state_dict()) == ["kept", "extra"]
    m.kept = gf.full((2,), 3.0)  # reassigning a registered buffer keeps it registered
    assert m.state_dict()["kept"].tolist() == [3.0, 3.0]
    with pytest.raises(TypeError, match="buffer"):
        m.kept = 5
    with pytest.raises(KeyError):
        m.register_buffer("a.b", gf.zeros(1))
    m.to(gf.float64)
    assert m.kept.dtype == np.float64 and m.scratch.dtype == np.float64


def test_missing_forward_and_unknown_attribute():
    m = nn.Module()
    with pytest.raises(NotImplementedError, match="forward"):
        m(gf.ones(1))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        m.nope


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.3, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    grads = [rng.standard_normal(s) for s in shapes]
    ps = [nn.Parameter(gf.tensor(np.zeros(s))) for s in shapes]
    ts = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in shapes]
    for p, t, g in zip(ps, ts, grads):
        p.grad = gf.tensor(g.copy())
        t.grad = torch.tensor(g.copy())
    total = nn.utils.clip_grad_norm_(ps, max_norm, norm_type)
    want = torch.nn.utils.clip_grad_norm_(ts, max_norm, norm_type)
    assert total.shape == () and total.dtype == gf.float64
    np.testing.assert_allclose(total.item(), want.item(), rtol=1e-12)
    for p, t in zip(ps, ts):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12)
    with pytest.raises(RuntimeError, match="clip_grad_norm_: the total norm"):
        bad = nn.Parameter(gf.tensor(np.zeros(2)))
        bad.grad = gf.tensor(np.array([np.inf, 1.0]))
        nn.utils.clip_grad_norm_([bad], 1.0, norm_type, error_if_nonfinite=True)
