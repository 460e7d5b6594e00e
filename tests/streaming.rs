//! Streamed training (the training set fed in shards, `ssvae::train::stream`) gives the same
//! parameters as resident training: the same batches, rows and labels reach the same graph, so
//! on the CPU backend the parameters are bitwise equal (the gather kernel copies rows; every
//! other kernel sees identical inputs). Checked for a dense image model (u8, 7x7 images: rows
//! of 49 bytes cross u32 words), a dense table model (f32, Gaussian) and a small RNN, with
//! shards of 1 and 3 steps, a step count that is no multiple of either and crosses an epoch,
//! and a resume in the middle of a shard.

mod common;

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ssvae::backend::cpu::CpuBackend;
use ssvae::data::{Dataset, SeriesDataset};
use ssvae::model::{Kind, Likelihood, ModelSpec};
use ssvae::train::{LabelSpec, RowSource, StreamSource, TrainConfig, TrainData, Trainer};
use ssvae::Backend;

type Params = Vec<(String, Vec<usize>, Vec<f32>)>;

fn images(n: usize, seed: u64) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let (h, w) = (7, 7);
    Dataset {
        name: "tiny".into(),
        pixels: (0..n * h * w).map(|_| rng.random::<u8>()).collect(),
        labels: (0..n).map(|i| (i % 3) as u8).collect(),
        n,
        height: h,
        width: w,
        channels: 1,
        classes: 3,
        class_names: (0..3).map(|c| c.to_string()).collect(),
        unlabeled: Vec::new(),
        ids: Vec::new(),
    }
}

fn series(n: usize, steps: usize, channels: usize, seed: u64) -> SeriesDataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let values = (0..n * steps * channels).map(|_| rng.random_range(-2.0f32..2.0)).collect();
    let labels = (0..n).map(|i| if i % 4 == 3 { None } else { Some((i % 3) as u8) }).collect();
    SeriesDataset::new(
        "tiny-series",
        values,
        labels,
        steps,
        (0..3).map(|c| c.to_string()).collect(),
        (0..channels).map(|c| format!("c{c}")).collect(),
    )
    .unwrap()
}

fn small(mut spec: ModelSpec) -> ModelSpec {
    spec.hidden = spec.hidden.iter().map(|_| 8).collect();
    spec
}

fn config(spec: ModelSpec, batch: usize) -> TrainConfig {
    let mut cfg = TrainConfig::new(spec, "tiny");
    cfg.batch_size = batch;
    cfg.labels = LabelSpec::Count(6);
    cfg.seed = 7;
    cfg
}

fn labeled_of(d: TrainData<'_>) -> Vec<usize> {
    (0..d.n()).filter(|&i| d.label(i).is_some()).take(6).collect()
}

/// Parameters after `steps` steps, resident (`shard: None`) or streamed; with `resume_at`, the
/// run stops there, is saved and a new trainer continues it.
fn train<B: Backend>(
    be: &B,
    cfg: &TrainConfig,
    data: TrainData<'_>,
    source: Arc<dyn RowSource>,
    shard: Option<usize>,
    steps: u64,
    resume_at: Option<u64>,
) -> Params {
    let labeled = labeled_of(data);
    let make = || match shard {
        None => Trainer::with_data(be, cfg.clone(), data, None, labeled.clone()).unwrap(),
        Some(s) => Trainer::streamed(be, cfg.clone(), data, StreamSource { source: source.clone(), shard_steps: s }, None, labeled.clone())
            .unwrap(),
    };
    let mut t = make();
    let first = resume_at.unwrap_or(steps);
    for _ in 0..first {
        t.step(be).unwrap();
    }
    if first < steps {
        let w = t.weights(be).unwrap();
        let mut t2 = make();
        t2.load_weights(be, &w, std::path::Path::new("memory")).unwrap();
        t2.continue_from(first, 0);
        for _ in first..steps {
            t2.step(be).unwrap();
        }
        t = t2;
    }
    t.take_losses(be).unwrap();
    t.store.read(be).unwrap()
}

fn assert_same(a: &Params, b: &Params, tol: f32, what: &str) {
    assert_eq!(a.len(), b.len());
    for ((n, _, x), (_, _, y)) in a.iter().zip(b) {
        for (k, (p, q)) in x.iter().zip(y).enumerate() {
            let ok = if tol == 0.0 { p.to_bits() == q.to_bits() } else { (p - q).abs() <= tol * (1.0 + p.abs()) };
            assert!(ok, "{what}: parameter {n}[{k}]: resident {p}, streamed {q}");
        }
    }
}

