//! Model specifications and the graphs they build.
//!
//! `ModelSpec` = family (Dense, CNN, RNN) x kind (SS, ES, EU). The defaults
//! are the paper's (appendix A). Dense (Table 13): encoder 784-1024-1024, heads mu(2),
//! logvar(2), pi(10, softmax), decoder fed concat(z, pi), 1024-1024-784 with a Bernoulli
//! (sigmoid) likelihood. CNN (Table 14, see `cnn`): three 3x3 convolutions (64 channels,
//! strides 1, 1, 2) each with batch norm + relu, dense 512 + batch norm + relu + dropout 0.5,
//! the same heads; decoder dense to the last feature map + batch norm + relu + dropout,
//! transposed convolutions mirroring the encoder, a 1x1 transposed convolution to the image.
//! RNN (Table 15, see `rnn` for the per-step decisions): time-distributed dense, LSTM,
//! time-distributed dense, per-step heads; decoder mirrored with a per-step Gaussian output.
//!
//! A graph is built in training mode (batch statistics, dropout on) or inference mode
//! (running statistics, no dropout) for evaluation, scoring and generation.
//!
//! Loss (per batch of B rows, all rows get the ELBO, labeled rows also the cross-entropy):
//!   mean over rows of [rec + kl] + alpha * mean over labeled rows of CE(pi, y)
//! where rec and kl are SUMS over features (`LossNorm::Sum`, the usual ELBO) or MEANS over
//! features (`LossNorm::Mean`, what the authors' blog describes). See README for the defaults
//! and the measurements behind them.
//!
//! Decoder input during training (`DecoderInput`): the paper's formal text feeds the
//! predicted pi (default); `TrueLabel` feeds the one-hot label on labeled rows and pi on the
//! others. Generation always feeds a chosen one-hot. `PiToDecoder::StraightThrough` feeds
//! one_hot(argmax pi) instead of pi (training and inference alike), with pi's gradient passed
//! through unchanged.
//!
//! Multi-factor heads (paper section 4, Table 16; `factor_heads` non-empty on an SS model):
//! one classification head per labeled generating factor, each a softmax CE (the paper writes
//! "one-hot sigmoid pi layers"; softmax CE is the same one-of-K target with normalised
//! outputs) on the rows where that factor is labeled, weighted alpha. The heads do NOT feed
//! the decoder, which sees z only: otherwise the model could route the factors around the
//! latent layer, and the point is to shape z. Head k reads its own labels input
//! ([`Handles::head_labels`]: "labels" for head 0, "labels.k" for the others, one u32 per row,
//! `UNLABELED` where not labeled), so each head's CE is the unchanged masked-CE kernel and
//! single-head models keep one [batch] input.
//! `kl_weight` (the paper's beta_norm, 0.25 there) scales the KL term of every model.

use crate::backend::{Act, DType};
use crate::error::{Error, Result};
use crate::graph::{Graph, LossKind, TensorId};

mod cnn;
mod m2;
mod rnn;

pub use m2::semi_unsupervised_prior;
pub use rnn::window_probs;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The paper's model: VAE + classification head feeding the decoder.
    Ss,
    /// Encoder + classification head, cross-entropy only.
    Es,
    /// Plain VAE (no classification head).
    Eu,
    /// Kingma et al.'s M2: y summed out of the ELBO, decoder p(x|y,z) (see `m2`).
    M2,
    /// Gaussian-mixture DGM: p(y) p(z|y) p(x|z), learned Gaussian per class (see `m2`).
    Gmdgm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Dense,
    Cnn,
    Rnn,
}

/// One convolution of a CNN encoder (the decoder mirrors it with a transposed convolution).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConvLayer {
    pub channels: usize,
    pub kernel: usize,
    pub stride: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecoderInput {
    Pi,
    TrueLabel,
}

/// How pi reaches the decoder of an SS model (on the rows `DecoderInput` leaves to pi).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PiToDecoder {
    /// The softmax probabilities (the paper's).
    #[default]
    Softmax,
    /// one_hot(argmax pi) forward, pi's gradient backward (the straight-through estimator):
    /// the decoder only ever sees a class code, so pi cannot carry style as a continuous
    /// channel; the encoder still learns from the reconstruction through the surrogate gradient.
    StraightThrough,
    /// A Gumbel-softmax sample softmax((logits + g) / tau), g standard Gumbel noise drawn afresh
    /// each step (Jang et al. 2017; Maddison et al. 2017): a relaxed one-hot whose gradient
    /// reaches the logits exactly, with `gumbel_temperature` tau; inference (scores, the ELBO)
    /// feeds softmax(logits / tau) without noise. pi itself (predictions, the cross-entropy)
    /// stays the plain softmax.
    Gumbel,
}

impl PiToDecoder {
    pub fn is_softmax(&self) -> bool {
        *self == PiToDecoder::Softmax
    }
}

