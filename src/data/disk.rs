//! Training data that stays on disk: an NPY array of little-endian f32 (`[n, steps, channels]`
//! windows, or `[n, features]` table rows) read row by row with positioned reads, so host
//! memory stays bounded whatever the file's size. Labels come from a small 1-D NPY of
//! integers (int64 or int32; -1 = unlabeled) held in memory.
//!
//! Standardisation: [`DiskSeries::fit_standardizer`] computes the per-channel mean and
//! standard deviation in chunked sequential passes, summing in the same order as
//! [`Standardizer::fit`] over the whole set in memory, so both give the same statistics; the
//! rows are then standardised as they are gathered ([`DiskSeries::set_scaling`]).
//!
//! The [`RowSource`] trait (rows gathered by index on the host, for streamed training in
//! `crate::train::stream`) lives here, below `train`, with its in-memory implementations
//! ([`Dataset`], [`SeriesDataset`]) and the disk one.
//!
//! Only C-order `<f4` features are read (anything else is an error saying how to convert):
//! streaming reads rows at their byte offsets, and converting other dtypes on every read
//! would cost more than converting the file once.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{Dataset, SeriesDataset, Standardizer};
use crate::error::{Error, Result};

fn bad(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{}: {msg}", path.display()))
}

/// The kind of values a row source holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    /// Bytes (images): fed to `gather_u8`.
    U8,
    /// f32 (series windows, tables), already standardised when the source hands them out.
    F32,
}

/// A gathered shard on the host, before packing.
#[derive(Clone, Debug, PartialEq)]
pub enum ShardRows {
    U8(Vec<u8>),
    F32(Vec<f32>),
}

/// Rows of a training set the host can gather by index (in memory or on disk).
pub trait RowSource: Send + Sync {
    /// Number of rows (training samples).
    fn n(&self) -> usize;
    /// Values per row.
    fn dim(&self) -> usize;
    fn kind(&self) -> RowKind;
    /// Writes rows `rows` (in order, repeats allowed) into `out`, replacing its contents with
    /// `rows.len() * dim()` values of this source's kind.
    fn gather(&self, rows: &[u32], out: &mut ShardRows) -> Result<()>;
}

fn check_rows(rows: &[u32], n: usize) -> Result<()> {
    match rows.iter().find(|&&r| r as usize >= n) {
        Some(r) => Err(Error::Invalid(format!("row {r} is out of range for a source of {n} rows"))),
        None => Ok(()),
    }
}

impl RowSource for Dataset {
    fn n(&self) -> usize {
        self.n
    }
    fn dim(&self) -> usize {
        Dataset::dim(self)
    }
    fn kind(&self) -> RowKind {
        RowKind::U8
    }
    fn gather(&self, rows: &[u32], out: &mut ShardRows) -> Result<()> {
        check_rows(rows, self.n)?;
        let mut v = match std::mem::replace(out, ShardRows::U8(Vec::new())) {
            ShardRows::U8(v) => v,
            ShardRows::F32(_) => Vec::new(),
        };
        v.clear();
        v.reserve(rows.len() * Dataset::dim(self));
        for &r in rows {
            v.extend_from_slice(self.sample(r as usize));
        }
        *out = ShardRows::U8(v);
        Ok(())
    }
}

impl RowSource for SeriesDataset {
    fn n(&self) -> usize {
        self.n
    }
    fn dim(&self) -> usize {
        SeriesDataset::dim(self)
    }
    fn kind(&self) -> RowKind {
        RowKind::F32
    }
    fn gather(&self, rows: &[u32], out: &mut ShardRows) -> Result<()> {
        check_rows(rows, self.n)?;
        let mut v = match std::mem::replace(out, ShardRows::F32(Vec::new())) {
            ShardRows::F32(v) => v,
            ShardRows::U8(_) => Vec::new(),
        };
        v.clear();
        v.reserve(rows.len() * SeriesDataset::dim(self));
        for &r in rows {
            v.extend_from_slice(self.window(r as usize));
        }
        *out = ShardRows::F32(v);
        Ok(())
    }
}

/// An NPY header: dtype, order, shape and where the data starts.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyHeader {
    pub descr: String,
    pub fortran: bool,
    pub shape: Vec<usize>,
    pub data_offset: u64,
}

