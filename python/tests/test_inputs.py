"""numpy dtypes and layouts, and bad input: each refused with a message that says what to fix."""

import numpy as np
import pytest

from conftest import blobs, fast, images, windows


@pytest.fixture(scope="module")
def table_model():
    X, _, y_semi = blobs()
    return fast().fit(X, y_semi), X


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_dtypes_give_the_same_predictions(table_model, dtype):
    clf, X = table_model
    np.testing.assert_allclose(clf.predict_proba(X.astype(dtype)), clf.predict_proba(X), atol=1e-6)


def test_non_contiguous_and_fortran_arrays(table_model):
    clf, X = table_model
    ref = clf.predict_proba(X)
    np.testing.assert_array_equal(clf.predict_proba(np.asfortranarray(X)), ref)
    wide = np.repeat(X, 2, axis=1)[:, ::2]  # a strided view
    assert not wide.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(clf.predict_proba(wide), ref)


def test_integer_features_are_converted(table_model):
    clf, X = table_model
    Xi = np.round(X).astype(np.int64)
    assert clf.predict_proba(Xi).shape == (len(X), 3)


def test_uint8_float_and_nchw_images_agree():
    X, y = images(n=30, side=8, channels=3)
    clf = fast(family="cnn", epochs=2, batch_size=16).fit(X, y)
    ref = clf.predict_proba(X)
    np.testing.assert_allclose(clf.predict_proba(X / 255.0), ref, atol=1e-6)
    np.testing.assert_allclose(clf.predict_proba((X / 255.0).astype(np.float32)), ref, atol=1e-6)
    # the same model fitted on NCHW arrays sees the same pixels
    nchw = np.ascontiguousarray(X.transpose(0, 3, 1, 2))
    clf2 = fast(family="cnn", epochs=2, batch_size=16).fit(nchw, y)
    np.testing.assert_allclose(clf2.predict_proba(nchw), ref, atol=1e-6)
    gen, _ = clf2.sample(1)
    assert gen.shape == (2, 3, 8, 8)


def test_dense_on_grayscale_images_3d_and_4d():
    X, y = images(n=30, side=8, channels=1)
    clf = fast(epochs=2, batch_size=16).fit(X, y)
    assert clf.predict(X).shape == (30,)


def test_nan_and_inf_are_refused(table_model):
    clf, X = table_model
    bad = X.copy()
    bad[4, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(bad)
    _, _, y_semi = blobs()
    with pytest.raises(ValueError, match="NaN|infinity"):
        fast().fit(bad, y_semi)
    bad[4, 2] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        clf.predict_proba(bad)


def test_wrong_shapes(table_model):
    clf, X = table_model
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :3])
    with pytest.raises(ValueError, match="2D|2-D|dimension"):
        clf.predict(X[0])
    with pytest.raises(ValueError, match="3-D"):
        clf.predict(X[:, :, None])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        fast().fit(X, np.zeros(len(X) - 1, dtype=int))


def test_wrong_family_for_the_data():
    X, _, y_semi = blobs()
    with pytest.raises(ValueError, match="family='cnn' takes images"):
        fast(family="cnn").fit(X, y_semi)
    W, y = windows(n=20)
    with pytest.raises(ValueError, match="family='rnn'"):
        fast(family="rnn").fit(W[..., None], y)


def test_float_images_outside_unit_range_are_refused():
    X, y = images(n=20)
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        fast(family="cnn").fit(X.astype(np.float32), y)  # 0..255 as floats


def test_labels_that_are_not_classes():
    X, y, y_semi = blobs()
    with pytest.raises(ValueError, match="Unknown label type"):
        fast().fit(X, X[:, 0])  # a regression target
    with pytest.raises(ValueError, match="no labeled sample"):
        fast().fit(X, np.full(len(X), -1))
    with pytest.raises(ValueError, match="one class"):
        fast().fit(X, np.where(y_semi == 1, 1, -1))
    clf = fast().fit(X, y_semi)
    y_new = y.copy()
    y_new[0] = 7
    with pytest.raises(ValueError, match=r"label\(s\) \[.*7.*\] that are not among the classes"):
        clf.fit(X, y_new, resume=True)


def test_core_errors_keep_their_message():
    X, _, y_semi = blobs()
    with pytest.raises(ValueError, match="--dropout must be in"):
        fast(dropout=1.5).fit(X, y_semi)
    with pytest.raises(ValueError, match="backend='tpu'"):
        fast(backend="tpu").fit(X, y_semi)
    with pytest.raises(ValueError, match="kind='vae'"):
        fast(kind="vae").fit(X, y_semi)


def test_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        fast().predict(np.zeros((2, 5), dtype=np.float32))


def test_a_panic_in_the_core_is_a_python_exception():
    from ssvae import _core

    with pytest.raises(RuntimeError, match="internal error in ssvae.*deliberate panic"):
        _core._panic_for_tests()
    X, _, y_semi = blobs()
    assert fast().fit(X, y_semi).predict(X).shape == (len(X),)  # and the interpreter goes on
