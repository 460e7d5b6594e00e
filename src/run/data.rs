//! A run's data: which dataset ([`DatasetName`]), where its files are, how a series CSV is read
//! ([`SeriesOptions`]), and the loaded splits ([`Loaded`]). Image sets (`synthetic`, `mnist`,
//! `fashion-mnist`) feed the dense and CNN models, time series (`uci-har`, `synthetic-sensor`,
//! `csv`) the recurrent ones.
//!
//! Series windows are standardised per channel with statistics fitted on the training windows
//! only; the statistics are stored in the run's config.json and re-applied by `eval`, `score`
//! and [`super::Run`], so new data sees the transform the model was trained with.
//!
//! Users' data (`--data`: folders of images, tables, sensor logs) is read by [`super::user_data`].
//! Without a test file, the test split is a stratified fraction of the labeled samples
//! (`test_fraction`, default 0.2), shuffled with the run's seed. In the long CSV layout with
//! `stride` below `window`, windows overlap, so test windows share rows with training ones; give
//! a test file recorded separately for an honest figure.

use std::path::{Path, PathBuf};

use crate::data::{self, CsvLayout, CsvSeriesOptions, FlatOrder, IdxDataset, SeriesDataset, SeriesSplit, Split, Standardizer};
use crate::error::{Error, Result};
use crate::train::TrainData;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

macro_rules! invalid {
    ($($t:tt)*) => { return Err(Error::Invalid(format!($($t)*))) };
}

/// The built-in and file datasets a run can name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    /// Built-in 10-class glyph images (no download).
    #[default]
    Synthetic,
    Mnist,
    FashionMnist,
    /// UCI-HAR's raw inertial signals (windows of 128 steps).
    UciHar,
    /// Built-in vibration windows of a rotating machine with fault modes.
    SyntheticSensor,
    /// A time-series CSV ([`SeriesOptions`]): a sensor log.
    Csv,
    /// Users' folder of images (`--data DIR`, see [`super::user_data`]).
    Folder,
    /// Users' table of features (`--data FILE`: CSV, TSV, NPY).
    Table,
    /// Users' NumPy f32 arrays (`--data FILE.npy`: `[n, steps, channels]` windows or
    /// `[n, features]` rows, labels in `--labels-file`), read row by row from disk when
    /// streamed (see [`npy_split`]).
    Npy,
}

impl DatasetName {
    pub const ALL: [DatasetName; 9] = [
        Self::Synthetic,
        Self::Mnist,
        Self::FashionMnist,
        Self::UciHar,
        Self::SyntheticSensor,
        Self::Csv,
        Self::Folder,
        Self::Table,
        Self::Npy,
    ];

    /// What the dataset is (the CLI's `--dataset` help).
    pub fn about(self) -> &'static str {
        match self {
            Self::Synthetic => "Built-in 10-class glyph images (no download)",
            Self::Mnist => "MNIST's IDX files in --data-dir or $SSVAE_DATA/mnist",
            Self::FashionMnist => "Fashion-MNIST's IDX files in --data-dir or $SSVAE_DATA/fashion-mnist",
            Self::UciHar => "UCI-HAR's raw signals (time series; for the rnn models)",
            Self::SyntheticSensor => "Built-in vibration windows of a rotating machine (time series)",
            Self::Csv => "A sensor log: a time-series CSV (--data FILE with a recurrent model or --csv-layout)",
            Self::Folder => "A folder of images, one sub-folder per class (--data DIR; chosen by --data)",
            Self::Table => "A table of features: CSV, TSV, NPY (--data FILE; chosen by --data)",
            Self::Npy => "NumPy f32 arrays on disk: [n, steps, channels] windows or [n, features] rows (--data FILE.npy --labels-file; streamed with --stream)",
        }
    }

    /// The name as the CLI and config.json spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Synthetic => "synthetic",
            Self::Mnist => "mnist",
            Self::FashionMnist => "fashion-mnist",
            Self::UciHar => "uci-har",
            Self::SyntheticSensor => "synthetic-sensor",
            Self::Csv => "csv",
            Self::Folder => "folder",
            Self::Table => "table",
            Self::Npy => "npy",
        }
    }

    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == name).ok_or_else(|| {
            Error::Invalid(format!(
                "--dataset: unknown dataset '{name}'; use synthetic, mnist, fashion-mnist (images), uci-har, synthetic-sensor, csv (time series), or give your own data with --data PATH"
            ))
        })
    }

    /// Whether the dataset holds time series (for the recurrent models).
    pub fn is_series(self) -> bool {
        matches!(self, Self::UciHar | Self::SyntheticSensor | Self::Csv)
    }

    /// Whether the data is the user's own (`--data`): it brings its own labels and class names.
    pub fn is_users(self) -> bool {
        matches!(self, Self::Csv | Self::Folder | Self::Table | Self::Npy)
    }
}

