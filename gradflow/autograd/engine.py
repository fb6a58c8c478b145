"""The backward walk: ``backward()`` and ``grad()``.

Nodes are visited once each in reverse topological order, found iteratively (no
recursion: a chain of 100k ops is fine). Each node's ``backward`` gets the summed
gradient of its output as a Tensor; the gradients it returns are summed back over
broadcasting to each input's shape, then added to the parent node's pending
gradient or, for a leaf, into its ``.grad``. Saved tensors are freed as the walk
passes unless ``retain_graph``.

Without ``create_graph`` the walk records nothing and adds gradients as raw arrays
(the fast path). With ``create_graph=True`` every backward runs with recording on,
so the gradients are Tensors of a new graph that can be differentiated again.
"""
from __future__ import annotations

import contextlib

from .anomaly import check_finite, is_anomaly_enabled
from .function import Context, MultiGrad, tensor_class
from .grad_mode import _mode

_leaf_hooks = [0]  # how many leaf-tensor hooks were ever registered: 0 keeps the walk lean


def _sum_axes(gshape, shape):
    """(leading axes to drop, axes of size 1 to keep) reducing ``gshape`` to ``shape``."""
    lead = len(gshape) - len(shape)
    return lead, tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape)
                                            if s == 1 and gshape[i + lead] != 1)


def _sum_to_shape(g, shape, create_graph):
    """Reduce a broadcast gradient Tensor ``g`` back to ``shape`` (NumPy's rules)."""
    lead, axes = _sum_axes(g.shape, shape)
    if create_graph:
        if axes:
            g = g.sum(dim=axes, keepdim=True)
        return g.reshape(shape) if g.shape != shape else g
    be, a = g.backend, g.array
    if axes:
        a = be.reduce("sum", a, axes, True)
    if tuple(a.shape) != shape:
        a = be.reshape(a, shape)
    return tensor_class()._make(a, be)


def _add(a, b, create_graph):
    if type(a) is MultiGrad:
        return a.merge(b, lambda u, v: _add(u, v, create_graph))
    if create_graph:
        return a + b
    return tensor_class()._make(a.backend.binary("add", a.array, b.array), a.backend)


def _as_grad(g, node, i):
    """A backward's result for input ``i`` as a Tensor (or a MultiGrad)."""
    Tensor = tensor_class()
    if isinstance(g, Tensor) or type(g) is MultiGrad:
        return g
    if isinstance(g, (int, float)):
        raise TypeError(f"{node.name}.backward returned a Python number for input {i}; "
                        f"return a Tensor shaped like the input")
    if not hasattr(g, "shape"):
        raise TypeError(f"{node.name}.backward returned {type(g).__name__} for input {i}; "
                        f"return a Tensor shaped like the input (or None)")
    return Tensor._make(node.backend.asarray(g), node.backend)  # a user's raw array


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


def _seed(out, grad, op):
    """The starting gradient for ``out`` as a Tensor (ones for a one-element output)."""
    Tensor = tensor_class()
    be = out.backend
    if grad is None:
        if out.array.size != 1:
            if op == "grad":
                raise RuntimeError(f"grad: grad_outputs is required for the non-scalar output "
                                   f"of shape {out.shape}; pass one of that shape (or call "
                                   f".sum() first)")
            raise RuntimeError(f"{op}: grad can be implicitly created only for a one-element "
                               f"output, got shape {out.shape}; pass grad= a tensor of that "
                               f"shape (or call .sum() first)")
        return Tensor._make(be.full(out.shape, 1, out.dtype), be)
    if not isinstance(grad, Tensor):
        grad = Tensor._make(be.asarray(grad, dtype=out.dtype), be)
    if grad.dtype != out.dtype:  # the gradient flows in the output's dtype (no float64 leak)
        grad = grad.to(out.dtype)
    if grad.shape != out.shape:
        raise ValueError(f"{op}: grad has shape {grad.shape} but the tensor has "
                         f"shape {out.shape}; they must match")
    return grad


