"""The lecture's remaining methods (gradflow.vis lecture tools and their examples),
each checked for what it claims on the bundled digits and a quickly trained LeNet-5
(the fixture shared with test_vis_examples)."""
from __future__ import annotations

import numpy as np
import pytest

from test_vis_examples import is_png, lenet, load_example, run  # noqa: F401


def test_example_contrast_norm(tmp_path):
    res = load_example("vis_contrast_norm").main(["--fast", "--out", str(tmp_path)])
    assert is_png(res["png"])
    spread = lambda c: max(c) / min(c)
    # the input's digits differ in contrast by ~16x; after LCN far less
    assert spread(res["contrast_in"]) > 10
    assert spread(res["contrast_out"]) < spread(res["contrast_in"]) / 3
    # the subtractive step alone removes the brightness ramp but keeps the contrast spread
    assert spread(res["contrast_sub"]) > spread(res["contrast_in"]) / 2
    assert np.isfinite(res["output"]).all()


# -- top-k activating patches -----------------------------------------------------------------
def _layer_acts(model, x, layer):
    import gradflow
    from gradflow.vis._trace import layer_output
    with gradflow.no_grad():
        a, _ = layer_output(model, gradflow.tensor(x), layer)
    return a.numpy()


def test_top_patches_are_the_argmax_activations(lenet):
    import gradflow
    from gradflow.vis.top_patches import top_activating_patches
    model, (x, _), _, _ = lenet
    x = x[:200]
    a = _layer_acts(model, x, "4")[:, 2]                                # conv2 ReLU, (200, 10, 10)
    tops = top_activating_patches(model, gradflow.tensor(x), "4", 2, k=9, batch_size=64)
    best = a.reshape(len(a), -1).max(1)
    assert [t.image for t in tops] == list(np.argsort(-best, kind="stable")[:9])
    for t in tops:
        assert t.activation == pytest.approx(a[t.image][t.position]) and \
            t.activation == pytest.approx(best[t.image])
    anywhere = top_activating_patches(model, gradflow.tensor(x), "4", 2, k=25,
                                      one_per_image=False)
    np.testing.assert_allclose([t.activation for t in anywhere], np.sort(a.ravel())[::-1][:25],
                               rtol=1e-6)
    assert len({t.image for t in anywhere}) < 25        # strong images give several positions


@pytest.mark.parametrize("layer,size", [("1", 5), ("4", 14)])
def test_top_patch_is_the_receptive_field(lenet, layer, size):
    """The unit's activation depends on the pixels inside the cropped box only."""
    import gradflow
    from gradflow.vis.top_patches import top_activating_patches
    model, (x, _), _, _ = lenet
    x = x[:100]
    for t in top_activating_patches(model, gradflow.tensor(x), layer, 1, k=3):
        top, left, bottom, right = t.box
        assert (bottom - top, right - left) == (size, size) and t.patch.shape == (1, size, size)
        inside = np.zeros((28, 28), bool)
        inside[max(top, 0):bottom, max(left, 0):right] = True
        img = x[t.image:t.image + 1].copy()
        rows, cols = np.arange(top, bottom), np.arange(left, right)
        in_img = ((rows >= 0) & (rows < 28))[:, None] & ((cols >= 0) & (cols < 28))[None, :]
        assert (t.patch[0][~in_img] == 0).all()                       # padding: the fill value
        np.testing.assert_array_equal(t.patch[0][in_img], img[0, 0][inside])
        noisy = img.copy()
        noisy[0, 0][~inside] = np.random.RandomState(0).rand(int((~inside).sum()))
        a0 = _layer_acts(model, img, layer)[0, 1][t.position]
        a1 = _layer_acts(model, noisy, layer)[0, 1][t.position]
        assert a0 == pytest.approx(t.activation) and a1 == pytest.approx(a0, rel=1e-5, abs=1e-6)
        poked = img.copy()
        poked[0, 0][inside] = 1.0 - poked[0, 0][inside]
        assert abs(_layer_acts(model, poked, layer)[0, 1][t.position] - a0) > 1e-3


