//! Users' own folders of images (`ssvae train --data DIR`), in the layouts people already have:
//! torchvision `ImageFolder` / Hugging Face `imagefolder` (one sub-folder per class, nested
//! folders allowed inside a class) and anomalib `Folder` (an `unlabeled/` folder, or a folder of
//! photos with no classes at all), or a `labels.csv` (`file,label`, an empty label = unlabeled)
//! that then defines the dataset exactly.
//!
//! Class names sort like torchvision (byte order), except that all-integer names sort
//! numerically, so folders `2` and `10` do not swap labels against what users mean. Samples are
//! ordered by class, then by relative path, unlabeled last: the same folder always gives the same
//! dataset, whatever the file system's listing order.
//!
//! Files are read in two parallel passes: headers first (sizes, channel counts, EXIF
//! orientation), so that a folder of mixed sizes or channel counts is refused in a moment instead
//! of after decoding every photo; then the pixels, decoded straight into the output buffer. Phone
//! photos are turned upright by their EXIF orientation, as every viewer shows them. Alpha is
//! dropped (not composited), 16-bit and float samples are scaled to 8 bits, and everything that
//! was converted is counted in [`ImageSet::notes`] for the log.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ExtendedColorType, ImageBuffer, ImageDecoder, ImageFormat, ImageReader, Pixel};
use rayon::prelude::*;

use crate::error::{Error, Result};

/// The extensions [`is_image_file`] accepts (compared case-insensitively).
const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "bmp", "tif", "tiff"];
/// The file that, when present in the root, lists the dataset.
const LABELS_CSV: &str = "labels.csv";

/// How to read an image folder.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImageFolderOptions {
    /// Resize every image to (height, width) (exact, Triangle filter). None: all images must share one size.
    pub size: Option<(usize, usize)>,
    /// Convert every image to 1 (grayscale) or 3 (RGB) channels. None: keep the files' channel count, which must agree.
    pub channels: Option<usize>,
    /// Sub-folder whose images carry no label (default when None: "unlabeled").
    pub unlabeled_dir: Option<String>,
    /// Fix the classes (e.g. reading a test folder with the training folder's classes, in that order).
    pub class_names: Option<Vec<String>>,
    /// With class_names given: a class folder/label not among them is appended as a new class (anomaly test sets) instead of an error.
    pub allow_new_classes: bool,
}

/// Images read from a folder: `n` samples of height x width x channels bytes, channels last (HWC), sample after sample.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageSet {
    pub pixels: Vec<u8>,
    /// Class index per image (into class_names), None = unlabeled.
    pub labels: Vec<Option<usize>>,
    /// Each image's path relative to the root, '/'-separated (the id predictions are keyed by).
    pub ids: Vec<String>,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub class_names: Vec<String>,
    /// Human-readable notes for the log (e.g. "alpha channel dropped in 3 files").
    pub notes: Vec<String>,
}

/// One image to read: its id (relative path) and class index.
struct Entry {
    id: String,
    label: Option<usize>,
}

/// What a file's header says, orientation applied.
struct Probe {
    height: usize,
    width: usize,
    /// 1 (Luma, LumaA) or 3 (Rgb, Rgba).
    channels: usize,
    alpha: bool,
    /// 16-bit or float samples.
    deep: bool,
}

