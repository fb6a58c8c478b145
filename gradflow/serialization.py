"""``gradflow.save(obj, f)`` / ``gradflow.load(f)``: checkpoints that are safe to load.

A checkpoint is a zip of ``.npy`` arrays (NumPy's ``.npz`` layout, members stored
uncompressed) holding every tensor/array as ``a0, a1, ...`` plus one JSON header
``__gradflow__``. Two kinds of ``root`` in the header:

* **Format version 1** -- state dicts: nested dicts (str or int keys), lists,
  tuples, sets, numbers, strings, None, tensors and NumPy arrays, described in the
  JSON header itself. No pickle is involved.
* **Format version 2** -- any other picklable object: a whole ``nn.Module``, an
  optimizer, a dict mixing them. The object is pickled (protocol 4) into one
  ``uint8`` member, except that every tensor, array, NumPy scalar and dtype is a
  *persistent id* naming an array member: tensor data is never pickled bytes.

``load(f, weights_only=True)``, the default (as PyTorch >= 2.6), never runs code
the file names: version 1 is plain data; version 2 is read by gradflow's own
pickle interpreter (:mod:`gradflow._weights_only`), which builds tensors,
containers, numbers and strings, instances of gradflow's own ``nn``/``optim``
classes (made with ``object.__new__`` and filled from data: none of their code
runs, see docs/DESIGN.md) and the globals the user allowed with
:func:`add_safe_globals` / :class:`safe_globals`. Any other global raises
:class:`WeightsOnlyError` naming it. ``weights_only=False`` unpickles with Python's
:mod:`pickle` -- it can run any code, so only for files you trust.

Reading checks every declared size before allocating (see :mod:`gradflow._npz_members`):
a stored member must be as long as it says, an array as long as its member, and
deflated members (which gradflow never writes) may inflate to at most
``max_inflated_bytes`` (default :data:`MAX_INFLATED_BYTES`). Anything that is not
such a checkpoint -- empty, truncated, corrupt, a pickle, a plain ``.npz`` --
raises :class:`CheckpointError`.

Writes go to a temporary file in the destination folder, are flushed to disk and
renamed over the target, so a crash never leaves a half-written checkpoint. The
temporary file is named ``.NAME.HOST-PID-XXXXXXXX.tmp``; a later save to the same
path deletes such files whose process (same host, pid no longer running) died
mid-save, so killed saves do not pile up. Tensors are stored as host arrays and
loaded onto the current backend (or ``backend=``/``map_location=``).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import socket
import tempfile
from collections import OrderedDict

import numpy

from . import _weights_only
from ._npz_members import MemberError, Members

FORMAT = "gradflow-checkpoint"
VERSION = 2            # the newest format this gradflow reads
_STATE_VERSION = 1     # what a state dict (no pickle) is written as: readable by older gradflow
_HEADER = "__gradflow__"
MAX_INFLATED_BYTES = 1 << 30
"""Default limit on how far the deflated members of a checkpoint may inflate (1 GiB).
gradflow writes members uncompressed, so only foreign or re-zipped files meet it."""

__all__ = ["save", "load", "load_metadata", "CheckpointError", "WeightsOnlyError",
           "add_safe_globals", "get_safe_globals", "clear_safe_globals", "safe_globals",
           "MAX_INFLATED_BYTES"]


class CheckpointError(ValueError):
    """The file is not a readable gradflow checkpoint (empty, truncated, corrupt or foreign)."""


class WeightsOnlyError(CheckpointError, pickle.UnpicklingError):
    """``weights_only=True`` refused a global the checkpoint names (PyTorch raises
    ``pickle.UnpicklingError`` here; this is both that and a CheckpointError)."""


# -- the user's allow-list (torch.serialization.add_safe_globals) ------------------------------------
_user_globals = []


def _entry(g):
    if isinstance(g, tuple) and len(g) == 2 and isinstance(g[1], str):
        return g
    if not hasattr(g, "__qualname__"):
        raise TypeError(f"add_safe_globals: expected classes or functions (or (object, "
                        f"'module.name') pairs), got {g!r:.60}")
    return (g, _weights_only.qualified_name(g))


def add_safe_globals(safe_globals):
    """Allow ``weights_only`` loading to build these classes/functions (a list of
    objects or ``(object, "module.qualname")`` pairs). You vouch for them: they are
    called and ``__setstate__``-ed as ordinary unpickling would."""
    _user_globals.extend(_entry(g) for g in safe_globals)


def get_safe_globals():
    """The globals added with :func:`add_safe_globals` (and active :class:`safe_globals`)."""
    return [g if name == _weights_only.qualified_name(g) else (g, name) for g, name in _user_globals]


def clear_safe_globals():
    """Forget every global added with :func:`add_safe_globals`."""
    del _user_globals[:]


class safe_globals:
    """``with safe_globals([Net]): gradflow.load(f)``: allow globals for the block only."""

    def __init__(self, safe_globals):
        self._entries = [_entry(g) for g in safe_globals]

    def __enter__(self):
        self._start = len(_user_globals)
        _user_globals.extend(self._entries)
        return self

    def __exit__(self, *exc):
        del _user_globals[self._start:self._start + len(self._entries)]


def _default_policy():
    """gradflow's own nn/optim classes (those restorable without running their code)
    and the functions/constants modules keep as attributes, plus the user's globals."""
    from . import layout
    from .nn import functional
    from .nn.modules.module import Module
    from .optim import lr_scheduler
    from .optim.optimizer import Optimizer
    from .device import device
    from .tensor import Size, Tensor
    classes = {}
    todo = [Module, Optimizer, lr_scheduler.LRScheduler, lr_scheduler.ReduceLROnPlateau, device, Size]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("gradflow.") and restorable_without_code(cls):
            classes[_weights_only.qualified_name(cls)] = cls
    values = {}
    for obj in vars(functional).values():
        if callable(obj) and not isinstance(obj, type) and hasattr(obj, "__qualname__") and \
                str(getattr(obj, "__module__", "")).startswith("gradflow."):
            values[_weights_only.qualified_name(obj)] = obj
    for name, obj in vars(layout).items():
        if isinstance(obj, layout.memory_format):
            values[f"{layout.__name__}.{name}"] = obj
    _add_aliases(classes)
    _add_aliases(values)
    trusted = {name: g for g, name in _user_globals}
    return _weights_only.Policy(classes, values, trusted, key_types=(Tensor,))


