//! The betaVAE disentanglement metric (Higgins et al., ICLR 2017), which the paper uses in
//! section 4 (Table 12) to show that labels improve the latent representation.
//!
//! A *vote*: pick a generating factor k uniformly at random; draw L pairs of samples that share
//! the value of factor k while all other factors are drawn independently; encode both members of
//! every pair to their latent means; the vote's feature is the mean over the L pairs of
//! |z1 - z2|, and its label is k. If the representation is disentangled, the coordinates that
//! code factor k barely differ within the pairs, so a *low-capacity linear* classifier can read k
//! off the feature. The score is that classifier's accuracy on held-out votes; chance is
//! 1 / (number of factors). The paper's settings, our defaults: L = 64 ("2 x 64 batches"), 2048
//! training and 2048 test votes, "a plain logistic regressor".
//!
//! The classifier is written here rather than pulled from a crate: multinomial logistic
//! regression on features standardised with the training votes' mean and deviation, with a bias
//! and a small L2 penalty (so that separable votes keep finite weights), fitted by full-batch
//! Nesterov-accelerated gradient descent from zero weights with step 1 / L, where L bounds the
//! loss's curvature (half the largest eigenvalue of the feature Gram matrix, by power iteration,
//! plus the penalty). No randomness and a fixed iteration count make it a deterministic function
//! of its inputs, so a score is a deterministic function of the seed and the encoder.
//!
//! The metric is generic: [`beta_vae_score`] takes any encoder closure (images to latent means)
//! and any pair source (e.g. [`crate::data::sprites::sprite_pair_images`]);
//! [`beta_vae_score_of_code`] scores a representation given directly as a function of the factor
//! values, which is how the metric itself is tested on codes whose answer is known;
//! [`beta_vae_score_of_latents`] scores precomputed latent means of a finite dataset with known
//! factors (e.g. [`crate::data::sprites::sprites`]), drawing each pair's partner from the samples
//! that share the factor's value.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};

/// Settings of the linear classifier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogisticConfig {
    /// Full-batch gradient steps.
    pub iterations: usize,
    /// L2 penalty on the weights (not the bias), per mean loss.
    pub l2: f64,
}

impl Default for LogisticConfig {
    fn default() -> Self {
        LogisticConfig { iterations: 500, l2: 1e-4 }
    }
}

/// Settings of the betaVAE metric; the defaults are the paper's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BetaVaeConfig {
    /// L: pairs averaged into one vote.
    pub pairs_per_vote: usize,
    pub train_votes: usize,
    pub test_votes: usize,
    /// Seeds the factor choices and the pair draws (training and test votes use two streams).
    pub seed: u64,
    /// Votes whose images go to the encoder in one call (`2 * pairs_per_vote` rows each), so a
    /// GPU encoder sees large batches.
    pub votes_per_encode: usize,
    pub classifier: LogisticConfig,
}

impl Default for BetaVaeConfig {
    fn default() -> Self {
        BetaVaeConfig {
            pairs_per_vote: 64,
            train_votes: 2048,
            test_votes: 2048,
            seed: 0,
            votes_per_encode: 8,
            classifier: LogisticConfig::default(),
        }
    }
}

/// The outcome of the betaVAE metric.
#[derive(Clone, Debug, PartialEq)]
pub struct BetaVaeScore {
    /// Accuracy of the linear classifier on the votes it was fitted to.
    pub train_accuracy: f64,
    /// Accuracy on held-out votes: the betaVAE score.
    pub test_accuracy: f64,
    /// Test accuracy among the votes of each factor (`None` where no test vote chose it).
    pub per_factor_test_accuracy: Vec<Option<f64>>,
    /// Dimension of the representation.
    pub latent_dim: usize,
}

/// Multinomial logistic regression on standardised features.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearClassifier {
    dim: usize,
    classes: usize,
    mean: Vec<f64>,
    inv_std: Vec<f64>,
    /// `classes x (dim + 1)`, the bias last.
    weights: Vec<f64>,
}

fn check_rows(x: &[f64], dim: usize, what: &str) -> Result<usize> {
    if dim == 0 || x.len() % dim != 0 {
        return Err(Error::Invalid(format!("{what}: {} values are not rows of {dim} features", x.len())));
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::Invalid(format!("{what}: value {i} is {} (features must be finite)", x[i])));
    }
    Ok(x.len() / dim)
}

