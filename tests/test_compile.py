"""gradflow.compile: a captured training step gives eager's results, re-records on a new
signature, and refuses (CaptureError) what a replay cannot reproduce."""
from __future__ import annotations

import numpy as np
import pytest

import gradflow
import gradflow.nn.functional as F
from gradflow import nn
from gradflow.bench import models as M
from gradflow.capture import CaptureError

from conftest import backend_params

BACKENDS = backend_params(["numpy", "numba", "cupy"])
SMALL = {"mlp": [("linear", 20, 16), ("relu",), ("linear", 16, 10)],
         "lenet5": M.SPECS["lenet5_step"]}
SHAPE = {"mlp": (20,), "lenet5": (1, 28, 28)}


@pytest.fixture(params=BACKENDS)
def be(request):
    with gradflow.backend(request.param):
        yield request.param


def _setup(kind, dtype, opt="sgd"):
    spec = SMALL[kind]
    model = M.gradflow_nn_model(spec, M.init_weights(spec, dtype))
    model = model.to(dtype=getattr(gradflow, np.dtype(dtype).name))
    if opt == "sgd":
        o = gradflow.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    else:
        o = gradflow.optim.Adam(model.parameters(), lr=0.01)

    def step(x, y):
        o.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        o.step()
        return loss
    return model, o, step


def _batches(kind, dtype, n, sizes):
    rng = np.random.default_rng(5)
    return [(gradflow.tensor(rng.random((b,) + SHAPE[kind]).astype(dtype)),
             gradflow.tensor(rng.integers(0, 10, b))) for b in sizes[:n]]


def _twin_steps(loss_fn, after_backward=None, make=None):
    """Two identical ``(model, optimizer, step)``: one to run eagerly, one to compile.
    ``step(x, y)`` runs zero_grad, ``loss_fn(model, x, y)``, backward, ``after_backward(model)``
    (its result is returned beside the loss) and the optimizer step. ``make()`` builds
    ``(model, optimizer)``; default: the float64 MLP with SGD momentum."""
    out = []
    for _ in range(2):
        model, o = (make or (lambda: _setup("mlp", "float64")[:2]))()

        def step(x, y, model=model, o=o):
            o.zero_grad()
            loss = loss_fn(model, x, y)
            loss.backward()
            extra = after_backward(model) if after_backward else None
            o.step()
            return loss if extra is None else (loss, extra)
        out.append((model, o, step))
    return out


