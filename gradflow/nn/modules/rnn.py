"""Recurrent layers (PyTorch's ``nn.RNN``, ``nn.LSTM``, ``nn.GRU`` and their cells),
composed from differentiable gradflow ops: the gradients come from autograd.

Conventions, as PyTorch (``D`` = 2 if bidirectional else 1, ``H`` = hidden_size):

- input ``(L, N, H_in)``, or ``(N, L, H_in)`` with ``batch_first=True``, or unbatched
  ``(L, H_in)``;
- ``h_0`` / ``h_n`` (and LSTM's ``c_0`` / ``c_n``) ``(D * num_layers, N, H)`` -- never
  batch-first -- or ``(D * num_layers, H)`` for unbatched input; zeros when not given;
- output ``(L, N, D * H)`` (``(N, L, D * H)`` batch-first): the last layer's ``h_t`` for
  every ``t``, the forward and reverse directions concatenated;
- parameters ``weight_ih_l{k}`` ``(G * H, H_in_k)``, ``weight_hh_l{k}`` ``(G * H, H)``,
  ``bias_ih_l{k}``, ``bias_hh_l{k}`` ``(G * H,)``, with the suffix ``_reverse`` for the
  reverse direction; ``H_in_k`` is ``input_size`` for layer 0 and ``D * H`` above it.
  ``G`` = 1 (RNN), 4 (LSTM, gates in the order i, f, g, o), 3 (GRU, gates r, z, n), and
  GRU's candidate is ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``;
- every parameter starts ``U(-1/sqrt(H), 1/sqrt(H))``.

The input projection ``x @ W_ih^T + b_ih`` of a layer/direction is one matmul over all
time steps; only the recurrent part runs as a Python loop over time.
"""
from __future__ import annotations

import math
import warnings

from ...creation import empty
from ...ops.shape import cat, stack
from ...tensor import Tensor
from .. import functional as F, init
from ..parameter import Parameter
from .module import Module
from .utils import check_sizes, factory_kwargs

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


# -- one time step on a pre-projected input xw = x @ W_ih^T + b_ih, shape (N, G * H) -------------
# Each takes and returns the state as a tuple: (h,) for RNN/GRU, (h, c) for LSTM.
def _tanh_step(xw, state, w_hh, b_hh):
    return ((xw + F.linear(state[0], w_hh, b_hh)).tanh(),)


def _relu_step(xw, state, w_hh, b_hh):
    return ((xw + F.linear(state[0], w_hh, b_hh)).relu(),)


