//! IDX files (the MNIST format) and the MNIST / Fashion-MNIST loaders.
//!
//! An IDX file is a big-endian u32 magic `0x0000_TTNN` (two zero bytes, the element type `TT`,
//! the number of dimensions `NN`), then `NN` big-endian u32 dimensions, then the elements, row
//! major. Only type `0x08` (unsigned byte) is read here: MNIST images are `0x00000803`
//! (n x rows x cols), labels `0x00000801` (n). A file is gzipped when it starts with the gzip
//! magic bytes `1f 8b`, whatever its name; otherwise it is read as raw IDX. Its length must match
//! the header exactly: missing bytes and trailing bytes are both errors.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Dataset, Split};
use crate::error::{Error, Result};

/// The two IDX datasets with the MNIST layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdxDataset {
    Mnist,
    FashionMnist,
}

const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
const FASHION_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// The four file names of the official releases (each may also be stored raw, without `.gz`).
pub const IDX_FILES: [&str; 4] = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

impl IdxDataset {
    pub const ALL: [IdxDataset; 2] = [IdxDataset::Mnist, IdxDataset::FashionMnist];

    /// "mnist" or "fashion-mnist" (also the conventional sub-directory name).
    pub fn name(self) -> &'static str {
        match self {
            IdxDataset::Mnist => "mnist",
            IdxDataset::FashionMnist => "fashion-mnist",
        }
    }

    /// The inverse of [`IdxDataset::name`] (also accepts "fashion_mnist" and "fashion").
    pub fn from_name(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "mnist" => Some(IdxDataset::Mnist),
            "fashion-mnist" | "fashion_mnist" | "fashionmnist" | "fashion" => Some(IdxDataset::FashionMnist),
            _ => None,
        }
    }

    /// Class names, indexed by label.
    pub fn class_names(self) -> &'static [&'static str] {
        match self {
            IdxDataset::Mnist => &MNIST_CLASSES,
            IdxDataset::FashionMnist => &FASHION_CLASSES,
        }
    }

    /// Where users download the files.
    pub fn download_hint(self) -> &'static str {
        match self {
            IdxDataset::Mnist => "http://yann.lecun.com/exdb/mnist/ or a mirror (e.g. https://ossci-datasets.s3.amazonaws.com/mnist/)",
            IdxDataset::FashionMnist => "https://github.com/zalandoresearch/fashion-mnist (folder data/fashion)",
        }
    }
}

pub(super) fn io_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Io { path: path.to_path_buf(), msg: msg.into() }
}

/// The file's bytes, gunzipped when they start with the gzip magic.
pub(super) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| io_err(path, format!("cannot read: {e}")))?;
    gunzip_if_gz(path, raw)
}

