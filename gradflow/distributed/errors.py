"""Errors of :mod:`gradflow.distributed`."""
from __future__ import annotations


class DistributedError(RuntimeError):
    """A collective failed: a peer died, the ranks disagree, or the engine reported an error.
    The message names the rank and the collective."""


class DistributedTimeoutError(DistributedError, TimeoutError):
    """A collective did not complete within the process group's timeout (a rank died, hung,
    or the ranks called different collectives)."""