def _add_aliases(table):
    """Also accept every other gradflow module path an allowed object is reachable
    under (``gradflow.nn.Linear``, ``gradflow.nn.modules.linear.Linear``...): a file
    saved before a class moved between modules names its old path, which keeps
    loading as long as that path still leads to the same object."""
    import sys
    wanted = {id(obj) for obj in table.values()}
    for modname, module in list(sys.modules.items()):
        if not (modname == "gradflow" or modname.startswith("gradflow.")) or module is None:
            continue
        for attr, obj in list(vars(module).items()):
            if id(obj) in wanted:
                table.setdefault(f"{modname}.{attr}", obj)


def restorable_without_code(cls):
    """True when an instance of ``cls`` can be rebuilt by ``object.__new__`` (or
    ``tuple.__new__``) plus a ``__dict__`` update: no custom ``__new__`` or
    ``__setstate__`` that loading would have to run."""
    if getattr(cls, "__setstate__", None) is not None:
        return False
    if cls.__new__ is tuple.__new__:
        return True
    return cls.__new__ is object.__new__ and cls.__dictoffset__ != 0


# -- encoding ---------------------------------------------------------------------------------------
class _NotPlainData(Exception):
    """``obj`` holds something the version-1 (JSON-described) format cannot: pickle it."""


class _ArrayStore:
    """The arrays of one checkpoint, one member per distinct tensor/array object."""

    def __init__(self):
        self.arrays = {}
        self._refs = {}
        self._alive = []  # keep encoded objects alive so their ids stay unique

    def ref(self, obj, to_array):
        key = id(obj)
        if key not in self._refs:
            self._refs[key] = ref = f"a{len(self.arrays)}"
            self.arrays[ref] = to_array()
            self._alive.append(obj)
        return self._refs[key]

    def tensor(self, t):
        ref = self.ref(t, lambda: numpy.asarray(t.numpy(), order="C"))  # (ascontiguousarray makes 0-d 1-d)
        kind = {"Parameter": "parameter", "Buffer": "buffer"}.get(type(t).__name__, "tensor")
        return ref, bool(t.requires_grad), kind, bool(getattr(t, "persistent", True))

    def ndarray(self, obj, path):
        arr = numpy.asarray(obj)
        if arr.dtype.kind not in "biufc" or arr.dtype.fields is not None:
            raise TypeError(f"save: cannot store a NumPy array of dtype {arr.dtype} at {path}; "
                            f"only numeric/bool arrays are supported")
        return self.ref(obj, lambda: numpy.asarray(arr, order="C"))


