"""Run folders shared with the CLI: a model fitted in Python opens in `ssvae eval`, `predict`
and `train --resume`; a CLI run opens in Python; both paths train the same model for a seed."""

import csv
import json
import subprocess

import numpy as np
import pytest

import ssvae
from conftest import blobs, fast, images


def run_cli(cli, *args):
    r = subprocess.run([cli, *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, f"ssvae {' '.join(map(str, args))} failed:\n{r.stderr}"
    return r


def read_predictions(path, classes):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    p = np.array([[float(r[f"p_{c}"]) for c in classes] for r in rows])
    s = np.array([float(r["score"]) for r in rows])
    return p, s, [r["predicted"] for r in rows]


def test_python_run_opens_in_cli_eval_predict_and_resume(cli, tmp_path):
    X, _, y_semi = blobs()
    clf = fast(random_state=2).fit(X, y_semi)
    run = clf.save(tmp_path / "run")
    out = run_cli(cli, "eval", "--run", run, "--backend", "cpu")
    assert "accuracy" in out.stdout + out.stderr
    np.save(tmp_path / "new.npy", X[:20])
    run_cli(cli, "predict", "--run", run, "--data", tmp_path / "new.npy", "--out", tmp_path / "p.csv",
            "--samples", clf.anomaly_draws, "--seed", 2, "--backend", "cpu")
    p, s, predicted = read_predictions(tmp_path / "p.csv", ["0", "1", "2"])
    np.testing.assert_allclose(clf.predict_proba(X[:20]), p, atol=2e-6)
    np.testing.assert_allclose(clf.score_samples(X[:20]), s, rtol=1e-6)
    assert [str(c) for c in clf.predict(X[:20])] == predicted
    run_cli(cli, "train", "--resume", run, "--epochs", 1, "--backend", "cpu")
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["epochs"] == 3
    assert ssvae.load(run, backend="cpu").summary_["epochs"] == 3


def test_cli_run_opens_in_python(cli, tmp_path):
    run_cli(cli, "generate", "table", "--out", tmp_path / "feat")
    run = tmp_path / "run"
    run_cli(cli, "train", "--data", tmp_path / "feat" / "train.csv", "--test-data", tmp_path / "feat" / "test.csv",
            "--out", run, "--epochs", 1, "--hidden", 16, "--latent", 2, "--backend", "cpu")
    clf = ssvae.load(run, backend="cpu")
    cfg = json.loads((run / "checkpoint" / "config.json").read_text())
    with open(tmp_path / "feat" / "new.csv") as f:
        rows = list(csv.DictReader(f))
    X = np.array([[float(r[c]) for c in cfg["feature_names"]] for r in rows], dtype=np.float32)
    run_cli(cli, "predict", "--run", run, "--data", tmp_path / "feat" / "new.csv", "--out", tmp_path / "p.csv", "--backend", "cpu")
    p, s, predicted = read_predictions(tmp_path / "p.csv", [str(c) for c in clf.classes_])
    np.testing.assert_allclose(clf.predict_proba(X), p, atol=2e-6)
    assert [str(c) for c in clf.predict(X)] == predicted


def test_python_and_cli_train_the_same_model_for_a_seed(cli, tmp_path):
    X, y, y_semi = blobs(n=120)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", y_semi.astype(np.int64))
    run_cli(cli, "train", "--data", tmp_path / "x.npy", "--labels-file", tmp_path / "y.npy",
            "--test-data", tmp_path / "x.npy", "--test-labels-file", tmp_path / "y.npy", "--labels", "all",
            "--epochs", 3, "--hidden", 16, "--latent", 2, "--batch-size", 32, "--seed", 5,
            "--backend", "cpu", "--out", tmp_path / "cli-run")
    from_cli = ssvae.load(tmp_path / "cli-run", backend="cpu")
    from_py = fast(epochs=3, random_state=5).fit(X, y_semi)
    np.testing.assert_array_equal(from_py.predict_proba(X), from_cli.predict_proba(X))
    assert from_py.summary_["accuracy"] == from_cli.summary_["accuracy"]
    # and a different seed gives a different model (the comparison can fail)
    other = fast(epochs=3, random_state=6).fit(X, y_semi)
    assert np.abs(other.predict_proba(X) - from_cli.predict_proba(X)).max() > 1e-4


def test_python_image_run_opens_in_cli_eval(cli, tmp_path):
    X, y = images(n=24, side=8)
    y = y.copy()
    y[::3] = -1
    clf = fast(family="cnn", epochs=1, batch_size=12).fit(X, y)
    run = clf.save(tmp_path / "img-run")
    out = run_cli(cli, "eval", "--run", run, "--backend", "cpu")
    assert "accuracy" in out.stdout + out.stderr
