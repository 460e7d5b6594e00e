//! The wgpu backend (Vulkan, Metal, DX12, GL).
//!
//! Adapter choice: `GpuOptions` (the CLI's `--backend`), else `WGPU_BACKEND`; then
//! `WGPU_ADAPTER_NAME` (substring, case-insensitive); then the best device type (discrete >
//! integrated > virtual > CPU). Shader modules and pipelines are compiled once and cached by
//! (file, entry point, constants). A prepared launch owns its parameter block and bind group,
//! so replaying a training step allocates nothing; `run` records every launch of a list into
//! one compute pass and one submission. wgpu errors are caught with error scopes where they can
//! be attributed (shader compilation, pipeline creation) and by a device-wide handler
//! otherwise, and surface as typed errors, never panics.

pub mod kernels;
pub mod tune;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

pub use kernels::GemmTiles;

use super::{next_buffer_id, Access, Backend, BufferLike, DType, Op};
use crate::error::{Error, Result};

/// How to pick the adapter.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// API list such as "vulkan", "metal", "dx12", "gl" (comma separated); `None` reads
    /// `WGPU_BACKEND`, then allows all.
    pub backends: Option<String>,
    /// Substring of the adapter name; `None` reads `WGPU_ADAPTER_NAME`.
    pub adapter_name: Option<String>,
    /// Force GEMM tile sizes (benchmarks and tests); `None` picks per shape: the adapter's
    /// tuning (`ssvae bench tune`) where it covers the shape, else [`GemmTiles::choose`].
    pub gemm_tiles: Option<GemmTiles>,
    /// The tuning file to read; `None` reads [`tune::default_path`].
    pub tuning_file: Option<std::path::PathBuf>,
    /// Ignore any tuning file.
    pub no_tuning: bool,
    /// Never use the vec4 GEMM kernel (benchmarks: what vec4 brings).
    pub no_vec4: bool,
    /// Open the device with these limits instead of the adapter's (each must be within the
    /// adapter's): tests use `wgpu::Limits::downlevel_defaults()` to see how the kernels fare
    /// on a minimal GLES 3.1 device on whatever adapter the machine has.
    pub limits: Option<wgpu::Limits>,
    /// Time every kernel on the device (`ssvae bench train --profile`): each launch runs in its
    /// own compute pass with timestamps at its start and end, and `run` waits for the device.
    /// Needs an adapter with timestamp queries (`wgpu::Features::TIMESTAMP_QUERY`).
    pub profile: bool,
}

/// What `ssvae devices` prints for an adapter.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdapterReport {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroup_size_x: u32,
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_workgroups_per_dimension: u32,
    /// Storage buffers one kernel may bind (WebGPU guarantees 8; GLES 3.1 drivers may give 4).
    pub max_storage_buffers_per_shader_stage: u32,
    pub shader_f16: bool,
}

fn report(a: &wgpu::Adapter) -> AdapterReport {
    let i = a.get_info();
    let l = a.limits();
    AdapterReport {
        name: i.name,
        backend: format!("{:?}", i.backend),
        device_type: format!("{:?}", i.device_type),
        driver: format!("{} {}", i.driver, i.driver_info).trim().to_string(),
        max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
        max_buffer_size: l.max_buffer_size,
        max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
        max_compute_workgroup_size_x: l.max_compute_workgroup_size_x,
        max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
        max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
        max_storage_buffers_per_shader_stage: l.max_storage_buffers_per_shader_stage,
        shader_f16: a.features().contains(wgpu::Features::SHADER_F16),
    }
}

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

/// The APIs to look at: `opt`, else `WGPU_BACKEND`, else all. A list that names no API (a typo
/// such as `WGPU_BACKEND=banana`) is an error, not an empty search that ends on the CPU.
fn backends(opt: &Option<String>) -> Result<wgpu::Backends> {
    let (list, from) = match opt {
        Some(list) => (list.clone(), "--backend"),
        None => match std::env::var("WGPU_BACKEND") {
            Ok(v) if !v.trim().is_empty() => (v, "WGPU_BACKEND"),
            _ => return Ok(wgpu::Backends::all()),
        },
    };
    let b = wgpu::Backends::from_comma_list(&list);
    if b.is_empty() {
        return Err(Error::Invalid(format!("{from} '{list}' names no GPU API; use vulkan, metal, dx12 or gl (comma separated)")));
    }
    Ok(b)
}

