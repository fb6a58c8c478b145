"""Reverse-mode autodiff: ``Function``, the graph walk, grad mode, gradcheck.

A differentiable primitive is a :class:`Function` subclass with two static
methods side by side::

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):                 # x: Tensor; return a Tensor or a backend array
            y = x.backend.unary("exp", x.array)
            ctx.y = y                        # arrays may be kept on ctx directly...
            return y

        @staticmethod
        def backward(ctx, gy):               # gy: Tensor shaped like the output
            return gy * Tensor(ctx.y)        # ...one gradient (or None) per forward argument

``Exp.apply(x)`` runs ``forward`` with grad recording off and, when some input
requires grad, links the result to a graph node (the ``ctx``).
``ctx.save_for_backward(*tensors)`` keeps tensors for backward and checks at
backward time that they were not modified in place; arrays kept on ``ctx``
directly get the same check when they are an input's or the output's array
(each tensor carries a version counter, shared with its views, ``.data`` and
``detach()``, bumped by every in-place update);
``ctx.needs_input_grad[i]`` says whether argument ``i`` needs a gradient.

``Tensor.backward()`` walks the graph iteratively in reverse topological order
(no recursion: a chain of 100k ops is fine), sums broadcast gradients back to
each input's shape, accumulates into leaves' ``.grad`` and frees every node's
saved data unless ``retain_graph=True``.
"""
from __future__ import annotations

import builtins
import contextlib
import os
import sys
import threading

import numpy

_mode = threading.local()


# ---------------------------------------------------------------------------
# grad mode
# ---------------------------------------------------------------------------
def is_grad_enabled() -> bool:
    return getattr(_mode, "enabled", True)


class set_grad_enabled(contextlib.ContextDecorator):
    """Context manager / decorator that turns graph recording on or off."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._prev = []

    def __enter__(self):
        self._prev.append(is_grad_enabled())
        _mode.enabled = self.mode

    def __exit__(self, *exc):
        _mode.enabled = self._prev.pop()
        return False


class _FixedMode(set_grad_enabled):
    """A grad mode usable as ``with m():``, ``@m()`` and, as in PyTorch, bare ``@m``."""
    _MODE = False

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        if not callable(orig_func):
            raise TypeError(f"{cls.__name__}() takes no arguments (or, as a bare decorator, "
                            f"a function); got {type(orig_func).__name__}")
        return cls()(orig_func)

    def __init__(self, orig_func=None):
        super().__init__(self._MODE)


class no_grad(_FixedMode):
    """``with gradflow.no_grad():`` (or ``@no_grad()`` / ``@no_grad``) -- ops record no
    graph (evaluation, updates)."""
    _MODE = False


class enable_grad(_FixedMode):
    _MODE = True


class inference_mode(set_grad_enabled):
    """PyTorch's ``inference_mode(mode=True)``: ``no_grad`` when ``mode``, else the
    grad mode is left as it is. Also a bare decorator."""

    def __new__(cls, mode=True):
        if callable(mode):
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode=True):
        super().__init__(False)
        self._keep = not bool(mode)

    def __enter__(self):
        self._prev.append(is_grad_enabled())
        if not self._keep:
            _mode.enabled = False


# ---------------------------------------------------------------------------
# anomaly detection
# ---------------------------------------------------------------------------
class AnomalyError(RuntimeError):
    """A NaN/Inf appeared in an op's forward output or backward gradient."""


def is_anomaly_enabled() -> bool:
    return getattr(_mode, "anomaly", False)


class detect_anomaly(contextlib.ContextDecorator):
    """``with gradflow.autograd.detect_anomaly():`` (or as a decorator) -- raise
    :class:`AnomalyError` at the first op whose forward output or backward gradient
    holds NaN/Inf, naming the op, its input shapes and the user's ``file:line``
    where the op was created (ops recorded outside the block say so instead).

    Slower: every op checks its result and records its creating stack frame.
    Inside the block NumPy's floating-point RuntimeWarnings from gradflow's own
    kernels are silenced: the AnomalyError replaces them. Thread-local and nestable."""

    def __init__(self, mode: bool = True):
        self.mode = bool(mode)
        self._prev = []

    def __enter__(self):
        self._prev.append(is_anomaly_enabled())
        _mode.anomaly = self.mode
        return self

    def __exit__(self, *exc):
        _mode.anomaly = self._prev.pop()
        return False


set_detect_anomaly = detect_anomaly

_PKG_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_frame() -> str:
    """The innermost stack frame outside the gradflow package, as 'file:line in fn'."""
    f = sys._getframe(1)
    while f is not None:
        fn = f.f_code.co_filename
        if not os.path.abspath(fn).startswith(_PKG_DIR):
            return f"{fn}:{f.f_lineno} in {f.f_code.co_name}"
        f = f.f_back
    return "<unknown>"


