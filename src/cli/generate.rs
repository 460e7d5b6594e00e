//! `ssvae generate`: example data in the formats users bring (see `ssvae::data::make`), for
//! trying the README's recipes without data of one's own.

use std::path::PathBuf;

use anyhow::Result;
use ssvae::data::make::{self, ExampleSizes};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExampleKind {
    /// A folder of RGB photos: train/<class>/, train/unlabeled/, test/<class>/, new/.
    Images,
    /// A table of vibration features: train.csv (label column mostly empty), test.csv, new.csv.
    Table,
    /// A sensor log, one row per time step: train.csv (recording, acc_x, acc_y, acc_z, label),
    /// test.csv, new.csv.
    SensorLog,
    /// Many vibration windows as NPY for streamed training: train.npy (f32 [n, window, 3]),
    /// train_labels.npy (int64, -1 = unlabeled; --labeled-per-class per class), test.npy,
    /// test_labels.npy (--n-test windows, all labeled). Written in chunks (bounded memory).
    SensorWindows,
}

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// What to write.
    #[arg(value_enum)]
    kind: ExampleKind,
    /// The folder to write into (created).
    #[arg(long)]
    out: PathBuf,
    /// Labeled training samples per class.
    #[arg(long, default_value_t = ExampleSizes::default().labeled_per_class)]
    labeled_per_class: usize,
    /// Unlabeled training samples.
    #[arg(long, default_value_t = ExampleSizes::default().unlabeled)]
    unlabeled: usize,
    /// Test samples per class.
    #[arg(long, default_value_t = ExampleSizes::default().test_per_class)]
    test_per_class: usize,
    /// New, unlabeled samples to predict.
    #[arg(long, default_value_t = ExampleSizes::default().new)]
    new: usize,
    /// Number of classes (images: up to 10, sensor data: up to 5).
    #[arg(long, default_value_t = ExampleSizes::default().classes)]
    classes: usize,
    /// Sensor log: rows (time steps) per recording.
    #[arg(long, default_value_t = 128)]
    window: usize,
    /// Sensor windows: training windows.
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Sensor windows: test windows.
    #[arg(long, default_value_t = 2_000)]
    n_test: usize,
    /// Seed of everything generated.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn generate(a: GenerateArgs) -> Result<()> {
    let sizes = ExampleSizes {
        labeled_per_class: a.labeled_per_class,
        unlabeled: a.unlabeled,
        test_per_class: a.test_per_class,
        new: a.new,
        classes: a.classes,
    };
    match a.kind {
        ExampleKind::Images => make::write_image_folder(&a.out, &sizes, a.seed)?,
        ExampleKind::Table => make::write_table(&a.out, &sizes, a.seed)?,
        ExampleKind::SensorLog => make::write_sensor_log(&a.out, &sizes, a.seed, a.window)?,
        ExampleKind::SensorWindows => {
            // "100 labeled per class" unless asked otherwise (the images' default is 10)
            let per_class = if a.labeled_per_class == ExampleSizes::default().labeled_per_class { 100 } else { a.labeled_per_class };
            make::write_sensor_windows(&a.out, a.n, a.n_test, per_class, a.window, a.seed)?
        }
    }
    println!("{}", serde_json::json!({"written": a.out, "kind": format!("{:?}", a.kind).to_lowercase()}));
    Ok(())
}
