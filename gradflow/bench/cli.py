"""Benchmark gradflow's backends against each other (and PyTorch) in one run.

    gradflow bench                                   # every workload, every available backend
    gradflow bench --compare-torch --json out.json --plot out.png
    gradflow bench --backends numpy,numba --compiled --compare-torch --workloads lenet5_step,mlp_step
    gradflow bench --compare-torch --compare-torch-compile --compare-jax \
        --jax-python /path/to/venv-with-jax/bin/python --workloads lenet5_step,mlp_step
    gradflow bench --backends numpy,numba,cupy --compare-torch \\
        --workloads mlp_step,lenet5_step,conv2d --batch-sizes 1,16,64,256,1024 --quick
"""
from __future__ import annotations

import datetime
import json
import os
import sys

from . import peers, workloads

QUICK = {"repeat": 10, "warmup": 1, "max_seconds": 1.0}
DEFAULTS = {"repeat": 20, "warmup": 3, "max_seconds": 3.0}


def _int_list(text: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated integers, got {text!r}") from None
    if not vals or min(vals) < 1:
        raise ValueError(f"expected comma-separated positive integers, got {text!r}")
    return vals


def _names(text: str | None) -> list[str] | None:
    return None if text in (None, "", "all") else [v.strip() for v in text.split(",") if v.strip()]


def add_arguments(p) -> None:
    p.description = __doc__.splitlines()[0]
    p.add_argument("--backends", metavar="LIST",
                   help="comma-separated gradflow backends (numpy,numba,cupy); default: every "
                        "available one (the others are listed with the reason)")
    p.add_argument("--workloads", metavar="LIST",
                   help=f"comma-separated, from: {', '.join(workloads.WORKLOADS)} (default: all)")
    p.add_argument("--batch-sizes", metavar="LIST",
                   help="batch sizes to sweep, e.g. 1,16,64,256,1024 (default: per workload: "
                        "conv2d/maxpool2d/mlp/convnet 64, lenet5 64,256, softmax_xent 256); "
                        "matmul uses --matmul-sizes")
    p.add_argument("--matmul-sizes", metavar="LIST", default="256,512,1024",
                   help="square matrix sizes n for matmul (default: %(default)s)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--repeat", type=int, help=f"timed calls per row (default {DEFAULTS['repeat']}, "
                                              f"--quick {QUICK['repeat']})")
    p.add_argument("--warmup", type=int, help=f"untimed warm-up calls after the first call "
                                              f"(default {DEFAULTS['warmup']}, --quick {QUICK['warmup']})")
    p.add_argument("--max-seconds", type=float, metavar="S",
                   help=f"per row: stop timing after S seconds of timed calls (at least 3 calls; "
                        f"0 = no limit; default {DEFAULTS['max_seconds']:g}, --quick {QUICK['max_seconds']:g})")
    p.add_argument("--time-limit", type=float, metavar="S",
                   help="whole run: start no new row after S seconds (the rest are listed as skipped)")
    p.add_argument("--quick", action="store_true",
                   help="fewer repeats and a 1 s budget per row (for long sweeps, e.g. on a GPU machine)")
    p.add_argument("--compiled", action="store_true",
                   help="add a <backend>-compiled row after each gradflow backend's row of every "
                        "training step (*_step): the same step under gradflow.compile, its "
                        "capture (eager first call, 2 recorded calls, checked first replay) "
                        "timed apart in 'capture ms', never in the median")
    p.add_argument("--compare-torch", action="store_true",
                   help="add PyTorch rows (CPU, and CUDA when available) running the same workloads")
    p.add_argument("--compare-torch-compile", action="store_true",
                   help="add torch.compile rows (inductor; torch-compile-cpu, and -cuda when "
                        "available): the same PyTorch code compiled, compile time in the first "
                        "call; CPU needs a C++ compiler (unavailable rows say why)")
    p.add_argument("--compare-jax", action="store_true",
                   help="add JAX rows (jax-cpu, and jax-cuda with a GPU jaxlib): jax.jit of "
                        "value_and_grad + SGD momentum on the same weights, in a worker process "
                        "of the Python given by --jax-python (listed as unavailable without one)")
    p.add_argument("--jax-python", metavar="PATH",
                   help=f"the Python interpreter that has jax (default: ${peers.JAX_PYTHON_ENV}, "
                        "else this one if it can import jax)")
    p.add_argument("--jax-threads", type=int, metavar="N",
                   help="CPUs the JAX worker may use (XLA sizes its thread pool from its CPU "
                        "affinity; default: $NUMBA_NUM_THREADS, else every usable CPU)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON (schema in benchmarks/README.md)")
    p.add_argument("--plot", metavar="FILE.png", help="plot time (log) vs batch size per backend")
    p.add_argument("--output", "-o", metavar="FILE.md", help="also write the report (markdown) to FILE.md")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--same-process", action="store_true",
                   help="measure everything in this process instead of one worker process per "
                        "library (torch's libgomp can slow NumPy's OpenBLAS down 10x)")