/// Whether `path` looks like an image file by extension (png, jpg, jpeg, bmp, tif, tiff; case-insensitive).
pub fn is_image_file(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

pub fn load_image_folder(root: &Path, opts: &ImageFolderOptions) -> Result<ImageSet> {
    check_options(opts.size, opts.channels)?;
    if !root.exists() {
        return Err(Error::Invalid(format!("image folder {} does not exist", root.display())));
    }
    if !root.is_dir() {
        return Err(Error::Invalid(format!(
            "{} is not a folder (expected a folder of images: one sub-folder per class, or labels.csv)",
            root.display()
        )));
    }
    let mut notes = Vec::new();
    let csv = root.join(LABELS_CSV);
    let listed = if csv.is_file() {
        read_labels_csv(root, &csv)?
    } else {
        scan_folders(root, opts.unlabeled_dir.as_deref().unwrap_or("unlabeled"), &mut notes)?
    };
    let source = if csv.is_file() { format!("label in {}", csv.display()) } else { format!("class folder in {}", root.display()) };
    let (class_names, mut entries) = assign_classes(listed, opts, &source)?;
    entries.sort_by(|a, b| (a.label.is_none(), a.label, &a.id).cmp(&(b.label.is_none(), b.label, &b.id)));

    let paths: Vec<PathBuf> = entries.iter().map(|e| root.join(&e.id)).collect();
    let probes: Vec<Probe> = paths.par_iter().map(|p| probe(p)).collect::<Vec<_>>().into_iter().collect::<Result<_>>()?;
    let channels = match opts.channels {
        Some(c) => c,
        None => agreed_channels(&entries, &probes)?,
    };
    let (height, width) = match opts.size {
        Some(s) => s,
        None => agreed_size(&entries, &probes)?,
    };
    count_note(&mut notes, probes.iter().filter(|p| p.alpha).count(), "alpha channel dropped in");
    count_note(&mut notes, probes.iter().filter(|p| p.deep).count(), "16-bit or float samples scaled to 8 bits in");
    let to = if channels == 1 { "grayscale" } else { "RGB" };
    count_note(&mut notes, probes.iter().filter(|p| p.channels != channels).count(), &format!("converted to {to}:"));
    let resized = probes.iter().filter(|p| (p.height, p.width) != (height, width)).count();
    count_note(&mut notes, resized, &format!("resized to {height}x{width}:"));

    let dim = height * width * channels;
    let total = dim
        .checked_mul(paths.len())
        .ok_or_else(|| Error::Invalid(format!("{} images of {height}x{width}x{channels} do not fit in memory", paths.len())))?;
    let mut pixels = vec![0u8; total];
    pixels
        .par_chunks_mut(dim)
        .zip(paths.par_iter())
        .map(|(out, path)| decode_into(path, height, width, channels, out))
        .collect::<Vec<_>>()
        .into_iter()
        .collect::<Result<()>>()?;
    Ok(ImageSet {
        pixels,
        labels: entries.iter().map(|e| e.label).collect(),
        ids: entries.into_iter().map(|e| e.id).collect(),
        height,
        width,
        channels,
        class_names,
        notes,
    })
}

/// One image file decoded as the loader does (for predicting on single files / lists): returns (pixels HWC, height, width, channels) after applying size/channels.
pub fn read_image_file(path: &Path, size: Option<(usize, usize)>, channels: Option<usize>) -> Result<(Vec<u8>, usize, usize, usize)> {
    check_options(size, channels)?;
    let img = decode(path)?;
    let c = channels.unwrap_or(native_channels(img.color()));
    let (h, w) = size.unwrap_or((img.height() as usize, img.width() as usize));
    Ok((convert(img, h, w, c), h, w, c))
}

/// Writes a PNG (1 or 3 channels) — used by tests and by the synthetic-data generator that builds example folders.
/// Missing parent folders are created.
pub fn write_png(path: &Path, pixels: &[u8], height: usize, width: usize, channels: usize) -> Result<()> {
    let color = match channels {
        1 => ExtendedColorType::L8,
        3 => ExtendedColorType::Rgb8,
        c => return Err(Error::Invalid(format!("write_png: {c} channels, expected 1 or 3"))),
    };
    let (h, w) = match (u32::try_from(height), u32::try_from(width)) {
        (Ok(h), Ok(w)) if h > 0 && w > 0 => (h, w),
        _ => return Err(Error::Invalid(format!("write_png: bad image size {height}x{width}"))),
    };
    if pixels.len() != height * width * channels {
        return Err(Error::Invalid(format!("write_png: {} bytes given for {height}x{width}x{channels}", pixels.len())));
    }
    let io = |msg: String| Error::Io { path: path.to_path_buf(), msg };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| io(format!("cannot create the folder: {e}")))?;
    }
    image::save_buffer_with_format(path, pixels, w, h, color, ImageFormat::Png).map_err(|e| io(format!("cannot write PNG: {e}")))
}

fn check_options(size: Option<(usize, usize)>, channels: Option<usize>) -> Result<()> {
    if let Some(c) = channels.filter(|&c| c != 1 && c != 3) {
        return Err(Error::Invalid(format!("channels must be 1 (grayscale) or 3 (RGB), not {c}")));
    }
    if let Some((h, w)) = size {
        if h == 0 || w == 0 || u32::try_from(h).is_err() || u32::try_from(w).is_err() {
            return Err(Error::Invalid(format!("image size {h}x{w}: height and width must be at least 1")));
        }
    }
    Ok(())
}

