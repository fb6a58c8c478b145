"""The CPU engine: MPI through mpi4py, on the arrays' buffers (no pickling in the hot path).

Every collective is started non-blocking (``Iallreduce``, ``Ibcast``, ...) and then polled
until it completes or the group's timeout passes, so a rank that died or hung turns into a
:class:`DistributedTimeoutError` naming this rank and the collective instead of a hang.
Device (CuPy) arrays are staged through host memory: the MPI wheels are not CUDA-aware.
"""
from __future__ import annotations

import time

import numpy

from .errors import DistributedError, DistributedTimeoutError

INSTALL_HINT = ("the MPI backend needs mpi4py and an MPI library: pip install 'gradflow[distributed]' "
                "(mpi4py and the mpich wheel), or pip install mpi4py mpich")


def load_mpi():
    """The ``mpi4py.MPI`` module (initialising MPI), or a RuntimeError saying what to install."""
    try:
        import mpi4py
        mpi4py.rc.threads = False  # one thread talks to MPI; THREAD_MULTIPLE costs latency
        from mpi4py import MPI
    except (ImportError, RuntimeError, OSError) as e:
        raise RuntimeError(f"gradflow.distributed: {INSTALL_HINT} ({type(e).__name__}: {e})") from None
    return MPI


def mpi_available():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


class Work:
    """A started collective (PyTorch's ``Work``): ``wait()`` blocks until it completes (or
    raises on timeout); ``is_completed()`` polls. ``finish`` runs once after completion
    (copy a staged host buffer back to the device, divide for an average)."""

    def __init__(self, engine, request, name, finish=None):
        self._engine, self._req, self._name, self._finish = engine, request, name, finish
        self._done = request is None

    def is_completed(self):
        if not self._done and self._req.Test():
            self._complete()
        return self._done

    def wait(self, timeout=None):
        if not self._done:
            self._engine.wait(self._req, self._name, timeout)
            self._complete()
        return True

    def _complete(self):
        self._done = True
        if self._finish is not None:
            f, self._finish = self._finish, None
            f()


_OPS = ("sum", "prod", "max", "min")


class MPIEngine:
    """Collectives over an MPI communicator on contiguous array buffers."""

    name = "mpi"

    def __init__(self, timeout):
        MPI = load_mpi()
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD.Dup()
        self.comm.Set_errhandler(MPI.ERRORS_RETURN)
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout = float(timeout)
        self.seq = 0  # collectives started so far: tells which call a stuck rank was in
        self.broken = None  # the error of a failed collective: the job must abort, not finalize
        self._ops = {"sum": MPI.SUM, "prod": MPI.PROD, "max": MPI.MAX, "min": MPI.MIN}

    # -- waiting with a deadline -----------------------------------------------------------------
    def wait(self, req, name, timeout=None):
        limit = self.timeout if timeout is None else float(timeout)
        deadline = time.monotonic() + limit
        spins, pause = 0, 2e-5
        try:
            while not req.Test():
                spins += 1
                if spins < 200:
                    continue  # a short spin first: most collectives complete in microseconds
                if time.monotonic() > deadline:
                    self.broken = DistributedTimeoutError(
                        f"gradflow.distributed: {name} (collective #{self.seq}) timed out on rank "
                        f"{self.rank} of {self.size} after {limit:g} s: another rank died, hung, or "
                        f"called a different collective; aborting the job")
                    raise self.broken
                time.sleep(pause)  # then yield the core: on a busy machine the peer needs it
                pause = min(pause * 2, 1e-3)
        except self.MPI.Exception as e:
            self.broken = DistributedError(
                f"gradflow.distributed: {name} (collective #{self.seq}) failed on rank {self.rank} "
                f"of {self.size}: {e.Get_error_string()}")
            raise self.broken from None

    def _start(self, name, start, finish=None, async_op=False):
        if self.broken is not None:
            raise DistributedError(f"gradflow.distributed: {name} after a failed collective "
                                   f"({self.broken}); the process group is unusable")
        self.seq += 1
        try:
            req = start()
        except self.MPI.Exception as e:
            self.broken = DistributedError(f"gradflow.distributed: {name} failed to start on rank "
                                           f"{self.rank} of {self.size}: {e.Get_error_string()}")
            raise self.broken from None
        work = Work(self, req, name, finish)
        if not async_op:
            work.wait()
        return work

    # -- host staging ------------------------------------------------------------------------------
    @staticmethod
    def _host(a, be):
        """(host buffer, copy-back) for a backend array: numpy arrays are used in place."""
        if isinstance(a, numpy.ndarray):
            return a, None
        h = numpy.ascontiguousarray(be.to_numpy(a))
        return h, (lambda: be.copyto_(a, be.asarray(h)))

    @staticmethod
    def _chain(*fs):
        fs = [f for f in fs if f is not None]
        if not fs:
            return None

        def run_all():
            for f in fs:
                f()
        return run_all

    # -- collectives on contiguous backend arrays ---------------------------------------------------
    def all_reduce(self, a, be, op, name="all_reduce", async_op=False, post=None):
        h, back = self._host(a, be)
        return self._start(name, lambda: self.comm.Iallreduce(self.MPI.IN_PLACE, h, self._ops[op]),
                           self._chain(back, post), async_op)

    def broadcast(self, a, be, src, name="broadcast", async_op=False):
        h, back = self._host(a, be)
        return self._start(name, lambda: self.comm.Ibcast(h, root=src),
                           back if self.rank != src else None, async_op)

    def all_gather(self, out, a, be, name="all_gather", async_op=False):
        """``out`` (world * n elements) receives every rank's ``a`` (n elements), rank order."""
        hi, _ = self._host(a, be)
        ho, back = self._host(out, be)
        return self._start(name, lambda: self.comm.Iallgather(hi, ho), back, async_op)

    def reduce_scatter(self, out, a, be, op, name="reduce_scatter", async_op=False, post=None):
        """``out`` (n elements) receives block ``rank`` of the reduction of every ``a`` (world * n)."""
        hi, _ = self._host(a, be)
        ho, back = self._host(out, be)
        return self._start(name, lambda: self.comm.Ireduce_scatter_block(hi, ho, self._ops[op]),
                           self._chain(back, post), async_op)

    def barrier(self, async_op=False):
        return self._start("barrier", self.comm.Ibarrier, None, async_op)

    # -- Python objects (pickled; for setup, never per step) ------------------------------------------
    def all_gather_object(self, obj, name="all_gather_object"):
        return self._objects(name, lambda: self.comm.allgather(obj))

    def broadcast_object(self, obj, src, name="broadcast_object"):
        return self._objects(name, lambda: self.comm.bcast(obj, root=src))

    def _objects(self, name, call):
        # the pickled collectives are blocking: a barrier with the deadline first, so a
        # missing peer is reported (and the job aborted) rather than waited on forever
        self.barrier()
        self.seq += 1
        try:
            return call()
        except self.MPI.Exception as e:
            self.broken = DistributedError(f"gradflow.distributed: {name} failed on rank "
                                           f"{self.rank}: {e.Get_error_string()}")
            raise self.broken from None

    # -- teardown -------------------------------------------------------------------------------------
    def abort(self, code=1):
        self.MPI.COMM_WORLD.Abort(code)

    def destroy(self):
        if self.broken is None:
            self.comm.Free()
