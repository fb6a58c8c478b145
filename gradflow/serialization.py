"""``gradflow.save(obj, path)`` / ``gradflow.load(path)``: a safe checkpoint format.

A checkpoint is a NumPy ``.npz`` (a zip of ``.npy`` arrays, read with
``allow_pickle=False``, so loading never runs code) holding every tensor/array as
``a0, a1, ...`` plus one JSON header ``__gradflow__`` that describes the structure:
nested dicts (str or int keys), lists, tuples, numbers, strings, None, tensors and
NumPy arrays -- what module, optimizer and scheduler state dicts are made of.

Writes go to a temporary file in the destination folder, are flushed to disk and
then renamed over the target, so a crash never leaves a half-written checkpoint.
Tensors are stored as host arrays and loaded onto the current backend (or
``backend=``/``map_location=``), so checkpoints move freely between backends.
Anything that is not such a checkpoint -- empty, truncated, corrupt, a pickle, a
plain ``.npz`` -- raises :class:`CheckpointError`.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections import OrderedDict

import numpy

FORMAT = "gradflow-checkpoint"
VERSION = 1
_HEADER = "__gradflow__"


class CheckpointError(ValueError):
    """The file is not a readable gradflow checkpoint (empty, truncated, corrupt or foreign)."""


# -- encoding ---------------------------------------------------------------------------------------
def _encode(obj, arrays, path="obj"):
    from .tensor import Tensor
    if obj is None or isinstance(obj, (bool, str)):
        return {"t": "v", "v": obj}
    if isinstance(obj, int):
        return {"t": "v", "v": int(obj)}
    if isinstance(obj, float):
        return {"t": "f", "v": repr(obj)}  # exact, and inf/nan survive
    if isinstance(obj, Tensor):
        ref = f"a{len(arrays)}"
        arrays[ref] = numpy.asarray(obj.numpy(), order="C")  # (ascontiguousarray makes 0-d 1-d)
        return {"t": "tensor", "ref": ref, "requires_grad": bool(obj.requires_grad),
                "parameter": type(obj).__name__ == "Parameter"}
    if isinstance(obj, (numpy.ndarray, numpy.generic)):
        arr = numpy.asarray(obj)
        if arr.dtype.kind not in "biufc":
            raise TypeError(f"save: cannot store a NumPy array of dtype {arr.dtype} at {path}; "
                            f"only numeric/bool arrays are supported")
        ref = f"a{len(arrays)}"
        arrays[ref] = numpy.asarray(arr, order="C")
        return {"t": "ndarray" if isinstance(obj, numpy.ndarray) else "npscalar", "ref": ref}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"save: dict keys must be str or int, got {type(k).__name__} at {path}")
            items.append([k, _encode(v, arrays, f"{path}[{k!r}]")])
        return {"t": "odict" if isinstance(obj, OrderedDict) else "dict", "items": items}
    if isinstance(obj, (set, frozenset)):
        return {"t": "set" if isinstance(obj, set) else "frozenset",
                "items": [_encode(v, arrays, f"{path}{{}}") for v in obj]}
    if isinstance(obj, (list, tuple)):
        return {"t": "list" if isinstance(obj, list) else "tuple",
                "items": [_encode(v, arrays, f"{path}[{i}]") for i, v in enumerate(obj)]}
    raise TypeError(f"save: cannot store an object of type {type(obj).__name__} at {path}; "
                    f"gradflow.save stores state dicts: nested dicts/lists/tuples of tensors, "
                    f"NumPy arrays, numbers, strings and None")


def save(obj, path, metadata=None):
    """Write ``obj`` (a state dict, or nested dicts/lists of tensors and numbers) to
    ``path`` atomically. ``metadata`` (JSON-serialisable) is stored in the header."""
    arrays = {}
    header = {"format": FORMAT, "version": VERSION, "root": _encode(obj, arrays),
              "metadata": metadata if metadata is not None else {}}
    blob = numpy.frombuffer(json.dumps(header).encode("utf-8"), dtype=numpy.uint8)
    if hasattr(path, "write"):  # a file object (io.BytesIO, an open file), as torch.save
        numpy.savez(path, **{_HEADER: blob}, **arrays)
        return
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            numpy.savez(f, **{_HEADER: blob}, **arrays)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# -- decoding ---------------------------------------------------------------------------------------
def _decode(node, arrays, make_tensor):
    try:
        t = node["t"]
        if t == "v":
            return node["v"]
        if t == "f":
            return float(node["v"])
        if t == "tensor":
            return make_tensor(_numeric(arrays[node["ref"]]), node.get("requires_grad", False),
                               node.get("parameter", False))
        if t == "ndarray":
            return _numeric(arrays[node["ref"]])
        if t == "npscalar":
            arr = _numeric(arrays[node["ref"]])
            if arr.ndim:
                raise ValueError(f"scalar entry {node['ref']} holds an array of shape {arr.shape}")
            return arr[()]
        if t in ("dict", "odict"):
            d = OrderedDict() if t == "odict" else {}
            for k, v in node["items"]:
                d[k] = _decode(v, arrays, make_tensor)
            return d
        if t in ("set", "frozenset"):
            items = [_decode(v, arrays, make_tensor) for v in node["items"]]
            return set(items) if t == "set" else frozenset(items)
        if t == "list":
            return [_decode(v, arrays, make_tensor) for v in node["items"]]
        if t == "tuple":
            return tuple(_decode(v, arrays, make_tensor) for v in node["items"])
    except (KeyError, TypeError, ValueError, RecursionError) as e:
        raise CheckpointError(f"load: malformed checkpoint structure ({type(e).__name__}: {e})") from None
    raise CheckpointError(f"load: unknown entry type {t!r} in checkpoint header")


def _numeric(arr):
    """Only what :func:`save` writes: numeric/bool arrays (no strings, records, datetimes)."""
    if not isinstance(arr, numpy.ndarray) or arr.dtype.kind not in "biufc" or arr.dtype.fields:
        raise ValueError(f"array of dtype {getattr(arr, 'dtype', type(arr).__name__)} is not a "
                         f"numeric array gradflow.save would write")
    return arr


def _read(path):
    if hasattr(path, "read"):  # a file object, as torch.load
        return _read_fileobj(path, getattr(path, "name", type(path).__name__))
    path_s = os.fspath(path)
    if os.path.isdir(path_s):
        raise CheckpointError(f"load: {path_s!r} is a directory, not a checkpoint file")
    if not os.path.exists(path_s):
        raise FileNotFoundError(f"load: no such checkpoint file: {path_s!r}")
    if os.path.getsize(path_s) == 0:
        raise CheckpointError(f"load: {path_s!r} is empty (0 bytes); not a gradflow checkpoint")
    # our own file object: numpy.load(path) leaks its handle when the zip is corrupt
    with open(path_s, "rb") as fobj:
        return _read_fileobj(fobj, path_s)


def _read_fileobj(fobj, path_s):
    try:
        z = numpy.load(fobj, allow_pickle=False)
        if not hasattr(z, "files"):
            raise CheckpointError(f"load: {path_s!r} is a single .npy array, not a gradflow "
                                  f"checkpoint")
        with z:
            if _HEADER not in z.files:
                raise CheckpointError(f"load: {path_s!r} is a .npz file but not a gradflow "
                                      f"checkpoint (no {_HEADER} header)")
            header = json.loads(bytes(z[_HEADER]).decode("utf-8"))
            arrays = {name: z[name] for name in z.files if name != _HEADER}
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - zip/npy/json errors of all kinds mean "corrupt"
        raise CheckpointError(f"load: {path_s!r} is not a readable gradflow checkpoint "
                              f"(truncated, corrupt or a different format: {type(e).__name__}: {e})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT or "root" not in header:
        raise CheckpointError(f"load: {path_s!r} has no gradflow checkpoint header")
    if not isinstance(header.get("version", 0), int):
        raise CheckpointError(f"load: {path_s!r} has a malformed header (version "
                              f"{header.get('version')!r})")
    if header.get("version", 0) > VERSION:
        raise CheckpointError(f"load: {path_s!r} is checkpoint format version {header['version']}; "
                              f"this gradflow reads up to version {VERSION}")
    return header, arrays


def load(path, map_location=None, backend=None, weights_only=True):
    """Read a checkpoint written by :func:`save`. Tensors are created on ``backend``
    (or ``map_location``: a backend name or device), else the current backend."""
    from .device import device as _device
    from .tensor import Tensor
    header, arrays = _read(path)
    target = backend if backend is not None else map_location
    be = _device.resolve_backend(target) if target is not None else None

    def make_tensor(arr, requires_grad, parameter=False):
        t = Tensor(arr, backend=be)
        if parameter and t.dtype.kind == "f":
            from .nn.parameter import Parameter
            return Parameter(t, requires_grad=requires_grad)
        if requires_grad and t.dtype.kind == "f":
            t.requires_grad_(True)
        return t

    return _decode(header["root"], arrays, make_tensor)


def load_metadata(path):
    """The ``metadata`` dict stored by ``save(..., metadata=...)``."""
    header, _ = _read(path)
    return header.get("metadata", {})
