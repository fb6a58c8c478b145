"""optim.LBFGS: trajectories step by step against torch.optim.LBFGS (float64), with and
without the strong-Wolfe line search, plus argument checking and the closure contract."""
import numpy as np
import pytest

import gradflow as gf
from gradflow import nn, optim

torch = pytest.importorskip("torch")


def _pair_regression(seed=0):
    """A small nonlinear regression (tanh features, 2 -> 6 -> 1), the same weights in
    both frameworks."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, 2))
    y = np.sin(x[:, :1] * 1.5) + 0.3 * x[:, 1:] ** 2
    w1, b1 = rng.normal(size=(6, 2)) * 0.5, rng.normal(size=6) * 0.1
    w2, b2 = rng.normal(size=(1, 6)) * 0.5, np.zeros(1)
    return x, y, [w1, b1, w2, b2]


def _run(framework, params0, loss_fn, steps, **kw):
    """Run ``steps`` LBFGS steps; return per step (returned loss, parameters, state counters)."""
    if framework == "torch":
        ps = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params0]
        opt = torch.optim.LBFGS(ps, **kw)
    else:
        ps = [gf.tensor(p, dtype=gf.float64, requires_grad=True) for p in params0]
        opt = optim.LBFGS(ps, **kw)

    def closure():
        opt.zero_grad()
        loss = loss_fn(ps)
        loss.backward()
        return loss

    out = []
    for _ in range(steps):
        loss = opt.step(closure)
        st = opt.state[ps[0]]
        out.append((float(loss.detach()), [p.detach().numpy().copy() for p in ps],
                    st["func_evals"], st["n_iter"]))
    return out


def _compare(a, b, rtol=1e-9, atol=1e-11):
    assert len(a) == len(b)
    for i, ((la, pa, ea, na), (lb, pb, eb, nb)) in enumerate(zip(a, b)):
        assert (ea, na) == (eb, nb), f"step {i}: evaluations/iterations differ"
        np.testing.assert_allclose(la, lb, rtol=rtol, atol=atol, err_msg=f"loss at step {i}")
        for x, y in zip(pa, pb):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"params at step {i}")


def _regression_loss(x, y, lib):
    def loss(ps):
        w1, b1, w2, b2 = ps
        xt = lib.tensor(x, dtype=lib.float64)
        yt = lib.tensor(y, dtype=lib.float64)
        h = (xt @ w1.t() + b1).tanh()
        return ((h @ w2.t() + b2 - yt) ** 2).mean()
    return loss


# few iterations per case: this fit amplifies rounding (a 1e-15 nudge of torch's own start
# moves its parameters by 1e-10 after 40 iterations), so long runs compare chaos, not code
@pytest.mark.parametrize("kw", [
    dict(max_iter=6),
    dict(max_iter=6, line_search_fn="strong_wolfe"),
    dict(lr=0.5, history_size=3, max_iter=6),
    dict(lr=0.8, history_size=2, max_iter=6, line_search_fn="strong_wolfe"),
    dict(max_iter=4, max_eval=5, line_search_fn="strong_wolfe"),
], ids=["fixed", "wolfe", "short-history", "wolfe-short-history", "max-eval"])
def test_regression_trajectory_matches_torch(kw):
    x, y, p0 = _pair_regression()
    ref = _run("torch", p0, _regression_loss(x, y, torch), 3, **kw)
    got = _run("gf", p0, _regression_loss(x, y, gf), 3, **kw)
    _compare(got, ref)


def _rosenbrock(ps):
    x = ps[0]
    return ((1 - x[:-1]) ** 2).sum() + (100 * (x[1:] - x[:-1] ** 2) ** 2).sum()


@pytest.mark.parametrize("kw", [
    dict(line_search_fn="strong_wolfe", max_iter=10),
    dict(line_search_fn="strong_wolfe", lr=4, max_iter=8, history_size=4),  # zooms
    dict(lr=0.01, max_iter=10),
], ids=["wolfe", "wolfe-long-step", "fixed-small-step"])
def test_rosenbrock_line_search_matches_torch(kw):
    """Rosenbrock's valley makes the line search extrapolate and zoom; the number of
    function evaluations per step (its discrete decisions) must agree exactly."""
    p0 = [np.array([-1.2, 1.0, -0.5, 0.8])]
    _compare(_run("gf", p0, _rosenbrock, 3, **kw), _run("torch", p0, _rosenbrock, 3, **kw))


def test_converges_on_quadratic_and_stops_on_tolerance():
    """A convex quadratic: the minimum is found and the optimizer stops before max_iter
    (few evaluations), with the same counters as torch."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 5))
    h = a @ a.T + 5 * np.eye(5)
    b = rng.normal(size=5)

    def loss_for(lib):
        ht, bt = lib.tensor(h, dtype=lib.float64), lib.tensor(b, dtype=lib.float64)
        return lambda ps: 0.5 * (ps[0] @ (ht @ ps[0])) - bt @ ps[0]

    kw = dict(line_search_fn="strong_wolfe", max_iter=100)
    got = _run("gf", [np.zeros(5)], loss_for(gf), 2, **kw)
    ref = _run("torch", [np.zeros(5)], loss_for(torch), 2, **kw)
    _compare(got, ref)
    np.testing.assert_allclose(got[-1][1][0], np.linalg.solve(h, b), atol=1e-6)
    assert got[0][3] < 100  # stopped on a tolerance, not on max_iter


