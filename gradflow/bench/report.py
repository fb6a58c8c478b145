"""Turning rows into a report: same-run ratios, the CPU/GPU crossover, the
markdown table printed to the terminal (and committed under
``benchmarks/results/``), and the JSON document written by ``--json``.

Ratios are *time* ratios measured in the same run: ``t/numpy`` = this row's
median over the NumPy backend's median for the same case and size (0.25x = four
times faster); ``t/torch`` = over PyTorch's median on the same kind of device
(CPU rows against torch-cpu, GPU rows against torch-cuda); ``t/eager`` (``--compiled``
rows only) = a ``<backend>-compiled`` row's median over its backend's eager row's.
"""
from __future__ import annotations

import math
from collections import OrderedDict

SCHEMA = "gradflow-bench/1"
COMPILED = "gradflow-compiled"   # the impl of the --compiled rows (gradflow/bench/compiled.py)


def _ok(r) -> bool:
    return r.get("error") is None and r.get("median_ms") is not None


def _key(r):
    return (r["case"], r["size"], r["dtype"])


def _compiled(r) -> bool:
    return r.get("impl") == COMPILED


def add_ratios(rows: list[dict]) -> None:
    """Fill ``vs_numpy`` and ``vs_torch`` in place (None where there is no reference), and
    ``vs_eager`` on the compiled rows (compiled median over the same backend's eager one)."""
    ref = {}
    for r in rows:
        if _ok(r):
            ref[_key(r) + (r["backend"],)] = r["median_ms"]
    for r in rows:
        r["vs_numpy"] = r["vs_torch"] = None
        if not _ok(r):
            continue
        base = ref.get(_key(r) + ("numpy",))
        if base:
            r["vs_numpy"] = r["median_ms"] / base
        torch_ref = ref.get(_key(r) + ("torch-cuda" if r["device"] == "cuda" else "torch-cpu",))
        if torch_ref:
            r["vs_torch"] = r["median_ms"] / torch_ref
    for r in rows:
        if _compiled(r):
            eager = ref.get(_key(r) + (r.get("eager_backend"),)) if _ok(r) else None
            r["vs_eager"] = r["median_ms"] / eager if eager else None


def crossovers(rows: list[dict]) -> list[dict]:
    """For each case measured at several sizes with a GPU implementation: the
    smallest size from which the GPU is faster than the best CPU competitor at
    that size and at every larger measured size.

    cupy is compared with the best gradflow CPU backend; torch-cuda with torch-cpu."""
    out = []
    cases = OrderedDict()
    for r in rows:
        if _ok(r):
            cases.setdefault((r["case"], r["dtype"]), []).append(r)
    for (case, dtype), rs in cases.items():
        sizes = sorted({r["size"] for r in rs})
        for gpu in sorted({r["backend"] for r in rs if r["device"] == "cuda"}):
            gpu_kind = next(r["impl"] for r in rs if r["backend"] == gpu)
            cpu_labels = sorted({r["backend"] for r in rs if r["device"] == "cpu" and
                                 r["impl"] == gpu_kind})
            if not cpu_labels:
                continue
            per_size = []
            for s in sizes:
                g = [r["median_ms"] for r in rs if r["size"] == s and r["backend"] == gpu]
                c = [(r["median_ms"], r["backend"]) for r in rs
                     if r["size"] == s and r["backend"] in cpu_labels]
                if g and c:
                    best = min(c)
                    per_size.append((s, g[0], best[0], best[1]))
            if not per_size:
                continue
            cross = None
            for i, (s, g, c, _) in enumerate(per_size):
                if all(gg < cc for _, gg, cc, _ in per_size[i:]):
                    cross = s
                    break
            out.append({
                "case": case, "dtype": dtype, "gpu": gpu, "cpu": cpu_labels,
                "sizes": [p[0] for p in per_size], "crossover_size": cross,
                "gpu_ms": [p[1] for p in per_size], "best_cpu_ms": [p[2] for p in per_size],
                "best_cpu": [p[3] for p in per_size],
            })
    return out


