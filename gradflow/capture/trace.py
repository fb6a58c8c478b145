"""Recording one call of a captured function as a list of backend kernel calls.

While a :class:`Recorder` is active, every public kernel method of one ``Backend``
instance is shadowed by an instance attribute that runs the real method and logs the
call (outermost calls only: a kernel that calls another kernel is one entry). Arrays
in the arguments are named by where they come from:

* ``("s", k)`` slot ``k``: an input array (the Tensor arguments' arrays, slots
  ``0..n-1``) or the result of an earlier recorded call;
* ``("v", k, offset, shape, strides)``: a view into slot ``k``'s memory taken outside
  the backend (``a.array.T``, ``.reshape`` on the array): rebuilt from the replayed slot;
* ``("e", j)``: an array from outside the call (a parameter, its momentum buffer, a
  cached constant), kept by reference -- in-place kernels on it work as in eager.

Everything else in the arguments (numbers, shapes, dtypes, op names, slices) is a
constant. Two recordings of the same function are compared with :func:`same_program`:
a constant, a kernel or an external that differs between them means the call cannot be
replayed from one recording, and :class:`CaptureError` says which argument changed.

Host reads (``backend.to_numpy``, so ``Tensor.item/tolist/numpy/float/bool/int``) raise
:class:`CaptureError` during a recording: their value would steer Python code that a
replay does not run.
"""
from __future__ import annotations

import os
import traceback

from ..autograd import engine as _engine

__all__ = ["CaptureError", "Recorder", "same_program", "PASSTHROUGH", "RANDOM_KERNELS"]

_ENGINE_ADD = _engine._add  # the engine's own accumulation (see _add_by_kernel)


_MISSING = object()


class CaptureError(RuntimeError):
    """A captured function does something a replay cannot reproduce. ``eager_result``:
    where the call that found out ran eagerly to the end, its result."""
    eager_result = _MISSING


#: Backend methods that are metadata, context or bookkeeping: called through unrecorded.
PASSTHROUGH = frozenset({
    "info", "is_available", "unavailable_reason", "strides", "is_contiguous", "data_ptr",
    "storage_offset", "errstate", "synchronize", "memory_info", "empty_cache",
    "compile_all", "compile_stats", "add_compile_listener", "remove_compile_listener",
    "view_into", "owner", "rng_state", "set_rng_state",
})
#: kernels that draw random numbers: a replay calls them again (fresh numbers each step)
RANDOM_KERNELS = frozenset({"rand", "randn", "randint", "permutation", "seed"})

_HERE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_PKG = os.path.dirname(_HERE.rstrip(os.sep)) + os.sep
_HOST_READS = ("item", "tolist", "numpy", "__float__", "__int__", "__bool__", "__index__",
               "__array__", "__format__", "__repr__", "__str__")


def _host_read_name():
    """What asked for the host read: the Tensor method (``item``, ``__bool__``...), and
    the gradflow function that called it when that is not the user's code."""
    stack = traceback.extract_stack()[:-2]
    i = len(stack) - 1  # the innermost frame is the to_numpy caller
    found = None
    while i >= 0 and stack[i].name in _HOST_READS and stack[i].filename.endswith(
            ("tensor.py", "printing.py")):
        found, i = stack[i], i - 1  # the outermost of item() <- __bool__() <- ...
    what = _method_words(found.name) if found else "backend.to_numpy()"
    caller = stack[i] if i >= 0 else None
    if caller is not None and caller.filename.startswith(_PKG) \
            and not caller.filename.startswith(_HERE):
        what += (f" in gradflow's {caller.name}() (an op whose result depends on the "
                 f"values, such as nonzero, masked_select or unique, cannot be captured)")
    return what


def _method_words(name):
    return {"__float__": "float(tensor)", "__int__": "int(tensor)",
            "__bool__": "bool(tensor) (an `if`/`while` on a tensor value)",
            "__index__": "using a tensor as an index", "__array__": "numpy.asarray(tensor)",
            "__format__": "formatting a tensor", "__repr__": "printing a tensor",
            "__str__": "printing a tensor"}.get(name, f"Tensor.{name}()")


