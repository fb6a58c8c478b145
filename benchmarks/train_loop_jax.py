"""The loop of ``gradflow train`` (LeNet-5, defaults) written in JAX, CPU: the loop of
``train_loop_torch.py``, step for step, for the end-to-end comparison.

    /work/jaxenv/bin/python benchmarks/train_loop_jax.py --dataset fashion-mnist \\
        --data-root DIR --epochs 2 [--limit N] [--threads N]

The same samples of the same splits (gradflow's ``load_splits``, which imports under
any Python with NumPy: only gradflow's NumPy backend is used here), the same
standardisation with the train split's statistics, random 2-pixel shifts of the
training batches, batch 32 with the last partial batch kept, PyTorch's default
initialisation (uniform in +-1/sqrt(fan_in), from NumPy's generator), SGD with
Nesterov momentum 0.9 in PyTorch's form (``v = 0.9 v + g``; ``p -= lr (g + 0.9 v)``)
and the cosine learning rate per epoch, evaluation of the validation and test splits
in batches of 500 after every epoch.

As a JAX user would write it: the uint8 images stay in host memory as NumPy arrays;
each batch is one NumPy gather plus its random offsets; one ``jax.jit`` function
does the rest of the step (pad, crop by ``vmap`` of ``dynamic_slice``, standardise,
``value_and_grad`` of the mean cross-entropy, the update, the number correct), with
the parameters and momentum donated. The learning rate is a traced argument, so the
schedule does not recompile; the last partial batch of an epoch compiles once
more, inside epoch 1's time. The loss is read after every step, as in the PyTorch
loop and ``gradflow train`` (their divergence check), which also keeps JAX's
asynchronous dispatch from running ahead of the timer.

Threads: XLA's CPU client sizes its pool from the CPUs the process may run on, so
``--threads N`` restricts the CPU affinity to N CPUs before jax is imported.
Prints one line per epoch and ``training took X s``, like the other loops.
"""
from __future__ import annotations

import math
import os
import sys
import time

import numpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_loop_torch import lenet5_geometry, loop_parser, splits  # noqa: E402

EVAL_BATCH = 500
MOMENTUM = 0.9


def limit_cpus(n):
    """Let this process run on its first ``n`` usable CPUs; returns how many it has."""
    cpus = sorted(os.sched_getaffinity(0))
    if n and n < len(cpus):
        os.sched_setaffinity(0, cpus[:n])
        return n
    return len(cpus)


def init_params(geo, seed):
    """LeNet-5 weights as PyTorch initialises them by default, in PyTorch's layouts
    (conv OIHW, linear (out, in)): weight and bias uniform in +-1/sqrt(fan_in)."""
    rng = numpy.random.default_rng(seed)
    _, s = lenet5_geometry(geo)
    shapes = [(6, geo["in_channels"], 5, 5), (16, 6, 5, 5), (120, 16 * s * s), (84, 120),
              (geo["num_classes"], 84)]
    params = []
    for shape in shapes:
        bound = 1.0 / math.sqrt(numpy.prod(shape[1:]))
        params.append(rng.uniform(-bound, bound, shape).astype(numpy.float32))
        params.append(rng.uniform(-bound, bound, shape[0]).astype(numpy.float32))
    return params


