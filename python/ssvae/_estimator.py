"""``SSVAEClassifier``: the scikit-learn estimator on top of the Rust core (``ssvae._core``).

A fitted estimator IS a run folder (``run_dir_``): ``fit`` writes ``X`` and ``y`` into it
(``data/``, formats the CLI reads) and trains with the core's ``run::train``; predictions go
through ``run::Run::open``. So ``save(path)`` copies the folder, ``ssvae load`` of a CLI run
works, and a folder saved from Python opens in ``ssvae eval`` / ``ssvae predict`` /
``ssvae train --resume``.

Classes: ``classes_`` is the sorted unique labels of the labeled samples (``y == -1``:
unlabeled, as scikit-learn's semi-supervised estimators); the run stores them as indices
``0..K-1`` (its class names in the CLI) and ``python.json`` keeps the labels themselves.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import TransformerTags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _core
from ._progress import ProgressBar, make_hook, wants_bar

#: The file beside config.json that records what Python needs on top of the run.
PYTHON_FILE = "python.json"
#: Draws of z per anomaly score (the CLI's default).
DEFAULT_ANOMALY_DRAWS = 10
_DTYPES = (np.float32, np.float64, np.uint8)
_FAMILIES = ("dense", "cnn", "rnn")
_KINDS = ("ss", "es", "m2", "gmdgm")


class SSVAEClassifier(ClassifierMixin, BaseEstimator):
    """Semi-supervised VAE classifier (Berkhahn et al., "One Model to Rule Them All").

    Parameters
    ----------
    family : {"dense", "cnn", "rnn"}
        The network: dense layers (tables, or images flattened), convolutions (images) or
        LSTMs (windows of a time series).
    backend : {"auto", "cpu", "gpu", "vulkan", "metal", "dx12", "gl"}
        ``auto``: a hardware GPU if there is one, else the CPU backend (a software GPU such as
        lavapipe is far slower than the CPU backend).
    kind : {"ss", "es", "m2", "gmdgm"}
        ``ss``: the paper's model; ``es``: encoder + classifier on cross-entropy only (no
        decoder, so no anomaly scores, ``transform`` or ``sample``); ``m2`` / ``gmdgm``: see
        the README.
    hidden, latent, alpha, dropout, lr, optimizer, likelihood :
        The model's settings (``None``: the CLI's default for the family; see README).
    epochs : int
        Passes over the training set.
    batch_size : int
        Rows per step; capped at the number of training samples.
    validation_labels, patience :
        Model selection: hold out this many labeled samples per class and keep the best epoch;
        stop after ``patience`` epochs without improvement.
    recipe : {"default", "paper"}
        Which protocol fills in the training settings not given (README, "Recipes"):
        ``default`` adds entropy minimisation of pi on unlabeled samples to the paper's
        protocol, when few samples are labeled draws a smaller share of each batch from them
        (a tenth while fewer than a tenth of the samples are labeled, else the paper's half), and for the dense, CNN and recurrent families
        adds the consistency of pi under a perturbation of the input (images shifted by a
        sixteenth of their side; series shifted by a sixteenth of the window, rescaled and
        noised), and gives the Gaussian decoder of SS models of tables a variance floor of 0.1
        of each standardised feature's (1e-6 in the paper's and for EU models);
        ``paper`` is the paper's protocol.
    anomaly_draws : int
        Draws of z per anomaly score (``score_samples``).
    image_layout : {"auto", "nhwc", "nchw"}
        How 4-D image arrays are laid out; ``auto``: channels last when the last axis is 1 or 3,
        else channels first when axis 1 is.
    random_state : int or None
        The run's seed (weights, batches, draws). ``None`` draws one from numpy.
    progress : "auto", bool
        A progress bar (tqdm's when installed: a widget in Jupyter, a bar in a terminal);
        ``auto``: when stderr is a terminal or in a notebook.
    callbacks : list of callables or None
        Each is called as ``cb(event, info)`` with ``event`` in ``start``, ``step``, ``epoch``,
        ``note``, ``finished`` and ``info`` a dict (an ``epoch``'s is the metrics.jsonl line).
        An exception raised by a callback stops training (the steps done are checkpointed) and
        is re-raised; so is Ctrl-C.
    run_dir : path or None
        Where ``fit`` writes the run folder (must not hold a run); ``None``: a temporary folder
        removed with the estimator (``save`` keeps a copy).
    """

    def __init__(
        self,
        family="dense",
        backend="auto",
        kind="ss",
        hidden=None,
        latent=None,
        alpha=None,
        dropout=None,
        epochs=10,
        batch_size=128,
        lr=None,
        optimizer="rmsprop",
        likelihood=None,
        validation_labels=None,
        patience=None,
        recipe="default",
        anomaly_draws=DEFAULT_ANOMALY_DRAWS,
        image_layout="auto",
        random_state=0,
        progress="auto",
        callbacks=None,
        run_dir=None,
    ):
        self.family = family
        self.backend = backend
        self.kind = kind
        self.hidden = hidden
        self.latent = latent
        self.alpha = alpha
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.likelihood = likelihood
        self.validation_labels = validation_labels
        self.patience = patience
        self.recipe = recipe
        self.anomaly_draws = anomaly_draws
        self.image_layout = image_layout
        self.random_state = random_state
        self.progress = progress
        self.callbacks = callbacks
        self.run_dir = run_dir

    # ------------------------------------------------------------------ input

    def _input_kind(self, ndim: int) -> str:
        """``table``, ``series`` or ``images`` for an array of ``ndim`` dimensions."""
        if self.family not in _FAMILIES:
            raise ValueError(f"family={self.family!r}: use one of {', '.join(map(repr, _FAMILIES))}")
        if ndim == 2:
            if self.family != "dense":
                raise ValueError(
                    f"family={self.family!r} takes {'images (4-D)' if self.family == 'cnn' else 'windows (3-D: n, steps, channels)'}, "
                    "but X is a 2-D table; use family='dense'"
                )
            return "table"
        if ndim == 3:
            return "images" if self.family == "cnn" else "series"
        if ndim == 4:
            if self.family == "rnn":
                raise ValueError("family='rnn' takes windows (3-D: n, steps, channels), but X is 4-D (images); use 'cnn' or 'dense'")
            return "images"
        raise ValueError(f"X must be 2-D (a table), 3-D (windows) or 4-D (images); got {ndim}-D")

    def _layout(self, X) -> str:
        if self.image_layout in ("nhwc", "nchw"):
            return self.image_layout
        if self.image_layout != "auto":
            raise ValueError(f"image_layout={self.image_layout!r}: use 'auto', 'nhwc' or 'nchw'")
        if X.shape[-1] in (1, 3):
            return "nhwc"
        if X.shape[1] in (1, 3):
            return "nchw"
        raise ValueError(f"X of shape {X.shape}: images need 1 or 3 channels, on the last axis (NHWC) or axis 1 (NCHW)")

    def _check_X(self, X, reset: bool, y="no_validation"):
        """Validated ``X`` (float32, float64 and uint8 kept as they are, no copy) and ``y``
        (``y=None`` is refused with scikit-learn's message)."""
        kw = dict(dtype=list(_DTYPES), allow_nd=True, ensure_min_samples=1)
        if isinstance(y, str) and y == "no_validation":
            X = validate_data(self, X, reset=reset, **kw)
            y = None
        else:
            X, y = validate_data(self, X, y, reset=reset, y_numeric=False, multi_output=False, **kw)
        if reset:
            self._kind = self._input_kind(X.ndim)
        elif X.ndim != self._ndim:
            raise ValueError(f"X is {X.ndim}-D; the model was fitted on {self._ndim}-D input of shape (n, {', '.join(map(str, self._sample_shape))})")
        if not reset and tuple(X.shape[1:]) != self._sample_shape:
            raise ValueError(f"X has samples of shape {tuple(X.shape[1:])}; the model was fitted on {self._sample_shape}")
        return X, y

    def _to_core(self, X):
        """``X`` as the core takes it: images NHWC (a transposed view, not a copy)."""
        if self._kind != "images":
            return X
        if X.ndim == 3:
            return X[..., None]
        return X.transpose(0, 2, 3, 1) if self._image_layout == "nchw" else X

    # ------------------------------------------------------------------ labels

    def _split_labels(self, y):
        """(labeled mask, labeled values) of ``y``; ``-1`` marks an unlabeled sample."""
        y = np.asarray(y)
        if y.dtype.kind in "iuf":
            labeled = y != -1
        else:
            labeled = np.array([not (isinstance(v, (int, float, np.integer, np.floating)) and v == -1) for v in y], dtype=bool)
        return labeled, y[labeled]

    def _indices(self, y, labeled):
        """Class indices (``-1`` unlabeled), every label checked against ``classes_``."""
        idx = np.full(len(y), -1, dtype=np.int64)
        values = y[labeled]
        pos = np.searchsorted(self.classes_, values)
        pos = np.clip(pos, 0, len(self.classes_) - 1)
        bad = self.classes_[pos] != values
        if np.any(bad):
            unknown = np.unique(values[bad])
            raise ValueError(
                f"y holds label(s) {list(unknown[:5])} that are not among the classes the model was fitted with "
                f"({list(self.classes_)}); a resumed fit cannot add classes: fit a new model"
            )
        idx[labeled] = pos
        return idx

    # ------------------------------------------------------------------ fit

    def fit(self, X, y, resume=False, epochs=None):
        """Trains on ``X`` with labels ``y`` (``-1``: unlabeled).

        ``resume=True`` continues the fitted model (weights, optimizer state) for ``epochs``
        more passes (default ``self.epochs``) on ``X, y``, e.g. with labels that arrived since;
        the classes must be the fitted ones.
        """
        if resume and hasattr(self, "run_dir_"):
            return self._resume(X, y, epochs)
        X, y = self._check_X(X, reset=True, y=y)
        labeled, values = self._split_labels(y)
        # the labeled values only: an object array may mix class names and the -1 marker
        check_classification_targets(values)
        if not labeled.any():
            raise ValueError("y has no labeled sample (every label is -1); a classifier needs labeled samples of at least two classes")
        self.classes_ = np.unique(values)
        if len(self.classes_) < 2:
            raise ValueError(f"y has one class ({self.classes_[0]!r}) among its labeled samples; a classifier needs at least two classes")
        if self.kind not in _KINDS:
            raise ValueError(f"kind={self.kind!r}: use one of {', '.join(map(repr, _KINDS))}")
        self._ndim = X.ndim
        self._sample_shape = tuple(X.shape[1:])
        self._image_layout = self._layout(X) if X.ndim == 4 else "nhwc"
        seed = self.random_state if self.random_state is not None else int(np.random.randint(0, 2**31 - 1))
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"random_state={self.random_state!r}: use a non-negative int or None")
        self._seed = int(seed)

        out = self._new_run_dir()
        data = self._write_data(out, X, self._indices(y, labeled))
        params = dict(
            backend=self.backend,
            family=self.family,
            kind=self.kind,
            out=str(out),
            epochs=int(self.epochs),
            batch_size=int(max(1, min(self.batch_size, len(X)))),
            seed=self._seed,
            hidden=None if self.hidden is None else [int(h) for h in np.atleast_1d(self.hidden)],
            latent=self.latent,
            alpha=self.alpha,
            dropout=self.dropout,
            lr=self.lr,
            optimizer=self.optimizer,
            likelihood=self.likelihood,
            validation_labels=self.validation_labels,
            patience=self.patience,
            recipe=self.recipe,
            score_samples=int(self.anomaly_draws),
            **data,
        )
        summary = _core.train(json.dumps(params), self._hook())
        self._adopt(out, json.loads(summary))
        return self

    def partial_fit(self, X, y, classes=None):
        """The first call fits; later calls resume the model on ``X, y`` for ``epochs`` more
        passes (labels that arrived since). ``classes`` (optional) must be the labels' set."""
        if not hasattr(self, "run_dir_"):
            self.fit(X, y)
        else:
            self._resume(X, y, None)
        if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes={list(classes)} differ from the fitted classes {list(self.classes_)}")
        return self

    def _resume(self, X, y, epochs):
        check_is_fitted(self)
        X, y = self._check_X(X, reset=False, y=y)
        labeled, values = self._split_labels(y)
        check_classification_targets(values)
        idx = self._indices(y, labeled)
        data_dir = Path(self.run_dir_) / "data"
        shutil.rmtree(data_dir, ignore_errors=True)
        self._write_data(Path(self.run_dir_), X, idx)
        summary = _core.resume(str(self.run_dir_), self.backend, int(epochs or self.epochs), self._hook())
        self._adopt(Path(self.run_dir_), json.loads(summary))
        return self

    def _hook(self):
        callbacks = list(self.callbacks or [])
        if wants_bar(self.progress):
            callbacks.append(ProgressBar())
        return make_hook(callbacks)

    def _new_run_dir(self) -> Path:
        if self.run_dir is not None:
            out = Path(self.run_dir).absolute()
            if _has_run(out):
                raise ValueError(f"run_dir={str(out)!r} already holds a run; choose another folder (or load it: ssvae.load)")
            out.mkdir(parents=True, exist_ok=True)
            return out
        out = Path(tempfile.mkdtemp(prefix="ssvae-run-"))
        # the temporary run lives as long as the estimator
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(out), True)
        return out

    def _write_data(self, out: Path, X, labels) -> dict:
        """Writes the training data into ``out/data`` in a format the CLI reads."""
        data = out / "data"
        data.mkdir(parents=True, exist_ok=True)
        if self._kind == "images":
            _core.write_image_folder(str(data / "train"), self._to_core(X), labels.tolist())
            return dict(data="images", path=str(data / "train"), labels_file=None)
        np.save(data / "train.npy", np.ascontiguousarray(X, dtype=np.float32))
        np.save(data / "train_labels.npy", labels)
        return dict(data=self._kind, path=str(data / "train.npy"), labels_file=str(data / "train_labels.npy"))

    def _adopt(self, run_dir: Path, summary: dict) -> None:
        """Opens the trained run and records what Python needs beside it."""
        self.run_dir_ = str(run_dir)
        self.summary_ = summary
        meta = dict(
            classes=self.classes_.tolist(),
            classes_dtype=self.classes_.dtype.str,
            kind=self._kind,
            ndim=self._ndim,
            sample_shape=list(self._sample_shape),
            image_layout=self._image_layout,
            seed=self._seed,
            params={k: v for k, v in self.get_params().items() if k not in ("callbacks", "run_dir")},
        )
        (run_dir / PYTHON_FILE).write_text(json.dumps(meta, indent=1))
        self._open()

    def _open(self) -> None:
        self._model = _core.Model(self.run_dir_, self.backend)
        names = self._model.class_names()
        if len(names) < len(self.classes_):
            raise RuntimeError(f"the run in {self.run_dir_} has {len(names)} classes, the estimator {len(self.classes_)}")

    # ------------------------------------------------------------------ predict

    def predict_proba(self, X):
        """Class probabilities ``(n, n_classes)``, columns in ``classes_`` order."""
        check_is_fitted(self)
        X, _ = self._check_X(X, reset=False)
        p = np.asarray(self._model.predict_proba(self._to_core(X)), dtype=np.float64)[:, : len(self.classes_)]
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The most probable class of each sample (a value of ``classes_``)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def score_samples(self, X):
        """Anomaly score of each sample: the negative log-likelihood of the sample under the
        decoder (mean over ``anomaly_draws`` draws of z). HIGHER = MORE ANOMALOUS (the CLI's
        ``score``; note that scikit-learn's outlier detectors use the opposite sign)."""
        check_is_fitted(self)
        X, _ = self._check_X(X, reset=False)
        return np.asarray(self._model.score_samples(self._to_core(X), int(self.anomaly_draws), self._seed), dtype=np.float64)

    def anomaly_score(self, X):
        """Alias of :meth:`score_samples` (higher = more anomalous)."""
        return self.score_samples(X)

    def transform(self, X):
        """Posterior means of z, ``(n, latent)`` (an RNN's: the mean over each window)."""
        check_is_fitted(self)
        X, _ = self._check_X(X, reset=False)
        return np.asarray(self._model.transform(self._to_core(X)))

    def fit_transform(self, X, y, **fit_params):
        """``fit(X, y, **fit_params)`` then ``transform(X)``."""
        return self.fit(X, y, **fit_params).transform(X)

    def sample(self, n_per_class=1, random_state=None):
        """Generated images: ``n_per_class`` per class (z ~ N(0, I), the same z for every
        class), values in [0, 1] in the layout of the training images; returns ``(X, y)``."""
        check_is_fitted(self)
        seed = self._seed if random_state is None else int(random_state)
        images, labels = self._model.sample(int(n_per_class), seed)
        images = np.asarray(images)
        if self._ndim == 3:
            images = images[..., 0]
        elif self._image_layout == "nchw":
            images = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
        return images, self.classes_[np.asarray(labels)]

    # ------------------------------------------------------------------ persistence

    def save(self, path) -> str:
        """Copies the run folder to ``path`` (new or empty): ``ssvae.load(path)`` and the CLI
        (``ssvae eval --run path``) open it. Returns the folder."""
        check_is_fitted(self)
        dest = Path(path).absolute()
        if dest.exists() and any(dest.iterdir()):
            raise ValueError(f"save: {dest} exists and is not empty")
        if dest.exists():
            dest.rmdir()
        shutil.copytree(self.run_dir_, dest)
        relocate(dest)
        return str(dest)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_model", None)
        state.pop("_cleanup", None)
        if "run_dir_" in state:
            root = Path(self.run_dir_)
            state["_files"] = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        return state

    def __setstate__(self, state):
        files = state.pop("_files", None)
        self.__dict__.update(state)
        if files is not None:
            out = Path(tempfile.mkdtemp(prefix="ssvae-run-"))
            for rel, data in files.items():
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                (out / rel).write_bytes(data)
            self._cleanup = weakref.finalize(self, shutil.rmtree, str(out), True)
            self.run_dir_ = str(out)
            relocate(out)
            self._open()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        # transform gives the latent means, always float32
        tags.transformer_tags = TransformerTags(preserves_dtype=["float32"])
        return tags


def relocate(run_dir) -> None:
    """Points a copied run at its own ``data/`` (runs written by ``fit``; a CLI run's data
    stays where its config says)."""
    run_dir = Path(run_dir)
    if (run_dir / PYTHON_FILE).exists():
        _core.relocate(str(run_dir), str(run_dir / "data"))


def _has_run(path: Path) -> bool:
    return (path / "checkpoint").exists() or (path / "checkpoint.prev").exists() or (path / "config.json").exists()


def load(path, backend="auto", **params) -> SSVAEClassifier:
    """Opens a run folder, written by ``SSVAEClassifier.save`` or by ``ssvae train``, as a
    fitted estimator. ``params`` override the estimator's parameters (e.g. ``progress``)."""
    run_dir = Path(path).absolute()
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such folder")
    model = _core.Model(str(run_dir), backend)
    cfg = json.loads(model.config_json())
    meta_path = run_dir / PYTHON_FILE
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        est = SSVAEClassifier(**{**meta["params"], "backend": backend, **params})
        est.classes_ = np.asarray(meta["classes"], dtype=np.dtype(meta["classes_dtype"]))
        est._kind, est._ndim = meta["kind"], meta["ndim"]
        est._sample_shape = tuple(meta["sample_shape"])
        est._image_layout, est._seed = meta["image_layout"], meta["seed"]
    else:
        # a CLI run: the classes are its class names (numbers when they all are)
        spec = cfg["spec"]
        est = SSVAEClassifier(
            family=spec["model"]["family"], kind=spec["model"]["kind"], backend=backend,
            epochs=spec["epochs"], batch_size=spec["batch_size"], random_state=spec["seed"], **params,
        )
        names = model.class_names()
        try:
            est.classes_ = np.asarray([int(n) for n in names])
        except ValueError:
            est.classes_ = np.asarray(names)
        kind, shape = model.input_kind()
        est._kind = kind
        est._sample_shape = tuple(shape)
        est._ndim = 1 + len(shape)
        est._image_layout = "nhwc"
        est._seed = int(spec["seed"])
    est.n_features_in_ = est._sample_shape[0]
    est.run_dir_ = str(run_dir)
    summary = run_dir / "summary.json"
    est.summary_ = json.loads(summary.read_text()) if summary.exists() else {}
    est._model = model
    return est