def test_top_patches_whole_image_for_dense_layers_and_bad_input(lenet):
    import gradflow
    from gradflow.vis.top_patches import top_activating_patches
    model, (x, _), _, _ = lenet
    xs = gradflow.tensor(x[:50])
    found = top_activating_patches(model, xs, "8", [0, 1], k=4)
    for tops in found.values():
        assert all(t.box == (0, 0, 28, 28) and t.position == () for t in tops)
        np.testing.assert_array_equal(tops[0].patch, x[tops[0].image])
    with pytest.raises(ValueError, match=r"channel\(s\) \[16\] out of range"):
        top_activating_patches(model, xs, "4", 16)
    with pytest.raises(ValueError, match="k must be a positive int"):
        top_activating_patches(model, xs, "4", 0, k=0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        top_activating_patches(model, gradflow.tensor(x[0]), "4", 0)


def test_example_top_patches(lenet, tmp_path):
    res = run("vis_top_patches", tmp_path, lenet[2])
    assert is_png(res["png"])
    assert set(res["found"]) == {"conv1", "conv2", "fc1"}
    for label, units in res["found"].items():
        assert 1 <= len(units) <= 3
        for tops in units.values():
            acts = [t.activation for t in tops]
            assert len(tops) == 9 and acts == sorted(acts, reverse=True) and acts[0] > 0
            assert len({t.image for t in tops}) == 9


# -- optimizer paths on a 2-D loss surface ------------------------------------------------------
def _line_problem():
    import gradflow
    import gradflow.nn as nn
    import gradflow.nn.functional as F
    x, y = load_example("optimizer_paths").line_data(n=16)
    model = nn.Linear(1, 1, dtype="float64")
    xt, yt = gradflow.tensor(x), gradflow.tensor(y)
    return model, (lambda m: F.mse_loss(m(xt), yt)), np.hstack([x, np.ones_like(x)]), y.ravel()


def test_sgd_path_is_gradient_descent_and_the_surface_is_the_loss():
    import gradflow
    from gradflow.vis.optimizer_paths import loss_surface, optimizer_path
    model, loss_fn, a, y = _line_problem()
    path, losses = optimizer_path(model, loss_fn, lambda p: gradflow.optim.SGD(p, lr=0.05),
                                  (-1.0, 4.0), 12)
    theta, expect = np.array([-1.0, 4.0]), [np.array([-1.0, 4.0])]
    for _ in range(12):
        theta = theta - 0.05 * 2.0 / len(y) * a.T @ (a @ theta - y)
        expect.append(theta)
    np.testing.assert_allclose(path, np.stack(expect), rtol=1e-10)
    mse = lambda t: float(np.mean((a @ t - y) ** 2))
    np.testing.assert_allclose(losses, [mse(t) for t in expect], rtol=1e-10)
    ws, bs = np.linspace(-2, 3, 7), np.linspace(-4, 4, 5)
    z = loss_surface(model, loss_fn, ws, bs)
    assert z.shape == (5, 7)
    np.testing.assert_allclose(z, [[mse(np.array([w, b])) for w in ws] for b in bs], rtol=1e-10)
    # the parameters are left at the path's end (the surface restored them)
    np.testing.assert_allclose(path[-1], np.concatenate([p.numpy().ravel()
                                                         for p in model.parameters()]))


def test_adam_first_step_is_lr_per_coordinate_and_bad_models():
    import gradflow
    import gradflow.nn as nn
    from gradflow.vis.optimizer_paths import optimizer_path
    model, loss_fn, _, _ = _line_problem()
    path, _ = optimizer_path(model, loss_fn, lambda p: gradflow.optim.Adam(p, lr=0.3),
                             (-1.0, 4.0), 1)
    np.testing.assert_allclose(np.abs(path[1] - path[0]), [0.3, 0.3], rtol=1e-6)
    with pytest.raises(ValueError, match="exactly 2 scalar parameters, got 3"):
        optimizer_path(nn.Linear(2, 1), loss_fn, lambda p: gradflow.optim.SGD(p, lr=0.1),
                       (0.0, 0.0), 1)


def test_example_optimizer_paths(tmp_path):
    res = load_example("optimizer_paths").main(["--fast", "--out", str(tmp_path)])
    assert is_png(res["png"])
    f = res["final_loss"]
    sgd, mom, adam = (f[k] for k in f)
    # on the narrow valley momentum and Adam get much further than plain SGD
    assert mom < sgd and adam < sgd
    # plain SGD wiggles: its steps across the valley alternate in sign at first
    steps = np.diff(res["paths"][next(iter(f))], axis=0)
    across = steps @ np.array([0.9, 0.3])                # roughly the steep direction
    assert (np.sign(across[:6]) != np.sign(across[1:7])).sum() >= 4
    ws, bs, z = res["surface"]
    i, j = np.unravel_index(z.argmin(), z.shape)
    assert abs(ws[j] - res["minimum"][0]) < 0.2 and abs(bs[i] - res["minimum"][1]) < 0.4


# -- PGD and the adversarial patch --------------------------------------------------------------
def _acc(model, x, y):
    import gradflow
    with gradflow.no_grad():
        return float((model(x if not isinstance(x, np.ndarray) else gradflow.tensor(x))
                      .numpy().argmax(1) == y).mean())


def test_pgd_stays_in_the_ball_and_beats_fgsm(lenet):
    import gradflow
    from gradflow.vis import fgsm, pgd
    model, (x, y), _, _ = lenet
    x, y = x[:200], y[:200]
    xs, ys = gradflow.tensor(x), gradflow.tensor(y)
    eps = 0.15
    xp = pgd(model, xs, ys, eps, steps=10)
    d = xp.numpy() - x
    assert np.abs(d).max() <= eps + 1e-6 and xp.numpy().min() >= 0 and xp.numpy().max() <= 1
    assert np.abs(d).max() > 0.9 * eps                  # it uses the ball, not a corner of it
    xf = fgsm(model, xs, ys, eps, clip=(0.0, 1.0))
    clean, acc_f, acc_p = _acc(model, xs, y), _acc(model, xf, y), _acc(model, xp, y)
    assert clean > 0.8
    assert acc_p < acc_f - 0.05, f"PGD {acc_p:.1%} vs FGSM {acc_f:.1%} at eps {eps}"


def test_pgd_special_cases_and_bad_input(lenet):
    import gradflow
    from gradflow.vis import fgsm, pgd
    model, (x, y), _, _ = lenet
    xs, ys = gradflow.tensor(x[:20]), gradflow.tensor(y[:20])
    # one step of size eps from the clean point is FGSM
    np.testing.assert_array_equal(pgd(model, xs, ys, 0.1, alpha=0.1, steps=1,
                                      random_start=False).numpy(),
                                  fgsm(model, xs, ys, 0.1, clip=(0.0, 1.0)).numpy())
    np.testing.assert_array_equal(pgd(model, xs, ys, 0.0, steps=2).numpy(), x[:20])
    # targeted: most digits end up as the chosen class
    xt = pgd(model, xs, 3, 0.25, steps=10, targeted=True)
    with gradflow.no_grad():
        assert (model(xt).numpy().argmax(1) == 3).mean() > 0.6
    with pytest.raises(ValueError, match="eps must be >= 0"):
        pgd(model, xs, ys, -0.1)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        pgd(model, xs, ys, 0.1, steps=0)
    with pytest.raises(ValueError, match="3 labels for a batch of 20"):
        pgd(model, xs, [1, 2, 3], 0.1)


def test_paste_patch_places_the_square_and_passes_gradients():
    import gradflow
    from gradflow.vis import paste_patch
    x = gradflow.tensor(np.random.RandomState(0).rand(3, 2, 9, 8))
    patch = gradflow.tensor(np.random.RandomState(1).rand(2, 3, 4), requires_grad=True)
    out = paste_patch(x, patch, [0, 2, 6], [4, 1, 0])
    o, xn, p = out.detach().numpy(), x.numpy(), patch.detach().numpy()
    for i, (t, v) in enumerate(zip([0, 2, 6], [4, 1, 0])):
        np.testing.assert_array_equal(o[i, :, t:t + 3, v:v + 4], p)
        mask = np.ones((9, 8), bool)
        mask[t:t + 3, v:v + 4] = False
        np.testing.assert_array_equal(o[i][:, mask], xn[i][:, mask])
    w = np.random.RandomState(2).rand(*o.shape)
    (out * gradflow.tensor(w)).sum().backward()
    expect = sum(w[i, :, t:t + 3, v:v + 4] for i, (t, v) in enumerate(zip([0, 2, 6], [4, 1, 0])))
    np.testing.assert_allclose(patch.grad.numpy(), expect, rtol=1e-12)
    with pytest.raises(ValueError, match="does not fit"):
        paste_patch(x, patch, 7, 0)
    with pytest.raises(ValueError, match=r"patch must be \(C=2"):
        paste_patch(x, gradflow.tensor(np.zeros((1, 3, 3))), 0, 0)


# -- feature inversion and DeepDream ------------------------------------------------------------
def test_total_variation():
    import gradflow
    from gradflow.autograd import gradcheck
    from gradflow.vis import total_variation
    x = np.random.RandomState(0).rand(2, 3, 5, 6)
    dh = x[:, :, 1:, :-1] - x[:, :, :-1, :-1]
    dw = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]
    assert total_variation(gradflow.tensor(x)).item() == pytest.approx(np.mean(dh ** 2 + dw ** 2))
    assert total_variation(gradflow.tensor(x), beta=1.0, eps=0.0).item() == \
        pytest.approx(np.mean(np.sqrt(dh ** 2 + dw ** 2)))
    assert total_variation(gradflow.tensor(np.full((1, 1, 4, 4), 0.3))).item() == 0.0
    xt = gradflow.tensor(x, requires_grad=True)
    assert gradcheck(lambda t: total_variation(t, beta=1.5), (xt,))
    with pytest.raises(ValueError, match="H, W >= 2"):
        total_variation(gradflow.tensor(np.zeros((1, 1, 1, 5))))


