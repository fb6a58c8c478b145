"""``nn.utils``: gradient clipping and parameter vector helpers."""
from __future__ import annotations

import math

from ..autograd import no_grad
from ..creation import tensor
from ..ops.shape import cat, stack
from ..tensor import Tensor


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale all gradients in place so their joint ``norm_type``-norm is at most
    ``max_norm``; returns the total norm before clipping as a 0-d tensor (as PyTorch:
    ``.item()``, ``float()`` and comparisons work).

    As PyTorch, the total is the norm of the per-gradient norms and every gradient is
    multiplied by ``min(1, max_norm / (total + 1e-6))``, all in tensor ops: nothing is
    read back to the host (no device sync on CuPy), so a step that clips its gradients
    can be captured by ``gradflow.compile``. Only ``error_if_nonfinite=True`` reads the
    total. Gradients of several float types are combined in the widest of them."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return tensor(0.0)
    norm_type = float(norm_type)
    with no_grad():
        wide = max((g.dtype for g in grads), key=lambda d: d.itemsize)
        if norm_type == math.inf:
            norms = [g.abs().max() for g in grads]
        elif norm_type == 2.0:
            norms = [(g * g).sum().sqrt() for g in grads]
        else:
            norms = [(g.abs() ** norm_type).sum() ** (1.0 / norm_type) for g in grads]
        norms = stack([n if n.dtype == wide else n.to(wide) for n in norms])
        total = norms.max() if norm_type == math.inf else \
            (norms * norms).sum().sqrt() if norm_type == 2.0 else \
            (norms ** norm_type).sum() ** (1.0 / norm_type)
        if error_if_nonfinite and not math.isfinite(float(total.item())):
            raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                               f"gradients is {total.item()}, so they cannot be clipped; pass "
                               f"error_if_nonfinite=False to scale them anyway")
        coef = (float(max_norm) / (total + 1e-6)).clamp(None, 1.0)
        for g in grads:
            g.mul_(coef if coef.dtype == g.dtype else coef.to(g.dtype))
    return total


def clip_grad_value_(parameters, clip_value):
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    with no_grad():
        for p in params:
            if p.grad is not None:
                p.grad.clamp_(-clip_value, clip_value)


def parameters_to_vector(parameters):
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    i = 0
    with no_grad():
        for p in parameters:
            n = p.numel()
            p.copy_(vec[i:i + n].reshape(p.shape))
            i += n


# -- nn.utils.rnn: padding variable-length sequences ---------------------------------------------
def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack tensors of shape (L_i, *) into (B, L_max, *) (``batch_first``) or
    (L_max, B, *), filling with ``padding_value`` (differentiable in the sequences)."""
    seqs = list(sequences)
    if not seqs:
        raise ValueError("pad_sequence: received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise ValueError(f"pad_sequence: padding_side must be 'left' or 'right', got "
                         f"{padding_side!r}")
    trail = seqs[0].shape[1:]
    for i, s in enumerate(seqs):
        if not isinstance(s, Tensor) or s.ndim < 1 or s.shape[1:] != trail:
            raise ValueError(f"pad_sequence: every sequence must be a Tensor (L_i, *{trail}); "
                             f"sequence {i} has shape {getattr(s, 'shape', type(s).__name__)}")
    n = max(s.shape[0] for s in seqs)
    rows = []
    for s in seqs:
        k = n - s.shape[0]
        if k:
            fill = Tensor._make(s.backend.full((k,) + trail, padding_value, s.dtype), s.backend)
            s = cat([s, fill] if padding_side == "right" else [fill, s], 0)
        rows.append(s)
    return stack(rows, 0 if batch_first else 1)


def _make_rnn_module():
    import sys
    import types
    mod = types.ModuleType(__name__ + ".rnn", "nn.utils.rnn (PyTorch's): pad_sequence.")
    mod.pad_sequence = pad_sequence
    sys.modules[mod.__name__] = mod  # ``from gradflow.nn.utils.rnn import pad_sequence``
    return mod


rnn = _make_rnn_module()


#: torch.nn.utils names gradflow lacks -> what to do instead
UNSUPPORTED = {
    "weight_norm": "weight re-parametrisations are not implemented",
    "spectral_norm": "weight re-parametrisations are not implemented",
    "parametrize": "weight re-parametrisations are not implemented",
    "parametrizations": "weight re-parametrisations are not implemented",
    "prune": "pruning is not implemented; zero weights with a mask under no_grad",
}


from ..unsupported import module_getattr  # noqa: E402
__getattr__ = module_getattr("gradflow.nn.utils", UNSUPPORTED)
