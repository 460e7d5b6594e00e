//! The data module: IDX reading and validation, the MNIST / Fashion-MNIST loaders (real files
//! from SSVAE_DATA or ../shared/data), label subsets, the batcher and the synthetic dataset.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ssvae::backend::UNLABELED;
use ssvae::data::*;

// ---------------------------------------------------------------------------------------------
// Helpers

/// This test's own folder (removed when the test passes), made and empty.
fn tmpdir(name: &str) -> common::TempDir {
    common::TempDir::new("test-data", name)
}

fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The error's message, which must name `file` and contain every one of `needles`.
fn assert_err<T: std::fmt::Debug>(r: ssvae::Result<T>, file: &str, needles: &[&str]) -> String {
    let msg = r.expect_err("expected an error").to_string();
    assert!(msg.contains(file), "error does not name {file:?}: {msg}");
    for n in needles {
        assert!(msg.contains(n), "error does not mention {n:?}: {msg}");
    }
    msg
}

/// Images (n x h x w, pixel = (i + j) % 256) and labels (i % 10) as IDX bytes.
fn image_bytes(n: usize, h: usize, w: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..n * h * w).map(|i| (i % 251) as u8).collect();
    idx_bytes(0x803, &[n as u32, h as u32, w as u32], &data)
}

fn label_bytes(n: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    idx_bytes(0x801, &[n as u32], &data)
}

/// A small dataset in the official layout; train files gzipped, test files raw.
fn write_small_set(dir: &Path) {
    write(dir, "train-images-idx3-ubyte.gz", &gz(&image_bytes(30, 4, 5)));
    write(dir, "train-labels-idx1-ubyte.gz", &gz(&label_bytes(30)));
    write(dir, "t10k-images-idx3-ubyte", &image_bytes(12, 4, 5));
    write(dir, "t10k-labels-idx1-ubyte", &label_bytes(12));
}

// ---------------------------------------------------------------------------------------------
// IDX