fn count_note(notes: &mut Vec<String>, n: usize, what: &str) {
    if n > 0 {
        notes.push(format!("{what} {n} file{}", if n == 1 { "" } else { "s" }));
    }
}

/// Sorts class names like torchvision (byte order), or numerically when every name is an integer.
fn sort_class_names(names: &mut [String]) {
    if names.iter().all(|n| n.parse::<i64>().is_ok()) {
        names.sort_by(|a, b| (a.parse::<i64>().unwrap(), a).cmp(&(b.parse::<i64>().unwrap(), b)));
    } else {
        names.sort();
    }
}

/// Numbers the labels: `opts.class_names` first (in their order), then new names sorted.
fn assign_classes(listed: Vec<(String, Option<String>)>, opts: &ImageFolderOptions, source: &str) -> Result<(Vec<String>, Vec<Entry>)> {
    let found: BTreeSet<&str> = listed.iter().filter_map(|(_, l)| l.as_deref()).collect();
    let mut class_names = opts.class_names.clone().unwrap_or_default();
    let mut seen = HashSet::new();
    if let Some(dup) = class_names.iter().find(|n| !seen.insert(n.as_str())) {
        return Err(Error::Invalid(format!("class '{dup}' is given twice in the class names")));
    }
    let mut new: Vec<String> = found.iter().filter(|n| !seen.contains(**n)).map(|n| n.to_string()).collect();
    if opts.class_names.is_some() && !new.is_empty() && !opts.allow_new_classes {
        return Err(Error::Invalid(format!(
            "{source} not among the {} known classes ({}): '{}'; rename it to one of those classes",
            class_names.len(),
            class_names.join(", "),
            new.join("', '")
        )));
    }
    sort_class_names(&mut new);
    class_names.extend(new);
    let index: HashMap<&str, usize> = class_names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let entries = listed.iter().map(|(id, l)| Entry { id: id.clone(), label: l.as_deref().map(|l| index[l]) }).collect();
    Ok((class_names, entries))
}

/// The folder layout: `(relative path, class folder)` per image; root images and `unlabeled_dir` are unlabeled.
fn scan_folders(root: &Path, unlabeled_dir: &str, notes: &mut Vec<String>) -> Result<Vec<(String, Option<String>)>> {
    let mut listed = Vec::new();
    let (mut skipped, mut root_images, mut class_dirs) = (Vec::new(), Vec::new(), Vec::new());
    let mut visited = HashSet::new();
    for (name, path, is_dir) in list_dir(root)? {
        if !is_dir {
            if is_image_file(&path) {
                root_images.push(name)
            } else {
                skipped.push(name)
            }
        } else if name == unlabeled_dir {
            let mut found = Vec::new();
            collect_images(&path, &name, &mut found, &mut skipped, &mut visited)?;
            listed.extend(found.into_iter().map(|id| (id, None)));
        } else {
            let mut found = Vec::new();
            collect_images(&path, &name, &mut found, &mut skipped, &mut visited)?;
            if found.is_empty() {
                return Err(Error::Invalid(format!(
                    "class folder {} holds no image files ({}); add images or remove the folder",
                    path.display(),
                    IMAGE_EXTENSIONS.join(", ")
                )));
            }
            listed.extend(found.into_iter().map(|id| (id, Some(name.clone()))));
            class_dirs.push(name);
        }
    }
    if !root_images.is_empty() && !class_dirs.is_empty() {
        return Err(Error::Invalid(format!(
            "{} image file(s) lie directly in {} (e.g. {}) next to class folders ({}): move them into {unlabeled_dir}/ if they carry \
             no label or into their class folder, or list every file with its label in {LABELS_CSV} (columns file,label)",
            root_images.len(),
            root.display(),
            root_images[0],
            class_dirs.join(", ")
        )));
    }
    listed.extend(root_images.into_iter().map(|id| (id, None)));
    if !skipped.is_empty() {
        skipped.sort();
        let shown = skipped.iter().take(3).map(String::as_str).collect::<Vec<_>>().join(", ");
        let more = if skipped.len() > 3 { ", ..." } else { "" };
        notes.push(format!("skipped {} non-image file{} ({shown}{more})", skipped.len(), if skipped.len() == 1 { "" } else { "s" }));
    }
    if listed.is_empty() {
        return Err(Error::Invalid(format!(
            "no image files ({}) in {}: expected one sub-folder of images per class, an {unlabeled_dir}/ folder, images directly \
             in the folder (all unlabeled), or {LABELS_CSV} (columns file,label)",
            IMAGE_EXTENSIONS.join(", "),
            root.display()
        )));
    }
    Ok(listed)
}

