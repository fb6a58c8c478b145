"""A recording turned into one generated Python function: the flat kernel list.

:func:`build` writes the recorded calls out as straight-line code over local variables
(``s3 = k2(s0, e1, c4)``): no graph, no Tensor objects, no per-op dispatch; each kernel
is the backend's own bound method (the recording shadow is gone). A slot's local is
deleted right after its last use, so intermediate buffers are freed when eager would
free them (the Numba backend's buffer pool then hands them out again in the same step).

:class:`CudaGraphReplay` wraps a program for the CuPy backend: the program is run once
under stream capture into a ``cupy.cuda.Graph`` on fixed input buffers, and each call
copies the new inputs into those buffers and launches the graph.
"""
from __future__ import annotations

from .trace import RANDOM_KERNELS, slots_used

__all__ = ["build", "Program", "CudaGraphReplay"]


class Program:
    """``program(inputs) -> tuple`` of the arrays of ``wanted`` slots/refs, in order.

    ``n_calls``: kernels per replay; ``source``: the generated code (for debugging)."""

    def __init__(self, fn, source, n_calls, backend):
        self._fn, self.source, self.n_calls, self.backend = fn, source, n_calls, backend

    def __call__(self, inputs):
        with self.backend.errstate():
            return self._fn(*inputs)


def build(rec, n_inputs, wanted, live, keep_all=False, counters=()):
    """Generate the replay of recording ``rec`` (a :class:`~.trace.Recorder`); call it
    outside the recording (it binds the backend's real methods).

    ``wanted``: refs (``("s", k)``, ``("v", ...)``, ``("e", j)``) whose arrays the replay
    returns: the function's results and the arrays to rebind (``p.grad`` ...).
    ``live``: the indices of the calls to run (:func:`~.trace.live_calls`).
    ``keep_all``: free nothing early and return every slot after ``wanted`` (a CUDA graph
    must own all the memory its kernels write). ``counters``: the ``(dict, key)`` that a
    spec ``("k", n)`` reads when the replay runs (an optimizer's step count)."""
    be = rec.backend
    env = {"_v": _viewer(be), "_asarray": be.asarray}
    consts = {}

    def const(x):
        key = (type(x), id(x))
        name = consts.get(key)
        if name is None:
            name = consts[key] = f"c{len(consts)}"
            env[name] = x
        return name

    def expr(spec):
        kind = spec[0]
        if kind in ("s", "S"):
            return f"s{spec[1]}"
        if kind == "e":
            return f"e{spec[1]}"
        if kind == "v":
            _, k, off, shape, strides, dtype = spec
            return f"_v(s{k}, {off}, {const(shape)}, {const(strides)}, {const(dtype)})"
        if kind == "c":
            x = spec[1]
            if x is None or type(x) in (bool, int, str):
                return repr(x)
            return const(x)
        if kind == "t":
            inner = ", ".join(expr(v) for v in spec[1])
            return f"({inner},)" if spec[1] else "()"
        if kind == "l":
            return "[" + ", ".join(expr(v) for v in spec[1]) + "]"
        if kind == "d":
            return "{" + ", ".join(f"{const(k)}: {expr(v)}" for k, v in spec[1]) + "}"
        if kind == "k":
            d, key = counters[spec[1]]
            return f"{const(d)}[{key!r}]"
        raise AssertionError(f"unknown spec {kind!r}")

    uses = slots_used
    calls = [(i, c) for i, c in enumerate(rec.calls) if i in live]
    if FUSE and not keep_all:
        calls = _fuse_conv_relu(be, calls, wanted)
    keep = set()
    for w in wanted:
        uses(w, keep)
    last = {}
    for i, (_, sa, sk, _) in calls:
        for k in uses(sa, set()) | (uses(sk, set()) if sk else set()):
            last[k] = i
    for k in range(n_inputs):  # inputs nobody reads: free at once
        last.setdefault(k, -1)

    lines = [f"def _replay({', '.join(f's{k}' for k in range(n_inputs))}):"]
    for j, e in enumerate(rec.externals):
        env[f"e{j}"] = e
    folded = _constant_calls(rec, calls, keep)
    for i, (_, _, _, so) in calls:
        if i in folded:  # computed once: the recording's own result stands for every replay
            for k in slots_used(so, set()):
                env[f"s{k}"] = rec.values[k]
    fixed = set()
    for i, (_, _, _, so) in calls:
        if i in folded:
            slots_used(so, fixed)
    dead_at = {}
    for k, i in last.items():
        if k not in keep and not keep_all and k not in fixed:
            dead_at.setdefault(i, []).append(k)
    if dead_at.get(-1):
        lines.append("    del " + ", ".join(f"s{k}" for k in dead_at[-1]))
    elide = _elidable_copies(rec, calls, last, keep, n_inputs) if not keep_all else set()
    for i, (name, sa, sk, so) in calls:
        if i in folded:
            continue
        if i in elide:  # the copy's source dies here: hand it over instead of copying
            lines.append(f"    s{so[1]} = s{sa[1][0][1]}")
            if dead_at.get(i):
                lines.append("    del " + ", ".join(f"s{k}" for k in dead_at[i]))
            continue
        env[f"k{i}"] = getattr(be, name)
        args = expr(sa)[1:-1].rstrip(",") if sa[0] == "t" else f"*{expr(sa)}"
        if sk:
            args += (", " if args else "") + "**" + expr(sk)
        call = f"k{i}({args})"
        lines += _assign(so, call, f"_r{i}")
        if dead_at.get(i):
            lines.append("    del " + ", ".join(f"s{k}" for k in dead_at[i]))
    ret = "".join(expr(w) + ", " for w in wanted)
    if keep_all:
        made = set(range(n_inputs))
        for _, (_, _, _, so) in calls:
            slots_used(so, made)
        ret += "(" + "".join(f"s{k}, " for k in sorted(made - fixed)) + "), "
    lines.append(f"    return ({ret})")
    source = "\n".join(lines) + "\n"
    exec(compile(source, "<gradflow.compile replay>", "exec"), env)  # noqa: S102 -- our own code
    return Program(env["_replay"], source, len(calls) - len(elide) - len(folded), be)


