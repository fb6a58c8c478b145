"""Reverse-mode automatic differentiation (PyTorch's ``torch.autograd`` layout).

* :mod:`.grad_mode` -- ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``inference_mode``
* :mod:`.function` -- ``Function`` (a differentiable primitive) and ``Context`` (its node)
* :mod:`.engine` -- the backward walk: ``backward()``, ``grad()``, ``create_graph``
* :mod:`.anomaly` -- ``detect_anomaly``
* :mod:`.gradcheck` -- ``gradcheck``, ``gradgradcheck`` (finite differences, float64)
* :mod:`.hooks` -- ``RemovableHandle``

The core imports nothing above it: the Tensor class registers itself with
:func:`.function.register_tensor_class` when :mod:`gradflow.tensor` is imported.
"""
from __future__ import annotations

from . import function
from .anomaly import (AnomalyError, detect_anomaly, is_anomaly_check_nan_enabled,
                      is_anomaly_enabled, set_detect_anomaly)
from .engine import _leaf_hooks, backward, grad  # noqa: F401  (_leaf_hooks: Tensor hooks)
from .function import Context, Function, FunctionCtx, once_differentiable
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .hooks import RemovableHandle

__all__ = ["Function", "Context", "FunctionCtx", "RemovableHandle", "backward", "grad",
           "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode",
           "gradcheck", "gradgradcheck", "GradcheckError", "detect_anomaly",
           "set_detect_anomaly", "is_anomaly_enabled", "is_anomaly_check_nan_enabled",
           "AnomalyError", "once_differentiable", "function"]
