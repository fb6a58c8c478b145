"""The default process group and the collectives on Tensors (``torch.distributed``'s names).

A process group is one engine (:class:`~gradflow.distributed.mpi_engine.MPIEngine` or
:class:`~gradflow.distributed.nccl_engine.NCCLEngine`) plus this process's rank and the world
size. Collectives work in place on a tensor's backend array (no autograd: call them under
``no_grad`` or on ``.grad``/buffers) and bump its version counter.
"""
from __future__ import annotations

import atexit
import datetime
import os
import sys

from ..tensor import Tensor
from .errors import DistributedError

DEFAULT_TIMEOUT = 300.0  # seconds; GRADFLOW_DIST_TIMEOUT or init_process_group(timeout=) override

# environment variables launchers set for the world size and rank: PyTorch's (torchrun),
# MPICH/Hydra's (PMI_*), Open MPI's
_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
_RANK_VARS = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK")


class ReduceOp:
    """Reduction operations (``ReduceOp.SUM`` ...); plain strings ("sum", "avg") work too."""
    SUM, AVG, PRODUCT, MAX, MIN = "sum", "avg", "prod", "max", "min"


_VALID_OPS = ("sum", "avg", "prod", "max", "min")


class _Group:
    def __init__(self, engine, backend):
        self.engine, self.backend = engine, backend
        self.rank, self.size = engine.rank, engine.size


_state = {"group": None, "hooks": False}


def _env_int(names):
    for n in names:
        v = os.environ.get(n)
        if v not in (None, ""):
            try:
                return int(v), n
            except ValueError:
                raise ValueError(f"gradflow.distributed: ${n}={v!r} is not an integer") from None
    return None, None


def launched_world_size():
    """The world size a launcher (mpiexec, torchrun-style environment) announced, else 1."""
    n, _ = _env_int(_SIZE_VARS)
    return n or 1


def _seconds(timeout):
    if timeout is None:
        env = os.environ.get("GRADFLOW_DIST_TIMEOUT")
        timeout = float(env) if env else DEFAULT_TIMEOUT
    if isinstance(timeout, datetime.timedelta):
        timeout = timeout.total_seconds()
    if not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"init_process_group: timeout must be a positive number of seconds or a "
                         f"timedelta, got {timeout!r}")
    return float(timeout)


def is_available():
    """True: the module is always importable (the engines are checked at init)."""
    return True


def is_mpi_available():
    from .mpi_engine import mpi_available
    return mpi_available()


def is_nccl_available():
    from .nccl_engine import nccl_available
    return nccl_available()


def is_initialized():
    return _state["group"] is not None


def _group(what, group=None):
    g = _state["group"]
    if g is None:
        raise RuntimeError(f"gradflow.distributed.{what}: the default process group is not "
                           f"initialized; call gradflow.distributed.init_process_group() first")
    if group is not None and group is not g and group != "WORLD":
        raise ValueError(f"gradflow.distributed.{what}: only the default group (group=None) exists")
    return g


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1,
                       store=None, group_name="", pg_options=None, device_id=None):
    """Join the job's default process group.

    ``backend``: "mpi" (CPU, any backend's arrays; CuPy arrays are staged through the host)
    or "nccl" (CuPy arrays, one GPU per process); default ``$GRADFLOW_DIST_BACKEND`` or "mpi".
    Rank and world size come from MPI (start the job with ``mpiexec -n N``); ``rank`` /
    ``world_size`` and the launcher's ``RANK`` / ``WORLD_SIZE`` variables, when given, must
    agree with it. ``timeout`` (seconds or a ``timedelta``; default ``$GRADFLOW_DIST_TIMEOUT``
    or 300 s) bounds every collective: one that does not complete in time raises
    :class:`DistributedTimeoutError` and the job is aborted. ``init_method``/``store`` are
    accepted for PyTorch compatibility; MPI does the rendezvous."""
    if is_initialized():
        raise RuntimeError("init_process_group: the default process group is already initialized "
                           "(call destroy_process_group() first)")
    backend = (backend or os.environ.get("GRADFLOW_DIST_BACKEND") or "mpi").lower()
    if backend not in ("mpi", "nccl"):
        raise ValueError(f"init_process_group: backend {backend!r} is not supported; valid: 'mpi' "
                         f"(CPU), 'nccl' (GPU through CuPy)")
    seconds = _seconds(timeout)
    from .mpi_engine import MPIEngine, mpi_available
    if backend == "mpi":
        engine = MPIEngine(seconds)
    else:
        from .nccl_engine import NCCLEngine
        mpi = MPIEngine(seconds) if (mpi_available() or launched_world_size() > 1) else None
        r, n = (mpi.rank, mpi.size) if mpi is not None else (0, 1)
        engine = NCCLEngine(seconds, r, n, mpi)
    for given, what, env_names in ((world_size, "world_size", _SIZE_VARS), (rank, "rank", _RANK_VARS)):
        actual = engine.size if what == "world_size" else engine.rank
        env, env_name = _env_int(env_names)
        for value, source in ((given if given is not None and given >= 0 else None, f"{what}="),
                              (env, f"${env_name}")):
            if value is not None and value != actual:
                engine.destroy()
                raise ValueError(f"init_process_group: {source}{value} but MPI says {what} is "
                                 f"{actual}; start the job with mpiexec -n N (MPI gives every "
                                 f"process its rank)")
    _state["group"] = _Group(engine, backend)
    _install_abort_hooks()


