#!/usr/bin/env python3
"""The markdown table of a run.sh result (raw.jsonl): per case and round, ssvae's samples/s next to
each Burn backend's, the ratio ssvae / Burn, peak RSS of each process and the load average
recorded before each command.

    python3 benches/burn/table.py benches/burn/results/<date>/raw.jsonl
"""
import json
import sys


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    print("| case | batch | round | ssvae samples/s (ms/step) | Burn backend | Burn samples/s (ms/step) | ssvae / Burn | peak RSS MiB ssvae / Burn | load before ssvae / Burn |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|")
    keys = []
    for r in rows:
        k = (r["label"], r["round"])
        if k not in keys:
            keys.append(k)
    for label, rnd in keys:
        group = [r for r in rows if r["label"] == label and r["round"] == rnd]
        s = next((r for r in group if r["implementation"] == "ssvae"), None)
        for b in (r for r in group if r["implementation"] == "burn"):
            ratio = f"{s['samples_per_s'] / b['samples_per_s']:.2f}x" if s else "-"
            sv = f"{s['samples_per_s']:.0f} ({s['ms_per_step']:.1f})" if s else "-"
            print(
                f"| {label} | {b['batch']} | {rnd} | {sv} | {b['backend']} | {b['samples_per_s']:.0f} ({b['ms_per_step']:.1f}) | {ratio} "
                f"| {s['max_rss_mib']:.0f} / {b['max_rss_mib']:.0f} | {s['load1_before']:.2f} / {b['load1_before']:.2f} |"
                if s else
                f"| {label} | {b['batch']} | {rnd} | - | {b['backend']} | {b['samples_per_s']:.0f} ({b['ms_per_step']:.1f}) | - | - / {b['max_rss_mib']:.0f} | - / {b['load1_before']:.2f} |"
            )
    print()
    adapters = sorted({(r["implementation"], r.get("backend"), r["adapter"]) for r in rows})
    for impl, backend, adapter in adapters:
        print(f"- {impl} {backend}: {adapter}")


if __name__ == "__main__":
    main()
