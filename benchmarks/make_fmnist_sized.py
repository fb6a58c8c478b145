"""A Fashion-MNIST-sized stand-in built from gradflow's bundled digits, for timing.

    python benchmarks/make_fmnist_sized.py DIR          # then:
    gradflow train --dataset fashion-mnist --data-root DIR

Writes the four files ``gradflow.datasets.FashionMNIST`` reads --
``train-images-idx3-ubyte.gz`` (60,000 x 28 x 28 uint8), ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz`` (10,000) and ``t10k-labels-idx1-ubyte.gz`` (classes 0..9)
-- straight into DIR (one of the places FashionMNIST looks, see
``gradflow.datasets._files.search_dirs``), so the benchmark runs the real loader path.

**This is not Fashion-MNIST.** No copy of it is on the benchmark machine and it has no
internet. The images are the 5,000 real MNIST digits bundled with gradflow
(``gradflow.datasets.load_digits``), each drawn many times with a random shift of up
to 3 pixels, a random contrast in [0.6, 1] and Gaussian pixel noise (sd 10 grey
levels), so every sample differs from every other. The files have Fashion-MNIST's
sizes, dtypes and class count, which is all the time of a training run depends on;
the accuracies they give are digits accuracies, not Fashion-MNIST ones. The test set
is drawn only from digits the training set never uses (4,000 source digits for
training, the other 1,000 for testing), so the test accuracy is still a held-out one.
The same seed writes the same bytes (gzip timestamps are zeroed).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys

import numpy

SHIFT = 3            # largest shift, pixels, either direction on each axis
CONTRAST = (0.6, 1.0)
NOISE_SD = 10.0      # grey levels
TRAIN_SOURCES = 4000  # of the 5,000 bundled digits; the rest are the test set's sources
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def jitter(images, rng, chunk=10_000):
    """Randomly shifted, contrast-scaled, noisy copies of ``images`` (N x H x W uint8);
    the same shape and dtype. Shifts move the digit inside the frame (zeros come in)."""
    n, h, w = images.shape
    out = numpy.empty_like(images)
    for a in range(0, n, chunk):
        part = images[a:a + chunk]
        m = len(part)
        padded = numpy.zeros((m, h + 2 * SHIFT, w + 2 * SHIFT), numpy.uint8)
        padded[:, SHIFT:SHIFT + h, SHIFT:SHIFT + w] = part
        di = rng.integers(0, 2 * SHIFT + 1, m)
        dj = rng.integers(0, 2 * SHIFT + 1, m)
        windows = numpy.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(1, 2))
        shifted = windows[numpy.arange(m), di, dj].astype(numpy.float32)
        shifted *= rng.uniform(*CONTRAST, m).astype(numpy.float32)[:, None, None]
        shifted += rng.normal(0.0, NOISE_SD, shifted.shape).astype(numpy.float32)
        out[a:a + m] = numpy.clip(numpy.rint(shifted), 0, 255).astype(numpy.uint8)
    return out


def build(n_train=60_000, n_test=10_000, seed=0, images=None, labels=None):
    """``{"train": (images, labels, sources), "t10k": (...)}``: uint8 N x 28 x 28 images,
    uint8 labels and the int64 index of the source image of each sample.
    ``images``/``labels`` default to the bundled digits; the first ``TRAIN_SOURCES``
    (at most 80%) of a seeded permutation feed the train split, the rest the test
    split, each sampled with replacement, class-balanced up to one sample."""
    if images is None:
        from gradflow.datasets import load_digits
        images, labels = load_digits()
    labels = numpy.asarray(labels)
    rng = numpy.random.default_rng(seed)
    perm = rng.permutation(len(labels))
    cut = min(TRAIN_SOURCES, len(labels) * 4 // 5)
    out = {}
    for split, n, src in (("train", n_train, perm[:cut]), ("t10k", n_test, perm[cut:])):
        classes = numpy.unique(labels[src])
        want = numpy.resize(classes, n)  # 0 1 2 .. 9 0 1 ..: balanced
        rng.shuffle(want)
        pick = numpy.empty(n, numpy.int64)
        for c in classes:
            slots = numpy.flatnonzero(want == c)
            pick[slots] = rng.choice(src[labels[src] == c], len(slots))
        out[split] = (jitter(images[pick], rng), labels[pick].astype(numpy.uint8), pick)
    return out


def write(folder, n_train=60_000, n_test=10_000, seed=0):
    """Write the four ``*-ubyte.gz`` files into ``folder`` (created); returns
    ``{file name: sha256}``."""
    from gradflow.datasets import write_idx
    os.makedirs(folder, exist_ok=True)
    parts = build(n_train, n_test, seed)
    sums = {}
    for split in ("train", "t10k"):
        x, y, _ = parts[split]
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            name = f"{split}-{kind}-ubyte.gz"
            path = write_idx(os.path.join(folder, name), arr)
            with open(path, "rb") as f:
                sums[name] = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(folder, "README.txt"), "w") as f:
        f.write("NOT Fashion-MNIST: a same-size stand-in (60,000/10,000 28x28 uint8, 10 classes)\n"
                "made by gradflow's benchmarks/make_fmnist_sized.py from the bundled MNIST\n"
                f"digits with random shifts, contrast and noise (seed {seed}). For timing only.\n")
    return sums


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--train", type=int, default=60_000)
    ap.add_argument("--test", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    for name, digest in write(a.folder, a.train, a.test, a.seed).items():
        print(f"{digest}  {os.path.join(a.folder, name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