impl LinearClassifier {
    /// Fits the classifier to `x` (`n x dim`, row major) with labels `y` (each `< classes`).
    pub fn fit(x: &[f64], y: &[usize], dim: usize, classes: usize, cfg: &LogisticConfig) -> Result<Self> {
        let n = check_rows(x, dim, "classifier training set")?;
        if n == 0 || n != y.len() {
            return Err(Error::Invalid(format!(
                "classifier training set: {n} rows but {} labels (need at least one of each, as many labels as rows)",
                y.len()
            )));
        }
        if classes == 0 {
            return Err(Error::Invalid("the classifier needs at least one class".into()));
        }
        if let Some(&bad) = y.iter().find(|&&c| c >= classes) {
            return Err(Error::Invalid(format!("label {bad} is not below the number of classes ({classes})")));
        }
        if !(cfg.l2 >= 0.0 && cfg.l2.is_finite()) {
            return Err(Error::Invalid(format!("the L2 penalty must be finite and >= 0, got {}", cfg.l2)));
        }
        let mut mean = vec![0f64; dim];
        for row in x.chunks(dim) {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += v / n as f64);
        }
        let mut var = vec![0f64; dim];
        for row in x.chunks(dim) {
            var.iter_mut().zip(row).zip(&mean).for_each(|((s, v), m)| *s += (v - m) * (v - m) / n as f64);
        }
        // a constant feature carries nothing: centred to 0, it stays 0
        let inv_std: Vec<f64> = var.iter().map(|&v| if v > 1e-24 { 1.0 / v.sqrt() } else { 1.0 }).collect();
        let mut clf = LinearClassifier { dim, classes, mean, inv_std, weights: vec![0.0; classes * (dim + 1)] };
        let z = clf.standardise(x);
        clf.weights = descend(&z, y, dim + 1, classes, cfg);
        Ok(clf)
    }

    /// Standardised rows with a trailing 1 (the bias input).
    fn standardise(&self, x: &[f64]) -> Vec<f64> {
        let mut z = Vec::with_capacity(x.len() / self.dim * (self.dim + 1));
        for row in x.chunks(self.dim) {
            z.extend(row.iter().zip(&self.mean).zip(&self.inv_std).map(|((v, m), s)| (v - m) * s));
            z.push(1.0);
        }
        z
    }

    /// The most probable class of each row of `x` (`n x dim`); ties go to the smaller class.
    pub fn predict(&self, x: &[f64]) -> Result<Vec<usize>> {
        check_rows(x, self.dim, "classifier input")?;
        let z = self.standardise(x);
        let mut logits = vec![0f64; self.classes];
        Ok(z.chunks(self.dim + 1)
            .map(|row| {
                logits_into(&self.weights, row, &mut logits);
                argmax(&logits)
            })
            .collect())
    }

    /// Fraction of rows of `x` whose predicted class is the label in `y`.
    pub fn accuracy(&self, x: &[f64], y: &[usize]) -> Result<f64> {
        let pred = self.predict(x)?;
        if pred.len() != y.len() || pred.is_empty() {
            return Err(Error::Invalid(format!("accuracy over {} rows with {} labels", pred.len(), y.len())));
        }
        Ok(pred.iter().zip(y).filter(|(p, t)| p == t).count() as f64 / y.len() as f64)
    }
}

fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

fn logits_into(w: &[f64], row: &[f64], out: &mut [f64]) {
    for (c, o) in out.iter_mut().enumerate() {
        *o = w[c * row.len()..(c + 1) * row.len()].iter().zip(row).map(|(a, b)| a * b).sum();
    }
}

/// Gradient of the mean cross-entropy plus `l2/2 |W|^2` (bias excluded) at `w`.
fn gradient(z: &[f64], y: &[usize], w: &[f64], p: usize, classes: usize, l2: f64, grad: &mut [f64]) {
    let n = y.len() as f64;
    grad.fill(0.0);
    let mut prob = vec![0f64; classes];
    for (row, &t) in z.chunks(p).zip(y) {
        logits_into(w, row, &mut prob);
        let max = prob.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let mut sum = 0.0;
        for q in prob.iter_mut() {
            *q = (*q - max).exp();
            sum += *q;
        }
        for (c, q) in prob.iter().enumerate() {
            let r = q / sum - f64::from(c == t);
            grad[c * p..(c + 1) * p].iter_mut().zip(row).for_each(|(g, v)| *g += r * v / n);
        }
    }
    for c in 0..classes {
        for j in 0..p - 1 {
            grad[c * p + j] += l2 * w[c * p + j];
        }
    }
}

