"""Reliability: files.

* ``gradflow.load`` of an empty, truncated, corrupted or foreign file raises one
  error type, :class:`gradflow.serialization.CheckpointError` (a missing file is a
  ``FileNotFoundError``); random byte mutations either raise it or load the exact
  original (zip CRCs catch data corruption) -- never another exception type;
* loading never executes code: a pickle whose ``__reduce__`` would create a marker
  file, and ``.npz``/``.npy`` files holding object arrays, are rejected and the
  marker never appears;
* checkpoints are written atomically: a writer process SIGKILLed mid-write leaves
  the previous checkpoint loadable and complete;
* dataset readers (IDX for MNIST/Fashion-MNIST, CIFAR-10 python batches) reject
  malformed files with ``DatasetError``: fuzzed mutations/truncations either load
  with the right shapes, dtypes and label range or raise ``DatasetError``.
"""
from __future__ import annotations

import atexit
import gzip
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow.serialization import CheckpointError

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SCRATCH = tempfile.mkdtemp(prefix="gradflow-reliability-")   # reused by hypothesis examples
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)


def _state():
    gf.manual_seed(3)
    return {"model": {"conv.weight": gf.randn(4, 1, 3, 3), "conv.bias": gf.zeros(4),
                      "fc.weight": gf.randn(10, 16, dtype=gf.float64), "bn.num_batches": gf.tensor(7)},
            "optimizer": {"state": {0: {"step": 3, "momentum_buffer": gf.ones(4)}},
                          "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0, 1]}]},
            "epoch": 2, "loss": float("nan"), "note": "hello", "shape": (1, 2)}


def _assert_same(a, b):
    if isinstance(a, gf.Tensor):
        assert isinstance(b, gf.Tensor) and a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b)
    else:
        assert a == b and type(a) is type(b)


@pytest.fixture(scope="module")
def good_bytes():
    path = os.path.join(_SCRATCH, "good.npz")
    gf.save(_state(), path)
    with open(path, "rb") as f:
        return f.read()


