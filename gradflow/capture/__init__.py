"""``gradflow.compile``: capture a whole training step once, replay it as kernel calls.

Decorate (or wrap) a function that runs one step -- forward, loss, ``backward()``,
``optimizer.step()``, ``zero_grad()`` -- and returns the loss::

    @gradflow.compile
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

Rules (as tinygrad's ``TinyJit`` and CUDA graphs):

* Per *signature* -- the Tensor arguments' shapes, dtypes, strides and backend, the other
  arguments' values, the grad mode, the default dtype, the ``training`` flags of the
  modules and the hyper-parameters (``lr``, ``momentum`` ...) of the optimizers the
  function uses (found in its arguments, closure, default arguments, globals and
  ``self``), the modules' other plain settings (dropout's ``p``, batch norm's
  ``momentum``), and the plain numbers and strings the function reads from its closure
  and globals -- call 1 runs
  eagerly (it creates ``.grad`` buffers and optimizer state), calls 2 and 3 run eagerly
  *and* are recorded at the Backend-method level, and the two recordings must agree:
  the same kernels with the same constant arguments on the same external arrays
  (parameters, momentum buffers). Call 4 replays the recording once and checks it
  against an eager run of the same call from the same state (``validate=True``); from
  call 5 on every call is a replay: the new input arrays go through the recorded kernel
  list, parameters and optimizer buffers are updated in place as eager does, ``p.grad``
  and the returned tensors get the replayed arrays. A new signature (the last, smaller
  batch; ``lr`` changed by a scheduler; ``model.eval()``) starts its own three calls; up
  to ``max_signatures`` are kept.
* Record from one thread: while a call is recorded, the backend's kernel methods are
  shadowed on the shared backend instance, so another thread's kernels would be logged.
* What raises :class:`CaptureError` instead of replaying wrongly: reading a value back
  to the host inside the function (``.item()``, ``.tolist()``, ``.numpy()``,
  ``float()``, ``if tensor:``); kernel sequences or constant arguments that change
  between calls (value-dependent control flow, a number computed in Python from state,
  such as amsgrad's bias correction); arrays computed outside the backend kernels (a NumPy
  operator on ``.array``) that feed a kernel; a first replay that does not reproduce
  the eager result.
* Adam's and AdamW's step count is the one changing number a replay follows: it reaches
  ``adam_step_`` as ``state["step"]``, which the replay counts up and reads when it runs
  (on CuPy such a step replays as kernels, not as a CUDA graph, which would freeze it).
* Random kernels (dropout's mask, ``randn``) are recorded as calls: each replay draws
  fresh numbers from the backend's generator, as eager would.
* What a replay does not do: run the function's Python code. Python side effects
  (appending to a list, printing, counters) happen only in the first calls. Returned
  tensors carry no graph. Tensors the function leaves behind other than its return
  value, the parameters and their ``.grad``, module buffers and optimizer state keep
  the values of the recording.

``gradflow.compile(module)`` returns the module unchanged: a module's forward alone
feeds a graph that ``loss.backward()`` outside needs, which a replay does not build;
compile the training step instead.
"""
from __future__ import annotations

import functools
import time
import types
from collections import OrderedDict

from .. import dtypes
from ..autograd import is_grad_enabled
from ..backends import current_backend
from ..nn import Module
from ..optim import Optimizer
from ..tensor import Tensor
from .replay import CudaGraphReplay, build
from .trace import _MISSING, CaptureError, Recorder, _const_equal, live_calls, same_program
from .validate import check_replay

__all__ = ["compile", "CompiledFunction", "CaptureError"]


def compile(model=None, *, validate=True, max_signatures=8, cuda_graph=True,  # noqa: A001
            fallback=False, **torch_options):
    """``torch.compile``-shaped entry point (``mode=``, ``fullgraph=``, ``backend=``,
    ``dynamic=`` are accepted and ignored). A function is captured (see the module
    docstring for the rules); a ``Module`` is returned unchanged; ``compile()`` with no
    target returns a decorator.

    ``fallback``: False raises :class:`CaptureError` where a step cannot be replayed
    (the call that finds out may stop part-way); True (or a callable taking the error)
    lets every call finish eagerly instead and runs that signature eagerly from then on,
    warning once (or calling the callable)."""
    if model is None:
        return lambda m: compile(m, validate=validate, max_signatures=max_signatures,
                                 cuda_graph=cuda_graph, fallback=fallback, **torch_options)
    if isinstance(model, Module):
        return model
    if isinstance(model, CompiledFunction):
        return model
    if not callable(model):
        raise TypeError(f"gradflow.compile: expected a function or an nn.Module, got "
                        f"{type(model).__name__}")
    return CompiledFunction(model, validate=validate, max_signatures=max_signatures,
                            cuda_graph=cuda_graph, fallback=fallback)


