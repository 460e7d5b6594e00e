//! Evaluation beyond accuracy: anomaly scores (paper 3.1.3), exact ROC AUC, generation of
//! class-by-style sample grids, the betaVAE disentanglement score ([`disentangle`], paper
//! section 4; multi-factor models and the Table 12 experiment in [`factors`]) and
//! cluster-and-label accuracy ([`cluster`], semi-unsupervised models).
//!
//! Anomaly score of x: the negative log reconstruction probability -log p(x | z, pi), averaged
//! over L draws of z ~ q(z|x) (the Bernoulli NLL summed over pixels, i.e. in nats per sample,
//! whatever loss normalisation was used in training). SS models feed the decoder their own
//! predicted pi, also when trained with `--decoder-input true-label`, since a new point has no
//! label. For the recurrent models the NLL is the per-step Gaussian's, summed over steps and
//! channels (in standardised units), and the class probabilities are pooled per window
//! ([`crate::model::window_probs`]).

pub mod cluster;
pub mod disentangle;
pub mod factors;
pub mod feedback;
pub mod grid;
pub mod plot;

pub use cluster::{argmax_rows, cluster_and_label, cluster_and_label_keeping, cluster_scores, ClusterLabel, ClusterScores, GroupAccuracy};
pub use disentangle::{beta_vae_score, beta_vae_score_of_code, beta_vae_score_of_latents, BetaVaeConfig, BetaVaeScore};

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::graph::exec::{compile, CompileOptions, ParamStore, Program};
use crate::graph::{LossKind, TensorId};
use crate::model::{build_mode, ModelSpec};
use crate::train::{pack_u8, TrainData};

/// Default number of z draws per anomaly score.
pub const DEFAULT_SCORE_SAMPLES: usize = 10;

/// Exact area under the ROC curve: the probability that a random positive scores above a
/// random negative, ties counting one half (Mann-Whitney U with mid-ranks). `None` when one
/// class is empty.
pub fn roc_auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    assert_eq!(scores.len(), positive.len(), "one label per score");
    let n_pos = positive.iter().filter(|&&p| p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // sum of the (1-based, mid-) ranks of the positives
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += order[i..=j].iter().filter(|&&k| positive[k]).count() as f64 * mid;
        i = j + 1;
    }
    let u = rank_sum - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos as f64 * n_neg as f64))
}