impl std::fmt::Display for DatasetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a series CSV lays out its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeriesLayout {
    /// One row per time step, cut into windows.
    Long,
    /// One row per window, its steps x channels values in columns.
    Flat,
}

/// How series channels are standardised (statistics of the training windows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeriesScaling {
    /// Mean and standard deviation.
    Standard,
    /// Median and 1.4826 x median absolute deviation: a few extreme values do not set the scale;
    /// standardised values are clipped to +-[`ROBUST_CLIP`].
    Robust,
}

/// How the columns of a flat window are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeriesOrder {
    StepMajor,
    ChannelMajor,
}

/// Options of the time-series datasets (recorded in config.json, so eval and score read data
/// the same way). Field names are the CLI's flags.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SeriesOptions {
    /// uci-har: the signals to use (default: the paper's six).
    pub channels: Option<Vec<String>>,
    pub train_csv: Option<PathBuf>,
    pub test_csv: Option<PathBuf>,
    pub test_fraction: Option<f64>,
    pub csv_layout: Option<SeriesLayout>,
    pub steps: Option<usize>,
    pub channels_count: Option<usize>,
    pub csv_order: Option<SeriesOrder>,
    pub window: Option<usize>,
    pub stride: Option<usize>,
    pub label_column: Option<String>,
    pub sequence_column: Option<String>,
    pub columns: Option<Vec<String>>,
    pub delimiter: Option<char>,
    pub no_header: bool,
    /// How channels are standardised (default: standard).
    pub scaling: Option<SeriesScaling>,
}

/// Where a run's samples come from and which of them it trains and is evaluated on.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataSpec {
    pub dataset: DatasetName,
    /// Folder holding the dataset's files (default: $SSVAE_DATA/<dataset>, then ./data/<dataset>).
    pub data_dir: Option<PathBuf>,
    /// Built-in dataset sizes (train, test), for synthetic and synthetic-sensor.
    pub synthetic: (usize, usize),
    pub series: SeriesOptions,
    /// Use only the first N training samples.
    pub max_train: Option<usize>,
    /// Hold out the last N training samples and evaluate on them instead of the test split.
    pub validation: Option<usize>,
    /// Anomaly protocol: this class is left out of training and detected in the test split.
    pub anomaly_class: Option<usize>,
    /// Users' data (`--data`): a folder of images, a table or a sensor log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Users' data: the test split in the same format (`--test-data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_path: Option<PathBuf>,
    #[serde(default)]
    pub images: ImageOptions,
    #[serde(default)]
    pub table: TableSettings,
    /// Anomaly protocol on users' data: these classes are normal; training keeps only them and
    /// every other class (of the training or the test split) is an anomaly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normal_classes: Option<Vec<String>>,
    /// Stream the training set to the device in shards instead of holding it resident (set by
    /// `--stream`, or by the run itself when the set does not fit; recorded so a resume does
    /// the same). An NPY set (`npy`) is then read from disk and never loaded whole.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// Batches per streamed shard (default [`DEFAULT_SHARD_STEPS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_steps: Option<usize>,
}

/// Batches per shard of a streamed training set.
pub const DEFAULT_SHARD_STEPS: usize = 64;

