//! Choosing which training samples keep their labels.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::error::{Error, Result};

/// Indices of each class, in order; errors on a label `>= classes`.
fn by_class(labels: &[u8], classes: usize) -> Result<Vec<Vec<usize>>> {
    if classes == 0 {
        return Err(Error::Invalid("classes must be at least 1".into()));
    }
    let mut per = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        let l = l as usize;
        if l >= classes {
            return Err(Error::Invalid(format!("label {l} of sample {i} is out of range for {classes} classes")));
        }
        per[l].push(i);
    }
    Ok(per)
}

/// `quota[c]` indices drawn without replacement from each class, seeded, sorted.
fn draw(per: Vec<Vec<usize>>, quota: &[usize], seed: u64) -> Vec<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(quota.iter().sum());
    for (mut idx, &q) in per.into_iter().zip(quota) {
        let (chosen, _) = idx.partial_shuffle(&mut rng, q);
        out.extend_from_slice(chosen);
    }
    out.sort_unstable();
    out
}

/// A class-balanced, seeded choice of `count` labeled samples: `count / classes` of every class,
/// and one more for each of the first `count % classes` classes. Returns sorted indices into
/// `labels`. Errors when `count` exceeds the number of samples, when a class has fewer samples
/// than its share, or on a label `>= classes`. `count = 0` gives an empty set.
pub fn label_subset(labels: &[u8], classes: usize, count: usize, seed: u64) -> Result<Vec<usize>> {
    let n = labels.len();
    if count > n {
        return Err(Error::Invalid(format!("--labels {count} exceeds the {n} training samples")));
    }
    let per = by_class(labels, classes)?;
    let quota: Vec<usize> = (0..classes).map(|c| count / classes + usize::from(c < count % classes)).collect();
    for (c, (idx, &q)) in per.iter().zip(&quota).enumerate() {
        if idx.len() < q {
            return Err(Error::Invalid(format!(
                "--labels {count} needs {q} labeled samples of class {c} (class-balanced), but the training set has only {}",
                idx.len()
            )));
        }
    }
    Ok(draw(per, &quota, seed))
}

/// A seeded, stratified fraction of the training set: `round(fraction * n)` labeled samples
/// (at least 1), split over the classes in proportion to their sizes (largest remainders get the
/// rounding), so `fraction = 1` labels everything. `fraction` must be in (0, 1]. Sorted indices.
///
/// Stratified rather than class-balanced: with a balanced choice a large fraction would fail on
/// any imbalanced set (MNIST has 5421 fives, so 1.0 would ask for 6000 of each class). For
/// small label counts use [`label_subset`].
pub fn label_fraction(labels: &[u8], classes: usize, fraction: f64, seed: u64) -> Result<Vec<usize>> {
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(Error::Invalid(format!("--label-fraction {fraction} must be in (0, 1]")));
    }
    let n = labels.len();
    if n == 0 {
        return Err(Error::Invalid("--label-fraction: the training set is empty".into()));
    }
    let per = by_class(labels, classes)?;
    let count = ((fraction * n as f64).round() as usize).clamp(1, n);
    // Largest-remainder apportionment of `count` over the class sizes.
    let exact: Vec<f64> = per.iter().map(|p| p.len() as f64 * count as f64 / n as f64).collect();
    let mut quota: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut order: Vec<usize> = (0..classes).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
    let mut left = count - quota.iter().sum::<usize>();
    for &c in order.iter().cycle() {
        if left == 0 {
            break;
        }
        if quota[c] < per[c].len() {
            quota[c] += 1;
            left -= 1;
        }
    }
    Ok(draw(per, &quota, seed))
}