/// The visible entries of `dir` as `(name, path, is_dir)`, hidden ones (and macOS `__MACOSX`) left out.
fn list_dir(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>> {
    let cannot = |e: std::io::Error| Error::Invalid(format!("cannot read folder {}: {e}", dir.display()));
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(cannot)? {
        let path = entry.map_err(cannot)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            return Err(Error::Invalid(format!("{}: the name is not valid UTF-8; rename it", path.display())));
        };
        if name.starts_with('.') || name == "__MACOSX" {
            continue;
        }
        // metadata() follows symbolic links, like torchvision's os.walk(followlinks=True).
        let is_dir = std::fs::metadata(&path).map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?.is_dir();
        out.push((name, path, is_dir));
    }
    Ok(out)
}

/// Appends the image files under `dir` (recursively) to `found` as `prefix/...` ids.
fn collect_images(
    dir: &Path,
    prefix: &str,
    found: &mut Vec<String>,
    skipped: &mut Vec<String>,
    visited: &mut HashSet<PathBuf>,
) -> Result<()> {
    // A symbolic link back to an ancestor would otherwise recurse forever.
    if !visited.insert(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())) {
        return Ok(());
    }
    for (name, path, is_dir) in list_dir(dir)? {
        let id = format!("{prefix}/{name}");
        if is_dir {
            collect_images(&path, &id, found, skipped, visited)?;
        } else if is_image_file(&path) {
            found.push(id);
        } else {
            skipped.push(id);
        }
    }
    Ok(())
}

/// Splits one CSV line into trimmed cells (`"..."` quoting with `""` for a quote).
fn split_csv_line(line: &str) -> std::result::Result<Vec<String>, String> {
    let (mut cells, mut cell, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            '"' if quoted => quoted = false,
            '"' if cell.trim().is_empty() => {
                quoted = true;
                cell.clear();
            }
            ',' if !quoted => cells.push(std::mem::take(&mut cell).trim().to_string()),
            c => cell.push(c),
        }
    }
    if quoted {
        return Err("a quoted cell is not closed".into());
    }
    cells.push(cell.trim().to_string());
    Ok(cells)
}

/// The `labels.csv` layout: exactly the listed files, `(relative path, label)`.
fn read_labels_csv(root: &Path, csv: &Path) -> Result<Vec<(String, Option<String>)>> {
    let text = std::fs::read_to_string(csv).map_err(|e| Error::Invalid(format!("cannot read {} as UTF-8 text: {e}", csv.display())))?;
    let at = |line: usize, msg: String| Error::Invalid(format!("{} line {line}: {msg}", csv.display()));
    let mut listed = Vec::new();
    let mut first_line = HashMap::new();
    let mut header_checked = false;
    for (i, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let cells = split_csv_line(line).map_err(|m| at(i + 1, m))?;
        if !std::mem::replace(&mut header_checked, true) && is_header(&cells) {
            continue;
        }
        if cells.len() != 2 {
            return Err(at(i + 1, format!("expected 2 columns (file,label), found {}: '{line}'", cells.len())));
        }
        let file = cells[0].replace('\\', "/");
        let file = file.trim_start_matches("./");
        if file.is_empty() {
            return Err(at(i + 1, "the file cell is empty".into()));
        }
        if file.starts_with('/') || Path::new(file).is_absolute() || file.split('/').any(|part| part == "..") {
            return Err(at(i + 1, format!("'{file}' must be a path inside {} (relative, without '..')", root.display())));
        }
        if let Some(first) = first_line.insert(file.to_string(), i + 1) {
            return Err(at(i + 1, format!("file '{file}' is listed again (first on line {first})")));
        }
        if !root.join(file).is_file() {
            return Err(at(i + 1, format!("file '{file}' does not exist (paths are relative to {})", root.display())));
        }
        let label = Some(cells[1].clone()).filter(|l| !l.is_empty());
        listed.push((file.to_string(), label));
    }
    if listed.is_empty() {
        return Err(Error::Invalid(format!("{} lists no files (expected lines file,label)", csv.display())));
    }
    Ok(listed)
}