impl Default for DataSpec {
    fn default() -> Self {
        DataSpec {
            dataset: DatasetName::Synthetic,
            data_dir: None,
            synthetic: (10000, 2000),
            series: SeriesOptions::default(),
            max_train: None,
            validation: None,
            anomaly_class: None,
            path: None,
            test_path: None,
            images: ImageOptions::default(),
            table: TableSettings::default(),
            normal_classes: None,
            stream: false,
            shard_steps: None,
        }
    }
}

/// How an image folder is read (recorded in config.json; `predict` reads new images the same
/// way).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ImageOptions {
    /// Resize every image to (height, width).
    pub size: Option<[usize; 2]>,
    /// Convert every image to 1 (grayscale) or 3 (RGB) channels.
    pub channels: Option<usize>,
    /// The sub-folder of unlabeled images (default `unlabeled`).
    pub unlabeled_dir: Option<String>,
}

/// Table settings beyond the ones tables share with series CSVs (label column, feature
/// columns, delimiter, header).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TableSettings {
    /// A label value that means "unlabeled" (besides an empty cell and -1).
    pub unlabeled_value: Option<String>,
    /// The column of row ids (default: a column named `id`, else row numbers).
    pub id_column: Option<String>,
    /// NPY features: the labels as a separate 1-D array.
    pub labels_file: Option<PathBuf>,
    /// NPY: the test split's labels.
    pub test_labels_file: Option<PathBuf>,
}

/// A stratified, seeded test split of the LABELED samples: `round(fraction x count)` of each
/// class (at least one when the class has two or more samples, none when it has one), drawn
/// at random; unlabeled samples all stay in training. Returns sorted (train, test) indices.
pub fn stratified_split(labels: &[Option<u8>], fraction: f64, seed: u64, class_names: &[String]) -> Result<(Vec<usize>, Vec<usize>)> {
    let classes = labels.iter().flatten().map(|&l| l as usize + 1).max().unwrap_or(0);
    let mut per = vec![Vec::new(); classes];
    for (i, l) in labels.iter().enumerate() {
        if let Some(l) = l {
            per[*l as usize].push(i);
        }
    }
    // a stream of its own, so the split does not move when other draws of the seed change
    let mut rng = StdRng::seed_from_u64(seed ^ SPLIT_STREAM);
    let mut test = Vec::new();
    for idx in per.iter_mut() {
        let k = if idx.len() < 2 { 0 } else { ((idx.len() as f64 * fraction).round() as usize).clamp(1, idx.len() - 1) };
        idx.shuffle(&mut rng);
        test.extend_from_slice(&idx[..k]);
    }
    if test.is_empty() {
        invalid!(
            "no labeled samples to hold out as a test split (classes: {}); label more samples or give --test-data",
            class_names.join(", ")
        );
    }
    test.sort_unstable();
    let mut is_test = vec![false; labels.len()];
    test.iter().for_each(|&i| is_test[i] = true);
    let train = (0..labels.len()).filter(|&i| !is_test[i]).collect();
    eprintln!(
        "note: test split: {} of the {} labeled samples ({:.0}% of each class, stratified, shuffled with seed {seed}); the other samples train",
        test.len(),
        labels.iter().flatten().count(),
        fraction * 100.0
    );
    Ok((train, test))
}

/// Separates the split's random stream from the others drawn from the seed.
const SPLIT_STREAM: u64 = 0x7e57_5091_17ab_cdef;

/// A loaded dataset of either kind.
#[derive(Clone)]
pub enum Loaded {
    Images(Split),
    Series(SeriesSplit),
}

/// Applies the same expression to the train and test sets of either kind.
macro_rules! both {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            Loaded::Images($s) => $e,
            Loaded::Series($s) => $e,
        }
    };
}

