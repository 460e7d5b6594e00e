//! Time-series data: the SeriesDataset type and its Standardizer, the UCI-HAR loader (the real
//! files from SSVAE_DATA or ../shared/data, and small fake folders for every malformed case),
//! the CSV loader in both layouts with each of its errors, and the synthetic vibration dataset.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{notice, require_gpu};
use ssvae::data::*;

// ---------------------------------------------------------------------------------------------
// Helpers

/// This test's own folder (removed when the test passes), made and empty.
fn tmpdir(name: &str) -> common::TempDir {
    common::TempDir::new("test-series", name)
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// The error's message, which must contain every one of `needles` (file names included).
fn assert_err<T: std::fmt::Debug>(r: ssvae::Result<T>, needles: &[&str]) -> String {
    let msg = r.expect_err("expected an error").to_string();
    for n in needles {
        assert!(msg.contains(n), "error does not mention {n:?}: {msg}");
    }
    msg
}

/// `%16.7e` as C prints it (three-digit exponent), the format of the UCI-HAR files.
fn c_exp(v: f32) -> String {
    let s = format!("{v:.7e}");
    let (m, e) = s.split_once('e').unwrap();
    let e: i32 = e.parse().unwrap();
    format!("{:>16}", format!("{m}e{}{:03}", if e < 0 { '-' } else { '+' }, e.abs()))
}

/// The value of the fake HAR signal `ch` (0..9) at window `w`, step `t`.
fn fake_value(split: usize, ch: usize, w: usize, t: usize) -> f32 {
    ((split * 7 + ch * 3 + w) as f32 * 0.37 + t as f32 * 0.11).sin() * (1.0 + ch as f32)
}

/// A fake UCI-HAR folder: `n[0]` train and `n[1]` test windows of 128 steps for all nine signals,
/// CRLF line ends; signal files gzipped (`.txt.gz`) when `gzipped`, else plain.
fn write_fake_har(root: &Path, n: [usize; 2], gzipped: bool) {
    write(&root.join("activity_labels.txt"), b"1 WALKING\n2 WALKING_UPSTAIRS\n3 WALKING_DOWNSTAIRS\n4 SITTING\n5 STANDING\n6 LAYING\n");
    for (s, split) in ["train", "test"].iter().enumerate() {
        let labels: String = (0..n[s]).map(|w| format!("{}\n", w % 6 + 1)).collect();
        write(&root.join(split).join(format!("y_{split}.txt")), labels.as_bytes());
        for (ch, name) in HAR_CHANNELS.iter().enumerate() {
            let mut text = String::new();
            for w in 0..n[s] {
                for t in 0..HAR_STEPS {
                    text += &c_exp(fake_value(s, ch, w, t));
                }
                text += "\r\n";
            }
            let file = root.join(split).join("Inertial Signals").join(format!("{name}_{split}.txt"));
            if gzipped {
                write(&PathBuf::from(format!("{}.gz", file.display())), &gz(text.as_bytes()));
            } else {
                write(&file, text.as_bytes());
            }
        }
    }
}

fn signal_path(root: &Path, split: &str, name: &str) -> PathBuf {
    root.join(split).join("Inertial Signals").join(format!("{name}_{split}.txt"))
}

/// Replaces line `line` (1-based) of a plain text file with `with` (or removes it when `None`).
fn edit_line(path: &Path, line: usize, with: Option<&str>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    match with {
        Some(w) => lines[line - 1] = w,
        None => {
            lines.remove(line - 1);
        }
    }
    std::fs::write(path, lines.concat()).unwrap();
}

/// The real UCI-HAR folder, or `None` after a printed skip (a failure under CI=true).
fn har_root() -> Option<PathBuf> {
    let root = match std::env::var_os("SSVAE_DATA") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data")),
    };
    let dir = root.join("uci-har");
    if dir.join("train").is_dir() {
        return Some(dir);
    }
    if require_gpu() {
        panic!("UCI-HAR is required under CI=true but {} does not hold it", dir.display());
    }
    notice(&format!("SKIPPED: UCI-HAR not found at {}; set SSVAE_DATA", dir.display()));
    None
}

fn read_text_maybe_gz(path: &Path) -> String {
    let raw = std::fs::read(path).unwrap();
    let mut out = String::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        flate2::read::GzDecoder::new(&raw[..]).read_to_string(&mut out).unwrap();
    } else {
        out = String::from_utf8(raw).unwrap();
    }
    out
}

