"""The ``weights_only=True`` unpickler: a pickle interpreter that can only build data.

Python's :class:`pickle.Unpickler` imports any module a file names, calls any
callable it names (``REDUCE``) and calls the ``__setstate__`` of whatever it built
(``BUILD``): that is how a crafted file runs code. This interpreter reads the
opcodes itself (pickle protocols 2 to 5, as :func:`gradflow.save` writes 4) and
gives each step a fixed, narrow meaning:

* ``GLOBAL``/``STACK_GLOBAL`` look ``module.qualname`` up in the :class:`Policy`'s
  tables; nothing is ever imported. A name on no table raises :class:`Refused`.
* ``REDUCE`` (a call) is allowed for a few builtin data constructors
  (``OrderedDict``, ``set``, ``frozenset``, ``complex``, ``slice``, ``range``,
  ``bytearray``, given builtin arguments only) and for what the user allowed
  (``trusted``: the user vouches for it, so it gets ordinary pickle semantics).
* ``NEWOBJ`` makes an instance of an allow-listed gradflow class with
  ``object.__new__`` (or ``tuple.__new__`` for tuple types such as ``Size``); no
  ``__init__`` runs. ``BUILD`` then fills its ``__dict__`` from a dict with string
  keys of values already loaded; no ``__setstate__``/``__setattr__`` runs.
* ``APPEND``/``SETITEM``/``ADDITEMS`` work on builtin lists, dicts, OrderedDicts
  and sets (and trusted types); keys and set items must be plain hashable values
  -- str, int, float, complex, bool, None, bytes, tensors, tuples of those a few
  levels deep -- so hashing them runs no code either and cannot recurse deeply.
* ``BINPERSID`` hands the (checked) id to ``persistent_load``: how tensors are
  stored (as arrays beside the pickle, never as pickled bytes).

Everything else (``INST``/``OBJ``, extension codes, out-of-band buffers,
protocol-0 text opcodes) is refused. The interpreter is a loop over a stack, so a
deeply nested object cannot exhaust the C stack while loading, and every length
is checked against the bytes that remain before anything is sliced.
"""
from __future__ import annotations

import collections
import pickle
import struct

__all__ = ["Policy", "Refused", "Malformed", "load"]

_KEY_DEPTH = 8  # tuples as dict keys / set items: at most this deep


class Malformed(ValueError):
    """The bytes are not a well-formed pickle of the kind gradflow writes."""


class Refused(Exception):
    """The pickle names a global (or asks for a step) that the policy does not allow.
    ``name`` is the ``module.qualname`` involved, ``what`` says what was asked."""

    def __init__(self, name, what):
        super().__init__(f"{what}: {name}")
        self.name, self.what = name, what


def qualified_name(obj):
    """``module.qualname`` as pickle writes it for a class or function."""
    return f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', None)}"


_SCALARS = (str, int, float, complex, bool, type(None), bytes)
_BUILTIN_ARGS = _SCALARS + (tuple, list, dict, collections.OrderedDict, bytearray)


def _numbers(*allowed):
    def check(args, policy):
        return 1 <= len(args) <= 3 and all(type(a) in allowed for a in args)
    return check


def _one_iterable(check_items):
    def check(args, policy):
        if not args:
            return True
        if len(args) != 1 or type(args[0]) not in (list, tuple):
            return False
        for item in args[0]:
            check_items(item, policy)
        return True
    return check


def _pair(item, policy):
    if type(item) not in (list, tuple) or len(item) != 2:
        raise Malformed("OrderedDict built from something other than (key, value) pairs")
    _check_key(item[0], policy)


class _Reducible:
    """The builtin constructors ``REDUCE`` may call, each with a check of its arguments:
    builtin data only, set items and keys checked as dict keys are, and no sizes
    (``bytearray(10**12)`` would be a memory bomb)."""

    checks = {collections.OrderedDict: _one_iterable(_pair),
              set: _one_iterable(lambda item, policy: _check_key(item, policy)),
              frozenset: _one_iterable(lambda item, policy: _check_key(item, policy)),
              complex: _numbers(int, float, bool), slice: _numbers(int, bool, type(None)),
              range: _numbers(int, bool),
              bytearray: lambda args, policy: not args or (len(args) == 1 and type(args[0]) is bytes)}
    table = {qualified_name(f): f for f in checks}