/// All adapters visible with these options (for `ssvae devices`).
pub fn list_adapters(opts: &GpuOptions) -> Result<Vec<AdapterReport>> {
    let inst = instance();
    Ok(pollster::block_on(inst.enumerate_adapters(backends(&opts.backends)?)).iter().map(report).collect())
}

fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

/// A device buffer of 4-byte elements, or a view of one.
#[derive(Clone, Debug)]
pub struct GpuBuf {
    inner: Arc<GpuBufInner>,
    offset: usize,
    len: usize,
}

#[derive(Debug)]
struct GpuBufInner {
    id: u64,
    dtype: DType,
    buffer: wgpu::Buffer,
}

impl BufferLike for GpuBuf {
    fn len(&self) -> usize {
        self.len
    }
    fn dtype(&self) -> DType {
        self.inner.dtype
    }
    fn id(&self) -> u64 {
        self.inner.id
    }
    fn offset(&self) -> usize {
        self.offset
    }
}

impl GpuBuf {
    fn new(buffer: wgpu::Buffer, len: usize, dtype: DType) -> Self {
        GpuBuf { inner: Arc::new(GpuBufInner { id: next_buffer_id(), dtype, buffer }), offset: 0, len }
    }
    pub fn raw(&self) -> &wgpu::Buffer {
        &self.inner.buffer
    }
    fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.inner.buffer,
            offset: (self.offset * 4) as u64,
            size: std::num::NonZeroU64::new((self.len.max(1) * 4) as u64),
        })
    }
}

/// A parameter block padded with zeros to a multiple of 16 bytes (the size of a uniform block
/// on backends with std140-like rules).
fn uniform_bytes(params: &[u8]) -> Vec<u8> {
    let mut v = params.to_vec();
    v.resize(params.len().div_ceil(16).max(1) * 16, 0);
    v
}

struct Pipeline {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct PipelineKey {
    file: &'static str,
    entry: &'static str,
    constants: Vec<(&'static str, u64)>,
    access: Vec<Access>,
}

/// A prepared GPU launch: everything needed to record one dispatch.
pub struct GpuLaunch {
    pipeline: Arc<Pipeline>,
    bind_group: wgpu::BindGroup,
    _params: wgpu::Buffer,
    _bufs: Vec<GpuBuf>,
    workgroups: (u32, u32),
    /// Its row in a profile (`Op::profile_key`; GEMMs with their shader file); empty when the
    /// backend does not profile.
    key: String,
}

pub struct GpuBackend {
    device: wgpu::Device,
    queue: wgpu::Queue,
    report: AdapterReport,
    limits: wgpu::Limits,
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<PipelineKey, Arc<Pipeline>>>,
    placeholder: GpuBuf,
    lost_or_failed: Arc<Mutex<Option<String>>>,
    tiles: Option<GemmTiles>,
    tuned: HashMap<tune::ShapeKey, GemmTiles>,
    no_vec4: bool,
    gemm_log: Mutex<Vec<super::Gemm>>,
    /// Per-kernel device time when profiling: (launches, nanoseconds) by `Op::profile_key`.
    profile: Option<Mutex<HashMap<String, (u64, f64)>>>,
}

impl GpuBackend {
    /// Opens the adapter chosen by `opts` and the environment.
    pub fn new(opts: &GpuOptions) -> Result<Self> {
        let inst = instance();
        let want = backends(&opts.backends)?;
        let adapters = pollster::block_on(inst.enumerate_adapters(want));
        let seen: Vec<String> = adapters.iter().map(|a| format!("{} ({:?})", a.get_info().name, a.get_info().backend)).collect();
        let name = opts.adapter_name.clone().or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok()).filter(|s| !s.is_empty());
        let mut candidates: Vec<wgpu::Adapter> = adapters
            .into_iter()
            .filter(|a| name.as_ref().is_none_or(|n| a.get_info().name.to_lowercase().contains(&n.to_lowercase())))
            .collect();
        candidates.sort_by_key(|a| rank(a.get_info().device_type));
        let adapter = candidates.into_iter().next().ok_or_else(|| Error::NoAdapter {
            detail: match (&name, seen.is_empty()) {
                (_, true) => format!(" for backends {want:?}"),
                (Some(n), false) => format!(" whose name contains '{n}' (adapters seen: {})", seen.join(", ")),
                (None, false) => String::new(),
            },
        })?;
        let mut report = report(&adapter);
        let limits = opts.limits.clone().unwrap_or_else(|| adapter.limits());
        if opts.limits.is_some() {
            report.max_storage_buffers_per_shader_stage = limits.max_storage_buffers_per_shader_stage;
            report.max_compute_invocations_per_workgroup = limits.max_compute_invocations_per_workgroup;
            report.max_compute_workgroup_storage_size = limits.max_compute_workgroup_storage_size;
        }
        if opts.profile && !adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Err(Error::Unsupported {
                adapter: format!("{} ({})", report.name, report.backend),
                kernel: "--profile".into(),
                msg: "it has no timestamp queries, so kernels cannot be timed on it".into(),
            });
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("ssvae"),
            required_features: if opts.profile { wgpu::Features::TIMESTAMP_QUERY } else { wgpu::Features::empty() },
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::DeviceRequest { adapter: report.name.clone(), msg: e.to_string() })?;

