"""One worker process per library, so implementations cannot slow each other down.

Seen on the 2-core reference machine: in back-to-back processes, NumPy's
two-thread OpenBLAS ran LeNet's conv2 weight-gradient GEMM
``(16, 6400) @ (6400, 150)`` in 0.6 ms without torch imported and in 120 ms
after ``import torch`` (which loads torch's ``libgomp``); the same 100x+
slowdown also appears without torch whenever another process keeps a core busy
(OpenBLAS threads wait for a descheduled sibling). Peers were measured one
library per process for the same reason. So the CLI measures each group
(``numpy``, ``numba``, ``cupy``, ``torch``, ``torch-compile``) in its own spawned
process, created once per run; the main process only sends cases and collects
rows, and never imports torch (``--same-process`` turns this off). JAX rows run
in :class:`gradflow.bench.peers.JaxWorker`, a subprocess of a possibly different
interpreter, with or without ``--same-process``.

Workers ignore SIGINT: Ctrl-C reaches the main process, which terminates them.
"""
from __future__ import annotations

import multiprocessing
import signal


def group_of(impl) -> str:
    """The worker that measures ``impl``: a ``-compiled`` row shares its backend's."""
    from .compiled import KIND, eager_label
    if impl.kind == KIND:
        return eager_label(impl.label)
    return impl.label if impl.kind == "gradflow" else impl.kind


def _make_sync(impl):
    if impl.kind.startswith("torch"):
        if impl.device == "cuda":
            import torch
            return torch.cuda.synchronize
        return None
    from gradflow.backends import get_backend

    from .compiled import eager_label
    return get_backend(eager_label(impl.label)).synchronize


def library_info(group: str, final: bool = False) -> dict:
    """Versions and thread settings as seen from inside the worker (``final``: when it
    stops; the torch.compile probe runs only at the start)."""
    out = {}
    try:
        if group == "torch":
            import torch
            # str(): torch.__version__ is a TorchVersion; unpickling it would import torch
            out.update(torch=str(torch.__version__), torch_threads=int(torch.get_num_threads()),
                       torch_cuda=bool(torch.cuda.is_available()))
        elif group == "torch-compile":
            from .peers import torch_compile_info
            out.update(torch_compile_info(probe=not final))
        elif group == "numba":
            from .machine import numba_info
            out.update(numba_info())
        elif group == "cupy":
            import cupy
            out.update(cupy=str(cupy.__version__))
    except Exception as e:  # information only
        out[f"{group}_info_error"] = f"{type(e).__name__}: {e}"
    return out


def _worker_main(conn, group):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from . import runner
    syncs = {}
    conn.send(("hello", library_info(group)))
    while True:
        msg = conn.recv()
        if msg is None:
            conn.send(("bye", library_info(group, final=True)))
            return
        case, impl, kw = msg
        if impl.label not in syncs:
            try:
                syncs[impl.label] = _make_sync(impl)
            except Exception:
                syncs[impl.label] = None
        impl.synchronize = syncs[impl.label]
        conn.send(("row", runner.measure_case(case, impl, **kw)))


class Worker:
    def __init__(self, group: str):
        ctx = multiprocessing.get_context("spawn")
        self.group = group
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, group), daemon=True,
                                name=f"gradflow-bench-{group}")
        self.proc.start()
        child.close()
        try:
            kind, self.info = self.conn.recv()
        except (EOFError, OSError):
            self.kill()
            raise EOFError(f"the {group} worker exited while starting "
                           f"(exit code {self.proc.exitcode})") from None

    def alive(self) -> bool:
        return self.proc.is_alive()

    @property
    def exitcode(self):
        return self.proc.exitcode

    def measure(self, case, impl, **kw) -> dict:
        from dataclasses import replace
        self.conn.send((case, replace(impl, synchronize=None), kw))
        kind, row = self.conn.recv()
        return row

    def close(self) -> dict:
        """Stop the worker; returns its final library info (e.g. the Numba threading layer)."""
        info = {}
        try:
            if self.proc.is_alive():
                self.conn.send(None)
                if self.conn.poll(30):
                    info = self.conn.recv()[1]
        except (OSError, EOFError, BrokenPipeError):
            pass
        self.kill()
        return info

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.terminate()
        self.proc.join(10)
        self.conn.close()


class Pool:
    """Workers by group, started on first use; a worker that dies is replaced.
    ``jax_python``/``jax_threads``: the interpreter and thread count of the JAX worker."""

    def __init__(self, jax_python: str | None = None, jax_threads: int | None = None):
        self.workers: dict = {}
        self.info: dict = {}
        self.jax_python, self.jax_threads = jax_python, jax_threads

    def start(self, group: str):
        """The worker for ``group``, started if needed; raises EOFError if it dies at start."""
        w = self.workers.get(group)
        if w is None or not w.alive():
            if w is not None:
                w.kill()
            if group == "jax":
                from .peers import JaxWorker
                w = JaxWorker(self.jax_python, self.jax_threads)
            else:
                w = Worker(group)
            self.workers[group] = w
            self.info.update(w.info)
        return w

    def measure(self, case, impl, **kw) -> dict:
        g = group_of(impl)
        try:
            w = self.start(g)
            return w.measure(case, impl, **kw)
        except (EOFError, OSError, BrokenPipeError):
            w = self.workers.pop(g, None)
            code = None
            if w is not None:
                code = w.exitcode
                w.kill()
            from .runner import error_row
            return error_row(case, impl, f"worker process died (exit code {code})")

    def close(self) -> None:
        for w in self.workers.values():
            self.info.update(w.close())
        self.workers.clear()

    def kill(self) -> None:
        for w in self.workers.values():
            w.kill()
        self.workers.clear()
