"""The benchmark workloads, each written for gradflow and for PyTorch.

A workload expands into *cases* (one per mode and size). Each case can be built
for a gradflow backend (``build_gradflow``) or for PyTorch on a device
(``build_torch``); a build returns a zero-argument callable that does one call /
one training step and returns the loss (or output). Inputs come from a seeded
NumPy generator, so every implementation computes on the same numbers.

| workload     | modes          | size swept       | shape                                          |
|--------------|----------------|------------------|------------------------------------------------|
| matmul       | fwd            | n (square)       | (n, n) @ (n, n)                                |
| conv2d       | fwd, fwd+bwd   | batch N          | x (N, 32, 32, 32) * w (64, 32, 3, 3), pad 1, no bias |
| maxpool2d    | fwd, fwd+bwd   | batch N          | 2x2 stride 2 on (N, 64, 32, 32)                |
| softmax_xent | fwd+bwd        | batch N          | logits (N, 1000), int64 targets, mean          |
| mlp_step     | step           | batch N          | 784-256-10, ReLU, SGD momentum 0.9             |
| lenet5_step  | step           | batch N          | LeNet-5 on 1x28x28, SGD momentum 0.9           |
| convnet_step | step           | batch N          | VGG-style 3x32x32 net, SGD momentum 0.9        |

"fwd" of conv2d/maxpool2d runs with autograd recording (inputs require grad),
as in training; "fwd+bwd" adds ``backward`` with a fixed upstream gradient and
computes both input and weight gradients.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import flops, models

CONV_C, CONV_HW, CONV_K = 32, 32, 64
POOL_C, POOL_HW = 64, 32
XENT_CLASSES = 1000


@dataclass(frozen=True)
class Workload:
    name: str
    modes: tuple
    default_sizes: tuple
    size_kind: str          # "batch" or "n" (matmul's square size)
    doc: str


WORKLOADS = {w.name: w for w in [
    Workload("matmul", ("fwd",), (256, 512, 1024), "n", "square (n, n) @ (n, n)"),
    Workload("conv2d", ("fwd", "fwd+bwd"), (64,), "batch",
             f"x (N, {CONV_C}, {CONV_HW}, {CONV_HW}) * w ({CONV_K}, {CONV_C}, 3, 3), pad 1"),
    Workload("maxpool2d", ("fwd", "fwd+bwd"), (64,), "batch",
             f"2x2/2 max-pool on (N, {POOL_C}, {POOL_HW}, {POOL_HW})"),
    Workload("softmax_xent", ("fwd+bwd",), (256,), "batch",
             f"cross-entropy of (N, {XENT_CLASSES}) logits"),
    Workload("mlp_step", ("step",), (64,), "batch", "MLP 784-256-10 train step, SGD momentum"),
    Workload("lenet5_step", ("step",), (64, 256), "batch", "LeNet-5 train step, SGD momentum"),
    Workload("convnet_step", ("step",), (64,), "batch",
             "VGG-style CIFAR net (2x[conv3x3 32], pool, 2x[conv3x3 64], pool, 4096-128-10) step"),
]}

DEFAULT_WORKLOADS = list(WORKLOADS)


@dataclass(frozen=True)
class Case:
    workload: str
    mode: str
    size: int               # batch size N, or n for matmul
    dtype: str

    @property
    def name(self) -> str:
        if len(WORKLOADS[self.workload].modes) == 1:
            return self.workload
        return self.workload + {"fwd": "_fwd", "fwd+bwd": "_fwdbwd"}[self.mode]

    @property
    def samples(self) -> int | None:
        """Samples per call (None for matmul, where samples/s means nothing)."""
        return None if self.workload == "matmul" else self.size

    @property
    def flop(self) -> int | None:
        n = self.size
        if self.workload == "matmul":
            return flops.matmul(n)
        if self.workload == "conv2d":
            f = flops.conv2d(n, CONV_C, CONV_HW, CONV_HW, CONV_K, 3, 3, pad=1)
            return f if self.mode == "fwd" else 3 * f
        if self.workload in models.SPECS:
            return getattr(flops, self.workload)(n)
        return None

    def describe(self) -> str:
        return WORKLOADS[self.workload].doc


def cases(workload: str, sizes, dtype: str) -> list[Case]:
    w = WORKLOADS[workload]
    return [Case(workload, mode, int(s), dtype) for s in sizes for mode in w.modes]


# -- gradflow ------------------------------------------------------------------------------------------
def _data(case: Case):
    """NumPy inputs for the single-op workloads (seeded)."""
    rng = np.random.default_rng(3)
    dt = np.dtype(case.dtype)
    n = case.size

    def normal(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dt)
    if case.workload == "matmul":
        return {"a": normal(n, n), "b": normal(n, n)}
    if case.workload == "conv2d":
        return {"x": normal(n, CONV_C, CONV_HW, CONV_HW), "w": normal(CONV_K, CONV_C, 3, 3, scale=0.05),
                "gy": normal(n, CONV_K, CONV_HW, CONV_HW)}
    if case.workload == "maxpool2d":
        return {"x": normal(n, POOL_C, POOL_HW, POOL_HW),
                "gy": normal(n, POOL_C, POOL_HW // 2, POOL_HW // 2)}
    if case.workload == "softmax_xent":
        return {"x": normal(n, XENT_CLASSES), "t": rng.integers(0, XENT_CLASSES, n).astype(np.int64)}
    raise KeyError(case.workload)


def _build_op(case: Case, F, t):
    """The op workloads, written once: gradflow and PyTorch share this code because
    gradflow follows PyTorch's API. ``F`` is the functional module, ``t(name, grad)``
    makes a tensor from the case's data."""
    if case.workload == "matmul":
        a, b = t("a"), t("b")
        return lambda: a @ b
    if case.workload == "conv2d":
        x, w, gy = t("x", True), t("w", True), t("gy")
        if case.mode == "fwd":
            return lambda: F.conv2d(x, w, padding=1)

        def conv_fb():
            x.grad = w.grad = None
            y = F.conv2d(x, w, padding=1)
            y.backward(gy)
            return y
        return conv_fb
    if case.workload == "maxpool2d":
        x, gy = t("x", True), t("gy")
        if case.mode == "fwd":
            return lambda: F.max_pool2d(x, 2, 2)

        def pool_fb():
            x.grad = None
            y = F.max_pool2d(x, 2, 2)
            y.backward(gy)
            return y
        return pool_fb
    if case.workload == "softmax_xent":
        x, tgt = t("x", True), t("t")

        def xent():
            x.grad = None
            loss = F.cross_entropy(x, tgt)
            loss.backward()
            return loss
        return xent
    raise KeyError(case.workload)