/// The decoder's likelihood p(x | z, pi) of the dense and CNN families (the recurrent family's
/// is always a Gaussian per step and channel).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Likelihood {
    /// Each feature a Bernoulli with the decoder's sigmoid as its mean: data in [0, 1] (pixels).
    #[default]
    Bernoulli,
    /// Each feature a Gaussian with the decoder's mean and variance softplus(raw) + floor (the
    /// `GaussianNll` kernel, as the recurrent head): real-valued, standardised features.
    Gaussian,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossNorm {
    Sum,
    Mean,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelSpec {
    pub family: Family,
    pub kind: Kind,
    /// Input features (pixels).
    pub input_dim: usize,
    /// Encoder widths; the decoder mirrors them.
    pub hidden: Vec<usize>,
    pub latent: usize,
    pub classes: usize,
    pub decoder_input: DecoderInput,
    /// Weight of the classification loss.
    pub alpha: f32,
    pub loss_norm: LossNorm,
    /// Bound on the log-variance: logvar = L tanh(raw / L), so exp(logvar) stays finite for
    /// any input (without it, one outlier with raw > 88 overflows f32 and the run diverges;
    /// seen on MNIST). `None` uses the raw head output, as the paper's text does.
    #[serde(default = "default_logvar_limit")]
    pub logvar_limit: Option<f32>,
    /// Image shape (height, width, channels) for the CNN family.
    #[serde(default)]
    pub input_shape: Option<[usize; 3]>,
    /// CNN encoder convolutions ('same' padding); `hidden` then gives its dense widths.
    #[serde(default)]
    pub conv: Vec<ConvLayer>,
    /// Dropout rate after the CNN's dense layers (0 = none).
    #[serde(default)]
    pub dropout: f32,
    /// p(y) over the `classes` slots of M2 / GM-DGM (empty: uniform). See
    /// [`semi_unsupervised_prior`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_prior: Vec<f32>,
    /// Window shape (steps, channels) for the RNN family; `hidden` then gives the widths of
    /// the time-distributed dense layer, the LSTM and the second dense layer (decoder mirrored).
    #[serde(default)]
    pub series_shape: Option<[usize; 2]>,
    /// Classes of each multi-factor head (SS only; empty: the ordinary single pi head). The
    /// first head's classes must equal `classes` (it is the `pi` that evaluators score).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub factor_heads: Vec<usize>,
    /// Weight of the KL term (the paper's beta_norm; 1 = the ELBO).
    #[serde(default = "default_kl_weight")]
    pub kl_weight: f32,
    /// RNN family: keep the resident windows in f16 on the device (`--data-f16`): half the
    /// memory, so twice the windows fit one binding; values are rounded to f16 (3 significant
    /// digits), which standardised sensor data tolerates (RESULTS.md).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub series_f16: bool,
    /// Dense family: the decoder's likelihood (tables of real-valued features: Gaussian).
    #[serde(default)]
    pub likelihood: Likelihood,
    /// Dense family: the resident samples are f32 features (a table, or series windows
    /// flattened), not image bytes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub real_input: bool,
    /// SS models: weight of the entropy of pi on unlabeled rows (entropy minimisation, Grandvalet
    /// and Bengio 2005), a mean over the batch's rows like the ELBO terms. It pushes pi towards
    /// one class on unlabeled samples, so that pi stays a class code for the decoder instead of
    /// becoming a continuous style channel. 0 (the paper's protocol): no such term.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub entropy_weight: f32,
    /// Models with a classifier: label smoothing E of every softmax cross-entropy on labeled
    /// rows, whose target becomes (1 - E) one-hot(y) + E / K (Szegedy et al. 2016): the head is
    /// not pushed to infinite logits on the few up-sampled labels. 0 (the paper's): one-hot.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub label_smoothing: f32,
    /// SS models: the softmax pi or its straight-through one-hot into the decoder.
    #[serde(default, skip_serializing_if = "PiToDecoder::is_softmax")]
    pub pi_to_decoder: PiToDecoder,
    /// The temperature tau of `PiToDecoder::Gumbel` (1 otherwise).
    #[serde(default = "default_gumbel_temperature", skip_serializing_if = "is_one")]
    pub gumbel_temperature: f32,
    /// Models with a Gaussian decoder (the recurrent family; dense models of tables): the
    /// variance is softplus(raw) + this floor, in the data's standardised units (a variance of 1
    /// is the feature's own). A config.json without it was trained with
    /// [`LEGACY_GAUSSIAN_VAR_FLOOR`](crate::backend::cpu::loss::LEGACY_GAUSSIAN_VAR_FLOOR), as
    /// the constructors and the paper protocol set; the default recipe sets its own (see
    /// [`crate::run::spec::RECIPE_VAR_FLOOR`]).
    #[serde(default = "legacy_var_floor", skip_serializing_if = "is_legacy_var_floor")]
    pub var_floor: f32,
    /// SS models: weight of the consistency of pi under a
    /// perturbation of the input, KL(pi(x) || pi(x + noise)) with the clean side held fixed,
    /// a mean over the batch's rows (all of them: labeled and unlabeled) like the ELBO terms
    /// (the Pi-model of Laine and Aila 2017, with the KL of Miyato et al.'s VAT). A second pass
    /// of the encoder and pi head, sharing their weights, sees the perturbed input. 0 (the
    /// paper's protocol): no such term.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consistency_weight: f32,
    /// The perturbation of the consistency term: Gaussian noise of this standard deviation
    /// added to every input value, in the input's units as the model sees them (pixel
    /// intensities in [0, 1]; standardised features and sensor channels: standard deviations).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consistency_noise: f32,
    /// The consistency term's translation: each sample shifted by up to this many pixels
    /// along height and width (images) or steps along time (series windows), uniformly, zeros
    /// shifted in; applied before the noise. 0: none.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub consistency_shift: u32,
    /// The consistency term's amplitude scaling: each sample multiplied by 1 + S N(0, 1).
    /// 0: none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consistency_scale: f32,
    /// The layout [height, width, channels] the translation moves along (images; series
    /// windows as [steps, 1, channels]); set with a shift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency_shape: Option<[usize; 3]>,
}

fn is_zero_u32(x: &u32) -> bool {
    *x == 0
}

/// The reparameterisation stream of the consistency term's input noise (the latent draws stream
/// 0, dropout 1.. and 101..).
const CONSISTENCY_STREAM: u32 = 301;

fn is_zero(x: &f32) -> bool {
    *x == 0.0
}

fn is_one(x: &f32) -> bool {
    *x == 1.0
}

fn default_gumbel_temperature() -> f32 {
    1.0
}

fn legacy_var_floor() -> f32 {
    crate::backend::cpu::loss::LEGACY_GAUSSIAN_VAR_FLOOR
}

fn is_legacy_var_floor(x: &f32) -> bool {
    *x == legacy_var_floor()
}

/// The Gumbel noise stream of `PiToDecoder::Gumbel`.
const GUMBEL_STREAM: u32 = 401;

fn default_kl_weight() -> f32 {
    1.0
}

fn default_logvar_limit() -> Option<f32> {
    Some(DEFAULT_LOGVAR_LIMIT)
}

/// Default bound on |logvar| (variances between e^-20 and e^20).
pub const DEFAULT_LOGVAR_LIMIT: f32 = 20.0;

impl ModelSpec {
    /// The paper's dense model of this kind for `input_dim` features and `classes` classes.
    pub fn dense(kind: Kind, input_dim: usize, classes: usize) -> Self {
        ModelSpec {
            family: Family::Dense,
            kind,
            input_dim,
            hidden: vec![1024, 1024],
            latent: 2,
            classes,
            decoder_input: DecoderInput::Pi,
            alpha: DEFAULT_ALPHA,
            loss_norm: LossNorm::Sum,
            logvar_limit: Some(DEFAULT_LOGVAR_LIMIT),
            input_shape: None,
            conv: Vec::new(),
            dropout: 0.0,
            class_prior: Vec::new(),
            series_shape: None,
            factor_heads: Vec::new(),
            kl_weight: 1.0,
            series_f16: false,
            likelihood: Likelihood::Bernoulli,
            real_input: false,
            entropy_weight: 0.0,
            label_smoothing: 0.0,
            pi_to_decoder: PiToDecoder::Softmax,
            gumbel_temperature: 1.0,
            var_floor: legacy_var_floor(),
            consistency_weight: 0.0,
            consistency_noise: 0.0,
            consistency_shift: 0,
            consistency_scale: 0.0,
            consistency_shape: None,
        }
    }

    /// A dense SS model with one head per factor of `factor_heads` classes that does not feed
    /// the decoder (see the module comment); `classes` is the first head's.
    pub fn multi_factor(input_dim: usize, factor_heads: &[usize]) -> Self {
        ModelSpec { factor_heads: factor_heads.to_vec(), ..Self::dense(Kind::Ss, input_dim, factor_heads.first().copied().unwrap_or(0)) }
    }

    /// Whether the model has a decoder with a Gaussian likelihood (whose variance has
    /// `var_floor`): the recurrent family, dense models of tables.
    pub fn has_gaussian_decoder(&self) -> bool {
        self.has_decoder() && (self.family == Family::Rnn || self.likelihood == Likelihood::Gaussian)
    }

    /// Whether this is a multi-factor model (heads beside the decoder, not into it).
    pub fn has_factor_heads(&self) -> bool {
        !self.factor_heads.is_empty()
    }

    /// The paper's recurrent model of this kind (Table 15) for windows of `steps` x `channels`:
    /// hidden = [40 (dense), 40 (LSTM), 30 (dense)].
    ///
    /// The loss terms are MEANS over their elements (`LossNorm::Mean`): summed over 128 x 6
    /// values, the Gaussian NLL (whose variance can shrink towards its floor) swamps the
    /// cross-entropy, and SS_RNN's accuracy fell while it trained (UCI-HAR, 1000 labels: 0.30
    /// after 40 epochs summed, 0.74 after 5 epochs with means; RESULTS.md, Table 10).
    pub fn rnn(kind: Kind, steps: usize, channels: usize, classes: usize) -> Self {
        ModelSpec {
            family: Family::Rnn,
            hidden: vec![40, 40, 30],
            series_shape: Some([steps, channels]),
            loss_norm: LossNorm::Mean,
            ..Self::dense(kind, steps * channels, classes)
        }
    }

    /// What input the family takes, for error messages: "images of 28x28x1", "series windows
    /// of 128 steps x 6 channels", "784 features".
    pub fn input_description(&self) -> String {
        match (self.family, self.input_shape, self.series_shape) {
            (Family::Rnn, _, Some([t, c])) => format!("series windows of {t} steps x {c} channels"),
            (Family::Cnn, Some([h, w, c]), _) => format!("images of {h}x{w}x{c}"),
            _ => format!("samples of {} features (images, flattened)", self.input_dim),
        }
    }

    /// The paper's CNN of this kind (Table 14) for images of `shape` (height, width, channels).
    pub fn cnn(kind: Kind, shape: [usize; 3], classes: usize) -> Self {
        let c = |stride| ConvLayer { channels: 64, kernel: 3, stride };
        ModelSpec {
            family: Family::Cnn,
            hidden: vec![512],
            input_shape: Some(shape),
            conv: vec![c(1), c(1), c(2)],
            dropout: 0.5,
            ..Self::dense(kind, shape.iter().product(), classes)
        }
    }

    /// CLI name, e.g. "ss-dense".
    pub fn name(&self) -> String {
        let k = match self.kind {
            Kind::Ss => "ss",
            Kind::Es => "es",
            Kind::Eu => "eu",
            Kind::M2 => "m2",
            Kind::Gmdgm => "gmdgm",
        };
        let f = match self.family {
            Family::Dense => "dense",
            Family::Cnn => "cnn",
            Family::Rnn => "rnn",
        };
        format!("{k}-{f}")
    }

    /// Parses "ss-dense" etc.
    pub fn parse_name(name: &str) -> Result<(Family, Kind)> {
        let (k, f) = name.split_once('-').ok_or_else(|| unknown_model(name))?;
        let kind = match k {
            "ss" => Kind::Ss,
            "es" => Kind::Es,
            "eu" => Kind::Eu,
            "m2" => Kind::M2,
            "gmdgm" => Kind::Gmdgm,
            _ => return Err(unknown_model(name)),
        };
        let family = match f {
            "dense" => Family::Dense,
            "cnn" => Family::Cnn,
            "rnn" => Family::Rnn,
            _ => return Err(unknown_model(name)),
        };
        Ok((family, kind))
    }

    pub fn validate(&self) -> Result<()> {
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return Err(Error::Invalid(format!("--hidden: every layer width must be at least 1 (got {:?})", self.hidden)));
        }
        if self.latent == 0 {
            return Err(Error::Invalid("--latent must be at least 1".into()));
        }
        if self.kind != Kind::Eu && self.classes < 2 {
            return Err(Error::Invalid(format!("a classifier needs at least 2 classes, the dataset has {}", self.classes)));
        }
        if let Some(l) = self.logvar_limit {
            if !(l.is_finite() && l > 0.0 && l <= 80.0) {
                return Err(Error::Invalid(format!("--logvar-limit must be in (0, 80] (got {l})")));
            }
        }
        if self.family == Family::Cnn {
            let Some(shape) = self.input_shape else {
                return Err(Error::Invalid("a CNN needs the image shape (height, width, channels)".into()));
            };
            if shape.iter().product::<usize>() != self.input_dim || shape.contains(&0) {
                return Err(Error::Invalid(format!("image shape {shape:?} does not match {} input features", self.input_dim)));
            }
            if self.conv.is_empty() || self.conv.iter().any(|c| c.channels == 0) {
                return Err(Error::Invalid(format!(
                    "--conv: a CNN needs at least one convolution with at least one channel (got {:?})",
                    self.conv
                )));
            }
        }
        if self.family == Family::Rnn {
            let Some([t, c]) = self.series_shape else {
                return Err(Error::Invalid("an RNN needs the window shape (steps, channels)".into()));
            };
            if t == 0 || c == 0 || t * c != self.input_dim {
                return Err(Error::Invalid(format!(
                    "window shape {t} steps x {c} channels does not match {} input values",
                    self.input_dim
                )));
            }
            if self.hidden.len() != 3 {
                return Err(Error::Invalid(format!(
                    "--hidden: an RNN takes three widths, dense,lstm,dense (the paper's 40,40,30), got {:?}",
                    self.hidden
                )));
            }
        }
        if self.likelihood == Likelihood::Gaussian && (self.family != Family::Dense || self.sums_over_classes()) {
            return Err(Error::Invalid(format!(
                "--likelihood gaussian applies to the dense models ss-dense, es-dense and eu-dense, not {}",
                self.name()
            )));
        }
        if self.real_input && self.family != Family::Dense {
            return Err(Error::Invalid(format!("{}: real-valued feature input is for the dense family", self.name())));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Invalid(format!("--dropout must be in [0, 1) (got {})", self.dropout)));
        }
        if self.sums_over_classes() && self.family == Family::Rnn {
            return Err(Error::Invalid(format!(
                "--model {}: M2 and GM-DGM are implemented for images (dense and CNN families), not series",
                self.name()
            )));
        }
        if !self.class_prior.is_empty() {
            let sum: f32 = self.class_prior.iter().sum();
            if self.class_prior.len() != self.classes
                || self.class_prior.iter().any(|&p| !(p > 0.0 && p.is_finite()))
                || (sum - 1.0).abs() > 1e-3
            {
                return Err(Error::Invalid(format!(
                    "class_prior must hold {} positive probabilities summing to 1 (got {:?}, sum {sum})",
                    self.classes, self.class_prior
                )));
            }
        }
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return Err(Error::Invalid(format!("--alpha must be a finite number >= 0 (got {})", self.alpha)));
        }
        if !(self.kl_weight.is_finite() && self.kl_weight >= 0.0) {
            return Err(Error::Invalid(format!("--kl-weight must be a finite number >= 0 (got {})", self.kl_weight)));
        }
        if !(self.entropy_weight.is_finite() && self.entropy_weight >= 0.0) {
            return Err(Error::Invalid(format!("--entropy-weight must be a finite number >= 0 (got {})", self.entropy_weight)));
        }
        if self.entropy_weight > 0.0 && (self.kind != Kind::Ss || self.has_factor_heads()) {
            return Err(Error::Invalid(format!(
                "--entropy-weight applies to the SS models with one pi head (ss-dense, ss-cnn, ss-rnn), not {}",
                self.name()
            )));
        }
        if !(self.consistency_weight.is_finite() && self.consistency_weight >= 0.0) {
            return Err(Error::Invalid(format!("--consistency-weight must be a finite number >= 0 (got {})", self.consistency_weight)));
        }
        if self.consistency_weight > 0.0 {
            if self.kind != Kind::Ss || self.has_factor_heads() {
                return Err(Error::Invalid(format!(
                    "--consistency-weight applies to the SS models with one pi head (ss-dense, ss-cnn, ss-rnn), not {}",
                    self.name()
                )));
            }
            if !(self.consistency_noise.is_finite() && self.consistency_noise >= 0.0) {
                return Err(Error::Invalid(format!(
                    "--consistency-noise must be a finite standard deviation >= 0 (got {})",
                    self.consistency_noise
                )));
            }
            if !(self.consistency_scale.is_finite() && self.consistency_scale >= 0.0) {
                return Err(Error::Invalid(format!(
                    "--consistency-scale must be a finite standard deviation >= 0 (got {})",
                    self.consistency_scale
                )));
            }
            if self.consistency_noise == 0.0 && self.consistency_scale == 0.0 && self.consistency_shift == 0 {
                return Err(Error::Invalid(
                    "--consistency-weight needs a perturbation: --consistency-noise, --consistency-shift or --consistency-scale above 0"
                        .into(),
                ));
            }
            if self.consistency_shift > 0 {
                let Some(shape) = self.consistency_shape.filter(|s| s.iter().product::<usize>() > 0) else {
                    return Err(Error::Invalid(
                        "--consistency-shift moves images or series windows; a table's rows have no axis to shift along".into(),
                    ));
                };
                let per: usize = shape.iter().product();
                // input_dim is a sample's value count in every family (steps x channels for the RNN)
                if per != self.input_dim {
                    return Err(Error::Invalid(format!("consistency shape {shape:?} does not match the {} input values", self.input_dim)));
                }
            }
        }
        if !(self.label_smoothing.is_finite() && (0.0..1.0).contains(&self.label_smoothing)) {
            return Err(Error::Invalid(format!("--label-smoothing must be in [0, 1) (got {})", self.label_smoothing)));
        }
        if self.label_smoothing > 0.0 && !self.has_classifier() {
            return Err(Error::Invalid(format!(
                "--label-smoothing applies to the models with a classifier (ss-*, es-*, m2-*, gmdgm-*), not {}",
                self.name()
            )));
        }
        if !self.pi_to_decoder.is_softmax() && (self.kind != Kind::Ss || self.has_factor_heads()) {
            return Err(Error::Invalid(format!(
                "--pi-to-decoder applies to the SS models whose pi feeds the decoder (ss-dense, ss-cnn, ss-rnn), not {}",
                if self.has_factor_heads() { format!("{} with factor heads", self.name()) } else { self.name() }
            )));
        }
        if !(self.gumbel_temperature.is_finite() && self.gumbel_temperature > 0.0) {
            return Err(Error::Invalid(format!("--gumbel-temperature must be finite and > 0 (got {})", self.gumbel_temperature)));
        }
        if self.gumbel_temperature != 1.0 && self.pi_to_decoder != PiToDecoder::Gumbel {
            return Err(Error::Invalid(format!(
                "--gumbel-temperature {} sets the Gumbel-softmax's temperature: give --pi-to-decoder gumbel with it",
                self.gumbel_temperature
            )));
        }
        if !(self.var_floor.is_finite() && self.var_floor > 0.0 && self.var_floor <= 1.0) {
            return Err(Error::Invalid(format!(
                "--var-floor must be in (0, 1], a variance in the data's standardised units (got {})",
                self.var_floor
            )));
        }
        if self.kl_weight != 1.0 && self.sums_over_classes() {
            return Err(Error::Invalid(format!(
                "--kl-weight: {} sums the ELBO over classes and takes no KL weight (got {})",
                self.name(),
                self.kl_weight
            )));
        }
        if self.has_factor_heads() {
            if self.kind != Kind::Ss || self.family == Family::Rnn {
                return Err(Error::Invalid(format!(
                    "--factor-heads: multi-factor heads need an SS dense or CNN model, not {}",
                    self.name()
                )));
            }
            if self.factor_heads.iter().any(|&c| c < 2) {
                return Err(Error::Invalid(format!("--factor-heads: every head needs at least 2 classes (got {:?})", self.factor_heads)));
            }
            if self.factor_heads[0] != self.classes {
                return Err(Error::Invalid(format!(
                    "factor_heads: the first head has {} classes but classes is {} (they must agree: the first head is the scored pi)",
                    self.factor_heads[0], self.classes
                )));
            }
        }
        Ok(())
    }

    pub fn has_classifier(&self) -> bool {
        self.kind != Kind::Eu
    }
    /// Whether the decoder's input is concat(z, pi) (SS), not z alone (EU, multi-factor).
    pub fn decoder_takes_pi(&self) -> bool {
        self.has_classifier() && !self.has_factor_heads()
    }
    pub fn has_decoder(&self) -> bool {
        self.kind != Kind::Es
    }
    /// M2 and GM-DGM: the ELBO is summed over the classes (graph::mixture).
    pub fn sums_over_classes(&self) -> bool {
        matches!(self.kind, Kind::M2 | Kind::Gmdgm)
    }
    /// p(y) over the classifier's slots: `class_prior`, or uniform when it is empty.
    pub fn prior(&self) -> Vec<f32> {
        if self.class_prior.is_empty() {
            vec![1.0 / self.classes as f32; self.classes]
        } else {
            self.class_prior.clone()
        }
    }
}