/// `raw`, gunzipped when it starts with the gzip magic (`path` names it in errors).
fn gunzip_if_gz(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>> {
    if raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
        // The gzip trailer holds the uncompressed size mod 2^32: a capacity hint, bounded so a
        // forged trailer cannot reserve gigabytes (IDX pixels compress by ~5x, not 1000x).
        let hint = if raw.len() >= 4 { u32::from_le_bytes(raw[raw.len() - 4..].try_into().unwrap()) as usize } else { 0 };
        let mut out = Vec::with_capacity(hint.min(raw.len().saturating_mul(64)));
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| io_err(path, format!("gzip data is corrupt or truncated: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// [`read_idx`] for bytes already in memory (raw or gzipped; `path` names them in errors).
pub fn read_idx_bytes(path: &Path, raw: Vec<u8>) -> Result<(Vec<usize>, Vec<u8>)> {
    parse_idx(path, gunzip_if_gz(path, raw)?)
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn type_name(t: u8) -> &'static str {
    match t {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "i16",
        0x0C => "i32",
        0x0D => "f32",
        0x0E => "f64",
        _ => "unknown",
    }
}

/// Parses IDX bytes (already gunzipped). `path` only names the file in errors.
fn parse_idx(path: &Path, bytes: Vec<u8>) -> Result<(Vec<usize>, Vec<u8>)> {
    if bytes.len() < 4 {
        return Err(io_err(path, format!("truncated: {} bytes, too short for an IDX magic number (4 bytes)", bytes.len())));
    }
    let magic = be_u32(&bytes, 0);
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(io_err(
            path,
            format!("bad magic 0x{magic:08x}: not an IDX file (expected 0x000008NN: two zero bytes, type 0x08, NN dimensions)"),
        ));
    }
    let ty = bytes[2];
    if ty != 0x08 {
        return Err(io_err(
            path,
            format!("bad magic 0x{magic:08x}: element type 0x{ty:02x} ({}) is not supported, only 0x08 (unsigned byte)", type_name(ty)),
        ));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 {
        return Err(io_err(path, format!("bad magic 0x{magic:08x}: zero dimensions")));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(io_err(path, format!("truncated: header needs {header} bytes for {ndim} dimensions, file has {}", bytes.len())));
    }
    let dims: Vec<usize> = (0..ndim).map(|d| be_u32(&bytes, 4 + 4 * d) as usize).collect();
    let shape = dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" x ");
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| io_err(path, format!("bad dimensions {shape}: the element count overflows")))?;
    let have = bytes.len() - header;
    if have < count {
        return Err(io_err(path, format!("truncated: header says {shape} = {count} bytes, file has {have}")));
    }
    if have > count {
        return Err(io_err(path, format!("{} trailing bytes: header says {shape} = {count} bytes, file has {have}", have - count)));
    }
    let mut data = bytes;
    data.drain(..header);
    Ok((dims, data))
}

/// Reads an IDX file of unsigned bytes, gzipped (detected by the magic bytes `1f 8b`) or raw.
/// Returns the dimensions and the data (row major). Validates the magic number, the element
/// type (0x08) and that the data length is exactly the product of the dimensions.
pub fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    parse_idx(path, read_maybe_gz(path)?)
}

/// [`read_idx`] that also demands `ndim` dimensions (3 = images, 1 = labels).
fn read_idx_expect(path: &Path, ndim: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let bytes = read_maybe_gz(path)?;
    let expected = 0x0000_0800u32 | ndim as u32;
    let what = if ndim == 3 { "IDX images" } else { "IDX labels" };
    if bytes.len() >= 4 {
        let magic = be_u32(&bytes, 0);
        if magic != expected {
            return Err(io_err(path, format!("bad magic 0x{magic:08x}, expected 0x{expected:08x} ({what})")));
        }
    }
    parse_idx(path, bytes)
}

/// Finds `stem` in `dir` as raw or gzipped; also accepts the `train-images.idx3-ubyte` spelling
/// some mirrors use.
fn find_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    let dotted = stem.replacen("-idx", ".idx", 1);
    [stem.to_string(), format!("{stem}.gz"), dotted.clone(), format!("{dotted}.gz")].into_iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

fn missing_files_error(dir: &Path, which: IdxDataset, missing: &[&str]) -> Error {
    let state = if !dir.exists() {
        "the directory does not exist".to_string()
    } else if !dir.is_dir() {
        "this is not a directory".to_string()
    } else {
        format!("missing {}", missing.iter().map(|m| format!("{m}(.gz)")).collect::<Vec<_>>().join(", "))
    };
    Error::Io {
        path: dir.to_path_buf(),
        msg: format!(
            "{} data not found: {state}. Expected the four files {} (gzipped as released, or raw), \
             downloaded from {}; point --data-dir or SSVAE_DATA at their parent directory",
            which.name(),
            IDX_FILES.map(|f| format!("{f}.gz")).join(", "),
            which.download_hint()
        ),
    }
}

/// One split: images and labels, checked against each other.
fn load_pair(img: &Path, lab: &Path, which: IdxDataset) -> Result<Dataset> {
    let (imgres, labres) = rayon::join(|| read_idx_expect(img, 3), || read_idx_expect(lab, 1));
    let ((idims, pixels), (ldims, labels)) = (imgres?, labres?);
    let classes = which.class_names().len();
    if idims[1] == 0 || idims[2] == 0 {
        return Err(io_err(img, format!("bad dimensions {} x {} x {}: empty images", idims[0], idims[1], idims[2])));
    }
    if idims[0] == 0 {
        return Err(io_err(img, "holds no images (its count is 0); the file is truncated or not the dataset's".to_string()));
    }
    if idims[0] != ldims[0] {
        return Err(io_err(
            lab,
            format!(
                "has {} labels but {} has {} images; the image and label files must belong together",
                ldims[0],
                img.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
                idims[0]
            ),
        ));
    }
    if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l as usize >= classes) {
        return Err(io_err(
            lab,
            format!("label {l} at index {i} is out of range: {} has {classes} classes (0..{})", which.name(), classes - 1),
        ));
    }
    Ok(Dataset {
        name: which.name().to_string(),
        n: idims[0],
        height: idims[1],
        width: idims[2],
        channels: 1,
        classes,
        class_names: which.class_names().iter().map(|s| s.to_string()).collect(),
        unlabeled: Vec::new(),
        ids: Vec::new(),
        pixels,
        labels,
    })
}

/// Loads MNIST or Fashion-MNIST from `dir`, which holds the four official files
/// (`train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz`,
/// `t10k-labels-idx1-ubyte.gz`), each gzipped or raw. Checks that image and label counts agree,
/// that labels are below 10 and that train and test images have the same size.
pub fn load_idx_dataset(dir: &Path, which: IdxDataset) -> Result<Split> {
    let found: Vec<Option<PathBuf>> = IDX_FILES.iter().map(|f| find_file(dir, f)).collect();
    let missing: Vec<&str> = IDX_FILES.iter().zip(&found).filter(|(_, p)| p.is_none()).map(|(f, _)| *f).collect();
    if !missing.is_empty() {
        return Err(missing_files_error(dir, which, &missing));
    }
    let p: Vec<PathBuf> = found.into_iter().map(Option::unwrap).collect();
    let (train, test) = rayon::join(|| load_pair(&p[0], &p[1], which), || load_pair(&p[2], &p[3], which));
    let (train, test) = (train?, test?);
    if (train.height, train.width) != (test.height, test.width) {
        return Err(io_err(
            &p[2],
            format!(
                "test images are {} x {} but training images ({}) are {} x {}",
                test.height,
                test.width,
                p[0].display(),
                train.height,
                train.width
            ),
        ));
    }
    Ok(Split { train, test })
}