#: peephole fusions on (conv + ReLU); False replays the recorded kernels one by one
FUSE = True


def _fuse_conv_relu(be, calls, wanted):
    """``(y, saved) = conv2d_forward_saved(...); r = unary('relu', y)`` where nothing else
    reads ``y`` -> ``(r, saved) = conv2d_relu_forward_saved(...)``, on backends that have
    it (Numba: the ReLU runs in the conv's output pass, one sweep over the output less)."""
    if not hasattr(type(be), "conv2d_relu_forward_saved"):
        return calls
    count = {}
    for w in wanted:
        for k in slots_used(w, set()):
            count[k] = count.get(k, 0) + 2  # wanted: never fused away
    for _, (_, sa, sk, _) in calls:
        for spec in (sa, sk):
            if spec:
                for k in _slot_reads(spec):
                    count[k] = count.get(k, 0) + 1
    out, drop = list(calls), set()
    producer = {}
    for pos, (i, (name, sa, sk, so)) in enumerate(out):
        if name == "conv2d_forward_saved" and so[0] == "t" and so[1] and so[1][0][0] == "s":
            producer[so[1][0][1]] = pos
        elif (name == "unary" and not sk and sa[0] == "t" and len(sa[1]) == 2
              and sa[1][0] == ("c", "relu") and sa[1][1][0] == "s" and so[0] == "s"):
            k = sa[1][1][1]
            p = producer.get(k)
            if p is not None and count.get(k) == 1:
                j, (_, csa, csk, cso) = out[p]
                out[p] = (j, ("conv2d_relu_forward_saved", csa, csk,
                              ("t", (so,) + cso[1][1:])))
                drop.add(pos)
    return [c for pos, c in enumerate(out) if pos not in drop]


def _slot_reads(spec):
    """Every slot read by ``spec``, once per reference (a multiset, as a list)."""
    kind = spec[0]
    if kind in ("s", "S", "v"):
        return [spec[1]]
    if kind in ("t", "l"):
        return [k for v in spec[1] for k in _slot_reads(v)]
    if kind == "d":
        return [k for _, v in spec[1] for k in _slot_reads(v)]
    return []


