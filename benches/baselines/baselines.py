#!/usr/bin/env python3
"""The simple baselines a practitioner tries first, next to ssvae, on the same labels.

For each seed: a stratified train/test split (or the dataset's own), N labeled samples per
class drawn from the training split (`--labels-per-class N`), or N in total split over the
classes as ssvae's `--labels N` splits them (`--labels N`: N // k each, one more for each of
the first N % k classes; 100 on UCI-HAR's 6 classes is 17,17,17,17,16,16), the rest
unlabeled, then
  - LogisticRegression on the labeled samples (C chosen by k-fold CV over the labeled samples),
  - LabelSpreading on all training samples, kNN and RBF kernels (n_neighbors / gamma and alpha
    chosen by k-fold CV over the labeled samples: a fold's labels hidden, accuracy on them;
    the kNN lists are searched once per data set and shared by the 46 fits, same results as
    sklearn's own search, which `--no-knn-cache` restores),
  - ssvae SS and ES dense models (`ssvae train --data train.csv --test-data test.csv`), trained
    on exactly the same labeled rows: the CSV's label column holds only those.
Settings are chosen on the labeled training samples only; the test split is read once per
method. `--methods` picks which of the sklearn baselines run (default: all). Prints the chosen
settings and the time per seed and method on stderr, then one markdown table of test accuracy,
mean +- std over the seeds.

Data sets: `wine` and `breast-cancer` (they come with scikit-learn), `mnist`,
`fashion-mnist` (gzipped IDX under $SSVAE_DATA or ../shared/data), `uci-har`, or `csv:PATH` (a
table with a `label` column; all labeled). Features are standardised with training statistics
(pixels / 255 for images).

`uci-har` reads the raw inertial signals of the official UCI HAR Dataset folder
($SSVAE_DATA/uci-har, or $SSVAE_DATA itself / its `UCI HAR Dataset/`), as ssvae's loader
(src/data/har.rs) does: `{train,test}/Inertial Signals/<signal>_{train,test}.txt` or `.txt.gz`
(the plain file when both exist), 128 steps per window, labels 1..6 in `y_*.txt` (classes 0..5),
the official train/test split (7352 / 2947 windows). The channels are the paper's six, body_acc
and body_gyro x, y, z (ssvae's default; `--har-channels all` for all nine, or a list of names);
a window is flattened step-major (step 0's channels, then step 1's, ...) to 128 x C features.
`--har-scaling feature` (default) standardises each of those features; `channel` standardises per
channel over all steps and windows, as ssvae does for its series models.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install scikit-learn numpy
    /tmp/venv/bin/python benches/baselines/baselines.py --dataset wine --labels-per-class 5 \
        --seeds 0 1 2 3 4 --ssvae target/release/ssvae
    SSVAE_DATA=../shared/data /tmp/venv/bin/python benches/baselines/baselines.py \
        --dataset uci-har --labels 100 --max-rbf 10000 --seeds 0 1 2 3 4
"""

import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from scipy.sparse import csr_matrix
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.neighbors import NearestNeighbors
from sklearn.semi_supervised import LabelSpreading


def read_idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw[4 + 4 * ndim :], dtype=np.uint8).reshape(dims)


HAR_CHANNELS = ["body_acc_x", "body_acc_y", "body_acc_z", "body_gyro_x", "body_gyro_y", "body_gyro_z",
                "total_acc_x", "total_acc_y", "total_acc_z"]
HAR_DEFAULT_CHANNELS = HAR_CHANNELS[:6]  # the paper's six, ssvae's default
HAR_CLASSES = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]
HAR_STEPS = 128


def read_text(path):
    """`path` (`.txt`) or `path + '.gz'`, the plain file when both exist; gzip by magic bytes."""
    for p in (path, path + ".gz"):
        if os.path.isfile(p):
            with open(p, "rb") as f:
                raw = f.read()
            return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    sys.exit(f"missing: neither {path} nor {path}.gz exists")


def har_root():
    d = data_dir()
    for r in [os.path.join(d, "uci-har"), os.path.join(d, "UCI HAR Dataset"), d]:
        if os.path.isdir(os.path.join(r, "train")):
            return r
    sys.exit(f"UCI-HAR not found under {d} (expected uci-har/ holding train/ and test/)")


