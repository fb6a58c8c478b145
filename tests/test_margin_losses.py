"""Margin / embedding / likelihood losses (F.* and nn.*Loss) and pdist vs torch:
values and float64 gradients for every reduction, plus gradcheck and bad input."""
import numpy as np
import pytest

import gradflow as gf
from gradflow.autograd import gradcheck

torch = pytest.importorskip("torch")

rng = np.random.default_rng(0)
X1, X2, X3 = rng.normal(size=(5, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
V = rng.normal(size=5)
SIGN = np.array([1.0, -1.0, 1.0, -1.0, -1.0])
MULTI = (rng.uniform(size=(5, 4)) > 0.5).astype(np.float64)
CLS = np.array([0, 3, 1, 1, 2])
COUNTS = rng.integers(0, 5, size=(5, 4)).astype(np.float64)
POSVAR = rng.uniform(0.1, 2.0, size=(5, 4))

# name -> (call(F, nn, inputs..., reduction), differentiable inputs, fixed inputs)
CASES = {
    "margin_ranking": (lambda F, nn, a, b, y, r: F.margin_ranking_loss(a, b, y, 0.3, reduction=r),
                       [V, V[::-1].copy()], [SIGN]),
    "hinge_embedding": (lambda F, nn, a, y, r: F.hinge_embedding_loss(a, y, 0.8, reduction=r),
                        [X1[:, 0]], [SIGN]),
    "soft_margin": (lambda F, nn, a, y, r: F.soft_margin_loss(a * 5, y, reduction=r),
                    [X1], [np.sign(X2)]),
    "cosine_embedding": (lambda F, nn, a, b, y, r: F.cosine_embedding_loss(a, b, y, 0.1, reduction=r),
                         [X1, X2], [SIGN]),
    "triplet": (lambda F, nn, a, p, n, r: F.triplet_margin_loss(a, p, n, 0.5, reduction=r),
                [X1, X2, X3], []),
    "triplet-swap-p1": (lambda F, nn, a, p, n, r: nn.TripletMarginLoss(2.0, p=1, swap=True,
                                                                       reduction=r)(a, p, n),
                        [X1, X2, X3], []),
    "multilabel_soft_margin": (lambda F, nn, a, y, r: nn.MultiLabelSoftMarginLoss(reduction=r)(a * 3, y),
                               [X1], [MULTI]),
    "multi_margin": (lambda F, nn, a, y, r: F.multi_margin_loss(a, y, reduction=r), [X1], [CLS]),
    "multi_margin-p2-weight": (lambda F, nn, a, y, w, r: nn.MultiMarginLoss(2, 0.5, w, reduction=r)(a, y),
                               [X1], [CLS, np.array([1.0, 2.0, 0.5, 1.5])]),
    "poisson_log": (lambda F, nn, a, y, r: F.poisson_nll_loss(a, y, reduction=r), [X1], [COUNTS]),
    "poisson_full": (lambda F, nn, a, y, r: nn.PoissonNLLLoss(log_input=False, full=True,
                                                              reduction=r)(a.abs() + 0.1, y),
                     [X1], [COUNTS]),
    "gaussian": (lambda F, nn, a, v, y, r: F.gaussian_nll_loss(a, y, v, reduction=r),
                 [X1, POSVAR], [X2]),
    "gaussian-full-per-sample": (lambda F, nn, a, v, y, r: nn.GaussianNLLLoss(full=True, reduction=r)(
        a, y, v[:, 0]), [X1, POSVAR], [X2]),
}


def _tensors(lib, diff, fixed):
    d = [lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in diff]
    f = [lib.tensor(a) if a.dtype.kind == "i" else lib.tensor(a, dtype=lib.float64) for a in fixed]
    return d, f


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name, reduction):
    call, diff, fixed = CASES[name]
    gd, gfx = _tensors(gf, diff, fixed)
    td, tfx = _tensors(torch, diff, fixed)
    ours = call(gf.nn.functional, gf.nn, *gd, *gfx, reduction)
    theirs = call(torch.nn.functional, torch.nn, *td, *tfx, reduction)
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = rng.normal(size=tuple(theirs.shape))
    (ours * gf.tensor(w)).sum().backward()
    (theirs * torch.tensor(w)).sum().backward()
    for a, b in zip(gd, td):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name", ["triplet", "cosine_embedding", "multi_margin", "gaussian"])
def test_gradcheck(name):
    call, diff, fixed = CASES[name]
    gd, gfx = _tensors(gf, diff, fixed)
    assert gradcheck(lambda *xs: call(gf.nn.functional, gf.nn, *xs, *gfx, "sum"), tuple(gd))


def test_pdist_and_distance_modules():
    x = gf.tensor(X1, dtype=gf.float64)
    t = torch.tensor(X1)
    np.testing.assert_allclose(gf.nn.functional.pdist(x).numpy(), torch.nn.functional.pdist(t).numpy())
    np.testing.assert_allclose(gf.nn.functional.pdist(x, p=1).numpy(),
                               torch.nn.functional.pdist(t, p=1).numpy())
    y, u = gf.tensor(X2, dtype=gf.float64), torch.tensor(X2)
    np.testing.assert_allclose(gf.nn.PairwiseDistance(p=3)(x, y).numpy(),
                               torch.nn.PairwiseDistance(p=3)(t, u).numpy())
    np.testing.assert_allclose(gf.nn.CosineSimilarity(dim=0)(x, y).numpy(),
                               torch.nn.CosineSimilarity(dim=0)(t, u).numpy())


@pytest.mark.parametrize("call, exc, match", [
    (lambda F: F.soft_margin_loss(gf.ones(3), gf.ones(4)), ValueError, "same shape"),
    (lambda F: F.multi_margin_loss(gf.ones(2, 3), gf.tensor([0, 1]), p=3), ValueError, "p must be 1 or 2"),
    (lambda F: F.gaussian_nll_loss(gf.ones(2, 3), gf.ones(2, 3), gf.ones(4)), ValueError, "does not match"),
    (lambda F: F.gaussian_nll_loss(gf.ones(2), gf.ones(2), -gf.ones(2)), ValueError, "negative"),
    (lambda F: F.triplet_margin_loss(gf.ones(2), gf.ones(2), gf.ones(2), reduction="avg"), ValueError, "reduction"),
    (lambda F: F.pdist(gf.ones(3)), ValueError, "2-D"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call(gf.nn.functional)
