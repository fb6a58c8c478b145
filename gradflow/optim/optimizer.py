"""``Optimizer``: parameter groups, per-parameter state, ``zero_grad``, ``step`` and a
resumable ``state_dict`` (PyTorch's layout: ``{"state": {index: {...}},
"param_groups": [{..., "params": [index, ...]}]}``).

Updates run in place on the parameter's backend array, outside the graph; SGD and
Adam/AdamW call the fused backend kernels ``sgd_step_`` / ``adam_step_`` (which the
Numba and CuPy backends override), the others are written with backend array ops.
"""
from __future__ import annotations

import copy

import numpy

from ..autograd import no_grad
from ..tensor import Tensor


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


class Optimizer:
    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got a single Tensor")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group):
        if not isinstance(param_group, dict):
            raise TypeError(f"param group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params) or len({id(p) for p in params}) != len(params):
            raise ValueError("some parameters appear in more than one parameter group")
        group["params"] = params
        for k, v in self.defaults.items():
            if v is required and k not in group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {k}")
            group.setdefault(k, v)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad = Tensor._make(p.backend.zeros(p.shape, p.dtype), p.backend)

    def step(self, closure=None):
        loss = None
        if closure is not None:
            from ..autograd import enable_grad
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad
                    if g.backend is not p.backend:
                        raise RuntimeError(f"{type(self).__name__}.step: parameter of shape {p.shape} "
                                           f"is on backend {p.backend.name!r} but its gradient is on "
                                           f"{g.backend.name!r}")
                    garr = g.array if g.dtype == p.dtype else p.backend.astype(g.array, p.dtype)
                    if group.get("maximize"):
                        garr = p.backend.unary("neg", garr)
                    self._update(p, garr, group, self._param_state(p))
                    p._version[0] += 1
        return loss

    def _update(self, p, g, group, state):
        raise NotImplementedError

    # -- state ------------------------------------------------------------------------------
    def _param_state(self, p):
        """The state dict of ``p``, with buffers moved to ``p``'s backend/dtype if the
        parameter was moved since (``model.to(...)`` after creating the optimizer)."""
        st = self.state.setdefault(p, {})
        for k, v in st.items():
            if isinstance(v, Tensor) and (v.backend is not p.backend or
                                          (v.dtype.kind == "f" and v.dtype != p.dtype)):
                st[k] = _buffer_like(p, v.numpy())
        return st

    def _zeros(self, p):
        return Tensor._make(p.backend.zeros(p.shape, p.dtype), p.backend)

    def state_dict(self):
        """``{"state": {i: {name: Tensor | number}}, "param_groups": [{..., "params": [i]}]}``
        with parameters numbered in group order, as PyTorch."""
        index, groups = {}, []
        for g in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in g.items() if k != "params"}
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = {k: (v.detach() if isinstance(v, Tensor) else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters and per-parameter state (buffers copied onto each
        parameter's backend and dtype). Checked first; on error nothing changes."""
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("load_state_dict: expected an optimizer state_dict with 'state' and "
                             "'param_groups' keys")
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved)} parameter groups, this optimizer "
                             f"has {len(self.param_groups)}")
        for i, (sg, g) in enumerate(zip(saved, self.param_groups)):
            if len(sg["params"]) != len(g["params"]):
                raise ValueError(f"loaded state dict contains a parameter group (#{i}) with "
                                 f"{len(sg['params'])} parameters, which doesn't match the size of "
                                 f"this optimizer's group ({len(g['params'])})")
        id_map = {}
        for sg, g in zip(saved, self.param_groups):
            for i, p in zip(sg["params"], g["params"]):
                id_map[int(i)] = p
        new_state = {}
        for k, st in state_dict["state"].items():
            k = int(k)
            if k not in id_map:
                raise ValueError(f"load_state_dict: state for parameter index {k}, which no group has")
            p = id_map[k]
            entry = {}
            for name, v in st.items():
                if isinstance(v, (Tensor, numpy.ndarray)) and numpy.ndim(v) > 0:
                    host = v.numpy() if isinstance(v, Tensor) else v
                    if tuple(host.shape) != p.shape:
                        raise ValueError(f"load_state_dict: state {name!r} of parameter {k} has shape "
                                         f"{tuple(host.shape)}, the parameter has shape {p.shape}")
                    entry[name] = _buffer_like(p, host)
                elif isinstance(v, (Tensor, numpy.ndarray, numpy.generic)):
                    entry[name] = (v.item() if isinstance(v, Tensor) else numpy.asarray(v).item())
                else:
                    entry[name] = v
            new_state[p] = entry
        for sg, g in zip(saved, self.param_groups):
            for key, v in sg.items():
                if key != "params":
                    g[key] = _plain(v)
        self.state = new_state

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(k for k in g if k != "params"):
                lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"


def _plain(v):
    """Numbers loaded from a checkpoint back to Python types (betas tuples included)."""
    if isinstance(v, numpy.generic):
        return v.item()
    if isinstance(v, numpy.ndarray) and v.ndim == 0:
        return v.item()
    if isinstance(v, list) and len(v) in (2,) and all(isinstance(x, (int, float)) for x in v):
        return tuple(v)
    return v


def _buffer_like(p, host):
    dt = p.dtype if numpy.asarray(host).dtype.kind == "f" else None
    arr = numpy.asarray(host, dtype=dt)
    return Tensor._make(p.backend.asarray(numpy.ascontiguousarray(arr)), p.backend)
