"""Shared by the programs in this folder (our own PyTorch-style programs, run on torch
and on gradflow with only their imports switched).

``PROGRAM_FRAMEWORK=torch`` selects PyTorch, anything else gradflow. The frameworks'
random generators differ, so a program that wants the same starting point in both
calls :func:`seeded_init`, which draws every parameter from a NumPy generator."""
import os

import numpy as np

FRAMEWORK = "torch" if os.environ.get("PROGRAM_FRAMEWORK") == "torch" else "gradflow"


def seeded_init(model, torch, seed=0, scale=1.0):
    """Every parameter ~ U(-s, s) with s = scale / sqrt(fan_in) (biases: the fan-in of
    their layer's weight), drawn in named_parameters() order from NumPy."""
    rng = np.random.default_rng(seed)
    fan_in = 1
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                fan_in = int(np.prod(p.shape[1:]))
            bound = scale / np.sqrt(fan_in)
            p.copy_(torch.from_numpy(rng.uniform(-bound, bound, tuple(p.shape)).astype(np.float32)))
    return model