fn is_header(cells: &[String]) -> bool {
    let lower: Vec<String> = cells.iter().map(|c| c.to_ascii_lowercase()).collect();
    lower.len() == 2
        && ["file", "file_name", "filename", "path", "image"].contains(&lower[0].as_str())
        && ["label", "class", "target"].contains(&lower[1].as_str())
}

fn native_channels(color: image::ColorType) -> usize {
    if color.channel_count() <= 2 {
        1
    } else {
        3
    }
}

fn undecodable(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("cannot decode image {}: {e} (replace or remove the file)", path.display()))
}

fn open_decoder(path: &Path) -> Result<(impl ImageDecoder, Orientation)> {
    let reader = ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?;
    let mut decoder = reader.into_decoder().map_err(|e| undecodable(path, e))?;
    let orientation = decoder.orientation().map_err(|e| undecodable(path, e))?;
    Ok((decoder, orientation))
}

fn probe(path: &Path) -> Result<Probe> {
    let (decoder, orientation) = open_decoder(path)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(undecodable(path, format!("the image is {w}x{h} pixels")));
    }
    let turned =
        matches!(orientation, Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH);
    let (height, width) = if turned { (w as usize, h as usize) } else { (h as usize, w as usize) };
    let color = decoder.color_type();
    let deep = color.bytes_per_pixel() != color.channel_count();
    Ok(Probe { height, width, channels: native_channels(color), alpha: color.has_alpha(), deep })
}

fn decode(path: &Path) -> Result<DynamicImage> {
    let (decoder, orientation) = open_decoder(path)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| undecodable(path, e))?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// `img` as `channels` 8-bit channels, resized to exactly `height x width` (when it differs).
fn convert(img: DynamicImage, height: usize, width: usize, channels: usize) -> Vec<u8> {
    fn resized<P: Pixel<Subpixel = u8> + 'static>(buf: ImageBuffer<P, Vec<u8>>, height: usize, width: usize) -> Vec<u8> {
        let (w, h) = (width as u32, height as u32);
        if buf.dimensions() == (w, h) {
            buf.into_raw()
        } else {
            image::imageops::resize(&buf, w, h, FilterType::Triangle).into_raw()
        }
    }
    if channels == 1 {
        resized(img.into_luma8(), height, width)
    } else {
        resized(img.into_rgb8(), height, width)
    }
}

fn decode_into(path: &Path, height: usize, width: usize, channels: usize, out: &mut [u8]) -> Result<()> {
    out.copy_from_slice(&convert(decode(path)?, height, width, channels));
    Ok(())
}

fn agreed_channels(entries: &[Entry], probes: &[Probe]) -> Result<usize> {
    let first = probes[0].channels;
    match probes.iter().position(|p| p.channels != first) {
        None => Ok(first),
        Some(j) => {
            let name = |c| if c == 1 { "grayscale" } else { "RGB" };
            let gray = probes.iter().filter(|p| p.channels == 1).count();
            Err(Error::Invalid(format!(
                "the images have different channel counts ({gray} grayscale, {} RGB): {} is {}, {} is {}; pass --image-channels 1 or \
                 --image-channels 3 to convert them all",
                probes.len() - gray,
                entries[0].id,
                name(first),
                entries[j].id,
                name(probes[j].channels)
            )))
        }
    }
}

