//! Compiler and executor. A graph with static shapes becomes a `Program`: the launch list of
//! one whole training step (forward, backward, optimizer update, loss accumulation), with
//! every buffer allocated and every launch prepared once. Temporaries share buffers by
//! liveness (a greedy best-fit over the launch order). `Program::run` records the whole step
//! as one submission; losses accumulate on the device and are read back only when asked.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};

use super::{Graph, Init, Launch, LossKind, LossTerm, Role, StoreBinding, TensorId};
use crate::backend::{Backend, BufferLike, DType, Op, ADAM_HYPER_LEN, RMSPROP_HYPER_LEN};
use crate::error::{Error, Result};

/// The optimizer and its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum Optimizer {
    /// PyTorch's RMSprop (eps outside the square root) with momentum.
    RmsProp {
        lr: f32,
        alpha: f32,
        momentum: f32,
        eps: f32,
    },
    Adam {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
    },
}

impl Optimizer {
    /// The paper's optimizer: RMSprop with momentum 0.9; alpha (Keras' rho) 0.9.
    pub fn rmsprop(lr: f32) -> Self {
        Optimizer::RmsProp { lr, alpha: 0.9, momentum: 0.9, eps: 1e-7 }
    }
    pub fn adam(lr: f32) -> Self {
        Optimizer::Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
    /// The hyper-parameter buffer contents for 1-based step `t`.
    pub fn hyper(&self, t: u64) -> Vec<f32> {
        match *self {
            Optimizer::RmsProp { lr, alpha, momentum, eps } => vec![lr, alpha, momentum, eps, 0.0],
            Optimizer::Adam { lr, beta1, beta2, eps } => vec![lr, beta1, beta2, eps, t.max(1) as f32],
        }
    }
}

/// All parameters in one flat buffer (each at an aligned offset), with their gradients and
/// two optimizer state buffers of the same layout. Shared by the programs of one model
/// (training step, evaluation) so they see the same weights.
pub struct ParamStore<B: Backend> {
    pub names: Vec<String>,
    pub shapes: Vec<Vec<usize>>,
    pub offsets: Vec<usize>,
    pub total: usize,
    pub params: B::Buf,
    pub grads: B::Buf,
    pub state1: B::Buf,
    pub state2: B::Buf,
    pub hyper: B::Buf,
}

impl<B: Backend> ParamStore<B> {
    /// Lays out and initialises the parameters of `graph` (seeded).
    pub fn new(be: &B, graph: &Graph, seed: u64) -> Result<Self> {
        let align = be.view_alignment().max(1);
        let (mut names, mut shapes, mut offsets) = (Vec::new(), Vec::new(), Vec::new());
        let mut total = 0usize;
        for p in &graph.params {
            let t = &graph.tensors[p.tensor];
            names.push(t.name.clone());
            shapes.push(t.shape.clone());
            offsets.push(total);
            total += t.len().div_ceil(align) * align;
        }
        let total = total.max(1);
        let mut init = vec![0f32; total];
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5EED_0F9A_2A00);
        for (i, p) in graph.params.iter().enumerate() {
            let n = graph.tensors[p.tensor].len();
            let dst = &mut init[offsets[i]..offsets[i] + n];
            match p.init {
                Init::Zeros => {}
                Init::Ones => dst.fill(1.0),
                Init::GlorotUniform { fan_in, fan_out } => {
                    let l = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
                    for v in dst {
                        *v = rng.random_range(-l..l);
                    }
                }
                Init::Orthogonal => {
                    let (r, c) = super::rows_cols(&graph.tensors[p.tensor].shape);
                    dst.copy_from_slice(&orthogonal(&mut rng, r, c));
                }
                Init::LstmBias { hidden } => dst[hidden..2 * hidden].fill(1.0),
            }
        }
        let params = be.upload_f32(&init)?;
        let grads = be.alloc(total, DType::F32)?;
        let state1 = be.alloc(total, DType::F32)?;
        let state2 = be.alloc(total, DType::F32)?;
        let hyper = be.alloc(RMSPROP_HYPER_LEN.max(ADAM_HYPER_LEN), DType::F32)?;
        Ok(ParamStore { names, shapes, offsets, total, params, grads, state1, state2, hyper })
    }

    fn index(&self, name: &str) -> Result<usize> {
        self.names.iter().position(|n| n == name).ok_or_else(|| Error::Invalid(format!("no parameter named '{name}' in this model")))
    }

