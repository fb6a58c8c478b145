"""The three benchmark networks, defined once as a layer list and built three ways:
with ``gradflow.nn`` + ``gradflow.optim`` (when the training stack is installed),
with ``gradflow.nn.functional`` and raw parameters (fallback), and with PyTorch
(the ``--compare-torch`` rows). All three start from the same NumPy weights.

Layer list entries: ``("conv", c_in, c_out, k, pad)``, ``("relu",)``,
``("pool", 2)`` (max-pool k x k, stride k), ``("flatten",)``, ``("linear", in, out)``.
"""
from __future__ import annotations

import numpy as np

from .flops import CONVNET_FC, CONVNET_STAGES

LR, MOMENTUM = 0.01, 0.9


def _convnet_spec():
    spec = []
    for stage in CONVNET_STAGES:
        for cin, cout in stage:
            spec += [("conv", cin, cout, 3, 1), ("relu",)]
        spec.append(("pool", 2))
    spec.append(("flatten",))
    fc = list(zip(CONVNET_FC[:-1], CONVNET_FC[1:]))
    for i, (a, b) in enumerate(fc):
        spec.append(("linear", a, b))
        if i < len(fc) - 1:
            spec.append(("relu",))
    return spec


SPECS = {
    "mlp_step": [("linear", 784, 256), ("relu",), ("linear", 256, 10)],
    "lenet5_step": [("conv", 1, 6, 5, 2), ("relu",), ("pool", 2),
                    ("conv", 6, 16, 5, 0), ("relu",), ("pool", 2), ("flatten",),
                    ("linear", 400, 120), ("relu",), ("linear", 120, 84), ("relu",),
                    ("linear", 84, 10)],
    "convnet_step": _convnet_spec(),
}

#: input shape of one sample
INPUTS = {"mlp_step": (784,), "lenet5_step": (1, 28, 28), "convnet_step": (3, 32, 32)}


def init_weights(spec, dtype, seed=0) -> list[np.ndarray]:
    """PyTorch's default init (U(-1/sqrt(fan_in), 1/sqrt(fan_in))) in PyTorch's layout:
    weight then bias for each conv/linear layer, in order."""
    rng = np.random.default_rng(seed)
    out = []
    for layer in spec:
        if layer[0] == "conv":
            _, cin, cout, k, _ = layer
            shape, fan_in, n = (cout, cin, k, k), cin * k * k, cout
        elif layer[0] == "linear":
            _, fin, fout = layer
            shape, fan_in, n = (fout, fin), fin, fout
        else:
            continue
        bound = 1.0 / np.sqrt(fan_in)
        out.append(rng.uniform(-bound, bound, shape).astype(dtype))
        out.append(rng.uniform(-bound, bound, (n,)).astype(dtype))
    return out