def _check_finite(node, arr, what):
    if getattr(arr, "dtype", None) is None or arr.dtype.kind not in "fc":
        return
    be = node.backend
    if bool(be.reduce("all", be.unary("abs", arr) < numpy.inf, None, False)):
        return
    n_nan = int(be.reduce("sum", be.astype(arr != arr, numpy.int64), None, False))
    bad = f"{n_nan} NaN" if n_nan else "Inf"
    shapes = ", ".join(str(s) for s in node.input_shapes if s is not None) or "none"
    where = (f"the op was created at {node.created_at}" if node.created_at is not None else
             "the op was created outside detect_anomaly(); run the forward pass inside the "
             "block to see where")
    raise AnomalyError(
        f"detect_anomaly: {node.name} produced {bad} in its {what} of shape "
        f"{tuple(arr.shape)} (input shapes {shapes}); {where}")


# ---------------------------------------------------------------------------
# Function and its graph node
# ---------------------------------------------------------------------------
class Context:
    """The graph node of one Function application; ``ctx`` in forward/backward.

    Bookkeeping lives in slots; anything a primitive stores (``ctx.stride = ...``)
    goes to ``__dict__`` and is dropped when the graph is freed."""

    __slots__ = ("fn", "parents", "input_shapes", "needs_input_grad", "backend", "_saved",
                 "_saved_versions", "_versions", "freed", "created_at", "retained", "hooks",
                 "_non_diff", "materialize_grads", "__dict__", "__weakref__")

    def __init__(self, fn, needs_input_grad, backend):
        self.fn = fn
        self.needs_input_grad = needs_input_grad
        self.backend = backend
        self.parents = ()
        self.input_shapes = ()
        self._saved = ()
        self._saved_versions = ()
        self._versions = ()
        self.freed = False
        self.created_at = None
        self.retained = None
        self.hooks = None  # Tensor.register_hook on the tensor this node produced
        self._non_diff = ()
        self.materialize_grads = True

    @property
    def name(self) -> str:
        op = self.__dict__.get("op")  # generic primitives (Unary, MaxMin) record which op
        name = _Name(f"{self.fn.__name__}({op})" if isinstance(op, str) else self.fn.__name__)
        name.torch_name = (op.capitalize() if isinstance(op, str) else self.fn.__name__) + "Backward0"
        return name

    # -- PyTorch's FunctionCtx API for user Functions --------------------------------------
    def mark_non_differentiable(self, *tensors):
        """Outputs of ``forward`` that get no gradient (indices, masks): they come back
        with ``requires_grad=False`` and their gradient in ``backward`` is zeros."""
        self._non_diff = tuple(self._non_diff) + tuple(id(t) for t in tensors)

    def mark_dirty(self, *tensors):
        """``forward`` modified these inputs in place and returns them (accepted: the
        returned input becomes the output of this node, as in PyTorch)."""
        self.__dict__["_dirty"] = {id(t) for t in tensors}

    def set_materialize_grads(self, value):
        """``False``: ``backward`` gets ``None`` (not zeros) for outputs that received no
        gradient (multi-output Functions)."""
        self.materialize_grads = bool(value)

    @property
    def next_functions(self):
        """``((node or None, 0), ...)`` per forward argument, as PyTorch's ``grad_fn``."""
        return tuple((p if isinstance(p, Context) else None, 0) for p in self.parents)

    def save_for_backward(self, *tensors):
        self._saved = tensors
        self._saved_versions = tuple(None if t is None else t._version[0] for t in tensors)

    @property
    def saved_tensors(self):
        if self.freed:
            raise RuntimeError(
                f"{self.name}: trying to backward through the graph a second time; its saved "
                f"tensors were freed after the first backward. Pass retain_graph=True to the "
                f"first backward() to keep them.")
        for t, v in zip(self._saved, self._saved_versions):
            if t is not None and t._version[0] != v:
                raise RuntimeError(
                    f"{self.name}: a tensor of shape {t.shape} saved for backward was modified by "
                    f"an in-place operation (version {v} -> {t._version[0]}); compute it out of "
                    f"place or clone() it before modifying")
        return self._saved

    def check_versions(self):
        """Library primitives keep input/output arrays on ``ctx`` directly; raise if one
        of those was modified in place after the forward pass (its gradient would be
        silently wrong). ``_versions`` holds (version counter, version, shape, array id)
        of each tensor input and the output."""
        for counter, v, shape, ident in self._versions:
            if counter[0] != v:
                kept = set()
                for a in self.__dict__.values():
                    if hasattr(a, "shape") and hasattr(a, "dtype"):
                        kept.add(id(a))  # the array itself, or a view of it
                        if getattr(a, "base", None) is not None:
                            kept.add(id(a.base))
                if ident in kept:
                    raise RuntimeError(
                        f"{self.name}: a tensor of shape {shape} saved for backward was modified "
                        f"by an in-place operation after the forward pass (version {v} -> "
                        f"{counter[0]}); compute it out of place or clone() it before modifying")

    def release(self):
        self.__dict__.clear()
        self._saved = ()
        self._versions = ()
        self.parents = ()
        self.freed = True

    def __repr__(self):
        return f"<{self.name()}>"


