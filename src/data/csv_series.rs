//! Users' own sensor data from CSV files, as [`SeriesDataset`] windows.
//!
//! Two layouts, because sensor data arrives both ways:
//!
//! - [`CsvLayout::Flat`]: one row per window, its `steps * channels` values flattened into
//!   columns. [`FlatOrder::StepMajor`] (the default) reads `t0c0, t0c1, .., t1c0, ..`, what
//!   `x.reshape(n, -1)` of a `[n, steps, channels]` array writes; [`FlatOrder::ChannelMajor`]
//!   reads all steps of channel 0 first (`acc_x_0 .. acc_x_127, acc_y_0 ..`). When every value
//!   column of the header is named `<channel>_<number>`, the names must agree with the chosen
//!   order (one prefix per channel), which catches the wrong order instead of training on
//!   scrambled windows; the prefixes become the channel names.
//! - [`CsvLayout::Long`]: one row per time step, the value columns are the channels. An optional
//!   sequence-id column splits the rows into recordings; windows of `window` rows are cut every
//!   `stride` rows inside each recording (never across two), in time order. A sequence shorter
//!   than the window yields no window: it is *dropped and counted* in [`CsvReport`], and only
//!   when no sequence is long enough is that an error. The rows of a sequence must be contiguous:
//!   an id that comes back after another id is an error (merging would silently join two
//!   recordings across a gap). A window's label is the label its rows share; a window whose rows
//!   disagree (an activity change, or labeled and unlabeled rows) is unlabeled and counted.
//!
//! Labels: an optional label column where an EMPTY cell and `-1` mean unlabeled (the rule of
//! the feature tables, [`load_table`](super::load_table)). When every other cell spells a whole
//! number (`3`, `3.0`, `3.0000000e+00`: what `numpy.savetxt` writes), the labels are numbers, and
//! any spelling of -1 (`-1.0`) is unlabeled too; when those numbers are all non-negative, the
//! number is the class (classes = largest + 1). Otherwise labels are names, numbered in sorted
//! (byte) order. [`CsvSeriesOptions::class_names`] fixes the classes instead, e.g. to read a test
//! file with the training file's mapping.
//!
//! The parser is hand-written (no dependency): cells are separated by one delimiter byte, may be
//! double-quoted (`""` inside quotes is a quote, a quoted cell cannot span lines), and are
//! trimmed. The delimiter `b' '` means *runs* of spaces and tabs (what UCI and many instruments
//! write, often aligned with several spaces): leading and trailing blanks are ignored and there
//! are no empty cells. Blank lines are skipped; a UTF-8 byte-order mark is ignored; gzipped files
//! are read too. Every error names the file and, for a cell, its line and column.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::idx::{io_err, read_maybe_gz};
use super::series::SeriesDataset;
use crate::error::Result;

/// Most classes a CSV file may have (labels are stored as `u8`).
pub const MAX_CLASSES: usize = 255;

/// How the columns of a flattened window are ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlatOrder {
    /// `t0c0, t0c1, .., t1c0, ..` (step after step).
    #[default]
    StepMajor,
    /// `c0t0, c0t1, .., c1t0, ..` (channel after channel).
    ChannelMajor,
}

/// Where the windows are in the file.
#[derive(Clone, Debug, PartialEq)]
pub enum CsvLayout {
    /// One row per window with `steps * channels` value columns.
    Flat { steps: usize, channels: usize, order: FlatOrder },
    /// One row per time step; windows of `window` rows every `stride` rows within each sequence
    /// (the rows sharing a value of `sequence_column`; the whole file when `None`).
    Long { sequence_column: Option<String>, window: usize, stride: usize },
}

/// What to read from a CSV file; see the module documentation.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvSeriesOptions {
    pub layout: CsvLayout,
    /// The first non-blank line names the columns (needed to select columns by name).
    pub header: bool,
    /// Cell separator, `b','` by default (`b';'`, `b'\t'` also common); `b' '` means runs of
    /// spaces and tabs (whitespace-separated columns).
    pub delimiter: u8,
    /// The label column (name, or 0-based number), if any.
    pub label_column: Option<String>,
    /// The value columns in order (names, or 0-based numbers); `None` = every column that is not
    /// the label or sequence column.
    pub columns: Option<Vec<String>>,
    /// Fixed classes: a label cell equal to a name, or an integer below their count, is that
    /// class; anything else is an error. `None` infers the classes from the file.
    pub class_names: Option<Vec<String>>,
    /// With `class_names`: a label that is none of them becomes a new class, appended (the
    /// test file of an anomaly run holds classes training never saw) instead of an error.
    pub allow_new_classes: bool,
}