/// Nesterov-accelerated gradient descent with step 1 / L from zero weights.
fn descend(z: &[f64], y: &[usize], p: usize, classes: usize, cfg: &LogisticConfig) -> Vec<f64> {
    let n = y.len() as f64;
    // largest eigenvalue of Z^T Z / n by power iteration; the softmax Hessian is at most half of it
    let mut v = vec![1.0 / (p as f64).sqrt(); p];
    let mut lambda = 0.0;
    for _ in 0..100 {
        let mut next = vec![0f64; p];
        for row in z.chunks(p) {
            let dot: f64 = row.iter().zip(&v).map(|(a, b)| a * b).sum();
            next.iter_mut().zip(row).for_each(|(o, a)| *o += dot * a / n);
        }
        lambda = next.iter().map(|a| a * a).sum::<f64>().sqrt();
        if lambda == 0.0 {
            break;
        }
        next.iter_mut().for_each(|a| *a /= lambda);
        v = next;
    }
    // 1.05: a margin for the power iteration approaching the eigenvalue from below
    let step = 1.0 / (0.5 * lambda * 1.05 + cfg.l2).max(1e-12);
    let mut w = vec![0f64; classes * p];
    let mut prev = w.clone();
    let mut look = w.clone();
    let mut grad = vec![0f64; w.len()];
    for t in 0..cfg.iterations {
        gradient(z, y, &look, p, classes, cfg.l2, &mut grad);
        let momentum = t as f64 / (t as f64 + 3.0);
        for i in 0..w.len() {
            let next = look[i] - step * grad[i];
            look[i] = next + momentum * (next - prev[i]);
            prev[i] = next;
        }
        w.copy_from_slice(&prev);
    }
    w
}

fn check_config(cfg: &BetaVaeConfig, num_factors: usize) -> Result<()> {
    if num_factors < 2 {
        return Err(Error::Invalid(format!("the betaVAE metric needs at least 2 generating factors, got {num_factors}")));
    }
    if cfg.pairs_per_vote == 0 || cfg.train_votes == 0 || cfg.test_votes == 0 || cfg.votes_per_encode == 0 {
        return Err(Error::Invalid(format!(
            "betaVAE settings must be positive: pairs per vote {}, training votes {}, test votes {}, votes per encoder call {}",
            cfg.pairs_per_vote, cfg.train_votes, cfg.test_votes, cfg.votes_per_encode
        )));
    }
    Ok(())
}

/// `votes` vote features (`votes x d`) and their factors, drawn with `rng`.
fn collect_votes<E, P>(
    encode: &mut E,
    draw_pairs: &mut P,
    num_factors: usize,
    votes: usize,
    cfg: &BetaVaeConfig,
    rng: &mut StdRng,
    dim: &mut Option<usize>,
) -> Result<(Vec<f64>, Vec<usize>)>
where
    E: FnMut(&[f32], usize) -> Result<Vec<f32>>,
    P: FnMut(usize, usize, &mut StdRng) -> Result<(Vec<f32>, Vec<f32>)>,
{
    let l = cfg.pairs_per_vote;
    let mut features = Vec::new();
    let mut labels = Vec::with_capacity(votes);
    let mut input = Vec::new();
    let mut done = 0;
    while done < votes {
        let chunk = cfg.votes_per_encode.min(votes - done);
        input.clear();
        let mut sample_dim = None;
        for _ in 0..chunk {
            let k = rng.random_range(0..num_factors);
            let (a, b) = draw_pairs(k, l, rng)?;
            if a.len() != b.len() || a.is_empty() || a.len() % l != 0 || sample_dim.is_some_and(|d| d != a.len() / l) {
                return Err(Error::Invalid(format!(
                    "the pair source returned {} and {} values for {l} pairs: need two equal, non-empty sets of {l} samples of one size",
                    a.len(),
                    b.len()
                )));
            }
            sample_dim = Some(a.len() / l);
            input.extend_from_slice(&a);
            input.extend_from_slice(&b);
            labels.push(k);
        }
        let rows = 2 * l * chunk;
        let z = encode(&input, rows)?;
        if z.is_empty() || z.len() % rows != 0 || dim.is_some_and(|d| d != z.len() / rows) {
            return Err(Error::Invalid(format!(
                "the encoder returned {} values for {rows} rows: need the same non-zero number of latent means per row in every call{}",
                z.len(),
                dim.map(|d| format!(" ({d} so far)")).unwrap_or_default()
            )));
        }
        if let Some(i) = z.iter().position(|v| !v.is_finite()) {
            return Err(Error::Invalid(format!("the encoder returned a non-finite latent mean ({}) at value {i}", z[i])));
        }
        let d = z.len() / rows;
        *dim = Some(d);
        for vote in z.chunks(2 * l * d) {
            let (za, zb) = vote.split_at(l * d);
            let mut f = vec![0f64; d];
            for (ra, rb) in za.chunks(d).zip(zb.chunks(d)) {
                f.iter_mut().zip(ra.iter().zip(rb)).for_each(|(o, (a, b))| *o += (*a as f64 - *b as f64).abs() / l as f64);
            }
            features.extend(f);
        }
        done += chunk;
    }
    Ok((features, labels))
}

