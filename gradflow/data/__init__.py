"""``gradflow.data`` (also ``gradflow.utils.data``): datasets, samplers, the
DataLoader and its default collate, transforms.

    from gradflow.data import DataLoader, TensorDataset
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, seed=0)
    for xb, yb in loader: ...
"""
from .dataset import (Dataset, IterableDataset, TensorDataset, ArrayDataset, Subset,  # noqa: F401
                      ConcatDataset, random_split, Generator)
from .dataloader import (DataLoader, default_collate, SequentialSampler, RandomSampler,  # noqa: F401
                         SubsetRandomSampler, BatchSampler, WeightedRandomSampler,
                         Sampler)
from .distributed import DistributedSampler  # noqa: F401
from . import transforms  # noqa: F401
