"""The measurement loop: every case on every implementation, one row each.

Implementations are gradflow backends (``numpy``, ``numba``, ``cupy``) and, with
``--compare-torch``, ``torch-cpu`` / ``torch-cuda``; ``--compare-torch-compile`` adds
``torch-compile-cpu`` / ``-cuda`` and ``--compare-jax`` ``jax-cpu`` / ``jax-cuda``
(:mod:`gradflow.bench.peers`); ``--compiled`` adds ``<backend>-compiled`` after each
gradflow backend, for the training steps only (:mod:`gradflow.bench.compiled`). For each case the
implementations run back to back, so the ratios in a row group are taken
within seconds of each other. A failure in one implementation (a missing
kernel, out of memory) becomes an ``error`` row and the run goes on. Ctrl-C
stops the loop and returns what was measured so far.
"""
from __future__ import annotations

import gc
import math
import os
import sys
import time
from dataclasses import dataclass, field

from . import compiled, timing, workloads

TORCH_IMPLS = ("torch-cpu", "torch-cuda")


@dataclass
class Impl:
    label: str              # "numpy", "numba", "cupy", "torch-cpu", "torch-compile-cpu", "jax-cpu", ...
    kind: str               # "gradflow", "gradflow-compiled", "torch", "torch-compile" or "jax"
    device: str             # "cpu" or "cuda"
    synchronize: object = None


@dataclass
class Plan:
    impls: list
    cases: list
    unavailable: dict = field(default_factory=dict)   # label -> reason


def resolve_impls(backends, compare_torch: bool, pool=None,
                  with_compiled: bool = False) -> tuple[list[Impl], dict]:
    """The implementations to run, and ``{name: reason}`` for the ones that cannot run here.
    ``with_compiled``: each gradflow backend is followed by its ``-compiled`` twin.

    With a worker ``pool`` nothing heavy happens in this process: backends are not
    instantiated and torch is imported (and asked about CUDA) in its worker only."""
    from gradflow import backends as B
    impls, skipped = [], {}
    if backends is None:
        names = list(B.available_backends())
        for n in B.registered_backends():
            if n not in names:
                skipped[n] = B.unavailable_reason(n)
    else:
        names = []
        for n in backends:
            reason = B.unavailable_reason(n)
            if reason is None:
                names.append(n)
            else:
                skipped[n] = reason
    for n in names:
        name = B._canonical(n)
        if name in [i.label for i in impls]:  # "cupy,cuda" or a repeated name: once
            continue
        if pool is None:
            be = B.get_backend(name)
            impls.append(Impl(be.name, "gradflow", be.device_type, be.synchronize))
        else:
            impls.append(Impl(name, "gradflow", B._backend_class(name).device_type, None))
        if with_compiled:
            impls.append(compiled.impl_for(impls[-1]))
    if compare_torch:
        if pool is not None:
            try:
                info = pool.start("torch").info
            except EOFError as e:
                info = {"torch_info_error": str(e)}
            err = info.get("torch_info_error")
            have_torch, cuda = err is None, bool(info.get("torch_cuda"))
        else:
            try:
                import torch
                have_torch, cuda, err = True, torch.cuda.is_available(), None
            except ImportError as e:
                have_torch, cuda, err = False, False, f"{type(e).__name__}: {e}"
        if not have_torch:
            skipped["torch"] = f"cannot import torch: {err}"
        else:
            impls.append(Impl("torch-cpu", "torch", "cpu", None))
            if cuda:
                sync = None
                if pool is None:
                    import torch
                    sync = torch.cuda.synchronize
                impls.append(Impl("torch-cuda", "torch", "cuda", sync))
            else:
                skipped["torch-cuda"] = "torch.cuda.is_available() is False"
    return impls, skipped


