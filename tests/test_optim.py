"""gradflow.optim: update rules against PyTorch (float64 trajectories) and against
hand-derived values; param groups; state_dict round trips; lr schedules."""
from __future__ import annotations

import math

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.optim as optim
from gradflow.optim import lr_scheduler
from conftest import requires_torch

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.3, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, amsgrad=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.1)),
    ("Adadelta", dict(lr=1.0, weight_decay=0.1)),
]


def _trajectory_gf(name, kw, w0, grads, backend=None):
    p = nn.Parameter(gf.tensor(w0, backend=backend))
    opt = getattr(optim, name)([p], **kw)
    out = []
    for g in grads:
        p.grad = gf.tensor(g, backend=backend)
        opt.step()
        out.append(p.numpy().copy())
    return np.array(out), opt


@requires_torch
@pytest.mark.parametrize("name,kw", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_trajectory_matches_pytorch_float64(name, kw):
    import torch
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((3, 4))
    grads = rng.standard_normal((8, 3, 4))
    ours, _ = _trajectory_gf(name, kw, w0, grads)
    tp = torch.nn.Parameter(torch.tensor(w0))
    topt = getattr(torch.optim, name)([tp], **kw)
    ref = []
    for g in grads:
        tp.grad = torch.tensor(g)
        topt.step()
        ref.append(tp.detach().numpy().copy())
    np.testing.assert_allclose(ours, np.array(ref), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,kw", CONFIGS[:8:2], ids=["SGD", "SGD-nesterov", "Adam", "AdamW"])
def test_backends_agree_with_numpy(backend, name, kw):
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((5, 3))
    grads = rng.standard_normal((4, 5, 3))
    ref, _ = _trajectory_gf(name, kw, w0, grads, backend="numpy")
    ours, _ = _trajectory_gf(name, kw, w0, grads, backend=backend)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-14)


def test_sgd_hand_derived():
    p = nn.Parameter(gf.tensor([1.0, 2.0], dtype=gf.float64))
    opt = optim.SGD([p], lr=0.1, momentum=0.5)
    p.grad = gf.tensor([1.0, 1.0], dtype=gf.float64)
    opt.step()  # buf = g = 1 ; p = p - 0.1
    np.testing.assert_allclose(p.numpy(), [0.9, 1.9])
    opt.step()  # buf = 0.5*1 + 1 = 1.5 ; p -= 0.15
    np.testing.assert_allclose(p.numpy(), [0.75, 1.75])


def test_adam_first_step_is_lr_times_sign():
    p = nn.Parameter(gf.tensor([1.0, -1.0, 0.5], dtype=gf.float64))
    opt = optim.Adam([p], lr=0.01)
    p.grad = gf.tensor([3.0, -0.2, 10.0], dtype=gf.float64)
    opt.step()  # m_hat = g, v_hat = g^2 -> step = lr * g/(|g|+eps)
    np.testing.assert_allclose(p.numpy(), [0.99, -0.99, 0.49], rtol=1e-7)


def test_float32_parameters_stay_float32():
    p = nn.Parameter(gf.ones(3))
    for opt in (optim.SGD([p], lr=0.1, momentum=0.9), optim.Adam([p]), optim.RMSprop([p])):
        p.grad = gf.ones(3)
        opt.step()
        assert p.dtype == np.float32
        assert all(v.dtype == np.float32 for v in opt.state[p].values() if isinstance(v, gf.Tensor))


def test_param_groups_and_zero_grad():
    a, b = nn.Parameter(gf.ones(2)), nn.Parameter(gf.ones(2))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 1.0
    a.grad, b.grad = gf.ones(2), gf.ones(2)
    opt.step()
    np.testing.assert_allclose(a.numpy(), [0.9, 0.9])
    np.testing.assert_allclose(b.numpy(), [0.0, 0.0])
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    c = nn.Parameter(gf.ones(1))
    opt.add_param_group({"params": c, "lr": 0.5})
    assert len(opt.param_groups) == 3
    with pytest.raises(ValueError, match="more than one"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.Adam([a], lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([a], lr=0.1, nesterov=True)


def test_params_without_grad_are_skipped():
    a, b = nn.Parameter(gf.ones(2)), nn.Parameter(gf.ones(2))
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = gf.ones(2)
    opt.step()
    assert np.all(b.numpy() == 1) and b not in opt.state


@pytest.mark.parametrize("name,kw", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_state_dict_resume_continues_identically(name, kw, tmp_path):
    rng = np.random.default_rng(2)
    w0 = rng.standard_normal(4)
    grads = rng.standard_normal((6, 4))
    full, _ = _trajectory_gf(name, kw, w0, grads)
    first, opt = _trajectory_gf(name, kw, w0, grads[:3])
    path = tmp_path / "opt.npz"
    gf.save(opt.state_dict(), path)
    p = nn.Parameter(gf.tensor(first[-1]))
    opt2 = getattr(optim, name)([p], lr=123.0)  # hyper-parameters come from the state dict
    opt2.load_state_dict(gf.load(path))
    assert opt2.param_groups[0]["lr"] == kw["lr"]
    for g in grads[3:]:
        p.grad = gf.tensor(g)
        opt2.step()
    np.testing.assert_allclose(p.numpy(), full[-1], rtol=1e-13, atol=1e-15)


def test_load_state_dict_validates():
    a = nn.Parameter(gf.ones(2))
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    a.grad = gf.ones(2)
    opt.step()
    sd = opt.state_dict()
    other = optim.SGD([nn.Parameter(gf.ones(2)), nn.Parameter(gf.ones(2))], lr=0.1)
    with pytest.raises(ValueError, match="doesn't match"):
        other.load_state_dict(sd)
    wrong = optim.SGD([nn.Parameter(gf.ones(3))], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="shape"):
        wrong.load_state_dict(sd)
    assert wrong.state == {}


@requires_torch
def test_state_dict_layout_matches_pytorch():
    import torch
    a = nn.Parameter(gf.ones(2))
    ta = torch.nn.Parameter(torch.ones(2))
    opt, topt = optim.Adam([a]), torch.optim.Adam([ta])
    a.grad, ta.grad = gf.ones(2), torch.ones(2)
    opt.step()
    topt.step()
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert set(sd) == set(tsd) and list(sd["state"]) == list(tsd["state"])
    assert set(sd["state"][0]) == set(tsd["state"][0])
    assert set(sd["param_groups"][0]) <= set(tsd["param_groups"][0]) | {"maximize"}


def test_optimizer_follows_module_moved_after_creation():
    m = nn.Linear(2, 1)
    opt = optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m(gf.ones(1, 2)).sum().backward()
    opt.step()
    m.double()
    m.zero_grad()
    m(gf.ones(1, 2, dtype=gf.float64)).sum().backward()
    opt.step()
    assert opt.state[m.weight]["momentum_buffer"].dtype == np.float64


def test_training_reduces_loss():
    gf.manual_seed(0)
    x = gf.randn(64, 3)
    y = x @ gf.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    for name, kw in [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.05)), ("RMSprop", dict(lr=0.01)),
                     ("Adagrad", dict(lr=0.5)), ("Adadelta", dict(lr=5.0)), ("AdamW", dict(lr=0.05))]:
        m = nn.Linear(3, 1)
        opt = getattr(optim, name)(m.parameters(), **kw)
        first = None
        for _ in range(60):
            opt.zero_grad()
            loss = nn.MSELoss()(m(x), y)
            loss.backward()
            opt.step()
            first = first if first is not None else loss.item()
        assert loss.item() < 0.2 * first, name


# -- schedules -----------------------------------------------------------------------------------------
SCHEDULES = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[2, 5, 5], gamma=0.1)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=4, eta_min=0.01)),
    ("LinearLR", dict(start_factor=0.25, total_iters=4)),
]


