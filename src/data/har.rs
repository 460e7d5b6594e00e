//! The UCI Human Activity Recognition dataset (Anguita et al., ESANN 2013): the time-series
//! benchmark of the paper's recurrent model.
//!
//! The loader reads the official folder layout exactly as the zip unpacks, with `root` the folder
//! the zip calls `UCI HAR Dataset/`:
//!
//! ```text
//! root/activity_labels.txt                      "1 WALKING" ... "6 LAYING" (optional)
//! root/train/y_train.txt                        one label 1..6 per line
//! root/train/Inertial Signals/body_acc_x_train.txt   one window per line, 128 values
//! ...                                           (9 signals: {body_acc,body_gyro,total_acc}_{x,y,z})
//! root/test/...                                 the same with _test
//! ```
//!
//! Each signal file may be plain (`.txt`, as users unzip it) or gzipped (`.txt.gz`, as kept in
//! shared/data); the content is detected by the gzip magic bytes, and when both exist the plain
//! one is read. Only the raw inertial signals are used, not the 561 derived features.
//!
//! The paper's model uses six channels, body acceleration and gyroscope x, y, z
//! ([`HAR_DEFAULT_CHANNELS`]); any subset of the nine signals can be chosen by name. Classes are
//! the file's labels minus one (1..6 -> 0..5).
//!
//! Parsing is the hot part (9 files of 15 MB for the training set): each file is parsed in one
//! pass over its bytes, splitting lines on `\n` and values on ASCII whitespace, without an
//! allocation per value, and the files are parsed in parallel.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::idx::{io_err, read_maybe_gz};
use super::series::{SeriesDataset, SeriesSplit};
use crate::error::{Error, Result};

/// Time steps per window (2.56 s at 50 Hz).
pub const HAR_STEPS: usize = 128;

/// The nine raw signals, in the order of the official README.
pub const HAR_CHANNELS: [&str; 9] =
    ["body_acc_x", "body_acc_y", "body_acc_z", "body_gyro_x", "body_gyro_y", "body_gyro_z", "total_acc_x", "total_acc_y", "total_acc_z"];

/// The six channels of the paper: body acceleration and angular velocity.
pub const HAR_DEFAULT_CHANNELS: [&str; 6] = ["body_acc_x", "body_acc_y", "body_acc_z", "body_gyro_x", "body_gyro_y", "body_gyro_z"];

/// The official activity names (labels 1..6), used when `activity_labels.txt` is absent.
pub const HAR_CLASSES: [&str; 6] = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"];

/// Loads the training and test windows of the given `channels` (names from [`HAR_CHANNELS`],
/// case-insensitive, in the order wanted; pass [`HAR_DEFAULT_CHANNELS`] for the paper's six).
/// `root` is the dataset folder (holding `train/` and `test/`) or a data directory holding it as
/// `uci-har/` or `UCI HAR Dataset/`.
/// Every window is labeled. Fails with an [`Error::Io`] naming the file (and line) on a missing
/// file, a line without exactly 128 values, a value that is not a finite number, a label outside
/// 1..6, or a signal file whose number of windows differs from its `y_*.txt`.
pub fn load_har(root: &Path, channels: &[&str]) -> Result<SeriesSplit> {
    let channels = resolve_channels(channels)?;
    // The folder itself, or a data directory holding it as uci-har/ or under the zip's name.
    let found = [root.to_path_buf(), root.join("uci-har"), root.join("UCI HAR Dataset")].into_iter().find(|r| r.join("train").is_dir());
    let root = found.as_deref().unwrap_or(root);
    if !root.is_dir() {
        let state = if root.exists() { "not a directory" } else { "the directory does not exist" };
        return Err(io_err(
            root,
            format!(
                "UCI-HAR data not found: {state}. Expected the folder the official zip calls 'UCI HAR Dataset' \
                 (holding train/ and test/), from https://archive.ics.uci.edu/dataset/240; point --data-dir or \
                 SSVAE_DATA at its parent (as uci-har/) or give the folder itself"
            ),
        ));
    }
    let class_names = read_activity_labels(root)?;
    let (train, test) =
        rayon::join(|| load_split(root, "train", &channels, &class_names), || load_split(root, "test", &channels, &class_names));
    Ok(SeriesSplit { train: train?, test: test? })
}

/// Canonical (lower-case) channel names, checked: known, not repeated, at least one.
fn resolve_channels(channels: &[&str]) -> Result<Vec<&'static str>> {
    if channels.is_empty() {
        return Err(Error::Invalid(format!("no UCI-HAR channels chosen; choose from {}", HAR_CHANNELS.join(", "))));
    }
    let mut out: Vec<&'static str> = Vec::with_capacity(channels.len());
    for name in channels {
        let lower = name.trim().to_ascii_lowercase();
        let Some(&c) = HAR_CHANNELS.iter().find(|&&c| c == lower) else {
            return Err(Error::Invalid(format!("unknown UCI-HAR channel '{name}'; the signals are {}", HAR_CHANNELS.join(", "))));
        };
        if out.contains(&c) {
            return Err(Error::Invalid(format!("UCI-HAR channel '{c}' is chosen twice")));
        }
        out.push(c);
    }
    Ok(out)
}