/// The value of `key` in the header dict (`'key': value`), up to the next top-level comma.
fn dict_value<'a>(dict: &'a str, key: &str) -> Option<&'a str> {
    let at = dict.find(&format!("'{key}'")).or_else(|| dict.find(&format!("\"{key}\"")))?;
    let rest = dict[at + key.len() + 2..].trim_start().strip_prefix(':')?.trim_start();
    if rest.starts_with('(') {
        return rest.find(')').map(|e| &rest[..=e]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

/// Reads the header of the NPY file at `path`.
pub fn read_npy_header(path: &Path) -> Result<NpyHeader> {
    let mut f = File::open(path).map_err(|e| bad(path, e))?;
    let mut pre = [0u8; 12];
    f.read_exact(&mut pre[..10]).map_err(|_| bad(path, "not an NPY file (shorter than an NPY header)"))?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(bad(path, "not an NPY file (no \\x93NUMPY magic)"));
    }
    let (len, start) = match pre[6] {
        1 => (u16::from_le_bytes([pre[8], pre[9]]) as usize, 10),
        2 | 3 => {
            f.read_exact(&mut pre[10..12]).map_err(|_| bad(path, "truncated NPY header"))?;
            (u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]) as usize, 12)
        }
        v => return Err(bad(path, format!("NPY format version {v} is not supported"))),
    };
    let mut dict = vec![0u8; len];
    f.read_exact(&mut dict).map_err(|_| bad(path, "truncated NPY header"))?;
    let dict = String::from_utf8_lossy(&dict);
    let descr = dict_value(&dict, "descr").ok_or_else(|| bad(path, "NPY header without 'descr'"))?.trim_matches(['\'', '"']).to_string();
    let fortran = dict_value(&dict, "fortran_order").is_some_and(|v| v == "True");
    let shape_text = dict_value(&dict, "shape").ok_or_else(|| bad(path, "NPY header without 'shape'"))?;
    let shape = shape_text
        .trim_matches(['(', ')'])
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| bad(path, format!("NPY shape {shape_text} is not a tuple of sizes")))?;
    Ok(NpyHeader { descr, fortran, shape, data_offset: (start + len) as u64 })
}