/// Default weight of the classification loss (see README: chosen by measurement).
pub const DEFAULT_ALPHA: f32 = 100.0;

/// Every model the library builds: its name (as [`ModelSpec::name`] writes it), family, kind and
/// what it is. The CLI's `--model` values come from this list, so a new model is named here.
pub const MODELS: [(&str, Family, Kind, &str); 13] = [
    ("ss-dense", Family::Dense, Kind::Ss, "The paper's model: VAE + classifier pi feeding the decoder (dense, Table 13)"),
    ("es-dense", Family::Dense, Kind::Es, "Encoder + classifier, cross-entropy only (dense)"),
    ("eu-dense", Family::Dense, Kind::Eu, "Plain VAE (dense)"),
    ("ss-cnn", Family::Cnn, Kind::Ss, "The paper's model, convolutional (Table 14)"),
    ("es-cnn", Family::Cnn, Kind::Es, "Encoder + classifier, convolutional"),
    ("eu-cnn", Family::Cnn, Kind::Eu, "Plain VAE, convolutional"),
    ("ss-rnn", Family::Rnn, Kind::Ss, "The paper's model, recurrent, for time series (Table 15)"),
    ("es-rnn", Family::Rnn, Kind::Es, "Encoder + classifier, recurrent"),
    ("eu-rnn", Family::Rnn, Kind::Eu, "Plain VAE, recurrent"),
    ("m2-dense", Family::Dense, Kind::M2, "Kingma's M2 (y summed out of the ELBO), dense"),
    ("m2-cnn", Family::Cnn, Kind::M2, "Kingma's M2, convolutional trunk"),
    ("gmdgm-dense", Family::Dense, Kind::Gmdgm, "Gaussian-mixture DGM (semi-unsupervised), dense"),
    ("gmdgm-cnn", Family::Cnn, Kind::Gmdgm, "Gaussian-mixture DGM, convolutional trunk"),
];