/// Resident vs streamed (shards of 1 and 3 steps, and a resume mid-shard) on one backend.
fn check_all<B: Backend>(be: &B, cfg: &TrainConfig, data: TrainData<'_>, source: Arc<dyn RowSource>, tol: f32, what: &str) {
    // steps per epoch: n=40 rows, batch 8 (4 unlabeled rows per SS batch) -> 10; 14 steps cross
    // an epoch and are no multiple of 3
    let steps = 14;
    let resident = train(be, cfg, data, source.clone(), None, steps, None);
    for shard in [1, 3] {
        let streamed = train(be, cfg, data, source.clone(), Some(shard), steps, None);
        assert_same(&resident, &streamed, tol, &format!("{what}, shards of {shard} steps"));
    }
    let resumed = train(be, cfg, data, source.clone(), Some(3), steps, Some(5));
    assert_same(&resident, &resumed, tol, &format!("{what}, shards of 3 steps resumed at step 5"));
}

fn cases() -> Vec<(TrainConfig, Dataset, SeriesDataset, &'static str)> {
    let img = images(40, 1);
    let table = series(40, 1, 5, 2);
    let windows = series(40, 6, 2, 3);
    let dense_img = config(small(ModelSpec::dense(Kind::Ss, 49, 3)), 8);
    let mut table_spec = small(ModelSpec::dense(Kind::Ss, 5, 3));
    table_spec.real_input = true;
    table_spec.likelihood = Likelihood::Gaussian;
    let rnn = config(small(ModelSpec::rnn(Kind::Ss, 6, 2, 3)), 8);
    vec![
        (dense_img, img.clone(), table.clone(), "dense image model (7x7 u8)"),
        (config(table_spec, 8), img.clone(), table, "dense table model (f32, Gaussian)"),
        (rnn, img, windows, "small RNN"),
    ]
}

fn run_cases<B: Backend>(be: &B, tol: f32) {
    for (cfg, img, ser, what) in cases() {
        if what.starts_with("dense image") {
            let src: Arc<dyn RowSource> = Arc::new(img.clone());
            check_all(be, &cfg, TrainData::Images(&img), src, tol, what);
        } else {
            let src: Arc<dyn RowSource> = Arc::new(ser.clone());
            check_all(be, &cfg, TrainData::Series(&ser), src, tol, what);
        }
    }
}

#[test]
fn streamed_training_equals_resident_on_cpu() {
    run_cases(&CpuBackend::new(), 0.0);
}

#[test]
fn streamed_training_equals_resident_on_gpu() {
    let Some(gpu) = common::gpu() else { return };
    // one backend, same kernels, same inputs: equal up to the adapter's reduction order
    run_cases(gpu, 1e-5);
}

/// A source that feeds the rows of the wrong samples (row i+1 for i) must be caught: the test
/// above would then fail. This guards the guard.
#[test]
fn a_source_feeding_wrong_rows_changes_the_parameters() {
    struct Shifted(Dataset);
    impl RowSource for Shifted {
        fn n(&self) -> usize {
            self.0.n
        }
        fn dim(&self) -> usize {
            self.0.dim()
        }
        fn kind(&self) -> ssvae::train::RowKind {
            ssvae::train::RowKind::U8
        }
        fn gather(&self, rows: &[u32], out: &mut ssvae::train::ShardRows) -> ssvae::error::Result<()> {
            let n = self.0.n as u32;
            let shifted: Vec<u32> = rows.iter().map(|&r| (r + 1) % n).collect();
            self.0.gather(&shifted, out)
        }
    }
    let be = CpuBackend::new();
    let (cfg, img, _, _) = cases().remove(0);
    let resident = train(&be, &cfg, TrainData::Images(&img), Arc::new(img.clone()), None, 5, None);
    let wrong = train(&be, &cfg, TrainData::Images(&img), Arc::new(Shifted(img.clone())), Some(3), 5, None);
    assert!(resident.iter().zip(&wrong).any(|(a, b)| a.2 != b.2), "wrong rows went unnoticed");
}

#[test]
fn a_source_of_the_wrong_shape_is_refused() {
    let be = CpuBackend::new();
    let (cfg, img, _, _) = cases().remove(0);
    let other = images(41, 1);
    let err = Trainer::streamed(
        &be,
        cfg,
        TrainData::Images(&img),
        StreamSource { source: Arc::new(other), shard_steps: 2 },
        None,
        labeled_of(TrainData::Images(&img)),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("does not match dataset 'tiny'"), "{err}");
}

