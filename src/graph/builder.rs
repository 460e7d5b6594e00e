//! The graph-building ops: each creates its output tensors (and parameters, for layers) and
//! appends one node. Shapes are checked here, where the caller's names are at hand, so a
//! mismatch is reported against the layer that caused it rather than at a kernel launch.

use super::{last_axis, rows_cols, GOp, Graph, Init, LossKind, TensorId};
use crate::backend::{Act, DType};

impl Graph {
    /// y = act(x w + b), w: in x out, over every run of `in` consecutive features of x as a
    /// row (see the module comment). A 3-D or higher x whose last axis is `in` gives
    /// [leading..., out]; otherwise y is [rows, out].
    pub fn linear(&mut self, name: &str, x: TensorId, w: TensorId, b: TensorId, act: Act) -> TensorId {
        let (rows, inp) = self.linear_rows(x, w);
        let out = self.shape(w)[1];
        let xs = self.shape(x);
        let shape = if xs.len() >= 3 && xs[xs.len() - 1] == inp { [&xs[..xs.len() - 1], &[out]].concat() } else { vec![rows, out] };
        let y = self.temp(name.into(), &shape, DType::F32);
        self.push(GOp::Linear { act }, vec![x, w, b], vec![y]);
        y
    }

    /// A dense layer without a bias (`{name}.weight` only), e.g. before a batch norm, whose
    /// shift would cancel it.
    pub fn dense_no_bias(&mut self, name: &str, x: TensorId, out: usize) -> TensorId {
        let (rows, inp) = rows_cols(self.shape(x));
        let w = self.param(&format!("{name}.weight"), &[inp, out], Init::GlorotUniform { fan_in: inp, fan_out: out });
        let y = self.temp(name.into(), &[rows, out], DType::F32);
        self.push(GOp::Linear { act: Act::Identity }, vec![x, w], vec![y]);
        y
    }

    /// (rows, in) of a `Linear` on x with weight w: rows = len(x) / in.
    pub(super) fn linear_rows(&self, x: TensorId, w: TensorId) -> (usize, usize) {
        let (n, inp) = (self.tensors[x].len(), self.tensors[w].shape[0]);
        assert!(
            inp > 0 && n % inp == 0,
            "linear '{}': input of shape {:?} is not a whole number of rows of {inp} features",
            self.tensors[x].name,
            self.tensors[x].shape
        );
        (n / inp, inp)
    }

    /// A dense layer with fresh parameters `{name}.weight` (Glorot) and `{name}.bias` (zeros).
    pub fn dense(&mut self, name: &str, x: TensorId, out: usize, act: Act) -> TensorId {
        let (_, inp) = rows_cols(self.shape(x));
        let w = self.param(&format!("{name}.weight"), &[inp, out], Init::GlorotUniform { fan_in: inp, fan_out: out });
        let b = self.param(&format!("{name}.bias"), &[out], Init::Zeros);
        self.linear(name, x, w, b, act)
    }

    /// [a, b] along the last axis; both must have the same number of rows (product of the
    /// leading axes), the result takes a's leading axes.
    pub fn concat(&mut self, name: &str, a: TensorId, b: TensorId) -> TensorId {
        let (rows, ca) = last_axis(self.shape(a));
        let (rows_b, cb) = last_axis(self.shape(b));
        assert_eq!(rows, rows_b, "concat '{name}': {:?} and {:?} have different numbers of rows", self.shape(a), self.shape(b));
        let sa = self.shape(a);
        let shape = [&sa[..sa.len() - 1], &[ca + cb]].concat();
        let c = self.temp(name.into(), &shape, DType::F32);
        self.push(GOp::Concat, vec![a, b], vec![c]);
        c
    }

    pub fn softmax(&mut self, name: &str, x: TensorId) -> TensorId {
        let shape = self.shape(x).to_vec();
        let y = self.temp(name.into(), &shape, DType::F32);
        self.push(GOp::Softmax, vec![x], vec![y]);
        y
    }

    /// x with each sample (laid out `shape` = [height, width, channels]) translated by up to
    /// `max_shift` along height and width and scaled by 1 + `scale` N(0, 1), drawn afresh each
    /// step (`Op::ShiftScale`; x gets no gradient through it).
    pub fn shift_scale(
        &mut self,
        name: &str,
        counter: TensorId,
        x: TensorId,
        shape: [usize; 3],
        max_shift: u32,
        scale: f32,
        stream: u32,
    ) -> TensorId {
        let xs = self.shape(x).to_vec();
        let per: usize = shape.iter().product();
        assert!(per > 0 && xs.iter().product::<usize>() % per == 0, "shift_scale '{name}': {xs:?} is not made of samples of {shape:?}");
        let y = self.temp(name.into(), &xs, DType::F32);
        self.push(GOp::ShiftScale { shape, max_shift, scale, stream }, vec![counter, x], vec![y]);
        y
    }

    /// z = mu + exp(logvar / 2) eps with eps from the shared RNG (stream distinguishes draws).
    pub fn reparam(&mut self, name: &str, counter: TensorId, mu: TensorId, logvar: TensorId, stream: u32) -> TensorId {
        let shape = self.shape(mu).to_vec();
        let z = self.temp(name.into(), &shape, DType::F32);
        let eps = self.temp(format!("{name}.eps"), &shape, DType::F32);
        self.push(GOp::Reparam { stream }, vec![counter, mu, logvar], vec![z, eps]);
        z
    }