impl Loaded {
    pub fn train(&self) -> TrainData<'_> {
        match self {
            Loaded::Images(s) => TrainData::Images(&s.train),
            Loaded::Series(s) => TrainData::Series(&s.train),
        }
    }
    pub fn test(&self) -> TrainData<'_> {
        match self {
            Loaded::Images(s) => TrainData::Images(&s.test),
            Loaded::Series(s) => TrainData::Series(&s.test),
        }
    }
    /// Keeps the training samples at `idx`.
    pub fn subset_train(&mut self, idx: &[usize]) {
        both!(self, s => s.train = s.train.subset(idx))
    }
    pub fn subset_test(&mut self, idx: &[usize]) {
        both!(self, s => s.test = s.test.subset(idx))
    }
    /// The training samples at `idx` become the test split.
    pub fn test_from_train(&mut self, idx: &[usize]) {
        both!(self, s => s.test = s.train.subset(idx))
    }
}

pub fn labels_of(d: TrainData<'_>) -> Vec<Option<u8>> {
    (0..d.n()).map(|i| d.label(i)).collect()
}

pub fn load_images(name: DatasetName, data_dir: Option<&Path>, synthetic: (usize, usize)) -> Result<Split> {
    if name == DatasetName::Synthetic {
        return Ok(data::synthetic(synthetic.0, synthetic.1, 0));
    }
    let Some(which) = IdxDataset::from_name(name.as_str()) else {
        invalid!("--dataset {name} holds time series, not images");
    };
    let dir = match data_dir {
        Some(d) => d.to_path_buf(),
        None => match data::default_data_dir() {
            Some(root) => root.join(name.as_str()),
            None => invalid!(
                "no data folder for {name}: pass --data-dir DIR or set SSVAE_DATA to a folder containing {name}/ with train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz ({})",
                which.download_hint()
            ),
        },
    };
    data::load_idx_dataset(&dir, which)
}

pub fn load_series(name: DatasetName, data_dir: Option<&Path>, synthetic: (usize, usize), a: &SeriesOptions) -> Result<SeriesSplit> {
    match name {
        DatasetName::SyntheticSensor => Ok(data::sensor_synth(synthetic.0, synthetic.1, 0)),
        DatasetName::UciHar => {
            let dir = match data_dir {
                Some(d) => d.to_path_buf(),
                None => match data::default_data_dir() {
                    Some(root) => root.join("uci-har"),
                    None => invalid!(
                        "no data folder for uci-har: pass --data-dir DIR (the folder the official zip calls 'UCI HAR Dataset') or set SSVAE_DATA to a folder containing uci-har/"
                    ),
                },
            };
            let chans: Vec<&str> = match &a.channels {
                Some(c) => c.iter().map(String::as_str).collect(),
                None => data::HAR_DEFAULT_CHANNELS.to_vec(),
            };
            data::load_har(&dir, &chans).map_err(|e| Error::Invalid(format!("--dataset uci-har: {e}")))
        }
        _ => invalid!("--dataset {name} holds images, not time series"),
    }
}

fn csv_options(a: &SeriesOptions) -> Result<CsvSeriesOptions> {
    let layout = match a.csv_layout.unwrap_or(SeriesLayout::Long) {
        SeriesLayout::Flat => {
            let (Some(steps), Some(channels)) = (a.steps, a.channels_count) else {
                invalid!("--csv-layout flat needs --steps N (time steps per window) and --channels-count C (values per step)");
            };
            let order = match a.csv_order.unwrap_or(SeriesOrder::StepMajor) {
                SeriesOrder::StepMajor => FlatOrder::StepMajor,
                SeriesOrder::ChannelMajor => FlatOrder::ChannelMajor,
            };
            CsvLayout::Flat { steps, channels, order }
        }
        SeriesLayout::Long => {
            let Some(window) = a.window else {
                invalid!("--csv-layout long (one row per time step) needs --window N, the rows per window (e.g. 128)");
            };
            CsvLayout::Long { sequence_column: a.sequence_column.clone(), window, stride: a.stride.unwrap_or(window) }
        }
    };
    let delimiter = match a.delimiter {
        None => b',',
        Some(c) if c.is_ascii() => c as u8,
        Some(c) => invalid!("--delimiter: '{c}' is not a single ASCII character"),
    };
    Ok(CsvSeriesOptions {
        layout,
        header: !a.no_header,
        delimiter,
        label_column: a.label_column.clone(),
        columns: a.columns.clone(),
        class_names: None,
        allow_new_classes: false,
    })
}