def _encode(obj, store, path="obj"):
    from .tensor import Tensor
    if obj is None or isinstance(obj, (bool, str)):
        return {"t": "v", "v": obj}
    if isinstance(obj, int):
        return {"t": "v", "v": int(obj)}
    if isinstance(obj, float):
        return {"t": "f", "v": repr(obj)}  # exact, and inf/nan survive
    if isinstance(obj, Tensor):
        ref, requires_grad, kind, _ = store.tensor(obj)  # (a Buffer loads as a plain tensor)
        return {"t": "tensor", "ref": ref, "requires_grad": requires_grad, "parameter": kind == "parameter"}
    if isinstance(obj, (numpy.ndarray, numpy.generic)):
        ref = store.ndarray(obj, path)
        return {"t": "ndarray" if isinstance(obj, numpy.ndarray) else "npscalar", "ref": ref}
    if type(obj) in (dict, OrderedDict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise _NotPlainData
            items.append([k, _encode(v, store, f"{path}[{k!r}]")])
        return {"t": "odict" if isinstance(obj, OrderedDict) else "dict", "items": items}
    if type(obj) in (set, frozenset):
        return {"t": "set" if isinstance(obj, set) else "frozenset",
                "items": [_encode(v, store, f"{path}{{}}") for v in obj]}
    if type(obj) in (list, tuple):
        return {"t": "list" if isinstance(obj, list) else "tuple",
                "items": [_encode(v, store, f"{path}[{i}]") for i, v in enumerate(obj)]}
    raise _NotPlainData


_DTYPE_STR = re.compile(r"[<>|=][biufc][0-9]{1,2}")


class _Pickler(pickle.Pickler):
    """Pickles ``obj`` with tensors, arrays, NumPy scalars and dtypes as persistent ids."""

    def __init__(self, file, store):
        super().__init__(file, protocol=4)
        self.store = store

    def persistent_id(self, obj):
        from .backends import Backend
        from .tensor import Tensor
        if isinstance(obj, Tensor):
            return ("tensor",) + self.store.tensor(obj)
        if isinstance(obj, numpy.ndarray):
            return ("ndarray", self.store.ndarray(obj, "an attribute"))
        if isinstance(obj, numpy.generic):
            return ("npscalar", self.store.ndarray(obj, "an attribute"))
        if isinstance(obj, numpy.dtype):
            if not _DTYPE_STR.fullmatch(obj.str):
                raise TypeError(f"save: cannot store NumPy dtype {obj}; only numeric dtypes")
            return ("dtype", obj.str)
        if isinstance(obj, Backend):
            return ("backend", obj.name)
        return None


def _pickle_root(obj, store):
    buf = io.BytesIO()
    try:
        _Pickler(buf, store).dump(obj)
    except RecursionError:
        raise ValueError(f"save: cannot store this {type(obj).__name__}: it is nested too deeply "
                         f"to pickle") from None
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        raise TypeError(f"save: cannot store an object of type {type(obj).__name__}: {e}. "
                        f"gradflow.save stores tensors, arrays, numbers, strings, containers and "
                        f"picklable objects (modules, optimizers); lambdas, local classes, open "
                        f"files and the like cannot be pickled") from None
    return numpy.frombuffer(buf.getvalue(), dtype=numpy.uint8)


def save(obj, f, metadata=None, pickle_protocol=None):
    """Write ``obj`` to ``f`` (a path, written atomically, or a binary file object).

    State dicts (nested containers of tensors, arrays, numbers, strings) are stored
    as format version 1, readable by any gradflow; other objects (whole modules,
    optimizers) are pickled with their tensors as arrays (version 2). ``metadata``
    (JSON-serialisable) is stored in the header, read back by :func:`load_metadata`.
    ``pickle_protocol`` is accepted for ``torch.save`` compatibility; protocol 4 is
    always written."""
    store = _ArrayStore()
    try:
        root, version = _encode(obj, store), _STATE_VERSION
    except RecursionError:
        raise ValueError(f"save: cannot store this {type(obj).__name__}: it is nested too deeply") from None
    except _NotPlainData:
        store = _ArrayStore()
        blob = _pickle_root(obj, store)
        root, version = {"t": "pickle", "ref": store.ref(blob, lambda: blob)}, VERSION
    header = {"format": FORMAT, "version": version, "root": root,
              "metadata": metadata if metadata is not None else {}}
    members = {_HEADER: numpy.frombuffer(json.dumps(header).encode("utf-8"), dtype=numpy.uint8),
               **store.arrays}
    if hasattr(f, "write"):  # a file object (io.BytesIO, an open file), as torch.save
        numpy.savez(f, **members)
        return
    _write_atomically(os.fspath(f), members)


# -- atomic writes and their temporary files ---------------------------------------------------------
def _host_tag():
    """This host in a file name: readable start plus a hash of the whole name, so two
    hosts whose long names share a prefix still differ."""
    name = socket.gethostname()
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return (re.sub(r"[^A-Za-z0-9-]", "-", name)[:20] or "host") + "-" + digest


def _temp_pattern(base, host):
    """The names ``_write_atomically`` gives its temporary files for ``base`` on ``host``."""
    return re.compile(r"\." + re.escape(base) + r"\." + re.escape(host) + r"-(?P<pid>[0-9]{1,10})-"
                      r"[A-Za-z0-9_]{1,32}\.tmp")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # it exists (another user's), or we cannot tell: keep its file
    return True


def remove_stale_temps(path):
    """Delete the temporary files that saves to ``path`` left when their process
    died mid-write: only names this module makes, only this host's, only when the
    pid in the name is not a running process (a live writer's file is kept).
    Returns the names removed. Does nothing on Windows (no safe liveness probe)."""
    if os.name == "nt":
        return []
    folder, base = os.path.split(os.path.abspath(path))
    pattern, me = _temp_pattern(base, _host_tag()), os.getpid()
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = pattern.fullmatch(name)
        if m is None:
            continue
        pid = int(m["pid"])
        if pid == me or _pid_alive(pid):
            continue
        try:
            os.unlink(os.path.join(folder, name))
            removed.append(name)
        except OSError:
            pass
    return removed


def _write_atomically(path, members):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    remove_stale_temps(path)
    prefix = f".{os.path.basename(path)}.{_host_tag()}-{os.getpid()}-"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fobj:
            numpy.savez(fobj, **members)
            fobj.flush()
            os.fsync(fobj.fileno())
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
class _Reader:
    """One open checkpoint: its header and its arrays, read on demand and each once."""

    def __init__(self, members, header, name):
        self.members, self.header, self.name = members, header, name
        self._arrays = {}

    def array(self, ref):
        if not isinstance(ref, str) or ref == _HEADER:
            raise ValueError(f"bad array reference {ref!r:.40}")
        if ref not in self._arrays:
            self._arrays[ref] = self.members.array(ref)
        return self._arrays[ref]


class _Tensors:
    """Creates each stored tensor once (shared tensors stay shared) on ``backend``."""

    def __init__(self, reader, backend):
        self.reader, self.backend = reader, backend
        self._made = {}

    def get(self, ref, requires_grad, kind="tensor", persistent=True):
        if ref not in self._made:
            from .tensor import Tensor
            from .nn.parameter import Buffer, Parameter
            t = Tensor(_numeric(self.reader.array(ref)), backend=self.backend)
            floating = t.dtype.kind in "fc"
            if kind == "parameter" and floating:
                t = Parameter(t, requires_grad=bool(requires_grad))
            elif kind == "buffer":
                t = Buffer(t, persistent=bool(persistent))
            elif requires_grad and floating:
                t.requires_grad_(True)
            self._made[ref] = t
        return self._made[ref]


def _decode(node, reader, tensors):
    try:
        t = node["t"]
        if t == "v":
            return node["v"]
        if t == "f":
            return float(node["v"])
        if t == "tensor":
            return tensors.get(node["ref"], node.get("requires_grad", False),
                               "parameter" if node.get("parameter", False) else "tensor")
        if t == "ndarray":
            return _numeric(reader.array(node["ref"]))
        if t == "npscalar":
            arr = _numeric(reader.array(node["ref"]))
            if arr.ndim:
                raise ValueError(f"scalar entry {node['ref']} holds an array of shape {arr.shape}")
            return arr[()]
        if t in ("dict", "odict"):
            d = OrderedDict() if t == "odict" else {}
            for k, v in node["items"]:
                d[k] = _decode(v, reader, tensors)
            return d
        if t in ("set", "frozenset"):
            items = [_decode(v, reader, tensors) for v in node["items"]]
            return set(items) if t == "set" else frozenset(items)
        if t == "list":
            return [_decode(v, reader, tensors) for v in node["items"]]
        if t == "tuple":
            return tuple(_decode(v, reader, tensors) for v in node["items"])
    except (KeyError, TypeError, ValueError, RecursionError) as e:
        raise CheckpointError(f"load: malformed checkpoint structure ({type(e).__name__}: {e})") from None
    raise CheckpointError(f"load: unknown entry type {t!r} in checkpoint header")


def _numeric(arr):
    """Only what :func:`save` writes: numeric/bool arrays (no strings, records, datetimes)."""
    if not isinstance(arr, numpy.ndarray) or arr.dtype.kind not in "biufc" or arr.dtype.fields:
        raise ValueError(f"array of dtype {getattr(arr, 'dtype', type(arr).__name__)} is not a "
                         f"numeric array gradflow.save would write")
    return arr


def _persistent_loader(reader, tensors):
    def persistent_load(pid):
        if type(pid) is not tuple or not pid or type(pid[0]) is not str:
            raise _weights_only.Malformed(f"malformed persistent id {pid!r:.60}")
        kind, args = pid[0], pid[1:]
        if kind == "tensor" and len(args) == 4 and type(args[0]) is str and \
                all(type(a) is bool for a in args[1::2]) and args[2] in ("tensor", "parameter", "buffer"):
            return tensors.get(args[0], args[1], args[2], args[3])
        if kind in ("ndarray", "npscalar") and len(args) == 1 and type(args[0]) is str:
            arr = _numeric(reader.array(args[0]))
            if kind == "ndarray":
                return arr
            if arr.ndim:
                raise _weights_only.Malformed(f"scalar entry {args[0]} holds shape {arr.shape}")
            return arr[()]
        if kind == "dtype" and len(args) == 1 and type(args[0]) is str and _DTYPE_STR.fullmatch(args[0]):
            return numpy.dtype(args[0])
        if kind == "backend" and len(args) == 1 and type(args[0]) is str:
            from .backends import get_backend
            return tensors.backend if tensors.backend is not None else get_backend(args[0])
        raise _weights_only.Malformed(f"malformed persistent id {pid!r:.60}")
    return persistent_load


class _TrustingUnpickler(pickle.Unpickler):
    def __init__(self, file, persistent_load):
        super().__init__(file)
        self._pl = persistent_load

    def persistent_load(self, pid):
        return self._pl(pid)


def _unpickle(blob, reader, tensors, weights_only):
    data = memoryview(numpy.ascontiguousarray(_numeric(blob)).view(numpy.uint8).reshape(-1))
    pl = _persistent_loader(reader, tensors)
    if not weights_only:
        return _TrustingUnpickler(io.BytesIO(data), pl).load()
    return _weights_only.load(data, _default_policy(), pl)


def _refused_message(name, e):
    short = e.name.rsplit(".", 1)[-1]
    return (f"load: weights_only=True refused to load {name!r}: {e.what} `{e.name}`. weights_only "
            f"loading builds only tensors, arrays, containers, numbers, strings and gradflow's own "
            f"nn/optim classes. If you trust the file's source, allow it with "
            f"gradflow.serialization.add_safe_globals([{short}]) or within `with "
            f"gradflow.serialization.safe_globals([{short}]):`, or pass weights_only=False (which "
            f"runs whatever code the file names: only for files you trust)")


def _open(f, max_inflated_bytes, fn):
    """Run ``fn(members, header, name)`` on the checkpoint ``f`` (path or file object)."""
    if hasattr(f, "read"):  # a file object, as torch.load
        return _with_fileobj(f, getattr(f, "name", type(f).__name__), max_inflated_bytes, fn)
    path_s = os.fspath(f)
    if os.path.isdir(path_s):
        raise CheckpointError(f"load: {path_s!r} is a directory, not a checkpoint file")
    if not os.path.exists(path_s):
        raise FileNotFoundError(f"load: no such checkpoint file: {path_s!r}")
    if os.path.getsize(path_s) == 0:
        raise CheckpointError(f"load: {path_s!r} is empty (0 bytes); not a gradflow checkpoint")
    with open(path_s, "rb") as fobj:
        return _with_fileobj(fobj, path_s, max_inflated_bytes, fn)


def _with_fileobj(fobj, name, max_inflated_bytes, fn):
    limit = MAX_INFLATED_BYTES if max_inflated_bytes is None else max_inflated_bytes
    try:
        start = fobj.tell()
        magic = fobj.read(6)
        fobj.seek(start)
        if magic == b"\x93NUMPY":
            raise CheckpointError(f"load: {name!r} is a single .npy array, not a gradflow checkpoint")
        with Members(fobj, limit) as members:
            if _HEADER not in members.names():
                raise CheckpointError(f"load: {name!r} is a zip/.npz file but not a gradflow "
                                      f"checkpoint (no {_HEADER} header)")
            header = json.loads(bytes(members.array(_HEADER)).decode("utf-8"))
            _check_header(header, name)
            return fn(members, header, name)
    except CheckpointError:
        raise
    except _weights_only.Refused as e:
        raise WeightsOnlyError(_refused_message(name, e)) from None
    except MemberError as e:
        raise CheckpointError(f"load: {name!r} is refused: {e}") from None
    except Exception as e:  # noqa: BLE001 - zip/npy/json/pickle errors of all kinds mean "corrupt"
        raise CheckpointError(f"load: {name!r} is not a readable gradflow checkpoint (truncated, "
                              f"corrupt or a different format: {type(e).__name__}: {e})") from None


def _check_header(header, name):
    if not isinstance(header, dict) or header.get("format") != FORMAT or "root" not in header:
        raise CheckpointError(f"load: {name!r} has no gradflow checkpoint header")
    version = header.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"load: {name!r} has a malformed header (version {version!r})")
    if version > VERSION:
        raise CheckpointError(f"load: {name!r} is checkpoint format version {version}; this "
                              f"gradflow reads up to version {VERSION}")