        let lost_or_failed = Arc::new(Mutex::new(None));
        let sink = lost_or_failed.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
            if s.is_none() {
                *s = Some(e.to_string());
            }
        }));

        let placeholder_buf = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("placeholder"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        // 4 elements: a vec4 kernel (gemm_vec4.wgsl) binds it as one 16-byte element
        let placeholder = GpuBuf::new(placeholder_buf, 4, DType::F32);
        // A damaged tuning file must not stop training: it is reported and ignored.
        let tuned = match opts.tuning_file.clone().or_else(tune::default_path).filter(|_| !opts.no_tuning) {
            Some(path) => tune::load_for(&path, &report).unwrap_or_else(|e| {
                eprintln!("warning: {e}; using the default GEMM tiles");
                HashMap::new()
            }),
            None => HashMap::new(),
        };
        Ok(GpuBackend {
            device,
            queue,
            report,
            limits,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
            placeholder,
            lost_or_failed,
            tiles: opts.gemm_tiles,
            tuned,
            no_vec4: opts.no_vec4,
            gemm_log: Mutex::new(Vec::new()),
            profile: opts.profile.then(|| Mutex::new(HashMap::new())),
        })
    }

    /// (kernel, launches, device time), most expensive first; empty unless the backend was
    /// opened with `GpuOptions::profile`. GEMMs are named with the shader file that ran them.
    pub fn profile_report(&self) -> Vec<(String, u64, std::time::Duration)> {
        let Some(p) = &self.profile else { return Vec::new() };
        let mut v: Vec<_> = p
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, (n, ns))| (k.clone(), *n, std::time::Duration::from_nanos(ns.round() as u64)))
            .collect();
        v.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        v
    }

    /// `run` when profiling: each launch in its own compute pass between two timestamps
    /// (chunks of QUERY_SET_MAX_QUERIES / 2 launches a submission), read back at once.
    fn run_profiled(&self, launches: &[&GpuLaunch], stats: &Mutex<HashMap<String, (u64, f64)>>) -> Result<()> {
        let period = self.queue.get_timestamp_period() as f64; // ns a tick
        for chunk in launches.chunks((wgpu::QUERY_SET_MAX_QUERIES / 2) as usize) {
            let count = 2 * chunk.len() as u32;
            let set =
                self.device.create_query_set(&wgpu::QuerySetDescriptor { label: Some("profile"), ty: wgpu::QueryType::Timestamp, count });
            let bytes = count as u64 * 8;
            let resolved = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile resolve"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let staging = self.readback_buffer("profile readback", bytes);
            let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("step (profiled)") });
            for (i, l) in chunk.iter().enumerate() {
                let writes = wgpu::ComputePassTimestampWrites {
                    query_set: &set,
                    beginning_of_pass_write_index: Some(2 * i as u32),
                    end_of_pass_write_index: Some(2 * i as u32 + 1),
                };
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(&l.key), timestamp_writes: Some(writes) });
                pass.set_pipeline(&l.pipeline.pipeline);
                pass.set_bind_group(0, &l.bind_group, &[]);
                pass.dispatch_workgroups(l.workgroups.0, l.workgroups.1, 1);
            }
            enc.resolve_query_set(&set, 0..count, &resolved, 0);
            enc.copy_buffer_to_buffer(&resolved, 0, &staging, 0, bytes);
            self.queue.submit([enc.finish()]);
            let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&self.read_back(&staging)?);
            let mut stats = stats.lock().unwrap_or_else(|e| e.into_inner());
            for (l, t) in chunk.iter().zip(ticks.chunks_exact(2)) {
                let e = stats.entry(l.key.clone()).or_default();
                e.0 += 1;
                e.1 += t[1].saturating_sub(t[0]) as f64 * period;
            }
        }
        self.check_failed()
    }

    /// `GpuBackend::new` with the environment's choices only.
    pub fn from_env() -> Result<Self> {
        Self::new(&GpuOptions::default())
    }

    pub fn adapter(&self) -> &AdapterReport {
        &self.report
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// How many GEMM shapes the adapter's tuning covers.
    pub fn tuned_shapes(&self) -> usize {
        self.tuned.len()
    }

    /// The tiles a GEMM of this shape runs with.
    pub fn gemm_tiles_for(&self, g: &super::Gemm) -> GemmTiles {
        self.tiles.or_else(|| self.tuned.get(&tune::key(g)).copied()).unwrap_or_else(|| GemmTiles::choose(g.m, g.n))
    }

    /// Every GEMM prepared so far (the shapes of a compiled model step, for the tuner).
    pub fn gemms_prepared(&self) -> Vec<super::Gemm> {
        self.gemm_log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `prepare` with explicit GEMM / convolution tiles (`None`: the usual choice).
    pub fn prepare_with_tiles(&self, op: &Op, bufs: &[&GpuBuf], tiles: Option<GemmTiles>) -> Result<GpuLaunch> {
        op.check(bufs)?;
        let tiles = match op {
            Op::Gemm(g) => {
                let mut log = self.gemm_log.lock().unwrap_or_else(|p| p.into_inner());
                if !log.iter().any(|x| tune::key(x) == tune::key(g)) {
                    log.push(*g);
                }
                drop(log);
                let t = tiles.unwrap_or_else(|| self.gemm_tiles_for(g));
                Some(GemmTiles { vec4: t.vec4 && !self.no_vec4, ..t })
            }
            _ => tiles.or(self.tiles),
        };
        let spec = kernels::spec(op, tiles);
        let access: Vec<Access> = op.slots().iter().map(|s| if s.len == 0 { Access::Read } else { s.access }).collect();
        let pipeline = self.pipeline(&spec, &access)?;
        let workgroups = self.grid(&spec.grid)?;
        let params = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: &uniform_bytes(&spec.params),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: params.as_entire_binding() }];
        for (i, b) in bufs.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.binding() });
        }
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(spec.entry),
            layout: &pipeline.layout,
            entries: &entries,
        });
        let key = match op {
            _ if self.profile.is_none() => String::new(),
            Op::Gemm(_) => format!("{} ({})", op.profile_key(), spec.file),
            _ => op.profile_key(),
        };
        Ok(GpuLaunch { pipeline, bind_group, _params: params, _bufs: bufs.iter().map(|b| (*b).clone()).collect(), workgroups, key })
    }

    fn check_failed(&self) -> Result<()> {
        match self.lost_or_failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(msg) => Err(Error::Gpu(msg)),
            None => Ok(()),
        }
    }

    fn module(&self, file: &'static str) -> Result<wgpu::ShaderModule> {
        let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = modules.get(file) {
            return Ok(m.clone());
        }
        let src = kernels::SHADERS
            .iter()
            .find(|(n, _)| *n == file)
            .map(|(_, s)| *s)
            .ok_or_else(|| Error::Invalid(format!("unknown shader file {file}")))?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let m = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(file), source: wgpu::ShaderSource::Wgsl(src.into()) });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Shader { file: file.into(), entry: "(module)".into(), msg: e.to_string() });
        }
        modules.insert(file, m.clone());
        Ok(m)
    }

    fn pipeline(&self, spec: &kernels::KernelSpec, access: &[Access]) -> Result<Arc<Pipeline>> {
        let key = PipelineKey {
            file: spec.file,
            entry: spec.entry,
            constants: spec.constants.iter().map(|(k, v)| (*k, v.to_bits())).collect(),
            access: access.to_vec(),
        };
        if let Some(p) = self.pipelines.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(p.clone());
        }
        // A kernel binds one storage buffer per slot: an API with fewer per stage (GLES 3.1
        // drivers may allow 4) cannot run it, and says so instead of failing validation.
        let max_storage = self.limits.max_storage_buffers_per_shader_stage as usize;
        if access.len() > max_storage {
            return Err(Error::Unsupported {
                adapter: self.describe(),
                kernel: format!("{} ({})", spec.entry, spec.file),
                msg: format!("it binds {} storage buffers and this device allows {max_storage} per shader stage", access.len()),
            });
        }
        let module = self.module(spec.file)?;
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer { ty: wgpu::BufferBindingType::Uniform, has_dynamic_offset: false, min_binding_size: None },
            count: None,
        }];
        for (i, a) in access.iter().enumerate() {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: i as u32 + 1,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: *a == Access::Read },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            });
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let layout = self.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(spec.entry), entries: &entries });
        let pl = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(spec.entry),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(spec.entry),
            layout: Some(&pl),
            module: &module,
            entry_point: Some(spec.entry),
            compilation_options: wgpu::PipelineCompilationOptions { constants: &spec.constants, zero_initialize_workgroup_memory: false },
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            // e.g. a workgroup larger than the device's invocation or workgroup-memory limits
            return Err(Error::Unsupported {
                adapter: self.describe(),
                kernel: format!("{} ({})", spec.entry, spec.file),
                msg: e.to_string(),
            });
        }
        let p = Arc::new(Pipeline { pipeline, layout });
        self.pipelines.lock().unwrap_or_else(|p| p.into_inner()).insert(key, p.clone());
        Ok(p)
    }

    fn grid(&self, g: &kernels::Grid) -> Result<(u32, u32)> {
        let max = self.limits.max_compute_workgroups_per_dimension.max(1) as usize;
        let (x, y) = match *g {
            kernels::Grid::Xy(x, y) => (x as usize, y as usize),
            kernels::Grid::Flat(n) => {
                let n = n.max(1);
                if n <= max {
                    (n, 1)
                } else {
                    (max, n.div_ceil(max))
                }
            }
        };
        if x > max || y > max {
            return Err(Error::Invalid(format!("launch grid {x} x {y} exceeds the adapter's {max} workgroups per dimension")));
        }
        Ok((x as u32, y as u32))
    }

    fn read_words(&self, buf: &GpuBuf) -> Result<Vec<u32>> {
        let bytes = (buf.len() * 4) as u64;
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let staging = self.readback_buffer("readback", bytes);
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        enc.copy_buffer_to_buffer(buf.raw(), (buf.offset * 4) as u64, &staging, 0, bytes);
        self.queue.submit([enc.finish()]);
        let words = bytemuck::pod_collect_to_vec(&self.read_back(&staging)?);
        self.check_failed()?;
        Ok(words)
    }

    /// A host-mappable buffer that copies land in, to be read with [`Self::read_back`].
    fn readback_buffer(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// The bytes of a [`Self::readback_buffer`] once the submitted work has written them
    /// (waits for the device); the buffer is left unmapped.
    fn read_back(&self, staging: &wgpu::Buffer) -> Result<Vec<u8>> {
        let (tx, rx) = std::sync::mpsc::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(e.to_string()))?;
        rx.recv().map_err(|e| Error::Gpu(e.to_string()))?.map_err(|e| Error::Gpu(e.to_string()))?;
        let bytes = staging.slice(..).get_mapped_range().map_err(|e| Error::Gpu(e.to_string()))?.to_vec();
        staging.unmap();
        Ok(bytes)
    }

    fn write_words(&self, buf: &GpuBuf, words: &[u32], dtype: DType) -> Result<()> {
        if buf.dtype() != dtype || words.len() > buf.len() {
            return Err(Error::Invalid(format!(
                "write of {} {dtype:?} values into a buffer of {} {:?} values",
                words.len(),
                buf.len(),
                buf.dtype()
            )));
        }
        if !words.is_empty() {
            self.queue.write_buffer(buf.raw(), (buf.offset * 4) as u64, bytemuck::cast_slice(words));
        }
        Ok(())
    }
}

