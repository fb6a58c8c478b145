"""Starting an MPI job on this machine: what ``gradflow train --nproc N`` runs."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys


def find_mpiexec():
    """Path of ``mpiexec``: beside this Python (where the mpich wheel installs it), then on
    PATH; None when there is none."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.path.isfile(here) and os.access(here, os.X_OK):
        return here
    return shutil.which("mpiexec")


def mpi_unavailable_reason():
    """None when an MPI job can be started here, otherwise what is missing."""
    from .mpi_engine import INSTALL_HINT, mpi_available
    if not mpi_available():
        return f"mpi4py is not installed; {INSTALL_HINT}"
    if find_mpiexec() is None:
        return f"no mpiexec beside {sys.executable} or on PATH; {INSTALL_HINT}"
    return None


def mpiexec_command(nproc, argv):
    """``mpiexec -n nproc <this python> argv...``."""
    exe = find_mpiexec()
    if exe is None:
        raise RuntimeError(f"gradflow: --nproc needs MPI: {mpi_unavailable_reason()}")
    return [exe, "-n", str(int(nproc)), sys.executable, *argv]


def run_mpiexec(nproc, argv, env=None):
    """Run ``python argv...`` as an ``nproc``-process MPI job and return its exit status
    (Ctrl-C is forwarded to every rank by mpiexec)."""
    cmd = mpiexec_command(nproc, argv)
    env = dict(os.environ if env is None else env)
    # the ranks share the machine's cores: one BLAS thread each unless told otherwise
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.Popen(cmd, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return proc.wait()


def argv_from_namespace(parser, args, drop=()):
    """Command-line arguments that make ``parser`` parse back to ``args`` (options left at
    their defaults are omitted; ``drop``: destinations to leave out)."""
    import argparse
    argv, defaults = [], dict(parser._defaults)
    for a in parser._actions:  # as argparse fills a namespace: the first action of a dest wins
        defaults.setdefault(a.dest, a.default)
    for a in parser._actions:
        if not a.option_strings or a.dest in drop or a.dest.startswith("_") or \
                isinstance(a, argparse._HelpAction):
            continue
        value, default = getattr(args, a.dest, None), defaults[a.dest]
        opt = max(a.option_strings, key=len)
        if isinstance(a, argparse._StoreConstAction):  # store_true / store_false / store_const
            if value == a.const and value != default:
                argv.append(opt)
        elif value != default and value is not None:
            argv += [opt, str(value)]
    return argv


def distributed_run(args, run, command="train"):
    """Run ``run(args)`` as this process's part of a data-parallel job.

    ``args.nproc`` > 1 outside an MPI job: start ``mpiexec -n nproc python -m gradflow
    command ...`` with the same arguments and return its status. Inside an MPI job (started
    by ``mpiexec -n N`` or by the above): join the process group, run, leave; ranks other
    than 0 print nothing to stdout. Otherwise: just ``run(args)``."""
    import contextlib

    from .group import destroy_process_group, get_rank, init_process_group, is_initialized, \
        launched_world_size
    nproc = getattr(args, "nproc", None)
    world = launched_world_size()
    if nproc is not None and (nproc < 1 or (world > 1 and nproc != world)):
        print(f"gradflow {command}: error: --nproc {nproc} is invalid" +
              (f" inside an MPI job of {world} processes" if world > 1 else ": it must be >= 1"),
              file=sys.stderr)
        return 2
    if nproc and nproc > 1 and world == 1:
        reason = mpi_unavailable_reason()
        if reason:
            print(f"gradflow {command}: error: --nproc {nproc}: {reason}", file=sys.stderr)
            return 2
        argv = argv_from_namespace(args._train_parser, args, drop={"nproc"})
        return run_mpiexec(nproc, ["-m", "gradflow", command, *argv])
    if world == 1 or is_initialized():
        return run(args)
    init_process_group("mpi")
    quiet = contextlib.redirect_stdout(open(os.devnull, "w")) if get_rank() > 0 else \
        contextlib.nullcontext()
    with quiet as sink:
        rc = run(args)
    if sink is not None:
        sink.close()
    destroy_process_group()
    return rc