/// The betaVAE score of an encoder. `encode(images, rows)` returns the latent means (`rows x d`,
/// row major) of `rows` samples given row major; `draw_pairs(k, pairs, rng)` returns the first
/// and the second members of `pairs` pairs of samples sharing factor `k` (e.g.
/// [`crate::data::sprites::sprite_pair_images`]); `num_factors` is the number of factors votes
/// choose from. Deterministic for `cfg.seed` when both closures are.
pub fn beta_vae_score<E, P>(mut encode: E, mut draw_pairs: P, num_factors: usize, cfg: &BetaVaeConfig) -> Result<BetaVaeScore>
where
    E: FnMut(&[f32], usize) -> Result<Vec<f32>>,
    P: FnMut(usize, usize, &mut StdRng) -> Result<(Vec<f32>, Vec<f32>)>,
{
    check_config(cfg, num_factors)?;
    let mut dim = None;
    let mut train_rng = StdRng::seed_from_u64(cfg.seed ^ 0xBE7A_0000_0000_0001);
    let mut test_rng = StdRng::seed_from_u64(cfg.seed ^ 0xBE7A_0000_0000_0002);
    let (train_x, train_y) = collect_votes(&mut encode, &mut draw_pairs, num_factors, cfg.train_votes, cfg, &mut train_rng, &mut dim)?;
    let (test_x, test_y) = collect_votes(&mut encode, &mut draw_pairs, num_factors, cfg.test_votes, cfg, &mut test_rng, &mut dim)?;
    let d = dim.expect("at least one vote was encoded");
    let clf = LinearClassifier::fit(&train_x, &train_y, d, num_factors, &cfg.classifier)?;
    let pred = clf.predict(&test_x)?;
    let per_factor_test_accuracy = (0..num_factors)
        .map(|k| {
            let (hit, all) =
                pred.iter().zip(&test_y).filter(|(_, &t)| t == k).fold((0, 0), |(h, a), (p, t)| (h + usize::from(p == t), a + 1));
            (all > 0).then(|| hit as f64 / all as f64)
        })
        .collect();
    Ok(BetaVaeScore {
        train_accuracy: clf.accuracy(&train_x, &train_y)?,
        test_accuracy: pred.iter().zip(&test_y).filter(|(p, t)| p == t).count() as f64 / test_y.len() as f64,
        per_factor_test_accuracy,
        latent_dim: d,
    })
}

