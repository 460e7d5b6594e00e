//! The recurrent family (the paper's Table 15, UCI-HAR windows of 128 steps x 6 channels).
//!
//! Encoder: a time-distributed dense layer (`hidden[0]`, relu), an LSTM (`hidden[1]`), a
//! time-distributed dense layer (`hidden[2]`, relu). The heads are PER STEP, as the table's
//! (128, 2) / (128, 6) shapes say: mu_t, logvar_t (latent each) and pi_t (classes, softmax).
//! Decoder, per step: concat(z_t, pi_t) (z_t alone for EU), dense `hidden[2]` relu, LSTM
//! `hidden[1]`, dense `hidden[0]` relu, then a Gaussian per step and channel: mean (linear) and
//! variance softplus(raw) + floor (the `GaussianNll` kernel applies the softplus).
//!
//! What the paper leaves open about per-step heads, and what we do:
//! - KL: summed over steps and latent dimensions (the window is one sample of a sequence
//!   latent, z_1..z_T independent under q and the prior), averaged over windows, as the
//!   reconstruction NLL, summed over steps and channels. `--loss-norm mean` divides both by
//!   their element count per window.
//! - Cross-entropy: each labeled window's label is repeated at every step, and the CE is the
//!   mean over labeled windows AND steps (the kernel divides by the labeled rows it sees, one
//!   row per step), times alpha. So alpha keeps its meaning from the dense models (weight of a
//!   mean cross-entropy per labeled sample) while every step's pi_t is trained to name the
//!   activity.
//! - The window's class distribution (accuracy, log loss, anomaly CSV) is the softmax of the
//!   MEAN over steps of log pi_t, i.e. the normalised geometric mean of the per-step
//!   distributions ([`window_probs`]). Why: its argmax is the argmax of the summed per-step
//!   log-likelihoods, the decision the per-step CE (a sum of log pi_t over steps) optimises
//!   and the naive-Bayes way to pool evidence from steps; one confidently wrong step cannot
//!   dominate a window as it would a product, and unlike the arithmetic mean of probabilities
//!   a step that rules a class out (pi_t near 0) counts. The log loss is taken from this same
//!   distribution, so accuracy and log loss describe one predictor.
//!
//! Tensors: per-step heads that feed row-wise kernels (pi logits, probabilities, label mix) are
//! [batch * steps, classes]; mu, logvar, z and the decoder are [batch, steps, features], so
//! per-window losses (KL, reconstruction) see one row per window.

use super::{Handles, LossNorm, ModelSpec};
use crate::backend::{Act, DType};
use crate::error::Result;
use crate::graph::{Graph, LossKind, TensorId};

