"""ssvae: semi-supervised variational autoencoders (Berkhahn et al., "One Model to Rule Them
All") on wgpu GPUs and a CPU backend, as a scikit-learn estimator.

    from ssvae import SSVAEClassifier
    clf = SSVAEClassifier(family="dense", backend="auto", epochs=20).fit(X, y)   # y == -1: unlabeled
    clf.predict(X_new); clf.predict_proba(X_new); clf.score_samples(X_new)      # higher = more anomalous
    clf.save("runs/mine")                                                       # a run folder: `ssvae eval --run runs/mine`
    clf = ssvae.load("runs/mine")
"""

from ._core import FORMAT_VERSION, describe_backend
from ._estimator import SSVAEClassifier, load
from ._progress import ProgressBar

__all__ = ["SSVAEClassifier", "load", "ProgressBar", "describe_backend", "FORMAT_VERSION"]
__version__ = "0.1.0"
