"""Fit sin(x) on [-pi, pi] with a cubic five ways, from raw tensors up to nn + optim:
hand-written gradients, autograd with updates under no_grad, a custom autograd
Function, an nn.Module of Parameters with SGD, nn.Sequential + RMSprop, and a model
whose depth changes from call to call (weights shared between terms)."""
import math
import os
import random
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import FRAMEWORK  # noqa: E402

if FRAMEWORK == "torch":
    import torch
    import torch.nn as nn
else:
    import gradflow as torch
    import gradflow.nn as nn

STEPS = int(os.environ.get("CUBIC_STEPS", "600"))
RESULTS = {}

x = torch.linspace(-math.pi, math.pi, 400)
y = torch.sin(x)
start = torch.from_numpy(np.array([0.1, -0.2, 0.05, 0.02], dtype=np.float32))


def report(name, loss, coefs):
    coefs = [c.item() if hasattr(c, "item") else float(c) for c in coefs]
    RESULTS[name] = {"loss": loss.item(), "coefs": coefs}
    print(f"{name}: loss {loss.item():.4f}  y = " +
          " + ".join(f"{c:.4f} x^{i}" for i, c in enumerate(coefs)))


# 1. plain tensors, gradients derived by hand
a, b, c, d = (start[i].clone() for i in range(4))
lr = 1.2e-5
for t in range(STEPS):
    y_pred = a + b * x + c * x ** 2 + d * x ** 3
    loss = (y_pred - y).pow(2).sum()
    g = 2.0 * (y_pred - y)
    a -= lr * g.sum()
    b -= lr * (g * x).sum()
    c -= lr * (g * x ** 2).sum()
    d -= lr * (g * x ** 3).sum()
report("by_hand", loss, (a, b, c, d))

# 2. autograd: requires_grad leaves, updates under no_grad, gradients zeroed by hand
w = start.clone().requires_grad_(True)
for t in range(STEPS):
    y_pred = w[0] + w[1] * x + w[2] * x ** 2 + w[3] * x ** 3
    loss = (y_pred - y).pow(2).sum()
    loss.backward()
    with torch.no_grad():
        w -= lr * w.grad
        w.grad.zero_()
report("autograd", loss, w.detach())


# 3. a custom Function: P3(z) = (5 z^3 - 3 z) / 2 with its derivative written out
class Legendre3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return 0.5 * (5 * z ** 3 - 3 * z)

    @staticmethod
    def backward(ctx, grad_out):
        (z,) = ctx.saved_tensors
        return grad_out * 1.5 * (5 * z ** 2 - 1)


p = [torch.full((), v, requires_grad=True) for v in (0.0, -1.0, 0.0, 0.3)]
for t in range(STEPS // 3):
    y_pred = p[0] + p[1] * Legendre3.apply(p[2] + p[3] * x)
    loss = (y_pred - y).pow(2).sum()
    loss.backward()
    with torch.no_grad():
        for q in p:
            q -= 5e-6 * q.grad
            q.grad = None
report("custom_function", loss, p)


# 4. nn.Module with four Parameters and SGD
class Cubic(nn.Module):
    def __init__(self):
        super().__init__()
        self.coef = nn.Parameter(start.clone())

    def forward(self, z):
        return self.coef[0] + self.coef[1] * z + self.coef[2] * z ** 2 + self.coef[3] * z ** 3


model = Cubic()
criterion = nn.MSELoss(reduction="sum")
opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.5)
for t in range(STEPS):
    loss = criterion(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
report("module_sgd", loss, model.coef.detach())

# 5. features x, x^2, x^3 -> nn.Sequential(Linear, Flatten) with RMSprop; .data updates
powers = torch.tensor([1, 2, 3])
features = x.unsqueeze(-1).pow(powers)
seq = nn.Sequential(nn.Linear(3, 1), nn.Flatten(0, 1))
with torch.no_grad():
    seq[0].weight.data = start[1:].clone().reshape(1, 3)
    seq[0].bias.data.fill_(float(start[0]))
opt = torch.optim.RMSprop(seq.parameters(), lr=3e-3)
for t in range(STEPS):
    loss = nn.functional.mse_loss(seq(features), y, reduction="sum")
    opt.zero_grad()
    loss.backward()
    opt.step()
layer = seq[0]
report("sequential_rmsprop", loss, [layer.bias.item()] + layer.weight.view(-1).tolist())


# 6. a model whose depth is drawn each call; e is reused for every power above 3
class RandomDepth(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c, self.d, self.e = (nn.Parameter(torch.tensor(v)) for v in
                                                   (0.1, -0.2, 0.05, 0.02, 0.0))

    def forward(self, z):
        out = self.a + self.b * z + self.c * z ** 2 + self.d * z ** 3
        for power in range(4, random.randint(4, 6)):
            out = out + self.e * z ** power
        return out


random.seed(0)
model = RandomDepth()
opt = torch.optim.SGD(model.parameters(), lr=1e-8, momentum=0.9)
for t in range(STEPS):
    loss = criterion(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
report("random_depth", loss, [model.a, model.b, model.c, model.d, model.e])
