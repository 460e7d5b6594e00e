//! `ssvae reproduce table12`: the SHAPE of the paper's Table 12 (betaVAE score against the
//! number of labeled samples, section 4) on built-in sprites instead of Small-NORB, with a model
//! small enough to train a cell in minutes on a CPU. The paper's dense/CNN for 96x96 images
//! with ~38,000 samples is out of reach there; what carries over is the protocol: one set of
//! hyper-parameters for every N, all five factors labeled on N samples, heads beside the decoder,
//! the betaVAE score on held-out posterior means. Every cell writes its summary.json and is not
//! repeated when it exists, as for the other tables.

use anyhow::{bail, Context, Result};
use ssvae::data::sprites::SPRITE_FACTORS;
use ssvae::eval::factors::{run_factor_experiment, FactorExperiment};
use ssvae::eval::BetaVaeConfig;
use ssvae::graph::exec::Optimizer;
use ssvae::model::{LossNorm, ModelSpec};
use ssvae::Backend;

/// The paper's rows with ~38,000 unlabeled samples: (N labeled, betaVAE score in %).
const PAPER: [(usize, &str); 5] = [(0, "82 ± 0.7"), (100, "76 ± 1.6"), (300, "83 ± 1.8"), (1000, "92 ± 0.6"), (3000, "95 ± 0.6")];
/// The paper's last row: 1,000 labeled samples and no unlabeled ones (the same model trained on
/// the labeled samples alone), betaVAE score in %.
const PAPER_LABELED_ONLY: (usize, &str) = (1000, "87 ± 0.8");
/// `--rows` name of that row.
const LABELED_ONLY_ROW: &str = "1000-only";

/// The fixed hyper-parameters of every cell (see README, "Table 12").
pub struct Protocol {
    pub train_size: usize,
    pub test_size: usize,
    pub epochs: usize,
}

/// The hyper-parameters fixed across a table's cells: the defaults below, or those given with
/// `--extra "--alpha A --kl-weight B --latent L"` (the paper tuned alpha and beta on N = 0 and
/// used beta 0.25 and a 32-dimensional latent).
#[derive(Clone, Copy, Debug)]
pub struct Hyper {
    pub alpha: f32,
    pub kl_weight: f32,
    pub latent: usize,
}

impl Default for Hyper {
    fn default() -> Self {
        Hyper { alpha: ALPHA, kl_weight: KL_WEIGHT, latent: 10 }
    }
}

impl Hyper {
    /// The defaults overridden by `--alpha`, `--kl-weight` and `--latent` in `extra`; any other
    /// argument is an error naming it.
    pub fn parse(extra: Option<&str>) -> Result<Hyper> {
        let mut h = Hyper::default();
        let words: Vec<&str> = extra.unwrap_or("").split_whitespace().collect();
        let mut it = words.iter();
        while let Some(&flag) = it.next() {
            let value = it.next().with_context(|| format!("--extra: {flag} needs a value"))?;
            let bad = || format!("--extra: {flag} {value} is not a valid value");
            match flag {
                "--alpha" => h.alpha = value.parse().with_context(bad)?,
                "--kl-weight" => h.kl_weight = value.parse().with_context(bad)?,
                "--latent" => h.latent = value.parse().with_context(bad)?,
                _ => bail!("--extra: table12 takes --alpha, --kl-weight and --latent, not {flag}"),
            }
        }
        if !(h.alpha >= 0.0 && h.kl_weight > 0.0 && h.latent > 0 && h.alpha.is_finite() && h.kl_weight.is_finite()) {
            bail!("--extra: alpha must be >= 0, the KL weight > 0 and the latent size > 0 (got {h:?})");
        }
        Ok(h)
    }
}

/// One row of the table: `labeled` samples carry all labels; the training set is the
/// protocol's (the rest unlabeled) or, with `labeled_only`, those samples alone.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Row {
    labeled: usize,
    labeled_only: bool,
}

impl Row {
    fn name(&self) -> String {
        if self.labeled_only {
            LABELED_ONLY_ROW.to_string()
        } else {
            self.labeled.to_string()
        }
    }
}

pub fn experiment(p: &Protocol, h: Hyper, labeled: usize, seed: u64) -> FactorExperiment {
    let factors: Vec<usize> = (0..SPRITE_FACTORS.len()).collect();
    let mut model = ModelSpec::multi_factor(64 * 64, &SPRITE_FACTORS.map(|f| f.1));
    model.hidden = vec![512, 256];
    model.latent = h.latent;
    model.loss_norm = LossNorm::Sum;
    model.alpha = h.alpha;
    model.kl_weight = h.kl_weight;
    FactorExperiment {
        model,
        factors,
        train_size: p.train_size,
        test_size: p.test_size,
        labeled,
        // SS epochs: one pass over the unlabeled half-batches (64 rows)
        steps: p.epochs * p.train_size.div_ceil(64),
        batch_size: 128,
        optimizer: Optimizer::rmsprop(5e-4),
        seed,
        beta_vae: BetaVaeConfig::default(),
    }
}

/// What a cell's N<labeled>-s<seed>.json holds (the figures the table reads back).
#[derive(serde::Deserialize)]
struct CellSummary {
    beta_vae_score: f64,
    #[serde(default)]
    head_accuracy: Vec<f64>,
    train_seconds: f64,
}

