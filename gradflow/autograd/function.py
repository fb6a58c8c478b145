"""``Function``: a differentiable primitive, and ``Context``: its node in the graph.

One convention, for the library and for users::

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):                  # x: Tensor; compute on backend arrays
            y = x.backend.unary("exp", x.array)
            ctx.save_for_backward(y)          # inputs (Tensors) or the output (its array)
            return y                          # a backend array (or a Tensor, or a tuple)

        @staticmethod
        def backward(ctx, gy):                # gy: Tensor shaped like the output
            y, = ctx.saved_tensors
            return gy * y                     # Tensor ops: one gradient (or None) per argument

``forward`` runs with recording off and sees Tensors; what backward needs goes
through ``ctx.save_for_backward`` (checked against in-place modification when
read back); plain settings (axes, shapes, a kernel's index array) may sit on
``ctx`` as attributes. ``backward`` is written in Tensor operations. Normally it
runs with recording off; under ``backward(create_graph=True)`` it runs with
recording on, the saved tensors come back attached to the graph (a saved output
is attached to this very node), and so the gradient it returns is differentiable
again. A fused kernel used in a backward pass is therefore itself a Function with
its own backward (``Conv2dGradInput``/``Conv2dGradWeight``, ``MaxPool2dGrad``...).
"""
from __future__ import annotations

import builtins
import weakref

from ..backends import current_backend
from .anomaly import check_finite, user_frame
from .grad_mode import _mode, is_grad_enabled

_TENSOR = [None]  # the Tensor class, registered by gradflow.tensor (the core never imports up)


def register_tensor_class(cls):
    _TENSOR[0] = cls


def tensor_class():
    return _TENSOR[0]


class _Name(str):
    """A node's name: a str (messages use ``node.name``: ``Mul``, ``Unary(exp)``) that is
    also callable, as PyTorch's ``grad_fn.name()`` (``MulBackward0``, ``ExpBackward0``)."""
    torch_name = ""

    def __call__(self):
        return self.torch_name or str(self)


class _SavedOutput:
    """A saved output of its own node: kept as array + version counter (the node holding
    its output Tensor would be a cycle output -> node -> output) and re-attached to the
    node when unpacked under create_graph (PyTorch saves outputs the same way)."""
    __slots__ = ("array", "backend", "_version", "index")

    def __init__(self, array, backend, version, index):
        self.array, self.backend, self._version, self.index = array, backend, version, index

    @property
    def shape(self):
        return tuple(self.array.shape)

    def unpack(self, ctx):
        t = _TENSOR[0]._make(self.array, self.backend)
        t._version = self._version
        if is_grad_enabled():  # create_graph: d(output)/d(inputs) flows through this node
            node = ctx if self.index is None else ctx.out_nodes[self.index]()
            if node is not None:
                t._node, t.requires_grad = node, True
        return t


class Context:
    """The graph node of one Function application; ``ctx`` in forward/backward.

    Bookkeeping lives in slots; settings a primitive stores (``ctx.stride = ...``) go to
    ``__dict__`` and are dropped, with the saved tensors, when the graph is freed."""

    __slots__ = ("fn", "parents", "input_shapes", "needs_input_grad", "backend", "_saved",
                 "_saved_versions", "freed", "created_at", "retained", "hooks", "_non_diff",
                 "materialize_grads", "is_view", "out_nodes", "__dict__", "__weakref__")

    def __init__(self, fn, needs_input_grad, backend):
        self.fn = fn
        self.needs_input_grad = needs_input_grad
        self.backend = backend
        self.parents = ()
        self.input_shapes = ()
        self._saved = ()
        self._saved_versions = ()
        self.freed = False
        self.created_at = None
        self.retained = None
        self.hooks = None  # Tensor.register_hook on the tensor this node produced
        self._non_diff = ()
        self.materialize_grads = True
        self.is_view = False  # the output is a view of an input (shares its storage)
        self.out_nodes = None

    @property
    def name(self) -> str:
        op = self.__dict__.get("op")  # generic primitives (Unary, MaxMin) record which op
        base = self.fn.__name__.removesuffix("Fn")  # Conv2dFn (the Function) -> "Conv2d"
        name = _Name(f"{base}({op})" if isinstance(op, str) else base)
        name.torch_name = (op.capitalize() if isinstance(op, str) else base) + "Backward0"
        return name

    # -- saving for backward -----------------------------------------------------------------
    def save_for_backward(self, *items):
        """Keep Tensors (inputs), the forward's output (the array or Tensor it returns) or
        ``None`` for backward; ``ctx.saved_tensors`` gives them back as Tensors and raises
        if one was modified in place in between."""
        if True not in self.needs_input_grad:  # nothing will be recorded: keep nothing
            return
        Tensor = _TENSOR[0]
        self._saved = items
        # per Tensor, what it holds now: (version counter, version, node, array). Backward
        # checks the version; a tensor rebound since (an in-place op on a graph tensor,
        # ``detach_()``) comes back as an alias of what was saved
        self._saved_versions = tuple((t._version, t._version[0], t._node, t.array)
                                     if isinstance(t, Tensor) else None for t in items)

    @property
    def saved_tensors(self):
        if self.freed:
            raise RuntimeError(
                f"{self.name}: trying to backward through the graph a second time; its saved "
                f"tensors were freed after the first backward. Pass retain_graph=True to the "
                f"first backward() to keep them.")
        out = []
        for t, v in zip(self._saved, self._saved_versions):
            if v is not None:
                counter, version, node, array = v
                if counter[0] != version:
                    raise RuntimeError(
                        f"{self.name}: a tensor of shape {tuple(array.shape)} saved for backward "
                        f"was modified by an in-place operation (version {version} -> "
                        f"{counter[0]}); compute it out of place or clone() it before "
                        f"modifying")
                if type(t) is _SavedOutput:
                    t = t.unpack(self)
                elif t._version is not counter or t._node is not node:
                    a = _TENSOR[0]._make(array, t.backend, node is not None or t.requires_grad)
                    a._node, a._version = node, counter
                    t = a
            out.append(t)
        return tuple(out)

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

    def release(self):
        self.__dict__.clear()
        self._saved = self._saved_versions = ()
        self.parents = ()
        self.freed = True

    def __repr__(self):
        return f"<{self.name()}>"


