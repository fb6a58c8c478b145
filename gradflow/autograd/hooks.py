"""``RemovableHandle``: what ``register_hook`` and the module hook registrations return."""
from __future__ import annotations


class RemovableHandle:
    """``.remove()`` unregisters the hook (also as a context manager), as PyTorch's handle."""
    _next_id = 0

    def __init__(self, table, hook=None):
        RemovableHandle._next_id += 1
        self.id = RemovableHandle._next_id
        self._table = table
        if hook is not None:
            table[self.id] = hook

    def remove(self):
        self._table.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
