"""Dataset distillation (Wang, Zhu, Torralba & Efros 2018).

Learn a handful of synthetic images ``S`` (with fixed labels) and a learning
rate ``eta`` such that a *freshly initialised* network, trained on ``S`` alone
for a few gradient steps, classifies real data well::

    theta_0      ~ the network's random initialisation      (a new draw every step)
    theta_{t+1}  = theta_t - eta * d loss(S; theta_t) / d theta_t       t < T
    outer loss   = loss(real batch; theta_T)          -> Adam on S and log(eta)

The outer gradient flows back through all T training steps -- it differentiates
the inner gradients themselves, which is what ``create_graph=True`` records.
Networks are given functionally: ``init(seed)`` returns a list of parameter
tensors and ``forward(params, x)`` the logits, so the inner updates can be
ordinary tensor expressions.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["distill_dataset", "train_on", "mlp_init", "mlp_forward"]


def mlp_init(seed, sizes=(784, 64, 10), dtype="float32"):
    """Parameters [W1, b1, W2, b2, ...] of an MLP, uniform(-1/sqrt(fan_in), +) as
    ``nn.Linear`` initialises them, from ``seed``."""
    from ..creation import tensor
    rng = np.random.RandomState(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(fan_in)
        params.append(tensor(rng.uniform(-bound, bound, (fan_out, fan_in)), dtype=dtype,
                             requires_grad=True))
        params.append(tensor(rng.uniform(-bound, bound, (fan_out,)), dtype=dtype,
                             requires_grad=True))
    return params


def mlp_forward(params, x):
    """Logits of the MLP ``params`` (from :func:`mlp_init`) for x (N, ...): ReLU between
    the layers."""
    from ..nn.functional import linear, relu
    h = x.reshape(x.shape[0], -1)
    for i in range(0, len(params), 2):
        h = linear(h, params[i], params[i + 1])
        if i + 2 < len(params):
            h = relu(h)
    return h


def train_on(forward, params, x, y, lr, steps, create_graph=False):
    """``steps`` full-batch gradient steps of cross-entropy on (x, y) from ``params``;
    returns the new parameter list. ``lr``: a float or a scalar tensor.
    ``create_graph=True`` keeps the steps differentiable (w.r.t. x, lr, params)."""
    from ..autograd import enable_grad, grad
    from ..nn.functional import cross_entropy
    with enable_grad():
        for _ in range(int(steps)):
            loss = cross_entropy(forward(params, x), y)
            grads = grad(loss, params, create_graph=create_graph)
            params = [p - g * lr for p, g in zip(params, grads)]
            if not create_graph:
                params = [p.detach().requires_grad_(True) for p in params]
    return params


def distill_dataset(init, forward, x_real, y_real, n_classes, per_class=1, inner_steps=5,
                    outer_steps=200, batch_size=256, lr=0.01, init_eta=0.1, seed=0,
                    log=None):
    """Learn ``per_class`` synthetic images per class and a learning rate.

    ``x_real`` (N, ...) float and ``y_real`` (N,) int tensors are the real training
    data. Returns ``(images, labels, eta, history)``: the (n_classes * per_class,
    ...) images (detached), their labels (class-major), the learned learning
    rate (float) and the outer loss per step."""
    from ..creation import tensor
    from ..nn.functional import cross_entropy
    from ..optim import Adam
    if per_class < 1 or inner_steps < 1 or outer_steps < 0:
        raise ValueError(f"distill_dataset: per_class, inner_steps must be >= 1 and "
                         f"outer_steps >= 0, got {per_class}, {inner_steps}, {outer_steps}")
    rng = np.random.RandomState(seed)
    shape = tuple(x_real.shape[1:])
    images = tensor(rng.standard_normal((n_classes * per_class,) + shape) * 0.1 + 0.2,
                    dtype=x_real.dtype, requires_grad=True)
    labels = tensor(np.repeat(np.arange(n_classes), per_class), dtype="int64")
    log_eta = tensor(math.log(init_eta), dtype=x_real.dtype, requires_grad=True)
    opt = Adam([images, log_eta], lr=lr)
    n = x_real.shape[0]
    history = []
    for step in range(int(outer_steps)):
        params = init(int(rng.randint(2 ** 31)))
        trained = train_on(forward, params, images, labels, log_eta.exp(), inner_steps,
                           create_graph=True)
        b = rng.randint(0, n, min(batch_size, n))
        loss = cross_entropy(forward(trained, x_real[b]), y_real[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(float(loss.item()))
        if log and (step % log == 0 or step == outer_steps - 1):
            print(f"  distill step {step:4d}  real-batch loss {history[-1]:.3f}  "
                  f"lr {math.exp(log_eta.item()):.3f}")
    return images.detach(), labels, float(math.exp(log_eta.item())), history
