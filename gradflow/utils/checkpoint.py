"""``gradflow.utils.checkpoint`` (PyTorch's activation checkpointing), as a **no-op**.

PyTorch's ``checkpoint(fn, *args)`` drops ``fn``'s intermediate activations after the
forward pass and recomputes them during backward, trading compute for memory.
gradflow's version simply calls ``fn(*args, **kwargs)`` and keeps the graph as usual:
the values and gradients are exactly those of the plain call, and **no memory is
saved**. Both ``use_reentrant=True`` and ``False`` behave like PyTorch's
``use_reentrant=False`` (gradients reach every input and parameter that needs them).
"""
from __future__ import annotations


def checkpoint(function, *args, use_reentrant=None, context_fn=None, determinism_check="default",
               debug=False, preserve_rng_state=True, **kwargs):
    """``function(*args, **kwargs)`` -- no recomputation, no memory saved (see the module
    docstring); the checkpointing options are accepted and ignored."""
    if not callable(function):
        raise TypeError(f"checkpoint: function must be callable, got {type(function).__name__}")
    return function(*args, **kwargs)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """Run ``functions`` (a Sequential or a list of modules/callables) one after another on
    ``input``; ``segments`` is checked as PyTorch checks it and otherwise ignored (no
    memory is saved)."""
    if hasattr(functions, "children") and not isinstance(functions, (list, tuple)):
        functions = list(functions.children())
    functions = list(functions)
    if not isinstance(segments, int) or segments < 1:
        raise ValueError(f"checkpoint_sequential: segments must be a positive int, got "
                         f"{segments!r}")
    for f in functions:
        input = f(input)
    return input
