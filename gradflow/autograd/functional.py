"""``gradflow.autograd.functional``: PyTorch's ``torch.autograd.functional`` --
``vjp``, ``jvp``, ``jacobian``, ``hessian``, ``vhp`` and ``hvp`` of a function of
Tensors, built on :func:`gradflow.autograd.grad`.

Conventions as PyTorch's: ``inputs`` is a Tensor or a tuple of Tensors (the result
mirrors that: a tuple in, a tuple out); ``func`` returns a Tensor or a tuple of them.
The inputs are detached copies that require grad, so the caller's tensors are never
modified; with ``create_graph=True`` the results stay differentiable with respect to
the original inputs' graph (the copies are taken with ``view_as``-style aliasing of
the values, not a cut). ``jvp`` uses the double-vjp trick (a vjp of the vjp), so it
needs higher-order gradients, as do ``hessian``, ``vhp`` and ``hvp``.
"""
from __future__ import annotations

from .engine import grad
from .function import tensor_class
from .grad_mode import enable_grad


def _as_tuple(x, what, fn):
    Tensor = tensor_class()
    if isinstance(x, Tensor):
        return (x,), False
    if isinstance(x, (tuple, list)) and all(isinstance(t, Tensor) for t in x):
        return tuple(x), True
    raise TypeError(f"autograd.functional.{fn}: {what} must be a Tensor or a tuple of Tensors, "
                    f"got {type(x).__name__}")


def _grad_inputs(inputs, create_graph):
    """Inputs that require grad: the originals' graph kept when ``create_graph``."""
    out = []
    for t in inputs:
        if create_graph and t.requires_grad:
            out.append(t.view_as(t))  # a non-leaf alias: gradients flow back to t
        else:
            out.append(t.detach().requires_grad_(t.dtype.kind == "f"))
    return tuple(out)


def _zeros_for(gs, like):
    return tuple(g if g is not None else t.new_zeros(*t.shape) for g, t in zip(gs, like))


