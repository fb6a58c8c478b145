"""Row access shared by the per-layer tables (summary, receptive field)."""
from __future__ import annotations


class LayerTable:
    """A sequence of rows that also looks rows up by layer name."""

    _what = "table"

    def __init__(self, rows):
        self.rows = rows

    def __iter__(self):
        return iter(self.rows)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, key):
        if isinstance(key, str):
            for r in self.rows:
                if r.name == key:
                    return r
            raise KeyError(f"{self._what}: no layer named {key!r}; layers are "
                           f"{[r.name for r in self.rows]}")
        return self.rows[key]