def backward(tensor, grad=None, retain_graph=None, create_graph=False):
    """Accumulate d tensor / d leaf into every leaf's ``.grad`` (see ``Tensor.backward``)."""
    if not tensor.requires_grad:
        raise RuntimeError(
            f"backward: tensor of shape {tensor.shape} does not require grad and has no graph; "
            f"create the leaves with requires_grad=True (and not under no_grad())")
    retain_graph = create_graph if retain_graph is None else retain_graph
    g = _seed(tensor, grad, "backward")
    root = tensor._node
    if root is None:  # a leaf
        _run_quiet([], {}, False, create_graph, None, leaf=(tensor, g))
        return
    if root.freed:
        raise RuntimeError(
            f"backward: trying to backward through the graph a second time (at {root.name}); "
            f"its saved tensors were freed. Pass retain_graph=True to the first backward().")
    _run_quiet(_topo_order(root), {root: g}, retain_graph, create_graph, None)


def _run_quiet(order, grads, retain_graph, create_graph, capture, leaf=None):
    """Run the walk with recording set to ``create_graph`` and every backend's
    floating-point warnings silenced once for the whole walk (log(0)'s gradient is inf,
    silently, as in PyTorch)."""
    prev_grad, prev_quiet = _mode.enabled, _mode.quiet
    backends = {n.backend for n in order}
    if leaf is not None:
        backends.add(leaf[0].backend)
    with _silenced(backends):
        _mode.enabled, _mode.quiet = create_graph, True
        try:
            if leaf is not None:
                _accumulate_leaf_hooked(leaf[0], leaf[1], create_graph)
            else:
                _walk(order, grads, is_anomaly_enabled(), retain_graph, create_graph, capture)
        finally:
            _mode.enabled, _mode.quiet = prev_grad, prev_quiet


def _silenced(backends):
    """One context silencing every backend's float errors (usually just one backend)."""
    if len(backends) == 1:
        return next(iter(backends)).errstate()
    stack = contextlib.ExitStack()
    for be in backends:
        stack.enter_context(be.errstate())
    return stack


def _walk(order, grads, anomaly, retain_graph, create_graph, capture=None):
    """Propagate ``grads`` (node -> gradient Tensor of its output) through ``order``
    reversed.

    ``capture`` (for :func:`grad`): a dict keyed by ``id`` of a leaf tensor or of a node
    whose gradient is wanted; those gradients are stored there and no leaf's ``.grad``
    is touched."""
    pending = {}  # leaves with hooks: their hooks see the summed gradient, once (PyTorch)
    # how many edges into each hooked leaf are still to be walked: at 0 its gradient is
    # final, so it is accumulated and its hooks run then, while the walk goes on (as
    # PyTorch's AccumulateGrad node; lets DistributedDataParallel start an all-reduce
    # before the backward pass has finished)
    waiting = _hooked_leaf_edges(order) if _leaf_hooks[0] and capture is None else None
    Tensor = tensor_class()
    for node in reversed(order):
        gy = grads.pop(node, None)
        if gy is None:
            if waiting:
                _leaf_edges_done(node, waiting, pending, create_graph)
            continue
        if node.hooks:
            gy = _run_hooks(node.hooks, gy)
        if capture is not None and id(node) in capture:
            capture[id(node)] = gy
        if node.freed:
            raise RuntimeError(
                f"{node.name}: trying to backward through the graph a second time; its saved "
                f"tensors were freed. Pass retain_graph=True to the first backward().")
        if node.retained is not None:
            t = node.retained()
            if t is not None:
                t.grad = _leaf_value(t, gy, create_graph) if t.grad is None else \
                    _add(t.grad, gy, create_graph)
        in_grads = _call_backward(node, gy) if anomaly else node.fn.backward(node, gy)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        for i, (parent, ig) in enumerate(zip(node.parents, in_grads)):
            if parent is None or ig is None:
                continue
            if type(ig) is not Tensor:
                ig = _as_grad(ig, node, i)
            shape = node.input_shapes[i]
            if shape is not None and ig.array.shape != shape:
                ig = _sum_to_shape(ig, shape, create_graph)
            if anomaly and type(ig) is not MultiGrad:
                check_finite(node, ig.array, f"gradient for input {i}")
            if isinstance(parent, Context):
                prev = grads.get(parent)
                grads[parent] = ig if prev is None else _add(prev, ig, create_graph)
            elif capture is None:
                if _leaf_hooks[0] and (getattr(parent, "_grad_hooks", None) or
                                       getattr(parent, "_post_hooks", None)):
                    prev = pending.get(id(parent))
                    pending[id(parent)] = (parent, ig if prev is None else
                                           _add(prev[1], ig, create_graph))
                else:
                    _accumulate_leaf(parent, ig, create_graph)
            elif id(parent) in capture:
                prev = capture[id(parent)]
                capture[id(parent)] = ig if prev is None else _add(prev, ig, create_graph)
        if waiting:
            _leaf_edges_done(node, waiting, pending, create_graph)
        if not retain_graph:
            node.release()
    for leaf, g in pending.values():
        _accumulate_leaf_hooked(leaf, g, create_graph)


