//! Semi-unsupervised learning (Willetts et al., GM-DGM): only some classes keep labels, the
//! others are learned without any, possibly into extra slots of the classifier. Labels are
//! drawn from the labeled classes only; the model is scored by cluster-and-label
//! (`crate::eval::cluster::cluster_scores`).

use crate::error::{Error, Result};

/// A class-balanced labeled subset drawn only from `labeled_classes` (`count` in all, split
/// evenly over those classes as `data::label_subset` does). Sorted indices.
pub fn labeled_subset_in_classes(labels: &[u8], classes: usize, labeled_classes: &[usize], count: usize, seed: u64) -> Result<Vec<usize>> {
    if labeled_classes.is_empty() {
        return Err(Error::Invalid("--labeled-classes: give at least one class".into()));
    }
    let mut map = vec![None; classes];
    for (i, &c) in labeled_classes.iter().enumerate() {
        if c >= classes {
            return Err(Error::Invalid(format!("--labeled-classes: class {c} is out of range (classes 0..{})", classes - 1)));
        }
        if map[c].is_some() {
            return Err(Error::Invalid(format!("--labeled-classes: class {c} is listed twice")));
        }
        map[c] = Some(i as u8);
    }
    let keep: Vec<usize> = (0..labels.len()).filter(|&i| map[labels[i] as usize].is_some()).collect();
    let sub: Vec<u8> = keep.iter().map(|&i| map[labels[i] as usize].expect("kept")).collect();
    let chosen = crate::data::label_subset(&sub, labeled_classes.len(), count, seed)?;
    Ok(chosen.into_iter().map(|j| keep[j]).collect())
}
