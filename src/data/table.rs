//! Users' tables of features (one row per sample) for the dense models: `ssvae train --data
//! features.csv`.
//!
//! Formats, told apart by the file's first bytes (then its name):
//!
//! - Text: CSV, TSV, or whitespace-separated columns (runs of spaces and tabs, as UCI and many
//!   instruments write), optionally gzipped. The delimiter is `\t` for `.tsv` / `.tab`, else
//!   sniffed from the first lines: the first of `\t`, `;`, `,` that splits them into the same
//!   number (> 1) of cells, else runs of whitespace when that gives more than one cell. The
//!   first line is a header when any non-empty cell of it is not a number (see
//!   [`TableOptions::header`]); a headerless file names its columns `f0, f1, ..`. Cells are
//!   split as [`load_csv_series`](super::load_csv_series) does (double quotes, `""` inside
//!   quotes, trimmed); a byte-order mark is ignored, blank lines are skipped.
//! - NumPy `.npy` (read here, no dependency): a 2-D array of `f2/f4/f8/i1..i8/u1..u8`, either
//!   byte order, C or Fortran order. Its columns are named `f0, f1, ..` (by their index in the
//!   array, also when a label column is taken out). Labels come from a separate `.npy` file
//!   ([`TableOptions::labels_path`]: a 1-D array of integers or floats, -1 or NaN = unlabeled, or
//!   of strings `<U*` / `|S*`, empty = unlabeled), or from a column of the array
//!   ([`TableOptions::label_column`] `"#K"`), which is then not a feature. `.npz` is refused with
//!   a hint.
//! - Parquet (with the default `parquet` cargo feature; the `parquet` crate's record API, no
//!   arrow; snappy, gzip, zstd and lz4 pages): flat columns, features numeric (booleans read as
//!   0/1), the label column strings or numbers with null = unlabeled. Rows are numbered from 1.
//!
//! Columns are chosen by header name or by 0-based number written `#K`. Labels: an empty cell,
//! `-1` and [`TableOptions::unlabeled_value`] mean unlabeled. When every other label spells a
//! whole number (`1`, `1.0`, `1.0000000e+00`), the labels are numbers: any spelling of -1 is
//! unlabeled too, the class names are the canonical integers (`"1"`), sorted numerically.
//! Otherwise the class names are the label strings, sorted by byte order.
//! [`TableOptions::class_names`] fixes the classes instead.
//!
//! Every error is an [`Error::Invalid`] naming the file and, for a cell, its 1-based line (NPY:
//! row) and its column.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::csv_series::{label_integer, split_cells};
use super::idx::read_maybe_gz;
use crate::error::{Error, Result};

/// Most classes a table may have.
pub const MAX_TABLE_CLASSES: usize = 65535;

/// What to read from a table; see the module documentation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableOptions {
    /// Name of the label column (or its 0-based index written as "#3"). None: a column named
    /// (case-insensitively) "label", "class", "target" or "y" if there is exactly one such, else
    /// no labels.
    pub label_column: Option<String>,
    /// Label cell value that means "unlabeled" besides an empty cell and -1 (scikit-learn's
    /// convention, when labels are numeric).
    pub unlabeled_value: Option<String>,
    /// Feature columns to use (by name), default: every column but the label and id columns.
    pub columns: Option<Vec<String>>,
    /// Column holding each row's id (kept as the row's id in predictions; not a feature). None:
    /// a column named "id" if present, else row numbers.
    pub id_column: Option<String>,
    /// Delimiter; None: '\t' for .tsv/.tab, else sniffed from the first line: ',', ';', '\t', or
    /// runs of whitespace.
    pub delimiter: Option<Delimiter>,
    /// Whether the first line is a header; None: sniffed (a header when any cell of the first
    /// line is not a number).
    pub header: Option<bool>,
    /// NPY: a separate labels file (1-D array of ints, -1 = unlabeled; or of strings dtype <U /
    /// |S, empty string = unlabeled).
    pub labels_path: Option<PathBuf>,
    /// Fix the classes (reading a test table with the training classes in that order).
    pub class_names: Option<Vec<String>>,
    /// With class_names: labels not among them are appended as new classes (an anomaly test
    /// set) instead of an error.
    pub allow_new_classes: bool,
}

/// How the cells of a text line are separated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delimiter {
    /// One byte (`b','`, `b';'`, `b'\t'`); `Byte(b' ')` means [`Delimiter::Whitespace`].
    Byte(u8),
    /// Runs of spaces and tabs (no empty cells).
    Whitespace,
}

impl Delimiter {
    fn byte(self) -> u8 {
        match self {
            Delimiter::Byte(b) => b,
            Delimiter::Whitespace => b' ',
        }
    }

    fn describe(self) -> String {
        match self {
            Delimiter::Byte(b'\t') => "tab".into(),
            Delimiter::Byte(b' ') | Delimiter::Whitespace => "runs of whitespace".into(),
            Delimiter::Byte(b) => format!("'{}'", b as char),
        }
    }
}

/// A table of features read by [`load_table`].
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// n * features values, row after row.
    pub values: Vec<f32>,
    pub labels: Vec<Option<usize>>,
    /// One id per row: the id column's value, else "row K" where K is the 1-based data row
    /// number (line number in the file for CSV, index for NPY).
    pub ids: Vec<String>,
    pub feature_names: Vec<String>,
    pub class_names: Vec<String>,
    /// Notes for the log.
    pub notes: Vec<String>,
}

impl Table {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// Number of feature columns.
    pub fn features(&self) -> usize {
        self.feature_names.len()
    }
}

const TEXT_EXTENSIONS: [&str; 5] = ["csv", "tsv", "tab", "txt", "dat"];

/// The file name's extensions, lower case: ("csv", true) for `x.CSV.gz`.
fn extension(path: &Path) -> (String, bool) {
    let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let (stem, gz) = match name.strip_suffix(".gz") {
        Some(s) => (s.to_string(), true),
        None => (name, false),
    };
    (stem.rsplit_once('.').map(|(_, e)| e.to_string()).unwrap_or_default(), gz)
}

/// Which table formats a path names: by extension (.csv, .tsv, .tab, .txt, .dat, any of these +
/// .gz, .npy, .npz not supported -> error, .parquet if built).
pub fn is_table_file(path: &Path) -> bool {
    let (ext, gz) = extension(path);
    TEXT_EXTENSIONS.contains(&ext.as_str()) || (!gz && (ext == "npy" || ext == "npz" || (cfg!(feature = "parquet") && ext == "parquet")))
}

/// Reads a table of features; see the module documentation for the formats, the column and
/// label rules and the errors.
pub fn load_table(path: &Path, opts: &TableOptions) -> Result<Table> {
    let fail = |msg: String| Error::Invalid(format!("{}: {msg}", path.display()));
    let (ext, _) = extension(path);
    if ext == "npz" {
        return Err(fail(npz_hint()));
    }
    let bytes = read_maybe_gz(path)?;
    if bytes.starts_with(b"PK\x03\x04") {
        return Err(fail(format!("a zip archive, not a table. {}", npz_hint())));
    }
    if bytes.starts_with(b"PAR1") || ext == "parquet" {
        #[cfg(feature = "parquet")]
        return load_parquet_table(path, opts);
        #[cfg(not(feature = "parquet"))]
        return Err(fail(
            "this build reads no Parquet files (built without the 'parquet' feature); convert it, e.g. pandas.read_parquet(path).to_csv('features.csv', index=False)".into(),
        ));
    }
    if bytes.starts_with(NPY_MAGIC) {
        return load_npy_table(path, &bytes, opts);
    }
    if ext == "npy" {
        return Err(fail("not an NPY file: it does not start with the magic bytes \\x93NUMPY".into()));
    }
    load_text_table(path, &bytes, &ext, opts)
}

fn npz_hint() -> String {
    "'.npz' archives are not supported; save each array with numpy.save (features: a 2-D array; labels: a 1-D array given as the labels file)"
        .into()
}

// ---------------------------------------------------------------------------------------------
// Columns

/// Which column is what.
#[derive(Debug)]
struct Chosen {
    features: Vec<usize>,
    label: Option<usize>,
    id: Option<usize>,
}

