"""``--compiled``: the training-step rows timed under ``gradflow.compile``.

For every gradflow backend benchmarked, a ``<backend>-compiled`` row (``impl``
``"gradflow-compiled"``) times the same step as the eager row -- the same
builder, weights and batch -- wrapped in :func:`gradflow.compile`. Only the
``step`` workloads get one: a compiled function replays a whole step (forward,
backward, optimizer update); a lone forward has no step to capture.

A row runs in the eager backend's worker process, right after the eager row of
the same case, in three parts:

1. **Capture**: the compiled step's first :data:`CAPTURE_CALLS` calls -- the eager
   first call, the two recorded calls, the first replay checked against an eager
   rerun -- each synchronised and timed; their sum is ``capture_ms``, the first
   of them ``first_call_ms`` (as every row's first call). Neither enters the
   statistics, as a JIT's first call does not.
2. The usual :func:`gradflow.bench.timing.measure` loop on the replays; its own
   first call (the first unchecked replay) is ``first_replay_ms``.
3. A check that every call after the capture was a replay (``stats["replayed"]``);
   a step that kept re-recording would otherwise be timed as eager.

A :class:`gradflow.capture.CaptureError` becomes the row's ``error``
(``"capture refused: ..."``) and the run goes on.
"""
from __future__ import annotations

import time

from . import timing

KIND = "gradflow-compiled"
SUFFIX = "-compiled"
CAPTURE_CALLS = 4   # eager, recorded, recorded, checked first replay (gradflow/capture/__init__.py)


def applies(case) -> bool:
    """Whether ``case`` gets a compiled row: training steps only."""
    return case.mode == "step"


def impl_for(eager):
    """The compiled twin of the gradflow ``Impl`` ``eager``."""
    from dataclasses import replace
    return replace(eager, label=eager.label + SUFFIX, kind=KIND)


def eager_label(label: str) -> str:
    """``"numba-compiled"`` -> ``"numba"`` (the backend both rows run on)."""
    return label[:-len(SUFFIX)] if label.endswith(SUFFIX) else label


def _timed(fn, sync):
    sync()
    t0 = time.perf_counter()
    r = fn()
    sync()
    return time.perf_counter() - t0, r


def capture(step, synchronize=None):
    """Compile ``step`` (a zero-argument training step) and make the calls that capture
    it. Returns ``(compiled, call_seconds, first_result)``; raises ``CaptureError``
    where the step cannot be replayed."""
    import gradflow
    sync = synchronize or timing._noop
    compiled = gradflow.compile(step)
    seconds, first = [], None
    for i in range(CAPTURE_CALLS):
        dt, r = _timed(compiled, sync)
        seconds.append(dt)
        if i == 0:
            first = r
    return compiled, seconds, first


def measure(case, impl, step, *, warmup, repeat, budget_s):
    """``(timing, extra_fields, first_result)`` for the compiled row of ``case``: the
    timed replays, and the capture fields (see the module docstring)."""
    compiled, seconds, first = capture(step, impl.synchronize)
    done = compiled.stats["replayed"]
    calls = {"n": 0}

    def call():
        calls["n"] += 1
        compiled()
    t = timing.measure(call, synchronize=impl.synchronize, warmup=warmup, repeat=repeat,
                       budget_s=budget_s)
    replayed = compiled.stats["replayed"] - done
    if replayed != calls["n"]:
        from gradflow.capture import CaptureError
        raise CaptureError(f"gradflow.compile replayed {replayed} of the {calls['n']} calls "
                           f"after the capture (stats {compiled.stats}); the row would time "
                           f"eager calls")
    extra = {"capture_ms": sum(seconds) * 1e3, "capture_calls": CAPTURE_CALLS,
             "first_replay_ms": t.first_call * 1e3, "kernels": int(compiled.stats["kernels"]),
             "eager_backend": eager_label(impl.label)}
    t.first_call = seconds[0]
    return t, extra, first