fn unknown_model(name: &str) -> Error {
    Error::Invalid(format!("unknown model '{name}': expected ss-dense, es-dense, eu-dense, ss-cnn, es-cnn, eu-cnn, ss-rnn, es-rnn, eu-rnn, m2-dense, m2-cnn, gmdgm-dense or gmdgm-cnn"))
}

/// Named tensors of a built graph.
#[derive(Clone, Debug)]
pub struct Handles {
    /// Inputs the host writes each step (through `Program::input`): batch indices into the
    /// resident dataset, labels (UNLABELED for unlabeled rows), RNG counter.
    pub idx: TensorId,
    pub labels: TensorId,
    pub counter: TensorId,
    /// The resident dataset (u8 packed 4 per word; f32 or f16 windows for the RNN): bind its
    /// buffer to this tensor (`CompileOptions::bind`).
    pub data: TensorId,
    /// Class probabilities (SS, ES).
    pub pi: Option<TensorId>,
    /// Posterior mean (SS, EU).
    pub mu: Option<TensorId>,
    /// Decoder output logits (SS, EU); for the RNN the Gaussian means.
    pub recon_logits: Option<TensorId>,
    /// The "labels" input holds this many entries per row: 1, or the window's steps for the
    /// RNN's per-step heads (see [`Handles::expand_labels`]).
    pub label_repeat: usize,
    /// Multi-factor models: each head's class probabilities (the first is `pi`).
    pub factor_pi: Vec<TensorId>,
    /// Every labels input, one per head (the first is `labels`; single-head models and models
    /// without a classifier have just `labels`).
    pub head_labels: Vec<TensorId>,
}

