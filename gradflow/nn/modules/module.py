"""``Module``: the base class of layers and models (PyTorch's ``nn.Module``).

Parameters, buffers and submodules are registered by assigning them as attributes;
``state_dict()`` / ``load_state_dict()`` name them by their dotted path
(``features.0.weight``). ``load_state_dict`` is all-or-nothing: it checks every
key, shape and value first and only then copies, so a failed load changes nothing.
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple

import numpy

from ... import dtypes
from ...autograd import Function, RemovableHandle, is_grad_enabled, no_grad
from ...backends import Backend, default_cpu_backend
from ...device import device as _device
from ...layout import check
from ...tensor import Tensor
from ..parameter import Buffer, Parameter

class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns (PyTorch's ``_IncompatibleKeys``)."""
    __slots__ = ()

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


_RemovableHandle = RemovableHandle  # the old private name


class _BackwardHookIn(Function):
    """Identity on a module's tensor inputs; its backward sees the gradients w.r.t. the
    inputs and runs the module's full backward hooks."""

    @staticmethod
    def forward(ctx, state, *xs):
        ctx.state = state
        return xs

    @staticmethod
    def backward(ctx, *grads):
        st = ctx.state
        grad_input = tuple(grads)
        for hook in list(st["module"]._backward_hooks.values()):
            res = hook(st["module"], grad_input, st.get("grad_output", ()))
            if res is not None:
                res = tuple(res) if isinstance(res, (tuple, list)) else (res,)
                if len(res) != len(grad_input):
                    raise RuntimeError(f"backward hook returned {len(res)} gradients, expected "
                                       f"{len(grad_input)}")
                grad_input = res
        return (None,) + tuple(grad_input)


class _BackwardHookOut(Function):
    """Identity on a module's tensor outputs; its backward records grad_output and runs
    the full backward pre-hooks (and, when no input needs a gradient, the hooks)."""

    @staticmethod
    def forward(ctx, state, *ys):
        ctx.state = state
        return ys

    @staticmethod
    def backward(ctx, *grads):
        st = ctx.state
        m = st["module"]
        grad_output = tuple(grads)
        for hook in list(m._backward_pre_hooks.values()):
            res = hook(m, grad_output)
            if res is not None:
                grad_output = tuple(res) if isinstance(res, (tuple, list)) else (res,)
        st["grad_output"] = grad_output
        if not st["inputs_need_grad"]:
            for hook in list(m._backward_hooks.values()):
                hook(m, (None,) * st["n_inputs"], grad_output)
        return (None,) + grad_output