impl CsvSeriesOptions {
    /// One row per window of `steps x channels` values, step-major, header row, no labels.
    pub fn flat(steps: usize, channels: usize) -> Self {
        Self::with_layout(CsvLayout::Flat { steps, channels, order: FlatOrder::StepMajor })
    }

    /// One row per time step, windows of `window` rows every `stride` rows, header row, no
    /// sequence column, no labels.
    pub fn long(window: usize, stride: usize) -> Self {
        Self::with_layout(CsvLayout::Long { sequence_column: None, window, stride })
    }

    fn with_layout(layout: CsvLayout) -> Self {
        CsvSeriesOptions {
            layout,
            header: true,
            delimiter: b',',
            label_column: None,
            columns: None,
            class_names: None,
            allow_new_classes: false,
        }
    }
}

/// What loading left out or decided, for the user to see.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CsvReport {
    /// Data rows read (blank lines and the header not counted).
    pub rows: usize,
    /// Sequences found (long layout; 0 for the flat layout).
    pub sequences: usize,
    /// Ids of the sequences shorter than the window, which gave no window (in file order).
    pub dropped_sequences: Vec<String>,
    /// Windows left unlabeled because their rows carry different labels (long layout).
    pub mixed_label_windows: usize,
}

/// Reads windows from the CSV file at `path`; see the module documentation for the layouts,
/// label rules and errors. The dataset is named after the file.
pub fn load_csv_series(path: &Path, opts: &CsvSeriesOptions) -> Result<(SeriesDataset, CsvReport)> {
    let err = |msg: String| io_err(path, msg);
    match opts.layout {
        CsvLayout::Flat { steps, channels, .. } if steps == 0 || channels == 0 => {
            return Err(err(format!("windows of {steps} steps x {channels} channels: both must be at least 1")))
        }
        CsvLayout::Long { window: 0, .. } => return Err(err("window length 0: a window needs at least one row".into())),
        CsvLayout::Long { stride: 0, .. } => return Err(err("stride 0: windows must advance by at least one row".into())),
        _ => {}
    }
    let bytes = read_maybe_gz(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| err(format!("not UTF-8 text: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l)).filter(|(_, l)| !l.trim().is_empty());
    let Some((first_ln, first)) = lines.next() else {
        return Err(err("empty file: no header and no data rows".into()));
    };
    let first_cells = split_cells(first, opts.delimiter).map_err(|m| err(format!("line {first_ln}: {m}")))?;
    let header: Option<Vec<String>> = opts.header.then(|| first_cells.iter().map(|c| c.to_string()).collect());
    let ncols = first_cells.len();
    let names: Vec<String> = match &header {
        Some(h) => h.clone(),
        None => (0..ncols).map(|i| format!("column {i}")).collect(),
    };
    let width_of = if header.is_some() { "the header has" } else { "the first row has" };

    // Which column is what.
    let resolve = |what: &str, c: &str| resolve_column(c, header.as_deref(), ncols).map_err(|m| err(format!("{what}: {m}")));
    let label_col = opts.label_column.as_deref().map(|c| resolve("label column", c)).transpose()?;
    let seq_col = match &opts.layout {
        CsvLayout::Long { sequence_column: Some(c), .. } => Some(resolve("sequence column", c)?),
        _ => None,
    };
    if label_col.is_some() && label_col == seq_col {
        return Err(err(format!("column '{}' cannot be both the label and the sequence id", names[label_col.unwrap()])));
    }
    let value_cols: Vec<usize> = match &opts.columns {
        Some(list) => {
            let cols = list.iter().map(|c| resolve("value column", c)).collect::<Result<Vec<_>>>()?;
            for &c in &cols {
                if Some(c) == label_col || Some(c) == seq_col {
                    return Err(err(format!("column '{}' is chosen as a value column and as the label or sequence id", names[c])));
                }
            }
            let mut seen = HashSet::new();
            if let Some(&c) = cols.iter().find(|&&c| !seen.insert(c)) {
                return Err(err(format!("value column '{}' is chosen twice", names[c])));
            }
            cols
        }
        None => (0..ncols).filter(|&c| Some(c) != label_col && Some(c) != seq_col).collect(),
    };
    if value_cols.is_empty() {
        return Err(err("no value columns: every column is the label or sequence id".into()));
    }
    if let CsvLayout::Flat { steps, channels, .. } = opts.layout {
        if value_cols.len() != steps * channels {
            return Err(err(format!(
                "{} value columns, but windows of {steps} steps x {channels} channels need {}",
                value_cols.len(),
                steps * channels
            )));
        }
    }

    // The rows.
    let nv = value_cols.len();
    let mut values: Vec<f32> = Vec::new();
    let mut row_labels: Vec<Option<u32>> = Vec::new();
    let mut label_texts: Vec<(String, usize)> = Vec::new(); // distinct label text, first line
    let mut label_ids: HashMap<String, u32> = HashMap::new();
    let mut seqs: Vec<(String, usize)> = Vec::new(); // id, first row
    let mut seq_seen: HashSet<String> = HashSet::new();
    let data_lines = (!opts.header).then_some((first_ln, first)).into_iter().chain(lines);
    for (ln, line) in data_lines {
        let cells = split_cells(line, opts.delimiter).map_err(|m| err(format!("line {ln}: {m}")))?;
        if cells.len() != ncols {
            return Err(err(format!("line {ln} has {} cells, {width_of} {ncols}", cells.len())));
        }
        for &c in &value_cols {
            values.push(parse_value(&cells[c]).map_err(|m| err(format!("line {ln}, column '{}': {m}", names[c])))?);
        }
        row_labels.push(match label_col.map(|c| cells[c].as_ref()) {
            None | Some("") | Some("-1") => None,
            Some(t) => Some(*label_ids.entry(t.to_string()).or_insert_with(|| {
                label_texts.push((t.to_string(), ln));
                label_texts.len() as u32 - 1
            })),
        });
        if let Some(c) = seq_col {
            let id = cells[c].as_ref();
            if seqs.last().is_none_or(|(cur, _)| cur != id) {
                if !seq_seen.insert(id.to_string()) {
                    return Err(err(format!(
                        "line {ln}: sequence '{id}' appears again after sequence '{}'; the rows of each sequence must be contiguous and in time order",
                        seqs.last().unwrap().0
                    )));
                }
                seqs.push((id.to_string(), row_labels.len() - 1));
            }
        }
    }
    let rows = row_labels.len();
    if rows == 0 {
        return Err(err("no data rows (only a header)".into()));
    }
    let (class_names, text_class) = map_labels(&label_texts, opts.class_names.as_deref(), opts.allow_new_classes).map_err(err)?;
    let class_of = |l: Option<u32>| l.and_then(|k| text_class[k as usize]);
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "csv".into());
    let mut report = CsvReport { rows, ..CsvReport::default() };

    match &opts.layout {
        CsvLayout::Flat { steps, channels, order } => {
            let (steps, channels) = (*steps, *channels);
            // Column k of the row holds (step, channel) = position(k).
            let position = |k: usize| match order {
                FlatOrder::StepMajor => (k / channels, k % channels),
                FlatOrder::ChannelMajor => (k % steps, k / steps),
            };
            let channel_names = flat_channel_names(&value_cols, header.as_deref(), channels, &position).map_err(err)?;
            let mut out = vec![0f32; values.len()];
            for (src, dst) in values.chunks_exact(nv).zip(out.chunks_exact_mut(nv)) {
                for (k, &v) in src.iter().enumerate() {
                    let (t, c) = position(k);
                    dst[t * channels + c] = v;
                }
            }
            let labels = row_labels.iter().map(|&l| class_of(l)).collect();
            Ok((SeriesDataset::new(name, out, labels, steps, class_names, channel_names)?, report))
        }
        CsvLayout::Long { window, stride, .. } => {
            let (window, stride) = (*window, *stride);
            if seqs.is_empty() {
                seqs.push(("(whole file)".into(), 0));
            }
            report.sequences = seqs.len();
            let mut out = Vec::new();
            let mut labels = Vec::new();
            let mut longest = 0usize;
            // classes, not texts: "1" and "1.0" are the same label
            let row_classes: Vec<Option<u8>> = row_labels.iter().map(|&l| class_of(l)).collect();
            for (k, (id, start)) in seqs.iter().enumerate() {
                let end = seqs.get(k + 1).map_or(rows, |s| s.1);
                longest = longest.max(end - start);
                if end - start < window {
                    report.dropped_sequences.push(id.clone());
                    continue;
                }
                for w in (*start..=end - window).step_by(stride) {
                    out.extend_from_slice(&values[w * nv..(w + window) * nv]);
                    let first = row_classes[w];
                    if row_classes[w..w + window].iter().all(|&l| l == first) {
                        labels.push(first);
                    } else {
                        labels.push(None);
                        report.mixed_label_windows += 1;
                    }
                }
            }
            if labels.is_empty() {
                return Err(err(format!(
                    "window length {window} is longer than every sequence (the longest has {longest} rows); choose a shorter window"
                )));
            }
            let channel_names = value_cols.iter().map(|&c| match &header {
                Some(_) => names[c].clone(),
                None => format!("ch{c}"),
            });
            Ok((SeriesDataset::new(name, out, labels, window, class_names, channel_names.collect())?, report))
        }
    }
}

/// The cells of one line: split on `delim` outside double quotes, `""` inside quotes is a quote,
/// unquoted cells are trimmed. `b' '` splits on runs of whitespace instead (no empty cells).
pub(super) fn split_cells(line: &str, delim: u8) -> std::result::Result<Vec<Cow<'_, str>>, String> {
    if delim == b' ' {
        return split_whitespace_cells(line);
    }
    let d = delim as char;
    if !line.contains('"') {
        return Ok(line.split(d).map(|c| Cow::Borrowed(c.trim())).collect());
    }
    let mut cells = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|&c| c != d && c.is_whitespace()).is_some() {}
        let mut cell = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    None => return Err("a quoted cell is not closed (quoted cells cannot span lines)".into()),
                    Some('"') if chars.next_if_eq(&'"').is_some() => cell.push('"'),
                    Some('"') => break,
                    Some(c) => cell.push(c),
                }
            }
            while chars.next_if(|&c| c != d && c.is_whitespace()).is_some() {}
            if chars.peek().is_some_and(|&c| c != d) {
                return Err(format!("text after the closing quote of cell {}", cells.len() + 1));
            }
        } else {
            while let Some(c) = chars.next_if(|&c| c != d) {
                cell.push(c);
            }
            cell.truncate(cell.trim_end().len());
        }
        cells.push(Cow::Owned(cell));
        if chars.next().is_none() {
            return Ok(cells);
        }
    }
}