/// Lists the columns for an error message.
fn list_columns(names: &[String], header: bool) -> String {
    if !header {
        return format!(
            "the file has no header row; its {} columns are f0..f{} (or #0..#{})",
            names.len(),
            names.len() - 1,
            names.len() - 1
        );
    }
    const MAX: usize = 40;
    let shown: Vec<&str> = names.iter().take(MAX).map(String::as_str).collect();
    let more = if names.len() > MAX { format!(", .. ({} columns)", names.len()) } else { String::new() };
    format!("the columns are: {}{more}", shown.join(", "))
}

/// A column by name, else by `#K` (0-based).
fn resolve_column(what: &str, c: &str, names: &[String], header: bool) -> std::result::Result<usize, String> {
    if let Some(i) = names.iter().position(|n| n == c) {
        return Ok(i);
    }
    if let Some(k) = c.strip_prefix('#').and_then(|k| k.parse::<usize>().ok()) {
        return if k < names.len() {
            Ok(k)
        } else {
            Err(format!("{what} '{c}': column #{k} does not exist, the table has {} columns (#0..#{})", names.len(), names.len() - 1))
        };
    }
    Err(format!("{what}: no column '{c}'; {}", list_columns(names, header)))
}

/// The one column whose name is (case-insensitively) among `wanted`, not in `taken`.
fn find_by_name(names: &[String], wanted: &[&str], taken: &HashSet<usize>) -> Vec<usize> {
    (0..names.len()).filter(|i| !taken.contains(i) && wanted.iter().any(|w| names[*i].eq_ignore_ascii_case(w))).collect()
}

fn choose_columns(names: &[String], header: bool, opts: &TableOptions, notes: &mut Vec<String>) -> std::result::Result<Chosen, String> {
    if header {
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (i, n) in names.iter().enumerate() {
            if let Some(j) = first.insert(n.as_str(), i) {
                return Err(format!("duplicate column name '{n}' (columns #{j} and #{i}); rename one of them"));
            }
        }
    }
    let listed: Option<Vec<usize>> = opts
        .columns
        .as_ref()
        .map(|cs| cs.iter().map(|c| resolve_column("--columns", c, names, header)).collect::<std::result::Result<_, _>>())
        .transpose()?;
    let listed_set: HashSet<usize> = listed.iter().flatten().copied().collect();
    let label = match (&opts.label_column, &opts.labels_path) {
        (Some(_), Some(p)) => {
            return Err(format!("labels come either from a label column or from a labels file ({}), not both", p.display()))
        }
        (Some(c), None) => Some(resolve_column("--label-column", c, names, header)?),
        (None, Some(_)) => None,
        (None, None) if header => {
            let mut taken = listed_set.clone();
            if let Some(c) = &opts.id_column {
                taken.extend(names.iter().position(|n| n == c));
            }
            let hits = find_by_name(names, &["label", "class", "target", "y"], &taken);
            match hits.len() {
                1 => {
                    notes.push(format!("labels from column '{}' (found by its name; --label-column chooses another)", names[hits[0]]));
                    Some(hits[0])
                }
                0 => None,
                _ => {
                    let h: Vec<&str> = hits.iter().map(|&i| names[i].as_str()).collect();
                    notes.push(format!(
                        "no labels: columns {} all look like a label column (they are features now); choose one with --label-column",
                        h.join(", ")
                    ));
                    None
                }
            }
        }
        (None, None) => None,
    };
    let id = match &opts.id_column {
        Some(c) => Some(resolve_column("--id-column", c, names, header)?),
        None if header => {
            let mut taken = listed_set.clone();
            taken.extend(label);
            let hits = find_by_name(names, &["id"], &taken);
            if hits.len() == 1 {
                notes.push(format!("row ids from column '{}' (not a feature)", names[hits[0]]));
            }
            (hits.len() == 1).then(|| hits[0])
        }
        None => None,
    };
    if label.is_some() && label == id {
        return Err(format!("column '{}' cannot be both the label and the id column", names[label.unwrap()]));
    }
    let features = match listed {
        Some(cols) => {
            let mut seen = HashSet::new();
            for &c in &cols {
                if Some(c) == label || Some(c) == id {
                    let role = if Some(c) == label { "label" } else { "id" };
                    return Err(format!("--columns: column '{}' is the {role} column, it cannot also be a feature", names[c]));
                }
                if !seen.insert(c) {
                    return Err(format!("--columns: column '{}' is listed twice", names[c]));
                }
            }
            cols
        }
        None => (0..names.len()).filter(|&c| Some(c) != label && Some(c) != id).collect(),
    };
    if features.is_empty() {
        return Err(format!("no feature column: every column is the label or id column; {}", list_columns(names, header)));
    }
    if header && opts.columns.is_none() {
        if let Some(i) = names.iter().position(|n| n.is_empty()) {
            if features.contains(&i) {
                notes.push(format!(
                    "column #{i} has no name (a pandas index?); it is read as a feature: --id-column '#{i}' makes it the row ids"
                ));
            }
        }
    }
    Ok(Chosen { features, label, id })
}

// ---------------------------------------------------------------------------------------------
// Labels

/// Label texts as they come, row by row.
struct LabelCollector {
    unlabeled: Option<String>,
    unlabeled_int: Option<i64>,
    /// Distinct label texts, each with where it first appears ("line 5").
    texts: Vec<(String, String)>,
    index: HashMap<String, u32>,
    rows: Vec<Option<u32>>,
}

impl LabelCollector {
    fn new(opts: &TableOptions) -> Self {
        let unlabeled = opts.unlabeled_value.as_ref().map(|s| s.trim().to_string());
        let unlabeled_int = unlabeled.as_deref().and_then(label_integer);
        LabelCollector { unlabeled, unlabeled_int, texts: Vec::new(), index: HashMap::new(), rows: Vec::new() }
    }

    fn push(&mut self, text: Option<&str>, at: impl FnOnce() -> String) {
        let t = match text {
            None | Some("") | Some("-1") => None,
            Some(t) if Some(t) == self.unlabeled.as_deref() => None,
            Some(t) if self.unlabeled_int.is_some() && label_integer(t) == self.unlabeled_int => None,
            Some(t) => Some(t),
        };
        self.rows.push(t.map(|t| match self.index.get(t) {
            Some(&k) => k,
            None => {
                self.texts.push((t.to_string(), at()));
                self.index.insert(t.to_string(), self.texts.len() as u32 - 1);
                self.texts.len() as u32 - 1
            }
        }));
    }

    /// Class names and each row's class.
    fn resolve(self, opts: &TableOptions, notes: &mut Vec<String>) -> std::result::Result<(Vec<String>, Vec<Option<usize>>), String> {
        let (names, class) = classify(&self.texts, opts, notes)?;
        Ok((names, self.rows.iter().map(|r| r.and_then(|k| class[k as usize])).collect()))
    }
}

