"""Activation modules (``ReLU`` ... ``Softmax``), thin wrappers over
:mod:`gradflow.nn.functional`, and ``MultiheadAttention`` (where PyTorch keeps it too).

MultiheadAttention's mask convention (PyTorch's): a bool ``attn_mask`` or
``key_padding_mask`` is True where attention is *not allowed*; a float mask is added
to the scores (the opposite bool convention of ``F.scaled_dot_product_attention``)."""
from __future__ import annotations

import math

from ...creation import empty
from ...ops.attention import _attend
from ...tensor import Tensor
from .. import functional as F, init
from ..init import constant_
from ..parameter import Parameter
from .linear import Linear
from .module import Module
from .utils import factory_kwargs

_NEG_INF = float("-inf")


class ReLU(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.relu(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Hardtanh(Module):
    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, x):
        return F.hardtanh(x, self.min_val, self.max_val)


class ReLU6(Hardtanh):
    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)


class PReLU(Module):
    """Leaky ReLU with a learned slope: ``num_parameters`` slopes (1, or one per channel),
    initialised to ``init`` (0.25) as PyTorch."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = num_parameters
        self.weight = Parameter(empty(num_parameters, **factory_kwargs(device, dtype)))
        constant_(self.weight, init)  # (the argument shadows the init module)

    def forward(self, x):
        return F.prelu(x, self.weight)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return F.elu(x, self.alpha)


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)


class SiLU(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.silu(x)


class Softplus(Module):
    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)


def _softmax_dim(dim, ndim):
    if dim is not None:
        return dim
    return 0 if ndim in (0, 1, 3) else 1  # PyTorch's legacy implicit-dim rule


class Softmax(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, _softmax_dim(self.dim, x.ndim))

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.log_softmax(x, _softmax_dim(self.dim, x.ndim))

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax2d(Module):
    """Softmax over the channels of (N, C, H, W) or (C, H, W) input."""

    def forward(self, x):
        if x.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected a 3-D or 4-D input, got shape {x.shape}")
        return F.softmax(x, -3)


def _activation(name, fn, doc):
    def forward(self, x):
        return fn(x)

    def __init__(self, inplace=False):
        Module.__init__(self)

    return type(name, (Module,), {"forward": forward, "__init__": __init__, "__doc__": doc})


LogSigmoid = _activation("LogSigmoid", F.logsigmoid, "log(sigmoid(x)), stable.")


Hardsigmoid = _activation("Hardsigmoid", F.hardsigmoid, "clip(x / 6 + 1/2, 0, 1).")


Hardswish = _activation("Hardswish", F.hardswish, "x * hardsigmoid(x).")


Mish = _activation("Mish", F.mish, "x * tanh(softplus(x)).")


Softsign = _activation("Softsign", F.softsign, "x / (1 + |x|).")


Tanhshrink = _activation("Tanhshrink", F.tanhshrink, "x - tanh(x).")


class SELU(Module):
    """scale * elu(x, alpha) with PyTorch's self-normalising constants."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.selu(x)


