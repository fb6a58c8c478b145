"""The GPU engine: NCCL through CuPy (``cupy.cuda.nccl``), one GPU per process.

Rendezvous: with more than one rank the NCCL unique id travels over MPI (the job is started
by ``mpiexec``, which also gives every process its rank); a world of one needs none. Each
collective is queued on the current CUDA stream, then an event on that stream is polled until
the group's timeout, after which the communicator is aborted and a
:class:`DistributedTimeoutError` names the rank and the collective.

Not run in this project's CI (no GPU there); NCCL cannot put two ranks on one GPU, so the
multi-rank logic is the MPI engine's, tested on the CPU.
"""
from __future__ import annotations

import time

from .errors import DistributedError, DistributedTimeoutError
from .mpi_engine import Work


def nccl_available():
    try:
        from cupy.cuda import nccl  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "not here"
        return False
    return True


class _EventRequest:
    """An MPI-request-like view of a CUDA event: ``Test()`` is True once the stream passed it."""

    def __init__(self, event):
        self.event = event

    def Test(self):  # noqa: N802 - the MPI request spelling, so Work serves both engines
        return self.event.done


class NCCLEngine:
    name = "nccl"

    def __init__(self, timeout, rank, size, mpi=None):
        try:
            import cupy
            from cupy.cuda import nccl
        except Exception as e:  # noqa: BLE001
            raise RuntimeError(f"gradflow.distributed: the nccl backend needs CuPy with NCCL "
                               f"(pip install 'gradflow[cuda]'): {type(e).__name__}: {e}") from None
        self.cupy, self.nccl = cupy, nccl
        self.timeout = float(timeout)
        self.rank, self.size = rank, size
        self.seq, self.broken = 0, None
        ndev = cupy.cuda.runtime.getDeviceCount()
        cupy.cuda.Device(rank % max(ndev, 1)).use()  # one GPU per process, by local rank
        if size > 1:
            if mpi is None:
                raise RuntimeError("gradflow.distributed: nccl with more than one rank needs MPI for "
                                   "the rendezvous: start the job with mpiexec (and install mpi4py)")
            uid = mpi.broadcast_object(nccl.get_unique_id() if rank == 0 else None, 0)
        else:
            uid = nccl.get_unique_id()
        self.mpi = mpi
        self.comm = nccl.NcclCommunicator(size, uid, rank)
        self._ops = {"sum": nccl.NCCL_SUM, "prod": nccl.NCCL_PROD, "max": nccl.NCCL_MAX,
                     "min": nccl.NCCL_MIN}
        self._types = {"float16": nccl.NCCL_FLOAT16, "float32": nccl.NCCL_FLOAT32,
                       "float64": nccl.NCCL_FLOAT64, "int32": nccl.NCCL_INT32,
                       "int64": nccl.NCCL_INT64, "uint8": nccl.NCCL_UINT8, "int8": nccl.NCCL_INT8}

    def _dtype(self, a, name):
        t = self._types.get(str(a.dtype))
        if t is None:
            raise TypeError(f"gradflow.distributed: {name}: nccl has no {a.dtype} type; valid: "
                            f"{', '.join(self._types)}")
        return t

    def wait(self, req, name, timeout=None):
        limit = self.timeout if timeout is None else float(timeout)
        deadline = time.monotonic() + limit
        while not req.Test():
            if time.monotonic() > deadline:
                self.broken = DistributedTimeoutError(
                    f"gradflow.distributed: {name} (collective #{self.seq}) timed out on rank "
                    f"{self.rank} of {self.size} after {limit:g} s (nccl); aborting the job")
                self.comm.abort()
                raise self.broken
            time.sleep(1e-4)

    def _start(self, name, launch, finish=None, async_op=False):
        if self.broken is not None:
            raise DistributedError(f"gradflow.distributed: {name} after a failed collective "
                                   f"({self.broken})")
        self.seq += 1
        stream = self.cupy.cuda.get_current_stream()
        try:
            launch(stream.ptr)
        except self.nccl.NcclError as e:
            self.broken = DistributedError(f"gradflow.distributed: {name} failed on rank "
                                           f"{self.rank}: {e}")
            raise self.broken from None
        ev = self.cupy.cuda.Event(block=False, disable_timing=True)
        ev.record(stream)
        work = Work(self, _EventRequest(ev), name, finish)
        if not async_op:
            work.wait()
        return work

    def all_reduce(self, a, be, op, name="all_reduce", async_op=False, post=None):
        t = self._dtype(a, name)
        return self._start(name, lambda s: self.comm.allReduce(a.data.ptr, a.data.ptr, a.size, t,
                                                               self._ops[op], s), post, async_op)

    def broadcast(self, a, be, src, name="broadcast", async_op=False):
        t = self._dtype(a, name)
        return self._start(name, lambda s: self.comm.bcast(a.data.ptr, a.size, t, src, s),
                           None, async_op)

    def all_gather(self, out, a, be, name="all_gather", async_op=False):
        t = self._dtype(a, name)
        return self._start(name, lambda s: self.comm.allGather(a.data.ptr, out.data.ptr, a.size, t, s),
                           None, async_op)

    def reduce_scatter(self, out, a, be, op, name="reduce_scatter", async_op=False, post=None):
        t = self._dtype(a, name)
        return self._start(name, lambda s: self.comm.reduceScatter(
            a.data.ptr, out.data.ptr, out.size, t, self._ops[op], s), post, async_op)

    def barrier(self, async_op=False):
        one = self.cupy.zeros(1, dtype=self.cupy.float32)
        return self._start("barrier", lambda s: self.comm.allReduce(
            one.data.ptr, one.data.ptr, 1, self.nccl.NCCL_FLOAT32, self.nccl.NCCL_SUM, s),
            None, async_op)

    def all_gather_object(self, obj, name="all_gather_object"):
        if self.mpi is None:
            return [obj]
        return self.mpi.all_gather_object(obj, name)

    def broadcast_object(self, obj, src, name="broadcast_object"):
        if self.mpi is None:
            return obj
        return self.mpi.broadcast_object(obj, src, name)

    def abort(self, code=1):
        self.comm.abort()
        if self.mpi is not None:
            self.mpi.abort(code)

    def destroy(self):
        if self.broken is None:
            self.comm.destroy()
        if self.mpi is not None:
            self.mpi.destroy()