/// The tensor name of head `k`'s labels input (programs take the ids in [`Handles::head_labels`]):
/// "labels" for the first (and only single) head, "labels.k" for the others of a multi-factor model.
pub fn labels_input_name(k: usize) -> String {
    if k == 0 {
        "labels".into()
    } else {
        format!("labels.{k}")
    }
}

impl Handles {
    /// The "labels" input for one label per batch row: each repeated `label_repeat` times.
    pub fn expand_labels(&self, labels: &[u32]) -> Vec<u32> {
        if self.label_repeat == 1 {
            return labels.to_vec();
        }
        labels.iter().flat_map(|&l| std::iter::repeat_n(l, self.label_repeat)).collect()
    }
}

/// Builds the training-step graph (forward with all losses) for a batch of `batch` rows of a
/// resident dataset of `src_rows` samples.
pub fn build(spec: &ModelSpec, batch: usize, src_rows: usize) -> Result<(Graph, Handles)> {
    build_mode(spec, batch, src_rows, true)
}

/// As [`build`], in training mode (batch statistics, dropout) or inference mode (running
/// statistics, no dropout: evaluation and scoring).
pub fn build_mode(spec: &ModelSpec, batch: usize, src_rows: usize, training: bool) -> Result<(Graph, Handles)> {
    spec.validate()?;
    if spec.family == Family::Rnn {
        return rnn::build(spec, batch, src_rows, training);
    }
    let mut g = Graph::new();
    let d = spec.input_dim;
    let data = if spec.real_input {
        g.input("data", &[src_rows * d], DType::F32)
    } else {
        g.input("data", &[(src_rows * d).div_ceil(4)], DType::U32)
    };
    let idx = g.input("idx", &[batch], DType::U32);
    let labels = g.input("labels", &[batch], DType::U32);
    let counter = g.input("counter", &[crate::backend::COUNTER_LEN], DType::U32);
    let x = if spec.real_input { g.gather_f32("x", data, idx, src_rows, &[d]) } else { g.gather_u8("x", data, idx, src_rows, d) };
    if spec.sums_over_classes() {
        let (pi, _) = m2::build(spec, &mut g, x, labels, counter, training)?;
        return Ok((g, m2::handles(idx, labels, counter, data, pi)));
    }

    let h = encoder_trunk(&mut g, spec, x, counter, training)?;
    let rows_scale = 1.0 / batch as f32;
    let mut pi = None;
    let mut pi_for_decoder = None;
    let mut factor_pi = Vec::new();
    let mut head_labels = vec![labels];
    if spec.has_factor_heads() {
        // heads beside the decoder (module comment): pi_for_decoder stays None
        let mut probs = Vec::new();
        for (k, &classes) in spec.factor_heads.iter().enumerate() {
            let labels_k = if k == 0 { labels } else { g.input(&labels_input_name(k), &[batch], DType::U32) };
            let logits = g.dense(&format!("head{k}"), h, classes, Act::Identity);
            g.ce_loss(LossKind::Ce { head: k }, logits, labels_k, spec.alpha, spec.label_smoothing);
            if k > 0 {
                head_labels.push(labels_k);
            }
            probs.push(g.softmax(&format!("head{k}_probs"), logits));
        }
        pi = probs.first().copied();
        factor_pi = probs;
    } else if spec.has_classifier() {
        let logits = g.dense("pi", h, spec.classes, Act::Identity);
        let (p, p_dec) = classifier_head(&mut g, spec, logits, labels, counter, training);
        (pi, pi_for_decoder) = (Some(p), Some(p_dec));
        if training && spec.consistency_weight > 0.0 {
            let noisy = perturbed_input(&mut g, spec, x, counter);
            let logits2 = g.with_shared_params("perturbed", |g| -> Result<TensorId> {
                let h = encoder_trunk(g, spec, noisy, counter, training)?;
                Ok(g.dense("pi", h, spec.classes, Act::Identity))
            })?;
            consistency_term(&mut g, spec, logits2, logits);
        }
    }
    let (mut mu, mut recon_logits) = (None, None);
    if spec.has_decoder() {
        let m = g.dense("mu", h, spec.latent, Act::Identity);
        let mut lv = g.dense("logvar", h, spec.latent, Act::Identity);
        if let Some(limit) = spec.logvar_limit {
            lv = g.soft_clamp("logvar_bounded", lv, limit);
        }
        let kl_scale = spec.kl_weight * rows_scale * if spec.loss_norm == LossNorm::Mean { 1.0 / spec.latent as f32 } else { 1.0 };
        g.kl_loss(LossKind::Kl, m, lv, kl_scale);
        let z = g.reparam("z", counter, m, lv, 0);
        let dec_in = match pi_for_decoder {
            Some(p) => g.concat("dec_in", z, p),
            None => z,
        };
        let rec_scale = rows_scale * if spec.loss_norm == LossNorm::Mean { 1.0 / d as f32 } else { 1.0 };
        let out = if spec.likelihood == Likelihood::Gaussian {
            let h = dense_decoder_trunk(&mut g, spec, dec_in);
            let mean = g.dense("out", h, d, Act::Identity);
            let var_raw = g.dense("out_var", h, d, Act::Identity);
            g.gaussian_nll_loss(LossKind::Rec, mean, var_raw, x, rec_scale, spec.var_floor);
            mean
        } else {
            let out = decoder(&mut g, spec, dec_in, Some(counter), training)?;
            g.bce_loss(LossKind::Rec, out, x, rec_scale);
            out
        };
        mu = Some(m);
        recon_logits = Some(out);
    }
    Ok((g, Handles { idx, labels, counter, data, pi, mu, recon_logits, label_repeat: 1, factor_pi, head_labels }))
}

