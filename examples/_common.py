"""Shared by the examples: the command line every one of them takes.

``--help`` (what it does and how long it takes), ``--fast`` (a seconds-long run, what
the tests use; also ``GRADFLOW_EXAMPLES_FAST=1``) and ``--backend`` (numpy, numba or
cupy; default ``$GRADFLOW_BACKEND``, else numpy).
"""
import argparse
import os
import sys
import time

# how the durations in each example's --help were measured
TIMED_ON = "timed on a 2-core AMD EPYC VM shared with other jobs, NumPy backend"


def fast_mode():
    """True with ``--fast`` on the command line or ``GRADFLOW_EXAMPLES_FAST=1``."""
    return "--fast" in sys.argv[1:] or os.environ.get("GRADFLOW_EXAMPLES_FAST", "") not in ("", "0")


def example_parser(doc, takes, fast_takes):
    """An ArgumentParser for an example: its docstring as the description, how long a
    run takes (``takes``, ``fast_takes`` with --fast) as the epilog, and --fast and
    --backend."""
    ap = argparse.ArgumentParser(
        description=doc.strip(), formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"Takes {takes}; with --fast {fast_takes} ({TIMED_ON}).")
    ap.add_argument("--fast", action="store_true", default=fast_mode(),
                    help="a short run (the tests use it; also GRADFLOW_EXAMPLES_FAST=1)")
    ap.add_argument("--backend", default=None,
                    help="numpy, numba or cupy (default: $GRADFLOW_BACKEND, else numpy)")
    return ap


def parse(ap, argv=None):
    """Parse the command line and switch to ``--backend`` (an unknown or unavailable
    one is a one-line usage error)."""
    import gradflow
    from gradflow.cli import CommandError, check_backend
    args = ap.parse_args(argv)
    if args.backend:
        try:
            gradflow.set_backend(check_backend(args.backend, "--backend"))
        except CommandError as e:
            ap.error(str(e))
    return args


class Timer:
    """``with Timer("xor_mlp"):`` prints how long the example took at the end."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            print(f"[{self.name}: {time.perf_counter() - self.t0:.1f} s]")
        return False


def eta(done, total, elapsed):
    """'about N s/min left' after ``done`` of ``total`` units took ``elapsed`` seconds."""
    left = elapsed / max(done, 1) * (total - done)
    return f"about {left / 60:.1f} min" if left >= 90 else f"about {left:.0f} s"