#[test]
fn read_idx_raw_and_gzipped_by_magic_not_name() {
    let dir = tmpdir("read");
    let raw = image_bytes(3, 2, 4);
    let want: Vec<u8> = raw[16..].to_vec();
    for (name, bytes) in
        [("raw", raw.clone()), ("raw-named.gz", raw.clone()), ("zipped.gz", gz(&raw)), ("zipped-without-extension", gz(&raw))]
    {
        let p = write(&dir, name, &bytes);
        let (dims, data) = read_idx(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(dims, vec![3, 2, 4], "{name}");
        assert_eq!(data, want, "{name}");
    }
    let p = write(&dir, "labels", &label_bytes(7));
    assert_eq!(read_idx(&p).unwrap(), (vec![7], (0..7).collect::<Vec<u8>>()));
}

#[test]
fn read_idx_rejects_bad_magic() {
    let dir = tmpdir("magic");
    let p = write(&dir, "not-idx.bin", &idx_bytes(0x1234_5678, &[1], &[0]));
    assert_err(read_idx(&p), "not-idx.bin", &["bad magic 0x12345678"]);
    let p = write(&dir, "floats.idx", &idx_bytes(0x0D01, &[1], &[0, 0, 0, 0]));
    assert_err(read_idx(&p), "floats.idx", &["0x00000d01", "0x0d", "unsigned byte"]);
    let p = write(&dir, "nodims.idx", &idx_bytes(0x0800, &[], &[]));
    assert_err(read_idx(&p), "nodims.idx", &["zero dimensions"]);
    let p = write(&dir, "tiny", &[0, 0]);
    assert_err(read_idx(&p), "tiny", &["truncated"]);
}

#[test]
fn read_idx_rejects_truncated_and_trailing() {
    let dir = tmpdir("length");
    let full = image_bytes(3, 2, 4);
    let p = write(&dir, "short.idx", &full[..full.len() - 5]);
    assert_err(read_idx(&p), "short.idx", &["truncated", "3 x 2 x 4 = 24 bytes", "file has 19"]);
    let p = write(&dir, "short.idx.gz", &gz(&full[..full.len() - 5]));
    assert_err(read_idx(&p), "short.idx.gz", &["truncated", "file has 19"]);
    let p = write(&dir, "header.idx", &full[..10]);
    assert_err(read_idx(&p), "header.idx", &["truncated", "header needs 16 bytes"]);
    let mut long = full.clone();
    long.extend_from_slice(&[1, 2]);
    let p = write(&dir, "long.idx", &long);
    assert_err(read_idx(&p), "long.idx", &["2 trailing bytes", "= 24 bytes", "file has 26"]);
    let zipped = gz(&full);
    let p = write(&dir, "cut.gz", &zipped[..zipped.len() / 2]);
    assert_err(read_idx(&p), "cut.gz", &["gzip"]);
    let p = dir.join("absent.idx");
    assert_err(read_idx(&p), "absent.idx", &["cannot read"]);
}

#[test]
fn load_idx_dataset_small_mixed_raw_and_gz() {
    let dir = tmpdir("load-ok");
    write_small_set(&dir);
    let s = load_idx_dataset(&dir, IdxDataset::FashionMnist).unwrap();
    assert_eq!((s.train.n, s.train.height, s.train.width, s.train.channels), (30, 4, 5, 1));
    assert_eq!((s.test.n, s.test.dim()), (12, 20));
    assert_eq!(s.train.name, "fashion-mnist");
    assert_eq!(s.train.classes, 10);
    assert_eq!(s.train.class_names[0], "T-shirt/top");
    assert_eq!(s.train.class_names[9], "Ankle boot");
    assert_eq!(s.train.labels[13], 3);
    assert_eq!(s.train.sample(1), &image_bytes(30, 4, 5)[16 + 20..16 + 40]);
    assert_eq!(IdxDataset::Mnist.class_names()[7], "7");
    assert_eq!(IdxDataset::Mnist.name(), "mnist");
    assert_eq!(IdxDataset::from_name("fashion-mnist"), Some(IdxDataset::FashionMnist));
}

#[test]
fn load_idx_dataset_rejects_wrong_dims_counts_labels() {
    // images file holding labels (1-D): wrong magic / dimensions
    let dir = tmpdir("load-dims");
    write_small_set(&dir);
    write(&dir, "train-images-idx3-ubyte.gz", &gz(&label_bytes(30)));
    assert_err(
        load_idx_dataset(&dir, IdxDataset::Mnist),
        "train-images-idx3-ubyte.gz",
        &["bad magic 0x00000801, expected 0x00000803 (IDX images)"],
    );
    // labels file with image dimensions
    let dir = tmpdir("load-dims2");
    write_small_set(&dir);
    write(&dir, "t10k-labels-idx1-ubyte", &image_bytes(12, 1, 1));
    assert_err(load_idx_dataset(&dir, IdxDataset::Mnist), "t10k-labels-idx1-ubyte", &["expected 0x00000801 (IDX labels)"]);
    // test images of another size than the training images
    let dir = tmpdir("load-dims3");
    write_small_set(&dir);
    write(&dir, "t10k-images-idx3-ubyte", &image_bytes(12, 5, 4));
    assert_err(load_idx_dataset(&dir, IdxDataset::Mnist), "t10k-images-idx3-ubyte", &["5 x 4", "4 x 5"]);
    // image / label counts disagree
    let dir = tmpdir("load-count");
    write_small_set(&dir);
    write(&dir, "train-labels-idx1-ubyte.gz", &gz(&label_bytes(29)));
    assert_err(
        load_idx_dataset(&dir, IdxDataset::Mnist),
        "train-labels-idx1-ubyte.gz",
        &["29 labels", "train-images-idx3-ubyte.gz has 30 images"],
    );
    // a label >= 10
    let dir = tmpdir("load-label");
    write_small_set(&dir);
    let mut labels: Vec<u8> = (0..12).map(|i| (i % 10) as u8).collect();
    labels[5] = 10;
    write(&dir, "t10k-labels-idx1-ubyte", &idx_bytes(0x801, &[12], &labels));
    assert_err(load_idx_dataset(&dir, IdxDataset::Mnist), "t10k-labels-idx1-ubyte", &["label 10 at index 5", "10 classes"]);
    // truncated file inside the loader
    let dir = tmpdir("load-trunc");
    write_small_set(&dir);
    let img = image_bytes(12, 4, 5);
    write(&dir, "t10k-images-idx3-ubyte", &img[..100]);
    assert_err(
        load_idx_dataset(&dir, IdxDataset::Mnist),
        "t10k-images-idx3-ubyte",
        &["truncated: header says 12 x 4 x 5 = 240 bytes, file has 84"],
    );
}

#[test]
fn load_idx_dataset_missing_files_say_what_and_where() {
    let dir = tmpdir("load-missing");
    let msg = assert_err(
        load_idx_dataset(&dir, IdxDataset::Mnist),
        dir.to_str().unwrap(),
        &["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "yann.lecun.com"],
    );
    assert!(msg.contains("missing"), "{msg}");
    write_small_set(&dir);
    std::fs::remove_file(dir.join("t10k-labels-idx1-ubyte")).unwrap();
    let msg = assert_err(load_idx_dataset(&dir, IdxDataset::FashionMnist), dir.to_str().unwrap(), &["zalandoresearch/fashion-mnist"]);
    assert!(msg.contains("missing t10k-labels-idx1-ubyte(.gz)") && !msg.contains("missing train"), "{msg}");
    let gone = dir.join("no-such-dir");
    assert_err(load_idx_dataset(&gone, IdxDataset::Mnist), "no-such-dir", &["does not exist"]);
}

#[test]
fn dataset_subset_and_gather() {
    let s = synthetic(50, 0, 3);
    let sub = s.train.subset(&[4, 1, 4]);
    assert_eq!(sub.n, 3);
    assert_eq!(sub.sample(0), s.train.sample(4));
    assert_eq!(sub.sample(1), s.train.sample(1));
    assert_eq!(sub.labels, vec![s.train.labels[4], s.train.labels[1], s.train.labels[4]]);
    assert_eq!(sub.class_counts().iter().sum::<usize>(), 3);
    let mut x = Vec::new();
    s.train.gather_f32(&[2, 0], &mut x);
    assert_eq!(x.len(), 2 * 784);
    assert_eq!(x[784 + 300], s.train.sample(0)[300] as f32 / 255.0);
    assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
}

// ---------------------------------------------------------------------------------------------
// Label subsets

fn labels_with_counts(counts: &[usize]) -> Vec<u8> {
    // interleaved so that class membership is not contiguous
    let mut v = Vec::new();
    let mut left = counts.to_vec();
    while left.iter().any(|&c| c > 0) {
        for (c, l) in left.iter_mut().enumerate() {
            if *l > 0 {
                v.push(c as u8);
                *l -= 1;
            }
        }
    }
    v
}

#[test]
fn label_subset_balanced_sorted_deterministic() {
    let labels = labels_with_counts(&[50, 40, 60, 30, 45, 55, 35, 65, 50, 70]);
    let a = label_subset(&labels, 10, 103, 7).unwrap();
    assert_eq!(a.len(), 103);
    assert!(a.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
    let mut per = [0usize; 10];
    for &i in &a {
        per[labels[i] as usize] += 1;
    }
    assert_eq!(per, [11, 11, 11, 10, 10, 10, 10, 10, 10, 10]);
    assert_eq!(a, label_subset(&labels, 10, 103, 7).unwrap());
    assert_ne!(a, label_subset(&labels, 10, 103, 8).unwrap());
    assert!(label_subset(&labels, 10, 0, 1).unwrap().is_empty());
    // the whole of the smallest class can be taken
    assert_eq!(label_subset(&labels, 10, 300, 1).unwrap().len(), 300);
}

#[test]
fn label_subset_errors() {
    let labels = labels_with_counts(&[5, 5, 2]);
    let e = label_subset(&labels, 3, 13, 0).unwrap_err().to_string();
    assert!(e.contains("--labels 13 exceeds the 12 training samples"), "{e}");
    let e = label_subset(&labels, 3, 9, 0).unwrap_err().to_string();
    assert!(e.contains("class 2") && e.contains("only 2"), "{e}");
    let e = label_subset(&labels, 2, 4, 0).unwrap_err().to_string();
    assert!(e.contains("label 2") && e.contains("2 classes"), "{e}");
}

#[test]
fn label_fraction_stratified() {
    let labels = labels_with_counts(&[100, 200, 300, 400]);
    let all = label_fraction(&labels, 4, 1.0, 1).unwrap();
    assert_eq!(all, (0..1000).collect::<Vec<_>>());
    let f = label_fraction(&labels, 4, 0.1, 1).unwrap();
    assert_eq!(f.len(), 100);
    let mut per = [0usize; 4];
    for &i in &f {
        per[labels[i] as usize] += 1;
    }
    assert_eq!(per, [10, 20, 30, 40]);
    assert_eq!(f, label_fraction(&labels, 4, 0.1, 1).unwrap());
    assert_eq!(label_fraction(&labels, 4, 0.0004, 1).unwrap().len(), 1);
    assert_eq!(label_fraction(&labels, 4, 0.0123, 1).unwrap().len(), 12);
    for bad in [0.0, -0.5, 1.5, f64::NAN] {
        let e = label_fraction(&labels, 4, bad, 1).unwrap_err().to_string();
        assert!(e.contains("--label-fraction") && e.contains("(0, 1]"), "{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Batcher

fn train_labels(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7) % 10) as u8).collect()
}

#[test]
fn batcher_semi_supervised_invariants() {
    let n = 600;
    let labels = train_labels(n);
    let labeled: Vec<usize> = (0..n).step_by(37).collect();
    let labeled_set: HashSet<u32> = labeled.iter().map(|&i| i as u32).collect();
    let mut b = Batcher::new(BatchMode::SemiSupervised, &labels, &labeled, 24, 5).unwrap();
    assert_eq!(b.labeled_per_batch(), 12);
    assert_eq!(b.steps_per_epoch(), 50); // 600 / 12
    let mut seen_epochs = Vec::new();
    for _epoch in 0..2 {
        let mut seen = Vec::new();
        for _ in 0..b.steps_per_epoch() {
            let batch = b.next_batch();
            assert_eq!((batch.indices.len(), batch.labels.len()), (24, 24));
            for r in 0..12 {
                let i = batch.indices[r];
                assert!(labeled_set.contains(&i), "labeled row {r} uses unlabeled sample {i}");
                assert_eq!(batch.labels[r], labels[i as usize] as u32);
            }
            assert!(batch.labels[12..].iter().all(|&l| l == UNLABELED));
            seen.extend_from_slice(&batch.indices[12..]);
        }
        let mut sorted = seen.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..n as u32).collect::<Vec<_>>(), "each sample exactly once per epoch");
        seen_epochs.push(seen);
    }
    assert_ne!(seen_epochs[0], seen_epochs[1], "reshuffled each epoch");
    assert_ne!(seen_epochs[0], (0..n as u32).collect::<Vec<_>>(), "shuffled at all");

    // odd batch size, n not a multiple of U: ceil, and the partial chunk runs on
    let mut b = Batcher::new(BatchMode::SemiSupervised, &labels[..100], &[3, 4], 7, 1).unwrap();
    assert_eq!((b.labeled_per_batch(), b.steps_per_epoch()), (3, 25)); // U = 4, 100/4
    let mut b2 = Batcher::new(BatchMode::SemiSupervised, &labels[..101], &[3, 4], 7, 1).unwrap();
    assert_eq!(b2.steps_per_epoch(), 26);
    let mut counts = vec![0usize; 101];
    for _ in 0..b2.steps_per_epoch() {
        let batch = b2.next_batch();
        assert_eq!(batch.indices.len(), 7);
        assert!(batch.indices[..3].iter().all(|&i| i == 3 || i == 4));
        for &i in &batch.indices[3..] {
            counts[i as usize] += 1;
        }
    }
    assert!(counts.iter().all(|&c| c == 1 || c == 2) && counts.iter().sum::<usize>() == 104);
    let _ = b.next_batch();
}

#[test]
fn batcher_supervised_and_unsupervised() {
    let n = 250;
    let labels = train_labels(n);
    let labeled: Vec<usize> = vec![0, 10, 20, 30, 249];
    let mut b = Batcher::new(BatchMode::Supervised, &labels, &labeled, 32, 9).unwrap();
    assert_eq!((b.steps_per_epoch(), b.labeled_per_batch()), (8, 32)); // ceil(250 / 32)
    let mut hits = [0usize; 5];
    for _ in 0..40 {
        let batch = b.next_batch();
        assert_eq!(batch.indices.len(), 32);
        for (i, l) in batch.indices.iter().zip(&batch.labels) {
            let k = labeled.iter().position(|&x| x as u32 == *i).expect("only labeled samples");
            assert_eq!(*l, labels[*i as usize] as u32);
            hits[k] += 1;
        }
    }
    // uniform with replacement: 1280 draws over 5 -> ~256 each
    assert!(hits.iter().all(|&h| (180..340).contains(&h)), "{hits:?}");

    let mut u = Batcher::new(BatchMode::Unsupervised, &labels, &[], 50, 9).unwrap();
    assert_eq!((u.steps_per_epoch(), u.labeled_per_batch()), (5, 0));
    let mut seen = Vec::new();
    for _ in 0..u.steps_per_epoch() {
        let batch = u.next_batch();
        assert_eq!(batch.indices.len(), 50);
        assert!(batch.labels.iter().all(|&l| l == UNLABELED));
        seen.extend(batch.indices);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..n as u32).collect::<Vec<_>>());
    // labeled indices are ignored (not even checked) for EU
    assert!(Batcher::new(BatchMode::Unsupervised, &labels, &[9999], 8, 0).is_ok());
    let mut u3 = Batcher::new(BatchMode::Unsupervised, &labels, &[], 64, 0).unwrap();
    assert_eq!(u3.steps_per_epoch(), 4);
    for _ in 0..9 {
        assert_eq!(u3.next_batch().indices.len(), 64);
    }
}