def batch(name, n, dtype, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.random((n,) + INPUTS[name]).astype(dtype)
    y = rng.integers(0, 10, size=n).astype(np.int64)
    return x, y


def have_gradflow_nn() -> bool:
    import gradflow
    nn, optim = gradflow.nn, gradflow.optim
    return all(hasattr(nn, a) for a in ("Sequential", "Conv2d", "Linear", "ReLU", "MaxPool2d",
                                        "Flatten")) and hasattr(optim, "SGD")


# -- gradflow.nn + gradflow.optim ---------------------------------------------------------------------
def gradflow_nn_model(spec, weights):
    """The ``gradflow.nn.Sequential`` of a layer list, its parameters set to ``weights``."""
    import gradflow
    from gradflow import nn
    layers = []
    for layer in spec:
        kind = layer[0]
        if kind == "conv":
            layers.append(nn.Conv2d(layer[1], layer[2], layer[3], padding=layer[4]))
        elif kind == "linear":
            layers.append(nn.Linear(layer[1], layer[2]))
        elif kind == "relu":
            layers.append(nn.ReLU())
        elif kind == "pool":
            layers.append(nn.MaxPool2d(layer[1], layer[1]))
        elif kind == "flatten":
            layers.append(nn.Flatten())
    model = nn.Sequential(*layers)
    params = list(model.parameters())
    if len(params) != len(weights):
        raise RuntimeError(f"bench: model has {len(params)} parameters, expected {len(weights)}")
    with gradflow.no_grad():
        for p, w in zip(params, weights):
            p.data.copy_(gradflow.tensor(w, dtype=p.dtype))
    return model


def gradflow_nn_step(spec, weights, x, y):
    import gradflow
    import gradflow.nn.functional as F
    model = gradflow_nn_model(spec, weights)
    opt = gradflow.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


# -- fallback: gradflow.nn.functional and raw parameters ------------------------------------------
def gradflow_functional_step(spec, weights, x, y):
    import gradflow
    import gradflow.nn.functional as F
    params = [gradflow.tensor(w, requires_grad=True) for w in weights]
    be = params[0].backend
    bufs = [be.zeros(p.shape, p.dtype) for p in params]
    state = {"first": True}

    def forward(h):
        i = 0
        for layer in spec:
            kind = layer[0]
            if kind == "conv":
                h = F.conv2d(h, params[i], params[i + 1], padding=layer[4])
                i += 2
            elif kind == "linear":
                h = F.linear(h, params[i], params[i + 1])
                i += 2
            elif kind == "relu":
                h = F.relu(h)
            elif kind == "pool":
                h = F.max_pool2d(h, layer[1], layer[1])
            elif kind == "flatten":
                h = h.flatten(1)
        return h

    def step():
        for p in params:
            p.grad = None
        loss = F.cross_entropy(forward(x), y)
        loss.backward()
        for p, buf in zip(params, bufs):
            be.sgd_step_(p.array, p.grad.array, buf, LR, MOMENTUM, 0.0, 0.0, False, state["first"])
        state["first"] = False
        return loss
    return step


def gradflow_step(name, backend, dtype, n, use_nn=None):
    """A zero-argument training step for network ``name`` on ``backend``."""
    import gradflow
    spec = SPECS[name]
    weights = init_weights(spec, dtype)
    xn, yn = batch(name, n, dtype)
    use_nn = have_gradflow_nn() if use_nn is None else use_nn
    prev = gradflow.get_default_dtype()
    gradflow.set_default_dtype(dtype)
    try:
        with gradflow.backend(backend):
            x, y = gradflow.tensor(xn), gradflow.tensor(yn)
            make = gradflow_nn_step if use_nn else gradflow_functional_step
            return make(spec, weights, x, y)
    finally:
        gradflow.set_default_dtype(prev)


# -- PyTorch ------------------------------------------------------------------------------------------------
def torch_step(name, device, dtype, n, compiled=False):
    """A zero-argument PyTorch training step. ``compiled``: the momentum buffers start
    as zeros (the same first update, ``0.9 * 0 + g == g``), so the step that
    ``torch.compile`` traces keeps one optimizer graph instead of recompiling it on
    the second call, once PyTorch would have created the buffers."""
    import torch
    import torch.nn.functional as F
    spec = SPECS[name]
    layers = []
    for layer in spec:
        kind = layer[0]
        if kind == "conv":
            layers.append(torch.nn.Conv2d(layer[1], layer[2], layer[3], padding=layer[4]))
        elif kind == "linear":
            layers.append(torch.nn.Linear(layer[1], layer[2]))
        elif kind == "relu":
            layers.append(torch.nn.ReLU())
        elif kind == "pool":
            layers.append(torch.nn.MaxPool2d(layer[1], layer[1]))
        elif kind == "flatten":
            layers.append(torch.nn.Flatten())
    tdtype = getattr(torch, np.dtype(dtype).name)
    model = torch.nn.Sequential(*layers).to(device=device, dtype=tdtype)
    with torch.no_grad():
        for p, w in zip(model.parameters(), init_weights(spec, dtype)):
            p.copy_(torch.from_numpy(w))
    xn, yn = batch(name, n, dtype)
    x, y = torch.from_numpy(xn).to(device), torch.from_numpy(yn).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    if compiled:
        for p in model.parameters():
            opt.state[p]["momentum_buffer"] = torch.zeros_like(p)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step
