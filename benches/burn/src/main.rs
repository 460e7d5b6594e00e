//! Same-stack peer of `ssvae bench train`: ssvae's SS_D and SS_CNN written with Burn, timed the
//! way `ssvae bench train` and `benches/pytorch/bench.py` time them.
//!
//! The models, losses, optimizer and data path are bench.py's (which is ssvae's):
//! - SS_D: encoder 784-H-H relu; heads mu(2), logvar(2) with logvar = 20 tanh(raw / 20), pi(10);
//!   decoder concat(z, softmax(pi)) -> H-H relu -> 784 logits.
//! - SS_CNN: three 3x3 convolutions (64 channels, strides 1, 1, 2, no bias) each + batch norm
//!   (momentum 0.1, eps 1e-3) + relu; dense 512 (no bias) + batch norm + relu + dropout 0.5;
//!   heads as above; decoder dense 12544 (no bias) + batch norm + relu + dropout, reshape
//!   64x14x14, three 3x3 transposed convolutions (strides 1, 1, 2, no bias) + batch norm + relu,
//!   a 1x1 transposed convolution (with bias) to one channel. NCHW, as PyTorch.
//! - Loss: Bernoulli NLL (BCE with logits) summed over pixels and the Gaussian KL, both averaged
//!   over the batch, + alpha (100) x softmax cross-entropy on the labeled half, averaged over
//!   the labeled rows. z = mu + exp(logvar / 2) eps feeds the decoder with softmax(pi).
//! - RMSprop lr 5e-4, alpha 0.9, momentum 0.9, eps 1e-7.
//! - Data: a resident training set of 60000 random MNIST-sized u8 images, packed four pixels to an
//!   int word on the device (an f32 copy, 188 MB, is more than one wgpu buffer may hold on
//!   lavapipe: 128 MiB), a batch gathered by index on the device, unpacked and scaled to [0, 1]
//!   each step; half the rows labeled, drawn with replacement from 1000 labeled samples, half
//!   from a shuffled pass; indices and labels uploaded each step.
//!
//! Timing (as ssvae and bench.py): `--warmup` untimed steps and a device sync, then steps until
//! `--min-seconds` have passed (the loss read back every 100 steps, as the training loops do),
//! then a device sync (`Device::sync`) before the clock stops. `--sync-every-step` reads the loss
//! back after every step instead (a stricter, slower protocol).

use std::time::Instant;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{GradientsParams, RmsPropConfig};
use burn::tensor::activation::{log_softmax, relu, softmax};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

const BURN_VERSION: &str = "0.22.1";
const PIXELS: usize = 784;
const CLASSES: usize = 10;
const LATENT: usize = 2;
const N_TRAIN: usize = 60000;
const N_LABELED: usize = 1000;
const ALPHA: f32 = 100.0;
const LR: f64 = 5e-4;
const CH: usize = 64;

// ---------------------------------------------------------------------------------------------
// Models

/// What every model returns: decoder logits [B, 784], mu, logvar (bounded), pi logits.
struct Out {
    x_logits: Tensor<2>,
    mu: Tensor<2>,
    logvar: Tensor<2>,
    pi: Tensor<2>,
}

/// The heads and the reparameterised sample shared by both models.
#[derive(Module, Debug)]
struct Heads {
    mu: Linear,
    logvar: Linear,
    pi: Linear,
}

impl Heads {
    fn new(h: usize, device: &Device) -> Self {
        Heads {
            mu: LinearConfig::new(h, LATENT).init(device),
            logvar: LinearConfig::new(h, LATENT).init(device),
            pi: LinearConfig::new(h, CLASSES).init(device),
        }
    }