class Recorder:
    """Log the kernel calls one backend makes while active (``with Recorder(be, inputs):``).

    ``inputs``: the input arrays, in order (they become slots ``0..n-1``).
    After the block: ``calls`` is a list of ``(name, args_spec, kwargs_spec, out_spec)``,
    ``values[k]`` the array of slot ``k`` (this recording's), ``externals[j]`` the
    external arrays, ``random`` whether a random kernel ran."""

    def __init__(self, backend, inputs, strict=True):
        self.backend = backend
        self.array_type = backend.xp.ndarray
        self.scalar_type = getattr(backend.xp, "generic", None) or _numpy_generic()
        self.calls = []
        self.values = []
        self.externals = []
        self._slot = {}   # id(array) -> slot
        self._owner = {}  # id(memory owner) -> slot whose memory it is
        self._ext = {}    # id(array) -> external index
        self._ext_owners = set()
        self.random = False
        self._depth = 0
        self._saved = {}
        self.n_inputs = len(inputs)
        #: strict: refuse at once (raise); otherwise note the first refusal here and let the
        #: call run on eagerly (it is then not replayable)
        self.strict = strict
        self.failure = None
        for a in inputs:
            self._new_slot(a)

    # -- interception ------------------------------------------------------------------------
    def __enter__(self):
        be = self.backend
        for name in kernel_names(be):
            if name in be.__dict__:
                self._saved[name] = be.__dict__[name]
            setattr(be, name, self._wrap(name, getattr(be, name)))
        setattr(be, "to_numpy", self._refuse_host_read)
        self._engine_add = _engine.__dict__["_add"]
        _engine._add = _add_by_kernel
        return self

    def __exit__(self, *exc):
        be = self.backend
        _engine._add = self._engine_add
        for name in list(kernel_names(be)) + ["to_numpy"]:
            be.__dict__.pop(name, None)
        be.__dict__.update(self._saved)
        return False

    def _refuse_host_read(self, a):
        if self._depth:  # a kernel reading its own argument back: part of the kernel
            return type(self.backend).to_numpy(self.backend, a)
        what = _host_read_name()
        self._refuse(CaptureError(
            f"gradflow.compile: {what} inside a captured function copies a value to the host "
            f"while the step is being captured; a replay runs only the backend kernels, so the "
            f"Python code that uses that value would not run again. Return the tensor from the "
            f"function and call .item() (or print it) outside, or run this function uncompiled"))
        return type(self.backend).to_numpy(self.backend, a)

    def _refuse(self, err):
        if self.strict:
            raise err
        if self.failure is None:
            self.failure = err

    def _wrap(self, name, fn):
        def recorded(*args, **kwargs):
            if self._depth:
                return fn(*args, **kwargs)
            if name == "getitem" and len(args) > 1 and self._has_bool_array(args[1]):
                self._refuse(CaptureError(
                    "gradflow.compile: indexing with a boolean mask (masked_select, x[mask]) "
                    "inside a captured function: the result's size depends on the values, and a "
                    "replay runs every later kernel with the sizes of the recording. Use "
                    "gradflow.where(mask, x, 0) (a fixed size), or do not compile this function"))
            spec_a = self._encode(args)
            spec_k = self._encode(kwargs) if kwargs else None
            self._depth += 1
            try:
                out = fn(*args, **kwargs)
            finally:
                self._depth -= 1
            out, spec_o = self._outputs(out)
            if name in RANDOM_KERNELS:
                self.random = True
            self.calls.append((name, spec_a, spec_k, spec_o))
            return out
        recorded.__name__ = name
        return recorded

    def _has_bool_array(self, index):
        items = index if isinstance(index, tuple) else (index,)
        return any(isinstance(i, self.array_type) and i.dtype.kind == "b" for i in items)

    # -- naming arrays -----------------------------------------------------------------------
    def _new_slot(self, a):
        k = len(self.values)
        self.values.append(a)
        self._slot[id(a)] = k
        o = self.backend.owner(a)
        if id(o) not in self._ext_owners:  # a view of a parameter stays one of the parameter
            self._owner.setdefault(id(o), k)
        return k

    def _ref(self, a):
        k = self._slot.get(id(a))
        if k is not None:
            return ("s", k)
        j = self._ext.get(id(a))
        if j is not None:
            return ("e", j)
        be = self.backend
        k = self._owner.get(id(be.owner(a)))
        if k is not None:  # a view of a slot's memory, taken outside the kernels
            off = be.data_ptr(a) - be.data_ptr(self.values[k])
            return ("v", k, off, tuple(a.shape), tuple(a.strides), a.dtype)
        j = self._ext[id(a)] = len(self.externals)
        self.externals.append(a)
        self._ext_owners.add(id(be.owner(a)))
        return ("e", j)

    def _encode(self, x):
        if isinstance(x, self.array_type):
            return self._ref(x)
        if isinstance(x, tuple):
            return ("t", tuple(self._encode(v) for v in x))
        if isinstance(x, list):
            return ("l", tuple(self._encode(v) for v in x))
        if isinstance(x, dict):
            return ("d", tuple((k, self._encode(v)) for k, v in x.items()))
        return ("c", x)

    def _outputs(self, out):
        """(what the caller gets, its spec): arrays become new slots; a NumPy scalar from a
        reduction becomes a 0-d array first (a slot, so later kernels can name it)."""
        if isinstance(out, self.array_type):
            return out, ("s", self._new_slot(out))
        if isinstance(out, self.scalar_type):
            out = type(self.backend).asarray(self.backend, out)
            return out, ("S", self._new_slot(out))
        if isinstance(out, tuple) and any(isinstance(v, (self.array_type, tuple)) for v in out):
            pairs = [self._outputs(v) for v in out]
            return tuple(p[0] for p in pairs), ("t", tuple(p[1] for p in pairs))
        return out, ("c", out)  # None (in-place kernels) or a host value


