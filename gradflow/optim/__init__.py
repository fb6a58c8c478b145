"""``gradflow.optim``: optimizers and learning-rate schedules (PyTorch's ``torch.optim``).

    opt = gradflow.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt.zero_grad(); loss.backward(); opt.step()
"""
from .optimizer import Optimizer  # noqa: F401
from .optimizers import (SGD, Adam, AdamW, Adagrad, RMSprop, Adadelta, Adamax, NAdam,  # noqa: F401
                         RAdam)
from .lbfgs import LBFGS  # noqa: F401
from . import lr_scheduler  # noqa: F401