def make_functions(geo, jax):
    """(train_step, predict): jitted functions of the LeNet-5 loop."""
    import jax.numpy as jnp
    from jax import lax
    pad, _ = lenet5_geometry(geo)
    size = geo["image_size"]
    mean = jnp.asarray(geo["mean"], jnp.float32).reshape(1, -1, 1, 1)
    std = jnp.asarray(geo["std"], jnp.float32).reshape(1, -1, 1, 1)

    def as_input(x_u8):  # uint8 N x H x W (or N x C x H x W) -> float32 NCHW in [0, 1]
        x = x_u8.astype(jnp.float32) / 255.0
        return x[:, None] if x.ndim == 3 else x

    def forward(p, x):
        dims = ("NCHW", "OIHW", "NCHW")
        h = lax.conv_general_dilated(x, p[0], (1, 1), ((pad, pad), (pad, pad)), dimension_numbers=dims)
        h = jax.nn.relu(h + p[1][None, :, None, None])
        h = lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        h = lax.conv_general_dilated(h, p[2], (1, 1), ((0, 0), (0, 0)), dimension_numbers=dims)
        h = jax.nn.relu(h + p[3][None, :, None, None])
        h = lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        h = h.reshape(h.shape[0], -1)
        h = jax.nn.relu(h @ p[4].T + p[5])
        h = jax.nn.relu(h @ p[6].T + p[7])
        return h @ p[8].T + p[9]

    def loss_fn(p, x, y):
        logits = forward(p, x)
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1)), logits

    def shift(x, i, j):  # random 2-pixel shifts: pad by 2, one size x size window per sample
        xp = jnp.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
        crop = lambda img, a, b: lax.dynamic_slice(img, (0, a, b), (img.shape[0], size, size))  # noqa: E731
        return jax.vmap(crop)(xp, i, j)

    def train_step(p, v, x_u8, i, j, y, lr):
        x = (shift(as_input(x_u8), i, j) - mean) / std
        (loss, logits), g = jax.value_and_grad(loss_fn, has_aux=True)(p, x, y)
        v = [MOMENTUM * vk + gk for vk, gk in zip(v, g)]
        p = [pk - lr * (gk + MOMENTUM * vk) for pk, gk, vk in zip(p, g, v)]
        return p, v, loss, jnp.sum(jnp.argmax(logits, 1) == y)

    def predict(p, x_u8):
        return jnp.argmax(forward(p, (as_input(x_u8) - mean) / std), 1)

    return jax.jit(train_step, donate_argnums=(0, 1)), jax.jit(predict)


def main(argv=None):
    a = loop_parser(__doc__, "CPUs (so XLA threads) this process may use (default: all)").parse_args(argv)
    threads = limit_cpus(a.threads)
    import jax
    import jax.numpy as jnp
    (tr, va, te), geo = splits(a.dataset, a.seed, a.limit, a.data_root)
    train_step, predict = make_functions(geo, jax)
    params = [jnp.asarray(w) for w in init_params(geo, a.seed)]
    moms = [jnp.zeros_like(w) for w in params]
    xtr, ytr = tr[0], tr[1].astype(numpy.int32)
    evals = [(x, y.astype(numpy.int32)) for x, y in (va, te)]
    rng = numpy.random.default_rng(a.seed)
    total = 0.0
    for epoch in range(a.epochs):
        lr = numpy.float32(0.5 * a.lr * (1 + math.cos(math.pi * epoch / a.epochs)))
        t0 = time.perf_counter()
        order = rng.permutation(len(xtr))
        loss_sum = correct = 0.0
        for k in range(0, len(order), a.batch_size):
            idx = order[k:k + a.batch_size]
            n = len(idx)
            i = rng.integers(0, 5, n, dtype=numpy.int32)
            j = rng.integers(0, 5, n, dtype=numpy.int32)
            params, moms, loss, right = train_step(params, moms, xtr[idx], i, j, ytr[idx], lr)
            lv = float(loss)
            if not math.isfinite(lv):
                raise SystemExit(f"the loss diverged ({lv})")
            loss_sum += lv * n
            correct += int(right)
        accs = []
        for x, y in evals:
            right = sum(int(numpy.sum(numpy.asarray(predict(params, x[k:k + EVAL_BATCH])) == y[k:k + EVAL_BATCH]))
                        for k in range(0, len(x), EVAL_BATCH))
            accs.append(right / max(len(x), 1))
        sec = time.perf_counter() - t0
        total += sec
        print(f"epoch {epoch + 1}: train loss {loss_sum / len(xtr):.4f} acc {correct / len(xtr):.4f}, "
              f"val acc {accs[0]:.4f}, test acc {accs[1]:.4f}, {sec:.2f} s", flush=True)
    print(f"training took {total:.2f} s (jax {jax.__version__}, {threads} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
