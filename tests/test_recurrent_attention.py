"""Recurrent and attention layers (gradflow/nn/modules/rnn.py, activation.py, transformer.py):
outputs, final states and every gradient against PyTorch from the same weights (loaded
through load_state_dict, so the parameter names and shapes must be PyTorch's), gradcheck
of the pieces without PyTorch, an LSTM that learns, and the errors for bad input."""
from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.autograd import gradcheck
from gradflow.nn.modules.rnn import _gru_step, _lstm_step

from conftest import requires_torch, tols

DTYPES = ["float32", "float64"]


def _np(t):
    return np.asarray(t.detach().numpy() if hasattr(t, "detach") else t.numpy())


def _tol(dtype):
    # float32 through a few recurrent steps / softmaxes: a little looser than tols()
    return dict(rtol=2e-4, atol=2e-5) if dtype == "float32" else tols(dtype)


def _load_torch_weights(gmod, tmod):
    """Copy the torch module's (fresh, random) weights into the gradflow twin by name."""
    tsd = tmod.state_dict()
    assert list(gmod.state_dict()) == list(tsd)
    gmod.load_state_dict({k: v.detach().numpy() for k, v in tsd.items()})


def _twin(tcls, gcls, dtype, *args, **kwargs):
    import torch
    torch.manual_seed(0)
    tmod = tcls(*args, **kwargs).to(getattr(torch, dtype))
    gmod = gcls(*args, **kwargs).to(getattr(gf, dtype))
    _load_torch_weights(gmod, tmod)
    return gmod, tmod


def _leaf_pair(a, dtype, requires_grad=True):
    import torch
    a = np.asarray(a, dtype=dtype)
    return (gf.tensor(a, requires_grad=requires_grad),
            torch.tensor(a, requires_grad=requires_grad))


def _assert_close(g, t, dtype, what):
    np.testing.assert_allclose(_np(g), t.detach().numpy(), err_msg=what, **_tol(dtype))


def _assert_param_grads(gmod, tmod, dtype):
    tparams = dict(tmod.named_parameters())
    names = [n for n, _ in gmod.named_parameters()]
    assert names == list(tparams)
    for n, p in gmod.named_parameters():
        assert p.grad is not None, f"{n} got no gradient"
        _assert_close(p.grad, tparams[n].grad, dtype, f"grad of {n}")


def _weighted_sum(outs, rng):
    """Per library, sum_i <w_i, out_i> with fixed random w_i (the same for both libraries)."""
    ws = [rng.standard_normal(tuple(o.shape)) for o in outs[0]]
    return [sum((o * _const_like(o, w)).sum() for o, w in zip(lib, ws)) for lib in outs]


def _const_like(o, w):
    if isinstance(o, gf.Tensor):
        return gf.tensor(w.astype(o.dtype))
    import torch
    return torch.tensor(w, dtype=o.dtype)


# ==============================================================================================
# RNN / LSTM / GRU against PyTorch
# ==============================================================================================
KINDS = {"rnn_tanh": ("RNN", {}), "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
         "lstm": ("LSTM", {}), "gru": ("GRU", {})}
CONFIGS = [dict(num_layers=1, bidirectional=False, batch_first=False, hx=False),
           dict(num_layers=2, bidirectional=True, batch_first=True, hx=True),
           dict(num_layers=2, bidirectional=False, batch_first=False, hx=True),
           dict(num_layers=1, bidirectional=True, batch_first=False, hx=False, bias=False)]


def _initial_state(kind, shape, dtype, rng):
    n = 2 if kind == "lstm" else 1
    pairs = [_leaf_pair(rng.standard_normal(shape), dtype) for _ in range(n)]
    if kind == "lstm":
        return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), [x for p in pairs for x in p]
    return pairs[0][0], pairs[0][1], list(pairs[0])


def _flat_outputs(out, state):
    return [out] + (list(state) if isinstance(state, tuple) else [state])


