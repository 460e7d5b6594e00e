//! `ssvae eval`: a saved run on the split it was reported on (its validation hold-out or its
//! dataset's test split), the test split, or another dataset's test split.

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
    /// The split of the run's dataset: `validation` (the `--validation N` hold-out that the
    /// run was evaluated and reported on) or `test` (the dataset's test split) [default:
    /// validation for a run trained with --validation, else test].
    #[arg(long, value_enum)]
    split: Option<SplitArg>,
    #[command(flatten)]
    dev: DeviceArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SplitArg {
    /// The last N training samples that `train --validation N` held out and reported on.
    Validation,
    /// The dataset's test split (read once, when the settings are chosen).
    Test,
}

pub fn eval(a: EvalArgs) -> Result<()> {
    on_backend!(a.dev, be => run_eval(be, a))
}

fn run_eval<B: Backend>(be: &B, a: EvalArgs) -> Result<()> {
    let t0 = Instant::now();
    let run = Run::open(be, &a.run)?;
    let own = run.config.spec.data.dataset;
    let dataset = a.dataset.unwrap_or(own);
    let held_out = run.config.spec.data.validation;
    let which = match (a.split, held_out) {
        (Some(SplitArg::Validation), _) if dataset != own => anyhow::bail!(
            "--split validation: only the run's own dataset ({}) has a validation hold-out, not --dataset {}",
            own.as_str(),
            dataset.as_str()
        ),
        (Some(SplitArg::Validation), None) => anyhow::bail!(
            "--split validation: {} was trained without --validation N, so it has no validation hold-out; use --split test",
            a.run.display()
        ),
        (Some(s), _) => s,
        (None, Some(_)) if dataset == own => SplitArg::Validation,
        (None, _) => SplitArg::Test,
    };
    let split = match which {
        SplitArg::Validation => run.load_run_splits(a.data_dir.as_deref())?,
        SplitArg::Test => run.load_data(Some(dataset), a.data_dir.as_deref())?,
    };
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
            "split": if which == SplitArg::Validation { "validation" } else { "test" },
            "accuracy": r.accuracy, "log_loss": r.log_loss, "test_rec": r.rec, "test_kl": r.kl, "n": r.n,
            "cluster": cluster,
            "seconds": secs, "samples_per_s": r.n as f64 / secs, "backend": backend, "adapter": be.describe(),
        })
    );
    Ok(())
}