class _Entry:
    """One signature's state: calls seen, the two recordings, then the replay."""
    __slots__ = ("calls", "first", "program", "out_spec", "rebinds", "guards", "error",
                 "backend", "graph", "validated", "n_kernels", "externals", "random",
                 "counters")

    def __init__(self):
        self.calls = 0
        self.first = self.program = self.out_spec = self.error = self.graph = None
        self.rebinds, self.guards, self.counters = (), (), ()
        self.validated = self.random = False
        self.n_kernels = 0
        self.externals = ()


class CompiledFunction:
    """A captured step (made by :func:`compile`). ``stats`` counts eager, recorded,
    checked (first replay + eager rerun) and replayed calls, the capture time (the two recordings, the build and the checked first
    replay, in seconds) and the kernels per replay; ``reset()`` drops every recording."""

    def __init__(self, fn, validate=True, max_signatures=8, cuda_graph=True, fallback=False):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.validate = validate
        self.fallback = fallback
        self.max_signatures = max_signatures
        self.cuda_graph = cuda_graph
        self._entries = OrderedDict()
        self._modules, self._optimizers, self._tensors = _discover(fn)
        self._scalars = _scalar_refs(fn)
        self.stats = {"eager": 0, "recorded": 0, "checked": 0, "replayed": 0, "capture_s": 0.0,
                      "kernels": 0, "signatures": 0, "cuda_graph": False}

    def reset(self):
        self._entries.clear()

    def __get__(self, obj, objtype=None):  # a compiled method binds like a function
        if obj is None:
            return self
        bound = self.__dict__.get("_bound")
        if bound is None or bound[0] is not obj:
            cf = CompiledFunction(self.fn.__get__(obj, objtype), self.validate,
                                  self.max_signatures, self.cuda_graph, self.fallback)
            self.__dict__["_bound"] = bound = (obj, cf)
        return bound[1]

    # -- the call ----------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        inputs, sig = [], []
        _flatten((args, kwargs), inputs, sig, self)
        be = _backend_of(inputs, self._tensors)
        for t in inputs:
            if t.backend is not be:
                raise CaptureError(f"gradflow.compile: the Tensor arguments are on two backends "
                                   f"({be.name!r} and {t.backend.name!r}); a captured step runs "
                                   f"on one")
        key = (tuple(sig), be.name, is_grad_enabled(), dtypes.get_default_dtype(),
               _module_settings(self._modules), _hyper(self._optimizers),
               _scalar_values(self._scalars))
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
            self.stats["signatures"] += 1
            while len(self._entries) > self.max_signatures:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        if entry.error is not None:
            if self.fallback:
                self.stats["eager"] += 1
                return self.fn(*args, **kwargs)
            raise entry.error
        arrays = [t.array for t in inputs]
        if entry.program is not None and entry.validated:
            if _guards_hold(entry.guards):
                return self._replay(entry, arrays)
            entry.__init__()  # a parameter or buffer was replaced outside the step: record again
        try:
            return self._advance(entry, be, arrays, args, kwargs)
        except CaptureError as e:
            entry.error = e
            raise

    def _give_up(self, entry, err, out):
        """Fallback mode: remember ``err`` for this signature, tell the user once, and
        hand back ``out``, the eager result of the call that found the problem."""
        entry.error = err
        entry.first = entry.program = None
        if not self.stats.get("fallback"):
            self.stats["fallback"] = str(err)
            if callable(self.fallback):
                self.fallback(err)
            else:
                import warnings
                warnings.warn(f"{err} -- running this step eagerly", RuntimeWarning, stacklevel=4)
        return out

    def _advance(self, entry, be, arrays, args, kwargs):
        entry.calls += 1
        if entry.calls == 1:
            self.stats["eager"] += 1
            return self.fn(*args, **kwargs)
        t0 = time.perf_counter()
        if entry.calls <= 3 and entry.program is None:
            rec = Recorder(be, arrays, strict=not self.fallback)
            with rec:
                out = self.fn(*args, **kwargs)
            self.stats["recorded"] += 1
            if rec.failure is not None:
                return self._give_up(entry, rec.failure, out)
            if entry.first is None:
                entry.first = (rec, out)
                self.stats["capture_s"] += time.perf_counter() - t0
                return out
            try:
                self._build(entry, rec, out)
            except CaptureError as e:
                if not self.fallback:
                    raise
                return self._give_up(entry, e, out)
            self.stats["capture_s"] += time.perf_counter() - t0
            return out
        # the first replay: checked against eager from the same state
        if self.validate:
            self.stats["checked"] += 1
            try:
                out = check_replay(self, entry, arrays, args, kwargs)
            except CaptureError as e:
                if not self.fallback or e.eager_result is _MISSING:
                    raise
                return self._give_up(entry, e, e.eager_result)
        else:
            out = self._replay(entry, arrays)
        entry.validated = True
        self.stats["capture_s"] += time.perf_counter() - t0
        return out

    def _build(self, entry, rec, out):
        first, out_first = entry.first
        entry.first = None
        spec = _out_spec(out, rec)
        if not _same_outputs(spec, _out_spec(out_first, first)):
            raise CaptureError("gradflow.compile: the captured function returned differently "
                               "structured results, or different Python values, in two calls; "
                               "a replay would return the last call's values forever")
        wanted = list(_refs(spec))
        entry.out_spec = _number_outputs(spec, [])
        rebinds, guards = _state_refs(rec, self._modules, self._optimizers, self._tensors)
        entry.rebinds = tuple((kind, obj, len(wanted) + i) for i, (kind, obj, _) in
                              enumerate(rebinds))
        wanted += [r[2] for r in rebinds]
        live = live_calls(rec, wanted)
        entry.counters = _step_counters(first, rec, self._optimizers)
        same_program(first, rec, live)
        entry.guards = tuple(guards)
        entry.program = build(rec, rec.n_inputs, wanted, live, counters=entry.counters)
        entry.backend = rec.backend
        entry.externals = tuple(rec.externals)
        entry.random = rec.random
        entry.n_kernels = entry.program.n_calls
        self.stats["kernels"] = entry.n_kernels
        # a graph bakes its kernels' scalar arguments in: a step count must stay a kernel replay
        if self.cuda_graph and rec.backend.name == "cupy" and not rec.random \
                and not entry.counters:
            entry.graph = _try_graph(rec, rec.values[:rec.n_inputs], wanted, live)
            self.stats["cuda_graph"] = entry.graph is not None

    def _run_program(self, entry, arrays):
        for d, key in entry.counters:  # what eager's optimizer.step() counts before its update
            d[key] += 1
        if entry.graph is not None:
            return entry.graph(arrays), True
        return entry.program(arrays), False

    def _replay(self, entry, arrays):
        vals, static = self._run_program(entry, arrays)
        be = entry.backend
        for kind, obj, i in entry.rebinds:
            if kind == "grad":
                obj.grad = Tensor._make(vals[i], be)
            else:
                obj.array = vals[i]
        self.stats["replayed"] += 1
        return _rebuild(entry.out_spec, vals, be, static)


