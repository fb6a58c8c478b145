"""Run one forward pass and record, in call order, what every leaf layer produced.

Shared by :mod:`summary`, :mod:`receptive_field` and :mod:`filters`. A *leaf*
is a module with no child modules (Conv2d, ReLU, Linear...); containers such
as Sequential are walked through, not recorded. Hooks are attached with
``register_forward_hook`` when the module class has it, otherwise by wrapping
the module's ``forward`` on the instance; either way they are removed again,
and every module's train/eval flag is restored, even if the forward fails.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Record:
    name: str                 # dotted path from named_modules() ("" for the model itself)
    module: object
    input_shapes: list        # shapes of the tensor positional inputs
    output_shape: tuple
    output: object = field(default=None, repr=False)   # kept only when keep_outputs=True


def leaf_modules(model):
    """[(name, module)] of the modules without children, in registration order."""
    if not hasattr(model, "named_modules"):
        raise TypeError(f"expected a gradflow.nn.Module (something with named_modules()), "
                        f"got {type(model).__name__}")
    leaves = []
    for name, m in model.named_modules():
        if not any(True for _ in m.children()):
            leaves.append((name, m))
    return leaves


def _shape(t):
    return tuple(t.shape) if hasattr(t, "shape") else None


def trace(model, inputs, keep_outputs=False, only=None, eval_mode=True, kwargs=None):
    """Call ``model(*inputs, **kwargs)`` with hooks on its leaf modules.

    Returns ``(records, output)``. ``only``: restrict hooks to these module
    objects (e.g. the one layer whose feature maps are wanted). ``eval_mode``:
    run with every module in eval mode (no dropout, batch-norm running stats
    untouched), then restore each module's own flag."""
    from ..tensor import Tensor
    records = []
    targets = leaf_modules(model)
    if only is not None:
        wanted = {id(m) for m in only}
        targets = [(n, m) for n, m in model.named_modules() if id(m) in wanted]

    def make_hook(name):
        def hook(module, args, output):
            out = output[0] if isinstance(output, (tuple, list)) else output
            records.append(Record(name, module,
                                  [_shape(a) for a in args if isinstance(a, Tensor)],
                                  _shape(out), out if keep_outputs else None))
        return hook

    removers = []
    flags = [(m, getattr(m, "training", None)) for _, m in model.named_modules()]
    try:
        for name, m in targets:
            removers.append(_attach(m, make_hook(name)))
        if eval_mode and hasattr(model, "eval"):
            model.eval()
        output = model(*inputs, **(kwargs or {}))
    finally:
        for remove in reversed(removers):
            remove()
        for m, flag in flags:
            if flag is not None:
                m.training = flag
    return records, output


def _attach(module, hook):
    if hasattr(module, "register_forward_hook"):
        handle = module.register_forward_hook(hook)
        return handle.remove
    # no hook API: wrap forward on the instance (Module.__call__ calls self.forward)
    original = module.forward

    def forward(*args, **kwargs):
        out = original(*args, **kwargs)
        hook(module, args, out)
        return out

    module.__dict__["forward"] = forward
    return lambda: module.__dict__.pop("forward", None)


def resolve_layer(model, layer):
    """A layer given as a module, a dotted name from named_modules(), or an int
    index into the leaf layers (negative counts from the end) -> the module."""
    if hasattr(layer, "forward") and not isinstance(layer, (str, int)):
        return layer
    if isinstance(layer, str):
        mods = dict(model.named_modules())
        if layer not in mods:
            raise KeyError(f"no layer named {layer!r}; named layers are "
                           f"{[n for n in mods if n]}")
        return mods[layer]
    if isinstance(layer, int):
        leaves = leaf_modules(model)
        try:
            return leaves[layer][1]
        except IndexError:
            raise IndexError(f"layer index {layer} out of range for {len(leaves)} leaf "
                             f"layers") from None
    raise TypeError(f"a layer is a module, a name or an int index, got {layer!r}")


def layer_output(model, x, layer):
    """``model(x)`` while keeping the output of ``layer`` (first call): returns
    ``(layer_output, model_output)``; runs in the caller's grad mode and in eval
    mode."""
    m = resolve_layer(model, layer)
    records, out = trace(model, [x], keep_outputs=True, only=[m])
    if not records:
        raise RuntimeError(f"layer {type(m).__name__} was not called by the model's forward")
    return records[0].output, out
