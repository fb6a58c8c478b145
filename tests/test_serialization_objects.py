"""Whole-object checkpoints: ``gradflow.save(model)`` / ``gradflow.load(f)`` with
PyTorch's ``weights_only`` policy -- round trips of modules and optimizers, the
allow-list (``add_safe_globals``, ``safe_globals``), and crafted pickles that must be
refused without running anything."""
from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradflow as gf
import gradflow.nn as nn
from gradflow import serialization
from gradflow.serialization import CheckpointError, WeightsOnlyError
from test_reliability_files import _mutate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Net(nn.Module):
    """A user model: its class is outside gradflow, so loading it needs allowing."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU())
        self.head = nn.Linear(12, 2)
        self.scale = 0.5

    def forward(self, x):
        return self.head(self.features(x).flatten(1)) * self.scale


def _roundtrip(obj, **kw):
    buf = io.BytesIO()
    gf.save(obj, buf)
    buf.seek(0)
    return gf.load(buf, **kw)


def _header(buf):
    import zipfile
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        raw = np.load(io.BytesIO(z.read("__gradflow__.npy")))
    return json.loads(raw.tobytes().decode())


def test_whole_gradflow_model_and_optimizer_round_trip():
    gf.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 2))
    opt = gf.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = gf.randn(4, 1, 4, 4), gf.tensor([0, 1, 1, 0])

    def step(m, o):
        o.zero_grad()
        loss = nn.functional.cross_entropy(m(x), y)
        loss.backward()
        o.step()
        return loss.item()

    step(model, opt)
    ck = _roundtrip({"model": model, "opt": opt, "epoch": 1})   # weights_only=True, the default
    m2, o2 = ck["model"], ck["opt"]
    assert type(m2) is nn.Sequential and ck["epoch"] == 1
    assert o2.param_groups[0]["params"][0] is m2[0].weight        # shared, not copied
    assert isinstance(m2[4].weight, nn.Parameter) and m2[4].weight.requires_grad
    np.testing.assert_array_equal(m2[1].running_mean.numpy(), model[1].running_mean.numpy())
    # training continues identically from the loaded copy (momentum buffers came along)
    for _ in range(2):
        assert step(model, opt) == step(m2, o2)
    for a, b in zip(model.parameters(), m2.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("make", [
    lambda: nn.LSTM(3, 4, num_layers=2), lambda: nn.GRU(3, 4), lambda: nn.Embedding(7, 3),
    lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0),
    lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation="gelu"),
    lambda: nn.MultiheadAttention(8, 2), lambda: nn.PixelShuffle(2),
], ids=["lstm", "gru", "embedding", "transformer", "transformer-gelu", "mha", "pixelshuffle"])
def test_gradflow_layers_load_by_default(make):
    gf.manual_seed(1)
    m = make().eval()
    m2 = _roundtrip(m).eval()
    assert type(m2) is type(m)
    sd, sd2 = m.state_dict(), m2.state_dict()
    assert list(sd) == list(sd2)
    for k in sd:
        np.testing.assert_array_equal(sd[k].numpy(), sd2[k].numpy(), err_msg=k)


def test_scheduler_device_size_dtype_survive():
    model = nn.Linear(2, 2)
    opt = gf.optim.Adam(model.parameters(), lr=0.01)
    sched = gf.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    obj = {"sched": sched, "dev": gf.device("cpu"), "shape": gf.Size([2, 3]), "dtype": gf.float64,
           "arr": np.arange(3, dtype=np.int16), "tuple_key": {("a", 1): 2}}
    back = _roundtrip(obj)
    assert back["sched"].optimizer.param_groups[0]["lr"] == 0.01
    assert back["dev"] == gf.device("cpu") and back["shape"] == (2, 3)
    assert isinstance(back["shape"], gf.Size) and back["dtype"] == np.float64
    assert back["arr"].dtype == np.int16 and back["tuple_key"] == {("a", 1): 2}


def test_state_dicts_stay_format_1_and_whole_objects_are_format_2():
    buf = io.BytesIO()
    gf.save({"model": nn.Linear(2, 3).state_dict(), "epoch": 3}, buf)
    assert _header(buf)["version"] == 1                       # older gradflow still reads it
    buf = io.BytesIO()
    gf.save(nn.Linear(2, 3), buf)
    h = _header(buf)
    assert h["version"] == 2 and h["root"]["t"] == "pickle"


def test_tensors_are_arrays_not_pickled_bytes():
    big = nn.Linear(300, 300)
    buf = io.BytesIO()
    gf.save(big, buf)
    import zipfile
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        sizes = {i.filename: i.file_size for i in z.infolist()}
        pickled = np.load(io.BytesIO(z.read(f"{_header(buf)['root']['ref']}.npy"))).tobytes()
    assert max(sizes.values()) >= 300 * 300 * 4              # the weight is its own member
    assert len(pickled) < 4000                                # the pickle holds structure only
    assert np.asarray(big.weight.numpy()).tobytes()[:64] not in pickled


def test_user_class_needs_allowing():
    model = Net()
    buf = io.BytesIO()
    gf.save(model, buf)
    name = f"{Net.__module__}.{Net.__qualname__}"
    with pytest.raises(WeightsOnlyError) as info:
        gf.load(io.BytesIO(buf.getvalue()))
    msg = str(info.value)
    assert name in msg and "add_safe_globals([Net])" in msg and "weights_only=False" in msg
    assert isinstance(info.value, pickle.UnpicklingError) and isinstance(info.value, CheckpointError)
    with serialization.safe_globals([Net]):
        m2 = gf.load(io.BytesIO(buf.getvalue()))
        assert serialization.get_safe_globals() == [Net]
    assert serialization.get_safe_globals() == []
    x = gf.randn(2, 1, 4, 4)
    model.eval(), m2.eval()
    np.testing.assert_array_equal(model(x).numpy(), m2(x).numpy())
    with pytest.raises(WeightsOnlyError):                     # only inside the block
        gf.load(io.BytesIO(buf.getvalue()))
    serialization.add_safe_globals([(Net, name)])
    try:
        assert type(gf.load(io.BytesIO(buf.getvalue()))) is Net
    finally:
        serialization.clear_safe_globals()
    assert type(gf.load(io.BytesIO(buf.getvalue()), weights_only=False)) is Net


_SAVE_SCRIPT = """
import sys, gradflow as torch, gradflow.nn as nn
class SuperRes(nn.Module):
    def __init__(self, factor=2):
        super().__init__()
        self.conv = nn.Conv2d(1, factor * factor, 3, padding=1)
        self.shuffle = nn.PixelShuffle(factor)
    def forward(self, x):
        return self.shuffle(self.conv(x))