def _call(func, inputs, fn):
    outs = func(*inputs)
    return _as_tuple(outs, "func's output", fn)


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), v^T J)``: the vector-Jacobian product. ``v`` (shaped like the
    output) may be omitted for a one-element output."""
    ins, in_tuple = _as_tuple(inputs, "inputs", "vjp")
    with enable_grad():
        xs = _grad_inputs(ins, create_graph)
        outs, out_tuple = _call(func, xs, "vjp")
        if v is None:
            if any(o.numel() != 1 for o in outs):
                raise RuntimeError("autograd.functional.vjp: v can only be omitted when func "
                                   f"returns one-element tensors, got shapes "
                                   f"{[o.shape for o in outs]}")
            vs = tuple(o.new_ones(*o.shape) for o in outs)
        else:
            vs, _ = _as_tuple(v, "v", "vjp")
            if len(vs) != len(outs) or any(a.shape != b.shape for a, b in zip(vs, outs)):
                raise RuntimeError(f"autograd.functional.vjp: v has shapes "
                                   f"{[t.shape for t in vs]}, func's outputs "
                                   f"{[o.shape for o in outs]}")
        diff = [(o, u) for o, u in zip(outs, vs) if o.requires_grad]
        if diff:
            gs = grad([o for o, _ in diff], list(xs), grad_outputs=[u for _, u in diff],
                      create_graph=create_graph, allow_unused=True)
        else:
            gs = (None,) * len(xs)
    if strict and any(g is None for g in gs):
        raise RuntimeError("autograd.functional.vjp: the output is independent of an input "
                           "(strict=True)")
    gs = _zeros_for(gs, xs)
    if not create_graph:
        outs = tuple(o.detach() for o in outs)
        gs = tuple(g.detach() for g in gs)
    return (outs if out_tuple else outs[0]), (gs if in_tuple else gs[0])


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), J v)``: the Jacobian-vector product, as the vjp of a vjp
    (``J v = d/du (u^T J) v``)."""
    ins, in_tuple = _as_tuple(inputs, "inputs", "jvp")
    vs = _vector(v, ins, "jvp")
    with enable_grad():
        xs = _grad_inputs(ins, create_graph)
        outs, out_tuple = _call(func, xs, "jvp")
        us = tuple(o.new_zeros(*o.shape).requires_grad_(True) for o in outs)
        diff = [(o, u) for o, u in zip(outs, us) if o.requires_grad]
        if not diff:
            jv = tuple(o.new_zeros(*o.shape) for o in outs)
        else:
            gs = grad([o for o, _ in diff], list(xs), grad_outputs=[u for _, u in diff],
                      create_graph=True, allow_unused=True)
            pairs = [(g, t) for g, t in zip(gs, vs) if g is not None]
            if not pairs:
                jv = tuple(o.new_zeros(*o.shape) for o in outs)
            else:
                jv = grad([g for g, _ in pairs], list(us), grad_outputs=[t for _, t in pairs],
                          create_graph=create_graph, allow_unused=True)
                jv = _zeros_for(jv, outs)
    if strict and all(j is None for j in jv):
        raise RuntimeError("autograd.functional.jvp: the output is independent of the inputs "
                           "(strict=True)")
    if not create_graph:
        outs = tuple(o.detach() for o in outs)
        jv = tuple(j.detach() for j in jv)
    return (outs if out_tuple else outs[0]), (jv if out_tuple else jv[0])


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """The Jacobian ``d func(inputs) / d inputs``, one vjp per output element: shape
    ``output.shape + input.shape`` (nested tuples for several outputs/inputs, as
    PyTorch: ``J[i][j]`` is output i by input j)."""
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(f"autograd.functional.jacobian: strategy must be 'reverse-mode' or "
                         f"'forward-mode', got {strategy!r}")
    ins, in_tuple = _as_tuple(inputs, "inputs", "jacobian")
    with enable_grad():
        xs = _grad_inputs(ins, create_graph)
        outs, out_tuple = _call(func, xs, "jacobian")
        rows = []
        for o in outs:
            flat = o.reshape(-1)
            per_input = [[] for _ in xs]
            for k in range(flat.shape[0]):
                if o.requires_grad:
                    gs = grad(flat[k], list(xs), retain_graph=True, create_graph=create_graph,
                              allow_unused=True)
                else:
                    gs = (None,) * len(xs)
                if strict and any(g is None for g in gs):
                    raise RuntimeError("autograd.functional.jacobian: an output is independent "
                                       "of an input (strict=True)")
                for j, (g, x) in enumerate(zip(gs, xs)):
                    per_input[j].append(g if g is not None else x.new_zeros(*x.shape))
            block = []
            for j, x in enumerate(xs):
                jac = x.new_zeros(len(per_input[j]), *x.shape)
                for k, g in enumerate(per_input[j]):
                    jac[k] = g  # setitem is differentiable: create_graph keeps the graph
                jac = jac.reshape(*o.shape, *x.shape)
                block.append(jac if create_graph else jac.detach())
            rows.append(tuple(block) if in_tuple else block[0])
    return tuple(rows) if out_tuple else rows[0]


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """The Hessian of a scalar function: the Jacobian of its gradient, shape
    ``input.shape + input.shape`` (a tuple of tuples for several inputs)."""
    ins, in_tuple = _as_tuple(inputs, "inputs", "hessian")

    def gradient(*xs):
        out = func(*xs)
        Tensor = tensor_class()
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError("autograd.functional.hessian: func must return a single "
                               f"one-element Tensor, got "
                               f"{getattr(out, 'shape', type(out).__name__)}")
        gs = grad(out, list(xs), create_graph=True, allow_unused=True)
        return tuple(g if g is not None else x.new_zeros(*x.shape) for g, x in zip(gs, xs))

    h = jacobian(gradient, ins, create_graph=create_graph, strict=strict)
    return h if in_tuple else h[0][0]


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), v^T H)`` for a scalar ``func``."""
    ins, in_tuple = _as_tuple(inputs, "inputs", "vhp")
    vs = _vector(v, ins, "vhp")
    with enable_grad():
        xs = _grad_inputs(ins, create_graph)
        out = func(*xs)
        _check_scalar(out, "vhp")
        gs = grad(out, list(xs), create_graph=True, allow_unused=True)
        pairs = [(g, t) for g, t in zip(gs, vs) if g is not None and g.requires_grad]
        if pairs:
            hv = grad([g for g, _ in pairs], list(xs), grad_outputs=[t for _, t in pairs],
                      create_graph=create_graph, allow_unused=True)
        else:
            hv = (None,) * len(xs)
    if strict and any(h is None for h in hv):
        raise RuntimeError("autograd.functional.vhp: an input does not reach the second "
                           "derivative (strict=True)")
    hv = _zeros_for(hv, xs)
    if not create_graph:
        out, hv = out.detach(), tuple(h.detach() for h in hv)
    return out, (hv if in_tuple else hv[0])


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), H v)`` for a scalar ``func`` (equal to ``vhp`` for the
    symmetric Hessians of twice-differentiable functions)."""
    return vhp(func, inputs, v, create_graph, strict)


def _vector(v, ins, fn):
    if v is None:
        if any(t.numel() != 1 for t in ins):
            raise RuntimeError(f"autograd.functional.{fn}: v can only be omitted for "
                               f"one-element inputs")
        return tuple(t.new_ones(*t.shape) for t in ins)
    vs, _ = _as_tuple(v, "v", fn)
    if len(vs) != len(ins) or any(a.shape != b.shape for a, b in zip(vs, ins)):
        raise RuntimeError(f"autograd.functional.{fn}: v has shapes {[t.shape for t in vs]}, "
                           f"the inputs {[t.shape for t in ins]}")
    return vs


def _check_scalar(out, fn):
    Tensor = tensor_class()
    if not isinstance(out, Tensor) or out.numel() != 1:
        raise RuntimeError(f"autograd.functional.{fn}: func must return a single one-element "
                           f"Tensor, got {getattr(out, 'shape', type(out).__name__)}")