def _has_hooks(t):
    return bool(getattr(t, "_grad_hooks", None) or getattr(t, "_post_hooks", None))


def _hooked_leaf_edges(order):
    """id(leaf) -> number of edges from nodes in ``order`` to each leaf with hooks."""
    count = {}
    for node in order:
        for p in node.parents:
            if p is not None and not isinstance(p, Context) and _has_hooks(p):
                count[id(p)] = count.get(id(p), 0) + 1
    return count


def _leaf_edges_done(node, waiting, pending, create_graph):
    """``node`` has been walked: its edges to hooked leaves are done; a leaf with none
    left gets its summed gradient accumulated and its hooks run now."""
    for p in node.parents:
        k = id(p)
        if k in waiting:
            waiting[k] -= 1
            if waiting[k] == 0:
                del waiting[k]
                item = pending.pop(k, None)
                if item is not None:
                    _accumulate_leaf_hooked(item[0], item[1], create_graph)


def _call_backward(node, gy):
    """``node.fn.backward`` under detect_anomaly: the ops inside are not checked one by
    one; the gradients the node returns are, so an anomaly is reported against the node
    being differentiated."""
    _mode.anomaly = False
    try:
        return node.fn.backward(node, gy)
    finally:
        _mode.anomaly = True


def _run_hooks(hooks, g):
    """Apply ``Tensor.register_hook`` hooks (in registration order) to the gradient
    Tensor ``g``; a hook returning a Tensor replaces it."""
    Tensor = tensor_class()
    for h in list(hooks.values()):
        r = h(g)
        if r is not None:
            if not isinstance(r, Tensor):
                r = Tensor._make(g.backend.asarray(r, dtype=g.dtype), g.backend)
            if r.shape != g.shape:
                raise RuntimeError(f"hook {getattr(h, '__name__', h)!r} returned a gradient of "
                                   f"shape {r.shape} for a gradient of shape {g.shape}; a hook "
                                   f"must keep the shape")
            g = r
    return g


def _accumulate_leaf_hooked(t, g, create_graph):
    """Accumulate into a leaf's ``.grad`` after its gradient hooks, then run its
    post-accumulate-grad hooks (``hook(tensor)``)."""
    if not _leaf_hooks[0]:
        _accumulate_leaf(t, g, create_graph)
        return
    hooks = getattr(t, "_grad_hooks", None)
    if hooks:
        g = _run_hooks(hooks, g)
    _accumulate_leaf(t, g, create_graph)
    post = getattr(t, "_post_hooks", None)
    if post:
        for h in list(post.values()):
            h(t)


