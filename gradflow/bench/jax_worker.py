"""The JAX rows' worker: a standalone script run by any Python that has jax.

    python gradflow/bench/jax_worker.py      # started by gradflow bench --compare-jax

It imports neither gradflow nor numba (JAX may live in another interpreter,
e.g. a Python 3.12 venv), only NumPy, jax and gradflow's own stdlib-only
``timing.py`` beside it (loaded by path), so the rows follow the same timing
rules as every other row. Protocol: JSON lines. The worker first writes
``{"kind": "hello", "info": {...}}`` (or ``{"kind": "hello", "error": ...}``
when jax cannot be imported), then answers each request line

    {"workload", "mode", "size", "dtype", "spec": layer list | null,
     "inputs": "file.npz", "device": "cpu" | "cuda", "lr", "momentum",
     "warmup", "repeat", "budget_s"}

with ``{"kind": "row", "first_call_s", "times_s", "warmup", "loss0"}`` or
``{"kind": "row", "error": "Type: first line"}``; a request with ``"losses": k``
instead makes ``k`` untimed calls and answers ``{"kind": "row", "losses": [...]}``
(the scalar results, for checking against gradflow); a ``null`` line ends it.
The ``.npz`` holds the NumPy inputs the main process made with the same seeds
as gradflow's rows: ``p0 .. pK`` (PyTorch-layout weights), ``x``, ``y`` for the
training steps; the op workload's arrays by name otherwise.

What one call is (all inside one ``jax.jit``; every call ends in
``block_until_ready``, JAX dispatch being asynchronous):

- ``*_step``: ``jax.value_and_grad`` of the mean softmax cross-entropy and the
  SGD-momentum update with PyTorch's rule (``v = momentum * v + g``,
  ``p -= lr * v``; ``v`` starts at zero, which is PyTorch's first step). The
  parameters and momentum buffers are donated, so XLA updates them in place.
- ``conv2d`` / ``maxpool2d`` ``fwd``: the plain forward (JAX has no tape, so
  nothing is recorded); ``fwd+bwd``: ``jax.vjp`` with the fixed upstream
  gradient, returning the output *and* the gradients (else XLA would drop
  the forward). ``softmax_xent``: ``value_and_grad``. ``matmul``: ``a @ b``.

Threads: XLA's CPU client sizes its intra-op pool from the CPUs this process
may run on, and its thread flags did not bound the convolution kernels in
jax 0.12 (shared/bench/PEERS notes). So the worker restricts its CPU affinity
to ``GRADFLOW_JAX_THREADS`` CPUs before importing jax when that is fewer than
it has.
"""
import json
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# run by path, sys.path[0] is gradflow/bench: its modules must not shadow anything
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]


def _limit_threads():
    """Pin to the first GRADFLOW_JAX_THREADS usable CPUs; returns the thread count."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    want = int(os.environ.get("GRADFLOW_JAX_THREADS") or 0) or len(cpus) or os.cpu_count()
    if cpus and want < len(cpus):
        os.sched_setaffinity(0, cpus[:want])
        return want
    return len(cpus) or want


def _load_timing():
    import importlib.util
    spec = importlib.util.spec_from_file_location("_gradflow_bench_timing",
                                                  os.path.join(HERE, "timing.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is made
    spec.loader.exec_module(mod)
    return mod


def _first_line(e: BaseException) -> str:
    msg = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {msg}"[:300]


# -- the model, from gradflow.bench.models' layer list ---------------------------------------
def forward(spec, params, h, jnp, lax, jax):
    """Layer list -> output, NCHW activations, OIHW conv weights, Linear W as (out, in)."""
    i = 0
    for layer in spec:
        kind = layer[0]
        if kind in ("conv", "linear"):
            w, b = params[i], params[i + 1]
            i += 2
            if kind == "conv":
                pad = int(layer[4])
                h = lax.conv_general_dilated(h, w, (1, 1), ((pad, pad), (pad, pad)),
                                             dimension_numbers=("NCHW", "OIHW", "NCHW"))
                h = h + b[None, :, None, None]
            else:
                h = h @ w.T + b
        elif kind == "relu":
            h = jax.nn.relu(h)  # derivative 0 at 0, as torch's (jnp.maximum would give 0.5)
        elif kind == "pool":
            k = int(layer[1])
            h = max_pool(h, k, jnp, lax)
        elif kind == "flatten":
            h = h.reshape(h.shape[0], -1)
        else:
            raise ValueError(f"jax worker: unknown layer {layer!r}; valid: conv, linear, relu, "
                             f"pool, flatten")
    return h


def max_pool(h, k, jnp, lax):
    win = (1, 1, k, k)
    return lax.reduce_window(h, -jnp.inf, lax.max, win, win, "VALID")


def cross_entropy(logits, y, jnp, jax):
    """Mean negative log-likelihood of the integer targets ``y`` (N,) under ``logits`` (N, C)."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def build(req, arrays, device, jax):
    """A zero-argument callable doing one blocking call of the requested case."""
    import jax.numpy as jnp
    from jax import lax
    put = lambda a: jax.device_put(a, device)  # noqa: E731
    wl, mode = req["workload"], req["mode"]
    if req.get("spec") is not None:
        spec, lr, mom = req["spec"], float(req["lr"]), float(req["momentum"])
        n_params = sum(1 for k in arrays if k.startswith("p"))
        state = {"p": [put(arrays[f"p{i}"]) for i in range(n_params)]}
        state["v"] = [jnp.zeros_like(p) for p in state["p"]]
        x, y = put(arrays["x"]), put(arrays["y"])

        def loss_fn(params, x, y):
            return cross_entropy(forward(spec, params, x, jnp, lax, jax), y, jnp, jax)

        def train_step(params, bufs, x, y):
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            bufs = [mom * v + g for v, g in zip(bufs, grads)]
            params = [p - lr * v for p, v in zip(params, bufs)]
            return params, bufs, loss
        step = jax.jit(train_step, donate_argnums=(0, 1))

        def call():
            state["p"], state["v"], loss = step(state["p"], state["v"], x, y)
            jax.block_until_ready((state["p"], state["v"], loss))
            return loss
        return call
    d = {k: put(v) for k, v in arrays.items()}
    if wl == "matmul":
        fn, args = jax.jit(lambda a, b: a @ b), (d["a"], d["b"])
    elif wl == "conv2d":
        def conv(x, w):
            return lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)),
                                            dimension_numbers=("NCHW", "OIHW", "NCHW"))
        fn, args = _fwd_or_vjp(conv, mode, (d["x"], d["w"]), d["gy"], jax)
    elif wl == "maxpool2d":
        fn, args = _fwd_or_vjp(lambda x: max_pool(x, 2, jnp, lax), mode, (d["x"],), d["gy"], jax)
    elif wl == "softmax_xent":
        fn = jax.jit(jax.value_and_grad(lambda z, t: cross_entropy(z, t, jnp, jax)))
        args = (d["x"], d["t"])
    else:
        raise ValueError(f"jax worker: no JAX version of workload {wl!r}")

    def call():
        out = fn(*args)
        jax.block_until_ready(out)
        return out[0] if isinstance(out, tuple) else out
    return call


