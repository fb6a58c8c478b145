"""Finding, downloading (with sha256 verification) and parsing dataset files."""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import sys
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


_IDX_DTYPES = {0x08: numpy.uint8, 0x09: numpy.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_IDX_BYTES = 1 << 30
"""Default limit on the data an IDX file may declare (1 GiB; MNIST's largest file is
47 MB), checked before anything is allocated or inflated; ``read_idx(max_bytes=)``
reads a larger one."""
_CHUNK = 1 << 20


def write_idx(path, array, gz=None):
    """Write ``array`` as an IDX file (the MNIST format :func:`read_idx` parses):
    magic 0x0000 <dtype code> <ndim>, the sizes as big-endian uint32, then the data
    big-endian. Gzipped when ``gz`` is true, or by default when ``path`` ends in
    ``.gz``. Written to a temporary file beside ``path`` and renamed, so a reader
    never sees half a file. Valid dtypes: uint8, int8, int16, int32, float32, float64;
    at least one dimension."""
    arr = numpy.asarray(array)  # not ascontiguousarray: it would make a 0-d array 1-d
    codes = {numpy.dtype(v).newbyteorder("=").str: k for k, v in _IDX_DTYPES.items()}
    code = codes.get(arr.dtype.newbyteorder("=").str)
    if code is None or arr.ndim == 0 or arr.ndim > 255:
        raise DatasetError(f"write_idx({path!r}): cannot store a {arr.dtype} array of shape "
                           f"{arr.shape}; valid: 1..255 dimensions of uint8, int8, int16, int32, "
                           f"float32 or float64")
    gz = os.fspath(path).endswith(".gz") if gz is None else bool(gz)
    head = bytes([0, 0, code, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    body = arr.astype(arr.dtype.newbyteorder(">"), copy=False).tobytes()  # C order
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as raw:
            if gz:
                with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as f:  # mtime 0: same bytes each run
                    f.write(head)
                    f.write(body)
            else:
                raw.write(head)
                raw.write(body)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the data from other users
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _read_exact(f, n):
    data = f.read(n)
    return data if len(data) == n else None


def read_idx(path, max_bytes=None):
    """Parse an IDX file (raw or gzip): magic 0x0000 <dtype> <ndim>, ndim big-endian
    uint32 sizes, then the data. Raises DatasetError when the header or the length
    does not add up.

    Memory: the declared size is checked first -- against ``max_bytes`` (default
    :data:`MAX_IDX_BYTES`), against the file's length (raw) or the gzip trailer's
    uncompressed size (gzip) -- so a small crafted file cannot make the reader
    allocate or inflate gigabytes; the data is then read straight into the returned
    array (one copy, byte-swapped in place)."""
    limit = MAX_IDX_BYTES if max_bytes is None else int(max_bytes)
    try:
        with open(path, "rb") as raw:
            size = os.fstat(raw.fileno()).st_size
            gz = raw.read(2) == b"\x1f\x8b"
            trailer = None
            if gz and size >= 18:  # 10-byte header + 8-byte trailer (CRC32, ISIZE)
                raw.seek(-4, os.SEEK_END)
                trailer = int.from_bytes(raw.read(4), "little")
            raw.seek(0)
            with (gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw) as f:
                return _parse_idx(f, path, size, gz, trailer, limit)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:  # zlib: corrupt deflate data
        raise DatasetError(f"{path}: cannot read IDX file ({e})") from None


def _parse_idx(f, path, size, gz, trailer, limit):
    head = _read_exact(f, 4)
    if head is None or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES or head[3] == 0:
        raise DatasetError(f"{path}: not an IDX file (bad magic number {(head or b'').hex() or 'empty'})")
    ndim = head[3]
    sizes = _read_exact(f, 4 * ndim)
    if sizes is None:
        raise DatasetError(f"{path}: truncated IDX header")
    dims = [int.from_bytes(sizes[4 * i:4 * i + 4], "big") for i in range(ndim)]
    stored = numpy.dtype(_IDX_DTYPES[head[2]])
    expected = math.prod(dims) * stored.itemsize  # Python ints: numpy.prod would overflow int64
    total = 4 + 4 * ndim + expected
    if not gz and total != size:
        raise DatasetError(f"{path}: IDX header says shape {tuple(dims)} ({expected} bytes of data) "
                           f"but the file holds {size - 4 - 4 * ndim} bytes; truncated or corrupt")
    if gz and trailer is not None and total % (1 << 32) != trailer:
        raise DatasetError(f"{path}: IDX header says shape {tuple(dims)} ({total} bytes in all) but "
                           f"the gzip trailer declares {trailer} bytes (mod 2**32); truncated or corrupt")
    if expected > limit:
        raise DatasetError(f"{path}: IDX header says shape {tuple(dims)} ({expected:,} bytes), over "
                           f"the limit of {limit:,} bytes; if the file is genuine, read it with "
                           f"gradflow.datasets.read_idx(path, max_bytes=...)")
    out = numpy.empty(math.prod(dims), stored.newbyteorder("="))
    buf = memoryview(out.view(numpy.uint8))
    pos = 0
    while pos < expected:
        n = f.readinto(buf[pos:pos + min(_CHUNK, expected - pos)])
        if not n:
            raise DatasetError(f"{path}: IDX header says shape {tuple(dims)} ({expected} bytes of "
                               f"data) but the file holds {pos} bytes; truncated or corrupt")
        pos += n
    if f.read(1):
        raise DatasetError(f"{path}: IDX file holds more than the {expected} bytes of data its "
                           f"header says (shape {tuple(dims)}); truncated or corrupt")
    if stored.byteorder == ">" and sys.byteorder == "little":
        out.byteswap(inplace=True)
    return out.reshape(dims)