@requires_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("kind", list(KINDS))
def test_recurrent_layer_matches_torch(kind, cfg, dtype):
    import torch
    cls, extra = KINDS[kind]
    cfg = dict(cfg)
    use_hx = cfg.pop("hx")
    gmod, tmod = _twin(getattr(torch.nn, cls), getattr(nn, cls), dtype, 3, 4, **cfg, **extra)
    rng = np.random.default_rng(1)
    L, N, D = 5, 2, 2 if cfg["bidirectional"] else 1
    shape = (N, L, 3) if cfg["batch_first"] else (L, N, 3)
    xg, xt = _leaf_pair(rng.standard_normal(shape), dtype)
    gargs, targs, h_leaves = ((), (), [])
    if use_hx:
        hg, ht, h_leaves = _initial_state(kind, (D * cfg["num_layers"], N, 4), dtype, rng)
        gargs, targs = (hg,), (ht,)
    gouts, touts = _flat_outputs(*gmod(xg, *gargs)), _flat_outputs(*tmod(xt, *targs))
    assert gouts[0].shape == tuple(touts[0].shape) == shape[:2] + (D * 4,)
    for i, (g, t) in enumerate(zip(gouts, touts)):
        assert g.shape == tuple(t.shape)
        _assert_close(g, t, dtype, f"output {i}")
    lg, lt = _weighted_sum([gouts, touts], rng)
    lg.backward()
    lt.backward()
    _assert_close(xg.grad, xt.grad, dtype, "input grad")
    for g, t in zip(h_leaves[0::2], h_leaves[1::2]):
        _assert_close(g.grad, t.grad, dtype, "initial state grad")
    _assert_param_grads(gmod, tmod, dtype)


@requires_torch
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_recurrent_unbatched_input_matches_torch(kind):
    import torch
    cls, _ = KINDS[kind]
    gmod, tmod = _twin(getattr(torch.nn, cls), getattr(nn, cls), "float64", 3, 4,
                       bidirectional=True)
    rng = np.random.default_rng(2)
    xg, xt = _leaf_pair(rng.standard_normal((6, 3)), "float64")
    hg, ht, leaves = _initial_state(kind, (2, 4), "float64", rng)
    gouts, touts = _flat_outputs(*gmod(xg, hg)), _flat_outputs(*tmod(xt, ht))
    assert gouts[0].shape == (6, 8) and gouts[1].shape == (2, 4)
    for g, t in zip(gouts, touts):
        _assert_close(g, t, "float64", "unbatched output")
    lg, lt = _weighted_sum([gouts, touts], rng)
    lg.backward()
    lt.backward()
    _assert_close(xg.grad, xt.grad, "float64", "input grad")
    _assert_close(leaves[0].grad, leaves[1].grad, "float64", "h_0 grad")
    _assert_param_grads(gmod, tmod, "float64")


CELLS = {"rnn_tanh": ("RNNCell", {}), "rnn_relu": ("RNNCell", {"nonlinearity": "relu"}),
         "lstm": ("LSTMCell", {}), "gru": ("GRUCell", {}),
         "gru_nobias": ("GRUCell", {"bias": False})}


@requires_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("kind", list(CELLS))
def test_cell_matches_torch(kind, batched, dtype):
    import torch
    cls, extra = CELLS[kind]
    gmod, tmod = _twin(getattr(torch.nn, cls), getattr(nn, cls), dtype, 3, 4, **extra)
    rng = np.random.default_rng(3)
    lead = (2,) if batched else ()
    xg, xt = _leaf_pair(rng.standard_normal(lead + (3,)), dtype)
    hg, ht, leaves = _initial_state(kind.split("_")[0], lead + (4,), dtype, rng)
    gouts, touts = gmod(xg, hg), tmod(xt, ht)
    gouts, touts = (list(o) if isinstance(o, tuple) else [o] for o in (gouts, touts))
    for g, t in zip(gouts, touts):
        assert g.shape == tuple(t.shape) == lead + (4,)
        _assert_close(g, t, dtype, "cell output")
    lg, lt = _weighted_sum([gouts, touts], rng)
    lg.backward()
    lt.backward()
    _assert_close(xg.grad, xt.grad, dtype, "input grad")
    for g, t in zip(leaves[0::2], leaves[1::2]):
        _assert_close(g.grad, t.grad, dtype, "state grad")
    _assert_param_grads(gmod, tmod, dtype)
    g0, t0 = gmod(xg), tmod(xt)  # no state given: zeros, as torch
    if kind == "lstm":
        g0, t0 = g0[0], t0[0]
    _assert_close(g0, t0, dtype, "output from zero state")