#: backend kernels with an argument that is an optimizer's step count: (position, keyword)
COUNTER_ARGS = {"adam_step_": (9, "step")}


def _step_counters(r1, r2, optimizers):
    """Let the step count of Adam/AdamW reach a replay (``(dict, key)`` pairs, in place).

    Adam's bias correction takes ``state["step"]`` as a Python int, one more every call, so
    the two recordings differ there. Where a :data:`COUNTER_ARGS` argument is an int in
    both recordings, one apart, the kernel's first argument is the parameter of an
    optimizer whose ``state["step"]`` holds the second value, both recordings get the spec
    ``("k", n)`` instead: the replay reads ``state["step"]`` when it runs, after
    ``_run_program`` has counted it up as eager's ``step()`` would (so ``state_dict()`` and
    a later eager step stay right). Any other changing number still refuses the capture."""
    owner = {}  # a parameter's array -> the state dicts of the optimizers holding it
    for opt in optimizers:
        for prm, st in opt.state.items():
            if isinstance(prm, Tensor):
                owner.setdefault(id(prm.array), []).append(st)
    counters, index = [], {}
    for i, (c1, c2) in enumerate(zip(r1.calls, r2.calls)):
        where = COUNTER_ARGS.get(c2[0])
        if where is None or c1[0] != c2[0]:
            continue
        a1, a2 = _arg(c1, *where), _arg(c2, *where)
        if a1 is None or a2 is None or a1[0] != "c" or a2[0] != "c" or \
                type(a1[1]) is not int or type(a2[1]) is not int or a2[1] != a1[1] + 1:
            continue
        first = c2[1][1][0] if c2[1][0] == "t" and c2[1][1] else None
        states = owner.get(id(r2.externals[first[1]]), ()) if first and first[0] == "e" else ()
        states = [st for st in states if st.get(where[1]) == a2[1]]
        if len(states) != 1:  # no optimizer's count, or two equal ones: not ours to guess
            continue
        st = states[0]
        n = index.setdefault(id(st), len(counters))
        if n == len(counters):
            counters.append((st, where[1]))
        r1.calls[i] = _arg(c1, *where, new=("k", n))
        r2.calls[i] = _arg(c2, *where, new=("k", n))
    return tuple(counters)


