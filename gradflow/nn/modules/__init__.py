"""``gradflow.nn.modules``: every Module class, one file per kind, named as PyTorch's
``torch.nn.modules`` (``.linear``, ``.conv``, ``.pooling``, ``.activation``, ``.batchnorm``,
``.normalization``, ``.instancenorm``, ``.dropout``, ``.container``, ``.padding``,
``.sparse``, ``.flatten``, ``.pixelshuffle``, ``.channelshuffle``, ``.fold``,
``.upsampling``, ``.rnn``, ``.transformer``, ``.loss``, ``.distance``, ``.module``). ``gradflow.nn``
re-exports them all."""
from .module import Module
from .activation import (ReLU, Sigmoid, Tanh, Hardtanh, ReLU6, PReLU, LeakyReLU, ELU,
                         GELU, SiLU, Softplus, Softmax, LogSoftmax, Softmax2d, LogSigmoid,
                         Hardsigmoid, Hardswish, Mish, Softsign, Tanhshrink, SELU, CELU, GLU,
                         Softmin, Softshrink, Hardshrink, Threshold, RReLU, MultiheadAttention)
from .batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d
from .channelshuffle import ChannelShuffle
from .container import Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .dropout import Dropout, Dropout1d, Dropout2d, Dropout3d, AlphaDropout, FeatureAlphaDropout
from .flatten import Flatten, Unflatten
from .fold import Fold, Unfold
from .instancenorm import InstanceNorm2d
from .linear import Identity, Linear, Bilinear
from .loss import (CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, SmoothL1Loss, HuberLoss,
                   BCELoss, BCEWithLogitsLoss, KLDivLoss, MarginRankingLoss, HingeEmbeddingLoss,
                   SoftMarginLoss, CosineEmbeddingLoss, TripletMarginLoss,
                   MultiLabelSoftMarginLoss, MultiMarginLoss, PoissonNLLLoss, GaussianNLLLoss)
from .distance import PairwiseDistance, CosineSimilarity
from .normalization import RMSNorm, LayerNorm, GroupNorm, LocalResponseNorm, LocalContrastNorm2d
from .padding import (ReflectionPad1d, ReflectionPad2d, ReflectionPad3d,
                      ReplicationPad1d, ReplicationPad2d, ReplicationPad3d, CircularPad1d,
                      CircularPad2d, CircularPad3d, ConstantPad1d, ConstantPad2d, ConstantPad3d,
                      ZeroPad1d, ZeroPad2d, ZeroPad3d)
from .pixelshuffle import PixelShuffle, PixelUnshuffle
from .pooling import (MaxPool1d, MaxPool2d, MaxPool3d, AvgPool1d, AvgPool2d, AvgPool3d,
                      LPPool2d, AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d,
                      AdaptiveMaxPool1d, AdaptiveMaxPool2d, AdaptiveMaxPool3d, MaxUnpool2d)
from .rnn import RNNBase, RNN, LSTM, GRU, RNNCellBase, RNNCell, LSTMCell, GRUCell
from .sparse import Embedding
from .transformer import (TransformerEncoderLayer, TransformerEncoder,
                          TransformerDecoderLayer, TransformerDecoder, Transformer)
from .upsampling import Upsample, UpsamplingNearest2d, UpsamplingBilinear2d

__all__ = ["Module", "ReLU", "Sigmoid", "Tanh", "Hardtanh", "ReLU6", "PReLU", "LeakyReLU", "ELU",
           "GELU", "SiLU", "Softplus", "Softmax", "LogSoftmax", "Softmax2d",
           "LogSigmoid", "Hardsigmoid", "Hardswish", "Mish", "Softsign", "Tanhshrink",
           "SELU", "CELU", "GLU", "Softmin", "Softshrink", "Hardshrink", "Threshold",
           "RReLU", "MultiheadAttention", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
           "ChannelShuffle", "Sequential", "ModuleList", "ModuleDict",
           "ParameterList", "ParameterDict", "Conv1d", "Conv2d", "Conv3d",
           "ConvTranspose2d", "ConvTranspose3d", "Dropout", "Dropout2d", "Flatten",
           "Unflatten", "Fold", "Unfold", "InstanceNorm2d", "Identity", "Linear",
           "Bilinear", "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss",
           "SmoothL1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss",
           "MarginRankingLoss", "HingeEmbeddingLoss", "SoftMarginLoss", "CosineEmbeddingLoss",
           "TripletMarginLoss", "MultiLabelSoftMarginLoss", "MultiMarginLoss", "PoissonNLLLoss",
           "GaussianNLLLoss", "PairwiseDistance", "CosineSimilarity", "ConvTranspose1d",
           "Dropout1d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout", "RMSNorm",
           "LayerNorm", "GroupNorm", "LocalResponseNorm", "LocalContrastNorm2d",
           "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d",
           "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d",
           "CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d",
           "ConstantPad2d", "ConstantPad3d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d",
           "PixelShuffle", "PixelUnshuffle", "MaxPool1d", "MaxPool2d", "MaxPool3d",
           "AvgPool1d", "AvgPool2d", "AvgPool3d", "LPPool2d", "AdaptiveAvgPool1d",
           "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
           "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "MaxUnpool2d", "RNNBase", "RNN",
           "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell",
           "Embedding", "TransformerEncoderLayer", "TransformerEncoder",
           "TransformerDecoderLayer", "TransformerDecoder", "Transformer", "Upsample",
           "UpsamplingNearest2d", "UpsamplingBilinear2d"]