@requires_torch
def test_recurrent_parameters_named_shaped_and_initialised_as_torch():
    import torch
    for cls, kw in (("LSTM", dict(num_layers=2, bidirectional=True)), ("GRU", {}),
                    ("RNN", dict(bias=False, num_layers=3))):
        g, t = getattr(nn, cls)(5, 6, **kw), getattr(torch.nn, cls)(5, 6, **kw)
        gshapes = {n: p.shape for n, p in g.named_parameters()}
        assert gshapes == {n: tuple(p.shape) for n, p in t.named_parameters()}
        assert list(gshapes) == list(dict(t.named_parameters()))
        bound = 1 / np.sqrt(6)
        for n, p in g.named_parameters():
            v = p.numpy()
            assert np.abs(v).max() <= bound and v.std() > bound / 4, n
        assert len(g.all_weights) == len(t.all_weights)
        g.flatten_parameters()  # accepted, as torch's
    assert "weight_hh_l1_reverse" in dict(nn.LSTM(2, 3, 2, bidirectional=True).named_parameters())


@requires_torch
def test_recurrent_dropout_between_layers():
    import torch
    gmod, tmod = _twin(torch.nn.GRU, nn.GRU, "float64", 3, 4, num_layers=2, dropout=0.5)
    x = np.random.default_rng(4).standard_normal((5, 2, 3))
    gmod.train()
    a, b = gmod(gf.tensor(x))[0].numpy(), gmod(gf.tensor(x))[0].numpy()
    assert not np.allclose(a, b)  # a fresh dropout mask per call
    gmod.eval()
    tmod.eval()
    np.testing.assert_allclose(gmod(gf.tensor(x))[0].numpy(),
                               tmod(torch.tensor(x))[0].detach().numpy(), rtol=1e-10, atol=1e-12)
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        nn.LSTM(3, 4, dropout=0.2)


# ==============================================================================================
# gradcheck without PyTorch
# ==============================================================================================
def test_gradcheck_lstm_and_gru_cells():
    rng = np.random.default_rng(5)
    t = lambda *s: gf.tensor(rng.standard_normal(s), requires_grad=True)  # noqa: E731
    x, h, c = t(2, 3), t(2, 4), t(2, 4)

    def lstm(x, h, c, wi, wh, bi, bh):
        return _lstm_step(F.linear(x, wi, bi), (h, c), wh, bh)

    assert gradcheck(lstm, (x, h, c, t(16, 3), t(16, 4), t(16), t(16)))
    assert gradcheck(lambda x, h, wi, wh, bi, bh: _gru_step(F.linear(x, wi, bi), (h,), wh, bh)[0],
                     (x, h, t(12, 3), t(12, 4), t(12), t(12)))
    cell = nn.LSTMCell(3, 4).to(gf.float64)
    assert gradcheck(lambda x, h, c: cell(x, (h, c)), (x, h, c))


def test_gradcheck_bidirectional_gru_layer_input_and_state():
    m = nn.GRU(2, 3, num_layers=2, bidirectional=True, batch_first=True).to(gf.float64)
    rng = np.random.default_rng(6)
    x = gf.tensor(rng.standard_normal((2, 4, 2)), requires_grad=True)
    h = gf.tensor(rng.standard_normal((4, 2, 3)), requires_grad=True)
    assert gradcheck(lambda x, h: m(x, h), (x, h))


def test_gradcheck_scaled_dot_product_attention():
    rng = np.random.default_rng(7)
    t = lambda *s: gf.tensor(rng.standard_normal(s), requires_grad=True)  # noqa: E731
    q, k, v = t(2, 3, 4), t(2, 5, 4), t(2, 5, 2)
    keep = gf.tensor(rng.random((3, 5)) > 0.4) | gf.tensor(np.eye(3, 5, dtype=bool))
    add = gf.tensor(rng.standard_normal((2, 3, 5)))
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v), (q, k, v))
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=keep),
                     (q, k, v))
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=add,
                                                                    scale=0.7), (q, k, v))
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                     (q, k, v))


def test_sdpa_masks_do_what_they_say():
    rng = np.random.default_rng(8)
    q, k, v = (gf.tensor(rng.standard_normal(s)) for s in ((1, 3, 2), (1, 3, 2), (1, 3, 2)))
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True).numpy()
    np.testing.assert_allclose(out[0, 0], v.numpy()[0, 0], rtol=1e-6)  # row 0 sees only key 0
    keep_last = gf.tensor(np.array([[False, False, True]] * 3))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep_last).numpy()
    np.testing.assert_allclose(out[0], np.repeat(v.numpy()[0, 2:], 3, 0), rtol=1e-6)


