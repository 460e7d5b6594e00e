//! Datasets as the CLI names them: image sets (`synthetic`, `mnist`, `fashion-mnist`) for the
//! dense and CNN models, time series (`uci-har`, `synthetic-sensor`, `csv`) for the recurrent
//! ones. Series windows are standardised per channel with statistics fitted on the training
//! windows only; the statistics are stored in the run's config.json and re-applied by `eval`
//! and `score`, so new data sees the transform the model was trained with.
//!
//! CSV without `--test-csv`: the last `--test-fraction` of the file's windows (default 0.2) is
//! the test split. In the long layout with `--stride` below `--window`, windows overlap, so the
//! first test windows share rows with the last training ones; give a `--test-csv` recorded
//! separately for an honest figure.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ssvae::data::{self, CsvLayout, CsvSeriesOptions, FlatOrder, IdxDataset, SeriesDataset, SeriesSplit, Split, Standardizer};
use ssvae::train::TrainData;

/// Options of the time-series datasets (recorded in config.json, so eval and score read data
/// the same way).
#[derive(clap::Args, Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SeriesArgs {
    /// uci-har: the signals to use, e.g. body_acc_x,body_acc_y (default: the paper's six,
    /// body_acc_{x,y,z} and body_gyro_{x,y,z}; total_acc_{x,y,z} also exist).
    #[arg(long, value_delimiter = ',')]
    pub channels: Option<Vec<String>>,
    /// csv: the training file (.csv or .csv.gz).
    #[arg(long)]
    pub train_csv: Option<PathBuf>,
    /// csv: the test file, read with the training file's classes (default: hold out the last
    /// --test-fraction of the training file's windows).
    #[arg(long)]
    pub test_csv: Option<PathBuf>,
    /// csv: fraction of windows held out as the test split when there is no --test-csv.
    #[arg(long)]
    pub test_fraction: Option<f64>,
    /// csv: `long` (one row per time step, cut into windows; default) or `flat` (one row per
    /// window, its steps x channels values in columns).
    #[arg(long)]
    pub csv_layout: Option<String>,
    /// csv flat: time steps per window.
    #[arg(long)]
    pub steps: Option<usize>,
    /// csv flat: values per step (channels).
    #[arg(long)]
    pub channels_count: Option<usize>,
    /// csv flat: `step-major` (t0c0,t0c1,..; default) or `channel-major` (c0t0,c0t1,..).
    #[arg(long)]
    pub csv_order: Option<String>,
    /// csv long: rows per window.
    #[arg(long)]
    pub window: Option<usize>,
    /// csv long: rows between the starts of two windows (default: --window, no overlap).
    #[arg(long)]
    pub stride: Option<usize>,
    /// csv: the column holding the class (name or 0-based number); an empty cell = unlabeled.
    #[arg(long)]
    pub label_column: Option<String>,
    /// csv long: the column identifying a recording; windows never span two recordings.
    #[arg(long)]
    pub sequence_column: Option<String>,
    /// csv: the value columns in order (names or 0-based numbers; default: all others).
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// csv: the cell separator (default ',').
    #[arg(long)]
    pub delimiter: Option<char>,
    /// csv: the file has no header line (columns are then given by number).
    #[arg(long)]
    pub no_header: bool,
}

pub const SERIES_DATASETS: [&str; 3] = ["uci-har", "synthetic-sensor", "csv"];

pub fn is_series(name: &str) -> bool {
    SERIES_DATASETS.contains(&name)
}

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

/// Loads `name`: an image set as before, or a series set (not yet standardised).
pub fn load_any(name: &str, data_dir: Option<&Path>, synthetic: (usize, usize), series: &SeriesArgs) -> Result<Loaded> {
    if is_series(name) {
        Ok(Loaded::Series(load_series(name, data_dir, synthetic, series)?))
    } else {
        Ok(Loaded::Images(load_images(name, data_dir, synthetic)?))
    }
}

