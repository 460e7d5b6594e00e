//! Forward-only passes over a dataset split that training itself needs: the evaluator of the
//! test split a [`super::Trainer`] reports on, and the slot assignments (argmax of q(y|x)) that
//! cluster-and-label scoring consumes. Scoring beyond that (anomaly scores, cluster-and-label,
//! betaVAE) builds on these in `crate::eval`, which sits above this layer.

use crate::backend::Backend;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::graph::exec::{compile, CompileOptions, ParamStore, Program};
use crate::graph::{LossKind, TensorId};
use crate::model::{build_mode, Handles, ModelSpec};

use super::{unweight, TrainData};

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct EvalReport {
    pub n: usize,
    pub accuracy: Option<f64>,
    pub log_loss: Option<f64>,
    /// Negative ELBO terms per sample on this split (one sample of z per point).
    pub rec: Option<f64>,
    pub kl: Option<f64>,
}

/// Writes `UNLABELED` to every labels input (each head's, [`Handles::head_labels`]) of a
/// program for `batch` rows: evaluation and scoring never show the graph a label.
pub fn write_unlabeled<B: Backend>(be: &B, program: &Program<B>, handles: &Handles, batch: usize) -> Result<()> {
    let unlabeled = vec![crate::backend::UNLABELED; batch * handles.label_repeat];
    for &labels in &handles.head_labels {
        be.write_u32(program.input(labels)?, &unlabeled)?;
    }
    Ok(())
}

/// Evaluates a model on one dataset split (forward only, batches of `batch`).
pub struct Evaluator<B: Backend> {
    program: Program<B>,
    handles: Handles,
    batch: usize,
    n: usize,
    classes: usize,
    /// Width of pi: the classes, or more slots for a semi-unsupervised GM-DGM (then accuracy
    /// and log loss need cluster-and-label, see [`Evaluator::assignments`]).
    slots: usize,
    labels: Vec<u32>,
    rec_row: Option<TensorId>,
    kl_row: Option<TensorId>,
    /// The KL per row carries `kl_weight`; reports give the unweighted KL.
    kl_weight: f32,
}

impl<B: Backend> Evaluator<B> {
    pub fn new(be: &B, spec: &ModelSpec, store: &ParamStore<B>, data: &Dataset, batch: usize) -> Result<Self> {
        Self::with_data(be, spec, store, TrainData::Images(data), batch)
    }

    /// As [`Evaluator::new`] for image or series data. Unlabeled windows are left out of
    /// accuracy and log loss (`EvalReport::n` counts every window, the ELBO terms use all).
    pub fn with_data(be: &B, spec: &ModelSpec, store: &ParamStore<B>, data: TrainData<'_>, batch: usize) -> Result<Self> {
        data.check(spec)?;
        let n = data.n();
        let batch = batch.min(n).max(1);
        let (graph, handles) = build_mode(spec, batch, n, false)?;
        let per_row = |kind| graph.loss(kind).map(|l| l.per_row);
        let (rec_row, kl_row) = (per_row(LossKind::Rec), per_row(LossKind::Kl));
        let mut keep: Vec<TensorId> = [handles.pi, rec_row, kl_row].into_iter().flatten().collect();
        keep.sort();
        let opts = CompileOptions { keep, bind: [(handles.data, data.upload(be, spec)?)].into(), ..Default::default() };
        let program = compile(be, graph, store, opts)?;
        Ok(Evaluator {
            program,
            handles,
            batch,
            n,
            classes: data.classes(),
            slots: spec.classes,
            labels: data.labels_u32(),
            rec_row,
            kl_row,
            kl_weight: spec.kl_weight,
        })
    }

