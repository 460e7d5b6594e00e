//! `ssvae reproduce <table>`: flags -> `ssvae::run::reproduce::ReproduceOptions` (the tables
//! are run specs there); `--extra` is parsed with `ssvae train`'s flags and applied to every
//! cell's spec. `table12` has its own protocol ([`super::table12`]).

use std::path::PathBuf;

use anyhow::{bail, Result};
use ssvae::run::reproduce::{reproduce as run_reproduce, ReproduceOptions};
use ssvae::run::RunSpec;

use super::train::TrainArgs;
use super::{on_backend, DeviceArgs, Progress};

#[derive(clap::Args)]
pub struct ReproduceArgs {
    /// table3 .. table9 (MNIST, Fashion-MNIST: dense and CNN rows), table10 and table11
    /// (UCI-HAR: the recurrent models), table12 (betaVAE score vs labels on sprites, multi-factor
    /// heads; --rows takes numbers of labels, e.g. 0,1000, and 1000-only for 1000 labeled samples
    /// without unlabeled ones), or semi-unsupervised (M2, GM-DGM and SS_D with labels on half the
    /// MNIST digits), or recipes (ssvae's default recipe vs the paper's protocol vs the ES
    /// sibling, every family, 100 and 1000 labels).
    table: String,
    /// Seeds per cell (the paper used 10 for tables 3-4 and 5 for table 9).
    #[arg(long, default_value_t = 3)]
    seeds: usize,
    /// A reduced protocol (5000 training samples, 1 epoch) that finishes in minutes.
    #[arg(long)]
    quick: bool,
    /// Train every cell for this many epochs instead of the paper's (a reduced protocol; the
    /// table says so).
    #[arg(long)]
    epochs: Option<usize>,
    /// Scale the paper's epochs (SS 10, ES 20, ...) by this factor, keeping their ratio (a
    /// reduced protocol; the table says so).
    #[arg(long, conflicts_with = "epochs")]
    epoch_scale: Option<f64>,
    /// Only the rows whose name contains one of these (e.g. SS_CNN,ES_CNN).
    #[arg(long, value_delimiter = ',')]
    rows: Option<Vec<String>>,
    /// Only the columns with one of these names, exactly (e.g. "100 labels"; the table's
    /// header row lists them).
    #[arg(long, value_delimiter = ',')]
    columns: Option<Vec<String>>,
    /// `ssvae train` flags for every cell (e.g. "--conv 32:3:1,32:3:1,32:3:2 --hidden 256"); the
    /// table records them. table12 takes --alpha, --kl-weight and --latent.
    #[arg(long, allow_hyphen_values = true)]
    extra: Option<String>,
    /// Name of this protocol variant: its runs go to their own folder.
    #[arg(long)]
    tag: Option<String>,
    /// Where run folders and the markdown table go.
    #[arg(long, default_value = "runs/reproduce")]
    out: PathBuf,
    /// Folder holding mnist/, fashion-mnist/ and uci-har/ [default: $SSVAE_DATA].
    #[arg(long)]
    data_root: Option<PathBuf>,
    #[command(flatten)]
    dev: DeviceArgs,
}

/// `--extra`: `ssvae train` flags that change a cell; the ones that choose what a cell is
/// (model, dataset, output folder, resume) are refused.
fn parse_extra(extra: &str) -> Result<TrainArgs> {
    #[derive(clap::Parser)]
    #[command(no_binary_name = true)]
    struct P {
        #[command(flatten)]
        a: TrainArgs,
    }
    let p = <P as clap::Parser>::try_parse_from(extra.split_whitespace()).map_err(|e| anyhow::anyhow!("--extra: {e}"))?;
    let a = p.a;
    for (given, flag) in [
        (a.model.model.is_some(), "--model"),
        (a.data.dataset.is_some(), "--dataset"),
        (a.output.out.is_some(), "--out"),
        (a.training.resume.is_some(), "--resume"),
        (a.training.seed.is_some(), "--seed"),
    ] {
        if given {
            bail!("--extra: {flag} is set by the table for each cell");
        }
    }
    Ok(a)
}

pub fn reproduce(r: ReproduceArgs) -> Result<()> {
    if r.table == "table12" {
        let rows = r.rows.as_deref();
        return on_backend!(r.dev, be => super::table12::run(be, r.seeds, r.quick, r.epochs, rows, r.extra.as_deref(), r.tag.as_deref(), &r.out));
    }
    let extra = r.extra.as_deref().map(parse_extra).transpose()?;
    let customize = |s: &mut RunSpec| -> ssvae::Result<()> {
        if let Some(e) = &extra {
            e.apply(s).map_err(|e| ssvae::Error::Invalid(format!("--extra: {e:#}")))?;
        }
        s.out = None; // the runner names each cell's folder
        Ok(())
    };
    let opts = ReproduceOptions {
        table: r.table.clone(),
        seeds: r.seeds,
        quick: r.quick,
        epochs: r.epochs,
        epoch_scale: r.epoch_scale,
        rows: r.rows.clone(),
        columns: r.columns.clone(),
        extra_description: r.extra.as_ref().map(|e| e.split_whitespace().collect::<Vec<_>>().join(" ")),
        tag: r.tag.clone(),
        out: r.out.clone(),
        data_root: r.data_root.clone(),
    };
    // a line per cell (the runs themselves are quiet); Ctrl-C stops the current cell with a
    // checkpoint, which the same command continues
    let mut progress = Progress::new(false).stop_on_ctrl_c();
    let report = on_backend!(r.dev, be => run_reproduce(be, &opts, &customize, &mut progress)?);
    println!("{}", report.markdown);
    println!("{}", serde_json::json!({"table": r.table, "markdown": report.path, "runs": report.runs, "quick": r.quick}));
    Ok(())
}
