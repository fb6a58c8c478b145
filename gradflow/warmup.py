"""``gradflow warmup``: compile the numba backend's kernels into its disk cache now.

    gradflow warmup                     # every kernel, float32 (the default dtype)
    gradflow warmup --dtypes float32,float64
    gradflow warmup --jobs 4            # compile in 4 processes (each kernel in one of them)
    gradflow warmup --kernels im2col,col2im

The numba backend otherwise compiles each kernel on its first call (about 0.5-5 s
each; a LeNet-5 step needs 14), so the first run on a machine starts slowly.
After a warm-up, runs load the compiled kernels from the cache
(``gradflow info`` shows the folder; ``NUMBA_CACHE_DIR`` overrides it) -- valid for
this machine's CPU and this numba/Python version. ``make install`` runs it.
Exits 0 without compiling anything when numba is not available.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time


def add_arguments(p):
    p.add_argument("--dtypes", default="float32", help="comma-separated: float32, float64 "
                   "(default float32, the default dtype)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="compile in N processes (default: the number of CPU cores, at most 4)")
    p.add_argument("--kernels", default=None, metavar="LIST",
                   help="only these kernels, comma-separated (default: all)")
    p.add_argument("--quiet", action="store_true", help="print only errors")


def _fail(msg):
    print(f"gradflow warmup: error: {msg}", file=sys.stderr)
    return 2


def run(args):
    from .backends import get_backend, unavailable_reason
    dtypes = tuple(d.strip() for d in args.dtypes.split(",") if d.strip())
    bad = [d for d in dtypes if d not in ("float32", "float64")]
    if bad or not dtypes:
        return _fail(f"--dtypes {args.dtypes!r}: valid values are float32, float64")
    if args.jobs is not None and args.jobs < 1:
        return _fail(f"--jobs {args.jobs}: must be at least 1")
    reason = unavailable_reason("numba")
    if reason is not None:
        if not args.quiet:
            print(f"gradflow warmup: nothing to compile, the numba backend is not available "
                  f"({reason})")
        return 0
    be = get_backend("numba")
    names = list(be.R.KERNELS)
    if args.kernels:
        wanted = [n.strip() for n in args.kernels.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in be.R.KERNELS]
        if unknown or not wanted:
            return _fail(f"--kernels: unknown kernel(s) {', '.join(unknown) or '(none given)'}; "
                         f"valid: {', '.join(names)}")
        names = wanted
    t0 = time.perf_counter()
    jobs = min(args.jobs or min(4, os.cpu_count() or 1), len(names))
    if jobs > 1:
        if not args.quiet:
            print(f"gradflow warmup: compiling {len(names)} kernels in {jobs} processes "
                  f"(those already cached are loaded) ...", flush=True)
        codes = _compile_in_processes(names, args, jobs)
        if any(codes):
            print(f"gradflow warmup: error: a compile process failed (exit codes {codes})",
                  file=sys.stderr)
            return 1
        stats = None
    else:
        from .compile_progress import CompileProgress
        with (contextlib.nullcontext() if args.quiet
              else CompileProgress(be, idle_s=3600)):
            be.R.compile_kernels(names, dtypes)
        stats = be.compile_stats()
    if not args.quiet:
        what = f"{len(names)} kernels x {', '.join(dtypes)}"
        extra = "" if stats is None else \
            f" ({stats['compiled']} compiled, {stats['loaded']} already cached)"
        print(f"gradflow warmup: {what} ready in {time.perf_counter() - t0:.1f} s{extra}; "
              f"cache: {be.cache_dir}")
    return 0


def _compile_in_processes(names, args, jobs):
    """Split the kernels round-robin over ``jobs`` child processes (each kernel's cache
    index is written by one process only); their exit codes."""
    base = [sys.executable, "-m", "gradflow", "warmup", "--dtypes", args.dtypes, "--jobs", "1",
            "--quiet"]
    procs = [subprocess.Popen(base + ["--kernels", ",".join(names[j::jobs])])
             for j in range(jobs) if names[j::jobs]]
    return [p.wait() for p in procs]
