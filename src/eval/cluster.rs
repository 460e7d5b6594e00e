//! Cluster-and-label accuracy, the score of semi-unsupervised models (Willetts et al., GM-DGM):
//! a model with K discrete slots (the argmax of its pi head) learns some classes from labels and
//! others without any, so a slot's meaning is not known in advance. Each slot is attributed the
//! class most common among the points assigned to it, and accuracy is computed through that map.
//!
//! Decisions the paper leaves open:
//! - The map is built from the *training* points' assignments and labels, then applied to the
//!   test points. The GM-DGM paper attributes slots "at test time"; mapping with the test labels
//!   lets them leak into the score (with many slots it approaches a nearest-cluster oracle), so
//!   we do not. To reproduce the paper's variant, pass the test set as the training set too.
//! - A slot that no training point was assigned to maps to no class: test points landing there
//!   count as wrong.
//! - Ties in a slot's majority go to the smallest class id, so the map is deterministic.
//! - Every slot is mapped by majority, the slots of labeled classes included (the rule).
//!   The GM-DGM paper attributes only "the learnt, unsupervised classes" by majority, so a
//!   labeled class's slot keeps its class even when another class fills it:
//!   [`cluster_and_label_keeping`] scores that variant, given the classes whose slot is kept.
//! - Reported as in the paper's Table 1: overall accuracy, per-class accuracy (over the test
//!   points of each true class), and the accuracy over a group of classes (e.g. the classes that
//!   had labels vs those that had none), again over the test points whose true class is in it.
//!
//! Scoring a trained model ([`cluster_scores`]): each slot is mapped to the majority true class
//! of the TRAINING points assigned to it, then the test set is scored through that map, overall
//! and over the labeled and unlabeled classes separately. Assignments come from q(y|x) alone: an
//! encoder + pi graph (the ES graph, whose parameters `enc*` and `pi` are shared by name with
//! every classifier kind) over the split, so scoring an M2 / GM-DGM does not pay the K-fold
//! expanded decoder pass.

use crate::backend::Backend;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::graph::exec::ParamStore;
use crate::model::{Kind, ModelSpec};
use crate::train::Evaluator;

/// Lives in `train` (the trainer's evaluator assigns slots with it); re-exported here beside
/// the scores that consume its output.
pub use crate::train::argmax_rows;

/// The slot-to-class map and the test scores of cluster-and-label.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterLabel {
    /// The class each slot stands for; `None` for a slot no training point was assigned to.
    pub slot_class: Vec<Option<usize>>,
    /// Per true class: test points correctly labeled through the map.
    pub correct: Vec<usize>,
    /// Per true class: test points.
    pub total: Vec<usize>,
}

impl ClusterLabel {
    /// Fraction of all test points labeled correctly.
    pub fn accuracy(&self) -> f64 {
        self.correct.iter().sum::<usize>() as f64 / self.total.iter().sum::<usize>().max(1) as f64
    }

    /// Accuracy among the test points of each true class (`None` for a class absent from the
    /// test set).
    pub fn per_class_accuracy(&self) -> Vec<Option<f64>> {
        self.correct.iter().zip(&self.total).map(|(&c, &t)| (t > 0).then(|| c as f64 / t as f64)).collect()
    }

    /// Accuracy among the test points whose true class is in `classes` (repeats count once);
    /// `None` when there are no such points. An error for a class id out of range.
    pub fn accuracy_on(&self, classes: &[usize]) -> Result<Option<f64>> {
        let mut chosen = vec![false; self.total.len()];
        for &c in classes {
            *chosen.get_mut(c).ok_or_else(|| Error::Invalid(format!("class {c} is out of range ({} classes)", self.total.len())))? = true;
        }
        let (hit, all) =
            chosen.iter().enumerate().filter(|(_, &on)| on).fold((0, 0), |(h, a), (c, _)| (h + self.correct[c], a + self.total[c]));
        Ok((all > 0).then(|| hit as f64 / all as f64))
    }

