"""``gradflow.nn``: modules, layers, losses and initialisers (PyTorch's ``torch.nn``).

    import gradflow.nn as nn
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    loss = nn.CrossEntropyLoss()(model(x), y)
"""
from . import functional, init, modules, utils  # noqa: F401
from .parameter import Parameter, Buffer  # noqa: F401
from .modules import *  # noqa: F401,F403 - every Module class (see gradflow.nn.modules.__all__)
from . import parallel  # noqa: F401
from .parallel import DistributedDataParallel  # noqa: F401
from . import _moved  # noqa: F401 - old module paths (gradflow.nn.layers...) for old checkpoints