def _fwd_or_vjp(f, mode, xs, gy, jax):
    if mode == "fwd":
        return jax.jit(f), xs

    def fwd_bwd(*a):
        *inputs, g = a
        y, vjp = jax.vjp(f, *inputs)
        return (y,) + tuple(vjp(g))
    return jax.jit(fwd_bwd), xs + (gy,)


def _scalar(r):
    shape = getattr(r, "shape", None)
    return float(r) if shape == () else None


def _device(jax, kind):
    if kind == "cpu":
        return jax.devices("cpu")[0]
    for platform in ("cuda", "gpu"):
        try:
            return jax.devices(platform)[0]
        except RuntimeError:
            pass
    raise RuntimeError("jax has no GPU device here")


def _hello(jax, threads):
    import jaxlib
    import numpy as np
    platforms = ["cpu"]
    try:
        _device(jax, "cuda")
        platforms.append("cuda")
    except RuntimeError:
        pass
    t0 = time.perf_counter()  # client start-up and jit machinery, not charged to the first row
    jax.block_until_ready(jax.jit(lambda t: (t * 2).sum())(jax.numpy.ones(8)))
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "jax_python": sys.version.split()[0], "jax_executable": sys.executable,
            "jax_numpy": np.__version__, "jax_threads": threads, "jax_platforms": platforms,
            "jax_xla_flags": os.environ.get("XLA_FLAGS", ""),
            "jax_init_ms": round((time.perf_counter() - t0) * 1e3, 1)}


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    out = os.fdopen(os.dup(1), "w")  # the protocol; stray prints from libraries go to stderr
    os.dup2(2, 1)

    def send(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()
    threads = _limit_threads()
    try:
        import numpy as np
        import jax
        jax.config.update("jax_enable_x64", True)  # float64 cases; float32 arrays stay float32
        info = _hello(jax, threads)
    except Exception as e:
        send({"kind": "hello", "error": _first_line(e), "python": sys.version.split()[0]})
        return 0
    timing = _load_timing()
    send({"kind": "hello", "info": info})
    for line in sys.stdin:
        req = json.loads(line)
        if req is None:
            send({"kind": "bye"})
            return 0
        first = {}
        try:
            with np.load(req["inputs"]) as z:
                arrays = {k: z[k] for k in z.files}
            fn = build(req, arrays, _device(jax, req["device"]), jax)
            if req.get("losses"):
                send({"kind": "row", "losses": [_scalar(fn()) for _ in range(int(req["losses"]))]})
                continue

            def call():
                r = fn()
                if "r" not in first:
                    first["r"] = r
            t = timing.measure(call, warmup=req["warmup"], repeat=req["repeat"],
                               budget_s=req["budget_s"])
        except Exception as e:
            send({"kind": "row", "error": _first_line(e)})
            continue
        finally:
            fn = None
        send({"kind": "row", "first_call_s": t.first_call, "times_s": t.times,
              "warmup": t.warmup, "loss0": _scalar(first.get("r"))})
    return 0


if __name__ == "__main__":
    sys.exit(main())