    /// (mu, logvar, pi logits, decoder input concat(z, softmax(pi)))
    fn forward(&self, h: Tensor<2>) -> (Tensor<2>, Tensor<2>, Tensor<2>, Tensor<2>) {
        let mu = self.mu.forward(h.clone());
        let lv = self.logvar.forward(h.clone()).div_scalar(20.0).tanh().mul_scalar(20.0);
        let logits = self.pi.forward(h);
        let eps = mu.random_like(Distribution::Normal(0.0, 1.0));
        let z = mu.clone() + lv.clone().mul_scalar(0.5).exp() * eps;
        let dec_in = Tensor::cat(vec![z, softmax(logits.clone(), 1)], 1);
        (mu, lv, logits, dec_in)
    }
}

#[derive(Module, Debug)]
struct SsDense {
    enc0: Linear,
    enc1: Linear,
    heads: Heads,
    dec0: Linear,
    dec1: Linear,
    out: Linear,
}

impl SsDense {
    fn new(h: usize, device: &Device) -> Self {
        SsDense {
            enc0: LinearConfig::new(PIXELS, h).init(device),
            enc1: LinearConfig::new(h, h).init(device),
            heads: Heads::new(h, device),
            dec0: LinearConfig::new(LATENT + CLASSES, h).init(device),
            dec1: LinearConfig::new(h, h).init(device),
            out: LinearConfig::new(h, PIXELS).init(device),
        }
    }

    fn forward(&self, x: Tensor<2>) -> Out {
        let h = relu(self.enc1.forward(relu(self.enc0.forward(x))));
        let (mu, logvar, pi, dec_in) = self.heads.forward(h);
        let g = relu(self.dec1.forward(relu(self.dec0.forward(dec_in))));
        Out { x_logits: self.out.forward(g), mu, logvar, pi }
    }
}

/// Conv (or transposed conv) 3x3 without bias + batch norm + relu.
#[derive(Module, Debug)]
struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm,
}

impl ConvBn {
    fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        ConvBn {
            conv: Conv2dConfig::new([cin, cout], [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device),
            bn: bn(cout, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.bn.forward(self.conv.forward(x)))
    }
}

#[derive(Module, Debug)]
struct DeconvBn {
    conv: ConvTranspose2d,
    bn: BatchNorm,
}

impl DeconvBn {
    fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        DeconvBn {
            conv: ConvTranspose2dConfig::new([cin, cout], [3, 3])
                .with_stride([stride, stride])
                .with_padding([1, 1])
                .with_padding_out([stride - 1, stride - 1])
                .with_bias(false)
                .init(device),
            bn: bn(cout, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.bn.forward(self.conv.forward(x)))
    }
}

fn bn(n: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(n).with_epsilon(1e-3).with_momentum(0.1).init(device)
}

#[derive(Module, Debug)]
struct SsCnn {
    c0: ConvBn,
    c1: ConvBn,
    c2: ConvBn,
    fc: Linear,
    fc_bn: BatchNorm,
    fc_drop: Dropout,
    heads: Heads,
    dmap: Linear,
    dmap_bn: BatchNorm,
    dmap_drop: Dropout,
    d0: DeconvBn,
    d1: DeconvBn,
    d2: DeconvBn,
    out: ConvTranspose2d,
}

impl SsCnn {
    fn new(h: usize, device: &Device) -> Self {
        SsCnn {
            c0: ConvBn::new(1, CH, 1, device),
            c1: ConvBn::new(CH, CH, 1, device),
            c2: ConvBn::new(CH, CH, 2, device),
            fc: LinearConfig::new(14 * 14 * CH, h).with_bias(false).init(device),
            fc_bn: bn(h, device),
            fc_drop: DropoutConfig::new(0.5).init(),
            heads: Heads::new(h, device),
            dmap: LinearConfig::new(LATENT + CLASSES, 14 * 14 * CH).with_bias(false).init(device),
            dmap_bn: bn(14 * 14 * CH, device),
            dmap_drop: DropoutConfig::new(0.5).init(),
            d0: DeconvBn::new(CH, CH, 1, device),
            d1: DeconvBn::new(CH, CH, 1, device),
            d2: DeconvBn::new(CH, CH, 2, device),
            out: ConvTranspose2dConfig::new([CH, 1], [1, 1]).init(device),
        }
    }

