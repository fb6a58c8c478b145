"""End-to-end training time: ``gradflow train`` against the same loop in PyTorch and JAX.

    python benchmarks/bench_train_e2e.py --rounds 5                  # stand-in, 2 epochs
    python benchmarks/bench_train_e2e.py --rounds 3 --dataset digits --threads default
    python benchmarks/bench_train_e2e.py --report benchmarks/results/train-e2e.json   # redraw

Every run is a fresh process, LeNet-5, batch 32, 2 epochs, SGD Nesterov 0.9 with the
cosine rate, augmentation on, evaluation of val + test after every epoch:

- ``gradflow numpy``: ``gradflow train --backend numpy --no-compile`` (eager);
- ``gradflow numba``: ``--backend numba --no-compile``;
- ``gradflow numba compiled``: ``--backend numba --compile`` (``gradflow.compile``);
- ``PyTorch``: ``benchmarks/train_loop_torch.py`` (the same loop, CPU);
- ``JAX``: ``benchmarks/train_loop_jax.py`` under ``--jax-python`` (skipped, with the
  reason in the results, when that interpreter has no jax).

A round runs each configuration once, for every thread setting asked (``--threads
default,1``), in an order rotated by one each round so no configuration always
runs first or last. Per run it records the seconds of each epoch and their sum
("training took": training batches + evaluation, as ``gradflow train`` reports it),
the process's wall time (imports, data loading, files), the final test accuracy and
the load average before and after; before each run it waits (at most ``--max-wait``
seconds) for the 1-min load average to drop below ``--max-load``, and a run that
takes over ``--run-timeout`` seconds is stopped and recorded as failed. The report gives medians over rounds and the
ratios to PyTorch taken within each round (then their median and range).

Thread settings: ``default`` leaves every library its own default on this machine
(gradflow: one OpenBLAS thread, Numba's pool on every core; PyTorch: its intra-op
threads; JAX: every CPU); ``1`` gives each one thread (``OPENBLAS/OMP/NUMBA_NUM_THREADS=1``,
``torch.set_num_threads(1)``, JAX limited to one CPU). ``gradflow numpy`` runs in the
first setting only (it uses one BLAS thread in both).

The default dataset is ``fashion-mnist`` read from ``--data-root``; when that folder
has no files, ``make_fmnist_sized.py`` writes its same-size stand-in there first
(not Fashion-MNIST: see that script). Before the rounds, one untimed run of each
gradflow backend fills the Numba kernel cache.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from run_cpu import wait_for_quiet  # noqa: E402
RESULTS = os.path.join(HERE, "results")
REFERENCE = "PyTorch"
CONFIGS = {  # name -> (kind, extra arguments)
    "gradflow numpy": ("gradflow", ["--backend", "numpy", "--no-compile"]),
    "gradflow numba": ("gradflow", ["--backend", "numba", "--no-compile"]),
    "gradflow numba compiled": ("gradflow", ["--backend", "numba", "--compile"]),
    "PyTorch": ("torch", []),
    "JAX": ("jax", []),
}
ONE_SETTING_ONLY = ("gradflow numpy",)
ONE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                  "NUMBA_NUM_THREADS": "1"}


# -- parsing what a run printed / wrote ---------------------------------------------------------------
_EPOCH = re.compile(r"^epoch (\d+): .*?test acc ([0-9.]+), ([0-9.]+) s\s*$")
_TOOK = re.compile(r"training took ([0-9.]+) s")


def parse_loop_output(text):
    """``{"epoch_s": [...], "train_s", "test_acc"}`` from the output of
    train_loop_torch.py / train_loop_jax.py; raises ValueError when a part is missing."""
    epochs, accs = [], []
    for line in text.splitlines():
        m = _EPOCH.match(line.strip())
        if m:
            if int(m.group(1)) != len(epochs) + 1:
                raise ValueError(f"epoch lines out of order at {line!r}")
            accs.append(float(m.group(2)))
            epochs.append(float(m.group(3)))
    took = _TOOK.search(text)
    if not epochs or took is None:
        raise ValueError("no 'epoch k: ... test acc A, S s' lines or no 'training took' line in:\n"
                         + text[-2000:])
    return {"epoch_s": epochs, "train_s": float(took.group(1)), "test_acc": accs[-1]}


def parse_gradflow_metrics(doc, stdout=""):
    """The same record from ``gradflow train``'s metrics.json (its seconds are not
    rounded, unlike the printed table), plus the compiled step's replay count."""
    if not doc.get("complete"):
        raise ValueError("metrics.json says the run did not complete")
    rec = {"epoch_s": [m["seconds"] for m in doc["epochs"]], "train_s": doc["train_seconds"],
           "test_acc": doc["final"]["test_acc"]}
    m = re.search(r"compiled step: (\d+) steps replayed, (\d+) eager", stdout)
    if m:
        rec["replayed"], rec["eager_steps"] = int(m.group(1)), int(m.group(2))
    return rec