/// The cells of a whitespace-separated line: runs of blanks separate cells, a cell may be
/// double-quoted (then it may hold blanks; `""` inside is a quote).
fn split_whitespace_cells(line: &str) -> std::result::Result<Vec<Cow<'_, str>>, String> {
    if !line.contains('"') {
        return Ok(line.split_whitespace().map(Cow::Borrowed).collect());
    }
    let mut cells = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(cells);
        }
        let mut cell = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    None => return Err("a quoted cell is not closed (quoted cells cannot span lines)".into()),
                    Some('"') if chars.next_if_eq(&'"').is_some() => cell.push('"'),
                    Some('"') => break,
                    Some(c) => cell.push(c),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err(format!("text after the closing quote of cell {}", cells.len() + 1));
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                cell.push(c);
            }
        }
        cells.push(Cow::Owned(cell));
    }
}

/// The whole number a label cell spells (`3`, `3.0`, `3.0000000e+00`, `-1`), if it spells one
/// (finite, no fraction, at most 2^53 in magnitude).
pub(super) fn label_integer(t: &str) -> Option<i64> {
    let v: f64 = t.parse().ok()?;
    (v.is_finite() && v.fract() == 0.0 && v.abs() <= 9_007_199_254_740_992.0).then_some(v as i64)
}