    fn forward(&self, x: Tensor<2>) -> Out {
        let b = x.dims()[0];
        let c = self.c2.forward(self.c1.forward(self.c0.forward(x.reshape([b, 1, 28, 28]))));
        let h = self.fc_drop.forward(relu(self.fc_bn.forward(self.fc.forward(c.reshape([b, 14 * 14 * CH])))));
        let (mu, logvar, pi, dec_in) = self.heads.forward(h);
        let m = self.dmap_drop.forward(relu(self.dmap_bn.forward(self.dmap.forward(dec_in))));
        let g = self.d2.forward(self.d1.forward(self.d0.forward(m.reshape([b, CH, 14, 14]))));
        Out { x_logits: self.out.forward(g).reshape([b, PIXELS]), mu, logvar, pi }
    }
}

// ---------------------------------------------------------------------------------------------
// Losses (bench.py's)

struct Losses {
    total: Tensor<1>,
    rec: Tensor<1>,
    kl: Tensor<1>,
    ce: Tensor<1>,
}

fn losses(o: Out, x: Tensor<2>, y: Tensor<1, Int>) -> Losses {
    let b = x.dims()[0] as f32;
    let n_lab = y.dims()[0];
    let l = o.x_logits;
    // BCE with logits, stable form: max(l, 0) - l x + log(1 + exp(-|l|)), summed, / batch
    let rec = (l.clone().clamp_min(0.0) - l.clone() * x + l.abs().neg().exp().log1p()).sum().div_scalar(b);
    // KL(q(z|x) || N(0, I)) summed, / batch
    let (mu, lv) = (o.mu, o.logvar);
    let kl = (lv.clone().add_scalar(1.0) - mu.clone() * mu - lv.exp()).sum().mul_scalar(-0.5 / b);
    // softmax cross-entropy on the labeled rows (the first n_lab), mean over them
    let lsm = log_softmax(o.pi.narrow(0, 0, n_lab), 1);
    let ce = lsm.gather(1, y.reshape([n_lab, 1])).sum().div_scalar(-(n_lab as f32));
    let total = rec.clone() + kl.clone() + ce.clone().mul_scalar(ALPHA);
    Losses { total, rec, kl, ce }
}

// ---------------------------------------------------------------------------------------------
// Data and batches

/// SplitMix64: the host-side sampler of batch indices (bench.py uses torch's CPU generator).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn perm(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            p.swap(i, self.below(i + 1));
        }
        p
    }
}

/// The resident data and the batch sampler: half labeled rows (with replacement from
/// `labeled`), half unlabeled from a shuffled pass.
struct Data {
    /// [N, 196]: pixel 4j + k of a row is byte k of word j
    words: Tensor<2, Int>,
    labels: Vec<i32>,
    labeled: Vec<usize>,
    rng: Rng,
    perm: Vec<usize>,
    pos: usize,
}

impl Data {
    fn new(device: &Device) -> Self {
        let mut g = Rng(1);
        let px: Vec<u8> = (0..N_TRAIN * PIXELS).map(|_| g.next() as u8).collect();
        let labels = (0..N_TRAIN).map(|_| g.below(CLASSES) as i32).collect();
        let labeled = g.perm(N_TRAIN)[..N_LABELED].to_vec();
        let packed: Vec<i32> = px.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let words = Tensor::<2, Int>::from_data(TensorData::new(packed, [N_TRAIN, PIXELS / 4]), device);
        let mut rng = Rng(0);
        let perm = rng.perm(N_TRAIN);
        Data { words, labels, labeled, rng, perm, pos: 0 }
    }