def build_gradflow(case: Case, backend: str):
    """One call of ``case`` on gradflow backend ``backend`` (a name)."""
    import gradflow
    import gradflow.nn.functional as F
    if case.workload in models.SPECS:
        return models.gradflow_step(case.workload, backend, case.dtype, case.size)
    d = _data(case)
    return _build_op(case, F, lambda name, grad=False: gradflow.tensor(
        d[name], requires_grad=grad, backend=backend))


# -- PyTorch (the same workloads, for --compare-torch) -------------------------------------------
def build_torch(case: Case, device: str, compiled: bool = False):
    """One call of ``case`` in PyTorch on ``device``; ``compiled``: the same callable
    through ``torch.compile`` (inductor, static shapes), graph-breaking at
    ``backward()``, so a step is a compiled forward + loss, AOTAutograd's compiled
    backward and a compiled optimizer update. Dynamo is reset first, so every
    case compiles from scratch and its first call holds its whole compile time."""
    import torch
    import torch.nn.functional as F
    if case.workload in models.SPECS:
        fn = models.torch_step(case.workload, device, case.dtype, case.size, compiled=compiled)
    else:
        d = _data(case)
        fn = _build_op(case, F, lambda name, grad=False: torch.from_numpy(d[name]).to(
            device).requires_grad_(grad))
    if not compiled:
        return fn
    import torch._dynamo
    torch._dynamo.reset()
    return torch.compile(fn, backend="inductor", dynamic=False)


# -- the NumPy inputs, for implementations in other processes (the JAX worker) ----------------
def numpy_inputs(case: Case) -> dict:
    """The arrays every implementation of ``case`` starts from: ``p0 .. pK`` (weights in
    PyTorch's layout), ``x``, ``y`` for the training steps; the op's arrays otherwise."""
    if case.workload in models.SPECS:
        ws = models.init_weights(models.SPECS[case.workload], case.dtype)
        x, y = models.batch(case.workload, case.size, case.dtype)
        return {**{f"p{i}": w for i, w in enumerate(ws)}, "x": x, "y": y}
    return _data(case)
