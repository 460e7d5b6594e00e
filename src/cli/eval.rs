//! `ssvae eval`: a saved run on the test split of its dataset (or another one's).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use ssvae::run::{Loaded, Run};
use ssvae::Backend;

use super::train::dataset_parser;
use super::{on_backend, DeviceArgs};

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A folder written by `ssvae train`.
    #[arg(long)]
    run: PathBuf,
    /// Evaluate on this dataset's test split instead of the run's.
    #[arg(long, value_parser = dataset_parser())]
    dataset: Option<ssvae::run::DatasetName>,
    /// Folder holding that dataset's files [default: the run's, else $SSVAE_DATA/<dataset>].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    dev: DeviceArgs,
}

pub fn eval(a: EvalArgs) -> Result<()> {
    on_backend!(a.dev, be => run_eval(be, a))
}

fn run_eval<B: Backend>(be: &B, a: EvalArgs) -> Result<()> {
    let t0 = Instant::now();
    let run = Run::open(be, &a.run)?;
    let dataset = a.dataset.unwrap_or(run.config.spec.data.dataset);
    let split = run.load_data(Some(dataset), a.data_dir.as_deref())?;
    let r = run.evaluate(be, split.test())?;
    let (spec, train) = (run.model(), &run.config.train);
    // cluster-and-label as at the end of training (semi-unsupervised runs, M2, GM-DGM), with
    // the slots mapped on the dataset's whole training split
    let cluster = match &split {
        Loaded::Images(images) if spec.has_classifier() && (train.labeled_classes.is_some() || spec.sums_over_classes()) => {
            let lc = train.labeled_classes.clone().unwrap_or_default();
            Some(ssvae::eval::cluster::cluster_scores(
                be,
                spec,
                &run.store,
                &images.train,
                &images.test,
                &lc,
                train.eval_batch,
                train.seed,
            )?)
        }
        _ => None,
    };
    let secs = t0.elapsed().as_secs_f64();
    let backend = if be.describe().starts_with("cpu (") { "cpu" } else { "gpu" };
    println!(
        "{}",
        serde_json::json!({
            "model": spec.name(), "dataset": dataset.as_str(), "labels": run.config.labels_used, "epochs": run.config.epochs_done,
            "accuracy": r.accuracy, "log_loss": r.log_loss, "test_rec": r.rec, "test_kl": r.kl, "n": r.n,
            "cluster": cluster,
            "seconds": secs, "samples_per_s": r.n as f64 / secs, "backend": backend, "adapter": be.describe(),
        })
    );
    Ok(())
}