/// Labels from a 1-D integer NPY (`<i8`, `<i4`): -1 is unlabeled, others are classes 0..=255.
pub fn read_npy_labels(path: &Path, n: usize) -> Result<Vec<Option<u8>>> {
    let h = read_npy_header(path)?;
    let width = match h.descr.as_str() {
        "<i8" => 8,
        "<i4" => 4,
        d => return Err(bad(path, format!("labels must be int64 or int32 (dtype '<i8' or '<i4'), this array has dtype '{d}'"))),
    };
    if h.shape.len() != 1 || h.shape[0] != n {
        return Err(bad(
            path,
            format!("labels must be a 1-D array of {n} entries (one per row of the data), this one has shape {:?}", h.shape),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| bad(path, e))?;
    let data = &bytes[h.data_offset as usize..];
    if data.len() < n * width {
        return Err(bad(path, format!("truncated: {n} labels need {} bytes of data, the file has {}", n * width, data.len())));
    }
    (0..n)
        .map(|i| {
            let b = &data[i * width..(i + 1) * width];
            let v = if width == 8 { i64::from_le_bytes(b.try_into().unwrap()) } else { i32::from_le_bytes(b.try_into().unwrap()) as i64 };
            match v {
                -1 => Ok(None),
                0..=255 => Ok(Some(v as u8)),
                _ => Err(bad(path, format!("label {v} of row {i} is neither -1 (unlabeled) nor a class 0..255"))),
            }
        })
        .collect()
}

/// An NPY of f32 rows on disk, with labels in memory: a [`RowSource`] for streamed training.
pub struct DiskSeries {
    pub path: PathBuf,
    file: File,
    data_offset: u64,
    /// Rows used (the file may hold more: `--max-train` uses the first `n`).
    pub n: usize,
    pub steps: usize,
    pub channels: usize,
    pub labels: Vec<Option<u8>>,
    scaling: Option<Standardizer>,
}

impl DiskSeries {
    /// Opens `path` (`[n, steps, channels]` or `[n, features]` = steps 1) with labels from
    /// `labels` (all unlabeled when `None`), checking dtype, order, shape and size.
    pub fn open(path: &Path, labels: Option<&Path>) -> Result<Self> {
        let h = read_npy_header(path)?;
        if h.descr != "<f4" {
            return Err(bad(
                path,
                format!("streamed data must be float32 little-endian (dtype '<f4'), this array has dtype '{}'; convert it with numpy: np.save(path, x.astype('<f4'))", h.descr),
            ));
        }
        if h.fortran {
            return Err(bad(path, "the array is in Fortran order; save it in C order (np.ascontiguousarray)"));
        }
        let (n, steps, channels) = match h.shape[..] {
            [n, s, c] => (n, s, c),
            [n, f] => (n, 1, f),
            _ => {
                return Err(bad(
                    path,
                    format!("expected a 3-D array [windows, steps, channels] or a 2-D table [rows, features], got shape {:?}", h.shape),
                ))
            }
        };
        if n == 0 || steps * channels == 0 {
            return Err(bad(path, format!("no data: shape {:?}", h.shape)));
        }
        let file = File::open(path).map_err(|e| bad(path, e))?;
        let len = file.metadata().map_err(|e| bad(path, e))?.len();
        let need = h.data_offset + (n * steps * channels * 4) as u64;
        if len < need {
            return Err(bad(path, format!("truncated: shape {:?} needs {need} bytes, the file has {len}", h.shape)));
        }
        let labels = match labels {
            Some(l) => read_npy_labels(l, n)?,
            None => vec![None; n],
        };
        Ok(DiskSeries { path: path.to_path_buf(), file, data_offset: h.data_offset, n, steps, channels, labels, scaling: None })
    }

    /// Keeps the first `m` rows.
    pub fn truncate(&mut self, m: usize) {
        self.n = m.min(self.n);
        self.labels.truncate(self.n);
    }

    /// Values per row.
    pub fn row_len(&self) -> usize {
        self.steps * self.channels
    }

    /// Reads rows `first..first + count` (raw values) into `out`.
    pub fn read_rows(&self, first: usize, count: usize, out: &mut Vec<f32>) -> Result<()> {
        let d = self.row_len();
        let mut bytes = vec![0u8; count * d * 4];
        self.file
            .read_exact_at(&mut bytes, self.data_offset + (first * d * 4) as u64)
            .map_err(|e| bad(&self.path, format!("reading rows {first}..{}: {e}", first + count)))?;
        out.clear();
        out.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
        Ok(())
    }

    /// Mean and standard deviation per channel over all rows, in chunked sequential passes (the
    /// same sums in the same order as [`Standardizer::fit`] in memory).
    pub fn fit_standardizer(&self) -> Result<Standardizer> {
        let c = self.channels;
        let chunk = (1 << 20) / self.row_len().max(1) + 1;
        let count = (self.n * self.steps) as f64;
        let mut buf = Vec::new();
        let mut sum = vec![0f64; c];
        for first in (0..self.n).step_by(chunk) {
            self.read_rows(first, chunk.min(self.n - first), &mut buf)?;
            self.check_finite(&buf, first)?;
            for step in buf.chunks_exact(c) {
                for (s, &v) in sum.iter_mut().zip(step) {
                    *s += v as f64;
                }
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
        let mut sq = vec![0f64; c];
        for first in (0..self.n).step_by(chunk) {
            self.read_rows(first, chunk.min(self.n - first), &mut buf)?;
            for step in buf.chunks_exact(c) {
                for ((q, &v), m) in sq.iter_mut().zip(step).zip(&mean) {
                    let d = v as f64 - m;
                    *q += d * d;
                }
            }
        }
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(&q, m)| {
                let sd = (q / count).sqrt();
                if sd <= Standardizer::CONSTANT_RELATIVE * m.abs().max(1.0) {
                    0.0
                } else {
                    sd as f32
                }
            })
            .collect();
        Ok(Standardizer { mean: mean.iter().map(|&m| m as f32).collect(), std })
    }

    fn check_finite(&self, values: &[f32], first: usize) -> Result<()> {
        match values.iter().position(|v| !v.is_finite()) {
            Some(k) => Err(bad(&self.path, format!("row {} holds a non-finite value ({})", first + k / self.row_len(), values[k]))),
            None => Ok(()),
        }
    }

    /// Rows are standardised with `s` as they are gathered.
    pub fn set_scaling(&mut self, s: Standardizer) -> Result<()> {
        if s.mean.len() != self.channels {
            return Err(bad(&self.path, format!("the standardizer has {} channels, the data {}", s.mean.len(), self.channels)));
        }
        self.scaling = Some(s);
        Ok(())
    }

    /// Every row in memory, raw (for a small split such as the test set).
    pub fn read_all(&self, name: &str, class_names: Vec<String>) -> Result<SeriesDataset> {
        let mut values = Vec::new();
        self.read_rows(0, self.n, &mut values)?;
        let channel_names = (0..self.channels).map(|c| if self.steps == 1 { format!("f{c}") } else { format!("ch{c}") }).collect();
        SeriesDataset::new(name, values, self.labels.clone(), self.steps, class_names, channel_names).map_err(|e| bad(&self.path, e))
    }

    /// The dataset's shape and labels without its values (what the trainer checks shapes and
    /// draws batches from when the rows are streamed from disk).
    pub fn hollow(&self, name: &str, class_names: Vec<String>) -> SeriesDataset {
        SeriesDataset {
            name: name.into(),
            values: Vec::new(),
            labels: self.labels.clone(),
            n: self.n,
            steps: self.steps,
            channels: self.channels,
            classes: class_names.len(),
            channel_names: (0..self.channels).map(|c| if self.steps == 1 { format!("f{c}") } else { format!("ch{c}") }).collect(),
            class_names,
            ids: Vec::new(),
        }
    }
}

impl RowSource for DiskSeries {
    fn n(&self) -> usize {
        self.n
    }
    fn dim(&self) -> usize {
        self.row_len()
    }
    fn kind(&self) -> RowKind {
        RowKind::F32
    }
    fn gather(&self, rows: &[u32], out: &mut ShardRows) -> Result<()> {
        let d = self.row_len();
        let mut v = match std::mem::replace(out, ShardRows::F32(Vec::new())) {
            ShardRows::F32(v) => v,
            ShardRows::U8(_) => Vec::new(),
        };
        v.clear();
        v.resize(rows.len() * d, 0.0);
        let mut bytes = vec![0u8; d * 4];
        for (k, &r) in rows.iter().enumerate() {
            if r as usize >= self.n {
                return Err(bad(&self.path, format!("row {r} is out of range ({} rows)", self.n)));
            }
            self.file
                .read_exact_at(&mut bytes, self.data_offset + (r as usize * d * 4) as u64)
                .map_err(|e| bad(&self.path, format!("reading row {r}: {e}")))?;
            for (o, b) in v[k * d..(k + 1) * d].iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            self.check_finite(&v[k * d..(k + 1) * d], r as usize)?;
        }
        if let Some(s) = &self.scaling {
            s.apply_values(&mut v);
        }
        *out = ShardRows::F32(v);
        Ok(())
    }
}

/// Writes `[n, rest...]` arrays to an NPY file in chunks: the header first (the shape is known
/// up front), then rows appended.
pub struct NpyWriter {
    path: PathBuf,
    file: std::io::BufWriter<File>,
}

impl NpyWriter {
    /// Creates `path` holding an array of `descr` ('<f4', '<i8') and `shape`.
    pub fn create(path: &Path, descr: &str, shape: &[usize]) -> Result<Self> {
        use std::io::Write;
        let shape_text = match shape {
            [n] => format!("({n},)"),
            s => format!("({})", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
        };
        let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
        // magic (6) + version (2) + length (2) + dict + '\n' is a multiple of 64
        while (10 + dict.len() + 1) % 64 != 0 {
            dict.push(' ');
        }
        dict.push('\n');
        let f = File::create(path).map_err(|e| bad(path, e))?;
        let mut file = std::io::BufWriter::with_capacity(1 << 20, f);
        let mut head = b"\x93NUMPY\x01\x00".to_vec();
        head.extend((dict.len() as u16).to_le_bytes());
        head.extend(dict.as_bytes());
        file.write_all(&head).map_err(|e| bad(path, e))?;
        Ok(NpyWriter { path: path.to_path_buf(), file })
    }

    pub fn write_f32(&mut self, values: &[f32]) -> Result<()> {
        use std::io::Write;
        for v in values {
            self.file.write_all(&v.to_le_bytes()).map_err(|e| bad(&self.path, e))?;
        }
        Ok(())
    }

    pub fn write_i64(&mut self, values: &[i64]) -> Result<()> {
        use std::io::Write;
        for v in values {
            self.file.write_all(&v.to_le_bytes()).map_err(|e| bad(&self.path, e))?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        use std::io::Write;
        self.file.flush().map_err(|e| bad(&self.path, e))
    }
}
