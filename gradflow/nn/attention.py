"""Attention (PyTorch's ``F.scaled_dot_product_attention``, ``nn.MultiheadAttention``,
``nn.TransformerEncoderLayer`` / ``nn.TransformerEncoder``), composed from differentiable
gradflow ops: the gradients come from autograd.

Mask conventions differ between the two APIs, exactly as in PyTorch:

- ``scaled_dot_product_attention``: a bool ``attn_mask`` is True where attention is
  *allowed*; a float mask is *added* to the scores.
- ``MultiheadAttention`` / the Transformer layers: a bool ``attn_mask`` or
  ``key_padding_mask`` is True where attention is *not allowed* (padding); a float mask
  is added.
"""
from __future__ import annotations

import copy
import math

from ..creation import empty, zeros
from ..ops.attention import _attend, scaled_dot_product_attention  # noqa: F401
from ..tensor import Tensor
from . import functional as F
from . import init
from .layers import Dropout, Linear, ModuleList, _factory
from .module import Module
from .normalization import LayerNorm
from .parameter import Parameter

_NEG_INF = float("-inf")


# -- MultiheadAttention --------------------------------------------------------------------------
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
        kw = _factory(device, dtype)
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


# -- Transformer encoder ----------------------------------------------------------------------
def _activation(activation):
    if callable(activation):
        return activation
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    raise RuntimeError(f"TransformerEncoderLayer: activation should be relu/gelu or a callable, "
                       f"not {activation!r}")


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with a residual connection and
    LayerNorm (post-norm, or pre-norm with ``norm_first=True``), as PyTorch's.

    src (S, N, d_model), or (N, S, d_model) with ``batch_first``, or unbatched (S, d_model);
    ``src_mask`` (S, S) or (N * nhead, S, S); ``src_key_padding_mask`` (N, S); bool masks are
    True where attention is not allowed. Returns a tensor shaped like ``src``.
    Submodules: ``self_attn``, ``linear1``, ``dropout``, ``linear2``, ``norm1``, ``norm2``,
    ``dropout1``, ``dropout2``.
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True,
                 device=None, dtype=None):
        super().__init__()
        kw = _factory(device, dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = bool(norm_first)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation_relu_or_gelu = {"relu": 1, "gelu": 2}.get(activation, 0) \
            if isinstance(activation, str) else 0
        self.activation = _activation(activation)

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x))


class TransformerEncoder(Module):
    """``num_layers`` deep copies of ``encoder_layer`` applied in turn (``layers.0`` ...),
    then ``norm`` if given. Same inputs as :class:`TransformerEncoderLayer`
    (``mask``, ``src_key_padding_mask``); ``enable_nested_tensor`` is accepted and
    ignored (gradflow has no nested tensors; padded positions are computed like PyTorch's
    non-nested path)."""

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True,
                 mask_check=True):
        super().__init__()
        if not isinstance(encoder_layer, Module):
            raise TypeError(f"TransformerEncoder: encoder_layer must be a Module, got "
                            f"{type(encoder_layer).__name__}")
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers, self.norm = num_layers, norm
        self.enable_nested_tensor, self.mask_check = enable_nested_tensor, mask_check

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        out = src
        for layer in self.layers:
            out = layer(out, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                        is_causal=bool(is_causal))
        return self.norm(out) if self.norm is not None else out


def generate_square_subsequent_mask(sz, device=None, dtype=None):
    """The (sz, sz) float causal mask: 0 on and below the diagonal, -inf above (PyTorch's
    ``nn.Transformer.generate_square_subsequent_mask``)."""
    kw = _factory(device, dtype)
    z = zeros(sz, sz, **kw)
    return z.masked_fill(z.new_ones((sz, sz), dtype=bool).triu(1), _NEG_INF)