/// The encoder's trunk of an image model: the dense layers, or the CNN family's convolutions
/// and dense block (the recurrent family is built by `rnn::build`).
fn encoder_trunk(g: &mut Graph, spec: &ModelSpec, x: TensorId, counter: TensorId, training: bool) -> Result<TensorId> {
    match spec.family {
        Family::Dense => {
            let mut h = x;
            for (i, &w) in spec.hidden.iter().enumerate() {
                h = g.dense(&format!("enc{i}"), h, w, Act::Relu);
            }
            Ok(h)
        }
        Family::Cnn => cnn::encoder(g, spec, x, counter, training),
        Family::Rnn => unreachable!("built by rnn::build"),
    }
}

/// The classification head on its logits: the CE over labeled rows (normalised by their count
/// in the kernel) weighted by alpha (ES trains on it alone), the probabilities pi, and what the
/// decoder gets (pi, its straight-through one-hot or a Gumbel-softmax sample, or the one-hot
/// label on labeled rows).
fn classifier_head(
    g: &mut Graph,
    spec: &ModelSpec,
    logits: TensorId,
    labels: TensorId,
    counter: TensorId,
    training: bool,
) -> (TensorId, TensorId) {
    let alpha = if spec.kind == Kind::Es { 1.0 } else { spec.alpha };
    g.ce_loss(LossKind::Ce { head: 0 }, logits, labels, alpha, spec.label_smoothing);
    if spec.kind == Kind::Ss && spec.entropy_weight > 0.0 {
        // KL(pi || uniform) = log K - H(pi) on unlabeled rows (a constant on labeled ones), so a
        // negative weight minimises H(pi); the per-row mean as for the ELBO terms
        let k = spec.classes;
        let rows = crate::graph::rows_cols(g.shape(logits)).0;
        let log_uniform = g.constant("log_uniform", &[k], vec![-(k as f32).ln(); k]);
        g.categorical_kl_loss(LossKind::Entropy, logits, log_uniform, labels, -spec.entropy_weight / rows as f32);
    }
    let p = g.softmax("pi_probs", logits);
    let code = match spec.pi_to_decoder {
        PiToDecoder::Softmax => p,
        PiToDecoder::StraightThrough => g.straight_through("pi_one_hot", p),
        PiToDecoder::Gumbel => {
            let y = g.gumbel("pi_gumbel_logits", counter, logits, spec.gumbel_temperature, training, GUMBEL_STREAM);
            g.softmax("pi_gumbel", y)
        }
    };
    let for_decoder = match spec.decoder_input {
        DecoderInput::Pi => code,
        DecoderInput::TrueLabel => g.label_mix("pi_or_label", code, labels),
    };
    (p, for_decoder)
}