class RemovableHandle:
    """Returned by ``register_hook`` / ``register_forward_hook`` ...: ``.remove()``
    unregisters the hook (also as a context manager), as PyTorch's handle."""
    _next_id = 0

    def __init__(self, table, hook=None):
        RemovableHandle._next_id += 1
        self.id = RemovableHandle._next_id
        self._table = table
        if hook is not None:
            table[self.id] = hook

    def remove(self):
        self._table.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class _Name(str):
    """A node's name: a str (messages use ``node.name``: ``Mul``, ``Unary(exp)``) that is
    also callable, as PyTorch's ``grad_fn.name()`` (``MulBackward0``, ``ExpBackward0``)."""
    torch_name = ""

    def __call__(self):
        return self.torch_name or str(self)


class _MultiGrad:
    """The gradient of a multi-output Function's node: {output index: array}, summed
    when several outputs' selector nodes report (``+``). ``shape`` is None, as the
    node's recorded input shape, so the walk never reshapes it."""
    __slots__ = ("parts",)
    shape = None
    dtype = None

    def __init__(self, parts):
        self.parts = parts

    def __add__(self, other):
        parts = dict(self.parts)
        for k, v in other.parts.items():
            parts[k] = v if k not in parts else parts[k] + v
        return _MultiGrad(parts)


def _multi_fns(cls):
    """(node fn, selector fn) for a Function whose forward returns a tuple: each
    differentiable output is produced by a selector node (its ``grad_fn``, so hooks and
    retain_grad work per output) whose only parent is the Function's node; the node's
    backward gathers the outputs' gradients and calls ``cls.backward(ctx, *grads)``."""
    cached = cls.__dict__.get("_gf_multi_fns")
    if cached is not None:
        return cached
    Tensor = _Tensor or _load_tensor()

    def node_backward(ctx, g):
        parts = g.array.parts
        grads = []
        for j, meta in enumerate(ctx.__dict__["_gf_out_meta"]):
            a = parts.get(j)
            if a is None and meta is not None and ctx.materialize_grads:
                a = meta[2].zeros(meta[0], meta[1])
            grads.append(None if a is None else Tensor._make(a, meta[2]))
        return cls.backward(ctx, *grads)

    def select_backward(sel, g):
        return _MultiGrad({sel.__dict__["index"]: g.array})

    fns = (type(cls.__name__, (), {"backward": staticmethod(node_backward)}),
           type(cls.__name__, (), {"backward": staticmethod(select_backward)}))
    setattr(cls, "_gf_multi_fns", fns)
    return fns