def load_har_split(root, split, channels):
    """(windows, steps * channels) step-major float64, labels 0..5."""
    y = np.array(read_text(os.path.join(root, split, f"y_{split}.txt")).split(), dtype=int)
    if y.size == 0 or y.min() < 1 or y.max() > len(HAR_CLASSES):
        sys.exit(f"{split}: labels must be 1..{len(HAR_CLASSES)}")
    n = len(y)
    x = np.empty((n, HAR_STEPS, len(channels)))
    for k, c in enumerate(channels):
        path = os.path.join(root, split, "Inertial Signals", f"{c}_{split}.txt")
        lines = read_text(path).splitlines()
        if len(lines) != n:
            sys.exit(f"{path}: {len(lines)} windows but y_{split}.txt has {n} labels")
        v = np.array(b" ".join(lines).split(), dtype=float)
        if v.size != n * HAR_STEPS or not np.isfinite(v).all():
            sys.exit(f"{path}: expected {n} lines of {HAR_STEPS} finite values")
        x[:, :, k] = v.reshape(n, HAR_STEPS)
    return x.reshape(n, -1), y - 1


def data_dir():
    for d in [os.environ.get("SSVAE_DATA"), os.path.join(os.path.dirname(__file__), "../../../shared/data")]:
        if d and os.path.isdir(d):
            return d
    sys.exit("no data folder: set SSVAE_DATA")


def load(name, seed, max_train, har_channels=HAR_DEFAULT_CHANNELS, har_scaling="feature"):
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
    elif name == "uci-har":
        root = har_root()
        xtr, ytr = load_har_split(root, "train", har_channels)
        xte, yte = load_har_split(root, "test", har_channels)
        names = HAR_CLASSES
        if max_train:
            xtr, ytr = xtr[:max_train], ytr[:max_train]
        if har_scaling == "channel":  # ssvae's series standardizer: one mean / std per channel
            c = len(har_channels)
            flat = xtr.reshape(-1, c)
            mean, std = flat.mean(0), flat.std(0)
            std[std == 0] = 1.0
            mean, std = np.tile(mean, HAR_STEPS), np.tile(std, HAR_STEPS)
            return (xtr - mean) / std, ytr, (xte - mean) / std, yte, names
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


def pick_labeled(y, per_class, seed, total=None):
    """`per_class` of every class, or with `total` ssvae's class-balanced quota (src/data/subset.rs
    `label_subset`): total // k of each class, one more for each of the first total % k classes
    (in class order). Seeded by numpy, so the counts match ssvae's, not the indices."""
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    k = len(classes)
    idx = []
    for i, c in enumerate(classes):
        members = np.flatnonzero(y == c)
        q = per_class if total is None else total // k + int(i < total % k)
        if total is not None and q > len(members):
            sys.exit(f"--labels {total} needs {q} labeled samples of class {c}, the training set has {len(members)}")
        idx.extend(rng.choice(members, size=min(q, len(members)), replace=False))
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


class CachedKnnSpreading(LabelSpreading):
    """LabelSpreading whose kNN graph comes from neighbour lists computed once for the training
    samples (`knn_cache`), instead of a new NearestNeighbors search in every fit: the tuning
    fits 46 models on the same samples (9 settings x 5 folds + the final one), and on 60000
    images that search is nearly all of the time. Same graph as sklearn's `kneighbors_graph`
    (the first n_neighbors of the sorted lists, the sample itself included); predictions on new
    samples search as sklearn does."""

    def _get_kernel(self, X, y=None):
        nn, ind = self.knn_cache
        k = self.n_neighbors
        if y is None:
            n = ind.shape[0]
            assert X.shape[0] == n and k <= ind.shape[1]
            return csr_matrix((np.ones(n * k), ind[:, :k].ravel(), np.arange(0, n * k + 1, k)), shape=(n, n))
        return nn.kneighbors(y, k, return_distance=False)


def knn_cache(x, k_max):
    nn = NearestNeighbors(n_neighbors=k_max).fit(x)
    return nn, nn.kneighbors(x, k_max, return_distance=False)