def _write(name, data):
    path = os.path.join(_SCRATCH, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_round_trip_is_exact(tmp_path):
    gf.save(_state(), tmp_path / "ck.npz")
    _assert_same(_state(), gf.load(tmp_path / "ck.npz"))


# ---------------------------------------------------------------------------
# one clear error type for everything that is not a checkpoint
# ---------------------------------------------------------------------------
def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        gf.load(tmp_path / "empty.npz")
    with pytest.raises(FileNotFoundError):
        gf.load(tmp_path / "nope.npz")
    with pytest.raises(CheckpointError, match="directory"):
        gf.load(tmp_path)


def test_every_truncation_raises_checkpoint_error(good_bytes):
    n = len(good_bytes)
    cuts = sorted(set(list(range(0, n, max(1, n // 40))) + list(range(max(0, n - 64), n))))
    for cut in cuts:
        path = _write("trunc.npz", good_bytes[:cut])
        with pytest.raises(CheckpointError):
            gf.load(path)


@FUZZ
@given(data=st.data())
def test_random_corruption_raises_checkpoint_error_or_loads_exactly(data, good_bytes):
    buf = bytearray(good_bytes)
    for _ in range(data.draw(st.integers(1, 4), label="n_mutations")):
        pos = data.draw(st.integers(0, len(buf) - 1), label="pos")
        buf[pos] = data.draw(st.integers(0, 255).filter(lambda b, p=pos: b != buf[p]), label="byte")
    path = _write("mut.npz", bytes(buf))
    try:
        out = gf.load(path)
    except CheckpointError:
        return
    _assert_same(_state(), out)   # only metadata that nothing reads (zip timestamps...) changed


def _foreign_files(tmp):
    files = {
        "text.npz": b"model weights\nlayer1 0.5 0.25\n",
        "png.npz": b"\x89PNG\r\n\x1a\n" + bytes(64),
        "json.npz": json.dumps({"format": "gradflow-checkpoint", "root": {}}).encode(),
        "gzip.npz": gzip.compress(b"\x00" * 1000),
        "random.npz": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "zipheader_only.npz": b"PK\x03\x04" + bytes(40),
    }
    out = {}
    for name, data in files.items():
        out[name] = os.path.join(tmp, name)
        with open(out[name], "wb") as f:
            f.write(data)
    out["plain.npy"] = os.path.join(tmp, "plain.npy")
    np.save(out["plain.npy"], np.arange(10.0))
    out["plain.npz"] = os.path.join(tmp, "plain.npz")
    np.savez(out["plain.npz"], weight=np.ones((3, 3)), bias=np.zeros(3))
    out["other.zip"] = os.path.join(tmp, "other.zip")
    with zipfile.ZipFile(out["other.zip"], "w") as z:
        z.writestr("readme.txt", "not a checkpoint")
    out["torch_like.pt"] = os.path.join(tmp, "torch_like.pt")
    with zipfile.ZipFile(out["torch_like.pt"], "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"weight": [1.0, 2.0]}))
        z.writestr("archive/version", "3\n")
    return out


def test_foreign_files_raise_checkpoint_error(tmp_path):
    for name, path in _foreign_files(str(tmp_path)).items():
        with pytest.raises(CheckpointError):
            gf.load(path)


def _checkpoint_with_header(path, header, **arrays):
    blob = np.frombuffer(header.encode("utf-8"), dtype=np.uint8)
    np.savez(path, __gradflow__=blob, **arrays)


@pytest.mark.parametrize("header, arrays", [
    ('{"format": "gradflow-checkpoint", "version": 1}', {}),                       # no root
    ('{"format": "gradflow-checkpoint", "version": "1", "root": {"t": "v", "v": 1}}', {}),
    ('{"format": "gradflow-checkpoint", "version": 99, "root": {"t": "v", "v": 1}}', {}),
    ('{"format": "something-else", "version": 1, "root": {"t": "v", "v": 1}}', {}),
    ('[1, 2, 3]', {}),
    ('{"format": "gradflow-checkpoint", "version": 1, "root": {"t": "pickle", "v": "x"}}', {}),
    ('{"format": "gradflow-checkpoint", "version": 1, "root": {"t": "tensor", "ref": "a7"}}', {}),
    ('{"format": "gradflow-checkpoint", "version": 1, "root": {"t": "f", "v": null}}', {}),
    ('{"format": "gradflow-checkpoint", "version": 1, "root": {"t": "dict", "items": [[[1], '
     '{"t": "v", "v": 1}]]}}', {}),
    ('{"format": "gradflow-checkpoint", "version": 1, "root": {"t": "tensor", "ref": "a0"}}',
     {"a0": np.array(["not", "numbers"])}),
    ('{"format": "gradflow-checkpoint", "version": 1, "root": {"t": "tensor", "ref": "a0"}}',
     {"a0": np.zeros(2, dtype=[("a", "f4"), ("b", "i4")])}),
    ('{"format": "gradflow-checkpoint", "version": 1, "root": {"t": "ndarray", "ref": "a0"}}',
     {"a0": np.zeros(2, dtype="M8[s]")}),
    ('{"format": "gradflow-checkpoint", "version": 1, "root": {"t": "npscalar", "ref": "a0"}}',
     {"a0": np.zeros(3)}),
    ('{"format": "gradflow-checkpoint", "version": 1, "root": ' + '{"t": "list", "items": [' * 2000
     + '{"t": "v", "v": 1}' + ']}' * 2000 + '}', {}),
    ('{"format": "gradflow-checkpoint", "version": 1, "root": ' + '{"t": "list", "items": [' * 700
     + '{"t": "v", "v": 1}' + ']}' * 700 + '}', {}),
    ('\xff not json', {}),
], ids=lambda v: v[:40] if isinstance(v, str) else "")
def test_malformed_headers_raise_checkpoint_error(tmp_path, header, arrays):
    path = tmp_path / "bad.npz"
    _checkpoint_with_header(path, header, **arrays)
    try:
        gf.load(path)
    except CheckpointError:
        return
    # a nested list 700 deep is legal JSON and a legal structure: loading it is fine too
    assert '"items": [' * 700 in header


# ---------------------------------------------------------------------------
# loading never executes code
# ---------------------------------------------------------------------------
class _Evil:
    """Unpickling this creates ``marker`` (stands for arbitrary code execution)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_pickles_are_rejected_without_running(tmp_path):
    marker = tmp_path / "PWNED"
    payload = pickle.dumps({"weight": _Evil(str(marker))})
    paths = []
    # a bare pickle (what torch.save/pickle.dump produce) ...
    paths.append(tmp_path / "evil.pkl")
    paths[-1].write_bytes(payload)
    # ... an .npy holding an object array ...
    paths.append(tmp_path / "evil.npy")
    np.save(paths[-1], np.array([_Evil(str(marker))], dtype=object), allow_pickle=True)
    # ... a plain .npz with an object array ...
    paths.append(tmp_path / "evil_plain.npz")
    np.savez(paths[-1], w=np.array([_Evil(str(marker))], dtype=object))
    # ... and a real gradflow header whose tensor entry points at an object array
    paths.append(tmp_path / "evil_ck.npz")
    _checkpoint_with_header(paths[-1], json.dumps(
        {"format": "gradflow-checkpoint", "version": 1, "root": {"t": "tensor", "ref": "a0"}}),
        a0=np.array([_Evil(str(marker))], dtype=object))
    # ... a torch-style zip with data.pkl
    paths.append(tmp_path / "evil.pt")
    with zipfile.ZipFile(paths[-1], "w") as z:
        z.writestr("archive/data.pkl", payload)
    assert not marker.exists()
    for p in paths:
        with pytest.raises(CheckpointError):
            gf.load(p)
        assert not marker.exists(), f"loading {p.name} executed code"
    # the payload is live: plain pickle really would have run it
    pickle.loads(payload)["weight"].close()
    assert marker.exists()


def test_save_refuses_arbitrary_objects_and_leaves_target_intact(tmp_path):
    path = tmp_path / "ck.npz"
    gf.save({"w": gf.ones(3)}, path)
    before = path.read_bytes()
    class Local:
        pass
    deep = []
    for _ in range(100_000):
        deep = [deep]
    for bad in ({"f": lambda x: x}, {"a": np.array([object()], dtype=object)}, {"c": Local()},
                {"g": (i for i in range(3))}, {"lock": threading.Lock()}, [gf.ones(2), deep]):
        with pytest.raises((TypeError, ValueError), match="save: cannot store"):
            gf.save(bad, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ck.npz"], "no temporary files left behind"


# ---------------------------------------------------------------------------
# atomic writes: kill the writer mid-write
# ---------------------------------------------------------------------------
_WRITER = r'''
import sys, numpy as np, gradflow as gf
path = sys.argv[1]
big = gf.randn(4_000_000)                       # 16 MB: each save takes a while
i = 0
while True:
    gf.save({"version": i, "big": big, "check": gf.full((3,), float(i))}, path)
    print(i, flush=True)
    i += 1
'''


def _start_writer_and_kill(path, delay):
    """Run _WRITER on ``path`` until it has saved once, SIGKILL it ``delay`` s later,
    reap it; return its (now dead) pid."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stdout.readline()           # one complete checkpoint exists
        assert first.strip().isdigit(), proc.stderr.read()[-2000:]
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    return proc.pid


def _check_intact(path):
    out = gf.load(path)                              # never half-written
    assert out["big"].shape == (4_000_000,)
    np.testing.assert_array_equal(out["check"].numpy(), np.full(3, float(out["version"]), np.float32))


def test_sigkill_mid_write_leaves_previous_checkpoint_intact(tmp_path):
    path = tmp_path / "ck.npz"
    mid_write_kills = 0
    rng = np.random.default_rng(0)
    for trial in range(4):
        _start_writer_and_kill(path, float(rng.uniform(0.05, 0.4)))
        leftovers = [n for n in os.listdir(tmp_path) if n != "ck.npz"]
        mid_write_kills += bool(leftovers)
        _check_intact(path)
        for n in leftovers:                          # temp files are hidden dot-files
            assert n.startswith("."), leftovers
            os.unlink(tmp_path / n)
    assert mid_write_kills >= 1, "no kill landed mid-write; the test proved nothing"


def test_temps_of_killed_saves_are_removed_by_the_next_save(tmp_path):
    """Each SIGKILLed save leaves its full-size temp file; the next save to the same path
    (here: the next writer process, then this one) deletes those of dead writers and
    nothing else, so killed saves never pile up."""
    from gradflow.serialization import _host_tag
    path = tmp_path / "ck.npz"
    rng = np.random.default_rng(1)
    stale_seen, dead_pid = 0, None
    for trial in range(10):
        dead_pid = _start_writer_and_kill(path, float(rng.uniform(0.05, 0.4)))
        leftovers = [n for n in os.listdir(tmp_path) if n != "ck.npz"]
        assert len(leftovers) <= 1, f"stale temps piled up: {leftovers}"   # the writer cleaned older ones
        assert all(n.startswith(".ck.npz.") and n.endswith(".tmp") and f"-{dead_pid}-" in n
                   for n in leftovers), leftovers
        _check_intact(path)
        stale_seen += bool(leftovers)
        if stale_seen >= 2 and leftovers:
            break
    assert stale_seen >= 2 and leftovers, "no kill landed mid-write; the test proved nothing"
    host = _host_tag()
    other_host = "otherhost" if host != "otherhost" else "otherhost2"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        keep = [f".ck.npz.{host}-{live.pid}-abcd1234.tmp",       # a writer still running
                f".ck.npz.{host}-{os.getpid()}-abcd1234.tmp",    # this process (another thread)
                f".ck.npz.{other_host}-{dead_pid}-abcd1234.tmp",  # another machine's
                f".other.npz.{host}-{dead_pid}-abcd1234.tmp",    # another target's
                "ck.npz.tmp", f".ck.npz.{host}-{dead_pid}.tmp", "notes.tmp"]   # not our names
        for n in keep:
            (tmp_path / n).write_bytes(b"x")
        gf.save({"version": 99, "big": gf.zeros(4_000_000), "check": gf.full((3,), 99.0)}, path)
        assert sorted(os.listdir(tmp_path)) == sorted(keep + ["ck.npz"])
        assert gf.load(path)["version"] == 99
    finally:
        live.kill()
        live.wait()


# ---------------------------------------------------------------------------
# memory: declared sizes are checked before anything is allocated or inflated
# ---------------------------------------------------------------------------
_BOMB_MB = 24   # inflated size of the crafted members; each crafted file is ~25 KB on disk


def _npy_header(shape, dtype="<f4"):
    """The .npy v1.0 header (magic, length, dict) for an array of ``shape``."""
    text = repr({"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    text += " " * (63 - (len(text) + 10) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1")


def _crafted_checkpoint(path, members, root, compress=zipfile.ZIP_DEFLATED):
    """A zip holding our header (root ``root``) and raw ``members`` {name: bytes},
    deflated: what a decompression bomb looks like."""
    header = json.dumps({"format": "gradflow-checkpoint", "version": 1, "root": root,
                         "metadata": {"epoch": 7}}).encode()
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("__gradflow__.npy", _npy_header((len(header),), "|u1") + header)
        for name, data in members.items():
            z.writestr(name, data, compress_type=compress, compresslevel=1)
    return path


@pytest.fixture(scope="module")
def bomb_path():
    n = _BOMB_MB << 20
    data = _npy_header((n // 4,)) + bytes(n)
    return _crafted_checkpoint(os.path.join(_SCRATCH, "bomb.npz"), {"a0.npy": data},
                               {"t": "ndarray", "ref": "a0"})


def _peak_bytes(fn):
    """(result or exception, peak bytes traced while ``fn`` ran)."""
    import tracemalloc
    tracemalloc.start()
    try:
        try:
            out = fn()
        except Exception as e:  # noqa: BLE001 - returned for the caller to check
            out = e
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_deflate_bomb_is_refused_before_inflating(bomb_path, monkeypatch):
    assert os.path.getsize(bomb_path) < 200_000
    limit = 4 << 20
    err, peak = _peak_bytes(lambda: gf.load(bomb_path, max_inflated_bytes=limit))
    assert isinstance(err, CheckpointError) and "over the limit" in str(err), err
    assert peak < 2 << 20, f"refusing the bomb allocated {peak:,} bytes"
    monkeypatch.setattr(gf.serialization, "MAX_INFLATED_BYTES", limit)   # the default limit
    with pytest.raises(CheckpointError, match="max_inflated_bytes"):
        gf.load(bomb_path)
    # within the limit it loads, with one copy of the data
    out, peak = _peak_bytes(lambda: gf.load(bomb_path, max_inflated_bytes=64 << 20))
    assert isinstance(out, np.ndarray) and out.shape == ((_BOMB_MB << 20) // 4,) and not out.any()
    assert peak < 1.3 * (_BOMB_MB << 20), f"loading {_BOMB_MB} MB peaked at {peak:,} bytes"


def test_load_metadata_reads_no_array(bomb_path):
    meta, peak = _peak_bytes(lambda: gf.serialization.load_metadata(bomb_path))
    assert meta == {"epoch": 7}
    assert peak < 1 << 20, f"load_metadata allocated {peak:,} bytes"


@pytest.mark.parametrize("compress", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_array_larger_than_its_member_is_refused_before_allocating(tmp_path, compress):
    # the .npy header claims 1 GiB of float32; the member holds 16 bytes
    path = _crafted_checkpoint(tmp_path / "liar.npz", {"a0.npy": _npy_header((1 << 28,)) + bytes(16)},
                               {"t": "ndarray", "ref": "a0"}, compress)
    err, peak = _peak_bytes(lambda: gf.load(path))
    assert isinstance(err, CheckpointError) and "declares shape" in str(err), err
    assert peak < 1 << 20


def test_zip_declaring_a_huge_member_is_refused(tmp_path):
    # patch the central directory: the deflated member says it inflates to 2 GB
    path = _crafted_checkpoint(tmp_path / "huge.npz", {"a0.npy": _npy_header((4,)) + bytes(16)},
                               {"t": "ndarray", "ref": "a0"})
    raw = bytearray(path.read_bytes())
    cd = raw.rindex(b"PK\x01\x02")                   # the last central-directory entry (a0.npy)
    raw[cd + 24:cd + 28] = (2 << 30).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    err, peak = _peak_bytes(lambda: gf.load(path))
    assert isinstance(err, CheckpointError) and "limit" in str(err), err
    assert peak < 1 << 20


def test_gzip_idx_bomb_is_refused_before_inflating_and_read_with_one_copy(tmp_path):
    n = _BOMB_MB << 20
    p = tmp_path / "bomb-idx1-ubyte.gz"
    p.write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") + bytes(n), compresslevel=1))
    assert p.stat().st_size < 200_000
    err, peak = _peak_bytes(lambda: datasets.read_idx(p, max_bytes=4 << 20))
    assert isinstance(err, DatasetError) and "over the limit" in str(err), err
    assert peak < 1 << 20, f"refusing the IDX bomb allocated {peak:,} bytes"
    out, peak = _peak_bytes(lambda: datasets.read_idx(p))
    assert isinstance(out, np.ndarray) and out.shape == (n,) and out.dtype == np.uint8
    assert peak < 1.2 * n, f"reading {_BOMB_MB} MB of IDX peaked at {peak:,} bytes"
    # a header claiming more than the gzip trailer declares is refused before allocating
    p.write_bytes(gzip.compress(bytes([0, 0, 0x0D, 3]) + (1 << 10).to_bytes(4, "big") * 3 + bytes(64)))
    err, peak = _peak_bytes(lambda: datasets.read_idx(p, max_bytes=1 << 40))
    assert isinstance(err, DatasetError) and "gzip trailer" in str(err), err
    assert peak < 1 << 20


# ---------------------------------------------------------------------------
# dataset readers: IDX and CIFAR-10 batches
# ---------------------------------------------------------------------------
datasets = pytest.importorskip("gradflow.datasets", reason="gradflow.datasets has not landed")
DatasetError = datasets.DatasetError

N_IMG = 6


def _idx_bytes(arr, code=0x08):
    arr = np.asarray(arr)
    head = bytes([0, 0, code, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def _mnist_files(rng):
    images = rng.integers(0, 256, (N_IMG, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, N_IMG).astype(np.uint8)
    return _idx_bytes(images), _idx_bytes(labels), images, labels


def _write_mnist(folder, img_bytes, lab_bytes, gz=False):
    os.makedirs(folder, exist_ok=True)
    for f in os.listdir(folder):
        os.unlink(os.path.join(folder, f))
    for stem, data in (("t10k-images-idx3-ubyte", img_bytes), ("t10k-labels-idx1-ubyte", lab_bytes)):
        name = stem + (".gz" if gz else "")
        with open(os.path.join(folder, name), "wb") as f:
            f.write(gzip.compress(data, mtime=0) if gz else data)


def _load_mnist(folder):
    ds = datasets.MNIST(root=folder, train=False)
    return np.asarray(ds.data), np.asarray(ds.targets)


def test_idx_valid_files_load_raw_and_gz(tmp_path):
    img, lab, images, labels = _mnist_files(np.random.default_rng(0))
    for gz in (False, True):
        _write_mnist(str(tmp_path / "m"), img, lab, gz)
        x, y = _load_mnist(str(tmp_path / "m"))
        np.testing.assert_array_equal(x, images)
        np.testing.assert_array_equal(y, labels)


@pytest.mark.parametrize("which, data", [
    ("images", b""),
    ("images", b"\x00\x00\x08"),
    ("images", b"\x00\x00\x08\x03\x00\x00"),                               # truncated header
    ("images", _idx_bytes(np.zeros((N_IMG, 28, 28), np.uint8))[:-1]),      # one byte short
    ("images", _idx_bytes(np.zeros((N_IMG, 28, 28), np.uint8)) + b"\x00"),  # one byte long
    ("images", _idx_bytes(np.zeros((N_IMG, 28), np.uint8))),                # wrong rank
    ("images", _idx_bytes(np.zeros((N_IMG, 28, 28), ">f4"), 0x0D)),         # wrong dtype
    ("images", _idx_bytes(np.zeros((N_IMG + 1, 28, 28), np.uint8))),        # count mismatch
    ("images", b"\x00\x00\x08\x03" + (2**31).to_bytes(4, "big") * 3),       # absurd sizes
    ("images", b"\x00\x00\x08\x03" + (2**32 - 1).to_bytes(4, "big") * 3 + b"\x00" * 8),
    ("images", b"\x1f\x8b\x08\x00garbage that claims to be gzip"),
    ("images", b"<html>404 Not Found</html>"),
    ("labels", _idx_bytes(np.full(N_IMG, 10, np.uint8))),                   # label out of range
    ("labels", _idx_bytes(np.full(N_IMG, -1, np.int8), 0x09)),              # negative labels
    ("labels", _idx_bytes(np.zeros((N_IMG, 2), np.uint8))),                 # wrong rank
])
def test_idx_malformed_files_raise_dataset_error(tmp_path, which, data):
    img, lab, _, _ = _mnist_files(np.random.default_rng(1))
    if which == "images":
        img = data
    else:
        lab = data
    _write_mnist(str(tmp_path / "m"), img, lab)
    with pytest.raises(DatasetError):
        _load_mnist(str(tmp_path / "m"))


def _mutate(data, buf):
    """Apply a drawn list of byte mutations and an optional truncation."""
    buf = bytearray(buf)
    for _ in range(data.draw(st.integers(0, 3), label="n_mutations")):
        pos = data.draw(st.integers(0, len(buf) - 1), label="pos")
        buf[pos] = data.draw(st.integers(0, 255), label="byte")
    if data.draw(st.booleans(), label="truncate"):
        buf = buf[:data.draw(st.integers(0, len(buf)), label="cut")]
    return bytes(buf)


@FUZZ
@given(data=st.data(), target=st.sampled_from(["images", "labels"]), gz=st.booleans())
def test_idx_fuzz_loads_right_shapes_or_raises_dataset_error(data, target, gz):
    img, lab, _, _ = _mnist_files(np.random.default_rng(2))
    if gz:   # mutate the compressed stream itself
        raw = gzip.compress(img if target == "images" else lab, mtime=0)
        mutated = _mutate(data, raw)
        folder = os.path.join(_SCRATCH, "mnist_fuzz_gz")
        _write_mnist(folder, img, lab, gz=True)
        with open(os.path.join(folder, f"t10k-{target}-idx{3 if target == 'images' else 1}-ubyte.gz"),
                  "wb") as f:
            f.write(mutated)
    else:
        if target == "images":
            img = _mutate(data, img)
        else:
            lab = _mutate(data, lab)
        folder = os.path.join(_SCRATCH, "mnist_fuzz")
        _write_mnist(folder, img, lab)
    try:
        x, y = _load_mnist(folder)
    except DatasetError:
        return
    assert x.dtype == np.uint8 and x.ndim == 3 and x.shape[0] == y.shape[0]
    assert y.ndim == 1 and y.dtype == np.int64 and (y.size == 0 or (y.min() >= 0 and y.max() <= 9))


def _cifar_batch(rng, n=N_IMG, protocol=2):
    d = {b"batch_label": b"testing batch 1 of 1",
         b"labels": [int(v) for v in rng.integers(0, 10, n)],
         b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
         b"filenames": [b"img_%d.png" % i for i in range(n)]}
    return pickle.dumps(d, protocol=protocol), d


def test_cifar_batch_valid_and_dataset_folder(tmp_path):
    rng = np.random.default_rng(3)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    expect = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        raw, d = _cifar_batch(rng, protocol=2 if name != "test_batch" else 4)
        (folder / name).write_bytes(raw)
        expect.append(d)
    x, y = datasets.read_cifar_batch(str(folder / "data_batch_1"))
    assert x.shape == (N_IMG, 3, 32, 32) and x.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(x.reshape(N_IMG, -1), expect[0][b"data"])
    ds = datasets.CIFAR10(root=str(tmp_path), train=True)
    assert np.asarray(ds.data).shape == (5 * N_IMG, 3, 32, 32)
    test = datasets.CIFAR10(root=str(tmp_path), train=False)
    np.testing.assert_array_equal(np.asarray(test.targets), expect[-1][b"labels"])


@pytest.mark.parametrize("obj", [
    [1, 2, 3],
    {b"data": np.zeros((2, 3072), np.uint8)},                                # no labels
    {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]},                 # count mismatch
    {b"data": np.zeros((2, 3000), np.uint8), b"labels": [1, 2]},              # wrong width
    {b"data": np.zeros((2, 3072), np.float32), b"labels": [1, 2]},            # wrong dtype
    {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 12]},             # label range
    {b"data": np.zeros((2, 3072), np.uint8), b"labels": ["a", "b"]},          # label type
    {b"data": np.zeros((2, 3072), np.uint8), b"labels": [[1, 2], [3, 4]]},    # label rank
    {b"data": np.zeros((2, 3072), np.uint8), b"labels": {1: 2}},
    {b"data": np.array([[object()]] * 2, dtype=object), b"labels": [1, 2]},
    {b"data": b"raw bytes", b"labels": [1, 2]},
], ids=range(11))
def test_cifar_malformed_batches_raise_dataset_error(tmp_path, obj):
    p = tmp_path / "data_batch_1"
    try:
        p.write_bytes(pickle.dumps(obj, protocol=2))
    except (pickle.PicklingError, TypeError, AttributeError):
        pytest.skip("cannot pickle this case")
    with pytest.raises(DatasetError):
        datasets.read_cifar_batch(str(p))


def test_cifar_malicious_pickle_rejected_without_running(tmp_path):
    marker = tmp_path / "PWNED"
    p = tmp_path / "data_batch_1"
    p.write_bytes(pickle.dumps({b"data": _Evil(str(marker)), b"labels": [1]}, protocol=2))
    with pytest.raises(DatasetError):
        datasets.read_cifar_batch(str(p))
    assert not marker.exists()
    # object array smuggling the payload inside NumPy's own reconstruct path
    p.write_bytes(pickle.dumps({b"data": np.array([_Evil(str(marker))], dtype=object),
                                b"labels": [1]}, protocol=2))
    with pytest.raises(DatasetError):
        datasets.read_cifar_batch(str(p))
    assert not marker.exists()


@FUZZ
@given(data=st.data(), protocol=st.sampled_from([2, 4]))
def test_cifar_fuzz_loads_right_shapes_or_raises_dataset_error(data, protocol):
    raw, d = _cifar_batch(np.random.default_rng(4), protocol=protocol)
    path = _write("data_batch_fuzz", _mutate(data, raw))
    try:
        x, y = datasets.read_cifar_batch(path)
    except DatasetError:
        return
    assert x.dtype == np.uint8 and x.shape[1:] == (3, 32, 32)
    assert y.dtype == np.int64 and y.shape == (x.shape[0],)
    assert y.size == 0 or (y.min() >= 0 and y.max() <= 9)


def _py2_cifar_pickle(data, labels):
    """A batch laid out as the original CIFAR-10 files are: a Python 2 protocol-2
    pickle whose strings (keys, raw array bytes) are py2 ``str`` opcodes."""
    import struct

    def s(b):
        return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<i", len(b)) + b)
    n = len(labels)
    p = b"\x80\x02}q\x00(" + s(b"data")
    p += b"cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85" + s(b"b") + b"\x87R"
    p += b"(K\x01M" + struct.pack("<H", n) + b"M\x00\x0c\x86cnumpy\ndtype\nq\x03" + s(b"u1")
    p += b"K\x00K\x01\x87R(K\x03" + s(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
    p += s(data.tobytes()) + b"tb" + s(b"labels") + b"](" + b"".join(b"K" + bytes([v]) for v in labels)
    return p + b"eu."


def test_cifar_python2_batch_layout_loads(tmp_path):
    rng = np.random.default_rng(5)
    data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
    labels = [3, 0, 9, 1]
    p = tmp_path / "data_batch_1"
    p.write_bytes(_py2_cifar_pickle(data, labels))
    x, y = datasets.read_cifar_batch(str(p))
    np.testing.assert_array_equal(x, data.reshape(4, 3, 32, 32))
    assert y.tolist() == labels


@FUZZ
@given(data=st.data())
def test_cifar_python2_layout_fuzz(data):
    raw = _py2_cifar_pickle(np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072) % 251, [4, 2])
    path = _write("data_batch_py2_fuzz", _mutate(data, raw))
    try:
        x, y = datasets.read_cifar_batch(path)
    except DatasetError:
        return
    assert x.dtype == np.uint8 and x.shape[1:] == (3, 32, 32)
    assert y.dtype == np.int64 and y.shape == (x.shape[0],)
    assert y.size == 0 or (y.min() >= 0 and y.max() <= 9)


_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False),
                       st.text(max_size=4), st.sampled_from(["a0", "a1", "a2", "a3", "nan", "inf"]))


@st.composite
def _header_nodes(draw, depth=0):
    """Nodes of the checkpoint header grammar, often well-formed, sometimes not."""
    if depth > 3 or draw(st.integers(0, 4)) == 0:
        return draw(st.one_of(_json_leaf, st.lists(_json_leaf, max_size=3)))
    t = draw(st.sampled_from(["v", "f", "tensor", "ndarray", "npscalar", "dict", "odict", "list",
                              "tuple", "pickle"]))
    node = {"t": t}
    if t in ("v", "f"):
        node["v"] = draw(_json_leaf)
    elif t in ("tensor", "ndarray", "npscalar"):
        node["ref"] = draw(_json_leaf)
        if draw(st.booleans()):
            node["requires_grad"] = draw(_json_leaf)
    elif t in ("dict", "odict"):
        node["items"] = draw(st.lists(st.one_of(
            st.tuples(st.one_of(st.text(max_size=3), st.integers(0, 3), st.lists(st.integers(), max_size=1)),
                      _header_nodes(depth + 1)).map(list),
            _header_nodes(depth + 1)), max_size=3))
    else:
        node["items"] = draw(st.lists(_header_nodes(depth + 1), max_size=3))
    if draw(st.integers(0, 6)) == 0:
        del node[draw(st.sampled_from(sorted(node)))]
    return node


@FUZZ
@given(root=_header_nodes())
def test_any_header_structure_loads_or_raises_checkpoint_error(root):
    path = os.path.join(_SCRATCH, "hdr.npz")
    _checkpoint_with_header(path, json.dumps({"format": "gradflow-checkpoint", "version": 1,
                                              "root": root}),
                            a0=np.ones((2, 3), np.float32), a1=np.array(7), a2=np.array(["s"]),
                            a3=np.array([True, False]))
    try:
        gf.load(path)
    except CheckpointError:
        pass