class Policy:
    """What a load may build.

    ``classes``: name -> class, instantiated with ``object.__new__``/``tuple.__new__``
    and filled by dict update (gradflow's own nn/optim classes).
    ``values``: name -> object that may be referenced but not called (functions such
    as ``gradflow.nn.functional.relu`` that a module keeps as an attribute).
    ``trusted``: name -> object the user allowed; called, instantiated and
    ``__setstate__``-ed as pickle would.
    ``key_types``: extra types (tensors) that may be dict keys / set items."""

    def __init__(self, classes=None, values=None, trusted=None, key_types=()):
        self.classes = dict(classes or {})
        self.values = dict(values or {})
        self.trusted = dict(trusted or {})
        self.key_types = tuple(key_types)
        self._class_set = set(self.classes.values())
        self._trusted_ids = {id(v) for v in self.trusted.values()}

    def resolve(self, module, name):
        full = f"{module}.{name}"
        for table in (self.trusted, self.classes, self.values, _Reducible.table):
            if full in table:
                return table[full]
        raise Refused(full, "unsupported global")

    def is_trusted(self, obj):
        return id(obj) in self._trusted_ids

    def is_safe_class(self, cls):
        return cls in self._class_set


def _check_key(obj, policy, depth=0):
    t = type(obj)
    if t in _SCALARS or isinstance(obj, policy.key_types) or policy.is_trusted(t):
        return
    if t in (tuple, frozenset) and depth < _KEY_DEPTH:
        for item in obj:
            _check_key(item, policy, depth + 1)
        return
    what = "a key or set item nested too deeply" if t in (tuple, frozenset) else \
        f"a dict key or set item of type {qualified_name(t)}"
    raise Refused(qualified_name(t), f"unsupported {what}")