def _arg(call, pos, kw, new=None):
    """The spec of a call's argument (at ``pos`` or keyword ``kw``); with ``new``, the call
    with that argument replaced. None where the call has no such argument."""
    name, sa, sk, so = call
    if sa[0] == "t" and len(sa[1]) > pos:
        if new is None:
            return sa[1][pos]
        items = list(sa[1])
        items[pos] = new
        return (name, ("t", tuple(items)), sk, so)
    if sk and sk[0] == "d":
        for j, (k, v) in enumerate(sk[1]):
            if k == kw:
                if new is None:
                    return v
                items = list(sk[1])
                items[j] = (k, new)
                return (name, sa, ("d", tuple(items)), so)
    return None


# -- signatures -----------------------------------------------------------------------------------
def _flatten(x, inputs, sig, cf):
    if isinstance(x, (Module, Optimizer)):
        # passed in (step(model, opt, x, y)): its training flags, hyper-parameters and state
        # count as if the function had named it
        if not any(x is o for o in cf._modules + cf._optimizers):
            _visit_all([x], cf._modules, cf._optimizers, cf._tensors)
        sig.append(("c", type(x), id(x)))
    elif isinstance(x, Tensor):
        inputs.append(x)
        # strides too: views rebuilt by byte offset and stride assume the recording's layout
        sig.append(("T", x.shape, x.dtype, x.requires_grad, x.array.strides))
    elif isinstance(x, (tuple, list)):
        sig.append((type(x), len(x)))
        for v in x:
            _flatten(v, inputs, sig, cf)
    elif isinstance(x, dict):
        sig.append((dict, tuple(x)))
        for v in x.values():
            _flatten(v, inputs, sig, cf)
    else:
        try:
            hash(x)
        except TypeError:
            raise CaptureError(f"gradflow.compile: argument of type {type(x).__name__} is not "
                               f"hashable; a captured step takes Tensors and plain values (each "
                               f"distinct value is its own recording)") from None
        sig.append(("c", type(x), x))


def _hyper(optimizers):
    out = []
    for opt in optimizers:
        for g in opt.param_groups:
            out.append(tuple((k, v) for k, v in g.items() if k != "params"
                             and isinstance(v, (int, float, bool, str, tuple, type(None)))))
    return tuple(out)


def _module_settings(modules):
    """Each module's plain-valued attributes (``training``, dropout's ``p``, batch norm's
    ``momentum`` and ``eps`` ...): a kernel may have been given them as constants."""
    return tuple(tuple((k, v) for k, v in vars(m).items() if type(v) in _SCALARS)
                 for m in modules)


def _backend_of(inputs, tensors):
    if inputs:
        return inputs[0].backend
    for t in tensors:
        return t.backend
    return current_backend()