def loss_agreement(rows: list[dict]) -> list[str]:
    """Lines flagging first-call losses that disagree between implementations."""
    groups = OrderedDict()
    for r in rows:
        if _ok(r) and r.get("loss0") is not None:
            groups.setdefault(_key(r), []).append(r)
    worst, bad = 0.0, []
    for key, rs in groups.items():
        ref = rs[0]["loss0"]
        tol = 1e-3 if key[2] == "float32" else 1e-8
        for r in rs[1:]:
            rel = abs(r["loss0"] - ref) / max(abs(ref), 1e-12)
            worst = max(worst, rel)
            if not rel <= tol:
                bad.append(f"  MISMATCH {key[0]} size {key[1]}: {rs[0]['backend']} loss "
                           f"{ref:.6g} vs {r['backend']} {r['loss0']:.6g}")
    n = sum(len(v) > 1 for v in groups.values())
    if n == 0:
        return []
    head = (f"First-call losses agree across implementations ({n} cases compared, "
            f"max relative difference {worst:.1e})." if not bad else
            "First-call losses DISAGREE between implementations:")
    return [head] + bad


# -- formatting -------------------------------------------------------------------------------------------
def fmt_ms(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    if x >= 0.1:
        return f"{x:.3f}"
    return f"{x:.4f}"


def fmt_rate(x) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def fmt_ratio(x) -> str:
    if x is None:
        return "-"
    if x >= 0.095 or x <= 0:
        return f"{x:.2f}x"
    digits = 1 - math.floor(math.log10(x))  # two significant digits: 0.012x, 0.0024x
    return f"{x:.{digits}f}x"


def fmt_gflops(x) -> str:
    return "-" if x is None else (f"{x:.1f}" if x < 1000 else f"{x:,.0f}")


def _table(headers, body) -> list[str]:
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(headers)]
    right = [i >= 2 and not h.startswith("gradflow") for i, h in enumerate(headers)]

    def line(cells):
        return "| " + " | ".join(c.rjust(w) if r else c.ljust(w)
                                 for c, w, r in zip(cells, widths, right)) + " |"
    sep = "|" + "|".join(("-" * (w + 1) + ":") if r else ("-" * (w + 2))
                         for w, r in zip(widths, right)) + "|"
    return [line(headers), sep] + [line(b) for b in body]


def case_tables(rows: list[dict], describe=None) -> list[str]:
    """One markdown table per case (all sizes and implementations)."""
    out = []
    groups = OrderedDict()
    for r in rows:
        groups.setdefault((r["case"], r["dtype"]), []).append(r)
    for (case, dtype), rs in groups.items():
        size_label = "n" if rs[0]["size_kind"] == "n" else "N"
        title = f"### {case} ({rs[0]['mode']}, {dtype})"
        if describe:
            title += f": {describe(rs[0]['workload'])}"
        out += [title, ""]
        with_compiled = any(_compiled(r) for r in rs)
        headers = [size_label, "backend", "first call ms", "median ms", "IQR ms", "min ms",
                   "samples/s", "GFLOP/s", "t/numpy", "t/torch"]
        if with_compiled:  # the capture beside the first call; t/eager at the end
            headers[3:3] = ["capture ms"]
            headers.append("t/eager")
        body = []
        for r in sorted(rs, key=lambda r: r["size"]):
            if not _ok(r):
                cells = [str(r["size"]), r["backend"], "error"] + ["-"] * 7
            else:
                cells = [str(r["size"]), r["backend"], fmt_ms(r["first_call_ms"]),
                         fmt_ms(r["median_ms"]), fmt_ms(r["iqr_ms"]), fmt_ms(r["min_ms"]),
                         fmt_rate(r["samples_per_s"]),
                         fmt_gflops(r["gflops"]), fmt_ratio(r["vs_numpy"]),
                         fmt_ratio(r["vs_torch"])]
            if with_compiled:
                cells[3:3] = [fmt_ms(r.get("capture_ms"))]
                cells.append(fmt_ratio(r.get("vs_eager")))
            body.append(cells)
        out += _table(headers, body)
        errs = [r for r in rs if not _ok(r)]
        if errs:
            out.append("")
        for r in errs:
            out.append(f"- {r['backend']} at {size_label}={r['size']}: {r['error']}")
        out.append("")
    return out


