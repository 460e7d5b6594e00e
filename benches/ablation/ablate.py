#!/usr/bin/env python3
"""Ablation of the training levers (issue 16), on validation splits only.

Each configuration is a name and extra `ssvae train` flags; every configuration runs for every
seed with the same base flags (model, dataset, labels, epochs) and `--validation N`, which holds
out the last N training samples and evaluates on them after every epoch instead of the test
split: the test set is never read here. Per configuration it prints the validation accuracy of
the best epoch, of the last epoch and of the run's model (the epoch that model selection kept
with `--validation-labels`, else the last) (mean +- std over seeds) and the mean best epoch, as one
markdown table, and writes every run folder under --out.

    python3 benches/ablation/ablate.py --ssvae target/release/ssvae --out /tmp/abl \\
        --base "--model ss-dense --dataset mnist --labels 100 --epochs 5 --validation 10000" \\
        --seeds 0 1 --config paper= --config entropy10="--entropy-weight 10"
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time


def stats(xs):
    if not xs:
        return "-"
    m = statistics.mean(xs)
    s = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{m:.3f} ± {s:.3f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ssvae", default="target/release/ssvae")
    ap.add_argument("--out", required=True)
    ap.add_argument("--base", required=True, help="flags every run gets")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--config", action="append", required=True, help="name=extra flags")
    ap.add_argument("--backend", default="cpu")
    a = ap.parse_args()
    rows = []
    for c in a.config:
        name, _, extra = c.partition("=")
        best, last, kept, epochs, secs = [], [], [], [], []
        for seed in a.seeds:
            out = os.path.join(a.out, f"{name}-s{seed}")
            metrics = os.path.join(out, "metrics.jsonl")
            if not os.path.exists(os.path.join(out, "summary.json")):
                cmd = [a.ssvae, "train", "--backend", a.backend, "--seed", str(seed), "--out", out]
                cmd += shlex.split(a.base) + shlex.split(extra)
                print("$", " ".join(shlex.quote(x) for x in cmd), file=sys.stderr, flush=True)
                t = time.time()
                r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                if r.returncode != 0:
                    sys.exit(f"{name} seed {seed} failed:\n{r.stderr[-2000:]}")
                secs.append(time.time() - t)
            acc = [json.loads(l)["test_accuracy"] for l in open(metrics) if l.strip()]
            b = max(range(len(acc)), key=lambda i: acc[i])
            best.append(acc[b])
            last.append(acc[-1])
            epochs.append(b + 1)
            # the run's model: the epoch model selection kept (--validation-labels), else the last
            summary = json.load(open(os.path.join(out, "summary.json")))
            kept.append(summary["accuracy"])
            chosen = f", kept epoch {summary['selected_epoch']}" if summary.get("selected_epoch") else ""
            print(f"{name} seed {seed}: per-epoch validation accuracy {[round(x, 3) for x in acc]}{chosen}", file=sys.stderr, flush=True)
        rows.append((name, extra, stats(best), stats(last), stats(kept), statistics.mean(epochs)))
    print(f"\nbase: `{a.base}`, seeds {a.seeds}, validation accuracy (held-out training samples)\n")
    print("| configuration | extra flags | best epoch | last epoch | run's model | mean best epoch |")
    print("|---|---|---|---|---|---|")
    for name, extra, b, l, k, e in rows:
        print(f"| {name} | `{extra or '(none)'}` | {b} | {l} | {k} | {e:.1f} |")


if __name__ == "__main__":
    main()