pub fn load_images(name: &str, data_dir: Option<&Path>, synthetic: (usize, usize)) -> Result<Split> {
    if name == "synthetic" {
        return Ok(data::synthetic(synthetic.0, synthetic.1, 0));
    }
    let which = IdxDataset::from_name(name).with_context(|| format!("--dataset: unknown dataset '{name}'; use synthetic, mnist, fashion-mnist (images) or uci-har, synthetic-sensor, csv (time series)"))?;
    let dir = match data_dir {
        Some(d) => d.to_path_buf(),
        None => match data::default_data_dir() {
            Some(root) => root.join(name),
            None => bail!(
                "no data folder for {name}: pass --data-dir DIR or set SSVAE_DATA to a folder containing {name}/ with train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz ({})",
                which.download_hint()
            ),
        },
    };
    Ok(data::load_idx_dataset(&dir, which)?)
}

pub fn load_series(name: &str, data_dir: Option<&Path>, synthetic: (usize, usize), a: &SeriesArgs) -> Result<SeriesSplit> {
    match name {
        "synthetic-sensor" => Ok(data::sensor_synth(synthetic.0, synthetic.1, 0)),
        "uci-har" => {
            let dir = match data_dir {
                Some(d) => d.to_path_buf(),
                None => match data::default_data_dir() {
                    Some(root) => root.join("uci-har"),
                    None => bail!("no data folder for uci-har: pass --data-dir DIR (the folder the official zip calls 'UCI HAR Dataset') or set SSVAE_DATA to a folder containing uci-har/"),
                },
            };
            let chans: Vec<&str> = match &a.channels {
                Some(c) => c.iter().map(String::as_str).collect(),
                None => data::HAR_DEFAULT_CHANNELS.to_vec(),
            };
            data::load_har(&dir, &chans).with_context(|| "--dataset uci-har")
        }
        "csv" => load_csv(a),
        _ => bail!("--dataset: unknown time-series dataset '{name}'"),
    }
}

fn csv_options(a: &SeriesArgs) -> Result<CsvSeriesOptions> {
    let layout = match a.csv_layout.as_deref().unwrap_or("long") {
        "flat" => {
            let (Some(steps), Some(channels)) = (a.steps, a.channels_count) else {
                bail!("--csv-layout flat needs --steps N (time steps per window) and --channels-count C (values per step)");
            };
            let order = match a.csv_order.as_deref().unwrap_or("step-major") {
                "step-major" => FlatOrder::StepMajor,
                "channel-major" => FlatOrder::ChannelMajor,
                o => bail!("--csv-order: expected step-major or channel-major, got '{o}'"),
            };
            CsvLayout::Flat { steps, channels, order }
        }
        "long" => {
            let Some(window) = a.window else {
                bail!("--csv-layout long (one row per time step) needs --window N, the rows per window (e.g. 128)");
            };
            CsvLayout::Long { sequence_column: a.sequence_column.clone(), window, stride: a.stride.unwrap_or(window) }
        }
        l => bail!("--csv-layout: expected long (a row per time step) or flat (a row per window), got '{l}'"),
    };
    let delimiter = match a.delimiter {
        None => b',',
        Some(c) if c.is_ascii() => c as u8,
        Some(c) => bail!("--delimiter: '{c}' is not a single ASCII character"),
    };
    Ok(CsvSeriesOptions {
        layout,
        header: !a.no_header,
        delimiter,
        label_column: a.label_column.clone(),
        columns: a.columns.clone(),
        class_names: None,
    })
}

