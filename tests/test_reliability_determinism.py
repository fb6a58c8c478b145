"""Reliability: determinism.

The same seed gives bit-identical training -- weights compared with
``array_equal`` after a few steps of a small CNN (conv, batch norm, dropout,
pooling, linear, cross-entropy, SGD with momentum and Adam) -- on the NumPy
backend and on the Numba backend, twice in one process and in a fresh process
(different ``PYTHONHASHSEED``). A different seed gives different weights.

Not promised: bit-equality *between* backends, or between runs with different
thread counts on the Numba backend (its parallel kernels split work per thread;
see the README's Reliability section).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import backend_params

TRAIN_SRC = r'''
import numpy as np
import gradflow as gf
import gradflow.nn.functional as F


def train(backend, seed=1234, steps=4):
    with gf.backend(backend):
        gf.manual_seed(seed)
        try:
            import gradflow.nn as nn
            from gradflow.optim import SGD, Adam
            model = nn.Sequential(
                nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(4, 8, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Dropout(0.3),
                nn.Linear(8 * 2 * 2, 10))
            params = list(model.parameters())
            opts = [SGD(params[:4], lr=0.05, momentum=0.9), Adam(params[4:], lr=1e-2)]
            loss_fn = nn.CrossEntropyLoss()

            def forward(x, y):
                return loss_fn(model(x), y)

            def update():
                for o in opts:
                    o.step()

            def zero():
                for o in opts:
                    o.zero_grad()
            state = lambda: [p.numpy() for p in params] + [
                b.numpy() for _, b in model.named_buffers()]
        except ImportError:
            params = [gf.randn(4, 1, 3, 3, requires_grad=True), gf.zeros(4, requires_grad=True),
                      gf.randn(8, 4, 3, 3, requires_grad=True), gf.randn(32, 10, requires_grad=True)]

            def forward(x, y):
                h = F.max_pool2d(F.conv2d(x, params[0], params[1], padding=1).relu(), 2)
                h = F.avg_pool2d(F.conv2d(h, params[2]).relu(), 2).flatten(1)
                h = F.dropout(h, 0.3, training=True)
                return F.cross_entropy(h @ params[3], y)

            def update():
                with gf.no_grad():
                    for p in params:
                        p.data.add_(p.grad * -0.05)

            def zero():
                for p in params:
                    p.grad = None
            state = lambda: [p.numpy() for p in params]
        x = gf.randn(16, 1, 12, 12)
        y = gf.randint(0, 10, (16,))
        losses = []
        for _ in range(steps):
            zero()
            loss = forward(x, y)
            loss.backward()
            update()
            losses.append(loss.item())
        return [np.array(a, copy=True) for a in state()], losses


def digest(arrays):
    import hashlib
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.dtype).encode() + str(a.shape).encode() + np.ascontiguousarray(a).tobytes())
    return h.hexdigest()
'''

_ns: dict = {}
exec(compile(TRAIN_SRC, "<determinism-train>", "exec"), _ns)
train, digest = _ns["train"], _ns["digest"]


def _cpu_backends():
    return backend_params(("numpy", "numba"))


@pytest.mark.parametrize("backend", _cpu_backends())
def test_same_seed_bit_identical_in_process(backend):
    w1, l1 = train(backend)
    w2, l2 = train(backend)
    assert l1 == l2
    assert len(w1) == len(w2)
    for a, b in zip(w1, w2):
        assert np.array_equal(a, b), "same seed, same process: weights must be bit-identical"
    w3, _ = train(backend, seed=99)
    assert not all(np.array_equal(a, b) for a, b in zip(w1, w3)), "the seed must matter"
    assert l1[-1] != l1[0] and all(np.isfinite(l1))


@pytest.mark.parametrize("backend", _cpu_backends())
def test_same_seed_bit_identical_across_processes(backend):
    here, _ = train(backend)
    code = TRAIN_SRC + f"\nw, _ = train({backend!r})\nprint('DIGEST', digest(w))\n"
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=240, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr[-3000:]
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("DIGEST")]
    assert line and line[-1].split()[1] == digest(here), \
        "a fresh process with the same seed must produce bit-identical weights"


def test_digest_helper_is_sensitive():
    a = [np.zeros(3, np.float32)]
    b = [np.zeros(3, np.float32)]
    b[0][1] = np.float32(1e-30)
    assert digest(a) != digest(b)
    assert hashlib.sha256  # stdlib hashing only: no pickling of arrays
