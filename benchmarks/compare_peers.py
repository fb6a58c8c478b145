"""Several rounds of `gradflow bench` with the peer rows, and their summary.

    python benchmarks/compare_peers.py --rounds 5 --out /tmp/peers -- \\
        --backends numba --compare-torch --compare-torch-compile --compare-jax \\
        --jax-python /path/to/jaxenv/bin/python --workloads lenet5_step,mlp_step --batch-sizes 64

Arguments after ``--`` go to ``gradflow bench``. Each round is a fresh
``gradflow bench`` process (fresh workers, so compile times are cold each
time) that waits for a quiet machine first (``--max-load``) and writes
``OUT/roundK.json``; within a round every case runs all implementations back to
back, so rounds alternate implementations within seconds. The summary (printed
as markdown, and written to ``OUT/summary.md``) gives per row the median over
rounds of the row medians, of the IQRs and of the first calls, and the
gradflow/peer time ratios taken *within* each round, as their median and range
over the rounds. ``--summarize OUT`` only summarizes existing rounds.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run_cpu import wait_for_quiet  # noqa: E402


def run_rounds(rounds: int, out: str, bench_args: list[str], max_load: float,
               max_wait: float) -> None:
    os.makedirs(out, exist_ok=True)
    for k in range(1, rounds + 1):
        load = wait_for_quiet(max_load, max_wait)
        uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        print(f"compare_peers: round {k}/{rounds}, {uptime}", file=sys.stderr)
        js = os.path.join(out, f"round{k}.json")
        rc = subprocess.run([sys.executable, "-m", "gradflow.bench", *bench_args, "--json", js,
                             "--no-progress"], stdout=subprocess.DEVNULL).returncode
        if rc != 0:
            raise SystemExit(f"compare_peers: round {k}: gradflow bench exited with {rc}")
        with open(js) as f:
            doc = json.load(f)
        doc["uptime_before"], doc["load_waited_for"] = uptime, load
        with open(js, "w") as f:
            json.dump(doc, f, indent=1)


MINE = ("gradflow", "gradflow-compiled")   # the gradflow side of a ratio (--compiled rows too)


def _fmt(x: float) -> str:
    return f"{x:.3g}" if x < 100 else f"{x:,.0f}"


def summarize(out: str) -> str:
    docs = []
    for path in sorted(glob.glob(os.path.join(out, "round*.json")),
                       key=lambda p: int(os.path.basename(p)[5:-5])):
        with open(path) as f:
            docs.append(json.load(f))
    if not docs:
        raise SystemExit(f"compare_peers: no round*.json in {out}")
    per = {}   # (case, size, backend) -> list of rows, one per round
    for doc in docs:
        for r in doc["rows"]:
            if r.get("error") is None:
                per.setdefault((r["case"], r["size"], r["backend"]), []).append(r)
    med = statistics.median
    lines = [f"`{docs[0]['command']}`, {len(docs)} rounds", "",
             "Load before each round (`uptime`):", ""]
    lines += [f"- round {i}: {d.get('uptime_before', d['machine'].get('loadavg_start'))}; "
              f"load at the end {d['machine'].get('loadavg_end')}" for i, d in enumerate(docs, 1)]
    lines += ["", "| case | N | backend | median ms | IQR ms | first call ms | rounds |",
              "|---|---|---|---:|---:|---:|---:|"]
    for (case, size, backend), rs in per.items():
        lines.append(f"| {case} | {size} | {backend} | {_fmt(med(r['median_ms'] for r in rs))} | "
                     f"{_fmt(med(r['iqr_ms'] for r in rs))} | "
                     f"{_fmt(med(r['first_call_ms'] for r in rs))} | {len(rs)} |")
    lines += ["", "Same-round time ratios, gradflow / peer: median over rounds [min - max]", "",
              "| case | N | gradflow | peer | ratio | range |", "|---|---|---|---|---:|---|"]
    impl = {r["backend"]: r["impl"] for d in docs for r in d["rows"]}
    cases = list(dict.fromkeys((c, s) for c, s, _ in per))
    for case, size in cases:
        backends = [b for c, s, b in per if (c, s) == (case, size)]
        for g in (b for b in backends if impl.get(b) in MINE):
            for p in (b for b in backends if impl.get(b) not in MINE):
                ratios = []
                for doc in docs:
                    ms = {r["backend"]: r["median_ms"] for r in doc["rows"]
                          if r["case"] == case and r["size"] == size and r.get("error") is None}
                    if g in ms and p in ms:
                        ratios.append(ms[g] / ms[p])
                if ratios:
                    lines.append(f"| {case} | {size} | {g} | {p} | {med(ratios):.2f}x | "
                                 f"{min(ratios):.2f} - {max(ratios):.2f} |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    return text


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", required=True, help="folder for roundK.json and summary.md")
    p.add_argument("--max-load", type=float, default=1.0,
                   help="start each round when the 1-min load is below this")
    p.add_argument("--max-wait", type=float, default=300,
                   help="seconds to wait at most for a quiet machine before each round")
    p.add_argument("--summarize", action="store_true", help="only summarize the rounds in --out")
    args = p.parse_args(argv)
    if not args.summarize:
        run_rounds(args.rounds, args.out, extra, args.max_load, args.max_wait)
    print(summarize(args.out), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
