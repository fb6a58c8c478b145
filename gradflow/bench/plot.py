"""``--plot FILE.png``: median time (log) against batch size (log) per backend,
one panel per case, IQR as error bars; a ``<backend>-compiled`` line is dash-dotted in
its eager backend's colour. Uses matplotlib's Agg canvas directly
(no pyplot, no display needed)."""
from __future__ import annotations

import math
from collections import OrderedDict

from .compiled import eager_label


def plot(rows: list[dict], path: str, title: str = "gradflow bench") -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    groups = OrderedDict()
    for r in rows:
        if r.get("error") is None and r.get("median_ms") is not None:
            groups.setdefault(f"{r['case']} ({r['dtype']})", []).append(r)
    n = max(1, len(groups))
    cols = min(3, n)
    nrows = math.ceil(n / cols)
    fig = Figure(figsize=(5 * cols, 3.8 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    for ax, (case, rs) in zip(axes, groups.items()):
        colors = {}
        for backend in OrderedDict.fromkeys(r["backend"] for r in rs):
            pts = sorted((r["size"], r["median_ms"], r["q1_ms"], r["q3_ms"])
                         for r in rs if r["backend"] == backend)
            xs = [p[0] for p in pts]
            ys = [p[1] for p in pts]
            err = [[max(p[1] - p[2], 0) for p in pts], [max(p[3] - p[1], 0) for p in pts]]
            eager = eager_label(backend) if eager_label(backend) != backend else None
            style = {"color": colors[eager], "marker": "s"} if eager in colors else {"marker": "o"}
            line = ax.errorbar(xs, ys, yerr=err, ms=4, capsize=2, label=backend,
                               linestyle="-." if eager else "--" if backend.startswith("torch")
                               else ":" if backend.startswith("jax") else "-", **style)
            colors[backend] = line[0].get_color()  # a -compiled line takes its eager line's colour
        ax.set_xscale("log", base=2)
        sizes = sorted({r["size"] for r in rs})
        ax.set_xticks(sizes, [str(x) for x in sizes])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_yscale("log")
        ax.set_title(case, fontsize=10)
        ax.set_xlabel("n (matrix size)" if rs[0]["size_kind"] == "n" else "batch size")
        ax.set_ylabel("median time per call (ms)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[len(groups):]:
        ax.set_visible(False)
    if not groups:
        axes[0].text(0.5, 0.5, "no successful measurements", ha="center", va="center")
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    return path