/// This test's own folder (removed when the test passes), made and empty.
fn temp_dir(tag: &str) -> common::TempDir {
    common::TempDir::new("streaming", tag)
}

/// Rows streamed from an NPY on disk, standardised on the fly with statistics from the chunked
/// pass, train exactly as the same windows standardised in memory and held resident.
#[test]
fn disk_rows_train_as_the_same_rows_in_memory() {
    use ssvae::data::{DiskSeries, NpyWriter, Standardizer};
    let dir = temp_dir("disk");
    let raw = series(40, 6, 2, 3);
    let (x, y) = (dir.join("x.npy"), dir.join("y.npy"));
    let mut w = NpyWriter::create(&x, "<f4", &[raw.n, raw.steps, raw.channels]).unwrap();
    w.write_f32(&raw.values).unwrap();
    w.finish().unwrap();
    let mut w = NpyWriter::create(&y, "<i8", &[raw.n]).unwrap();
    w.write_i64(&raw.labels.iter().map(|l| l.map_or(-1, |c| c as i64)).collect::<Vec<_>>()).unwrap();
    w.finish().unwrap();

    let mut disk = DiskSeries::open(&x, Some(&y)).unwrap();
    assert_eq!(disk.labels, raw.labels);
    let fitted = disk.fit_standardizer().unwrap();
    let in_memory = Standardizer::fit(&raw).unwrap();
    assert_eq!(fitted, in_memory, "chunked statistics equal the in-memory ones");
    disk.set_scaling(fitted).unwrap();
    let mut scaled = raw.clone();
    in_memory.apply(&mut scaled).unwrap();

    let be = CpuBackend::new();
    let (cfg, _, _, _) = cases().remove(2);
    let resident = train(&be, &cfg, TrainData::Series(&scaled), Arc::new(scaled.clone()), None, 14, None);
    let hollow = disk.hollow("tiny-series", scaled.class_names.clone());
    let streamed = train(&be, &cfg, TrainData::Series(&hollow), Arc::new(disk), Some(3), 14, None);
    assert_same(&resident, &streamed, 0.0, "RNN on rows streamed from disk");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_npy_input_is_refused_with_the_file_and_the_problem() {
    use ssvae::data::{DiskSeries, NpyWriter};
    let dir = temp_dir("bad");
    let err = |p: &std::path::Path, l: Option<&std::path::Path>| DiskSeries::open(p, l).err().expect("an error").to_string();
    let f8 = dir.join("f8.npy");
    let mut w = NpyWriter::create(&f8, "<f8", &[2, 3]).unwrap();
    w.write_i64(&[0; 6]).unwrap();
    w.finish().unwrap();
    let e = err(&f8, None);
    assert!(e.contains("f8.npy") && e.contains("'<f8'") && e.contains("float32"), "{e}");
    let v = dir.join("v.npy");
    let mut w = NpyWriter::create(&v, "<f4", &[4]).unwrap();
    w.write_f32(&[0.0; 4]).unwrap();
    w.finish().unwrap();
    let e = err(&v, None);
    assert!(e.contains("v.npy") && e.contains("3-D") && e.contains("[4]"), "{e}");
    let cut = dir.join("cut.npy");
    let mut w = NpyWriter::create(&cut, "<f4", &[3, 2]).unwrap();
    w.write_f32(&[0.0; 5]).unwrap();
    w.finish().unwrap();
    let e = err(&cut, None);
    assert!(e.contains("cut.npy") && e.contains("truncated"), "{e}");
    let good = dir.join("good.npy");
    let mut w = NpyWriter::create(&good, "<f4", &[3, 2]).unwrap();
    w.write_f32(&[0.0; 6]).unwrap();
    w.finish().unwrap();
    let lab = dir.join("lab.npy");
    let mut w = NpyWriter::create(&lab, "<i8", &[2]).unwrap();
    w.write_i64(&[0, 1]).unwrap();
    w.finish().unwrap();
    let e = err(&good, Some(&lab));
    assert!(e.contains("lab.npy") && e.contains("3 entries"), "{e}");
    std::fs::write(dir.join("text.npy"), "id,x\n1,2\n").unwrap();
    let e = err(&dir.join("text.npy"), None);
    assert!(e.contains("text.npy") && e.contains("not an NPY file"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