def peer_ratio_table(rows: list[dict]) -> list[str]:
    """With torch.compile or JAX rows: every gradflow row's median over each peer's
    (torch eager, torch.compile, JAX jit) for the same case and size, in one table."""
    ok = [r for r in rows if _ok(r)]
    if not any(r["impl"] in ("torch-compile", "jax") for r in ok):
        return []
    mine = ("gradflow", COMPILED)
    peers = list(OrderedDict.fromkeys(r["backend"] for r in ok if r["impl"] not in mine))
    ref = {_key(r) + (r["backend"],): r["median_ms"] for r in ok}
    body = []
    for r in ok:
        if r["impl"] not in mine:
            continue
        cells = [fmt_ratio(r["median_ms"] / ref[_key(r) + (p,)]) if ref.get(_key(r) + (p,))
                 else "-" for p in peers]
        body.append([r["case"], str(r["size"]), r["backend"], fmt_ms(r["median_ms"])] + cells)
    if not body:
        return []
    head = ["case", "size", "gradflow", "median ms"] + [f"t/{p}" for p in peers]
    return (["### gradflow against the peers (time ratios in this run, < 1 = gradflow faster)",
             ""] + _table(head, body) + [""])


def compiled_table(rows: list[dict]) -> list[str]:
    """With ``--compiled``: every compiled row beside its eager row (and PyTorch's,
    where measured), the capture apart, and the refusals with their reason."""
    comp = [r for r in rows if _compiled(r)]
    if not comp:
        return []
    ok = {_key(r) + (r["backend"],): r for r in rows if _ok(r)}
    body, refused = [], []
    for r in comp:
        if not _ok(r):
            refused.append(f"- {r['backend']}, {r['case']} at N={r['size']}: {r['error']}")
            continue
        eager = ok.get(_key(r) + (r.get("eager_backend"),))
        torch_ref = ok.get(_key(r) + ("torch-cuda" if r["device"] == "cuda" else "torch-cpu",))
        e_ms = eager["median_ms"] if eager else None
        body.append([r["case"], r["eager_backend"], str(r["size"]), fmt_ms(e_ms),
                     fmt_ms(r["median_ms"]), fmt_ms(r["capture_ms"]), str(r["kernels"]),
                     fmt_ratio(r["vs_eager"]), fmt_ratio(r["vs_torch"]),
                     fmt_ratio(e_ms / torch_ref["median_ms"] if e_ms and torch_ref else None)])
    out = ["### gradflow.compile against eager (same run; < 1 = compiled faster)", ""]
    if body:
        out += _table(["case", "backend", "N", "eager ms", "compiled ms", "capture ms",
                       "kernels", "compiled/eager", "compiled/torch", "eager/torch"], body)
        out += ["", "`capture ms`: the compiled step's first 4 calls (the eager first call, "
                "two recorded calls, the first replay checked against an eager rerun), "
                "never in the median; `kernels`: backend kernel calls per replay."]
    if refused:
        out += ([""] if body else []) + ["Capture refused (no compiled timing):"] + refused
    return out + [""]