fn load_csv(a: &SeriesArgs) -> Result<SeriesSplit> {
    let Some(path) = &a.train_csv else {
        bail!("--dataset csv needs --train-csv FILE (and the layout: --csv-layout long --window N, or --csv-layout flat --steps N --channels-count C)");
    };
    let opts = csv_options(a)?;
    let (train, report) = data::load_csv_series(path, &opts).with_context(|| format!("--train-csv {}", path.display()))?;
    if !report.dropped_sequences.is_empty() || report.mixed_label_windows > 0 {
        eprintln!(
            "note: {}: {} sequence(s) shorter than the window dropped, {} window(s) left unlabeled because their rows carry different labels",
            path.display(),
            report.dropped_sequences.len(),
            report.mixed_label_windows
        );
    }
    if let Some(tp) = &a.test_csv {
        let topts = CsvSeriesOptions { class_names: Some(train.class_names.clone()), ..opts };
        let (test, _) = data::load_csv_series(tp, &topts).with_context(|| format!("--test-csv {}", tp.display()))?;
        if (test.steps, test.channels) != (train.steps, train.channels) {
            bail!(
                "--test-csv {}: windows of {} steps x {} channels, the training file has {} x {}",
                tp.display(),
                test.steps,
                test.channels,
                train.steps,
                train.channels
            );
        }
        return Ok(SeriesSplit { train, test });
    }
    let f = a.test_fraction.unwrap_or(0.2);
    if !(f > 0.0 && f < 1.0) {
        bail!("--test-fraction must be in (0, 1), got {f}");
    }
    let n_test = ((train.n as f64 * f).round() as usize).max(1);
    if n_test >= train.n {
        bail!("--train-csv {}: {} window(s) are too few to hold out a test split; give --test-csv", path.display(), train.n);
    }
    let cut = train.n - n_test;
    Ok(SeriesSplit { test: train.subset(&(cut..train.n).collect::<Vec<_>>()), train: train.subset(&(0..cut).collect::<Vec<_>>()) })
}

/// Standardises both splits with `stored` (a resumed or evaluated run) or statistics fitted on
/// the training windows; returns what was applied, for config.json.
pub fn standardize(split: &mut SeriesSplit, stored: Option<&[f32]>) -> Result<Vec<f32>> {
    let s = match stored {
        Some(v) => Standardizer::from_vec(v).context("config.json: the stored standardizer")?,
        None => Standardizer::fit(&split.train)?,
    };
    s.apply(&mut split.train).context("standardizing the training windows")?;
    s.apply(&mut split.test).context("standardizing the test windows")?;
    Ok(s.to_vec())
}

/// Windows to score from a CSV: read with the run's CSV options when it was trained on a CSV
/// (its label column only if the file has one), else one row per window of the model's
/// steps x channels, step-major, with or without a header. Standardised with the run's
/// statistics.
pub fn read_series_input(
    path: &Path,
    series: &SeriesArgs,
    trained_on_csv: bool,
    shape: [usize; 2],
    stored: Option<&[f32]>,
) -> Result<SeriesDataset> {
    let text_head = first_line(path)?;
    let looks_like_header = text_head.split([',', ';', '\t']).any(|c| !c.trim().is_empty() && c.trim().parse::<f64>().is_err());
    let opts = if trained_on_csv {
        let mut o = csv_options(series)?;
        if let Some(l) = &o.label_column {
            if !text_head.split(o.delimiter as char).any(|c| c.trim().trim_matches('"') == l) {
                o.label_column = None;
            }
        }
        o
    } else {
        let mut o = CsvSeriesOptions::flat(shape[0], shape[1]);
        o.header = looks_like_header;
        o
    };
    let (mut ds, _) = data::load_csv_series(path, &opts).with_context(|| format!("--input {}", path.display()))?;
    if [ds.steps, ds.channels] != shape {
        bail!(
            "--input {}: windows of {} steps x {} channels, the model expects {} x {}",
            path.display(),
            ds.steps,
            ds.channels,
            shape[0],
            shape[1]
        );
    }
    if let Some(v) = stored {
        Standardizer::from_vec(v)?.apply(&mut ds)?;
    }
    Ok(ds)
}

fn first_line(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("--input {}", path.display()))?;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        let mut s = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut s).with_context(|| format!("--input {}", path.display()))?;
        s
    } else {
        bytes
    };
    let text = String::from_utf8_lossy(&bytes);
    Ok(text.trim_start_matches('\u{feff}').lines().find(|l| !l.trim().is_empty()).unwrap_or("").to_string())
}
