"""Finding, downloading (with sha256 verification) and parsing dataset files."""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import tempfile
import urllib.request
import zlib

import numpy


class DatasetError(RuntimeError):
    """A dataset file is missing, malformed, or failed verification."""


def cache_dir():
    """The user cache folder for downloaded datasets: ``$XDG_CACHE_HOME/gradflow``
    (``~/.cache/gradflow``), or ``%LOCALAPPDATA%\\gradflow`` on Windows."""
    base = os.environ.get("XDG_CACHE_HOME") or (
        os.environ.get("LOCALAPPDATA") if os.name == "nt" else None) or \
        os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gradflow")


def search_dirs(root, name, extra=()):
    """Folders searched for ``name``'s files, in order: ``root``, ``$GRADFLOW_DATA``,
    the user cache dir, then ``extra``; each also with the ``name`` / ``name/raw``
    subfolders torchvision uses."""
    bases = [root] if root else []
    if os.environ.get("GRADFLOW_DATA"):
        bases.append(os.environ["GRADFLOW_DATA"])
    bases.append(cache_dir())
    out = []
    for b in bases:
        b = os.path.expanduser(os.fspath(b))
        for d in (b, os.path.join(b, name), os.path.join(b, name, "raw")):
            if d not in out:
                out.append(d)
    out.extend(e for e in extra if e not in out)
    return out


def find_file(dirs, stem):
    """First existing ``stem`` or ``stem.gz`` in ``dirs`` (None if none)."""
    for d in dirs:
        for cand in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
            p = os.path.join(d, cand)
            if os.path.isfile(p):
                return p
    return None


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(urls, dest, sha256, timeout=60):
    """Fetch the first mirror that answers into ``dest`` (atomically), verifying sha256."""
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    errors = []
    for url in urls:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), suffix=".part")
        try:
            req = urllib.request.Request(url, headers={"User-Agent": "gradflow"})
            with urllib.request.urlopen(req, timeout=timeout) as r, os.fdopen(fd, "wb") as f:
                shutil.copyfileobj(r, f)
            got = sha256_of(tmp)
            if got != sha256:
                raise DatasetError(f"sha256 mismatch for {url}: got {got}, expected {sha256}")
            os.replace(tmp, dest)
            return dest
        except Exception as e:  # noqa: BLE001 - try the next mirror, report all
            errors.append(f"{url}: {e}")
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise DatasetError(f"could not download {os.path.basename(dest)}:\n  " + "\n  ".join(errors))


def _open(path):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


_IDX_DTYPES = {0x08: numpy.uint8, 0x09: numpy.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """Parse an IDX file (raw or gzip): magic 0x0000 <dtype> <ndim>, ndim big-endian
    uint32 sizes, then the data. Raises DatasetError when the header or the length
    does not add up."""
    try:
        with _open(path) as f:
            raw = f.read()
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:  # zlib: corrupt deflate data
        raise DatasetError(f"{path}: cannot read IDX file ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise DatasetError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DatasetError(f"{path}: truncated IDX header")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    dt = numpy.dtype(_IDX_DTYPES[raw[2]])
    expected = math.prod(dims) * dt.itemsize  # Python ints: numpy.prod would overflow int64
    body = raw[4 + 4 * ndim:]
    if len(body) != expected:
        raise DatasetError(f"{path}: IDX header says shape {tuple(dims)} ({expected} bytes of data) "
                           f"but the file holds {len(body)} bytes; truncated or corrupt")
    return numpy.frombuffer(body, dtype=dt).reshape(dims).astype(dt.newbyteorder("="))
