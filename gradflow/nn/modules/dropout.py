"""``Dropout`` (elementwise), ``Dropout1d/2d/3d`` (whole channels) and the alpha dropouts
(SELU-preserving); identity in eval mode."""
from __future__ import annotations

from .. import functional as F
from .module import Module


class Dropout(Module):
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(Dropout):
    def forward(self, x):
        return F.dropout2d(x, self.p, self.training)


class Dropout1d(Dropout):
    def forward(self, x):
        return F.dropout1d(x, self.p, self.training)


class Dropout3d(Dropout):
    def forward(self, x):
        return F.dropout3d(x, self.p, self.training)


class AlphaDropout(Dropout):
    """Dropout that keeps SELU activations' zero mean and unit variance."""

    def forward(self, x):
        return F.alpha_dropout(x, self.p, self.training)


class FeatureAlphaDropout(Dropout):
    def forward(self, x):
        return F.feature_alpha_dropout(x, self.p, self.training)