def _constant_calls(rec, calls, keep):
    """Calls whose results are the same every step: no random draw, no in-place write,
    and every array argument itself such a result (``full((), 64)``, ``asarray(0.5)``,
    ``where`` of those: the scalar bookkeeping of a loss's mean). Their results are
    taken from the recording once. Excluded: anything returned or rebound (``keep``),
    and any array whose memory an in-place kernel or an ``out=`` writes."""
    be = rec.backend
    written = set()
    for _, (name, sa, sk, _) in calls:
        if name.endswith("_"):
            slots_used(sa, written)
        if sk:
            for key, v in sk[1]:
                if key == "out":
                    slots_used(v, written)
        if name == "binary" and len(sa[1]) > 3:
            slots_used(sa[1][3], written)
    off_limits = {id(be.owner(rec.values[k])) for k in written | keep}
    folded, const_slots = set(), set()
    for i, (name, sa, sk, so) in calls:
        if name.endswith("_") or name in RANDOM_KERNELS or so[0] == "c":
            continue
        if _has_external(sa) or (sk and _has_external(sk)):
            continue
        reads = slots_used(sa, set()) | (slots_used(sk, set()) if sk else set())
        outs = slots_used(so, set())
        if not reads <= const_slots or outs & (written | keep):
            continue
        if any(id(be.owner(rec.values[k])) in off_limits for k in outs):
            continue
        folded.add(i)
        const_slots |= outs
    return folded


def _has_external(spec):
    kind = spec[0]
    if kind in ("e", "k"):  # an outside array, or a value read when the replay runs
        return True
    if kind in ("t", "l"):
        return any(_has_external(v) for v in spec[1])
    if kind == "d":
        return any(_has_external(v) for _, v in spec[1])
    return False


def _elidable_copies(rec, calls, last, keep, n_inputs):
    """Calls ``s_j = copy(s_k)`` (the engine's fresh ``.grad`` of a leaf) that can be
    ``s_j = s_k``: ``s_k`` is read by nothing after the copy, was made in the step (not
    an input), is C-contiguous and shares its memory with no other slot of the recording
    (so nothing else can see the handed-over array). Same values, one pass less."""
    be = rec.backend
    owners = {}
    for a in rec.values:
        o = id(be.owner(a))
        owners[o] = owners.get(o, 0) + 1
    out = set()
    for i, (name, sa, sk, so) in calls:
        if name != "copy" or sk or so[0] != "s" or sa[0] != "t" or len(sa[1]) != 1:
            continue
        src = sa[1][0]
        if src[0] != "s":
            continue
        k = src[1]
        a = rec.values[k]
        if (k >= n_inputs and k not in keep and last.get(k) == i and be.is_contiguous(a)
                and owners[id(be.owner(a))] == 1):
            out.add(i)
    return out


def _assign(so, call, tmp):
    kind = so[0]
    if kind == "s":
        return [f"    s{so[1]} = {call}"]
    if kind == "S":
        return [f"    s{so[1]} = _asarray({call})"]
    if kind == "t":
        out = [f"    {tmp} = {call}"]
        for idx, item in enumerate(so[1]):
            if item[0] == "c":
                continue
            out += _assign(item, f"{tmp}[{idx}]", f"{tmp}_{idx}")
        return out
    return [f"    {call}"]


def _viewer(be):
    owner, ptr, view_into = be.owner, be.data_ptr, be.view_into

    def view(a, off, shape, strides, dtype):
        o = owner(a)
        return view_into(o, ptr(a) - ptr(o) + off, shape, strides, dtype)
    return view


class CudaGraphReplay:
    """A :class:`Program` on the CuPy backend replayed as one CUDA graph.

    Built from one run of ``program`` under stream capture, on static copies of the
    inputs; ``__call__(inputs)`` copies ``inputs`` into them, launches the graph, and
    returns the static result arrays (the caller copies what it hands out)."""

    def __init__(self, program, example_inputs):
        cupy = program.backend.xp
        self.backend = program.backend
        self.static_inputs = tuple(cupy.array(a, copy=True) for a in example_inputs)
        self.stream = cupy.cuda.Stream(non_blocking=True)
        with self.stream:
            program(self.static_inputs)  # warm: allocations land in the pool before capture
            self.stream.begin_capture()
            try:
                out = program(self.static_inputs)
            finally:
                self.graph = self.stream.end_capture()
        self.stream.synchronize()
        # every slot stays referenced: the graph writes this memory on each launch
        self.outputs, self._all = out[:-1], out[-1]
        self.n_calls = program.n_calls

    def __call__(self, inputs):
        with self.stream:
            for dst, src in zip(self.static_inputs, inputs):
                dst[...] = src
            self.graph.launch()
        self.stream.synchronize()
        return self.outputs