# ==============================================================================================
# attention against PyTorch
# ==============================================================================================
SDPA_CASES = {
    "plain": {}, "causal_L_ne_S": dict(is_causal=True), "scale": dict(scale=0.25),
    "bool_mask": dict(attn_mask="bool"), "float_mask": dict(attn_mask="float"),
    "gqa": dict(enable_gqa=True),
}


@requires_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(SDPA_CASES))
def test_sdpa_matches_torch(case, dtype):
    import torch
    rng = np.random.default_rng(9)
    kw = dict(SDPA_CASES[case])
    kv_heads = 1 if case == "gqa" else 2
    (qg, qt), (kg, kt), (vg, vt) = (_leaf_pair(rng.standard_normal(s), dtype) for s in
                                    ((2, 2, 3, 4), (2, kv_heads, 5, 4), (2, kv_heads, 5, 3)))
    gkw, tkw = dict(kw), dict(kw)
    if kw.get("attn_mask") == "bool":
        m = rng.random((3, 5)) > 0.5
        m[:, 0] = True  # no fully masked row (NaN in both)
        gkw["attn_mask"], tkw["attn_mask"] = gf.tensor(m), torch.tensor(m)
    elif kw.get("attn_mask") == "float":
        gkw["attn_mask"], tkw["attn_mask"] = _leaf_pair(rng.standard_normal((2, 2, 3, 5)), dtype,
                                                        requires_grad=False)
    og = F.scaled_dot_product_attention(qg, kg, vg, **gkw)
    ot = torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, **tkw)
    assert og.shape == tuple(ot.shape) == (2, 2, 3, 3)
    _assert_close(og, ot, dtype, "sdpa output")
    lg, lt = _weighted_sum([[og], [ot]], rng)
    lg.backward()
    lt.backward()
    for name, g, t in (("q", qg, qt), ("k", kg, kt), ("v", vg, vt)):
        _assert_close(g.grad, t.grad, dtype, f"grad of {name}")


def _mha_masks(case, N, L, S, H, rng):
    """(key_padding_mask, attn_mask, is_causal) as numpy arrays for one test case."""
    pad = np.zeros((N, S), bool)
    pad[0, -2:] = True  # sample 0 has two padded keys
    if case == "key_padding_mask":
        return pad, None, False
    if case == "float_key_padding":
        return np.where(pad, -1e4, 0.0) + rng.standard_normal((N, S)) * 0.1, None, False
    if case == "causal":
        return pad, np.triu(np.ones((L, S), bool), 1), True
    if case == "bool_attn_mask_3d":
        m = rng.random((N * H, L, S)) > 0.6
        m[..., 0] = False  # keep key 0 for every query
        return None, m, False
    if case == "float_attn_mask":
        return None, rng.standard_normal((L, S)), False
    return None, None, False


MHA_CASES = ["none", "key_padding_mask", "float_key_padding", "causal", "bool_attn_mask_3d",
             "float_attn_mask"]


@requires_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("case", MHA_CASES)
def test_multihead_self_attention_matches_torch(case, batch_first, dtype):
    import torch
    E, H, N, L = 8, 2, 3, 4
    gmod, tmod = _twin(torch.nn.MultiheadAttention, nn.MultiheadAttention, dtype, E, H,
                       batch_first=batch_first)
    rng = np.random.default_rng(10)
    xg, xt = _leaf_pair(rng.standard_normal((N, L, E) if batch_first else (L, N, E)), dtype)
    kpm, am, causal = _mha_masks(case, N, L, L, H, rng)
    conv = lambda m, lib: None if m is None else (  # noqa: E731
        gf.tensor(m.astype(dtype) if m.dtype != bool else m) if lib == "g"
        else torch.tensor(m.astype(dtype) if m.dtype != bool else m))
    og, wg = gmod(xg, xg, xg, key_padding_mask=conv(kpm, "g"), attn_mask=conv(am, "g"),
                  is_causal=causal)
    ot, wt = tmod(xt, xt, xt, key_padding_mask=conv(kpm, "t"), attn_mask=conv(am, "t"),
                  is_causal=causal)
    assert og.shape == tuple(ot.shape) == xg.shape and wg.shape == (N, L, L)
    _assert_close(og, ot, dtype, "attn_output")
    _assert_close(wg, wt, dtype, "attn_weights")
    lg, lt = _weighted_sum([[og, wg], [ot, wt]], rng)
    lg.backward()
    lt.backward()
    _assert_close(xg.grad, xt.grad, dtype, "input grad")
    _assert_param_grads(gmod, tmod, dtype)


