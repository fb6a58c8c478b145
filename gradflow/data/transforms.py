"""Sample transforms (torchvision-style names) working on NumPy arrays.

Every transform maps one sample to one sample; those with ``apply_batch`` can also
map a stacked batch at once, which the image datasets use to build batches
without a Python call per sample. ``ToTensor()(image)`` returns a float32 Tensor
in CHW layout scaled to [0, 1] on the current backend, as torchvision's does;
``Normalize``/``Standardize`` accept Tensors or NumPy arrays and return the same
kind. ``apply_batch`` works on NumPy batches (the DataLoader makes the Tensors).
"""
from __future__ import annotations

import numpy
from numpy.lib.stride_tricks import sliding_window_view

from ..backends import current_backend
from ..tensor import Tensor


def _host(x):
    return x.numpy() if isinstance(x, Tensor) else numpy.asarray(x)


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __getattr__(self, name):
        if name == "apply_batch" and all(hasattr(t, "apply_batch") for t in self.__dict__.get("transforms", [])):
            def apply_batch(x):
                for t in self.transforms:
                    x = t.apply_batch(x)
                return x
            return apply_batch
        raise AttributeError(name)

    def __repr__(self):
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class ToTensor:
    """uint8 (H, W) / (H, W, C) images -> float32 (C, H, W) in [0, 1]; float input is
    only reshaped to CHW. ``channels_last=True`` declares 3-D input as HWC (PIL/
    torchvision layout); the default treats 3-D input as already CHW."""

    def __init__(self, channels_last=False):
        self.channels_last = channels_last

    def _convert(self, x, batched):
        x = _host(x)
        scale = x.dtype == numpy.uint8
        x = x.astype(numpy.float32)
        if scale:
            x *= numpy.float32(1 / 255)
        nd = x.ndim - (1 if batched else 0)
        if nd == 2:
            x = x[:, None] if batched else x[None]
        elif nd == 3 and self.channels_last:
            x = numpy.moveaxis(x, -1, -3)
        return numpy.ascontiguousarray(x)

    def __call__(self, x):
        be = current_backend()
        return Tensor._make(be.asarray(self._convert(x, False)), be)

    def apply_batch(self, x):
        return self._convert(x, True)

    def __repr__(self):
        return "ToTensor()"


class Normalize:
    """(x - mean) / std per channel (channel axis -3 of CHW samples)."""

    def __init__(self, mean, std):
        self.mean = numpy.asarray(mean, dtype=numpy.float32).reshape(-1)
        self.std = numpy.asarray(std, dtype=numpy.float32).reshape(-1)
        if numpy.any(self.std == 0):
            raise ValueError(f"Normalize: std must be non-zero, got {std}")

    def __call__(self, x):
        ndim = x.ndim
        if ndim < 3 and self.mean.size > 1:
            raise ValueError(f"Normalize: per-channel statistics need CHW samples, got shape {x.shape}")
        shape = (-1,) + (1,) * (ndim - 1) if ndim >= 3 else (-1,)
        if isinstance(x, Tensor):
            mean = Tensor._make(x.backend.asarray(self.mean.reshape(shape).astype(x.dtype)), x.backend)
            std = Tensor._make(x.backend.asarray(self.std.reshape(shape).astype(x.dtype)), x.backend)
            return (x - mean) / std
        x = _host(x).astype(numpy.float32, copy=False)
        return (x - self.mean.reshape(shape)) / self.std.reshape(shape)

    def apply_batch(self, x):
        x = _host(x).astype(numpy.float32, copy=False)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return (x - self.mean.reshape(shape)) / self.std.reshape(shape)

    def __repr__(self):
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class Standardize(Normalize):
    """Dataset standardisation: subtract the TRAINING set's mean and divide by its std.

        std = Standardize.fit(train_images)          # uint8 or float, N x [C x] H x W
        train = MNIST(train=True, transform=Compose([ToTensor(), std]))

    ``per_channel`` computes one statistic per channel (axis 1 of NCHW), else one
    global pair. Statistics are computed after ``ToTensor`` scaling (uint8 / 255)."""

    @classmethod
    def fit(cls, data, per_channel=False):
        x = _host(data)
        if x.dtype == numpy.uint8:
            x = x.astype(numpy.float64) / 255.0
        x = x.astype(numpy.float64, copy=False)
        if per_channel:
            if x.ndim != 4:
                raise ValueError(f"Standardize.fit: per_channel needs N x C x H x W data, got {x.shape}")
            axes = (0, 2, 3)
            return cls(x.mean(axis=axes), x.std(axis=axes))
        return cls([x.mean()], [x.std()])

    def __repr__(self):
        return f"Standardize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class Lambda:
    def __init__(self, fn):
        self.fn = fn

    def __call__(self, x):
        return self.fn(x)


class RandomHorizontalFlip:
    """Flip CHW samples left-right with probability ``p`` (seeded by ``seed``)."""

    def __init__(self, p=0.5, seed=None):
        self.p = p
        self._rng = numpy.random.default_rng(seed)

    def __call__(self, x):
        x = _host(x)
        return numpy.ascontiguousarray(x[..., ::-1]) if self._rng.random() < self.p else x

    def apply_batch(self, x):
        """(N, ..., W): flips the samples whose draw is below ``p``; the draws are the
        ones N per-sample calls would make, in order."""
        x = _host(x)
        flip = self._rng.random(len(x)) < self.p
        out = numpy.array(x, copy=True, order="C")
        out[flip] = x[flip][..., ::-1]
        return out


class RandomCrop:
    """Pad CHW samples by ``padding`` (zeros) and cut a random ``size`` window: random
    translations by up to ``padding`` pixels, the usual augmentation for small images.
    Seeded by ``seed``; ``apply_batch`` draws one offset per sample."""

    def __init__(self, size, padding=0, fill=0.0, seed=None):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.padding, self.fill = padding, fill
        self._rng = numpy.random.default_rng(seed)

    def _pad(self, x):
        p = self.padding
        if not p:
            return x
        h, w = x.shape[-2:]
        out = numpy.full(x.shape[:-2] + (h + 2 * p, w + 2 * p), self.fill, dtype=x.dtype)
        out[..., p:p + h, p:p + w] = x
        return out

    def __call__(self, x):
        x = self._pad(_host(x))
        h, w = x.shape[-2:]
        th, tw = self.size
        i = int(self._rng.integers(0, h - th + 1))
        j = int(self._rng.integers(0, w - tw + 1))
        return numpy.ascontiguousarray(x[..., i:i + th, j:j + tw])

    def apply_batch(self, x):
        """(N, [C,] H, W) -> (N, [C,] th, tw): one window per sample, picked by one
        fancy index into the batch's sliding-window view (no Python loop over samples)."""
        x = self._pad(_host(x))
        n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
        th, tw = self.size
        if th > h or tw > w:
            raise ValueError(f"RandomCrop: crop size {self.size} is larger than the padded "
                             f"image {(h, w)}")
        i = self._rng.integers(0, h - th + 1, size=n)
        j = self._rng.integers(0, w - tw + 1, size=n)
        windows = sliding_window_view(x, (th, tw), axis=(-2, -1))  # (N, [C,] h-th+1, w-tw+1, th, tw)
        # the sample, window row and column are advanced indices: they pair up per sample
        # and (with the channel slice between them) their axis goes first -> (N, [C,] th, tw)
        return numpy.ascontiguousarray(windows[(numpy.arange(n),) + (slice(None),) * (x.ndim - 3) + (i, j)])

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"