class CELU(Module):
    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x):
        return F.celu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class GLU(Module):
    """a * sigmoid(b) for the halves a, b of the input along ``dim``."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.glu(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmin(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmin(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softshrink(Module):
    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, x):
        return F.softshrink(x, self.lambd)

    def extra_repr(self):
        return str(self.lambd)


class Hardshrink(Module):
    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, x):
        return F.hardshrink(x, self.lambd)

    def extra_repr(self):
        return f"{self.lambd}"


class Threshold(Module):
    """x where x > threshold, else value."""

    def __init__(self, threshold, value, inplace=False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, x):
        return F.threshold(x, self.threshold, self.value)

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}"


class RReLU(Module):
    """Randomized leaky ReLU: in training mode each negative element's slope is drawn from
    U(lower, upper) (global RNG); in eval mode the slope is (lower + upper) / 2."""

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False):
        super().__init__()
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, x):
        return F.rrelu(x, self.lower, self.upper, self.training)

    def extra_repr(self):
        return f"lower={self.lower}, upper={self.upper}"


def _float_mask(mask, dtype, what):
    """A MultiheadAttention mask as an additive float mask: bool True -> -inf, else 0."""
    if not isinstance(mask, Tensor):
        raise TypeError(f"MultiheadAttention: {what} must be a Tensor, got {type(mask).__name__}")
    if mask.dtype == bool:
        return mask.new_zeros(mask.shape, dtype=dtype).masked_fill(mask, _NEG_INF)
    if mask.dtype != dtype:
        raise TypeError(f"MultiheadAttention: {what} must be bool or have the query's dtype "
                        f"{dtype}, got {mask.dtype}")
    return mask


class MultiheadAttention(Module):
    """Multi-head attention (PyTorch's ``nn.MultiheadAttention``).

    Inputs query (L, N, E), key (S, N, kdim), value (S, N, vdim) -- (N, L, E) etc. with
    ``batch_first=True`` -- or unbatched (L, E), (S, kdim), (S, vdim). ``key_padding_mask``
    (N, S) or (S,); ``attn_mask`` (L, S) or (N * num_heads, L, S); bool masks are True where
    attention is *not* allowed, float masks are added. Returns ``(attn_output, weights)``:
    output shaped like query; weights (N, L, S) averaged over heads, or (N, num_heads, L, S)
    with ``average_attn_weights=False``, or None when ``need_weights=False``.

    Parameters as PyTorch: ``in_proj_weight`` (3E, E) and ``in_proj_bias`` (3E,) when
    kdim == vdim == E, else ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim),
    ``v_proj_weight`` (E, vdim); ``out_proj`` a Linear(E, E). Xavier-uniform projections,
    zero biases. ``add_bias_kv`` / ``add_zero_attn`` are not supported.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, device=None,
                 dtype=None):
        super().__init__()
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError("MultiheadAttention: add_bias_kv and add_zero_attn are not "
                                      "supported by gradflow")
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be positive and "
                             f"divisible by num_heads ({num_heads})")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, float(dropout)
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.batch_first, self.head_dim = bool(batch_first), embed_dim // num_heads
        self.add_zero_attn, self.bias_k, self.bias_v = False, None, None
        kw = factory_kwargs(device, dtype)
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty(3 * embed_dim, embed_dim, **kw))
            for n in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(n, None)
        else:
            self.q_proj_weight = Parameter(empty(embed_dim, embed_dim, **kw))
            self.k_proj_weight = Parameter(empty(embed_dim, self.kdim, **kw))
            self.v_proj_weight = Parameter(empty(embed_dim, self.vdim, **kw))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **kw)
        self._reset_parameters()

    def _reset_parameters(self):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    # -- checks and projections ------------------------------------------------------------------
    def _check_inputs(self, query, key, value):
        """Validates ranks and feature sizes; returns whether the inputs are batched."""
        for name, t, dim in (("query", query, self.embed_dim), ("key", key, self.kdim),
                             ("value", value, self.vdim)):
            if not isinstance(t, Tensor):
                raise TypeError(f"MultiheadAttention: {name} must be a gradflow Tensor, got "
                                f"{type(t).__name__}")
            if t.ndim not in (2, 3) or t.ndim != query.ndim:
                raise ValueError(f"MultiheadAttention: query, key and value must all be 3-D "
                                 f"(batched) or all 2-D (unbatched); got query {query.shape}, "
                                 f"key {key.shape}, value {value.shape}")
            if t.shape[-1] != dim:
                raise ValueError(f"MultiheadAttention: {name} must have {dim} features (last "
                                 f"dim), got shape {t.shape}")
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(f"MultiheadAttention: key {key.shape} and value {value.shape} must "
                             f"agree in all but the last dim")
        bdim = 0 if self.batch_first else 1
        if query.ndim == 3 and query.shape[bdim] != key.shape[bdim]:
            raise ValueError(f"MultiheadAttention: query {query.shape} and key {key.shape} have "
                             f"different batch sizes (batch_first={self.batch_first})")
        return query.ndim == 3

    def _project(self, query, key, value):
        """The q, k, v input projections of (N, L|S, E|kdim|vdim) inputs."""
        b = self.in_proj_bias
        bq, bk, bv = (None,) * 3 if b is None else b.chunk(3)
        if not self._qkv_same_embed_dim:
            ws = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        elif query is key and key is value:  # self-attention: one matmul
            return F.linear(query, self.in_proj_weight, b).chunk(3, -1)
        else:
            ws = self.in_proj_weight.chunk(3)
        return tuple(F.linear(x, w, bb) for x, w, bb in zip((query, key, value), ws, (bq, bk, bv)))

    def _merged_mask(self, attn_mask, key_padding_mask, n, L, S, dtype):
        """attn_mask and key_padding_mask as one additive mask broadcastable to
        (N, num_heads, L, S), or None."""
        mask = None
        if attn_mask is not None:
            am = _float_mask(attn_mask, dtype, "attn_mask")
            if am.shape == (L, S):
                mask = am
            elif am.shape == (n * self.num_heads, L, S):
                mask = am.reshape(n, self.num_heads, L, S)
            else:
                raise ValueError(f"MultiheadAttention: attn_mask must have shape ({L}, {S}) or "
                                 f"({n * self.num_heads}, {L}, {S}) (N * num_heads, L, S), got "
                                 f"{tuple(am.shape)}")
        if key_padding_mask is not None:
            kpm = _float_mask(key_padding_mask, dtype, "key_padding_mask")
            if kpm.shape != (n, S):
                raise ValueError(f"MultiheadAttention: key_padding_mask must have shape "
                                 f"(N, S) = ({n}, {S}), got {tuple(kpm.shape)}")
            kpm = kpm.reshape(n, 1, 1, S)
            mask = kpm if mask is None else mask + kpm
        return mask

    # -- forward -------------------------------------------------------------------------------
    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        batched = self._check_inputs(query, key, value)
        if is_causal and attn_mask is None:
            raise RuntimeError("MultiheadAttention: need attn_mask if specifying the is_causal "
                               "hint (e.g. nn.Transformer.generate_square_subsequent_mask(L))")
        same = query is key and key is value
        if not batched:  # (L, E) -> (1, L, E); masks gain the batch dim
            query, key, value = (t.unsqueeze(0) for t in (query, key, value))
            if key_padding_mask is not None and key_padding_mask.ndim == 1:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:  # work in (N, L, E)
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        if same:
            key = value = query
        n, L, S = query.shape[0], query.shape[1], key.shape[1]
        mask = self._merged_mask(attn_mask, key_padding_mask, n, L, S, query.dtype)
        q, k, v = (t.reshape(t.shape[0], t.shape[1], self.num_heads, self.head_dim)
                   .transpose(1, 2) for t in self._project(query, key, value))
        out, weights = _attend(q, k, v, mask, self.dropout if self.training else 0.0,
                               1.0 / math.sqrt(self.head_dim))  # (N, H, L, hd), (N, H, L, S)
        out = self.out_proj(out.transpose(1, 2).reshape(n, L, self.embed_dim))
        if not batched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(1)
        return out, (weights if batched else weights.squeeze(0))

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, " \
               f"batch_first={self.batch_first}"