class MultiGrad:
    """The gradient of a multi-output Function's node: {output index: Tensor}, summed
    when several outputs' selector nodes report. ``shape`` is None, as the node's
    recorded input shape, so the walk never reshapes it."""
    __slots__ = ("parts",)
    shape = None

    def __init__(self, parts):
        self.parts = parts

    def merge(self, other, add):
        parts = dict(self.parts)
        for k, v in other.parts.items():
            parts[k] = v if k not in parts else add(parts[k], v)
        return MultiGrad(parts)


def _multi_fns(cls):
    """(node fn, selector fn) for a Function whose forward returns a tuple: each
    differentiable output is produced by a selector node (its ``grad_fn``, so hooks and
    retain_grad work per output) whose only parent is the Function's node; the node's
    backward gathers the outputs' gradients and calls ``cls.backward(ctx, *grads)``."""
    cached = cls.__dict__.get("_gf_multi_fns")
    if cached is not None:
        return cached

    def node_backward(ctx, g):
        grads = []
        for j, meta in enumerate(ctx.__dict__["_gf_out_meta"]):
            t = g.parts.get(j)
            if t is None and meta is not None and ctx.materialize_grads:
                t = _TENSOR[0]._make(meta[2].zeros(meta[0], meta[1]), meta[2])
            grads.append(t)
        return cls.backward(ctx, *grads)

    def select_backward(sel, g):
        return MultiGrad({sel.__dict__["index"]: g})

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
        """Run ``forward`` on ``args`` and, if an input requires grad and grad mode is on,
        record a node for the output(s)."""
        Tensor = _TENSOR[0]
        mode = _mode
        if mode.quiet and not mode.enabled:
            # inside a plain (no create_graph) backward walk -- every op of a first-order
            # backward pass: nothing is recorded and float errors are already silenced
            backend = None
            for a in args:
                if isinstance(a, Tensor):
                    if backend is None:
                        backend = a.backend
                    elif a.backend is not backend:
                        _mixed_backends(cls, args, backend)
            if backend is not None:
                out = cls.forward(_Unrecorded(cls, backend, len(args)), *args, **kwargs)
                if getattr(out, "base", False) is None:  # a fresh backend array
                    return Tensor._make(out, backend)
                return _finish_unrecorded(cls, out, args, backend)
        backend = None
        requires = False
        for a in args:
            if isinstance(a, Tensor):
                if backend is None:
                    backend = a.backend
                elif a.backend is not backend:
                    _mixed_backends(cls, args, backend)
                if a.requires_grad:
                    requires = True
        if backend is None:
            backend = current_backend()
        if (requires and mode.enabled) or mode.anomaly:
            return _apply_recorded(cls, args, kwargs, backend, requires and mode.enabled)
        # Nothing is recorded (no_grad, constants, and every op of a first-order backward
        # pass): a bare context, the forward, its output wrapped -- no node, nothing saved.
        ctx = _Unrecorded(cls, backend, len(args))
        out = _run_forward(cls, ctx, args, kwargs, backend, mode)
        if getattr(out, "base", False) is None:  # a fresh backend array
            return Tensor._make(out, backend)
        return _finish_unrecorded(cls, out, args, backend, ctx)