def load(f, map_location=None, backend=None, weights_only=True, *, max_inflated_bytes=None,
         mmap=None):
    """Read a checkpoint written by :func:`save`.

    Tensors are created on ``backend`` (or ``map_location``: a backend name, device
    or device string; a callable or dict, as PyTorch allows, keeps the current
    backend), else the current backend. ``weights_only`` (default True; None means
    True) refuses every global outside the allow-list (see the module docstring);
    ``weights_only=False`` runs arbitrary pickled code: only for trusted files.
    ``max_inflated_bytes`` bounds how far deflated members may inflate
    (default :data:`MAX_INFLATED_BYTES`). ``mmap`` is accepted and ignored."""
    from .device import device as _device
    target = backend if backend is not None else map_location
    if callable(target) and not isinstance(target, (str, _device)) or isinstance(target, dict):
        target = None
    be = _device.resolve_backend(target) if target is not None else None
    weights_only = True if weights_only is None else bool(weights_only)

    def read(members, header, name):
        reader = _Reader(members, header, name)
        members.check_inflation([n for n in members.names() if n != _HEADER])
        tensors = _Tensors(reader, be)
        root = header["root"]
        if isinstance(root, dict) and root.get("t") == "pickle":
            if header["version"] < 2:
                raise CheckpointError(f"load: {name!r}: a pickled root needs format version 2")
            try:
                return _unpickle(reader.array(root.get("ref")), reader, tensors, weights_only)
            except _weights_only.Malformed as e:
                raise CheckpointError(f"load: {name!r} holds a malformed pickle ({e})") from None
        return _decode(root, reader, tensors)

    return _open(f, max_inflated_bytes, read)


def load_metadata(f):
    """The ``metadata`` dict stored by ``save(..., metadata=...)``; reads only the
    header member (no array is read or inflated)."""
    return _open(f, None, lambda members, header, name: header.get("metadata", {}))
