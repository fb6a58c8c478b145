"""``Embedding``: a lookup table of learned rows."""
from __future__ import annotations

from ...autograd import no_grad
from ...creation import empty
from .. import functional as F, init
from ..parameter import Parameter
from .module import Module
from .utils import check_sizes, factory_kwargs


class Embedding(Module):
    """A lookup table: ``weight`` (num_embeddings, embedding_dim), rows picked by an
    integer tensor of any shape; repeated indices accumulate their gradient. Initialised
    N(0, 1) as PyTorch; ``padding_idx``'s row starts at zero and gets no gradient."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, device=None, dtype=None):
        super().__init__()
        check_sizes("Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if padding_idx is not None and padding_idx < 0:
            padding_idx += num_embeddings
        self.padding_idx = padding_idx
        self.weight = Parameter(empty(num_embeddings, embedding_dim, **factory_kwargs(device, dtype)))
        self.reset_parameters()

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx] = 0.0

    def forward(self, idx):
        if idx.dtype.kind not in "iu":
            raise TypeError(f"Embedding: indices must be integers, got {idx.dtype}")
        # as PyTorch: the padding row is looked up like any other (it starts at zero but
        # may be re-initialised or loaded); it only gets no gradient
        return F.embedding(idx, self.weight, self.padding_idx)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"
