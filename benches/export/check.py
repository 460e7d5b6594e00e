#!/usr/bin/env python3
"""Checks an exported run against `ssvae predict`.

    python3 check.py --run RUN --onnx ONNX_DIR [--torch TORCH_DIR] --data DATA [--ssvae BIN]

Runs `ssvae predict --run RUN --data DATA` (its CSV prints f32 probabilities with Rust's
shortest round-trip formatting, so they are exact) and `ssvae export --inputs DATA` (the raw
samples as the exported model takes them, read as predict reads them), then feeds those raw
samples to encoder.onnx under onnxruntime (and to the PyTorch module) and reports the largest
absolute difference of the class probabilities and of the latent means (predict's z columns;
for recurrent models the mean over steps of the per-step mu) against predict, matched by id.
For tables it also checks the raw samples against the CSV's feature columns parsed here.
Exits 1 when a probability differs by more than --tol (default 1e-5).
Needs numpy and onnxruntime (torch for --torch).
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--onnx", required=True, help="folder written by ssvae export --to onnx")
    ap.add_argument("--torch", help="folder written by ssvae export --to torch")
    ap.add_argument("--data", required=True)
    ap.add_argument("--ssvae", default="ssvae")
    ap.add_argument("--tol", type=float, default=1e-5)
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="ssvae-check-")
    pred_csv = os.path.join(tmp, "predictions.csv")
    subprocess.run([a.ssvae, "predict", "--run", a.run, "--data", a.data, "--out", pred_csv, "--backend", "cpu"], check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    inp_dir = os.path.join(tmp, "inputs")
    subprocess.run([a.ssvae, "export", "--run", a.run, "--to", "onnx", "--out", inp_dir, "--inputs", a.data], check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    x = np.load(os.path.join(inp_dir, "inputs.npy"))
    ids = open(os.path.join(inp_dir, "inputs_ids.txt")).read().splitlines()

    with open(pred_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    by_id = {r["id"]: r for r in rows}
    head = list(rows[0].keys())
    pcols = [c for c in head if c.startswith("p_")]
    zcols = [c for c in head if c[:1] == "z" and c[1:].isdigit()]
    order = [by_id[i] for i in ids]
    p_ref = np.array([[float(r[c]) for c in pcols] for r in order], dtype=np.float64) if pcols else None
    z_ref = np.array([[float(r[c]) for c in zcols] for r in order], dtype=np.float64) if zcols else None

    import onnxruntime as ort

    sess = ort.InferenceSession(os.path.join(a.onnx, "encoder.onnx"), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    model = json.loads(meta["ssvae.model"])
    print(f"{model['family']} {model['kind']}: {x.shape[0]} samples of {list(x.shape[1:])}, classes {len(pcols)}, latent {len(zcols)}")

    feats = meta.get("ssvae.feature_names")
    if feats and a.data.endswith(".csv") and x.ndim == 2:
        names = json.loads(feats)
        with open(a.data, newline="") as f:
            t = {r.get("id", str(k)): r for k, r in enumerate(csv.DictReader(f))}
        raw = np.array([[np.float32(t[i][n]) for n in names] for i in ids], dtype=np.float32)
        print(f"  raw table rows parsed here vs ssvae's reading: max |diff| {np.abs(raw - x).max():.3g}")
        x = raw

    outs = {o.name: v for o, v in zip(sess.get_outputs(), sess.run(None, {"x": x}))}
    worst = 0.0

    def report(what, got):
        nonlocal worst
        if "probs" in got and p_ref is not None:
            d = np.abs(got["probs"].astype(np.float64) - p_ref).max()
            worst = max(worst, d)
            print(f"  {what}: probs max |diff| vs predict {d:.3g}")
        if "mu" in got and z_ref is not None:
            mu = got["mu"].astype(np.float64)
            if mu.ndim == 3:
                mu = mu.mean(axis=1)
            print(f"  {what}: mu (z columns) max |diff| vs predict {np.abs(mu - z_ref).max():.3g}")

    report("onnxruntime", outs)
    if os.path.exists(os.path.join(a.onnx, "decoder.onnx")):
        dec = ort.InferenceSession(os.path.join(a.onnx, "decoder.onnx"), providers=["CPUExecutionProvider"])
        feed = {"z": outs["mu"]}
        if any(i.name == "pi" for i in dec.get_inputs()):
            pi = outs["probs"]
            if outs["mu"].ndim == 3:
                pi = np.repeat(pi[:, None, :], outs["mu"].shape[1], axis=1)
            feed["pi"] = pi.astype(np.float32)
        dout = {o.name: v for o, v in zip(dec.get_outputs(), dec.run(None, feed))}
        shapes = {k: list(v.shape) for k, v in dout.items()}
        print(f"  onnxruntime decoder: {shapes}")
    if a.torch:
        import torch

        sys.path.insert(0, a.torch)
        import ssvae_model

        m = ssvae_model.load(a.torch)
        probs, mu, logvar = m(torch.from_numpy(x))
        got = {k: v.numpy() for k, v in (("probs", probs), ("mu", mu), ("logvar", logvar)) if v is not None}
        report("torch", got)
        for k in got:
            if k in outs:
                print(f"  torch vs onnxruntime {k}: max |diff| {np.abs(got[k] - outs[k]).max():.3g}")
        if mu is not None:
            pi = probs
            if pi is not None and mu.dim() == 3:
                pi = pi[:, None, :].expand(-1, mu.shape[1], -1)
            mean, var = m.decode(mu, pi if m.config["decoder_takes_pi"] else None)
            if os.path.exists(os.path.join(a.onnx, "decoder.onnx")):
                print(f"  torch vs onnxruntime decoder mean: max |diff| {np.abs(mean.numpy() - dout['mean']).max():.3g}")
    ok = worst <= a.tol
    print(f"  {'OK' if ok else 'FAIL'}: largest probability difference {worst:.3g} (tolerance {a.tol:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
