//! The `ssvae` command line: clap and dispatch only. Each subcommand lives in `cli/` and maps its
//! flags to the library (`ssvae::run`); library errors are typed, `anyhow` adds context here.

mod cli;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ssvae", version, about = "Semi-supervised variational autoencoders on any desktop GPU")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train a model (no arguments: SS_D on the built-in synthetic dataset). The last line
    /// printed is one JSON object with the results.
    Train(Box<cli::train::TrainArgs>),
    /// Evaluate a saved run on the split it was reported on (its dataset's test split, or the
    /// --validation hold-out it trained with), on the test split (--split test), or on another
    /// dataset's test split.
    Eval(cli::eval::EvalArgs),
    /// Anomaly protocol (paper 3.1.3): train without --anomaly-class K, score the test set
    /// (negative log reconstruction probability), report the ROC AUC of detecting class K.
    Anomaly(Box<cli::train::TrainArgs>),
    /// Predict new samples with a saved run: class names, probabilities, anomaly scores and
    /// latent means, one CSV row per sample.
    Predict(cli::predict::PredictArgs),
    /// Score new samples with a saved run (CSV of anomaly scores).
    Score(cli::score::ScoreArgs),
    /// Correct an anomaly run: marked false positives / negatives become two extra classes,
    /// the model is extended and retrained, scores are adjusted (the paper's equation 6).
    Feedback(cli::feedback::FeedbackArgs),
    /// Generate a PNG grid: one row per class, one column per style.
    Sample(cli::sample::SampleArgs),
    /// PNG plots of a saved run: training curves, ROC curve (anomaly runs), latent scatter.
    Plot(cli::plot::PlotArgs),
    /// Run the paper's protocol for a table over several seeds; writes mean ± std next to the
    /// paper's figures as markdown.
    Reproduce(cli::reproduce::ReproduceArgs),
    /// Write example data in the formats users bring (a folder of images, a table, a sensor
    /// log), for trying the README's recipes.
    Generate(cli::generate::GenerateArgs),
    /// Export a saved run as ONNX (encoder.onnx, decoder.onnx) or a PyTorch module
    /// (ssvae_model.py + weights.safetensors) that take raw data, scaling inside.
    Export(cli::export::ExportArgs),
    /// List the GPU adapters found, with the limits that matter to ssvae.
    Devices(cli::devices::DevicesArgs),
    /// Benchmarks (one JSON line per case, then a markdown table).
    Bench {
        #[command(subcommand)]
        what: cli::bench::BenchCmd,
    },
}

fn main() {
    let result = match Cli::parse().cmd {
        Cmd::Train(a) => cli::train::train(*a),
        Cmd::Eval(a) => cli::eval::eval(a),
        Cmd::Anomaly(a) => cli::train::anomaly(*a),
        Cmd::Predict(a) => cli::predict::predict(a),
        Cmd::Score(a) => cli::score::score(a),
        Cmd::Feedback(a) => cli::feedback::feedback(a),
        Cmd::Sample(a) => cli::sample::sample(a),
        Cmd::Plot(a) => cli::plot::plot(a),
        Cmd::Reproduce(a) => cli::reproduce::reproduce(a),
        Cmd::Devices(a) => cli::devices::devices(a),
        Cmd::Generate(a) => cli::generate::generate(a),
        Cmd::Export(a) => cli::export::export(a),
        Cmd::Bench { what } => cli::bench::bench(what),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every flag and every value of a closed set says what it is.
    #[test]
    fn every_flag_and_value_is_documented() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} --{id}"));
                }
                // (flags' own true/false values need no words)
                for v in a.get_possible_values().iter().filter(|v| !matches!(v.get_name(), "true" | "false")) {
                    if v.get_help().is_none() {
                        missing.push(format!("{path} --{id} {}", v.get_name()));
                    }
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {}", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "ssvae", &mut missing);
        assert!(missing.is_empty(), "undocumented:\n{}", missing.join("\n"));
    }
}