/// Weight of each head's cross-entropy.
pub const ALPHA: f32 = 100.0;
/// beta of the KL term (summed ELBO).
pub const KL_WEIGHT: f32 = 4.0;

#[allow(clippy::too_many_arguments)]
pub fn run<B: Backend>(
    be: &B,
    seeds: usize,
    quick: bool,
    epochs: Option<usize>,
    rows: Option<&[String]>,
    extra: Option<&str>,
    tag: Option<&str>,
    out: &std::path::Path,
) -> Result<()> {
    if seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let h = Hyper::parse(extra)?;
    let p = if quick {
        Protocol { train_size: 5000, test_size: 2000, epochs: 1 }
    } else {
        Protocol { train_size: 20000, test_size: 5000, epochs: epochs.unwrap_or(3) }
    };
    let mut ns: Vec<Row> = PAPER.iter().map(|r| Row { labeled: r.0, labeled_only: false }).collect();
    ns.push(Row { labeled: PAPER_LABELED_ONLY.0, labeled_only: true });
    if let Some(rows) = rows {
        let names: Vec<String> = rows.iter().map(|r| r.trim_start_matches("N=").to_string()).collect();
        if let Some(bad) = names.iter().find(|r| !ns.iter().any(|n| &n.name() == *r)) {
            bail!("--rows: '{bad}' is not a row of table12 (0, 100, 300, 1000, 3000, or {LABELED_ONLY_ROW}: 1000 labeled, no unlabeled)");
        }
        ns.retain(|n| names.contains(&n.name()));
    }
    let dir =
        out.join(format!("table12-{}{}ep{}", if quick { "quick-" } else { "" }, p.epochs, tag.map_or(String::new(), |t| format!("-{t}"))));
    std::fs::create_dir_all(&dir).with_context(|| format!("--out {}", dir.display()))?;
    let mut md = format!(
        "### Table 12 (built-in sprites, not Small-NORB): betaVAE score (%) vs labeled samples\n\nours: mean ± std over {seeds} seed(s), {} training sprites, {} held-out, dense 4096-512-256, latent {}, heads for all 5 factors (not into the decoder), alpha {}, KL weight {} (summed ELBO), batch 128 (64 labeled + 64 unlabeled; N = 0: 128 unlabeled), RMSprop 5e-4, {} steps ({} SS epochs){}. Backend: {}. Paper (Small-NORB, 38,000 unlabeled) in parentheses.\n\n| # labeled | betaVAE score | head accuracy (shape, scale, rotation, x, y) | train s |\n|---|---|---|---|\n",
        p.train_size,
        p.test_size,
        h.latent,
        h.alpha,
        h.kl_weight,
        p.epochs * p.train_size.div_ceil(64),
        p.epochs,
        if quick { ", QUICK protocol" } else { "" },
        be.describe()
    );
    for &row in &ns {
        let n = row.labeled;
        let (mut scores, mut accs, mut secs) = (Vec::new(), Vec::new(), Vec::new());
        for seed in 0..seeds as u64 {
            let path = dir.join(format!("N{}-s{seed}.json", if row.labeled_only { format!("{n}only") } else { n.to_string() }));
            let summary: CellSummary = match std::fs::read_to_string(&path) {
                Ok(s) => serde_json::from_str(&s).with_context(|| path.display().to_string())?,
                Err(_) => {
                    eprintln!("table12: N = {}, seed {seed}", row.name());
                    let mut e = experiment(&p, h, n, seed);
                    if row.labeled_only {
                        // the same steps and hyper-parameters, on the labeled samples alone
                        e.train_size = n;
                    }
                    let o = run_factor_experiment(be, &e)?;
                    let v = serde_json::json!({
                        "labeled": n, "unlabeled": e.train_size - n, "seed": seed, "beta_vae_score": o.score.test_accuracy, "beta_vae_train": o.score.train_accuracy,
                        "per_factor": o.score.per_factor_test_accuracy, "head_accuracy": o.head_accuracy, "final_losses": o.final_losses,
                        "train_seconds": o.train_seconds, "total_seconds": o.total_seconds,
                    });
                    std::fs::write(&path, serde_json::to_string_pretty(&v)?).with_context(|| path.display().to_string())?;
                    eprintln!("{v}");
                    serde_json::from_value(v)?
                }
            };
            scores.push(summary.beta_vae_score * 100.0);
            accs.push(summary.head_accuracy);
            secs.push(summary.train_seconds);
        }
        let (m, s) = ssvae::run::reproduce::mean_std(&scores);
        let heads = (0..SPRITE_FACTORS.len())
            .map(|k| format!("{:.2}", accs.iter().filter_map(|a| a.get(k)).sum::<f64>() / accs.len() as f64))
            .collect::<Vec<_>>()
            .join(", ");
        let (label, paper) = if row.labeled_only {
            (format!("{n}, no unlabeled"), PAPER_LABELED_ONLY.1)
        } else {
            (n.to_string(), PAPER.iter().find(|r| r.0 == n).map_or("", |r| r.1))
        };
        md += &format!("| {label} | {m:.1} ± {s:.1} ({paper}) | {heads} | {:.0} |\n", secs.iter().sum::<f64>() / secs.len() as f64);
    }
    let path = dir.join("table12.md");
    std::fs::write(&path, &md).with_context(|| path.display().to_string())?;
    println!("{md}");
    Ok(())
}