fn with_flag<T>(flag: &str, path: &Path, r: Result<T>) -> Result<T> {
    r.map_err(|e| Error::Invalid(format!("{flag} {}: {e}", path.display())))
}

/// The header's one column named label, class, target or y (any case), as tables find theirs;
/// `None` when there is none or more than one.
fn label_column_by_name(path: &Path, delimiter: u8) -> Result<Option<String>> {
    let head = first_line(path)?;
    let cells: Vec<&str> = if delimiter == b' ' { head.split_whitespace().collect() } else { head.split(delimiter as char).collect() };
    let found: Vec<&str> = cells
        .iter()
        .map(|c| c.trim().trim_matches('"'))
        .filter(|c| ["label", "class", "target", "y"].contains(&c.to_ascii_lowercase().as_str()))
        .collect();
    Ok(match found[..] {
        [one] => {
            eprintln!("note: {}: labels from column '{one}' (found by its name; --label-column chooses another)", path.display());
            Some(one.to_string())
        }
        _ => None,
    })
}

pub(super) fn load_csv(a: &SeriesOptions, seed: u64, anomaly: bool) -> Result<SeriesSplit> {
    let Some(path) = &a.train_csv else {
        invalid!(
            "--dataset csv needs --train-csv FILE (and the layout: --csv-layout long --window N, or --csv-layout flat --steps N --channels-count C)"
        );
    };
    let mut opts = csv_options(a)?;
    if opts.label_column.is_none() && opts.header {
        opts.label_column = label_column_by_name(path, opts.delimiter)?;
    }
    let (train, report) = with_flag("--train-csv", path, data::load_csv_series(path, &opts))?;
    if !report.dropped_sequences.is_empty() || report.mixed_label_windows > 0 {
        eprintln!(
            "note: {}: {} sequence(s) shorter than the window dropped, {} window(s) left unlabeled because their rows carry different labels",
            path.display(),
            report.dropped_sequences.len(),
            report.mixed_label_windows
        );
    }
    if let Some(tp) = &a.test_csv {
        let topts = CsvSeriesOptions { class_names: Some(train.class_names.clone()), allow_new_classes: anomaly, ..opts };
        let (test, _) = with_flag("--test-csv", tp, data::load_csv_series(tp, &topts))?;
        if (test.steps, test.channels) != (train.steps, train.channels) {
            invalid!(
                "--test-csv {}: windows of {} steps x {} channels, the training file has {} x {}",
                tp.display(),
                test.steps,
                test.channels,
                train.steps,
                train.channels
            );
        }
        let keep: Vec<usize> = (0..test.n).filter(|&i| test.labels[i].is_some()).collect();
        if keep.is_empty() {
            invalid!("--test-data {}: no labeled window to evaluate on", tp.display());
        }
        let mut train = train;
        if test.class_names.len() > train.class_names.len() {
            train.class_names = test.class_names.clone();
            train.classes = test.classes;
        }
        return Ok(SeriesSplit { train, test: test.subset(&keep) });
    }
    let f = a.test_fraction.unwrap_or(0.2);
    if !(f > 0.0 && f < 1.0) {
        invalid!("--test-fraction must be in (0, 1), got {f}");
    }
    if matches!(opts.layout, CsvLayout::Long { window, stride, .. } if stride < window) {
        eprintln!(
            "note: {}: windows overlap (--stride below --window), so test windows share rows with training ones; give a test file recorded separately (--test-data) for an honest figure",
            path.display()
        );
    }
    let (tr, te) = stratified_split(&train.labels, f, seed, &train.class_names)?;
    Ok(SeriesSplit { test: train.subset(&te), train: train.subset(&tr) })
}

