//! `ssvae train` and `ssvae anomaly`: flags -> [`RunSpec`] (or, with `--resume`, ->
//! [`ResumeChanges`]), then `ssvae::run::train` with the progress bar as its observer.
//!
//! Every flag that has a default is an `Option` here, its default written in its help and
//! held by `RunSpec::default()`: so the same flags can also be applied on top of another spec
//! (`ssvae reproduce --extra`), changing only what was given.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use ssvae::model::{ConvLayer, DecoderInput, Family, Kind, Likelihood, LossNorm, PiToDecoder, MODELS};
use ssvae::run::{self, DatasetName, ResumeChanges, RunSpec, SeriesLayout, SeriesOptions, SeriesOrder, SeriesScaling};
use ssvae::train::LabelSpec;

use super::{on_backend, DeviceArgs, Progress};

/// `--model`: the values and their help come from the library's list (`ssvae::model::MODELS`).
pub fn model_parser() -> impl TypedValueParser<Value = (Family, Kind)> {
    PossibleValuesParser::new(MODELS.iter().map(|(name, _, _, about)| PossibleValue::new(*name).help(*about))).map(|name| {
        let (_, family, kind, _) = MODELS.iter().find(|m| m.0 == name).expect("a listed model");
        (*family, *kind)
    })
}

