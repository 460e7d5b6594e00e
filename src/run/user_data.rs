//! Users' own data (`--data PATH`): what kind it is, how it is read, and how a test split is
//! carved from it.
//!
//! - A **folder** of images ([`DatasetName::Folder`]): one sub-folder per class, `unlabeled/`
//!   for images without a label, or a `labels.csv` (see [`crate::data::load_image_folder`]); a
//!   folder holding the four IDX files of the MNIST layout is read as IDX, with the class count
//!   taken from its labels.
//! - A **table** of features ([`DatasetName::Table`]): CSV, TSV, whitespace-separated (each
//!   optionally gzipped) or NPY (see [`crate::data::load_table`]). It becomes a
//!   [`SeriesDataset`] of one step per row, its features the channels, so the series
//!   standardisation applies to it feature by feature.
//! - A **sensor log** ([`DatasetName::Csv`]): the time-series CSV options (`--csv-layout`,
//!   `--window`, ...), for the recurrent models.
//!
//! Data that brings its own labels uses all of them unless `--labels` asks for fewer (see
//! [`super::RunSpec::labels_or_default`]). Without `--test-data`, the test split is a
//! stratified, seeded fraction of the LABELED samples of every class; unlabeled samples all
//! train. Anomaly runs (`--normal-classes`, or folders named `normal` and `abnormal`) train on
//! the normal classes and are scored on a test split that may hold classes training never saw.

use std::path::{Path, PathBuf};

use crate::data::{self, Dataset, ImageFolderOptions, SeriesDataset, SeriesSplit, Split, TableOptions};
use crate::error::{Error, Result};
use crate::model::Family;

use super::data::{stratified_split, DataSpec, DatasetName, ImageOptions, SeriesOptions};

macro_rules! invalid {
    ($($t:tt)*) => { return Err(Error::Invalid(format!($($t)*))) };
}

/// The kind of data `path` holds, for a model of `family`: a folder of images, a sensor log
/// (a recurrent model, or series CSV options given) or a table.
pub fn kind_of(path: &Path, family: Family, series: &SeriesOptions) -> Result<DatasetName> {
    if path.is_dir() {
        return Ok(DatasetName::Folder);
    }
    if !path.exists() {
        invalid!("--data {}: no such file or folder", path.display());
    }
    if family == Family::Rnn || series.csv_layout.is_some() || series.window.is_some() {
        return Ok(DatasetName::Csv);
    }
    if data::is_table_file(path) {
        return Ok(DatasetName::Table);
    }
    invalid!(
        "--data {}: not a folder of images nor a table file (.csv, .tsv, .txt, .dat, .npy, optionally .gz); for a sensor log give a recurrent model (--model ss-rnn) or --csv-layout",
        path.display()
    )
}

/// What a reader noticed about a file (how it was sniffed, what it skipped), on one line.
fn print_notes(path: &Path, notes: &[String]) {
    if !notes.is_empty() {
        eprintln!("note: {}: {}", path.display(), notes.join("; "));
    }
}