/// Standardises both splits with `stored` (a resumed or evaluated run) or statistics fitted on
/// the training windows (`scaling`); returns what was applied, for config.json.
pub fn standardize(split: &mut SeriesSplit, stored: Option<&[f32]>, scaling: Option<SeriesScaling>) -> Result<Vec<f32>> {
    let s = match stored {
        Some(v) => Standardizer::from_vec(v).map_err(|e| Error::Invalid(format!("config.json: the stored standardizer: {e}")))?,
        None => {
            let s = match scaling.unwrap_or(SeriesScaling::Standard) {
                SeriesScaling::Standard => Standardizer::fit(&split.train)?,
                SeriesScaling::Robust => Standardizer::fit_robust(&split.train)?,
            };
            let constant = s.constant_channels();
            if !constant.is_empty() {
                let names: Vec<&str> = constant.iter().map(|&c| split.train.channel_names.get(c).map_or("?", String::as_str)).collect();
                eprintln!(
                    "note: channel(s) {} are constant in the training windows: they carry no information and are set to 0",
                    names.join(", ")
                );
            }
            s
        }
    };
    if stored.is_none() {
        warn_extremes(&split.train, &s);
    }
    apply_scaling(&s, &mut split.train, scaling).map_err(|e| Error::Invalid(format!("standardizing the training windows: {e}")))?;
    apply_scaling(&s, &mut split.test, scaling).map_err(|e| Error::Invalid(format!("standardizing the test windows: {e}")))?;
    Ok(s.to_vec())
}

/// Robust scaling clips standardised values to this many robust deviations: the extreme values
/// it leaves out of the scale would otherwise reach the network as they are (a 1e30 sentinel
/// made training diverge at once).
pub const ROBUST_CLIP: f32 = 50.0;

/// Standardises `ds` with `s`; robust scaling also clips to [`ROBUST_CLIP`].
fn apply_scaling(s: &Standardizer, ds: &mut SeriesDataset, scaling: Option<SeriesScaling>) -> Result<()> {
    s.apply(ds)?;
    if scaling == Some(SeriesScaling::Robust) {
        ds.values.iter_mut().for_each(|v| *v = v.clamp(-ROBUST_CLIP, ROBUST_CLIP));
    }
    Ok(())
}

/// A channel whose standard deviation is this many times its robust scale (1.4826 x the median
/// absolute deviation, which equals the standard deviation for normal data) has its scale set
/// by a few extreme values: one 1e30 cell among normal readings squeezes every other value to ~0.
const EXTREME_RATIO: f32 = 1000.0;

/// A note for every channel of `train` (raw values) whose standard deviation in `s` a few
/// extreme values set.
fn warn_extremes(train: &SeriesDataset, s: &Standardizer) {
    let c = train.channels;
    for ch in 0..c {
        let mut v: Vec<f32> = train.values.iter().skip(ch).step_by(c.max(1)).copied().collect();
        if v.len() < 8 {
            continue;
        }
        let mid = v.len() / 2;
        let median = *v.select_nth_unstable_by(mid, f32::total_cmp).1;
        let mut dev: Vec<f32> = v.iter().map(|x| (x - median).abs()).collect();
        let mad = *dev.select_nth_unstable_by(mid, f32::total_cmp).1;
        let std = s.std.get(ch).copied().unwrap_or(0.0);
        if mad > 0.0 && std > EXTREME_RATIO * 1.4826 * mad {
            let far = v.iter().fold(0f32, |m, x| m.max((x - median).abs()));
            let name = train.channel_names.get(ch).map_or("?", String::as_str);
            eprintln!(
                "note: channel {name}: its standard deviation ({std:.3e}) is over {EXTREME_RATIO:.0}x the spread of most of its values (median {median:.3e}, a value {far:.3e} away): a few extreme values set its scale and flatten the rest; check the data for a unit or sentinel error, or use --scaling robust"
            );
        }
    }
}

