"""``Optimizer``: parameter groups, per-parameter state, ``zero_grad``, ``step`` and a
resumable ``state_dict`` (PyTorch's layout: ``{"state": {index: {...}},
"param_groups": [{..., "params": [index, ...]}]}``).

Updates run in place on the parameter's backend array, outside the graph; SGD and
Adam/AdamW call the fused backend kernels ``sgd_step_`` / ``adam_step_`` (which the
Numba and CuPy backends override), the others are written with backend array ops.
"""
from __future__ import annotations

import copy
import math
import numbers

import numpy

from ..autograd import enable_grad, no_grad
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
        self._check_group(group)
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
        parameter's backend and dtype).

        Everything is checked before anything changes (all or nothing): the group
        structure (group count, parameter indices and counts), each hyper-parameter's
        type against this optimizer's value for the same key and its range (the
        constructor's rules), and each parameter's state against the optimizer's layout
        (``_state_spec``: counts, scalars, floating buffers of the parameter's shape, the
        entries the update needs). Errors name the group or parameter index and the key."""
        op = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError(f"{op}: expected an optimizer state_dict with 'state' and "
                             f"'param_groups' keys, got {_describe(state_dict)}")
        saved, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved, (list, tuple)):
            raise TypeError(f"{op}: 'param_groups' must be a list of dicts, got {_describe(saved)}")
        if not isinstance(saved_state, dict):
            raise TypeError(f"{op}: 'state' must be a dict of per-parameter dicts, got "
                            f"{_describe(saved_state)}")
        if len(saved) != len(self.param_groups):
            raise ValueError(f"{op}: loaded state dict has {len(saved)} parameter groups, this "
                             f"optimizer has {len(self.param_groups)}")
        id_map, group_of, new_groups = {}, {}, []
        for i, (sg, g) in enumerate(zip(saved, self.param_groups)):
            if not isinstance(sg, dict) or "params" not in sg:
                raise TypeError(f"{op}: param_groups[{i}] must be a dict with a 'params' list, "
                                f"got {_describe(sg)}")
            idx = sg["params"]
            if not isinstance(idx, (list, tuple)) or not all(_is_int(j) for j in idx):
                raise TypeError(f"{op}: param_groups[{i}]['params'] must be a list of parameter "
                                f"indices (ints), got {_describe(idx)}")
            if len(idx) != len(g["params"]):
                raise ValueError(f"{op}: loaded state dict contains a parameter group (#{i}) with "
                                 f"{len(idx)} parameters, which doesn't match the size of "
                                 f"this optimizer's group ({len(g['params'])})")
            for j, p in zip(idx, g["params"]):
                if int(j) in id_map:
                    raise ValueError(f"{op}: parameter index {int(j)} appears twice in "
                                     f"'param_groups' (group {group_of[int(j)]} and group {i})")
                id_map[int(j)], group_of[int(j)] = p, i
            merged = {k: v for k, v in g.items() if k != "params"}
            for key, v in sg.items():
                if key != "params":
                    merged[key] = _load_hyper(op, f"param_groups[{i}][{key!r}]", v,
                                              g.get(key, _MISSING))
            try:
                self._check_group(merged)
            except (TypeError, ValueError) as e:
                raise type(e)(f"{op}: param_groups[{i}]: {e}") from None
            new_groups.append(merged)
        new_state = {}
        for k, st in saved_state.items():
            if not _is_int(k, str_ok=True):
                raise TypeError(f"{op}: state keys must be parameter indices, got {k!r}")
            k = int(k)
            if k not in id_map:
                raise ValueError(f"{op}: state for parameter index {k}, which no group has "
                                 f"(indices: {sorted(id_map)})")
            p, gi = id_map[k], group_of[k]
            new_state[p] = self._load_param_state(op, f"state[{k}] (group {gi})", p, st,
                                                  new_groups[gi])
        for merged, g in zip(new_groups, self.param_groups):
            g.update(merged)
        self.state = new_state

    # name -> kind of each per-parameter state entry: "count" (integer >= 0), "scalar" (a
    # finite real), "buffer" (a floating tensor of the parameter's shape), "buffer?" (a
    # buffer or None). None: the layout is not declared and entries are converted unchecked.
    _state_spec = None

    def _required_state(self, group):
        """The entries a parameter's non-empty state must hold for ``group``'s settings
        (by default every declared entry but the optional "buffer?" ones)."""
        return tuple(k for k, kind in (self._state_spec or {}).items() if kind != "buffer?")

    @staticmethod
    def _check_group(group):
        """Raise ValueError for an out-of-range hyper-parameter in ``group`` (a dict)."""

    def _load_param_state(self, op, where, p, st, group):
        if not isinstance(st, dict):
            raise TypeError(f"{op}: {where} must be a dict of state entries, got {_describe(st)}")
        spec = self._state_spec
        entry = {}
        for name, v in st.items():
            at = f"{where}[{name!r}]"
            if spec is None:
                entry[name] = _load_any(p, v)
                continue
            kind = spec.get(name)
            if kind is None:
                raise ValueError(f"{op}: unexpected {at}: {type(self).__name__} keeps "
                                 f"{', '.join(map(repr, spec))} (is this another optimizer's state?)")
            entry[name] = _load_entry(op, at, kind, p, v)
        if entry:
            missing = [n for n in self._required_state(group) if n not in entry]
            if missing:
                raise ValueError(f"{op}: {where} lacks {', '.join(map(repr, missing))}; "
                                 f"{type(self).__name__} with these settings needs "
                                 f"{', '.join(map(repr, self._required_state(group)))}")
        return entry

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(k for k in g if k != "params"):
                lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"


_MISSING = object()


def _describe(v):
    return f"{type(v).__name__} {v!r}" if isinstance(v, (int, float, str, bool, type(None))) \
        else type(v).__name__


def _is_int(v, str_ok=False):
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, numpy.integer)):
        return True
    return str_ok and isinstance(v, str) and v.lstrip("-").isdigit()


def _plain(v):
    """Numbers loaded from a checkpoint back to Python types (betas tuples included)."""
    if isinstance(v, Tensor) and v.ndim == 0:
        return v.item()
    if isinstance(v, numpy.generic):
        return v.item()
    if isinstance(v, numpy.ndarray) and v.ndim == 0:
        return v.item()
    if isinstance(v, list) and len(v) in (2,) and all(isinstance(x, (int, float)) for x in v):
        return tuple(v)
    return v


def _is_real(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _load_hyper(op, where, v, cur):
    """A loaded hyper-parameter, checked against the type of this optimizer's value ``cur``."""
    v = _plain(v)
    if cur is _MISSING:  # a key this optimizer does not have (e.g. a scheduler's initial_lr)
        return v
    if isinstance(cur, bool):
        if not isinstance(v, bool):
            raise TypeError(f"{op}: {where} must be a bool, got {_describe(v)}")
    elif _is_real(cur):
        if not _is_real(v):
            raise TypeError(f"{op}: {where} must be a number, got {_describe(v)}")
        if not math.isfinite(v):
            raise ValueError(f"{op}: {where} must be finite, got {v}")
    elif isinstance(cur, tuple):
        if not (isinstance(v, (tuple, list)) and len(v) == len(cur) and
                all(_is_real(_plain(x)) and math.isfinite(_plain(x)) for x in v)):
            raise TypeError(f"{op}: {where} must be a tuple of {len(cur)} finite numbers, got "
                            f"{v!r}")
        v = tuple(_plain(x) for x in v)
    elif isinstance(cur, str):
        if not (v is None or isinstance(v, str)):
            raise TypeError(f"{op}: {where} must be a string or None, got {_describe(v)}")
    return v