class _SeqModel:
    """LSTM(1 -> 8) + Linear(8 -> 1), predicting the next value of a noisy sine (the
    time-series pattern), built in either framework with the same weights."""

    def __init__(self, lib, weights):
        self.lstm = lib.nn.LSTM(1, 8, batch_first=True).double()
        self.head = lib.nn.Linear(8, 1).double()
        named = list(self.lstm.named_parameters()) + \
            [("head." + n, p) for n, p in self.head.named_parameters()]
        with lib.no_grad():
            for n, p in named:
                p.copy_(lib.tensor(weights[n], dtype=lib.float64))
        self.params = [p for _, p in named]

    def __call__(self, x):
        out, _ = self.lstm(x)
        return self.head(out)


def _lstm_weights(seed=3):
    ref = torch.nn.LSTM(1, 8, batch_first=True).double()
    head = torch.nn.Linear(8, 1).double()
    g = torch.Generator().manual_seed(seed)
    w = {}
    for n, p in ref.named_parameters():
        w[n] = (torch.rand(p.shape, generator=g, dtype=torch.float64) - 0.5).numpy() * 0.7
    for n, p in head.named_parameters():
        w["head." + n] = (torch.rand(p.shape, generator=g, dtype=torch.float64) - 0.5).numpy()
    return w


@pytest.mark.parametrize("line_search", [None, "strong_wolfe"])
def test_lstm_time_series_fit_matches_torch(line_search):
    rng = np.random.default_rng(4)
    t = np.linspace(0, 4 * np.pi, 25)
    series = np.sin(t[None, :] + rng.uniform(0, 2 * np.pi, size=(3, 1))) + 0.05 * rng.normal(size=(3, 25))
    inp, target = series[:, :-1, None], series[:, 1:, None]
    w = _lstm_weights()
    traj = {}
    for name, lib, opt_mod in [("torch", torch, torch.optim), ("gf", gf, optim)]:
        model = _SeqModel(lib, w)
        opt = opt_mod.LBFGS(model.params, lr=0.8, max_iter=6, history_size=5,
                            line_search_fn=line_search)
        x, y = lib.tensor(inp, dtype=lib.float64), lib.tensor(target, dtype=lib.float64)

        def closure():
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            return loss

        traj[name] = []
        for _ in range(3):
            loss = opt.step(closure)
            traj[name].append((float(loss.detach()), [p.detach().numpy().copy() for p in model.params],
                               opt.state[model.params[0]]["func_evals"],
                               opt.state[model.params[0]]["n_iter"]))
    _compare(traj["gf"], traj["torch"], rtol=1e-8, atol=1e-10)
    assert traj["gf"][-1][0] < traj["gf"][0][0]


def test_float32_module_and_unused_parameter():
    """float32 parameters stay float32; a parameter without a gradient counts as zero."""
    model = nn.Linear(3, 1)
    unused = nn.Parameter(gf.ones(2))
    opt = optim.LBFGS(list(model.parameters()) + [unused], max_iter=5)
    x, y = gf.randn(10, 3), gf.randn(10, 1)

    def closure():
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        return loss

    first = float(opt.step(closure))
    second = float(opt.step(closure))
    assert second < first
    assert model.weight.dtype == gf.float32
    np.testing.assert_array_equal(unused.numpy(), np.ones(2))


def test_bad_arguments():
    p = [nn.Parameter(gf.zeros(2))]
    with pytest.raises(ValueError, match="line_search_fn"):
        optim.LBFGS(p, line_search_fn="backtracking")
    with pytest.raises(ValueError, match="max_iter"):
        optim.LBFGS(p, max_iter=0)
    with pytest.raises(ValueError, match="history_size"):
        optim.LBFGS(p, history_size=0)
    with pytest.raises(ValueError, match="learning rate"):
        optim.LBFGS(p, lr=-1)
    with pytest.raises(ValueError, match="parameter groups"):
        optim.LBFGS([{"params": p}, {"params": [nn.Parameter(gf.zeros(1))]}])
    with pytest.raises(RuntimeError, match="closure"):
        optim.LBFGS(p).step(None)