def _lstm_step(xw, state, w_hh, b_hh):
    h, c = state
    i, f, g, o = (xw + F.linear(h, w_hh, b_hh)).chunk(4, -1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c.tanh(), c


def _gru_step(xw, state, w_hh, b_hh):
    h = state[0]
    xr, xz, xn = xw.chunk(3, -1)
    hr, hz, hn = F.linear(h, w_hh, b_hh).chunk(3, -1)
    r, z = (xr + hr).sigmoid(), (xz + hz).sigmoid()
    n = (xn + r * hn).tanh()
    return (n + z * (h - n),)  # == (1 - z) * n + z * h


_STEPS = {"RNN_TANH": _tanh_step, "RNN_RELU": _relu_step, "LSTM": _lstm_step, "GRU": _gru_step}


def _time_steps(x):
    """The slices ``x[0], ..., x[L-1]`` of ``x`` (L, ...). Split by halving: a lone
    ``x[t]`` scatters its gradient into a zero array of ``x``'s full shape, so L of them
    cost O(L^2) in backward; halving keeps it O(L log L)."""
    n = x.shape[0]
    if n <= 2:
        return [x[t] for t in range(n)]
    mid = n // 2
    return _time_steps(x[:mid]) + _time_steps(x[mid:])


def _run_direction(step, x, state, w_ih, w_hh, b_ih, b_hh, reverse):
    """One layer, one direction over ``x`` (L, N, H_in) from ``state`` (tuple of (N, H)).
    Returns the outputs (L, N, H) in time order and the final state."""
    xw = F.linear(x, w_ih, b_ih)  # (L, N, G * H): every time step in one matmul
    steps = _time_steps(xw)
    outs = []
    for xw_t in (reversed(steps) if reverse else steps):
        state = step(xw_t, state, w_hh, b_hh)
        outs.append(state[0])
    if reverse:
        outs.reverse()
    return stack(outs, 0), state


def _check_tensor(name, what, t):
    if isinstance(t, Tensor):
        return
    if type(t).__name__ == "PackedSequence":
        raise NotImplementedError(f"{name}: PackedSequence input is not supported by gradflow; "
                                  f"pass a padded Tensor (nn.utils.rnn.pad_sequence)")
    raise TypeError(f"{name}: {what} must be a gradflow Tensor, got {type(t).__name__}")


class RNNBase(Module):
    """Shared machinery of :class:`RNN`, :class:`LSTM` and :class:`GRU` (see the module
    docstring for shapes and parameter names)."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        check_sizes(name, 1, hidden_size=hidden_size, num_layers=num_layers)
        check_sizes(name, input_size=input_size)
        if proj_size:
            raise NotImplementedError(f"{name}: proj_size={proj_size} is not supported by gradflow "
                                      f"(only proj_size=0)")
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) \
                or not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout should be a number in range [0, 1] representing "
                             f"the probability of an element being zeroed, got {dropout!r}")
        for what, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"{name}: {what} must be a positive int, got {v!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"dropout option adds dropout after all but last recurrent layer, so "
                          f"non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", UserWarning)
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bool(bias), bool(batch_first)
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bool(bidirectional), 0
        self._flat_weights_names = []
        kw = factory_kwargs(device, dtype)
        gates = _GATES[mode] * hidden_size
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else hidden_size * self._directions
            for d in range(self._directions):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                shapes = [("weight_ih", (gates, layer_in)), ("weight_hh", (gates, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (gates,)), ("bias_hh", (gates,))]
                for pname, shape in shapes:
                    setattr(self, pname + sfx, Parameter(empty(*shape, **kw)))
                    self._flat_weights_names.append(pname + sfx)
        self.reset_parameters()

    @property
    def _directions(self):
        return 2 if self.bidirectional else 1

    @property
    def _state_names(self):
        return ("h", "c") if self.mode == "LSTM" else ("h",)

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def flatten_parameters(self):
        """A no-op (PyTorch compacts cuDNN weights here); kept so scripts run unchanged."""

    @property
    def all_weights(self):
        """Per layer and direction, ``[weight_ih, weight_hh(, bias_ih, bias_hh)]``."""
        n = 4 if self.bias else 2
        ws = [getattr(self, k) for k in self._flat_weights_names]
        return [ws[i:i + n] for i in range(0, len(ws), n)]

    def _layer_weights(self, layer, d):
        """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer/direction (biases may be None)."""
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        w_ih, w_hh = getattr(self, "weight_ih" + sfx), getattr(self, "weight_hh" + sfx)
        if not self.bias:
            return w_ih, w_hh, None, None
        return w_ih, w_hh, getattr(self, "bias_ih" + sfx), getattr(self, "bias_hh" + sfx)

    # -- input checks ------------------------------------------------------------------------------
    def _check_input(self, x):
        name = type(self).__name__
        _check_tensor(name, "input", x)
        if x.ndim not in (2, 3):
            raise ValueError(f"{name}: expected input to be 2-D (L, H_in) unbatched or 3-D "
                             f"{'(N, L, H_in)' if self.batch_first else '(L, N, H_in)'} batched, "
                             f"got {x.ndim}-D input of shape {x.shape}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input.size(-1) must be equal to input_size. Expected "
                             f"{self.input_size}, got {x.shape[-1]} (input shape {x.shape})")
        w = self.weight_ih_l0
        if x.dtype != w.dtype:
            raise TypeError(f"{name}: input dtype {x.dtype} does not match the parameters' dtype "
                            f"{w.dtype}; convert one (module.to(...) or input.to(...))")
        return x.ndim == 3

    def _initial_state(self, hx, x, batched):
        """hx (or zeros) as a list, per layer/direction, of state tuples of (N, H)."""
        name, names = type(self).__name__, self._state_names
        n_states, batch = self.num_layers * self._directions, x.shape[1]
        if hx is None:
            zero = x.new_zeros((batch, self.hidden_size))
            return [(zero,) * len(names)] * n_states
        parts = tuple(hx) if len(names) == 2 else (hx,)
        if len(names) == 2 and (isinstance(hx, Tensor) or len(parts) != 2):
            raise TypeError(f"{name}: hx must be a tuple (h_0, c_0), got {type(hx).__name__}")
        want = (n_states, batch, self.hidden_size) if batched else (n_states, self.hidden_size)
        per = []
        for nm, t in zip(names, parts):
            _check_tensor(name, f"{nm}_0", t)
            if t.ndim != len(want):
                raise ValueError(f"{name}: for {'batched 3-D' if batched else 'unbatched 2-D'} "
                                 f"input, {nm}_0 should also be {len(want)}-D but got "
                                 f"{t.ndim}-D tensor of shape {t.shape}")
            if t.shape != want:
                raise ValueError(f"{name}: expected {nm}_0 of shape {want}, got {t.shape} "
                                 f"(input shape {x.shape if batched else x.squeeze(1).shape})")
            per.append((t if batched else t.unsqueeze(1)).unbind(0))
        return list(zip(*per))

    # -- forward -------------------------------------------------------------------------------
    def forward(self, input, hx=None):
        """``input`` (L, N, H_in) / (N, L, H_in) batch-first / (L, H_in) unbatched; returns
        ``(output, h_n)`` (``(output, (h_n, c_n))`` for LSTM), shapes as the module docstring."""
        batched = self._check_input(input)
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        states = self._initial_state(hx, x, batched)
        step, D, final = _STEPS[self.mode], self._directions, []
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                out, state = _run_direction(step, x, states[layer * D + d],
                                            *self._layer_weights(layer, d), reverse=bool(d))
                outs.append(out)
                final.append(state)
            x = outs[0] if D == 1 else cat(outs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        finals = [stack([s[i] for s in final], 0) for i in range(len(self._state_names))]
        if not batched:
            x, finals = x.squeeze(1), [f.squeeze(1) for f in finals]
        elif self.batch_first:
            x = x.transpose(0, 1)
        return x, (tuple(finals) if self.mode == "LSTM" else finals[0])

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        for k, default in (("bias", True), ("batch_first", False), ("dropout", 0.0),
                           ("bidirectional", False)):
            if getattr(self, k) != default:
                s += f", {k}={getattr(self, k)}"
        return s


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu).
    Returns ``(output, h_n)``; shapes in the module docstring."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}; use 'tanh' or 'relu'")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)


class LSTM(RNNBase):
    """Long short-term memory, gates i, f, g, o: ``c_t = f * c_{t-1} + i * g``,
    ``h_t = o * tanh(c_t)``. Returns ``(output, (h_n, c_n))``; ``hx`` is ``(h_0, c_0)``.
    ``proj_size`` other than 0 raises NotImplementedError."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device=device, dtype=dtype)


class GRU(RNNBase):
    """Gated recurrent unit, gates r, z, n: ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``,
    ``h' = (1 - z) * n + z * h``. Returns ``(output, h_n)``."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device=device, dtype=dtype)


# -- cells: one time step ------------------------------------------------------------------------
class RNNCellBase(Module):
    """One step of an RNN/LSTM/GRU: ``input`` (N, H_in) or unbatched (H_in,), state (N, H) or
    (H,) (zeros when not given). Parameters ``weight_ih`` (G * H, H_in), ``weight_hh``
    (G * H, H), ``bias_ih``, ``bias_hh`` (G * H,), init ``U(-1/sqrt(H), 1/sqrt(H))``."""

    _mode = "RNN_TANH"

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        for what, v in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"{name}: {what} must be a positive int, got {v!r}")
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bool(bias)
        kw, gates = factory_kwargs(device, dtype), _GATES[self._mode] * hidden_size
        self.weight_ih = Parameter(empty(gates, input_size, **kw))
        self.weight_hh = Parameter(empty(gates, hidden_size, **kw))
        self.bias_ih = Parameter(empty(gates, **kw)) if bias else None
        self.bias_hh = Parameter(empty(gates, **kw)) if bias else None
        self.reset_parameters()

    reset_parameters = RNNBase.reset_parameters

    def _check(self, x, state):
        """Validates input and state; returns them batched (N, ...) and whether x was."""
        name = type(self).__name__
        _check_tensor(name, "input", x)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input of shape (N, {self.input_size}) or "
                             f"({self.input_size},), got {x.shape}")
        if x.dtype != self.weight_ih.dtype:
            raise TypeError(f"{name}: input dtype {x.dtype} does not match the parameters' dtype "
                            f"{self.weight_ih.dtype}; convert one")
        batched = x.ndim == 2
        x = x if batched else x.unsqueeze(0)
        want = (x.shape[0], self.hidden_size) if batched else (self.hidden_size,)
        if state is None:
            zero = x.new_zeros((x.shape[0], self.hidden_size))
            return x, (zero,) * len(_cell_state_names(self._mode)), batched
        out = []
        for nm, t in zip(_cell_state_names(self._mode), state):
            _check_tensor(name, nm, t)
            if t.shape != want:
                raise ValueError(f"{name}: expected {nm} of shape {want} for input of shape "
                                 f"{x.shape if batched else x.squeeze(0).shape}, got {t.shape}")
            out.append(t if batched else t.unsqueeze(0))
        return x, tuple(out), batched

    def _step(self, x, state):
        x, state, batched = self._check(x, state)
        xw = F.linear(x, self.weight_ih, self.bias_ih)
        out = _STEPS[self._mode](xw, state, self.weight_hh, self.bias_hh)
        return out if batched else tuple(t.squeeze(0) for t in out)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if self._mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        return s


def _cell_state_names(mode):
    return ("h", "c") if mode == "LSTM" else ("hx",)


class RNNCell(RNNCellBase):
    """``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or relu); returns ``h'``."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None,
                 dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r}; use 'tanh' or "
                             f"'relu'")
        self.nonlinearity = nonlinearity
        self._mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input, hx=None):
        return self._step(input, None if hx is None else (hx,))[0]


class LSTMCell(RNNCellBase):
    """One LSTM step; ``hx`` is ``(h, c)`` or None; returns ``(h', c')``."""

    _mode = "LSTM"

    def forward(self, input, hx=None):
        if hx is not None and (isinstance(hx, Tensor) or len(hx) != 2):
            raise TypeError(f"LSTMCell: hx must be a tuple (h, c), got {type(hx).__name__}")
        return self._step(input, hx)


class GRUCell(RNNCellBase):
    """One GRU step (gates r, z, n as :class:`GRU`); returns ``h'``."""

    _mode = "GRU"

    def forward(self, input, hx=None):
        return self._step(input, None if hx is None else (hx,))[0]
