"""scikit-learn's estimator checks (`parametrize_with_checks`), on a tiny, fast configuration.

Every check runs; the ones expected to fail are listed with the reason (they are reported as
xfail, and an unexpected pass is reported too, so the list stays honest).
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from conftest import fast

EXPECTED_FAILED_CHECKS = {
    "check_classifiers_classes": (
        "one of its cases uses the labels [-1, 1]; here -1 marks an unlabeled sample (scikit-learn's "
        "semi-supervised convention, as LabelSpreading), so that y holds one class and is refused"
    ),
    "check_methods_subset_invariance": (
        "score_samples averages draws of z whose random stream is keyed by the sample's position in X "
        "(as `ssvae predict`), so a sample's anomaly score depends slightly on where it sits; "
        "predict, predict_proba and transform are invariant"
    ),
    "check_methods_sample_order_invariance": "as check_methods_subset_invariance: score_samples' draws are keyed by position",
}


# 5 epochs: check_classifiers_train wants > 0.83 training accuracy on 300 blobs, and 3 epochs of
# the 16-unit model sat at 0.83-0.84 (both recipes), one sample from failing
@parametrize_with_checks([fast(epochs=5, batch_size=64)], expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
