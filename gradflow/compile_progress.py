"""Progress on stderr while a backend JIT-compiles kernels (the numba backend's first run).

    with CompileProgress(backend):          # or .start() ... .stop(), as gradflow train does
        ...                                 # any kernel compiled in here is shown

Backends that compile announce it through ``add_compile_listener`` /
``remove_compile_listener`` (the numba backend; others have no such methods and
this is then a no-op). Loading kernels from the disk cache is quiet: only a real
compile (a cache miss) opens the display, a tqdm line

    compiling Numba kernels (first run only): 6 done [00:04], im2col float32

that is replaced, once no compile has started for ``idle_s`` seconds, by one
summary line (``compiled 14 Numba kernels in 9.3 s; later runs load them from
<cache dir>``). With ``bar=False`` the same is printed as plain lines.
"""
from __future__ import annotations

import sys
import threading


class CompileProgress:
    def __init__(self, backend, file=None, bar=True, idle_s=1.0):
        self.backend = backend
        self.file = file if file is not None else sys.stderr
        self.use_bar = bar
        self.idle_s = idle_s
        self._lock = threading.Lock()
        self._bar = None
        self._timer = None
        self._open = False
        self._count = 0
        self._seconds = 0.0
        self._listening = False

    # -- start/stop (or use it as a context manager) ----------------------------------
    def start(self):
        add = getattr(self.backend, "add_compile_listener", None)
        if add is not None:
            add(self._on_event)
            self._listening = True
        return self

    def stop(self):
        if self._listening:
            self.backend.remove_compile_listener(self._on_event)
            self._listening = False
        self._finish()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- events ---------------------------------------------------------------------
    def _on_event(self, ev):
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if ev.phase == "start":
                if not self._open:
                    self._begin()
                if self._bar is not None:
                    self._bar.set_postfix_str(ev.label)
                return
            if not (ev.compiled and self._open):
                return
            self._count += 1
            self._seconds += ev.seconds
            if self._bar is not None:
                self._bar.update(1)
            self._timer = threading.Timer(self.idle_s, self._finish)
            self._timer.daemon = True
            self._timer.start()

    def _begin(self):
        self._open = True
        self._count, self._seconds = 0, 0.0
        desc = "compiling Numba kernels (first run only)"
        if self.use_bar:
            try:
                from tqdm import tqdm
            except ImportError:  # pragma: no cover - tqdm is a dependency
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(desc=desc, unit="kernel", file=self.file, leave=False,
                                 bar_format="{desc}: {n} done [{elapsed}]{postfix}")
                return
        print(desc + " ...", file=self.file, flush=True)

    def _finish(self):
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if not self._open:
                return
            self._open = False
            where = getattr(self.backend, "cache_dir", None)
            msg = (f"compiled {self._count} Numba kernel{'s' if self._count != 1 else ''} in "
                   f"{self._seconds:.1f} s" + (f"; later runs load them from {where}" if where
                                               else ""))
            if self._bar is not None:
                self._bar.close()
                self._bar.write(msg, file=self.file)
                self._bar = None
            else:
                print(msg, file=self.file, flush=True)
