"""gradflow.summary and gradflow.vis.receptive_field against hand counts."""
from __future__ import annotations


import pytest

import gradflow
import gradflow.nn as nn
from gradflow.nn.models import alexnet
from gradflow.vis import receptive_field, summary


def lenet5():
    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


def test_single_conv_hand_count():
    # 10 filters of 5x5x3 plus 10 biases = 10*75 + 10 = 760; pad 2 keeps 32x32.
    s = gradflow.summary(nn.Conv2d(3, 10, 5, padding=2), (3, 32, 32))
    (row,) = s.rows
    assert row.type == "Conv2d"
    assert row.output_shape == (1, 10, 32, 32)
    assert row.params == 760 and s.total_params == 760
    # each of the 32*32*10 outputs is a 75-term dot product + bias: 2*75 FLOPs
    assert row.flops == 32 * 32 * 10 * 75 * 2 == 1_536_000
    assert s.total_flops == row.flops


def test_batch_size_scales_flops_not_params():
    m = nn.Sequential(nn.Conv2d(3, 10, 5, padding=2), nn.ReLU())
    s1, s4 = summary(m, (3, 32, 32)), summary(m, (3, 32, 32), batch_size=4)
    assert s4.total_flops == 4 * s1.total_flops
    assert s4.total_params == s1.total_params == 760
    assert s4.rows[1].output_shape == (4, 10, 32, 32)
    assert s4.rows[1].flops == 4 * 10 * 32 * 32          # one op per ReLU element


def test_lenet5_rows():
    s = summary(lenet5(), (1, 32, 32))
    convs = [r for r in s.rows if r.type == "Conv2d"]
    fcs = [r for r in s.rows if r.type == "Linear"]
    assert [r.output_shape for r in convs] == [(1, 6, 28, 28), (1, 16, 10, 10)]
    assert [r.params for r in convs] == [6 * 25 + 6, 16 * 6 * 25 + 16]          # 156, 2416
    assert [r.params for r in fcs] == [400 * 120 + 120, 120 * 84 + 84, 84 * 10 + 10]
    assert s.total_params == 61_706
    # MACs: conv1 28*28*6*25 = 117,600; conv2 10*10*16*150 = 240,000; fc 48,000+10,080+840
    macs = 117_600 + 240_000 + 48_000 + 10_080 + 840
    assert sum(r.flops for r in convs + fcs) == 2 * macs
    pools = [r for r in s.rows if r.type == "MaxPool2d"]
    assert [r.flops for r in pools] == [6 * 14 * 14 * 4, 16 * 5 * 5 * 4]
    assert s.output_shape == (1, 10)
    text = str(s)
    assert "Conv2d" in text and "61,706" in text and "Output shape" in text


def test_alexnet_published_counts():
    s = summary(alexnet(), (3, 227, 227))
    convs = [r for r in s.rows if r.type == "Conv2d"]
    fcs = [r for r in s.rows if r.type == "Linear"]
    # Per-layer parameters, weights + biases (Krizhevsky et al. 2012, groups of 2 on
    # conv2/4/5: each filter sees half of the input channels):
    expected_conv = [
        96 * 3 * 11 * 11 + 96,      # conv1     34,944
        256 * 48 * 5 * 5 + 256,     # conv2    307,456
        384 * 256 * 3 * 3 + 384,    # conv3    885,120
        384 * 192 * 3 * 3 + 384,    # conv4    663,936
        256 * 192 * 3 * 3 + 256,    # conv5    442,624
    ]
    assert expected_conv == [34_944, 307_456, 885_120, 663_936, 442_624]
    assert [r.params for r in convs] == expected_conv
    expected_fc = [9216 * 4096 + 4096, 4096 * 4096 + 4096, 4096 * 1000 + 1000]
    assert [r.params for r in fcs] == expected_fc == [37_752_832, 16_781_312, 4_097_000]
    assert s.total_params == 60_965_224                # "60 million parameters"
    assert [r.output_shape[1:] for r in convs] == [(96, 55, 55), (256, 27, 27), (384, 13, 13),
                                                   (384, 13, 13), (256, 13, 13)]
    # conv1: 55*55*96 outputs, each 11*11*3 = 363 multiply-adds -> 105.4M MACs
    assert convs[0].flops == 2 * 55 * 55 * 96 * 363 == 210_830_400
    assert convs[1].flops == 2 * 27 * 27 * 256 * (48 * 25)
    assert fcs[0].flops == 2 * 9216 * 4096