/// The consistency term's perturbation of x, drawn afresh each step: a translation by up to
/// `spec.consistency_shift` and a scaling by 1 + `spec.consistency_scale` N(0, 1) per sample,
/// then Gaussian noise of standard deviation `spec.consistency_noise` (x gets no gradient).
pub(crate) fn perturbed_input(g: &mut Graph, spec: &ModelSpec, x: TensorId, counter: TensorId) -> TensorId {
    let shape = g.shape(x).to_vec();
    let n: usize = shape.iter().product();
    let mut x = x;
    if spec.consistency_shift > 0 || spec.consistency_scale > 0.0 {
        // without a shift the layout does not matter: one row of values per sample
        let layout = spec.consistency_shape.unwrap_or([1, 1, spec.input_dim]);
        x = g.shift_scale("x_shifted", counter, x, layout, spec.consistency_shift, spec.consistency_scale, CONSISTENCY_STREAM + 1);
    }
    if spec.consistency_noise > 0.0 {
        let logvar = g.constant("perturbation_logvar", &shape, vec![2.0 * spec.consistency_noise.ln(); n]);
        x = g.reparam("x_perturbed", counter, x, logvar, CONSISTENCY_STREAM);
    }
    x
}

/// The consistency term: KL(pi(x) || pi(x + noise)) per row of pi logits (the clean `target`
/// held fixed), weighted by `spec.consistency_weight` and averaged over the rows.
pub(crate) fn consistency_term(g: &mut Graph, spec: &ModelSpec, logits: TensorId, target: TensorId) {
    let rows = crate::graph::rows_cols(g.shape(logits)).0;
    g.consistency_kl_loss(LossKind::Consistency, logits, target, spec.consistency_weight / rows as f32);
}

/// The dense decoder's hidden layers (the encoder's widths mirrored).
fn dense_decoder_trunk(g: &mut Graph, spec: &ModelSpec, dec_in: TensorId) -> TensorId {
    let mut dh = dec_in;
    for (i, &w) in spec.hidden.iter().rev().enumerate() {
        dh = g.dense(&format!("dec{i}"), dh, w, Act::Relu);
    }
    dh
}

/// The decoder from its input (z, or concat(z, pi)) to the output logits (batch x features);
/// with a Gaussian likelihood, the means.
/// `counter` feeds dropout in training mode; generation passes `None` with `training` false.
pub fn decoder(g: &mut Graph, spec: &ModelSpec, dec_in: TensorId, counter: Option<TensorId>, training: bool) -> Result<TensorId> {
    match spec.family {
        Family::Dense => {
            let dh = dense_decoder_trunk(g, spec, dec_in);
            Ok(g.dense("out", dh, spec.input_dim, Act::Identity))
        }
        Family::Cnn => cnn::decoder(g, spec, dec_in, counter, training),
        Family::Rnn => Err(Error::Invalid(format!(
            "{}: generating from a recurrent model is not supported (sample grids are for image models)",
            spec.name()
        ))),
    }
}
