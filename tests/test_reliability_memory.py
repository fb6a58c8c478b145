"""Reliability: graph memory.

* ``backward()`` releases every node's saved tensors (weak references prove the
  arrays die while the user still holds the loss); ``retain_graph=True`` keeps them;
* the graph is freed by reference counting alone -- no reference cycles, so it does
  not wait for the cyclic garbage collector;
* training LeNet-5 for 300 steps keeps process RSS flat after warm-up (no growth
  from retained graphs, optimizer state or caches) and the number of live Python
  objects constant.
"""
from __future__ import annotations

import gc
import os
import weakref

import numpy as np
import pytest

from conftest import backend_params
import gradflow as gf
import gradflow.nn.functional as F
from gradflow.autograd import Context


def _graph_nodes(t):
    """Every Context reachable from ``t`` (before backward frees the links)."""
    seen, stack = [], [t._node]
    while stack:
        n = stack.pop()
        if isinstance(n, Context) and all(n is not s for s in seen):
            seen.append(n)
            stack.extend(n.parents)
    return seen


def _saved_arrays(nodes, exclude):
    """(name, weakref) for every array/Tensor a node keeps for backward, except ``exclude``."""
    refs = []
    ex = {id(a) for a in exclude}
    for n in nodes:
        for k, v in list(n.__dict__.items()):
            if isinstance(v, np.ndarray) and id(v) not in ex:
                refs.append((f"{n.name}.{k}", weakref.ref(v)))
        for t in n._saved:
            if t is not None and id(t.array) not in ex:
                refs.append((f"{n.name}.saved", weakref.ref(t.array)))
    return refs


def _small_net(x, params, target):
    w1, b1, w2, b2 = params
    h = F.conv2d(x, w1, b1, padding=1).relu()
    h = F.max_pool2d(h, 2)
    h = F.avg_pool2d(h, 2)
    h = h.reshape(h.shape[0], -1)
    logits = (h @ w2 + b2).tanh() * 3.0
    return F.cross_entropy(logits, target)


def _make_params():
    return [gf.randn(4, 1, 3, 3, requires_grad=True), gf.zeros(4, requires_grad=True),
            gf.randn(4 * 2 * 2, 3, requires_grad=True), gf.zeros(3, requires_grad=True)]


def test_backward_releases_saved_tensors_while_loss_is_alive():
    gc.disable()
    try:
        params = _make_params()
        x = gf.randn(2, 1, 8, 8)
        target = gf.tensor([0, 2])
        loss = _small_net(x, params, target)
        nodes = _graph_nodes(loss)
        refs = _saved_arrays(nodes, [x.array, target.array] + [p.array for p in params])
        node_refs = [weakref.ref(n) for n in nodes if n is not loss._node]
        assert len(refs) >= 6, "the graph should keep intermediate arrays before backward"
        del nodes
        assert all(r() is not None for _, r in refs)
        loss.backward()
        alive = [name for name, r in refs if r() is not None]
        assert not alive, f"saved data still alive after backward: {alive}"
        # intermediate graph nodes are gone too (only the loss's own node remains)
        assert all(r() is None for r in node_refs)
        assert loss._node.freed and all(p.grad is not None for p in params)
    finally:
        gc.enable()