class _Machine:
    def __init__(self, data, policy, persistent_load):
        self.data = memoryview(data)
        self.pos = 0
        self.policy = policy
        self.persistent_load = persistent_load
        self.stack = []
        self.marks = []
        self.memo = {}

    # -- reading the byte stream -------------------------------------------------------------------
    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise Malformed(f"pickle data truncated (needs {n} bytes at offset {self.pos}, "
                            f"{len(self.data) - self.pos} left)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def uint(self, n):
        return int.from_bytes(self.take(n), "little")

    def line(self):
        end = bytes(self.data[self.pos:self.pos + 512]).find(b"\n")
        if end < 0:
            raise Malformed("unterminated GLOBAL name")
        text = bytes(self.take(end + 1))[:-1]
        return text.decode("utf-8")

    # -- the stack --------------------------------------------------------------------------------
    def pop(self):
        if not self.stack or (self.marks and len(self.stack) == self.marks[-1]):
            raise Malformed("pickle stack underflow")
        return self.stack.pop()

    def pop_mark(self):
        if not self.marks:
            raise Malformed("pickle opcode expects a MARK that is not there")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def top(self):
        if not self.stack or (self.marks and len(self.stack) == self.marks[-1]):
            raise Malformed("pickle stack underflow")
        return self.stack[-1]

    # -- building ---------------------------------------------------------------------------------
    def call(self, func, args):
        name = qualified_name(func)
        if self.policy.is_trusted(func):
            if type(args) is not tuple:
                raise Malformed(f"REDUCE of {name}: arguments are not a tuple")
            return func(*args)
        check = _Reducible.checks.get(func) if isinstance(func, type) else None
        if check is not None:
            if type(args) is not tuple:
                raise Malformed(f"REDUCE of {name}: arguments are {type(args).__name__}, not a tuple")
            if not check(args, self.policy):
                kinds = ", ".join(qualified_name(type(a)) for a in args)
                raise Refused(name, f"calling it with arguments of type ({kinds})")
            return func(*args)
        raise Refused(name, "calling a global that may only be referenced, not called")

    def new_object(self, cls, args, kwargs):
        name = qualified_name(cls)
        if not isinstance(cls, type):
            raise Malformed(f"NEWOBJ of {name}, which is not a class")
        if type(args) is not tuple or type(kwargs) is not dict:
            raise Malformed(f"NEWOBJ of {name}: malformed arguments")
        if self.policy.is_trusted(cls):
            return cls.__new__(cls, *args, **kwargs)
        if not self.policy.is_safe_class(cls):
            raise Refused(name, "instantiating a global that is not an allowed class")
        if kwargs:
            raise Refused(name, "instantiating it with keyword arguments")
        if cls.__new__ is tuple.__new__ and len(args) == 1 and type(args[0]) in (tuple, list):
            for item in args[0]:
                if type(item) not in _BUILTIN_ARGS:
                    raise Refused(name, f"building it from an item of type {qualified_name(type(item))}")
            return tuple.__new__(cls, args[0])
        if cls.__new__ is object.__new__ and not args:
            return object.__new__(cls)
        raise Refused(name, "instantiating it with constructor arguments")

    def build(self, inst, state):
        cls = type(inst)
        if self.policy.is_trusted(cls):
            setstate = getattr(inst, "__setstate__", None)
            if setstate is not None:
                setstate(state)
                return
            slots = None
            if isinstance(state, tuple) and len(state) == 2:
                state, slots = state
            if state:
                inst.__dict__.update(state)
            for k, v in (slots or {}).items():
                setattr(inst, k, v)
            return
        if not self.policy.is_safe_class(cls):
            raise Refused(qualified_name(cls), "setting the state of an object of this type")
        if type(state) is not dict or not all(type(k) is str for k in state):
            raise Refused(qualified_name(cls), "setting its state from anything but a dict with "
                                               "string keys")
        object.__getattribute__(inst, "__dict__").update(state)

    def set_items(self, target, pairs):
        if type(target) not in (dict, collections.OrderedDict) and not self.policy.is_trusted(type(target)):
            raise Refused(qualified_name(type(target)), "setting items on an object of this type")
        for k, _ in pairs:
            _check_key(k, self.policy)
        for k, v in pairs:
            target[k] = v

    def append(self, target, items):
        if type(target) is list:
            target.extend(items)
        elif self.policy.is_trusted(type(target)):
            extend = getattr(target, "extend", None)
            if extend is not None:
                extend(items)
            else:
                for item in items:
                    target.append(item)
        else:
            raise Refused(qualified_name(type(target)), "appending to an object of this type")

    def add_items(self, target, items):
        if type(target) is not set:
            raise Refused(qualified_name(type(target)), "adding set items to an object of this type")
        for item in items:
            _check_key(item, self.policy)
        target.update(items)

    def frozen(self, items):
        for item in items:
            _check_key(item, self.policy)
        return frozenset(items)

    # -- the loop ---------------------------------------------------------------------------------
    def run(self):
        ops = _OPS
        n = len(self.data)
        while self.pos < n:
            code = self.data[self.pos]
            self.pos += 1
            handler = ops.get(code)
            if handler is None:
                name = _NAMES.get(code, f"0x{code:02x}")
                raise Malformed(f"pickle opcode {name} at offset {self.pos - 1} is not supported "
                                f"by weights_only loading")
            if handler is _stop:
                if len(self.stack) != 1 or self.marks:
                    raise Malformed("pickle STOP with a malformed stack")
                return self.stack.pop()
            handler(self)
        raise Malformed("pickle data ends without STOP")


def _proto(m):
    v = m.uint(1)
    if not 2 <= v <= 5:
        raise Malformed(f"pickle protocol {v} (weights_only loading reads protocols 2-5)")


def _frame(m):
    m.take(8)


def _push(value):
    return lambda m: m.stack.append(value)


def _int_le(nbytes, signed):
    return lambda m: m.stack.append(int.from_bytes(m.take(nbytes), "little", signed=signed))


def _long(lenbytes):
    def op(m):
        n = m.uint(lenbytes)
        m.stack.append(int.from_bytes(m.take(n), "little", signed=True))
    return op


def _binfloat(m):
    m.stack.append(struct.unpack(">d", m.take(8))[0])


def _text(lenbytes):
    def op(m):
        m.stack.append(str(m.take(m.uint(lenbytes)), "utf-8", "surrogatepass"))
    return op


def _bytes(lenbytes, kind=bytes):
    return lambda m: m.stack.append(kind(m.take(m.uint(lenbytes))))


def _mark(m):
    m.marks.append(len(m.stack))


def _tuple_n(k):
    def op(m):
        if k == 0:
            m.stack.append(())
            return
        items = [m.pop() for _ in range(k)][::-1]
        m.stack.append(tuple(items))
    return op


def _tuple(m):
    m.stack.append(tuple(m.pop_mark()))


def _list(m):
    m.stack.append(m.pop_mark())


def _dict(m):
    items = m.pop_mark()
    if len(items) % 2:
        raise Malformed("DICT with an odd number of items")
    d = {}
    m.set_items(d, list(zip(items[::2], items[1::2])))
    m.stack.append(d)


def _empty(kind):
    return lambda m: m.stack.append(kind())


def _append(m):
    value = m.pop()
    m.append(m.top(), [value])


def _appends(m):
    items = m.pop_mark()
    m.append(m.top(), items)


def _setitem(m):
    value = m.pop()
    key = m.pop()
    m.set_items(m.top(), [(key, value)])


def _setitems(m):
    items = m.pop_mark()
    if len(items) % 2:
        raise Malformed("SETITEMS with an odd number of items")
    m.set_items(m.top(), list(zip(items[::2], items[1::2])))


def _additems(m):
    items = m.pop_mark()
    m.add_items(m.top(), items)


def _frozenset(m):
    m.stack.append(m.frozen(m.pop_mark()))


def _pop(m):
    m.pop()


def _pop_mark(m):
    m.pop_mark()


def _dup(m):
    m.stack.append(m.top())


def _put(lenbytes):
    def op(m):
        m.memo[m.uint(lenbytes)] = m.top()
    return op


def _memoize(m):
    m.memo[len(m.memo)] = m.top()


def _get(lenbytes):
    def op(m):
        idx = m.uint(lenbytes)
        if idx not in m.memo:
            raise Malformed(f"pickle memo entry {idx} is referenced before it is set")
        m.stack.append(m.memo[idx])
    return op


def _global(m):
    module = m.line()
    name = m.line()
    m.stack.append(m.policy.resolve(module, name))


def _stack_global(m):
    name = m.pop()
    module = m.pop()
    if type(module) is not str or type(name) is not str:
        raise Malformed("STACK_GLOBAL with non-string names")
    m.stack.append(m.policy.resolve(module, name))


def _reduce(m):
    args = m.pop()
    func = m.pop()
    m.stack.append(m.call(func, args))


def _newobj(m):
    args = m.pop()
    cls = m.pop()
    m.stack.append(m.new_object(cls, args, {}))


def _newobj_ex(m):
    kwargs = m.pop()
    args = m.pop()
    cls = m.pop()
    m.stack.append(m.new_object(cls, args, kwargs))


def _build(m):
    state = m.pop()
    m.build(m.top(), state)


def _binpersid(m):
    pid = m.pop()
    m.stack.append(m.persistent_load(pid))


def _stop(m):  # handled in the loop
    raise AssertionError


_P = pickle
_OPS = {op[0]: fn for op, fn in [
    (_P.PROTO, _proto), (_P.FRAME, _frame), (_P.STOP, _stop),
    (_P.NONE, _push(None)), (_P.NEWTRUE, _push(True)), (_P.NEWFALSE, _push(False)),
    (_P.BININT, _int_le(4, True)), (_P.BININT1, _int_le(1, False)), (_P.BININT2, _int_le(2, False)),
    (_P.LONG1, _long(1)), (_P.LONG4, _long(4)), (_P.BINFLOAT, _binfloat),
    (_P.SHORT_BINUNICODE, _text(1)), (_P.BINUNICODE, _text(4)), (_P.BINUNICODE8, _text(8)),
    (_P.SHORT_BINBYTES, _bytes(1)), (_P.BINBYTES, _bytes(4)), (_P.BINBYTES8, _bytes(8)),
    (_P.BYTEARRAY8, _bytes(8, bytearray)),
    (_P.MARK, _mark), (_P.EMPTY_TUPLE, _tuple_n(0)), (_P.TUPLE1, _tuple_n(1)),
    (_P.TUPLE2, _tuple_n(2)), (_P.TUPLE3, _tuple_n(3)), (_P.TUPLE, _tuple),
    (_P.EMPTY_LIST, _empty(list)), (_P.LIST, _list), (_P.APPEND, _append), (_P.APPENDS, _appends),
    (_P.EMPTY_DICT, _empty(dict)), (_P.DICT, _dict), (_P.SETITEM, _setitem), (_P.SETITEMS, _setitems),
    (_P.EMPTY_SET, _empty(set)), (_P.ADDITEMS, _additems), (_P.FROZENSET, _frozenset),
    (_P.POP, _pop), (_P.POP_MARK, _pop_mark), (_P.DUP, _dup),
    (_P.BINPUT, _put(1)), (_P.LONG_BINPUT, _put(4)), (_P.MEMOIZE, _memoize),
    (_P.BINGET, _get(1)), (_P.LONG_BINGET, _get(4)),
    (_P.GLOBAL, _global), (_P.STACK_GLOBAL, _stack_global), (_P.REDUCE, _reduce),
    (_P.NEWOBJ, _newobj), (_P.NEWOBJ_EX, _newobj_ex), (_P.BUILD, _build), (_P.BINPERSID, _binpersid),
]}
_NAMES = {getattr(_P, n)[0]: n for n in dir(_P)
          if n.isupper() and isinstance(getattr(_P, n), bytes) and len(getattr(_P, n)) == 1}


def load(data, policy, persistent_load):
    """Interpret the pickle ``data`` (bytes-like) under ``policy``. Raises
    :class:`Refused` for what the policy does not allow and :class:`Malformed` for
    broken data; other exceptions (from trusted callables) propagate."""
    return _Machine(data, policy, persistent_load).run()
