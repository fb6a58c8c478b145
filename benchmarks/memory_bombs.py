"""Peak memory of reading crafted "bomb" files (issue 16, item 4), by tracemalloc.

Writes, in a temporary folder, a ~260 KB checkpoint whose one array member
deflates to 256 MiB of zeros and a ~260 KB gzip IDX file of 256 MiB, then reports
the peak traced memory of ``gradflow.load`` (refused under a 64 MiB
``max_inflated_bytes``; allowed under 1 GiB), ``load_metadata`` and ``read_idx``
(default limit; and a 64 MiB ``max_bytes``). Run: ``python benchmarks/memory_bombs.py``
(with ``PYTHONPATH`` at the checkout). Takes a few seconds (compressing the zeros).
"""
from __future__ import annotations

import gzip
import json
import os
import tempfile
import tracemalloc
import zipfile

import gradflow as gf
from gradflow.datasets import read_idx

MIB = 1 << 20


def _npy_header(shape, descr="<f4"):
    text = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    text += " " * (63 - (len(text) + 10) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1")


def _bomb_checkpoint(path, nbytes):
    header = json.dumps({"format": "gradflow-checkpoint", "version": 1, "metadata": {"epoch": 1},
                         "root": {"t": "ndarray", "ref": "a0"}}).encode()
    member = zipfile.ZipInfo("a0.npy")
    member.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("__gradflow__.npy", _npy_header((len(header),), "|u1") + header)
        with z.open(member, "w") as f:
            f.write(_npy_header((nbytes // 4,)))
            chunk = bytes(16 * MIB)
            for _ in range(nbytes // len(chunk)):
                f.write(chunk)


def _peak(fn):
    tracemalloc.start()
    try:
        try:
            out = type(fn()).__name__
        except Exception as e:  # noqa: BLE001 - the refusal is the result
            out = type(e).__name__
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main(nbytes=256 * MIB):
    with tempfile.TemporaryDirectory() as tmp:
        ck = os.path.join(tmp, "bomb.npz")
        _bomb_checkpoint(ck, nbytes)
        idx = os.path.join(tmp, "bomb-idx1-ubyte.gz")
        with open(idx, "wb") as f:
            f.write(gzip.compress(bytes([0, 0, 8, 1]) + nbytes.to_bytes(4, "big") + bytes(nbytes)))
        print(f"checkpoint {os.path.getsize(ck):,} bytes, gzip IDX {os.path.getsize(idx):,} bytes, "
              f"each inflating to {nbytes:,}")
        rows = [("load, max_inflated_bytes=64 MiB", lambda: gf.load(ck, max_inflated_bytes=64 * MIB)),
                ("load, max_inflated_bytes=1 GiB", lambda: gf.load(ck, max_inflated_bytes=1024 * MIB)),
                ("load_metadata", lambda: gf.serialization.load_metadata(ck)),
                ("read_idx (default limit)", lambda: read_idx(idx)),
                ("read_idx, max_bytes=64 MiB", lambda: read_idx(idx, max_bytes=64 * MIB))]
        for name, fn in rows:
            result, peak = _peak(fn)
            print(f"{name:34s} {result:16s} peak {peak:>13,} bytes")


if __name__ == "__main__":
    main()