    fn len_of(&self, i: usize) -> usize {
        self.shapes[i].iter().product()
    }

    pub fn view(&self, be: &B, name: &str) -> Result<B::Buf> {
        let i = self.index(name)?;
        be.view(&self.params, self.offsets[i], self.len_of(i))
    }

    pub fn grad_view(&self, be: &B, name: &str) -> Result<B::Buf> {
        let i = self.index(name)?;
        be.view(&self.grads, self.offsets[i], self.len_of(i))
    }

    /// Every parameter's values, by name (for checkpoints and tests).
    pub fn read(&self, be: &B) -> Result<Vec<(String, Vec<usize>, Vec<f32>)>> {
        self.read_buffer(be, StoreBuffer::Params)
    }

    /// One of the store's buffers split into per-parameter tensors, by name.
    pub fn read_buffer(&self, be: &B, which: StoreBuffer) -> Result<Vec<(String, Vec<usize>, Vec<f32>)>> {
        let flat = be.read_f32(self.buffer(which))?;
        Ok((0..self.names.len())
            .map(|i| (self.names[i].clone(), self.shapes[i].clone(), flat[self.offsets[i]..self.offsets[i] + self.len_of(i)].to_vec()))
            .collect())
    }

    fn buffer(&self, which: StoreBuffer) -> &B::Buf {
        match which {
            StoreBuffer::Params => &self.params,
            StoreBuffer::State1 => &self.state1,
            StoreBuffer::State2 => &self.state2,
        }
    }

    /// Sets one parameter's values.
    pub fn write(&self, be: &B, name: &str, values: &[f32]) -> Result<()> {
        self.write_buffer(be, StoreBuffer::Params, name, values)
    }

    /// Sets one parameter's slice of one of the store's buffers (values or optimizer state).
    pub fn write_buffer(&self, be: &B, which: StoreBuffer, name: &str, values: &[f32]) -> Result<()> {
        let i = self.index(name)?;
        if values.len() != self.len_of(i) {
            return Err(Error::Invalid(format!(
                "parameter '{name}' has {} values, got {} (shape {:?})",
                self.len_of(i),
                values.len(),
                self.shapes[i]
            )));
        }
        be.write_f32(&be.view(self.buffer(which), self.offsets[i], self.len_of(i))?, values)
    }
}

/// A rows x cols matrix with orthonormal rows (rows <= cols) or columns (rows > cols): modified
/// Gram-Schmidt in f64 on a standard normal matrix (Box-Muller), which gives the same
/// distribution as Keras' QR-based `Orthogonal` initializer (gain 1).
fn orthogonal(rng: &mut rand::rngs::StdRng, rows: usize, cols: usize) -> Vec<f32> {
    let (m, n) = (rows.min(cols), rows.max(cols)); // m vectors of length n
    let normal = |rng: &mut rand::rngs::StdRng| {
        let (u1, u2): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    };
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(m);
    while q.len() < m {
        let mut v: Vec<f64> = (0..n).map(|_| normal(rng)).collect();
        for _ in 0..2 {
            // twice, so rounding leaves no component along earlier vectors
            for u in &q {
                let d: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(x, a)| *x -= d * a);
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-6 {
            q.push(v.into_iter().map(|x| x / norm).collect());
        }
    }
    let mut out = vec![0f32; rows * cols];
    for (k, u) in q.iter().enumerate() {
        for (j, &x) in u.iter().enumerate() {
            let (r, c) = if rows <= cols { (k, j) } else { (j, k) };
            out[r * cols + c] = x as f32;
        }
    }
    out
}

/// The per-parameter buffers a checkpoint holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreBuffer {
    Params,
    /// Optimizer state: RMSprop's square average or Adam's first moment.
    State1,
    /// RMSprop's momentum buffer or Adam's second moment.
    State2,
}

/// What to compile.
pub struct CompileOptions<B: Backend> {
    /// Append backward and optimizer update (else forward only).
    pub optimizer: Option<Optimizer>,
    /// Tensors to keep readable after `run` (never reused by the planner).
    pub keep: Vec<TensorId>,
    /// Buffers for input tensors (e.g. the resident dataset). Other inputs get fresh buffers the
    /// host writes through [`Program::input`].
    pub bind: HashMap<TensorId, B::Buf>,
}

impl<B: Backend> Default for CompileOptions<B> {
    fn default() -> Self {
        CompileOptions { optimizer: None, keep: Vec::new(), bind: HashMap::new() }
    }
}