torch.manual_seed(0)
model = SuperRes()
torch.save(model, sys.argv[1])
x = torch.ones(1, 1, 3, 3)
torch.save(model(x).detach(), sys.argv[2])
"""

_LOAD_SCRIPT = """
import sys, gradflow as torch, gradflow.nn as nn
class SuperRes(nn.Module):
    def __init__(self, factor=2):
        super().__init__()
    def forward(self, x):
        return self.shuffle(self.conv(x))
try:
    torch.load(sys.argv[1])
except torch.serialization.WeightsOnlyError as e:
    print("refused:", "__main__.SuperRes" in str(e))
torch.serialization.add_safe_globals([SuperRes])
model = torch.load(sys.argv[1])
same = (model(torch.ones(1, 1, 3, 3)) == torch.load(sys.argv[2])).all().item()
print("same:", same, tuple(model(torch.ones(1, 1, 3, 3)).shape))
"""


def test_model_saved_whole_by_one_script_loads_in_another(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    paths = [str(tmp_path / "model.pt"), str(tmp_path / "out.pt")]
    for script in (_SAVE_SCRIPT, _LOAD_SCRIPT):
        r = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *paths], env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split("\n")[:2] == ["refused: True", "same: True (1, 1, 6, 6)"]


# ---------------------------------------------------------------------------
# crafted pickles: refused, nothing runs
# ---------------------------------------------------------------------------
def _checkpoint_with_pickle(payload, arrays=None):
    """A format-2 checkpoint whose root pickle is ``payload`` (bytes)."""
    header = {"format": "gradflow-checkpoint", "version": 2, "metadata": {},
              "root": {"t": "pickle", "ref": "p"}}
    buf = io.BytesIO()
    np.savez(buf, __gradflow__=np.frombuffer(json.dumps(header).encode(), np.uint8),
             p=np.frombuffer(payload, np.uint8), **(arrays or {}))
    buf.seek(0)
    return buf


class _Payload:
    """Unpickling this calls ``func(*args)`` -- what a malicious file does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


class NotAllowed:
    def __init__(self):
        self.x = 1


