//! Fixed-size training batches for the SS, ES and EU models (semantics: see the module
//! documentation of [`crate::data`]).

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::backend::UNLABELED;
use crate::error::{Error, Result};

/// Which rows of a batch carry labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BatchMode {
    /// `batch_size / 2` labeled rows (with replacement; another share: see
    /// [`Batcher::with_labeled_share`]) + the rest from a permutation of all samples, unlabeled.
    SemiSupervised,
    /// All rows labeled, with replacement from the labeled set.
    Supervised,
    /// All rows unlabeled, from a permutation of all samples.
    Unsupervised,
}

/// One batch: training-sample indices and, per row, the class or [`UNLABELED`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub indices: Vec<u32>,
    pub labels: Vec<u32>,
}

/// Seeded source of fixed-size batches.
#[derive(Clone, Debug)]
pub struct Batcher {
    mode: BatchMode,
    batch_size: usize,
    labeled_rows: usize,
    steps_per_epoch: usize,
    /// Class of every training sample.
    train_labels: Vec<u8>,
    /// Indices whose labels may be used.
    labeled: Vec<u32>,
    labeled_rng: StdRng,
    perm_rng: StdRng,
    /// Current permutation of all training samples and the position in it.
    perm: Vec<u32>,
    pos: usize,
}

/// Separates the two generator streams derived from one seed.
const LABELED_STREAM: u64 = 0x9E37_79B9_7F4A_7C15;

/// The paper's share of labeled rows in a semi-supervised batch: half (1:1).
pub const DEFAULT_LABELED_SHARE: f64 = 0.5;

/// Labeled rows of a semi-supervised batch of `batch_size` rows when a `share` of them is drawn
/// from the labeled set: floor(share x batch_size), so the default 0.5 gives `batch_size / 2`
/// (an odd batch keeps the extra row unlabeled, as before shares existed). The floor allows
/// 1e-9 of slack, so that a share written in decimal (0.7 of 10) is not rounded down by its
/// binary representation. May be 0 or `batch_size`; [`Batcher::with_labeled_share`] refuses both.
pub fn labeled_rows(batch_size: usize, share: f64) -> usize {
    ((batch_size as f64 * share + 1e-9).floor().max(0.0) as usize).min(batch_size)
}

impl Batcher {
    /// A batcher over `train_labels.len()` training samples of which `labeled` (indices) may
    /// use their labels. Errors: an empty training set, `batch_size` 0 (or below 2 for
    /// `SemiSupervised`), an empty `labeled` for `SemiSupervised` / `Supervised`, a labeled
    /// index out of range. `labeled` is ignored for `Unsupervised`.
    pub fn new(mode: BatchMode, train_labels: &[u8], labeled: &[usize], batch_size: usize, seed: u64) -> Result<Self> {
        Self::with_labeled_share(mode, train_labels, labeled, batch_size, DEFAULT_LABELED_SHARE, seed)
    }