def _install_abort_hooks():
    """An uncaught exception on one rank (a timeout, a user error) aborts the whole job:
    otherwise the other ranks would wait in their next collective until they time out."""
    if _state["hooks"]:
        return
    _state["hooks"] = True
    previous = sys.excepthook

    def hook(tp, value, tb):
        previous(tp, value, tb)
        g = _state["group"]
        if g is not None and g.size > 1:
            sys.stderr.flush()
            g.engine.abort(1)

    sys.excepthook = hook

    def at_exit():
        g = _state["group"]
        if g is not None and g.engine.broken is not None and g.size > 1:
            sys.stderr.flush()
            g.engine.abort(1)  # a pending collective would hang MPI_Finalize

    atexit.register(at_exit)


def destroy_process_group(group=None):
    g = _group("destroy_process_group", group)
    _state["group"] = None
    g.engine.destroy()


def get_rank(group=None):
    return _group("get_rank", group).rank


def get_world_size(group=None):
    return _group("get_world_size", group).size


def get_backend(group=None):
    return _group("get_backend", group).backend


# -- collectives on tensors -------------------------------------------------------------------------
def _check_tensor(t, what, name="tensor"):
    if not isinstance(t, Tensor):
        raise TypeError(f"gradflow.distributed.{what}: {name} must be a Tensor, got "
                        f"{type(t).__name__}")
    return t


def _op(op, what, t):
    op = getattr(op, "value", op)
    op = str(op).lower()
    op = {"product": "prod", "mean": "avg"}.get(op, op)
    if op not in _VALID_OPS:
        raise ValueError(f"gradflow.distributed.{what}: op {op!r} is not supported; valid: "
                         f"{', '.join(_VALID_OPS)}")
    if op == "avg" and t.dtype.kind not in "fc":
        raise TypeError(f"gradflow.distributed.{what}: ReduceOp.AVG needs a floating tensor, got "
                        f"{t.dtype}; use SUM")
    return op


def _flat(t):
    """(contiguous 1-d array over the tensor's data, write-back or None)."""
    be, a = t.backend, t.array
    if a.flags.c_contiguous and a.flags.writeable:
        return be.reshape(a, (-1,)), None
    work = be.reshape(be.copy(a), (-1,))
    if not work.flags.c_contiguous:
        work = be.concat([work], 0)

    def back():
        be.copyto_(a, be.reshape(work, a.shape))
    return work, back


def _averager(be, arr, n):
    def divide():
        be.copyto_(arr, be.binary("div", arr, n))
    return divide


def _then(*fs):
    fs = [f for f in fs if f is not None]

    def run_all():
        for f in fs:
            f()
    return run_all if fs else None


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce ``tensor`` over all ranks in place (every rank gets the result).
    ``async_op=True`` returns a Work; call ``.wait()`` before reading the tensor."""
    g = _group("all_reduce", group)
    _check_tensor(tensor, "all_reduce")
    op = _op(op, "all_reduce", tensor)
    work, back = _flat(tensor)
    avg = _averager(tensor.backend, work, g.size) if op == "avg" else None
    w = g.engine.all_reduce(work, tensor.backend, "sum" if op == "avg" else op, "all_reduce",
                            async_op, _then(avg, back))
    tensor._version[0] += 1
    return w if async_op else None


def broadcast(tensor, src=0, group=None, async_op=False):
    """Overwrite ``tensor`` on every rank with rank ``src``'s."""
    g = _group("broadcast", group)
    _check_tensor(tensor, "broadcast")
    _check_src(src, g, "broadcast")
    work, back = _flat(tensor)
    w = g.engine.broadcast(work, tensor.backend, src, "broadcast", async_op)
    if back is not None:
        w.wait()
        back()
    tensor._version[0] += 1
    return w if async_op else None


def _check_src(src, g, what):
    if not isinstance(src, int) or not 0 <= src < g.size:
        raise ValueError(f"gradflow.distributed.{what}: src={src!r} is not a rank of this group "
                         f"(0..{g.size - 1})")