# -- what the function touches ----------------------------------------------------------------------
def _discover(fn):
    """Modules, optimizers and Tensors reachable from ``fn``: its closure, the globals it
    names, ``self`` of a bound method, one level into lists/tuples/dicts and objects."""
    roots = []
    target = getattr(fn, "__func__", fn)
    if getattr(fn, "__self__", None) is not None:
        roots.append(fn.__self__)
    code = getattr(target, "__code__", None)
    if code is not None:
        g = getattr(target, "__globals__", {})
        names = set(code.co_names)
        for const in code.co_consts:  # nested functions' names too
            if hasattr(const, "co_names"):
                names.update(const.co_names)
        roots += [g[n] for n in names if n in g]
        roots += [c.cell_contents for c in (target.__closure__ or ()) if _filled(c)]
        roots += list(getattr(target, "__defaults__", None) or ())  # def step(x, opt=opt)
        roots += list((getattr(target, "__kwdefaults__", None) or {}).values())
    elif callable(fn) and not isinstance(fn, type):
        roots.append(fn)  # a callable object: look at its attributes
    modules, optimizers, tensors = [], [], []
    _visit_all(roots, modules, optimizers, tensors)
    return modules, optimizers, tensors


def _visit_all(roots, modules, optimizers, tensors):
    """Add the Modules (with their submodules), Optimizers and Tensors found in ``roots``
    (and up to two levels into containers and plain objects) to the three lists."""
    seen = {id(x) for x in modules + optimizers + tensors}

    def visit(x, depth):
        if id(x) in seen:
            return
        seen.add(id(x))
        if isinstance(x, Module):
            for m in x.modules():
                if not any(m is k for k in modules):
                    seen.add(id(m))
                    modules.append(m)
            return
        if isinstance(x, Optimizer):
            optimizers.append(x)
            return
        if isinstance(x, Tensor):
            tensors.append(x)
            return
        if depth >= 2:
            return
        if isinstance(x, (list, tuple)):
            for v in x:
                visit(v, depth + 1)
        elif isinstance(x, dict):
            for v in x.values():
                visit(v, depth + 1)
        elif hasattr(x, "__dict__") and not isinstance(x, (type, types.ModuleType)) \
                and type(x).__module__ != "builtins" and not callable(x):
            for v in vars(x).values():
                visit(v, depth + 1)

    for r in roots:
        visit(r, 0)


_SCALARS = (bool, int, float, complex, str, type(None))


def _scalar_refs(fn):
    """The plain numbers and strings ``fn`` reads from its closure and the globals it
    names, as ``(cell or dict, name)``: a replay runs no Python, so a changed value (a
    ``scale`` set between calls) must start a new signature instead of being frozen."""
    target = getattr(fn, "__func__", fn)
    code = getattr(target, "__code__", None)
    if code is None:
        return ()
    refs = [(c, None) for c in (target.__closure__ or ())
            if _filled(c) and isinstance(c.cell_contents, _SCALARS)]
    g = getattr(target, "__globals__", {})
    refs += [(g, n) for n in code.co_names if n in g and isinstance(g[n], _SCALARS)]
    return tuple(refs)


def _scalar_values(refs):
    return tuple((type(v), v) for v in
                 (r.cell_contents if n is None else r.get(n) for r, n in refs))


def _filled(cell):
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def _guards_hold(guards):
    """Whether every object a replay writes through is still where the recording found
    it: ``(0, tensor, array)`` tensor.array is array; ``(1, dict, key, value)``
    dict[key] is value (optimizer state, module parameters); ``(2, obj, name, value)``."""
    for g in guards:
        kind = g[0]
        if kind == 0:
            if g[1].array is not g[2]:
                return False
        elif kind == 1:
            if g[1].get(g[2]) is not g[3]:
                return False
        elif getattr(g[1], g[2], None) is not g[3]:
            return False
    return True