    pub fn label_mix(&mut self, name: &str, pi: TensorId, labels: TensorId) -> TensorId {
        let shape = self.shape(pi).to_vec();
        let y = self.temp(name.into(), &shape, DType::F32);
        self.push(GOp::LabelMix, vec![pi, labels], vec![y]);
        y
    }

    /// one_hot(argmax p) over the last axis in the forward pass, the identity in the backward
    /// (straight-through).
    pub fn straight_through(&mut self, name: &str, p: TensorId) -> TensorId {
        let shape = self.shape(p).to_vec();
        let y = self.temp(name.into(), &shape, DType::F32);
        self.push(GOp::StraightThrough, vec![p], vec![y]);
        y
    }

    /// (logits + g) / tau with g standard Gumbel noise when `noise` (see [`GOp::Gumbel`]).
    pub fn gumbel(&mut self, name: &str, counter: TensorId, logits: TensorId, tau: f32, noise: bool, stream: u32) -> TensorId {
        let shape = self.shape(logits).to_vec();
        let y = self.temp(name.into(), &shape, DType::F32);
        self.push(GOp::Gumbel { tau, noise, stream }, vec![counter, logits], vec![y]);
        y
    }

    /// limit * tanh(x / limit), elementwise.
    pub fn soft_clamp(&mut self, name: &str, x: TensorId, limit: f32) -> TensorId {
        let shape = self.shape(x).to_vec();
        let y = self.temp(name.into(), &shape, DType::F32);
        let u = self.temp(format!("{name}.scaled"), &shape, DType::F32);
        let t = self.temp(format!("{name}.tanh"), &shape, DType::F32);
        self.push(GOp::SoftClamp { limit }, vec![x], vec![y, u, t]);
        y
    }

    /// Rows of a resident f32 dataset (`src_rows` rows of `row_shape` values) picked by
    /// `idx`: [idx.len(), row_shape...], e.g. [batch, steps, channels] for sensor windows.
    pub fn gather_f32(&mut self, name: &str, data: TensorId, idx: TensorId, src_rows: usize, row_shape: &[usize]) -> TensorId {
        let rows = self.shape(idx)[0];
        let x = self.temp(name.into(), &[&[rows], row_shape].concat(), DType::F32);
        self.push(GOp::GatherF32 { src_rows }, vec![data, idx], vec![x]);
        x
    }

    /// As [`Graph::gather_f32`] from a resident f16 dataset (two values per u32 word).
    pub fn gather_f16(&mut self, name: &str, data: TensorId, idx: TensorId, src_rows: usize, row_shape: &[usize]) -> TensorId {
        let rows = self.shape(idx)[0];
        let x = self.temp(name.into(), &[&[rows], row_shape].concat(), DType::F32);
        self.push(GOp::GatherF16 { src_rows }, vec![data, idx], vec![x]);
        x
    }

    /// Rows of a resident u8 dataset (`src_rows` x `cols`) picked by `idx`, scaled to [0, 1].
    pub fn gather_u8(&mut self, name: &str, data: TensorId, idx: TensorId, src_rows: usize, cols: usize) -> TensorId {
        let rows = self.shape(idx)[0];
        let x = self.temp(name.into(), &[rows, cols], DType::F32);
        self.push(GOp::GatherU8 { src_rows }, vec![data, idx], vec![x]);
        x
    }

    /// A fused loss node that is a term of the objective; its tensors are named after `kind`.
    fn loss_node(&mut self, kind: LossKind, op: GOp, inputs: Vec<TensorId>, n_grads: usize, scale: f32) -> TensorId {
        let name = kind.to_string();
        let rows = rows_cols(self.shape(inputs[0])).0;
        let per_row = self.temp(format!("{name}.per_row"), &[rows], DType::F32);
        let mut outputs = vec![per_row];
        for i in 0..n_grads {
            let shape = self.shape(inputs[i]).to_vec();
            let g = self.temp(format!("{name}.grad{i}"), &shape, DType::F32);
            outputs.push(g);
        }
        self.push(op, inputs, outputs);
        self.add_loss_term(kind, per_row, scale);
        per_row
    }

    /// Bernoulli NLL of `target` under sigmoid(`logits`), summed over features, times `scale`.
    pub fn bce_loss(&mut self, kind: LossKind, logits: TensorId, target: TensorId, scale: f32) -> TensorId {
        self.loss_node(kind, GOp::Bce { scale }, vec![logits, target], 1, scale)
    }
    pub fn kl_loss(&mut self, kind: LossKind, mu: TensorId, logvar: TensorId, scale: f32) -> TensorId {
        self.loss_node(kind, GOp::Kl { scale }, vec![mu, logvar], 2, scale)
    }
    /// Softmax cross-entropy over labeled rows, divided by their count, times `scale`; the
    /// target is one-hot(y) smoothed by `smoothing` ((1 - E) one-hot + E / K; 0: one-hot).
    pub fn ce_loss(&mut self, kind: LossKind, logits: TensorId, labels: TensorId, scale: f32, smoothing: f32) -> TensorId {
        self.loss_node(kind, GOp::Ce { scale, smoothing }, vec![logits, labels], 1, scale)
    }
    /// Gaussian NLL with variance softplus(var_raw) + `floor`.
    #[allow(clippy::too_many_arguments)]
    pub fn gaussian_nll_loss(
        &mut self,
        kind: LossKind,
        mean: TensorId,
        var_raw: TensorId,
        target: TensorId,
        scale: f32,
        floor: f32,
    ) -> TensorId {
        self.loss_node(kind, GOp::GaussianNll { scale, floor }, vec![mean, var_raw, target], 2, scale)
    }
}
