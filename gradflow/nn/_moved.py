"""The module paths the Module classes had before they moved into :mod:`gradflow.nn.modules`
(``gradflow.nn.layers``, ``.layers1d``, ``.layers3d``, ``.normalization``, ``.attention``,
``.recurrent``, ``.loss``, ``.module``, ``.contrast``), registered as aliases that hold
every Module class (and the two functions that lived there): a checkpoint pickled before
the move names ``gradflow.nn.layers.Linear`` and still loads, the path leading to the same
class. New code imports from ``gradflow.nn`` or ``gradflow.nn.modules``."""
from __future__ import annotations

import sys
import types

from ..ops import attention as _attention, contrast as _contrast
from . import modules

OLD_PATHS = ("layers", "layers1d", "layers3d", "normalization", "attention", "recurrent",
             "loss", "module", "contrast")
_FUNCTIONS = {"attention": {"scaled_dot_product_attention":
                            _attention.scaled_dot_product_attention},
              "contrast": {"local_contrast_norm": _contrast.local_contrast_norm,
                           "gaussian_window": _contrast.gaussian_window}}

for _old in OLD_PATHS:
    _alias = types.ModuleType(f"{__package__}.{_old}", f"Old path; see {__name__}.")
    _alias.__dict__.update({name: getattr(modules, name) for name in modules.__all__})
    _alias.__dict__.update(_FUNCTIONS.get(_old, {}))
    sys.modules[_alias.__name__] = _alias
