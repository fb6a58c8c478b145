"""``gradflow.nn``: modules, layers, losses and initialisers (PyTorch's ``torch.nn``).

    import gradflow.nn as nn
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    loss = nn.CrossEntropyLoss()(model(x), y)
"""
from . import functional  # noqa: F401
from . import init  # noqa: F401
from .parameter import Parameter, Buffer  # noqa: F401
from .module import Module  # noqa: F401
from .layers import (Identity, Linear, Bilinear, Conv2d, MaxPool2d, AvgPool2d, LPPool2d,  # noqa: F401
                     AdaptiveAvgPool2d, ReLU, Sigmoid, Tanh, LeakyReLU, ELU, GELU, SiLU, Softplus,
                     Softmax, LogSoftmax, Flatten, Unflatten, Dropout, Dropout2d, BatchNorm1d,
                     BatchNorm2d, BatchNorm3d, LocalResponseNorm, Sequential, ModuleList, ModuleDict,
                     ParameterList, Embedding, ConvTranspose2d, Upsample, Hardtanh, ReLU6, PReLU,
                     ReflectionPad1d, ReflectionPad2d, ReflectionPad3d, ReplicationPad1d,
                     ReplicationPad2d, ReplicationPad3d, CircularPad1d, CircularPad2d,
                     CircularPad3d, ConstantPad1d, ConstantPad2d, ConstantPad3d, ZeroPad1d,
                     ZeroPad2d, ZeroPad3d, UpsamplingNearest2d, UpsamplingBilinear2d)
from .loss import (CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, SmoothL1Loss, HuberLoss,  # noqa: F401
                   BCELoss, BCEWithLogitsLoss, KLDivLoss)
from .normalization import LayerNorm, GroupNorm, InstanceNorm2d  # noqa: F401
from .layers import (AdaptiveMaxPool2d, ParameterDict, LogSigmoid, Hardsigmoid,  # noqa: F401
                     Hardswish, Mish, Softsign, Softmax2d, PixelShuffle, PixelUnshuffle,
                     ChannelShuffle, MaxUnpool2d)
from .layers import (SELU, CELU, GLU, Softmin, Tanhshrink, Softshrink, Hardshrink,  # noqa: F401
                     Threshold, RReLU, Unfold, Fold)
from .layers1d import Conv1d, MaxPool1d, AvgPool1d, AdaptiveAvgPool1d, AdaptiveMaxPool1d  # noqa: F401
from . import utils  # noqa: F401
from .recurrent import RNNBase, RNN, LSTM, GRU, RNNCellBase, RNNCell, LSTMCell, GRUCell  # noqa: F401,E402
from .attention import (MultiheadAttention, TransformerEncoderLayer,  # noqa: F401,E402
                        TransformerEncoder)
from .attention import TransformerDecoderLayer, TransformerDecoder, Transformer  # noqa: F401,E402
from .layers3d import (Conv3d, ConvTranspose3d, MaxPool3d, AvgPool3d,  # noqa: F401,E402
                       AdaptiveAvgPool3d, AdaptiveMaxPool3d)
from .contrast import LocalContrastNorm2d  # noqa: F401,E402
from . import parallel  # noqa: F401,E402
from .parallel import DistributedDataParallel  # noqa: F401,E402