    /// The class predicted for a point assigned to `slot` (`None` for an unmapped slot or one
    /// out of range).
    pub fn predict(&self, slot: usize) -> Option<usize> {
        self.slot_class.get(slot).copied().flatten()
    }
}

fn check(slots: &[usize], labels: &[usize], num_slots: usize, classes: usize, what: &str) -> Result<()> {
    if slots.len() != labels.len() {
        return Err(Error::Invalid(format!("{what}: {} slot assignments but {} labels", slots.len(), labels.len())));
    }
    if slots.is_empty() {
        return Err(Error::Invalid(format!("{what}: no points")));
    }
    if let Some(&s) = slots.iter().find(|&&s| s >= num_slots) {
        return Err(Error::Invalid(format!("{what}: slot {s} is out of range ({num_slots} slots)")));
    }
    if let Some(&c) = labels.iter().find(|&&c| c >= classes) {
        return Err(Error::Invalid(format!("{what}: class {c} is out of range ({classes} classes)")));
    }
    Ok(())
}

/// The class of each slot: the majority true class among the training points assigned to it
/// (ties to the smallest class), `None` for a slot without training points.
pub fn slot_majority(train_slots: &[usize], train_labels: &[usize], num_slots: usize, classes: usize) -> Result<Vec<Option<usize>>> {
    check(train_slots, train_labels, num_slots, classes, "cluster-and-label training set")?;
    let mut counts = vec![0usize; num_slots * classes];
    for (&s, &c) in train_slots.iter().zip(train_labels) {
        counts[s * classes + c] += 1;
    }
    Ok(counts
        .chunks(classes)
        .map(|row| {
            // strict > keeps the first (smallest) class among equal counts
            let best = (0..classes).fold(0, |b, c| if row[c] > row[b] { c } else { b });
            (row[best] > 0).then_some(best)
        })
        .collect())
}

/// Cluster-and-label: maps slots to classes with the training points ([`slot_majority`]) and
/// scores the test points' assignments. `*_slots` are slot ids `< num_slots` (e.g. from
/// [`argmax_rows`]), `*_labels` true classes `< classes`.
pub fn cluster_and_label(
    train_slots: &[usize],
    train_labels: &[usize],
    test_slots: &[usize],
    test_labels: &[usize],
    num_slots: usize,
    classes: usize,
) -> Result<ClusterLabel> {
    cluster_and_label_keeping(train_slots, train_labels, test_slots, test_labels, num_slots, classes, &[])
}

/// As [`cluster_and_label`], except that slot `c` of each class `c` in `kept` (a class that had
/// labels, whose slot the labels defined) stands for `c` whatever the training points in it;
/// the other slots are mapped by majority (the GM-DGM paper's rule).
pub fn cluster_and_label_keeping(
    train_slots: &[usize],
    train_labels: &[usize],
    test_slots: &[usize],
    test_labels: &[usize],
    num_slots: usize,
    classes: usize,
    kept: &[usize],
) -> Result<ClusterLabel> {
    let mut slot_class = slot_majority(train_slots, train_labels, num_slots, classes)?;
    for &c in kept {
        if c >= classes.min(num_slots) {
            return Err(Error::Invalid(format!(
                "cluster-and-label: kept class {c} has no slot of its own ({classes} classes, {num_slots} slots)"
            )));
        }
        slot_class[c] = Some(c);
    }
    check(test_slots, test_labels, num_slots, classes, "cluster-and-label test set")?;
    let (mut correct, mut total) = (vec![0usize; classes], vec![0usize; classes]);
    for (&s, &c) in test_slots.iter().zip(test_labels) {
        total[c] += 1;
        correct[c] += usize::from(slot_class[s] == Some(c));
    }
    Ok(ClusterLabel { slot_class, correct, total })
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
    /// The GM-DGM paper's rule ([`cluster_and_label_keeping`]): the labeled
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