def crossover_lines(xs: list[dict]) -> list[str]:
    out = []
    for x in xs:
        label = "n" if x["case"] == "matmul" else "N"
        against = "best of " + ",".join(x["cpu"]) if len(x["cpu"]) > 1 else x["cpu"][0]
        detail = ", ".join(f"{s}: {fmt_ms(g)} vs {fmt_ms(c)} ms" for s, g, c in
                           zip(x["sizes"], x["gpu_ms"], x["best_cpu_ms"]))
        if x["crossover_size"] is None:
            verdict = "never faster at the measured sizes"
        elif x["crossover_size"] == x["sizes"][0]:
            verdict = f"faster at every measured size ({label} >= {x['crossover_size']})"
        else:
            verdict = f"faster from {label} = {x['crossover_size']} up"
        out.append(f"- {x['case']}: {x['gpu']} vs {against}: {verdict} ({detail})")
    return out


def busy_warning(info: dict) -> str | None:
    """A warning when other processes kept the CPUs busy: 1-min load average above
    half the logical CPUs before the run, or above 1.5x them at the end (the run
    itself keeps up to all of them busy)."""
    cpus = info.get("logical_cpus") or 1
    start, end = info.get("loadavg_start"), info.get("loadavg_end")
    loads = [l[0] for l in (start, end) if l]
    if (start and start[0] > 0.5 * cpus) or (end and end[0] > 1.5 * cpus):
        return (f"**Note: the machine was busy (1-min load average up to {max(loads):.1f} on "
                f"{cpus} logical CPUs): absolute times are inflated and noisy; compare "
                f"same-run ratios and check the IQR.**")
    return None


def render(doc: dict, describe=None) -> str:
    """The whole report as markdown text."""
    from .machine import summary
    lines = ["# gradflow bench", ""]
    lines.append(f"`{doc['command']}` at {doc['created_utc']} (UTC), "
                 f"{doc['elapsed_s']:.0f} s")
    lines.append("")
    lines += ["```", summary(doc["machine"]), "```", ""]
    s = doc["settings"]
    lines.append(f"dtype {s['dtype']}; per row: 1 first call (timed separately), up to "
                 f"{s['warmup']} warm-up calls, up to {s['repeat']} timed calls"
                 + (f" (stopping after {s['budget_s']:g} s of timed calls, min 3)"
                    if s.get("budget_s") else "")
                 + "; median, interquartile range (IQR) and minimum of the timed calls. "
                 "`t/numpy`, `t/torch`: time ratios in this run (< 1 = faster). "
                 "GFLOP/s counts matmul/conv/linear multiply-adds only (gradflow/bench/flops.py).")
    if any(_compiled(r) for r in doc["rows"]):
        lines.append("")
        lines.append("`<backend>-compiled` rows (`--compiled`): the same training step under "
                     "`gradflow.compile`, timed on its replays after the capture; `capture ms` "
                     "(the eager first call, two recorded calls and the checked first replay) "
                     "is apart from the median, as the first call is; `t/eager`: over the "
                     "same backend's eager row. Workloads that are not a training step get no "
                     "compiled row.")
    busy = busy_warning(doc["machine"])
    if busy:
        lines += ["", busy]
    if doc["unavailable"]:
        lines.append("")
        lines.append("Not measured here:")
        for name, reason in doc["unavailable"].items():
            lines.append(f"- {name}: {reason}")
    lines.append("")
    lines += case_tables(doc["rows"], describe)
    lines += compiled_table(doc["rows"])
    lines += peer_ratio_table(doc["rows"])
    xs = doc.get("crossovers") or []
    if xs:
        lines += ["### CPU vs GPU crossover", ""] + crossover_lines(xs) + [""]
    agree = loss_agreement(doc["rows"])
    if agree:
        lines += agree + [""]
    if doc.get("interrupted"):
        lines.append("**Interrupted (Ctrl-C): the tables above hold what was measured so far.**")
    if doc.get("skipped"):
        lines.append(f"**Time limit reached: {doc['skipped']} case/backend pairs were not run.**")
    return "\n".join(lines).rstrip() + "\n"