def _settings(args) -> dict:
    base = QUICK if args.quick else DEFAULTS
    s = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in base.items()}
    if s["repeat"] < 1 or s["warmup"] < 0:
        raise ValueError("--repeat must be >= 1 and --warmup >= 0")
    s["budget_s"] = s.pop("max_seconds") or None
    s["dtype"] = args.dtype
    s["time_limit_s"] = args.time_limit
    return s


def _command(args, workload_names, batch_sizes, backends, s) -> str:
    parts = ["gradflow bench"]
    if backends is not None:
        parts.append(f"--backends {','.join(backends)}")
    if args.workloads:
        parts.append(f"--workloads {','.join(workload_names)}")
    if batch_sizes:
        parts.append(f"--batch-sizes {','.join(map(str, batch_sizes))}")
    if "matmul" in workload_names and args.matmul_sizes != "256,512,1024":
        parts.append(f"--matmul-sizes {args.matmul_sizes}")
    if args.dtype != "float32":
        parts.append(f"--dtype {args.dtype}")
    if args.quick:
        parts.append("--quick")
    for flag, key in (("--repeat", "repeat"), ("--warmup", "warmup"), ("--max-seconds", "max_seconds"),
                      ("--time-limit", "time_limit")):
        if getattr(args, key) is not None:
            parts.append(f"{flag} {getattr(args, key):g}")
    for flag in ("compiled", "compare_torch", "compare_torch_compile", "compare_jax"):
        if getattr(args, flag):
            parts.append("--" + flag.replace("_", "-"))
    if args.compare_jax and args.jax_python:
        parts.append(f"--jax-python {args.jax_python}")
    if args.compare_jax and args.jax_threads:
        parts.append(f"--jax-threads {args.jax_threads}")
    return " ".join(parts)


def build_cases(workload_names, batch_sizes, matmul_sizes, dtype):
    out = []
    for name in workload_names:
        w = workloads.WORKLOADS[name]
        sizes = matmul_sizes if w.size_kind == "n" else (batch_sizes or w.default_sizes)
        out += workloads.cases(name, sizes, dtype)
    return out


def _pools(*pools) -> list:
    """The distinct pools among ``pools`` (the JAX pool may be the main one)."""
    return list({id(p): p for p in pools if p is not None}.values())


def run(args) -> int:
    from . import runner
    pool = jax_pool = None
    try:
        s = _settings(args)
        workload_names = _names(args.workloads) or list(workloads.DEFAULT_WORKLOADS)
        bad = [w for w in workload_names if w not in workloads.WORKLOADS]
        if bad:
            raise ValueError(f"unknown workload(s) {', '.join(bad)}; choose from "
                             f"{', '.join(workloads.WORKLOADS)}")
        batch_sizes = _int_list(args.batch_sizes) if args.batch_sizes else None
        matmul_sizes = _int_list(args.matmul_sizes)
        backends = _names(args.backends)
        if args.jax_threads is not None and args.jax_threads < 1:
            raise ValueError(f"--jax-threads must be >= 1, got {args.jax_threads}")
        from .workers import Pool
        jax_kw = {"jax_python": peers.jax_python(args.jax_python)[0],
                  "jax_threads": args.jax_threads}
        pool = None if args.same_process else Pool(**jax_kw)
        # JAX always runs in its own process, --same-process or not
        jax_pool = (pool or Pool(**jax_kw)) if args.compare_jax else None
        impls, unavailable = runner.resolve_impls(backends, args.compare_torch, pool=pool,
                                                  with_compiled=args.compiled)
        more, why = peers.resolve(args.compare_torch_compile, args.compare_jax, pool, jax_pool)
        impls += more
        unavailable.update(why)
    except ValueError as e:
        for p in _pools(pool, jax_pool):
            p.kill()
        print(f"gradflow bench: error: {e}", file=sys.stderr)
        return 2
    try:
        return _run(args, s, workload_names, batch_sizes, matmul_sizes, backends, impls,
                    unavailable, pool, jax_pool)
    finally:
        for p in _pools(pool, jax_pool):
            p.kill()