pub struct Program<B: Backend> {
    launches: Vec<B::Launch>,
    inputs: HashMap<TensorId, B::Buf>,
    kept: HashMap<TensorId, B::Buf>,
    metrics: B::Buf,
    metrics_stride: usize,
    /// The graph's loss terms, in the order of [`Program::take_metrics`]' sums.
    pub losses: Vec<LossTerm>,
    pub optimizer: Option<Optimizer>,
    /// Number of kernel launches in one run and number of distinct temporary buffers.
    pub n_launches: usize,
    pub n_temp_buffers: usize,
    pub temp_bytes: usize,
    /// Per fused loss launch whose weight can change between steps: its term's kind, its index
    /// in `launches`, the op as compiled and its buffers (see [`Program::set_loss_factor`]).
    reweighable: Vec<(LossKind, usize, Op, Vec<B::Buf>)>,
}

/// `op` (a fused loss kernel) with its weight multiplied by `factor`; `None` for other ops.
fn rescaled(op: &Op, factor: f32) -> Option<Op> {
    Some(match *op {
        Op::BceLogits { rows, cols, scale } => Op::BceLogits { rows, cols, scale: scale * factor },
        Op::GaussianNll { rows, cols, scale, floor } => Op::GaussianNll { rows, cols, scale: scale * factor, floor },
        Op::Kl { rows, cols, scale } => Op::Kl { rows, cols, scale: scale * factor },
        Op::SoftmaxCe { rows, classes, scale, smoothing } => Op::SoftmaxCe { rows, classes, scale: scale * factor, smoothing },
        Op::CategoricalKl { rows, classes, scale } => Op::CategoricalKl { rows, classes, scale: scale * factor },
        Op::ConsistencyKl { rows, classes, scale } => Op::ConsistencyKl { rows, classes, scale: scale * factor },
        _ => return None,
    })
}

/// Compiles `graph` against `store` (parameters are looked up by name).
pub fn compile<B: Backend>(be: &B, mut graph: Graph, store: &ParamStore<B>, opts: CompileOptions<B>) -> Result<Program<B>> {
    let mut launches = graph.forward_launches();
    if let Some(opt) = opts.optimizer {
        let (bwd, _param_grads) = graph.backward_launches();
        launches.extend(bwd);
        launches.push(optimizer_update(&mut graph, store, opt));
    }
    launches.extend(metric_sums(&mut graph));
    let last = last_use(&graph, &launches, &opts.keep);

    // one slot per loss, each at an aligned offset so it can be bound as a view
    let stride = be.view_alignment().max(1);
    let metrics = be.alloc(graph.losses.len().max(1) * stride, DType::F32)?;
    let (mut bufs, inputs) = bind_buffers(be, &graph, store, &metrics, stride, &opts.bind)?;
    let (n_temp, temp_bytes) = plan_temporaries(be, &graph, &launches, &last, &mut bufs)?;

    let mut prepared = Vec::with_capacity(launches.len());
    let mut reweighable = Vec::new();
    for l in &launches {
        let args: Vec<&B::Buf> =
            l.args.iter().map(|a| a.map_or(be.placeholder(), |t| bufs[t].as_ref().expect("every tensor has a buffer"))).collect();
        // a fused loss launch writes its term's per-row losses
        if let Some(term) = graph.losses.iter().find(|t| rescaled(&l.op, 1.0).is_some() && l.args.contains(&Some(t.per_row))) {
            reweighable.push((term.kind, prepared.len(), l.op.clone(), args.iter().map(|&b| b.clone()).collect()));
        }
        prepared.push(be.prepare(&l.op, &args)?);
    }
    let kept = opts.keep.iter().map(|&t| (t, bufs[t].clone().expect("kept tensor has a buffer"))).collect();
    Ok(Program {
        n_launches: prepared.len(),
        launches: prepared,
        inputs,
        kept,
        metrics,
        metrics_stride: stride,
        losses: graph.losses.clone(),
        optimizer: opts.optimizer,
        n_temp_buffers: n_temp,
        temp_bytes,
        reweighable,
    })
}