@requires_torch
@pytest.mark.parametrize("variant", ["cross_kdim_vdim", "cross_same_dim", "per_head_weights",
                                     "no_weights_no_bias", "unbatched"])
def test_multihead_attention_variants_match_torch(variant):
    import torch
    E, H, N, L, S, dtype = 6, 3, 2, 3, 4, "float64"
    kw = {"cross_kdim_vdim": dict(kdim=5, vdim=7), "no_weights_no_bias": dict(bias=False)}
    gmod, tmod = _twin(torch.nn.MultiheadAttention, nn.MultiheadAttention, dtype, E, H,
                       batch_first=True, **kw.get(variant, {}))
    if variant == "cross_kdim_vdim":
        assert gmod.in_proj_weight is None and gmod.k_proj_weight.shape == (E, 5)
    rng = np.random.default_rng(11)
    kd, vd = (5, 7) if variant == "cross_kdim_vdim" else (E, E)
    lead = () if variant == "unbatched" else (N,)
    (qg, qt), (kg, kt), (vg, vt) = (_leaf_pair(rng.standard_normal(lead + s), dtype) for s in
                                    ((L, E), (S, kd), (S, vd)))
    call = dict(need_weights=variant != "no_weights_no_bias",
                average_attn_weights=variant != "per_head_weights")
    if variant == "unbatched":
        call["key_padding_mask"] = np.array([False, False, True, False])
    gcall = {k: gf.tensor(v) if isinstance(v, np.ndarray) else v for k, v in call.items()}
    tcall = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in call.items()}
    (og, wg), (ot, wt) = gmod(qg, kg, vg, **gcall), tmod(qt, kt, vt, **tcall)
    _assert_close(og, ot, dtype, "attn_output")
    if variant == "no_weights_no_bias":
        assert wg is None and wt is None
        outs = [[og], [ot]]
    else:
        assert wg.shape == tuple(wt.shape)
        _assert_close(wg, wt, dtype, "attn_weights")
        outs = [[og, wg], [ot, wt]]
    lg, lt = _weighted_sum(outs, rng)
    lg.backward()
    lt.backward()
    for name, g, t in (("query", qg, qt), ("key", kg, kt), ("value", vg, vt)):
        _assert_close(g.grad, t.grad, dtype, f"grad of {name}")
    _assert_param_grads(gmod, tmod, dtype)


def test_multihead_attention_dropout_only_in_training():
    m = nn.MultiheadAttention(4, 2, dropout=0.5, batch_first=True).to(gf.float64)
    x = gf.tensor(np.random.default_rng(12).standard_normal((2, 3, 4)))
    m.eval()
    (a, wa), (b, wb) = m(x, x, x), m(x, x, x)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(wa.numpy().sum(-1), 1.0, rtol=1e-12)
    m.train()
    _, wt = m(x, x, x, average_attn_weights=False)
    w = wt.numpy()
    assert (w == 0).any() and not np.allclose(w.sum(-1), 1.0)  # dropped and rescaled


ENCODER_CASES = [dict(norm_first=False, activation="relu", batch_first=False),
                 dict(norm_first=True, activation="gelu", batch_first=True),
                 dict(norm_first=False, activation="callable", batch_first=True)]


@requires_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", ENCODER_CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_transformer_encoder_matches_torch(cfg, dtype):
    import torch
    cfg = dict(cfg)
    act = cfg.pop("activation")
    gact, tact = (F.silu, torch.nn.functional.silu) if act == "callable" else (act, act)
    torch.manual_seed(0)
    tlayer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation=tact, **cfg)
    tmod = torch.nn.TransformerEncoder(tlayer, 2, norm=torch.nn.LayerNorm(8),
                                       enable_nested_tensor=False).to(getattr(torch, dtype))
    glayer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation=gact, **cfg)
    gmod = nn.TransformerEncoder(glayer, 2, norm=nn.LayerNorm(8)).to(getattr(gf, dtype))
    _load_torch_weights(gmod, tmod)
    rng = np.random.default_rng(13)
    N, S = 2, 5
    xg, xt = _leaf_pair(rng.standard_normal((N, S, 8) if cfg["batch_first"] else (S, N, 8)), dtype)
    pad = np.zeros((N, S), bool)
    pad[1, -2:] = True
    causal = np.triu(np.ones((S, S), bool), 1)
    og = gmod(xg, mask=gf.tensor(causal), src_key_padding_mask=gf.tensor(pad))
    ot = tmod(xt, mask=torch.tensor(causal), src_key_padding_mask=torch.tensor(pad))
    _assert_close(og, ot, dtype, "encoder output")
    lg, lt = _weighted_sum([[og], [ot]], rng)
    lg.backward()
    lt.backward()
    _assert_close(xg.grad, xt.grad, dtype, "input grad")
    _assert_param_grads(gmod, tmod, dtype)
    # the layers are independent copies, as torch's
    assert gmod.layers[0].linear1.weight is not gmod.layers[1].linear1.weight