class Function:
    """Base class of every differentiable primitive (library and user-defined)."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_output):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        Tensor = _Tensor or _load_tensor()
        backend = None
        requires = False
        tensors = []
        for a in args:
            if isinstance(a, Tensor):
                tensors.append(a)
                if backend is None:
                    backend = a.backend
                elif a.backend is not backend:
                    shapes = ", ".join(f"{t.shape} on {t.backend.name}" for t in tensors)
                    raise RuntimeError(
                        f"{cls.__name__}: inputs live on different backends ({shapes}); data never "
                        f"moves implicitly -- move them with .to('{backend.name}') first")
                if a.requires_grad:
                    requires = True
        if backend is None:
            from .backends import current_backend
            backend = current_backend()
        grad_on = getattr(_mode, "enabled", True)
        requires = requires and grad_on
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args) if requires else \
            (False,) * len(args)
        ctx = Context(cls, needs, backend)
        anomaly = getattr(_mode, "anomaly", False)
        if anomaly:
            ctx.created_at = _user_frame()
            ctx.input_shapes = tuple(getattr(a, "shape", None) for a in args)
            _mode.enabled = False
            try:  # the AnomalyError below replaces NumPy's RuntimeWarnings
                with numpy.errstate(all="ignore"):
                    out = cls.forward(ctx, *args, **kwargs)
            finally:
                _mode.enabled = grad_on
        elif grad_on:
            _mode.enabled = False
            try:
                with numpy.errstate(all="ignore"):  # inf/NaN results are silent, as in PyTorch
                    out = cls.forward(ctx, *args, **kwargs)
            finally:
                _mode.enabled = True
        else:
            with numpy.errstate(all="ignore"):
                out = cls.forward(ctx, *args, **kwargs)
        if isinstance(out, tuple):
            return _finish_multi(cls, ctx, out, args, tensors, backend, requires, anomaly)
        if not isinstance(out, Tensor):
            if not hasattr(out, "shape"):
                raise TypeError(
                    f"{cls.__name__}.forward returned {type(out).__name__}; it must return a "
                    f"Tensor or backend array, or a tuple of them")
            out = Tensor._make(out, backend)
            base = getattr(out.array, "base", None)
            if base is not None:  # a view of an input shares its version counter (PyTorch)
                for t in tensors:
                    if base is t.array or base is getattr(t.array, "base", False):
                        out._version = t._version
                        break
        else:
            out = _own_output(ctx, out, tensors)
        ctx.backend = out.backend  # gradients w.r.t. the output live here
        if anomaly:
            _check_finite(ctx, out.array, "forward output")
        if requires and not (ctx._non_diff and id(out) in ctx._non_diff):
            ctx.parents = tuple(((a._node or a) if a.requires_grad else None)
                                if isinstance(a, Tensor) else None for a in args)
            ctx.input_shapes = tuple(a.array.shape if isinstance(a, Tensor) else None
                                     for a in args)
            tensors.append(out)
            # (version counter, version now, shape, id of the array) per tensor input and
            # the output, for Context.check_versions at backward time
            ctx._versions = tuple((t._version, t._version[0], t.array.shape, id(t.array))
                                  for t in tensors)
            out._node = ctx
            out.requires_grad = True
            if ctx._saved:
                ctx._saved = _unlink_saved(ctx._saved, (out,))
        return out


def _unlink_saved(saved, outs):
    """Saved tensors that are outputs of their own node (``ctx.save_for_backward(result)``)
    become aliases without the node (same array and version counter): the node keeping its
    output alive would be a reference cycle output -> node -> output, which reference
    counting cannot free when no backward runs (PyTorch saves outputs without grad_fn too)."""
    if not builtins.any(t is o for t in saved for o in outs):
        return saved
    Tensor = _Tensor or _load_tensor()
    res = []
    for t in saved:
        if t is not None and builtins.any(t is o for o in outs):
            a = Tensor._make(t.array, t.backend)
            a._version = t._version
            t = a
        res.append(t)
    return tuple(res)


def _own_output(ctx, o, tensors):
    """An input returned unchanged by forward becomes a new tensor sharing its storage
    (PyTorch returns a view), so the input stays as it was -- unless ``mark_dirty``."""
    dirty = ctx.__dict__.get("_dirty", ())
    if id(o) in dirty:
        if o._node is None and o.requires_grad and is_grad_enabled():
            raise RuntimeError(f"{ctx.fn.__name__}: a leaf tensor that requires grad (shape "
                               f"{o.shape}) was modified in place and marked dirty; the graph "
                               f"needs its value. Modify a clone() or work under no_grad()")
        return o
    if not builtins.any(o is t for t in tensors):
        return o
    Tensor = _Tensor or _load_tensor()
    v = Tensor._make(o.array, o.backend)
    v._version = o._version
    if id(o) in ctx._non_diff:
        ctx._non_diff = ctx._non_diff + (id(v),)
    return v


def _finish_multi(cls, ctx, out, args, tensors, backend, requires, anomaly):
    """``Function.apply`` for a forward that returned a tuple (see :func:`_multi_fns`)."""
    Tensor = _Tensor or _load_tensor()
    outs = list(out)
    for j, o in enumerate(outs):
        if isinstance(o, Tensor):
            outs[j] = _own_output(ctx, o, tensors)
        elif hasattr(o, "shape") and hasattr(o, "dtype"):
            outs[j] = Tensor._make(o, backend)
            base = getattr(o, "base", None)
            if base is not None:
                for t in tensors:
                    if base is t.array or base is getattr(t.array, "base", False):
                        outs[j]._version = t._version
                        break
        # anything else (numbers, None) passes through and gets no gradient
    out_tensors = [o for o in outs if isinstance(o, Tensor)]
    if not out_tensors:
        raise TypeError(f"{cls.__name__}.forward returned a tuple without a Tensor")
    ctx.backend = out_tensors[0].backend
    if anomaly:
        for o in out_tensors:
            _check_finite(ctx, o.array, "forward output")
    non_diff = set(ctx._non_diff)
    diff = [j for j, o in enumerate(outs) if isinstance(o, Tensor) and id(o) not in non_diff
            and o.dtype.kind in "fc"]
    if requires and diff:
        ctx.parents = tuple(((a._node or a) if a.requires_grad else None)
                            if isinstance(a, Tensor) else None for a in args)
        ctx.input_shapes = tuple(a.array.shape if isinstance(a, Tensor) else None for a in args)
        ctx._versions = tuple((t._version, t._version[0], t.array.shape, id(t.array))
                              for t in tensors + out_tensors)
        node_fn, sel_fn = _multi_fns(cls)
        ctx.fn = node_fn
        ctx.__dict__["_gf_out_meta"] = [
            (o.shape, o.dtype, o.backend) if isinstance(o, Tensor) else None for o in outs]
        for j in diff:
            o = outs[j]
            sel = Context(sel_fn, (True,), o.backend)
            sel.parents, sel.input_shapes = (ctx,), (None,)
            sel.__dict__["index"] = j
            o._node = sel
            o.requires_grad = True
        if ctx._saved:
            ctx._saved = _unlink_saved(ctx._saved, [outs[j] for j in diff])
    return tuple(outs)


_Tensor = None


def _load_tensor():
    global _Tensor
    from .tensor import Tensor
    _Tensor = Tensor
    return Tensor


# ---------------------------------------------------------------------------
# the backward walk
# ---------------------------------------------------------------------------
def _sum_to_shape(backend, g, shape):
    """Reduce a broadcast gradient ``g`` back to ``shape`` (NumPy broadcasting rules)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape)
                                      if s == 1 and g.shape[i + lead] != 1)
    if axes:
        g = backend.reduce("sum", g, axes, True)
    if lead:
        g = backend.reshape(g, g.shape[lead:])
    return backend.reshape(g, shape) if g.shape != shape else g


