"""``gradcheck`` and ``gradgradcheck``: analytic gradients against central finite
differences, in float64 (a test tool; the engine never imports it)."""
from __future__ import annotations

import numpy  # host-side: finite differences are computed on NumPy copies

from .engine import grad
from .function import tensor_class
from .grad_mode import enable_grad, no_grad


class GradcheckError(AssertionError):
    """The analytical gradient disagrees with finite differences."""


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, mode="full", n_directions=8,
              seed=0, raise_exception=True, _eval_with_graph=False):
    """Check ``fn``'s backward against central finite differences, in float64.

    ``inputs`` is a Tensor or a tuple of arguments; floating Tensors are
    converted to float64 copies and those with ``requires_grad`` are checked;
    other arguments pass through unchanged. A fixed random cotangent ``u`` reduces every output to
    the scalar ``<u, fn(x)>``; its analytic gradient (one backward) is compared

    * ``mode="full"``: element by element with (f(x+eps e_j) - f(x-eps e_j)) / 2eps;
    * ``mode="random"``: along ``n_directions`` random unit directions v, with
      (f(x+eps v) - f(x-eps v)) / 2eps == <grad, v> -- for inputs too large to
      perturb one element at a time.

    Passes when ``|analytic - numeric| <= atol + rtol * |numeric|`` everywhere.
    Returns True, or raises :class:`GradcheckError` naming the input, the index and
    both values (returns False instead when ``raise_exception=False``).
    """
    Tensor = tensor_class()
    if mode not in ("full", "random"):
        raise ValueError(f"gradcheck: mode must be 'full' or 'random', got {mode!r}")
    if isinstance(inputs, Tensor) or not isinstance(inputs, (tuple, list)):
        inputs = (inputs,)
    args, checked = [], []
    for a in inputs:
        if isinstance(a, Tensor) and a.dtype.kind == "f":
            # every floating input becomes a float64 copy (so float32 weights or running
            # statistics next to a checked input do not mix dtypes); only requires_grad
            # ones are checked
            req = a.requires_grad
            a = Tensor._make(a.backend.astype(a.backend.copy(a.array), numpy.float64), a.backend,
                             requires_grad=req)
            if req:
                checked.append(len(args))
        args.append(a)
    if not checked:
        raise ValueError("gradcheck: no floating-point input has requires_grad=True; nothing to check")
    rng = numpy.random.default_rng(seed)

    def outputs(*a):
        out = fn(*a)
        return out if isinstance(out, (tuple, list)) else (out,)

    with enable_grad():
        outs = outputs(*args)
    cot = [rng.standard_normal(o.shape) for o in outs]

    def scalar(*a):
        with (enable_grad() if _eval_with_graph else no_grad()):
            os_ = outputs(*a)
        return sum(float(numpy.sum(o.numpy().astype(numpy.float64) * c)) for o, c in zip(os_, cot))

    with enable_grad():
        total = None
        for o, c in zip(outs, cot):
            if not o.requires_grad:
                continue
            term = (o * Tensor._make(o.backend.asarray(c, dtype=o.dtype), o.backend)).sum()
            total = term if total is None else total + term
    if total is None:
        raise GradcheckError("gradcheck: no output depends on an input that requires grad")
    for i in checked:
        args[i].grad = None
    total.backward()

    def fail(msg):
        if raise_exception:
            raise GradcheckError(msg)
        return False

    for i in checked:
        x = args[i]
        ana = numpy.zeros(x.shape) if x.grad is None else x.grad.numpy()
        base = x.numpy().copy()

        def f_at(arr):
            x.array = x.backend.asarray(arr, dtype=numpy.float64)
            return scalar(*args)

        try:
            if mode == "full":
                num = numpy.zeros(base.size)
                flat = base.reshape(-1)
                for j in range(base.size):
                    xp_, xm = flat.copy(), flat.copy()
                    xp_[j] += eps
                    xm[j] -= eps
                    num[j] = (f_at(xp_.reshape(base.shape)) - f_at(xm.reshape(base.shape))) / (2 * eps)
                num = num.reshape(base.shape)
                bad = numpy.abs(ana - num) > atol + rtol * numpy.abs(num)
                if bad.any():
                    j = numpy.unravel_index(numpy.argmax(numpy.abs(ana - num) * bad), base.shape)
                    return fail(
                        f"gradcheck: wrong gradient for input {i} (shape {base.shape}) at index "
                        f"{tuple(int(k) for k in j)}: analytic {ana[j]:.8g} vs numeric {num[j]:.8g} "
                        f"({int(bad.sum())} of {bad.size} elements out of tolerance "
                        f"atol={atol}, rtol={rtol})")
            else:
                for k in range(n_directions):
                    v = rng.standard_normal(base.shape)
                    v /= numpy.linalg.norm(v) or 1.0
                    num = (f_at(base + eps * v) - f_at(base - eps * v)) / (2 * eps)
                    an = float(numpy.sum(ana * v))
                    if abs(an - num) > atol + rtol * abs(num):
                        return fail(
                            f"gradcheck: wrong gradient for input {i} (shape {base.shape}) along "
                            f"random direction {k}: analytic {an:.8g} vs numeric {num:.8g}")
        finally:
            x.array = x.backend.asarray(base, dtype=numpy.float64)
    return True


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, mode="full", n_directions=8,
                  seed=0, raise_exception=True):
    """Check second-order gradients: :func:`gradcheck` applied to the first gradient.

    With a fixed random cotangent ``u`` (one per output, float64), the function
    ``(x..., u...) -> grad(<u, fn(x)>, x, create_graph=True)`` is gradient-checked
    against central differences, so both d/dx (the Hessian-vector products) and d/du
    (the first gradient's linearity in ``u``) of the differentiable backward pass are
    verified. Arguments as :func:`gradcheck`."""
    Tensor = tensor_class()
    if isinstance(inputs, Tensor) or not isinstance(inputs, (tuple, list)):
        inputs = (inputs,)
    inputs = tuple(inputs)
    n = len(inputs)
    req = [i for i, a in enumerate(inputs) if isinstance(a, Tensor) and a.requires_grad]
    if not req:
        raise ValueError("gradgradcheck: no input has requires_grad=True; nothing to check")
    with enable_grad():
        outs = fn(*inputs)
    outs = outs if isinstance(outs, (tuple, list)) else (outs,)
    rng = numpy.random.default_rng(seed + 1)
    cots = tuple(Tensor(rng.standard_normal(o.shape), dtype="float64", backend=o.backend,
                        requires_grad=True) for o in outs if o.requires_grad)
    if not cots:
        raise GradcheckError("gradgradcheck: no output depends on an input that requires grad")

    def first_grads(*a):
        xs, us = a[:n], a[n:]
        with enable_grad():
            os_ = fn(*xs)
            os_ = [o for o in (os_ if isinstance(os_, (tuple, list)) else (os_,)) if o.requires_grad]
            gs = grad(os_, [xs[i] for i in req], grad_outputs=list(us), create_graph=True,
                      allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(first_grads, inputs + cots, eps=eps, atol=atol, rtol=rtol, mode=mode,
                     n_directions=n_directions, seed=seed, raise_exception=raise_exception,
                     _eval_with_graph=True)
