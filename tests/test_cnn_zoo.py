"""A zoo of small CNN architectures written the way PyTorch users write them (ResNet,
MobileNetV2, VGG, DenseNet, UNet, dilated / asymmetric convs, a BatchNorm net on
3x32x32), each defined once against a ``torch``-like namespace and built both with
PyTorch and with gradflow (``import gradflow as torch``). Torch's initial weights are
copied into gradflow with ``load_state_dict``; then a few SGD-momentum steps and an
Adam step on the same data must give the same losses, outputs, parameter gradients,
parameters and BatchNorm running statistics, in train and in eval mode, on every
backend and in float32 and float64. Plus module-tree bookkeeping (named_modules,
children, parameter counts, train/eval propagation, state_dict keys and a
save/load round trip) and, without torch, a ResNet learning the bundled digits."""
from __future__ import annotations

import math

import numpy as np
import pytest

import gradflow as gf
import gradflow.datasets
from gradflow.utils.threads import blas_threads

from conftest import requires_torch


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with blas_threads(1):
        yield


def _tols(dtype):
    return dict(rtol=1e-10, atol=1e-10) if np.dtype(dtype) == np.float64 else dict(rtol=1e-4, atol=1e-5)


# =============================================================================================
# the architectures, written once against a torch-like namespace
# =============================================================================================
def _resnet(torch, widths=(4, 8), num_classes=5, in_ch=3):
    nn = torch.nn

    def conv3x3(cin, cout, stride=1):
        return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)

    def conv1x1(cin, cout, stride=1):
        return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)

    class BasicBlock(nn.Module):
        expansion = 1

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = conv3x3(inplanes, planes, stride)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = conv3x3(planes, planes)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample
            self.stride = stride

        def forward(self, x):
            identity = x
            out = self.conv1(x)
            out = self.bn1(out)
            out = self.relu(out)
            out = self.conv2(out)
            out = self.bn2(out)
            if self.downsample is not None:
                identity = self.downsample(x)
            out += identity
            out = self.relu(out)
            return out

    class ResNet(nn.Module):
        def __init__(self, block, layers, num_classes, zero_init_residual=True):
            super().__init__()
            self.inplanes = widths[0]
            self.conv1 = nn.Conv2d(in_ch, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(self.inplanes)
            self.relu = nn.ReLU(inplace=True)
            self.layer1 = self._make_layer(block, widths[0], layers[0])
            self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(widths[1] * block.expansion, num_classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)
            if zero_init_residual:
                for m in self.modules():
                    if isinstance(m, BasicBlock) and m.bn2.weight is not None:
                        nn.init.constant_(m.bn2.weight, 0)

        def _make_layer(self, block, planes, blocks, stride=1):
            downsample = None
            if stride != 1 or self.inplanes != planes * block.expansion:
                downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                           nn.BatchNorm2d(planes * block.expansion))
            layers = [block(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes * block.expansion
            for _ in range(1, blocks):
                layers.append(block(self.inplanes, planes))
            return nn.Sequential(*layers)

        def forward(self, x):
            x = self.conv1(x)
            x = self.bn1(x)
            x = self.relu(x)
            x = self.layer1(x)
            x = self.layer2(x)
            x = self.avgpool(x)
            x = torch.flatten(x, 1)
            x = self.fc(x)
            return x

    return ResNet(BasicBlock, [2, 1], num_classes)


def _mobilenet(torch, num_classes=5):
    nn = torch.nn

    class ConvBNReLU(nn.Sequential):
        def __init__(self, cin, cout, kernel_size=3, stride=1, groups=1):
            padding = (kernel_size - 1) // 2
            super().__init__(nn.Conv2d(cin, cout, kernel_size, stride, padding, groups=groups, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))

    class InvertedResidual(nn.Module):
        def __init__(self, inp, oup, stride, expand_ratio):
            super().__init__()
            self.stride = stride
            hidden_dim = int(round(inp * expand_ratio))
            self.use_res_connect = self.stride == 1 and inp == oup
            layers = []
            if expand_ratio != 1:
                layers.append(ConvBNReLU(inp, hidden_dim, kernel_size=1))
            layers.extend([
                ConvBNReLU(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),  # depthwise
                nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),  # pointwise-linear
                nn.BatchNorm2d(oup),
            ])
            self.conv = nn.Sequential(*layers)

        def forward(self, x):
            if self.use_res_connect:
                return x + self.conv(x)
            return self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                ConvBNReLU(3, 4, stride=2),
                InvertedResidual(4, 4, 1, expand_ratio=1),
                InvertedResidual(4, 6, 2, expand_ratio=3),
                InvertedResidual(6, 6, 1, expand_ratio=2),
                ConvBNReLU(6, 12, kernel_size=1))
            self.classifier = nn.Sequential(nn.Dropout(0.0), nn.Linear(12, num_classes))
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.01)
                    nn.init.zeros_(m.bias)

        def forward(self, x):
            x = self.features(x)
            x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
            x = torch.flatten(x, 1)
            return self.classifier(x)

    return MobileNetV2()