# ==============================================================================================
# every backend agrees with the numpy backend
# ==============================================================================================
def test_layers_run_on_every_backend(backend):
    rng = np.random.default_rng(14)
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    results = {}
    for name in ("numpy", backend):
        with gf.backend(name):
            gf.manual_seed(0)
            lstm = nn.LSTM(3, 4, batch_first=True, bidirectional=True)
            attn = nn.MultiheadAttention(8, 2, batch_first=True)
            if name != "numpy":
                lstm.load_state_dict(results["numpy"][2])
                attn.load_state_dict(results["numpy"][3])
            xt = gf.tensor(x, requires_grad=True)
            y, _ = lstm(xt)
            out, _ = attn(y, y, y)
            out.sum().backward()
            results[name] = (out.numpy(), xt.grad.numpy(), lstm.state_dict(), attn.state_dict())
    np.testing.assert_allclose(results[backend][0], results["numpy"][0], **tols("float32"))
    np.testing.assert_allclose(results[backend][1], results["numpy"][1], **tols("float32"))


# ==============================================================================================
# learning and errors
# ==============================================================================================
def test_lstm_learns_to_remember_the_first_input():
    """Target: the sign of the first element of a noisy sequence, read at the last step."""
    gf.manual_seed(0)
    rng = np.random.default_rng(15)
    x = rng.standard_normal((64, 6, 1)).astype(np.float32)
    y = np.sign(x[:, 0, 0]).astype(np.float32)
    lstm, head = nn.LSTM(1, 8, batch_first=True), nn.Linear(8, 1)
    opt = gf.optim.Adam(list(lstm.parameters()) + list(head.parameters()), lr=0.05)
    xs, ys = gf.tensor(x), gf.tensor(y)
    losses = []
    for _ in range(60):
        out, (h, _) = lstm(xs)
        loss = F.mse_loss(head(out[:, -1]).squeeze(-1), ys)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    np.testing.assert_allclose(h[0].numpy(), out[:, -1].numpy(), rtol=1e-6)  # h_n == last output
    assert losses[-1] < 0.2 * losses[0], losses[::10]


def test_recurrent_errors_name_layer_and_shapes():
    lstm = nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match=r"LSTM: expected input to be 2-D.*\(2, 5, 3, 1\)"):
        lstm(gf.zeros(2, 5, 3, 1))
    with pytest.raises(ValueError, match=r"LSTM: input.size\(-1\) must be equal to input_size. "
                                         r"Expected 3, got 7"):
        lstm(gf.zeros(5, 2, 7))
    with pytest.raises(ValueError,
                       match=r"LSTM: expected h_0 of shape \(2, 2, 4\), got \(1, 2, 4\)"):
        lstm(gf.zeros(5, 2, 3), (gf.zeros(1, 2, 4), gf.zeros(2, 2, 4)))
    with pytest.raises(ValueError, match=r"LSTM: for batched 3-D input, c_0 should also be 3-D"):
        lstm(gf.zeros(5, 2, 3), (gf.zeros(2, 2, 4), gf.zeros(2, 4)))
    with pytest.raises(TypeError, match="LSTM: hx must be a tuple"):
        lstm(gf.zeros(5, 2, 3), gf.zeros(2, 2, 4))
    with pytest.raises(TypeError, match="GRU: input dtype float64 does not match.*float32"):
        nn.GRU(3, 4)(gf.zeros(5, 2, 3, dtype=gf.float64))
    with pytest.raises(NotImplementedError, match="proj_size"):
        nn.LSTM(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="RNN: unknown nonlinearity 'sigmoid'"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"GRUCell: expected input of shape \(N, 3\) or \(3,\), "
                                         r"got \(2, 5\)"):
        nn.GRUCell(3, 4)(gf.zeros(2, 5))
    with pytest.raises(ValueError, match=r"LSTMCell: expected c of shape \(2, 4\).*got \(2, 5\)"):
        nn.LSTMCell(3, 4)(gf.zeros(2, 3), (gf.zeros(2, 4), gf.zeros(2, 5)))

    class PackedSequence:  # what nn.utils.rnn.pack_padded_sequence would give in torch
        pass

    with pytest.raises(NotImplementedError, match="GRU: PackedSequence"):
        nn.GRU(3, 4)(PackedSequence())