    /// (x in [0, 1] [B, 784], labels of the first B/2 rows)
    fn batch(&mut self, b: usize, device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
        let n_lab = b / 2;
        let n_unl = b - n_lab;
        if self.pos + n_unl > N_TRAIN {
            self.perm = self.rng.perm(N_TRAIN);
            self.pos = 0;
        }
        let mut idx: Vec<i32> = (0..n_lab).map(|_| self.labeled[self.rng.below(N_LABELED)] as i32).collect();
        idx.extend(self.perm[self.pos..self.pos + n_unl].iter().map(|&i| i as i32));
        self.pos += n_unl;
        let y: Vec<i32> = idx[..n_lab].iter().map(|&i| self.labels[i as usize]).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [b]), device);
        let y = Tensor::<1, Int>::from_data(TensorData::new(y, [n_lab]), device);
        (unpack(self.words.clone().select(0, idx)).div_scalar(255.0), y)
    }
}

/// Rows of packed words [B, W] -> their bytes as floats [B, 4W] (byte k of word j at 4j + k).
fn unpack(w: Tensor<2, Int>) -> Tensor<2> {
    let [b, n] = w.dims();
    let bytes: Vec<Tensor<2, Int>> = (0..4).map(|k| w.clone().bitwise_right_shift_scalar(8 * k).bitwise_and_scalar(255)).collect();
    Tensor::<2, Int>::stack::<3>(bytes, 2).reshape([b, 4 * n]).float()
}