fn existing(p: PathBuf) -> PathBuf {
    if p.is_file() {
        p
    } else {
        PathBuf::from(format!("{}.gz", p.display()))
    }
}

// ---------------------------------------------------------------------------------------------
// SeriesDataset and Standardizer

fn tiny() -> SeriesDataset {
    // 3 windows x 2 steps x 2 channels; value = 100 w + 10 t + c
    let values: Vec<f32> = (0..3).flat_map(|w| (0..2).flat_map(move |t| (0..2).map(move |c| (100 * w + 10 * t + c) as f32))).collect();
    SeriesDataset::new("tiny", values, vec![Some(1), None, Some(0)], 2, vec!["a".into(), "b".into()], vec!["x".into(), "y".into()]).unwrap()
}

#[test]
fn series_dataset_accessors() {
    let d = tiny();
    assert_eq!((d.n, d.steps, d.channels, d.dim()), (3, 2, 2, 4));
    assert_eq!(d.window(1), &[100.0, 101.0, 110.0, 111.0]);
    let s = d.subset(&[2, 0, 2]);
    assert_eq!(s.labels, vec![Some(0), Some(1), Some(0)]);
    assert_eq!(s.window(1), d.window(0));
    let mut out = vec![9.0; 3];
    d.gather_f32(&[1, 2], &mut out);
    assert_eq!(out, [d.window(1), d.window(2)].concat());
    assert_eq!(d.class_counts(), vec![1, 1]);
    assert_eq!((d.labeled_count(), d.labeled_indices()), (2, vec![0, 2]));
}

#[test]
fn series_dataset_new_rejects_inconsistent_parts() {
    let names = || vec!["a".to_string()];
    assert_err(SeriesDataset::new("d", vec![0.0; 5], vec![None; 2], 2, names(), names()), &["5 values", "2 windows"]);
    assert_err(SeriesDataset::new("d", vec![0.0; 4], vec![Some(1), None], 2, names(), names()), &["label 1", "1 classes"]);
    assert_err(SeriesDataset::new("d", vec![0.0, f32::NAN], vec![None], 2, names(), names()), &["not finite", "step 1"]);
}

#[test]
fn standardizer_fits_on_train_only_and_round_trips() {
    let train = tiny();
    let mut split = SeriesSplit { train: train.clone(), test: train.subset(&[0]) };
    let s = split.standardize().unwrap();
    // channel 0 takes 0, 10, 100, 110, 200, 210: mean 105
    assert!((s.mean[0] - 105.0).abs() < 1e-4 && (s.mean[1] - 106.0).abs() < 1e-4, "{:?}", s.mean);
    for c in 0..2 {
        let v: Vec<f64> = split.train.values.iter().skip(c).step_by(2).map(|&v| v as f64).collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt();
        assert!(m.abs() < 1e-6 && (sd - 1.0).abs() < 1e-5, "channel {c}: mean {m} std {sd}");
    }
    // the test set is transformed with the training statistics
    assert_eq!(split.test.window(0), split.train.window(0));
    let back = Standardizer::from_vec(&s.to_vec()).unwrap();
    assert_eq!(back, s);
    let mut w = split.train.window(2).to_vec();
    s.invert_values(&mut w);
    assert_eq!(w, train.window(2));
    // a constant channel is marked (std 0) and maps to 0 everywhere, also where new data
    // deviates from the constant (no division by a tiny floor: scores of 1e11 and more)
    let flat = SeriesDataset::new("c", vec![3.0; 4], vec![None, None], 2, vec![], vec!["k".into()]).unwrap();
    let s = Standardizer::fit(&flat).unwrap();
    assert_eq!((s.std.clone(), s.constant_channels()), (vec![0.0], vec![0]));
    let mut new = vec![3.0, 3.5, -100.0];
    s.apply_values(&mut new);
    assert_eq!(new, vec![0.0, 0.0, 0.0]);
    assert_eq!(Standardizer::from_vec(&s.to_vec()).unwrap(), s);
    assert_err(Standardizer::from_vec(&[1.0, -1.0]), &["standard deviation -1"]);
    assert_err(Standardizer::from_vec(&[1.0]), &["even"]);
    let mut other = SeriesDataset::new("three", vec![0.0; 3], vec![None], 1, vec![], vec!["a".into(), "b".into(), "c".into()]).unwrap();
    assert_err(Standardizer::fit(&tiny()).unwrap().apply(&mut other), &["2 channels", "'three' has 3"]);
}

