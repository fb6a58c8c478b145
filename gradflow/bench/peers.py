"""The peer rows beside PyTorch eager: ``torch.compile`` and JAX ``jit``.

``--compare-torch-compile`` adds ``torch-compile-cpu`` (and ``-cuda``): the same
PyTorch callables as the ``torch-*`` rows through ``torch.compile`` (inductor),
measured in their own worker process (:mod:`gradflow.bench.workers`). The worker
compiles a tiny function when it starts: if that fails (no C++ compiler, say),
the rows are listed as unavailable with the error's first line.

``--compare-jax`` adds ``jax-cpu`` (and ``jax-cuda`` when the jax found has a GPU
platform), measured by ``jax_worker.py``, a standalone script, in a subprocess
of the interpreter that has jax: ``--jax-python PATH``, else
``$GRADFLOW_JAX_PYTHON``, else this interpreter if it can import jax. Without
one the rows are listed as unavailable with the reason, and the run goes on.
Each case's NumPy inputs (weights, batch) are written to an ``.npz`` file the
worker reads, so JAX computes on the same numbers as every other row; the
worker returns the raw timings and the row is filled here.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from . import models, timing

WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jax_worker.py")
JAX_PYTHON_ENV = "GRADFLOW_JAX_PYTHON"


class WorkerUnavailable(EOFError):
    """The worker could not start or could not import its library; ``str()`` says why."""


# -- which interpreter runs JAX ---------------------------------------------------------------
def jax_python(option: str | None = None) -> tuple[str | None, str]:
    """``(interpreter, where it came from)``; ``(None, reason)`` when there is none to try."""
    if option:
        return option, "--jax-python"
    env = os.environ.get(JAX_PYTHON_ENV)
    if env:
        return env, f"${JAX_PYTHON_ENV}"
    if importlib.util.find_spec("jax") is not None:
        return sys.executable, "this interpreter"
    return None, (f"no Python with jax: jax is not importable here (Python "
                  f"{sys.version.split()[0]}); pass --jax-python PATH or set {JAX_PYTHON_ENV}")


def default_threads() -> int:
    """The thread count the other rows use by default: NUMBA_NUM_THREADS if set, else
    the usable CPUs (numba's default; torch's is the physical cores, the same on
    machines without SMT)."""
    env = os.environ.get("NUMBA_NUM_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# -- the JAX worker process -------------------------------------------------------------------
class JaxWorker:
    """``jax_worker.py`` in a subprocess of ``python``; the interface of
    :class:`gradflow.bench.workers.Worker` (``info``, ``measure``, ``close``, ``kill``)."""

    def __init__(self, python: str | None, threads: int | None = None):
        if python is None:
            raise WorkerUnavailable(jax_python()[1])
        self.python = python
        self.tmp = tempfile.mkdtemp(prefix="gradflow-bench-jax-")
        self.err = open(os.path.join(self.tmp, "stderr.txt"), "w+")
        env = dict(os.environ, GRADFLOW_JAX_THREADS=str(threads or default_threads()))
        try:
            self.proc = subprocess.Popen([python, WORKER_SCRIPT], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self.err, text=True,
                                         env=env)
        except OSError as e:
            self._cleanup()
            raise WorkerUnavailable(f"cannot run {python}: {e.strerror or e}") from None
        self._inputs: dict = {}
        hello = self._recv()
        if hello is None or hello.get("kind") != "hello":
            self.kill()
            raise WorkerUnavailable(f"the jax worker ({python}) exited while starting "
                                    f"(exit code {self.exitcode}){self._stderr_tail()}")
        if hello.get("error"):
            self.kill()
            raise WorkerUnavailable(f"cannot import jax with {python} (Python "
                                    f"{hello.get('python')}): {hello['error']}")
        self.info = hello["info"]

    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def exitcode(self):
        return self.proc.poll()

    def _recv(self) -> dict | None:
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def _send(self, obj) -> None:
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def _stderr_tail(self) -> str:
        try:
            self.err.seek(0)
            lines = [l for l in self.err.read().splitlines() if l.strip()]
        except (OSError, ValueError):
            return ""
        return f": {lines[-1][:300]}" if lines else ""

    def _inputs_file(self, case) -> str:
        """The case's NumPy inputs as an .npz (written once per case)."""
        import numpy as np
        from . import workloads
        key = (case.workload, case.size, case.dtype)
        if key not in self._inputs:
            path = os.path.join(self.tmp, f"in{len(self._inputs)}.npz")
            np.savez(path, **workloads.numpy_inputs(case))
            self._inputs[key] = path
        return self._inputs[key]

    def _request(self, case, device, **kw) -> dict:
        spec = models.SPECS.get(case.workload)
        self._send({"workload": case.workload, "mode": case.mode, "size": case.size,
                    "dtype": case.dtype, "spec": [list(l) for l in spec] if spec else None,
                    "inputs": self._inputs_file(case), "device": device,
                    "lr": models.LR, "momentum": models.MOMENTUM, **kw})
        res = self._recv()
        if res is None:
            raise EOFError(f"the jax worker exited{self._stderr_tail()}")
        return res

    def losses(self, case, n: int, device: str = "cpu") -> list:
        """The scalar results (losses) of the first ``n`` calls of ``case``, untimed."""
        res = self._request(case, device, losses=n)
        if res.get("error"):
            raise RuntimeError(f"jax worker, {case.name} at {case.size}: {res['error']}")
        return res["losses"]

    def measure(self, case, impl, *, warmup, repeat, budget_s) -> dict:
        from .runner import error_row, timing_row
        res = self._request(case, impl.device, warmup=warmup, repeat=repeat, budget_s=budget_s)
        row = error_row(case, impl)
        if res.get("error"):
            row["error"] = res["error"]
            return row
        t = timing.Timing(first_call=res["first_call_s"], times=res["times_s"],
                          warmup=res["warmup"])
        return timing_row(row, case, t, res["loss0"])

    def close(self) -> dict:
        try:
            if self.alive():
                self._send(None)
                self._recv()
        except (OSError, ValueError, json.JSONDecodeError):
            pass
        self.kill()
        return {}

    def kill(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        self._cleanup()

    def _cleanup(self) -> None:
        try:
            self.err.close()
        except OSError:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- torch.compile --------------------------------------------------------------------------------
def torch_compile_info(probe: bool = True) -> dict:
    """torch's version and threads, and (``probe``) whether ``torch.compile`` works
    here: a tiny function is compiled once, which also takes inductor's one-time
    start-up out of the first row's first call."""
    import torch
    out = {"torch": str(torch.__version__), "torch_threads": int(torch.get_num_threads()),
           "torch_cuda": bool(torch.cuda.is_available())}
    if not probe:
        return out
    import warnings
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():  # torch's own deprecations (made errors under pytest)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.compile(lambda t: (t * 2).sum(), backend="inductor")(torch.ones(8))
        out["torch_compile_probe_ms"] = round((time.perf_counter() - t0) * 1e3, 1)
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        out["torch_compile_error"] = f"{type(e).__name__}: {msg}"[:300]
    finally:
        import torch._dynamo
        torch._dynamo.reset()
    return out


# -- which peer rows run --------------------------------------------------------------------------
def resolve(compare_torch_compile: bool, compare_jax: bool, pool, jax_pool) -> tuple[list, dict]:
    """The peer implementations to run and ``{name: reason}`` for those that cannot.
    ``pool``: the worker pool (None with ``--same-process``: torch.compile is then
    probed in this process); ``jax_pool``: the pool whose ``"jax"`` worker runs JAX."""
    from .runner import Impl
    impls, skipped = [], {}
    if compare_torch_compile:
        try:
            info = pool.start("torch-compile").info if pool is not None else torch_compile_info()
        except ImportError as e:
            info = {"torch_info_error": f"{type(e).__name__}: {e}"}
        except EOFError as e:
            info = {"torch_info_error": str(e)}
        err = info.get("torch-compile_info_error") or info.get("torch_info_error")
        if err:
            skipped["torch-compile"] = f"cannot import torch: {err}"
        elif info.get("torch_compile_error"):
            skipped["torch-compile"] = f"torch.compile failed: {info['torch_compile_error']}"
        else:
            impls.append(Impl("torch-compile-cpu", "torch-compile", "cpu"))
            if info.get("torch_cuda"):
                impls.append(Impl("torch-compile-cuda", "torch-compile", "cuda",
                                  _torch_sync() if pool is None else None))
            else:
                skipped["torch-compile-cuda"] = "torch.cuda.is_available() is False"
    if compare_jax:
        try:
            info = jax_pool.start("jax").info
        except EOFError as e:
            skipped["jax"] = str(e)
        else:
            impls.append(Impl("jax-cpu", "jax", "cpu"))
            if "cuda" in info.get("jax_platforms", ()):
                impls.append(Impl("jax-cuda", "jax", "cuda"))
            else:
                skipped["jax-cuda"] = "the jax found has no GPU platform (CPU-only jaxlib)"
    return impls, skipped


def _torch_sync():
    import torch
    return torch.cuda.synchronize