def _topo_order(root, seen=None):
    """Nodes reachable from ``root`` in topological order (inputs first), iteratively.
    A shared ``seen`` set lets several roots' orders be concatenated."""
    seen = set() if seen is None else seen
    seen.add(root)
    order = []
    stack = [(root, iter(root.parents))]
    while stack:
        node, it = stack[-1]
        for p in it:
            if isinstance(p, Context) and p not in seen:
                seen.add(p)
                stack.append((p, iter(p.parents)))
                break
        else:
            stack.pop()
            order.append(node)
    return order


def _to_array(g, node, i):
    if isinstance(g, _Tensor):
        return g.array
    if isinstance(g, numpy.generic):  # NumPy ops on 0-d arrays return scalars
        return node.backend.asarray(g)
    if isinstance(g, (int, float)):
        raise TypeError(f"{node.name}.backward returned a Python number for input {i}; "
                        f"return a Tensor or array shaped like the input")
    return g


def backward(tensor, grad=None, retain_graph=False):
    """Accumulate d tensor / d leaf into every leaf's ``.grad`` (see ``Tensor.backward``)."""
    Tensor = _Tensor or _load_tensor()  # also makes _to_array's module-level _Tensor valid
    if not tensor.requires_grad:
        raise RuntimeError(
            f"backward: tensor of shape {tensor.shape} does not require grad and has no graph; "
            f"create the leaves with requires_grad=True (and not under no_grad())")
    be = tensor.backend
    if grad is None:
        if tensor.array.size != 1:
            raise RuntimeError(
                f"backward: grad can be implicitly created only for a one-element output, got "
                f"shape {tensor.shape}; pass grad= a tensor of that shape (or call .sum() first)")
        g = be.full(tensor.shape, 1, tensor.dtype)
    else:
        g = grad.array if isinstance(grad, Tensor) else be.asarray(grad, dtype=tensor.dtype)
        if g.dtype != tensor.dtype:  # the gradient flows in the output's dtype (no float64 leak)
            g = be.astype(g, tensor.dtype)
        if tuple(g.shape) != tensor.shape:
            raise ValueError(f"backward: grad has shape {tuple(g.shape)} but the tensor has "
                             f"shape {tensor.shape}; they must match")
    root = tensor._node
    if root is None:  # a leaf
        _accumulate_leaf_hooked(tensor, g, be)
        return
    if root.freed:
        raise RuntimeError(
            f"backward: trying to backward through the graph a second time (at {root.name}); "
            f"its saved tensors were freed. Pass retain_graph=True to the first backward().")
    anomaly = is_anomaly_enabled()
    grads = {root: g}
    order = _topo_order(root)
    prev_grad = getattr(_mode, "enabled", True)
    _mode.enabled = False  # backward passes record no graph (first-order only)
    try:
        with numpy.errstate(all="ignore"):  # log(0)'s gradient is inf, silently (PyTorch)
            _walk(order, grads, anomaly, retain_graph, Tensor)
    finally:
        _mode.enabled = prev_grad