def test_retain_graph_keeps_saved_tensors_and_second_backward_matches():
    params = _make_params()
    x = gf.randn(2, 1, 8, 8)
    target = gf.tensor([1, 0])
    loss = _small_net(x, params, target)
    refs = _saved_arrays(_graph_nodes(loss), [x.array, target.array] + [p.array for p in params])
    loss.backward(retain_graph=True)
    assert all(r() is not None for _, r in refs)
    g1 = [p.grad.numpy().copy() for p in params]
    loss.backward()                      # accumulates, then frees
    for p, g in zip(params, g1):
        np.testing.assert_allclose(p.grad.numpy(), 2 * g, rtol=1e-6, atol=1e-7)
    assert all(r() is None for _, r in refs)
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_graph_is_freed_by_refcount_alone_no_cycles():
    gc.collect()
    gc.disable()
    try:
        params = _make_params()
        x = gf.randn(2, 1, 8, 8)
        loss = _small_net(x, params, gf.tensor([0, 1]))
        node_refs = [weakref.ref(n) for n in _graph_nodes(loss)]
        # dropped without backward: everything must go at once, not at the next gc pass
        del loss
        assert all(r() is None for r in node_refs)
        loss = _small_net(x, params, gf.tensor([0, 1]))
        node_refs = [weakref.ref(n) for n in _graph_nodes(loss)]
        loss.backward(retain_graph=True)
        del loss
        assert all(r() is None for r in node_refs)
    finally:
        gc.enable()


def test_no_grad_records_no_graph():
    params = _make_params()
    with gf.no_grad():
        loss = _small_net(gf.randn(2, 1, 8, 8), params, gf.tensor([0, 1]))
    assert loss._node is None and not loss.requires_grad


# ---------------------------------------------------------------------------
# 300 LeNet-5 steps: RSS stays flat
# ---------------------------------------------------------------------------
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def _lenet_step_factory():
    """A LeNet-5 training step: nn + optim (SGD with momentum) when they exist,
    else the same network in functional form with a hand-written momentum update."""
    try:
        import gradflow.nn as nn
        from gradflow.optim import SGD
        model = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, 10))
        opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()

        def step(x, y):
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            return loss.item()
        return step
    except ImportError:
        pass
    shapes = [(6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (400, 120), (120,), (120, 84), (84,),
              (84, 10), (10,)]
    params = [(gf.randn(*s) * (0.1 if len(s) > 1 else 0.0)).detach().requires_grad_() for s in shapes]
    mom = [np.zeros(s, np.float32) for s in shapes]

    def step(x, y):
        c1, b1, c2, b2, l1, d1, l2, d2, l3, d3 = params
        h = F.max_pool2d(F.conv2d(x, c1, b1, padding=2).relu(), 2)
        h = F.max_pool2d(F.conv2d(h, c2, b2).relu(), 2).flatten(1)
        h = (h @ l1 + d1).relu()
        h = (h @ l2 + d2).relu()
        loss = F.cross_entropy(h @ l3 + d3, y)
        for p in params:
            p.grad = None
        loss.backward()
        with gf.no_grad():
            for p, m in zip(params, mom):
                m *= 0.9
                m += p.grad.numpy()
                p.data.add_(gf.tensor(m) * -0.01)
        return loss.item()
    return step


def _cpu_backends():
    return backend_params(("numpy", "numba"))


@pytest.mark.parametrize("backend_name", _cpu_backends())
def test_lenet5_300_steps_rss_flat_after_warmup(backend_name):
    with gf.backend(backend_name):
        _lenet_rss(backend_name)


def _lenet_rss(backend_name):
    gf.manual_seed(0)
    rng = np.random.default_rng(0)
    batches = [(gf.tensor(rng.standard_normal((8, 1, 28, 28)).astype(np.float32)),
                gf.tensor(rng.integers(0, 10, 8))) for _ in range(10)]
    step = _lenet_step_factory()
    rss, objs, losses = {}, {}, []
    for i in range(300):
        losses.append(step(*batches[i % len(batches)]))
        if i + 1 in (50, 300):
            gc.collect()
            rss[i + 1] = _rss_bytes()
            objs[i + 1] = len(gc.get_objects())
    assert np.isfinite(losses).all()
    assert np.mean(losses[-20:]) < np.mean(losses[:20]), "the net should at least fit 10 batches"
    growth = rss[300] - rss[50]
    assert growth < 30 * 2**20, \
        f"{backend_name}: RSS grew {growth / 2**20:.1f} MiB between step 50 and 300"
    # a leak of graph nodes would show here long before it shows in RSS
    assert objs[300] - objs[50] < 500, f"live objects grew {objs[50]} -> {objs[300]}"