/// `unpack` gives back the bytes packed on the host (values above 127 included).
fn check_unpack(device: &Device) {
    let px: Vec<u8> = (0..2 * PIXELS).map(|i| (i * 37 % 256) as u8).collect();
    let packed: Vec<i32> = px.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let w = Tensor::<2, Int>::from_data(TensorData::new(packed, [2, PIXELS / 4]), device);
    let got: Vec<f32> = unpack(w).into_data().try_to_vec::<f32>().unwrap_or_else(|e| die(&format!("readback: {e:?}")));
    let ok = got.iter().zip(&px).all(|(&g, &p)| g == p as f32);
    println!("unpacking resident u8 pixels: {}", if ok { "ok" } else { "WRONG" });
    if !ok {
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------
// Training loop

enum Model {
    Dense(SsDense),
    Cnn(SsCnn),
}

impl Model {
    fn new(name: &str, hidden: usize, device: &Device) -> Self {
        match name {
            "ss-dense" => Model::Dense(SsDense::new(hidden, device)),
            "ss-cnn" => Model::Cnn(SsCnn::new(hidden, device)),
            _ => die(&format!("unknown --model {name} (ss-dense or ss-cnn)")),
        }
    }
    fn num_params(&self) -> usize {
        match self {
            Model::Dense(m) => m.num_params(),
            Model::Cnn(m) => m.num_params(),
        }
    }
}

struct Trainer {
    model: Option<Model>,
    optim: burn::optim::ModuleOptimizer,
    data: Data,
    batch: usize,
    device: Device,
}

impl Trainer {
    fn new(model: &str, hidden: usize, batch: usize, device: &Device) -> Self {
        device.seed(0);
        let optim = RmsPropConfig::new().with_alpha(0.9).with_momentum(0.9).with_epsilon(1e-7).init();
        Trainer {
            model: Some(Model::new(model, hidden, device)),
            optim,
            data: Data::new(device),
            batch,
            device: device.clone(),
        }
    }

    /// One training step: forward, backward, RMSprop update. Returns the losses (not read back).
    fn step(&mut self) -> Losses {
        let (x, y) = self.data.batch(self.batch, &self.device);
        let model = self.model.take().expect("model");
        let (l, model) = match model {
            Model::Dense(m) => {
                let l = losses(m.forward(x.clone()), x, y);
                let grads = GradientsParams::from_grads(l.total.backward(), &m);
                (l, Model::Dense(self.optim.step(LR, m, grads)))
            }
            Model::Cnn(m) => {
                let l = losses(m.forward(x.clone()), x, y);
                let grads = GradientsParams::from_grads(l.total.backward(), &m);
                (l, Model::Cnn(self.optim.step(LR, m, grads)))
            }
        };
        self.model = Some(model);
        l
    }
}

fn scalar(t: Tensor<1>) -> f32 {
    t.into_scalar::<f32>()
}

/// Peak resident set size of this process (VmHWM), MiB. With lavapipe the "device" memory is
/// host memory of this process too.
fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn device_for(backend: &str) -> (Device, String) {
    #[allow(deprecated)] // burn-ndarray is deprecated in 0.22 in favour of flex, still shipped
    let device = match backend {
        "wgpu" => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        "ndarray" => Device::ndarray(),
        "flex" => Device::flex(),
        _ => die(&format!("unknown --backend {backend} (wgpu, ndarray or flex)")),
    };
    let adapter = match backend {
        "wgpu" => {
            let id = device.as_dispatch().identity();
            match id {
                Some(id) => format!("{} (wgpu, WGSL; {})", id.name, id.fingerprint),
                None => "wgpu (unknown adapter)".into(),
            }
        }
        _ => format!("cpu {backend} ({} rayon threads)", rayon::current_num_threads()),
    };
    (device.autodiff(), adapter)
}

fn die(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

struct Args {
    model: String,
    backend: String,
    batches: Vec<usize>,
    hiddens: Vec<usize>,
    min_seconds: f64,
    warmup: usize,
    check: Option<usize>,
    read_every: usize,
}

fn parse_list(s: &str) -> Vec<usize> {
    s.split([',', ' ']).filter(|t| !t.is_empty()).map(|t| t.parse().unwrap_or_else(|_| die(&format!("not a number: {t}")))).collect()
}

const HELP: &str = "ssvae-burn-bench: ssvae's SS_D / SS_CNN training step in Burn, timed as `ssvae bench train`

  --model ss-dense|ss-cnn      (default ss-dense)
  --backend wgpu|ndarray|flex  (default ndarray)
  --batch-sizes 128            comma- or space-separated (default 128)
  --hidden-sizes 1024          dense only, at batch 128 (default 1024; the CNN's dense width is 512)
  --min-seconds 6              minimum timed seconds per case (default 3)
  --warmup 3                   untimed steps first (default 3)
  --read-every K               read the loss back every K steps (default 100, as the training loops)
  --sync-every-step            the same as --read-every 1
  --check [N]                  train N steps (default 50) at the first batch size, print the
                               mean losses of every 10 steps and the parameter count, no timing";

fn args() -> Args {
    let mut a = Args {
        model: "ss-dense".into(),
        backend: "ndarray".into(),
        batches: vec![128],
        hiddens: vec![1024],
        min_seconds: 3.0,
        warmup: 3,
        check: None,
        read_every: 100,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let val = |i: usize| argv.get(i + 1).cloned().unwrap_or_else(|| die(&format!("{} needs a value", argv[i])));
    while i < argv.len() {
        match argv[i].as_str() {
            "--model" => a.model = val(i),
            "--backend" => a.backend = val(i),
            "--batch-sizes" => a.batches = parse_list(&val(i)),
            "--hidden-sizes" => a.hiddens = parse_list(&val(i)),
            "--min-seconds" => a.min_seconds = val(i).parse().unwrap_or_else(|_| die("--min-seconds: a number")),
            "--warmup" => a.warmup = val(i).parse().unwrap_or_else(|_| die("--warmup: a number")),
            "--read-every" => a.read_every = val(i).parse().ok().filter(|&k| k > 0).unwrap_or_else(|| die("--read-every: a number >= 1")),
            "--sync-every-step" => {
                a.read_every = 1;
                i -= 1;
            }
            "--check" => match argv.get(i + 1).and_then(|v| v.parse().ok()) {
                Some(n) => a.check = Some(n),
                None => {
                    a.check = Some(50);
                    i -= 1;
                }
            },
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0)
            }
            o => die(&format!("unknown argument {o}\n\n{HELP}")),
        }
        i += 2;
    }
    a
}

fn main() {
    let a = args();
    let (device, adapter) = device_for(&a.backend);
    eprintln!("burn {BURN_VERSION}, backend {}, adapter: {adapter}", a.backend);

    let batches = if a.batches.is_empty() { vec![128] } else { a.batches.clone() };
    if let Some(n) = a.check {
        let hidden = if a.model == "ss-cnn" { 512 } else { a.hiddens.first().copied().unwrap_or(1024) };
        check_unpack(&device);
        let mut t = Trainer::new(&a.model, hidden, batches[0], &device);
        let params = t.model.as_ref().map_or(0, |m| m.num_params());
        println!("{} hidden {hidden} batch {}: {params} parameters", a.model, batches[0]);
        let start = Instant::now();
        // means over windows of 10 steps (single steps are noisy: 64 labeled rows a batch)
        let mut sums = [0f64; 4];
        for s in 1..=n {
            let l = t.step();
            for (acc, v) in sums.iter_mut().zip([l.total, l.rec, l.kl, l.ce]) {
                *acc += scalar(v) as f64;
            }
            if s % 10 == 0 || s == n {
                let k = if s % 10 == 0 { 10.0 } else { (s % 10) as f64 };
                let m = sums.map(|v| v / k);
                println!("steps {:4}-{s:<4} mean loss {:9.3}  rec {:8.3}  kl {:6.3}  ce {:6.4}", s - k as usize + 1, m[0], m[1], m[2], m[3]);
                sums = [0.0; 4];
            }
        }
        eprintln!("{n} steps in {:.1} s", start.elapsed().as_secs_f64());
        return;
    }

    // the cases of bench.py / `ssvae bench train`: batch sizes at the paper's width, then widths
    // at batch 128 (dense only; the CNN has no width scaling)
    let mut cases: Vec<(usize, usize)> = Vec::new();
    if a.model == "ss-dense" {
        cases.extend(batches.iter().map(|&b| (b, 1024)));
        cases.extend(a.hiddens.iter().filter(|&&h| !(h == 1024 && batches.contains(&128))).map(|&h| (128, h)));
    } else {
        cases.extend(batches.iter().map(|&b| (b, 512)));
    }
    for (batch, hidden) in cases {
        let mut t = Trainer::new(&a.model, hidden, batch, &device);
        let params = t.model.as_ref().map_or(0, |m| m.num_params());
        for _ in 0..a.warmup {
            let l = t.step();
            scalar(l.total);
        }
        device.sync().unwrap_or_else(|e| die(&format!("sync: {e:?}")));
        let start = Instant::now();
        let mut steps = 0usize;
        let mut last = None;
        let mut loss = None;
        while steps == 0 || start.elapsed().as_secs_f64() < a.min_seconds {
            let l = t.step();
            steps += 1;
            if steps % a.read_every == 0 {
                last = Some(scalar(l.total.clone())); // as the training loop reads losses back
            }
            loss = Some(l.total);
        }
        let loop_s = start.elapsed().as_secs_f64();
        device.sync().unwrap_or_else(|e| die(&format!("sync: {e:?}")));
        let secs = start.elapsed().as_secs_f64();
        // evidence that the sync waited for the work: reading the last loss back afterwards
        // should take no time
        let t_read = Instant::now();
        let final_loss = loss.map(scalar);
        let read_after_sync_ms = t_read.elapsed().as_secs_f64() * 1e3;
        let pool = device.memory_pool_usage();
        let r = serde_json::json!({
            "bench": "train",
            "implementation": "burn",
            "burn": BURN_VERSION,
            "model": a.model,
            "backend": a.backend,
            "adapter": adapter,
            "batch": batch,
            "hidden": hidden,
            "params": params,
            "steps": steps,
            "ms_per_step": secs * 1e3 / steps as f64,
            "samples_per_s": (steps * batch) as f64 / secs,
            "sync": format!("loss read back every {} steps, device sync at the end", a.read_every),
            "final_sync_ms": (secs - loop_s) * 1e3,
            "read_after_sync_ms": read_after_sync_ms,
            "peak_rss_mib": peak_rss_mib(),
            "pool_reserved_mib": pool.as_ref().map(|p| p.bytes_reserved as f64 / 1048576.0),
            "last_read_loss": last,
            "final_loss": final_loss,
        });
        println!("{r}");
    }
}
