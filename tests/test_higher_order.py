"""Higher-order gradients: every op of the case table differentiated twice.

* ``gradgradcheck`` (float64 central differences of the first gradient, with respect
  to the inputs and to the cotangent) for every case of ``test_ops_gradcheck.CASES``
  on every CPU backend;
* the same second-order products compared with ``torch.autograd.grad(...,
  create_graph=True)`` where PyTorch is importable;
* worked cases: a Hessian-vector product of an MLP, a WGAN-GP gradient penalty on a
  small conv critic (one optimizer step), and the gradient of a validation loss with
  respect to the learning rate through one SGD step.
"""
from __future__ import annotations

import types
import warnings

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.autograd import GradcheckError, grad, gradgradcheck
from conftest import HAVE_TORCH, backend_params, requires_torch
from test_ops_gradcheck import CASES, GL, gf_inputs, outputs

CPU = backend_params(["numpy", "numba"])
# cases whose first gradient is not differentiable where the test samples it, or that
# draw random numbers per call (finite differences need a deterministic function)
_SKIP = {}


def _cases():
    return [c for c in CASES if c.gc and c.id not in _SKIP]


def _mode(case, arrays):
    """Full central differences for small inputs, random directions for big ones."""
    n = sum(a.size for a in arrays if a.dtype.kind == "f")
    return "full" if n <= 48 and case.mode == "full" else "random"


@pytest.mark.parametrize("backend", CPU)
@pytest.mark.parametrize("case", _cases(), ids=lambda c: c.id)
def test_gradgradcheck(case, backend):
    arrays = case.arrays()
    with gf.backend(backend):
        xs = gf_inputs(case, arrays)
        assert gradgradcheck(lambda *a: case.fn(GL, *a), tuple(xs), mode=_mode(case, arrays),
                             n_directions=4, atol=1e-5, rtol=1e-3)