// ---------------------------------------------------------------------------------------------
// UCI-HAR, real data

#[test]
fn har_real_data_shapes_counts_values_and_standardization() {
    let Some(root) = har_root() else { return };
    let t0 = Instant::now();
    let mut split = load_har(&root, &HAR_DEFAULT_CHANNELS).unwrap();
    notice(&format!("UCI-HAR (6 channels, train + test) loaded in {:.2} s", t0.elapsed().as_secs_f64()));
    let (tr, te) = (&split.train, &split.test);
    assert_eq!((tr.n, tr.steps, tr.channels), (7352, 128, 6));
    assert_eq!((te.n, te.steps, te.channels), (2947, 128, 6));
    assert_eq!(tr.values.len(), 7352 * 128 * 6);
    assert_eq!(tr.class_names, HAR_CLASSES.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(tr.channel_names, HAR_DEFAULT_CHANNELS.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(tr.labeled_count(), tr.n);
    // label counts, counted independently from the text
    for (ds, split_name) in [(tr, "train"), (te, "test")] {
        let y = std::fs::read_to_string(root.join(split_name).join(format!("y_{split_name}.txt"))).unwrap();
        let want: Vec<usize> = (1..=6).map(|k| y.lines().filter(|l| l.trim() == k.to_string()).count()).collect();
        assert_eq!(ds.class_counts(), want, "{split_name}");
    }
    // the first value of body_acc_x_train and the last of body_gyro_z_test, read from the text
    let first_text = read_text_maybe_gz(&existing(signal_path(&root, "train", "body_acc_x")));
    let first: f32 = first_text.split_ascii_whitespace().next().unwrap().parse().unwrap();
    assert_eq!(tr.values[0], first);
    assert_eq!(first, 1.8085150e-4);
    let last_text = read_text_maybe_gz(&existing(signal_path(&root, "test", "body_gyro_z")));
    let last: f32 = last_text.split_ascii_whitespace().last().unwrap().parse().unwrap();
    assert_eq!(*te.values.last().unwrap(), last);
    // step 1 of window 0, channel body_acc_y: the second value on the first line of its file
    let y_text = read_text_maybe_gz(&existing(signal_path(&root, "train", "body_acc_y")));
    let v: f32 = y_text.split_ascii_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(tr.values[6 + 1], v);

    let s = split.standardize().unwrap();
    assert_eq!(s.channels(), 6);
    for c in 0..6 {
        let v: Vec<f64> = split.train.values.iter().skip(c).step_by(6).map(|&v| v as f64).collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt();
        assert!(m.abs() < 1e-4 && (sd - 1.0).abs() < 1e-3, "train channel {c}: mean {m} std {sd}");
    }
}

// ---------------------------------------------------------------------------------------------
// UCI-HAR, fake folders

#[test]
fn har_txt_and_gz_give_identical_results() {
    let (plain, gzd) = (tmpdir("har-plain"), tmpdir("har-gz"));
    write_fake_har(&plain, [7, 4], false);
    write_fake_har(&gzd, [7, 4], true);
    let a = load_har(&plain, &HAR_CHANNELS).unwrap();
    let b = load_har(&gzd, &HAR_CHANNELS).unwrap();
    assert_eq!(a, b);
    assert_eq!((a.train.n, a.test.n, a.train.channels), (7, 4, 9));
    // values land at (window, step, channel) and survive the %16.7e round trip
    for (w, t, c) in [(0, 0, 0), (3, 77, 5), (6, 127, 8)] {
        let got = a.train.values[(w * 128 + t) * 9 + c];
        let want: f32 = c_exp(fake_value(0, c, w, t)).trim().parse().unwrap();
        assert_eq!(got, want, "window {w} step {t} channel {c}");
    }
    assert_eq!(a.test.values[(2 * 128 + 5) * 9 + 4], c_exp(fake_value(1, 4, 2, 5)).trim().parse::<f32>().unwrap());
    assert_eq!(a.train.labels[..7], [0, 1, 2, 3, 4, 5, 0].map(Some));
    // when both exist, the plain file is read
    let both = tmpdir("har-both");
    write_fake_har(&both, [7, 4], false);
    let gz_file = PathBuf::from(format!("{}.gz", signal_path(&both, "train", "body_acc_x").display()));
    write(&gz_file, b"not even gzip");
    assert_eq!(load_har(&both, &HAR_CHANNELS).unwrap(), a);
    for d in [plain, gzd, both] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn har_channels_chosen_by_name_in_order() {
    let root = tmpdir("har-channels");
    write_fake_har(&root, [3, 2], false);
    let all = load_har(&root, &HAR_CHANNELS).unwrap();
    let two = load_har(&root, &["Total_Acc_Z", "body_acc_x"]).unwrap();
    assert_eq!(two.train.channel_names, vec!["total_acc_z", "body_acc_x"]);
    for i in 0..3 * 128 {
        assert_eq!(two.train.values[2 * i], all.train.values[9 * i + 8]);
        assert_eq!(two.train.values[2 * i + 1], all.train.values[9 * i]);
    }
    assert_err(load_har(&root, &["body_acc_w"]), &["unknown UCI-HAR channel 'body_acc_w'", "total_acc_z"]);
    assert_err(load_har(&root, &["body_acc_x", "BODY_ACC_X"]), &["chosen twice"]);
    assert_err(load_har(&root, &[]), &["no UCI-HAR channels"]);
    // a data directory holding the folder as uci-har/ works too
    let parent = tmpdir("har-parent");
    write_fake_har(&parent.join("uci-har"), [3, 2], false);
    assert_eq!(load_har(&parent, &HAR_CHANNELS).unwrap(), all);
    let _ = std::fs::remove_dir_all(parent);
    // without activity_labels.txt the official names are used
    std::fs::remove_file(root.join("activity_labels.txt")).unwrap();
    assert_eq!(load_har(&root, &["body_acc_x"]).unwrap().train.class_names[5], "LAYING");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn har_malformed_files_name_the_file_and_line() {
    let root = tmpdir("har-bad");
    let fresh = || {
        let _ = std::fs::remove_dir_all(&root);
        write_fake_har(&root, [5, 3], false);
    };
    let sig = signal_path(&root, "train", "body_gyro_y");
    let y = root.join("train").join("y_train.txt");

    fresh(); // a short line
    let short: String = (0..127).map(|t| c_exp(t as f32)).collect::<String>() + "\r\n";
    edit_line(&sig, 2, Some(&short));
    assert_err(load_har(&root, &HAR_DEFAULT_CHANNELS), &["body_gyro_y_train.txt", "line 2 has 127 values, expected 128"]);

    fresh(); // a long line
    let long: String = (0..129).map(|t| c_exp(t as f32)).collect::<String>() + "\r\n";
    edit_line(&sig, 3, Some(&long));
    assert_err(load_har(&root, &HAR_DEFAULT_CHANNELS), &["body_gyro_y_train.txt", "line 3 has more than 128 values"]);

    fresh(); // a window missing
    edit_line(&sig, 5, None);
    assert_err(load_har(&root, &HAR_DEFAULT_CHANNELS), &["body_gyro_y_train.txt", "has 4 windows", "y_train.txt has 5 labels"]);

    fresh(); // label 7
    edit_line(&y, 4, Some("7\n"));
    assert_err(load_har(&root, &HAR_DEFAULT_CHANNELS), &["y_train.txt", "line 4", "label '7'"]);

    fresh(); // a word among the numbers
    let bad: String = (0..128).map(|t| if t == 9 { "  oops".to_string() } else { c_exp(t as f32) }).collect::<String>() + "\r\n";
    edit_line(&sig, 1, Some(&bad));
    assert_err(load_har(&root, &HAR_DEFAULT_CHANNELS), &["body_gyro_y_train.txt", "line 1, value 10", "'oops' is not a number"]);

    fresh(); // NaN
    let nan: String = (0..128).map(|t| if t == 0 { "NaN".to_string() } else { c_exp(t as f32) }).collect::<Vec<_>>().join(" ") + "\r\n";
    edit_line(&sig, 1, Some(&nan));
    assert_err(load_har(&root, &HAR_DEFAULT_CHANNELS), &["body_gyro_y_train.txt", "line 1, value 1", "not finite"]);

    fresh(); // a missing signal file: both candidate names
    std::fs::remove_file(signal_path(&root, "test", "body_acc_z")).unwrap();
    assert_err(load_har(&root, &HAR_DEFAULT_CHANNELS), &["body_acc_z_test.txt", "body_acc_z_test.txt.gz", "neither"]);
    // ... which is not read when not chosen
    assert!(load_har(&root, &["total_acc_x"]).is_ok());

    fresh(); // a broken activity_labels.txt
    write(&root.join("activity_labels.txt"), b"1 WALKING\nseven LAYING\n");
    assert_err(load_har(&root, &HAR_DEFAULT_CHANNELS), &["activity_labels.txt", "line 2"]);

    fresh(); // no test folder, no root
    std::fs::remove_dir_all(root.join("test")).unwrap();
    assert_err(load_har(&root, &HAR_DEFAULT_CHANNELS), &["test/ folder of UCI-HAR is missing"]);
    assert_err(load_har(&root.join("nope"), &HAR_DEFAULT_CHANNELS), &["nope", "does not exist", "UCI HAR Dataset"]);
    let _ = std::fs::remove_dir_all(&root);
}

// ---------------------------------------------------------------------------------------------
// CSV

/// A CSV file in its own folder, removed with it when the test is done.
struct CsvFile {
    _dir: common::TempDir,
    path: PathBuf,
}

impl std::ops::Deref for CsvFile {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

/// Writes `text` to a CSV file of that name, in a folder of its own (the loader names the
/// dataset after the file, so the file keeps its name).
fn csv(name: &str, text: &str) -> CsvFile {
    let dir = common::TempDir::new("test-series-csv", name);
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    CsvFile { _dir: dir, path }
}

fn flat_opts(steps: usize, channels: usize, order: FlatOrder) -> CsvSeriesOptions {
    CsvSeriesOptions { layout: CsvLayout::Flat { steps, channels, order }, ..CsvSeriesOptions::flat(1, 1) }
}

#[test]
fn csv_flat_rows_with_string_labels_and_unlabeled_cells() {
    let p =
        csv("flat.csv", "\u{feff}a_0,b_0,a_1,b_1,a_2,b_2,label\r\n1,2,3,4,5,6,walk\r\n7,8,9,10,11,12,\r\n\r\n13,14,15,16,17,18,run\r\n");
    let opts = CsvSeriesOptions { label_column: Some("label".into()), ..CsvSeriesOptions::flat(3, 2) };
    let (d, report) = load_csv_series(&p, &opts).unwrap();
    assert_eq!((d.n, d.steps, d.channels, d.classes), (3, 3, 2, 2));
    assert_eq!(d.values, (1..=18).map(|v| v as f32).collect::<Vec<_>>());
    assert_eq!(d.labels, vec![Some(1), None, Some(0)]);
    assert_eq!((d.class_names.clone(), d.channel_names.clone()), (vec!["run".into(), "walk".into()], vec!["a".into(), "b".into()]));
    assert_eq!((d.name.as_str(), report.rows), ("flat", 3));

    // channel-major columns, and the same file read in the wrong order
    let p = csv("cm.csv", "x_0,x_1,x_2,y_0,y_1,y_2\n1,2,3,10,20,30\n");
    let (d, _) = load_csv_series(&p, &flat_opts(3, 2, FlatOrder::ChannelMajor)).unwrap();
    assert_eq!(d.values, vec![1.0, 10.0, 2.0, 20.0, 3.0, 30.0]);
    assert_eq!(d.channel_names, vec!["x", "y"]);
    assert_eq!((d.classes, d.labels.clone()), (0, vec![None]));
    assert_err(load_csv_series(&p, &flat_opts(3, 2, FlatOrder::StepMajor)), &["cm.csv", "column 'y_0' falls in channel 1", "order"]);

    // no header: columns by number, integer labels are the classes
    let p = csv("nohead.csv", "0.5,1.5,3\n2.5,-3.5e1,\n");
    let opts = CsvSeriesOptions { header: false, label_column: Some("2".into()), ..CsvSeriesOptions::flat(2, 1) };
    let (d, _) = load_csv_series(&p, &opts).unwrap();
    assert_eq!(d.values, vec![0.5, 1.5, 2.5, -35.0]);
    assert_eq!((d.labels.clone(), d.classes, d.channel_names.clone()), (vec![Some(3), None], 4, vec!["ch0".to_string()]));

    // quoted cells, another delimiter, a fixed class list (names or numbers)
    let p = csv("quoted.csv", "v0;v1;\"the \"\"label\"\"\"\n1;2;\"walk; fast\"\n3;4;0\n5;6;\n");
    let opts = CsvSeriesOptions {
        delimiter: b';',
        label_column: Some("the \"label\"".into()),
        class_names: Some(vec!["sit".into(), "walk; fast".into()]),
        ..CsvSeriesOptions::flat(2, 1)
    };
    let (d, _) = load_csv_series(&p, &opts).unwrap();
    assert_eq!((d.labels.clone(), d.classes), (vec![Some(1), Some(0), None], 2));
}

const LONG: &str = "seq,t_ax,t_ay,label
A,1,10,0
A,2,20,0
A,3,30,0
A,4,40,1
A,5,50,1
B,6,60,
B,7,70,
C,8,80,1
C,9,90,1
C,10,100,1
";

fn long_opts(window: usize, stride: usize, seq: Option<&str>) -> CsvSeriesOptions {
    CsvSeriesOptions {
        layout: CsvLayout::Long { sequence_column: seq.map(String::from), window, stride },
        label_column: Some("label".into()),
        columns: Some(vec!["t_ax".into(), "t_ay".into()]),
        ..CsvSeriesOptions::long(1, 1)
    }
}

#[test]
fn csv_long_rows_cut_into_windows_per_sequence() {
    let p = csv("long.csv", LONG);
    let (d, r) = load_csv_series(&p, &long_opts(3, 2, Some("seq"))).unwrap();
    assert_eq!((d.n, d.steps, d.channels), (3, 3, 2));
    assert_eq!(d.window(0), &[1.0, 10.0, 2.0, 20.0, 3.0, 30.0]);
    assert_eq!(d.window(1), &[3.0, 30.0, 4.0, 40.0, 5.0, 50.0]);
    assert_eq!(d.window(2), &[8.0, 80.0, 9.0, 90.0, 10.0, 100.0]);
    // A's second window mixes labels 0 and 1: unlabeled and counted; B is too short: dropped
    assert_eq!(d.labels, vec![Some(0), None, Some(1)]);
    assert_eq!(r, CsvReport { rows: 10, sequences: 3, dropped_sequences: vec!["B".into()], mixed_label_windows: 1 });
    assert_eq!(d.channel_names, vec!["t_ax", "t_ay"]);

    // no sequence column: the whole file is one recording (windows cross A, B, C)
    let (d, r) = load_csv_series(&p, &long_opts(4, 3, None)).unwrap();
    assert_eq!((d.n, r.sequences), (3, 1));
    assert_eq!(d.window(2), &[7.0, 70.0, 8.0, 80.0, 9.0, 90.0, 10.0, 100.0]);
    assert_eq!(d.labels, vec![None, None, None]); // every window mixes labels or empties
                                                  // unlabeled rows throughout give unlabeled windows, not mixed ones
    let (d, r) = load_csv_series(&p, &long_opts(2, 1, Some("seq"))).unwrap();
    assert_eq!((d.labels[4], d.labels[5]), (None, Some(1)));
    assert_eq!(d.n, 4 + 1 + 2);
    assert_eq!(r.mixed_label_windows, 1);
}

#[test]
fn csv_errors_name_file_line_and_column() {
    let load = |name: &str, text: &str, opts: &CsvSeriesOptions| load_csv_series(&csv(name, text), opts);
    let f1 = CsvSeriesOptions::flat(2, 1);
    assert_err(load("ragged.csv", "a,b\n1,2\n3\n", &f1), &["ragged.csv", "line 3 has 1 cells, the header has 2"]);
    assert_err(load("word.csv", "a,b\n1,2\n3,x7\n", &f1), &["word.csv", "line 3, column 'b': 'x7' is not a number"]);
    assert_err(load("nan.csv", "a,b\n1,NaN\n", &f1), &["nan.csv", "line 2, column 'b'", "'NaN' is not finite"]);
    assert_err(load("inf.csv", "a,b\n-inf,1\n", &f1), &["line 2, column 'a'", "'-inf' is not finite"]);
    assert_err(load("hole.csv", "a,b\n1,\n", &f1), &["line 2, column 'b'", "empty cell"]);
    assert_err(load("empty.csv", "", &f1), &["empty.csv", "empty file"]);
    assert_err(load("blank.csv", " \n\n", &f1), &["blank.csv", "empty file"]);
    assert_err(load("head.csv", "a,b\n", &f1), &["head.csv", "no data rows"]);
    assert_err(load("cols.csv", "a,b,c\n1,2,3\n", &f1), &["3 value columns", "2 steps x 1 channels need 2"]);
    assert_err(load("q.csv", "a,b\n1,\"2\n", &f1), &["line 2", "not closed"]);
    // columns
    let named = |c: &str| CsvSeriesOptions { columns: Some(vec![c.into()]), ..CsvSeriesOptions::flat(1, 1) };
    assert_err(load("c1.csv", "a,b\n1,2\n", &named("zz")), &["no column 'zz'; the header has: a, b"]);
    assert_err(load("c2.csv", "1,2\n", &CsvSeriesOptions { header: false, ..named("a") }), &["column 'a' is named", "no header row"]);
    assert_err(load("c3.csv", "1,2\n", &CsvSeriesOptions { header: false, ..named("5") }), &["column number 5 does not exist"]);
    // labels
    let lab = CsvSeriesOptions { label_column: Some("y".into()), ..CsvSeriesOptions::flat(1, 1) };
    assert_err(load("l1.csv", "x,y\n1,2\n1,300\n", &lab), &["l1.csv", "line 3: label 300 is out of range", "at most 255 classes"]);
    let fixed = CsvSeriesOptions { class_names: Some(vec!["run".into(), "walk".into()]), ..lab.clone() };
    assert_err(load("l2.csv", "x,y\n1,walk\n1,swim\n", &fixed), &["line 3: label 'swim' is out of range", "run, walk"]);
    assert_err(load("l3.csv", "x,y\n1,2\n", &fixed), &["label '2' is out of range"]);
    let many: String = "x,y\n".to_string() + &(0..256).map(|k| format!("1,c{k}\n")).collect::<String>();
    assert_err(load("l4.csv", &many, &lab), &["too many classes: 256 distinct labels, at most 255"]);
    assert!(load("l5.csv", &many.replace("1,c255\n", ""), &lab).is_ok_and(|(d, _)| d.classes == 255));
    // long layout
    assert_err(load("w0.csv", LONG, &long_opts(0, 1, Some("seq"))), &["w0.csv", "window length 0"]);
    assert_err(load("s0.csv", LONG, &long_opts(2, 0, Some("seq"))), &["stride 0"]);
    assert_err(
        load("w9.csv", LONG, &long_opts(6, 1, Some("seq"))),
        &["w9.csv", "window length 6 is longer than every sequence (the longest has 5 rows)"],
    );
    let back = LONG.replace("C,8", "A,8");
    assert_err(
        load("back.csv", &back, &long_opts(2, 1, Some("seq"))),
        &["back.csv", "line 9: sequence 'A' appears again after sequence 'B'", "contiguous"],
    );
    let all_cols = CsvSeriesOptions { columns: None, ..long_opts(2, 1, None) };
    assert_err(load("seqval.csv", LONG, &all_cols), &["line 2, column 'seq': 'A' is not a number"]);
    let same = CsvSeriesOptions { label_column: Some("seq".into()), ..long_opts(2, 1, Some("seq")) };
    assert_err(load("same.csv", LONG, &same), &["both the label and the sequence id"]);
}

// ---------------------------------------------------------------------------------------------
// Synthetic vibration data

/// |DFT| of each channel (mean removed), bins 1..=steps/2: a feature vector per window.
fn spectrum(d: &SeriesDataset, i: usize) -> Vec<f32> {
    let (s, c) = (d.steps, d.channels);
    let w = d.window(i);
    let mut f = Vec::with_capacity(c * s / 2);
    for ch in 0..c {
        let x: Vec<f32> = (0..s).map(|t| w[t * c + ch]).collect();
        let m = x.iter().sum::<f32>() / s as f32;
        for k in 1..=s / 2 {
            let (mut re, mut im) = (0f32, 0f32);
            for (t, &v) in x.iter().enumerate() {
                let a = std::f32::consts::TAU * (k * t) as f32 / s as f32;
                re += (v - m) * a.cos();
                im -= (v - m) * a.sin();
            }
            f.push((re * re + im * im).sqrt());
        }
    }
    f
}

#[test]
fn sensor_synth_is_deterministic_balanced_and_finite() {
    let a = sensor_synth(250, 100, 7);
    assert_eq!(a, sensor_synth(250, 100, 7));
    let b = sensor_synth(250, 100, 8);
    assert_ne!(a.train.values, b.train.values);
    assert_ne!(a.train.values[..384], a.test.values[..384], "train and test draw different windows");
    assert_eq!((a.train.n, a.train.steps, a.train.channels, a.train.classes), (250, 128, 3, 5));
    assert_eq!(a.train.class_names, SENSOR_CLASSES.map(String::from).to_vec());
    assert_eq!(a.train.class_counts(), vec![50; 5]);
    assert_eq!(a.test.class_counts(), vec![20; 5]);
    assert!(a.train.values.iter().chain(&a.test.values).all(|v| v.is_finite() && v.abs() < 20.0));
    // a longer prefix of the same seed keeps the first windows
    let longer = sensor_synth(300, 100, 7);
    assert_eq!(longer.train.values[..a.train.values.len()], a.train.values[..]);

    let cfg = SensorSynthConfig { n_train: 10, n_test: 5, steps: 64, speed_channel: true, seed: 1, ..Default::default() };
    let s = sensor_synth_with(&cfg).unwrap();
    assert_eq!((s.train.steps, s.train.channels, s.train.channel_names[3].as_str()), (64, 4, "speed_hz"));
    assert!(s.train.values.iter().skip(3).step_by(4).all(|&v| (17.0..33.0).contains(&v)));
    assert_err(sensor_synth_with(&SensorSynthConfig { sample_rate: 200.0, ..cfg.clone() }), &["200 Hz is too low"]);
    assert_err(sensor_synth_with(&SensorSynthConfig { steps: 0, ..cfg }), &["at least one step"]);
}

#[test]
fn sensor_synth_classes_are_separable_by_spectra() {
    let split = sensor_synth(1000, 500, 3);
    let train: Vec<Vec<f32>> = (0..split.train.n).map(|i| spectrum(&split.train, i)).collect();
    let dim = train[0].len();
    let mut centroids = vec![vec![0f32; dim]; 5];
    for (f, l) in train.iter().zip(&split.train.labels) {
        for (c, v) in centroids[l.unwrap() as usize].iter_mut().zip(f) {
            *c += v / 200.0;
        }
    }
    let mut correct = 0;
    for i in 0..split.test.n {
        let f = spectrum(&split.test, i);
        let dist = |c: &Vec<f32>| c.iter().zip(&f).map(|(a, b)| (a - b) * (a - b)).sum::<f32>();
        let pred = (0..5).min_by(|&a, &b| dist(&centroids[a]).total_cmp(&dist(&centroids[b]))).unwrap();
        correct += usize::from(Some(pred as u8) == split.test.labels[i]);
    }
    let acc = correct as f64 / split.test.n as f64;
    notice(&format!("sensor-synth: nearest-centroid accuracy on |FFT| features {acc:.3} (chance 0.2)"));
    assert!(acc > 0.6, "nearest-centroid accuracy {acc} is not far above chance (0.2)");
}

/// Robust scaling: one extreme value among normal readings does not set the channel's scale
/// (with plain standardisation it squeezes the others to ~0).
#[test]
fn robust_scaling_ignores_a_single_extreme_value() {
    let mut values: Vec<f32> = (0..200).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
    values[123] = 1e30;
    let ds = SeriesDataset::new("x", values, vec![None; 10], 20, vec![], vec!["a".into()]).unwrap();
    let (plain, robust) = (Standardizer::fit(&ds).unwrap(), Standardizer::fit_robust(&ds).unwrap());
    assert!(plain.std[0] > 1e27, "one 1e30 value sets the plain scale: {}", plain.std[0]);
    assert!(robust.std[0] > 0.5 && robust.std[0] < 2.0, "the robust scale follows the other values: {}", robust.std[0]);
    let mut v = vec![1.0f32, -1.0];
    robust.apply_values(&mut v);
    assert!(v[0] - v[1] > 0.5, "normal readings keep their spread: {v:?}");
}