impl Backend for GpuBackend {
    type Buf = GpuBuf;
    type Launch = GpuLaunch;

    fn describe(&self) -> String {
        format!("{} ({}, {})", self.report.name, self.report.backend, self.report.device_type)
    }

    fn alloc(&self, len: usize, dtype: DType) -> Result<GpuBuf> {
        let bytes = (len.max(1) * 4) as u64;
        let limit = self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size);
        if bytes > limit {
            return Err(Error::BufferTooLarge { what: format!("{len} x {dtype:?}"), bytes, limit, adapter: self.report.name.clone() });
        }
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: bytes.div_ceil(16) * 16,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(GpuBuf::new(buffer, len, dtype))
    }

    fn write_f32(&self, buf: &GpuBuf, data: &[f32]) -> Result<()> {
        self.write_words(buf, bytemuck::cast_slice(data), DType::F32)
    }
    fn write_u32(&self, buf: &GpuBuf, data: &[u32]) -> Result<()> {
        self.write_words(buf, data, DType::U32)
    }
    fn read_f32(&self, buf: &GpuBuf) -> Result<Vec<f32>> {
        let w = self.read_words(buf)?;
        Ok(bytemuck::cast_slice(&w[..buf.len()]).to_vec())
    }
    fn read_u32(&self, buf: &GpuBuf) -> Result<Vec<u32>> {
        let mut w = self.read_words(buf)?;
        w.truncate(buf.len());
        Ok(w)
    }
    fn view(&self, buf: &GpuBuf, offset: usize, len: usize) -> Result<GpuBuf> {
        if offset + len > buf.len || !offset.is_multiple_of(self.view_alignment()) {
            return Err(Error::Invalid(format!(
                "view [{offset}, {}) of a buffer of {} elements: must lie inside it and start at a multiple of {} elements",
                offset + len,
                buf.len,
                self.view_alignment()
            )));
        }
        Ok(GpuBuf { inner: buf.inner.clone(), offset: buf.offset + offset, len })
    }
    fn view_alignment(&self) -> usize {
        (self.limits.min_storage_buffer_offset_alignment as usize / 4).max(1)
    }
    fn placeholder(&self) -> &GpuBuf {
        &self.placeholder
    }

    fn prepare(&self, op: &Op, bufs: &[&GpuBuf]) -> Result<GpuLaunch> {
        self.prepare_with_tiles(op, bufs, None)
    }

    fn run(&self, launches: &[&GpuLaunch]) -> Result<()> {
        if let Some(stats) = &self.profile {
            return self.run_profiled(launches, stats);
        }
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("step") });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("step"), timestamp_writes: None });
            for l in launches {
                pass.set_pipeline(&l.pipeline.pipeline);
                pass.set_bind_group(0, &l.bind_group, &[]);
                pass.dispatch_workgroups(l.workgroups.0, l.workgroups.1, 1);
            }
        }
        self.queue.submit([enc.finish()]);
        self.check_failed()
    }

    fn sync(&self) -> Result<()> {
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(e.to_string()))?;
        self.check_failed()
    }
}