def test_summary_restores_training_mode_and_grads():
    m = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Dropout(0.5))
    m.train()
    s = summary(m, (4,), batch_size=2)
    assert m.training and all(c.training for c in m.children())
    assert all(p.grad is None for p in m.parameters())
    assert [r.type for r in s.rows] == ["Linear", "BatchNorm1d", "Dropout"]
    assert s.rows[0].params == 15 and s.rows[1].params == 6
    assert s["1"].flops == 2 * 2 * 3 and s["2"].flops == 0


def test_summary_custom_module_and_shared_layer():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.act = nn.ReLU()
            self.head = nn.Linear(4 * 8 * 8, 2)

        def forward(self, x):
            x = self.act(self.conv(x))
            x = self.act(x)                      # the same module called twice
            return self.head(x.flatten(1))

    s = summary(Net(), (1, 8, 8))
    assert [r.name for r in s.rows] == ["conv", "act", "act", "head"]
    assert s.total_params == 4 * 9 + 4 + 256 * 2 + 2
    assert sum(r.params for r in s.rows) == s.total_params
    assert s.to_dict()["total_flops"] == s.total_flops


# -- receptive fields -----------------------------------------------------------------------
@pytest.mark.parametrize("k,p", [(3, 2), (5, 2), (5, 3), (7, 2)])
def test_conv_then_pool_gives_p_plus_k_minus_1(k, p):
    rf = receptive_field([("conv", k), ("pool", p)], (64, 64))
    assert rf[1].size == (k, k) and rf[1].jump == (1, 1)
    assert rf[2].size == (p + k - 1, p + k - 1) and rf[2].jump == (p, p)
    m = nn.Sequential(nn.Conv2d(1, 2, k), nn.ReLU(), nn.MaxPool2d(p))
    rows = receptive_field(m, (1, 64, 64))
    assert rows[-1].size == (p + k - 1,) * 2
    assert rows[-1].output_size == ((64 - k + 1) // p,) * 2


def test_receptive_field_start_and_padding():
    # 3x3 pad 1 convs keep the first unit centred on pixel 0; a stride-2 pool moves
    # it to 0.5 (between pixels 0 and 1); each later 3x3 conv adds 2*jump.
    rf = receptive_field([("conv", 3, 1, 1), ("conv", 3, 1, 1), ("pool", 2),
                          ("conv", 3, 1, 1), ("pool", 2)], (32, 32))
    assert [r.size[0] for r in rf] == [1, 3, 5, 6, 10, 12]
    assert [r.jump[0] for r in rf] == [1, 1, 1, 2, 2, 4]
    assert [r.start[0] for r in rf] == [0, 0, 0, 0.5, 0.5, 1.5]
    assert [r.output_size for r in rf][-1] == (8, 8)


def test_dilation_and_strided_conv():
    # dilation 2 turns a 3x3 kernel into an effective 5x5
    rf = receptive_field([dict(kind="conv", kernel_size=3, dilation=2),
                          dict(kind="conv", kernel_size=3, stride=2, padding=1)], (17, 17))
    assert rf[1].size == (5, 5) and rf[1].output_size == (13, 13)
    assert rf[2].size == (7, 7) and rf[2].jump == (2, 2) and rf[2].output_size == (7, 7)
    assert rf[2].start == (2, 2)     # start 2 (kernel 5, no pad) + (1 - 1) * 1


def test_alexnet_receptive_field():
    rf = receptive_field(nn.Sequential(*list(alexnet().children())[:15]), (3, 227, 227))
    convs = [r for r in rf if r.type in ("Conv2d", "MaxPool2d")]
    # conv1 11 (jump 4), pool 19 (8), conv2 51, pool 67 (16), conv3 99, conv4 131,
    # conv5 163, pool5 195 (32): the textbook 195x195 field of AlexNet's last conv features
    assert [r.size[0] for r in convs] == [11, 19, 51, 67, 99, 131, 163, 195]
    assert [r.jump[0] for r in convs] == [4, 8, 8, 16, 16, 16, 16, 32]
    assert rf[-1].output_size == (6, 6)
    text = str(rf)
    assert "195x195" in text


def test_receptive_field_after_flatten_covers_input():
    rf = receptive_field(lenet5(), (1, 32, 32))
    assert rf["7"].covers_input and rf["7"].size == (32, 32)
    assert rf["5"].size == (16, 16)      # 5 -> 6 -> 14 -> 16 (LeNet's last pool)


def test_summary_follows_model_dtype_and_backend(backend):
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    m = m.double()
    s = summary(m, (1, 6, 6))
    assert s.output_shape == (1, 3) and s.total_params == 2 * 9 + 2 + 32 * 3 + 3
    rf = receptive_field(m, (1, 6, 6))
    assert rf["0"].size == (3, 3)


def test_summary_counts_a_containers_own_parameter():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)
            self.scale = nn.Parameter(gradflow.ones(2))

        def forward(self, x):
            return self.lin(x) * self.scale

    s = summary(Scaled(), (3,))
    assert [(r.name, r.type, r.params) for r in s.rows] == [("lin", "Linear", 8),
                                                            ("scale", "Parameter", 2)]
    assert s.total_params == 10 == sum(r.params for r in s.rows)


