"""Tensor's math surface, bound onto the class by gradflow/tensor_methods.py (the core in
gradflow/tensor.py imports no ops): the bound members behave as methods written in the
class body would."""
from __future__ import annotations

import gradflow as gf
from gradflow import tensor_methods
from gradflow.tensor import Tensor


def test_tensors_stay_hashable():
    """A class body that defines __eq__ gets __hash__ = None; binding must not copy it."""
    t = gf.zeros(2, requires_grad=True)
    assert hash(t) == id(t)
    assert {t: 1}[t] == 1
    assert t in {t}


def test_members_read_as_tensor_methods():
    assert Tensor.sum.__qualname__ == "Tensor.sum"
    assert Tensor.__add__.__qualname__ == "Tensor.__add__"
    assert Tensor.T.fget.__qualname__ == "Tensor.T"
    assert Tensor.clamp is Tensor.clip and Tensor.mH is Tensor.mT


def test_every_surface_member_is_bound():
    skip = {"__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__hash__"}
    for name, member in vars(tensor_methods._TensorSurface).items():
        if name not in skip:
            assert Tensor.__dict__[name] is member, name


def test_bound_operators_and_methods_work():
    x = gf.tensor([[1.0, -2.0], [3.0, 4.0]], requires_grad=True)
    y = ((x + 1) * x).sum() + x.reshape(4).softmax(0)[0] + (x @ x.T).mean()
    y.backward()
    assert x.grad.shape == (2, 2)
    assert (x == x).all().item() and not (x != x).any().item()
    z = gf.zeros(3)
    z += 2
    z[1] = 5.0
    assert z.tolist() == [2.0, 5.0, 2.0]