/// `--dataset`: the values and their help come from the library (`ssvae::run::DatasetName`).
pub fn dataset_parser() -> impl TypedValueParser<Value = DatasetName> {
    PossibleValuesParser::new(DatasetName::ALL.iter().map(|d| PossibleValue::new(d.as_str()).help(d.about())))
        .map(|name| DatasetName::parse(&name).expect("a listed dataset"))
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerArg {
    /// The paper's: RMSprop with momentum 0.9.
    Rmsprop,
    /// Adam (0.9, 0.999, 1e-8) with bias correction.
    Adam,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossNormArg {
    /// Reconstruction and KL summed over features (the usual ELBO).
    Sum,
    /// Means over features (the authors' blog).
    Mean,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecoderInputArg {
    /// The predicted pi (the paper's).
    Pi,
    /// The one-hot label on labeled rows, pi on the others.
    TrueLabel,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PiToDecoderArg {
    /// The softmax probabilities (the paper's).
    Softmax,
    /// one_hot(argmax pi) forward, pi's gradient backward: the decoder sees a class code only.
    StraightThrough,
    /// A Gumbel-softmax sample softmax((logits + Gumbel noise) / T) in training, softmax(logits
    /// / T) in inference (T: --gumbel-temperature).
    Gumbel,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsvLayoutArg {
    /// One row per time step, cut into windows.
    Long,
    /// One row per window, its steps x channels values in columns.
    Flat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsvOrderArg {
    /// t0c0, t0c1, .. (step after step).
    StepMajor,
    /// c0t0, c0t1, .. (channel after channel).
    ChannelMajor,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalingArg {
    /// Mean and standard deviation of the training windows.
    Standard,
    /// Median and 1.4826 x median absolute deviation: a few extreme values do not set the scale;
    /// standardised values are clipped to +-50.
    Robust,
}

/// How a time-series dataset is read (recorded in config.json, so eval and score read data the
/// same way).
#[derive(clap::Args, Clone, Debug, Default)]
#[command(next_help_heading = "Time-series data")]
pub struct SeriesArgs {
    /// uci-har: the signals to use, e.g. body_acc_x,body_acc_y [default: the paper's six,
    /// body_acc_{x,y,z} and body_gyro_{x,y,z}; total_acc_{x,y,z} also exist].
    #[arg(long, value_delimiter = ',')]
    pub channels: Option<Vec<String>>,
    /// csv: the training file (.csv or .csv.gz).
    #[arg(long)]
    pub train_csv: Option<PathBuf>,
    /// csv: the test file, read with the training file's classes [default: hold out
    /// --test-fraction of the labeled windows].
    #[arg(long)]
    pub test_csv: Option<PathBuf>,
    /// Your own data without --test-data / --test-csv: the fraction of the labeled samples of
    /// each class held out as the test split (stratified, shuffled with --seed) [default: 0.2].
    #[arg(long)]
    pub test_fraction: Option<f64>,
    /// csv: how the file lays out its values [default: long].
    #[arg(long, value_enum)]
    pub csv_layout: Option<CsvLayoutArg>,
    /// csv flat: time steps per window.
    #[arg(long)]
    pub steps: Option<usize>,
    /// csv flat: values per step (channels).
    #[arg(long)]
    pub channels_count: Option<usize>,
    /// csv flat: the order of a window's values [default: step-major].
    #[arg(long, value_enum)]
    pub csv_order: Option<CsvOrderArg>,
    /// csv long: rows per window.
    #[arg(long)]
    pub window: Option<usize>,
    /// csv long: rows between the starts of two windows [default: --window, no overlap].
    #[arg(long)]
    pub stride: Option<usize>,
    /// csv and tables: the column holding the class (name, or 0-based number); an empty cell
    /// or -1 = unlabeled [default for tables: a column named label, class, target or y].
    #[arg(long)]
    pub label_column: Option<String>,
    /// csv long: the column identifying a recording; windows never span two recordings.
    #[arg(long)]
    pub sequence_column: Option<String>,
    /// csv and tables: the value (feature) columns in order (names or 0-based numbers)
    /// [default: all others].
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// csv and tables: the cell separator; ' ' means runs of spaces and tabs [default: ',' for
    /// csv; tables: tab for .tsv, else guessed from the first line].
    #[arg(long)]
    pub delimiter: Option<char>,
    /// csv and tables: the file has no header line (columns are then given by number).
    #[arg(long)]
    pub no_header: bool,
    /// How channels are standardised, with statistics of the training windows [default: standard].
    #[arg(long, value_enum)]
    pub scaling: Option<ScalingArg>,
}

impl SeriesArgs {
    pub fn options(&self) -> SeriesOptions {
        SeriesOptions {
            channels: self.channels.clone(),
            train_csv: self.train_csv.clone(),
            test_csv: self.test_csv.clone(),
            test_fraction: self.test_fraction,
            csv_layout: self.csv_layout.map(|l| match l {
                CsvLayoutArg::Long => SeriesLayout::Long,
                CsvLayoutArg::Flat => SeriesLayout::Flat,
            }),
            steps: self.steps,
            channels_count: self.channels_count,
            csv_order: self.csv_order.map(|o| match o {
                CsvOrderArg::StepMajor => SeriesOrder::StepMajor,
                CsvOrderArg::ChannelMajor => SeriesOrder::ChannelMajor,
            }),
            window: self.window,
            stride: self.stride,
            label_column: self.label_column.clone(),
            sequence_column: self.sequence_column.clone(),
            columns: self.columns.clone(),
            delimiter: self.delimiter,
            no_header: self.no_header,
            scaling: self.scaling.map(|x| match x {
                ScalingArg::Standard => SeriesScaling::Standard,
                ScalingArg::Robust => SeriesScaling::Robust,
            }),
        }
    }
}

#[derive(clap::Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub series: SeriesArgs,
    #[command(flatten)]
    pub training: TrainingArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub dev: DeviceArgs,
}

#[derive(clap::Args)]
#[command(next_help_heading = "Model")]
pub struct ModelArgs {
    /// The model [default: ss-dense].
    #[arg(long, value_parser = model_parser())]
    pub model: Option<(Family, Kind)>,
    /// Encoder widths (the decoder mirrors them); for a CNN its dense layers [default: 1024,1024
    /// dense (256,256 on a table of real values, default recipe), 512 CNN, 40,40,30 RNN
    /// (dense,lstm,dense)].
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// CNN convolutions as channels:kernel:stride [default: 64:3:1,64:3:1,64:3:2].
    #[arg(long, value_delimiter = ',', value_parser = parse_conv)]
    pub conv: Option<Vec<ConvLayer>>,
    /// CNN dropout rate after its dense layers [default: 0.5].
    #[arg(long, allow_negative_numbers = true)]
    pub dropout: Option<f32>,
    /// Dimensions of z [default: 2].
    #[arg(long)]
    pub latent: Option<usize>,
    /// Weight of the classification loss [default: 100, see README].
    #[arg(long, allow_negative_numbers = true)]
    pub alpha: Option<f32>,
    /// Weight of the KL term (beta of a beta-VAE) [default: 1, the ELBO].
    #[arg(long, allow_negative_numbers = true)]
    pub kl_weight: Option<f32>,
    /// SS models: weight of the entropy of pi on unlabeled samples (entropy minimisation; a
    /// mean over the batch as the ELBO terms) [default: the recipe's: 10 default, 0 paper].
    #[arg(long, allow_negative_numbers = true)]
    pub entropy_weight: Option<f32>,
    /// Models with a classifier: label smoothing E in [0, 1) of the cross-entropy on labeled
    /// samples, whose target becomes (1 - E) one-hot + E / classes [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    pub label_smoothing: Option<f32>,
    /// SS models: weight W of pi's consistency under a perturbation of the input,
    /// KL(pi(x) || pi(x + noise)) averaged over the batch (a second encoder pass with shared
    /// weights) [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    pub consistency_weight: Option<f32>,
    /// The consistency term's noise: standard deviation S of the Gaussian noise added to each
    /// input value (pixels in [0, 1]; standardised features) [default: 0.3].
    #[arg(long, allow_negative_numbers = true)]
    pub consistency_noise: Option<f32>,
    /// The consistency term's translation: each sample shifted by up to P pixels (images) or
    /// steps (series windows), zeros shifted in [default: 0].
    #[arg(long)]
    pub consistency_shift: Option<u32>,
    /// The consistency term's amplitude scaling: each sample times 1 + S N(0, 1) [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    pub consistency_scale: Option<f32>,
    /// What feeds the decoder in training [default: pi].
    #[arg(long, value_enum)]
    pub decoder_input: Option<DecoderInputArg>,
    /// SS models: how pi reaches the decoder, in training and inference [default: softmax].
    #[arg(long, value_enum)]
    pub pi_to_decoder: Option<PiToDecoderArg>,
    /// The temperature T of `--pi-to-decoder gumbel` (> 0; lower is closer to one-hot)
    /// [default: 1].
    #[arg(long)]
    pub gumbel_temperature: Option<f32>,
    /// Gaussian decoders (recurrent models, dense models of tables): the floor F in (0, 1] of
    /// the variance softplus(raw) + F, in standardised units (0.01: a standard deviation of at
    /// least a tenth of the feature's) [default: SS dense models of tables 0.1 under the default
    /// recipe; otherwise 1e-6].
    #[arg(long)]
    pub var_floor: Option<f32>,
    /// How reconstruction and KL are normalised [default: sum; mean for RNN models].
    #[arg(long, value_enum)]
    pub loss_norm: Option<LossNormArg>,
    /// Bound on |log-variance| (logvar = L tanh(raw / L)); 0 disables it [default: 20].
    #[arg(long, allow_negative_numbers = true)]
    pub logvar_limit: Option<f32>,
    /// M2 / GM-DGM: classifier slots beyond the dataset's classes, for classes learned without
    /// labels (prior mass: see README) [default: 0].
    #[arg(long)]
    pub extra_slots: Option<usize>,
    /// RNN models: keep the training windows on the device as f16 (half the memory); values
    /// are rounded to 3 significant digits.
    #[arg(long)]
    pub data_f16: bool,
    /// Dense models on a table: the decoder's likelihood [default: bernoulli when every
    /// feature is in [0, 1], else gaussian on standardised features].
    #[arg(long, value_enum)]
    pub likelihood: Option<LikelihoodArg>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LikelihoodArg {
    /// Sigmoid means, binary cross-entropy: values in [0, 1].
    Bernoulli,
    /// A mean and a variance per feature: real-valued features, standardised.
    Gaussian,
}

#[derive(clap::Args)]
#[command(next_help_heading = "Data")]
pub struct DataArgs {
    /// Your own data: a folder of images (one sub-folder per class, `unlabeled/` for images
    /// without a label, or a labels.csv of file,label), a table of features for the dense
    /// models (.csv, .tsv, .txt, .npy, optionally .gz) or a sensor log (a time-series CSV, with
    /// a recurrent model or --csv-layout). See README, "Your own data".
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// The test split of --data, in the same format [default: hold out --test-fraction of the
    /// labeled samples].
    #[arg(long, value_name = "PATH")]
    pub test_data: Option<PathBuf>,
    /// Anomaly runs on your own data: the normal classes (by name); training keeps only them,
    /// and every other class of the training or test data is scored as an anomaly (folders
    /// named normal/ and abnormal/ need no flag).
    #[arg(long, value_delimiter = ',')]
    pub normal_classes: Option<Vec<String>>,
    /// Image folders: resize every image to HEIGHTxWIDTH [default: the images' size, when they
    /// all share one].
    #[arg(long, value_name = "HxW", value_parser = parse_size)]
    pub image_size: Option<[usize; 2]>,
    /// Image folders: convert every image to 1 (grayscale) or 3 (RGB) channels [default: the
    /// files' own, when they all agree].
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub image_channels: Option<u8>,
    /// Image folders: the sub-folder of images without a label [default: unlabeled].
    #[arg(long)]
    pub unlabeled_dir: Option<String>,
    /// Tables: a label value that means unlabeled, besides an empty cell and -1.
    #[arg(long)]
    pub unlabeled_value: Option<String>,
    /// Tables: the column of row ids used in predictions [default: a column named id, else
    /// row numbers].
    #[arg(long)]
    pub id_column: Option<String>,
    /// NPY tables: the labels as a separate 1-D array (integers, -1 = unlabeled, or strings).
    #[arg(long)]
    pub labels_file: Option<PathBuf>,
    /// NPY tables: the labels of --test-data.
    #[arg(long)]
    pub test_labels_file: Option<PathBuf>,
    /// Stream the training set to the device in shards instead of holding it resident; NPY
    /// data (--data x.npy) is then read from disk and never loaded whole [default: only when
    /// the set does not fit the device or memory].
    #[arg(long)]
    pub stream: bool,
    /// Streamed training: batches per shard [default: 64].
    #[arg(long)]
    pub shard_steps: Option<usize>,
    /// A built-in dataset [default: synthetic; with --data: chosen from the path].
    #[arg(long, value_parser = dataset_parser())]
    pub dataset: Option<DatasetName>,
    /// Folder holding the dataset's files [default: $SSVAE_DATA/<dataset>, then ./data/<dataset>].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Number of labeled training samples (class-balanced), or `all` [default: 100] (with
    /// --data: all the labels the data has).
    #[arg(long)]
    pub labels: Option<String>,
    /// Fraction of training samples that keep their label, in (0, 1] (instead of --labels).
    #[arg(long, conflicts_with = "labels")]
    pub label_fraction: Option<f64>,
    /// Semi-unsupervised mode: only these classes keep labels (e.g. 0,1,2,8,9); --labels then
    /// counts labels over these classes. Scored by cluster-and-label.
    #[arg(long, value_delimiter = ',')]
    pub labeled_classes: Option<Vec<usize>>,
    /// Use only the first N training samples (quick experiments).
    #[arg(long)]
    pub max_train: Option<usize>,
    /// Hold out the last N training samples and evaluate on them instead of the test split
    /// (for choosing hyper-parameters without looking at the test set).
    #[arg(long)]
    pub validation: Option<usize>,
    /// Anomaly protocol: leave this class out of training, then score the test set and report
    /// the ROC AUC of detecting it (what `ssvae anomaly` requires).
    #[arg(long)]
    pub anomaly_class: Option<usize>,
    /// Built-in dataset sizes (synthetic, synthetic-sensor): training samples [default: 10000].
    #[arg(long)]
    pub synthetic_train: Option<usize>,
    /// Built-in dataset sizes: test samples [default: 2000].
    #[arg(long)]
    pub synthetic_test: Option<usize>,
}

#[derive(clap::Args)]
#[command(next_help_heading = "Training")]
pub struct TrainingArgs {
    /// Epochs: passes over the training set, or --min-epoch-steps steps where a pass is fewer
    /// [default: 10; with --resume: additional epochs].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// The fewest steps of an epoch: a small training set is passed over several times an
    /// epoch (ten one-pass epochs of a table of a few hundred rows are a few dozen steps)
    /// [default: 100 for dense models of a table of real values while less than 0.25 of its
    /// rows are labeled (default recipe), else 0, one pass].
    #[arg(long)]
    pub min_epoch_steps: Option<usize>,
    /// Rows per step; SS models mix labeled and unlabeled rows (see --labeled-share)
    /// [default: 128].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Seed of the weights, the labeled subset, the batches and the noise [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// The optimizer [default: rmsprop].
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,
    /// Learning rate [default: 5e-4 for dense and CNN models, 1e-3 for RNN ones].
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f32>,
    /// Continue a saved run (weights, optimizer state, position in the batches), e.g. with more
    /// --labels; then only --epochs, --labels, --label-fraction, --lr, --alpha, --metrics-every,
    /// --score-samples and --out may be given (flags that change the model or data are refused).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Read the loss back (and check for divergence) every N steps [default: 50].
    #[arg(long)]
    pub metrics_every: Option<usize>,
    /// Model selection without the test set: hold out N labeled samples of each class as a
    /// validation set (they train as unlabeled samples); after every epoch it is scored and the
    /// best epoch (validation accuracy, then log loss) is kept as the run's model
    /// (checkpoint/best.safetensors, used by eval, predict and export) and reported.
    #[arg(long, value_name = "N")]
    pub validation_labels: Option<usize>,
    /// With --validation-labels: stop after this many epochs without a better validation score.
    #[arg(long, requires = "validation_labels")]
    pub patience: Option<usize>,
    /// Weight averaging: the run's model (checkpoint/best.safetensors, used by eval, predict
    /// and export) is the mean of the weights at the end of the last F of the epochs, e.g. 0.5:
    /// the second half [default: off: the last epoch's weights].
    #[arg(long, value_name = "F")]
    pub average_weights: Option<f64>,
    /// The learning rate over the run: constant, a cosine down to 1/20 of --lr at the last
    /// step, or a cooldown (constant, then that cosine over the last 20% of the steps)
    /// [default: cooldown; --recipe paper: constant].
    #[arg(long, value_enum)]
    pub lr_schedule: Option<LrScheduleArg>,
    /// SS models with --entropy-weight: the fraction of the run over which the entropy term's
    /// weight rises linearly from 0 [default: 0].
    #[arg(long)]
    pub entropy_warmup: Option<f32>,
    /// SS and EU models: the fraction of the run over which the KL term's weight rises linearly
    /// from 0 to --kl-weight (KL annealing) [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    pub kl_warmup: Option<f32>,
    /// Semi-supervised models (SS, M2, GM-DGM): the share R in (0, 1) of each batch's rows drawn
    /// from the labeled samples, floor(R x --batch-size); the rest are unlabeled, and an epoch is
    /// one pass of them over the training set [default: 0.5; SS models under the default recipe:
    /// 0.1 when less than 0.1 of the training set is labeled, else 0.5].
    #[arg(long, allow_negative_numbers = true)]
    pub labeled_share: Option<f64>,
    /// Which protocol fills in the settings not given: `default` (ssvae's, chosen on validation
    /// splits: entropy minimisation and a smaller labeled share with few labels on SS models;
    /// README "Recipes") or
    /// `paper` (the paper's protocol, as the reproduction tables ran it) [default: default].
    #[arg(long, value_enum)]
    pub recipe: Option<RecipeArg>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecipeArg {
    /// ssvae's settings, chosen on validation splits (README, "Recipes").
    Default,
    /// The paper's protocol, as the reproduction tables ran it.
    Paper,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LrScheduleArg {
    /// The optimizer's rate throughout (the paper's).
    Constant,
    /// From --lr down to 1/20 of it at the last step, along a half cosine.
    Cosine,
    /// --lr for the first 80% of the steps, then down to 1/20 of it along a half cosine.
    Cooldown,
}

#[derive(clap::Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Output folder [default: runs/<model>-<dataset>-<labels>-s<seed>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress bar or per-epoch lines (the final JSON line is still printed).
    #[arg(long)]
    pub quiet: bool,
    /// Draws of z per anomaly score [default: 10].
    #[arg(long)]
    pub score_samples: Option<usize>,
}

/// Parses one `--conv` layer, "channels:kernel:stride".
fn parse_conv(s: &str) -> std::result::Result<ConvLayer, String> {
    let v: Vec<usize> = s
        .split(':')
        .map(|p| p.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("'{s}' is not channels:kernel:stride (three whole numbers)"))?;
    match v[..] {
        [channels, kernel, stride] => Ok(ConvLayer { channels, kernel, stride }),
        _ => Err(format!("'{s}' is not channels:kernel:stride")),
    }
}

/// Parses `--image-size`, "HxW".
fn parse_size(s: &str) -> std::result::Result<[usize; 2], String> {
    let parts: Vec<&str> = s.split(['x', 'X']).collect();
    match parts[..] {
        [h, w] => match (h.trim().parse::<usize>(), w.trim().parse::<usize>()) {
            (Ok(h), Ok(w)) if h > 0 && w > 0 => Ok([h, w]),
            _ => Err(format!("'{s}' is not HEIGHTxWIDTH with two whole numbers >= 1 (e.g. 64x64)")),
        },
        _ => Err(format!("'{s}' is not HEIGHTxWIDTH (e.g. 64x64)")),
    }
}

fn parse_labels(labels: &Option<String>, fraction: Option<f64>) -> Result<Option<LabelSpec>> {
    Ok(match (labels.as_deref(), fraction) {
        (_, Some(f)) => Some(LabelSpec::Fraction(f)),
        (Some("all"), None) => Some(LabelSpec::All),
        (Some(n), None) => Some(LabelSpec::Count(n.parse().with_context(|| format!("--labels: expected a number or 'all', got '{n}'"))?)),
        (None, None) => None,
    })
}

impl TrainArgs {
    /// Sets every field of `s` that a flag gave (the model and dataset too when given).
    pub fn apply(&self, s: &mut RunSpec) -> Result<()> {
        let (m, d, t, o) = (&self.model, &self.data, &self.training, &self.output);
        if let Some((family, kind)) = m.model {
            s.model.family = family;
            s.model.kind = kind;
        }
        let c = &mut s.model;
        set(&mut c.hidden, m.hidden.clone());
        set(&mut c.conv, m.conv.clone());
        set(&mut c.dropout, m.dropout);
        set(&mut c.latent, m.latent);
        set(&mut c.alpha, m.alpha);
        set(&mut c.kl_weight, m.kl_weight);
        set(&mut c.entropy_weight, m.entropy_weight);
        set(&mut c.label_smoothing, m.label_smoothing);
        set(&mut c.consistency_weight, m.consistency_weight);
        set(&mut c.consistency_noise, m.consistency_noise);
        set(&mut c.consistency_shift, m.consistency_shift);
        set(&mut c.consistency_scale, m.consistency_scale);
        set(
            &mut c.decoder_input,
            m.decoder_input.map(|x| match x {
                DecoderInputArg::Pi => DecoderInput::Pi,
                DecoderInputArg::TrueLabel => DecoderInput::TrueLabel,
            }),
        );
        set(
            &mut c.pi_to_decoder,
            m.pi_to_decoder.map(|x| match x {
                PiToDecoderArg::Softmax => PiToDecoder::Softmax,
                PiToDecoderArg::StraightThrough => PiToDecoder::StraightThrough,
                PiToDecoderArg::Gumbel => PiToDecoder::Gumbel,
            }),
        );
        set(&mut c.gumbel_temperature, m.gumbel_temperature);
        set(&mut c.var_floor, m.var_floor);
        set(
            &mut c.loss_norm,
            m.loss_norm.map(|x| match x {
                LossNormArg::Sum => LossNorm::Sum,
                LossNormArg::Mean => LossNorm::Mean,
            }),
        );
        set(&mut c.logvar_limit, m.logvar_limit);
        set(&mut c.extra_slots, m.extra_slots);
        c.data_f16 |= m.data_f16;
        set(
            &mut c.likelihood,
            m.likelihood.map(|l| match l {
                LikelihoodArg::Bernoulli => Likelihood::Bernoulli,
                LikelihoodArg::Gaussian => Likelihood::Gaussian,
            }),
        );

        if let Some(ds) = d.dataset {
            s.data.dataset = ds;
        }
        set(&mut s.data.data_dir, d.data_dir.clone());
        if let Some(l) = parse_labels(&d.labels, d.label_fraction)? {
            s.labels = Some(l);
        }
        set(&mut s.labeled_classes, d.labeled_classes.clone());
        set(&mut s.data.max_train, d.max_train);
        set(&mut s.data.validation, d.validation);
        set(&mut s.data.anomaly_class, d.anomaly_class);
        if let Some(n) = d.synthetic_train {
            s.data.synthetic.0 = n;
        }
        if let Some(n) = d.synthetic_test {
            s.data.synthetic.1 = n;
        }
        let series = self.series.options();
        if series != SeriesOptions::default() {
            s.data.series = series;
        }
        if let Some(p) = &d.data {
            s.data.path = Some(p.clone());
            s.data.dataset = match d.dataset {
                Some(ds) => ds,
                None => run::user_data::kind_of(p, s.model.family, &s.data.series)?,
            };
        }
        set(&mut s.data.test_path, d.test_data.clone());
        set(&mut s.data.normal_classes, d.normal_classes.clone());
        set(&mut s.data.images.size, d.image_size);
        set(&mut s.data.images.channels, d.image_channels.map(usize::from));
        set(&mut s.data.images.unlabeled_dir, d.unlabeled_dir.clone());
        set(&mut s.data.table.unlabeled_value, d.unlabeled_value.clone());
        set(&mut s.data.table.id_column, d.id_column.clone());
        set(&mut s.data.table.labels_file, d.labels_file.clone());
        set(&mut s.data.table.test_labels_file, d.test_labels_file.clone());
        s.data.stream |= d.stream;
        set(&mut s.data.shard_steps, d.shard_steps);
        if s.data.shard_steps == Some(0) {
            anyhow::bail!("--shard-steps must be at least 1");
        }
        if let Some(e) = t.epochs {
            s.epochs = e;
        }
        if let Some(b) = t.batch_size {
            s.batch_size = b;
        }
        if let Some(seed) = t.seed {
            s.seed = seed;
        }
        if let Some(opt) = t.optimizer {
            s.optimizer = match opt {
                OptimizerArg::Rmsprop => run::OptimizerKind::Rmsprop,
                OptimizerArg::Adam => run::OptimizerKind::Adam,
            };
        }
        set(&mut s.lr, t.lr);
        if let Some(n) = t.metrics_every {
            s.metrics_every = n;
        }
        set(&mut s.validation_labels, t.validation_labels);
        set(&mut s.patience, t.patience);
        set(&mut s.average_weights, t.average_weights);
        set(&mut s.entropy_warmup, t.entropy_warmup);
        set(&mut s.kl_warmup, t.kl_warmup);
        set(&mut s.labeled_share, t.labeled_share);
        if let Some(r) = t.recipe {
            s.recipe = match r {
                RecipeArg::Default => run::Recipe::Default,
                RecipeArg::Paper => run::Recipe::Paper,
            };
        }
        set(&mut s.min_epoch_steps, t.min_epoch_steps);
        set(
            &mut s.lr_schedule,
            t.lr_schedule.map(|x| match x {
                LrScheduleArg::Constant => ssvae::train::LrSchedule::Constant,
                LrScheduleArg::Cosine => ssvae::train::LrSchedule::Cosine,
                LrScheduleArg::Cooldown => ssvae::train::LrSchedule::Cooldown,
            }),
        );
        if let Some(n) = o.score_samples {
            s.score_samples = n;
        }
        set(&mut s.out, o.out.clone());
        Ok(())
    }

    /// The spec of a new run: the defaults with the flags applied.
    pub fn spec(&self) -> Result<RunSpec> {
        let mut s = RunSpec::default();
        self.apply(&mut s)?;
        Ok(s)
    }

    /// The flags given that choose the model, the data or the batches: a resumed run keeps
    /// its own, so any of these with `--resume` is refused by name.
    fn fixed_by_resume(&self) -> Vec<&'static str> {
        let (m, d, t) = (&self.model, &self.data, &self.training);
        let flags = [
            (m.model.is_some(), "--model"),
            (m.hidden.is_some(), "--hidden"),
            (m.conv.is_some(), "--conv"),
            (m.dropout.is_some(), "--dropout"),
            (m.latent.is_some(), "--latent"),
            (m.kl_weight.is_some(), "--kl-weight"),
            (m.entropy_weight.is_some(), "--entropy-weight"),
            (m.label_smoothing.is_some(), "--label-smoothing"),
            (m.consistency_weight.is_some(), "--consistency-weight"),
            (m.consistency_noise.is_some(), "--consistency-noise"),
            (m.consistency_shift.is_some(), "--consistency-shift"),
            (m.consistency_scale.is_some(), "--consistency-scale"),
            (m.decoder_input.is_some(), "--decoder-input"),
            (m.pi_to_decoder.is_some(), "--pi-to-decoder"),
            (m.gumbel_temperature.is_some(), "--gumbel-temperature"),
            (m.var_floor.is_some(), "--var-floor"),
            (m.loss_norm.is_some(), "--loss-norm"),
            (m.logvar_limit.is_some(), "--logvar-limit"),
            (m.extra_slots.is_some(), "--extra-slots"),
            (m.data_f16, "--data-f16"),
            (m.likelihood.is_some(), "--likelihood"),
            (d.data.is_some(), "--data"),
            (d.test_data.is_some(), "--test-data"),
            (d.normal_classes.is_some(), "--normal-classes"),
            (d.image_size.is_some(), "--image-size"),
            (d.image_channels.is_some(), "--image-channels"),
            (d.unlabeled_dir.is_some(), "--unlabeled-dir"),
            (d.unlabeled_value.is_some(), "--unlabeled-value"),
            (d.id_column.is_some(), "--id-column"),
            (d.labels_file.is_some(), "--labels-file"),
            (d.test_labels_file.is_some(), "--test-labels-file"),
            (d.stream, "--stream"),
            (d.shard_steps.is_some(), "--shard-steps"),
            (d.data_dir.is_some(), "--data-dir"),
            (d.labeled_classes.is_some(), "--labeled-classes"),
            (d.max_train.is_some(), "--max-train"),
            (d.validation.is_some(), "--validation"),
            (d.anomaly_class.is_some(), "--anomaly-class"),
            (d.synthetic_train.is_some(), "--synthetic-train"),
            (d.synthetic_test.is_some(), "--synthetic-test"),
            (self.series.options() != SeriesOptions::default(), "the time-series data flags"),
            (t.batch_size.is_some(), "--batch-size"),
            (t.seed.is_some(), "--seed"),
            (t.optimizer.is_some(), "--optimizer"),
            (t.validation_labels.is_some(), "--validation-labels"),
            (t.patience.is_some(), "--patience"),
            (t.average_weights.is_some(), "--average-weights"),
            (t.lr_schedule.is_some(), "--lr-schedule"),
            (t.recipe.is_some(), "--recipe"),
            (t.entropy_warmup.is_some(), "--entropy-warmup"),
            (t.kl_warmup.is_some(), "--kl-warmup"),
            (t.labeled_share.is_some(), "--labeled-share"),
            (t.min_epoch_steps.is_some(), "--min-epoch-steps"),
        ];
        flags.iter().filter(|(given, _)| *given).map(|(_, f)| *f).collect()
    }

    /// What `--resume` changes.
    pub fn resume_changes(&self) -> Result<ResumeChanges> {
        if let (Some(dir), fixed) = (&self.training.resume, self.fixed_by_resume()) {
            if !fixed.is_empty() {
                bail!(
                    "--resume {}: {} would change the saved run's model, data or batches, which a resume keeps; with --resume give only --epochs, --labels or --label-fraction, --lr, --alpha, --metrics-every, --score-samples and --out (or train a new run)",
                    dir.display(),
                    fixed.join(", ")
                );
            }
        }
        Ok(ResumeChanges {
            metrics_every: self.training.metrics_every,
            epochs: self.training.epochs,
            labels: parse_labels(&self.data.labels, self.data.label_fraction)?,
            lr: self.training.lr,
            alpha: self.model.alpha,
            score_samples: self.output.score_samples,
            out: self.output.out.clone(),
        })
    }
}

fn set<T>(field: &mut Option<T>, v: Option<T>) {
    if v.is_some() {
        *field = v;
    }
}

pub fn train(a: TrainArgs) -> Result<()> {
    let mut progress = Progress::new(a.output.quiet).stop_on_ctrl_c();
    let summary = match &a.training.resume {
        Some(dir) => {
            let changes = a.resume_changes()?;
            if let Some(ds) = a.data.dataset {
                let saved = run::RunConfig::load(dir).with_context(|| format!("--resume {}", dir.display()))?;
                if ds != saved.spec.data.dataset {
                    bail!("--resume: the run was trained on {}, not {ds}", saved.spec.data.dataset);
                }
            }
            on_backend!(a.dev, be => run::resume(be, dir, &changes, &mut progress)?)
        }
        None => {
            let spec = a.spec()?;
            on_backend!(a.dev, be => run::train(be, &spec, &mut progress)?)
        }
    };
    super::finish(&summary)
}

/// `ssvae anomaly`: `train` with a required --anomaly-class.
pub fn anomaly(a: TrainArgs) -> Result<()> {
    if a.data.anomaly_class.is_none() && a.data.normal_classes.is_none() && a.data.data.is_none() && a.training.resume.is_none() {
        bail!("ssvae anomaly needs --anomaly-class K (the class left out of training), or --data with --normal-classes");
    }
    train(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[derive(clap::Parser)]
    struct P {
        #[command(flatten)]
        a: TrainArgs,
    }

    /// The defaults written in the help are RunSpec::default()'s.
    #[test]
    fn help_defaults_are_the_specs() {
        let help = P::command().render_long_help().to_string();
        let d = RunSpec::default();
        for (flag, text) in [
            ("--epochs", format!("[default: {}", d.epochs)),
            ("--batch-size", format!("[default: {}]", d.batch_size)),
            ("--seed", format!("[default: {}]", d.seed)),
            ("--metrics-every", format!("[default: {}]", d.metrics_every)),
            ("--score-samples", format!("[default: {}]", d.score_samples)),
            ("--synthetic-train", format!("[default: {}]", d.data.synthetic.0)),
            ("--synthetic-test", format!("[default: {}]", d.data.synthetic.1)),
            (
                "--labels",
                format!(
                    "[default: {}]",
                    match run::DEFAULT_LABELS {
                        LabelSpec::Count(n) => n,
                        _ => 0,
                    }
                ),
            ),
            ("--alpha", format!("[default: {}", ssvae::model::DEFAULT_ALPHA)),
            (
                "--labeled-share",
                format!(
                    "[default: {}; SS models under the default recipe: {} when less than {} of the training set is labeled, else {}]",
                    ssvae::data::DEFAULT_LABELED_SHARE,
                    ssvae::run::RECIPE_LABELED_SHARE,
                    ssvae::run::RECIPE_HALF_SHARE_FRACTION,
                    ssvae::data::DEFAULT_LABELED_SHARE
                ),
            ),
            ("--kl-warmup", format!("[default: {}]", ssvae::run::RECIPE_KL_WARMUP)),
            ("--label-smoothing", format!("[default: {}]", ssvae::run::RECIPE_LABEL_SMOOTHING)),
            ("--pi-to-decoder", "[default: softmax]".to_string()),
            (
                "--min-epoch-steps",
                format!(
                    "[default: {} for dense models of a table of real values while less than {} of its rows are labeled (default recipe), else 0, one pass]",
                    ssvae::run::RECIPE_TABLE_MIN_EPOCH_STEPS,
                    ssvae::run::RECIPE_TABLE_FEW_LABELS_FRACTION
                ),
            ),
            (
                "--hidden",
                format!(
                    "[default: 1024,1024 dense ({},{} on a table of real values, default recipe), 512 CNN",
                    ssvae::run::RECIPE_TABLE_HIDDEN[0],
                    ssvae::run::RECIPE_TABLE_HIDDEN[1]
                ),
            ),
        ] {
            let at = help.find(&format!("{flag} ")).unwrap_or_else(|| panic!("{flag} not in help"));
            let next = help[at + 2..].find("\n  -").map_or(help.len(), |i| at + 2 + i);
            assert!(help[at..next].contains(&text), "{flag}: help says {:?}, expected {text}", &help[at..next]);
        }
    }

    /// --min-epoch-steps is passed on as given (the recipe's default for tables is resolved
    /// with the data: `RunSpec::resolve`).
    #[test]
    fn min_epoch_steps_as_given() {
        let spec = |args: &[&str]| {
            let p = <P as clap::Parser>::try_parse_from(std::iter::once("x").chain(args.iter().copied())).unwrap();
            p.a.spec().unwrap().min_epoch_steps
        };
        assert_eq!(spec(&[]), None);
        assert_eq!(spec(&["--min-epoch-steps", "30"]), Some(30));
        assert_eq!(spec(&["--recipe", "paper", "--min-epoch-steps", "30"]), Some(30));
    }

    #[test]
    fn given_flags_override_only_themselves() {
        let p = <P as clap::Parser>::try_parse_from(["x", "--hidden", "256", "--batch-size", "64"]).unwrap();
        let mut s = RunSpec { epochs: 3, ..RunSpec::default() };
        p.a.apply(&mut s).unwrap();
        assert_eq!((s.epochs, s.batch_size, s.model.hidden.clone()), (3, 64, Some(vec![256])));
    }
}