def test_inversion_matches_the_features(lenet):
    import gradflow
    from gradflow.vis import invert_features, total_variation
    model, (x, _), _, _ = lenet
    img = gradflow.tensor(x[:1])
    rec, hist = invert_features(model, img, "4", steps=40, lr=0.05, tv=1e-2, return_history=True)
    assert rec.shape == img.shape
    assert hist[-1] < 0.05 * hist[0], f"feature loss {hist[0]:.3f} -> {hist[-1]:.4f}"
    # conv2 keeps the layout: the reconstruction looks like the digit, not like another one
    corr = lambda a, b: np.corrcoef(a.ravel(), b.ravel())[0, 1]
    assert corr(rec.numpy(), x[0]) > 0.6 and corr(rec.numpy(), x[0]) > corr(rec.numpy(), x[1]) + 0.3
    # the prior does what it says: a smoother image than without it
    plain = invert_features(model, img, "4", steps=40, lr=0.05, tv=0.0)
    assert total_variation(rec).item() < total_variation(plain).item()
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        invert_features(model, img[0], "4")


def test_deepdream_raises_the_layer_energy(lenet):
    import gradflow
    from gradflow.vis import deepdream, layer_energy
    model, (x, _), _, _ = lenet
    image = gradflow.tensor(np.concatenate(list(x[:2, 0]), axis=1)[None, None])   # 28 x 56
    features = model[:5]
    with gradflow.no_grad():
        before = layer_energy(features, image).item()
    dream, hist = deepdream(features, image, steps=4, octaves=2, jitter=2, return_history=True)
    with gradflow.no_grad():
        after = layer_energy(features, dream).item()
    assert dream.shape == image.shape and len(hist) == 8
    assert after > 1.15 * before and dream.numpy().min() >= 0 and dream.numpy().max() <= 1
    assert hist[3] > hist[0] and hist[7] > hist[4]       # it climbs within each octave
    # the same through a named layer of the whole model at its own size (no octaves)
    one = gradflow.tensor(x[:1])
    with gradflow.no_grad():
        b1 = layer_energy(model, one, "4").item()
    d1 = deepdream(model, one, layer="4", steps=4, octaves=1)
    with gradflow.no_grad():
        assert layer_energy(model, d1, "4").item() > 1.03 * b1
    with pytest.raises(ValueError, match="octave_scale must be > 1"):
        deepdream(features, image, octave_scale=1.0)


