"""Training progress: events from the Rust core, and a progress bar built on them.

The core calls ``hook(event, payload_json)`` with ``event`` one of ``start``, ``step`` (at most
every 0.1 s), ``epoch`` (the metrics.jsonl line), ``note`` and ``finished``. Callbacks given to
the estimator receive ``(event, info_dict)``. The bar is tqdm's (``tqdm.auto``: a widget in
Jupyter, text in a terminal) when tqdm is installed, else a one-line text bar on stderr.
"""

from __future__ import annotations

import json
import sys


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython  # type: ignore

        shell = get_ipython()
        return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"
    except Exception:
        return False


def wants_bar(progress) -> bool:
    """``progress='auto'``: a bar in a terminal or a notebook, none when output is a file."""
    if progress == "auto":
        return _in_notebook() or (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())
    return bool(progress)


class ProgressBar:
    """A callback drawing one bar over all training steps; the postfix shows the objective
    and, after each epoch, the accuracy on the run's test split."""

    def __init__(self):
        self._bar = None
        self._text = None
        self._total = 0
        self._per_epoch = 1
        self._first_epoch = 1
        self._done = 0

    def __call__(self, event: str, info: dict) -> None:
        if event == "start":
            self._per_epoch = max(1, info["steps_per_epoch"])
            self._total = self._per_epoch * info["epochs"]
            try:
                from tqdm.auto import tqdm  # type: ignore

                self._bar = tqdm(total=self._total, desc=f"{info['model']} ({info['adapter']})", unit="step")
            except ImportError:
                self._text = f"{info['model']} ({info['adapter']})"
            self._first_epoch = None
        elif event == "step":
            if self._first_epoch is None:
                self._first_epoch = info["epoch"]
            done = (info["epoch"] - self._first_epoch) * self._per_epoch + info["step"]
            post = {} if info.get("objective") is None else {"objective": f"{info['objective']:.4g}"}
            self._advance(done, post)
        elif event == "epoch":
            if self._first_epoch is None:
                self._first_epoch = info["epoch"]
            done = (info["epoch"] - self._first_epoch + 1) * self._per_epoch
            post = {"objective": f"{info['train_objective']:.4g}"}
            if info.get("test_accuracy") is not None:
                post["accuracy"] = f"{info['test_accuracy']:.3f}"
            self._advance(done, post)
        elif event == "finished":
            if self._bar is not None:
                self._bar.close()
            elif self._text is not None:
                sys.stderr.write("\n")
                sys.stderr.flush()

    def _advance(self, done: int, post: dict) -> None:
        done = min(done, self._total)
        if self._bar is not None:
            self._bar.update(max(0, done - self._done))
            if post:
                self._bar.set_postfix(post, refresh=False)
        elif self._text is not None:
            width = 30
            filled = int(width * done / max(1, self._total))
            extra = " ".join(f"{k} {v}" for k, v in post.items())
            sys.stderr.write(f"\r{self._text} [{'#' * filled}{'.' * (width - filled)}] {done}/{self._total} {extra}  ")
            sys.stderr.flush()
        self._done = max(self._done, done)


def make_hook(callbacks):
    """The function handed to the core: decodes the payload and calls every callback."""
    if not callbacks:
        return None

    def hook(event: str, payload: str) -> None:
        info = json.loads(payload)
        for cb in callbacks:
            cb(event, info)

    return hook