/// Windows to score from a CSV: read with the run's CSV options when it was trained on a CSV
/// (its label column only if the file has one), else one row per window of the model's
/// steps x channels, step-major, with or without a header. Standardised with the run's
/// statistics.
pub fn read_series_input(
    path: &Path,
    series: &SeriesOptions,
    trained_on_csv: bool,
    shape: [usize; 2],
    stored: Option<&[f32]>,
) -> Result<SeriesDataset> {
    let text_head = first_line(path)?;
    let looks_like_header = text_head.split([',', ';', '\t']).any(|c| !c.trim().is_empty() && c.trim().parse::<f64>().is_err());
    let opts = if trained_on_csv {
        let mut o = csv_options(series)?;
        if let Some(l) = &o.label_column {
            let mut cells: Box<dyn Iterator<Item = &str>> =
                if o.delimiter == b' ' { Box::new(text_head.split_whitespace()) } else { Box::new(text_head.split(o.delimiter as char)) };
            if !cells.any(|c| c.trim().trim_matches('"') == l) {
                o.label_column = None;
            }
        } else if o.header {
            o.label_column = label_column_by_name(path, o.delimiter)?;
        }
        o
    } else {
        let mut o = CsvSeriesOptions::flat(shape[0], shape[1]);
        o.header = looks_like_header;
        o
    };
    let (mut ds, _) = with_flag("--input", path, data::load_csv_series(path, &opts))?;
    if [ds.steps, ds.channels] != shape {
        invalid!(
            "--input {}: windows of {} steps x {} channels, the model expects {} x {}",
            path.display(),
            ds.steps,
            ds.channels,
            shape[0],
            shape[1]
        );
    }
    if let Some(v) = stored {
        apply_scaling(&Standardizer::from_vec(v)?, &mut ds, series.scaling)?;
    }
    Ok(ds)
}

pub(crate) fn first_line(path: &Path) -> Result<String> {
    let input_err = |e: std::io::Error| Error::Invalid(format!("--input {}: {e}", path.display()));
    let bytes = std::fs::read(path).map_err(input_err)?;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        let mut s = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut s).map_err(input_err)?;
        s
    } else {
        bytes
    };
    let text = String::from_utf8_lossy(&bytes);
    Ok(text.trim_start_matches('\u{feff}').lines().find(|l| !l.trim().is_empty()).unwrap_or("").to_string())
}

/// Samples from an IDX image file or a CSV (one sample per line) as bytes: values in [0, 1],
/// or whole numbers 0..255; an optional header line is skipped.
pub fn read_samples(path: &Path, dim: usize) -> Result<Vec<u8>> {
    read_images(path, dim, None)
}

/// As [`read_samples`]; an IDX file's images must also be `shape` (height, width, channels:
/// `h x w` for one channel), not merely hold as many values.
pub fn read_images(path: &Path, dim: usize, shape: Option<[usize; 3]>) -> Result<Vec<u8>> {
    if let Ok((dims, bytes)) = data::read_idx(path) {
        let per: usize = dims[1..].iter().product();
        if per != dim {
            invalid!("{}: samples have {per} values ({:?}), the model expects {dim}", path.display(), &dims[1..]);
        }
        if let Some([h, w, c]) = shape {
            let fits = dims[1..] == [h, w, c] || (c == 1 && dims[1..] == [h, w]) || dims.len() == 2;
            if !fits {
                invalid!("{}: images of {:?}, the model was trained on {h}x{w} with {c} channel(s)", path.display(), &dims[1..]);
            }
        }
        if dims[0] == 0 {
            invalid!("{}: the file holds no samples", path.display());
        }
        return Ok(bytes);
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::Invalid(format!("--input {}: {e}", path.display())))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text); // a byte-order mark
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let vals: std::result::Result<Vec<f64>, _> = cells.iter().map(|c| c.parse::<f64>()).collect();
        match vals {
            Ok(v) => {
                if v.len() != dim {
                    invalid!("{} line {}: {} values, the model expects {dim}", path.display(), ln + 1, v.len());
                }
                if let Some(j) = v.iter().position(|x| !x.is_finite() || *x < 0.0) {
                    invalid!("{} line {}, column {}: value {} is not a finite number >= 0", path.display(), ln + 1, j + 1, v[j]);
                }
                rows.push(v);
            }
            // a header: only on the first line, and only if no cell is a number
            Err(_) if ln == 0 && cells.iter().all(|c| c.parse::<f64>().is_err()) => continue,
            Err(e) => invalid!("{} line {}: {e}", path.display(), ln + 1),
        }
    }
    if rows.is_empty() {
        invalid!("{}: no samples", path.display());
    }
    // values in [0, 1], or whole numbers 0..255 (as image files store them)
    let all = || rows.iter().flatten();
    let scale = if all().all(|&v| v <= 1.0) {
        255.0
    } else if all().all(|&v| v <= 255.0 && v.fract() == 0.0) {
        1.0
    } else {
        invalid!("{}: values must be all in [0, 1] or all whole numbers 0..255", path.display());
    };
    Ok(rows.iter().flatten().map(|&v| (v * scale).round() as u8).collect())
}