def _same_layout(ts, ref, what, name):
    for i, t in enumerate(ts):
        _check_tensor(t, what, f"{name}[{i}]")
        if t.shape != ref.shape or t.dtype != ref.dtype:
            raise ValueError(f"gradflow.distributed.{what}: {name}[{i}] has shape {t.shape} "
                             f"{t.dtype}, expected {ref.shape} {ref.dtype} like the input")


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """``tensor_list[r]`` receives rank r's ``tensor`` (a list of world-size tensors shaped like it)."""
    g = _group("all_gather", group)
    _check_tensor(tensor, "all_gather")
    if len(tensor_list) != g.size:
        raise ValueError(f"gradflow.distributed.all_gather: tensor_list has {len(tensor_list)} "
                         f"tensors, the world size is {g.size}")
    _same_layout(tensor_list, tensor, "all_gather", "tensor_list")
    be = tensor.backend
    src, _ = _flat(tensor)
    out = be.empty((g.size * src.size,), tensor.dtype)
    g.engine.all_gather(out, src, be, "all_gather")
    n = src.size
    for r, t in enumerate(tensor_list):
        be.copyto_(t.array, be.reshape(be.getitem(out, slice(r * n, (r + 1) * n)), t.shape))
        t._version[0] += 1
    return _done(g) if async_op else None


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    """``output_tensor`` (world * input numel elements, e.g. shape (world * n, ...)) receives
    every rank's ``input_tensor`` concatenated in rank order."""
    g = _group("all_gather_into_tensor", group)
    _check_tensor(output_tensor, "all_gather_into_tensor", "output_tensor")
    _check_tensor(input_tensor, "all_gather_into_tensor", "input_tensor")
    if output_tensor.numel() != g.size * input_tensor.numel() or \
            output_tensor.dtype != input_tensor.dtype:
        raise ValueError(f"gradflow.distributed.all_gather_into_tensor: output {output_tensor.shape} "
                         f"{output_tensor.dtype} must hold world size ({g.size}) x input "
                         f"{input_tensor.shape} {input_tensor.dtype}")
    src, _ = _flat(input_tensor)
    out, back = _flat(output_tensor)
    w = g.engine.all_gather(out, src, input_tensor.backend, "all_gather_into_tensor", async_op)
    if back is not None:
        w.wait()
        back()
    output_tensor._version[0] += 1
    return w if async_op else None


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """``output`` receives the reduction over ranks of every rank's ``input_list[rank]``."""
    g = _group("reduce_scatter", group)
    _check_tensor(output, "reduce_scatter", "output")
    if len(input_list) != g.size:
        raise ValueError(f"gradflow.distributed.reduce_scatter: input_list has {len(input_list)} "
                         f"tensors, the world size is {g.size}")
    _same_layout(input_list, output, "reduce_scatter", "input_list")
    be = output.backend
    send = be.concat([be.reshape(t.array, (-1,)) for t in input_list], 0)
    return _reduce_scatter(g, output, send, op, "reduce_scatter", async_op)


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False):
    """``output`` receives block ``rank`` (of world-size equal blocks) of ``input`` reduced over ranks."""
    g = _group("reduce_scatter_tensor", group)
    _check_tensor(output, "reduce_scatter_tensor", "output")
    _check_tensor(input, "reduce_scatter_tensor", "input")
    if input.numel() != g.size * output.numel() or input.dtype != output.dtype:
        raise ValueError(f"gradflow.distributed.reduce_scatter_tensor: input {input.shape} "
                         f"{input.dtype} must hold world size ({g.size}) x output {output.shape} "
                         f"{output.dtype}")
    send, _ = _flat(input)
    return _reduce_scatter(g, output, send, op, "reduce_scatter_tensor", async_op)


def _reduce_scatter(g, output, send, op, what, async_op):
    op = _op(op, what, output)
    out, back = _flat(output)
    avg = _averager(output.backend, out, g.size) if op == "avg" else None
    w = g.engine.reduce_scatter(out, send, output.backend, "sum" if op == "avg" else op, what,
                                async_op, _then(avg, back))
    output._version[0] += 1
    return w if async_op else None


def _done(g):
    from .mpi_engine import Work
    return Work(g.engine, None, "done")


def barrier(group=None, async_op=False):
    """Block until every rank has entered the barrier."""
    w = _group("barrier", group).engine.barrier(async_op)
    return w if async_op else None


def all_gather_object(object_list, obj, group=None):
    """``object_list[r]`` = rank r's picklable ``obj`` (setup data, not tensors per step)."""
    g = _group("all_gather_object", group)
    if len(object_list) != g.size:
        raise ValueError(f"gradflow.distributed.all_gather_object: object_list has "
                         f"{len(object_list)} entries, the world size is {g.size}")
    object_list[:] = g.engine.all_gather_object(obj)


def broadcast_object_list(object_list, src=0, group=None):
    """Every rank's ``object_list`` becomes rank ``src``'s (same length on every rank)."""
    g = _group("broadcast_object_list", group)
    _check_src(src, g, "broadcast_object_list")
    object_list[:] = g.engine.broadcast_object(list(object_list), src)


__all__ = ["ReduceOp", "DistributedError", "init_process_group", "destroy_process_group",
           "is_initialized", "is_available", "is_mpi_available", "is_nccl_available", "get_rank",
           "get_world_size", "get_backend", "all_reduce", "broadcast", "all_gather",
           "all_gather_into_tensor", "reduce_scatter", "reduce_scatter_tensor", "barrier",
           "all_gather_object", "broadcast_object_list", "launched_world_size"]
