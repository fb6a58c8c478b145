"""``ChannelShuffle``: interleave the channels of ``groups`` groups (ShuffleNet)."""
from __future__ import annotations

from .. import functional as F
from .module import Module


class ChannelShuffle(Module):
    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        return F.channel_shuffle(x, self.groups)

    def extra_repr(self):
        return f"groups={self.groups}"
