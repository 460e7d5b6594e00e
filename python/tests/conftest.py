"""Shared fixtures: tiny data (the suite must stay fast on 2 CPU cores) and the CLI binary.

Every test uses the CPU backend: the Rust tests cover the GPU kernels against it.
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from ssvae import SSVAEClassifier

ROOT = Path(__file__).resolve().parents[2]
# tiny and quick: two dense layers of 16, two epochs
FAST = dict(backend="cpu", hidden=(16,), latent=2, epochs=2, batch_size=32, progress=False)


def fast(**kw):
    return SSVAEClassifier(**{**FAST, **kw})


def blobs(n=90, d=5, classes=3, seed=0, unlabeled=0.5):
    """Separable Gaussian blobs; a fraction of the labels set to -1."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centers = rng.normal(0, 4, size=(classes, d))
    X = (centers[y] + rng.normal(size=(n, d))).astype(np.float32)
    y_semi = y.copy()
    y_semi[rng.random(n) < unlabeled] = -1
    y_semi[:classes] = np.arange(classes)  # every class keeps a label
    return X, y, y_semi


def images(n=40, side=8, channels=1, seed=0):
    """Two classes of tiny images: a bright left half or a bright right half (uint8, NHWC)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.integers(0, 60, size=(n, side, side, channels), dtype=np.uint8)
    for i, c in enumerate(y):
        if c == 0:
            X[i, :, : side // 2] += 180
        else:
            X[i, :, side // 2 :] += 180
    return X, y


def windows(n=40, steps=16, channels=2, seed=0):
    """Two classes of short windows: a slow or a fast sine."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.arange(steps)[None, :, None]
    freq = np.where(y == 0, 0.2, 0.9)[:, None, None]
    X = np.sin(freq * t + rng.uniform(0, 6, size=(n, 1, channels))) + 0.1 * rng.normal(size=(n, steps, channels))
    return X.astype(np.float32), y


@pytest.fixture(scope="session")
def cli():
    """The `ssvae` binary ($SSVAE_BIN, else target/release/ssvae); without it the CLI tests
    skip, except under CI=true, where they fail."""
    path = os.environ.get("SSVAE_BIN") or str(ROOT / "target" / "release" / "ssvae")
    if not (Path(path).exists() or shutil.which(path)):
        if os.environ.get("CI") == "true":
            pytest.fail(f"the ssvae binary is missing ({path}); build it with `cargo build --release`")
        pytest.skip(f"SKIPPED: the ssvae binary is missing ({path}); build it with `cargo build --release`")
    return path