    /// As [`Batcher::new`], with `share` of every semi-supervised batch's rows labeled (see
    /// [`labeled_rows`]; the other modes ignore it). Errors also: a share outside (0, 1), or one
    /// that leaves a batch without a labeled or without an unlabeled row.
    pub fn with_labeled_share(
        mode: BatchMode,
        train_labels: &[u8],
        labeled: &[usize],
        batch_size: usize,
        share: f64,
        seed: u64,
    ) -> Result<Self> {
        let n = train_labels.len();
        if n == 0 {
            return Err(Error::Invalid("the training set is empty: nothing to batch".into()));
        }
        if n > u32::MAX as usize {
            return Err(Error::Invalid(format!("{n} training samples exceed the u32 index range")));
        }
        if batch_size == 0 {
            return Err(Error::Invalid("--batch-size must be at least 1".into()));
        }
        if mode == BatchMode::SemiSupervised && batch_size < 2 {
            return Err(Error::Invalid(format!(
                "--batch-size {batch_size} is too small for semi-supervised training: a batch needs at least one labeled and one unlabeled row"
            )));
        }
        let labeled: Vec<u32> = if mode == BatchMode::Unsupervised {
            Vec::new()
        } else {
            if labeled.is_empty() {
                return Err(Error::Invalid(format!(
                    "{} training needs at least one labeled sample (--labels), got none",
                    if mode == BatchMode::Supervised { "supervised" } else { "semi-supervised" }
                )));
            }
            if let Some(&bad) = labeled.iter().find(|&&i| i >= n) {
                return Err(Error::Invalid(format!("labeled index {bad} is out of range for {n} training samples")));
            }
            labeled.iter().map(|&i| i as u32).collect()
        };
        let (labeled_rows, steps_per_epoch) = match mode {
            BatchMode::SemiSupervised => {
                if !(share.is_finite() && share > 0.0 && share < 1.0) {
                    return Err(Error::Invalid(format!("--labeled-share must be in (0, 1) (got {share})")));
                }
                let l = labeled_rows(batch_size, share);
                if l == 0 || l == batch_size {
                    return Err(Error::Invalid(format!(
                        "--labeled-share {share} of --batch-size {batch_size} gives {l} labeled rows: a batch needs at least one labeled and one unlabeled row"
                    )));
                }
                (l, n.div_ceil(batch_size - l))
            }
            BatchMode::Supervised => (batch_size, n.div_ceil(batch_size)),
            BatchMode::Unsupervised => (0, n.div_ceil(batch_size)),
        };
        let mut perm_rng = StdRng::seed_from_u64(seed);
        let perm = if mode == BatchMode::Supervised {
            Vec::new()
        } else {
            let mut p: Vec<u32> = (0..n as u32).collect();
            p.shuffle(&mut perm_rng);
            p
        };
        Ok(Batcher {
            mode,
            batch_size,
            labeled_rows,
            steps_per_epoch,
            train_labels: train_labels.to_vec(),
            labeled,
            labeled_rng: StdRng::seed_from_u64(seed ^ LABELED_STREAM),
            perm_rng,
            perm,
            pos: 0,
        })
    }

    pub fn mode(&self) -> BatchMode {
        self.mode
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Rows per batch whose label is used (`batch_size / 2` or the share's, `batch_size` or 0
    /// by mode).
    pub fn labeled_per_batch(&self) -> usize {
        self.labeled_rows
    }

    /// An epoch of at least `min` steps: on a training set smaller than `min` batches the
    /// unlabeled rows go on through fresh permutations within the epoch (the draws are the
    /// same as without: only where epochs end moves).
    pub fn with_min_epoch_steps(mut self, min: usize) -> Self {
        self.steps_per_epoch = self.steps_per_epoch.max(min);
        self
    }

    /// Steps of one epoch (see the module documentation).
    pub fn steps_per_epoch(&self) -> usize {
        self.steps_per_epoch
    }

    /// The next batch: always exactly `batch_size` rows, labeled rows first.
    pub fn next_batch(&mut self) -> Batch {
        let mut b = Batch { indices: Vec::with_capacity(self.batch_size), labels: Vec::with_capacity(self.batch_size) };
        self.next_batch_into(&mut b);
        b
    }

    /// Advances past `n` batches, drawing them as `next_batch` would: a batcher built with the
    /// same arguments and then skipped `n` batches continues exactly where one that produced
    /// them does (how a resumed run continues an interrupted one).
    pub fn skip(&mut self, n: u64) {
        let mut b = Batch { indices: Vec::with_capacity(self.batch_size), labels: Vec::with_capacity(self.batch_size) };
        for _ in 0..n {
            self.next_batch_into(&mut b);
        }
    }

    /// [`Batcher::next_batch`] reusing `batch`'s allocations.
    pub fn next_batch_into(&mut self, batch: &mut Batch) {
        batch.indices.clear();
        batch.labels.clear();
        for _ in 0..self.labeled_rows {
            let i = self.labeled[self.labeled_rng.random_range(0..self.labeled.len())];
            batch.indices.push(i);
            batch.labels.push(self.train_labels[i as usize] as u32);
        }
        for _ in self.labeled_rows..self.batch_size {
            if self.pos == self.perm.len() {
                self.perm.shuffle(&mut self.perm_rng);
                self.pos = 0;
            }
            batch.indices.push(self.perm[self.pos]);
            batch.labels.push(UNLABELED);
            self.pos += 1;
        }
    }
}