def tune_spreading(x, y_semi, lab, kernel, seed, cache_knn=True):
    ks = [3, 7, 15]
    grid = (
        [dict(kernel="knn", n_neighbors=k, alpha=a) for k in ks for a in [0.2, 0.5, 0.8]]
        if kernel == "knn"
        else [dict(kernel="rbf", gamma=g / x.shape[1], alpha=a) for g in [0.1, 0.3, 1.0, 3.0] for a in [0.2, 0.5, 0.8]]
    )
    cache = knn_cache(x, max(ks)) if kernel == "knn" and cache_knn else None

    def model(params):
        if cache is None:
            return LabelSpreading(max_iter=100, **params)
        m = CachedKnnSpreading(max_iter=100, **params)
        m.knn_cache = cache
        return m

    y_lab = y_semi[lab]
    best = (-1.0, None)
    for params in grid:
        accs = []
        for tr, va in cv_folds(y_lab, seed):
            y = y_semi.copy()
            y[lab[va]] = -1
            m = model(params).fit(x, y)
            accs.append((m.transduction_[lab[va]] == y_lab[va]).mean())
        best = max(best, (float(np.mean(accs)), params), key=lambda t: t[0])
    return model(best[1]).fit(x, y_semi), best


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
    p.add_argument("--labels", type=int, help="N labels in total, split over the classes as ssvae's --labels N (overrides --labels-per-class)")
    p.add_argument("--methods", nargs="+", choices=["logreg", "knn", "rbf"], default=["logreg", "knn", "rbf"],
                   help="which sklearn baselines to run (rbf also needs n <= --max-rbf)")
    p.add_argument("--no-knn-cache", action="store_true",
                   help="LabelSpreading kNN: let sklearn search the neighbours in every fit (slow; same results)")
    p.add_argument("--har-channels", nargs="+", default=HAR_DEFAULT_CHANNELS,
                   help="uci-har: signal names, or 'all' for the nine (default: the paper's six)")
    p.add_argument("--har-scaling", choices=["feature", "channel"], default="feature",
                   help="uci-har: standardise each step x channel feature, or per channel as ssvae does")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--validation", type=float, default=0.0, metavar="F",
                   help="choose settings without the test split: hold out a stratified fraction F of the "
                        "training split and report on it (the test split is not read)")
    p.add_argument("--max-train", type=int, default=0, help="MNIST-like sets and uci-har: use the first N training samples")
    p.add_argument("--max-rbf", type=int, default=5000, help="LabelSpreading RBF builds a dense n x n kernel: skip it above this n")
    p.add_argument("--ssvae", help="the ssvae binary: also train SS and ES dense models on the same labels")
    p.add_argument("--ssvae-args", default="", help="extra flags for both ssvae runs, e.g. '--epochs 20'")
    p.add_argument("--ss-args", default="", help="extra flags for the SS run only, e.g. '--var-floor 0.01'")
    p.add_argument("--ssvae-models", nargs="+", choices=["ss-dense", "es-dense"], default=["ss-dense", "es-dense"],
                   help="which ssvae models to train (ES is unaffected by SS-only flags: skip it when comparing those)")
    a = p.parse_args()
    har_channels = HAR_CHANNELS if a.har_channels == ["all"] else [c.lower() for c in a.har_channels]
    if a.dataset == "uci-har" and (len(set(har_channels)) != len(har_channels) or not set(har_channels) <= set(HAR_CHANNELS)):
        sys.exit(f"--har-channels: distinct names from {', '.join(HAR_CHANNELS)}, or 'all'")
    results = {}
    for seed in a.seeds:
        xtr, ytr, xte, yte, names = load(a.dataset, seed, a.max_train, har_channels, a.har_scaling)
        if a.validation > 0:
            xtr, xte, ytr, yte = train_test_split(xtr, ytr, test_size=a.validation, stratify=ytr, random_state=1000 + seed)
        lab = pick_labeled(ytr, a.labels_per_class, seed, a.labels)
        print(f"seed {seed}: {xtr.shape[0]} train x {xtr.shape[1]} features, {len(yte)} test; "
              f"labeled per class {np.bincount(ytr[lab]).tolist()}", file=sys.stderr)
        y_semi = np.full(len(ytr), -1)
        y_semi[lab] = ytr[lab]
        row = {}

        def timed(key, fit):
            t = time.time()
            m, best = fit()
            row[key] = (m.predict(xte) == yte).mean()
            print(f"  {key}: test {row[key]:.4f}, chosen {best[1]} (CV acc {best[0]:.3f}), {time.time() - t:.0f} s",
                  file=sys.stderr, flush=True)

        if "logreg" in a.methods:
            timed("logistic regression (labeled only)", lambda: tune_logreg(xtr[lab], ytr[lab], seed))
        if "knn" in a.methods:
            timed("LabelSpreading kNN", lambda: tune_spreading(xtr, y_semi, lab, "knn", seed, not a.no_knn_cache))
        if "rbf" in a.methods and len(ytr) <= a.max_rbf:
            timed("LabelSpreading RBF", lambda: tune_spreading(xtr, y_semi, lab, "rbf", seed))
        if a.ssvae:
            extra = a.ssvae_args.split()
            for model in a.ssvae_models:
                more = a.ss_args.split() if model == "ss-dense" else []
                row[f"ssvae {model}"] = run_ssvae(a.ssvae, model, xtr, ytr, lab, xte, yte, names, seed, extra + more)
        for k, v in row.items():
            results.setdefault(k, []).append(v)
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items()), file=sys.stderr)
    how = f"{a.labels} labels in total" if a.labels is not None else f"{a.labels_per_class} labels per class"
    split = f"validation ({a.validation:g} of the training split)" if a.validation > 0 else "test"
    print(f"\n{a.dataset}, {how}, seeds {a.seeds}: {split} accuracy\n")
    print("| method | accuracy (mean ± std) |\n|---|---|")
    for k, v in results.items():
        print(f"| {k} | {np.mean(v):.3f} ± {np.std(v):.3f} |")


if __name__ == "__main__":
    main()
