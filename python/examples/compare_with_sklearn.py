"""SSVAEClassifier next to LogisticRegression and LabelSpreading, on the same labels.

Two tables that come with scikit-learn: wine (178 samples, 13 features, 3 classes) and breast
cancer (569 samples, 30 features, 2 classes). Per seed: a stratified 70/30 train/test split,
5 labeled samples per class drawn from the training split, the rest of the training split
unlabeled (y = -1, scikit-learn's convention).

- LogisticRegression: the labeled samples only, C chosen by k-fold CV over them;
- LabelSpreading (kNN and RBF kernels): all training samples, its settings chosen by k-fold
  CV over the labeled samples (a fold's labels hidden, accuracy on them);
- SSVAEClassifier, kind "ss" (the paper's model) and "es" (encoder + classifier only): every
  default (10 epochs, the 1024-1024 encoder, a Gaussian decoder on standardised features).

Everything is fitted on the training split; the test split is predicted once per method. The
baselines get standardised features (training statistics); SSVAEClassifier standardises
internally. Prints a markdown table of test accuracy, mean +- std over the seeds.

    pip install ./python scikit-learn
    python python/examples/compare_with_sklearn.py [--seeds 0 1 2 3 4] [--backend cpu]
"""

import argparse
import time

import numpy as np
from sklearn import datasets
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import LabelSpreading

from ssvae import SSVAEClassifier

# %% the data and the labels every method gets


def split(name, seed, per_class):
    d = datasets.load_wine() if name == "wine" else datasets.load_breast_cancer()
    xtr, xte, ytr, yte = train_test_split(d.data, d.target, test_size=0.3, stratify=d.target, random_state=seed)
    rng = np.random.default_rng(seed)
    lab = np.sort(np.concatenate([rng.choice(np.flatnonzero(ytr == c), per_class, replace=False) for c in np.unique(ytr)]))
    y_semi = np.full(len(ytr), -1)
    y_semi[lab] = ytr[lab]
    return xtr, ytr, xte, yte, lab, y_semi


# %% baselines, tuned on the labeled training samples only


def folds(y_lab, seed):
    k = max(2, min(5, np.bincount(y_lab).min()))
    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y_lab)), y_lab))


def logistic(x, y_semi, lab, seed):
    def cv(c):
        return np.mean([LogisticRegression(C=c, max_iter=2000).fit(x[lab][tr], y_semi[lab][tr]).score(x[lab][va], y_semi[lab][va])
                        for tr, va in folds(y_semi[lab], seed)])

    best = max([0.01, 0.1, 1.0, 10.0, 100.0], key=cv)
    return LogisticRegression(C=best, max_iter=2000).fit(x[lab], y_semi[lab])


def spreading(x, y_semi, lab, kernel, seed):
    grid = ([dict(kernel="knn", n_neighbors=k, alpha=a) for k in (3, 7, 15) for a in (0.2, 0.5, 0.8)] if kernel == "knn" else
            [dict(kernel="rbf", gamma=g / x.shape[1], alpha=a) for g in (0.1, 0.3, 1.0, 3.0) for a in (0.2, 0.5, 0.8)])

    def cv(params):
        accs = []
        for tr, va in folds(y_semi[lab], seed):
            y = y_semi.copy()
            y[lab[va]] = -1
            m = LabelSpreading(max_iter=100, **params).fit(x, y)
            accs.append(np.mean(m.transduction_[lab[va]] == y_semi[lab[va]]))
        return np.mean(accs)

    return LabelSpreading(max_iter=100, **max(grid, key=cv)).fit(x, y_semi)


# %% the comparison


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--labels-per-class", type=int, default=5)
    p.add_argument("--backend", default="cpu", help="SSVAEClassifier's backend: cpu, auto, gpu, ...")
    a = p.parse_args()
    methods = ["logistic regression (labeled only)", "LabelSpreading kNN", "LabelSpreading RBF", "SSVAEClassifier ss", "SSVAEClassifier es"]
    names = {"wine": "wine", "breast_cancer": "breast cancer"}
    acc = {(m, d): [] for m in methods for d in names}
    seconds = {d: 0.0 for d in names}
    for d in names:
        for seed in a.seeds:
            xtr, ytr, xte, yte, lab, y_semi = split(d, seed, a.labels_per_class)
            scaler = StandardScaler().fit(xtr)
            s_tr, s_te = scaler.transform(xtr), scaler.transform(xte)
            acc[(methods[0], d)].append(logistic(s_tr, y_semi, lab, seed).score(s_te, yte))
            acc[(methods[1], d)].append(spreading(s_tr, y_semi, lab, "knn", seed).score(s_te, yte))
            acc[(methods[2], d)].append(spreading(s_tr, y_semi, lab, "rbf", seed).score(s_te, yte))
            for kind, m in (("ss", methods[3]), ("es", methods[4])):
                t = time.perf_counter()
                clf = SSVAEClassifier(kind=kind, backend=a.backend, random_state=seed, progress=False).fit(xtr, y_semi)
                acc[(m, d)].append(clf.score(xte, yte))
                seconds[d] += time.perf_counter() - t
    k = a.labels_per_class
    print(f"Test accuracy, mean ± std over seeds {' '.join(map(str, a.seeds))} ({k} labels per class, the rest of the training split unlabeled)\n")
    print("| method | " + " | ".join(f"{names[d]}, {k * len(np.unique(split(d, 0, k)[1]))} labels" for d in names) + " |")
    print("|---|" + "---|" * len(names))
    for m in methods:
        cells = [f"{np.mean(acc[(m, d)]):.3f} ± {np.std(acc[(m, d)]):.3f}" for d in names]
        print(f"| {m} | " + " | ".join(cells) + " |")
    print("\nSSVAEClassifier fit + score time: " + ", ".join(f"{names[d]} {seconds[d]:.1f} s" for d in names) + f" ({a.backend} backend)")


if __name__ == "__main__":
    main()