    /// Accuracy and log loss from pi (classifiers), and the ELBO terms (VAEs), over the split.
    pub fn run(&self, be: &B, seed: u64) -> Result<EvalReport> {
        let (n, classes) = (self.n, self.classes);
        let scored = self.handles.pi.filter(|_| self.slots == classes);
        let (mut correct, mut logloss, mut rec, mut kl, mut labeled) = (0usize, 0f64, 0f64, 0f64, 0usize);
        for (chunk_i, start) in (0..n).step_by(self.batch).enumerate() {
            let rows = (n - start).min(self.batch);
            let idx: Vec<u32> = (0..self.batch).map(|r| (start + r.min(rows - 1)) as u32).collect();
            let labels: Vec<u32> = idx.iter().map(|&i| self.labels[i as usize]).collect();
            be.write_u32(self.program.input(self.handles.idx)?, &idx)?;
            // the graph sees no labels: the decoder gets the predicted pi (also for
            // --decoder-input true-label), accuracy and log loss are computed here from pi
            write_unlabeled(be, &self.program, &self.handles, self.batch)?;
            be.write_u32(self.program.input(self.handles.counter)?, &crate::rng::counter(seed ^ 0xE7A1, chunk_i as u32))?;
            self.program.run(be)?;
            if let Some(pi) = scored {
                // per-step heads (RNN): pooled into one distribution per window
                let p = crate::model::window_probs(&self.program.read(be, pi)?, self.handles.label_repeat, classes);
                for r in 0..rows {
                    let row = &p[r * classes..(r + 1) * classes];
                    let y = labels[r] as usize;
                    if y >= classes {
                        continue; // an unlabeled window
                    }
                    labeled += 1;
                    let arg = row.iter().enumerate().fold(0, |best, (j, &v)| if v > row[best] { j } else { best });
                    correct += (arg == y) as usize;
                    logloss -= (row[y] as f64).max(1e-15).ln();
                }
            }
            if let (Some(rt), Some(kt)) = (self.rec_row, self.kl_row) {
                let (rv, kv) = (self.program.read(be, rt)?, self.program.read(be, kt)?);
                // per-row values were scaled by 1/batch (and 1/features for mean-normalised
                // losses); undo the batch factor only, so the figures are per sample.
                rec += rv[..rows].iter().map(|&v| v as f64 * self.batch as f64).sum::<f64>();
                kl += kv[..rows].iter().map(|&v| v as f64 * self.batch as f64).sum::<f64>() / unweight(self.kl_weight);
            }
        }
        self.program.take_metrics(be)?;
        let nf = n as f64;
        Ok(EvalReport {
            n,
            accuracy: scored.filter(|_| labeled > 0).map(|_| correct as f64 / labeled as f64),
            log_loss: scored.filter(|_| labeled > 0).map(|_| logloss / labeled as f64),
            rec: self.rec_row.map(|_| rec / nf),
            kl: self.kl_row.map(|_| kl / nf),
        })
    }
}

impl<B: Backend> Evaluator<B> {
    /// The slot each point of the split is assigned to (argmax of q(y|x)), for
    /// cluster-and-label scoring (`crate::eval::cluster`); `None` without a classifier.
    pub fn assignments(&self, be: &B, seed: u64) -> Result<Option<Vec<usize>>> {
        match self.probabilities(be, seed)? {
            Some(p) => Ok(Some(argmax_rows(&p, self.slots)?)),
            None => Ok(None),
        }
    }

    /// q(y|x) of every point of the split (`n x slots`, row major; an RNN's per-step heads
    /// pooled into one distribution per window); `None` without a classifier.
    pub fn probabilities(&self, be: &B, seed: u64) -> Result<Option<Vec<f32>>> {
        let Some(pi) = self.handles.pi else { return Ok(None) };
        let mut out = Vec::with_capacity(self.n * self.slots);
        for (chunk_i, start) in (0..self.n).step_by(self.batch).enumerate() {
            let rows = (self.n - start).min(self.batch);
            let idx: Vec<u32> = (0..self.batch).map(|r| (start + r.min(rows - 1)) as u32).collect();
            be.write_u32(self.program.input(self.handles.idx)?, &idx)?;
            write_unlabeled(be, &self.program, &self.handles, self.batch)?;
            be.write_u32(self.program.input(self.handles.counter)?, &crate::rng::counter(seed ^ 0xE7A1, chunk_i as u32))?;
            self.program.run(be)?;
            let p = crate::model::window_probs(&self.program.read(be, pi)?, self.handles.label_repeat, self.slots);
            out.extend_from_slice(&p[..rows * self.slots]);
        }
        self.program.take_metrics(be)?;
        Ok(Some(out))
    }

    /// The true class of every point of the split (`UNLABELED` where a series window has none).
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }
}

/// The index of the largest value in each row of `values` (`rows x width`, row major): the
/// slot a model assigns each point to. Ties go to the smallest index; NaN never wins.
pub fn argmax_rows(values: &[f32], width: usize) -> Result<Vec<usize>> {
    if width == 0 || values.len() % width != 0 {
        return Err(Error::Invalid(format!("{} values are not rows of {width} slots", values.len())));
    }
    Ok(values
        .chunks(width)
        .map(|row| (0..width).fold(0, |b, i| if row[i] > row[b] || row[b].is_nan() && !row[i].is_nan() { i } else { b }))
        .collect())
}
