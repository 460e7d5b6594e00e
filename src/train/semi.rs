//! Semi-unsupervised learning (Willetts et al., GM-DGM): only some classes keep labels, the
//! others are learned without any, possibly into extra slots of the classifier. Labels are
//! drawn from the labeled classes only, and the model is scored by cluster-and-label
//! (`eval::cluster`): each slot is mapped to the majority true class of the TRAINING points
//! assigned to it, then the test set is scored through that map, overall and over the labeled
//! and unlabeled classes separately.
//!
//! Assignments come from q(y|x) alone: an encoder + pi graph (the ES graph, whose parameters
//! `enc*` and `pi` are shared by name with every classifier kind) over the split, so scoring
//! an M2 / GM-DGM does not pay the K-fold expanded decoder pass.

use super::Evaluator;
use crate::backend::Backend;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::cluster::{cluster_and_label_keeping, ClusterLabel};
use crate::graph::exec::ParamStore;
use crate::model::{Kind, ModelSpec};

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

/// Cluster-and-label scores of a trained classifier.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ClusterScores {
    pub accuracy: f64,
    /// Over the test points of the classes that had labels (`None` without such points).
    pub labeled_class_accuracy: Option<f64>,
    /// Over the test points of the classes that had none (`None` when every class had labels).
    pub unlabeled_class_accuracy: Option<f64>,
    /// The class each slot was mapped to.
    pub slot_class: Vec<Option<usize>>,
    /// The GM-DGM paper's rule (`eval::cluster::cluster_and_label_keeping`): the labeled
    /// classes' slots keep their class, only the others are mapped by majority. `None` when
    /// every class had labels.
    pub labeled_slots_kept: Option<GroupAccuracy>,
}

/// Accuracy overall and over the labeled / unlabeled classes' test points.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GroupAccuracy {
    pub accuracy: f64,
    pub labeled_class_accuracy: Option<f64>,
    pub unlabeled_class_accuracy: Option<f64>,
}

impl GroupAccuracy {
    fn of(c: &ClusterLabel, labeled_classes: &[usize], classes: usize) -> Result<Self> {
        if labeled_classes.is_empty() {
            return Ok(GroupAccuracy {
                accuracy: c.accuracy(),
                labeled_class_accuracy: Some(c.accuracy()),
                unlabeled_class_accuracy: None,
            });
        }
        let unlabeled: Vec<usize> = (0..classes).filter(|k| !labeled_classes.contains(k)).collect();
        Ok(GroupAccuracy {
            accuracy: c.accuracy(),
            labeled_class_accuracy: c.accuracy_on(labeled_classes)?,
            unlabeled_class_accuracy: c.accuracy_on(&unlabeled)?,
        })
    }
}

/// Scores the classifier of `spec` (weights in `store`) by cluster-and-label: slots mapped with
/// `train`, accuracy on `test`. `labeled_classes` empty means every class had labels.
pub fn cluster_scores<B: Backend>(
    be: &B,
    spec: &ModelSpec,
    store: &ParamStore<B>,
    train: &Dataset,
    test: &Dataset,
    labeled_classes: &[usize],
    batch: usize,
    seed: u64,
) -> Result<ClusterScores> {
    if !spec.has_classifier() {
        return Err(Error::Invalid(format!("cluster-and-label needs a model with a classifier, not {}", spec.name())));
    }
    let mut cls = spec.clone();
    cls.kind = Kind::Es;
    let assign = |data: &Dataset| -> Result<Vec<usize>> {
        let e = Evaluator::new(be, &cls, store, data, batch)?;
        Ok(e.assignments(be, seed)?.expect("a classifier has pi"))
    };
    let (tr, te) = (assign(train)?, assign(test)?);
    let lab = |d: &Dataset| d.labels.iter().map(|&y| y as usize).collect::<Vec<_>>();
    let score = |kept: &[usize]| cluster_and_label_keeping(&tr, &lab(train), &te, &lab(test), spec.classes, train.classes, kept);
    let c = score(&[])?;
    let g = GroupAccuracy::of(&c, labeled_classes, train.classes)?;
    let kept =
        if labeled_classes.is_empty() { None } else { Some(GroupAccuracy::of(&score(labeled_classes)?, labeled_classes, train.classes)?) };
    Ok(ClusterScores {
        accuracy: g.accuracy,
        labeled_class_accuracy: g.labeled_class_accuracy,
        unlabeled_class_accuracy: g.unlabeled_class_accuracy,
        slot_class: c.slot_class,
        labeled_slots_kept: kept,
    })
}