class _Unrecorded(Context):
    """The context of a Function application that records no node: only what
    ``forward`` may use (``needs_input_grad`` all False, so it saves nothing)."""
    __slots__ = ()
    _saved = _non_diff = ()  # class-level: shadow Context's slots, never set per instance
    materialize_grads = True

    def __init__(self, fn, backend, n):
        self.fn = fn
        self.backend = backend
        self.needs_input_grad = (False,) * n

    def save_for_backward(self, *items):
        """Nothing will run backward: keep nothing."""


def _finish_unrecorded(cls, out, args, backend, ctx=None):
    """A recorded-nothing forward's output as a Tensor: a view of an input shares its
    version counter; a returned input Tensor becomes an alias; a tuple, one each."""
    Tensor = _TENSOR[0]
    if ctx is None:
        ctx = _Unrecorded(cls, backend, len(args))
    if isinstance(out, Tensor):
        return _own_output(ctx, out, [a for a in args if isinstance(a, Tensor)])
    if isinstance(out, tuple):
        return _finish_multi(cls, ctx, out, args, [a for a in args if isinstance(a, Tensor)],
                             backend, False, False)
    if not hasattr(out, "shape"):
        _bad_output(cls, out)
    out = Tensor._make(out, backend)
    src = _view_source(out, args)
    if src is not None:  # a view of an input shares its version counter (PyTorch)
        out._version = src._version
    return out


def _mixed_backends(cls, args, backend):
    Tensor = _TENSOR[0]
    shapes = ", ".join(f"{t.shape} on {t.backend.name}" for t in args if isinstance(t, Tensor))
    raise RuntimeError(
        f"{cls.__name__.removesuffix('Fn')}: inputs live on different backends ({shapes}); data "
        f"never moves implicitly -- move them with .to('{backend.name}') first")


def _bad_output(cls, out):
    raise TypeError(f"{cls.__name__}.forward returned {type(out).__name__}; it must return a "
                    f"Tensor or backend array, or a tuple of them")


def _run_forward(cls, ctx, args, kwargs, backend, mode):
    """``cls.forward`` with recording off and the backend's float errors silenced (once:
    inside a backward walk they already are)."""
    if not mode.enabled:
        if mode.quiet:
            return cls.forward(ctx, *args, **kwargs)
        with backend.errstate():  # inf/NaN results are silent, as in PyTorch
            return cls.forward(ctx, *args, **kwargs)
    mode.enabled = False
    try:
        if mode.quiet:
            return cls.forward(ctx, *args, **kwargs)
        with backend.errstate():
            return cls.forward(ctx, *args, **kwargs)
    finally:
        mode.enabled = True


def _view_source(out, args):
    """The input Tensor whose storage the forward's output array views, or None."""
    base = getattr(out.array, "base", None)
    if base is not None:
        Tensor = _TENSOR[0]
        for t in args:
            if isinstance(t, Tensor) and (base is t.array or base is getattr(t.array, "base", False)):
                return t
    return None


def _apply_recorded(cls, args, kwargs, backend, requires):
    """``Function.apply`` when a node may be recorded (or anomaly mode is on)."""
    Tensor = _TENSOR[0]
    mode = _mode
    if requires:  # one pass over the arguments: what needs grad, the parents, the shapes
        tensors, needs, parents, shapes = [], [], [], []
        for a in args:
            if isinstance(a, Tensor):
                tensors.append(a)
                rg = a.requires_grad
                needs.append(rg)
                parents.append((a._node or a) if rg else None)
                shapes.append(a.array.shape)
            else:
                needs.append(False)
                parents.append(None)
                shapes.append(None)
        needs = tuple(needs)
    else:
        tensors = [a for a in args if isinstance(a, Tensor)]
        needs = (False,) * len(args)
    ctx = Context(cls, needs, backend)
    anomaly = mode.anomaly
    if anomaly:
        ctx.created_at = user_frame()
        ctx.input_shapes = tuple(getattr(a, "shape", None) for a in args)
    out = _run_forward(cls, ctx, args, kwargs, backend, mode)
    if isinstance(out, tuple):
        return _finish_multi(cls, ctx, out, args, tensors, backend, requires, anomaly)
    raw = out  # a 0-d NumPy result may be a scalar that Tensor._make replaces
    if not isinstance(out, Tensor):
        if not hasattr(out, "shape"):
            _bad_output(cls, out)
        out = Tensor._make(out, backend)
        src = _view_source(out, tensors)
        if src is not None:  # a view of an input shares its version counter (PyTorch)
            out._version = src._version
            ctx.is_view = out.array is not src.array  # setitem returns the input's own array
    else:
        out = _own_output(ctx, out, tensors)
    ctx.backend = out.backend  # gradients w.r.t. the output live here
    if anomaly:
        check_finite(ctx, out.array, "forward output")
    if requires and not (ctx._non_diff and id(out) in ctx._non_diff):
        ctx.parents = tuple(parents)
        ctx.input_shapes = tuple(shapes)
        out._node = ctx
        out.requires_grad = True
        if ctx._saved:
            _mark_saved_outputs(ctx, [out], [raw], single=True)
    elif ctx._saved:
        ctx._saved = ctx._saved_versions = ()  # nothing will run backward: keep nothing
    return out