def _walk(order, grads, anomaly, retain_graph, Tensor, capture=None):
    """Propagate ``grads`` (node -> gradient of its output) through ``order`` reversed.

    ``capture`` (for :func:`grad`): a dict keyed by ``id`` of a leaf tensor or of a node
    whose gradient is wanted; those gradients are stored there and no leaf's ``.grad``
    is touched."""
    pending = {}  # leaves with hooks: their hooks see the summed gradient, once (PyTorch)
    for node in reversed(order):
        gy = grads.pop(node, None)
        if gy is None:
            continue
        if node.hooks:
            gy = _run_hooks(node.hooks, gy, node.backend)
        if capture is not None and id(node) in capture:
            capture[id(node)] = gy
        if node.freed:
            raise RuntimeError(
                f"{node.name}: trying to backward through the graph a second time; its saved "
                f"tensors were freed. Pass retain_graph=True to the first backward().")
        if node.retained is not None:
            t = node.retained()
            if t is not None:  # own copy: gy may be a read-only broadcast view
                t.grad = Tensor._make(node.backend.copy(gy) if t.grad is None else t.grad.array + gy,
                                      node.backend)
        if node._versions:
            node.check_versions()
        gyt = Tensor._make(gy, node.backend)
        in_grads = _call_backward(node, gyt, True) if anomaly else node.fn.backward(node, gyt)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        for i, (parent, ig) in enumerate(zip(node.parents, in_grads)):
            if parent is None or ig is None:
                continue
            ig = _to_array(ig, node, i)
            pbe = parent.backend
            shape = node.input_shapes[i]
            if ig.shape != shape:
                ig = _sum_to_shape(pbe, ig, shape)
            if anomaly:
                _check_finite(node, ig, f"gradient for input {i}")
            if isinstance(parent, Context):
                prev = grads.get(parent)
                grads[parent] = ig if prev is None else prev + ig
            elif capture is None:
                if _leaf_hooks[0] and (getattr(parent, "_grad_hooks", None) or
                                       getattr(parent, "_post_hooks", None)):
                    prev = pending.get(id(parent))
                    pending[id(parent)] = (parent, ig if prev is None else prev[1] + ig)
                else:
                    _accumulate_leaf(parent, ig, pbe)
            elif id(parent) in capture:
                prev = capture[id(parent)]
                capture[id(parent)] = ig if prev is None else prev + ig
        if not retain_graph:
            node.release()
    for leaf, g in pending.values():
        _accumulate_leaf_hooked(leaf, g, leaf.backend)


_leaf_hooks = [0]  # how many leaf-tensor hooks were ever registered: 0 keeps the walk lean


def _run_hooks(hooks, g, be):
    """Apply ``Tensor.register_hook`` hooks (in registration order) to the gradient
    array ``g``; a hook returning a Tensor replaces it."""
    Tensor = _Tensor or _load_tensor()
    for h in list(hooks.values()):
        r = h(Tensor._make(g, be))
        if r is not None:
            r = r.array if isinstance(r, Tensor) else be.asarray(r, dtype=g.dtype)
            if tuple(r.shape) != tuple(g.shape):
                raise RuntimeError(f"hook {getattr(h, '__name__', h)!r} returned a gradient of "
                                   f"shape {tuple(r.shape)} for a gradient of shape "
                                   f"{tuple(g.shape)}; a hook must keep the shape")
            g = r
    return g


def _accumulate_leaf_hooked(t, g, be):
    """Accumulate into a leaf's ``.grad`` after its gradient hooks, then run its
    post-accumulate-grad hooks (``hook(tensor)``)."""
    if not _leaf_hooks[0]:
        _accumulate_leaf(t, g, be)
        return
    hooks = getattr(t, "_grad_hooks", None)
    if hooks:
        g = _run_hooks(hooks, g, be)
    _accumulate_leaf(t, g, be)
    post = getattr(t, "_post_hooks", None)
    if post:
        for h in list(post.values()):
            h(t)