def _add_by_kernel(a, b, create_graph):
    """The engine's gradient accumulation (``engine._add``) with the sum as a backend
    kernel: the engine adds two gradients with NumPy's ``+`` on the arrays, which a
    recording cannot see. Installed only while recording; the same result."""
    if create_graph or type(a) is _engine.MultiGrad:
        return _ENGINE_ADD(a, b, create_graph)
    return type(a)._make(a.backend.binary("add", a.array, b.array), a.backend)


def _numpy_generic():
    import numpy  # host-side type check only
    return numpy.generic


def kernel_names(be):
    """The public methods of ``be`` a recording shadows (all but :data:`PASSTHROUGH`)."""
    cls = type(be)
    names = getattr(cls, "_capture_kernel_names", None)
    if names is None or names[0] is not cls:
        found = []
        for name in dir(cls):
            if name.startswith("_") or name in PASSTHROUGH or name == "to_numpy":
                continue
            attr = None
            for klass in cls.__mro__:
                if name in klass.__dict__:
                    attr = klass.__dict__[name]
                    break
            if isinstance(attr, (property, classmethod)) or not callable(attr):
                continue
            found.append(name)
        names = (cls, tuple(found))
        cls._capture_kernel_names = names
    return names[1]


def slots_used(spec, acc):
    """Add the slots ``spec`` reads to ``acc`` (a set); returns it."""
    kind = spec[0]
    if kind in ("s", "S", "v"):
        acc.add(spec[1])
    elif kind in ("t", "l"):
        for v in spec[1]:
            slots_used(v, acc)
    elif kind == "d":
        for _, v in spec[1]:
            slots_used(v, acc)
    return acc


def live_calls(rec, wanted):
    """Indices of the calls a replay must run: those with side effects (in-place kernels,
    named ``..._``, or given ``out=``; random draws) and those whose results a live call or ``wanted``
    reads. The rest only fed Python (an input check's ``bool(...)``) and are dropped."""
    need = set()
    for w in wanted:
        slots_used(w, need)
    live = set()
    for i in range(len(rec.calls) - 1, -1, -1):
        name, sa, sk, so = rec.calls[i]
        writes = (sk is not None and any(k == "out" and v != ("c", None) for k, v in sk[1])) \
            or (name == "binary" and len(sa[1]) > 3 and sa[1][3] != ("c", None))  # out positional
        if name.endswith("_") or name in RANDOM_KERNELS or writes or slots_used(so, set()) & need:
            live.add(i)
            slots_used(sa, need)
            if sk:
                slots_used(sk, need)
    return live


# -- comparing two recordings -------------------------------------------------------------------
def _describe(spec):
    kind = spec[0]
    if kind == "c":
        return repr(spec[1])
    if kind in ("s", "S"):
        return f"an array computed in the step (slot {spec[1]})"
    if kind == "v":
        return f"a view of slot {spec[1]}"
    if kind == "e":
        return "an array from outside the step"
    return f"a {dict(t='tuple', l='list', d='dict').get(kind, kind)}"


