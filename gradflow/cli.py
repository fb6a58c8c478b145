"""``gradflow`` command line: ``gradflow train|bench|info`` (also ``python -m gradflow``).

Each subcommand lives in its own module and exposes ``add_arguments(parser)`` and
``run(args) -> int``; this file only dispatches."""
from __future__ import annotations

import argparse
import importlib
import sys

_COMMANDS = {
    "train": ("gradflow.train", "train a model on a dataset (the main job)"),
    "bench": ("gradflow.bench.cli", "benchmark backends against each other (and PyTorch)"),
    "info": ("gradflow.info", "show backends, devices, threading and cache locations"),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="gradflow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (mod, help_) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_)
        module = importlib.import_module(mod)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    args = parser.parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