def grad(outputs, inputs, grad_outputs=None, retain_graph=False, allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned as a tuple of
    Tensors (PyTorch's ``torch.autograd.grad``); no ``.grad`` is modified.

    ``outputs``/``inputs``: a Tensor or a sequence of Tensors; ``grad_outputs`` is
    required for non-scalar outputs. An input the outputs do not depend on raises
    unless ``allow_unused=True`` (then its gradient is ``None``)."""
    Tensor = _Tensor or _load_tensor()
    outputs = (outputs,) if isinstance(outputs, Tensor) else tuple(outputs)
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = (grad_outputs,) * len(outputs) if grad_outputs is None else (grad_outputs,)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(outputs)} outputs but {len(grad_outputs)} grad_outputs")
    for t in inputs:
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: every input must be a Tensor that requires grad; got "
                               f"{'a tensor of shape ' + str(t.shape) if isinstance(t, Tensor) else type(t).__name__}")
    capture = {id(t._node if t._node is not None else t): None for t in inputs}
    grads, roots = {}, []
    for out, go in zip(outputs, grad_outputs):
        if not out.requires_grad:
            raise RuntimeError(f"grad: output of shape {out.shape} does not require grad")
        if go is None:
            if out.array.size != 1:
                raise RuntimeError(f"grad: grad_outputs is required for the non-scalar output "
                                   f"of shape {out.shape}")
            g = out.backend.full(out.shape, 1, out.dtype)
        else:
            g = go.array if isinstance(go, Tensor) else out.backend.asarray(go, dtype=out.dtype)
        if out._node is None:  # the output is itself a leaf input
            if id(out) in capture:
                prev = capture[id(out)]
                capture[id(out)] = g if prev is None else prev + g
            continue
        if out._node.freed:
            raise RuntimeError(f"grad: the graph of {out._node.name} was already freed; pass "
                               f"retain_graph=True to the earlier backward()/grad()")
        grads[out._node] = g if out._node not in grads else grads[out._node] + g
        roots.append(out._node)
    order, seen = [], set()
    for r in roots:
        if r not in seen:
            order.extend(_topo_order(r, seen))
    prev_grad = getattr(_mode, "enabled", True)
    _mode.enabled = False
    try:
        with numpy.errstate(all="ignore"):
            _walk(order, grads, is_anomaly_enabled(), retain_graph, Tensor, capture)
    finally:
        _mode.enabled = prev_grad
    if _leaf_hooks[0]:  # a leaf input's register_hook hooks see its summed gradient (PyTorch)
        done = set()
        for t in inputs:
            hooks = getattr(t, "_grad_hooks", None) if t._node is None else None
            if hooks and id(t) not in done and capture[id(t)] is not None:
                done.add(id(t))
                with numpy.errstate(all="ignore"):
                    capture[id(t)] = _run_hooks(hooks, capture[id(t)], t.backend)
    result = []
    for t in inputs:
        g = capture[id(t._node if t._node is not None else t)]
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"grad: an input of shape {t.shape} was not used to compute "
                                   f"the outputs; pass allow_unused=True to get None for it")
            result.append(None)
        else:
            result.append(Tensor._make(t.backend.copy(g), t.backend))
    return tuple(result)


def _call_backward(node, gy, anomaly):
    """``node.fn.backward`` with graph recording off (first-order only: tensor ops a
    backward runs must not build graphs that hold saved tensors alive). Under
    detect_anomaly the ops inside are not checked one by one: the gradients the node
    returns are, so an anomaly is reported against the node being differentiated."""
    prev_grad = is_grad_enabled()
    _mode.enabled = False
    try:
        if not anomaly:
            return node.fn.backward(node, gy)
        _mode.anomaly = False
        try:
            with numpy.errstate(all="ignore"):
                return node.fn.backward(node, gy)
        finally:
            _mode.anomaly = True
    finally:
        _mode.enabled = prev_grad


def _accumulate_leaf(t, g, be):
    Tensor = _Tensor or _load_tensor()
    if g.dtype != t.dtype:
        g = be.astype(g, t.dtype)
    if t.grad is None:
        # own copy: g may alias another input's gradient or be a broadcast view
        t.grad = Tensor._make(be.copy(g), be)
    else:
        t.grad = Tensor._make(t.grad.array + g, be)


# ---------------------------------------------------------------------------
# gradcheck
# ---------------------------------------------------------------------------
class GradcheckError(AssertionError):
    """The analytical gradient disagrees with finite differences."""


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, mode="full", n_directions=8,
              seed=0, raise_exception=True):
    """Check ``fn``'s backward against central finite differences, in float64.

    ``inputs`` is a Tensor or a tuple of arguments; floating Tensors are
    converted to float64 copies and those with ``requires_grad`` are checked;
    other arguments pass through unchanged. A fixed random cotangent ``u`` reduces every output to
    the scalar ``<u, fn(x)>``; its analytic gradient (one backward) is compared

    * ``mode="full"``: element by element with (f(x+eps e_j) - f(x-eps e_j)) / 2eps;
    * ``mode="random"``: along ``n_directions`` random unit directions v, with
      (f(x+eps v) - f(x-eps v)) / 2eps == <grad, v> -- for inputs too large to
      perturb one element at a time.

    Passes when ``|analytic - numeric| <= atol + rtol * |numeric|`` everywhere.
    Returns True, or raises :class:`GradcheckError` naming the input, the index and
    both values (returns False instead when ``raise_exception=False``).
    """
    from .tensor import Tensor
    if mode not in ("full", "random"):
        raise ValueError(f"gradcheck: mode must be 'full' or 'random', got {mode!r}")
    if isinstance(inputs, Tensor) or not isinstance(inputs, (tuple, list)):
        inputs = (inputs,)
    args, checked = [], []
    for a in inputs:
        if isinstance(a, Tensor) and a.dtype.kind == "f":
            # every floating input becomes a float64 copy (so float32 weights or running
            # statistics next to a checked input do not mix dtypes); only requires_grad
            # ones are checked
            req = a.requires_grad
            a = Tensor._make(a.backend.astype(a.backend.copy(a.array), numpy.float64), a.backend,
                             requires_grad=req)
            if req:
                checked.append(len(args))
        args.append(a)
    if not checked:
        raise ValueError("gradcheck: no floating-point input has requires_grad=True; nothing to check")
    rng = numpy.random.default_rng(seed)

    def outputs(*a):
        out = fn(*a)
        return out if isinstance(out, (tuple, list)) else (out,)

    with enable_grad():
        outs = outputs(*args)
    cot = [rng.standard_normal(o.shape) for o in outs]

    def scalar(*a):
        with no_grad():
            os_ = outputs(*a)
        return sum(float(numpy.sum(o.numpy().astype(numpy.float64) * c)) for o, c in zip(os_, cot))

    with enable_grad():
        total = None
        for o, c in zip(outs, cot):
            if not o.requires_grad:
                continue
            term = (o * Tensor._make(o.backend.asarray(c, dtype=o.dtype), o.backend)).sum()
            total = term if total is None else total + term
    if total is None:
        raise GradcheckError("gradcheck: no output depends on an input that requires grad")
    for i in checked:
        args[i].grad = None
    total.backward()

    def fail(msg):
        if raise_exception:
            raise GradcheckError(msg)
        return False

    for i in checked:
        x = args[i]
        ana = numpy.zeros(x.shape) if x.grad is None else x.grad.numpy()
        base = x.numpy().copy()

        def f_at(arr):
            x.array = x.backend.asarray(arr, dtype=numpy.float64)
            return scalar(*args)

        try:
            if mode == "full":
                num = numpy.zeros(base.size)
                flat = base.reshape(-1)
                for j in range(base.size):
                    xp_, xm = flat.copy(), flat.copy()
                    xp_[j] += eps
                    xm[j] -= eps
                    num[j] = (f_at(xp_.reshape(base.shape)) - f_at(xm.reshape(base.shape))) / (2 * eps)
                num = num.reshape(base.shape)
                bad = numpy.abs(ana - num) > atol + rtol * numpy.abs(num)
                if bad.any():
                    j = numpy.unravel_index(numpy.argmax(numpy.abs(ana - num) * bad), base.shape)
                    return fail(
                        f"gradcheck: wrong gradient for input {i} (shape {base.shape}) at index "
                        f"{tuple(int(k) for k in j)}: analytic {ana[j]:.8g} vs numeric {num[j]:.8g} "
                        f"({int(bad.sum())} of {bad.size} elements out of tolerance "
                        f"atol={atol}, rtol={rtol})")
            else:
                for k in range(n_directions):
                    v = rng.standard_normal(base.shape)
                    v /= numpy.linalg.norm(v) or 1.0
                    num = (f_at(base + eps * v) - f_at(base - eps * v)) / (2 * eps)
                    an = float(numpy.sum(ana * v))
                    if abs(an - num) > atol + rtol * abs(num):
                        return fail(
                            f"gradcheck: wrong gradient for input {i} (shape {base.shape}) along "
                            f"random direction {k}: analytic {an:.8g} vs numeric {num:.8g}")
        finally:
            x.array = x.backend.asarray(base, dtype=numpy.float64)
    return True


__all__ = ["Function", "Context", "RemovableHandle", "backward", "grad", "no_grad", "enable_grad", "set_grad_enabled",
           "is_grad_enabled", "inference_mode", "gradcheck", "GradcheckError", "detect_anomaly",
           "set_detect_anomaly", "is_anomaly_enabled", "AnomalyError"]


def once_differentiable(fn):
    """PyTorch's decorator for a Function's ``backward`` that is not itself
    differentiable; gradflow's gradients are first-order only, so it changes nothing."""
    return fn


FunctionCtx = Context


def _make_function_module():
    import types
    mod = types.ModuleType(__name__ + ".function", "autograd.function (PyTorch's): Function, "
                           "FunctionCtx, once_differentiable.")
    mod.Function, mod.FunctionCtx, mod.once_differentiable = Function, Context, once_differentiable
    sys.modules[mod.__name__] = mod  # ``from gradflow.autograd.function import Function``
    return mod


function = _make_function_module()
