//! Models with a discrete latent class y summed out of the ELBO: Kingma et al.'s M2 and the
//! Gaussian-mixture DGM of Willetts et al. (semi-unsupervised learning).
//!
//! Both share the inference network: q(y|x) = softmax head on the encoder trunk (the dense
//! layers, or the CNN family's convolutions + dense block: `m2-cnn`, `gmdgm-cnn`), and
//! q(z|x,y) = one relu layer (width of the last encoder layer) on concat(trunk(x), one-hot(y))
//! followed by the mu and log-variance heads, so y shapes the posterior of z beyond a shift.
//! Generative models:
//! - M2: p(y) p(z) p(x|y,z), z ~ N(0, I), the decoder fed concat(z, one-hot(y));
//! - GM-DGM: p(y) p(z|y) p(x|z), p(z|y) = N(mu_y, e^{lv_y}) with mu_y and lv_y linear maps of
//!   the one-hot y (`prior_mu.weight`, Glorot, and `prior_logvar.weight`, zeros, both K x
//!   latent; the log-variance bounded like the posterior's), the decoder fed z alone.
//!
//! Objective per batch of B rows (the sum over y done in one pass over B * K expanded rows,
//! see graph::mixture), with w[r] = q(y|x_r) on unlabeled rows and one-hot(y_r) on labeled ones:
//!   1/B sum_r sum_k w[r, k] (rec(x_r | y=k) + KL_z(r, k))                 (terms Rec, Kl)
//! + 1/B sum_r [unlabeled: KL(q(y|x_r) || p(y)); labeled: -log p(y_r)]     (term KlY)
//! + alpha * mean over labeled rows of CE(q(y|x), y)                      (term Ce)
//! i.e. the negative ELBO of Kingma et al. (the unlabeled bound is sum_y q(y|x) ELBO(x, y) +
//! H(q(y|x)), and KL(q || p) = -H(q) - E_q log p(y)) plus their alpha-weighted classifier
//! loss. `LossNorm::Mean` divides rec and KL_z by the feature and latent counts as for SS.
//!
//! The prior p(y) is `ModelSpec::class_prior` (uniform when empty); see
//! [`semi_unsupervised_prior`] for the semi-unsupervised setting.

use super::{decoder, Family, Handles, Kind, LossNorm, ModelSpec};
use crate::backend::Act;
use crate::error::{Error, Result};
use crate::graph::{Graph, Init, LossKind, TensorId};

/// p(y) for semi-unsupervised learning over `classes` true classes of which `labeled` keep
/// their labels, with `extra` additional slots (slots = classes + extra, slot c < classes
/// stands for class c). As in the GM-DGM paper's MNIST experiment (5 labeled digits at 1/10,
/// 10 unsupervised slots at 1/20): each labeled class gets 1/classes (its share of balanced
/// data), and the rest of the mass, (classes - |labeled|) / classes, is spread evenly over the
/// other slots (the unlabeled classes' own slots and the extra ones). Without unlabeled
/// classes there is no mass left for extra slots, so the prior is uniform over all slots.
pub fn semi_unsupervised_prior(classes: usize, labeled: &[usize], extra: usize) -> Result<Vec<f32>> {
    let slots = classes + extra;
    let mut is_labeled = vec![false; classes];
    for &c in labeled {
        *is_labeled.get_mut(c).ok_or_else(|| {
            Error::Invalid(format!("--labeled-classes: class {c} is out of range (classes 0..{})", classes.saturating_sub(1)))
        })? = true;
    }
    let n_lab = is_labeled.iter().filter(|&&b| b).count();
    if n_lab == classes {
        return Ok(vec![1.0 / slots as f32; slots]);
    }
    let rest = (classes - n_lab) as f64 / classes as f64 / (slots - n_lab) as f64;
    Ok((0..slots).map(|s| if s < classes && is_labeled[s] { 1.0 / classes as f32 } else { rest as f32 }).collect())
}