def _vgg(torch, num_classes=5, dropout=0.5):
    nn = torch.nn
    cfg = [4, "M", 8, 8, "M"]

    class VGG(nn.Module):
        def __init__(self, features):
            super().__init__()
            self.features = features
            self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
            self.classifier = nn.Sequential(
                nn.Linear(8 * 2 * 2, 16), nn.ReLU(True), nn.Dropout(p=dropout),
                nn.Linear(16, 16), nn.ReLU(True), nn.Dropout(p=dropout),
                nn.Linear(16, num_classes))
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.constant_(m.bias, 0)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.1)
                    nn.init.constant_(m.bias, 0)

        def forward(self, x):
            x = self.features(x)
            x = self.avgpool(x)
            x = x.view(x.size(0), -1)
            return self.classifier(x)

    layers, cin = [], 3
    for v in cfg:
        if v == "M":
            layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
        else:
            layers += [nn.Conv2d(cin, v, kernel_size=3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            cin = v
    return VGG(nn.Sequential(*layers))


def _densenet(torch, num_classes=5, growth=3):
    nn, F = torch.nn, torch.nn.functional

    class DenseLayer(nn.Module):
        def __init__(self, cin, growth_rate, bn_size=2):
            super().__init__()
            self.norm1 = nn.BatchNorm2d(cin)
            self.relu1 = nn.ReLU(inplace=True)
            self.conv1 = nn.Conv2d(cin, bn_size * growth_rate, kernel_size=1, stride=1, bias=False)
            self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
            self.relu2 = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1,
                                   padding=1, bias=False)

        def forward(self, inputs):
            prev = [inputs] if not isinstance(inputs, list) else inputs
            x = torch.cat(prev, 1)
            x = self.conv1(self.relu1(self.norm1(x)))
            return self.conv2(self.relu2(self.norm2(x)))

    class DenseBlock(nn.ModuleDict):
        def __init__(self, num_layers, cin, growth_rate):
            super().__init__()
            for i in range(num_layers):
                self.add_module("denselayer%d" % (i + 1), DenseLayer(cin + i * growth_rate, growth_rate))

        def forward(self, init_features):
            features = [init_features]
            for name, layer in self.items():
                features.append(layer(features))
            return torch.cat(features, 1)

    class Transition(nn.Sequential):
        def __init__(self, cin, cout):
            super().__init__()
            self.norm = nn.BatchNorm2d(cin)
            self.relu = nn.ReLU(inplace=True)
            self.conv = nn.Conv2d(cin, cout, kernel_size=1, stride=1, bias=False)
            self.pool = nn.AvgPool2d(kernel_size=2, stride=2)

    class DenseNet(nn.Module):
        def __init__(self):
            super().__init__()
            from collections import OrderedDict
            self.features = nn.Sequential(OrderedDict([
                ("conv0", nn.Conv2d(3, 4, kernel_size=3, stride=1, padding=1, bias=False)),
                ("norm0", nn.BatchNorm2d(4)), ("relu0", nn.ReLU(inplace=True)),
                ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))]))
            nf = 4
            self.features.add_module("denseblock1", DenseBlock(2, nf, growth))
            nf += 2 * growth
            self.features.add_module("transition1", Transition(nf, nf // 2))
            nf //= 2
            self.features.add_module("denseblock2", DenseBlock(2, nf, growth))
            nf += 2 * growth
            self.features.add_module("norm5", nn.BatchNorm2d(nf))
            self.classifier = nn.Linear(nf, num_classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)
                elif isinstance(m, nn.Linear):
                    nn.init.constant_(m.bias, 0)

        def forward(self, x):
            features = self.features(x)
            out = F.relu(features, inplace=True)
            out = F.adaptive_avg_pool2d(out, (1, 1))
            out = torch.flatten(out, 1)
            return self.classifier(out)

    return DenseNet()


def _unet(torch, n_classes=3, base=4):
    nn, F = torch.nn, torch.nn.functional

    class DoubleConv(nn.Module):
        def __init__(self, cin, cout, mid=None):
            super().__init__()
            mid = mid or cout
            self.double_conv = nn.Sequential(
                nn.Conv2d(cin, mid, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(mid),
                nn.ReLU(inplace=True),
                nn.Conv2d(mid, cout, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True))

        def forward(self, x):
            return self.double_conv(x)

    class Down(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, cout))

        def forward(self, x):
            return self.maxpool_conv(x)

    class Up(nn.Module):
        def __init__(self, cin, cout, bilinear):
            super().__init__()
            self.bilinear = bilinear
            if bilinear:
                self.conv = DoubleConv(cin, cout, cin // 2)
            else:
                self.up = nn.ConvTranspose2d(cin, cin // 2, kernel_size=2, stride=2)
                self.conv = DoubleConv(cin, cout)

        def forward(self, x1, x2):
            if self.bilinear:
                x1 = F.interpolate(x1, size=x2.shape[2:], mode="bilinear", align_corners=False)
            else:
                x1 = self.up(x1)
            diffY = x2.size()[2] - x1.size()[2]
            diffX = x2.size()[3] - x1.size()[3]
            x1 = F.pad(x1, [diffX // 2, diffX - diffX // 2, diffY // 2, diffY - diffY // 2])
            x = torch.cat([x2, x1], dim=1)
            return self.conv(x)

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.inc = DoubleConv(3, base)
            self.down1 = Down(base, base * 2)
            self.down2 = Down(base * 2, base * 4)
            self.up1 = Up(base * 4, base * 2, bilinear=False)       # ConvTranspose2d
            self.up2 = Up(base * 2 + base, base, bilinear=True)     # F.interpolate
            self.outc = nn.Conv2d(base, n_classes, kernel_size=1)

        def forward(self, x):
            x1 = self.inc(x)
            x2 = self.down1(x1)
            x3 = self.down2(x2)
            x = self.up1(x3, x2)
            # bilinear path: upsample x (2*base ch) to x1's size, concatenated with x1 (base ch)
            x = self.up2(x, x1)
            return self.outc(x)

    return UNet()


def _dilated(torch, num_classes=5):
    nn = torch.nn

    class AsymNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, kernel_size=(3, 1), stride=(2, 1), padding=(1, 0), dilation=2)
            self.bn = nn.BatchNorm2d(4)
            self.conv_a = nn.Conv2d(4, 6, kernel_size=(1, 3), stride=(1, 2), padding=(0, 2), dilation=(1, 2))
            self.conv_b = nn.Conv2d(6, 6, kernel_size=3, padding=2, dilation=2, groups=2)
            self.conv_c = nn.Conv2d(6, 8, kernel_size=(2, 3), stride=(2, 1), padding=(1, 0))
            self.act = nn.LeakyReLU(0.1)
            self.pool = nn.MaxPool2d(kernel_size=(2, 1), stride=(2, 1))
            self.head = nn.Linear(8, num_classes)

        def forward(self, x):
            x = self.act(self.bn(self.stem(x)))
            x = self.act(self.conv_a(x))
            x = self.act(self.conv_b(x)) + x
            x = self.pool(self.act(self.conv_c(x)))
            x = x.mean(dim=(2, 3))
            return self.head(x)

    return AsymNet()


def _bn32(torch, num_classes=10):
    nn, F = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 5)
            self.bn1 = nn.BatchNorm2d(6, momentum=0.2)
            self.pool = nn.MaxPool2d(2, 2)
            self.conv2 = nn.Conv2d(6, 8, 5)
            self.bn2 = nn.BatchNorm2d(8, eps=1e-3)
            self.fc1 = nn.Linear(8 * 5 * 5, 24)
            self.bn3 = nn.BatchNorm1d(24)
            self.fc2 = nn.Linear(24, num_classes)

        def forward(self, x):
            x = self.pool(F.relu(self.bn1(self.conv1(x))))
            x = self.pool(F.relu(self.bn2(self.conv2(x))))
            x = torch.flatten(x, 1)
            x = F.relu(self.bn3(self.fc1(x)))
            return self.fc2(x)

    return Net()


def _shufflenet(torch, num_classes=5):
    """ShuffleNetV2-style: chunk + channel shuffle, a stride-2 two-branch unit, SiLU /
    Hardswish (inplace), and horizontal-flip test-time averaging with torch.flip."""
    nn, F = torch.nn, torch.nn.functional

    class Unit(nn.Module):
        def __init__(self, inp, oup, stride):
            super().__init__()
            self.stride = stride
            bf = oup // 2
            if stride > 1:
                self.branch1 = nn.Sequential(
                    nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp),
                    nn.Conv2d(inp, bf, 1, bias=False), nn.BatchNorm2d(bf), nn.SiLU(inplace=True))
            else:
                self.branch1 = nn.Sequential()
            cin = inp if stride > 1 else bf
            self.branch2 = nn.Sequential(
                nn.Conv2d(cin, bf, 1, bias=False), nn.BatchNorm2d(bf), nn.Hardswish(inplace=True),
                nn.Conv2d(bf, bf, 3, stride, 1, groups=bf, bias=False), nn.BatchNorm2d(bf),
                nn.Conv2d(bf, bf, 1, bias=False), nn.BatchNorm2d(bf), nn.ReLU(inplace=True))
            self.shuffle = nn.ChannelShuffle(2)

        def forward(self, x):
            if self.stride == 1:
                x1, x2 = x.chunk(2, dim=1)
                out = torch.cat((x1, self.branch2(x2)), dim=1)
            else:
                out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
            return self.shuffle(out)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1, bias=False), nn.BatchNorm2d(4),
                                       nn.ReLU(inplace=True))
            self.stage = nn.Sequential(Unit(4, 8, 2), Unit(8, 8, 1))
            self.fc = nn.Linear(8, num_classes)

        def forward(self, x):
            x = self.stage(self.conv1(x))
            x = x + F.channel_shuffle(torch.roll(x.flip(3), shifts=1, dims=2), 4) * 0.5
            return self.fc(x.mean([2, 3]))

    return Net()


def _segnet(torch, n_classes=3):
    """SegNet / ESPCN-style: max-pool indices and MaxUnpool2d, a ConvTranspose2d given its
    output_size, PixelUnshuffle / PixelShuffle, interpolate(mode='area'), a weighted
    per-pixel cross-entropy with ignore_index."""
    nn, F = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(True))
            self.pool = nn.MaxPool2d(2, 2, return_indices=True)
            self.mid = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(True))
            self.unpool = nn.MaxUnpool2d(2, 2)
            self.down = nn.PixelUnshuffle(2)
            self.up = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1)
            self.sub = nn.Sequential(nn.Conv2d(4, 4 * n_classes, 3, padding=1), nn.PixelShuffle(2))
            self.head = nn.Conv2d(8 + 4, n_classes, 1)

        def forward(self, x):
            e = self.enc(x)
            p, idx = self.pool(e)
            u = self.unpool(self.mid(p), idx, output_size=e.size())
            d = self.up(self.down(u), output_size=e.shape[2:])  # 4x4 -> 8x8, not 7x7
            s = self.sub(F.interpolate(u, scale_factor=0.5, mode="area"))
            return self.head(torch.cat([d, u], 1)) + s

    return Net()


