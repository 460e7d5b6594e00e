#!/usr/bin/env python3
"""The markdown table of a run.sh result (raw.jsonl): per case and round, ssvae's samples/s (on
lavapipe with its built-in GEMM tiles and with a tuning file) next to each Burn backend's, the
ratios ssvae / Burn, the peak RSS of each process (/usr/bin/time) and the 1-minute load average
recorded before each command.

    python3 benches/burn/table.py benches/burn/results/<date>/raw.jsonl
"""
import json
import sys


def fmt(r):
    return f"{r['samples_per_s']:.1f} ({r['ms_per_step']:.0f})" if r["samples_per_s"] < 100 else f"{r['samples_per_s']:.0f} ({r['ms_per_step']:.1f})"


def dev(r):
    """ssvae: the bytes its step allocates (parameters, optimizer state, planned temporaries, inputs,
    resident data); Burn: its wgpu memory pool's reserved bytes (none on the CPU backends)."""
    v = (r or {}).get("device_bytes")
    v = v / 1048576 if v is not None else (r or {}).get("pool_reserved_mib")
    return f"{v:.0f}" if v is not None else "-"


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    print("| case | batch | round | ssvae samples/s (ms/step) | ssvae tuned | Burn backend | Burn samples/s (ms/step) "
          "| ssvae / Burn | tuned / Burn | peak RSS MiB ssvae / Burn | device MiB ssvae / Burn pool | load before ssvae / Burn |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    keys = []
    for r in rows:
        if (r["label"], r["round"]) not in keys:
            keys.append((r["label"], r["round"]))
    for label, rnd in keys:
        group = [r for r in rows if r["label"] == label and r["round"] == rnd]
        s = next((r for r in group if r["implementation"] == "ssvae" and r.get("variant") != "tuned"), None)
        st = next((r for r in group if r["implementation"] == "ssvae" and r.get("variant") == "tuned"), None)
        for b in (r for r in group if r["implementation"] == "burn"):
            ratio = lambda x: f"{x['samples_per_s'] / b['samples_per_s']:.2f}x" if x else "-"
            note = f" (warm-up {b['variant'].split()[-1]})" if str(b.get("variant", "")).startswith("warmup") else ""
            print(
                f"| {label} | {b['batch']} | {rnd} | {fmt(s) if s else '-'} | {fmt(st) if st else '-'} | {b['backend']}{note} | {fmt(b)} "
                f"| {ratio(s)} | {ratio(st)} | {s['max_rss_mib'] if s else float('nan'):.0f} / {b['max_rss_mib']:.0f} "
                f"| {dev(s)} / {dev(b)} "
                f"| {s['load1_before'] if s else float('nan'):.2f} / {b['load1_before']:.2f} |"
            )
    print()
    for impl, backend, adapter in sorted({(r["implementation"], r.get("backend"), r["adapter"]) for r in rows}):
        print(f"- {impl} {backend}: {adapter}")


if __name__ == "__main__":
    main()