fn name_of(path: &Path) -> String {
    path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

fn with_path<T>(flag: &str, path: &Path, r: Result<T>) -> Result<T> {
    r.map_err(|e| match e {
        Error::Invalid(m) if m.contains(&path.display().to_string()) => Error::Invalid(format!("{flag}: {m}")),
        e => Error::Invalid(format!("{flag} {}: {e}", path.display())),
    })
}

/// Reads a folder of images (or IDX files) as a [`Dataset`].
fn read_folder(flag: &str, dir: &Path, opts: &ImageOptions, classes: Option<&[String]>, allow_new: bool) -> Result<Dataset> {
    if data::IDX_FILES.iter().any(|f| dir.join(f).exists() || dir.join(format!("{f}.gz")).exists()) {
        return Err(Error::Invalid(format!("{flag} {}: IDX files are read as a split, not here", dir.display())));
    }
    let o = ImageFolderOptions {
        size: opts.size.map(|[h, w]| (h, w)),
        channels: opts.channels,
        unlabeled_dir: opts.unlabeled_dir.clone(),
        class_names: classes.map(<[String]>::to_vec),
        allow_new_classes: allow_new,
    };
    let set = with_path(flag, dir, data::load_image_folder(dir, &o))?;
    print_notes(dir, &set.notes);
    if set.class_names.len() > 256 {
        invalid!("{flag} {}: {} classes; at most 256 are supported", dir.display(), set.class_names.len());
    }
    let unlabeled: Vec<bool> = set.labels.iter().map(Option::is_none).collect();
    Ok(Dataset {
        name: name_of(dir),
        n: set.labels.len(),
        labels: set.labels.iter().map(|l| l.unwrap_or(0) as u8).collect(),
        unlabeled: if unlabeled.iter().any(|&u| u) { unlabeled } else { Vec::new() },
        ids: set.ids,
        pixels: set.pixels,
        height: set.height,
        width: set.width,
        channels: set.channels,
        classes: set.class_names.len(),
        class_names: set.class_names,
    })
}

/// An IDX folder (the MNIST layout) as users' data: its classes are the labels present
/// (0..=largest), not MNIST's ten.
fn read_idx_folder(dir: &Path) -> Result<Split> {
    let mut s = data::load_idx_dataset(dir, data::IdxDataset::Mnist)?;
    let classes = s.train.labels.iter().chain(&s.test.labels).map(|&l| l as usize + 1).max().unwrap_or(1);
    for d in [&mut s.train, &mut s.test] {
        d.name = name_of(dir);
        d.classes = classes;
        d.class_names = (0..classes).map(|c| c.to_string()).collect();
    }
    Ok(s)
}

/// The image split of `--data DIR` (and `--test-data DIR`, or a stratified test fraction).
pub fn load_folder(spec: &DataSpec, seed: u64) -> Result<Split> {
    let Some(dir) = &spec.path else { invalid!("--dataset folder needs --data DIR") };
    let anomaly = spec.normal_classes.is_some();
    let is_idx = |d: &Path| data::IDX_FILES.iter().all(|f| d.join(f).exists() || d.join(format!("{f}.gz")).exists());
    if is_idx(dir) {
        if spec.test_path.is_some() {
            invalid!("--test-data: {} holds IDX files, which carry their own test split (t10k-*)", dir.display());
        }
        return read_idx_folder(dir);
    }
    let mut train = read_folder("--data", dir, &spec.images, None, false)?;
    let mut test = match &spec.test_path {
        Some(t) => {
            let mut opts = spec.images.clone();
            if opts.size.is_none() {
                opts.size = Some([train.height, train.width]);
            }
            if opts.channels.is_none() {
                opts.channels = Some(train.channels);
            }
            let test = read_folder("--test-data", t, &opts, Some(&train.class_names), anomaly || auto_anomaly(&train.class_names))?;
            drop_unlabeled_test(test, t)?
        }
        None => {
            let (tr, te) = stratified_split(&labels_of_images(&train), test_fraction(spec)?, seed, &train.class_names)?;
            let test = train.subset(&te);
            train = train.subset(&tr);
            test
        }
    };
    // the classes of both splits, training's first (an anomaly test split may add some)
    train.classes = test.classes.max(train.classes);
    train.class_names = if test.class_names.len() > train.class_names.len() { test.class_names.clone() } else { train.class_names.clone() };
    test.classes = train.classes;
    test.class_names = train.class_names.clone();
    Ok(Split { train, test })
}

/// Folders named `normal` and `abnormal` (anomalib's layout) are an anomaly set.
fn auto_anomaly(classes: &[String]) -> bool {
    classes.iter().all(|c| c == "normal" || c == "abnormal") && classes.iter().any(|c| c == "normal")
}

/// Whether the data's class names make it an anomaly set without `--normal-classes`.
pub fn normal_classes_of(spec: &DataSpec, class_names: &[String]) -> Option<Vec<String>> {
    if spec.normal_classes.is_some() {
        return spec.normal_classes.clone();
    }
    (spec.anomaly_class.is_none() && auto_anomaly(class_names) && class_names.iter().any(|c| c == "abnormal"))
        .then(|| vec!["normal".to_string()])
}

fn drop_unlabeled_test(test: Dataset, path: &Path) -> Result<Dataset> {
    let keep: Vec<usize> = (0..test.n).filter(|&i| test.label(i).is_some()).collect();
    if keep.is_empty() {
        invalid!("--test-data {}: no labeled image to evaluate on", path.display());
    }
    if keep.len() < test.n {
        eprintln!("note: --test-data {}: {} unlabeled image(s) left out of the test split", path.display(), test.n - keep.len());
    }
    Ok(test.subset(&keep))
}

fn labels_of_images(d: &Dataset) -> Vec<Option<u8>> {
    (0..d.n).map(|i| d.label(i)).collect()
}

fn test_fraction(spec: &DataSpec) -> Result<f64> {
    let f = spec.series.test_fraction.unwrap_or(0.2);
    if !(f > 0.0 && f < 1.0) {
        invalid!("--test-fraction must be in (0, 1), got {f}");
    }
    Ok(f)
}

/// `--delimiter` for tables: ' ' is runs of whitespace.
pub(crate) fn delimiter(c: Option<char>) -> Result<Option<data::Delimiter>> {
    Ok(match c {
        None => None,
        Some(' ') => Some(data::Delimiter::Whitespace),
        Some(c) if c.is_ascii() => Some(data::Delimiter::Byte(c as u8)),
        Some(c) => invalid!("--delimiter: '{c}' is not a single ASCII character"),
    })
}

/// Reads a table with the run's options.
fn read_table(
    flag: &str,
    path: &Path,
    spec: &DataSpec,
    labels_file: Option<&PathBuf>,
    classes: Option<&[String]>,
    allow_new: bool,
) -> Result<SeriesDataset> {
    let s = &spec.series;
    let o = TableOptions {
        label_column: s.label_column.clone(),
        unlabeled_value: spec.table.unlabeled_value.clone(),
        columns: s.columns.clone(),
        id_column: spec.table.id_column.clone(),
        delimiter: delimiter(s.delimiter)?,
        header: s.no_header.then_some(false),
        labels_path: labels_file.cloned(),
        class_names: classes.map(<[String]>::to_vec),
        allow_new_classes: allow_new,
    };
    let t = with_path(flag, path, data::load_table(path, &o))?;
    print_notes(path, &t.notes);
    if t.class_names.len() > 256 {
        invalid!("{flag} {}: {} classes; at most 256 are supported", path.display(), t.class_names.len());
    }
    let labels = t.labels.iter().map(|l| l.map(|l| l as u8)).collect();
    let mut ds = SeriesDataset::new(name_of(path), t.values, labels, 1, t.class_names, t.feature_names)?;
    ds.ids = t.ids;
    Ok(ds)
}

/// The table split of `--data FILE` (and `--test-data FILE`, or a stratified test fraction).
pub fn load_table_split(spec: &DataSpec, seed: u64) -> Result<SeriesSplit> {
    let Some(path) = &spec.path else { invalid!("--dataset table needs --data FILE") };
    let mut train = read_table("--data", path, spec, spec.table.labels_file.as_ref(), None, false)?;
    let (mut train, mut test) = match &spec.test_path {
        Some(t) => {
            let anomaly = spec.normal_classes.is_some();
            let test = read_table("--test-data", t, spec, spec.table.test_labels_file.as_ref(), Some(&train.class_names), anomaly)?;
            if test.channel_names != train.channel_names {
                invalid!(
                    "--test-data {}: feature columns {} differ from the training table's {}",
                    t.display(),
                    test.channel_names.join(","),
                    train.channel_names.join(",")
                );
            }
            let keep: Vec<usize> = (0..test.n).filter(|&i| test.labels[i].is_some()).collect();
            if keep.is_empty() {
                invalid!("--test-data {}: no labeled row to evaluate on", t.display());
            }
            (train, test.subset(&keep))
        }
        None => {
            let (tr, te) = stratified_split(&train.labels, test_fraction(spec)?, seed, &train.class_names)?;
            let test = train.subset(&te);
            train = train.subset(&tr);
            (train, test)
        }
    };
    if test.class_names.len() > train.class_names.len() {
        train.class_names = test.class_names.clone();
        train.classes = test.classes;
    }
    test.class_names = train.class_names.clone();
    test.classes = train.classes;
    Ok(SeriesSplit { train, test })
}
