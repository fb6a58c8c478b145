"""Second audit round of PyTorch idioms (the first is ``test_pytorch_programs.py``):
custom ``autograd.Function`` s (multi-output, ``mark_non_differentiable``, None
gradients), tensor and module hooks, the Module traversal/state API, optimizer
state resumption (incl. Adamax/NAdam/RAdam), checkpoints of nested structures and
tensor odds and ends -- each written as PyTorch users write it and, where PyTorch is
installed, compared with it."""
from __future__ import annotations

import io

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as gnn
from gradflow.autograd import gradcheck

from conftest import requires_torch


def _np(t):
    return np.asarray(t.detach().cpu().numpy(), dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# custom autograd Functions
# ---------------------------------------------------------------------------------------------
def _custom_fns(torch):
    class ScaledLinear(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w, scale):
            ctx.save_for_backward(x, w)
            ctx.scale = scale
            return x.mm(w.t()) * scale

        @staticmethod
        def backward(ctx, grad):
            x, w = ctx.saved_tensors
            gx = gw = None
            if ctx.needs_input_grad[0]:
                gx = grad.mm(w) * ctx.scale
            if ctx.needs_input_grad[1]:
                gw = grad.t().mm(x) * ctx.scale
            return gx, gw, None

    class SortWithIdx(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            v, i = x.sort(dim=-1)
            ctx.mark_non_differentiable(i)
            ctx.save_for_backward(i)
            return v, i

        @staticmethod
        def backward(ctx, gv, gi):
            i, = ctx.saved_tensors
            return torch.zeros_like(gv).scatter_(-1, i, gv)

    class SplitHalf(torch.autograd.Function):  # two differentiable outputs, one unused
        @staticmethod
        def forward(ctx, x):
            n = x.shape[-1] // 2
            return x[..., :n] * 2, x[..., n:] * 3

        @staticmethod
        def backward(ctx, ga, gb):
            return torch.cat([ga * 2, gb * 3], -1)

    return ScaledLinear, SortWithIdx, SplitHalf


@requires_torch
def test_custom_functions_match_torch():
    import torch
    rng = np.random.default_rng(0)
    X, W = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    res = {}
    for lib in (gf, torch):
        ScaledLinear, SortWithIdx, SplitHalf = _custom_fns(lib)
        x = lib.tensor(X, requires_grad=True)
        w = lib.tensor(W, requires_grad=True)
        y = ScaledLinear.apply(x, w, 2.0)
        v, i = SortWithIdx.apply(y)
        a, b = SplitHalf.apply(v)
        assert not i.requires_grad and v.requires_grad and a.requires_grad
        assert i.dtype == lib.int64
        # b is unused: its gradient reaches backward as zeros (materialized, as PyTorch)
        (a * lib.arange(2.0, dtype=lib.float64)).sum().backward()
        res[lib.__name__] = (_np(y), i.numpy(), _np(x.grad), _np(w.grad))
        # only x needs a gradient: backward is asked for it alone
        x2 = lib.tensor(X, requires_grad=True)
        ScaledLinear.apply(x2, lib.tensor(W), 1.0).sum().backward()
        res[lib.__name__] += (_np(x2.grad),)
    for g, t in zip(res["gradflow"], res["torch"]):
        np.testing.assert_allclose(g, t, rtol=1e-12, atol=1e-12)


def test_custom_function_gradcheck_and_ctx_api():
    ScaledLinear, SortWithIdx, SplitHalf = _custom_fns(gf)
    x = gf.randn(3, 4, dtype=gf.float64, requires_grad=True)
    w = gf.randn(5, 4, dtype=gf.float64, requires_grad=True)
    # as PyTorch users call it: a lambda, or .apply with a non-tensor argument in the tuple
    assert gf.autograd.gradcheck(lambda a, b: ScaledLinear.apply(a, b, 0.5), (x, w), eps=1e-6, atol=1e-4)
    assert gradcheck(ScaledLinear.apply, (x, w, 2.0), eps=1e-6, atol=1e-4)
    assert gradcheck(lambda a: SortWithIdx.apply(a)[0], (x,), eps=1e-6, atol=1e-4)
    assert gradcheck(SplitHalf.apply, (x,), eps=1e-6, atol=1e-4)
    # a wrong backward is caught
    class Bad(gf.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * a

        @staticmethod
        def backward(ctx, g):
            return g  # should be 2*a*g
    assert not gradcheck(Bad.apply, (x,), raise_exception=False)
    # grad_fn naming, next_functions, name()
    y = ScaledLinear.apply(x, w, 1.0)
    assert repr(y.grad_fn) == "<ScaledLinear>" or "ScaledLinear" in repr(y.grad_fn)
    assert y.grad_fn.name() == "ScaledLinearBackward0"
    assert (x * 2).grad_fn.name() == "MulBackward0"
    assert len(y.grad_fn.next_functions) == 3 and y.grad_fn.next_functions[2] == (None, 0)
    # from torch.autograd.function import ...
    from gradflow.autograd.function import Function, once_differentiable
    assert Function is gf.autograd.Function and once_differentiable(len) is len


def test_custom_function_returning_input_and_mark_dirty():
    class Ident(gf.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a

        @staticmethod
        def backward(ctx, g):
            return g * 3

    x = gf.ones(3, requires_grad=True)
    y = Ident.apply(x)
    assert y is not x and x.is_leaf and not y.is_leaf  # the input is left as it was
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 3.0, 3.0]

    class Double_(gf.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.mark_dirty(a)
            return a.mul_(2)

        @staticmethod
        def backward(ctx, g):
            return g * 2

    leaf = gf.ones(2, requires_grad=True)
    h = leaf.clone()
    out = Double_.apply(h)
    assert out is h and h.tolist() == [2.0, 2.0]
    (out * out).sum().backward()
    assert leaf.grad.tolist() == [8.0, 8.0]  # d(4 a^2)/da at a=1 (as PyTorch)

    class NoGradForArg(gf.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, g):
            return g, None  # None: no gradient for b even if it requires one

    a, b = gf.ones(2, requires_grad=True), gf.full((2,), 5.0, requires_grad=True)
    NoGradForArg.apply(a, b).sum().backward()
    assert a.grad.tolist() == [1.0, 1.0] and b.grad is None


def test_set_materialize_grads_false_passes_none():
    seen = []

    class Two(gf.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.set_materialize_grads(False)
            return a * 1, a * 2

        @staticmethod
        def backward(ctx, g1, g2):
            seen.append(g2)
            return g1 if g2 is None else g1 + 2 * g2

    x = gf.ones(2, requires_grad=True)
    p, q = Two.apply(x)
    p.sum().backward()
    assert seen == [None] and x.grad.tolist() == [1.0, 1.0]


# ---------------------------------------------------------------------------------------------
# hooks
# ---------------------------------------------------------------------------------------------
@requires_torch
def test_tensor_hooks_and_retain_grad_match_torch():
    import torch
    out = {}
    for lib in (gf, torch):
        calls = []
        x = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        h = x.register_hook(lambda g: g * 2)          # leaf: modifies the accumulated grad
        y = x * 3
        y.retain_grad()
        y.register_hook(lambda g: g.clamp(max=4.0))   # non-leaf: modifies what flows on
        z = y * y + x                                 # x used twice: its hook sees the sum once
        x.register_hook(lambda g: calls.append(g.clone()))
        z.sum().backward()
        out[lib.__name__] = [x.grad.tolist(), y.grad.tolist(), len(calls), y.retains_grad,
                             x.retains_grad, y.is_leaf]
        h.remove()
        x.grad = None
        (x * 1).sum().backward()
        out[lib.__name__].append(x.grad.tolist())
    assert out["gradflow"] == out["torch"]


def test_hook_with_autograd_grad_and_post_accumulate():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: g * 10)
    g, = gf.autograd.grad(y.sum(), x)
    assert g.tolist() == [20.0, 20.0]
    lin = gnn.Linear(2, 2)
    fired = []
    handle = lin.weight.register_post_accumulate_grad_hook(lambda p: fired.append(p.grad.shape))
    lin(gf.ones(1, 2)).sum().backward()
    handle.remove()
    lin(gf.ones(1, 2)).sum().backward()
    assert fired == [(2, 2)]
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        gf.ones(2).register_hook(lambda g: g)
    with pytest.raises(RuntimeError, match="shape"):
        w = gf.ones(2, requires_grad=True)
        w.register_hook(lambda g: g.sum())
        (w * 2).sum().backward()


@requires_torch
@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_module_hooks_match_torch():
    import torch
    rng = np.random.default_rng(1)
    W1, W2, X = rng.standard_normal((4, 3)), rng.standard_normal((2, 4)), rng.standard_normal((5, 3))
    res = {}
    for lib in (gf, torch):
        nn = lib.nn
        m = nn.Sequential(nn.Linear(3, 4, bias=False), nn.Tanh(), nn.Linear(4, 2, bias=False)).double()
        with lib.no_grad():
            m[0].weight.copy_(lib.tensor(W1))
            m[2].weight.copy_(lib.tensor(W2))
        acts, grads = {}, []
        handles = [mod.register_forward_hook(
            lambda mod, inp, o, n=n: acts.__setitem__(n, o.detach())) for n, mod in m.named_children()]
        handles.append(m[1].register_full_backward_hook(
            lambda mod, gin, gout: (grads.append((gin[0].clone(), gout[0].clone())), (gin[0] * 0.5,))[1]))
        handles.append(m[0].register_full_backward_hook(
            lambda mod, gin, gout: grads.append((gin[0], gout[0].clone()))))  # input needs no grad
        pre = m[0].register_forward_pre_hook(lambda mod, inp: (inp[0] * 2,))
        x = lib.tensor(X)
        out = m(x)
        out.sum().backward()
        pre.remove()
        for h in handles:
            h.remove()
        out2 = m(x)
        res[lib.__name__] = ([_np(acts[k]) for k in "012"], _np(out), _np(out2),
                             _np(m[0].weight.grad), [_np(g[1]) for g in grads], _np(grads[0][0]),
                             grads[1][0] is None, len(grads))
    g, t = res["gradflow"], res["torch"]
    tol = dict(rtol=1e-9, atol=1e-13)  # tanh' near saturation: float64 rounding only
    for a, b in zip(g[0], t[0]):
        np.testing.assert_allclose(a, b, **tol)
    for k in (1, 2, 3, 5):
        np.testing.assert_allclose(g[k], t[k], **tol)
    for a, b in zip(g[4], t[4]):
        np.testing.assert_allclose(a, b, **tol)
    assert g[6:] == t[6:] == (True, 2)


def test_forward_hook_kwargs_and_prepend():
    lin = gnn.Linear(2, 2)
    order = []
    lin.register_forward_hook(lambda m, a, o: order.append("b"))
    lin.register_forward_hook(lambda m, a, o: order.append("a"), prepend=True)
    lin.register_forward_hook(lambda m, a, kw, o: o * 0, with_kwargs=True)
    lin.register_forward_pre_hook(lambda m, a, kw: ((a[0] * 0,), kw), with_kwargs=True)
    out = lin(gf.ones(1, 2))
    assert order == ["a", "b"] and out.abs().sum().item() == 0


# ---------------------------------------------------------------------------------------------
# Module API
# ---------------------------------------------------------------------------------------------
def _tied_net(torch):
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.bn = nn.BatchNorm1d(3)
            self.register_buffer("step", torch.zeros(1))

        def forward(self, x):
            return self.bn(self.fc(x))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 3)
            self.blocks = nn.ModuleList([Block(), Block()])
            self.head = nn.Linear(3, 10, bias=False)
            self.head.weight = self.emb.weight  # weight tying

        def forward(self, x):
            h = self.emb(x)
            for b in self.blocks:
                h = b(h)
            return self.head(h)

    return Net()


@requires_torch
def test_module_traversal_and_state_api_match_torch():
    import torch
    out = {}
    for lib in (gf, torch):
        m = _tied_net(lib)
        r = m.load_state_dict({"emb.weight": lib.zeros(10, 3), "extra": lib.zeros(1)}, strict=False)
        r_all = m.load_state_dict(m.state_dict())
        m.blocks[0].requires_grad_(False)
        m.train(False)
        eval_flags = (m.training, m.blocks[1].bn.training)
        m.train()
        linears = []
        m.apply(lambda mod: linears.append(type(mod).__name__) if isinstance(mod, lib.nn.Linear) else None)
        vec = lib.nn.utils.parameters_to_vector(m.parameters())
        lib.nn.utils.vector_to_parameters(lib.arange(vec.numel(), dtype=vec.dtype), m.parameters())
        out[lib.__name__] = [
            [n for n, _ in m.named_modules()], [n for n, _ in m.named_children()],
            [type(c).__name__ for c in m.children()], len(list(m.modules())),
            [n for n, _ in m.named_buffers()], len(list(m.buffers())),
            [n for n, _ in m.named_parameters()], len(list(m.parameters())),
            list(m.state_dict()), list(m.blocks[0].state_dict(prefix="x.")),
            [n for n, _ in m.blocks.named_parameters(prefix="blocks")][:2],
            r.missing_keys, r.unexpected_keys, repr(r_all),
            [n for n, p in m.named_parameters() if p.requires_grad], eval_flags, linears,
            tuple(vec.shape), m.get_submodule("blocks.1.fc").out_features,
            tuple(m.get_parameter("blocks.0.fc.bias").shape), tuple(m.get_buffer("blocks.1.step").shape),
            m.head.weight is m.emb.weight, m.blocks[1].fc.bias.tolist(),
        ]
        m2 = _tied_net(lib)
        assert m2.double() is m2 and m2.head.weight.dtype == lib.float64 and m2.blocks[0].step.dtype == lib.float64
        assert m2.half().emb.weight.dtype == lib.float16
        assert m2.to(lib.float32).float().head.weight.dtype == lib.float32
        assert m2.to("cpu").cpu() is m2 and str(m2.head.weight.device) == "cpu"
    assert out["gradflow"] == out["torch"]


def test_module_registration_and_zero_grad():
    s = gnn.Sequential()
    s.add_module("a", gnn.Linear(2, 2))
    s.register_module("b", gnn.ReLU())
    assert len(s) == 2 and repr(s).startswith("Sequential(\n  (a): Linear(in_features=2")

    class M(gnn.Module):
        def __init__(self):
            super().__init__()
            self.k = 3
            self.a = gnn.Linear(2, 2)
            self.b = self.a  # the same module twice: counted once

        def extra_repr(self):
            return f"k={self.k}"

    m = M()
    assert repr(m).startswith("M(\n  k=3\n  (a): Linear")
    assert [n for n, _ in m.named_modules()] == ["", "a"] and len(list(m.parameters())) == 2
    assert list(m.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]  # as PyTorch
    m.a(gf.ones(1, 2)).sum().backward()
    m.zero_grad(set_to_none=False)
    assert m.a.weight.grad is not None and m.a.weight.grad.abs().sum().item() == 0
    m.zero_grad()
    assert m.a.weight.grad is None
    with pytest.raises(AttributeError):
        m.get_buffer("a.weight")


# ---------------------------------------------------------------------------------------------
# optimizers: resuming from a checkpoint is identical to an uninterrupted run; new optimizers
# ---------------------------------------------------------------------------------------------
_OPTS = {
    "sgd_nesterov": lambda o, p: o.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam_amsgrad": lambda o, p: o.Adam(p, lr=0.05, amsgrad=True),
    "adamw": lambda o, p: o.AdamW(p, lr=0.05),
    "rmsprop": lambda o, p: o.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
    "adagrad": lambda o, p: o.Adagrad(p, lr=0.1, lr_decay=0.01),
    "adamax": lambda o, p: o.Adamax(p, lr=0.05, weight_decay=0.01),
    "nadam": lambda o, p: o.NAdam(p, lr=0.05, weight_decay=0.01),
    "nadamw": lambda o, p: o.NAdam(p, lr=0.05, weight_decay=0.01, decoupled_weight_decay=True),
    "radam": lambda o, p: o.RAdam(p, lr=0.05, weight_decay=0.01),
    "radamw": lambda o, p: o.RAdam(p, lr=0.05, weight_decay=0.01, decoupled_weight_decay=True),
}


def _opt_run(torch, name, n_steps, ckpt=None, resume_from=None):
    rng = np.random.default_rng(0)
    W0, B0 = rng.standard_normal((3, 4)), rng.standard_normal(3)
    X, Y = rng.standard_normal((8, 4)), rng.standard_normal((8, 3))
    m = torch.nn.Linear(4, 3).double()
    with torch.no_grad():
        m.weight.copy_(torch.tensor(W0))
        m.bias.copy_(torch.tensor(B0))
    opt = _OPTS[name](torch.optim, m.parameters())
    start = 0
    if resume_from is not None:
        ck = torch.load(resume_from)
        m.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optim"])
        start = ck["epoch"]
    losses = []
    for i in range(start, n_steps):
        opt.zero_grad(set_to_none=True)
        loss = ((m(torch.tensor(X * (1 + 0.1 * i))) - torch.tensor(Y)) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    if ckpt is not None:
        torch.save({"model": m.state_dict(), "optim": opt.state_dict(), "epoch": n_steps,
                    "losses": losses, "note": "ckpt"}, ckpt)
    return losses, _np(m.weight)


@pytest.mark.parametrize("name", sorted(_OPTS))
def test_optimizer_resume_is_identical(name, tmp_path):
    full, w_full = _opt_run(gf, name, 6)
    first, _ = _opt_run(gf, name, 3, ckpt=tmp_path / "ck.pt")
    rest, w_rest = _opt_run(gf, name, 6, resume_from=tmp_path / "ck.pt")
    np.testing.assert_allclose(first + rest, full, rtol=1e-13)
    np.testing.assert_allclose(w_rest, w_full, rtol=1e-13)
    ck = gf.load(tmp_path / "ck.pt")
    assert ck["epoch"] == 3 and ck["note"] == "ckpt" and ck["losses"] == first


@requires_torch
@pytest.mark.parametrize("name", sorted(_OPTS))
def test_optimizer_trajectories_match_torch(name):
    import torch
    g_losses, g_w = _opt_run(gf, name, 6)
    t_losses, t_w = _opt_run(torch, name, 6)
    np.testing.assert_allclose(g_losses, t_losses, rtol=1e-11)
    np.testing.assert_allclose(g_w, t_w, rtol=1e-11, atol=1e-13)


@requires_torch
def test_grad_accumulation_param_groups_and_clip_value_match_torch():
    import torch
    rng = np.random.default_rng(2)
    W, X = rng.standard_normal((2, 3)), rng.standard_normal((8, 3))
    res = {}
    for lib in (gf, torch):
        lin = lib.nn.Linear(3, 2, bias=False).double()
        extra = lib.tensor(np.ones(2), requires_grad=True)
        with lib.no_grad():
            lin.weight.copy_(lib.tensor(W))
        opt = lib.optim.SGD(lin.parameters(), lr=0.1, momentum=0.9)
        opt.add_param_group({"params": [extra], "lr": 0.5})
        opt.zero_grad()
        for mb in range(4):  # accumulate over micro-batches, loss scaled by 1/4
            xb = lib.tensor(X[2 * mb:2 * mb + 2])
            loss = ((lin(xb) + extra) ** 2).mean() / 4
            loss.backward()
        lib.nn.utils.clip_grad_value_(lin.parameters(), 0.3)
        opt.step()
        res[lib.__name__] = (_np(lin.weight), _np(extra), [g["lr"] for g in opt.param_groups],
                             [g["momentum"] for g in opt.param_groups])
    for a, b in zip(res["gradflow"][:2], res["torch"][:2]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert res["gradflow"][2:] == res["torch"][2:]


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------
def test_checkpoint_round_trips_common_structures(tmp_path):
    lin = gnn.Linear(2, 2)
    opt = gf.optim.Adam(lin.parameters())
    lin(gf.ones(1, 2)).sum().backward()
    opt.step()
    obj = {"model": lin.state_dict(), "optim": opt.state_dict(), "epoch": 3, "best": 0.91,
           "inf": float("inf"), "flag": True, "none": None, "hist": [0.5, 0.25], "shape": (2, 3),
           "nested": {"a": [gf.ones(2), {"b": gf.tensor(3)}]}, "ids": {0: "x"}, "tags": {"a", "b"},
           "p": gnn.Parameter(gf.ones(2))}
    gf.save(obj, tmp_path / "ck.pt")
    buf = io.BytesIO()  # torch.save(obj, buffer) / torch.load(buffer)
    gf.save(obj, buf)
    buf.seek(0)
    for o in (gf.load(tmp_path / "ck.pt"), gf.load(buf)):
        assert o["epoch"] == 3 and o["best"] == 0.91 and o["inf"] == float("inf")
        assert o["flag"] is True and o["none"] is None and o["hist"] == [0.5, 0.25]
        assert o["shape"] == (2, 3) and o["ids"] == {0: "x"} and o["tags"] == {"a", "b"}
        assert o["nested"]["a"][0].tolist() == [1.0, 1.0] and o["nested"]["a"][1]["b"].item() == 3
        assert isinstance(o["p"], gnn.Parameter) and o["p"].requires_grad
        assert list(o["model"]) == ["weight", "bias"] and o["optim"]["state"][0]["step"] == 1
        lin2 = gnn.Linear(2, 2)
        assert repr(lin2.load_state_dict(o["model"])) == "<All keys matched successfully>"
        np.testing.assert_array_equal(lin2.weight.detach().numpy(), lin.weight.detach().numpy())


# ---------------------------------------------------------------------------------------------
# tensor odds and ends
# ---------------------------------------------------------------------------------------------
@requires_torch
def test_tensor_odds_and_ends_match_torch():
    import torch
    res = {}
    for lib in (gf, torch):
        @lib.no_grad()
        def evaluate(x):
            return (x * 2).requires_grad

        r = [evaluate(lib.ones(2, requires_grad=True))]
        x = lib.ones(3, requires_grad=True)
        x.data = lib.zeros(3)
        (x * 2).sum().backward()
        r += [x.tolist(), x.grad.tolist()]
        x.grad = None
        c = x.clone().detach()
        r += [x.grad, c.requires_grad, c.is_leaf]
        r += [lib.tensor([[3.5]]).item(), lib.tensor([[[2]]]).item(), type(lib.tensor([[2]]).item()).__name__]
        r += [lib.tensor([[1, 2], [3, 4]]).tolist(), lib.tensor(3.5).tolist()]
        r += [len(lib.zeros(4, 2)), [tuple(row.shape) for row in lib.zeros(2, 3)]]
        a = lib.arange(6.0).reshape(2, 3)
        a[a > 2] = -1.0
        b = lib.zeros(5)
        b[lib.tensor([0, 2])] += 1
        c2 = lib.zeros(5).index_add_(0, lib.tensor([0, 2, 2]), lib.ones(3))
        r += [a.tolist(), b.tolist(), c2.tolist()]
        w = lib.where(lib.tensor([1.0, -1.0]) > 0, lib.tensor([1.0, -1.0]), 0.0)
        r += [w.tolist(), w.dtype == lib.float32]
        z = lib.zeros(2, 3)
        z += lib.tensor([1.0, 2.0, 3.0])
        z *= lib.tensor([[2.0], [3.0]])
        r += [z.tolist()]
        with pytest.raises(RuntimeError):
            lib.zeros(3).add_(lib.ones(2, 3))
        t = lib.ones(2)
        r += [t.type(lib.float64).dtype == lib.float64, t.type(), t.type("torch.DoubleTensor").dtype == lib.float64,
              t.dtype == lib.float32]
        m = lib.zeros(4, 2, 3)
        r += [m.shape[0], m.size(1), m.size(-1), m.numel(), m.dim(), tuple(m[0].T.shape), tuple(m.mT.shape)]
        r += [lib.zeros(2, dtype=lib.float64).new_tensor([1, 2]).dtype == lib.float64]
        r += [lib.tensor([lib.tensor(1.5), lib.tensor(2.0)]).tolist()]
        arr = np.zeros(3, dtype=np.float32)
        shared = lib.as_tensor(arr)
        arr[0] = 5
        shared[1] = 7
        r += [shared.tolist(), arr.tolist(), lib.as_tensor(arr, dtype=lib.float64).dtype == lib.float64]
        old = lib.get_default_dtype()
        lib.set_default_dtype(lib.float64)
        try:
            r += [lib.tensor([1.0]).dtype == lib.float64, lib.zeros(2).dtype == lib.float64,
                  lib.nn.Linear(2, 2).weight.dtype == lib.float64]
        finally:
            lib.set_default_dtype(old)
        r += [lib.get_default_dtype() == lib.float32]
        r += [lib.is_tensor(lib.zeros(1)), lib.is_tensor(np.zeros(1)), lib.is_tensor(lib.nn.Parameter(lib.zeros(1)))]
        r += [f"{lib.tensor(0.123456):.3f}", f"{lib.tensor(3)}", f"{lib.tensor(2.5)}"]
        for bad in (lib.zeros(0), lib.zeros(2)):
            with pytest.raises(RuntimeError):
                bad.item()
        res[lib.__name__] = r
    assert res["gradflow"] == res["torch"]


@requires_torch
def test_tensor_repr_matches_torch():
    import torch
    cases = [
        lambda L: L.tensor([1.0, 2.5, -3.0]),
        lambda L: L.tensor([[1.0, 2.0], [3.0, 4.12345]]),
        lambda L: L.tensor([1.0, 2.0]),
        lambda L: L.tensor(3.0),
        lambda L: L.tensor([0.1, 1e-5]),
        lambda L: L.tensor([1e6, 1.0]),
        lambda L: L.tensor([1e9, 2.0]),
        lambda L: L.tensor([0.5, float("nan"), float("inf")]),
        lambda L: L.tensor([1, 2]),
        lambda L: L.tensor([True, False]),
        lambda L: L.tensor([1.0, 2.0], requires_grad=True),
        lambda L: L.tensor([1.0, 2.0], requires_grad=True) * 2,
        lambda L: (L.tensor([1.0, 2.0], requires_grad=True) + 1).sum(),
        lambda L: L.tensor([[0.25, -1.5, 3.125]]),
        # summarised (> 1000 elements): torch's "  ..." element and 80-column rows
        lambda L: L.arange(2000),
        lambda L: L.linspace(-3, 3, 2000),
        lambda L: L.zeros(4000, 784),
        lambda L: L.ones(20, 30, 40),
        lambda L: L.arange(3000.0).reshape(3, 1000) - 1500,
        lambda L: L.arange(30.0) / 7,          # wraps at 9 per line, as torch
        lambda L: L.zeros(1, 57),              # all zeros: torch lays out with width 1
        lambda L: L.tensor([1.0, -float("inf")]),  # inf/nan do not widen the padding
        lambda L: L.tensor([float("nan"), float("inf")]),
        lambda L: L.arange(100).reshape(4, 25),
        lambda L: L.zeros(2, 0),               # tensor([], size=(2, 0))
    ]
    for make in cases:
        assert repr(make(gf)).replace("Backward>", "Backward0>") == repr(make(torch)), repr(make(torch))