def _mark_saved_outputs(ctx, outs, raws, single):
    """Replace saved entries that are the forward's output(s) (the returned Tensor or its
    array) by :class:`_SavedOutput`; wrap other saved raw arrays as constant Tensors."""
    Tensor = _TENSOR[0]
    saved, versions = list(ctx._saved), list(ctx._saved_versions)
    for k, t in enumerate(saved):
        if t is None:
            continue
        for j, (o, r) in enumerate(zip(outs, raws)):
            if o is not None and (t is o or t is o.array or t is r):
                saved[k] = _SavedOutput(o.array, o.backend, o._version, None if single else j)
                versions[k] = (o._version, o._version[0], None, o.array)
                break
        else:
            if not isinstance(t, Tensor):  # an internal array: a constant of the graph
                saved[k] = Tensor._make(t, ctx.backend)
    ctx._saved, ctx._saved_versions = tuple(saved), tuple(versions)


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
    v = _TENSOR[0]._make(o.array, o.backend)
    v._version = o._version
    if id(o) in ctx._non_diff:
        ctx._non_diff = ctx._non_diff + (id(v),)
    return v


def _finish_multi(cls, ctx, out, args, tensors, backend, requires, anomaly):
    """``Function.apply`` for a forward that returned a tuple (see :func:`_multi_fns`)."""
    Tensor = _TENSOR[0]
    outs, raws = list(out), list(out)
    for j, o in enumerate(outs):
        if isinstance(o, Tensor):
            outs[j] = _own_output(ctx, o, tensors)
        elif hasattr(o, "shape") and hasattr(o, "dtype"):
            outs[j] = Tensor._make(o, backend)
            src = _view_source(outs[j], tensors)
            if src is not None:
                outs[j]._version = src._version
        # anything else (numbers, None) passes through and gets no gradient
    out_tensors = [o for o in outs if isinstance(o, Tensor)]
    if not out_tensors:
        raise TypeError(f"{cls.__name__}.forward returned a tuple without a Tensor")
    ctx.backend = out_tensors[0].backend
    if anomaly:
        for o in out_tensors:
            check_finite(ctx, o.array, "forward output")
    non_diff = set(ctx._non_diff)
    diff = [j for j, o in enumerate(outs) if isinstance(o, Tensor) and id(o) not in non_diff
            and o.dtype.kind in "fc"]
    if requires and diff:
        ctx.parents = tuple(((a._node or a) if a.requires_grad else None)
                            if isinstance(a, Tensor) else None for a in args)
        ctx.input_shapes = tuple(a.array.shape if isinstance(a, Tensor) else None for a in args)
        node_fn, sel_fn = _multi_fns(cls)
        ctx.fn = node_fn
        ctx.__dict__["_gf_out_meta"] = [
            (o.shape, o.dtype, o.backend) if isinstance(o, Tensor) else None for o in outs]
        nodes = [lambda: None] * len(outs)
        for j in diff:
            o = outs[j]
            sel = Context(sel_fn, (True,), o.backend)
            sel.parents, sel.input_shapes = (ctx,), (None,)
            sel.__dict__["index"] = j
            o._node = sel
            o.requires_grad = True
            nodes[j] = weakref.ref(sel)  # weak: the selector holds its parent, not back
        ctx.out_nodes = nodes
        if ctx._saved:
            _mark_saved_outputs(ctx, [o if isinstance(o, Tensor) else None for o in outs], raws,
                                single=False)
    elif ctx._saved:
        ctx._saved = ctx._saved_versions = ()
    return tuple(outs)


def once_differentiable(fn):
    """PyTorch's decorator for a ``backward`` that is not itself differentiable (it
    computes on raw arrays): under ``create_graph=True`` its results are constants
    of the new graph. gradflow's own backward passes are all differentiable."""
    return fn


FunctionCtx = Context