# -- the examples -------------------------------------------------------------------------------
def test_example_adversarial_patch(lenet, tmp_path):
    res = run("vis_adversarial_patch", tmp_path, lenet[2])
    assert is_png(res["png"])
    assert res["patch"].shape == (1, 10, 10)
    assert res["patch"].min() >= 0 and res["patch"].max() <= 1
    # the learned patch turns more digits into an 8 than a random patch of the same size
    assert res["learned"] > res["random"] + 0.03 and res["random"] > res["clean"]


def test_example_inversion(lenet, tmp_path):
    res = run("vis_inversion", tmp_path, lenet[2])
    assert is_png(res["png"])
    by = {}
    for r in res["results"]:
        assert r["loss_end"] < 0.1 * r["loss_start"]
        by.setdefault(r["layer"], []).append(r["corr"])
    # shallow features pin the image down, deep ones leave it freer
    assert min(by["conv1"]) > 0.7 and np.mean(by["conv1"]) > np.mean(by["fc1"]) + 0.1


def test_example_deepdream(lenet, tmp_path):
    res = run("vis_deepdream", tmp_path, lenet[2])
    assert is_png(res["png"])
    for before, after in res["energies"].values():
        assert after > 1.2 * before
    assert res["dream"].shape == res["image"].shape == (1, 1, 56, 84)