def test_receptive_field_adaptive_and_avg_pool():
    m = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(2),
                      nn.AdaptiveAvgPool2d(1))
    rf = receptive_field(m, (1, 16, 16))
    assert rf["1"].size == (4, 4) and rf["1"].jump == (2, 2)
    # 8x8 -> 2x2 is a 4x4 stride-4 average: 4 + 3*2 = 10, jump 8
    assert rf["2"].size == (10, 10) and rf["2"].jump == (8, 8) and rf["2"].output_size == (2, 2)
    assert rf["3"].covers_input and rf["3"].size == (16, 16)


@pytest.mark.parametrize("name,shape,layers", [("lenet5", (1, 28, 28), "lenet5_layers"),
                                               ("convnet", (3, 32, 32), "convnet_layers")])
def test_summary_agrees_with_bench_flop_formulas(name, shape, layers):
    # two independent counts of the same convention (multiply-add = 2): the benchmark's
    # hand-written per-layer formulas and summary's hooks on the `gradflow train` models
    from gradflow.bench import flops
    from gradflow.nn.models import build_model
    s = summary(build_model(name, shape[0], shape[1], 10), shape)
    assert [r.flops for r in s.rows if r.type in ("Conv2d", "Linear")] == \
        getattr(flops, layers)(1)


# ---------------------------------------------------------------------------
# the three ways to give the input: per-sample shape, torchinfo's input_size, input_data
# ---------------------------------------------------------------------------
def _small_cnn():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 5))


def _same_table(a, b):
    assert [(r.type, r.output_shape, r.params, r.flops) for r in a.rows] == \
        [(r.type, r.output_shape, r.params, r.flops) for r in b.rows]
    assert a.total_flops == b.total_flops and a.output_shape == b.output_shape


