"""The estimator's contract: classes, -1 = unlabeled, probabilities, params, persistence."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

import ssvae
from conftest import blobs, fast, images, windows


def test_fit_predict_learns_blobs_with_half_the_labels():
    X, y, y_semi = blobs(n=150, unlabeled=0.5)
    clf = fast(epochs=20).fit(X, y_semi)
    assert list(clf.classes_) == [0, 1, 2]
    p = clf.predict_proba(X)
    assert p.shape == (150, 3) and p.dtype == np.float64
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    assert clf.score(X, y) > 0.9, clf.score(X, y)
    assert clf.summary_["labels"] == int((y_semi != -1).sum())


def test_string_labels_map_to_sorted_classes():
    X, y, y_semi = blobs(n=90)
    names = np.array(["cat", "ant", "bee"])
    y_str = np.where(y_semi == -1, "-1", names[np.maximum(y_semi, 0)]).astype(object)
    y_str[y_semi == -1] = -1  # object array: -1 marks unlabeled
    clf = fast(epochs=15).fit(X, y_str)
    assert list(clf.classes_) == ["ant", "bee", "cat"]
    pred = clf.predict(X)
    assert set(pred) <= {"ant", "bee", "cat"}
    assert np.mean(pred == names[y]) > 0.8


def test_get_set_params_and_clone():
    clf = fast(alpha=10.0)
    assert clf.get_params()["alpha"] == 10.0
    clf.set_params(epochs=3, hidden=(8,))
    c = clone(clf)
    assert c.get_params()["epochs"] == 3 and c.get_params()["hidden"] == (8,)


def test_same_seed_same_model_other_seed_other_model():
    X, _, y_semi = blobs()
    a = fast(random_state=3).fit(X, y_semi).predict_proba(X)
    b = fast(random_state=3).fit(X, y_semi).predict_proba(X)
    c = fast(random_state=4).fit(X, y_semi).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4


def test_transform_score_samples_and_an_outlier():
    X, _, y_semi = blobs(n=120)
    clf = fast(epochs=10, latent=3).fit(X, y_semi)
    z = clf.transform(X)
    assert z.shape == (120, 3) and np.isfinite(z).all()
    s = clf.score_samples(X)
    far = clf.score_samples(X[:5] + 40.0)
    assert s.shape == (120,)
    # higher = more anomalous: points far from the data score above every training point
    assert far.min() > np.median(s), (far, np.median(s))


def test_es_model_has_no_anomaly_score():
    X, _, y_semi = blobs()
    clf = fast(kind="es").fit(X, y_semi)
    assert clf.predict(X).shape == (90,)
    with pytest.raises(ValueError, match="decoder"):
        clf.score_samples(X)


def test_save_load_round_trip(tmp_path):
    X, _, y_semi = blobs()
    clf = fast().fit(X, y_semi)
    path = clf.save(tmp_path / "run")
    back = ssvae.load(path, backend="cpu")
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    assert list(back.classes_) == list(clf.classes_)
    assert back.get_params()["hidden"] == (16,) or list(back.get_params()["hidden"]) == [16]
    with pytest.raises(ValueError, match="not empty"):
        clf.save(path)


def test_pickle_round_trip():
    X, _, y_semi = blobs()
    clf = fast().fit(X, y_semi)
    back = pickle.loads(pickle.dumps(clf))
    assert back.run_dir_ != clf.run_dir_
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))


def test_resume_with_labels_that_arrived_later():
    X, y, y_semi = blobs(n=120, unlabeled=0.9)
    clf = fast(epochs=2).fit(X, y_semi)
    first = clf.summary_
    clf.fit(X, y, resume=True, epochs=3)
    assert clf.summary_["epochs"] == first["epochs"] + 3
    assert clf.summary_["labels"] == 120 > first["labels"]
    clf.partial_fit(X, y)
    assert clf.summary_["epochs"] == first["epochs"] + 5


def test_callbacks_get_events_and_a_raising_callback_stops_training():
    X, _, y_semi = blobs()
    events = []
    fast(epochs=3, callbacks=[lambda e, info: events.append((e, info))]).fit(X, y_semi)
    kinds = [e for e, _ in events]
    assert kinds[0] == "start" and kinds[-1] == "finished" and kinds.count("epoch") == 3
    assert events[0][1]["epochs"] == 3
    assert [info["epoch"] for e, info in events if e == "epoch"] == [1, 2, 3]

    def stop(event, info):
        if event == "epoch":
            raise KeyError("stop here")

    with pytest.raises(KeyError, match="stop here"):
        fast(epochs=5, callbacks=[stop]).fit(X, y_semi)


def test_progress_bar_writes_to_stderr(capsys):
    import re

    X, _, y_semi = blobs()
    fast(progress=True).fit(X, y_semi)
    err = capsys.readouterr().err
    if "it/s" in err or "step/s" in err:  # tqdm is installed: its bar
        assert "ss-dense" in err and "100%" in err
    else:  # the built-in bar ends full: every step of every epoch
        assert re.search(r"ss-dense \(cpu.*\) \[#{30}\] (\d+)/\1 objective", err), err[-300:]
    assert fast(progress=False).fit(X, y_semi) and capsys.readouterr().err == ""


def test_images_cnn_and_sample():
    X, y = images(n=40, side=8)
    clf = fast(family="cnn", hidden=(16,), epochs=3, batch_size=20).fit(X, y)
    assert clf.predict(X).shape == (40,)
    gen, labels = clf.sample(n_per_class=3)
    assert gen.shape == (6, 8, 8, 1) and gen.dtype == np.float32
    assert gen.min() >= 0.0 and gen.max() <= 1.0
    assert list(labels) == [0, 0, 0, 1, 1, 1]


def test_series_rnn():
    X, y = windows(n=40)
    clf = fast(family="rnn", hidden=(8, 8, 8), epochs=2, batch_size=20).fit(X, y)
    assert clf.predict_proba(X).shape == (40, 2)
    assert clf.transform(X).shape == (40, 2)
    with pytest.raises(ValueError, match="generates images"):
        clf.sample(2)


def test_training_releases_the_gil():
    import threading

    X, _, y_semi = blobs(n=300)
    clf = fast(epochs=40, hidden=(64,), batch_size=16)
    t = threading.Thread(target=clf.fit, args=(X, y_semi))
    ticks = 0
    t.start()
    while t.is_alive():
        ticks += 1  # runs only while the core trains without the GIL
    t.join()
    assert hasattr(clf, "run_dir_") and clf.summary_["epochs"] == 40
    assert ticks > 10_000, ticks


def test_keyboard_interrupt_stops_training_with_a_checkpoint(request):
    import _thread
    import signal

    # interrupt_main() does nothing where SIGINT is ignored, as in a job started in the
    # background by a non-interactive shell: Python's own handler for this test, then the old one
    prev = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, prev))
    X, _, y_semi = blobs()

    def interrupt(event, info):
        if event == "epoch" and info["epoch"] == 2:
            _thread.interrupt_main()  # as Ctrl-C

    clf = fast(epochs=50, callbacks=[interrupt])
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y_semi)