def test_reduce_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "PWNED"
    for payload in (_Payload(open, str(marker), "w"), _Payload(os.system, f"touch {marker}"),
                    {"model": [_Payload(eval, f"open({str(marker)!r}, 'w')")]}):
        data = pickle.dumps(payload, protocol=4)
        with pytest.raises(WeightsOnlyError, match="unsupported global") as info:
            gf.load(_checkpoint_with_pickle(data))
        assert ("open" in str(info.value) or "system" in str(info.value) or "eval" in str(info.value))
        assert not marker.exists()
    # the payload is live: weights_only=False (trusted files only) really runs it
    gf.load(_checkpoint_with_pickle(pickle.dumps(_Payload(open, str(marker), "w"))),
            weights_only=False).close()
    assert marker.exists()


def test_class_outside_the_allow_list_is_refused_by_name():
    data = pickle.dumps({"w": NotAllowed()}, protocol=4)
    with pytest.raises(WeightsOnlyError, match=f"{__name__}.NotAllowed|NotAllowed") as info:
        gf.load(_checkpoint_with_pickle(data))
    assert "add_safe_globals([NotAllowed])" in str(info.value)
    with serialization.safe_globals([NotAllowed]):
        assert gf.load(_checkpoint_with_pickle(data))["w"].x == 1


def _ops(*parts):
    return b"\x80\x04" + b"".join(parts) + b"."


def _global(module, name):
    def s(t):
        b = t.encode()
        return b"\x8c" + bytes([len(b)]) + b
    return s(module) + s(name) + b"\x93"


@pytest.mark.parametrize("payload, match", [
    # calling an allowed gradflow class (its __init__ would run): only referencing is allowed
    (_ops(_global("gradflow.nn.layers", "Linear"), b"K\x02K\x03\x86R"), "only be referenced"),
    # a gradflow function as a callable
    (_ops(_global(nn.functional.relu.__module__, "relu"), b"N\x85R"), "only be referenced"),
    # NEWOBJ with constructor arguments
    (_ops(_global("gradflow.nn.layers", "Linear"), b"K\x02\x85\x81"), "constructor arguments"),
    # BUILD (__setstate__) on a builtin object
    (_ops(_global("collections", "OrderedDict"), b")R}b"), "setting the state"),
    # an allowed builtin constructor fed an object that is not builtin data
    (_ops(_global("builtins", "set"), _global("gradflow.nn.layers", "Linear"), b")\x81\x85R"),
     "arguments of type"),
    # a memory bomb through a builtin constructor
    (_ops(_global("builtins", "bytearray"), b"\x8a\x06\x00\x00\x00\x00\x00\x01\x85R"), "arguments of type"),
    # BUILD with non-string keys on a gradflow object
    (_ops(_global("gradflow.nn.layers", "Linear"), b")\x81}K\x01K\x02sb"), "string keys"),
    # getattr / importlib / extension registry / a gradflow module path to something not allowed
    (_ops(_global("gradflow.serialization", "os")), "unsupported global"),
    (_ops(_global("gradflow.serialization", "_write_atomically")), "unsupported global"),
    (_ops(_global("builtins", "getattr")), "unsupported global"),
    (_ops(_global("importlib", "import_module")), "unsupported global"),
    (_ops(b"\x82\x01"), "EXT1"),
    (b"cos\nsystem\n(S'touch /tmp/x'\ntR.", "unsupported global `os.system`"),
    (b"(S'x'\nlp0\n.", "not supported"),               # protocol-0 text opcodes
])
def test_crafted_opcode_sequences_are_refused(payload, match):
    with pytest.raises(CheckpointError, match=match):
        gf.load(_checkpoint_with_pickle(payload))


def test_deeply_nested_pickles_load_or_fail_cleanly():
    n = 20 * sys.getrecursionlimit()
    # a list nested 20,000 deep: the interpreter is a loop, not recursion
    nested = _ops(b"]" * n + b"a" * (n - 1))
    out = gf.load(_checkpoint_with_pickle(nested))
    depth = 0
    while out:
        out, depth = out[0], depth + 1
    assert depth == n - 1
    # a tuple nested that deep as a dict key would recurse when hashed: refused
    key = _ops(b"}" + b"N" + b"\x85" * n + b"K\x01s")
    with pytest.raises(CheckpointError, match="nested too deeply"):
        gf.load(_checkpoint_with_pickle(key))
    # saving something that deep is a clear error, not a crash
    deep = []
    for _ in range(n):
        deep = [deep]
    with pytest.raises(ValueError, match="nested too deeply"):
        gf.save({"m": nn.Linear(1, 1), "deep": deep}, io.BytesIO())


