"""``gradflow.nn``: modules, layers, losses and initialisers (PyTorch's ``torch.nn``).

    import gradflow.nn as nn
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    loss = nn.CrossEntropyLoss()(model(x), y)
"""
from . import functional, init, modules, utils  # noqa: F401
from .parameter import Parameter, Buffer  # noqa: F401
from .modules import *  # noqa: F401,F403 - every Module class (see gradflow.nn.modules.__all__)
from . import parallel  # noqa: F401
from .parallel import DistributedDataParallel  # noqa: F401
from . import _moved  # noqa: F401 - old module paths (gradflow.nn.layers...) for old checkpoints

#: torch.nn names gradflow lacks -> what to do instead
UNSUPPORTED = {
    "CTCLoss": "CTC loss is not implemented",
    "EmbeddingBag": "EmbeddingBag is not implemented; use Embedding and reduce over the bag dim",
    "LazyLinear": "lazy modules are not implemented; give in_features",
    "LazyConv1d": "lazy modules are not implemented; give in_channels",
    "LazyConv2d": "lazy modules are not implemented; give in_channels",
    "LazyBatchNorm2d": "lazy modules are not implemented; give num_features",
    "SyncBatchNorm": "SyncBatchNorm is not implemented; BatchNorm buffers are broadcast from "
                     "rank 0 by DistributedDataParallel",
    "MultiLabelMarginLoss": "not implemented; see MultiLabelSoftMarginLoss",
    "TripletMarginWithDistanceLoss": "not implemented; see TripletMarginLoss",
    "AdaptiveLogSoftmaxWithLoss": "not implemented",
    "FractionalMaxPool2d": "fractional max pooling is not implemented",
    "InstanceNorm1d": "only InstanceNorm2d is implemented",
    "InstanceNorm3d": "only InstanceNorm2d is implemented",
}


from ..unsupported import module_getattr  # noqa: E402
__getattr__ = module_getattr("gradflow.nn", UNSUPPORTED)
