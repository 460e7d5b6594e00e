//! One error type for the library. Every message names what went wrong and what the user can do
//! about it; the CLI adds context with `anyhow` at its edge only.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no GPU adapter found{detail}. Install a Vulkan, Metal or DX12 driver (on Linux without a GPU: `apt-get install mesa-vulkan-drivers` gives the lavapipe software GPU), or use `--backend cpu`")]
    NoAdapter { detail: String },

    #[error("cannot open a device on adapter '{adapter}': {msg}")]
    DeviceRequest { adapter: String, msg: String },

    #[error("buffer '{what}' needs {bytes} bytes, over the adapter's limit of {limit} bytes per storage binding ({adapter}); use a smaller batch size or layer width")]
    BufferTooLarge { what: String, bytes: u64, limit: u64, adapter: String },

    #[error("shader {file} (entry point {entry}) failed to compile: {msg}")]
    Shader { file: String, entry: String, msg: String },

    #[error(
        "the GPU device {adapter} cannot run kernel {kernel}: {msg}. Use another API (--backend vulkan, metal or dx12) or --backend cpu"
    )]
    Unsupported { adapter: String, kernel: String, msg: String },

    #[error("shape mismatch in {op}: {msg}")]
    Shape { op: &'static str, msg: String },

    #[error("GPU error: {0}")]
    Gpu(String),

    #[error("{path}: {msg}")]
    Io { path: PathBuf, msg: String },

    #[error("{0}")]
    Invalid(String),

    #[error("training diverged: the loss became {value} between steps {from_step} and {to_step}; stopped, and the last good checkpoint (if any) was kept. Try a lower --lr or --alpha")]
    Diverged { from_step: u64, to_step: u64, value: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn shape(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Shape { op, msg: msg.into() }
    }
}
