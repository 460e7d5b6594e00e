//! Anomaly feedback (the paper's future work, its equation 6). A user marks detections as
//! false positives (normal samples scored high) or false negatives (anomalies scored low); the
//! SS model's classifier gets two more classes for them, is retrained with those samples
//! labeled, and a score s becomes
//!
//!   s' = (1 - p_fp) / (1 - p_fn) * s
//!
//! with p_fp, p_fn the classifier's probabilities of the two feedback classes. Samples that
//! look like a reported false positive are pulled down, those that look like a missed anomaly
//! pushed up, and everything the feedback says nothing about (p_fp, p_fn near 0) keeps its
//! score, so the detector's ranking changes only where the user spoke.
//!
//! Why the score must be positive: the factor only moves a score towards "normal" when it
//! shrinks its magnitude, which needs s > 0 (for s < 0 a high p_fp would RAISE the score).
//! The image models' score is the Bernoulli negative log-likelihood, a sum over pixels of
//! -[x ln p + (1 - x) ln(1 - p)] with x, p in [0, 1]: every term is >= 0, so s >= 0 and eq. 6
//! applies as written (`offset` 0). A continuous likelihood (the RNN's Gaussian) can give a
//! negative NLL; there the caller passes an `offset` below every score it expects (e.g. the
//! minimum score over the training data) and eq. 6 acts on s - offset, floored at 0 for test
//! points below it. An affine shift keeps the raw ranking (and its AUC) unchanged.
//!
//! The denominator is kept at least [`MIN_DENOMINATOR`] so a classifier certain of "missed
//! anomaly" gives a large, finite score rather than infinity (ties among such points would
//! otherwise carry no ranking).

/// Smallest value of 1 - p_fn used in the division.
pub const MIN_DENOMINATOR: f64 = 1e-6;

/// Where the two feedback classes sit in a classifier of `base + 2` outputs: the dataset's
/// classes first (unchanged indices), then false positive, then false negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FeedbackClasses {
    /// The dataset's classes before feedback.
    pub base: usize,
}

impl FeedbackClasses {
    /// Class index of "false positive: this is normal".
    pub fn false_positive(&self) -> usize {
        self.base
    }
    /// Class index of "false negative: this is an anomaly".
    pub fn false_negative(&self) -> usize {
        self.base + 1
    }
    /// Classifier outputs with feedback.
    pub fn total(&self) -> usize {
        self.base + 2
    }
}

/// Equation 6 for one sample: `(1 - p_fp) / (1 - p_fn) * max(score - offset, 0)`.
pub fn adjust_score(score: f64, p_fp: f64, p_fn: f64, offset: f64) -> f64 {
    let s = (score - offset).max(0.0);
    let (p_fp, p_fn) = (p_fp.clamp(0.0, 1.0), p_fn.clamp(0.0, 1.0));
    (1.0 - p_fp) / (1.0 - p_fn).max(MIN_DENOMINATOR) * s
}

/// Equation 6 for every sample: `probs` holds `classes.total()` probabilities per sample (the
/// classifier's softmax), `scores` one score per sample.
pub fn adjusted_scores(scores: &[f64], probs: &[f32], classes: FeedbackClasses, offset: f64) -> crate::error::Result<Vec<f64>> {
    let k = classes.total();
    if probs.len() != scores.len() * k {
        return Err(crate::error::Error::Invalid(format!(
            "feedback scores: {} class probabilities for {} samples, expected {} per sample (the classifier has no feedback classes?)",
            probs.len(),
            scores.len(),
            k
        )));
    }
    Ok(scores
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let row = &probs[i * k..(i + 1) * k];
            adjust_score(s, row[classes.false_positive()] as f64, row[classes.false_negative()] as f64, offset)
        })
        .collect())
}