def _state_refs(rec, modules, optimizers, tensors):
    """(rebinds, guards): the arrays a replay must put back where eager leaves them
    (``p.grad``, buffers and optimizer state rebound to new arrays), and the identities
    a replay relies on (see :func:`_guards_hold`; checked before every replay: a
    ``load_state_dict`` that replaces buffers makes the next call record again)."""
    held, guards = [], []
    for m in modules:
        for name in ("_parameters", "_buffers"):
            d = vars(m).get(name, {})
            for k, t in d.items():
                if isinstance(t, Tensor):
                    held.append(t)
                    guards.append((1, d, k, t))
    for opt in optimizers:
        guards.append((2, opt, "state", opt.state))
        for g in opt.param_groups:
            held += list(g["params"])
        for p, st in opt.state.items():
            guards.append((1, opt.state, p, st))
            for k, v in st.items():
                if isinstance(v, Tensor):
                    held.append(v)
                    guards.append((1, st, k, v))
    held += tensors
    rebinds, seen = [], set()
    for t in held:
        if id(t) in seen:
            continue
        seen.add(id(t))
        ref = _known(rec, t.array)
        if ref is None:
            continue
        if ref[0] == "e":
            guards.append((0, t, t.array))
        else:
            rebinds.append(("array", t, ref))
        g = t.grad
        if g is not None:
            gref = _known(rec, g.array)
            if gref is not None and gref[0] != "e":
                rebinds.append(("grad", t, gref))
            elif gref is not None:
                guards += [(2, t, "grad", g), (0, g, g.array)]
    return rebinds, guards


def _known(rec, a):
    """The recording's ref for array ``a``, or None if no kernel ever saw it."""
    k = rec._slot.get(id(a))
    if k is not None:
        return ("s", k)
    if id(a) in rec._ext:
        return ("e", rec._ext[id(a)])
    if id(rec.backend.owner(a)) in rec._owner:
        return rec._ref(a)
    return None


# -- results ---------------------------------------------------------------------------------------
def _out_spec(x, rec):
    if isinstance(x, Tensor):
        return ("T", rec._ref(x.array))
    if isinstance(x, (tuple, list)):
        return (type(x), tuple(_out_spec(v, rec) for v in x))
    if isinstance(x, dict):
        return (dict, tuple((k, _out_spec(v, rec)) for k, v in x.items()))
    return ("c", x)


def _same_outputs(a, b):
    """Two calls' result specs: the same structure, tensors at the same places, and the
    same plain Python values."""
    if a[0] != b[0]:
        return False
    if a[0] == "T":
        return True
    if a[0] == "c":
        return type(a[1]) is type(b[1]) and _const_equal(a[1], b[1])
    if len(a[1]) != len(b[1]):
        return False
    if a[0] is dict:
        return all(ka == kb and _same_outputs(va, vb) for (ka, va), (kb, vb) in zip(a[1], b[1]))
    return all(_same_outputs(u, v) for u, v in zip(a[1], b[1]))


def _refs(spec):
    if spec[0] == "T":
        yield spec[1]
    elif spec[0] == "c":
        return
    elif spec[0] is dict:
        for _, v in spec[1]:
            yield from _refs(v)
    else:
        for v in spec[1]:
            yield from _refs(v)


def _number_outputs(spec, counter):
    if spec[0] == "T":
        counter.append(None)
        return ("T", len(counter) - 1)
    if spec[0] == "c":
        return spec
    if spec[0] is dict:
        return (dict, tuple((k, _number_outputs(v, counter)) for k, v in spec[1]))
    return (spec[0], tuple(_number_outputs(v, counter) for v in spec[1]))


def _rebuild(spec, vals, be, static):
    kind = spec[0]
    if kind == "T":
        a = vals[spec[1]]
        return Tensor._make(be.copy(a) if static else a, be)
    if kind == "c":
        return spec[1]
    if kind is dict:
        return {k: _rebuild(v, vals, be, static) for k, v in spec[1]}
    return kind(_rebuild(v, vals, be, static) for v in spec[1])


def _try_graph(rec, arrays, wanted, live):
    """The CUDA-graph replay of ``rec``, or None (with a warning) where capture fails."""
    import warnings
    try:
        program = build(rec, len(arrays), wanted, live, keep_all=True)
        return CudaGraphReplay(program, arrays)
    except Exception as e:  # noqa: BLE001 -- any capture failure falls back to kernel replay
        warnings.warn(f"gradflow.compile: CUDA graph capture failed ({type(e).__name__}: {e}); "
                      f"replaying the kernel list instead", RuntimeWarning, stacklevel=3)
        return None