/// The betaVAE score of a representation given as a function of the factor values: `code`
/// maps one factor vector (each factor `k` uniform over `0..factor_sizes[k]`) to its latent
/// vector. Pairs are drawn over the whole factor grid as in [`beta_vae_score`].
pub fn beta_vae_score_of_code<C>(mut code: C, factor_sizes: &[usize], cfg: &BetaVaeConfig) -> Result<BetaVaeScore>
where
    C: FnMut(&[usize]) -> Vec<f32>,
{
    if let Some(k) = factor_sizes.iter().position(|&s| s == 0) {
        return Err(Error::Invalid(format!("factor {k} has no values")));
    }
    if let Some(k) = factor_sizes.iter().position(|&s| s > 1 << 24) {
        return Err(Error::Invalid(format!("factor {k} has {} values: at most 2^24 are supported", factor_sizes[k])));
    }
    let f = factor_sizes.len();
    // the "samples" are the factor vectors themselves, as f32 rows (exact for any real size)
    let draw_pairs = |k: usize, pairs: usize, rng: &mut StdRng| -> Result<(Vec<f32>, Vec<f32>)> {
        let (mut a, mut b) = (Vec::with_capacity(pairs * f), Vec::with_capacity(pairs * f));
        for _ in 0..pairs {
            let first: Vec<usize> = factor_sizes.iter().map(|&s| rng.random_range(0..s)).collect();
            let mut second: Vec<usize> = factor_sizes.iter().map(|&s| rng.random_range(0..s)).collect();
            second[k] = first[k];
            a.extend(first.iter().map(|&v| v as f32));
            b.extend(second.iter().map(|&v| v as f32));
        }
        Ok((a, b))
    };
    let mut factors = vec![0usize; f];
    let encode = |rows: &[f32], _n: usize| -> Result<Vec<f32>> {
        let mut out = Vec::new();
        let mut dim = None;
        for row in rows.chunks(f) {
            factors.iter_mut().zip(row).for_each(|(o, &v)| *o = v as usize);
            let z = code(&factors);
            if dim.is_some_and(|d| d != z.len()) {
                return Err(Error::Invalid(format!(
                    "the code gave vectors of {} and {} values: it must give one length",
                    dim.unwrap_or(0),
                    z.len()
                )));
            }
            dim = Some(z.len());
            out.extend(z);
        }
        Ok(out)
    };
    beta_vae_score(encode, draw_pairs, f, cfg)
}

/// The betaVAE score of precomputed latent means of a finite dataset: sample `i` has the factor
/// values `factors[i]` (each of `num_factors` entries) and the latent means
/// `latents[i * d..(i + 1) * d]`. A pair sharing factor k is a uniformly drawn sample and a
/// uniformly drawn sample with the same value of k (possibly itself), so the other factors
/// follow the dataset's own distribution: the way the metric is computed on a fixed set such as
/// Small-NORB, and the cheap way with a model (encode the set once, e.g. with
/// [`crate::eval::Scorer::latent_means`], then score).
pub fn beta_vae_score_of_latents<F: AsRef<[usize]>>(factors: &[F], latents: &[f32], cfg: &BetaVaeConfig) -> Result<BetaVaeScore> {
    let n = factors.len();
    if n == 0 || latents.is_empty() || latents.len() % n != 0 {
        return Err(Error::Invalid(format!(
            "{} latent values for {n} samples: need a non-empty set with the same number of values per sample",
            latents.len()
        )));
    }
    if n >= 1 << 24 {
        return Err(Error::Invalid(format!("{n} samples: at most 2^24 are supported")));
    }
    let d = latents.len() / n;
    let num_factors = factors[0].as_ref().len();
    if let Some(i) = factors.iter().position(|f| f.as_ref().len() != num_factors) {
        return Err(Error::Invalid(format!("sample {i} has {} factor values, sample 0 has {num_factors}", factors[i].as_ref().len())));
    }
    // samples by (factor, value), to draw partners sharing a value
    let mut by_value: Vec<std::collections::BTreeMap<usize, Vec<u32>>> = vec![Default::default(); num_factors];
    for (i, f) in factors.iter().enumerate() {
        for (k, &v) in f.as_ref().iter().enumerate() {
            by_value[k].entry(v).or_default().push(i as u32);
        }
    }
    // the "samples" handed to the encoder are sample indices (exact in f32 below 2^24)
    let draw_pairs = |k: usize, pairs: usize, rng: &mut StdRng| -> Result<(Vec<f32>, Vec<f32>)> {
        let (mut a, mut b) = (Vec::with_capacity(pairs), Vec::with_capacity(pairs));
        for _ in 0..pairs {
            let i = rng.random_range(0..n);
            let same = &by_value[k][&factors[i].as_ref()[k]];
            a.push(i as f32);
            b.push(same[rng.random_range(0..same.len())] as f32);
        }
        Ok((a, b))
    };
    let encode = |rows: &[f32], _n: usize| -> Result<Vec<f32>> {
        Ok(rows.iter().flat_map(|&i| latents[i as usize * d..(i as usize + 1) * d].iter().copied()).collect())
    };
    beta_vae_score(encode, draw_pairs, num_factors, cfg)
}