/// A column given by header name or, failing that, by 0-based number.
fn resolve_column(c: &str, header: Option<&[String]>, ncols: usize) -> std::result::Result<usize, String> {
    if let Some(h) = header {
        let hits: Vec<usize> = h.iter().enumerate().filter(|(_, n)| n.as_str() == c).map(|(i, _)| i).collect();
        match hits.len() {
            1 => return Ok(hits[0]),
            0 => {}
            _ => return Err(format!("the header names '{c}' {} times; rename the columns", hits.len())),
        }
    }
    match c.parse::<usize>() {
        Ok(i) if i < ncols => Ok(i),
        Ok(i) => Err(format!("column number {i} does not exist: the file has {ncols} columns (0..{})", ncols - 1)),
        Err(_) => match header {
            Some(h) => Err(format!("no column '{c}'; the header has: {}", h.join(", "))),
            None => Err(format!("column '{c}' is named, but the file has no header row; refer to columns by 0-based number")),
        },
    }
}

fn parse_value(cell: &str) -> std::result::Result<f32, String> {
    if cell.is_empty() {
        return Err("empty cell (only the label column may be empty)".into());
    }
    let shown: String = cell.chars().take(40).collect();
    match cell.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("value '{shown}' is not finite (NaN and infinity are not allowed)")),
        Err(_) => Err(format!("'{shown}' is not a number")),
    }
}

