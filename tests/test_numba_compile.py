"""How the numba backend compiles: only the kernels and float types a process calls,
serial unless an input is large, announced to listeners and to `gradflow train`'s
progress display, precompiled by `gradflow warmup`. Every case runs in a fresh
process against its own empty NUMBA_CACHE_DIR (no timings are asserted)."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from gradflow.backends import unavailable_reason

pytestmark = pytest.mark.skipif(unavailable_reason("numba") is not None,
                                reason=f"numba backend unavailable: {unavailable_reason('numba')}")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("GRADFLOW_BACKEND", None)
    return env


def _py(code, cache):
    out = subprocess.run([sys.executable, "-c", code], env=_env(cache), cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


_RELU = """
import io, json, numpy as np
from gradflow.backends import get_backend
from gradflow.compile_progress import CompileProgress
be = get_backend('numba')
events = []
be.add_compile_listener(lambda e: events.append([e.kernel, e.dtype, e.parallel, e.phase, e.compiled]))
buf = io.StringIO()
x = np.linspace(-1, 1, 1 << 15).astype(np.{dtype})    # above min_kernel_size, below parallel_min_bytes
with CompileProgress(be, file=buf, bar=False):
    y = be.unary('relu', x)
assert (y == np.maximum(x, 0)).all()
print(json.dumps({{'stats': be.compile_stats(), 'events': events, 'shown': buf.getvalue()}}))
"""


def test_only_the_called_kernel_and_dtype_compile_then_load(tmp_path):
    first = _py(_RELU.format(dtype="float32"), tmp_path)
    assert [(v["kernel"], v["dtype"], v["compiled"])
            for v in first["stats"]["variants"]] == [("relu", "float32", True)]
    assert first["events"] == [["relu", "float32", True, "start", True],
                               ["relu", "float32", True, "end", True]]
    assert "compiling Numba kernels (first run only)" in first["shown"]
    assert "compiled 1 Numba kernel in" in first["shown"]
    again = _py(_RELU.format(dtype="float32"), tmp_path)       # the disk cache: no compile
    assert again["stats"]["compiled"] == 0 and again["stats"]["loaded"] == 1
    assert again["events"] == [["relu", "float32", True, "end", False]]
    assert again["shown"] == ""                                # loading is quiet
    other = _py(_RELU.format(dtype="float64"), tmp_path)       # another dtype: its own variant
    assert [(v["dtype"], v["compiled"]) for v in other["stats"]["variants"]] == [("float64", True)]


def test_small_and_large_inputs_share_one_compiled_kernel(tmp_path):
    res = _py("import json, numpy as np\n"
              "from gradflow.backends import get_backend\n"
              "be = get_backend('numba')\n"
              "small = np.ones(1 << 15, np.float32)                    # the calling thread\n"
              "large = np.ones(2 * be.parallel_min_bytes // 4, np.float32)   # numba's threads\n"
              "assert (be.unary('relu', small) == 1).all() and (be.unary('relu', large) == 1).all()\n"
              "print(json.dumps(be.compile_stats()))", tmp_path)
    assert [(v["kernel"], v["dtype"]) for v in res["variants"]] == [("relu", "float32")]


def test_kernel_rejects_other_dtypes_clearly():
    from gradflow.backends import get_backend
    import numpy as np
    be = get_backend("numba")
    with pytest.raises(TypeError, match="relu: float32 or float64"):
        be.K.relu(np.ones(4, np.int32), np.ones(4, np.int32))


def test_progress_display_without_compile_events_is_silent():
    from gradflow.backends import get_backend
    from gradflow.compile_progress import CompileProgress
    buf = io.StringIO()
    with CompileProgress(get_backend("numpy"), file=buf, bar=False):
        pass
    assert buf.getvalue() == ""


def _warmup(cache, *args):
    return subprocess.run([sys.executable, "-m", "gradflow", "warmup", *args], env=_env(cache),
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_warmup_precompiles_into_the_cache(tmp_path):
    out = _warmup(tmp_path, "--kernels", "relu,relu_bwd", "--jobs", "2")
    assert out.returncode == 0, out.stderr
    assert "2 kernels x float32 ready" in out.stdout
    res = _py("import json, numpy as np\n"
              "from gradflow.backends import get_backend\n"
              "be = get_backend('numba')\n"
              "x = np.linspace(-1, 1, 1 << 15).astype(np.float32)\n"
              "be.relu_backward(x, be.unary('relu', x))\n"
              "print(json.dumps(be.compile_stats()))", tmp_path)
    assert res["compiled"] == 0 and res["loaded"] == 2


@pytest.mark.parametrize("args, message", [
    (("--dtypes", "float16"), "--dtypes 'float16': valid values are float32, float64"),
    (("--jobs", "0"), "--jobs 0: must be at least 1"),
    (("--kernels", "nope"), "--kernels: unknown kernel(s) nope; valid: "),
])
def test_warmup_bad_flags_get_one_line_and_exit_2(tmp_path, args, message):
    out = _warmup(tmp_path, *args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradflow warmup: error: ") and message in lines[0]


@pytest.mark.slow
def test_train_says_it_is_compiling_on_a_cold_cache(tmp_path):
    cmd = [sys.executable, "-m", "gradflow", "train", "--backend", "numba", "--epochs", "1",
           "--limit", "64", "--out", str(tmp_path / "run"), "--no-progress"]
    out = subprocess.run(cmd, env=_env(tmp_path / "cache"), cwd=ROOT, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    assert "compiling Numba kernels (first run only)" in out.stderr
    again = subprocess.run(cmd, env=_env(tmp_path / "cache"), cwd=ROOT, capture_output=True,
                           text=True, timeout=900)
    assert again.returncode == 0 and "compiling Numba kernels" not in again.stderr
