"""Shared by the training examples: the fast-mode switch used by the tests."""
import os
import sys


def fast_mode():
    """True with ``--fast`` on the command line or ``GRADFLOW_EXAMPLES_FAST=1``."""
    return "--fast" in sys.argv[1:] or os.environ.get("GRADFLOW_EXAMPLES_FAST", "") not in ("", "0")
