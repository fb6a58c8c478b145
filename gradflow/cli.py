"""``gradflow`` command line: ``gradflow train|bench|info`` (also ``python -m gradflow``).

Each subcommand lives in its own module and exposes ``add_arguments(parser)`` and
``run(args) -> int``; this file only dispatches, and holds what every subcommand
shares: bad input of any kind ends in one line, ``gradflow <command>: error: ...``,
and exit status 2 (raise :class:`CommandError` from ``run``; argparse errors, flag
validators and backend selection all end the same way); Ctrl-C outside a
subcommand's own handling ends with status 130 and no traceback.
"""
from __future__ import annotations

import argparse
import importlib
import math
import os
import sys

# name -> (module, one-line help). Adding a subcommand is one entry here.
_COMMANDS = {
    "train": ("gradflow.train", "train a model on a dataset (the main job)"),
    "bench": ("gradflow.bench.cli", "benchmark backends against each other (and PyTorch)"),
    "info": ("gradflow.info", "show backends, devices, threading and cache locations"),
    "warmup": ("gradflow.warmup", "compile the numba backend's kernels into its disk cache now"),
}

USAGE_ERROR = 2      # bad input: flags, environment, files
INTERRUPTED = 130    # 128 + SIGINT


class CommandError(Exception):
    """Bad input to a subcommand: ``main`` prints ``gradflow CMD: error: MESSAGE`` and
    exits with status 2 (no traceback)."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: ``PROG: error: MESSAGE (see PROG --help)``."""

    def error(self, message):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# -- flag validators (argparse ``type=``): argparse names the flag, these say the range --
def int_at_least(low):
    """``type=`` for an integer flag >= ``low``."""
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {v}")
        return v
    parse.__name__ = f"integer >= {low}"
    return parse


def int_in_range(low, high):
    """``type=`` for an integer flag in ``[low, high]``."""
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer in [{low}, {high}], got {text!r}") from None
        if not low <= v <= high:
            raise argparse.ArgumentTypeError(f"must be an integer in [{low}, {high}], got {v}")
        return v
    parse.__name__ = f"integer in [{low}, {high}]"
    return parse


def positive_float(text):
    """``type=`` for a finite float flag > 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return v


# -- backend selection ----------------------------------------------------------------------------------
def check_backend(name, source):
    """The canonical name of backend ``name`` if it runs here, else :class:`CommandError`
    naming where the name came from (``source``: ``"--backend"``, ``"GRADFLOW_BACKEND"``,
    ``"the checkpoint"``) and what is valid."""
    from .backends import available_backends, registered_backends, unavailable_reason
    try:
        reason = unavailable_reason(name)
    except (TypeError, ValueError):
        raise CommandError(f"{source}: unknown backend {name!r}; valid names are "
                           f"{', '.join(registered_backends())}") from None
    if reason is not None:
        raise CommandError(f"{source}: backend {name!r} is not available on this machine "
                           f"({reason}); available here: {', '.join(available_backends())}")
    from .backends import _canonical
    return _canonical(name)


def env_backend():
    """``$GRADFLOW_BACKEND`` (``None`` when unset or empty)."""
    return os.environ.get("GRADFLOW_BACKEND") or None


def build_parser():
    from . import __version__
    parser = _Parser(prog="gradflow", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"gradflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (mod, help_) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_)
        module = importlib.import_module(mod)
        module.add_arguments(p)
        p.set_defaults(_run=module.run, _prog=p.prog)
    return parser


def main(argv=None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args._run(args) or 0)
    except CommandError as e:
        print(f"{args._prog}: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