/// The training graph of an M2 or GM-DGM model, dense or convolutional (see the module comment).
pub(super) fn build(
    spec: &ModelSpec,
    g: &mut Graph,
    x: TensorId,
    labels: TensorId,
    counter: TensorId,
    training: bool,
) -> Result<(Option<TensorId>, Option<TensorId>)> {
    let k = spec.classes;
    let batch = g.shape(x)[0];
    let d = spec.input_dim;
    if spec.family == Family::Rnn {
        return Err(Error::Invalid(format!("--model {}: M2 and GM-DGM take images (dense or CNN), not series", spec.name())));
    }
    // the dense layers or the convolutional trunk of Table 14 on the B rows; q(z|x,y) and the
    // decoder (a CNN decoder's batch norms see the B * K expanded rows) as below
    let h = super::encoder_trunk(g, spec, x, counter, training)?;
    let logits = g.dense("pi", h, k, Act::Identity);
    g.ce_loss(LossKind::Ce { head: 0 }, logits, labels, spec.alpha, spec.label_smoothing);
    let q = g.softmax("pi_probs", logits);
    let rows_scale = 1.0 / batch as f32;
    let prior = spec.prior();
    let log_prior = g.constant("log_prior", &[k], prior.iter().map(|p| p.ln()).collect());
    g.categorical_kl_loss(LossKind::KlY, logits, log_prior, labels, rows_scale);
    // q(z|x,y) on every (row, class) pair
    let width = *spec.hidden.last().expect("validated: at least one layer");
    let (zh, onehot) = g.class_dense("zenc", h, k, width, Act::Relu);
    let mu = g.dense("mu", zh, spec.latent, Act::Identity);
    let mut lv = g.dense("logvar", zh, spec.latent, Act::Identity);
    if let Some(limit) = spec.logvar_limit {
        lv = g.soft_clamp("logvar_bounded", lv, limit);
    }
    let z = g.reparam("z", counter, mu, lv, 0);
    let (dec_in, kl_raw) = match spec.kind {
        Kind::M2 => (g.concat("dec_in", z, onehot), g.raw_kl("kl_pairs", mu, lv)),
        Kind::Gmdgm => {
            let wm = g.param("prior_mu.weight", &[k, spec.latent], Init::GlorotUniform { fan_in: k, fan_out: spec.latent });
            let wl = g.param("prior_logvar.weight", &[k, spec.latent], Init::Zeros);
            let mu_p = g.linear_no_bias("prior_mu", onehot, wm);
            let mut lv_p = g.linear_no_bias("prior_logvar", onehot, wl);
            if let Some(limit) = spec.logvar_limit {
                lv_p = g.soft_clamp("prior_logvar_bounded", lv_p, limit);
            }
            (z, g.raw_kl_gaussians("kl_pairs", mu, lv, mu_p, lv_p))
        }
        _ => unreachable!("m2::build is for M2 and GM-DGM"),
    };
    let out = decoder(g, spec, dec_in, Some(counter), training)?;
    let target = g.repeat_rows("x_pairs", x, k);
    let rec_raw = g.raw_bce("rec_pairs", out, target);
    let w = g.label_mix("class_weights", q, labels);
    let mean = spec.loss_norm == LossNorm::Mean;
    g.weighted_loss(LossKind::Rec, rec_raw, w, rows_scale * if mean { 1.0 / d as f32 } else { 1.0 });
    g.weighted_loss(LossKind::Kl, kl_raw, w, rows_scale * if mean { 1.0 / spec.latent as f32 } else { 1.0 });
    Ok((Some(q), None))
}

/// The handles of an M2 / GM-DGM graph: pi is q(y|x); mu and the reconstruction are per (row,
/// class) pair, so they are not exposed as per-row tensors.
pub(super) fn handles(idx: TensorId, labels: TensorId, counter: TensorId, data: TensorId, pi: Option<TensorId>) -> Handles {
    Handles {
        idx,
        labels,
        counter,
        data,
        pi,
        mu: None,
        recon_logits: None,
        label_repeat: 1,
        factor_pi: Vec::new(),
        head_labels: vec![labels],
    }
}
