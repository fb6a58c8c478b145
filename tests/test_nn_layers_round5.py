"""ConvTranspose1d / F.conv_transpose1d, RMSNorm / F.rms_norm vs torch (values, float64
gradients), channel and alpha dropouts and Gumbel-softmax by their statistics, and the
clear errors of what torch.nn has and gradflow does not."""
import numpy as np
import pytest

import gradflow as gf
from gradflow.autograd import gradcheck

torch = pytest.importorskip("torch")
F = gf.nn.functional

rng = np.random.default_rng(0)


def _pair(*arrays):
    return ([gf.tensor(a, dtype=gf.float64, requires_grad=True) for a in arrays],
            [torch.tensor(a, requires_grad=True) for a in arrays])


def _check(ours, theirs, gins, tins):
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = rng.normal(size=tuple(theirs.shape))
    (ours * gf.tensor(w)).sum().backward()
    (theirs * torch.tensor(w)).sum().backward()
    for a, b in zip(gins, tins):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1, output_padding=1),
                                dict(groups=2, dilation=2), dict(stride=3, padding=2)])
def test_conv_transpose1d(kw):
    groups = kw.get("groups", 1)
    x, w, b = rng.normal(size=(2, 4, 7)), rng.normal(size=(4, 3, 3)), rng.normal(size=3 * groups)
    g, t = _pair(x, w, b)
    _check(F.conv_transpose1d(*g, **kw), torch.nn.functional.conv_transpose1d(*t, **kw), g, t)


def test_conv_transpose1d_module_and_output_size():
    m = gf.nn.ConvTranspose1d(3, 5, 4, stride=2, padding=1)
    ref = torch.nn.ConvTranspose1d(3, 5, 4, stride=2, padding=1)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(m.weight.numpy()))
        ref.bias.copy_(torch.tensor(m.bias.numpy()))
    x = rng.normal(size=(2, 3, 6)).astype(np.float32)
    np.testing.assert_allclose(m(gf.tensor(x), output_size=[13]).detach().numpy(),
                               ref(torch.tensor(x), output_size=[13]).detach().numpy(), atol=1e-5)
    assert m.weight.shape == (3, 5, 4)


@pytest.mark.parametrize("shape, ns, eps", [((3, 5), 5, None), ((2, 3, 4), (3, 4), 1e-3)])
def test_rms_norm(shape, ns, eps):
    x, w = rng.normal(size=shape), rng.normal(size=(ns,) if isinstance(ns, int) else ns)
    g, t = _pair(x, w)
    ns_t = (ns,) if isinstance(ns, int) else ns
    _check(F.rms_norm(g[0], ns, g[1], eps), torch.nn.functional.rms_norm(t[0], ns_t, t[1], eps), g, t)
    assert gradcheck(lambda a, b: F.rms_norm(a, ns, b, eps), tuple(_pair(x, w)[0]))
    m = gf.nn.RMSNorm(ns)
    np.testing.assert_array_equal(m.weight.numpy(), np.ones(m.normalized_shape))
    with pytest.raises(ValueError, match="normalized_shape"):
        F.rms_norm(gf.ones(3, 2), 4)


def test_channel_dropouts_zero_whole_channels():
    gf.manual_seed(0)
    x = gf.ones(50, 8, 6)
    y = gf.nn.Dropout1d(0.5).train()(x).numpy()
    per_channel = y.reshape(50, 8, 6)
    assert set(np.unique(per_channel)) == {0.0, 2.0}
    assert (per_channel.min(-1) == per_channel.max(-1)).all()  # all-or-nothing per channel
    z = F.dropout3d(gf.ones(20, 4, 2, 3, 3), 0.25).numpy().reshape(20, 4, -1)
    assert (z.min(-1) == z.max(-1)).all() and abs((z[..., 0] == 0).mean() - 0.25) < 0.1
    assert gf.nn.Dropout1d(0.5).eval()(x) is x
    with pytest.raises(ValueError, match="dropout1d"):
        F.dropout1d(gf.ones(2, 3, 4, 5))


def test_alpha_dropout_keeps_selu_statistics():
    gf.manual_seed(1)
    x = gf.randn(200000)
    for fn in (lambda t: F.alpha_dropout(t, 0.3, training=True),
               lambda t: gf.nn.FeatureAlphaDropout(0.3).train()(t.reshape(1000, 200, 1))):
        y = fn(x).numpy()
        assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02
    assert F.alpha_dropout(x, 0.3) is x  # training=False by default, as torch
    assert float(gf.nn.AlphaDropout(1.0).train()(x).abs().sum()) == 0.0


def test_gumbel_softmax():
    gf.manual_seed(2)
    logits = gf.tensor(np.log([[0.6, 0.3, 0.1]] * 4000), dtype=gf.float32, requires_grad=True)
    soft = F.gumbel_softmax(logits, tau=0.5)
    np.testing.assert_allclose(soft.sum(-1).detach().numpy(), 1.0, rtol=1e-5)
    hard = F.gumbel_softmax(logits, tau=1.0, hard=True)
    h = hard.detach().numpy()
    assert set(np.unique(h)) == {0.0, 1.0} and (h.sum(-1) == 1).all()
    np.testing.assert_allclose(h.mean(0), [0.6, 0.3, 0.1], atol=0.03)  # argmax ~ Categorical
    (hard * gf.tensor([1.0, 2.0, 3.0])).sum().backward()  # straight-through: soft gradient
    assert logits.grad is not None and np.abs(logits.grad.numpy()).sum() > 0
    with pytest.raises(ValueError, match="tau"):
        F.gumbel_softmax(logits, tau=0)


@pytest.mark.parametrize("module, name, match", [
    (gf.nn, "CTCLoss", "CTC"), (gf.nn, "EmbeddingBag", "Embedding"), (gf.nn, "LazyLinear", "lazy"),
    (gf.nn.functional, "grid_sample", "grid_sample"), (gf.nn.functional, "ctc_loss", "CTC"),
    (gf.nn.utils, "weight_norm", "re-parametrisations"), (gf.nn.utils, "prune", "pruning"),
])
def test_missing_names_say_so(module, name, match):
    with pytest.raises(AttributeError, match=f"{name} is not supported: .*{match}"):
        getattr(module, name)
    assert not hasattr(module, "no_such_thing_at_all")