def _load1():
    """The 1-minute load average when the row finished (other work on the machine)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def _scalar(r):
    """A loss value as a float (None for non-scalar outputs)."""
    try:
        if getattr(r, "ndim", None) == 0 or getattr(r, "shape", None) == ():
            return float(r.item())
    except Exception:
        pass
    return None


def error_row(case, impl: Impl, error: str | None = None) -> dict:
    return {"workload": case.workload, "case": case.name, "mode": case.mode, "size": case.size,
            "size_kind": workloads.WORKLOADS[case.workload].size_kind, "dtype": case.dtype,
            "backend": impl.label, "impl": impl.kind, "device": impl.device,
            "flop": case.flop, "error": error}


def measure_case(case, impl: Impl, *, warmup, repeat, budget_s, builder=None) -> dict:
    """Build ``case`` for ``impl``, time it, and return its row."""
    row = error_row(case, impl)
    is_compiled = impl.kind == compiled.KIND
    if builder is None:
        if impl.kind in ("gradflow", compiled.KIND):
            name = compiled.eager_label(impl.label)
            builder = lambda c: workloads.build_gradflow(c, name)  # noqa: E731
        else:
            builder = lambda c: workloads.build_torch(  # noqa: E731
                c, impl.device, compiled=impl.kind == "torch-compile")
    first, extra = {}, {}
    try:
        fn = builder(case)
        if is_compiled:
            t, extra, first["r"] = compiled.measure(case, impl, fn, warmup=warmup, repeat=repeat,
                                                    budget_s=budget_s)
        else:
            def call():
                r = fn()
                if "r" not in first:
                    first["r"] = r
            t = timing.measure(call, synchronize=impl.synchronize, warmup=warmup, repeat=repeat,
                               budget_s=budget_s)
    except KeyboardInterrupt:
        raise
    except Exception as e:  # one broken implementation must not end the run
        msg = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        if is_compiled:
            from gradflow.capture import CaptureError
            if isinstance(e, CaptureError):
                msg = "capture refused: " + msg
        row["error"] = msg[:300]
        return row
    finally:
        fn = None
        gc.collect()
        if impl.device == "cuda":
            _release_gpu_memory(impl)
    row = timing_row(row, case, t, _scalar(first.get("r")))
    row.update(extra)
    return row


def timing_row(row: dict, case, t: timing.Timing, loss0) -> dict:
    """``row`` (from :func:`error_row`) filled with the statistics of ``t``."""
    med = t.median
    row.update({
        "first_call_ms": t.first_call * 1e3, "median_ms": med * 1e3, "q1_ms": t.q1 * 1e3,
        "q3_ms": t.q3 * 1e3, "iqr_ms": t.iqr * 1e3, "min_ms": t.min * 1e3,
        "repeats": len(t.times), "warmup": t.warmup,
        "times_ms": [round(x * 1e3, 6) for x in t.times],
        "samples_per_s": case.samples / med if case.samples and med > 0 else None,
        "gflops": case.flop / med / 1e9 if case.flop and med > 0 else None,
        "loss0": loss0,
        "loadavg_1m": _load1(),
    })
    return row


def run(plan: Plan, *, warmup=3, repeat=20, budget_s=None, time_limit_s=None,
        progress=True, on_row=None, builder=None, pool=None, jax_pool=None) -> dict:
    """Measure every (case, impl) of ``plan``. Returns ``{"rows", "interrupted", "skipped"}``;
    ``skipped`` counts pairs left out by ``time_limit_s``. With a worker ``pool``
    (:mod:`gradflow.bench.workers`) each library measures in its own process; JAX
    rows always do (``jax_pool``, else ``pool``): JAX may need another interpreter."""
    from tqdm import tqdm
    rows, interrupted, skipped = [], False, 0
    pairs = [(c, i) for c in plan.cases for i in plan.impls
             if i.kind != compiled.KIND or compiled.applies(c)]
    total = len(pairs)
    t_start = time.perf_counter()
    # disable=None: tqdm shows the bar only when stderr is a terminal (no \r noise in logs)
    bar = tqdm(total=total, disable=None if progress else True, file=sys.stderr, unit="run",
               leave=False, dynamic_ncols=True)
    try:
        for case, impl in pairs:
            if time_limit_s is not None and time.perf_counter() - t_start > time_limit_s:
                skipped += 1
                bar.update(1)
                continue
            bar.set_description(f"{case.name} {case.size} {impl.label}")
            kw = dict(warmup=warmup, repeat=repeat, budget_s=budget_s)
            remote = (jax_pool or pool) if impl.kind == "jax" else pool
            if remote is not None:
                row = remote.measure(case, impl, **kw)
            else:
                row = measure_case(case, impl, builder=builder, **kw)
            rows.append(row)
            if on_row is not None:
                on_row(row)
            bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
        for p in (pool, jax_pool):
            if p is not None:
                p.kill()  # a worker may be in the middle of a long call
    finally:
        bar.close()
    return {"rows": rows, "interrupted": interrupted, "skipped": skipped,
            "elapsed_s": time.perf_counter() - t_start}


def _release_gpu_memory(impl: Impl) -> None:
    """Hand cached device memory back so the next implementation starts from the same state."""
    try:
        if impl.kind.startswith("torch"):
            import torch
            torch.cuda.empty_cache()
        else:
            import cupy
            cupy.get_default_memory_pool().free_all_blocks()
    except Exception:
        pass


def finite(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))
