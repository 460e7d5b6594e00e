//! The run folder's checkpoint: the configuration, the weights, the optimizer state and where
//! training stands, committed as ONE unit, so a run folder is always consistent whatever
//! moment it is interrupted at (a `kill -9`, a full disk, a power cut).
//!
//! ```text
//! RUN/checkpoint/            the last complete checkpoint
//!     config.json            RunConfig: the spec, the trained configuration, progress
//!     model.safetensors      weights only (what a shared model needs)
//!     optimizer.safetensors  RMSprop / Adam state per parameter
//!     best.safetensors       runs with model selection or weight averaging: the run's model
//!                            (the selected epoch's weights, or the mean of the last epochs')
//!     manifest.json          every file's length and FNV-1a-64 checksum
//! RUN/checkpoint.prev/       the one before (kept until a newer one is complete)
//! ```
//!
//! A commit writes `checkpoint.tmp/` (each file flushed), then moves `checkpoint/` to
//! `checkpoint.prev/` and renames `checkpoint.tmp/` into place. Renames are atomic, so every
//! interruption leaves a complete `checkpoint/` or, between the two renames, a complete
//! `checkpoint.prev/`. Opening verifies the manifest and falls back to `checkpoint.prev/` with a
//! message when the newest is missing, half-written or damaged. Folders written before this
//! layout (config.json and model.safetensors at the top) still open.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::train::checkpoint::{self, Weights, CONFIG_FILE, MODEL_FILE};

use super::spec::RunConfig;

pub const CHECKPOINT_DIR: &str = "checkpoint";
pub const PREVIOUS_DIR: &str = "checkpoint.prev";
const STAGING_DIR: &str = "checkpoint.tmp";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const MANIFEST_FILE: &str = "manifest.json";
/// The run's model when it is not the last epoch's weights: the epoch model selection chose
/// (`--validation-labels`) or the weight average (`--average-weights`).
pub const BEST_FILE: &str = "best.safetensors";

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io { path: path.to_path_buf(), msg: e.to_string() }
}

/// FNV-1a, 64 bits: enough to catch a torn write or flipped bits (not an adversary).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ManifestEntry {
    file: String,
    bytes: u64,
    fnv1a64: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Manifest {
    files: Vec<ManifestEntry>,
}

/// A checkpoint as read: the configuration, the weights with their optimizer state, and the
/// folder they came from.
pub struct Checkpoint {
    pub config: RunConfig,
    pub weights: Weights,
    /// Runs with model selection: the selected epoch's weights (parameters only).
    pub best: Option<Weights>,
    pub from: PathBuf,
}

/// Whether `dir` holds a run (a checkpoint of either layout).
pub fn has_run(dir: &Path) -> bool {
    dir.join(CHECKPOINT_DIR).join(MANIFEST_FILE).exists()
        || dir.join(PREVIOUS_DIR).join(MANIFEST_FILE).exists()
        || dir.join(MODEL_FILE).exists()
}

/// Commits `config` and `w` as the run's checkpoint (see the module comment); a selected
/// epoch's weights of the current checkpoint are carried over.
pub fn commit(dir: &Path, config: &RunConfig, w: &Weights) -> Result<()> {
    let carried = std::fs::read(dir.join(CHECKPOINT_DIR).join(BEST_FILE)).ok();
    commit_files(dir, config, w, carried)
}

/// As [`commit`], with `best` (the run's model: the selected epoch's parameters or the weight
/// average) as best.safetensors.
pub fn commit_with_best(dir: &Path, config: &RunConfig, w: &Weights, best: Option<&Weights>) -> Result<()> {
    let bytes = match best {
        Some(b) => Some(checkpoint::weights_bytes(
            &dir.join(STAGING_DIR).join(BEST_FILE),
            &Weights { params: b.params.clone(), ..Weights::default() },
        )?),
        None => std::fs::read(dir.join(CHECKPOINT_DIR).join(BEST_FILE)).ok(),
    };
    commit_files(dir, config, w, bytes)
}

