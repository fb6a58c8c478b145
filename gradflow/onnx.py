"""``gradflow.onnx.export``: write a model as a real ONNX graph (the ``onnx`` package,
an optional extra: ``pip install gradflow[onnx]``), as ``torch.onnx.export`` does.

The exporter traces *modules*: it runs the model once on ``args`` in eval mode with a
forward hook on every leaf module, records each call (module, input tensors, output
tensor) in order, and turns each into ONNX nodes by the module's type; parameters and
buffers become initializers. Tensors are followed by identity, so any composition of
modules works (``nn.Sequential``, custom ``forward`` methods calling submodules, a
module used twice). What happens *between* modules in a custom ``forward`` -- a
functional call (``F.relu(x)``, ``torch.flatten(x, 1)``, ``x.view(...)``, ``x + y``)
-- is not seen by the tracer; a module whose input did not come from the graph inputs
or another module is reported by name, with the module to use instead (``nn.ReLU``,
``nn.Flatten``...).

Supported modules: Linear (Gemm / MatMul+Add), Conv1d/Conv2d (zero padding, groups,
dilation, 'same'), MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvg/MaxPool2d (global, or
evenly dividing sizes), BatchNorm1d/2d (running statistics), ReLU, LeakyReLU, ELU,
SELU, Sigmoid, Tanh, GELU (exact and tanh), SiLU, Mish, Softplus, Hardtanh, ReLU6,
Hardsigmoid, Hardswish, Softmax, LogSoftmax, Flatten, Dropout (identity in eval),
Identity, PixelShuffle (DepthToSpace CRD), Embedding (Gather), and RNN/LSTM/GRU
(stacked and bidirectional, batch_first, initial states; weights re-packed into ONNX's
gate order: LSTM i,o,f,c and GRU z,r,h with ``linear_before_reset``). Not supported:
attention and Transformer layers, normalisations other than BatchNorm. Nested outputs
(``output, (h_n, c_n)``) are flattened in order into the graph outputs.
"""
from __future__ import annotations

import math
import numbers
import os

import numpy

from .autograd import no_grad
from .nn.module import Module
from .tensor import Tensor

DEFAULT_OPSET = 17


class UnsupportedExport(RuntimeError):
    """The model uses something the module-tracing exporter cannot express."""


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:  # pragma: no cover - exercised when the extra is missing
        raise ImportError("gradflow.onnx.export needs the 'onnx' package: pip install "
                          "gradflow[onnx] (or pip install onnx)") from None
    return onnx, helper, numpy_helper


def _tuple(v, n):
    if isinstance(v, numbers.Integral):
        return (int(v),) * n
    v = tuple(int(x) for x in v)
    return v * n if len(v) == 1 else v