/// The optimizer update over the store's flat buffers (bound through `Role::Store`).
fn optimizer_update<B: Backend>(graph: &mut Graph, store: &ParamStore<B>, opt: Optimizer) -> Launch {
    let bind = |g: &mut Graph, name: &str, len: usize, which: StoreBinding| g.tensor(name, &[len], DType::F32, Role::Store(which));
    let hyper_len = RMSPROP_HYPER_LEN.max(ADAM_HYPER_LEN);
    let (h, gr, p, s1, s2) = (
        bind(graph, "hyper", hyper_len, StoreBinding::Hyper),
        bind(graph, "grads", store.total, StoreBinding::Grads),
        bind(graph, "params", store.total, StoreBinding::Params),
        bind(graph, "state1", store.total, StoreBinding::State1),
        bind(graph, "state2", store.total, StoreBinding::State2),
    );
    let op = match opt {
        Optimizer::RmsProp { .. } => Op::RmsProp { n: store.total },
        Optimizer::Adam { .. } => Op::Adam { n: store.total },
    };
    Launch { op, args: vec![Some(h), Some(gr), Some(p), Some(s1), Some(s2)] }
}

/// Loss sums accumulate into the metrics buffer: one column sum per loss term into its slot
/// (a `Role::Metric` view).
fn metric_sums(graph: &mut Graph) -> Vec<Launch> {
    let mut out = Vec::with_capacity(graph.losses.len());
    for (k, l) in graph.losses.clone().into_iter().enumerate() {
        let slot = graph.tensor(format!("{}.sum", l.kind), &[1], DType::F32, Role::Metric(k));
        let rows = graph.tensors[l.per_row].len();
        out.push(Launch { op: Op::ColSum { rows, cols: 1, accumulate: true }, args: vec![Some(l.per_row), Some(slot)] });
    }
    out
}

/// The index of each tensor's last launch (liveness of temporaries over the launch order);
/// kept tensors live forever.
fn last_use(graph: &Graph, launches: &[Launch], keep: &[TensorId]) -> Vec<usize> {
    let mut last = vec![0usize; graph.tensors.len()];
    for (i, l) in launches.iter().enumerate() {
        for &t in l.args.iter().flatten() {
            last[t] = i;
        }
    }
    for &t in keep {
        last[t] = usize::MAX;
    }
    last
}

/// The buffer of every tensor that is not a temporary, by its role: views of the store for
/// parameters and their gradients, the store's flat buffers, metric slots, uploaded constants,
/// bound inputs (checked against the tensor) and fresh buffers for the other inputs. Returns the
/// per-tensor buffers (`None` for temporaries) and the inputs the host may write.
fn bind_buffers<B: Backend>(
    be: &B,
    graph: &Graph,
    store: &ParamStore<B>,
    metrics: &B::Buf,
    stride: usize,
    bind: &HashMap<TensorId, B::Buf>,
) -> Result<(Vec<Option<B::Buf>>, HashMap<TensorId, B::Buf>)> {
    let mut bufs: Vec<Option<B::Buf>> = vec![None; graph.tensors.len()];
    let mut inputs = HashMap::new();
    for (t, d) in graph.tensors.iter().enumerate() {
        let b = match d.role {
            Role::Param => Some(store.view(be, &d.name)?),
            Role::ParamGrad { param } => Some(store.grad_view(be, &graph.tensors[param].name)?),
            Role::Store(which) => Some(match which {
                StoreBinding::Hyper => store.hyper.clone(),
                StoreBinding::Grads => store.grads.clone(),
                StoreBinding::Params => store.params.clone(),
                StoreBinding::State1 => store.state1.clone(),
                StoreBinding::State2 => store.state2.clone(),
            }),
            Role::Metric(k) => Some(be.view(metrics, k * stride, 1)?),
            Role::Input if graph.constants.iter().any(|(c, _)| *c == t) => {
                let values = &graph.constants.iter().find(|(c, _)| *c == t).expect("checked").1;
                Some(be.upload_f32(values)?)
            }
            Role::Input => {
                let b = match bind.get(&t) {
                    Some(b) => {
                        if b.dtype() != d.dtype || b.len() < d.len() {
                            return Err(Error::Invalid(format!(
                                "input '{}' needs {} {:?} values, the bound buffer has {} {:?}",
                                d.name,
                                d.len(),
                                d.dtype,
                                b.len(),
                                b.dtype()
                            )));
                        }
                        b.clone()
                    }
                    None => be.alloc(d.len(), d.dtype)?,
                };
                inputs.insert(t, b.clone());
                Some(b)
            }
            Role::Temp => None,
        };
        bufs[t] = b;
    }
    Ok((bufs, inputs))
}