/// `activity_labels.txt` ("1 WALKING" per line, ids 1..6 each once) or the official names when
/// the file is absent.
fn read_activity_labels(root: &Path) -> Result<Vec<String>> {
    let path = root.join("activity_labels.txt");
    if !path.exists() {
        return Ok(HAR_CLASSES.iter().map(|s| s.to_string()).collect());
    }
    let bytes = read_maybe_gz(&path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| io_err(&path, format!("not UTF-8 text: {e}")))?;
    let mut names: Vec<Option<String>> = vec![None; HAR_CLASSES.len()];
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (id, name) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let name = name.trim();
        let id: usize = match id.parse() {
            Ok(i) if (1..=HAR_CLASSES.len()).contains(&i) && !name.is_empty() => i,
            _ => return Err(io_err(&path, format!("line {}: expected '<id 1..6> <NAME>', found '{line}'", ln + 1))),
        };
        if names[id - 1].replace(name.to_string()).is_some() {
            return Err(io_err(&path, format!("line {}: activity {id} is named twice", ln + 1)));
        }
    }
    if let Some(k) = names.iter().position(|n| n.is_none()) {
        return Err(io_err(&path, format!("activity {} has no name (expected ids 1..6)", k + 1)));
    }
    Ok(names.into_iter().map(Option::unwrap).collect())
}

/// `dir/stem.txt` or `dir/stem.txt.gz` (the plain file when both exist).
fn find_signal_file(dir: &Path, stem: &str) -> Result<PathBuf> {
    let plain = dir.join(format!("{stem}.txt"));
    let gz = dir.join(format!("{stem}.txt.gz"));
    if plain.is_file() {
        Ok(plain)
    } else if gz.is_file() {
        Ok(gz)
    } else {
        Err(io_err(&plain, format!("missing: neither {} nor {} exists", plain.display(), gz.display())))
    }
}

/// Lines of `bytes`, each without its `\r\n` / `\n`, with 1-based line numbers; a last line
/// that is empty (the file ends with a newline) is not yielded.
fn numbered_lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let empty = body.is_empty();
    body.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).enumerate().map(|(i, l)| (i + 1, l)).filter(move |_| !empty)
}

fn show(token: &[u8]) -> String {
    let s = String::from_utf8_lossy(token);
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s.into_owned()
    }
}

/// One signal file: `windows` lines of [`HAR_STEPS`] finite numbers each, row major.
fn parse_signal(path: &Path, windows: usize, labels_file: &Path) -> Result<Vec<f32>> {
    let bytes = read_maybe_gz(path)?;
    let mut out = Vec::with_capacity(windows * HAR_STEPS);
    let mut lines = 0usize;
    for (ln, line) in numbered_lines(&bytes) {
        lines = ln;
        if ln > windows {
            continue; // counted, reported below
        }
        let mut count = 0usize;
        for tok in line.split(|b| b.is_ascii_whitespace()).filter(|t| !t.is_empty()) {
            count += 1;
            if count > HAR_STEPS {
                break;
            }
            let v: f32 = std::str::from_utf8(tok)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io_err(path, format!("line {ln}, value {count}: '{}' is not a number", show(tok))))?;
            if !v.is_finite() {
                return Err(io_err(path, format!("line {ln}, value {count}: {} is not finite", show(tok))));
            }
            out.push(v);
        }
        if count != HAR_STEPS {
            let n = if count > HAR_STEPS { format!("more than {HAR_STEPS}") } else { count.to_string() };
            return Err(io_err(path, format!("line {ln} has {n} values, expected {HAR_STEPS} (one window per line)")));
        }
    }
    if lines != windows {
        return Err(io_err(
            path,
            format!(
                "has {lines} windows (lines) but {} has {windows} labels; the files of a split must belong together",
                labels_file.display()
            ),
        ));
    }
    Ok(out)
}

/// `y_*.txt`: one label 1..6 per line, returned as classes 0..5.
fn parse_labels(path: &Path) -> Result<Vec<u8>> {
    let bytes = read_maybe_gz(path)?;
    let mut out = Vec::new();
    for (ln, line) in numbered_lines(&bytes) {
        let text = std::str::from_utf8(line).unwrap_or("").trim();
        match text.parse::<u8>() {
            Ok(l) if (1..=HAR_CLASSES.len() as u8).contains(&l) => out.push(l - 1),
            _ => {
                return Err(io_err(
                    path,
                    format!("line {ln}: label '{}' is not an activity id 1..{}", show(line).trim(), HAR_CLASSES.len()),
                ))
            }
        }
    }
    if out.is_empty() {
        return Err(io_err(path, "no labels: the file is empty"));
    }
    Ok(out)
}

fn load_split(root: &Path, split: &str, channels: &[&'static str], class_names: &[String]) -> Result<SeriesDataset> {
    let dir = root.join(split);
    let labels_file = match find_signal_file(&dir, &format!("y_{split}")) {
        Ok(p) => p,
        Err(e) if !dir.is_dir() => {
            return Err(io_err(&dir, format!("the {split}/ folder of UCI-HAR is missing ({e})")));
        }
        Err(e) => return Err(e),
    };
    let labels = parse_labels(&labels_file)?;
    let n = labels.len();
    let signals_dir = dir.join("Inertial Signals");
    let files: Vec<PathBuf> = channels.iter().map(|c| find_signal_file(&signals_dir, &format!("{c}_{split}"))).collect::<Result<_>>()?;
    let per_channel: Vec<Vec<f32>> = files.par_iter().map(|f| parse_signal(f, n, &labels_file)).collect::<Result<_>>()?;
    // Interleave: the files are channel-major, the dataset is (window, step, channel).
    let c = channels.len();
    let mut values = vec![0f32; n * HAR_STEPS * c];
    values.par_chunks_mut(HAR_STEPS * c).enumerate().for_each(|(w, out)| {
        for (k, ch) in per_channel.iter().enumerate() {
            for (t, &v) in ch[w * HAR_STEPS..(w + 1) * HAR_STEPS].iter().enumerate() {
                out[t * c + k] = v;
            }
        }
    });
    SeriesDataset::new(
        "uci-har",
        values,
        labels.into_iter().map(Some).collect(),
        HAR_STEPS,
        class_names.to_vec(),
        channels.iter().map(|s| s.to_string()).collect(),
    )
}