class _Graph:
    """Nodes and initializers being built, with fresh value names."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.inits, self.names = [], [], {}
        self._count = 0

    def fresh(self, hint):
        self._count += 1
        return f"{hint}_{self._count}"

    def node(self, op, inputs, outputs=None, **attrs):
        outputs = outputs or [self.fresh(op.lower())]
        self.nodes.append(self.helper.make_node(op, list(inputs), list(outputs),
                                                name=self.fresh(op), **attrs))
        return outputs[0]

    def const(self, name, array):
        if name in self.names:
            return self.names[name]
        arr = numpy.ascontiguousarray(array)
        self.inits.append(self.numpy_helper.from_array(arr, name))
        self.names[name] = name
        return name

    def scalar(self, value, dtype):
        return self.const(self.fresh("const"), numpy.asarray(value, dtype=dtype))


def _param(g, module_names, module, attr):
    t = getattr(module, attr)
    return g.const(f"{module_names[id(module)]}.{attr}".lstrip("."), t.detach().numpy())


# -- converters: (graph, module, names of the inputs, input tensors, output tensor, prefix) --
def _linear(g, m, ins, xs, out, pname):
    w = _param(g, pname, m, "weight")
    b = _param(g, pname, m, "bias") if m.bias is not None else None
    if xs[0].ndim == 2:
        return g.node("Gemm", [ins[0], w] + ([b] if b else []), transB=1)
    wt = g.const(f"{pname[id(m)]}.weight_t", m.weight.detach().numpy().T)
    y = g.node("MatMul", [ins[0], wt])
    return g.node("Add", [y, b]) if b else y


def _conv(g, m, ins, xs, out, pname):
    n = xs[0].ndim - 2
    if getattr(m, "padding_mode", "zeros") != "zeros":
        raise UnsupportedExport(f"onnx.export: {type(m).__name__} with padding_mode="
                                f"{m.padding_mode!r} is not supported (zeros only)")
    if getattr(m, "transposed", False):
        raise UnsupportedExport(f"onnx.export: {type(m).__name__} is not supported")
    k, s, d = _tuple(m.kernel_size, n), _tuple(m.stride, n), _tuple(m.dilation, n)
    if m.padding == "valid":
        p = (0,) * n
        pads = p + p
    elif m.padding == "same":
        total = [di * (ki - 1) for di, ki in zip(d, k)]
        pads = tuple(t // 2 for t in total) + tuple(t - t // 2 for t in total)
    else:
        p = _tuple(m.padding, n)
        pads = p + p
    inputs = [ins[0], _param(g, pname, m, "weight")]
    if m.bias is not None:
        inputs.append(_param(g, pname, m, "bias"))
    return g.node("Conv", inputs, kernel_shape=list(k), strides=list(s), dilations=list(d),
                  pads=list(pads), group=int(m.groups))


def _pool(op):
    def convert(g, m, ins, xs, out, pname):
        n = xs[0].ndim - 2
        if getattr(m, "return_indices", False):
            raise UnsupportedExport(f"onnx.export: {type(m).__name__}(return_indices=True) is "
                                    f"not supported")
        k = _tuple(m.kernel_size, n)
        s = _tuple(m.stride if m.stride is not None else m.kernel_size, n)
        p = _tuple(m.padding, n)
        attrs = dict(kernel_shape=list(k), strides=list(s), pads=list(p + p),
                     ceil_mode=int(bool(m.ceil_mode)))
        if op == "MaxPool":
            attrs["dilations"] = list(_tuple(m.dilation, n))
        else:
            if getattr(m, "divisor_override", None):
                raise UnsupportedExport("onnx.export: AvgPool with divisor_override is not "
                                        "supported")
            attrs["count_include_pad"] = int(bool(m.count_include_pad))
        return g.node(op, [ins[0]], **attrs)
    return convert


def _adaptive(op, global_op):
    def convert(g, m, ins, xs, out, pname):
        if getattr(m, "return_indices", False):
            raise UnsupportedExport("onnx.export: AdaptiveMaxPool(return_indices=True) is not "
                                    "supported")
        size_in, size_out = xs[0].shape[2:], out.shape[2:]
        if all(o == 1 for o in size_out):
            return g.node(global_op, [ins[0]])
        if any(i % o for i, o in zip(size_in, size_out)):
            raise UnsupportedExport(f"onnx.export: {type(m).__name__} from {size_in} to "
                                    f"{size_out} needs uneven windows; only global pooling or "
                                    f"sizes that divide the input are supported")
        k = [i // o for i, o in zip(size_in, size_out)]
        return g.node(op, [ins[0]], kernel_shape=k, strides=k, pads=[0] * (2 * len(k)))
    return convert


def _batchnorm(g, m, ins, xs, out, pname):
    if m.running_mean is None:
        raise UnsupportedExport(f"onnx.export: {type(m).__name__}(track_running_stats=False) "
                                f"normalises with batch statistics, which ONNX inference "
                                f"graphs do not; train with running statistics")
    c = m.num_features
    dt = m.running_mean.numpy().dtype
    scale = _param(g, pname, m, "weight") if m.weight is not None else \
        g.const(g.fresh("ones"), numpy.ones(c, dt))
    bias = _param(g, pname, m, "bias") if m.bias is not None else \
        g.const(g.fresh("zeros"), numpy.zeros(c, dt))
    x = ins[0]
    flat = xs[0].ndim == 2
    if flat:  # (N, C) -> (N, C, 1) for BatchNormalization, and back
        x = g.node("Unsqueeze", [x, g.const(g.fresh("axes"), numpy.array([2], numpy.int64))])
    y = g.node("BatchNormalization", [x, scale, bias, _param(g, pname, m, "running_mean"),
                                      _param(g, pname, m, "running_var")], epsilon=float(m.eps),
               momentum=float(1 - (m.momentum or 0.1)))
    if flat:
        y = g.node("Squeeze", [y, g.const(g.fresh("axes"), numpy.array([2], numpy.int64))])
    return y


def _simple(op, **fixed):
    def convert(g, m, ins, xs, out, pname):
        return g.node(op, [ins[0]], **fixed)
    return convert


def _attr(op, **names):
    """ONNX attribute <- module attribute (``alpha="negative_slope"``)."""
    def convert(g, m, ins, xs, out, pname):
        return g.node(op, [ins[0]], **{k: float(getattr(m, v)) for k, v in names.items()})
    return convert


def _gelu(g, m, ins, xs, out, pname):
    dt = xs[0].numpy().dtype
    x = ins[0]
    half = g.node("Mul", [x, g.scalar(0.5, dt)])
    if m.approximate == "tanh":
        cube = g.node("Mul", [g.node("Mul", [x, x]), x])
        inner = g.node("Add", [x, g.node("Mul", [cube, g.scalar(0.044715, dt)])])
        t = g.node("Tanh", [g.node("Mul", [inner, g.scalar(math.sqrt(2 / math.pi), dt)])])
    else:
        t = g.node("Erf", [g.node("Mul", [x, g.scalar(1 / math.sqrt(2), dt)])])
    return g.node("Mul", [half, g.node("Add", [t, g.scalar(1.0, dt)])])


def _silu(g, m, ins, xs, out, pname):
    return g.node("Mul", [ins[0], g.node("Sigmoid", [ins[0]])])


def _mish(g, m, ins, xs, out, pname):
    return g.node("Mul", [ins[0], g.node("Tanh", [g.node("Softplus", [ins[0]])])])


def _softplus(g, m, ins, xs, out, pname):
    if m.beta != 1:
        dt = xs[0].numpy().dtype
        scaled = g.node("Softplus", [g.node("Mul", [ins[0], g.scalar(m.beta, dt)])])
        return g.node("Div", [scaled, g.scalar(m.beta, dt)])
    return g.node("Softplus", [ins[0]])


def _clip(g, m, ins, xs, out, pname):
    dt = xs[0].numpy().dtype
    return g.node("Clip", [ins[0], g.scalar(m.min_val, dt), g.scalar(m.max_val, dt)])


def _softmax(op):
    def convert(g, m, ins, xs, out, pname):
        if m.dim is None:
            raise UnsupportedExport(f"onnx.export: {type(m).__name__}() without dim; give dim=")
        return g.node(op, [ins[0]], axis=int(m.dim) % xs[0].ndim)
    return convert


def _flatten(g, m, ins, xs, out, pname):
    nd = xs[0].ndim
    start, end = m.start_dim % nd, m.end_dim % nd
    if end == nd - 1:
        if start == 0:
            return g.node("Reshape", [ins[0], g.const(g.fresh("shape"),
                                                      numpy.array([-1], numpy.int64))])
        if start == 1:
            return g.node("Flatten", [ins[0]], axis=1)
    # keep the leading dims (0 = copy), merge start..end, keep the trailing sizes
    shape = [0] * start + [-1] + list(xs[0].shape[end + 1:])
    return g.node("Reshape", [ins[0], g.const(g.fresh("shape"), numpy.array(shape, numpy.int64))])


def _identity(g, m, ins, xs, out, pname):
    return ins[0]


def _pixel_shuffle(g, m, ins, xs, out, pname):
    return g.node("DepthToSpace", [ins[0]], blocksize=int(m.upscale_factor), mode="CRD")


def _embedding(g, m, ins, xs, out, pname):
    if getattr(m, "max_norm", None) is not None:
        raise UnsupportedExport("onnx.export: Embedding(max_norm=...) renormalises the table on "
                                "lookup, which an exported graph cannot")
    return g.node("Gather", [_param(g, pname, m, "weight"), ins[0]], axis=0)


# ONNX gate order from PyTorch's: LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h; RNN as is
_GATE_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN_TANH": (0,), "RNN_RELU": (0,)}


def _recurrent(g, m, ins, xs, out, pname):
    """RNN/LSTM/GRU as one ONNX node per layer (both directions in one node), time-major
    inside (a batch_first input is transposed in and out). Returns the names of
    (output, h_n[, c_n])."""
    mode = m.mode
    if getattr(m, "proj_size", 0):
        raise UnsupportedExport("onnx.export: LSTM(proj_size=...) is not supported")
    if xs[0].ndim != 3:
        raise UnsupportedExport(f"onnx.export: {type(m).__name__} needs a batched (3-D) input, "
                                f"got shape {xs[0].shape}")
    hsz, dirs = m.hidden_size, 2 if m.bidirectional else 1
    gates = _GATE_ORDER[mode]
    dt = m.weight_ih_l0.numpy().dtype
    x = ins[0]
    if m.batch_first:
        x = g.node("Transpose", [x], perm=[1, 0, 2])
    states = []
    if len(ins) > 1:  # initial states given: (h0,) or (h0, c0), each (layers*dirs, N, H)
        states = ins[1:]

    def packed(name, layer):
        mats = []
        for d in range(dirs):
            w = getattr(m, f"{name}_l{layer}" + ("_reverse" if d else "")).detach().numpy()
            blocks = w.reshape(len(gates), hsz, *w.shape[1:])
            mats.append(numpy.concatenate([blocks[i] for i in gates], 0))
        return numpy.stack(mats)

    hs, cs = [], []
    for layer in range(m.num_layers):
        w = g.const(f"{pname[id(m)]}.W_l{layer}".lstrip("."), packed("weight_ih", layer))
        r = g.const(f"{pname[id(m)]}.R_l{layer}".lstrip("."), packed("weight_hh", layer))
        if m.bias:
            bias = numpy.concatenate([packed("bias_ih", layer), packed("bias_hh", layer)], 1)
        else:
            bias = numpy.zeros((dirs, 2 * len(gates) * hsz), dt)
        b = g.const(f"{pname[id(m)]}.B_l{layer}".lstrip("."), bias)
        inputs = [x, w, r, b, ""]
        for k, st in enumerate(states):  # this layer's slice of each initial state
            sl = g.node("Slice", [st, g.const(g.fresh("start"), numpy.array([layer * dirs])),
                                  g.const(g.fresh("end"), numpy.array([(layer + 1) * dirs])),
                                  g.const(g.fresh("axis"), numpy.array([0]))])
            inputs.append(sl)
        attrs = dict(hidden_size=hsz, direction="bidirectional" if dirs == 2 else "forward")
        op = {"LSTM": "LSTM", "GRU": "GRU"}.get(mode, "RNN")
        if op == "GRU":
            attrs["linear_before_reset"] = 1
        if op == "RNN":
            attrs["activations"] = ["Tanh" if mode == "RNN_TANH" else "Relu"] * dirs
        n_out = 3 if op == "LSTM" else 2
        outs = [g.fresh(f"{op.lower()}_{k}") for k in range(n_out)]
        g.node(op, inputs, outs, **attrs)
        hs.append(outs[1])
        if op == "LSTM":
            cs.append(outs[2])
        # Y (T, dirs, N, H) -> (T, N, dirs * H), the next layer's input
        y = g.node("Transpose", [outs[0]], perm=[0, 2, 1, 3])
        x = g.node("Reshape", [y, g.const(g.fresh("shape"), numpy.array([0, 0, -1], numpy.int64))])
    if m.batch_first:
        x = g.node("Transpose", [x], perm=[1, 0, 2])
    h_n = hs[0] if len(hs) == 1 else g.node("Concat", hs, axis=0)
    if mode != "LSTM":
        return x, h_n
    c_n = cs[0] if len(cs) == 1 else g.node("Concat", cs, axis=0)
    return x, h_n, c_n


def _converters():
    from . import nn
    table = {
        "Linear": _linear, "Conv1d": _conv, "Conv2d": _conv,
        "MaxPool1d": _pool("MaxPool"), "MaxPool2d": _pool("MaxPool"),
        "AvgPool1d": _pool("AveragePool"), "AvgPool2d": _pool("AveragePool"),
        "AdaptiveAvgPool2d": _adaptive("AveragePool", "GlobalAveragePool"),
        "AdaptiveMaxPool2d": _adaptive("MaxPool", "GlobalMaxPool"),
        "BatchNorm1d": _batchnorm, "BatchNorm2d": _batchnorm,
        "ReLU": _simple("Relu"), "Sigmoid": _simple("Sigmoid"), "Tanh": _simple("Tanh"),
        "LeakyReLU": _attr("LeakyRelu", alpha="negative_slope"), "ELU": _attr("Elu", alpha="alpha"),
        "SELU": _simple("Selu", alpha=1.6732632423543772, gamma=1.0507009873554805),
        "GELU": _gelu, "SiLU": _silu, "Mish": _mish, "Softplus": _softplus,
        "Hardtanh": _clip, "ReLU6": _clip,
        "Hardsigmoid": _simple("HardSigmoid", alpha=1.0 / 6, beta=0.5),
        "Hardswish": _simple("HardSwish"),
        "Softmax": _softmax("Softmax"), "LogSoftmax": _softmax("LogSoftmax"),
        "Flatten": _flatten, "Dropout": _identity, "Dropout1d": _identity,
        "Dropout2d": _identity, "AlphaDropout": _identity, "Identity": _identity,
        "PixelShuffle": _pixel_shuffle, "Embedding": _embedding,
        "LSTM": _recurrent, "GRU": _recurrent, "RNN": _recurrent,
    }
    return {getattr(nn, k): v for k, v in table.items() if hasattr(nn, k)}


# -- tracing ------------------------------------------------------------------------------------------
def _trace(model, args, converters):
    """Run ``model(*args)`` with hooks on the modules the exporter converts (and on any
    other leaf); returns (calls, output)."""
    calls, handles = [], []

    def hook(module, inputs, output):
        calls.append((module, tuple(inputs), output))

    def is_traced(m):
        return type(m) in converters or not any(True for _ in m.children())

    inside = set()
    for m in model.modules():
        if is_traced(m) and id(m) not in inside:
            handles.append(m.register_forward_hook(hook))
            if type(m) in converters:  # a converted module's own children are not traced
                inside.update(id(c) for c in m.modules() if c is not m)
    try:
        with no_grad():
            output = model(*args)
    finally:
        for h in handles:
            h.remove()
    return [c for c in calls if id(c[0]) not in inside], output


def _flat_tensors(obj):
    """The Tensors of a (nested) tuple/list, in order."""
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _flat_tensors(o)]
    return []


def _count_leaves(obj):
    if isinstance(obj, (tuple, list)):
        return sum(_count_leaves(o) for o in obj)
    return 1


def _shape_info(helper, name, t, dyn):
    from onnx import TensorProto
    elem = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE,
            "int64": TensorProto.INT64, "int32": TensorProto.INT32, "bool": TensorProto.BOOL,
            "float16": TensorProto.FLOAT16}.get(str(t.dtype))
    if elem is None:
        raise UnsupportedExport(f"onnx.export: tensors of dtype {t.dtype} are not supported")
    dims = [dyn.get(i, s) for i, s in enumerate(t.shape)]
    return helper.make_tensor_value_info(name, elem, dims)


def _dynamic(dynamic_axes, name, ndim):
    spec = (dynamic_axes or {}).get(name)
    if spec is None:
        return {}
    if isinstance(spec, dict):
        return {int(k) % ndim: str(v) for k, v in spec.items()}
    return {int(k) % ndim: f"{name}_dim{int(k) % ndim}" for k in spec}


def export(model, args, f, input_names=None, output_names=None, dynamic_axes=None,
           opset_version=None, export_params=True, do_constant_folding=True, verbose=False,
           training=None, **kwargs):
    """Write ``model`` (an ``nn.Module``) traced on ``args`` (a Tensor or a tuple of them,
    nested tuples such as ``(x, (h0, c0))`` flattened into graph inputs in order)
    to ``f`` (a path or a binary file object) as an ONNX model; returns the
    ``onnx.ModelProto``. ``input_names``/``output_names`` name the graph's inputs and
    outputs (default ``input_0``..., ``output_0``...); ``dynamic_axes``
    (``{"input": {0: "batch"}}`` or ``{"input": [0]}``) marks dims of any size;
    ``opset_version`` defaults to 17 (at least 14). The model runs in eval mode during
    the trace and its mode is restored afterwards. The result passes
    ``onnx.checker.check_model``."""
    onnx, helper, numpy_helper = _onnx()
    if not isinstance(model, Module):
        raise TypeError(f"onnx.export: model must be a gradflow nn.Module, got "
                        f"{type(model).__name__}")
    if not export_params:
        raise UnsupportedExport("onnx.export: export_params=False is not supported (the "
                                "weights are always stored as initializers)")
    opset = DEFAULT_OPSET if opset_version is None else int(opset_version)
    if opset < 14:
        raise ValueError(f"onnx.export: opset_version must be at least 14, got {opset}")
    args = (args,) if isinstance(args, Tensor) else tuple(args)
    flat_args = _flat_tensors(args)
    if not flat_args or len(flat_args) != _count_leaves(args):
        raise TypeError("onnx.export: args must be a Tensor or a (nested) tuple of Tensors")
    input_names = list(input_names or [f"input_{i}" for i in range(len(flat_args))])
    if len(input_names) != len(flat_args):
        raise ValueError(f"onnx.export: {len(input_names)} input_names for {len(flat_args)} "
                         f"inputs")

    converters = _converters()
    was_training = model.training
    model.eval()
    try:
        calls, output = _trace(model, args, converters)
    finally:
        model.train(was_training)
    outputs = _flat_tensors(output)
    output_names = list(output_names or [f"output_{i}" for i in range(len(outputs))])
    if len(output_names) != len(outputs):
        raise ValueError(f"onnx.export: {len(output_names)} output_names for {len(outputs)} "
                         f"outputs")

    g = _Graph(helper, numpy_helper)
    module_names = {id(m): n for n, m in model.named_modules()}
    values = {id(a): n for a, n in zip(flat_args, input_names)}
    keep = list(flat_args)  # tensors stay alive while their id() names a value
    for module, inputs, out in calls:
        convert = converters.get(type(module))
        label = module_names.get(id(module)) or type(module).__name__
        if convert is None:
            raise UnsupportedExport(f"onnx.export: no ONNX conversion for module {label!r} "
                                    f"({type(module).__name__})")
        tensors = _flat_tensors(inputs)
        unknown = [t for t in tensors if id(t) not in values]
        if unknown:
            raise UnsupportedExport(
                f"onnx.export: the input of module {label!r} ({type(module).__name__}, shape "
                f"{unknown[0].shape}) was computed outside any module (a functional call such "
                f"as F.relu, torch.flatten, x.view or x + y in a forward()); the exporter traces "
                f"modules: use nn.ReLU / nn.Flatten / ... modules there")
        results = _flat_tensors(out)
        if not results:
            raise UnsupportedExport(f"onnx.export: module {label!r} returned "
                                    f"{type(out).__name__}, not Tensors")
        names = convert(g, module, [values[id(t)] for t in tensors], tensors, out, module_names)
        names = (names,) if isinstance(names, str) else names
        for t, name in zip(results, names):
            values[id(t)] = name
        keep.extend(results)
    graph_outputs = []
    for t, name in zip(outputs, output_names):
        if id(t) not in values:
            raise UnsupportedExport(
                f"onnx.export: the model's output (shape {t.shape}) was computed outside any "
                f"module (a functional call after the last module); end forward() with a module")
        g.node("Identity", [values[id(t)]], [name])
        graph_outputs.append(_shape_info(helper, name, t, _dynamic(dynamic_axes, name, t.ndim)))
    graph_inputs = [_shape_info(helper, n, a, _dynamic(dynamic_axes, n, a.ndim))
                    for a, n in zip(flat_args, input_names)]
    graph = helper.make_graph(g.nodes, type(model).__name__, graph_inputs, graph_outputs,
                              initializer=g.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="gradflow")
    proto.ir_version = min(proto.ir_version, 9)  # readable by onnxruntime releases of 2023+
    onnx.checker.check_model(proto)
    if isinstance(f, (str, os.PathLike)):
        onnx.save(proto, os.fspath(f))
    else:
        f.write(proto.SerializeToString())
    return proto
