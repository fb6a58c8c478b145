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