def test_attention_errors_name_op_and_shapes():
    q = gf.zeros(2, 3, 4)
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: .*query \(2, 3, 4\), "
                                         r"key \(2, 5, 3\)"):
        F.scaled_dot_product_attention(q, gf.zeros(2, 5, 3), gf.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="attn_mask should not be set when is_causal"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=gf.zeros(3, 3), is_causal=True)
    with pytest.raises(TypeError, match="attn_mask must be bool or have the query's dtype"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=gf.zeros(3, 3, dtype=gf.int64))
    mha = nn.MultiheadAttention(4, 2)
    with pytest.raises(ValueError, match=r"MultiheadAttention: query must have 4 features.*"
                                         r"\(3, 2, 5\)"):
        mha(gf.zeros(3, 2, 5), gf.zeros(3, 2, 4), gf.zeros(3, 2, 4))
    with pytest.raises(ValueError, match=r"MultiheadAttention: query, key and value must all be "
                                         r"3-D .* or all 2-D"):
        mha(gf.zeros(3, 2, 4), gf.zeros(3, 4), gf.zeros(3, 4))
    x = gf.zeros(3, 2, 4)
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(3, 3\) or \(4, 3, 3\).*"
                                         r"got \(2, 3\)"):
        mha(x, x, x, attn_mask=gf.zeros(2, 3))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(N, S\) = \(2, 3\)"):
        mha(x, x, x, key_padding_mask=gf.zeros(3, 2, dtype=gf.bool_))
    with pytest.raises(RuntimeError, match="need attn_mask if specifying the is_causal hint"):
        mha(x, x, x, is_causal=True)
    with pytest.raises(ValueError, match=r"embed_dim \(5\) .* divisible by num_heads \(2\)"):
        nn.MultiheadAttention(5, 2)
    with pytest.raises(RuntimeError, match="activation should be relu/gelu or a callable"):
        nn.TransformerEncoderLayer(4, 2, activation="swish")


@requires_torch
@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")  # torch's own, norm_first
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_decoder_matches_torch(norm_first, dtype):
    import torch
    kw = dict(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=2, dim_feedforward=16,
              dropout=0.0, batch_first=True, norm_first=norm_first)
    gmod, tmod = _twin(torch.nn.Transformer, nn.Transformer, dtype, **kw)
    assert isinstance(gmod.decoder.layers[1], nn.TransformerDecoderLayer)
    rng = np.random.default_rng(16)
    N, S, T = 2, 5, 4
    (sg, st), (tg, tt) = (_leaf_pair(rng.standard_normal(s), dtype) for s in ((N, S, 8), (N, T, 8)))
    causal_g = nn.Transformer.generate_square_subsequent_mask(T, dtype=getattr(gf, dtype))
    causal_t = torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=getattr(torch, dtype))
    np.testing.assert_array_equal(causal_g.numpy(), causal_t.numpy())
    pad = np.zeros((N, S), bool)
    pad[0, -2:] = True
    og = gmod(sg, tg, tgt_mask=causal_g, src_key_padding_mask=gf.tensor(pad),
              memory_key_padding_mask=gf.tensor(pad), tgt_is_causal=True)
    ot = tmod(st, tt, tgt_mask=causal_t, src_key_padding_mask=torch.tensor(pad),
              memory_key_padding_mask=torch.tensor(pad), tgt_is_causal=True)
    assert og.shape == tuple(ot.shape) == (N, T, 8)
    _assert_close(og, ot, dtype, "transformer output")
    lg, lt = _weighted_sum([[og], [ot]], rng)
    lg.backward()
    lt.backward()
    _assert_close(sg.grad, st.grad, dtype, "src grad")
    _assert_close(tg.grad, tt.grad, dtype, "tgt grad")
    _assert_param_grads(gmod, tmod, dtype)