# -- aggregation --------------------------------------------------------------------------------------
def _median(xs):
    return statistics.median(xs) if xs else None


def summarize(runs, reference=REFERENCE):
    """Per (setting, configuration): medians over rounds of train_s, each epoch, wall_s
    and test_acc, their range, and the same-round ratios to ``reference``'s train_s and
    last-epoch seconds (median, min, max). ``runs``: dicts with ``round``, ``setting``,
    ``config`` and the parsed record (``error`` instead for a failed run)."""
    out = {}
    ok = [r for r in runs if "error" not in r]
    for setting in dict.fromkeys(r["setting"] for r in runs):
        ref = {r["round"]: r for r in ok if r["setting"] == setting and r["config"] == reference}
        rows = {}
        for config in dict.fromkeys(r["config"] for r in runs if r["setting"] == setting):
            mine = [r for r in ok if r["setting"] == setting and r["config"] == config]
            if not mine:
                rows[config] = {"rounds": 0, "errors": [r["error"] for r in runs
                                                        if r["setting"] == setting and r["config"] == config]}
                continue
            n_ep = min(len(r["epoch_s"]) for r in mine)
            row = {"rounds": len(mine),
                   "train_s": _median([r["train_s"] for r in mine]),
                   "train_s_range": [min(r["train_s"] for r in mine), max(r["train_s"] for r in mine)],
                   "epoch_s": [_median([r["epoch_s"][e] for r in mine]) for e in range(n_ep)],
                   "wall_s": _median([r["wall_s"] for r in mine if "wall_s" in r]),
                   "test_acc": _median([r["test_acc"] for r in mine])}
            for key, pick in (("ratio_train", lambda r: r["train_s"]),
                              ("ratio_last_epoch", lambda r: r["epoch_s"][-1])):
                ratios = [pick(r) / pick(ref[r["round"]]) for r in mine if r["round"] in ref]
                if ratios:
                    row[key] = {"median": _median(ratios), "min": min(ratios), "max": max(ratios),
                                "per_round": ratios}
            rows[config] = row
        out[setting] = rows
    return out


# -- running ------------------------------------------------------------------------------------------
def _command(config, a, workdir):
    kind, extra = CONFIGS[config]
    common = ["--epochs", str(a.epochs), "--dataset", a.dataset]
    if a.limit:
        common += ["--limit", str(a.limit)]
    if a.dataset != "digits":
        common += ["--data-root", a.data_root]
    if kind == "gradflow":
        return [sys.executable, "-m", "gradflow", "train", "--no-progress", "--out", workdir,
                *common, *extra]
    script = os.path.join(HERE, "train_loop_torch.py" if kind == "torch" else "train_loop_jax.py")
    python = sys.executable if kind == "torch" else a.jax_python
    return [python, script, *common]


