"""PGD vs FGSM, and what adversarial training buys (Madry et al. 2018).

    python examples/vis_pgd.py [--fast] [--backend NAME] [--out DIR] [--train-eps 0.15]

Trains (or loads) a LeNet-5 on the bundled digits and attacks the held-out
digits with FGSM (one signed step of size eps) and PGD (10 steps of
2.5 eps / 10 from a random start in the L-inf ball, projected back after each
step) at several eps. Then trains a second LeNet-5 for the same number of
steps on adversarial batches (each batch replaced by a one-step PGD attack
with random start at --train-eps, "FGSM with random start", Wong, Rice &
Kolter 2020) and attacks it the same way. Writes OUT/pgd.png: accuracy under
attack vs eps for both nets and both attacks, and PGD examples on each net.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gradflow  # noqa: E402
from gradflow.vis import fgsm  # noqa: E402
from gradflow.vis._plot import new_figure, save, show  # noqa: E402
from gradflow.vis.attacks import pgd  # noqa: E402
from _common import Timer, example_parser, parse  # noqa: E402
from vis_common import (accuracy, add_common_args, lenet5, lenet_from_args,  # noqa: E402
                        load_digits, split, train)


def robust_curve(model, x, y, eps_list, pgd_steps):
    rows = []
    for eps in eps_list:
        xs, ys = gradflow.tensor(x), gradflow.tensor(y)
        xf = fgsm(model, xs, ys, eps, clip=(0.0, 1.0)).numpy()
        xp = pgd(model, xs, ys, eps, steps=pgd_steps).numpy()
        rows.append((eps, accuracy(model, xf, y), accuracy(model, xp, y)))
    return rows


def adversarially_trained(args, steps, batch_size):
    cache = os.path.join(args.out, f"lenet_adv_eps{args.train_eps:g}_{steps}.npz")
    gradflow.manual_seed(0)
    model = lenet5()
    if os.path.exists(cache):
        model.load_state_dict(gradflow.load(cache))
        model.eval()
        return model
    (xtr, ytr), _ = split(*load_digits())
    eps = args.train_eps

    def attack(m, xb, yb, step):
        return pgd(m, xb, yb, eps, alpha=1.25 * eps, steps=1, seed=step)
    t0 = time.perf_counter()
    train(model, xtr, ytr, steps=steps, batch_size=batch_size, perturb=attack)
    print(f"adversarially trained LeNet-5 ({steps} steps, eps {eps:g}) in "
          f"{time.perf_counter() - t0:.1f} s")
    os.makedirs(args.out, exist_ok=True)
    gradflow.save(model.state_dict(), cache)
    return model


def main(argv=None):
    ap = add_common_args(example_parser(
        __doc__, takes="about 35 min on a busy machine (measured: 443 s LeNet, "
                       "1120 s adversarial training, 529 s attacks)",
        fast_takes="a few minutes"))
    ap.add_argument("--train-eps", type=float, default=0.15,
                    help="eps of the adversarial training batches (default 0.15)")
    ap.add_argument("--n", type=int, default=None, help="test digits to attack (default 500)")
    args = parse(ap, argv)
    model, (x_test, y_test) = lenet_from_args(args)
    steps = args.train_steps or (150 if args.fast else 300)
    robust = adversarially_trained(args, steps, 32 if args.fast else 64)
    n = args.n or (150 if args.fast else 500)
    x, y = x_test[:n], y_test[:n]
    eps_list = [0.05, 0.1, 0.15, 0.2] if args.fast else [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
    pgd_steps = 5 if args.fast else 10
    curves = {"normal": robust_curve(model, x, y, eps_list, pgd_steps),
              "adv-trained": robust_curve(robust, x, y, eps_list, pgd_steps)}
    clean = {"normal": accuracy(model, x, y), "adv-trained": accuracy(robust, x, y)}
    print(f"accuracy on {n} held-out digits (clean: normal {clean['normal']:.1%}, "
          f"adv-trained {clean['adv-trained']:.1%}); PGD: {pgd_steps} steps, random start")
    print("  eps    normal FGSM  normal PGD   adv-tr FGSM  adv-tr PGD")
    for (e, f0, p0), (_, f1, p1) in zip(curves["normal"], curves["adv-trained"]):
        print(f"  {e:4.2f}   {f0:10.1%}  {p0:10.1%}   {f1:10.1%}  {p1:10.1%}")
    # the picture: curves, and one digit attacked by PGD at eps 0.15 on each net
    fig = new_figure(9.0, 4.2)
    ax = fig.add_axes([0.07, 0.14, 0.42, 0.76])
    for name, colour in (("normal", "tab:red"), ("adv-trained", "tab:blue")):
        e = [r[0] for r in curves[name]]
        ax.plot(e, [r[1] for r in curves[name]], "--", color=colour, label=f"{name}, FGSM")
        ax.plot(e, [r[2] for r in curves[name]], "-o", color=colour, ms=3, label=f"{name}, PGD")
    ax.set_xlabel("eps (L-inf, pixels in [0, 1])", fontsize=8)
    ax.set_ylabel("accuracy under attack", fontsize=8)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=7)
    ax.set_title(f"LeNet-5, {n} held-out digits", fontsize=9)
    show_eps = 0.15
    xs, ys = gradflow.tensor(x[:4]), gradflow.tensor(y[:4])
    for r, (name, net) in enumerate((("normal", model), ("adv-trained", robust))):
        xa = pgd(net, xs, ys, show_eps, steps=pgd_steps)
        with gradflow.no_grad():
            pred = net(xa).numpy().argmax(1)
        for i in range(4):
            a = fig.add_axes([0.53 + 0.115 * i, 0.52 - 0.42 * r, 0.105, 0.36])
            show(a, xa.numpy()[i, 0], f"{name}: {y[i]}→{pred[i]}")
            if pred[i] != y[i]:
                a.title.set_color("crimson")
    fig.text(0.53, 0.93, f"PGD at eps {show_eps:g}: true→predicted", fontsize=9)
    path = save(fig, os.path.join(args.out, "pgd.png"))
    print(f"wrote {path}")
    return dict(png=path, curves=curves, clean=clean)


if __name__ == "__main__":
    with Timer("vis_pgd"):
        main(sys.argv[1:])
