"""gradflow.onnx.export: the exported file passes onnx.checker and, run in onnxruntime,
gives gradflow's outputs (1e-5) -- CNN/MLP/1-D/sub-pixel/embedding models, dynamic
batch, shared modules -- and what the module tracer cannot express is refused by name."""
import io

import numpy as np
import pytest

import gradflow as gf
from gradflow import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _roundtrip(model, x, check_x=None, **kw):
    buf = io.BytesIO()
    gf.onnx.export(model, x, buf, **kw)
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    xs = check_x if check_x is not None else x
    xs = (xs,) if isinstance(xs, gf.Tensor) else xs
    names = [i.name for i in sess.get_inputs()]
    got = sess.run(None, {n: t.numpy() for n, t in zip(names, xs)})
    model.eval()
    with gf.no_grad():
        ref = model(*xs)
    ref = gf.onnx._flat_tensors(ref)  # (output, (h_n, c_n)) -> three outputs
    assert len(got) == len(ref)
    for a, b in zip(got, ref):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-5, atol=1e-5)
    return proto


def _randomise_bn(model):
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.copy_(gf.randn(m.num_features) * 0.3)
            m.running_var.copy_(gf.rand(m.num_features) + 0.5)
            with gf.no_grad():
                m.weight.copy_(gf.randn(m.num_features))


def test_cnn_with_dynamic_batch():
    gf.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding="same", groups=2, dilation=2), nn.LeakyReLU(0.1),
        nn.AvgPool2d(2, count_include_pad=False), nn.Conv2d(8, 8, 3, stride=2, padding=1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(8, 5),
        nn.Softmax(dim=1))
    _randomise_bn(model)
    model.train()  # export switches to eval and back
    gf.onnx.export(model, gf.randn(2, 1, 16, 16), io.BytesIO())
    assert model.training
    proto = _roundtrip(model, gf.randn(2, 1, 16, 16), check_x=gf.randn(7, 1, 16, 16),
                       input_names=["image"], output_names=["probs"],
                       dynamic_axes={"image": {0: "batch"}, "probs": [0]})
    ops = {n.op_type for n in proto.graph.node}
    assert {"Conv", "BatchNormalization", "Relu", "MaxPool", "LeakyRelu", "AveragePool",
            "GlobalAveragePool", "Flatten", "Gemm", "Softmax"} <= ops
    assert proto.graph.input[0].name == "image" and proto.graph.output[0].name == "probs"
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.parametrize("act", [nn.Sigmoid(), nn.Tanh(), nn.ELU(0.7), nn.SELU(), nn.GELU(),
                                 nn.GELU(approximate="tanh"), nn.SiLU(), nn.Mish(),
                                 nn.Softplus(beta=2.0), nn.Hardtanh(-0.5, 0.7), nn.ReLU6(),
                                 nn.Hardsigmoid(), nn.Hardswish(), nn.LogSoftmax(dim=-1),
                                 nn.Identity()], ids=lambda m: type(m).__name__)
def test_mlp_activations(act):
    gf.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), act, nn.Linear(6, 3))
    _randomise_bn(model)
    _roundtrip(model, gf.randn(5, 4) * 3)