/// Points of the ROC curve (false positive rate, true positive rate), thresholds from high to
/// low, tied scores taken together.
pub fn roc_curve(scores: &[f64], positive: &[bool]) -> Vec<(f64, f64)> {
    let n_pos = positive.iter().filter(|&&p| p).count().max(1) as f64;
    let n_neg = positive.iter().filter(|&&p| !p).count().max(1) as f64;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut pts = vec![(0.0, 0.0)];
    let mut i = 0;
    while i < order.len() {
        let s = scores[order[i]];
        while i < order.len() && scores[order[i]] == s {
            if positive[order[i]] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        pts.push((fp / n_neg, tp / n_pos));
    }
    pts
}

/// Scores samples of one resident set of u8 samples with a model's forward pass.
pub struct Scorer<B: Backend> {
    program: Program<B>,
    rec_row: TensorId,
    /// The factor the reconstruction term's per-row values were scaled by.
    rec_scale: f32,
    pi: Option<TensorId>,
    mu: Option<TensorId>,
    batch: usize,
    n: usize,
    dim: usize,
    label_repeat: usize,
    classes: usize,
    handles: crate::model::Handles,
}

impl<B: Backend> Scorer<B> {
    /// `pixels`: n samples of `spec.input_dim` bytes each.
    pub fn new(be: &B, spec: &ModelSpec, store: &ParamStore<B>, pixels: &[u8], batch: usize) -> Result<Self> {
        if !spec.has_decoder() {
            return Err(Error::Invalid(format!("{} has no decoder, so it cannot score anomalies (use ss-dense or eu-dense)", spec.name())));
        }
        let dim = spec.input_dim;
        if pixels.is_empty() || pixels.len() % dim != 0 {
            return Err(Error::Invalid(format!("input has {} values, not a whole number of samples of {dim} features", pixels.len())));
        }
        let n = pixels.len() / dim;
        Self::resident(be, spec, store, be.upload_u32(&pack_u8(pixels))?, n, batch)
    }

    /// Scores image or series data (the model family must match it).
    pub fn with_data(be: &B, spec: &ModelSpec, store: &ParamStore<B>, data: TrainData<'_>, batch: usize) -> Result<Self> {
        if !spec.has_decoder() {
            return Err(Error::Invalid(format!("{} has no decoder, so it cannot score anomalies (use an ss- or eu- model)", spec.name())));
        }
        data.check(spec)?;
        Self::resident(be, spec, store, data.upload(be, spec)?, data.n(), batch)
    }

    fn resident(be: &B, spec: &ModelSpec, store: &ParamStore<B>, resident: B::Buf, n: usize, batch: usize) -> Result<Self> {
        let batch = batch.min(n).max(1);
        let (graph, handles) = build_mode(spec, batch, n, false)?;
        let rec = *graph.loss(LossKind::Rec).ok_or_else(|| Error::Invalid("model has no reconstruction loss".into()))?;
        let rec_row = rec.per_row;
        let mut keep = vec![rec_row];
        keep.extend(handles.pi);
        keep.extend(handles.mu);
        keep.sort();
        let opts = CompileOptions { keep, bind: [(handles.data, resident)].into(), ..Default::default() };
        let program = compile(be, graph, store, opts)?;
        Ok(Scorer {
            program,
            rec_row,
            rec_scale: rec.scale,
            pi: handles.pi,
            mu: handles.mu,
            batch,
            n,
            dim: spec.input_dim,
            label_repeat: handles.label_repeat,
            classes: spec.classes,
            handles,
        })
    }

    /// Anomaly score per sample (mean over `samples` draws of z) and, for classifiers, the
    /// class probabilities (n x classes).
    pub fn run(&self, be: &B, samples: usize, seed: u64) -> Result<(Vec<f64>, Option<Vec<f32>>)> {
        if samples == 0 {
            return Err(Error::Invalid("--samples must be at least 1".into()));
        }
        let mut scores = vec![0f64; self.n];
        let mut probs = self.pi.map(|_| Vec::new());
        for (chunk, start) in (0..self.n).step_by(self.batch).enumerate() {
            let rows = (self.n - start).min(self.batch);
            let idx: Vec<u32> = (0..self.batch).map(|r| (start + r.min(rows - 1)) as u32).collect();
            be.write_u32(self.program.input(self.handles.idx)?, &idx)?;
            crate::train::write_unlabeled(be, &self.program, &self.handles, self.batch)?;
            for l in 0..samples {
                let step = (chunk * samples + l) as u32;
                be.write_u32(self.program.input(self.handles.counter)?, &crate::rng::counter(seed ^ 0xA70A_11E5, step))?;
                self.program.run(be)?;
                let rec = self.program.read(be, self.rec_row)?;
                // per-row values were scaled (1/batch, and 1/features under mean
                // normalisation): recover the summed NLL in nats
                let factor = 1.0 / self.rec_scale as f64;
                for r in 0..rows {
                    scores[start + r] += rec[r] as f64 * factor / samples as f64;
                }
                if l == 0 {
                    if let (Some(t), Some(p)) = (self.pi, probs.as_mut()) {
                        let v = crate::model::window_probs(&self.program.read(be, t)?, self.label_repeat, self.classes);
                        let classes = self.classes;
                        p.extend_from_slice(&v[..rows * classes]);
                    }
                }
            }
        }
        self.program.take_metrics(be)?;
        Ok((scores, probs))
    }

    /// Posterior means (n x latent) of every sample.
    pub fn latent_means(&self, be: &B) -> Result<Vec<f32>> {
        let mu = self.mu.ok_or_else(|| Error::Invalid("model has no latent space".into()))?;
        let mut out = Vec::new();
        for start in (0..self.n).step_by(self.batch) {
            let rows = (self.n - start).min(self.batch);
            let idx: Vec<u32> = (0..self.batch).map(|r| (start + r.min(rows - 1)) as u32).collect();
            be.write_u32(self.program.input(self.handles.idx)?, &idx)?;
            crate::train::write_unlabeled(be, &self.program, &self.handles, self.batch)?;
            be.write_u32(self.program.input(self.handles.counter)?, &crate::rng::counter(0, 0))?;
            self.program.run(be)?;
            // per-step latents (RNN): one row of steps x latent per window
            let v = self.program.read(be, mu)?;
            let latent = v.len() / self.batch;
            out.extend_from_slice(&v[..rows * latent]);
        }
        self.program.take_metrics(be)?;
        Ok(out)
    }

    pub fn dim(&self) -> usize {
        self.dim
    }
}
