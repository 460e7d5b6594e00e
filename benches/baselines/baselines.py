#!/usr/bin/env python3
"""The simple baselines a practitioner tries first, next to ssvae, on the same labels.

For each seed: a stratified train/test split (or the dataset's own), N labeled samples per
class drawn from the training split (the rest unlabeled), then
  - LogisticRegression on the labeled samples (C chosen by k-fold CV over the labeled samples),
  - LabelSpreading on all training samples, kNN and RBF kernels (n_neighbors / gamma and alpha
    chosen by k-fold CV over the labeled samples: a fold's labels hidden, accuracy on them),
  - ssvae SS and ES dense models (`ssvae train --data train.csv --test-data test.csv`), trained
    on exactly the same labeled rows: the CSV's label column holds only those.
Settings are chosen on the labeled training samples only; the test split is read once per
method. Prints one markdown table of test accuracy, mean +- std over the seeds.

Data sets: `wine` and `breast-cancer` (they come with scikit-learn), `mnist`,
`fashion-mnist` (gzipped IDX under $SSVAE_DATA or ../shared/data), or `csv:PATH` (a table with
a `label` column; all labeled). Features are standardised with training statistics (pixels /
255 for images).

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install scikit-learn numpy
    /tmp/venv/bin/python benches/baselines/baselines.py --dataset wine --labels-per-class 5 \
        --seeds 0 1 2 3 4 --ssvae target/release/ssvae
"""

import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.semi_supervised import LabelSpreading


def read_idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw[4 + 4 * ndim :], dtype=np.uint8).reshape(dims)


def data_dir():
    for d in [os.environ.get("SSVAE_DATA"), os.path.join(os.path.dirname(__file__), "../../../shared/data")]:
        if d and os.path.isdir(d):
            return d
    sys.exit("no data folder: set SSVAE_DATA")


def load(name, seed, max_train):
    """(x_train, y_train, x_test, y_test, class names); x as float64, standardised."""
    if name in ("wine", "breast-cancer"):
        from sklearn import datasets

        d = datasets.load_wine() if name == "wine" else datasets.load_breast_cancer()
        xtr, xte, ytr, yte = train_test_split(d.data, d.target, test_size=0.3, stratify=d.target, random_state=seed)
        names = [str(n) for n in d.target_names]
    elif name in ("mnist", "fashion-mnist"):
        root = os.path.join(data_dir(), name)
        f = lambda s: os.path.join(root, s + ".gz")
        xtr = read_idx(f("train-images-idx3-ubyte")).reshape(-1, 784) / 255.0
        ytr = read_idx(f("train-labels-idx1-ubyte")).astype(int)
        xte = read_idx(f("t10k-images-idx3-ubyte")).reshape(-1, 784) / 255.0
        yte = read_idx(f("t10k-labels-idx1-ubyte")).astype(int)
        names = [str(i) for i in range(10)]
        if max_train:
            xtr, ytr = xtr[:max_train], ytr[:max_train]
        return xtr, ytr, xte, yte, names
    elif name.startswith("csv:"):
        import csv

        with open(name[4:]) as fh:
            rows = list(csv.reader(fh))
        head, rows = rows[0], rows[1:]
        li = head.index("label")
        labels = [r[li] for r in rows]
        names = sorted(set(labels))
        y = np.array([names.index(l) for l in labels])
        x = np.array([[float(v) for j, v in enumerate(r) if j != li] for r in rows])
        xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, stratify=y, random_state=seed)
    else:
        sys.exit(f"unknown dataset {name}")
    mean, std = xtr.mean(0), xtr.std(0)
    std[std == 0] = 1.0
    return (xtr - mean) / std, ytr, (xte - mean) / std, yte, names


def pick_labeled(y, per_class, seed):
    rng = np.random.default_rng(seed)
    idx = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        idx.extend(rng.choice(members, size=min(per_class, len(members)), replace=False))
    return np.sort(np.array(idx))


def cv_folds(y_lab, seed):
    k = max(2, min(5, np.bincount(y_lab).min()))
    return StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y_lab)), y_lab)


def tune_logreg(x_lab, y_lab, seed):
    best = (-1.0, None)
    for c in [0.01, 0.1, 1.0, 10.0, 100.0]:
        accs = []
        for tr, va in cv_folds(y_lab, seed):
            m = LogisticRegression(C=c, max_iter=2000).fit(x_lab[tr], y_lab[tr])
            accs.append((m.predict(x_lab[va]) == y_lab[va]).mean())
        best = max(best, (float(np.mean(accs)), c), key=lambda t: t[0])
    return LogisticRegression(C=best[1], max_iter=2000).fit(x_lab, y_lab), best