def test_one_dimensional_net_and_nd_linear():
    gf.manual_seed(2)
    model = nn.Sequential(nn.Conv1d(2, 4, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
                          nn.AvgPool1d(3, stride=1, padding=1), nn.Linear(8, 3))
    proto = _roundtrip(model, gf.randn(3, 2, 16))
    assert "MatMul" in {n.op_type for n in proto.graph.node}  # a 3-D input to Linear


class SubPixel(nn.Module):
    """A sub-pixel super-resolution net whose forward calls its modules (one twice)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5, padding=2)
        self.act = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.conv3 = nn.Conv2d(8, 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x):
        x = self.act(self.conv1(x))
        x = self.act(self.conv2(x))
        return self.shuffle(self.conv3(x))


def test_pixel_shuffle_super_resolution(tmp_path):
    gf.manual_seed(3)
    model = SubPixel()
    path = tmp_path / "sr.onnx"
    gf.onnx.export(model, gf.randn(1, 1, 8, 8), path, input_names=["low"],
                   dynamic_axes={"low": {0: "n", 2: "h", 3: "w"}, "output_0": {0: "n"}})
    onnx.checker.check_model(onnx.load(str(path)))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = gf.randn(2, 1, 10, 6)
    with gf.no_grad():
        ref = model(x).numpy()
    np.testing.assert_allclose(sess.run(None, {"low": x.numpy()})[0], ref, rtol=1e-5, atol=1e-5)
    assert ref.shape == (2, 1, 20, 12)


def test_embedding_classifier_two_outputs():
    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(20, 6)
            self.hidden = nn.Linear(6, 6)
            self.act = nn.Tanh()
            self.out = nn.Linear(6, 4)

        def forward(self, tokens):
            h = self.act(self.hidden(self.emb(tokens)))
            return self.out(h), h

    gf.manual_seed(4)
    _roundtrip(Tagger(), gf.randint(0, 20, (3, 7)), output_names=["logits", "features"])


def test_float64_model():
    model = nn.Sequential(nn.Linear(3, 2), nn.Sigmoid()).double()
    _roundtrip(model, gf.randn(4, 3, dtype=gf.float64))


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("batch_first, bidirectional", [(False, False), (True, True)])
def test_recurrent_layers(mode, batch_first, bidirectional):
    gf.manual_seed(5)
    m = getattr(nn, mode)(3, 5, num_layers=2, batch_first=batch_first, bidirectional=bidirectional)
    proto = _roundtrip(m, gf.randn(4, 6, 3), check_x=gf.randn(4, 6, 3))
    assert {"LSTM": "LSTM", "GRU": "GRU", "RNN": "RNN"}[mode] in {n.op_type for n in proto.graph.node}


class Forecaster(nn.Module):
    """The time-series pattern: an LSTM's outputs through a Linear head."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(1, 8, batch_first=True)
        self.head = nn.Linear(8, 1)

    def forward(self, x, state):
        out, (h, c) = self.lstm(x, state)
        return self.head(out), h, c


def test_lstm_forecaster_with_initial_state_and_dynamic_length():
    gf.manual_seed(6)
    model = Forecaster()
    state = (gf.randn(1, 2, 8), gf.randn(1, 2, 8))
    buf = io.BytesIO()
    gf.onnx.export(model, (gf.randn(2, 10, 1), state), buf, input_names=["x", "h0", "c0"],
                   output_names=["y", "h", "c"], dynamic_axes={"x": {1: "time"}, "y": {1: "time"}})
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    x = gf.randn(2, 17, 1)  # another length than the trace's
    got = sess.run(None, {"x": x.numpy(), "h0": state[0].numpy(), "c0": state[1].numpy()})
    with gf.no_grad():
        ref = model(x, state)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-5, atol=1e-5)


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.fc2(gf.nn.functional.relu(self.fc1(x)))


@pytest.mark.parametrize("model, x, match", [
    (Functional(), gf.randn(2, 4), "'fc2'.*computed outside any module"),
    (nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4)), gf.randn(5, 3), "no ONNX conversion for module"),
    (nn.Sequential(nn.Linear(4, 4), nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect")),
     gf.randn(1, 1, 4, 4), "padding_mode"),
])
def test_refused_with_a_reason(model, x, match):
    with pytest.raises(gf.onnx.UnsupportedExport, match=match):
        gf.onnx.export(model, x, io.BytesIO())


def test_bad_arguments():
    m = nn.Linear(2, 1)
    with pytest.raises(ValueError, match="opset_version"):
        gf.onnx.export(m, gf.randn(1, 2), io.BytesIO(), opset_version=11)
    with pytest.raises(ValueError, match="input_names"):
        gf.onnx.export(m, gf.randn(1, 2), io.BytesIO(), input_names=["a", "b"])
    with pytest.raises(TypeError, match="nn.Module"):
        gf.onnx.export(lambda x: x, gf.randn(1, 2), io.BytesIO())