/// Class names, and the class of each distinct label text (in `texts` order; `None`: the text
/// spells -1 among numeric labels, i.e. unlabeled).
#[allow(clippy::type_complexity)]
fn map_labels(
    texts: &[(String, usize)],
    fixed: Option<&[String]>,
    allow_new: bool,
) -> std::result::Result<(Vec<String>, Vec<Option<u8>>), String> {
    // Numeric labels: every text spells a whole number; -1 (any spelling) is unlabeled.
    let ints: Option<Vec<i64>> = texts.iter().map(|(t, _)| label_integer(t)).collect();
    if let Some(names) = fixed {
        if names.len() > MAX_CLASSES {
            return Err(format!("{} class names given, at most {MAX_CLASSES} classes", names.len()));
        }
        let mut names = names.to_vec();
        let known = names.len();
        let mut classes = Vec::with_capacity(texts.len());
        for (k, (t, ln)) in texts.iter().enumerate() {
            if ints.as_ref().is_some_and(|v| v[k] == -1) {
                classes.push(None);
                continue;
            }
            let int = label_integer(t);
            let found = names
                .iter()
                .position(|n| n == t)
                .or_else(|| int.and_then(|i| names.iter().position(|n| *n == i.to_string())))
                .or_else(|| int.and_then(|i| usize::try_from(i).ok()).filter(|&i| i < known));
            let c = match found {
                Some(c) => c,
                None if allow_new && names.len() < MAX_CLASSES => {
                    names.push(int.map_or_else(|| t.clone(), |i| i.to_string()));
                    names.len() - 1
                }
                None => {
                    return Err(format!(
                        "line {ln}: label '{t}' is out of range: not one of the {known} classes ({})",
                        names[..known].join(", ")
                    ))
                }
            };
            classes.push(Some(c as u8));
        }
        return Ok((names, classes));
    }
    if let Some(ints) = &ints {
        let labeled = || ints.iter().enumerate().filter(|(_, &v)| v != -1);
        if labeled().all(|(_, &v)| v >= 0) {
            if let Some((i, v)) = labeled().find(|(_, &v)| v >= MAX_CLASSES as i64) {
                return Err(format!(
                    "line {}: label {v} is out of range: at most {MAX_CLASSES} classes (0..{})",
                    texts[i].1,
                    MAX_CLASSES - 1
                ));
            }
            let classes = labeled().map(|(_, &v)| v as usize + 1).max().unwrap_or(0);
            let class = ints.iter().map(|&v| (v != -1).then_some(v as u8)).collect();
            return Ok(((0..classes).map(|c| c.to_string()).collect(), class));
        }
    }
    // Names (numeric labels with negative values: their canonical integers as names).
    let name_of = |k: usize| match &ints {
        Some(v) => v[k].to_string(),
        None => texts[k].0.clone(),
    };
    let mut sorted: Vec<String> = (0..texts.len()).filter(|&k| ints.as_ref().is_none_or(|v| v[k] != -1)).map(name_of).collect();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() > MAX_CLASSES {
        return Err(format!("too many classes: {} distinct labels, at most {MAX_CLASSES}", sorted.len()));
    }
    let class = (0..texts.len())
        .map(|k| match &ints {
            Some(v) if v[k] == -1 => None,
            _ => Some(sorted.binary_search(&name_of(k)).unwrap() as u8),
        })
        .collect();
    Ok((sorted, class))
}

