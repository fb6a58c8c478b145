"""Ctrl-C (SIGINT) and SIGTERM for a long-running job that saves its state.

:class:`Interrupts` turns both signals into ``KeyboardInterrupt`` at points the job
chooses, so that a signal never lands in the middle of an optimizer step or a file
save:

- **immediate** (the default): the signal raises at once (setting up: nothing to save);
- **deferred** (``guard.deferred = True``, the training loop): the first signal is only
  noted and :meth:`Interrupts.check`, called at safe points (between batches), raises;
  a second one raises at once (``guard.safe`` is then False: the state in memory may
  be half-updated and must not be saved);
- **critical** (``with guard.critical():`` around every save): signals are only noted,
  however many arrive; leaving the block normally raises if one did -- after the
  file's rename, never before it.

The handlers are installed only in the main thread (elsewhere Python does not allow
it and nothing changes) and the previous ones come back on exit.
"""
from __future__ import annotations

import contextlib
import signal
import threading

_SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None))
                 if s is not None)


class Interrupts:
    """Context manager; see the module docstring."""

    def __init__(self):
        self.signum = None       # the first signal received (None: none yet)
        self.count = 0           # how many were received
        self.deferred = False
        self.safe = True         # False when a signal raised at an arbitrary point
        self._critical = 0
        self._prev = {}

    @property
    def requested(self):
        return self.signum is not None

    @property
    def exit_status(self):
        """The shell's convention: 128 + the signal number (130 for Ctrl-C)."""
        return 128 + int(self.signum or signal.SIGINT)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in _SIGNALS:
                self._prev[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, prev in self._prev.items():
            signal.signal(s, prev)
        self._prev.clear()
        return False

    def _handle(self, signum, frame):
        self.count += 1
        if self.signum is None:
            self.signum = signum
        if self._critical:
            return
        if not self.deferred or self.count > 1:
            self.safe = False
            raise KeyboardInterrupt

    def check(self):
        """Raise ``KeyboardInterrupt`` if a signal was received (a safe point)."""
        if self.signum is not None:
            self.safe = True
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def critical(self, check_after=True):
        """Signals inside the block are only noted; on leaving it normally,
        :meth:`check` runs (unless ``check_after=False``)."""
        self._critical += 1
        try:
            yield self
        finally:
            self._critical -= 1
        if check_after:
            self.check()