# name -> (builder, input shape, target kind)
ZOO = {
    "resnet": (_resnet, (4, 3, 8, 8), "cls"),
    "mobilenet": (_mobilenet, (4, 3, 12, 12), "cls"),
    "vgg": (_vgg, (4, 3, 8, 8), "cls"),
    "densenet": (_densenet, (4, 3, 8, 8), "cls"),
    "unet": (_unet, (2, 3, 8, 8), "seg"),
    "dilated": (_dilated, (3, 3, 13, 11), "cls"),
    "bn32": (_bn32, (4, 3, 32, 32), "cls"),
    "shufflenet": (_shufflenet, (4, 3, 8, 8), "cls"),
    "segnet": (_segnet, (2, 3, 8, 8), "seg"),
}


def _data(name, dtype, seed=0):
    _, shape, kind = ZOO[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    if kind == "seg":
        y = rng.integers(0, 3, (shape[0],) + shape[2:]).astype(np.int64)
    else:
        y = rng.integers(0, 5, shape[0]).astype(np.int64)
    return x, y


# =============================================================================================
# helpers
# =============================================================================================
def _np(t):
    return np.array(t.detach().cpu().numpy() if hasattr(t, "cpu") else t.detach().numpy())


def _torch_twin(name, dtype):
    import torch
    torch.manual_seed(0)
    tm = ZOO[name][0](torch)
    return tm.double() if np.dtype(dtype) == np.float64 else tm


def _gf_twin(name, dtype, tm=None):
    gm = ZOO[name][0](gf)
    if np.dtype(dtype) == np.float64:
        gm = gm.double()
    if tm is not None:
        sd = {k: v.detach().numpy().copy() for k, v in tm.state_dict().items()}
        gm.load_state_dict(sd)
    return gm


class _DropoutMirror:
    """Makes torch's Dropout layers reuse the masks gradflow's drew (forward hooks): the
    gradflow twin runs first; its Dropout outputs are recorded, and torch's matching
    Dropout outputs input * (gradflow_out != 0) / (1 - p)."""

    def __init__(self, gm, tm):
        import torch
        self.masks = {}
        gd = {n: m for n, m in gm.named_modules() if isinstance(m, gf.nn.Dropout)}
        td = {n: m for n, m in tm.named_modules() if isinstance(m, torch.nn.Dropout)}
        assert list(gd) == list(td)
        for n, m in gd.items():
            m.register_forward_hook(self._record(n))
        for n, m in td.items():
            m.register_forward_hook(self._replay(n, m.p))

    def _record(self, n):
        def hook(mod, inp, out):
            self.masks[n] = _np(out) != 0
        return hook

    def _replay(self, n, p):
        import torch

        def hook(mod, inp, out):
            if not mod.training or p == 0:
                return out
            mask = torch.from_numpy(self.masks[n].astype(np.float64)).to(inp[0].dtype)
            return inp[0] * mask / (1 - p)
        return hook


def _loss(lib, name, out, y):
    if name == "segnet":  # class weights, an ignored label, label smoothing
        w = lib.from_numpy(np.array([0.5, 1.0, 2.0])).to(out.dtype)
        return lib.nn.CrossEntropyLoss(weight=w, ignore_index=2, label_smoothing=0.1)(out, y)
    return lib.nn.functional.cross_entropy(out, y)


def _train_compare(name, dtype, steps=3):
    """Train twins side by side; assert per-step equality. Returns (gm, tm, x)."""
    import torch
    tol = _tols(dtype)
    tm = _torch_twin(name, dtype)
    gm = _gf_twin(name, dtype, tm)
    _DropoutMirror(gm, tm)
    x, y = _data(name, dtype)
    gx, gy = gf.from_numpy(x), gf.from_numpy(y)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    gparams, tparams = dict(gm.named_parameters()), dict(tm.named_parameters())
    assert list(gparams) == list(tparams)
    gsgd = gf.optim.SGD(gm.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    tsgd = torch.optim.SGD(tm.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    gadam = gf.optim.Adam(gm.parameters(), lr=1e-3)
    tadam = torch.optim.Adam(tm.parameters(), lr=1e-3)
    # The last step is Adam's in float64 only: some gradients here are zero in exact
    # arithmetic (a conv bias or BN beta feeding a train-mode BN), and Adam turns their
    # float32 round-off into full-size lr * sign(noise) steps.
    adam = np.dtype(dtype) == np.float64
    gm.train(), tm.train()
    for step in range(steps + 1):
        gopt, topt = (gadam, tadam) if step == steps and adam else (gsgd, tsgd)
        gopt.zero_grad(), topt.zero_grad()
        gout, tout = gm(gx), tm(tx)
        assert gout.dtype == np.dtype(dtype)
        np.testing.assert_allclose(_np(gout), _np(tout), **tol, err_msg=f"{name} step {step}: output")
        gl, tl = _loss(gf, name, gout, gy), _loss(torch, name, tout, ty)
        gl.backward(), tl.backward()
        np.testing.assert_allclose(gl.item(), tl.item(), **tol, err_msg=f"{name} step {step}: loss")
        for k, tp in tparams.items():
            gp = gparams[k]
            assert gp.grad is not None, f"{name} step {step}: no grad for {k}"
            assert gp.grad.shape == tuple(tp.grad.shape), k
            np.testing.assert_allclose(_np(gp.grad), _np(tp.grad), **tol,
                                       err_msg=f"{name} step {step}: grad of {k}")
        gopt.step(), topt.step()
    gsd, tsd = gm.state_dict(), tm.state_dict()
    assert list(gsd) == list(tsd)
    for k in tsd:  # parameters and BatchNorm buffers after training
        g, t = _np(gsd[k]), _np(tsd[k])
        assert g.shape == t.shape, k
        if k.endswith("num_batches_tracked"):
            assert int(g) == int(t) == steps + 1, k
        else:
            np.testing.assert_allclose(g, t, **tol, err_msg=f"{name}: state {k}")
    gm.eval(), tm.eval()
    with gf.no_grad(), torch.no_grad():
        ge, te = gm(gx), tm(tx)
    assert not ge.requires_grad
    np.testing.assert_allclose(_np(ge), _np(te), **tol, err_msg=f"{name}: eval output")
    return gm, tm, x


# =============================================================================================
# the tests
# =============================================================================================
@requires_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_trains_like_torch(name, dtype, backend):
    gm, tm, x = _train_compare(name, dtype)
    assert gm(gf.from_numpy(x)).backend.name == backend


@requires_torch
@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_module_tree_matches_torch(name):
    import torch
    tm = ZOO[name][0](torch)
    gm = ZOO[name][0](gf)
    tmods, gmods = list(tm.named_modules()), list(gm.named_modules())
    assert [n for n, _ in gmods] == [n for n, _ in tmods]
    assert [type(m).__name__ for _, m in gmods] == [type(m).__name__ for _, m in tmods]
    assert [n for n, _ in gm.named_children()] == [n for n, _ in tm.named_children()]
    assert len(list(gm.children())) == len(list(tm.children()))
    assert [n for n, _ in gm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert [n for n, _ in gm.named_buffers()] == [n for n, _ in tm.named_buffers()]
    assert sum(p.numel() for p in gm.parameters()) == sum(p.numel() for p in tm.parameters())
    gsd, tsd = gm.state_dict(), tm.state_dict()
    assert list(gsd) == list(tsd)
    for k in tsd:
        assert tuple(gsd[k].shape) == tuple(tsd[k].shape), k
        assert np.dtype(gsd[k].dtype) == np.dtype(str(tsd[k].dtype).replace("torch.", "")), k


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_train_eval_flags_propagate(name):
    gm = ZOO[name][0](gf)
    assert gm.training and all(m.training for m in gm.modules())
    assert gm.eval() is gm
    assert not gm.training and not any(m.training for m in gm.modules())
    gm.train()
    assert all(m.training for m in gm.modules())
    gm.train(False)
    assert not any(m.training for m in gm.modules())
    first = next(iter(gm.children()))
    first.train()  # a sub-tree only
    assert all(m.training for m in first.modules())
    assert not gm.training


def test_resnet_init_follows_the_recipe():
    """kaiming_normal_(mode='fan_out', nonlinearity='relu') via the modules() loop, BN = (1, 0),
    the last BN of each block zero-initialised."""
    gf.manual_seed(0)
    gm = _resnet(gf, widths=(16, 32))
    for n, m in gm.named_modules():
        if isinstance(m, gf.nn.Conv2d):
            w = _np(m.weight)
            fan_out = w.shape[0] * w.shape[2] * w.shape[3]
            if w.size >= 1000:
                assert abs(w.std() / math.sqrt(2.0 / fan_out) - 1) < 0.1, n
                assert abs(w.mean()) < 0.1 * w.std(), n
        elif isinstance(m, gf.nn.BatchNorm2d):
            np.testing.assert_array_equal(_np(m.bias), 0)
            np.testing.assert_array_equal(_np(m.weight), 0 if n.endswith("bn2") else 1, err_msg=n)
            np.testing.assert_array_equal(_np(m.running_mean), 0)
            np.testing.assert_array_equal(_np(m.running_var), 1)
            assert int(_np(m.num_batches_tracked)) == 0


@requires_torch
@pytest.mark.parametrize("name", ["resnet", "unet", "bn32"])
def test_zoo_state_dict_round_trips_through_save_load(name, backend, tmp_path):
    import torch
    tm = _torch_twin(name, "float32")
    gm = _gf_twin(name, "float32", tm)
    x, y = _data(name, np.float32)
    opt = gf.optim.SGD(gm.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):  # move weights and running stats away from their init
        opt.zero_grad()
        gf.nn.functional.cross_entropy(gm(gf.from_numpy(x)), gf.from_numpy(y)).backward()
        opt.step()
    gf.save(gm.state_dict(), tmp_path / "m.pt")
    sd = gf.load(tmp_path / "m.pt")
    assert list(sd) == list(tm.state_dict())
    for k, v in gm.state_dict().items():
        assert sd[k].dtype == v.dtype, k
        np.testing.assert_array_equal(_np(sd[k]), _np(v), err_msg=k)
    assert int(_np(sd[[k for k in sd if k.endswith("num_batches_tracked")][0]])) == 2
    fresh = _gf_twin(name, "float32")
    fresh.load_state_dict(sd)
    fresh.eval(), gm.eval()
    with gf.no_grad():
        np.testing.assert_array_equal(_np(fresh(gf.from_numpy(x))), _np(gm(gf.from_numpy(x))))
    # and torch accepts the reloaded checkpoint and computes the same eval output
    tm.load_state_dict({k: torch.from_numpy(_np(v)) for k, v in sd.items()})
    tm.eval()
    with torch.no_grad():
        np.testing.assert_allclose(_np(tm(torch.from_numpy(x))), _np(fresh(gf.from_numpy(x))),
                                   rtol=1e-4, atol=1e-5)


def test_vgg_dropout_is_active_in_train_and_off_in_eval(backend):
    gf.manual_seed(1)
    gm = _vgg(gf)
    x = gf.from_numpy(_data("vgg", np.float32)[0])
    gm.train()
    a, b = _np(gm(x)), _np(gm(x))
    assert not np.allclose(a, b)  # fresh masks each call
    gm.eval()
    with gf.no_grad():
        np.testing.assert_array_equal(_np(gm(x)), _np(gm(x)))


def _digits_batch(n=32, seed=0):
    images, labels = gradflow.datasets.load_digits()
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(labels), n, replace=False)
    x = images[idx].astype(np.float32) / 255.0
    x = (x - 0.1307) / 0.3081
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))[:, None, ::2, ::2]  # 28x28 -> 32x32 -> 16x16
    return np.ascontiguousarray(x), labels[idx]


def test_resnet_learns_digits_without_torch(backend):
    gf.manual_seed(0)
    x, y = _digits_batch()
    model = _resnet(gf, widths=(6, 12), num_classes=10, in_ch=1)
    opt = gf.optim.Adam(model.parameters(), lr=0.03)
    crit = gf.nn.CrossEntropyLoss()
    xb, yb = gf.from_numpy(x), gf.from_numpy(y)
    model.train()
    losses = []
    for _ in range(20):
        opt.zero_grad()
        logits = model(xb)
        loss = crit(logits, yb)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.6 * losses[0], losses
    assert sum(b < a for a, b in zip(losses, losses[1:])) >= 15, losses
    acc = float((logits.argmax(dim=1) == yb).float().mean().item())
    assert acc >= 0.5, acc  # chance is 0.1


@requires_torch
def test_cnn_idioms_match_torch(backend):
    """Idioms of CNN code that used to be missing or refused: in-place ops on non-leaf
    graph tensors (relu_, clamp_, add_, mul_), flip / roll / rot90 (test-time
    augmentation), ConvTranspose2d(output_size=...) and its range check."""
    import torch
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    w = np.random.default_rng(1).standard_normal((2, 3, 4, 5))
    res = {}
    for lib in (gf, torch):
        a = lib.from_numpy(x).requires_grad_(True)
        y = a * 2
        y = y.clone()
        y[:, 0] = 0
        y.add_(0.5)
        y.mul_(lib.from_numpy(w))
        y.clamp_(max=1.5)
        y.relu_()
        z = lib.flip(y, [3]) + y.flip(2, 3) + lib.roll(y, shifts=(1, -2), dims=(2, 3)) + lib.roll(y, 3)
        z = z.sum(1) + lib.rot90(z.sum(0), 1, [1, 2]).transpose(1, 2).sum(0) + y.fliplr().sum(1)
        (z * lib.from_numpy(np.arange(20.0).reshape(4, 5))).sum().backward()
        res[lib.__name__] = (z.detach().numpy(), a.grad.numpy())
    for g, t in zip(res["gradflow"], res["torch"]):
        np.testing.assert_allclose(g, t, rtol=1e-12, atol=1e-12)
    leaf = gf.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="relu_.*leaf"):
        leaf.relu_()
    up = gf.nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1)
    assert up(gf.randn(1, 2, 4, 4), output_size=[8, 8]).shape == (1, 2, 8, 8)
    assert up(gf.randn(1, 2, 4, 4), output_size=(1, 2, 7, 7)).shape == (1, 2, 7, 7)
    with pytest.raises(ValueError, match=r"output size of \(9, 9\).*\(7, 7\) to \(8, 8\)"):
        up(gf.randn(1, 2, 4, 4), output_size=(9, 9))
