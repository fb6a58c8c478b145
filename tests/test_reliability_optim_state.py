"""Reliability: ``Optimizer.load_state_dict`` checks everything before it changes
anything, and its errors name the group or parameter and the key.

Before this, ``lr=None`` or ``'fast'`` and integer state buffers loaded silently; then
``step()`` raised a raw NumPy ``UFuncTypeError`` or (Numba backend) set every weight to
NaN without a word."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
from gradflow import optim

from conftest import requires_torch

ALL = [("SGD", dict(lr=0.1, momentum=0.9)), ("SGD", dict(lr=0.1)), ("Adam", dict(lr=0.01)),
       ("Adam", dict(lr=0.01, amsgrad=True)), ("AdamW", dict(lr=0.01)), ("Adagrad", dict(lr=0.1)),
       ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)), ("Adadelta", dict(lr=1.0)),
       ("Adamax", dict(lr=0.01)), ("NAdam", dict(lr=0.01)), ("RAdam", dict(lr=0.01))]
STATEFUL = ALL[:1] + ALL[2:]  # plain SGD keeps no state


def _trained(name, kw, shapes=((3, 2), (2,))):
    """An optimizer over fresh parameters after two steps, and its state_dict."""
    params = [nn.Parameter(gf.ones(*s)) for s in shapes]
    opt = getattr(optim, name)(params, **kw)
    for _ in range(2):
        for p in params:
            p.grad = gf.ones(*p.shape) * 0.5
        opt.step()
    return opt, params, opt.state_dict()


def _snapshot(opt):
    groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    state = {id(p): {k: (v.numpy().copy() if hasattr(v, "numpy") else v) for k, v in st.items()}
             for p, st in opt.state.items()}
    return groups, state


def _unchanged(opt, snap):
    groups, state = _snapshot(opt)
    assert groups == snap[0]
    assert state.keys() == snap[1].keys()
    for k in state:
        for name, v in state[k].items():
            np.testing.assert_array_equal(v, snap[1][k][name])


def _fresh(name, kw, shapes=((3, 2), (2,))):
    """A second optimizer that has stepped (so there is state to leave untouched)."""
    opt, params, _ = _trained(name, kw, shapes)
    return opt


def _rejected(name, kw, sd, err, match):
    """Loading ``sd`` into a fresh stepped optimizer raises ``err`` and changes nothing."""
    target = _fresh(name, kw)
    snap = _snapshot(target)
    with pytest.raises(err, match=match):
        target.load_state_dict(sd)
    _unchanged(target, snap)
    return target


@pytest.mark.parametrize("value,err,match", [
    (None, TypeError, r"param_groups\[0\]\['lr'\] must be a number, got NoneType"),
    ("fast", TypeError, r"param_groups\[0\]\['lr'\] must be a number, got str 'fast'"),
    (True, TypeError, r"param_groups\[0\]\['lr'\] must be a number, got bool"),
    (float("nan"), ValueError, r"param_groups\[0\]\['lr'\] must be finite"),
    (float("inf"), ValueError, r"param_groups\[0\]\['lr'\] must be finite"),
    (-0.5, ValueError, r"param_groups\[0\]: Invalid learning rate"),
])
@pytest.mark.parametrize("name,kw", ALL[:3], ids=lambda v: str(v))
def test_bad_learning_rate_is_rejected_and_nothing_changes(name, kw, value, err, match):
    _, _, sd = _trained(name, kw)
    sd["param_groups"][0]["lr"] = value
    _rejected(name, kw, sd, err, rf"{name}\.load_state_dict: {match}")


@pytest.mark.parametrize("key,value,err,match", [
    ("betas", (0.9,), TypeError, r"\['betas'\] must be a tuple of 2 finite numbers"),
    ("betas", (0.9, "x"), TypeError, r"\['betas'\] must be a tuple of 2"),
    ("betas", (0.9, 1.5), ValueError, r"Invalid beta parameters"),
    ("amsgrad", "yes", TypeError, r"\['amsgrad'\] must be a bool"),
    ("eps", -1e-8, ValueError, r"Invalid epsilon"),
    ("weight_decay", [1], TypeError, r"\['weight_decay'\] must be a number"),
])
def test_bad_adam_hyper_parameters_name_group_and_key(key, value, err, match):
    _, _, sd = _trained("Adam", dict(lr=0.01))
    sd["param_groups"][0][key] = value
    _rejected("Adam", dict(lr=0.01), sd, err, match)


def test_range_rules_of_the_constructor_apply_at_load():
    _, _, sd = _trained("SGD", dict(lr=0.1, momentum=0.9))
    sd["param_groups"][0].update(nesterov=True, momentum=0.0)
    with pytest.raises(ValueError, match=r"param_groups\[0\]: Nesterov momentum requires"):
        _fresh("SGD", dict(lr=0.1, momentum=0.9)).load_state_dict(sd)


def test_error_in_the_second_group_leaves_the_first_untouched():
    a, b = nn.Parameter(gf.ones(2)), nn.Parameter(gf.ones(3))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    a.grad, b.grad = gf.ones(2), gf.ones(3)
    opt.step()
    sd = copy.deepcopy(opt.state_dict())
    sd["param_groups"][0]["lr"] = 0.01          # fine
    sd["param_groups"][1]["momentum"] = "high"  # bad
    snap = _snapshot(opt)
    with pytest.raises(TypeError, match=r"param_groups\[1\]\['momentum'\]"):
        opt.load_state_dict(sd)
    _unchanged(opt, snap)
    assert opt.param_groups[0]["lr"] == 0.1


@pytest.mark.parametrize("name,kw", STATEFUL, ids=lambda v: str(v))
def test_integer_state_buffers_are_rejected_on_every_backend(backend, name, kw):
    _, _, sd = _trained(name, kw)
    st = sd["state"][0]
    buffers = [k for k, v in st.items() if getattr(v, "ndim", 0) > 0]
    assert buffers
    st[buffers[0]] = gf.tensor(np.ones((3, 2), dtype=np.int64))
    target = _rejected(name, kw, sd, TypeError,
                       rf"state\[0\] \(group 0\)\['{buffers[0]}'\] has dtype int64.*floating")
    # the checked state still steps to finite weights (what the Numba backend broke)
    target.load_state_dict(_trained(name, kw)[2])
    for p in target.param_groups[0]["params"]:
        p.grad = gf.ones(*p.shape)
    target.step()
    assert all(np.isfinite(p.numpy()).all() for p in target.param_groups[0]["params"])


@pytest.mark.parametrize("mutate,err,match", [
    (lambda st: st.update(step=-1), TypeError, r"\['step'\] must be a step count"),
    (lambda st: st.update(step=2.5), TypeError, r"\['step'\] must be a step count"),
    (lambda st: st.update(step="2"), TypeError, r"\['step'\] must be a step count"),
    (lambda st: st.update(exp_avg=None), TypeError, r"\['exp_avg'\] must be a tensor of shape"),
    (lambda st: st.update(exp_avg=gf.ones(2, 3)), ValueError, r"\['exp_avg'\] has shape \(2, 3\)"),
    (lambda st: st.update(exp_avg=np.zeros((3, 2), dtype=bool)), TypeError, r"dtype bool"),
    (lambda st: st.pop("exp_avg_sq"), ValueError, r"state\[0\] \(group 0\) lacks 'exp_avg_sq'"),
    (lambda st: st.update(momentum_buffer=gf.ones(3, 2)), ValueError,
     r"unexpected state\[0\] \(group 0\)\['momentum_buffer'\]: Adam keeps"),
])
def test_bad_adam_state_names_parameter_and_key(mutate, err, match):
    _, _, sd = _trained("Adam", dict(lr=0.01))
    mutate(sd["state"][0])
    _rejected("Adam", dict(lr=0.01), sd, err, match)


def test_amsgrad_needs_its_extra_buffer():
    _, _, sd = _trained("Adam", dict(lr=0.01))          # no max_exp_avg_sq
    sd["param_groups"][0]["amsgrad"] = True
    with pytest.raises(ValueError, match="lacks 'max_exp_avg_sq'"):
        _fresh("Adam", dict(lr=0.01)).load_state_dict(sd)


@pytest.mark.parametrize("mutate,err,match", [
    (lambda sd: sd.update(param_groups={"lr": 1}), TypeError, r"'param_groups' must be a list"),
    (lambda sd: sd.update(state=[1]), TypeError, r"'state' must be a dict"),
    (lambda sd: sd["param_groups"].__setitem__(0, [0, 1]), TypeError, r"param_groups\[0\] must be a dict"),
    (lambda sd: sd["param_groups"][0].update(params=[0, "w"]), TypeError,
     r"param_groups\[0\]\['params'\] must be a list of parameter indices"),
    (lambda sd: sd["param_groups"][0].update(params=[0, 0]), ValueError, r"index 0 appears twice"),
    (lambda sd: sd["param_groups"][0].update(params=[0]), ValueError, r"doesn't match"),
    (lambda sd: sd["state"].__setitem__(7, {}), ValueError, r"parameter index 7, which no group has"),
    (lambda sd: sd["state"].__setitem__(1.5, {}), TypeError, r"state keys must be parameter indices"),
    (lambda sd: sd["state"].__setitem__(0, [1, 2]), TypeError, r"state\[0\] \(group 0\) must be a dict"),
])
def test_bad_structure_is_rejected(mutate, err, match):
    _, _, sd = _trained("SGD", dict(lr=0.1, momentum=0.9))
    mutate(sd)
    _rejected("SGD", dict(lr=0.1, momentum=0.9), sd, err, match)


def test_valid_round_trips_still_load_through_save(tmp_path):
    for name, kw in ALL:
        opt, params, sd = _trained(name, kw)
        gf.save(sd, tmp_path / "o.npz")
        target = _fresh(name, dict(kw, lr=123.0))
        target.load_state_dict(gf.load(tmp_path / "o.npz"))
        assert target.param_groups[0]["lr"] == kw["lr"]
        first = target.param_groups[0]["params"][0]
        assert set(target.state.get(first, {})) == set(sd["state"].get(0, {}))


def test_add_param_group_checks_the_group_too():
    opt = optim.SGD([nn.Parameter(gf.ones(2))], lr=0.1)
    with pytest.raises(TypeError, match="learning rate"):
        opt.add_param_group({"params": [nn.Parameter(gf.ones(2))], "lr": "fast"})
    with pytest.raises(ValueError, match="learning rate"):
        opt.add_param_group({"params": [nn.Parameter(gf.ones(2))], "lr": -1.0})
    assert len(opt.param_groups) == 1


@requires_torch
def test_a_torch_adam_state_dict_loads_and_steps_like_torch():
    """torch keeps ``step`` as a float tensor; converted to NumPy it is a valid count."""
    import torch
    w0 = np.array([[0.5, -1.0], [2.0, 0.1]])
    tp = torch.nn.Parameter(torch.tensor(w0))
    topt = torch.optim.Adam([tp], lr=0.1)
    for _ in range(3):
        tp.grad = torch.ones_like(tp)
        topt.step()
    tsd = topt.state_dict()
    sd = {"state": {k: {n: v.numpy() for n, v in st.items()} for k, st in tsd["state"].items()},
          "param_groups": copy.deepcopy(tsd["param_groups"])}
    p = nn.Parameter(gf.tensor(tp.detach().numpy().copy()))
    opt = optim.Adam([p], lr=0.5)
    opt.load_state_dict(sd)
    assert opt.state[p]["step"] == 3
    p.grad, tp.grad = gf.ones(2, 2, dtype=gf.float64), torch.ones_like(tp)
    opt.step()
    topt.step()
    np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-12)


def test_loaded_buffers_do_not_alias_the_state_dict():
    """The updates run in place: a loaded buffer sharing memory with the caller's array
    would change the checkpoint (or another optimizer's state) behind its back."""
    _, _, sd = _trained("Adam", dict(lr=0.01))
    host = {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in sd["state"][0].items()}
    before = host["exp_avg"].copy()
    target = _fresh("Adam", dict(lr=0.01))
    target.load_state_dict({"state": {0: host}, "param_groups": sd["param_groups"]})
    for p in target.param_groups[0]["params"]:
        p.grad = gf.ones(*p.shape) * 3.0
    target.step()
    np.testing.assert_array_equal(host["exp_avg"], before)