fn commit_files(dir: &Path, config: &RunConfig, w: &Weights, best: Option<Vec<u8>>) -> Result<()> {
    let staging = dir.join(STAGING_DIR);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| io(&staging, e))?; // an interrupted commit
    }
    std::fs::create_dir_all(&staging).map_err(|e| io(&staging, e))?;
    let params = Weights { params: w.params.clone(), ..Weights::default() };
    let state = Weights { state1: w.state1.clone(), state2: w.state2.clone(), ..Weights::default() };
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        (CONFIG_FILE, serde_json::to_vec_pretty(config).map_err(|e| io(&staging.join(CONFIG_FILE), e))?),
        (MODEL_FILE, checkpoint::weights_bytes(&staging.join(MODEL_FILE), &params)?),
        (OPTIMIZER_FILE, checkpoint::weights_bytes(&staging.join(OPTIMIZER_FILE), &state)?),
    ];
    if let Some(b) = best {
        files.push((BEST_FILE, b));
    }
    let mut manifest = Manifest { files: Vec::new() };
    for (name, bytes) in &files {
        write_atomic(&staging.join(name), bytes)?;
        manifest.files.push(ManifestEntry {
            file: name.to_string(),
            bytes: bytes.len() as u64,
            fnv1a64: format!("{:016x}", fnv1a64(bytes)),
        });
    }
    let m = serde_json::to_vec_pretty(&manifest).map_err(|e| io(&staging.join(MANIFEST_FILE), e))?;
    write_atomic(&staging.join(MANIFEST_FILE), &m)?;
    let (current, previous) = (dir.join(CHECKPOINT_DIR), dir.join(PREVIOUS_DIR));
    if current.join(MANIFEST_FILE).exists() {
        if previous.exists() {
            std::fs::remove_dir_all(&previous).map_err(|e| io(&previous, e))?;
        }
        std::fs::rename(&current, &previous).map_err(|e| io(&current, e))?;
    } else if current.exists() {
        std::fs::remove_dir_all(&current).map_err(|e| io(&current, e))?; // not a checkpoint
    }
    std::fs::rename(&staging, &current).map_err(|e| io(&staging, e))?;
    // the renames themselves reach the disk with the folder's metadata
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Makes `dir` a run folder holding `config` and `w` as its first checkpoint. A `dir` that does
/// not exist yet is built beside it and renamed into place, so it never exists without a
/// checkpoint; an existing (empty) one gets the checkpoint committed into it.
pub fn create_with(dir: &Path, config: &RunConfig, w: &Weights) -> Result<()> {
    if dir.exists() {
        return commit(dir, config, w);
    }
    let name = dir.file_name().map_or("run".into(), |n| n.to_string_lossy().to_string());
    let partial = dir.with_file_name(format!(".{name}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| io(&partial, e))?; // an earlier attempt
    }
    std::fs::create_dir_all(&partial).map_err(|e| io(&partial, format!("--out: {e}")))?;
    commit(&partial, config, w)?;
    std::fs::rename(&partial, dir).map_err(|e| io(dir, format!("--out: {e}")))
}

/// Reads and verifies one checkpoint folder.
fn read_checkpoint(folder: &Path) -> Result<Checkpoint> {
    let mpath = folder.join(MANIFEST_FILE);
    let manifest: Manifest = checkpoint::load_json(&mpath)?;
    let read = |name: &str| -> Result<Vec<u8>> {
        let path = folder.join(name);
        let entry = manifest.files.iter().find(|e| e.file == name).ok_or_else(|| io(&mpath, format!("lists no {name}")))?;
        let bytes = std::fs::read(&path).map_err(|e| io(&path, format!("cannot read: {e}")))?;
        if bytes.len() as u64 != entry.bytes || format!("{:016x}", fnv1a64(&bytes)) != entry.fnv1a64 {
            return Err(io(&path, format!("does not match its checksum in {MANIFEST_FILE} (a torn write or a damaged disk)")));
        }
        Ok(bytes)
    };
    let config_bytes = read(CONFIG_FILE)?;
    let (model, optimizer) = (read(MODEL_FILE)?, read(OPTIMIZER_FILE)?);
    let config = RunConfig::from_json(&folder.join(CONFIG_FILE), &config_bytes)?;
    let mut weights = checkpoint::weights_from_bytes(&folder.join(MODEL_FILE), &model)?;
    let state = checkpoint::weights_from_bytes(&folder.join(OPTIMIZER_FILE), &optimizer)?;
    weights.state1 = state.state1;
    weights.state2 = state.state2;
    let best = match manifest.files.iter().any(|e| e.file == BEST_FILE) {
        true => Some(checkpoint::weights_from_bytes(&folder.join(BEST_FILE), &read(BEST_FILE)?)?),
        false => None,
    };
    Ok(Checkpoint { config, weights, best, from: folder.to_path_buf() })
}

/// The run's newest complete checkpoint: `checkpoint/`, else (with a note on standard error)
/// `checkpoint.prev/`, else the layout before checkpoints were folders.
pub fn load(dir: &Path) -> Result<Checkpoint> {
    let (current, previous) = (dir.join(CHECKPOINT_DIR), dir.join(PREVIOUS_DIR));
    let newest = read_checkpoint(&current);
    let err = match newest {
        Ok(c) => return Ok(c),
        Err(e) => e,
    };
    if previous.join(MANIFEST_FILE).exists() {
        let c = read_checkpoint(&previous)
            .map_err(|e2| Error::Invalid(format!("{}: no complete checkpoint: {err}; and {e2}", dir.display())))?;
        if current.exists() {
            eprintln!(
                "note: {}: {err}; using the previous checkpoint ({} epochs, {} steps)",
                dir.display(),
                c.config.epochs_done,
                c.config.steps_done
            );
        }
        return Ok(c);
    }
    if dir.join(CONFIG_FILE).exists() || dir.join(MODEL_FILE).exists() {
        // the layout before checkpoint folders: config.json and model.safetensors side by side
        let config = RunConfig::load_file(&dir.join(CONFIG_FILE))?;
        let path = dir.join(MODEL_FILE);
        if !path.exists() {
            return Err(Error::Invalid(format!(
                "{}: no {MODEL_FILE} in this folder (was training interrupted before the first epoch ended?)",
                dir.display()
            )));
        }
        return Ok(Checkpoint { config, weights: checkpoint::load_weights(&path)?, best: None, from: dir.to_path_buf() });
    }
    if !current.exists() {
        return Err(Error::Invalid(format!("{}: not a run folder (no {CHECKPOINT_DIR}/{CONFIG_FILE}, nor {CONFIG_FILE})", dir.display())));
    }
    Err(err)
}

impl RunConfig {
    /// The configuration of the run in `dir` (its newest complete checkpoint, see [`load`]).
    pub fn load(dir: &Path) -> Result<RunConfig> {
        Ok(load(dir)?.config)
    }
}
