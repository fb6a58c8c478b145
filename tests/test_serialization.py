"""gradflow.save/load: round trips of module/optimizer state, portability across
backends, atomic writes, and one clear error for corrupt or foreign files."""
from __future__ import annotations

import math
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
from gradflow.serialization import CheckpointError, load_metadata


def _model():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))


def test_roundtrip_nested_structures(tmp_path):
    obj = {"a": gf.tensor([1.0, 2.0]), "b": [1, 2.5, None, "s", True, (3, gf.tensor([7]))],
           "c": {0: {"step": 3, "buf": gf.zeros(2, 2, dtype=gf.float64)}},
           "od": OrderedDict([("z", 1), ("y", 2)]), "np": np.arange(3, dtype=np.int16),
           "nps": np.float32(1.5), "inf": math.inf, "f": 0.1}
    p = tmp_path / "x.npz"
    gf.save(obj, p)
    back = gf.load(p)
    assert back["a"].tolist() == [1.0, 2.0] and back["a"].dtype == np.float32
    assert back["b"][:5] == [1, 2.5, None, "s", True]
    assert isinstance(back["b"][5], tuple) and back["b"][5][1].dtype == np.int64
    assert back["c"][0]["step"] == 3 and back["c"][0]["buf"].dtype == np.float64
    assert isinstance(back["od"], OrderedDict) and list(back["od"]) == ["z", "y"]
    assert back["np"].dtype == np.int16 and isinstance(back["np"], np.ndarray)
    assert back["nps"] == np.float32(1.5) and back["inf"] == math.inf and back["f"] == 0.1


def test_module_and_optimizer_roundtrip(tmp_path):
    m = _model()
    m(gf.randn(2, 1, 4, 4)).sum().backward()
    opt = gf.optim.Adam(m.parameters(), lr=0.01)
    opt.step()
    gf.save({"model": m.state_dict(), "opt": opt.state_dict()}, tmp_path / "ck.pt")
    ck = gf.load(tmp_path / "ck.pt")
    m2 = _model()
    m2.load_state_dict(ck["model"])
    for (k, a), b in zip(m.state_dict().items(), m2.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    opt2 = gf.optim.Adam(m2.parameters(), lr=0.5)
    opt2.load_state_dict(ck["opt"])
    assert opt2.param_groups[0]["lr"] == 0.01 and opt2.param_groups[0]["betas"] == (0.9, 0.999)
    assert opt2.state[m2[0].weight]["step"] == 1


def test_portable_across_backends(tmp_path, backend):
    with gf.backend("numpy"):
        m = _model()
        gf.save(m.state_dict(), tmp_path / "m.npz")
    sd = gf.load(tmp_path / "m.npz")
    assert all(v.backend.name == backend for v in sd.values())
    m2 = _model().to(backend)
    m2.load_state_dict(sd)
    np.testing.assert_array_equal(m2[4].weight.numpy(), m[4].weight.numpy())
    # and back, choosing the backend explicitly
    gf.save(m2.state_dict(), tmp_path / "m2.npz")
    sd2 = gf.load(tmp_path / "m2.npz", map_location="numpy")
    assert sd2["4.bias"].backend.name == "numpy"


def test_exact_path_and_atomic_write(tmp_path):
    p = tmp_path / "sub" / "model.ckpt"
    gf.save({"w": gf.ones(2)}, p)
    assert p.exists() and not (tmp_path / "sub" / "model.ckpt.npz").exists()
    assert oct(os.stat(p).st_mode & 0o777) != "0o600"
    # a failing save leaves the previous file intact and no temp files behind
    with pytest.raises(TypeError, match="cannot store"):
        gf.save({"w": gf.zeros(2), "bad": lambda x: x}, p)
    assert gf.load(p)["w"].tolist() == [1.0, 1.0]
    assert os.listdir(tmp_path / "sub") == ["model.ckpt"]


def test_metadata(tmp_path):
    gf.save({"a": 1}, tmp_path / "m.npz", metadata={"epoch": 3})
    assert load_metadata(tmp_path / "m.npz") == {"epoch": 3}


def test_corrupt_and_foreign_files(tmp_path):
    good = tmp_path / "good.npz"
    gf.save(_model().state_dict(), good)
    raw = good.read_bytes()
    cases = {
        "empty": b"",
        "truncated": raw[: len(raw) // 2],
        "garbage": os.urandom(256),
        "pickle": pickle.dumps({"a": 1}),
        "text": b"hello world\n",
    }
    flipped = bytearray(raw)
    flipped[len(raw) // 3: len(raw) // 3 + 64] = b"\x00" * 64
    cases["flipped"] = bytes(flipped)
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(CheckpointError):
            gf.load(p)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a gradflow checkpoint"):
        gf.load(plain)
    npy = tmp_path / "one.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(CheckpointError):
        gf.load(npy)
    # an .npz holding an object array is refused without unpickling
    evil = tmp_path / "evil.npz"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("__gradflow__.npy", b"")
    with pytest.raises(CheckpointError):
        gf.load(evil)
    with pytest.raises(FileNotFoundError):
        gf.load(tmp_path / "missing.npz")
    with pytest.raises(CheckpointError, match="directory"):
        gf.load(tmp_path)
    assert issubclass(CheckpointError, ValueError)


def test_header_for_other_version_is_refused(tmp_path):
    import json
    blob = np.frombuffer(json.dumps({"format": "gradflow-checkpoint", "version": 99,
                                     "root": {"t": "v", "v": 1}}).encode(), dtype=np.uint8)
    p = tmp_path / "future.npz"
    np.savez(p, __gradflow__=blob)
    with pytest.raises(CheckpointError, match="version 99"):
        gf.load(p)
    blob = np.frombuffer(json.dumps({"format": "gradflow-checkpoint", "version": 1,
                                     "root": {"t": "tensor", "ref": "a7"}}).encode(), dtype=np.uint8)
    np.savez(p, __gradflow__=blob)
    with pytest.raises(CheckpointError, match="malformed"):
        gf.load(p)


def test_format_1_files_as_earlier_writers_laid_them_out_still_load(tmp_path):
    # what gradflow.save wrote before whole-object checkpoints existed: numpy.savez of
    # a JSON header plus one array per tensor, read with the new size-checked reader
    import json
    root = {"t": "odict", "items": [
        ["weight", {"t": "tensor", "ref": "a0", "requires_grad": True, "parameter": True}],
        ["steps", {"t": "tensor", "ref": "a1", "requires_grad": False, "parameter": False}],
        ["lr", {"t": "f", "v": "0.1"}], ["shape", {"t": "tuple", "items": [{"t": "v", "v": 2}]}]]}
    header = json.dumps({"format": "gradflow-checkpoint", "version": 1, "root": root,
                         "metadata": {"epoch": 4}})
    p = tmp_path / "old.npz"
    np.savez(p, __gradflow__=np.frombuffer(header.encode(), np.uint8),
             a0=np.arange(6, dtype=np.float32).reshape(2, 3), a1=np.array(9))
    sd = gf.load(p)
    assert isinstance(sd, OrderedDict) and list(sd) == ["weight", "steps", "lr", "shape"]
    assert isinstance(sd["weight"], nn.Parameter) and sd["weight"].requires_grad
    assert sd["weight"].tolist() == [[0, 1, 2], [3, 4, 5]] and sd["steps"].item() == 9
    assert sd["lr"] == 0.1 and sd["shape"] == (2,) and load_metadata(p) == {"epoch": 4}