fn list_classes(names: &[String]) -> String {
    const MAX: usize = 30;
    let shown: Vec<&str> = names.iter().take(MAX).map(String::as_str).collect();
    let more = if names.len() > MAX { format!(", .. ({} classes)", names.len()) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

/// Class names, and the class of each distinct label text (None: unlabeled).
#[allow(clippy::type_complexity)]
fn classify(
    texts: &[(String, String)],
    opts: &TableOptions,
    notes: &mut Vec<String>,
) -> std::result::Result<(Vec<String>, Vec<Option<usize>>), String> {
    let ints: Option<Vec<i64>> = texts.iter().map(|(t, _)| label_integer(t)).collect();
    // The class name each text stands for (None: unlabeled).
    let key: Vec<Option<String>> = match &ints {
        Some(v) => v.iter().map(|&i| (i != -1).then(|| i.to_string())).collect(),
        None => texts.iter().map(|(t, _)| Some(t.clone())).collect(),
    };
    let sort = |names: &mut Vec<String>| {
        if ints.is_some() {
            names.sort_by_key(|n| n.parse::<i64>().unwrap_or(i64::MAX));
        } else {
            names.sort_unstable();
        }
        names.dedup();
    };
    let mut names: Vec<String> = match &opts.class_names {
        Some(fixed) => {
            let mut seen = HashSet::new();
            if let Some(d) = fixed.iter().find(|n| !seen.insert(n.as_str())) {
                return Err(format!("the class names list '{d}' twice"));
            }
            let mut new: Vec<String> = Vec::new();
            for (k, key) in key.iter().enumerate() {
                let Some(key) = key else { continue };
                if !fixed.contains(key) {
                    if !opts.allow_new_classes {
                        return Err(format!(
                            "{}: label '{}' is not one of the {} classes ({})",
                            texts[k].1,
                            texts[k].0,
                            fixed.len(),
                            list_classes(fixed)
                        ));
                    }
                    new.push(key.clone());
                }
            }
            sort(&mut new);
            if !new.is_empty() {
                notes.push(format!("{} label(s) not among the known classes, appended as new classes: {}", new.len(), list_classes(&new)));
            }
            fixed.iter().cloned().chain(new).collect()
        }
        None => {
            let mut names: Vec<String> = key.iter().flatten().cloned().collect();
            sort(&mut names);
            names
        }
    };
    if names.len() > MAX_TABLE_CLASSES {
        return Err(format!(
            "too many classes: {} distinct labels, at most {MAX_TABLE_CLASSES} (is the label column right? a continuous target is not a class)",
            names.len()
        ));
    }
    let pos: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let class = key.iter().map(|k| k.as_ref().map(|k| pos[k.as_str()])).collect();
    names.shrink_to_fit();
    Ok((names, class))
}

// ---------------------------------------------------------------------------------------------
// Text tables

/// A feature cell as f32; the message says what is wrong.
fn parse_feature(cell: &str) -> std::result::Result<f32, String> {
    let shown: String = cell.chars().take(40).collect();
    if cell.is_empty() {
        return Err("empty cell: feature values cannot be missing (fill or drop the row, or leave the column out with --columns)".into());
    }
    match cell.parse::<f64>() {
        Ok(v) if v.is_nan() => Err(format!("'{shown}' (NaN) is not allowed: fill or drop missing values")),
        Ok(v) if v.is_infinite() => Err(format!("'{shown}' is infinite, which is not allowed")),
        Ok(v) if v.abs() > f32::MAX as f64 => Err(format!("'{shown}' is beyond f32's range (magnitude at most {:e}); rescale the column", f32::MAX)),
        Ok(v) => Ok(v as f32),
        Err(_) if cell.replace(',', ".").parse::<f64>().is_ok() => {
            Err(format!("'{shown}' is not a number (a decimal comma? write decimal points)"))
        }
        Err(_) => Err(format!(
            "'{shown}' is not a number; every feature column must be numeric: choose the feature columns with --columns (and the label with --label-column)"
        )),
    }
}

fn is_number(cell: &str) -> bool {
    cell.parse::<f64>().is_ok()
}

/// The delimiter that splits `lines` into the same number (> 1) of cells.
fn sniff_delimiter(lines: &[&str]) -> Delimiter {
    let count = |l: &str, d: u8| split_cells(l, d).map(|c| c.len()).unwrap_or(0);
    for d in [b'\t', b';', b','] {
        let n = count(lines[0], d);
        if n > 1 && lines.iter().all(|l| count(l, d) == n) {
            return Delimiter::Byte(d);
        }
    }
    // Not consistent (a ragged row): the delimiter the first line has most of.
    let best = [b'\t', b';', b','].into_iter().map(|d| (count(lines[0], d), d)).filter(|&(n, _)| n > 1).max_by_key(|&(n, _)| n);
    if let Some((_, d)) = best {
        return Delimiter::Byte(d);
    }
    if count(lines[0], b' ') > 1 {
        return Delimiter::Whitespace;
    }
    Delimiter::Byte(b',')
}

fn load_text_table(path: &Path, bytes: &[u8], ext: &str, opts: &TableOptions) -> Result<Table> {
    let fail = |msg: String| Error::Invalid(format!("{}: {msg}", path.display()));
    let text = std::str::from_utf8(bytes).map_err(|e| fail(format!("not UTF-8 text (nor an NPY file): {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l)).filter(|(_, l)| !l.trim().is_empty()).peekable();
    let Some(&(first_ln, first)) = lines.peek() else {
        return Err(fail("empty file: no header and no rows".into()));
    };
    let mut notes = Vec::new();
    let delim = match opts.delimiter {
        Some(d) => d,
        None if ext == "tsv" || ext == "tab" => Delimiter::Byte(b'\t'),
        None => {
            let sample: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(20).collect();
            let d = sniff_delimiter(&sample);
            notes.push(format!("cells separated by {} (sniffed; --delimiter chooses)", d.describe()));
            d
        }
    };
    let db = delim.byte();
    let first_cells = split_cells(first, db).map_err(|m| fail(format!("line {first_ln}: {m}")))?;
    let header = match opts.header {
        Some(h) => h,
        None => {
            let word = first_cells.iter().find(|c| !c.is_empty() && !is_number(c));
            if let Some(w) = word {
                let w: String = w.chars().take(40).collect();
                notes.push(format!("line {first_ln} is the header ('{w}' is not a number)"));
            }
            word.is_some()
        }
    };
    let ncols = first_cells.len();
    let names: Vec<String> = if header {
        lines.next();
        first_cells.iter().map(|c| c.to_string()).collect()
    } else {
        (0..ncols).map(|i| format!("f{i}")).collect()
    };
    let chosen = choose_columns(&names, header, opts, &mut notes).map_err(fail)?;
    let expected_from = if header { "as the header" } else { "as the first row" };

    let mut values = Vec::new();
    let mut ids = Vec::new();
    let mut labels = LabelCollector::new(opts);
    for (ln, line) in lines {
        let cells = split_cells(line, db).map_err(|m| fail(format!("line {ln}: {m}")))?;
        if cells.len() != ncols {
            return Err(fail(format!("line {ln} has {} cells, expected {ncols} {expected_from}", cells.len())));
        }
        for &c in &chosen.features {
            values.push(parse_feature(&cells[c]).map_err(|m| fail(format!("line {ln}, column '{}': {m}", names[c])))?);
        }
        labels.push(chosen.label.map(|c| cells[c].as_ref()), || format!("line {ln}"));
        ids.push(match chosen.id {
            Some(c) => cells[c].to_string(),
            None => format!("row {ln}"),
        });
    }
    if ids.is_empty() {
        return Err(fail("no rows (only a header)".into()));
    }
    if opts.labels_path.is_some() {
        labels = labels_from_file(opts, ids.len())?;
    }
    let (class_names, labels) = labels.resolve(opts, &mut notes).map_err(fail)?;
    note_duplicate_ids(&ids, chosen.id.map(|c| names[c].as_str()), &mut notes);
    Ok(Table { values, labels, ids, feature_names: chosen.features.iter().map(|&c| names[c].clone()).collect(), class_names, notes })
}

fn note_duplicate_ids(ids: &[String], column: Option<&str>, notes: &mut Vec<String>) {
    let Some(column) = column else { return };
    let mut seen = HashSet::new();
    let dups = ids.iter().filter(|id| !seen.insert(id.as_str())).count();
    if dups > 0 {
        notes.push(format!("{dups} row(s) repeat an id of column '{column}'"));
    }
}

// ---------------------------------------------------------------------------------------------
// Parquet

/// A Parquet file (flat columns): numeric (and boolean, as 0/1) feature columns; the label
/// column may hold strings or numbers, null = unlabeled. Read with the `parquet` crate's record
/// API (no arrow).
#[cfg(feature = "parquet")]
fn load_parquet_table(path: &Path, opts: &TableOptions) -> Result<Table> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    let fail = |msg: String| Error::Invalid(format!("{}: {msg}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let reader =
        SerializedFileReader::new(file).map_err(|e| fail(format!("not a readable Parquet file (a gzipped one is not read): {e}")))?;
    let schema = reader.metadata().file_metadata().schema_descr().root_schema();
    let names: Vec<String> = schema.get_fields().iter().map(|f| f.name().to_string()).collect();
    if names.is_empty() {
        return Err(fail("no columns".into()));
    }
    let mut notes = Vec::new();
    let chosen = choose_columns(&names, true, opts, &mut notes).map_err(fail)?;
    for &c in chosen.features.iter().chain(&chosen.label).chain(&chosen.id) {
        if schema.get_fields()[c].is_group() {
            return Err(fail(format!("column '{}' is nested (a list, map or struct); only flat columns are read", names[c])));
        }
    }
    fn number(f: &Field) -> Option<f64> {
        Some(match *f {
            Field::Bool(b) => b as u8 as f64,
            Field::Byte(v) => v as f64,
            Field::Short(v) => v as f64,
            Field::Int(v) => v as f64,
            Field::Long(v) => v as f64,
            Field::UByte(v) => v as f64,
            Field::UShort(v) => v as f64,
            Field::UInt(v) => v as f64,
            Field::ULong(v) => v as f64,
            Field::Float16(v) => v.to_f64(),
            Field::Float(v) => v as f64,
            Field::Double(v) => v,
            _ => return None,
        })
    }
    fn text(f: &Field) -> Option<String> {
        match f {
            Field::Null => None,
            Field::Str(s) => Some(s.trim().to_string()),
            Field::Bytes(b) => Some(String::from_utf8_lossy(b.data()).trim().to_string()),
            Field::Byte(_) | Field::Short(_) | Field::Int(_) | Field::Long(_) => Some(number(f).map(|v| v as i64)?.to_string()),
            Field::UByte(_) | Field::UShort(_) | Field::UInt(_) => Some(number(f).map(|v| v as u64)?.to_string()),
            Field::ULong(v) => Some(v.to_string()),
            Field::Float16(_) | Field::Float(_) | Field::Double(_) => number(f).filter(|v| !v.is_nan()).map(number_text),
            other => Some(other.to_string()),
        }
    }
    let rows = reader.get_row_iter(None).map_err(|e| fail(format!("cannot read the rows: {e}")))?;
    let mut values = Vec::new();
    let mut ids = Vec::new();
    let mut labels = LabelCollector::new(opts);
    for (i, row) in rows.enumerate() {
        let row = row.map_err(|e| fail(format!("row {}: cannot read it: {e}", i + 1)))?;
        let cells: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
        for &c in &chosen.features {
            let bad = match cells[c] {
                Field::Null => "a missing value (null): fill or drop missing values".to_string(),
                f => match number(f) {
                    Some(v) if v.is_nan() => "NaN is not allowed: fill or drop missing values".to_string(),
                    Some(v) if v.is_infinite() => "an infinite value is not allowed".to_string(),
                    Some(v) if v.abs() > f32::MAX as f64 => format!("{v} is beyond f32's range"),
                    Some(v) => {
                        values.push(v as f32);
                        continue;
                    }
                    None => format!(
                        "'{}' is not a number; every feature column must be numeric: choose the feature columns with --columns (and the label with --label-column)",
                        f.to_string().chars().take(40).collect::<String>()
                    ),
                },
            };
            return Err(fail(format!("row {}, column '{}': {bad}", i + 1, names[c])));
        }
        labels.push(chosen.label.and_then(|c| text(cells[c])).as_deref(), || format!("row {}", i + 1));
        ids.push(match chosen.id {
            Some(c) => text(cells[c]).unwrap_or_default(),
            None => format!("row {}", i + 1),
        });
    }
    if ids.is_empty() {
        return Err(fail("no rows".into()));
    }
    if opts.labels_path.is_some() {
        labels = labels_from_file(opts, ids.len())?;
    }
    let (class_names, labels) = labels.resolve(opts, &mut notes).map_err(fail)?;
    note_duplicate_ids(&ids, chosen.id.map(|c| names[c].as_str()), &mut notes);
    Ok(Table { values, labels, ids, feature_names: chosen.features.iter().map(|&c| names[c].clone()).collect(), class_names, notes })
}

// ---------------------------------------------------------------------------------------------
// NPY

const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// An element type of an NPY array.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Float,
    Int,
    Uint,
    /// `<U`: UCS-4 code points.
    Unicode,
    /// `|S`: bytes.
    Bytes,
}

#[derive(Debug)]
struct Npy<'a> {
    descr: String,
    kind: Kind,
    big_endian: bool,
    /// Bytes per element.
    size: usize,
    fortran: bool,
    shape: Vec<usize>,
    data: &'a [u8],
}

/// A Python literal of an NPY header.
#[derive(Clone, Debug, PartialEq)]
enum Py {
    Str(String),
    Int(i64),
    Bool(bool),
    None,
    Seq(Vec<Py>),
    Dict(Vec<(Py, Py)>),
}

struct PyParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl PyParser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|b| b.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        let hit = self.s.get(self.i) == Some(&b);
        self.i += hit as usize;
        hit
    }

    fn expect(&mut self, b: u8) -> std::result::Result<(), String> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {} of the header", b as char, self.i))
        }
    }

    fn value(&mut self) -> std::result::Result<Py, String> {
        self.ws();
        let Some(&c) = self.s.get(self.i) else { return Err("the header ends early".into()) };
        match c {
            b'{' => {
                self.i += 1;
                let mut items = Vec::new();
                while !self.eat(b'}') {
                    let k = self.value()?;
                    self.expect(b':')?;
                    let v = self.value()?;
                    items.push((k, v));
                    if !self.eat(b',') {
                        self.expect(b'}')?;
                        break;
                    }
                }
                Ok(Py::Dict(items))
            }
            b'(' | b'[' => {
                let close = if c == b'(' { b')' } else { b']' };
                self.i += 1;
                let mut items = Vec::new();
                while !self.eat(close) {
                    items.push(self.value()?);
                    if !self.eat(b',') {
                        self.expect(close)?;
                        break;
                    }
                }
                Ok(Py::Seq(items))
            }
            b'\'' | b'"' => {
                self.i += 1;
                let start = self.i;
                while self.s.get(self.i).is_some_and(|&b| b != c) {
                    self.i += if self.s[self.i] == b'\\' { 2 } else { 1 };
                }
                if self.i >= self.s.len() {
                    return Err("a string in the header is not closed".into());
                }
                let v = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                self.i += 1;
                Ok(Py::Str(v))
            }
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                self.i += 1;
                while self.s.get(self.i).is_some_and(|b| b.is_ascii_digit()) {
                    self.i += 1;
                }
                let v = std::str::from_utf8(&self.s[start..self.i]).unwrap();
                let v = v.parse::<i64>().map_err(|_| format!("bad number '{v}' in the header"))?;
                if self.s.get(self.i) == Some(&b'L') {
                    self.i += 1; // Python 2 long
                }
                Ok(Py::Int(v))
            }
            _ => {
                let start = self.i;
                while self.s.get(self.i).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_') {
                    self.i += 1;
                }
                match &self.s[start..self.i] {
                    b"True" => Ok(Py::Bool(true)),
                    b"False" => Ok(Py::Bool(false)),
                    b"None" => Ok(Py::None),
                    _ => Err(format!(
                        "unexpected '{}' at byte {start} of the header",
                        String::from_utf8_lossy(&self.s[start..(start + 20).min(self.s.len())])
                    )),
                }
            }
        }
    }
}