def test_torchinfo_input_size_with_batch_positional_falls_back_and_says_so():
    # the call: torchinfo's convention given positionally
    s = gradflow.summary(alexnet(), (1, 3, 227, 227))
    assert s.total_params == 60_965_224 and s.output_shape == (1, 1000)
    assert s.input_shapes == [(1, 3, 227, 227)]
    assert "batch dimension included" in s.assumed and "forward pass failed" in s.assumed
    assert "(1, 1, 3, 227, 227)" in s.assumed          # the reading that failed, with its shape
    assert "Input read as:" in str(s)


def test_input_size_keyword_batch_dim_and_input_data_agree_with_per_sample_shape():
    m = _small_cnn()
    ref = summary(m, (3, 8, 8), batch_size=4)
    by_size = summary(m, input_size=(4, 3, 8, 8))
    _same_table(ref, by_size)
    assert by_size.batch_size == 4 and "input_size" in by_size.assumed
    assert "failed" not in by_size.assumed
    _same_table(ref, summary(m, input_size=(3, 8, 8), batch_size=4, batch_dim=0))
    x = gradflow.randn(4, 3, 8, 8)
    by_data = summary(m, input_data=x)
    _same_table(ref, by_data)
    assert by_data.input_shapes == [(4, 3, 8, 8)] and "input_data" in by_data.assumed
    _same_table(ref, summary(m, input_data=[x]))
    assert "one sample's shape" in ref.assumed and "torchsummary" in ref.assumed


def test_ambiguous_size_is_read_per_sample_and_the_summary_says_how_to_ask_otherwise():
    mlp = nn.Sequential(nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10))
    s = summary(mlp, (1, 784))                       # runs both ways: per-sample wins, hint given
    assert s.output_shape == (1, 1, 10)
    assert "already includes the batch dimension, pass input_size=" in s.assumed
    t = summary(mlp, input_size=(1, 784))
    assert t.output_shape == (1, 10) and t.total_flops == s.total_flops
    # an input_size that only works as one sample's shape falls back the other way
    u = summary(nn.Sequential(nn.BatchNorm2d(3)), input_size=(3, 8, 8))
    assert u.output_shape == (1, 3, 8, 8) and "one sample's shape" in u.assumed
    assert "forward pass failed" in u.assumed


class _Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.fc = nn.Linear(4, 3)

    def forward(self, tokens, scale=None):
        h = self.fc(self.emb(tokens))
        return h * scale if scale is not None else h


def test_integer_inputs_dtypes_and_keyword_input_data():
    m = _Tagger()
    s = summary(m, input_size=(2, 5), dtypes=[gradflow.int64])   # zeros: valid token ids
    assert s.output_shape == (2, 5, 3)
    assert [r.type for r in s.rows] == ["Embedding", "Linear"]
    tokens = gradflow.tensor([[1, 2, 3]])
    k = summary(m, input_data={"tokens": tokens, "scale": gradflow.ones(1)})
    assert k.output_shape == (1, 3, 3) and k.input_shapes == [(1, 3), (1,)]


def test_bad_input_specs():
    with pytest.raises(TypeError, match="input_size"):
        summary(nn.Linear(3, 2))
    with pytest.raises(TypeError, match="input_data"):
        summary(nn.Linear(3, 2), input_data=[1, 2, 3])
    with pytest.raises(ValueError, match="dtypes"):
        summary(nn.Linear(3, 2), input_size=(1, 3), dtypes=[gradflow.float32, gradflow.int64])
    with pytest.raises(ValueError):                  # neither reading fits: the model's own error
        summary(nn.Linear(3, 2), input_size=(4, 5))


def test_summary_as_a_statement_prints_the_table(capsys):
    """In a script ``gradflow.summary(model, shape)`` shows the table, as torchinfo's
    does; ``verbose=0`` keeps it quiet."""
    from gradflow.nn.models import LeNet5
    s = gradflow.summary(LeNet5(), (1, 28, 28))
    assert capsys.readouterr().out.strip() == str(s).strip()
    gradflow.summary(LeNet5(), (1, 28, 28), verbose=0)
    assert capsys.readouterr().out == ""
