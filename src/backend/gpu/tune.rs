//! GEMM tile tuning per adapter (`ssvae bench tune`).
//!
//! The best tiling of a GEMM depends on the adapter (register file, workgroup memory, memory
//! bus) and on the shape. The tuner times every candidate tiling of [`GemmTiles::candidates`]
//! that fits the adapter's limits, on each GEMM shape of the model steps it is given, and
//! records the fastest per shape in a JSON file (one section per adapter and driver). Opening
//! a [`GpuBackend`] reads the section of its adapter, if any; shapes not covered fall back to
//! [`GemmTiles::choose`]. The file: `SSVAE_TUNING_FILE`, else
//! `$XDG_CACHE_HOME/ssvae/gemm-tuning.json`, else `$HOME/.cache/ssvae/gemm-tuning.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{AdapterReport, GemmTiles, GpuBackend};
use crate::backend::{Backend, Gemm, Op};
use crate::error::{Error, Result};

/// A GEMM shape as far as tiling is concerned.
pub type ShapeKey = (usize, usize, usize, bool, bool);

pub fn key(g: &Gemm) -> ShapeKey {
    (g.m, g.n, g.k, g.trans_a, g.trans_b)
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TuneEntry {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub tiles: GemmTiles,
    /// Measured with the chosen tiles.
    pub gflops: f64,
    /// Measured with the untuned choice ([`GemmTiles::choose`]), for comparison.
    pub default_gflops: f64,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct AdapterTuning {
    pub adapter: String,
    pub backend: String,
    pub driver: String,
    pub entries: Vec<TuneEntry>,
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct TuningFile {
    pub adapters: Vec<AdapterTuning>,
}

fn same_adapter(t: &AdapterTuning, r: &AdapterReport) -> bool {
    t.adapter == r.name && t.backend == r.backend && t.driver == r.driver
}

/// Where tunings are read and written (see the module documentation).
pub fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SSVAE_TUNING_FILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|p| !p.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("ssvae").join("gemm-tuning.json"))
}

pub fn read_file(path: &Path) -> Result<TuningFile> {
    let s = std::fs::read_to_string(path)
        .map_err(|e| Error::Io { path: path.to_path_buf(), msg: format!("cannot read the GEMM tuning file: {e}") })?;
    serde_json::from_str(&s).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        msg: format!("not a GEMM tuning file (delete it or run `ssvae bench tune` again): {e}"),
    })
}

/// The tuned tiles of this adapter from `path` (nothing when the file does not exist).
/// Entries whose tiles exceed the adapter's limits are dropped.
pub fn load_for(path: &Path, r: &AdapterReport) -> Result<HashMap<ShapeKey, GemmTiles>> {
    if !path.exists() {
        return Ok(HashMap::new());
    }
    let f = read_file(path)?;
    Ok(f.adapters
        .iter()
        .filter(|t| same_adapter(t, r))
        .flat_map(|t| t.entries.iter())
        .filter(|e| fits(&e.tiles, r))
        .map(|e| ((e.m, e.n, e.k, e.trans_a, e.trans_b), e.tiles))
        .collect())
}

/// Whether a tiling fits the adapter's limits.
pub fn fits(t: &GemmTiles, r: &AdapterReport) -> bool {
    t.threads_m * t.threads_n <= r.max_compute_invocations_per_workgroup
        && t.threads_n <= r.max_compute_workgroup_size_x
        && t.workgroup_bytes() <= r.max_compute_workgroup_storage_size
        && t.tile_k.is_power_of_two()
}

/// Times one GEMM with the given tiles: seconds per product, after a warm-up launch, over
/// repeated launches in one submission until `min_seconds` have passed.
pub fn time_tiles(gpu: &GpuBackend, g: Gemm, tiles: Option<GemmTiles>, min_seconds: f64) -> Result<f64> {
    let a = gpu.alloc(g.m * g.k, crate::DType::F32)?;
    let b = gpu.alloc(g.k * g.n, crate::DType::F32)?;
    let c = gpu.alloc(g.m * g.n, crate::DType::F32)?;
    let launch = gpu.prepare_with_tiles(&Op::Gemm(g), &[&a, &b, gpu.placeholder(), &c], tiles)?;
    Ok(crate::backend::timing::time_launch(gpu, &launch, min_seconds)?.1)
}

/// Tunes each distinct shape of `shapes` (bias, activation and scaling do not change the
/// tiling and are ignored). `progress` is called after each shape.
pub fn tune(gpu: &GpuBackend, shapes: &[Gemm], min_seconds: f64, mut progress: impl FnMut(&TuneEntry)) -> Result<Vec<TuneEntry>> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for g in shapes {
        if !seen.insert(key(g)) {
            continue;
        }
        let plain = Gemm::new(g.m, g.n, g.k).trans(g.trans_a, g.trans_b);
        let flops = 2.0 * (g.m * g.n * g.k) as f64;
        let default_secs = time_tiles(gpu, plain, Some(GemmTiles::choose(g.m, g.n)), min_seconds)?;
        let mut best = (GemmTiles::choose(g.m, g.n), default_secs);
        for t in GemmTiles::candidates() {
            if !fits(&t, gpu.adapter()) || (t.vec4 && !super::kernels::vec4_fits(&plain)) || t == best.0 {
                continue;
            }
            let secs = time_tiles(gpu, plain, Some(t), min_seconds)?;
            if secs < best.1 {
                best = (t, secs);
            }
        }
        let e = TuneEntry {
            m: g.m,
            n: g.n,
            k: g.k,
            trans_a: g.trans_a,
            trans_b: g.trans_b,
            tiles: best.0,
            gflops: flops / best.1 / 1e9,
            default_gflops: flops / default_secs / 1e9,
        };
        progress(&e);
        out.push(e);
    }
    Ok(out)
}

/// Merges `entries` into the adapter's section of the file at `path` (created if missing;
/// entries of other shapes and other adapters are kept), written atomically.
pub fn save(path: &Path, r: &AdapterReport, entries: &[TuneEntry]) -> Result<()> {
    let mut f = if path.exists() { read_file(path)? } else { TuningFile::default() };
    let pos = match f.adapters.iter().position(|t| same_adapter(t, r)) {
        Some(p) => p,
        None => {
            f.adapters.push(AdapterTuning {
                adapter: r.name.clone(),
                backend: r.backend.clone(),
                driver: r.driver.clone(),
                entries: Vec::new(),
            });
            f.adapters.len() - 1
        }
    };
    let section = &mut f.adapters[pos];
    for e in entries {
        section.entries.retain(|x| (x.m, x.n, x.k, x.trans_a, x.trans_b) != (e.m, e.n, e.k, e.trans_a, e.trans_b));
        section.entries.push(e.clone());
    }
    crate::fsutil::save_json(path, &f)
}