def _split_to_args(args, kwargs):
    """Parse ``to(...)`` arguments into (backend-or-device spec, dtype)."""
    target = kwargs.pop("device", None)
    target = kwargs.pop("backend", target)
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    check(kwargs.pop("memory_format", None), "Module.to")  # a no-op layout hint (NCHW stays)
    if kwargs:
        raise TypeError(f"to: unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, (str, Backend, _device)):
            target = a
        elif isinstance(a, Tensor):
            target, dtype = a.backend, a.dtype
        else:
            dtype = a
    backend = _device.resolve_backend(target) if target is not None else None
    return backend, (dtypes.as_dtype(dtype) if dtype is not None else None)


class Module:
    """Base class for all layers and models. Subclasses call ``super().__init__()``
    first, assign Parameters/Modules as attributes and define ``forward``."""

    training: bool

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments")
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent_buffers"] = set()
        d["_modules"] = OrderedDict()
        d["_forward_hooks"] = OrderedDict()
        d["_forward_pre_hooks"] = OrderedDict()
        d["_backward_hooks"] = OrderedDict()
        d["_backward_pre_hooks"] = OrderedDict()
        d["_hooks_with_kwargs"] = set()

    # -- registration ----------------------------------------------------------------------
    def _check_init(self, what):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before {type(self).__name__}.__init__() "
                                 f"called super().__init__()")

    @staticmethod
    def _check_name(name, what):
        if not isinstance(name, str):
            raise TypeError(f"{what} name should be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f"{what} name can't contain \".\" or be empty, got {name!r}")

    def _discard(self, name):
        for key in ("_parameters", "_buffers", "_modules"):
            self.__dict__[key].pop(name, None)
        self.__dict__["_non_persistent_buffers"].discard(name)
        self.__dict__.pop(name, None)

    def register_parameter(self, name, param):
        self._check_init("parameters")
        self._check_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign {type(param).__name__} as parameter {name!r} "
                            f"(gradflow.nn.Parameter or None expected)")
        self._discard(name)
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        self._check_init("buffers")
        self._check_name(name, "buffer")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign {type(tensor).__name__} as buffer {name!r} "
                            f"(gradflow.Tensor or None expected)")
        self._discard(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent_buffers.add(name)

    def add_module(self, name, module):
        self._check_init("submodules")
        self._check_name(name, "module")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._discard(name)
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name, value):
        d = self.__dict__
        if isinstance(value, Parameter):
            self._check_init("parameters")
            self.register_parameter(name, value)
        elif isinstance(value, Buffer):
            self.register_buffer(name, value, value.persistent)
        elif isinstance(value, Module):
            self._check_init("submodules")
            self.add_module(name, value)
        elif "_parameters" in d and name in d["_parameters"]:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                                f"(gradflow.nn.Parameter or None expected)")
            d["_parameters"][name] = None
        elif "_modules" in d and name in d["_modules"]:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r} "
                                f"(gradflow.nn.Module or None expected)")
            d["_modules"][name] = None
        elif "_buffers" in d and name in d["_buffers"]:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} "
                                f"(gradflow.Tensor or None expected)")
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            if key in d and name in d[key]:
                return d[key][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            if name in d.get(key, ()):
                del d[key][name]
                d["_non_persistent_buffers"].discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def get_submodule(self, target):
        mod = self
        for part in target.split(".") if target else []:
            if part not in mod._modules:
                raise AttributeError(f"{type(mod).__name__} has no submodule {part!r} ({target!r})")
            mod = mod._modules[part]
        return mod

    def get_buffer(self, target):
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._buffers:
            raise AttributeError(f"{type(mod).__name__} has no buffer {name!r}")
        return mod._buffers[name]

    def get_parameter(self, target):
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._parameters:
            raise AttributeError(f"{type(mod).__name__} has no parameter {name!r}")
        return mod._parameters[name]

    # -- calling ---------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"Module [{type(self).__name__}] is missing the required "
                                  f"\"forward\" function")

    def __call__(self, *args, **kwargs):
        d = self.__dict__
        with_kw = d.get("_hooks_with_kwargs", ())
        for key, hook in list(d.get("_forward_pre_hooks", {}).items()):
            if key in with_kw:
                res = hook(self, args, kwargs)
                if res is not None:
                    if not (isinstance(res, tuple) and len(res) == 2):
                        raise RuntimeError("forward pre-hook with with_kwargs=True must return "
                                           "None or a tuple of (new_args, new_kwargs)")
                    args, kwargs = res
            else:
                res = hook(self, args)
                if res is not None:
                    args = res if isinstance(res, tuple) else (res,)
        bw = (d.get("_backward_hooks") or d.get("_backward_pre_hooks")) and is_grad_enabled()
        if bw:
            args, state = self._hook_inputs(args)
        out = self.forward(*args, **kwargs)
        for key, hook in list(d.get("_forward_hooks", {}).items()):
            res = hook(self, args, kwargs, out) if key in with_kw else hook(self, args, out)
            if res is not None:
                out = res
        if bw:
            out = self._hook_outputs(out, state)
        return out

    def _hook_inputs(self, args):
        pos = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        state = {"module": self, "n_inputs": len(pos),
                 "inputs_need_grad": any(args[i].requires_grad for i in pos)}
        if state["inputs_need_grad"]:
            new = _BackwardHookIn.apply(state, *[args[i] for i in pos])
            args = list(args)
            for i, t in zip(pos, new):
                args[i] = t
            args = tuple(args)
        return args, state

    def _hook_outputs(self, out, state):
        if isinstance(out, Tensor):
            return _BackwardHookOut.apply(state, out)[0] if out.requires_grad else out
        if isinstance(out, tuple) and any(isinstance(o, Tensor) and o.requires_grad for o in out):
            pos = [i for i, o in enumerate(out) if isinstance(o, Tensor)]
            new = _BackwardHookOut.apply(state, *[out[i] for i in pos])
            out = list(out)
            for i, t in zip(pos, new):
                out[i] = t
            return tuple(out)
        return out

    def _add_hook(self, table, hook, prepend=False, with_kwargs=False):
        handle = RemovableHandle(table, hook)
        if prepend:
            table.move_to_end(handle.id, last=False)
        if with_kwargs:
            self.__dict__["_hooks_with_kwargs"].add(handle.id)
        return handle

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False, always_call=False):
        """``hook(module, inputs, output)`` (``with_kwargs``: ``hook(module, inputs, kwargs,
        output)``) after every forward; may return a new output."""
        return self._add_hook(self._forward_hooks, hook, prepend, with_kwargs)

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """``hook(module, inputs)`` before every forward; may return new inputs
        (``with_kwargs``: ``hook(module, inputs, kwargs)`` returning ``(inputs, kwargs)``)."""
        return self._add_hook(self._forward_pre_hooks, hook, prepend, with_kwargs)

    def register_full_backward_hook(self, hook, prepend=False):
        """``hook(module, grad_input, grad_output)`` when the gradients w.r.t. the module's
        tensor inputs are computed; may return a replacement ``grad_input`` tuple.
        ``grad_input`` holds ``None`` for inputs that need no gradient."""
        return self._add_hook(self._backward_hooks, hook, prepend)

    def register_full_backward_pre_hook(self, hook, prepend=False):
        """``hook(module, grad_output)`` when the gradients w.r.t. the module's outputs are
        known; may return a replacement ``grad_output`` tuple."""
        return self._add_hook(self._backward_pre_hooks, hook, prepend)

    # -- traversal -----------------------------------------------------------------------------------
    # The walks use explicit stacks, not recursion: a model nested thousands of modules deep
    # (a long chain of Sequentials) must not hit Python's recursion limit.
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """``(dotted name, module)`` for this module and every submodule, depth first in
        registration order (parents before their children)."""
        memo = set() if memo is None else memo
        stack = [(prefix, self)]
        while stack:
            pre, m = stack.pop()
            if remove_duplicate and id(m) in memo:
                continue
            memo.add(id(m))
            yield pre, m
            dot = pre + "." if pre else ""
            stack.extend(reversed([(dot + name, c) for name, c in m._modules.items()
                                   if c is not None]))

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, key, prefix, recurse, remove_duplicate=True):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse \
            else [(prefix, self)]
        for mprefix, m in mods:
            for name, v in m.__dict__[key].items():
                if v is None or (remove_duplicate and id(v) in seen):
                    continue
                seen.add(id(v))
                yield mprefix + ("." if mprefix else "") + name, v

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        """``fn(m)`` for every submodule (children before their parent), then ``self``."""
        stack = [(self, self.children())]
        while stack:
            m, kids = stack[-1]
            child = next(kids, None)
            if child is None:
                stack.pop()
                fn(m)
            else:
                stack.append((child, child.children()))
        return self

    # -- modes and gradients ---------------------------------------------------------------------------
    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise ValueError(f"train: mode is expected to be a bool, got {mode!r}")
        for m in self.modules():
            m.__dict__["training"] = mode
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad = Tensor._make(p.backend.zeros(p.shape, p.dtype), p.backend)

    # -- moving between backends and dtypes -------------------------------------------------------
    def _apply_arrays(self, fn):
        """Replace each parameter's / buffer's array by ``fn(tensor) -> (array, backend)``
        in place, so Parameter objects (and optimizers holding them) stay valid."""
        for t in list(self.parameters()) + list(self.buffers()):
            arr, be = fn(t)
            if arr is t.array and be is t.backend:
                continue
            t.array, t.backend = arr, be
            t._version[0] += 1
            if t.grad is not None:
                garr, gbe = fn(t.grad)
                t.grad = Tensor._make(garr, gbe)
        return self

    def to(self, *args, **kwargs):
        """``model.to("numba")``, ``model.to(gradflow.device("cuda"))``,
        ``model.to(gradflow.float64)``: moves parameters and buffers in place (floating
        ones change dtype; integer buffers keep theirs) and returns ``self``."""
        backend, dtype = _split_to_args(args, dict(kwargs))

        def move(t):
            arr, be = t.array, t.backend
            if backend is not None and backend is not be:
                arr, be = backend.asarray(be.to_numpy(arr)), backend
            if dtype is not None and arr.dtype.kind == "f" and arr.dtype != dtype:
                if dtype.kind != "f":
                    raise TypeError(f"Module.to: only floating dtypes are allowed, got {dtype}")
                arr = be.astype(arr, dtype)
            return arr, be

        return self._apply_arrays(move)

    def cpu(self):
        return self if all(p.backend.device_type == "cpu" for p in self.parameters()) \
            else self.to(default_cpu_backend())

    def cuda(self, device=None):
        return self.to("cuda")

    def float(self):
        return self.to(dtypes.float32)

    def double(self):
        return self.to(dtypes.float64)

    def half(self):
        return self.to(dtypes.float16)

    def type(self, dtype):
        return self.to(dtype)

    # -- state dict -------------------------------------------------------------------------------------
    def _state_items(self):
        """(key, tensor, owner module, local name, kind) for every state entry."""
        for mprefix, m in self.named_modules(remove_duplicate=False):
            pre = mprefix + "." if mprefix else ""
            for name, p in m._parameters.items():
                if p is not None:
                    yield pre + name, p, m, name, "parameter"
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent_buffers:
                    yield pre + name, b, m, name, "buffer"

    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """Ordered ``{dotted name: tensor}`` of parameters and persistent buffers.
        The tensors share storage with the module (detached unless ``keep_vars``)."""
        out = OrderedDict() if destination is None else destination
        for key, t, *_ in self._state_items():
            out[prefix + key] = t if keep_vars else t.detach()
        return out

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy ``state_dict``'s values into this module's parameters and buffers.

        Every key, shape and value is checked before anything is copied: a mismatch
        raises ``RuntimeError`` naming the offending keys/shapes and leaves the module
        unchanged. With ``strict=False`` missing and unexpected keys are allowed (and
        returned); shape mismatches are always errors. Values may be Tensors (any
        backend), NumPy arrays or numbers."""
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"load_state_dict: expected a dict (a state_dict), got "
                            f"{type(state_dict).__name__}")
        items = {k: (t, m, name) for k, t, m, name, _ in self._state_items()}
        # as PyTorch's norm layers: a checkpoint without num_batches_tracked (older format)
        # loads, keeping the module's counter
        missing = [k for k, (t, m, name) in items.items() if k not in state_dict
                   and not (name == "num_batches_tracked" and name in m._buffers)]
        unexpected = [k for k in state_dict.keys() if k not in items]
        errors = []
        if strict:
            if unexpected:
                errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected))
            if missing:
                errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing))
        staged = []
        for key, (t, m, name) in items.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            try:
                host = value.numpy() if isinstance(value, Tensor) else numpy.asarray(value)
            except Exception as e:  # noqa: BLE001 - reported with its key
                errors.append(f"value for \"{key}\" is not array-like ({type(value).__name__}: {e})")
                continue
            if host.dtype.kind not in "biuf":
                errors.append(f"value for \"{key}\" has non-numeric dtype {host.dtype}")
                continue
            if tuple(host.shape) != t.shape:
                errors.append(f"size mismatch for {key}: copying a param with shape "
                              f"{tuple(host.shape)} from checkpoint, the shape in current model "
                              f"is {t.shape}")
                continue
            staged.append((t, host))
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        # convert everything before touching the module (conversion can fail too)
        arrays = [(t, t.backend.asarray(host.astype(t.dtype, copy=False))) for t, host in staged]
        with no_grad():
            for t, arr in arrays:
                if assign:
                    t.array = arr
                else:
                    t.backend.copyto_(t.array, arr)
                t._version[0] += 1
        return IncompatibleKeys(missing, unexpected)

    # -- printing ---------------------------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        # emitted line by line from an explicit stack (deep nesting: no recursion, and no
        # re-indenting of whole sub-reprs, which is quadratic in the depth)
        out = []
        stack = [(self, "", "")]          # (module or a closing line, indent, label)
        while stack:
            m, pad, label = stack.pop()
            if isinstance(m, str):
                out.append(m)
                continue
            if not isinstance(m, Module) or type(m).__repr__ is not Module.__repr__:
                out.append(pad + label + repr(m).replace("\n", "\n" + pad))
                continue
            extra = m.extra_repr()
            lines = extra.split("\n") if extra else []
            head = pad + label + m._get_name() + "("
            if not m._modules and len(lines) <= 1:
                out.append(head + "".join(lines) + ")")
                continue
            out.append(head)
            out.extend(pad + "  " + line for line in lines)
            stack.append((pad + ")", "", ""))
            stack.extend((c, pad + "  ", f"({name}): ")
                         for name, c in reversed(list(m._modules.items())))
        return "\n".join(out)

    def num_parameters(self, trainable_only=False):
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