def _run(args, s, workload_names, batch_sizes, matmul_sizes, backends, impls, unavailable,
         pool, jax_pool=None) -> int:
    from . import compiled, machine, report, runner
    if not impls:
        print("gradflow bench: error: nothing to run; unavailable: " +
              "; ".join(f"{k}: {v}" for k, v in unavailable.items()), file=sys.stderr)
        return 2
    cases = build_cases(workload_names, batch_sizes, matmul_sizes, args.dtype)
    for name, reason in unavailable.items():
        print(f"gradflow bench: {name} not measured: {reason}", file=sys.stderr)
    if args.compiled and not any(compiled.applies(c) for c in cases):
        print("gradflow bench: --compiled: no training-step workload (*_step) selected, so no "
              "compiled rows", file=sys.stderr)
    labels = [i.label for i in impls]
    # isolated: torch/numba facts come from their workers, not from imports here
    info = machine.collect(labels if pool is None else [i for i in labels if i == "cupy"],
                           (args.compare_torch or args.compare_torch_compile) and pool is None)
    info["isolation"] = "process per library" if pool is not None else "single process"
    plan = runner.Plan(impls=impls, cases=cases, unavailable=unavailable)
    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    res = runner.run(plan, warmup=s["warmup"], repeat=s["repeat"], budget_s=s["budget_s"],
                     time_limit_s=s["time_limit_s"], progress=not args.no_progress, pool=pool,
                     jax_pool=jax_pool)
    for p in _pools(pool, jax_pool):
        if not res["interrupted"]:
            p.close()  # final facts, e.g. the Numba threading layer once a kernel ran
        info.update(p.info)
    if pool is None and "numba" in info:  # the threading layer is known only after a parallel kernel ran
        info["numba_threading_layer"] = machine._numba_layer()
    info["loadavg_end"] = machine.load_average()
    rows = res["rows"]
    report.add_ratios(rows)
    doc = {
        "schema": report.SCHEMA,
        "created_utc": created,
        "command": _command(args, workload_names, batch_sizes, backends, s),
        "machine": info,
        "settings": {k: s[k] for k in ("dtype", "repeat", "warmup", "budget_s", "time_limit_s")},
        "backends": [i.label for i in impls],
        "unavailable": unavailable,
        "rows": rows,
        "crossovers": report.crossovers(rows),
        "interrupted": res["interrupted"],
        "skipped": res["skipped"],
        "elapsed_s": res["elapsed_s"],
    }
    text = report.render(doc, describe=lambda w: workloads.WORKLOADS[w].doc)
    print(text, end="")
    if args.output:
        _write(args.output, text)
    if args.json:
        _write(args.json, json.dumps(doc, indent=1, default=str) + "\n")
    if args.plot:
        from .plot import plot
        os.makedirs(os.path.dirname(os.path.abspath(args.plot)), exist_ok=True)
        plot(rows, args.plot, title=f"gradflow bench ({info['cpu']}"
             + (f"; {info['gpu']['name']}" if info.get("gpu") else "") + ")")
    for path in (args.output, args.json, args.plot):
        if path:
            print(f"wrote {path}", file=sys.stderr)
    return 130 if res["interrupted"] else 0


def _write(path: str, text: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
