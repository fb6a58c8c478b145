"""Small but realistic PyTorch-style programs, written once against a ``torch``-like
namespace and run on gradflow (``import gradflow as torch``) and, where PyTorch is
installed, on PyTorch itself from the same initial weights and data: the losses,
learning rates, gradient norms and final weights must agree. Plus the tensor idioms
and utilities such programs lean on (scatter_, index_select, nonzero, Generator,
OneCycleLR, LayerNorm, deepcopy of a model, ...), each checked against PyTorch or
gradcheck, and the errors they give on bad input."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as gnn
import gradflow.nn.functional as GF
from gradflow.autograd import gradcheck
from gradflow.utils.threads import blas_threads

from conftest import requires_torch


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with blas_threads(1):
        yield


def _np(t):
    return np.asarray(t.detach().cpu().numpy() if hasattr(t, "detach") else t, dtype=np.float64)


def _copy_weights(gmodel, tmodel):
    """gradflow state_dict -> the torch twin (same keys, exactly the same values)."""
    import torch
    sd = {k: torch.from_numpy(np.array(v.numpy())) for k, v in gmodel.state_dict().items()}
    tmodel.load_state_dict(sd)


def _assert_same_state(gmodel, tmodel, rtol=1e-4, atol=1e-5):
    gsd, tsd = gmodel.state_dict(), tmodel.state_dict()
    assert list(gsd) == list(tsd)
    for k in tsd:
        np.testing.assert_allclose(_np(gsd[k]), _np(tsd[k]), rtol=rtol, atol=atol, err_msg=k)


# ---------------------------------------------------------------------------------------------
# 1. a CNN classifier: Sequential/BatchNorm2d/Dropout/AdaptiveAvgPool2d, DataLoader, AdamW
#    with two param groups, a scheduler, clip_grad_norm_, train()/eval(), no_grad, accuracy
# ---------------------------------------------------------------------------------------------
def _cnn(torch):
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
                nn.Conv2d(6, 8, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                nn.AdaptiveAvgPool2d((1, 1)))
            self.drop = nn.Dropout(0.0)
            self.classifier = nn.Linear(8, 4)

        def forward(self, x):
            x = self.features(x)
            x = torch.flatten(x, 1)
            return self.classifier(self.drop(x))

    return Net()


def _train_cnn(torch, model, X, Y, sched_name, epochs=3):
    nn, optim = torch.nn, torch.optim
    ds = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(Y))
    dl = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=False)
    opt = optim.AdamW([{"params": model.features.parameters(), "lr": 3e-3},
                       {"params": model.classifier.parameters()}], lr=1e-2, weight_decay=0.05)
    S = optim.lr_scheduler
    sched = {"step": lambda: S.StepLR(opt, step_size=2, gamma=0.5),
             "cos": lambda: S.CosineAnnealingLR(opt, T_max=epochs),
             "onecycle": lambda: S.OneCycleLR(opt, max_lr=[3e-3, 1e-2], epochs=epochs,
                                              steps_per_epoch=len(dl)),
             "plateau": lambda: S.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=0),
             }[sched_name]()
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    losses, lrs, norms, accs = [], [], [], []
    for epoch in range(epochs):
        model.train()
        for xb, yb in dl:
            opt.zero_grad()
            loss = crit(model(xb), yb)
            loss.backward()
            total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
            norms.append(total.item())
            opt.step()
            if sched_name == "onecycle":
                sched.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            out = model(torch.from_numpy(X))
            val = crit(out, torch.from_numpy(Y)).item()
            accs.append((out.argmax(dim=1) == torch.from_numpy(Y)).sum().item() / len(Y))
        if sched_name == "plateau":
            sched.step(val if epoch != 1 else 10.0)  # one bad epoch: the lr halves
        elif sched_name != "onecycle":
            sched.step()
        lrs.append([g["lr"] for g in opt.param_groups])
    return np.array(losses), np.array(lrs), np.array(norms), accs


@requires_torch
@pytest.mark.parametrize("sched", ["step", "cos", "plateau", "onecycle"])
def test_cnn_classifier_matches_torch(sched):
    import torch
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 1, 8, 8)).astype(np.float32)
    Y = rng.integers(0, 4, 32)
    gm, tm = _cnn(gf), _cnn(torch)
    _copy_weights(gm, tm)
    gl, glr, gn, gacc = _train_cnn(gf, gm, X, Y, sched)
    tl, tlr, tn, tacc = _train_cnn(torch, tm, X, Y, sched)
    np.testing.assert_allclose(gl, tl, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(glr, tlr, rtol=1e-12)
    np.testing.assert_allclose(gn, tn, rtol=1e-4, atol=1e-6)
    assert gacc == tacc
    _assert_same_state(gm, tm)


def test_cnn_learns_and_state_dict_round_trips(tmp_path):
    """Without torch: the same program learns a separable task, and the checkpoint
    (model + optimizer + epoch) reloads into a fresh model that predicts identically."""
    gf.manual_seed(0)
    rng = np.random.default_rng(1)
    Y = rng.integers(0, 4, 64)
    X = rng.standard_normal((64, 1, 8, 8)).astype(np.float32) * 0.3
    for c in range(4):  # class c: a bright row band (c even) or column band (c odd)
        band = slice((c // 2) * 4, (c // 2) * 4 + 4)
        X[Y == c, 0, band if c % 2 == 0 else slice(None), band if c % 2 else slice(None)] += 1.5
        X[Y == c] *= 1 + c * 0.5
    model = _cnn(gf)
    _, _, _, accs = _train_cnn(gf, model, X, Y, "cos", epochs=10)
    assert accs[-1] >= 0.85 and accs[-1] > accs[0] + 0.4
    opt = gf.optim.AdamW(model.parameters())
    gf.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": 10}, tmp_path / "ck.pt")
    ck = gf.load(tmp_path / "ck.pt", map_location="cpu")
    fresh = _cnn(gf)
    fresh.load_state_dict(ck["model"])
    fresh.eval(), model.eval()
    with gf.no_grad():
        np.testing.assert_array_equal(fresh(gf.from_numpy(X)).numpy(), model(gf.from_numpy(X)).numpy())
    assert ck["epoch"] == 10


# ---------------------------------------------------------------------------------------------
# 2. a regression MLP: frozen first layer (filtered params), SGD nesterov + weight decay with
#    two groups, manual lr decay through param_groups, MSE / SmoothL1 / Huber losses
# ---------------------------------------------------------------------------------------------
def _mlp_program(torch, X, Y, loss_name, init_from=None):
    nn = torch.nn
    model = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1))
    if init_from is not None:
        init_from(model)
    for p in model[0].parameters():
        p.requires_grad = False
    trainable = filter(lambda p: p.requires_grad, model.parameters())
    params = list(trainable)
    opt = torch.optim.SGD([{"params": params[:2], "lr": 0.05}, {"params": params[2:]}],
                          lr=0.02, momentum=0.9, nesterov=True, weight_decay=1e-3)
    crit = {"mse": nn.MSELoss(), "smoothl1": nn.SmoothL1Loss(beta=0.5),
            "huber": nn.HuberLoss(delta=0.3)}[loss_name]
    x, y = torch.from_numpy(X), torch.from_numpy(Y)
    losses = []
    for it in range(25):
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        if it % 10 == 9:
            for g in opt.param_groups:
                g["lr"] *= 0.5
        losses.append(loss.item())
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return model, np.array(losses), n_trainable


@requires_torch
@pytest.mark.parametrize("loss_name", ["mse", "smoothl1", "huber"])
def test_regression_mlp_with_frozen_layer_matches_torch(loss_name):
    import torch
    rng = np.random.default_rng(2)
    X = rng.standard_normal((40, 3)).astype(np.float32)
    Y = (X[:, :1] * 2 - X[:, 1:2] ** 2 + 0.1 * rng.standard_normal((40, 1))).astype(np.float32)
    gm, gl, gn = _mlp_program(gf, X, Y, loss_name)
    w0 = {k: np.array(v.numpy()) for k, v in gm.state_dict().items()}
    gm2, gl, gn = _mlp_program(gf, X, Y, loss_name, init_from=lambda m: m.load_state_dict(
        {k: gf.from_numpy(v) for k, v in w0.items()}))
    tm, tl, tn = _mlp_program(torch, X, Y, loss_name, init_from=lambda m: m.load_state_dict(
        {k: torch.from_numpy(v) for k, v in w0.items()}))
    assert gn == tn == 16 * 16 + 16 + 16 + 1
    np.testing.assert_allclose(gl, tl, rtol=1e-4, atol=1e-6)
    assert gl[-1] < gl[0]
    np.testing.assert_array_equal(gm2[0].weight.numpy(), w0["0.weight"])  # frozen
    _assert_same_state(gm2, tm)


# ---------------------------------------------------------------------------------------------
# 3. an autoencoder with weights from model.apply(init_fn), Adam, eval reconstruction
# ---------------------------------------------------------------------------------------------
def _autoencoder(torch):
    nn = torch.nn

    class AE(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.LeakyReLU(0.1),
                                         nn.Linear(8, 3))
            self.decoder = nn.Sequential(nn.Linear(3, 8), nn.GELU(), nn.Linear(8, 16), nn.Sigmoid(),
                                         nn.Unflatten(1, (1, 4, 4)))

        def forward(self, x):
            return self.decoder(self.encoder(x))

    return AE()


def _init_ae(torch):
    def init_fn(m):
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            torch.nn.init.zeros_(m.bias)
    return init_fn


@requires_torch
def test_autoencoder_with_apply_init_matches_torch():
    import torch
    gf.manual_seed(3)
    gm = _autoencoder(gf)
    gm.apply(_init_ae(gf))
    assert all(float(m.bias.abs().sum()) == 0 for m in gm.modules() if isinstance(m, gnn.Linear))
    tm = _autoencoder(torch)
    _copy_weights(gm, tm)
    data = np.random.default_rng(3).random((24, 1, 4, 4)).astype(np.float32)
    out = {}
    for lib, model in ((gf, gm), (torch, tm)):
        opt = lib.optim.Adam(model.parameters(), lr=1e-2)
        losses = []
        for _ in range(15):
            x = lib.from_numpy(data)
            recon = model(x)
            loss = lib.nn.functional.mse_loss(recon, x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.eval()
        with lib.no_grad():
            err = ((model(lib.from_numpy(data)) - lib.from_numpy(data)) ** 2).mean(dim=(1, 2, 3))
        out[lib.__name__] = (np.array(losses), _np(err))
    np.testing.assert_allclose(out["gradflow"][0], out["torch"][0], rtol=1e-4)
    np.testing.assert_allclose(out["gradflow"][1], out["torch"][1], rtol=1e-4)
    assert out["gradflow"][0][-1] < out["gradflow"][0][0]


# ---------------------------------------------------------------------------------------------
# 4. an RNN-free sequence classifier: Embedding(padding_idx) + masked mean pooling +
#    LayerNorm + BCEWithLogitsLoss(pos_weight); weights re-initialised by apply(), so the
#    padding row is non-zero (PyTorch still looks it up; it only gets no gradient)
# ---------------------------------------------------------------------------------------------
def _seq_model(torch):
    nn = torch.nn

    class Bag(nn.Module):
        def __init__(self, vocab=12, dim=6):
            super().__init__()
            self.emb = nn.Embedding(vocab, dim, padding_idx=0)
            self.norm = nn.LayerNorm(dim)
            self.head = nn.ModuleDict({"fc": nn.Linear(dim, 2)})
            self.register_buffer("scale", torch.ones(1) * 2.0)

        def forward(self, tokens):
            mask = (tokens != 0).unsqueeze(-1).float()
            h = self.emb(tokens) * mask
            lengths = mask.sum(dim=1).clamp(min=1)
            pooled = h.sum(dim=1) / lengths
            return self.head["fc"](self.norm(pooled) * self.scale)

    return Bag()


@requires_torch
def test_embedding_bag_classifier_matches_torch():
    import torch
    gf.manual_seed(4)
    gm = _seq_model(gf)
    gm.apply(lambda m: gnn.init.normal_(m.weight, 0, 0.5) if isinstance(m, gnn.Embedding) else None)
    assert float(gm.emb.weight[0].abs().sum()) > 0
    tm = _seq_model(torch)
    _copy_weights(gm, tm)
    rng = np.random.default_rng(4)
    seqs = [rng.integers(1, 12, rng.integers(2, 7)) for _ in range(16)]
    labels = rng.integers(0, 2, (16, 2)).astype(np.float32)
    res = {}
    for lib, model in ((gf, gm), (torch, tm)):
        from_np = lib.from_numpy
        tokens = lib.nn.utils.rnn.pad_sequence([from_np(s) for s in seqs], batch_first=True)
        crit = lib.nn.BCEWithLogitsLoss(pos_weight=lib.tensor([2.0, 0.5]))
        opt = lib.optim.Adam(model.parameters(), lr=0.05)
        losses = []
        for _ in range(8):
            opt.zero_grad()
            loss = crit(model(tokens), from_np(labels))
            loss.backward()
            losses.append(loss.item())
            pad_grad = _np(model.emb.weight.grad[0])
            opt.step()
        res[lib.__name__] = np.array(losses), pad_grad, tokens.shape
    np.testing.assert_allclose(res["gradflow"][0], res["torch"][0], rtol=1e-4)
    assert not res["gradflow"][1].any() and res["gradflow"][2] == tuple(res["torch"][2])
    _assert_same_state(gm, tm)


# ---------------------------------------------------------------------------------------------
# 5. losses with every option, against torch
# ---------------------------------------------------------------------------------------------
@requires_torch
@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")  # torch's KLDiv note
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_options_match_torch(reduction):
    import torch
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((6, 4))
    y = np.array([0, 1, -100, 2, 1, 3])
    w = np.array([1.0, 2.0, 0.5, 3.0])
    p, tg, pw = rng.standard_normal((5, 3)), rng.random((5, 3)), np.array([3.0, 1.0, 0.5])
    cases = [
        ("CrossEntropyLoss", dict(weight=w, label_smoothing=0.2), logits, y),
        ("CrossEntropyLoss", dict(ignore_index=1), logits, np.abs(y) % 4),
        ("NLLLoss", dict(weight=w), logits, y),
        ("BCEWithLogitsLoss", dict(pos_weight=pw), p, tg),
        ("KLDivLoss", {}, p, tg / tg.sum(1, keepdims=True)),
        ("SmoothL1Loss", dict(beta=0.3), p, tg),
        ("HuberLoss", dict(delta=0.3), p, tg),
        ("L1Loss", {}, p, tg),
    ]
    for name, kw, a, b in cases:
        outs = []
        for lib in (gf, torch):
            kws = {k: (lib.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
            x = lib.tensor(a, requires_grad=True)
            inp = x.log_softmax(1) if name in ("NLLLoss", "KLDivLoss") else x
            loss = getattr(lib.nn, name)(reduction=reduction, **kws)(inp, lib.tensor(b))
            (loss.sum() if reduction == "none" else loss).backward()
            outs.append((_np(loss), _np(x.grad)))
        np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-6, atol=1e-10, err_msg=name)
        np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-6, atol=1e-10, err_msg=name)


@requires_torch
def test_kldiv_batchmean_module_matches_torch():
    import torch
    rng = np.random.default_rng(6)
    a, q = rng.standard_normal((5, 3)), rng.random((5, 3))
    q /= q.sum(1, keepdims=True)
    for log_target in (False, True):
        b = np.log(q) if log_target else q
        g = gnn.KLDivLoss(reduction="batchmean", log_target=log_target)(
            GF.log_softmax(gf.tensor(a), dim=1), gf.tensor(b))
        t = torch.nn.KLDivLoss(reduction="batchmean", log_target=log_target)(
            torch.log_softmax(torch.tensor(a), dim=1), torch.tensor(b))
        assert g.item() == pytest.approx(t.item(), rel=1e-10)
    assert "batchmean" in repr(gnn.KLDivLoss(reduction="batchmean"))
    with pytest.raises(ValueError, match="reduction"):
        gnn.KLDivLoss(reduction="avg")


# ---------------------------------------------------------------------------------------------
# 6. tensor idioms, values and gradients against torch
# ---------------------------------------------------------------------------------------------
@requires_torch
def test_tensor_idioms_match_torch():
    import torch
    rng = np.random.default_rng(7)
    a = rng.standard_normal((4, 5))
    idx = rng.integers(0, 5, (4, 2))
    src = rng.standard_normal((4, 3))

    def prog(lib):
        x = lib.tensor(a, requires_grad=True)
        s = lib.tensor(src, requires_grad=True)
        i = lib.tensor(idx)
        outs = [
            x.scatter(1, i, s[:, :2]),
            x.scatter_add(1, i, s[:, :2]),
            lib.zeros(4, 5, dtype=lib.float64).scatter_(1, i, 2.0),
            lib.scatter(x, 0, lib.tensor([[1, 0, 3, 2, 0]]), 7.5),
            x.index_select(1, lib.tensor([4, 0, 0])),
            lib.index_select(x, 0, lib.tensor([2])),
            x.masked_select(x > 0),
            x.masked_fill(x < 0, 0.0) * 2,
            lib.where(x > 0.5, x, x * 0.1),
            x.topk(2, dim=1).values,
            x.sort(dim=0, descending=True)[0] * lib.arange(4.0, dtype=lib.float64).view(4, 1),
            x.max(dim=1, keepdim=True)[0],
            lib.diag(x[:, :4]) * 3, lib.diag(x[0], 1), lib.diag(x[:, :4], -1),
            lib.outer(x[0], x[1, :2]),
            x.norm(dim=1), lib.norm(x), x.norm(p=1, dim=0), x.norm(p=float("inf")),
            lib.cdist(x[:2], x[2:]),
            lib.nn.functional.normalize(x, dim=1),
            lib.nn.functional.cosine_similarity(x[:2], x[2:], dim=1),
            lib.lerp(x, x * 3, 0.25),
        ]
        scores = x * 1
        scores.masked_fill_(lib.triu(lib.ones(4, 5, dtype=lib.bool), diagonal=1), float("-inf"))
        outs.append(scores.softmax(-1))                         # causal-mask attention idiom
        total = sum((o * (k + 1)).sum() for k, o in enumerate(outs[:2] + outs[3:]))
        total.backward()
        nonint = [
            (x > 0).nonzero(), lib.nonzero(x > 1, as_tuple=True)[1], lib.where(x > 1)[0],
            lib.argwhere(x < -1),
            x.round(), (x * 3).floor(), (x * 3).ceil(), (x * 3).trunc(), lib.round(x, decimals=1),
            lib.tensor([3, 1, 3, 0, 1]).unique(), lib.unique(lib.tensor([3, 1, 3]), return_counts=True)[1],
            lib.unique(lib.tensor([3, 1, 3]), return_inverse=True)[1],
            lib.bincount(lib.tensor([0, 2, 2, 5])), lib.bincount(lib.tensor([1, 1]), minlength=4),
            lib.isclose(x, x + 1e-9), lib.logical_and(x > 0, x < 1), lib.logical_or(x > 1, x < -1),
            lib.logical_xor(x > 0, x > 1), lib.logical_not(x > 0), lib.eq(x, x), lib.gt(x, 0),
            lib.tensor([5]).nonzero(), lib.zeros(3).nonzero(),
            x.detach().scatter(1, i, s.detach()),               # src larger than index
        ]
        return [o.detach() for o in outs], nonint, x.grad, s.grad, lib.equal(x, x * 1)

    g, t = prog(gf), prog(torch)
    for k, (u, v) in enumerate(zip(g[0], t[0])):
        np.testing.assert_allclose(_np(u), _np(v), rtol=1e-10, atol=1e-12, err_msg=f"output {k}")
    for k, (u, v) in enumerate(zip(g[1], t[1])):
        assert tuple(u.shape) == tuple(v.shape), k
        assert u.dtype.kind == v.detach().numpy().dtype.kind, k
        np.testing.assert_array_equal(u.numpy(), v.detach().numpy(), err_msg=f"not differentiated {k}")
    np.testing.assert_allclose(_np(g[2]), _np(t[2]), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_np(g[3]), _np(t[3]), rtol=1e-10, atol=1e-12)
    assert g[4] is True and t[4] is True


def test_one_hot_scatter_idioms_and_inplace_rules():
    y = gf.tensor([2, 0, 1])
    onehot = gf.zeros(3, 4).scatter_(1, y.unsqueeze(1), 1.0)
    np.testing.assert_array_equal(onehot.numpy(), np.eye(4, dtype=np.float32)[[2, 0, 1]])
    np.testing.assert_array_equal(GF.one_hot(y, 4).float().numpy(), onehot.numpy())
    counts = gf.zeros(4, dtype=gf.int64).scatter_add_(0, gf.tensor([1, 1, 3]), gf.ones(3, dtype=gf.int64))
    assert counts.tolist() == [0, 2, 0, 1]
    leaf = gf.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="masked_fill_: in-place operation on a leaf"):
        leaf.masked_fill_(leaf > 0, 0.0)
    with pytest.raises(RuntimeError, match="scatter_: in-place operation on a leaf"):
        leaf.scatter_(0, gf.tensor([0]), 1.0)
    # non-leaf in the graph: the result is recorded (the earlier value stays available)
    h = leaf * 2
    h.masked_fill_(gf.tensor([True, False, False]), 0.0)
    h.sum().backward()
    assert leaf.grad.tolist() == [0.0, 2.0, 2.0]
    x = gf.zeros(2, 3)
    x.fill_diagonal_(5.0)
    assert x.tolist() == [[5, 0, 0], [0, 5, 0]]
    assert gf.tensor([1.0]).is_floating_point() and not gf.tensor([1]).is_floating_point()


def test_tensor_compares_to_foreign_objects_like_torch():
    t = gf.tensor(5.0)
    assert (t == None) is False and (t != None) is True  # noqa: E711
    assert t == pytest.approx(5.0)
    assert nn_total_is_tensor()


def nn_total_is_tensor():
    p = gnn.Parameter(gf.zeros(2))
    p.grad = gf.tensor([3.0, 4.0])
    total = gnn.utils.clip_grad_norm_([p], 1.0)
    assert isinstance(total, gf.Tensor) and total.ndim == 0 and total.item() == pytest.approx(5.0)
    assert f"{total:.1f}" == "5.0" and float(total) == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    assert gnn.utils.clip_grad_norm_([gnn.Parameter(gf.zeros(1))], 1.0).item() == 0.0
    return True


def test_new_primitives_gradcheck():
    rng = np.random.default_rng(8)
    x = gf.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    s = gf.tensor(rng.standard_normal((3, 3)), requires_grad=True)
    i = gf.tensor([[0, 3], [1, 1], [2, 0]])  # a repeated index: accumulates in scatter_add
    assert gradcheck(lambda a, b: a.scatter_add(1, i, b), [x, s])
    i = gf.tensor([[0, 3], [1, 2], [2, 0]])  # scatter: which duplicate wins is unspecified
    assert gradcheck(lambda a, b: a.scatter(1, i, b), [x, s])
    assert gradcheck(lambda a: a.index_select(1, gf.tensor([3, 3, 0])), [x])
    assert gradcheck(lambda a: a.masked_select(a > 0), [x])
    assert gradcheck(lambda a: gf.diag(a[0]), [x])
    assert gradcheck(lambda a: gf.diag(a, 1), [x])
    w = gf.tensor(rng.standard_normal(4), requires_grad=True)
    b = gf.tensor(rng.standard_normal(4), requires_grad=True)
    assert gradcheck(lambda a, w, b: GF.layer_norm(a, (4,), w, b), [x, w, b])
    img = gf.tensor(rng.standard_normal((2, 4, 5, 7)), requires_grad=True)
    assert gradcheck(lambda a, w, b: GF.group_norm(a, 2, w, b), [img, w, b])
    assert gradcheck(lambda a: GF.adaptive_max_pool2d(a, (2, 3)), [img])
    assert gradcheck(lambda a: GF.adaptive_max_pool2d(a, 1), [img])
    table = gf.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    tokens = gf.tensor([[0, 4, 0], [2, 1, 0]])
    assert gradcheck(lambda t: GF.embedding(tokens, t), [table])
    out = GF.embedding(tokens, table, padding_idx=0)
    np.testing.assert_array_equal(out[0, 0].detach().numpy(), table[0].detach().numpy())
    (out * out).sum().backward()
    g = table.grad.numpy()
    assert not g[0].any() and not g[3].any() and g[[1, 2, 4]].all()
    k = gf.tensor(rng.standard_normal((2, 4, 3)), requires_grad=True)
    assert gradcheck(lambda a, k: GF.conv1d(a, k, None, 2, 1),
                     [gf.tensor(rng.standard_normal((2, 4, 7)), requires_grad=True), k])


# ---------------------------------------------------------------------------------------------
# 7. new layers against torch (same weights)
# ---------------------------------------------------------------------------------------------
@requires_torch
def test_new_layers_match_torch():
    import torch
    rng = np.random.default_rng(9)
    cases = [
        (lambda nn: nn.LayerNorm(6), (3, 2, 6)),
        (lambda nn: nn.LayerNorm([2, 6], elementwise_affine=False), (3, 2, 6)),
        (lambda nn: nn.GroupNorm(2, 4), (2, 4, 3, 3)),
        (lambda nn: nn.InstanceNorm2d(4, affine=True), (2, 4, 3, 3)),
        (lambda nn: nn.AdaptiveMaxPool2d((2, 2)), (2, 3, 4, 6)),
        (lambda nn: nn.AdaptiveMaxPool2d((3, 2)), (2, 3, 5, 7)),
        (lambda nn: nn.Conv1d(4, 6, 3, stride=2, padding=1), (2, 4, 9)),
        (lambda nn: nn.Conv1d(4, 4, 3, padding="same", groups=2, bias=False), (2, 4, 9)),
        (lambda nn: nn.MaxPool1d(3, stride=2), (2, 4, 9)),
        (lambda nn: nn.AvgPool1d(2), (2, 4, 9)),
        (lambda nn: nn.AdaptiveAvgPool1d(1), (2, 4, 9)),
        (lambda nn: nn.AdaptiveMaxPool1d(3), (2, 4, 9)),
        (lambda nn: nn.Mish(), (3, 5)), (lambda nn: nn.Hardswish(), (3, 5)),
        (lambda nn: nn.LogSigmoid(), (3, 5)), (lambda nn: nn.Softsign(), (3, 5)),
        (lambda nn: nn.Hardsigmoid(), (3, 5)),
    ]
    for k, (make, shape) in enumerate(cases):
        a = rng.standard_normal(shape).astype(np.float32) * 2
        gm, tm = make(gnn), make(torch.nn)
        for p in gm.parameters():  # not the default 1/0, so the affine part is tested
            p.data.copy_(rng.standard_normal(p.shape).astype(np.float32))
        _copy_weights(gm, tm)
        outs = []
        for lib, m in ((gf, gm), (torch, tm)):
            x = lib.tensor(a, requires_grad=True)
            y = m(x)
            (y * lib.tensor(np.linspace(-1, 1, y.numel()).reshape(tuple(y.shape)).astype(np.float32))
             ).sum().backward()
            outs.append((_np(y), _np(x.grad), [_np(p.grad) for p in m.parameters()]))
        np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-4, atol=1e-5, err_msg=str(k))
        np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-4, atol=1e-5, err_msg=str(k))
        for u, v in zip(outs[0][2], outs[1][2]):
            np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5, err_msg=str(k))


def test_parameter_dict_and_module_containers():
    class M(gnn.Module):
        def __init__(self):
            super().__init__()
            self.ps = gnn.ParameterDict({"a": gnn.Parameter(gf.ones(2)), "b": gf.zeros(3)})
            self.blocks = gnn.ModuleList([gnn.Linear(2, 2) for _ in range(2)])

    m = M()
    assert isinstance(m.ps["b"], gnn.Parameter) and "a" in m.ps and len(m.ps) == 2
    names = [n for n, _ in m.named_parameters()]
    assert names[:2] == ["ps.a", "ps.b"] and len(names) == 6
    m.ps["c"] = gnn.Parameter(gf.zeros(1))
    assert "ps.c" in m.state_dict()


# ---------------------------------------------------------------------------------------------
# 8. copy.deepcopy of models (best-model checkpointing idiom)
# ---------------------------------------------------------------------------------------------
def test_deepcopy_model_and_best_weights_idiom():
    gf.manual_seed(10)
    model = gnn.Sequential(gnn.Linear(3, 4), gnn.BatchNorm1d(4), gnn.ReLU(), gnn.Linear(4, 1))
    best_wts = copy.deepcopy(model.state_dict())
    twin = copy.deepcopy(model)
    assert isinstance(twin[0].weight, gnn.Parameter) and twin[0].weight.requires_grad
    assert twin[1].running_mean is not model[1].running_mean
    opt = gf.optim.SGD(model.parameters(), lr=0.5)
    x = gf.randn(8, 3)
    model(x).pow(2).mean().backward()
    opt.step()
    assert not np.allclose(model[0].weight.numpy(), twin[0].weight.numpy())
    np.testing.assert_array_equal(twin[0].weight.numpy(), best_wts["0.weight"].numpy())
    model.load_state_dict(best_wts)
    np.testing.assert_array_equal(model[0].weight.numpy(), twin[0].weight.numpy())
    twin(x).sum().backward()  # the copy trains on its own
    assert twin[0].weight.grad is not None
    with pytest.raises(RuntimeError, match="deepcopy: only leaf tensors"):
        copy.deepcopy(model(x))


# ---------------------------------------------------------------------------------------------
# 9. generators, samplers and the data pipeline
# ---------------------------------------------------------------------------------------------
def test_generator_streams_are_reproducible_and_independent():
    g1, g2 = gf.Generator().manual_seed(0), gf.Generator().manual_seed(0)
    a = gf.randn(3, 2, generator=g1)
    gf.randn(100)  # the global stream does not disturb a generator's
    b = gf.randn(3, 2, generator=g2)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(gf.randn(3, 2, generator=g1).numpy(), a.numpy())
    assert gf.randint(0, 10, (5,), generator=gf.Generator().manual_seed(1)).tolist() == \
        gf.randint(0, 10, (5,), generator=gf.Generator().manual_seed(1)).tolist()
    assert sorted(gf.randperm(6, generator=g1).tolist()) == list(range(6))
    w1 = gnn.init.kaiming_normal_(gf.empty(4, 3), generator=gf.Generator().manual_seed(5))
    w2 = gnn.init.kaiming_normal_(gf.empty(4, 3), generator=gf.Generator().manual_seed(5))
    np.testing.assert_array_equal(w1.numpy(), w2.numpy())
    assert gf.Generator().manual_seed(3).initial_seed() == 3
    with pytest.raises(TypeError, match="generator must be a gradflow.Generator"):
        gf.randn(2, generator=3)


def test_dataloader_generator_and_random_split():
    from gradflow.utils.data import DataLoader, TensorDataset, random_split, WeightedRandomSampler
    ds = TensorDataset(gf.arange(20).float(), gf.arange(20))

    def epochs(seed):
        dl = DataLoader(ds, batch_size=5, shuffle=True, generator=gf.Generator().manual_seed(seed))
        return [[yb.tolist() for _, yb in dl] for _ in range(2)]

    e1, e2 = epochs(7), epochs(7)
    assert e1 == e2 and e1[0] != e1[1]  # reproducible, and a fresh order each epoch
    assert sorted(sum(e1[0], [])) == list(range(20))
    tr, va = random_split(ds, [0.75, 0.25], generator=gf.Generator().manual_seed(42))
    tr2, _ = random_split(ds, [0.75, 0.25], generator=gf.Generator().manual_seed(42))
    assert len(tr) == 15 and len(va) == 5 and list(tr.indices) == list(tr2.indices)
    sampler = WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], num_samples=200,
                                    generator=gf.Generator().manual_seed(0))
    drawn = list(sampler)
    assert len(sampler) == 200 and set(drawn) == {1, 3} and drawn.count(3) > drawn.count(1)
    with pytest.raises(ValueError, match="weights must be finite, non-negative"):
        WeightedRandomSampler([-1.0, 2.0], 3)
    with pytest.raises(ValueError, match="without replacement"):
        WeightedRandomSampler([1.0, 0.0], 2, replacement=False)


# ---------------------------------------------------------------------------------------------
# 10. learning-rate schedules against torch
# ---------------------------------------------------------------------------------------------
def _lr_trace(lib, make_opt, make_sched, n=30, fractional=False):
    p, q = lib.nn.Parameter(lib.zeros(2)), lib.nn.Parameter(lib.zeros(2))
    opt = make_opt(lib, [{"params": [p]}, {"params": [q], "lr": 0.05}])
    s = make_sched(lib.optim.lr_scheduler, opt)
    out = []
    for i in range(n):
        opt.step()
        s.step(i * 0.37) if fractional else s.step()
        out.append([g["lr"] for g in opt.param_groups]
                   + [g.get("momentum", g.get("betas", (0,))[0]) for g in opt.param_groups])
    return np.array(out)


_SGD = lambda lib, ps: lib.optim.SGD(ps, lr=0.1, momentum=0.9)  # noqa: E731
_ADAMW = lambda lib, ps: lib.optim.AdamW(ps, lr=0.1)  # noqa: E731
_SCHEDULES = {
    "onecycle": (_SGD, lambda S, o: S.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=31)),
    "onecycle_adam_3phase_linear": (_ADAMW, lambda S, o: S.OneCycleLR(
        o, max_lr=0.01, epochs=3, steps_per_epoch=10, three_phase=True, anneal_strategy="linear")),
    "warm_restarts": (_SGD, lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=4, T_mult=2, eta_min=1e-3)),
    "warm_restarts_1": (_SGD, lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=5)),
    "warmup_then_cosine": (_SGD, lambda S, o: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.1, total_iters=5), S.CosineAnnealingLR(o, T_max=20)],
        milestones=[5])),
    "constant_then_exp": (_SGD, lambda S, o: S.SequentialLR(
        o, [S.ConstantLR(o, factor=0.5, total_iters=3), S.ExponentialLR(o, gamma=0.9)],
        milestones=[4])),
    "polynomial": (_SGD, lambda S, o: S.PolynomialLR(o, total_iters=10, power=2.0)),
    "constant": (_SGD, lambda S, o: S.ConstantLR(o, factor=0.25, total_iters=4)),
    "chained": (_SGD, lambda S, o: S.ChainedScheduler(
        [S.ConstantLR(o, factor=0.5, total_iters=3), S.ExponentialLR(o, gamma=0.9)])),
}


@requires_torch
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", sorted(_SCHEDULES))
def test_lr_schedules_match_torch(name):
    import torch
    make_opt, make_sched = _SCHEDULES[name]
    np.testing.assert_allclose(_lr_trace(gf, make_opt, make_sched),
                               _lr_trace(torch, make_opt, make_sched), rtol=1e-12, atol=1e-15)
    if name == "warm_restarts":
        np.testing.assert_allclose(_lr_trace(gf, make_opt, make_sched, fractional=True),
                                   _lr_trace(torch, make_opt, make_sched, fractional=True),
                                   rtol=1e-12, atol=1e-15)


def test_schedule_errors():
    S = gf.optim.lr_scheduler
    opt = gf.optim.SGD([gnn.Parameter(gf.zeros(1))], lr=0.1, momentum=0.9)
    sch = S.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(3):
        opt.step()
        sch.step()
    with pytest.raises(ValueError, match="tried to step 4 times; the specified number of total steps is 3"):
        sch.step()
    with pytest.raises(ValueError, match="total_steps OR"):
        S.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="momentum or beta1"):
        S.OneCycleLR(gf.optim.Adagrad([gnn.Parameter(gf.zeros(1))]), max_lr=1.0, total_steps=5)
    with pytest.raises(ValueError, match="expected 1 milestones"):
        S.SequentialLR(opt, [S.ConstantLR(opt), S.ConstantLR(opt)], milestones=[])
    with pytest.raises(ValueError, match="positive integer T_0"):
        S.CosineAnnealingWarmRestarts(opt, T_0=0)


# ---------------------------------------------------------------------------------------------
# 11. namespace odds and ends scripts use
# ---------------------------------------------------------------------------------------------
def test_namespace_compat():
    gf.backends.cudnn.benchmark = True
    gf.backends.cudnn.deterministic = True
    assert gf.backends.mps.is_available() is False and gf.backends.cudnn.is_available() is False
    assert gf.finfo(gf.float32).eps == np.finfo(np.float32).eps and gf.iinfo(gf.int64).max == 2 ** 63 - 1
    assert gf.pi == math.pi and gf.inf == math.inf and math.isnan(gf.nan)
    assert gf.zeros(2, dtype=gf.bool).dtype == np.bool_
    t = gf.FloatTensor([1, 2])
    assert t.dtype == gf.float32 and isinstance(t, gf.FloatTensor) and not isinstance(t, gf.LongTensor)
    assert gf.LongTensor(2, 3).shape == (2, 3) and gf.LongTensor([1]).dtype == gf.int64
    x = gf.randn(2, 3)
    assert x.to("cpu", non_blocking=True).shape == (2, 3)
    assert x.to(gf.zeros(1, dtype=gf.float64)).dtype == gf.float64
    assert gf.linspace(0, 1, 5, requires_grad=True).requires_grad
    gf.set_printoptions(precision=2)
    try:
        assert "0.12" in repr(gf.tensor([0.123456]))
    finally:
        gf.set_printoptions(profile="default")
    from gradflow.nn.utils.rnn import pad_sequence
    p = pad_sequence([gf.ones(2, 3), gf.ones(1, 3)], padding_value=-1.0)
    assert p.shape == (2, 2, 3) and p[1, 1].tolist() == [-1.0] * 3


@requires_torch
def test_pad_sequence_matches_torch():
    import torch
    from torch.nn.utils.rnn import pad_sequence as tpad
    rng = np.random.default_rng(11)
    seqs = [rng.standard_normal((n, 2)) for n in (3, 1, 4)]
    for kw in (dict(batch_first=True), dict(batch_first=False, padding_value=9.0),
               dict(batch_first=True, padding_side="left")):
        g = gnn.utils.rnn.pad_sequence([gf.tensor(s) for s in seqs], **kw)
        t = tpad([torch.tensor(s) for s in seqs], **kw)
        np.testing.assert_array_equal(g.numpy(), t.numpy())


# ---------------------------------------------------------------------------------------------
# 12. clear errors for bad input
# ---------------------------------------------------------------------------------------------
def test_bad_input_errors_name_op_and_shapes():
    x = gf.zeros(3, 4)
    with pytest.raises(IndexError, match=r"scatter_: index values must lie in \[-4, 3\]"):
        x.scatter_(1, gf.tensor([[5]]), 1.0)
    with pytest.raises(ValueError, match=r"scatter: index of shape \(2,\) must have as many dims"):
        x.scatter(1, gf.tensor([0, 1]), 1.0)
    with pytest.raises(TypeError, match="scatter: index must be an integer Tensor"):
        x.scatter(1, gf.tensor([[0.5]]), 1.0)
    with pytest.raises(TypeError, match="index_select: index must be a 0-d or 1-D integer"):
        x.index_select(0, gf.tensor([[0]]))
    with pytest.raises(IndexError, match=r"embedding: index out of range: indices must be in \[0, 4\]"):
        gnn.Embedding(5, 2)(gf.tensor([1, 5]))
    with pytest.raises(ValueError, match=r"layer_norm: normalized_shape \(5,\) must match"):
        gnn.LayerNorm(5)(x)
    with pytest.raises(ValueError, match="GroupNorm: num_channels \\(6\\) must be divisible"):
        gnn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"conv1d: expected input \(N, C, L\)"):
        gnn.Conv1d(3, 2, 2)(gf.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="bincount: expected a 1-D integer tensor"):
        gf.bincount(gf.tensor([0.5]))
    with pytest.raises(TypeError, match="masked_fill_: mask must be a bool Tensor"):
        x.masked_fill_(gf.zeros(3, 4), 1.0)
    with pytest.raises(ValueError, match="pad_sequence: every sequence must be a Tensor"):
        gnn.utils.rnn.pad_sequence([gf.ones(2, 3), gf.ones(2, 4)])
    with pytest.raises(ValueError, match="randint: expected low < high"):
        gf.randint(5, 5, (2,))