/// Greedy best-fit reuse of temporaries: walking the launches in order, each temporary takes
/// the smallest free buffer of its dtype that fits (or a new one) and returns it after its last
/// use. Returns (buffers allocated, their bytes).
fn plan_temporaries<B: Backend>(
    be: &B,
    graph: &Graph,
    launches: &[Launch],
    last: &[usize],
    bufs: &mut [Option<B::Buf>],
) -> Result<(usize, usize)> {
    let mut pool: Vec<(usize, DType, B::Buf)> = Vec::new(); // free buffers: (capacity, dtype, buf)
    let mut owned: Vec<Option<(usize, B::Buf)>> = vec![None; graph.tensors.len()]; // temp -> (capacity, whole buffer)
    let (mut n_temp, mut temp_bytes) = (0usize, 0usize);
    for (i, l) in launches.iter().enumerate() {
        for &t in l.args.iter().flatten() {
            if graph.tensors[t].role != Role::Temp || bufs[t].is_some() {
                continue;
            }
            let (len, dtype) = (graph.tensors[t].len(), graph.tensors[t].dtype);
            let pick = pool
                .iter()
                .enumerate()
                .filter(|(_, (cap, dt, _))| *dt == dtype && *cap >= len)
                .min_by_key(|(_, (cap, _, _))| *cap)
                .map(|(k, _)| k);
            let (cap, whole) = match pick {
                Some(k) => {
                    let (cap, _, b) = pool.swap_remove(k);
                    (cap, b)
                }
                None => {
                    n_temp += 1;
                    temp_bytes += len * 4;
                    (len, be.alloc(len, dtype)?)
                }
            };
            bufs[t] = Some(be.view(&whole, 0, len)?);
            owned[t] = Some((cap, whole));
        }
        for &t in l.args.iter().flatten() {
            if last[t] == i {
                if let Some((cap, whole)) = owned[t].take() {
                    pool.push((cap, graph.tensors[t].dtype, whole));
                }
            }
        }
    }
    Ok((n_temp, temp_bytes))
}

impl<B: Backend> Program<B> {
    /// Runs the whole program (one submission on the GPU; returns without waiting).
    pub fn run(&self, be: &B) -> Result<()> {
        let refs: Vec<&B::Launch> = self.launches.iter().collect();
        be.run(&refs)
    }

    /// Multiplies the weight that the loss terms of `kind` were compiled with by `factor` (the
    /// value and its gradient, from the next run on; `factor` is relative to the compiled
    /// weight, not cumulative): a warm-up of a term re-prepares its launch when the factor
    /// changes. Returns whether the program has such a term.
    pub fn set_loss_factor(&mut self, be: &B, kind: LossKind, factor: f32) -> Result<bool> {
        let mut found = false;
        for (k, i, op, bufs) in &self.reweighable {
            if *k == kind {
                let op = rescaled(op, factor).expect("only fused loss launches are reweighable");
                let refs: Vec<&B::Buf> = bufs.iter().collect();
                self.launches[*i] = be.prepare(&op, &refs)?;
                found = true;
            }
        }
        Ok(found)
    }

    /// Bytes of the input buffers (host-written and bound ones, e.g. a resident dataset).
    pub fn input_bytes(&self) -> usize {
        self.inputs.values().map(|b| b.len() * 4).sum()
    }

    /// The buffer of a host-written (or bound) input tensor.
    pub fn input(&self, t: TensorId) -> Result<&B::Buf> {
        self.inputs.get(&t).ok_or_else(|| Error::Invalid(format!("tensor {t} is not an input of this program")))
    }

    /// The loss term of kind `kind`, if the graph had one.
    pub fn loss(&self, kind: LossKind) -> Option<&LossTerm> {
        self.losses.iter().find(|l| l.kind == kind)
    }

    /// A kept tensor's values (waits for the device).
    pub fn read(&self, be: &B, t: TensorId) -> Result<Vec<f32>> {
        let b = self.kept.get(&t).ok_or_else(|| Error::Invalid(format!("tensor {t} was not kept at compile time")))?;
        be.read_f32(b)
    }

    /// Accumulated loss sums since the last reset (scaled as in the graph), then resets them.
    pub fn take_metrics(&self, be: &B) -> Result<Vec<f32>> {
        let v = be.read_f32(&self.metrics)?;
        be.write_f32(&self.metrics, &vec![0.0; v.len()])?;
        Ok((0..self.losses.len()).map(|k| v[k * self.metrics_stride]).collect())
    }
}