def _diff(a, b, ext_a, ext_b):
    """None if specs ``a`` and ``b`` are the same program argument, else (a, b) described."""
    if a[0] != b[0]:
        return _describe(a), _describe(b)
    kind = a[0]
    if kind == "c":
        same = type(a[1]) is type(b[1]) and _const_equal(a[1], b[1])
        return None if same else (_describe(a), _describe(b))
    if kind == "e":
        if ext_a is _ANY or ext_a[a[1]] is ext_b[b[1]]:
            return None
        x, y = ext_a[a[1]], ext_b[b[1]]
        if (getattr(x, "shape", 1) == getattr(y, "shape", 2) and x.dtype == y.dtype
                and x.base is not None and x.base is y.base and x.strides == y.strides):
            return None  # the same view of the same external memory, re-made each call
        return ("an array created outside the backend kernels (a NumPy operator on .array, "
                "a new array each call, or a .grad left by the previous call: gradients "
                "accumulated across calls need zero_grad() inside the compiled step)",
                "a different array in the next call")
    if kind in ("t", "l", "d"):
        if len(a[1]) != len(b[1]):
            return f"{len(a[1])} items", f"{len(b[1])} items"
        for u, v in zip(a[1], b[1]):
            if kind == "d":
                if u[0] != v[0]:
                    return f"key {u[0]!r}", f"key {v[0]!r}"
                u, v = u[1], v[1]
            d = _diff(u, v, ext_a, ext_b)
            if d:
                return d
        return None
    return None if a == b else (_describe(a), _describe(b))


_ANY = object()  # externals of a dropped call: any array will do


def _const_equal(x, y):
    if x is y:
        return True
    if isinstance(x, float) and x != x:
        return isinstance(y, float) and y != y  # NaN: the same constant
    if isinstance(x, tuple) and isinstance(y, tuple):
        return len(x) == len(y) and all(type(u) is type(v) and _const_equal(u, v)
                                        for u, v in zip(x, y))
    try:
        eq = x == y
        return bool(eq) if not hasattr(eq, "all") else bool(eq.all())
    except Exception:  # noqa: BLE001 -- incomparable constants count as changed
        return False


def same_program(r1, r2, live=None):
    """Raise :class:`CaptureError` naming the first difference between recordings
    ``r1`` and ``r2`` (kernel sequence, constants, external arrays). Calls not in
    ``live`` (indices; None: all) may differ in their arrays (a replay drops them)."""
    c1, c2 = r1.calls, r2.calls
    for i, (x, y) in enumerate(zip(c1, c2)):
        ext1, ext2 = (r1.externals, r2.externals) if live is None or i in live else (_ANY, _ANY)
        if x[0] != y[0]:
            raise CaptureError(
                f"gradflow.compile: the captured function ran different kernels in two calls "
                f"(kernel #{i}: backend.{x[0]} then backend.{y[0]}): Python control flow that "
                f"depends on values, call counts or state changes the step, so one recording "
                f"cannot stand for every call. Keep the step's code path fixed, or do not compile it")
        for part, sa, sb in (("argument", x[1], y[1]), ("keyword", x[2], y[2]),
                             ("result", x[3], y[3])):
            if sa is None and sb is None:
                continue
            if (sa is None) != (sb is None):
                raise CaptureError(f"gradflow.compile: backend.{x[0]} (kernel #{i}) got keyword "
                                   f"arguments in one call and none in the next")
            if part == "result" and sa[0] == "c" and sb[0] == "c":
                if not _const_equal(sa[1], sb[1]):
                    raise CaptureError(
                        f"gradflow.compile: backend.{x[0]} (kernel #{i}) returned host value "
                        f"{sa[1]!r} in one call and {sb[1]!r} in the next; the captured function "
                        f"depends on it, so it cannot be replayed")
                continue
            items = sa[1] if sa[0] == "t" and part != "result" else None
            if items is not None and sb[0] == "t" and len(items) == len(sb[1]):
                for pos, (u, v) in enumerate(zip(items, sb[1])):
                    d = _diff(u, v, ext1, ext2)
                    if d:
                        _changed(x[0], i, f"argument {pos}", d)
                continue
            d = _diff(sa, sb, ext1, ext2)
            if d:
                _changed(x[0], i, part, d)
    if len(c1) != len(c2):
        longer = c1 if len(c1) > len(c2) else c2
        raise CaptureError(
            f"gradflow.compile: the captured function ran {len(c1)} kernels in one call and "
            f"{len(c2)} in the next (first extra: backend.{longer[min(len(c1), len(c2))][0]}); "
            f"its code path depends on values or state, so it cannot be replayed")


def _changed(kernel, i, where, d):
    raise CaptureError(
        f"gradflow.compile: backend.{kernel} (kernel #{i}) got {d[0]} as {where} in one call "
        f"and {d[1]} in the next. A replay would freeze the first value. Typical causes: a Python "
        f"number that changes every step (Adam's step count / bias correction, a learning-rate "
        f"schedule inside the step), or an array computed with a NumPy operator instead of a "
        f"backend kernel. Keep such values fixed inside the compiled function, or do not compile it")