def _load_entry(op, at, kind, p, v):
    if kind == "count":
        v = _plain(v)
        if not (_is_real(v) and math.isfinite(v) and v >= 0 and float(v).is_integer()):
            raise TypeError(f"{op}: {at} must be a step count (an integer >= 0), got "
                            f"{_describe(v)}")
        return int(v)
    if kind == "scalar":
        v = _plain(v)
        if not (_is_real(v) and math.isfinite(v)):
            raise TypeError(f"{op}: {at} must be a finite number, got {_describe(v)}")
        return float(v)
    if v is None and kind == "buffer?":
        return None
    if not isinstance(v, (Tensor, numpy.ndarray)):
        raise TypeError(f"{op}: {at} must be a tensor of shape {p.shape}, got {_describe(v)}")
    host = v.numpy() if isinstance(v, Tensor) else v
    if tuple(host.shape) != p.shape:
        raise ValueError(f"{op}: {at} has shape {tuple(host.shape)}, the parameter has shape "
                         f"{p.shape}")
    if host.dtype.kind != p.dtype.kind or p.dtype.kind not in "fc":
        raise TypeError(f"{op}: {at} has dtype {host.dtype}; a buffer of a {p.dtype} parameter "
                        f"must be floating like it")
    return _buffer_like(p, host)


def _load_any(p, v):
    """An entry of an undeclared state layout: arrays onto the parameter's backend."""
    if isinstance(v, (Tensor, numpy.ndarray)) and numpy.ndim(v) > 0:
        return _buffer_like(p, v.numpy() if isinstance(v, Tensor) else v)
    if isinstance(v, (Tensor, numpy.ndarray, numpy.generic)):
        return _plain(v)
    return v


def _buffer_like(p, host):
    """A private copy of ``host`` on ``p``'s backend (in ``p``'s dtype if floating): the
    updates run in place, so the buffer must never alias the caller's array."""
    dt = p.dtype if numpy.asarray(host).dtype.kind == "f" else None
    arr = numpy.array(host, dtype=dt, order="C", copy=True)
    return Tensor._make(p.backend.asarray(arr), p.backend)