/// `<prefix>_<digits>` -> prefix.
fn suffix_prefix(name: &str) -> Option<&str> {
    let (p, n) = name.rsplit_once('_')?;
    (!p.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(p)
}

/// Channel names of the flat layout from header names `<channel>_<step>`, checked against the
/// order; `ch0, ch1, ..` when there is no header or the names do not follow that pattern.
fn flat_channel_names(
    value_cols: &[usize],
    header: Option<&[String]>,
    channels: usize,
    position: &dyn Fn(usize) -> (usize, usize),
) -> std::result::Result<Vec<String>, String> {
    let fallback = || Ok((0..channels).map(|c| format!("ch{c}")).collect());
    let Some(h) = header else { return fallback() };
    let prefixes: Option<Vec<&str>> = value_cols.iter().map(|&c| suffix_prefix(&h[c])).collect();
    let Some(prefixes) = prefixes else { return fallback() };
    let mut names: Vec<Option<&str>> = vec![None; channels];
    for (k, p) in prefixes.iter().enumerate() {
        let c = position(k).1;
        match names[c] {
            None => names[c] = Some(p),
            Some(q) if q == *p => {}
            Some(q) => {
                return Err(format!(
                    "column '{}' falls in channel {c} by the chosen order, whose columns are named '{q}_*'; \
                     is the order (step-major or channel-major) right?",
                    h[value_cols[k]]
                ))
            }
        }
    }
    Ok(names.into_iter().map(|n| n.unwrap_or_default().to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    #[test]
    fn whitespace_separated_files_read_runs_of_blanks_as_one_separator() {
        assert_eq!(split_cells("  1.0   2.0\t\t3 ", b' ').unwrap(), vec!["1.0", "2.0", "3"]);
        assert_eq!(split_cells("a \"b c\"  \"\"", b' ').unwrap(), vec!["a", "b c", ""]);
        assert!(split_cells("a \"b", b' ').unwrap_err().contains("not closed"));
        assert!(split_cells("\"a\"b c", b' ').unwrap_err().contains("after the closing quote"));
        // a UCI-style file: aligned columns, no header, label last
        let dir = TestDir::new("csv-series-ws");
        let p = dir.write("ws.txt", "  1.5   2.0   1\n -3.0  4.25   2\n\n  5.0   6.0   1\n");
        let opts = CsvSeriesOptions { delimiter: b' ', header: false, label_column: Some("2".into()), ..CsvSeriesOptions::flat(2, 1) };
        let (d, r) = load_csv_series(&p, &opts).unwrap();
        assert_eq!(d.values, vec![1.5, 2.0, -3.0, 4.25, 5.0, 6.0]);
        assert_eq!((d.labels.clone(), d.classes, r.rows), (vec![Some(1), Some(2), Some(1)], 3, 3));
        // read as a comma file it is one column: an error, not silently wrong data
        let bad = CsvSeriesOptions { delimiter: b',', ..opts };
        assert!(load_csv_series(&p, &bad).is_err());
    }

    #[test]
    fn float_spelled_labels_are_integers_and_minus_one_is_unlabeled() {
        // numpy.savetxt writes labels as e-notation floats
        let dir = TestDir::new("csv-series-labels");
        let p = dir.write("e.csv", "a,label\n1,1.0000000e+00\n2,0.0000000e+00\n3,-1.0000000e+00\n4,2.0\n5,-1\n6,\n");
        let opts = CsvSeriesOptions { label_column: Some("label".into()), ..CsvSeriesOptions::flat(1, 1) };
        let (d, _) = load_csv_series(&p, &opts).unwrap();
        assert_eq!(d.class_names, vec!["0", "1", "2"]);
        assert_eq!(d.labels, vec![Some(1), Some(0), None, Some(2), None, None]);
        // with fixed classes: a float-spelled integer is a class number
        let fixed = CsvSeriesOptions { class_names: Some(vec!["a".into(), "b".into(), "c".into()]), ..opts.clone() };
        assert_eq!(load_csv_series(&p, &fixed).unwrap().0.labels, vec![Some(1), Some(0), None, Some(2), None, None]);
        // names: "-1" is still unlabeled, other texts are classes
        let p = dir.write("n.csv", "a,label\n1,walk\n2,-1\n3,run\n");
        let (d, _) = load_csv_series(&p, &opts).unwrap();
        assert_eq!((d.class_names.clone(), d.labels.clone()), (vec!["run".to_string(), "walk".to_string()], vec![Some(1), None, Some(0)]));
        // the long layout compares classes, not texts: "1" and "1.0" agree
        let p = dir.write("l.csv", "v,label\n1,1\n2,1.0\n3,1e0\n");
        let long = CsvSeriesOptions { label_column: Some("label".into()), ..CsvSeriesOptions::long(3, 1) };
        let (d, r) = load_csv_series(&p, &long).unwrap();
        assert_eq!((d.labels.clone(), r.mixed_label_windows), (vec![Some(1)], 0));
        // negative integers other than -1: names (canonical integers, byte order)
        let p = dir.write("neg.csv", "a,label\n1,-2.0\n2,3\n");
        assert_eq!(load_csv_series(&p, &opts).unwrap().0.class_names, vec!["-2", "3"]);
    }
}