pub fn build(spec: &ModelSpec, batch: usize, src_rows: usize, training: bool) -> Result<(Graph, Handles)> {
    let [steps, channels] = spec.series_shape.expect("validated: an RNN has a window shape");
    let mut g = Graph::new();
    let n_values = src_rows * steps * channels;
    let data =
        if spec.series_f16 { g.input("data", &[n_values.div_ceil(2)], DType::U32) } else { g.input("data", &[n_values], DType::F32) };
    let idx = g.input("idx", &[batch], DType::U32);
    // one label per step (the host repeats each window's label, see Handles::expand_labels)
    let labels = g.input("labels", &[batch * steps], DType::U32);
    let counter = g.input("counter", &[crate::backend::COUNTER_LEN], DType::U32);
    let x = if spec.series_f16 {
        g.gather_f16("x", data, idx, src_rows, &[steps, channels])
    } else {
        g.gather_f32("x", data, idx, src_rows, &[steps, channels])
    };

    let e = encoder(&mut g, spec, x);

    let rows_scale = 1.0 / batch as f32;
    let mean_norm = spec.loss_norm == LossNorm::Mean;
    let (mut pi, mut pi_for_decoder) = (None, None);
    if spec.has_classifier() {
        let logits = g.per_step_dense("pi", e, spec.classes, Act::Identity);
        let (p, p_dec) = super::classifier_head(&mut g, spec, logits, labels, counter, training);
        (pi, pi_for_decoder) = (Some(p), Some(p_dec));
        if training && spec.consistency_weight > 0.0 {
            let noisy = super::perturbed_input(&mut g, spec, x, counter);
            let logits2 = g.with_shared_params("perturbed", |g| {
                let e = encoder(g, spec, noisy);
                g.per_step_dense("pi", e, spec.classes, Act::Identity)
            });
            super::consistency_term(&mut g, spec, logits2, logits);
        }
    }
    let (mut mu, mut recon) = (None, None);
    if spec.has_decoder() {
        let m = g.time_distributed_dense("mu", e, spec.latent, Act::Identity);
        let mut lv = g.time_distributed_dense("logvar", e, spec.latent, Act::Identity);
        if let Some(limit) = spec.logvar_limit {
            lv = g.soft_clamp("logvar_bounded", lv, limit);
        }
        let kl_scale = spec.kl_weight * rows_scale * if mean_norm { 1.0 / (steps * spec.latent) as f32 } else { 1.0 };
        g.kl_loss(LossKind::Kl, m, lv, kl_scale);
        let z = g.reparam("z", counter, m, lv, 0);
        let dec_in = match pi_for_decoder {
            Some(p) => g.concat("dec_in", z, p),
            None => z,
        };
        let (mean, var_raw) = decoder(&mut g, spec, dec_in, channels);
        let rec_scale = rows_scale * if mean_norm { 1.0 / (steps * channels) as f32 } else { 1.0 };
        g.gaussian_nll_loss(LossKind::Rec, mean, var_raw, x, rec_scale, spec.var_floor);
        mu = Some(m);
        recon = Some(mean);
    }
    Ok((
        g,
        Handles {
            idx,
            labels,
            counter,
            data,
            pi,
            mu,
            recon_logits: recon,
            label_repeat: steps,
            factor_pi: Vec::new(),
            head_labels: vec![labels],
        },
    ))
}

/// The encoder's trunk: [batch, steps, channels] -> [batch, steps, hidden[2]].
fn encoder(g: &mut Graph, spec: &ModelSpec, x: TensorId) -> TensorId {
    let h = &spec.hidden;
    let e = g.time_distributed_dense("enc0", x, h[0], Act::Relu);
    let e = g.lstm("enc_lstm", e, h[1]);
    g.time_distributed_dense("enc1", e, h[2], Act::Relu)
}

/// Decoder from [batch, steps, latent (+ classes)] to the per-step Gaussian (mean, raw variance),
/// each [batch, steps, channels].
fn decoder(g: &mut Graph, spec: &ModelSpec, dec_in: TensorId, channels: usize) -> (TensorId, TensorId) {
    let h = &spec.hidden;
    let d = g.time_distributed_dense("dec0", dec_in, h[2], Act::Relu);
    let d = g.lstm("dec_lstm", d, h[1]);
    let d = g.time_distributed_dense("dec1", d, h[0], Act::Relu);
    let mean = g.time_distributed_dense("out_mean", d, channels, Act::Identity);
    let var_raw = g.time_distributed_dense("out_var", d, channels, Act::Identity);
    (mean, var_raw)
}

/// Window-level class probabilities from per-step ones: `p` holds `windows * steps` rows of
/// `classes` probabilities; each window gets softmax(mean over steps of log p_t) (see the
/// module comment for why). With one step this is `p` itself.
pub fn window_probs(p: &[f32], steps: usize, classes: usize) -> Vec<f32> {
    if steps == 1 {
        return p.to_vec();
    }
    let windows = p.len() / (steps * classes);
    let mut out = vec![0f32; windows * classes];
    let mut acc = vec![0f64; classes];
    for w in 0..windows {
        acc.fill(0.0);
        for t in 0..steps {
            let row = &p[(w * steps + t) * classes..(w * steps + t + 1) * classes];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += (v.max(f32::MIN_POSITIVE) as f64).ln();
            }
        }
        let max = acc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = acc.iter().map(|a| ((a - max) / steps as f64).exp()).sum();
        for (o, a) in out[w * classes..(w + 1) * classes].iter_mut().zip(&acc) {
            *o = (((a - max) / steps as f64).exp() / z) as f32;
        }
    }
    out
}