def _same_parameters(m_e, m_c, rtol=1e-11, atol=1e-13):
    for (name, pe), pc in zip(m_e.named_parameters(), m_c.parameters()):
        np.testing.assert_allclose(pc.numpy(), pe.numpy(), rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("kind", ["mlp", "lenet5"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compiled_training_matches_eager(be, kind, dtype):
    sizes = [8] * 7 + [5]  # the last, smaller batch is its own signature (run eagerly once)
    data = _batches(kind, dtype, len(sizes), sizes)
    m_e, _, step_e = _setup(kind, dtype)
    m_c, _, step_c = _setup(kind, dtype)
    compiled = gradflow.compile(step_c)
    tol = dict(rtol=1e-11, atol=1e-12) if dtype == "float64" else dict(rtol=2e-5, atol=2e-6)
    for i, (x, y) in enumerate(data):
        le, lc = step_e(x, y), compiled(x, y)
        np.testing.assert_allclose(lc.numpy(), le.numpy(), **tol, err_msg=f"loss of step {i}")
        for (name, pe), pc in zip(m_e.named_parameters(), m_c.parameters()):
            np.testing.assert_allclose(pc.numpy(), pe.numpy(), **tol, err_msg=f"{name} step {i}")
            np.testing.assert_allclose(pc.grad.numpy(), pe.grad.numpy(), **tol,
                                       err_msg=f"{name}.grad step {i}")
    st = compiled.stats
    assert st["replayed"] == 3 and st["signatures"] == 2 and st["kernels"] > 10, st
    assert st["capture_s"] > 0
    if kind == "lenet5" and be == "numba":  # both conv + ReLU pairs fused in the replay
        src = next(e for e in compiled._entries.values() if e.program).program.source
        env = next(e for e in compiled._entries.values() if e.program).program._fn.__globals__
        fused = [k for k, v in env.items() if getattr(v, "__name__", "") ==
                 "conv2d_relu_forward_saved"]
        assert len(fused) == 2, src


def test_replayed_loss_is_a_new_tensor_each_call(be):
    _, _, step = _setup("mlp", "float64")
    compiled = gradflow.compile(step)
    (x, y), = _batches("mlp", "float64", 1, [8])
    losses = [compiled(x, y) for _ in range(7)]
    vals = [loss.item() for loss in losses]
    assert compiled.stats["replayed"] == 3
    assert len({id(loss.array) for loss in losses[4:]}) == 3  # not one aliased buffer
    assert all(a > b for a, b in zip(vals, vals[1:])), vals  # training on one batch: falls


def test_module_is_returned_unchanged_and_decorator_forms():
    model = nn.Linear(3, 2)
    assert gradflow.compile(model) is model
    deco = gradflow.compile(validate=False)

    @deco
    def f(x):
        return (x * 2.0).sum()
    x = gradflow.tensor(np.arange(6.0).reshape(2, 3))
    assert [f(x).item() for _ in range(5)] == [30.0] * 5
    assert f.stats["replayed"] >= 1 and f.__name__ == "f"
    with pytest.raises(TypeError, match="function or an nn.Module"):
        gradflow.compile(3)


def test_retrace_on_dtype_and_grad_mode(be):
    @gradflow.compile
    def f(x):
        return (x * x).sum()
    for dt in ("float32", "float64"):
        x = gradflow.tensor(np.arange(4.0, dtype=dt))
        for _ in range(5):
            out = f(x)
            assert out.dtype == np.dtype(dt) and out.item() == 14.0
    with gradflow.no_grad():
        for _ in range(5):
            assert f(x).item() == 14.0
    assert f.stats["signatures"] == 3 and f.stats["replayed"] == 3


def test_new_inputs_flow_through_the_replay(be):
    @gradflow.compile
    def f(x, w):
        return gradflow.relu(x @ w).sum(dim=0)
    rng = np.random.default_rng(0)
    for _ in range(8):
        xn, wn = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
        got = f(gradflow.tensor(xn), gradflow.tensor(wn)).numpy()
        np.testing.assert_allclose(got, np.maximum(xn @ wn, 0).sum(0), rtol=1e-12)
    assert f.stats["replayed"] == 4


def test_lr_change_records_again_and_matches_eager(be):
    data = _batches("mlp", "float64", 10, [8] * 10)
    m_e, o_e, step_e = _setup("mlp", "float64")
    m_c, o_c, step_c = _setup("mlp", "float64")
    compiled = gradflow.compile(step_c)
    for i, (x, y) in enumerate(data):
        if i == 5:
            for o in (o_e, o_c):
                o.param_groups[0]["lr"] = 0.01
        np.testing.assert_allclose(compiled(x, y).numpy(), step_e(x, y).numpy(), rtol=1e-11)
    for pe, pc in zip(m_e.parameters(), m_c.parameters()):
        np.testing.assert_allclose(pc.numpy(), pe.numpy(), rtol=1e-11, atol=1e-13)
    assert compiled.stats["signatures"] == 2


def test_parameter_rebound_outside_the_step_is_seen(be):
    m_c, _, step = _setup("mlp", "float64")
    compiled = gradflow.compile(step)
    (x, y), = _batches("mlp", "float64", 1, [8])
    for _ in range(5):
        compiled(x, y)
    w = m_c[0].weight
    w.array = w.backend.copy(w.array)  # a new array behind the same Parameter
    before = w.numpy().copy()
    compiled(x, y)
    assert not np.allclose(w.numpy(), before)  # the update reached the new array


@pytest.mark.parametrize("opt", ["adam", "adamw"])
def test_adam_replays_with_its_step_count_like_eager(be, opt):
    # the bias correction's step count is read from state["step"] when the replay runs
    sizes = [8] * 9
    data = _batches("mlp", "float64", len(sizes), sizes)
    cls = gradflow.optim.Adam if opt == "adam" else gradflow.optim.AdamW

    def make():
        model = M.gradflow_nn_model(SMALL["mlp"], M.init_weights(SMALL["mlp"], "float64"))
        model = model.to(dtype=gradflow.float64)
        return model, cls(model.parameters(), lr=0.01, weight_decay=0.1)
    (m_e, o_e, step_e), (m_c, o_c, step_c) = _twin_steps(
        lambda model, x, y: F.cross_entropy(model(x), y), make=make)
    compiled = gradflow.compile(step_c)
    for i, (x, y) in enumerate(data):
        le, lc = step_e(x, y), compiled(x, y)
        np.testing.assert_allclose(lc.numpy(), le.numpy(), rtol=1e-11, err_msg=f"step {i}")
    assert compiled.stats["replayed"] == len(sizes) - 4, compiled.stats
    for pe, pc in zip(m_e.parameters(), m_c.parameters()):
        np.testing.assert_allclose(pc.numpy(), pe.numpy(), rtol=1e-11, atol=1e-13)
        assert o_c.state[pc]["step"] == o_e.state[pe]["step"] == len(sizes)
        np.testing.assert_allclose(o_c.state[pc]["exp_avg_sq"].numpy(),
                                   o_e.state[pe]["exp_avg_sq"].numpy(), rtol=1e-11, atol=1e-15)
    # an eager step after the replays continues from the replayed count
    x, y = data[0]
    o_c.zero_grad()
    F.cross_entropy(m_c(x), y).backward()
    o_c.step()
    step_e(x, y)
    _same_parameters(m_e, m_c)


def test_amsgrad_step_count_is_refused(be):
    # amsgrad's update computes its bias correction as Python numbers: not a replayable step
    def make():
        model = M.gradflow_nn_model(SMALL["mlp"], M.init_weights(SMALL["mlp"], "float64"))
        model = model.to(dtype=gradflow.float64)
        return model, gradflow.optim.Adam(model.parameters(), lr=0.01, amsgrad=True)
    _, (_, _, step) = _twin_steps(lambda model, x, y: F.cross_entropy(model(x), y), make=make)
    compiled = gradflow.compile(step)
    (x, y), = _batches("mlp", "float64", 1, [8])
    compiled(x, y)
    compiled(x, y)
    with pytest.raises(CaptureError, match=r"in one call and .* in the next"):
        compiled(x, y)
    with pytest.raises(CaptureError):  # the signature stays refused
        compiled(x, y)


def test_item_inside_is_refused(be):
    _, _, step = _setup("mlp", "float64")

    @gradflow.compile
    def f(x, y):
        return step(x, y).item()
    (x, y), = _batches("mlp", "float64", 1, [8])
    f(x, y)
    with pytest.raises(CaptureError, match=r"Tensor\.item\(\).*call \.item\(\).*outside"):
        f(x, y)


def test_branch_on_a_tensor_value_is_refused(be):
    @gradflow.compile
    def f(x):
        s = x.sum()
        return s * 2 if s > 0 else s
    x = gradflow.tensor([1.0, 2.0])
    f(x)
    with pytest.raises(CaptureError, match=r"bool\(tensor\)"):
        f(x)


def test_changing_control_flow_and_python_scalars_are_refused(be):
    calls = {"n": 0}

    @gradflow.compile
    def g(x):
        calls["n"] += 1
        return x.exp() if calls["n"] % 2 else x.sin()
    x = gradflow.tensor([1.0, 2.0])
    g(x)
    g(x)
    with pytest.raises(CaptureError, match=r"backend\.unary .*'sin' .* in one call and 'exp'"):
        g(x)

    scale = {"s": 1.0}

    @gradflow.compile
    def h(x):
        scale["s"] += 1.0
        return x * scale["s"]
    h(x)
    h(x)
    with pytest.raises(CaptureError, match=r"3\.0 .* in one call and 4\.0 in the next"):
        h(x)


def test_data_dependent_sizes_are_refused(be):
    @gradflow.compile
    def nz(x):
        return gradflow.nonzero(x)

    @gradflow.compile
    def ms(x):
        return gradflow.masked_select(x, x > 0)
    x = gradflow.tensor([1.0, -2.0, 3.0])
    for f, pattern in ((nz, r"nonzero\(\)"), (ms, "boolean mask")):
        f(x)
        with pytest.raises(CaptureError, match=pattern):
            f(x)


def test_numpy_operator_on_arrays_is_refused(be):
    @gradflow.compile
    def f(x):
        t = gradflow.Tensor._make(x.array * 2, x.backend)  # bypasses the backend kernels
        return t.exp()
    x = gradflow.tensor([1.0, 2.0])
    f(x)
    with pytest.raises(CaptureError, match="outside the backend kernels"):
        f(x)
        f(x)


def test_work_outside_the_kernels_is_caught_by_the_first_replay(be):
    w = gradflow.tensor(np.ones(3))

    @gradflow.compile
    def f(x):
        w.array[...] *= 0.5  # an in-place NumPy update: invisible to the recording
        return (x * w).sum()
    x = gradflow.tensor(np.arange(3.0))
    for _ in range(3):
        f(x)
    with pytest.raises(CaptureError, match="first replay .* does not match eager"):
        f(x)
    np.testing.assert_allclose(w.numpy(), 0.5 ** 4)  # the eager run's state, applied once


def test_fallback_finishes_eagerly(be):
    seen = []

    @gradflow.compile(fallback=seen.append)
    def f(x):
        return x.sum().item() + 1
    x = gradflow.tensor([1.0, 2.0])
    assert [f(x) for _ in range(5)] == [4.0] * 5
    assert len(seen) == 1 and isinstance(seen[0], CaptureError)


def test_dropout_draws_fresh_masks_like_eager(be):
    def run(compiled):
        gradflow.manual_seed(3)
        x = gradflow.tensor(np.ones((4, 50)))

        def f(x):
            return F.dropout(x, 0.5, training=True)
        g = gradflow.compile(f) if compiled else f
        return [g(x).numpy() for _ in range(7)], g
    eager, _ = run(False)
    comp, g = run(True)
    assert g.stats["replayed"] == 3
    assert not np.array_equal(comp[5], comp[6])  # fresh randomness per replay
    for a, b in zip(eager, comp):
        np.testing.assert_array_equal(a, b)  # the same draws as eager, in order


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_train_compile_matches_eager(tmp_path, capsys, optimizer):
    from gradflow import cli
    res = {}
    for flag in ("--no-compile", "--compile"):
        out = tmp_path / flag.strip("-")
        rc = cli.main(["train", "--model", "mlp", "--dataset", "digits", "--epochs", "2",
                       "--limit", "300", "--batch-size", "32", "--backend", "numpy",
                       "--optimizer", optimizer, "--lr", "0.01",
                       "--no-progress", "--out", str(out), flag])
        assert rc == 0
        import json
        res[flag] = json.loads((out / "metrics.json").read_text())["epochs"]
    printed = capsys.readouterr().out
    assert "compiled step: off (--no-compile)" in printed and "compiled step: on" in printed
    replayed = int(printed.split("compiled step: ")[-1].split(" steps replayed")[0])
    assert replayed >= 6, printed  # 2 epochs x (9 full batches - 4 eager) at least
    for e, c in zip(res["--no-compile"], res["--compile"]):
        for k in ("train_loss", "train_acc", "val_loss", "val_acc", "test_acc"):
            assert c[k] == pytest.approx(e[k], rel=1e-5, abs=1e-6), k


def _bn_net(seed):
    gradflow.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3),
                         nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


def test_batchnorm_dropout_net_matches_eager(be):
    rng = np.random.default_rng(2)
    data = [(gradflow.tensor(rng.random((6, 1, 8, 8))), gradflow.tensor(rng.integers(0, 10, 6)))
            for _ in range(7)]
    results = {}

    def make():
        model = _bn_net(11).to(dtype=gradflow.float64)
        return model, gradflow.optim.SGD(model.parameters(), lr=0.1, momentum=0.9,
                                         weight_decay=1e-3)
    pairs = _twin_steps(lambda model, x, y: F.cross_entropy(model(x), y), make=make)
    for compiled, (model, _, step) in zip((False, True), pairs):
        f = gradflow.compile(step) if compiled else step
        gradflow.manual_seed(4)
        losses = [f(x, y).item() for x, y in data]
        results[compiled] = (losses, {k: v.numpy() for k, v in model.state_dict().items()})
        if compiled:
            assert f.stats["replayed"] == 3
    np.testing.assert_allclose(results[True][0], results[False][0], rtol=1e-11)
    for k, v in results[False][1].items():  # running stats and num_batches_tracked included
        np.testing.assert_allclose(results[True][1][k], v, rtol=1e-10, atol=1e-12, err_msg=k)


def test_optimizer_state_replaced_outside_records_again(be):
    data = _batches("mlp", "float64", 9, [8] * 9)
    m_e, o_e, step_e = _setup("mlp", "float64")
    m_c, o_c, step_c = _setup("mlp", "float64")
    compiled = gradflow.compile(step_c)
    for i, (x, y) in enumerate(data):
        if i == 6:  # new momentum buffers behind the same optimizer
            for o in (o_e, o_c):
                o.load_state_dict(o.state_dict())
        np.testing.assert_allclose(compiled(x, y).numpy(), step_e(x, y).numpy(), rtol=1e-11)
    for pe, pc in zip(m_e.parameters(), m_c.parameters()):
        np.testing.assert_allclose(pc.numpy(), pe.numpy(), rtol=1e-11, atol=1e-13)


def test_kernel_writing_through_out_into_a_parameter_is_kept(be):
    w = gradflow.tensor(np.ones(3))

    @gradflow.compile
    def f(x):
        w.backend.binary("add", w.array, x.array, out=w.array)  # result unused: still runs
        return x * 1.0
    x = gradflow.tensor(np.arange(3.0))
    for _ in range(6):
        f(x)
    np.testing.assert_allclose(w.numpy(), 1 + 6 * np.arange(3.0))


def test_changing_python_results_are_refused(be):
    count = {"n": 0}

    @gradflow.compile
    def f(x):
        count["n"] += 1
        return x * 2.0, count["n"]
    x = gradflow.tensor([1.0])
    f(x)
    f(x)
    with pytest.raises(CaptureError, match="different Python values"):
        f(x)


@pytest.mark.requires_cuda
@pytest.mark.parametrize("be", backend_params(["cupy"]), indirect=True)
def test_cupy_replay_is_a_cuda_graph(be):
    data = _batches("mlp", "float32", 8, [8] * 8)
    m_e, _, step_e = _setup("mlp", "float32")
    m_c, _, step_c = _setup("mlp", "float32")
    compiled = gradflow.compile(step_c)
    for x, y in data:
        np.testing.assert_allclose(compiled(x, y).numpy(), step_e(x, y).numpy(), rtol=2e-5)
    assert compiled.stats["cuda_graph"] is True and compiled.stats["replayed"] == 4
    for pe, pc in zip(m_e.parameters(), m_c.parameters()):
        np.testing.assert_allclose(pc.numpy(), pe.numpy(), rtol=2e-5, atol=2e-6)


def test_a_transposed_input_is_its_own_signature(be):
    @gradflow.compile
    def f(x):
        return gradflow.Tensor._make(x.backend.transpose(x.array, (1, 0)), x.backend).exp().sum(0)
    a = np.arange(12.0).reshape(3, 4) / 10
    for arr in (a, a.T.copy().T):  # same shape and values, different strides
        x = gradflow.tensor(arr) if arr.flags.c_contiguous else gradflow.Tensor._make(
            gradflow.tensor(np.ascontiguousarray(arr.T)).array.T, gradflow.tensor(a).backend)
        for _ in range(5):
            np.testing.assert_allclose(f(x).numpy(), np.exp(a.T).sum(0), rtol=1e-12)
    assert f.stats["signatures"] == 2


@pytest.mark.parametrize("be", backend_params(["numba"]), indirect=True)
def test_fused_conv_relu_equals_conv_then_relu(be):
    from gradflow.backends import get_backend
    b = get_backend("numba")
    rng = np.random.default_rng(1)
    for shape, wshape, pad in (((4, 1, 12, 12), (6, 1, 5, 5), (2, 2)),
                               ((4, 6, 8, 8), (16, 6, 5, 5), (0, 0)),
                               ((2, 3, 6, 6), (4, 3, 1, 1), (0, 0))):
        x = rng.standard_normal(shape).astype(np.float32)
        x.flat[0] = -np.inf
        w = rng.standard_normal(wshape).astype(np.float32)
        bias = rng.standard_normal(wshape[0]).astype(np.float32)
        args = (x, w, bias, (1, 1), pad, (1, 1), 1)
        y, _ = b.conv2d_forward_saved(*args)
        want = b.unary("relu", y)
        got, _ = b.conv2d_relu_forward_saved(*args)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("loss_kw", [dict(weight=True), dict(ignore_index=3),
                                     dict(weight=True, ignore_index=3, label_smoothing=0.0)])
def test_weighted_and_ignore_index_cross_entropy_replays_like_eager(be, loss_kw):
    # class weights and ignore_index go through backend kernels, so the step replays
    # (a NumPy operator on a backend array would be refused by the capture)
    kw = dict(loss_kw)
    if kw.pop("weight", False):
        kw["weight"] = gradflow.tensor(np.linspace(0.5, 2.0, 10))
    data = _batches("mlp", "float64", 7, [8] * 7)
    for i, (x, y) in enumerate(data):  # class 3 only after the recorded calls and the check
        yy = y.numpy() % 3 if i < 4 else y.numpy()
        yy[0] = yy[0] if i < 4 else 3
        data[i] = (x, gradflow.tensor(yy))
    (m_e, _, step_e), (m_c, _, step_c) = _twin_steps(
        lambda model, x, y: F.cross_entropy(model(x), y, **kw))
    compiled = gradflow.compile(step_c)
    for i, (x, y) in enumerate(data):
        le, lc = step_e(x, y), compiled(x, y)
        np.testing.assert_allclose(lc.numpy(), le.numpy(), rtol=1e-11, err_msg=f"step {i}")
    _same_parameters(m_e, m_c, atol=1e-12)
    assert compiled.stats["replayed"] >= 2, compiled.stats


def test_bad_label_in_a_replay_raises_instead_of_reading_outside(be):
    # a replay runs no op-level Python, so the class-index check lives in the kernel's
    # backend method: a label >= C raises there too (numba's kernel has no bounds check)
    _, _, step = _setup("mlp", "float64")
    compiled = gradflow.compile(step)
    (x, y), = _batches("mlp", "float64", 1, [8])
    for _ in range(5):
        compiled(x, y)
    assert compiled.stats["replayed"] >= 1
    bad = y.numpy().copy()
    bad[2] = 10
    with pytest.raises(ValueError, match=r"cross_entropy: target values must be class indices "
                                         r"in \[0, 10\).*\[\d+, 10\]"):
        compiled(x, gradflow.tensor(bad))


@pytest.mark.parametrize("style", ["arguments", "defaults"])
def test_model_and_optimizer_passed_in_are_tracked(be, style):
    # step(model, opt, x, y) and def step(x, y, opt=opt): a learning-rate change between
    # calls must record again (the optimizer's hyper-parameters are part of the signature)
    data = _batches("mlp", "float64", 10, [8] * 10)
    (m_e, o_e, step_e), (m_c, o_c, _) = _setup("mlp", "float64"), _setup("mlp", "float64")

    def step_args(model, opt, x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    if style == "arguments":
        compiled = gradflow.compile(step_args)
        call = lambda x, y: compiled(m_c, o_c, x, y)  # noqa: E731
    else:
        def step_defaults(x, y, model=m_c, opt=o_c):
            return step_args(model, opt, x, y)
        compiled = gradflow.compile(step_defaults)
        call = compiled
    for i, (x, y) in enumerate(data):
        if i == 6:
            for o in (o_e, o_c):
                o.param_groups[0]["lr"] = 0.2
        le, lc = step_e(x, y), call(x, y)
        np.testing.assert_allclose(lc.numpy(), le.numpy(), rtol=1e-11, err_msg=f"step {i}")
    for pe, pc in zip(m_e.parameters(), m_c.parameters()):
        np.testing.assert_allclose(pc.numpy(), pe.numpy(), rtol=1e-11, atol=1e-13)
    assert compiled.stats["signatures"] == 2 and compiled.stats["replayed"] >= 2, compiled.stats


SCALE = 1.0


def test_a_number_the_step_reads_is_part_of_the_signature(be):
    # a replay runs no Python: a global or closure number changed between calls must not
    # be frozen at its recorded value
    global SCALE
    data = _batches("mlp", "float64", 12, [8] * 12)
    (m_e, o_e, _), (m_c, o_c, _) = _twin_steps(None)

    def step_e(x, y):
        o_e.zero_grad()
        loss = F.cross_entropy(m_e(x), y) * SCALE
        loss.backward()
        o_e.step()
        return loss

    def step_c(x, y):  # reads SCALE itself: only names the compiled function uses are guarded
        o_c.zero_grad()
        loss = F.cross_entropy(m_c(x), y) * SCALE
        loss.backward()
        o_c.step()
        return loss
    compiled = gradflow.compile(step_c)
    try:
        for i, (x, y) in enumerate(data):
            SCALE = 1.0 if i < 6 else 3.0
            le, lc = step_e(x, y), compiled(x, y)
            np.testing.assert_allclose(lc.numpy(), le.numpy(), rtol=1e-11, err_msg=f"step {i}")
    finally:
        SCALE = 1.0
    assert compiled.stats["signatures"] == 2 and compiled.stats["replayed"] >= 3, compiled.stats
    _same_parameters(m_e, m_c)


def test_step_with_clip_grad_norm_replays_like_eager(be):
    # clip_grad_norm_ works in tensor ops (no .item()), so a clipping step is captured
    data = _batches("mlp", "float64", 8, [8] * 8)
    (m_e, _, step_e), (m_c, _, step_c) = _twin_steps(
        lambda model, x, y: F.cross_entropy(model(x), y),
        after_backward=lambda model: nn.utils.clip_grad_norm_(model.parameters(), 0.05))
    compiled = gradflow.compile(step_c)
    for i, (x, y) in enumerate(data):
        (le, te), (lc, tc) = step_e(x, y), compiled(x, y)
        np.testing.assert_allclose(lc.numpy(), le.numpy(), rtol=1e-11, err_msg=f"step {i}")
        np.testing.assert_allclose(tc.numpy(), te.numpy(), rtol=1e-11, err_msg=f"step {i}")
        assert te.item() > 0.05  # the clipping is active in every step
    assert compiled.stats["replayed"] == 4, compiled.stats
    _same_parameters(m_e, m_c)


def test_exact_gelu_step_replays_like_eager_for_any_input_range(be):
    # erf is one backend kernel (its series length depends on the data inside the kernel),
    # so a GELU net captures, and later batches with larger inputs still get full precision
    xs = [gradflow.tensor(np.random.default_rng(i).standard_normal((6, 4)) *
                          (0.1 if i < 5 else 3.0)) for i in range(8)]
    y = gradflow.tensor(np.arange(6) % 3)

    def make():
        gradflow.manual_seed(4)
        model = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 3)).to(dtype=gradflow.float64)
        return model, gradflow.optim.SGD(model.parameters(), lr=0.1)
    (m_e, _, step_e), (m_c, _, step_c) = _twin_steps(
        lambda model, x, y: F.cross_entropy(model(x), y), make=make)
    compiled = gradflow.compile(step_c)
    for i, x in enumerate(xs):
        np.testing.assert_allclose(compiled(x, y).numpy(), step_e(x, y).numpy(), rtol=1e-12,
                                   err_msg=f"step {i}")
    assert compiled.stats["replayed"] == 4, compiled.stats
    _same_parameters(m_e, m_c, rtol=1e-12, atol=1e-14)


def test_a_module_setting_changed_between_calls_records_again(be):
    # dropout's p reaches its kernels as a constant: changing it must not replay the old one
    gradflow.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.0), nn.Linear(8, 3)).to(dtype=gradflow.float64)
    x = gradflow.tensor(np.random.default_rng(1).standard_normal((6, 4)))
    compiled = gradflow.compile(lambda x: model(x))
    with gradflow.no_grad():
        for _ in range(5):
            a = compiled(x)
        np.testing.assert_allclose(a.numpy(), model(x).numpy(), rtol=1e-12)
        model[1].p = 1.0  # everything dropped: the output is the last layer's bias
        for _ in range(5):
            b = compiled(x)
            np.testing.assert_allclose(b.numpy(), np.broadcast_to(model[2].bias.numpy(), (6, 3)),
                                       rtol=1e-12)
    assert compiled.stats["signatures"] == 2 and compiled.stats["replayed"] >= 2