/// NPY data (`--data x.npy --labels-file y.npy --test-data ... --test-labels-file ...`): the
/// training rows opened on disk, and a split whose test set is read into memory and whose
/// training set has shapes and labels but no values (what a streamed run needs). Classes are
/// the label values 0..=max over both files, named by their numbers.
pub fn npy_split(spec: &DataSpec) -> Result<(SeriesSplit, data::DiskSeries)> {
    let Some(path) = &spec.path else { invalid!("--dataset npy needs --data FILE.npy") };
    let Some(test_path) = &spec.test_path else {
        invalid!("--data {}: NPY data needs its test split as --test-data FILE.npy (and --test-labels-file)", path.display());
    };
    if spec.validation.is_some() || spec.anomaly_class.is_some() || spec.normal_classes.is_some() {
        invalid!("--data {}: NPY data does not support --validation, --anomaly-class or --normal-classes", path.display());
    }
    let mut train = data::DiskSeries::open(path, spec.table.labels_file.as_deref())?;
    if let Some(m) = spec.max_train {
        if m == 0 || m > train.n {
            invalid!("--max-train {m}: must be between 1 and the {} training samples", train.n);
        }
        train.truncate(m);
    }
    let test = data::DiskSeries::open(test_path, spec.table.test_labels_file.as_deref())?;
    if (test.steps, test.channels) != (train.steps, train.channels) {
        invalid!(
            "--test-data {}: rows of {} x {}, the training data {} has {} x {}",
            test_path.display(),
            test.steps,
            test.channels,
            path.display(),
            train.steps,
            train.channels
        );
    }
    let classes = train.labels.iter().chain(&test.labels).flatten().max().map_or(0, |&m| m as usize + 1);
    if classes == 0 {
        invalid!("--data {}: no labels (give --labels-file and --test-labels-file with classes 0, 1, ...; -1 = unlabeled)", path.display());
    }
    let names: Vec<String> = (0..classes).map(|c| c.to_string()).collect();
    let name = |p: &Path| p.file_name().map_or_else(|| p.display().to_string(), |f| f.to_string_lossy().into_owned());
    let test = test.read_all(&name(test_path), names.clone())?;
    let keep: Vec<usize> = (0..test.n).filter(|&i| test.labels[i].is_some()).collect();
    if keep.is_empty() {
        invalid!("--test-data {}: no labeled row to evaluate on", test_path.display());
    }
    Ok((SeriesSplit { train: train.hollow(&name(path), names), test: test.subset(&keep) }, train))
}

/// Whether `path` is an NPY file of f32 rows that [`npy_split`] reads: 3-D (windows), or 2-D
/// when `stream` (a 2-D NPY otherwise stays a table, read whole by the table reader).
pub fn is_npy_rows(path: &Path, stream: bool) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"))
        && data::read_npy_header(path).is_ok_and(|h| h.shape.len() == 3 || (stream && h.shape.len() == 2 && h.descr == "<f4"))
}