fn shape_text(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

/// Parses an NPY file's header; the message says what is wrong.
fn parse_npy(bytes: &[u8]) -> std::result::Result<Npy<'_>, String> {
    if !bytes.starts_with(NPY_MAGIC) {
        return Err("not an NPY file: it does not start with the magic bytes \\x93NUMPY".into());
    }
    if bytes.len() < 10 {
        return Err("truncated NPY file: it ends inside the preamble".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, 12),
        2 | 3 => return Err("truncated NPY file: it ends inside the preamble".into()),
        v => return Err(format!("NPY format version {v}.{} is not supported (1, 2 and 3 are)", bytes[7])),
    };
    let Some(header) = bytes.get(start..start + header_len) else {
        return Err(format!("truncated NPY file: the header says it is {header_len} bytes long, the file ends before"));
    };
    let dict = PyParser { s: header, i: 0 }.value().map_err(|m| format!("malformed NPY header: {m}"))?;
    let Py::Dict(items) = dict else { return Err("malformed NPY header: not a dictionary".into()) };
    let get = |k: &str| items.iter().find(|(key, _)| *key == Py::Str(k.into())).map(|(_, v)| v);
    let descr = match get("descr") {
        Some(Py::Str(d)) => d.clone(),
        Some(_) => {
            return Err("a structured array (record dtype) is not supported; save a plain 2-D numeric array, e.g. numpy.save(p, x.astype(numpy.float32))".into())
        }
        None => return Err("malformed NPY header: no 'descr'".into()),
    };
    let fortran = match get("fortran_order") {
        Some(Py::Bool(b)) => *b,
        _ => return Err("malformed NPY header: no 'fortran_order' True/False".into()),
    };
    let shape = match get("shape") {
        Some(Py::Seq(dims)) => dims
            .iter()
            .map(|d| match d {
                Py::Int(v) if *v >= 0 => Ok(*v as usize),
                _ => Err("malformed NPY header: 'shape' is not a tuple of sizes".to_string()),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?,
        _ => return Err("malformed NPY header: no 'shape' tuple".into()),
    };
    let (order, rest) = match descr.as_bytes().first() {
        Some(b'<' | b'>' | b'|' | b'=') => (descr.as_bytes()[0], &descr[1..]),
        _ => (b'=', descr.as_str()),
    };
    let unsupported = || {
        format!("dtype '{descr}' is not supported (float16/32/64, signed and unsigned integers are; convert with x.astype(numpy.float32))")
    };
    let (kind_c, size_s) = rest.split_at(rest.len().min(1));
    let n: usize = if size_s.is_empty() { 0 } else { size_s.parse().map_err(|_| unsupported())? };
    let (kind, size) = match kind_c {
        "f" if matches!(n, 2 | 4 | 8) => (Kind::Float, n),
        "i" if matches!(n, 1 | 2 | 4 | 8) => (Kind::Int, n),
        "u" if matches!(n, 1 | 2 | 4 | 8) => (Kind::Uint, n),
        "U" if n > 0 => (Kind::Unicode, 4 * n),
        "S" | "a" if n > 0 => (Kind::Bytes, n),
        "O" => {
            return Err(format!(
                "an object array (dtype '{descr}') holds pickled Python objects, which are not read; save a numeric array (x.astype(numpy.float32)) or, for labels, a string array (y.astype(str))"
            ))
        }
        _ => return Err(unsupported()),
    };
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or("the shape is too large")?;
    let need = count.checked_mul(size).ok_or("the shape is too large")?;
    let data = &bytes[start + header_len..];
    if data.len() < need {
        return Err(format!(
            "truncated NPY file: shape {} of '{descr}' needs {need} bytes of data, the file has {}",
            shape_text(&shape),
            data.len()
        ));
    }
    if data.len() > need {
        return Err(format!(
            "{} bytes after the data of shape {} '{descr}' (not a single numpy.save array?)",
            data.len() - need,
            shape_text(&shape)
        ));
    }
    Ok(Npy { descr, kind, big_endian: order == b'>', size, fortran, shape, data })
}

impl Npy<'_> {
    /// Element `k` (in storage order) as f64 (numeric kinds only).
    fn number(&self, k: usize) -> f64 {
        let b = &self.data[k * self.size..(k + 1) * self.size];
        let mut a = [0u8; 8];
        a[..self.size].copy_from_slice(b);
        if self.big_endian {
            a[..self.size].reverse();
        }
        // `a` now holds the value little-endian in its first `size` bytes.
        match (self.kind, self.size) {
            (Kind::Float, 2) => half::f16::from_le_bytes([a[0], a[1]]).to_f64(),
            (Kind::Float, 4) => f32::from_le_bytes(a[..4].try_into().unwrap()) as f64,
            (Kind::Float, _) => f64::from_le_bytes(a),
            (Kind::Int, s) => {
                let shift = 64 - 8 * s as u32;
                ((i64::from_le_bytes(a) << shift) >> shift) as f64
            }
            (_, _) => u64::from_le_bytes(a) as f64,
        }
    }

    /// Element `k` as a label text: integers in full, whole floats as integers, NaN as None.
    fn label_text(&self, k: usize) -> Option<String> {
        let b = &self.data[k * self.size..(k + 1) * self.size];
        match self.kind {
            Kind::Unicode => {
                let mut s = String::new();
                for ch in b.chunks_exact(4) {
                    let a: [u8; 4] = ch.try_into().unwrap();
                    let u = if self.big_endian { u32::from_be_bytes(a) } else { u32::from_le_bytes(a) };
                    if u != 0 {
                        s.push(char::from_u32(u).unwrap_or(char::REPLACEMENT_CHARACTER));
                    }
                }
                Some(s.trim().to_string())
            }
            Kind::Bytes => {
                let end = b.iter().rposition(|&x| x != 0).map_or(0, |p| p + 1);
                Some(String::from_utf8_lossy(&b[..end]).trim().to_string())
            }
            Kind::Int | Kind::Uint if self.size == 8 => {
                let mut a: [u8; 8] = b.try_into().unwrap();
                if self.big_endian {
                    a.reverse();
                }
                Some(if self.kind == Kind::Int { i64::from_le_bytes(a).to_string() } else { u64::from_le_bytes(a).to_string() })
            }
            Kind::Int | Kind::Uint => Some((self.number(k) as i64).to_string()),
            Kind::Float => {
                let v = self.number(k);
                if v.is_nan() {
                    None
                } else {
                    Some(number_text(v))
                }
            }
        }
    }
}

/// A float as a label or id text: whole numbers without a fraction.
fn number_text(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9.007e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The labels of `opts.labels_path` (an NPY file), checked to be one per row.
fn labels_from_file(opts: &TableOptions, rows: usize) -> Result<LabelCollector> {
    let path = opts.labels_path.as_deref().unwrap();
    let fail = |msg: String| Error::Invalid(format!("{} (labels file): {msg}", path.display()));
    let bytes = read_maybe_gz(path)?;
    let npy = parse_npy(&bytes).map_err(fail)?;
    let n = match npy.shape[..] {
        [n] | [n, 1] => n,
        _ => return Err(fail(format!("labels must be a 1-D array (one label per row), this one has shape {}", shape_text(&npy.shape)))),
    };
    if n != rows {
        return Err(fail(format!("{n} labels, but the table has {rows} rows")));
    }
    let mut labels = LabelCollector::new(opts);
    for k in 0..n {
        let t = npy.label_text(k);
        labels.push(t.as_deref(), || format!("row {} (index {k}) of the labels file", k + 1));
    }
    Ok(labels)
}

fn load_npy_table(path: &Path, bytes: &[u8], opts: &TableOptions) -> Result<Table> {
    let fail = |msg: String| Error::Invalid(format!("{}: {msg}", path.display()));
    let npy = parse_npy(bytes).map_err(fail)?;
    if matches!(npy.kind, Kind::Unicode | Kind::Bytes) {
        return Err(fail(format!("features must be numbers, this array holds strings (dtype '{}')", npy.descr)));
    }
    let (n, d) = match npy.shape[..] {
        [n, d] => (n, d),
        [n] => {
            return Err(fail(format!(
                "features must be a 2-D array (rows x features), this one is 1-D, shape ({n},); a single feature: x.reshape(-1, 1); labels go in --labels"
            )))
        }
        _ => {
            return Err(fail(format!(
                "features must be a 2-D array (rows x features), this one has shape {}; flatten it with x.reshape(len(x), -1)",
                shape_text(&npy.shape)
            )))
        }
    };
    if n == 0 {
        return Err(fail(format!("no rows: shape {}", shape_text(&npy.shape))));
    }
    let names: Vec<String> = (0..d).map(|j| format!("f{j}")).collect();
    if d == 0 {
        return Err(fail(format!("no feature column: shape {}", shape_text(&npy.shape))));
    }
    let mut notes = Vec::new();
    let chosen = choose_columns(&names, false, opts, &mut notes).map_err(fail)?;
    let at = |i: usize, j: usize| if npy.fortran { j * n + i } else { i * d + j };
    let mut values = Vec::with_capacity(n * chosen.features.len());
    for i in 0..n {
        for &j in &chosen.features {
            let v = npy.number(at(i, j));
            let bad = if v.is_nan() {
                "NaN is not allowed: fill or drop missing values"
            } else if v.is_infinite() {
                "an infinite value is not allowed"
            } else if v.abs() > f32::MAX as f64 {
                "the value is beyond f32's range"
            } else {
                values.push(v as f32);
                continue;
            };
            return Err(fail(format!("row {} (index {i}), column f{j}: {bad} (value {v})", i + 1)));
        }
    }
    let mut labels = LabelCollector::new(opts);
    if opts.labels_path.is_some() {
        labels = labels_from_file(opts, n)?;
    } else if let Some(c) = chosen.label {
        for i in 0..n {
            let t = npy.label_text(at(i, c));
            labels.push(t.as_deref(), || format!("row {} (index {i}), column f{c}", i + 1));
        }
    } else {
        (0..n).for_each(|_| labels.push(None, String::new));
    }
    let ids: Vec<String> = match chosen.id {
        Some(c) => (0..n).map(|i| npy.label_text(at(i, c)).unwrap_or_else(|| "NaN".into())).collect(),
        None => (1..=n).map(|k| format!("row {k}")).collect(),
    };
    let (class_names, labels) = labels.resolve(opts, &mut notes).map_err(fail)?;
    note_duplicate_ids(&ids, chosen.id.map(|c| names[c].as_str()), &mut notes);
    Ok(Table { values, labels, ids, feature_names: chosen.features.iter().map(|&c| names[c].clone()).collect(), class_names, notes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    fn err(r: Result<Table>) -> String {
        match r {
            Ok(t) => panic!("expected an error, got {t:?}"),
            Err(e) => {
                assert!(matches!(e, Error::Invalid(_)), "not Error::Invalid: {e:?}");
                e.to_string()
            }
        }
    }

    fn assert_err(r: Result<Table>, needles: &[&str]) {
        let m = err(r);
        for n in needles {
            assert!(m.contains(n), "error {m:?} does not contain {n:?}");
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn no_opts() -> TableOptions {
        TableOptions::default()
    }

    #[test]
    fn csv_with_header_id_and_label_columns() {
        let d = TestDir::new("table-csv");
        let p = d.write("f.csv", "\u{feff}id,a,b,label\r\nx1,1,2.5,cat\r\n\r\nx2,-3,4e2,\r\nx3,5,6,dog\r\nx4,7,8,cat\r\n");
        let t = load_table(&p, &no_opts()).unwrap();
        assert_eq!(t.feature_names, s(&["a", "b"]));
        assert_eq!(t.values, vec![1.0, 2.5, -3.0, 400.0, 5.0, 6.0, 7.0, 8.0]);
        assert_eq!(t.class_names, s(&["cat", "dog"]));
        assert_eq!(t.labels, vec![Some(0), None, Some(1), Some(0)]);
        assert_eq!(t.ids, s(&["x1", "x2", "x3", "x4"]));
        assert_eq!((t.rows(), t.features()), (4, 2));
        assert!(t.notes.iter().any(|n| n.contains("labels from column 'label'")), "{:?}", t.notes);

        // explicit columns, no id column: ids are the line numbers; quoted cells
        let p = d.write("g.csv", "a,\"b, the second\",y\n1,2,\"x\"\n3,4,z\n");
        let o = TableOptions { columns: Some(s(&["b, the second"])), label_column: Some("#2".into()), ..no_opts() };
        let t = load_table(&p, &o).unwrap();
        assert_eq!((t.values.clone(), t.ids.clone()), (vec![2.0, 4.0], s(&["row 2", "row 3"])));
        assert_eq!(t.class_names, s(&["x", "z"]));
    }

    #[test]
    fn tsv_whitespace_semicolon_and_gz() {
        let d = TestDir::new("table-formats");
        let want = vec![1.0, 2.0, 3.0, 4.0];
        let p = d.write("f.tsv", "a\tb\tclass\n1\t2\tu\n3\t4\tv\n");
        let t = load_table(&p, &no_opts()).unwrap();
        assert_eq!((t.values.clone(), t.class_names.clone()), (want.clone(), s(&["u", "v"])));
        // runs of spaces and tabs, aligned columns, no header
        let p = d.write("uci.txt", "   1.0   2.0  0\n  3.0 \t 4.0  1\n");
        let o = TableOptions { label_column: Some("#2".into()), ..no_opts() };
        let t = load_table(&p, &o).unwrap();
        assert_eq!(t.values, want);
        assert_eq!((t.feature_names.clone(), t.labels.clone()), (s(&["f0", "f1"]), vec![Some(0), Some(1)]));
        assert!(t.notes.iter().any(|n| n.contains("runs of whitespace")), "{:?}", t.notes);
        // the same with the delimiter given
        let o = TableOptions { delimiter: Some(Delimiter::Whitespace), header: Some(false), ..o };
        assert_eq!(load_table(&p, &o).unwrap().values, want);
        // semicolons
        let p = d.write("eu.csv", "a;b\n1;2\n3;4\n");
        assert_eq!(load_table(&p, &no_opts()).unwrap().values, want);
        // gzipped (detected by the magic bytes)
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut enc, b"a,b\n1,2\n3,4\n").unwrap();
        let p = d.write("f.csv.gz", enc.finish().unwrap());
        assert!(is_table_file(&p));
        assert_eq!(load_table(&p, &no_opts()).unwrap().values, want);
    }

    #[test]
    fn numeric_labels_unlabeled_values_and_auto_detection() {
        let d = TestDir::new("table-labels");
        // numpy.savetxt writes labels as e-notation floats
        let p = d.write("e.csv", "x,target\n1,1.0000000e+00\n2,0.0000000e+00\n3,-1.0000000e+00\n4,1.0\n5,10\n");
        let t = load_table(&p, &no_opts()).unwrap();
        assert_eq!(t.class_names, s(&["0", "1", "10"])); // numeric order, canonical names
        assert_eq!(t.labels, vec![Some(1), Some(0), None, Some(1), Some(2)]);
        // -1 and --unlabeled-value
        let p = d.write("u.csv", "x,y\n1,-1\n2,a\n3,?\n4,b\n5,\n");
        let o = TableOptions { unlabeled_value: Some("?".into()), ..no_opts() };
        let t = load_table(&p, &o).unwrap();
        assert_eq!((t.class_names.clone(), t.labels.clone()), (s(&["a", "b"]), vec![None, Some(0), None, Some(1), None]));
        // without it, '?' is a class
        assert_eq!(load_table(&p, &no_opts()).unwrap().class_names, s(&["?", "a", "b"]));
        // a numeric unlabeled value matches any spelling
        let p = d.write("n.csv", "x,y\n1,99.0\n2,3\n");
        let o = TableOptions { unlabeled_value: Some("99".into()), ..no_opts() };
        assert_eq!(load_table(&p, &o).unwrap().labels, vec![None, Some(0)]);
        // two candidate label columns: no labels, a note
        let p = d.write("two.csv", "x,Class,target\n1,2,3\n");
        let t = load_table(&p, &no_opts()).unwrap();
        assert_eq!((t.class_names.len(), t.feature_names.len()), (0, 3));
        assert!(t.notes.iter().any(|n| n.contains("Class, target")), "{:?}", t.notes);
        // case-insensitive, and a name listed in --columns is not taken as the label
        let p = d.write("case.csv", "x,Y\n1,2\n");
        assert_eq!(load_table(&p, &no_opts()).unwrap().class_names, s(&["2"]));
        let o = TableOptions { columns: Some(s(&["x", "Y"])), ..no_opts() };
        assert_eq!(load_table(&p, &o).unwrap().feature_names, s(&["x", "Y"]));
        // fractional numbers are names (byte order)
        let p = d.write("frac.csv", "x,y\n1,0.5\n2,10\n3,2\n");
        assert_eq!(load_table(&p, &no_opts()).unwrap().class_names, s(&["0.5", "10", "2"]));
    }

    #[test]
    fn fixed_classes_map_by_name_and_new_ones_error_or_append() {
        let d = TestDir::new("table-fixed");
        let p = d.write("t.csv", "x,label\n1,2.0\n2,0\n3,7\n4,\n");
        let fixed = TableOptions { class_names: Some(s(&["2", "0"])), ..no_opts() };
        assert_err(load_table(&p, &fixed), &["t.csv", "line 4: label '7' is not one of the 2 classes (2, 0)"]);
        let allow = TableOptions { allow_new_classes: true, ..fixed.clone() };
        let t = load_table(&p, &allow).unwrap();
        assert_eq!((t.class_names.clone(), t.labels.clone()), (s(&["2", "0", "7"]), vec![Some(0), Some(1), Some(2), None]));
        assert!(t.notes.iter().any(|n| n.contains("new classes: 7")), "{:?}", t.notes);
        let p = d.write("s.csv", "x,label\n1,walk\n2,run\n");
        let o = TableOptions { class_names: Some(s(&["walk", "sit", "run"])), ..no_opts() };
        assert_eq!(load_table(&p, &o).unwrap().labels, vec![Some(0), Some(2)]);
    }

    #[test]
    fn bad_cells_name_the_line_and_column() {
        let d = TestDir::new("table-cells");
        let load = |name: &str, text: &str| load_table(&d.write(name, text), &no_opts());
        assert_err(load("word.csv", "a,b\n1,2\n3,red\n"), &["word.csv", "line 3, column 'b'", "'red' is not a number", "--columns"]);
        assert_err(load("nan.csv", "a,b\n1,2\nnan,2\n"), &["nan.csv", "line 3, column 'a'", "NaN"]);
        assert_err(load("nan2.csv", "a,b\n1,NaN\n"), &["line 2, column 'b'", "NaN"]);
        assert_err(load("inf.csv", "a,b\n1,-inf\n"), &["line 2, column 'b'", "infinite"]);
        assert_err(load("big.csv", "a,b\n1,2\n1e39,2\n"), &["line 3, column 'a'", "beyond f32's range"]);
        assert!(load("max.csv", "a,b\n3.4e38,-3.4e38\n").is_ok());
        assert_err(load("hole.csv", "a,b\n1,\n"), &["line 2, column 'b'", "empty cell"]);
        assert_err(load("comma.csv", "a;b\n1,5;2\n"), &["line 2, column 'a'", "decimal comma"]);
        assert_err(load("ragged.csv", "a,b,c\n1,2,3\n4,5\n"), &["ragged.csv", "line 3 has 2 cells, expected 3"]);
        assert_err(load("ragged.txt", "1 2 3\n4 5 6\n\n7 8\n"), &["line 4 has 2 cells, expected 3 as the first row"]);
        assert_err(load("q.csv", "a,b\n1,\"2\n"), &["line 2", "not closed"]);
    }

    #[test]
    fn bad_tables_are_refused_with_the_reason() {
        let d = TestDir::new("table-tables");
        let p = d.write("t.csv", "a,b,label\n1,2,x\n");
        let with = |o: TableOptions| load_table(&p, &o);
        assert_err(
            with(TableOptions { label_column: Some("lab".into()), ..no_opts() }),
            &["t.csv", "--label-column: no column 'lab'; the columns are: a, b, label"],
        );
        assert_err(with(TableOptions { columns: Some(s(&["a", "zz"])), ..no_opts() }), &["--columns: no column 'zz'", "a, b, label"]);
        assert_err(with(TableOptions { columns: Some(s(&["#7"])), ..no_opts() }), &["column #7 does not exist", "3 columns"]);
        let lab = || TableOptions { label_column: Some("label".into()), ..no_opts() };
        assert_err(with(TableOptions { columns: Some(s(&["a", "label"])), ..lab() }), &["'label' is the label column"]);
        // a column listed in --columns is not taken as the label by its name
        assert_err(with(TableOptions { columns: Some(s(&["a", "label"])), ..no_opts() }), &["column 'label': 'x' is not a number"]);
        assert_err(with(TableOptions { columns: Some(s(&["a", "#0"])), ..no_opts() }), &["'a' is listed twice"]);
        let p1 = d.write("one.csv", "id,label\n1,2\n");
        assert_err(load_table(&p1, &no_opts()), &["one.csv", "no feature column"]);
        let p2 = d.write("head.csv", "a,b\n\n");
        assert_err(load_table(&p2, &no_opts()), &["head.csv", "no rows"]);
        let p3 = d.write("empty.csv", "\n \n");
        assert_err(load_table(&p3, &no_opts()), &["empty.csv", "empty file"]);
        let p4 = d.write("dup.csv", "a,b,a\n1,2,3\n");
        assert_err(load_table(&p4, &no_opts()), &["dup.csv", "duplicate column name 'a' (columns #0 and #2)"]);
        let p5 = d.write("nohead.csv", "1,2\n");
        let o = TableOptions { label_column: Some("y".into()), ..no_opts() };
        assert_err(load_table(&p5, &o), &["no column 'y'", "no header row", "f0..f1"]);
        let many: String = "x,y\n".to_string() + &(0..65536).map(|k| format!("1,c{k}\n")).collect::<String>();
        let p6 = d.write("many.csv", &many);
        assert_err(load_table(&p6, &no_opts()), &["too many classes: 65536", "at most 65535"]);
        let p7 = d.write("a.npz", "PK\x03\x04");
        assert!(is_table_file(&p7));
        assert_err(load_table(&p7, &no_opts()), &["a.npz", "not supported", "numpy.save"]);
        assert!(!is_table_file(Path::new("x.png")) && is_table_file(Path::new("X.TSV")) && is_table_file(Path::new("d.dat")));
    }

    /// An NPY file: `descr`, `shape`, order, the data bytes; `version` 1 or 2.
    fn npy(descr: &str, shape: &str, fortran: bool, data: &[u8], version: u8) -> Vec<u8> {
        let f = if fortran { "True" } else { "False" };
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': {f}, 'shape': {shape}, }}");
        let pre = if version == 1 { 10 } else { 12 };
        while (pre + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY".to_vec();
        out.extend([version, 0]);
        if version == 1 {
            out.extend((h.len() as u16).to_le_bytes());
        } else {
            out.extend((h.len() as u32).to_le_bytes());
        }
        out.extend(h.as_bytes());
        out.extend(data);
        out
    }

    fn bytes_of<T: Copy, const N: usize>(v: &[T], to: impl Fn(T) -> [u8; N]) -> Vec<u8> {
        v.iter().flat_map(|&x| to(x)).collect()
    }

    #[test]
    fn npy_features_in_each_dtype_and_order() {
        let d = TestDir::new("table-npy");
        let want: Vec<f32> = vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.0]; // 3 rows x 2
        let p = d.write("f4.npy", npy("<f4", "(3, 2)", false, &bytes_of(&want, f32::to_le_bytes), 1));
        let t = load_table(&p, &no_opts()).unwrap();
        assert_eq!((t.values.clone(), t.feature_names.clone()), (want.clone(), s(&["f0", "f1"])));
        assert_eq!((t.ids.clone(), t.labels.clone(), t.class_names.len()), (s(&["row 1", "row 2", "row 3"]), vec![None; 3], 0));
        // f8 big-endian, Fortran order (column after column), version 2 header
        let cols = [1.0f64, 3.0, 5.0, 2.0, 4.0, -6.0];
        let p = d.write("f8.npy", npy(">f8", "(3, 2)", true, &bytes_of(&cols, f64::to_be_bytes), 2));
        assert_eq!(load_table(&p, &no_opts()).unwrap().values, want);
        // i8, and the label in column #1
        let ints = [10i64, 0, 20, 1, 30, -1];
        let p = d.write("i8.npy", npy("<i8", "(3, 2)", false, &bytes_of(&ints, i64::to_le_bytes), 1));
        let o = TableOptions { label_column: Some("#1".into()), ..no_opts() };
        let t = load_table(&p, &o).unwrap();
        assert_eq!((t.values.clone(), t.feature_names.clone()), (vec![10.0, 20.0, 30.0], s(&["f0"])));
        assert_eq!((t.class_names.clone(), t.labels.clone()), (s(&["0", "1"]), vec![Some(0), Some(1), None]));
        // small ints and unsigned
        let p = d.write("i1.npy", npy("|i1", "(1, 3)", false, &[0xff, 0x7f, 0x80], 1));
        assert_eq!(load_table(&p, &no_opts()).unwrap().values, vec![-1.0, 127.0, -128.0]);
        let p = d.write("u2.npy", npy(">u2", "(1, 2)", false, &[0xff, 0xfe, 0, 1], 1));
        assert_eq!(load_table(&p, &no_opts()).unwrap().values, vec![65534.0, 1.0]);
    }

    #[test]
    fn npy_labels_files() {
        let d = TestDir::new("table-npylabels");
        let x = d.write("x.npy", npy("<f4", "(3, 1)", false, &bytes_of(&[1f32, 2.0, 3.0], f32::to_le_bytes), 1));
        let with = |labels: &Path| TableOptions { labels_path: Some(labels.to_path_buf()), ..no_opts() };
        let y = d.write("y.npy", npy("<i4", "(3,)", false, &bytes_of(&[2i32, -1, 0], i32::to_le_bytes), 1));
        let t = load_table(&x, &with(&y)).unwrap();
        assert_eq!((t.class_names.clone(), t.labels.clone()), (s(&["0", "2"]), vec![Some(1), None, Some(0)]));
        // unicode strings, empty = unlabeled
        let mut u = Vec::new();
        for w in ["dog", "", "cat"] {
            let mut cps: Vec<u32> = w.chars().map(|c| c as u32).collect();
            cps.resize(3, 0);
            u.extend(bytes_of(&cps, u32::to_le_bytes));
        }
        let y = d.write("yu.npy", npy("<U3", "(3,)", false, &u, 1));
        let t = load_table(&x, &with(&y)).unwrap();
        assert_eq!((t.class_names.clone(), t.labels.clone()), (s(&["cat", "dog"]), vec![Some(1), None, Some(0)]));
        // byte strings
        let y = d.write("ys.npy", npy("|S4", "(3,)", false, b"walk\0\0\0\0run\0", 1));
        let t = load_table(&x, &with(&y)).unwrap();
        assert_eq!((t.class_names.clone(), t.labels.clone()), (s(&["run", "walk"]), vec![Some(1), None, Some(0)]));
        // the labels file must match the rows; labels work for a CSV table too
        let y2 = d.write("y2.npy", npy("<i4", "(2,)", false, &bytes_of(&[1i32, 0], i32::to_le_bytes), 1));
        assert_err(load_table(&x, &with(&y2)), &["y2.npy (labels file)", "2 labels, but the table has 3 rows"]);
        let c = d.write("x.csv", "a\n1\n2\n");
        assert_eq!(load_table(&c, &with(&y2)).unwrap().labels, vec![Some(1), Some(0)]);
        let both = TableOptions { label_column: Some("#0".into()), ..with(&y) };
        assert_err(load_table(&x, &both), &["not both"]);
    }

    #[test]
    fn npy_errors_name_the_file_and_the_problem() {
        let d = TestDir::new("table-npyerr");
        let good = npy("<f4", "(2, 2)", false, &bytes_of(&[1f32, 2.0, 3.0, 4.0], f32::to_le_bytes), 1);
        let p = d.write("cut.npy", &good[..good.len() - 3]);
        assert_err(load_table(&p, &no_opts()), &["cut.npy", "truncated", "(2, 2)", "needs 16 bytes of data, the file has 13"]);
        let p = d.write("cut2.npy", &good[..40]);
        assert_err(load_table(&p, &no_opts()), &["cut2.npy", "truncated", "header"]);
        let p = d.write("obj.npy", npy("|O", "(2, 2)", false, &[0; 32], 1));
        assert_err(load_table(&p, &no_opts()), &["obj.npy", "object array"]);
        let p = d.write("c8.npy", npy("<c8", "(1, 1)", false, &[0; 8], 1));
        assert_err(load_table(&p, &no_opts()), &["c8.npy", "dtype '<c8' is not supported"]);
        let p = d.write("v.npy", npy("<f4", "(4,)", false, &[0; 16], 1));
        assert_err(load_table(&p, &no_opts()), &["v.npy", "2-D", "shape (4,)"]);
        let p = d.write("cube.npy", npy("<f4", "(1, 2, 2)", false, &[0; 16], 1));
        assert_err(load_table(&p, &no_opts()), &["2-D", "shape (1, 2, 2)", "reshape"]);
        let p = d.write("nan.npy", npy("<f4", "(2, 2)", false, &bytes_of(&[1f32, 2.0, 3.0, f32::NAN], f32::to_le_bytes), 1));
        assert_err(load_table(&p, &no_opts()), &["nan.npy", "row 2 (index 1), column f1", "NaN"]);
        let p = d.write("big.npy", npy("<f8", "(1, 1)", false, &1e300f64.to_le_bytes(), 1));
        assert_err(load_table(&p, &no_opts()), &["row 1 (index 0), column f0", "beyond f32's range"]);
        let p = d.write("tail.npy", [npy("<f4", "(1, 1)", false, &[0; 4], 1), vec![0; 4]].concat());
        assert_err(load_table(&p, &no_opts()), &["4 bytes after the data"]);
        let h = b"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }\n";
        let structured = [&b"\x93NUMPY\x01\x00"[..], &(h.len() as u16).to_le_bytes(), h, &[0u8; 4]].concat();
        let p = d.write("rec2.npy", structured);
        assert_err(load_table(&p, &no_opts()), &["structured array"]);
        let p = d.write("fake.npy", "a,b\n1,2\n");
        assert_err(load_table(&p, &no_opts()), &["fake.npy", "not an NPY file"]);
    }

    #[cfg(feature = "parquet")]
    #[test]
    fn parquet_numeric_columns_and_a_string_label_with_nulls() {
        use parquet::basic::Compression;
        use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, FloatType, Int32Type};
        use parquet::file::properties::WriterProperties;
        use parquet::file::writer::SerializedFileWriter;
        use parquet::schema::parser::parse_message_type;
        use std::sync::Arc;

        let d = TestDir::new("table-parquet");
        let write = |name: &str, a: &[f64], labels: &[Option<&str>], b_null_at: Option<usize>| {
            let p = d.join(name);
            let schema = Arc::new(
                parse_message_type("message t { required double a; optional float b; required int32 id; optional binary label (UTF8); }")
                    .unwrap(),
            );
            let props = Arc::new(WriterProperties::builder().set_compression(Compression::SNAPPY).build());
            let mut w = SerializedFileWriter::new(std::fs::File::create(&p).unwrap(), schema, props).unwrap();
            let mut rg = w.next_row_group().unwrap();
            let n = a.len();
            let mut k = 0;
            while let Some(mut col) = rg.next_column().unwrap() {
                match k {
                    0 => col.typed::<DoubleType>().write_batch(a, None, None).map(drop).unwrap(),
                    1 => {
                        let def: Vec<i16> = (0..n).map(|i| (Some(i) != b_null_at) as i16).collect();
                        let vals: Vec<f32> = (0..n).filter(|&i| Some(i) != b_null_at).map(|i| 10.0 * i as f32).collect();
                        col.typed::<FloatType>().write_batch(&vals, Some(&def), None).map(drop).unwrap()
                    }
                    2 => {
                        let ids: Vec<i32> = (0..n as i32).map(|i| 100 + i).collect();
                        col.typed::<Int32Type>().write_batch(&ids, None, None).map(drop).unwrap()
                    }
                    _ => {
                        let def: Vec<i16> = labels.iter().map(|l| l.is_some() as i16).collect();
                        let vals: Vec<ByteArray> = labels.iter().flatten().map(|l| ByteArray::from(*l)).collect();
                        col.typed::<ByteArrayType>().write_batch(&vals, Some(&def), None).map(drop).unwrap()
                    }
                }
                col.close().unwrap();
                k += 1;
            }
            rg.close().unwrap();
            w.close().unwrap();
            p
        };
        let p = write("t.parquet", &[1.5, 2.5, 3.5], &[Some("b"), None, Some("a")], None);
        assert!(is_table_file(&p));
        let t = load_table(&p, &no_opts()).unwrap();
        assert_eq!(t.feature_names, s(&["a", "b"]));
        assert_eq!(t.values, vec![1.5, 0.0, 2.5, 10.0, 3.5, 20.0]);
        assert_eq!((t.class_names.clone(), t.labels.clone()), (s(&["a", "b"]), vec![Some(1), None, Some(0)]));
        assert_eq!(t.ids, s(&["100", "101", "102"]));
        // a null feature names its row and column; an unknown column lists the columns
        let p = write("null.parquet", &[1.0, 2.0], &[None, None], Some(1));
        assert_err(load_table(&p, &no_opts()), &["null.parquet", "row 2, column 'b'", "null"]);
        let o = TableOptions { columns: Some(s(&["zz"])), ..no_opts() };
        assert_err(load_table(&p, &o), &["no column 'zz'", "a, b, id, label"]);
        let p = write("big.parquet", &[1.0, 1e300], &[None, None], None);
        assert_err(load_table(&p, &no_opts()), &["row 2, column 'a'", "beyond f32's range"]);
    }
}