def _lrs(mod, opt_cls, sched, kw, n=12):
    p = [mod.nn.Parameter(mod.ones(1))] if hasattr(mod, "nn") else None
    opt = opt_cls(p, lr=0.1)
    s = getattr(mod.optim.lr_scheduler, sched)(opt, **kw)
    out = []
    for _ in range(n):
        opt.step()
        s.step()
        out.append(s.get_last_lr()[0])
    return out


@requires_torch
@pytest.mark.parametrize("name,kw", SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_schedules_match_pytorch(name, kw):
    import torch
    ours = _lrs(gf, optim.SGD, name, kw)
    ref = _lrs(torch, torch.optim.SGD, name, kw)
    np.testing.assert_allclose(ours, ref, rtol=1e-13)


def test_schedules_hand_derived():
    p = nn.Parameter(gf.ones(1))
    opt = optim.SGD([p], lr=1.0)
    s = lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        s.step()
    np.testing.assert_allclose(lrs, [1, 1, 0.1, 0.1, 0.01])
    opt = optim.SGD([p], lr=1.0)
    s = lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(4):
        s.step()
        lrs.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs, [(1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)], atol=1e-12)


def test_scheduler_state_dict_roundtrip():
    p = nn.Parameter(gf.ones(1))
    opt = optim.SGD([p], lr=1.0)
    s = lr_scheduler.MultiStepLR(opt, milestones=[1, 3])
    s.step()
    s.step()
    sd = s.state_dict()
    opt2 = optim.SGD([p], lr=1.0)
    s2 = lr_scheduler.MultiStepLR(opt2, milestones=[9])
    s2.load_state_dict(sd)
    assert s2.last_epoch == 2 and set(s2.milestones) == {1, 3}


def test_reduce_on_plateau():
    p = nn.Parameter(gf.ones(1))
    opt = optim.SGD([p], lr=1.0)
    s = lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5)
    for loss in [1.0, 0.9, 0.9, 0.9, 0.9]:
        s.step(loss)
    assert opt.param_groups[0]["lr"] == 0.5