def _leaf_value(t, g, create_graph):
    """A fresh ``.grad`` for ``t`` from the gradient ``g``: its own storage (``g`` may
    alias another input's gradient or be a broadcast view), in ``t``'s dtype."""
    if g.dtype != t.dtype:
        g = g.to(t.dtype)
    if create_graph:
        return g.clone() if g.requires_grad else tensor_class()._make(g.backend.copy(g.array),
                                                                      g.backend)
    return tensor_class()._make(g.backend.copy(g.array), g.backend)


def _accumulate_leaf(t, g, create_graph):
    if t.grad is None:
        t.grad = _leaf_value(t, g, create_graph)
        return
    if g.dtype != t.dtype:
        g = g.to(t.dtype)
    t.grad = _add(t.grad, g, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned as a tuple of
    Tensors (PyTorch's ``torch.autograd.grad``); no ``.grad`` is modified.

    ``outputs``/``inputs``: a Tensor or a sequence of Tensors; ``grad_outputs`` is
    required for non-scalar outputs. An input the outputs do not depend on raises
    unless ``allow_unused=True`` (then its gradient is ``None``). With
    ``create_graph=True`` the returned gradients carry a graph of their own (so they
    can be differentiated again, e.g. for a gradient penalty or a Hessian-vector
    product); ``retain_graph`` defaults to ``create_graph``."""
    Tensor = tensor_class()
    outputs = (outputs,) if isinstance(outputs, Tensor) else tuple(outputs)
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = (grad_outputs,) * len(outputs) if grad_outputs is None else (grad_outputs,)
    grad_outputs = tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(outputs)} outputs but {len(grad_outputs)} grad_outputs")
    for t in inputs:
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: every input must be a Tensor that requires grad; got "
                               f"{'a tensor of shape ' + str(t.shape) if isinstance(t, Tensor) else type(t).__name__}")
    retain_graph = create_graph if retain_graph is None else retain_graph
    capture = {id(t._node if t._node is not None else t): None for t in inputs}
    grads, roots = {}, []
    for out, go in zip(outputs, grad_outputs):
        if not isinstance(out, Tensor):
            raise TypeError(f"grad: outputs must be Tensors, got {type(out).__name__}")
        if not out.requires_grad:
            raise RuntimeError(f"grad: output of shape {out.shape} does not require grad")
        g = _seed(out, go, "grad")
        if out._node is None:  # the output is itself a leaf input
            if id(out) in capture:
                prev = capture[id(out)]
                capture[id(out)] = g if prev is None else _add(prev, g, create_graph)
            continue
        if out._node.freed:
            raise RuntimeError(f"grad: the graph of {out._node.name} was already freed; pass "
                               f"retain_graph=True to the earlier backward()/grad()")
        grads[out._node] = g if out._node not in grads else \
            _add(grads[out._node], g, create_graph)
        roots.append(out._node)
    order, seen = [], set()
    for r in roots:
        if r not in seen:
            order.extend(_topo_order(r, seen))
    _run_quiet(order, grads, retain_graph, create_graph, capture)
    if _leaf_hooks[0]:  # a leaf input's register_hook hooks see its summed gradient (PyTorch)
        done = set()
        for t in inputs:
            hooks = getattr(t, "_grad_hooks", None) if t._node is None else None
            if hooks and id(t) not in done and capture[id(t)] is not None:
                done.add(id(t))
                capture[id(t)] = _run_hooks(hooks, capture[id(t)])
    result = []
    for t in inputs:
        g = capture[id(t._node if t._node is not None else t)]
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"grad: an input of shape {t.shape} was not used to compute "
                                   f"the outputs; pass allow_unused=True to get None for it")
            result.append(None)
        elif create_graph:
            result.append(g)
        else:
            result.append(Tensor._make(t.backend.copy(g.array), t.backend))
    return tuple(result)