# -- Transformer decoder and the full model ----------------------------------------------------
class TransformerDecoderLayer(Module):
    """Self-attention over ``tgt``, cross-attention to ``memory``, then a feed-forward
    block, each with a residual connection and LayerNorm (post-norm, or pre-norm with
    ``norm_first=True``), as PyTorch's.

    tgt (T, N, d_model), memory (S, N, d_model) -- batch first with ``batch_first`` -- or
    unbatched (T, d_model), (S, d_model); ``tgt_mask`` (T, T), ``memory_mask`` (T, S) (or
    (N * nhead, ...)), key padding masks (N, T) / (N, S); bool masks are True where attention
    is not allowed. Returns a tensor shaped like ``tgt``. Submodules: ``self_attn``,
    ``multihead_attn``, ``linear1``, ``dropout``, ``linear2``, ``norm1``-``norm3``,
    ``dropout1``-``dropout3``.
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True,
                 device=None, dtype=None):
        super().__init__()
        kw = _factory(device, dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **kw)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                 batch_first=batch_first, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = bool(norm_first)
        for i in (1, 2, 3):
            setattr(self, f"norm{i}", LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        for i in (1, 2, 3):
            setattr(self, f"dropout{i}", Dropout(dropout))
        self.activation = _activation(activation)

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal):
        x = self.multihead_attn(x, mem, mem, attn_mask=attn_mask,
                                key_padding_mask=key_padding_mask, need_weights=False,
                                is_causal=is_causal)[0]
        return self.dropout2(x)

    def _ff_block(self, x):
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask,
                                    memory_is_causal)
            return x + self._ff_block(self.norm3(x))
        x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
        x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask,
                                           memory_is_causal))
        return self.norm3(x + self._ff_block(x))


class TransformerDecoder(Module):
    """``num_layers`` deep copies of ``decoder_layer`` applied in turn (``layers.0`` ...),
    then ``norm`` if given; inputs as :class:`TransformerDecoderLayer`."""

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        if not isinstance(decoder_layer, Module):
            raise TypeError(f"TransformerDecoder: decoder_layer must be a Module, got "
                            f"{type(decoder_layer).__name__}")
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers, self.norm = num_layers, norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        out = tgt
        for layer in self.layers:
            out = layer(out, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                        tgt_key_padding_mask=tgt_key_padding_mask,
                        memory_key_padding_mask=memory_key_padding_mask,
                        tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal)
        return self.norm(out) if self.norm is not None else out


class Transformer(Module):
    """Encoder-decoder Transformer (PyTorch's ``nn.Transformer``): ``encoder`` =
    TransformerEncoder(num_encoder_layers, final LayerNorm), ``decoder`` likewise; every
    parameter with more than one dim re-initialised Xavier-uniform. ``forward(src, tgt,
    ...)`` returns a tensor shaped like ``tgt`` ((T, N, d_model), or (N, T, d_model) with
    ``batch_first``)."""

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6,
                 dim_feedforward=2048, dropout=0.1, activation="relu", custom_encoder=None,
                 custom_decoder=None, layer_norm_eps=1e-5, batch_first=False, norm_first=False,
                 bias=True, device=None, dtype=None):
        super().__init__()
        kw = _factory(device, dtype)
        common = dict(dropout=dropout, activation=activation, layer_norm_eps=layer_norm_eps,
                      batch_first=batch_first, norm_first=norm_first, bias=bias, **kw)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(
                TransformerEncoderLayer(d_model, nhead, dim_feedforward, **common),
                num_encoder_layers, LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(
                TransformerDecoderLayer(d_model, nhead, dim_feedforward, **common),
                num_decoder_layers, LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
                src_key_padding_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        bdim = 0 if self.batch_first else 1
        if src.ndim == 3 and tgt.ndim == 3 and src.shape[bdim] != tgt.shape[bdim]:
            raise RuntimeError(f"Transformer: the batch number of src {src.shape} and tgt "
                               f"{tgt.shape} must be equal (batch_first={self.batch_first})")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise RuntimeError(f"Transformer: the feature number of src {src.shape} and tgt "
                               f"{tgt.shape} must be equal to d_model ({self.d_model})")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    generate_square_subsequent_mask = staticmethod(generate_square_subsequent_mask)