def test_gradgradcheck_catches_a_wrong_second_derivative():
    """A Function whose backward is right to first order but wrong to second (it uses a
    detached saved input) fails gradgradcheck, not gradcheck."""
    class Cube(gf.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.backend.binary("mul", x.array, x.backend.binary("mul", x.array, x.array))

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return g * (x.detach() * x.detach() * 3.0)  # detached: no second derivative

    x = gf.tensor([0.5, -1.0, 2.0], dtype="float64", requires_grad=True)
    assert gf.autograd.gradcheck(Cube.apply, (x,))
    with pytest.raises(GradcheckError):
        gradgradcheck(Cube.apply, (x,))


if HAVE_TORCH:
    import torch
    import torch.nn.functional as TF
    TL = types.SimpleNamespace(lib=torch, F=TF, name="torch")


def _second_order(lib, outs, xs, cots, vs):
    """d/dx <v, d/dx <u, f(x)>>: the Hessian-vector products, as arrays (zeros where the
    first gradient does not depend on an input: a piecewise-linear op)."""
    outs = [o for o in outs if o.requires_grad]
    diff = [x for x in xs if x.requires_grad]
    if lib == "torch":
        gs = torch.autograd.grad(outs, diff, grad_outputs=[torch.tensor(c) for c in cots],
                                 create_graph=True, allow_unused=True)
    else:
        gs = grad(outs, diff, grad_outputs=[gf.tensor(c, dtype="float64") for c in cots],
                  create_graph=True, allow_unused=True)
    total = None
    for g, v in zip(gs, vs):
        if g is None or not g.requires_grad:
            continue
        term = (g * (torch.tensor(v) if lib == "torch" else gf.tensor(v, dtype="float64"))).sum()
        total = term if total is None else total + term
    zeros = [np.zeros(tuple(x.shape)) for x in diff]
    if total is None:
        return zeros
    hs = (torch.autograd.grad if lib == "torch" else grad)(total, diff, allow_unused=True)
    out = []
    for h, z in zip(hs, zeros):
        if h is None or (lib == "torch" and h._is_zerotensor()):
            out.append(z)
        else:
            out.append(h.detach().numpy() if lib == "torch" else h.numpy())
    return out


# PyTorch's binary_cross_entropy computes the target's gradient log(1-p) - log(p) as a
# constant of its double-backward graph, so its mixed p/target second derivative is
# missing; ours is checked against finite differences by test_gradgradcheck. Compared
# here with the target held fixed.
_TORCH_FIXED_TARGET = {"bce", "bce_weight_sum"}


@requires_torch
@pytest.mark.parametrize("case", [c for c in _cases() if c.th is not False], ids=lambda c: c.id)
def test_second_order_matches_torch(case):
    arrays = case.arrays()
    fixed = {1} if case.id in _TORCH_FIXED_TARGET else set()
    xs = gf_inputs(case, arrays)
    for i in fixed:
        xs[i].requires_grad_(False)
    ts = []
    for i, a in enumerate(arrays):
        t = torch.tensor(a)
        if a.dtype.kind == "f" and case.diff(i, a) and i not in case.torch_nograd | fixed:
            t.requires_grad_(True)
        ts.append(t)
    gouts = [o for o in outputs(case.fn(GL, *xs))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        touts = outputs((case.th or case.fn)(TL, *ts))
    rng = np.random.default_rng(7)
    cots = [rng.standard_normal(tuple(o.shape)) for o in gouts if o.requires_grad]
    vs = [rng.standard_normal(x.shape) for x in xs if x.requires_grad]
    ours = _second_order("gradflow", gouts, xs, cots, vs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        theirs = _second_order("torch", touts, [t for t in ts], cots, vs)
    for k, (h, th) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(h, th, rtol=1e-7, atol=1e-9,
                                   err_msg=f"{case.id}: second-order product for input {k}")


# ---------------------------------------------------------------------------
# worked cases
# ---------------------------------------------------------------------------
def _mlp_params(rng):
    return [rng.standard_normal((5, 4)) * 0.5, rng.standard_normal(5) * 0.1,
            rng.standard_normal((3, 5)) * 0.5, rng.standard_normal(3) * 0.1]


def _mlp_loss(lib, params, x, y):
    w1, b1, w2, b2 = params
    if lib is gf:
        h = F.linear(x, w1, b1).tanh()
        return F.cross_entropy(F.linear(h, w2, b2), y)
    h = TF.linear(x, w1, b1).tanh()
    return TF.cross_entropy(TF.linear(h, w2, b2), y)


@pytest.mark.parametrize("backend", CPU)
def test_hessian_vector_product_of_an_mlp(backend):
    """Hv by double backward equals the finite difference of gradients, and torch's Hv."""
    rng = np.random.default_rng(0)
    p0 = _mlp_params(rng)
    x0, y0 = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    v = [rng.standard_normal(p.shape) for p in p0]
    with gf.backend(backend):
        x, y = gf.tensor(x0), gf.tensor(y0)

        def grads_at(arrs, create_graph=False):
            ps = [gf.tensor(a, dtype="float64", requires_grad=True) for a in arrs]
            gs = grad(_mlp_loss(gf, ps, x.double(), y), ps, create_graph=create_graph)
            return ps, gs

        ps, gs = grads_at(p0, create_graph=True)
        dot = sum((g * gf.tensor(vi, dtype="float64")).sum() for g, vi in zip(gs, v))
        hv = [h.numpy() for h in grad(dot, ps)]
        eps = 1e-6
        gp = [g.numpy() for g in grads_at([a + eps * vi for a, vi in zip(p0, v)])[1]]
        gm = [g.numpy() for g in grads_at([a - eps * vi for a, vi in zip(p0, v)])[1]]
        for h, a, b in zip(hv, gp, gm):
            np.testing.assert_allclose(h, (a - b) / (2 * eps), rtol=1e-5, atol=1e-7)
    if HAVE_TORCH:
        tps = [torch.tensor(a, requires_grad=True) for a in p0]
        tgs = torch.autograd.grad(_mlp_loss(torch, tps, torch.tensor(x0), torch.tensor(y0)), tps,
                                  create_graph=True)
        tdot = sum((g * torch.tensor(vi)).sum() for g, vi in zip(tgs, v))
        for h, th in zip(hv, torch.autograd.grad(tdot, tps)):
            np.testing.assert_allclose(h, th.numpy(), rtol=1e-8, atol=1e-10)


class _Critic(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 1)

    def forward(self, x):
        return self.fc(F.leaky_relu(self.conv(x), 0.2).flatten(1))


def _wgan_gp_step(lib, critic, opt, real, fake, alpha, lam=10.0):
    """One critic step of WGAN-GP: E[D(fake)] - E[D(real)] + lam * (||grad D(x_hat)|| - 1)^2."""
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    d_hat = critic(x_hat)
    if lib is gf:
        g, = grad(d_hat.sum(), x_hat, create_graph=True)
    else:
        g, = torch.autograd.grad(d_hat.sum(), x_hat, create_graph=True)
    gp = ((g.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
    loss = critic(fake).mean() - critic(real).mean() + lam * gp
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.item())


@pytest.mark.parametrize("backend", CPU)
def test_wgan_gp_step_matches_torch(backend):
    rng = np.random.default_rng(1)
    real0, fake0 = rng.standard_normal((5, 1, 8, 8)), rng.standard_normal((5, 1, 8, 8))
    alpha0 = rng.uniform(size=(5, 1, 1, 1))
    with gf.backend(backend):
        critic = _Critic().double()
        state = {k: v.numpy().copy() for k, v in critic.state_dict().items()}
        opt = gf.optim.Adam(critic.parameters(), lr=1e-2)
        args = [gf.tensor(a, dtype="float64") for a in (real0, fake0, alpha0)]
        losses = [_wgan_gp_step(gf, critic, opt, *args) for _ in range(2)]
        ours = {k: v.numpy() for k, v in critic.state_dict().items()}
        moved = max(np.abs(ours[k] - state[k]).max() for k in state)
        assert moved > 1e-4  # the step did something
    if not HAVE_TORCH:
        return
    import torch.nn as tnn

    class TCritic(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv = tnn.Conv2d(1, 4, 3, stride=2, padding=1)
            self.fc = tnn.Linear(4 * 4 * 4, 1)

        def forward(self, x):
            return self.fc(TF.leaky_relu(self.conv(x), 0.2).flatten(1))

    tc = TCritic().double()
    tc.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    topt = torch.optim.Adam(tc.parameters(), lr=1e-2)
    targs = [torch.tensor(a) for a in (real0, fake0, alpha0)]
    tlosses = [_wgan_gp_step(torch, tc, topt, *targs) for _ in range(2)]
    np.testing.assert_allclose(losses, tlosses, rtol=1e-9)
    for k, v in tc.state_dict().items():
        np.testing.assert_allclose(ours[k], v.numpy(), rtol=1e-7, atol=1e-10, err_msg=k)


@pytest.mark.parametrize("backend", CPU)
def test_gradient_of_validation_loss_wrt_learning_rate(backend):
    """d L_val(w - lr * grad L_train(w)) / d lr through one SGD step (hypergradient):
    equals -<grad L_val(w'), grad L_train(w)>, a finite difference in lr, and torch's."""
    rng = np.random.default_rng(2)
    w0, b0 = rng.standard_normal((3, 4)) * 0.3, np.zeros(3)
    xt, yt = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    xv, yv = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    lr0 = 0.7
    with gf.backend(backend):
        def val_loss(lr_value, create_graph=True):
            w = gf.tensor(w0, dtype="float64", requires_grad=True)
            b = gf.tensor(b0, dtype="float64", requires_grad=True)
            lr = gf.tensor(lr_value, dtype="float64", requires_grad=True)
            lt = F.cross_entropy(F.linear(gf.tensor(xt), w, b), gf.tensor(yt))
            gw, gb = grad(lt, (w, b), create_graph=create_graph)
            w1, b1 = w - lr * gw, b - lr * gb
            return F.cross_entropy(F.linear(gf.tensor(xv), w1, b1), gf.tensor(yv)), lr

        lv, lr = val_loss(lr0)
        dlr, = grad(lv, lr)
        eps = 1e-6
        fd = (val_loss(lr0 + eps, False)[0].item() - val_loss(lr0 - eps, False)[0].item()) / (2 * eps)
        np.testing.assert_allclose(dlr.item(), fd, rtol=1e-6)
    if HAVE_TORCH:
        w = torch.tensor(w0, requires_grad=True)
        b = torch.tensor(b0, requires_grad=True)
        lr = torch.tensor(lr0, dtype=torch.float64, requires_grad=True)
        lt = TF.cross_entropy(TF.linear(torch.tensor(xt), w, b), torch.tensor(yt))
        gw, gb = torch.autograd.grad(lt, (w, b), create_graph=True)
        lvt = TF.cross_entropy(TF.linear(torch.tensor(xv), w - lr * gw, b - lr * gb),
                               torch.tensor(yv))
        tdlr, = torch.autograd.grad(lvt, lr)
        np.testing.assert_allclose(dlr.item(), tdlr.item(), rtol=1e-9)


def test_backward_create_graph_leaves_differentiable_grad():
    """``backward(create_graph=True)`` leaves ``.grad`` with a graph (PyTorch), and the
    graph is kept (retain_graph defaults to True) so a penalty on it can backprop."""
    x = gf.tensor([1.0, -2.0, 0.5], dtype="float64", requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.requires_grad and x.grad.grad_fn is not None
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.array([1.0, -2.0, 0.5]) ** 2)
    g2, = grad(x.grad.sum(), x)
    np.testing.assert_allclose(g2.numpy(), 6 * np.array([1.0, -2.0, 0.5]))


def test_first_order_backward_records_no_graph():
    """Without create_graph the gradients are plain tensors: nothing recorded, nothing
    kept alive."""
    x = gf.randn(3, 4, requires_grad=True)
    w = gf.randn(5, 4, requires_grad=True)
    F.linear(x, w).relu().sum().backward()
    assert x.grad.grad_fn is None and not x.grad.requires_grad
    gx, = grad((x * x).sum(), x)
    assert gx.grad_fn is None and not gx.requires_grad


def test_create_graph_through_freed_graph_raises_clearly():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    g, = grad(y, x, create_graph=True, retain_graph=False)
    with pytest.raises(RuntimeError, match="second time"):
        grad(g.sum(), x)


# ---------------------------------------------------------------------------
# primitives outside the case table (transposed and 3-d convolution, fold/unfold,
# resampling, padding modes, normalisation, embedding, attention)
# ---------------------------------------------------------------------------
def _extra_cases():
    r = np.random.default_rng(11)

    def t(*shape, pos=False):
        a = r.uniform(0.5, 1.5, shape) if pos else r.standard_normal(shape)
        return gf.tensor(a, dtype="float64", requires_grad=True)

    idx = gf.tensor(r.integers(0, 5, (2, 3)))
    return [
        ("conv_transpose2d_stride_pad_outpad", lambda x, w, b: F.conv_transpose2d(
            x, w, b, stride=2, padding=1, output_padding=1), (t(2, 2, 3, 3), t(2, 3, 3, 3), t(3))),
        ("conv_transpose2d_groups_dilation", lambda x, w: F.conv_transpose2d(
            x, w, groups=2, dilation=2), (t(1, 4, 3, 3), t(4, 1, 2, 2))),
        ("conv3d", lambda x, w: F.conv3d(x, w, stride=(1, 2, 1), padding=1),
         (t(1, 2, 3, 4, 3), t(2, 2, 2, 3, 2))),
        ("max_pool3d", lambda x: F.max_pool3d(x, 2), (t(1, 2, 4, 4, 4),)),
        ("unfold_fold", lambda x: F.fold(F.unfold(x, 2, stride=1) * 1.5, (4, 5), 2, stride=1),
         (t(2, 2, 4, 5),)),
        ("interpolate_bilinear", lambda x: F.interpolate(x, size=(5, 7), mode="bilinear",
                                                         align_corners=False), (t(1, 2, 3, 4),)),
        ("interpolate_nearest", lambda x: F.interpolate(x, scale_factor=2, mode="nearest") ** 2,
         (t(1, 2, 3, 3),)),
        ("pad_reflect_replicate_circular", lambda x: (F.pad(x, (1, 2, 2, 1), mode="reflect")
                                                      .sum() * F.pad(x, (1, 1, 1, 1), mode="replicate")
                                                      .mean() + F.pad(x, (1, 0, 0, 1), mode="circular")
                                                      .tanh().sum()), (t(1, 2, 4, 4),)),
        ("batch_norm_train", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
         (t(4, 3, 2, 2), t(3, pos=True), t(3))),
        ("layer_norm", lambda x, w, b: F.layer_norm(x, (4,), w, b), (t(3, 4), t(4, pos=True), t(4))),
        ("group_norm", lambda x: F.group_norm(x, 2), (t(2, 4, 3, 3),)),
        ("embedding", lambda w: (F.embedding(idx, w) ** 2).sum(-1), (t(5, 3),)),
        ("scaled_dot_product_attention", lambda q, k, v: F.scaled_dot_product_attention(
            q, k, v, is_causal=True), (t(1, 2, 3, 4), t(1, 2, 3, 4), t(1, 2, 3, 4))),
        ("gelu_silu_softplus_elu", lambda x: F.gelu(x) * F.silu(x) + F.softplus(x) * F.elu(x),
         (t(3, 4),)),
    ]


@pytest.mark.parametrize("backend", CPU)
@pytest.mark.parametrize("k", range(len(_extra_cases())), ids=[c[0] for c in _extra_cases()])
def test_gradgradcheck_more_primitives(k, backend):
    with gf.backend(backend):
        name, fn, xs = _extra_cases()[k]
        n = sum(x.numel() for x in xs)
        assert gradgradcheck(fn, xs, mode="full" if n <= 48 else "random", n_directions=6), name
