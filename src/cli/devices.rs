//! `ssvae devices`: the GPU adapters found, with the limits that matter to ssvae.

use anyhow::{bail, Result};
use ssvae::backend::gpu::{list_adapters, tune};

use super::DeviceArgs;

#[derive(clap::Args)]
pub struct DevicesArgs {
    #[command(flatten)]
    dev: DeviceArgs,
    /// Print one JSON object per adapter instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn devices(a: DevicesArgs) -> Result<()> {
    let adapters = list_adapters(&a.dev.gpu_options())?;
    if adapters.is_empty() {
        bail!("{}", ssvae::Error::NoAdapter { detail: format!(" for --backend {:?}", a.dev.backend).to_lowercase() });
    }
    for ad in &adapters {
        if a.json {
            println!("{}", serde_json::to_string(ad)?);
            continue;
        }
        println!("{} [{} / {}] driver: {}", ad.name, ad.backend, ad.device_type, ad.driver);
        println!(
            "    max storage binding {} MiB, max buffer {} MiB, workgroup <= {} invocations (x <= {}), {} KiB workgroup memory, {} workgroups/dim, {} storage buffers/kernel, shader-f16: {}",
            ad.max_storage_buffer_binding_size >> 20,
            ad.max_buffer_size >> 20,
            ad.max_compute_invocations_per_workgroup,
            ad.max_compute_workgroup_size_x,
            ad.max_compute_workgroup_storage_size >> 10,
            ad.max_compute_workgroups_per_dimension,
            ad.max_storage_buffers_per_shader_stage,
            if ad.shader_f16 { "yes" } else { "no" }
        );
        if let Some(path) = tune::default_path() {
            match tune::load_for(&path, ad) {
                Ok(t) if !t.is_empty() => println!("    GEMM tuning: {} shapes in {}", t.len(), path.display()),
                Ok(_) => println!("    GEMM tuning: none (built-in tiles; `ssvae bench tune` measures this adapter's)"),
                Err(e) => println!("    GEMM tuning: unreadable ({e})"),
            }
        }
    }
    Ok(())
}