def run_one(config, setting, a):
    """One fresh process of ``config``; its record (with ``wall_s``, the loads, the
    command), or ``{"error": ...}``."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    workdir = tempfile.mkdtemp(prefix="gradflow-e2e-")
    cmd = _command(config, a, workdir)
    if setting == "1":
        env.update(ONE_THREAD_ENV)
        if CONFIGS[config][0] in ("torch", "jax"):
            cmd += ["--threads", "1"]
    t_wait = time.perf_counter()
    wait_for_quiet(a.max_load, a.max_wait)
    waited = time.perf_counter() - t_wait
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir,
                           timeout=a.run_timeout)
    except subprocess.TimeoutExpired:
        p = None
    wall = time.perf_counter() - t0
    rec = {"command": " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd
                               if not c.startswith(workdir)),
           "wall_s": wall, "load_before": [round(x, 2) for x in load_before],
           "load_after": [round(x, 2) for x in os.getloadavg()], "waited_s": round(waited, 1)}
    try:
        if p is None:
            raise ValueError(f"stopped after {a.run_timeout} s (--run-timeout); 1-min load "
                             f"{load_before[0]:.2f} at the start")
        if p.returncode != 0:
            raise ValueError(f"exit status {p.returncode}: {(p.stderr or p.stdout).strip()[-600:]}")
        if CONFIGS[config][0] == "gradflow":
            with open(os.path.join(workdir, "metrics.json")) as f:
                rec.update(parse_gradflow_metrics(json.load(f), p.stdout))
        else:
            rec.update(parse_loop_output(p.stdout))
            m = re.search(r"training took [0-9.]+ s \((.*)\)", p.stdout)
            rec["reported"] = m.group(1) if m else None
    except (ValueError, OSError, KeyError) as e:
        rec["error"] = str(e)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rec


def jax_available(python):
    """(True, version) or (False, why)."""
    if not python or not shutil.which(python) and not os.path.exists(python):
        return False, f"no interpreter {python!r} (--jax-python)"
    p = subprocess.run([python, "-c", "import jax; print(jax.__version__)"], capture_output=True,
                       text=True)
    if p.returncode != 0:
        return False, f"{python}: cannot import jax ({p.stderr.strip().splitlines()[-1:]})"
    return True, p.stdout.strip()


def machine(a, jax_version):
    from gradflow.bench.machine import blas_info, cpu_model, physical_cores
    import numpy
    info = {"cpu": cpu_model(), "cpus": os.cpu_count(), "physical_cores": physical_cores(),
            "python": sys.version.split()[0], "numpy": numpy.__version__, "blas": blas_info()}
    for mod in ("numba", "torch"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            info[mod] = None
    info["jax"] = jax_version
    info["jax_python"] = a.jax_python
    info["numba_threads_default"] = os.environ.get("NUMBA_NUM_THREADS") or f"{os.cpu_count()} (numba's default)"
    git = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    info["git"] = git.stdout.strip()
    return info


def ensure_data(a):
    if a.dataset == "digits":
        return None
    if not os.path.exists(os.path.join(a.data_root, "train-images-idx3-ubyte.gz")):
        if a.dataset != "fashion-mnist":
            raise SystemExit(f"bench_train_e2e: no {a.dataset} files in {a.data_root}")
        from make_fmnist_sized import write
        print(f"bench_train_e2e: writing the Fashion-MNIST-sized stand-in into {a.data_root}",
              file=sys.stderr, flush=True)
        write(a.data_root)
    readme = os.path.join(a.data_root, "README.txt")
    return open(readme).read().strip() if os.path.exists(readme) else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dataset", default="fashion-mnist", choices=("fashion-mnist", "mnist", "digits"))
    ap.add_argument("--data-root", default=os.path.join(tempfile.gettempdir(), "gradflow-fmnist-sized"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="at most N samples per split (estimates)")
    ap.add_argument("--threads", default="default,1", help="comma list of settings: default, 1")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma list of: " + ", ".join(CONFIGS))
    ap.add_argument("--jax-python", default="/work/jaxenv/bin/python")
    ap.add_argument("--max-load", type=float, default=99.0,
                    help="before each run, wait (at most --max-wait s) for the 1-min load to drop "
                         "below this")
    ap.add_argument("--max-wait", type=float, default=120.0)
    ap.add_argument("--run-timeout", type=float, default=600.0,
                    help="stop a run after this many seconds (recorded as failed)")
    ap.add_argument("--out", default=os.path.join(RESULTS, "train-e2e"),
                    help="results basename: writes OUT.json, OUT.md and OUT.png")
    ap.add_argument("--report", metavar="JSON", help="only redraw the report from a results JSON")
    a = ap.parse_args(argv)
    if a.report:
        with open(a.report) as f:
            doc = json.load(f)
        doc["summary"] = summarize(doc["runs"])
        write_outputs(doc, os.path.splitext(a.report)[0])
        return 0
    configs = [c.strip() for c in a.configs.split(",") if c.strip()]
    settings = [s.strip() for s in a.threads.split(",") if s.strip()]
    bad = [c for c in configs if c not in CONFIGS] + [s for s in settings if s not in ("default", "1")]
    if bad:
        raise SystemExit(f"bench_train_e2e: unknown {bad}; configurations: {', '.join(CONFIGS)}; "
                         f"thread settings: default, 1")
    note = ensure_data(a)
    skipped = {}
    jax_ok, jax_version = jax_available(a.jax_python) if "JAX" in configs else (False, None)
    if "JAX" in configs and not jax_ok:
        skipped["JAX"] = jax_version
        configs.remove("JAX")
        jax_version = None
    plan = [(s, c) for s in settings for c in configs if not (c in ONE_SETTING_ONLY and s != settings[0])]
    for c in configs:  # fill the Numba cache, first JIT compiles of the kernels
        if c.startswith("gradflow numba"):
            w = run_one(c, settings[0], argparse.Namespace(**{**vars(a), "limit": 64, "epochs": 1}))
            print(f"bench_train_e2e: warm-up {c}: {w.get('error') or 'ok'} ({w['wall_s']:.1f} s)",
                  file=sys.stderr, flush=True)
    doc = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "argv": sys.argv[1:],
           "dataset": a.dataset, "data_note": note, "epochs": a.epochs, "limit": a.limit,
           "settings": settings, "skipped": skipped, "machine": machine(a, jax_version),
           "uptime_before": _uptime(), "runs": []}
    for k in range(a.rounds):
        load = os.getloadavg()[0]
        order = plan[k % len(plan):] + plan[:k % len(plan)]
        print(f"bench_train_e2e: round {k + 1}/{a.rounds}, load {load:.2f}", file=sys.stderr, flush=True)
        for setting, config in order:
            rec = run_one(config, setting, a)
            rec.update({"round": k + 1, "setting": setting, "config": config})
            doc["runs"].append(rec)
            print(f"  [{setting}] {config}: " + (f"ERROR {rec['error']}" if "error" in rec else
                  f"train {rec['train_s']:.1f} s, epochs {', '.join(f'{e:.1f}' for e in rec['epoch_s'])}, "
                  f"wall {rec['wall_s']:.1f} s, test acc {100 * rec['test_acc']:.2f}%, "
                  f"load {rec['load_before'][0]:.2f}->{rec['load_after'][0]:.2f}"), file=sys.stderr, flush=True)
        doc["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        doc["uptime_after"] = _uptime()
        doc["summary"] = summarize(doc["runs"])
        write_outputs(doc, a.out)  # after every round: a cut-short run still leaves its results
    return 0


def _uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


# -- outputs ------------------------------------------------------------------------------------------
SETTING_LABEL = {"default": "each library's default threads", "1": "one thread each"}


def markdown(doc):
    """The measured tables (the reading is written by hand below them in the .md)."""
    m = doc["machine"]
    lines = [f"Command: `python benchmarks/bench_train_e2e.py {' '.join(doc['argv'])}`  ",
             f"Data: {doc['dataset']}" + (f" (limit {doc['limit']} per split)" if doc["limit"] else "")
             + f", {doc['epochs']} epochs" + (f" -- {doc['data_note'].splitlines()[0]}" if doc.get("data_note") else "")
             + "  ",
             f"Machine: {m['cpu']}, {m['cpus']} CPUs ({m['physical_cores']} cores); Python {m['python']}, "
             f"NumPy {m['numpy']}, Numba {m['numba']}, torch {m['torch']}, JAX {m['jax'] or 'not run'}; "
             f"gradflow at {m['git']}  ",
             f"Load: before `{doc['uptime_before']}`; after `{doc.get('uptime_after', '')}`  ",
             f"Rounds: {doc['started']} .. {doc.get('finished', '')}"]
    for name, why in doc.get("skipped", {}).items():
        lines.append(f"\nSkipped: {name} ({why})")
    for setting, rows in doc["summary"].items():
        lines += ["", f"### {SETTING_LABEL.get(setting, setting)}", "",
                  "| configuration | rounds | training took, s (median, min-max) | per epoch, s | wall s | "
                  "test acc | / PyTorch (same round, median, range) | last epoch / PyTorch |",
                  "|---|---:|---:|---|---:|---:|---:|---:|"]
        for config, r in rows.items():
            if not r["rounds"]:
                lines.append(f"| {config} | 0 | failed: {r['errors'][0][:120]} | | | | | |")
                continue
            rt, rl = r.get("ratio_train"), r.get("ratio_last_epoch")
            lines.append(
                f"| {config} | {r['rounds']} | {r['train_s']:.1f} ({r['train_s_range'][0]:.1f}-"
                f"{r['train_s_range'][1]:.1f}) | {' / '.join(f'{e:.1f}' for e in r['epoch_s'])} | "
                f"{r['wall_s']:.1f} | {100 * r['test_acc']:.2f}% | "
                + (f"{rt['median']:.2f}x ({rt['min']:.2f}-{rt['max']:.2f})" if rt else "") + " | "
                + (f"{rl['median']:.2f}x" if rl else "") + " |")
    loads = [r["load_before"][0] for r in doc["runs"]] + [r["load_after"][0] for r in doc["runs"]]
    if loads:
        lines.append(f"\n1-min load average around the runs: {min(loads):.2f} .. {max(loads):.2f} "
                     f"(median {statistics.median(loads):.2f}); every run's is in the JSON.")
    return "\n".join(lines) + "\n"


def plot(doc, path):
    """Bar chart: median seconds per epoch of every configuration, one panel per thread setting."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    settings = [s for s in doc["summary"] if any(r["rounds"] for r in doc["summary"][s].values())]
    fig = Figure(figsize=(5.2 * len(settings) + 0.6, 4.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(settings), squeeze=False, sharey=True)[0]
    colors = ["#4c72b0", "#dd8452"]
    for ax, setting in zip(axes, settings):
        rows = {c: r for c, r in doc["summary"][setting].items() if r["rounds"]}
        names = list(rows)
        n_ep = max(len(r["epoch_s"]) for r in rows.values())
        width = 0.8 / n_ep
        for e in range(n_ep):
            xs = [i + (e - (n_ep - 1) / 2) * width for i in range(len(names))]
            vals = [rows[c]["epoch_s"][e] if e < len(rows[c]["epoch_s"]) else 0 for c in names]
            bars = ax.bar(xs, vals, width, label=f"epoch {e + 1}", color=colors[e % len(colors)])
            ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
        ax.set_xticks(range(len(names)), [c.replace("gradflow ", "gradflow\n") for c in names], fontsize=8)
        if ax is axes[0]:
            ax.set_ylabel("seconds per epoch (median over rounds)")
        ax.tick_params(labelleft=True)
        ax.set_title(SETTING_LABEL.get(setting, setting), fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"LeNet-5, {doc['dataset']}" + (" (same-size stand-in)" if doc.get("data_note") else "")
                 + f", batch 32, {doc['epochs']} epochs, {doc['machine']['cpus']} CPUs", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_outputs(doc, base):
    os.makedirs(os.path.dirname(os.path.abspath(base)), exist_ok=True)
    with open(base + ".json", "w") as f:
        json.dump(doc, f, indent=1)
    md = base + ".md"
    measured = markdown(doc)
    marker = "<!-- measured tables above: written by bench_train_e2e.py; reading below: by hand -->"
    tail = ""
    if os.path.exists(md):
        old = open(md).read()
        tail = old.split(marker, 1)[1] if marker in old else ""
    with open(md, "w") as f:
        f.write("# End-to-end training: gradflow train vs the same loop in PyTorch and JAX\n\n"
                + measured + "\n" + marker + tail)
    plot(doc, base + ".png")


if __name__ == "__main__":
    sys.exit(main())