def test_classes_load_under_any_gradflow_path_that_leads_to_them():
    # a file saved when Linear lived elsewhere names that path: it keeps loading while
    # the path still leads to the same class (the public re-export, the defining module)
    for module in ("gradflow.nn", nn.Linear.__module__):
        obj = gf.load(_checkpoint_with_pickle(_ops(_global(module, "Linear"), b")\x81}b")))
        assert type(obj) is nn.Linear


def test_every_gradflow_module_and_optimizer_class_is_allow_listed():
    """The default allow-list is every nn/optim class restorable without running its
    code; a class that grows a ``__setstate__`` or ``__new__`` drops out of it (and
    this test says which)."""
    from gradflow.nn.module import Module
    from gradflow.optim.optimizer import Optimizer
    policy = serialization._default_policy()
    todo, missing = [Module, Optimizer], []
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("gradflow.") and cls not in policy.classes.values():
            missing.append(f"{cls.__module__}.{cls.__qualname__}")
    assert not missing, f"not restorable without running code: {missing}"
    assert len(policy.classes) > 50
    assert all(c.__module__.startswith("gradflow.") for c in policy.classes.values())
    assert not any(isinstance(v, type) for v in policy.values.values())


@pytest.fixture(scope="module")
def good_pickle():
    opt_model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    buf = io.BytesIO()
    gf.save({"model": opt_model, "opt": gf.optim.SGD(opt_model.parameters(), lr=0.1)}, buf)
    import zipfile
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        ref = _header(buf)["root"]["ref"]
        raw = np.load(io.BytesIO(z.read(f"{ref}.npy"))).tobytes()
        arrays = {n[:-4]: np.load(io.BytesIO(z.read(n))) for n in z.namelist()
                  if n.endswith(".npy") and n[:-4] not in ("__gradflow__", ref)}
    return raw, arrays


@FUZZ
@given(data=st.data())
def test_mutated_pickles_load_or_raise_checkpoint_error(data, good_pickle, tmp_path_factory):
    payload, arrays = good_pickle
    try:
        gf.load(_checkpoint_with_pickle(_mutate(data, payload), arrays))
    except CheckpointError:
        pass


def _language_model(T):
    """One PyTorch-style program, run with ``T`` = torch or gradflow."""
    class WordLM(T.nn.Module):
        def __init__(self, vocab=20, width=8):
            super().__init__()
            self.encoder = T.nn.Embedding(vocab, width)
            self.rnn = T.nn.LSTM(width, width, 1)
            self.drop = T.nn.Dropout(0.2)
            self.decoder = T.nn.Linear(width, vocab)

        def forward(self, tokens):
            h, _ = self.rnn(self.drop(self.encoder(tokens)))
            return self.decoder(self.drop(h))
    WordLM.__qualname__ = WordLM.__name__ = f"WordLM_{T.__name__}"   # a findable global
    globals()[WordLM.__qualname__] = WordLM
    return WordLM


@pytest.mark.parametrize("lib", ["torch", "gradflow"])
def test_whole_model_policy_matches_pytorch(lib):
    T = pytest.importorskip(lib)
    WordLM = _language_model(T)
    T.manual_seed(0)
    model = WordLM().eval()
    buf = io.BytesIO()
    T.save(model, buf)
    tokens = T.tensor([[1, 2], [3, 4], [5, 6]])
    expected = model(tokens).detach().numpy()

    def load(**kw):
        buf.seek(0)
        return T.load(buf, **kw)

    with pytest.raises(pickle.UnpicklingError, match=WordLM.__qualname__):
        load()                                           # the user's class is never allowed by default
    everything = [WordLM, T.nn.Embedding, T.nn.LSTM, T.nn.Dropout, T.nn.Linear]
    with T.serialization.safe_globals(everything):
        m2 = load()
    np.testing.assert_array_equal(m2.eval()(tokens).detach().numpy(), expected)
    np.testing.assert_array_equal(load(weights_only=False).eval()(tokens).detach().numpy(), expected)
    with T.serialization.safe_globals([WordLM]):         # the one difference, by design:
        if lib == "torch":                               # gradflow's own layers are allowed
            with pytest.raises(pickle.UnpicklingError):
                load()
        else:
            np.testing.assert_array_equal(load().eval()(tokens).numpy(), expected)