@pytest.mark.slow
def test_example_pgd_and_adversarial_training(lenet, tmp_path):
    """Adversarial training (100 steps) buys robust accuracy under PGD."""
    res = run("vis_pgd", tmp_path, lenet[2], "--train-steps", "100", "--n", "100")
    assert is_png(res["png"])
    normal, robust = res["curves"]["normal"], res["curves"]["adv-trained"]
    for (eps, f0, p0), (_, f1, p1) in zip(normal, robust):
        assert p0 <= f0 + 0.02                  # PGD at least as strong as FGSM
    at = {e: (p0, p1) for (e, _, p0), (_, _, p1) in zip(normal, robust)}
    assert at[0.15][1] > at[0.15][0] + 0.2


# -- dataset distillation -----------------------------------------------------------------------
def _unrolled(images, lr, dtype="float64"):
    """Outer loss after 2 inner steps of a tiny MLP trained on ``images``."""
    import gradflow
    import gradflow.nn.functional as F
    from gradflow.vis.distill import mlp_forward, mlp_init, train_on
    rng = np.random.RandomState(0)
    params = mlp_init(3, sizes=(6, 4, 3), dtype=dtype)
    labels = gradflow.tensor(np.array([0, 1, 2, 1]))
    trained = train_on(mlp_forward, params, images, labels, lr, 2, create_graph=True)
    x_real = gradflow.tensor(rng.rand(5, 6), dtype=dtype)
    return F.cross_entropy(mlp_forward(trained, x_real), gradflow.tensor(np.array([2, 0, 1, 1, 0])))


def test_distillation_differentiates_through_the_training_steps():
    import gradflow
    from gradflow.autograd import gradcheck
    imgs = gradflow.tensor(np.random.RandomState(1).rand(4, 6), requires_grad=True)
    lr = gradflow.tensor(0.7, dtype="float64", requires_grad=True)
    assert gradcheck(lambda a, b: _unrolled(a, b), (imgs, lr))


def test_distillation_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    import gradflow
    from gradflow.vis.distill import mlp_init
    x0 = np.random.RandomState(1).rand(4, 6)
    imgs = gradflow.tensor(x0, requires_grad=True)
    _unrolled(imgs, 0.7).backward()
    p = [torch.tensor(q.detach().numpy(), requires_grad=True)
         for q in mlp_init(3, sizes=(6, 4, 3), dtype="float64")]
    xt = torch.tensor(x0, requires_grad=True)

    def fwd(ps, x):
        return torch.relu(x @ ps[0].T + ps[1]) @ ps[2].T + ps[3]
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(fwd(p, xt), torch.tensor([0, 1, 2, 1]))
        g = torch.autograd.grad(loss, p, create_graph=True)
        p = [a - 0.7 * b for a, b in zip(p, g)]
    x_real = torch.tensor(np.random.RandomState(0).rand(5, 6))
    torch.nn.functional.cross_entropy(fwd(p, x_real), torch.tensor([2, 0, 1, 1, 0])).backward()
    np.testing.assert_allclose(imgs.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_example_distill(tmp_path):
    res = load_example("vis_distill").main(["--fast", "--out", str(tmp_path), "--nets", "3"])
    assert is_png(res["png"])
    assert res["images"].shape == (10, 1, 28, 28) and res["eta"] > 0
    best_real = np.mean(res["real"][res["best_real_lr"]])
    assert np.mean(res["distilled"]) > best_real + 0.2, (res["distilled"], res["real"])
    assert np.mean(res["history"][-10:]) < np.mean(res["history"][:10])