def tune_spreading(x, y_semi, lab, kernel, seed):
    grid = (
        [dict(kernel="knn", n_neighbors=k, alpha=a) for k in [3, 7, 15] for a in [0.2, 0.5, 0.8]]
        if kernel == "knn"
        else [dict(kernel="rbf", gamma=g / x.shape[1], alpha=a) for g in [0.1, 0.3, 1.0, 3.0] for a in [0.2, 0.5, 0.8]]
    )
    y_lab = y_semi[lab]
    best = (-1.0, None)
    for params in grid:
        accs = []
        for tr, va in cv_folds(y_lab, seed):
            y = y_semi.copy()
            y[lab[va]] = -1
            m = LabelSpreading(max_iter=100, **params).fit(x, y)
            accs.append((m.transduction_[lab[va]] == y_lab[va]).mean())
        best = max(best, (float(np.mean(accs)), params), key=lambda t: t[0])
    return LabelSpreading(max_iter=100, **best[1]).fit(x, y_semi), best


def write_csv(path, x, labels):
    with open(path, "w") as f:
        f.write(",".join([f"f{j}" for j in range(x.shape[1])] + ["label"]) + "\n")
        for row, l in zip(x, labels):
            f.write(",".join(f"{v:.7g}" for v in row) + "," + l + "\n")


def run_ssvae(binary, model, xtr, ytr, lab, xte, yte, names, seed, extra):
    with tempfile.TemporaryDirectory() as d:
        labels = [""] * len(ytr)
        for i in lab:
            labels[i] = names[ytr[i]]
        write_csv(os.path.join(d, "train.csv"), xtr, labels)
        write_csv(os.path.join(d, "test.csv"), xte, [names[v] for v in yte])
        cmd = [binary, "train", "--model", model, "--data", f"{d}/train.csv", "--test-data", f"{d}/test.csv",
               "--seed", str(seed), "--backend", "cpu", "--quiet", "--out", f"{d}/run"] + extra
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"ssvae failed: {' '.join(cmd)}\n{out.stderr}")
        return json.loads(out.stdout.strip().splitlines()[-1])["accuracy"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True)
    p.add_argument("--labels-per-class", type=int, default=10)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--max-train", type=int, default=0, help="MNIST-like sets: use the first N training images")
    p.add_argument("--max-rbf", type=int, default=5000, help="LabelSpreading RBF builds a dense n x n kernel: skip it above this n")
    p.add_argument("--ssvae", help="the ssvae binary: also train SS and ES dense models on the same labels")
    p.add_argument("--ssvae-args", default="", help="extra flags for both ssvae runs, e.g. '--epochs 20'")
    a = p.parse_args()
    results = {}
    for seed in a.seeds:
        xtr, ytr, xte, yte, names = load(a.dataset, seed, a.max_train)
        lab = pick_labeled(ytr, a.labels_per_class, seed)
        y_semi = np.full(len(ytr), -1)
        y_semi[lab] = ytr[lab]
        row = {}
        m, _ = tune_logreg(xtr[lab], ytr[lab], seed)
        row["logistic regression (labeled only)"] = (m.predict(xte) == yte).mean()
        m, _ = tune_spreading(xtr, y_semi, lab, "knn", seed)
        row["LabelSpreading kNN"] = (m.predict(xte) == yte).mean()
        if len(ytr) <= a.max_rbf:
            m, _ = tune_spreading(xtr, y_semi, lab, "rbf", seed)
            row["LabelSpreading RBF"] = (m.predict(xte) == yte).mean()
        if a.ssvae:
            extra = a.ssvae_args.split()
            row["ssvae ss-dense"] = run_ssvae(a.ssvae, "ss-dense", xtr, ytr, lab, xte, yte, names, seed, extra)
            row["ssvae es-dense"] = run_ssvae(a.ssvae, "es-dense", xtr, ytr, lab, xte, yte, names, seed, extra)
        for k, v in row.items():
            results.setdefault(k, []).append(v)
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items()), file=sys.stderr)
    print(f"\n{a.dataset}, {a.labels_per_class} labels per class, seeds {a.seeds}: test accuracy\n")
    print("| method | accuracy (mean ± std) |\n|---|---|")
    for k, v in results.items():
        print(f"| {k} | {np.mean(v):.3f} ± {np.std(v):.3f} |")


if __name__ == "__main__":
    main()