fn agreed_size(entries: &[Entry], probes: &[Probe]) -> Result<(usize, usize)> {
    let first = (probes[0].height, probes[0].width);
    match probes.iter().position(|p| (p.height, p.width) != first) {
        None => Ok(first),
        Some(j) => {
            let sizes: BTreeSet<(usize, usize)> = probes.iter().map(|p| (p.height, p.width)).collect();
            Err(Error::Invalid(format!(
                "the images have {} different sizes (height x width): {} is {}x{}, {} is {}x{}; pass --image-size HxW (e.g. \
                 --image-size 64x64) to resize them all",
                sizes.len(),
                entries[0].id,
                first.0,
                first.1,
                entries[j].id,
                probes[j].height,
                probes[j].width
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    /// Distinct, seeded bytes for an h x w x c image.
    fn pattern(h: usize, w: usize, c: usize, seed: u8) -> Vec<u8> {
        (0..h * w * c).map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed.wrapping_mul(101))).collect()
    }

    /// Writes `rel` under `root` as a PNG with `pattern(h, w, c, seed)`, returns the pixels.
    fn put(root: &Path, rel: &str, h: usize, w: usize, c: usize, seed: u8) -> Vec<u8> {
        let px = pattern(h, w, c, seed);
        write_png(&root.join(rel), &px, h, w, c).unwrap();
        px
    }

    fn load(root: &Path) -> Result<ImageSet> {
        load_image_folder(root, &ImageFolderOptions::default())
    }

    fn err(r: Result<ImageSet>) -> String {
        r.expect_err("expected an error").to_string()
    }

    #[test]
    fn class_folders_nested_and_unlabeled_in_order() {
        let t = TestDir::new("image-folder-classes");
        let d = put(&t, "dog/c.png", 4, 5, 1, 3);
        let a = put(&t, "cat/z.png", 4, 5, 1, 1);
        let b = put(&t, "cat/sub/a.png", 4, 5, 1, 2);
        let u = put(&t, "unlabeled/u.png", 4, 5, 1, 4);
        put(&t, ".hidden/x.png", 4, 5, 1, 5);
        put(&t, "cat/.x.png", 9, 9, 1, 5);
        std::fs::write(t.join("cat/readme.txt"), "notes").unwrap();
        let set = load(&t).unwrap();
        assert_eq!(set.class_names, ["cat", "dog"]);
        assert_eq!(set.ids, ["cat/sub/a.png", "cat/z.png", "dog/c.png", "unlabeled/u.png"]);
        assert_eq!(set.labels, [Some(0), Some(0), Some(1), None]);
        assert_eq!((set.height, set.width, set.channels), (4, 5, 1));
        assert_eq!(set.pixels, [b, a, d, u].concat());
        assert_eq!(set.notes, ["skipped 1 non-image file (cat/readme.txt)"]);
    }

    #[test]
    fn integer_class_names_sort_numerically_others_by_bytes() {
        let t = TestDir::new("image-folder-numeric");
        for (i, class) in ["10", "2", "1"].iter().enumerate() {
            put(&t, &format!("{class}/a.png"), 2, 2, 1, i as u8);
        }
        assert_eq!(load(&t).unwrap().class_names, ["1", "2", "10"]);
        put(&t, "Zebra/a.png", 2, 2, 1, 9);
        assert_eq!(load(&t).unwrap().class_names, ["1", "10", "2", "Zebra"]);
    }

    #[test]
    fn labels_csv_defines_the_set_and_an_empty_cell_is_unlabeled() {
        let t = TestDir::new("image-folder-csv");
        let a = put(&t, "a.png", 3, 3, 1, 1);
        let b = put(&t, "x/b.png", 3, 3, 1, 2);
        let c = put(&t, "c.png", 3, 3, 1, 3);
        put(&t, "not_listed.png", 7, 7, 1, 4);
        std::fs::write(t.join("labels.csv"), "file,label\nc.png,ok\n\nx/b.png,\n\"a.png\",bad\n").unwrap();
        let set = load(&t).unwrap();
        assert_eq!(set.class_names, ["bad", "ok"]);
        assert_eq!(set.ids, ["a.png", "c.png", "x/b.png"]);
        assert_eq!(set.labels, [Some(0), Some(1), None]);
        assert_eq!(set.pixels, [a, c, b].concat());
    }

    #[test]
    fn labels_csv_missing_duplicate_and_malformed_lines_name_the_line() {
        let t = TestDir::new("image-folder-csv-bad");
        put(&t, "a.png", 3, 3, 1, 1);
        let csv = t.join("labels.csv");
        std::fs::write(&csv, "file,label\na.png,ok\nmissing.png,ok\n").unwrap();
        let e = err(load(&t));
        assert!(e.contains("labels.csv line 3") && e.contains("'missing.png' does not exist"), "{e}");
        std::fs::write(&csv, "a.png,ok\na.png,no\n").unwrap();
        let e = err(load(&t));
        assert!(e.contains("line 2") && e.contains("listed again (first on line 1)"), "{e}");
        std::fs::write(&csv, "a.png,ok,extra\n").unwrap();
        assert!(err(load(&t)).contains("line 1: expected 2 columns"));
        std::fs::write(&csv, "../a.png,ok\n").unwrap();
        assert!(err(load(&t)).contains("line 1"));
    }

    #[test]
    fn undecodable_file_is_named() {
        let t = TestDir::new("image-folder-broken");
        put(&t, "cat/good.png", 3, 3, 1, 1);
        std::fs::write(t.join("cat/broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
        let e = err(load(&t));
        assert!(e.contains("cannot decode image") && e.contains("broken.png"), "{e}");
    }

    #[test]
    fn mixed_sizes_are_refused_unless_resized() {
        let t = TestDir::new("image-folder-sizes");
        put(&t, "a/one.png", 8, 6, 1, 1);
        put(&t, "b/two.png", 5, 7, 1, 2);
        let e = err(load(&t));
        assert!(e.contains("a/one.png is 8x6") && e.contains("b/two.png is 5x7") && e.contains("--image-size"), "{e}");
        let opts = ImageFolderOptions { size: Some((4, 3)), ..Default::default() };
        let set = load_image_folder(&t, &opts).unwrap();
        assert_eq!((set.height, set.width, set.channels, set.pixels.len()), (4, 3, 1, 2 * 4 * 3));
        assert!(set.notes.contains(&"resized to 4x3: 2 files".to_string()), "{:?}", set.notes);
    }

    #[test]
    fn resize_keeps_a_constant_image_constant() {
        let t = TestDir::new("image-folder-resize");
        write_png(&t.join("flat.png"), &[200, 10, 60].repeat(9 * 7), 9, 7, 3).unwrap();
        let (px, h, w, c) = read_image_file(&t.join("flat.png"), Some((4, 5)), None).unwrap();
        assert_eq!((h, w, c), (4, 5, 3));
        assert_eq!(px, [200, 10, 60].repeat(20));
    }

    #[test]
    fn rgb_pixels_round_trip_exactly() {
        let t = TestDir::new("image-folder-rgb");
        let a = put(&t, "x/a.png", 6, 4, 3, 7);
        let set = load(&t).unwrap();
        assert_eq!((set.height, set.width, set.channels), (6, 4, 3));
        assert_eq!(set.pixels, a);
        assert_eq!(read_image_file(&t.join("x/a.png"), None, None).unwrap(), (a, 6, 4, 3));
    }

    #[test]
    fn mixed_channels_are_refused_unless_converted() {
        let t = TestDir::new("image-folder-channels");
        put(&t, "a/gray.png", 3, 3, 1, 1);
        put(&t, "b/color.png", 3, 3, 3, 2);
        let e = err(load(&t));
        assert!(e.contains("a/gray.png is grayscale") && e.contains("b/color.png is RGB") && e.contains("--image-channels 1"), "{e}");
        let set = load_image_folder(&t, &ImageFolderOptions { channels: Some(1), ..Default::default() }).unwrap();
        assert_eq!((set.channels, set.pixels.len()), (1, 2 * 9));
        assert_eq!(set.notes, ["converted to grayscale: 1 file"]);
        let set = load_image_folder(&t, &ImageFolderOptions { channels: Some(3), ..Default::default() }).unwrap();
        assert_eq!(&set.pixels[..3], &[set.pixels[0]; 3], "gray becomes three equal channels");
    }

    #[test]
    fn empty_class_folder_missing_root_no_images_and_bad_options_are_errors() {
        let t = TestDir::new("image-folder-empty");
        put(&t, "cat/a.png", 3, 3, 1, 1);
        std::fs::create_dir_all(t.join("dog/deeper")).unwrap();
        std::fs::write(t.join("dog/deeper/notes.txt"), "x").unwrap();
        let e = err(load(&t));
        assert!(e.contains("class folder") && e.contains("dog") && e.contains("no image files"), "{e}");
        assert!(err(load(&t.join("nope"))).contains("does not exist"));
        assert!(err(load(&t.join("cat/a.png"))).contains("is not a folder"));
        let empty = TestDir::new("image-folder-empty-root");
        std::fs::write(empty.join("readme.md"), "x").unwrap();
        assert!(err(load(&empty)).contains("no image files"));
        let bad = |opts: ImageFolderOptions| err(load_image_folder(&t, &opts));
        assert!(bad(ImageFolderOptions { channels: Some(2), ..Default::default() }).contains("1 (grayscale) or 3 (RGB)"));
        assert!(bad(ImageFolderOptions { size: Some((0, 4)), ..Default::default() }).contains("at least 1"));
    }

    #[test]
    fn root_images_are_unlabeled_only_without_class_folders() {
        let t = TestDir::new("image-folder-root");
        put(&t, "b.png", 2, 2, 1, 1);
        put(&t, "a.png", 2, 2, 1, 2);
        put(&t, "unlabeled/c.png", 2, 2, 1, 3);
        let set = load(&t).unwrap();
        assert_eq!(set.ids, ["a.png", "b.png", "unlabeled/c.png"]);
        assert_eq!(set.labels, [None, None, None]);
        assert!(set.class_names.is_empty());
        put(&t, "cat/d.png", 2, 2, 1, 4);
        let e = err(load(&t));
        assert!(e.contains("unlabeled/") && e.contains("labels.csv") && e.contains("cat"), "{e}");
    }

    #[test]
    fn fixed_class_names_keep_their_order_and_new_classes_need_permission() {
        let t = TestDir::new("image-folder-fixed");
        put(&t, "cat/a.png", 2, 2, 1, 1);
        put(&t, "dog/a.png", 2, 2, 1, 2);
        let mut opts = ImageFolderOptions { class_names: Some(vec!["dog".into(), "cat".into(), "cow".into()]), ..Default::default() };
        let set = load_image_folder(&t, &opts).unwrap();
        assert_eq!(set.class_names, ["dog", "cat", "cow"]);
        assert_eq!((set.ids, set.labels), (vec!["dog/a.png".to_string(), "cat/a.png".into()], vec![Some(0), Some(1)]));
        put(&t, "bird/a.png", 2, 2, 1, 3);
        put(&t, "ant/a.png", 2, 2, 1, 4);
        let e = err(load_image_folder(&t, &opts));
        assert!(e.contains("class folder in") && e.contains("not among the 3 known classes (dog, cat, cow): 'ant', 'bird'"), "{e}");
        opts.allow_new_classes = true;
        let set = load_image_folder(&t, &opts).unwrap();
        assert_eq!(set.class_names, ["dog", "cat", "cow", "ant", "bird"]);
        assert_eq!(set.labels, [Some(0), Some(1), Some(3), Some(4)]);
    }

    #[test]
    fn jpeg_bmp_tiff_alpha_and_16_bit_decode() {
        let t = TestDir::new("image-folder-formats");
        let rgb = image::RgbImage::from_fn(8, 6, |_, _| image::Rgb([180, 90, 30]));
        for name in ["a.jpg", "b.BMP", "c.tiff"] {
            rgb.save(t.join(name)).unwrap();
        }
        let (jpg, h, w, c) = read_image_file(&t.join("a.jpg"), None, None).unwrap();
        assert_eq!((h, w, c), (6, 8, 3));
        assert!(jpg.chunks(3).all(|p| p.iter().zip([180, 90, 30]).all(|(&a, b)| a.abs_diff(b) <= 3)), "{:?}", &jpg[..3]);
        for exact in ["b.BMP", "c.tiff"] {
            assert_eq!(read_image_file(&t.join(exact), None, None).unwrap().0, [180, 90, 30].repeat(48), "{exact}");
        }
        image::RgbaImage::from_fn(8, 6, |_, _| image::Rgba([1, 2, 3, 0])).save(t.join("d.png")).unwrap();
        image::ImageBuffer::<image::Luma<u16>, _>::from_fn(8, 6, |_, _| image::Luma([65535u16])).save(t.join("e.png")).unwrap();
        let set = load_image_folder(&t, &ImageFolderOptions { channels: Some(3), ..Default::default() }).unwrap();
        assert_eq!(set.ids, ["a.jpg", "b.BMP", "c.tiff", "d.png", "e.png"]);
        assert_eq!(&set.pixels[3 * 144..3 * 144 + 3], &[1, 2, 3]);
        assert_eq!(&set.pixels[4 * 144..4 * 144 + 3], &[255, 255, 255]);
        assert!(set.notes.contains(&"alpha channel dropped in 1 file".to_string()), "{:?}", set.notes);
        assert!(set.notes.contains(&"16-bit or float samples scaled to 8 bits in 1 file".to_string()), "{:?}", set.notes);
    }

    #[test]
    fn image_extensions_are_case_insensitive() {
        for yes in ["a.png", "b.JPG", "c.jpeg", "d.Bmp", "e.tif", "x/f.TIFF"] {
            assert!(is_image_file(Path::new(yes)), "{yes}");
        }
        for no in ["a.txt", "png", "b.png.bak", "c.gif", ".png"] {
            assert!(!is_image_file(Path::new(no)), "{no}");
        }
    }
}