#[test]
fn batcher_deterministic_by_seed() {
    let labels = train_labels(300);
    let labeled: Vec<usize> = (0..300).step_by(3).collect();
    for mode in [BatchMode::SemiSupervised, BatchMode::Supervised, BatchMode::Unsupervised] {
        let run = |seed| {
            let mut b = Batcher::new(mode, &labels, &labeled, 16, seed).unwrap();
            (0..40).map(|_| b.next_batch()).collect::<Vec<_>>()
        };
        assert_eq!(run(11), run(11), "{mode:?}");
        assert_ne!(run(11), run(12), "{mode:?}");
    }
    let mut a = Batcher::new(BatchMode::SemiSupervised, &labels, &labeled, 16, 4).unwrap();
    let mut b = a.clone();
    let mut reuse = Batch::default();
    for _ in 0..30 {
        b.next_batch_into(&mut reuse);
        assert_eq!(a.next_batch(), reuse);
    }
}

/// FNV-1a over the indices and labels of 60 semi-supervised batches at the default share for a
/// few batch sizes (even, odd, the default 128) and seeds.
fn default_batches_digest(make: impl Fn(usize, u64) -> Batcher) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (b, seed) in [(24usize, 5u64), (7, 1), (128, 0), (129, 2)] {
        let mut bt = make(b, seed);
        for _ in 0..60 {
            let x = bt.next_batch();
            for v in x.indices.iter().chain(&x.labels) {
                h = (h ^ *v as u64).wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    h
}

#[test]
fn batcher_labeled_share() {
    let n = 600;
    let labels = train_labels(n);
    let labeled: Vec<usize> = (0..n).step_by(37).collect();
    let labeled_set: HashSet<u32> = labeled.iter().map(|&i| i as u32).collect();
    // the default share is the paper's batch_size / 2 at every size, and the batches are the
    // ones drawn before --labeled-share existed (digest computed with commit c247cdc's batcher)
    for b in 2..=4096 {
        assert_eq!(labeled_rows(b, DEFAULT_LABELED_SHARE), b / 2, "batch {b}");
    }
    let pinned = 0xc9be_8a2e_9042_6d45;
    let with_share = |b, seed| Batcher::with_labeled_share(BatchMode::SemiSupervised, &train_labels(600), &labeled, b, 0.5, seed).unwrap();
    assert_eq!(default_batches_digest(with_share), pinned, "the default batches changed");
    let plain = |b, seed| Batcher::new(BatchMode::SemiSupervised, &train_labels(600), &labeled, b, seed).unwrap();
    assert_eq!(default_batches_digest(plain), pinned);
    // a share written in decimal is not rounded down by its binary form (0.7 x 10 = 7, not 6)
    assert_eq!((labeled_rows(10, 0.7), labeled_rows(128, 0.1), labeled_rows(128, 0.25), labeled_rows(7, 0.3)), (7, 12, 32, 2));
    // a quarter of 24: 6 labeled rows from the labeled set, 18 unlabeled, ceil(600 / 18) = 34
    // steps an epoch, which sees every sample
    let mut b = Batcher::with_labeled_share(BatchMode::SemiSupervised, &labels, &labeled, 24, 0.25, 5).unwrap();
    assert_eq!((b.labeled_per_batch(), b.steps_per_epoch()), (6, 34));
    let mut seen = HashSet::new();
    for _ in 0..b.steps_per_epoch() {
        let batch = b.next_batch();
        assert_eq!(batch.indices.len(), 24);
        for r in 0..6 {
            assert!(labeled_set.contains(&batch.indices[r]));
            assert_eq!(batch.labels[r], labels[batch.indices[r] as usize] as u32);
        }
        assert!(batch.labels[6..].iter().all(|&l| l == UNLABELED));
        seen.extend(batch.indices[6..].iter().copied());
    }
    assert_eq!(seen.len(), n, "one epoch passes over every sample");
    // most of a batch labeled: 0.9 of 24 -> 21 labeled, 3 unlabeled, 200 steps an epoch
    let b = Batcher::with_labeled_share(BatchMode::SemiSupervised, &labels, &labeled, 24, 0.9, 5).unwrap();
    assert_eq!((b.labeled_per_batch(), b.steps_per_epoch()), (21, 200));
    // the other modes ignore the share
    let s = Batcher::with_labeled_share(BatchMode::Supervised, &labels, &labeled, 24, 0.1, 5).unwrap();
    assert_eq!(s.labeled_per_batch(), 24);
    let msg = |r: ssvae::Result<Batcher>| r.unwrap_err().to_string();
    for bad in [0.0, 1.0, -0.5, f64::NAN] {
        let e = msg(Batcher::with_labeled_share(BatchMode::SemiSupervised, &labels, &labeled, 24, bad, 5));
        assert!(e.contains("--labeled-share must be in (0, 1)"), "{bad}: {e}");
    }
    let e = msg(Batcher::with_labeled_share(BatchMode::SemiSupervised, &labels, &labeled, 24, 0.01, 5));
    assert!(e.contains("--labeled-share 0.01 of --batch-size 24 gives 0 labeled rows"), "{e}");
}

#[test]
fn batcher_errors() {
    let labels = train_labels(20);
    let msg = |r: ssvae::Result<Batcher>| r.unwrap_err().to_string();
    let e = msg(Batcher::new(BatchMode::Unsupervised, &labels, &[], 0, 0));
    assert!(e.contains("--batch-size"), "{e}");
    let e = msg(Batcher::new(BatchMode::SemiSupervised, &labels, &[1], 1, 0));
    assert!(e.contains("--batch-size 1") && e.contains("semi-supervised"), "{e}");
    for mode in [BatchMode::SemiSupervised, BatchMode::Supervised] {
        let e = msg(Batcher::new(mode, &labels, &[], 8, 0));
        assert!(e.contains("labeled sample") && e.contains("--labels"), "{e}");
        let e = msg(Batcher::new(mode, &labels, &[3, 20], 8, 0));
        assert!(e.contains("labeled index 20") && e.contains("20 training samples"), "{e}");
    }
    let e = msg(Batcher::new(BatchMode::Unsupervised, &[], &[], 8, 0));
    assert!(e.contains("empty"), "{e}");
    assert!(Batcher::new(BatchMode::Supervised, &labels, &[0], 1, 0).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Synthetic

#[test]
fn synthetic_deterministic_balanced_sane() {
    let t = Instant::now();
    let s = synthetic(60000, 10000, 42);
    eprintln!("synthetic(60000, 10000) took {:.3} s", t.elapsed().as_secs_f64());
    let (tr, te) = (&s.train, &s.test);
    assert_eq!((tr.n, tr.height, tr.width, tr.channels, tr.classes), (60000, 28, 28, 1, 10));
    assert_eq!((te.n, tr.pixels.len(), te.pixels.len()), (10000, 60000 * 784, 10000 * 784));
    assert_eq!(tr.name, "synthetic");
    assert_eq!(tr.class_names, SYNTHETIC_CLASSES.map(String::from).to_vec());

    // determinism
    let again = synthetic(1000, 200, 42);
    assert_eq!(again.train.pixels[..], tr.pixels[..1000 * 784]);
    assert_eq!(again.train.labels[..], tr.labels[..1000]);
    assert_eq!(again.test.pixels[..], te.pixels[..200 * 784]);
    let other = synthetic(1000, 0, 43);
    assert_ne!(other.train.pixels, again.train.pixels);
    assert_ne!(te.pixels[..1000 * 784], tr.pixels[..1000 * 784], "test set differs from the training set");

    // classes roughly balanced
    for (set, n) in [(tr, 60000.0), (te, 10000.0)] {
        let counts = set.class_counts();
        for c in counts {
            assert!((c as f64 - n / 10.0).abs() < 0.06 * n / 10.0, "{:?}", set.class_counts());
        }
    }

    // pixel statistics: MNIST has mean ~33, ~19% non-zero pixels, max 255
    let mean = tr.pixels.iter().map(|&p| p as f64).sum::<f64>() / tr.pixels.len() as f64;
    let nonzero = tr.pixels.iter().filter(|&&p| p > 0).count() as f64 / tr.pixels.len() as f64;
    eprintln!("synthetic pixel mean {mean:.1}, non-zero fraction {nonzero:.3}");
    assert!((15.0..70.0).contains(&mean), "mean {mean}");
    assert!((0.08..0.40).contains(&nonzero), "non-zero {nonzero}");
    assert_eq!(tr.pixels.iter().max(), Some(&255));
    for i in 0..tr.n {
        let img = tr.sample(i);
        let ink = img.iter().filter(|&&p| p > 0).count();
        assert!((20..=500).contains(&ink), "sample {i} has {ink} inked pixels");
        let border = (0..28).map(|k| img[k] as u32 + img[27 * 28 + k] as u32 + img[k * 28] as u32 + img[k * 28 + 27] as u32).sum::<u32>();
        assert!(border < 28 * 4 * 255 / 4, "sample {i} is mostly on the border");
    }

    // class means differ clearly: the nearest pair of class-mean images is far apart
    let mut means = vec![vec![0f64; 784]; 10];
    for i in 0..tr.n {
        for (m, &p) in means[tr.labels[i] as usize].iter_mut().zip(tr.sample(i)) {
            *m += p as f64;
        }
    }
    let counts = tr.class_counts();
    for (m, &c) in means.iter_mut().zip(&counts) {
        m.iter_mut().for_each(|v| *v /= c as f64);
    }
    let mut nearest = f64::INFINITY;
    for a in 0..10 {
        for b in a + 1..10 {
            let d = means[a].iter().zip(&means[b]).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt();
            nearest = nearest.min(d);
        }
    }
    eprintln!("nearest pair of class means: L2 distance {nearest:.1}");
    assert!(nearest > 150.0, "class means too similar: {nearest}");
}

#[test]
fn render_glyph_reproduces_samples_and_styles_matter() {
    let s = synthetic(40, 10, 7);
    for i in [0, 13, 39] {
        let (class, style) = synthetic_factors(7, false, i);
        assert_eq!(class, s.train.labels[i]);
        assert_eq!(render_glyph(class as usize, &style), s.train.sample(i));
    }
    let (class, style) = synthetic_factors(7, true, 4);
    assert_eq!(render_glyph(class as usize, &style), s.test.sample(4));

    let base = GlyphStyle::NEUTRAL;
    let img = render_glyph(0, &base);
    assert_eq!(img.iter().max(), Some(&255));
    assert_eq!(img[0], 0);
    assert_eq!(GlyphStyle::from_unit(base.to_unit()), base);
    let (lo, hi) = (GlyphStyle::from_unit([0.0; 7]), GlyphStyle::from_unit([1.0; 7]));
    assert!(lo.size < hi.size && lo.stroke < hi.stroke && lo.brightness < hi.brightness);
    let dim = render_glyph(0, &GlyphStyle { brightness: 0.5, ..base });
    assert_eq!(dim.iter().max(), Some(&128));
    let moved = render_glyph(0, &GlyphStyle { dx: 2.0, ..base });
    assert_ne!(moved, img);
    let thick = render_glyph(0, &GlyphStyle { stroke: 3.4, ..base });
    let ink = |v: &[u8]| v.iter().map(|&p| p as u32).sum::<u32>();
    assert!(ink(&thick) > ink(&img) * 5 / 4);
    for (c, name) in SYNTHETIC_CLASSES.iter().enumerate() {
        let g = render_glyph(c, &base);
        assert!(g.iter().filter(|&&p| p > 0).count() > 40, "glyph {c} ({name}) nearly empty");
        for d in 0..c {
            assert_ne!(g, render_glyph(d, &base));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Real data

fn data_root() -> PathBuf {
    match std::env::var_os("SSVAE_DATA") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data")),
    }
}

#[test]
fn real_mnist_and_fashion_mnist() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    for which in IdxDataset::ALL {
        let dir = data_root().join(which.name());
        if !dir.join("train-images-idx3-ubyte.gz").is_file() && !dir.join("train-images-idx3-ubyte").is_file() {
            if ci {
                panic!("{} data missing in {} (CI=true requires it)", which.name(), dir.display());
            }
            eprintln!("SKIPPED: {} not found in {} (set SSVAE_DATA)", which.name(), dir.display());
            continue;
        }
        let t = Instant::now();
        let s = load_idx_dataset(&dir, which).unwrap();
        eprintln!("loading {} took {:.3} s", which.name(), t.elapsed().as_secs_f64());
        for (set, n) in [(&s.train, 60000), (&s.test, 10000)] {
            assert_eq!((set.n, set.height, set.width, set.channels, set.classes), (n, 28, 28, 1, 10));
            assert_eq!((set.pixels.len(), set.labels.len()), (n * 784, n));
            let counts = set.class_counts();
            assert_eq!(counts.iter().sum::<usize>(), n);
            assert!(counts.iter().all(|&c| c > n / 20), "{counts:?}");
            let mean = set.pixels.iter().map(|&p| p as f64).sum::<f64>() / set.pixels.len() as f64;
            assert!((20.0..100.0).contains(&mean), "mean pixel {mean}");
        }
        match which {
            IdxDataset::Mnist => {
                assert_eq!(s.train.class_counts(), vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
                assert_eq!(&s.train.labels[..8], &[5, 0, 4, 1, 9, 2, 1, 3]);
                assert_eq!(&s.test.labels[..4], &[7, 2, 1, 0]);
            }
            IdxDataset::FashionMnist => {
                assert_eq!(s.train.class_counts(), vec![6000; 10]);
                assert_eq!(s.test.class_counts(), vec![1000; 10]);
                assert_eq!(&s.train.labels[..4], &[9, 0, 0, 3]);
            }
        }
        // 100 balanced labels and a full fraction work on the real label distribution
        assert_eq!(label_subset(&s.train.labels, 10, 100, 0).unwrap().len(), 100);
        assert_eq!(label_fraction(&s.train.labels, 10, 1.0, 0).unwrap().len(), 60000);
    }
}
